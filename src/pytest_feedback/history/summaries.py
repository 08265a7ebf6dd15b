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
#: Outcome changes (pass <-> fail) within the recent samples that make a test "unstable" when
#: there is no evidence that it is flaky (`is_unstable`).
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
    mark: Optional[str] = None,
    mapped: bool = False,
) -> list[object]:
    """A sample as the store keeps it in a test's recent list (`Sample.to_row`); the store's
    write calls it directly, without a `Sample` per test. ``mark`` (see `Sample.mark`) is
    stored as an eighth element only when there is one, ``mapped`` as a ninth (1) only when
    true (the eighth is then null when there is no mark)."""
    row: list[object] = [
        run_id,
        outcome,
        round(own_s, 6),
        round(setup_s, 6),
        round(call_s, 6),
        round(teardown_s, 6),
        commit,
    ]
    if mark or mapped:
        row.append(mark or None)
    if mapped:
        row.append(1)
    return row


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
    #: The flakiness evidence this run gave (docs/history-schema.md, "test_stats.recent"): it
    #: starts with `BOTH_IN_RUN` when the test both failed and passed within the run (a rerun,
    #: a repeat); the rest is the fingerprint of what the test reaches (`REACH_MARK`, from the
    #: coverage map) when one was taken. None: neither.
    mark: Optional[str] = None
    #: The run measured coverage (`RunRecord.mapped`): its durations are slowed by the
    #: measurement, and estimates prefer the samples of runs that did not (`summary_values`).
    mapped: bool = False

    def to_row(self) -> list[object]:
        return sample_row(
            self.run_id,
            self.outcome,
            self.own_s,
            self.setup_s,
            self.call_s,
            self.teardown_s,
            self.commit,
            self.mark,
            self.mapped,
        )

    @classmethod
    def from_row(cls, row: Sequence[object]) -> Sample:
        run_id, outcome, own, setup, call, teardown, commit = row[:7]
        mark = row[7] if len(row) > 7 else None
        return cls(
            int(run_id),  # type: ignore[call-overload]
            str(outcome),
            float(own),  # type: ignore[arg-type]
            float(setup),  # type: ignore[arg-type]
            float(call),  # type: ignore[arg-type]
            float(teardown),  # type: ignore[arg-type]
            None if commit is None else str(commit),
            str(mark) if mark else None,
            bool(row[_MAPPED]) if len(row) > _MAPPED else False,
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


# Positions in a stored sample row:
# [run_id, outcome, own_s, setup_s, call_s, teardown_s, commit, optional mark, optional mapped].
_OUTCOME, _OWN, _SETUP, _CALL, _TEARDOWN, _COMMIT, _MARK, _MAPPED = 1, 2, 3, 4, 5, 6, 7, 8


def summarise_rows(rows: Sequence[Sequence[Any]]) -> TestSummary:
    """`summarise_test` over stored sample rows, without building objects."""
    return TestSummary(*summary_values(rows))


def summary_values(
    rows: Sequence[Sequence[Any]], in_run: Optional[bool] = None, mapped: Optional[bool] = None
) -> tuple[float, float, float, float, float, bool, float]:
    """The fields of `TestSummary`, in order, as a plain tuple (the store's hot path: it runs
    for every test of every recorded run).

    ``in_run``: whether a sample may be marked `BOTH_IN_RUN` (False: none is; None: look), so
    that a test whose runs all passed in the end is judged only when one may be. ``mapped``:
    whether a sample may come from a run that measured coverage (None: look); the durations
    are then those of the other samples, when there are any (coverage slows a run down).
    """
    outcomes = [r[_OUTCOME] for r in rows]
    judged = rows
    if "skipped" in outcomes:
        judged = [r for r in rows if r[_OUTCOME] != "skipped"]
        outcomes = [r[_OUTCOME] for r in judged]
    timed = judged or rows
    if mapped is None or mapped:
        unmeasured = [r for r in timed if len(r) <= _MAPPED or not r[_MAPPED]]
        timed = unmeasured or timed
    # Columns of the timed samples, oldest first; a sample may carry an eighth and ninth
    # element (its mark, mapped), which zip leaves out unless all do.
    _, _, own, setup, call, teardown = tuple(zip(*timed))[:6]
    failures = sum(map(outcomes.count, FAILING))
    return (
        _median(own[-ESTIMATE_WINDOW:]),
        _median(setup[-ESTIMATE_WINDOW:]),
        _median(call[-ESTIMATE_WINDOW:]),
        _median(teardown[-ESTIMATE_WINDOW:]),
        failures / len(judged) if judged else 0.0,
        flaky_evidence(judged) is not None if failures or _may_be_marked(rows, in_run) else False,
        _slowdown_values(own) if len(own) >= SLOW_RECENT + SLOW_BASELINE_MIN else 1.0,
    )


def _may_be_marked(rows: Sequence[Sequence[Any]], in_run: Optional[bool]) -> bool:
    return max(map(len, rows)) > _MARK if in_run is None else in_run


def _median(values: Sequence[float]) -> float:
    """`median` of a non-empty sequence."""
    data = sorted(values)
    n = len(data)
    mid = n // 2
    return data[mid] if n % 2 else (data[mid - 1] + data[mid]) / 2


#: A sample mark's first character when the test both failed and passed within that run.
BOTH_IN_RUN = "~"


@dataclasses.dataclass(frozen=True)
class Evidence:
    """Why a test is flaky: both outcomes where the code it runs did not change.

    ``kind``: ``run`` (it failed and passed within one run: a rerun or a repeat; ``runs`` is
    that run), ``commit`` (a failing and a passing run on the same clean commit) or ``map``
    (a failing and a passing run while none of the files the coverage map says it reaches
    changed). ``runs``: the run ids, the failing one first.
    """

    kind: str
    runs: tuple[int, ...]
    commit: Optional[str] = None

    def describe(self) -> str:
        """One phrase for the report and `why`."""
        runs = ", ".join(str(r) for r in self.runs)
        if self.kind == "run":
            return f"failed and passed within run {runs} (a rerun or repeat)"
        if self.kind == "commit":
            return f"failed and passed on clean commit {str(self.commit)[:12]} (runs {runs})"
        return f"failed and passed with nothing it reaches changed (coverage map; runs {runs})"


def flaky_evidence(rows: Sequence[Sequence[Any]]) -> Optional[Evidence]:
    """The newest evidence that a test passed and failed with its code unchanged, or None.

    Rows are stored samples, oldest first, skipped ones left out. Evidence is one of: both
    outcomes within one run (a sample marked `BOTH_IN_RUN`); a failing and a passing sample
    of the same clean commit; a failing and a passing sample with the same reach fingerprint
    (none of the files the test reaches changed between them). Outcome flips across
    different commits without a map are never evidence (see `is_unstable`).
    """
    found: Optional[Evidence] = None
    # key -> (run id of the newest failing sample, of the newest passing one)
    seen: dict[tuple[str, str], list[Optional[int]]] = {}
    for r in rows:
        failed = r[_OUTCOME] in FAILING
        run_id = int(r[0])
        mark = r[_MARK] if len(r) > _MARK else None
        if mark and mark[0] == BOTH_IN_RUN:
            found = Evidence("run", (run_id,))
        keys = []
        if r[_COMMIT] is not None:
            keys.append(("commit", str(r[_COMMIT])))
        if mark and mark.lstrip(BOTH_IN_RUN):
            keys.append(("map", mark.lstrip(BOTH_IN_RUN)))
        for key in keys:
            pair = seen.setdefault(key, [None, None])
            pair[0 if failed else 1] = run_id
            fail_run, pass_run = pair
            if fail_run is not None and pass_run is not None:
                commit = key[1] if key[0] == "commit" else None
                found = Evidence(key[0], (fail_run, pass_run), commit)
    return found


def is_unstable(rows: Sequence[Sequence[Any]]) -> bool:
    """Outcome flips (pass <-> fail) at least `FLIP_THRESHOLD` times in the samples, with no
    evidence of flakiness: a test that keeps breaking and being fixed across changes, or a
    flaky one whose runs cannot show it (dirty trees, no map). Kept apart from flaky."""
    judged = [r for r in rows if r[_OUTCOME] != "skipped"]
    flips = 0
    previous: Optional[bool] = None
    for r in judged:
        failed = r[_OUTCOME] in FAILING
        if previous is not None and failed != previous:
            flips += 1
        previous = failed
    return flips >= FLIP_THRESHOLD and flaky_evidence(judged) is None


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
