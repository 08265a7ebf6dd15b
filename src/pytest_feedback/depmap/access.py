"""What a measured context reads and starts, seen through a Python audit hook (``--feedback-cov``).

Data files, templates and fixture files opened for reading inside the rootdir are dependencies of
the test (or collector, or import) that opened them; processes that may run project code are
counted, so that a test whose child was not measured is known to depend on everything.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import sys
from collections.abc import Iterator
from typing import Any, Callable, Optional

#: Audit events that start a process; "os.fork" children are never measured.
SPAWN_EVENTS = frozenset(
    {"subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.fork"}
)
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "fish", "cmd", "cmd.exe", "powershell"})


class AccessWatch:
    """Files read and processes started, per context label, while `listen` is on."""

    def __init__(self, root_prefix: str, omit: tuple[str, ...], label: Callable[[], str]) -> None:
        self._root_prefix = root_prefix
        self._omit = omit
        self._label = label
        self.reads: dict[str, set[str]] = {}
        self.spawns: dict[str, int] = {}
        #: label -> absolute paths opened in the site directories (installed distributions' data)
        self.outside: dict[str, set[str]] = {}
        self._sites = tuple(
            os.path.join(p, "")
            for p in sys.path
            if p and os.path.basename(p) in ("site-packages", "dist-packages")
        )

    def listen(self) -> None:
        _listen(self)

    def stop(self) -> None:
        """Go quiet (the process's hook stays, audit hooks cannot be removed). Idempotent."""
        _unlisten(self)

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        try:
            if event == "open":
                self._opened(args)
            elif event in SPAWN_EVENTS:
                self._spawned(event, args)
        except Exception:  # an audit hook's exception would fail the user's open()
            return

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
        if self._sites and absolute.startswith(self._sites):
            self.outside.setdefault(self._label(), set()).add(absolute)
            return
        if not absolute.startswith(self._root_prefix):
            return
        absolute = os.path.normpath(absolute)
        if any(fnmatch.fnmatch(absolute, pattern) for pattern in self._omit):
            return
        rel = absolute[len(self._root_prefix) :].replace(os.sep, "/")
        self.reads.setdefault(self._label(), set()).add(rel)

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
            label = self._label()
            self.spawns[label] = self.spawns.get(label, 0) + 1

    def _may_run_project_code(self, program: str, event: str) -> bool:
        """Python, a shell, or a program inside the project or the environment: maybe."""
        if event == "os.fork":
            return True
        name = os.path.basename(program.split()[0] if program.strip() else program).lower()
        if name.startswith(("python", "pypy")) or name in _SHELLS or not name:
            return True
        resolved = program if os.path.isabs(program) else (shutil.which(program) or "")
        return bool(resolved) and resolved.startswith((self._root_prefix, sys.prefix))


#: The watch the process's audit hook reports to. Audit hooks cannot be removed, so one hook is
#: added per process, the first time, and is a single global lookup while nothing records.
_listener: Optional[AccessWatch] = None
_hook_added = False


def _audit_hook(event: str, args: tuple[Any, ...]) -> None:
    watch = _listener
    if watch is not None:
        watch.audit(event, args)


@contextlib.contextmanager
def unwatched() -> Iterator[None]:
    """Files opened inside are nobody's dependency: pytest-feedback's own reads (the selection
    deciding while pytest collects a package would make every test in it depend on them)."""
    global _listener
    watch, _listener = _listener, None
    try:
        yield
    finally:
        if _listener is None:
            _listener = watch


def _listen(watch: AccessWatch) -> None:
    global _listener, _hook_added
    _listener = watch
    if not _hook_added:
        sys.addaudithook(_audit_hook)
        _hook_added = True


def _unlisten(watch: AccessWatch) -> None:
    global _listener
    if _listener is watch:
        _listener = None
