"""Regressions: a test or fixture that became slower and stayed so, with the first run (and
commit) where it did."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from pytest_feedback.durations import format_duration
from pytest_feedback.history.summaries import median
from pytest_feedback.planning.advice.model import REGRESSION, Suggestion

#: Slower by at least this factor...
MIN_RATIO = 1.5
#: ... and this many seconds per run.
MIN_SAVED_S = 0.1
#: Samples needed on each side of the change.
MIN_BEFORE = 2
MIN_AFTER = 2
#: Share of the samples on each side that must be on their side of the midpoint.
CONSISTENT = 0.8

Commits = Mapping[int, tuple[Optional[str], bool]]


def change_point(values: Sequence[float]) -> Optional[int]:
    """The index of the first slow value when ``values`` (oldest first) stepped up once and
    stayed up; None when they did not."""
    best: Optional[tuple[float, int]] = None
    for k in range(MIN_BEFORE, len(values) - MIN_AFTER + 1):
        before, after = median(values[:k]), median(values[k:])
        if after < before * MIN_RATIO or after - before < MIN_SAVED_S:
            continue
        mid = (before + after) / 2
        low = sum(v < mid for v in values[:k]) / k
        high = sum(v > mid for v in values[k:]) / (len(values) - k)
        if low < CONSISTENT or high < CONSISTENT or min(values[-MIN_AFTER:]) <= mid:
            continue
        score = low + high
        if best is None or score > best[0]:
            best = (score, k)
    return None if best is None else best[1]


def regression_suggestions(
    tests: Sequence[tuple[str, list[list[Any]]]],
    fixtures: Sequence[tuple[str, str, str, float, list[list[Any]]]],
    commits: Commits,
    workers: int,
) -> list[Suggestion]:
    """``tests``: (node id, recent samples [run_id, outcome, own_s, ..., commit]); ``fixtures``:
    (name, scope, location, executions per run, samples [run_id, executions, setup_s,
    teardown_s]); ``commits``: per run still in the history, its commit and dirtiness."""
    found: list[tuple[str, str, list[int], list[float], list[Optional[str]], float]] = []
    for nodeid, samples in tests:
        ran = [s for s in samples if len(s) >= 3 and s[1] != "skipped"]
        found.append(
            (
                "test",
                nodeid,
                [int(s[0]) for s in ran],
                [float(s[2]) for s in ran],
                [s[6] if len(s) > 6 else None for s in ran],
                1.0,
            )
        )
    for name, scope, location, per_run, samples in fixtures:
        ran = [s for s in samples if len(s) >= 4 and int(s[1]) > 0]
        found.append(
            (
                f"{scope}-scoped fixture",
                f"{name} ({location})",
                [int(s[0]) for s in ran],
                [(float(s[2]) + float(s[3])) / int(s[1]) for s in ran],
                [None] * len(ran),
                per_run,
            )
        )
    steps: list[tuple[str, str, list[int], list[float], list[Optional[str]], float, int]] = []
    for what, subject, run_ids, values, sample_commits, times in found:
        k = change_point(values)
        if k is not None:
            steps.append((what, subject, run_ids, values, sample_commits, times, k))
    at_run: dict[int, int] = {}
    for step in steps:
        at_run[step[2][step[6]]] = at_run.get(step[2][step[6]], 0) + 1
    processes = max(1, workers)
    out = []
    for what, subject, run_ids, values, sample_commits, times, k in steps:
        before, after = median(values[:k]), median(values[k:])
        saved = (after - before) * times
        first, previous = run_ids[k], run_ids[k - 1]
        new = _commit(first, sample_commits[k], commits)
        old = _commit(previous, sample_commits[k - 1], commits)
        where = f"run {first}" + (f" (commit {new[:10]})" if new else "")
        evidence = [
            f"{format_duration(before)} per {'run' if what == 'test' else 'execution'} in "
            f"{k} run(s) up to run {previous}, {format_duration(after)} in the {len(values) - k} "
            f"since {where}",
        ]
        if what != "test":
            evidence.append(f"{times:g} executions per run")
        others = at_run[first] - 1
        if others:
            evidence.append(
                f"{others} other test(s) or fixture(s) slowed down at the same run: the machine "
                "may have changed, not the code"
            )
        if new and old and new != old:
            command = f"git diff {old[:10]} {new[:10]}"
        elif what == "test":
            command = f"pytest --feedback {shlex.quote(subject)}"
        else:
            command = "pytest --feedback --setup-show"
        out.append(
            Suggestion(
                kind=REGRESSION,
                subject=subject,
                title=f"Undo the slow-down of {what} {subject}, first seen at {where}",
                evidence=tuple(evidence),
                saved_s=saved,
                saved_at_workers_s=saved / processes,
                command=command,
                assumes=(
                    "the change between those runs (the code, the tests or their data) made it "
                    "slower, not the machine",
                    "it can be made as fast as before without losing what the change added",
                ),
            )
        )
    return out


def _commit(run_id: int, sampled: Optional[str], commits: Commits) -> Optional[str]:
    """The commit of a run: the sample's (clean trees only), else the run's if still known."""
    if sampled:
        return str(sampled)
    known = commits.get(run_id)
    if known is None or not known[0]:
        return None
    commit, dirty = known
    return f"{commit}+dirty" if dirty else commit
