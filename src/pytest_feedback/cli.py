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
from typing import TYPE_CHECKING, Callable, TextIO

from . import __version__
from .errors import FeedbackError
from .settings import ENV_DB, find_project_db

if TYPE_CHECKING:
    from .estimates import Estimates

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


def _known_tests(args: argparse.Namespace) -> tuple[Estimates, list[str]]:
    """The history's estimates and the tests it knows (the CLI does not collect)."""
    from .store import Store

    with Store.open_existing(_db_path(args)) as store:
        estimates = store.load_estimates()
    if not estimates.tests:
        raise FeedbackError("the history has no tests yet; run `pytest --feedback` first")
    return estimates, sorted(estimates.tests)


def cmd_shards(args: argparse.Namespace) -> int:
    """The plan for N CI shards."""
    import json

    from .durations import format_duration
    from .shards import plan_shards

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

    from .durations import format_duration, parse_duration
    from .errors import ConfigError
    from .shards import worker_curve

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
