"""The session object behind ``--feedback-budget``: pick, order and predict; say what was left out.

Registered by `plugin.py` only when a budget is given. It decides after pytest's own narrowing and
after ``--feedback-select`` (whose survivors are then all "affected"), and before
``--feedback-shard`` splits what it kept. Without ``--feedback-select`` it still asks the
selection rules which tests the change affects, to run those first. Under pytest-xdist every
worker decides on its own collection (the decision is deterministic) and the controller prints the
line a worker sends back.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

import pytest

from pytest_feedback.durations import format_budget, format_duration
from pytest_feedback.history.estimates import Estimates
from pytest_feedback.history.records import BUDGET_NOT_RUN
from pytest_feedback.planning.budget import BudgetPlan, candidates_for, plan_budget
from pytest_feedback.planning.pacer import Pacer
from pytest_feedback.session.collection_line import CollectionLine
from pytest_feedback.session.keys import PARALLEL_KEY, SELECTION_KEY
from pytest_feedback.session.recorder import BUDGET_KEY, PLANNED_KEY

_IMPORTED_AT = time.perf_counter()
#: ``workerinput`` key: when the budget runs out, as a `time.time` value.
DEADLINE_KEY = "feedback_budget_deadline"
#: ``workeroutput`` key: how many chosen tests a worker did not run, the budget being used up.
NOT_RUN_KEY = "feedback_budget_not_run"
#: ``workerinput`` key: seconds the controller spent before it started the workers.
SPENT_KEY = "feedback_budget_spent"


def process_elapsed() -> float:
    """Seconds since this process started: what the user's wall clock has counted so far.

    From /proc on Linux (interpreter start-up and pytest's imports included); elsewhere, or if
    /proc cannot be read, since this module was imported (a lower bound).
    """
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open("/proc/uptime", encoding="ascii") as f:
                uptime = float(f.read().split()[0])
            started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
            if 0 <= uptime - started < 7 * 24 * 3600:
                return uptime - started
        except (OSError, ValueError, IndexError):
            pass
    return time.perf_counter() - _IMPORTED_AT


def from_command_line(config: pytest.Config) -> bool:
    """Whether this process was started for this run: ``pytest ARGS`` or ``python -m pytest
    ARGS``, not ``pytest.main`` in a script or a process that was already there (which may
    pass no arguments, so that pytest reads the script's own ``sys.argv``)."""
    if list(config.invocation_params.args) != sys.argv[1:]:
        return False
    entry = Path(sys.argv[0]).name.lower() if sys.argv and sys.argv[0] else ""
    if entry.startswith(("pytest", "py.test")):  # the console script (pytest.exe on Windows)
        return True
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return getattr(spec, "name", None) in ("pytest", "pytest.__main__")


def run_started(config: pytest.Config) -> float:
    """When the user's wall clock started for this run, on the `time.perf_counter` scale.

    Run from the command line, that is the process start; run in a process that was already
    there (``pytest.main``, pytester), now.
    """
    now = time.perf_counter()
    if from_command_line(config):
        return now - process_elapsed()
    return now


def read_history(db_path: Path) -> tuple[Estimates, dict[str, int]]:
    """Estimates and runs-since-last-run from the history; empty when there is none."""
    from pytest_feedback.history.store import read_estimates

    found = read_estimates(db_path, lambda store: store.reads.runs_since())
    if found.error is not None:
        raise found.error
    return found.estimates, found.also or {}


#: ``--feedback-budget 90%`` replays at most this many of the newest failing runs.
SHARE_FAILING_RUNS = 30


def share_budget(
    db_path: Path, rootdir: Path, share: float, fallback_s: float
) -> tuple[float, str]:
    """The smallest budget whose catch rate, replayed over the history's failing runs
    (`planning.simulate.confidence_budget`), reaches ``share``, and the line that says so; or
    ``fallback_s`` and the line that says why, when the history cannot tell."""
    from pytest_feedback.history.store import Store
    from pytest_feedback.planning.simulate import MIN_FAILING_RUNS, confidence_budget
    from pytest_feedback.selection.replay import replay_inputs

    head = f"feedback: budget {share:.0%}"
    fallback = f"using the default budget {format_budget(fallback_s)}"
    if not db_path.is_file():
        return fallback_s, f"{head}: no history yet to choose a budget from; {fallback}"
    try:
        with Store(db_path, create=False, readonly=True) as store:
            replay, change_of = replay_inputs(store, rootdir)
            budget, sim = confidence_budget(
                replay, share, change_of, failing_limit=SHARE_FAILING_RUNS
            )
    except Exception as exc:  # never break the run: the default budget, and why
        return (
            fallback_s,
            f"{head}: the history cannot say ({type(exc).__name__}: {exc}); {fallback}",
        )
    if budget is None:
        return fallback_s, (
            f"{head}: {sim.failing_runs} failing run{'' if sim.failing_runs == 1 else 's'} in "
            f"the history, {MIN_FAILING_RUNS} needed to choose a budget; {fallback}"
        )
    return budget, (
        f"feedback: budget {share:.0%} -> {format_budget(budget)}: the smallest budget that "
        f"caught {sim.rate(sim.rows[0].ours):.0%} of the {sim.failing_runs} failing runs "
        "replayed from the history (`pytest-feedback simulate`)"
    )


class BudgetRun(CollectionLine):
    line_key = "feedback_budget_line"

    def __init__(
        self,
        config: pytest.Config,
        db_path: Path,
        budget_s: float,
        base: Optional[str],
        share: Optional[float] = None,
    ) -> None:
        super().__init__(config)
        self.db_path = db_path
        self.budget_s = budget_s
        self.base = base
        #: ``--feedback-budget 90%``: the share of failing runs to catch. The budget is chosen
        #: from the history when first needed (`_choose_budget`); ``budget_s`` is the fallback
        #: until then. ``share_line`` says what was chosen.
        self.share = share
        self.share_line: Optional[str] = None
        self.plan: Optional[BudgetPlan] = None
        self.predicted_s: Optional[float] = None
        self._start = run_started(config)
        #: Chosen tests not run because the budget was used up before their turn.
        self.not_run = 0
        #: Left-out tests run after all, the run being ahead of its plan
        #: (`planning.pacer.Pacer.fill`).
        self.filled: list[pytest.Item] = []
        self._left_out: dict[str, pytest.Item] = {}
        #: Left-out tests appended to the run's items, not started yet.
        self._added: set[pytest.Item] = set()
        #: The test running: node id, when it started, its expected cost; and whether it failed.
        self._running: Optional[tuple[str, float, float]] = None
        self._failing = False
        self._spent_before_workers: Optional[float] = None
        #: Why ``--feedback-base`` cannot be used; None when it can (or none was given).
        self.base_problem: Optional[str] = None

    def _workers(self) -> int:
        workerinput = getattr(self.config, "workerinput", None)
        if workerinput is not None:
            return int(workerinput.get("workercount", 1))
        value = getattr(self.config.option, "numprocesses", None)
        return int(value) if isinstance(value, int) and value > 0 else 1

    def _change(
        self, nodeids: list[str]
    ) -> tuple[Optional[set[str]], dict[str, int], dict[str, float]]:
        """The tests the change affects (None: unknown), the changed lines each executed, and
        how much of what the change touched each names (`affinity`)."""
        from pytest_feedback.selection.replay import change_facts
        from pytest_feedback.selection.selector import load_selector

        selection_run = self.config.stash.get(SELECTION_KEY, None)
        if selection_run is not None and not selection_run.audit:
            # Selection ran first: every collected test is one it selected.
            selector, selection = selection_run.selector, selection_run.selection
            if selector is None or selection is None:
                return None, {}, {}
            facts = change_facts(selector, nodeids, selector.rootdir, selection, nodeids)
        else:
            selector = load_selector(self.db_path, self.config.rootpath, self.base)
            self.base_problem = selector.base_problem
            facts = change_facts(selector, nodeids, selector.rootdir)
        return facts.affected, facts.changed_lines, facts.affinity

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self._choose_budget()
        nodeids = [item.nodeid for item in items]
        try:
            estimates, runs_since = read_history(self.db_path)
            if self.is_worker:  # learnt from runs of one process: not an xdist worker's
                estimates.pace, estimates.exit_s, estimates.budget_end_s = 1.0, 0.0, None
            affected, lines, named = self._change(nodeids)
            plan = plan_budget(
                candidates_for(nodeids, estimates, runs_since, affected, lines, named),
                estimates,
                self.budget_s,
                self._workers(),
                affected_known=affected is not None,
                spent_s=time.perf_counter() - self._start,
                before_workers_s=self._before_workers(),
            )
        except Exception as exc:  # our trouble must never break or empty the user's run
            self.line = (
                f"feedback: warning: budget {format_budget(self.budget_s)} not applied "
                f"({type(exc).__name__}: {exc}); running every test"
            )
        else:
            self.plan = plan
            self.line = plan.summary_line()
            if self.base_problem is not None:
                self.line = f"feedback: warning: {self.base_problem}\n{self.line}"
            self.predicted_s = plan.predicted_s
            position = {nodeid: i for i, nodeid in enumerate(plan.chosen)}
            dropped = [item for item in items if item.nodeid not in position]
            items[:] = sorted(
                (item for item in items if item.nodeid in position),
                key=lambda item: position[item.nodeid],
            )
            if dropped and plan.workers == 1 and not self.is_worker and not self._sharded():
                self._left_out = {item.nodeid: item for item in dropped}
            if dropped:
                self.config.hook.pytest_deselected(items=dropped)
                self.emptied = not items
        if self.share_line is not None:
            self.line = f"{self.share_line}\n{self.line}"
        self.publish(predicted=self.predicted_s)

    def _choose_budget(self) -> None:
        """With a share: the budget the history says catches it (once; deterministic, so
        that xdist workers and their controller agree)."""
        if self.share is not None and self.share_line is None:
            self.budget_s, self.share_line = share_budget(
                self.db_path, self.config.rootpath, self.share, self.budget_s
            )

    @property
    def _pacer(self) -> Optional[Pacer]:
        """The plan's pacer; None when no plan was made."""
        return self.plan.pacer if self.plan is not None else None

    def _sharded(self) -> bool:
        """Whether ``--feedback-shard`` splits what the budget keeps: then this process runs
        only its share, and the left-out tests are no longer its to run."""
        parallel = self.config.stash.get(PARALLEL_KEY, None)
        return parallel is not None and parallel.shard is not None

    def received(self, extra: dict[str, Any]) -> None:
        predicted = extra.get("predicted")
        self.predicted_s = float(predicted) if predicted is not None else None

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Tell each xdist worker when the budget runs out, on the wall clock (its own start is
        later than the user's), and what the controller spent before starting workers: one value
        for all of them, because their plans must agree (xdist checks that they collect alike)."""
        self._choose_budget()
        if self._spent_before_workers is None:
            self._spent_before_workers = time.perf_counter() - self._start
        node.workerinput[DEADLINE_KEY] = (
            time.time() + self.budget_s - (time.perf_counter() - self._start)
        )
        node.workerinput[SPENT_KEY] = self._spent_before_workers

    def _before_workers(self) -> float:
        if not self.is_worker:
            return 0.0
        return float(self.config.workerinput.get(SPENT_KEY, 0.0))  # type: ignore[attr-defined]

    def _remaining(self) -> float:
        """Seconds left of the budget: under xdist, to the deadline the controller gave."""
        if self.is_worker:
            deadline = self.config.workerinput.get(DEADLINE_KEY)  # type: ignore[attr-defined]
            return float("inf") if deadline is None else float(deadline) - time.time()
        return self.budget_s - (time.perf_counter() - self._start)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: Optional[pytest.Item]) -> None:
        """Ahead of the plan, queue left-out tests that still fit (serial runs only).

        Decided when the last but one test of the run starts: the last one's ``nextitem`` is
        not chosen yet, so that pytest keeps the fixtures the added tests share with it. The
        tests are appended to the session's items, which pytest's loop reads as it goes, and
        each still passes the pacer's check when its turn comes.
        """
        pacer = self._pacer
        items = item.session.items
        if pacer is None or not self._left_out or nextitem is None or items[-1] is not nextitem:
            return
        added = [
            self._left_out.pop(nodeid)
            for nodeid in pacer.fill(self._remaining(), [item.nodeid, nextitem.nodeid])
        ]
        items.extend(added)
        item.session.testscollected += len(added)
        self._added.update(added)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """A chosen test that would no longer end within the budget is skipped.

        The plan is an estimate: a test that fails, or a slower machine, can take longer. When the
        run falls behind, a test whose expected cost (fixtures not yet paid for and the session
        end included, see `planning.pacer.Pacer`) would end past the budget is skipped before its
        fixtures are set up, and the run goes on with the next ones that still fit. Skipped in
        its set-up, the test is torn down by pytest as usual: the fixtures it shared with the test
        before it are finished when the next test is elsewhere. It is not recorded as a result
        (`records.BUDGET_NOT_RUN`). Under xdist each worker keeps to the deadline the controller
        gave it and reports how many it left. A left-out test queued by the fill is checked the
        same way, but not counted among the chosen tests not run.
        """
        pacer = self._pacer
        if pacer is None:
            return
        if not pacer.fits(item.nodeid, self._remaining()):
            if item in self._added:
                self._added.discard(item)
            else:
                self.not_run += 1
            item.user_properties.append(BUDGET_NOT_RUN)
            reason = (
                f"feedback: budget {format_budget(self.budget_s)} used up before this test's turn"
            )
            # Reported at the test's location, as a skip mark is (pytest's skipping plugin does
            # the same), not at this line.
            raise pytest.skip.Exception(reason, _use_item_location=True)
        self._running = (item.nodeid, time.perf_counter(), pacer.cost(item.nodeid))
        self._failing = False
        pacer.started(item.nodeid)
        if item in self._added:
            self.filled.append(item)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed and self._running is not None and report.nodeid == self._running[0]:
            self._failing = True

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        """A failed test that overran its expected cost makes the pacer keep the overrun free."""
        pacer = self._pacer
        if pacer is not None and self._failing and self._running is not None:
            started, expected = self._running[1], self._running[2]
            if nodeid == self._running[0]:
                pacer.failed(time.perf_counter() - started - expected)
        self._running = None
        self._failing = False

    def pytest_sessionfinish(self) -> None:
        if self.is_worker:
            self.config.workeroutput[NOT_RUN_KEY] = self.not_run  # type: ignore[attr-defined]
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        deselected = getattr(reporter, "stats", {}).get("deselected")
        if self.filled and isinstance(deselected, list):
            # They ran: pytest's summary line, written after this hook, counts them as run only.
            ran = set(map(id, self.filled))
            deselected[:] = [i for i in deselected if id(i) not in ran]
        if self.predicted_s is not None:  # for the report: the prediction against the real time
            self.config.stash[BUDGET_KEY] = (self.budget_s, self.predicted_s, self._start)
        pacer = self._pacer if self.plan is not None and self.plan.workers == 1 else None
        if pacer is not None:
            # What the history planned for the tests that ran: with the time they took, it
            # calibrates the next budget (`Estimates.pace`).
            planned = pacer.planned_s
            if planned > 0:
                self.config.stash[PLANNED_KEY] = planned

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        super().pytest_testnodedown(node, error)
        output = getattr(node, "workeroutput", None) or {}
        self.not_run += int(output.get(NOT_RUN_KEY, 0) or 0)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.is_worker:
            return
        self.write_worker_line(terminalreporter)
        if self.not_run:
            terminalreporter.write_line(
                f"feedback: budget {format_budget(self.budget_s)} used up: {self.not_run:,} of "
                f"the chosen tests not run"
            )
        if self.predicted_s is not None:
            took = time.perf_counter() - self._start
            pacer = self._pacer
            filled = (
                f"; {len(self.filled):,} left-out tests run in the time left (predicted "
                f"{format_duration(pacer.filled_s)})"
                if self.filled and pacer is not None
                else ""
            )
            guessed = self.plan is not None and self.plan.unknown == self.plan.total
            predicted = (
                "no history to predict from"
                if guessed
                else f"predicted {format_duration(self.predicted_s)}"
            )
            terminalreporter.write_line(
                f"feedback: budget {format_budget(self.budget_s)}: {predicted}, took "
                f"{format_duration(took)}{filled}"
            )
