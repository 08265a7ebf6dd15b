"""The fault table of the history file (docs/reliability.md): what goes wrong, what we do.

Each fault is one `Fault` in `FAULTS`; every fault is checked three ways: a passing run and a
failing run go on with their own exit code and exactly one warning line, and the command line
either reads the file or exits 1 with one line that names the file and what to do. To extend
the table for a new feature, add a `Fault` (or a test below for faults that need processes).
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import (
    AbstractContextManager,
    contextmanager,
    nullcontext,
    redirect_stderr,
    redirect_stdout,
)
from pathlib import Path
from typing import Callable, Optional

import pytest

from pytest_feedback import cli
from pytest_feedback.history import connection as sqlitedb
from pytest_feedback.history.records import RunRecord, TestRecord
from pytest_feedback.history.store import Store

WARNING = "feedback: warning: "
PASSING = "def test_ok(): pass\n"
FAILING = "def test_ok(): pass\ndef test_bad(): assert False\n"


def make_history(path: Path, runs: int = 3) -> Path:
    """A real history with a few runs, written by the current code."""
    with Store(path) as store:
        for i in range(runs):
            run = RunRecord(uuid=f"run-{i}", started_at=1.7e9 + i, finished_at=1.7e9 + i + 1)
            for n in range(40):
                run.tests[f"tests/test_m.py::test_{n}"] = TestRecord(
                    f"tests/test_m.py::test_{n}", call_s=0.01 * n
                )
            store.record_run(run)
    return path


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` really read-only for this process, or skip saying why it cannot be done.

    chmod is enough for an ordinary user. root ignores file modes, so there the file is made
    immutable with ``chattr +i`` (needs CAP_LINUX_IMMUTABLE and a file system that supports it).
    Either way the test then proves that SQLite's open-for-writing really fails.
    """
    path.chmod(0o444)
    immutable = False
    try:
        if _writable(path):
            chattr = shutil.which("chattr")
            if chattr is not None:
                immutable = (
                    subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode == 0
                )
            if _writable(path):
                pytest.skip("cannot make a file read-only here (root without chattr +i)")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o644)


def _writable(path: Path) -> bool:
    try:
        with open(path, "r+b"):
            return True
    except OSError:
        return False


@dataclasses.dataclass(frozen=True)
class Fault:
    """One way the history can be unusable.

    ``make`` turns a directory into the faulty history path; ``run`` is a regex the warning line
    must match (None: the run is recorded normally); ``cli`` is a regex of the command line's
    error line (None: ``runs`` reads it fine).
    """

    name: str
    make: Callable[[Path], Path]
    run: Optional[str]
    cli: Optional[str]
    #: What holds the fault in place while the runs happen (a read-only file).
    around: Callable[[Path], AbstractContextManager[None]] = lambda path: nullcontext()


def _garbage(d: Path) -> Path:
    path = d / "history.db"
    path.write_bytes(bytes(range(256)) * 40)
    return path


def _truncated(d: Path) -> Path:
    path = make_history(d / "history.db")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _directory(d: Path) -> Path:
    (d / "history.db").mkdir()
    return d / "history.db"


def _missing_directory(d: Path) -> Path:
    return d / "not" / "yet" / "history.db"


def _parent_is_a_file(d: Path) -> Path:
    (d / "plain").write_text("a file, not a directory")
    return d / "plain" / "history.db"


def _foreign_sqlite(d: Path) -> Path:
    path = d / "history.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (name TEXT)")
    con.commit()
    con.close()
    return path


def _newer_schema(d: Path) -> Path:
    path = make_history(d / "history.db", runs=1)
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    return path


def _read_only_file(d: Path) -> Path:
    return make_history(d / "history.db")


def _unopenable(d: Path) -> Path:
    # /proc refuses new files to everyone, root included.
    if not Path("/proc/self").is_dir():
        pytest.skip("needs Linux /proc")
    return Path("/proc/pytest-feedback-history.db")


def _disk_full(d: Path) -> Path:
    # Every write to /dev/full fails with ENOSPC, as on a full disk.
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    return Path("/dev/full")


NOT_READABLE = r"is not a readable pytest-feedback history \(.*\); move it aside or choose another"
NO_HISTORY = r"no history at .*history\.db; record one with `pytest --feedback`"

FAULTS = [
    Fault("garbage", _garbage, NOT_READABLE, NOT_READABLE),
    Fault("truncated", _truncated, NOT_READABLE, NOT_READABLE),
    Fault("directory", _directory, r"is a directory, not a history file", "is a directory"),
    Fault("missing-directory", _missing_directory, None, NO_HISTORY),
    Fault(
        "parent-is-a-file",
        _parent_is_a_file,
        r"plain is a file, not a directory; choose another place with --feedback-db",
        NO_HISTORY,
    ),
    Fault("foreign-sqlite", _foreign_sqlite, "not a pytest-feedback history", "not a pytest-fe"),
    Fault("newer-schema", _newer_schema, "newer pytest-feedback", "upgrade pytest-feedback"),
    # A read-only history is still readable: the command line lists its runs.
    Fault("read-only", _read_only_file, r"is read-only \(.*\); make it writable", None, read_only),
    Fault(
        "unopenable-location",
        _unopenable,
        r"cannot open /proc/\S+ \(unable to open database file\); check that the directory",
        "no history at /proc/",
    ),
    Fault(
        "disk-full",
        _disk_full,
        r"cannot write /dev/full \(database or disk is full\); free some disk space or",
        # The command line only reads: an empty file holds no history, nothing is written.
        r"/dev/full holds no history yet \(an empty file\); record one with `pytest --feedback`",
    ),
]


def warning_lines(result: pytest.RunResult) -> list[str]:
    lines = result.outlines + result.errlines
    assert not [line for line in lines if "Traceback" in line or "INTERNALERROR" in line]
    return [line for line in lines if WARNING in line]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_a_broken_history_never_breaks_the_run(pytester: pytest.Pytester, fault: Fault) -> None:
    path = fault.make(pytester.mkdir("place"))
    before = path.read_bytes() if path.is_file() else None
    with fault.around(path):
        for suite, status in ((PASSING, 0), (FAILING, 1)):
            pytester.makepyfile(test_suite=suite)
            result = pytester.runpytest("--feedback", f"--feedback-db={path}", "-W", "error")
            assert result.ret == status
            warnings = warning_lines(result)
            if fault.run is None:
                assert warnings == []
                result.stdout.fnmatch_lines(["feedback: recorded run *"])
            else:
                (line,) = warnings
                assert re.search(fault.run, line), line
                assert str(path) in line
    if before is not None and fault.run is not None:
        assert path.read_bytes() == before  # never repaired, replaced or deleted behind our back


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_the_command_line_names_the_file_and_the_fix(tmp_path: Path, fault: Fault) -> None:
    path = fault.make(tmp_path)
    with fault.around(path):
        status, out, err = run_cli("runs", "--db", str(path))
    if fault.cli is None:
        assert (status, err) == (0, "")
        assert "run" in out
    else:
        assert status == 1
        (line,) = err.splitlines()
        assert line.startswith("pytest-feedback: error: ")
        assert str(path) in line or path.name in line
        assert re.search(fault.cli, line), line


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = cli.main(list(argv))
    return status, out.getvalue(), err.getvalue()


def test_a_history_locked_too_long_is_skipped_with_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_history(pytester.path / "history.db")
    monkeypatch.setattr(sqlitedb, "BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        pytester.makepyfile(test_suite=FAILING)
        result = pytester.runpytest("--feedback", "--feedback-db", str(path))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.ret == 1
    (line,) = warning_lines(result)
    assert "stayed locked by another process" in line
    with Store.open_existing(path) as store:
        assert store.reads.run_count() == 3


# -- processes: concurrent writers and killed runs ----------------------------------------------

BARRIER_SUITE = """
import os, pathlib, time

def test_wait_for_the_others():
    # Every process reaches its end at about the same time: the writes really contend.
    here = pathlib.Path(os.environ["BARRIER"])
    (here / str(os.getpid())).touch()
    deadline = time.monotonic() + 30
    while len(list(here.iterdir())) < int(os.environ["WRITERS"]):
        assert time.monotonic() < deadline, "the other writers never started"
        time.sleep(0.005)

def test_other():
    pass
"""


def pytest_command(*args: str) -> list[str]:
    """A fresh interpreter running pytest with only our plugin (start-up is the cost here)."""
    return [sys.executable, "-m", "pytest", "-p", "pytest_feedback.plugin", "-q", *args]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **extra}
    env.pop("PYTEST_ADDOPTS", None)
    return env


def test_concurrent_writers_lose_nothing(pytester: pytest.Pytester) -> None:
    # Four fresh interpreters released by one barrier already outnumber the cores that run
    # them: their writes contend as much as more would (each costs a pytest start-up).
    writers = 4
    pytester.makepyfile(test_barrier=BARRIER_SUITE)
    history = pytester.path / "shared.db"
    barrier = tempfile.mkdtemp(dir=pytester.path)
    env = subprocess_env(BARRIER=barrier, WRITERS=str(writers))
    procs = [
        subprocess.Popen(
            pytest_command("-p", "no:cacheprovider", "--feedback", f"--feedback-db={history}"),
            cwd=pytester.path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(writers)
    ]
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * writers, outputs
    assert not [o for o in outputs if "locked" in o or WARNING in o]
    recorded = sorted(int(re.search(r"recorded run (\d+)", o)[1]) for o in outputs)  # type: ignore[index]
    assert recorded == list(range(1, writers + 1))
    with Store.open_existing(history) as store:
        assert store.reads.run_count() == writers
        # The per-test aggregates are read-modify-write: each writer's update is there.
        tests = store.reads.load_estimates().tests
        assert {t.runs for t in tests.values()} == {writers}
        assert len(tests) == 2


KILLED_DURING_A_TEST = """
import os, signal

def test_1(): pass
def test_2(): pass
def test_3_dies(): os.kill(os.getpid(), signal.SIGKILL)
def test_4(): pass
"""

KILLED_DURING_THE_WRITE = """
import os, signal
import pytest_feedback.history.store as store

real = store.Store._update_fixture_stats

def dying(self, con, *args):
    # Enough uncommitted work that SQLite spills pages into the WAL before the kill.
    con.execute("PRAGMA cache_size = 1")
    con.executemany(
        "INSERT INTO tests (nodeid, file) VALUES (?, 'x.py')",
        [(f"x.py::filler_{i}" + "." * 200,) for i in range(2000)],
    )
    os.kill(os.getpid(), signal.SIGKILL)

store.Store._update_fixture_stats = dying
"""


@pytest.mark.parametrize("when", ["during-a-test", "during-the-write"])
def test_a_killed_run_loses_only_itself(pytester: pytest.Pytester, when: str) -> None:
    pytester.makepyfile(test_suite="def test_1(): pass\ndef test_2(): pass\n")
    for _ in range(2):
        pytester.runpytest("--feedback").assert_outcomes(passed=2)
    history = pytester.path / ".pytest-feedback" / "history.db"

    killed = pytester.mkdir("killed")
    if when == "during-a-test":
        (killed / "test_suite.py").write_text(KILLED_DURING_A_TEST)
    else:
        (killed / "test_suite.py").write_text("def test_1(): pass\ndef test_2(): pass\n")
        (killed / "conftest.py").write_text(KILLED_DURING_THE_WRITE)
    proc = subprocess.run(
        pytest_command("-p", "no:cacheprovider", "--feedback", f"--feedback-db={history}"),
        cwd=killed,
        env=subprocess_env(),
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout
    if when == "during-the-write":
        wal = history.with_name(history.name + "-wal")
        assert wal.stat().st_size > 100_000  # the killed transaction did reach the disk

    with Store.open_existing(history) as store:
        assert store.reads.run_count() == 2
        assert store.reads.load_estimates().tests["test_suite.py::test_1"].runs == 2
        assert store.reads.known_files() == {"test_suite.py"}  # nothing of the killed run
    con = sqlite3.connect(history)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.close()

    shutil.rmtree(killed)  # its tests kill whoever runs them
    result = pytester.runpytest("--feedback")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["feedback: recorded run 3 *"])
    with Store.open_existing(history) as store:
        assert store.reads.load_estimates().tests["test_suite.py::test_1"].runs == 3
