"""How every command scales: histories of 10,000 to 100,000 tests with 200 runs (issue 25).

    python benchmarks/scale_commands.py                      # 10k and 50k (~5 minutes)
    python benchmarks/scale_commands.py --sizes 10000,100000 # the issue's sizes (~15 minutes)
    python benchmarks/scale_commands.py --keep /tmp/scale     # keep the generated histories
                                                             # there and reuse them next time

For each size it generates a history with the shape of a large real suite: a few hundred test
files in 20 packages, parametrized families (1 to 40 cases a function, some in classes), fixtures
of every scope (function, class, module, package, session), and a long tail of durations (most
tests a few milliseconds, a few hundred over a second, a handful near a minute). The history holds
``--runs`` runs (200): the last `KEEP_RUNS` with their details, as retention leaves them, and 20
samples per test. Then it measures, each in a fresh process where a user would run one:

- the end-of-run write of one more run, and loading the estimates (in this process);
- ``report`` in each format (text, markdown, json, html), ``shards 50`` (with its lower bound),
  ``workers --target 5m``, ``select --budget 5m`` (the budget plan), and ``merge`` of 50 shard
  histories into the history.

The coverage map's size and ``select`` with and without narrowing are measured by
``benchmarks/scale_map.py`` on the same generated suites (it needs their files and a map).

It prints CPU seconds (user + system: steadier than wall seconds on a shared machine), wall
seconds and peak memory (max RSS) per command, and each figure's ratio to the smallest size's, so
growth that is worse than linear shows. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_feedback.history.records import (
    FixtureExecution,
    FixtureKey,
    RunRecord,
    TestRecord,
    WorkerRecord,
)
from pytest_feedback.history.store import Store

#: Runs whose details retention keeps (the store's default).
KEEP_RUNS = 50
#: Runs written in full, so that every test has its 20 recent samples and retention has pruned.
WRITTEN_RUNS = KEEP_RUNS + 2
SHARDS = 50
PACKAGES = 20
WORKERS = 4


class Shape:
    """A generated suite's tests, their families and fixtures, and each test's typical cost."""

    def __init__(self, n: int, seed: int = 7) -> None:
        rng = random.Random(seed)
        files = max(100, n // 250)
        self.nodeids: list[str] = []
        self.base: list[float] = []
        self.uses: list[list[FixtureKey]] = []
        self.module_first: dict[str, str] = {}
        self.class_first: dict[str, str] = {}
        session = FixtureKey("database", "session", "conftest.py::database")
        per_file = n // files
        made = 0
        for f in range(files):
            package = f"tests/pkg{f % PACKAGES:02d}"
            module = f"{package}/test_mod{f:04d}.py"
            mod_fixture = FixtureKey("catalogue", "module", f"{module}::catalogue")
            pkg_fixture = FixtureKey("service", "package", f"{package}/conftest.py::service")
            count = per_file if f < files - 1 else n - made
            function = 0
            while count > 0:
                cases = min(count, rng.choice((1, 1, 1, 2, 3, 5, 10, 20, 40)))
                in_class = rng.random() < 0.3
                prefix = f"{module}::TestGroup{function}::" if in_class else f"{module}::"
                cls_fixture = FixtureKey("group", "class", f"{module}::TestGroup{function}.group")
                typical = math.exp(rng.gauss(-5.3, 1.6))  # median ~5 ms, a long tail
                if rng.random() < 0.002:
                    typical = rng.uniform(20, 60)
                for case in range(cases):
                    nodeid = (
                        f"{prefix}test_f{function}[{case}]"
                        if cases > 1
                        else (f"{prefix}test_f{function}")
                    )
                    uses = [FixtureKey("tmp", "function", "conftest.py::tmp"), mod_fixture]
                    if rng.random() < 0.5:
                        uses.append(pkg_fixture)
                    if rng.random() < 0.2:
                        uses.append(session)
                    if in_class:
                        uses.append(cls_fixture)
                        self.class_first.setdefault(prefix, nodeid)
                    self.module_first.setdefault(module, nodeid)
                    self.nodeids.append(nodeid)
                    self.base.append(typical * rng.uniform(0.7, 1.3))
                    self.uses.append(uses)
                count -= cases
                made += cases
                function += 1

    def run(self, index: int, *, tests: slice = slice(None), shard: str | None = None) -> RunRecord:
        """Run ``index`` of the suite (or one shard's slice of it), with its own noise."""
        rng = random.Random(index)
        started = 1.7e9 + index * 3600
        run = RunRecord(
            uuid=f"scale-{len(self.nodeids)}-{index}-{shard}",
            started_at=started,
            finished_at=started + 600,
            wall_s=600.0,
            python="3.12.0",
            platform="linux-x86_64",
            rootdir="/bench",
            git_commit=f"{index:040x}",
            git_branch="main",
            git_dirty=False,
            workers=WORKERS,
            shard=shard,
            pipeline=f"bench:{index}" if shard else None,
        )
        run.worker_records = [WorkerRecord(f"gw{w}", 3.0) for w in range(WORKERS)]
        paid: set[tuple[FixtureKey, str]] = set()
        for i in range(len(self.nodeids))[tests]:
            nodeid = self.nodeids[i]
            worker = f"gw{i % WORKERS}"
            outcome = "failed" if rng.random() < 0.001 else "passed"
            record = TestRecord(
                nodeid,
                outcome,
                0.0003,
                self.base[i] * rng.uniform(0.9, 1.1),
                0.0002,
                worker=worker,
                started_at=started + i * 0.01,
                cpu_s=0.001,
            )
            run.tests[nodeid] = record
            run.uses[nodeid] = self.uses[i]
            for key in self.uses[i]:
                instance = (key, worker if key.scope in ("session", "package") else nodeid)
                if key.scope == "module":
                    instance = (key, f"{worker}:{key.location}")
                if key.scope == "class":
                    instance = (key, f"{worker}:{key.location}")
                if instance in paid:
                    continue
                if key.scope != "function":
                    paid.add(instance)
                setup = {
                    "function": 0.0002,
                    "class": 0.02,
                    "module": 0.15,
                    "package": 0.8,
                    "session": 4.0,
                }[key.scope]
                run.fixtures.append(FixtureExecution(key, setup, nodeid, worker, setup / 5, nodeid))
        return run


def write_history(shape: Shape, path: Path, runs: int) -> float:
    """A ``runs``-run history; returns the seconds generation took."""
    start = time.perf_counter()
    with Store(path) as store:
        with store.transaction() as con:  # the runs retention dropped long ago
            con.executemany(
                "INSERT INTO run_index (uuid, started_at) VALUES (?, ?)",
                [(f"old-{k}", 1.6e9 + k) for k in range(max(0, runs - WRITTEN_RUNS))],
            )
        for index in range(min(runs, WRITTEN_RUNS)):
            store.record_run(shape.run(index), keep_runs=KEEP_RUNS)
    return time.perf_counter() - start


def write_shards(shape: Shape, root: Path) -> list[Path]:
    """50 shard histories of one pipeline: each holds its own shard run only, as a CI job's
    freshly recorded history does after restoring nothing."""
    n = len(shape.nodeids)
    paths = []
    for k in range(SHARDS):
        path = root / f"shard{k + 1}.db"
        chosen = slice(k * n // SHARDS, (k + 1) * n // SHARDS)
        with Store(path) as store:
            store.record_run(shape.run(10_000, tests=chosen, shard=f"{k + 1}/{SHARDS}"))
        paths.append(path)
    return paths


def measure(args: list[str], cwd: Path) -> tuple[float, float, float, str]:
    """CPU seconds, wall seconds, peak MB and the output of one command in a fresh process."""
    cmd = ["/usr/bin/time", "-f", "%U %S %M", sys.executable, "-m", "pytest_feedback", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    user, system, rss_kb = proc.stderr.strip().splitlines()[-1].split()
    return float(user) + float(system), wall, int(rss_kb) / 1024, proc.stdout


def bench(
    n: int, runs: int, root: Path, keep: Path | None = None
) -> dict[str, tuple[float, float, float]]:
    shape = Shape(n)
    history = root / f"history-{n}.db"
    kept = None if keep is None else keep / f"history-{n}-{runs}.db"
    if kept is not None and kept.is_file():
        shutil.copyfile(kept, history)  # the commands below change it: work on a copy
        made = f"copied from {kept}"
    else:
        made = f"generated in {write_history(shape, history, runs):.0f} s"
        if kept is not None:
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(history, kept)
    out: dict[str, tuple[float, float, float]] = {}
    print(
        f"  {n:,} tests: history of {runs} runs {made} ({history.stat().st_size / 1e6:.0f} MB)",
        flush=True,
    )

    with Store(history) as store:
        extra = shape.run(runs + 1)
        cpu = time.process_time()
        start = time.perf_counter()
        store.record_run(extra, keep_runs=KEEP_RUNS)
        out["end-of-run write"] = (time.process_time() - cpu, time.perf_counter() - start, 0.0)
        cpu = time.process_time()
        start = time.perf_counter()
        store.reads.load_estimates()
        out["load estimates"] = (time.process_time() - cpu, time.perf_counter() - start, 0.0)

    db = ["--db", str(history)]
    commands = {
        "report text": ["report", *db],
        "report markdown": ["report", "--format", "markdown", *db],
        "report json": ["report", "--format", "json", *db],
        "report html": ["report", "--format", "html", "-o", str(root / "report.html"), *db],
        "shards 50": ["shards", "50", "--format", "json", *db],
        "workers --target 5m": ["workers", "--target", "5m", *db],
        "select --budget 5m": ["select", "--budget", "5m", "--format", "json", *db],
    }
    for name, args in commands.items():
        cpu, wall, peak, text = measure(args, root)
        out[name] = (cpu, wall, peak)
        if name == "shards 50":
            import json

            plan = json.loads(text)
            bound = plan.get("lower_bound_s") or 0.0
            ratio = plan.get("makespan_s", 0.0) / bound if bound else float("nan")
            print(f"    shards 50: makespan / lower bound = {ratio:.4f}", flush=True)

    shards = write_shards(shape, root)
    merged = root / f"merged-{n}.db"
    shutil.copyfile(history, merged)
    out["merge 50 shards"] = measure(["merge", *map(str, shards), "-o", str(merged)], root)[:3]
    for path in shards:
        path.unlink()
    merged.unlink()
    history.unlink()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000", help="comma-separated test counts")
    parser.add_argument("--runs", type=int, default=200, help="runs in each history")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep each generated history in DIR and reuse it when it is there (generating "
        "the 100,000-test one takes minutes)",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    with tempfile.TemporaryDirectory(prefix="feedback-scale-") as tmp:
        results = {n: bench(n, args.runs, Path(tmp), args.keep) for n in sizes}
    small = sizes[0]
    print(f"\nCPU s (user + system), wall s, peak MB per command; x: CPU ratio to {small:,} tests")
    header = f"  {'command':<22}" + "".join(f"  {f'{n:,} tests':>30}" for n in sizes)
    print(header)
    for name in results[small]:
        cells = []
        for n in sizes:
            cpu, wall, peak = results[n][name]
            ratio = cpu / results[small][name][0] if results[small][name][0] else float("nan")
            peak_text = f"{peak:5.0f} MB" if peak else "        "
            cells.append(f"{cpu:7.2f} {wall:7.2f} {peak_text} {ratio:5.1f}x")
        print(f"  {name:<22}" + "".join(f"  {c:>30}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
