"""Builds the run's `RunRecord` from the test reports, in the process that writes history.

Two parts, so that pytest-xdist works: a `probe.FixtureProbe` in every process that runs tests
times fixtures and attaches what it saw to that process's test reports; the `RunRecorder` here, in
the process that writes history (the xdist controller, or the only process), reads the reports.
During the run it only keeps a row per report; the records are built once, at the end.
"""

from __future__ import annotations

import gc
import os
import platform
import sys
import threading
import uuid
from collections.abc import Generator
from typing import Any, Callable, Optional

import pytest

from pytest_feedback.ci import pipeline_id
from pytest_feedback.history.records import (
    RECORDED_PREFIX,
    WIDER_SCOPES,
    FixtureExecution,
    FixtureKey,
    RunRecord,
    TestRecord,
    WorkerRecord,
    left_by_budget,
)
from pytest_feedback.quarantine import ABSORBED_PREFIX
from pytest_feedback.session.probe import (
    CPU_ATTR,
    DURATION_ATTR,
    EVENTS_ATTR,
    USES_ATTR,
    WORKER_ATTR,
    WORKEROUTPUT_KEY,
    Event,
    FixtureProbe,
    RealClock,
    Troubles,
)

#: Where a serial budget run leaves `RunRecord.planned_s` for the recorder (set in its
#: ``pytest_sessionfinish``, which runs before the recorder's).
PLANNED_KEY: pytest.StashKey[float] = pytest.StashKey()
#: Where a budget run leaves its budget, its prediction and its process's start (on the
#: `time.perf_counter` scale) for `RunRecord.budget_s`, ``predicted_s`` and ``took_s``.
BUDGET_KEY: pytest.StashKey[tuple[float, float, float]] = pytest.StashKey()

#: What the recorder keeps of one report until the end of the run: node id, phase, outcome,
#: seconds, its xfail reason (None: not an expected failure), whether it was a subtest's, a
#: test the budget left out, then the probe's fixture events, the fixtures the test uses, its
#: xdist worker, when the phase started (None when pytest's clock was not the real one) and the
#: probe's CPU seconds (tear-downs).
#: Fixture events that arrive outside any report (an xdist worker's last ones) are a row with no
#: node id.
Row = tuple[
    Optional[str],
    str,
    str,
    float,
    Optional[str],
    bool,
    bool,
    Optional[list[Event]],
    Any,
    Optional[str],
    Optional[float],
    Optional[float],
]


class RunRecorder:
    """Builds the run's `RunRecord` from reports, in the process that writes history."""

    def __init__(
        self,
        config: pytest.Config,
        probe: FixtureProbe,
        write: Callable[[RunRecord], str],
        *,
        shard: Optional[str] = None,
    ) -> None:
        self._config = config
        self._probe = probe
        self._write = write
        self._start = RealClock.perf()
        self.run = RunRecord(
            uuid=uuid.uuid4().hex,
            started_at=RealClock.wall(),
            python=platform.python_version(),
            platform=f"{sys.platform}-{platform.machine()}",
            args=[str(a) for a in config.invocation_params.args],
            rootdir=str(config.rootpath),
            shard=shard,
            pipeline=pipeline_id(os.environ),
        )
        self._executions: dict[tuple[Optional[str], int], FixtureExecution] = {}
        self._fixture_keys: dict[tuple[str, str, str], FixtureKey] = {}
        #: One row per report (and per batch of loose fixture events), folded at the end.
        self._rows: list[Row] = []
        #: The fixture keys of each ``uses`` list the reports carried (by identity).
        self._uses: dict[int, tuple[object, list[FixtureKey]]] = {}
        self._git: Optional[threading.Thread] = None
        self._git_state: Any = None
        self._git_trouble: Optional[str] = None
        self._workers_up = 0
        #: Tests whose last phase was reported: an interrupted test never gets there.
        self._complete: set[str] = set()
        #: Tests of this run with a failed subtest (pytest 9 subtests, unittest subTest).
        self._failed_subtests: set[str] = set()
        self.troubles = Troubles()
        #: What the terminal summary says: "recorded ..." or a warning.
        self.outcome_line: Optional[str] = None
        #: Whether the run is in the history.
        self.written = False

    # -- session -----------------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._start = RealClock.perf()
        with self.troubles.guard("pytest_sessionstart"):
            git = threading.Thread(target=self._read_git, name="feedback-git", daemon=True)
            git.start()
            self._git = git

    def _read_git(self) -> None:
        # An exception escaping a thread becomes a warning (an error under -W error): none may.
        try:
            from pytest_feedback.git import git_state

            self._git_state = git_state(self._config.rootpath)
        except Exception as exc:  # git is optional: record without it
            self._git_trouble = f"{type(exc).__name__}: {exc}"

    def pytest_collection_finish(self) -> None:
        self.run.collect_s = RealClock.perf() - self._start

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self) -> Generator[None, object, object]:
        # Apart from the loop, a session can spend seconds at its end (a plugin's summary,
        # session fixtures): not a cost of each test (see `history.reads._per_test_overhead`).
        start = RealClock.perf()
        try:
            return (yield)
        finally:
            self.run.loop_s = RealClock.perf() - start

    # -- xdist -------------------------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodeready(self, node: Any) -> None:
        # Workers that run at the same time; a crashed worker's replacement is not one more.
        self._workers_up += 1
        self.run.workers = max(self.run.workers, self._workers_up)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        self._workers_up -= 1
        with self.troubles.guard("pytest_testnodedown"):
            data = getattr(node, "workeroutput", {}).get(WORKEROUTPUT_KEY)
            if not data:
                return
            worker = data.get("worker")
            if data.get("trouble"):
                self.troubles.note(f"worker {worker}", RuntimeError(data["trouble"]))
            if data.get("collect_s") is not None:
                self.run.worker_records.append(WorkerRecord(str(worker), float(data["collect_s"])))
            events = data.get("events")
            if events:
                self._rows.append(
                    (None, "", "", 0.0, None, False, False, events, None, worker, None, None)
                )

    # -- tests -------------------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        try:
            extra = report.__dict__
            properties = report.user_properties
            real_duration = extra.get(DURATION_ATTR)  # pytest's clock was replaced (freezegun)
            self._rows.append(
                (
                    report.nodeid,
                    report.when,
                    report.outcome,
                    real_duration or report.duration,
                    extra.get("wasxfail"),
                    type(report) is not pytest.TestReport and _is_subtest(report),
                    bool(properties) and left_by_budget(properties),
                    extra.get(EVENTS_ATTR),
                    extra.get(USES_ATTR),
                    extra.get(WORKER_ATTR),
                    None if real_duration is not None else extra.get("start"),
                    extra.get(CPU_ATTR),
                )
            )
        except Exception as exc:
            self.troubles.note("pytest_runtest_logreport", exc)

    def _add_rows(self, rows: list[Row]) -> None:
        """Fold the rows, in order, into the run's records (one loop: it runs once per report)."""
        tests = self.run.tests
        complete = self._complete
        failed_subtests = self._failed_subtests
        apply_event = self._apply_event
        for row in rows:
            nodeid, when, outcome, duration, wasxfail, subtest, left, events, uses, worker = row[
                :10
            ]
            if nodeid is None or left:
                # Fixture events outside any report; or a test not run (skipped in its set-up
                # by the budget): no result, but the wider fixtures torn down in it are real.
                for event in events or ():
                    apply_event(tuple(event), None, worker)
                continue
            record = tests.get(nodeid)
            if record is None or when == "setup":
                # A fresh setup starts the test anew (reruns, duplicated node ids).
                record = tests[nodeid] = TestRecord(nodeid, worker=worker)
                complete.discard(nodeid)
                failed_subtests.discard(nodeid)
            if subtest:
                # A subtest's time is part of its test's call, which reports it again; a failed
                # subtest fails the test, even when the test's own report (unittest's) says
                # passed.
                if outcome == "failed":
                    failed_subtests.add(nodeid)
                    record.outcome = "failed"
                for event in events or ():
                    apply_event(tuple(event), record, worker)
                continue
            if when not in ("setup", "call"):  # teardown, or xdist's "???" for a crash
                complete.add(nodeid)
            seconds = float(duration or 0.0)
            if when == "setup":
                record.setup_s = seconds
                start = row[10]
                if start:
                    record.started_at = float(start)
            elif when == "teardown":
                record.teardown_s = seconds
                cpu = row[11]
                if cpu is not None:
                    record.cpu_s = float(cpu)
            else:
                record.call_s += seconds
            if outcome != "passed" or when == "call":
                record.outcome = _outcome(when, outcome, wasxfail, record.outcome)
                if record.outcome == "passed" and nodeid in failed_subtests:
                    record.outcome = "failed"
            if events:
                for event in events:
                    apply_event(tuple(event), record, worker)
            if uses is not None:
                self._add_uses(nodeid, uses)

    def _add_uses(self, nodeid: str, uses: Any) -> None:
        keys = self._uses.get(id(uses))
        if keys is None or keys[0] is not uses:
            keys = self._uses[id(uses)] = (uses, [self._fixture_key(*u) for u in uses])
        self.run.uses[nodeid] = list(keys[1])

    def _fixture_key(self, name: str, scope: str, location: str) -> FixtureKey:
        raw = (name, scope, location)
        key = self._fixture_keys.get(raw)
        if key is None:
            key = self._fixture_keys[raw] = FixtureKey(name, scope, location)
        return key

    def _apply_event(self, event: Event, record: Optional[TestRecord], worker: Any) -> None:
        kind, execution_id = event[0], int(event[1])
        nodeid = record.nodeid if record is not None else None
        if kind == "setup":
            name, scope, location, seconds = event[2:6]
            execution = FixtureExecution(
                self._fixture_key(name, scope, location), float(seconds), nodeid, worker
            )
            if len(event) >= 8:
                execution.setup_at, execution.setup_cpu_s = event[6], event[7]
            self._executions[(worker, execution_id)] = execution
            self.run.fixtures.append(execution)
        elif kind == "teardown":
            seconds = float(event[2])
            found = self._executions.get((worker, execution_id))
            if found is None:
                return
            execution = found
            execution.teardown_s = seconds
            execution.teardown_test = nodeid
            if len(event) >= 4:
                execution.teardown_at = event[3]
        else:
            return
        if record is not None and execution.key.scope in WIDER_SCOPES:
            record.fixture_overhead_s += seconds

    # -- the end -----------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # Building the records and writing them allocates a few objects per test and keeps them
        # (no cycles): collections it would trigger would only walk the session's whole heap.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._sessionfinish(exitstatus)
        finally:
            if collecting:
                gc.enable()

    def _sessionfinish(self, exitstatus: int) -> None:
        with self.troubles.guard("pytest_sessionfinish"):
            self._finish(exitstatus)
        with self.troubles.guard("writing the history"):
            trouble = self.troubles.first or self._probe.troubles.first
            if trouble is None and not self.run.tests:
                # An empty run (collection errors, everything deselected) says nothing about
                # durations, and would push a real run's details out of the history.
                self.outcome_line = "feedback: nothing recorded: no test ran"
                return
            if trouble is None:
                line = self._write(self.run)
                self.written = line.startswith(RECORDED_PREFIX)
                if self._git_trouble is not None:
                    line += f" (without git state: {self._git_trouble})"
                self.outcome_line = line
                return
        # Data from a hook that failed may be wrong: better no record than a misleading one.
        trouble = self.troubles.first or self._probe.troubles.first
        self.outcome_line = (
            f"feedback: warning: this run was not recorded: pytest-feedback failed in "
            f"{trouble}; please report this"
        )

    def _finish(self, exitstatus: int) -> None:
        rows, self._rows = self._rows, []
        self._add_rows(rows)
        for event in self._probe.take_events():
            self._apply_event(event, None, self._probe.worker)
        run = self.run
        run.finished_at = RealClock.wall()
        run.wall_s = RealClock.perf() - self._start
        run.exit_status = int(exitstatus)
        run.planned_s = self._config.stash.get(PLANNED_KEY, None)
        budget = self._config.stash.get(BUDGET_KEY, None)
        if budget is not None:
            run.budget_s, run.predicted_s = budget[0], budget[1]
            run.took_s = RealClock.perf() - budget[2]
        # A test cut short by Ctrl-C has a set-up but no tear-down: its figures would lie.
        for nodeid in [n for n in run.tests if n not in self._complete]:
            del run.tests[nodeid]
        if not run.worker_records and self._probe.collect_s is not None:
            run.worker_records.append(WorkerRecord("main", self._probe.collect_s))
        per_worker: dict[str, int] = {}
        for test in run.tests.values():
            per_worker[test.worker or "main"] = per_worker.get(test.worker or "main", 0) + 1
        for worker_record in run.worker_records:
            worker_record.tests = per_worker.get(worker_record.worker, 0)
        if self._git is not None:
            self._git.join(timeout=10)
        state = self._git_state
        if state is not None:
            run.git_commit, run.git_branch, run.git_dirty = state.commit, state.branch, state.dirty


def _is_subtest(report: pytest.TestReport) -> bool:
    """A subtest's report: pytest's own (9.0+, ``SubtestReport``) or pytest-subtests'
    (``SubTestReport``); xdist rebuilds either class on the controller."""
    return type(report).__name__.lower() == "subtestreport"


def _outcome(when: str, outcome: str, wasxfail: Optional[str], current: str) -> str:
    """Fold one phase's report (its phase, outcome, and its xfail reason: None when it was not
    an expected failure) into the test's outcome.

    A failure the quarantine absorbed (reported as an xfail, see `session.quarantine`) is
    recorded as what it was: the history keeps the test's real outcomes.
    """
    if isinstance(wasxfail, str) and wasxfail.startswith(ABSORBED_PREFIX):
        return "failed" if when == "call" else "error"
    if when == "call":
        if wasxfail is not None:
            if outcome == "skipped":
                return "xfailed"
            return "xpassed" if outcome == "passed" else "failed"
        return outcome if outcome in ("passed", "failed", "skipped") else current
    if outcome == "failed":
        return current if current in ("failed", "error") else "error"
    if outcome == "skipped" and when == "setup":
        return "xfailed" if wasxfail is not None else "skipped"
    return current
