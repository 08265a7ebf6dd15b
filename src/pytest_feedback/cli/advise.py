"""``pytest-feedback advise``: what to change to get faster, ranked, as text, markdown or json."""

from __future__ import annotations

import argparse
import json

from pytest_feedback.cli.common import (
    add_db_option,
    add_output_option,
    db_path,
    output,
    positive_int,
)
from pytest_feedback.durations import parse_duration
from pytest_feedback.errors import ConfigError, FeedbackError

DEFAULT_TOP = 10


def add_advise_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    advise = sub.add_parser(
        "advise",
        help="what to change to get faster: ranked suggestions with the seconds each saves",
    )
    add_db_option(advise)
    advise.add_argument(
        "--format",
        choices=("text", "markdown", "json"),
        default="text",
        help="text for people (default), markdown for $GITHUB_STEP_SUMMARY, json for scripts",
    )
    advise.add_argument(
        "--top", type=positive_int, metavar="N", help=f"suggestions shown (default {DEFAULT_TOP})"
    )
    advise.add_argument(
        "--target",
        metavar="DURATION",
        default="5m",
        help="the run time the parallelism suggestion aims for (default 5m)",
    )
    add_output_option(advise)
    advise.set_defaults(func=cmd_advise)


def cmd_advise(args: argparse.Namespace) -> int:
    """Print the ranked suggestions from the history."""
    from pytest_feedback.history.store import Store
    from pytest_feedback.planning.advice import advise
    from pytest_feedback.report.advice import write_markdown, write_text

    try:
        target = parse_duration(args.target, what="--target")
    except ConfigError as exc:
        raise FeedbackError(str(exc)) from None
    with Store.open_existing(db_path(args)) as store:
        if not store.reads.run_count():
            raise FeedbackError("the history has no runs yet; run `pytest --feedback` first")
        advice = advise(store, target_s=target).top(args.top or DEFAULT_TOP)
    with output(args) as out:
        if args.format == "json":
            json.dump(advice.to_json(), out, indent=2)
            out.write("\n")
        elif args.format == "markdown":
            write_markdown(advice, out)
        else:
            write_text(advice, out)
    return 0
