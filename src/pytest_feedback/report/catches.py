"""What a budget catches, in words: a `planning.simulate.Simulation` as text, markdown and JSON.

``pytest-feedback simulate`` prints these; the report's "what a budget catches" block is the
short form (`short_lines`). The JSON document is versioned (docs/contract.md, "JSON formats").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from pytest_feedback.durations import format_budget, format_duration
from pytest_feedback.planning.simulate import (
    DEFAULT_BUDGETS,
    MIN_FAILING_RUNS,
    Simulation,
    prepare,
    tally,
)
from pytest_feedback.report.allowance import (
    REPLAY_S,
    REPLAYED_RUN_FIXED_S,
    REPLAYED_RUN_S,
    Allowance,
)

if TYPE_CHECKING:
    from pytest_feedback.history.estimates import Estimates
    from pytest_feedback.history.store import Store

VERSION = 1
#: The report's block title.
TITLE = "What a budget catches (replayed over the history's failing runs)"


def _pct(value: float) -> str:
    return f"{value:.0%}"


def headline(sim: Simulation) -> str:
    """What the figures rest on, or why there are none."""
    looked = f"{sim.considered:,} recorded run{'' if sim.considered == 1 else 's'}"
    if sim.failing_runs == 0:
        return (
            f"No failing run to replay among the {looked}: nothing says yet what a budget "
            "catches. The figures come as runs that fail are recorded."
        )
    if not sim.enough:
        return (
            f"Only {sim.failing_runs} failing run{'' if sim.failing_runs == 1 else 's'} among "
            f"the {looked} ({MIN_FAILING_RUNS} needed): too few to say what a budget catches."
        )
    return (
        f"Replayed over {sim.failing_runs:,} failing runs ({sim.failing_tests:,} failing tests) "
        f"of the {looked}; the whole suite is predicted at {format_duration(sim.suite_s)}."
    )


def notes(sim: Simulation) -> list[str]:
    """The runs not replayed and why, and what was assumed."""
    out = []
    if sim.passed:
        out.append(f"{sim.passed:,} runs passed (nothing to catch).")
    for reason, count in sorted(sim.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
        out.append(f"Not replayed, {count:,} run{'' if count == 1 else 's'}: {reason}.")
    for assumption, count in sorted(sim.assumed.items(), key=lambda kv: (-kv[1], kv[0])):
        out.append(f"Assumed for {count:,} run{'' if count == 1 else 's'}: {assumption}.")
    if sim.dropped:
        out.append(
            f"{sim.dropped:,} older runs' details were dropped by retention "
            "(raise feedback_keep_runs to replay more)."
        )
    return out


def _cells(sim: Simulation) -> list[list[str]]:
    rows = []
    for row in sim.rows:
        rows.append(
            [
                format_budget(row.budget_s),
                f"{_pct(sim.rate(row.ours))} ({row.ours.runs:.0f}/{sim.failing_runs})",
                _pct(sim.test_rate(row.ours)),
                format_duration(sim.mean_predicted(row)),
                _pct(sim.rate(row.fastest)),
                _pct(sim.rate(row.random)),
            ]
        )
    return rows


_HEAD = [
    "budget",
    "failing runs caught",
    "failing tests caught",
    "mean predicted",
    "fastest first",
    "random",
]


def text_lines(sim: Simulation) -> list[str]:
    """``simulate``'s text: the headline, a table per budget (when there are runs enough), the
    notes."""
    lines = [headline(sim)]
    if sim.enough:
        cells = [_HEAD, *_cells(sim)]
        widths = [max(len(row[i]) for row in cells) for i in range(len(_HEAD))]
        lines.append("")
        for row in cells:
            lines.append(
                "  "
                + "  ".join(
                    c.ljust(w) if i == 0 else c.rjust(w)
                    for i, (c, w) in enumerate(zip(row, widths))
                ).rstrip()
            )
        lines += [
            "",
            "Fastest first and random fill the same budget in another order: the gap is "
            "what the ranking adds.",
        ]
    notes_ = notes(sim)
    if notes_:
        lines += ["", *notes_]
    return lines


def markdown_lines(sim: Simulation) -> list[str]:
    lines = [headline(sim)]
    if sim.enough:
        lines += ["", "| " + " | ".join(_HEAD) + " |", "|" + "---|" * len(_HEAD)]
        lines += ["| " + " | ".join(row) + " |" for row in _cells(sim)]
    notes_ = notes(sim)
    if notes_:
        lines += ["", *(f"- {n}" for n in notes_)]
    return lines


def short_lines(sim: Simulation) -> list[str]:
    """The report's block: one line of catch rates per budget, with the baselines."""
    if not sim.enough:
        return []
    ours = ", ".join(f"{format_budget(r.budget_s)} {_pct(sim.rate(r.ours))}" for r in sim.rows)
    fastest = ", ".join(_pct(sim.rate(r.fastest)) for r in sim.rows)
    return [
        f"Failing runs caught: {ours} (fastest tests first: {fastest}), over the newest "
        f"{sim.failing_runs:,} failing runs; `pytest-feedback simulate` says more."
    ]


def document(sim: Simulation) -> dict[str, Any]:
    """The ``simulate --format json`` document (version 1)."""

    def rate(value: float) -> Optional[float]:
        return round(value, 4) if sim.enough else None

    return {
        "version": VERSION,
        "runs": sim.considered,
        "passed": sim.passed,
        "failing_runs": sim.failing_runs,
        "failing_tests": sim.failing_tests,
        "enough": sim.enough,
        "min_failing_runs": MIN_FAILING_RUNS,
        "suite_s": round(sim.suite_s, 3),
        "dropped": sim.dropped,
        "skipped": [{"reason": r, "runs": n} for r, n in sorted(sim.skipped.items())],
        "assumed": [{"assumption": a, "runs": n} for a, n in sorted(sim.assumed.items())],
        "budgets": [
            {
                "budget_s": round(row.budget_s, 3),
                "runs_caught": round(row.ours.runs),
                "tests_caught": round(row.ours.tests),
                "runs_rate": rate(sim.rate(row.ours)),
                "tests_rate": rate(sim.test_rate(row.ours)),
                "mean_predicted_s": round(sim.mean_predicted(row), 3),
                "fastest_first": {
                    "runs_rate": rate(sim.rate(row.fastest)),
                    "tests_rate": rate(sim.test_rate(row.fastest)),
                },
                "random": {
                    "runs_rate": rate(sim.rate(row.random)),
                    "tests_rate": rate(sim.test_rate(row.random)),
                },
            }
            for row in sim.rows
        ],
    }


#: The report's block replays at most this many of the newest failing runs, and fewer on a big
#: suite (as many as the report's allowance has room for, `allowance.Allowance`; below
#: `MIN_FAILING_RUNS` the block is left out): a report stays quick; ``pytest-feedback simulate``
#: replays them all.
REPORT_FAILING_RUNS = 20
#: The report's budgets when the suite is shorter than the first default budget: shares of it.
REPORT_SHARES = (0.1, 0.25, 0.5)
#: How the report names the block when it leaves it out.
LEFT_OUT = "what a budget catches (`pytest-feedback simulate`)"


def budget_catches(
    store: Store,
    rootdir: Path,
    failing_runs: int = REPORT_FAILING_RUNS,
    estimates: Optional[Estimates] = None,
) -> Optional[Simulation]:
    """The report's "what a budget catches" figures over the newest ``failing_runs`` failing
    runs; None when the history has too few of them. The default budgets shorter than the
    whole suite, else shares of it. ``estimates``: the store's, when the caller has them."""
    from pytest_feedback.selection.replay import replay_inputs

    replay, change_of = replay_inputs(store, rootdir, estimates)
    result = Simulation([])
    prepared = prepare(replay, result, change_of, failing_limit=failing_runs)
    if not result.enough:
        return None
    budgets = [b for b in DEFAULT_BUDGETS if b < result.suite_s] or [
        max(1.0, round(result.suite_s * share)) for share in REPORT_SHARES
    ]
    return tally(result, prepared, budgets)


def report_catches(
    store: Store, runs: Sequence[Mapping[str, Any]], allowance: Optional[Allowance] = None
) -> Optional[Simulation]:
    """The report's block from the history's ``runs`` (newest first, as `HistoryReads.runs`
    gives them); None when fewer than `MIN_FAILING_RUNS` failed, when the report's
    ``allowance`` has no room for replaying that many (it then names the block), or when the
    replay fails (the report is never lost for it)."""
    if sum(1 for run in runs if run.get("failed")) < MIN_FAILING_RUNS:
        return None  # not worth reading the history's results
    recorded = Path(str(runs[0].get("rootdir") or "."))
    try:
        allowance = allowance or Allowance(store)
        replayed = allowance.replayable_runs(REPORT_FAILING_RUNS)
        cost = REPLAY_S + replayed * REPLAYED_RUN_S
        if replayed < MIN_FAILING_RUNS or not allowance.take(
            LEFT_OUT, cost, replayed * REPLAYED_RUN_FIXED_S
        ):
            if LEFT_OUT not in allowance.left_out:
                allowance.left_out.append(LEFT_OUT)
            return None
        rootdir = recorded if recorded.is_dir() else Path.cwd()
        return budget_catches(store, rootdir, replayed, allowance.estimates())
    except Exception:  # the report's other sections matter more than this block
        return None
