"""The pytest side of parallel runs: ``--feedback-shard K/N`` and ``--feedback-dist``.

plugin.py declares the options (`options.read_parallel_options` reads them) and registers these
objects only when one is used. Planning lives in `planning.shards`, the xdist scheduler in
`session.scheduler`, the predicted-vs-measured figures in `planning.timings`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import pytest

from pytest_feedback.durations import format_duration
from pytest_feedback.history.estimates import Estimates
from pytest_feedback.planning.shards import plan_workload, shard_filter

if TYPE_CHECKING:
    from pytest_feedback.history.records import RunRecord

#: Key in ``config.workeroutput`` through which a worker reports its shard's prediction.
SHARD_OUTPUT_KEY = "feedback_shard"


def load_estimates(db_path: Path) -> tuple[Estimates, Optional[str]]:
    """The history's estimates, or empty ones and a one-line warning; never raises."""
    from pytest_feedback.history.store import read_estimates

    found = read_estimates(db_path)
    if found.missing:
        return found.estimates, f"no history at {db_path} yet: plans split by test count"
    if found.error is not None:
        return found.estimates, f"history unreadable ({found.error}): plans split by test count"
    return found.estimates, None


class ShardSelector:
    """Keeps shard K of N of the collected items (run after every other narrowing)."""

    def __init__(
        self, config: pytest.Config, k: int, n: int, db_path: Path, source: Optional[str] = None
    ) -> None:
        self.config = config
        self.k, self.n = k, n
        self.source = source
        self.db_path = db_path
        self.warning: Optional[str] = None
        self.tests: Optional[int] = None
        self.predicted_s: Optional[float] = None
        self.makespan_s: Optional[float] = None
        self.lower_bound_s: Optional[float] = None
        #: This shard got no test (more shards than tests): "no tests ran" is then no failure.
        self.emptied = False
        self._start = time.perf_counter()
        #: No history: the shards split the collected tests by count.
        self.by_count = False

    def pytest_sessionstart(self) -> None:
        self._start = time.perf_counter()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        estimates, self.warning = load_estimates(self.db_path)
        self.by_count = not estimates.tests
        keep, drop, plan = shard_filter(items, lambda i: i.nodeid, estimates, self.k, self.n)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
            self.emptied = not keep
        shard = plan.shards[self.k - 1]
        self.tests = len(keep)
        self.predicted_s = shard.estimate_s
        workerinput = getattr(config, "workerinput", None)
        if workerinput is not None and shard.tests:
            # With -n inside a shard, the prediction is the shard's own plan over the workers.
            from pytest_feedback.planning.planners import Workload

            work = Workload.build(estimates, shard.tests)
            workers = int(workerinput.get("workercount", 1))
            self.predicted_s = plan_workload(work, max(1, workers)).makespan_s
        self.makespan_s = plan.makespan_s
        self.lower_bound_s = plan.lower_bound_s

    def pytest_report_collectionfinish(self) -> Optional[str]:
        if self.predicted_s is None:
            return None
        source = f" ({self.source})" if self.source else ""
        return f"feedback: shard {self.k}/{self.n}{source}: {self._count()}, {self._plan_text()}"

    def _count(self) -> str:
        return f"{self.tests:,} test{'s' * (self.tests != 1)}"

    def _plan_text(self) -> str:
        assert self.predicted_s is not None
        if self.by_count:
            return "no history yet: split by test count, no prediction"
        return (
            f"predicted {format_duration(self.predicted_s)} "
            f"(slowest shard {format_duration(self.makespan_s or 0.0)}, "
            f"lower bound {format_duration(self.lower_bound_s or 0.0)})"
        )

    def pytest_sessionfinish(self) -> None:
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None and self.predicted_s is not None:
            workeroutput[SHARD_OUTPUT_KEY] = {
                "tests": self.tests,
                "predicted_s": self.predicted_s,
                "makespan_s": self.makespan_s,
                "lower_bound_s": self.lower_bound_s,
                "warning": self.warning,
                "by_count": self.by_count,
            }

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        data = getattr(node, "workeroutput", {}).get(SHARD_OUTPUT_KEY)
        if data and self.predicted_s is None:
            self.tests = int(data["tests"])
            self.predicted_s = float(data["predicted_s"])
            self.makespan_s = float(data["makespan_s"])
            self.lower_bound_s = float(data["lower_bound_s"])
            self.warning = data["warning"]
            self.by_count = bool(data.get("by_count"))
            self.emptied = self.tests == 0

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.warning:
            terminalreporter.write_line(f"feedback: warning: {self.warning}")
        if self.predicted_s is None:
            return
        measured = time.perf_counter() - self._start
        terminalreporter.write_line(
            f"feedback: shard {self.k}/{self.n}: {self._count()}, measured "
            f"{format_duration(measured)}, {self._plan_text()}"
        )


class FeedbackDist:
    """Provides the xdist scheduler (controller only) and the per-worker summary line."""

    def __init__(
        self, config: pytest.Config, db_path: Path, run: Callable[[], Optional[RunRecord]]
    ) -> None:
        self.config = config
        self.db_path = db_path
        self._run = run
        self.estimates: Optional[Estimates] = None
        self.warning: Optional[str] = None
        self.scheduler: Any = None

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        from pytest_feedback.session.scheduler import make_scheduler

        self.estimates, self.warning = load_estimates(self.db_path)
        if self.warning is None and not self.estimates.tests:
            self.warning = "the history has no tests yet: scheduling like --dist load"
        self.scheduler = make_scheduler(config, log, self.estimates)
        return self.scheduler

    def timings(self) -> list[Any]:
        """Per worker, predicted and measured seconds (`timings.ProcessTiming`)."""
        from pytest_feedback.planning.timings import process_timings

        run = self._run()
        if run is None or self.estimates is None or not self.estimates.tests:
            return []
        return process_timings(run, self.estimates)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        from pytest_feedback.planning.timings import timings_line

        if self.config.getoption("dist", "no") == "no":
            terminalreporter.write_line(
                "feedback: warning: --feedback-dist does nothing without -n NUM"
            )
            return
        if self.warning:
            terminalreporter.write_line(f"feedback: warning: {self.warning}")
        timings = self.timings()
        if timings:
            terminalreporter.write_line(timings_line(timings))
