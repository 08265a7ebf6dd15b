"""Running git: the commit, branch and dirty flag of a working tree, never through a shell."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Optional

GIT_TIMEOUT_S = 10.0


class GitUnavailable(Exception):
    """git is not installed, the directory is not a repository, or git failed."""


def run_git(cwd: Path, *args: str, timeout: float = GIT_TIMEOUT_S) -> str:
    """Run ``git ARGS`` in ``cwd`` and return its standard output; raise `GitUnavailable`."""
    try:
        proc = subprocess.run(  # noqa: S603 - an argument list, no shell
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise GitUnavailable(f"git {args[0]}: {exc}") from exc
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitUnavailable(f"git {args[0]}: {message[0] if message else proc.returncode}")
    return proc.stdout.decode("utf-8", "surrogateescape")


@dataclasses.dataclass(frozen=True)
class GitState:
    commit: Optional[str] = None
    branch: Optional[str] = None
    dirty: Optional[bool] = None


def git_state(cwd: Path) -> GitState:
    """The HEAD commit, branch (None when detached) and whether tracked files have edits."""
    try:
        commit = run_git(cwd, "rev-parse", "--verify", "-q", "HEAD").strip() or None
    except GitUnavailable:
        return GitState()
    try:
        branch: Optional[str] = run_git(cwd, "symbolic-ref", "-q", "--short", "HEAD").strip()
    except GitUnavailable:
        branch = None
    try:
        dirty: Optional[bool] = bool(
            run_git(cwd, "status", "--porcelain", "--untracked-files=no").strip()
        )
    except GitUnavailable:
        dirty = None
    return GitState(commit, branch or None, dirty)
