"""What to change to get faster: ranked suggestions from the history, each with its evidence,
the seconds it saves (in one process and at the recorded worker count), the command that checks
it and what it assumed.

`advise` reads the store once and asks each kind of suggestion (`fixtures`, `waits`, `imports`,
`setups`, `regressions`, `parallel`); `trial` judges a ``--feedback-try-scope`` run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from pytest_feedback.history.evidence import EvidenceReads, FixtureGroup
from pytest_feedback.history.store import Store
from pytest_feedback.history.summaries import median
from pytest_feedback.planning.advice.fixtures import scope_suggestions
from pytest_feedback.planning.advice.imports import import_suggestions
from pytest_feedback.planning.advice.model import FIXTURE_SCOPE, Advice, Suggestion, ranked
from pytest_feedback.planning.advice.parallel import parallel_suggestion
from pytest_feedback.planning.advice.regressions import regression_suggestions
from pytest_feedback.planning.advice.setups import setup_suggestions
from pytest_feedback.planning.advice.waits import MIN_WAIT_S, wait_suggestions

if TYPE_CHECKING:
    from pytest_feedback.history.estimates import Estimates

__all__ = ["Advice", "Suggestion", "advise"]

#: Above this many current tests the planners' parallelism suggestion is left out (it plans the
#: whole suite for every count up to 16).
MAX_PLANNED_TESTS = 20_000
#: Tests shorter than this are not read for regressions (their slow-downs save little).
MIN_REGRESSION_ESTIMATE_S = 0.05


def advise(
    store: Store,
    *,
    target_s: Optional[float] = 300.0,
    parallel: bool = True,
    estimates: Optional[Estimates] = None,
) -> Advice:
    """Every suggestion the history supports, ranked (``estimates``: the store's, when the
    caller has loaded them already)."""
    evidence = EvidenceReads(store.db)
    runs = evidence.recent_runs()
    if not runs:
        return Advice((), 0, 0, ("the history has no runs with details yet",), target_s)
    workers = int(median(r.workers for r in runs))
    run_ids = [r.run_id for r in runs]
    notes: list[str] = []
    suggestions: list[Suggestion] = []

    groups = evidence.narrow_fixture_groups(run_ids[0])
    scoped = scope_suggestions(groups, workers)
    suggestions += scoped

    if evidence.cpu_recorded(run_ids):
        times = evidence.test_times(run_ids, MIN_WAIT_S)
        scoped_names = {s.subject for s in scoped}
        fixture_waits: dict[str, float] = {}
        for g in groups:
            if g.name in scoped_names and g.setup_s > g.setup_cpu_s:
                wait = g.setup_s - g.setup_cpu_s
                fixture_waits[g.nodeid] = fixture_waits.get(g.nodeid, 0.0) + wait
        shares = evidence.cpu_shares(run_ids)
        suggestions += wait_suggestions(times, len(run_ids), workers, fixture_waits, shares)
    else:
        notes.append("the recent runs recorded no CPU times: no waiting-test suggestions")

    imports = evidence.imports(run_ids)
    if imports:
        collect = evidence.worker_collect(run_ids)
        suggestions += import_suggestions(imports, collect, _reader(runs[0].rootdir), notes)
    else:
        notes.append("no imports recorded while collecting: no import suggestions")

    if estimates is None:
        estimates = store.reads.load_estimates()
    current = store.reads.current_tests()
    fixtures = estimates.fixtures
    uses = {n: [fixtures[i] for i in idx] for n, idx in estimates.uses.items()}
    explained = {s.subject: _per_execution(s, groups) for s in scoped if s.kind == FIXTURE_SCOPE}
    suggestions += setup_suggestions(current, uses, explained, workers)

    samples = evidence.test_samples(MIN_REGRESSION_ESTIMATE_S)
    fixture_samples = evidence.fixture_samples()
    run_refs = {int(s[0]) for _, rows in samples for s in rows if s}
    run_refs |= {int(s[0]) for *_, rows in fixture_samples for s in rows if s}
    suggestions += regression_suggestions(
        samples, fixture_samples, evidence.commits(sorted(run_refs)), workers
    )

    if parallel and len(current) <= MAX_PLANNED_TESTS:
        found = parallel_suggestion(estimates, [t.nodeid for t in current], target_s, workers)
        if found is not None:
            suggestions.append(found)
    return Advice(ranked(suggestions), workers, len(runs), tuple(notes), target_s)


def _reader(rootdir: str) -> Callable[[str], Optional[str]]:
    """A file's text by its path relative to the recorded rootdir (None when unreadable)."""

    def read(path: str) -> Optional[str]:
        try:
            return (Path(rootdir) / path).read_text(encoding="utf-8", errors="replace")
        except (OSError, ValueError):
            return None

    return read


def _per_execution(suggestion: Suggestion, groups: Sequence[FixtureGroup]) -> float:
    """The per-execution seconds of the fixture a scope suggestion is about."""
    mine = [g for g in groups if g.name == suggestion.subject]
    executions = sum(g.executions for g in mine)
    return sum(g.setup_s + g.teardown_s for g in mine) / executions if executions else 0.0
