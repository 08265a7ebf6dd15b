"""Benchmark: merging three CI shard histories of a 2,000-test suite (target: under 2 s).

Each shard restored the same history (``--history-runs`` earlier full runs, as a CI cache would
hold) and recorded its own shard run; the merge folds the three into the restored history, and
separately into a fresh file.  The baseline, measured in the same run, is recording one full
2,000-test run with `Store.record_run`.

    python benchmarks/merge.py [--tests 2000] [--history-runs 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pytest_feedback.history.merge import merge_histories
from pytest_feedback.history.records import (
    FixtureExecution,
    FixtureKey,
    RunRecord,
    TestRecord,
    WorkerRecord,
)
from pytest_feedback.history.store import Store

TARGET_S = 2.0


def make_run(
    uuid: str,
    started: float,
    nodeids: list[str],
    rng: random.Random,
    *,
    shard: str | None = None,
) -> RunRecord:
    run = RunRecord(
        uuid=uuid,
        started_at=started,
        finished_at=started + 60,
        wall_s=60.0,
        collect_s=2.0,
        git_commit="ab" * 20 if shard else f"{int(started):040x}",
        git_dirty=False,
        python="3.12.1",
        platform="linux-x86_64",
        workers=2,
        exit_status=0,
        args=["tests"],
        rootdir="/ci/project",
        shard=shard,
        pipeline="bench:1" if shard else None,
    )
    modules = sorted({n.split("::")[0] for n in nodeids})
    keys = {m: FixtureKey("data", "module", f"{m}::data") for m in modules}
    session = FixtureKey("server", "session", "conftest.py::server")
    for i, nodeid in enumerate(nodeids):
        outcome = "failed" if rng.random() < 0.01 else "passed"
        worker = f"gw{i % 2}"
        run.tests[nodeid] = TestRecord(
            nodeid, outcome, 0.001, rng.expovariate(1 / 0.05), 0.001, worker=worker
        )
        run.uses[nodeid] = [keys[nodeid.split("::")[0]], session]
    for m in modules:
        first = next(n for n in nodeids if n.startswith(m))
        run.fixtures.append(FixtureExecution(keys[m], 0.2, first, "gw0", 0.01, first))
    run.fixtures.append(FixtureExecution(session, 1.0, nodeids[0], "gw0", 0.1, None))
    run.worker_records = [WorkerRecord("gw0", 2.0, 0), WorkerRecord("gw1", 2.1, 0)]
    return run


#: CPU seconds of each timed action, by label (the machine may be shared: wall time varies).
CPU: dict[str, list[float]] = {}


def timed(action: Callable[[], object], label: str = "") -> float:
    cpu = time.process_time()
    start = time.perf_counter()
    action()
    elapsed = time.perf_counter() - start
    CPU.setdefault(label, []).append(time.process_time() - cpu)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--history-runs", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(1)
    nodeids = [f"tests/test_m{i // 40:03d}.py::test_{i}" for i in range(args.tests)]

    with tempfile.TemporaryDirectory(prefix="feedback-bench-merge-") as tmp:
        root = Path(tmp)
        base = root / "base.db"
        with Store(base) as store:
            for r in range(args.history_runs):
                store.record_run(make_run(f"h{r}", 1000.0 * r, nodeids, rng))
        shard_runs = [
            make_run(f"s{k}", 1e6 + k, nodeids[k - 1 :: 3], rng, shard=f"{k}/3") for k in (1, 2, 3)
        ]
        shards = []
        for k, run in enumerate(shard_runs, 1):
            path = root / f"shard{k}.db"
            shutil.copy(base, path)
            with Store(path) as store:
                store.record_run(run)
            shards.append(path)

        baseline, into_restored, into_fresh, again = [], [], [], []
        for i in range(args.repeat):
            one = root / f"one{i}.db"
            shutil.copy(base, one)
            with Store(one) as store:
                full = make_run(f"full{i}", 2e6, nodeids, rng)
                baseline.append(timed(lambda s=store, r=full: s.record_run(r), "baseline"))
            restored = root / f"restored{i}.db"
            shutil.copy(base, restored)
            into_restored.append(timed(lambda o=restored: merge_histories(shards, o), "restored"))
            again.append(timed(lambda o=restored: merge_histories(shards, o), "again"))
            fresh = root / f"fresh{i}.db"
            into_fresh.append(timed(lambda o=fresh: merge_histories(shards, o), "fresh"))

        with Store(root / "restored0.db") as store:
            merged = store.reads.runs()[0]
            assert merged["tests"] == args.tests
            assert merged["shard"] is None

    med = statistics.median
    print(
        f"merge of 3 shard histories, {args.tests:,} tests, {args.history_runs} restored runs "
        f"each (median of {args.repeat}; wall, and CPU of this process):"
    )
    base = med(baseline)
    for label, key, figures in (
        ("baseline: record one full run", "baseline", baseline),
        ("merge into the restored history", "restored", into_restored),
        ("merge into a fresh file", "fresh", into_fresh),
        ("the same merge again (adds nothing)", "again", again),
    ):
        ratio = "" if key == "baseline" else f"  ({med(figures) / base:.1f}x baseline)"
        print(f"  {label:37} {med(figures):7.3f} s wall {med(CPU[key]):7.3f} s CPU{ratio}")
    worst = max(med(into_restored), med(into_fresh))
    worst_cpu = max(med(CPU["restored"]), med(CPU["fresh"]))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} on {os.cpu_count()} cores (wall time includes waiting for CPU)")
    verdict = "met" if worst < TARGET_S else "MISSED"
    print(
        f"target: under {TARGET_S:.0f} s: {verdict} "
        f"(slowest {worst:.3f} s wall, {worst_cpu:.3f} s CPU)"
    )
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
