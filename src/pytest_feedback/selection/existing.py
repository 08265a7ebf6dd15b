"""Which of the tests a history knows still exist in the working tree, without collecting.

The command line lists tests from the history (`pytest-feedback select`, `shards`, `workers`); a
test renamed or deleted since its last recorded run would be listed and make ``pytest @file``
fail with "not found". A test is gone when its file is gone, or when its file is a Python module
that no longer names it (nor its class). When none of the files is there, the history is read
away from its working tree and nothing is left out. When in doubt — a file that does not parse, a
class that may inherit the test, a test whose name is built at run time — it is kept: a gone test
listed costs a "not found", a present one left out would silently go untested.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Optional


def split_present(rootdir: Path, nodeids: Iterable[str]) -> tuple[list[str], list[str]]:
    """``nodeids`` split into (still present, gone), each in the given order."""
    files: dict[str, Optional[_Module]] = {}
    present: list[str] = []
    gone: list[str] = []
    for nodeid in nodeids:
        path = nodeid.split("::")[0]
        if path not in files:
            files[path] = _Module.read(rootdir / path)
        module = files[path]
        exists = module is not None and (path == nodeid or module.names(nodeid.split("::")[1:]))
        (present if exists else gone).append(nodeid)
    if not any(files.values()):
        # Not one of the files is here: the history was read away from its working tree (a CI
        # artifact, another checkout), which says nothing about what exists.
        return [*present, *gone], []
    return present, gone


def is_present(rootdir: Path, nodeid: str) -> bool:
    """Whether one test may still exist under ``rootdir`` (its file is there and names it)."""
    path, *names = nodeid.split("::")
    module = _Module.read(rootdir / path)
    return module is not None and (not names or module.names(names))


def gone_line(gone: list[str]) -> str:
    """The one line saying which recorded tests were left out as gone."""
    more = f" and {len(gone) - 1:,} more" if len(gone) > 1 else ""
    return (
        f"feedback: {len(gone):,} recorded test{'s' * (len(gone) != 1)} no longer in the "
        f"working tree (renamed or deleted) left out: {gone[0]}{more}"
    )


class _Module:
    """A test file's text and, for Python files that parse, its classes' base lists."""

    def __init__(self, text: str, classes: Optional[dict[str, bool]]) -> None:
        self.words = set(re.findall(r"\w+", text))
        #: class name -> whether it has bases (may inherit tests); None: not parsed.
        self.classes = classes

    @classmethod
    def read(cls, path: Path) -> Optional[_Module]:
        """None when the file is gone."""
        if not path.is_file():
            return None
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return _Module("", None)  # unreadable: cannot tell, keep its tests
        if path.suffix != ".py":
            return _Module(text, None)
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            return _Module(text, None)
        classes = {
            node.name: bool(node.bases or node.keywords)
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
        }
        return _Module(text, classes)

    def names(self, names: list[str]) -> bool:
        """Whether the node id's classes and test may still be in this file."""
        if self.classes is None:
            return True  # not a Python module we could read: its own collector decides
        *outer, last = [n.split("[", 1)[0] for n in names]
        test = last.rsplit(".", 1)[-1]  # a doctest's name is dotted
        if any(name not in self.words for name in outer):
            return False
        if test in self.words or not test.isidentifier():
            return True
        # Not named here: it may still come from a base class of the class it is in.
        return bool(outer) and self.classes.get(outer[-1], True)
