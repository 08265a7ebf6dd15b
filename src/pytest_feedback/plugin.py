"""pytest hooks only: options, wiring, and the terminal line. The work happens elsewhere."""

from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING, Optional

import pytest

from pytest_feedback.durations import parse_duration
from pytest_feedback.errors import ConfigError
from pytest_feedback.session.mapping import (
    configure_map,
    discard_map,
    start_map,
    unconfigure_map,
    write_map_summary,
)
from pytest_feedback.session.writer import write_history
from pytest_feedback.settings import (
    DEFAULT_KEEP_RUNS,
    ENV_DB,
    Settings,
    misread_db_option,
    parse_keep_runs,
    resolve_db_path,
)

if TYPE_CHECKING:
    from pytest_feedback.history.records import RunRecord
    from pytest_feedback.session.parallel import ParallelOptions
    from pytest_feedback.session.recorder import RunRecorder

SETTINGS_KEY = pytest.StashKey[Settings]()
RECORDER_KEY: pytest.StashKey[RunRecorder] = pytest.StashKey()
PARALLEL_KEY: pytest.StashKey[ParallelOptions] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("feedback", "pytest-feedback: record, map, select and plan test runs")
    group.addoption(
        "--feedback",
        action="store_true",
        default=None,
        help="Record this run (test phases, fixture costs) into the history. "
        "Any other --feedback-* option records too. Ini: feedback = true.",
    )
    group.addoption(
        "--feedback-db",
        metavar="PATH",
        default=None,
        help=f"History file, given as --feedback-db=PATH (default .pytest-feedback/history.db "
        f"under the rootdir; also ini feedback_db and ${ENV_DB}).",
    )
    group.addoption(
        "--feedback-report",
        action="store_true",
        default=False,
        help="Record this run, then print the report: slowest tests, fixtures and files, "
        "slowed-down and flaky tests (also `pytest-feedback report`).",
    )
    group.addoption(
        "--feedback-no-record",
        action="store_true",
        default=False,
        help="Use the history without adding this run to it.",
    )
    group.addoption(
        "--feedback-cov",
        action="store_true",
        default=None,
        help="Also map each test to the lines, modules and files it uses (per-test coverage; "
        "`pytest-feedback why/deps` read it). Ini: feedback_cov = true.",
    )
    # -- parallel runs (parallel.py) --
    group.addoption(
        "--feedback-shard",
        metavar="K/N|auto",
        default=None,
        help="Run shard K of N (1-based) of the tests, planned from the history so that shards "
        "take equal time; also $PYTEST_FEEDBACK_SHARD. Shards are disjoint; together they run "
        "every test. 'auto' reads GitLab's, CircleCI's or Buildkite's parallel-job variables.",
    )
    group.addoption(
        "--feedback-dist",
        action="store_true",
        default=False,
        help="With -n NUM: schedule tests on xdist workers from the history (long and "
        "fixture-heavy work first, fixture families together, idle workers take work).",
    )
    add_selection_options(group)
    parser.addini(
        "feedback", type="bool", default=False, help="Record every run (pytest-feedback)."
    )
    parser.addini(
        "feedback_cov", type="bool", default=False, help="Map tests to code (--feedback-cov)."
    )
    parser.addini(
        "feedback_cov_include",
        type="linelist",
        default=[],
        help="Directories (relative to the rootdir) whose code --feedback-cov maps; default all.",
    )
    parser.addini(
        "feedback_cov_omit",
        type="linelist",
        default=[],
        help="File patterns (fnmatch, e.g. */generated/*) --feedback-cov leaves out.",
    )
    parser.addini("feedback_db", default="", help="History file of pytest-feedback.")
    parser.addini(
        "feedback_budget", default="", help="Time budget of every run (--feedback-budget)."
    )
    parser.addini(
        "feedback_keep_runs",
        default=str(DEFAULT_KEEP_RUNS),
        help="Runs whose details the history keeps (aggregates are kept for all).",
    )


def add_selection_options(group: pytest.OptionGroup) -> None:
    group.addoption(
        "--feedback-select",
        action="store_true",
        default=False,
        help="Run only the tests the changes since the coverage map was recorded affect "
        "(staged, unstaged and untracked files included).",
    )
    group.addoption(
        "--feedback-base",
        metavar="REF",
        default=None,
        help="With --feedback-select/--feedback-audit: the changes since merge-base(REF, HEAD) "
        "plus the working tree (e.g. origin/main before a push).",
    )
    group.addoption(
        "--feedback-audit",
        action="store_true",
        default=False,
        help="Run everything; at the end report the failing tests --feedback-select would have "
        "left out, and the time it would have saved.",
    )
    group.addoption(
        "--feedback-budget",
        metavar="DURATION",
        default=None,
        help="Run the tests most likely to fail that fit DURATION (300, 300s, 5m, 1h30m) of "
        "predicted wall time, with -n N the parallel plan: affected tests first, then risk per "
        "second. Ini: feedback_budget.",
    )


def selection_mode(config: pytest.Config, budget_s: Optional[float]) -> Optional[str]:
    """``select``, ``audit`` or None; bad combinations are usage errors."""
    select = bool(config.getoption("feedback_select"))
    audit = bool(config.getoption("feedback_audit"))
    if select and audit:
        raise pytest.UsageError(
            "--feedback-select and --feedback-audit exclude each other: the audit runs everything"
        )
    if config.getoption("feedback_base") and not (select or audit or budget_s):
        raise pytest.UsageError(
            "--feedback-base needs --feedback-select, --feedback-audit or --feedback-budget"
        )
    return "select" if select else "audit" if audit else None


def budget_seconds(config: pytest.Config) -> Optional[float]:
    """The ``--feedback-budget`` (or ini ``feedback_budget``) in seconds; None without one."""
    text: Optional[str] = config.getoption("feedback_budget")
    what = "--feedback-budget"
    if text is None:
        text, what = str(config.getini("feedback_budget")).strip() or None, "feedback_budget"
    if text is None:
        return None
    try:
        return parse_duration(text, what=what)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def load_settings(config: pytest.Config) -> Settings:
    """Read options, ini and environment into `Settings`; bad values are usage errors."""
    try:
        keep_runs = parse_keep_runs(str(config.getini("feedback_keep_runs")))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    explicit: Optional[bool] = config.getoption("feedback")
    report = bool(config.getoption("feedback_report"))
    cov = bool(config.getoption("feedback_cov")) or bool(config.getini("feedback_cov"))
    budget_s = budget_seconds(config)
    selection = selection_mode(config, budget_s)
    selecting = selection is not None or budget_s is not None
    given_db = bool(config.getoption("feedback_db"))  # DESIGN: any --feedback-* option records
    record = bool(explicit) or bool(config.getini("feedback")) or report or cov or selecting
    record = record or given_db
    if config.getoption("feedback_no_record"):
        record = cov = False
    try:
        db_path = resolve_db_path(
            cli=config.getoption("feedback_db"),
            ini=str(config.getini("feedback_db")) or None,
            ini_dir=config.inipath.parent if config.inipath else None,
            invocation_dir=config.invocation_params.dir,
            rootpath=config.rootpath,
        )
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    given = config.args if config.args_source == pytest.Config.ArgsSource.ARGS else []
    misread = misread_db_option(
        config.invocation_params.args,
        given,
        config.invocation_params.dir,
        config.rootpath,
        config.inipath,
    )
    if misread is not None:
        raise pytest.UsageError(misread)
    return Settings(
        record=record,
        db_path=db_path,
        keep_runs=keep_runs,
        report=report,
        cov=cov,
        selection=selection,
        budget_s=budget_s,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """With --feedback-cov, start measuring before the first conftest.py is imported."""
    start_map(early_config)


def _run_uuid(config: pytest.Config) -> Optional[str]:
    recorder = config.stash.get(RECORDER_KEY, None)
    return recorder.run.uuid if recorder is not None else None


def pytest_configure(config: pytest.Config) -> None:
    settings = load_settings(config)
    parallel = configure_parallel(config, settings)
    if parallel is not None and not config.getoption("feedback_no_record"):
        settings = dataclasses.replace(settings, record=True)
    config.stash[SETTINGS_KEY] = settings
    # Registered in this order, the collection filters run select -> budget -> shard (pluggy
    # calls the hooks of one priority last-registered first).
    register_budget(config, settings)
    register_selection(config, settings)
    if not settings.enabled:
        discard_map(config)
        return
    from pytest_feedback.session.recorder import FixtureProbe, RunRecorder

    workerinput = getattr(config, "workerinput", None)
    worker = str(workerinput["workerid"]) if workerinput is not None else None
    probe = FixtureProbe(config, worker)
    config.pluginmanager.register(probe, "feedback-probe")
    if worker is None and settings.record:
        shard = parallel.shard_text if parallel is not None else None
        recorder = RunRecorder(config, probe, lambda run: write_history(settings, run), shard=shard)
        config.pluginmanager.register(recorder, "feedback-recorder")
        config.stash[RECORDER_KEY] = recorder
    configure_map(config, settings, worker, lambda: _run_uuid(config))


def configure_parallel(config: pytest.Config, settings: Settings) -> Optional[ParallelOptions]:
    """Register the shard filter and the xdist scheduler when asked for (parallel.py)."""
    from pytest_feedback.session.parallel import FeedbackDist, ShardSelector, read_options

    options = read_options(config, budget=settings.budget_s is not None)
    if options is None:
        return None
    config.stash[PARALLEL_KEY] = options
    if options.shard is not None:
        k, n = options.shard
        config.pluginmanager.register(
            ShardSelector(config, k, n, settings.db_path, options.source), "feedback-shard"
        )
    if options.dist and not hasattr(config, "workerinput"):

        def run() -> Optional[RunRecord]:
            recorder = config.stash.get(RECORDER_KEY, None)
            return recorder.run if recorder is not None else None

        config.pluginmanager.register(FeedbackDist(config, settings.db_path, run), "feedback-dist")
    return options


def register_budget(config: pytest.Config, settings: Settings) -> None:
    if settings.budget_s is not None:
        from pytest_feedback.session.budget import BudgetRun

        base = config.getoption("feedback_base")
        config.pluginmanager.register(
            BudgetRun(config, settings.db_path, settings.budget_s, base), "feedback-budget"
        )


def register_selection(config: pytest.Config, settings: Settings) -> None:
    mode = settings.selection
    if mode is not None:
        from pytest_feedback.session.selection import SelectionRun

        base = config.getoption("feedback_base")
        run = SelectionRun(config, settings.db_path, base, audit=mode == "audit")
        config.pluginmanager.register(run, "feedback-select")


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    recorder = config.stash.get(RECORDER_KEY, None)
    if recorder is not None and recorder.outcome_line:
        terminalreporter.write_line(recorder.outcome_line)
        recorder.outcome_line = None
    write_map_summary(terminalreporter, config)
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is not None and settings.report and not hasattr(config, "workerinput"):
        from pytest_feedback.session.report import write_terminal_report

        uuid = recorder.run.uuid if recorder is not None else None
        write_terminal_report(terminalreporter, settings.db_path, uuid)


#: The collection filters whose emptied collection is a decision, not a failure.
FILTERS = ("feedback-select", "feedback-budget", "feedback-shard")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No test ran because our filter left none (nothing affected, an empty shard, a budget
    nothing fits): the filter's line said so, and that is a success, not pytest's exit 5."""
    if exitstatus != pytest.ExitCode.NO_TESTS_COLLECTED:
        return
    manager = session.config.pluginmanager
    if any(getattr(manager.get_plugin(name), "emptied", False) for name in FILTERS):
        session.exitstatus = pytest.ExitCode.OK


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.stash.get(RECORDER_KEY, None)
    if recorder is not None and recorder.outcome_line and "warning" in recorder.outcome_line:
        sys.stderr.write(recorder.outcome_line + "\n")  # no terminal reporter printed it
    settings = config.stash.get(SETTINGS_KEY, None)
    if recorder is not None and settings is not None:
        from pytest_feedback.session.exitwatch import watch_budget_run

        watch_budget_run(config, settings.db_path, recorder.run, recorder.written)
    unconfigure_map(config)
    for name in (
        "feedback-recorder",
        "feedback-probe",
        "feedback-shard",
        "feedback-dist",
        "feedback-select",
        "feedback-budget",
    ):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin)
    for key in (RECORDER_KEY, PARALLEL_KEY):
        if key in config.stash:  # type: ignore[misc]
            del config.stash[key]  # type: ignore[misc]
    if SETTINGS_KEY in config.stash:
        del config.stash[SETTINGS_KEY]
