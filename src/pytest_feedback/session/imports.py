"""What collection spends importing: the rows of the history's ``collect_imports`` table.

An `ImportTimer` sits first on ``sys.meta_path`` from before the first conftest.py is imported
until the process's collection ends. For each module imported for the first time it finds the
spec through the finders behind it (so the module is loaded exactly as without it) and times the
loader's ``exec_module``: every test module and conftest.py is kept, and of the other modules
those that took at least `THRESHOLD_S` (at most `MAX_MODULES` per process), with the test module
or conftest whose import pulled them in. Seconds include what each module imported; a module
imported while another such module is being imported is part of that one's row, not its own.

The plugin calls `start` (pytest_load_initial_conftests), `configure` and nothing else. Trouble
of the timer's own never reaches an import: the module is then imported untimed.
"""

from __future__ import annotations

import contextlib
import fnmatch
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from pytest_feedback.history.records import ImportRecord
from pytest_feedback.session.keys import recorded_run, register
from pytest_feedback.session.probe import RealClock

#: Another module is recorded when its import took at least this long (rows stay few).
THRESHOLD_S = 0.05
#: At most this many other modules per process, the longest.
MAX_MODULES = 30
#: Key in ``config.workeroutput`` through which a worker sends its rows.
WORKEROUTPUT_KEY = "feedback_imports"

TIMER_KEY: pytest.StashKey[ImportTimer] = pytest.StashKey()

#: (kind, name, via, seconds) of one timed import.
Row = tuple[str, str, Optional[str], float]


class ImportTimer:
    """A ``sys.meta_path`` finder that times the imports of the thread that installed it."""

    def __init__(self, rootpath: Path, test_patterns: Sequence[str]) -> None:
        self._rootpath = rootpath
        self._patterns = list(test_patterns)
        self._thread = threading.get_ident()
        self._finding = False
        #: The test module or conftest being imported, innermost last.
        self._via: list[str] = []
        #: Other modules being imported right now (only the outermost gets a row).
        self._modules = 0
        #: Loaders whose ``exec_module`` we replaced on the instance (removed by `stop`).
        self._wrapped: dict[int, tuple[Any, Callable[[Any], Any]]] = {}
        self.rows: list[Row] = []
        self.active = False

    def install(self) -> None:
        self.active = True
        sys.meta_path.insert(0, self)

    def stop(self) -> None:
        """Stop timing, leave ``sys.meta_path`` and every loader as they were."""
        self.active = False
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for loader, ours in self._wrapped.values():
            if getattr(loader, "__dict__", {}).get("exec_module") is ours:
                with contextlib.suppress(AttributeError, TypeError):
                    del loader.exec_module
        self._wrapped.clear()

    def kept_rows(self) -> list[Row]:
        """Every test module and conftest, and the longest other modules over the threshold."""
        modules = sorted((r for r in self.rows if r[0] == "module"), key=lambda r: -r[3])
        return [r for r in self.rows if r[0] != "module"] + modules[:MAX_MODULES]

    # -- the finder --------------------------------------------------------------------------

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if self._finding or not self.active or threading.get_ident() != self._thread:
            return None
        self._finding = True
        try:
            spec = self._find(fullname, path, target)
            if spec is not None:
                self._wrap(spec.loader)
            return spec
        except Exception:
            return None  # the import system asks the other finders again, untimed
        finally:
            self._finding = False

    def _find(self, fullname: str, path: Any, target: Any) -> Any:
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def _wrap(self, loader: Any) -> None:
        # A loader that is a class (builtins, frozen modules) is shared by everything: leave it.
        if loader is None or isinstance(loader, type) or id(loader) in self._wrapped:
            return
        original = getattr(loader, "exec_module", None)
        if original is None or not hasattr(loader, "__dict__"):
            return
        timer = self

        def exec_module(module: Any) -> Any:
            return timer._exec(original, module)

        try:
            loader.exec_module = exec_module
        except (AttributeError, TypeError):
            return
        self._wrapped[id(loader)] = (loader, exec_module)

    def _exec(self, original: Callable[[Any], Any], module: Any) -> Any:
        if not self.active or threading.get_ident() != self._thread:
            return original(module)
        try:
            kind, name = self._classify(module)
        except Exception:
            return original(module)
        via = self._via[-1] if self._via else None
        outer = self._modules
        if kind != "module":
            self._via.append(name)
            self._modules = 0  # a test module or conftest starts its own count
        else:
            self._modules += 1
        start = RealClock.perf()
        try:
            return original(module)
        finally:
            seconds = RealClock.perf() - start
            self._modules = outer
            if kind != "module":
                self._via.pop()
                self.rows.append((kind, name, None, seconds))
            elif seconds >= THRESHOLD_S and not outer:
                self.rows.append((kind, name, via, seconds))

    def _classify(self, module: Any) -> tuple[str, str]:
        """(kind, name): a conftest or test module by its rootdir-relative path, else the
        module's dotted name."""
        file = getattr(module, "__file__", None)
        if not file:
            return "module", str(module.__name__)
        path = Path(file)
        if path.name == "conftest.py":
            return "conftest", self._relative(path)
        if path.suffix == ".py" and any(_matches(p, path) for p in self._patterns):
            try:
                path.relative_to(self._rootpath)
            except ValueError:
                return "module", str(module.__name__)
            return "test", self._relative(path)
        return "module", str(module.__name__)

    def _relative(self, path: Path) -> str:
        try:
            return path.relative_to(self._rootpath).as_posix()
        except ValueError:
            return path.as_posix()


def _matches(pattern: str, path: Path) -> bool:
    """pytest's ``python_files`` matching: the name, or the whole path for a pattern with a /."""
    if "/" in pattern or "\\" in pattern:
        return fnmatch.fnmatch(path.as_posix(), "*" + pattern.replace("\\", "/"))
    return fnmatch.fnmatch(path.name, pattern)


def start(early_config: pytest.Config) -> None:
    """Time imports from here (before the first conftest.py) until collection ends."""
    try:
        patterns = [str(p) for p in early_config.getini("python_files")]
        timer = ImportTimer(early_config.rootpath, patterns)
        timer.install()
    except Exception:
        return  # the table stays empty for this run; imports are not ours to break
    early_config.stash[TIMER_KEY] = timer
    early_config.add_cleanup(timer.stop)


def configure(config: pytest.Config, recording: bool) -> None:
    """Keep timing in a process that records (or a worker of one), else stop now."""
    timer = config.stash.get(TIMER_KEY, None)
    if not recording:
        if timer is not None:
            timer.stop()
        return
    register(config, ImportRows(config, timer), "feedback-imports")


class ImportRows:
    """Hands the timer's rows to the run record (or, on a worker, to the controller)."""

    def __init__(self, config: pytest.Config, timer: Optional[ImportTimer]) -> None:
        self._config = config
        self._timer = timer

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self) -> None:
        timer = self._timer
        if timer is None:
            return
        timer.stop()
        rows = timer.kept_rows()
        workeroutput = getattr(self._config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[WORKEROUTPUT_KEY] = rows
        else:
            self._add("main", rows)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", None) or {}
        rows = output.get(WORKEROUTPUT_KEY)
        worker = (getattr(node, "workerinput", None) or {}).get("workerid")
        if rows and worker:
            self._add(str(worker), rows)

    def _add(self, worker: str, rows: Sequence[Sequence[Any]]) -> None:
        run = recorded_run(self._config)
        if run is None:
            return
        try:
            run.imports.extend(
                ImportRecord(worker, str(k), str(n), None if v is None else str(v), float(s))
                for k, n, v, s in rows
            )
        except (TypeError, ValueError):
            return  # a malformed row from a worker: the table stays empty for it
