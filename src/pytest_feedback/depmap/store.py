"""Reads and writes of the coverage map tables: ``map_*`` in `history.schema.SCHEMA`, described in
docs/contract.md, "History schema".

A run's `MapPayload` replaces the rows of the contexts it measured and keeps every other row
(a run of a subset updates only its tests). A file whose content changed since it was recorded
is re-recorded at its new content; rows of other contexts on it are carried over to the new line
numbers (through a diff of the two snapshots) and marked outdated when they reached a changed
region, so that selection runs them again.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import sqlite3
import weakref
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from coverage.numbits import numbits_to_nums, nums_to_numbits

from pytest_feedback.depmap.environment import fingerprint
from pytest_feedback.depmap.payload import MapPayload
from pytest_feedback.depmap.source import analyse
from pytest_feedback.depmap.upgrades import DISTS_KEY, merged_facts, outdate_upgraded
from pytest_feedback.errors import HistoryError
from pytest_feedback.history.connection import describe_sqlite_error
from pytest_feedback.history.store import Store

#: Larger files keep their hash but no snapshot.
MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024
_CHUNK = 500


@dataclasses.dataclass
class FileInfo:
    path: str
    sha1: str
    text: Optional[str]
    module: Optional[str]

    @property
    def is_python(self) -> bool:
        return self.path.endswith(".py")


@dataclasses.dataclass
class WriteSummary:
    contexts: int
    tests: int
    files: int
    outdated: int


@dataclasses.dataclass(frozen=True)
class Refresh:
    """What a ``--feedback-select`` run knows when it writes the map (docs/selection.md, "The
    edit-run loop").

    Selection compared each changed file's content (``seen``) with the map's snapshot and found
    which tests the difference can affect. Every other test was proven unaffected: its run would
    execute the same lines, so its rows, moved to the new line numbers, stay exact. Of the
    affected tests, those this run did not measure are marked outdated (selected until they run
    again), whatever lines they have in the file. A file whose content is not the one selection
    saw (edited during the run) falls back to the plain rule of `_carry_over`.
    """

    #: rootdir-relative path -> sha1 of the content selection compared, of every changed file
    seen: dict[str, str]
    #: node ids of the tests selection found affected
    affected: frozenset[str]


_HAS_DISTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'map_dists'"
#: Key in the ``meta`` table under which the map keeps the environment it was recorded in.
ENVIRONMENT_KEY = "map_environment"


class MapReader:
    """The map tables of one history: small tables read at once, line rows on demand.

    Has its own read-only connection, so it outlives the `Store` it was loaded from; numbits
    stay bytes until a query decodes them.
    """

    def __init__(self, path: Path) -> None:
        try:
            self._con = sqlite3.connect(
                path.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False
            )
            con = self._con
            # The map keeps its connection for lazy reads and its users do not close it: close
            # it when the map goes (Python 3.13 warns about a connection the collector closes).
            weakref.finalize(self, con.close)
            #: context id -> (kind, label, spawned, measured, outdated)
            self.contexts: dict[int, tuple[str, str, int, int, int]] = {
                row[0]: (row[1], row[2], row[3], row[4], row[5])
                for row in con.execute(
                    "SELECT id, kind, label, spawned, measured, outdated FROM map_contexts"
                )
            }
            #: path -> (file id, sha1, toplevel numbits or None, module or None)
            self.files: dict[str, tuple[int, str, Optional[bytes], Optional[str]]] = {
                row[1]: (row[0], row[2], row[3], row[4])
                for row in con.execute("SELECT id, path, sha1, toplevel, module FROM map_files")
            }
            #: (importer file id, imported file id)
            self.imports: list[tuple[int, int]] = con.execute(
                "SELECT importer, imported FROM map_imports"
            ).fetchall()
            row = con.execute("SELECT value FROM meta WHERE key = ?", (ENVIRONMENT_KEY,)).fetchone()
            #: `environment.fingerprint` of the newest run that wrote the map ({}: not recorded).
            self.environment: dict[str, str] = json.loads(row[0]) if row else {}
            #: Whether the file has table map_dists (a schema 3 file read without migrating).
            self.has_dists = bool(con.execute(_HAS_DISTS).fetchone())
        except sqlite3.Error as exc:
            raise HistoryError(describe_sqlite_error(path, exc)) from exc
        self._path = path

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        try:
            return self._con.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(describe_sqlite_error(self._path, exc)) from exc

    def lines_of_file(self, file_id: int) -> list[tuple[int, bytes]]:
        """(context id, numbits) of every context with lines in the file."""
        return self._query(
            "SELECT context_id, numbits FROM map_lines WHERE file_id = ?", (file_id,)
        )

    def _query_in(self, select: str, column: str, ids: Sequence[object]) -> list[Any]:
        """The rows of ``select`` whose ``column`` is one of ``ids``, in chunks of placeholders
        (``select`` and ``column`` are constants of this class's callers)."""
        rows: list[Any] = []
        for start in range(0, len(ids), _CHUNK):
            chunk = tuple(ids[start : start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            rows += self._query(f"{select} WHERE {column} IN ({marks})", chunk)
        return rows

    def lines_of_contexts(self, context_ids: Sequence[int]) -> list[tuple[int, int, bytes]]:
        """(context id, file id, numbits) of the given contexts."""
        return self._query_in(
            "SELECT context_id, file_id, numbits FROM map_lines", "context_id", context_ids
        )

    def contexts_touching(self, file_ids: Sequence[int]) -> set[int]:
        """Contexts with lines in (or an import of) any of the files."""
        rows = self._query_in("SELECT DISTINCT context_id FROM map_lines", "file_id", file_ids)
        return {row[0] for row in rows}

    def reads_of_file(self, file_id: int) -> list[int]:
        return [
            r[0]
            for r in self._query("SELECT context_id FROM map_reads WHERE file_id = ?", (file_id,))
        ]

    def reads_of_contexts(self, context_ids: Sequence[int]) -> list[tuple[int, int]]:
        return self._query_in(
            "SELECT context_id, file_id FROM map_reads", "context_id", context_ids
        )

    def dists_of_contexts(self, context_ids: Sequence[int]) -> list[tuple[int, str]]:
        """(context id, distribution) of the given contexts (`dist_use`)."""
        if not self.has_dists:
            return []
        return self._query_in("SELECT context_id, dist FROM map_dists", "context_id", context_ids)

    def contexts_using(self, dists: Sequence[str]) -> list[tuple[int, str]]:
        """(context id, distribution) of the contexts that used any of ``dists``."""
        if not self.has_dists:
            return []
        return self._query_in("SELECT context_id, dist FROM map_dists", "dist", dists)

    def source(self, file_id: int) -> Optional[str]:
        rows = self._query("SELECT source FROM map_files WHERE id = ?", (file_id,))
        return decompress(rows[0][0]) if rows else None

    def close(self) -> None:
        self._con.close()


def read_file_info(rootpath: Path, path: str, module: Optional[str]) -> Optional[FileInfo]:
    """The file as it is now; None when it does not exist (any more)."""
    try:
        data = (rootpath / path).read_bytes()
    except OSError:
        return None
    text: Optional[str] = None
    if len(data) <= MAX_SNAPSHOT_BYTES:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    return FileInfo(path, hashlib.sha1(data).hexdigest(), text, module)


def compress(text: Optional[str]) -> Optional[bytes]:
    return None if text is None else zlib.compress(text.encode("utf-8"), 6)


def decompress(blob: Optional[bytes]) -> Optional[str]:
    return None if blob is None else zlib.decompress(blob).decode("utf-8")


def line_translation(old: str, new: str) -> tuple[dict[int, int], set[int]]:
    """Where each line of ``old`` is in ``new``, and the old lines in or next to a change."""
    a, b = old.splitlines(), new.splitlines()
    mapping: dict[int, int] = {}
    touched: set[int] = set()
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                mapping[i1 + k + 1] = j1 + k + 1
            continue
        if tag == "insert":
            touched.update({i1, i1 + 1})
        for i in range(i1, i2):
            touched.add(i + 1)
            target = j1 + min(i - i1, max(j2 - j1 - 1, 0)) + 1
            mapping[i + 1] = max(1, min(target, len(b)))
    return mapping, touched


def write_map(
    store: Store,
    payload: MapPayload,
    rootpath: Path,
    run_uuid: str,
    now: float,
    refresh: Optional[Refresh] = None,
) -> WriteSummary:
    """Write one run's measurements in one transaction (``refresh``: from `Refresh`)."""
    try:
        return _write(store, payload, rootpath, run_uuid, now, refresh)
    except sqlite3.Error as exc:
        raise HistoryError(describe_sqlite_error(store.path, exc)) from exc


def _write(
    store: Store,
    payload: MapPayload,
    rootpath: Path,
    run_uuid: str,
    now: float,
    refresh: Optional[Refresh],
) -> WriteSummary:
    paths: set[str] = set(refresh.seen) if refresh is not None else set()
    for files in payload.lines.values():
        paths.update(files)
    for read in payload.reads.values():
        paths.update(read)
    infos: dict[str, FileInfo] = {}
    for path in sorted(paths):
        info = read_file_info(rootpath, path, payload.modules.get(path))
        if info is not None:
            infos[path] = info
    labels = sorted({*payload.lines, *payload.reads, *payload.spawns, *payload.dists})
    outdated = 0
    current = fingerprint(rootpath, texts=True)
    with store.db.transaction() as con:
        _ensure_tables(con)
        row = con.execute("SELECT value FROM meta WHERE key = ?", (ENVIRONMENT_KEY,)).fetchone()
        previous: dict[str, str] = json.loads(row[0]) if row else {}
        if payload.dist_facts:
            current[DISTS_KEY] = merged_facts(previous.get(DISTS_KEY), payload.dist_facts)
        environment = json.dumps(current, sort_keys=True)
        con.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            (ENVIRONMENT_KEY, environment),
        )
        existing = {
            row[1]: (row[0], row[2], row[3], row[4])
            for row in con.execute("SELECT id, path, sha1, source, module FROM map_files")
        }
        fresh = [p for p, info in infos.items() if existing.get(p, (0, ""))[1] != info.sha1]
        analysed = {
            p: analyse(
                infos[p].text or "",
                infos[p].module or existing.get(p, (0, "", None, None))[3],
                p.endswith("__init__.py"),
            )
            for p in fresh
            if infos[p].is_python and infos[p].text is not None
        }
        for path in fresh:
            old = existing.get(path)
            if old is not None:
                exact = refresh is not None and refresh.seen.get(path) == infos[path].sha1
                outdated += _carry_over(
                    con, old[0], decompress(old[2]), infos[path].text, labels, exact=exact
                )
        con.executemany(
            "INSERT INTO map_files (path, sha1, source, toplevel, module) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (path) DO UPDATE SET sha1 = excluded.sha1, source = excluded.source,"
            " toplevel = excluded.toplevel, module = coalesce(excluded.module, module)",
            [
                (
                    p,
                    infos[p].sha1,
                    compress(infos[p].text),
                    nums_to_numbits(sorted(analysed[p][0])) if p in analysed else None,
                    infos[p].module,
                )
                for p in fresh
            ],
        )
        con.executemany(
            "UPDATE map_files SET module = ? WHERE path = ? AND module IS NULL",
            [(m, p) for p, m in payload.modules.items() if p in infos and p not in fresh],
        )
        file_ids: dict[str, int] = {}
        modules: dict[str, str] = {}
        for file_id, path, module in con.execute("SELECT id, path, module FROM map_files"):
            file_ids[path] = file_id
            if module:
                modules[module] = path
        context_ids = _upsert_contexts(con, payload, labels, run_uuid, now)
        if refresh is not None:
            measured = {label[2:] for label in labels if label.startswith("t:")}
            stale = [(n,) for n in sorted(refresh.affected - measured)]
            con.executemany(
                "UPDATE map_contexts SET outdated = 1 WHERE kind = 't' AND label = ?", stale
            )
            outdated += len(stale)
        _replace_rows(con, payload, context_ids, file_ids)
        _write_imports(con, payload, analysed, file_ids, modules)
        if refresh is None:
            outdated += outdate_upgraded(con, previous, current, context_ids.values())
    tests = sum(1 for label in labels if label.startswith("t:"))
    return WriteSummary(len(labels), tests, len(infos), outdated)


def _carry_over(
    con: sqlite3.Connection,
    file_id: int,
    old: Optional[str],
    new: Optional[str],
    replaced: Sequence[str],
    *,
    exact: bool = False,
) -> int:
    """Move other contexts' lines on a changed file to its new numbering; count the outdated.

    ``exact``: selection proved the contexts unaffected by this very change (`Refresh`), so none
    is outdated here; otherwise those that reached a changed region, or read the file, are."""
    keep = set(replaced)
    rows = con.execute(
        "SELECT l.context_id, c.kind || ':' || c.label, l.numbits FROM map_lines l"
        " JOIN map_contexts c ON c.id = l.context_id WHERE l.file_id = ?",
        (file_id,),
    ).fetchall()
    rows += con.execute(
        "SELECT r.context_id, c.kind || ':' || c.label, NULL FROM map_reads r"
        " JOIN map_contexts c ON c.id = r.context_id WHERE r.file_id = ?",
        (file_id,),
    ).fetchall()
    translation = line_translation(old, new) if old is not None and new is not None else None
    updates: list[tuple[bytes, int, int]] = []
    stale: set[int] = set()
    for context_id, label, bits in rows:
        if label in keep or (exact and bits is None):
            continue
        if translation is None and exact:
            continue  # no snapshot to move the lines by: they stay, as without one before
        if bits is None or translation is None:
            stale.add(context_id)  # a read file changed, or no snapshot to diff
            continue
        lines = numbits_to_nums(bits)
        if not lines:
            continue  # imported it only: import-time rules cover it
        mapping, touched = translation
        if touched.intersection(lines) and not exact:
            stale.add(context_id)
        moved = sorted({mapping.get(line, line) for line in lines})
        updates.append((nums_to_numbits(moved), context_id, file_id))
    con.executemany(
        "UPDATE map_lines SET numbits = ? WHERE context_id = ? AND file_id = ?", updates
    )
    con.executemany("UPDATE map_contexts SET outdated = 1 WHERE id = ?", [(c,) for c in stale])
    return len(stale)


def _upsert_contexts(
    con: sqlite3.Connection, payload: MapPayload, labels: Sequence[str], run_uuid: str, now: float
) -> dict[str, int]:
    rows = []
    for label in labels:
        spawned, measured = payload.spawns.get(label, [0, 0])
        rows.append((label[0], label[2:], run_uuid, now, spawned, measured))
    con.executemany(
        "INSERT INTO map_contexts (kind, label, run_uuid, recorded_at, spawned, measured,"
        " outdated) VALUES (?, ?, ?, ?, ?, ?, 0) ON CONFLICT (kind, label) DO UPDATE SET"
        " run_uuid = excluded.run_uuid, recorded_at = excluded.recorded_at,"
        " spawned = excluded.spawned, measured = excluded.measured, outdated = 0",
        rows,
    )
    wanted = set(labels)
    return {
        f"{kind}:{label}": context_id
        for context_id, kind, label in con.execute("SELECT id, kind, label FROM map_contexts")
        if f"{kind}:{label}" in wanted
    }


def _replace_rows(
    con: sqlite3.Connection,
    payload: MapPayload,
    context_ids: dict[str, int],
    file_ids: dict[str, int],
) -> None:
    ids = list(context_ids.values())
    for start in range(0, len(ids), _CHUNK):
        chunk = tuple(ids[start : start + _CHUNK])
        marks = ",".join("?" * len(chunk))
        con.execute(f"DELETE FROM map_lines WHERE context_id IN ({marks})", chunk)  # noqa: S608
        con.execute(f"DELETE FROM map_reads WHERE context_id IN ({marks})", chunk)  # noqa: S608
        con.execute(f"DELETE FROM map_dists WHERE context_id IN ({marks})", chunk)  # noqa: S608
    con.executemany(
        "INSERT INTO map_lines (context_id, file_id, numbits) VALUES (?, ?, ?)",
        [
            (context_ids[label], file_ids[path], bits)
            for label, files in payload.lines.items()
            for path, bits in files.items()
            if path in file_ids
        ],
    )
    con.executemany(
        "INSERT OR IGNORE INTO map_reads (context_id, file_id) VALUES (?, ?)",
        [
            (context_ids[label], file_ids[path])
            for label, paths in payload.reads.items()
            for path in paths
            if path in file_ids
        ],
    )
    con.executemany(
        "INSERT OR IGNORE INTO map_dists (context_id, dist) VALUES (?, ?)",
        [
            (context_ids[label], dist)
            for label, dists in payload.dists.items()
            if label in context_ids
            for dist in dists
        ],
    )


def _write_imports(
    con: sqlite3.Connection,
    payload: MapPayload,
    analysed: dict[str, tuple[set[int], set[str]]],
    file_ids: dict[str, int],
    modules: dict[str, str],
) -> None:
    """Static edges of new or changed Python files, and every edge seen while importing."""
    edges: set[tuple[int, int]] = set()
    for path, (_toplevel, names) in analysed.items():
        con.execute("DELETE FROM map_imports WHERE importer = ?", (file_ids[path],))
        for name in names:
            target = modules.get(name)
            if target is not None and target != path and target in file_ids:
                edges.add((file_ids[path], file_ids[target]))
    for importer, imported in payload.edges:
        if importer in file_ids and imported in file_ids and importer != imported:
            edges.add((file_ids[importer], file_ids[imported]))
    con.executemany(
        "INSERT OR IGNORE INTO map_imports (importer, imported) VALUES (?, ?)", sorted(edges)
    )


def _has_map_tables(con: sqlite3.Connection) -> bool:
    return bool(
        con.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'map_contexts'"
        ).fetchone()
    )


def _ensure_tables(con: sqlite3.Connection) -> None:
    """A history created before the map tables existed (same unreleased schema) gets them."""
    if not _has_map_tables(con):
        from pytest_feedback.history.schema import SCHEMA, execute_script

        execute_script(con, SCHEMA)  # every statement is CREATE ... IF NOT EXISTS


def read_map(store: Store) -> Optional[MapReader]:
    """A reader of the map in ``store``; None when no map was ever recorded."""
    if not _has_map_tables(store.db.connection):
        return None
    if not store.db.query("SELECT 1 FROM map_contexts LIMIT 1"):
        return None
    return MapReader(store.path)
