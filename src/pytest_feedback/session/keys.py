"""How the session objects find each other: pytest stash keys and the collection-filter protocol.

Every object plugin.py registers is reached through ``config.stash`` under one of these typed
keys, never by its plugin name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Protocol

import pytest

if TYPE_CHECKING:
    from pytest_feedback.history.records import RunRecord
    from pytest_feedback.session.options import ParallelOptions
    from pytest_feedback.session.recorder import RunRecorder
    from pytest_feedback.session.selection import SelectionRun
    from pytest_feedback.settings import Settings


class CollectionFilter(Protocol):
    """A session object that narrows the collected tests (selection, budget, shard)."""

    #: It deselected every test that was left: "no tests ran" is then its decision (its line says
    #: why), not pytest's exit status 5.
    emptied: bool


SETTINGS_KEY: pytest.StashKey[Settings] = pytest.StashKey()
RECORDER_KEY: pytest.StashKey[RunRecorder] = pytest.StashKey()
PARALLEL_KEY: pytest.StashKey[ParallelOptions] = pytest.StashKey()
#: The ``--feedback-select``/``--feedback-audit`` run, for the budget run that follows it.
SELECTION_KEY: pytest.StashKey[SelectionRun] = pytest.StashKey()
#: The registered collection filters.
FILTERS_KEY: pytest.StashKey[list[CollectionFilter]] = pytest.StashKey()
#: Every object plugin.py registered with the plugin manager, unregistered at the end.
REGISTERED_KEY: pytest.StashKey[list[object]] = pytest.StashKey()


def recorded_run(config: pytest.Config) -> Optional[RunRecord]:
    """The run this process records, or None when it records none."""
    recorder = config.stash.get(RECORDER_KEY, None)
    return recorder.run if recorder is not None else None


def register(config: pytest.Config, plugin: object, name: str) -> None:
    """Register ``plugin`` for this session; `unregister_all` takes it out at the end."""
    config.pluginmanager.register(plugin, name)
    config.stash.setdefault(REGISTERED_KEY, []).append(plugin)


def add_filter(config: pytest.Config, plugin: CollectionFilter, name: str) -> None:
    """Register a collection filter; see `emptied_by_a_filter`."""
    register(config, plugin, name)
    config.stash.setdefault(FILTERS_KEY, []).append(plugin)


def emptied_by_a_filter(config: pytest.Config) -> bool:
    """Whether one of our collection filters left no test to run."""
    return any(f.emptied for f in config.stash.get(FILTERS_KEY, []))


def unregister_all(config: pytest.Config) -> None:
    """Unregister what `register` registered and forget every key of this module."""
    for plugin in config.stash.get(REGISTERED_KEY, []):
        if config.pluginmanager.is_registered(plugin):
            config.pluginmanager.unregister(plugin)
    for key in (
        SETTINGS_KEY,
        RECORDER_KEY,
        PARALLEL_KEY,
        SELECTION_KEY,
        FILTERS_KEY,
        REGISTERED_KEY,
    ):
        if key in config.stash:  # type: ignore[misc]
            del config.stash[key]  # type: ignore[misc]
