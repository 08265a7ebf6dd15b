"""The attempts of a run, seen where the run is reported: into the `RunRecord` (table
``attempts``), into JUnit XML (Maven Surefire's ``flakyFailure`` / ``rerunFailure`` elements) and
into the terminal summary.

Registered in the process that reports (the only one, or the xdist controller) when reruns or
repeats can happen: ``--feedback-rerun``, ``--feedback-new-runs``, or an active
pytest-rerunfailures, whose reruns are read from its reports (outcome ``rerun``) instead.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Optional

import pytest

from pytest_feedback.history.records import FAILING, RERUN, AttemptRecord, RunRecord
from pytest_feedback.session.attempts import ATTEMPTS_ATTR, RERUN_OUTCOME
from pytest_feedback.session.probe import WORKER_ATTR

#: The JUnit XML element of a failed attempt: the test passed in the end, or it did not.
FLAKY_ELEMENT = "flakyFailure"
RERUN_ELEMENT = "rerunFailure"


class AttemptWatch:
    def __init__(self, config: pytest.Config, *, read_reruns: bool) -> None:
        self._config = config
        #: pytest-rerunfailures reruns: follow its reports to rebuild the attempts.
        self._read_reruns = read_reruns
        self.attempts: list[AttemptRecord] = []
        #: Per test, the failed attempts' (message, text) for JUnit XML.
        self._failures: dict[str, list[tuple[str, str]]] = {}
        #: Tests whose final attempt failed.
        self._final_failed: set[str] = set()
        #: pytest-rerunfailures: per test, its attempts so far [outcome, seconds, start].
        self._followed: dict[str, list[list[Any]]] = {}
        #: Tests whose attempts our own runner reported (`ATTEMPTS_ATTR`): not followed again.
        self._reported: set[str] = set()
        self.lines: list[str] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        try:
            self._see(report)
        except Exception as exc:  # our trouble never breaks the run: one line at the end
            self.lines.append(f"feedback: warning: attempts not followed ({exc!r})")

    def _see(self, report: pytest.TestReport) -> None:
        nodeid = report.nodeid
        extra = report.__dict__
        rerun = report.outcome == RERUN_OUTCOME
        if rerun:
            self._failures.setdefault(nodeid, []).append(_failure(report))
        elif report.failed:
            self._final_failed.add(nodeid)
        if self._read_reruns and (rerun or nodeid in self._followed):
            self._follow(report, rerun)
        attempts = extra.get(ATTEMPTS_ATTR)
        if attempts:
            self._reported.add(nodeid)
            self._add(nodeid, extra.get(WORKER_ATTR), attempts)
        if report.when == "teardown" and nodeid in self._failures:
            self._to_junit(report)

    def _follow(self, report: pytest.TestReport, rerun: bool) -> None:
        """Rebuild pytest-rerunfailures' attempts: a set-up report starts one."""
        attempts = self._followed.setdefault(report.nodeid, [])
        if report.when == "setup" or not attempts:
            worker = report.__dict__.get(WORKER_ATTR)
            attempts.append(["passed", 0.0, getattr(report, "start", None), worker])
        current = attempts[-1]
        current[1] += report.duration
        if rerun or report.failed:
            current[0] = "failed" if report.when == "call" else "error"
        elif report.skipped and current[0] == "passed":
            current[0] = "skipped"

    def _add(self, nodeid: str, worker: Optional[str], attempts: list[Any]) -> None:
        for number, (kind, outcome, seconds, start) in enumerate(attempts, 1):
            self.attempts.append(
                AttemptRecord(
                    nodeid, number, str(kind), str(outcome), float(seconds), start, worker
                )
            )
        outcomes = [str(a[1]) for a in attempts]
        shown = ", ".join(outcomes)
        both = any(o in FAILING for o in outcomes) and "passed" in outcomes
        if both and attempts[0][0] == RERUN:
            self.lines.append(f"feedback: flaky: {nodeid} passed on a rerun (attempts: {shown})")
        elif both:
            self.lines.append(f"feedback: new test is flaky: {nodeid} (attempts: {shown})")

    def _to_junit(self, report: pytest.TestReport) -> None:
        """Add the failed attempts to the test's JUnit XML testcase, before pytest's junitxml
        plugin closes it (this hook runs first)."""
        failures = self._failures.pop(report.nodeid)
        xml = _junit(self._config)
        if xml is None:
            return
        tag = RERUN_ELEMENT if report.nodeid in self._final_failed else FLAKY_ELEMENT
        reporter = xml.node_reporter(report)
        for message, text in failures:
            element = ET.Element(tag, message=message, type="pytest.failure")
            trace = ET.SubElement(element, "stackTrace")
            trace.text = text
            reporter.nodes.append(element)

    def finish(self, run: Optional[RunRecord]) -> None:
        """Put the run's attempts into its record (pytest-rerunfailures': rebuilt here)."""
        for nodeid, attempts in self._followed.items():
            if len(attempts) > 1 and nodeid not in self._reported:
                self._add(nodeid, attempts[-1][3], [(RERUN, *a[:3]) for a in attempts])
        if run is not None:
            run.attempts.extend(self.attempts)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        for line in self.lines:
            terminalreporter.write_line(line)
        self.lines = []


def _failure(report: pytest.TestReport) -> tuple[str, str]:
    text = report.longreprtext
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None) or text.strip().splitlines()[-1:] or [""]
    return (message if isinstance(message, str) else message[0]), text


def _junit(config: pytest.Config) -> Any:
    """pytest's JUnit XML writer of this session, None without ``--junitxml``."""
    try:
        from _pytest.junitxml import xml_key
    except ImportError:
        return None
    return config.stash.get(xml_key, None)
