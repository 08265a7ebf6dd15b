"""Histories with a known timeline, for the timeline, trace, HTML and browser tests (and the HTML
benchmark): runs of ``workers`` xdist workers, each running its tests back to back."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from pytest_feedback.history.records import (
    FixtureExecution,
    FixtureKey,
    RunRecord,
    TestRecord,
    WorkerRecord,
)
from pytest_feedback.history.store import Store

START = 1_760_000_000.0
#: Every worker starts its first test this long after the run's start (start-up, collection).
STARTUP_S = 0.5
#: A pause of worker 0 in the middle of its tests (an idle gap to see).
PAUSE_S = 1.0
MODULE_FIXTURE = FixtureKey("database", "module", "tests/conftest.py")
FUNCTION_FIXTURE = FixtureKey("tmp_dir", "function", "tests/conftest.py")


def nodeids(count: int, extra: Sequence[str] = ()) -> list[str]:
    ids = [f"tests/test_mod{i % 40}.py::TestCase{i % 7}::test_case_{i}" for i in range(count)]
    return [*extra, *ids][:count] if extra else ids


def lanes_of(ids: Sequence[str], workers: int) -> list[list[str]]:
    """Which tests each worker runs: round robin."""
    return [list(ids[w::workers]) for w in range(workers)]


def make_run(
    index: int, ids: Sequence[str], workers: int, *, seed: int = 0, fixtures: bool = True
) -> RunRecord:
    """Run ``index``: each worker runs its tests (`lanes_of`) from `STARTUP_S` on, a module
    fixture set up before every 50th test, a function fixture around every test."""
    rnd = random.Random(seed * 1000 + index)
    started = START + index * 3600
    run = RunRecord(uuid=f"run-{index}", started_at=started, workers=workers)
    end = 0.0
    for w, mine in enumerate(lanes_of(ids, workers)):
        worker = f"gw{w}"
        at = started + STARTUP_S
        run.worker_records.append(WorkerRecord(worker, STARTUP_S, len(mine)))
        for n, nodeid in enumerate(mine):
            if w == 0 and n == len(mine) // 2:
                at += PAUSE_S
            setup, call, teardown = 0.004, rnd.uniform(0.001, 0.05), 0.002
            if fixtures and n % 50 == 0:
                run.fixtures.append(
                    FixtureExecution(
                        MODULE_FIXTURE, 0.003, nodeid, worker, 0.001, nodeid, at, at + 0.004, 0.003
                    )
                )
            if fixtures:
                run.fixtures.append(
                    FixtureExecution(
                        FUNCTION_FIXTURE,
                        0.0005,
                        nodeid,
                        worker,
                        0.0005,
                        nodeid,
                        at + 0.0035,
                        at + setup + call,
                        0.0005,
                    )
                )
            outcome = "failed" if n == 3 and w == 1 else "passed"
            run.tests[nodeid] = TestRecord(
                nodeid, outcome, setup, call, teardown, worker=worker, started_at=at
            )
            at += setup + call + teardown + 0.0005
        end = max(end, at - started)
    run.wall_s = end + 0.2
    run.finished_at = started + run.wall_s
    return run


def write_history(
    path: Path, ids: Sequence[str], workers: int, runs: int = 3, *, fixtures: bool = True
) -> Path:
    with Store(path) as store:
        for index in range(runs):
            store.record_run(make_run(index, ids, workers, fixtures=fixtures))
    return path
