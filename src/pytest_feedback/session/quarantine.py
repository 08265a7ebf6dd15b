"""The quarantine in a pytest session: a quarantined test's failure is reported like a non-strict
xfail with the entry's reason, so that it does not fail the run; an expired entry no longer
protects, and says so (docs/flaky.md).

Registered only when the quarantine file lists tests, in every process that runs tests (its
report hook) and in the one that reports (the summary lines).
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from pytest_feedback.quarantine import ABSORBED_PREFIX, Entry


class QuarantineGuard:
    def __init__(self, active: dict[str, Entry], expired: dict[str, Entry]) -> None:
        self._active = active
        self._expired = expired
        #: Absorbed failures and failures of expired entries, seen in this process's reports.
        self.absorbed: dict[str, Entry] = {}
        self.expired_failed: dict[str, Entry] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        entry = self._active.get(item.nodeid)
        if (
            entry is not None
            and report.failed
            and report.when in ("setup", "call")
            and not hasattr(report, "wasxfail")
        ):
            # What pytest's skipping plugin makes of a non-strict xfail that failed.
            report.outcome = "skipped"
            report.wasxfail = ABSORBED_PREFIX + (entry.reason or "no reason given")
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        reason = getattr(report, "wasxfail", None)
        if isinstance(reason, str) and reason.startswith(ABSORBED_PREFIX):
            entry = self._active.get(report.nodeid)
            if entry is not None:
                self.absorbed[report.nodeid] = entry
        elif report.failed and report.nodeid in self._expired:
            self.expired_failed[report.nodeid] = self._expired[report.nodeid]

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        for nodeid, entry in sorted(self.absorbed.items()):
            until = f", until {entry.expires}" if entry.expires else ""
            terminalreporter.write_line(
                f"feedback: quarantined failure absorbed: {nodeid} ({entry.reason}{until})"
            )
        for nodeid, entry in sorted(self._expired.items()):
            failed = " and its failure counts" if nodeid in self.expired_failed else ""
            terminalreporter.write_line(
                f"feedback: warning: the quarantine of {nodeid} expired on {entry.expires}: it "
                f"no longer protects{failed} (`pytest-feedback quarantine remove` or renew it)"
            )
