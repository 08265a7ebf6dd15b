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

At the end of the test loop the probe turns the data into a plain `MapPayload` (picklable, so an
xdist worker ships it through ``workeroutput``); the controller's `MapCollector` writes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import os
import shutil
import sys
import tempfile
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

#: Key in ``config.workeroutput`` that carries a worker's payload to the controller.
WORKEROUTPUT_KEY = "feedback_cov"
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
)
#: Audit events that start a process; "os.fork" children are never measured.
SPAWN_EVENTS = frozenset(
    {"subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.fork"}
)
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "fish", "cmd", "cmd.exe", "powershell"})
_SUBPROCESS_DATA = ".feedback-sub"
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
]


@dataclasses.dataclass
class MapPayload:
    """What one process measured, in plain types (execnet can ship dicts, lists, bytes)."""

    #: context label -> path -> coverage numbits of the executed lines ('' numbits: imported only)
    lines: dict[str, dict[str, bytes]] = dataclasses.field(default_factory=dict)
    #: context label -> paths read
    reads: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: context label -> [processes started that may run project code, of them measured]
    spawns: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    #: project path -> dotted module name, for resolving imports
    modules: dict[str, str] = dataclasses.field(default_factory=dict)
    #: [importer path, imported path] seen while importing
    edges: list[list[str]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_plain(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> MapPayload:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names and v is not None})

    def merge(self, other: MapPayload) -> None:
        """Fold another process's payload in (xdist workers collect the same modules)."""
        from coverage.numbits import numbits_union

        for label, files in other.lines.items():
            mine = self.lines.setdefault(label, {})
            for path, bits in files.items():
                mine[path] = numbits_union(mine[path], bits) if path in mine else bits
        for label, paths in other.reads.items():
            self.reads[label] = sorted({*self.reads.get(label, ()), *paths})
        for label, (spawned, measured) in other.spawns.items():
            old = self.spawns.get(label, [0, 0])
            self.spawns[label] = [old[0] + spawned, old[1] + measured]
        self.modules.update(other.modules)
        self.edges.extend(other.edges)
        self.notes.extend(n for n in other.notes if n not in self.notes)


@dataclasses.dataclass(frozen=True)
class CovOptions:
    rootpath: Path
    include: tuple[Path, ...]
    omit: tuple[str, ...]

    @classmethod
    def from_ini(cls, rootpath: Path, include: Sequence[str], omit: Sequence[str]) -> CovOptions:
        roots = tuple((rootpath / p).resolve() for p in include) or (rootpath,)
        return cls(rootpath, roots, (*DEFAULT_OMIT, *omit))


class MapProbe:
    """Measures one process; a pytest plugin registered only with ``--feedback-cov``."""

    def __init__(self, options: CovOptions) -> None:
        self.options = options
        self._root = str(options.rootpath)
        self._root_prefix = self._root.rstrip(os.sep) + os.sep
        self._include = tuple(str(p).rstrip(os.sep) + os.sep for p in options.include)
        self._paths: dict[str, Optional[str]] = {}
        self._cov: Any = None
        self._owned = False
        self._extra: list[Any] = []  # measurements we joined or that joined us
        self._label = "c:"
        self._stack: list[str] = []
        self._active = False
        self._reads: dict[str, set[str]] = {}
        self._spawns: dict[str, int] = {}
        self._imports: dict[str, set[str]] = {}
        self._edges: set[tuple[str, str]] = set()
        self._subdir: Optional[str] = None
        self._child_env: Optional[Callable[[str], str]] = None
        self.notes: list[str] = []
        self.payload: Optional[MapPayload] = None

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

    def start(self) -> None:
        """Start measuring (or join the coverage.py measurement already running)."""
        import coverage

        running = coverage.Coverage.current()
        if running is not None:
            self._adopt(running)
        else:
            cov = coverage.Coverage(
                data_file=None,
                config_file=False,
                source=[str(p) for p in self.options.include],
                omit=list(self.options.omit),
                messages=False,
            )
            cov.set_option("run:disable_warnings", _QUIET)
            cov.start()
            self._cov, self._owned = cov, True
        self._active = True
        self._switch("c:")
        self._start_subprocess_measurement()
        sys.addaudithook(self._audit)
        sys.meta_path.insert(0, _ImportTracker(self))

    def _adopt(self, cov: Any) -> None:
        self._cov, self._owned = cov, False
        note = (
            "feedback: --feedback-cov adds per-test contexts to the coverage measurement already "
            "running (pytest-cov?); the map holds only the files that measurement includes"
        )
        if note not in self.notes:
            self.notes.append(note)

    def _check_current(self) -> None:
        """Someone (pytest-cov in a worker) may have started coverage after us: follow it."""
        import coverage

        current = coverage.Coverage.current()
        if current is not None and current is not self._cov:
            self._extra.append(self._cov)
            self._adopt(current)
            self._switch(self._label)

    def _switch(self, label: str) -> None:
        self._label = label
        with contextlib.suppress(Exception):
            self._cov.switch_context(label)

    def enter_import(self, path: str) -> None:
        if not self._active:
            return
        outer = self._label
        if outer.startswith("i:"):
            self._edges.add((outer[2:], path))
        else:
            self._imports.setdefault(outer, set()).add(path)
        self._stack.append(outer)
        self._switch("i:" + path)

    def leave_import(self) -> None:
        if self._active and self._stack:
            self._switch(self._stack.pop())

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        if not self._active:
            return
        if event == "open":
            self._opened(args)
        elif event in SPAWN_EVENTS:
            self._spawned(event, args)

    def _opened(self, args: tuple[Any, ...]) -> None:
        path, mode = args[0], args[1]
        if isinstance(mode, str):
            if "r" not in mode and "+" not in mode:
                return
        elif mode is None and len(args) > 2 and isinstance(args[2], int) and args[2] & os.O_WRONLY:
            return
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        elif not isinstance(path, str):
            path = getattr(path, "__fspath__", lambda: None)()
            if not isinstance(path, str):
                return
        if path.endswith((".py", ".pyc", ".pyo", ".pth")):
            return
        absolute = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
        if not absolute.startswith(self._root_prefix):
            return
        absolute = os.path.normpath(absolute)
        if any(fnmatch.fnmatch(absolute, pattern) for pattern in self.options.omit):
            return
        rel = absolute[len(self._root_prefix) :].replace(os.sep, "/")
        self._reads.setdefault(self._label, set()).add(rel)

    def _spawned(self, event: str, args: tuple[Any, ...]) -> None:
        program: Any
        if event == "os.fork":
            program = sys.executable
        elif event == "os.system":
            program = "sh"
        elif event == "os.spawn":
            program = args[1] if len(args) > 1 else ""
        else:
            program = args[0] if args else ""
            if program is None and event == "subprocess.Popen" and len(args) > 1:
                argv = args[1]
                program = argv if isinstance(argv, (str, bytes)) else (argv[0] if argv else "")
        if isinstance(program, bytes):
            program = os.fsdecode(program)
        program = str(program or "")
        if self._may_run_project_code(program, event):
            self._spawns[self._label] = self._spawns.get(self._label, 0) + 1

    def _may_run_project_code(self, program: str, event: str) -> bool:
        """Python, a shell, or a program inside the project or the environment: maybe."""
        if event == "os.fork":
            return True
        name = os.path.basename(program.split()[0] if program.strip() else program).lower()
        if name.startswith(("python", "pypy")) or name in _SHELLS or not name:
            return True
        resolved = program if os.path.isabs(program) else (shutil.which(program) or "")
        return bool(resolved) and resolved.startswith((self._root_prefix, sys.prefix))

    # -- subprocesses ------------------------------------------------------------------------

    def _start_subprocess_measurement(self) -> None:
        try:
            from coverage.config import CoverageConfig
        except ImportError:  # pragma: no cover - coverage>=7.10 is a dependency
            return
        self._subdir = tempfile.mkdtemp(prefix="feedback-cov-")
        data_file = os.path.join(self._subdir, _SUBPROCESS_DATA)
        source = [str(p) for p in self.options.include]
        omit = list(self.options.omit)

        def serialized(label: str) -> str:
            config = CoverageConfig()
            config.data_file = data_file
            config.parallel = True
            config.source = source
            config.run_omit = omit
            config.context = label
            config.patch = ["subprocess"]
            config.disable_warnings = list(_QUIET)
            config.config_file = "feedback"
            return config.serialize()

        self._child_env = serialized

    @contextlib.contextmanager
    def _child_measurement(self, label: str) -> Generator[None, None, None]:
        if self._child_env is None:
            yield
            return
        previous = os.environ.get("COVERAGE_PROCESS_CONFIG")
        os.environ["COVERAGE_PROCESS_CONFIG"] = self._child_env(label)
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("COVERAGE_PROCESS_CONFIG", None)
            else:
                os.environ["COVERAGE_PROCESS_CONFIG"] = previous

    # -- pytest hooks ------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, Any]:
        outer = self._label
        self._switch("c:" + _collector_id(collector.nodeid))
        try:
            return (yield)
        finally:
            self._switch(outer)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        self._check_current()
        label = "t:" + item.nodeid
        self._switch(label)
        try:
            with self._child_measurement(label):
                return (yield)
        finally:
            self._switch("c:")

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        try:
            return (yield)
        finally:
            self.finish()
            workeroutput = getattr(session.config, "workeroutput", None)
            if workeroutput is not None and self.payload is not None:
                workeroutput[WORKEROUTPUT_KEY] = self.payload.to_plain()

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
        """Stop watching imports and remove the subprocess data (the audit hook goes quiet)."""
        self._active = False
        sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, "_probe", None) is not self]
        if self._subdir:
            shutil.rmtree(self._subdir, ignore_errors=True)
            self._subdir = None

    def discard(self) -> None:
        """This process runs no tests (an xdist controller): stop without collecting."""
        if self._owned:
            with contextlib.suppress(Exception):
                self._cov.stop()
        self.close()

    def _collect(self) -> MapPayload:
        payload = MapPayload(notes=list(self.notes))
        sources = [self._cov, *self._extra]
        if self._owned:
            with contextlib.suppress(Exception):
                self._cov.stop()
        for cov in sources:
            self._add_data(payload, cov.get_data(), child=False)
        measured: dict[str, int] = {}
        if self._subdir:
            from coverage import CoverageData

            for name in sorted(os.listdir(self._subdir)):
                if not name.startswith(_SUBPROCESS_DATA + "."):
                    continue
                data = CoverageData(os.path.join(self._subdir, name))
                with contextlib.suppress(Exception):
                    data.read()
                    for label in self._add_data(payload, data, child=True):
                        measured[label] = measured.get(label, 0) + 1
        for label, paths in self._imports.items():
            files = payload.lines.setdefault(label, {})
            for path in paths:
                files.setdefault(path, b"")
        payload.reads = {label: sorted(paths) for label, paths in self._reads.items()}
        for label in {*self._spawns, *measured}:
            payload.spawns[label] = [self._spawns.get(label, 0), measured.get(label, 0)]
        payload.edges = [list(edge) for edge in sorted(self._edges)]
        for name, module in list(sys.modules.items()):
            filename = getattr(module, "__file__", None)
            if isinstance(filename, str):
                rel = self.project_path(filename)
                if rel is not None and rel.endswith(".py"):
                    payload.modules.setdefault(rel, name)
        return payload

    def _add_data(self, payload: MapPayload, data: Any, *, child: bool) -> set[str]:
        from coverage.numbits import nums_to_numbits

        labels: set[str] = set()
        for filename in data.measured_files():
            rel = self.project_path(filename)
            if rel is None:
                continue
            per_label: dict[str, list[int]] = {}
            for line, contexts in data.contexts_by_lineno(filename).items():
                for context in contexts:
                    per_label.setdefault(context, []).append(line)
            for label, lines in per_label.items():
                if not label.startswith(("t:", "c:", "i:")):
                    continue  # someone else's contexts (pytest-cov's own, or none)
                labels.add(label)
                files = payload.lines.setdefault(label, {})
                bits = nums_to_numbits(lines)
                if files.get(rel):
                    from coverage.numbits import numbits_union

                    bits = numbits_union(files[rel], bits)
                files[rel] = bits
        return labels


def _collector_id(nodeid: str) -> str:
    return "" if nodeid == "." else nodeid


class _ImportTracker:
    """A meta path finder that only watches: project modules' imports get their own context."""

    def __init__(self, probe: MapProbe) -> None:
        self._probe = probe
        self._finding = False

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        probe = self._probe
        if self._finding or not probe._active:
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
            return None
        origin, loader = getattr(spec, "origin", None), getattr(spec, "loader", None)
        if isinstance(origin, str) and loader is not None and probe.project_path(origin):
            _watch(loader, probe)
        return spec

    def invalidate_caches(self) -> None:
        pass


def _watch(loader: Any, probe: MapProbe) -> None:
    """Wrap ``loader.exec_module`` so that a project module's execution is its own context."""
    if getattr(loader, "_feedback_watched", False):
        return
    original = loader.exec_module

    def exec_module(module: Any) -> Any:
        spec = getattr(module, "__spec__", None)
        origin = getattr(spec, "origin", None)
        rel = probe.project_path(origin) if isinstance(origin, str) else None
        if rel is None or not probe._active:
            return original(module)
        probe.enter_import(rel)
        try:
            return original(module)
        finally:
            probe.leave_import()

    try:
        loader.exec_module = exec_module
        loader._feedback_watched = True
    except (AttributeError, TypeError):
        pass


class MapCollector:
    """In the process that writes history: gathers the payloads and writes the map at the end."""

    def __init__(self, probe: Optional[MapProbe], write: Callable[[MapPayload], list[str]]) -> None:
        self._probe = probe
        self._write = write
        self.payload = MapPayload()
        self._workers = 0
        #: What the terminal summary says: the outcome and any notes.
        self.lines: list[str] = []

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        data = getattr(node, "workeroutput", {}).get(WORKEROUTPUT_KEY)
        if data:
            self._workers += 1
            self.payload.merge(MapPayload.from_plain(data))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        if self._probe is not None:
            self._probe.finish()
            if self._probe.payload is not None:
                self.payload.merge(self._probe.payload)
        if not self.payload.lines and not self.payload.notes:
            self.lines = ["feedback: warning: --feedback-cov measured nothing this run"]
            return
        self.lines = self._write(self.payload)
