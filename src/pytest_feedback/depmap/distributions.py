"""Which installed distribution a file belongs to, and the facts about the installed
distributions that selection's safety rules need (docs/selection.md, "Dependency upgrades").

A file belongs to the distribution whose ``RECORD`` (what the installer wrote, read through
`importlib.metadata`) lists it. The index is keyed by the site directory and the first component
of the path in it (``dateutil``, ``six.py``, ``_cffi_backend.cpython-312-x86_64-linux-gnu.so``),
so a distribution that installs several top-level modules is found by each of them; where several
distributions share a top-level directory (a namespace package such as ``google``) the file's own
path decides. An editable install (``direct_url.json`` says so) owns the files under its source
directory. Built once per process, when the measurement ends: a few milliseconds per hundred
distributions.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Iterator
from typing import Any, Optional

#: ``Requires-Dist: name[extra] (>=1.0); marker`` -> name
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
#: The name a missing import is kept under in a context's distributions: never a valid
#: distribution name (PEP 508 names have no ``:``).
MISSING_PREFIX = "import:"
#: This project's own distribution: its dependencies are the plugin's own.
SELF = "pytest-feedback"


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares it: lower case, runs of ``-_.`` as ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _real(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _record_paths(dist: Any) -> list[str]:
    """The paths a distribution installed, relative to its site directory (RECORD), or for a
    legacy ``.egg-info``, relative to the site directory through ``installed-files.txt``."""
    text = dist.read_text("RECORD")
    if text:
        return [row[0] for row in csv.reader(text.splitlines()) if row]
    text = dist.read_text("installed-files.txt")
    if not text:
        return []
    egg = os.path.basename(str(getattr(dist, "_path", "")))
    return [os.path.normpath(os.path.join(egg, line)).replace(os.sep, "/") for line in text.split()]


def _editable_dir(dist: Any) -> Optional[str]:
    """The source directory of an editable install (PEP 660 ``direct_url.json``), else None."""
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    url = data.get("url", "") if isinstance(data, dict) else ""
    editable = isinstance(data, dict) and (data.get("dir_info") or {}).get("editable")
    if not editable or not isinstance(url, str) or not url.startswith("file://"):
        return None
    return _real(file_url_path(url))


def file_url_path(url: str) -> str:
    """The path of a ``file://`` URL (percent escapes decoded as UTF-8)."""
    path = url[len("file://") :]
    if path.startswith("localhost/"):
        path = path[len("localhost") :]
    raw = re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), path.encode())
    path = raw.decode("utf-8", "surrogateescape")
    if re.match(r"^/[A-Za-z]:/", path):  # file:///C:/... on Windows
        path = path[1:]
    return path


class DistIndex:
    """The installed distributions: which owns a file, and the facts selection needs."""

    def __init__(self, distributions: Optional[Iterable[Any]] = None) -> None:
        if distributions is None:
            import importlib.metadata

            distributions = importlib.metadata.distributions()
        #: (site directory, first path component) -> distribution -> its paths under it
        self._tops: dict[tuple[str, str], dict[str, set[str]]] = {}
        self._sites: list[str] = []
        self._editable: list[tuple[str, str]] = []
        self._cache: dict[str, tuple[str, ...]] = {}
        #: top-level import name -> the distributions that install it
        self._provides: dict[str, set[str]] = {}
        #: distribution -> version, of every distribution seen (the first on sys.path wins)
        self.versions: dict[str, str] = {}
        #: distributions with a ``pytest11`` entry point (pytest plugins)
        self.plugins: set[str] = set()
        #: distributions that install ``.pth`` files (code or paths every start-up reads)
        self.pth: set[str] = set()
        #: distribution -> the distributions it requires (any marker, any extra; installed or not)
        self.requires: dict[str, set[str]] = {}
        for dist in distributions:
            try:
                self._add(dist)
            except Exception:  # one broken dist-info must not hide the others
                continue
        self._sites.sort(key=len, reverse=True)

    def _add(self, dist: Any) -> None:
        metadata = dist.metadata
        raw = metadata["Name"] if metadata is not None else None
        if not raw:
            return
        name = normalise(str(raw))
        if name in self.versions:
            return  # shadowed by an earlier entry of sys.path
        self.versions[name] = str(metadata["Version"] or "")
        required = set()
        for requirement in metadata.get_all("Requires-Dist") or ():
            match = _REQUIREMENT.match(str(requirement))
            if match:
                required.add(normalise(match.group(1)))
        self.requires[name] = required - {name}
        entry_points = dist.read_text("entry_points.txt") or ""
        if re.search(r"^\s*\[pytest11\]", entry_points, re.MULTILINE):
            self.plugins.add(name)
        site = _real(str(dist.locate_file("")))
        if site not in self._sites:
            self._sites.append(site)
        for path in _record_paths(dist):
            if path.startswith(("..", "/")):
                continue  # scripts and data outside the site directory
            top, _, _rest = path.partition("/")
            if top.endswith(".pth"):
                self.pth.add(name)
            if top.endswith((".dist-info", ".egg-info")) or top == "__pycache__":
                continue
            self._tops.setdefault((site, top), {}).setdefault(name, set()).add(path)
            if top != path or top.endswith((".py", ".so", ".pyd")):
                self._provides.setdefault(top.partition(".")[0], set()).add(name)
        editable = _editable_dir(dist)
        if editable is not None:
            self._editable.append((editable.rstrip(os.sep) + os.sep, name))

    def owners(self, filename: str) -> tuple[str, ...]:
        """The distributions that installed ``filename`` (usually one; () for none)."""
        found = self._cache.get(filename)
        if found is not None:
            return found
        found = self._owners(_real(filename))
        self._cache[filename] = found
        return found

    def _owners(self, real: str) -> tuple[str, ...]:
        for site in self._sites:
            if not real.startswith(site + os.sep):
                continue
            rel = real[len(site) + 1 :].replace(os.sep, "/")
            candidates = self._tops.get((site, rel.partition("/")[0]))
            if not candidates:
                continue
            if len(candidates) == 1:
                return tuple(candidates)
            exact = tuple(sorted(n for n, paths in candidates.items() if rel in paths))
            return exact or tuple(sorted(candidates))
        for prefix, name in self._editable:
            if real.startswith(prefix):
                return (name,)
        return ()

    def providers(self, name: str) -> tuple[str, ...]:
        """The distributions that install the top-level module ``name``."""
        return tuple(sorted(self._provides.get(name, ())))

    def provided_by(self, dist: str) -> list[str]:
        """The top-level modules ``dist`` installs."""
        return sorted(top for top, names in self._provides.items() if dist in names)

    def hooks(self, objects: Iterable[Any]) -> set[str]:
        """The distributions whose code the given import hooks (``sys.meta_path``,
        ``sys.path_hooks`` entries) are."""
        import sys

        found: set[str] = set()
        for hook in objects:
            owner = hook if isinstance(hook, type) or callable(hook) else type(hook)
            module = sys.modules.get(getattr(owner, "__module__", None) or "")
            if module is None and not isinstance(hook, type):
                module = sys.modules.get(getattr(type(hook), "__module__", None) or "")
            filename = getattr(module, "__file__", None)
            if isinstance(filename, str):
                found.update(self.owners(filename))
        return found

    def facts(self, early: Iterable[str], hooks: Iterable[str]) -> dict[str, list[str]]:
        """What the map keeps of this environment (`MapPayload.dist_facts`)."""
        return {
            "early": sorted(set(early)),
            "hooks": sorted(set(hooks)),
            "plugins": sorted(self.plugins),
            "pth": sorted(self.pth),
            "requires": sorted(f"{a}>{b}" for a, bs in self.requires.items() for b in bs),
        }


def module_files(names: Iterable[str]) -> Iterator[str]:
    """The files of the given modules that are still imported (``sys.modules``)."""
    import sys

    modules = sys.modules
    for name in names:
        filename = getattr(modules.get(name), "__file__", None)
        if isinstance(filename, str):
            yield filename
