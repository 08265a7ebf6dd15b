"""The subcommands on the history itself: ``runs`` lists it, ``merge`` combines histories,
``import-junit`` bootstraps one from JUnit XML reports."""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from pytest_feedback.cli.common import add_db_option, add_keep_runs, db_path, positive_int
from pytest_feedback.errors import FeedbackError


def add_history_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    runs = sub.add_parser(
        "runs",
        help="list recorded runs, newest first",
        description="List the recorded runs, newest first: when, wall time, tests, failures, "
        "xdist workers and the git commit (+ when the tree had edits).",
    )
    add_db_option(runs)
    runs.add_argument(
        "--limit", type=positive_int, default=20, metavar="N", help="how many runs (default 20)"
    )
    runs.set_defaults(func=cmd_runs)

    merge = sub.add_parser(
        "merge",
        help="combine histories from CI shards or machines into one (idempotent)",
        description="Merge history files into OUT (created, or merged into when it exists). "
        "Shard runs of one CI pipeline become one run; merging a file twice adds nothing. "
        "The inputs are only read.",
    )
    merge.add_argument("inputs", nargs="+", metavar="IN.db", help="histories to merge")
    merge.add_argument("-o", "--output", required=True, metavar="OUT.db", help="the merged history")
    add_keep_runs(merge, "OUT")
    merge.set_defaults(func=cmd_merge)

    junit = sub.add_parser(
        "import-junit",
        help="bootstrap durations from existing JUnit XML reports",
        description="Import JUnit XML reports (pytest's own, and the common dialects) as runs, "
        "so that estimates exist before the first recorded run. Importing a file twice adds "
        "nothing.",
    )
    add_db_option(junit)
    junit.add_argument("files", nargs="+", metavar="FILE", help="JUnit XML reports")
    junit.add_argument(
        "--rootdir",
        metavar="DIR",
        help="the rootdir of the pytest run that wrote the reports (default: the current "
        "directory); test files under it map classnames back to node ids",
    )
    which = junit.add_mutually_exclusive_group()
    which.add_argument(
        "--collect",
        action="store_true",
        help="run `pytest --collect-only -q` in the rootdir and map onto the collected node ids",
    )
    which.add_argument(
        "--nodeids",
        metavar="FILE",
        help="a file of node ids, one a line (e.g. saved `pytest --collect-only -q` output)",
    )
    add_keep_runs(junit, "the history")
    junit.set_defaults(func=cmd_import_junit)


def cmd_runs(args: argparse.Namespace) -> int:
    """List the recorded runs, newest first."""
    from pytest_feedback.durations import format_duration
    from pytest_feedback.history.store import Store

    with Store.open_existing(db_path(args)) as store:
        runs = store.reads.runs(limit=args.limit)
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


def cmd_merge(args: argparse.Namespace) -> int:
    """Merge histories from CI shards or machines into one file."""
    from pytest_feedback.history.merge import merge_histories

    out = Path(args.output)
    summary = merge_histories([Path(p) for p in args.inputs], out, keep_runs=args.keep_runs)
    for skipped in summary.skipped_inputs:
        print(f"pytest-feedback: skipped {skipped}", file=sys.stderr)
    print(summary.line(out))
    return 0


def cmd_import_junit(args: argparse.Namespace) -> int:
    """Bootstrap durations from JUnit XML reports."""
    from pytest_feedback.history.junit import (
        NodeIdMapper,
        collect_nodeids,
        import_reports,
        parse_nodeids,
    )

    rootdir = Path(args.rootdir).resolve() if args.rootdir else Path.cwd()
    if not rootdir.is_dir():
        raise FeedbackError(f"--rootdir {args.rootdir} is not a directory; pass pytest's rootdir")
    nodeids: list[str] = []
    if args.nodeids:
        try:
            nodeids = parse_nodeids(Path(args.nodeids).read_text(encoding="utf-8").splitlines())
        except OSError as exc:
            raise FeedbackError(
                f"cannot read --nodeids {args.nodeids} ({exc.strerror}); pass the output of "
                "`pytest --collect-only -q` saved to a file"
            ) from exc
    elif args.collect:
        nodeids = collect_nodeids(rootdir)
    db = db_path(args, rootdir)
    mapper = NodeIdMapper(rootdir, nodeids)
    results, added = import_reports(
        [Path(f) for f in args.files], db, mapper, keep_runs=args.keep_runs
    )
    for result in results:
        mapped = len(result.run.tests) if result.run else 0
        print(f"{result.path}: {mapped:,} of {result.cases:,} tests mapped to node ids")
        if result.recorded_as is not None:
            print(
                f"{result.path}: not imported: the history recorded that session already "
                f"(run {result.recorded_as}: same start, same tests)"
            )
        if result.unmapped:
            example = result.unmapped[0]
            print(
                f"pytest-feedback: warning: {len(result.unmapped):,} tests in {result.path} "
                f"were left out: no node id for classname {example.classname!r} name "
                f"{example.name!r}; pass --rootdir (the rootdir of the run that wrote it) "
                "or --collect",
                file=sys.stderr,
            )
    if not any(r.run for r in results):
        raise FeedbackError(
            "no test in the reports could be mapped to a node id; run from the project's "
            "rootdir or pass --rootdir DIR, and --collect to use pytest's collection"
        )
    print(f"imported {added} new run{'s' * (added != 1)} into {db}")
    return 0
