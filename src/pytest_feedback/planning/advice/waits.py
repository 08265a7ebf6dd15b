"""Waiting tests: tests whose wall time far exceeds the CPU time of the thread that ran them
(sleeping, polling, waiting on the network or a subprocess), grouped by file."""

from __future__ import annotations

import dataclasses
import math
import shlex
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from pytest_feedback.durations import format_duration
from pytest_feedback.history.evidence import TestTime
from pytest_feedback.history.records import test_file
from pytest_feedback.history.summaries import median
from pytest_feedback.planning.advice.model import WAITING, Suggestion

#: A test waits when at least this many of its own seconds are not its thread's CPU time...
MIN_WAIT_S = 0.05
#: ... and they are at least this share of its own seconds.
MIN_SHARE = 0.5
#: A file is suggested when its tests wait this long per run together.
MIN_SAVED_S = 0.2

ASSUMES = (
    "the waiting can go: a fake clock instead of sleep, an event instead of polling, a stub "
    "instead of the network or a subprocess",
    "what the test's own thread did not compute counts as waiting: work done in a subprocess or "
    "another thread is counted too",
)


def wait_suggestions(
    times: Sequence[TestTime],
    runs_read: int,
    workers: int,
    explained: Mapping[str, float] = MappingProxyType({}),
    shares: Mapping[int, float] = MappingProxyType({}),
) -> list[Suggestion]:
    """``times``: the tests of the ``runs_read`` recent runs that waited at least `MIN_WAIT_S`
    (`EvidenceReads.test_times`); ``explained``: per test, the seconds of waiting inside the
    set-up of fixtures a fixture-scope suggestion is about (counted there, not here);
    ``shares``: per run, the share of a CPU computing tests got (`EvidenceReads.cpu_shares`): a
    test's CPU seconds stretch by it before the rest counts as waiting."""
    per_test: dict[str, list[TestTime]] = {}
    for t in times:
        less = explained.get(t.nodeid, 0.0)
        share = shares.get(t.run_id, 1.0)
        if less or share < 1.0:
            # cpu_s becomes the wall seconds its computing took on that run's machine.
            t = dataclasses.replace(t, own_s=max(0.0, t.own_s - less), cpu_s=t.cpu_s / share)
        per_test.setdefault(t.nodeid, []).append(t)
    needed = max(1, math.ceil(runs_read / 2))  # waits in most of the runs, not once
    per_file: dict[str, list[tuple[str, float, float]]] = {}
    for nodeid, seen in per_test.items():
        waiting = [t for t in seen if t.own_s - t.cpu_s >= max(MIN_WAIT_S, MIN_SHARE * t.own_s)]
        if len(waiting) < needed:
            continue
        wall = median(t.own_s for t in waiting)
        wait = median(t.own_s - t.cpu_s for t in waiting)
        per_file.setdefault(test_file(nodeid), []).append((nodeid, wall, wait))
    out = []
    processes = max(1, workers)
    for file, tests in per_file.items():
        total = sum(wait for _, _, wait in tests)
        if total < MIN_SAVED_S:
            continue
        tests.sort(key=lambda t: (-t[2], t[0]))
        wall = sum(w for _, w, _ in tests)
        evidence = [
            f"{len(tests)} test(s) wait {format_duration(total)} per run: "
            f"{format_duration(wall)} wall, {format_duration(wall - total)} computing",
        ]
        evidence += [
            f"{nodeid}: {format_duration(w)} wall, {format_duration(w - wait)} computing"
            for nodeid, w, wait in tests[:3]
        ]
        held = [s for s in shares.values() if s < 1.0]
        if held:
            evidence.append(
                f"other load gave computing tests {min(held):.0%}-{max(held):.0%} of a CPU in "
                "those runs: their CPU seconds are stretched by that before the rest counts as "
                "waiting"
            )
        out.append(
            Suggestion(
                kind=WAITING,
                subject=file,
                title=f"Stop waiting in {file}: its tests sleep or wait instead of computing",
                evidence=tuple(evidence),
                saved_s=total,
                saved_at_workers_s=total / processes,
                command=f"python -m cProfile -s tottime -m pytest -q -p no:cacheprovider "
                f"{shlex.quote(file)} | head -25",
                assumes=ASSUMES
                + (
                    (f"at {workers} workers the waits are spread evenly over them",)
                    if workers > 1
                    else ()
                ),
            )
        )
    return out
