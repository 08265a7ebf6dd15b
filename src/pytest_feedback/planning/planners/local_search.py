"""LPT, then local search: move families (or parts of them: tails, single costly tests) and swap
them off the longest shard.

Every accepted step lowers the longest shard without making another one as long, so the sorted
vector of loads decreases and the search ends; budgets on steps and evaluations bound its time on
large suites. Both budgets count work, not seconds, so the result is the same on every machine.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pytest_feedback.planning.planners.lpt import LptPlanner
from pytest_feedback.planning.planners.model import EPSILON, Assignment, Workload

#: Largest groups per shard considered for swaps (swaps cost a square of this per shard pair).
SWAP_GROUPS = 16
#: Evaluations (candidate move or swap, one target shard) the search may spend.
MAX_EVALUATIONS = 400_000


#: A group's own seconds, and how many of its tests need each fixture instance.
_GroupStats = tuple[float, dict[int, int]]
#: Tests of one family placed together, with their stats.
_Group = tuple[tuple[int, ...], _GroupStats]


class LocalSearchPlanner:
    """Start from `LptPlanner` and improve the makespan with moves, splits and swaps."""

    name = "local-search"

    def __init__(self, max_evaluations: int = MAX_EVALUATIONS) -> None:
        self.max_evaluations = max_evaluations

    def plan(self, work: Workload, n: int) -> Assignment:
        assign = LptPlanner().plan(work, n)
        if n > 1:
            _Search(assign, self.max_evaluations).run()
        return assign


class _Search:
    def __init__(self, assign: Assignment, budget: int) -> None:
        self.a = assign
        self.budget = budget
        work = assign.work
        #: Each family's stats and tails, for the (usual) groups that are a whole family: the
        #: same for every shard count, kept for the workload's next plan (`worker_curve` plans
        #: it for each count).
        self.family_stats, self.family_tails = _family_groups(work)
        #: Per shard, the part of each family on it (by family index), with its stats; kept up
        #: to date as groups move, so that a step does not look at every test.
        self.on: list[dict[int, _Group]] = [{} for _ in range(assign.n)]
        #: The tails of each group in `on` (to split a family), with their stats, by group.
        self.tails: dict[tuple[int, int], list[_Group]] = {}
        for f in range(len(work.families)):
            self._refresh(f)

    def run(self) -> None:
        max_steps = 20 * len(self.a.work) + 100
        for _ in range(max_steps):
            if self.budget <= 0:
                return
            load = self.a.load
            longest = max(range(self.a.n), key=lambda s: (load[s], -s))
            if not (self._best_move(longest) or self._best_swap(longest)):
                return

    def _refresh(self, f: int) -> None:
        """Re-split family ``f`` over the shards after some of its tests moved."""
        a = self.a
        family = a.work.families[f]
        for shard, on in enumerate(self.on):
            if on.pop(f, None) is not None:
                del self.tails[(f, shard)]
        shard_of = a.shard_of
        first = shard_of[family[0]]
        if all(shard_of[t] == first for t in family):
            self.on[first][f] = (family, self.family_stats[f])
            self.tails[(f, first)] = self.family_tails[f]
            return
        parts: dict[int, list[int]] = {}
        for t in family:
            parts.setdefault(shard_of[t], []).append(t)
        for shard, tests in parts.items():
            part = tuple(tests)
            self.on[shard][f] = (part, _stats(a.work, part))
            self.tails[(f, shard)] = _tails(a.work, part)

    def _move(self, group: tuple[int, ...], shard: int) -> None:
        """Place ``group`` (part of one family) on ``shard``."""
        self.a.place(group, shard)
        self._refresh(self.a.work.family_of[group[0]])

    def _groups(self, shard: int) -> Iterator[_Group]:
        """The parts of each family on ``shard``, and tails of them (to split a family)."""
        on, tails = self.on[shard], self.tails
        for f in sorted(on):
            yield on[f]
            yield from tails[(f, shard)]

    def _best_move(self, src: int) -> bool:
        a = self.a
        cost = a.work.resource_cost
        limit = a.load[src] - EPSILON
        refs_src = a.refs[src]
        best: tuple[float, float] | None = None
        best_move: tuple[tuple[int, ...], int] | None = None
        for group, (own, counts) in self._groups(src):
            saving = own + sum(cost[r] for r, c in counts.items() if refs_src[r] == c)
            new_src = a.load[src] - saving
            if best is not None and new_src > best[0]:
                continue
            for dst in range(a.n):
                if dst == src or a.load[dst] + own >= limit:
                    continue
                self.budget -= 1
                refs = a.refs[dst]
                new_dst = a.load[dst] + own + sum(cost[r] for r in counts if r not in refs)
                score = (max(new_src, new_dst), new_src + new_dst)
                if score[0] < limit and (best is None or score < best):
                    best, best_move = score, (group, dst)
        if best_move is None:
            return False
        self._move(*best_move)
        return True

    def _best_swap(self, src: int) -> bool:
        a = self.a
        limit = a.load[src] - EPSILON
        mine = self._largest(list(self._groups(src)))
        best: tuple[float, float] | None = None
        best_swap: tuple[tuple[int, ...], tuple[int, ...], int] | None = None
        for dst in range(a.n):
            if dst == src:
                continue
            theirs = self._largest(list(self._groups(dst)))
            for g, g_stats in mine:
                for h, h_stats in theirs:
                    if self.budget <= 0:
                        break
                    self.budget -= 4
                    new_src = _exchanged(a, src, g_stats, h_stats)
                    new_dst = _exchanged(a, dst, h_stats, g_stats)
                    score = (max(new_src, new_dst), new_src + new_dst)
                    if score[0] < limit and (best is None or score < best):
                        best, best_swap = score, (g, h, dst)
        if best_swap is None:
            return False
        g, h, dst = best_swap
        self._move(g, dst)
        self._move(h, src)
        return True

    def _largest(self, groups: Sequence[_Group]) -> list[_Group]:
        """The `SWAP_GROUPS` costliest groups (ties: the first test)."""
        cost = self.a.work.resource_cost

        def key(item: _Group) -> tuple[float, int]:
            group, (own, counts) = item
            return (-(own + sum(cost[r] for r in counts)), group[0])

        return sorted(groups, key=key)[:SWAP_GROUPS]


#: The last workload's family stats and tails (one workload at a time: a curve plans one).
_FAMILY_GROUPS: list[tuple[Workload, list[_GroupStats], list[list[_Group]]]] = []


def _family_groups(work: Workload) -> tuple[list[_GroupStats], list[list[_Group]]]:
    """Each family's stats and tails (read-only), computed once per workload."""
    if not (_FAMILY_GROUPS and _FAMILY_GROUPS[0][0] is work):
        stats = [_stats(work, family) for family in work.families]
        tails = [_tails(work, family) for family in work.families]
        _FAMILY_GROUPS[:] = [(work, stats, tails)]
    return _FAMILY_GROUPS[0][1], _FAMILY_GROUPS[0][2]


def _stats(work: Workload, group: Sequence[int]) -> _GroupStats:
    counts: dict[int, int] = {}
    for t in group:
        for r in work.needs[t]:
            counts[r] = counts.get(r, 0) + 1
    return sum(work.own[t] for t in group), counts


#: Besides its tails, a group offers its this many costliest tests one by one (a long test in
#: the middle of a family is otherwise only moved with half of it).
HEAVY_TESTS = 2


def _tails(work: Workload, group: tuple[int, ...]) -> list[_Group]:
    """The last half of ``group``, the last quarter, ... down to its last test, then its
    `HEAVY_TESTS` costliest other tests alone, with stats."""
    out = []
    size = len(group) // 2
    while size >= 1:
        tail = group[-size:]
        out.append((tail, _stats(work, tail)))
        size //= 2
    if len(group) > 2:
        own = work.own
        heavy = sorted(group[:-1], key=lambda t: (-own[t], t))[:HEAVY_TESTS]
        out += [((t,), _stats(work, (t,))) for t in heavy]
    return out


def _exchanged(a: Assignment, shard: int, leaving: _GroupStats, joining: _GroupStats) -> float:
    """The load of ``shard`` if a group with ``leaving``'s stats (on it) left it and one with
    ``joining``'s (not on it) joined: what `Assignment.place` would make of it, without moving
    anything (a trial swap used to move both groups there and back)."""
    work, refs = a.work, a.refs[shard]
    own_out, out = leaving
    own_in, into = joining
    load = a.load[shard] - own_out + own_in
    for r, c in out.items():
        if refs[r] == c:
            load -= work.resource_cost[r]
    for r in into:
        if refs.get(r, 0) - out.get(r, 0) <= 0:
            load += work.resource_cost[r]
    return load
