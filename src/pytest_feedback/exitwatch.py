"""How long a process takes to end once pytest is done, measured from outside it.

After pytest's last hook a process still takes time that its user waits for: the terminal
summary's last lines, atexit handlers, the interpreter freeing a large heap (sqlglot: 0.6 s after
the summary). Nothing inside the process can time its own end, so a small watcher process waits
for it to exit and stores the seconds in the run's history row (``runs.exit_s``), where the
budget's pace counts them (`estimates.budget_pace`).

Only recorded serial budget runs start a watcher, and only from a process pytest's command line
started (in a process that goes on, such as ``pytest.main`` in a script, the end would never
come). POSIX only: the watcher is spawned with ``posix_spawn`` (no `subprocess.Popen` object left
behind to warn at exit), and Windows has no harmless way to ask whether a process is alive.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

    from .records import RunRecord

#: Longest the watcher waits for the process to end; a process that takes longer records nothing.
WAIT_LIMIT_S = 120.0

# argv: pid, history path, run uuid, Unix time the run's record ended. Waits for the pid to end
# (a pidfd on Linux, else polling), then stores the seconds since that time; silent on failure.
_WATCHER = """
import os, sys, time, sqlite3
pid, db, uuid, since, limit = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4]), \
    float(sys.argv[5])
deadline = time.time() + limit
try:
    import select
    fd = os.pidfd_open(pid)
    ended = bool(select.select([fd], [], [], limit)[0])
except ProcessLookupError:
    ended = True
except (AttributeError, OSError):
    ended = False
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            ended = True
            break
        except OSError:
            pass
        time.sleep(0.005)
gone = time.time()
if ended:
    try:
        con = sqlite3.connect(db, timeout=10)
        with con:
            con.execute("UPDATE runs SET exit_s = ? WHERE uuid = ?", (max(0.0, gone - since), uuid))
        con.close()
    except Exception:
        pass
"""


def watch_exit(db_path: Path, uuid: str, since: float) -> bool:
    """Start a watcher that stores in run ``uuid``'s row the seconds from ``since`` (a
    `time.time` value) to this process's exit. False when it cannot be started here."""
    spawn = getattr(os, "posix_spawn", None)
    if spawn is None or sys.platform == "win32" or not sys.executable:
        return False
    devnull = getattr(os, "devnull", "/dev/null")
    args = [
        sys.executable,
        "-I",
        "-S",
        "-c",
        _WATCHER,
        str(os.getpid()),
        str(db_path),
        uuid,
        repr(since),
        repr(WAIT_LIMIT_S),
    ]
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0),
    ]
    try:
        # Its own session: a Ctrl-C meant for pytest's terminal does not reach it.
        spawn(sys.executable, args, dict(os.environ), file_actions=actions, setsid=True)
    except (OSError, TypeError, NotImplementedError):
        return False
    return True


def watch_budget_run(config: pytest.Config, db_path: Path, run: RunRecord, written: bool) -> bool:
    """Time the exit of a recorded serial budget run's process (see the module's text)."""
    if not written or run.planned_s is None:
        return False
    from .budget_run import from_command_line

    return from_command_line(config) and watch_exit(db_path, run.uuid, run.finished_at)
