"""When our own filter leaves no test (an empty shard, a budget nothing fits, nothing affected),
the run says so in one line and succeeds: pytest's "no tests ran" (exit 5) is for a suite that
has none, not for a decision of ours. Nothing is recorded for a run in which no test ran.
"""

from __future__ import annotations

from pathlib import Path

import pytest

THREE = {f"test_{i}": f"def test_{i}(): pass" for i in range(3)}


# One xdist worker shows it: there the worker deselects, not the controller.
@pytest.mark.parametrize("xdist", [[], ["-n", "1"]], ids=["serial", "xdist"])
def test_an_empty_shard_succeeds(
    pytester: pytest.Pytester, history: Path, xdist: list[str]
) -> None:
    pytester.makepyfile(**THREE)
    result = pytester.runpytest("--feedback-shard=5/5", "-p", "no:cacheprovider", *xdist)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["feedback: shard 5/5: 0 tests*"])
    if not xdist:  # under xdist the workers deselect; the controller has no count
        result.stdout.fnmatch_lines(["*3 deselected*"])
    result.stdout.fnmatch_lines(["feedback: nothing recorded: no test ran"])
    assert not history.exists()


def test_a_budget_nothing_fits_succeeds(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_slow="import time\ndef test_s():\n    time.sleep(0.3)\n")
    pytester.runpytest("--feedback", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    result = pytester.runpytest("--feedback-budget=0.1", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "feedback: budget 0.1s: NO test fits: start-up and the session's end alone are "
            "predicted *; all 1 tests left out (predicted *) — raise the budget above *"
        ]
    )


def test_a_suite_without_tests_still_exits_5(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_none="x = 1")
    result = pytester.runpytest("--feedback-shard=1/2", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_a_collection_error_is_not_recorded(pytester: pytest.Pytester, history: Path) -> None:
    pytester.makepyfile(test_broken="import no_such_module_anywhere")
    result = pytester.runpytest("--feedback", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["feedback: nothing recorded: no test ran"])
    assert not history.exists()
