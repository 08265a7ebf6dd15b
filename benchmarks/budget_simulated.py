"""The budget benchmark's second question: does `pytest-feedback simulate` tell the truth?

`benchmarks/budget.py` measures what real ``--feedback-budget`` runs catch of its mutations. With
``--simulate`` it also writes a history a team would have: the suite's history, then for every
mutation that breaks something a commit of the mutation and a recorded full run (which fails:
the run that finds what the mutation breaks, recorded), then a commit restoring the code and a
recorded run of it (which passes: a full run, or with ``--fix-runs broken`` the broken tests
only). A mutation that breaks nothing leaves its two commits and no run. It replays that history
with the simulation the command runs (`planning.simulate`, the change between the runs' commits
from git and the coverage map) at the same budgets, and prints the simulated catch rate next to
the rate the real budget runs measured on the same mutations (goal: within 10 points), with the
runs each rests on and on how many runs the two verdicts agree.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from selection import Mutation, Suite

from pytest_feedback.history.store import Store
from pytest_feedback.planning.simulate import Simulation, prepare, tally
from pytest_feedback.selection.replay import replay_inputs


class MeasuredRow(Protocol):
    """What `budget.Row` holds of a budget's real runs."""

    suite: str
    share: float
    budget_s: float
    breaking: int
    caught_ours: int
    #: Per breaking mutation, in order: whether the real budget run caught it.
    verdicts: list[bool]


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


class SimulatedHistory:
    """The history with the mutations committed and run, built beside the real runs."""

    def __init__(
        self,
        suite: Suite,
        history: Path,
        plugin_dir: Path,
        extra: list[str],
        paths: Sequence[str] = (),
    ) -> None:
        """``extra``: a full run's arguments beyond the plugin's (``-n 4``); ``paths``: the test
        paths among the suite's arguments (``--tests``)."""
        self.paths = set(paths)
        self.suite = suite
        self.db = plugin_dir / f"{suite.name}-simulated.db"
        with sqlite3.connect(history) as src, sqlite3.connect(self.db) as dst:
            src.backup(dst)
        self.plugin_dir = plugin_dir
        self.record = ["-p", "pytest_feedback.plugin", "--feedback", f"--feedback-db={self.db}"]
        self.full = extra
        self.mutations = 0
        #: The file the mutation being run changed, and its text before.
        self._restore: tuple[Path, str] = (Path(), "")

    def apply(self, mutation: Mutation) -> list[str]:
        """Commit ``mutation``; the arguments of the full run that finds what it breaks,
        recorded into a scratch copy of this history (kept by `restore` if it broke a test)."""
        path = self.suite.root / mutation.path
        self._restore = (path, path.read_text(encoding="utf-8"))
        path.write_text(mutation.text, encoding="utf-8")
        _git(self.suite.root, "commit", "-q", "-a", "-m", f"bench: {mutation.describe()}")
        scratch = self.db.with_suffix(".scratch.db")
        with sqlite3.connect(self.db) as src, sqlite3.connect(scratch) as dst:
            src.backup(dst)
        return [*self.record[:-1], f"--feedback-db={scratch}", *self.full]

    def restore(self, broken: set[str], timeout: float, fixed_only: bool = False) -> None:
        """Commit the code back; when the mutation broke a test, keep its recorded run and
        record a full run of the restored code (it passes); ``fixed_only``: a run of the
        ``broken`` tests only, as a developer checks a fix (the next failing run is compared
        with it either way; the other tests' last outcomes stay those of the failing run, where
        they passed)."""
        path, original = self._restore
        path.write_text(original, encoding="utf-8")
        _git(self.suite.root, "commit", "-q", "-a", "--allow-empty", "-m", "bench: restore")
        scratch = self.db.with_suffix(".scratch.db")
        if broken:
            with sqlite3.connect(scratch) as src, sqlite3.connect(self.db) as dst:
                src.backup(dst)
            suite, tests, full = self.suite, [], self.full
            if fixed_only:  # the broken tests, not the paths the suite's arguments name
                kept = [a for a in suite.args if a not in self.paths]
                suite, tests, full = dataclasses.replace(suite, args=kept), sorted(broken), []
            suite.run(*self.record, *full, *tests, plugin_dir=self.plugin_dir, timeout=timeout)
            self.mutations += 1
        scratch.unlink(missing_ok=True)

    def compare(self, rows: Sequence[MeasuredRow]) -> list[str]:
        """Simulated against measured catch rates, budget by budget (the error, if it fails:
        the measured figures are printed anyway, and ``--keep`` keeps the history)."""
        try:
            return self._compare(rows)
        except Exception as exc:  # a benchmark says what went wrong and goes on
            return [f"  [{self.suite.name}] simulation failed on {self.db}: {exc!r}"]

    def _compare(self, rows: Sequence[MeasuredRow]) -> list[str]:
        mine = [r for r in rows if r.suite == self.suite.name]
        with Store(self.db, create=False, readonly=True) as store:
            replay, change_of = replay_inputs(store, self.suite.root)
            sim = Simulation([])
            prepared = prepare(replay, sim, change_of)
            sim = tally(sim, prepared, [r.budget_s for r in mine])
        by_budget = {row.budget_s: row for row in sim.rows}
        lines = [
            f"  [{self.suite.name}] simulated over {sim.failing_runs} failing runs "
            f"(skipped {sim.skipped or 'none'}; assumed {sim.assumed or 'nothing'})",
            f"  [{self.suite.name}] {'budget':>16}  {'real (runs)':>13}  {'simulated (runs)':>16}  "
            f"{'difference':>10}  same verdict",
        ]
        for row in mine:
            real = row.caught_ours / row.breaking if row.breaking else float("nan")
            simulated = sim.rate(by_budget[row.budget_s].ours)
            # Run by run: the failing runs of the history are the breaking mutations, in order.
            same = "-"
            if len(prepared) == len(row.verdicts):
                agree = sum(
                    (p.caught(row.budget_s)[0] > 0) == real_hit
                    for p, real_hit in zip(prepared, row.verdicts)
                )
                same = f"{agree}/{len(prepared)}"
            lines.append(
                f"  [{self.suite.name}] {row.share:4.0%} ({row.budget_s:6.1f} s)  "
                f"{real:5.0%} ({row.breaking:3})  {simulated:8.0%} ({sim.failing_runs:3})  "
                f"{100 * (simulated - real):+8.0f} pt  {same}"
            )
        return lines
