"""What running a definition at import time can do: the checks `narrowing` and `additions` share.

A ``def`` or ``class`` statement runs code when its module is imported: decorators, default
values, annotations (unless ``from __future__ import annotations``), base classes, metaclasses
and ``__init_subclass__``. These checks prove, from the source alone, that such code cannot fail
and cannot read the values (or names) a narrowed edit changes (docs/selection.md, "The rules").
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable
from typing import Optional, Union

from pytest_feedback.selection.names import FileNames, NameIndex, target

FunctionNode = Union[ast.FunctionDef, ast.AsyncFunctionDef]
#: Calls that read attributes without naming them.
INTROSPECTION = frozenset(
    {"vars", "dir", "getattr", "hasattr", "setattr", "__dict__", "getmembers", "__annotations__"}
)
PLAIN_BASES = frozenset({"object", "Exception", "BaseException", "ValueError", "TypeError"})
#: Bases and metaclasses whose class creation does not read the values of class attributes:
#: ``ABCMeta`` looks for ``__isabstractmethod__`` (no literal has it), ``Protocol`` and
#: ``Generic`` record attribute names and type parameters, ``type`` is the default.
HARMLESS_BASES = frozenset(
    {"abc.ABC", "typing.Protocol", "typing_extensions.Protocol", "typing.Generic",
     "typing_extensions.Generic"}
)  # fmt: skip
HARMLESS_METACLASSES = frozenset({"abc.ABCMeta", "type"})
#: Decorators that do not read a function's annotations.
PLAIN_DECORATORS = frozenset(
    {"staticmethod", "classmethod", "property", "abstractmethod", "abc.abstractmethod"}
)


def postponed(tree: ast.Module) -> bool:
    """Whether the module has ``from __future__ import annotations`` (never evaluated)."""
    return any(
        isinstance(s, ast.ImportFrom)
        and s.module == "__future__"
        and any(a.name == "annotations" for a in s.names)
        for s in tree.body
    )


def bound_before(body: Iterable[ast.stmt], line: int) -> set[str]:
    """Names a body binds at its top level before ``line`` (imports, defs, assignments)."""
    bound: set[str] = set()
    for stmt in body:
        if stmt.lineno >= line:
            break
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name.split(".")[0]) for a in stmt.names)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(stmt.name)
        elif (name := target(stmt)) is not None:
            bound.add(name)
    return bound


def annotations_of(node: FunctionNode) -> list[ast.expr]:
    args = node.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    found = [a.annotation for a in every if a is not None and a.annotation is not None]
    return [*found, *([node.returns] if node.returns else [])]


def evaluated(tree: ast.Module) -> set[str]:
    """Attribute expressions a module evaluates at import (its annotations and top-level code
    outside function bodies), as `ast.dump` strings."""
    parts: list[ast.AST] = []

    def walk(body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                parts.extend([*annotations_of(stmt), *stmt.decorator_list])
                parts.extend(d for d in [*stmt.args.defaults, *stmt.args.kw_defaults] if d)
            elif isinstance(stmt, ast.ClassDef):
                parts.extend([*stmt.bases, *stmt.keywords, *stmt.decorator_list])
                walk(stmt.body)
            else:
                parts.append(stmt)

    walk(tree.body)
    return {ast.dump(n) for part in parts for n in ast.walk(part) if isinstance(n, ast.Attribute)}


def safe_annotation(annotation: ast.expr, bound: set[str], known: set[str]) -> bool:
    """Whether evaluating ``annotation`` at import cannot fail: names ``bound`` before it (or
    builtin classes), attributes the module already evaluates (``known``, `evaluated`),
    strings and None; a subscript or ``|`` may fail on an older Python."""
    for node in ast.walk(annotation):
        if isinstance(node, ast.Name):
            if node.id not in bound and not isinstance(getattr(builtins, node.id, None), type):
                return False  # may not exist when the def runs
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, (str, type(None))):
                return False
        elif not isinstance(node, (ast.Attribute, ast.Load)):
            return False
        elif isinstance(node, ast.Attribute) and ast.dump(node) not in known:
            return False  # an attribute the module never used may not exist
    return True


def dotted(node: ast.expr, names: FileNames) -> str:
    """``abc.ABC`` for ``ABC`` imported from ``abc`` or for ``abc.ABC`` itself; else its text."""
    if isinstance(node, ast.Subscript):
        node = node.value  # Generic[T], Protocol[T]
    if isinstance(node, ast.Name):
        return names.origins.get(node.id, node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{names.origins.get(node.value.id, node.value.id)}.{node.attr}"
    return ast.dump(node)


def plain_class(
    index: NameIndex,
    path: str,
    node: ast.ClassDef,
    seen: Optional[set[str]] = None,
    *,
    harmless: bool = True,
) -> bool:
    """No decorators, no keywords but a harmless metaclass, no introspecting
    ``__init_subclass__``, and only plain project, builtin or harmless base classes. With
    ``harmless=False`` no ABC, Protocol, Generic or metaclass anywhere up the bases either."""
    names = index.file(path)
    seen = seen or set()
    if names is None or node.decorator_list or node.name in seen:
        return False
    seen.add(node.name)
    for keyword in node.keywords:
        if keyword.arg != "metaclass" or dotted(keyword.value, names) not in HARMLESS_METACLASSES:
            return False
        if not harmless:
            return False
    for stmt in node.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name in (
            "__init_subclass__",
            "__class_getitem__",
        ):
            used = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
            used |= {n.attr for n in ast.walk(stmt) if isinstance(n, ast.Attribute)}
            if used & INTROSPECTION:
                return False
    for base in node.bases:
        if isinstance(base, ast.Name) and base.id in PLAIN_BASES and base.id not in names.origins:
            continue
        if harmless and dotted(base, names) in HARMLESS_BASES:
            continue
        found = index.classes(base.id) if isinstance(base, ast.Name) else []
        if len(found) != 1 or not plain_class(
            index, found[0][0], found[0][1], seen, harmless=harmless
        ):
            return False
    return True
