"""Measuring the Python child processes a test starts (``--feedback-cov``).

coverage.py 7.10+ measures a Python child when ``COVERAGE_PROCESS_CONFIG`` holds a serialized
configuration (and the ``subprocess`` patch carries it on to grandchildren). Around each test the
variable names the test as the child's static context; each child writes its own data file in a
temporary directory, read back at the end of the run.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Generator, Sequence
from typing import Callable, Optional

_DATA = ".feedback-sub"
#: Stands for the context label in the serialized child configuration.
_PLACEHOLDER = "@@feedback-context@@"
_VARIABLE = "COVERAGE_PROCESS_CONFIG"


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
        try:
            from coverage.config import CoverageConfig
        except ImportError:  # pragma: no cover - coverage>=7.10 is a dependency
            return
        self._dir = tempfile.mkdtemp(prefix="feedback-cov-")
        config = CoverageConfig()
        config.data_file = os.path.join(self._dir, _DATA)
        config.parallel = True
        config.run_include = self._include
        config.run_omit = self._omit
        config.context = _PLACEHOLDER
        config.patch = ["subprocess"]
        config.disable_warnings = self._quiet
        config.config_file = "feedback"
        if self._core:
            config.core = self._core
        template = base64.b64decode(config.serialize()).decode()
        if _PLACEHOLDER not in template:
            return

        def serialized(label: str) -> str:
            text = template.replace(_PLACEHOLDER, json.dumps(label)[1:-1])
            return base64.b64encode(text.encode()).decode()

        self._config = serialized

    @contextlib.contextmanager
    def around(self, label: str) -> Generator[None, None, None]:
        """Children started inside the block are measured with ``label`` as their context."""
        if self._config is None:
            yield
            return
        previous = os.environ.get(_VARIABLE)
        os.environ[_VARIABLE] = self._config(label)
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop(_VARIABLE, None)
            else:
                os.environ[_VARIABLE] = previous

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
