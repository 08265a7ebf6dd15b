"""Parsing and formatting of durations such as ``300``, ``300s``, ``5m`` and ``1h30m``."""

from __future__ import annotations

import math
import re

from pytest_feedback.errors import ConfigError

_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
ACCEPTED = "a duration such as 300, 300s, 5m or 1h30m"


def parse_duration(text: str, *, what: str = "duration") -> float:
    """Return ``text`` in seconds; raise `ConfigError` naming ``what`` if it is not a duration.

    A bare number is seconds. Units may be combined, largest first: ``1h30m``, ``2m30s``.
    """
    value = text.strip().lower()
    if not value:
        raise ConfigError(f"{what}: empty value; expected {ACCEPTED}")
    try:
        seconds = float(value)
    except ValueError:
        seconds = _parse_units(value, text, what)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{what}: {text!r} is not a positive duration; expected {ACCEPTED}")
    return seconds


def _parse_units(value: str, text: str, what: str) -> float:
    pos = 0
    total = 0.0
    seen: list[str] = []
    for match in _PART.finditer(value):
        unit = match.group(2)
        if match.start() != pos or unit in seen:
            break
        seen.append(unit)
        total += float(match.group(1)) * _UNITS[unit]
        pos = match.end()
    if pos != len(value) or not seen:
        raise ConfigError(f"{what}: {text!r} is not a duration; expected {ACCEPTED}")
    return total


def format_duration(seconds: float) -> str:
    """Format seconds for people: ``0.25s``, ``12s``, ``4m41s``, ``1h02m``."""
    if seconds < 0:
        seconds = 0.0
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_budget(seconds: float) -> str:
    """A duration as a user would type it: ``5m``, ``1h30m``, ``90s`` -> ``1m30s``, ``2.5s``."""
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:g}s"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if v]
    return "".join(parts) or "0s"


def format_estimate(seconds: float) -> str:
    """``12 s``, ``0.4 s``, ``4 min 41 s``: the estimate in the selection line."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s"


#: The budget ``--feedback-budget 90%`` falls back to when the history cannot choose one: the
#: local loop's five minutes.
SHARE_FALLBACK_S = 300.0


def parse_share(text: str, *, what: str = "share") -> float:
    """``90%`` -> 0.9: a share of failing runs (``--feedback-budget 90%``); raise `ConfigError`
    naming ``what`` unless it is a percentage above 0 and at most 100."""
    value = text.strip()
    try:
        share = float(value[:-1]) / 100 if value.endswith("%") else math.nan
    except ValueError:
        share = math.nan
    if not (0 < share <= 1):
        raise ConfigError(
            f"{what}: {text!r} is not a share of failing runs; expected a percentage such as 90%"
        )
    return share


def is_share(text: str) -> bool:
    """Whether a budget is given as a share (``90%``) rather than a duration."""
    return text.strip().endswith("%")
