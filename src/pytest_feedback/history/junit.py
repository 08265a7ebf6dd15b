"""Bootstrapping durations from JUnit XML reports (``pytest-feedback import-junit``).

Each report becomes one run in the history, with a uuid derived from the file's content, so that
importing a file twice adds nothing.  A ``<testcase>``'s classname and name are mapped back to a
pytest node id: pytest writes the classname as the test file's path with dots for slashes and
without ``.py``, followed by the classes (``tests.sub.test_x.TestA``), and the name with its
parameters (``test_b[1-2]``).  Because dots are ambiguous (``tests/v1.2/test_x.py``), the mapping
uses the node ids pytest collects when they are known, else the files under the rootdir.

Reports are parsed with `xml.etree.ElementTree` after a streaming pre-scan with expat that refuses
DOCTYPE and ENTITY declarations: JUnit XML never needs them, and refusing them rules out entity
expansion attacks ("billion laughs") without a dependency on defusedxml.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import math
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import xml.parsers.expat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Optional

from pytest_feedback.errors import FeedbackError
from pytest_feedback.history.records import BUDGET_NOT_RUN, RunRecord, TestRecord

#: Directories never searched for test files (pytest's default norecursedirs, and caches).
SKIP_DIRS = frozenset(
    {"build", "dist", "node_modules", "venv", "CVS", "_darcs", "{arch}", "__pycache__"}
)
#: Testcases pytest writes for things that are not tests.
NOT_TESTS = frozenset({"collection failure", "collection skipped", "internal error"})


class JUnitError(FeedbackError):
    """A report that cannot be read."""


@dataclasses.dataclass
class Case:
    """One ``<testcase>`` as read from a report."""

    classname: str
    name: str
    file: Optional[str]
    seconds: float
    outcome: str


@dataclasses.dataclass
class ImportResult:
    """What importing one report gave: a run (None when nothing mapped) and what was left out."""

    path: Path
    run: Optional[RunRecord]
    cases: int
    unmapped: list[Case]
    #: The id of the recorded run the report came from (the same session: pytest-feedback
    #: recorded it already), which importing would count twice; None: none.
    recorded_as: Optional[int] = None


def junit_address(nodeid: str) -> tuple[str, str]:
    """The (classname, name) pytest's junitxml writes for ``nodeid``."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = names[0].replace("/", ".")
    if names[0].endswith(".py"):
        names[0] = names[0][: -len(".py")]
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


# -- reading ---------------------------------------------------------------------------------


def _refuse_declarations(data: bytes, path: Path) -> None:
    """Stream through ``data`` with expat, failing at any DOCTYPE or ENTITY declaration."""

    def refuse(*_: object) -> None:
        raise JUnitError(
            f"{path} declares a DOCTYPE or ENTITY, which JUnit XML never needs and which can "
            "expand to a huge document; remove the declaration (import-junit refuses them)"
        )

    parser = xml.parsers.expat.ParserCreate()
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise JUnitError(f"{path} is not well-formed XML ({exc}); pass a JUnit XML report") from exc


def read_report(path: Path) -> tuple[bytes, ET.Element]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise JUnitError(f"cannot read {path} ({exc.strerror}); pass a JUnit XML report") from exc
    _refuse_declarations(data, path)
    try:
        root = ET.fromstring(data)  # declarations were refused above
    except ET.ParseError as exc:
        raise JUnitError(f"{path} is not well-formed XML ({exc}); pass a JUnit XML report") from exc
    if root.tag not in ("testsuites", "testsuite"):
        raise JUnitError(
            f"{path} is not a JUnit XML report (its root element is <{root.tag}>, expected "
            "<testsuites> or <testsuite>)"
        )
    return data, root


def _seconds(text: Optional[str]) -> float:
    try:
        value = float((text or "0").replace(",", ""))
    except ValueError:
        return 0.0
    return value if math.isfinite(value) and value >= 0 else 0.0


def _outcome(case: ET.Element) -> Optional[str]:
    """The test's outcome; None for testcases that are not tests (collection errors...)."""
    for prop in case.iter("property"):
        if (prop.get("name"), prop.get("value")) == BUDGET_NOT_RUN:
            return None  # skipped by --feedback-budget, its turn came too late: it did not run
    tags = {child.tag: child for child in case}
    for tag in ("failure", "error", "skipped"):
        element = tags.get(tag)
        if element is not None and element.get("message", "") in NOT_TESTS:
            return None
    if "failure" in tags:
        return "failed"
    if "error" in tags:
        return "error"
    skipped = tags.get("skipped")
    if skipped is not None:
        if skipped.get("message", "") == "xfail-marked test passes unexpectedly":
            return "failed"  # a strict xpass
        return "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
    return "passed"


def read_cases(root: ET.Element) -> Iterator[Case]:
    """Every test case, in nested testsuites too; the last of two with the same address wins."""
    for element in root.iter("testcase"):
        outcome = _outcome(element)
        if outcome is None:
            continue
        name = element.get("name", "")
        classname = element.get("classname", "")
        if not name or (classname, name) == ("pytest", "internal"):
            continue
        file = element.get("file")
        yield Case(
            classname,
            name,
            file.replace("\\", "/") if file else None,
            _seconds(element.get("time")),
            outcome,
        )


def _suite_times(root: ET.Element, path: Path) -> tuple[float, float]:
    """The report's start (Unix time) and wall seconds."""
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    stamps = []
    for suite in suites:
        stamp = suite.get("timestamp")
        if stamp:
            try:
                parsed = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            except ValueError:
                continue
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=datetime.timezone.utc)
            stamps.append(parsed.timestamp())
    started = min(stamps) if stamps else path.stat().st_mtime
    if root.tag == "testsuite" or root.get("time"):
        wall = _seconds(root.get("time"))
    else:
        wall = sum(_seconds(s.get("time")) for s in root if s.tag == "testsuite")
    return started, wall


# -- mapping ---------------------------------------------------------------------------------


class NodeIdMapper:
    """Maps (classname, name) to node ids: collected ids first, then files under the rootdir."""

    def __init__(self, rootdir: Path, nodeids: Iterable[str] = ()) -> None:
        self.rootdir = rootdir
        self.by_address: dict[tuple[str, str], str] = {}
        for nodeid in nodeids:
            self.by_address.setdefault(junit_address(nodeid), nodeid)
        self._files: Optional[dict[str, str]] = None

    def files(self) -> dict[str, str]:
        """Dotted module path (``tests.sub.test_x``) -> file path, for files under the rootdir."""
        if self._files is None:
            self._files = {}
            for nodeid in self.by_address.values():
                file = nodeid.split("::", 1)[0]
                self._files.setdefault(_dotted(file), file)
            for file in _walk(self.rootdir):
                self._files.setdefault(_dotted(file), file)
        return self._files

    def map(self, case: Case) -> Optional[str]:
        if "::" in case.name and _looks_like_path(case.name.split("::", 1)[0]):
            return case.name  # a dialect that writes whole node ids as names
        found = self.by_address.get((case.classname, case.name))
        if found is not None:
            return found
        if "::" in case.classname or "/" in case.classname:
            return f"{case.classname}::{case.name}"  # a dialect that writes paths as classnames
        parts = case.classname.split(".") if case.classname else []
        file = self._relative(case.file) if case.file else None
        if file:  # xunit1 and other dialects name the file
            dotted = _dotted(file).split(".")
            for start in range(len(parts) - len(dotted) + 1):
                if parts[start : start + len(dotted)] == dotted:
                    return "::".join([file, *parts[start + len(dotted) :], case.name])
            return f"{file}::{case.name}"  # a classname unrelated to the file
        files = self.files()
        # Longest module prefix first; a few leading components may be a --junit-prefix.
        for start in range(min(len(parts), 3)):
            for end in range(len(parts), start, -1):
                file = files.get(".".join(parts[start:end]))
                if file is not None:
                    return "::".join([file, *parts[end:], case.name])
        return None

    def _relative(self, file: str) -> Optional[str]:
        """``file`` relative to the rootdir; None for an absolute path outside it."""
        if not os.path.isabs(file):
            return file[2:] if file.startswith("./") else file
        try:
            return Path(file).relative_to(self.rootdir).as_posix()
        except ValueError:
            return None


def _dotted(file: str) -> str:
    return (file[: -len(".py")] if file.endswith(".py") else file).replace("/", ".")


def _looks_like_path(text: str) -> bool:
    return "/" in text or text.endswith(".py")


def _walk(rootdir: Path) -> Iterator[str]:
    for directory, dirs, files in os.walk(rootdir):
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".")
            and d not in SKIP_DIRS
            and not d.endswith(".egg")
            and not os.path.exists(os.path.join(directory, d, "pyvenv.cfg"))
        ]
        relative = os.path.relpath(directory, rootdir)
        for name in files:
            path = name if relative == "." else f"{relative}/{name}"
            yield path.replace(os.sep, "/")


def collect_nodeids(rootdir: Path) -> list[str]:
    """The node ids ``pytest --collect-only -q`` prints in ``rootdir`` (nothing recorded)."""
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:feedback"]
    try:
        done = subprocess.run(  # noqa: S603 (our interpreter, fixed arguments)
            command, cwd=rootdir, capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise JUnitError(f"cannot run pytest in {rootdir} ({exc}); pass --nodeids FILE") from exc
    nodeids = parse_nodeids(done.stdout.splitlines())
    if done.returncode not in (0, 5) and not nodeids:
        last = (done.stdout.strip().splitlines() or ["no output"])[-1]
        raise JUnitError(
            f"`pytest --collect-only` failed in {rootdir} (exit {done.returncode}: {last}); "
            "fix collection or pass --nodeids FILE"
        )
    return nodeids


def parse_nodeids(lines: Iterable[str]) -> list[str]:
    """Node ids from ``pytest --collect-only -q`` output or a file of them, one a line."""
    return [line.strip() for line in lines if "::" in line and not line.startswith(" ")]


# -- importing -------------------------------------------------------------------------------


def report_run(path: Path, mapper: NodeIdMapper) -> ImportResult:
    """One report as a `RunRecord` (uuid from its content) and the cases that did not map."""
    data, root = read_report(path)
    started, wall = _suite_times(root, path)
    cases = list(read_cases(root))
    run = RunRecord(
        uuid="junit-" + hashlib.sha256(data).hexdigest()[:26],
        started_at=started,
        finished_at=started + wall,
        wall_s=wall,
        args=["import-junit", path.name],
        rootdir=str(mapper.rootdir),
    )
    unmapped = []
    for case in cases:
        nodeid = mapper.map(case)
        if nodeid is None:
            unmapped.append(case)
            continue
        # JUnit gives one duration per test (pytest: set-up + call + tear-down).
        run.tests[nodeid] = TestRecord(nodeid, case.outcome, call_s=case.seconds)
    if not wall:
        run.wall_s = sum(t.call_s for t in run.tests.values())
        run.finished_at = started + run.wall_s
    return ImportResult(path, run if run.tests else None, len(cases), unmapped)


def import_reports(
    paths: Sequence[Path], db: Path, mapper: NodeIdMapper, *, keep_runs: int = 50
) -> tuple[list[ImportResult], int]:
    """Import ``paths`` into ``db``; returns the per-file results and how many runs were new."""
    from pytest_feedback.history.merge import merge_histories
    from pytest_feedback.history.store import Store

    results = [report_run(path, mapper) for path in paths]
    if db.is_file():
        # No history in it yet (a touched file) is no error here: nothing was recorded twice.
        with contextlib.suppress(FeedbackError):
            _find_recorded(results, db)
    runs = [r.run for r in results if r.run is not None and r.recorded_as is None]
    if not runs:
        return results, 0
    with tempfile.TemporaryDirectory(prefix="pytest-feedback-junit-") as tmp:
        staged = Path(tmp) / "junit.db"
        with Store(staged) as store:
            for run in sorted(runs, key=lambda r: r.started_at):
                store.record_run(run, keep_runs=0)
        # Merging orders the samples by start time, whatever order the reports come in.
        summary = merge_histories([staged], db, keep_runs=keep_runs)
    return results, summary.runs_added


#: How far apart a report's start and a recorded run's may be for one session (pytest writes the
#: JUnit timestamp when its session starts; the recorder takes its own a moment before).
SAME_SESSION_S = 5.0


def _find_recorded(results: Sequence[ImportResult], db: Path) -> None:
    """Set `ImportResult.recorded_as` for the reports of sessions the history recorded itself:
    a recorded run (not an import) that started within `SAME_SESSION_S` of the report and holds
    every test the report mapped."""
    from pytest_feedback.history.store import Store

    with Store(db, create=False, readonly=True) as store:
        runs = [r for r in store.reads.runs() if not str(r["uuid"]).startswith("junit-")]
        for result in results:
            if result.run is None:
                continue
            for run in runs:
                if abs(float(run["started_at"]) - result.run.started_at) > SAME_SESSION_S:
                    continue
                if int(run["tests"]) < len(result.run.tests):
                    continue
                recorded = {row["nodeid"] for row in store.reads.results(int(run["id"]))}
                if set(result.run.tests) <= recorded:
                    result.recorded_as = int(run["id"])
                    break
