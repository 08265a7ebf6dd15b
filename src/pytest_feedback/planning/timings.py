"""Predicted against measured time for each shard or xdist worker of a finished run.

The prediction applies the cost model to the tests a process actually ran (so it stays fair when
workers took work from each other); the measurement adds up the process's start-up, its tests'
phases and the fixture tear-downs that happened after its last test.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from pytest_feedback.durations import format_duration
from pytest_feedback.planning.planners import Workload

if TYPE_CHECKING:
    from pytest_feedback.history.estimates import Estimates
    from pytest_feedback.history.records import RunRecord

MAIN = "main"


@dataclasses.dataclass(frozen=True)
class ProcessTiming:
    """One process of a run: an xdist worker (``gw0``...) or ``main``."""

    worker: str
    tests: int
    predicted_s: float
    measured_s: float

    @property
    def error(self) -> float:
        """(predicted - measured) / measured; 0 when nothing was measured."""
        return (self.predicted_s - self.measured_s) / self.measured_s if self.measured_s else 0.0


def process_timings(run: RunRecord, estimates: Estimates) -> list[ProcessTiming]:
    """Per process of ``run``, its predicted (from ``estimates``) and measured seconds.

    ``estimates`` must come from the history as it was before ``run``.
    """
    tests: dict[str, list[str]] = {}
    measured: dict[str, float] = {}
    for record in run.tests.values():
        worker = record.worker or MAIN
        tests.setdefault(worker, []).append(record.nodeid)
        measured[worker] = (
            measured.get(worker, 0.0) + record.setup_s + record.call_s + record.teardown_s
        )
    for execution in run.fixtures:
        if execution.teardown_test is None and execution.teardown_s:
            worker = execution.worker or MAIN
            measured[worker] = measured.get(worker, 0.0) + execution.teardown_s
    for worker_record in run.worker_records:
        if worker_record.worker in tests:
            measured[worker_record.worker] += worker_record.collect_s
    out = []
    for worker in sorted(tests, key=lambda w: (len(w), w)):
        work = Workload.build(estimates, tests[worker])
        # The measurement cannot see pytest's own per-test overhead: leave it out of both.
        predicted = work.cost(range(len(work))) - estimates.per_test_s * len(work)
        out.append(ProcessTiming(worker, len(tests[worker]), predicted, measured[worker]))
    return out


def timings_line(timings: list[ProcessTiming]) -> str:
    """One terminal line: ``feedback: predicted/measured per worker: gw0 4.10s/4.32s, ...``."""
    parts = [
        f"{t.worker} {format_duration(t.predicted_s)}/{format_duration(t.measured_s)}"
        for t in timings
    ]
    return "feedback: predicted/measured per worker: " + ", ".join(parts)
