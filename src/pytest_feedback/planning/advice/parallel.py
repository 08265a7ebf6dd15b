"""Parallelism: the worker (or CI shard) count that reaches the target, from the planners."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from pytest_feedback.durations import format_budget, format_duration
from pytest_feedback.history.estimates import Estimates
from pytest_feedback.planning.advice.model import PARALLEL, Suggestion
from pytest_feedback.planning.shards import worker_curve

#: The largest count suggested.
MAX_WORKERS = 16
#: A count is suggested when it saves this much per run.
MIN_SAVED_S = 1.0


def parallel_suggestion(
    estimates: Estimates, nodeids: Sequence[str], target_s: Optional[float], workers: int
) -> Optional[Suggestion]:
    if len(nodeids) < 2:
        return None
    advice = worker_curve(estimates, nodeids, target_s, MAX_WORKERS)
    curve = {p.workers: p.makespan_s for p in advice.curve}
    processes = max(1, workers)
    count = advice.recommended
    if count is None or count <= processes:
        # No count meets the target, or the recorded one does already: the count beyond which
        # another process saves less than 5%.
        count = advice.stops_paying
    if count <= processes or count not in curve:
        return None
    saved = curve[1] - curve[count]
    saved_now = curve.get(processes, curve[1]) - curve[count]
    if saved_now < MIN_SAVED_S:
        return None
    now = (
        f", {format_duration(curve.get(processes, curve[1]))} at {processes} (as recorded)"
        if processes > 1
        else ""
    )
    evidence = [
        f"predicted: {format_duration(curve[1])} in one process{now}, "
        f"{format_duration(curve[count])} at {count}",
    ]
    if target_s is not None and count == advice.recommended:
        evidence.append(f"{count} is the smallest count that meets {format_duration(target_s)}")
    else:
        met = advice.recommended is not None
        evidence.append(
            (
                f"{advice.recommended} process(es) meet {format_duration(target_s)} already; "
                if met and target_s is not None
                else ""
            )
            + f"beyond {count} another process saves less than 5% (the planners' curve)"
        )
    target = f" --target {format_budget(target_s)}" if target_s is not None else ""
    return Suggestion(
        kind=PARALLEL,
        subject=str(count),
        title=f"Run on {count} workers (pytest -n {count} --feedback-dist) or {count} CI shards "
        f"(--feedback-shard K/{count})",
        evidence=tuple(evidence),
        saved_s=saved,
        saved_at_workers_s=saved_now,
        command=f"pytest-feedback workers{target}",
        assumes=(
            f"{count} free cores (or CI jobs), and tests that can run at the same time (no "
            "shared files, ports or databases)",
            "each process's start-up and collection as recorded; the planner's cost model "
            '(docs/contract.md, "Cost model")',
        ),
    )
