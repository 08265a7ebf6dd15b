"""Which test files need not be collected at all (docs/selection.md, "Collection").

A test file is left uncollected (pytest never imports it) when the map knows every test of it
that the history knows, none of them is selected, and the file itself did not change: then its
collection inputs are unchanged too, since a change to a conftest.py above it, to code that ran
while it was collected, or to a file read then, selects its tests. New files, and files the map
does not know, are always collected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_feedback.history.records import test_file

if TYPE_CHECKING:
    from pytest_feedback.selection.selector import Selector


def skippable_files(selector: Selector) -> dict[str, list[str]]:
    """Rootdir-relative test file -> its (mapped, unselected) tests, for each file that need
    not be collected; {} when selection runs everything."""
    if selector.fallback is not None or selector.map is None or selector.changes is None:
        return {}
    mapped = selector.map.mapped_tests()
    by_file: dict[str, list[str]] = {}
    for nodeid in mapped:
        by_file.setdefault(test_file(nodeid), []).append(nodeid)
    for nodeid in set(selector.estimates.tests) - mapped:
        by_file.pop(test_file(nodeid), None)  # a test the map does not know: collect the file
    significant = selector.changes.significant  # comments and docstrings change no collection
    changed = {c.path for c in significant} | {c.recorded_path for c in significant}
    selected = set(selector.decide(sorted(mapped)).selected)
    return {
        path: sorted(nodeids)
        for path, nodeids in by_file.items()
        if path not in changed and not selected.intersection(nodeids)
    }
