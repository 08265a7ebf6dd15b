"""End to end: `pytest --feedback` records test phases, fixture costs and run metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_feedback.history.store import Store

FIXTURE_SUITE = {
    "conftest.py": """
        import json, os, time
        import pytest

        def note(name, phase, start):
            # What the fixture itself measured, to compare the recorded figures with.
            with open(os.environ["TRUTH_FILE"], "a") as f:
                f.write(json.dumps([name, phase, time.perf_counter() - start]) + "\\n")

        @pytest.fixture(scope="module")
        def catalogue():
            start = time.perf_counter()
            time.sleep(0.5)
            note("catalogue", "setup", start)
            yield "catalogue"

        @pytest.fixture(scope="session")
        def server():
            start = time.perf_counter()
            time.sleep(0.3)
            note("server", "setup", start)
            yield "server"
            start = time.perf_counter()
            time.sleep(0.1)
            note("server", "teardown", start)
    """,
    "test_one.py": """
        def test_a(catalogue, server):
            pass

        def test_b(catalogue):
            pass
    """,
    "test_two.py": """
        import time

        def test_c(catalogue):
            time.sleep(0.05)

        def test_d(server):
            pass
    """,
}


def _fixture_rows(store: Store, name: str) -> list[dict[str, Any]]:
    run_id = store.reads.runs()[0]["id"]
    return [f for f in store.reads.fixture_executions(run_id) if f["name"] == name]


def _close(recorded: float, truth: float) -> bool:
    """Within 20% of what the fixture measured itself (plus 10 ms for the hook around it)."""
    return truth <= recorded + 0.001 and recorded <= truth * 1.2 + 0.01


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_fixture_costs_are_measured_and_not_charged_to_tests(
    pytester: pytest.Pytester,
    history: Path,
    xdist: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    truth_file = pytester.path / "truth.jsonl"
    monkeypatch.setenv("TRUTH_FILE", str(truth_file))
    pytester.makepyfile(**FIXTURE_SUITE)
    result = pytester.runpytest("--feedback", "-p", "no:cacheprovider", *xdist)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["feedback: recorded run 1 (4 tests, * fixture executions) into *"])
    truth: dict[tuple[str, str], list[float]] = {}
    for line in truth_file.read_text().splitlines():
        name, phase, seconds = json.loads(line)
        truth.setdefault((name, phase), []).append(seconds)

    with Store.open_existing(history) as store:
        catalogue = _fixture_rows(store, "catalogue")
        server = _fixture_rows(store, "server")
        # One module fixture per module (and per worker that ran the module).
        assert len(catalogue) == len(truth[("catalogue", "setup")]) >= 2
        assert len(server) == len(truth[("server", "setup")]) >= 1
        for row in catalogue:
            assert row["scope"] == "module"
            assert row["location"] == "conftest.py::catalogue"
        for rows, key in ((catalogue, "setup"), (server, "setup"), (server, "teardown")):
            recorded = sorted(float(r[f"{key}_s"]) for r in rows)
            expected = sorted(truth[(rows[0]["name"], key)])
            assert all(map(_close, recorded, expected)), (key, recorded, expected)
        assert all(row["teardown_test"] is not None for row in server)

        results = {r["nodeid"]: r for r in store.reads.results(store.reads.runs()[0]["id"])}
        assert set(results) == {
            "test_one.py::test_a",
            "test_one.py::test_b",
            "test_two.py::test_c",
            "test_two.py::test_d",
        }
        # Own cost excludes the wider-scope fixtures that the test happened to trigger (0.3 s
        # and more each) ...
        for nodeid, row in results.items():
            assert row["outcome"] == "passed"
            assert row["own_s"] < 0.25, (nodeid, row)
        assert results["test_two.py::test_c"]["own_s"] >= 0.05
        # ... while the raw phases still contain them.
        assert any(r["setup_s"] >= 0.5 for r in results.values())
        estimates = store.reads.load_estimates()
        assert estimates.duration("test_one.py::test_a") < 0.25
        if xdist:
            assert {r["worker"] for r in results.values()} <= {"gw0", "gw1"}
            assert store.reads.runs()[0]["workers"] == 2

        # When each test and fixture ran, and what it cost the CPU (schema 3).
        wall = store.reads.runs()[0]["wall_s"]
        lanes: dict[str, list[tuple[float, float]]] = {}
        for row in results.values():
            assert 0 <= row["start_s"] <= wall, row
            length = row["setup_s"] + row["call_s"] + row["teardown_s"]
            lanes.setdefault(row["worker"] or "main", []).append((row["start_s"], length))
            assert 0 <= row["cpu_s"] < length + 0.05, row
        for bars in lanes.values():  # one worker runs one test at a time
            bars.sort()
            for (start, length), (next_start, _) in zip(bars, bars[1:]):
                assert start + length <= next_start + 0.002, bars
        # test_c sleeps: its CPU time is far below its call's wall time.
        assert results["test_two.py::test_c"]["cpu_s"] < 0.04
        for row in catalogue + server:
            assert 0 <= row["setup_start_s"] <= wall, row
            assert 0 <= row["setup_cpu_s"] < 0.1, row  # they sleep 0.3-0.5 s
            test = results[row["setup_test"]]
            # set up inside the set-up phase of the test that requested it first
            start = test["start_s"]
            assert start - 0.002 <= row["setup_start_s"] <= start + test["setup_s"], (row, test)
        for row in server:
            assert row["setup_start_s"] + 0.3 <= row["teardown_start_s"] <= wall, row


def test_outcomes(pytester: pytest.Pytester, history: Path) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("setup")

        @pytest.fixture
        def bad_teardown():
            yield
            raise RuntimeError("teardown")

        def test_pass(): pass
        def test_fail(): assert False
        def test_error(broken): pass
        def test_teardown_error(bad_teardown): pass
        def test_skip(): pytest.skip("no")
        @pytest.mark.xfail
        def test_xfail(): assert False
        @pytest.mark.xfail
        def test_xpass(): pass
        @pytest.mark.xfail(strict=True)
        def test_strict_xpass(): pass
        """
    )
    result = pytester.runpytest("--feedback", "-p", "no:cacheprovider")
    assert result.ret == 1
    with Store.open_existing(history) as store:
        run = store.reads.runs()[0]
        outcomes = {
            r["nodeid"].split("::")[1]: r["outcome"] for r in store.reads.results(run["id"])
        }
        assert run["exit_status"] == 1
        assert run["failed"] == 4
    assert outcomes == {
        "test_pass": "passed",
        "test_fail": "failed",
        "test_error": "error",
        "test_teardown_error": "error",
        "test_skip": "skipped",
        "test_xfail": "xfailed",
        "test_xpass": "xpassed",
        "test_strict_xpass": "failed",
    }


# One xdist worker is enough: what matters is that the reports cross from a worker.
@pytest.mark.parametrize("workers", [0, 1])
def test_subtests_fail_their_test_and_are_not_timed_twice(
    pytester: pytest.Pytester, history: Path, workers: int
) -> None:
    if not hasattr(pytest, "Subtests"):
        pytest.skip("pytest < 9 has no built-in subtests")
    pytester.makepyfile(
        """
        import time, unittest
        import pytest

        @pytest.fixture(scope="module")
        def catalogue():
            time.sleep(0.2)
            yield

        def test_fixture(subtests, request):
            for i in range(3):
                with subtests.test(i=i):
                    if i == 0:
                        request.getfixturevalue("catalogue")  # set up inside a subtest
                    assert i != 1

        def test_all_pass(subtests):
            for i in range(3):
                with subtests.test(i=i):
                    time.sleep(0.3)

        class T(unittest.TestCase):
            def test_unittest(self):
                for i in range(3):
                    with self.subTest(i=i):
                        self.assertNotEqual(i, 1)
        """
    )
    xdist = ["-n", str(workers)] if workers else []
    pytester.runpytest("--feedback", "-p", "no:cacheprovider", *xdist)
    with Store.open_existing(history) as store:
        run = store.reads.runs()[0]
        rows = {r["nodeid"].split("::")[-1]: r for r in store.reads.results(run["id"])}
        assert run["failed"] == 2
        fixtures = _fixture_rows(store, "catalogue")
    # unittest's own report says passed; the failed subtest fails it, as pytest's summary does.
    assert {n: r["outcome"] for n, r in rows.items()} == {
        "test_fixture": "failed",
        "test_all_pass": "passed",
        "test_unittest": "failed",
    }
    # The fixture a subtest set up is recorded (its report carried the event).
    assert len(fixtures) == 1
    assert fixtures[0]["setup_s"] >= 0.2
    # Three subtests of 0.3 s: 0.9 s, not the subtests' and the test's time added up (1.8 s).
    assert 0.9 <= rows["test_all_pass"]["call_s"] < 1.5


def test_run_metadata_and_git(pytester: pytest.Pytester, history: Path) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    pytester.run("git", "init", "-q", "-b", "trunk")
    pytester.run("git", "add", "-A")
    pytester.run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    pytester.runpytest("--feedback", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    with Store.open_existing(history) as store:
        run = store.reads.runs()[0]
    assert run["git_branch"] == "trunk"
    assert len(run["git_commit"]) == 40
    assert run["git_dirty"] == 0
    assert run["workers"] == 0
    assert run["wall_s"] > 0
    assert run["collect_s"] is not None
    assert "--feedback" in run["args"]
    assert run["python"].count(".") == 2


def test_not_recording_without_the_option(pytester: pytest.Pytester, history: Path) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert not history.exists()
    pytester.runpytest("--feedback", "--feedback-no-record").assert_outcomes(passed=1)
    assert not history.exists()


def test_ini_enables_recording_and_sets_the_path(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfeedback = true\nfeedback_db = data/h.db\n")
    pytester.makepyfile(test_a="def test_a(): pass")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert (pytester.path / "data" / "h.db").is_file()


def test_option_beats_env_beats_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nfeedback = true\nfeedback_db = ini.db\n")
    pytester.makepyfile(test_a="def test_a(): pass")
    monkeypatch.setenv("PYTEST_FEEDBACK_DB", "env.db")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    pytester.runpytest("-p", "no:cacheprovider", "--feedback-db", "cli.db")
    assert (pytester.path / "env.db").is_file()
    assert (pytester.path / "cli.db").is_file()
    assert not (pytester.path / "ini.db").exists()


def test_history_directory_gets_a_gitignore(pytester: pytest.Pytester, history: Path) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    pytester.runpytest("--feedback", "-p", "no:cacheprovider")
    assert (history.parent / ".gitignore").read_text().strip().endswith("*")


def test_durations_survive_frozen_time(pytester: pytest.Pytester, history: Path) -> None:
    pytest.importorskip("freezegun")
    pytester.makepyfile(
        """
        import time
        import pytest
        from freezegun import freeze_time

        @pytest.fixture(scope="module")
        def frozen():
            with freeze_time("2001-01-01"):
                time.sleep(0.2)
                yield

        def test_frozen(frozen):
            with freeze_time("2001-01-01"):
                time.sleep(0.2)
        """
    )
    pytester.runpytest("--feedback", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    with Store.open_existing(history) as store:
        run = store.reads.runs()[0]
        (result,) = store.reads.results(run["id"])
        (fixture,) = [f for f in store.reads.fixture_executions(run["id"]) if f["name"] == "frozen"]
    assert result["call_s"] >= 0.2
    assert fixture["setup_s"] >= 0.2  # frozen time would read 0
    assert run["wall_s"] >= 0.4
    assert run["started_at"] > 1.7e9  # not 2001
    # pytest's clock was frozen when the test started: no start time rather than a wrong one.
    assert result["start_s"] is None or 0 <= result["start_s"] <= run["wall_s"]
    assert 0 <= fixture["setup_start_s"] <= run["wall_s"]  # the probe's clock is the real one


def test_retention_keeps_aggregates(pytester: pytest.Pytester, history: Path) -> None:
    pytester.makeini("[pytest]\nfeedback_keep_runs = 2\n")
    pytester.makepyfile(test_a="def test_a(): pass")
    for _ in range(4):
        pytester.runpytest("--feedback", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    with Store.open_existing(history) as store:
        assert store.reads.run_count() == 2
        estimates = store.reads.load_estimates()
        assert estimates.tests["test_a.py::test_a"].runs == 4


def test_parametrized_arguments_are_not_fixtures(pytester: pytest.Pytester, history: Path) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def real():
            return 1

        @pytest.mark.parametrize("value", [1, 2])
        def test_p(value, real):
            pass
        """
    )
    pytester.runpytest("--feedback", "-p", "no:cacheprovider").assert_outcomes(passed=2)
    with Store.open_existing(history) as store:
        names = {f.name for f in store.reads.load_estimates().fixtures}
    assert names == {"real"}


def test_a_history_path_alone_records(pytester: pytest.Pytester) -> None:
    """Any --feedback-* option records (docs/contract.md, "Options"); here the file is its point."""
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest("--feedback-db=mine.db", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["feedback: recorded run 1 (1 test, 0 fixture executions) *"])
    assert (pytester.path / "mine.db").is_file()
