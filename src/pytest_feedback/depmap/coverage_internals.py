"""Every use of coverage.py's private parts and undocumented behaviour, in one place.

The map needs a few things coverage.py's public API does not offer. Each one is listed here with
what it is for and since when coverage.py has it; ``tests/test_coverage_internals.py`` checks
each of them directly and fails naming the internal and the installed coverage.py version when a
release changes one. ``pyproject.toml`` pins the range they were checked on (``>=7.13,<8``:
7.13.0, the lower bound, and 7.17.5; on Python 3.9, 7.10.7). Everything else the map uses is
public API (``Coverage``, ``Coverage.current``, ``switch_context``, ``get_data``, ``CoverageData``'s
methods, ``coverage.numbits``, the ``[run] core``/``disable_warnings`` settings).

1. ``Coverage._collector`` (a ``coverage.collector.Collector``): its ``tracers`` list and its
   ``pause()``/``resume()`` methods stop tracing while a library module is imported
   (`pause_tracing`, `resume_tracing`). Long before 7.0 (seen in 7.4.4, the oldest checked).
2. ``Coverage._core.tracer_class.__name__``: ``CTracer``, ``PyTracer`` or ``SysMonitor``, the
   measurement core a started measurement uses (`core_name`). Since a 7.6.x release (absent
   from 7.6.0, present in 7.6.12).
3. Undocumented behaviour of the sysmon core: it returns ``sys.monitoring.DISABLE`` for a line it
   has seen, so a line reaches only the first dynamic context that runs it unless the events are
   restarted after each switch (`sysmon_restart`; ``benchmarks/map_cores.py`` compares the maps
   of both cores). Since the sysmon core appeared, in coverage.py 7.4.
4. The data file's SQLite tables, schema version 7 — ``coverage_schema(version)``,
   ``file(id, path)``, ``context(id, context)``, ``line_bits(file_id, context_id, numbits)`` —
   read directly because the numbits are already there (`line_bits_rows`); coverage.py's docs
   call the schema subject to change, so any other version goes through the public, slower
   ``CoverageData.contexts_by_lineno``. In memory (``data_file=None``, what the map measures
   with), ``CoverageData.data_filename()`` is a shared-cache URI
   (``file:coverage-UUID?mode=memory&cache=shared``) that a second connection can open (since
   7.10.4 or 7.10.5: ``:memory:`` in 7.10.3, which the fallback reads). Schema 7 since coverage.py
   5.0 (7.4.4 to 7.17.5 checked).
5. Measuring Python child processes: ``coverage.config.CoverageConfig`` (not public API), the
   attributes ``data_file``, ``parallel``, ``run_include``, ``run_omit``, ``context``, ``patch``,
   ``disable_warnings``, ``config_file`` and ``core``, its ``serialize()`` (base64 of a JSON
   object), the ``COVERAGE_PROCESS_CONFIG`` variable that holds it, and the ``a1_coverage.pth``
   file that starts a child's measurement from that variable (`child_config`). The variable and
   ``serialize`` are absent from 7.10.0 and present in 7.10.3; the ``.pth`` file ships with
   coverage.py since 7.13.0 (before, only a parent running ``patch = subprocess`` wrote one),
   which makes 7.13.0 the lower bound where it installs (Python 3.10+). Python 3.9's last
   coverage.py is 7.10.7: there children start unmeasured (`measures_children` says so), the map
   counts them as spawned and not measured, and selection takes such a test as depending on all
   project code.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable, Optional

#: The class of each measurement core's tracer, and the name ``[run] core`` gives that core.
TRACER_CORES = {"CTracer": "ctrace", "PyTracer": "pytrace", "SysMonitor": "sysmon"}
#: The coverage.py data schema whose tables `numbits_by_context` reads directly.
DATA_SCHEMA = 7
#: sys.monitoring, and so the sysmon core, exists from Python 3.12 on.
_SYSMON = sys.version_info >= (3, 12)
#: The first coverage.py that starts a Python child's measurement by itself (``a1_coverage.pth``).
CHILD_HOOK_SINCE = (7, 13)
#: Where a Python child finds its serialized configuration.
CHILD_CONFIG_VARIABLE = "COVERAGE_PROCESS_CONFIG"
#: The ``CoverageConfig`` attributes `child_config` sets.
CHILD_CONFIG_FIELDS = (
    "data_file",
    "parallel",
    "run_include",
    "run_omit",
    "context",
    "patch",
    "disable_warnings",
    "config_file",
    "core",
)


# -- 1. the collector ------------------------------------------------------------------------


def pause_tracing(cov: Any) -> bool:
    """Pause ``cov``'s tracing when it traces a single thread; True when it did.

    coverage.py's pause/resume re-arm tracers in the calling thread only: with more than one
    tracer, leave it alone.
    """
    collector = getattr(cov, "_collector", None)
    tracers = getattr(collector, "tracers", None)
    if collector is None or tracers is None or len(tracers) > 1:
        return False
    try:
        collector.pause()
    except Exception:
        return False
    return True


def resume_tracing(cov: Any) -> None:
    """Undo `pause_tracing`; never raises."""
    with contextlib.suppress(Exception):
        cov._collector.resume()


# -- 2. and 3. the core ----------------------------------------------------------------------


def core_name(cov: Any) -> Optional[str]:
    """``ctrace``, ``pytrace`` or ``sysmon``: the core a started ``cov`` uses; None if unknown."""
    tracer = getattr(getattr(cov, "_core", None), "tracer_class", None)
    return TRACER_CORES.get(getattr(tracer, "__name__", ""))


def sysmon_restart(cov: Any) -> Optional[Callable[[], None]]:
    """`sys.monitoring.restart_events` when ``cov`` measures with coverage.py's sysmon core.

    That core returns DISABLE for a line once it has seen it, so on its own it gives a line only
    to the first context that ran it; restarting the events after each switch gives each
    context all of its lines (benchmarks/map_cores.py: attrs and click map alike with either core).
    """
    if not _SYSMON or core_name(cov) != "sysmon":
        return None
    monitoring = getattr(sys, "monitoring", None)
    restart = getattr(monitoring, "restart_events", None)
    return restart if callable(restart) else None


# -- 4. the data file ------------------------------------------------------------------------


def numbits_by_context(data: Any) -> Iterator[tuple[str, str, bytes]]:
    """(file, context, numbits) of a CoverageData: straight from its tables when they are the
    schema we know, else through the public, slower `contexts_by_lineno`."""
    from coverage.numbits import nums_to_numbits

    rows = line_bits_rows(data)
    if rows is not None:
        yield from rows
        return
    for filename in data.measured_files():
        per_label: dict[str, list[int]] = {}
        for line, contexts in data.contexts_by_lineno(filename).items():
            for context in contexts:
                per_label.setdefault(context, []).append(line)
        for label, lines in per_label.items():
            yield filename, label, nums_to_numbits(lines)


def line_bits_rows(data: Any) -> Optional[list[tuple[str, str, bytes]]]:
    """(file, context, numbits) rows read from the SQLite tables of a CoverageData (schema 7:
    the numbits are already there); None when they cannot be read that way."""
    rows: Optional[list[tuple[str, str, bytes]]] = None
    with contextlib.suppress(Exception):
        name = str(data.data_filename())
        if not name.startswith("file:"):  # never create a file coverage.py has not written yet
            if not os.path.isfile(name):
                raise FileNotFoundError(name)
            name = Path(name).resolve().as_uri() + "?mode=ro"
        # In memory (``data_file=None``), the name is a shared-cache URI: a second connection
        # sees the same database.
        con = sqlite3.connect(name, uri=True)
        try:
            version = con.execute("SELECT version FROM coverage_schema").fetchone()
            if version and int(version[0]) == DATA_SCHEMA:
                rows = con.execute(
                    "SELECT f.path, c.context, l.numbits FROM line_bits l"
                    " JOIN file f ON f.id = l.file_id JOIN context c ON c.id = l.context_id"
                ).fetchall()
        finally:
            con.close()
    return rows


# -- 5. child processes ----------------------------------------------------------------------


def measures_children() -> bool:
    """Whether the installed coverage.py measures the Python children a test starts."""
    import coverage

    return coverage.version_info[:2] >= CHILD_HOOK_SINCE


def child_config(
    *,
    data_file: str,
    include: Sequence[str],
    omit: Sequence[str],
    quiet: Sequence[str],
    core: Optional[str],
    placeholder: str,
) -> Optional[Callable[[str], str]]:
    """The value of `CHILD_CONFIG_VARIABLE` for a given static context, as a function of it.

    Children write parallel data files named after ``data_file``, measure ``include`` but not
    ``omit``, stay quiet about ``quiet`` and carry the measurement on to their own children.
    None when this coverage.py cannot serialize a configuration we can fill in.
    """
    try:
        from coverage.config import CoverageConfig
    except ImportError:  # pragma: no cover - coverage.py moved its config class
        return None
    config = CoverageConfig()
    config.data_file = data_file
    config.parallel = True
    config.run_include = list(include)
    config.run_omit = list(omit)
    config.context = placeholder
    config.patch = ["subprocess"]
    config.disable_warnings = list(quiet)
    config.config_file = "feedback"
    if core:
        config.core = core
    serialize = getattr(config, "serialize", None)
    if not callable(serialize):
        return None
    template = base64.b64decode(serialize()).decode()
    if placeholder not in template:
        return None

    def serialized(label: str) -> str:
        text = template.replace(placeholder, json.dumps(label)[1:-1])
        return base64.b64encode(text.encode()).decode()

    return serialized
