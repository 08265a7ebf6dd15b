"""coverage.py's private parts the map relies on, each checked directly.

Everything listed in ``src/pytest_feedback/depmap/coverage_internals.py``. A failure names the
internal and the installed coverage.py: a release changed it, and that module (and the range
pinned in pyproject.toml) must follow.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import coverage
import pytest
from coverage.numbits import numbits_to_nums
from packaging.requirements import Requirement
from packaging.version import Version

from pytest_feedback.depmap import coverage_internals as internals

VERSION = coverage.__version__
ROOT = Path(__file__).resolve().parents[1]
QUIET = ["no-data-collected", "module-not-measured", "dynamic-conflict", "no-sysmon-context"]
SOURCE = textwrap.dedent(
    """\
    def first():
        x = 1
        return x


    def second():
        y = 2
        return y
    """
)
FIRST, SECOND = {2, 3}, {7, 8}  # the body lines of each function


def changed(internal: str, detail: str) -> str:
    return (
        f"coverage.py {VERSION}: {internal} is not what pytest-feedback relies on ({detail}); "
        "see src/pytest_feedback/depmap/coverage_internals.py"
    )


def _module(directory: Path) -> ModuleType:
    path = directory / "measured_mod.py"
    path.write_text(SOURCE)
    spec = importlib.util.spec_from_file_location(f"measured_mod_{id(path)}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _coverage(directory: Path, **kwargs: Any) -> coverage.Coverage:
    cov = coverage.Coverage(
        config_file=False, include=[str(directory / "*")], messages=False, **kwargs
    )
    cov.set_option("run:disable_warnings", QUIET)
    return cov


@pytest.fixture
def started(tmp_path: Path) -> Iterator[coverage.Coverage]:
    cov = _coverage(tmp_path, data_file=None)
    cov.start()
    try:
        yield cov
    finally:
        cov.stop()


def _lines(cov: coverage.Coverage, context: str = "") -> set[int]:
    data = cov.get_data()
    found: set[int] = set()
    for filename in data.measured_files():
        if filename.endswith("measured_mod.py"):
            found |= {
                line
                for line, contexts in data.contexts_by_lineno(filename).items()
                if not context or context in contexts
            }
    return found


def test_the_installed_coverage_is_in_the_pinned_range() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    pins = [Requirement(text) for text in re.findall(r'"(coverage[^"]*)"', pyproject)]
    here = [pin for pin in pins if pin.marker is None or pin.marker.evaluate()]
    assert len(here) == 1, f"pyproject.toml pins coverage for this Python {len(here)} times"
    supported = here[0].specifier
    assert supported.contains(VERSION), (
        f"coverage.py {VERSION} is outside the range pyproject.toml supports ({supported})"
    )
    assert any(spec.operator == "<" for spec in supported), f"no upper bound in {supported}"
    lowest = min(Version(spec.version) for spec in supported if spec.operator == ">=")
    assert internals.measures_children() == (lowest >= Version("7.13")), (
        "measures_children() disagrees with the pinned lower bound"
    )


# -- 1. the collector ------------------------------------------------------------------------


def test_the_collector_has_tracers_and_pauses(tmp_path: Path, started: coverage.Coverage) -> None:
    collector = getattr(started, "_collector", None)
    assert collector is not None, changed("Coverage._collector", "no such attribute")
    tracers = getattr(collector, "tracers", None)
    assert isinstance(tracers, list), changed("Collector.tracers", f"{tracers!r}, not a list")
    for method in ("pause", "resume"):
        assert callable(getattr(collector, method, None)), changed(
            f"Collector.{method}", "not a method"
        )
    module = _module(tmp_path)
    assert internals.pause_tracing(started), changed("Collector.pause", "pausing failed")
    module.first()
    internals.resume_tracing(started)
    module.second()
    started.stop()
    lines = _lines(started)
    assert not lines & FIRST, changed("Collector.pause", "lines ran while paused were measured")
    assert lines >= SECOND, changed("Collector.resume", "lines ran after resuming were lost")


# -- 2. and 3. the core ----------------------------------------------------------------------


def test_the_core_is_one_we_know(started: coverage.Coverage) -> None:
    core = getattr(started, "_core", None)
    tracer = getattr(core, "tracer_class", None)
    name = getattr(tracer, "__name__", None)
    assert name in internals.TRACER_CORES, changed(
        "Coverage._core.tracer_class.__name__",
        f"{name!r}, not one of {sorted(internals.TRACER_CORES)}",
    )
    assert internals.core_name(started) == internals.TRACER_CORES[name]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring: Python 3.12+")
def test_sysmon_gives_every_context_its_lines_after_a_restart(tmp_path: Path) -> None:
    cov = _coverage(tmp_path, data_file=None)
    cov.set_option("run:core", "sysmon")
    cov.start()
    try:
        name = internals.core_name(cov)
        assert name == "sysmon", changed("Coverage._core.tracer_class", f"core {name!r}")
        restart = internals.sysmon_restart(cov)
        assert restart is not None, changed("the sysmon core", "no restart_events to call")
        module = _module(tmp_path)
        for context in ("one", "two"):
            cov.switch_context(context)
            restart()
            module.first()
    finally:
        cov.stop()
    for context in ("one", "two"):
        assert _lines(cov, context) >= FIRST, changed(
            "the sysmon core's DISABLE", f"context {context!r} lacks lines after a restart"
        )


# -- 4. the data file ------------------------------------------------------------------------


def _schema(name: str) -> tuple[int, dict[str, set[str]]]:
    con = sqlite3.connect(name, uri=name.startswith("file:"))
    try:
        (version,) = con.execute("SELECT version FROM coverage_schema").fetchone()
        tables = {
            table: {row[1] for row in con.execute(f"PRAGMA table_info({table})")}
            for table in ("file", "context", "line_bits")
        }
    finally:
        con.close()
    return int(version), tables


@pytest.mark.parametrize("where", ["file", "memory"])
def test_the_data_tables_hold_numbits_per_context(tmp_path: Path, where: str) -> None:
    data_file = str(tmp_path / ".coverage") if where == "file" else None
    cov = _coverage(tmp_path, data_file=data_file)
    cov.start()
    try:
        module = _module(tmp_path)
        cov.switch_context("t:one")
        module.first()
        cov.switch_context("t:two")
        module.second()
    finally:
        cov.stop()
    if data_file is not None:
        cov.save()
        data = coverage.CoverageData(data_file)
        data.read()
    else:
        data = cov.get_data()
    name = str(data.data_filename())
    if where == "memory":
        assert re.match(r"file:.*mode=memory", name), changed(
            "in-memory CoverageData.data_filename()", f"{name!r} is no shared-cache URI"
        )
    version, tables = _schema(name)
    assert version == internals.DATA_SCHEMA, changed("the data schema", f"version {version}")
    expected = {"file": {"id", "path"}, "context": {"id", "context"}}
    expected["line_bits"] = {"file_id", "context_id", "numbits"}
    for table, columns in expected.items():
        assert columns <= tables[table], changed(f"the {table} table", f"columns {tables[table]}")
    rows = internals.line_bits_rows(data)
    assert rows is not None, changed("the data tables", "line_bits_rows could not read them")
    direct = {
        (Path(f).name, c, frozenset(numbits_to_nums(b)))
        for f, c, b in rows
        if f.endswith("measured_mod.py")
    }
    public = {
        (Path(f).name, label, frozenset(lines))
        for f in data.measured_files()
        if f.endswith("measured_mod.py")
        for label, lines in _by_context(data, f).items()
    }
    assert direct == public, changed("the line_bits table", f"{direct} != {public}")
    assert ("measured_mod.py", "t:one", frozenset(FIRST)) in direct


def _by_context(data: coverage.CoverageData, filename: str) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for line, contexts in data.contexts_by_lineno(filename).items():
        for context in contexts:
            found.setdefault(context, set()).add(line)
    return found


# -- 5. child processes ----------------------------------------------------------------------


def test_the_child_config_serializes_our_fields(tmp_path: Path) -> None:
    from coverage.config import CoverageConfig

    config = CoverageConfig()
    for field in internals.CHILD_CONFIG_FIELDS:
        assert hasattr(config, field), changed(f"CoverageConfig.{field}", "no such attribute")
    value = _child_config(tmp_path)('t:a "quoted" test')
    decoded = json.loads(base64.b64decode(value).decode())
    assert decoded["context"] == 't:a "quoted" test', changed("CoverageConfig.serialize", decoded)
    assert decoded["patch"] == ["subprocess"]
    assert decoded["data_file"] == str(tmp_path / "data" / ".sub")


def _child_config(directory: Path) -> Any:
    make = internals.child_config(
        data_file=str(directory / "data" / ".sub"),
        include=[str(directory / "*")],
        omit=[],
        quiet=QUIET,
        core=None,
        placeholder="@@placeholder@@",
    )
    assert make is not None, changed(
        "coverage.config.CoverageConfig.serialize", "no configuration to fill in"
    )
    return make


@pytest.mark.skipif(
    not internals.measures_children(),
    reason=f"coverage.py {VERSION} has no start-up hook for children (Python 3.9's last is 7.10)",
)
def test_a_python_child_and_grandchild_measure_with_the_config(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "grandchild.py").write_text("value = 40\nprint(value + 2)\n")
    (tmp_path / "child.py").write_text(
        "import subprocess, sys\n"
        "out = subprocess.run([sys.executable, sys.argv[1]], capture_output=True, text=True)\n"
        "print(out.stdout.strip())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env[internals.CHILD_CONFIG_VARIABLE] = _child_config(tmp_path)("t:spawning")
    result = subprocess.run(
        [sys.executable, str(tmp_path / "child.py"), str(tmp_path / "grandchild.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout.strip() == "42", result.stderr
    files = sorted((tmp_path / "data").glob(".sub.*"))
    assert files, changed(
        internals.CHILD_CONFIG_VARIABLE,
        "the child wrote no data: coverage.py's .pth file (a1_coverage.pth, 7.13+) did not "
        "start measuring from the variable",
    )
    measured: dict[str, set[int]] = {}
    for name in files:
        data = coverage.CoverageData(str(name))
        data.read()
        for filename in data.measured_files():
            for label, lines in _by_context(data, filename).items():
                measured.setdefault(f"{Path(filename).name} {label}", set()).update(lines)
    assert measured.get("child.py t:spawning"), changed(
        "the child configuration's context", f"measured {sorted(measured)}"
    )
    assert measured.get("grandchild.py t:spawning") == {1, 2}, changed(
        "patch = subprocess in the child configuration", f"measured {sorted(measured)}"
    )
