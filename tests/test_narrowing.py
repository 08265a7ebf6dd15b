"""Import-time edits narrowed to the code that can see them."""

from __future__ import annotations

import pytest

from pytest_feedback.selection.narrowing import NameIndex, narrow

MOD = """\
import dataclasses

LIMIT = 10
NAMES = ("a", "b")


def small(x, cap=5):
    return x < LIMIT


class Plain:
    SIZE = 3

    def size(self):
        return self.SIZE


@dataclasses.dataclass
class Data:
    amount: int = 1


class Base:
    def __init_subclass__(cls):
        vars(cls)


class Child(Base):
    KIND = "x"
"""
USER = "from pkg.mod import LIMIT\n\n\ndef twice():\n    return LIMIT * 2\n"


def run(old: str, new: str, changed: set[int], extra: dict[str, str] | None = None):
    index = NameIndex({"pkg/mod.py": old, "pkg/user.py": USER, **(extra or {})})
    return narrow("pkg/mod.py", old, new, changed, index)


def test_a_literal_constant_reaches_the_lines_that_name_it() -> None:
    result = run(MOD, MOD.replace("LIMIT = 10", "LIMIT = 11"), {3})
    assert result is not None
    assert result.lines == {3}
    assert result.reach == {"pkg/mod.py": {8}, "pkg/user.py": {5}}
    # line 25 reads attributes by computed names (`vars`): it may read LIMIT too
    assert result.dynamic == {"pkg/mod.py": {25}}
    assert result.names == {"LIMIT"}


def test_a_default_argument_reaches_the_body() -> None:
    result = run(MOD, MOD.replace("cap=5", "cap=6"), {7})
    assert result is not None
    assert result.reach == {"pkg/mod.py": {8}}
    assert result.names == {"small() default"}


def test_a_plain_class_attribute_reaches_its_readers() -> None:
    result = run(MOD, MOD.replace("SIZE = 3", "SIZE = 4"), {12})
    assert result is not None
    assert result.reach == {"pkg/mod.py": {15}}
    assert result.dynamic == {"pkg/mod.py": {25}}
    assert result.names == {"Plain.SIZE"}


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ("LIMIT = 10", "LIMIT = int('10')", 3),  # not a literal: importing could do anything
        ("LIMIT = 10", "LIMIT = 10\nEXTRA = 1", 3),  # a new name at import time
        ("LIMIT = 10", "LIMITS = 10", 3),  # renamed
        ("def small(x, cap=5)", "def small(x, cap: int = 5)", 7),  # an annotation
        ("def small(x, cap=5)", "def small(x, limit=5)", 7),  # a parameter renamed
        ("amount: int = 1", "amount: int = 2", 21),  # a dataclass field: the decorator reads it
        ('KIND = "x"', 'KIND = "y"', 30),  # a base class introspects its subclasses
    ],
    ids=["call", "added", "renamed", "annotation", "parameter", "dataclass", "introspected"],
)
def test_edits_that_cannot_be_narrowed(old: str, new: str, line: int) -> None:
    assert run(MOD, MOD.replace(old, new), {line}) is None


def test_getattr_with_the_name_reads_it() -> None:
    dynamic = {"pkg/dyn.py": "import pkg.mod\n\ndef f(m):\n    return getattr(m, 'LIMIT', 0)\n"}
    result = run(MOD, MOD.replace("LIMIT = 10", "LIMIT = 11"), {3}, dynamic)
    assert result is not None
    assert result.reach["pkg/dyn.py"] == {4}


def test_a_name_nothing_reads_or_a_module_nothing_imports_keeps_the_plain_rule() -> None:
    dead = MOD.replace('NAMES = ("a", "b")', 'NAMES = ("a", "c")')
    assert run(MOD, dead, {4}) is None
    lonely = "DEBUG = True\n\n\ndef f():\n    return DEBUG\n"
    index = NameIndex({"proj/settings.py": lonely})
    assert narrow("proj/settings.py", lonely, lonely.replace("True", "False"), {1}, index) is None


def test_nested_classes_keep_the_plain_rule() -> None:
    text = "class Model:\n    class Meta:\n        ordering = 'a'\n\n    def f(self):\n"
    text += "        return self.Meta.ordering\n"
    index = NameIndex({"pkg/models.py": text, "pkg/user.py": "from pkg import models\n"})
    assert narrow("pkg/models.py", text, text.replace("'a'", "'b'"), {3}, index) is None


def test_a_constant_used_as_a_default_reaches_the_body_of_that_function() -> None:
    user = (
        "from pkg.mod import LIMIT\n\n\ndef cap(x,\n        top=LIMIT):\n    return min(x, top)\n"
    )
    result = run(MOD, MOD.replace("LIMIT = 10", "LIMIT = 11"), {3}, {"pkg/user.py": user})
    assert result is not None
    assert result.reach["pkg/user.py"] == {6}


def test_a_constant_imported_under_another_name_is_followed() -> None:
    user = "from pkg.mod import LIMIT as CAP\n\n\ndef cap(x):\n    return min(x, CAP)\n"
    result = run(MOD, MOD.replace("LIMIT = 10", "LIMIT = 11"), {3}, {"pkg/user.py": user})
    assert result is not None
    assert result.reach["pkg/user.py"] == {5}


def test_an_item_of_a_class_level_dict_reaches_the_readers_of_the_dict() -> None:
    text = "class Words:\n    plural = {'a': 'as'}\n    plural['b'] = 'bs'\n\n    def f(self):\n"
    text += "        return self.plural\n"
    index = NameIndex({"pkg/words.py": text, "pkg/user.py": "from pkg.words import Words\n"})
    result = narrow("pkg/words.py", text, text.replace("'bs'", "'bees'"), {3}, index)
    assert result is not None
    assert result.reach == {"pkg/words.py": {6}}


def test_version_metadata_nothing_reads_selects_nothing() -> None:
    text = '__version__ = "1.0"\n'
    index = NameIndex({"pkg/_version.py": text, "pkg/__init__.py": "from pkg import _version\n"})
    result = narrow("pkg/_version.py", text, text.replace("1.0", "1.1"), {1}, index)
    assert result is not None
    assert result.reach == {}


def test_sibling_item_writes_are_not_readers() -> None:
    text = "class Words:\n    plural = {}\n    plural['a'] = 'as'\n    plural['b'] = 'bs'\n"
    text += "\n    def f(self):\n        return self.plural\n"
    index = NameIndex({"pkg/words.py": text, "pkg/user.py": "from pkg.words import Words\n"})
    result = narrow("pkg/words.py", text, text.replace("'bs'", "'bees'"), {4}, index)
    assert result is not None
    assert result.reach == {"pkg/words.py": {7}}


def test_the_default_of_a_stub_reaches_nothing() -> None:
    text = "from typing import overload\n\n\n@overload\ndef get(x: int = 1) -> int: ...\n"
    index = NameIndex({"pkg/api.py": text, "pkg/user.py": "from pkg import api\n"})
    result = narrow("pkg/api.py", text, text.replace("= 1", "= 2"), {5}, index)
    assert result is not None
    assert result.reach == {"pkg/api.py": set()}


def test_code_compiled_from_strings_may_read_any_name() -> None:
    gen = "def make():\n    return eval('LIMIT + 1', vars(__import__('pkg.mod')))\n"
    result = run(MOD, MOD.replace("LIMIT = 10", "LIMIT = 11"), {3}, {"pkg/gen.py": gen})
    assert result is not None
    assert result.reach["pkg/gen.py"] == {2}


def test_a_regex_compile_is_not_code_from_a_string() -> None:
    regex = "import re\n\nPATTERN = re.compile('x')\n"
    result = run(MOD, MOD.replace("LIMIT = 10", "LIMIT = 11"), {3}, {"pkg/regex.py": regex})
    assert result is not None
    assert "pkg/regex.py" not in result.reach
