from __future__ import annotations

from pathlib import Path

import pytest

from pytest_feedback.history.store import Store


@pytest.fixture
def history(pytester: pytest.Pytester) -> Path:
    """Where `pytest --feedback` writes inside a pytester project."""
    return pytester.path / ".pytest-feedback" / "history.db"


def open_history(path: Path) -> Store:
    return Store.open_existing(path)
