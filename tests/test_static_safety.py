"""Static guarantees over src/: no shell strings, SQL always parameterised, no network.

The checks read the source with `ast`, so they cover code no test executes. Each checker is
also run on small samples that must be flagged, so that a checker that flags nothing fails.
"""

from __future__ import annotations

import ast
import functools
import importlib
import pkgutil
import socket
from pathlib import Path
from typing import Optional, Union

import pytest

import pytest_feedback

PACKAGE = Path(pytest_feedback.__file__).parent
Sources = dict[str, ast.Module]


#: The marker of dynamic SQL a reviewer accepted (ruff's own, so that both tools agree).
REVIEWED = "noqa: S608"


@functools.cache
def package_texts() -> dict[str, str]:
    return {
        str(path.relative_to(PACKAGE.parent)): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE.rglob("*.py"))
    }


@functools.cache
def package_sources() -> Sources:
    """The package's modules, parsed once per process (the checkers only read the trees)."""
    return {path: ast.parse(text) for path, text in package_texts().items()}


def parse(**modules: str) -> Sources:
    return {f"{name}.py": ast.parse(text) for name, text in modules.items()}


Walk = list[tuple[ast.AST, Optional[ast.AST]]]
#: (id of the tree, id of the scope) -> (tree, scope, walk): the trees are only read, so each is
#: walked once per process, however many checkers and tests read it.
_WALKS: dict[tuple[int, int], tuple[ast.AST, Optional[ast.AST], Walk]] = {}


def _walk_with_scope(tree: ast.AST, scope: Optional[ast.AST] = None) -> Walk:
    """Every node with the innermost function that contains it (None at module level), in
    depth-first pre-order (a stack rather than recursive generators: the package is large)."""
    key = (id(tree), id(scope))
    hit = _WALKS.get(key)
    if hit is not None and hit[0] is tree and hit[1] is scope:
        return hit[2]
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    walk: Walk = []
    stack = [(child, scope) for child in reversed(list(ast.iter_child_nodes(tree)))]
    while stack:
        node, outer = stack.pop()
        walk.append((node, outer))
        inner = node if isinstance(node, functions) else outer
        stack.extend((child, inner) for child in reversed(list(ast.iter_child_nodes(node))))
    _WALKS[key] = (tree, scope, walk)
    return walk


def _imports(tree: ast.Module) -> dict[str, str]:
    """Local name -> qualified name, for the module's absolute imports."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _qualified(func: ast.expr, imports: dict[str, str]) -> Optional[str]:
    if isinstance(func, ast.Name):
        return imports.get(func.id, func.id)
    if isinstance(func, ast.Attribute):
        base = _qualified(func.value, imports)
        return f"{base}.{func.attr}" if base else None
    return None


# -- shell ----------------------------------------------------------------------------------------

SHELL_FUNCTIONS = {
    "os.system",
    "os.popen",
    "subprocess.getoutput",
    "subprocess.getstatusoutput",
    "asyncio.create_subprocess_shell",
}
SUBPROCESS_FUNCTIONS = {
    f"subprocess.{name}" for name in ("run", "Popen", "call", "check_call", "check_output")
}


def shell_problems(sources: Sources) -> list[str]:
    problems = []
    for path, tree in sources.items():
        imports = _imports(tree)
        for node, _ in _walk_with_scope(tree):
            if not isinstance(node, ast.Call):
                continue
            where = f"{path}:{node.lineno}"
            name = _qualified(node.func, imports)
            if name in SHELL_FUNCTIONS:
                problems.append(f"{where}: {name} runs a shell; use subprocess with a list")
            for keyword in node.keywords:
                if keyword.arg == "shell" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                ):
                    problems.append(f"{where}: shell=... ; pass an argument list instead")
            if name in SUBPROCESS_FUNCTIONS and node.args and _is_text(node.args[0]):
                problems.append(f"{where}: command given as a string; pass an argument list")
    return problems


def _is_text(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp):
        return _is_text(node.left) or _is_text(node.right)
    return isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "format"


# -- SQL ------------------------------------------------------------------------------------------

#: Methods that take SQL text as their first argument (sqlite3's and our wrappers').
SQL_METHODS = {"execute", "executemany", "executescript", "query", "query_many", "query_dicts"}
Function = Union[ast.FunctionDef, ast.AsyncFunctionDef]


class SqlChecker:
    """Proves that every SQL text in the package is built only from constants.

    Constant strings, and concatenations and f-strings of constant strings, are SQL we wrote.
    Interpolating is allowed only of placeholder marks (``",".join("?" * n)``) and numbers
    (``int(...)``, ``len(...)``); a name is followed to all its assignments in its function or
    module, ``self.NAME`` to class-level constants, and a parameter to every call of its
    function in the package. Anything else (user data, ``%``, ``.format``) is a finding: the
    value must be passed as a ``?`` parameter. Dynamic SQL that is safe for reasons the checker
    cannot see (identifiers taken from the file's own schema) is accepted when a line of its
    expression carries ruff's reviewed marker ``# noqa: S608`` — visible in review, as for ruff.
    """

    def __init__(self, sources: Sources, texts: Optional[dict[str, str]] = None) -> None:
        self.sources = sources
        self.functions: dict[str, list[Function]] = {}
        self.module_values: dict[str, list[ast.expr]] = {}
        self.class_values: dict[str, list[ast.expr]] = {}
        self.calls: list[tuple[ast.Call, Optional[ast.AST]]] = []
        self.reviewed: set[tuple[int, int]] = set()  # (id of the module, line) with the marker
        self._module_of: dict[int, int] = {}
        for path, tree in sources.items():
            lines = (texts or {}).get(path, "").splitlines()
            self.reviewed.update(
                (id(tree), number) for number, line in enumerate(lines, 1) if REVIEWED in line
            )
            for node in ast.walk(tree):
                self._module_of[id(node)] = id(tree)
                if isinstance(node, ast.ClassDef):
                    for statement in node.body:
                        if isinstance(statement, ast.Assign):
                            for target in statement.targets:
                                if isinstance(target, ast.Name):
                                    self.class_values.setdefault(target.id, []).append(
                                        statement.value
                                    )
        for tree in sources.values():
            for node in tree.body:
                if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                    for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                        if isinstance(target, ast.Name):
                            self.module_values.setdefault(target.id, []).append(node.value)
            for node, scope in _walk_with_scope(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.functions.setdefault(node.name, []).append(node)
                elif isinstance(node, ast.Call):
                    self.calls.append((node, scope))
        self._seen: set[tuple[int, str]] = set()

    def problems(self) -> list[str]:
        found = []
        for path, tree in self.sources.items():
            for node, scope in _walk_with_scope(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in SQL_METHODS
                    and node.args
                    and not self.safe(node.args[0], scope)
                ):
                    found.append(
                        f"{path}:{node.lineno}: SQL built from data; pass values as ? parameters"
                    )
        return found

    def safe(self, node: ast.expr, scope: Optional[ast.AST], fragment: bool = False) -> bool:
        if self._proved(node, scope, fragment):
            return True
        module = self._module_of.get(id(node))
        end = getattr(node, "end_lineno", None) or getattr(node, "lineno", 0)
        lines = range(getattr(node, "lineno", 0), end + 1)
        return any((module, line) in self.reviewed for line in lines)

    def _proved(self, node: ast.expr, scope: Optional[ast.AST], fragment: bool) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str) or (fragment and isinstance(node.value, int))
        if isinstance(node, ast.JoinedStr):
            return all(
                self.safe(v.value, scope, fragment=True)
                for v in node.values
                if isinstance(v, ast.FormattedValue)
            )
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self.safe(node.left, scope) and self.safe(node.right, scope)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            return _is_marks_text(node.left) or _is_marks_text(node.right)  # "?, " * n
        if isinstance(node, ast.IfExp):
            return self.safe(node.body, scope) and self.safe(node.orelse, scope)
        if isinstance(node, ast.Name):
            return self.safe_name(node.id, scope)
        if (  # self.CONSTANT, cls.CONSTANT, Class.CONSTANT: class-level constants
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.attr in self.class_values
        ):
            return all(self.safe(v, None) for v in self.class_values[node.attr])
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            return self.safe_container(node.value, scope)
        if isinstance(node, ast.Call):
            if _is_placeholder_marks(node):
                return True
            func = node.func
            if (  # " AND ".join(clauses) where every clause is safe SQL
                isinstance(func, ast.Attribute)
                and func.attr == "join"
                and isinstance(func.value, ast.Constant)
                and len(node.args) == 1
            ):
                return self.safe_container(node.args[0], scope)
            return fragment and isinstance(func, ast.Name) and func.id in {"int", "len"}
        return False

    def safe_container(self, node: ast.expr, scope: Optional[ast.AST]) -> bool:
        """A tuple, list, set or dict whose items are all safe SQL (or a name bound to one)."""
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return all(self.safe(e, scope) for e in node.elts)
        if isinstance(node, ast.Dict):
            return all(self.safe(v, scope) for v in node.values)
        if isinstance(node, ast.Name):
            local = self._bindings(node.id, scope)
            values = local or self.module_values.get(node.id, [])
            return (
                bool(values)
                and all(
                    isinstance(v, ast.expr) and self.safe_container(v, scope if local else None)
                    for v in values
                )
                and all(self.safe(item, scope) for item in self._appended(node.id, scope))
            )
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            return node.func.attr == "splitlines" and self.safe(node.func.value, scope)
        return False

    def safe_name(self, name: str, scope: Optional[ast.AST]) -> bool:
        key = (id(scope), name)
        if key in self._seen:
            return True  # a cycle adds nothing new; the other bindings decide
        self._seen.add(key)
        try:
            if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
                bindings = self._bindings(name, scope)
                if bindings:
                    return all(self._safe_binding(b, scope) for b in bindings)
                if name in _parameters(scope):
                    # A wrapper that is itself an SQL method passes the duty to its callers,
                    # whose calls are checked like any other.
                    return scope.name in SQL_METHODS or self._safe_parameter(scope, name)
            values = self.module_values.get(name)
            return bool(values) and all(self.safe(v, None) for v in values)
        finally:
            self._seen.discard(key)

    def _bindings(self, name: str, scope: Optional[ast.AST]) -> list[ast.AST]:
        if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return []
        found: list[ast.AST] = []
        for node, inner in _walk_with_scope(scope, scope):
            if inner is not scope:
                continue
            if isinstance(node, ast.Assign) and any(_names(t, name) for t in node.targets):
                found.append(node.value)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and _names(node.target, name):
                if node.value is not None:
                    found.append(node.value if isinstance(node, ast.AnnAssign) else node)
            elif isinstance(node, (ast.For, ast.comprehension)) and _names(node.target, name):
                found.append(node)
        return found

    def _appended(self, name: str, scope: Optional[ast.AST]) -> list[ast.expr]:
        """Items added with ``name.append(item)`` in ``scope``."""
        if scope is None:
            return []
        return [
            node.args[0]
            for node, inner in _walk_with_scope(scope, scope)
            if inner is scope
            and isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "append"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == name
            and len(node.args) == 1
        ]

    def _safe_binding(self, binding: ast.AST, scope: Optional[ast.AST]) -> bool:
        if isinstance(binding, ast.AugAssign):
            return isinstance(binding.op, ast.Add) and self.safe(binding.value, scope)
        if isinstance(binding, (ast.For, ast.comprehension)):
            return self.safe_container(binding.iter, scope)
        return isinstance(binding, ast.expr) and self.safe(binding, scope)

    def _safe_parameter(self, function: Function, name: str) -> bool:
        params = _parameters(function)
        index = params.index(name)
        is_method = bool(params) and params[0] in {"self", "cls"}
        passed = []
        for call, scope in self.calls:
            callee = call.func
            called = callee.id if isinstance(callee, ast.Name) else getattr(callee, "attr", None)
            if called != function.name:
                continue
            position = index - (1 if is_method and isinstance(callee, ast.Attribute) else 0)
            args = [k.value for k in call.keywords if k.arg == name]
            if not args and 0 <= position < len(call.args):
                args = [call.args[position]]
            passed.extend((arg, scope) for arg in args)
        return bool(passed) and all(self.safe(arg, scope) for arg, scope in passed)


def _parameters(function: Function) -> list[str]:
    a = function.args
    return [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]


def _names(target: ast.expr, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(target))


def _is_marks_text(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and "?" in node.value
        and set(node.value) <= {"?", ",", " "}
    )


def _is_placeholder_marks(call: ast.Call) -> bool:
    """``SEP.join("?" * n)``, ``SEP.join(["?"] * n)`` or ``SEP.join("?" for ...)``."""
    func = call.func
    if not (
        isinstance(func, ast.Attribute)
        and func.attr == "join"
        and isinstance(func.value, ast.Constant)
        and isinstance(func.value.value, str)
        and set(func.value.value) <= {",", " "}
        and len(call.args) == 1
    ):
        return False
    (arg,) = call.args

    def is_mark(node: ast.expr) -> bool:
        if isinstance(node, ast.List) and len(node.elts) == 1:
            node = node.elts[0]
        return isinstance(node, ast.Constant) and node.value == "?"

    if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Mult):
        return is_mark(arg.left) or is_mark(arg.right)
    return isinstance(arg, ast.GeneratorExp) and is_mark(arg.elt)


# -- network --------------------------------------------------------------------------------------

NETWORK_MODULES = {
    "socket",
    "ssl",
    "urllib",
    "http",
    "ftplib",
    "smtplib",
    "poplib",
    "imaplib",
    "telnetlib",
    "xmlrpc",
    "socketserver",
    "requests",
    "httpx",
    "urllib3",
    "aiohttp",
    "websockets",
}


def network_problems(sources: Sources) -> list[str]:
    problems = []
    for path, tree in sources.items():
        for node in ast.walk(tree):
            modules: list[str] = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules = [node.module]
            elif (
                isinstance(node, ast.Call)
                and _qualified(node.func, {}) in {"importlib.import_module", "__import__"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                modules = [str(node.args[0].value)]
            for module in modules:
                if module.split(".")[0] in NETWORK_MODULES:
                    problems.append(f"{path}:{getattr(node, 'lineno', '?')}: imports {module}")
    return problems


# -- the tests ------------------------------------------------------------------------------------


def test_no_shell_in_the_package() -> None:
    assert shell_problems(package_sources()) == []


def test_sql_is_always_parameterised_in_the_package() -> None:
    assert SqlChecker(package_sources(), package_texts()).problems() == []


def test_no_network_in_the_package() -> None:
    assert network_problems(package_sources()) == []


def test_every_module_is_checked_and_imports_without_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pytest-feedback tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    imported = {"pytest_feedback"}
    for info in pkgutil.walk_packages(pytest_feedback.__path__, "pytest_feedback."):
        importlib.import_module(info.name)
        imported.add(info.name)
    checked = {
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for name in package_sources()
    }
    assert checked == imported


SHELL_SAMPLES = {
    "os.system('git status')": 1,
    "import os as o\no.popen('ls')": 1,
    "subprocess.run('git status', shell=True)": 2,
    "subprocess.run(['git'], shell=flag)": 1,
    "from subprocess import check_output\ncheck_output(f'git {x}')": 1,
    "subprocess.run(['git', 'status'], shell=False)": 0,
    "subprocess.run([*args], cwd=cwd)": 0,
}


@pytest.mark.parametrize(("code", "expected"), SHELL_SAMPLES.items())
def test_the_shell_checker_finds_shells(code: str, expected: int) -> None:
    source = "import os, subprocess\n" + code
    assert len(shell_problems(parse(sample=source))) == expected


SQL_SAMPLES = {
    # Flagged: data in the SQL text.
    "def f(con, nodeid):\n    con.execute(f\"SELECT 1 WHERE n = '{nodeid}'\")\nf(c, user)": 1,
    "def f(con, n):\n    con.execute('SELECT %s' % n)": 1,
    "def f(con, n):\n    con.execute('SELECT {}'.format(n))": 1,
    "def f(con, n):\n    sql = 'SELECT ' + n\n    con.execute(sql)\nf(c, data)": 1,
    "def f(con, t):\n    con.execute(f'DELETE FROM {t}')\nf(c, 'runs')\nf(c, name)": 1,
    "def f(con, ids):\n    marks = ','.join(ids)\n    con.execute(f'SELECT 1 IN ({marks})')": 1,
    "def f(con, n):\n    con.execute(f'PRAGMA x = {str(n)}')": 1,
    # Not flagged: constants, placeholder marks, numbers, constants passed through.
    "def f(con, n):\n    con.execute('SELECT ?', (n,))": 0,
    "def f(con, c):\n    marks = ','.join('?' * len(c))\n"
    "    con.execute(f'SELECT 1 IN ({marks})', c)": 0,
    "def f(con, c):\n    con.execute(f\"SELECT 1 IN ({', '.join(['?'] * len(c))})\", c)": 0,
    "def f(con):\n    con.execute(f'PRAGMA busy_timeout = {int(T * 1000)}')": 0,
    "def f(con, t):\n    con.execute(f'DELETE FROM {t}')\nf(c, 'runs')\nf(c, t='tests')": 0,
    "S = 'CREATE TABLE t (x)'\n"
    "def f(con):\n    for line in S.splitlines():\n        con.execute(line)": 0,
    "def f(con, n):\n    con.execute('SELECT 1 IN (' + '?,' * n + '0)')": 0,
    "def f(con, a):\n    w = []\n    if a:\n        w.append('a = ?')\n"
    "    con.execute('SELECT 1 WHERE ' + ' AND '.join(w))": 0,
    "def f(con, a):\n    w = ['1']\n    w.append(a)\n"
    "    con.execute('SELECT 1 WHERE ' + ' AND '.join(w))": 1,
    "def f(con, n):\n    con.execute('SELECT 1 IN (' + n * '?,' + '0)')": 0,
    "def f(con, n):\n    con.execute('SELECT ' + n * 'x,' + '0')": 1,
    "class S:\n    COLS = 'a, b'\n    def f(self, con):\n"
    "        con.execute(f'SELECT {self.COLS} FROM t')": 0,
    "class S:\n    COLS = 'a, b'\n    def f(self, con):\n"
    "        con.execute(f'SELECT {self.cols} FROM t')": 1,
    "def f(con, t):\n    con.execute(f'SELECT * FROM {t}')  # noqa: S608 - t is ours": 0,
    "def f(con, t):\n    sql = (\n        'SELECT *'  # noqa: S608\n        f' FROM {t}'\n    )\n"
    "    con.execute(sql)": 0,
    "class Db:\n    def query(self, sql):\n        self.con.execute(sql)\n"
    "def f(db, n):\n    db.query(n)": 1,
    "def f(con):\n    sql = 'SELECT *'\n    sql += ' LIMIT ?'\n    con.execute(sql, (1,))": 0,
    "class S:\n    def g(self, sel):\n        self.db.query(sel + ' WHERE 1')\n"
    "    def h(self):\n        self.g('SELECT 1')": 0,
}


@pytest.mark.parametrize(("code", "expected"), SQL_SAMPLES.items())
def test_the_sql_checker_finds_interpolated_data(code: str, expected: int) -> None:
    checker = SqlChecker(parse(sample=code), {"sample.py": code})
    assert len(checker.problems()) == expected


NETWORK_SAMPLES = {
    "import socket": 1,
    "from urllib.request import urlopen": 1,
    "import http.client as h": 1,
    "import importlib\nimportlib.import_module('ssl')": 1,
    "from . import http": 0,
    "import sqlite3, subprocess": 0,
}


@pytest.mark.parametrize(("code", "expected"), NETWORK_SAMPLES.items())
def test_the_network_checker_finds_imports(code: str, expected: int) -> None:
    assert len(network_problems(parse(sample=code))) == expected
