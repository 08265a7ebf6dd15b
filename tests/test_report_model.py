"""The report's data from constructed histories: slow-downs, flaky tests, this run's figures."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pytest_feedback.history.estimates import Estimates
from pytest_feedback.history.records import FixtureExecution, FixtureKey, RunRecord, TestRecord
from pytest_feedback.history.store import Store
from pytest_feedback.history.summaries import SLOWDOWN_RATIO, Sample, summarise_test
from pytest_feedback.report.hints import planner_hint
from pytest_feedback.report.model import Report, build_report


def record(
    store: Store,
    index: int,
    tests: dict[str, float],
    *,
    outcomes: dict[str, str] | None = None,
    workers: int = 0,
    wall_s: float = 10.0,
) -> None:
    run = RunRecord(
        uuid=f"run-{index}",
        started_at=1_700_000_000.0 + index * 60,
        finished_at=1_700_000_000.0 + index * 60 + wall_s,
        wall_s=wall_s,
        workers=workers,
    )
    for nodeid, seconds in tests.items():
        outcome = (outcomes or {}).get(nodeid, "passed")
        run.tests[nodeid] = TestRecord(nodeid, outcome, 0.1 * seconds, 0.8 * seconds, 0.1 * seconds)
    store.record_run(run)


def report_after(tmp_path: Path, history: list[dict[str, float]], **kwargs: object) -> Report:
    with Store(tmp_path / "h.db") as store:
        for index, tests in enumerate(history):
            record(store, index, tests, **kwargs)  # type: ignore[arg-type]
        return build_report(store)


def noisy(rnd: random.Random, seconds: float) -> float:
    return seconds * rnd.uniform(0.8, 1.2)


def test_three_times_slower_is_flagged_within_three_runs(tmp_path: Path) -> None:
    rnd = random.Random(3)
    steady = [{"t.py::slow": noisy(rnd, 1.0), "t.py::same": noisy(rnd, 1.0)} for _ in range(6)]
    flagged_after = None
    with Store(tmp_path / "h.db") as store:
        for index, tests in enumerate(steady):
            record(store, index, tests)
        assert build_report(store).slowed_down == []
        for extra in range(1, 4):
            record(store, 10 + extra, {"t.py::slow": noisy(rnd, 3.0), "t.py::same": noisy(rnd, 1)})
            report = build_report(store)
            if report.slowed_down and flagged_after is None:
                flagged_after = extra
        (row,) = report.slowed_down
    # One slow run is not enough (it may be a busy machine); the second flags it.
    assert flagged_after == 2
    assert row.nodeid == "t.py::slow"
    assert row.estimate.slowdown >= SLOWDOWN_RATIO
    assert row.before_s == pytest.approx(1.0, rel=0.2)
    assert row.recent_s == pytest.approx(3.0, rel=0.2)
    assert len(row.trend) == 9


def test_one_slow_run_is_not_a_slow_down() -> None:
    samples = [Sample(i, "passed", 1.0, 0, 1.0, 0) for i in range(8)]
    samples.append(Sample(9, "passed", 3.0, 0, 3.0, 0))
    assert summarise_test(samples).slowdown < SLOWDOWN_RATIO


@pytest.mark.parametrize("seed", range(20))
def test_twenty_percent_noise_never_flags(seed: int) -> None:
    rnd = random.Random(seed)
    base = rnd.choice([0.06, 0.3, 1.0, 12.0])
    samples: list[Sample] = []
    for run in range(60):
        seconds = noisy(rnd, base)
        samples = [*samples, Sample(run, "passed", seconds, 0, seconds, 0)][-20:]
        assert not summarise_test(samples).slowdown >= SLOWDOWN_RATIO, (run, samples)


def test_worst_case_noise_does_not_flag() -> None:
    """All earlier runs 20% fast, the recent ones 20% slow: a ratio of 1.5, still noise."""
    samples = [Sample(i, "passed", 0.8, 0, 0.8, 0) for i in range(10)]
    samples += [Sample(10 + i, "passed", 1.2, 0, 1.2, 0) for i in range(3)]
    assert summarise_test(samples).slowdown == pytest.approx(1.5)
    assert summarise_test(samples).slowdown < SLOWDOWN_RATIO


def test_noisy_history_in_the_store_flags_nothing(tmp_path: Path) -> None:
    rnd = random.Random(7)
    history = [{f"t.py::t{i}": noisy(rnd, 0.2 * (i + 1)) for i in range(20)} for _ in range(25)]
    report = report_after(tmp_path, history)
    assert report.slowed_down == []
    assert report.flaky == []


def test_a_test_flipping_every_run_without_evidence_is_unstable_not_flaky(
    tmp_path: Path,
) -> None:
    with Store(tmp_path / "h.db") as store:
        seen = []
        for index in range(4):
            outcome = "failed" if index % 2 else "passed"
            record(
                store,
                index,
                {"t.py::flip": 0.1, "t.py::ok": 0.1, "t.py::broken": 0.1},
                outcomes={"t.py::flip": outcome, "t.py::broken": "failed"},
            )
            report = build_report(store)
            assert report.flakiness is not None
            seen.append(([row.nodeid for row in report.flaky], report.flakiness.unstable))
    assert seen == [([], []), ([], []), ([], []), ([], ["t.py::flip"])]


def test_fixed_once_is_not_flaky(tmp_path: Path) -> None:
    outcomes = ["failed", "failed", "passed", "passed", "passed"]
    with Store(tmp_path / "h.db") as store:
        for index, outcome in enumerate(outcomes):
            record(store, index, {"t.py::a": 0.1}, outcomes={"t.py::a": outcome})
        report = build_report(store)
    assert report.flaky == []
    assert report.tests[0].fail_rate == pytest.approx(0.4)


def test_last_run_figures_and_tables(tmp_path: Path) -> None:
    key = FixtureKey("db", "session", "conftest.py::db")
    with Store(tmp_path / "h.db") as store:
        record(store, 0, {"a.py::x": 1.0, "a.py::y": 3.0, "b.py::z": 2.0, "c.py::gone": 0.5})
        run = RunRecord(uuid="last", started_at=1_800_000_000.0, wall_s=4.0, workers=2)
        run.tests = {
            "a.py::x": TestRecord("a.py::x", "passed", 0.5, 1.0, 0.0, fixture_overhead_s=0.5),
            "b.py::z": TestRecord("b.py::z", "failed", 0.0, 2.0, 0.5),
        }
        run.fixtures = [FixtureExecution(key, 0.5, "a.py::x", teardown_s=0.25)]
        run.uses = {"a.py::x": [key], "b.py::z": [key]}
        store.record_run(run)
        report = build_report(store, top=2, run_uuid="last")
        first = build_report(store, run_uuid="run-0")
    assert report.runs == 2
    last = report.last_run
    assert last is not None
    assert (last.tests, last.failed, last.workers, last.wall_s) == (2, 1, 2, 4.0)
    assert last.test_time_s == pytest.approx(4.0)
    assert last.efficiency == pytest.approx(4.0 / (4.0 * 2))
    assert [r.nodeid for r in report.slowest] == ["a.py::y", "b.py::z"]
    assert report.slowest[0].last_s is None  # not run in the last run
    assert report.slowest[1].last_s == pytest.approx(2.5)
    assert report.slowest[1].last == (0.0, 2.0, 0.5)
    assert report.slowest[1].outcomes == ".F"
    assert [f.file for f in report.files] == ["a.py", "b.py", "c.py"]
    assert report.test_count == 4
    assert report.files[0].tests == 2
    assert report.files[0].share == pytest.approx(4.0 / sum(f.estimate_s for f in report.files))
    (fixture,) = report.fixtures
    assert (fixture.name, fixture.used_by, fixture.cost_s) == ("db", 2, 0.75)
    assert (
        report.hint
        == "2 shards: the slowest takes 4.00s instead of 7.50s on one (`pytest-feedback shards 2`)"
    )
    assert first.last_run is not None
    assert first.last_run.tests == 4


def test_empty_history(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        report = build_report(store)
    assert report.last_run is None
    assert report.tests == report.slowest == report.fixtures == report.files == []


def test_planner_hints_are_joined_on_one_line(tmp_path: Path) -> None:
    def shards(estimates: Estimates, workers: int | None) -> str:
        return f"{len(estimates.tests)} tests in 4 shards"

    with Store(tmp_path / "h.db") as store:
        record(store, 0, {"a.py::x": 1.0})
        providers = [shards, lambda e, w: None, lambda e, w: "fast\nsubset: 20s"]
        assert planner_hint(store, 0, providers) == "1 tests in 4 shards · fast subset: 20s"
        assert planner_hint(store, 0, []) == ""
        assert build_report(store).hint == ""  # no planner registered yet


def test_deleted_tests_leave_the_report_with_their_last_run(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        record(store, 0, {"a.py::gone": 5.0, "a.py::kept": 1.0})
        for index in range(1, 4):
            record(store, index, {"a.py::kept": 1.0})
        assert [t.nodeid for t in build_report(store).tests] == ["a.py::gone", "a.py::kept"]
        store.record_run(
            RunRecord(uuid="pruning", started_at=1_800_000_000.0, wall_s=1.0), keep_runs=3
        )
        report = build_report(store)
    assert [t.nodeid for t in report.tests] == ["a.py::kept"]
    assert report.test_count == 1
