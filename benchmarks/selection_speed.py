"""How long deciding a selection takes for a 10,000-test map (goal: under 0.5 s, collection aside).

Builds a synthetic project (200 modules of 40 functions, 100 test files of 100 tests), commits it
to git, writes a history run and a coverage map for every test (each test executes three
functions of three modules, plus import- and collection-time code), edits three modules, then
times, best of a few repetitions:

- the whole decision as `--feedback-select` makes it: read the history and the map, find the
  changes (git and the snapshots), fingerprint the environment, decide for 10,000 node ids;
- each part on its own; and, as the baseline measured in the same run, reading the history alone
  (`Store.load_estimates`), which every planner pays anyway.

    python benchmarks/selection_speed.py [--tests 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from coverage.numbits import nums_to_numbits

from pytest_feedback.depmap.environment import fingerprint
from pytest_feedback.depmap.graph import DependencyMap
from pytest_feedback.depmap.payload import MapPayload
from pytest_feedback.depmap.store import write_map
from pytest_feedback.history.records import RunRecord, TestRecord
from pytest_feedback.history.store import Store
from pytest_feedback.selection.changes import collect_changes
from pytest_feedback.selection.selector import Selector, load_selector

T = TypeVar("T")
MODULES = 200
FUNCTIONS = 40
PER_FILE = 100


def module_text(index: int) -> str:
    body = [f'"""Module {index}."""', "", f"CONSTANT = {index}", ""]
    for f in range(FUNCTIONS):
        body += ["", f"def f{f}(x):", f"    y = x + {f}", "    if y > CONSTANT:", "        y -= 1"]
        body += ["    return y", ""]
    return "\n".join(body) + "\n"


def function_lines(f: int) -> list[int]:
    start = 4 + f * 7 + 2  # the `def` line
    return [start, start + 1, start + 2, start + 3, start + 4]


def build(root: Path, tests: int) -> list[str]:
    (root / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    for m in range(MODULES):
        (root / "pkg" / f"m{m}.py").write_text(module_text(m))
    files = (tests + PER_FILE - 1) // PER_FILE
    for t in range(files):
        lines = [f"from pkg import m{t % MODULES}", ""]
        for k in range(PER_FILE):
            lines += ["", f"def test_{k}():", f"    assert m{t % MODULES}.f0({k}) is not None", ""]
        (root / "tests" / f"test_{t}.py").write_text("\n".join(lines) + "\n")
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@b"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "synthetic"], cwd=root, check=True)
    return [f"tests/test_{t}.py::test_{k}" for t in range(files) for k in range(PER_FILE)][:tests]


def record(root: Path, db: Path, nodeids: list[str]) -> None:
    rng = random.Random(3)
    payload = MapPayload()
    toplevel = [1, 3] + [4 + f * 7 + 2 for f in range(FUNCTIONS)]
    payload.modules = {f"pkg/m{m}.py": f"pkg.m{m}" for m in range(MODULES)}
    payload.modules["pkg/__init__.py"] = "pkg"
    for m in range(MODULES):
        payload.lines[f"i:pkg/m{m}.py"] = {f"pkg/m{m}.py": nums_to_numbits(toplevel)}
    for nodeid in nodeids:
        test_path = nodeid.split("::")[0]
        k = int(nodeid.rsplit("_", 1)[1])
        files: dict[str, bytes] = {test_path: nums_to_numbits([4 + k * 4, 5 + k * 4])}
        for m in rng.sample(range(MODULES), 3):
            files[f"pkg/m{m}.py"] = nums_to_numbits(function_lines(rng.randrange(FUNCTIONS)))
        payload.lines["t:" + nodeid] = files
    for path in sorted({n.split("::")[0] for n in nodeids}):
        payload.lines["c:" + path] = {path: nums_to_numbits([1, 2])}
    now = time.time()
    run = RunRecord(uuid=str(uuid.uuid4()), started_at=now, finished_at=now + 1, wall_s=1.0)
    run.rootdir = str(root)
    run.tests = {n: TestRecord(n, "passed", 0.0, rng.random() / 10, 0.0) for n in nodeids}
    with Store(db) as store:
        store.record_run(run)
        write_map(store, payload, root, run.uuid, now)


def best(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    times: list[float] = []
    result: T | None = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    assert result is not None
    return min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="select-speed-"))
    try:
        root = work / "project"
        nodeids = build(root, args.tests)
        db = work / "history.db"
        record(root, db, nodeids)
        for m in (5, 77, 150):  # one function body line, one constant, one function body line
            path = root / "pkg" / f"m{m}.py"
            text = path.read_text()
            old = "CONSTANT = 77" if m == 77 else "    y = x + 3\n"
            new = "CONSTANT = 78" if m == 77 else "    y = x + 4\n"
            path.write_text(text.replace(old, new))

        def whole() -> int:
            selector = load_selector(db, root)
            return len(selector.decide(nodeids).selected)

        def read_history() -> int:
            with Store(db, create=False, readonly=True) as store:
                return len(store.reads.load_estimates().tests)

        def read_map() -> DependencyMap:
            with Store(db, create=False, readonly=True) as store:
                dmap = DependencyMap.load(store)
            assert dmap is not None
            return dmap

        dmap = read_map()
        with Store(db, create=False, readonly=True) as store:
            estimates = store.reads.load_estimates()
        t_whole, selected = best(args.repeat, whole)
        t_history, _ = best(args.repeat, read_history)
        t_map, _ = best(args.repeat, read_map)
        t_changes, changes = best(args.repeat, lambda: collect_changes(root, dmap))
        t_env, _ = best(args.repeat, lambda: fingerprint(root))

        def decide_only() -> int:
            fresh = read_map()  # the map caches its queries: decide on a fresh one
            start = time.perf_counter()
            Selector(fresh, estimates, changes).decide(nodeids)
            return int((time.perf_counter() - start) * 1e9) or 1

        decide_ns = min(decide_only() for _ in range(args.repeat))
        t_decide = decide_ns / 1e9
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"selection for {len(nodeids):,} mapped tests, {MODULES} modules, 3 changed files")
    print(f"  selected                      {selected:>8,} tests")
    print(f"  whole decision (as the plugin) {t_whole:8.3f} s   goal < 0.5 s: {t_whole / 0.5:.2f}x")
    print(f"    read the history (baseline)  {t_history:8.3f} s")
    print(f"    load the map                 {t_map:8.3f} s")
    print(f"    find the changes (git, diff) {t_changes:8.3f} s")
    print(f"    environment fingerprint      {t_env:8.3f} s")
    print(f"    apply the rules              {t_decide:8.3f} s")
    print(f"  whole / reading the history    {t_whole / t_history:8.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
