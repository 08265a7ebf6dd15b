"""End to end: ``--feedback-shard K/N`` and ``--feedback-dist`` inside pytest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_feedback.history.records import (
    FixtureExecution,
    FixtureKey,
    RunRecord,
    TestRecord,
    WorkerRecord,
)
from pytest_feedback.history.store import Store

SUITE = {
    "conftest.py": """
        import pytest

        @pytest.fixture(scope="module")
        def warehouse():
            yield "stock"
    """,
    "test_stock.py": """
        import pytest

        @pytest.mark.parametrize("i", range(6))
        def test_count(warehouse, i):
            pass
    """,
    "test_orders.py": """
        import pytest

        @pytest.mark.parametrize("i", range(5))
        def test_order(i):
            pass

        class TestRefund:
            def test_full(self): pass
            def test_partial(self): pass
    """,
    "test_misc.py": """
        def test_slow(): pass
        def test_fast(): pass
    """,
}
NODEIDS = sorted(
    [f"test_stock.py::test_count[{i}]" for i in range(6)]
    + [f"test_orders.py::test_order[{i}]" for i in range(5)]
    + ["test_orders.py::TestRefund::test_full", "test_orders.py::TestRefund::test_partial"]
    + ["test_misc.py::test_slow", "test_misc.py::test_fast"]
)


def write_history(path: Path, seconds: dict[str, float] | None = None) -> None:
    """A run with known costs: test_slow 3 s, the warehouse fixture 2 s, others 0.1 s."""
    seconds = seconds or {}
    run = RunRecord(uuid="fake", started_at=1.0, finished_at=10.0, wall_s=9.0)
    key = FixtureKey("warehouse", "module", "conftest.py::warehouse")
    for nodeid in NODEIDS:
        call = seconds.get(nodeid, 3.0 if nodeid.endswith("test_slow") else 0.1)
        run.tests[nodeid] = TestRecord(nodeid, call_s=call)
        run.uses[nodeid] = [key] if "test_stock" in nodeid else []
    first = "test_stock.py::test_count[0]"
    run.fixtures.append(FixtureExecution(key, 2.0, first))
    run.tests[first].setup_s = 2.0
    run.tests[first].fixture_overhead_s = 2.0
    run.worker_records.append(WorkerRecord("main", 0.2, len(NODEIDS)))
    with Store(path) as store:
        store.record_run(run)


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if re.match(r"^test_\w+\.py::", line)]


@pytest.mark.parametrize("history_exists", [True, False], ids=["history", "no-history"])
def test_shards_are_disjoint_and_cover_the_collection(
    pytester: pytest.Pytester, history: Path, history_exists: bool
) -> None:
    pytester.makepyfile(**SUITE)
    if history_exists:
        write_history(history)
    shards = []
    for k in (1, 2, 3):
        result = pytester.runpytest(
            "--collect-only", "-q", "-p", "no:cacheprovider", f"--feedback-shard={k}/3"
        )
        shards.append(collected(result))
    assert all(shards)
    everything = [n for shard in shards for n in shard]
    assert len(everything) == len(set(everything))
    assert sorted(everything) == NODEIDS
    if history_exists:
        # The slow test has a shard to itself; the warehouse family stays together.
        slow = next(s for s in shards if "test_misc.py::test_slow" in s)
        assert slow == ["test_misc.py::test_slow"]
        assert sum(1 for s in shards if any("test_stock" in n for n in s)) == 1


def test_shard_runs_records_and_reports(pytester: pytest.Pytester, history: Path) -> None:
    pytester.makepyfile(**SUITE)
    write_history(history)
    result = pytester.runpytest("-p", "no:cacheprovider", "--feedback-shard", "2/3")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        [
            "collected 15 items / 9 deselected / 6 selected",
            "feedback: shard 2/3: 6 tests, predicted 2.80s (slowest shard 3.20s, lower bound 3.20s)",  # noqa: E501
            "feedback: shard 2/3: 6 tests, measured *, predicted 2.80s *",
        ]
    )
    with Store.open_existing(history) as store:
        assert store.reads.runs()[0]["shard"] == "2/3"


def test_shard_from_the_environment_composes_with_xdist(
    pytester: pytest.Pytester, history: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(**SUITE)
    write_history(history)
    monkeypatch.setenv("PYTEST_FEEDBACK_SHARD", "3/3")
    result = pytester.runpytest("-p", "no:cacheprovider", "-n", "1")  # one worker composes too
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["feedback: shard 3/3: 8 tests, measured *, predicted *"])
    with Store.open_existing(history) as store:
        assert store.reads.runs()[0]["shard"] == "3/3"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--feedback-shard", "0/4"], "--feedback-shard: '0/4' is not a shard; expected K/N *"),
        (["--feedback-shard", "5/4"], "--feedback-shard: '5/4' is not a shard; expected K/N *"),
        (["--feedback-shard", "a/b"], "--feedback-shard: 'a/b' is not a shard; expected K/N *"),
        (
            ["--feedback-dist", "-n", "2", "--dist", "loadscope"],
            "*--feedback-dist: it replaces xdist's --dist load; drop --dist loadscope to use it",
        ),
    ],
)
def test_bad_parallel_options(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}"])


def test_bad_shard_in_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    monkeypatch.setenv("PYTEST_FEEDBACK_SHARD", "2-4")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*$PYTEST_FEEDBACK_SHARD: '2-4' is not a shard; expected K/N*"])


def test_feedback_dist_runs_everything_and_reports_workers(
    pytester: pytest.Pytester, history: Path
) -> None:
    pytester.makepyfile(**SUITE)
    write_history(history)
    result = pytester.runpytest("-p", "no:cacheprovider", "-n", "2", "--feedback-dist", "-v")
    result.assert_outcomes(passed=15)
    result.stdout.fnmatch_lines(
        [
            "scheduling tests via FeedbackScheduling",
            "feedback: predicted/measured per worker: gw* */*",
        ]
    )
    with Store.open_existing(history) as store:
        results = store.reads.results(store.reads.runs()[0]["id"])
    workers = {r["nodeid"]: r["worker"] for r in results}
    assert len(workers) == 15
    # The warehouse family ran on one worker: splitting it never pays for its 2 s set-up.
    # (Which worker runs what depends on when each came up: the first starts at once, and
    # these tests take far less than the history says; tests/test_scheduler.py checks that.)
    stock = {w for n, w in workers.items() if "test_stock" in n}
    assert len(stock) == 1


def test_feedback_dist_without_history_behaves_like_load(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**SUITE)
    # One worker is enough: with a history --feedback-dist schedules -n 1 by its plan too.
    result = pytester.runpytest("-p", "no:cacheprovider", "-n", "1", "--feedback-dist", "-v")
    result.assert_outcomes(passed=15)
    result.stdout.fnmatch_lines(
        [
            "scheduling tests via LoadScheduling",
            "feedback: warning: no history at * yet: plans split by test count",
        ]
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"}, (2, 3, "GitLab CI")),
        ({"CIRCLE_NODE_INDEX": "0", "CIRCLE_NODE_TOTAL": "4"}, (1, 4, "CircleCI")),
        ({"BUILDKITE_PARALLEL_JOB": "3", "BUILDKITE_PARALLEL_JOB_COUNT": "4"}, (4, 4, "Buildkite")),
        ({}, None),
        ({"CI_NODE_INDEX": "1"}, None),  # GitLab without parallel: no total
    ],
)
def test_ci_shard_detection(environ: dict[str, str], expected: object) -> None:
    from pytest_feedback.ci import ci_shard

    assert ci_shard(environ) == expected


def test_ci_shard_variables_that_make_no_shard() -> None:
    from pytest_feedback.ci import ci_shard
    from pytest_feedback.errors import ConfigError

    with pytest.raises(ConfigError, match=r"CIRCLE_NODE_INDEX='4'.*pass --feedback-shard K/N"):
        ci_shard({"CIRCLE_NODE_INDEX": "4", "CIRCLE_NODE_TOTAL": "4"})


def test_shard_auto_in_a_gitlab_parallel_job(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(**{f"test_{i}": f"def test_{i}(): pass" for i in range(4)})
    seen: set[str] = set()
    for index in ("1", "2"):
        monkeypatch.setenv("CI_NODE_INDEX", index)
        monkeypatch.setenv("CI_NODE_TOTAL", "2")
        # Every shard plans from the same history (here: none), as CI jobs restoring one cache do.
        result = pytester.runpytest(
            "--feedback-shard=auto", "--feedback-no-record", "-p", "no:cacheprovider", "-v"
        )
        result.stdout.fnmatch_lines([f"feedback: shard {index}/2 (GitLab CI): 2 tests, *"])
        passed = {line.split(" ")[0] for line in result.outlines if " PASSED" in line}
        assert len(passed) == 2
        assert not passed & seen
        seen |= passed
    assert len(seen) == 4


def test_shard_auto_outside_a_parallel_job_runs_everything(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**{f"test_{i}": f"def test_{i}(): pass" for i in range(3)})
    result = pytester.runpytest("--feedback-shard=auto", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["feedback: shard 1/1 (no CI shard found): 3 tests, *"])
