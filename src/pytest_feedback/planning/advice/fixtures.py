"""Fixture scope: a function- or class-scoped fixture set up again and again for tests that
could share one set-up, and the seconds a wider scope would save, per scope."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_feedback.durations import format_duration
from pytest_feedback.history.estimates import class_prefix
from pytest_feedback.history.evidence import FixtureGroup
from pytest_feedback.history.records import FixtureKey, test_file
from pytest_feedback.planning.advice.model import FIXTURE_SCOPE, Suggestion

#: A widening is suggested when it saves at least this many seconds per run.
MIN_SAVED_S = 0.1
#: Scopes a fixture may be widened to, narrowest first (package behaves as module per process
#: for tests in one directory, and is left out).
WIDER = {"function": ("class", "module", "session"), "class": ("module", "session")}
#: The narrowest scope that gets this share of the widest scope's saving is the one suggested
#: (a wider scope shares state among more tests: a larger risk for a little more).
ENOUGH = 0.75

ASSUMES = (
    "the tests that would share it do not change what it returns (check: the command, whose "
    "report says which outcomes changed)",
    "it requests no narrower-scoped fixture (pytest refuses such a widening: ScopeMismatch)",
    "a parametrized fixture still runs once per parameter",
)


def instance(scope: str, nodeid: str) -> str:
    """Which set-up of a fixture of ``scope`` the test ``nodeid`` would share."""
    if scope == "class":
        # A class-scoped fixture of a test outside any class is set up per test, as pytest does.
        prefix = class_prefix(nodeid)
        return nodeid if prefix == test_file(nodeid) else prefix
    if scope == "module":
        return test_file(nodeid)
    return ""


def scope_suggestions(groups: Sequence[FixtureGroup], workers: int) -> list[Suggestion]:
    """One suggestion per project fixture whose widening saves enough (one run's executions)."""
    by_fixture: dict[FixtureKey, list[FixtureGroup]] = {}
    for group in groups:
        if "::" not in group.location:  # pytest's or an installed plugin's: not the project's
            continue
        key = FixtureKey(group.name, group.scope, group.location)
        by_fixture.setdefault(key, []).append(group)
    out = []
    for key, found in by_fixture.items():
        suggestion = _suggest(key, found, workers)
        if suggestion is not None:
            out.append(suggestion)
    return out


def _suggest(key: FixtureKey, groups: list[FixtureGroup], workers: int) -> Suggestion | None:
    wider = WIDER.get(key.scope)
    if not wider:
        return None
    executions = sum(g.executions for g in groups)
    cost = sum(g.setup_s + g.teardown_s for g in groups)
    if executions < 2 or cost <= 0:
        return None
    each = cost / executions
    processes = max(1, workers)
    savings: dict[str, tuple[float, float]] = {}
    for scope in wider:
        per_instance: dict[str, int] = {}
        for g in groups:
            name = instance(scope, g.nodeid)
            per_instance[name] = per_instance.get(name, 0) + g.executions
        serial = (executions - len(per_instance)) * each
        # xdist's default distribution spreads an instance's tests over the workers: each
        # worker that runs one of them sets it up once.
        parallel = sum(min(n, processes) for n in per_instance.values())
        at_workers = (executions - parallel) * each / processes
        savings[scope] = (serial, at_workers)
    best = max(s for s, _ in savings.values())
    if best < MIN_SAVED_S:
        return None
    chosen = next(scope for scope in wider if savings[scope][0] >= ENOUGH * best)
    serial, at_workers = savings[chosen]
    tests = {g.nodeid for g in groups}
    modules = {test_file(n) for n in tests}
    per_scope = ", ".join(
        f"{scope} {format_duration(savings[scope][0])}" for scope in wider if savings[scope][0] > 0
    )
    evidence = (
        f"{key.scope}-scoped, set up {executions} times per run at "
        f"{_short(each)} each ({format_duration(cost)} per run)",
        f"requested by {len(tests)} tests in {len(modules)} module(s)",
        f"saved per run if widened: {per_scope}",
    )
    workers_flag = f" -n {workers}" if workers > 1 else ""
    assumes: tuple[str, ...] = ASSUMES
    if workers > 1:
        assumes += (
            f"at {workers} workers, xdist's default distribution spreads a module's tests over "
            "all workers (--dist loadscope or --feedback-dist keep them together and save more)",
        )
    return Suggestion(
        kind=FIXTURE_SCOPE,
        subject=key.name,
        title=f"Widen fixture `{key.name}` ({key.location}) from {key.scope} to {chosen} scope",
        evidence=evidence,
        saved_s=serial,
        saved_at_workers_s=at_workers if workers > 1 else serial,
        command=f"pytest --feedback-try-scope {key.name}={chosen}{workers_flag}",
        assumes=assumes,
    )


def _short(seconds: float) -> str:
    """A short duration readably: ``0.6ms`` rather than ``0.00s``."""
    return f"{seconds * 1000:.1f}ms" if seconds < 0.01 else format_duration(seconds)
