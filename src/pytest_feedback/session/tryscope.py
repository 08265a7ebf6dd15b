"""``--feedback-try-scope NAME=SCOPE``: run the suite with a fixture's scope widened, without
editing code, and compare the run with the history (`planning.advice.trial`).

Every process that runs tests widens the fixture's definitions once collection has found them
(before any runs, and before pytest orders the tests by their fixtures); the process that writes
history also keeps each test's outcome and seconds and, at the end, says which outcomes changed
and the seconds saved. Such a run is not recorded: its times are not the suite's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pytest_feedback.session.keys import register
from pytest_feedback.settings import Settings

OPTION = "--feedback-try-scope"
SCOPES = ("class", "module", "package", "session")
_ORDER = ("function", "class", "module", "package", "session")


def add_option(group: pytest.OptionGroup) -> None:
    group.addoption(
        OPTION,
        action="append",
        metavar="NAME=SCOPE",
        default=None,
        help="Run with fixture NAME widened to SCOPE (class, module, package, session) without "
        "editing code; the end of the run says which outcomes changed against the history and "
        "the seconds saved. Repeatable. Not recorded (`pytest-feedback advise` suggests these).",
    )


def parse(values: list[str]) -> dict[str, str]:
    """``["db=module"]`` -> ``{"db": "module"}``; a bad value is a usage error naming it."""
    out: dict[str, str] = {}
    for value in values:
        name, _, scope = value.partition("=")
        name, scope = name.strip(), scope.strip()
        if not name.isidentifier() or scope not in SCOPES:
            raise pytest.UsageError(
                f"{OPTION} {value}: give NAME=SCOPE, a fixture name and one of "
                f"{', '.join(SCOPES)}, e.g. {OPTION} db=module"
            )
        out[name] = scope
    return out


def configure(config: pytest.Config, settings: Settings) -> Settings:
    """Register the widening when asked for; such a run records nothing."""
    values = config.getoption("feedback_try_scope", None)
    if not values:
        return settings
    wanted = parse(list(values))
    register(config, ScopeTrial(config, wanted, settings), "feedback-try-scope")
    return dataclasses.replace(settings, record=False)


class ScopeTrial:
    """Widens the fixtures; in the process that writes history, judges the run."""

    def __init__(self, config: pytest.Config, wanted: dict[str, str], settings: Settings) -> None:
        self._config = config
        self._wanted = wanted
        self._settings = settings
        self._controller = not hasattr(config, "workerinput")
        #: Per test: its outcome so far and its phases' seconds.
        self._now: dict[str, tuple[str, float]] = {}
        self.lines: list[str] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        from _pytest.scope import Scope

        # The definitions the tests resolved (the attribute the fixture probe reads too),
        # each widened once; before pytest's own hook orders the tests by their fixtures.
        found: dict[str, dict[int, Any]] = {name: {} for name in self._wanted}
        for item in items:
            name2defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
            for name, defs in found.items():
                for fixturedef in name2defs.get(name, ()):
                    defs[id(fixturedef)] = fixturedef
        for name, defs in found.items():
            scope = self._wanted[name]
            if not defs:
                self.lines.append(
                    f"feedback: warning: {OPTION} {name}={scope}: no collected test requests a "
                    f"fixture named {name!r}"
                )
            for fixturedef in defs.values():
                if _ORDER.index(str(fixturedef.scope)) < _ORDER.index(scope):
                    fixturedef._scope = Scope(scope)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self._controller:
            return
        outcome, seconds = self._now.get(report.nodeid, ("passed", 0.0))
        seconds += float(report.duration or 0.0)
        if report.when == "call" and hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        elif report.failed:
            outcome = "failed" if report.when == "call" else "error"
        elif report.skipped and outcome == "passed":
            outcome = "skipped"
        self._now[report.nodeid] = (outcome, seconds)

    def pytest_sessionfinish(self) -> None:
        if not self._controller or not self._now:
            return
        try:
            self.lines += self._judge()
        except Exception as exc:  # the comparison is ours: never the user's run
            self.lines.append(f"feedback: warning: {OPTION}: no comparison ({exc})")

    def _judge(self) -> list[str]:
        from pytest_feedback.history.store import Store
        from pytest_feedback.planning.advice.trial import judge

        path = self._settings.db_path
        if not path.is_file():
            return [f"feedback: {OPTION}: no history at {path} to compare with"]
        with Store.open_existing(path) as store:
            estimates = store.reads.load_estimates()
            recent = [
                (store.reads.test_time(int(run["id"])), int(run["tests"]))
                for run in store.reads.runs(limit=5)
            ]
        widened = [f"{name}={scope}" for name, scope in self._wanted.items()]
        return judge(widened, estimates.tests, self._now, recent).lines()

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        for line in self.lines:
            terminalreporter.write_line(line)
        self.lines = []
