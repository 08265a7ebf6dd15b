"""Collects what a run costs: test phases, fixture set-up and tear-down, run metadata.

Two parts, so that pytest-xdist works: a `FixtureProbe` in every process that runs tests times
fixtures and attaches what it saw to that process's test reports; a `RunRecorder` in the process
that writes history (the xdist controller, or the only process) reads the reports and builds a
`RunRecord`. Reports travel from workers to the controller, so the data arrives complete.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import platform
import sys
import threading
import time
import uuid
from collections.abc import Generator
from pathlib import Path
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

#: Attributes the probe attaches to test reports (they survive xdist's serialisation).
EVENTS_ATTR = "feedback_fixtures"
USES_ATTR = "feedback_uses"
WORKER_ATTR = "feedback_worker"
DURATION_ATTR = "feedback_duration"
#: Key in ``config.workeroutput`` through which a worker sends what no report carried.
WORKEROUTPUT_KEY = "feedback"
#: Where a serial budget run leaves `RunRecord.planned_s` for the recorder (set in its
#: ``pytest_sessionfinish``, which runs before the recorder's).
PLANNED_KEY: pytest.StashKey[float] = pytest.StashKey()
#: Where a budget run leaves its budget, its prediction and its process's start (on the
#: `time.perf_counter` scale) for `RunRecord.budget_s`, ``predicted_s`` and ``took_s``.
BUDGET_KEY: pytest.StashKey[tuple[float, float, float]] = pytest.StashKey()

# A fixture event is a plain tuple so that execnet can ship it:
#   ("setup", execution_id, name, scope, location, seconds)
#   ("teardown", execution_id, seconds)
Event = tuple[Any, ...]


class _Guard:
    __slots__ = ("_troubles", "_where")

    def __init__(self, troubles: Troubles, where: str) -> None:
        self._troubles = troubles
        self._where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: Optional[type[BaseException]], exc: Optional[BaseException], tb: object
    ) -> bool:
        if exc is not None and isinstance(exc, Exception):  # ours: one line at the end
            self._troubles.note(self._where, exc)
            return True
        return False


class Troubles:
    """The first error raised inside our own hook code, kept to become one warning line.

    Every hook body of ours runs under `guard`: our trouble must never break the user's run,
    and an exception of the user's that passes through our wrappers is never caught by it.
    """

    def __init__(self) -> None:
        self.first: Optional[str] = None
        self._guards: dict[str, _Guard] = {}

    def guard(self, where: str) -> _Guard:
        """A context manager that keeps an `Exception` raised inside it (it runs on every hook
        call, so it is a reusable object rather than a generator-based one)."""
        found = self._guards.get(where)
        if found is None:
            found = self._guards[where] = _Guard(self, where)
        return found

    def note(self, where: str, exc: BaseException) -> None:
        if self.first is None:
            self.first = f"{where} ({type(exc).__name__}: {exc})"


class _RealClock:
    """Clocks captured at import, out of reach of freezegun's module patching.

    freezegun replaces module attributes that *are* the real time functions; it does not look
    inside classes, so these keep measuring real time while a test freezes it.
    """

    perf = staticmethod(time.perf_counter)
    wall = staticmethod(time.time)


def fixture_key(fixturedef: pytest.FixtureDef[Any], rootpath: Path) -> FixtureKey:
    """Name, scope and a location that is the same on every machine.

    ``path::qualname`` for fixtures under the rootdir, ``module.qualname`` for installed ones.
    """
    func: Any = fixturedef.func
    func = getattr(func, "__func__", func)
    code = getattr(func, "__code__", None)
    qualname = getattr(func, "__qualname__", fixturedef.argname)
    location = f"{getattr(func, '__module__', '?')}.{qualname}"
    if code is not None:
        path = Path(code.co_filename)
        if "site-packages" not in path.parts:
            with contextlib.suppress(ValueError):
                location = f"{path.resolve().relative_to(rootpath).as_posix()}::{qualname}"
    return FixtureKey(fixturedef.argname, str(fixturedef.scope), location)


class FixtureProbe:
    """Times fixtures in the process that runs the tests and attaches the events to reports."""

    def __init__(self, config: pytest.Config, worker: Optional[str]) -> None:
        self._config = config
        self._rootpath = config.rootpath
        self.worker = worker
        self._events: list[Event] = []
        self._ids = itertools.count(1)
        self._stack: list[float] = []  # child seconds of nested set-ups
        self._teardown_started: dict[int, tuple[int, float]] = {}
        self._keys: dict[int, FixtureKey] = {}
        self._phase_s: dict[str, float] = {}
        self._uses_cache: dict[int, tuple[object, list[tuple[str, str, str]]]] = {}
        self._session_start = _RealClock.perf()
        self.collect_s: Optional[float] = None
        self.troubles = Troubles()

    def _key(self, fixturedef: pytest.FixtureDef[Any]) -> FixtureKey:
        key = self._keys.get(id(fixturedef))
        if key is None:
            key = self._keys[id(fixturedef)] = fixture_key(fixturedef, self._rootpath)
        return key

    def pytest_sessionstart(self) -> None:
        self._session_start = _RealClock.perf()

    def pytest_collection_finish(self) -> None:
        self.collect_s = _RealClock.perf() - self._session_start

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, object, object]:
        __tracebackhide__ = True  # the user's failures show the user's frames, not ours
        if _is_parameter(fixturedef):
            return (yield)
        start = _RealClock.perf()
        self._stack.append(0.0)
        try:
            result = yield
        except BaseException:
            self._setup_done(fixturedef, request, start, ok=False)
            raise
        self._setup_done(fixturedef, request, start, ok=True)
        return result

    def _setup_done(
        self,
        fixturedef: pytest.FixtureDef[Any],
        request: pytest.FixtureRequest,
        start: float,
        *,
        ok: bool,
    ) -> None:
        elapsed = _RealClock.perf() - start
        children = self._stack.pop() if self._stack else 0.0
        if self._stack:
            self._stack[-1] += elapsed
        with self.troubles.guard("pytest_fixture_setup"):
            key = self._key(fixturedef)
            execution = next(self._ids)
            self._events.append(
                ("setup", execution, key.name, key.scope, key.location, elapsed - children)
            )
            if ok:
                # Runs first when the fixture is finished: finalizers run last-in, first-out and
                # the fixture's own tear-down was registered while it was set up.
                request.addfinalizer(lambda: self._start_teardown(fixturedef, execution))

    def _start_teardown(self, fixturedef: pytest.FixtureDef[Any], execution: int) -> None:
        with self.troubles.guard("fixture finalizer"):
            self._teardown_started[id(fixturedef)] = (execution, _RealClock.perf())

    def pytest_fixture_post_finalizer(self, fixturedef: pytest.FixtureDef[Any]) -> None:
        # pytest calls this on every finish(), also when nothing was set up: only a finish that
        # ran our marker closes an execution.
        with self.troubles.guard("pytest_fixture_post_finalizer"):
            started = self._teardown_started.pop(id(fixturedef), None)
            if started is not None:
                execution, start = started
                self._events.append(("teardown", execution, _RealClock.perf() - start))

    # pytest's own report.duration reads a clock that freezegun patches, so the phases are timed
    # here with the real one, outermost of all wrappers.
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self) -> Generator[None, None, None]:
        __tracebackhide__ = True
        return (yield from self._timed("setup"))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self) -> Generator[None, None, None]:
        __tracebackhide__ = True
        return (yield from self._timed("call"))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self) -> Generator[None, None, None]:
        __tracebackhide__ = True
        return (yield from self._timed("teardown"))

    def _timed(self, when: str) -> Generator[None, None, None]:
        __tracebackhide__ = True
        start = _RealClock.perf()
        try:
            return (yield)
        finally:
            self._phase_s[when] = _RealClock.perf() - start

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        with self.troubles.guard("pytest_runtest_makereport"):
            seconds = self._phase_s.pop(call.when, None)
            if seconds is not None:
                setattr(report, DURATION_ATTR, seconds)
            if self._events:
                setattr(report, EVENTS_ATTR, self._events)
                self._events = []
            if call.when == "setup":
                setattr(report, USES_ATTR, self._uses(item))
            if self.worker is not None:
                setattr(report, WORKER_ATTR, self.worker)
        return report

    def _uses(self, item: pytest.Item) -> list[tuple[str, str, str]]:
        """The fixtures an item requests, resolved to their definitions."""
        # There is no public API for an item's resolved fixture definitions; this attribute has
        # been stable since pytest 3. Without it, planners fall back to fixture executions.
        # Parametrized items of one function share it, so the answer is cached per object.
        info = getattr(item, "_fixtureinfo", None)
        cached = self._uses_cache.get(id(info))
        if cached is not None and cached[0] is info:
            return cached[1]
        name2defs = getattr(info, "name2fixturedefs", None) or {}
        uses = []
        for name in getattr(item, "fixturenames", ()):
            defs = name2defs.get(name)
            if defs and not _is_parameter(defs[-1]):
                key = self._key(defs[-1])
                uses.append((key.name, key.scope, key.location))
        self._uses_cache[id(info)] = (info, uses)
        return uses

    def take_events(self) -> list[Event]:
        """Events that happened outside any test phase (interrupted runs)."""
        events, self._events = self._events, []
        return events

    def pytest_sessionfinish(self) -> None:
        workeroutput = getattr(self._config, "workeroutput", None)
        if workeroutput is not None:
            with self.troubles.guard("pytest_sessionfinish"):
                workeroutput[WORKEROUTPUT_KEY] = {
                    "worker": self.worker,
                    "collect_s": self.collect_s,
                    "events": self.take_events(),
                    "trouble": self.troubles.first,
                }


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
        self._start = _RealClock.perf()
        self.run = RunRecord(
            uuid=uuid.uuid4().hex,
            started_at=_RealClock.wall(),
            python=platform.python_version(),
            platform=f"{sys.platform}-{platform.machine()}",
            args=[str(a) for a in config.invocation_params.args],
            rootdir=str(config.rootpath),
            shard=shard,
            pipeline=pipeline_id(os.environ),
        )
        self._executions: dict[tuple[Optional[str], int], FixtureExecution] = {}
        self._fixture_keys: dict[tuple[str, str, str], FixtureKey] = {}
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
        self._start = _RealClock.perf()
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
        self.run.collect_s = _RealClock.perf() - self._start

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self) -> Generator[None, object, object]:
        # Apart from the loop, a session can spend seconds at its end (a plugin's summary,
        # session fixtures): not a cost of each test (see `store_reads._per_test_overhead`).
        start = _RealClock.perf()
        try:
            return (yield)
        finally:
            self.run.loop_s = _RealClock.perf() - start

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
            for event in data.get("events", ()):
                self._apply_event(tuple(event), None, worker)

    # -- tests -------------------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        with self.troubles.guard("pytest_runtest_logreport"):
            self._add_report(report)

    def _add_report(self, report: pytest.TestReport) -> None:
        extra = report.__dict__
        nodeid = report.nodeid
        when = report.when
        worker = extra.get(WORKER_ATTR)
        if left_by_budget(report.user_properties):
            # Not run (skipped in its set-up): no result, but the wider fixtures torn down in its
            # teardown are real.
            self._apply_events(extra, None, worker)
            return
        record = self.run.tests.get(nodeid)
        if record is None or when == "setup":
            # A fresh setup starts the test anew (reruns, duplicated node ids).
            record = self.run.tests[nodeid] = TestRecord(nodeid, worker=worker)
            self._complete.discard(nodeid)
            self._failed_subtests.discard(nodeid)
        if _is_subtest(report):
            # A subtest's time is part of its test's call, which reports it again; a failed
            # subtest fails the test, even when the test's own report (unittest's) says passed.
            if report.failed:
                self._failed_subtests.add(nodeid)
                record.outcome = "failed"
            self._apply_events(extra, record, worker)
            return
        if when not in ("setup", "call"):  # teardown, or xdist's "???" for a crash
            self._complete.add(nodeid)
        duration = float(extra.get(DURATION_ATTR) or report.duration or 0.0)
        if when == "setup":
            record.setup_s = duration
        elif when == "teardown":
            record.teardown_s = duration
        else:
            record.call_s += duration
        if report.outcome != "passed" or when == "call":
            record.outcome = _outcome(report, record.outcome)
            if record.outcome == "passed" and nodeid in self._failed_subtests:
                record.outcome = "failed"
        self._apply_events(extra, record, worker)
        uses = extra.get(USES_ATTR)
        if uses is not None:
            self.run.uses[nodeid] = [self._fixture_key(*u) for u in uses]

    def _apply_events(
        self, extra: dict[str, Any], record: Optional[TestRecord], worker: Any
    ) -> None:
        for event in extra.get(EVENTS_ATTR) or ():
            self._apply_event(tuple(event), record, worker)

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
            _, _, name, scope, location, seconds = event
            execution = FixtureExecution(
                self._fixture_key(name, scope, location), float(seconds), nodeid, worker
            )
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
        else:
            return
        if record is not None and execution.key.scope in WIDER_SCOPES:
            record.fixture_overhead_s += seconds

    # -- the end -----------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
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
        for event in self._probe.take_events():
            self._apply_event(event, None, self._probe.worker)
        run = self.run
        run.finished_at = _RealClock.wall()
        run.wall_s = _RealClock.perf() - self._start
        run.exit_status = int(exitstatus)
        run.planned_s = self._config.stash.get(PLANNED_KEY, None)
        budget = self._config.stash.get(BUDGET_KEY, None)
        if budget is not None:
            run.budget_s, run.predicted_s = budget[0], budget[1]
            run.took_s = _RealClock.perf() - budget[2]
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


def _is_parameter(fixturedef: pytest.FixtureDef[Any]) -> bool:
    """A pseudo-fixture pytest makes for a directly parametrized argument, not a real fixture."""
    return getattr(fixturedef.func, "__name__", "") == "get_direct_param_fixture_func"


def _is_subtest(report: pytest.TestReport) -> bool:
    """A subtest's report: pytest's own (9.0+, ``SubtestReport``) or pytest-subtests'
    (``SubTestReport``); xdist rebuilds either class on the controller."""
    return type(report).__name__.lower() == "subtestreport"


def _outcome(report: pytest.TestReport, current: str) -> str:
    """Fold one phase's report into the test's outcome."""
    wasxfail = hasattr(report, "wasxfail")
    if report.when == "call":
        if wasxfail:
            if report.skipped:
                return "xfailed"
            return "xpassed" if report.passed else "failed"
        return str(report.outcome) if report.outcome in ("passed", "failed", "skipped") else current
    if report.failed:
        return current if current in ("failed", "error") else "error"
    if report.skipped and report.when == "setup":
        return "xfailed" if wasxfail else "skipped"
    return current
