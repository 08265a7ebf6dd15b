"""Reading a history: the queries `Store` answers about recorded runs, tests and fixtures.

`HistoryReads` is mixed into `Store`; it needs only the store's connection (``self._db``) and
assumes the current schema (`Store` migrates on open).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Optional

from .estimates import Estimates, FixtureEstimate, Sample, TestEstimate, median
from .records import test_file
from .sqlitedb import SqliteDb

CHUNK = 500


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class HistoryReads:
    """The read side of `Store`."""

    _db: SqliteDb

    def run_count(self) -> int:
        return int(self._db.query("SELECT count(*) FROM runs")[0][0])

    def runs(self, limit: Optional[int] = None) -> list[dict[str, Any]]:
        """The newest runs first, as dicts of the runs table's columns."""
        sql = "SELECT * FROM runs ORDER BY started_at DESC, id DESC"
        params: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        cur = self._db.connection.execute(sql, params)
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row)) for row in cur.fetchall()]
        for row in rows:
            row["args"] = json.loads(row["args"])
        return rows

    def results(self, run_id: int) -> list[dict[str, Any]]:
        """The test results of one run, with node ids."""
        cur = self._db.connection.execute(
            "SELECT t.nodeid, r.outcome, r.setup_s, r.call_s, r.teardown_s, r.own_s, r.worker"
            " FROM results r JOIN tests t ON t.id = r.test_id WHERE r.run_id = ?"
            " ORDER BY t.nodeid",
            (run_id,),
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def fixture_executions(self, run_id: int) -> list[dict[str, Any]]:
        """The fixture executions of one run."""
        cur = self._db.connection.execute(
            "SELECT f.name, f.scope, f.location, fr.setup_s, fr.teardown_s, fr.worker,"
            " s.nodeid AS setup_test, d.nodeid AS teardown_test"
            " FROM fixture_runs fr JOIN fixtures f ON f.id = fr.fixture_id"
            " LEFT JOIN tests s ON s.id = fr.setup_test"
            " LEFT JOIN tests d ON d.id = fr.teardown_test"
            " WHERE fr.run_id = ? ORDER BY fr.rowid",
            (run_id,),
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def recent_samples(self, nodeids: Iterable[str]) -> dict[str, list[Sample]]:
        """The recent samples (oldest first) of the given tests."""
        wanted = list(nodeids)
        out: dict[str, list[Sample]] = {}
        for chunk in chunks(wanted):
            marks = ",".join("?" * len(chunk))
            sql = (  # placeholders only
                "SELECT t.nodeid, s.recent FROM test_stats s JOIN tests t"  # noqa: S608
                f" ON t.id = s.test_id WHERE t.nodeid IN ({marks})"
            )
            for nodeid, recent in self._db.query(sql, tuple(chunk)):
                out[nodeid] = [Sample.from_row(r) for r in json.loads(recent)]
        return out

    def load_estimates(self) -> Estimates:
        """Everything the planners need, in a handful of table scans."""
        tests: dict[str, TestEstimate] = {}
        for (
            nodeid,
            est,
            setup,
            call,
            teardown,
            runs,
            fail_rate,
            flaky,
            slow,
            last,
        ) in self._db.query(
            "SELECT t.nodeid, s.estimate_s, s.setup_s, s.call_s, s.teardown_s, s.runs,"
            " s.fail_rate, s.flaky, s.slowdown, s.last_outcome"
            " FROM test_stats s JOIN tests t ON t.id = s.test_id"
        ):
            tests[nodeid] = TestEstimate(
                nodeid, est, setup, call, teardown, runs, fail_rate, bool(flaky), slow, last
            )
        fixture_rows = self._db.query(
            "SELECT f.id, f.name, f.scope, f.location, coalesce(s.setup_s, 0),"
            " coalesce(s.teardown_s, 0), coalesce(s.executions_per_run, 0),"
            " (SELECT count(*) FROM test_fixtures tf WHERE tf.fixture_id = f.id)"
            " FROM fixtures f LEFT JOIN fixture_stats s ON s.fixture_id = f.id"
            " ORDER BY f.id"
        )
        index = {row[0]: i for i, row in enumerate(fixture_rows)}
        fixtures = [FixtureEstimate(*row[1:]) for row in fixture_rows]
        uses: dict[str, list[int]] = {}
        for nodeid, fixture_id in self._db.query(
            "SELECT t.nodeid, tf.fixture_id FROM test_fixtures tf JOIN tests t ON t.id = tf.test_id"
        ):
            if fixture_id in index:
                uses.setdefault(nodeid, []).append(index[fixture_id])
        startup = median(
            row[0]
            for row in self._db.query(
                "SELECT w.collect_s FROM run_workers w JOIN"
                " (SELECT id FROM runs ORDER BY started_at DESC LIMIT 10) r ON r.id = w.run_id"
            )
        )
        return Estimates(tests, fixtures, uses, startup)

    def known_files(self) -> set[str]:
        return {test_file(row[0]) for row in self._db.query("SELECT nodeid FROM tests")}
