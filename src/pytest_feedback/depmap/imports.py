"""Watches imports for ``--feedback-cov``: each project module's execution gets its own context.

A meta path finder placed first on ``sys.meta_path`` that finds nothing itself: it asks the other
finders and, for a module it will be asked to execute, wraps the loader's ``exec_module``. A
project module's import switches the coverage context to ``i:PATH`` (so its import-time code,
including functions it calls, is known apart from the test that happened to import it first); a
library module's import runs untraced.
"""

from __future__ import annotations

import importlib.machinery
import sys
from typing import Any, Optional, Protocol


class Probe(Protocol):
    """What the tracker needs of `measure.Measurement`."""

    @property
    def active(self) -> bool: ...

    def project_path(self, filename: str) -> Optional[str]: ...

    def pause_tracing(self) -> bool: ...

    def resume_tracing(self) -> bool: ...

    def enter_import(self, path: str) -> None: ...

    def leave_import(self) -> None: ...

    def missing_import(self, name: str) -> None: ...


#: Loaders of library modules whose import is run untraced (instances; never classes).
_PLAIN_LOADERS = (importlib.machinery.SourceFileLoader, importlib.machinery.SourcelessFileLoader)


class ImportTracker:
    """A meta path finder that only watches: project modules' imports get their own context."""

    def __init__(self, probe: Probe) -> None:
        self._probe = probe
        self._finding = False

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        probe = self._probe
        if self._finding or not probe.active:
            return None
        self._finding = True
        try:
            spec = None
            for finder in sys.meta_path:
                find = getattr(finder, "find_spec", None)
                if finder is self or find is None:
                    continue
                spec = find(fullname, path, target)
                if spec is not None:
                    break
        finally:
            self._finding = False
        if spec is None:
            if path is None:
                probe.missing_import(fullname)  # a top-level module not installed (yet)
            return None
        origin, loader = getattr(spec, "origin", None), getattr(spec, "loader", None)
        if (
            isinstance(origin, str)
            and loader is not None
            and (probe.project_path(origin) or isinstance(loader, _PLAIN_LOADERS))
        ):
            watch(loader, probe)
        return spec

    def invalidate_caches(self) -> None:
        pass


def watch(loader: Any, probe: Probe) -> None:
    """Wrap ``loader.exec_module`` so that a project module's execution is its own context."""
    if getattr(loader, "_feedback_watched", False):
        return
    original = loader.exec_module

    def exec_module(module: Any) -> Any:
        __tracebackhide__ = True  # an import error in the user's code shows the user's frames
        spec = getattr(module, "__spec__", None)
        origin = getattr(spec, "origin", None)
        if not probe.active:
            return original(module)
        rel = probe.project_path(origin) if isinstance(origin, str) else None
        if rel is None:
            # A library's import runs no project code: not tracing it saves the time
            # tracing costs (pytest plugins and libraries like hypothesis are big).
            paused = probe.pause_tracing()
            try:
                return original(module)
            finally:
                if paused:
                    probe.resume_tracing()
        resumed = probe.resume_tracing()  # a project module imported by a library
        probe.enter_import(rel)
        try:
            return original(module)
        finally:
            probe.leave_import()
            if resumed:
                probe.pause_tracing()

    try:
        loader.exec_module = exec_module
        loader._feedback_watched = True
    except (AttributeError, TypeError):
        pass
