"""Where the recorded project files name an identifier: the index `narrowing` proves reach with.

Each file is parsed (`ast`) only when a question needs it, and only when its text holds the
words the answer depends on: the identifier asked about, the names of the calls that read
attributes by a computed name, ``exec``/``eval``/``compile``, a module's name, a class's name. A
file that does not contain the word cannot contain the code (the search is a superset of the
parse), so the answers are those of parsing every file, at the cost of the few that match.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import re
from typing import Callable, Optional

#: Calls and attributes that read attributes without naming them (`names_in_strings`).
_DYNAMIC_WORDS = re.compile(
    r"\b(?:vars|dir|getmembers|globals|locals)\b|getattr|hasattr|setattr|delattr|attrgetter"
    r"|__getattribute__|__getattr__|__dict__"
)
_DYNAMIC_PLAIN = (
    "vars", "dir", "getmembers", "globals", "locals", "getattr", "hasattr", "setattr", "delattr",
    "attrgetter", "__getattribute__", "__getattr__", "__dict__",
)  # fmt: skip
_EXEC_WORDS = re.compile(r"\b(?:exec|eval|compile)\b")
#: Code that reads a function's annotations: ``typing.get_type_hints``, ``inspect.signature``.
ANNOTATION_READERS = frozenset(
    {"get_type_hints", "signature", "getfullargspec", "getargspec", "get_annotations",
     "__annotations__", "__signature__", "getcallargs", "get_overloads"}
)  # fmt: skip
_ANNOTATION_WORDS = re.compile("|".join(sorted(ANNOTATION_READERS)))


def literal(node: Optional[ast.expr]) -> bool:
    """Whether ``node`` is a literal (`ast.literal_eval` accepts it)."""
    if node is None:
        return False
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def target(stmt: ast.stmt) -> Optional[str]:
    """The name a statement binds (``NAME = ...``) or changes (``NAME["key"] = ...``)."""
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        node = stmt.targets[0]
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            return node.value.id if literal(node.slice) else None
        return node.id if isinstance(node, ast.Name) else None
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return stmt.target.id
    return None


def value_of(stmt: ast.stmt) -> Optional[ast.expr]:
    return stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None


@dataclasses.dataclass
class FileNames:
    """What one file names, and where (1-based lines)."""

    #: identifier -> lines that read it (a default value counts as its function's body)
    names: dict[str, set[int]] = dataclasses.field(default_factory=dict)
    #: lines in function bodies that read attributes by a computed name
    dynamic: set[int] = dataclasses.field(default_factory=set)
    #: such lines that run at import time (module or class level)
    dynamic_at_import: set[int] = dataclasses.field(default_factory=set)
    #: lines that compile code from strings
    exec: set[int] = dataclasses.field(default_factory=set)
    #: module name components some import statement names
    imported: set[str] = dataclasses.field(default_factory=set)
    #: imported name -> the names it was imported as (``as``)
    aliases: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    #: local name -> dotted origin of ``from X import Y`` / ``import X`` (``abc.ABC``, ``abc``)
    origins: dict[str, str] = dataclasses.field(default_factory=dict)
    #: name -> lines that store a literal into it
    writes: dict[str, set[int]] = dataclasses.field(default_factory=dict)
    classes: dict[str, list[ast.ClassDef]] = dataclasses.field(default_factory=dict)
    #: modules imported with ``from X import *`` -> the lines
    star_imports: dict[str, set[int]] = dataclasses.field(default_factory=dict)
    #: lines that name a reader of annotations (`ANNOTATION_READERS`)
    annotation_readers: set[int] = dataclasses.field(default_factory=set)
    #: lines in function bodies that list or test attribute names (``dir()``, ``hasattr`` or
    #: ``delattr`` with a computed name): they see a name added
    listing: set[int] = dataclasses.field(default_factory=set)
    #: such lines that run at import time
    listing_at_import: set[int] = dataclasses.field(default_factory=set)


def analyse_names(text: str) -> Optional[FileNames]:
    """Index one file; None when it does not parse."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    out = FileNames()
    in_default: dict[int, set[int]] = {}  # node id -> the body lines of its function
    in_function: set[int] = set()  # lines of function bodies (run at call time)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = set(range(node.body[0].lineno, (node.end_lineno or node.lineno) + 1))
            in_function |= body
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
            _imports(node, out)
        if isinstance(node, ast.Call) and lists_names(node):
            where = out.listing if node.lineno in in_function else out.listing_at_import
            where.add(node.lineno)
        if isinstance(node, (ast.Call, ast.Attribute)):
            for name in names_in_strings(node):
                if name == "exec":
                    out.exec.add(node.lineno)
                elif name == "*":
                    where = out.dynamic if node.lineno in in_function else out.dynamic_at_import
                    where.add(node.lineno)
                else:
                    out.names.setdefault(name, set()).add(node.lineno)
        elif isinstance(node, ast.ClassDef):
            out.classes.setdefault(node.name, []).append(node)
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            written = target(node)
            if written is not None and literal(value_of(node)):
                span = range(node.lineno, (node.end_lineno or node.lineno) + 1)
                out.writes.setdefault(written, set()).update(span)
        if ident is not None:
            # A default value is bound at import time but seen only by a call: the body.
            lines = in_default.get(id(node)) or {getattr(node, "lineno", 0)}
            out.names.setdefault(ident, set()).update(lines)
            if ident in ANNOTATION_READERS:
                out.annotation_readers.add(getattr(node, "lineno", 0))
    return out


def _imports(node: ast.Import | ast.ImportFrom, out: FileNames) -> None:
    # Importing a name binds its value, which only a later read can see: the import line itself
    # does not count, a new name (``as``) is followed.
    module = node.module if isinstance(node, ast.ImportFrom) else None
    if module:
        out.imported.update(module.split("."))
    for alias in node.names:
        out.imported.update(alias.name.split("."))
        if alias.name == "*" and module:
            out.star_imports.setdefault(module, set()).add(node.lineno)
        local = alias.asname or alias.name.split(".")[0]
        out.origins[local] = f"{module}.{alias.name}" if module else alias.name
        if alias.asname:
            original = alias.name.rsplit(".", 1)[-1]
            out.aliases.setdefault(original, set()).add(alias.asname)


def names_in_strings(node: ast.expr) -> set[str]:
    """Attribute names read by name strings: ``getattr(obj, "NAME")`` gives NAME.

    ``*`` when the name is computed at run time or every value is read at once (``vars``,
    ``__dict__``): such a line may read any attribute's value. ``hasattr``, ``setattr``,
    ``delattr`` and ``dir`` with a computed name do not count: they test, write or list names,
    and the edits narrowed here change values, never names.
    """
    names: list[ast.expr] = []
    if isinstance(node, ast.Call):
        func = node.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if isinstance(func, ast.Name) and called in ("exec", "eval", "compile"):
            return {"exec"}  # code from a string may name anything, and runs later
        if called in ("vars", "getmembers", "globals", "locals"):
            return {"*"}
        if called in ("hasattr", "setattr", "delattr"):
            return _constant_names(node.args[1:2])
        if called == "getattr":
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


def lists_names(node: ast.Call) -> bool:
    """``dir(...)``, or ``hasattr``/``delattr`` with a computed name: a call whose answer
    depends on which names an object has (a name added to it changes the answer)."""
    func = node.func
    called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    if called == "dir":
        return True
    if called in ("hasattr", "delattr"):
        return not _constant_names(node.args[1:2])
    return False


def _constant_names(args: list[ast.expr]) -> set[str]:
    """The names given as string constants (a computed one reads nothing's value)."""
    found: set[str] = set()
    for expr in args:
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            found.update(part for part in expr.value.split(".") if part.isidentifier())
    return found


def may_read(text: str, word: str) -> bool:
    """Whether ``text`` could read another file's ``word``: as an attribute (``.word``, also
    across a line break), in a string (``getattr(obj, "word")``), in an import statement, or
    through a star import. A superset, found with plain searches."""
    if "." + word in text or "'" + word in text or '"' + word in text:
        return True
    if re.search(r"\.[\s\\]+" + re.escape(word) + r"\b", text):
        return True
    at = text.find("import")
    while at != -1:
        end = text.find("\n", at)
        while end != -1 and text[end - 1] == "\\":  # continued on the next line
            end = text.find("\n", end + 1)
        end = len(text) if end == -1 else end
        opened = text.find("(", at, end)
        if opened != -1:  # import (a,\n b): to the closing parenthesis
            closed = text.find(")", opened)
            end = len(text) if closed == -1 else closed
        statement = text[at:end]
        if "*" in statement or re.search(r"\b" + re.escape(word) + r"\b", statement):
            return True
        at = text.find("import", end)
    return False


class NameIndex:
    """Where each identifier is named in the recorded project files (parsed on demand)."""

    def __init__(self, sources: dict[str, str]) -> None:
        self._sources = sources
        self._parsed: dict[str, Optional[FileNames]] = {}
        self._searched: dict[str, list[str]] = {}

    @property
    def parsed(self) -> int:
        """How many files were parsed so far (the cost the word search saves)."""
        return len(self._parsed)

    def _files(
        self, key: str, match: Callable[[str], object], words: tuple[str, ...]
    ) -> list[tuple[str, FileNames]]:
        """The analyses of the files whose text ``match`` accepts; only texts that hold one of
        ``words`` (a plain search, much faster) are tried."""
        paths = self._searched.get(key)
        if paths is None:
            paths = self._searched[key] = [
                p
                for p, text in self._sources.items()
                if any(w in text for w in words) and match(text)
            ]
        out: list[tuple[str, FileNames]] = []
        for path in paths:
            if path not in self._parsed:
                self._parsed[path] = analyse_names(self._sources[path])
            found = self._parsed[path]
            if found is not None:
                out.append((path, found))
        return out

    def _naming(self, word: str) -> list[tuple[str, FileNames]]:
        return self._files("word:" + word, lambda text: True, (word,))

    def file(self, path: str) -> Optional[FileNames]:
        """One file's analysis (None: not recorded, or it does not parse)."""
        if path not in self._sources:
            return None
        if path not in self._parsed:
            self._parsed[path] = analyse_names(self._sources[path])
        return self._parsed[path]

    def lines_naming(self, name: str, home: Optional[str] = None) -> dict[str, set[int]]:
        """Lines that read ``name``, or a name it was imported as (literal stores do not).

        With ``home`` (the file that defines it), a file other than ``home`` is parsed only when
        its text could read that definition: an attribute ``.NAME``, the name in a string
        (``getattr``), an import naming it (a bare name elsewhere is another file's own, unless
        imported), or a star import.
        """
        found: dict[str, set[int]] = {}
        todo, seen = [name], {name}
        while todo:
            current = todo.pop()
            if home is None or current != name:  # a name it was imported as: every file
                files = self._naming(current)
            else:
                read = functools.partial(may_read, word=current)
                files = self._files("reads:" + current, read, (current,))
                own = self.file(home)
                if own is not None and all(p != home for p, _n in files):
                    files = [*files, (home, own)]
            for path, names in files:
                lines = names.names.get(current, set()) - names.writes.get(current, set())
                if lines:
                    found.setdefault(path, set()).update(lines)
                for alias in names.aliases.get(current, ()):
                    if alias not in seen:
                        seen.add(alias)
                        todo.append(alias)
        return found

    def imported(self, path: str) -> bool:
        """Whether some import statement names the module at ``path``."""
        stem = path.rsplit("/", 1)[-1].removesuffix(".py")
        if stem == "__init__":
            stem = path.rsplit("/", 2)[-2] if path.count("/") else ""
        return bool(stem) and any(stem in names.imported for _p, names in self._naming(stem))

    def exec_lines(self) -> dict[str, set[int]]:
        """Lines that compile code from strings: that code may read any name, at any time."""
        found = self._files("exec", _EXEC_WORDS.search, ("exec", "eval", "compile"))
        return {p: n.exec for p, n in found if n.exec}

    def dynamic_lines(self, path: str) -> dict[str, set[int]]:
        """Lines that read attributes by a computed name, so may read a name of ``path``.

        Those in function bodies, anywhere; those at module or class level, only in ``path``
        itself (elsewhere they copy namespaces at import, such as ``vars(operator)``, and the
        copies are read by name again).
        """
        found: dict[str, set[int]] = {}
        for where, names in self._files("dynamic", _DYNAMIC_WORDS.search, _DYNAMIC_PLAIN):
            lines = names.dynamic | (names.dynamic_at_import if where == path else set())
            if lines:
                found[where] = set(lines)
        return found

    def listing_lines(self, path: str) -> dict[str, set[int]]:
        """Lines that list or test attribute names (`lists_names`), which see a name added to
        the module at ``path`` or to one of its classes; those at import time only in ``path``
        itself, like `dynamic_lines`."""
        found: dict[str, set[int]] = {}
        for where, names in self._files("dynamic", _DYNAMIC_WORDS.search, _DYNAMIC_PLAIN):
            lines = names.listing | (names.listing_at_import if where == path else set())
            if lines:
                found[where] = set(lines)
        return found

    def annotation_lines(self) -> dict[str, set[int]]:
        """Lines that read annotations (``get_type_hints``, ``inspect.signature``, ...)."""
        found = self._files("annotations", _ANNOTATION_WORDS.search, tuple(ANNOTATION_READERS))
        return {p: set(n.annotation_readers) for p, n in found if n.annotation_readers}

    def star_importers(self, path: str) -> dict[str, set[int]]:
        """``from M import *`` lines whose M may be the module at ``path``."""
        dotted = path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        stem = dotted.rsplit(".", 1)[-1]
        found: dict[str, set[int]] = {}
        for where, names in self._naming("*"):
            for module, lines in names.star_imports.items():
                if module.rsplit(".", 1)[-1] == stem or dotted.endswith(module.lstrip(".")):
                    found.setdefault(where, set()).update(lines)
        return found

    def classes(self, name: str) -> list[tuple[str, ast.ClassDef]]:
        """The project classes called ``name``, with their files."""
        pattern = re.compile(r"class\s+" + re.escape(name) + r"\b")
        found = self._files("class:" + name, pattern.search, (name,))
        return [(p, node) for p, names in found for node in names.classes.get(name, [])]
