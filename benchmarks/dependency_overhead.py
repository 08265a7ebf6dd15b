"""What recording the installed distributions each test uses (issue 24) adds to `--feedback-cov`.

Runs a corpus's suite three ways, alternating, after a warm-up round, each a first run (a fresh
history): plain pytest, `--feedback-cov` from the source tree of ``--before`` (a git revision
without the recording, extracted with `git archive`), and `--feedback-cov` from this working
tree. Prints the wall and CPU medians and the ratio of the two overheads over plain pytest (goal:
the new overhead at most 1.10 times the old). On a busy machine the difference of two medians is
noisier than the recording's cost, so one more run of this tree (``--own`` alone: only it) times
the recording's own work in process (its functions wrapped with a CPU clock) and prints it as a
share of the map's overhead.

    .venv/bin/python benchmarks/dependency_overhead.py [--corpus attrs] [--reps 3]
        [--before ebea8a7] [--own]
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import tarfile
import tempfile
from pathlib import Path

from _common import CORPORA, ROOT, SRC, corpus_command
from overhead_cov import timed


def extract(revision: str, into: Path) -> Path:
    """The ``src`` tree of ``revision``, under ``into``."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, "src"], cwd=ROOT, capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


#: Run in the corpus's interpreter: the suite with the recording's functions timed.
OWN_SCRIPT = """
import sys, time
from pytest_feedback.depmap import dist_use, distributions, measure
spent = {}
def timed(owner, name):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        start = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.process_time() - start
    setattr(owner, name, wrapper)
timed(dist_use.DistUse, "note")  # per context switch
timed(measure.Measurement, "_add_dists")  # at the end: the index, the resolution
timed(measure.Measurement, "missing_import")
start = time.process_time()
import pytest
pytest.main(sys.argv[1:])
print("OWN", time.process_time() - start, sum(spent.values()), repr(spent))
"""


def own_cost(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds of the run, of them the recording's) of one in-process run."""
    script = [cmd[0], "-c", OWN_SCRIPT, *cmd[3:]]  # cmd is PYTHON -m pytest ARGS
    proc = subprocess.run(script, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("OWN ")), None)
    if line is None:
        raise SystemExit(f"the instrumented run failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    total, own = line.split()[1:3]
    return float(total), float(own)


Command = tuple[list[str], Path, dict[str, str]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="attrs")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--before", default="ebea8a7", help="revision without the recording")
    parser.add_argument("--own", action="store_true", help="only the in-process timing")
    args = parser.parse_args()
    if not (CORPORA / args.corpus / "pytest").exists():
        print(f"{args.corpus}: corpus not set up under {CORPORA}; nothing measured")
        return 1
    with tempfile.TemporaryDirectory(prefix="feedback-dist-overhead-") as tmp:
        tmpdir = Path(tmp)
        before_src = extract(args.before, tmpdir / "before")
        db = tmpdir / "history.db"
        cache = ["-o", f"cache_dir={tmpdir / 'cache'}", "-q", "-p", "no:testmon"]
        cov = ["-p", "pytest_feedback.plugin", "--feedback-cov", f"--feedback-db={db}"]
        plain = corpus_command(args.corpus, cache)
        old = corpus_command(args.corpus, [*cache, *cov])
        old[2]["PYTHONPATH"] = str(before_src)
        new = corpus_command(args.corpus, [*cache, *cov])
        new[2]["PYTHONPATH"] = str(SRC)
        overhead = None
        if not args.own:
            print(f"corpus {args.corpus}: {args.reps} reps after a warm-up round, first runs")
            variants = {"plain pytest": plain, f"--feedback-cov {args.before}": old, "now": new}
            overhead = compare(args.reps, tmpdir, variants)
        db.unlink(missing_ok=True)
        total, own = own_cost(*new)
        share = f", {own / overhead:.1%} of the map's CPU overhead" if overhead else ""
        print(
            f"  in process: the run {total:.2f}s CPU, of it the recording of distributions"
            f" {own:.3f}s ({own / total:.2%} of the run{share})"
        )
    return 0


def compare(reps: int, tmpdir: Path, variants: dict[str, Command]) -> float:
    """Alternate the variants (plain, before, now); print medians and the overheads' ratio.
    Returns the CPU overhead of the map before the recording."""
    walls: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    for round_no in range(reps + 1):
        for name, (cmd, cwd, env) in variants.items():
            (tmpdir / "history.db").unlink(missing_ok=True)
            shutil.rmtree(tmpdir / "cache", ignore_errors=True)
            wall, cpu = timed(cmd, cwd, env)
            if round_no:
                walls[name].append(wall)
                cpus[name].append(cpu)
    names = list(variants)
    old_over = 0.0
    for label, figures in (("wall", walls), ("cpu", cpus)):
        base, old_s, now = (statistics.median(figures[n]) for n in names)
        for name in names:
            print(f"  {label} {name:<24} median {statistics.median(figures[name]):7.2f}s")
        ratio = (now - base) / (old_s - base) if old_s > base else float("nan")
        print(
            f"  {label} overhead: before +{old_s - base:.2f}s, now +{now - base:.2f}s:"
            f" now/before {ratio:.2f} (goal <= 1.10)"
        )
        old_over = old_s - base
    return old_over


if __name__ == "__main__":
    raise SystemExit(main())
