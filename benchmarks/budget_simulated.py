"""The budget benchmark's second question: does `pytest-feedback simulate` tell the truth?

`benchmarks/budget.py` measures what real ``--feedback-budget`` runs catch of its mutations. With
``--simulate`` it also writes a history a team would have: the suite's history, then for every
mutation that breaks something a commit of the mutation and a recorded full run (which fails),
then a commit restoring the code and a recorded full run (which passes). It replays that history
with the simulation the command runs (`planning.simulate`, the change between the runs' commits
from git and the coverage map) at the same budgets, and prints the simulated catch rate next to
the rate the real budget runs measured on the same mutations (goal: within 10 points).
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import Protocol

from selection import Mutation, Suite

from pytest_feedback.history.store import Store
from pytest_feedback.planning.simulate import simulate
from pytest_feedback.selection.replay import replay_inputs


class MeasuredRow(Protocol):
    """What `budget.Row` holds of a budget's real runs."""

    suite: str
    share: float
    budget_s: float
    breaking: int
    caught_ours: int


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


class SimulatedHistory:
    """The history with the mutations committed and run, built beside the real runs."""

    def __init__(self, suite: Suite, history: Path, plugin_dir: Path, extra: list[str]) -> None:
        """``extra``: a full run's arguments beyond the plugin's (``-n 4``)."""
        self.suite = suite
        self.db = plugin_dir / f"{suite.name}-simulated.db"
        with sqlite3.connect(history) as src, sqlite3.connect(self.db) as dst:
            src.backup(dst)
        self.plugin_dir = plugin_dir
        self.record = ["-p", "pytest_feedback.plugin", "--feedback", f"--feedback-db={self.db}"]
        self.full = extra
        self.mutations = 0

    def add(self, mutation: Mutation, timeout: float) -> None:
        """Commit ``mutation``, record a full run; commit the code back, record a full run."""
        path = self.suite.root / mutation.path
        original = path.read_text(encoding="utf-8")
        path.write_text(mutation.text, encoding="utf-8")
        try:
            _git(self.suite.root, "commit", "-q", "-a", "-m", f"bench: {mutation.describe()}")
            self.suite.run(*self.record, *self.full, plugin_dir=self.plugin_dir, timeout=timeout)
        finally:
            path.write_text(original, encoding="utf-8")
            _git(self.suite.root, "commit", "-q", "-a", "--allow-empty", "-m", "bench: restore")
        self.suite.run(*self.record, *self.full, plugin_dir=self.plugin_dir, timeout=timeout)
        self.mutations += 1

    def compare(self, rows: list[MeasuredRow]) -> list[str]:
        """Simulated against measured catch rates, budget by budget (the error, if it fails:
        the measured figures are printed anyway, and ``--keep`` keeps the history)."""
        try:
            return self._compare(rows)
        except Exception as exc:  # a benchmark says what went wrong and goes on
            return [f"  [{self.suite.name}] simulation failed on {self.db}: {exc!r}"]

    def _compare(self, rows: list[MeasuredRow]) -> list[str]:
        mine = [r for r in rows if r.suite == self.suite.name]
        with Store(self.db, create=False, readonly=True) as store:
            replay, change_of = replay_inputs(store, self.suite.root)
            sim = simulate(replay, [r.budget_s for r in mine], change_of)
        by_budget = {row.budget_s: row for row in sim.rows}
        lines = [
            f"  [{self.suite.name}] simulated over {sim.failing_runs} failing runs "
            f"(skipped {sim.skipped or 'none'}; assumed {sim.assumed or 'nothing'})"
        ]
        for row in mine:
            real = row.caught_ours / row.breaking if row.breaking else float("nan")
            simulated = sim.rate(by_budget[row.budget_s].ours)
            lines.append(
                f"  [{self.suite.name}] budget {row.share:4.0%} ({row.budget_s:6.1f} s): real "
                f"{real:4.0%} of {row.breaking}, simulated {simulated:4.0%} of "
                f"{sim.failing_runs}, difference {100 * (simulated - real):+.0f} points"
            )
        return lines
