"""The environment a coverage map was recorded in: Python, installed packages, project-wide inputs.

A change to any of these can change what any test does, so selection runs everything when the
current `fingerprint` differs from the one stored with the map. Shared verbatim between the map
(which stores it) and selection (which compares it); keys are stable strings.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import sys
from pathlib import Path

#: Files at the root of the project whose change reaches every test.
INPUT_PATTERNS = (
    "pytest.ini",
    ".pytest.ini",
    ".python-version",
    "pyproject.toml",
    "setup.cfg",
    "setup.py",
    "tox.ini",
    "requirements*.txt",
    "requirements*.in",
    "constraints*.txt",
    "*.lock",
    "Pipfile",
    "requirements/*.txt",
    "requirements/*.in",
)
PYTHON_KEY = "python"
PACKAGES_KEY = "packages"
INPUT_PREFIX = "input:"
#: ``text:PATH``: the text of a settings file, kept so that selection can tell which of its parts
#: changed (`selection.project_inputs`).
TEXT_PREFIX = "text:"
_TEXT_NAMES = frozenset(
    {"pyproject.toml", "setup.cfg", "tox.ini", "pytest.ini", ".pytest.ini", "setup.py"}
)
_MAX_TEXT_BYTES = 256 * 1024


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_packages() -> str:
    """``name==version`` of every installed distribution, sorted, one a line.

    Read from the ``NAME-VERSION.dist-info`` / ``.egg-info`` entries on `sys.path` (the names
    the packaging specifications define), which is much faster than parsing each METADATA file.
    """
    seen: set[str] = set()
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            stem, dot, suffix = name.rpartition(".")
            if not dot or suffix not in ("dist-info", "egg-info"):
                continue
            project, dash, version = stem.partition("-")
            if dash:
                seen.add(f"{_normalise(project)}=={version}")
    return "\n".join(sorted(seen))


def input_files(rootdir: Path) -> list[Path]:
    """The project-wide input files that exist under ``rootdir``."""
    found: set[Path] = set()
    for pattern in INPUT_PATTERNS:
        found.update(p for p in rootdir.glob(pattern) if p.is_file())
    return sorted(found)


def is_input_path(path: str) -> bool:
    """Whether a rootdir-relative POSIX path names a project-wide input file."""
    from fnmatch import fnmatchcase

    return any(fnmatchcase(path, pattern) for pattern in INPUT_PATTERNS)


def fingerprint(rootdir: Path, *, texts: bool = False) -> dict[str, str]:
    """Python version, installed packages and the sha1 of each project-wide input file.

    Keys: ``python`` ("CPython 3.12.3"), ``packages`` (`installed_packages`), and
    ``input:PATH`` (rootdir-relative POSIX path) -> sha1 hex of the file's bytes; with
    ``texts``, also ``text:PATH`` -> the text of each settings file (up to 256 KiB).
    """
    result = {
        PYTHON_KEY: f"{platform.python_implementation()} {platform.python_version()}",
        PACKAGES_KEY: installed_packages(),
    }
    for path in input_files(rootdir):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        rel = path.relative_to(rootdir).as_posix()
        result[INPUT_PREFIX + rel] = hashlib.sha1(data).hexdigest()
        if texts and path.name in _TEXT_NAMES and len(data) <= _MAX_TEXT_BYTES:
            try:
                result[TEXT_PREFIX + rel] = data.decode("utf-8")
            except UnicodeDecodeError:
                continue
    return result
