"""The ``pytest-feedback`` command: reads the history a pytest run wrote.

Each subcommand is a function ``(args) -> int``; errors of ours become one line on stderr and
exit status 1, usage errors exit 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import datetime
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TextIO

from pytest_feedback import __version__
from pytest_feedback.errors import FeedbackError
from pytest_feedback.history.connection import describe_sqlite_error
from pytest_feedback.settings import DEFAULT_KEEP_RUNS, ENV_DB, find_project_db

if TYPE_CHECKING:
    from pytest_feedback.history.estimates import Estimates

Handler = Callable[[argparse.Namespace], int]


def _db_path(args: argparse.Namespace) -> Path:
    if args.db is None:
        return find_project_db(Path.cwd())
    if not args.db.strip():
        raise FeedbackError("--db: empty path; give the history file, or leave --db out")
    return Path(args.db)


def open_store(args: argparse.Namespace) -> object:
    from pytest_feedback.history.store import Store

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
    from pytest_feedback.durations import format_duration
    from pytest_feedback.history.store import Store

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
    db = Path(args.db) if args.db else find_project_db(rootdir)
    mapper = NodeIdMapper(rootdir, nodeids)
    results, added = import_reports(
        [Path(f) for f in args.files], db, mapper, keep_runs=args.keep_runs
    )
    for result in results:
        mapped = len(result.run.tests) if result.run else 0
        print(f"{result.path}: {mapped:,} of {result.cases:,} tests mapped to node ids")
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


def cmd_report(args: argparse.Namespace) -> int:
    """Print the report (text, markdown or json) from the history."""
    from pytest_feedback.history.store import Store
    from pytest_feedback.report import DEFAULT_TOP, build_report, write_report

    with Store.open_existing(_db_path(args)) as store:
        report = build_report(
            store,
            top=args.top or DEFAULT_TOP,
            all_tests=args.format == "json" and args.top is None,
        )
    out = _output(args)
    try:
        write_report(report, args.format, out, top=args.top, color=out is sys.stdout)
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def _load_map(args: argparse.Namespace) -> tuple[object, Path | None]:
    """The dependency map and the rootdir of the newest run (None when unknown)."""
    from pytest_feedback.depmap.graph import DependencyMap
    from pytest_feedback.history.store import Store

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

    from pytest_feedback.depmap.graph import DependencyMap
    from pytest_feedback.depmap.views import why_json, why_lines

    dmap, rootdir = _load_map(args)
    assert isinstance(dmap, DependencyMap)
    deps = dmap.dependencies(args.nodeid)
    from pytest_feedback.cli.selection import why_selection

    decision = why_selection(args, args.nodeid)
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
    import json

    from pytest_feedback.depmap.graph import DependencyMap
    from pytest_feedback.depmap.views import deps_lines, parse_target

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


def _known_tests(args: argparse.Namespace) -> tuple[Estimates, list[str]]:
    """The history's estimates and the tests it knows (the CLI does not collect)."""
    from pytest_feedback.history.store import Store

    with Store.open_existing(_db_path(args)) as store:
        estimates = store.load_estimates()
    if not estimates.tests:
        raise FeedbackError("the history has no tests yet; run `pytest --feedback` first")
    return estimates, sorted(estimates.tests)


def cmd_shards(args: argparse.Namespace) -> int:
    """The plan for N CI shards."""
    import json

    from pytest_feedback.durations import format_duration
    from pytest_feedback.planning.shards import plan_shards

    if args.n < 1:
        raise FeedbackError(f"shards: {args.n} is not a positive number of shards")
    estimates, nodeids = _known_tests(args)
    plan = plan_shards(estimates, nodeids, args.n)
    out = _output(args)
    if args.format == "json":
        json.dump(plan.to_json(), out, indent=2)
        out.write("\n")
    elif args.format == "github-matrix":
        matrix = {"include": [{"shard": f"{s.index}/{plan.n}"} for s in plan.shards]}
        out.write(json.dumps(matrix) + "\n")
    else:
        out.write(
            f"{len(nodeids):,} tests on {plan.n} shards: predicted makespan "
            f"{format_duration(plan.makespan_s)}, lower bound "
            f"{format_duration(plan.lower_bound_s)}\n"
        )
        for shard in plan.shards:
            out.write(
                f"  shard {shard.index}/{plan.n}: {len(shard.tests):>6,} tests  "
                f"{format_duration(shard.estimate_s):>7}\n"
            )
        out.write(f"run one with: pytest --feedback-shard K/{plan.n}\n")
    return 0


def cmd_workers(args: argparse.Namespace) -> int:
    """How many workers (or shards) reach a target time."""
    import json

    from pytest_feedback.durations import format_duration, parse_duration
    from pytest_feedback.errors import ConfigError
    from pytest_feedback.planning.shards import worker_curve

    try:
        target = parse_duration(args.target, what="--target") if args.target else None
    except ConfigError as exc:
        raise FeedbackError(str(exc)) from None
    if args.max < 1:
        raise FeedbackError(f"--max: {args.max} is not a positive number of workers")
    estimates, nodeids = _known_tests(args)
    advice = worker_curve(estimates, nodeids, target, args.max)
    out = _output(args)
    if args.format == "json":
        json.dump(advice.to_json(), out, indent=2)
        out.write("\n")
        return 0
    out.write(f"{'workers':>7}  {'makespan':>8}  {'bound':>8}\n")
    for point in advice.curve:
        mark = "  <- target met" if point.workers == advice.recommended else ""
        out.write(
            f"{point.workers:>7}  {format_duration(point.makespan_s):>8}  "
            f"{format_duration(point.lower_bound_s):>8}{mark}\n"
        )
    if target is not None:
        if advice.recommended is None:
            out.write(
                f"no count up to {advice.curve[-1].workers} meets {format_duration(target)}: "
                f"the best is {format_duration(min(p.makespan_s for p in advice.curve))}\n"
            )
        else:
            out.write(
                f"{advice.recommended} workers meet {format_duration(target)} "
                f"(pytest -n {advice.recommended} --feedback-dist, or "
                f"--feedback-shard K/{advice.recommended} in CI)\n"
            )
    out.write(
        f"adding workers stops paying after {advice.stops_paying} "
        f"(one more saves under {round(100 * 0.05)}%)\n"
    )
    return 0


def _add_keep_runs(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--keep-runs",
        type=_positive_int,
        default=DEFAULT_KEEP_RUNS,
        metavar="N",
        help=f"runs whose details {what} keeps (default {DEFAULT_KEEP_RUNS}; aggregates are "
        "kept for all)",
    )


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

    merge = sub.add_parser(
        "merge",
        help="combine histories from CI shards or machines into one (idempotent)",
        description="Merge history files into OUT (created, or merged into when it exists). "
        "Shard runs of one CI pipeline become one run; merging a file twice adds nothing. "
        "The inputs are only read.",
    )
    merge.add_argument("inputs", nargs="+", metavar="IN.db", help="histories to merge")
    merge.add_argument("-o", "--output", required=True, metavar="OUT.db", help="the merged history")
    _add_keep_runs(merge, "OUT")
    merge.set_defaults(func=cmd_merge)

    junit = sub.add_parser(
        "import-junit",
        parents=[common],
        help="bootstrap durations from existing JUnit XML reports",
        description="Import JUnit XML reports (pytest's own, and the common dialects) as runs, "
        "so that estimates exist before the first recorded run. Importing a file twice adds "
        "nothing.",
    )
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
    _add_keep_runs(junit, "the history")
    junit.set_defaults(func=cmd_import_junit)
    report = sub.add_parser(
        "report",
        parents=[common],
        help="where the time goes: slowest tests, fixtures and files, slow-downs, flaky tests",
    )
    report.add_argument(
        "--format",
        choices=("text", "markdown", "json"),
        default="text",
        help="text for people (default), markdown for $GITHUB_STEP_SUMMARY, json for scripts",
    )
    report.add_argument(
        "--top",
        type=_positive_int,
        metavar="N",
        help="rows per table (default 10; json: all tests and fixtures unless given)",
    )
    report.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    report.set_defaults(func=cmd_report)
    why = sub.add_parser(
        "why", parents=[common], help="what a test depends on (needs pytest --feedback-cov)"
    )
    why.add_argument("nodeid", help="the test's node id, as pytest prints it")
    why.add_argument("--format", choices=("text", "json"), default="text")
    why.set_defaults(func=cmd_why)
    from pytest_feedback.cli.selection import add_select_command, add_why_selection_options

    add_why_selection_options(why)
    deps = sub.add_parser(
        "deps", parents=[common], help="the tests that reach a file, line or function"
    )
    deps.add_argument("target", help="FILE, FILE:LINE, FILE:START-END or FILE::FUNCTION")
    deps.add_argument("--format", choices=("text", "json"), default="text")
    deps.set_defaults(func=cmd_deps)
    shards = sub.add_parser(
        "shards",
        parents=[common],
        help="plan N CI shards from the history (pytest --feedback-shard)",
    )
    shards.add_argument("n", type=int, metavar="N", help="number of shards")
    shards.add_argument("--format", choices=["text", "json", "github-matrix"], default="text")
    shards.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    shards.set_defaults(func=cmd_shards)

    workers = sub.add_parser(
        "workers", parents=[common], help="how many workers or shards reach a target time"
    )
    workers.add_argument("--target", metavar="DURATION", help="e.g. 5m, 300, 1h30m")
    workers.add_argument("--max", type=int, default=16, help="largest count to try (default 16)")
    workers.add_argument("--format", choices=["text", "json"], default="text")
    workers.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    workers.set_defaults(func=cmd_workers)

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
    except sqlite3.Error as exc:  # a read the store did not wrap: still one line, not a traceback
        path = Path(args.db) if getattr(args, "db", None) else find_project_db(Path.cwd())
        print(f"pytest-feedback: error: {describe_sqlite_error(path, exc)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
