"""Text and JSON views of the coverage map for ``pytest-feedback why`` and ``deps``."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Optional

from pytest_feedback.depmap.graph import DependencyMap, TestDeps
from pytest_feedback.errors import FeedbackError

_TARGET = re.compile(r"^(?P<path>.+?)(?::(?P<start>\d+)(?:-(?P<end>\d+))?)?$")


def project_path(arg: str, rootdir: Optional[Path], cwd: Path) -> str:
    """A path typed on the command line as the map spells it (rootdir-relative, POSIX)."""
    candidate = Path(arg)
    if rootdir is not None:
        absolute = candidate if candidate.is_absolute() else (cwd / candidate)
        try:
            return absolute.resolve().relative_to(rootdir.resolve()).as_posix()
        except ValueError:
            pass
    return candidate.as_posix()


def parse_target(
    target: str, rootdir: Optional[Path], cwd: Path
) -> tuple[str, Optional[set[int]], Optional[str]]:
    """``FILE``, ``FILE:LINE``, ``FILE:START-END`` or ``FILE::FUNCTION`` -> path, lines, name."""
    if "::" in target:
        path, _, function = target.partition("::")
        return project_path(path, rootdir, cwd), None, function
    match = _TARGET.match(target)
    if match is None or not match.group("path"):
        raise FeedbackError(f"{target!r} is not FILE, FILE:LINE, FILE:START-END or FILE::FUNCTION")
    path = project_path(match.group("path"), rootdir, cwd)
    if match.group("start") is None:
        return path, None, None
    start = int(match.group("start"))
    end = int(match.group("end") or start)
    if end < start:
        raise FeedbackError(f"{target!r}: the line range ends before it starts")
    return path, set(range(start, end + 1)), None


def current_state(rootdir: Optional[Path], path: str, recorded_sha1: str) -> str:
    """'' when the file is as recorded, else 'changed since recorded' or 'missing'."""
    if rootdir is None:
        return ""
    try:
        data = (rootdir / path).read_bytes()
    except OSError:
        return "missing now"
    sha1 = hashlib.sha1(data).hexdigest()
    return "" if sha1 == recorded_sha1 else "changed since recorded"


def why_lines(
    dmap: DependencyMap, nodeid: str, deps: TestDeps, rootdir: Optional[Path]
) -> list[str]:
    recorded = dmap.recorded_files()

    def state(path: str) -> str:
        text = current_state(rootdir, path, recorded.get(path, ""))
        return f"  ({text})" if text else ""

    lines = [f"{nodeid} depends on:"]
    if deps.outdated:
        lines.append("  (its map predates a change to a file it reached: run it again to refresh)")
    lines.append(
        f"  files ({len(deps.files)}), lines executed by the test, at import or collection:"
    )
    width = max((len(p) for p in deps.files), default=0)
    for path in sorted(deps.files):
        own = len(deps.own_files.get(path, ()))
        total = len(deps.files[path])
        detail = f"{total:>5} line{'s' * (total != 1)}" + (
            f" ({own} in the test)" if own and own != total else ""
        )
        lines.append(f"    {path:<{width}}  {detail}{state(path)}")
    lines.append(f"  import-time ({len(deps.import_time)} modules it uses):")
    lines.extend(f"    {path}{state(path)}" for path in sorted(deps.import_time))
    lines.append(f"  collection-time ({len(deps.collection_time)}):")
    lines.extend(f"    {path}{state(path)}" for path in sorted(deps.collection_time))
    lines.append(f"  reads ({len(deps.reads)} files):")
    lines.extend(f"    {path}{state(path)}" for path in sorted(deps.reads))
    installed = sorted(d for d in deps.dists if ":" not in d)
    missing = sorted(d.partition(":")[2] for d in deps.dists if ":" in d)
    lines.append(f"  installed distributions ({len(installed)}): {', '.join(installed) or '-'}")
    if missing:
        lines.append(f"  imports it looked for, not installed: {', '.join(missing)}")
    if deps.spawned:
        verdict = (
            "depends on all project code (not all could be measured)" if deps.spawns else "measured"
        )
        lines.append(f"  spawns: {deps.spawned} processes, {deps.measured} measured; {verdict}")
    else:
        lines.append("  spawns: none")
    return lines


def why_json(nodeid: str, deps: TestDeps) -> dict[str, Any]:
    return {
        "version": 1,
        "nodeid": nodeid,
        "files": {path: sorted(lines) for path, lines in sorted(deps.files.items())},
        "import_time": sorted(deps.import_time),
        "collection_time": sorted(deps.collection_time),
        "reads": sorted(deps.reads),
        "spawned": deps.spawned,
        "measured": deps.measured,
        "spawns": deps.spawns,
        "outdated": deps.outdated,
        "distributions": sorted(deps.dists),
    }


def deps_lines(target: str, reaching: dict[str, str]) -> list[str]:
    if not reaching:
        return [f"no recorded test reaches {target}"]
    noun = "test reaches" if len(reaching) == 1 else "tests reach"
    lines = [f"{len(reaching)} {noun} {target}:"]
    width = max(len(n) for n in reaching)
    lines.extend(f"  {nodeid:<{width}}  {reaching[nodeid]}" for nodeid in sorted(reaching))
    return lines
