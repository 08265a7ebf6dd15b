"""Seconds to open a history and answer a query from the coverage map of a 10,000-test suite.

Writes a synthetic map (400 project files of 200 lines; each test executes lines in 25 of them;
collection and import contexts as a real run records them) through the real writer, then times,
in a fresh process state each repetition: open the store, `DependencyMap.load`, and one query
(`tests_reaching` a file's lines, or `dependencies` of a test). Goal (issue 4): under 0.5 s.

    .venv/bin/python benchmarks/map_load.py [--tests 10000] [--reps 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from coverage.numbits import nums_to_numbits

from pytest_feedback.depmap.graph import DependencyMap
from pytest_feedback.depmap.payload import MapPayload
from pytest_feedback.depmap.store import write_map
from pytest_feedback.history.store import Store

FILES = 400
LINES = 200
FILES_PER_TEST = 25
TESTS_PER_MODULE = 50


def build(root: Path, tests: int) -> Path:
    rng = random.Random(4)
    (root / "pkg").mkdir(parents=True)
    modules = [f"pkg/mod{i:03d}.py" for i in range(FILES)]
    for path in modules:
        body = "\n".join(f"def f{n}(x):\n    return x + {n}" for n in range(LINES // 2))
        (root / path).write_text(f"import os\n{body}\n")
    payload = MapPayload()
    test_files = [f"tests/test_{i:04d}.py" for i in range(tests // TESTS_PER_MODULE)]
    (root / "tests").mkdir()
    for path in test_files:
        (root / path).write_text("from pkg import mod000\n\n\ndef test():\n    pass\n")
        payload.lines["c:" + path] = {path: nums_to_numbits([1, 4])}
        payload.lines["i:" + path] = {path: nums_to_numbits([1, 4])}
        payload.edges.append([path, rng.choice(modules)])
    for path in modules:
        payload.lines["i:" + path] = {path: nums_to_numbits(range(1, LINES, 2))}
        payload.modules[path] = path[:-3].replace("/", ".")
    for n in range(tests):
        test_file = test_files[n // TESTS_PER_MODULE]
        files = {test_file: nums_to_numbits([5])}
        for path in rng.sample(modules, FILES_PER_TEST):
            start = rng.randrange(2, LINES - 20, 2)
            files[path] = nums_to_numbits(range(start, start + 12))
        payload.lines[f"t:{test_file}::test_{n}"] = files
    db = root / "history.db"
    with Store(db) as store:
        write_map(store, payload, root, "bench", time.time())
    return db


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="feedback-map-load-") as tmp:
        start = time.perf_counter()
        db = build(Path(tmp), args.tests)
        print(
            f"map of {args.tests:,} tests x {FILES_PER_TEST} files written in "
            f"{time.perf_counter() - start:.2f}s ({db.stat().st_size / 1e6:.1f} MB)"
        )
        loads, reaching, deps, toplevel = [], [], [], []
        for _ in range(args.reps):
            start = time.perf_counter()
            with Store.open_existing(db) as store:
                dmap = DependencyMap.load(store)
            assert dmap is not None
            loaded = time.perf_counter()
            found = dmap.tests_reaching("pkg/mod007.py", {40, 41, 42})
            queried = time.perf_counter()
            nodeid = next(iter(sorted(dmap.mapped_tests())))
            assert dmap.dependencies(nodeid) is not None
            done = time.perf_counter()
            importers = dmap.tests_reaching("pkg/mod007.py", {1})  # import-time line
            loads.append(loaded - start)
            toplevel.append(time.perf_counter() - done + (loaded - start))
            reaching.append(queried - start)
            deps.append(done - queried + (loaded - start))
        print(f"  load                          median {statistics.median(loads):.3f}s")
        print(
            f"  load + tests_reaching (lines)  median {statistics.median(reaching):.3f}s"
            f"  ({len(found):,} tests reach it)  goal < 0.5s"
        )
        print(f"  load + dependencies(one test) median {statistics.median(deps):.3f}s  goal < 0.5s")
        print(
            f"  load + tests_reaching (import-time line) median {statistics.median(toplevel):.3f}s"
            f"  ({len(importers):,} tests)  goal < 0.5s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
