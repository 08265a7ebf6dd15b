"""Which tests a change affects: the selection rules (docs/contract.md, "Selection rules"), each
decision with its reasons.

`Selector` is built once from the coverage map, the estimates, the changes and the environment,
then decides for any list of node ids (those pytest collected, or those the history knows). When
the inputs cannot be trusted it selects everything and says why in one line (``fallback``); it
never selects nothing silently. What it reads (the map's interface, the environment's changes)
is `inputs.py`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from pytest_feedback.depmap.environment import TEXT_PREFIX, fingerprint, is_input_path
from pytest_feedback.durations import format_estimate
from pytest_feedback.history.records import test_file
from pytest_feedback.selection.changes import (
    ChangeError,
    ChangeSet,
    FileChange,
    Repository,
    collect_changes,
    describe_lines,
)
from pytest_feedback.selection.dependencies import (
    dependency_upgrade,
    lock_not_installed,
    upgrade_reasons,
)
from pytest_feedback.selection.inputs import (
    MapView,
    environment_changes,
    load_map,
    recorded_environment,
)
from pytest_feedback.selection.narrowing import NameIndex, narrow
from pytest_feedback.selection.project_inputs import outcome_changes

if TYPE_CHECKING:
    from pytest_feedback.history.estimates import Estimates

#: How `MapView.tests_reaching` names the kinds of dependency, in the words a reason uses.
_KIND_REASON = {
    "executed": "executed changed lines of {path}",
    "import-time": "uses {path}, whose import-time code changed",
    "collection-time": "{path} changed and runs while pytest collects this test",
    "reads": "reads {path}, which changed",
}


@dataclasses.dataclass
class Selection:
    """The decision for one list of tests."""

    #: node id -> reasons, in the order the tests were given.
    selected: dict[str, list[str]]
    deselected: list[str]
    #: Changed files that count (code changed), rootdir-relative.
    changed: list[str]
    #: Why everything was selected, or None when the rules decided test by test.
    fallback: Optional[str]
    base: Optional[str]
    estimate_s: float
    deselected_s: float
    #: Installed distributions that changed since the map (``name 1.0 → 1.1``).
    changed_dists: list[str] = dataclasses.field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.selected) + len(self.deselected)

    def summary_line(self) -> str:
        """The one terminal line that says what selection did."""
        if self.fallback is not None:
            return f"feedback: running all {self.total:,} tests: {self.fallback}"
        files = len(self.changed)
        dists = len(self.changed_dists)
        shown = ", ".join(self.changed_dists[:3]) + (", ..." if dists > 3 else "")
        also = f" and {dists:,} changed distribution{'s' * (dists != 1)} ({shown})" if dists else ""
        return (
            f"feedback: {len(self.selected):,} of {self.total:,} tests affected by "
            f"{files:,} changed file{'' if files == 1 else 's'}{also} "
            f"(est. {format_estimate(self.estimate_s)}); {len(self.deselected):,} deselected"
        )

    def to_json(self) -> dict[str, object]:
        """The ``select --format json`` document (docs/contract.md, "JSON formats"; version 1)."""
        return {
            "version": 1,
            "base": self.base,
            "selected": [{"nodeid": n, "reasons": r} for n, r in self.selected.items()],
            "deselected": len(self.deselected),
            "estimate_s": round(self.estimate_s, 3),
            "fallback": self.fallback,
            "changed_files": self.changed,
            "changed_distributions": self.changed_dists,
        }


def is_test_module(name: str) -> bool:
    """Whether a file name is a test module or conftest (not code a child process runs)."""
    return name == "conftest.py" or name.startswith("test_") or name.endswith("_test.py")


class Selector:
    """Applies the selection rules; build once, `decide` for any list of node ids."""

    def __init__(
        self,
        dmap: Optional[MapView],
        estimates: Estimates,
        changes: Optional[ChangeSet],
        *,
        fallback: Optional[str] = None,
        current_env: Optional[Mapping[str, str]] = None,
        rootdir: Optional[Path] = None,
        base: Optional[str] = None,
    ) -> None:
        self.map = dmap
        self.rootdir = rootdir
        self._names: Optional[NameIndex] = None
        self.estimates = estimates
        self.changes = changes
        self.fallback = fallback
        #: The base ref asked for (also when it could not be resolved: the fallback says so).
        self.base = changes.base if changes is not None else base
        #: Why the base ref cannot be used (unknown here, no merge-base); None when it can.
        self.base_problem: Optional[str] = None
        #: node id -> reasons from the changed files (tests outside it are decided per test).
        self._reached: dict[str, list[str]] = {}
        self._test_files: dict[str, str] = {}
        self._conftest_dirs: list[tuple[str, str]] = []
        self._mapped: set[str] = set()
        self.changed: list[str] = []
        self.changed_dists: list[str] = []
        if self.fallback is None and (dmap is None or changes is None):
            self.fallback = "no coverage map yet: record one with `pytest --feedback-cov`"
        if self.fallback is None and dmap is not None and changes is not None:
            self._prepare(dmap, changes, current_env or {})

    def _prepare(self, dmap: MapView, changes: ChangeSet, current_env: Mapping[str, str]) -> None:
        self._mapped = dmap.mapped_tests()
        if not self._mapped:
            self.fallback = "the coverage map is empty: record one with `pytest --feedback-cov`"
            return
        significant = changes.significant
        self.changed = sorted(c.path for c in significant)
        inputs = self._inputs_that_matter(dmap, [c.path for c in significant])
        env = environment_changes(recorded_environment(dmap), current_env)
        if inputs and not any(r.startswith("project-wide") for r in env):
            env.append("project-wide input changed: " + ", ".join(inputs))
        recorded = recorded_environment(dmap)
        locked = lock_not_installed(recorded, current_env, changes.files, self.rootdir)
        env.extend([locked] if locked else [])
        upgrade = None if env else dependency_upgrade(recorded, current_env)
        if upgrade is not None and upgrade.everything is not None:
            env.append("installed packages changed: " + upgrade.everything)
        if env:
            self.fallback = "; ".join(env)
            return
        python_changed = False
        for change in significant:
            name = change.path.rsplit("/", 1)[-1]
            python_changed = python_changed or (change.is_python and not is_test_module(name))
            if name == "conftest.py":
                folder = change.path[: -len(name)]
                self._conftest_dirs.append((folder, change.path))
            if test_file(change.path) == change.path:
                self._test_files[change.path] = change.status
            self._reach(dmap, change)
        if python_changed:
            for nodeid in dmap.spawning_tests():
                self._add(nodeid, "runs child processes, and project code changed")
        for nodeid in dmap.outdated_tests():
            self._add(nodeid, "its map is outdated: a file it reached changed after it ran")
        if upgrade is not None:
            self.changed_dists = [upgrade.describe(d) for d in upgrade.changed]
            for nodeid, reasons in upgrade_reasons(dmap, upgrade).items():
                for reason in reasons:
                    self._add(nodeid, reason)

    def _inputs_that_matter(self, dmap: MapView, paths: list[str]) -> list[str]:
        """The changed project-wide input files whose change can alter an outcome, each with
        what changed in it (`project_inputs.outcome_changes`): compared with the base's text,
        or with the text the map was recorded with."""
        recorded = recorded_environment(dmap)
        base = self.changes.base_commit if self.changes is not None else None
        found: list[str] = []
        for path in filter(is_input_path, paths):
            old = recorded.get(TEXT_PREFIX + path)
            if base is not None and self.rootdir is not None:
                old = Repository(self.rootdir).show(base, path)
            try:
                new = (self.rootdir / path).read_text("utf-8") if self.rootdir else None
            except (OSError, UnicodeDecodeError):
                new = None
            reason = outcome_changes(path, old, new)
            if reason is not None:
                found.append(reason)
        return found

    def _add(self, nodeid: str, reason: str) -> None:
        reasons = self._reached.setdefault(nodeid, [])
        if reason not in reasons:
            reasons.append(reason)

    def _reach(self, dmap: MapView, change: FileChange) -> None:
        paths = {change.recorded_path, change.path}
        for path in paths:
            if change.status == "deleted":
                for nodeid in dmap.tests_reaching(path):
                    self._add(nodeid, f"depends on {path}, which was deleted")
                continue
            lines = None if change.lines is None else set(change.lines)
            if lines is not None and not lines:
                continue
            if lines is not None and path == change.recorded_path:
                lines = self._reach_narrowed(dmap, change, lines)
                if not lines:
                    continue
            for nodeid, kind in dmap.tests_reaching(path, lines).items():
                template = _KIND_REASON.get(kind, "depends on {path}, which changed")
                self._add(nodeid, template.format(path=path))

    def _reach_narrowed(self, dmap: MapView, change: FileChange, lines: set[int]) -> set[int]:
        """Select through `narrowing` what it can prove; the changed lines left to the plain rule.

        With a base ref the edit since the base must be narrowable too: the base's version of
        every narrowed statement is checked against the working tree's.
        """
        if self.rootdir is None or not change.is_python:
            return lines
        old = dmap.recorded_source(change.recorded_path)
        try:
            new = (self.rootdir / change.path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return lines
        if old is None:
            return lines
        if self._names is None:
            sources = {}
            for path in dmap.recorded_files():
                text = dmap.recorded_source(path) if path.endswith(".py") else None
                if text is not None:
                    sources[path] = text
            self._names = NameIndex(sources)
        unbased = self.changes is None or self.changes.base_commit is None
        narrowed = narrow(change.recorded_path, old, new, lines, self._names, insertions=unbased)
        if narrowed is None or not self._base_agrees(change, new, narrowed.names):
            return lines
        what = ", ".join(sorted(narrowed.names))
        for path, reach in narrowed.reach.items():
            if reach:
                for nodeid in dmap.tests_reaching(path, reach):
                    self._add(nodeid, f"reaches {what}, changed in {change.path}")
        # Computed-name and annotation reads can only see the module (or its classes and
        # functions) in tests that import it or ran its code (docs/selection.md).
        users: Optional[set[str]] = None
        for path, reach in [*narrowed.dynamic.items(), *narrowed.readers.items()]:
            dynamic = path in narrowed.dynamic and reach is narrowed.dynamic[path]
            for nodeid, kind in dmap.tests_reaching(path, reach).items():
                # At import time (elsewhere than the changed module) computed-name reads copy
                # namespaces, which are read by name again.
                if dynamic and kind == "import-time" and path != change.recorded_path:
                    continue
                if users is None:
                    users = set(dmap.tests_reaching(change.recorded_path))
                if nodeid in users and dynamic:
                    self._add(
                        nodeid, f"may read {what} by a computed name, changed in {change.path}"
                    )
                elif nodeid in users:
                    self._add(nodeid, f"reads annotations, and {what} changed in {change.path}")
        return lines - narrowed.lines

    def _base_agrees(self, change: FileChange, new: str, names: set[str]) -> bool:
        """Without a base, yes; with one, the base's statements narrow the same way."""
        if self.changes is None or self.changes.base_commit is None:
            return True
        if self.rootdir is None or self._names is None:
            return False
        try:
            base = Repository(self.rootdir).show(
                self.changes.base_commit, change.old_path or change.path
            )
        except ChangeError:
            return False
        if base is None:
            return False
        everything = set(range(1, base.count("\n") + 2))
        checked = narrow(change.path, base, new, everything, self._names)
        return checked is not None and names <= checked.names

    def decide(self, nodeids: Sequence[str]) -> Selection:
        """Select among ``nodeids`` (collected, or known to the history)."""
        if self.fallback is not None:
            selected = {n: [f"everything runs: {self.fallback}"] for n in nodeids}
            return Selection(
                selected, [], self.changed, self.fallback, self.base,
                self.estimates.run_cost(nodeids), 0.0, self.changed_dists,
            )  # fmt: skip
        chosen: dict[str, list[str]] = {}
        dropped: list[str] = []
        for nodeid in nodeids:
            reasons = self.reasons(nodeid)
            if reasons:
                chosen[nodeid] = reasons
            else:
                dropped.append(nodeid)
        return Selection(
            chosen,
            dropped,
            self.changed,
            None,
            self.base,
            self.estimates.run_cost(chosen),
            self.estimates.run_cost(dropped),
            self.changed_dists,
        )

    def changed_lines(self, nodeid: str) -> int:
        """How many changed lines (in the map's coordinates) the test executed; 0 if unknown."""
        if self.map is None or self.changes is None or self.fallback is not None:
            return 0
        deps = self.map.dependencies(nodeid)
        if deps is None:
            return 0
        files = getattr(deps, "files", {})
        count = 0
        for change in self.changes.significant:
            executed = files.get(change.recorded_path)
            if executed and change.lines is not None:
                count += len(executed & change.lines)
        return count

    def own_changed_lines(self, nodeids: Sequence[str]) -> dict[str, int]:
        """Per test, the changed lines it executed while it ran (import time left out).

        For ranking many tests at once (the budget): one map query instead of one
        `dependencies` per test. Tests that executed none are left out.
        """
        if self.map is None or self.changes is None or self.fallback is not None:
            return {}
        own_lines_in = getattr(self.map, "own_lines_in", None)
        if own_lines_in is None:  # a map without the batch query: one test at a time
            each = {n: self.changed_lines(n) for n in nodeids}
            return {n: c for n, c in each.items() if c}
        changes = [c for c in self.changes.significant if c.lines is not None]
        executed: dict[str, dict[str, set[int]]] = own_lines_in(
            nodeids, {c.recorded_path for c in changes}
        )
        counts: dict[str, int] = {}
        for nodeid, files in executed.items():
            count = 0
            for change in changes:
                lines = files.get(change.recorded_path)
                if lines and change.lines is not None:
                    count += len(lines & change.lines)
            if count:
                counts[nodeid] = count
        return counts

    def reasons(self, nodeid: str) -> list[str]:
        """Why ``nodeid`` is selected (empty: it is not)."""
        if self.fallback is not None:
            return [f"everything runs: {self.fallback}"]
        reasons: list[str] = []
        if nodeid not in self._mapped:
            reasons.append("new test, or no coverage recorded for it yet")
        path = test_file(nodeid)
        status = self._test_files.get(path)
        if status is not None:
            reasons.append(f"its file {path} changed")
        for folder, conftest in self._conftest_dirs:
            if path.startswith(folder) and conftest != path:
                reasons.append(f"{conftest} above it changed")
        reasons.extend(self._reached.get(nodeid, ()))
        estimate = self.estimates.tests.get(nodeid)
        if estimate is not None:
            if estimate.last_outcome in ("failed", "error"):
                word = "failed" if estimate.last_outcome == "failed" else "errored"
                reasons.append(f"{word} in its last run")
            if estimate.flaky:
                reasons.append("flaky: passed and failed without a code change")
        return reasons

    def why_not(self, nodeid: str) -> str:
        """Why ``nodeid`` is left out: what it depends on and that none of it changed."""
        if self.map is None:
            return "no coverage map"
        deps = self.map.dependencies(nodeid)
        if deps is None:
            return "no coverage recorded for it"
        touched = [c for c in self.changes.files.values()] if self.changes else []
        near = [c for c in touched if c.recorded_path in deps.files or c.path in deps.reads]
        if not near:
            count = len(self.changed)
            total = len(deps.files) + len(deps.reads)
            used, dists = len(getattr(deps, "dists", ())), len(self.changed_dists)
            also = f", nor the changed distributions (it used {used:,})" if dists else ""
            return (
                f"reaches none of the {count:,} changed file{'' if count == 1 else 's'} "
                f"(it depends on {total:,} file{'' if total == 1 else 's'}){also}"
            )
        parts = []
        for change in near:
            if change.trivial:
                parts.append(f"{change.path} changed only in comments or docstrings")
            else:
                parts.append(f"it executed none of the changed lines of {change.path}")
        return "; ".join(parts)

    def explain(self, nodeid: str) -> list[str]:
        """The decision for ``why``: selected because ..., or not selected because ..."""
        reasons = self.reasons(nodeid)
        if not reasons:
            return [f"not selected: {self.why_not(nodeid)}"]
        lines = ["selected because:"]
        lines.extend(f"  - {r}" for r in reasons)
        detail = self._executed_detail(nodeid)
        lines.extend(f"    {d}" for d in detail)
        return lines

    def _executed_detail(self, nodeid: str) -> list[str]:
        if self.map is None or self.changes is None or self.fallback is not None:
            return []
        deps = self.map.dependencies(nodeid)
        if deps is None:
            return []
        out: list[str] = []
        for change in self.changes.significant:
            ran = deps.files.get(change.recorded_path)
            if ran and change.lines:
                hit = ran & set(change.lines)
                if hit:
                    out.append(f"changed lines it reaches in {change.path}: {describe_lines(hit)}")
        return out


def failing_left_out(
    selection: Selection, failed: Iterable[str], selector: Selector
) -> list[tuple[str, str]]:
    """The failing tests `selection` would have left out, each with the reason it would have."""
    left_out = set(selection.deselected)
    return [(n, selector.why_not(n)) for n in sorted(set(failed)) if n in left_out]


def load_selector(
    db_path: Path, rootdir: Path, base: Optional[str] = None, *, with_changes: bool = True
) -> Selector:
    """Read the history and the map, find the changes: a `Selector`, never an exception.

    Whatever goes wrong becomes the selector's one-line ``fallback`` (everything runs).
    """
    selector = _load_selector(db_path, rootdir, base, with_changes=with_changes)
    if base:
        # Checked whatever else is missing: a mistyped or unfetched base must be said.
        try:
            Repository(rootdir).merge_base(base)
        except ChangeError as exc:
            selector.base_problem = selector.fallback = str(exc)
    return selector


def _load_selector(
    db_path: Path, rootdir: Path, base: Optional[str], *, with_changes: bool
) -> Selector:
    from pytest_feedback.history.store import read_estimates

    found = read_estimates(db_path, load_map)  # a broken history must not break the run
    if found.missing:
        return Selector(
            None, found.estimates, None,
            fallback=f"no history at {db_path}: record one with `pytest --feedback-cov`",
        )  # fmt: skip
    if found.reason is not None:
        return Selector(None, found.estimates, None, fallback=found.reason)
    estimates, dmap = found.estimates, found.also
    if dmap is None:
        return Selector(None, estimates, None)
    if not with_changes:
        return Selector(dmap, estimates, ChangeSet({}, base))
    try:
        changes = collect_changes(rootdir, dmap, base)
        current = fingerprint(rootdir, texts=True) if recorded_environment(dmap) else {}
    except ChangeError as exc:
        return Selector(dmap, estimates, None, fallback=str(exc), base=base)
    except Exception as exc:
        return Selector(
            dmap, estimates, None,
            fallback=f"the changes cannot be determined ({type(exc).__name__}: {exc})",
            base=base,
        )  # fmt: skip
    return Selector(dmap, estimates, changes, current_env=current, rootdir=rootdir)
