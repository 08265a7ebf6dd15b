"""The repository the docs' blocks run in: examples/ as a git project of its own.

``checkout`` is the project as a reader clones it (a commit on ``main``, pushed to an ``origin``);
``given`` adds, next to it, the files the pages name as the reader's own (a JUnit report, history
files to merge), produced by real runs. It lives at ``$HOME/src/app`` of a home of its own, so
that ``~/src/app`` in a page is this repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
#: Files the pages treat as the reader's own; git ignores them (.git/info/exclude).
GIVEN = ["report.xml", "reports/", "a.db", "b.db", "ci.db", "shard-*/"]
#: Variables of the CI this suite itself may run in, which would change what the docs do.
_FOREIGN = ("PYTEST_", "GITHUB_", "GITLAB_", "CI_", "BUILDKITE", "CIRCLE", "TRAVIS", "BUILD_")


def clean_env(home: Path, bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN) and k != "CI"}
    env.update(
        HOME=str(home),
        PATH=f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
        EXAMPLE_PACE="0.01",  # the example suite's sleeps, 100 times shorter
        PYTEST_ADDOPTS="-p no:cacheprovider",
        GIT_AUTHOR_NAME="reader",
        GIT_AUTHOR_EMAIL="reader@example.com",
        GIT_COMMITTER_NAME="reader",
        GIT_COMMITTER_EMAIL="reader@example.com",
    )
    return env


def sh(cwd: Path, env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="session")
def shims(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip``: the project is installed in this interpreter already; ``pip install`` of it or
    of pytest-feedback succeeds without a download (anything else fails)."""
    bin_dir = tmp_path_factory.mktemp("shims")
    pip = bin_dir / "pip"
    pip.write_text(
        "#!/bin/sh\n"
        '[ "$1" = install ] || { echo "pip shim: only install" >&2; exit 1; }\n'
        "shift\n"
        'for a in "$@"; do case "$a" in -e|-q|.|pytest-feedback) ;; '
        '*) echo "pip shim: will not install $a" >&2; exit 1;; esac; done\n'
    )
    pip.chmod(0o755)
    return bin_dir


@pytest.fixture(scope="session")
def checkout(tmp_path_factory: pytest.TempPathFactory, shims: Path) -> Path:
    """examples/ committed on ``main`` and pushed to ``origin``: a fresh clone of a project."""
    home = tmp_path_factory.mktemp("checkout-home")
    repo = home / "src" / "app"
    repo.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", ".pytest-feedback", ".pytest_cache")
    for name in ("pytest.ini", "shop", "tests"):
        source = EXAMPLES / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=ignore)
        else:
            shutil.copy(source, repo / name)
    env = clean_env(home, shims)
    sh(repo, env, "git", "init", "-q", "-b", "main")
    sh(repo, env, "git", "add", "-A")
    sh(repo, env, "git", "commit", "-q", "-m", "the example project")
    sh(repo, env, "git", "clone", "-q", "--bare", ".", str(home / "origin.git"))
    sh(repo, env, "git", "remote", "add", "origin", str(home / "origin.git"))
    sh(repo, env, "git", "fetch", "-q", "origin")
    return repo


@pytest.fixture(scope="session")
def given(tmp_path_factory: pytest.TempPathFactory, checkout: Path, shims: Path) -> Path:
    """The checkout plus the reader's own files the pages name, made by real runs."""
    home = tmp_path_factory.mktemp("given-home")
    shutil.copytree(checkout.parents[1], home, dirs_exist_ok=True, symlinks=True)
    repo = home / "src" / "app"
    env = clean_env(home, shims)
    sh(repo, env, "pytest", "-q", "--junitxml=report.xml")
    (repo / "reports").mkdir()
    shutil.copy(repo / "report.xml", repo / "reports" / "nightly.xml")
    sh(repo, env, "pytest", "-q", "--feedback-db=a.db")
    for copy in ("b.db", "ci.db", "shard-1/history.db", "shard-2/history.db", "shard-3/history.db"):
        (repo / copy).parent.mkdir(exist_ok=True)
        shutil.copy(repo / "a.db", repo / copy)
    with (repo / ".git" / "info" / "exclude").open("a") as exclude:
        exclude.write("".join(f"{name}\n" for name in GIVEN))
    return repo
