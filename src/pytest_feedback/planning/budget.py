"""The fast targeted subset: the tests worth most that fit a time budget.

Given candidate tests (what pytest collected, after any selection), their estimates and a budget,
`plan_budget` picks the tests whose predicted wall time — start-up, own costs, each wider-scope
fixture instance once, and with ``workers`` > 1 the parallel plan of `shards.py` — fits, and orders
them so that a failure shows as early as possible:

1. tests the change affects come first (``affected``);
2. then risk per second: changed lines the test reaches, a failure last time, its failure rate
   (discounted when flaky), being new, not having run for a while, and how much of what the
   change touched its text names (`affinity`: what tells apart the tests that all execute a
   changed line at import time);
3. fixture-aware: a wider-scope fixture instance costs each test that needs it a share (its
   cost divided among them), and is paid once in what a plan is predicted to take;
4. one order for every budget: a budget takes the longest prefix that fits, so a larger budget
   runs what a smaller one runs (docs/contract.md, "Cost model").

What a run costs is `costs.py`'s; how a run keeps to the plan as it goes, `pacer.py`'s. Pure: no
pytest, no history access; the plugin and the command line feed it (`candidates_for`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

from pytest_feedback.durations import format_budget, format_duration
from pytest_feedback.history.records import FAILING
from pytest_feedback.planning.costs import CostModel, cost_model, predict
from pytest_feedback.planning.pacer import Pacer, grouped
from pytest_feedback.planning.planners import Workload

if TYPE_CHECKING:
    from pytest_feedback.history.estimates import Estimates

#: Risk points; a test's value per second is its risk divided by the seconds it adds.
RISK_BASE = 0.1  # every test can fail
RISK_NEW = 2.0  # never recorded: nothing says it passes
RISK_FAILED_LAST = 3.0  # failed or errored in its last run
RISK_FAIL_RATE = 2.0  # times its failure rate in recent runs ...
FLAKY_DISCOUNT = 0.3  # ... which says less when the test is flaky
RISK_STALE = 1.0  # at most, for a test not run for STALE_RUNS runs
STALE_RUNS = 20
RISK_AFFINITY = 1.0  # at most, for the test that names most of what the change touched


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One test the budget may run, with what is known of its risk."""

    nodeid: str
    #: The change affects it (selection's rules selected it).
    affected: bool = False
    #: Changed lines it executed (0 when unknown or none).
    changed_lines: int = 0
    #: Runs recorded for it (0: a new test).
    runs: int = 0
    last_outcome: Optional[str] = None
    fail_rate: float = 0.0
    flaky: bool = False
    #: Recorded runs since it last ran (0: it ran in the latest).
    runs_since: int = 0
    #: How much of what the change touched the test's text names, 0 to 1 (`affinity`).
    affinity: float = 0.0


def candidates_for(
    nodeids: Sequence[str],
    estimates: Estimates,
    runs_since: dict[str, int],
    affected: Optional[set[str]],
    changed_lines: Optional[dict[str, int]] = None,
    affinity: Optional[dict[str, float]] = None,
) -> list[Candidate]:
    """What the budget planner knows of each test: history, and whether the change affects it."""
    out = []
    for nodeid in nodeids:
        est = estimates.tests.get(nodeid)
        out.append(
            Candidate(
                nodeid,
                affected=affected is not None and nodeid in affected,
                changed_lines=(changed_lines or {}).get(nodeid, 0),
                runs=est.runs if est is not None else 0,
                last_outcome=est.last_outcome if est is not None else None,
                fail_rate=est.fail_rate if est is not None else 0.0,
                flaky=est.flaky if est is not None else False,
                runs_since=runs_since.get(nodeid, 0),
                affinity=(affinity or {}).get(nodeid, 0.0),
            )
        )
    return out


def risk(c: Candidate) -> float:
    """How likely, in points, the test is to reveal a failure now."""
    score = RISK_BASE
    if c.runs == 0:
        score += RISK_NEW
    if c.last_outcome in FAILING:
        score += RISK_FAILED_LAST
    score += RISK_FAIL_RATE * min(1.0, max(0.0, c.fail_rate)) * (FLAKY_DISCOUNT if c.flaky else 1)
    score += math.log1p(max(0, c.changed_lines))
    score += RISK_STALE * min(1.0, max(0, c.runs_since) / STALE_RUNS)
    score += RISK_AFFINITY * min(1.0, max(0.0, c.affinity))
    return score


@dataclasses.dataclass(frozen=True)
class BudgetPlan:
    """What fits: ``chosen`` in the order to run them, and what was left out."""

    budget_s: float
    workers: int
    chosen: tuple[str, ...]
    left_out: tuple[str, ...]
    predicted_s: float
    #: What the left-out tests would take on their own, with the same workers.
    left_out_s: float
    #: How many candidates were affected by the change (None: no change information).
    affected: Optional[int] = None
    #: What each chosen test is expected to add when its turn comes (see `Pacer`).
    pacer: Optional[Pacer] = dataclasses.field(default=None, compare=False, repr=False)
    #: The calibration from recent budget runs the costs were multiplied by (`Estimates.pace`).
    pace: float = 1.0
    #: How many candidates the history has no estimate for.
    unknown: int = 0

    @property
    def total(self) -> int:
        return len(self.chosen) + len(self.left_out)

    def summary_line(self) -> str:
        """The one terminal line that says what the budget did."""
        head = f"feedback: budget {format_budget(self.budget_s)}"
        if self.workers > 1:
            head += f", {self.workers} workers"
        kind = (
            "affected tests"
            if self.affected is not None and self.affected == self.total
            else "tests"
        )
        predicted = format_duration(self.predicted_s)
        if self.unknown == self.total:
            return (
                f"{head}: no history yet, so no prediction: running all {self.total:,} {kind} "
                "(stopping at the budget); the next run plans from this one"
            )
        if not self.left_out:
            return f"{head}: running all {self.total:,} {kind} (predicted {predicted})"
        if not self.chosen:
            # Nothing runs: a pre-push check that passes must not look like one that tested.
            return (
                f"{head}: NO test fits: start-up and the session's end alone are predicted "
                f"{predicted}; all {self.total:,} {kind} left out (predicted "
                f"{format_duration(self.left_out_s)}) — raise the budget above {predicted}"
            )
        return (
            f"{head}: running {len(self.chosen):,} of {self.total:,} {kind} "
            f"(predicted {predicted}); {len(self.left_out):,} left out "
            f"(predicted {format_duration(self.left_out_s)}) — run them in CI"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "budget_s": round(self.budget_s, 3),
            "workers": self.workers,
            "predicted_s": round(self.predicted_s, 3),
            "chosen": len(self.chosen),
            "left_out": list(self.left_out),
            "left_out_s": round(self.left_out_s, 3),
            "pace": round(self.pace, 3),
        }


def plan_budget(
    candidates: Sequence[Candidate],
    estimates: Estimates,
    budget_s: float,
    workers: int = 1,
    *,
    affected_known: bool = False,
    spent_s: Optional[float] = None,
    before_workers_s: float = 0.0,
) -> BudgetPlan:
    """Choose and order the candidates that fit ``budget_s`` on ``workers`` processes.

    ``spent_s``: seconds the run has already taken when it decides (interpreter and pytest
    start-up, plugins, conftests, collection), measured; it then stands in for the start-up the
    history estimates, which covers only collection. Serial runs only: under pytest-xdist the
    start-up that matters is each worker's, and ``before_workers_s`` is what the controller had
    spent before it started them (added to the bring-up the history learnt).
    """
    planner = BudgetPlanner(
        candidates,
        estimates,
        workers,
        affected_known=affected_known,
        spent_s=spent_s,
        before_workers_s=before_workers_s,
    )
    return planner.plan(budget_s)


class BudgetPlanner:
    """`plan_budget` for one set of candidates and any number of budgets: the costs and risks
    are worked out once (replaying the history plans each run for several budgets). ``model``:
    the `costs.cost_model` of these candidates, when the caller has it already."""

    def __init__(
        self,
        candidates: Sequence[Candidate],
        estimates: Estimates,
        workers: int = 1,
        *,
        affected_known: bool = False,
        spent_s: Optional[float] = None,
        before_workers_s: float = 0.0,
        model: Optional[CostModel] = None,
    ) -> None:
        self.workers = workers = max(1, workers)
        self.bringup = estimates.bringup_s(workers) + (
            max(0.0, before_workers_s) if workers > 1 else 0.0
        )
        self.spent_s = spent_s
        by_id = {c.nodeid: c for c in candidates}
        if model is None:
            model = cost_model(estimates, by_id, workers, spent_s)
        self.model = model
        self.work = work = model.work
        cands = [by_id[n] for n in work.nodeids]
        self.risks = [risk(c) for c in cands]
        self.tier = [0 if c.affected else 1 for c in cands]
        self.affected = sum(1 for c in cands if c.affected) if affected_known else None
        self.unknown = sum(1 for n in work.nodeids if n not in estimates)
        #: Per test, its own cost and its share of each fixture instance it needs (the instance
        #: divided among the candidates that need it): the seconds its risk is divided by.
        users = Counter(r for needs in work.needs for r in needs)
        self._share = [
            own + sum(work.resource_cost[r] / users[r] for r in needs)
            for own, needs in zip(work.own, work.needs)
        ]
        self._order: Optional[tuple[list[int], list[float]]] = None

    def updated(self, changed: Sequence[Candidate], *, affected_known: bool) -> BudgetPlanner:
        """This planner with what is known of some of its tests replaced by ``changed``: the
        same tests, estimates and costs (replaying runs of the same tests plans each this way,
        `simulate`)."""
        new = copy.copy(self)
        new.risks, new.tier = list(self.risks), list(self.tier)
        index = {n: t for t, n in enumerate(self.work.nodeids)}
        for c in changed:
            t = index[c.nodeid]
            new.risks[t] = risk(c)
            new.tier[t] = 0 if c.affected else 1
        new.affected = new.tier.count(0) if affected_known else None
        new._order = None
        return new

    def order(self) -> tuple[list[int], list[float]]:
        """Every test in the order budgets take them, and the work (seconds: own costs, each
        fixture instance once) of each prefix. Affected tests first, then by risk per second of
        `_share`: a fixture instance costs the tests that need it a share each, not the whole to
        the first of them, so that a budget spreads over the suite's modules (failures cluster
        in a module: a few of its tests find what all of them would) instead of taking module
        after module whole. Worked out once; every budget takes a prefix of it."""
        if self._order is not None:
            return self._order
        work, risks, tier, share = self.work, self.risks, self.tier, self._share
        own, needs, resource_cost, nodeids = work.own, work.needs, work.resource_cost, work.nodeids
        order = sorted(
            range(len(own)), key=lambda t: (tier[t], -risks[t] / max(share[t], 1e-6), nodeids[t])
        )
        paid: set[int] = set()
        cumulative = [0.0]
        for t in order:
            cost = own[t]  # `Workload.added_cost`, inlined: this runs for every test
            for r in needs[t]:
                if r not in paid:
                    cost += resource_cost[r]
                    paid.add(r)
            cumulative.append(cumulative[-1] + cost)
        self._order = (order, cumulative)
        return self._order

    def choose(self, budget_s: float) -> list[int]:
        """The tests (indexes into ``work``) that fit ``budget_s``, in the order chosen: the
        longest prefix of `order` that fits, passing over the tests too long for the budget on
        their own. A larger budget's choice holds a smaller one's (the catch rate of `simulate`
        does not fall as the budget grows), but for those passed over: just above such a
        test's length, a budget runs it and may run fewer of the tests after it. The first
        test that does not fit but would on its own ends the choice, where packing smaller
        tests after it could fill the last seconds (docs/contract.md, "Cost model")."""
        order, cumulative = self.order()
        work, model, workers, bringup = self.work, self.model, self.workers, self.bringup
        fixed = bringup + work.startup_s

        # The parallel bound (total work spread evenly, and no test longer than the budget)
        # is optimistic; the real plan is checked below. Both grow with the prefix: bisect.
        def fits(n: int) -> bool:
            total = cumulative[n]
            return fixed + (total + model.end(total)) / workers <= budget_s

        lo, hi = 0, len(order)  # prefix lo fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid - 1
        # A test too long for this budget on its own (on one process, with its fixtures) is
        # passed over and the order carries on after it: stopping there would leave the rest
        # of the budget unused, however much was left.
        alone = fixed if workers == 1 else bringup

        def too_long(t: int) -> bool:
            return alone + work.cost([t]) > budget_s

        first = None
        if workers > 1:
            first = next((i for i, t in enumerate(order[:lo]) if too_long(t)), None)
        if first is None and lo < len(order) and too_long(order[lo]):
            first = lo
        chosen = order[: lo if first is None else first]
        if first is not None:
            paid = {r for t in chosen for r in work.needs[t]}
            total = cumulative[first]
            for t in order[first:]:
                if too_long(t):
                    continue
                cost = work.added_cost(t, paid)
                if fixed + (total + cost + model.end(total + cost)) / workers > budget_s:
                    break
                chosen.append(t)
                total += cost
                paid.update(work.needs[t])
        return chosen[: _longest_fitting_prefix(work, chosen, workers, budget_s, bringup)]

    def predict(self, tests: Sequence[int]) -> float:
        """Predicted wall seconds of running ``tests``; with none, what the run has spent."""
        if not tests:
            return self.spent_s or 0.0
        return predict(self.work, tests, self.workers, self.bringup, self.model)

    def plan(self, budget_s: float) -> BudgetPlan:
        """The plan for ``budget_s``."""
        work, risks, tier = self.work, self.risks, self.tier
        chosen = self.choose(budget_s)
        chosen_set = set(chosen)
        left = [t for t in range(len(work)) if t not in chosen_set]

        # Run order: affected first, then the most risk per second of own time; but the tests
        # that share a module or class fixture instance run together, from their group's first
        # place: pytest tears such a fixture down when the next test is elsewhere, and a mixed
        # order set it up again and again (a generated suite: a 1.7 s database 18 times in one
        # budget run).
        def priority(t: int) -> tuple[int, float, str]:
            return (tier[t], -risks[t] / max(work.own[t], 1e-6), work.nodeids[t])

        order = grouped(sorted(chosen, key=priority), work)
        left.sort(key=priority)
        return BudgetPlan(
            budget_s=budget_s,
            workers=self.workers,
            chosen=tuple(work.nodeids[t] for t in order),
            left_out=tuple(work.nodeids[t] for t in left),
            # Nothing chosen, the run still takes what it has spent.
            predicted_s=self.predict(chosen),
            left_out_s=predict(work, left, self.workers, self.bringup, self.model),
            affected=self.affected,
            unknown=self.unknown,
            pacer=Pacer(self.model, chosen, spare=left),
            pace=self.model.pace,
        )


def _longest_fitting_prefix(
    work: Workload, chosen: Sequence[int], workers: int, budget_s: float, bringup_s: float
) -> int:
    if workers <= 1 or predict(work, chosen, workers, bringup_s) <= budget_s:
        return len(chosen)
    lo, hi = 0, len(chosen)  # prefix lo fits, prefix hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if predict(work, chosen[:mid], workers, bringup_s) <= budget_s:
            lo = mid
        else:
            hi = mid
    return lo


#: The budget the report's hint speaks of: the mission's local loop.
HINT_BUDGET_S = 300.0


def report_hint(estimates: Estimates) -> Optional[str]:
    """The report's sentence on the fast subset: what a 5-minute budget would run."""
    candidates = [
        Candidate(
            e.nodeid,
            runs=e.runs,
            last_outcome=e.last_outcome,
            fail_rate=e.fail_rate,
            flaky=e.flaky,
        )
        for e in estimates.tests.values()
    ]
    plan = plan_budget(candidates, estimates, HINT_BUDGET_S)
    if not plan.left_out:
        return None  # the whole suite fits: nothing to say
    return (
        f"a 5-minute budget runs {len(plan.chosen):,} of {plan.total:,} tests, riskiest first "
        "(`pytest --feedback-budget=5m`)"
    )
