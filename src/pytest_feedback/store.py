"""The history store: SQLite schema, migrations, and the reads and writes of recorded runs.

The connection itself (pragmas, retries, transactions) lives in `sqlitedb.py`; this module knows
what a run, a test result and a fixture execution are.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Optional

from .errors import HistoryError
from .estimates import (
    RECENT_KEEP,
    FixtureSample,
    Sample,
    summarise_fixture,
    summarise_test,
)
from .records import FAILING, FixtureKey, RunRecord, test_file
from .sqlitedb import SqliteDb, describe_sqlite_error
from .store_reads import HistoryReads, chunks

#: The version of `SCHEMA`. History:
#:   1 — first release: runs, run_index, run_parts, tests, results, fixtures, fixture_runs,
#:       test_fixtures, run_workers, test_stats, fixture_stats.
SCHEMA_VERSION = 1

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

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------

    def record_run(self, run: RunRecord, *, keep_runs: int = 50) -> int:
        """Write one run in one transaction and return its id (the existing id if already here).

        A run already merged into a pipeline's run (`merge.py`) returns that run's id.
        """
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
        for test_id, t in records.items():
            runs, failures, recent_json = previous.get(test_id, (0, 0, "[]"))
            samples = [Sample.from_row(r) for r in json.loads(recent_json)]
            sample = Sample(run_id, t.outcome, t.own_s, t.setup_s, t.call_s, t.teardown_s, commit)
            samples.append(Sample.from_row(sample.to_row()))  # as stored
            rows.append(
                test_stats_row(test_id, runs + 1, failures + (t.outcome in FAILING), samples)
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


# -- write primitives, shared with merge.py ----------------------------------------------------

TEST_STATS_INSERT = (
    "INSERT OR REPLACE INTO test_stats (test_id, runs, failures, last_run_id, last_outcome,"
    " estimate_s, setup_s, call_s, teardown_s, fail_rate, flaky, slowdown, recent)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
FIXTURE_STATS_INSERT = (
    "INSERT OR REPLACE INTO fixture_stats (fixture_id, runs, executions, setup_s, teardown_s,"
    " executions_per_run, recent) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def test_stats_row(
    test_id: int, runs: int, failures: int, samples: Sequence[Sample]
) -> tuple[Any, ...]:
    """A `test_stats` row from a test's samples (oldest first; the newest RECENT_KEEP kept).

    Pass samples as stored (`Sample.to_row` rounds) so that a row rebuilt from the stored list
    is the same row.
    """
    samples = samples[-RECENT_KEEP:]
    summary = summarise_test(samples)
    last = samples[-1]
    return (
        test_id,
        runs,
        failures,
        last.run_id,
        last.outcome,
        summary.estimate_s,
        summary.setup_s,
        summary.call_s,
        summary.teardown_s,
        summary.fail_rate,
        int(summary.flaky),
        summary.slowdown,
        json.dumps([s.to_row() for s in samples], separators=(",", ":")),
    )


test_stats_row.__test__ = False  # type: ignore[attr-defined]


def fixture_stats_row(
    fixture_id: int, runs: int, executions: int, samples: Sequence[FixtureSample]
) -> tuple[Any, ...]:
    """A `fixture_stats` row from a fixture's samples (oldest first), as stored (rounded)."""
    samples = [FixtureSample.from_row(s.to_row()) for s in samples[-RECENT_KEEP:]]
    summary = summarise_fixture(samples)
    return (
        fixture_id,
        runs,
        executions,
        summary.setup_s,
        summary.teardown_s,
        summary.executions_per_run,
        json.dumps([s.to_row() for s in samples], separators=(",", ":")),
    )


def known_run_id(con: sqlite3.Connection, uuid: str) -> Optional[int]:
    """The id under which run ``uuid`` is known (directly, or as a part of a merged run)."""
    row = con.execute("SELECT id FROM run_index WHERE uuid = ?", (uuid,)).fetchone()
    if row is None:
        row = con.execute("SELECT run_id FROM run_parts WHERE uuid = ?", (uuid,)).fetchone()
    return None if row is None else int(row[0])


def index_run(con: sqlite3.Connection, uuid: str, started_at: float) -> int:
    """Give run ``uuid`` its id in `run_index` (ids are never reused)."""
    cur = con.execute("INSERT INTO run_index (uuid, started_at) VALUES (?, ?)", (uuid, started_at))
    assert cur.lastrowid is not None
    return cur.lastrowid


def insert_run(con: sqlite3.Connection, run: RunRecord, run_id: Optional[int] = None) -> int:
    """Insert the `runs` row of ``run`` (indexing it first unless ``run_id`` is given)."""
    if run_id is None:
        run_id = index_run(con, run.uuid, run.started_at)
    failed = sum(1 for t in run.tests.values() if t.outcome in FAILING)
    con.execute(
        "INSERT INTO runs (id, uuid, started_at, finished_at, wall_s, collect_s, git_commit,"
        " git_branch, git_dirty, python, platform, workers, exit_status, args, rootdir, shard,"
        " pipeline, tests, failed)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run_id,
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
            run.pipeline,
            len(run.tests),
            failed,
        ),
    )
    return run_id


def insert_details(
    con: sqlite3.Connection,
    run_id: int,
    run: RunRecord,
    known_tests: Optional[dict[str, int]] = None,
) -> tuple[dict[str, int], dict[FixtureKey, int]]:
    """Insert the results, fixture executions and workers of ``run`` under ``run_id``.

    Returns the ids of the tests and fixtures involved (including those in ``run.uses``);
    ``known_tests`` caches test ids across calls (see `ensure_tests`).
    """
    nodeids = set(run.tests)
    for execution in run.fixtures:
        nodeids.update(n for n in (execution.setup_test, execution.teardown_test) if n)
    nodeids.update(run.uses)
    test_ids = ensure_tests(con, sorted(nodeids), known_tests)
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
    fixture_ids = ensure_fixtures(con, sorted(keys, key=lambda k: (k.name, k.scope, k.location)))
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
    con.executemany(
        "INSERT OR REPLACE INTO run_workers (run_id, worker, collect_s, tests) VALUES (?, ?, ?, ?)",
        [(run_id, w.worker, w.collect_s, w.tests) for w in run.worker_records],
    )
    return test_ids, fixture_ids


def replace_uses(
    con: sqlite3.Connection,
    uses: dict[str, list[FixtureKey]],
    test_ids: dict[str, int],
    fixture_ids: dict[FixtureKey, int],
) -> None:
    """Set the fixtures the given tests request (replacing what was known of them)."""
    used_tests = [test_ids[n] for n in uses]
    for chunk in chunks(used_tests):
        marks = ",".join("?" * len(chunk))
        con.execute(f"DELETE FROM test_fixtures WHERE test_id IN ({marks})", tuple(chunk))  # noqa: S608
    con.executemany(
        "INSERT OR IGNORE INTO test_fixtures (test_id, fixture_id) VALUES (?, ?)",
        [(test_ids[n], fixture_ids[k]) for n, used in uses.items() for k in used],
    )


def prune(con: sqlite3.Connection, keep_runs: int) -> None:
    """Drop the details of runs beyond the newest ``keep_runs``; run_index and stats stay."""
    if keep_runs <= 0:
        return
    con.execute(
        "DELETE FROM runs WHERE id NOT IN"
        " (SELECT id FROM runs ORDER BY started_at DESC, id DESC LIMIT ?)",
        (keep_runs,),
    )


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


def ensure_tests(
    con: sqlite3.Connection, nodeids: Sequence[str], known: Optional[dict[str, int]] = None
) -> dict[str, int]:
    """The ids of ``nodeids``, added when new; ``known`` (updated) caches ids across calls."""
    if known is not None:
        known.update(ensure_tests(con, [n for n in nodeids if n not in known]))
        return {n: known[n] for n in nodeids}
    con.executemany(
        "INSERT OR IGNORE INTO tests (nodeid, file) VALUES (?, ?)",
        [(n, test_file(n)) for n in nodeids],
    )
    ids: dict[str, int] = {}
    for chunk in chunks(nodeids):
        marks = ",".join("?" * len(chunk))
        for test_id, nodeid in con.execute(
            f"SELECT id, nodeid FROM tests WHERE nodeid IN ({marks})",  # noqa: S608
            tuple(chunk),
        ):
            ids[nodeid] = test_id
    return ids


def ensure_fixtures(con: sqlite3.Connection, keys: Sequence[FixtureKey]) -> dict[FixtureKey, int]:
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
    for chunk in chunks(ids):
        marks = ",".join("?" * len(chunk))
        for row in con.execute(f"{select} WHERE {column} IN ({marks})", tuple(chunk)):
            out[row[0]] = tuple(row[1:])
    return out
