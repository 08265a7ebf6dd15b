"""The history as it stood before each recorded run: what a planner would have read then.

`HistoryReplay` reads the runs whose details the history keeps (`feedback_keep_runs`), oldest
first, and rebuilds for any of them what the budget's ranking reads of each test just before it:
whether the test was known, its last outcome, failure rate and flakiness over its samples in the
kept runs before it (summarised by the function the store's write uses,
`summaries.summary_values`), and how many runs it had not run for. A test counts as run in
every kept run from its first to its last (what it did in between is read only where it did not
pass: the history's failures are few, its passes many). Its duration, and what is not per test
(fixtures, start-up, per-test overhead, session end, pace), are the history's estimates now.
Pure reading: the file is not changed.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional

from pytest_feedback.history.estimates import Estimates, TestEstimate
from pytest_feedback.history.records import FAILING
from pytest_feedback.history.summaries import RECENT_KEEP, summary_values

if TYPE_CHECKING:
    from pytest_feedback.history.store import Store


@dataclasses.dataclass(frozen=True)
class ReplayRun:
    """One recorded run whose details are kept."""

    id: int
    #: Position among the kept runs, oldest first.
    index: int
    started_at: float
    commit: Optional[str]
    #: Tracked files had uncommitted edits (None: unknown).
    dirty: Optional[bool]
    exit_status: Optional[int]
    #: A ``--feedback-budget`` run (it ran what a budget chose).
    budget: bool
    #: ``K/N`` when it was one shard of a CI job.
    shard: Optional[str]
    args: tuple[str, ...]
    #: node id -> outcome, of the tests it ran that did not pass.
    outcomes: dict[str, str]

    @property
    def failing(self) -> set[str]:
        """The tests that failed or errored in it."""
        return {n for n, o in self.outcomes.items() if o in FAILING}

    @property
    def clean_commit(self) -> Optional[str]:
        """Its commit when the working tree had no edits (what git can rebuild); else None."""
        return self.commit if self.dirty is False else None


@dataclasses.dataclass
class _Known:
    """One test in the kept runs: the first and last it ran in (positions), and its outcomes
    other than passed (position, outcome), oldest first."""

    first: int
    last: int
    other: list[tuple[int, str]] = dataclasses.field(default_factory=list)


class HistoryReplay:
    """The kept runs of a history, and what it said of each test before any of them."""

    def __init__(
        self, runs: Sequence[ReplayRun], known: dict[str, _Known], now: Estimates, dropped: int
    ) -> None:
        self.runs = list(runs)
        self._known = known
        #: The estimates the history gives now (durations and what is not per test).
        self.now = now
        #: Runs the history has seen whose details retention dropped (not replayable).
        self.dropped = dropped
        self._commits = [r.clean_commit for r in self.runs]

    @classmethod
    def load(cls, store: Store, estimates: Optional[Estimates] = None) -> HistoryReplay:
        """Read the kept runs and what their tests did from an open store (``estimates``: its
        estimates, when the caller has loaded them already)."""
        db = store.db
        rows = db.query(
            "SELECT id, started_at, git_commit, git_dirty, exit_status, budget_s, shard, args"
            " FROM runs ORDER BY started_at, id"
        )
        position = {int(row[0]): i for i, row in enumerate(rows)}
        names = dict(db.query("SELECT id, nodeid FROM tests"))
        known: dict[str, _Known] = {}
        # Positions follow start times, run ids the order runs were recorded in: the same but
        # for a run merged in later (its first and last are then a little off).
        for test_id, first, last in db.query(
            "SELECT test_id, min(run_id), max(run_id) FROM results GROUP BY test_id"
        ):
            ends = sorted((position[int(first)], position[int(last)]))
            known[names[test_id]] = _Known(ends[0], ends[1])
        outcomes: list[dict[str, str]] = [{} for _ in rows]
        for run_id, test_id, outcome in db.query(
            "SELECT run_id, test_id, outcome FROM results WHERE outcome <> 'passed'"
        ):
            at = position.get(int(run_id))
            if at is not None:
                outcomes[at][names[test_id]] = str(outcome)
        for at, found in enumerate(outcomes):
            for nodeid, outcome in found.items():
                known[nodeid].other.append((at, outcome))
        for test in known.values():
            test.other.sort()
        runs = [
            ReplayRun(
                id=int(run_id),
                index=i,
                started_at=float(started),
                commit=commit,
                dirty=None if dirty is None else bool(dirty),
                exit_status=exit_status,
                budget=budget is not None,
                shard=shard,
                args=tuple(_args(args)),
                outcomes=outcomes[i],
            )
            for i, (run_id, started, commit, dirty, exit_status, budget, shard, args) in enumerate(
                rows
            )
        ]
        seen = int(db.query("SELECT count(*) FROM run_index")[0][0])
        now = store.reads.load_estimates() if estimates is None else estimates
        return cls(runs, known, now, max(0, seen - len(runs)))

    def tests_of(self, run: ReplayRun) -> list[str]:
        """The tests that ran in ``run`` (each test counts from its first kept run to its
        last), sorted."""
        at = run.index
        return sorted(n for n, k in self._known.items() if k.first <= at <= k.last)

    def estimates_before(self, run: ReplayRun) -> tuple[Estimates, dict[str, int]]:
        """The estimates and the runs-since-last-run (`HistoryReads.runs_since`) the history
        held just before ``run``, as far as the budget's ranking reads them (module doc)."""
        index = run.index
        now = self.now
        tests: dict[str, TestEstimate] = {}
        since: dict[str, int] = {}
        commits = self._commits
        for nodeid, k in self._known.items():
            current = now.tests.get(nodeid)
            if k.first >= index or current is None:
                continue  # not run yet: a new test
            hi = min(k.last, index - 1)
            since[nodeid] = index - 1 - hi
            quiet = not current.flaky and current.fail_rate == 0
            quiet = quiet and current.last_outcome == "passed"
            if quiet and not k.other:
                tests[nodeid] = current  # passed every time, then and now
                continue
            lo = max(k.first, hi + 1 - RECENT_KEEP)
            start = bisect.bisect_left(k.other, (lo, ""))
            stop = bisect.bisect_left(k.other, (hi + 1, ""))
            if start == stop and quiet:
                tests[nodeid] = current  # passed throughout, then and now
                continue
            other = dict(k.other[start:stop])
            rows = [
                (at, other.get(at, "passed"), current.estimate_s, 0.0, 0.0, 0.0, commits[at])
                for at in range(lo, hi + 1)
            ]
            _, _, _, _, fail_rate, flaky, _ = summary_values(rows)
            tests[nodeid] = dataclasses.replace(
                current,
                runs=hi - k.first + 1,
                fail_rate=fail_rate,
                flaky=flaky,
                last_outcome=rows[-1][1],
            )
        # Today's estimates with the tests as they were: durations (the file medians a test
        # unknown then gets included) and what is not per test are today's.
        then = copy.copy(now)
        then.tests = tests
        return then, since


def _args(text: Any) -> list[str]:
    try:
        value = json.loads(text) if isinstance(text, str) else []
    except ValueError:
        return []
    return [str(a) for a in value] if isinstance(value, list) else []
