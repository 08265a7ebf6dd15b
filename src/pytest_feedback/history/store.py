"""The history store: SQLite schema, migrations, and recording a run.

The connection itself (pragmas, retries, transactions) lives in `sqlitedb.py`; the queries that
read a history in `store_reads.py` (mixed into `Store`), the SQL that writes runs and aggregates
in `store_writes.py` (shared with `merge.py`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Optional

from pytest_feedback.errors import HistoryError
from pytest_feedback.history.connection import SqliteDb, describe_sqlite_error
from pytest_feedback.history.estimates import FixtureSample, Sample
from pytest_feedback.history.reads import HistoryReads, chunks
from pytest_feedback.history.records import FAILING, FixtureKey, RunRecord
from pytest_feedback.history.writes import (
    FIXTURE_STATS_INSERT,
    TEST_STATS_INSERT,
    fixture_stats_row,
    insert_details,
    insert_run,
    known_run_id,
    prune,
    replace_uses,
    test_stats_row_from_rows,
)

#: The version of `SCHEMA`. History:
#:   1 — first release: runs, run_index, run_parts, tests, results, fixtures, fixture_runs,
#:       test_fixtures, run_workers, test_stats (index test_stats_report), fixture_stats; the
#:       coverage map: map_files, map_contexts, map_lines, map_reads, map_imports.
SCHEMA_VERSION = 1

#: Columns of ``runs`` that schema 1 gained during development, with the statement adding each.
LATE_RUN_COLUMNS = {
    "loop_s": "ALTER TABLE runs ADD COLUMN loop_s REAL",
    "planned_s": "ALTER TABLE runs ADD COLUMN planned_s REAL",
    "exit_s": "ALTER TABLE runs ADD COLUMN exit_s REAL",
    "budget_s": "ALTER TABLE runs ADD COLUMN budget_s REAL",
    "predicted_s": "ALTER TABLE runs ADD COLUMN predicted_s REAL",
    "took_s": "ALTER TABLE runs ADD COLUMN took_s REAL",
}

SCHEMA = """
-- Key/value facts about this file; 'schema_version' is the version of this schema.
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Every run this history has seen, kept after retention drops its details so that the run ids in
-- the stats' recent lists keep a global identity (merging matches runs by uuid).  runs.id and the
-- run_id of every other table are ids of this table; AUTOINCREMENT: an id is never reused.
CREATE TABLE IF NOT EXISTS run_index (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid       TEXT NOT NULL UNIQUE,
    started_at REAL NOT NULL
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
    loop_s      REAL,              -- the test loop alone (what follows it, such as plugins'
                                   -- session-end work, is wall_s - collect_s - loop_s)
    planned_s   REAL,              -- serial --feedback-budget runs: what the estimates gave the
                                   -- tests it started (before calibration); loop_s / planned_s
                                   -- calibrates later budgets
    exit_s      REAL,              -- of those runs, finished_at to the process's exit (written
                                   -- afterwards by a watcher process, exitwatch.py)
    budget_s    REAL,              -- --feedback-budget runs: the budget, the plan's predicted
    predicted_s REAL,              -- wall time, and the process's start to finished_at
    took_s      REAL,              -- (took_s + exit_s: what the run took)
    git_commit  TEXT,
    git_branch  TEXT,
    git_dirty   INTEGER,           -- 1: uncommitted changes to tracked files
    python      TEXT NOT NULL,
    platform    TEXT NOT NULL,
    workers     INTEGER NOT NULL,  -- 0: no xdist
    exit_status INTEGER,
    args        TEXT NOT NULL,     -- JSON list of the command-line arguments
    rootdir     TEXT NOT NULL,
    shard       TEXT,              -- "K/N" when the run was one CI shard; on a merged run NULL
                                   -- when it holds all N shards, else the ones it holds: "1,3/4"
    pipeline    TEXT,              -- the CI pipeline that ran it ($GITHUB_RUN_ID...), see ci.py
    tests       INTEGER NOT NULL,  -- number of test results
    failed      INTEGER NOT NULL   -- results that failed or errored
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);

-- The shard runs a merged run was built from (merge.py), kept after retention so that merging a
-- shard again adds nothing.  For a shard index seen twice (a retried job) the part that finished
-- last supplies the merged run's results; results.worker of a merged run is "sK" or "sK/gwN".
CREATE TABLE IF NOT EXISTS run_parts (
    uuid        TEXT PRIMARY KEY,  -- the shard run's own uuid
    run_id      INTEGER NOT NULL,  -- run_index.id of the merged run
    shard       TEXT NOT NULL,     -- "K/N"
    started_at  REAL NOT NULL,
    finished_at REAL NOT NULL,
    wall_s      REAL NOT NULL,
    collect_s   REAL,
    workers     INTEGER NOT NULL,
    exit_status INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_parts_run ON run_parts (run_id);

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

-- What the report reads of every test (longest first, flaky or slowed down, current), without
-- scanning the recent lists: a report costs the same on 50 tests and on 50,000.
CREATE INDEX IF NOT EXISTS test_stats_report
    ON test_stats (estimate_s, last_run_id, flaky, slowdown);

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
CREATE INDEX IF NOT EXISTS map_reads_file ON map_reads (file_id);

-- Import edges between project files: static (ast of the importer) or seen while importing.
CREATE TABLE IF NOT EXISTS map_imports (
    importer INTEGER NOT NULL REFERENCES map_files (id),
    imported INTEGER NOT NULL REFERENCES map_files (id),
    PRIMARY KEY (importer, imported)
) WITHOUT ROWID;
"""

#: SQL that brings a history of version N to N + 1.
MIGRATIONS: dict[int, str] = {}

_GITIGNORE = "# Created by pytest-feedback: the history is local data, not source.\n*\n"


class Store(HistoryReads):
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
            blocker = _file_in_the_way(directory)
            if blocker is not None:
                raise HistoryError(
                    f"cannot create the directory of {self.path}: {blocker}; "
                    "choose another place with --feedback-db / --db"
                ) from exc
            raise HistoryError(
                f"cannot create {directory} ({exc.strerror}); choose a writable place with "
                "--feedback-db / --db"
            ) from exc

    def _ensure_schema(self, readonly: bool) -> None:
        try:
            version = self._read_version()
            foreign = version is None and self._has_foreign_tables(self._db.connection)
        except sqlite3.Error as exc:
            raise HistoryError(describe_sqlite_error(self.path, exc)) from exc
        if foreign:
            raise HistoryError(self._foreign_message())
        if not readonly:
            self._db.use_wal()
        if version == SCHEMA_VERSION:
            if not readonly:
                self._add_late_columns()
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
                    raise HistoryError(self._foreign_message())
                _execute_script(con, SCHEMA)
            else:
                while version < SCHEMA_VERSION:
                    _execute_script(con, MIGRATIONS[version])
                    version += 1
            con.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    def _add_late_columns(self) -> None:
        """Columns schema 1 gained before its first release (`LATE_RUN_COLUMNS`): added to a
        history written by an earlier development version."""
        try:
            for column in LATE_RUN_COLUMNS:
                if not self.has_column("runs", column):
                    with self._db.transaction() as con:
                        if not self.has_column("runs", column):
                            con.execute(LATE_RUN_COLUMNS[column])
        except sqlite3.Error as exc:
            raise HistoryError(describe_sqlite_error(self.path, exc)) from exc

    def _read_version(self) -> Optional[int]:
        con = self._db.connection
        has_meta = con.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if not has_meta:
            return None
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else None

    def _foreign_message(self) -> str:
        return (
            f"{self.path} is an SQLite file but not a pytest-feedback history; "
            "choose another file with --feedback-db / --db"
        )

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
        """Write one run in one transaction and return its id (the existing id if already here).

        A run already merged into a pipeline's run (`merge.py`) returns that run's id.
        """
        run = run.storable()
        try:
            with self._db.transaction() as con:
                existing = known_run_id(con, run.uuid)
                if existing is not None:
                    return existing
                run_id = insert_run(con, run)
                test_ids, fixture_ids = insert_details(con, run_id, run)
                replace_uses(con, run.uses, test_ids, fixture_ids)
                commit = run.git_commit if run.git_dirty is False else None
                self._update_test_stats(con, run_id, run, test_ids, commit)
                self._update_fixture_stats(con, run_id, run, fixture_ids)
                prune(con, keep_runs)
                return run_id
        except sqlite3.Error as exc:
            raise HistoryError(describe_sqlite_error(self.path, exc)) from exc

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction on this history (for `merge.py`, which writes through it)."""
        return self._db.transaction()

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
        loads = json.loads
        for test_id, t in records.items():
            runs, failures, recent_json = previous.get(test_id, (0, 0, "[]"))
            # Raw stored rows, not Sample objects: this loop runs once per test of every run.
            samples = loads(recent_json)
            samples.append(
                Sample(
                    run_id, t.outcome, t.own_s, t.setup_s, t.call_s, t.teardown_s, commit
                ).to_row()
            )
            rows.append(
                test_stats_row_from_rows(
                    test_id, runs + 1, failures + (t.outcome in FAILING), samples
                )
            )
        con.executemany(TEST_STATS_INSERT, rows)

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
            rows.append(fixture_stats_row(fixture_id, runs + 1, executions + int(count), samples))
        con.executemany(FIXTURE_STATS_INSERT, rows)


def _file_in_the_way(directory: Path) -> Optional[str]:
    """What blocks creating ``directory``: its nearest existing ancestor when not a directory."""
    for candidate in (directory, *directory.parents):
        if candidate.is_symlink() and not candidate.exists():
            return f"{candidate} is a broken symlink or a symlink loop"
        if candidate.exists():
            return None if candidate.is_dir() else f"{candidate} is a file, not a directory"
    return None


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


def _select_by_ids(
    con: sqlite3.Connection, select: str, column: str, ids: Sequence[int]
) -> dict[int, tuple[Any, ...]]:
    out: dict[int, tuple[Any, ...]] = {}
    for chunk in chunks(ids):
        marks = ",".join("?" * len(chunk))
        for row in con.execute(f"{select} WHERE {column} IN ({marks})", tuple(chunk)):
            out[row[0]] = tuple(row[1:])
    return out
