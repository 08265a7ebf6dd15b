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
        ("def small(x, cap=5)", "def small(x, cap: list[int] = 5)", 7),  # may fail at import
        ("def small(x, cap=5)", "def small(x, cap: Missing = 5)", 7),  # may not exist
        ("def small(x, cap=5)", "def small(x, limit=5)", 7),  # a parameter renamed
        ("amount: int = 1", "amount: int = 2", 21),  # a dataclass field: the decorator reads it
        ('KIND = "x"', 'KIND = "y"', 30),  # a base class introspects its subclasses
    ],
    ids=[
        "call",
        "added",
        "renamed",
        "subscript-annotation",
        "unbound-annotation",
        "parameter",
        "dataclass",
        "introspected",
    ],
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


# -- the rules of issue 20: harmless metaclasses, displays, __all__, annotations, the word search


ABSTRACT = """\
import abc
from abc import ABC, ABCMeta
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


class Shape(ABC):
    SIDES = 3

    @abc.abstractmethod
    def area(self):
        return self.SIDES


class Meta(metaclass=ABCMeta):
    KIND = "m"


class Box(Generic[T]):
    SIZE = 1


class Reader(Protocol):
    MODE = "r"


class Registry(type):
    def __new__(mcs, name, bases, namespace):
        return super().__new__(mcs, name, bases, dict(namespace))


class Registered(metaclass=Registry):
    TAG = "t"


def use():
    return Shape.SIDES, Meta.KIND, Box.SIZE, Reader.MODE, Registered.TAG
"""


@pytest.mark.parametrize(
    ("old", "new", "line", "name"),
    [
        ("SIDES = 3", "SIDES = 4", 9, "Shape.SIDES"),
        ('KIND = "m"', 'KIND = "n"', 17, "Meta.KIND"),
        ("SIZE = 1", "SIZE = 2", 21, "Box.SIZE"),
        ('MODE = "r"', 'MODE = "w"', 25, "Reader.MODE"),
    ],
    ids=["abc-base", "abcmeta", "generic", "protocol"],
)
def test_harmless_metaclasses_narrow_like_plain_classes(
    old: str, new: str, line: int, name: str
) -> None:
    index = NameIndex({"pkg/shapes.py": ABSTRACT, "pkg/user.py": "from pkg import shapes\n"})
    result = narrow("pkg/shapes.py", ABSTRACT, ABSTRACT.replace(old, new), {line}, index)
    assert result is not None
    assert result.names == {name}
    assert result.reach["pkg/shapes.py"] == {38} | ({13} if name == "Shape.SIDES" else set())


def test_a_metaclass_of_the_project_keeps_the_plain_rule() -> None:
    index = NameIndex({"pkg/shapes.py": ABSTRACT, "pkg/user.py": "from pkg import shapes\n"})
    new = ABSTRACT.replace('TAG = "t"', 'TAG = "u"')
    assert narrow("pkg/shapes.py", ABSTRACT, new, {34}, index) is None


def test_an_abc_that_is_not_the_standard_one_keeps_the_plain_rule() -> None:
    text = ABSTRACT.replace("from abc import ABC, ABCMeta", "from mylib import ABC, ABCMeta")
    index = NameIndex({"pkg/shapes.py": text, "pkg/user.py": "from pkg import shapes\n"})
    assert narrow("pkg/shapes.py", text, text.replace("SIDES = 3", "SIDES = 4"), {9}, index) is None


DISPLAYS = """\
def handler():
    return 1


ROUTES = {"a": handler, "b": ("x", 2)}
LIMITS = [handler(), 3]
__all__ = ["handler", "ROUTES"]


def route(name):
    return ROUTES[name]
"""


def test_a_scalar_element_of_a_display_reaches_the_readers_of_its_name() -> None:
    index = NameIndex({"pkg/routes.py": DISPLAYS, "pkg/user.py": "from pkg import routes\n"})
    result = narrow("pkg/routes.py", DISPLAYS, DISPLAYS.replace('"x", 2', '"x", 5'), {5}, index)
    assert result is not None
    assert result.reach == {"pkg/routes.py": {11}}
    # ... but not an element that is computed, nor an argument of a call in the display
    assert (
        narrow("pkg/routes.py", DISPLAYS, DISPLAYS.replace("handler, ", "route, "), {5}, index)
        is None
    )
    assert narrow("pkg/routes.py", DISPLAYS, DISPLAYS.replace("3]", "[3]]"), {6}, index) is None


def test_dunder_all_reaches_the_star_imports_of_the_module() -> None:
    sources = {
        "pkg/routes.py": DISPLAYS,
        "pkg/api.py": "from pkg.routes import *\n\n\ndef f():\n    return route('a')\n",
        "pkg/other.py": "from pkg.mod import *\n",
    }
    index = NameIndex(sources)
    new = DISPLAYS.replace('"ROUTES"]', '"ROUTES", "route"]')
    result = narrow("pkg/routes.py", DISPLAYS, new, {7}, index)
    assert result is not None
    assert result.reach == {"pkg/api.py": {1}}
    assert result.names == {"__all__"}


ANNOTATED = """\
import typing


def parse(text: str, strict: bool = False) -> int:
    return int(text)


@typing.no_type_check
def loose(text: str) -> int:
    return int(text)
"""
READER = "import inspect\n\n\ndef params(f):\n    return inspect.signature(f).parameters\n"


def test_an_annotation_edit_reaches_the_body_and_the_readers_of_annotations() -> None:
    index = NameIndex({"pkg/p.py": ANNOTATED, "pkg/r.py": READER, "pkg/u.py": "import pkg.p\n"})
    new = ANNOTATED.replace(
        "-> int:\n    return int(text)\n\n", "-> object:\n    return int(text)\n\n", 1
    )
    result = narrow("pkg/p.py", ANNOTATED, new, {4}, index)
    assert result is not None
    assert result.names == {"parse() annotations"}
    assert result.reach == {"pkg/p.py": {5}}
    assert result.readers == {"pkg/r.py": {5}}


def test_annotations_of_a_decorated_function_keep_the_plain_rule() -> None:
    index = NameIndex({"pkg/p.py": ANNOTATED, "pkg/u.py": "import pkg.p\n"})
    new = ANNOTATED.replace("def loose(text: str)", "def loose(text: bytes)")
    assert narrow("pkg/p.py", ANNOTATED, new, {9}, index) is None


def test_postponed_annotations_may_be_anything() -> None:
    text = "from __future__ import annotations\n\n\ndef f(x: int) -> int:\n    return x\n"
    index = NameIndex({"pkg/f.py": text, "pkg/u.py": "import pkg.f\n"})
    new = text.replace("x: int", "x: list[Missing] | None")
    result = narrow("pkg/f.py", text, new, {4}, index)
    assert result is not None
    assert result.reach == {"pkg/f.py": {5}}


def test_only_files_that_name_the_identifier_are_parsed() -> None:
    sources = {f"pkg/m{i}.py": f"def f{i}():\n    return {i}\n" for i in range(50)}
    sources["pkg/mod.py"] = MOD
    sources["pkg/user.py"] = USER
    index = NameIndex(sources)
    result = narrow("pkg/mod.py", MOD, MOD.replace("LIMIT = 10", "LIMIT = 11"), {3}, index)
    assert result is not None
    assert result.reach["pkg/user.py"] == {5}
    assert index.parsed == 2  # mod.py and user.py; none of the 50 others names LIMIT


def test_a_bare_name_elsewhere_counts_only_where_it_is_imported() -> None:
    extra = {
        "pkg/other.py": "LIMIT = 3\n\n\ndef g():\n    return LIMIT\n",  # its own LIMIT
        "pkg/again.py": "from pkg.user import LIMIT\n\n\ndef h():\n    return LIMIT\n",
        "pkg/attr.py": "def k(m):\n    return m.LIMIT\n",
    }
    result = run(MOD, MOD.replace("LIMIT = 10", "LIMIT = 11"), {3}, extra)
    assert result is not None
    assert "pkg/other.py" not in result.reach
    assert result.reach["pkg/again.py"] == {5}
    assert result.reach["pkg/attr.py"] == {2}


def test_testing_writing_or_listing_names_reads_no_value() -> None:
    names = (
        "def f(obj, name, value):\n    if hasattr(obj, name):\n        setattr(obj, name, value)\n"
        "    return dir(obj), getattr(obj, name)\n"
    )
    result = run(MOD, MOD.replace("LIMIT = 10", "LIMIT = 11"), {3}, {"pkg/names.py": names})
    assert result is not None
    assert result.dynamic["pkg/names.py"] == {4}  # getattr reads a value; the others cannot


def test_a_name_in_a_parenthesised_import_is_followed() -> None:
    user = "from pkg.mod import (\n    NAMES,\n    LIMIT,\n)\n\n\ndef f():\n    return LIMIT\n"
    result = run(MOD, MOD.replace("LIMIT = 10", "LIMIT = 11"), {3}, {"pkg/user.py": user})
    assert result is not None
    assert result.reach["pkg/user.py"] == {8}


def test_a_name_imported_after_a_line_continuation_is_followed() -> None:
    user = "from pkg.mod import NAMES, \\\n    LIMIT\n\n\ndef f():\n    return LIMIT\n"
    result = run(MOD, MOD.replace("LIMIT = 10", "LIMIT = 11"), {3}, {"pkg/user.py": user})
    assert result is not None
    assert result.reach["pkg/user.py"] == {6}


def test_only_the_changed_annotations_must_be_safe_to_evaluate() -> None:
    text = "from typing import Optional\n\n\ndef f(x: Optional[int], y: int) -> int:\n"
    text += "    return y\n"
    index = NameIndex({"pkg/f.py": text, "pkg/u.py": "import pkg.f\n"})
    result = narrow("pkg/f.py", text, text.replace("y: int", "y: float"), {4}, index)
    assert result is not None  # Optional[int] did not change: it evaluated before
    assert result.reach == {"pkg/f.py": {5}}
