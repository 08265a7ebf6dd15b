"""pytest hooks only: options, wiring, and the terminal line. The work happens elsewhere."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import pytest

from .errors import ConfigError, FeedbackError
from .settings import (
    DEFAULT_KEEP_RUNS,
    ENV_DB,
    Settings,
    parse_keep_runs,
    resolve_db_path,
)

if TYPE_CHECKING:
    from .parallel import ParallelOptions
    from .recorder import RunRecorder
    from .records import RunRecord

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
        help=f"History file (default .pytest-feedback/history.db under the rootdir; "
        f"also ini feedback_db and ${ENV_DB}).",
    )
    group.addoption(
        "--feedback-no-record",
        action="store_true",
        default=False,
        help="Use the history without adding this run to it.",
    )
    # -- parallel runs (parallel.py) --
    group.addoption(
        "--feedback-shard",
        metavar="K/N",
        default=None,
        help="Run shard K of N (1-based) of the tests, planned from the history so that shards "
        "take equal time; also $PYTEST_FEEDBACK_SHARD. Shards are disjoint; together they run "
        "every test.",
    )
    group.addoption(
        "--feedback-dist",
        action="store_true",
        default=False,
        help="With -n NUM: schedule tests on xdist workers from the history (long and "
        "fixture-heavy work first, fixture families together, idle workers take work).",
    )
    parser.addini(
        "feedback", type="bool", default=False, help="Record every run (pytest-feedback)."
    )
    parser.addini("feedback_db", default="", help="History file of pytest-feedback.")
    parser.addini(
        "feedback_keep_runs",
        default=str(DEFAULT_KEEP_RUNS),
        help="Runs whose details the history keeps (aggregates are kept for all).",
    )


def load_settings(config: pytest.Config) -> Settings:
    """Read options, ini and environment into `Settings`; bad values are usage errors."""
    try:
        keep_runs = parse_keep_runs(str(config.getini("feedback_keep_runs")))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    explicit: Optional[bool] = config.getoption("feedback")
    record = bool(explicit) or bool(config.getini("feedback"))
    if config.getoption("feedback_no_record"):
        record = False
    db_path = resolve_db_path(
        cli=config.getoption("feedback_db"),
        ini=str(config.getini("feedback_db")) or None,
        ini_dir=config.inipath.parent if config.inipath else None,
        invocation_dir=config.invocation_params.dir,
        rootpath=config.rootpath,
    )
    return Settings(record=record, db_path=db_path, keep_runs=keep_runs)


def pytest_configure(config: pytest.Config) -> None:
    settings = load_settings(config)
    parallel = configure_parallel(config, settings)
    if parallel is not None and not config.getoption("feedback_no_record"):
        settings = dataclasses.replace(settings, record=True)
    config.stash[SETTINGS_KEY] = settings
    if not settings.enabled:
        return
    from .recorder import FixtureProbe, RunRecorder

    workerinput = getattr(config, "workerinput", None)
    worker = str(workerinput["workerid"]) if workerinput is not None else None
    probe = FixtureProbe(config, worker)
    config.pluginmanager.register(probe, "feedback-probe")
    if worker is None and settings.record:
        shard = parallel.shard_text if parallel is not None else None
        recorder = RunRecorder(config, probe, lambda run: write_history(settings, run), shard=shard)
        config.pluginmanager.register(recorder, "feedback-recorder")
        config.stash[RECORDER_KEY] = recorder


def configure_parallel(config: pytest.Config, settings: Settings) -> Optional[ParallelOptions]:
    """Register the shard filter and the xdist scheduler when asked for (parallel.py)."""
    from .parallel import FeedbackDist, ShardSelector, read_options

    options = read_options(config)
    if options is None:
        return None
    config.stash[PARALLEL_KEY] = options
    if options.shard is not None:
        k, n = options.shard
        config.pluginmanager.register(
            ShardSelector(config, k, n, settings.db_path), "feedback-shard"
        )
    if options.dist and not hasattr(config, "workerinput"):

        def run() -> Optional[RunRecord]:
            recorder = config.stash.get(RECORDER_KEY, None)
            return recorder.run if recorder is not None else None

        config.pluginmanager.register(FeedbackDist(config, settings.db_path, run), "feedback-dist")
    return options


def write_history(settings: Settings, run: RunRecord) -> str:
    """Write the run; never raise. Returns the terminal line that says what happened."""
    from .store import Store

    path = settings.db_path
    try:
        with Store(path) as store:
            run_id = store.record_run(run, keep_runs=settings.keep_runs)
    except FeedbackError as exc:
        return f"feedback: warning: this run was not recorded: {exc}"
    except Exception as exc:  # never break the user's run because of our trouble
        return f"feedback: warning: this run was not recorded ({type(exc).__name__}: {exc})"
    return (
        f"feedback: recorded run {run_id} ({len(run.tests):,} tests, "
        f"{len(run.fixtures):,} fixture executions) into {shown_path(path)}"
    )


def shown_path(path: Path) -> str:
    """``path`` relative to the current directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    recorder = config.stash.get(RECORDER_KEY, None)
    if recorder is not None and recorder.outcome_line:
        terminalreporter.write_line(recorder.outcome_line)
        recorder.outcome_line = None


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.stash.get(RECORDER_KEY, None)
    if recorder is not None and recorder.outcome_line and "warning" in recorder.outcome_line:
        sys.stderr.write(recorder.outcome_line + "\n")  # no terminal reporter printed it
    for name in ("feedback-recorder", "feedback-probe", "feedback-shard", "feedback-dist"):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin)
    if RECORDER_KEY in config.stash:
        del config.stash[RECORDER_KEY]
    if PARALLEL_KEY in config.stash:
        del config.stash[PARALLEL_KEY]
    if SETTINGS_KEY in config.stash:
        del config.stash[SETTINGS_KEY]
