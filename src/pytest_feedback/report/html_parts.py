"""Pieces of the HTML page: escaping, tables, and charts drawn as inline SVG (no script needed).

Everything from the history goes through `esc` (or `json_for_script` for data a script reads):
node ids, fixture and file names are users' text and must stay text.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any, Optional

from pytest_feedback.report import formatting as fmt

#: A table cell: plain text (escaped here), or `Markup` (HTML we built).
Cell = Any


class Markup(str):
    """HTML this package built (not escaped again by `table`)."""


def esc(value: object) -> str:
    """Text as HTML: control and invisible characters shown as escapes (`formatting.visible`),
    then ``& < > " '`` as entities."""
    return html.escape(fmt.visible(str(value)), quote=True)


def json_for_script(data: object) -> str:
    """JSON that can sit inside ``<script type="application/json">``: no ``</script>``, no
    ``<!--``, no line separators a parser could trip on."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Cell]], *, numeric: Sequence[int] = ()
) -> Markup:
    """A table; columns whose index is in ``numeric`` are right-aligned figures."""
    right = set(numeric)
    head = "".join(
        f'<th{" class=num" if i in right else ""} scope="col">{esc(h)}</th>'
        for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            content = cell if isinstance(cell, Markup) else esc(cell)
            cls = ' class="num"' if i in right else ""
            cells.append(f"<td{cls}>{content}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def prose(text: str) -> Markup:
    """Our sentences: escaped, with `backticked` parts as code."""
    parts = esc(text).split("`")
    return Markup(
        "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))
    )


def code(text: str) -> Markup:
    return Markup(f"<code>{esc(text)}</code>")


def share_bar(share: float, label: str = "") -> Markup:
    """A horizontal bar of ``share`` (0..1) with ``label`` beside it (CSS only)."""
    width = max(0.0, min(1.0, share)) * 100
    return Markup(f'<span class="bar"><span style="width:{width:.1f}%"></span></span> {esc(label)}')


def sparkline(values: Sequence[float], *, width: int = 90, height: int = 18) -> Markup:
    """The last `formatting.TREND_POINTS` values as an SVG line from zero to their maximum,
    each point with its value as a tooltip."""
    points = list(values)[-fmt.TREND_POINTS :]
    if not points:
        return Markup("")
    high = max(points) or 1.0
    step = (width - 4) / max(1, len(points) - 1)
    coords = [
        (2 + i * step, height - 2 - (height - 4) * max(v, 0.0) / high) for i, v in enumerate(points)
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.6"><title>{esc(fmt.seconds(v))}</title></circle>'
        for (x, y), v in zip(coords, points)
    )
    label = esc("trend: " + ", ".join(fmt.seconds(v) for v in points))
    return Markup(
        f'<svg class="spark" width="{width}" height="{height}" role="img" aria-label="{label}">'
        f'<polyline points="{line}"/>{dots}</svg>'
    )


def line_chart(
    title: str,
    points: Sequence[tuple[str, float]],
    *,
    unit: str = "s",
    second: Optional[Sequence[float]] = None,
    width: int = 360,
    height: int = 120,
) -> Markup:
    """A small line chart of (label, value) points from zero to the maximum, labels as
    tooltips; ``second`` is a dashed line on the same scale (e.g. a lower bound)."""
    values = [v for _, v in points]
    high = max([*values, *(second or [])], default=0.0) or 1.0
    left, top, bottom = 44, 8, 18
    inner_w, inner_h = width - left - 6, height - top - bottom
    step = inner_w / max(1, len(points) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + i * step, top + inner_h - inner_h * max(v, 0.0) / high

    def path(vals: Sequence[float]) -> str:
        return " ".join("{:.1f},{:.1f}".format(*xy(i, v)) for i, v in enumerate(vals))

    dots = "".join(
        '<circle cx="{:.1f}" cy="{:.1f}" r="2.2">'.format(*xy(i, v))
        + f"<title>{esc(f'{label}: {_figure(v, unit)}')}</title></circle>"
        for i, (label, v) in enumerate(points)
    )
    extra = ""
    if second:
        extra = f'<polyline class="second" points="{path(second)}"/>'
    return Markup(
        f'<figure class="chart"><figcaption>{esc(title)}</figcaption>'
        f'<svg width="{width}" height="{height}" role="img" aria-label="{esc(title)}">'
        f'<line class="axis" x1="{left}" y1="{top + inner_h}" x2="{width - 6}" '
        f'y2="{top + inner_h}"/>'
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{esc(_figure(high, unit))}</text>'
        f'<text x="{left - 4}" y="{top + inner_h}" text-anchor="end">0</text>'
        f'<text x="{left}" y="{height - 4}">{esc(_short(points[0][0]) if points else "")}</text>'
        f'<text x="{width - 6}" y="{height - 4}" text-anchor="end">'
        f"{esc(_short(points[-1][0]) if points else '')}</text>"
        f'{extra}<polyline points="{path(values)}"/>{dots}</svg></figure>'
    )


def _short(label: str) -> str:
    """A point's label under the axis: its first part ("run 12 · 2026-..." -> "run 12")."""
    return label.split(" · ", 1)[0]


def _figure(value: float, unit: str) -> str:
    return fmt.seconds(value) if unit == "s" else f"{value:,.0f}"
