"""What every subcommand shares: the ``--db`` history file and the ``-o`` output.

Each subcommand adds the options it takes with `add_db_option` and `add_output_option`, and reads
them through `db_path` and `output`, so that ``--db ""`` is refused and ``-o FILE`` is closed the
same way everywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, Optional, TextIO

from pytest_feedback.errors import FeedbackError
from pytest_feedback.settings import (
    DEFAULT_KEEP_RUNS,
    ENV_DB,
    find_history_below,
    find_project_db,
)

#: A subcommand: its parsed arguments -> the exit status.
Handler = Callable[[argparse.Namespace], int]


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="PATH",
        help=f"history file (default: ${ENV_DB}, else the one pytest would use: found from "
        "the current directory upward, as pytest finds its rootdir and ini file)",
    )


def db_path(args: argparse.Namespace, start: Optional[Path] = None) -> Path:
    """The history file ``--db`` names, else the project's, found from ``start`` (default: the
    current directory); an empty ``--db`` is an error."""
    if args.db is None:
        here = start if start is not None else Path.cwd()
        found = find_project_db(here)
        if not found.exists() and not os.environ.get(ENV_DB):
            below = find_history_below(here)
            if below is not None:
                shown = _shown(below)
                raise FeedbackError(
                    f"no history at {_shown(found)}, but there is one at {shown}: pass "
                    f"--db {shown}, or run from {_shown(below.parent.parent)}"
                )
        return found
    if not args.db.strip():
        raise FeedbackError("--db: empty path; give the history file, or leave --db out")
    return Path(args.db)


def _shown(path: Path) -> str:
    """``path`` relative to the current directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def add_output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")


@contextlib.contextmanager
def output(args: argparse.Namespace) -> Iterator[TextIO]:
    """Where the command writes: ``-o FILE`` (closed on the way out), else stdout."""
    path = getattr(args, "output", None)
    if not path or path == "-":
        yield sys.stdout
        return
    try:
        out = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise FeedbackError(f"cannot write {path} ({exc.strerror}); choose another -o") from exc
    with out:
        yield out


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def add_keep_runs(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--keep-runs",
        type=positive_int,
        default=DEFAULT_KEEP_RUNS,
        metavar="N",
        help=f"runs whose details {what} keeps (default {DEFAULT_KEEP_RUNS}; aggregates are "
        "kept for all)",
    )
