"""What the store writes about each test and fixture with every run: its recent samples and
their summary (expected duration, failure rate, flakiness, slow-down).

Pure functions over a test's (or fixture's) recent samples: the store calls them when it writes a
run, so that reading the estimates (`estimates.py`) costs one table scan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any, Optional

from pytest_feedback.history.records import FAILING

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


def sample_row(
    run_id: int,
    outcome: str,
    own_s: float,
    setup_s: float,
    call_s: float,
    teardown_s: float,
    commit: Optional[str],
) -> list[object]:
    """A sample as the store keeps it in a test's recent list (`Sample.to_row`); the store's
    write calls it directly, without a `Sample` per test."""
    return [
        run_id,
        outcome,
        round(own_s, 6),
        round(setup_s, 6),
        round(call_s, 6),
        round(teardown_s, 6),
        commit,
    ]


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
        return sample_row(
            self.run_id,
            self.outcome,
            self.own_s,
            self.setup_s,
            self.call_s,
            self.teardown_s,
            self.commit,
        )

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
    outcomes = [r[_OUTCOME] for r in rows]
    judged = rows
    if "skipped" in outcomes:
        judged = [r for r in rows if r[_OUTCOME] != "skipped"]
        outcomes = [r[_OUTCOME] for r in judged]
    # Columns of the judged samples (of all when every one was skipped), oldest first.
    _, _, own, setup, call, teardown, _ = zip(*(judged or rows))
    failures = sum(map(outcomes.count, FAILING))
    return (
        _median(own[-ESTIMATE_WINDOW:]),
        _median(setup[-ESTIMATE_WINDOW:]),
        _median(call[-ESTIMATE_WINDOW:]),
        _median(teardown[-ESTIMATE_WINDOW:]),
        failures / len(judged) if judged else 0.0,
        _flaky_rows(judged) if failures else False,
        _slowdown_values(own) if len(rows) >= SLOW_RECENT + SLOW_BASELINE_MIN else 1.0,
    )


def _median(values: Sequence[float]) -> float:
    """`median` of a non-empty sequence."""
    data = sorted(values)
    n = len(data)
    mid = n // 2
    return data[mid] if n % 2 else (data[mid - 1] + data[mid]) / 2


def _flaky_rows(rows: Sequence[Sequence[Any]]) -> bool:
    """Passed and failed without a code change between.

    Either the same clean commit saw both outcomes, or the outcome flip-flopped at least
    `FLIP_THRESHOLD` times in the recent samples (a fix-then-pass while editing is one flip).
    Skipped samples are not judged (the caller leaves them out).
    """
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


def slowdown_medians(samples: Sequence[Sample]) -> Optional[tuple[float, float]]:
    """Median own seconds before the last `SLOW_RECENT` runs and of them; None: too few runs."""
    return _slowdown_medians([s.own_s for s in samples])


def _slowdown_medians(own: Sequence[float]) -> Optional[tuple[float, float]]:
    if len(own) < SLOW_RECENT + SLOW_BASELINE_MIN:
        return None
    return median(own[:-SLOW_RECENT][-ESTIMATE_WINDOW:]), median(own[-SLOW_RECENT:])


def _slowdown_values(own: Sequence[float]) -> float:
    """How much slower the last `SLOW_RECENT` runs are than the ones before (1.0: no change).

    Needs `SLOW_BASELINE_MIN` earlier samples; a difference under `SLOWDOWN_MIN_DELTA_S` is noise.
    """
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
