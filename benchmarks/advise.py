"""`pytest-feedback advise` on a generated suite with planted problems: does it find each one,
is each estimated saving within 25% of what applying the change really saves, and does
`--feedback-try-scope` call the unsafe widening unsafe (issue 23)?

The suite, in a git repository: an expensive function-scoped fixture that is safe to widen
(`dataset`), one that is not because its tests mutate it (`registry`), tests that sleep
(tests/test_sleepy.py), a conftest.py that imports a slow module (`heavy_helpers`), a test that
became slower at a known commit (tests/test_parse.py::test_parse), and quick filler tests. The
history: three runs before the regression's commit, three after. Then each planted change is
applied to a copy of the suite, which is run several times, alternating with the unchanged
suite; the saving is the difference of the fastest wall times of the whole pytest process (the
machine's other load only adds time).

    .venv/bin/python benchmarks/advise.py [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from _common import ROOT, SRC, alternate

PYTHON = sys.executable
#: The seconds of each planted cost. Each is a sleep (a fixture that waits for a service, a
#: test that polls, an import that waits...): on a machine shared with other work, CPU work's
#: wall time varies by more than the savings measured here, and on a loaded machine a run's
#: wall time varies by some tenths of a second: the costs are large enough for that.
FIXTURE_S = 0.4
SLEEP_S = 0.6
IMPORT_S = 1.2
FAST_S = 0.02
SLOW_S = 1.0

CONFTEST = """
import time

import pytest

import heavy_helpers  # noqa: F401  (planted: a slow import no test needs)


@pytest.fixture
def dataset():
    time.sleep({fixture})  # waits for a service to hand out the data
    return tuple(range(100))


@pytest.fixture
def registry():
    time.sleep({fixture})
    return {{}}
"""
HEAVY = """
import time

time.sleep({seconds})
"""
TEST_DATA = """
import pytest


@pytest.mark.parametrize("i", range(10))
def test_dataset(dataset, i):
    assert dataset[i] == i
"""
TEST_REGISTRY = """
import pytest


@pytest.mark.parametrize("i", range(8))
def test_register(registry, i):
    registry[i] = "entry"
    assert list(registry) == [i]
"""
TEST_PARSE = """
import time


def test_parse():
    time.sleep({seconds})  # a retry with back-off that a commit made longer
"""


def write_suite(root: Path, parse_s: float) -> None:
    tests = root / "tests"
    tests.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\npythonpath = tests\n")
    (tests / "heavy_helpers.py").write_text(HEAVY.format(seconds=IMPORT_S))
    (tests / "conftest.py").write_text(CONFTEST.format(fixture=FIXTURE_S))
    (tests / "test_data.py").write_text(TEST_DATA)
    (tests / "test_registry.py").write_text(TEST_REGISTRY)
    sleepy = "import time\n\n" + "".join(
        f"\ndef test_wait_{i}():\n    time.sleep({SLEEP_S})\n" for i in range(4)
    )
    (tests / "test_sleepy.py").write_text(sleepy)
    (tests / "test_parse.py").write_text(TEST_PARSE.format(seconds=parse_s))
    misc = "".join(f"\ndef test_quick_{i}():\n    assert {i} + 1 > {i}\n" for i in range(30))
    (tests / "test_misc.py").write_text(misc)


def git(root: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout
    return out.strip()


def pytest_cmd(*args: str) -> list[str]:
    return [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    return subprocess.run(pytest_cmd(*args), cwd=root, env=env, capture_output=True, text=True)


def advise(root: Path) -> dict[str, object]:
    cmd = [PYTHON, "-m", "pytest_feedback", "advise", "--format", "json", "--top", "10"]
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout))


def _widen(root: Path, name: str, scope: str) -> None:
    conftest = root / "tests" / "conftest.py"
    text = conftest.read_text()
    conftest.write_text(
        text.replace(
            f"@pytest.fixture\ndef {name}", f'@pytest.fixture(scope="{scope}")\ndef {name}'
        )
    )


def _no_sleep(root: Path) -> None:
    path = root / "tests" / "test_sleepy.py"
    path.write_text(path.read_text().replace(f"time.sleep({SLEEP_S})", "pass"))


def _no_heavy_import(root: Path) -> None:
    path = root / "tests" / "conftest.py"
    path.write_text(path.read_text().replace("import heavy_helpers", "# import heavy_helpers"))


def _fast_parse(root: Path) -> None:
    path = root / "tests" / "test_parse.py"
    path.write_text(path.read_text().replace(f"sleep({SLOW_S})", f"sleep({FAST_S})"))


#: Each planted problem: (label, kind, subject, the change applied to a copy of the suite).
PLANTED: list[tuple[str, str, str, Callable[[Path], None]]] = [
    (
        "safe expensive fixture",
        "fixture-scope",
        "dataset",
        lambda r: _widen(r, "dataset", "module"),
    ),
    ("unsafe fixture", "fixture-scope", "registry", lambda r: _widen(r, "registry", "module")),
    ("sleeping tests", "waiting", "tests/test_sleepy.py", _no_sleep),
    ("slow conftest import", "imports", "heavy_helpers", _no_heavy_import),
    ("regression", "regression", "tests/test_parse.py::test_parse", _fast_parse),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="feedback-advise-"))
    root = base / "suite"
    write_suite(root, FAST_S)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "suite")
    for _ in range(3):
        run(root, "--feedback")
    (root / "tests" / "test_parse.py").write_text(TEST_PARSE.format(seconds=SLOW_S))
    git(root, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qam", "slower parse")
    slow_commit = git(root, "rev-parse", "HEAD")
    for _ in range(3):
        run(root, "--feedback")
    advice = advise(root)
    suggestions = list(advice["suggestions"])  # type: ignore[call-overload]
    print(f"advise: {len(suggestions)} suggestions in its top ten")
    for i, s in enumerate(suggestions, 1):
        print(f"  {i:>2}. [{s['kind']}] {s['subject']}: {s['saved_s']:.2f}s  {s['title']}")

    ok = True
    found = {}
    for label, kind, subject, _ in PLANTED:
        hit = next(
            (
                (i, s)
                for i, s in enumerate(suggestions, 1)
                if s["kind"] == kind and s["subject"] == subject
            ),
            None,
        )
        found[label] = hit
        if hit is None:
            ok = False
            print(f"MISSING: {label} ({kind} {subject}) is not in the top ten")
    regression = found["regression"]
    if regression is not None:
        named = slow_commit[:10] in regression[1]["title"]
        ok = ok and named
        print(f"regression names the commit that slowed it ({slow_commit[:10]}): {named}")

    for name, want_unsafe in (("registry", True), ("dataset", False)):
        out = run(root, f"--feedback-try-scope={name}=module")
        unsafe = "UNSAFE" in out.stdout
        verdict = next((ln for ln in out.stdout.splitlines() if "try-scope" in ln), "")
        print(f"try-scope {name}=module: {'unsafe' if unsafe else 'not unsafe'}: {verdict}")
        ok = ok and unsafe == want_unsafe

    # Apply each change to a copy and measure, alternating with the unchanged suite.
    variants = {"unchanged": (pytest_cmd(), root, {"PYTHONPATH": str(SRC), "PATH": "/usr/bin"})}
    for label, _, _, apply in PLANTED:
        copy = base / label.replace(" ", "-")
        shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".pytest-feedback", ".git"))
        apply(copy)
        variants[label] = (pytest_cmd(), copy, {"PYTHONPATH": str(SRC), "PATH": "/usr/bin"})
    times = alternate(variants, args.reps)
    unchanged = times["unchanged"]
    print(
        f"\nunchanged suite: fastest {min(unchanged):.2f}s, median "
        f"{statistics.median(unchanged):.2f}s wall (n={args.reps})"
    )
    print(
        "measured saving: fastest unchanged run - fastest changed run (the machine's other load\n"
        "only adds time; the paired column is the median of (unchanged - changed) per round)"
    )
    print(
        f"{'planted problem':<24} {'rank':>4} {'estimated':>9} {'measured':>9} {'ratio':>6}"
        f" {'paired':>8}"
    )
    for label, _, _, _ in PLANTED:
        measured = min(unchanged) - min(times[label])
        paired = statistics.median(a - b for a, b in zip(unchanged, times[label]))
        hit = found[label]
        if hit is None:
            print(f"{label:<24} {'-':>4} {'-':>9} {measured:>8.2f}s {'':>6} {paired:>7.2f}s")
            continue
        rank, s = hit
        estimated = float(s["saved_s"])
        ratio = estimated / measured if measured > 0 else float("inf")
        within = 0.75 <= ratio <= 1.25
        ok = ok and within
        print(
            f"{label:<24} {rank:>4} {estimated:>8.2f}s {measured:>8.2f}s {ratio:>6.2f}"
            f" {paired:>7.2f}s{'' if within else '  <- outside 25%'}"
        )
    print("\nall planted problems found, estimates within 25%, unsafe widening unsafe:", ok)
    shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "benchmarks"))
    raise SystemExit(main())
