"""pytest-feedback: record, map, select and plan pytest runs for a fast feedback loop.

The public API is imported lazily, so that loading the pytest plugin costs next to nothing
when it is not switched on.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

_EXPORTS = {
    "SCHEMA_VERSION": "history.schema",
    "Store": "history.store",
    "ConfigError": "errors",
    "DependencyMap": "depmap.graph",
    "FeedbackError": "errors",
    "HistoryError": "errors",
    "Estimates": "history.estimates",
    "FixtureEstimate": "history.estimates",
    "TestEstimate": "history.estimates",
    "FixtureExecution": "history.records",
    "FixtureKey": "history.records",
    "RunRecord": "history.records",
    "TestRecord": "history.records",
    "format_duration": "durations",
    "parse_duration": "durations",
}

__all__ = [
    "SCHEMA_VERSION",
    "ConfigError",
    "DependencyMap",
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
    from pytest_feedback.depmap.graph import DependencyMap
    from pytest_feedback.durations import format_duration, parse_duration
    from pytest_feedback.errors import ConfigError, FeedbackError, HistoryError
    from pytest_feedback.history.estimates import Estimates, FixtureEstimate, TestEstimate
    from pytest_feedback.history.records import FixtureExecution, FixtureKey, RunRecord, TestRecord
    from pytest_feedback.history.schema import SCHEMA_VERSION
    from pytest_feedback.history.store import Store


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_feedback' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
