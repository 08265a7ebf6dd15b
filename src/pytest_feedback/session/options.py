"""Reading the options, the ini file and the environment into `Settings` and `ParallelOptions`.

plugin.py declares the options (docs/contract.md, "Options"), those of selection through
`add_select_options`; this module reads them. Bad values
and bad combinations are `pytest.UsageError`: pytest stops at start-up with one line.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Optional

import pytest

from pytest_feedback.ci import ci_shard, parse_shard
from pytest_feedback.durations import SHARE_FALLBACK_S, is_share, parse_duration, parse_share
from pytest_feedback.errors import ConfigError
from pytest_feedback.settings import Settings, misread_db_option, parse_keep_runs, resolve_db_path

ENV_SHARD = "PYTEST_FEEDBACK_SHARD"


@dataclasses.dataclass(frozen=True)
class ParallelOptions:
    shard: Optional[tuple[int, int]]
    dist: bool
    #: Where ``--feedback-shard auto`` found the shard (None: given as K/N).
    source: Optional[str] = None

    @property
    def shard_text(self) -> Optional[str]:
        return f"{self.shard[0]}/{self.shard[1]}" if self.shard else None


#: The ini setting that keeps ``--feedback-select`` from refreshing the map (docs/selection.md).
REFRESH_INI = "feedback_select_refresh"


def add_select_options(group: pytest.OptionGroup) -> None:
    """Declare ``--feedback-select``, ``--feedback-base`` and ``--feedback-audit``."""
    group.addoption(
        "--feedback-select",
        action="store_true",
        default=False,
        help="Run only the tests the changes since the coverage map was recorded affect "
        "(staged, unstaged and untracked files included), and map them again. Ini: "
        f"{REFRESH_INI} = false keeps the map as it is.",
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


def add_select_ini(parser: pytest.Parser) -> None:
    parser.addini(
        REFRESH_INI,
        type="bool",
        default=True,
        help="--feedback-select maps the tests it runs again, so that the map follows your "
        "edits; false: select without measuring.",
    )


def refreshes_map(config: pytest.Config) -> bool:
    """Whether this session's ``--feedback-select`` maps the tests it runs (docs/selection.md);
    known before the first conftest.py is imported, when measuring starts."""
    namespace = config.known_args_namespace
    if getattr(namespace, "collectonly", False):
        return False  # no test runs: nothing to map again
    select = getattr(namespace, "feedback_select", False)
    return bool(select) and bool(config.getini(REFRESH_INI))


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


def budget_seconds(config: pytest.Config) -> tuple[Optional[float], Optional[float]]:
    """The ``--feedback-budget`` (or ini ``feedback_budget``) in seconds, None without one; and
    the share of failing runs it must catch when given as one (``90%``: then the seconds are
    the default the history's answer falls back to)."""
    text: Optional[str] = config.getoption("feedback_budget")
    what = "--feedback-budget"
    if text is None:
        text, what = str(config.getini("feedback_budget")).strip() or None, "feedback_budget"
    if text is None:
        return None, None
    try:
        if is_share(text):
            return SHARE_FALLBACK_S, parse_share(text, what=what)
        return parse_duration(text, what=what), None
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
    html = config.getoption("feedback_html")
    html_path = config.invocation_params.dir / html if html else None
    cov = bool(config.getoption("feedback_cov")) or bool(config.getini("feedback_cov"))
    cov = cov or refreshes_map(config)
    budget_s, budget_share = budget_seconds(config)
    selection = selection_mode(config, budget_s)
    selecting = selection is not None or budget_s is not None
    # Any --feedback-* option records (docs/contract.md, "Options").
    given_db = bool(config.getoption("feedback_db"))
    record = bool(explicit) or bool(config.getini("feedback")) or report or cov or selecting
    record = record or html_path is not None
    record = record or given_db or any(attempt_counts(config))
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
        html_path=html_path,
        cov=cov,
        selection=selection,
        budget_s=budget_s,
        budget_share=budget_share,
    )


def check_db_option_early(early_config: pytest.Config) -> None:
    """Refuse ``--feedback-db PATH`` when PATH moved the rootdir, before any conftest.py is
    imported: with the rootdir moved the ini file's ``pythonpath`` is lost, and a conftest's
    imports would fail before `load_settings` could say why."""
    namespace = early_config.known_args_namespace
    misread = misread_db_option(
        early_config.invocation_params.args,
        [str(a) for a in (getattr(namespace, "file_or_dir", None) or [])],
        early_config.invocation_params.dir,
        early_config.rootpath,
        early_config.inipath,
    )
    if misread is not None:
        raise pytest.UsageError(misread)


def read_parallel_options(
    config: pytest.Config, environ: Mapping[str, str] = os.environ, *, budget: bool = False
) -> Optional[ParallelOptions]:
    """The parallel options of this session, or None; bad values are `pytest.UsageError`.

    ``budget``: ``--feedback-budget`` is on. Its plan for ``-n N`` is the shard planner's, so
    unless the user chose another ``--dist`` mode the workers get their tests by that plan
    (``--feedback-dist``): with xdist's ``load`` a fixture family spreads over workers that
    each pay its set-up, and the prediction would not hold.
    """
    text: Optional[str] = config.getoption("feedback_shard")
    what = "--feedback-shard"
    if text is None and environ.get(ENV_SHARD):
        text, what = environ[ENV_SHARD], f"${ENV_SHARD}"
    dist = bool(config.getoption("feedback_dist"))
    if budget and not dist and config.getoption("numprocesses", None):
        dist = config.getoption("dist", "no") in ("load", "no")
    if text is None and not dist:
        return None
    shard = None
    source: Optional[str] = None
    if text is not None:
        try:
            if text.strip().lower() == "auto":
                found = ci_shard(environ)
                # Not a parallel CI job: one shard holding every test.
                shard, source = (found[:2], found[2]) if found else ((1, 1), "no CI shard found")
            else:
                shard = parse_shard(text, what=what)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
    mode = config.getoption("dist", "no")
    if dist and mode not in ("load", "no") and not hasattr(config, "workerinput"):
        raise pytest.UsageError(
            f"--feedback-dist: it replaces xdist's --dist load; drop --dist {mode} to use it"
        )
    return ParallelOptions(shard, dist, source)


def attempt_counts(config: pytest.Config) -> tuple[int, int]:
    """``--feedback-rerun N`` and ``--feedback-new-runs K`` (or their ini twins), 0 when off;
    a value that is not a whole number >= 0 is a usage error (docs/flaky.md)."""
    counts = []
    for name in ("feedback_rerun", "feedback_new_runs"):
        value = config.getoption(name, None)
        what = "--" + name.replace("_", "-")
        if value is None:
            try:
                value, what = str(config.getini(name) or "").strip() or "0", name
            except ValueError:  # not declared: session.flaky was disabled (-p no:...)
                value = "0"
        try:
            count = int(str(value).strip())
        except ValueError:
            count = -1
        if count < 0:
            raise pytest.UsageError(
                f"{what}: {value!r} is not a whole number of runs >= 0 (0: off)"
            )
        counts.append(count)
    return counts[0], counts[1]
