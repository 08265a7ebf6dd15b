"""A ``--feedback-try-scope`` run judged against the history: outcomes that changed (the widened
fixture leaks state from one test to the next: the widening is unsafe) and the seconds saved."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Optional

from pytest_feedback.durations import format_duration
from pytest_feedback.history.estimates import TestEstimate
from pytest_feedback.history.records import FAILING


@dataclasses.dataclass(frozen=True)
class Trial:
    """What the run showed next to the history's last outcome and median phases."""

    widened: tuple[str, ...]
    #: (node id, outcome in the history, outcome now) of the tests whose outcome changed.
    changed: tuple[tuple[str, str, str], ...]
    #: Tests compared (known to the history, not flaky, not skipped either time).
    compared: int
    #: Known tests left out because the history calls them flaky.
    flaky: int
    #: Seconds of the compared tests' phases: the history's medians, and this run.
    history_s: float
    now_s: float
    #: Test time (every test's phases) of the recent recorded runs, and how many tests each ran:
    #: how much the suite's time varies without any change.
    recent: tuple[tuple[float, int], ...] = ()

    @property
    def unsafe(self) -> bool:
        return bool(self.changed)

    @property
    def saved_s(self) -> float:
        return self.history_s - self.now_s

    def lines(self) -> list[str]:
        """What the terminal summary says."""
        what = ", ".join(self.widened)
        if self.unsafe:
            head = (
                f"feedback: try-scope {what}: UNSAFE: {len(self.changed)} test(s) changed outcome "
                "with the wider scope (tests change what the fixture returns):"
            )
            body = [f"  {n}: {before} -> {now}" for n, before, now in self.changed[:10]]
            if len(self.changed) > 10:
                body.append(f"  ... and {len(self.changed) - 10} more")
        else:
            head = (
                f"feedback: try-scope {what}: no outcome changed ({self.compared} tests "
                f"compared with the history"
                + (f", {self.flaky} flaky left out" if self.flaky else "")
                + ")"
            )
            body = []
        saved = (
            f"feedback: try-scope: the compared tests took {format_duration(self.now_s)} against "
            f"{format_duration(self.history_s)} in the history: "
            + (
                f"{format_duration(self.saved_s)} saved"
                if self.saved_s >= 0
                else f"{format_duration(-self.saved_s)} slower"
            )
        )
        if self.recent:
            low, high = min(s for s, _ in self.recent), max(s for s, _ in self.recent)
            saved += (
                f" (the last {len(self.recent)} recorded runs' tests took "
                f"{format_duration(low)} to {format_duration(high)}: a difference within that "
                "range may be the machine's)"
            )
        return [head, *body, saved]


def judge(
    widened: Sequence[str],
    history: Mapping[str, TestEstimate],
    now: Mapping[str, tuple[str, float]],
    recent: Sequence[tuple[float, int]] = (),
) -> Trial:
    """``now``: per test of this run, its outcome and its phases' seconds; ``recent``: the test
    time and test count of the recent recorded runs (only those that ran as many tests as this
    run are kept)."""
    changed = []
    compared = flaky = 0
    history_s = now_s = 0.0
    for nodeid, (outcome, seconds) in sorted(now.items()):
        known = history.get(nodeid)
        if known is None or known.last_outcome is None:
            continue
        if known.flaky:
            flaky += 1
            continue
        before = known.last_outcome
        if "skipped" in (before, outcome):
            continue
        compared += 1
        history_s += known.setup_s + known.call_s + known.teardown_s
        now_s += seconds
        if _failing(before) != _failing(outcome):
            changed.append((nodeid, before, outcome))
    alike = tuple(r for r in recent if r[1] == len(now))
    return Trial(tuple(widened), tuple(changed), compared, flaky, history_s, now_s, alike)


def _failing(outcome: Optional[str]) -> bool:
    return outcome in FAILING or outcome == "xpassed"
