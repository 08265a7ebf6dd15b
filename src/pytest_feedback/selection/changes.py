"""What changed: the files and lines that differ between a recorded state and the working tree.

Two sources are combined. The coverage map keeps a snapshot of every file it recorded, so the
difference between the recorded content and the working tree is computed here with `difflib`,
without git. git (`repository`) adds the files the map never saw: staged, unstaged and untracked
ones, and with a base ref everything since ``merge-base(REF, HEAD)``; outside a repository new
conftest.py files are looked for instead (a new module counts through the edit that imports it,
a new test file as new tests). Changed lines are reported in the map's recorded coordinates;
a hunk whose code tokens are unchanged (comments, blank lines, docstrings) changes nothing.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import hashlib
import io
import tokenize
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Optional, Protocol

from pytest_feedback.selection.repository import ChangeError as ChangeError
from pytest_feedback.selection.repository import GitChange
from pytest_feedback.selection.repository import Repository as Repository
from pytest_feedback.selection.repository import is_noise as is_noise
from pytest_feedback.selection.repository import parse_name_status as parse_name_status

#: Token types that never change what code does.
_IGNORED_TOKENS = frozenset(
    {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER, tokenize.TYPE_COMMENT}
)


class RecordedFiles(Protocol):
    """What `changes` needs of the coverage map (a subset of `graph.DependencyMap`)."""

    def recorded_files(self) -> dict[str, str]: ...

    def recorded_source(self, path: str) -> Optional[str]: ...


@dataclasses.dataclass(frozen=True)
class FileChange:
    """One changed file, by its current rootdir-relative POSIX path."""

    path: str
    #: ``added``, ``modified``, ``deleted`` or ``renamed``.
    status: str
    #: The path the map (or the base) knows the file by, when it was renamed.
    old_path: Optional[str] = None
    #: Changed lines in the map's recorded coordinates; None: the whole file counts as changed.
    lines: Optional[frozenset[int]] = None
    #: Only comments, blank lines or docstrings changed: the code is the same.
    trivial: bool = False
    #: Changed lines of the current file (what the change says, for ranking: `affinity`);
    #: None when not known line by line.
    new_lines: Optional[frozenset[int]] = None

    @property
    def is_python(self) -> bool:
        return self.path.endswith(".py")

    @property
    def recorded_path(self) -> str:
        return self.old_path or self.path


@dataclasses.dataclass(frozen=True)
class ChangeSet:
    """All changes against one state: the map's recording, or ``merge-base(base, HEAD)``."""

    files: dict[str, FileChange]
    #: The base ref the user gave and the merge-base commit it resolved to.
    base: Optional[str] = None
    base_commit: Optional[str] = None

    @property
    def significant(self) -> list[FileChange]:
        return [c for c in self.files.values() if not c.trivial]


# -- line-level differences ---------------------------------------------------------------------


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _neighbours(
    lines: Sequence[str], at: int, inserted: Sequence[str], python: bool = False
) -> set[int]:
    """1-based lines of ``lines`` around an insertion before index ``at`` (0-based).

    A neighbour counts when it belongs to the same block as the inserted text (indented at least as
    deeply); when neither does, both count. In Python, comment lines are no neighbours (no test
    runs them): code inserted between two comments marks the code lines around them.
    """
    depth = min((_indent(x) for x in inserted if x.strip()), default=0)
    found: set[int] = set()
    candidates: list[int] = []

    def blank(line: str) -> bool:
        return not line.strip() or (python and line.lstrip().startswith("#"))

    before = at - 1
    while before >= 0 and blank(lines[before]):
        before -= 1
    after = at
    while after < len(lines) and blank(lines[after]):
        after += 1
    for index in (before, after):
        if 0 <= index < len(lines):
            candidates.append(index)
            if _indent(lines[index]) >= depth:
                found.add(index + 1)
    return found or {i + 1 for i in candidates}


@dataclasses.dataclass(frozen=True)
class LineDiff:
    """The changed lines of a text on both sides, and a map of unchanged new lines to old ones."""

    old: frozenset[int]
    new: frozenset[int]
    new_to_old: dict[int, int]
    trivial: bool


def diff_lines(old_text: str, new_text: str, *, python: bool = False) -> LineDiff:
    """Lines (1-based) that changed in ``old_text`` and in ``new_text``.

    A replaced or deleted range marks its old lines, an inserted range the old lines around it
    (and vice versa for the new side). With ``python``, hunks whose code tokens are equal
    (comments, blank lines, docstrings) mark nothing.
    """
    old = old_text.splitlines()
    new = new_text.splitlines()
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    old_sig = _significant_tokens(old_text) if python else None
    new_sig = _significant_tokens(new_text) if python else None
    old_changed: set[int] = set()
    new_changed: set[int] = set()
    new_to_old: dict[int, int] = {}
    any_change = False
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                new_to_old[j1 + k + 1] = i1 + k + 1
            continue
        if (
            old_sig is not None
            and new_sig is not None
            and _region(old_sig, i1, i2) == _region(new_sig, j1, j2)
        ):
            for k in range(min(i2 - i1, j2 - j1)):
                new_to_old[j1 + k + 1] = i1 + k + 1
            continue
        any_change = True
        if i2 > i1:
            old_changed.update(range(i1 + 1, i2 + 1))
        else:
            old_changed |= _neighbours(old, i1, new[j1:j2], python)
        if j2 > j1:
            new_changed.update(range(j1 + 1, j2 + 1))
        else:
            new_changed |= _neighbours(new, j1, old[i1:i2], python)
    if old_sig is not None and new_sig is not None and not any_change and old_text != new_text:
        return LineDiff(frozenset(), frozenset(), new_to_old, True)
    return LineDiff(frozenset(old_changed), frozenset(new_changed), new_to_old, False)


Token = tuple[int, str]


def _significant_tokens(text: str) -> Optional[dict[int, list[Token]]]:
    """Per 1-based line, the code tokens starting on it: no comments, blank lines or docstrings.

    None when the text does not tokenize or parse (then every difference counts).
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            docstrings.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    per_line: dict[int, list[Token]] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in _IGNORED_TOKENS or tok.start[0] in docstrings:
                continue
            per_line.setdefault(tok.start[0], []).append((tok.type, tok.string))
    except (tokenize.TokenError, SyntaxError):
        return None
    return per_line


def _region(tokens: dict[int, list[Token]], start: int, stop: int) -> list[Token]:
    """Tokens of 0-based lines ``start`` to ``stop`` (exclusive)."""
    out: list[Token] = []
    for line in range(start + 1, stop + 1):
        out.extend(tokens.get(line, ()))
    return out


# -- putting it together ------------------------------------------------------------------------


def _read_text(path: Path) -> Optional[str]:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data:
        return None
    return data.decode("utf-8", "surrogateescape")


def _sha1(path: Path) -> Optional[str]:
    try:
        return hashlib.sha1(path.read_bytes()).hexdigest()
    except OSError:
        return None


def collect_changes(
    rootdir: Path, recorded: RecordedFiles, base: Optional[str] = None
) -> ChangeSet:
    """The changes selection works from; raises `ChangeError` when they cannot be known.

    Without ``base``: what differs from the map's snapshots, plus what git sees as staged,
    unstaged or untracked. With ``base``: additionally everything since merge-base(base, HEAD).
    """
    snapshots = recorded.recorded_files()
    repo: Optional[Repository] = None
    try:
        repo = Repository(rootdir)
    except ChangeError:
        if base:  # a base ref means git
            raise
    base_commit = repo.merge_base(base) if repo is not None and base else None
    if repo is not None:
        git_changes = {c.path: c for c in repo.changes_since(base_commit)}
    else:  # no git: the snapshots say what changed; new conftest.py files are looked for
        git_changes = {p: GitChange(p, "added") for p in _new_conftests(rootdir, snapshots)}
    renamed_from = {c.old_path: c.path for c in git_changes.values() if c.old_path}

    paths: set[str] = set(git_changes)
    for path, digest in snapshots.items():
        current = renamed_from.get(path, path)
        if _sha1(rootdir / current) != digest:
            paths.add(current)
            if current == path and not (rootdir / path).exists():
                git_changes.setdefault(path, GitChange(path, "deleted"))
    files: dict[str, FileChange] = {}
    for path in sorted(paths):
        gchange = git_changes.get(path, GitChange(path, "modified"))
        change = _file_change(repo, rootdir, recorded, snapshots, gchange, base_commit)
        if change is not None:
            files[path] = change
    return ChangeSet(files, base, base_commit)


def _new_conftests(rootdir: Path, snapshots: dict[str, str]) -> list[str]:
    """conftest.py files the map never saw, in the folders of its files and above them."""
    folders = {""}
    for path in snapshots:
        parts = path.split("/")[:-1]
        folders.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    found = [f"{f}/conftest.py" if f else "conftest.py" for f in folders]
    return sorted(p for p in found if p not in snapshots and (rootdir / p).is_file())


def _file_change(
    repo: Optional[Repository],
    rootdir: Path,
    recorded: RecordedFiles,
    snapshots: dict[str, str],
    change: GitChange,
    base_commit: Optional[str],
) -> Optional[FileChange]:
    old_path = change.old_path
    recorded_path = old_path if old_path and old_path in snapshots else change.path
    status = change.status
    if (
        base_commit is None
        and recorded_path in snapshots
        and _sha1(rootdir / change.path) == snapshots[recorded_path]
    ):
        return None  # git sees an edit, but the map was recorded with it already
    if status == "deleted" or not (rootdir / change.path).exists():
        return FileChange(change.path, "deleted", old_path)
    if not change.path.endswith(".py"):
        return FileChange(change.path, status, old_path)
    current = _read_text(rootdir / change.path)
    if current is None:
        return FileChange(change.path, status, old_path)
    old_lines: set[int] = set()
    trivial = True
    known = recorded_path in snapshots
    snapshot = recorded.recorded_source(recorded_path) if known else None
    if known and snapshot is None:
        return FileChange(change.path, status, old_path)  # mapped, but no text to diff against
    new_to_old: Optional[dict[int, int]] = None
    new_lines: set[int] = set()
    if snapshot is not None:
        diff = diff_lines(snapshot, current, python=True)
        old_lines |= diff.old
        new_lines |= diff.new
        trivial = diff.trivial or not (diff.old or diff.new)
        new_to_old = diff.new_to_old
    if repo is not None and base_commit is not None:
        base_text = repo.show(base_commit, old_path or change.path)
        if base_text is None:  # added since the base
            if new_to_old is None:
                return FileChange(change.path, status, old_path)
            trivial = False
            old_lines.update(new_to_old.values())
        else:
            since = diff_lines(base_text, current, python=True)
            if not since.trivial and (since.new or since.old):
                trivial = False
                if new_to_old is None:
                    return FileChange(change.path, status, old_path)
                old_lines.update(new_to_old[n] for n in since.new if n in new_to_old)
                new_lines |= since.new
    elif snapshot is None:
        # Not in the map and no base: git says it differs from HEAD; the whole file counts.
        head = None
        if repo is not None and status != "added":
            head = repo.show("HEAD", old_path or change.path)
        if head is not None and diff_lines(head, current, python=True).trivial:
            return FileChange(change.path, status, old_path, frozenset(), True)
        return FileChange(change.path, status, old_path)
    if trivial and not old_lines:
        return FileChange(change.path, status, old_path, frozenset(), True)
    return FileChange(
        change.path, status, old_path, frozenset(old_lines), new_lines=frozenset(new_lines)
    )


def describe_lines(lines: Iterable[int], limit: int = 6) -> str:
    """``12-14, 20`` for a set of line numbers, shortened to ``limit`` ranges."""
    ordered = sorted(set(lines))
    ranges: list[str] = []
    start = prev = None
    for n in ordered:
        if start is None:
            start = prev = n
        elif prev is not None and n == prev + 1:
            prev = n
        else:
            ranges.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = n
    if start is not None:
        ranges.append(f"{start}" if start == prev else f"{start}-{prev}")
    if len(ranges) > limit:
        return ", ".join(ranges[:limit]) + ", ..."
    return ", ".join(ranges)
