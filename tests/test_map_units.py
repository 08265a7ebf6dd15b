"""Unit tests of the coverage map's pure parts: ast facts, line carry-over, governance, payloads."""

from __future__ import annotations

import textwrap
from pathlib import Path

from coverage.numbits import numbits_to_nums, nums_to_numbits

from pytest_feedback.depmap.graph import DependencyMap, governs
from pytest_feedback.depmap.payload import MapPayload
from pytest_feedback.depmap.source import (
    functions,
    imported_modules,
    innermost_function,
    toplevel_lines,
)
from pytest_feedback.depmap.store import line_translation, write_map
from pytest_feedback.history.store import Store

MODULE = textwrap.dedent(
    '''\
    """Doc."""
    import os

    LIMIT = int(
        os.environ.get("LIMIT", "3")
    )


    @decorate(
        LIMIT)
    def f(x,
          y=LIMIT):
        z = x + y
        return z


    class C:
        size = 2

        def m(self):
            return self.size

        class Inner:
            flag = True


    if LIMIT:
        VALUE = 1
    else:
        VALUE = 2
    try:
        import json
    except ImportError:
        json = None
    '''
)


def test_toplevel_lines_are_everything_outside_function_bodies() -> None:
    lines = toplevel_lines(MODULE)
    assert {1, 2, 4, 5, 6, 9, 10, 11, 12, 17, 18, 20, 23, 24, 27, 28, 30, 31, 32, 33, 34} <= lines
    assert not {13, 14, 21} & lines  # function bodies
    assert toplevel_lines("def broken(:\n") == set()


def test_functions_have_qualified_names_and_body_spans() -> None:
    blocks = functions(MODULE)
    assert [(b.qualname, b.start, b.body_start, b.end) for b in blocks] == [
        ("f", 11, 13, 14),
        ("C.m", 20, 21, 21),
    ]
    assert innermost_function(blocks, 14) == blocks[0]
    assert innermost_function(blocks, 11) is None  # the def line runs at import


def test_imported_modules_resolve_relative_imports() -> None:
    source = (
        "import a.b\nfrom . import sibling\nfrom ..up import thing\n\ndef f():\n    import lazy\n"
    )
    assert imported_modules(source, "pkg.sub.mod", is_package=False) == {
        "a",
        "a.b",
        "pkg.sub",
        "pkg.sub.sibling",
        "pkg",
        "pkg.up",
        "pkg.up.thing",
        "lazy",
    }
    # In a package's __init__.py, "." is the package itself.
    assert "pkg.sub.sibling" in imported_modules(source, "pkg.sub", is_package=True)
    assert "pkg.sibling" in imported_modules(source, "pkg.sub", is_package=False)


def test_line_translation_moves_unchanged_lines_and_flags_changed_ones() -> None:
    old = "a\nb\nc\nd\ne\n"
    new = "header\na\nb\nC!\nd\ne\n"
    mapping, touched = line_translation(old, new)
    assert [mapping[line] for line in range(1, 6)] == [2, 3, 4, 5, 6]
    assert 3 in touched
    assert not {4, 5} & touched
    assert 1 in touched  # next to the inserted header


def test_governs_by_node_id_prefix() -> None:
    assert governs("", "tests/test_a.py::test_x")
    assert governs("tests", "tests/test_a.py::test_x")
    assert governs("tests/test_a.py", "tests/test_a.py::C::test_x")
    assert governs("tests/test_a.py::C", "tests/test_a.py::C::test_x[1]")
    assert not governs("tests/test_a.py::C", "tests/test_a.py::Cx::test_x")
    assert not governs("test", "tests/test_a.py::test_x")


def test_payloads_merge_lines_reads_and_spawns() -> None:
    one = MapPayload(
        lines={"c:": {"a.py": nums_to_numbits([1, 2])}},
        reads={"t:x": ["data.txt"]},
        spawns={"t:x": [1, 0]},
    )
    two = MapPayload(
        lines={"c:": {"a.py": nums_to_numbits([3])}, "t:y": {"b.py": nums_to_numbits([5])}},
        reads={"t:x": ["other.txt"]},
        spawns={"t:x": [1, 1]},
    )
    one.merge(MapPayload.from_plain(two.to_plain()))
    assert numbits_to_nums(one.lines["c:"]["a.py"]) == [1, 2, 3]
    assert set(one.lines) == {"c:", "t:y"}
    assert one.reads == {"t:x": ["data.txt", "other.txt"]}
    assert one.spawns == {"t:x": [2, 1]}


def test_a_history_without_map_tables_gets_them(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("X = 1\n\n\ndef f():\n    return X\n")
    db = tmp_path / "history.db"
    with Store(db) as store:
        for table in ("map_lines", "map_reads", "map_imports", "map_contexts", "map_files"):
            store.db.connection.execute(f"DROP TABLE {table}")
        assert DependencyMap.load(store) is None
        payload = MapPayload(lines={"t:test_mod.py::test_f": {"mod.py": nums_to_numbits([5])}})
        summary = write_map(store, payload, tmp_path, "uuid", 0.0)
        assert (summary.tests, summary.files) == (1, 1)
        dmap = DependencyMap.load(store)
    assert dmap is not None
    assert dmap.tests_reaching("mod.py", {5}) == {"test_mod.py::test_f": "executed"}
    assert dmap.tests_reaching("mod.py", {1}) == {"test_mod.py::test_f": "import-time"}
    assert dmap.recorded_source("mod.py") == (tmp_path / "mod.py").read_text()
