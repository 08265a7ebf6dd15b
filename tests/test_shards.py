"""Shard planning as pure units: the cost model, the planners, the curve."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from pytest_feedback.ci import parse_shard
from pytest_feedback.errors import ConfigError
from pytest_feedback.history.estimates import Estimates, FixtureEstimate, TestEstimate
from pytest_feedback.history.records import (
    FixtureExecution,
    FixtureKey,
    RunRecord,
    TestRecord,
    WorkerRecord,
)
from pytest_feedback.history.store import Store
from pytest_feedback.planning.planners import PLANNERS, Workload
from pytest_feedback.planning.shards import plan_shards, shard_filter, worker_curve
from pytest_feedback.planning.timings import process_timings, timings_line


def make_estimates(
    durations: Mapping[str, float],
    fixtures: Sequence[tuple[str, str, float]] = (),
    uses: Mapping[str, Sequence[str]] | None = None,
    startup_s: float = 0.0,
) -> Estimates:
    """Estimates from test seconds, fixtures ``(name, scope, cost)`` and who uses which."""
    tests = {
        n: TestEstimate(n, s, 0.0, s, 0.0, 3, 0.0, False, 1.0, "passed")
        for n, s in durations.items()
    }
    fixture_list = [
        FixtureEstimate(name, scope, f"conftest.py::{name}", cost, 0.0, 1, 0)
        for name, scope, cost in fixtures
    ]
    index = {f.name: i for i, f in enumerate(fixture_list)}
    used = {n: [index[f] for f in names] for n, names in (uses or {}).items()}
    return Estimates(tests, fixture_list, used, startup_s)


def check_partition(plan_tests: Sequence[Sequence[str]], nodeids: Sequence[str]) -> None:
    seen = [n for shard in plan_tests for n in shard]
    assert len(seen) == len(set(seen)), "shards overlap"
    assert set(seen) == set(nodeids), "shards do not cover the tests"


def test_parse_shard() -> None:
    assert parse_shard("2/4") == (2, 4)
    assert parse_shard(" 1 / 1 ") == (1, 1)
    for bad in ("0/4", "5/4", "a/b", "2", "2/0", "-1/4", ""):
        with pytest.raises(ConfigError, match=r"--feedback-shard: .* expected K/N"):
            parse_shard(bad)


def test_fixture_families_stay_together_and_the_plan_meets_the_bound() -> None:
    # Four modules, each with a 2 s module fixture and ten 0.1 s tests: one module per shard.
    durations = {f"test_m{m}.py::test_{i}": 0.1 for m in range(4) for i in range(10)}
    uses = {n: ["db"] for n in durations}
    est = make_estimates(durations, [("db", "module", 2.0)], uses, startup_s=0.5)
    plan = plan_shards(est, durations, 4)
    check_partition([s.tests for s in plan.shards], list(durations))
    for shard in plan.shards:
        assert len({n.split("::")[0] for n in shard.tests}) == 1
        assert shard.estimate_s == pytest.approx(0.5 + 2.0 + 1.0)
    assert plan.lower_bound_s == pytest.approx(3.5)
    assert plan.makespan_s == pytest.approx(plan.lower_bound_s)


def test_a_family_is_split_when_that_pays_for_the_duplicated_setup() -> None:
    # One module of 40 x 1 s tests with a 0.5 s fixture: splitting it four ways pays.
    durations = {f"test_big.py::test_{i:02}": 1.0 for i in range(40)}
    est = make_estimates(durations, [("cheap", "module", 0.5)], {n: ["cheap"] for n in durations})
    plan = plan_shards(est, durations, 4)
    assert [len(s.tests) for s in plan.shards] == [10, 10, 10, 10]
    assert plan.makespan_s == pytest.approx(10.5)


def test_a_costly_family_is_not_split_when_the_setup_outweighs_the_gain() -> None:
    durations = {f"test_a.py::test_{i}": 0.2 for i in range(10)}
    durations["test_b.py::test_x"] = 5.0
    est = make_estimates(
        durations,
        [("warehouse", "module", 5.0)],
        {n: ["warehouse"] for n in durations if "_a" in n},
    )
    plan = plan_shards(est, durations, 2)
    by_file = [{n.split("::")[0] for n in s.tests} for s in plan.shards]
    assert sorted(map(sorted, by_file)) == [["test_a.py"], ["test_b.py"]]


def test_session_fixture_is_paid_per_shard() -> None:
    durations = {f"test_{i}.py::test": 1.0 for i in range(4)}
    est = make_estimates(
        durations, [("server", "session", 3.0)], {n: ["server"] for n in durations}
    )
    work = Workload.build(est, durations)
    assert len(work.families) == 4  # a session fixture does not glue tests together
    assert work.cost(range(4)) == pytest.approx(7.0)
    two = plan_shards(est, durations, 2)
    assert two.makespan_s == pytest.approx(5.0)
    # Each shard that runs a test pays the server: 4 s of tests and at least two servers on two
    # shards cannot end before 5 s (the plain bound, one test and the server, said 4 s).
    assert two.lower_bound_s == pytest.approx(5.0)
    assert two.makespan_s >= two.lower_bound_s - 1e-9


@pytest.mark.parametrize("planner", sorted(PLANNERS))
def test_plans_do_not_depend_on_collection_order(planner: str) -> None:
    rng = random.Random(7)
    durations = {
        f"test_{i % 9}.py::test_{i}": rng.choice([0.01, 0.1, 0.5, 2.0]) for i in range(200)
    }
    fixtures = [("f0", "module", 1.5), ("f1", "class", 0.7), ("f2", "session", 2.0)]
    uses = {n: [rng.choice(["f0", "f1", "f2"])] for n in durations}
    est = make_estimates(durations, fixtures, uses, startup_s=0.3)
    nodeids = list(durations)
    first = plan_shards(est, nodeids, 5, planner)
    rng.shuffle(nodeids)
    again = plan_shards(est, nodeids, 5, planner)
    assert first == again
    check_partition([s.tests for s in first.shards], nodeids)
    assert first.makespan_s >= first.lower_bound_s - 1e-9


def test_local_search_improves_on_lpt() -> None:
    # The classic case LPT gets wrong: 3,3,2,2,2 on two shards (LPT 7, optimum 6).
    durations = {f"t{i}.py::t": s for i, s in enumerate([3, 3, 2, 2, 2])}
    est = make_estimates(durations)
    assert plan_shards(est, durations, 2, "lpt").makespan_s == pytest.approx(7)
    assert plan_shards(est, durations, 2).makespan_s == pytest.approx(6)


def test_no_empty_shard_while_there_are_enough_tests() -> None:
    # One family holds everything expensive; other shards still get a test each.
    durations = {f"test_a.py::test_{i}": 0.1 for i in range(6)}
    est = make_estimates(durations, [("big", "module", 50.0)], {n: ["big"] for n in durations})
    plan = plan_shards(est, durations, 4)
    assert all(s.tests for s in plan.shards)
    check_partition([s.tests for s in plan.shards], list(durations))
    fewer = plan_shards(est, list(durations)[:2], 4)
    assert sum(1 for s in fewer.shards if s.tests) == 2


def test_without_history_tests_are_spread_evenly() -> None:
    nodeids = [f"test_{i}.py::test" for i in range(10)]
    plan = plan_shards(Estimates({}), nodeids, 3)
    assert sorted(len(s.tests) for s in plan.shards) == [3, 3, 4]
    check_partition([s.tests for s in plan.shards], nodeids)


def test_unknown_tests_take_their_files_estimate() -> None:
    est = make_estimates({"test_a.py::test_1": 4.0, "test_b.py::test_1": 1.0})
    plan = plan_shards(est, ["test_a.py::test_2", "test_a.py::test_1", "test_b.py::test_1"], 2)
    assert plan.makespan_s == pytest.approx(5.0)


def test_worker_curve() -> None:
    durations = {f"t{i}.py::t": 1.0 for i in range(8)}
    durations["slow.py::t"] = 4.0
    est = make_estimates(durations, startup_s=0.5)
    advice = worker_curve(est, durations, target_s=5.0, max_workers=6)
    spans = [p.makespan_s for p in advice.curve]
    assert spans[0] == pytest.approx(12.5)
    assert spans[2] == pytest.approx(4.5)  # 4 | 4x1 | 4x1
    assert advice.recommended == 3
    assert advice.stops_paying == 3  # four processes cannot beat the 4 s test
    doc = advice.to_json()
    assert doc["version"] == 1
    assert doc["curve"][0] == {"workers": 1, "makespan_s": 12.5, "lower_bound_s": 12.5}  # type: ignore[index]


def test_plan_json_shape() -> None:
    est = make_estimates({"a.py::t": 1.0, "b.py::t": 2.0})
    doc = plan_shards(est, ["a.py::t", "b.py::t"], 2).to_json()
    assert doc["version"] == 1
    assert doc["n"] == 2
    assert doc["shards"] == [
        {"index": 1, "estimate_s": 2.0, "tests": ["b.py::t"]},
        {"index": 2, "estimate_s": 1.0, "tests": ["a.py::t"]},
    ]


def test_shard_filter_keeps_the_item_order() -> None:
    items = [f"test_{i % 3}.py::test_{i}" for i in range(12)]
    est = make_estimates(dict.fromkeys(items, 1.0))
    kept = []
    for k in (1, 2, 3):
        keep, drop, plan = shard_filter(items, str, est, k, 3)
        assert keep == [i for i in items if i in keep]  # pytest's order, not the plan's
        assert sorted(keep + drop) == sorted(items)
        assert plan.n == 3
        kept.extend(keep)
    assert sorted(kept) == sorted(items)


def test_process_timings() -> None:
    run = RunRecord(uuid="u", started_at=0.0)
    key = FixtureKey("db", "module", "conftest.py::db")
    run.tests["a.py::t1"] = TestRecord("a.py::t1", setup_s=2.0, call_s=1.0, worker="gw0")
    run.tests["a.py::t2"] = TestRecord("a.py::t2", call_s=1.0, worker="gw0")
    run.tests["b.py::t"] = TestRecord("b.py::t", call_s=3.0, worker="gw1")
    run.fixtures.append(FixtureExecution(key, 2.0, "a.py::t1", "gw0", 0.5, None))
    run.worker_records += [WorkerRecord("gw0", 0.3), WorkerRecord("gw1", 0.2)]
    est = make_estimates(
        {"a.py::t1": 1.0, "a.py::t2": 1.0, "b.py::t": 2.5},
        [("db", "module", 2.5)],
        {"a.py::t1": ["db"], "a.py::t2": ["db"]},
        startup_s=0.25,
    )
    timings = process_timings(run, est)
    assert [(t.worker, t.tests) for t in timings] == [("gw0", 2), ("gw1", 1)]
    assert timings[0].measured_s == pytest.approx(0.3 + 4.0 + 0.5)
    assert timings[0].predicted_s == pytest.approx(0.25 + 2.0 + 2.5)
    assert timings[1].measured_s == pytest.approx(3.2)
    assert timings[1].predicted_s == pytest.approx(2.75)
    assert timings_line(timings) == (
        "feedback: predicted/measured per worker: gw0 4.75s/4.80s, gw1 2.75s/3.20s"
    )


def test_per_test_overhead_is_learnt_from_serial_runs(tmp_path: Path) -> None:
    run = RunRecord(uuid="serial", started_at=1.0, wall_s=10.0, collect_s=1.0)
    for i in range(5):
        run.tests[f"a.py::t{i}"] = TestRecord(f"a.py::t{i}", call_s=0.8)
    xdist = RunRecord(uuid="xdist", started_at=2.0, wall_s=100.0, collect_s=1.0, workers=2)
    xdist.tests["a.py::t0"] = TestRecord("a.py::t0", call_s=0.8, worker="gw0")
    with Store(tmp_path / "h.db") as store:
        store.record_run(run)
        store.record_run(xdist)
        est = store.reads.load_estimates()
    assert est.per_test_s == pytest.approx((10.0 - 1.0 - 4.0) / 5)
    work = Workload.build(est, ["a.py::t0"])
    assert work.own[0] == pytest.approx(0.8 + 1.0)
