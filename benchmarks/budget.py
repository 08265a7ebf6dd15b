"""Does `--feedback-budget` keep its time, predict it, and catch breakage? Real suites, mutations.

For each suite (a corpus copied to a temp dir, or the generated one), the benchmark records a few
full runs (the first with `--feedback-cov`: history and a coverage map), measures the full suite's
wall time T, then for budgets of 10%, 25% and 50% of T:

- runs `pytest --feedback-budget=B` once on the clean tree, recorded into a copy of the history
  for that budget: the developer's previous loop, from which the budget learns its pace (how its
  runs compare with the estimates, `Estimates.pace`); its prediction, uncalibrated, is printed
  apart ("first run");
- runs `pytest --feedback-budget=B` on the clean tree and on every mutation of the selection
  benchmark (`benchmarks/selection.py`: flipped comparisons, changed return values, constants, ...)
  and compares its wall time with the budget (goal: within budget + 5%) and the plugin's predicted
  time (`feedback: budget ...: predicted X, took Y`) with the wall time (goal: within 10%);
- finds with a full run the tests each mutation breaks and counts the mutations the budget run
  catches (at least one broken test fails), against two baselines filling the same budget on
  paper with the model the plugin planned with (the same history, the pace its first run taught,
  start-up, process exit and session-end share): the fastest tests first, and random tests (mean
  over seeded draws); like the plugin's plan, they pay for each wider-scope fixture instance
  (module, session) once. Ours is what really failed in the budget run, the left-out tests it
  ran in the time left included (a run ahead of its plan, see `pacer.Pacer.fill`); the
  baselines on paper get no such second chance, nor do they pay for a plan that was wrong.

The corpora (arrow, attrs) run in 3-8 s, so their budgets are mostly interpreter start-up. The
feature is meant for suites of minutes: ``--corpora generated`` writes one
(`benchmarks/budget_suite.py`): a 13-module ``shop`` package and about 650 tests in 32 modules
whose costs are sleeps (log-normal, median ~50 ms, a few end-to-end tests of 1-5 s, module
fixtures of 0.5-3 s, a session fixture of 1.5 s), about 100 s in a serial run, in its own git
repository, run with this checkout's venv. Its full runs that find what a mutation breaks use
``--find-workers`` (4) xdist workers; the measured budget runs stay serial unless ``--workers``.
With the default 6 mutations it takes about 20 minutes.

    python benchmarks/budget.py [--corpora arrow,attrs|generated] [--per-kind 1] [--workers 1]
                                [--simulate] [--mutations N] [--tests SUITE=PATHS] ...

``--simulate`` also replays the mutations with `pytest-feedback simulate`'s code and prints the
simulated catch rates beside the measured ones (`benchmarks/budget_simulated.py`; one more run
per mutation: the run of the fixed code).

For corpora of minutes (sqlglot, cattrs) on a shared machine: ``--mutations 14`` chooses that
many within ``--choose-seconds`` on the lines the map covers (`budget_mutations.py`), ``--tests``
runs a part of a corpus, ``--history-walls`` takes T from the history runs, ``--fix-runs broken``
makes the simulated history's fix runs run the broken tests only, ``--minutes`` stops starting
mutations after a while.

The corpora come from /tmp/pytest-feedback-corpora; our code is loaded from this checkout's ``src``
with PYTHONPATH, nothing is installed into the corpus venvs. History runs are recorded; the
measured budget runs are recorded as a user's are (the recorder's work and the history write
are part of what a budget run costs), each into a fresh copy of its budget's history, so every
budget run of one budget plans from the same history.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Optional, Union

from budget_mutations import covered_lines, pick_capped
from budget_simulated import SimulatedHistory
from budget_suite import generated_suite
from selection import (
    OUTCOMES_PLUGIN,
    SRC,
    Mutation,
    Suite,
    broken_by,
    copy_suite,
    failing,
    link_dependencies,
    pick_mutations,
)

sys.path.insert(0, str(SRC))
from pytest_feedback.history.store import Store
from pytest_feedback.planning.costs import CostModel, cost_model

BUDGETS = (0.10, 0.25, 0.50)
RANDOM_DRAWS = 50
PREDICTED = re.compile(r"feedback: budget \S+: predicted (\S+), took ([^\s;]+)")
RUNNING = re.compile(r"feedback: budget [^:]*: running (?:all )?([\d,]+)")
USED_UP = re.compile(r"feedback: budget \S+ used up: ([\d,]+) of the chosen tests not run")
FILLED = re.compile(r"; ([\d,]+) left-out tests run in the time left \(predicted (\S+)\)")


@dataclasses.dataclass
class BudgetRun:
    wall_s: float
    predicted_s: Optional[float]
    took_s: Optional[float]
    chosen: int
    #: Chosen tests the plugin did not start because the budget was used up.
    not_run: int
    failed: set[str]
    #: Left-out tests run after all, the run being ahead of its plan, and what they were
    #: expected to take when the run added them.
    filled: int = 0
    filled_s: float = 0.0

    @property
    def expected_s(self) -> Optional[float]:
        """What the plugin expected of everything that ran: its plan and the tests it added."""
        return None if self.predicted_s is None else self.predicted_s + self.filled_s


@dataclasses.dataclass
class Row:
    suite: str
    share: float
    budget_s: float
    runs: list[BudgetRun] = dataclasses.field(default_factory=list)
    breaking: int = 0
    caught_ours: int = 0
    caught_fastest: int = 0
    caught_random: float = 0.0
    #: Per breaking mutation, in order: whether the budget run caught it.
    verdicts: list[bool] = dataclasses.field(default_factory=list)
    #: The budget's history: the suite's, with one recorded budget run of this size.
    db: Optional[Path] = None
    #: That recorded run, planned from the suite's history alone (no pace learnt yet).
    first: Optional[BudgetRun] = None

    @property
    def budget_db(self) -> Path:
        if self.db is None:
            raise RuntimeError("the budget's history is made before its runs")
        return self.db


def budget_run(
    suite: Suite, db: Path, budget_s: float, plugin_dir: Path, workers: int, record: bool = False
) -> BudgetRun:
    out: list[str] = []
    extra = ["-p", "pytest_feedback.plugin", f"--feedback-db={db}"]
    if not record:
        extra.append("--feedback-no-record")
    extra.append(f"--feedback-budget={budget_s:.2f}s")
    if workers > 1:
        extra += ["-n", str(workers)]
    outcomes, wall = suite.run(*extra, plugin_dir=plugin_dir, output=out)
    text = out[0]
    found = PREDICTED.search(text)
    running = RUNNING.search(text)
    used_up = USED_UP.search(text)
    filled = FILLED.search(text)
    if running is None:
        sys.stderr.write(text[-2000:])
        raise RuntimeError(f"{suite.name}: the budget run printed no budget line")
    return BudgetRun(
        wall_s=wall,
        predicted_s=seconds(found.group(1)) if found else None,
        took_s=seconds(found.group(2)) if found else None,
        chosen=int(running.group(1).replace(",", "")),
        not_run=int(used_up.group(1).replace(",", "")) if used_up else 0,
        failed=failing(outcomes),
        filled=int(filled.group(1).replace(",", "")) if filled else 0,
        filled_s=seconds(filled.group(2)) if filled else 0.0,
    )


def copy_history(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def measured_run(suite: Suite, row: Row, plugin_dir: Path, workers: int) -> BudgetRun:
    """A recorded budget run on a fresh copy of the budget's history (thrown away after)."""
    scratch = row.budget_db.with_suffix(".run.db")
    copy_history(row.budget_db, scratch)
    return budget_run(suite, scratch, row.budget_s, plugin_dir, workers, record=True)


def seconds(text: str) -> float:
    """A `format_duration` text (``0.42s``, ``12s``, ``3m05s``, ``1h02m``) in seconds."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:([\d.]+)s)?", text)
    if parts is None or not text:
        raise ValueError(f"not a duration: {text!r}")
    h, m, s = (float(g) if g else 0.0 for g in parts.groups())
    return h * 3600 + m * 60 + s


@dataclasses.dataclass(frozen=True)
class Paper:
    """A baseline's run on paper, with the cost model the plugin plans a serial run with
    (`costs.cost_model`: the calibrated costs, the start-up, the process exit, the session end),
    so that a baseline differs from ours by its order only. (With ``--workers`` the plugin plans
    the parallel plan instead; the baselines stay serial sums.)"""

    model: CostModel

    @classmethod
    def of(cls, db: Path, tests: list[str], startup_s: float) -> Paper:
        with Store(db, create=False, readonly=True) as store:
            estimates = store.reads.load_estimates()
        return cls(cost_model(estimates, tests, 1, startup_s))

    def fill(self, order: list[str], budget_s: float) -> set[str]:
        """Tests taken in ``order`` while the serial estimate fits the budget.

        Like the planner, a test pays for the wider-scope fixture instances (a module's
        database, the session's warehouse) no test taken before it has paid for: a baseline that
        ran the tests of a slow module fixture for their own seconds only would be flattered.
        """
        model, work = self.model, self.model.work
        index = {nodeid: t for t, nodeid in enumerate(work.nodeids)}
        work_s = 0.0
        paid: set[int] = set()
        chosen: set[str] = set()
        for nodeid in order:
            t = index[nodeid]
            cost = work.added_cost(t, paid)
            if work.startup_s + work_s + cost + model.end(work_s + cost) <= budget_s:
                chosen.add(nodeid)
                work_s += cost
                paid.update(work.needs[t])
        return chosen


def measure(
    suite: Suite,
    mutations: Union[list[Mutation], Callable[[Path], list[Mutation]]],
    plugin_dir: Path,
    history: int,
    cov_runs: int,
    workers: int,
    seed: int,
    log: list[str],
    find_workers: int = 1,
    simulated: bool = False,
    history_walls: bool = False,
    fix_runs: str = "full",
    test_paths: Sequence[str] = (),
    stop_at: Optional[float] = None,
) -> list[Row]:
    """``history_walls``: T is the median of the recorded history runs without coverage, not
    of two more full runs; ``fix_runs``: see `SimulatedHistory.restore`."""
    db = plugin_dir / f"{suite.name}.db"
    record = ["-p", "pytest_feedback.plugin", "--feedback", f"--feedback-db={db}"]
    baseline: dict[str, str] = {}
    all_walls: list[float] = []
    for i in range(history):
        # The first run maps coverage; the others time the tests as they run without tracing.
        cov = ["--feedback-cov"] if i < cov_runs else []
        outcomes, wall = suite.run(*record, *cov, plugin_dir=plugin_dir)
        baseline = baseline or outcomes
        log.append(f"{suite.name}: history run {i + 1} {' '.join(cov)}: {wall:.1f} s")
        all_walls.append(wall)
    full = ["-p", "pytest_feedback.plugin", f"--feedback-db={db}", "--feedback-no-record"]
    if workers > 1:
        full += ["-n", str(workers)]
    # What a mutation breaks: a full run, on more workers when the suite is a long one.
    find = [*full, "-n", str(find_workers)] if find_workers > 1 and workers <= 1 else full
    if callable(mutations):  # chosen on the lines the map of the first run says ran
        mutations = mutations(db)
    if history_walls and history > cov_runs and workers <= 1:
        walls = all_walls[cov_runs:]  # recorded, as the budget runs are
    else:
        walls = [suite.run(*full, plugin_dir=plugin_dir)[1] for _ in range(2)]
    total_s = statistics.median(walls)
    log.append(f"{suite.name}: full suite T = {total_s:.2f} s (median of {len(walls)})")
    tests = sorted(n for n in baseline if not n.startswith("collect-error::"))
    with Store(db, create=False, readonly=True) as store:
        estimates = store.reads.load_estimates()
    fastest = sorted(tests, key=lambda n: (estimates.duration(n), n))
    # The baselines start up like any run: a budget nothing fits makes the plugin predict
    # exactly the seconds spent before the first test (interpreter, imports, collection).
    empty = [budget_run(suite, db, 0.01, plugin_dir, workers).predicted_s for _ in range(3)]
    startup_s = statistics.median(p for p in empty if p is not None)
    log.append(f"{suite.name}: start-up before the first test {startup_s:.2f} s (median of 3)")
    rows = [Row(suite.name, share, total_s * share) for share in BUDGETS]
    for row in rows:
        # A developer who runs the loop has run it before: one recorded budget run, on a copy
        # of the history, so that each budget learns from its own runs only.
        row.db = plugin_dir / f"{suite.name}-{round(row.share * 100)}.db"
        copy_history(db, row.db)
        row.first = budget_run(suite, row.db, row.budget_s, plugin_dir, workers, record=True)
    timing = "  ".join(
        f"{row.share:.0%}: {timing_mark(row.first, row)}" for row in rows if row.first
    )
    print(f"  [{suite.name}] first run   wall/budget, predicted/wall  {timing}", flush=True)
    # The baselines at each budget, on paper with the model the measured runs plan with (the
    # pace that budget's first run taught). Fastest-first depends on the budget only.
    paper = {row.share: Paper.of(row.budget_db, tests, startup_s) for row in rows}
    fastest_fill = {row.share: paper[row.share].fill(fastest, row.budget_s) for row in rows}
    for row in rows:
        row.runs.append(measured_run(suite, row, plugin_dir, workers))
    timing = "  ".join(f"{row.share:.0%}: {timing_mark(row.runs[0], row)}" for row in rows)
    print(f"  [{suite.name}] clean tree  wall/budget, predicted/wall  {timing}", flush=True)
    # The same mutations committed into a history of their own, replayed by the simulation.
    sim = None
    if simulated:
        sim = SimulatedHistory(suite, db, plugin_dir, find[len(full) :], test_paths)
    for done, mutation in enumerate(mutations):
        if stop_at is not None and time.monotonic() > stop_at:
            print(f"  [{suite.name}] --minutes used up: {len(mutations) - done} left", flush=True)
            break
        path = suite.root / mutation.path
        original = path.read_text(encoding="utf-8")
        # Simulating, the mutation is committed and its finding run is the history's failing run.
        finding = sim.apply(mutation) if sim is not None else find
        path.write_text(mutation.text, encoding="utf-8")
        broken: set[str] = set()
        try:
            # A mutation can make a test loop forever (cattrs: a changed default argument).
            now, _ = suite.run(*finding, plugin_dir=plugin_dir, timeout=max(60.0, 4 * total_s))
            broken = broken_by(now, baseline)
            runs = [measured_run(suite, row, plugin_dir, workers) for row in rows] if broken else []
        except subprocess.TimeoutExpired:
            print(f"  [{suite.name}] hangs, skipped  {mutation.describe()}", flush=True)
            broken = set()
            continue
        finally:
            path.write_text(original, encoding="utf-8")
            if sim is not None:
                sim.restore(broken, max(60.0, 4 * total_s), fixed_only=fix_runs == "broken")
        if not broken:
            print(f"  [{suite.name}] breaks nothing  {mutation.describe()}", flush=True)
            continue
        marks = []
        for row, run in zip(rows, runs):
            row.runs.append(run)
            row.breaking += 1
            ours = bool(run.failed & broken)
            fast = bool(fastest_fill[row.share] & broken)
            rng = random.Random(f"{seed}:{suite.name}:{row.share}:{mutation.describe()}")
            hits = 0
            for _ in range(RANDOM_DRAWS):
                order = tests[:]
                rng.shuffle(order)
                hits += bool(paper[row.share].fill(order, row.budget_s) & broken)
            row.caught_ours += ours
            row.verdicts.append(ours)
            row.caught_fastest += fast
            row.caught_random += hits / RANDOM_DRAWS
            marks.append(
                f"{row.share:.0%}:{'Y' if ours else '-'}{'Y' if fast else '-'} "
                f"{timing_mark(run, row)}"
            )
        print(
            f"  [{suite.name}] broken {len(broken):4}  caught ours/fastest, wall/budget, "
            f"predicted/wall  {'  '.join(marks)}  {mutation.describe()}",
            flush=True,
        )
    if sim is not None:
        compared = sim.compare(rows)
        print("\n".join(compared), flush=True)
        log.extend(compared)
    return rows


def timing_mark(run: BudgetRun, row: Row) -> str:
    """``wall/budget predicted/wall``, and how many chosen tests the plugin did not start."""
    text = f"{run.wall_s / row.budget_s:.2f}"
    text += f" {run.predicted_s / run.wall_s:.2f}" if run.predicted_s is not None else " -"
    text += f" ({run.not_run} not run)" if run.not_run else ""
    if run.filled and run.expected_s is not None:
        text += f" (+{run.filled} filled, with them {run.expected_s / run.wall_s:.2f})"
    return text


def ratio(values: list[float]) -> str:
    return f"{statistics.median(values):5.2f} ({min(values):.2f}-{max(values):.2f})"


def table(rows: list[Row]) -> list[str]:
    head = (
        f"{'suite':10} {'budget':>6} {'budget s':>8} {'wall s':>7} {'wall/budget':>17} "
        f"{'predicted s':>11} {'predicted/wall':>17} {'+filled/wall':>17} {'predicted/took':>14} "
        f"{'first run':>9} "
        f"{'chosen':>6} "
        f"{'not run':>9} {'filled':>9} {'mutations':>9}  caught % ours / fastest-first / random"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        walls = [r.wall_s for r in row.runs]
        predicted = [r.predicted_s for r in row.runs if r.predicted_s is not None]
        per_wall = [r.predicted_s / r.wall_s for r in row.runs if r.predicted_s is not None]
        per_took = [r.predicted_s / r.took_s for r in row.runs if r.predicted_s and r.took_s]
        whole = [r.expected_s / r.wall_s for r in row.runs if r.expected_s is not None]
        n = row.breaking
        cut = f"{sum(1 for r in row.runs if r.not_run)}/{len(row.runs)}"
        filled = f"{sum(1 for r in row.runs if r.filled)}/{len(row.runs)}"
        first = row.first
        first_ratio = (
            f"{first.predicted_s / first.wall_s:9.2f}"
            if first is not None and first.predicted_s is not None
            else f"{'-':>9}"
        )
        caught = (
            f"{row.caught_ours / n:6.0%} / {row.caught_fastest / n:6.0%} / "
            f"{row.caught_random / n:6.0%}"
            if n
            else "     - /      - /      -"
        )
        lines.append(
            f"{row.suite:10} {row.share:6.0%} {row.budget_s:8.2f} {statistics.median(walls):7.2f} "
            f"{ratio([w / row.budget_s for w in walls]):>17} "
            f"{statistics.median(predicted) if predicted else float('nan'):11.2f} "
            f"{ratio(per_wall) if per_wall else '-':>17} "
            f"{ratio(whole) if whole else '-':>17} "
            f"{statistics.median(per_took) if per_took else float('nan'):14.2f} {first_ratio} "
            f"{statistics.median(r.chosen for r in row.runs):6.0f} "
            f"{max(r.not_run for r in row.runs):5} {cut:>3} "
            f"{max(r.filled for r in row.runs):5} {filled:>3} {n:9}  {caught}"
        )
    return lines


def chosen(spec: str) -> list[str]:
    """The paths of ``--tests SUITE=PATH,PATH``."""
    return [p for p in spec.partition("=")[2].split(",") if p]


def capped(
    suite: Suite,
    count: int,
    rng: random.Random,
    seconds: float,
    log: list[str],
    kinds: Optional[set[str]],
) -> Callable[[Path], list[Mutation]]:
    """`budget_mutations.pick_capped` once the suite's history holds its map."""

    def pick(db: Path) -> list[Mutation]:
        mutations, said = pick_capped(
            suite, count, rng, seconds, covered_lines(db), kinds_wanted=kinds
        )
        print(f"  {said}", flush=True)
        log.append(said)
        return mutations

    return pick


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--corpora", default="arrow,attrs")
    parser.add_argument("--per-kind", type=int, default=1, help="mutations per kind per suite")
    parser.add_argument(
        "--mutations",
        type=int,
        help="instead of --per-kind: at most N mutations per suite, on lines the map of the first "
        "history run says ran, chosen in a seeded order within --choose-seconds",
    )
    parser.add_argument("--choose-seconds", type=float, default=60.0)
    parser.add_argument("--kinds", help="with --mutations: only these kinds (comma-separated)")
    parser.add_argument(
        "--tests",
        action="append",
        default=[],
        metavar="SUITE=PATH[,PATH...]",
        help="run only these test paths of a corpus (a suite of minutes made shorter)",
    )
    parser.add_argument("--history", type=int, default=3, help="recorded full runs")
    parser.add_argument(
        "--cov-runs", type=int, default=1, help="how many of them with --feedback-cov"
    )
    parser.add_argument("--workers", type=int, default=1, help="-n for the measured runs")
    parser.add_argument(
        "--find-workers",
        type=int,
        help="-n for the full runs that find what a mutation breaks (default: 4 for the generated "
        "suite, 1 for the corpora)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="also commit each mutation into a history of its own and print the simulated "
        "catch rate (`pytest-feedback simulate`) beside the measured one",
    )
    parser.add_argument(
        "--history-walls",
        action="store_true",
        help="T from the history runs without coverage (recorded), not two more full runs",
    )
    parser.add_argument(
        "--fix-runs",
        choices=("full", "broken"),
        default="full",
        help="with --simulate: after each failing run, a full run of the restored code, or a run "
        "of the tests the mutation broke only",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        help="per suite, from its first run: start no mutation after this many minutes (the "
        "figures rest on the mutations done)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args(argv)
    # Without pyc files pytest rewrites every test module's asserts on every run: a start-up
    # no user has, and which would swamp the small budgets.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="budget-bench-"))
    plugin_dir = work / "plugin"
    plugin_dir.mkdir()
    (plugin_dir / "bench_outcomes.py").write_text(OUTCOMES_PLUGIN)
    # Without networkx in a corpus venv, a change the map's graph must resolve made the plugin
    # warn and run every test (sqlglot: "budget 12s not applied (ModuleNotFoundError ...)").
    link_dependencies(plugin_dir)
    log: list[str] = []
    rows: list[Row] = []
    start = time.perf_counter()
    try:
        for name in [n for n in args.corpora.split(",") if n]:
            generated = name == "generated"
            suite = generated_suite(work, args.seed) if generated else copy_suite(name, work)
            paths = [p for s in args.tests if s.startswith(f"{name}=") for p in chosen(s)]
            suite.args += paths
            mutations: Union[list[Mutation], Callable[[Path], list[Mutation]]]
            if args.mutations is None:
                mutations = pick_mutations(suite, args.per_kind, rng)
            else:
                kinds = set(args.kinds.split(",")) if args.kinds else None
                mutations = capped(suite, args.mutations, rng, args.choose_seconds, log, kinds)
            rows += measure(
                suite,
                mutations,
                plugin_dir,
                args.history,
                args.cov_runs,
                args.workers,
                args.seed,
                log,
                args.find_workers or (4 if generated else 1),
                args.simulate,
                args.history_walls,
                args.fix_runs,
                paths,
                None if args.minutes is None else time.monotonic() + 60 * args.minutes,
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print("\n".join(log))
    print()
    print(
        f"workers: {args.workers}; ratios are median (min-max) over the clean and mutated runs; "
        "not run: the most chosen tests a run did not start (budget used up), in how many runs; "
        "filled: the most left-out tests a run ran in the time left, in how many runs; "
        "+filled/wall: the plan's prediction plus what the added tests were expected to take"
    )
    print("\n".join(table(rows)))
    print(f"benchmark wall time {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
