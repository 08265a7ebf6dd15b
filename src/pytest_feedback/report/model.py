"""The report's data: built from the history in one place, rendered by `text`, `markdown`, `json`.

`build_report` is the only code of the report package that queries the store; the renderers
take a `Report` and nothing else, so they can be tested with reports built by hand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Optional

from pytest_feedback.history.estimates import FixtureEstimate, TestEstimate
from pytest_feedback.history.records import test_file
from pytest_feedback.history.store import Store
from pytest_feedback.history.summaries import SLOWDOWN_RATIO, Sample, slowdown_medians
from pytest_feedback.planning.simulate import Simulation
from pytest_feedback.report.advice import report_block
from pytest_feedback.report.allowance import Allowance
from pytest_feedback.report.catches import report_catches
from pytest_feedback.report.flaky import FlakySection, flaky_section
from pytest_feedback.report.hints import planner_hint
from pytest_feedback.report.timeline import Timeline
from pytest_feedback.report.trends import Plans, RunPoint

#: Rows per table unless the caller asks for another number.
DEFAULT_TOP = 10
#: pytest's progress letters, for the outcome trend of flaky tests.
OUTCOME_LETTERS = {
    "passed": ".",
    "failed": "F",
    "error": "E",
    "skipped": "s",
    "xfailed": "x",
    "xpassed": "X",
}


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """One recorded run, as the report describes it."""

    run_id: int
    started_at: float
    wall_s: float
    tests: int
    failed: int
    #: xdist workers; 0 when the run did not use xdist.
    workers: int
    #: Sum of every test's set-up, call and tear-down seconds in this run.
    test_time_s: float
    git_commit: Optional[str] = None
    git_dirty: Optional[bool] = None
    shard: Optional[str] = None
    #: A ``--feedback-budget`` run: the budget, the plan's prediction, and what the run took
    #: from the process's start (to its exit when ``to_exit``, else to the end of the record).
    budget_s: Optional[float] = None
    predicted_s: Optional[float] = None
    took_s: Optional[float] = None
    to_exit: bool = False

    @property
    def processes(self) -> int:
        return max(1, self.workers)

    @property
    def efficiency(self) -> Optional[float]:
        """Test time over the time the processes had (wall x processes); None without a wall."""
        if self.wall_s <= 0:
            return None
        return self.test_time_s / (self.wall_s * self.processes)


@dataclasses.dataclass(frozen=True)
class TestRow:
    """One test in a table: its estimate, this run's time and its recent history."""

    estimate: TestEstimate
    #: Set-up, call and tear-down seconds in the last run; None when that run did not run it.
    last: Optional[tuple[float, float, float]]
    #: Own seconds of the recent runs that ran it, oldest first.
    trend: tuple[float, ...]
    #: Outcomes of the recent runs as pytest's letters (".F.F"), oldest first.
    outcomes: str

    __test__ = False

    #: Median own seconds before the last runs and of the last runs (`estimates.slowdown`);
    #: None when there are too few runs to compare.
    before_s: Optional[float] = None
    recent_s: Optional[float] = None

    @property
    def nodeid(self) -> str:
        return self.estimate.nodeid

    @property
    def last_s(self) -> Optional[float]:
        """Set-up + call + tear-down in the last run (fixtures it triggered included)."""
        return None if self.last is None else sum(self.last)


@dataclasses.dataclass(frozen=True)
class FileRow:
    """A test file: how many tests it holds and their expected seconds together."""

    file: str
    tests: int
    estimate_s: float
    share: float


@dataclasses.dataclass(frozen=True)
class Report:
    """Everything any rendering of the report shows."""

    #: Runs whose details the history holds.
    runs: int
    last_run: Optional[RunSummary]
    #: Tests whose last run is still in the history ("current": deleted tests drop out).
    test_count: int
    #: Sum of the current tests' estimates.
    total_estimate_s: float
    #: Current tests, longest estimate first: all of them, or the first `top` (see
    #: `build_report`'s ``all_tests``).
    tests: list[TestEstimate]
    #: The longest tests with their details (at most `top`). The lists below are complete;
    #: the text and markdown renderers show their first `top` rows.
    slowest: list[TestRow]
    #: Every fixture with history, most expensive per run first.
    fixtures: list[FixtureEstimate]
    #: Every test file, longest first.
    files: list[FileRow]
    #: Every slowed-down test, the largest slow-down first.
    slowed_down: list[TestRow]
    #: Every flaky test, the highest fail rate first.
    flaky: list[TestRow]
    #: The planners' one-line hint, "" when they have nothing to say (see `hints`).
    hint: str
    top: int
    #: The pictures (`details.add_details`; None/empty unless asked for): the last run's
    #: timeline, the newest runs oldest first, a shard plan and the worker curve.
    timeline: Optional[Timeline] = None
    trends: tuple[RunPoint, ...] = ()
    plans: Optional[Plans] = None
    #: The first three suggestions of `pytest-feedback advise`, one line each (`advice`).
    advice: tuple[str, ...] = ()
    #: Flaky tests and their evidence, the last run's reruns and repeats, the quarantine.
    flakiness: Optional[FlakySection] = None
    #: What a budget catches, replayed over the history's failing runs (`catches`); None
    #: with too few of them.
    catches: Optional[Simulation] = None
    #: The optional blocks the report's allowance had no room for, each "what (`command`)"
    #: (`allowance.Allowance.left_out`).
    left_out: tuple[str, ...] = ()
    #: Recorded tests no longer in the working tree (renamed or deleted), left out of every
    #: table and count (`selection.existing`).
    gone: int = 0


def build_report(
    store: Store,
    *,
    top: int = DEFAULT_TOP,
    run_uuid: Optional[str] = None,
    all_tests: bool = False,
    allowance: Optional[Allowance] = None,
    rootdir: Optional[Path] = None,
) -> Report:
    """Read what the report shows from ``store``.

    The "last run" is the run with ``run_uuid`` (the one `pytest --feedback-report` just recorded)
    when given and still in the history, else the newest run. ``all_tests`` loads every current
    test into `Report.tests` (for json); otherwise only the `top` longest are read, so that the
    report costs the same on 50 tests and on 50,000. The optional blocks (hint, advice, what a
    budget catches) are computed within ``allowance`` (a fresh `Allowance` when None). With
    ``rootdir`` (the working tree the node ids are relative to), recorded tests no longer
    there are left out.
    """
    allowance = allowance or Allowance(store)
    runs = store.reads.runs()
    run = _pick_run(runs, run_uuid)
    totals = store.reads.file_totals()
    gone = _gone(store, rootdir, [name for name, _, _ in totals])
    tests = store.reads.current_tests(None if all_tests else top + len(gone))
    if gone:
        tests = [t for t in tests if t.nodeid not in gone]
    slowest = tests[:top]
    flagged = [t for t in store.reads.flagged_tests(SLOWDOWN_RATIO) if t.nodeid not in gone]
    slowed = sorted((t for t in flagged if t.slowed_down), key=lambda t: (-t.slowdown, t.nodeid))
    flaky = sorted((t for t in flagged if t.flaky), key=lambda t: (-t.fail_rate, t.nodeid))
    shown = _unique(t.nodeid for t in (*slowest, *slowed, *flaky))
    samples = store.reads.recent_samples(shown)

    last_phases: dict[str, tuple[float, float, float]] = {}
    last_run: Optional[RunSummary] = None
    if run is not None:
        last_phases = store.reads.test_phases(int(run["id"]), shown)
        last_run = RunSummary(
            run_id=int(run["id"]),
            started_at=float(run["started_at"]),
            wall_s=float(run["wall_s"]),
            tests=int(run["tests"]),
            failed=int(run["failed"]),
            workers=int(run["workers"]),
            test_time_s=store.reads.test_time(int(run["id"])),
            git_commit=run["git_commit"],
            git_dirty=None if run["git_dirty"] is None else bool(run["git_dirty"]),
            shard=run["shard"],
            **_budget_figures(run),
        )

    def row(est: TestEstimate) -> TestRow:
        return make_row(est, last_phases.get(est.nodeid), samples.get(est.nodeid, ()))

    files = file_rows(_without(totals, store.reads.estimates_of(gone)))
    fixtures = store.reads.fixture_estimates()
    return Report(
        runs=len(runs),
        last_run=last_run,
        test_count=sum(f.tests for f in files),
        # Tests' own costs plus the wider-scoped fixtures' set-ups a run pays once each.
        total_estimate_s=sum(f.estimate_s for f in files)
        + sum(f.cost_per_run_s for f in fixtures if f.scope != "function"),
        tests=tests,
        slowest=[row(t) for t in slowest],
        fixtures=sorted(fixtures, key=lambda f: (-f.cost_per_run_s, f.name, f.location)),
        files=files,
        slowed_down=[row(t) for t in slowed],
        flaky=[row(t) for t in flaky],
        hint=planner_hint(
            store, None if last_run is None else last_run.workers, allowance=allowance
        ),
        advice=report_block(store, allowance),
        flakiness=flaky_section(store, run, gone),
        catches=report_catches(store, runs, allowance),
        top=top,
        left_out=tuple(allowance.left_out),
        gone=len(gone),
    )


def _gone(store: Store, rootdir: Optional[Path], files: Sequence[str]) -> set[str]:
    """The current tests (in ``files``) no longer in the working tree under ``rootdir`` (none
    without it, or when none of the files is there: the history is read away from its tree)."""
    if rootdir is None or not any((rootdir / name).is_file() for name in files):
        return set()
    from pytest_feedback.selection.existing import split_present

    return set(split_present(rootdir, store.reads.current_nodeids())[1])


def _without(
    totals: list[tuple[str, int, float]], gone: Iterable[TestEstimate]
) -> list[tuple[str, int, float]]:
    """Per-file totals without the ``gone`` tests (files left with none drop out)."""
    minus: dict[str, tuple[int, float]] = {}
    for est in gone:
        n, s = minus.get(test_file(est.nodeid), (0, 0.0))
        minus[test_file(est.nodeid)] = (n + 1, s + est.estimate_s)
    if not minus:
        return totals
    out = []
    for name, n, total in totals:
        less, seconds = minus.get(name, (0, 0.0))
        if n > less:
            out.append((name, n - less, max(0.0, total - seconds)))
    return out


def make_row(
    est: TestEstimate, last: Optional[tuple[float, float, float]], samples: Sequence[Sample]
) -> TestRow:
    ran = [s for s in samples if s.outcome != "skipped"] or list(samples)
    medians = slowdown_medians(ran)
    return TestRow(
        estimate=est,
        last=last,
        trend=tuple(s.own_s for s in ran),
        outcomes="".join(OUTCOME_LETTERS.get(s.outcome, "?") for s in samples),
        before_s=None if medians is None else medians[0],
        recent_s=None if medians is None else medians[1],
    )


def file_rows(totals: Iterable[tuple[str, int, float]]) -> list[FileRow]:
    """Rows from (file, tests, estimate) totals, longest first, with each file's share."""
    data = list(totals)
    total = sum(t[2] for t in data)
    rows = [FileRow(name, n, s, s / total if total > 0 else 0.0) for name, n, s in data]
    return sorted(rows, key=lambda r: (-r.estimate_s, r.file))


def file_totals(tests: Iterable[TestEstimate]) -> list[tuple[str, int, float]]:
    """(file, tests, estimate) per file of ``tests`` (for reports built without a store)."""
    per_file: dict[str, list[float]] = {}
    for est in tests:
        per_file.setdefault(test_file(est.nodeid), []).append(est.estimate_s)
    return [(name, len(v), sum(v)) for name, v in per_file.items()]


def _budget_figures(run: dict[str, Any]) -> dict[str, Any]:
    """`RunSummary`'s budget fields from a runs row (a history from before them has none)."""
    if run.get("budget_s") is None:
        return {}
    took, exit_s = run.get("took_s"), run.get("exit_s")
    return {
        "budget_s": float(run["budget_s"]),
        "predicted_s": None if run.get("predicted_s") is None else float(run["predicted_s"]),
        "took_s": None if took is None else float(took) + float(exit_s or 0.0),
        "to_exit": took is not None and exit_s is not None,
    }


def _pick_run(runs: list[dict[str, Any]], uuid: Optional[str]) -> Optional[dict[str, Any]]:
    if uuid is not None:
        for run in runs:
            if run["uuid"] == uuid:
                return run
    return runs[0] if runs else None


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
