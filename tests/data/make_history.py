"""Write a small, real pytest-feedback history with the pytest-feedback that is installed.

    python tests/data/make_history.py tests/data/history-vN.db

Run it with the release whose schema N the file is to represent (see tests/test_schema_history.py),
once, when N is new: a released version's file is never regenerated. It records runs of a tiny
generated suite (fixtures of every scope, passes, a failure, a skip, an xfail, parametrized ids):
a plain one, one under pytest-xdist, and (since schema 2) a ``--feedback-budget`` one, whose
budget columns and exit time (written by a watcher process after pytest exits) it waits for;
then it compacts the file.

    history-v1.db  written with schema 1 (two runs)
    history-v2.db  written with schema 2 (three runs: budget_s, predicted_s, took_s filled)
    history-v3.db  written with schema 3 (three runs: start and CPU times filled)
    history-v4.db  written with schema 4 (three runs; the map's table map_dists exists, empty)
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SUITE = {
    "conftest.py": """
        import time
        import pytest

        @pytest.fixture(scope="session")
        def server():
            time.sleep(0.02)
            yield "server"

        @pytest.fixture(scope="module")
        def catalogue(server):
            time.sleep(0.01)
            yield [1, 2, 3]

        @pytest.fixture
        def item(catalogue):
            return catalogue[0]
    """,
    "test_shop.py": """
        import pytest

        def test_item(item):
            assert item == 1

        @pytest.mark.parametrize("n", [1, 2, 3], ids=["one", "two", "three|<3>"])
        def test_param(catalogue, n):
            assert n in catalogue

        def test_fails():
            assert 1 == 2

        @pytest.mark.skip(reason="not today")
        def test_skipped():
            pass

        @pytest.mark.xfail
        def test_xfail():
            assert False
    """,
    "test_more.py": """
        import time

        def test_slow(server):
            time.sleep(0.05)

        class TestGroup:
            def test_a(self):
                pass
    """,
}


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1]).resolve()
    if out.exists():
        print(f"{out} exists; remove it first", file=sys.stderr)
        return 1
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON"))}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        for name, text in SUITE.items():
            (project / name).write_text(textwrap.dedent(text), encoding="utf-8")
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--feedback"]
        for extra in ([], ["-n", "2"], ["--feedback-budget=1m"]):
            subprocess.run(
                [*base, f"--feedback-db={out}", *extra], cwd=project, env=env, check=False
            )
    _wait_for_the_exit_time(out)
    con = sqlite3.connect(out, isolation_level=None)
    con.execute("PRAGMA journal_mode = DELETE")
    con.execute("PRAGMA page_size = 1024")
    con.execute("VACUUM")
    con.close()
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")
    return 0


def _wait_for_the_exit_time(path: Path, timeout_s: float = 30.0) -> None:
    """The budget run's exit time is written by a watcher process once pytest has exited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        con = sqlite3.connect(path)
        try:
            waiting = con.execute(
                "SELECT count(*) FROM runs WHERE budget_s IS NOT NULL AND exit_s IS NULL"
            ).fetchone()[0]
        finally:
            con.close()
        if not waiting:
            return
        time.sleep(0.1)
    raise SystemExit(f"{path}: the budget run's exit time never arrived")


if __name__ == "__main__":
    sys.exit(main())
