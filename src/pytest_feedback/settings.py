"""pytest-feedback's settings: where the history lives and what a run should do.

Resolved once per session from the command line, the ini file and the environment; bad values
raise `ConfigError` with one sentence naming the option and the accepted form.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

from pytest_feedback.errors import ConfigError

ENV_DB = "PYTEST_FEEDBACK_DB"
DEFAULT_DIR = ".pytest-feedback"
DEFAULT_DB = Path(DEFAULT_DIR) / "history.db"
DEFAULT_KEEP_RUNS = 50
#: Files that mark a project's root for the command line (pytest's own ini candidates).
ROOT_MARKERS = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What pytest-feedback does in one pytest session."""

    record: bool = False
    db_path: Path = DEFAULT_DB
    keep_runs: int = DEFAULT_KEEP_RUNS
    #: Print the report at the end of the terminal summary (``--feedback-report``).
    report: bool = False
    #: Write the HTML report there after the run (``--feedback-html``).
    html_path: Optional[Path] = None
    #: Map tests to the code and files they use (``--feedback-cov``); implies ``record``.
    cov: bool = False
    #: ``select`` (``--feedback-select``), ``audit`` (``--feedback-audit``) or None.
    selection: Optional[str] = None
    #: ``--feedback-budget`` / ini ``feedback_budget`` in seconds; None without one. Given as a
    #: share (``90%``): the budget used when the history cannot choose one.
    budget_s: Optional[float] = None
    #: ``--feedback-budget 90%``: the share of failing runs the budget must catch (0.9).
    budget_share: Optional[float] = None

    @property
    def enabled(self) -> bool:
        return self.record


def resolve_db_path(
    *,
    cli: Optional[str],
    ini: Optional[str],
    ini_dir: Optional[Path],
    invocation_dir: Path,
    rootpath: Path,
    environ: Mapping[str, str] = os.environ,
) -> Path:
    """The history file: the command line, then $PYTEST_FEEDBACK_DB, then ini, then the default.

    Relative paths given on the command line or in the environment are relative to where pytest
    was started; one from an ini file is relative to that file; the default is under the rootdir.
    """
    if cli is not None:
        if not cli.strip():
            raise ConfigError(
                "--feedback-db: empty path; give the history file, e.g. "
                f"--feedback-db={DEFAULT_DB.as_posix()}, or leave the option out for the default"
            )
        return _absolute(invocation_dir / cli)
    env = environ.get(ENV_DB)
    if env:
        return _absolute(invocation_dir / env)
    if ini:
        return _absolute((ini_dir or rootpath) / ini)
    return rootpath / DEFAULT_DB


def misread_db_option(
    args: Sequence[str],
    test_args: Sequence[str],
    invocation_dir: Path,
    rootpath: Path,
    inipath: Optional[Path],
) -> Optional[str]:
    """The error when pytest may have chosen the rootdir from the value of ``--feedback-db PATH``.

    pytest finds its rootdir and configuration before plugins add their options, so in
    ``--feedback-db PATH`` an existing PATH passes for a test path and takes part in the
    search: the rootdir can become an ancestor of the history file and the project's
    configuration be ignored. The ``=`` form is immune. ``args`` are the command line,
    ``test_args`` the test paths given on it. Harmless, and accepted: a history inside the
    directory the tests are in or pytest was started in, or a configuration file found above
    those.
    """
    here = _absolute(invocation_dir)
    tests = [_absolute(here / a.split("::")[0]) for a in test_args]
    tests = [t if t.is_dir() else t.parent for t in tests if t.exists()]
    anchor = Path(os.path.commonpath(tests)) if tests else here
    for flag, value in zip(args, args[1:]):
        if flag != "--feedback-db":
            continue
        path = _absolute(here / value)
        if not path.exists() or _within(path, anchor) or _within(path, here):
            continue
        if inipath is not None and _within(anchor, rootpath):
            continue
        return (
            f"--feedback-db {value}: pytest took the existing file for a test path and chose "
            f"{rootpath} as the rootdir; write --feedback-db={value} instead"
        )
    return None


def _within(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def _absolute(path: Path) -> Path:
    """``path`` resolved; a path that cannot be resolved (a symlink loop) stays as it is.

    Opening it later fails with a message that names it, which is where such trouble belongs.
    """
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))


def parse_keep_runs(value: str) -> int:
    try:
        keep = int(str(value).strip())
    except ValueError:
        keep = -1
    if keep < 1:
        raise ConfigError(
            f"feedback_keep_runs: {value!r} is not a whole number of runs >= 1 (default 50)"
        )
    return keep


def find_project_db(start: Path, environ: Mapping[str, str] = os.environ) -> Path:
    """The history the command line reads by default, found the way pytest finds its rootdir.

    $PYTEST_FEEDBACK_DB when set (relative to ``start``). Else the nearest pytest configuration
    file at or above ``start`` (pytest.ini, .pytest.ini, pyproject.toml with a pytest table,
    tox.ini with [pytest], setup.cfg with [tool:pytest]): its ``feedback_db`` (relative to it),
    else ``.pytest-feedback/history.db`` beside it. Without one: the nearest existing history at
    or above ``start``, else the nearest pyproject.toml's directory, else ``start``'s.
    """
    env = environ.get(ENV_DB)
    if env:
        return _absolute(start / env)
    start = _absolute(start)
    candidates = [start, *start.parents]
    for directory in candidates:
        for name in ROOT_MARKERS:
            options = pytest_ini_options(directory / name)
            if options is not None:
                configured = str(options.get("feedback_db") or "").strip()
                return _absolute(directory / configured) if configured else directory / DEFAULT_DB
    for directory in candidates:
        if (directory / DEFAULT_DB).is_file():
            return directory / DEFAULT_DB
    for directory in candidates:
        if (directory / "pyproject.toml").is_file():
            return directory / DEFAULT_DB
    return start / DEFAULT_DB


def pytest_ini_options(path: Path) -> Optional[dict[str, object]]:
    """pytest's options in ``path`` when it is a pytest configuration file, else None.

    As pytest decides: pytest.ini and .pytest.ini always are (even empty); pyproject.toml with
    a ``[tool.pytest.ini_options]`` (or ``[tool.pytest]``) table; tox.ini with ``[pytest]``;
    setup.cfg with ``[tool:pytest]``. An unreadable file is not one.
    """
    if not path.is_file():
        return None
    try:
        if path.name == "pyproject.toml":
            return _pyproject_options(path)
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(path, encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError, configparser.Error):
        return None
    section = "tool:pytest" if path.name == "setup.cfg" else "pytest"
    if parser.has_section(section):
        return dict(parser.items(section))
    return {} if path.name in ("pytest.ini", ".pytest.ini") else None


def _pyproject_options(path: Path) -> Optional[dict[str, object]]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pytest itself depends on tomli before Python 3.11
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    with path.open("rb") as file:
        data = tomllib.load(file)
    tool = data.get("tool", {}).get("pytest")
    if not isinstance(tool, dict):
        return None
    options = tool.get("ini_options", tool)
    return dict(options) if isinstance(options, dict) else None


#: Directories never searched for a history below the current one.
_NOT_SEARCHED = frozenset({".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".tox"})


def find_history_below(start: Path, max_depth: int = 4) -> Optional[Path]:
    """The nearest ``.pytest-feedback/history.db`` in a directory below ``start`` (not in it),
    searched breadth-first to ``max_depth`` levels, ``testpaths`` of its configuration first;
    None when there is none."""
    start = _absolute(start)
    level = [start]
    for _ in range(max_depth):
        below: list[Path] = []
        for directory in level:
            try:
                children = sorted(p for p in directory.iterdir() if p.is_dir())
            except OSError:
                continue
            below += [
                c for c in children if c.name not in _NOT_SEARCHED and not c.name.startswith(".")
            ]
        for directory in _testpaths_first(start, below):
            if (directory / DEFAULT_DB).is_file():
                return directory / DEFAULT_DB
        level = below
    return None


def _testpaths_first(start: Path, directories: list[Path]) -> list[Path]:
    testpaths: set[Path] = set()
    for name in ROOT_MARKERS:
        options = pytest_ini_options(start / name)
        if options is not None:
            value = options.get("testpaths")
            names = value.split() if isinstance(value, str) else []
            if isinstance(value, list):
                names = [str(v) for v in value]
            testpaths = {_absolute(start / n) for n in names}
            break
    return sorted(directories, key=lambda d: d not in testpaths)
