"""`pytest-feedback advise`, the imports collection records, and `--feedback-try-scope`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pytest_feedback.cli.commands import main
from pytest_feedback.history.estimates import TestEstimate
from pytest_feedback.history.evidence import FixtureGroup, TestTime
from pytest_feedback.history.merge import merge_histories
from pytest_feedback.history.records import ImportRecord, RunRecord, TestRecord
from pytest_feedback.history.store import Store
from pytest_feedback.planning.advice.fixtures import scope_suggestions
from pytest_feedback.planning.advice.regressions import change_point, regression_suggestions
from pytest_feedback.planning.advice.trial import judge
from pytest_feedback.planning.advice.waits import wait_suggestions

# -- the judgements, on data built by hand ---------------------------------------------------


def _group(nodeid: str, executions: int = 1, worker: str = "main") -> FixtureGroup:
    return FixtureGroup(
        "db", "function", "tests/conftest.py::db", nodeid, worker, executions, 0.2, 0.0
    )


def test_scope_saving_per_scope_and_the_narrowest_that_gets_most() -> None:
    groups = [_group(f"tests/test_{m}.py::test_{i}") for m in "ab" for i in range(5)]
    [s] = scope_suggestions(groups, workers=0)
    # 10 executions at 0.2 s; per module 2 instances; per session 1; class = per test here.
    assert s.saved_s == pytest.approx(8 * 0.2)
    assert "module 1.60s" in s.evidence[2]
    assert "session 1.80s" in s.evidence[2]
    assert "class" not in s.evidence[2]  # tests outside classes: no saving
    assert s.title.endswith("to module scope")  # 89% of the session's saving, less shared
    assert s.command == "pytest --feedback-try-scope db=module"


def test_scope_saving_at_the_recorded_workers_counts_one_set_up_per_worker() -> None:
    groups = [_group(f"tests/test_a.py::test_{i}") for i in range(8)]
    [s] = scope_suggestions(groups, workers=4)
    assert s.subject == "db"
    assert s.saved_s == pytest.approx(7 * 0.2)
    # 4 workers each set it up once: (8 - 4) * 0.2 s of work, spread over 4 workers.
    assert s.saved_at_workers_s == pytest.approx(4 * 0.2 / 4)
    assert "-n 4" in s.command


def test_no_scope_suggestion_for_a_fixture_set_up_once_per_instance() -> None:
    groups = [_group(f"tests/test_{m}.py::test_1") for m in "abc"]
    assert scope_suggestions(groups[:1], workers=0) == []


def _time(nodeid: str, run_id: int, wall: float, cpu: float) -> TestTime:
    return TestTime(run_id, nodeid, 0.0, wall, 0.0, wall, cpu)


def test_waiting_tests_are_grouped_by_file_and_need_most_runs() -> None:
    times = [_time(f"tests/test_w.py::test_{i}", r, 0.3, 0.01) for i in range(3) for r in (1, 2)]
    times.append(_time("tests/test_once.py::test_x", 1, 5.0, 0.0))  # one run of four: noise
    [s] = wait_suggestions(times, runs_read=4, workers=2)
    assert s.subject == "tests/test_w.py"
    assert s.saved_s == pytest.approx(3 * 0.29)
    assert s.saved_at_workers_s == pytest.approx(3 * 0.29 / 2)


def test_change_point_finds_the_first_slow_run_and_ignores_noise() -> None:
    assert change_point([0.1, 0.11, 0.1, 0.5, 0.52, 0.49]) == 3
    assert change_point([0.1, 0.3, 0.1, 0.3, 0.1, 0.3]) is None
    assert change_point([0.1, 0.1, 0.1, 0.5, 0.1]) is None  # not slow any more


def test_a_regression_names_the_runs_commit() -> None:
    samples = [[i, "passed", 0.05 if i < 4 else 0.6, 0, 0, 0, f"c{i}"] for i in range(1, 8)]
    [s] = regression_suggestions([("t.py::test_x", samples)], [], {}, workers=0)
    assert "run 4 (commit c4)" in s.title
    assert s.command == "git diff c3 c4"
    assert s.saved_s == pytest.approx(0.55)


def _estimate(nodeid: str, outcome: str, flaky: bool = False) -> TestEstimate:
    return TestEstimate(nodeid, 1.0, 0.5, 0.5, 0.0, 5, 0.0, flaky, 1.0, outcome)


def test_trial_calls_changed_outcomes_unsafe_and_counts_the_seconds() -> None:
    history = {
        "a": _estimate("a", "passed"),
        "b": _estimate("b", "passed"),
        "c": _estimate("c", "passed", flaky=True),
    }
    trial = judge(
        ["db=module"], history, {"a": ("passed", 0.2), "b": ("failed", 0.3), "c": ("failed", 1.0)}
    )
    assert trial.unsafe
    assert trial.changed == (("b", "passed", "failed"),)
    assert (trial.compared, trial.flaky) == (2, 1)
    assert trial.saved_s == pytest.approx(2.0 - 0.5)
    assert "UNSAFE" in trial.lines()[0]
    safe = judge(["db=module"], history, {"a": ("passed", 0.2)})
    assert not safe.unsafe
    assert "no outcome changed" in safe.lines()[0]


# -- recording what collection imported -------------------------------------------------------

SUITE = {
    "slow_helper.py": "import inner_helper  # noqa: F401\n",
    "inner_helper.py": "import time\ntime.sleep(0.12)\n",
    "conftest.py": """
import time
import pytest
import slow_helper  # noqa: F401


def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


@pytest.fixture
def db():
    burn(0.03)
    return {}
""",
    "test_db.py": """
import pytest


@pytest.mark.parametrize("i", range(6))
def test_db(db, i):
    db[i] = 1
    assert len(db) == 1
""",
    "test_wait.py": """
import time


def test_a():
    time.sleep(0.12)


def test_b():
    time.sleep(0.12)
""",
}


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(**{name[:-3]: text for name, text in SUITE.items()})
    pytester.makeini("[pytest]\npythonpath = .\n")
    return pytester


def test_collection_records_test_modules_conftests_and_slow_imports(
    project: pytest.Pytester, history: Path
) -> None:
    project.runpytest("--feedback", "-p", "no:cacheprovider").assert_outcomes(passed=8)
    con = sqlite3.connect(history)
    rows = {
        (kind, name): (via, seconds)
        for kind, name, via, seconds in con.execute(
            "SELECT kind, name, via, seconds FROM collect_imports WHERE worker = 'main'"
        )
    }
    con.close()  # Python 3.13 warns about a connection left to the collector
    # inner_helper's import is part of slow_helper's: only the outermost module has a row.
    assert set(rows) == {
        ("conftest", "conftest.py"),
        ("module", "slow_helper"),
        ("test", "test_db.py"),
        ("test", "test_wait.py"),
    }
    assert rows[("module", "slow_helper")][0] == "conftest.py"
    assert rows[("module", "slow_helper")][1] >= 0.1
    assert rows[("conftest", "conftest.py")][1] >= rows[("module", "slow_helper")][1]


def test_advise_finds_the_planted_problems_and_try_scope_calls_the_widening_unsafe(
    project: pytest.Pytester, history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        project.runpytest("--feedback", "-p", "no:cacheprovider")
    capsys.readouterr()
    assert main(["advise", "--db", str(history), "--format", "json"]) == 0
    advice = json.loads(capsys.readouterr().out)
    found = {(s["kind"], s["subject"]) for s in advice["suggestions"]}
    assert {
        ("fixture-scope", "db"),
        ("waiting", "test_wait.py"),
        ("imports", "slow_helper"),
    } <= found
    for s in advice["suggestions"]:
        assert s["saved_s"] > 0
        assert all(s[key] for key in ("command", "assumes", "evidence"))
    assert main(["advise", "--db", str(history), "--top", "1"]) == 0
    text = capsys.readouterr().out
    assert text.count("\n1. ") == 1
    assert "\n2. " not in text
    assert "check: " in text

    result = project.runpytest("--feedback-try-scope", "db=module", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=5)
    result.stdout.fnmatch_lines(["*try-scope db=module: UNSAFE: 5 test(s) changed outcome*"])
    with Store.open_existing(history) as store:
        assert store.reads.run_count() == 2  # the trial is not recorded


def test_try_scope_rejects_a_malformed_value(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--feedback-try-scope", "db")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--feedback-try-scope db: give NAME=SCOPE*"])


# -- merging keeps the imports of each shard ----------------------------------------------------


def _shard_run(tmp_path: Path, k: int) -> Path:
    run = RunRecord(uuid=f"s{k}", started_at=100.0 + k, finished_at=110.0, wall_s=10.0)
    run.shard, run.pipeline = f"{k}/2", "ci:1"
    run.tests = {f"t{k}.py::test": TestRecord(f"t{k}.py::test", call_s=1.0)}
    run.imports = [ImportRecord("main", "conftest", "conftest.py", None, 0.5 * k)]
    path = tmp_path / f"s{k}.db"
    with Store(path) as store:
        store.record_run(run)
    return path


def test_merged_runs_keep_each_shards_imports(tmp_path: Path) -> None:
    out = tmp_path / "merged.db"
    merge_histories([_shard_run(tmp_path, 1), _shard_run(tmp_path, 2)], out)
    con = sqlite3.connect(out)
    rows = sorted(con.execute("SELECT worker, name, seconds FROM collect_imports"))
    con.close()
    assert rows == [("s1", "conftest.py", 0.5), ("s2", "conftest.py", 1.0)]
