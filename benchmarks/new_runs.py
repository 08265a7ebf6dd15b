"""Early flake detection, ``--feedback-new-runs K`` (docs/flaky.md): how often it catches a new
50%-flaky test, and what it costs when no test is new.

Catch rate: a suite with a recorded history gains TRIALS new tests, each failing on half of its
calls (every call draws from its own seeded generator: the trials are independent and the figure
is the same on every machine); one run with ``--feedback-new-runs K`` repeats each of them. A
trial is "caught" when the run reports that test as failing, and "classified" when it reports it
flaky (both outcomes seen). Goal: >= 95% caught with K = 5 (the chance is 1 - 0.5**6 = 98.4%;
classified: 1 - 2 * 0.5**6 = 96.9%).

Cost without a new test: the same suite with no new test, plain ``--feedback`` against
``--feedback --feedback-new-runs K``, alternating (ratio 1.0: nothing repeated, no hook per test).

    .venv/bin/python benchmarks/new_runs.py [--trials 40] [--k 5] [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, alternate, fresh_dir, summary

OLD_TESTS = 200

FLAKY = """
import os, random

def coin(name):
    # The n-th call of this test in this process draws from the seed (trial seed, n).
    calls = COUNTS.setdefault(name, 0)
    COUNTS[name] = calls + 1
    return random.Random(f"{os.environ['SEED']}-{name}-{calls}").random() < 0.5

COUNTS = {}
"""


def make_suite(path: Path) -> None:
    fresh_dir(path)
    (path / "pytest.ini").write_text("[pytest]\n")
    body = "\n".join(f"def test_old_{i}():\n    assert {i} >= 0\n" for i in range(OLD_TESTS))
    (path / "test_old.py").write_text(body)


def add_flaky(path: Path, trials: int) -> None:
    tests = "\n".join(
        f"def test_new_{i}():\n    assert coin('t{i}'), 'the coin said fail'\n"
        for i in range(trials)
    )
    (path / "test_new.py").write_text(FLAKY + "\n" + tests)


def pytest_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]


def catch_rate(path: Path, trials: int, k: int, seed: str) -> tuple[int, int]:
    env = {**os.environ, "SEED": seed, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run(pytest_cmd("--feedback"), cwd=path, env=env, capture_output=True, check=True)
    add_flaky(path, trials)
    proc = subprocess.run(
        pytest_cmd("--feedback-new-runs", str(k), "-rf"), cwd=path, env=env, capture_output=True
    )
    out = proc.stdout.decode()
    caught = sum(f"FAILED test_new.py::test_new_{i} " in out for i in range(trials))
    classified = sum(f"new test is flaky: test_new.py::test_new_{i} " in out for i in range(trials))
    return caught, classified


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seed", default="1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp) / "suite"
        make_suite(suite)
        caught, classified = catch_rate(suite, args.trials, args.k, args.seed)
        print(f"--feedback-new-runs {args.k}, a new 50%-flaky test, {args.trials} trials:")
        print(
            f"  caught (the run fails on it):       {caught}/{args.trials} = "
            f"{caught / args.trials:.1%}  (goal >= 95%)"
        )
        print(
            f"  classified flaky (both outcomes):   {classified}/{args.trials} = "
            f"{classified / args.trials:.1%}"
        )

        quiet = Path(tmp) / "quiet"
        make_suite(quiet)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        subprocess.run(pytest_cmd("--feedback"), cwd=quiet, env=env, capture_output=True)
        times = alternate(
            {
                "--feedback": (pytest_cmd("--feedback"), quiet, env),
                f"--feedback-new-runs {args.k}": (
                    pytest_cmd("--feedback", "--feedback-new-runs", str(args.k)),
                    quiet,
                    env,
                ),
            },
            args.reps,
        )
        print(f"no new test ({OLD_TESTS} known tests), {args.reps} alternating runs:")
        print("\n".join(summary(times, "--feedback")))


if __name__ == "__main__":
    main()
