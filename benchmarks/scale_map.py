"""The coverage map at scale (issue 25): its size on disk, and ``select`` with and without
narrowing, on the generated suites of ``scale_commands.py``.

    python benchmarks/scale_map.py --sizes 10000,100000 --keep /tmp/scale   # ~10 minutes

For each size it writes the suite's project to a temporary git repository: 400 source modules
of 200 lines (a module constant, functions, one function that reads the constant) and the test
files of `scale_commands.Shape` (parametrized families, classes). It records a map of it through
the real writer (`depmap.store.write_map`, in chunks of 5,000 tests as xdist workers' payloads
would arrive): each test executes its own line and 12 lines in each of 30 to 300 source modules
(uniform; 165 on average), and the import and collection contexts a run records. The map is
written into a copy of the 200-run history (``--keep`` reuses the one ``scale_commands.py``
kept), and the map's size on disk is printed per test and per file a test reaches.

Then, each in a fresh process: ``select`` after a change to a function's body (no narrowing:
the tests that ran the line), and after a change to the module constant (import-time: narrowing
replaces it by the lines that name the constant). CPU seconds (user + system), wall seconds and
peak memory, with the ratio to the first size. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from coverage.numbits import nums_to_numbits
from scale_commands import Shape, measure, write_history

from pytest_feedback.depmap.payload import MapPayload
from pytest_feedback.depmap.store import write_map
from pytest_feedback.history.store import Store

MODULES = 400
LINES = 200
#: Files a test reaches beyond its own: uniform in this range (the issue's 30-300).
REACH = (30, 300)
CHUNK = 5_000
CHANGED = "src/pkg/mod007.py"


def module_text(k: int, limit: int = 5, body: int = 10) -> str:
    """Line 1: the constant; then ``def fN`` on even lines and its body on odd ones; the last
    function reads the constant."""
    funcs = "".join(
        f"def f{n}(x):\n    return x + {body if n == 10 else n}\n" for n in range(LINES // 2 - 2)
    )
    return f"LIMIT = {limit}\n{funcs}def g(x):\n    return x < LIMIT\n"


def test_files(nodeids: list[str]) -> dict[str, str]:
    """The text of each test file, naming its classes, functions and parameters."""
    cases: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    for nodeid in nodeids:
        path, *names = nodeid.split("::")
        cls = names[0] if len(names) == 2 else ""
        func = names[-1].split("[", 1)[0]
        family = cases[path]
        family[(cls, func)] = family.get((cls, func), 0) + 1
    out = {}
    for path, functions in cases.items():
        lines = ["import pytest", "", "from pkg import mod000", ""]
        for (cls, func), count in functions.items():
            indent, me = ("    ", "self, ") if cls else ("", "")
            if cls:
                lines.append(f"class {cls}:")
            if count > 1:
                lines.append(f"{indent}@pytest.mark.parametrize('case', range({count}))")
                lines.append(f"{indent}def {func}({me}case):")
            else:
                lines.append(f"{indent}def {func}({me.rstrip(', ')}):")
            lines += [f"{indent}    assert mod000.f1(1) == 2", ""]
        out[path] = "\n".join(lines) + "\n"
    return out


def write_project(root: Path, shape: Shape) -> None:
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "__init__.py").write_text("")
    for k in range(MODULES):
        (root / "src" / "pkg" / f"mod{k:03d}.py").write_text(module_text(k))
    for path, text in test_files(shape.nodeids).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    (root / "conftest.py").write_text("")
    for args in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "suite"],
    ):
        subprocess.run(["git", *args], cwd=root, check=True)


def write_the_map(store: Store, root: Path, shape: Shape) -> int:
    """The map of every test, in chunks; returns the (test, file) pairs written."""
    rng = random.Random(25)
    modules = [f"src/pkg/mod{k:03d}.py" for k in range(MODULES)]
    files = sorted({n.split("::")[0] for n in shape.nodeids})
    pairs = 0
    body = [2 * n + 3 for n in range(LINES // 2 - 1)]  # each function's `return` line
    # Six consecutive functions, their `def` and `return` lines: one block per start.
    blocks = [
        nums_to_numbits(sorted({*body[k : k + 6], *(b - 1 for b in body[k : k + 6])}))
        for k in range(len(body) - 6)
    ]
    own = nums_to_numbits([5])
    for start in range(0, len(shape.nodeids), CHUNK):
        payload = MapPayload()
        if start == 0:
            for path in modules:
                payload.lines["i:" + path] = {path: nums_to_numbits([1, *range(2, LINES, 2)])}
                payload.modules[path] = path[4:-3].replace("/", ".")
            for path in files:
                payload.lines["c:" + path] = {path: nums_to_numbits([1, 3])}
                payload.lines["i:" + path] = {path: nums_to_numbits([1, 3])}
                payload.edges.append([path, modules[0]])
        for nodeid in shape.nodeids[start : start + CHUNK]:
            reached = {nodeid.split("::")[0]: own}
            for path in rng.sample(modules, rng.randint(*REACH)):
                reached[path] = blocks[int(rng.random() * len(blocks))]
            payload.lines["t:" + nodeid] = reached
            pairs += len(reached)
        write_map(store, payload, root, "bench-map", time.time())
    return pairs


def selected(text: str) -> int:
    return len(json.loads(text)["selected"])


def bench(n: int, root: Path, keep: Path | None) -> dict[str, tuple[float, float, float]]:
    shape = Shape(n)
    project = root / f"project-{n}"
    write_project(project, shape)
    history = root / f"history-{n}.db"
    kept = None if keep is None else keep / f"history-{n}-200.db"
    if kept is not None and kept.is_file():
        shutil.copyfile(kept, history)
    else:
        write_history(shape, history, 200)
    before = history.stat().st_size
    start = time.perf_counter()
    with Store(history) as store:
        pairs = write_the_map(store, project, shape)
        store.db.query("PRAGMA wal_checkpoint(TRUNCATE)")
    size = history.stat().st_size - before
    print(
        f"  {n:,} tests: map of {pairs:,} (test, file) pairs written in "
        f"{time.perf_counter() - start:.0f} s: {size / 1e6:,.0f} MB on disk, "
        f"{size / n / 1e3:.1f} kB per test, {size / pairs:.0f} B per file a test reaches",
        flush=True,
    )
    out: dict[str, tuple[float, float, float]] = {"map MB on disk": (size / 1e6, 0.0, 0.0)}
    db = ["--db", str(history), "--rootdir", str(project), "--format", "json"]
    changed = project / CHANGED
    changed.write_text(module_text(7, body=11))
    cpu, wall, peak, text = measure(["select", *db], project)
    out["select (no narrowing)"] = (cpu, wall, peak)
    print(f"    body change: {selected(text):,} tests selected", flush=True)
    changed.write_text(module_text(7, limit=6))
    cpu, wall, peak, text = measure(["select", *db], project)
    out["select (narrowing)"] = (cpu, wall, peak)
    print(f"    constant change: {selected(text):,} tests selected", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000", help="comma-separated test counts")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="where scale_commands.py kept its histories (history-N-200.db)",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    with tempfile.TemporaryDirectory(prefix="feedback-scale-map-") as tmp:
        results = {n: bench(n, Path(tmp), args.keep) for n in sizes}
    small = sizes[0]
    print(f"\nCPU s, wall s, peak MB per command; x: CPU ratio to {small:,} tests")
    for name in results[small]:
        cells = []
        for n in sizes:
            cpu, wall, peak = results[n][name]
            ratio = cpu / results[small][name][0] if results[small][name][0] else float("nan")
            cells.append(f"{cpu:7.2f} {wall:7.2f} {peak:5.0f} MB {ratio:5.1f}x")
        print(f"  {name:<22}" + "".join(f"  {c:>30}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
