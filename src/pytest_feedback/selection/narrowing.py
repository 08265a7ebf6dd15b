"""Import-time edits that only some tests can see: a literal constant, a default argument.

Module constants, class attributes and default arguments are import-time code, so by the plain
rule a change to one reaches every test that uses the module. Two kinds of edit are narrower,
and this module proves it from the recorded and the current source (`ast`):

- ``NAME = <literal>`` -> ``NAME = <other literal>`` at module or class level: importing cannot
  fail or do anything else, so only code that reads ``NAME`` can tell. The edit is replaced by
  every line, in every recorded file, that names ``NAME`` (those lines keep their own import-,
  collection- or call-time reach). Refused when something could read it without naming it: the
  name in a string (``getattr``), a dunder, a class with decorators, keywords (metaclass) or a
  base class that is not the project's own plain class.
- a ``def`` whose only change is a literal default value: only a call can tell, and a call runs
  the body. The edit is replaced by the function's body lines.

Everything else keeps the plain rule. When the names a module or class defines at import time
differ in any way (a statement added, removed or renamed), nothing is narrowed for that file.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterable
from typing import Optional, Union

FunctionNode = Union[ast.FunctionDef, ast.AsyncFunctionDef]
Scope = Union[ast.Module, ast.ClassDef]
#: Calls that read attributes without naming them.
_INTROSPECTION = frozenset(
    {"vars", "dir", "getattr", "hasattr", "setattr", "__dict__", "getmembers", "__annotations__"}
)
#: Dunder names that are plain data (others, like ``__all__`` or ``__slots__``, mean more).
_PLAIN_DUNDERS = frozenset(
    {"__version__", "__author__", "__email__", "__license__", "__copyright__", "__title__",
     "__summary__", "__uri__", "__url__", "__description__", "__maintainer__", "__status__"}
)  # fmt: skip
_PLAIN_BASES = frozenset({"object", "Exception", "BaseException", "ValueError", "TypeError"})


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


def _literal(node: Optional[ast.expr]) -> bool:
    if node is None:
        return False
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _target(stmt: ast.stmt) -> Optional[str]:
    """The name a statement binds (``NAME = ...``) or changes (``NAME["key"] = ...``)."""
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target = stmt.targets[0]
        if (
            isinstance(target, ast.Subscript)
            and isinstance(target.value, ast.Name)
            and _literal(target.slice)
        ):
            return target.value.id
        return target.id if isinstance(target, ast.Name) else None
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return stmt.target.id
    return None


def _value(stmt: ast.stmt) -> Optional[ast.expr]:
    return stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None


def _signature(scope: Scope) -> list[tuple[str, str]]:
    """What a scope's body defines at import time, in order: (statement kind, name or dump)."""
    out: list[tuple[str, str]] = []
    for stmt in scope.body:
        name = _target(stmt)
        if name is not None:
            out.append(("assign", name))
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append((type(stmt).__name__, stmt.name))
        else:
            out.append((type(stmt).__name__, ast.dump(stmt)))
    return out


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


class NameIndex:
    """Where each identifier is named in the recorded project files (lazily built)."""

    def __init__(self, sources: dict[str, str]) -> None:
        self._sources = sources
        self._names: Optional[dict[str, dict[str, set[int]]]] = None
        #: path -> lines that read attributes by a computed name (getattr, vars, __dict__)
        self._dynamic: dict[str, set[int]] = {}
        #: path -> lines that compile code from strings (exec, eval, compile)
        self._exec: dict[str, set[int]] = {}
        #: module name components that some import statement names
        self._imported: set[str] = set()
        self._classes: dict[str, list[ast.ClassDef]] = {}
        self._aliases: dict[str, set[str]] = {}
        #: name -> path -> lines that store a literal in it (``NAME = 1``, ``NAME["k"] = 1``)
        self._writes: dict[str, dict[str, set[int]]] = {}

    def _build(self) -> dict[str, dict[str, set[int]]]:
        if self._names is not None:
            return self._names
        names: dict[str, dict[str, set[int]]] = {}
        for path, text in self._sources.items():
            try:
                tree = ast.parse(text)
            except (SyntaxError, ValueError):
                continue
            in_default: dict[int, set[int]] = {}  # node id -> the body lines of its function
            in_function: set[int] = set()  # lines of function bodies (run at call time)
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    in_function.update(
                        range(node.body[0].lineno, (node.end_lineno or node.lineno) + 1)
                    )
                    body = set(range(node.body[0].lineno, (node.end_lineno or node.lineno) + 1))
                    for default in [*node.args.defaults, *node.args.kw_defaults]:
                        for part in ast.walk(default) if default is not None else ():
                            in_default[id(part)] = body
            for node in ast.walk(tree):
                ident: Optional[str] = None
                if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store):
                    ident = node.id
                elif isinstance(node, ast.Attribute):
                    ident = node.attr
                elif isinstance(node, (ast.Import, ast.ImportFrom)):
                    # Importing a name binds its value, which only a later read can see: the
                    # import line itself does not count, a new name (``as``) is followed.
                    if isinstance(node, ast.ImportFrom) and node.module:
                        self._imported.update(node.module.split("."))
                    for alias in node.names:
                        self._imported.update(alias.name.split("."))
                        if alias.asname:
                            original = alias.name.rsplit(".", 1)[-1]
                            self._aliases.setdefault(original, set()).add(alias.asname)
                if isinstance(node, (ast.Call, ast.Attribute)):
                    for name in _names_in_strings(node):
                        if name == "exec":
                            self._exec.setdefault(path, set()).add(node.lineno)
                        elif name == "*":
                            call_time = node.lineno in in_function
                            where = path if call_time else "import:" + path
                            self._dynamic.setdefault(where, set()).add(node.lineno)
                        else:
                            names.setdefault(name, {}).setdefault(path, set()).add(node.lineno)
                elif isinstance(node, ast.ClassDef):
                    self._classes.setdefault(node.name, []).append(node)
                if isinstance(node, (ast.Assign, ast.AnnAssign)):
                    written = _target(node)
                    if written is not None and _literal(_value(node)):
                        span = range(node.lineno, (node.end_lineno or node.lineno) + 1)
                        self._writes.setdefault(written, {}).setdefault(path, set()).update(span)
                if ident is not None:
                    # A default value is bound at import time but seen only by a call: the body.
                    lines = in_default.get(id(node)) or {getattr(node, "lineno", 0)}
                    names.setdefault(ident, {}).setdefault(path, set()).update(lines)
        self._names = names
        return names

    def lines_naming(self, name: str) -> dict[str, set[int]]:
        """Lines that read ``name``, or a name it was imported as (literal stores do not)."""
        index = self._build()
        found: dict[str, set[int]] = {}
        todo, seen = [name], {name}
        while todo:
            current = todo.pop()
            writes = self._writes.get(current, {})
            for path, lines in index.get(current, {}).items():
                found.setdefault(path, set()).update(lines - writes.get(path, set()))
            for alias in self._aliases.get(current, ()):
                if alias not in seen:
                    seen.add(alias)
                    todo.append(alias)
        return found

    def imported(self, path: str) -> bool:
        """Whether some import statement names the module at ``path``."""
        self._build()
        stem = path.rsplit("/", 1)[-1].removesuffix(".py")
        if stem == "__init__":
            stem = path.rsplit("/", 2)[-2] if path.count("/") else ""
        return stem in self._imported

    def exec_lines(self) -> dict[str, set[int]]:
        """Lines that compile code from strings: that code may read any name, at any time."""
        self._build()
        return self._exec

    def dynamic_lines(self, path: str) -> dict[str, set[int]]:
        """Lines that read attributes by a computed name, so may read a name of ``path``.

        Those in function bodies, anywhere; those at module or class level, only in ``path``
        itself (elsewhere they copy namespaces at import, such as ``vars(operator)``, and the
        copies are read by name again).
        """
        self._build()
        found = {p: lines for p, lines in self._dynamic.items() if not p.startswith("import:")}
        own = self._dynamic.get("import:" + path)
        if own:
            found[path] = found.get(path, set()) | own
        return found

    def plain_class(self, node: ast.ClassDef, seen: Optional[set[str]] = None) -> bool:
        """No decorators, no keywords, and only plain project (or builtin) base classes."""
        self._build()
        seen = seen or set()
        if node.decorator_list or node.keywords or node.name in seen:
            return False
        seen.add(node.name)
        for stmt in node.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name in (
                "__init_subclass__",
                "__class_getitem__",
            ):
                used = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
                used |= {n.attr for n in ast.walk(stmt) if isinstance(n, ast.Attribute)}
                if used & _INTROSPECTION:
                    return False
        for base in node.bases:
            if isinstance(base, ast.Name) and base.id in _PLAIN_BASES:
                continue
            name = base.id if isinstance(base, ast.Name) else None
            found = self._classes.get(name or "", [])
            if len(found) != 1 or not self.plain_class(found[0], seen):
                return False
        return True


def _names_in_strings(node: ast.expr) -> set[str]:
    """Attribute names read by name strings: ``getattr(obj, "NAME")`` gives NAME.

    ``*`` when the name is computed at run time or everything is read at once (``vars``,
    ``dir``, ``__dict__``): such a line may read any attribute.
    """
    names: list[ast.expr] = []
    if isinstance(node, ast.Call):
        func = node.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if isinstance(func, ast.Name) and called in ("exec", "eval", "compile"):
            return {"exec"}  # code from a string may name anything, and runs later
        if called in ("vars", "dir", "getmembers", "globals", "locals"):
            return {"*"}
        if called in ("getattr", "hasattr", "setattr", "delattr"):
            names = node.args[1:2]
        elif called in ("attrgetter", "__getattribute__", "__getattr__"):
            names = list(node.args)
    elif isinstance(node, ast.Attribute) and node.attr == "__dict__":
        return {"*"}
    found: set[str] = set()
    for expr in names:
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            found.update(part for part in expr.value.split(".") if part.isidentifier())
        else:
            found.add("*")
    return found


def narrow(
    path: str, old_text: str, new_text: str, changed: set[int], index: NameIndex
) -> Optional[Narrowed]:
    """Explain the changed import-time lines of ``path`` by narrower reach, where provable."""
    old = _parse(old_text)
    new = _parse(new_text)
    if old is None or new is None:
        return None
    if set(old.scopes) != set(new.scopes) or any(
        _signature(scope) != _signature(new.scopes[q]) for q, scope in old.scopes.items()
    ):
        return None
    result = Narrowed(set(), {}, set())
    for qualname, scope in old.scopes.items():
        new_scope = new.scopes[qualname]
        for stmt, new_stmt in zip(scope.body, new_scope.body):
            span = set(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
            if not span & changed:
                continue
            if isinstance(stmt, ast.ClassDef):
                continue  # its body is a scope of its own; the header itself stays plain
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                _narrow_function(path, qualname, stmt, new_stmt, changed, result)
            else:
                _narrow_assignment(
                    path, qualname, scope, stmt, new_stmt, span, changed, index, result
                )
    return result if result.lines else None


def _narrow_function(
    path: str,
    qualname: str,
    stmt: FunctionNode,
    new_stmt: ast.stmt,
    changed: set[int],
    result: Narrowed,
) -> None:
    if not isinstance(new_stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return
    header = set(range(stmt.lineno, max(stmt.body[0].lineno, stmt.lineno + 1)))
    head_changed = header & changed
    if not head_changed:
        return
    stripped = [_without_defaults(s) for s in (stmt, new_stmt)]
    if stripped[0] != stripped[1]:
        return
    old_args, new_args = stmt.args, new_stmt.args
    old_defaults = [*old_args.defaults, *old_args.kw_defaults]
    new_defaults = [*new_args.defaults, *new_args.kw_defaults]
    for before, after in zip(old_defaults, new_defaults):
        if before is None or after is None:
            if before is not after:
                return
            continue
        # A default that changed must be a literal on both sides (evaluating it at import can
        # neither fail nor do anything else); one that did not may be anything.
        if ast.dump(before) != ast.dump(after) and not (_literal(before) and _literal(after)):
            return
    body = set(range(stmt.body[0].lineno, (stmt.end_lineno or stmt.lineno) + 1))
    first = stmt.body[0]
    if len(stmt.body) == 1 and (
        isinstance(first, ast.Pass)
        or (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant))
    ):
        body = set()  # `...`, `pass` or a docstring (an overload): a call runs nothing
    result.lines |= head_changed
    result.reach.setdefault(path, set()).update(body)
    prefix = qualname + "." if qualname else ""
    result.names.add(f"{prefix}{stmt.name}() default")


def _without_defaults(node: FunctionNode) -> str:
    args = node.args
    shape = ast.arguments(
        posonlyargs=args.posonlyargs,
        args=args.args,
        vararg=args.vararg,
        kwonlyargs=args.kwonlyargs,
        kw_defaults=[None if d is None else ast.Constant(0) for d in args.kw_defaults],
        kwarg=args.kwarg,
        defaults=[ast.Constant(0) for _ in args.defaults],
    )
    decorators = [ast.dump(d) for d in node.decorator_list]
    returns = ast.dump(node.returns) if node.returns else ""
    return f"{node.name}|{ast.dump(shape)}|{decorators}|{returns}"


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
    name = _target(stmt)
    if name is None or name != _target(new_stmt):
        return
    if name.startswith("__") and name not in _PLAIN_DUNDERS:
        return
    if not (_literal(_value(stmt)) and _literal(_value(new_stmt))):
        return
    old_ann = getattr(stmt, "annotation", None)
    new_ann = getattr(new_stmt, "annotation", None)
    if (old_ann is None) != (new_ann is None) or (
        old_ann is not None and new_ann is not None and ast.dump(old_ann) != ast.dump(new_ann)
    ):
        return
    if isinstance(scope, ast.ClassDef) and ("." in qualname or not index.plain_class(scope)):
        return  # nested classes (Meta, Config) are read by frameworks
    if not index.imported(path):
        return  # a module nothing imports by name (a settings module?) is read some other way
    readers = index.lines_naming(name)
    unread = not any(lines - span for where, lines in readers.items() if where != path) and not (
        readers.get(path, set()) - span
    )
    if unread and name not in _PLAIN_DUNDERS:
        return  # nothing names it: dead, or read some way we cannot see
    result.lines |= span & changed
    for where, lines in [*readers.items(), *index.exec_lines().items()]:
        result.reach.setdefault(where, set()).update(lines)
    for where, lines in index.dynamic_lines(path).items():
        result.dynamic.setdefault(where, set()).update(lines)
    result.reach.get(path, set()).difference_update(span)  # the edited statement itself
    result.names.add(f"{qualname}.{name}" if qualname else name)
