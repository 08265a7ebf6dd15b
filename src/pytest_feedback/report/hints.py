"""The planners' one-line hint under the report (shards, a fast subset): the hook point.

A planner adds one entry to `PROVIDERS`, ``"pytest_feedback.MODULE:FUNCTION"``, naming a function
of a `HintContext` that returns one short sentence, or None when it has nothing to say, e.g.::

    # shards.py
    def report_hint(context: HintContext) -> str | None:
        plan = plan_shards(context.estimates, 4)
        return f"4 shards would take {format_duration(plan.makespan_s)} each"

The report shows the sentences joined on one line, and no hint line at all when no planner has
anything to say. Providers compute from the history; they never invent figures: rather say
nothing. Providers are imported only when a report is built. Planning costs time in proportion to
the suite, so above `MAX_TESTS` known tests the providers stay silent and the report stays fast.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    from pytest_feedback.history.estimates import Estimates
    from pytest_feedback.history.store import Store

#: The providers, in the order their sentences appear.
PROVIDERS: tuple[str, ...] = (
    "pytest_feedback.planning.shards:report_hint",
    "pytest_feedback.planning.budget:report_hint",
)
#: Above this many known tests the hints are not computed (the report must stay under a second).
MAX_TESTS = 20_000


class HintContext:
    """What a hint may look at: the history, and the estimates read from it on first use."""

    def __init__(self, store: Store, workers: Optional[int]) -> None:
        self.store = store
        #: xdist workers of the last recorded run (0: without xdist); None when nothing is recorded.
        self.workers = workers

    @functools.cached_property
    def estimates(self) -> Estimates:
        return self.store.load_estimates()

    @functools.cached_property
    def plannable(self) -> bool:
        """Whether the planners should speak: some tests, and not so many that it is slow."""
        return 0 < self.store.test_count() <= MAX_TESTS


HintProvider = Callable[[HintContext], Optional[str]]


def load_providers(paths: tuple[str, ...] = PROVIDERS) -> list[HintProvider]:
    providers = []
    for path in paths:
        module, _, name = path.partition(":")
        try:
            providers.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue  # a missing planner costs its sentence, never the report
    return providers


def planner_hint(
    store: Store, workers: Optional[int], providers: Optional[list[HintProvider]] = None
) -> str:
    """The providers' sentences on one line ("" when none has anything to say)."""
    chosen = load_providers() if providers is None else providers
    if not chosen:
        return ""
    context = HintContext(store, workers)
    said = [_ask(provider, context) for provider in chosen]
    return " · ".join(" ".join(s.split()) for s in said if s and s.strip())


def _ask(provider: HintProvider, context: HintContext) -> Optional[str]:
    """One provider's sentence; a provider in trouble says nothing (the hint is optional, the
    report is not)."""
    try:
        return provider(context)
    except Exception:
        return None
