"""Helpers shared by the benchmarks: timing commands, alternating repetitions, corpora."""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
CORPORA = Path(os.environ.get("CORPORA_DIR", "/tmp/pytest-feedback-corpora"))
LAST_CPU = [0.0]


def corpus(name: str) -> Path | None:
    """The corpus directory if it was set up (``../shared/corpora/setup.sh NAME``), else None."""
    path = CORPORA / name
    return path if (path / ".ready").exists() else None


def corpus_command(name: str, args: Sequence[str]) -> tuple[list[str], Path, dict[str, str]]:
    """How to run a corpus's pytest with our source tree importable (not installed there)."""
    base = CORPORA / name
    wrapper = (base / "pytest").read_text()
    # The wrapper is: cd SRC && exec env ENVS PYTHON -m pytest ARGS "$@"
    line = next(ln for ln in wrapper.splitlines() if ln.startswith("cd "))
    _, rest = line.split(" && exec env ", 1)
    words = rest.replace('"$@"', "").split()
    env_words = [w for w in words if "=" in w and not w.startswith("-")]
    index = next(i for i, w in enumerate(words) if w.strip('"').endswith("python"))
    python = words[index].strip('"')
    extra = [w.strip('"') for w in words[index + 3 :]]
    env = dict(os.environ)
    env.update(dict(w.split("=", 1) for w in env_words))
    env["PYTHONPATH"] = str(SRC)
    return [python, "-m", "pytest", *extra, *args], base / "src", env


def timed(cmd: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> float:
    """Wall seconds of one run; its CPU seconds (user + system) go to `LAST_CPU`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(list(cmd), cwd=cwd, env=dict(env or os.environ), capture_output=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST_CPU[0] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stdout.decode()[-3000:] + proc.stderr.decode()[-3000:])
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    return elapsed


def alternate(
    variants: Mapping[str, tuple[Sequence[str], Path, Mapping[str, str]]],
    repetitions: int,
    before_each: Mapping[str, object] | None = None,
) -> dict[str, list[float]]:
    """Run each variant once per round, rounds alternating, after one warm-up round."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_no in range(repetitions + 1):
        for name, (cmd, cwd, env) in variants.items():
            hook = (before_each or {}).get(name)
            if callable(hook):
                hook()
            elapsed = timed(cmd, cwd, env)
            if round_no:  # the first round warms caches
                times[name].append(elapsed)
                times.setdefault(f"{name} [cpu]", []).append(LAST_CPU[0])
    return times


def summary(times: Mapping[str, list[float]], baseline: str) -> list[str]:
    lines = []
    for name, values in times.items():
        base = statistics.median(times[baseline + (" [cpu]" if name.endswith("[cpu]") else "")])
        med = statistics.median(values)
        lines.append(
            f"  {name:<28} median {med:7.3f}s  min {min(values):7.3f}s"
            f"  ratio {med / base:6.3f}  (n={len(values)})"
        )
    return lines


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
