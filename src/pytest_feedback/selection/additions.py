"""Definitions an edit adds: a new function, method or class only some tests can see.

Adding a ``def`` or ``class`` to a module (or a method to a class) is import-time code, so by
the plain rule it reaches every test that uses the module. When running the new statement at
import can neither fail nor do anything else, it only binds a new name, and only code that reads
that name can tell: lines naming it (as a bare name, an attribute, an import, a string given to
``getattr``), ``from M import *`` lines, lines that read attributes by a computed name or list
them (``dir``, ``vars``, ``hasattr`` with a computed name), and code compiled from strings.

Proven from the source (docs/selection.md, "The rules"): no decorator (a method may have
``staticmethod``, ``classmethod`` or ``property``), defaults that are literals or names bound
before, annotations that cannot fail (or ``from __future__ import annotations``); a new class
has no decorator or keywords, plain bases bound before it, and a body of such methods, literal
assignments and docstrings. A method goes only into a plain class with no ``ABC``, ``Protocol``,
``Generic`` or metaclass up its bases (``ABCMeta`` reads the names a class defines to decide
which abstract methods are still missing) and no ``__slots__``. Refused: dunder names (the
interpreter calls them without naming them), names frameworks look up in modules (pytest hooks,
``setup_module``, ``load_tests``) and method names the standard library calls on objects it is
given (`DUCK_TYPED`).
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
from typing import Optional, Union

from pytest_feedback.selection.import_safety import (
    PLAIN_BASES,
    annotations_of,
    bound_before,
    dotted,
    evaluated,
    plain_class,
    postponed,
    safe_annotation,
)
from pytest_feedback.selection.names import FileNames, NameIndex, literal, target

Definition = Union[ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef]
#: Module attributes that pytest and unittest look up by name.
FRAMEWORK_NAMES = frozenset(
    {"setup_module", "teardown_module", "setup_function", "teardown_function", "setup",
     "teardown", "setUpModule", "tearDownModule", "load_tests", "pytest_plugins"}
)  # fmt: skip
#: Methods the standard library calls on the objects it is given (files, mappings, generators).
DUCK_TYPED = frozenset(
    {"keys", "items", "values", "get", "read", "readline", "readlines", "readinto", "write",
     "writelines", "flush", "close", "fileno", "isatty", "seek", "tell", "truncate",
     "readable", "writable", "seekable", "send", "throw", "copy", "encode", "decode"}
)  # fmt: skip
_METHOD_DECORATORS = frozenset({"staticmethod", "classmethod", "property"})


def statement_key(stmt: ast.stmt) -> tuple[str, str]:
    """What a statement defines at import time: (kind, name), or (kind, its whole dump)."""
    name = target(stmt)
    if name is not None:
        return ("assign", name)
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return (type(stmt).__name__, stmt.name)
    return (type(stmt).__name__, ast.dump(stmt))


def align(
    old: list[ast.stmt], new: list[ast.stmt]
) -> Optional[tuple[list[tuple[ast.stmt, ast.stmt]], list[Definition]]]:
    """Pair a body's old statements with the new ones; the new ``def``/``class`` statements
    left over are additions. None when the old statements are not all there, in order."""
    pairs: list[tuple[ast.stmt, ast.stmt]] = []
    added: list[Definition] = []
    at = 0
    for stmt in new:
        if at < len(old) and statement_key(old[at]) == statement_key(stmt):
            pairs.append((old[at], stmt))
            at += 1
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            added.append(stmt)
        else:
            return None
    return (pairs, added) if at == len(old) else None


@dataclasses.dataclass
class Added:
    """What the additions to one scope reach (the shapes of `narrowing.Narrowed`)."""

    reach: dict[str, set[int]]
    dynamic: dict[str, set[int]]
    names: set[str]


@dataclasses.dataclass(frozen=True)
class _Context:
    path: str
    index: NameIndex
    names: FileNames
    lazy: bool  # annotations are never evaluated
    known: set[str]  # attributes the recorded module evaluates at import


def narrow_added(
    path: str,
    qualname: str,
    old_scope: Union[ast.Module, ast.ClassDef],
    new_scope: Union[ast.Module, ast.ClassDef],
    new_tree: ast.Module,
    old_tree: ast.Module,
    added: list[Definition],
    index: NameIndex,
) -> Optional[Added]:
    """The reach of the definitions added to one scope; None when one is not provably local."""
    names = index.file(path)
    if names is None or not index.imported(path):
        return None
    context = _Context(path, index, names, postponed(new_tree), evaluated(old_tree))
    if isinstance(old_scope, ast.ClassDef):
        if "." in qualname or not isinstance(new_scope, ast.ClassDef):
            return None
        if any(statement_key(s) == ("assign", "__slots__") for s in old_scope.body):
            return None  # a new class attribute named in __slots__ fails at import
        if not plain_class(index, path, old_scope, harmless=False):
            return None
        outer = next(s for s in new_tree.body if s.lineno <= new_scope.lineno <= _end(s))
        bound = bound_before(new_tree.body, outer.lineno)
    result = Added({}, {}, set())
    prefix = f"{qualname}." if qualname else ""
    for stmt in added:
        name = stmt.name
        if name.startswith("__") and name.endswith("__"):
            return None
        if isinstance(old_scope, ast.ClassDef):
            if name in DUCK_TYPED or not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return None
            assert isinstance(new_scope, ast.ClassDef)
            here = bound | bound_before(new_scope.body, stmt.lineno)
            if not _safe_function(context, stmt, here, _METHOD_DECORATORS):
                return None
        else:
            if name in FRAMEWORK_NAMES or name.startswith("pytest_"):
                return None
            here = bound_before(new_tree.body, stmt.lineno)
            safe = (
                _safe_class(context, stmt, here)
                if isinstance(stmt, ast.ClassDef)
                else _safe_function(context, stmt, here, frozenset())
            )
            if not safe:
                return None
            if star_binds(new_tree, name):
                for where, lines in index.star_importers(path).items():
                    result.reach.setdefault(where, set()).update(lines)
        for where, lines in index.lines_naming(name, home=path).items():
            result.reach.setdefault(where, set()).update(lines)
        result.names.add(f"{prefix}{name} (new)")
    for where, lines in index.exec_lines().items():
        result.reach.setdefault(where, set()).update(lines)
    for found in (index.dynamic_lines(path), index.listing_lines(path)):
        for where, lines in found.items():
            result.dynamic.setdefault(where, set()).update(lines)
    return result


def star_binds(tree: ast.Module, name: str) -> bool:
    """Whether ``from M import *`` binds ``name``: it is in M's ``__all__`` when M assigns one
    literal ``__all__`` and names it nowhere else; without ``__all__``, when it is public. Any
    other use of ``__all__`` in M (``+=``, ``append``): yes."""
    uses = [
        n for n in ast.walk(tree)
        if (isinstance(n, ast.Name) and n.id == "__all__")
        or (isinstance(n, ast.Attribute) and n.attr == "__all__")
    ]  # fmt: skip
    if not uses:
        return not name.startswith("_")
    assigned = [s for s in tree.body if target(s) == "__all__" and isinstance(s, ast.Assign)]
    if len(uses) != 1 or len(assigned) != 1 or not literal(assigned[0].value):
        return True
    exported = ast.literal_eval(assigned[0].value)
    return not isinstance(exported, (list, tuple)) or name in exported


def _end(stmt: ast.stmt) -> int:
    return stmt.end_lineno or stmt.lineno


def _safe_function(
    context: _Context,
    stmt: Union[ast.FunctionDef, ast.AsyncFunctionDef],
    bound: set[str],
    decorators: frozenset[str],
) -> bool:
    """Running the ``def`` cannot fail or do anything but bind its name."""
    if any(dotted(d, context.names) not in decorators for d in stmt.decorator_list):
        return False
    for default in [*stmt.args.defaults, *stmt.args.kw_defaults]:
        if default is None or literal(default):
            continue
        if not (isinstance(default, ast.Name) and _bound(default.id, bound)):
            return False
    if context.lazy:
        return True
    return all(safe_annotation(a, bound, context.known) for a in annotations_of(stmt))


def _safe_class(context: _Context, stmt: ast.ClassDef, bound: set[str]) -> bool:
    """Running the ``class`` statement cannot fail or do anything but bind its name."""
    if stmt.decorator_list or stmt.keywords:
        return False
    for base in stmt.bases:
        if not isinstance(base, ast.Name):
            return False
        if base.id in PLAIN_BASES and base.id not in context.names.origins:
            continue
        found = context.index.classes(base.id)
        if base.id not in bound or len(found) != 1:
            return False
        if not plain_class(context.index, found[0][0], found[0][1], harmless=False):
            return False
    inside: set[str] = set()
    for part in stmt.body:
        key = statement_key(part)
        if isinstance(part, ast.Expr) and isinstance(part.value, ast.Constant):
            continue  # a docstring
        if isinstance(part, ast.Pass):
            continue
        if key[0] == "assign" and not key[1].startswith("__"):
            value = part.value if isinstance(part, (ast.Assign, ast.AnnAssign)) else None
            annotation = part.annotation if isinstance(part, ast.AnnAssign) else None
            if value is not None and not literal(value):
                return False
            if annotation is not None and not (
                context.lazy or safe_annotation(annotation, bound | inside, context.known)
            ):
                return False
            inside.add(key[1])
            continue
        if isinstance(part, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not _safe_function(context, part, bound | inside, _METHOD_DECORATORS):
                return False
            inside.add(part.name)
            continue
        return False
    return True


def _bound(name: str, bound: set[str]) -> bool:
    return name in bound or hasattr(builtins, name)
