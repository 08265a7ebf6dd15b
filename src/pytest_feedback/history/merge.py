"""Merging histories from CI shards or machines into one (``pytest-feedback merge``).

Runs are matched by uuid, so merging a file twice adds nothing.  The shard runs of one pipeline
(same pipeline id, commit, shard count, Python and platform) become one merged run whose uuid is
derived from that identity, whose results are the union of its shards' and whose wall time is the
slowest shard's; the shards themselves are listed in ``run_parts``.  The per-test and per-fixture
aggregates of every test involved are rebuilt from the union of the histories' recent samples,
de-duplicated by run and ordered by run start time; samples of runs whose details retention
already dropped keep their place through ``run_index``.

The inputs are read through `HistoryView` (read-only, any older schema); only the output is
written, in one transaction.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from pytest_feedback.errors import HistoryError
from pytest_feedback.history.connection import SqliteDb
from pytest_feedback.history.estimates import FixtureSample, Sample
from pytest_feedback.history.merge_inputs import HistoryView, PartInfo, shard_index
from pytest_feedback.history.reads import chunks
from pytest_feedback.history.records import FAILING, FixtureKey, RunRecord
from pytest_feedback.history.store import Store
from pytest_feedback.history.writes import (
    FIXTURE_STATS_INSERT,
    TEST_STATS_INSERT,
    ensure_fixtures,
    ensure_tests,
    fixture_stats_row,
    index_run,
    insert_details,
    insert_run,
    prune,
    replace_uses,
    test_stats_row,
)


@dataclasses.dataclass
class MergeSummary:
    """What a merge did, for the one line the command prints."""

    inputs: int = 0
    runs_added: int = 0
    shards_folded: int = 0
    merged_runs: int = 0
    already_present: int = 0
    tests_updated: int = 0
    #: Samples of runs that no input can identify any more (an old history without run_index).
    samples_dropped: int = 0
    skipped_inputs: list[str] = dataclasses.field(default_factory=list)

    def line(self, out: Path) -> str:
        parts = [f"merged {self.inputs} histor{'y' if self.inputs == 1 else 'ies'} into {out}:"]
        parts.append(f"{self.runs_added} run{'s' * (self.runs_added != 1)} added,")
        parts.append(
            f"{self.shards_folded} shard run{'s' * (self.shards_folded != 1)} folded into "
            f"{self.merged_runs} pipeline run{'s' * (self.merged_runs != 1)},"
        )
        parts.append(f"{self.already_present} already present;")
        parts.append(f"{self.tests_updated:,} tests updated")
        text = " ".join(parts)
        if self.samples_dropped:
            text += f" ({self.samples_dropped} samples of unidentifiable runs left out)"
        return text


def merged_run_uuid(
    pipeline: str, commit: Optional[str], total: int, python: str, platform: str
) -> str:
    """The uuid of the merged run of one pipeline's shards: the same from any merge order."""
    identity = "\0".join(["merged", pipeline, commit or "", str(total), python, platform])
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def worker_label(index: int, worker: Optional[str]) -> str:
    """A shard's worker inside its merged run: ``s2`` (no xdist) or ``s2/gw1``."""
    return f"s{index}" if worker in (None, "main") else f"s{index}/{worker}"


def label_index(worker: Optional[str]) -> int:
    """The shard index of a merged run's worker label (0 when it is not one)."""
    head = (worker or "").split("/", 1)[0]
    return int(head[1:]) if head[:1] == "s" and head[1:].isdigit() else 0


def merge_histories(inputs: Sequence[Path], out: Path, *, keep_runs: int = 50) -> MergeSummary:
    """Merge ``inputs`` into ``out`` (created when missing). Inputs are never written."""
    if out.is_dir():
        raise HistoryError(f"{out} is a directory; pass -o the path of a history file")
    summary = MergeSummary()
    paths: list[Path] = []
    for path in inputs:
        path = Path(path)
        if out.exists() and path.exists() and os.path.samefile(path, out):
            summary.skipped_inputs.append(f"{path} (the output itself)")
        elif any(path.exists() and os.path.samefile(path, p) for p in paths):
            summary.skipped_inputs.append(f"{path} (given twice)")
        else:
            paths.append(path)
    views: list[HistoryView] = []
    dbs: list[SqliteDb] = []
    try:
        for path in paths:
            view, db = HistoryView.open_input(path)
            views.append(view)
            dbs.append(db)
        summary.inputs = len(views)
        with Store(out) as store, store.transaction() as con:
            _Merge(con, out, keep_runs, summary).run(views)
    finally:
        for db in dbs:
            db.close()
    return summary


class _Merge:
    def __init__(
        self, con: sqlite3.Connection, out: Path, keep_runs: int, summary: MergeSummary
    ) -> None:
        self.con = con
        self.keep_runs = keep_runs
        self.summary = summary
        self.output = HistoryView(con, out, is_output=True)
        #: uuid -> id here, for every run and every shard run folded into a merged run.
        self.ids: dict[str, int] = {uuid: i for i, (uuid, _) in self.output.index.items()}
        self.started: dict[int, float] = {i: s for i, (_, s) in self.output.index.items()}
        self.parts: dict[int, dict[str, PartInfo]] = {}
        for run_id, parts in self.output.parts.items():
            self.parts[run_id] = {p.uuid: p for p in parts}
            for part in parts:
                self.ids[part.uuid] = run_id
        self.detailed: set[int] = set(self.output.runs)
        #: Merged runs whose details this merge changed: their samples come from their results.
        self.touched: set[int] = set()
        #: Test ids here by node id, filled as tests are written.
        self.test_ids: dict[str, int] = {}

    def run(self, inputs: Sequence[HistoryView]) -> None:
        sources = [self.output, *inputs]
        for view in sources:
            self._add_runs(view)
        for run_id in sorted(self.touched):
            self._summarise_merged(run_id)
        self.summary.merged_runs = len(self.touched)
        self._rebuild_test_stats(sources)
        self._rebuild_fixture_stats(sources)
        self._merge_uses(sources)
        prune(self.con, self.keep_runs)
        self._collect_garbage()

    # -- runs --------------------------------------------------------------------------------

    def _add_runs(self, view: HistoryView) -> None:
        for run_id in sorted(view.runs, key=lambda i: (view.runs[i]["started_at"], i)):
            row = view.runs[run_id]
            if run_id in view.parts:
                self._fold_merged(view, run_id)
            elif row["pipeline"] and shard_index(row["shard"])[0]:
                self._fold_shard(view, run_id)
            elif view.is_output:
                continue
            elif row["uuid"] in self.ids:
                self.summary.already_present += 1
            else:
                record = view.record(run_id)
                new_id = insert_run(self.con, record)
                self._known(record.uuid, new_id, record.started_at)
                self.detailed.add(new_id)
                insert_details(self.con, new_id, record, self.test_ids)
                self.summary.runs_added += 1

    def _known(self, uuid: str, run_id: int, started_at: float) -> None:
        self.ids[uuid] = run_id
        self.started[run_id] = started_at

    def _fold_shard(self, view: HistoryView, run_id: int) -> None:
        """Fold one shard run into its pipeline's merged run."""
        row = view.runs[run_id]
        uuid = str(row["uuid"])
        total = shard_index(row["shard"])[1]
        target = self._merged_run(view, run_id, total)
        if uuid in self.parts.get(target, {}):
            if not view.is_output:
                self.summary.already_present += 1
            return
        part = PartInfo(
            uuid,
            str(row["shard"]),
            float(row["started_at"]),
            float(row["finished_at"]),
            float(row["wall_s"]),
            row["collect_s"],
            int(row["workers"] or 0),
            row["exit_status"],
        )
        record = view.record(run_id)
        if view.is_output:  # a shard run recorded here: it becomes part of the merged run
            self.con.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            self.detailed.discard(run_id)
        self._add_slice(target, part, record, relabel=True)
        self.ids[uuid] = target
        self.summary.shards_folded += 1

    def _fold_merged(self, view: HistoryView, run_id: int) -> None:
        """Fold a merged run of another history into the same merged run here."""
        row = view.runs[run_id]
        total = max((shard_index(p.shard)[1] for p in view.parts[run_id]), default=0)
        target = self._merged_run(view, run_id, total, uuid=str(row["uuid"]))
        known = self.parts.get(target, {})
        new_parts = [p for p in view.parts[run_id] if p.uuid not in known]
        if not new_parts:
            if not view.is_output:
                self.summary.already_present += 1
            return
        record = view.record(run_id)
        winners = _winners(view.parts[run_id])
        for part in sorted(new_parts, key=lambda p: (p.index, p.finished_at)):
            slice_record = None
            if winners.get(part.index) is part:
                slice_record = _slice(record, part.index)
            self._add_slice(target, part, slice_record, relabel=False)
            self.ids[part.uuid] = target
        self.summary.shards_folded += len(new_parts)

    def _merged_run(
        self, view: HistoryView, run_id: int, total: int, uuid: Optional[str] = None
    ) -> int:
        """The id of the merged run that run ``run_id`` of ``view`` belongs to (made if new)."""
        row = view.runs[run_id]
        if uuid is None:
            uuid = merged_run_uuid(
                row["pipeline"], row["git_commit"], total, row["python"], row["platform"]
            )
        target = self.ids.get(uuid)
        if target is None:
            meta = {k: v for k, v in row.items() if k != "id"}
            meta.update(uuid=uuid, shard=None, workers=0)
            meta["git_dirty"] = None if meta["git_dirty"] is None else bool(meta["git_dirty"])
            target = insert_run(self.con, RunRecord(**meta))
            self._known(uuid, target, float(row["started_at"]))
            self.detailed.add(target)
        self.parts.setdefault(target, {})
        return target

    def _add_slice(
        self, target: int, part: PartInfo, record: Optional[RunRecord], *, relabel: bool
    ) -> None:
        """Add one shard's results to a merged run; of two runs of one shard the later wins."""
        parts = self.parts[target]
        rival = _winners(parts.values()).get(part.index)
        parts[part.uuid] = part
        self.con.execute(
            "INSERT OR REPLACE INTO run_parts (uuid, run_id, shard, started_at, finished_at,"
            " wall_s, collect_s, workers, exit_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                part.uuid,
                target,
                part.shard,
                part.started_at,
                part.finished_at,
                part.wall_s,
                part.collect_s,
                part.workers,
                part.exit_status,
            ),
        )
        if target not in self.detailed or record is None:
            return  # the merged run's details were dropped by retention: its samples remain
        if rival is not None and (rival.finished_at, rival.uuid) >= (part.finished_at, part.uuid):
            return
        if rival is not None:
            self._drop_slice(target, part.index)
        if relabel:
            for test in record.tests.values():
                test.worker = worker_label(part.index, test.worker)
            for execution in record.fixtures:
                execution.worker = worker_label(part.index, execution.worker)
            for worker in record.worker_records:
                worker.worker = worker_label(part.index, worker.worker)
        record.uses = {}
        insert_details(self.con, target, record, self.test_ids)
        self.touched.add(target)

    def _drop_slice(self, target: int, index: int) -> None:
        for table in ("results", "fixture_runs", "run_workers"):
            self.con.execute(
                f"DELETE FROM {table} WHERE run_id = ? AND (worker = ? OR worker LIKE ?)",  # noqa: S608
                (target, f"s{index}", f"s{index}/%"),
            )

    def _summarise_merged(self, run_id: int) -> None:
        """Set a merged run's times, counts and shard list from its winning parts."""
        winners = _winners(self.parts[run_id].values())
        if not winners:
            return
        chosen = list(winners.values())
        total = max(shard_index(p.shard)[1] for p in chosen)
        indexes = sorted(winners)
        shard = (
            None
            if indexes == list(range(1, total + 1))
            else f"{','.join(map(str, indexes))}/{total}"
        )
        started = min(p.started_at for p in chosen)
        collects = [p.collect_s for p in chosen if p.collect_s is not None]
        tests, failed = self.con.execute(
            "SELECT count(*), coalesce(sum(outcome IN ('failed', 'error')), 0) FROM results"
            " WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        self.con.execute(
            "UPDATE runs SET started_at = ?, finished_at = ?, wall_s = ?, collect_s = ?,"
            " workers = ?, exit_status = ?, shard = ?, tests = ?, failed = ? WHERE id = ?",
            (
                started,
                max(p.finished_at for p in chosen),
                max(p.wall_s for p in chosen),
                max(collects) if collects else None,
                sum(p.workers for p in chosen),
                _exit_status([p.exit_status for p in chosen]),
                shard,
                tests,
                failed,
                run_id,
            ),
        )
        self.con.execute("UPDATE run_index SET started_at = ? WHERE id = ?", (started, run_id))
        self.started[run_id] = started

    def _resolve(self, view: HistoryView, source_id: int) -> Optional[int]:
        """The id here of run ``source_id`` of ``view``; None when it cannot be identified."""
        known = view.index.get(source_id)
        if known is None:
            return None
        uuid, started = known
        run_id = self.ids.get(uuid)
        if run_id is None:  # a run whose details every history dropped: keep its place
            run_id = index_run(self.con, uuid, started)
            self._known(uuid, run_id, started)
        return run_id

    # -- aggregates --------------------------------------------------------------------------

    def _derived_test_samples(self) -> dict[str, dict[int, Sample]]:
        out: dict[str, dict[int, Sample]] = {}
        for run_id in self.touched:
            commit_row = self.con.execute(
                "SELECT git_commit, git_dirty FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            commit = commit_row[0] if commit_row and commit_row[1] == 0 else None
            for nodeid, outcome, own, setup, call, teardown in self.con.execute(
                "SELECT t.nodeid, r.outcome, r.own_s, r.setup_s, r.call_s, r.teardown_s"
                " FROM results r JOIN tests t ON t.id = r.test_id WHERE r.run_id = ?",
                (run_id,),
            ):
                sample = Sample(run_id, outcome, own, setup, call, teardown, commit)
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
                        run_id = resolved[source_id] = self._resolve(view, source_id)
                    if run_id is None:  # counted among the runs before the recent ones
                        self.summary.samples_dropped += 1
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
                Sample(run_id, *row[1:7])  # as stored: already typed and rounded
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
        self.summary.tests_updated = len(changed)

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
                    resolved = self._resolve(view, sample.run_id)
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

    def _collect_garbage(self) -> None:
        """Forget runs that have no details and that no recent list mentions any more."""
        referenced = {row[0] for row in self.con.execute("SELECT id FROM runs")}
        for table in ("test_stats", "fixture_stats"):
            for (recent,) in self.con.execute(f"SELECT recent FROM {table}"):  # noqa: S608
                referenced.update(int(sample[0]) for sample in json.loads(recent))
        unused = [i for i in self.started if i not in referenced]
        for chunk in chunks(unused):
            marks = ",".join("?" * len(chunk))
            self.con.execute(f"DELETE FROM run_index WHERE id IN ({marks})", tuple(chunk))  # noqa: S608
            self.con.execute(f"DELETE FROM run_parts WHERE run_id IN ({marks})", tuple(chunk))  # noqa: S608


def _winners(parts: Any) -> dict[int, PartInfo]:
    """Per shard index, the part that finished last (a retried job replaces the earlier one)."""
    out: dict[int, PartInfo] = {}
    for part in parts:
        best = out.get(part.index)
        if best is None or (part.finished_at, part.uuid) > (best.finished_at, best.uuid):
            out[part.index] = part
    return out


def _slice(record: RunRecord, index: int) -> RunRecord:
    """The results, fixture executions and workers of shard ``index`` of a merged run."""
    part = dataclasses.replace(record, tests={}, fixtures=[], uses={}, worker_records=[])
    part.tests = {n: t for n, t in record.tests.items() if label_index(t.worker) == index}
    part.fixtures = [e for e in record.fixtures if label_index(e.worker) == index]
    part.worker_records = [w for w in record.worker_records if label_index(w.worker) == index]
    return part


def _exit_status(statuses: Sequence[Optional[int]]) -> Optional[int]:
    """The pipeline's status: the worst failure, else 0 if a shard passed, else 5 (no tests)."""
    known = [s for s in statuses if s is not None]
    failures = [s for s in known if s not in (0, 5)]
    if failures:
        return max(failures)
    if 0 in known:
        return 0
    return known[0] if known else None
