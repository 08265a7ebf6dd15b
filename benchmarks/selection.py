"""Is selection safe, and how much does it leave out? Mutation testing against real suites.

For each real suite (copied to a temp dir first), the benchmark records a coverage map and a
pytest-testmon database on the clean tree, then applies one source mutation at a time (flipped
comparisons, changed return values, module constants, default arguments, class attributes,
deleted statements), finds with a full run the tests the mutation really breaks, and asks both
selectors which tests they would run. A small project of our own adds the cases real suites rarely
have: a data file a test reads, code a test runs in a subprocess, a module constant.

It prints, per suite and in total: the mutations whose broken tests were not all selected (goal 0)
and the mean fraction of the suite selected, for `pytest-feedback select` and for
`pytest --testmon` on the same mutations.

    python benchmarks/selection.py [--corpora toolz,arrow,attrs] [--per-kind 2] [--seed 7]

Needs the corpora of /tmp/pytest-feedback-corpora (their venvs have pytest-testmon); our code is
loaded from this checkout's ``src`` with PYTHONPATH, nothing is installed into the corpus venvs.
"""

from __future__ import annotations

import argparse
import ast
import collections
import dataclasses
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Callable, Optional

HERE = Path(__file__).resolve().parent
#: Our code; PYTEST_FEEDBACK_SRC names another copy (a snapshot, while the checkout is edited).
SRC = Path(os.environ.get("PYTEST_FEEDBACK_SRC", HERE.parent / "src"))
CORPORA = Path(os.environ.get("PYTEST_FEEDBACK_CORPORA", "/tmp/pytest-feedback-corpora"))
KINDS = (
    "compare", "return", "constant", "default", "class-attr", "delete",
    # the narrowing rules of docs/selection.md: classes with a harmless metaclass, a scalar
    # element of a display, a function's annotations
    "abc-attr", "display", "annotation",
    # added definitions: a function nothing calls, and a method that overrides an inherited one
    # (its callers break)
    "added-def", "override",
)  # fmt: skip
#: Kinds drawn with their own random generator, so that adding them changes no other draw.
OWN_DRAW = ("added-def", "override")
#: Bases and metaclasses (as written) whose classes narrow like plain ones.
HARMLESS = ("ABC", "abc.ABC", "ABCMeta", "abc.ABCMeta", "Protocol", "Generic")
SWAP = {
    ast.Lt: ("<", ">="),
    ast.LtE: ("<=", ">"),
    ast.Gt: (">", "<="),
    ast.GtE: (">=", "<"),
    ast.Eq: ("==", "!="),
    ast.NotEq: ("!=", "=="),
}

#: What `Suite.run` reports when pytest wrote no outcomes at all.
CRASHED = "collect-error::<pytest did not start>"
OUTCOMES_PLUGIN = """
import json, os
_seen = {}
def pytest_runtest_logreport(report):
    if report.failed:
        _seen[report.nodeid] = "failed"
    elif report.when == "call" or report.skipped:
        _seen.setdefault(report.nodeid, report.outcome)
def pytest_collectreport(report):
    if report.failed:
        _seen["collect-error::" + report.nodeid] = "failed"
def pytest_sessionfinish(session):
    with open(os.environ["BENCH_OUTCOMES"], "w") as f:
        json.dump(_seen, f)
"""


@dataclasses.dataclass
class Suite:
    name: str
    root: Path  # the copy's src dir (rootdir, its own git repo)
    python: str
    env: dict[str, str]
    args: list[str]
    package: str

    def run(
        self,
        *extra: str,
        plugin_dir: Path,
        timeout: float = 900,
        output: Optional[list[str]] = None,
    ) -> tuple[dict[str, str], float]:
        """Run pytest with ``extra``; the outcome per node id and the wall seconds.

        With ``output``, the run's terminal output is appended to it.
        """
        out = plugin_dir / "outcomes.json"
        out.unlink(missing_ok=True)
        env = {**os.environ, **self.env, "BENCH_OUTCOMES": str(out)}
        paths = [str(SRC), self.env.get("PYTHONPATH", ""), str(plugin_dir)]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        env.pop("PYTEST_ADDOPTS", None)
        cmd = [self.python, "-m", "pytest", *self.args, "-p", "bench_outcomes", "-q"]
        cmd += ["-W", "ignore::DeprecationWarning", *extra]  # testmon needs the cache plugin
        start = time.perf_counter()
        proc = subprocess.run(
            cmd, cwd=self.root, env=env, stderr=subprocess.DEVNULL, timeout=timeout, check=False,
            stdout=subprocess.PIPE if output is not None else subprocess.DEVNULL,
        )  # fmt: skip
        wall = time.perf_counter() - start
        if output is not None:
            output.append(proc.stdout.decode(errors="replace"))
        if not out.exists():  # pytest could not even start (a plugin imports the mutated code)
            return {CRASHED: "failed"}, wall
        return json.loads(out.read_text()), wall

    def select(
        self, db: Path, plugin_dir: Path
    ) -> tuple[dict[str, list[str]], Optional[str], float]:
        """Ask `pytest-feedback select`, in the suite's own interpreter (its environment)."""
        paths = [str(SRC), self.env.get("PYTHONPATH", ""), str(plugin_dir)]
        env = {**os.environ, **self.env, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        start = time.perf_counter()
        proc = subprocess.run(
            [self.python, "-m", "pytest_feedback", "select", "--db", str(db), "--format", "json",
             "--rootdir", str(self.root)],
            cwd=self.root, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{self.name}: select failed: {proc.stderr.strip()}")
        doc = json.loads(proc.stdout)
        return {t["nodeid"]: t["reasons"] for t in doc["selected"]}, doc["fallback"], wall


def link_dependencies(plugin_dir: Path) -> None:
    """Our pure-Python dependencies the corpus venvs lack (networkx), linked next to the outcome
    plugin (on PYTHONPATH) from the interpreter running the benchmark."""
    import importlib.util

    for name in ("networkx",):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            (plugin_dir / name).symlink_to(next(iter(spec.submodule_search_locations)))


def copy_suite(name: str, work: Path) -> Suite:
    """Copy a corpus's source tree (not its venv) and read how its wrapper runs pytest."""
    origin = CORPORA / name
    dest = work / name
    shutil.copytree(origin / "src", dest, symlinks=True)
    words = shlex.split((origin / "pytest").read_text().strip().splitlines()[-1])
    at = words.index("exec") + 1
    env: dict[str, str] = {}
    if words[at] == "env":
        at += 1
        while "=" in words[at] and not words[at].startswith("/"):
            key, _, value = words[at].partition("=")
            env[key] = value
            at += 1
    python = words[at]
    args = [w for w in words[at + 3 :] if w != "$@"]
    package = (origin / "package").read_text().strip()
    if package.startswith("src/"):  # the venv's editable install points at the original
        env["PYTHONPATH"] = str(dest / "src")
    return Suite(name, dest, python, env, args, package)


# -- mutations ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Mutation:
    kind: str
    path: str  # rootdir-relative
    line: int
    before: str
    after: str
    #: The whole mutated file; or None, and `original` holds the file's lines, shared by all the
    #: candidates of a file (sqlglot has thousands: a whole text each took gigabytes).
    mutated: Optional[str] = None
    original: Optional[list[str]] = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def text(self) -> str:
        """The whole mutated file."""
        if self.mutated is not None:
            return self.mutated
        assert self.original is not None
        lines = [*self.original]
        lines[self.line - 1] = self.after
        return "".join(lines)

    def parses(self) -> bool:
        """Whether the mutated file is still Python."""
        try:
            ast.parse(self.text)
        except SyntaxError:
            return False
        return True

    def describe(self) -> str:
        return (
            f"{self.kind:10} {self.path}:{self.line}: {self.before.strip()} -> {self.after.strip()}"
        )


def _changed_constant(node: ast.expr) -> Optional[str]:
    if not isinstance(node, ast.Constant) or node.lineno != node.end_lineno:
        return None
    value = node.value
    if isinstance(value, bool):
        return repr(not value)
    if isinstance(value, int):
        return repr(value + 1)
    if isinstance(value, float):
        return repr(value * 2 + 1)
    if isinstance(value, str) and len(value) < 60:
        return None if "\n" in value else "STR"  # `_replace` appends to the literal as written
    if value is None:
        return "0"
    return None


DISPLAYS = (ast.List, ast.Tuple, ast.Set, ast.Dict)


def _harmless_class(node: ast.ClassDef) -> bool:
    written = [ast.unparse(b) for b in node.bases] + [ast.unparse(k.value) for k in node.keywords]
    return any(w.split("[")[0] in HARMLESS for w in written)


def _scalar_element(display: ast.expr) -> Optional[ast.expr]:
    """The first scalar literal element of a display (dict values included)."""
    elements = display.values if isinstance(display, ast.Dict) else display.elts  # type: ignore[attr-defined]
    for element in elements:
        if isinstance(element, ast.Constant):
            return element
    return None


def _replace(lines: list[str], node: ast.AST, new: str) -> Optional[tuple[str, str]]:
    line = lines[node.lineno - 1]  # type: ignore[attr-defined]
    start, end = node.col_offset, node.end_col_offset  # type: ignore[attr-defined]
    raw = line.encode()
    if end is None or node.lineno != node.end_lineno:  # type: ignore[attr-defined]
        return None
    if new == "STR":
        literal = raw[start:end].decode()
        if literal[-1:] not in "'\"" or literal.endswith(literal[-1] * 3):
            return None
        new = literal[:-1] + "_m" + literal[-1]
    changed = (raw[:start] + new.encode() + raw[end:]).decode()
    return line, changed


def mutations_of(path: Path, rel: str, checked: bool = True) -> dict[str, list[Mutation]]:
    """Every single-line mutation of each kind that still parses; ``checked=False``: without
    parsing each mutated file (a candidate is then checked with `Mutation.parses` when drawn:
    sqlglot's 11,000-line parser has thousands of candidates)."""
    text = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    lines = text.splitlines(keepends=True)
    found: dict[str, list[Mutation]] = {k: [] for k in KINDS}
    parents: dict[ast.AST, ast.AST] = {}
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            parents[child] = parent

    def in_function(node: ast.AST) -> bool:
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return True
        return False

    def add(kind: str, node: ast.AST, pair: Optional[tuple[str, str]]) -> None:
        if pair is None or pair[0] == pair[1]:
            return
        lineno = node.lineno  # type: ignore[attr-defined]
        mutation = Mutation(kind, rel, lineno, pair[0], pair[1], original=lines)
        if not checked or mutation.parses():
            found[kind].append(mutation)

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and in_function(node):
            swap = SWAP.get(type(node.ops[0]))
            left, right = node.left, node.comparators[0]
            if swap and left.end_lineno == right.lineno == node.lineno:
                line = lines[node.lineno - 1]
                raw = line.encode()
                gap = raw[left.end_col_offset : right.col_offset].decode()
                if gap.strip() == swap[0]:
                    new_gap = gap.replace(swap[0], swap[1], 1)
                    start, end = left.end_col_offset or 0, right.col_offset
                    changed = (raw[:start] + new_gap.encode() + raw[end:]).decode()
                    add("compare", node, (line, changed))
        elif isinstance(node, ast.Return) and node.value is not None:
            new = (
                "0" if isinstance(node.value, ast.Constant) and node.value.value is None else "None"
            )
            add("return", node.value, _replace(lines, node.value, new))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                if default is not None and (constant := _changed_constant(default)):
                    add("default", default, _replace(lines, default, constant))
        if isinstance(node, (ast.Module, ast.ClassDef)):
            kind = "constant" if isinstance(node, ast.Module) else "class-attr"
            if isinstance(node, ast.ClassDef) and _harmless_class(node):
                kind = "abc-attr"
            for stmt in node.body:
                value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
                if value is not None and (constant := _changed_constant(value)):
                    add(kind, value, _replace(lines, value, constant))
                elif isinstance(node, ast.Module) and isinstance(value, DISPLAYS):
                    element = _scalar_element(value)
                    if element is not None and (constant := _changed_constant(element)):
                        add("display", element, _replace(lines, element, constant))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            annotated = node.returns or next(
                (a.annotation for a in node.args.args if a.annotation is not None), None
            )
            if annotated is not None and ast.unparse(annotated) != "object":
                add("annotation", annotated, _replace(lines, annotated, "object"))
        if isinstance(node, ast.Module):
            _additions(node, lines, add)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and len(node.body) >= 2:
            for stmt in node.body[1:]:
                simple = (ast.Assign, ast.AugAssign, ast.Expr, ast.If, ast.For, ast.Return)
                if isinstance(stmt, simple) and stmt.lineno == stmt.end_lineno:
                    indent = lines[stmt.lineno - 1][: stmt.col_offset]
                    add("delete", stmt, (lines[stmt.lineno - 1], indent + "pass\n"))
    return found


def _additions(
    tree: ast.Module,
    lines: list[str],
    add: Callable[[str, ast.AST, Optional[tuple[str, str]]], None],
) -> None:
    """``added-def``: a new function after a top-level one; ``override``: a method returning
    None added to a class whose base class (in the same file) has a method of that name."""
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    for node in tree.body:
        last = lines[(node.end_lineno or node.lineno) - 1]
        if not last.endswith("\n"):
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            added = "\n\ndef _added_by_the_benchmark():\n    return None\n"
            add("added-def", _At(node.end_lineno or node.lineno), (last, last + added))
        elif isinstance(node, ast.ClassDef):
            own = {
                s.name for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
            }
            for base in node.bases:
                parent = classes.get(base.id) if isinstance(base, ast.Name) else None
                methods = [
                    s.name for s in (parent.body if parent else [])
                    if isinstance(s, ast.FunctionDef) and not s.name.startswith("__")
                    and s.name not in own and not s.decorator_list
                ]  # fmt: skip
                if methods:
                    indent = " " * (node.body[0].col_offset)
                    method = (f"\n{indent}def {methods[0]}(self, *args, **kwargs):\n"
                              f"{indent}    return None\n")  # fmt: skip
                    add("override", _At(node.end_lineno or node.lineno), (last, last + method))
                    break


@dataclasses.dataclass
class _At:
    """Where an addition goes (the line it follows)."""

    lineno: int


def pick_mutations(suite: Suite, per_kind: int, rng: random.Random) -> list[Mutation]:
    package_dir = next(
        (p for p in (suite.root / suite.package, suite.root / "src" / suite.package) if p.is_dir()),
        None,
    )
    if package_dir is None:
        raise RuntimeError(f"{suite.name}: package {suite.package} not found")
    pool: dict[str, list[Mutation]] = {k: [] for k in KINDS}
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(suite.root).as_posix()
        if "/tests/" in f"/{rel}" or path.name.startswith("test_") or path.name == "conftest.py":
            continue  # mutate the code under test, not the tests
        for kind, found in mutations_of(path, rel).items():
            pool[kind].extend(found)
    chosen: list[Mutation] = []
    for kind in KINDS:
        draw = random.Random(f"{suite.name}:{kind}") if kind in OWN_DRAW else rng
        draw.shuffle(pool[kind])
        chosen.extend(pool[kind][:per_kind])
    return chosen


# -- measuring ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Result:
    mutation: Mutation
    broken: set[str]
    ours: set[str]
    testmon: set[str]
    total: int
    fallback: Optional[str]
    #: reason template (paths and names left out) -> tests selected for it (first reason)
    reasons: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    @property
    def ours_missed(self) -> set[str]:
        return self.broken - self.ours

    @property
    def testmon_missed(self) -> set[str]:
        return self.broken - self.testmon


def failing(outcomes: dict[str, str]) -> set[str]:
    return {n for n, o in outcomes.items() if o == "failed"}


def broken_by(now: dict[str, str], baseline: dict[str, str]) -> set[str]:
    """Tests that passed before and fail now; a module that stops collecting breaks its tests,
    and a pytest that cannot start breaks them all."""
    tests = {n for n in baseline if not n.startswith("collect-error::")}
    if CRASHED in now:
        return {n for n in tests if baseline[n] != "failed"}
    broken = {n for n in failing(now) if baseline.get(n) != "failed" and n in tests}
    for key in now:
        if key.startswith("collect-error::"):
            where = key[len("collect-error::") :]
            broken |= {n for n in tests if n.startswith(where) and baseline[n] != "failed"}
    return broken


def measure(
    suite: Suite, mutations: list[Mutation], plugin_dir: Path, log: list[str]
) -> list[Result]:
    db = plugin_dir / f"{suite.name}.db"
    baseline, wall = suite.run("-p", "pytest_feedback.plugin", "--feedback-cov",
                               "--feedback-db", str(db), plugin_dir=plugin_dir)  # fmt: skip
    log.append(f"{suite.name}: map recorded in {wall:.1f} s ({len(baseline)} tests)")
    _, wall = suite.run("--testmon", plugin_dir=plugin_dir)
    log.append(f"{suite.name}: testmon data recorded in {wall:.1f} s")
    tests = {n for n in baseline if not n.startswith("collect-error::")}
    results: list[Result] = []
    for mutation in mutations:
        path = suite.root / mutation.path
        original = path.read_text(encoding="utf-8")
        path.write_text(mutation.text, encoding="utf-8")
        try:
            now, _ = suite.run(plugin_dir=plugin_dir)
            broken = broken_by(now, baseline)
            chosen, fallback, _ = suite.select(db, plugin_dir)
            ours = set(chosen)
            tm, _ = suite.run("--testmon", "--testmon-nocollect", plugin_dir=plugin_dir)
            testmon = {n for n in tm if not n.startswith("collect-error::")}
            suspects = broken - ours
            if suspects:  # confirm each fails with the mutation ...
                again, _ = suite.run(*sorted(suspects), plugin_dir=plugin_dir)
                broken -= suspects - (suspects if CRASHED in again else failing(again))
        finally:
            path.write_text(original, encoding="utf-8")
        suspects = broken - ours
        if suspects:  # ... and passes without it (else it is flaky, not broken)
            clean, _ = suite.run(*sorted(suspects), plugin_dir=plugin_dir)
            broken -= failing(clean)
        reasons = collections.Counter(template(r[0]) for n, r in chosen.items() if r and n in tests)
        results.append(
            Result(mutation, broken, ours & tests, testmon & tests, len(tests), fallback, reasons)
        )
    return results


# -- our own project: data files, subprocesses, constants -----------------------------------------

OWN_FILES = {
    "pyproject.toml": "[tool.pytest.ini_options]\ntestpaths = ['tests']\n",
    "own/__init__.py": "",
    "own/config.py": "LIMIT = 10\nUNIT = 'kg'\n",
    "own/loader.py": textwrap.dedent(
        """\
        import json
        from pathlib import Path

        DATA = Path(__file__).resolve().parent.parent / "data" / "values.json"


        def values():
            return json.loads(DATA.read_text())
        """
    ),
    "own/worker.py": textwrap.dedent(
        """\
        import sys


        def compute(n):
            return n * 2


        if __name__ == "__main__":
            print(compute(int(sys.argv[1])))
        """
    ),
    "own/units.py": textwrap.dedent(
        """\
        from own.config import LIMIT, UNIT


        def label(n):
            return f"{min(n, LIMIT)} {UNIT}"
        """
    ),
    "own/registry.py": "def lookup(obj, name):\n    return getattr(obj, name)\n",
    "data/values.json": '{"a": 1, "b": 2}\n',
    "tests/test_loader.py": textwrap.dedent(
        """\
        from own.loader import values


        def test_values():
            assert values() == {"a": 1, "b": 2}
        """
    ),
    "tests/test_worker.py": textwrap.dedent(
        """\
        import subprocess
        import sys


        def test_worker_in_a_subprocess():
            out = subprocess.run(
                [sys.executable, "-m", "own.worker", "21"], capture_output=True, text=True,
                check=True,
            )
            assert out.stdout.strip() == "42"
        """
    ),
    "tests/test_units.py": textwrap.dedent(
        """\
        from own.units import label


        def test_label():
            assert label(3) == "3 kg"


        def test_label_limit():
            assert label(30) == "10 kg"
        """
    ),
    # a computed-name read of the changed module, and one of an object that cannot be it
    "tests/test_lookup.py": textwrap.dedent(
        """\
        from own import config
        from own.registry import lookup


        def test_lookup_unit():
            assert lookup(config, "UN" + "IT") == "kg"
        """
    ),
    "tests/test_lookup_other.py": textwrap.dedent(
        """\
        from own.registry import lookup


        class Box:
            size = 3


        def test_lookup_elsewhere():
            assert lookup(Box, "si" + "ze") == 3
        """
    ),
    # reads annotations of a function whose annotations change
    "tests/test_hints.py": textwrap.dedent(
        """\
        import typing

        from own.units import label


        def test_label_has_no_hints():
            assert typing.get_type_hints(label) == {}
        """
    ),
    "tests/test_plain.py": "".join(
        f"def test_plain_{i}():\n    assert {i} + 1 == {i + 1}\n\n\n" for i in range(20)
    ),
}


def own_suite(work: Path, python: str) -> tuple[Suite, list[Mutation]]:
    root = work / "own"
    for name, text in OWN_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@b"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "own"], cwd=root, check=True)
    suite = Suite("own", root, python, {"PYTHONPATH": str(root)}, [], "own")

    def mutation(kind: str, path: str, before: str, after: str) -> Mutation:
        text = OWN_FILES[path].replace(before, after)
        line = OWN_FILES[path][: OWN_FILES[path].index(before)].count("\n") + 1
        return Mutation(kind, path, line, before, after, text)

    return suite, [
        mutation("data-file", "data/values.json", '"b": 2', '"b": 3'),
        mutation("subprocess", "own/worker.py", "n * 2", "n * 3"),
        mutation("constant", "own/config.py", "LIMIT = 10", "LIMIT = 12"),
        mutation("computed", "own/config.py", "UNIT = 'kg'", "UNIT = 'lb'"),
        mutation("annotation", "own/units.py", "def label(n):", "def label(n: int) -> str:"),
    ]


# -- report -------------------------------------------------------------------------------------


def template(reason: str) -> str:
    """A reason without its paths and names, to count which rules select the most tests."""
    reason = re.sub(r"^(reaches|may read) .+?(,| by| its)", r"\1 NAME\2", reason)
    reason = re.sub(r"and .+? changed in", "and NAME changed in", reason)
    return re.sub(r"[\w./-]+\.(py|json|txt|toml|cfg|ini)\b|\S+/\S+", "FILE", reason)


def summarise(name: str, results: list[Result]) -> list[str]:
    if not results:
        return [f"{name}: no mutations"]
    effective = [r for r in results if r.broken]
    ours_missed = [r for r in effective if r.ours_missed]
    tm_missed = [r for r in effective if r.testmon_missed]
    ours_frac = sum(len(r.ours) / r.total for r in results) / len(results)
    tm_frac = sum(len(r.testmon) / r.total for r in results) / len(results)
    # the same on the mutations testmon missed nothing of (a miss is cheap to be small with)
    fair = [r for r in results if not r.testmon_missed]
    fair_ours = sum(len(r.ours) / r.total for r in fair) / max(len(fair), 1)
    fair_tm = sum(len(r.testmon) / r.total for r in fair) / max(len(fair), 1)
    return [
        f"{name:15} mutations {len(results):3}  breaking {len(effective):3}  "
        f"missed: ours {len(ours_missed):2}  testmon {len(tm_missed):2}  "
        f"mean selected: ours {ours_frac:6.1%}  testmon {tm_frac:6.1%}  "
        f"(where testmon missed nothing, {len(fair)}: ours {fair_ours:6.1%}  "
        f"testmon {fair_tm:6.1%})",
        *top_reasons(results),
    ]


def top_reasons(results: list[Result], count: int = 3) -> list[str]:
    """The rules that selected the most tests (first reason of each), so the next gap shows."""
    return top_reasons_of([r.reasons for r in results], count)


def top_reasons_of(counters: list[collections.Counter[str]], count: int = 3) -> list[str]:
    """`top_reasons` of reason counters."""
    total: collections.Counter[str] = collections.Counter()
    for counter in counters:
        total.update(counter)
    picks = sum(total.values()) or 1
    return [f"{'':15} {n / picks:6.1%}  {reason}" for reason, n in total.most_common(count)]


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", default="toolz,arrow,attrs")
    parser.add_argument("--per-kind", type=int, default=2, help="mutations per kind per suite")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="select-bench-"))
    plugin_dir = work / "plugin"
    plugin_dir.mkdir()
    (plugin_dir / "bench_outcomes.py").write_text(OUTCOMES_PLUGIN)
    link_dependencies(plugin_dir)
    log: list[str] = []
    table: list[str] = []
    everything: list[Result] = []
    start = time.perf_counter()
    try:
        names = [n for n in args.corpora.split(",") if n]
        plans: list[tuple[Suite, list[Mutation]]] = []
        for name in names:
            suite = copy_suite(name, work)
            plans.append((suite, pick_mutations(suite, args.per_kind, rng)))
        fallback_python = str(CORPORA / "toolz" / "venv" / "bin" / "python")
        python = plans[0][0].python if plans else fallback_python
        plans.append(own_suite(work, python))
        for suite, mutations in plans:
            results = measure(suite, mutations, plugin_dir, log)
            everything.extend(results)
            table.extend(summarise(suite.name, results))
            for r in results:
                flag = "MISSED" if r.ours_missed else "ok"
                print(
                    f"  [{suite.name}] {flag:6} broken {len(r.broken):4}  ours {len(r.ours):5}"
                    f"  testmon {len(r.testmon):5}  of {r.total}  {r.mutation.describe()}"
                    + (f"  (fallback: {r.fallback})" if r.fallback else ""),
                    flush=True,
                )
                for reason, n in r.reasons.most_common(2):
                    print(f"      {n:5}  {reason}")
                for nodeid in sorted(r.ours_missed)[:5]:
                    print(f"      missed by ours: {nodeid}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    for line in log:
        print(line)
    print()
    for line in table:
        print(line)
    for line in summarise("total", everything):
        print(line)
    print(f"benchmark wall time {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
