"""The advice (`planning.advice.Advice`) as text for people and markdown for CI summaries, and
the report's short block of the first three."""

from __future__ import annotations

from typing import Optional, TextIO

from pytest_feedback.durations import format_duration
from pytest_feedback.history.store import Store
from pytest_feedback.planning.advice import Advice, Suggestion, advise
from pytest_feedback.report.allowance import ADVICE_S, Allowance

#: Suggestions in the report's block.
REPORT_TOP = 3


def _savings(s: Suggestion, advice: Advice) -> str:
    serial = format_duration(s.saved_s)
    if advice.workers > 1:
        return (
            f"saves ~{format_duration(s.saved_at_workers_s)} per run at {advice.workers} "
            f"workers (~{serial} in one process)"
        )
    return f"saves ~{serial} per run"


def _header(advice: Advice) -> str:
    processes = f"{advice.workers} workers" if advice.workers > 1 else "one process"
    return (
        f"{len(advice.suggestions)} suggestion(s) from the last {advice.runs} run(s) "
        f"({processes}), the largest saving first; savings overlap, do not add them up"
    )


def write_text(advice: Advice, out: TextIO) -> None:
    out.write(_header(advice) + "\n")
    for i, s in enumerate(advice.suggestions, 1):
        out.write(f"\n{i}. {s.title}\n   {_savings(s, advice)}  [{s.kind}]\n")
        for line in s.evidence:
            out.write(f"   - {line}\n")
        out.write(f"   check: {s.command}\n")
        for line in s.assumes:
            out.write(f"   assumes: {line}\n")
    for note in advice.notes:
        out.write(f"\nnote: {note}\n")


def write_markdown(advice: Advice, out: TextIO) -> None:
    out.write("## What to change to get faster\n\n" + _header(advice) + ".\n")
    for i, s in enumerate(advice.suggestions, 1):
        out.write(f"\n### {i}. {s.title}\n\n**{_savings(s, advice)}** ({s.kind})\n\n")
        for line in s.evidence:
            out.write(f"- {line}\n")
        out.write(f"\nCheck: `{s.command}`\n\nAssumes:\n\n")
        for line in s.assumes:
            out.write(f"- {line}\n")
    for note in advice.notes:
        out.write(f"\n> {note}\n")


def report_lines(advice: Advice) -> list[str]:
    """The report's block: one line per suggestion, with its saving and its check."""
    return [
        f"{i}. {s.title}: {_savings(s, advice)} (check: {s.command})"
        for i, s in enumerate(advice.suggestions[:REPORT_TOP], 1)
    ]


def report_block(store: Store, allowance: Optional[Allowance] = None) -> tuple[str, ...]:
    """The report's lines of the first `REPORT_TOP` suggestions (the parallelism one left to
    the planners' hint); none without tests, when the report's ``allowance`` has no room for
    reading the suite's recent runs (it then names the block), or when the advice fails: the
    block is optional, the report is not."""
    try:
        allowance = allowance or Allowance(store)
        what = "advice (`pytest-feedback advise`)"
        if allowance.tests == 0 or not allowance.take(what, ADVICE_S):
            return ()
        return tuple(report_lines(advise(store, parallel=False, estimates=allowance.estimates())))
    except Exception:
        return ()
