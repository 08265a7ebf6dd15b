"""Expected durations, failure rates, flakiness and trends, from recorded history.

Two layers: pure functions that summarise a test's (or fixture's) recent samples — the store calls
them when it writes a run, so that reading estimates costs one table scan — and `Estimates`, the one
object every planner and report reads durations through.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Optional

from pytest_feedback.history.records import FAILING, test_file

if TYPE_CHECKING:
    from pytest_feedback.history.store import Store

#: Samples kept per test and per fixture (the trend and the estimate window come from these).
RECENT_KEEP = 20
#: How many of the most recent samples the estimate looks at.
ESTIMATE_WINDOW = 10
#: Outcome changes (pass <-> fail) within the recent samples that make a test flaky on their own.
FLIP_THRESHOLD = 3
#: A test is "slowed down" when the median of its last `SLOW_RECENT` runs is at least this many
#: times the median of the (up to `ESTIMATE_WINDOW`) runs before them.  Run-to-run noise of +-20%
#: can at worst make that ratio 1.2 / 0.8 = 1.5, so it never flags; a real 3x change (itself
#: noisy: 2.4 / 1.2 = 2.0 at worst) flags as soon as two of the last three runs are slow.
SLOWDOWN_RATIO = 1.8
#: A median of three: one slow run (a busy machine) is not a slow-down, two in a row are.
SLOW_RECENT = 3
#: Runs before the recent ones needed to judge at all.
SLOW_BASELINE_MIN = 3
#: Changes below this many seconds are noise whatever the ratio.
SLOWDOWN_MIN_DELTA_S = 0.05


@dataclasses.dataclass(frozen=True)
class Sample:
    """One run of one test, as kept in the store's recent list."""

    run_id: int
    outcome: str
    own_s: float
    setup_s: float
    call_s: float
    teardown_s: float
    #: The git commit of a run on a clean tree; None when unknown or the tree had edits.
    commit: Optional[str] = None

    def to_row(self) -> list[object]:
        return [
            self.run_id,
            self.outcome,
            round(self.own_s, 6),
            round(self.setup_s, 6),
            round(self.call_s, 6),
            round(self.teardown_s, 6),
            self.commit,
        ]

    @classmethod
    def from_row(cls, row: Sequence[object]) -> Sample:
        run_id, outcome, own, setup, call, teardown, commit = row
        return cls(
            int(run_id),  # type: ignore[call-overload]
            str(outcome),
            float(own),  # type: ignore[arg-type]
            float(setup),  # type: ignore[arg-type]
            float(call),  # type: ignore[arg-type]
            float(teardown),  # type: ignore[arg-type]
            None if commit is None else str(commit),
        )


@dataclasses.dataclass(frozen=True)
class TestSummary:
    """What the estimates say of one test, computed from its recent samples."""

    estimate_s: float
    setup_s: float
    call_s: float
    teardown_s: float
    fail_rate: float
    flaky: bool
    #: Median of the last runs divided by the median before them (1.0 when unknown).
    slowdown: float

    __test__ = False


def median(values: Iterable[float]) -> float:
    data = sorted(values)
    n = len(data)
    if not n:
        return 0.0
    mid = n // 2
    return data[mid] if n % 2 else (data[mid - 1] + data[mid]) / 2


def summarise_test(samples: Sequence[Sample]) -> TestSummary:
    """Summarise a test's samples, oldest first. Robust to outliers: medians throughout."""
    return summarise_rows([s.to_row() for s in samples])


# Positions in a stored sample row: [run_id, outcome, own_s, setup_s, call_s, teardown_s, commit].
_OUTCOME, _OWN, _SETUP, _CALL, _TEARDOWN, _COMMIT = 1, 2, 3, 4, 5, 6


def summarise_rows(rows: Sequence[Sequence[Any]]) -> TestSummary:
    """`summarise_test` over stored sample rows, without building objects."""
    return TestSummary(*summary_values(rows))


def summary_values(
    rows: Sequence[Sequence[Any]],
) -> tuple[float, float, float, float, float, bool, float]:
    """The fields of `TestSummary`, in order, as a plain tuple (the store's hot path: it runs
    for every test of every recorded run)."""
    judged = [r for r in rows if r[_OUTCOME] != "skipped"]
    window = (judged or rows)[-ESTIMATE_WINDOW:]
    _, _, own, setup, call, teardown, _ = zip(*window)
    failures = 0
    for r in judged:
        if r[_OUTCOME] in FAILING:
            failures += 1
    return (
        median(own),
        median(setup),
        median(call),
        median(teardown),
        failures / len(judged) if judged else 0.0,
        _flaky_rows(judged) if failures else False,
        _slowdown_values([r[_OWN] for r in (judged or rows)])
        if len(rows) >= SLOW_RECENT + SLOW_BASELINE_MIN
        else 1.0,
    )


def is_flaky(samples: Sequence[Sample]) -> bool:
    """Passed and failed without a code change between.

    Either the same clean commit saw both outcomes, or the outcome flip-flopped at least
    `FLIP_THRESHOLD` times in the recent samples (a fix-then-pass while editing is one flip).
    Skipped samples are not judged.
    """
    return _flaky_rows([s.to_row() for s in samples if s.outcome != "skipped"])


def _flaky_rows(rows: Sequence[Sequence[Any]]) -> bool:
    by_commit: dict[str, set[bool]] = {}
    flips = 0
    previous: Optional[bool] = None
    for r in rows:
        failed = r[_OUTCOME] in FAILING
        if r[_COMMIT] is not None:
            by_commit.setdefault(r[_COMMIT], set()).add(failed)
        if previous is not None and failed != previous:
            flips += 1
        previous = failed
    return flips >= FLIP_THRESHOLD or any(len(seen) == 2 for seen in by_commit.values())


def slowdown(samples: Sequence[Sample]) -> float:
    """How much slower the last `SLOW_RECENT` runs are than the ones before (1.0: no change).

    Needs `SLOW_BASELINE_MIN` earlier samples; a difference under `SLOWDOWN_MIN_DELTA_S` is noise.
    """
    return _slowdown_values([s.own_s for s in samples])


def slowdown_medians(samples: Sequence[Sample]) -> Optional[tuple[float, float]]:
    """Median own seconds before the last `SLOW_RECENT` runs and of them; None: too few runs."""
    return _slowdown_medians([s.own_s for s in samples])


def _slowdown_medians(own: Sequence[float]) -> Optional[tuple[float, float]]:
    if len(own) < SLOW_RECENT + SLOW_BASELINE_MIN:
        return None
    return median(own[:-SLOW_RECENT][-ESTIMATE_WINDOW:]), median(own[-SLOW_RECENT:])


def _slowdown_values(own: Sequence[float]) -> float:
    medians = _slowdown_medians(own)
    if medians is None:
        return 1.0
    before, recent = medians
    if recent - before < SLOWDOWN_MIN_DELTA_S:
        return 1.0
    return recent / before if before > 0 else float("inf")


def is_slowed_down(ratio: float) -> bool:
    """Whether a `slowdown` ratio is a real change rather than noise."""
    return ratio >= SLOWDOWN_RATIO


@dataclasses.dataclass(frozen=True)
class FixtureSample:
    """One run's executions of one fixture."""

    run_id: int
    executions: int
    setup_s: float
    teardown_s: float

    def to_row(self) -> list[object]:
        return [self.run_id, self.executions, round(self.setup_s, 6), round(self.teardown_s, 6)]

    @classmethod
    def from_row(cls, row: Sequence[object]) -> FixtureSample:
        run_id, executions, setup, teardown = row
        return cls(int(run_id), int(executions), float(setup), float(teardown))  # type: ignore[call-overload, arg-type]


@dataclasses.dataclass(frozen=True)
class FixtureSummary:
    setup_s: float
    teardown_s: float
    executions_per_run: float


def summarise_fixture(samples: Sequence[FixtureSample]) -> FixtureSummary:
    """Per-execution set-up and tear-down seconds, and executions per run (medians)."""
    window = [s for s in samples if s.executions > 0][-ESTIMATE_WINDOW:]
    return FixtureSummary(
        setup_s=median(s.setup_s / s.executions for s in window),
        teardown_s=median(s.teardown_s / s.executions for s in window),
        executions_per_run=median(s.executions for s in window),
    )


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

    @classmethod
    def load(cls, store: Store) -> Estimates:
        return store.load_estimates()

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
