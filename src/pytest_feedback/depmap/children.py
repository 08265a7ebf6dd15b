"""Measuring the Python child processes a test starts (``--feedback-cov``).

coverage.py measures a Python child when ``COVERAGE_PROCESS_CONFIG`` holds a serialized
configuration (and the ``subprocess`` patch carries it on to grandchildren); how that works is
coverage.py's private business, kept in `coverage_internals.child_config`. Around each test the
variable names the test as the child's static context; each child writes its own data file in a
temporary directory, read back at the end of the run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Generator, Sequence
from typing import Callable, Optional

from pytest_feedback.depmap.coverage_internals import CHILD_CONFIG_VARIABLE, child_config

_DATA = ".feedback-sub"
#: Stands for the context label in the serialized child configuration.
_PLACEHOLDER = "@@feedback-context@@"


class ChildMeasurement:
    def __init__(
        self,
        include: Sequence[str],
        omit: Sequence[str],
        quiet: Sequence[str],
        core: Optional[str] = None,
    ) -> None:
        self._include = list(include)
        self._omit = list(omit)
        self._quiet = list(quiet)
        self._core = core
        self._dir: Optional[str] = None
        self._config: Optional[Callable[[str], str]] = None

    def start(self) -> None:
        """Prepare the data directory and the configuration children will read."""
        directory = tempfile.mkdtemp(prefix="feedback-cov-")
        self._dir = directory
        self._config = child_config(
            data_file=os.path.join(directory, _DATA),
            include=self._include,
            omit=self._omit,
            quiet=self._quiet,
            core=self._core,
            placeholder=_PLACEHOLDER,
        )

    @contextlib.contextmanager
    def around(self, label: str) -> Generator[None, None, None]:
        """Children started inside the block are measured with ``label`` as their context."""
        if self._config is None:
            yield
            return
        previous = os.environ.get(CHILD_CONFIG_VARIABLE)
        os.environ[CHILD_CONFIG_VARIABLE] = self._config(label)
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop(CHILD_CONFIG_VARIABLE, None)
            else:
                os.environ[CHILD_CONFIG_VARIABLE] = previous

    def data_files(self) -> list[str]:
        """The data files the children wrote, in a stable order."""
        if not self._dir or not os.path.isdir(self._dir):
            return []
        names = sorted(n for n in os.listdir(self._dir) if n.startswith(_DATA + "."))
        return [os.path.join(self._dir, n) for n in names]

    def cleanup(self) -> None:
        """Remove the data directory. Idempotent."""
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
