"""The history's schema: its tables, its version, and the migrations from each older version.

Every change to the schema is a numbered migration: `SCHEMA_VERSION` goes up by one, `SCHEMA`
(what a new file is created with) changes, `MIGRATIONS` gains the step from the previous version
and `ADDED_COLUMNS` the columns it adds; docs/history-schema.md lists the versions.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Iterator, Mapping
from typing import Optional

#: The version of `SCHEMA`. The rule: every change to the schema is a numbered migration
#: (`MIGRATIONS`), tested on the previous version's sample file (tests/data/history-vN.db, see
#: tests/test_schema_history.py); a released version is never changed in place.
#:   1 — first release (tests/data/history-v1.db): runs, run_index, run_parts, tests, results,
#:       fixtures, fixture_runs, test_fixtures, run_workers, test_stats (index
#:       test_stats_report), fixture_stats; the coverage map: map_files, map_contexts,
#:       map_lines, map_reads, map_imports.
#:   2 — runs.budget_s, runs.predicted_s, runs.took_s (--feedback-budget runs).
#:   3 — when things happened and what they cost the CPU: results.start_s, results.cpu_s,
#:       fixture_runs.setup_start_s, fixture_runs.teardown_start_s, fixture_runs.setup_cpu_s;
#:       the attempts of tests run more than once in a run (table attempts); the imports
#:       that collection paid for (table collect_imports).
#:   4 — the installed distributions each map context used (table map_dists), so that a
#:       dependency upgrade selects the tests that used the upgraded distribution.
SCHEMA_VERSION = 4

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
                                   -- afterwards by a watcher process, session/exitwatch.py)
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
    start_s    REAL,               -- when its set-up started, in seconds from runs.started_at (in
                                   -- a merged run: from its shard run's run_parts.started_at)
    cpu_s      REAL,               -- CPU seconds of the thread that ran it, from the end of the
                                   -- test before it (or of collection) to its tear-down's end
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
    teardown_s    REAL,            -- NULL when the fixture was not torn down (crash)
    setup_start_s    REAL,         -- when set-up and tear-down started, like results.start_s
    teardown_start_s REAL,
    setup_cpu_s      REAL          -- CPU seconds of the thread during the set-up
);
CREATE INDEX IF NOT EXISTS fixture_runs_run ON fixture_runs (run_id);

-- Tests that ran more than once in one run: every attempt, in order (attempt 1 is the first).
-- results holds the test's final outcome; kind says why it ran again: 'rerun' (it failed and
-- was run again: --feedback-rerun, pytest-rerunfailures) or 'repeat' (run again on purpose to
-- catch a flaky new test, --feedback-new-runs).
CREATE TABLE IF NOT EXISTS attempts (
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    test_id    INTEGER NOT NULL REFERENCES tests (id),
    attempt    INTEGER NOT NULL,
    kind       TEXT NOT NULL,      -- rerun repeat
    outcome    TEXT NOT NULL,      -- as results.outcome
    duration_s REAL NOT NULL,      -- its three phases
    start_s    REAL,               -- as results.start_s
    worker     TEXT,
    PRIMARY KEY (run_id, test_id, attempt)
) WITHOUT ROWID;

-- What collection spent importing, per process: each test module and conftest, and the other
-- modules (the project's or installed) whose import took long while collecting, with the test
-- module or conftest whose import pulled them in.  Seconds include the modules each imported.
CREATE TABLE IF NOT EXISTS collect_imports (
    run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    worker  TEXT NOT NULL,         -- 'main' or the xdist worker id, as run_workers.worker
    kind    TEXT NOT NULL,         -- test (a test module) conftest module (anything else)
    name    TEXT NOT NULL,         -- rootdir-relative path (test, conftest) or dotted name
    via     TEXT,                  -- module: the test module or conftest that imported it
    seconds REAL NOT NULL,
    PRIMARY KEY (run_id, worker, kind, name)
) WITHOUT ROWID;

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

-- The coverage map (`pytest --feedback-cov`; read and written by depmap/store.py).
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

-- Installed distributions (names normalised as PEP 503 says: lower case, runs of "-_." as "-")
-- whose files a context executed or imported; the versions they had are in the map's
-- environment (`meta` key map_environment). Written with the context's other rows.
CREATE TABLE IF NOT EXISTS map_dists (
    context_id INTEGER NOT NULL REFERENCES map_contexts (id) ON DELETE CASCADE,
    dist       TEXT NOT NULL,
    PRIMARY KEY (context_id, dist)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS map_dists_dist ON map_dists (dist);
"""


#: Per version N, the SQL that brings a history of version N to N + 1 (run statement by statement
#: inside the transaction that opens the file).
MIGRATIONS: dict[int, str] = {
    1: """
ALTER TABLE runs ADD COLUMN budget_s REAL;
ALTER TABLE runs ADD COLUMN predicted_s REAL;
ALTER TABLE runs ADD COLUMN took_s REAL;
""",
    2: """
ALTER TABLE results ADD COLUMN start_s REAL;
ALTER TABLE results ADD COLUMN cpu_s REAL;
ALTER TABLE fixture_runs ADD COLUMN setup_start_s REAL;
ALTER TABLE fixture_runs ADD COLUMN teardown_start_s REAL;
ALTER TABLE fixture_runs ADD COLUMN setup_cpu_s REAL;
CREATE TABLE IF NOT EXISTS attempts (
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    test_id    INTEGER NOT NULL REFERENCES tests (id),
    attempt    INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    duration_s REAL NOT NULL,
    start_s    REAL,
    worker     TEXT,
    PRIMARY KEY (run_id, test_id, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS collect_imports (
    run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    worker  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    name    TEXT NOT NULL,
    via     TEXT,
    seconds REAL NOT NULL,
    PRIMARY KEY (run_id, worker, kind, name)
) WITHOUT ROWID;
""",
    3: """
-- Installed distributions (names normalised as PEP 503 says: lower case, runs of "-_." as "-")
-- whose files a context executed or imported; the versions they had are in the map's
-- environment (`meta` key map_environment). Written with the context's other rows.
CREATE TABLE IF NOT EXISTS map_dists (
    context_id INTEGER NOT NULL REFERENCES map_contexts (id) ON DELETE CASCADE,
    dist       TEXT NOT NULL,
    PRIMARY KEY (context_id, dist)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS map_dists_dist ON map_dists (dist);
""",
}
#: Per version N, the columns ``MIGRATIONS[N]`` adds, per table (a table it creates lists all of
#: its columns): a file of version N lacks them, and reading one without migrating it (a merge
#: input) leaves them out. tests/test_schema_history.py checks them against the sample files.
ADDED_COLUMNS: dict[int, dict[str, tuple[str, ...]]] = {
    1: {"runs": ("budget_s", "predicted_s", "took_s")},
    2: {
        "results": ("start_s", "cpu_s"),
        "fixture_runs": ("setup_start_s", "teardown_start_s", "setup_cpu_s"),
        "attempts": (
            "run_id",
            "test_id",
            "attempt",
            "kind",
            "outcome",
            "duration_s",
            "start_s",
            "worker",
        ),
        "collect_imports": ("run_id", "worker", "kind", "name", "via", "seconds"),
    },
    3: {"map_dists": ("context_id", "dist")},
}


@functools.cache
def columns_at(version: int) -> Mapping[str, frozenset[str]]:
    """Per table, the columns a history of schema ``version`` has (tables it lacks left out):
    today's schema minus what the migrations since ``version`` added."""
    con = sqlite3.connect(":memory:")
    try:
        con.executescript(SCHEMA)
        tables = [
            row[0]
            for row in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        columns = {
            table: {row[0] for row in con.execute("SELECT name FROM pragma_table_info(?)", [table])}
            for table in tables
        }
    finally:
        con.close()
    for step in range(version, SCHEMA_VERSION):
        for table, added in ADDED_COLUMNS[step].items():
            columns[table] -= set(added)
    return {table: frozenset(names) for table, names in columns.items() if names}


def read_version(con: sqlite3.Connection) -> Optional[int]:
    """The schema version stored in the file; None when it has none (empty, or not ours)."""
    has_meta = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if not has_meta:
        return None
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else None


def has_tables(con: sqlite3.Connection) -> bool:
    """Whether the file holds anything at all (a file without a version and with tables is
    someone else's)."""
    return bool(con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])


def upgrade(con: sqlite3.Connection, version: Optional[int]) -> None:
    """Bring the file to `SCHEMA_VERSION` inside the caller's transaction: create the schema
    (``version`` None: an empty file) or run the migrations from ``version``."""
    if version is None:
        execute_script(con, SCHEMA)
    else:
        while version < SCHEMA_VERSION:
            _migrate(con, version)
            version += 1
    con.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
        (str(SCHEMA_VERSION),),
    )


#: ``ALTER TABLE t ADD COLUMN c ...``: the table and the column a migration statement adds.
_ADD_COLUMN = re.compile(r"\s*ALTER\s+TABLE\s+(\w+)\s+ADD\s+COLUMN\s+(\w+)", re.IGNORECASE)


def _migrate(con: sqlite3.Connection, version: int) -> None:
    """``MIGRATIONS[version]``, leaving out a column the file has already: development builds
    of schema 1 added the budget columns in place, without a new version."""
    for statement in _statements(MIGRATIONS[version]):
        added = _ADD_COLUMN.match(statement)
        if added is not None:
            table, column = added.groups()
            present = con.execute(
                "SELECT 1 FROM pragma_table_info(?) WHERE name = ?", (table, column)
            ).fetchone()
            if present is not None:
                continue
        con.execute(statement)  # noqa: S608, RUF100 - a statement of MIGRATIONS, our SQL


def execute_script(con: sqlite3.Connection, script: str) -> None:
    """Run ``script`` statement by statement inside the open transaction.

    (``executescript`` would commit the transaction first.)
    """
    # Split here, not through `_statements`: the SQL checker (tests/test_static_safety.py)
    # follows ``script`` to every caller and proves it constant.
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            con.execute(statement)
            statement = ""
    if statement.strip():
        con.execute(statement)


def _statements(script: str) -> Iterator[str]:
    """The statements of ``script``, one at a time."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""
    if statement.strip():
        yield statement
