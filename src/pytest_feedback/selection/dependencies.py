"""What a change of the installed distributions selects (docs/selection.md, "Dependency
upgrades"): the tests that used a changed distribution, directly or through one that requires or
imports it, each with its reason (``uses python-dateutil 2.9.0 → 2.9.1``); and the lock-file
rule, which asks for the locked environment to be installed before selecting.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Optional

from pytest_feedback.depmap.environment import INPUT_PREFIX, PACKAGES_KEY
from pytest_feedback.depmap.upgrades import Upgrade, compare
from pytest_feedback.selection.inputs import MapView

#: Files that pin the installed versions: when one changed and the installed ones did not, the
#: environment is behind the repository.
LOCK_FILES = ("requirements*.txt", "requirements/*.txt", "constraints*.txt", "*.lock")


def dependency_upgrade(
    recorded: Mapping[str, str], current: Mapping[str, str]
) -> Optional[Upgrade]:
    """The change of the installed distributions since the map (`upgrades.compare`); None
    when nothing changed or the map keeps no per-distribution facts."""
    return compare(recorded, current)


def lock_not_installed(recorded: Mapping[str, str], current: Mapping[str, str]) -> Optional[str]:
    """Why selection cannot tell yet: a lock or requirements file changed since the map was
    recorded, and the installed distributions are still the ones it was recorded with."""
    if PACKAGES_KEY not in recorded or recorded.get(PACKAGES_KEY) != current.get(PACKAGES_KEY):
        return None
    changed = sorted(
        key[len(INPUT_PREFIX) :]
        for key in {*recorded, *current}
        if key.startswith(INPUT_PREFIX)
        and recorded.get(key) != current.get(key)
        and any(fnmatchcase(key[len(INPUT_PREFIX) :], p) for p in LOCK_FILES)
    )
    if not changed:
        return None
    return (
        f"{', '.join(changed)} changed since the map was recorded, but the installed packages did"
        " not: install the environment it pins first (pip install -r ..., uv sync, poetry"
        " install), then select again"
    )


def upgrade_reasons(dmap: MapView, upgrade: Upgrade) -> dict[str, list[str]]:
    """Node id -> why the change of the distributions selects it."""
    query = getattr(dmap, "tests_using_dists", None)
    if query is None or not upgrade.reaches:
        return {}
    out: dict[str, list[str]] = {}
    # What a child process imports is not recorded: it may use any distribution.
    for nodeid in getattr(dmap, "starting_tests", set)():
        out[nodeid] = ["runs child processes, and installed distributions changed"]
    for nodeid, values in query(upgrade.reaches).items():
        reasons = out.setdefault(nodeid, [])
        for value in sorted(values):
            for dist in sorted(upgrade.reaches.get(value, ())):
                reason = upgrade.reason(value, dist)
                if reason not in reasons:
                    reasons.append(reason)
    return out
