"""Wall-time and CPU-time overhead of `pytest --feedback` against plain pytest.

Measured in one process tree, alternating the variants, several repetitions, after a warm-up
round: on a generated 2,000-test suite (module and session fixtures, parametrized tests, a little
real work per test) and on real suites from ../shared/corpora. Each variant prints its wall time
and, as "[cpu]", the CPU time (user + system) of the pytest process, which the machine's other
load disturbs less. Goals: ratio <= 1.02 on the corpora (issue 2), <= 1.06 on the trivial tests
(issue 17).

    .venv/bin/python benchmarks/overhead.py [--reps 7] [--corpora attrs click]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from _common import alternate, corpus, corpus_command, fresh_dir, summary

GENERATED_FILES = 40
TESTS_PER_FILE = 50  # 2,000 tests

CONFTEST = """
import pytest

@pytest.fixture(scope="session")
def config():
    return {"size": 200}

@pytest.fixture(scope="module")
def table(config):
    return list(range(config["size"]))

@pytest.fixture
def item(table):
    return table[len(table) // 2]
"""

TEST_FILE = """
import pytest

def work(n):
    return sum(i * i for i in range(n))

@pytest.mark.parametrize("n", range({half}))
def test_param(n, item):
    assert work({scale} * (1 + n % 5)) >= 0

{plain}
"""


def generate_suite(root: Path, work_ms: float = 0.0) -> Path:
    """2,000 tests; ``work_ms`` is the mean milliseconds of work per test (0: trivial tests)."""
    fresh_dir(root)
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "conftest.py").write_text(CONFTEST)
    half = TESTS_PER_FILE // 2
    scale = max(10, int(work_ms * 10_000 / 3))  # sum(i*i) runs ~10,000 steps per ms
    plain = "\n".join(
        f"def test_plain_{i}(table):\n    assert work({scale} * (1 + {i} % 5)) >= 0\n"
        for i in range(half)
    )
    for f in range(GENERATED_FILES):
        (root / f"test_gen_{f:03d}.py").write_text(
            TEST_FILE.format(half=half, plain=plain, scale=scale)
        )
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--corpora", nargs="*", default=["attrs", "click"])
    parser.add_argument(
        "--work-ms",
        nargs="*",
        type=float,
        default=[0.0, 2.0],
        help="generated suites to run, by milliseconds of work per test (0: trivial tests)",
    )
    args = parser.parse_args()
    # Measure what a user sees: compiled (and assertion-rewritten) modules cached in __pycache__,
    # not compiled again on every run.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

    with tempfile.TemporaryDirectory(prefix="feedback-overhead-") as tmp:
        tmpdir = Path(tmp)
        py = sys.executable
        common = ["-p", "no:cacheprovider", "-q"]
        for work_ms in args.work_ms:
            label = "trivial tests (worst case)" if not work_ms else f"~{work_ms:g} ms per test"
            suite = generate_suite(tmpdir / f"suite-{work_ms}", work_ms)
            db = tmpdir / f"generated-{work_ms}.db"
            variants = {
                "plain pytest": ([py, "-m", "pytest", "-p", "no:feedback", *common], suite, {}),
                "pytest --feedback": (
                    [py, "-m", "pytest", *common, "--feedback", f"--feedback-db={db}"],
                    suite,
                    {},
                ),
            }
            n = GENERATED_FILES * TESTS_PER_FILE
            print(f"generated suite, {n:,} {label}: {args.reps} reps", flush=True)
            times = alternate(variants, args.reps)
            print("\n".join(summary(times, "plain pytest")), flush=True)

        for name in args.corpora:
            if corpus(name) is None:
                print(f"{name}: not set up (run ../shared/corpora/setup.sh {name}); skipped")
                continue
            cdb = tmpdir / f"{name}.db"
            plain_cmd, cwd, env = corpus_command(name, common)
            feedback_cmd, _, _ = corpus_command(
                name,
                [*common, "-p", "pytest_feedback.plugin", "--feedback", f"--feedback-db={cdb}"],
            )
            print(f"corpus {name}: {args.reps} reps", flush=True)
            times = alternate(
                {
                    "plain pytest": (plain_cmd, cwd, env),
                    "pytest --feedback": (feedback_cmd, cwd, env),
                },
                args.reps,
            )
            print("\n".join(summary(times, "plain pytest")), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
