"""End to end: `pytest --feedback-cov` maps tests to code and files; `why` and `deps` read it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_feedback.cli.commands import main
from pytest_feedback.depmap.coverage_internals import measures_children
from pytest_feedback.depmap.graph import DependencyMap
from pytest_feedback.history.store import Store

PROJECT = {
    "pytest.ini": "[pytest]\npythonpath = .\n",
    "pkg/__init__.py": "",
    "pkg/consts.py": 'LIMIT = 10\nNAMES = ["a", "b"]\n',
    "pkg/calc.py": (
        "from pkg.consts import LIMIT\n\n\ndef clamp(x):\n    return min(x, LIMIT)\n\n\n"
        "def double(x):\n    return x * 2\n"
    ),
    "pkg/data.py": (
        "import pathlib\n\n\ndef load():\n"
        '    return (pathlib.Path(__file__).parent.parent / "data" / "table.txt").read_text()\n'
    ),
    "pkg/cli.py": (
        "import sys\n\nfrom pkg.calc import double\n\n"
        'if __name__ == "__main__":\n    print(double(int(sys.argv[1])))\n'
    ),
    "pkg/validators.py": (
        "class Validator:\n    def __init__(self, minimum):\n        self.minimum = minimum\n\n"
        "    def __call__(self, value):\n        return value > self.minimum\n\n\n"
        "def make_validator():\n    return Validator(0)\n"
    ),
    "data/table.txt": "x y z\n",
    "tests/test_calc.py": (
        "from pkg.calc import clamp\n\n\ndef test_clamp():\n    assert clamp(99) == 10\n"
    ),
    "tests/test_data.py": (
        'from pkg.data import load\n\n\ndef test_load():\n    assert "x" in load()\n'
    ),
    "tests/test_spawn.py": (
        "import pathlib\nimport subprocess\nimport sys\n\n"
        "ROOT = pathlib.Path(__file__).parent.parent\n\n\ndef test_spawn():\n"
        '    out = subprocess.run([sys.executable, "-m", "pkg.cli", "4"], capture_output=True,'
        " text=True, check=True, cwd=ROOT)\n"
        '    assert out.stdout.strip() == "8"\n'
    ),
    # The validator is built while pytest imports the module (collection time).
    "tests/test_collect.py": (
        "from pkg.validators import make_validator\n\n\nclass TestV:\n"
        "    validator = make_validator()\n\n    def test_positive(self):\n"
        "        assert self.validator(1)\n"
    ),
    "tests/test_plain.py": "def test_nothing():\n    assert True\n",
}
CLAMP = "tests/test_calc.py::test_clamp"
LOAD = "tests/test_data.py::test_load"
SPAWN = "tests/test_spawn.py::test_spawn"
POSITIVE = "tests/test_collect.py::TestV::test_positive"
NOTHING = "tests/test_plain.py::test_nothing"


def make_project(pytester: pytest.Pytester) -> None:
    for name, text in PROJECT.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def cli(capsys: pytest.CaptureFixture[str], history: Path, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    status = main([*args, "--db", str(history)])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def load_map(history: Path) -> DependencyMap:
    with Store.open_existing(history) as store:
        dmap = DependencyMap.load(store)
    assert dmap is not None
    return dmap


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_map_holds_every_kind_of_dependency(
    pytester: pytest.Pytester,
    history: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    xdist: list[str],
) -> None:
    make_project(pytester)
    result = pytester.runpytest("--feedback-cov", "-p", "no:cacheprovider", *xdist)
    result.assert_outcomes(passed=5)
    # Without coverage.py's start-up hook for children (Python 3.9) the child runs unmeasured:
    # the map knows that it ran, and selection takes the test as depending on everything.
    children = measures_children()
    files = 12 if children else 11
    result.stdout.fnmatch_lines([f"feedback: mapped 5 tests to {files} files into *history.db"])
    with Store.open_existing(history) as store:  # slowed by coverage: estimates know it
        assert [s.mapped for s in store.reads.recent_samples([CLAMP])[CLAMP]] == [True]
    monkeypatch.chdir(pytester.path)

    expectations = {
        "pkg/consts.py": {CLAMP: "import-time", SPAWN: "executed"}
        if children
        else {CLAMP: "import-time"},
        "data/table.txt": {LOAD: "reads"},
        "pkg/cli.py": {SPAWN: "executed"},
        "pkg/validators.py:10": {POSITIVE: "collection-time"},
        "pkg/validators.py::Validator.__call__": {POSITIVE: "executed"},
        "pkg/calc.py::double": {SPAWN: "executed"} if children else {},
        "tests/test_plain.py": {NOTHING: "executed"},
    }
    if not children:
        del expectations["pkg/cli.py"]  # only the child ran it: not in the map at all
    for target, expected in expectations.items():
        status, out = cli(capsys, history, "deps", target, "--format", "json")
        assert status == 0, out
        found = {t["nodeid"]: t["reason"] for t in json.loads(out)["tests"]}
        assert found == expected, target

    status, out = cli(capsys, history, "why", CLAMP)
    assert status == 0
    assert out.splitlines()[:12] == [
        f"{CLAMP} depends on:",
        "  files (4), lines executed by the test, at import or collection:",
        "    pkg/__init__.py         1 line",
        "    pkg/calc.py             4 lines (1 in the test)",
        "    pkg/consts.py           2 lines",
        "    tests/test_calc.py      3 lines (1 in the test)",
        "  import-time (3 modules it uses):",
        "    pkg/__init__.py",
        "    pkg/calc.py",
        "    pkg/consts.py",
        "  collection-time (1):",
        "    tests/test_calc.py",
    ]
    graph = load_map(history).graph()
    assert graph.has_edge(("test", CLAMP), ("function", "pkg/calc.py", "clamp"))
    assert not graph.has_edge(("test", CLAMP), ("function", "pkg/calc.py", "double"))
    assert graph.has_edge(("test", LOAD), ("file", "data/table.txt"))
    assert graph.has_edge(("file", "pkg/calc.py"), ("file", "pkg/consts.py"))  # imports
    _, out = cli(capsys, history, "why", LOAD)
    assert "  reads (1 files):\n    data/table.txt\n" in out
    _, out = cli(capsys, history, "why", SPAWN)
    if not children:
        assert "spawns: 1 processes, 0 measured" in out
        assert load_map(history).spawning_tests() == {SPAWN}
        return
    assert "spawns: 1 processes, 1 measured; measured" in out
    assert "    pkg/cli.py" in out


def test_partial_run_keeps_other_rows_and_carries_lines_over(
    pytester: pytest.Pytester, history: Path
) -> None:
    make_project(pytester)
    pytester.runpytest("--feedback-cov", "-p", "no:cacheprovider").assert_outcomes(passed=5)
    calc = pytester.path / "pkg" / "calc.py"
    calc.write_text('"""Arithmetic."""\n' + PROJECT["pkg/calc.py"], encoding="utf-8")

    result = pytester.runpytest("--feedback-cov", "-p", "no:cacheprovider", "-k", "spawn")
    result.assert_outcomes(passed=1, deselected=4)
    dmap = load_map(history)
    assert dmap.mapped_tests() == {CLAMP, LOAD, SPAWN, POSITIVE, NOTHING}
    # test_clamp did not run again: its line 5 (`return min(...)`) moved to line 6.
    assert dmap.tests_reaching("pkg/calc.py", {6}) == {CLAMP: "executed"}
    assert dmap.outdated_tests() == set()

    calc.write_text(calc.read_text().replace("min(x, LIMIT)", "max(min(x, LIMIT), 0)"))
    pytester.runpytest("--feedback-cov", "-p", "no:cacheprovider", "-k", "spawn")
    assert load_map(history).outdated_tests() == {CLAMP}


def test_each_test_gets_the_lines_an_earlier_test_ran_too(
    pytester: pytest.Pytester, history: Path
) -> None:
    """On Python 3.12+ the map uses sys.monitoring, which reports a line once: the events are
    restarted at each test, or the second test would seem not to run the shared code."""
    pytester.makeini("[pytest]\npythonpath = .\n")
    pytester.makepyfile(
        **{
            "shared/__init__.py": "",
            "shared/steps.py": "def step(n):\n    total = 0\n    for i in range(n):\n"
            "        total += i\n    return total\n",
            "tests/test_steps.py": "from shared.steps import step\n\n\ndef test_first():\n"
            "    assert step(3) == 3\n\n\ndef test_second():\n    assert step(4) == 6\n",
        }
    )
    pytester.runpytest("--feedback-cov", "-p", "no:cacheprovider").assert_outcomes(passed=2)
    reached = load_map(history).tests_reaching("shared/steps.py", {2, 3, 4, 5})
    assert reached == {
        "tests/test_steps.py::test_first": "executed",
        "tests/test_steps.py::test_second": "executed",
    }
    assert load_map(history).tests_reaching("shared/steps.py", {4}) == reached


def test_without_feedback_cov_nothing_is_measured(pytester: pytest.Pytester, history: Path) -> None:
    make_project(pytester)
    result = pytester.runpytest("--feedback", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    assert "mapped" not in result.stdout.str()
    with Store.open_existing(history) as store:
        assert DependencyMap.load(store) is None


def test_joins_a_coverage_measurement_already_running(
    pytester: pytest.Pytester, history: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    coverage = pytest.importorskip("coverage")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # the inner run is not a worker
    make_project(pytester)
    cov = coverage.Coverage(data_file=None, config_file=False, source=[str(pytester.path)])
    cov.start()
    try:
        result = pytester.runpytest("--feedback-cov", "-p", "no:cacheprovider", "-k", "clamp")
    finally:
        cov.stop()
    result.assert_outcomes(passed=1, deselected=4)
    result.stdout.fnmatch_lines(
        [
            "feedback: --feedback-cov adds per-test contexts to the coverage measurement already*",
            "feedback: mapped 1 test to * files into *",
        ]
    )
    assert load_map(history).tests_reaching("pkg/calc.py", {5}) == {CLAMP: "executed"}


def test_cli_errors_name_the_problem(
    pytester: pytest.Pytester, history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_project(pytester)
    pytester.runpytest("--feedback", "-p", "no:cacheprovider")
    status, out = cli(capsys, history, "why", CLAMP)
    assert (status, out.strip()) == (
        1,
        "pytest-feedback: error: no coverage map recorded yet; run `pytest --feedback-cov` first",
    )
    pytester.runpytest("--feedback-cov", "-p", "no:cacheprovider")
    # A test the map does not know (a new one) is still explained: by selection's decision.
    with (pytester.path / "tests" / "test_calc.py").open("a") as file:
        file.write("\n\ndef test_new():\n    pass\n")
    status, out = cli(capsys, history, "why", "tests/test_calc.py::test_new")
    assert status == 0
    assert "tests/test_calc.py::test_new has no coverage map (5 tests have one)" in out
    assert "selected" in out
    # One that does not exist is no new test.
    status, out = cli(capsys, history, "why", "tests/test_calc.py::nope")
    assert status == 1
    assert "tests/test_calc.py::nope: no such test under" in out
    status, out = cli(capsys, history, "deps", "README.md")
    assert status == 1
    assert "README.md is not in the coverage map" in out
    status, out = cli(capsys, history, "deps", "pkg/calc.py::nothing")
    assert status == 1
    assert "pkg/calc.py has no function 'nothing'" in out
    # From a subdirectory, a path relative to the rootdir still names the file.
    os.chdir(pytester.path / "tests")
    status, out = cli(capsys, history, "deps", "pkg/calc.py")
    assert status == 0, out
    assert CLAMP in out
    # A test renamed since it was mapped is left out, and one line says so.
    calc = pytester.path / "tests" / "test_calc.py"
    calc.write_text(calc.read_text().replace("def test_clamp(", "def test_clamp_renamed("))
    capsys.readouterr()
    assert main(["deps", "pkg/calc.py", "--db", str(history)]) == 0
    captured = capsys.readouterr()
    assert CLAMP not in captured.out
    assert "no longer in the working tree (renamed or deleted) left out" in captured.err


def test_says_so_when_another_measurement_runs_in_xdist_workers(
    pytester: pytest.Pytester, history: Path
) -> None:
    make_project(pytester)
    # What pytest-cov does in each worker: its own coverage.py measurement.
    pytester.makeconftest(
        """
        import os
        import coverage

        if os.environ.get("PYTEST_XDIST_WORKER"):
            _cov = coverage.Coverage(data_file=None, config_file=False)
            _cov.start()
        """
    )
    # One worker with its own measurement is the case (a second would only add a start-up).
    result = pytester.runpytest("--feedback-cov", "-p", "no:cacheprovider", "-n", "1")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(
        ["feedback: warning: --feedback-cov cannot map tests while another coverage measurement*"]
    )
    with Store.open_existing(history) as store:
        assert DependencyMap.load(store) is None
