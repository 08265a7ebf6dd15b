"""End to end with the real coverage map: record with --feedback-cov, edit, select."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gitrepo import git
from pytest_feedback.cli.commands import main

FILES = {
    ".gitignore": "stdout\nstderr\nrunpytest-current\n",  # pytester's own files
    "pkg/__init__.py": "",
    "pkg/mod.py": (
        "LIMIT = 10\n\n\ndef small(x):\n    # is it small?\n    return x < LIMIT\n\n\n"
        'def double(x):\n    """Twice x."""\n    return x * 2\n'
    ),
    "pkg/data.py": (
        "import json\nfrom pathlib import Path\n\n\ndef load():\n"
        '    return json.loads((Path(__file__).parent.parent / "data" / "v 1.json").read_text())\n'
    ),
    "data/v 1.json": '{"a": 1}\n',
    "tests/test_mod.py": (
        "from pkg.mod import double, small\n\n\ndef test_small():\n    assert small(3)\n\n\n"
        "def test_double():\n    assert double(2) == 4\n"
    ),
    "tests/test_data.py": (
        "from pkg.data import load\n\n\ndef test_load():\n    assert load() == {'a': 1}\n"
    ),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project, committed and mapped once (`--feedback-cov` in a child process)."""
    root = tmp_path_factory.mktemp("mapped")
    for name, text in {**FILES, "tox.ini": "[pytest]\npythonpath = .\n"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    record(root)
    return root


def record(root: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pytest", "--feedback-cov", "-p", "no:cacheprovider", "-q"],
        cwd=root,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def mapped(pytester: pytest.Pytester, template: Path) -> pytest.Pytester:
    shutil.copytree(template, pytester.path, dirs_exist_ok=True, symlinks=True)
    return pytester


def edit(pytester: pytest.Pytester, path: str, old: str, new: str) -> None:
    target = pytester.path / path
    text = target.read_text(encoding="utf-8")
    assert old in text
    target.write_text(text.replace(old, new), encoding="utf-8")


def run_select(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--feedback-select", "--feedback-no-record", "-p", "no:cacheprovider", *args
    )


@pytest.mark.parametrize(
    ("path", "old", "new", "line", "outcomes"),
    [
        ("pkg/mod.py", "x * 2", "x * 3", "1 of 3 tests affected by 1 changed file", {"failed": 1}),
        ("pkg/mod.py", "LIMIT = 10", "LIMIT = 2", "1 of 3 tests affected by 1 changed file",
         {"failed": 1}),
        ("data/v 1.json", '"a": 1', '"a": 2', "1 of 3 tests affected by 1 changed file",
         {"failed": 1}),
        ("pkg/mod.py", "# is it small?", "# small?", "0 of 3 tests affected by 0 changed files",
         {}),
        ("pkg/mod.py", '"""Twice x."""', '"""Two times x."""',
         "0 of 3 tests affected by 0 changed files", {}),
    ],
    ids=["line", "constant", "data-file", "comment", "docstring"],
)  # fmt: skip
def test_edits_select_what_they_reach(
    mapped: pytest.Pytester,
    path: str,
    old: str,
    new: str,
    line: str,
    outcomes: dict[str, int],
) -> None:
    edit(mapped, path, old, new)
    result = run_select(mapped)
    left_out = 3 - sum(outcomes.values())
    result.stdout.fnmatch_lines([f"feedback: {line} (est. * s); {left_out} deselected"])
    # pytest counts only the deselected tests it collected: unaffected files are not collected
    pytest_deselected = result.parseoutcomes().get("deselected", 0)
    assert pytest_deselected <= left_out
    result.assert_outcomes(deselected=pytest_deselected, **outcomes)


def test_xdist_workers_agree_and_the_line_is_printed(mapped: pytest.Pytester) -> None:
    edit(mapped, "pkg/mod.py", "x * 2", "x * 3")
    result = run_select(mapped, "-n", "2")
    result.stdout.fnmatch_lines(["feedback: 1 of 3 tests affected by 1 changed file *"])
    result.assert_outcomes(failed=1)


def test_project_wide_input_runs_everything(mapped: pytest.Pytester) -> None:
    edit(mapped, "tox.ini", "pythonpath = .", "pythonpath = .\nmarkers = slow")
    result = run_select(mapped)
    result.stdout.fnmatch_lines(
        ["feedback: running all 3 tests: project-wide input changed: tox.ini [pytest.markers]"]
    )
    result.assert_outcomes(passed=3)


def test_base_ref_and_the_command_line(
    mapped: pytest.Pytester, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    git(mapped.path, "branch", "-m", "main")
    git(mapped.path, "checkout", "-q", "-b", "feature")
    edit(mapped, "pkg/mod.py", "x * 2", "x + x")
    git(mapped.path, "commit", "-qam", "same thing")
    record(mapped.path)  # the map is recorded after the commit
    monkeypatch.chdir(mapped.path)
    capsys.readouterr()
    assert main(["select", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["selected"] == []
    assert main(["select", "--base", "main", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert [t["nodeid"] for t in doc["selected"]] == ["tests/test_mod.py::test_double"]
    assert doc["selected"][0]["reasons"] == ["executed changed lines of pkg/mod.py"]
    assert doc["base"] == "main"
    assert err.startswith("feedback: 1 of 3 tests affected by 1 changed file")

    assert main(["select", "--base", "main", "-o", "selected.txt"]) == 0
    capsys.readouterr()
    result = mapped.runpytest("@selected.txt", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)

    assert main(["why", "tests/test_mod.py::test_small", "--base", "main"]) == 0
    assert (
        capsys.readouterr()
        .out.rstrip()
        .endswith("not selected: it executed none of the changed lines of pkg/mod.py")
    )
    assert main(["why", "tests/test_mod.py::test_double", "--base", "main"]) == 0
    assert (
        capsys.readouterr()
        .out.rstrip()
        .endswith(
            "selected because:\n  - executed changed lines of pkg/mod.py\n"
            "    changed lines it reaches in pkg/mod.py: 11"
        )
    )


def test_a_constant_changed_since_the_base_reaches_its_readers_only(
    mapped: pytest.Pytester, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    git(mapped.path, "branch", "-m", "main")
    git(mapped.path, "checkout", "-q", "-b", "feature")
    edit(mapped, "pkg/mod.py", "LIMIT = 10", "LIMIT = 20")
    git(mapped.path, "commit", "-qam", "a bigger limit")
    record(mapped.path)
    monkeypatch.chdir(mapped.path)
    capsys.readouterr()
    assert main(["select", "--base", "main", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["selected"] == [
        {
            "nodeid": "tests/test_mod.py::test_small",
            "reasons": ["reaches LIMIT, changed in pkg/mod.py"],
        }
    ]


def test_changed_lines_of_many_tests_at_once(mapped: pytest.Pytester) -> None:
    from pytest_feedback.selection.selector import load_selector

    edit(mapped, "pkg/mod.py", "x * 2", "x * 3")
    selector = load_selector(mapped.path / ".pytest-feedback" / "history.db", mapped.path, None)
    tests = ["tests/test_mod.py::test_small", "tests/test_mod.py::test_double"]
    tests.append("tests/test_data.py::test_load")
    assert selector.own_changed_lines(tests) == {"tests/test_mod.py::test_double": 1}
    assert [selector.changed_lines(n) for n in tests] == [0, 1, 0]
