"""Which installed distributions each measured context uses (``--feedback-cov``; docs/selection.md,
"Dependency upgrades"). Modules and files only, never lines of third-party code:

* the modules a context imports first (``sys.modules`` grew while it ran), each mapped to the
  distribution that installed its file;
* what each project module imported in a context names: the modules, classes and functions in its
  namespace, and the modules its functions and methods import when called (the ``IMPORT_NAME``
  instructions of their code), so that every test using the module uses them, whichever context
  imported them first;
* the files of a distribution a context opens (time zone data, templates: `access.AccessWatch`);
* imports that found nothing (``try: import ujson``), kept as ``import:NAME``: installing what
  provides NAME later selects the context's tests.

What a library module names is kept as an edge between distributions (``a>b``), next to what the
distributions declare they require. Modules imported before the measurement started (pytest, its
plugins and what they import) belong to no context: `early`.

Per context switch the cost is one ``len(sys.modules)``; the rest is done once, at the end.
"""

from __future__ import annotations

import dis
import sys
from collections.abc import Iterable, Iterator
from types import BuiltinFunctionType, CodeType, FunctionType, ModuleType
from typing import Any, Callable, Optional

from pytest_feedback.depmap.distributions import MISSING_PREFIX, DistIndex

_IMPORT_NAME = dis.opmap["IMPORT_NAME"]
_EXTENDED_ARG = dis.opmap["EXTENDED_ARG"]
_OPCODE = bytes([_IMPORT_NAME])


class DistUse:
    """The modules each context imported first, and what it looked for in vain."""

    def __init__(self) -> None:
        modules = sys.modules
        #: modules imported before the measurement started
        self.early: dict[str, ModuleType] = dict(modules)
        self._known: set[str] = set(modules)
        self._count = len(modules)
        self._new: dict[str, list[ModuleType]] = {}
        #: label -> top-level module names an import looked for and did not find
        self.missing: dict[str, set[str]] = {}

    def note(self, label: str) -> None:
        """The modules imported since the last note were imported in ``label``."""
        modules = sys.modules
        if len(modules) == self._count:
            return
        keys = set(modules)
        new = keys - self._known
        self._known = keys
        self._count = len(keys)
        if new:
            found = self._new.setdefault(label, [])
            found.extend(m for m in map(modules.get, new) if isinstance(m, ModuleType))

    def missed(self, label: str, name: str) -> None:
        self.missing.setdefault(label, set()).add(name)

    def resolve(
        self,
        index: DistIndex,
        project_path: Callable[[str], Optional[str]],
        opened: dict[str, set[str]],
    ) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        """Per label, the distributions it used; and the facts: ``early`` (imported before the
        start), ``imports`` (edges ``a>b`` seen in library modules' namespaces), ``named`` (what
        project modules name: every user of those is known through the import graph)."""
        owners = _Owners(index)
        used: dict[str, set[str]] = {}
        edges: set[str] = set()
        named: set[str] = set()
        for label, modules in self._new.items():
            found = used.setdefault(label, set())
            for module in modules:
                filename = getattr(module, "__file__", None)
                if not isinstance(filename, str):
                    continue
                if project_path(filename) is not None:
                    names = {d for n in _names(module, deep=True) for d in owners.of_module(n)}
                    named.update(names)
                    found.update(names)
                    continue
                mine = index.owners(filename)
                found.update(mine)
                if mine:
                    others = {d for n in _names(module, deep=False) for d in owners.of_module(n)}
                    edges.update(f"{a}>{b}" for a in mine for b in others if a != b)
        for label, paths in opened.items():
            used.setdefault(label, set()).update(d for p in paths for d in index.owners(p))
        for label, names in self.missing.items():
            used.setdefault(label, set()).update(MISSING_PREFIX + n for n in names)
        early = {d for m in self.early.values() for d in owners.of_file(m)}
        facts = {"early": early, "imports": edges, "named": named}
        return {k: v for k, v in used.items() if v}, facts


class _Owners:
    """Module name -> the distributions that installed it (through its file, or, for a module
    without one, its top-level name)."""

    def __init__(self, index: DistIndex) -> None:
        self._index = index
        self._cache: dict[str, tuple[str, ...]] = {}

    def of_file(self, module: Any) -> tuple[str, ...]:
        filename = getattr(module, "__file__", None)
        return self._index.owners(filename) if isinstance(filename, str) else ()

    def of_module(self, name: str) -> tuple[str, ...]:
        found = self._cache.get(name)
        if found is None:
            module = sys.modules.get(name)
            found = self.of_file(module) if module is not None else ()
            if not found and (module is None or not getattr(module, "__file__", None)):
                found = self._index.providers(name.partition(".")[0])
            self._cache[name] = found
        return found


def _names(module: ModuleType, *, deep: bool) -> set[str]:
    """The modules ``module``'s namespace names (its module objects, the modules of its classes
    and functions); with ``deep``, also those its own functions and methods import."""
    own = module.__name__
    out: set[str] = set()
    codes: list[CodeType] = []
    try:
        values = list(vars(module).values())
    except Exception:
        return out
    for value in values:
        if isinstance(value, ModuleType):
            out.add(value.__name__)
            continue
        if not isinstance(value, (type, FunctionType, BuiltinFunctionType)):
            continue
        owner = getattr(value, "__module__", None)
        if isinstance(owner, str):
            out.add(owner)
        if deep and owner == own:
            codes.extend(_codes(value))
    if deep and codes:
        package = module.__package__ or ""
        for name in _imported(codes):
            if name and not (package and f"{package}.{name}" in sys.modules):
                out.add(name)
    return out


def _codes(value: Any) -> Iterator[CodeType]:
    """The code objects of a function, or of a class's functions, methods and properties."""
    members: Iterable[Any] = vars(value).values() if isinstance(value, type) else (value,)
    for member in members:
        for part in (member, *(getattr(member, a, None) for a in ("__func__", "fget", "fset"))):
            code = getattr(part, "__code__", None)
            if isinstance(code, CodeType):
                yield code


def _imported(codes: list[CodeType]) -> set[str]:
    """The module names of the ``IMPORT_NAME`` instructions in the code objects (and the code
    objects nested in them)."""
    found: set[str] = set()
    stack = list(codes)
    while stack:
        code = stack.pop()
        raw, names = code.co_code, code.co_names
        at = raw.find(_OPCODE)
        while at != -1:
            if at % 2 == 0 and at + 1 < len(raw):
                arg, back, shift = raw[at + 1], at - 2, 8
                while back >= 0 and raw[back] == _EXTENDED_ARG:
                    arg |= raw[back + 1] << shift
                    back, shift = back - 2, shift + 8
                if arg < len(names):
                    found.add(names[arg])
            at = raw.find(_OPCODE, at + 1)
        stack.extend(c for c in code.co_consts if isinstance(c, CodeType))
    return found
