"""Changed files and lines: difflib against the map's snapshots, git for the rest."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fake_map import FakeMap
from pytest_feedback.selection.changes import (
    ChangeError,
    collect_changes,
    describe_lines,
    diff_lines,
    parse_name_status,
)

MODULE = '''\
"""The module."""

LIMIT = 10


def small(x):
    # is it small?
    return x < LIMIT


def double(x):
    """Twice x."""
    return x * 2
'''


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def make_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text, encoding="utf-8")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "start")
    return path


def test_a_changed_line_is_reported_in_recorded_coordinates() -> None:
    new = MODULE.replace('"""The module."""\n', '"""The module."""\nimport os\n\n')
    new = new.replace("x < LIMIT", "x <= LIMIT")
    diff = diff_lines(MODULE, new, python=True)
    # `return x < LIMIT` in the recorded text, and the module-level lines around the new import
    assert diff.old == {1, 3, 8}
    assert 10 in diff.new
    assert not diff.trivial


def test_an_inserted_statement_marks_the_lines_of_its_block() -> None:
    new = MODULE.replace("    return x * 2", "    x = x + 1\n    return x * 2")
    diff = diff_lines(MODULE, new, python=True)
    assert diff.old == {12, 13}  # the docstring line above is a neighbour too, the def line is not
    assert diff.new == {13}


def test_code_inserted_between_comments_marks_the_code_around_them() -> None:
    old = "X = 1\n\n# one\n# two\n"
    # no test ran a comment line: the statement above must be marked (its module's import)
    assert diff_lines(old, old + "Y = len('ab')\n", python=True).old == {1}
    assert diff_lines(old, old + "Y = 2\n").old == {4}  # not Python: the lines themselves


def test_deleting_a_statement_marks_it() -> None:
    new = MODULE.replace("    # is it small?\n    return x < LIMIT\n", "    pass\n")
    assert diff_lines(MODULE, new, python=True).old == {7, 8}


@pytest.mark.parametrize(
    "edit",
    [
        ("# is it small?", "# is it tiny?"),
        ('"""Twice x."""', '"""Twice x.\n\n    Longer now.\n    """'),
        ("def small(x):\n", "def small(x):\n    '''Added docstring.'''\n"),
        ("\n\ndef double", "\n\n\n# a new comment\ndef double"),
    ],
    ids=["comment", "docstring", "new-docstring", "blank-and-comment"],
)
def test_comment_or_docstring_edits_are_trivial(edit: tuple[str, str]) -> None:
    new = MODULE.replace(*edit)
    assert new != MODULE
    diff = diff_lines(MODULE, new, python=True)
    assert diff.trivial
    assert not diff.old


def test_a_string_that_is_not_a_docstring_is_code() -> None:
    new = MODULE.replace("return x * 2", "return x * 2, 'doubled'")
    assert not diff_lines(MODULE, new, python=True).trivial


def test_an_indentation_change_is_code() -> None:
    text = "def f(x):\n    if x:\n        y = 1\n        y = 2\n    return 3\n"
    moved = "def f(x):\n    if x:\n        y = 1\n    y = 2\n    return 3\n"
    assert diff_lines(text, moved, python=True).old == {4}


def test_name_status_with_renames_spaces_and_unicode() -> None:
    out = "M\0src/a b.py\0R087\0old/ü.py\0new/ü.py\0A\0x.txt\0D\0gone.py\0"
    parsed = parse_name_status(out)
    assert [(c.path, c.status, c.old_path) for c in parsed] == [
        ("src/a b.py", "modified", None),
        ("new/ü.py", "renamed", "old/ü.py"),
        ("x.txt", "added", None),
        ("gone.py", "deleted", None),
    ]


def test_describe_lines() -> None:
    assert describe_lines({3, 1, 2, 7, 9, 10}) == "1-3, 7, 9-10"


def test_changes_against_the_map_snapshot(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"pkg/mod.py": MODULE, "data/a b.json": "{}"})
    fake = FakeMap(sources={"pkg/mod.py": MODULE, "data/a b.json": "{}"})
    assert collect_changes(repo, fake).files == {}

    (repo / "pkg/mod.py").write_text(MODULE.replace("x * 2", "x * 3"), encoding="utf-8")
    (repo / "data/a b.json").write_text('{"k": 1}', encoding="utf-8")
    (repo / "pkg/ünï.py").write_text("X = 1\n", encoding="utf-8")  # untracked
    changes = collect_changes(repo, fake)
    assert sorted(changes.files) == ["data/a b.json", "pkg/mod.py", "pkg/ünï.py"]
    assert changes.files["pkg/mod.py"].lines == {13}
    assert changes.files["data/a b.json"].lines is None
    assert changes.files["pkg/ünï.py"].status == "added"


def test_a_comment_only_edit_is_trivial_even_without_a_snapshot(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"pkg/mod.py": MODULE})
    (repo / "pkg/mod.py").write_text(MODULE.replace("is it small", "small?"), encoding="utf-8")
    change = collect_changes(repo, FakeMap()).files["pkg/mod.py"]
    assert change.trivial


def test_a_committed_rename_maps_back_to_the_recorded_path(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"pkg/mod.py": MODULE})
    fake = FakeMap(sources={"pkg/mod.py": MODULE})
    git(repo, "mv", "pkg/mod.py", "pkg/renamed.py")
    (repo / "pkg/renamed.py").write_text(MODULE.replace("x * 2", "x * 3"), encoding="utf-8")
    change = collect_changes(repo, fake).files["pkg/renamed.py"]
    assert change.status == "renamed"
    assert change.recorded_path == "pkg/mod.py"
    assert change.lines == {13}


def test_base_ref_adds_committed_changes_since_the_merge_base(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"pkg/mod.py": MODULE, "pkg/other.py": "A = 1\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "pkg/other.py").write_text("A = 2\n", encoding="utf-8")
    git(repo, "commit", "-q", "-am", "change")
    # The map was recorded after the commit: only the base shows the change.
    fake = FakeMap(sources={"pkg/mod.py": MODULE, "pkg/other.py": "A = 2\n"})
    assert collect_changes(repo, fake).files == {}
    changes = collect_changes(repo, fake, base="main")
    assert changes.files["pkg/other.py"].lines == {1}
    assert changes.base_commit is not None


def test_an_unknown_base_ref_is_an_error_naming_the_fix(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"a.py": "A = 1\n"})
    with pytest.raises(ChangeError, match=r"unknown here, and this repository has no remote"):
        collect_changes(repo, FakeMap(), base="origin/nope")
    subprocess.run(["git", "remote", "add", "origin", str(tmp_path / "x")], cwd=repo, check=True)
    with pytest.raises(ChangeError, match=r"unknown here .*fetch it, e.g. `git fetch origin nope`"):
        collect_changes(repo, FakeMap(), base="origin/nope~2")


def test_without_git_the_snapshots_say_what_changed(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("A = 1\nB = 2\n", encoding="utf-8")
    (tmp_path / "t").mkdir()
    (tmp_path / "t/test_a.py").write_text("def test_a():\n    pass\n", encoding="utf-8")
    snapshots = FakeMap(sources={"a.py": "A = 1\nB = 3\n", "t/test_a.py": "x = 1\n"})
    (tmp_path / "t/test_a.py").write_text("x = 1\n", encoding="utf-8")
    (tmp_path / "t/conftest.py").write_text("import pytest\n", encoding="utf-8")
    (tmp_path / "new.py").write_text("C = 1\n", encoding="utf-8")  # nothing imports it: unseen
    changes = collect_changes(tmp_path, snapshots)
    assert sorted(changes.files) == ["a.py", "t/conftest.py"]
    assert changes.files["a.py"].lines == {2}
    assert changes.files["t/conftest.py"].status == "added"
    with pytest.raises(ChangeError, match="git is not available"):
        collect_changes(tmp_path, snapshots, base="main")  # a base needs git


def test_a_rootdir_below_the_repository_top(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "p", {"sub/pkg/m.py": "A = 1\n", "other/x.py": "B = 1\n"})
    (repo / "sub/pkg/m.py").write_text("A = 2\n", encoding="utf-8")
    (repo / "other/x.py").write_text("B = 2\n", encoding="utf-8")
    changes = collect_changes(repo / "sub", FakeMap())
    assert list(changes.files) == ["pkg/m.py"]
