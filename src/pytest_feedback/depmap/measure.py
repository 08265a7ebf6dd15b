"""Per-test coverage collection for ``--feedback-cov``, in every process that runs tests.

One coverage.py measurement runs from pytest's start-up (before the first conftest is imported)
to the end of the test loop; its dynamic context says to what the executed lines belong:

* ``t:NODEID`` — a test's set-up, call and tear-down;
* ``c:NODEID`` — the collection of a collector (``c:`` is the session and the initial
  conftests): test module bodies, class bodies, parametrize arguments, conftest.py files;
* ``i:PATH`` — the import of a project module, including any function that import calls.

An audit hook adds the files a context opens for reading inside the rootdir and counts the child
processes it starts; Python children inherit coverage.py's subprocess measurement
(``COVERAGE_PROCESS_CONFIG``) with the current test as their static context.

At the end of the test loop the measurement turns the data into a plain `MapPayload` (picklable,
so an xdist worker ships it through ``workeroutput``). Which hook switches to which context, and
who writes the payload, is the pytest side's business: ``session/mapping.py``. What coverage.py
does not offer publicly goes through `coverage_internals`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import os
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Callable, Optional

from pytest_feedback.depmap import coverage_internals
from pytest_feedback.depmap.access import AccessWatch
from pytest_feedback.depmap.children import ChildMeasurement
from pytest_feedback.depmap.dist_use import DistUse
from pytest_feedback.depmap.imports import ImportTracker
from pytest_feedback.depmap.payload import MapPayload

#: Files and directories never part of "the project's own code".
DEFAULT_OMIT = (
    "*/site-packages/*",
    "*/dist-packages/*",
    "*/.venv/*",
    "*/venv/*",
    "*/.tox/*",
    "*/.nox/*",
    "*/.git/*",
    "*/__pycache__/*",
    "*/.pytest_cache/*",
    "*/.pytest-feedback/*",
    "*/node_modules/*",
    # Tools' own caches change on their own: not inputs of a test.
    "*/.hypothesis/*",
    "*/.mypy_cache/*",
    "*/.ruff_cache/*",
    "*/.cache/*",
    "*/htmlcov/*",
    "*/.coverage",
    "*/.coverage.*",
    "*/.testmondata*",
)
_REFUSED = (
    "feedback: warning: --feedback-cov cannot map tests while another coverage measurement"
    " (pytest-cov --cov) runs in xdist workers; no map this run: map without --cov or without -n"
)
_JOINED = (
    "feedback: --feedback-cov adds per-test contexts to the coverage measurement already running"
    " (pytest-cov?); the map holds only the files that measurement includes"
)
_QUIET = [
    "no-data-collected",
    "module-not-measured",
    "module-not-imported",
    "module-not-python",
    "include-ignored",
    "couldnt-parse",
    "no-ctracer",
    "already-imported",
    "no-sysmon",
    "dynamic-conflict",
    # Contexts are complete with core=sysmon here: `Measurement.switch` restarts the events.
    "no-sysmon-context",
]
#: sys.monitoring (Python 3.12+) reports each line once until events are restarted: a tracer
#: that costs nothing measurable once a line is seen, where sys.settrace slows down all code.
_SYSMON = sys.version_info >= (3, 12)


@dataclasses.dataclass(frozen=True)
class CovOptions:
    rootpath: Path
    include: tuple[Path, ...]
    omit: tuple[str, ...]

    @classmethod
    def from_ini(cls, rootpath: Path, include: Sequence[str], omit: Sequence[str]) -> CovOptions:
        roots = tuple((rootpath / p).resolve() for p in include) or (rootpath,)
        return cls(rootpath, roots, (*DEFAULT_OMIT, *omit))


class Measurement:
    """Measures one process: the contexts its code runs in, what they read, start and import."""

    def __init__(self, options: CovOptions) -> None:
        self.options = options
        self._root = str(options.rootpath)
        self._root_prefix = self._root.rstrip(os.sep) + os.sep
        self._include = tuple(str(p).rstrip(os.sep) + os.sep for p in options.include)
        self._paths: dict[str, Optional[str]] = {}
        self._cov: Any = None  # the measurement our contexts go to
        self._mine: Any = None  # the one we started, if we did
        self._hands_off = False
        self._refused = False
        self._ran: list[str] = []  # labels of the tests this process ran
        self._paused = False
        self._in_worker = "PYTEST_XDIST_WORKER" in os.environ
        self._extra: list[Any] = []  # measurements we joined or that joined us
        self._label = "c:"
        self._stack: list[str] = []
        self._active = False
        self._access = AccessWatch(self._root_prefix, options.omit, lambda: self._label)
        self._dists: Optional[DistUse] = None
        self._imports: dict[str, set[str]] = {}
        self._edges: set[tuple[str, str]] = set()
        self._children = ChildMeasurement(
            self._include_patterns(),
            options.omit,
            _QUIET,
            core="sysmon" if _choose_sysmon() else None,
        )
        #: sys.monitoring.restart_events while the measurement we switch uses core=sysmon.
        self._restart: Optional[Callable[[], None]] = None
        self.notes: list[str] = []
        self.payload: Optional[MapPayload] = None

    @property
    def active(self) -> bool:
        return self._active

    @property
    def label(self) -> str:
        """The context the measured code runs in now."""
        return self._label

    # -- paths -------------------------------------------------------------------------------

    def project_path(self, filename: str) -> Optional[str]:
        """``filename`` relative to the rootdir when it is the project's own, else None."""
        try:
            return self._paths[filename]
        except KeyError:
            pass
        rel: Optional[str] = None
        absolute = filename if os.path.isabs(filename) else os.path.abspath(filename)
        if absolute.startswith(self._root_prefix) and absolute.startswith(self._include):
            candidate = absolute[len(self._root_prefix) :].replace(os.sep, "/")
            if not any(fnmatch.fnmatch(absolute, pattern) for pattern in self.options.omit):
                rel = candidate
        self._paths[filename] = rel
        return rel

    # -- measuring ---------------------------------------------------------------------------

    def start(self, *, maybe_controller: bool = False) -> None:
        """Start measuring (or join the coverage.py measurement already running).

        ``maybe_controller``: this process may turn out to run no tests (an xdist controller);
        then a measurement that is not ours is left untouched until `activate` (switching its
        context would write its data file early, and pytest-cov's combine would delete it).
        """
        import coverage

        if coverage.Coverage.current() is not None and maybe_controller:
            self._hands_off = True
        if coverage.Coverage.current() is not None and self._in_worker:
            self._refuse()
        if coverage.Coverage.current() is None:
            cov = coverage.Coverage(
                data_file=None,
                config_file=False,
                # include, not source: coverage.py would walk the source trees for unexecuted
                # files at the end, which the map does not need.
                include=self._include_patterns(),
                omit=list(self.options.omit),
                messages=False,
            )
            cov.set_option("run:disable_warnings", _QUIET)
            if _choose_sysmon():
                with contextlib.suppress(Exception):  # a coverage.py without the setting
                    cov.set_option("run:core", "sysmon")
            cov.start()
            self._cov = self._mine = cov
            self._restart = coverage_internals.sysmon_restart(cov)
        self._active = True
        self._dists = DistUse()
        self.switch("c:")
        self._children.start()
        self._access.listen()
        sys.meta_path.insert(0, ImportTracker(self))

    def _include_patterns(self) -> list[str]:
        return [os.path.join(str(p), "*") for p in self.options.include]

    def _follow(self) -> None:
        """Use the measurement that is running now: ours, or one started before or after us.

        coverage.py pauses a measurement while a later one runs (pytest-cov starting in a
        worker); contexts must go to whichever is collecting.
        """
        import coverage

        current = coverage.Coverage.current()
        if current is None or current is self._cov:
            return
        if current is not self._mine and self._in_worker:
            self._refuse()
            return
        if self._cov is not None and all(c is not self._cov for c in self._extra):
            self._extra.append(self._cov)
        self._cov = current
        self._restart = coverage_internals.sysmon_restart(current)
        if current is not self._mine and _JOINED not in self.notes:
            self.notes.append(_JOINED)

    def _refuse(self) -> None:
        """pytest-cov in an xdist worker: touching its data early loses it (every worker's
        pytest-cov erases the others' data files when it starts), so map nothing and say so."""
        self._hands_off = self._refused = True
        if _REFUSED not in self.notes:
            self.notes.append(_REFUSED)

    def activate(self) -> None:
        """This process runs tests: contexts may now go to any measurement."""
        if self._hands_off and not self._refused:
            self._hands_off = False
            self.switch(self._label)

    def switch(self, label: str) -> None:
        """The code that runs from now on belongs to ``label`` (``t:``, ``c:`` or ``i:``)."""
        if self._dists is not None:
            self._dists.note(self._label)
        self._label = label
        if self._hands_off:
            return
        self._follow()
        with contextlib.suppress(Exception):
            self._cov.switch_context(label)
            if self._restart is not None:
                # sys.monitoring disabled each line after its first report; the new context
                # must see the lines again.
                self._restart()

    def pause_tracing(self) -> bool:
        """Stop tracing for a while (a library import); True when it did.

        Only our own measurement, only while it is the running one and traces a single thread
        (coverage.py's pause/resume re-arm tracers in the calling thread).
        """
        if self._paused or self._mine is None or self._cov is not self._mine:
            return False
        if self._restart is not None:
            return False  # sys.monitoring: code that is not measured costs nothing already
        self._paused = coverage_internals.pause_tracing(self._mine)
        return self._paused

    def resume_tracing(self) -> bool:
        """Undo `pause_tracing`; True when tracing was paused."""
        if not self._paused:
            return False
        self._paused = False
        coverage_internals.resume_tracing(self._mine)
        return True

    def enter_import(self, path: str) -> None:
        if not self._active:
            return
        outer = self._label
        if outer.startswith("i:"):
            self._edges.add((outer[2:], path))
        else:
            self._imports.setdefault(outer, set()).add(path)
        self._stack.append(outer)
        self.switch("i:" + path)

    def missing_import(self, name: str) -> None:
        """An import of the top-level module ``name`` found nothing."""
        if self._active and self._dists is not None:
            self._dists.missed(self._label, name)

    def leave_import(self) -> None:
        if self._active and self._stack:
            self.switch(self._stack.pop())

    def run_test(self, label: str) -> AbstractContextManager[None]:
        """Switch to a test's context; the child processes started in the returned block are
        measured in it too. The per-test hot path: one switch, one environment variable."""
        self._ran.append(label)
        # No switch back afterwards: nothing of the project runs between two tests, and each
        # switch costs coverage.py a flush of its data.
        self.switch(label)
        return self._children.around(label)

    # -- the end -------------------------------------------------------------------------------

    def finish(self) -> None:
        """Stop measuring and turn the data into `payload` (idempotent; never raises)."""
        if not self._active:
            return
        self._active = False
        try:
            self.payload = self._collect()
        except Exception as exc:  # our trouble must not break the run
            self.payload = MapPayload(
                notes=[f"feedback: warning: no coverage map this run ({type(exc).__name__}: {exc})"]
            )
        finally:
            self.close()

    def close(self) -> None:
        """Stop measuring and watching imports, remove the subprocess data (the audit hook
        goes quiet). Idempotent."""
        self._active = False
        self._access.stop()
        self.resume_tracing()
        if self._mine is not None:
            with contextlib.suppress(Exception):
                self._mine.stop()
        sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, "_probe", None) is not self]
        self._children.cleanup()

    def discard(self) -> None:
        """This process runs no tests (an xdist controller): stop without collecting."""
        if self._mine is not None:
            with contextlib.suppress(Exception):
                self._mine.stop()
        self.close()

    def _collect(self) -> MapPayload:
        payload = MapPayload(notes=list(self.notes))
        if self._refused:
            return payload
        sources = [self._cov, *(c for c in self._extra if c is not self._cov)]
        if self._mine is not None:
            with contextlib.suppress(Exception):
                self._mine.stop()
        for cov in sources:
            self._add_data(payload, cov.get_data(), child=False)
        measured: dict[str, int] = {}
        from coverage import CoverageData

        for name in self._children.data_files():
            data = CoverageData(name)
            with contextlib.suppress(Exception):
                data.read()
                for label in self._add_data(payload, data, child=True):
                    measured[label] = measured.get(label, 0) + 1
        if self._cov is self._mine:
            # A test that ran no project line (skipped in set-up) still has a map: its own file.
            for label in self._ran:
                payload.lines.setdefault(label, {})
        for label, paths in self._imports.items():
            files = payload.lines.setdefault(label, {})
            for path in paths:
                files.setdefault(path, b"")
        spawns = self._access.spawns
        payload.reads = {label: sorted(paths) for label, paths in self._access.reads.items()}
        for label in {*spawns, *measured}:
            payload.spawns[label] = [spawns.get(label, 0), measured.get(label, 0)]
        payload.edges = [list(edge) for edge in sorted(self._edges)]
        self._add_dists(payload)
        for name, module in list(sys.modules.items()):
            filename = getattr(module, "__file__", None)
            if isinstance(filename, str):
                rel = self.project_path(filename)
                if rel is not None and rel.endswith(".py"):
                    payload.modules.setdefault(rel, name)
        return payload

    def _add_dists(self, payload: MapPayload) -> None:
        """The installed distributions each context used, and the environment's facts
        (`dist_use`); trouble here costs the dependency-upgrade rule, never the map."""
        use = self._dists
        if use is None:
            return
        use.note(self._label)
        self._access.stop()  # reading the distributions' metadata is no test's
        try:
            from pytest_feedback.depmap.distributions import DistIndex

            index = DistIndex()
            used, facts = use.resolve(index, self.project_path, self._access.outside)
            hooks = index.hooks([*sys.meta_path, *sys.path_hooks])
        except Exception as exc:
            payload.notes.append(
                f"feedback: warning: the distributions tests use were not recorded ({exc!r})"
            )
            return
        payload.dists = {label: sorted(names) for label, names in used.items()}
        payload.dist_facts = index.facts(facts.pop("early"), hooks)
        payload.dist_facts.update({kind: sorted(names) for kind, names in facts.items()})
        seen = {d for names in used.values() for d in names if ":" not in d}
        payload.dist_facts["seen"] = sorted(seen)

    def _add_data(self, payload: MapPayload, data: Any, *, child: bool) -> set[str]:
        """Add one coverage.py data set's lines per context; returns the contexts seen."""
        from coverage.numbits import numbits_union

        labels: set[str] = set()
        for filename, label, bits in coverage_internals.numbits_by_context(data):
            if not label.startswith(("t:", "c:", "i:")):
                continue  # someone else's contexts (pytest-cov's own, or none)
            rel = self.project_path(filename)
            if rel is None:
                continue
            labels.add(label)
            files = payload.lines.setdefault(label, {})
            old = files.get(rel)
            files[rel] = numbits_union(old, bits) if old else bits
        return labels


def _choose_sysmon() -> bool:
    """Ask coverage.py for its sys.monitoring core: on 3.12+, unless the user set COVERAGE_CORE."""
    return _SYSMON and not os.environ.get("COVERAGE_CORE")
