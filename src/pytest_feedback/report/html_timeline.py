"""The HTML page's timeline section: a table of the lanes (readable without JavaScript) and a
canvas the page's script draws the bars on, from data embedded in the page.

The data is columnar (numbers in flat arrays, names in tables) so that a 20,000-test run stays
a few megabytes: times are whole microseconds from the run's start. Fixture set-ups and
tear-downs shorter than `MIN_FIXTURE_S` are left out of the drawing (they would be invisible
at any zoom a whole run fits in); the section says how many.
"""

from __future__ import annotations

from typing import Any, Optional

from pytest_feedback.report import formatting as fmt
from pytest_feedback.report.html_parts import Markup, esc, json_for_script, share_bar, table
from pytest_feedback.report.model import Report
from pytest_feedback.report.timeline import Timeline

MIN_FIXTURE_S = 0.001
#: Outcome codes of the data's test rows (the script colours bars by them).
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


def timeline_data(timeline: Timeline) -> dict[str, Any]:
    """What the page's script reads: lanes, and per test / per fixture phase a row of numbers."""

    def us(seconds: float) -> int:
        return round(seconds * 1e6)

    outcome_code = {name: i for i, name in enumerate(OUTCOMES)}
    tests: list[int] = []
    ids: list[str] = []
    for bar in timeline.tests:
        ids.append(fmt.visible(bar.nodeid))
        tests += (
            bar.lane,
            us(bar.start_s),
            us(bar.setup_s),
            us(bar.call_s),
            us(bar.teardown_s),
            outcome_code.get(bar.outcome, len(OUTCOMES)),
        )
    names: dict[str, int] = {}
    fixtures: list[int] = []
    dropped = 0
    for fixture in timeline.fixtures:
        if fixture.duration_s < MIN_FIXTURE_S:
            dropped += 1
            continue
        label = f"{fmt.visible(fixture.name)} ({fixture.scope})"
        fixtures += (
            fixture.lane,
            us(fixture.start_s),
            us(fixture.duration_s),
            names.setdefault(label, len(names)),
            0 if fixture.phase == "setup" else 1,
        )
    return {
        "span": us(timeline.span_s),
        "lanes": [
            {"name": fmt.visible(lane.name), "start": us(lane.start_s), "end": us(lane.end_s)}
            for lane in timeline.lanes
        ],
        "outcomes": [*OUTCOMES, "other"],
        "ids": ids,
        "tests": tests,
        "fixtureNames": list(names),
        "fixtures": fixtures,
        "dropped": dropped,
    }


def timeline_section(report: Report) -> Optional[str]:
    """The section: lane table, canvas, controls, tooltip and the embedded data."""
    timeline = report.timeline
    if timeline is None:
        if report.last_run is None:
            return None
        return (
            "<p>The last run has no recorded start times (an older pytest-feedback recorded "
            "it, or pytest's clock was frozen): run the tests again with "
            "<code>--feedback</code> to see its timeline.</p>"
        )
    data = timeline_data(timeline)
    notes = []
    if timeline.untimed:
        notes.append(f"{timeline.untimed:,} tests without a recorded start are not drawn.")
    if data["dropped"]:
        notes.append(
            f"{data['dropped']:,} fixture set-ups and tear-downs under "
            f"{MIN_FIXTURE_S * 1000:g} ms are not drawn."
        )
    return (
        '<div class="timeline" id="timeline">'
        '<div class="controls" aria-hidden="true">'
        '<button type="button" data-zoom="in">zoom in</button>'
        '<button type="button" data-zoom="out">zoom out</button>'
        '<button type="button" data-zoom="reset">whole run</button>'
        "<span>Wheel: zoom · drag: pan · click a bar: its details · double-click: whole run"
        "</span></div>"
        '<canvas id="timeline-canvas" height="120"></canvas>'
        '<div id="timeline-tip" class="tip" role="tooltip" hidden></div>'
        '<pre id="timeline-detail" class="detail" aria-live="polite"></pre>'
        '<p class="legend"><span class="key call"></span>test call '
        '<span class="key setup"></span>test set-up / tear-down '
        '<span class="key failed"></span>failed '
        '<span class="key fixture"></span>fixture set-up '
        '<span class="key fteardown"></span>fixture tear-down '
        '<span class="key idle"></span>idle</p>'
        "<noscript><p>The chart needs JavaScript; the table below has the same lanes.</p>"
        "</noscript>"
        f"{''.join(f'<p class=note>{esc(n)}</p>' for n in notes)}"
        f"{lane_table(timeline)}"
        f'<script type="application/json" id="timeline-data">{json_for_script(data)}</script>'
        "</div>"
    )


def lane_table(timeline: Timeline) -> Markup:
    rows = []
    for lane in timeline.lanes:
        length = lane.end_s - lane.start_s
        share = lane.busy_s / length if length > 0 else 0.0
        rows.append(
            (
                lane.name,
                f"{lane.tests:,}",
                fmt.seconds(lane.start_s),
                fmt.seconds(lane.end_s),
                fmt.seconds(lane.busy_s),
                fmt.seconds(lane.idle_s),
                share_bar(share, fmt.percent(min(share, 1.0))),
            )
        )
    return table(
        ("lane", "tests", "from", "to", "busy", "idle", "busy share"),
        rows,
        numeric=(1, 2, 3, 4, 5),
    )
