"""The quarantine file: tests whose failures do not fail the run, each with a reason, an owner
and an optional expiry date (docs/flaky.md).

A JSON file meant to be committed and reviewed like code (one entry per test, sorted, stable
formatting), outside the history directory; `pytest-feedback quarantine` edits it and the plugin
reads it. JSON keeps any node id exactly, whatever it holds (quotes, newlines, brackets, bytes of
a file name that is not UTF-8).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Optional

from pytest_feedback.errors import ConfigError
from pytest_feedback.settings import ROOT_MARKERS, pytest_ini_options

#: The file's default name, beside the project's pytest configuration (the rootdir).
DEFAULT_FILE = "pytest-feedback-quarantine.json"
#: How the reason of an absorbed failure begins (pytest's xfail reason of the report).
ABSORBED_PREFIX = "quarantined: "
_VERSION = 1
_DAYS = re.compile(r"^(\d+)d$")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One quarantined test."""

    nodeid: str
    reason: str
    owner: str = ""
    added: str = ""  # YYYY-MM-DD
    expires: Optional[str] = None  # YYYY-MM-DD: protects up to and including that day

    def expired(self, today: datetime.date) -> bool:
        return self.expires is not None and parse_date(self.expires) < today

    def to_json(self) -> dict[str, object]:
        return {
            "nodeid": self.nodeid,
            "reason": self.reason,
            "owner": self.owner,
            "added": self.added,
            "expires": self.expires,
        }


def today() -> datetime.date:
    """Today, or ``$PYTEST_FEEDBACK_TODAY`` (YYYY-MM-DD) when set: expiry can be tried out."""
    forced = os.environ.get("PYTEST_FEEDBACK_TODAY")
    return parse_date(forced) if forced else datetime.date.today()


def parse_date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{text!r} is not a date; write it as YYYY-MM-DD") from None


def expiry_date(text: str, base: datetime.date) -> str:
    """``--expires``: a date (YYYY-MM-DD) or a number of days from ``base`` (``30d``)."""
    days = _DAYS.match(text.strip())
    if days:
        return (base + datetime.timedelta(days=int(days.group(1)))).isoformat()
    return parse_date(text).isoformat()


def find_file(rootdir: Path, configured: Optional[str] = None) -> Path:
    """The quarantine file of a project: ``configured`` (relative to ``rootdir``), else the
    default name in ``rootdir``."""
    return rootdir / configured if configured else rootdir / DEFAULT_FILE


def configured_in(directory: Path) -> Optional[Path]:
    """The quarantine file of the pytest configuration in ``directory`` (its ini option
    ``feedback_quarantine``, else the default name); None when there is no configuration."""
    for name in ROOT_MARKERS:
        options = pytest_ini_options(directory / name)
        if options is not None:
            configured = str(options.get("feedback_quarantine") or "").strip() or None
            return find_file(directory, configured)
    return None


def load(path: Path) -> dict[str, Entry]:
    """The entries of the file at ``path`` by node id; none when there is no file.

    A file that is not a quarantine file is a `ConfigError` naming it and the fix.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the quarantine file {path} ({exc.strerror})") from exc
    try:
        data = json.loads(text)
        entries = data["tests"]
        found = {}
        for raw in entries:
            entry = Entry(
                str(raw["nodeid"]),
                str(raw.get("reason") or ""),
                str(raw.get("owner") or ""),
                str(raw.get("added") or ""),
                None if raw.get("expires") in (None, "") else str(raw["expires"]),
            )
            if entry.expires is not None:
                parse_date(entry.expires)
            found[entry.nodeid] = entry
    except (ValueError, KeyError, TypeError, AttributeError, ConfigError) as exc:
        raise ConfigError(
            f"{path} is not a valid quarantine file ({type(exc).__name__}: {exc}); fix it or "
            "rebuild it with `pytest-feedback quarantine add`"
        ) from None
    return found


def dump(entries: Iterable[Entry]) -> str:
    """The file's text: entries sorted by node id, one field a line (reviewable diffs).

    ``ensure_ascii`` escapes every non-ASCII character, so that node ids holding bytes of a
    non-UTF-8 file name (lone surrogates) are written, and read back, exactly.
    """
    tests = [e.to_json() for e in sorted(entries, key=lambda e: e.nodeid)]
    return json.dumps({"version": _VERSION, "tests": tests}, indent=2, ensure_ascii=True) + "\n"


def save(path: Path, entries: Mapping[str, Entry]) -> None:
    """Write the file atomically (a reader never sees half of it)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(dump(entries.values()), encoding="utf-8")
    os.replace(temporary, path)


def split(
    entries: Mapping[str, Entry], on: datetime.date
) -> tuple[dict[str, Entry], dict[str, Entry]]:
    """The entries that protect on ``on``, and the expired ones."""
    active = {n: e for n, e in entries.items() if not e.expired(on)}
    expired = {n: e for n, e in entries.items() if e.expired(on)}
    return active, expired
