"""The ``pytest-feedback`` command: reads the history a pytest run wrote.

Each subcommand is a function ``(args) -> int``; errors of ours become one line on stderr and
exit status 1, usage errors exit 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, TextIO

from . import __version__
from .errors import FeedbackError
from .settings import ENV_DB, find_project_db

Handler = Callable[[argparse.Namespace], int]


def _db_path(args: argparse.Namespace) -> Path:
    return Path(args.db) if args.db else find_project_db(Path.cwd())


def open_store(args: argparse.Namespace) -> object:
    from .store import Store

    return Store.open_existing(_db_path(args))


def _output(args: argparse.Namespace) -> TextIO:
    out = getattr(args, "output", None)
    if out and out != "-":
        try:
            return open(out, "w", encoding="utf-8")
        except OSError as exc:
            raise FeedbackError(f"cannot write {out} ({exc.strerror}); choose another -o") from exc
    return sys.stdout


def cmd_runs(args: argparse.Namespace) -> int:
    """List the recorded runs, newest first."""
    from .durations import format_duration
    from .store import Store

    with Store.open_existing(_db_path(args)) as store:
        runs = store.runs(limit=args.limit)
    if not runs:
        print("no runs recorded yet; run `pytest --feedback`")
        return 0
    print(
        f"{'run':>5}  {'started (UTC)':19}  {'wall':>7}  {'tests':>7}  {'failed':>6}"
        "  workers  commit"
    )
    for run in runs:
        started = datetime.datetime.fromtimestamp(run["started_at"], datetime.timezone.utc)
        commit = (run["git_commit"] or "-")[:10] + ("+" if run["git_dirty"] else "")
        print(
            f"{run['id']:>5}  {started:%Y-%m-%d %H:%M:%S}  {format_duration(run['wall_s']):>7}"
            f"  {run['tests']:>7,}  {run['failed']:>6,}  {run['workers']:>7}  {commit}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        metavar="PATH",
        help=f"history file (default: ${ENV_DB}, else .pytest-feedback/history.db in the "
        "nearest directory above that has one or a pytest configuration file)",
    )
    parser = argparse.ArgumentParser(
        prog="pytest-feedback",
        description="Read the history that `pytest --feedback` records: reports, plans, selection.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    runs = sub.add_parser("runs", parents=[common], help="list recorded runs, newest first")
    runs.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")
    runs.set_defaults(func=cmd_runs)

    from .selection_cli import add_select_command

    add_select_command(sub, common)
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
    except BrokenPipeError:
        return 0
