"""Collection and imports: the time before the first test, and the imports behind it: slow
conftest.py files and test modules, and the modules they import that take long."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from typing import Optional

from pytest_feedback.durations import format_duration
from pytest_feedback.history.evidence import ImportTime
from pytest_feedback.history.summaries import median
from pytest_feedback.planning.advice.model import IMPORTS, Suggestion

#: A module, conftest or test module is suggested when its import takes this long per process.
MIN_SAVED_S = 0.1

ASSUMES_MODULE = (
    "no test needs it while being collected: imported where it is used (inside the fixture or "
    "test), its cost moves to the first test that uses it, so a run that selects none of them "
    "saves it whole",
    "the seconds include the modules it imports in turn, as far as no earlier import had "
    "loaded them",
)
ASSUMES_OWN = (
    "its own top-level code (not the modules it imports, counted apart) can be made cheaper or "
    "deferred to a fixture",
)


def import_suggestions(
    imports: Sequence[ImportTime],
    collect: Sequence[tuple[int, str, float]],
    source: Callable[[str], Optional[str]] = lambda path: None,
    notes: Optional[list[str]] = None,
) -> list[Suggestion]:
    """``imports``: collect_imports rows of the recent runs; ``collect``: their processes'
    start-up and collection seconds; ``source``: a test module's text by its rootdir-relative
    path (None when unknown: on another machine than the one that recorded). A module that
    test modules import at their top level anyway is no suggestion (a note in ``notes``)."""
    # Per (kind, name, via): the median over runs of the median over a run's processes (each
    # process pays its imports; at N workers they pay them at once).
    per_run: dict[tuple[str, str, Optional[str]], dict[int, list[float]]] = {}
    for row in imports:
        key = (row.kind, row.name, row.via)
        per_run.setdefault(key, {}).setdefault(row.run_id, []).append(row.seconds)
    seconds = {key: median(median(v) for v in runs.values()) for key, runs in per_run.items()}
    per_run_collect: dict[int, list[float]] = {}
    for run_id, _, secs in collect:
        per_run_collect.setdefault(run_id, []).append(float(secs))
    collection = median(median(v) for v in per_run_collect.values()) if per_run_collect else 0.0
    total_tests = sum(s for (kind, _, _), s in seconds.items() if kind == "test")
    total_conftests = sum(s for (kind, _, _), s in seconds.items() if kind == "conftest")
    context = (
        f"imports while collecting: conftest.py files {format_duration(total_conftests)}, test "
        f"modules {format_duration(total_tests)} per process; collection after the session "
        f"started (the first conftest.py files load before it): {format_duration(collection)}",
    )
    inside: dict[str, float] = {}
    out = []
    modules = {(name, via) for (kind, name, via) in seconds if kind == "module"}
    test_modules = sorted(name for (kind, name, _) in seconds if kind == "test")
    for (kind, name, via), secs in seconds.items():
        if kind != "module" or via is None or _within_another(name, via, modules):
            continue
        inside[via] = inside.get(via, 0.0) + secs
        if secs < MIN_SAVED_S:
            continue
        importers = _importers(name, test_modules, source)
        if importers:
            if notes is not None:
                notes.append(
                    f"{name}: {via} imports it ({format_duration(secs)} per process), and so do "
                    f"{len(importers)} test module(s) at their top (e.g. {importers[0]}): "
                    "importing it lazily in one place would not shorten collection"
                )
            continue
        out.append(
            Suggestion(
                kind=IMPORTS,
                subject=name,
                title=f"Import `{name}` lazily: {via} imports it while collecting",
                evidence=(
                    f"importing {name} takes {format_duration(secs)} per process, "
                    f"imported by {via}",
                    *context,
                ),
                saved_s=secs,
                saved_at_workers_s=secs,
                command=f"python -X importtime -c {shlex.quote('import ' + name)} 2>&1 "
                "| sort -t'|' -k2 -n | tail -8",
                assumes=ASSUMES_MODULE,
            )
        )
    for (kind, name, _), secs in seconds.items():
        if kind == "module":
            continue
        own = secs - inside.get(name, 0.0)
        if own < MIN_SAVED_S:
            continue
        what = "conftest.py" if kind == "conftest" else "test module"
        target = name.rpartition("/")[0] or "." if kind == "conftest" else name
        out.append(
            Suggestion(
                kind=IMPORTS,
                subject=name,
                title=f"Make {what} {name} cheaper to import",
                evidence=(
                    f"importing {name} takes {format_duration(secs)} per process, "
                    f"{format_duration(own)} of it its own code",
                    *context,
                ),
                saved_s=own,
                saved_at_workers_s=own,
                command="python -X importtime -m pytest --collect-only -q -p no:cacheprovider "
                f"{shlex.quote(target)} 2>&1 | sort -t'|' -k2 -n | tail -8",
                assumes=ASSUMES_OWN,
            )
        )
    return out


def _within_another(name: str, via: Optional[str], modules: set[tuple[str, Optional[str]]]) -> bool:
    """Whether a package of ``name`` has a row of the same importer (its import ran inside that
    one's, which counts it; histories recorded before rows were kept to the outermost)."""
    parts = name.split(".")
    return any((".".join(parts[:i]), via) in modules for i in range(1, len(parts)))


def _importers(
    name: str, test_modules: Sequence[str], source: Callable[[str], Optional[str]]
) -> list[str]:
    """The test modules that import ``name``'s top-level package at their top level."""
    top = re.escape(name.split(".")[0])
    pattern = re.compile(rf"^(?:import|from)\s+{top}\b", re.MULTILINE)
    found = []
    for path in test_modules:
        text = source(path)
        if text is not None and pattern.search(text):
            found.append(path)
    return found
