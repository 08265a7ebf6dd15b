"""A decision made at collection time that one terminal line reports, also under pytest-xdist.

Under xdist the controller collects nothing: every worker decides on its own collection (the
decisions are deterministic, so they agree) and sends its line back through
``config.workeroutput``; the controller prints the first one it receives in the terminal summary.
Without xdist the line is printed right after collection.
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional

import pytest


class CollectionLine:
    """Base of the session objects of ``--feedback-select`` and ``--feedback-budget``."""

    #: The ``workeroutput`` key under which a worker sends the line.
    line_key: ClassVar[str]

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.line: Optional[str] = None
        self.is_worker = hasattr(config, "workerinput")
        self.line_from_worker = False
        #: This decision deselected every test that was left: "no tests ran" is then no failure
        #: (the line says why), see `plugin.pytest_sessionfinish`.
        self.emptied = False

    def publish(self, **extra: object) -> None:
        """On a worker, send the line (and ``extra`` values) to the controller."""
        if self.is_worker:
            output = self.config.workeroutput  # type: ignore[attr-defined]
            output[self.line_key] = self.line
            extra["emptied"] = self.emptied
            output.update({f"{self.line_key}:{k}": v for k, v in extra.items()})

    def received(self, extra: dict[str, Any]) -> None:
        """The ``extra`` values a worker published, on the controller (override to use them)."""

    def pytest_report_collectionfinish(self) -> Optional[str]:
        return None if self.is_worker else self.line

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", None) or {}
        if self.line is None and output.get(self.line_key):
            self.line = str(output[self.line_key])
            self.line_from_worker = True
            prefix = f"{self.line_key}:"
            extra = {k[len(prefix) :]: v for k, v in output.items() if str(k).startswith(prefix)}
            self.emptied = bool(extra.pop("emptied", False))
            self.received(extra)

    def write_worker_line(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Print the line a worker sent (the collection-time line was not printed here)."""
        if self.line_from_worker and self.line:
            terminalreporter.write_line(self.line)
