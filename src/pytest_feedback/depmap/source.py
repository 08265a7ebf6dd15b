"""What `ast` tells about a Python file: import-time lines, functions, imported modules.

Pure functions of a file's text; a file that does not parse gives empty answers, never an error.
"""

from __future__ import annotations

import ast
import dataclasses
from typing import Optional, Union

FunctionNode = Union[ast.FunctionDef, ast.AsyncFunctionDef]


@dataclasses.dataclass(frozen=True)
class Block:
    """A function (or method) and the lines of its body, 1-based and inclusive."""

    qualname: str
    start: int  # first line of the ``def`` (after decorators)
    end: int
    body_start: int


def _parse(source: str) -> Optional[ast.Module]:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def _span(node: ast.AST) -> tuple[int, int]:
    start = getattr(node, "lineno", 0)
    end = getattr(node, "end_lineno", None) or start
    return start, end


def toplevel_lines(source: str) -> set[int]:
    """Lines of statements that run when the module is imported.

    Everything outside function bodies: module statements, class bodies, decorators, default
    arguments and annotations of ``def`` lines. A function's body runs only when called.
    """
    return _toplevel(_parse(source))


def analyse(source: str, module: Optional[str], is_package: bool) -> tuple[set[int], set[str]]:
    """`toplevel_lines` and `imported_modules` of one file, parsed once."""
    tree = _parse(source)
    return _toplevel(tree), _imports(tree, module, is_package)


def _toplevel(tree: Optional[ast.Module]) -> set[int]:
    lines: set[int] = set()
    if tree is None:
        return lines

    def visit(statements: list[ast.stmt]) -> None:
        for stmt in statements:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for decorator in stmt.decorator_list:
                    start, end = _span(decorator)
                    lines.update(range(start, end + 1))
                body_start = stmt.body[0].lineno if stmt.body else stmt.lineno + 1
                lines.update(range(stmt.lineno, max(stmt.lineno, body_start - 1) + 1))
                continue
            if isinstance(stmt, ast.ClassDef):
                for decorator in stmt.decorator_list:
                    start, end = _span(decorator)
                    lines.update(range(start, end + 1))
                body_start = stmt.body[0].lineno if stmt.body else stmt.lineno + 1
                lines.update(range(stmt.lineno, max(stmt.lineno, body_start - 1) + 1))
                visit(stmt.body)
                continue
            children = _child_blocks(stmt)
            if children is None:
                start, end = _span(stmt)
                lines.update(range(start, end + 1))
                continue
            header_end = min(b[0].lineno for b in children if b) - 1
            lines.update(range(stmt.lineno, max(stmt.lineno, header_end) + 1))
            for block in children:
                visit(block)
            for handler in getattr(stmt, "handlers", ()):
                lines.add(handler.lineno)
                visit(handler.body)

    visit(tree.body)
    return lines


def _child_blocks(stmt: ast.stmt) -> Optional[list[list[ast.stmt]]]:
    """The nested statement lists of a compound statement, None for a simple one."""
    blocks: list[list[ast.stmt]] = []
    for field in ("body", "orelse", "finalbody"):
        value = getattr(stmt, field, None)
        if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
            blocks.append(value)
    match = getattr(ast, "Match", None)  # Python 3.10+
    if match is not None and isinstance(stmt, match):
        blocks.extend(case.body for case in getattr(stmt, "cases", ()))
    if not blocks and not getattr(stmt, "handlers", None):
        return None
    return blocks or [[]]


def functions(source: str) -> list[Block]:
    """Every function and method, outermost first, with dotted qualified names."""
    tree = _parse(source)
    found: list[Block] = []
    if tree is None:
        return found

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qualname = f"{prefix}{child.name}"
                start, end = _span(child)
                body_start = child.body[0].lineno if child.body else start
                found.append(Block(qualname, start, end, body_start))
                visit(child, qualname + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def innermost_function(blocks: list[Block], line: int) -> Optional[Block]:
    """The innermost function whose body holds ``line``."""
    best: Optional[Block] = None
    for block in blocks:
        if block.body_start <= line <= block.end and (
            best is None or block.body_start >= best.body_start
        ):
            best = block
    return best


def imported_modules(source: str, module: Optional[str], is_package: bool) -> set[str]:
    """Absolute names of the modules a file imports anywhere in it (functions included).

    ``from a import b`` yields ``a`` and ``a.b`` (``b`` may be a submodule); relative imports are
    resolved against ``module``, the file's own dotted name, when it is known.
    """
    return _imports(_parse(source), module, is_package)


def _imports(tree: Optional[ast.Module], module: Optional[str], is_package: bool) -> set[str]:
    names: set[str] = set()
    if tree is None:
        return names
    package = module if is_package else (module.rpartition(".")[0] if module else None)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.update(_with_parents(alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                if package is None:
                    continue
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts):
                    continue
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            if not base:
                continue
            names.update(_with_parents(base))
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]
