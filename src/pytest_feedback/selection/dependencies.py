"""What a change of the installed distributions selects (docs/selection.md, "Dependency
upgrades"): the tests that used a changed distribution, directly or through one that requires or
imports it, each with its reason (``uses python-dateutil 2.9.0 → 2.9.1``); and the lock-file
rule, which asks for the locked environment to be installed before selecting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Optional

from pytest_feedback.depmap.distributions import normalise
from pytest_feedback.depmap.environment import INPUT_PREFIX, PACKAGES_KEY
from pytest_feedback.depmap.upgrades import Upgrade, compare, versions
from pytest_feedback.selection.inputs import MapView
from pytest_feedback.selection.project_inputs import parse_toml

#: Files that pin the installed versions: when one changed and the installed ones did not, the
#: environment is behind the repository.
LOCK_FILES = ("requirements*.txt", "requirements/*.txt", "constraints*.txt", "*.lock")
#: ``name==version`` (extras, spaces, markers and hashes after it allowed)
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([^\s;#\\]+)")


def dependency_upgrade(
    recorded: Mapping[str, str], current: Mapping[str, str]
) -> Optional[Upgrade]:
    """The change of the installed distributions since the map (`upgrades.compare`); None
    when nothing changed or the map keeps no per-distribution facts."""
    return compare(recorded, current)


def lock_not_installed(
    recorded: Mapping[str, str],
    current: Mapping[str, str],
    changed: Iterable[str] = (),
    rootdir: Optional[Path] = None,
) -> Optional[str]:
    """Why selection cannot tell yet: a lock or requirements file changed (since the map was
    recorded, or among ``changed``, the paths changed since the base) and the environment is
    not the one it pins: a pinned distribution is installed at another version, or, for a file
    whose pins cannot be read, the installed distributions are still the map's."""
    if PACKAGES_KEY not in recorded or PACKAGES_KEY not in current:
        return None
    since_map = {
        key[len(INPUT_PREFIX) :]
        for key in {*recorded, *current}
        if key.startswith(INPUT_PREFIX) and recorded.get(key) != current.get(key)
    }
    locks = sorted(p for p in {*since_map, *changed} if _is_lock(p))
    installed = versions(current[PACKAGES_KEY])
    same = recorded.get(PACKAGES_KEY) == current.get(PACKAGES_KEY)
    pending: list[str] = []
    for path in locks:
        pins = read_pins(rootdir / path) if rootdir is not None else None
        if pins is None:
            if same:
                pending.append(path)
            continue
        wrong = sorted(
            f"{name} {version}, installed {installed[name]}"
            for name, version in pins.items()
            if name in installed and not _same_version(installed[name], version)
        )
        if wrong:
            shown = "; ".join(wrong[:3]) + ("; ..." if len(wrong) > 3 else "")
            pending.append(f"{path} (pins {shown})")
    if not pending:
        return None
    return (
        f"{', '.join(pending)} changed, but the installed packages are not the ones it pins:"
        " install the environment first (pip install -r ..., uv sync, poetry install), then"
        " select again"
    )


def _is_lock(path: str) -> bool:
    return any(fnmatchcase(path, pattern) for pattern in LOCK_FILES)


def _same_version(a: str, b: str) -> bool:
    try:
        from packaging.version import Version

        return Version(a) == Version(b)
    except Exception:  # not installed, or not a PEP 440 version
        return a == b


def read_pins(path: Path) -> Optional[dict[str, str]]:
    """Distribution -> pinned version of a requirements file (``name==version`` lines) or a lock
    file (uv.lock, poetry.lock, pdm.lock: ``[[package]]`` tables; Pipfile.lock: JSON); None when
    the file cannot be read or its format is not one of those."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    pins: dict[str, str] = {}
    if path.suffix == ".txt":
        for line in text.splitlines():
            match = _PIN.match(line)
            if match:
                pins[normalise(match.group(1))] = match.group(2)
        return pins
    if path.name == "Pipfile.lock":
        try:
            data = json.loads(text)
        except ValueError:
            return None
        for section in ("default", "develop"):
            for name, spec in (data.get(section) or {}).items():
                version = spec.get("version", "") if isinstance(spec, dict) else ""
                if isinstance(version, str) and version.startswith("=="):
                    pins[normalise(name)] = version[2:]
        return pins
    data = parse_toml(text)
    packages = data.get("package") if data is not None else None
    if not isinstance(packages, list):
        return None
    for package in packages:
        if isinstance(package, dict) and package.get("name") and package.get("version"):
            pins[normalise(str(package["name"]))] = str(package["version"])
    return pins


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
