"""The budget benchmark's mutations, chosen within a cap: a count, seconds, a seed.

`selection.pick_mutations` finds every candidate of every file and parses each mutated file: on
sqlglot (an 11,000-line parser, thousands of candidates) that took 18 minutes before the first
test ran. Here the files are visited in a seeded order, a file's candidates are found without
parsing (`mutations_of(checked=False)`), only those on lines some test executed (the coverage
map of the suite's first history run: a mutation no test reaches breaks nothing and costs a full
run to learn it) are kept, and a drawn candidate is parsed only then. It stops at ``count``
mutations or after ``seconds``, whichever comes first; the kinds are mixed (a file gives the kinds
drawn least so far first) and a file gives at most ``per_file``.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Optional

from coverage.numbits import numbits_to_nums
from selection import Mutation, Suite, mutations_of


def covered_lines(db: Path) -> dict[str, set[int]]:
    """Per file (rootdir-relative), the lines the map says ran: in a test, or at import."""
    out: dict[str, set[int]] = {}
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT f.path, l.numbits FROM map_lines l JOIN map_files f ON f.id = l.file_id"
        ).fetchall()
        rows += con.execute(
            "SELECT path, toplevel FROM map_files WHERE toplevel IS NOT NULL"
        ).fetchall()
    for path, bits in rows:
        out.setdefault(path, set()).update(numbits_to_nums(bits))
    return out


def package_files(suite: Suite) -> list[Path]:
    """The code under test (not its tests), as `selection.pick_mutations` takes it."""
    package_dir = next(
        (p for p in (suite.root / suite.package, suite.root / "src" / suite.package) if p.is_dir()),
        None,
    )
    if package_dir is None:
        raise RuntimeError(f"{suite.name}: package {suite.package} not found")
    files = []
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(suite.root).as_posix()
        if "/tests/" in f"/{rel}" or path.name.startswith("test_") or path.name == "conftest.py":
            continue
        files.append(path)
    return files


def pick_capped(
    suite: Suite,
    count: int,
    rng: random.Random,
    seconds: float,
    covered: Optional[dict[str, set[int]]],
    per_file: int = 2,
    kinds_wanted: Optional[set[str]] = None,
) -> tuple[list[Mutation], str]:
    """At most ``count`` mutations (of ``kinds_wanted``, default all) within ``seconds``; and a
    line saying what the choice took."""
    start = time.perf_counter()
    files = package_files(suite)
    rng.shuffle(files)
    kinds: Counter[str] = Counter()
    chosen: list[Mutation] = []
    visited = 0
    for path in files:
        if len(chosen) >= count or time.perf_counter() - start > seconds:
            break
        visited += 1
        rel = path.relative_to(suite.root).as_posix()
        lines = covered.get(rel) if covered is not None else None
        if covered is not None and not lines:
            continue
        found = mutations_of(path, rel, checked=False)
        pool = [
            m
            for kind, ms in found.items()
            if kinds_wanted is None or kind in kinds_wanted
            for m in ms
            if lines is None or m.line in lines
        ]
        rng.shuffle(pool)
        taken = 0
        for mutation in sorted(pool, key=lambda m: kinds[m.kind]):  # stable: the draw's order
            if taken >= per_file or len(chosen) >= count:
                break
            if mutation.parses():
                chosen.append(mutation)
                kinds[mutation.kind] += 1
                taken += 1
    took = time.perf_counter() - start
    return chosen, (
        f"{suite.name}: {len(chosen)} mutations chosen in {took:.1f} s from {visited} of "
        f"{len(files)} files ({'lines the map covers' if covered is not None else 'no map'}; "
        f"kinds {dict(sorted(kinds.items()))})"
    )
