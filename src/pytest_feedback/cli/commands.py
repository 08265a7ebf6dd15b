"""The ``pytest-feedback`` command: reads the history a pytest run wrote.

Each subcommand is a function ``(args) -> int`` in the module of its concern: `history` (runs,
merge, import-junit), `report`, `map` (why, deps), `plans` (shards, workers), `selection`
(select); `common` holds the ``--db`` and ``-o`` options they share. Errors of ours become one line
on stderr and exit status 1, usage errors exit 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_feedback import __version__
from pytest_feedback.cli.advise import add_advise_command
from pytest_feedback.cli.common import Handler
from pytest_feedback.cli.history import add_history_commands
from pytest_feedback.cli.map import add_map_commands
from pytest_feedback.cli.plans import add_plan_commands
from pytest_feedback.cli.quarantine import add_quarantine_command
from pytest_feedback.cli.report import add_report_command
from pytest_feedback.cli.selection import add_select_command
from pytest_feedback.cli.simulate import add_simulate_command
from pytest_feedback.errors import FeedbackError
from pytest_feedback.history.connection import describe_sqlite_error
from pytest_feedback.settings import find_project_db


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-feedback",
        description="Read the history that `pytest --feedback` records: reports, plans, selection.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_history_commands(sub)
    add_report_command(sub)
    add_quarantine_command(sub)
    add_advise_command(sub)
    add_map_commands(sub)
    add_plan_commands(sub)
    add_select_command(sub)
    add_simulate_command(sub)
    for choice in sub._choices_actions:  # `NAME --help` says at least what `--help` lists
        command = sub.choices[choice.dest]
        command.description = command.description or choice.help
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.func
    try:
        return handler(args)
    except FeedbackError as exc:
        print(f"pytest-feedback: error: {exc}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:  # a read the store did not wrap: still one line, not a traceback
        path = Path(args.db) if getattr(args, "db", None) else find_project_db(Path.cwd())
        print(f"pytest-feedback: error: {describe_sqlite_error(path, exc)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
