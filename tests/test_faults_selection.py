"""Git trouble under --feedback-select (docs/reliability.md): a safe selection and a reason.

Maps are recorded in a subprocess, as in test_selection_real.py: one process measuring several
pytester projects' same-named packages in turn is not what users do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = {
    "pkg/__init__.py": "",
    "pkg/mod.py": "def f():\n    return 1\n",
    "test_a.py": (
        "from pkg.mod import f\ndef test_f():\n    assert f() == 1\ndef test_other():\n    pass\n"
    ),
    "pytest.ini": "[pytest]\npythonpath = .\n",
    ".gitignore": "stdout\nstderr\nrunpytest-current\n",  # pytester's own files
}
GIT = ("git", "-c", "user.name=t", "-c", "user.email=t@t")


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    for name, text in PROJECT.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return pytester


def record(pytester: pytest.Pytester, *args: str) -> None:
    result = pytester.runpytest_subprocess("--feedback-cov", "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=2)


def commit(pytester: pytest.Pytester, message: str) -> None:
    pytester.run("git", "add", "-A")
    pytester.run(*GIT, "commit", "-qm", message)


@pytest.fixture(scope="module")
def committed_and_recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`PROJECT` in a repository of one commit, its map recorded in a process of its own: where
    several tests start. Made once; each test works on a copy (`recorded_repo`)."""
    root = tmp_path_factory.mktemp("recorded")
    for name, text in PROJECT.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    for command in (["git", "init", "-q"], ["git", "add", "-A"], [*GIT, "commit", "-qm", "one"]):
        subprocess.run(command, cwd=root, env=env, check=True, capture_output=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--feedback-cov", "-p", "no:cacheprovider"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
    return root


@pytest.fixture
def recorded_repo(project: pytest.Pytester, committed_and_recorded: Path) -> pytest.Pytester:
    """`project` committed once and recorded, as `committed_and_recorded` made it."""
    shutil.copytree(committed_and_recorded, project.path, dirs_exist_ok=True)
    return project


def test_not_a_repository_selects_from_the_snapshots(project: pytest.Pytester) -> None:
    record(project)
    # Another size than the recorded text: a .pyc written in the same second would pass for it.
    (project.path / "pkg/mod.py").write_text("def f():\n    return 22\n")
    result = project.runpytest(
        "--feedback-select", "--feedback-no-record", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["feedback: 1 of 2 tests affected by 1 changed file *"])


def test_an_unknown_base_runs_everything_and_says_how_to_fetch_it(
    recorded_repo: pytest.Pytester,
) -> None:
    project = recorded_repo
    result = project.runpytest(
        "--feedback-select", "--feedback-base=no-such-ref", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["feedback: running all 2 tests: the base ref 'no-such-ref' is unknown here*fetch*"]
    )


def test_a_detached_head_selects_by_the_change(recorded_repo: pytest.Pytester) -> None:
    project = recorded_repo
    project.run("git", "checkout", "-q", "--detach")
    (project.path / "pkg" / "mod.py").write_text("def f():\n    return 22\n")  # size: see above
    result = project.runpytest("--feedback-select", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["feedback: 1 of 2 tests affected by 1 changed file*"])


def test_a_shallow_clone_without_the_base_runs_everything(project: pytest.Pytester) -> None:
    origin = project.path
    project.run("git", "init", "-q")
    commit(project, "one")
    (origin / "pkg" / "mod.py").write_text("def f():\n    return 1  # two\n")
    commit(project, "two")
    clone = origin / "clone"
    project.run("git", "clone", "-q", "--depth", "1", f"file://{origin}", str(clone))
    record(project, f"--rootdir={clone}", str(clone))
    result = project.runpytest(
        "--feedback-select",
        "--feedback-base=HEAD~1",
        "-p",
        "no:cacheprovider",
        f"--rootdir={clone}",
        str(clone),
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["feedback: running all 2 tests: the base ref 'HEAD~1'*"])


def test_another_python_or_other_packages_select_everything(
    recorded_repo: pytest.Pytester,
) -> None:
    import json
    import sqlite3

    project = recorded_repo
    history = project.path / ".pytest-feedback" / "history.db"
    con = sqlite3.connect(history)
    (value,) = con.execute("SELECT value FROM meta WHERE key = 'map_environment'").fetchone()
    recorded = json.loads(value)
    assert recorded["python"].split()[1].count(".") == 2
    assert recorded["packages"]
    # Nothing changed: nothing runs.
    quiet = project.runpytest("--feedback-select", "--feedback-no-record", "-p", "no:cacheprovider")
    quiet.stdout.fnmatch_lines(["feedback: 0 of 2 tests affected*"])
    # The map was recorded under another Python: everything runs, and the line says why.
    recorded["python"] = "CPython 2.7.18"
    con.execute("UPDATE meta SET value = ? WHERE key = 'map_environment'", (json.dumps(recorded),))
    con.commit()
    con.close()
    result = project.runpytest("--feedback-select", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["feedback: running all 2 tests: *Python*2.7.18*"])
