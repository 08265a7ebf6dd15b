"""The coverage map's pytest side (``--feedback-cov``): when to measure, in which context.

`start_map` starts a `depmap.measure.Measurement` before the first conftest.py is imported;
`configure_map` keeps it in the processes that run tests (`MapProbe` switches its context around
each collector and test, and hands a worker's payload to the controller) and, in the process that
writes history, registers the `MapCollector` that writes the map at the end. The plugin calls
these functions (`start_map`, `configure_map`, `discard_map`, `write_map_summary`,
`unconfigure_map`) and nothing else of the map.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Callable, Optional

import pytest

from pytest_feedback.session.keys import SELECTION_KEY, register
from pytest_feedback.session.options import refreshes_map

if TYPE_CHECKING:
    from pytest_feedback.depmap.measure import Measurement
    from pytest_feedback.depmap.payload import MapPayload
    from pytest_feedback.settings import Settings

#: Key in ``config.workeroutput`` that carries a worker's payload to the controller.
WORKEROUTPUT_KEY = "feedback_cov"
PROBE_NAME = "feedback-cov-probe"
COLLECTOR_NAME = "feedback-cov-collector"


class MapProbe:
    """Switches the measurement's context around collectors and tests; a pytest plugin
    registered only with ``--feedback-cov``, in every process that runs tests."""

    def __init__(self, measurement: Measurement) -> None:
        self.measurement = measurement

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, Any]:
        measurement = self.measurement
        outer = measurement.label
        measurement.switch("c:" + _collector_id(collector.nodeid))
        try:
            return (yield)
        finally:
            measurement.switch(outer)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        with self.measurement.run_test("t:" + item.nodeid):
            return (yield)

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        try:
            return (yield)
        finally:
            measurement = self.measurement
            measurement.finish()
            workeroutput = getattr(session.config, "workeroutput", None)
            if workeroutput is not None and measurement.payload is not None:
                workeroutput[WORKEROUTPUT_KEY] = measurement.payload.to_plain()


def _collector_id(nodeid: str) -> str:
    return "" if nodeid == "." else nodeid


class MapCollector:
    """In the process that writes history: gathers the payloads and writes the map at the end."""

    def __init__(
        self, measurement: Optional[Measurement], write: Callable[[MapPayload], list[str]]
    ) -> None:
        from pytest_feedback.depmap.payload import MapPayload

        self._measurement = measurement
        self._write = write
        self.payload = MapPayload()
        self._workers = 0
        #: What the terminal summary says: the outcome and any notes.
        self.lines: list[str] = []
        #: Measuring was not asked for (``--feedback-select`` refreshes the map): a run that
        #: measured nothing (``--collect-only``, nothing selected) is no warning.
        self.quiet = False

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        data = getattr(node, "workeroutput", {}).get(WORKEROUTPUT_KEY)
        if data:
            self._workers += 1
            self.payload.merge(type(self.payload).from_plain(data))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        measurement = self._measurement
        if measurement is not None:
            measurement.finish()
            if measurement.payload is not None:
                if self.payload.lines or self.payload.notes:
                    self.payload.merge(measurement.payload)
                else:
                    self.payload = measurement.payload
        if not self.payload.lines:
            warning = "feedback: warning: --feedback-cov measured nothing this run"
            self.lines = self.payload.notes or ([] if self.quiet else [warning])
            return
        self.lines = self._write(self.payload)


MEASUREMENT_KEY: pytest.StashKey[Measurement] = pytest.StashKey()
COLLECTOR_KEY: pytest.StashKey[MapCollector] = pytest.StashKey()


def start_map(early_config: pytest.Config) -> None:
    """With --feedback-cov, start measuring before the first conftest.py is imported."""
    namespace = early_config.known_args_namespace
    wanted = bool(getattr(namespace, "feedback_cov", None)) or bool(
        early_config.getini("feedback_cov")
    )
    wanted = wanted or refreshes_map(early_config)
    if not wanted or getattr(namespace, "feedback_no_record", False):
        return
    from pytest_feedback.depmap.measure import CovOptions, Measurement

    options = CovOptions.from_ini(
        early_config.rootpath,
        [str(p) for p in early_config.getini("feedback_cov_include")],
        [str(p) for p in early_config.getini("feedback_cov_omit")],
    )
    measurement = Measurement(options)
    numprocesses = getattr(namespace, "numprocesses", None)
    maybe_controller = "PYTEST_XDIST_WORKER" not in os.environ and (
        bool(numprocesses) or getattr(namespace, "dist", "no") != "no"
    )
    try:
        measurement.start(maybe_controller=maybe_controller)
    except Exception as exc:  # never break the run because of our trouble
        sys.stderr.write(f"feedback: warning: --feedback-cov could not start ({exc})\n")
        return
    early_config.stash[MEASUREMENT_KEY] = measurement


def configure_map(
    config: pytest.Config,
    settings: Settings,
    worker: Optional[str],
    run_uuid: Callable[[], Optional[str]],
) -> None:
    """Keep measuring where tests run; the process that writes history collects the map.

    ``run_uuid``: the uuid of the run being recorded, asked for when the map is written.
    """
    measurement = config.stash.get(MEASUREMENT_KEY, None)
    if not settings.cov and measurement is None:
        return
    distributing = worker is None and getattr(config.option, "dist", "no") != "no"
    if measurement is not None:
        if distributing:
            measurement.discard()  # an xdist controller runs no tests
            measurement = None
        else:
            measurement.activate()
            register(config, MapProbe(measurement), PROBE_NAME)
    if worker is None and settings.cov:
        from pytest_feedback.session.writer import write_map

        def write(payload: MapPayload) -> list[str]:
            selection = config.stash.get(SELECTION_KEY, None)
            refresh = selection.refresh() if selection is not None else None
            return write_map(settings, config.rootpath, run_uuid(), payload, refresh)

        collector = MapCollector(measurement, write)
        explicit = config.getoption("feedback_cov") or config.getini("feedback_cov")
        collector.quiet = not explicit
        register(config, collector, COLLECTOR_NAME)
        config.stash[COLLECTOR_KEY] = collector


def discard_map(config: pytest.Config) -> None:
    """Nothing records this run: stop the measurement `start_map` began, collect nothing."""
    measurement = config.stash.get(MEASUREMENT_KEY, None)
    if measurement is not None:
        measurement.discard()


def write_map_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """The map's lines in the terminal summary (once)."""
    collector = config.stash.get(COLLECTOR_KEY, None)
    if collector is not None:
        for line in collector.lines:
            terminalreporter.write_line(line)
        collector.lines = []


def unconfigure_map(config: pytest.Config) -> None:
    """Warnings no terminal summary printed go to stderr; stop measuring; forget the map."""
    collector = config.stash.get(COLLECTOR_KEY, None)
    if collector is not None:
        for line in collector.lines:
            if "warning" in line:
                sys.stderr.write(line + "\n")
    measurement = config.stash.get(MEASUREMENT_KEY, None)
    if measurement is not None:
        measurement.close()
    # The probe and the collector were registered through `keys.register`: `keys.unregister_all`
    # takes them out.
    for key in (MEASUREMENT_KEY, COLLECTOR_KEY):
        if key in config.stash:  # type: ignore[misc]
            del config.stash[key]  # type: ignore[misc]
