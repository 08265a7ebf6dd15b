"""Merging histories: shard runs of one pipeline fold into one run, idempotently."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any, Optional

import pytest

from pytest_feedback.ci import pipeline_id
from pytest_feedback.cli.commands import main
from pytest_feedback.errors import HistoryError
from pytest_feedback.history.merge import merge_histories, merged_run_uuid
from pytest_feedback.history.records import (
    FixtureExecution,
    FixtureKey,
    RunRecord,
    TestRecord,
    WorkerRecord,
)
from pytest_feedback.history.store import Store

DATA = Path(__file__).parent / "data"

SESSION_DB = FixtureKey("db", "session", "conftest.py::db")
#: 12 tests in 3 files; two fail, one is skipped.
SUITE: dict[str, tuple[str, float]] = {
    f"tests/test_{f}.py::test_{i}": (
        "failed"
        if (f, i) in {("a", 1), ("c", 3)}
        else "skipped"
        if (f, i) == ("b", 2)
        else "passed",
        0.1 * (1 + i) + (0.5 if f == "c" else 0.0),
    )
    for f in "abc"
    for i in range(4)
}
NODEIDS = sorted(SUITE)


def make_run(
    uuid: str,
    started: float,
    nodeids: list[str],
    *,
    shard: Optional[str] = None,
    pipeline: Optional[str] = None,
    scale: float = 1.0,
    wall: float = 10.0,
) -> RunRecord:
    run = RunRecord(
        uuid=uuid,
        started_at=started,
        finished_at=started + wall,
        wall_s=wall,
        collect_s=0.5,
        git_commit="c0ffee",
        git_branch="main",
        git_dirty=False,
        python="3.12.1",
        platform="linux-x86_64",
        exit_status=1,
        args=["tests"],
        rootdir="/ci/project",
        shard=shard,
        pipeline=pipeline,
    )
    for nodeid in nodeids:
        outcome, seconds = SUITE[nodeid]
        run.tests[nodeid] = TestRecord(nodeid, outcome, 0.01, seconds * scale, 0.0)
    run.fixtures = [FixtureExecution(SESSION_DB, 0.3, nodeids[0], teardown_s=0.1)]
    run.uses = {n: [SESSION_DB] for n in nodeids}
    run.worker_records = [WorkerRecord("main", 0.5, len(nodeids))]
    return run


def shard_of(index: int, total: int = 3) -> list[str]:
    return [n for i, n in enumerate(NODEIDS) if i % total == index - 1]


def write_history(path: Path, *runs: RunRecord, keep_runs: int = 50) -> Path:
    with Store(path) as store:
        for run in runs:
            store.record_run(run, keep_runs=keep_runs)
    return path


@pytest.fixture
def shard_histories(tmp_path: Path) -> list[Path]:
    """Three CI shards that each restored the same base history and recorded one shard run."""
    base = write_history(tmp_path / "base.db", make_run("base", 1000.0, NODEIDS, scale=2.0))
    paths = []
    for k in (1, 2, 3):
        path = tmp_path / f"shard{k}.db"
        shutil.copy(base, path)
        write_history(
            path,
            make_run(f"s{k}", 2000.0 + k, shard_of(k), shard=f"{k}/3", pipeline="ci:7", wall=3 + k),
        )
        paths.append(path)
    return paths


def table_dump(path: Path) -> dict[str, list[Any]]:
    con = sqlite3.connect(path)
    try:
        return {
            table: sorted(map(repr, con.execute(f"SELECT * FROM {table}")))  # noqa: S608
            for table in (
                "runs",
                "run_index",
                "run_parts",
                "results",
                "fixture_runs",
                "run_workers",
                "test_stats",
                "fixture_stats",
                "test_fixtures",
            )
        }
    finally:
        con.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_three_shards_become_one_run_like_an_unsharded_one(
    tmp_path: Path, shard_histories: list[Path]
) -> None:
    out = tmp_path / "merged.db"
    summary = merge_histories(shard_histories, out)
    assert (summary.runs_added, summary.shards_folded, summary.merged_runs) == (1, 3, 1)
    assert summary.already_present == 2  # the base run, in the second and third shard

    unsharded = write_history(tmp_path / "one.db", make_run("one", 2001.0, NODEIDS))
    with Store.open_existing(out) as merged, Store.open_existing(unsharded) as single:
        runs = merged.reads.runs()
        assert [r["uuid"] for r in runs] == [
            merged_run_uuid("ci:7", "c0ffee", 3, "3.12.1", "linux-x86_64"),
            "base",
        ]
        pipeline_run = runs[0]
        assert pipeline_run["shard"] is None  # all three shards present
        assert pipeline_run["pipeline"] == "ci:7"
        assert pipeline_run["wall_s"] == 6.0  # the slowest shard
        assert pipeline_run["started_at"] == 2001.0
        assert pipeline_run["finished_at"] == 2009.0
        assert (pipeline_run["tests"], pipeline_run["failed"]) == (12, 2)
        expected = single.reads.results(single.reads.runs()[0]["id"])
        got = merged.reads.results(pipeline_run["id"])
        assert [(r["nodeid"], r["outcome"], r["call_s"]) for r in got] == [
            (r["nodeid"], r["outcome"], r["call_s"]) for r in expected
        ]
        assert {r["worker"] for r in got} == {"s1", "s2", "s3"}
        # The session fixture ran once per shard.
        assert len(merged.reads.fixture_executions(pipeline_run["id"])) == 3
        estimates = merged.reads.load_estimates()
        # Two samples per test: the base run (twice as slow) and the pipeline run.
        for nodeid in NODEIDS:
            assert estimates.tests[nodeid].runs == 2
            assert estimates.duration(nodeid) == pytest.approx(0.01 + SUITE[nodeid][1] * 1.5)
        (fixture,) = estimates.fixtures
        assert fixture.used_by == 12
        assert fixture.executions_per_run == 2  # median of 1 (base) and 3 (pipeline)


def test_merging_twice_adds_nothing(tmp_path: Path, shard_histories: list[Path]) -> None:
    out = tmp_path / "merged.db"
    merge_histories(shard_histories, out)
    before = table_dump(out)
    again = merge_histories(shard_histories, out)
    assert (again.runs_added, again.shards_folded, again.merged_runs) == (0, 0, 0)
    assert again.tests_updated == 0
    assert table_dump(out) == before
    # A merged history merged into another, twice, gives the same file as merging once.
    copy = tmp_path / "copy.db"
    merge_histories([out], copy)
    merge_histories([out], copy)
    assert table_dump(copy) == before


def test_inputs_are_never_written(tmp_path: Path, shard_histories: list[Path]) -> None:
    digests = [digest(p) for p in shard_histories]
    merge_histories(shard_histories, tmp_path / "merged.db")
    assert [digest(p) for p in shard_histories] == digests


def test_merge_order_and_steps_do_not_matter(tmp_path: Path, shard_histories: list[Path]) -> None:
    at_once = tmp_path / "at_once.db"
    merge_histories(shard_histories, at_once)
    stepwise = tmp_path / "stepwise.db"
    merge_histories([shard_histories[2]], stepwise)
    with Store.open_existing(stepwise) as store:
        assert store.reads.runs()[0]["shard"] == "3/3"  # one of three shards so far
    merge_histories([shard_histories[0]], stepwise)
    with Store.open_existing(stepwise) as store:
        assert store.reads.runs()[0]["shard"] == "1,3/3"
    merge_histories([shard_histories[1]], stepwise)
    dump = table_dump(stepwise)
    expected = table_dump(at_once)
    for table in ("runs", "run_parts", "results", "test_stats", "fixture_stats", "test_fixtures"):
        # Ids are allocated in a different order; compare what the ids point at.
        assert len(dump[table]) == len(expected[table]), table
    with Store.open_existing(stepwise) as a, Store.open_existing(at_once) as b:
        assert a.reads.load_estimates().tests == b.reads.load_estimates().tests
        assert a.reads.results(a.reads.runs()[0]["id"]) == b.reads.results(b.reads.runs()[0]["id"])


def test_merge_into_an_existing_history(tmp_path: Path, shard_histories: list[Path]) -> None:
    out = write_history(
        tmp_path / "main.db",
        make_run("older", 500.0, NODEIDS, scale=3.0),
        make_run("newer", 3000.0, NODEIDS, scale=1.0),
    )
    merge_histories(shard_histories, out)
    with Store.open_existing(out) as store:
        assert store.reads.runs()[0]["uuid"] == "newer"
        assert store.reads.run_count() == 4  # older, base, the pipeline run, newer
        samples = store.reads.recent_samples(["tests/test_a.py::test_0"])["tests/test_a.py::test_0"]
        # Sorted by start time whichever file they came from: 3x (older), 2x (base), 1x, 1x.
        assert [round(s.call_s, 3) for s in samples] == [0.3, 0.2, 0.1, 0.1]
        estimates = store.reads.load_estimates()
        assert estimates.tests["tests/test_a.py::test_0"].runs == 4
        assert estimates.tests["tests/test_a.py::test_0"].last_outcome == "passed"
        assert estimates.duration("tests/test_a.py::test_0") == pytest.approx(0.01 + 0.15)


def test_samples_of_pruned_runs_keep_their_identity(tmp_path: Path) -> None:
    runs = [make_run(f"r{i}", 100.0 * i, NODEIDS[:2], scale=1 + i) for i in range(5)]
    first = write_history(tmp_path / "first.db", *runs[:4], keep_runs=2)
    # A second machine restored an older copy (runs 0-2) and recorded run 4.
    second = write_history(tmp_path / "second.db", *runs[:3], runs[4], keep_runs=2)
    out = tmp_path / "out.db"
    summary = merge_histories([first, second], out)
    assert summary.samples_dropped == 0
    with Store.open_existing(out) as store:
        samples = store.reads.recent_samples([NODEIDS[0]])[NODEIDS[0]]
        # Every run once, oldest first, though most runs' details are gone from both inputs.
        assert [round(s.call_s, 3) for s in samples] == [0.1, 0.2, 0.3, 0.4, 0.5]
        assert store.reads.load_estimates().tests[NODEIDS[0]].runs == 5
        assert [r["uuid"] for r in store.reads.runs()] == ["r4", "r3", "r2"]
    before = table_dump(out)
    merge_histories([second, first], out)
    assert table_dump(out) == before


def test_a_retried_shard_replaces_the_earlier_attempt(tmp_path: Path) -> None:
    first = make_run("s2a", 100.0, shard_of(2), shard="2/3", pipeline="ci:9", wall=5.0)
    retry = make_run("s2b", 200.0, shard_of(2), shard="2/3", pipeline="ci:9", scale=2.0, wall=4.0)
    for test in retry.tests.values():
        test.outcome = "passed"
    one = write_history(
        tmp_path / "one.db", make_run("s1", 100.0, shard_of(1), shard="1/3", pipeline="ci:9")
    )
    two = write_history(tmp_path / "two.db", first)
    three = write_history(tmp_path / "three.db", retry)
    for order in ([one, two, three], [three, two, one]):
        out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}.db"
        merge_histories(order, out)
        with Store.open_existing(out) as store:
            (run,) = store.reads.runs()
            assert run["shard"] == "1,2/3"
            results = {r["nodeid"]: r for r in store.reads.results(run["id"])}
            assert set(results) == set(shard_of(1) + shard_of(2))
            assert all(results[n]["outcome"] == "passed" for n in shard_of(2))
            assert run["wall_s"] == 10.0  # shard 1; the replaced attempt's 5 s no longer counts
            samples = store.reads.recent_samples([shard_of(2)[0]])[shard_of(2)[0]]
            assert len(samples) == 1


def test_shard_runs_without_a_pipeline_id_stay_separate(tmp_path: Path) -> None:
    a = write_history(tmp_path / "a.db", make_run("a", 1.0, shard_of(1), shard="1/3"))
    b = write_history(tmp_path / "b.db", make_run("b", 2.0, shard_of(2), shard="2/3"))
    out = tmp_path / "out.db"
    summary = merge_histories([a, b], out)
    assert (summary.runs_added, summary.shards_folded) == (2, 0)


def test_a_shard_run_recorded_in_the_output_joins_its_pipeline(tmp_path: Path) -> None:
    out = write_history(
        tmp_path / "out.db", make_run("s1", 1.0, shard_of(1, 2), shard="1/2", pipeline="p")
    )
    other = write_history(
        tmp_path / "b.db", make_run("s2", 2.0, shard_of(2, 2), shard="2/2", pipeline="p")
    )
    merge_histories([other], out)
    with Store.open_existing(out) as store:
        (run,) = store.reads.runs()
        assert run["shard"] is None
        assert len(store.reads.results(run["id"])) == len(NODEIDS)
        assert all(store.reads.load_estimates().tests[n].runs == 1 for n in NODEIDS)


def test_an_older_schema_merges_without_being_migrated(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    shutil.copyfile(DATA / "history-v1.db", old)  # the released schema 1
    nodeid = "test_more.py::test_slow"
    con = sqlite3.connect(old)
    test_id, runs, recent = con.execute(
        "SELECT s.test_id, s.runs, s.recent FROM test_stats s JOIN tests t ON t.id = s.test_id"
        " WHERE t.nodeid = ?",
        (nodeid,),
    ).fetchone()
    samples = json.loads(recent)
    calls = [sample[4] for sample in samples]
    # A sample of a run that no history knows any more, and a corrupt one (skipped).
    samples[:0] = [[997, "passed", 0.4, 0, 0.4, 0, None], [998, "passed", "bad", 0, 0, 0, None]]
    con.execute(
        "UPDATE test_stats SET runs = ?, recent = ? WHERE test_id = ?",
        (runs + 2, json.dumps(samples), test_id),
    )
    con.commit()
    con.close()
    before = digest(old)
    out = tmp_path / "out.db"
    summary = merge_histories([old], out)
    assert digest(old) == before
    assert summary.runs_added == 2
    assert summary.samples_dropped == 1  # run 997's details are gone and no index knows it
    with Store.open_existing(out) as store:
        assert store.reads.load_estimates().tests[nodeid].runs == runs + 2
        assert [s.call_s for s in store.reads.recent_samples([nodeid])[nodeid]] == calls
        con = sqlite3.connect(old)
        try:  # closed: Python 3.13 warns about a connection left to the collector
            uuids = {r[0] for r in con.execute("SELECT uuid FROM runs")}
        finally:
            con.close()
        assert {r["uuid"] for r in store.reads.runs()} == uuids


def test_merging_leaves_no_files_beside_its_inputs(tmp_path: Path) -> None:
    inputs = [
        write_history(tmp_path / "a.db", make_run("a", 1.0, NODEIDS)),
        write_history(tmp_path / "b.db", make_run("b", 2.0, NODEIDS)),
        tmp_path / "v1.db",
    ]
    shutil.copyfile(DATA / "history-v1.db", inputs[2])
    before = sorted(p.name for p in tmp_path.iterdir())
    digests = [digest(p) for p in inputs]
    assert main(["merge", *map(str, inputs), "-o", str(tmp_path / "out" / "merged.db")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "out"])  # no -wal/-shm
    assert [digest(p) for p in inputs] == digests


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    new = write_history(tmp_path / "new.db")
    con = sqlite3.connect(new)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(HistoryError, match=r"newer pytest-feedback .* upgrade"):
        merge_histories([new], tmp_path / "out.db")
    assert not (tmp_path / "out.db").exists()


def test_command_line(
    tmp_path: Path, shard_histories: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "merged.db"
    assert main(["merge", *map(str, shard_histories), "-o", str(out)]) == 0
    assert capsys.readouterr().out == (
        f"merged 3 histories into {out}: 1 run added, 3 shard runs folded into 1 pipeline run,"
        " 2 already present; 12 tests updated\n"
    )
    assert main(["merge", str(out), str(tmp_path / "missing.db"), "-o", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"pytest-feedback: error: no history at {tmp_path / 'missing.db'}; "
        "pass the history files to merge",
    ]
    (tmp_path / "junk.db").write_text("not a database" * 100)
    assert main(["merge", str(tmp_path / "junk.db"), "-o", str(out)]) == 1
    assert "not a readable pytest-feedback history" in capsys.readouterr().err


def test_pipeline_ids_from_ci_variables() -> None:
    assert pipeline_id({}) is None
    assert pipeline_id({"GITHUB_RUN_ID": "42", "GITHUB_REPOSITORY": "o/r"}) == "github:o/r/42"
    assert pipeline_id({"CI_PIPELINE_ID": "7"}) == "gitlab:7"
    assert pipeline_id({"BUILDKITE_BUILD_ID": "b-1"}) == "buildkite:b-1"
    assert pipeline_id({"CIRCLE_WORKFLOW_ID": "w"}) == "circleci:w"
    assert pipeline_id({"PYTEST_FEEDBACK_PIPELINE": "mine", "GITHUB_RUN_ID": "42"}) == "mine"


def test_the_recorder_records_the_pipeline(
    pytester: pytest.Pytester, history: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in (
        "GITHUB_RUN_ID",
        "CI_PIPELINE_ID",
        "BUILDKITE_BUILD_ID",
        "CIRCLE_WORKFLOW_ID",
        "BUILD_BUILDID",
        "TRAVIS_BUILD_ID",
        "BUILD_TAG",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PYTEST_FEEDBACK_PIPELINE", "local-7")
    pytester.makepyfile(test_x="def test_x(): pass")
    pytester.runpytest("--feedback", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    with Store.open_existing(history) as store:
        assert store.reads.runs()[0]["pipeline"] == "local-7"


def test_a_merged_history_merged_into_one_shards_history(
    tmp_path: Path, shard_histories: list[Path]
) -> None:
    merged = tmp_path / "merged.db"
    merge_histories(shard_histories, merged)
    first = shard_histories[0]  # holds shard 1 as a run of its own
    summary = merge_histories([merged], first)
    assert (summary.shards_folded, summary.merged_runs) == (3, 1)
    with Store.open_existing(first) as a, Store.open_existing(merged) as b:
        assert [r["uuid"] for r in a.reads.runs()] == [r["uuid"] for r in b.reads.runs()]
        assert a.reads.results(a.reads.runs()[0]["id"]) == b.reads.results(b.reads.runs()[0]["id"])
        assert a.reads.load_estimates().tests == b.reads.load_estimates().tests
    assert merge_histories([merged], first).tests_updated == 0


def test_recorded_shard_histories_merge_like_an_unsharded_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def server():
            yield "server"
        """
    )
    pytester.makepyfile(
        test_a="def test_1(server): pass\ndef test_2(): assert False\n",
        test_b="import pytest\n"
        "@pytest.mark.parametrize('n', [1, 2, 3])\n"
        "def test_3(n, server): pass\n",
        test_c="import pytest\n@pytest.mark.skip\ndef test_4(): pass\ndef test_5(): pass\n",
    )
    base = ["-p", "no:cacheprovider", "--feedback"]
    pytester.runpytest(*base, "--feedback-db=whole.db")
    monkeypatch.setenv("PYTEST_FEEDBACK_PIPELINE", "e2e-1")
    # Shard 2 runs under xdist: one worker gives its results worker labels as two would.
    shards = {1: ["test_a.py"], 2: ["test_b.py", "-n", "1"], 3: ["test_c.py"]}
    for k, args in shards.items():
        pytester.runpytest(*base, f"--feedback-db=shard{k}.db", *args)
        # What `--feedback-shard K/3` records.
        con = sqlite3.connect(pytester.path / f"shard{k}.db")
        con.execute("UPDATE runs SET shard = ?", (f"{k}/3",))
        con.commit()
        con.close()
    out = pytester.path / "merged.db"
    summary = merge_histories([pytester.path / f"shard{k}.db" for k in shards], out)
    assert (summary.shards_folded, summary.merged_runs) == (3, 1)
    with (
        Store.open_existing(out) as merged,
        Store.open_existing(pytester.path / "whole.db") as whole,
    ):
        (run,) = merged.reads.runs()
        assert (run["pipeline"], run["shard"], run["tests"], run["failed"]) == ("e2e-1", None, 7, 1)
        got = merged.reads.results(run["id"])
        expected = whole.reads.results(whole.reads.runs()[0]["id"])
        assert [(r["nodeid"], r["outcome"]) for r in got] == [
            (r["nodeid"], r["outcome"]) for r in expected
        ]
        workers = {r["nodeid"].split("::")[0]: r["worker"].split("/")[0] for r in got}
        assert workers == {"test_a.py": "s1", "test_b.py": "s2", "test_c.py": "s3"}
        assert {r["worker"] for r in got if r["nodeid"].startswith("test_b")} <= {
            "s2/gw0",
            "s2/gw1",
        }
        server = [f for f in merged.reads.fixture_executions(run["id"]) if f["name"] == "server"]
        assert 2 <= len(server) <= 3  # once in shard 1, once per xdist worker that needed it
        assert set(merged.reads.load_estimates().tests) == {r["nodeid"] for r in expected}
