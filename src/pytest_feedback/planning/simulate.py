"""What a budget would have caught: the budget replayed over the recorded runs that failed.

For every kept run with failing tests (not flaky ones, see `excluded_tests`), `simulate` plans
what ``--feedback-budget B`` would have run before it, with the planner the plugin uses
(`budget.BudgetPlanner`) on the estimates the history held just before that run
(`history.replay`) and what its change affected (a `ChangeOf`, given by the caller: selection is
a layer of its own), and counts whether the plan held a failing test. Two baselines fill the
same budget with the same cost model in another order (`baselines`): the fastest tests first,
and random tests (the expected value over random orders).
The figures are per budget: failing runs caught, failing tests caught, the mean predicted time.

Which runs count, and why the others do not, is part of the result (`Simulation.skipped`): a
figure says on how many runs it rests, and below `MIN_FAILING_RUNS` there is no percentage.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional, Protocol

from pytest_feedback.planning.baselines import Baselines
from pytest_feedback.planning.budget import BudgetPlanner, candidates_for
from pytest_feedback.planning.costs import CostModel, cost_model

if TYPE_CHECKING:
    from pytest_feedback.history.estimates import Estimates
    from pytest_feedback.history.replay import HistoryReplay, ReplayRun

#: The budgets of ``pytest-feedback simulate`` without ``--budget``.
DEFAULT_BUDGETS = (60.0, 120.0, 300.0, 600.0)
#: Fewer failing runs than this: no percentage, a sentence saying so.
MIN_FAILING_RUNS = 5

#: Why a kept run is not replayed (the keys of `Simulation.skipped`).
SKIP_FIRST = "no earlier run to plan from"
SKIP_FLAKY = "only flaky tests failed"
SKIP_BUDGET = "a --feedback-budget run: it ran what a budget chose"
SKIP_SHARD = "one shard of a CI run, not the whole suite"
SKIP_SELECT = "a --feedback-select run: it ran the affected tests only"
SKIP_INTERRUPTED = "interrupted, or pytest could not run it"
SKIP_OLDER = "older than the failing runs replayed"


class KnownChange(Protocol):
    """What the budget knew of a run's change (`selection.replay.RunChange`)."""

    @property
    def affected(self) -> Optional[set[str]]: ...

    @property
    def changed_lines(self) -> dict[str, int]: ...

    @property
    def affinity(self) -> dict[str, float]: ...

    @property
    def assumed(self) -> Optional[str]: ...


class ChangeOf(Protocol):
    """The change of ``run`` since ``before``, as the budget would have known it."""

    def __call__(
        self, run: ReplayRun, before: ReplayRun, estimates: Estimates, nodeids: Sequence[str]
    ) -> KnownChange: ...


def excluded_tests(now: Estimates) -> set[str]:
    """The tests whose failures the simulation does not count: the ones the history calls
    flaky now (`TestEstimate.flaky`). The one place that decides it."""
    return {nodeid for nodeid, est in now.tests.items() if est.flaky}


@dataclasses.dataclass
class Caught:
    """What one way of filling a budget caught, summed over the replayed runs."""

    runs: float = 0.0
    tests: float = 0.0


@dataclasses.dataclass
class BudgetRow:
    budget_s: float
    ours: Caught = dataclasses.field(default_factory=Caught)
    fastest: Caught = dataclasses.field(default_factory=Caught)
    random: Caught = dataclasses.field(default_factory=Caught)
    #: Sum of our plans' predicted times (mean: divided by the runs).
    predicted_s: float = 0.0


@dataclasses.dataclass
class Simulation:
    """The replay's figures, and what they rest on."""

    rows: list[BudgetRow]
    #: Kept runs looked at (in the window), and how many of them passed.
    considered: int = 0
    passed: int = 0
    #: Runs replayed (failing, not skipped), and their failing tests.
    failing_runs: int = 0
    failing_tests: int = 0
    #: Reason -> how many runs were not replayed for it.
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    #: Assumption -> how many replayed runs it was made for.
    assumed: dict[str, int] = dataclasses.field(default_factory=dict)
    #: Runs whose details retention dropped before the history's kept runs.
    dropped: int = 0
    #: Mean predicted time of the whole suite over the replayed runs.
    suite_s: float = 0.0

    @property
    def enough(self) -> bool:
        """Whether there are failing runs enough to give a percentage."""
        return self.failing_runs >= MIN_FAILING_RUNS

    def rate(self, caught: Caught) -> float:
        """Share of failing runs caught, 0 to 1."""
        return caught.runs / self.failing_runs if self.failing_runs else 0.0

    def test_rate(self, caught: Caught) -> float:
        return caught.tests / self.failing_tests if self.failing_tests else 0.0

    def mean_predicted(self, row: BudgetRow) -> float:
        return row.predicted_s / self.failing_runs if self.failing_runs else 0.0


def simulate(
    replay: HistoryReplay,
    budgets: Sequence[float] = DEFAULT_BUDGETS,
    change_of: Optional[ChangeOf] = None,
    *,
    since: Optional[float] = None,
    last: Optional[int] = None,
    baselines: bool = True,
    failing_limit: Optional[int] = None,
) -> Simulation:
    """Replay ``budgets`` over the kept runs (those started at ``since`` or later, or the
    ``last`` N) that had failing tests; ``failing_limit``: only the newest that many of those."""
    result = Simulation([])
    return tally(result, prepare(replay, result, change_of, since, last, failing_limit), budgets)


def tally(
    result: Simulation,
    prepared: Sequence[Prepared],
    budgets: Sequence[float],
    baselines: bool = True,
) -> Simulation:
    """``result`` (from `prepare`) with a row per budget counted over the ``prepared`` runs."""
    result = dataclasses.replace(result, rows=[BudgetRow(b) for b in sorted(set(budgets))])
    for p in prepared:
        _count(result, p, baselines)
    return result


@dataclasses.dataclass(frozen=True)
class Prepared:
    """One failing run, ready to be planned for any budget."""

    run: ReplayRun
    failing: frozenset[str]
    planner: BudgetPlanner
    baselines: Baselines
    #: The whole suite's predicted time, as the budget would have predicted it.
    whole_s: float

    def caught(self, budget_s: float) -> tuple[int, float]:
        """How many failing tests the plan for ``budget_s`` runs, and its predicted time."""
        if budget_s >= self.whole_s * (1 - 1e-9):  # everything fits: the plan runs every test
            return len(self.failing), self.whole_s
        planner = self.planner
        chosen = planner.choose(budget_s)
        names = planner.work.nodeids
        return sum(1 for t in chosen if names[t] in self.failing), planner.predict(chosen)


def prepare(
    replay: HistoryReplay,
    result: Simulation,
    change_of: Optional[ChangeOf] = None,
    since: Optional[float] = None,
    last: Optional[int] = None,
    failing_limit: Optional[int] = None,
) -> list[Prepared]:
    """The failing runs to replay, each with its planner; what runs count, are skipped and
    why, and what was assumed, go into ``result``."""
    window = [r for r in replay.runs if since is None or r.started_at >= since]
    if last is not None:
        window = window[-last:] if last > 0 else []
    result.considered, result.dropped = len(window), replay.dropped
    excluded = excluded_tests(replay.now)
    chosen: list[tuple[ReplayRun, set[str]]] = []
    for run in window:
        failing = run.failing - excluded
        reason = _skip_reason(run, failing)
        if reason is None and not run.failing:
            result.passed += 1
            continue
        if reason is None and run.index == 0:
            reason = SKIP_FIRST
        if reason is not None:
            result.skipped[reason] = result.skipped.get(reason, 0) + 1
            continue
        chosen.append((run, failing))
    if failing_limit is not None and len(chosen) > failing_limit:
        result.skipped[SKIP_OLDER] = len(chosen) - failing_limit
        chosen = chosen[len(chosen) - failing_limit :]
    prepared = []
    models: dict[tuple[str, ...], _Shared] = {}
    for run, failing in chosen:
        prepared.append(_prepare(replay, run, failing, change_of, result, models))
        result.failing_runs += 1
        result.failing_tests += len(failing)
        result.suite_s += (prepared[-1].whole_s - result.suite_s) / result.failing_runs
    return prepared


def _skip_reason(run: ReplayRun, failing: set[str]) -> Optional[str]:
    """Why ``run`` is not replayed (None: it is, if it failed)."""
    if run.exit_status not in (None, 0, 1, 5):
        return SKIP_INTERRUPTED
    if run.budget:
        return SKIP_BUDGET
    if run.shard is not None:
        return SKIP_SHARD
    if any(a == "--feedback-select" for a in run.args):
        return SKIP_SELECT
    if run.failing and not failing:
        return SKIP_FLAKY
    return None


@dataclasses.dataclass
class _Shared:
    """What runs of the same tests share: the cost model, the baselines, and the planner of
    the first such run with the tests whose facts were its own (`BudgetPlanner.updated`)."""

    model: CostModel
    baselines: Baselines
    planner: Optional[BudgetPlanner] = None
    own_facts: frozenset[str] = frozenset()


def _prepare(
    replay: HistoryReplay,
    run: ReplayRun,
    failing: set[str],
    change_of: Optional[ChangeOf],
    result: Simulation,
    models: dict[tuple[str, ...], _Shared],
) -> Prepared:
    nodeids = replay.tests_of(run)
    estimates, since = replay.estimates_before(run)
    change = change_of(run, replay.runs[run.index - 1], estimates, nodeids) if change_of else None
    if change is not None and change.assumed is not None:
        result.assumed[change.assumed] = result.assumed.get(change.assumed, 0) + 1
    affected = change.affected if change is not None else None
    lines = change.changed_lines if change is not None else {}
    named = change.affinity if change is not None else {}
    # Runs of the same tests cost the same (durations are today's estimates, `history.replay`),
    # tests new at the time aside: one cost model for them all.
    key = (*nodeids, "", *sorted(n for n in nodeids if n not in estimates))
    shared = models.get(key)
    if shared is None:
        model = cost_model(estimates, nodeids)
        shared = models[key] = _Shared(model, Baselines(model))
    # The tests whose facts differ from what the history says of them now, unchanged and
    # untouched: the others' candidates are the same in every run.
    now = replay.now.tests
    own_facts = frozenset(
        n
        for n in nodeids
        if estimates.tests.get(n) is not now.get(n) or since.get(n, 0) or n in lines or n in named
    ) | (affected or frozenset())
    if shared.planner is None:
        candidates = candidates_for(nodeids, estimates, since, affected, lines, named)
        planner = BudgetPlanner(
            candidates, estimates, affected_known=affected is not None, model=shared.model
        )
        shared.planner, shared.own_facts = planner, own_facts
    else:
        changed = sorted(own_facts | shared.own_facts)
        candidates = candidates_for(changed, estimates, since, affected, lines, named)
        planner = shared.planner.updated(candidates, affected_known=affected is not None)
    whole_s = planner.predict(range(len(planner.work)))
    return Prepared(run, frozenset(failing), planner, shared.baselines, whole_s)


def _count(result: Simulation, prepared: Prepared, baselines: bool) -> None:
    index = {n: t for t, n in enumerate(prepared.planner.work.nodeids)}
    targets = [index[n] for n in prepared.failing if n in index]
    for row in result.rows:
        hit, predicted = prepared.caught(row.budget_s)
        row.ours.runs += hit > 0
        row.ours.tests += hit
        row.predicted_s += predicted
        if baselines:
            fast = prepared.baselines.fastest(targets, row.budget_s)
            row.fastest.runs += fast > 0
            row.fastest.tests += fast
            chance, tests = prepared.baselines.random(len(targets), row.budget_s)
            row.random.runs += chance
            row.random.tests += tests


#: Shares of the whole suite's predicted time `confidence_budget` tries.
LADDER = (0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def confidence_budget(
    replay: HistoryReplay,
    target: float,
    change_of: Optional[ChangeOf] = None,
    *,
    failing_limit: Optional[int] = None,
) -> tuple[Optional[float], Simulation]:
    """The smallest budget of a ladder (`LADDER`: shares of the whole suite's predicted time)
    whose replayed catch rate reaches ``target`` (0 to 1), and the simulation at it; None and
    what the runs were when there are too few failing runs."""
    base = Simulation([])
    prepared = prepare(replay, base, change_of, failing_limit=failing_limit)
    if not base.enough:
        return None, base
    # The top of the ladder runs every test of every replayed run: it catches them all.
    top = math.ceil(max(p.whole_s for p in prepared))
    ladder = sorted({max(1.0, round(base.suite_s * share)) for share in LADDER if share < 1})
    ladder = [b for b in ladder if b < top] + [top]
    # At the whole suite's time every failing run is caught; the catch rate grows with the
    # budget: bisect the ladder.
    lo, hi = 0, len(ladder) - 1
    best = ladder[-1]
    while lo <= hi:
        mid = (lo + hi) // 2
        caught = sum(p.caught(ladder[mid])[0] > 0 for p in prepared)
        if caught >= target * len(prepared):
            best, hi = ladder[mid], mid - 1
        else:
            lo = mid + 1
    return best, tally(base, prepared, [best], baselines=False)
