"""Added definitions narrowed to the code that can see the new name."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pytest

from fake_map import FakeDeps, FakeMap
from pytest_feedback.history.estimates import Estimates
from pytest_feedback.selection.changes import ChangeSet, FileChange, diff_lines
from pytest_feedback.selection.narrowing import NameIndex, Narrowed, narrow

MOD = """\
import functools

LIMIT = 10


def small(x):
    return x < LIMIT


class Plain:
    SIZE = 3

    def size(self):
        return self.SIZE


class Base:
    def __init_subclass__(cls):
        vars(cls)


class Child(Base):
    pass
"""
OTHERS = {
    "pkg/user.py": "from pkg import mod\n\n\ndef go():\n    return mod.helper(1)\n",
    "pkg/lister.py": "def names(obj):\n    return dir(obj)\n",
    "tests/test_x.py": "from pkg import mod\n",
}
RETURN = "        return self.SIZE\n"
EXTRA = '''

class Extra(Plain):
    """More."""

    KIND: str = "x"

    def kind(self) -> str:
        return self.KIND
'''
HELPER = "def helper(y, scale=2):\n    return y * scale\n\n\n"


def run(new: str, extra: Optional[dict[str, str]] = None) -> Optional[Narrowed]:
    index = NameIndex({"pkg/mod.py": MOD, **OTHERS, **(extra or {})})
    changed = set(diff_lines(MOD, new, python=True).old)
    assert changed, "the edit must mark some recorded lines"
    return narrow("pkg/mod.py", MOD, new, changed, index, insertions=True)


def test_an_added_function_reaches_the_lines_that_name_it() -> None:
    result = run(MOD.replace("class Plain:", HELPER + "class Plain:"))
    assert result is not None
    assert result.names == {"helper (new)"}
    assert result.reach == {"pkg/user.py": {5}}
    # dir() lists names (a new one changes its answer); vars() reads them by computed names
    assert result.dynamic == {"pkg/lister.py": {2}, "pkg/mod.py": {19}}
    # the neighbours the diff marks are unchanged statements: nothing else to select
    new = MOD.replace("class Plain:", HELPER + "class Plain:")
    assert result.lines == set(diff_lines(MOD, new, python=True).old)


def test_an_added_method_and_class() -> None:
    method = MOD.replace(
        "        return self.SIZE\n",
        "        return self.SIZE\n\n    def twice(self):\n        return 2 * self.SIZE\n",
    )
    result = run(method, {"pkg/twice.py": "def f(p):\n    return p.twice()\n"})
    assert result is not None
    assert result.names == {"Plain.twice (new)"}
    assert result.reach == {"pkg/twice.py": {2}}
    added = MOD + EXTRA
    result = run(added)
    assert result is not None
    assert result.names == {"Extra (new)"}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("class Plain:", "@functools.lru_cache\ndef helper(y):\n    return y\n\n\nclass Plain:"),
        ("class Plain:", "def helper(y=len('ab')):\n    return y\n\n\nclass Plain:"),
        ("class Plain:", "def helper(y: list[int]):\n    return y\n\n\nclass Plain:"),
        ("class Plain:", "def __getattr__(name):\n    return name\n\n\nclass Plain:"),
        ("class Plain:", "def pytest_configure(config):\n    pass\n\n\nclass Plain:"),
        ("class Plain:", "print('hello')\n\n\nclass Plain:"),
        ("    pass\n", "    pass\n\n    def extra(self):\n        return 1\n"),
        (RETURN, RETURN + "\n    def keys(self):\n        return []\n"),
        (RETURN, RETURN + "\n    def __eq__(self, other):\n        return True\n"),
        ("class Base:", "class E(metaclass=type):\n    pass\n\n\nclass Base:"),
        ("class Base:", "class Extra(Plain):\n    X = len('a')\n\n\nclass Base:"),
        ("LIMIT = 10\n", ""),
    ],
    ids=["decorated", "computed-default", "subscript-annotation", "dunder", "pytest-hook",
         "statement", "introspected-class", "duck-typed", "dunder-method", "metaclass",
         "computed-class-body", "removed"],
)  # fmt: skip
def test_additions_that_keep_the_plain_rule(old: str, new: str) -> None:
    assert old in MOD
    assert run(MOD.replace(old, new, 1)) is None


def test_abc_classes_and_slots_refuse_new_methods() -> None:
    abstract = "import abc\n\n\nclass Shape(abc.ABC):\n    def area(self):\n        return 0\n"
    slotted = "class Point:\n    __slots__ = ('x',)\n\n    def get(self):\n        return self.x\n"
    for text in (abstract, slotted):
        index = NameIndex({"pkg/shapes.py": text, "tests/test_s.py": "from pkg import shapes\n"})
        new = text + "\n    def extra(self):\n        return 1\n"
        changed = set(diff_lines(text, new, python=True).old)
        assert narrow("pkg/shapes.py", text, new, changed, index, insertions=True) is None


def test_the_selector_runs_only_the_readers_of_an_added_function(tmp_path: Path) -> None:
    from pytest_feedback.selection.selector import Selector

    old = MOD.split("\n\nclass Base:")[0] + "\n"  # no computed-name read at import
    new = old.replace("class Plain:", HELPER + "class Plain:")
    sources = {"pkg/mod.py": old, **OTHERS}
    for path, text in {**sources, "pkg/mod.py": new}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    imported = {"pkg/mod.py": {1}}  # the module's import line ran
    deps = {
        # calls mod.helper (it raised AttributeError before the edit)
        "tests/test_x.py::test_go": FakeDeps(files={"pkg/user.py": {5}, **imported}),
        # lists the module's names
        "tests/test_x.py::test_dir": FakeDeps(files={"pkg/lister.py": {2}, **imported}),
        # lists names of objects that cannot be the module (it does not import it)
        "tests/test_y.py::test_dir_elsewhere": FakeDeps(files={"pkg/lister.py": {2}}),
        # imports the module and runs small()
        "tests/test_x.py::test_small": FakeDeps(files={"pkg/mod.py": {1, 6, 7}}),
    }
    top_level = {1, 3, 6, 10, 11, 13}
    fake = FakeMap(deps=deps, sources=sources, import_lines={"pkg/mod.py": top_level})
    lines = diff_lines(old, new, python=True).old
    assert lines & top_level  # the plain rule would have taken every importer
    change = FileChange("pkg/mod.py", "modified", lines=frozenset(lines))
    selector = Selector(fake, Estimates({}), ChangeSet({"pkg/mod.py": change}), rootdir=tmp_path)
    assert selector.decide(sorted(deps)).selected == {
        "tests/test_x.py::test_dir": [
            "may read helper (new) by a computed name, changed in pkg/mod.py"
        ],
        "tests/test_x.py::test_go": ["reaches helper (new), changed in pkg/mod.py"],
    }


@pytest.mark.parametrize(
    ("module", "name", "binds"),
    [
        ("X = 1\n", "helper", True),
        ("X = 1\n", "_helper", False),
        ("__all__ = ['X']\nX = 1\n", "helper", False),
        ("__all__ = ('X', 'helper')\nX = 1\n", "helper", True),
        ("__all__ = ['X']\n__all__ += ['Y']\nX = 1\n", "helper", True),
        ("__all__ = ['X']\n__all__.append('helper')\n", "helper", True),
    ],
    ids=["public", "private", "not-in-all", "in-all", "all-extended", "all-appended"],
)
def test_a_star_import_binds_a_new_name_only_if_it_exports_it(
    module: str, name: str, binds: bool
) -> None:
    import ast

    from pytest_feedback.selection.additions import star_binds

    assert star_binds(ast.parse(module), name) is binds


def test_a_new_function_outside_all_does_not_reach_the_star_importers() -> None:
    text = "__all__ = ('small',)\n\n\ndef small(x):\n    return x < 3\n"
    star = "from pkg.mod import *\n"
    index = NameIndex({"pkg/mod.py": text, "pkg/__init__.py": star})
    new = text + "\n\ndef _extra():\n    return None\n"
    changed = set(diff_lines(text, new, python=True).old)
    result = narrow("pkg/mod.py", text, new, changed, index, insertions=True)
    assert result is not None
    assert result.reach == {}
    plain = text.replace("__all__ = ('small',)\n", "")
    index = NameIndex({"pkg/mod.py": plain, "pkg/__init__.py": star})
    new = plain + "\n\ndef extra():\n    return None\n"
    changed = set(diff_lines(plain, new, python=True).old)
    result = narrow("pkg/mod.py", plain, new, changed, index, insertions=True)
    assert result is not None
    assert result.reach == {"pkg/__init__.py": {1}}  # binds `extra` in pkg
