"""Small formatting helpers shared by the text and markdown reports."""

from __future__ import annotations

import datetime
import unicodedata
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Optional

from pytest_feedback.durations import format_budget, format_duration

if TYPE_CHECKING:
    from pytest_feedback.report.model import RunSummary

#: Shown for a figure that is unknown (an en dash).
UNKNOWN = "\u2013"
SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
SPARK_ASCII = "_.-=+*#@"
#: Samples a trend shows at most (the newest).
TREND_POINTS = 10


def seconds(value: Optional[float]) -> str:
    """``0.25s``, ``12s``, ``4m41s``; an en dash when unknown."""
    return UNKNOWN if value is None else format_duration(value)


def split(phases: Optional[tuple[float, float, float]]) -> str:
    """Set-up / call / tear-down seconds, compact: ``0.01/1.20/0.00``; a dash when unknown."""
    return UNKNOWN if phases is None else "/".join(_compact(v) for v in phases)


def _compact(value: float) -> str:
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


def percent(value: Optional[float]) -> str:
    return UNKNOWN if value is None else f"{value:.0%}"


def times(value: float) -> str:
    """An executions-per-run figure: whole numbers without decimals."""
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def ratio(value: float) -> str:
    return "∞" if value == float("inf") else f"{value:.1f}x"


def sparkline(values: Sequence[float], *, ascii_only: bool = False) -> str:
    """The last `TREND_POINTS` values as bars from zero to their maximum.

    Zero-based, so that run-to-run noise looks like the small wobble it is and a slow-down
    stands out.
    """
    points = list(values)[-TREND_POINTS:]
    if not points:
        return ""
    chars = SPARK_ASCII if ascii_only else SPARK_BLOCKS
    high = max(points)
    if high <= 0:
        return chars[0] * len(points)
    top = len(chars) - 1
    return "".join(chars[round(max(v, 0.0) / high * top)] for v in points)


def visible(text: str) -> str:
    """``text`` with control and invisible format characters shown as escapes.

    Node ids come from users' code: a newline must not break a table row, and a right-to-left
    override or zero-width character must not disguise what a report says.
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:  # other separators (e.g. no-break space): plain space
            out.append(" ")
    return "".join(out)


def timestamp(unix: float) -> str:
    moment = datetime.datetime.fromtimestamp(unix, datetime.timezone.utc)
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def commit_label(commit: Optional[str], dirty: Optional[bool]) -> str:
    if not commit:
        return ""
    return commit[:10] + ("+" if dirty else "")


def run_figures(run: RunSummary) -> list[str]:
    """The last run's figures in two short lines (three for a budget run)."""
    failed = f", {run.failed:,} failed" if run.failed else ""
    if run.workers:
        use = f"{run.workers} xdist workers · parallel efficiency {percent(run.efficiency)}"
    else:
        use = f"no xdist · {percent(run.efficiency)} of the wall time in tests"
    lines = [
        f"{run.tests:,} test{'s' * (run.tests != 1)}{failed} · wall {seconds(run.wall_s)} · "
        f"test time "
        f"{seconds(run.test_time_s)}",
        use,
    ]
    if run.budget_s is not None:
        # From the process's start, as the budget counts; "+ exit" when its exit was not timed.
        line = f"budget {format_budget(run.budget_s)} · predicted {seconds(run.predicted_s)}"
        if run.took_s is not None:
            line += f" · took {seconds(run.took_s)}{'' if run.to_exit else ' + exit'}"
        lines.append(line)
    return lines


def run_heading(run: RunSummary, quote: Callable[[str], str] = str) -> str:
    """``run 6 · 2023-11-14 22:13 UTC · commit abc · shard 2/4``; ``quote`` wraps the values
    that come from the history (markdown puts them in code spans)."""
    parts = [f"run {run.run_id}", timestamp(run.started_at)]
    commit = commit_label(run.git_commit, run.git_dirty)
    if commit:
        parts.append(f"commit {quote(commit)}")
    if run.shard:
        parts.append(f"shard {quote(run.shard)}")
    return " · ".join(parts)


def gone_note(gone: int) -> str:
    """What follows the history's test count when recorded tests are gone ("" when none)."""
    if not gone:
        return ""
    return f" ({gone:,} recorded test{'s' * (gone != 1)} no longer in the working tree left out)"


def left_out_line(left_out: Sequence[str], tests: int) -> str:
    """The sentence naming the optional blocks the report left out for their cost ("" when
    none was)."""
    if not left_out:
        return ""
    return f"Left out (more than a report may cost on {tests:,} tests): " + "; ".join(left_out)
