"""The cost model every shard planner optimises (docs/contract.md, "Cost model").

A shard (one process: a CI job or an xdist worker) costs its start-up and collection, the own
cost of each of its tests plus pytest's per-test overhead (hooks and reporting outside the test's
phases, learnt from history), and each wider-scope fixture *instance* its tests need, once. An
instance is what pytest sets up once: a module-scoped fixture once per test module, a class-scoped
one once per class, a session- or package-scoped one once per process. Tests that share a module or
class instance form a *family*; planners keep a family together unless splitting it pays for the
set-up it duplicates.

Everything here is ordered by node id, so that plans do not depend on collection order.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Container, Iterable, Sequence
from typing import TYPE_CHECKING

from pytest_feedback.history.estimates import instance_key

if TYPE_CHECKING:
    from pytest_feedback.history.estimates import Estimates

#: Fixture costs below this many seconds are not worth tracking.
MIN_FIXTURE_S = 1e-4
#: Loads closer than this are equal (keeps float noise out of decisions).
EPSILON = 1e-9


@dataclasses.dataclass(frozen=True)
class Workload:
    """Tests to place, with their costs. Indexes follow ``nodeids``, which is sorted."""

    nodeids: tuple[str, ...]
    own: tuple[float, ...]
    #: Per test, the fixture instances (indexes into ``resource_cost``) it needs.
    needs: tuple[tuple[int, ...], ...]
    resource_cost: tuple[float, ...]
    #: ``name@scope:instance`` of each fixture instance, for explanations.
    resource_names: tuple[str, ...]
    #: Groups of test indexes sharing a module or class fixture instance; singletons otherwise.
    families: tuple[tuple[int, ...], ...]
    startup_s: float

    @classmethod
    def build(cls, estimates: Estimates, nodeids: Iterable[str]) -> Workload:
        ordered = sorted(set(nodeids))
        keys: dict[tuple[int, str], int] = {}
        costs: list[float] = []
        names: list[str] = []
        needs: list[tuple[int, ...]] = []
        for nodeid in ordered:
            mine: set[int] = set()
            # In a stable order, so that resource numbers (and float sums) never depend on the
            # order the history returned rows in.
            used = sorted(
                estimates.uses.get(nodeid, ()),
                key=lambda i: (
                    estimates.fixtures[i].name,
                    estimates.fixtures[i].scope,
                    estimates.fixtures[i].location,
                ),
            )
            for index in used:
                fixture = estimates.fixtures[index]
                if fixture.scope == "function" or fixture.cost_s < MIN_FIXTURE_S:
                    continue
                key = (index, instance_key(fixture.scope, nodeid))
                resource = keys.get(key)
                if resource is None:
                    resource = keys[key] = len(costs)
                    costs.append(fixture.cost_s)
                    names.append(f"{fixture.name}@{fixture.scope}:{key[1] or '*'}")
                mine.add(resource)
            needs.append(tuple(sorted(mine)))
        shared = {r for r, name in enumerate(names) if not name.endswith(":*")}
        families = _families(needs, shared)
        return cls(
            nodeids=tuple(ordered),
            own=tuple(max(0.0, estimates.duration(n)) + estimates.per_test_s for n in ordered),
            needs=tuple(needs),
            resource_cost=tuple(costs),
            resource_names=tuple(names),
            families=families,
            startup_s=max(0.0, estimates.startup_s),
        )

    def __len__(self) -> int:
        return len(self.nodeids)

    @functools.cached_property
    def family_of(self) -> dict[int, int]:
        """Per test in a family of `families`, that family's index."""
        return {t: i for i, family in enumerate(self.families) for t in family}

    def paced(self, pace: float) -> Workload:
        """This workload with every test's and instance's cost times ``pace`` (start-up kept)."""
        if pace == 1.0:
            return self
        return dataclasses.replace(
            self,
            own=tuple(c * pace for c in self.own),
            resource_cost=tuple(c * pace for c in self.resource_cost),
        )

    def cost(self, tests: Iterable[int]) -> float:
        """Seconds one process spends on ``tests``: start-up, own costs, instances once each."""
        members = list(tests)
        resources = {r for t in members for r in self.needs[t]}
        return (
            self.startup_s
            + sum(self.own[t] for t in members)
            + sum(self.resource_cost[r] for r in resources)
        )

    def added_cost(self, t: int, paid: Container[int]) -> float:
        """Seconds test ``t`` adds to a process that has set up the instances in ``paid``: its
        own time and the instances it needs that are not among them."""
        extra = sum(self.resource_cost[r] for r in self.needs[t] if r not in paid)
        return self.own[t] + extra

    def lower_bound(self, n: int) -> float:
        """No plan on ``n`` processes beats this (docs/contract.md, "Cost model").

        The plain bound is max(start-up + all the work / n, the costliest single test). It counts
        each fixture instance once, but a process that runs a test needing an instance pays
        for it: if the tests needing instance r own W_r seconds, a process with a makespan of C
        holds at most C - start-up - cost_r of them, so at least ceil(W_r / that) processes pay
        cost_r. The bound is the smallest C for which the work, with those set-ups, fits in n
        processes of C seconds (found by bisection; the answer kept is on the side that does
        not fit, so it stays a bound).
        """
        if not self.nodeids:
            return 0.0
        work, largest, needing = self._bound_terms
        n = max(1, n)
        plain = max(self.startup_s + work / n, largest)
        if n == 1:
            return plain
        own_total = sum(self.own)
        cost = self.resource_cost
        startup = self.startup_s
        # The bisection only tries C >= plain, where an instance whose tests fit in one process
        # of `plain` seconds is paid once, whatever C: those are summed once, here (most module
        # and class instances; the search then walks the few large ones).
        once = 0.0
        varying = []
        for r, w in needing:
            room = plain - startup - cost[r]
            if room > 0 and math.ceil(w / room - 1e-12) <= 1:
                once += cost[r]
            else:
                varying.append((r, w))

        def fits(c: float) -> bool:
            total = startup * n + own_total + once
            if total > n * c:
                return False
            for r, w in varying:
                room = c - startup - cost[r]
                if room <= 0:
                    return False
                total += cost[r] * max(1, math.ceil(w / room - 1e-12))
                if total > n * c:
                    return False
            return True

        if fits(plain):
            return plain
        low, high = plain, startup + own_total + sum(cost)  # all on one process fits
        for _ in range(60):
            middle = (low + high) / 2
            if fits(middle):
                high = middle
            else:
                low = middle
        return low

    @functools.cached_property
    def _bound_terms(self) -> tuple[float, float, tuple[tuple[int, float], ...]]:
        """All the work, the costliest single test (with start-up), and per fixture instance
        the own seconds of the tests that need it: `lower_bound`'s terms."""
        cost = self.resource_cost
        largest = max(own + sum(cost[r] for r in needs) for own, needs in zip(self.own, self.needs))
        needing = [0.0] * len(cost)
        for own, needs in zip(self.own, self.needs):
            for r in needs:
                needing[r] += own
        return (
            sum(self.own) + sum(cost),
            self.startup_s + largest,
            tuple((r, w) for r, w in enumerate(needing) if cost[r] > 0),
        )


def _families(needs: Sequence[tuple[int, ...]], shared: set[int]) -> tuple[tuple[int, ...], ...]:
    """Union tests that need the same module or class instance (union-find, by index)."""
    parent = list(range(len(needs)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first: dict[int, int] = {}
    for test, resources in enumerate(needs):
        for r in resources:
            if r not in shared:
                continue
            other = first.setdefault(r, test)
            a, b = find(test), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for test in range(len(needs)):
        groups.setdefault(find(test), []).append(test)
    return tuple(tuple(g) for _, g in sorted(groups.items()))


class Assignment:
    """Tests placed on ``n`` shards, with each shard's load kept up to date as tests move."""

    def __init__(self, work: Workload, n: int) -> None:
        self.work = work
        self.n = n
        self.shard_of = [-1] * len(work)
        self.load = [work.startup_s] * n
        self.count = [0] * n
        self.refs: list[dict[int, int]] = [{} for _ in range(n)]

    def add_cost(self, shard: int, tests: Sequence[int]) -> float:
        """Seconds ``shard`` gains if ``tests`` (not on it) join it."""
        work, refs = self.work, self.refs[shard]
        total = sum(work.own[t] for t in tests)
        new = {r for t in tests for r in work.needs[t] if r not in refs}
        return total + sum(work.resource_cost[r] for r in new)

    def remove_saving(self, shard: int, tests: Sequence[int]) -> float:
        """Seconds ``shard`` saves if ``tests`` (all on it) leave it."""
        work, refs = self.work, self.refs[shard]
        total = sum(work.own[t] for t in tests)
        counts: dict[int, int] = {}
        for t in tests:
            for r in work.needs[t]:
                counts[r] = counts.get(r, 0) + 1
        return total + sum(work.resource_cost[r] for r, c in counts.items() if refs[r] == c)

    def place(self, tests: Sequence[int], shard: int) -> None:
        """Move ``tests`` (placed or not) onto ``shard``."""
        work = self.work
        for t in tests:
            old = self.shard_of[t]
            if old == shard:
                continue
            if old >= 0:
                self.load[old] -= work.own[t]
                self.count[old] -= 1
                refs = self.refs[old]
                for r in work.needs[t]:
                    refs[r] -= 1
                    if refs[r] == 0:
                        del refs[r]
                        self.load[old] -= work.resource_cost[r]
            self.shard_of[t] = shard
            self.load[shard] += work.own[t]
            self.count[shard] += 1
            refs = self.refs[shard]
            for r in work.needs[t]:
                if r not in refs:
                    refs[r] = 0
                    self.load[shard] += work.resource_cost[r]
                refs[r] += 1

    def makespan(self) -> float:
        return max(self.load) if self.n else 0.0

    def shards(self) -> list[list[int]]:
        """Test indexes per shard, each list in node id order."""
        out: list[list[int]] = [[] for _ in range(self.n)]
        for test, shard in enumerate(self.shard_of):
            out[shard].append(test)
        return out


def fill_empty_shards(assign: Assignment) -> None:
    """Give every empty shard one test while some shard has two or more.

    The test is the cheapest one of the shard with the most tests (ties: the last node id), so an
    empty CI job never happens when there are at least as many tests as shards.
    """
    work = assign.work
    for shard in range(assign.n):
        if assign.count[shard] or len(work) < assign.n:
            continue
        donor = max(range(assign.n), key=lambda s: (assign.count[s], -s))
        if assign.count[donor] < 2:
            return
        tests = [t for t, s in enumerate(assign.shard_of) if s == donor]
        cheapest = min(tests, key=lambda t: (work.cost([t]), -t))
        assign.place([cheapest], shard)
