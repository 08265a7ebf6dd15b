"""The report: where a suite's time goes, what slowed down, what is flaky.

`model.build_report` reads the history into a `Report` (`details.add_details` adds the last
run's timeline, the trends and the plans); `text` (rich), `markdown`, `json`, `html` (one
self-contained page) and `trace` (Chrome trace events of the timeline) render it. `hints` is
where the planners add their one-line hint.
"""

from __future__ import annotations

from typing import Optional, TextIO

from pytest_feedback.errors import FeedbackError
from pytest_feedback.report.model import DEFAULT_TOP, Report, build_report

FORMATS = ("text", "markdown", "json", "html", "trace")

__all__ = ["DEFAULT_TOP", "FORMATS", "Report", "build_report", "write_report"]


def write_report(
    report: Report, form: str, out: TextIO, *, top: Optional[int] = None, color: bool = False
) -> None:
    """Write ``report`` in format ``form`` to ``out``.

    ``top`` limits the json lists (None: all of them; text and markdown use ``report.top``).
    ``color`` lets the text report use colour when ``out`` is a terminal that wants it.
    """
    if form == "json":
        from pytest_feedback.report import json

        out.write(json.render(report, top=top))
    elif form == "markdown":
        from pytest_feedback.report import markdown

        out.write(markdown.render(report))
    elif form == "text":
        from pytest_feedback.report import text

        text.render(report, text.make_console(out, color=color and out.isatty()))
    elif form == "html":
        from pytest_feedback.report import html

        out.write(html.render(report))
    elif form == "trace":
        from pytest_feedback.report import trace

        if report.timeline is None:
            raise FeedbackError(
                "no trace: the last run has no recorded start times (an older pytest-feedback "
                "recorded it); run `pytest --feedback` again"
            )
        out.write(trace.render(report.timeline))
    else:
        raise ValueError(f"unknown report format {form!r}; choose one of {', '.join(FORMATS)}")
