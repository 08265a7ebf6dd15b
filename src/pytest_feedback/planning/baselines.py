"""The two orders a budget's ranking is compared with: the fastest tests first, and random.

Both take tests in their order until the next would not fit the budget, with the cost model the
budget plans with (`costs.CostModel`: start-up, own costs, each wider-scope fixture instance paid
once, the session end), so that they differ from the budget's plan by their order only.
`Baselines` answers, for the failing tests of a run, what each order catches within a budget:
fastest first exactly; random as the expected value over all orders (the number of tests that
fit is found with the expected cost of a random prefix, fixture instances included).
"""

from __future__ import annotations

import itertools
from collections.abc import Collection

from pytest_feedback.planning.costs import CostModel


class Baselines:
    """Fastest-first and random fills of any budget, for one set of tests."""

    def __init__(self, model: CostModel) -> None:
        self.model = model
        work = model.work
        self.n = len(work)
        order = sorted(range(self.n), key=lambda t: (work.own[t], work.nodeids[t]))
        # Fastest first: the wall time a budget needs to reach each test (instances paid when
        # the first test needing them comes).
        paid: set[int] = set()
        added = []
        for t in order:
            added.append(work.added_cost(t, paid))
            paid.update(work.needs[t])
        self._fastest_wall = [0.0] * self.n
        for t, done in zip(order, itertools.accumulate(added)):
            self._fastest_wall[t] = self._wall(done)
        # Random: the mean own cost, and per fixture instance its cost and how many tests need it.
        self._mean_own = sum(work.own) / self.n if self.n else 0.0
        users: dict[int, int] = {}
        for needs in work.needs:
            for r in needs:
                users[r] = users.get(r, 0) + 1
        self._instances = [(work.resource_cost[r], m) for r, m in users.items()]
        self._fit: dict[float, int] = {}

    def _wall(self, work_s: float) -> float:
        return self.model.work.startup_s + work_s + self.model.end(work_s)

    def fastest(self, failing: Collection[int], budget_s: float) -> int:
        """How many of the ``failing`` tests the fastest tests first reach within ``budget_s``."""
        return sum(1 for t in failing if self._fastest_wall[t] <= budget_s)

    def random(self, failing: int, budget_s: float) -> tuple[float, float]:
        """For ``failing`` failing tests among the tests, the chance that tests in a random order
        reach one within ``budget_s``, and how many they reach on average."""
        p = self._fits(budget_s)
        n = self.n
        if not n or not failing:
            return 0.0, 0.0
        missed = 1.0  # every failing test beyond the first p: C(n - k, p) / C(n, p)
        for i in range(failing):
            missed *= max(0.0, (n - p - i) / (n - i))
        return 1.0 - missed, failing * p / n

    def _fits(self, budget_s: float) -> int:
        """How many tests of a random order fit ``budget_s``, by the expected cost of a random
        prefix: own costs, and each instance with the chance one of its tests is in it."""
        found = self._fit.get(budget_s)
        if found is None:
            n = self.n

            def wall(p: int) -> float:
                left = 1.0 - p / n if n else 0.0
                work_s = p * self._mean_own + sum(c * (1.0 - left**m) for c, m in self._instances)
                return self._wall(work_s)

            # The largest p whose expected wall fits (wall grows with p).
            lo, hi = 0, n + 1  # p = lo fits (or is 0), p = hi does not
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if wall(mid) <= budget_s:
                    lo = mid
                else:
                    hi = mid
            self._fit[budget_s] = found = lo
        return found
