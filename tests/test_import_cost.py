"""A plain recorded run imports only what recording needs.

The map (networkx, coverage.py), the report and the planners cost a tenth of a second or more to
import; a run that asked for none of them must not pay it (benchmarks/overhead.py measures the
rest of recording's cost).
"""

from __future__ import annotations

import pytest

HEAVY = (
    "coverage",
    "networkx",
    "rich",
    "pytest_feedback.depmap.graph",
    "pytest_feedback.report.model",
    "pytest_feedback.planning.budget",
    "pytest_feedback.planning.shards",
)


def test_a_recorded_run_imports_no_map_report_or_planner(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        f"""
        import sys

        def pytest_unconfigure():
            loaded = [m for m in {HEAVY!r} if m in sys.modules]
            with open("loaded.txt", "w") as f:
                f.write(",".join(loaded))
        """
    )
    pytester.makepyfile("def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess("--feedback", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["feedback: recorded run 1 *"])
    assert (pytester.path / "loaded.txt").read_text() == ""
