"""The edit-run loop in one flag: `pytest --feedback-select` maps the tests it runs again, so each
run selects what the latest edit affects (plus failures), not everything since the first map.

Every run measures, so each runs in a child process (as in test_selection_real.py); outside a
git repository, which the loop must not need.
"""

from __future__ import annotations

import re

import pytest

MOD = (
    "LIMIT = 10\n\n\ndef small(x):\n    return x < LIMIT\n\n\n"
    "def double(x):\n    return x * 2\n\n\ndef triple(x):\n    return x * 3\n"
)
PROJECT = {
    "pytest.ini": "[pytest]\npythonpath = .\n",
    "pkg/__init__.py": "",
    "pkg/mod.py": MOD,
    "tests/test_mod.py": (
        "from pkg.mod import double, small, triple\n\n\ndef test_small():\n    assert small(9)\n"
        "\n\ndef test_double():\n    assert double(2) == 4\n\n\n"
        "def test_triple():\n    assert triple(2) == 6\n"
    ),
    "tests/test_other.py": "def test_other():\n    assert True\n",
}


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # edits within one second must count
    for name, text in PROJECT.items():
        (pytester.path / name).parent.mkdir(parents=True, exist_ok=True)
        (pytester.path / name).write_text(text, encoding="utf-8")
    return pytester


def edit(pytester: pytest.Pytester, old: str, new: str) -> None:
    path = pytester.path / "pkg/mod.py"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def select(pytester: pytest.Pytester, *args: str) -> tuple[dict[str, str], str]:
    """Run `pytest --feedback-select -v`: node id -> outcome of the tests that ran, and the line."""
    result = pytester.runpytest_subprocess(
        "--feedback-select", "-v", "-p", "no:cacheprovider", *args
    )
    out = result.stdout.str()
    ran = dict(re.findall(r"^(tests/\S+::\S+) (PASSED|FAILED)", out, re.MULTILINE))
    line = next(x for x in out.splitlines() if x.startswith("feedback: ") and "tests" in x)
    return ran, line


def test_three_edits_each_select_what_the_latest_affects(project: pytest.Pytester) -> None:
    ran, line = select(project)  # no history yet: everything runs, and is mapped
    assert len(ran) == 4
    assert line.startswith("feedback: running all 4 tests: no history")

    edit(project, "x * 2", "x + x")  # same result
    ran, line = select(project)
    assert ran == {"tests/test_mod.py::test_double": "PASSED"}, line

    edit(project, "x * 3", "x * 4")  # breaks test_triple; test_double's edit is mapped already
    ran, line = select(project)
    assert ran == {"tests/test_mod.py::test_triple": "FAILED"}, line

    # A constant only small() reads, breaking test_small; -k leaves it out this time.
    edit(project, "LIMIT = 10", "LIMIT = 8")
    ran, line = select(project, "-k", "double or other")
    assert ran == {}, line
    # The map holds the new mod.py now, and test_small, affected but not run, is outdated;
    # test_triple still fails. Nothing else runs.
    ran, line = select(project)
    assert ran == {
        "tests/test_mod.py::test_small": "FAILED",
        "tests/test_mod.py::test_triple": "FAILED",
    }, line


def test_the_ini_setting_turns_the_refresh_off(project: pytest.Pytester) -> None:
    (project.path / "pytest.ini").write_text(
        "[pytest]\npythonpath = .\nfeedback_select_refresh = false\n", encoding="utf-8"
    )
    project.runpytest_subprocess("--feedback-cov", "-p", "no:cacheprovider").assert_outcomes(
        passed=4
    )
    edit(project, "x * 2", "x + x")
    # Nothing measures now, so the run can be in this process.
    first = project.runpytest("--feedback-select", "-p", "no:cacheprovider")
    first.assert_outcomes(passed=1, deselected=2)  # test_other.py is not even collected
    edit(project, "x * 3", "x * 4")
    second = project.runpytest("--feedback-select", "-p", "no:cacheprovider")
    second.assert_outcomes(passed=1, failed=1, deselected=1)  # both edits, against the old map
    assert "feedback: mapped" not in first.stdout.str() + second.stdout.str()
