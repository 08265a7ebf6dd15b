"""Running a test more than once in one process: reruns of failed tests (``--feedback-rerun N``)
and repeats of new tests (``--feedback-new-runs K``), docs/flaky.md.

Registered only when one of those options is on, in every process that runs tests. Each attempt
is pytest's own protocol (set-up, call, tear-down; fixtures torn down and set up again as pytest
would for the next test); between attempts the set-ups that failed are forgotten, so that the
next attempt sets them up anew instead of raising the cached error. The attempts travel to the
recording process on the last logged report (`ATTEMPTS_ATTR`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Callable, Optional

import pytest
from _pytest.runner import runtestprotocol

from pytest_feedback.history.records import REPEAT, RERUN

#: Report attribute: every attempt of the test, ``(kind, outcome, seconds, started_at)``, on the
#: last report logged for it (the first attempt's kind is that of the ones after it).
ATTEMPTS_ATTR = "feedback_attempts"
#: The outcome a failed report of an attempt that is followed by another gets (as
#: pytest-rerunfailures names it; shown as "R").
RERUN_OUTCOME = "rerun"


def attempt_outcome(reports: Sequence[pytest.TestReport]) -> str:
    """One attempt's outcome from its phase reports: failed (the call), error (set-up or
    tear-down), skipped, xfailed, or passed."""
    outcome = "passed"
    for report in reports:
        if report.failed:
            return "failed" if report.when == "call" else "error"
        if report.skipped:
            outcome = "xfailed" if hasattr(report, "wasxfail") else "skipped"
    return outcome


def forget_failures(item: pytest.Item) -> None:
    """Make the next attempt set up again what failed to set up in this one.

    pytest caches a fixture's error (``cached_result``) and a collector's failed set-up (in the
    session's set-up state) for the tests after it; an attempt again must not inherit them.
    """
    info = getattr(item, "_fixtureinfo", None)
    for definitions in getattr(info, "name2fixturedefs", {}).values():
        for fixturedef in definitions:
            cached = getattr(fixturedef, "cached_result", None)
            if cached is not None and len(cached) > 2 and cached[2] is not None:
                # What pytest does to a fixture it tears down: run and drop its finalizers (an
                # error of a failed set-up's finalizer has nothing left to tell).
                with contextlib.suppress(Exception):
                    fixturedef.finish(request=item._request)  # type: ignore[attr-defined]
                fixturedef.cached_result = None
                getattr(fixturedef, "_finalizers", []).clear()
    state = getattr(item.session, "_setupstate", None)
    stack = getattr(state, "stack", None)
    if isinstance(stack, dict):
        for node, (finalizers, error) in list(stack.items()):
            if error is not None:
                for finalizer in reversed(finalizers):
                    finalizer()
                del stack[node]


class AttemptRunner:
    """Runs failed tests again and new tests several times (see the module docstring)."""

    def __init__(
        self,
        reruns: int,
        repeats: int,
        *,
        defer: Callable[[pytest.Item], bool] = lambda item: False,
        budget_left: Optional[Callable[[], float]] = None,
    ) -> None:
        self.reruns = reruns
        self.repeats = repeats
        #: Node ids of the tests to repeat (`NewTests` fills it at collection); None: none.
        self.repeat_ids: set[str] = set()
        #: Items another plugin reruns (pytest-rerunfailures' ``flaky`` mark): left to it.
        self._defer = defer
        #: Seconds left of a ``--feedback-budget`` run (None: no budget).
        self._budget_left = budget_left

    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: Optional[pytest.Item]) -> Any:
        repeat = self.repeats > 0 and item.nodeid in self.repeat_ids
        if not repeat and (self.reruns <= 0 or self._defer(item)):
            return None
        ihook = item.ihook
        ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        if repeat:
            self._repeat(item, nextitem)
        else:
            self._rerun(item, nextitem)
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    def _rerun(self, item: pytest.Item, nextitem: Optional[pytest.Item]) -> None:
        attempts: list[tuple[str, str, float, Optional[float]]] = []
        for number in range(self.reruns + 1):
            reports = runtestprotocol(item, nextitem=nextitem, log=False)
            outcome = attempt_outcome(reports)
            attempts.append(_attempt(RERUN, outcome, reports))
            if outcome not in ("failed", "error") or number == self.reruns:
                break
            for report in reports:
                if report.failed:
                    report.outcome = RERUN_OUTCOME  # type: ignore[assignment]
                    item.ihook.pytest_runtest_logreport(report=report)
            forget_failures(item)
        self._log(item, reports, attempts)

    def _repeat(self, item: pytest.Item, nextitem: Optional[pytest.Item]) -> None:
        """Up to 1 + `repeats` attempts, until the test has both passed and failed (then it is
        flaky, and the failing attempt is the one logged: the run fails) or skipped."""
        attempts: list[tuple[str, str, float, Optional[float]]] = []
        chosen: Optional[list[pytest.TestReport]] = None
        seen: set[bool] = set()
        for number in range(self.repeats + 1):
            if number and not self._fits(attempts):
                break
            reports = runtestprotocol(item, nextitem=nextitem, log=False)
            outcome = attempt_outcome(reports)
            attempts.append(_attempt(REPEAT, outcome, reports))
            if outcome not in ("passed", "failed", "error"):
                chosen = reports
                break
            failed = outcome != "passed"
            seen.add(failed)
            if failed:
                chosen = chosen or reports
                forget_failures(item)
            if len(seen) == 2:
                break
        self._log(item, chosen or reports, attempts if len(attempts) > 1 else [])

    def _fits(self, attempts: list[tuple[str, str, float, Optional[float]]]) -> bool:
        """Whether one more attempt fits what is left of the budget (always without one)."""
        if self._budget_left is None:
            return True
        return self._budget_left() > max(a[2] for a in attempts)

    def _log(
        self,
        item: pytest.Item,
        reports: list[pytest.TestReport],
        attempts: list[tuple[str, str, float, Optional[float]]],
    ) -> None:
        if len(attempts) > 1 and reports:
            reports[-1].__dict__[ATTEMPTS_ATTR] = attempts
        for report in reports:
            item.ihook.pytest_runtest_logreport(report=report)

    def pytest_report_teststatus(self, report: pytest.TestReport) -> Any:
        if report.outcome == RERUN_OUTCOME:
            return "rerun", "R", ("RERUN", {"yellow": True})
        return None


def _attempt(
    kind: str, outcome: str, reports: Sequence[pytest.TestReport]
) -> tuple[str, str, float, Optional[float]]:
    start = getattr(reports[0], "start", None) if reports else None
    return kind, outcome, sum(r.duration for r in reports), start
