"""Shard planners: strategies that place a `Workload` on N processes, behind one protocol.

Each strategy lives in its own module and is a pure function of the workload and N, so that every
shard of a CI matrix, and every xdist worker, computes the same plan.
"""

from __future__ import annotations

from typing import Protocol

from pytest_feedback.planning.planners.local_search import LocalSearchPlanner
from pytest_feedback.planning.planners.lpt import LptPlanner
from pytest_feedback.planning.planners.model import Assignment, Workload

__all__ = ["PLANNERS", "Assignment", "LocalSearchPlanner", "LptPlanner", "Planner", "Workload"]


class Planner(Protocol):
    """Places every test of a workload on one of ``n`` shards."""

    name: str

    def plan(self, work: Workload, n: int) -> Assignment: ...


#: Strategies by name; the first is the default.
PLANNERS: dict[str, Planner] = {
    LocalSearchPlanner.name: LocalSearchPlanner(),
    LptPlanner.name: LptPlanner(),
}
