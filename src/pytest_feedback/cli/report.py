"""``pytest-feedback report``: where the time goes, as text, markdown, json, an HTML page or a
trace file."""

from __future__ import annotations

import argparse
import sys

from pytest_feedback.cli.common import (
    add_db_option,
    add_output_option,
    db_path,
    output,
    positive_int,
)


def add_report_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser(
        "report",
        help="where the time goes: slowest tests, fixtures and files, slow-downs, flaky tests",
        description="Where the time goes, from the history: the slowest tests, fixtures and "
        "files, tests that slowed down, flaky tests, and what a plan would gain.",
    )
    add_db_option(report)
    report.add_argument(
        "--format",
        choices=("text", "markdown", "json", "html", "trace"),
        default="text",
        help="text for people (default), markdown for $GITHUB_STEP_SUMMARY, json for scripts, "
        "html: one self-contained page with the last run's timeline and trends (use -o), "
        "trace: the last run as Chrome trace events for Perfetto (use -o)",
    )
    report.add_argument(
        "--top",
        type=positive_int,
        metavar="N",
        help="rows per table (default 10; json: all tests and fixtures unless given)",
    )
    add_output_option(report)
    report.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    """Print the report (text, markdown or json) from the history."""
    from pytest_feedback.cli.selection import resolve_rootdir
    from pytest_feedback.history.store import Store
    from pytest_feedback.report import DEFAULT_TOP, build_report, write_report
    from pytest_feedback.report.allowance import Allowance
    from pytest_feedback.report.details import add_details

    db = db_path(args)
    rootdir = resolve_rootdir(args, db)
    with Store.open_existing(db) as store:
        allowance = Allowance(store)
        report = build_report(
            store,
            top=args.top or DEFAULT_TOP,
            all_tests=args.format == "json" and args.top is None,
            allowance=allowance,
            rootdir=rootdir,
        )
        if args.format in ("text", "html", "trace"):
            report = add_details(store, report, page=args.format == "html", allowance=allowance)
    with output(args) as out:
        write_report(report, args.format, out, top=args.top, color=out is sys.stdout)
    return 0
