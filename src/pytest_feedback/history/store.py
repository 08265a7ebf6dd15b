"""The history store: opening a history file (creating or migrating it), and recording a run.

The connection itself (pragmas, retries, transactions) lives in `connection.py`, the schema and
its migrations in `schema.py`, the queries that read a history in `reads.py` (``store.reads``),
the SQL that writes runs and aggregates in `writes.py` (shared with `merge.py`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Generic, Optional, TypeVar, overload

from pytest_feedback.errors import HistoryError
from pytest_feedback.history import schema
from pytest_feedback.history.connection import SqliteDb, chunks, describe_sqlite_error
from pytest_feedback.history.estimates import Estimates
from pytest_feedback.history.reads import HistoryReads
from pytest_feedback.history.records import FAILING, FixtureKey, RunRecord, both_outcomes
from pytest_feedback.history.schema import SCHEMA_VERSION
from pytest_feedback.history.summaries import BOTH_IN_RUN, FixtureSample, sample_row
from pytest_feedback.history.writes import (
    FIXTURE_STATS_INSERT,
    TEST_STATS_INSERT,
    TEST_STATS_UPDATE,
    fixture_stats_row,
    insert_details,
    insert_run,
    known_run_id,
    prune,
    replace_uses,
    test_stats_row_from_rows,
)

_GITIGNORE = "# Created by pytest-feedback: the history is local data, not source.\n*\n"


__all__ = ["SCHEMA_VERSION", "HistoryRead", "Store", "read_estimates"]


def _ignore_in_git(directory: Path) -> None:
    """Give a ``.pytest-feedback`` directory its ``.gitignore`` (everything in it is local data:
    the history, shard files a CI script puts beside it), also when something else created the
    directory (a CI script's ``mkdir -p``). A directory we cannot write to is left alone: the
    write of the history itself says so."""
    if directory.name != ".pytest-feedback" or not directory.is_dir():
        return
    ignore = directory / ".gitignore"
    if not ignore.exists():
        with contextlib.suppress(OSError):
            ignore.write_text(_GITIGNORE, encoding="utf-8")


T = TypeVar("T")


class Store:
    """A pytest-feedback history file: ``reads`` answers the queries, `record_run` writes.

    ``readonly``: the file is only read, never altered, migrated or switched to another journal
    mode; an older schema is migrated in an in-memory copy.
    """

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
        if not readonly:
            _ignore_in_git(self.path.parent)
        self._db = SqliteDb(self.path, readonly=readonly)
        try:
            self._ensure_schema(readonly)
        except BaseException:
            self._db.close()
            raise
        #: The queries this history answers.
        self.reads = HistoryReads(self._db)

    @classmethod
    def open_existing(cls, path: Path) -> Store:
        """Open a history for reading only; a missing file is an error, never silently created."""
        return cls(path, create=False, readonly=True)

    def _prepare_directory(self) -> None:
        directory = self.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
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
            version = schema.read_version(self._db.connection)
            foreign = version is None and schema.has_tables(self._db.connection)
        except sqlite3.Error as exc:
            raise HistoryError(describe_sqlite_error(self.path, exc)) from exc
        if foreign:
            raise HistoryError(self._foreign_message())
        if version is not None and version > SCHEMA_VERSION:
            raise HistoryError(
                f"{self.path} was written by a newer pytest-feedback (schema {version}, this "
                f"one reads up to {SCHEMA_VERSION}); upgrade pytest-feedback"
            )
        if readonly:
            if version is None:
                raise HistoryError(
                    f"{self.path} holds no history yet (an empty file); record one with "
                    "`pytest --feedback`, or point --db at an existing file"
                )
            if version < SCHEMA_VERSION:  # read an up-to-date copy; the file stays as it is
                self._db.into_memory()
                with self._db.transaction() as con:
                    schema.upgrade(con, version)
            return
        self._db.use_wal()
        if version == SCHEMA_VERSION:
            return
        with self._db.transaction() as con:
            # Another process may have created or migrated it while we waited for the lock.
            version = schema.read_version(con)
            if version is None and schema.has_tables(con):
                raise HistoryError(self._foreign_message())
            schema.upgrade(con, version)

    def _foreign_message(self) -> str:
        return (
            f"{self.path} is an SQLite file but not a pytest-feedback history; "
            "choose another file with --feedback-db / --db"
        )

    def close(self) -> None:
        self._db.close()

    @property
    def db(self) -> SqliteDb:
        """The connection, for modules that own tables of this schema (depmap/store.py)."""
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
        marks = sample_marks(run)
        previous = _select_by_ids(
            con, "SELECT test_id, runs, failures, recent FROM test_stats", "test_id", list(records)
        )
        rows = []  # tests new to the stats
        updates = []  # tests with a row: the row's values, then its id
        loads = json.loads
        for test_id, t in records.items():
            known = previous.get(test_id)
            runs, failures, recent_json = (0, 0, "[]") if known is None else known
            # Raw stored rows, not Sample objects: this loop runs once per test of every run.
            samples = loads(recent_json)
            samples.append(
                sample_row(
                    run_id,
                    t.outcome,
                    t.own_s,
                    t.setup_s,
                    t.call_s,
                    t.teardown_s,
                    commit,
                    marks.get(t.nodeid) if marks else None,
                    run.mapped,
                )
            )
            row = test_stats_row_from_rows(
                test_id, runs + 1, failures + (t.outcome in FAILING), samples, recent_json
            )
            if known is None:
                rows.append(row)
            else:
                updates.append((*row[1:], test_id))
        # An UPDATE rewrites the row in place; INSERT OR REPLACE would delete it and insert it.
        con.executemany(TEST_STATS_UPDATE, updates)
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


def sample_marks(run: RunRecord) -> dict[str, str]:
    """Per test of ``run`` with flakiness evidence, its sample's mark (`Sample.mark`): both
    outcomes within the run (its attempts), and the fingerprint of what it reaches."""
    if not run.attempts and not run.reach:
        return {}
    both = both_outcomes(run.attempts)
    return {
        nodeid: (BOTH_IN_RUN if nodeid in both else "") + run.reach.get(nodeid, "")
        for nodeid in both | set(run.reach)
    }


def _file_in_the_way(directory: Path) -> Optional[str]:
    """What blocks creating ``directory``: its nearest existing ancestor when not a directory."""
    for candidate in (directory, *directory.parents):
        if candidate.is_symlink() and not candidate.exists():
            return f"{candidate} is a broken symlink or a symlink loop"
        if candidate.exists():
            return None if candidate.is_dir() else f"{candidate} is a file, not a directory"
    return None


def _select_by_ids(
    con: sqlite3.Connection, select: str, column: str, ids: Sequence[int]
) -> dict[int, tuple[Any, ...]]:
    out: dict[int, tuple[Any, ...]] = {}
    for chunk in chunks(ids):
        marks = ",".join("?" * len(chunk))
        for row in con.execute(f"{select} WHERE {column} IN ({marks})", tuple(chunk)):
            out[row[0]] = tuple(row[1:])
    return out


@dataclasses.dataclass(frozen=True)
class HistoryRead(Generic[T]):
    """What `read_estimates` found."""

    path: Path
    #: The history's estimates; empty ones when there is no readable history.
    estimates: Estimates
    #: What the caller's ``also`` read from the open history (None when not read).
    also: Optional[T] = None
    #: There is no history file.
    missing: bool = False
    #: Why the history could not be read.
    error: Optional[Exception] = None

    @property
    def reason(self) -> Optional[str]:
        """Why the estimates are empty, in a few words; None when the history was read."""
        if self.missing:
            return f"no history at {self.path}"
        if self.error is not None:
            return f"the history cannot be read ({type(self.error).__name__}: {self.error})"
        return None


@overload
def read_estimates(path: Path) -> HistoryRead[None]: ...
@overload
def read_estimates(path: Path, also: Callable[[Store], T]) -> HistoryRead[T]: ...
def read_estimates(path: Path, also: Optional[Callable[[Store], Any]] = None) -> HistoryRead[Any]:
    """Open the history at ``path`` for reading, else say why not: never raises.

    ``also`` reads more from the same open history (the map, runs-since counts); an error there
    is the history's error too.
    """
    if not path.is_file():
        return HistoryRead(path, Estimates({}), missing=True)
    try:
        with Store(path, create=False, readonly=True) as store:
            estimates = store.reads.load_estimates()
            extra = also(store) if also is not None else None
    except Exception as exc:  # a broken history must never break the caller
        return HistoryRead(path, Estimates({}), error=exc)
    return HistoryRead(path, estimates, extra)
