"""What recording the installed distributions each test uses (issue 24) adds to `--feedback-cov`.

Runs a corpus's suite three ways, alternating, after a warm-up round, each a first run (a fresh
history): plain pytest, `--feedback-cov` from the source tree of ``--before`` (a git revision
without the recording, extracted with `git archive`), and `--feedback-cov` from this working
tree. Prints the wall and CPU medians and the ratio of the two overheads over plain pytest (goal:
the new overhead at most 1.10 times the old).

    .venv/bin/python benchmarks/dependency_overhead.py [--corpus attrs] [--reps 3]
        [--before 2a8ea56]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="attrs")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--before", default="ebea8a7", help="revision without the recording")
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
        variants = {"plain pytest": plain, f"--feedback-cov {args.before}": old, "now": new}
        walls: dict[str, list[float]] = {name: [] for name in variants}
        cpus: dict[str, list[float]] = {name: [] for name in variants}
        print(f"corpus {args.corpus}: {args.reps} reps after a warm-up round, first runs")
        for round_no in range(args.reps + 1):
            for name, (cmd, cwd, env) in variants.items():
                db.unlink(missing_ok=True)
                shutil.rmtree(tmpdir / "cache", ignore_errors=True)
                wall, cpu = timed(cmd, cwd, env)
                if round_no:
                    walls[name].append(wall)
                    cpus[name].append(cpu)
        names = list(variants)
        for label, figures in (("wall", walls), ("cpu", cpus)):
            base, before, now = (statistics.median(figures[n]) for n in names)
            for name in names:
                print(f"  {label} {name:<24} median {statistics.median(figures[name]):7.2f}s")
            ratio = (now - base) / (before - base) if before > base else float("nan")
            print(
                f"  {label} overhead: before +{before - base:.2f}s, now +{now - base:.2f}s:"
                f" now/before {ratio:.2f} (goal <= 1.10)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
