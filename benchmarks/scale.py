"""How recording and reading the history scale with the number of tests (issue 9).

    python benchmarks/scale.py                       # store at 10k/100k, pytest at 10k/50k
    python benchmarks/scale.py --pytest-sizes ''     # only the store part (~1 minute)
    python benchmarks/scale.py --sizes 5000,50000 --pytest-sizes 20000,100000  # ~5 minutes

Part 1, the store, on synthetic runs (every test with one function-scoped fixture, one module
fixture per 100 tests): writing a run into an empty history, writing the next run (the steady
state: aggregates are read, merged and rewritten), loading the estimates, reading the recent
samples of every test; the best of ``--repeat`` rounds. Linear scaling shows as a time ratio
equal to the size ratio.

Part 2, a real pytest run on a generated suite of trivial tests (100 per file), once plain and
once with ``--feedback`` (both in fresh processes, autoloaded plugins as installed): the
overhead ratio should stay flat as the suite grows.

Figures are printed; nothing is asserted. Planning and reporting join this benchmark when they
land (shards, select, report).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from pytest_feedback.history.records import (
    FixtureExecution,
    FixtureKey,
    RunRecord,
    TestRecord,
    WorkerRecord,
)
from pytest_feedback.history.store import Store

TESTS_PER_FILE = 100


def synthetic_run(n: int, index: int) -> RunRecord:
    run = RunRecord(
        uuid=f"bench-{n}-{index}",
        started_at=1.7e9 + index * 3600,
        finished_at=1.7e9 + index * 3600 + 60,
        wall_s=60.0,
        python="3.12.0",
        platform="linux-x86_64",
        rootdir="/bench",
        git_commit=f"{index:040x}",
        git_dirty=False,
    )
    run.worker_records = [WorkerRecord("main", 2.0, n)]
    item = FixtureKey("item", "function", "conftest.py::item")
    for i in range(n):
        module = f"tests/test_mod{i // TESTS_PER_FILE:05d}.py"
        nodeid = f"{module}::test_case_{i % TESTS_PER_FILE:03d}"
        seconds = 0.001 * (1 + (i * 7919 + index) % 97)
        run.tests[nodeid] = TestRecord(nodeid, "passed", 0.0001, seconds, 0.0001)
        shared = FixtureKey("catalogue", "module", f"{module}::catalogue")
        run.uses[nodeid] = [item, shared]
        run.fixtures.append(FixtureExecution(item, 0.0001, nodeid, None, 0.0001, nodeid))
        if i % TESTS_PER_FILE == 0:
            run.fixtures.append(FixtureExecution(shared, 0.05, nodeid, None, 0.01, nodeid))
    return run


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def bench_store(n: int, workdir: Path, repeat: int) -> dict[str, float]:
    """The best of ``repeat`` rounds, each on a fresh history (the least disturbed figure)."""
    first, second = synthetic_run(n, 0), synthetic_run(n, 1)
    nodeids = list(first.tests)
    best: dict[str, float] = {}
    for round_ in range(repeat):
        path = workdir / f"store-{n}-{round_}.db"
        figures = {}
        with Store(path) as store:
            figures["first write"] = timed(lambda: store.record_run(first))
            figures["next write"] = timed(lambda: store.record_run(second))
            figures["load estimates"] = timed(store.reads.load_estimates)
            figures["recent samples"] = timed(lambda: store.reads.recent_samples(nodeids))
        figures["file MB"] = path.stat().st_size / 1e6
        path.unlink()
        best = {k: min(v, best.get(k, v)) for k, v in figures.items()}
    return best


def generate_suite(n: int, root: Path) -> Path:
    suite = root / f"suite-{n}"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    body = "".join(f"def test_case_{i:03d}():\n    pass\n\n" for i in range(TESTS_PER_FILE))
    for f in range(n // TESTS_PER_FILE):
        (suite / f"test_gen{f:05d}.py").write_text(body)
    return suite


def run_pytest(suite: Path, *extra: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one pytest process."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=suite, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"pytest failed in {suite}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def bench_pytest(n: int, workdir: Path) -> dict[str, float]:
    suite = generate_suite(n, workdir)
    plain_wall, plain_cpu = run_pytest(suite)
    wall, cpu = run_pytest(suite, "--feedback", f"--feedback-db={workdir / f'run-{n}.db'}")
    return {"plain wall": plain_wall, "wall": wall, "plain cpu": plain_cpu, "cpu": cpu}


def sizes(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=sizes, default=sizes("10000,100000"))
    parser.add_argument("--pytest-sizes", type=sizes, default=sizes("10000,50000"))
    parser.add_argument("--repeat", type=int, default=2, help="store rounds; the best counts")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="feedback-scale-") as tmp:
        workdir = Path(tmp)
        print(f"store, synthetic runs ({TESTS_PER_FILE} tests a file)")
        results = {n: bench_store(n, workdir, args.repeat) for n in args.sizes}
        metrics = list(next(iter(results.values())))
        print(f"  {'tests':>8}  " + "  ".join(f"{m:>15}" for m in metrics))
        for n, figures in results.items():
            print(f"  {n:>8,}  " + "  ".join(f"{figures[m]:>15.3f}" for m in metrics))
        if len(args.sizes) > 1:
            small, large = args.sizes[0], args.sizes[-1]
            print(
                f"  ratio {large // small}x tests: "
                + "  ".join(f"{m} {results[large][m] / results[small][m]:.1f}x" for m in metrics)
            )
            per_test = {n: results[n]["next write"] / n * 1e6 for n in (small, large)}
            print(
                f"  next write per test: {per_test[small]:.1f} us at {small:,}, "
                f"{per_test[large]:.1f} us at {large:,}"
            )

        if args.pytest_sizes:
            print("\npytest on a generated suite of trivial tests, plain vs --feedback")
            print("  (CPU = user + system seconds of the pytest process: steadier than wall")
            print("  seconds on a shared machine)")
            print(
                f"  {'tests':>8}  {'plain wall':>10}  {'feedback wall':>13}  {'ratio':>5}  "
                f"{'plain cpu':>9}  {'feedback cpu':>12}  {'ratio':>5}  {'cpu/test':>9}"
            )
            for n in args.pytest_sizes:
                f = bench_pytest(n, workdir)
                print(
                    f"  {n:>8,}  {f['plain wall']:>10.2f}  {f['wall']:>13.2f}"
                    f"  {f['wall'] / f['plain wall']:>5.2f}  {f['plain cpu']:>9.2f}"
                    f"  {f['cpu']:>12.2f}  {f['cpu'] / f['plain cpu']:>5.2f}"
                    f"  {(f['cpu'] - f['plain cpu']) / n * 1e6:>6.0f} us"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
