"""When a budget run starts each chosen test: the `Pacer`, and the order tests sharing a fixture
instance run in.

`budget.plan_budget` decides what fits on the history's estimates; the pacer follows the run as it
goes and keeps it within the budget (a test that no longer fits is left, left-out tests fill the
time a run ahead of its plan has left).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_feedback.history.estimates import instance_key
from pytest_feedback.planning.planners import Workload

if TYPE_CHECKING:
    from pytest_feedback.planning.costs import CostModel

#: Share of the time left that `Pacer.fill` keeps free, and how many left-out tests in a row it
#: may find too long before it stops looking.
FILL_MARGIN = 0.05
FILL_SCAN = 2000


class Pacer:
    """Whether a chosen test still fits when its turn comes, given the time the run has taken.

    The plan is an estimate: a failing test, a busy machine or a test slower in this order than
    in the history can put the run behind. A test is started only when it still ends within the
    budget with the session end that follows the run: its expected cost (its own time and the
    wider-scope fixture instances no test run so far has paid for) plus the session end after
    all the work started so far (see `CostModel`). One that does not fit is left, and a cheaper
    one after it may still fit. On schedule every chosen test fits: the plan's prediction is
    start-up plus these costs and the session end.

    A failing test can take much longer than its passing history (pytest builds its traceback,
    hypothesis shrinks the example): once one has, the largest such overrun is kept free for
    the next test too (`failed`). The run has found a failure by then; ending on time is what
    is left to do.

    ``model``: the plan's costs (`CostModel`); `planned_s` divides its pace out, so that a run's
    record compares what its test loop took with the history's own estimates. ``model.after_s``
    is kept for what follows the tests (the process's exit, and the session end budget runs
    have shown), with ``model.end`` for the session end beyond it.
    """

    def __init__(self, model: CostModel, tests: Sequence[int], spare: Sequence[int] = ()) -> None:
        work = model.work
        self._model = model
        self._work = work
        self._index = {work.nodeids[t]: t for t in (*tests, *spare)}
        self._pace = model.pace if model.pace > 0 else 1.0
        self._after_s = max(0.0, model.after_s)
        #: Left-out tests, best first, that may still run if the run ends early (`fill`), and
        #: the least any of them costs.
        self._spare = list(spare)
        self._spare_floor = min((work.own[t] for t in spare), default=0.0)
        #: Per fixture instance, the scope and which tests share it (see `instance_key`).
        self._instance = [_scope_and_key(name) for name in work.resource_names]
        #: The fixture instances set up and not yet torn down.
        self._paid: set[int] = set()
        #: Expected work of the tests started so far (session end not included).
        self._done_s = 0.0
        #: Expected seconds of the left-out tests `fill` gave, with their session-end share.
        self.filled_s = 0.0
        #: The most a failing test of this run took beyond its expected cost (`failed`).
        self.reserve_s = 0.0

    @property
    def planned_s(self) -> float:
        """Seconds the history's estimates (uncalibrated) give the tests started so far: what
        `Estimates.pace` compares a run's test loop with."""
        return self._done_s / self._pace

    def cost(self, nodeid: str) -> float:
        """Seconds of work the test is expected to add now (fixtures not yet paid included)."""
        t = self._index.get(nodeid)
        return 0.0 if t is None else self._work.added_cost(t, self._live(self._paid, t))

    def fits(self, nodeid: str, remaining_s: float) -> bool:
        """Whether the test, then the session end of all work so far, ends in ``remaining_s``."""
        cost = self.cost(nodeid)
        after = self._model.end(self._done_s + cost) + self._after_s + self.reserve_s
        return remaining_s > 0 and cost + after <= remaining_s

    def failed(self, overrun_s: float) -> None:
        """A test failed ``overrun_s`` seconds later than its expected cost: the next tests
        keep that much free, in case they fail as slowly."""
        self.reserve_s = max(self.reserve_s, overrun_s)

    def started(self, nodeid: str) -> None:
        """The test runs: the fixture instances it needs are paid for."""
        t = self._index.get(nodeid)
        if t is not None:
            self._paid = self._live(self._paid, t)
            self._done_s += self._work.added_cost(t, self._paid)
            self._paid.update(self._work.needs[t])

    def _live(self, paid: set[int], t: int) -> set[int]:
        """Of the instances in ``paid``, those pytest keeps for test ``t``: a module's or a
        class's instance is torn down once the run moves to a test outside it."""
        nodeid = self._work.nodeids[t]
        return {
            r
            for r in paid
            if not self._instance[r][1]
            or instance_key(self._instance[r][0], nodeid) == self._instance[r][1]
        }

    def fill(self, remaining_s: float, pending: Sequence[str]) -> list[str]:
        """Left-out tests to run after ``pending`` (the chosen tests not started yet), best first,
        that still end within ``remaining_s`` with the session end; taken from the spare ones.

        The plan is an estimate: when the run is ahead of it, the time left is not wasted.
        """
        if not self._spare:
            return []
        paid = set(self._paid)
        work_s = self._done_s
        for nodeid in pending:
            t = self._index.get(nodeid)
            if t is None:
                continue
            paid = self._live(paid, t)
            work_s += self._work.added_cost(t, paid)
            paid.update(self._work.needs[t])
        # The estimates were too pessimistic so far, yet the added tests are the less certain
        # the later they come: a margin keeps the pacer from cutting the last of them.
        slack = remaining_s * (1 - FILL_MARGIN) - (work_s - self._done_s)
        slack -= self._model.end(work_s) + self._after_s + self.reserve_s
        floor = self._spare_floor
        taken: list[int] = []
        misses = 0
        for t in self._spare:
            if slack < floor or misses > FILL_SCAN:  # decided without scanning them all
                break
            live = self._live(paid, t)
            own = self._work.added_cost(t, live)
            cost = own + self._model.end(work_s + own) - self._model.end(work_s)
            if cost > slack:
                misses += 1
                continue
            taken.append(t)
            slack -= cost
            self.filled_s += cost
            work_s += own
            paid = live | set(self._work.needs[t])
            misses = 0
        if not taken:
            return []
        chosen = set(taken)
        self._spare = [t for t in self._spare if t not in chosen]
        self._spare_floor = min((self._work.own[t] for t in self._spare), default=0.0)
        return [self._work.nodeids[t] for t in grouped(taken, self._work)]


def _scope_and_key(name: str) -> tuple[str, str]:
    """``db@module:tests/test_a.py`` (a `Workload.resource_names` entry) -> its scope and the
    instance key its tests share (``""``: one per process)."""
    scope, _, key = name.partition("@")[2].partition(":")
    return scope, "" if key == "*" else key


def grouped(tests: Sequence[int], work: Workload) -> list[int]:
    """``tests`` in their order, but those sharing a module or class instance together, from the
    first one's place: pytest sets such an instance up again each time the run comes back."""
    groups: dict[object, list[int]] = {}
    for t in tests:
        groups.setdefault(work.family_of.get(t, ("alone", t)), []).append(t)
    return [t for members in groups.values() for t in members]
