"""``pytest-feedback simulate``: what a budget would have caught, replayed over the history."""

from __future__ import annotations

import argparse
import datetime
import json

from pytest_feedback.cli.common import (
    add_db_option,
    add_output_option,
    db_path,
    output,
    positive_int,
)
from pytest_feedback.cli.selection import add_rootdir_option, resolve_rootdir
from pytest_feedback.durations import parse_duration
from pytest_feedback.errors import FeedbackError


def add_simulate_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    simulate = sub.add_parser(
        "simulate",
        help="what a time budget would have caught: the budget replayed over the failing runs",
        description="For every recorded run with failing tests (flaky ones left out), plan what "
        "`pytest --feedback-budget B` would have run before it, from the history up to it and "
        "the change since the run before, and count whether it held a failing test; against "
        "the fastest tests first and random tests in the same budget.",
    )
    add_db_option(simulate)
    simulate.add_argument(
        "--budget",
        metavar="DURATIONS",
        default="1m,2m,5m,10m",
        help="budgets to replay, comma-separated (default 1m,2m,5m,10m)",
    )
    window = simulate.add_mutually_exclusive_group()
    window.add_argument(
        "--since", metavar="DATE", help="only runs started on or after DATE (YYYY-MM-DD)"
    )
    window.add_argument("--runs", type=positive_int, metavar="N", help="only the last N runs")
    simulate.add_argument(
        "--format",
        choices=("text", "markdown", "json"),
        default="text",
        help="text for people (default), markdown for a pull request or $GITHUB_STEP_SUMMARY, "
        "json for scripts",
    )
    add_output_option(simulate)
    add_rootdir_option(simulate)
    simulate.set_defaults(func=cmd_simulate)


def parse_budgets(text: str) -> list[float]:
    """``1m,2m,5m`` -> seconds; a bad one is an error naming it."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise FeedbackError("--budget: give budgets such as 1m,2m,5m")
    return [parse_duration(p, what="--budget") for p in parts]


def parse_since(text: str) -> float:
    """A date (or ISO date and time, local time) as a Unix timestamp."""
    try:
        when = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise FeedbackError(
            f"--since {text!r}: not a date; give one such as 2026-11-30 (or 2026-11-30T09:00)"
        ) from None
    return when.timestamp()


def cmd_simulate(args: argparse.Namespace) -> int:
    """Print what each budget would have caught (text, markdown or json)."""
    from pytest_feedback.history.store import Store
    from pytest_feedback.planning.simulate import simulate
    from pytest_feedback.report.catches import document, markdown_lines, text_lines
    from pytest_feedback.selection.replay import replay_inputs

    budgets = parse_budgets(args.budget)
    since = parse_since(args.since) if args.since else None
    db = db_path(args)
    with Store.open_existing(db) as store:
        replay, change_of = replay_inputs(store, resolve_rootdir(args, db))
        sim = simulate(replay, budgets, change_of, since=since, last=args.runs)
    with output(args) as out:
        if args.format == "json":
            out.write(json.dumps(document(sim), indent=2) + "\n")
        else:
            lines = markdown_lines(sim) if args.format == "markdown" else text_lines(sim)
            out.write("\n".join(lines) + "\n")
    return 0
