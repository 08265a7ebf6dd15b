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
        cost = work.resource_cost
        # Per family: its own seconds and the instances it needs (what `Assignment.add_cost`
        # computes, once per family instead of once per family and shard).
        needs = {
            family: (sum(work.own[t] for t in family), {r for t in family for r in work.needs[t]})
            for family in work.families
        }
        families = sorted(work.families, key=lambda f: (-work.cost(f), f[0]))
        for family in families:
            own, resources = needs[family]

            def ends(s: int, own: float = own, resources: set[int] = resources) -> float:
                refs = assign.refs[s]
                return assign.load[s] + own + sum(cost[r] for r in resources if r not in refs)

            best = min(range(n), key=lambda s: (ends(s), assign.count[s], s))
            assign.place(family, best)
        return assign
