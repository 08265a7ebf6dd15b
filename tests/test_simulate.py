"""Replaying the budget over the history: `pytest-feedback simulate`, ``--feedback-budget 90%``
and the report's "what a budget catches" block (docs/local-loop.md, docs/contract.md)."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import pytest

from fake_map import FakeDeps, FakeMap
from gitrepo import git
from pytest_feedback.cli.commands import main
from pytest_feedback.history.records import RunRecord, TestRecord, WorkerRecord
from pytest_feedback.history.replay import HistoryReplay
from pytest_feedback.history.store import Store
from pytest_feedback.planning.simulate import (
    LADDER,
    MIN_FAILING_RUNS,
    confidence_budget,
    simulate,
)
from pytest_feedback.report.catches import document, text_lines
from pytest_feedback.selection.replay import MISSING_COMMIT, ChangeReplay

#: Own seconds of the tests of the known history.
KNOWN = {"t.py::a": 1.0, "t.py::b": 2.0, "t.py::c": 4.0, "t.py::d": 8.0}


def record(
    db: Path,
    outcomes: Sequence[dict[str, str]],
    durations: dict[str, float],
    *,
    commits: Optional[Sequence[Optional[str]]] = None,
) -> None:
    """One run per entry of ``outcomes`` (node id -> outcome; missing: passed), each on its own
    clean commit, costing exactly the tests' seconds (no start-up, overhead or session end)."""
    with Store(db) as store:
        for i, failed in enumerate(outcomes):
            phases = sum(durations.values())
            run = RunRecord(
                uuid=f"run-{i}",
                started_at=1.7e9 + i * 60,
                finished_at=1.7e9 + i * 60 + phases,
                wall_s=phases,
                collect_s=0.0,
                loop_s=phases,
                git_commit=commits[i] if commits is not None else f"{i + 1:040x}",
                git_dirty=False,
                exit_status=1 if failed else 0,
            )
            run.worker_records = [WorkerRecord("main", 0.0, len(durations))]
            for nodeid, seconds in durations.items():
                outcome = failed.get(nodeid, "passed")
                run.tests[nodeid] = TestRecord(nodeid, outcome, 0.0, seconds, 0.0)
            store.record_run(run, keep_runs=1000)


def replay_of(db: Path) -> HistoryReplay:
    with Store(db, create=False, readonly=True) as store:
        return HistoryReplay.load(store)


def test_a_known_history_gives_the_expected_curve_exactly(tmp_path: Path) -> None:
    # Run 2: a fails (all tests alike so far: cheapest first). Run 4: d fails, but a's failure
    # history ranks it first (a, b, c, d) and d, the longest, fits only the whole suite. Run 6:
    # b and c fail; a and d have failed once in five runs (risk per second: a, d, b, c). Below
    # 8 s, d is too long on its own and passed over: 3 s runs a and b, 7 s a, b and c. From 8 s
    # d takes its place: 11 s runs a, d and b (one failing test of run 6 fewer than 7 s: the
    # price of passing over), 15 s everything.
    db = tmp_path / "h.db"
    fail = "failed"
    record(
        db,
        [{}, {"t.py::a": fail}, {}, {"t.py::d": fail}, {}, {"t.py::b": fail, "t.py::c": fail}],
        KNOWN,
    )
    sim = simulate(replay_of(db), [1, 3, 7, 11, 15])
    assert (sim.considered, sim.passed, sim.failing_runs, sim.failing_tests) == (6, 3, 3, 4)
    assert [(r.budget_s, r.ours.runs, r.ours.tests) for r in sim.rows] == [
        (1, 1, 1),
        (3, 2, 2),
        (7, 2, 3),
        (11, 2, 2),
        (15, 3, 4),
    ]
    assert sim.suite_s == pytest.approx(15.0)
    # Fastest first takes a, b, c, d: on this history it catches run 6 sooner.
    assert [(r.fastest.runs, r.fastest.tests) for r in sim.rows] == [
        (1, 1),
        (2, 2),
        (2, 3),
        (2, 3),
        (3, 4),
    ]
    # Every budget fills up to its last test but 11 s in runs 2 and 4 (a, b, c: 7 s).
    assert [round(sim.mean_predicted(r), 6) for r in sim.rows] == [
        1.0,
        3.0,
        7.0,
        round(25 / 3, 6),
        15.0,
    ]
    assert not sim.enough  # 3 failing runs: counts, but no percentage
    assert "%" not in "\n".join(text_lines(sim))
    assert f"({MIN_FAILING_RUNS} needed)" in text_lines(sim)[0]


def random_history(db: Path, seed: int, tests: int = 40, runs: int = 30) -> dict[str, float]:
    rng = random.Random(seed)
    durations = {
        f"m{i % 5}.py::t{i}": round(rng.lognormvariate(-1.0, 1.2), 3) for i in range(tests)
    }
    names = list(durations)
    outcomes = []
    for _ in range(runs):
        broken = rng.sample(names, rng.randint(1, 4)) if rng.random() < 0.5 else []
        outcomes.append(dict.fromkeys(broken, "failed"))
    record(db, outcomes, durations)
    return durations


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_curve_never_falls_and_the_whole_suite_catches_every_failing_run(
    tmp_path: Path, seed: int
) -> None:
    durations = random_history(tmp_path / "h.db", seed)
    replay = replay_of(tmp_path / "h.db")
    whole = sum(durations.values())
    # Any budgets, close ones too: a larger budget's choice holds a smaller one's.
    rng = random.Random(seed)
    budgets = sorted({whole * rng.random() for _ in range(40)} | {whole / 64, whole})
    sim = simulate(replay, budgets)
    assert sim.enough
    runs = [r.ours.runs for r in sim.rows]
    tests = [r.ours.tests for r in sim.rows]
    assert runs == sorted(runs)
    assert tests == sorted(tests)
    assert sim.rate(sim.rows[-1].ours) == 1.0
    assert sim.test_rate(sim.rows[-1].ours) == 1.0
    assert runs[0] < runs[-1]  # the curve says something


def test_no_failing_runs_is_a_sentence_not_a_percentage(tmp_path: Path) -> None:
    record(tmp_path / "h.db", [{}, {}, {}], KNOWN)
    sim = simulate(replay_of(tmp_path / "h.db"))
    text = "\n".join(text_lines(sim))
    assert text.startswith("No failing run to replay among the 3 recorded runs")
    assert "%" not in text
    doc = document(sim)
    assert doc["version"] == 1
    assert doc["failing_runs"] == 0
    assert not doc["enough"]
    assert all(b["runs_rate"] is None for b in doc["budgets"])


def test_skipped_runs_are_counted_with_their_reasons(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    record(db, [{"t.py::a": "failed"}, {}, {"t.py::b": "failed"}], KNOWN)
    with sqlite3.connect(db) as con:  # a budget run that failed: it ran what a budget chose
        con.execute("UPDATE runs SET budget_s = 60 WHERE uuid = 'run-2'")
    con.close()
    sim = simulate(replay_of(db))
    assert sim.failing_runs == 0
    assert sim.skipped == {
        "no earlier run to plan from": 1,
        "a --feedback-budget run: it ran what a budget chose": 1,
    }
    text = "\n".join(text_lines(sim))
    assert "Not replayed, 1 run: no earlier run to plan from." in text


def test_flaky_tests_do_not_make_a_failing_run(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    # b fails and passes on the same clean commit: flaky by any rule.
    record(
        db,
        [{}, {"t.py::b": "failed"}, {}, {"t.py::b": "failed", "t.py::a": "failed"}],
        KNOWN,
        commits=["1" * 40, "2" * 40, "2" * 40, "3" * 40],
    )
    replay = replay_of(db)
    assert replay.now.tests["t.py::b"].flaky
    sim = simulate(replay, [100])
    assert sim.skipped == {"only flaky tests failed": 1}
    assert (sim.failing_runs, sim.failing_tests) == (1, 1)  # run 4, a alone counts


def test_missing_commits_are_said_with_what_was_assumed(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "t.py").write_text("def test_a():\n    pass\n")
    git(project, "init", "-q")
    git(project, "add", "t.py")
    git(project, "commit", "-q", "-m", "one")
    db = tmp_path / "h.db"
    outcomes: list[dict[str, str]] = [{}, {"t.py::a": "failed"}] * 3
    record(db, outcomes, KNOWN, commits=[f"{i:040x}" for i in range(6)])  # not in this repo
    fake = FakeMap(deps={n: FakeDeps(files={"t.py": {1}}) for n in KNOWN})
    sim = simulate(replay_of(db), [5], ChangeReplay(project, fake))
    assert sim.assumed == {MISSING_COMMIT: 3}
    assert f"Assumed for 3 runs: {MISSING_COMMIT}." in text_lines(sim)


def test_the_change_between_runs_puts_the_affected_tests_first(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    source = "def f():\n    return 1\n\n\ndef g():\n    return 2\n"
    (project / "code.py").write_text(source)
    git(project, "init", "-q")
    git(project, "add", "code.py")
    git(project, "commit", "-q", "-m", "one")
    first = (project / ".git" / "HEAD").read_text()  # noqa: F841 - the repository has a HEAD
    commits = []
    for text in (source, source.replace("return 2", "return 3")):
        (project / "code.py").write_text(text)
        git(project, "commit", "-q", "-a", "--allow-empty", "-m", "next")
        commits.append(_head(project))
    # d (8 s) executes g: the change to g affects it, and a 8 s budget runs it first.
    durations = dict(KNOWN)
    fake = FakeMap(
        deps={
            "t.py::a": FakeDeps(files={"code.py": {2}}),
            "t.py::b": FakeDeps(files={"code.py": {2}}),
            "t.py::c": FakeDeps(files={"code.py": {2}}),
            "t.py::d": FakeDeps(files={"code.py": {6}}),
        },
        sources={"code.py": source},
    )
    db = tmp_path / "h.db"
    record(db, [{}, {"t.py::d": "failed"}], durations, commits=commits)
    with_change = simulate(replay_of(db), [8], ChangeReplay(project, fake))
    without = simulate(replay_of(db), [8])
    assert with_change.assumed == {}
    assert (with_change.rows[0].ours.runs, without.rows[0].ours.runs) == (1, 0)


def _head(project: Path) -> str:
    import subprocess

    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_confidence_picks_the_smallest_budget_that_reaches_the_share(tmp_path: Path) -> None:
    random_history(tmp_path / "h.db", 2)
    replay = replay_of(tmp_path / "h.db")
    budget, sim = confidence_budget(replay, 0.9)
    assert budget is not None
    assert sim.rate(sim.rows[0].ours) >= 0.9
    ladder = {max(1.0, round(sim.suite_s * share)) for share in LADDER if share < 1}
    smaller = sorted(b for b in ladder if b < budget)
    if smaller:  # the ladder's budget just below it does not reach 90%
        below = simulate(replay, [smaller[-1]], baselines=False)
        assert below.rate(below.rows[0].ours) < 0.9
    record(tmp_path / "few.db", [{}, {"t.py::a": "failed"}], KNOWN)
    assert confidence_budget(replay_of(tmp_path / "few.db"), 0.9)[0] is None


def test_the_command_prints_text_markdown_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    random_history(tmp_path / "h.db", 3)
    db = str(tmp_path / "h.db")
    assert main(["simulate", "--db", db, "--budget", "1s,5s", "--rootdir", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Replayed over ")
    assert "fastest first" in text
    assert main(["simulate", "--db", db, "--format", "json", "--runs", "10"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == 1
    assert doc["runs"] == 10
    assert [b["budget_s"] for b in doc["budgets"]] == [60, 120, 300, 600]
    assert main(["simulate", "--db", db, "--format", "markdown"]) == 0
    assert "| budget | failing runs caught |" in capsys.readouterr().out
    assert main(["simulate", "--db", db, "--budget", "5 minutes"]) == 1
    assert "--budget: '5 minutes' is not a duration" in capsys.readouterr().err
    assert main(["simulate", "--db", db, "--since", "last week"]) == 1
    assert "--since 'last week': not a date" in capsys.readouterr().err


def test_the_report_shows_what_a_budget_catches_once_there_are_failing_runs_enough(
    tmp_path: Path,
) -> None:
    import io

    from pytest_feedback.report import build_report, write_report

    record(tmp_path / "few.db", [{}, {"t.py::a": "failed"}], KNOWN)
    with Store(tmp_path / "few.db", create=False, readonly=True) as store:
        assert build_report(store).catches is None
    random_history(tmp_path / "h.db", 3)
    with Store(tmp_path / "h.db", create=False, readonly=True) as store:
        report = build_report(store)
    assert report.catches is not None
    assert report.catches.enough
    shown = {}
    for form in ("text", "markdown", "json"):
        out = io.StringIO()
        write_report(report, form, out)
        shown[form] = out.getvalue()
    assert "What a budget catches" in shown["text"]
    assert "Failing runs caught: " in shown["text"]
    assert "### What a budget catches" in shown["markdown"]
    catches = json.loads(shown["json"])["budget_catches"]
    assert catches["version"] == 1
    assert catches["failing_runs"] == report.catches.failing_runs


# -- the pytest side: --feedback-budget 90% -----------------------------------------------------

SUITE = {
    "test_t.py": "".join(f"def test_{n}():\n    pass\n" for n in "abcd"),
}


def test_a_share_budget_falls_back_in_one_line_without_failing_runs(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(**SUITE)
    result = pytester.runpytest("--feedback-budget=90%", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "feedback: budget 90%: no history yet to choose a budget from; "
            "using the default budget 5m"
        ]
    )
    result = pytester.runpytest("--feedback-budget=90%", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "feedback: budget 90%: 0 failing runs in the history, 5 needed to choose a budget; "
            "using the default budget 5m",
            "feedback: budget 5m: running all 4 tests *",
        ]
    )
    bad = pytester.runpytest("--feedback-budget=150%", "-p", "no:cacheprovider")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(
        [
            "*--feedback-budget: '150%' is not a share of failing runs; "
            "expected a percentage such as 90%"
        ]
    )


def test_a_share_budget_is_chosen_from_the_failing_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**SUITE)
    durations = {f"test_t.py::test_{n}": s for n, s in zip("abcd", (1.0, 2.0, 4.0, 8.0))}
    # d fails in five runs: only a budget that fits it catches them.
    outcomes = [{}, {"test_t.py::test_d": "failed"}] * 5
    record(pytester.path / ".pytest-feedback" / "history.db", outcomes, durations)
    result = pytester.runpytest("--feedback-budget=90%", "-p", "no:cacheprovider", "-v")
    result.stdout.fnmatch_lines(
        [
            "feedback: budget 90% -> 15s: the smallest budget that caught 100% of the 5 failing "
            "runs replayed from the history (`pytest-feedback simulate`)",
            "feedback: budget 15s: running *",
        ]
    )


def test_a_planner_updated_with_new_facts_plans_as_a_new_one() -> None:
    from pytest_feedback.history.estimates import Estimates, FixtureEstimate, TestEstimate
    from pytest_feedback.planning.budget import BudgetPlanner, Candidate

    rng = random.Random(5)
    names = [f"m{i % 4}.py::t{i}" for i in range(80)]
    tests = {
        n: TestEstimate(n, rng.lognormvariate(-1, 1), 0, 0, 0, 3, 0.0, False, 1.0, "passed")
        for n in names
    }
    fixtures = [FixtureEstimate("db", "module", "c.py::db", 0.5, 0.1, 1, 80)]
    est = Estimates(tests, fixtures, {n: [0] for n in names}, startup_s=0.5)

    def facts(seed: int) -> list[Candidate]:
        r = random.Random(seed)
        return [
            Candidate(n, affected=r.random() < 0.1, last_outcome=r.choice(["passed", "failed"]))
            if r.random() < 0.2
            else Candidate(n, runs=3, last_outcome="passed")
            for n in names
        ]

    base = BudgetPlanner(facts(1), est, affected_known=True)
    for seed in (2, 3, 4):
        fresh = BudgetPlanner(facts(seed), est, affected_known=True)
        updated = base.updated(facts(seed), affected_known=True)
        for budget in (2.0, 5.0, 9.0, 15.0):
            assert updated.choose(budget) == fresh.choose(budget)
        assert updated.affected == fresh.affected


def test_a_larger_budget_runs_what_a_smaller_one_runs() -> None:
    from pytest_feedback.history.estimates import Estimates, FixtureEstimate, TestEstimate
    from pytest_feedback.planning.budget import BudgetPlanner, Candidate

    rng = random.Random(11)
    names = [f"m{i % 6}.py::t{i}" for i in range(120)]
    tests = {
        n: TestEstimate(n, rng.lognormvariate(-2, 1.5), 0, 0, 0, 3, 0.0, False, 1.0, "passed")
        for n in names
    }
    fixtures = [
        FixtureEstimate("db", "module", "c.py::db", 2.0, 0.1, 1, 60),
        FixtureEstimate("web", "session", "c.py::web", 3.0, 0.1, 1, 30),
    ]
    uses = {n: [0] if i % 3 == 0 else [1] if i % 4 == 0 else [] for i, n in enumerate(names)}
    est = Estimates(tests, fixtures, uses, startup_s=0.5)
    facts = [
        Candidate(
            n,
            affected=rng.random() < 0.15,
            runs=3,
            last_outcome=rng.choice(["passed", "passed", "failed"]),
            changed_lines=rng.choice([0, 0, 3]),
        )
        for n in names
    ]
    planner = BudgetPlanner(facts, est, affected_known=True)
    whole = planner.predict(range(len(names)))
    budgets = sorted([rng.uniform(0.4, whole) for _ in range(80)] + [whole])
    chosen = [planner.choose(b) for b in budgets]
    for budget, tests_chosen in zip(budgets, chosen):
        assert not tests_chosen or planner.predict(tests_chosen) <= budget + 1e-9
    fixed = planner.bringup + planner.work.startup_s
    pairs = zip(budgets, budgets[1:], chosen, chosen[1:])
    for budget, next_budget, smaller, larger in pairs:
        if not set(smaller) <= set(larger):
            # Only where the smaller budget passed over a test too long for it on its own that
            # the larger one does not pass over (it runs it, or stops at it).
            alone = [fixed + planner.work.cost([t]) for t in range(len(names))]
            assert any(
                budget < alone[t] <= next_budget for t in set(range(len(names))) - set(smaller)
            )
        else:
            assert larger[: len(smaller)] == smaller
    assert len(chosen[0]) < len(chosen[-1]) == len(names)


def test_the_ini_twin_takes_a_share_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**SUITE)
    pytester.makeini("[pytest]\nfeedback_budget = 90%\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["feedback: budget 90%: no history yet to choose a budget from; *"])
