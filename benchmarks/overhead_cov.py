"""Wall-time cost of `pytest --feedback-cov` against plain pytest and `pytest --testmon`.

Both mapping variants are first runs (a fresh history / a fresh .testmondata every repetition),
measured in one process tree, alternating the variants, after a warm-up round, on a real suite
from ../shared/corpora. Goal (issue 4): our overhead over plain pytest at most 0.7x testmon's.
CPU seconds (user + sys of the pytest process and its children) are printed too: on a shared
machine they are the steadier figure.

    .venv/bin/python benchmarks/overhead_cov.py [--reps 3] [--corpus attrs] [--python PATH]

``--python``: run the suite with another interpreter than the corpus's venv (a venv with the
corpus installed, pytest-testmon, coverage, networkx and rich). On Python 3.12+ the map uses
coverage.py's sys.monitoring core; testmon, which needs dynamic contexts, stays on the C tracer.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from _common import CORPORA, corpus_command


def timed(cmd: Sequence[str], cwd: Path, env: Mapping[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(list(cmd), cwd=cwd, env=dict(env), capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stdout.decode()[-3000:] + proc.stderr.decode()[-3000:])
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--corpus", default="attrs")
    parser.add_argument("--python", help="interpreter to run the suite with (default: its venv)")
    args = parser.parse_args()
    if not (CORPORA / args.corpus / "pytest").exists():
        print(f"{args.corpus}: corpus not set up under {CORPORA}; nothing measured")
        return 1

    with tempfile.TemporaryDirectory(prefix="feedback-overhead-cov-") as tmp:
        tmpdir = Path(tmp)
        cache = ["-o", f"cache_dir={tmpdir / 'cache'}", "-q"]
        db = tmpdir / "history.db"
        testmon = tmpdir / ".testmondata"
        plain = corpus_command(args.corpus, [*cache, "-p", "no:testmon"])
        ours = corpus_command(
            args.corpus,
            [
                *cache,
                "-p",
                "no:testmon",
                "-p",
                "pytest_feedback.plugin",
                "--feedback-cov",
                f"--feedback-db={db}",
            ],
        )
        theirs = corpus_command(args.corpus, [*cache, "--testmon"])
        theirs[2]["TESTMON_DATAFILE"] = str(testmon)
        if args.python:
            for cmd, _, _ in (plain, ours, theirs):
                cmd[0] = args.python
        probe = "import sys, coverage; print(sys.version.split()[0], coverage.__version__)"
        version = subprocess.run(
            [plain[0][0], "-c", probe], capture_output=True, text=True, check=True
        ).stdout.split()

        def fresh() -> None:
            for path in tmpdir.iterdir():
                if path.name.startswith(("history.db", ".testmondata", "cache")):
                    if path.is_dir():
                        shutil.rmtree(path)
                    else:
                        path.unlink()

        variants = {"plain pytest": plain, "--feedback-cov": ours, "--testmon": theirs}
        walls: dict[str, list[float]] = {name: [] for name in variants}
        cpus: dict[str, list[float]] = {name: [] for name in variants}
        print(
            f"corpus {args.corpus}: Python {version[0]}, coverage {version[1]}: {args.reps} reps"
            " after a warm-up round, first runs"
        )
        for round_no in range(args.reps + 1):
            for name, (cmd, cwd, env) in variants.items():
                fresh()
                wall, cpu = timed(cmd, cwd, env)
                if round_no:
                    walls[name].append(wall)
                    cpus[name].append(cpu)
        base_wall = statistics.median(walls["plain pytest"])
        base_cpu = statistics.median(cpus["plain pytest"])
        for name in variants:
            wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
            print(
                f"  {name:<14} wall median {wall:7.2f}s  ratio {wall / base_wall:5.2f}"
                f"   cpu median {cpu:7.2f}s  ratio {cpu / base_cpu:5.2f}  (n={len(walls[name])})"
            )
        for label, figures, base in (("wall", walls, base_wall), ("cpu", cpus, base_cpu)):
            ours_over = statistics.median(figures["--feedback-cov"]) - base
            theirs_over = statistics.median(figures["--testmon"]) - base
            ratio = ours_over / theirs_over if theirs_over > 0 else float("nan")
            print(
                f"  {label} overhead: --feedback-cov +{ours_over:.2f}s, --testmon"
                f" +{theirs_over:.2f}s: ours/testmon {ratio:.2f} (goal <= 0.70)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
