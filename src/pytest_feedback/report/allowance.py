"""What the report's optional blocks may cost: each one's predicted CPU seconds against one
allowance, so that a report stays under a second whatever the suite's size.

The report's tables read a bounded number of rows. Its optional blocks work through the whole
suite: the planners' hint plans it, the advice reads every test's recent runs, "what a budget
catches" replays the budget over failing runs, the HTML page's plans plan it nine times. Each
block's cost is predicted from what it works through (the tests the history knows; for the
replay also the failing runs replayed) with the unit costs below, measured on the 10,000-test
history of ``benchmarks/scale_commands.py`` on a 2-core machine. The blocks are asked in the
report's order and each is computed only while the predicted total fits `ALLOWANCE_S`; the
estimates every planner reads are loaded once for all of them. The prediction, not a clock,
decides: the same history gives the same report on any machine.

A block left out is named with the command that gives it (`Allowance.left_out`); the report
prints one line naming them instead (`formatting.left_out_line`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from pytest_feedback.history.estimates import Estimates
    from pytest_feedback.history.store import Store

#: CPU seconds the optional blocks may cost together in one report.
ALLOWANCE_S = 0.5
#: Predicted CPU seconds per test the history knows: loading the estimates (once per report),
#: the two planners' hints, the advice, the page's shard plan and worker curve.
ESTIMATES_S = 30e-6
HINT_S = 40e-6
ADVICE_S = 95e-6
PLANS_S = 90e-6
#: The replay ("what a budget catches"): reading what each test did in the kept runs, and per
#: failing run replayed (its plan for each budget and the two baselines'), per test; plus a
#: fixed part per replayed run (git and the map's change when there is a map).
REPLAY_S = 45e-6
REPLAYED_RUN_S = 35e-6
REPLAYED_RUN_FIXED_S = 0.01


class Allowance:
    """The allowance the optional blocks of one report share, and the estimates they read
    (loaded at most once)."""

    def __init__(self, store: Store, seconds: float = ALLOWANCE_S) -> None:
        self.store = store
        self.left_s = seconds
        #: Tests the history knows (what the blocks' costs grow with).
        self.tests = store.reads.test_count()
        #: "what (`command`)" of each block left out, in the report's order.
        self.left_out: list[str] = []
        self._estimates: Optional[Estimates] = None

    def estimates(self) -> Estimates:
        """The history's estimates, read once for every block."""
        if self._estimates is None:
            self._estimates = self.store.reads.load_estimates()
        return self._estimates

    def _loading_s(self) -> float:
        return 0.0 if self._estimates is not None else ESTIMATES_S * self.tests

    def fits(self, per_test_s: float, fixed_s: float = 0.0) -> bool:
        """Whether a block predicted to cost ``per_test_s`` per known test (and ``fixed_s``),
        with the estimates it reads, fits what is left (nothing is spent)."""
        return self._loading_s() + per_test_s * self.tests + fixed_s <= self.left_s

    def take(self, what: str, per_test_s: float, fixed_s: float = 0.0) -> bool:
        """Spend the predicted cost of the block ``what`` ("name (`command`)") when it fits;
        else record it as left out. Whether to compute it."""
        if not self.fits(per_test_s, fixed_s):
            self.left_out.append(what)
            return False
        self.left_s -= self._loading_s() + per_test_s * self.tests + fixed_s
        return True

    def replayable_runs(self, most: int) -> int:
        """How many failing runs (at most ``most``) the replay can take within what is left."""
        runs = most
        while runs > 0 and not self.fits(
            REPLAY_S + runs * REPLAYED_RUN_S, runs * REPLAYED_RUN_FIXED_S
        ):
            runs -= 1
        return runs
