"""How the installed distributions changed since the map was recorded, and whether a test can be
judged by the distributions it used (docs/selection.md, "Dependency upgrades").

The map's environment (`environment.fingerprint`, meta key ``map_environment``) keeps the name and
version of every installed distribution and, under `DISTS_KEY`, the facts the measurement found
(`distributions.DistIndex.facts`): pytest plugins, distributions that install ``.pth`` files or
import hooks, those imported before the measurement started, what each requires and imports.
`compare` turns the two environments into an `Upgrade`: the changed distributions, each with the
distributions whose users it reaches, or the one reason everything must run.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Optional

from pytest_feedback.depmap.distributions import MISSING_PREFIX, SELF, DistIndex
from pytest_feedback.depmap.environment import PACKAGES_KEY, PYTHON_KEY

#: Key of the environment that holds the distribution facts (a JSON object of lists).
DISTS_KEY = "distributions"
_CHUNK = 500


def parse_facts(text: Optional[str]) -> dict[str, list[str]]:
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: [str(x) for x in v] for k, v in data.items() if isinstance(v, list)}


def merged_facts(old: Optional[str], new: Mapping[str, Iterable[str]]) -> str:
    """The facts of this run joined to those of the runs whose contexts the map still holds."""
    before = parse_facts(old)
    kinds = sorted({*before, *new})
    return json.dumps({k: sorted({*before.get(k, ()), *new.get(k, ())}) for k in kinds})


def versions(packages: str) -> dict[str, str]:
    """``name==version`` lines (`environment.installed_packages`) as a dict."""
    pairs = (line.split("==", 1) for line in packages.splitlines() if "==" in line)
    return {name: version for name, version in pairs}


@dataclasses.dataclass
class Upgrade:
    """What changed among the installed distributions."""

    #: distribution -> (version before, version now); None: not installed then / now
    changed: dict[str, tuple[Optional[str], Optional[str]]]
    #: Why every test must run (a safety rule), or None.
    everything: Optional[str]
    #: value of a map_dists row -> the changed distributions a context with that row used
    #: (itself, or through what it requires or imports; ``import:NAME`` for one it looked for)
    reaches: dict[str, set[str]]

    def describe(self, dist: str) -> str:
        """``python-dateutil 2.9.0 → 2.9.1``, ``ujson 5.10.0 (added)``, ``six 1.16.0 (removed)``."""
        old, new = self.changed[dist]
        if old is None:
            return f"{dist} {new} (added)"
        if new is None:
            return f"{dist} {old} (removed)"
        return f"{dist} {old} → {new}"

    def reason(self, value: str, dist: str) -> str:
        """Why a test with the map_dists row ``value`` is selected for the change of ``dist``."""
        if value == dist:
            return f"uses {self.describe(dist)}"
        if value.startswith(MISSING_PREFIX):
            name = value[len(MISSING_PREFIX) :]
            return f"imported {name}, not installed then; now {self.describe(dist)}"
        return f"uses {value}, which depends on {self.describe(dist)}"


def current_index(names: Iterable[str]) -> DistIndex:
    """The facts of the named distributions as installed now (those still installed)."""
    import importlib.metadata

    found = []
    for name in sorted(set(names)):
        try:
            found.append(importlib.metadata.distribution(name))
        except Exception:  # not installed (any more), or unreadable
            continue
    return DistIndex(found)


def compare(
    recorded: Mapping[str, str], current: Mapping[str, str], now: Optional[DistIndex] = None
) -> Optional[Upgrade]:
    """The change from ``recorded`` to ``current``; None when the map keeps no facts of its
    distributions (recorded before they were kept) or nothing changed.

    ``now``: the changed distributions as installed now (`current_index`, read when not given).
    """
    if DISTS_KEY not in recorded or PACKAGES_KEY not in current:
        return None
    old, new = versions(recorded.get(PACKAGES_KEY, "")), versions(current[PACKAGES_KEY])
    changed = {
        n: (old.get(n), new.get(n)) for n in sorted({*old, *new}) if old.get(n) != new.get(n)
    }
    python = recorded.get(PYTHON_KEY) != current.get(PYTHON_KEY)
    if not changed and not python:
        return None
    facts = parse_facts(recorded[DISTS_KEY])
    if now is None:
        now = current_index(n for n, (_a, b) in changed.items() if b is not None)
    requires: dict[str, set[str]] = {}
    for edge in (*facts.get("requires", ()), *facts.get("imports", ())):
        a, _, b = edge.partition(">")
        requires.setdefault(a, set()).add(b)
    for a, bs in now.requires.items():
        requires.setdefault(a, set()).update(bs)
    upgrade = Upgrade(changed, None, {})
    if python:
        upgrade.everything = (
            f"Python changed ({recorded.get(PYTHON_KEY)} -> {current.get(PYTHON_KEY)})"
        )
        return upgrade
    upgrade.everything = _safety(upgrade, facts, now, requires)
    if upgrade.everything is None:
        upgrade.reaches = _reaches(changed, requires, now)
    return upgrade


def _safety(
    upgrade: Upgrade, facts: dict[str, list[str]], now: DistIndex, requires: dict[str, set[str]]
) -> Optional[str]:
    """The first safety rule a changed distribution breaks (everything runs), or None."""
    plugins = {*facts.get("plugins", ()), *now.plugins}
    own = _closure({SELF}, requires)
    of_plugins = _closure(plugins, requires)
    rules = (
        (plugins, "is a pytest plugin (pytest11 entry point)"),
        (own, "is pytest-feedback or one of its dependencies"),
        (of_plugins, "is a dependency of a pytest plugin"),
        ({*facts.get("pth", ()), *now.pth}, "installs a .pth file (run at every start-up)"),
        (set(facts.get("hooks", ())), "installs an import hook"),
        (
            set(facts.get("early", ())),
            "was imported before the map's measurement started, so its use is not attributed",
        ),
        (
            set(facts.get("seen", ())) - _closure(facts.get("named", ()), requires),
            "is used where the map cannot follow every use (imported without an import statement"
            " of the project naming it, or its files read through a cache)",
        ),
    )
    for names, why in rules:
        for dist in upgrade.changed:
            if dist in names:
                return f"{upgrade.describe(dist)}: it {why}"
    return None


def _closure(start: Iterable[str], requires: Mapping[str, set[str]]) -> set[str]:
    """``start`` and everything it requires, transitively."""
    seen = set(start)
    todo = list(seen)
    while todo:
        for b in requires.get(todo.pop(), ()):
            if b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


def _reaches(
    changed: Mapping[str, tuple[Optional[str], Optional[str]]],
    requires: Mapping[str, set[str]],
    now: DistIndex,
) -> dict[str, set[str]]:
    """Row value -> the changed distributions a context with that row may use."""
    users: dict[str, set[str]] = {}
    for a, bs in requires.items():
        for b in bs:
            users.setdefault(b, set()).add(a)
    reaches: dict[str, set[str]] = {}
    for dist, (_old, new) in changed.items():
        for user in _closure({dist}, users):
            reaches.setdefault(user, set()).add(dist)
        if new is not None:
            for top in now.provided_by(dist):
                reaches.setdefault(MISSING_PREFIX + top, set()).add(dist)
    return reaches


def outdate_upgraded(
    con: sqlite3.Connection,
    previous: Mapping[str, str],
    current: Mapping[str, str],
    measured: Iterable[int],
) -> int:
    """Mark outdated the contexts this run did not measure whose distributions changed since the
    map's previous write (everything, when a safety rule says so); returns how many."""
    try:
        upgrade = compare(previous, current)
    except Exception:  # unreadable metadata: the plain rules stay
        return 0
    if upgrade is None:
        return 0
    keep = set(measured)
    if upgrade.everything is not None:
        ids = {row[0] for row in con.execute("SELECT id FROM map_contexts WHERE outdated = 0")}
    else:
        values = sorted(upgrade.reaches)
        ids = set()
        for start in range(0, len(values), _CHUNK):
            chunk = values[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            ids.update(
                row[0]
                for row in con.execute(
                    f"SELECT DISTINCT context_id FROM map_dists WHERE dist IN ({marks})",  # noqa: S608
                    chunk,
                )
            )
    stale = sorted(ids - keep)
    con.executemany("UPDATE map_contexts SET outdated = 1 WHERE id = ?", [(c,) for c in stale])
    return len(stale)
