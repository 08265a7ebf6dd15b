"""Every block of README.md and docs/ that a reader would copy, run as the reader would.

A page's shell blocks run in order (later blocks use what earlier ones recorded) in a copy of the
``given`` repository (conftest.py); a block must exit 0 and print no error, warning or traceback.
Git hooks (blocks that start with ``#!``) are saved and executed as hooks. The CI recipes run as
two pipelines (no cache, then the restored history) with their shards merged. Blocks marked
``<!-- docs-test: not run: REASON -->`` are checked through their commands instead.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pipelines import GitHubRun, GitLabRun

from conftest import clean_env, sh

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from docs_blocks import Block, pipeline_blocks, shell_blocks
from pytest_feedback.cli.commands import build_parser

#: What a block's output must not contain.
TROUBLE = ("Traceback", "INTERNALERROR", "pytest-feedback: error", "feedback: warning", "ERROR:")

RUN = [b for b in shell_blocks() if b.not_run is None]
PAGES = sorted({b.page for b in RUN})


def run_block(block: Block, repo: Path, env: dict[str, str]) -> str:
    if block.is_hook:
        hook = repo / ".git" / "hooks" / "pre-push"
        hook.write_text(block.text)
        hook.chmod(0o755)
        argv = [str(hook), "origin", "unused-url"]
    else:
        argv = ["bash", "-e", "-o", "pipefail", "-c", block.commands()]
    proc = subprocess.run(
        argv,
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{block.name} exited {proc.returncode}:\n{block.text}\n{output}"
    trouble = [line for line in output.splitlines() if any(t in line for t in TROUBLE)]
    assert not trouble, f"{block.name} printed trouble:\n{block.text}\n{output}"
    return output


@pytest.mark.parametrize("page", PAGES)
def test_page_blocks_run(page: str, given: Path, shims: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(given.parents[1], home, symlinks=True)
    repo = home / "src" / "app"
    env = clean_env(home, shims)
    env["GITHUB_STEP_SUMMARY"] = str(tmp_path / "summary.md")
    for block in (b for b in RUN if b.page == page):
        run_block(block, repo, env)


def test_every_page_with_commands_is_run_or_says_why() -> None:
    blocks = shell_blocks()
    assert len(RUN) >= 15, "the docs' blocks were not found"
    for block in blocks:
        if block.not_run is not None:
            assert block.not_run.strip(), f"{block.name}: the marker must say why"


@pytest.mark.parametrize("block", [b for b in shell_blocks() if b.not_run], ids=lambda b: b.name)
def test_blocks_not_run_use_real_commands(block: Block) -> None:
    """What cannot run here still names real commands: a pytest-feedback subcommand line parses,
    a pip install names this project, pre-commit names a hook this repository ships."""
    root = Path(__file__).resolve().parents[1]
    checked = 0
    for line in block.commands().splitlines():
        words = shlex.split(re.sub(r"\[[^\]]*\]", "", line), comments=True)  # a synopsis' [...]
        for command in " ".join(words).split(" && "):
            argv = command.split()
            if not argv:
                continue
            name = Path(argv[0]).name
            if name == "pytest-feedback":
                build_parser().parse_args(argv[1:])
            elif name == "pip" and argv[1:2] == ["install"]:
                assert "pytest-feedback" in argv or "." in argv or "-e" in argv, line
            elif name == "pre-commit":
                hooks = (root / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
                assert "id: pytest-feedback" in hooks
                assert "stages: [pre-push]" in hooks
                assert argv[1:] == ["install", "--hook-type", "pre-push"], line
            elif name == "bash":
                assert all((root / a).is_file() for a in argv[1:]), line
            elif name == "pytest":
                options = [a.split("=")[0] for a in argv[1:] if a.startswith("--feedback")]
                assert all(o in _pytest_help() for o in options), line
            else:
                continue
            checked += 1
    assert checked, f"{block.name}: no command of it was checked"


@functools.cache
def _pytest_help() -> str:
    """`pytest --help` of this installation: the options a block may use."""
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True, check=True
    ).stdout
    return out


# --- the CI recipes ------------------------------------------------------------------------------


def _recipe(kind: str) -> str:
    for block in pipeline_blocks():
        if (kind == "github") == bool(re.search(r"^jobs:", block.text, re.M)):
            return block.text
    raise AssertionError(f"no {kind} recipe in the docs")


def _pipeline_runs(db: Path) -> list[tuple[str, int, object]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT pipeline, tests, shard FROM runs ORDER BY started_at").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_ci_recipe_first_and_second_pipeline(
    kind: str, checkout: Path, shims: Path, tmp_path: Path
) -> None:
    recipe = _recipe(kind)
    caches = tmp_path / "caches"
    caches.mkdir()
    env = clean_env(checkout.parents[1], shims)
    env["CI"] = "true"
    saved: list[Path] = []
    for number in (1, 2):  # no cache, then the history the first one saved
        work = tmp_path / f"pipeline-{number}"
        work.mkdir()
        if kind == "github":
            env.update(
                GITHUB_ACTIONS="true", GITHUB_REPOSITORY="org/app", GITHUB_RUN_ID=str(number)
            )
            github = GitHubRun(checkout, work, env, caches, run_id=number)
            outputs = github.run(recipe)
            matrix = json.loads(outputs["plan"]["matrix"])
            assert len(matrix["include"]) == 4
            assert "| " in github.summary.read_text(), "no report in the job summary"
        else:
            env.update(GITLAB_CI="true", CI_PIPELINE_ID=str(number), CI_PROJECT_PATH="group/app")
            env["CI_COMMIT_REF_SLUG"] = "main"
            GitLabRun(checkout, work, env, caches).run(recipe)
            assert "| " in (work / "artifacts" / "feedback-report.md").read_text()
        saved = sorted(caches.rglob("history.db"), key=lambda p: p.stat().st_mtime_ns)
        assert saved, f"pipeline {number} saved no history"
    runs = _pipeline_runs(saved[-1])
    # One run per pipeline: its 4 shards folded into one holding all 43 tests.
    assert [(tests, shard) for _, tests, shard in runs] == [(43, None), (43, None)], runs
    assert len({pipeline for pipeline, _, _ in runs}) == 2


def test_readme_first_command_is_what_scripts_test_sh_runs() -> None:
    """The README's first command runs in scripts/test.sh (it sets up this project itself)."""
    root = Path(__file__).resolve().parents[1]
    first = next(b for b in shell_blocks() if b.page == "README.md")
    script = (root / "scripts" / "test.sh").read_text(encoding="utf-8")
    assert "README.md" in script
    assert first.commands().splitlines()[1] == "bash scripts/test.sh"
    out = sh(root, clean_env(Path.home(), root), "bash", "-c", _first_line_of_readme(script))
    assert out.splitlines()[0] == first.commands().splitlines()[0]


def _first_line_of_readme(script: str) -> str:
    """scripts/test.sh's own way to read the README's first command, printed."""
    line = next(x for x in script.splitlines() if x.startswith("README_FIRST="))
    return line + '\nprintf "%s\\n" "$README_FIRST"'
