"""What a recorded run's change affected, rebuilt afterwards: for replaying the budget.

A run is compared with the run recorded before it, as a developer's loop compares the working
tree with the last run's state: the change is ``git diff`` between the two runs' commits, its
lines put in the coverage map's coordinates (`changes_between`), and the selection rules say
which tests it affects, with the changed lines each executed and the change's words each names
(`change_facts`, the same facts ``--feedback-budget`` ranks by). When the change cannot be known
(no map, no git, a commit not recorded or not in this repository), the run is ranked by the
history alone, as the budget ranks without change information, and `RunChange.assumed` says so.

Assumptions (docs/local-loop.md says them to users): the map is the one recorded now; the
environment is the one it was recorded in; a run's uncommitted edits are not known (only the
commits' change counts); narrowing (`narrowing`), which reads the working tree, is not applied
(more tests count as affected, never fewer); test texts for `affinity` are read as they are now.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from pytest_feedback.git import GitUnavailable
from pytest_feedback.selection.affinity import change_affinity
from pytest_feedback.selection.changes import ChangeSet, FileChange, RecordedFiles, diff_lines
from pytest_feedback.selection.inputs import recorded_environment
from pytest_feedback.selection.repository import (
    ChangeError,
    Repository,
    is_noise,
    parse_name_status,
)
from pytest_feedback.selection.selector import Selection, Selector

if TYPE_CHECKING:
    from pytest_feedback.history.estimates import Estimates
    from pytest_feedback.history.replay import HistoryReplay, ReplayRun
    from pytest_feedback.history.store import Store
    from pytest_feedback.selection.inputs import MapView

#: What `RunChange.assumed` says, per cause (the simulation counts runs by these words).
NO_MAP = "no coverage map: ranked by the history alone"
NO_GIT = "no git repository here: ranked by the history alone"
NO_COMMIT = "no commit recorded for it or the run before: ranked by the history alone"
MISSING_COMMIT = (
    "its commit or the previous run's is not in this repository: ranked by the history alone"
)
DIRTY = "it ran with uncommitted edits: only the change between the commits counts"


@dataclasses.dataclass(frozen=True)
class RunChange:
    """What the budget would have known of a run's change."""

    #: The tests the change affects (None: unknown, or everything).
    affected: Optional[set[str]]
    changed_lines: dict[str, int]
    affinity: dict[str, float]
    #: What was assumed because the change could not be known fully (None: nothing).
    assumed: Optional[str] = None


def change_facts(
    selector: Selector,
    nodeids: Sequence[str],
    rootdir: Optional[Path],
    selection: Optional[Selection] = None,
    affected: Optional[Sequence[str]] = None,
) -> RunChange:
    """The facts a budget ranks ``nodeids`` by: the tests the change affects (``selection``'s,
    decided here when not given; ``affected`` instead when selection has already run), the
    changed lines each executed, and how much of the change each names. A fallback (everything
    selected): affected unknown."""
    named = change_affinity(selector.changes, rootdir, selector.map, nodeids)
    if selection is None:
        selection = selector.decide(nodeids)
    if selection.fallback is not None:
        return RunChange(None, {}, named)
    chosen = list(selection.selected) if affected is None else list(affected)
    return RunChange(set(chosen), selector.own_changed_lines(chosen), named)


class ChangeReplay:
    """`RunChange` of recorded runs, from git and the coverage map (one instance per replay)."""

    def __init__(self, rootdir: Path, dmap: Optional[MapView]) -> None:
        self.rootdir = rootdir
        self.map = dmap
        self.repo: Optional[Repository]
        try:
            self.repo = Repository(rootdir) if dmap is not None else None
        except ChangeError:
            self.repo = None
        self._present: dict[str, bool] = {}

    def has(self, commit: str) -> bool:
        """Whether ``commit`` is in the repository (a shallow clone or a gc may lack it)."""
        found = self._present.get(commit)
        if found is None and self.repo is not None:
            try:
                self.repo.git("cat-file", "-e", f"{commit}^{{commit}}")
                found = True
            except GitUnavailable:
                found = False
            self._present[commit] = found
        return bool(found)

    def __call__(
        self,
        run: ReplayRun,
        before: ReplayRun,
        estimates: Estimates,
        nodeids: Sequence[str],
    ) -> RunChange:
        dmap = self.map
        if dmap is None:
            return RunChange(None, {}, {}, NO_MAP)
        if self.repo is None:
            return RunChange(None, {}, {}, NO_GIT)
        if run.commit is None or before.commit is None:
            return RunChange(None, {}, {}, NO_COMMIT)
        if not (self.has(run.commit) and self.has(before.commit)):
            return RunChange(None, {}, {}, MISSING_COMMIT)
        try:
            changes = changes_between(self.repo, dmap, before.commit, run.commit)
        except ChangeError as exc:
            return RunChange(None, {}, {}, f"{exc}: ranked by the history alone")
        selector = Selector(
            dmap, estimates, changes, current_env=recorded_environment(dmap), rootdir=None
        )
        facts = change_facts(selector, nodeids, self.rootdir)
        return dataclasses.replace(facts, assumed=DIRTY if run.dirty or before.dirty else None)


def replay_inputs(
    store: Store, rootdir: Path, estimates: Optional[Estimates] = None
) -> tuple[HistoryReplay, ChangeReplay]:
    """What replaying the budget reads: the kept runs, and their changes from git and the map
    (``estimates``: the store's, when the caller has loaded them already)."""
    from pytest_feedback.history.replay import HistoryReplay
    from pytest_feedback.selection.inputs import load_map

    return HistoryReplay.load(store, estimates), ChangeReplay(rootdir, load_map(store))


def changes_between(repo: Repository, recorded: RecordedFiles, old: str, new: str) -> ChangeSet:
    """The change from commit ``old`` to commit ``new``, lines in the map's coordinates."""
    try:
        listed = repo.git("diff", "--name-status", "-z", "-M", old, new, "--")
    except GitUnavailable as exc:
        raise ChangeError(f"git could not compare the runs' commits ({exc})") from exc
    snapshots = recorded.recorded_files()
    files: dict[str, FileChange] = {}
    for change in parse_name_status(listed):
        path = repo.local(change.path)
        if path is None or is_noise(path):
            continue
        old_path = repo.local(change.old_path) if change.old_path else None
        files[path] = _file_change(
            repo, recorded, snapshots, path, change.status, old_path, old, new
        )
    return ChangeSet(files, None, old)


def _file_change(
    repo: Repository,
    recorded: RecordedFiles,
    snapshots: dict[str, str],
    path: str,
    status: str,
    old_path: Optional[str],
    old: str,
    new: str,
) -> FileChange:
    """One file's change between two commits; the whole file counts where lines cannot be
    told (not Python, not in the map, no text)."""
    if status == "deleted":
        return FileChange(path, "deleted", old_path)
    recorded_path = old_path if old_path and old_path in snapshots else path
    if not path.endswith(".py") or recorded_path not in snapshots:
        return FileChange(path, status, old_path)
    before = repo.show(old, old_path or path)
    after = repo.show(new, path)
    snapshot = recorded.recorded_source(recorded_path)
    if before is None or after is None or snapshot is None:
        return FileChange(path, status, old_path)
    since = diff_lines(before, after, python=True)
    if since.trivial or not (since.old or since.new):
        return FileChange(path, status, old_path, frozenset(), True)
    # The changed lines of the old commit's text, in the snapshot's coordinates: a line the
    # snapshot no longer has counts as the lines around where it was.
    to_snapshot = diff_lines(snapshot, before, python=False)
    lines = {to_snapshot.new_to_old[n] for n in since.old if n in to_snapshot.new_to_old}
    lines |= set(to_snapshot.old) if since.old - set(to_snapshot.new_to_old) else set()
    return FileChange(path, status, old_path, frozenset(lines))
