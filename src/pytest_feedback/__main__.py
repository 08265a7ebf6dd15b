"""``python -m pytest_feedback``: the same as the ``pytest-feedback`` command."""

from __future__ import annotations

import sys

from pytest_feedback.cli import main

if __name__ == "__main__":
    sys.exit(main())
