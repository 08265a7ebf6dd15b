"""The last run as a Chrome trace-event file (Perfetto, ``chrome://tracing``).

One process per lane of the `Timeline` (xdist worker, or CI shard after a merge), named after
it. Thread 1 holds the tests: a slice per test phase (``setup``, ``call``, ``teardown``) named
after the node id; thread 2 holds the fixtures: a slice per set-up and per tear-down, named after
the fixture. Complete events (``ph: "X"``), microseconds from the run's start. A fixture set-up
runs inside a test's set-up phase, so the two are kept on separate threads: slices of one
thread never overlap (a fixture set up inside another's set-up goes on thread 3, and so on).
See docs/reports.md, "Trace file".
"""

from __future__ import annotations

import json
from typing import Any

from pytest_feedback.report.timeline import Timeline

TESTS_TID = 1
FIXTURES_TID = 2


def render(timeline: Timeline) -> str:
    """The trace file's text: a JSON object with ``traceEvents``."""
    return json.dumps({"traceEvents": events(timeline), "displayTimeUnit": "ms"}) + "\n"


def events(timeline: Timeline) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for pid, lane in enumerate(timeline.lanes, start=1):
        out.append(_meta("process_name", pid, 0, lane.name))
        out.append(_meta("process_sort_index", pid, 0, pid, key="sort_index"))
        out.append(_meta("thread_name", pid, TESTS_TID, "tests"))
        out.append(_meta("thread_name", pid, FIXTURES_TID, "fixtures"))
    last_end: dict[tuple[int, int], int] = {}

    def add(
        name: str, cat: str, pid: int, tid: int, start_s: float, dur_s: float, **args: Any
    ) -> None:
        ts = round(start_s * 1e6)
        # Rounding to whole microseconds must not make neighbours overlap.
        ts = max(ts, last_end.get((pid, tid), ts))
        dur = max(0, round((start_s + dur_s) * 1e6) - ts)
        last_end[(pid, tid)] = ts + dur
        out.append(
            {
                "name": name,
                "cat": cat,
                "ph": "X",
                "ts": ts,
                "dur": dur,
                "pid": pid,
                "tid": tid,
                "args": args,
            }
        )

    for bar in timeline.tests:
        pid, at = bar.lane + 1, bar.start_s
        for phase, seconds in (
            ("setup", bar.setup_s),
            ("call", bar.call_s),
            ("teardown", bar.teardown_s),
        ):
            add(
                bar.nodeid,
                f"test.{phase}",
                pid,
                TESTS_TID,
                at,
                seconds,
                phase=phase,
                outcome=bar.outcome,
            )
            at += seconds
    # A fixture whose set-up runs inside another's (getfixturevalue) goes on the next thread.
    named: set[tuple[int, int]] = set()
    for fixture in timeline.fixtures:
        pid, ts = fixture.lane + 1, round(fixture.start_s * 1e6)
        tid = FIXTURES_TID
        while last_end.get((pid, tid), ts) > ts:
            tid += 1
        if tid > FIXTURES_TID and (pid, tid) not in named:
            named.add((pid, tid))
            out.append(_meta("thread_name", pid, tid, f"fixtures ({tid - FIXTURES_TID + 1})"))
        add(
            fixture.name,
            f"fixture.{fixture.phase}",
            pid,
            tid,
            fixture.start_s,
            fixture.duration_s,
            phase=fixture.phase,
            scope=fixture.scope,
        )
    return out


def _meta(name: str, pid: int, tid: int, value: object, key: str = "name") -> dict[str, Any]:
    return {"name": name, "ph": "M", "pid": pid, "tid": tid, "ts": 0, "args": {key: value}}
