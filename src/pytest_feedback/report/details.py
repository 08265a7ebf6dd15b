"""The report's pictures: `add_details` reads the last run's timeline, the trends over runs and
the plans into a `Report` (the text report asks for the timeline only; the HTML page for all)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Optional

from pytest_feedback.report.allowance import Allowance
from pytest_feedback.report.model import Report
from pytest_feedback.report.timeline import build_timeline
from pytest_feedback.report.trends import build_plans, build_trends

if TYPE_CHECKING:
    from pytest_feedback.history.store import Store


def add_details(
    store: Store, report: Report, *, page: bool = False, allowance: Optional[Allowance] = None
) -> Report:
    """``report`` with its last run's timeline; with ``page``, also the trends and the plans
    (within ``allowance``, what is left of `build_report`'s: the plans may be left out)."""
    run = report.last_run
    timeline = None
    if run is not None:
        # The terminal timeline draws tests only: the fixtures' rows are read for the page.
        timeline = build_timeline(store, run.run_id, run.wall_s, run.tests, fixtures=page)
    if not page:
        return dataclasses.replace(report, timeline=timeline)
    workers = None if run is None else run.processes
    allowance = allowance or Allowance(store)
    plans = build_plans(store, workers, allowance)
    return dataclasses.replace(
        report,
        timeline=timeline,
        trends=tuple(build_trends(store)),
        plans=plans,
        left_out=_unique((*report.left_out, *allowance.left_out)),
    )


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
