"""The report for people at a terminal, rendered with rich.

Readable at 80 columns (node ids fold onto further lines rather than push figures off-screen);
plain when the console has no colour (not a terminal, ``NO_COLOR``); ASCII-only when the
console's encoding cannot show the box and bar characters.
"""

from __future__ import annotations

import os
import re
from typing import Optional, TextIO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from pytest_feedback.report import formatting as fmt
from pytest_feedback.report.catches import TITLE as CATCHES_TITLE
from pytest_feedback.report.catches import short_lines
from pytest_feedback.report.flaky import TITLE as FLAKY_TITLE
from pytest_feedback.report.flaky import section_items
from pytest_feedback.report.lanes import lane_lines
from pytest_feedback.report.model import Report, TestRow

ASCII_HEAD = box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)
#: Columns of names (fold onto further lines) and of words (left-aligned); the rest are figures.
_NAMES = frozenset({"test", "fixture", "file"})
_LEFT = frozenset({"trend", "outcomes", "scope", "last"})
_ASCII_GLYPHS = str.maketrans({fmt.UNKNOWN: "-", "·": "|", "∞": "inf", "…": "..."})


#: What the figures beside a node id take in a table row of the report, at most (columns and gaps).
_FIGURES_WIDTH = 52


def make_console(out: TextIO, *, width: Optional[int] = None, color: bool = False) -> Console:
    """A console on ``out``: coloured only when ``color`` and ``NO_COLOR`` is not set.

    Without colour the output has no escape sequences at all (rich alone would keep bold).
    """
    color = color and not os.environ.get("NO_COLOR")
    return Console(
        file=out,
        width=width,
        color_system="auto" if color else None,
        force_terminal=color or None,
        highlight=False,
    )


def render(report: Report, console: Console, *, ascii_only: Optional[bool] = None) -> None:
    """Print ``report`` on ``console``."""
    if ascii_only is None:
        ascii_only = console.options.ascii_only
    console.print(TextReport(report, ascii_only=ascii_only, width=console.width).renderable())


class TextReport:
    """Builds the rich renderables of one report."""

    def __init__(
        self, report: Report, *, ascii_only: bool = False, width: Optional[int] = None
    ) -> None:
        self.report = report
        self.ascii_only = ascii_only
        self.width = width or 80
        #: Room for a node id beside the figures of a table row (None: as wide as it likes).
        self.id_width = None if width is None else max(16, width - _FIGURES_WIDTH)
        self.box = ASCII_HEAD if ascii_only else box.SIMPLE_HEAD

    def renderable(self) -> RenderableType:
        report = self.report
        parts: list[RenderableType] = [self.summary()]
        if report.timeline is not None:
            lines = lane_lines(report.timeline, self.width, ascii_only=self.ascii_only)
            parts += [Text(""), Text("Timeline (busy/idle per worker)", style="bold")]
            parts += [Text(line, no_wrap=True) for line in lines]
        if report.tests:
            parts += self.section(f"Slowest tests (of {report.test_count:,})", self.slowest())
        if report.fixtures:
            parts += self.section(
                f"Slowest fixtures (of {len(report.fixtures):,}, by cost per run)",
                self.fixtures(),
            )
        if report.files:
            parts += self.section(f"Slowest files (of {len(report.files):,})", self.files())
        if report.slowed_down:
            parts += self.section(
                f"Slowed down ({len(report.slowed_down):,}: recent runs against their history)",
                self.slowed(),
            )
        if report.flaky:
            parts += self.section(
                f"Flaky ({len(report.flaky):,}: passed and failed with no code change between)",
                self.flaky(),
            )
        if report.flakiness is not None and not report.flakiness.empty:
            parts += [Text(""), Text(FLAKY_TITLE, style="bold")]
            parts += [Text(item) for item in section_items(report.flakiness, top=report.top)]
        if report.catches is not None and report.catches.enough:
            parts += [Text(""), Text(CATCHES_TITLE, style="bold")]
            parts += [Text(self.g(line)) for line in short_lines(report.catches)]
        if report.hint:
            parts += [Text(""), Text.assemble(("Plan: ", "bold"), self.g(report.hint))]
        if report.advice:
            parts += [Text(""), Text("To get faster (pytest-feedback advise):", style="bold")]
            parts += [Text(self.g(line)) for line in report.advice]
        if report.left_out:
            parts += [Text(""), Text(fmt.left_out_line(report.left_out, report.test_count))]
        return Group(*parts)

    # -- pieces ------------------------------------------------------------------------------

    def g(self, text: str) -> str:
        """Our own strings, with ASCII stand-ins for typographic characters when needed."""
        return text.translate(_ASCII_GLYPHS) if self.ascii_only else text

    def spark(self, values: tuple[float, ...]) -> str:
        return fmt.sparkline(values, ascii_only=self.ascii_only)

    def section(self, title: str, table: Table) -> list[RenderableType]:
        return [Text(""), Text(self.g(title), style="bold"), table]

    def table(self, *headers: str) -> Table:
        table = Table(box=self.box, show_edge=False, pad_edge=False, header_style="bold")
        for header in headers:
            if header in _NAMES:
                table.add_column(header, overflow="fold", ratio=1, min_width=16)
            elif header in _LEFT:
                table.add_column(self.g(header), no_wrap=True)
            else:
                table.add_column(self.g(header), justify="right", no_wrap=True)
        return table

    def summary(self) -> RenderableType:
        report = self.report
        run = report.last_run
        if run is None:
            return Text("No runs recorded yet; run `pytest --feedback`.")
        return Group(
            Text.assemble(("Last run: ", "bold"), self.g(fmt.run_heading(run))),
            *(Text("  " + self.g(line)) for line in fmt.run_figures(run)),
            Text.assemble(
                ("History: ", "bold"),
                self.g(
                    f"{report.runs:,} run{'s' * (report.runs != 1)} · {report.test_count:,} "
                    f"test{'s' * (report.test_count != 1)}{fmt.gone_note(report.gone)} · "
                    f"expected test time {fmt.seconds(report.total_estimate_s)}"
                ),
            ),
        )

    def slowest(self) -> Table:
        table = self.table("test", "estimate", "this run", "set/call/tear", "trend")
        for row in self.report.slowest:
            table.add_row(
                self.nodeid(row),
                fmt.seconds(row.estimate.estimate_s),
                self.g(fmt.seconds(row.last_s)),
                self.g(fmt.split(row.last)),
                self.spark(row.trend),
            )
        return table

    def fixtures(self) -> Table:
        table = self.table("fixture", "scope", "per exec", "execs/run", "per run", "used by")
        names = [f.name for f in self.report.fixtures]
        for fixture in self.report.fixtures[: self.report.top]:
            label = self.plain(fixture.name)
            if names.count(fixture.name) > 1:
                label.append(f" {fmt.visible(fixture.location)}", style="dim")
            table.add_row(
                label,
                self.plain(fixture.scope),
                fmt.seconds(fixture.cost_s),
                fmt.times(fixture.executions_per_run),
                fmt.seconds(fixture.cost_per_run_s),
                f"{fixture.used_by:,}",
            )
        return table

    def files(self) -> Table:
        table = self.table("file", "tests", "estimate", "share")
        for row in self.report.files[: self.report.top]:
            table.add_row(
                self.plain(row.file),
                f"{row.tests:,}",
                fmt.seconds(row.estimate_s),
                fmt.percent(row.share),
            )
        return table

    def slowed(self) -> Table:
        table = self.table("test", "before", "recent", "slower", "trend")
        for row in self.report.slowed_down[: self.report.top]:
            table.add_row(
                self.nodeid(row),
                self.g(fmt.seconds(row.before_s)),
                self.g(fmt.seconds(row.recent_s)),
                self.g(fmt.ratio(row.estimate.slowdown)),
                self.spark(row.trend),
            )
        return table

    def flaky(self) -> Table:
        table = self.table("test", "fail rate", "runs", "last", "outcomes")
        for row in self.report.flaky[: self.report.top]:
            est = row.estimate
            table.add_row(
                self.nodeid(row),
                fmt.percent(est.fail_rate),
                f"{est.runs:,}",
                self.plain(est.last_outcome or ""),
                row.outcomes[-fmt.TREND_POINTS :],
            )
        return table

    def nodeid(self, row: TestRow) -> Text:
        """The node id; too long for its column, it breaks after a ``::`` so that names stay
        whole (rich would otherwise cut them at any character)."""
        nodeid = row.nodeid
        if self.id_width is None or len(nodeid) <= self.id_width or "::" not in nodeid:
            return self.plain(nodeid)
        lines: list[str] = []
        for part in re.split(r"(?<=::)", nodeid):
            if lines and len(lines[-1]) + len(part) <= self.id_width:
                lines[-1] += part
            else:
                lines.append(part if not lines else "  " + part)
        text = Text()
        for number, line in enumerate(lines):
            if number:
                text.append("\n")
            text.append_text(self.plain(line))
        return text

    @staticmethod
    def plain(value: str) -> Text:
        """Text from the history as a `Text`, never a str: not rich markup ("[b]" stays literal)."""
        return Text(fmt.visible(value))
