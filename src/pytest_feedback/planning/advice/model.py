"""A suggestion: what to change, the evidence, the seconds it saves, how to check it, and what
its estimate assumed; and the ranked list of them (`Advice`)."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

#: The kinds of suggestion, in the order docs/advise.md describes them.
FIXTURE_SCOPE = "fixture-scope"
WAITING = "waiting"
IMPORTS = "imports"
SETUP = "setup"
REGRESSION = "regression"
PARALLEL = "parallel"
KINDS = (FIXTURE_SCOPE, WAITING, IMPORTS, SETUP, REGRESSION, PARALLEL)


@dataclasses.dataclass(frozen=True)
class Suggestion:
    """One change that would make the suite faster."""

    kind: str
    #: What it is about: a fixture, a file, a module, a test (stable across runs).
    subject: str
    #: What to change, in one line.
    title: str
    #: What the history shows, one fact a line.
    evidence: tuple[str, ...]
    #: Seconds per run it saves when the tests run in one process.
    saved_s: float
    #: Seconds per run it saves at the recorded worker count (`Advice.workers`).
    saved_at_workers_s: float
    #: The command that checks it.
    command: str
    #: What the estimate assumed.
    assumes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "title": self.title,
            "evidence": list(self.evidence),
            "saved_s": round(self.saved_s, 3),
            "saved_at_workers_s": round(self.saved_at_workers_s, 3),
            "command": self.command,
            "assumes": list(self.assumes),
        }


@dataclasses.dataclass(frozen=True)
class Advice:
    """Suggestions, the largest saving at the recorded worker count first."""

    suggestions: tuple[Suggestion, ...]
    #: xdist workers of the recent runs (0: one process).
    workers: int
    #: Runs whose details the advice read.
    runs: int
    #: What the history could not show (no CPU times recorded, no imports recorded...).
    notes: tuple[str, ...] = ()
    target_s: Optional[float] = None

    @property
    def processes(self) -> int:
        return max(1, self.workers)

    def top(self, n: int) -> Advice:
        return dataclasses.replace(self, suggestions=self.suggestions[:n])

    def to_json(self) -> dict[str, Any]:
        """The ``advise --format json`` document (docs/contract.md, "JSON formats"; version 1)."""
        return {
            "version": 1,
            "workers": self.workers,
            "runs": self.runs,
            "target_s": self.target_s,
            "notes": list(self.notes),
            "suggestions": [s.to_json() for s in self.suggestions],
        }


def ranked(suggestions: list[Suggestion]) -> tuple[Suggestion, ...]:
    """Largest saving at the recorded worker count first, then serial, then by subject."""
    return tuple(
        sorted(suggestions, key=lambda s: (-s.saved_at_workers_s, -s.saved_s, s.kind, s.subject))
    )
