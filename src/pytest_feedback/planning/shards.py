"""Shard plans and worker-count advice: the public face of `planners`.

``plan_shards`` splits node ids into N disjoint shards under the cost model; ``shard_filter``
is what ``--feedback-shard K/N`` applies to pytest's items (other branches may call it with their
own item list); ``worker_curve`` predicts the makespan for 1..N processes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Optional, TypeVar

from pytest_feedback.durations import format_duration
from pytest_feedback.errors import ConfigError
from pytest_feedback.planning.planners import PLANNERS, Workload
from pytest_feedback.planning.planners.model import fill_empty_shards

if TYPE_CHECKING:
    from pytest_feedback.history.estimates import Estimates

DEFAULT_PLANNER = "local-search"
#: Adding a process "stops paying" once it shortens the predicted makespan by less than this.
WORTHWHILE_GAIN = 0.05

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    estimate_s: float
    tests: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ShardPlan:
    n: int
    shards: tuple[Shard, ...]
    makespan_s: float
    lower_bound_s: float
    planner: str

    def shard_of(self) -> dict[str, int]:
        """Node id -> 1-based shard index."""
        return {nodeid: shard.index for shard in self.shards for nodeid in shard.tests}

    def to_json(self) -> dict[str, object]:
        """The stable ``shards N --format json`` document (docs/contract.md, "JSON formats";
        version 1)."""
        return {
            "version": 1,
            "n": self.n,
            "lower_bound_s": round(self.lower_bound_s, 3),
            "makespan_s": round(self.makespan_s, 3),
            "planner": self.planner,
            "shards": [
                {"index": s.index, "estimate_s": round(s.estimate_s, 3), "tests": list(s.tests)}
                for s in self.shards
            ],
        }


def plan_workload(work: Workload, n: int, planner: str = DEFAULT_PLANNER) -> ShardPlan:
    """Place ``work`` on ``n`` shards; ``n`` must be at least 1."""
    if n < 1:
        raise ConfigError(f"shard count: {n} is not a positive number of shards")
    try:
        strategy = PLANNERS[planner]
    except KeyError:
        raise ConfigError(
            f"planner: {planner!r} is unknown; choose one of {', '.join(PLANNERS)}"
        ) from None
    assign = strategy.plan(work, n)
    fill_empty_shards(assign)
    shards = tuple(
        Shard(i + 1, work.cost(tests) if tests else 0.0, tuple(work.nodeids[t] for t in tests))
        for i, tests in enumerate(assign.shards())
    )
    return ShardPlan(
        n=n,
        shards=shards,
        makespan_s=max(s.estimate_s for s in shards),
        lower_bound_s=work.lower_bound(n),
        planner=planner,
    )


def plan_shards(
    estimates: Estimates, nodeids: Iterable[str], n: int, planner: str = DEFAULT_PLANNER
) -> ShardPlan:
    """Split ``nodeids`` into ``n`` disjoint shards minimising the predicted makespan."""
    return plan_workload(Workload.build(estimates, nodeids), n, planner)


def shard_filter(
    items: Sequence[T],
    nodeid_of: Callable[[T], str],
    estimates: Estimates,
    k: int,
    n: int,
) -> tuple[list[T], list[T], ShardPlan]:
    """Split ``items`` into (shard ``k`` of ``n``, the rest), keeping their order, and the plan."""
    plan = plan_shards(estimates, (nodeid_of(i) for i in items), n)
    mine = set(plan.shards[k - 1].tests)
    keep = [i for i in items if nodeid_of(i) in mine]
    drop = [i for i in items if nodeid_of(i) not in mine]
    return keep, drop, plan


@dataclasses.dataclass(frozen=True)
class CurvePoint:
    workers: int
    makespan_s: float
    lower_bound_s: float


@dataclasses.dataclass(frozen=True)
class WorkerAdvice:
    target_s: Optional[float]
    #: Smallest count whose makespan meets the target; None when none of the curve does.
    recommended: Optional[int]
    #: Beyond this count one more process shortens the makespan by less than WORTHWHILE_GAIN.
    stops_paying: int
    curve: tuple[CurvePoint, ...]

    def to_json(self) -> dict[str, object]:
        """The stable ``workers --format json`` document (docs/contract.md, "JSON formats";
        version 1)."""
        return {
            "version": 1,
            "target_s": self.target_s,
            "recommended": self.recommended,
            "stops_paying": self.stops_paying,
            "curve": [
                {
                    "workers": p.workers,
                    "makespan_s": round(p.makespan_s, 3),
                    "lower_bound_s": round(p.lower_bound_s, 3),
                }
                for p in self.curve
            ],
        }


def worker_curve(
    estimates: Estimates,
    nodeids: Iterable[str],
    target_s: Optional[float] = None,
    max_workers: int = 32,
) -> WorkerAdvice:
    """Predicted makespan for 1..max_workers processes, and the count to use."""
    work = Workload.build(estimates, nodeids)
    limit = max(1, min(max_workers, len(work) or 1))
    curve = []
    for n in range(1, limit + 1):
        plan = plan_workload(work, n)
        curve.append(CurvePoint(n, plan.makespan_s, plan.lower_bound_s))
    recommended = None
    if target_s is not None:
        recommended = next((p.workers for p in curve if p.makespan_s <= target_s), None)
    stops = curve[-1].workers
    for here, following in zip(curve, curve[1:]):
        if following.makespan_s > here.makespan_s * (1 - WORTHWHILE_GAIN):
            stops = here.workers
            break
    return WorkerAdvice(target_s, recommended, stops, tuple(curve))


def report_hint(estimates: Estimates, workers: Optional[int]) -> Optional[str]:
    """The report's sentence on shards: what N shards would take (N: ``workers``, the last run's
    xdist workers, or 4), next to one process."""
    n = workers if workers and workers > 1 else 4
    work = Workload.build(estimates, estimates.tests)
    if len(work) < n:
        return None
    plan = plan_workload(work, n)
    serial = plan_workload(work, 1).makespan_s
    return (
        f"{n} shards: the slowest takes {format_duration(plan.makespan_s)} instead of "
        f"{format_duration(serial)} on one (`pytest-feedback shards {n}`)"
    )
