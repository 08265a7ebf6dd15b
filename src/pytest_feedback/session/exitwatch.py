"""How long a process takes to end once pytest is done, measured from outside it.

After pytest's last hook a process still takes time that its user waits for: the terminal
summary's last lines, atexit handlers, the interpreter freeing a large heap (sqlglot: 0.6 s after
the summary). Nothing inside the process can time its own end, so a small watcher process waits
for it to exit and stores the seconds in the run's history row (``runs.exit_s``); later budgets
keep their median free (`Estimates.exit_s`).

Only recorded serial budget runs start a watcher, and only in a process pytest's command line
started (`session.budget.from_command_line`: after ``pytest.main`` in a script, the script goes on).
POSIX only: the watcher is spawned with ``posix_spawn`` (no `subprocess.Popen` object left behind
to warn at exit), as the process's child, which sees its end as a change of parent.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

    from pytest_feedback.history.records import RunRecord

#: Longest the watcher waits for the process to end; a process that takes longer records nothing.
WAIT_LIMIT_S = 30.0

# argv: history path, run uuid, Unix time the run's record ended, wait limit. The watcher is the
# process's child: the process has ended when the watcher's parent changes (it is re-parented),
# which neither PID reuse nor an unreaped zombie can fake. Then it stores the seconds since that
# time in an existing history (never creating one); silent on any failure.
_WATCHER = """
import os, sys, time
db, uuid, since, limit = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
parent, deadline = os.getppid(), time.time() + limit
while os.getppid() == parent and time.time() < deadline:
    time.sleep(0.005)
gone = time.time()
if os.getppid() != parent:
    try:
        import sqlite3, urllib.parse
        url = "file:" + urllib.parse.quote(db) + "?mode=rw"
        con = sqlite3.connect(url, uri=True, timeout=10)
        with con:
            con.execute("UPDATE runs SET exit_s = ? WHERE uuid = ?", (max(0.0, gone - since), uuid))
        con.close()
    except Exception:
        pass
"""


def _inherited_fds() -> list[int]:
    """Descriptors above stderr a spawned process would inherit (a jobserver, a status pipe)."""
    try:
        candidates = [int(name) for name in os.listdir("/proc/self/fd")]
    except (OSError, ValueError):
        candidates = list(range(3, 256))
    out = []
    for fd in candidates:
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    out.append(fd)
            except OSError:
                pass
    return out


def watch_exit(db_path: Path, uuid: str, since: float) -> bool:
    """Start a watcher that stores in run ``uuid``'s row the seconds from ``since`` (a
    `time.time` value) to this process's exit. False when it cannot be started here."""
    spawn = getattr(os, "posix_spawn", None)
    if spawn is None or sys.platform == "win32" or not sys.executable:
        return False
    if getattr(sys, "frozen", False):  # an embedded interpreter does not take Python's options
        return False
    devnull = getattr(os, "devnull", "/dev/null")
    args = [
        sys.executable,
        "-I",
        "-S",
        "-c",
        _WATCHER,
        str(db_path),
        uuid,
        repr(since),
        repr(WAIT_LIMIT_S),
    ]
    actions: list[tuple[object, ...]] = [
        (os.POSIX_SPAWN_OPEN, 0, devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0),
    ]
    actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited_fds()]
    # Its own session: a Ctrl-C meant for pytest's terminal does not reach it.
    spawn(sys.executable, args, dict(os.environ), file_actions=actions, setsid=True)
    return True


def watch_budget_run(config: pytest.Config, db_path: Path, run: RunRecord, written: bool) -> bool:
    """Time the exit of a recorded serial budget run's process (see the module's text).

    Never raises: a run that cannot be timed is recorded without its exit.
    """
    if not written or run.planned_s is None:
        return False
    try:
        from pytest_feedback.session.budget import from_command_line

        return from_command_line(config) and watch_exit(db_path, run.uuid, run.finished_at)
    except Exception:
        return False
