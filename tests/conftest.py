from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pytest_feedback.history.store import Store

# The tests edit modules and run them again within a second, often at the same size ("x * 2" ->
# "x * 3"): a .pyc written by the run before would pass for the new text (same mtime second,
# same size) and the stale code would run. No bytecode, in this process and its children.
sys.dont_write_bytecode = True
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"


@pytest.fixture
def history(pytester: pytest.Pytester) -> Path:
    """Where `pytest --feedback` writes inside a pytester project."""
    return pytester.path / ".pytest-feedback" / "history.db"


def open_history(path: Path) -> Store:
    return Store.open_existing(path)
