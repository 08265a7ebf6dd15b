"""pytest-feedback: record, map, select and plan pytest runs for a fast feedback loop.

The public API is imported lazily, so that loading the pytest plugin costs next to nothing
when it is not switched on.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

_EXPORTS = {
    "SCHEMA_VERSION": "store",
    "Store": "store",
    "ConfigError": "errors",
    "FeedbackError": "errors",
    "HistoryError": "errors",
    "Estimates": "estimates",
    "FixtureEstimate": "estimates",
    "TestEstimate": "estimates",
    "FixtureExecution": "records",
    "FixtureKey": "records",
    "RunRecord": "records",
    "TestRecord": "records",
    "format_duration": "durations",
    "parse_duration": "durations",
}

__all__ = [
    "SCHEMA_VERSION",
    "ConfigError",
    "Estimates",
    "FeedbackError",
    "FixtureEstimate",
    "FixtureExecution",
    "FixtureKey",
    "HistoryError",
    "RunRecord",
    "Store",
    "TestEstimate",
    "TestRecord",
    "__version__",
    "format_duration",
    "parse_duration",
]

if TYPE_CHECKING:
    from .durations import format_duration, parse_duration
    from .errors import ConfigError, FeedbackError, HistoryError
    from .estimates import Estimates, FixtureEstimate, TestEstimate
    from .records import FixtureExecution, FixtureKey, RunRecord, TestRecord
    from .store import SCHEMA_VERSION, Store


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_feedback' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
