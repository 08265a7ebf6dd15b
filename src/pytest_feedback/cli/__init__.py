"""The ``pytest-feedback`` command: reads the history a pytest run wrote."""

from pytest_feedback.cli.commands import main

__all__ = ["main"]
