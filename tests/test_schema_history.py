"""Histories written by every schema version open, migrate in place and lose nothing; read
without being written to.

``tests/data/history-vN.db`` is a small real history written by the pytest-feedback that used
schema N. When a change needs schema N + 1:

1. before touching the schema, keep the history of the current schema: it is already here as
   ``history-vN.db`` (a released schema's file is never regenerated);
2. raise ``SCHEMA_VERSION`` to N + 1, change ``SCHEMA`` and add ``MIGRATIONS[N]`` (the SQL that
   turns N into N + 1) and ``ADDED_COLUMNS[N]`` in ``history/schema.py``; list the version in
   docs/history-schema.md;
3. write the new version's sample with the new code:
   ``python tests/data/make_history.py tests/data/history-v{N+1}.db``;
4. add N + 1 to `SAMPLES` with the facts of the new file.

The tests then check each older sample migrates to the newest schema without losing a row, and
that each version's columns are what ``schema.columns_at`` says (how a merge reads an old file).
"""

from __future__ import annotations

import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from pytest_feedback import cli
from pytest_feedback.errors import HistoryError
from pytest_feedback.history.records import RunRecord, TestRecord
from pytest_feedback.history.schema import ADDED_COLUMNS, MIGRATIONS, SCHEMA_VERSION, columns_at
from pytest_feedback.history.store import Store

DATA = Path(__file__).parent / "data"

#: Schema version -> (runs, distinct tests) in its sample history.
SAMPLES = {1: (2, 9), 2: (3, 9), 3: (3, 9), 4: (3, 9)}


def test_every_schema_version_has_a_sample() -> None:
    assert set(SAMPLES) == set(range(1, SCHEMA_VERSION + 1))
    assert set(MIGRATIONS) == set(ADDED_COLUMNS) == set(range(1, SCHEMA_VERSION))
    for version in SAMPLES:
        assert (DATA / f"history-v{version}.db").is_file()


def snapshot(path: Path) -> dict[str, tuple[list[str], Counter[tuple[object, ...]]]]:
    """Every table's columns and rows, read with plain sqlite3 (no pytest-feedback code)."""
    con = sqlite3.connect(path)
    try:
        tables = [
            row[0]
            for row in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        out = {}
        for table in tables:
            cur = con.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from the file
            out[table] = ([d[0] for d in cur.description], Counter(map(tuple, cur.fetchall())))
        return out
    finally:
        con.close()


@pytest.mark.parametrize("version", sorted(SAMPLES))
def test_an_old_history_is_migrated_in_place(tmp_path: Path, version: int) -> None:
    path = tmp_path / "history.db"
    shutil.copyfile(DATA / f"history-v{version}.db", path)
    before = snapshot(path)
    assert before["meta"][1] == Counter({("schema_version", str(version)): 1})
    runs, tests = SAMPLES[version]

    with Store(path) as store:
        assert store.reads.run_count() == runs
        estimates = store.reads.load_estimates()
        assert len(estimates.tests) == tests
        assert estimates.fixtures
        for run in store.reads.runs():
            assert len(store.reads.results(run["id"])) == run["tests"]

    after = snapshot(path)
    assert after["meta"][1][("schema_version", str(SCHEMA_VERSION))] == 1
    for table, (columns, rows) in before.items():
        if table == "meta":
            continue
        assert table in after, f"migration dropped table {table}"
        new_columns, new_rows = after[table]
        kept = [new_columns.index(c) for c in columns]
        projected = Counter(tuple(row[i] for i in kept) for row in new_rows.elements())
        assert projected == rows, f"migration changed the rows of {table}"

    # And it takes new runs as any history does.
    nodeid = next(iter(estimates.tests))
    run = RunRecord(uuid="after-migration", started_at=2e9, finished_at=2e9 + 1, wall_s=1.0)
    run.tests[nodeid] = TestRecord(nodeid, call_s=1.0)
    with Store(path) as store:
        store.record_run(run)
        assert store.reads.run_count() == runs + 1
        assert store.reads.load_estimates().tests[nodeid].runs == estimates.tests[nodeid].runs + 1


@pytest.mark.parametrize("version", sorted(SAMPLES))
def test_the_command_line_reads_every_sample(
    tmp_path: Path, version: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "history.db"
    shutil.copyfile(DATA / f"history-v{version}.db", path)
    assert cli.main(["runs", "--db", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + SAMPLES[version][0]


@pytest.mark.parametrize("version", sorted(SAMPLES))
def test_each_version_has_the_columns_the_migrations_declare(version: int) -> None:
    con = sqlite3.connect(f"file:{DATA / f'history-v{version}.db'}?mode=ro", uri=True)
    try:
        tables = [
            row[0]
            for row in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        found = {
            table: frozenset(row[1] for row in con.execute(f'PRAGMA table_info("{table}")'))
            for table in tables
        }
    finally:
        con.close()
    assert found == dict(columns_at(version))


def files_beside(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


@pytest.mark.parametrize("version", sorted(SAMPLES))
def test_reading_an_old_history_leaves_it_as_it_is(tmp_path: Path, version: int) -> None:
    path = tmp_path / "history.db"
    shutil.copyfile(DATA / f"history-v{version}.db", path)
    data, stat = path.read_bytes(), path.stat()
    runs, tests = SAMPLES[version]

    with Store(path, create=False, readonly=True) as store:
        assert store.reads.run_count() == runs
        estimates = store.reads.load_estimates()
        listed = store.reads.runs()
        results = {run["id"]: store.reads.results(run["id"]) for run in listed}
    assert len(estimates.tests) == tests
    assert estimates.fixtures
    assert all(len(results[run["id"]]) == run["tests"] for run in listed)
    assert cli.main(["report", "--db", str(path)]) == 0
    assert cli.main(["runs", "--db", str(path)]) == 0

    assert path.read_bytes() == data
    assert path.stat().st_mtime_ns == stat.st_mtime_ns
    assert files_beside(path) == ["history.db"]  # no -wal, -shm or -journal

    # What a read-only open reads is what the migrated file holds.
    with Store(path) as store:
        assert store.reads.load_estimates().tests == estimates.tests
        assert store.reads.runs() == listed


def test_reading_a_newer_history_fails_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    shutil.copyfile(DATA / f"history-v{SCHEMA_VERSION}.db", path)
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    data = path.read_bytes()
    with pytest.raises(HistoryError, match=r"newer pytest-feedback .*; upgrade pytest-feedback$"):
        Store(path, create=False, readonly=True)
    assert path.read_bytes() == data


def test_a_development_schema_1_with_the_budget_columns_migrates(tmp_path: Path) -> None:
    """Development builds of schema 1 added runs.budget_s, predicted_s and took_s in place,
    without a new version: the migration to 2 keeps what they hold instead of failing."""
    path = tmp_path / "history.db"
    shutil.copyfile(DATA / "history-v1.db", path)
    con = sqlite3.connect(path)
    with con:
        for column in ADDED_COLUMNS[1]["runs"]:
            con.execute(f"ALTER TABLE runs ADD COLUMN {column} REAL")
        con.execute("UPDATE runs SET budget_s = 5.0, predicted_s = 4.5, took_s = 4.75")
    con.close()

    with Store(path) as store:
        assert store.reads.run_count() == SAMPLES[1][0]
    con = sqlite3.connect(path)
    try:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        assert set(con.execute("SELECT budget_s, predicted_s, took_s FROM runs")) == {
            (5.0, 4.5, 4.75)
        }
    finally:
        con.close()
