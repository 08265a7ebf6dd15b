"""What the HTML page shows beyond the tables: the runs over time, and the planners' view (a
shard plan and the worker curve). Read from the history by `build_trends` and `build_plans`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Optional

from pytest_feedback.report.allowance import PLANS_S, Allowance

if TYPE_CHECKING:
    from pytest_feedback.history.store import Store

#: Runs the trends show at most (the newest).
TREND_RUNS = 50
#: Worker counts the curve shows (planned with the fast LPT planner: the curve is a shape).
CURVE_WORKERS = tuple(range(1, 9))


@dataclasses.dataclass(frozen=True)
class RunPoint:
    """One recorded run, as the trend charts plot it."""

    run_id: int
    started_at: float
    wall_s: float
    tests: int
    failed: int
    #: Every test's set-up + call + tear-down together.
    test_time_s: float
    #: Failures of tests the history now flags as flaky.
    flaky_failures: int


@dataclasses.dataclass(frozen=True)
class ShardBar:
    index: int
    tests: int
    estimate_s: float


@dataclasses.dataclass(frozen=True)
class Plans:
    """A shard plan for `shards` shards and the predicted makespan per worker count."""

    shards: int
    shard_bars: tuple[ShardBar, ...]
    makespan_s: float
    lower_bound_s: float
    #: (workers, predicted makespan, lower bound) for `CURVE_WORKERS`.
    curve: tuple[tuple[int, float, float], ...]


def build_trends(store: Store, limit: int = TREND_RUNS) -> list[RunPoint]:
    """The newest ``limit`` runs, oldest first."""
    return [
        RunPoint(
            int(run_id),
            float(at),
            float(wall),
            int(tests),
            int(failed),
            float(test_time or 0.0),
            int(flaky or 0),
        )
        for run_id, at, wall, tests, failed, test_time, flaky in store.reads.run_trends(limit)
    ]


def build_plans(
    store: Store, workers: Optional[int], allowance: Optional[Allowance] = None
) -> Optional[Plans]:
    """The plans for the history's tests: ``workers`` shards (the last run's processes; 4 when
    it ran in one) as `pytest-feedback shards` plans them, and the curve for `CURVE_WORKERS`.
    None without tests, or when the report's ``allowance`` has no room for planning them (it
    then names the block)."""
    from pytest_feedback.planning.planners import Workload
    from pytest_feedback.planning.shards import plan_workload

    allowance = allowance or Allowance(store)
    what = "the shard plan and worker curve (`pytest-feedback workers`)"
    if allowance.tests == 0 or not allowance.take(what, PLANS_S):
        return None
    estimates = allowance.estimates()
    work = Workload.build(estimates, sorted(estimates.tests))
    n = workers if workers and workers > 1 else 4
    if len(work) < n:
        return None
    plan = plan_workload(work, n)
    curve = [(w, plan_workload(work, w, "lpt")) for w in CURVE_WORKERS if w <= len(work)]
    return Plans(
        n,
        tuple(ShardBar(s.index, len(s.tests), s.estimate_s) for s in plan.shards),
        plan.makespan_s,
        plan.lower_bound_s,
        tuple((w, p.makespan_s, p.lower_bound_s) for w, p in curve),
    )
