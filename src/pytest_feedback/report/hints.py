"""The planners' one-line hint under the report (shards, a fast subset).

Each entry of `PROVIDERS` is a function of the history's estimates and the last run's xdist
workers that returns one short sentence, or None when it has nothing to say; the planners write
them (`planning.shards.report_hint`, `planning.budget.report_hint`), e.g.::

    def report_hint(estimates: Estimates, workers: Optional[int]) -> Optional[str]:
        plan = plan_shards(estimates, estimates.tests, 4)
        return f"4 shards would take {format_duration(plan.makespan_s)} each"

The report shows the sentences joined on one line, and no hint line at all when no planner has
anything to say. Providers compute from the history; they never invent figures: rather say
nothing. A provider in trouble costs its sentence, never the report. Planning costs time in
proportion to the suite: the providers are asked only when the report's allowance
(`allowance.Allowance`) has room for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Callable, Optional

from pytest_feedback.planning import budget, shards
from pytest_feedback.report.allowance import HINT_S, Allowance

if TYPE_CHECKING:
    from pytest_feedback.history.estimates import Estimates
    from pytest_feedback.history.store import Store

HintProvider = Callable[["Estimates", Optional[int]], Optional[str]]


def _budget_hint(estimates: Estimates, workers: Optional[int]) -> Optional[str]:
    return budget.report_hint(estimates)  # a serial budget, whatever the last run used


#: The providers, in the order their sentences appear.
PROVIDERS: tuple[HintProvider, ...] = (shards.report_hint, _budget_hint)


def planner_hint(
    store: Store,
    workers: Optional[int],
    providers: Sequence[HintProvider] = PROVIDERS,
    allowance: Optional[Allowance] = None,
) -> str:
    """The providers' sentences on one line ("" when none has anything to say, or when the
    report's ``allowance`` has no room for planning the suite: it then names the hint).

    ``workers``: xdist workers of the last recorded run (0: without xdist; None when nothing is
    recorded).
    """
    if not providers:
        return ""
    try:
        allowance = allowance or Allowance(store)
        n = workers if workers and workers > 1 else 4
        what = f"the planners' hint (`pytest-feedback shards {n}`)"
        if allowance.tests == 0 or not allowance.take(what, HINT_S):
            return ""
        estimates = allowance.estimates()
    except Exception:
        return ""  # the hint is optional, the report is not
    said = [_ask(provider, estimates, workers) for provider in providers]
    return " · ".join(" ".join(s.split()) for s in said if s and s.strip())


def _ask(provider: HintProvider, estimates: Estimates, workers: Optional[int]) -> Optional[str]:
    """One provider's sentence; a provider in trouble says nothing (the hint is optional, the
    report is not)."""
    try:
        return provider(estimates, workers)
    except Exception:
        return None
