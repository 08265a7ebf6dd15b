"""The fast targeted subset: the tests worth most that fit a time budget.

Given candidate tests (what pytest collected, after any selection), their estimates and a budget,
`plan_budget` picks the tests whose predicted wall time — start-up, own costs, each wider-scope
fixture instance once, and with ``workers`` > 1 the parallel plan of `shards.py` — fits, and orders
them so that a failure shows as early as possible:

1. tests the change affects come first (``affected``);
2. then risk per second: changed lines the test reaches, a failure last time, its failure rate
   (discounted when flaky), being new, not having run for a while, and how much of what the
   change touched its text names (`affinity`: what tells apart the tests that all execute a
   changed line at import time);
3. fixture-aware: once a chosen test has paid for an expensive fixture instance, the tests that
   share it cost only their own time.

Pure: no pytest, no history access; the plugin and the command line feed it.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Optional

from pytest_feedback.durations import format_budget, format_duration
from pytest_feedback.history.records import FAILING
from pytest_feedback.planning.planners import Workload
from pytest_feedback.planning.planners.model import instance_key
from pytest_feedback.planning.shards import plan_workload

if TYPE_CHECKING:
    from pytest_feedback.history.estimates import Estimates

#: Risk points; a test's value per second is its risk divided by the seconds it adds.
RISK_BASE = 0.1  # every test can fail
RISK_NEW = 2.0  # never recorded: nothing says it passes
RISK_FAILED_LAST = 3.0  # failed or errored in its last run
RISK_FAIL_RATE = 2.0  # times its failure rate in recent runs ...
FLAKY_DISCOUNT = 0.3  # ... which says less when the test is flaky
RISK_STALE = 1.0  # at most, for a test not run for STALE_RUNS runs
STALE_RUNS = 20
RISK_AFFINITY = 1.0  # at most, for the test that names most of what the change touched


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One test the budget may run, with what is known of its risk."""

    nodeid: str
    #: The change affects it (selection's rules selected it).
    affected: bool = False
    #: Changed lines it executed (0 when unknown or none).
    changed_lines: int = 0
    #: Runs recorded for it (0: a new test).
    runs: int = 0
    last_outcome: Optional[str] = None
    fail_rate: float = 0.0
    flaky: bool = False
    #: Recorded runs since it last ran (0: it ran in the latest).
    runs_since: int = 0
    #: How much of what the change touched the test's text names, 0 to 1 (`affinity`).
    affinity: float = 0.0


def risk(c: Candidate) -> float:
    """How likely, in points, the test is to reveal a failure now."""
    score = RISK_BASE
    if c.runs == 0:
        score += RISK_NEW
    if c.last_outcome in FAILING:
        score += RISK_FAILED_LAST
    score += RISK_FAIL_RATE * min(1.0, max(0.0, c.fail_rate)) * (FLAKY_DISCOUNT if c.flaky else 1)
    score += math.log1p(max(0, c.changed_lines))
    score += RISK_STALE * min(1.0, max(0, c.runs_since) / STALE_RUNS)
    score += RISK_AFFINITY * min(1.0, max(0.0, c.affinity))
    return score


@dataclasses.dataclass(frozen=True)
class BudgetPlan:
    """What fits: ``chosen`` in the order to run them, and what was left out."""

    budget_s: float
    workers: int
    chosen: tuple[str, ...]
    left_out: tuple[str, ...]
    predicted_s: float
    #: What the left-out tests would take on their own, with the same workers.
    left_out_s: float
    #: How many candidates were affected by the change (None: no change information).
    affected: Optional[int] = None
    #: What each chosen test is expected to add when its turn comes (see `Pacer`).
    pacer: Optional[Pacer] = dataclasses.field(default=None, compare=False, repr=False)
    #: The calibration from recent budget runs the costs were multiplied by (`Estimates.pace`).
    pace: float = 1.0

    @property
    def total(self) -> int:
        return len(self.chosen) + len(self.left_out)

    def summary_line(self) -> str:
        """The one terminal line that says what the budget did."""
        head = f"feedback: budget {format_budget(self.budget_s)}"
        if self.workers > 1:
            head += f", {self.workers} workers"
        kind = (
            "affected tests"
            if self.affected is not None and self.affected == self.total
            else "tests"
        )
        predicted = format_duration(self.predicted_s)
        if not self.left_out:
            return f"{head}: running all {self.total:,} {kind} (predicted {predicted})"
        return (
            f"{head}: running {len(self.chosen):,} of {self.total:,} {kind} "
            f"(predicted {predicted}); {len(self.left_out):,} left out "
            f"(predicted {format_duration(self.left_out_s)}) — run them in CI"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "budget_s": round(self.budget_s, 3),
            "workers": self.workers,
            "predicted_s": round(self.predicted_s, 3),
            "chosen": len(self.chosen),
            "left_out": list(self.left_out),
            "left_out_s": round(self.left_out_s, 3),
            "pace": round(self.pace, 3),
        }


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
        return [self._work.nodeids[t] for t in _grouped(taken, self._work)]


def _scope_and_key(name: str) -> tuple[str, str]:
    """``db@module:tests/test_a.py`` (a `Workload.resource_names` entry) -> its scope and the
    instance key its tests share (``""``: one per process)."""
    scope, _, key = name.partition("@")[2].partition(":")
    return scope, "" if key == "*" else key


def _grouped(tests: Sequence[int], work: Workload) -> list[int]:
    """``tests`` in their order, but those sharing a module or class instance together, from the
    first one's place: pytest sets such an instance up again each time the run comes back."""
    groups: dict[object, list[int]] = {}
    for t in tests:
        groups.setdefault(work.family_of.get(t, ("alone", t)), []).append(t)
    return [t for members in groups.values() for t in members]


def predict(
    work: Workload,
    tests: Sequence[int],
    workers: int,
    bringup_s: float = 0.0,
    model: Optional[CostModel] = None,
) -> float:
    """Predicted wall seconds of running ``tests`` of ``work`` on ``workers`` processes
    (``bringup_s``: what xdist adds beyond the busiest worker, see `Estimates.bringup_s`;
    ``model``: the session end after the tests' work, serial runs, see `CostModel.end`)."""
    if not tests:
        return 0.0
    if workers <= 1:
        cost = work.cost(tests)
        return cost + (model.end(cost - work.startup_s) if model is not None else 0.0)
    return bringup_s + plan_workload(_subset(work, tests), workers).makespan_s


def _subset(work: Workload, tests: Sequence[int]) -> Workload:
    """The workload of some of ``work``'s tests (same costs, families recomputed)."""
    index = sorted(set(tests))
    position = {t: i for i, t in enumerate(index)}
    families = []
    for family in work.families:
        kept = tuple(position[t] for t in family if t in position)
        if kept:
            families.append(kept)
    return Workload(
        nodeids=tuple(work.nodeids[t] for t in index),
        own=tuple(work.own[t] for t in index),
        needs=tuple(work.needs[t] for t in index),
        resource_cost=work.resource_cost,
        resource_names=work.resource_names,
        families=tuple(sorted(families)),
        startup_s=work.startup_s,
    )


@dataclasses.dataclass(frozen=True)
class CostModel:
    """What a budget plans with: the tests' calibrated costs and what a run costs besides them."""

    #: Costs times the pace; ``startup_s`` includes the fixed costs after the tests (`after_s`).
    work: Workload
    #: Session end per second of work beyond ``covered_s`` (serial runs).
    end_rate: float
    covered_s: float
    pace: float
    #: The process's exit and the session end budget runs have shown (serial runs).
    after_s: float

    def end(self, work_s: float) -> float:
        """Seconds of session end after ``work_s`` seconds of tests, beyond the fixed part."""
        return max(0.0, self.end_rate) * max(0.0, work_s - self.covered_s)


def cost_model(
    estimates: Estimates,
    nodeids: Iterable[str],
    workers: int = 1,
    spent_s: Optional[float] = None,
) -> CostModel:
    """The costs `plan_budget` gives ``nodeids`` on ``workers`` processes (``spent_s``: see
    there)."""
    # Serial runs: the costs are calibrated by how recent budget runs compared with their plans
    # (learnt from serial runs only; under xdist the learnt bring-up carries the difference).
    pace = estimates.pace if workers == 1 else 1.0
    work = Workload.build(estimates, nodeids).paced(pace)
    if spent_s is not None and workers == 1:
        work = dataclasses.replace(work, startup_s=max(0.0, spent_s))
    # A serial run's session end (a plugin's summary, session fixtures' tear-down): what recent
    # budget runs spent, once there are some; before, the full runs' session end in proportion
    # to the share of the suite's work that runs (of the whole recorded suite, not of the
    # candidates, which `-k` or selection may have narrowed; in the history's seconds, so that
    # the pace applies to it too). Under xdist the learnt bring-up holds it.
    whole = max((sum(work.own) + sum(work.resource_cost)) / pace, estimates.total(estimates.tests))
    end_rate = estimates.session_end_s / whole if workers == 1 and whole > 0 else 0.0
    # The process's exit, and a session end that budget runs have shown, are fixed costs of a
    # serial run like its start-up: counted with it (`work.startup_s` is what one process costs
    # besides its tests). That session end is known for the work those runs did; beyond it (a
    # bigger budget, tests that bring a plugin's session-end work) the full runs' share counts.
    after_s = max(0.0, estimates.exit_s) if workers == 1 else 0.0
    covered = 0.0
    if workers == 1 and estimates.budget_end_s is not None:
        after_s += max(0.0, estimates.budget_end_s)
        covered = max(0.0, estimates.budget_work_s) * pace
    if after_s:
        work = dataclasses.replace(work, startup_s=work.startup_s + after_s)
    return CostModel(work, end_rate, covered, pace, after_s)


def plan_budget(
    candidates: Sequence[Candidate],
    estimates: Estimates,
    budget_s: float,
    workers: int = 1,
    *,
    affected_known: bool = False,
    spent_s: Optional[float] = None,
    before_workers_s: float = 0.0,
) -> BudgetPlan:
    """Choose and order the candidates that fit ``budget_s`` on ``workers`` processes.

    ``spent_s``: seconds the run has already taken when it decides (interpreter and pytest
    start-up, plugins, conftests, collection), measured; it then stands in for the start-up the
    history estimates, which covers only collection. Serial runs only: under pytest-xdist the
    start-up that matters is each worker's, and ``before_workers_s`` is what the controller had
    spent before it started them (added to the bring-up the history learnt).
    """
    workers = max(1, workers)
    bringup = estimates.bringup_s(workers) + (max(0.0, before_workers_s) if workers > 1 else 0.0)
    by_id = {c.nodeid: c for c in candidates}
    model = cost_model(estimates, by_id, workers, spent_s)
    work = model.work
    cands = [by_id[n] for n in work.nodeids]
    risks = [risk(c) for c in cands]
    tier = [0 if c.affected else 1 for c in cands]

    # Greedy by (tier, value per marginal second), lazily re-evaluated: a test's marginal cost only
    # falls as the fixture instances it needs get paid for by tests chosen before it.
    paid: set[int] = set()

    def marginal(t: int) -> float:
        return max(work.added_cost(t, paid), 1e-6)

    heap = [(tier[t], -risks[t] / marginal(t), work.nodeids[t], t) for t in range(len(cands))]
    heapq.heapify(heap)
    chosen: list[int] = []
    work_s = 0.0
    while heap:
        level, neg_value, nodeid, t = heapq.heappop(heap)
        cost = marginal(t)
        value = -risks[t] / cost
        if value < neg_value - 1e-12:  # it got cheaper since it was queued: queue it again
            heapq.heappush(heap, (level, value, nodeid, t))
            continue
        # The parallel bound (total work spread evenly, and no test longer than the budget)
        # is optimistic; the real plan is checked once below.
        total = work_s + cost
        if bringup + work.startup_s + (total + model.end(total)) / workers > budget_s:
            continue
        if bringup + work.cost([t]) > budget_s:  # alone, on one process, it would not fit
            continue
        chosen.append(t)
        work_s += cost
        paid.update(work.needs[t])

    # The even spread was optimistic: keep the longest prefix (in priority order) whose real
    # plan fits.
    keep = _longest_fitting_prefix(work, chosen, workers, budget_s, bringup)
    chosen = chosen[:keep]
    chosen_set = set(chosen)
    left = [t for t in range(len(cands)) if t not in chosen_set]

    # Run order: affected first, then the most risk per second of own time; but the tests that
    # share a module or class fixture instance run together, from their group's first place:
    # pytest tears such a fixture down when the next test is elsewhere, and a mixed order set it
    # up again and again (a generated suite: a 1.7 s database 18 times in one budget run).
    def priority(t: int) -> tuple[int, float, str]:
        return (tier[t], -risks[t] / max(work.own[t], 1e-6), work.nodeids[t])

    order = _grouped(sorted(chosen, key=priority), work)
    left.sort(key=priority)
    return BudgetPlan(
        budget_s=budget_s,
        workers=workers,
        chosen=tuple(work.nodeids[t] for t in order),
        left_out=tuple(work.nodeids[t] for t in left),
        # Nothing chosen, the run still takes what it has spent.
        predicted_s=(
            predict(work, chosen, workers, bringup, model) if chosen else (spent_s or 0.0)
        ),
        left_out_s=predict(work, left, workers, bringup, model),
        affected=sum(1 for c in cands if c.affected) if affected_known else None,
        pacer=Pacer(model, chosen, spare=left),
        pace=model.pace,
    )


def _longest_fitting_prefix(
    work: Workload, chosen: Sequence[int], workers: int, budget_s: float, bringup_s: float
) -> int:
    if workers <= 1 or predict(work, chosen, workers, bringup_s) <= budget_s:
        return len(chosen)
    lo, hi = 0, len(chosen)  # prefix lo fits, prefix hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if predict(work, chosen[:mid], workers, bringup_s) <= budget_s:
            lo = mid
        else:
            hi = mid
    return lo


#: The budget the report's hint speaks of: the mission's local loop.
HINT_BUDGET_S = 300.0


def report_hint(estimates: Estimates) -> Optional[str]:
    """The report's sentence on the fast subset: what a 5-minute budget would run."""
    candidates = [
        Candidate(
            e.nodeid,
            runs=e.runs,
            last_outcome=e.last_outcome,
            fail_rate=e.fail_rate,
            flaky=e.flaky,
        )
        for e in estimates.tests.values()
    ]
    plan = plan_budget(candidates, estimates, HINT_BUDGET_S)
    if not plan.left_out:
        return None  # the whole suite fits: nothing to say
    return (
        f"a 5-minute budget runs {len(plan.chosen):,} of {plan.total:,} tests, riskiest first "
        "(`pytest --feedback-budget=5m`)"
    )
