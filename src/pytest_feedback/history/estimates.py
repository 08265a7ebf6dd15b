"""Expected durations, failure rates, flakiness and trends, as read from a history.

`Estimates` is the one object every planner and report reads durations through; the store reads
it (`reads.py`) from the summaries it wrote with each run (`summaries.py`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Optional

from pytest_feedback.history.records import test_file
from pytest_feedback.history.summaries import is_slowed_down, median


def class_prefix(nodeid: str) -> str:
    """``a.py::TestX::test_y[1]`` -> ``a.py::TestX``; a module-level test -> its file."""
    base = nodeid.split("[", 1)[0]
    parts = base.split("::")
    return "::".join(parts[:-1]) if len(parts) > 2 else parts[0]


def instance_key(scope: str, nodeid: str) -> str:
    """Which set-up of a fixture of ``scope`` the test ``nodeid`` shares with others."""
    if scope == "module":
        return test_file(nodeid)
    if scope == "class":
        return class_prefix(nodeid)
    return ""  # session and package: once per process


@dataclasses.dataclass(frozen=True)
class TestEstimate:
    nodeid: str
    estimate_s: float
    setup_s: float
    call_s: float
    teardown_s: float
    runs: int
    fail_rate: float
    flaky: bool
    slowdown: float
    last_outcome: Optional[str]

    __test__ = False

    @property
    def slowed_down(self) -> bool:
        """Recent runs are significantly slower than the test's history (`SLOWDOWN_RATIO`)."""
        return is_slowed_down(self.slowdown)


@dataclasses.dataclass(frozen=True)
class FixtureEstimate:
    name: str
    scope: str
    location: str
    setup_s: float
    teardown_s: float
    executions_per_run: float
    used_by: int

    @property
    def cost_s(self) -> float:
        """Seconds one execution costs (set-up plus tear-down)."""
        return self.setup_s + self.teardown_s

    @property
    def cost_per_run_s(self) -> float:
        return self.cost_s * self.executions_per_run


class Estimates:
    """Expected durations of tests and fixtures, read once from the history.

    A test never seen gets the median estimate of its file's tests, then of the suite's.
    """

    def __init__(
        self,
        tests: dict[str, TestEstimate],
        fixtures: Sequence[FixtureEstimate] = (),
        uses: Optional[dict[str, list[int]]] = None,
        startup_s: float = 0.0,
        per_test_s: float = 0.0,
        xdist_overhead: Optional[dict[int, float]] = None,
        session_end_s: float = 0.0,
        pace: float = 1.0,
        exit_s: float = 0.0,
        budget_end_s: Optional[float] = None,
        budget_work_s: float = 0.0,
    ) -> None:
        self.tests = tests
        self.fixtures = list(fixtures)
        #: Per test node id, indexes into `fixtures` of the fixtures it requests.
        self.uses = uses or {}
        #: Per-process start-up (collection) seconds, a median of recent runs.
        self.startup_s = startup_s
        #: Seconds pytest spends per test outside the test's phases (hooks, reporting); planners
        #: add it to every test of a process.
        self.per_test_s = per_test_s
        #: Per xdist worker count, the seconds a run takes beyond its busiest worker (bring-up).
        self.xdist_overhead = xdist_overhead or {}
        #: Seconds a serial run of the whole suite spends after its test loop (a plugin's
        #: session-end work, session fixtures' tear-down), a median of recent runs.
        self.session_end_s = session_end_s
        #: How long recent serial budget runs' test loops took, per second the estimates planned
        #: for their tests (`budget_pace`): 1.0 without any. Test times depend on what runs
        #: before them and on the machine, and a budget run is not the full run the history
        #: mostly holds; this is the correction a budget learns from its own runs.
        self.pace = pace
        #: Seconds those runs spent after their test loop (session end), median; None without
        #: any. A full run's session end is no guide to a subset's: pytest-benchmark's summary
        #: of its benchmarks, say, is paid only by runs that ran them.
        self.budget_end_s = budget_end_s
        #: The work those runs' session end followed: what the estimates planned for their tests
        #: (uncalibrated), median. Beyond it the full runs' share of the session end still counts.
        self.budget_work_s = budget_work_s
        #: Seconds from the end of a recorded budget run to its process's exit (interpreter
        #: exit, atexit handlers), timed from outside (`exitwatch`): median of recent ones.
        self.exit_s = exit_s
        by_file: dict[str, list[float]] = {}
        for est in tests.values():
            by_file.setdefault(test_file(est.nodeid), []).append(est.estimate_s)
        self._file_median = {f: median(v) for f, v in by_file.items()}
        self._suite_median = median(e.estimate_s for e in tests.values())

    def __contains__(self, nodeid: str) -> bool:
        return nodeid in self.tests

    def duration(self, nodeid: str) -> float:
        """Expected own seconds of a test: its history, else its file's, else the suite's."""
        est = self.tests.get(nodeid)
        if est is not None:
            return est.estimate_s
        return self._file_median.get(test_file(nodeid), self._suite_median)

    def source(self, nodeid: str) -> str:
        """Where `duration` came from: ``history``, ``file`` or ``suite``."""
        if nodeid in self.tests:
            return "history"
        return "file" if test_file(nodeid) in self._file_median else "suite"

    def bringup_s(self, workers: int) -> float:
        """Seconds an xdist run on ``workers`` takes beyond its busiest worker's work, from runs
        with that many workers, else the largest seen with any; 0 without xdist or history."""
        if workers <= 1 or not self.xdist_overhead:
            return 0.0
        found = self.xdist_overhead.get(workers)
        return found if found is not None else max(self.xdist_overhead.values())

    def total(self, nodeids: Iterable[str]) -> float:
        return sum(self.duration(n) for n in nodeids)

    def run_cost(self, nodeids: Iterable[str]) -> float:
        """Expected seconds of running ``nodeids`` in one process: their own costs, pytest's
        per-test overhead and each wider-scope fixture instance they set up, once
        (docs/contract.md, "Cost model"); the start-up is not included."""
        total = 0.0
        instances: set[tuple[int, str]] = set()
        for nodeid in nodeids:
            total += max(0.0, self.duration(nodeid)) + self.per_test_s
            for index in self.uses.get(nodeid, ()):
                fixture = self.fixtures[index]
                if fixture.scope != "function":
                    instances.add((index, instance_key(fixture.scope, nodeid)))
        return total + sum(self.fixtures[i].cost_s for i, _ in instances)


#: How many recent budget runs calibrate the next one, and the widest correction they may make.
PACE_RUNS = 5
PACE_LIMITS = (0.25, 4.0)


def budget_pace(runs: Iterable[tuple[float, float]]) -> float:
    """The calibration of budget predictions from recent serial budget runs.

    ``runs``: (seconds a run's test loop took, seconds the estimates planned for the tests it
    started). The median of the runs' ratios, so that one odd run (a
    failing one, a busy machine) does not steer the next ones; within `PACE_LIMITS`; 1.0 without
    a run.
    """
    ratios = [took / planned for took, planned in runs if planned > 0 and took >= 0]
    if not ratios:
        return 1.0
    low, high = PACE_LIMITS
    return min(high, max(low, median(ratios)))
