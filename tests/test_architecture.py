"""The package's layers point one way (docs/architecture.md), and no module imports itself back.

Every import counts: at module level, inside functions, and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Container, Iterator
from pathlib import Path

import pytest

import pytest_feedback

PACKAGE = Path(pytest_feedback.__file__).parent

#: Each part of the package and its layer: a module may import its own part and lower layers.
LAYERS: dict[str, float] = {
    "base": 0,  # errors, durations, settings, git, ci: the vocabulary everything shares
    "history": 1,
    "depmap": 2,
    "selection": 3,
    "planning": 3,
    "report": 4,
    "facade": 4.5,  # the package's own __init__: the public API, __version__
    "session": 5,
    "cli": 5,
    "plugin": 6,  # the entry points: the pytest plugin, ``python -m pytest_feedback``
}
#: What may import pytest (or its private parts, or xdist) and argparse: the parts pytest or a
#: shell calls.
FRONT_ENDS = {"plugin", "session", "cli"}
FRONT_END_IMPORTS = {"pytest", "_pytest", "xdist", "argparse", "pluggy"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _part(module: str) -> str:
    """The part of the package a module belongs to (`LAYERS`' keys)."""
    bits = module.split(".")
    if len(bits) == 1:
        return "facade"
    if bits[1] == "__main__":
        return "plugin"  # the other entry point
    if bits[1] in LAYERS:
        return bits[1]
    return "base"


def _imports(module: str, path: Path, modules: Container[str] = ()) -> Iterator[str]:
    """The names ``module`` imports; ``from PACKAGE import SUBMODULE`` names the submodule alone
    when ``modules`` knows it (the package's own code runs either way, but that is its
    ``__init__``'s business, which the graph follows from there)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            subs = [f"{name}.{alias.name}" for alias in node.names]
            if not all(sub in modules for sub in subs):
                yield name
            yield from subs


def _graph() -> dict[str, set[str]]:
    """Each module and the package modules it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for module, path in modules.items():
        for name in _imports(module, path, modules):
            if name in modules and name != module:
                graph[module].add(name)
    return graph


def test_no_import_cycles() -> None:
    try:
        tuple(graphlib.TopologicalSorter(_graph()).static_order())
    except graphlib.CycleError as exc:
        pytest.fail("import cycle: " + " -> ".join(exc.args[1]))


def test_the_cycle_check_sees_a_cycle() -> None:
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter({"a": {"b"}, "b": {"c"}, "c": {"a"}}).static_order())


def test_layers_point_one_way() -> None:
    wrong = []
    edges = [(module, imported) for module, names in _graph().items() for imported in names]
    for module, imported in edges:
        here, there = _part(module), _part(imported)
        if here == there:
            continue
        if LAYERS[there] >= LAYERS[here]:
            wrong.append(f"{module} ({here}) imports {imported} ({there})")
    assert not wrong, "\n".join(wrong)


def test_only_the_front_ends_import_pytest_or_argparse() -> None:
    wrong = []
    for module, path in _modules().items():
        if _part(module) in FRONT_ENDS:
            continue
        for name in _imports(module, path):
            if name.split(".")[0] in FRONT_END_IMPORTS:
                wrong.append(f"{module} imports {name}")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_the_layout_stays_small() -> None:
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= 12, sorted(top)
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert not long, long
    assert len((PACKAGE / "plugin.py").read_text(encoding="utf-8").splitlines()) < 250


@pytest.mark.parametrize("line", ["import pytest", "from _pytest import x", "import argparse"])
def test_the_check_sees_a_front_end_import(line: str, tmp_path: Path) -> None:
    """The walker finds the imports the rules are about (a check that sees nothing passes)."""
    path = tmp_path / "mod.py"
    path.write_text(f"from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    {line}\n")
    names = set(_imports("pytest_feedback.history.mod", path))
    assert {n.split(".")[0] for n in names} & FRONT_END_IMPORTS


def test_the_public_api_resolves() -> None:
    """Every name `pytest_feedback.__all__` promises (docs/contract.md, "Python API") imports."""
    missing = [name for name in pytest_feedback.__all__ if not hasattr(pytest_feedback, name)]
    assert not missing
    assert pytest_feedback.DependencyMap.__module__ == "pytest_feedback.depmap.graph"
