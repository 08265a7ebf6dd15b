"""pytest-feedback's settings: where the history lives and what a run should do.

Resolved once per session from the command line, the ini file and the environment; bad values
raise `ConfigError` with one sentence naming the option and the accepted form.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

from .errors import ConfigError

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
    #: Map tests to the code and files they use (``--feedback-cov``); implies ``record``.
    cov: bool = False

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
    if cli:
        return (invocation_dir / cli).resolve()
    env = environ.get(ENV_DB)
    if env:
        return (invocation_dir / env).resolve()
    if ini:
        return ((ini_dir or rootpath) / ini).resolve()
    return rootpath / DEFAULT_DB


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
    """The history the command line reads by default.

    $PYTEST_FEEDBACK_DB when set; else the nearest ``.pytest-feedback/history.db`` at or above
    ``start``; else one under the nearest directory holding a pytest configuration file.
    """
    env = environ.get(ENV_DB)
    if env:
        return (start / env).resolve()
    start = start.resolve()
    candidates = [start, *start.parents]
    for directory in candidates:
        if (directory / DEFAULT_DB).is_file():
            return directory / DEFAULT_DB
    for directory in candidates:
        if any((directory / marker).is_file() for marker in ROOT_MARKERS):
            return directory / DEFAULT_DB
    return start / DEFAULT_DB
