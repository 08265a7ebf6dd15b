"""`pytest -n N --feedback-dist` against xdist's own modes (load, loadscope, worksteal).

Suites: the generated fixture-heavy suite of benchmarks/shards.py (eight modules whose module
fixture sets up in 0.5-1.6 s, three of them also using a 0.4 s session fixture, with 8-16 short
tests each; three modules of plain short tests), and real suites from the corpora (attrs and
click by default; ``../shared/corpora/setup.sh NAME``). For each suite, one serial ``--feedback``
run records the history, and for each worker count one ``-n N --feedback-dist`` run adds that
count's bring-up. Then every round runs each mode once, the modes in turn (so a busy spell of the
machine hits them all alike), each from a copy of the same history (so ``--feedback-dist`` plans
from the same estimates every time). Every mode records with ``--feedback``: the plugin's own
cost is the same in all.

Printed per suite and worker count, as medians: the wall time of each mode and its *span* (from
the first worker's collection arriving at the controller to the last test's end: the part a
scheduler decides), each with the ratio ours/that mode, and ours against ``load`` and against the
best of xdist's modes. Also the lower bound of any schedule of the workers' work (from the
history) and the spread of the workers' bring-up (first to last collection).

The machine this runs on has two cores shared with other work. The generated suite is therefore
dominated by sleeps (fixture set-ups and tests that sleep), so its ratios measure scheduling, not
CPU contention; bringing the workers up (interpreter, imports, collection) is CPU work that every
mode pays alike and that varies with the machine's load. The corpora's tests are CPU work, so
their figures carry the machine's noise.

    .venv/bin/python benchmarks/dist.py [--suites fixtures,attrs,click] [--workers 2,4]
        [--runs 5] [--corpus-runs 3] [--json FILE]

About 30 minutes with the defaults on two busy cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import CORPORA, SRC, corpus, corpus_command, timed
from shards import write_fixture_suite

sys.path.insert(0, str(SRC))

from pytest_feedback.history.store import Store
from pytest_feedback.planning.planners import Workload

MODES: dict[str, list[str]] = {
    "feedback-dist": ["--feedback-dist"],
    "load": ["--dist", "load"],
    "loadscope": ["--dist", "loadscope"],
    "worksteal": ["--dist", "worksteal"],
}
XDIST_MODES = ("load", "loadscope", "worksteal")
#: Plugins of the corpora's venvs that the generated suite does not use (hypothesis' start-up
#: alone costs each worker a second).
UNUSED = ["-p", "no:hypothesispytest", "-p", "no:randomly", "-p", "no:testmon"]


#: Loaded into every run's controller (``-p``): the seconds from the first worker's collection
#: to the last test's end, written where $FEEDBACK_BENCH_SPAN says.
SPAN_PLUGIN = """
import json, os, time

FIRST = []
LAST = [0.0]

def pytest_xdist_node_collection_finished(node, ids):
    FIRST.append(time.perf_counter())

def pytest_runtest_logreport(report):
    if report.when == "teardown":
        LAST[0] = time.perf_counter()

def pytest_sessionfinish(session):
    path = os.environ.get("FEEDBACK_BENCH_SPAN")
    if path and FIRST:
        with open(path, "w") as out:
            json.dump({"span_s": LAST[0] - min(FIRST), "stagger_s": max(FIRST) - min(FIRST)}, out)
"""


class Suite:
    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        (workdir / "feedback_bench_span.py").write_text(SPAN_PLUGIN)
        self.span_file = workdir / f"{name}-span.json"
        if name == "fixtures":
            self.cwd = workdir / name
            self.cwd.mkdir(parents=True, exist_ok=True)
            write_fixture_suite(self.cwd)
            python = next(
                (p for c in ("click", "attrs") if (p := CORPORA / c / "venv/bin/python").exists()),
                Path(sys.executable),
            )
            self.base = [str(python), "-m", "pytest", *UNUSED]
            self.env = dict(os.environ)
        else:
            if corpus(name) is None:
                raise SystemExit(f"{name}: no corpus; run ../shared/corpora/setup.sh {name}")
            self.base, self.cwd, env = corpus_command(name, [])
            self.env = dict(env)
        self.env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(workdir)])
        self.env["FEEDBACK_BENCH_SPAN"] = str(self.span_file)
        self.db = workdir / f"{name}.db"
        self.run_db = workdir / f"{name}-run.db"

    def command(self, *args: str) -> list[str]:
        # "=" keeps pytest from taking an existing history file for a rootdir hint.
        return [
            *self.base,
            "-p",
            "no:cacheprovider",
            "-p",
            "pytest_feedback.plugin",
            f"--feedback-db={self.run_db}",
            "--feedback",
            "-q",
            *args,
        ]

    def record(self, *args: str) -> float:
        """One run added to the history (the first one starts it)."""
        if self.db.exists():
            shutil.copyfile(self.db, self.run_db)
        else:
            self.run_db.unlink(missing_ok=True)
        wall = timed(self.command(*args), self.cwd, self.env)
        shutil.copyfile(self.run_db, self.db)
        return wall

    def run(self, *args: str) -> tuple[float, float, float]:
        """Wall seconds, and the span and stagger `SPAN_PLUGIN` measured."""
        shutil.copyfile(self.db, self.run_db)
        self.span_file.unlink(missing_ok=True)
        wall = timed([*self.command(*args), "-p", "feedback_bench_span"], self.cwd, self.env)
        span = json.loads(self.span_file.read_text())
        return wall, span["span_s"], span["stagger_s"]

    def lower_bound(self, workers: int) -> tuple[float, float, float]:
        """From the recorded history: any schedule's lower bound on the busiest worker's work
        after its collection (what a span can reach), the workers' start-up (collection), and
        xdist's own overhead for this many workers."""
        with Store(self.db, create=False, readonly=True) as store:
            estimates = store.reads.load_estimates()
        work = Workload.build(estimates, estimates.tests)
        after = dataclasses.replace(work, startup_s=0.0)
        return after.lower_bound(workers), work.startup_s, estimates.bringup_s(workers)


def bench(suite: Suite, workers: int, runs: int, serial: float) -> dict[str, object]:
    # One recorded -n run teaches the history this worker count's bring-up.
    suite.record("-n", str(workers), "--feedback-dist")
    walls: dict[str, list[float]] = {mode: [] for mode in MODES}
    spans: dict[str, list[float]] = {mode: [] for mode in MODES}
    staggers: list[float] = []
    for _ in range(runs):
        for mode, args in MODES.items():
            wall, span, stagger = suite.run("-n", str(workers), *args)
            walls[mode].append(wall)
            spans[mode].append(span)
            staggers.append(stagger)
    bound, startup, bringup = suite.lower_bound(workers)
    wall = {mode: statistics.median(values) for mode, values in walls.items()}
    span = {mode: statistics.median(values) for mode, values in spans.items()}
    best = min(XDIST_MODES, key=lambda m: wall[m])
    best_span = min(XDIST_MODES, key=lambda m: span[m])
    ours, ours_span = wall["feedback-dist"], span["feedback-dist"]
    print(f"\n== {suite.name}, -n {workers}: serial {serial:.2f}s, median of {runs} ==")
    print(
        f"lower bound of the span (the busiest worker's work after its collection) {bound:.2f}s; "
        f"a worker's collection {startup:.2f}s; xdist's own overhead (history) {bringup:.2f}s; "
        f"first to last worker collected: median {statistics.median(staggers):.2f}s"
    )
    print(f"  {'mode':14} {'wall':>7} {'ours/it':>8} {'span':>7} {'ours/it':>8}   walls")
    for mode in MODES:
        each = " ".join(f"{w:.2f}" for w in walls[mode])
        print(
            f"  {mode:14} {wall[mode]:6.2f}s {ours / wall[mode]:8.3f} {span[mode]:6.2f}s "
            f"{ours_span / span[mode]:8.3f}   ({each})"
        )
    print(
        f"  wall: ours/load {ours / wall['load']:.3f}, ours/best xdist mode ({best}) "
        f"{ours / wall[best]:.3f}; span: ours/load {ours_span / span['load']:.3f}, "
        f"ours/best ({best_span}) {ours_span / span[best_span]:.3f}; lower bound/best span "
        f"{bound / span[best_span]:.3f}"
    )
    return {"workers": workers, "wall_s": walls, "span_s": spans, "stagger_s": staggers}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suites", default="fixtures,attrs,click")
    parser.add_argument("--workers", default="2,4", help="comma-separated worker counts")
    parser.add_argument("--runs", type=int, default=5, help="rounds of all modes (default 5)")
    parser.add_argument(
        "--corpus-runs", type=int, default=3, help="rounds on the corpora (default 3)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    started = time.perf_counter()
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="feedback-dist-") as tmp:
        for name in filter(None, args.suites.split(",")):
            suite = Suite(name, Path(tmp))
            serial = suite.record()
            runs = args.runs if name == "fixtures" else args.corpus_runs
            for workers in (int(w) for w in args.workers.split(",")):
                results.append({"suite": name, **bench(suite, workers, runs, serial)})
    print(f"\nbenchmark took {time.perf_counter() - started:.0f}s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
