"""The terminal timeline: one line per lane of a `Timeline`, busy and idle as characters.

Each column of a lane's bar covers an equal slice of the run; its character says how much of
that slice the lane spent in tests: ``█`` (most of it), ``▒`` (part), ``·`` (idle), blank (the
lane's process had not started or had ended). ASCII consoles get ``#``, ``+``, ``.``. Fits
the width it is given (80 columns by default).
"""

from __future__ import annotations

from pytest_feedback.durations import format_duration
from pytest_feedback.report.timeline import Timeline

#: (busy, part, idle) characters.
GLYPHS = ("█", "▒", "·")
ASCII_GLYPHS = ("#", "+", ".")
#: A column at least this busy shows as busy, above `PART` as part-busy.
BUSY = 0.6
PART = 0.05
_LABEL = 8
_TAIL = 10  # " 100% busy"


def lane_lines(timeline: Timeline, width: int = 80, *, ascii_only: bool = False) -> list[str]:
    """The lines of the terminal timeline: a scale line, then one line per lane."""
    busy_ch, part_ch, idle_ch = ASCII_GLYPHS if ascii_only else GLYPHS
    columns = max(10, width - _LABEL - 1 - _TAIL)
    span = timeline.span_s if timeline.span_s > 0 else 1.0
    step = span / columns
    fill = [[0.0] * columns for _ in timeline.lanes]
    for bar in timeline.tests:
        _spread(fill[bar.lane], bar.start_s, bar.end_s, step)
    lines = [f"{'':<{_LABEL}} 0{format_duration(span).rjust(columns - 1)}"]
    for i, lane in enumerate(timeline.lanes):
        chars = []
        for col, busy in enumerate(fill[i]):
            lo, hi = col * step, (col + 1) * step
            if hi <= lane.start_s or lo >= lane.end_s:
                chars.append(" ")
            elif busy >= BUSY * step:
                chars.append(busy_ch)
            elif busy > PART * step:
                chars.append(part_ch)
            else:
                chars.append(idle_ch)
        share = lane.busy_s / (lane.end_s - lane.start_s) if lane.end_s > lane.start_s else 0.0
        label = lane.name if len(lane.name) <= _LABEL else lane.name[: _LABEL - 1] + "~"
        lines.append(f"{label:<{_LABEL}} {''.join(chars)}{min(share, 1.0):>5.0%} busy")
    return lines


def _spread(cells: list[float], start: float, end: float, step: float) -> None:
    """Add the seconds of [start, end) to the columns they fall in."""
    if end <= start:
        return
    first = max(0, int(start / step))
    last = min(len(cells) - 1, int(end / step))
    for col in range(first, last + 1):
        lo, hi = col * step, (col + 1) * step
        cells[col] += max(0.0, min(end, hi) - max(start, lo))
