"""Merging histories, second half: the aggregates (``pytest-feedback merge``).

Once the runs are in place (`merge.py`), the per-test and per-fixture aggregates of every test
involved are rebuilt from the union of the histories' recent samples, de-duplicated by run and
ordered by run start time; samples of runs whose details retention already dropped keep their
place through ``run_index``. A merged run this merge changed speaks through its results.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Optional

from pytest_feedback.history.connection import chunks
from pytest_feedback.history.merge_inputs import HistoryView
from pytest_feedback.history.records import FAILING, FixtureKey
from pytest_feedback.history.summaries import BOTH_IN_RUN, FixtureSample, Sample
from pytest_feedback.history.writes import (
    FIXTURE_STATS_INSERT,
    TEST_STATS_INSERT,
    ensure_fixtures,
    ensure_tests,
    fixture_stats_row,
    replace_uses,
    test_stats_row,
)


class StatsRebuild:
    """Rebuilds `test_stats`, `fixture_stats` and `test_fixtures` of the output, inside the
    merge's transaction."""

    def __init__(
        self,
        con: sqlite3.Connection,
        started: dict[int, float],
        touched: set[int],
        test_ids: dict[str, int],
        resolve: Callable[[HistoryView, int], Optional[int]],
    ) -> None:
        self.con = con
        #: Run id here -> when it started (kept up to date by ``resolve``).
        self.started = started
        #: Merged runs whose details the merge changed: their samples come from their results.
        self.touched = touched
        #: Test ids here by node id (a cache shared with the merge).
        self.test_ids = test_ids
        #: The id here of a run of a source; None when it cannot be identified.
        self.resolve = resolve
        #: Samples of runs that no input can identify any more.
        self.samples_dropped = 0
        self.tests_updated = 0

    def run(self, sources: Sequence[HistoryView]) -> None:
        self._rebuild_test_stats(sources)
        self._rebuild_fixture_stats(sources)
        self._merge_uses(sources)

    def _derived_test_samples(self) -> dict[str, dict[int, Sample]]:
        out: dict[str, dict[int, Sample]] = {}
        for run_id in self.touched:
            commit_row = self.con.execute(
                "SELECT git_commit, git_dirty FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            commit = commit_row[0] if commit_row and commit_row[1] == 0 else None
            # Tests that both failed and passed within the run (its attempts say so).
            both = {
                nodeid
                for (nodeid,) in self.con.execute(
                    "SELECT t.nodeid FROM attempts a JOIN tests t ON t.id = a.test_id"
                    " WHERE a.run_id = ? GROUP BY a.test_id"
                    " HAVING max(a.outcome IN ('failed', 'error'))"
                    " AND max(a.outcome = 'passed')",
                    (run_id,),
                )
            }
            for nodeid, outcome, own, setup, call, teardown in self.con.execute(
                "SELECT t.nodeid, r.outcome, r.own_s, r.setup_s, r.call_s, r.teardown_s"
                " FROM results r JOIN tests t ON t.id = r.test_id WHERE r.run_id = ?",
                (run_id,),
            ):
                mark = BOTH_IN_RUN if nodeid in both else None
                sample = Sample(run_id, outcome, own, setup, call, teardown, commit, mark)
                out.setdefault(nodeid, {})[run_id] = Sample.from_row(sample.to_row())
        return out

    def _rebuild_test_stats(self, sources: Sequence[HistoryView]) -> None:
        derived = self._derived_test_samples()
        stats = [view.test_stats() for view in sources]
        affected = set(derived)
        for view, per_test in zip(sources, stats):
            if not view.is_output:
                affected.update(per_test)
        #: Per source, per test, when its newest sample's run started (for `_merge_uses`).
        self.last_seen: list[dict[str, float]] = [{} for _ in sources]
        test_ids = ensure_tests(self.con, sorted(affected), self.test_ids)
        parsed_lists: dict[str, list[list[Any]]] = {}
        #: Per source, its run ids -> ids here.
        mappings: list[dict[int, Optional[int]]] = [{} for _ in sources]
        rows = []
        for nodeid in sorted(affected):
            # run id here -> the sample as stored in the first history that has it
            chosen: dict[int, list[Any]] = {}
            runs_before = fails_before = 0
            for number, (view, per_test) in enumerate(zip(sources, stats)):
                test = per_test.get(nodeid)
                if test is None:
                    continue
                kept = fails = 0
                run_id: Optional[int] = None
                parsed = parsed_lists.get(test.recent)
                if parsed is None:  # the shards' copies of a history share most lists
                    parsed = parsed_lists[test.recent] = test.rows()
                resolved = mappings[number]
                for row in parsed:
                    source_id = int(row[0])
                    if source_id in resolved:
                        run_id = resolved[source_id]
                    else:
                        run_id = resolved[source_id] = self.resolve(view, source_id)
                    if run_id is None:  # counted among the runs before the recent ones
                        self.samples_dropped += 1
                        continue
                    kept += 1
                    fails += row[1] in FAILING
                    chosen.setdefault(run_id, row)
                if run_id is not None:
                    self.last_seen[number][nodeid] = self.started[run_id]
                # Runs older than the recent samples cannot be told apart across histories:
                # assume they are shared (restored from one cache) and count the most any had.
                runs_before = max(runs_before, test.runs - kept)
                fails_before = max(fails_before, test.failures - fails)
            # A merged run this merge changed speaks through its results, not older samples.
            samples = [
                # as stored: already typed and rounded; the mark when there is one
                Sample.from_row([run_id, *row[1:]])
                for run_id, row in chosen.items()
                if run_id not in self.touched
            ]
            samples.extend(derived.get(nodeid, {}).values())
            if not samples:
                continue
            samples.sort(key=lambda s: (self.started[s.run_id], s.run_id))
            failures = fails_before + sum(1 for s in samples if s.outcome in FAILING)
            rows.append(
                test_stats_row(test_ids[nodeid], runs_before + len(samples), failures, samples)
            )
        current = self._current_rows("test_stats", "test_id", [row[0] for row in rows])
        changed = [row for row in rows if current.get(row[0]) != row]
        self.con.executemany(TEST_STATS_INSERT, changed)
        self.tests_updated = len(changed)

    def _rebuild_fixture_stats(self, sources: Sequence[HistoryView]) -> None:
        derived: dict[FixtureKey, dict[int, FixtureSample]] = {}
        for run_id in self.touched:
            for name, scope, location, count, setup, teardown in self.con.execute(
                "SELECT f.name, f.scope, f.location, count(*), sum(fr.setup_s),"
                " coalesce(sum(fr.teardown_s), 0) FROM fixture_runs fr"
                " JOIN fixtures f ON f.id = fr.fixture_id WHERE fr.run_id = ? GROUP BY f.id",
                (run_id,),
            ):
                key = FixtureKey(name, scope, location)
                derived.setdefault(key, {})[run_id] = FixtureSample(run_id, count, setup, teardown)
        merged: dict[FixtureKey, dict[int, FixtureSample]] = {}
        older: dict[FixtureKey, tuple[int, int]] = {}
        affected = set(derived)
        for view in sources:
            for key, stats in view.fixture_stats():
                if not view.is_output:
                    affected.add(key)
                chosen = merged.setdefault(key, {})
                kept = executions = 0
                for sample in stats.samples:
                    resolved = self.resolve(view, sample.run_id)
                    if resolved is None:
                        continue
                    kept += 1
                    executions += sample.executions
                    if resolved not in chosen:
                        chosen[resolved] = dataclasses.replace(sample, run_id=resolved)
                runs_before, executions_before = older.get(key, (0, 0))
                older[key] = (
                    max(runs_before, stats.runs - kept),
                    max(executions_before, stats.executions - executions),
                )
        keys = sorted(affected, key=lambda k: (k.name, k.scope, k.location))
        fixture_ids = ensure_fixtures(self.con, keys)
        rows = []
        for key in keys:
            chosen = {r: s for r, s in merged.get(key, {}).items() if r not in self.touched}
            chosen.update(derived.get(key, {}))
            if not chosen:
                continue
            samples = sorted(chosen.values(), key=lambda s: (self.started[s.run_id], s.run_id))
            runs_before, executions_before = older.get(key, (0, 0))
            rows.append(
                fixture_stats_row(
                    fixture_ids[key],
                    runs_before + len(samples),
                    executions_before + sum(s.executions for s in samples),
                    samples,
                )
            )
        current = self._current_rows("fixture_stats", "fixture_id", [row[0] for row in rows])
        self.con.executemany(FIXTURE_STATS_INSERT, [r for r in rows if current.get(r[0]) != r])

    def _current_rows(self, table: str, key: str, ids: list[int]) -> dict[int, tuple[Any, ...]]:
        out: dict[int, tuple[Any, ...]] = {}
        for chunk in chunks(ids):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT * FROM {table} WHERE {key} IN ({marks})"  # noqa: S608 (names are ours)
            for row in self.con.execute(sql, tuple(chunk)):
                out[row[0]] = tuple(row)
        return out

    def _merge_uses(self, sources: Sequence[HistoryView]) -> None:
        """Each test's fixtures as of the newest run that ran it, in whichever history."""
        newest: dict[str, tuple[float, bool, list[FixtureKey]]] = {}
        for view, last in zip(sources, self.last_seen):
            for nodeid, keys in view.uses().items():
                when = last.get(nodeid, float("-inf"))
                if nodeid not in newest or when > newest[nodeid][0]:
                    newest[nodeid] = (when, view.is_output, keys)
        changed = {n: keys for n, (_, from_output, keys) in newest.items() if not from_output}
        if not changed:
            return
        test_ids = ensure_tests(self.con, sorted(changed))
        all_keys = {k for keys in changed.values() for k in keys}
        fixture_ids = ensure_fixtures(
            self.con, sorted(all_keys, key=lambda k: (k.name, k.scope, k.location))
        )
        replace_uses(self.con, changed, test_ids, fixture_ids)
