"""What the selector reads: the coverage map's interface (`MapView`), the map itself from the
history (`load_map`), the tests the history knows, and how the environment changed since the map
was recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Optional, Protocol

from pytest_feedback.depmap.environment import INPUT_PREFIX, PACKAGES_KEY, PYTHON_KEY, TEXT_PREFIX
from pytest_feedback.depmap.upgrades import DISTS_KEY
from pytest_feedback.selection.changes import RecordedFiles
from pytest_feedback.selection.project_inputs import outcome_changes

if TYPE_CHECKING:
    from pytest_feedback.history.estimates import Estimates
    from pytest_feedback.history.store import Store


class TestDepsView(Protocol):
    files: dict[str, set[int]]
    reads: set[str]
    spawns: bool
    import_time: set[str]
    collection_time: set[str]


class MapView(RecordedFiles, Protocol):
    """What selection needs of the coverage map (`graph.DependencyMap` implements it)."""

    def mapped_tests(self) -> set[str]: ...

    def spawning_tests(self) -> set[str]: ...

    def tests_reaching(self, path: str, lines: Optional[set[int]] = None) -> dict[str, str]: ...

    def dependencies(self, nodeid: str) -> Optional[TestDepsView]: ...

    def outdated_tests(self) -> set[str]: ...


def recorded_environment(dmap: MapView) -> dict[str, str]:
    """The `environment.fingerprint` the map was recorded with; {} when it has none."""
    method = getattr(dmap, "environment", None)
    return dict(method()) if callable(method) else {}


def known_tests(dmap: Optional[MapView], estimates: Estimates) -> list[str]:
    """The tests the history knows (the map's and the estimates'), sorted."""
    found: set[str] = set(estimates.tests)
    if dmap is not None:
        found |= dmap.mapped_tests()
    return sorted(found)


def environment_changes(recorded: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """Why the environment differs from the one the map was recorded in (empty: it does not).

    An empty ``recorded`` (a map from before environments were recorded) only checks the files.
    A map that keeps the facts of its distributions (`upgrades.DISTS_KEY`) leaves a change of the
    installed packages to the dependency-upgrade rule (`dependencies`).
    An input file counts only where a part that can change an outcome changed
    (`project_inputs.outcome_changes`, comparing the texts both sides keep).
    """
    reasons: list[str] = []
    if recorded:
        if recorded.get(PYTHON_KEY) != current.get(PYTHON_KEY):
            reasons.append(
                f"Python changed ({recorded.get(PYTHON_KEY)} -> {current.get(PYTHON_KEY)})"
            )
        if recorded.get(PACKAGES_KEY) != current.get(PACKAGES_KEY) and DISTS_KEY not in recorded:
            reasons.append(
                "installed packages changed ("
                + _package_delta(recorded.get(PACKAGES_KEY, ""), current.get(PACKAGES_KEY, ""))
                + ")"
            )
        changed = sorted(
            k[len(INPUT_PREFIX) :]
            for k in set(recorded) | set(current)
            if k.startswith(INPUT_PREFIX) and recorded.get(k) != current.get(k)
        )
        texts = [(p, recorded.get(TEXT_PREFIX + p), current.get(TEXT_PREFIX + p)) for p in changed]
        inputs = [reason for p, old, new in texts if (reason := outcome_changes(p, old, new))]
        if inputs:
            reasons.append("project-wide input changed: " + ", ".join(inputs))
    return reasons


def _package_delta(before: str, after: str, limit: int = 3) -> str:
    old = dict(line.split("==", 1) for line in before.splitlines() if "==" in line)
    new = dict(line.split("==", 1) for line in after.splitlines() if "==" in line)
    parts: list[str] = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) == new.get(name):
            continue
        if name not in new:
            parts.append(f"-{name}")
        elif name not in old:
            parts.append(f"+{name} {new[name]}")
        else:
            parts.append(f"{name} {old[name]} -> {new[name]}")
    if len(parts) > limit:
        return ", ".join(parts[:limit]) + f", {len(parts) - limit} more"
    return ", ".join(parts) or "same versions, different set"


def load_map(store: Store) -> Optional[MapView]:
    """The coverage map the history holds; None when none was recorded."""
    from pytest_feedback.depmap.graph import DependencyMap

    dmap: Optional[MapView] = DependencyMap.load(store)
    return dmap
