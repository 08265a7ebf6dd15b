"""Reading a history: the queries about recorded runs, tests and fixtures.

A `Store` holds one `HistoryReads` over its connection (``store.reads``); it assumes the current
schema (`Store` migrates on open, a read-only open migrates an in-memory copy).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Optional

from pytest_feedback.history.connection import SqliteDb, chunks
from pytest_feedback.history.estimates import (
    PACE_RUNS,
    Estimates,
    FixtureEstimate,
    TestEstimate,
    budget_pace,
)
from pytest_feedback.history.records import storable_text, test_file
from pytest_feedback.history.summaries import Sample, median

_SERIAL_RUNS_REST = (
    " r.tests, (SELECT sum(setup_s + call_s + teardown_s) FROM results WHERE run_id = r.id)"
    " FROM runs r WHERE r.workers = 0 AND r.collect_s IS NOT NULL AND r.tests > 0"
    " AND r.id NOT IN (SELECT run_id FROM run_parts)"
    " ORDER BY r.started_at DESC LIMIT 10"
)
#: (test loop, session end, planned, exit) of the last serial budget runs that were not
#: interrupted (an interrupted test's plan counts whole, its time only in part).
_BUDGET_RUNS = (
    "SELECT r.loop_s, r.wall_s - r.collect_s - r.loop_s, r.planned_s, r.exit_s FROM runs r"
    " WHERE r.workers = 0 AND r.collect_s IS NOT NULL AND r.loop_s IS NOT NULL"
    " AND r.planned_s > 0"
    " AND r.exit_status IN (0, 1) AND r.id NOT IN (SELECT run_id FROM run_parts)"
    " ORDER BY r.started_at DESC LIMIT ?"
)
_SERIAL_RUNS = "SELECT r.wall_s, r.collect_s, r.loop_s," + _SERIAL_RUNS_REST


#: (wall, collection, loop, tests, test phases) of one serial run.
SerialRun = tuple[float, float, Optional[float], int, Optional[float]]


class HistoryReads:
    """The queries a history answers, over one open connection (a `Store`'s ``reads``)."""

    def __init__(self, db: SqliteDb) -> None:
        self._db = db

    def run_count(self) -> int:
        return int(self._db.query("SELECT count(*) FROM runs")[0][0])

    def runs(self, limit: Optional[int] = None) -> list[dict[str, Any]]:
        """The newest runs first, as dicts of the runs table's columns."""
        sql = "SELECT * FROM runs ORDER BY started_at DESC, id DESC"
        params: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        rows = self._db.query_dicts(sql, params)
        for row in rows:
            row["args"] = json.loads(row["args"])
        return rows

    def results(self, run_id: int) -> list[dict[str, Any]]:
        """The test results of one run, with node ids (start_s: seconds from the run's start)."""
        return self._db.query_dicts(
            "SELECT t.nodeid, r.outcome, r.setup_s, r.call_s, r.teardown_s, r.own_s, r.worker,"
            " r.start_s, r.cpu_s FROM results r JOIN tests t ON t.id = r.test_id WHERE r.run_id = ?"
            " ORDER BY t.nodeid",
            (run_id,),
        )

    def fixture_executions(self, run_id: int) -> list[dict[str, Any]]:
        """The fixture executions of one run."""
        return self._db.query_dicts(
            "SELECT f.name, f.scope, f.location, fr.setup_s, fr.teardown_s, fr.worker,"
            " s.nodeid AS setup_test, d.nodeid AS teardown_test, fr.setup_start_s,"
            " fr.teardown_start_s, fr.setup_cpu_s"
            " FROM fixture_runs fr JOIN fixtures f ON f.id = fr.fixture_id"
            " LEFT JOIN tests s ON s.id = fr.setup_test"
            " LEFT JOIN tests d ON d.id = fr.teardown_test"
            " WHERE fr.run_id = ? ORDER BY fr.rowid",
            (run_id,),
        )

    def recent_samples(self, nodeids: Iterable[str]) -> dict[str, list[Sample]]:
        """The recent samples (oldest first) of the given tests."""
        asked = {storable_text(n): n for n in nodeids}  # stored as `record_run` stored them
        wanted = list(asked)
        out: dict[str, list[Sample]] = {}
        for chunk in chunks(wanted):
            marks = ",".join("?" * len(chunk))
            sql = (  # placeholders only
                "SELECT t.nodeid, s.recent FROM test_stats s JOIN tests t"  # noqa: S608
                f" ON t.id = s.test_id WHERE t.nodeid IN ({marks})"
            )
            for nodeid, recent in self._db.query(sql, tuple(chunk)):
                out[asked[nodeid]] = [Sample.from_row(r) for r in json.loads(recent)]
        return out

    #: Tests whose last run still has its details in the history (see `keep_runs`): a test that
    #: was deleted or renamed leaves the report once its last run is pruned.
    _CURRENT = "s.last_run_id >= (SELECT min(id) FROM runs)"
    #: Seconds rounded to microseconds here, in C, rather than by each reader in Python; CROSS
    #: JOIN keeps SQLite from walking 50,000 tests by name to look each one's stats up.
    _ESTIMATE_COLUMNS = (
        "t.nodeid, round(s.estimate_s, 6), round(s.setup_s, 6), round(s.call_s, 6),"
        " round(s.teardown_s, 6), s.runs, round(s.fail_rate, 6), s.flaky, s.slowdown,"
        " s.last_outcome FROM test_stats s CROSS JOIN tests t ON t.id = s.test_id"
    )

    def load_estimates(self) -> Estimates:
        """Everything the planners need, in a handful of table scans."""
        tests = {
            row[0]: _test_estimate(row)
            for row in self._db.query(f"SELECT {self._ESTIMATE_COLUMNS}")
        }
        fixture_rows = self._fixture_rows()
        index = {row[0]: i for i, row in enumerate(fixture_rows)}
        fixtures = [FixtureEstimate(*row[1:]) for row in fixture_rows]
        uses: dict[str, list[int]] = {}
        for nodeid, fixture_id in self._db.query(
            "SELECT t.nodeid, tf.fixture_id FROM test_fixtures tf JOIN tests t ON t.id = tf.test_id"
        ):
            if fixture_id in index:
                uses.setdefault(nodeid, []).append(index[fixture_id])
        serial = self._serial_runs()
        budget = self._budget_runs()
        startup = median(
            row[0]
            for row in self._db.query(
                "SELECT w.collect_s FROM run_workers w JOIN"
                " (SELECT id FROM runs ORDER BY started_at DESC LIMIT 10) r ON r.id = w.run_id"
            )
        )
        return Estimates(
            tests,
            fixtures,
            uses,
            startup,
            per_test_s=_per_test_overhead(serial),
            xdist_overhead=self._xdist_overhead(),
            session_end_s=_session_end(serial),
            pace=budget_pace((loop, planned) for loop, _, planned, _ in budget),
            exit_s=median(e for *_, e in budget if e is not None),
            budget_end_s=median(max(0.0, end) for _, end, _, _ in budget) if budget else None,
            budget_work_s=median(planned for _, _, planned, _ in budget),
        )

    def _budget_runs(self) -> list[tuple[float, float, float, Optional[float]]]:
        """(test loop, session end, planned, exit) of the last serial budget runs."""
        return self._db.query(_BUDGET_RUNS, (PACE_RUNS,))

    def _xdist_overhead(self) -> dict[int, float]:
        """Per xdist worker count, the seconds a run takes beyond its busiest worker's start-up
        and tests: bringing the workers up, shipping tests and reports (median of recent runs)."""
        runs = self._db.query(
            "SELECT r.id, r.wall_s, r.workers FROM runs r WHERE r.workers > 0"
            " AND r.id NOT IN (SELECT run_id FROM run_parts)"
            " ORDER BY r.started_at DESC LIMIT 20"
        )
        seen: dict[int, list[float]] = {}
        for run_id, wall, workers in runs:
            busy = dict(
                self._db.query(
                    "SELECT worker, sum(setup_s + call_s + teardown_s) FROM results"
                    " WHERE run_id = ? GROUP BY worker",
                    (run_id,),
                )
            )
            collect = dict(
                self._db.query(
                    "SELECT worker, collect_s FROM run_workers WHERE run_id = ?", (run_id,)
                )
            )
            loads = [busy[w] + collect.get(w, 0.0) for w in busy if w is not None]
            if loads:
                seen.setdefault(int(workers), []).append(max(0.0, wall - max(loads)))
        return {workers: median(values) for workers, values in seen.items()}

    def _serial_runs(self) -> list[SerialRun]:
        """(wall, collection, loop, tests, test phases) of the last 10 serial runs; xdist runs and
        merged CI pipelines are left out: their wall time is not one process's."""
        return self._db.query(_SERIAL_RUNS)

    def test_count(self) -> int:
        """How many tests have recorded estimates."""
        return int(self._db.query("SELECT count(*) FROM test_stats")[0][0])

    def runs_since(self) -> dict[str, int]:
        """Per recorded test, how many runs this history has seen since the test last ran."""
        newest = self._db.query("SELECT coalesce(max(id), 0) FROM run_index")[0][0]
        return {
            nodeid: max(0, int(newest) - int(last))
            for nodeid, last in self._db.query(
                "SELECT t.nodeid, s.last_run_id FROM test_stats s CROSS JOIN tests t"
                " ON t.id = s.test_id"
            )
        }

    def _fixture_rows(self) -> list[Any]:
        """(id, name, scope, location, setup_s, teardown_s, executions per run, used by)."""
        return self._db.query(
            "SELECT f.id, f.name, f.scope, f.location, coalesce(s.setup_s, 0),"
            " coalesce(s.teardown_s, 0), coalesce(s.executions_per_run, 0),"
            " (SELECT count(*) FROM test_fixtures tf WHERE tf.fixture_id = f.id)"
            " FROM fixtures f LEFT JOIN fixture_stats s ON s.fixture_id = f.id"
            " ORDER BY f.id"
        )

    # -- reads for the report (what `load_estimates` gives, without loading every test) ------

    def current_tests(self, limit: Optional[int] = None) -> list[TestEstimate]:
        """Current tests, longest estimate first (all of them when ``limit`` is None)."""
        sql = f"SELECT {self._ESTIMATE_COLUMNS} WHERE {self._CURRENT}"
        if limit is not None:  # the index gives the first few in order
            sql += " ORDER BY s.estimate_s DESC, t.nodeid LIMIT ?"
            return [_test_estimate(row) for row in self._db.query(sql, (limit,))]
        # All of them: a sequential scan and a sort here cost half the index walk.
        rows = self._db.query(sql)
        rows.sort(key=lambda row: (-row[1], row[0]))
        return [_test_estimate(row) for row in rows]

    def flagged_tests(self, min_slowdown: float) -> list[TestEstimate]:
        """Current tests that are flaky or whose slow-down ratio is at least ``min_slowdown``.

        In no particular order.
        """
        sql = (
            f"SELECT {self._ESTIMATE_COLUMNS} WHERE {self._CURRENT}"
            " AND (s.flaky OR s.slowdown >= ?)"
        )
        return [_test_estimate(row) for row in self._db.query(sql, (min_slowdown,))]

    def file_totals(self) -> list[tuple[str, int, float]]:
        """Per file of current tests: (file, tests, sum of their estimates), longest first."""
        sql = (
            "SELECT t.file, count(*), sum(s.estimate_s) FROM test_stats s"  # noqa: S608
            f" CROSS JOIN tests t ON t.id = s.test_id WHERE {self._CURRENT}"
            " GROUP BY t.file ORDER BY 3 DESC, 1"
        )
        return [(str(f), int(n), float(total)) for f, n, total in self._db.query(sql)]

    def current_nodeids(self) -> list[str]:
        """The current tests' node ids, in no particular order."""
        sql = (
            "SELECT t.nodeid FROM test_stats s CROSS JOIN tests t"  # noqa: S608
            f" ON t.id = s.test_id WHERE {self._CURRENT}"
        )
        return [str(row[0]) for row in self._db.query(sql)]

    def estimates_of(self, nodeids: Iterable[str]) -> list[TestEstimate]:
        """The estimates of the given tests the history knows."""
        out: list[TestEstimate] = []
        for chunk in chunks(sorted(nodeids)):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {self._ESTIMATE_COLUMNS} WHERE t.nodeid IN ({marks})"
            out += [_test_estimate(row) for row in self._db.query(sql, tuple(chunk))]
        return out

    def tests_with_outcome(self, run_id: int, outcomes: Iterable[str]) -> set[str]:
        """The tests of one run whose outcome is one of ``outcomes``."""
        wanted = tuple(outcomes)
        marks = ",".join("?" * len(wanted))
        sql = (
            "SELECT t.nodeid FROM results r JOIN tests t ON t.id = r.test_id"  # noqa: S608
            f" WHERE r.run_id = ? AND r.outcome IN ({marks})"
        )
        return {str(row[0]) for row in self._db.query(sql, (run_id, *wanted))}

    def fixture_estimates(self) -> list[FixtureEstimate]:
        """Every known fixture (as in `load_estimates`)."""
        return [FixtureEstimate(*row[1:]) for row in self._fixture_rows()]

    def test_time(self, run_id: int) -> float:
        """Seconds all tests of one run spent in set-up, call and tear-down together."""
        row = self._db.query(
            "SELECT sum(setup_s + call_s + teardown_s) FROM results WHERE run_id = ?", (run_id,)
        )
        return float(row[0][0] or 0.0)

    def test_phases(
        self, run_id: int, nodeids: Iterable[str]
    ) -> dict[str, tuple[float, float, float]]:
        """Set-up, call and tear-down seconds in one run of those of the given tests it ran."""
        out: dict[str, tuple[float, float, float]] = {}
        for chunk in chunks(list(nodeids)):
            marks = ",".join("?" * len(chunk))
            sql = (  # placeholders only
                "SELECT t.nodeid, r.setup_s, r.call_s, r.teardown_s"  # noqa: S608
                " FROM tests t JOIN results r ON r.test_id = t.id AND r.run_id = ?"
                f" WHERE t.nodeid IN ({marks})"
            )
            for nodeid, setup, call, teardown in self._db.query(sql, (run_id, *chunk)):
                out[nodeid] = (setup, call, teardown)
        return out

    def known_files(self) -> set[str]:
        return {test_file(row[0]) for row in self._db.query("SELECT nodeid FROM tests")}

    def attempts(self, run_id: int) -> dict[str, list[tuple[int, str, str, float]]]:
        """Per test that ran more than once in one run: (attempt, kind, outcome, seconds) of
        each attempt, in order."""
        out: dict[str, list[tuple[int, str, str, float]]] = {}
        for nodeid, attempt, kind, outcome, seconds in self._db.query(
            "SELECT t.nodeid, a.attempt, a.kind, a.outcome, a.duration_s FROM attempts a"
            " JOIN tests t ON t.id = a.test_id WHERE a.run_id = ? ORDER BY t.nodeid, a.attempt",
            (run_id,),
        ):
            out.setdefault(nodeid, []).append((attempt, kind, outcome, seconds))
        return out

    def samples_of_failing_tests(self) -> dict[str, tuple[float, list[list[Any]]]]:
        """Per current test that failed in one of its recent samples (or within a run: it is
        flaky): its failure rate and its stored sample rows (what flakiness and instability
        are judged from)."""
        sql = (
            "SELECT t.nodeid, s.fail_rate, s.recent FROM test_stats s"  # noqa: S608
            f" CROSS JOIN tests t ON t.id = s.test_id WHERE {self._CURRENT}"
            " AND (s.fail_rate > 0 OR s.flaky)"
        )
        return {
            nodeid: (float(rate), json.loads(recent))
            for nodeid, rate, recent in self._db.query(sql)
        }

    # -- reads for the timeline and the trends (report/timeline.py, report/trends.py) --------

    def timed_results(self, run_id: int) -> list[tuple[Any, ...]]:
        """(nodeid, outcome, worker, start_s, setup_s, call_s, teardown_s) of one run's tests
        whose start is known, earliest first (start_s as in `results`)."""
        return self._db.query(
            "SELECT t.nodeid, r.outcome, r.worker, r.start_s, r.setup_s, r.call_s, r.teardown_s"
            " FROM results r JOIN tests t ON t.id = r.test_id"
            " WHERE r.run_id = ? AND r.start_s IS NOT NULL ORDER BY r.start_s",
            (run_id,),
        )

    def timed_fixtures(self, run_id: int) -> list[tuple[Any, ...]]:
        """(name, scope, worker, setup_start_s, setup_s, teardown_start_s, teardown_s) of one
        run's fixture executions whose set-up start is known."""
        return self._db.query(
            "SELECT f.name, f.scope, fr.worker, fr.setup_start_s, fr.setup_s,"
            " fr.teardown_start_s, fr.teardown_s FROM fixture_runs fr"
            " JOIN fixtures f ON f.id = fr.fixture_id"
            " WHERE fr.run_id = ? AND fr.setup_start_s IS NOT NULL ORDER BY fr.setup_start_s",
            (run_id,),
        )

    def run_parts(self, run_id: int) -> list[tuple[str, float, float]]:
        """(shard "K/N", started_at, wall_s) of the shard runs a merged run holds; of two runs
        of one shard the one that finished last (the one whose results the merged run kept)."""
        rows = self._db.query(
            "SELECT shard, started_at, wall_s FROM run_parts WHERE run_id = ?"
            " ORDER BY finished_at, uuid",
            (run_id,),
        )
        return list({shard: (shard, at, wall) for shard, at, wall in rows}.values())

    def run_trends(self, limit: int) -> list[tuple[Any, ...]]:
        """(run id, started_at, wall_s, tests, failed, test seconds, failures of tests now
        flagged flaky) of the newest ``limit`` runs, oldest first."""
        rows = self._db.query(
            "SELECT r.id, r.started_at, r.wall_s, r.tests, r.failed,"
            " (SELECT sum(setup_s + call_s + teardown_s) FROM results WHERE run_id = r.id),"
            " (SELECT count(*) FROM results x JOIN test_stats s ON s.test_id = x.test_id"
            "  WHERE x.run_id = r.id AND s.flaky AND x.outcome IN ('failed', 'error'))"
            " FROM runs r ORDER BY r.started_at DESC, r.id DESC LIMIT ?",
            (limit,),
        )
        return rows[::-1]


def _test_estimate(row: Sequence[Any]) -> TestEstimate:
    nodeid, est, setup, call, teardown, runs, fail_rate, flaky, slow, last = row
    return TestEstimate(
        nodeid, est, setup, call, teardown, runs, fail_rate, bool(flaky), slow, last
    )


def _per_test_overhead(serial: list[SerialRun]) -> float:
    """Seconds pytest spends per test outside its phases (hooks, reporting), from history.

    Median over the last serial runs of (test loop - test phases) / tests. Runs recorded
    before the loop was timed use (wall - collection - phases) / tests, which also spreads
    the session's end over the tests.
    """
    return median(
        max(0.0, ((loop if loop is not None else wall - collect) - phases) / tests)
        for wall, collect, loop, tests, phases in serial
        if phases is not None
    )


def _session_end(serial: list[SerialRun]) -> float:
    """Seconds a serial run spends after its test loop (plugins' session-end work, session
    fixtures' tear-down): median of wall - collection - loop over the last serial runs."""
    return median(
        max(0.0, wall - collect - loop) for wall, collect, loop, _, _ in serial if loop is not None
    )
