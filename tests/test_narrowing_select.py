"""Narrowed edits decided by the selector: who may read a changed name without naming it."""

from __future__ import annotations

from pathlib import Path

from fake_map import FakeDeps, FakeMap
from pytest_feedback.history.estimates import Estimates
from pytest_feedback.selection.changes import ChangeSet, FileChange
from pytest_feedback.selection.selector import Selector

MOD = "LIMIT = 10\n\n\ndef small(x):\n    return x < LIMIT\n"
DYN = "def read(obj, name):\n    return getattr(obj, name)\n"
HINTS = "import typing\n\n\ndef hints(f):\n    return typing.get_type_hints(f)\n"
SOURCES = {
    "pkg/mod.py": MOD,
    "pkg/dyn.py": DYN,
    "pkg/hints.py": HINTS,
    "tests/test_a.py": "from pkg import dyn, mod\n",
}


def decide(tmp_path: Path, new: str, deps: dict[str, FakeDeps]) -> dict[str, list[str]]:
    for path, text in {**SOURCES, "pkg/mod.py": new}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    fake = FakeMap(deps=deps, sources=dict(SOURCES), import_lines={"pkg/mod.py": {1, 4}})
    changed = {i + 1 for i, (a, b) in enumerate(zip(MOD.splitlines(), new.splitlines())) if a != b}
    change = FileChange("pkg/mod.py", "modified", lines=frozenset(changed))
    selector = Selector(fake, Estimates({}), ChangeSet({"pkg/mod.py": change}), rootdir=tmp_path)
    return selector.decide(sorted(deps)).selected


def test_a_computed_name_read_counts_only_where_the_changed_module_is_reachable(
    tmp_path: Path,
) -> None:
    deps = {
        # runs the getattr line, and imports pkg/mod.py: the object may be that module
        "tests/test_a.py::test_mod_by_name": FakeDeps(
            files={"pkg/dyn.py": {2}, "pkg/mod.py": {1, 4}}
        ),
        # runs the getattr line on objects that cannot come from pkg/mod.py
        "tests/test_b.py::test_elsewhere": FakeDeps(files={"pkg/dyn.py": {2}}),
        # reads LIMIT by its name
        "tests/test_a.py::test_small": FakeDeps(files={"pkg/mod.py": {1, 4, 5}}),
        # imports the module and reads nothing of it
        "tests/test_a.py::test_other": FakeDeps(files={"pkg/mod.py": {1, 4}}),
    }
    selected = decide(tmp_path, MOD.replace("10", "11"), deps)
    assert selected == {
        "tests/test_a.py::test_mod_by_name": [
            "may read LIMIT by a computed name, changed in pkg/mod.py"
        ],
        "tests/test_a.py::test_small": ["reaches LIMIT, changed in pkg/mod.py"],
    }


def test_an_annotation_edit_selects_the_callers_and_the_readers_of_annotations(
    tmp_path: Path,
) -> None:
    deps = {
        "tests/test_a.py::test_small": FakeDeps(files={"pkg/mod.py": {1, 4, 5}}),
        "tests/test_a.py::test_hints": FakeDeps(files={"pkg/hints.py": {5}, "pkg/mod.py": {1}}),
        "tests/test_b.py::test_hints_elsewhere": FakeDeps(files={"pkg/hints.py": {5}}),
        "tests/test_a.py::test_other": FakeDeps(files={"pkg/mod.py": {1, 4}}),
    }
    selected = decide(tmp_path, MOD.replace("small(x)", "small(x: int) -> bool"), deps)
    assert selected == {
        "tests/test_a.py::test_small": ["reaches small() annotations, changed in pkg/mod.py"],
        "tests/test_a.py::test_hints": [
            "reads annotations, and small() annotations changed in pkg/mod.py"
        ],
    }
