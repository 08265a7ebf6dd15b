"""`pytest --feedback-report`: the text report at the end of the terminal summary;
`pytest --feedback-html=PATH`: the HTML report written to PATH.

Reads the history the run has just been written to (the write happens in ``pytest_sessionfinish``;
nothing here writes). Trouble becomes one warning line: a report never breaks a test run.
"""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path
from typing import Optional

import pytest

from pytest_feedback.errors import FeedbackError
from pytest_feedback.report.model import Report, build_report
from pytest_feedback.settings import Settings

#: Characters the text report draws with; a terminal that cannot encode them gets ASCII.
_DRAWING = "─▁█·\u2013"


def write_reports(
    terminalreporter: pytest.TerminalReporter, settings: Settings, run_uuid: Optional[str]
) -> None:
    """The reports the options asked for: ``--feedback-report`` on the terminal,
    ``--feedback-html`` into its file."""
    if settings.report:
        write_terminal_report(terminalreporter, settings.db_path, run_uuid)
    if settings.html_path is not None:
        write_html_report(terminalreporter, settings.db_path, run_uuid, settings.html_path)


def write_html_report(
    terminalreporter: pytest.TerminalReporter, db_path: Path, run_uuid: Optional[str], path: Path
) -> None:
    """Write the HTML report of ``db_path`` to ``path`` and say where it is."""
    from pytest_feedback.history.store import Store
    from pytest_feedback.report import html
    from pytest_feedback.report.allowance import Allowance
    from pytest_feedback.report.details import add_details

    rootdir = terminalreporter.config.rootpath
    try:
        with Store.open_existing(db_path) as store:
            allowance = Allowance(store)
            report = build_report(store, run_uuid=run_uuid, allowance=allowance, rootdir=rootdir)
            report = add_details(store, report, page=True, allowance=allowance)
        page = html.render(report)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
    except FeedbackError as exc:
        terminalreporter.write_line(f"feedback: warning: no HTML report: {exc}")
        return
    except Exception as exc:  # never break the user's run because of our trouble
        terminalreporter.write_line(
            f"feedback: warning: no HTML report ({type(exc).__name__}: {exc})"
        )
        return
    terminalreporter.write_line(f"feedback: HTML report written to {path}")


def write_terminal_report(
    terminalreporter: pytest.TerminalReporter, db_path: Path, run_uuid: Optional[str]
) -> None:
    """Print the report of ``db_path`` (``run_uuid`` as the last run) on the terminal."""
    from pytest_feedback.history.store import Store
    from pytest_feedback.report.details import add_details

    try:
        with Store.open_existing(db_path) as store:
            rootdir = terminalreporter.config.rootpath
            report = add_details(store, build_report(store, run_uuid=run_uuid, rootdir=rootdir))
        text = render_for_terminal(
            report,
            width=terminal_width(),
            color=bool(terminalreporter.hasmarkup),
            ascii_only=not _can_encode(getattr(sys.stdout, "encoding", None), _DRAWING),
        )
    except FeedbackError as exc:
        terminalreporter.write_line(f"feedback: warning: no report: {exc}")
        return
    except Exception as exc:  # never break the user's run because of our trouble
        terminalreporter.write_line(f"feedback: warning: no report ({type(exc).__name__}: {exc})")
        return
    terminalreporter.write_sep("=", "pytest-feedback report")
    for line in text.splitlines():
        terminalreporter.write_line(line.rstrip())


def render_for_terminal(report: Report, *, width: int, color: bool, ascii_only: bool) -> str:
    from pytest_feedback.report.text import make_console, render

    buffer = io.StringIO()
    console = make_console(buffer, width=width, color=color)
    render(report, console, ascii_only=ascii_only)
    return buffer.getvalue()


def terminal_width() -> int:
    """The terminal's columns as pytest sees them (``$COLUMNS``, else the tty, else 80)."""
    width = shutil.get_terminal_size((80, 24)).columns
    return width if width >= 40 else 80


def _can_encode(encoding: Optional[str], text: str) -> bool:
    try:
        text.encode(encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True
