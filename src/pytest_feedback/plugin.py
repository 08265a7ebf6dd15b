"""pytest hooks only: options, wiring, and the terminal line. The work happens elsewhere."""

from __future__ import annotations

import dataclasses
import sys
from typing import Optional

import pytest

from pytest_feedback.session import imports, mapping, tryscope
from pytest_feedback.session import options as session_options
from pytest_feedback.session.keys import (
    PARALLEL_KEY,
    RECORDER_KEY,
    SELECTION_KEY,
    SETTINGS_KEY,
    add_filter,
    emptied_by_a_filter,
    recorded_run,
    register,
    unregister_all,
)
from pytest_feedback.session.options import ParallelOptions, load_settings, read_parallel_options
from pytest_feedback.settings import DEFAULT_KEEP_RUNS, ENV_DB, Settings

pytest_plugins = ["pytest_feedback.session.flaky"]  # reruns, repeats, quarantine: its own options


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
        "--feedback-html",
        metavar="PATH",
        default=None,
        help="Record this run, then write the HTML report (timeline, trends, tables) to PATH, "
        "given as --feedback-html=PATH (also `pytest-feedback report --format html`).",
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
    # -- parallel runs (session/parallel.py) --
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
    session_options.add_select_ini(parser)
    tryscope.add_option(group)
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
    session_options.add_select_options(group)
    group.addoption(
        "--feedback-budget",
        metavar="DURATION",
        default=None,
        help="Run the tests most likely to fail that fit DURATION (300, 300s, 5m, 1h30m; or 90%%: "
        "the least that caught 90%% of the history's failing runs) of predicted wall time, with "
        "-n N the parallel plan: affected first, then risk per second. Ini: feedback_budget.",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Before the first conftest.py is imported: time imports; with --feedback-cov, measure."""
    session_options.check_db_option_early(early_config)
    mapping.start_map(early_config)
    imports.start(early_config)


def pytest_configure(config: pytest.Config) -> None:
    settings = load_settings(config)
    parallel = configure_parallel(config, settings)
    if parallel is not None and not config.getoption("feedback_no_record"):
        settings = dataclasses.replace(settings, record=True)
    settings = tryscope.configure(config, settings)
    config.stash[SETTINGS_KEY] = settings
    # Registered so, the filters run select -> budget -> shard (pluggy: last-registered first).
    register_filters(config, settings)
    imports.configure(config, settings.enabled)
    if not settings.enabled:
        mapping.discard_map(config)
        return
    from pytest_feedback.session.probe import FixtureProbe
    from pytest_feedback.session.recorder import RunRecorder
    from pytest_feedback.session.writer import write_history

    workerinput = getattr(config, "workerinput", None)
    worker = str(workerinput["workerid"]) if workerinput is not None else None
    probe = FixtureProbe(config, worker)
    register(config, probe, "feedback-probe")
    if worker is None and settings.record:
        shard = parallel.shard_text if parallel is not None else None
        recorder = RunRecorder(config, probe, lambda run: write_history(settings, run), shard=shard)
        register(config, recorder, "feedback-recorder")
        config.stash[RECORDER_KEY] = recorder
    mapping.configure_map(
        config, settings, worker, lambda: getattr(recorded_run(config), "uuid", None)
    )


def configure_parallel(config: pytest.Config, settings: Settings) -> Optional[ParallelOptions]:
    """Register the shard filter and the xdist scheduler when asked for (session/parallel.py)."""
    options = read_parallel_options(config, budget=settings.budget_s is not None)
    if options is None:
        return None
    from pytest_feedback.session.parallel import FeedbackDist, ShardSelector

    config.stash[PARALLEL_KEY] = options
    if options.shard is not None:
        k, n = options.shard
        shard = ShardSelector(config, k, n, settings.db_path, options.source)
        add_filter(config, shard, "feedback-shard")
    if options.dist and not hasattr(config, "workerinput"):
        dist = FeedbackDist(config, settings.db_path, lambda: recorded_run(config))
        register(config, dist, "feedback-dist")
    return options


def register_filters(config: pytest.Config, settings: Settings) -> None:
    """The budget run, then the selection run (which therefore decides first)."""
    base = config.getoption("feedback_base")
    if settings.budget_s is not None:
        from pytest_feedback.session.budget import BudgetRun

        budget = BudgetRun(config, settings.db_path, settings.budget_s, base, settings.budget_share)
        add_filter(config, budget, "feedback-budget")
    if settings.selection is not None:
        from pytest_feedback.session.selection import SelectionRun

        run = SelectionRun(config, settings.db_path, base, audit=settings.selection == "audit")
        add_filter(config, run, "feedback-select")
        config.stash[SELECTION_KEY] = run


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    recorder = config.stash.get(RECORDER_KEY, None)
    if recorder is not None and recorder.outcome_line:
        terminalreporter.write_line(recorder.outcome_line)
        recorder.outcome_line = None
    mapping.write_map_summary(terminalreporter, config)
    settings = config.stash.get(SETTINGS_KEY, None)
    asked = settings is not None and (settings.report or settings.html_path is not None)
    if asked and settings is not None and not hasattr(config, "workerinput"):
        # Imported only when a report was asked for: the report pulls in every planner
        # (a tenth of a second that a plain recorded run must not pay).
        from pytest_feedback.session.report import write_reports

        write_reports(terminalreporter, settings, recorder.run.uuid if recorder else None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No test ran because our filter left none (nothing affected, an empty shard, a budget
    nothing fits): the filter's line said so, and that is a success, not pytest's exit 5."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and emptied_by_a_filter(session.config):
        session.exitstatus = pytest.ExitCode.OK


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.stash.get(RECORDER_KEY, None)
    if recorder is not None and recorder.outcome_line and "warning" in recorder.outcome_line:
        sys.stderr.write(recorder.outcome_line + "\n")  # no terminal reporter printed it
    settings = config.stash.get(SETTINGS_KEY, None)
    if recorder is not None and settings is not None:
        from pytest_feedback.session.exitwatch import watch_budget_run

        watch_budget_run(config, settings.db_path, recorder.run, recorder.written)
    mapping.unconfigure_map(config)
    unregister_all(config)
