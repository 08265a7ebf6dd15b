"""A thin wrapper around one SQLite connection: pragmas, transactions, retries, error wording.

The domain store (`store.py`) sits on top; nothing here knows about tests or runs.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pytest_feedback.errors import HistoryError

#: How long a writer waits for another process's transaction before giving up.
BUSY_TIMEOUT_S = 60.0


#: The hint every message ends with when the fix is to use another file.
CHOOSE_ANOTHER = "choose another file with --feedback-db / --db"


def describe_sqlite_error(path: Path, exc: sqlite3.Error) -> str:
    """One line that names the history file, the problem and what to do about it."""
    text = str(exc)
    if "not a database" in text or "malformed" in text or "disk image" in text:
        return (
            f"{path} is not a readable pytest-feedback history ({text}); "
            f"move it aside or {CHOOSE_ANOTHER}"
        )
    if "readonly" in text or "read-only" in text:
        return f"{path} is read-only ({text}); make it writable or {CHOOSE_ANOTHER}"
    if "locked" in text or "busy" in text:
        return f"{path} stayed locked by another process for {BUSY_TIMEOUT_S:.0f}s ({text}); retry"
    if "unable to open" in text:
        return (
            f"cannot open {path} ({text}); check that the directory exists and is writable, "
            f"or {CHOOSE_ANOTHER}"
        )
    if "full" in text:
        return f"cannot write {path} ({text}); free some disk space or {CHOOSE_ANOTHER}"
    return f"cannot use {path} ({text}); check the file and its disk, or {CHOOSE_ANOTHER}"


#: Placeholders per statement when a query lists ids (SQLite allows at most 999 in old builds).
CHUNK = 500


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def read_uri(path: Path, *, settled: bool = False) -> str:
    """The URI that opens ``path`` read-only: ``mode=ro`` never writes the file itself.

    ``settled``: the caller knows no process writes the file (a merge input, a CI artifact).
    Then, when nothing waits to be recovered beside it (no ``-wal`` or ``-journal`` file),
    ``immutable=1`` reads it without the shared-memory file: SQLite creates no ``-wal`` or
    ``-shm`` file beside a write-ahead-logged history (a read-only connection could not remove
    them again on close).
    """
    uri = path.resolve().as_uri() + "?mode=ro"
    if settled and not any(
        path.with_name(path.name + suffix).exists() for suffix in ("-wal", "-journal")
    ):
        uri += "&immutable=1"
    return uri


class SqliteDb:
    """One connection to one SQLite file, in autocommit mode with explicit transactions."""

    def __init__(self, path: Path, *, readonly: bool = False, settled: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        try:
            if readonly:
                self._con = sqlite3.connect(
                    read_uri(path, settled=settled),
                    uri=True,
                    timeout=BUSY_TIMEOUT_S,
                    isolation_level=None,
                )
            else:
                self._con = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self._con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._con.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise HistoryError(describe_sqlite_error(path, exc)) from exc

    def into_memory(self) -> None:
        """Go on with an in-memory copy of the file (sqlite3's backup API) and close the file.

        What is done to the copy (migrating an older schema so that a read-only open can read
        it) never reaches the file.
        """
        memory = sqlite3.connect(":memory:", isolation_level=None)
        try:
            self._con.backup(memory)
            memory.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            memory.close()
            raise HistoryError(describe_sqlite_error(self.path, exc)) from exc
        self._con.close()
        self._con = memory

    def use_wal(self) -> None:
        """Switch to write-ahead logging: readers never wait for the writer.

        The journal mode is stored in the file, so callers do this only once they know the file
        is theirs: a stranger's SQLite file must come out of a failed open unchanged.
        """
        try:
            self._retry(lambda: self._con.execute("PRAGMA journal_mode = WAL").fetchone())
            self._con.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise HistoryError(describe_sqlite_error(self.path, exc)) from exc

    def _retry(self, action: Any) -> Any:
        """Run ``action``; retry on 'database is locked' that the busy handler did not absorb."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        delay = 0.01
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, begun IMMEDIATE so that writers queue instead of deadlocking."""
        try:
            self._retry(lambda: self._con.execute("BEGIN IMMEDIATE"))
        except sqlite3.Error as exc:
            raise HistoryError(describe_sqlite_error(self.path, exc)) from exc
        try:
            yield self._con
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        try:
            self._retry(lambda: self._con.execute("COMMIT"))
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._con.execute("ROLLBACK")
            raise HistoryError(describe_sqlite_error(self.path, exc)) from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._con.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(describe_sqlite_error(self.path, exc)) from exc

    def query_dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        try:
            cur = self._con.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        except sqlite3.Error as exc:
            raise HistoryError(describe_sqlite_error(self.path, exc)) from exc

    @property
    def connection(self) -> sqlite3.Connection:
        return self._con

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._con.close()
