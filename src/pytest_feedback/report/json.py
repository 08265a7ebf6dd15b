"""The report as JSON: the stable, versioned format of docs/contract.md ("JSON formats").

Keys may be added; renaming or dropping one needs a new `VERSION`.
"""

from __future__ import annotations

import json
import math
from typing import Any, Optional

from pytest_feedback.report.catches import document as catches_document
from pytest_feedback.report.model import Report, TestRow

VERSION = 1
_INF = float("inf")


def document(report: Report, *, top: Optional[int] = None) -> dict[str, Any]:
    """The report as JSON-ready data; ``top`` limits ``tests`` and ``fixtures`` (None: all)."""
    tests = report.tests if top is None else report.tests[:top]
    fixtures = report.fixtures if top is None else report.fixtures[:top]
    run = report.last_run
    return {
        "version": VERSION,
        "runs": report.runs,
        "last_run": None
        if run is None
        else {
            "wall_s": _num(run.wall_s),
            "tests": run.tests,
            "failed": run.failed,
            "workers": run.workers,
            "run_id": run.run_id,
            "started_at": run.started_at,
            "test_time_s": _num(run.test_time_s),
            "efficiency": None if run.efficiency is None else _num(run.efficiency),
            "git_commit": run.git_commit,
            "budget": None
            if run.budget_s is None
            else {
                "budget_s": _num(run.budget_s),
                "predicted_s": None if run.predicted_s is None else _num(run.predicted_s),
                "took_s": None if run.took_s is None else _num(run.took_s),
                "to_exit": run.to_exit,
            },
        },
        # The store rounds these already (this list can hold 50,000 tests).
        "tests": [
            {
                "nodeid": t.nodeid,
                "estimate_s": t.estimate_s,
                "setup_s": t.setup_s,
                "call_s": t.call_s,
                "teardown_s": t.teardown_s,
                "runs": t.runs,
                "fail_rate": t.fail_rate,
                "flaky": t.flaky,
                "slowdown": round(t.slowdown, 6) if t.slowdown < _INF else None,
                "last_outcome": t.last_outcome,
            }
            for t in tests
        ],
        "fixtures": [
            {
                "name": f.name,
                "scope": f.scope,
                "setup_s": _num(f.setup_s),
                "teardown_s": _num(f.teardown_s),
                "executions": _num(f.executions_per_run),
                "used_by": f.used_by,
                "location": f.location,
                "cost_per_run_s": _num(f.cost_per_run_s),
            }
            for f in fixtures
        ],
        "files": [
            {"file": r.file, "tests": r.tests, "estimate_s": _num(r.estimate_s)}
            for r in (report.files if top is None else report.files[:top])
        ],
        "slowed_down": [_slowed(row) for row in report.slowed_down],
        "flaky": [row.nodeid for row in report.flaky],
        "hint": report.hint or None,
        "budget_catches": None if report.catches is None else catches_document(report.catches),
        "advice": list(report.advice),
        "left_out": list(report.left_out),
        "gone_tests": report.gone,
    }


def render(report: Report, *, top: Optional[int] = None) -> str:
    # Compact: the C encoder is ten times faster than an indented dump on large suites.
    return json.dumps(document(report, top=top), separators=(",", ":")) + "\n"


def _slowed(row: TestRow) -> dict[str, Any]:
    return {
        "nodeid": row.nodeid,
        "slowdown": _num(row.estimate.slowdown),
        "before_s": None if row.before_s is None else _num(row.before_s),
        "recent_s": None if row.recent_s is None else _num(row.recent_s),
    }


def _num(value: float) -> Optional[float]:
    """Rounded to microseconds; infinity (a test that took no time before) becomes null."""
    return round(value, 6) if math.isfinite(value) else None
