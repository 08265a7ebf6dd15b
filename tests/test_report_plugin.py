"""End to end: `pytest --feedback-report` and `pytest-feedback report`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_feedback.cli.commands import main

FLIPPING = """
    import pathlib
    import time

    def test_flips():
        counter = pathlib.Path(__file__).with_name("count.txt")
        runs = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(runs + 1))
        assert runs % 2 == 0

    def test_slowish():
        time.sleep(0.05)

    def test_quick():
        pass
"""


def test_a_flipping_test_is_reported_unstable_after_four_runs(pytester: pytest.Pytester) -> None:
    """Its runs are not on one clean commit, it was not rerun and there is no map: no evidence
    that it is flaky (docs/flaky.md)."""
    pytester.makepyfile(test_flip=FLIPPING)
    for _ in range(3):
        result = pytester.runpytest("--feedback-report", "-p", "no:cacheprovider")
        assert "Flaky" not in result.stdout.str()
    result = pytester.runpytest("--feedback-report", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "feedback: recorded run 4 (3 tests, * fixture executions) into *",
            "*= pytest-feedback report =*",
            "Last run: run 4 · * UTC",
            "  3 tests, 1 failed · wall * · test time *",
            "  no xdist · *% of the wall time in tests",
            "History: 4 runs · 3 tests · expected test time *",
            "Slowest tests (of 3)",
            "test *estimate*this run*set/call/tear*trend",
            "test_flip.py::test_slowish *",
            "Flaky / quarantined",
            "unstable, not flaky (its outcome flipped with its code):",  # 80 columns: wrapped
            "test_flip.py::test_flips",
            "*= 1 failed, 2 passed in *",
        ]
    )
    assert "\x1b[" not in result.stdout.str()  # not a terminal: plain


def test_only_the_xdist_controller_prints_the_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a(): pass\ndef test_b(): pass")
    result = pytester.runpytest("--feedback-report", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert result.stdout.str().count("pytest-feedback report") == 1
    result.stdout.fnmatch_lines(["  2 xdist workers · parallel efficiency *%"])


def test_report_without_recording_reads_the_history(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest(
        "--feedback-report", "--feedback-no-record", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["feedback: warning: no report: no history at *"])
    pytester.runpytest("--feedback", "-p", "no:cacheprovider")
    result = pytester.runpytest(
        "--feedback-report", "--feedback-no-record", "-p", "no:cacheprovider"
    )
    result.stdout.fnmatch_lines(["History: 1 run · 1 test *"])


def test_a_broken_history_is_one_warning_not_a_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    (pytester.path / "bad.db").write_bytes(b"not sqlite" * 100)
    result = pytester.runpytest(
        "--feedback-report", "--feedback-db", "bad.db", "-p", "no:cacheprovider"
    )
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "feedback: warning: this run was not recorded: *not a readable*",
            "feedback: warning: no report: *not a readable*",
        ]
    )


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> Path:
    pytester.makepyfile(test_flip=FLIPPING)
    for _ in range(2):
        pytester.runpytest("--feedback", "-p", "no:cacheprovider")
    return pytester.path / ".pytest-feedback" / "history.db"


def test_cli_report_formats(recorded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(recorded)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Last run: run 2 · ")
    assert "Slowest tests (of 3)" in out

    assert main(["report", "--db", str(recorded), "--format", "markdown", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## pytest-feedback report\n")
    assert "| ` test_flip.py::test_slowish ` |" in out
    assert "test_quick" not in out.split("### Slowest fixtures")[0].split("### Slowest tests")[1]

    assert main(["report", "--db", str(recorded), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["version"] == 1
    assert data["runs"] == 2
    assert data["last_run"]["tests"] == 3
    assert data["tests"][0]["nodeid"] == "test_flip.py::test_slowish"
    assert len(data["tests"]) == 3


def test_cli_report_to_a_file(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "summary.md"
    assert main(["report", "--db", str(recorded), "--format", "markdown", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("## pytest-feedback report")
    text_out = tmp_path / "report.txt"
    assert main(["report", "--db", str(recorded), "-o", str(text_out)]) == 0
    assert "\x1b" not in text_out.read_text(encoding="utf-8")


def test_cli_report_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(tmp_path / "none.db")]) == 1
    assert "error: no history at" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["report", "--top", "0"])
    assert exc.value.code == 2
    assert "'0' is not a whole number >= 1" in capsys.readouterr().err
