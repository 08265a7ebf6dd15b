"""The subcommands that plan from the history: ``shards`` (N CI shards) and ``workers`` (how
many processes reach a target time)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Optional, TextIO

from pytest_feedback.cli.common import add_db_option, add_output_option, db_path, output
from pytest_feedback.cli.selection import resolve_rootdir
from pytest_feedback.durations import format_duration, parse_duration
from pytest_feedback.errors import ConfigError, FeedbackError

if TYPE_CHECKING:
    from pytest_feedback.history.estimates import Estimates
    from pytest_feedback.planning.shards import ShardPlan, WorkerAdvice


def add_plan_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    shards = sub.add_parser(
        "shards",
        help="plan N CI shards from the history (pytest --feedback-shard)",
        description="Plan N balanced, fixture-aware CI shards from the history; each shard "
        "then runs with pytest --feedback-shard K/N. With no history yet, shards split the "
        "collected tests by count (and github-matrix still prints the matrix).",
    )
    add_db_option(shards)
    shards.add_argument("n", type=int, metavar="N", help="number of shards")
    shards.add_argument(
        "--format",
        choices=["text", "json", "github-matrix"],
        default="text",
        help="text for people (default), json for scripts, github-matrix for a GitHub Actions "
        "strategy.matrix",
    )
    add_output_option(shards)
    shards.set_defaults(func=cmd_shards)

    workers = sub.add_parser(
        "workers",
        help="how many workers or shards reach a target time",
        description="The predicted wall time for 1 to --max workers (xdist processes or CI "
        "shards), the count that meets --target, and where adding more stops paying.",
    )
    add_db_option(workers)
    workers.add_argument(
        "--target", metavar="DURATION", help="the wall time to reach, e.g. 5m, 300, 1h30m"
    )
    workers.add_argument("--max", type=int, default=16, help="largest count to try (default 16)")
    workers.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="text for people (default), json for scripts",
    )
    add_output_option(workers)
    workers.set_defaults(func=cmd_workers)


def _known_tests(
    args: argparse.Namespace, *, missing_ok: bool = False
) -> tuple[Estimates, list[str]]:
    """The history's estimates and the tests it knows that still exist (the CLI does not
    collect). ``missing_ok``: no history, or an empty one, gives no tests instead of an error."""
    from pytest_feedback.history.estimates import Estimates
    from pytest_feedback.history.store import Store
    from pytest_feedback.selection.existing import gone_line, split_present

    db = db_path(args)
    # A history that is not there yet: the default file (a CI cache miss), or an empty one (a
    # `touch`ed placeholder). A missing --db PATH is more likely a typo and stays an error.
    empty = db.is_file() and db.stat().st_size == 0
    if missing_ok and (empty or (args.db is None and not db.exists())):
        return Estimates({}), []
    with Store.open_existing(db) as store:
        estimates = store.reads.load_estimates()
    if not estimates.tests and not missing_ok:
        raise FeedbackError("the history has no tests yet; run `pytest --feedback` first")
    nodeids, gone = split_present(resolve_rootdir(args, db), sorted(estimates.tests))
    if gone:
        print(gone_line(gone), file=sys.stderr)
    return estimates, nodeids


def cmd_shards(args: argparse.Namespace) -> int:
    """The plan for N CI shards."""
    from pytest_feedback.planning.shards import plan_shards

    if args.n < 1:
        raise FeedbackError(f"shards: {args.n} is not a positive number of shards")
    estimates, nodeids = _known_tests(args, missing_ok=args.format != "json")
    if not nodeids:
        # No history yet: `pytest --feedback-shard K/N` splits the collected tests by count.
        print(
            f"feedback: no history yet: {args.n} shards of equal test count; the next "
            "pipeline plans them by time",
            file=sys.stderr,
        )
        with output(args) as out:
            if args.format == "github-matrix":
                _write_matrix(out, args.n)
            else:
                out.write(f"run one with: pytest --feedback-shard K/{args.n}\n")
        return 0
    plan = plan_shards(estimates, nodeids, args.n)
    with output(args) as out:
        _write_shards(out, plan, len(nodeids), args.format)
    return 0


def _write_shards(out: TextIO, plan: ShardPlan, tests: int, form: str) -> None:
    if form == "json":
        json.dump(plan.to_json(), out, indent=2)
        out.write("\n")
        return
    if form == "github-matrix":
        _write_matrix(out, plan.n)
        return
    out.write(
        f"{tests:,} tests on {plan.n} shards: predicted makespan "
        f"{format_duration(plan.makespan_s)}, lower bound "
        f"{format_duration(plan.lower_bound_s)}\n"
    )
    for shard in plan.shards:
        out.write(
            f"  shard {shard.index}/{plan.n}: {len(shard.tests):>6,} "
            f"test{'s' * (len(shard.tests) != 1)}  "
            f"{format_duration(shard.estimate_s):>7}\n"
        )
    out.write(f"run one with: pytest --feedback-shard K/{plan.n}\n")


def _write_matrix(out: TextIO, n: int) -> None:
    """The ``strategy.matrix`` of GitHub Actions: one ``shard: K/N`` entry per shard."""
    matrix = {"include": [{"shard": f"{k}/{n}"} for k in range(1, n + 1)]}
    out.write(json.dumps(matrix) + "\n")


def cmd_workers(args: argparse.Namespace) -> int:
    """How many workers (or shards) reach a target time."""
    from pytest_feedback.planning.shards import worker_curve

    try:
        target = parse_duration(args.target, what="--target") if args.target else None
    except ConfigError as exc:
        raise FeedbackError(str(exc)) from None
    if args.max < 1:
        raise FeedbackError(f"--max: {args.max} is not a positive number of workers")
    estimates, nodeids = _known_tests(args)
    advice = worker_curve(estimates, nodeids, target, args.max)
    with output(args) as out:
        _write_workers(out, advice, target, args.format)
    return 0


def _write_workers(out: TextIO, advice: WorkerAdvice, target: Optional[float], form: str) -> None:
    from pytest_feedback.planning.shards import WORTHWHILE_GAIN

    if form == "json":
        json.dump(advice.to_json(), out, indent=2)
        out.write("\n")
        return
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
            cores = os.cpu_count() or 1
            if advice.recommended > cores:
                out.write(
                    f"note: this machine has {cores} CPU core{'s' * (cores != 1)}: "
                    f"{advice.recommended} xdist workers here would share them and take longer; "
                    "as CI shards on machines of their own they do not\n"
                )
    out.write(
        f"adding workers stops paying after {advice.stops_paying} "
        f"(one more saves under {round(100 * WORTHWHILE_GAIN)}%)\n"
    )
