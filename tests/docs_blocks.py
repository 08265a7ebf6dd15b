"""The code blocks of README.md and docs/ that a reader would copy, as the docs tests run them.

Every ``bash``, ``sh``, ``shell`` and ``console`` block is run by ``docs_tests/`` (a step of
scripts/test.sh) in a git repository made from examples/; the ``yaml`` blocks that are CI
pipelines (GitHub Actions, GitLab CI) are run as pipelines there. A block that cannot run on this
machine (it installs from PyPI, needs a tool we do not install) is marked in the page, right
before the block, with an HTML comment that says why::

    <!-- docs-test: not run: installs from PyPI -->

and its commands are still checked (the subcommands and options it uses exist). The marker and
this split are described in docs/architecture.md ("The docs are tests").
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Optional

from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
SHELLS = frozenset({"bash", "sh", "shell", "console"})
MARKER = re.compile(r"<!--\s*docs-test:\s*not run:\s*(?P<reason>[^>]*?)\s*-->")


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced block of a page."""

    page: str  # relative to the repository root
    line: int  # of the opening fence, 1-based
    info: str
    text: str
    #: Why it is not run (the page's marker); None: it is run.
    not_run: Optional[str]

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def kind(self) -> str:
        return self.info.split()[0] if self.info.split() else ""

    @property
    def is_hook(self) -> bool:
        """A file to save and execute (a git hook), not commands to type."""
        return self.text.startswith("#!")

    @property
    def is_pipeline(self) -> bool:
        return self.kind == "yaml" and bool(re.search(r"^(jobs|stages):", self.text, re.M))

    def commands(self) -> str:
        """The shell text a reader types: a console block's ``$ `` lines, else the block."""
        if self.kind != "console":
            return self.text
        lines = [line[2:] for line in self.text.splitlines() if line.startswith("$ ")]
        return "".join(f"{line}\n" for line in lines)


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(page: Path) -> list[Block]:
    tokens = MarkdownIt().parse(page.read_text(encoding="utf-8"))
    found = []
    for i, token in enumerate(tokens):
        if token.type != "fence" or token.map is None:
            continue
        before = tokens[i - 1] if i else None
        marker = MARKER.search(before.content) if before and before.type == "html_block" else None
        found.append(
            Block(
                page=page.relative_to(ROOT).as_posix(),
                line=token.map[0] + 1,
                info=token.info.strip(),
                text=token.content,
                not_run=marker.group("reason") if marker else None,
            )
        )
    return found


def shell_blocks() -> list[Block]:
    return [b for page in pages() for b in blocks(page) if b.kind in SHELLS]


def pipeline_blocks() -> list[Block]:
    return [b for page in pages() for b in blocks(page) if b.is_pipeline]
