"""The subcommands on the coverage map: ``why`` (what a test depends on, and the selection's
decision about it) and ``deps`` (the tests that reach a file, line or function)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from pytest_feedback.cli.common import add_db_option, db_path
from pytest_feedback.cli.selection import (
    add_why_selection_options,
    resolve_rootdir,
    why_selection,
)
from pytest_feedback.errors import FeedbackError
from pytest_feedback.selection.existing import gone_line, is_present, split_present

FORMAT_HELP = "text for people (default), json for scripts"

if TYPE_CHECKING:
    from pytest_feedback.depmap.graph import DependencyMap


def add_map_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    why = sub.add_parser(
        "why",
        help="what a test depends on (needs pytest --feedback-cov)",
        description="What a test depends on according to the coverage map (files and lines, "
        "import- and collection-time code, files read), and whether selection would run it.",
    )
    add_db_option(why)
    why.add_argument("nodeid", help="the test's node id, as pytest prints it")
    why.add_argument("--format", choices=("text", "json"), default="text", help=FORMAT_HELP)
    why.set_defaults(func=cmd_why)
    add_why_selection_options(why)
    deps = sub.add_parser(
        "deps",
        help="the tests that reach a file, line or function",
        description="The recorded tests that reach a file, a line (range) or a function, "
        "according to the coverage map (pytest --feedback-cov); paths relative to the rootdir.",
    )
    add_db_option(deps)
    deps.add_argument("target", help="FILE, FILE:LINE, FILE:START-END or FILE::FUNCTION")
    deps.add_argument("--format", choices=("text", "json"), default="text", help=FORMAT_HELP)
    deps.set_defaults(func=cmd_deps)


def _load_map(args: argparse.Namespace) -> tuple[DependencyMap, Optional[Path]]:
    """The dependency map and the rootdir of the newest run (None when unknown)."""
    from pytest_feedback.depmap.graph import DependencyMap
    from pytest_feedback.history.store import Store

    with Store.open_existing(db_path(args)) as store:
        dmap = DependencyMap.load(store)
        runs = store.reads.runs(limit=1)
    if dmap is None:
        raise FeedbackError("no coverage map recorded yet; run `pytest --feedback-cov` first")
    rootdir = Path(runs[0]["rootdir"]) if runs else None
    return dmap, rootdir


def cmd_why(args: argparse.Namespace) -> int:
    """What a test depends on: files and lines, import- and collection-time code, reads."""
    from pytest_feedback.depmap.views import why_json, why_lines

    here = resolve_rootdir(args, db_path(args))
    if here.is_dir() and not is_present(here, args.nodeid):
        raise FeedbackError(
            f"{args.nodeid}: no such test under {here} (its file is missing or does not "
            "name it); give the node id as `pytest --collect-only -q` prints it"
        )
    dmap, rootdir = _load_map(args)
    deps = dmap.dependencies(args.nodeid)
    decision = [*why_selection(args, args.nodeid), *_flakiness(args)]
    if deps is None:
        # A test the map does not know (new, or never run with --feedback-cov): selection still
        # decides about it, and that decision is what `why` must explain.
        if args.format == "json":
            document = {"version": 1, "nodeid": args.nodeid, "mapped": False}
            print(json.dumps({**document, "selection": decision}, indent=2))
        else:
            mapped = len(dmap.mapped_tests())
            have = "test has" if mapped == 1 else "tests have"
            print(
                f"{args.nodeid} has no coverage map ({mapped:,} {have} one): a new test, or one "
                "not run with `pytest --feedback-cov` (check the node id as pytest prints it)"
            )
            print("\n".join(decision))
        return 0
    if args.format == "json":
        print(json.dumps({**why_json(args.nodeid, deps), "selection": decision}, indent=2))
    else:
        print("\n".join([*why_lines(dmap, args.nodeid, deps, rootdir), "", *decision]))
    return 0


def cmd_deps(args: argparse.Namespace) -> int:
    """The tests that reach a file, a line (range) or a function."""
    from pytest_feedback.depmap.views import deps_lines, parse_target

    dmap, rootdir = _load_map(args)
    path, lines, function = parse_target(args.target, rootdir, Path.cwd())
    if path not in dmap.recorded_files() and rootdir is not None:
        # Typed relative to the rootdir from one of its subdirectories.
        path, lines, function = parse_target(args.target, rootdir, rootdir)
    if path not in dmap.recorded_files():
        raise FeedbackError(
            f"{path} is not in the coverage map: no recorded test executed or read it "
            "(give the path relative to the current directory or to the rootdir)"
        )
    if function is not None:
        if dmap.function_lines(path, function) is None:
            raise FeedbackError(f"{path} has no function {function!r} (use Class.method)")
        reaching = dmap.tests_reaching_function(path, function)
    else:
        reaching = dmap.tests_reaching(path, lines)
    here = resolve_rootdir(args, db_path(args))
    if reaching and here.is_dir():  # tests renamed or deleted since they were mapped
        present, gone = split_present(here, sorted(reaching))
        if gone:
            print(gone_line(gone), file=sys.stderr)
            reaching = {n: reaching[n] for n in present}
    if args.format == "json":
        tests = [{"nodeid": n, "reason": r} for n, r in sorted(reaching.items())]
        print(json.dumps({"version": 1, "target": args.target, "tests": tests}, indent=2))
    else:
        print("\n".join(deps_lines(args.target, reaching)))
    return 0


def _flakiness(args: argparse.Namespace) -> list[str]:
    """The evidence that the test is flaky, or that it is only unstable (docs/flaky.md)."""
    from pytest_feedback.history.store import Store
    from pytest_feedback.report.flaky import evidence_lines

    with Store.open_existing(db_path(args)) as store:
        return evidence_lines(store, args.nodeid)
