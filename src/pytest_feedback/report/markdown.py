"""The report as GitHub-flavoured markdown, for ``$GITHUB_STEP_SUMMARY`` and pull requests.

Everything that comes from users' code (node ids, file paths, fixture names and locations) is put
in a code span: no emphasis, links, HTML, emoji or maths inside it, whatever it contains. Table
cells additionally escape ``|`` (GFM splits rows on it even inside code spans), and control
characters are shown as escapes so that a newline cannot end a row.
"""

from __future__ import annotations

import re
import string

from pytest_feedback.report import formatting as fmt
from pytest_feedback.report.catches import TITLE as CATCHES_TITLE
from pytest_feedback.report.catches import short_lines
from pytest_feedback.report.flaky import TITLE as FLAKY_TITLE
from pytest_feedback.report.flaky import section_items
from pytest_feedback.report.model import Report, RunSummary, TestRow

_PUNCTUATION = frozenset(string.punctuation)
_BACKTICKS = re.compile(r"`+")


def code(text: str) -> str:
    """``text`` as an inline code span that is safe in a table cell."""
    content = fmt.visible(text).replace("|", "\\|")
    longest = max((len(m) for m in _BACKTICKS.findall(content)), default=0)
    fence = "`" * (longest + 1)
    # One space each side: stripped again by the parser, and keeps a leading or trailing
    # backtick of the content from joining the fence.
    return f"{fence} {content} {fence}"


def plain(text: str) -> str:
    """``text`` as literal markdown text: every ASCII punctuation character backslash-escaped."""
    return "".join(f"\\{ch}" if ch in _PUNCTUATION else ch for ch in fmt.visible(text))


def render(report: Report) -> str:
    """The whole report as markdown, ending with a newline."""
    lines = ["## pytest-feedback report", ""]
    lines += summary(report)
    if report.tests:
        lines += section(
            f"Slowest tests (of {report.test_count:,})",
            ["test", "estimate", "this run", "set-up / call / tear-down", "trend"],
            [
                [
                    code(row.nodeid),
                    fmt.seconds(row.estimate.estimate_s),
                    fmt.seconds(row.last_s),
                    fmt.split(row.last),
                    fmt.sparkline(row.trend),
                ]
                for row in report.slowest
            ],
        )
    if report.fixtures:
        lines += section(
            f"Slowest fixtures (of {len(report.fixtures):,}, by cost per run)",
            ["fixture", "scope", "per execution", "executions per run", "per run", "used by"],
            [
                [
                    code(f.name),
                    plain(f.scope),
                    fmt.seconds(f.cost_s),
                    fmt.times(f.executions_per_run),
                    fmt.seconds(f.cost_per_run_s),
                    f"{f.used_by:,}",
                ]
                for f in report.fixtures[: report.top]
            ],
        )
    if report.files:
        lines += section(
            f"Slowest files (of {len(report.files):,})",
            ["file", "tests", "estimate", "share"],
            [
                [code(r.file), f"{r.tests:,}", fmt.seconds(r.estimate_s), fmt.percent(r.share)]
                for r in report.files[: report.top]
            ],
        )
    if report.slowed_down:
        lines += section(
            f"Slowed down ({len(report.slowed_down):,}: recent runs against their history)",
            ["test", "before", "recent", "slower", "trend"],
            [slowed_row(row) for row in report.slowed_down[: report.top]],
        )
    if report.flaky:
        lines += section(
            f"Flaky ({len(report.flaky):,}: passed and failed with no code change between)",
            ["test", "fail rate", "runs", "last", "outcomes"],
            [
                [
                    code(row.nodeid),
                    fmt.percent(row.estimate.fail_rate),
                    f"{row.estimate.runs:,}",
                    plain(row.estimate.last_outcome or ""),
                    code(row.outcomes[-fmt.TREND_POINTS :]),
                ]
                for row in report.flaky[: report.top]
            ],
        )
    if report.flakiness is not None and not report.flakiness.empty:
        items = section_items(report.flakiness, code, plain, report.top)
        lines += ["", f"### {FLAKY_TITLE}", "", *(f"- {item}" for item in items)]
    if report.catches is not None and report.catches.enough:
        lines += ["", f"### {CATCHES_TITLE}", "", *short_lines(report.catches)]  # our own words
    if report.hint:
        lines += ["", f"**Plan:** {report.hint}"]  # our own words, `code` spans meant
    if report.advice:
        lines += ["", "**To get faster** (`pytest-feedback advise`):", ""]
        lines += [plain(line) for line in report.advice]
    if report.left_out:  # our own words, `code` spans meant
        lines += ["", fmt.left_out_line(report.left_out, report.test_count)]
    return "\n".join(lines) + "\n"


def summary(report: Report) -> list[str]:
    run = report.last_run
    if run is None:
        return ["No runs recorded yet; run `pytest --feedback`."]
    return [
        f"**Last run:** {fmt.run_heading(run, code)}  ",
        f"{figures(run)}  ",
        f"**History:** {report.runs:,} run{'s' * (report.runs != 1)} · {report.test_count:,} "
        f"test{'s' * (report.test_count != 1)}{fmt.gone_note(report.gone)} · "
        f"expected test time {fmt.seconds(report.total_estimate_s)}",
    ]


def figures(run: RunSummary) -> str:
    return " · ".join(fmt.run_figures(run))


def slowed_row(row: TestRow) -> list[str]:
    return [
        code(row.nodeid),
        fmt.seconds(row.before_s),
        fmt.seconds(row.recent_s),
        fmt.ratio(row.estimate.slowdown),
        fmt.sparkline(row.trend),
    ]


def section(title: str, headers: list[str], rows: list[list[str]]) -> list[str]:
    align = ["---" if i == 0 else "---:" for i in range(len(headers))]
    if headers[-1] in ("trend", "outcomes"):
        align[-1] = "---"
    out = ["", f"### {title}", "", table_row(headers), table_row(align)]
    out += [table_row(row) for row in rows]
    return out


def table_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
