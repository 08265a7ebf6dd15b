"""What changed: the files and lines that differ between a recorded state and the working tree.

Two sources are combined. The coverage map keeps a snapshot of every file it recorded, so the
difference between the recorded content and the working tree is computed here with `difflib`,
without git. git (never through a shell, always ``-z`` output) adds the files the map never saw:
staged, unstaged and untracked ones, and with a base ref everything since ``merge-base(REF,
HEAD)``. Changed lines are reported in the map's recorded coordinates; a hunk whose code tokens are
unchanged (comments, blank lines, docstrings) changes nothing.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import hashlib
import io
import tokenize
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Optional, Protocol

from pytest_feedback.errors import FeedbackError
from pytest_feedback.git import GitUnavailable, run_git

#: Token types that never change what code does.
_IGNORED_TOKENS = frozenset(
    {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER, tokenize.TYPE_COMMENT}
)


#: Directories and suffixes of files that tools write while tests run: never a change.
_NOISE_DIRS = frozenset(
    {"__pycache__", ".pytest-feedback", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox",
     ".nox", ".hypothesis", ".git"}
)  # fmt: skip
_NOISE_SUFFIXES = (".pyc", ".pyo")
_NOISE_PREFIXES = (".coverage", ".testmondata")


def is_noise(path: str) -> bool:
    """Whether a rootdir-relative path is a cache or tool output rather than project content."""
    parts = path.split("/")
    name = parts[-1]
    return (
        any(part in _NOISE_DIRS for part in parts[:-1])
        or name.endswith(_NOISE_SUFFIXES)
        or name.startswith(_NOISE_PREFIXES)
    )


class ChangeError(FeedbackError):
    """The changes cannot be determined (no git, an unknown base ref); selection runs all."""


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


def _neighbours(lines: Sequence[str], at: int, inserted: Sequence[str]) -> set[int]:
    """1-based lines of ``lines`` around an insertion before index ``at`` (0-based).

    A neighbour counts when it belongs to the same block as the inserted text (indented at least as
    deeply); when neither does, both count.
    """
    depth = min((_indent(x) for x in inserted if x.strip()), default=0)
    found: set[int] = set()
    candidates: list[int] = []
    before = at - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    after = at
    while after < len(lines) and not lines[after].strip():
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
            old_changed |= _neighbours(old, i1, new[j1:j2])
        if j2 > j1:
            new_changed.update(range(j1 + 1, j2 + 1))
        else:
            new_changed |= _neighbours(new, j1, old[i1:i2])
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


# -- git ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GitChange:
    path: str
    status: str
    old_path: Optional[str] = None


def _split_z(output: str) -> Iterator[str]:
    return (part for part in output.split("\0") if part)


def parse_name_status(output: str) -> list[GitChange]:
    """Parse ``git diff --name-status -z`` output: status, then one path or two (R, C)."""
    parts = output.split("\0")
    changes: list[GitChange] = []
    i = 0
    while i < len(parts) and parts[i]:
        code = parts[i]
        kind = code[0]
        if kind in "RC":
            old, new = parts[i + 1], parts[i + 2]
            i += 3
            if kind == "R":
                changes.append(GitChange(new, "renamed", old))
            else:
                changes.append(GitChange(new, "added"))
            continue
        path = parts[i + 1]
        i += 2
        status = {"A": "added", "D": "deleted"}.get(kind, "modified")
        changes.append(GitChange(path, status))
    return changes


class Repository:
    """The git repository around a pytest rootdir; paths are translated to rootdir-relative."""

    def __init__(self, rootdir: Path) -> None:
        self.rootdir = rootdir
        try:
            top = run_git(rootdir, "rev-parse", "--show-toplevel").strip()
        except GitUnavailable as exc:
            raise ChangeError(f"git is not available here ({exc})") from exc
        self.toplevel = Path(top)
        try:
            rel = rootdir.resolve().relative_to(self.toplevel.resolve()).as_posix()
        except ValueError:
            rel = "."
        self.prefix = "" if rel == "." else rel + "/"

    def git(self, *args: str) -> str:
        return run_git(self.toplevel, *args)

    def local(self, path: str) -> Optional[str]:
        """A toplevel-relative path as rootdir-relative, None when outside the rootdir."""
        if not self.prefix:
            return path
        return path[len(self.prefix) :] if path.startswith(self.prefix) else None

    def merge_base(self, ref: str) -> str:
        try:
            self.git("rev-parse", "--verify", "-q", f"{ref}^{{commit}}")
        except GitUnavailable:
            raise ChangeError(
                f"the base ref {ref!r} is unknown here (a shallow clone? fetch it, e.g. "
                f"`git fetch origin {ref.split('/')[-1]}` or checkout with fetch-depth: 0)"
            ) from None
        try:
            return self.git("merge-base", ref, "HEAD").strip()
        except GitUnavailable:
            raise ChangeError(
                f"no merge-base of {ref!r} and HEAD (a shallow clone? deepen it with "
                "`git fetch --unshallow` or fetch-depth: 0)"
            ) from None

    def has_head(self) -> bool:
        try:
            self.git("rev-parse", "--verify", "-q", "HEAD")
        except GitUnavailable:
            return False
        return True

    def changes_since(self, commit: Optional[str]) -> list[GitChange]:
        """Tracked changes from ``commit`` (default HEAD) to the working tree, plus untracked."""
        found: list[GitChange] = []
        try:
            if commit is None and not self.has_head():
                listed = self.git("ls-files", "-z", "--cached")
                found = [GitChange(p, "added") for p in _split_z(listed)]
            else:
                out = self.git("diff", "--name-status", "-z", "-M", commit or "HEAD", "--")
                found = parse_name_status(out)
            untracked = self.git("ls-files", "-z", "--others", "--exclude-standard")
        except GitUnavailable as exc:
            raise ChangeError(f"git could not list the changes ({exc})") from exc
        found.extend(GitChange(p, "added") for p in _split_z(untracked))
        local: list[GitChange] = []
        for change in found:
            path = self.local(change.path)
            if path is None or is_noise(path):
                continue
            old = self.local(change.old_path) if change.old_path else None
            local.append(dataclasses.replace(change, path=path, old_path=old))
        return local

    def show(self, commit: str, path: str) -> Optional[str]:
        """The text of rootdir-relative ``path`` at ``commit``; None when absent or binary."""
        try:
            data = self.git("show", f"{commit}:{self.prefix}{path}")
        except GitUnavailable:
            return None
        return None if "\0" in data else data


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
    repo = Repository(rootdir)
    base_commit = repo.merge_base(base) if base else None
    git_changes = {c.path: c for c in repo.changes_since(base_commit)}
    snapshots = recorded.recorded_files()
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


def _file_change(
    repo: Repository,
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
    if base_commit is not None:
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
        head = repo.show("HEAD", old_path or change.path) if status != "added" else None
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
