"""What a test reaches, as one fingerprint: the files the coverage map says it depends on, at
their current content. Two runs with the same fingerprint ran the same code; a test that failed
in one and passed in the other is flaky on that evidence (`history.summaries.flaky_evidence`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_feedback.history.store import Store

#: Hex digits of a fingerprint kept in a sample (48 bits: a collision between two states of one
#: test's files is not a concern).
FINGERPRINT_DIGITS = 12


def has_map(store: Store) -> bool:
    """Whether the history holds a map of any test (one indexed probe)."""
    return bool(store.db.query("SELECT 1 FROM map_contexts WHERE kind = 't' LIMIT 1"))


def reach_fingerprints(store: Store, rootpath: Path, nodeids: Iterable[str]) -> dict[str, str]:
    """The fingerprint of each of ``nodeids`` the map knows; {} without a map."""
    wanted = list(nodeids)
    if not wanted:
        return {}
    # Imported here, not at the top: every recorded run asks `has_map`, and the graph pulls in
    # networkx and coverage.py (a quarter of a second) that a run without a map must not pay.
    from pytest_feedback.depmap.graph import DependencyMap

    graph = DependencyMap.load(store)
    if graph is None:
        return {}
    digests: dict[str, str] = {}
    out = {}
    for nodeid in wanted:
        deps = graph.dependencies(nodeid)
        if deps is None:
            continue
        paths = sorted({*deps.files, *deps.reads, *deps.collection_time})
        text = "\n".join(f"{path}\0{_digest(rootpath, path, digests)}" for path in paths)
        out[nodeid] = hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[
            :FINGERPRINT_DIGITS
        ]
    return out


def _digest(rootpath: Path, path: str, cache: dict[str, str]) -> str:
    found = cache.get(path)
    if found is None:
        try:
            found = hashlib.sha1((rootpath / path).read_bytes()).hexdigest()
        except OSError:
            found = "missing"
        cache[path] = found
    return found
