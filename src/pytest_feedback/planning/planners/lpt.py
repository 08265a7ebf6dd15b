"""Longest processing time first, over fixture families, charging each shard its marginal cost."""

from __future__ import annotations

from pytest_feedback.planning.planners.model import Assignment, Workload


class LptPlanner:
    """Families, most expensive first, each onto the shard where it ends earliest.

    "Ends earliest" counts the fixture instances the shard already has, so families that share a
    session fixture gravitate to the same shards. Ties go to the shard with fewer tests, then the
    lower index, which spreads tests evenly when there is no history at all.
    """

    name = "lpt"

    def plan(self, work: Workload, n: int) -> Assignment:
        assign = Assignment(work, n)
        if n <= 0:
            return assign
        families = sorted(work.families, key=lambda f: (-work.cost(f), f[0]))
        for family in families:
            best = min(
                range(n),
                key=lambda s: (assign.load[s] + assign.add_cost(s, family), assign.count[s], s),
            )
            assign.place(family, best)
        return assign
