"""pytest hooks only: options, wiring, and the terminal line. The work happens elsewhere."""

from __future__ import annotations

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
    from .coverage_map import MapCollector, MapPayload, MapProbe
    from .recorder import RunRecorder
    from .records import RunRecord

SETTINGS_KEY = pytest.StashKey[Settings]()
RECORDER_KEY: pytest.StashKey[RunRecorder] = pytest.StashKey()
MAP_PROBE_KEY: pytest.StashKey[MapProbe] = pytest.StashKey()
MAP_COLLECTOR_KEY: pytest.StashKey[MapCollector] = pytest.StashKey()


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
    group.addoption(
        "--feedback-cov",
        action="store_true",
        default=None,
        help="Also map each test to the lines, modules and files it uses (per-test coverage; "
        "`pytest-feedback why/deps` read it). Ini: feedback_cov = true.",
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


def selection_mode(config: pytest.Config) -> Optional[str]:
    """``select``, ``audit`` or None; bad combinations are usage errors."""
    select = bool(config.getoption("feedback_select"))
    audit = bool(config.getoption("feedback_audit"))
    if select and audit:
        raise pytest.UsageError(
            "--feedback-select and --feedback-audit exclude each other: the audit runs everything"
        )
    if config.getoption("feedback_base") and not (select or audit):
        raise pytest.UsageError("--feedback-base needs --feedback-select or --feedback-audit")
    return "select" if select else "audit" if audit else None


def load_settings(config: pytest.Config) -> Settings:
    """Read options, ini and environment into `Settings`; bad values are usage errors."""
    try:
        keep_runs = parse_keep_runs(str(config.getini("feedback_keep_runs")))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    explicit: Optional[bool] = config.getoption("feedback")
    record = bool(explicit) or bool(config.getini("feedback"))
    cov = bool(config.getoption("feedback_cov")) or bool(config.getini("feedback_cov"))
    record = record or cov
    record = record or selection_mode(config) is not None
    if config.getoption("feedback_no_record"):
        record = cov = False
    db_path = resolve_db_path(
        cli=config.getoption("feedback_db"),
        ini=str(config.getini("feedback_db")) or None,
        ini_dir=config.inipath.parent if config.inipath else None,
        invocation_dir=config.invocation_params.dir,
        rootpath=config.rootpath,
    )
    return Settings(record=record, db_path=db_path, keep_runs=keep_runs, cov=cov)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """With --feedback-cov, start measuring before the first conftest.py is imported."""
    namespace = early_config.known_args_namespace
    wanted = bool(getattr(namespace, "feedback_cov", None)) or bool(
        early_config.getini("feedback_cov")
    )
    if not wanted or getattr(namespace, "feedback_no_record", False):
        return
    from .coverage_map import CovOptions, MapProbe

    options = CovOptions.from_ini(
        early_config.rootpath,
        [str(p) for p in early_config.getini("feedback_cov_include")],
        [str(p) for p in early_config.getini("feedback_cov_omit")],
    )
    probe = MapProbe(options)
    try:
        probe.start()
    except Exception as exc:  # never break the run because of our trouble
        sys.stderr.write(f"feedback: warning: --feedback-cov could not start ({exc})\n")
        return
    early_config.stash[MAP_PROBE_KEY] = probe


def _configure_map(config: pytest.Config, settings: Settings, worker: Optional[str]) -> None:
    """Keep measuring where tests run; the process that writes history collects the map."""
    from .coverage_map import MapCollector

    probe = config.stash.get(MAP_PROBE_KEY, None)
    distributing = worker is None and getattr(config.option, "dist", "no") != "no"
    if probe is not None:
        if distributing:
            probe.discard()  # an xdist controller runs no tests
            probe = None
        else:
            config.pluginmanager.register(probe, "feedback-cov-probe")
    if worker is None and settings.cov:
        collector = MapCollector(probe, lambda payload: write_map(config, settings, payload))
        config.pluginmanager.register(collector, "feedback-cov-collector")
        config.stash[MAP_COLLECTOR_KEY] = collector


def write_map(config: pytest.Config, settings: Settings, payload: MapPayload) -> list[str]:
    """Write the run's map; never raise. Returns the terminal lines that say what happened."""
    import time

    from .mapstore import write_map as store_map
    from .store import Store

    recorder = config.stash.get(RECORDER_KEY, None)
    run_uuid = recorder.run.uuid if recorder is not None else None
    lines = list(payload.notes)
    try:
        with Store(settings.db_path) as store:
            summary = store_map(store, payload, config.rootpath, run_uuid or "", time.time())
    except FeedbackError as exc:
        return [*lines, f"feedback: warning: the coverage map was not recorded: {exc}"]
    except Exception as exc:  # never break the user's run because of our trouble
        return [*lines, f"feedback: warning: the coverage map was not recorded ({exc!r})"]
    outdated = f", {summary.outdated} older rows outdated" if summary.outdated else ""
    lines.append(
        f"feedback: mapped {summary.tests:,} tests to {summary.files:,} files{outdated}"
        f" into {shown_path(settings.db_path)}"
    )
    return lines


def pytest_configure(config: pytest.Config) -> None:
    settings = load_settings(config)
    config.stash[SETTINGS_KEY] = settings
    register_selection(config, settings)
    if not settings.enabled:
        map_probe = config.stash.get(MAP_PROBE_KEY, None)
        if map_probe is not None:
            map_probe.discard()
        return
    from .recorder import FixtureProbe, RunRecorder

    workerinput = getattr(config, "workerinput", None)
    worker = str(workerinput["workerid"]) if workerinput is not None else None
    probe = FixtureProbe(config, worker)
    config.pluginmanager.register(probe, "feedback-probe")
    if worker is None and settings.record:
        recorder = RunRecorder(config, probe, lambda run: write_history(settings, run))
        config.pluginmanager.register(recorder, "feedback-recorder")
        config.stash[RECORDER_KEY] = recorder
    if settings.cov or MAP_PROBE_KEY in config.stash:
        _configure_map(config, settings, worker)


def register_selection(config: pytest.Config, settings: Settings) -> None:
    mode = selection_mode(config)
    if mode is not None:
        from .selection_run import SelectionRun

        base = config.getoption("feedback_base")
        run = SelectionRun(config, settings.db_path, base, audit=mode == "audit")
        config.pluginmanager.register(run, "feedback-select")


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
    collector = config.stash.get(MAP_COLLECTOR_KEY, None)
    if collector is not None:
        for line in collector.lines:
            terminalreporter.write_line(line)
        collector.lines = []


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.stash.get(RECORDER_KEY, None)
    if recorder is not None and recorder.outcome_line and "warning" in recorder.outcome_line:
        sys.stderr.write(recorder.outcome_line + "\n")  # no terminal reporter printed it
    collector = config.stash.get(MAP_COLLECTOR_KEY, None)
    if collector is not None:
        for line in collector.lines:
            if "warning" in line:
                sys.stderr.write(line + "\n")
    probe = config.stash.get(MAP_PROBE_KEY, None)
    if probe is not None:
        probe.close()
    for name in (
        "feedback-recorder",
        "feedback-probe",
        "feedback-cov-collector",
        "feedback-cov-probe",
        "feedback-select",
    ):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin)
    for key in (RECORDER_KEY, MAP_PROBE_KEY, MAP_COLLECTOR_KEY):
        if key in config.stash:  # type: ignore[misc]
            del config.stash[key]  # type: ignore[misc]
    if SETTINGS_KEY in config.stash:
        del config.stash[SETTINGS_KEY]
