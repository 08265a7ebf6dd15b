"""The budget planner: what fits, in which order, fixture-aware, never over the budget."""

from __future__ import annotations

import importlib.machinery
import os
import sys
import time
import types
from pathlib import Path

import pytest

from pytest_feedback.history.estimates import (
    PACE_LIMITS,
    Estimates,
    FixtureEstimate,
    TestEstimate,
    budget_pace,
)
from pytest_feedback.history.records import RunRecord, TestRecord, WorkerRecord
from pytest_feedback.history.store import Store
from pytest_feedback.planning.budget import BudgetPlan, Candidate, plan_budget, risk
from pytest_feedback.planning.pacer import Pacer
from pytest_feedback.session.budget import from_command_line


def estimates(
    durations: dict[str, float],
    fixtures: tuple[FixtureEstimate, ...] = (),
    uses: dict[str, list[int]] | None = None,
    startup_s: float = 0.0,
    session_end_s: float = 0.0,
    pace: float = 1.0,
) -> Estimates:
    tests = {
        n: TestEstimate(n, s, 0.0, s, 0.0, 5, 0.0, False, 1.0, "passed")
        for n, s in durations.items()
    }
    return Estimates(tests, fixtures, uses or {}, startup_s, session_end_s=session_end_s, pace=pace)


def test_everything_fits_a_generous_budget() -> None:
    est = estimates({"a.py::x": 1.0, "a.py::y": 2.0})
    plan = plan_budget([Candidate("a.py::x"), Candidate("a.py::y")], est, 60.0)
    assert set(plan.chosen) == {"a.py::x", "a.py::y"}
    assert plan.left_out == ()
    assert plan.predicted_s == pytest.approx(3.0)
    assert plan.summary_line() == "feedback: budget 1m: running all 2 tests (predicted 3.00s)"


def test_affected_tests_come_first_and_the_prediction_fits() -> None:
    durations = {f"t.py::test_{i}": 1.0 for i in range(10)}
    est = estimates(durations, startup_s=0.5)
    cands = [Candidate(n, affected=n.endswith(("_7", "_8"))) for n in durations]
    plan = plan_budget(cands, est, 4.0, affected_known=True)
    assert plan.chosen[:2] == ("t.py::test_7", "t.py::test_8")
    assert len(plan.chosen) == 3  # 0.5 s start-up + 3 x 1 s
    assert plan.predicted_s <= 4.0
    assert plan.left_out_s == pytest.approx(7.5)
    assert plan.summary_line() == (
        "feedback: budget 4s: running 3 of 10 tests (predicted 3.50s); 7 left out "
        "(predicted 7.50s) — run them in CI"
    )


def test_time_already_spent_replaces_the_estimated_start_up() -> None:
    # The history says collection takes 0.5 s; the run has measured 2.2 s since its process
    # started (interpreter, imports, conftests, collection): only 1.8 s of the 4 s remain.
    durations = {f"t.py::test_{i}": 1.0 for i in range(10)}
    est = estimates(durations, startup_s=0.5)
    plan = plan_budget([Candidate(n) for n in durations], est, 4.0, spent_s=2.2)
    assert len(plan.chosen) == 1
    assert plan.predicted_s == pytest.approx(3.2)
    parallel = plan_budget([Candidate(n) for n in durations], est, 4.0, 2, spent_s=2.2)
    assert parallel.predicted_s <= 4.0  # with workers, each worker's start-up is the estimate's
    assert len(parallel.chosen) == 6
    too_late = plan_budget([Candidate(n) for n in durations], est, 4.0, spent_s=4.5)
    assert too_late.chosen == ()
    assert too_late.predicted_s == pytest.approx(4.5)


def test_process_elapsed_counts_from_the_process_start() -> None:
    from pytest_feedback.session.budget import process_elapsed

    assert 0.0 < process_elapsed() < 24 * 3600


def test_risk_per_second_decides_among_the_rest() -> None:
    est = estimates({"a.py::slow_safe": 3.0, "a.py::quick": 1.0, "a.py::failed": 2.0})
    cands = [
        Candidate("a.py::slow_safe", runs=9),
        Candidate("a.py::quick", runs=9),
        Candidate("a.py::failed", runs=9, last_outcome="failed", fail_rate=0.2),
    ]
    plan = plan_budget(cands, est, 3.5)
    assert plan.chosen == ("a.py::failed", "a.py::quick")


def test_a_paid_fixture_makes_its_other_users_cheap() -> None:
    db = FixtureEstimate("db", "module", "conftest.py::db", 5.0, 0.0, 1.0, 4)
    durations = {"m.py::a": 0.1, "m.py::b": 0.1, "m.py::c": 0.1, "n.py::z": 2.0}
    uses = {n: [0] for n in ("m.py::a", "m.py::b", "m.py::c")}
    est = estimates(durations, (db,), uses)
    cands = [Candidate(n, runs=3) for n in durations]
    cands[0] = Candidate("m.py::a", runs=3, last_outcome="failed")
    plan = plan_budget(cands, est, 5.5)
    # a is worth its fixture; b and c then cost 0.1 s each and fit, z (2 s) does not.
    assert set(plan.chosen) == {"m.py::a", "m.py::b", "m.py::c"}
    assert plan.predicted_s == pytest.approx(5.3)


def test_tests_sharing_a_module_fixture_run_together() -> None:
    """A mixed order would make pytest set the fixture up again after every other test."""
    db = FixtureEstimate("db", "module", "conftest.py::db", 1.0, 0.0, 1.0, 4)
    durations = {"m.py::a": 0.1, "m.py::b": 0.1, "n.py::x": 0.05, "n.py::y": 0.3}
    est = estimates(durations, (db,), {"m.py::a": [0], "m.py::b": [0]})
    cands = [Candidate(n, runs=3) for n in durations]
    cands[0] = Candidate("m.py::a", runs=3, last_outcome="failed")  # the riskiest: first
    plan = plan_budget(cands, est, 100.0)
    # By risk per second alone x would run between a and b, and the fixture twice.
    assert plan.chosen[:2] == ("m.py::a", "m.py::b")
    assert plan.chosen[2:] == ("n.py::x", "n.py::y")


def _simulate(plan: BudgetPlan, took: dict[str, float], startup_s: float, end_rate: float) -> float:
    """A serial run of ``plan`` under its pacer: the clock advances by what each test really took
    (``took``, own time and fixtures), then the session end of the work that ran. Returns the wall
    time; the tests left are those the pacer did not let start."""
    pacer = plan.pacer
    assert pacer is not None
    clock, work = startup_s, 0.0
    for nodeid in plan.chosen:
        if pacer.fits(nodeid, plan.budget_s - clock):
            pacer.started(nodeid)
            clock += took[nodeid]
            work += took[nodeid]
    return clock + end_rate * work


def test_the_pacer_keeps_a_run_that_falls_behind_within_the_budget() -> None:
    db = FixtureEstimate("db", "module", "conftest.py::db", 1.0, 0.0, 1.0, 4)
    durations = {f"m.py::t{i}": 0.5 for i in range(4)} | {f"n.py::u{i}": 1.0 for i in range(8)}
    est = estimates(
        durations,
        (db,),
        {f"m.py::t{i}": [0] for i in range(4)},
        startup_s=0.5,
        session_end_s=2.0,  # over 11 s of suite work: a rate of 2/11
    )
    end_rate = 2.0 / 11.0
    plan = plan_budget([Candidate(n, runs=3) for n in durations], est, 12.0)
    # On schedule the pacer lets every chosen test start, and the run ends at the prediction.
    on_time = {n: durations[n] for n in plan.chosen}
    on_time[next(n for n in plan.chosen if n.startswith("m.py"))] += 1.0  # who sets the db up
    assert _simulate(plan, on_time, 0.5, end_rate) == pytest.approx(plan.predicted_s)
    assert plan.predicted_s <= 12.0
    # Behind schedule (the first test takes 3 s more): tests are left, the session end included
    # the run still ends within the budget, but for the session end's share of the overrun
    # itself (here the end grows with the work done; the pacer counts the expected work).
    first = plan.chosen[0]
    late = on_time | {first: on_time[first] + 3.0}
    plan = plan_budget([Candidate(n, runs=3) for n in durations], est, 12.0)
    assert _simulate(plan, late, 0.5, end_rate) <= 12.0 + end_rate * 3.0


def test_the_pacer_leaves_a_test_that_would_end_late_for_a_cheaper_one() -> None:
    db = FixtureEstimate("db", "module", "conftest.py::db", 1.0, 0.0, 1.0, 4)
    durations = {"m.py::a": 0.5, "m.py::b": 0.5, "n.py::x": 2.0, "n.py::y": 0.2}
    est = estimates(durations, (db,), {"m.py::a": [0], "m.py::b": [0]})
    plan = plan_budget([Candidate(n, runs=3) for n in durations], est, 100.0)
    pacer = plan.pacer
    assert pacer is not None
    assert pacer.cost("m.py::a") == pytest.approx(1.5)  # its own time and the module's db
    assert not pacer.fits("m.py::a", 1.4)
    assert pacer.fits("m.py::a", 1.5)
    pacer.started("m.py::a")
    assert pacer.cost("m.py::b") == pytest.approx(0.5)  # the db is paid for
    assert not pacer.fits("n.py::x", 1.0)  # behind schedule: x would end past the budget ...
    assert pacer.fits("n.py::y", 1.0)  # ... but y, after it, still fits
    assert not pacer.fits("n.py::y", 0.0)  # nothing starts once the budget is used up


def test_after_a_slow_failure_the_pacer_keeps_its_overrun_free() -> None:
    durations = {f"t.py::test_{i}": 0.5 for i in range(4)}

    def pacer_after_first() -> Pacer:
        plan = plan_budget([Candidate(n, runs=3) for n in durations], estimates(durations), 1.2)
        assert plan.pacer is not None
        assert plan.chosen == ("t.py::test_0", "t.py::test_1")
        plan.pacer.started(plan.chosen[0])
        return plan.pacer

    pending = ["t.py::test_1"]
    assert len(pacer_after_first().fill(1.2, pending)) == 1  # on time: a left-out test fits
    pacer = pacer_after_first()
    pacer.failed(-0.2)  # a failure as fast as its history keeps nothing free
    assert pacer.fits(pending[0], 0.5)
    pacer.failed(2.0)  # it failed 2 s later than expected: the next ones may too
    pacer.failed(1.0)
    assert not pacer.fits(pending[0], 2.4)
    assert pacer.fits(pending[0], 2.5)
    assert pacer.fill(1.2, pending) == []
    assert len(pacer.fill(3.5, pending)) == 1  # 3.5 s less 5%: 0.5 s pending, 2 s kept, 0.5 s


def test_a_run_ahead_of_its_plan_fills_the_time_left_with_left_out_tests() -> None:
    db = FixtureEstimate("db", "module", "conftest.py::db", 1.0, 0.0, 1.0, 4)
    durations = {"a.py::a": 1.0, "a.py::b": 1.0, "m.py::x": 0.5, "m.py::y": 0.5, "z.py::z": 3.0}
    est = estimates(durations, (db,), {"m.py::x": [0], "m.py::y": [0]})
    cands = [Candidate(n, runs=3) for n in durations]
    cands[1] = Candidate("a.py::b", runs=3, last_outcome="failed")
    plan = plan_budget(cands, est, 2.0)
    assert plan.chosen == ("a.py::b", "a.py::a")
    pacer = plan.pacer
    assert pacer is not None
    # On schedule, nothing is left over for more.
    assert pacer.fill(2.0, plan.chosen) == []
    pacer.started("a.py::b")
    # b took 0.1 s instead of 1 s: a is still to run (1 s), 0.9 s are left. The module's two
    # tests need the db (1 s) for the first: neither fits, nor does z; the time is not wasted
    # anyway when 2.2 s are left: x and y (2 s with the db once, and a 5% margin), together.
    assert pacer.fill(1.9, ["a.py::a"]) == []
    assert pacer.fill(3.2, ["a.py::a"]) == ["m.py::x", "m.py::y"]
    assert pacer.fill(100.0, ["a.py::a"]) == ["z.py::z"]  # each left-out test is given once
    assert pacer.fill(100.0, ["a.py::a"]) == []


def test_a_module_fixture_torn_down_is_paid_again() -> None:
    db = FixtureEstimate("db", "module", "conftest.py::db", 1.0, 0.0, 1.0, 4)
    durations = {"m.py::a": 0.5, "m.py::b": 0.5, "n.py::x": 0.2}
    est = estimates(durations, (db,), {"m.py::a": [0], "m.py::b": [0]})
    plan = plan_budget([Candidate(n, runs=3) for n in durations], est, 100.0)
    pacer = plan.pacer
    assert pacer is not None
    pacer.started("m.py::a")
    assert pacer.cost("m.py::b") == pytest.approx(0.5)
    pacer.started("n.py::x")  # pytest finished m.py's db before x
    assert pacer.cost("m.py::b") == pytest.approx(1.5)


def test_the_pace_is_the_median_of_recent_budget_runs() -> None:
    assert budget_pace([]) == 1.0
    assert budget_pace([(8.0, 10.0), (1.0, 0.0)]) == pytest.approx(0.8)  # nothing planned: no say
    # One slow run (failures, a busy machine) does not steer the next ones.
    assert budget_pace([(8.0, 10.0), (30.0, 10.0), (9.0, 10.0)]) == pytest.approx(0.9)
    assert budget_pace([(100.0, 1.0)]) == 4.0  # within limits: one odd run cannot wreck a plan


def _first_test_needs(plan: BudgetPlan, seconds: float) -> None:
    """The pacer starts the plan's first test with ``seconds`` left, not with 0.1 s less."""
    pacer = plan.pacer
    assert pacer is not None
    assert pacer.fits(plan.chosen[0], seconds)
    assert not pacer.fits(plan.chosen[0], seconds - 0.1)


def test_the_process_exit_is_kept_free_like_the_start_up() -> None:
    durations = {f"t.py::test_{i}": 1.0 for i in range(10)}
    est = estimates(durations)
    est.exit_s = 0.5
    plan = plan_budget([Candidate(n) for n in durations], est, 4.0)
    assert len(plan.chosen) == 3
    assert plan.predicted_s == pytest.approx(3.5)
    _first_test_needs(plan, 1.5)  # 1 s of test, then 0.5 s of exit


def test_a_pace_scales_the_costs_and_the_run_records_what_the_history_planned() -> None:
    durations = {f"t.py::test_{i}": 1.0 for i in range(10)}
    end = 2.0  # a session end of 2 s after the whole suite's 10 s of work
    plain = plan_budget([Candidate(n) for n in durations], estimates(durations), 4.0)
    est = estimates(durations, session_end_s=end, pace=0.5)
    paced = plan_budget([Candidate(n) for n in durations], est, 4.0)
    assert len(plain.chosen) == 4
    # Recent budget runs took half what the history said: 6 tests (3 s) and their share of the
    # session end (0.6 s) fit 4 s.
    assert len(paced.chosen) == 6
    assert paced.predicted_s == pytest.approx(3.0 + 0.6)
    assert paced.pace == 0.5
    pacer = paced.pacer
    assert pacer is not None
    for nodeid in paced.chosen[:2]:
        pacer.started(nodeid)
    # What the history (uncalibrated) planned for the two tests that ran.
    assert pacer.planned_s == pytest.approx(2.0)
    # Learnt from serial runs, the pace leaves parallel plans alone.
    assert plan_budget([Candidate(n) for n in durations], est, 4.0, workers=2).pace == 1.0


def test_budget_runs_teach_their_own_session_end() -> None:
    """A full run's session end (pytest-benchmark's summary of its benchmarks, say) is no guide to
    a subset's: once budget runs have shown theirs, it is a fixed cost, not a share of the work."""
    durations = {f"t.py::test_{i}": 1.0 for i in range(10)}
    est = estimates(durations, session_end_s=5.0)  # 0.5 s per second of work in full runs
    assert len(plan_budget([Candidate(n) for n in durations], est, 6.0).chosen) == 4
    est.budget_end_s, est.budget_work_s = 0.5, 5.0  # after 5 s of tests, 0.5 s
    plan = plan_budget([Candidate(n) for n in durations], est, 6.0)
    assert len(plan.chosen) == 5
    assert plan.predicted_s == pytest.approx(5.5)
    _first_test_needs(plan, 1.5)  # 1 s of test, then 0.5 s of session end
    # Beyond the work those runs did, the full runs' share still counts: they ran 2 s of tests.
    est.budget_work_s = 2.0
    plan = plan_budget([Candidate(n) for n in durations], est, 6.0)
    assert len(plan.chosen) == 4
    assert plan.predicted_s == pytest.approx(4.0 + 0.5 + 0.5 * 2.0)


def test_parallel_plans_stay_within_the_budget() -> None:
    durations = {f"t{i % 7}.py::test_{i}": 0.2 + (i % 5) * 0.3 for i in range(60)}
    est = estimates(durations, startup_s=0.4)
    cands = [Candidate(n, runs=2) for n in durations]
    for budget in (2.0, 5.0, 9.0):
        plan = plan_budget(cands, est, budget, workers=4)
        assert plan.chosen
        assert plan.predicted_s <= budget + 1e-9
        assert len(plan.chosen) + len(plan.left_out) == 60
    assert "4 workers" in plan.summary_line()


def test_a_test_longer_than_the_budget_is_left_out() -> None:
    est = estimates({"a.py::huge": 100.0, "a.py::small": 1.0})
    plan = plan_budget([Candidate("a.py::huge"), Candidate("a.py::small")], est, 10.0)
    assert plan.chosen == ("a.py::small",)


def test_risk_points() -> None:
    assert risk(Candidate("x", runs=0)) > risk(Candidate("x", runs=5))
    assert risk(Candidate("x", runs=5, fail_rate=0.5)) > risk(
        Candidate("x", runs=5, fail_rate=0.5, flaky=True)
    )
    assert risk(Candidate("x", runs=5, changed_lines=10)) > risk(Candidate("x", runs=5))


def test_the_plan_does_not_depend_on_the_order_of_candidates() -> None:
    durations = {f"t{i % 3}.py::test_{i}": 0.1 * (1 + i % 4) for i in range(30)}
    est = estimates(durations)
    cands = [Candidate(n, runs=1 + i % 3) for i, n in enumerate(durations)]
    first = plan_budget(cands, est, 2.0, workers=2)
    second = plan_budget(list(reversed(cands)), est, 2.0, workers=2)
    assert first == second


@pytest.mark.parametrize(
    ("seconds", "text"), [(300, "5m"), (5400, "1h30m"), (90, "1m30s"), (2.5, "2.5s"), (45, "45s")]
)
def test_budgets_print_as_typed(seconds: float, text: str) -> None:
    from pytest_feedback.durations import format_budget, parse_duration

    assert format_budget(seconds) == text
    assert parse_duration(text) == seconds


# -- the pytest side ------------------------------------------------------------------------

SLOW_SUITE = {
    "test_fast.py": "def test_a(): pass\ndef test_b(): pass\n",
    "test_slow.py": (
        "import time\n" + "".join(f"def test_s{i}():\n    time.sleep(0.15)\n" for i in range(6))
    ),
}


def _recorded_slow_suite(pytester: pytest.Pytester, flag: str = "--feedback") -> Path:
    """`SLOW_SUITE` in ``pytester``, recorded once (all 8 pass) with ``flag``: its history."""
    pytester.makepyfile(**SLOW_SUITE)
    pytester.runpytest(flag, "-p", "no:cacheprovider").assert_outcomes(passed=8)
    return pytester.path / ".pytest-feedback" / "history.db"


def test_a_budget_runs_what_fits_and_says_what_it_left_out(pytester: pytest.Pytester) -> None:
    _recorded_slow_suite(pytester)
    # In-process, the run has spent its configuration and collection (a few tenths of a second)
    # when it plans; all 8 need that plus 0.9 s.
    result = pytester.runpytest("--feedback-budget=0.8", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert 2 <= outcomes["passed"] < 8
    # (a test added in the time left may still be skipped by the budget at its turn)
    assert outcomes["passed"] + outcomes["deselected"] + outcomes.get("skipped", 0) == 8
    result.stdout.fnmatch_lines(
        [
            "feedback: budget 0.8s: running * of 8 tests (predicted *); * left out "
            "(predicted *) — run them in CI",
            "feedback: budget 0.8s: predicted *, took *",
        ]
    )


def test_a_new_test_comes_before_known_ones_of_the_same_cost(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**SLOW_SUITE)
    pytester.runpytest("--feedback", "-p", "no:cacheprovider")
    pytester.makepyfile(test_slow_new="import time\ndef test_new():\n    time.sleep(0.15)\n")
    result = pytester.runpytest("--feedback-budget=1", "-p", "no:cacheprovider", "-v")
    ran = [line.split(" ")[0] for line in result.outlines if " PASSED" in line]
    slow = [n for n in ran if "slow" in n]
    assert slow[0] == "test_slow_new.py::test_new"
    assert len(slow) < 7


def test_the_run_ends_when_the_budget_is_used_up(pytester: pytest.Pytester) -> None:
    _recorded_slow_suite(pytester)
    # The slow tests got slower than their history says: the plan's tests no longer fit.
    pytester.makepyfile(test_slow=SLOW_SUITE["test_slow.py"].replace("0.15", "1.5"))
    result = pytester.runpytest("--feedback-budget=1.5", "-p", "no:cacheprovider")
    assert result.ret == 0  # not "interrupted": a pre-push hook fails only on failures
    chosen = 8 - result.parseoutcomes().get("deselected", 0)
    assert chosen >= 4  # the 2 fast tests and at least 2 slow ones, at their recorded 0.15 s
    assert result.parseoutcomes()["passed"] == 3  # the first slow test used the budget up
    result.stdout.fnmatch_lines(
        [f"feedback: budget 1.5s used up: {chosen - 3} of the chosen tests not run"]
    )


def test_a_test_that_would_end_past_the_budget_is_left_for_a_cheaper_one(
    pytester: pytest.Pytester,
) -> None:
    module = """
        import pathlib, time
        import pytest

        @pytest.fixture(scope="module")
        def resource():
            yield
            pathlib.Path("torn-down").write_text("yes")

        def test_slow(resource):
            time.sleep(SLOW)
            assert SLOW > 1  # fails in the history run, passes slowly in the budget run

        def test_big(resource):
            time.sleep(1.8)
            assert False
    """
    cheap = "import time\n" + "".join(
        f"def test_c{i}():\n    time.sleep(0.075)\n" for i in range(4)
    )
    pytester.makepyfile(test_a=module.replace("SLOW", "0.3"), test_b_cheap=cheap)
    pytester.runpytest("--feedback", "-p", "no:cacheprovider")
    # Both failed last time: test_slow (more risk per second) runs first, then test_big, which
    # shares its module fixture, then the cheap ones; all fit 3.75 s. Now test_slow takes 2.25 s
    # (and passes: a slow failure would keep its overrun free, see below): test_big (1.8 s)
    # would end past the budget and is skipped, the cheap ones still fit.
    pytester.makepyfile(test_a=module.replace("SLOW", "2.25"))
    (pytester.path / "torn-down").unlink(missing_ok=True)
    result = pytester.runpytest("--feedback-budget=3.75", "-p", "no:cacheprovider", "-v", "-rs")
    ran = [line.split(" ")[0] for line in result.outlines if " PASSED" in line or " FAILED" in line]
    outcomes = result.parseoutcomes()
    assert outcomes.get("deselected", 0) == 0  # all six were chosen
    assert ran[0] == "test_a.py::test_slow"
    assert "test_a.py::test_big" not in ran
    assert outcomes.get("skipped") == 1  # pytest says so too, with the reason
    assert any(n.startswith("test_b_cheap.py::") for n in ran)
    assert "error" not in outcomes  # the module fixture was finished before the next module
    assert (pytester.path / "torn-down").read_text() == "yes"
    result.stdout.fnmatch_lines(
        [
            "feedback: budget 3.75s used up: 1 of the chosen tests not run",
            "SKIPPED [[]1[]] test_a.py:*: feedback: budget 3.75s used up before this test's turn",
        ]
    )
    # A test the budget left did not run: the history gets no result for it.
    with Store.open_existing(pytester.path / ".pytest-feedback" / "history.db") as store:
        latest = max(store.reads.runs(), key=lambda r: r["id"])
        recorded = {r["nodeid"] for r in store.reads.results(latest["id"])}
    assert "test_a.py::test_slow" in recorded
    assert "test_a.py::test_big" not in recorded


def test_a_test_that_fails_slowly_makes_the_run_keep_its_overrun_free(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    fails = "import os, time\ndef test_a():\n    time.sleep(float(os.environ.get('SLOW', 0.02)))\n"
    fails += "    assert 'SLOW' not in os.environ\n"
    cheap = "import time\n" + "".join(f"def test_c{i}():\n    time.sleep(0.05)\n" for i in range(4))
    pytester.makepyfile(test_a=fails, test_b=cheap)
    pytester.runpytest("--feedback", "-p", "no:cacheprovider").assert_outcomes(passed=5)
    # test_a runs first (the cheapest, same risk) and now fails after 1 s instead of passing in
    # 0.02 s. After it, 0.2 s of cheap tests would fit the time left, but not with
    # another such overrun kept free: the run stops in time.
    monkeypatch.setenv("SLOW", "1.0")
    result = pytester.runpytest("--feedback-budget=2", "-p", "no:cacheprovider", "-v")
    outcomes = result.parseoutcomes()
    assert outcomes.get("deselected", 0) == 0
    assert outcomes.get("failed") == 1
    assert outcomes.get("passed", 0) == 0
    result.stdout.fnmatch_lines(["feedback: budget 2s used up: 4 of the chosen tests not run"])


def test_the_report_compares_a_budget_runs_prediction_with_its_time(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from pytest_feedback.cli.commands import main

    db = _recorded_slow_suite(pytester)
    result = pytester.runpytest(
        "--feedback-budget=0.8", "--feedback-report", "-p", "no:cacheprovider"
    )
    # In-process, no watcher times the exit: the report says the time is before it.
    result.stdout.fnmatch_lines(["  budget 0.8s · predicted *s · took *s + exit"])
    with Store.open_existing(db) as store:
        latest = max(store.reads.runs(), key=lambda r: r["id"])
    assert latest["budget_s"] == 0.8
    assert 0 < latest["predicted_s"] <= 0.8
    assert latest["took_s"] > 0
    capsys.readouterr()
    assert main(["report", "--format", "json", f"--db={db}"]) == 0
    budget = json.loads(capsys.readouterr().out)["last_run"]["budget"]
    assert budget["budget_s"] == 0.8
    assert budget["predicted_s"] == pytest.approx(latest["predicted_s"], abs=1e-5)
    assert budget["to_exit"] is False
    # A run without a budget has none.
    pytester.runpytest("--feedback", "-p", "no:cacheprovider")
    capsys.readouterr()
    assert main(["report", "--format", "json", f"--db={db}"]) == 0
    assert json.loads(capsys.readouterr().out)["last_run"]["budget"] is None


def _chosen(result: pytest.RunResult) -> int:
    """How many tests the budget line of ``result`` says the plan chose."""
    line = next(x for x in result.outlines if x.startswith("feedback: budget ") and "running" in x)
    count = line.split("running ")[1].removeprefix("all ").split(" ")[0]
    return int(count.replace(",", ""))


def test_left_out_tests_run_when_the_run_is_ahead_of_its_plan(pytester: pytest.Pytester) -> None:
    slow = "import time\n" + "".join(f"def test_s{i}():\n    time.sleep(0.1)\n" for i in range(10))
    pytester.makepyfile(test_fast=SLOW_SUITE["test_fast.py"], test_slow=slow)
    pytester.runpytest("--feedback", "-p", "no:cacheprovider").assert_outcomes(passed=12)
    # The slow tests got faster than their history says: the plan's tests end early, and some it
    # left out (all 12 take 1 s and the start-up by the history) run in the time left.
    pytester.makepyfile(test_slow=slow.replace("0.1", "0.005"))
    result = pytester.runpytest("--feedback-budget=1", "-p", "no:cacheprovider")
    chosen = _chosen(result)
    outcomes = result.parseoutcomes()
    assert chosen < outcomes["passed"]
    # The summary counts them as run, not as deselected (one added last may not fit after all).
    assert outcomes["passed"] + outcomes.get("deselected", 0) + outcomes.get("skipped", 0) == 12
    result.stdout.fnmatch_lines(
        [
            "feedback: budget 1s: predicted *, took *; "
            f"{outcomes['passed'] - chosen} left-out tests run in the time left (predicted *)"
        ]
    )
    with Store.open_existing(pytester.path / ".pytest-feedback" / "history.db") as store:
        latest = max(store.reads.runs(), key=lambda r: r["id"])
        assert len(store.reads.results(latest["id"])) == outcomes["passed"]


def test_a_budget_learns_its_pace_from_the_budget_runs_before_it(
    pytester: pytest.Pytester,
) -> None:
    # Three runs at 0.3 s a test, written directly (the estimates, medians, stay at 0.3 s after
    # one faster run); then the tests got faster than the history says (a faster machine, a
    # lighter order). 12 of them: a budget of 3 s fits some, whatever this process has spent
    # starting up on a busy machine, and never all.
    db = pytester.path / ".pytest-feedback" / "history.db"
    with Store(db) as store:
        for index in range(3):
            run = RunRecord(f"r{index}", 1.7e9 + index * 10, wall_s=3.7, collect_s=0.05)
            run.loop_s = 3.65
            for i in range(12):
                nodeid = f"test_slow.py::test_s{i}"
                run.tests[nodeid] = TestRecord(nodeid, call_s=0.3)
            run.worker_records.append(WorkerRecord("main", 0.05, 12))
            store.record_run(run)
    fast = "import time\n" + "".join(f"def test_s{i}():\n    time.sleep(0.01)\n" for i in range(12))
    pytester.makepyfile(test_slow=fast)
    first = pytester.runpytest("--feedback-budget=3", "-p", "no:cacheprovider")
    first_ran = first.parseoutcomes()["passed"]  # it was ahead of its plan: more than it chose
    with Store.open_existing(db) as store:
        latest = max(store.reads.runs(), key=lambda r: r["id"])
        assert latest["planned_s"] == pytest.approx(0.3 * first_ran, rel=0.5)
        estimates = store.reads.load_estimates()
    # Its test loop against what the history planned; what followed the loop, its session end.
    low, high = PACE_LIMITS
    assert estimates.pace == pytest.approx(
        min(high, max(low, latest["loop_s"] / latest["planned_s"]))
    )
    assert estimates.budget_end_s == pytest.approx(
        latest["wall_s"] - latest["collect_s"] - latest["loop_s"]
    )
    assert estimates.duration("test_slow.py::test_s0") == pytest.approx(0.3, rel=0.3)
    assert estimates.pace < 0.6
    second = pytester.runpytest("--feedback-budget=3", "-p", "no:cacheprovider")
    assert _chosen(second) > _chosen(first)


def test_only_a_process_pytest_started_is_timed_to_its_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = types.SimpleNamespace(invocation_params=types.SimpleNamespace(args=("-x",)))
    main = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(sys, "argv", ["/venv/bin/pytest", "-x"])
    assert from_command_line(config)  # type: ignore[arg-type]
    # A script calling pytest.main() without arguments: pytest reads the script's own argv.
    monkeypatch.setattr(sys, "argv", ["run.py", "-x"])
    assert not from_command_line(config)  # type: ignore[arg-type]
    main.__spec__ = importlib.machinery.ModuleSpec("pytest.__main__", None)
    assert from_command_line(config)  # type: ignore[arg-type]  # python -m pytest


@pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="the exit watcher needs posix_spawn")
def test_a_recorded_budget_run_learns_how_long_its_process_took_to_exit(
    pytester: pytest.Pytester,
) -> None:
    # An atexit handler runs after pytest's last hook: only a watcher outside the process sees it.
    # (Registered in the budget run's own process only, not in this one's.)
    pytester.makepyfile(
        test_a="""
        import atexit, sys, time
        if "--feedback-budget=30" in sys.argv:
            atexit.register(time.sleep, 0.4)
        def test_a(): pass
        """
    )
    pytester.runpytest("--feedback", "-p", "no:cacheprovider")
    pytester.runpytest_subprocess("--feedback-budget=30", "-p", "no:cacheprovider")
    db = pytester.path / ".pytest-feedback" / "history.db"
    deadline = time.monotonic() + 20
    exit_s = None
    while exit_s is None and time.monotonic() < deadline:
        time.sleep(0.05)
        with Store.open_existing(db) as store:
            exit_s = max(store.reads.runs(), key=lambda r: r["id"])["exit_s"]
    assert exit_s is not None
    assert 0.4 <= exit_s < 10


@pytest.mark.parametrize("value", ["-1", "5x", "0", "m"])
def test_bad_budgets_are_usage_errors(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest(f"--feedback-budget={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--feedback-budget: *expected a duration such as 300, 300s, 5m*"])


def test_a_budget_without_history_still_runs_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**SLOW_SUITE)
    result = pytester.runpytest("--feedback-budget=5m", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)
    # No history: no prediction from nothing, and one line says why (issue 18, case 3).
    result.stdout.fnmatch_lines(
        [
            "feedback: budget 5m: no history yet, so no prediction: running all 8 tests *",
            "feedback: budget 5m: no history to predict from, took *",
        ]
    )
    result.stdout.no_fnmatch_line("*predicted*")


def test_the_select_command_gives_the_same_plan_for_scripts(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from pytest_feedback.cli.commands import main

    # A history written directly (no real run): its start-up and per-test costs are what the
    # plan must fit in 0.35 s, whatever the load on this machine.
    pytester.makepyfile(**SLOW_SUITE)
    path = pytester.path / "history.db"
    with Store(path) as store:
        tests = {f"test_fast.py::test_{n}": TestRecord(f"test_fast.py::test_{n}") for n in "ab"}
        tests.update(
            {
                f"test_slow.py::test_s{i}": TestRecord(f"test_slow.py::test_s{i}", call_s=0.15)
                for i in range(6)
            }
        )
        store.record_run(
            RunRecord(
                "r1",
                started_at=1000.0,
                finished_at=1001.0,
                wall_s=1.0,
                collect_s=0.02,
                loop_s=0.95,
                tests=tests,
                worker_records=[WorkerRecord("", collect_s=0.02, tests=8)],
            )
        )
    db = f"--db={path}"
    capsys.readouterr()
    assert main(["select", "--budget", "0.35", "--format", "json", db]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["version"] == 1
    assert document["budget"]["budget_s"] == 0.35
    assert document["budget"]["predicted_s"] <= 0.35
    kept = [entry["nodeid"] for entry in document["selected"]]
    assert 2 <= len(kept) < 8
    assert len(kept) + len(document["budget"]["left_out"]) == 8
    assert main(["select", "--budget", "0.35", db]) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == kept
    assert "feedback: budget 0.35s: running" in captured.err
    assert main(["select", "--budget", "5x", db]) == 1


def test_the_report_hints_speak_only_with_something_to_say() -> None:
    from pytest_feedback.planning import budget, shards

    big = estimates({f"t{i % 9}.py::test_{i}": 10.0 for i in range(60)}, startup_s=1.0)
    line = budget.report_hint(big)
    assert line is not None
    assert line.startswith("a 5-minute budget runs 29 of 60 tests")
    small = estimates({"a.py::x": 1.0, "a.py::y": 1.0})
    assert budget.report_hint(small) is None  # everything fits
    assert shards.report_hint(big, 2) == (
        "2 shards: the slowest takes 5m01s instead of 10m01s on one (`pytest-feedback shards 2`)"
    )
    assert shards.report_hint(small, None) is None  # fewer tests than shards


def test_under_xdist_the_controller_prints_the_workers_budget_line(
    pytester: pytest.Pytester,
) -> None:
    slow = "import time\n" + "".join(f"def test_s{i}():\n    time.sleep(0.1)\n" for i in range(12))
    pytester.makepyfile(test_slow=slow)
    pytester.runpytest("--feedback", "-p", "no:cacheprovider").assert_outcomes(passed=12)
    result = pytester.runpytest("--feedback-budget=0.35", "-p", "no:cacheprovider", "-n", "2")
    # Bringing the workers up may use the whole budget: then the workers stop at once.
    assert result.parseoutcomes().get("passed", 0) < 12
    result.stdout.fnmatch_lines(
        [
            "feedback: budget 0.35s, 2 workers: running * of 12 tests (predicted *); *",
            "feedback: budget 0.35s: predicted *, took *",
        ]
    )


def test_under_xdist_the_workers_stop_at_the_deadline_too(pytester: pytest.Pytester) -> None:
    fast = "import time\n" + "".join(f"def test_s{i}():\n    time.sleep(0.02)\n" for i in range(12))
    pytester.makepyfile(test_slow=fast)
    pytester.runpytest("--feedback", "-p", "no:cacheprovider").assert_outcomes(passed=12)
    # Much slower than the history says: all 12 are chosen, the budget runs out after a few.
    pytester.makepyfile(test_slow=fast.replace("0.02", "1.0"))
    result = pytester.runpytest("--feedback-budget=2.5", "-p", "no:cacheprovider", "-n", "2")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["feedback: budget 2.5s, 2 workers: running all 12 tests *"])
    passed = result.parseoutcomes().get("passed", 0)
    assert passed < 12
    result.stdout.fnmatch_lines(
        [f"feedback: budget 2.5s used up: {12 - passed} of the chosen tests not run"]
    )


def test_under_xdist_the_workers_get_their_tests_by_the_budget_plan(
    pytester: pytest.Pytester,
) -> None:
    """The budget's prediction for -n N is the shard planner's plan: xdist's `load` would spread
    fixture families over workers that each pay the set-up."""
    _recorded_slow_suite(pytester)
    result = pytester.runpytest("--feedback-budget=30", "-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["feedback: predicted/measured per worker: gw* *, gw* *"])
    # Another --dist mode chosen by the user stays. (One worker is enough to show it: with the
    # plan's scheduler, -n 1 prints its "per worker" line too.)
    result = pytester.runpytest(
        "--feedback-budget=30", "-p", "no:cacheprovider", "-n", "1", "--dist", "loadfile"
    )
    result.assert_outcomes(passed=8)
    assert "per worker" not in result.stdout.str()


def test_the_session_end_counts_by_the_share_of_work_that_runs() -> None:
    durations = {f"t{i}.py::test": 1.0 for i in range(10)}
    quiet = estimates(durations)
    cands = [Candidate(n, runs=3) for n in durations]
    slow_end = Estimates(quiet.tests, session_end_s=1.0)  # 1 s after 10 s of tests
    plan = plan_budget(cands, slow_end, 5.5)
    assert (len(plan.chosen), plan.predicted_s) == (5, pytest.approx(5.5))
    assert len(plan_budget(cands, quiet, 5.5).chosen) == 5  # 5 x 1 s; a sixth would not fit
    assert plan_budget(cands, slow_end, 20.0).predicted_s == pytest.approx(11.0)
    # Narrowed to 2 of the 10 tests (-k, selection): they carry a fifth of the session end.
    assert plan_budget(cands[:2], slow_end, 20.0).predicted_s == pytest.approx(2.2)


def test_a_plugins_session_end_is_not_a_cost_of_each_test(
    pytester: pytest.Pytester, history: Path
) -> None:
    """Like pytest-benchmark's summary: seconds after the loop, in every run of the suite."""
    pytester.makeconftest(
        "import time, pytest\n\n@pytest.hookimpl(wrapper=True)\n"
        "def pytest_sessionfinish():\n    time.sleep(0.6)\n    return (yield)\n"
    )
    pytester.makepyfile(test_many="".join(f"def test_{i}(): pass\n" for i in range(20)))
    pytester.runpytest("--feedback", "-p", "no:cacheprovider").assert_outcomes(passed=20)
    with Store.open_existing(history) as store:
        found = store.reads.load_estimates()
    assert found.session_end_s >= 0.5
    assert found.per_test_s < 0.01  # spread over the tests it would be 0.03 s each


def test_xdist_bring_up_counts_against_the_budget() -> None:
    durations = {f"t{i}.py::test": 1.0 for i in range(8)}
    quiet = estimates(durations)
    slow_start = Estimates(quiet.tests, xdist_overhead={2: 2.0})
    cands = [Candidate(n, runs=3) for n in durations]
    assert len(plan_budget(cands, quiet, 4.0, workers=2).chosen) == 8
    plan = plan_budget(cands, slow_start, 4.0, workers=2)
    assert len(plan.chosen) == 4  # 2 s of bring-up leave 2 s on each of 2 workers
    assert plan.predicted_s == pytest.approx(4.0)
    # What the controller spent before starting the workers counts the same way.
    late = plan_budget(cands, quiet, 4.0, workers=2, before_workers_s=2.0)
    assert (len(late.chosen), late.predicted_s) == (4, pytest.approx(4.0))
    assert Estimates(quiet.tests, xdist_overhead={4: 3.0}).bringup_s(2) == 3.0  # nearest known
    assert slow_start.bringup_s(1) == 0.0
