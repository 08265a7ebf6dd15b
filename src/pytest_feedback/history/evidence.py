"""What the advice reads of a history: the recent runs' details, in the shapes it judges.

`EvidenceReads` holds the queries of `planning.advice` (which fixtures repeat in which tests,
what each test's thread computed against its wall time, what collection imported, the recent
samples of tests and fixtures, the runs' commits); it assumes the current schema like
`reads.HistoryReads`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any, Optional

from pytest_feedback.history.connection import SqliteDb, chunks

#: Recent runs with details that the advice reads (the newest first).
RECENT_RUNS = 5
#: What `EvidenceReads.cpu_shares` counts: tests this long...
SHARE_MIN_S = 0.02
#: ... whose thread computed at least this share of their time ...
SHARE_MIN_RATIO = 0.05
#: ... and at least this many of them.
SHARE_MIN_TESTS = 5


@dataclasses.dataclass(frozen=True)
class RunInfo:
    run_id: int
    started_at: float
    wall_s: float
    workers: int
    collect_s: Optional[float]
    git_commit: Optional[str]
    git_dirty: Optional[bool]
    rootdir: str = ""


@dataclasses.dataclass(frozen=True)
class FixtureGroup:
    """The executions of one function- or class-scoped fixture that one test triggered in one
    run on one process (set-up and tear-down seconds summed over them)."""

    name: str
    scope: str
    location: str
    nodeid: str
    worker: str
    executions: int
    setup_s: float
    teardown_s: float
    #: CPU seconds of the set-ups (0 for runs that did not record them).
    setup_cpu_s: float = 0.0


@dataclasses.dataclass(frozen=True)
class TestTime:
    """One test in one run: its phases, its own seconds and its thread's CPU seconds (less the
    CPU of the wider-scope fixture set-ups that ran inside its phases)."""

    run_id: int
    nodeid: str
    setup_s: float
    call_s: float
    teardown_s: float
    own_s: float
    cpu_s: float

    __test__ = False


@dataclasses.dataclass(frozen=True)
class ImportTime:
    run_id: int
    worker: str
    kind: str
    name: str
    via: Optional[str]
    seconds: float


class EvidenceReads:
    """The queries the advice asks, over one open connection (``EvidenceReads(store.db)``)."""

    def __init__(self, db: SqliteDb) -> None:
        self._db = db

    def recent_runs(self, limit: int = RECENT_RUNS) -> list[RunInfo]:
        """The newest runs that still have their details, newest first."""
        rows = self._db.query(
            "SELECT id, started_at, wall_s, workers, collect_s, git_commit, git_dirty, rootdir"
            " FROM runs ORDER BY started_at DESC, id DESC LIMIT ?",
            (limit,),
        )
        return [
            RunInfo(int(i), float(s), float(w), int(n), c, g, None if d is None else bool(d), r)
            for i, s, w, n, c, g, d, r in rows
        ]

    def commits(self, run_ids: Sequence[int]) -> dict[int, tuple[Optional[str], bool]]:
        """Per run still in the history: its commit and whether the tree was dirty."""
        out: dict[int, tuple[Optional[str], bool]] = {}
        for chunk in chunks(list(run_ids)):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, git_commit, git_dirty FROM runs WHERE id IN ({marks})"  # noqa: S608
            for run_id, commit, dirty in self._db.query(sql, tuple(chunk)):
                out[int(run_id)] = (commit, bool(dirty))
        return out

    def narrow_fixture_groups(self, run_id: int) -> list[FixtureGroup]:
        """The function- and class-scoped fixture executions of one run, per triggering test."""
        rows = self._db.query(
            "SELECT f.name, f.scope, f.location, t.nodeid, coalesce(fr.worker, 'main'),"
            " count(*), sum(fr.setup_s), sum(coalesce(fr.teardown_s, 0)),"
            " sum(coalesce(fr.setup_cpu_s, fr.setup_s))"
            " FROM fixture_runs fr JOIN fixtures f ON f.id = fr.fixture_id"
            " JOIN tests t ON t.id = fr.setup_test"
            " WHERE fr.run_id = ? AND f.scope IN ('function', 'class')"
            " GROUP BY fr.fixture_id, fr.setup_test, fr.worker",
            (run_id,),
        )
        return [FixtureGroup(*row) for row in rows]

    def test_times(self, run_ids: Sequence[int], min_wait_s: float) -> list[TestTime]:
        """Tests of those runs with a CPU time whose phases exceed it by ``min_wait_s``."""
        out: list[TestTime] = []
        for run_id in run_ids:
            wider_cpu = dict(
                self._db.query(
                    "SELECT fr.setup_test, sum(fr.setup_cpu_s) FROM fixture_runs fr"
                    " JOIN fixtures f ON f.id = fr.fixture_id"
                    " WHERE fr.run_id = ? AND f.scope NOT IN ('function')"
                    " AND fr.setup_cpu_s IS NOT NULL AND fr.setup_test IS NOT NULL"
                    " GROUP BY fr.setup_test",
                    (run_id,),
                )
            )
            for test_id, nodeid, setup, call, teardown, own, cpu in self._db.query(
                "SELECT r.test_id, t.nodeid, r.setup_s, r.call_s, r.teardown_s, r.own_s,"
                " r.cpu_s FROM results r JOIN tests t ON t.id = r.test_id"
                " WHERE r.run_id = ? AND r.cpu_s IS NOT NULL"
                " AND r.setup_s + r.call_s + r.teardown_s - r.cpu_s >= ?"
                " AND r.outcome != 'skipped'",
                (run_id, min_wait_s),
            ):
                own_cpu = max(0.0, float(cpu) - float(wider_cpu.get(test_id) or 0.0))
                out.append(TestTime(run_id, nodeid, setup, call, teardown, own, own_cpu))
        return out

    def cpu_shares(self, run_ids: Sequence[int]) -> dict[int, float]:
        """Per run, the share of a CPU the tests that computed got: their thread's CPU seconds
        over their phases' seconds (below 1 when other load on the machine held them back).

        Counted over the tests of at least `SHARE_MIN_S` whose thread computed at least
        `SHARE_MIN_RATIO` of the time (the others mostly waited, whatever the load); a run
        without `SHARE_MIN_TESTS` such tests gets 1.0 (no correction).
        """
        out: dict[int, float] = {}
        for run_id in run_ids:
            cpu, wall, count = self._db.query(
                "SELECT sum(cpu_s), sum(setup_s + call_s + teardown_s), count(*) FROM results"
                " WHERE run_id = ? AND cpu_s IS NOT NULL"
                " AND setup_s + call_s + teardown_s >= ?"
                " AND cpu_s >= ? * (setup_s + call_s + teardown_s)",
                (run_id, SHARE_MIN_S, SHARE_MIN_RATIO),
            )[0]
            share = 1.0
            if count and count >= SHARE_MIN_TESTS and wall:
                share = min(1.0, max(SHARE_MIN_RATIO, float(cpu) / float(wall)))
            out[run_id] = share
        return out

    def cpu_recorded(self, run_ids: Sequence[int]) -> bool:
        """Whether any of those runs recorded the tests' CPU time (schema 3 and later)."""
        for run_id in run_ids:
            if self._db.query(
                "SELECT 1 FROM results WHERE run_id = ? AND cpu_s IS NOT NULL LIMIT 1", (run_id,)
            ):
                return True
        return False

    def imports(self, run_ids: Sequence[int]) -> list[ImportTime]:
        out: list[ImportTime] = []
        for run_id in run_ids:
            for row in self._db.query(
                "SELECT run_id, worker, kind, name, via, seconds FROM collect_imports"
                " WHERE run_id = ?",
                (run_id,),
            ):
                out.append(ImportTime(*row))
        return out

    def worker_collect(self, run_ids: Sequence[int]) -> list[tuple[int, str, float]]:
        """(run, process, seconds of its start-up and collection) of those runs."""
        out: list[tuple[int, str, float]] = []
        for run_id in run_ids:
            out += self._db.query(
                "SELECT run_id, worker, collect_s FROM run_workers WHERE run_id = ?", (run_id,)
            )
        return out

    def test_samples(self, min_estimate_s: float) -> list[tuple[str, list[list[Any]]]]:
        """(node id, recent samples) of current tests whose estimate is at least that long."""
        rows = self._db.query(
            "SELECT t.nodeid, s.recent FROM test_stats s CROSS JOIN tests t ON t.id = s.test_id"
            " WHERE s.last_run_id >= (SELECT min(id) FROM runs)"
            " AND max(s.estimate_s, s.setup_s + s.call_s + s.teardown_s) >= ?",
            (min_estimate_s,),
        )
        return [(str(nodeid), _rows(recent)) for nodeid, recent in rows]

    def fixture_samples(self) -> list[tuple[str, str, str, float, list[list[Any]]]]:
        """(name, scope, location, executions per run, recent samples) of every fixture."""
        rows = self._db.query(
            "SELECT f.name, f.scope, f.location, s.executions_per_run, s.recent"
            " FROM fixture_stats s JOIN fixtures f ON f.id = s.fixture_id"
        )
        return [(n, sc, loc, float(per_run), _rows(recent)) for n, sc, loc, per_run, recent in rows]


def _rows(text: Any) -> list[list[Any]]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return []
    return [r for r in value if isinstance(r, list)] if isinstance(value, list) else []
