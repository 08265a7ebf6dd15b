"""Import-time edits that only some tests can see: literals, defaults, annotations.

Module constants, class attributes, default arguments and annotations are import-time code, so
by the plain rule a change to one reaches every test that uses the module. Some edits are
narrower, and this module proves it from the recorded and the current source (`ast`):

- ``NAME = <literal>`` -> ``NAME = <other literal>`` at module or class level, or a display
  (``[...]``, ``(...)``, ``{...}``) assigned to one name whose only change is a scalar literal
  element: importing cannot fail or do anything else, so only code that reads ``NAME`` can
  tell. The edit is replaced by every line, in every recorded file, that names ``NAME`` (those
  lines keep their own import-, collection- or call-time reach), and by the lines that read
  attributes by a computed name (`Narrowed.dynamic`). Refused when something could read it
  without naming it: a dunder, a class with decorators, keywords other than a harmless
  metaclass, or a base class that is neither the project's own plain class nor a harmless one
  (`HARMLESS_BASES`). ``__all__`` reaches its readers and the ``from M import *`` lines.
- a ``def`` whose only change is a literal default value: only a call can tell, and a call runs
  the body. The edit is replaced by the function's body lines.
- a ``def`` whose only change is in its annotations: only the function's ``__annotations__``
  differ, so the tests that ran its body and the code that reads annotations
  (`names.ANNOTATION_READERS`) can tell. Refused for decorated functions (a decorator may read
  them), and, without ``from __future__ import annotations``, when evaluating the new
  annotation at import could fail (anything but names bound before the ``def``, builtins,
  attributes of them, strings and None).

Everything else keeps the plain rule. When the names a module or class defines at import time
differ in any way (a statement added, removed or renamed), nothing is narrowed for that file.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterable
from typing import Optional, Union

from pytest_feedback.selection.additions import Definition, align, narrow_added
from pytest_feedback.selection.import_safety import (
    PLAIN_DECORATORS,
    FunctionNode,
    bound_before,
    dotted,
    evaluated,
    plain_class,
    postponed,
    safe_annotation,
)
from pytest_feedback.selection.names import NameIndex as NameIndex
from pytest_feedback.selection.names import literal, target, value_of

Scope = Union[ast.Module, ast.ClassDef]
#: Dunder names that are plain data (others, like ``__all__`` or ``__slots__``, mean more).
_PLAIN_DUNDERS = frozenset(
    {"__version__", "__author__", "__email__", "__license__", "__copyright__", "__title__",
     "__summary__", "__uri__", "__url__", "__description__", "__maintainer__", "__status__"}
)  # fmt: skip
_SCALARS = (str, bytes, int, float, complex, bool, type(None))


@dataclasses.dataclass
class Narrowed:
    """What replaces some changed import-time lines of one file."""

    #: The changed lines (recorded coordinates) that are explained here and need no plain rule.
    lines: set[int]
    #: path -> lines (recorded coordinates) whose tests see the edit.
    reach: dict[str, set[int]]
    #: How a reason names what changed: ``LIMIT``, ``Config.size``, ``parse() default``.
    names: set[str]
    #: path -> lines that read attributes by computed names (they count when run by a test).
    dynamic: dict[str, set[int]] = dataclasses.field(default_factory=dict)
    #: path -> lines that read annotations (they count when run, at any time, by a test).
    readers: dict[str, set[int]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _Source:
    tree: ast.Module
    #: qualname -> scope, "" the module
    scopes: dict[str, Scope]
    functions: dict[str, FunctionNode]


def _index(tree: ast.Module) -> _Source:
    scopes: dict[str, Scope] = {"": tree}
    functions: dict[str, FunctionNode] = {}

    def walk(body: Iterable[ast.stmt], prefix: str) -> None:
        for stmt in body:
            if isinstance(stmt, ast.ClassDef):
                scopes[prefix + stmt.name] = stmt
                walk(stmt.body, prefix + stmt.name + ".")
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions[prefix + stmt.name] = stmt

    walk(tree.body, "")
    return _Source(tree, scopes, functions)


def _parse(text: str) -> Optional[_Source]:
    try:
        return _index(ast.parse(text))
    except (SyntaxError, ValueError):
        return None


def narrow(
    path: str,
    old_text: str,
    new_text: str,
    changed: set[int],
    index: NameIndex,
    *,
    insertions: bool = False,
) -> Optional[Narrowed]:
    """Explain the changed import-time lines of ``path`` by narrower reach, where provable.

    With ``insertions`` (``changed`` is exactly the diff of ``old_text`` to ``new_text``), the
    changed lines of statements that did not change at all are the neighbours the diff marks
    around an insertion (`changes.diff_lines`), and are explained with it.
    """
    old = _parse(old_text)
    new = _parse(new_text)
    if old is None or new is None:
        return None
    aligned = _aligned(old, new)
    if aligned is None:
        return None
    result = Narrowed(set(), {}, set())
    for qualname, scope in old.scopes.items():
        new_scope = new.scopes[qualname]
        pairs, added = aligned[qualname]
        if added:
            found = narrow_added(path, qualname, scope, new_scope, new.tree, old.tree, added, index)
            if found is None:
                return None
            result.names |= found.names
            for into, reach in ((result.reach, found.reach), (result.dynamic, found.dynamic)):
                for path_, lines in reach.items():
                    into.setdefault(path_, set()).update(lines)
        for stmt, new_stmt in pairs:
            span = set(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
            if not span & changed:
                continue
            if insertions and ast.dump(stmt) == ast.dump(new_stmt):
                # unchanged: its lines are marked only as the neighbours of an insertion
                result.lines |= span & changed
                continue
            if isinstance(stmt, ast.ClassDef):
                continue  # its body is a scope of its own; the header itself stays plain
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                where = _Where(path, qualname, scope, old, index)
                _narrow_function(where, stmt, new_stmt, changed, result)
            else:
                _narrow_assignment(
                    path, qualname, scope, stmt, new_stmt, span, changed, index, result
                )
    return result if result.lines or result.names else None


def _aligned(
    old: _Source, new: _Source
) -> Optional[dict[str, tuple[list[tuple[ast.stmt, ast.stmt]], list[Definition]]]]:
    """Each old scope's statements paired with the new ones, and the definitions the new
    source adds to it (`additions.align`); None when anything else was added, removed, renamed
    or moved, or a new scope is not inside an added class."""
    aligned: dict[str, tuple[list[tuple[ast.stmt, ast.stmt]], list[Definition]]] = {}
    new_classes: list[str] = []
    for qualname, scope in old.scopes.items():
        new_scope = new.scopes.get(qualname)
        found = None if new_scope is None else align(scope.body, new_scope.body)
        if found is None:
            return None
        aligned[qualname] = found
        prefix = f"{qualname}." if qualname else ""
        new_classes += [prefix + d.name for d in found[1] if isinstance(d, ast.ClassDef)]
    for qualname in set(new.scopes) - set(old.scopes):
        if not any(qualname == c or qualname.startswith(c + ".") for c in new_classes):
            return None
    return aligned


@dataclasses.dataclass(frozen=True)
class _Where:
    """Where a changed statement is: its file, the scope holding it, and the index."""

    path: str
    qualname: str
    scope: Scope
    source: _Source
    index: NameIndex


def _narrow_function(
    where: _Where, stmt: FunctionNode, new_stmt: ast.stmt, changed: set[int], result: Narrowed
) -> None:
    if not isinstance(new_stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return
    header = set(range(stmt.lineno, max(stmt.body[0].lineno, stmt.lineno + 1)))
    head_changed = header & changed
    if not head_changed:
        return
    if _shape(stmt, annotations=False) != _shape(new_stmt, annotations=False):
        return
    annotated = _shape(stmt) != _shape(new_stmt)
    if annotated and not _annotations_local(where, stmt, new_stmt):
        return
    old_args, new_args = stmt.args, new_stmt.args
    old_defaults = [*old_args.defaults, *old_args.kw_defaults]
    new_defaults = [*new_args.defaults, *new_args.kw_defaults]
    defaulted = False
    for before, after in zip(old_defaults, new_defaults):
        if before is None or after is None:
            if before is not after:
                return
            continue
        # A default that changed must be a literal on both sides (evaluating it at import can
        # neither fail nor do anything else); one that did not may be anything.
        if ast.dump(before) != ast.dump(after):
            if not (literal(before) and literal(after)):
                return
            defaulted = True
    body = set(range(stmt.body[0].lineno, (stmt.end_lineno or stmt.lineno) + 1))
    first = stmt.body[0]
    if len(stmt.body) == 1 and (
        isinstance(first, ast.Pass)
        or (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant))
    ):
        body = set()  # `...`, `pass` or a docstring (an overload): a call runs nothing
    result.lines |= head_changed
    result.reach.setdefault(where.path, set()).update(body)
    prefix = where.qualname + "." if where.qualname else ""
    if defaulted or not annotated:
        result.names.add(f"{prefix}{stmt.name}() default")
    if annotated:
        result.names.add(f"{prefix}{stmt.name}() annotations")
        for path, lines in where.index.annotation_lines().items():
            result.readers.setdefault(path, set()).update(lines)
        for path, lines in where.index.exec_lines().items():
            result.reach.setdefault(path, set()).update(lines)


def _shape(node: FunctionNode, *, annotations: bool = True) -> str:
    """The function's header with every default replaced (and, if asked, every annotation)."""
    args = node.args

    def arg(a: ast.arg) -> ast.arg:
        return a if annotations else ast.arg(arg=a.arg)

    shape = ast.arguments(
        posonlyargs=[arg(a) for a in args.posonlyargs],
        args=[arg(a) for a in args.args],
        vararg=arg(args.vararg) if args.vararg else None,
        kwonlyargs=[arg(a) for a in args.kwonlyargs],
        kw_defaults=[None if d is None else ast.Constant(0) for d in args.kw_defaults],
        kwarg=arg(args.kwarg) if args.kwarg else None,
        defaults=[ast.Constant(0) for _ in args.defaults],
    )
    decorators = [ast.dump(d) for d in node.decorator_list]
    returns = ast.dump(node.returns) if node.returns and annotations else ""
    return f"{node.name}|{ast.dump(shape)}|{decorators}|{returns}"


def _annotations_local(where: _Where, stmt: FunctionNode, new_stmt: FunctionNode) -> bool:
    """Whether an edit of the annotations changes nothing but ``__annotations__``."""
    names = where.index.file(where.path)
    if names is None:
        return False
    for decorator in stmt.decorator_list:
        if dotted(decorator, names) not in PLAIN_DECORATORS:
            return False  # a decorator may read the annotations (singledispatch, a CLI builder)
    if isinstance(where.scope, ast.ClassDef) and (
        "." in where.qualname or not plain_class(where.index, where.path, where.scope)
    ):
        return False  # a metaclass or class decorator may read its methods' annotations
    if postponed(where.source.tree):
        return True  # annotations are strings, never evaluated at import
    bound = bound_before(where.source.tree.body, stmt.lineno)
    known = evaluated(where.source.tree)
    for before, annotation in zip(_slots(stmt), _slots(new_stmt)):
        if annotation is None or (before is not None and ast.dump(before) == ast.dump(annotation)):
            continue  # removed, or unchanged: it evaluated before, with the same names bound
        if not safe_annotation(annotation, bound, known):
            return False
    return True


def _slots(node: FunctionNode) -> list[Optional[ast.expr]]:
    """Every annotation place of a function, in order (None: not annotated)."""
    args = node.args
    every = [*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs, args.kwarg]
    return [a.annotation if a is not None else None for a in every] + [node.returns]


def _display_edit(old: Optional[ast.expr], new: Optional[ast.expr]) -> bool:
    """A display (list, tuple, set, dict) whose only change is a scalar literal element."""
    displays = (ast.List, ast.Tuple, ast.Set, ast.Dict)
    if not isinstance(old, displays) or type(old) is not type(new):
        return False
    return _same_but_scalars(old, new)


def _same_but_scalars(old: Optional[ast.expr], new: Optional[ast.expr]) -> bool:
    if old is None or new is None:
        return old is new
    if isinstance(old, ast.Constant) and isinstance(new, ast.Constant):
        return isinstance(old.value, _SCALARS) and isinstance(new.value, _SCALARS)
    if isinstance(old, (ast.List, ast.Tuple, ast.Set)) and type(old) is type(new):
        elements = old.elts, new.elts
        return len(elements[0]) == len(elements[1]) and all(
            _same_but_scalars(a, b) for a, b in zip(*elements)
        )
    if isinstance(old, ast.Dict) and isinstance(new, ast.Dict):
        pairs = list(zip([*old.keys, *old.values], [*new.keys, *new.values]))
        return len(old.keys) == len(new.keys) and all(_same_but_scalars(a, b) for a, b in pairs)
    return ast.dump(old) == ast.dump(new)  # anything else (a call, a name) must not change


def _narrow_assignment(
    path: str,
    qualname: str,
    scope: Scope,
    stmt: ast.stmt,
    new_stmt: ast.stmt,
    span: set[int],
    changed: set[int],
    index: NameIndex,
    result: Narrowed,
) -> None:
    name = target(stmt)
    if name is None or name != target(new_stmt):
        return
    if name.startswith("__") and name not in _PLAIN_DUNDERS and name != "__all__":
        return
    old_value, new_value = value_of(stmt), value_of(new_stmt)
    if not (literal(old_value) and literal(new_value)) and not _display_edit(old_value, new_value):
        return
    old_ann = getattr(stmt, "annotation", None)
    new_ann = getattr(new_stmt, "annotation", None)
    if (old_ann is None) != (new_ann is None) or (
        old_ann is not None and new_ann is not None and ast.dump(old_ann) != ast.dump(new_ann)
    ):
        return
    if isinstance(scope, ast.ClassDef) and (
        "." in qualname or name == "__all__" or not plain_class(index, path, scope)
    ):
        return  # nested classes (Meta, Config) are read by frameworks
    if not index.imported(path):
        return  # a module nothing imports by name (a settings module?) is read some other way
    readers = index.lines_naming(name, home=path)
    if name == "__all__":  # it decides what ``from M import *`` binds in each importer
        for where, lines in index.star_importers(path).items():
            readers.setdefault(where, set()).update(lines)
    unread = not any(lines - span for where, lines in readers.items() if where != path) and not (
        readers.get(path, set()) - span
    )
    if unread and name not in _PLAIN_DUNDERS and name != "__all__":
        return  # nothing names it: dead, or read some way we cannot see
    result.lines |= span & changed
    for where, lines in [*readers.items(), *index.exec_lines().items()]:
        result.reach.setdefault(where, set()).update(lines)
    for where, lines in index.dynamic_lines(path).items():
        result.dynamic.setdefault(where, set()).update(lines)
    result.reach.get(path, set()).difference_update(span)  # the edited statement itself
    result.names.add(f"{qualname}.{name}" if qualname else name)
