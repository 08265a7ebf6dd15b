"""What a budget run costs: the tests' calibrated costs, the start-up and the session end
(`CostModel`, `cost_model`), and the wall time a set of tests is predicted to take (`predict`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Optional

from pytest_feedback.planning.planners import Workload
from pytest_feedback.planning.shards import plan_workload

if TYPE_CHECKING:
    from pytest_feedback.history.estimates import Estimates


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
