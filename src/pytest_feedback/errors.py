"""The exceptions pytest-feedback raises: one base class, one line each."""

from __future__ import annotations


class FeedbackError(Exception):
    """Base class of every error pytest-feedback reports to a user.

    The message is one line that names the problem and, where there is one, the fix.
    """


class HistoryError(FeedbackError):
    """The history file cannot be opened, read or written."""


class ConfigError(FeedbackError):
    """An option or setting has a value we cannot use."""
