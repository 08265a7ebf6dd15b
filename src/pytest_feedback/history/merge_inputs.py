"""Reading the histories a merge combines, whatever schema version wrote them, never writing them.

`HistoryView` reads one history through a plain connection: an input opened read-only, or the
output inside the merge's transaction.  A history written by an older pytest-feedback merges
without being migrated: it is read by its version's columns (`schema.columns_at`), and the
columns and tables that version lacks read as their defaults.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from pytest_feedback.errors import HistoryError
from pytest_feedback.history.connection import SqliteDb, describe_sqlite_error
from pytest_feedback.history.records import (
    AttemptRecord,
    FixtureExecution,
    FixtureKey,
    ImportRecord,
    RunRecord,
    TestRecord,
    WorkerRecord,
)
from pytest_feedback.history.schema import SCHEMA_VERSION, columns_at, read_version
from pytest_feedback.history.summaries import FixtureSample

#: The runs columns a merge reads, with the value an older schema's missing column reads as.
#: Not ``planned_s`` and ``exit_s``: a budget run's calibration belongs to the machine that ran
#: it, not to the target's (a merged-in run keeps their default, None).
RUN_COLUMNS: dict[str, Any] = {
    "id": None,
    "uuid": None,
    "started_at": 0.0,
    "finished_at": 0.0,
    "wall_s": 0.0,
    "collect_s": None,
    "loop_s": None,
    "git_commit": None,
    "git_branch": None,
    "git_dirty": None,
    "python": "",
    "platform": "",
    "workers": 0,
    "exit_status": None,
    "args": "[]",
    "rootdir": "",
    "shard": None,
    "pipeline": None,
}


#: JSON number types (bool excluded) of the seconds in a stored sample.
_NUMBERS = frozenset({int, float})


@dataclasses.dataclass(frozen=True)
class PartInfo:
    """One shard run folded into a merged run (a `run_parts` row)."""

    uuid: str
    shard: str
    started_at: float
    finished_at: float
    wall_s: float
    collect_s: Optional[float]
    workers: int
    exit_status: Optional[int]

    @property
    def index(self) -> int:
        return shard_index(self.shard)[0]


def shard_index(shard: Optional[str]) -> tuple[int, int]:
    """``"2/4"`` -> (2, 4); (0, 0) for anything else (no shard, a merged run's "1,3/4")."""
    if not shard:
        return 0, 0
    k, _, n = shard.partition("/")
    if not (k.isdigit() and n.isdigit()) or not 1 <= int(k) <= int(n):
        return 0, 0
    return int(k), int(n)


@dataclasses.dataclass
class TestStats:
    runs: int
    failures: int
    recent: str

    def rows(self) -> list[list[Any]]:
        """The recent samples as stored: [run_id, outcome, own_s, setup_s, call_s, teardown_s,
        commit] (later schema versions may append fields)."""
        return [
            r
            for r in _json_list(self.recent)
            if type(r) is list
            and len(r) >= 7
            and type(r[2]) in _NUMBERS
            and type(r[3]) in _NUMBERS
            and type(r[4]) in _NUMBERS
            and type(r[5]) in _NUMBERS
        ]

    __test__ = False


@dataclasses.dataclass
class FixtureStats:
    runs: int
    executions: int
    samples: list[FixtureSample]


class HistoryView:
    """One history's runs, stats and details, keyed by its own ids (translated by the merge)."""

    def __init__(
        self,
        con: sqlite3.Connection,
        path: Path,
        *,
        version: int = SCHEMA_VERSION,
        is_output: bool = False,
    ) -> None:
        self.con = con
        self.path = path
        self.is_output = is_output
        #: Per table, the columns the history's schema version has.
        self._columns = columns_at(version)
        try:
            self._load()
        except sqlite3.Error as exc:
            raise HistoryError(describe_sqlite_error(path, exc)) from exc

    @classmethod
    def open_input(cls, path: Path) -> tuple[HistoryView, SqliteDb]:
        """Open an input read-only: it is never written, not even migrated, and no ``-wal`` or
        ``-shm`` file appears beside it (nothing writes a merge's inputs meanwhile)."""
        if not path.is_file():
            raise HistoryError(f"no history at {path}; pass the history files to merge")
        db = SqliteDb(path, readonly=True, settled=True)
        try:
            con = db.connection
            version = _version(con, path)
            if version > SCHEMA_VERSION:
                raise HistoryError(
                    f"{path} was written by a newer pytest-feedback (schema {version}, this one "
                    f"reads up to {SCHEMA_VERSION}); upgrade pytest-feedback to merge it"
                )
            return cls(con, path, version=version), db
        except BaseException:
            db.close()
            raise

    # -- loading -----------------------------------------------------------------------------

    def _load(self) -> None:
        #: Runs with details, by id.
        self.runs: dict[int, dict[str, Any]] = {}
        for row in self._select("runs", RUN_COLUMNS):
            row["args"] = _json_list(row["args"])
            self.runs[int(row["id"])] = row
        #: id -> (uuid, started_at) of every run known here, details or not.
        self.index: dict[int, tuple[str, float]] = {}
        for row in self._select("run_index", {"id": None, "uuid": None, "started_at": 0.0}):
            self.index[int(row["id"])] = (str(row["uuid"]), float(row["started_at"]))
        for run_id, run in self.runs.items():
            self.index[run_id] = (str(run["uuid"]), float(run["started_at"]))
        #: Merged run id -> the shard runs it was built from.
        self.parts: dict[int, list[PartInfo]] = {}
        part_columns: dict[str, Any] = {f.name: None for f in dataclasses.fields(PartInfo)}
        part_columns["run_id"] = None
        part_columns["workers"] = 0
        for row in self._select("run_parts", part_columns):
            run_id = int(row.pop("run_id"))
            self.parts.setdefault(run_id, []).append(PartInfo(**row))
        self.nodeids: dict[int, str] = {
            int(r["id"]): str(r["nodeid"]) for r in self._select("tests", {"id": 0, "nodeid": ""})
        }
        self.fixture_keys: dict[int, FixtureKey] = {
            int(r["id"]): FixtureKey(str(r["name"]), str(r["scope"]), str(r["location"]))
            for r in self._select(
                "fixtures", {"id": 0, "name": "", "scope": "function", "location": ""}
            )
        }

    def _select(self, table: str, columns: dict[str, Any], where: str = "") -> list[dict[str, Any]]:
        """Rows of ``table`` as dicts; columns the history's version lacks read as their
        default (and a table it lacks as no rows)."""
        present = self._columns.get(table)
        if present is None:
            return []
        names = list(columns)
        exprs = [name if name in present else "NULL" for name in names]
        sql = f"SELECT {', '.join(exprs)} FROM {table} {where}"  # noqa: S608 (names are ours)
        out = []
        for values in self.con.execute(sql):
            row = dict(zip(names, values))
            for name in names:
                if row[name] is None and name not in present:
                    row[name] = columns[name]
            out.append(row)
        return out

    # -- stats -------------------------------------------------------------------------------

    def test_stats(self) -> dict[str, TestStats]:
        """Per test: its counters and its recent list, still as JSON text (parsed on demand)."""
        rows = self._select("test_stats", {"test_id": 0, "runs": 0, "failures": 0, "recent": "[]"})
        out = {}
        for row in rows:
            nodeid = self.nodeids.get(int(row["test_id"]))
            if nodeid is not None:
                out[nodeid] = TestStats(int(row["runs"]), int(row["failures"]), row["recent"])
        return out

    def fixture_stats(self) -> Iterator[tuple[FixtureKey, FixtureStats]]:
        rows = self._select(
            "fixture_stats", {"fixture_id": 0, "runs": 0, "executions": 0, "recent": "[]"}
        )
        for row in rows:
            key = self.fixture_keys.get(int(row["fixture_id"]))
            if key is None:
                continue
            samples = [FixtureSample.from_row(r[:4]) for r in _json_list(row["recent"])]
            yield key, FixtureStats(int(row["runs"]), int(row["executions"]), samples)

    def uses(self) -> dict[str, list[FixtureKey]]:
        out: dict[str, list[FixtureKey]] = {}
        for row in self._select("test_fixtures", {"test_id": 0, "fixture_id": 0}):
            nodeid = self.nodeids.get(int(row["test_id"]))
            key = self.fixture_keys.get(int(row["fixture_id"]))
            if nodeid is not None and key is not None:
                out.setdefault(nodeid, []).append(key)
        return out

    # -- details -----------------------------------------------------------------------------

    def record(self, run_id: int) -> RunRecord:
        """Run ``run_id`` with its results, fixture executions, workers and collection's imports,
        as a `RunRecord`."""
        meta = dict(self.runs[run_id])
        meta.pop("id")
        meta["git_dirty"] = None if meta["git_dirty"] is None else bool(meta["git_dirty"])
        run = RunRecord(**meta)
        where = f"WHERE run_id = {int(run_id)}"
        result_columns = {
            "test_id": 0,
            "outcome": "passed",
            "setup_s": 0.0,
            "call_s": 0.0,
            "teardown_s": 0.0,
            "own_s": None,
            "worker": None,
            "start_s": None,
            "cpu_s": None,
        }
        for row in self._select("results", result_columns, where):
            nodeid = self.nodeids.get(int(row["test_id"]))
            if nodeid is None:
                continue
            phases = float(row["setup_s"]) + float(row["call_s"]) + float(row["teardown_s"])
            own = phases if row["own_s"] is None else float(row["own_s"])
            run.tests[nodeid] = TestRecord(
                nodeid,
                str(row["outcome"]),
                float(row["setup_s"]),
                float(row["call_s"]),
                float(row["teardown_s"]),
                fixture_overhead_s=phases - own,
                worker=row["worker"],
                started_at=_at(run.started_at, row["start_s"]),
                cpu_s=None if row["cpu_s"] is None else float(row["cpu_s"]),
            )
        fixture_columns = {
            "fixture_id": 0,
            "setup_test": None,
            "teardown_test": None,
            "worker": None,
            "setup_s": 0.0,
            "teardown_s": None,
            "setup_start_s": None,
            "teardown_start_s": None,
            "setup_cpu_s": None,
        }
        for row in self._select("fixture_runs", fixture_columns, where + " ORDER BY rowid"):
            key = self.fixture_keys.get(int(row["fixture_id"]))
            if key is None:
                continue
            run.fixtures.append(
                FixtureExecution(
                    key,
                    float(row["setup_s"]),
                    self._nodeid(row["setup_test"]),
                    row["worker"],
                    None if row["teardown_s"] is None else float(row["teardown_s"]),
                    self._nodeid(row["teardown_test"]),
                    _at(run.started_at, row["setup_start_s"]),
                    _at(run.started_at, row["teardown_start_s"]),
                    None if row["setup_cpu_s"] is None else float(row["setup_cpu_s"]),
                )
            )
        worker_columns = {"worker": "main", "collect_s": 0.0, "tests": 0}
        for row in self._select("run_workers", worker_columns, where):
            run.worker_records.append(
                WorkerRecord(str(row["worker"]), float(row["collect_s"]), int(row["tests"]))
            )
        import_columns = {"worker": "main", "kind": "", "name": "", "via": None, "seconds": 0.0}
        for row in self._select("collect_imports", import_columns, where):
            run.imports.append(
                ImportRecord(
                    str(row["worker"]),
                    str(row["kind"]),
                    str(row["name"]),
                    None if row["via"] is None else str(row["via"]),
                    float(row["seconds"]),
                )
            )
        attempt_columns = {
            "test_id": 0,
            "attempt": 1,
            "kind": "rerun",
            "outcome": "passed",
            "duration_s": 0.0,
            "start_s": None,
            "worker": None,
        }
        for row in self._select("attempts", attempt_columns, where + " ORDER BY test_id, attempt"):
            nodeid = self.nodeids.get(int(row["test_id"]))
            if nodeid is not None:
                run.attempts.append(
                    AttemptRecord(
                        nodeid,
                        int(row["attempt"]),
                        str(row["kind"]),
                        str(row["outcome"]),
                        float(row["duration_s"]),
                        _at(run.started_at, row["start_s"]),
                        row["worker"],
                    )
                )
        return run

    def _nodeid(self, test_id: Optional[int]) -> Optional[str]:
        return None if test_id is None else self.nodeids.get(int(test_id))


def _version(con: sqlite3.Connection, path: Path) -> int:
    try:
        version = read_version(con)
    except sqlite3.Error as exc:
        raise HistoryError(describe_sqlite_error(path, exc)) from exc
    if version is None:
        raise HistoryError(
            f"{path} is not a pytest-feedback history (no schema version); "
            "pass files written by `pytest --feedback`"
        )
    return version


def _at(started_at: float, offset: Any) -> Optional[float]:
    """The Unix time of a stored offset from its run's start (None stays None)."""
    return None if offset is None else started_at + float(offset)


def _json_list(text: Any) -> list[Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return []
    return value if isinstance(value, list) else []
