"""The git side of the changes: what git sees changed, and file texts at a commit.

Never through a shell, always ``-z`` output; paths are translated to rootdir-relative ones.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

from pytest_feedback.errors import FeedbackError
from pytest_feedback.git import GitUnavailable, run_git

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
            raise ChangeError(self._unknown_ref(ref)) from None
        try:
            return self.git("merge-base", ref, "HEAD").strip()
        except GitUnavailable:
            raise ChangeError(
                f"no merge-base of {ref!r} and HEAD (a shallow clone? deepen it with "
                "`git fetch --unshallow` or fetch-depth: 0)"
            ) from None

    def _unknown_ref(self, ref: str) -> str:
        """Why ``ref`` is unknown, and the likeliest fix: a misspelt name (the nearest refs),
        else a ref not fetched (how to fetch it, when there is a remote)."""
        name = re.split(r"[~^@:]", ref, maxsplit=1)[0]  # main~3, main^, main@{1}
        try:
            refs = self.git(
                "for-each-ref",
                "--format=%(refname:short)",
                "refs/heads",
                "refs/remotes",
                "refs/tags",
            ).split()
            remotes = self.git("remote").split()
        except GitUnavailable:
            refs, remotes = [], []
        close = difflib.get_close_matches(name, refs, n=3, cutoff=0.6)
        if "/" in name and name.split("/", 1)[1] in refs:  # origin/main where main is here
            close = [name.split("/", 1)[1], *close]
        if close and name not in refs:
            guesses = " or ".join(map(repr, close))
            return f"the base ref {ref!r} is unknown here; did you mean {guesses}?"
        if not remotes:
            return (
                f"the base ref {ref!r} is unknown here, and this repository has no remote to "
                "fetch it from; give a branch, tag or commit it has (`git branch -a`)"
            )
        branch = name.split("/", 1)[1] if name.startswith(tuple(f"{r}/" for r in remotes)) else name
        return (
            f"the base ref {ref!r} is unknown here (not fetched, or a shallow clone?): fetch it, "
            f"e.g. `git fetch {remotes[0]} {branch}`, or check out with fetch-depth: 0"
        )

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
