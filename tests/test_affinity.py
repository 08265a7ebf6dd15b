"""Textual affinity: the tests that name what a change touched rank first in a budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitrepo import git
from pytest_feedback.history.estimates import Estimates, TestEstimate
from pytest_feedback.planning.budget import Candidate, plan_budget, risk
from pytest_feedback.selection.affinity import affinity, change_words, spans, words_of
from pytest_feedback.selection.changes import ChangeSet, FileChange


def test_words_are_identifiers_and_their_parts_without_keywords() -> None:
    assert words_of('DATABRICKS = "databricks_m"  # if x') == {"databricks", "databricks_m"}
    assert words_of("self.parseOne(is_type) and None") == {
        "parseone", "parse", "one", "is_type", "type",
    }  # fmt: skip


MODULE = """import pytest

@pytest.mark.parametrize(
    "x", ["alpha"]
)
def test_a(x):
    assert x

def test_b():
    def inner():
        return "beta"
    assert inner()

class TestC:
    name = "gamma"

    @staticmethod
    def test_d():
        pass

    class TestInner:
        def test_e(self):
            return "delta"
"""


def test_spans_cover_decorators_bodies_and_class_preambles() -> None:
    text = "\n" + MODULE  # span offsets count the newline `spans` puts first

    def said(name: str) -> str:
        return " | ".join(text[s.start : s.end].strip() for s in spans(MODULE)[name])

    assert said("test_a").startswith("@pytest.mark.parametrize(")
    assert "alpha" in said("test_a")
    assert "beta" not in said("test_a")
    assert "beta" in said("test_b")
    assert "gamma" not in said("test_b")
    assert said("TestC::test_d") == (
        '@staticmethod\n    def test_d():\n        pass | class TestC:\n    name = "gamma"'
    )
    inner = said("TestC::TestInner::test_e")
    assert "delta" in inner
    assert "gamma" in inner  # the outer class's preamble
    assert "pass" not in inner


def test_rare_words_weigh_more_and_common_ones_nothing(tmp_path: Path) -> None:
    (tmp_path / "test_m.py").write_text(
        "def test_one():\n    assert parse('alpha')\n"
        "def test_two():\n    assert parse('beta')\n"
        "def test_three():\n    assert parse('ALPHA_X')\n"
        "def test_four():\n    assert parse('gamma')\n",
        encoding="utf-8",
    )
    ids = [f"test_m.py::test_{n}" for n in ("one", "two", "three", "four")]
    ids.append("test_p.py::test_p[alpha]")  # no such file: its parameter id names "alpha"
    scores = affinity(ids, {"alpha", "parse"}, tmp_path)
    # "ALPHA_X" names "alpha": case and underscores do not hide a word.
    assert scores[ids[0]] == scores[ids[2]] == 1.0
    # "alpha" (3 tests of 5) weighs more than "parse" (4 of 5).
    assert 1.0 > scores[ids[4]] > scores[ids[1]] == scores[ids[3]] > 0
    assert affinity(ids[:4], {"parse"}, tmp_path) == {}  # a word every test names
    assert affinity(ids[:4], {"alph", "parser"}, tmp_path) == {}  # words are whole


def _three_tests(folder: Path, name: str, one: str, two: str) -> list[str]:
    """A module ``name`` whose test_one asserts ``one``, test_two ``two``, test_three nothing."""
    (folder / name).write_text(
        f"def test_one():\n    assert {one}\ndef test_two():\n    assert {two}\n"
        "def test_three():\n    pass\n",
        encoding="utf-8",
    )
    return [f"{name}::test_{n}" for n in ("one", "two", "three")]


def test_a_longer_word_does_not_hide_a_shorter_one(tmp_path: Path) -> None:
    ids = _three_tests(tmp_path, "test_m.py", "databricks_mode", "xdatabricks or DATABRICKS_M")
    scores = affinity(ids, {"databricks_m", "databricks"}, tmp_path)
    assert set(scores) == {ids[0], ids[1]}  # "databricks_mode" names "databricks"
    assert scores[ids[1]] == 1.0 > scores[ids[0]]  # "DATABRICKS_M" names both
    # ... nor a whole identifier the words of its parts.
    ids = _three_tests(tmp_path, "test_n.py", "MAX_WORDS", "max(words)")
    scores = affinity(ids, words_of("MAX_WORDS = 32"), tmp_path)
    assert set(scores) == {ids[0], ids[1]}
    assert scores[ids[0]] == 1.0 > scores[ids[1]]  # the identifier itself, and its parts


def test_files_that_cannot_be_read_as_utf8_or_at_all_name_what_they_can(tmp_path: Path) -> None:
    (tmp_path / "test_latin.py").write_bytes(b"# caf\xe9\ndef test_b():\n    assert alpha\n")
    ids = ["test_gone.py::test_a", "test_latin.py::test_b", "test_doc.txt::test_c", "x"]
    assert affinity(ids, {"alpha"}, tmp_path) == {"test_latin.py::test_b": 1.0}


class _Recorded:
    def __init__(self, sources: dict[str, str]) -> None:
        self.sources = sources

    def recorded_files(self) -> dict[str, str]:
        return {path: "" for path in self.sources}

    def recorded_source(self, path: str) -> str | None:
        return self.sources.get(path)


def test_the_words_of_a_change_are_its_old_and_new_lines_and_its_module(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "names.py").write_text('A = 1\nKIND = "newkind"\n', encoding="utf-8")
    (tmp_path / "pkg" / "__init__.py").write_text("", encoding="utf-8")
    recorded = _Recorded({"pkg/names.py": 'A = 1\nKIND = "oldkind"\n'})
    changes = ChangeSet(
        {
            "pkg/names.py": FileChange(
                "pkg/names.py", "modified", lines=frozenset({2}), new_lines=frozenset({2})
            ),
            "pkg/__init__.py": FileChange("pkg/__init__.py", "modified"),
            "pkg/notes.py": FileChange("pkg/notes.py", "modified", trivial=True),
        }
    )
    assert change_words(changes, tmp_path, recorded) == {
        "names", "kind", "oldkind", "newkind", "pkg",
    }  # fmt: skip


def test_affinity_orders_tests_that_coverage_cannot_tell_apart() -> None:
    names = [f"test_m.py::test_{i}" for i in range(4)]
    est = Estimates(
        {n: TestEstimate(n, 1.0, 0.0, 1.0, 0.0, 5, 0.0, False, 1.0, "passed") for n in names}
    )
    named = {names[2]: 1.0, names[3]: 0.2}
    candidates = [Candidate(n, affected=True, affinity=named.get(n, 0.0)) for n in names]
    assert risk(candidates[2]) > risk(candidates[3]) > risk(candidates[0])
    plan = plan_budget(candidates, est, budget_s=2.5, affected_known=True)
    assert plan.chosen == (names[2], names[3])


KINDS = 'KINDS = {\n    "alpha": 1,\n    "beta": 2,\n    "gamma": 3,\n}\n'
#: test_gamma is the slowest: by risk per second alone it would run last.
SUITE = {
    f"test_{name}.py": (
        f"import time\nfrom kinds import KINDS\n\ndef test_{name}():\n"
        f'    time.sleep({0.02 * value})\n    assert KINDS["{name}"] == {value}\n'
    )
    for value, name in enumerate(("alpha", "beta", "gamma"), 1)
}


def test_a_budget_runs_first_the_tests_that_name_the_changed_constant(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_feedback.cli.commands import main

    pytester.makepyfile(kinds=KINDS, **SUITE)
    git(pytester.path, "init", "-q")
    git(pytester.path, "add", "-A")
    git(pytester.path, "commit", "-q", "-m", "start")
    # In a process of its own: in-process, after another in-process budget run, coverage
    # measured nothing (an in-process artefact, noted; a user's pytest is one session).
    pytester.runpytest_subprocess("--feedback-cov", "-p", "no:cacheprovider").assert_outcomes(
        passed=3
    )
    # Every test reads KINDS: all are affected, and only the name of the changed key tells
    # which one depends on the change.
    (pytester.path / "kinds.py").write_text(KINDS.replace("3", "4"), encoding="utf-8")

    result = pytester.runpytest(
        "--feedback-budget=60s", "--feedback-no-record", "-v", "-p", "no:cacheprovider"
    )
    result.stdout.fnmatch_lines(["*running all 3 affected tests*"])
    ran = [line.split()[0] for line in result.stdout.lines if line.endswith("%]")]
    assert ran[0] == "test_gamma.py::test_gamma"
    result.assert_outcomes(passed=2, failed=1)

    capsys.readouterr()
    db = f"--db={pytester.path / '.pytest-feedback' / 'history.db'}"
    assert main(["select", "--budget", "60s", "--format", "json", db]) == 0
    selected = [entry["nodeid"] for entry in json.loads(capsys.readouterr().out)["selected"]]
    assert selected[0] == "test_gamma.py::test_gamma"
