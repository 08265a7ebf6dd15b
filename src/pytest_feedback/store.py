"""The history store: SQLite schema, migrations, and the reads and writes of recorded runs.

The connection itself (pragmas, retries, transactions) lives in `sqlitedb.py`; this module knows
what a run, a test result and a fixture execution are.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Optional

from .errors import HistoryError
from .estimates import (
    RECENT_KEEP,
    Estimates,
    FixtureEstimate,
    FixtureSample,
    Sample,
    TestEstimate,
    median,
    summarise_fixture,
    summarise_test,
)
from .records import FixtureKey, RunRecord, test_file
from .sqlitedb import SqliteDb, describe_sqlite_error

#: The version of `SCHEMA`. History:
#:   1 — first release: runs, tests, results, fixtures, fixture_runs, test_fixtures, run_workers,
#:       test_stats, fixture_stats; the coverage map: map_files, map_contexts, map_lines,
#:       map_reads, map_imports.
SCHEMA_VERSION = 1

SCHEMA = """
-- Key/value facts about this file; 'schema_version' is the version of this schema.
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per recorded pytest session (or merged pipeline).  Times are seconds; started_at and
-- finished_at are Unix timestamps.  uuid makes merging idempotent.
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT NOT NULL UNIQUE,
    started_at  REAL NOT NULL,
    finished_at REAL NOT NULL,
    wall_s      REAL NOT NULL,
    collect_s   REAL,              -- session start to collection finished (controller)
    git_commit  TEXT,
    git_branch  TEXT,
    git_dirty   INTEGER,           -- 1: uncommitted changes to tracked files
    python      TEXT NOT NULL,
    platform    TEXT NOT NULL,
    workers     INTEGER NOT NULL,  -- 0: no xdist
    exit_status INTEGER,
    args        TEXT NOT NULL,     -- JSON list of the command-line arguments
    rootdir     TEXT NOT NULL,
    shard       TEXT,              -- "K/N" when the run was one CI shard
    tests       INTEGER NOT NULL,  -- number of test results
    failed      INTEGER NOT NULL   -- results that failed or errored
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);

-- Every test node id ever recorded.
CREATE TABLE IF NOT EXISTS tests (
    id     INTEGER PRIMARY KEY,
    nodeid TEXT NOT NULL UNIQUE,
    file   TEXT NOT NULL
);

-- One row per test per run.  own_s = setup_s + call_s + teardown_s minus the wider-scope fixture
-- set-up/tear-down that happened inside those phases (recorded in fixture_runs instead).
CREATE TABLE IF NOT EXISTS results (
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    test_id    INTEGER NOT NULL REFERENCES tests (id),
    outcome    TEXT NOT NULL,      -- passed failed error skipped xfailed xpassed
    setup_s    REAL NOT NULL,
    call_s     REAL NOT NULL,
    teardown_s REAL NOT NULL,
    own_s      REAL NOT NULL,
    worker     TEXT,               -- xdist worker id (gw0...), NULL without xdist
    PRIMARY KEY (run_id, test_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS results_test ON results (test_id, run_id);

-- Fixture definitions: name, scope and where defined (path relative to the rootdir, or
-- module.qualname for fixtures from installed plugins).
CREATE TABLE IF NOT EXISTS fixtures (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL,
    scope    TEXT NOT NULL,
    location TEXT NOT NULL,
    UNIQUE (name, scope, location)
);

-- One row per fixture execution.  setup_test is the test whose phase triggered the set-up,
-- teardown_test the one in whose phase it was torn down (NULL: at session end, or never).
CREATE TABLE IF NOT EXISTS fixture_runs (
    run_id        INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    fixture_id    INTEGER NOT NULL REFERENCES fixtures (id),
    setup_test    INTEGER REFERENCES tests (id),
    teardown_test INTEGER REFERENCES tests (id),
    worker        TEXT,
    setup_s       REAL NOT NULL,
    teardown_s    REAL             -- NULL when the fixture was not torn down (crash)
);
CREATE INDEX IF NOT EXISTS fixture_runs_run ON fixture_runs (run_id);

-- The fixtures each test requests, as of the last run that ran it (all scopes).
CREATE TABLE IF NOT EXISTS test_fixtures (
    test_id    INTEGER NOT NULL REFERENCES tests (id),
    fixture_id INTEGER NOT NULL REFERENCES fixtures (id),
    PRIMARY KEY (test_id, fixture_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS test_fixtures_fixture ON test_fixtures (fixture_id);

-- Processes that ran tests in a run: the main process, or each xdist worker.
CREATE TABLE IF NOT EXISTS run_workers (
    run_id    INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    worker    TEXT NOT NULL,
    collect_s REAL NOT NULL,       -- start-up and collection seconds of that process
    tests     INTEGER NOT NULL,
    PRIMARY KEY (run_id, worker)
) WITHOUT ROWID;

-- Aggregates per test that survive retention: estimates read only this table.
-- recent is a JSON list of the last samples, oldest first:
-- [run_id, outcome, own_s, setup_s, call_s, teardown_s, clean_commit_or_null].
CREATE TABLE IF NOT EXISTS test_stats (
    test_id      INTEGER PRIMARY KEY REFERENCES tests (id),
    runs         INTEGER NOT NULL,
    failures     INTEGER NOT NULL,
    last_run_id  INTEGER NOT NULL,
    last_outcome TEXT NOT NULL,
    estimate_s   REAL NOT NULL,
    setup_s      REAL NOT NULL,
    call_s       REAL NOT NULL,
    teardown_s   REAL NOT NULL,
    fail_rate    REAL NOT NULL,
    flaky        INTEGER NOT NULL,
    slowdown     REAL NOT NULL,
    recent       TEXT NOT NULL
);

-- Aggregates per fixture; recent is a JSON list of [run_id, executions, setup_s, teardown_s].
CREATE TABLE IF NOT EXISTS fixture_stats (
    fixture_id         INTEGER PRIMARY KEY REFERENCES fixtures (id),
    runs               INTEGER NOT NULL,
    executions         INTEGER NOT NULL,
    setup_s            REAL NOT NULL,  -- per execution
    teardown_s         REAL NOT NULL,  -- per execution
    executions_per_run REAL NOT NULL,
    recent             TEXT NOT NULL
);

-- The coverage map (`pytest --feedback-cov`; read and written by mapstore.py).
-- Every file some context depends on, at the content it had when last recorded: sha1 of the
-- bytes, the text zlib-compressed (NULL for binary or large files), and for Python files the
-- numbits of its import-time lines (statements outside function bodies).
CREATE TABLE IF NOT EXISTS map_files (
    id          INTEGER PRIMARY KEY,
    path        TEXT NOT NULL UNIQUE,  -- rootdir-relative, POSIX
    sha1        TEXT NOT NULL,
    source      BLOB,
    toplevel    BLOB,
    module      TEXT                   -- dotted module name when it was imported
);

-- A context is what lines are attributed to: kind 't' a test (label = node id), 'c' the
-- collection of a collector (label = its node id, '' the session), 'i' the import of a project
-- module (label = its path).  spawned/measured count child processes started / measured.
-- outdated = 1: a file it depends on changed in a region it reached since it was recorded
-- (another run re-recorded that file); its lines were carried over to the new content.
CREATE TABLE IF NOT EXISTS map_contexts (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    label       TEXT NOT NULL,
    run_uuid    TEXT,
    recorded_at REAL NOT NULL,
    spawned     INTEGER NOT NULL DEFAULT 0,
    measured    INTEGER NOT NULL DEFAULT 0,
    outdated    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (kind, label)
);

-- Lines a context executed in a file, as coverage.py numbits.
CREATE TABLE IF NOT EXISTS map_lines (
    context_id INTEGER NOT NULL REFERENCES map_contexts (id) ON DELETE CASCADE,
    file_id    INTEGER NOT NULL REFERENCES map_files (id),
    numbits    BLOB NOT NULL,
    PRIMARY KEY (context_id, file_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS map_lines_file ON map_lines (file_id);

-- Files (inside the rootdir, not Python source) a context opened for reading.
CREATE TABLE IF NOT EXISTS map_reads (
    context_id INTEGER NOT NULL REFERENCES map_contexts (id) ON DELETE CASCADE,
    file_id    INTEGER NOT NULL REFERENCES map_files (id),
    PRIMARY KEY (context_id, file_id)
) WITHOUT ROWID;

-- Import edges between project files: static (ast of the importer) or seen while importing.
CREATE TABLE IF NOT EXISTS map_imports (
    importer INTEGER NOT NULL REFERENCES map_files (id),
    imported INTEGER NOT NULL REFERENCES map_files (id),
    PRIMARY KEY (importer, imported)
) WITHOUT ROWID;
"""

#: SQL that brings a history of version N to N + 1.
MIGRATIONS: dict[int, str] = {}

_CHUNK = 500
_GITIGNORE = "# Created by pytest-feedback: the history is local data, not source.\n*\n"


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Store:
    """A pytest-feedback history file."""

    def __init__(self, path: Path, *, create: bool = True, readonly: bool = False) -> None:
        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise HistoryError(
                    f"no history at {self.path}; record one with `pytest --feedback`, "
                    "or point --db at an existing file"
                )
            self._prepare_directory()
        elif self.path.is_dir():
            raise HistoryError(
                f"{self.path} is a directory, not a history file; pass the path of a file"
            )
        self._db = SqliteDb(self.path, readonly=readonly)
        try:
            self._ensure_schema(readonly)
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def open_existing(cls, path: Path) -> Store:
        """Open a history for reading; a missing file is an error, never silently created."""
        return cls(path, create=False)

    def _prepare_directory(self) -> None:
        directory = self.path.parent
        fresh = not directory.exists()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if fresh and directory.name == ".pytest-feedback":
                (directory / ".gitignore").write_text(_GITIGNORE, encoding="utf-8")
        except OSError as exc:
            raise HistoryError(
                f"cannot create {directory} ({exc.strerror}); choose a writable place with "
                "--feedback-db / --db"
            ) from exc

    def _ensure_schema(self, readonly: bool) -> None:
        try:
            version = self._read_version()
        except sqlite3.Error as exc:
            raise HistoryError(describe_sqlite_error(self.path, exc)) from exc
        if version == SCHEMA_VERSION:
            return
        if version is not None and version > SCHEMA_VERSION:
            raise HistoryError(
                f"{self.path} was written by a newer pytest-feedback (schema {version}, this "
                f"one reads up to {SCHEMA_VERSION}); upgrade pytest-feedback"
            )
        if readonly:
            raise HistoryError(
                f"{self.path} has schema {version}; open it once writable to migrate it"
            )
        with self._db.transaction() as con:
            # Another process may have created or migrated it while we waited for the lock.
            version = self._read_version()
            if version is None:
                if self._has_foreign_tables(con):
                    raise HistoryError(
                        f"{self.path} is an SQLite file but not a pytest-feedback history; "
                        "choose another file with --feedback-db / --db"
                    )
                _execute_script(con, SCHEMA)
            else:
                while version < SCHEMA_VERSION:
                    _execute_script(con, MIGRATIONS[version])
                    version += 1
            con.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    def _read_version(self) -> Optional[int]:
        con = self._db.connection
        has_meta = con.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if not has_meta:
            return None
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else None

    @staticmethod
    def _has_foreign_tables(con: sqlite3.Connection) -> bool:
        return bool(con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    @property
    def db(self) -> SqliteDb:
        """The connection, for sibling modules that own tables of this schema (mapstore.py)."""
        return self._db

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------

    def record_run(self, run: RunRecord, *, keep_runs: int = 50) -> int:
        """Write one run in one transaction and return its id (the existing id if already here)."""
        try:
            with self._db.transaction() as con:
                existing = con.execute("SELECT id FROM runs WHERE uuid = ?", (run.uuid,)).fetchone()
                if existing:
                    return int(existing[0])
                run_id = self._insert_run(con, run)
                self._insert_results(con, run_id, run)
                self._prune(con, keep_runs)
                return run_id
        except sqlite3.Error as exc:
            raise HistoryError(describe_sqlite_error(self.path, exc)) from exc

    def _insert_run(self, con: sqlite3.Connection, run: RunRecord) -> int:
        failed = sum(1 for t in run.tests.values() if t.outcome in ("failed", "error"))
        cur = con.execute(
            "INSERT INTO runs (uuid, started_at, finished_at, wall_s, collect_s, git_commit,"
            " git_branch, git_dirty, python, platform, workers, exit_status, args, rootdir, shard,"
            " tests, failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run.uuid,
                run.started_at,
                run.finished_at,
                run.wall_s,
                run.collect_s,
                run.git_commit,
                run.git_branch,
                None if run.git_dirty is None else int(run.git_dirty),
                run.python,
                run.platform,
                run.workers,
                run.exit_status,
                json.dumps(run.args),
                run.rootdir,
                run.shard,
                len(run.tests),
                failed,
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def _insert_results(self, con: sqlite3.Connection, run_id: int, run: RunRecord) -> None:
        nodeids = set(run.tests)
        for execution in run.fixtures:
            nodeids.update(n for n in (execution.setup_test, execution.teardown_test) if n)
        nodeids.update(run.uses)
        test_ids = _ensure_tests(con, sorted(nodeids))

        con.executemany(
            "INSERT OR REPLACE INTO results (run_id, test_id, outcome, setup_s, call_s,"
            " teardown_s, own_s, worker) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    test_ids[t.nodeid],
                    t.outcome,
                    t.setup_s,
                    t.call_s,
                    t.teardown_s,
                    t.own_s,
                    t.worker,
                )
                for t in run.tests.values()
            ],
        )

        keys = {e.key for e in run.fixtures}
        for used in run.uses.values():
            keys.update(used)
        fixture_ids = _ensure_fixtures(
            con, sorted(keys, key=lambda k: (k.name, k.scope, k.location))
        )
        con.executemany(
            "INSERT INTO fixture_runs (run_id, fixture_id, setup_test, teardown_test, worker,"
            " setup_s, teardown_s) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    fixture_ids[e.key],
                    test_ids.get(e.setup_test) if e.setup_test else None,
                    test_ids.get(e.teardown_test) if e.teardown_test else None,
                    e.worker,
                    e.setup_s,
                    e.teardown_s,
                )
                for e in run.fixtures
            ],
        )

        used_tests = [test_ids[n] for n in run.uses]
        for chunk in _chunks(used_tests):
            marks = ",".join("?" * len(chunk))
            con.execute(f"DELETE FROM test_fixtures WHERE test_id IN ({marks})", tuple(chunk))  # noqa: S608
        con.executemany(
            "INSERT OR IGNORE INTO test_fixtures (test_id, fixture_id) VALUES (?, ?)",
            [(test_ids[n], fixture_ids[k]) for n, used in run.uses.items() for k in used],
        )
        con.executemany(
            "INSERT OR REPLACE INTO run_workers (run_id, worker, collect_s, tests)"
            " VALUES (?, ?, ?, ?)",
            [(run_id, w.worker, w.collect_s, w.tests) for w in run.worker_records],
        )
        commit = run.git_commit if run.git_dirty is False else None
        self._update_test_stats(con, run_id, run, test_ids, commit)
        self._update_fixture_stats(con, run_id, run, fixture_ids)

    def _update_test_stats(
        self,
        con: sqlite3.Connection,
        run_id: int,
        run: RunRecord,
        test_ids: dict[str, int],
        commit: Optional[str],
    ) -> None:
        records = {test_ids[t.nodeid]: t for t in run.tests.values()}
        previous = _select_by_ids(
            con, "SELECT test_id, runs, failures, recent FROM test_stats", "test_id", list(records)
        )
        rows = []
        for test_id, t in records.items():
            runs, failures, recent_json = previous.get(test_id, (0, 0, "[]"))
            samples = [Sample.from_row(r) for r in json.loads(recent_json)]
            samples.append(
                Sample(run_id, t.outcome, t.own_s, t.setup_s, t.call_s, t.teardown_s, commit)
            )
            samples = samples[-RECENT_KEEP:]
            summary = summarise_test(samples)
            rows.append(
                (
                    test_id,
                    runs + 1,
                    failures + (t.outcome in ("failed", "error")),
                    run_id,
                    t.outcome,
                    summary.estimate_s,
                    summary.setup_s,
                    summary.call_s,
                    summary.teardown_s,
                    summary.fail_rate,
                    int(summary.flaky),
                    summary.slowdown,
                    json.dumps([s.to_row() for s in samples], separators=(",", ":")),
                )
            )
        con.executemany(
            "INSERT OR REPLACE INTO test_stats (test_id, runs, failures, last_run_id,"
            " last_outcome, estimate_s, setup_s, call_s, teardown_s, fail_rate, flaky, slowdown,"
            " recent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def _update_fixture_stats(
        self,
        con: sqlite3.Connection,
        run_id: int,
        run: RunRecord,
        fixture_ids: dict[FixtureKey, int],
    ) -> None:
        per_fixture: dict[int, list[float]] = {}
        for e in run.fixtures:
            agg = per_fixture.setdefault(fixture_ids[e.key], [0, 0.0, 0.0])
            agg[0] += 1
            agg[1] += e.setup_s
            agg[2] += e.teardown_s or 0.0
        previous = _select_by_ids(
            con,
            "SELECT fixture_id, runs, executions, recent FROM fixture_stats",
            "fixture_id",
            list(per_fixture),
        )
        rows = []
        for fixture_id, (count, setup, teardown) in per_fixture.items():
            runs, executions, recent_json = previous.get(fixture_id, (0, 0, "[]"))
            samples = [FixtureSample.from_row(r) for r in json.loads(recent_json)]
            samples.append(FixtureSample(run_id, int(count), setup, teardown))
            samples = samples[-RECENT_KEEP:]
            summary = summarise_fixture(samples)
            rows.append(
                (
                    fixture_id,
                    runs + 1,
                    executions + int(count),
                    summary.setup_s,
                    summary.teardown_s,
                    summary.executions_per_run,
                    json.dumps([s.to_row() for s in samples], separators=(",", ":")),
                )
            )
        con.executemany(
            "INSERT OR REPLACE INTO fixture_stats (fixture_id, runs, executions, setup_s,"
            " teardown_s, executions_per_run, recent) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    @staticmethod
    def _prune(con: sqlite3.Connection, keep_runs: int) -> None:
        """Drop the details of runs beyond the newest ``keep_runs``; the stats tables stay."""
        if keep_runs <= 0:
            return
        con.execute(
            "DELETE FROM runs WHERE id NOT IN"
            " (SELECT id FROM runs ORDER BY started_at DESC, id DESC LIMIT ?)",
            (keep_runs,),
        )

    # -- reading -----------------------------------------------------------------------------

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
        for chunk in _chunks(wanted):
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
            "SELECT f.id, f.name, f.scope, f.location, s.setup_s, s.teardown_s,"
            " s.executions_per_run,"
            " (SELECT count(*) FROM test_fixtures tf WHERE tf.fixture_id = f.id)"
            " FROM fixtures f JOIN fixture_stats s ON s.fixture_id = f.id"
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


def _execute_script(con: sqlite3.Connection, script: str) -> None:
    """Run ``script`` statement by statement inside the open transaction.

    (``executescript`` would commit the transaction first.)
    """
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            con.execute(statement)
            statement = ""
    if statement.strip():
        con.execute(statement)


def _ensure_tests(con: sqlite3.Connection, nodeids: Sequence[str]) -> dict[str, int]:
    con.executemany(
        "INSERT OR IGNORE INTO tests (nodeid, file) VALUES (?, ?)",
        [(n, test_file(n)) for n in nodeids],
    )
    ids: dict[str, int] = {}
    for chunk in _chunks(nodeids):
        marks = ",".join("?" * len(chunk))
        for test_id, nodeid in con.execute(
            f"SELECT id, nodeid FROM tests WHERE nodeid IN ({marks})",  # noqa: S608
            tuple(chunk),
        ):
            ids[nodeid] = test_id
    return ids


def _ensure_fixtures(con: sqlite3.Connection, keys: Sequence[FixtureKey]) -> dict[FixtureKey, int]:
    con.executemany(
        "INSERT OR IGNORE INTO fixtures (name, scope, location) VALUES (?, ?, ?)",
        [(k.name, k.scope, k.location) for k in keys],
    )
    wanted = set(keys)
    ids: dict[FixtureKey, int] = {}
    if not wanted:
        return ids
    for fixture_id, name, scope, location in con.execute(
        "SELECT id, name, scope, location FROM fixtures"
    ):
        key = FixtureKey(name, scope, location)
        if key in wanted:
            ids[key] = fixture_id
    return ids


def _select_by_ids(
    con: sqlite3.Connection, select: str, column: str, ids: Sequence[int]
) -> dict[int, tuple[Any, ...]]:
    out: dict[int, tuple[Any, ...]] = {}
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        for row in con.execute(f"{select} WHERE {column} IN ({marks})", tuple(chunk)):
            out[row[0]] = tuple(row[1:])
    return out
