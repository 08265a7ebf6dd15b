"""Writing to a history: the SQL that inserts runs, results and aggregates.

`Store.record_run` writes one run through these; `merge.py` writes merged runs and rebuilt
aggregates through the same functions, inside one transaction on the connection it is given.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, Optional

from pytest_feedback.history.connection import chunks
from pytest_feedback.history.records import FAILING, FixtureKey, RunRecord, test_file
from pytest_feedback.history.summaries import (
    BOTH_IN_RUN,
    RECENT_KEEP,
    FixtureSample,
    Sample,
    summarise_fixture,
    summary_values,
)

_SQLITE_INT_MAX = 2**63 - 1

TEST_STATS_INSERT = (
    "INSERT OR REPLACE INTO test_stats (test_id, runs, failures, last_run_id, last_outcome,"
    " estimate_s, setup_s, call_s, teardown_s, fail_rate, flaky, slowdown, recent)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: `TEST_STATS_INSERT` for a test that has a row: its values but the id, then the id.
TEST_STATS_UPDATE = (
    "UPDATE test_stats SET runs = ?, failures = ?, last_run_id = ?, last_outcome = ?,"
    " estimate_s = ?, setup_s = ?, call_s = ?, teardown_s = ?, fail_rate = ?, flaky = ?,"
    " slowdown = ?, recent = ? WHERE test_id = ?"
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
    return test_stats_row_from_rows(test_id, runs, failures, [s.to_row() for s in samples], None)


_dumps = json.JSONEncoder(separators=(",", ":")).encode


def test_stats_row_from_rows(
    test_id: int, runs: int, failures: int, rows: list[list[Any]], stored: Optional[str]
) -> tuple[Any, ...]:
    """`test_stats_row` over stored sample rows (`Sample.to_row`), without building objects.

    ``stored``: the stored JSON of all rows but the last (what ``rows[:-1]`` was read from);
    the new list's JSON is then cut from it rather than encoded again (the same text).
    """
    kept = len(rows)
    del rows[:-RECENT_KEEP]
    recent = None if stored is None else _appended(stored, kept - len(rows), rows[-1], kept - 1)
    if recent is None:
        recent = _dumps(rows)
    # A sample that failed and passed within its run is marked "~": one look at the text.
    in_run = BOTH_IN_RUN in recent
    # A sample of a run that measured coverage ends with its flag: ``...,1]``.
    mapped = ",1]" in recent
    estimate, setup, call, teardown, fail_rate, flaky, slowdown = summary_values(
        rows, in_run, mapped
    )
    last = rows[-1]
    return (
        test_id,
        runs,
        failures,
        last[0],
        last[1],
        estimate,
        setup,
        call,
        teardown,
        fail_rate,
        int(flaky),
        slowdown,
        recent,
    )


def _appended(stored: str, dropped: int, row: list[Any], count: int) -> Optional[str]:
    """``_dumps(rows[dropped:] + [row])`` where ``stored`` is ``_dumps(rows)`` of ``count`` rows
    (None when ``stored`` may not be that text: written otherwise, or strings that need escapes).

    Encoding a test's recent samples again (floats printed back) is most of the cost of writing
    its stats; the rows a run keeps are already there, as text, in the stored list.
    """
    if count == 0:
        return "[" + _dumps(row) + "]" if stored == "[]" else None
    if (
        " " in stored
        or "\\" in stored
        or not stored.isascii()
        or not stored.startswith("[[")
        or not stored.endswith("]]")
        or stored.count("],[") != count - 1
    ):
        return None
    if dropped >= count:
        return "[" + _dumps(row) + "]"
    start = 1
    for _ in range(dropped):
        start = stored.index("],[", start) + 2
    return "[" + stored[start:-1] + "," + _dumps(row) + "]"


test_stats_row.__test__ = False  # type: ignore[attr-defined]
test_stats_row_from_rows.__test__ = False  # type: ignore[attr-defined]


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
        "INSERT INTO runs (id, uuid, started_at, finished_at, wall_s, collect_s, loop_s,"
        " planned_s, exit_s, budget_s, predicted_s, took_s, git_commit, git_branch, git_dirty,"
        " python, platform, workers, exit_status, args, rootdir, shard, pipeline, tests, failed)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run_id,
            run.uuid,
            run.started_at,
            run.finished_at,
            run.wall_s,
            run.collect_s,
            run.loop_s,
            run.planned_s,
            run.exit_s,
            run.budget_s,
            run.predicted_s,
            run.took_s,
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
    """Insert the results, fixture executions, workers and collection's imports of ``run`` under
    ``run_id``.

    Returns the ids of the tests and fixtures involved (including those in ``run.uses``);
    ``known_tests`` caches test ids across calls (see `ensure_tests`).
    """
    nodeids = set(run.tests)
    for execution in run.fixtures:
        nodeids.update(n for n in (execution.setup_test, execution.teardown_test) if n)
    nodeids.update(run.uses)
    nodeids.update(a.nodeid for a in run.attempts)
    test_ids = ensure_tests(con, sorted(nodeids), known_tests)
    base = run.started_at
    con.executemany(
        "INSERT OR REPLACE INTO results (run_id, test_id, outcome, setup_s, call_s,"
        " teardown_s, own_s, worker, start_s, cpu_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                None if t.started_at is None else t.started_at - base,
                t.cpu_s,
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
        " setup_s, teardown_s, setup_start_s, teardown_start_s, setup_cpu_s)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                run_id,
                fixture_ids[e.key],
                test_ids.get(e.setup_test) if e.setup_test else None,
                test_ids.get(e.teardown_test) if e.teardown_test else None,
                e.worker,
                e.setup_s,
                e.teardown_s,
                None if e.setup_at is None else e.setup_at - base,
                None if e.teardown_at is None else e.teardown_at - base,
                e.setup_cpu_s,
            )
            for e in run.fixtures
        ],
    )
    con.executemany(
        "INSERT OR REPLACE INTO run_workers (run_id, worker, collect_s, tests) VALUES (?, ?, ?, ?)",
        [(run_id, w.worker, w.collect_s, w.tests) for w in run.worker_records],
    )
    con.executemany(
        "INSERT OR REPLACE INTO collect_imports (run_id, worker, kind, name, via, seconds)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(run_id, i.worker, i.kind, i.name, i.via, i.seconds) for i in run.imports],
    )
    if run.attempts:
        con.executemany(
            "INSERT OR REPLACE INTO attempts (run_id, test_id, attempt, kind, outcome,"
            " duration_s, start_s, worker) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    test_ids[a.nodeid],
                    a.attempt,
                    a.kind,
                    a.outcome,
                    a.duration_s,
                    None if a.started_at is None else a.started_at - base,
                    a.worker,
                )
                for a in run.attempts
            ],
        )
    return test_ids, fixture_ids


def replace_uses(
    con: sqlite3.Connection,
    uses: dict[str, list[FixtureKey]],
    test_ids: dict[str, int],
    fixture_ids: dict[FixtureKey, int],
) -> None:
    """Set the fixtures the given tests request (replacing what was known of them).

    A test's list rarely changes between runs, so only the lists that differ are rewritten.
    """
    wanted = {test_ids[n]: {fixture_ids[k] for k in used} for n, used in uses.items()}
    current: dict[int, set[int]] = {}
    for chunk in chunks(list(wanted)):
        marks = ",".join("?" * len(chunk))
        for test_id, fixture_id in con.execute(
            f"SELECT test_id, fixture_id FROM test_fixtures WHERE test_id IN ({marks})",  # noqa: S608
            tuple(chunk),
        ):
            current.setdefault(test_id, set()).add(fixture_id)
    changed = [t for t, fixtures in wanted.items() if current.get(t, set()) != fixtures]
    for chunk in chunks(changed):
        marks = ",".join("?" * len(chunk))
        con.execute(f"DELETE FROM test_fixtures WHERE test_id IN ({marks})", tuple(chunk))  # noqa: S608
    con.executemany(
        "INSERT OR IGNORE INTO test_fixtures (test_id, fixture_id) VALUES (?, ?)",
        [(t, f) for t in changed for f in sorted(wanted[t])],
    )


def prune(con: sqlite3.Connection, keep_runs: int) -> None:
    """Drop the details of runs beyond the newest ``keep_runs``; run_index and stats stay."""
    if keep_runs <= 0:
        return
    keep_runs = min(keep_runs, _SQLITE_INT_MAX)  # more than that is "keep all"
    con.execute(
        "DELETE FROM runs WHERE id NOT IN"
        " (SELECT id FROM runs ORDER BY started_at DESC, id DESC LIMIT ?)",
        (keep_runs,),
    )


def ensure_tests(
    con: sqlite3.Connection, nodeids: Sequence[str], known: Optional[dict[str, int]] = None
) -> dict[str, int]:
    """The ids of ``nodeids``, added when new; ``known`` (updated) caches ids across calls."""
    if known is not None:
        known.update(ensure_tests(con, [n for n in nodeids if n not in known]))
        return {n: known[n] for n in nodeids}
    # Most tests of a run are known already: look them up first, insert only the new ones (in
    # the given order, so that they get the same ids as inserting all would give them).
    ids = _test_ids(con, nodeids)
    if len(ids) < len(nodeids):
        new = [n for n in nodeids if n not in ids]
        con.executemany(
            "INSERT OR IGNORE INTO tests (nodeid, file) VALUES (?, ?)",
            [(n, test_file(n)) for n in new],
        )
        ids.update(_test_ids(con, new))
    return ids


def _test_ids(con: sqlite3.Connection, nodeids: Sequence[str]) -> dict[str, int]:
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
