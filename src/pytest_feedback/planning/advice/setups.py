"""Set-up dominated tests: files whose tests spend most of their own time setting up, beyond
what a fixture-scope suggestion already explains."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from pytest_feedback.durations import format_duration
from pytest_feedback.history.estimates import FixtureEstimate, TestEstimate
from pytest_feedback.history.records import test_file
from pytest_feedback.planning.advice.model import SETUP, Suggestion

#: A test is set-up dominated when at least this many seconds of its own time...
MIN_SETUP_S = 0.05
#: ... and this share of it are set-up.
MIN_SHARE = 0.6
#: A file is suggested when sharing its set-up would save this much per run.
MIN_SAVED_S = 0.2

ASSUMES = (
    "the tests of the file set up the same thing, so one set-up per module could serve them "
    "all (a module-scoped fixture, or cheaper set-up data)",
    "the tests do not change what the set-up builds",
)


def setup_suggestions(
    tests: Sequence[TestEstimate],
    uses: Mapping[str, Sequence[FixtureEstimate]],
    explained: Mapping[str, float],
    workers: int,
) -> list[Suggestion]:
    """``uses``: per test, the fixtures it requests; ``explained``: per fixture name, the
    per-execution seconds a fixture-scope suggestion already claims."""
    per_file: dict[str, list[tuple[str, float]]] = {}
    for test in tests:
        # Own set-up: the set-up phase less the wider-scope fixtures it triggered (they are
        # outside the test's own seconds, `estimate_s`).
        setup = max(0.0, test.estimate_s - test.call_s - test.teardown_s)
        fixtures = uses.get(test.nodeid, ())
        setup -= sum(explained.get(f.name, 0.0) for f in fixtures if f.scope == "function")
        own = setup + test.call_s + test.teardown_s
        if setup >= MIN_SETUP_S and setup >= MIN_SHARE * own:
            per_file.setdefault(test_file(test.nodeid), []).append((test.nodeid, setup))
    out = []
    processes = max(1, workers)
    for file, found in per_file.items():
        total = sum(s for _, s in found)
        saved = total - max(s for _, s in found)
        if saved < MIN_SAVED_S:
            continue
        costly: dict[str, float] = {}
        for nodeid, _ in found:
            for f in uses.get(nodeid, ()):
                if f.scope in ("function", "class"):
                    costly[f.name] = f.cost_s
        named = sorted(costly.items(), key=lambda kv: -kv[1])[:3]
        evidence = [
            f"{len(found)} test(s) spend {format_duration(total)} per run setting up, more than "
            f"{MIN_SHARE:.0%} of their own time",
        ]
        if named:
            evidence.append(
                "their costliest narrow fixtures: "
                + ", ".join(f"{name} {format_duration(cost)}" for name, cost in named)
            )
        out.append(
            Suggestion(
                kind=SETUP,
                subject=file,
                title=f"Share the set-up of {file}'s tests: set up once per module",
                evidence=tuple(evidence),
                saved_s=saved,
                saved_at_workers_s=saved / processes,
                command=f"pytest --setup-show --durations=10 -q {shlex.quote(file)}",
                assumes=ASSUMES,
            )
        )
    return out
