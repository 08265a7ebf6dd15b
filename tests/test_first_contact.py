"""A new user's first pipeline and first pre-push, case by case (issue 18's numbered cases).

Case 3 (a budget with no history) is in test_budget.py; case 5 (docs/ci.md's merge script) and
the recipes' first pipelines run as they are written in docs_tests/.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from gitrepo import git
from pytest_feedback.cli.commands import build_parser, main
from pytest_feedback.history.store import Store
from pytest_feedback.settings import find_history_below, find_project_db

SUITE = {
    "test_a.py": "def test_x():\n    pass\n\n\ndef test_y():\n    pass\n",
    "test_b.py": "def test_z():\n    pass\n",
}


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A git project with a recorded run of SUITE; the current directory is its root."""
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(**SUITE)
    git(pytester.path, "init", "-q", "-b", "main")
    git(pytester.path, "add", "-A")
    git(pytester.path, "commit", "-q", "-m", "suite")
    monkeypatch.chdir(pytester.path)
    monkeypatch.delenv("PYTEST_FEEDBACK_DB", raising=False)
    pytester.runpytest("-p", "no:cacheprovider", "--feedback").assert_outcomes(passed=3)
    return pytester


def test_1_first_pipeline_gets_a_matrix_without_history(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(**SUITE)
    monkeypatch.chdir(pytester.path)
    monkeypatch.delenv("PYTEST_FEEDBACK_DB", raising=False)
    assert main(["shards", "4", "--format", "github-matrix"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"include": [{"shard": f"{k}/4"} for k in (1, 2, 3, 4)]}
    assert err.count("\n") == 1
    assert "no history yet" in err
    # A touched, empty history (the GitLab recipe's first pipeline) is no history either.
    empty = pytester.path / ".pytest-feedback" / "history.db"
    empty.parent.mkdir()
    empty.touch()
    assert main(["shards", "2"]) == 0
    assert "no history yet" in capsys.readouterr().err
    result = pytester.runpytest("-p", "no:cacheprovider", "--feedback-shard=2/4")
    result.stdout.fnmatch_lines(["feedback: shard 2/4: 1 test, no history yet: split by *"])
    result.stdout.no_fnmatch_line("*predicted*")


def test_2_renamed_and_deleted_tests_leave_select_and_shards(
    project: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.path / "test_a.py").write_text(
        "def test_x():\n    pass\n\n\ndef test_w():\n    pass\n"
    )
    (project.path / "test_b.py").unlink()
    capsys.readouterr()
    assert main(["select", "-o", "sel.txt"]) == 0
    assert (project.path / "sel.txt").read_text().split() == ["test_a.py::test_x"]
    err = capsys.readouterr().err
    assert "2 recorded tests no longer in the working tree" in err
    project.runpytest("-p", "no:cacheprovider", "@sel.txt").assert_outcomes(passed=1)
    capsys.readouterr()
    assert main(["shards", "2", "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert sorted(t for s in plan["shards"] for t in s["tests"]) == ["test_a.py::test_x"]


def test_2_a_test_inherited_from_a_base_class_is_kept(
    project: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_feedback.selection.existing import split_present

    (project.path / "test_c.py").write_text(
        "from base import Base\n\nclass TestC(Base):\n    pass\n"
    )
    ids = ["test_c.py::TestC::test_from_base", "test_a.py::test_gone", "test_a.py::test_x"]
    assert split_present(project.path, ids) == (
        ["test_c.py::TestC::test_from_base", "test_a.py::test_x"],
        ["test_a.py::test_gone"],
    )
    # Read away from its working tree (no file of it here): nothing is called gone.
    assert split_present(project.path / "elsewhere", ids) == (ids, [])


def test_4_an_unknown_base_is_named_in_every_mode(
    project: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    said = "the base ref 'mian' is unknown here; did you mean 'main'?"
    for options in (["--feedback-budget=5s"], ["--feedback-select"], ["--feedback-audit"]):
        result = project.runpytest("-p", "no:cacheprovider", *options, "--feedback-base=mian")
        result.stdout.fnmatch_lines([f"*{said}*"])
        assert result.ret == 0
    for command in (["select", "--budget", "5s"], ["select"]):
        capsys.readouterr()
        assert main([*command, "--base", "mian"]) == 0
        output = capsys.readouterr()
        assert "the base ref 'mian' is unknown here" in output.out + output.err, command


def test_6_the_cli_finds_the_history_as_pytest_finds_its_rootdir(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src" / "deep").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[tool.black]\n")  # no pytest table: not it
    (project / "src" / "setup.cfg").write_text("[metadata]\nname = x\n")  # likewise
    (project / "tox.ini").write_text("[pytest]\nfeedback_db = ci/h.db\n")
    assert find_project_db(project / "src" / "deep", environ={}) == project / "ci" / "h.db"
    (project / "src" / "pytest.ini").write_text("")  # nearer, and always pytest's
    expected = project / "src" / ".pytest-feedback" / "history.db"
    assert find_project_db(project / "src" / "deep", environ={}) == expected
    (project / "tox.ini").unlink()
    (project / "src" / "pytest.ini").unlink()
    assert find_project_db(project / "src" / "deep", environ={}) == (
        project / ".pytest-feedback" / "history.db"  # the nearest pyproject.toml, as pytest 8.1+
    )


def test_6_a_history_below_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\ntestpaths = ['b']\n")
    for sub in ("a", "b"):
        below = tmp_path / sub / ".pytest-feedback" / "history.db"
        below.parent.mkdir(parents=True)
        Store(below).close()
    assert find_history_below(tmp_path) == tmp_path / "b" / ".pytest-feedback" / "history.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTEST_FEEDBACK_DB", raising=False)
    assert main(["runs"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "pytest-feedback: error: no history at .pytest-feedback/history.db, but there is one at "
        "b/.pytest-feedback/history.db: pass --db b/.pytest-feedback/history.db, or run from b\n"
    )


def test_7_a_moved_rootdir_is_refused_before_conftest_imports(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    pytester.makeini("[pytest]\npythonpath = .\ntestpaths = tests\n")
    pytester.mkpydir("shop")
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "conftest.py").write_text("import shop\n")
    (pytester.path / "tests" / "test_x.py").write_text("def test_x():\n    pass\n")
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "h.db"
    Store(elsewhere).close()
    result = pytester.runpytest_subprocess("--feedback", "--feedback-db", str(elsewhere))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*write --feedback-db={elsewhere} instead"])
    assert "ModuleNotFoundError" not in result.stdout.str() + result.stderr.str()


def test_8_merge_inputs_stay_as_they_were_and_shard_files_are_ignored(
    project: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = project.path / ".pytest-feedback"
    shutil.rmtree(folder)
    folder.mkdir()  # as a CI script's `mkdir -p` makes it, before pytest-feedback does
    (folder / "history.db").touch()
    shard = folder / "shard-1.db"
    shutil.copy(folder / "history.db", shard)
    project.runpytest("-p", "no:cacheprovider", f"--feedback-db={shard}").assert_outcomes(passed=3)
    before = sorted(p.name for p in folder.iterdir())
    assert main(["merge", str(shard), "-o", str(folder / "history.db")]) == 0
    assert sorted(p.name for p in folder.iterdir()) == before  # no -wal/-shm beside the input
    assert (folder / ".gitignore").is_file()
    git(project.path, "add", "-A")
    status = project.run("git", "status", "--porcelain").stdout.str()
    assert ".pytest-feedback" not in status


def test_9_small_things(project: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["why", "tests/nope.py::x"]) == 1  # a test that does not exist is no "new test"
    assert "tests/nope.py::x: no such test under" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["runs", "--limit", "0"])  # not "no runs recorded yet"
    assert "--limit: '0' is not a whole number >= 1" in capsys.readouterr().err
    assert main(["report"]) == 0
    assert "1 run · 3 tests" in capsys.readouterr().out
    assert main(["shards", "3"]) == 0
    assert "  shard 1/3:      1 test  " in capsys.readouterr().out


def _check_help(parser: argparse.ArgumentParser, path: str) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {choice.dest: choice.help for choice in action._choices_actions}
            for name, command in action.choices.items():
                assert listed.get(name), f"{path} {name}: no one-line help in `{path} --help`"
                if path == "pytest-feedback":  # what `pytest-feedback NAME --help` explains
                    assert command.description, f"{name}: no description in `{name} --help`"
                _check_help(command, f"{path} {name}")
        else:
            assert action.help, f"{path} {'/'.join(action.option_strings) or action.dest}: no help"


def test_9_every_subcommand_and_option_has_help() -> None:
    _check_help(build_parser(), "pytest-feedback")


def test_9_estimates_count_the_fixtures_a_run_sets_up() -> None:
    from pytest_feedback.history.estimates import Estimates, FixtureEstimate, TestEstimate

    tests = {
        n: TestEstimate(n, 0.1, 0.0, 0.1, 0.0, 5, 0.0, False, 1.0, "passed")
        for n in ("a.py::x", "a.py::y", "b.py::z")
    }
    db = FixtureEstimate("db", "module", "conftest.py::db", 1.0, 0.5, 2.0, 3)
    both = {n: [0] for n in tests}
    est = Estimates(tests, (db,), both)
    # Own costs, plus the module fixture once per module: the selection's "est." and the report.
    assert est.run_cost(["a.py::x", "a.py::y"]) == pytest.approx(0.2 + 1.5)
    assert est.run_cost(tests) == pytest.approx(0.3 + 2 * 1.5)
