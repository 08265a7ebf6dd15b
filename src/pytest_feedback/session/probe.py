"""The fixture probe: times fixtures where tests run and attaches what it saw to the test reports.

It runs in every process that runs tests (the only process, or each pytest-xdist worker); the
`recorder.RunRecorder` in the process that writes history reads the reports. Reports travel from
workers to the controller, so the data arrives complete.

The per-test path is kept short: one wrapper around ``pytest_runtest_makereport`` per phase, and
the fixture hooks. A phase's duration is pytest's own ``report.duration``, except while something
(freezegun) has replaced pytest's clock: then the probe measures the phase with the real one.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any, Optional

import pytest
from _pytest import timing

from pytest_feedback.history.records import FixtureKey

#: Attributes the probe attaches to test reports (they survive xdist's serialisation).
EVENTS_ATTR = "feedback_fixtures"
USES_ATTR = "feedback_uses"
WORKER_ATTR = "feedback_worker"
DURATION_ATTR = "feedback_duration"
CPU_ATTR = "feedback_cpu"
#: Key in ``config.workeroutput`` through which a worker sends what no report carried.
WORKEROUTPUT_KEY = "feedback"

# A fixture event is a plain tuple so that execnet can ship it (times: Unix time of the start,
# and CPU seconds of the thread):
#   ("setup", execution_id, name, scope, location, seconds, started_at, cpu_s)
#   ("teardown", execution_id, seconds, started_at)
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

    Every hook body of ours runs under `guard` (or, on the per-test path, an equivalent
    ``except Exception``): our trouble must never break the user's run, and an exception of the
    user's that passes through our wrappers is never caught by it.
    """

    def __init__(self) -> None:
        self.first: Optional[str] = None
        self._guards: dict[str, _Guard] = {}

    def guard(self, where: str) -> _Guard:
        """A context manager that keeps an `Exception` raised inside it (a reusable object
        rather than a generator-based one)."""
        found = self._guards.get(where)
        if found is None:
            found = self._guards[where] = _Guard(self, where)
        return found

    def note(self, where: str, exc: BaseException) -> None:
        if self.first is None:
            self.first = f"{where} ({type(exc).__name__}: {exc})"


class RealClock:
    """Clocks captured at import, out of reach of freezegun's module patching.

    freezegun replaces module attributes that *are* the real time functions; it does not look
    inside classes, so these keep measuring real time while a test freezes it.
    """

    perf = staticmethod(time.perf_counter)
    wall = staticmethod(time.time)
    cpu = staticmethod(time.thread_time)


def pytest_clock_replaced() -> bool:
    """Whether pytest's clock (``_pytest.timing``) is not the real one right now (freezegun).

    The real one is read from `RealClock`: freezegun would replace a module attribute too.
    """
    real = RealClock.perf
    return getattr(timing, "perf_counter", real) is not real


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


def is_parameter(fixturedef: pytest.FixtureDef[Any]) -> bool:
    """A pseudo-fixture pytest makes for a directly parametrized argument, not a real fixture."""
    return getattr(fixturedef.func, "__name__", "") == "get_direct_param_fixture_func"


class FixtureProbe:
    """Times fixtures in the process that runs the tests and attaches the events to reports."""

    def __init__(self, config: pytest.Config, worker: Optional[str]) -> None:
        self._config = config
        self._rootpath = config.rootpath
        self.worker = worker
        self._events: list[Event] = []
        self._ids = itertools.count(1)
        #: Per set-up in progress, the seconds and CPU seconds of the set-ups nested in it.
        self._stack: list[list[float]] = []
        self._teardown_started: dict[int, tuple[int, float]] = {}
        self._keys: dict[int, FixtureKey] = {}
        self._uses_cache: dict[int, tuple[object, list[tuple[str, str, str]]]] = {}
        self._session_start = RealClock.perf()
        #: Unix time at `_session_start`: turns the real perf clock into when things started.
        self._wall_start = RealClock.wall()
        self.collect_s: Optional[float] = None
        self.troubles = Troubles()
        #: When the last phase ended (real clock), and whether pytest's clock was replaced then.
        self._last_end = self._session_start
        self._last_replaced = False
        #: The thread's CPU time when the last test (or collection) ended.
        self._last_cpu = RealClock.cpu()

    def _key(self, fixturedef: pytest.FixtureDef[Any]) -> FixtureKey:
        key = self._keys.get(id(fixturedef))
        if key is None:
            key = self._keys[id(fixturedef)] = fixture_key(fixturedef, self._rootpath)
        return key

    def pytest_sessionstart(self) -> None:
        self._session_start = RealClock.perf()
        self._wall_start = RealClock.wall()

    def pytest_collection_finish(self) -> None:
        self._last_end = now = RealClock.perf()
        self._last_replaced = pytest_clock_replaced()
        self._last_cpu = RealClock.cpu()
        self.collect_s = now - self._session_start

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, object, object]:
        __tracebackhide__ = True  # the user's failures show the user's frames, not ours
        if is_parameter(fixturedef):
            return (yield)
        start = RealClock.perf()
        cpu = RealClock.cpu()
        self._stack.append([0.0, 0.0])
        try:
            result = yield
        except BaseException:
            self._setup_done(fixturedef, request, start, cpu, ok=False)
            raise
        self._setup_done(fixturedef, request, start, cpu, ok=True)
        return result

    def _setup_done(
        self,
        fixturedef: pytest.FixtureDef[Any],
        request: pytest.FixtureRequest,
        start: float,
        cpu: float,
        *,
        ok: bool,
    ) -> None:
        elapsed = RealClock.perf() - start
        cpu = RealClock.cpu() - cpu
        stack = self._stack
        children, children_cpu = stack.pop() if stack else (0.0, 0.0)
        if stack:
            stack[-1][0] += elapsed
            stack[-1][1] += cpu
        try:
            key = self._key(fixturedef)
            execution = next(self._ids)
            started_at = self._wall_start + (start - self._session_start)
            self._events.append(
                (
                    "setup",
                    execution,
                    key.name,
                    key.scope,
                    key.location,
                    elapsed - children,
                    started_at,
                    cpu - children_cpu,
                )
            )
            if ok:
                # Runs first when the fixture is finished: finalizers run last-in, first-out and
                # the fixture's own tear-down was registered while it was set up.
                request.addfinalizer(lambda: self._start_teardown(fixturedef, execution))
        except Exception as exc:
            self.troubles.note("pytest_fixture_setup", exc)

    def _start_teardown(self, fixturedef: pytest.FixtureDef[Any], execution: int) -> None:
        self._teardown_started[id(fixturedef)] = (execution, RealClock.perf())

    def pytest_fixture_post_finalizer(self, fixturedef: pytest.FixtureDef[Any]) -> None:
        # pytest calls this on every finish(), also when nothing was set up: only a finish that
        # ran our marker closes an execution.
        try:
            started = self._teardown_started.pop(id(fixturedef), None)
            if started is not None:
                execution, start = started
                started_at = self._wall_start + (start - self._session_start)
                self._events.append(("teardown", execution, RealClock.perf() - start, started_at))
        except Exception as exc:
            self.troubles.note("pytest_fixture_post_finalizer", exc)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        end = RealClock.perf()
        report = yield
        try:
            extra = report.__dict__
            real = RealClock.perf  # pytest_clock_replaced(), inlined: this runs for every phase
            replaced = getattr(timing, "perf_counter", real) is not real
            if replaced or self._last_replaced:
                # pytest's clock read a frozen time at the phase's start or end: the real time
                # since the previous phase ended (its reporting included) stands in.
                extra[DURATION_ATTR] = end - self._last_end
            self._last_end, self._last_replaced = end, replaced
            if self._events:
                extra[EVENTS_ATTR] = self._events
                self._events = []
            when = call.when
            if when == "setup":
                extra[USES_ATTR] = self._uses(item)
            elif when == "teardown":
                cpu = RealClock.cpu()
                extra[CPU_ATTR] = cpu - self._last_cpu
                self._last_cpu = cpu
            if self.worker is not None:
                extra[WORKER_ATTR] = self.worker
        except Exception as exc:
            self.troubles.note("pytest_runtest_makereport", exc)
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
            if defs and not is_parameter(defs[-1]):
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
