"""Merging histories from CI shards or machines into one (``pytest-feedback merge``).

Runs are matched by uuid, so merging a file twice adds nothing.  The shard runs of one pipeline
(same pipeline id, commit, shard count, Python and platform) become one merged run whose uuid is
derived from that identity, whose results are the union of its shards' and whose wall time is the
slowest shard's; the shards themselves are listed in ``run_parts``.  The per-test and per-fixture
aggregates of every test involved are rebuilt from the union of the histories' recent samples,
de-duplicated by run and ordered by run start time (`merge_stats.py`); samples of runs whose
details retention already dropped keep their place through ``run_index``.

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
from pytest_feedback.history.connection import SqliteDb, chunks
from pytest_feedback.history.merge_inputs import HistoryView, PartInfo, shard_index
from pytest_feedback.history.merge_stats import StatsRebuild
from pytest_feedback.history.records import RunRecord
from pytest_feedback.history.store import Store
from pytest_feedback.history.writes import index_run, insert_details, insert_run, prune


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
        self.output = HistoryView(con, out, is_output=True)  # migrated by `Store`
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
        stats = StatsRebuild(self.con, self.started, self.touched, self.test_ids, self._resolve)
        stats.run(sources)
        self.summary.tests_updated = stats.tests_updated
        self.summary.samples_dropped += stats.samples_dropped
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
            for imported in record.imports:
                imported.worker = worker_label(part.index, imported.worker)
            for attempt in record.attempts:
                attempt.worker = worker_label(part.index, attempt.worker)
        record.uses = {}
        insert_details(self.con, target, record, self.test_ids)
        self.touched.add(target)

    def _drop_slice(self, target: int, index: int) -> None:
        for table in ("results", "fixture_runs", "run_workers", "attempts", "collect_imports"):
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
    part = dataclasses.replace(
        record, tests={}, fixtures=[], uses={}, worker_records=[], imports=[]
    )
    part.tests = {n: t for n, t in record.tests.items() if label_index(t.worker) == index}
    part.fixtures = [e for e in record.fixtures if label_index(e.worker) == index]
    part.worker_records = [w for w in record.worker_records if label_index(w.worker) == index]
    part.imports = [i for i in record.imports if label_index(i.worker) == index]
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
