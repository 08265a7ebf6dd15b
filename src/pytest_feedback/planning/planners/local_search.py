"""LPT, then local search: move families (or parts of them) and swap them off the longest shard.

Every accepted step lowers the longest shard without making another one as long, so the sorted
vector of loads decreases and the search ends; budgets on steps and evaluations bound its time on
large suites. Both budgets count work, not seconds, so the result is the same on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_feedback.planning.planners.lpt import LptPlanner
from pytest_feedback.planning.planners.model import EPSILON, Assignment, Workload

#: Largest groups per shard considered for swaps (swaps cost a square of this per shard pair).
SWAP_GROUPS = 16
#: Evaluations (candidate move or swap, one target shard) the search may spend.
MAX_EVALUATIONS = 400_000


class LocalSearchPlanner:
    """Start from `LptPlanner` and improve the makespan with moves, splits and swaps."""

    name = "local-search"

    def __init__(self, max_evaluations: int = MAX_EVALUATIONS) -> None:
        self.max_evaluations = max_evaluations

    def plan(self, work: Workload, n: int) -> Assignment:
        assign = LptPlanner().plan(work, n)
        if n > 1:
            _Search(assign, self.max_evaluations).run()
        return assign


class _Search:
    def __init__(self, assign: Assignment, budget: int) -> None:
        self.a = assign
        self.budget = budget

    def run(self) -> None:
        max_steps = 20 * len(self.a.work) + 100
        for _ in range(max_steps):
            if self.budget <= 0:
                return
            load = self.a.load
            longest = max(range(self.a.n), key=lambda s: (load[s], -s))
            if not (self._best_move(longest) or self._best_swap(longest)):
                return

    def _groups(self, shard: int) -> list[tuple[int, ...]]:
        """The parts of each family on ``shard``, and tails of them (to split a family)."""
        a = self.a
        out: list[tuple[int, ...]] = []
        for family in a.work.families:
            here = tuple(t for t in family if a.shard_of[t] == shard)
            if not here:
                continue
            out.append(here)
            size = len(here) // 2
            while size >= 1:
                out.append(here[-size:])
                size //= 2
        return out

    def _best_move(self, src: int) -> bool:
        a = self.a
        limit = a.load[src] - EPSILON
        best: tuple[float, float] | None = None
        best_move: tuple[tuple[int, ...], int] | None = None
        for group in self._groups(src):
            new_src = a.load[src] - a.remove_saving(src, group)
            if best is not None and new_src > best[0]:
                continue
            own = sum(a.work.own[t] for t in group)
            for dst in range(a.n):
                if dst == src or a.load[dst] + own >= limit:
                    continue
                self.budget -= 1
                new_dst = a.load[dst] + a.add_cost(dst, group)
                score = (max(new_src, new_dst), new_src + new_dst)
                if score[0] < limit and (best is None or score < best):
                    best, best_move = score, (group, dst)
        if best_move is None:
            return False
        a.place(best_move[0], best_move[1])
        return True

    def _best_swap(self, src: int) -> bool:
        a = self.a
        limit = a.load[src] - EPSILON
        mine = self._largest(self._whole_groups(src))
        best: tuple[float, float] | None = None
        best_swap: tuple[tuple[int, ...], tuple[int, ...], int] | None = None
        for dst in range(a.n):
            if dst == src:
                continue
            theirs = self._largest(self._whole_groups(dst))
            for g in mine:
                for h in theirs:
                    if self.budget <= 0:
                        break
                    self.budget -= 4
                    a.place(g, dst)
                    a.place(h, src)
                    score = (max(a.load[src], a.load[dst]), a.load[src] + a.load[dst])
                    a.place(h, dst)
                    a.place(g, src)
                    if score[0] < limit and (best is None or score < best):
                        best, best_swap = score, (g, h, dst)
        if best_swap is None:
            return False
        g, h, dst = best_swap
        a.place(g, dst)
        a.place(h, src)
        return True

    def _whole_groups(self, shard: int) -> list[tuple[int, ...]]:
        a = self.a
        groups = []
        for family in a.work.families:
            here = tuple(t for t in family if a.shard_of[t] == shard)
            if here:
                groups.append(here)
        return groups

    def _largest(self, groups: Sequence[tuple[int, ...]]) -> list[tuple[int, ...]]:
        work = self.a.work
        ranked = sorted(groups, key=lambda g: (-work.cost(g), g[0]))
        return ranked[:SWAP_GROUPS]
