"""Flaky tests in a pytest session: the options ``--feedback-rerun`` and ``--feedback-new-runs``,
the quarantine file, and the objects they register (docs/flaky.md).

A pytest plugin module of its own, named by plugin.py's ``pytest_plugins`` (its options are
declared here, next to what reads them). Nothing is registered unless asked for: reruns and
repeats only with their options, the quarantine only when its file lists tests, so that a run
without them pays no hook per test.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import pytest

from pytest_feedback import quarantine
from pytest_feedback.errors import ConfigError
from pytest_feedback.session.keys import FILTERS_KEY, SETTINGS_KEY, recorded_run, register
from pytest_feedback.session.options import attempt_counts

if TYPE_CHECKING:
    from pytest_feedback.session.attempt_watch import AttemptWatch

#: The run's `AttemptWatch` (in the process that reports), when one is registered.
WATCH_KEY: pytest.StashKey[AttemptWatch] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("feedback")
    group.addoption(
        "--feedback-rerun",
        metavar="N",
        default=None,
        help="Run a failed test again up to N times in the same process; one that then passes "
        "is recorded flaky (with every attempt). Ini: feedback_rerun.",
    )
    group.addoption(
        "--feedback-new-runs",
        metavar="K",
        default=None,
        help="Run tests new to the history (or whose file changed since its last run) K extra "
        "times, to catch a new flaky test. Ini: feedback_new_runs.",
    )
    parser.addini("feedback_rerun", default="", help="Reruns of a failed test (--feedback-rerun).")
    parser.addini(
        "feedback_new_runs", default="", help="Extra runs of new tests (--feedback-new-runs)."
    )
    parser.addini(
        "feedback_quarantine",
        default="",
        help=f"The quarantine file (default {quarantine.DEFAULT_FILE} in the rootdir).",
    )


@pytest.hookimpl(trylast=True)  # after plugin.py's: the settings and the recorder are there
def pytest_configure(config: pytest.Config) -> None:
    reruns, repeats = attempt_counts(config)
    configure_quarantine(config)
    worker = hasattr(config, "workerinput")
    rerunfailures = _rerunfailures(config)
    ours = reruns if rerunfailures is None or not rerunfailures[1] else 0
    if ours or repeats:
        from pytest_feedback.session.attempts import AttemptRunner

        runner = AttemptRunner(
            ours,
            repeats,
            defer=_marked_flaky if rerunfailures is not None else lambda item: False,
            budget_left=_budget_left(config),
        )
        register(config, runner, "feedback-attempts")
        if repeats:
            register(config, NewTests(config, runner), "feedback-new-tests")
    if not worker and (ours or repeats or rerunfailures is not None):
        from pytest_feedback.session.attempt_watch import AttemptWatch

        # pytest-rerunfailures' reruns (all of them, or those of tests marked flaky) are read.
        watch = AttemptWatch(config, read_reruns=rerunfailures is not None)
        register(config, watch, "feedback-attempt-watch")
        config.stash[WATCH_KEY] = watch


def configure_quarantine(config: pytest.Config) -> None:
    """Register the quarantine when its file lists tests; a broken file is a usage error."""
    try:
        configured = str(config.getini("feedback_quarantine") or "").strip() or None
        path = quarantine.find_file(config.rootpath, configured)
        entries = quarantine.load(path)
        if not entries:
            return
        active, expired = quarantine.split(entries, quarantine.today())
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    from pytest_feedback.session.quarantine import QuarantineGuard

    register(config, QuarantineGuard(active, expired), "feedback-quarantine")


def _rerunfailures(config: pytest.Config) -> Optional[tuple[object, bool]]:
    """pytest-rerunfailures when it is loaded, and whether it reruns every failed test
    (``--reruns``); None when it is not loaded."""
    plugin = config.pluginmanager.get_plugin("rerunfailures")
    if plugin is None:
        return None
    return plugin, bool(config.getoption("reruns", None))


def _marked_flaky(item: pytest.Item) -> bool:
    """pytest-rerunfailures reruns a test marked ``flaky`` itself."""
    return item.get_closest_marker("flaky") is not None


def _budget_left(config: pytest.Config) -> Optional[Callable[[], float]]:
    """Seconds left of a ``--feedback-budget`` run: repeats count against the budget."""
    for found in config.stash.get(FILTERS_KEY, []):
        remaining = getattr(found, "_remaining", None)
        if callable(remaining) and getattr(found, "budget_s", None) is not None:
            return remaining  # type: ignore[no-any-return]
    return None


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The attempts into the run's record (before the recorder writes it: it runs last)."""
    watch = session.config.stash.get(WATCH_KEY, None)
    if watch is not None:
        watch.finish(recorded_run(session.config))


class NewTests:
    """Finds the tests to repeat once collection is done: new to the history, or in a test
    file changed since the history's last run (or since ``--feedback-base``)."""

    def __init__(self, config: pytest.Config, runner: object) -> None:
        self._config = config
        self._runner = runner
        self.line: Optional[str] = None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from pytest_feedback.session.attempts import AttemptRunner

        runner = self._runner
        assert isinstance(runner, AttemptRunner)
        settings = self._config.stash.get(SETTINGS_KEY, None)
        try:
            found, why = new_tests(
                self._config.rootpath,
                settings.db_path if settings is not None else None,
                [item.nodeid for item in session.items],
                self._config.getoption("feedback_base", None),
            )
        except Exception as exc:  # never break the run: no repeats, one line
            found, why = set(), f"not applied ({type(exc).__name__}: {exc})"
        runner.repeat_ids = found
        k = runner.repeats
        if found:
            self.line = f"feedback: {len(found):,} new test(s) ran up to {k} extra times ({why})"
        elif why:
            self.line = f"feedback: --feedback-new-runs {k}: {why}"
        if not found and not runner.reruns:
            # Nothing to repeat: the runner leaves the test loop alone (no hook per test).
            self._config.pluginmanager.unregister(runner)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.line and not hasattr(self._config, "workerinput"):
            terminalreporter.write_line(self.line)


def new_tests(
    rootpath: Path, db_path: Optional[Path], nodeids: list[str], base: Optional[str]
) -> tuple[set[str], str]:
    """The node ids to repeat and a few words on why (or on why none)."""
    from pytest_feedback.history.records import test_file
    from pytest_feedback.history.store import read_estimates
    from pytest_feedback.selection.changes import ChangeError, Repository

    if db_path is None:
        return set(), "no history to compare with"
    found = read_estimates(db_path, lambda store: store.reads.runs(limit=1))
    if found.reason is not None or not found.estimates.tests:
        return set(), "no history yet: no test is new to it"
    known = found.estimates.tests
    new = {n for n in nodeids if n not in known}
    last = found.also[0] if found.also else None
    changed: set[str] = set()
    try:
        repo = Repository(rootpath)
        since = repo.merge_base(base) if base else (last or {}).get("git_commit")
        try:
            changes = repo.changes_since(since)
        except ChangeError:  # the last run's commit is not in this clone
            changes = repo.changes_since(None)
        changed = {c.path for c in changes}
    except ChangeError:
        pass  # without git: only the tests new to the history
    files = {test_file(n) for n in nodeids} & changed
    new.update(n for n in nodeids if test_file(n) in files)
    if not new:
        return new, "no test is new to the history or in a test file changed since its last run"
    return new, "new to the history, or in a test file changed since its last run"
