"""The report as one self-contained HTML page: the last run's timeline, trends over runs, the
tables of the text report with sparklines, and the plans.

Nothing is loaded from elsewhere (style and script are inlined, fonts are the system's), so the
file works opened from disk and as a CI artifact. The tables and charts are HTML and SVG built
here and read without JavaScript; only the timeline's canvas needs the script.

The page is a list of sections, `SECTIONS`: each is one function of the `Report` that returns the
section's HTML body, or None to leave the section out. A new block of the report is a function
added to that list at its place (as the flaky / quarantined block, "what a budget catches" and
the advice were); its data comes from a `Report` field filled by `model.build_report` or
`details.add_details`. Everything from the history goes through `html_parts.esc`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources
from typing import Callable, NamedTuple, Optional

from pytest_feedback.report import catches, flaky
from pytest_feedback.report import formatting as fmt
from pytest_feedback.report.html_parts import (
    Markup,
    code,
    esc,
    line_chart,
    prose,
    share_bar,
    sparkline,
    table,
)
from pytest_feedback.report.html_timeline import timeline_section
from pytest_feedback.report.model import Report, TestRow


class Section(NamedTuple):
    """One section of the page: its anchor, its heading, and what fills it."""

    key: str
    title: Callable[[Report], str]
    body: Callable[[Report], Optional[str]]


def render(report: Report, sections: Optional[Sequence[Section]] = None) -> str:
    """The page's text."""
    shown = []
    for section in SECTIONS if sections is None else sections:
        body = section.body(report)
        if body is not None:
            shown.append((section.key, section.title(report), body))
    nav = "".join(f'<a href="#{key}">{esc(title)}</a>' for key, title, _ in shown)
    parts = "".join(
        f'<section id="{key}"><h2>{esc(title)}</h2>{body}</section>' for key, title, body in shown
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # Nothing from elsewhere, even if a name in the page looked like a URL.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>pytest-feedback report</title><style>{_asset('page.css')}</style></head>"
        f"<body><header><h1>pytest-feedback report</h1>{_heading(report)}<nav>{nav}</nav>"
        f"</header><main>{parts}</main>"
        f"<script>{_asset('timeline.js')}</script></body></html>\n"
    )


@functools.cache
def _asset(name: str) -> str:
    text = (
        resources.files("pytest_feedback.report")
        .joinpath("assets")
        .joinpath(name)
        .read_text("utf-8")
    )
    return text.replace("</", "<\\/")  # inlined: nothing in it may close its element


def _heading(report: Report) -> str:
    run = report.last_run
    if run is None:
        return "<p>No runs recorded yet; run <code>pytest --feedback</code>.</p>"
    lines = [fmt.run_heading(run), *fmt.run_figures(run)]
    lines.append(
        f"History: {report.runs:,} run{'s' * (report.runs != 1)} · {report.test_count:,} "
        f"test{'s' * (report.test_count != 1)}{fmt.gone_note(report.gone)} · "
        f"expected test time {fmt.seconds(report.total_estimate_s)}"
    )
    return "".join(f"<p>{esc(line)}</p>" for line in lines)


# -- the sections ----------------------------------------------------------------------------


def trends_section(report: Report) -> Optional[str]:
    runs = report.trends
    if len(runs) < 2:
        return None
    labels = [f"run {r.run_id} · {fmt.timestamp(r.started_at)}" for r in runs]
    charts = [
        line_chart("Wall time", list(zip(labels, (r.wall_s for r in runs)))),
        line_chart("Test time (all phases)", list(zip(labels, (r.test_time_s for r in runs)))),
        line_chart("Failed tests", list(zip(labels, (float(r.failed) for r in runs))), unit=""),
        line_chart(
            "Failures of flaky tests",
            list(zip(labels, (float(r.flaky_failures) for r in runs))),
            unit="",
        ),
    ]
    return (
        f'<div class="charts">{"".join(charts)}</div>'
        f'<p class="note">The last {len(runs):,} recorded runs, oldest on the left; hover a '
        "point for its run. Failures of flaky tests: failures of the tests the history flags "
        "as flaky now.</p>"
    )


def _trend(row: TestRow) -> Markup:
    return sparkline(row.trend)


def slowest_section(report: Report) -> Optional[str]:
    if not report.slowest:
        return None
    rows = [
        (
            code(row.nodeid),
            fmt.seconds(row.estimate.estimate_s),
            fmt.seconds(row.last_s),
            fmt.split(row.last),
            _trend(row),
        )
        for row in report.slowest
    ]
    return table(
        ("test", "estimate", "this run", "set/call/tear", "trend"), rows, numeric=(1, 2, 3)
    )


def fixtures_section(report: Report) -> Optional[str]:
    if not report.fixtures:
        return None
    rows = [
        (
            Markup(f"{code(f.name)} <small>{esc(f.location)}</small>"),
            f.scope,
            fmt.seconds(f.cost_s),
            fmt.times(f.executions_per_run),
            fmt.seconds(f.cost_per_run_s),
            f"{f.used_by:,}",
        )
        for f in report.fixtures[: report.top]
    ]
    return table(
        ("fixture", "scope", "per exec", "execs/run", "per run", "used by"),
        rows,
        numeric=(2, 3, 4, 5),
    )


def files_section(report: Report) -> Optional[str]:
    if not report.files:
        return None
    rows = [
        (
            code(r.file),
            f"{r.tests:,}",
            fmt.seconds(r.estimate_s),
            share_bar(r.share, fmt.percent(r.share)),
        )
        for r in report.files[: report.top]
    ]
    return table(("file", "tests", "estimate", "share"), rows, numeric=(1, 2))


def slowed_section(report: Report) -> Optional[str]:
    if not report.slowed_down:
        return None
    rows = [
        (
            code(row.nodeid),
            fmt.seconds(row.before_s),
            fmt.seconds(row.recent_s),
            fmt.ratio(row.estimate.slowdown),
            _trend(row),
        )
        for row in report.slowed_down[: report.top]
    ]
    return table(("test", "before", "recent", "slower", "trend"), rows, numeric=(1, 2, 3))


def flaky_section(report: Report) -> Optional[str]:
    """The flaky tests: fail rate and recent outcomes."""
    if not report.flaky:
        return None
    rows = [
        (
            code(row.nodeid),
            fmt.percent(row.estimate.fail_rate),
            f"{row.estimate.runs:,}",
            row.estimate.last_outcome or "",
            Markup(f"<code>{esc(row.outcomes[-20:])}</code>"),
        )
        for row in report.flaky[: report.top]
    ]
    return table(("test", "fail rate", "runs", "last", "outcomes"), rows, numeric=(1, 2))


def flakiness_section(report: Report) -> Optional[str]:
    """The flaky / quarantined block (`flaky`): evidence, reruns, the quarantine."""
    section = report.flakiness
    if section is None or section.empty:
        return None
    items = flaky.section_items(section, code, esc, report.top)
    return f"<ul>{''.join(f'<li>{item}</li>' for item in items)}</ul>"


def catches_section(report: Report) -> Optional[str]:
    """What a budget catches (`catches`): the headline, a row per budget, the notes."""
    sim = report.catches
    if sim is None:
        return None
    parts = [f"<p>{esc(catches.headline(sim))}</p>"]
    if sim.enough:
        # The same columns as `simulate` and the markdown block.
        parts.append(table(catches._HEAD, catches._cells(sim), numeric=range(1, 6)))
    parts += [f'<p class="note">{esc(note)}</p>' for note in catches.notes(sim)]
    return "".join(parts)


def plans_section(report: Report) -> Optional[str]:
    plans = report.plans
    if plans is None:
        return None
    longest = max((s.estimate_s for s in plans.shard_bars), default=0.0) or 1.0
    shard_rows = [
        (
            f"{s.index}/{plans.shards}",
            f"{s.tests:,}",
            share_bar(s.estimate_s / longest, fmt.seconds(s.estimate_s)),
        )
        for s in plans.shard_bars
    ]
    curve = line_chart(
        "Predicted wall time by workers (dashed: lower bound)",
        [(f"{w} worker{'s' * (w != 1)}", makespan) for w, makespan, _ in plans.curve],
        second=[bound for _, _, bound in plans.curve],
    )
    heading = (
        f"{plans.shards} shards: predicted {fmt.seconds(plans.makespan_s)} each at most, "
        f"lower bound {fmt.seconds(plans.lower_bound_s)}"
    )
    note = (
        "The curve: the longest worker's predicted time for each count, from the history's "
        "estimates; where it flattens, more workers stop paying. "
        "`pytest-feedback workers --target DURATION` finds the count for a target."
    )
    return (
        f"<p>{esc(heading)} (<code>pytest-feedback shards {plans.shards}</code>).</p>"
        f"{table(('shard', 'tests', 'predicted'), shard_rows, numeric=(1,))}"
        f'<div class="charts">{curve}</div><p class="note">{prose(note)}</p>'
    )


def advice_section(report: Report) -> Optional[str]:
    """The first suggestions of `pytest-feedback advise` (`Report.advice`, numbered lines)."""
    if not report.advice:
        return None
    lines = "".join(f"<p>{esc(line)}</p>" for line in report.advice)
    return (
        f'{lines}<p class="note">All of them, with their evidence: '
        "<code>pytest-feedback advise</code>.</p>"
    )


def hint_section(report: Report) -> Optional[str]:
    return f"<p>{prose(report.hint)}</p>" if report.hint else None


def left_out_section(report: Report) -> Optional[str]:
    """The optional blocks the report's allowance had no room for, with their commands."""
    line = fmt.left_out_line(report.left_out, report.test_count)
    return f"<p>{prose(line)}</p>" if line else None


def _const(text: str) -> Callable[[Report], str]:
    return lambda report: text


#: The page, top to bottom.
SECTIONS: list[Section] = [
    Section("timeline", _const("Timeline of the last run"), timeline_section),
    Section("trends", _const("Trends"), trends_section),
    Section("slowest", lambda r: f"Slowest tests (of {r.test_count:,})", slowest_section),
    Section(
        "fixtures",
        lambda r: f"Slowest fixtures (of {len(r.fixtures):,}, by cost per run)",
        fixtures_section,
    ),
    Section("files", lambda r: f"Slowest files (of {len(r.files):,})", files_section),
    Section(
        "slowed",
        lambda r: f"Slowed down ({len(r.slowed_down):,}: recent runs against their history)",
        slowed_section,
    ),
    Section("flaky", lambda r: f"Flaky ({len(r.flaky):,})", flaky_section),
    Section("quarantine", _const(flaky.TITLE), flakiness_section),
    Section("catches", _const("What a budget catches"), catches_section),
    Section("plans", _const("Shard plan and worker curve"), plans_section),
    Section("advice", _const("To get faster"), advice_section),
    Section("hint", _const("Plan"), hint_section),
    Section("left-out", _const("Left out"), left_out_section),
]
