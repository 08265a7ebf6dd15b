"""How long `pytest-feedback report` takes on a large history. Goal (issue 3): under 1 s.

Builds a history of 50,000 tests x 200 runs (every run kept in detail: the worst case for reads),
then times the command in each format, as a subprocess like a user or CI step runs it, against a
baseline measured in the same run: `pytest-feedback --version` (interpreter and CLI start-up).

The history is written the fast way: runs 1..N-1 with bulk SQL into the store's own schema, their
per-test aggregates computed with the store's own summary functions; the last run goes through
`Store.record_run`, the code path `pytest --feedback` uses (its time is printed too).

    .venv/bin/python benchmarks/report.py [--tests 50000] [--runs 200] [--reps 5] [--db PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from pytest_feedback.history.records import (  # noqa: E402
    FixtureExecution,
    FixtureKey,
    RunRecord,
    TestRecord,
    WorkerRecord,
    test_file,
)
from pytest_feedback.history.store import Store  # noqa: E402
from pytest_feedback.history.summaries import (  # noqa: E402
    RECENT_KEEP,
    FixtureSample,
    Sample,
    summarise_fixture,
    summarise_test,
)

FIXTURES = 300
USES_PER_TEST = 3
WORKERS = 4
START = 1_750_000_000.0


class Suite:
    """A synthetic suite: node ids, a typical duration per test, a few flaky and slowed tests."""

    def __init__(self, tests: int, runs: int, seed: int = 1) -> None:
        rnd = random.Random(seed)
        self.rnd = rnd
        self.runs = runs
        self.nodeids = [
            f"tests/pkg{i % 40}/test_mod{i % 1000}.py::TestCase{i % 7}::test_case_{i}[p{i % 13}]"
            for i in range(tests)
        ]
        self.base = [rnd.lognormvariate(-4.0, 1.5) for _ in range(tests)]
        self.flaky = set(rnd.sample(range(tests), tests // 200))
        self.slowed = set(rnd.sample(range(tests), tests // 500))
        self.keys = [
            FixtureKey(
                f"fixture_{j}",
                ("function", "module", "session")[j % 3],
                f"tests/pkg{j % 40}/conftest.py::fixture_{j}",
            )
            for j in range(FIXTURES)
        ]
        self.fixture_cost = [rnd.lognormvariate(-3.0, 1.2) for _ in range(FIXTURES)]
        self.uses = [
            [(i * 7 + k * 31) % FIXTURES for k in range(USES_PER_TEST)] for i in range(tests)
        ]

    def result(self, test: int, run: int) -> tuple[str, float, float, float]:
        """outcome, setup, call, teardown of one test in one run (+-20% noise)."""
        noise = self.rnd.uniform(0.8, 1.2)
        seconds = self.base[test] * noise
        if test in self.slowed and run >= self.runs - 3:
            seconds *= 3
        outcome = "passed"
        if test in self.flaky and self.rnd.random() < 0.3:
            outcome = "failed"
        elif test % 97 == 0:
            outcome = "skipped"
            seconds = 0.0
        return outcome, seconds * 0.05, seconds * 0.9, seconds * 0.05

    def fixture_runs(self, run: int) -> Iterator[tuple[int, int, float, float]]:
        """(fixture, test index that triggered it, setup, teardown) per execution of one run."""
        for j in range(FIXTURES):
            executions = {"function": 20, "module": 8, "session": WORKERS}[self.keys[j].scope]
            for e in range(executions):
                cost = self.fixture_cost[j] * self.rnd.uniform(0.8, 1.2)
                yield j, (j * 131 + e * 17 + run) % len(self.nodeids), cost * 0.8, cost * 0.2


def build(path: Path, suite: Suite) -> tuple[float, float]:
    """Write the history; returns (seconds of the bulk part, seconds of the last record_run)."""
    started = time.perf_counter()
    Store(path).close()  # the schema, exactly as the plugin creates it
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = OFF")
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO tests (id, nodeid, file) VALUES (?, ?, ?)",
        ((i + 1, n, test_file(n)) for i, n in enumerate(suite.nodeids)),
    )
    con.executemany(
        "INSERT INTO fixtures (id, name, scope, location) VALUES (?, ?, ?, ?)",
        ((j + 1, k.name, k.scope, k.location) for j, k in enumerate(suite.keys)),
    )
    con.executemany(
        "INSERT INTO test_fixtures (test_id, fixture_id) VALUES (?, ?)",
        ((i + 1, j + 1) for i, used in enumerate(suite.uses) for j in used),
    )
    recent: list[list[Sample]] = [[] for _ in suite.nodeids]
    counts = [[0, 0] for _ in suite.nodeids]  # runs, failures
    fixture_recent: list[list[FixtureSample]] = [[] for _ in suite.keys]
    fixture_counts = [[0, 0] for _ in suite.keys]  # runs, executions
    bulk_runs = suite.runs - 1
    for run in range(1, bulk_runs + 1):
        rows = []
        failed = 0
        for i in range(len(suite.nodeids)):
            outcome, setup, call, teardown = suite.result(i, run)
            own = setup + call + teardown
            rows.append((run, i + 1, outcome, setup, call, teardown, own, f"gw{i % WORKERS}"))
            failed += outcome == "failed"
            samples = recent[i]
            samples.append(Sample(run, outcome, own, setup, call, teardown, "c0ffee"))
            if len(samples) > RECENT_KEEP:
                del samples[0]
            counts[i][0] += 1
            counts[i][1] += outcome == "failed"
        wall = sum(r[6] for r in rows) / WORKERS * 1.15
        # Every run has its id in run_index (ids are never reused; record_run takes the next).
        con.execute(
            "INSERT INTO run_index (id, uuid, started_at) VALUES (?, ?, ?)",
            (run, f"bulk-{run}", START + run * 3600),
        )
        con.execute(
            "INSERT INTO runs (id, uuid, started_at, finished_at, wall_s, collect_s, git_commit,"
            " git_branch, git_dirty, python, platform, workers, exit_status, args, rootdir,"
            " shard, tests, failed) VALUES (?, ?, ?, ?, ?, 2.5, 'c0ffee', 'main', 0, '3.11.0',"
            " 'linux-x86_64', ?, ?, '[]', '/src', NULL, ?, ?)",
            (
                run,
                f"bulk-{run}",
                START + run * 3600,
                START + run * 3600 + wall,
                wall,
                WORKERS,
                int(failed > 0),
                len(rows),
                failed,
            ),
        )
        con.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        per_fixture: dict[int, list[float]] = {}
        fixture_rows = []
        for j, test, setup, teardown in suite.fixture_runs(run):
            fixture_rows.append((run, j + 1, test + 1, test + 1, "gw0", setup, teardown))
            agg = per_fixture.setdefault(j, [0, 0.0, 0.0])
            agg[0] += 1
            agg[1] += setup
            agg[2] += teardown
        con.executemany(
            "INSERT INTO fixture_runs (run_id, fixture_id, setup_test, teardown_test, worker,"
            " setup_s, teardown_s) VALUES (?, ?, ?, ?, ?, ?, ?)",
            fixture_rows,
        )
        for j, (count, setup, teardown) in per_fixture.items():
            fixture_recent[j] = [
                *fixture_recent[j][-(RECENT_KEEP - 1) :],
                FixtureSample(run, int(count), setup, teardown),
            ]
            fixture_counts[j][0] += 1
            fixture_counts[j][1] += int(count)
        con.executemany(
            "INSERT INTO run_workers VALUES (?, ?, 2.5, ?)",
            ((run, f"gw{w}", len(rows) // WORKERS) for w in range(WORKERS)),
        )
    stats = []
    for i, samples in enumerate(recent):
        s = summarise_test(samples)
        stats.append(
            (
                i + 1,
                counts[i][0],
                counts[i][1],
                bulk_runs,
                samples[-1].outcome,
                s.estimate_s,
                s.setup_s,
                s.call_s,
                s.teardown_s,
                s.fail_rate,
                int(s.flaky),
                s.slowdown,
                json.dumps([x.to_row() for x in samples], separators=(",", ":")),
            )
        )
    con.executemany("INSERT INTO test_stats VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", stats)
    con.executemany(
        "INSERT INTO fixture_stats VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            (
                j + 1,
                c[0],
                c[1],
                f.setup_s,
                f.teardown_s,
                f.executions_per_run,
                json.dumps([x.to_row() for x in fixture_recent[j]], separators=(",", ":")),
            )
            for j, c in enumerate(fixture_counts)
            for f in [summarise_fixture(fixture_recent[j])]
        ),
    )
    con.execute("COMMIT")
    con.close()
    bulk_s = time.perf_counter() - started

    last = suite.runs
    run_record = RunRecord(
        uuid="last",
        started_at=START + last * 3600,
        finished_at=START + last * 3600 + 60,
        wall_s=60.0,
        collect_s=2.5,
        git_commit="c0ffee",
        git_branch="main",
        git_dirty=False,
        python="3.11.0",
        platform="linux-x86_64",
        workers=WORKERS,
        exit_status=0,
        rootdir="/src",
    )
    for i, nodeid in enumerate(suite.nodeids):
        outcome, setup, call, teardown = suite.result(i, last)
        run_record.tests[nodeid] = TestRecord(
            nodeid, outcome, setup, call, teardown, worker=f"gw{i % WORKERS}"
        )
        run_record.uses[nodeid] = [suite.keys[j] for j in suite.uses[i]]
    for j, test, setup, teardown in suite.fixture_runs(last):
        nodeid = suite.nodeids[test]
        run_record.fixtures.append(
            FixtureExecution(suite.keys[j], setup, nodeid, "gw0", teardown, nodeid)
        )
    run_record.worker_records = [WorkerRecord(f"gw{w}", 2.5) for w in range(WORKERS)]
    started = time.perf_counter()
    with Store(path) as store:
        store.record_run(run_record, keep_runs=suite.runs)
    return bulk_s, time.perf_counter() - started


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of ``cmd``.

    The CPU figure is what the command costs even when other processes share the machine.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--db", type=Path, help="reuse this history if it exists, else build it")
    parser.add_argument("--profile", action="store_true", help="profile one in-process report")
    args = parser.parse_args()

    tmp = None
    if args.db is None:
        tmp = tempfile.TemporaryDirectory(prefix="feedback-report-bench-")
        args.db = Path(tmp.name) / "history.db"
    if not args.db.exists():
        print(f"building {args.tests:,} tests x {args.runs} runs into {args.db} ...", flush=True)
        bulk_s, record_s = build(args.db, Suite(args.tests, args.runs))
        size = args.db.stat().st_size / 2**20
        print(
            f"  built in {bulk_s + record_s:.1f}s: {args.runs - 1} runs by bulk SQL in "
            f"{bulk_s:.1f}s, the last run by Store.record_run in {record_s:.2f}s; {size:.0f} MiB"
        )

    cli = [sys.executable, "-m", "pytest_feedback"]
    env_src = str(ROOT / "src")
    os.environ["PYTHONPATH"] = env_src + os.pathsep + os.environ.get("PYTHONPATH", "")
    variants = {
        "baseline: --version": [*cli, "--version"],
        "report (text)": [*cli, "report", "--db", str(args.db)],
        "report --format markdown": [*cli, "report", "--db", str(args.db), "--format", "markdown"],
        "report --format json": [*cli, "report", "--db", str(args.db), "--format", "json"],
        "report --format json --top 10": [
            *cli,
            "report",
            "--db",
            str(args.db),
            "--format",
            "json",
            "--top",
            "10",
        ],
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    for rep in range(args.reps + 1):  # round 0 warms the page cache
        for name, cmd in variants.items():
            elapsed, cpu = timed(cmd)
            if rep:
                times[name].append(elapsed)
                cpus[name].append(cpu)
    base = statistics.median(times["baseline: --version"])
    load = os.getloadavg()[0]
    print(
        f"pytest-feedback report on {args.tests:,} tests x {args.runs} runs "
        f"(median of {args.reps}; goal < 1 s; load average {load:.1f} on {os.cpu_count()} CPUs):"
    )
    worst = 0.0
    for name, values in times.items():
        med = statistics.median(values)
        if name.startswith("report"):
            worst = max(worst, med)
        print(
            f"  {name:<32} wall median {med:6.3f}s  min {min(values):6.3f}s"
            f"  ratio {med / base:5.2f}  cpu median {statistics.median(cpus[name]):6.3f}s"
        )
    print(f"  slowest format: {worst:.3f}s -> {'OK' if worst < 1 else 'OVER the 1 s goal'}")

    from pytest_feedback.report import build_report

    with Store.open_existing(args.db) as store:
        start = time.perf_counter()
        report = build_report(store)
        build_s = time.perf_counter() - start
    print(
        f"  in process: build_report {build_s:.3f}s ({len(report.tests):,} tests, "
        f"{len(report.slowed_down)} slowed down, {len(report.flaky)} flaky)"
    )
    if args.profile:
        import cProfile
        import pstats

        with Store.open_existing(args.db) as store:
            profiler = cProfile.Profile()
            profiler.enable()
            build_report(store)
            profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(15)
    if tmp is not None:
        tmp.cleanup()
    return 0 if math.isfinite(worst) else 1


if __name__ == "__main__":
    raise SystemExit(main())
