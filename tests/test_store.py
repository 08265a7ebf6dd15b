"""The store: schema, idempotence, retention, estimates read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_feedback.errors import HistoryError
from pytest_feedback.history.records import FixtureExecution, FixtureKey, RunRecord, TestRecord
from pytest_feedback.history.store import SCHEMA_VERSION, Store


def make_run(
    uuid: str, started: float, tests: dict[str, float], outcome: str = "passed"
) -> RunRecord:
    run = RunRecord(uuid=uuid, started_at=started, finished_at=started + 1, wall_s=1.0)
    for nodeid, seconds in tests.items():
        run.tests[nodeid] = TestRecord(nodeid, outcome, 0.0, seconds, 0.0)
    return run


def test_schema_version_is_recorded(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        assert store.reads.run_count() == 0
    import sqlite3

    con = sqlite3.connect(tmp_path / "h.db")
    (version,) = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert int(version) == SCHEMA_VERSION


def test_a_schema_1_history_is_read_as_it_is_and_upgraded_when_written(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "h.db"
    with Store(path) as store:
        store.record_run(make_run("u1", 100.0, {"t.py::a": 0.5}))
    con = sqlite3.connect(path)
    added = ("budget_s", "predicted_s", "took_s")
    for column in added:  # as schema 1 had it
        con.execute(f"ALTER TABLE runs DROP COLUMN {column}")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with Store(path, create=False, readonly=True) as store:
        estimates = store.reads.load_estimates()
        assert (estimates.session_end_s, estimates.pace) == (0.0, 1.0)
        assert estimates.budget_end_s is None
    assert not runs_columns(path) & set(added)  # read, not migrated
    run = make_run("u2", 200.0, {"t.py::a": 0.5})
    run.collect_s, run.loop_s, run.planned_s, run.exit_s = 0.1, 0.6, 1.2, 0.2
    run.exit_status = 1  # tests failed: still a measure of the pace (an interrupted run is not)
    with Store(path) as store:
        store.record_run(run)
        assert set(added) <= runs_columns(path)
        estimates = store.reads.load_estimates()
        assert estimates.session_end_s == pytest.approx(0.3)  # 1.0 - 0.1 - 0.6
        assert estimates.pace == pytest.approx(0.5)  # a loop of 0.6 s, 1.2 s planned
        assert estimates.budget_end_s == pytest.approx(0.3)  # the budget run's own session end
        assert estimates.exit_s == pytest.approx(0.2)


def runs_columns(path: Path) -> set[str]:
    import sqlite3

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {row[1] for row in con.execute("PRAGMA table_info(runs)")}
    finally:
        con.close()


def test_recording_the_same_run_twice_adds_nothing(tmp_path: Path) -> None:
    run = make_run("u1", 100.0, {"t.py::a": 1.0})
    with Store(tmp_path / "h.db") as store:
        first = store.record_run(run)
        second = store.record_run(run)
        assert first == second
        assert store.reads.run_count() == 1
        assert store.reads.load_estimates().tests["t.py::a"].runs == 1


def test_estimates_are_robust_to_an_outlier(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        for i, seconds in enumerate([1.0, 1.1, 0.9, 30.0, 1.0]):
            store.record_run(make_run(f"u{i}", 100.0 + i, {"t.py::a": seconds}))
        estimates = store.reads.load_estimates()
    assert estimates.duration("t.py::a") == pytest.approx(1.0)


def test_unknown_tests_get_their_file_then_the_suite_estimate(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        store.record_run(make_run("u", 1.0, {"a.py::x": 1.0, "a.py::y": 3.0, "b.py::z": 10.0}))
        estimates = store.reads.load_estimates()
    assert estimates.duration("a.py::new") == pytest.approx(2.0)
    assert estimates.source("a.py::new") == "file"
    assert estimates.duration("c.py::new") == pytest.approx(3.0)
    assert estimates.source("c.py::new") == "suite"


def test_fixture_estimates_and_uses(tmp_path: Path) -> None:
    key = FixtureKey("db", "module", "conftest.py::db")
    run = make_run("u", 1.0, {"a.py::x": 0.1, "b.py::y": 0.1})
    run.fixtures = [
        FixtureExecution(key, 0.5, "a.py::x", teardown_s=0.1, teardown_test="a.py::x"),
        FixtureExecution(key, 0.7, "b.py::y", teardown_s=0.1, teardown_test="b.py::y"),
    ]
    run.uses = {"a.py::x": [key], "b.py::y": [key]}
    with Store(tmp_path / "h.db") as store:
        store.record_run(run)
        estimates = store.reads.load_estimates()
    (fixture,) = estimates.fixtures
    assert fixture.setup_s == pytest.approx(0.6)
    assert fixture.teardown_s == pytest.approx(0.1)
    assert fixture.executions_per_run == 2
    assert fixture.used_by == 2
    assert estimates.uses["a.py::x"] == [0]


def test_a_newer_schema_is_refused_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    Store(path).close()
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(HistoryError, match="newer pytest-feedback"):
        Store(path)


def test_garbage_file_is_a_history_error(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError, match="not a readable pytest-feedback history"):
        Store(path)
    assert path.read_bytes().startswith(b"this is not sqlite")  # never deleted


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (name TEXT)")
    con.commit()
    con.close()
    with pytest.raises(HistoryError, match="not a pytest-feedback history"):
        Store(path)


def test_missing_history_for_reading(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="no history at"):
        Store.open_existing(tmp_path / "none.db")


def test_fixture_uses_follow_the_latest_run(tmp_path: Path) -> None:
    db_key = FixtureKey("db", "module", "conftest.py::db")
    web_key = FixtureKey("web", "session", "conftest.py::web")
    first = make_run("u1", 1.0, {"a.py::x": 0.1, "a.py::y": 0.1})
    first.uses = {"a.py::x": [db_key], "a.py::y": [db_key]}
    second = make_run("u2", 2.0, {"a.py::x": 0.1, "a.py::y": 0.1})
    second.uses = {"a.py::x": [db_key], "a.py::y": [web_key, db_key]}
    with Store(tmp_path / "h.db") as store:
        store.record_run(first)
        store.record_run(second)
        estimates = store.reads.load_estimates()
    names = [f.name for f in estimates.fixtures]
    assert sorted(names[i] for i in estimates.uses["a.py::x"]) == ["db"]
    assert sorted(names[i] for i in estimates.uses["a.py::y"]) == ["db", "web"]


@pytest.mark.parametrize("count", [0, 1, 2, 19, 20, 21, 25])
def test_a_recent_list_is_extended_as_text_to_what_encoding_it_gives(count: int) -> None:
    import json

    from pytest_feedback.history.writes import test_stats_row_from_rows

    def rows(n: int) -> list[list[object]]:
        return [
            [
                i,
                "passed" if i % 3 else "failed",
                1e-05 * i,
                0.5,
                0.25 + i,
                0.0,
                "c0ffee" if i % 2 else None,
            ]
            for i in range(1, n + 1)
        ]

    stored = json.dumps(rows(count), separators=(",", ":"))
    new = [count + 1, "passed", 0.001, 0.0, 0.001, 0.0, None]
    from_text = test_stats_row_from_rows(1, 1, 0, [*rows(count), new], stored)
    encoded = test_stats_row_from_rows(1, 1, 0, [*rows(count), new], None)
    assert from_text == encoded
    # Text not written compactly is encoded again, never copied.
    spaced = json.dumps(rows(count))
    assert test_stats_row_from_rows(1, 1, 0, [*rows(count), new], spaced) == encoded


def test_runs_that_measured_coverage_do_not_slow_the_estimates(tmp_path: Path) -> None:
    def run(index: int, call_s: float, mapped: bool) -> RunRecord:
        record = RunRecord(f"r{index}", 1.7e9 + index, mapped=mapped)
        record.tests["t.py::test_a"] = TestRecord("t.py::test_a", call_s=call_s)
        return record

    with Store(tmp_path / "h.db") as store:
        # Only runs under coverage so far: their durations are all there is.
        store.record_run(run(0, 3.0, mapped=True))
        assert store.reads.load_estimates().tests["t.py::test_a"].call_s == 3.0
        for index in range(1, 4):
            store.record_run(run(index, 1.0, mapped=False))
        for index in range(4, 12):  # most runs map again (the edit-run loop)
            store.record_run(run(index, 3.0, mapped=True))
        estimate = store.reads.load_estimates().tests["t.py::test_a"]
        samples = store.reads.recent_samples(["t.py::test_a"])["t.py::test_a"]
    assert (estimate.call_s, estimate.slowdown) == (1.0, 1.0)
    assert [s.mapped for s in samples] == [True] + [False] * 3 + [True] * 8
    assert estimate.runs == 12
