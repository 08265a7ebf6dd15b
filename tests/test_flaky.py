"""Flaky tests told apart and handled (docs/flaky.md): the evidence rules, reruns that classify,
the quarantine, and the repeats of new tests."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from gitrepo import git
from pytest_feedback import quarantine
from pytest_feedback.cli.commands import main
from pytest_feedback.history.junit import read_cases
from pytest_feedback.history.store import Store
from pytest_feedback.history.summaries import (
    BOTH_IN_RUN,
    Sample,
    flaky_evidence,
    is_unstable,
    summarise_rows,
)

# -- the evidence rules ----------------------------------------------------------------------


def rows(*samples: tuple[str, Any, Any]) -> list[list[Any]]:
    """Stored sample rows from (outcome, clean commit, mark), run ids 1, 2, ..."""
    out = []
    for run_id, (outcome, commit, mark) in enumerate(samples, 1):
        out.append(Sample(run_id, outcome, 0.1, 0.0, 0.1, 0.0, commit, mark).to_row())
    return out


def test_fix_and_break_again_on_different_commits_is_unstable_not_flaky() -> None:
    history = rows(("passed", "c1", None), ("failed", "c2", None), ("passed", "c3", None))
    history += rows(("failed", "c4", None))
    assert flaky_evidence(history) is None
    assert not summarise_rows(history).flaky
    assert is_unstable(history)


def test_both_outcomes_on_one_clean_commit_are_flaky_with_the_runs() -> None:
    history = rows(("passed", "c1", None), ("passed", "c2", None), ("failed", "c2", None))
    evidence = flaky_evidence(history)
    assert evidence is not None
    assert evidence.kind == "commit"
    assert evidence.commit == "c2"
    assert evidence.runs == (3, 2)
    assert "c2" in evidence.describe()
    assert "runs 3, 2" in evidence.describe()
    assert summarise_rows(history).flaky
    assert not is_unstable(history)


def test_the_reach_fingerprint_decides_across_commits_and_dirty_trees() -> None:
    same = rows(("failed", None, "aaaa"), ("passed", None, "aaaa"))
    changed = rows(("failed", None, "aaaa"), ("passed", None, "bbbb"))
    evidence = flaky_evidence(same)
    assert evidence is not None
    assert evidence.kind == "map"
    assert evidence.runs == (1, 2)
    assert flaky_evidence(changed) is None


def test_both_outcomes_within_one_run_are_flaky_even_when_it_passed_in_the_end() -> None:
    history = rows(("passed", None, None), ("passed", None, BOTH_IN_RUN + "cccc"))
    evidence = flaky_evidence(history)
    assert evidence is not None
    assert evidence.kind == "run"
    assert evidence.runs == (2,)
    assert summarise_rows(history).flaky  # no failing final outcome among them


def test_old_samples_without_a_mark_still_read() -> None:
    old = [[1, "passed", 0.1, 0.0, 0.1, 0.0, None], [2, "failed", 0.2, 0.0, 0.2, 0.0, "c"]]
    new = [*old, [3, "passed", 0.3, 0.0, 0.3, 0.0, "c", "dddd"]]
    assert Sample.from_row(old[0]).mark is None
    assert Sample.from_row(new[2]).mark == "dddd"
    assert Sample.from_row(new[2]).to_row() == new[2]
    assert summarise_rows(new).flaky
    assert summarise_rows(new).estimate_s == 0.2


def test_a_test_failing_30_percent_on_one_commit_is_flagged_within_10_runs() -> None:
    for seed in range(200):
        draw = random.Random(seed)
        history: list[list[Any]] = []
        for run_id in range(1, 11):
            outcome = "failed" if draw.random() < 0.3 else "passed"
            history += [Sample(run_id, outcome, 0.1, 0.0, 0.1, 0.0, "c1").to_row()]
            if summarise_rows(history).flaky:
                break
        # Within 10 runs unless all 10 came out the same (0.7**10 + 0.3**10: about 3%).
        outcomes = {r[1] for r in history}
        assert summarise_rows(history).flaky == (len(outcomes) == 2)


# -- end to end: the issue's reproduction, and flakiness on one commit -----------------------


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    """What ``pytest-feedback ARGS`` prints (run in this process)."""
    capsys.readouterr()
    main([str(a) for a in args])
    captured = capsys.readouterr()
    return (captured.out + captured.err).replace("\\", "")


def git_repo(pytester: pytest.Pytester) -> None:
    git(pytester.path, "init", "-q", ".")
    (pytester.path / ".gitignore").write_text("__pycache__/\n*.xml\n")


def test_the_issue_reproduction_reports_nothing_flaky(
    pytester: pytest.Pytester, history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git_repo(pytester)
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(mod="V = 1", test_v="from mod import V\ndef test_v():\n    assert V == 1\n")
    git(pytester.path, "add", "-A")
    git(pytester.path, "commit", "-qm", "1")
    for v in (2, 1, 2):
        pytester.runpytest("--feedback", "-p", "no:cacheprovider")
        (pytester.path / "mod.py").write_text(f"V = {v}\n")
        git(pytester.path, "commit", "-qam", f"v{v}")
    pytester.runpytest("--feedback", "-p", "no:cacheprovider")
    with Store.open_existing(history) as store:
        assert [e.nodeid for e in store.reads.flagged_tests(99.0)] == []
    text = cli(capsys, "report", "--format", "markdown", "--db", history)
    assert "Flaky (" not in text
    assert "flaky test" not in text
    assert "unstable, not flaky" in text


SOMETIMES = """
    import os, pathlib, random
    def test_sometimes():
        # Fails on 30% of calls: the n-th call of the whole test session draws from seed n.
        path = pathlib.Path(os.environ["CALLS_FILE"])
        n = len(path.read_text()) if path.exists() else 0
        path.write_text("x" * (n + 1))
        assert random.Random(n).random() >= 0.3
    def test_steady():
        pass
"""


# One xdist worker is enough to record through the controller (every run starts its workers).
@pytest.mark.parametrize("xdist", [(), ("-n", "1")], ids=["serial", "xdist"])
def test_a_30_percent_flaky_test_on_one_clean_commit_is_flagged_within_10_runs(
    pytester: pytest.Pytester,
    history: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    xdist: tuple[str, ...],
) -> None:
    git_repo(pytester)
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_s=SOMETIMES)
    git(pytester.path, "add", "-A")
    git(pytester.path, "commit", "-qm", "1")
    monkeypatch.setenv("CALLS_FILE", str(tmp_path / "calls"))
    flagged = None
    for run in range(1, 11):
        pytester.runpytest("--feedback", "-p", "no:cacheprovider", *xdist)
        with Store.open_existing(history) as store:
            if [e.nodeid for e in store.reads.flagged_tests(99.0)] == ["test_s.py::test_sometimes"]:
                flagged = run
                break
    assert flagged is not None
    assert flagged <= 10
    report = cli(capsys, "report", "--format", "markdown", "--db", history)
    assert "failed and passed on clean commit" in report


# -- reruns ----------------------------------------------------------------------------------

RERUN_SUITE = """
    import os, pathlib, pytest

    @pytest.fixture
    def attempt():
        # Set up again for every attempt, as pytest would for the next test.
        path = pathlib.Path(os.environ["ATTEMPTS_FILE"])
        n = len(path.read_text()) if path.exists() else 0
        path.write_text("x" * (n + 1))
        return n

    def test_half(attempt):
        assert attempt % 2 == 1, "fails on its first call"

    def test_broken():
        assert False, "always"

    def test_fine():
        pass
"""


def test_rerun_classifies_a_flaky_test_and_a_deterministic_failure_fails_the_run(
    pytester: pytest.Pytester, history: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATTEMPTS_FILE", str(tmp_path / "attempts"))
    pytester.makepyfile(test_r=RERUN_SUITE)
    junit = tmp_path / "junit.xml"
    result = pytester.runpytest(
        "--feedback-rerun", "2", "-p", "no:cacheprovider", f"--junitxml={junit}"
    )
    assert result.ret == 1
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*feedback: flaky: test_r.py::test_half passed on a rerun*"])
    with Store.open_existing(history) as store:
        flaky = {e.nodeid for e in store.reads.flagged_tests(99.0)}
        run_id = store.reads.runs()[0]["id"]
        attempts = store.reads.attempts(run_id)
        results = {r["nodeid"]: r["outcome"] for r in store.reads.results(run_id)}
    assert flaky == {"test_r.py::test_half"}
    assert [a[2] for a in attempts["test_r.py::test_half"]] == ["failed", "passed"]
    assert [a[2] for a in attempts["test_r.py::test_broken"]] == ["failed"] * 3
    assert all(a[1] == "rerun" and a[3] > 0 for a in attempts["test_r.py::test_half"])
    assert results == {
        "test_r.py::test_half": "passed",
        "test_r.py::test_broken": "failed",
        "test_r.py::test_fine": "passed",
    }
    # JUnit XML: Surefire's elements inside the testcases; pytest's own counts and cases stay.
    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("3", "1")
    cases = {c.get("name"): c for c in root.iter("testcase")}
    half, broken = cases["test_half"], cases["test_broken"]
    assert [e.tag for e in half] == ["flakyFailure"]
    assert "fails on its first call" in (half[0].findtext("stackTrace") or "")
    assert [e.tag for e in broken] == ["failure", "rerunFailure", "rerunFailure"]
    read = {c.name: c.outcome for c in read_cases(root)}
    assert read == {"test_half": "passed", "test_broken": "failed", "test_fine": "passed"}


def test_a_failing_set_up_is_set_up_again_on_the_rerun(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATTEMPTS_FILE", str(tmp_path / "attempts"))
    pytester.makepyfile(
        test_m="""
        import os, pathlib, pytest

        @pytest.fixture(scope="module")
        def shaky():
            path = pathlib.Path(os.environ["ATTEMPTS_FILE"])
            n = len(path.read_text()) if path.exists() else 0
            path.write_text("x" * (n + 1))
            if n == 0:
                raise RuntimeError("first set-up fails")
            return n

        def test_a(shaky):
            assert shaky == 1

        def test_b(shaky):
            assert shaky == 1  # the module fixture is kept for the next test, as pytest does
        """
    )
    result = pytester.runpytest("--feedback-rerun", "1", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert "1 rerun" in result.stdout.str()


def test_pytest_rerunfailures_reruns_are_read_not_doubled(
    pytester: pytest.Pytester, history: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in registered as ``rerunfailures`` does what pytest-rerunfailures does: each
    failed attempt but the last is logged with outcome ``rerun``, then the test runs again."""
    monkeypatch.setenv("ATTEMPTS_FILE", str(tmp_path / "attempts"))
    pytester.makepyfile(test_r=RERUN_SUITE)
    pytester.makeconftest(
        """
        import pytest
        from _pytest.runner import runtestprotocol

        class Rerunfailures:
            @pytest.hookimpl(tryfirst=True)
            def pytest_runtest_protocol(self, item, nextitem):
                reruns = item.config.getoption("reruns")
                item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
                for i in range(reruns + 1):
                    reports = runtestprotocol(item, nextitem=nextitem, log=False)
                    for report in reports:
                        if not report.failed or i == reruns:
                            item.ihook.pytest_runtest_logreport(report=report)
                        else:
                            report.outcome = "rerun"
                            item.ihook.pytest_runtest_logreport(report=report)
                            break
                    else:
                        break
                item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
                return True

            def pytest_report_teststatus(self, report):
                if report.outcome == "rerun":
                    return "rerun", "R", "RERUN"

        def pytest_addoption(parser):
            parser.addoption("--reruns", type=int, default=0)

        def pytest_configure(config):
            config.pluginmanager.register(Rerunfailures(), "rerunfailures")
        """
    )
    result = pytester.runpytest("--reruns", "2", "--feedback-rerun", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    assert len((tmp_path / "attempts").read_text()) == 2  # test_half ran twice, not more
    with Store.open_existing(history) as store:
        run_id = store.reads.runs()[0]["id"]
        attempts = store.reads.attempts(run_id)
        flaky = {e.nodeid for e in store.reads.flagged_tests(99.0)}
    assert [a[2] for a in attempts["test_r.py::test_half"]] == ["failed", "passed"]
    assert [a[2] for a in attempts["test_r.py::test_broken"]] == ["failed"] * 3
    assert flaky == {"test_r.py::test_half"}


# -- the quarantine --------------------------------------------------------------------------

HOSTILE_IDS = [
    'tests/test_a.py::test_b[a"b]',
    "tests/test_a.py::test_b[line\nbreak]",
    "tests/test_a.py::test_b[back\\slash::colons]",
    "tests/t\u00e9st_\u00fc.py::test_\u2603[\U0001f600]",
    "tests/bad_\udcff.py::test_x",  # a byte of a non-UTF-8 file name
    "tests/test_a.py::Test::test_c[ [x] , {y}: 'z']",
]


def test_hostile_node_ids_round_trip_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / quarantine.DEFAULT_FILE
    entries = {n: quarantine.Entry(n, f"because {n}", "me", "2026-01-01") for n in HOSTILE_IDS}
    quarantine.save(path, entries)
    assert quarantine.load(path) == entries
    assert path.read_text(encoding="utf-8").isascii()


def test_quarantine_absorbs_a_failure_then_expires(
    pytester: pytest.Pytester,
    history: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(
        test_q="""
        import pytest
        @pytest.mark.parametrize("x", ['a"b\\\\c::d'])
        def test_bad(x):
            assert False, "known"
        def test_good():
            pass
        """
    )
    nodeid = 'test_q.py::test_bad[a"b\\\\c::d]'
    monkeypatch.chdir(pytester.path)
    monkeypatch.setenv("PYTEST_FEEDBACK_TODAY", "2026-03-01")
    assert main(["quarantine", "add", nodeid, "--reason", "bug 7", "--expires", "2026-03-02"]) == 0
    result = pytester.runpytest("--feedback", "-p", "no:cacheprovider")
    assert result.ret == 0
    result.assert_outcomes(passed=1, xfailed=1)
    lines = [line for line in result.outlines if line.startswith("feedback: quarantine")]
    assert lines == [f"feedback: quarantined failure absorbed: {nodeid} (bug 7, until 2026-03-02)"]
    with Store.open_existing(history) as store:
        run_id = store.reads.runs()[0]["id"]
        outcomes = {r["nodeid"]: r["outcome"] for r in store.reads.results(run_id)}
    assert outcomes[nodeid] == "failed"  # recorded as what it was
    assert "quarantined failure absorbed" in cli(capsys, "report", "--format", "markdown")

    monkeypatch.setenv("PYTEST_FEEDBACK_TODAY", "2026-03-03")
    result = pytester.runpytest("--feedback", "-p", "no:cacheprovider")
    assert result.ret == 1
    result.assert_outcomes(passed=1, failed=1)
    warning = f"feedback: warning: the quarantine of {nodeid} expired on 2026-03-02: it no"
    assert any(line.startswith(warning) for line in result.outlines)
    assert main(["quarantine", "remove", nodeid]) == 0
    assert quarantine.load(pytester.path / quarantine.DEFAULT_FILE) == {}


def test_quarantine_commands_list_suggest_and_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pytest.ini").write_text("[pytest]\nfeedback_quarantine = ci/q.json\n")
    (tmp_path / "ci").mkdir()
    assert main(["quarantine", "add", "t.py::a", "--reason", "r", "--expires", "30d"]) == 0
    assert (tmp_path / "ci" / "q.json").is_file()
    assert main(["quarantine", "list"]) == 0
    assert "t.py::a: r (added" in capsys.readouterr().out
    assert main(["quarantine", "remove", "t.py::zzz"]) == 1
    assert "is not in" in capsys.readouterr().err
    (tmp_path / "ci" / "q.json").write_text("{not json")
    assert main(["quarantine", "list"]) == 1
    assert "is not a valid quarantine file" in capsys.readouterr().err
    assert main(["quarantine", "add", "t.py::a", "--reason", "r", "--expires", "soon"]) == 1
    capsys.readouterr()
    # A date already past is refused; a test the working tree does not have is warned of; an
    # update keeps the owner and the day it was added.
    (tmp_path / "ci" / "q.json").unlink()
    (tmp_path / "t.py").write_text("def test_a():\n    pass\n")
    monkeypatch.setenv("PYTEST_FEEDBACK_TODAY", "2026-03-01")
    assert (
        main(["quarantine", "add", "t.py::test_a", "--reason", "r", "--expires", "2026-02-01"]) == 1
    )
    assert "2026-02-01 is already past" in capsys.readouterr().err
    assert main(["quarantine", "add", "t.py::test_a", "--reason", "r", "--owner", "ana"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.startswith("quarantined t.py::test_a, owner ana in ")
    monkeypatch.setenv("PYTEST_FEEDBACK_TODAY", "2026-03-05")
    assert main(["quarantine", "add", "t.py::test_a", "--reason", "r2"]) == 0
    assert capsys.readouterr().out.startswith("updated the entry of t.py::test_a, owner ana in ")
    entry = quarantine.load(tmp_path / "ci" / "q.json")["t.py::test_a"]
    assert (entry.reason, entry.owner, entry.added) == ("r2", "ana", "2026-03-01")
    assert main(["quarantine", "add", "t.py::test_retyr", "--reason", "r"]) == 0
    assert "t.py::test_retyr is not a test under" in capsys.readouterr().err


def test_quarantine_suggest_lists_flaky_tests_until_they_are_quarantined(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_feedback.history.records import RunRecord, TestRecord

    monkeypatch.chdir(tmp_path)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "t.py").write_text("def test_a():\n    pass\n")
    db = tmp_path / "h.db"
    with Store(db) as store:
        for index, outcome in enumerate(["failed", "passed"]):  # one clean commit: evidence
            run = RunRecord(f"r{index}", 1.7e9 + index, git_commit="c" * 40, git_dirty=False)
            run.tests["t.py::test_a"] = TestRecord("t.py::test_a", outcome, call_s=0.1)
            store.record_run(run)
    capsys.readouterr()
    assert main(["quarantine", "suggest", "--db", str(db)]) == 0
    assert capsys.readouterr().out.startswith("t.py::test_a: failed and passed on clean commit")
    assert main(["quarantine", "add", "t.py::test_a", "--reason", "flaky"]) == 0
    capsys.readouterr()
    assert main(["quarantine", "suggest", "--db", str(db)]) == 0
    assert capsys.readouterr().out.startswith(
        "no candidate: the 1 test the history shows flaky on evidence is quarantined already"
    )


# -- repeats of new tests ------------------------------------------------------------------


def test_new_runs_catch_a_new_flaky_test_and_cost_nothing_without_one(
    pytester: pytest.Pytester, history: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATTEMPTS_FILE", str(tmp_path / "attempts"))
    pytester.makepyfile(test_old="def test_old():\n    pass\n")
    pytester.runpytest("--feedback", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    quiet = pytester.runpytest("--feedback-new-runs", "5", "-p", "no:cacheprovider")
    quiet.assert_outcomes(passed=1)
    assert "no test is new" in quiet.stdout.str()
    pytester.makepyfile(
        test_new="""
        import os, pathlib
        def test_coin():
            path = pathlib.Path(os.environ["ATTEMPTS_FILE"])
            n = len(path.read_text()) if path.exists() else 0
            path.write_text("x" * (n + 1))
            assert n != 2, "the third call fails"
        """
    )
    result = pytester.runpytest("--feedback-new-runs", "5", "-p", "no:cacheprovider")
    assert result.ret == 1
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*feedback: new test is flaky: test_new.py::test_coin (attempts: passed, passed, failed)"]
    )
    with Store.open_existing(history) as store:
        run_id = store.reads.runs()[0]["id"]
        attempts = store.reads.attempts(run_id)
        flaky = {e.nodeid for e in store.reads.flagged_tests(99.0)}
    assert [a[1] for a in attempts["test_new.py::test_coin"]] == ["repeat"] * 3
    assert "test_old.py::test_old" not in attempts
    assert flaky == {"test_new.py::test_coin"}


# -- the map's evidence ------------------------------------------------------------------------


def test_a_flip_after_an_edit_to_what_the_test_reaches_is_not_flaky_elsewhere_it_is(
    pytester: pytest.Pytester,
    history: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(
        mod="V = 1",
        other="W = 1",
        test_v="import os\nfrom mod import V\ndef test_v():\n    assert V == 1\n",
        test_w="import os\ndef test_w():\n    assert not os.environ.get('FAIL')\n",
    )
    args = ("--feedback", "-p", "no:cacheprovider")
    # In a process of its own: in this one, an in-process run before may have left coverage.py
    # unable to measure.
    pytester.runpytest_subprocess("--feedback-cov", *args[1:]).assert_outcomes(passed=2)
    # test_v: fails after an edit to mod.py (which it reaches), passes after the next one.
    (pytester.path / "mod.py").write_text("V = 2\n")
    pytester.runpytest(*args)
    (pytester.path / "mod.py").write_text("V = 1\n")
    # test_w: fails and passes while only other.py (which it does not reach) changes.
    monkeypatch.setenv("FAIL", "1")
    (pytester.path / "other.py").write_text("W = 2\n")
    pytester.runpytest(*args)
    monkeypatch.delenv("FAIL")
    (pytester.path / "other.py").write_text("W = 3\n")
    pytester.runpytest(*args)
    with Store.open_existing(history) as store:
        flaky = {e.nodeid for e in store.reads.flagged_tests(99.0)}
        recent = store.reads.recent_samples(["test_v.py::test_v", "test_w.py::test_w"])
    assert flaky == {"test_w.py::test_w"}
    marks = {s.mark for s in recent["test_w.py::test_w"][-2:]}  # its failing run, then the next
    assert len(marks) == 1
    assert None not in marks
    why = cli(capsys, "why", "test_w.py::test_w", "--db", history)
    assert "nothing it reaches changed" in why


def test_the_report_json_of_a_run_is_unchanged_in_shape(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    pytester.runpytest("--feedback", "-p", "no:cacheprovider")
    monkeypatch.chdir(pytester.path)
    assert json.loads(cli(capsys, "report", "--format", "json"))["flaky"] == []
