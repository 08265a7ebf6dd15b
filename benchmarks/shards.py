"""Shard plans and the xdist scheduler, measured on real and generated suites.

For each suite: record a history (``--feedback``), then run N shards, every shard as its own
process one after another, three ways — ``--feedback-shard K/N``, pytest-split's
``least_duration`` and ``duration_based_chunks`` (fed a ``.test_durations`` file written from the
same history) — and report each way's makespan, our predicted lower bound, and our predicted
against measured time per shard. Then ``-n 4`` wall time on a suite with skewed durations with
``--feedback-dist`` against xdist's ``--dist load`` and ``--dist worksteal``.

    .venv/bin/python benchmarks/shards.py [--suites fixtures,attrs,click,arrow] [--n 4]

Real suites come from $PYTEST_FEEDBACK_CORPORA (default /tmp/pytest-feedback-corpora; each has a
``pytest`` wrapper and a venv with pytest-split and pytest-xdist). Generated suites sleep instead
of computing, so two busy cores do not skew them. Figures go to stdout and, with --json, a file.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))

from pytest_feedback.history.store import Store  # noqa: E402
from pytest_feedback.planning.shards import plan_shards  # noqa: E402

CORPORA = Path(os.environ.get("PYTEST_FEEDBACK_CORPORA", "/tmp/pytest-feedback-corpora"))
REAL = ("attrs", "click", "arrow", "more-itertools")
GENERATED = ("fixtures",)
SPLIT_ALGORITHMS = ("least_duration", "duration_based_chunks")
SESSION_TIME = re.compile(r" in ([\d.]+)s")
SHARD_LINE = re.compile(r"feedback: shard \d+/\d+: ([\d,]+) tests, measured")


@dataclass
class Suite:
    name: str
    cwd: Path
    command: list[str]  # runs pytest with the suite's own options; arguments follow

    def run(self, *args: str, timeout: float = 900) -> tuple[float, str]:
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
        )
        start = time.perf_counter()
        proc = subprocess.run(
            [*self.command, "-p", "no:cacheprovider", *args],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        wall = time.perf_counter() - start
        if proc.returncode not in (0, 1):  # 1: some test failed, which is the suite's business
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
            raise SystemExit(f"{self.name}: pytest exited {proc.returncode}:\n{tail}")
        return wall, proc.stdout


def ours(db: Path) -> list[str]:
    # "=" keeps pytest from taking an existing history file for a rootdir hint.
    return ["-p", "pytest_feedback.plugin", f"--feedback-db={db}"]


def session_s(output: str) -> float:
    found = SESSION_TIME.findall(output.strip().splitlines()[-1])
    return float(found[-1]) if found else float("nan")


# -- generated suites ---------------------------------------------------------------------------


def write_fixture_suite(root: Path) -> None:
    """Eight modules with costly module fixtures (some also a session one) and three plain ones."""
    rng = random.Random(2024)
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "conftest.py").write_text(
        textwrap.dedent(
            """
            import time
            import pytest

            @pytest.fixture(scope="session")
            def service():
                time.sleep(0.4)
                yield
            """
        )
    )
    for i, setup in enumerate([1.6, 1.4, 1.2, 1.0, 0.9, 0.8, 0.6, 0.5]):
        params = [round(rng.uniform(0.01, 0.15), 3) for _ in range(rng.randint(8, 16))]
        uses = ", service" if i % 3 == 0 else ""
        (root / f"test_mod{i}.py").write_text(
            textwrap.dedent(
                f"""
                import time
                import pytest

                @pytest.fixture(scope="module")
                def resource():
                    time.sleep({setup})
                    yield

                @pytest.mark.parametrize("seconds", {params!r})
                def test_work(resource{uses}, seconds):
                    time.sleep(seconds)
                """
            )
        )
    for name in ("alpha", "beta", "gamma"):
        params = [round(rng.uniform(0.02, 0.1), 3) for _ in range(20)]
        (root / f"test_{name}.py").write_text(
            textwrap.dedent(
                f"""
                import time
                import pytest

                @pytest.mark.parametrize("seconds", {params!r})
                def test_plain(seconds):
                    time.sleep(seconds)
                """
            )
        )


def write_skewed_suite(root: Path) -> None:
    """Mostly short tests (log-normal), a few long ones late in collection, a fixture family.

    The shape of many real suites: the slow integration tests live in files that sort last.
    """
    rng = random.Random(7)
    (root / "pytest.ini").write_text("[pytest]\n")
    slow = {"g": [1.0, 2.5], "h": [1.5, 4.0], "i": [1.0, 3.0], "j": [2.0, 1.5]}
    for letter in "abcdefghij":
        params = [round(min(0.3, rng.lognormvariate(-3.9, 1.0)), 3) for _ in range(25)]
        for seconds in slow.get(letter, []):
            params.insert(rng.randrange(len(params) + 1), seconds)
        (root / f"test_{letter}.py").write_text(
            textwrap.dedent(
                f"""
                import time
                import pytest

                @pytest.mark.parametrize("seconds", {params!r})
                def test_work(seconds):
                    time.sleep(seconds)
                """
            )
        )
    (root / "test_k_db.py").write_text(
        textwrap.dedent(
            """
            import time
            import pytest

            @pytest.fixture(scope="module")
            def db():
                time.sleep(1.5)
                yield

            @pytest.mark.parametrize("i", range(15))
            def test_query(db, i):
                time.sleep(0.05)
            """
        )
    )


def generated_python() -> list[str]:
    """A Python with pytest-split and pytest-xdist: a corpus venv, else this one."""
    # Plugins the generated suites do not use: hypothesis' alone adds seconds to each xdist run.
    unused = ["-p", "no:hypothesispytest", "-p", "no:testmon", "-p", "no:randomly"]
    for name in REAL:
        python = CORPORA / name / "venv" / "bin" / "python"
        if python.exists():
            return [str(python), "-m", "pytest", *unused]
    return [sys.executable, "-m", "pytest", *unused]


def make_suite(name: str, workdir: Path) -> Suite:
    if name in REAL:
        wrapper = CORPORA / name / "pytest"
        if not wrapper.exists():
            raise SystemExit(f"{name}: no corpus at {wrapper.parent}; set PYTEST_FEEDBACK_CORPORA")
        return Suite(name, CORPORA / name / "src", [str(wrapper)])
    root = workdir / name
    root.mkdir(parents=True, exist_ok=True)
    {"fixtures": write_fixture_suite, "skewed": write_skewed_suite}[name](root)
    return Suite(name, root, generated_python())


# -- shards ---------------------------------------------------------------------------------------


@dataclass
class Way:
    """One way of sharding: per shard the process wall time and pytest's session time."""

    name: str
    wall: list[float] = field(default_factory=list)
    session: list[float] = field(default_factory=list)
    tests: list[int] = field(default_factory=list)

    @property
    def makespan(self) -> float:
        return max(self.wall)

    @property
    def session_makespan(self) -> float:
        return max(self.session)


def collect(suite: Suite) -> list[str]:
    _, out = suite.run("--collect-only", "-q")
    return [line for line in out.splitlines() if re.match(r"^\S+\.py::", line)]


def bench_shards(suite: Suite, n: int, workdir: Path, history_runs: int) -> dict[str, object]:
    db = workdir / f"{suite.name}.db"
    db.unlink(missing_ok=True)
    serial = []
    for _ in range(history_runs):
        wall, _ = suite.run(*ours(db), "--feedback")
        serial.append(wall)
    nodeids = collect(suite)
    with Store(db, create=False, readonly=True) as store:
        estimates = store.reads.load_estimates()
    plan = plan_shards(estimates, nodeids, n)
    durations = workdir / f"{suite.name}.test_durations"
    durations.write_text(
        json.dumps(
            {t.nodeid: t.setup_s + t.call_s + t.teardown_s for t in estimates.tests.values()}
        )
    )

    ways = [Way("pytest-feedback")] + [Way(f"pytest-split {a}") for a in SPLIT_ALGORITHMS]
    # Shard k of every way back to back, so that a busy spell on the machine hits all ways alike.
    for k in range(1, n + 1):
        wall, out = suite.run(*ours(db), "--feedback-no-record", f"--feedback-shard={k}/{n}")
        ways[0].wall.append(wall)
        ways[0].session.append(session_s(out))
        ways[0].tests.append(int(SHARD_LINE.findall(out)[-1].replace(",", "")))
        for way, algorithm in zip(ways[1:], SPLIT_ALGORITHMS):
            wall, out = suite.run(
                f"--splits={n}",
                f"--group={k}",
                f"--splitting-algorithm={algorithm}",
                f"--durations-path={durations}",
            )
            way.wall.append(wall)
            way.session.append(session_s(out))

    mine = ways[0]
    predicted = [s.estimate_s for s in plan.shards]
    errors = [(p - m) / m for p, m in zip(predicted, mine.session) if m > 0]
    print(f"\n== {suite.name}: {len(nodeids):,} tests, {n} shards ==")
    print(f"serial run (history) wall: {', '.join(f'{w:.1f}s' for w in serial)}")
    print(f"start-up per process (history): {estimates.startup_s:.2f}s")
    print(
        f"lower bound (predicted): {plan.lower_bound_s:.2f}s; our predicted makespan "
        f"{plan.makespan_s:.2f}s"
    )
    print(f"{'way':36} {'makespan wall':>13} {'session':>8}  per shard wall")
    for way in ways:
        shards = " ".join(f"{w:5.1f}" for w in way.wall)
        print(f"{way.name:36} {way.makespan:12.2f}s {way.session_makespan:7.2f}s  {shards}")
    print(f"tests run by our shards: {sum(mine.tests):,} of {len(nodeids):,} collected")
    print(
        "ours, per shard predicted/measured session: "
        + ", ".join(
            f"{p:.2f}/{m:.2f}s ({100 * e:+.0f}%)"
            for p, m, e in zip(predicted, mine.session, errors)
        )
    )
    split_best = min(w.makespan for w in ways[1:])
    print(
        f"ratios: ours/lower bound (session) {mine.session_makespan / plan.lower_bound_s:.3f}; "
        f"ours/least_duration {mine.makespan / ways[1].makespan:.3f}; "
        f"ours/duration_based_chunks {mine.makespan / ways[2].makespan:.3f}; "
        f"ours/best pytest-split {mine.makespan / split_best:.3f}"
    )
    return {
        "suite": suite.name,
        "tests": len(nodeids),
        "n": n,
        "serial_wall_s": serial,
        "startup_s": estimates.startup_s,
        "lower_bound_s": plan.lower_bound_s,
        "predicted_makespan_s": plan.makespan_s,
        "predicted_s": predicted,
        "ways": {w.name: {"wall_s": w.wall, "session_s": w.session} for w in ways},
        "tests_run": sum(mine.tests),
        "max_abs_prediction_error": max(abs(e) for e in errors) if errors else None,
    }


# -- xdist --------------------------------------------------------------------------------------


def busy_makespan(db: Path) -> tuple[float, dict[str, float]]:
    """The last run's busiest worker: the sum of its tests' phases (scheduling, not overhead)."""
    with Store(db, create=False, readonly=True) as store:
        rows = store.reads.results(store.reads.runs(limit=1)[0]["id"])
    busy: dict[str, float] = {}
    for row in rows:
        worker = str(row["worker"])
        busy[worker] = busy.get(worker, 0.0) + row["setup_s"] + row["call_s"] + row["teardown_s"]
    return max(busy.values()), busy


def bench_xdist(workdir: Path, workers: int, repeats: int) -> dict[str, object]:
    suite = make_suite("skewed", workdir)
    history = workdir / "skewed.db"
    history.unlink(missing_ok=True)
    serial, _ = suite.run(*ours(history), "--feedback")
    overhead = []
    modes = {
        "--feedback-dist": ["--feedback-dist"],
        "--dist load": ["--dist", "load"],
        "--dist worksteal": ["--dist", "worksteal"],
    }
    walls: dict[str, list[float]] = {m: [] for m in modes}
    busy: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(repeats):
        # Every mode records (same plugin overhead for all) into a copy of the same history,
        # so the scheduler plans from identical estimates in every repeat.
        for mode, args in modes.items():
            db = workdir / "skewed-run.db"
            db.write_bytes(history.read_bytes())
            wall, out = suite.run("-n", str(workers), *ours(db), "--feedback", *args)
            walls[mode].append(wall)
            busy[mode].append(busy_makespan(db)[0])
            if mode == "--feedback-dist":
                print(next(x for x in out.splitlines() if "predicted/measured per worker" in x))
        wall, _ = suite.run("-n", str(workers), "test_k_db.py::test_query[0]")
        overhead.append(wall)
    median = {m: statistics.median(v) for m, v in walls.items()}
    median_busy = {m: statistics.median(v) for m, v in busy.items()}
    base = statistics.median(overhead)
    print(
        f"\n== xdist -n {workers} on a skewed suite (serial {serial:.1f}s), median of {repeats} =="
    )
    print(f"-n {workers} running one 1.55s test (start-up and shutdown): {base:.2f}s")
    print(f"{'mode':18} {'wall':>7} {'busiest worker':>15}   walls")
    for mode in modes:
        runs = ", ".join(f"{w:.2f}s" for w in walls[mode])
        print(f"{mode:18} {median[mode]:6.2f}s {median_busy[mode]:14.2f}s   ({runs})")
    ours_s, load_s = median["--feedback-dist"], median["--dist load"]
    steal_s = median["--dist worksteal"]
    print(f"ratios (wall): ours/load {ours_s / load_s:.3f}; ours/worksteal {ours_s / steal_s:.3f}")
    print(
        "ratios (busiest worker): ours/load "
        f"{median_busy['--feedback-dist'] / median_busy['--dist load']:.3f}; ours/worksteal "
        f"{median_busy['--feedback-dist'] / median_busy['--dist worksteal']:.3f}"
    )
    return {
        "workers": workers,
        "serial_wall_s": serial,
        "startup_wall_s": overhead,
        "wall_s": walls,
        "busiest_worker_s": busy,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--suites",
        default="fixtures,attrs,click,arrow",
        help=f"comma-separated, from {', '.join(GENERATED + REAL)}",
    )
    parser.add_argument("--n", type=int, default=4, help="shards (default 4)")
    parser.add_argument(
        "--history-runs",
        type=int,
        default=2,
        help="recorded runs per real suite (generated ones sleep: one is enough); default 2",
    )
    parser.add_argument("--workers", type=int, default=4, help="xdist workers (default 4)")
    parser.add_argument("--xdist-repeats", type=int, default=3)
    parser.add_argument("--no-xdist", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()

    started = time.perf_counter()
    results: dict[str, object] = {"shards": []}
    with tempfile.TemporaryDirectory(prefix="feedback-shards-") as tmp:
        workdir = Path(tmp)
        for name in filter(None, args.suites.split(",")):
            suite = make_suite(name, workdir)
            results["shards"].append(  # type: ignore[attr-defined]
                bench_shards(suite, args.n, workdir, args.history_runs if name in REAL else 1)
            )
        if not args.no_xdist:
            results["xdist"] = bench_xdist(workdir, args.workers, args.xdist_repeats)
    print(f"\nbenchmark took {time.perf_counter() - started:.0f}s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
