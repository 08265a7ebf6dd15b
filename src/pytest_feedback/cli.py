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


def _load_map(args: argparse.Namespace) -> tuple[object, Path | None]:
    """The dependency map and the rootdir of the newest run (None when unknown)."""
    from .graph import DependencyMap
    from .store import Store

    with Store.open_existing(_db_path(args)) as store:
        dmap = DependencyMap.load(store)
        runs = store.runs(limit=1)
    if dmap is None:
        raise FeedbackError("no coverage map recorded yet; run `pytest --feedback-cov` first")
    rootdir = Path(runs[0]["rootdir"]) if runs else None
    return dmap, rootdir


def cmd_why(args: argparse.Namespace) -> int:
    """What a test depends on: files and lines, import- and collection-time code, reads."""
    import json

    from .graph import DependencyMap
    from .mapviews import why_json, why_lines

    dmap, rootdir = _load_map(args)
    assert isinstance(dmap, DependencyMap)
    deps = dmap.dependencies(args.nodeid)
    if deps is None:
        raise FeedbackError(
            f"{args.nodeid} has no coverage map ({len(dmap.mapped_tests()):,} tests have one); "
            "check the node id (as pytest prints it) or run it with `pytest --feedback-cov`"
        )
    from .selection_cli import why_selection

    decision = why_selection(args, args.nodeid)
    if args.format == "json":
        print(json.dumps({**why_json(args.nodeid, deps), "selection": decision}, indent=2))
    else:
        print("\n".join([*why_lines(dmap, args.nodeid, deps, rootdir), "", *decision]))
    return 0


def cmd_deps(args: argparse.Namespace) -> int:
    """The tests that reach a file, a line (range) or a function."""
    import json

    from .graph import DependencyMap
    from .mapviews import deps_lines, parse_target

    dmap, rootdir = _load_map(args)
    assert isinstance(dmap, DependencyMap)
    path, lines, function = parse_target(args.target, rootdir, Path.cwd())
    if path not in dmap.recorded_files():
        raise FeedbackError(
            f"{path} is not in the coverage map: no recorded test executed or read it "
            "(paths are relative to the rootdir)"
        )
    if function is not None:
        if dmap.function_lines(path, function) is None:
            raise FeedbackError(f"{path} has no function {function!r} (use Class.method)")
        reaching = dmap.tests_reaching_function(path, function)
    else:
        reaching = dmap.tests_reaching(path, lines)
    if args.format == "json":
        tests = [{"nodeid": n, "reason": r} for n, r in sorted(reaching.items())]
        print(json.dumps({"version": 1, "target": args.target, "tests": tests}, indent=2))
    else:
        print("\n".join(deps_lines(args.target, reaching)))
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

    why = sub.add_parser(
        "why", parents=[common], help="what a test depends on (needs pytest --feedback-cov)"
    )
    why.add_argument("nodeid", help="the test's node id, as pytest prints it")
    why.add_argument("--format", choices=("text", "json"), default="text")
    why.set_defaults(func=cmd_why)
    from .selection_cli import add_select_command, add_why_selection_options

    add_why_selection_options(why)
    deps = sub.add_parser(
        "deps", parents=[common], help="the tests that reach a file, line or function"
    )
    deps.add_argument("target", help="FILE, FILE:LINE, FILE:START-END or FILE::FUNCTION")
    deps.add_argument("--format", choices=("text", "json"), default="text")
    deps.set_defaults(func=cmd_deps)

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
