"""A real dependency version change on a real suite: what selection runs, against pytest-testmon.

On a copy of a corpus from ../shared/corpora (default: arrow, whose tests use python-dateutil,
pytz, simplejson, dateparser, tzdata), records the coverage map (`--feedback-cov`) and
pytest-testmon's data with the versions installed, then for each ``--change NAME==VERSION`` in
turn installs that released version into the corpus's venv (pip, from PyPI, with what it
requires, as an upgrade pull request would), runs the full suite to find the tests whose outcome
changed, asks `pytest-feedback select` and runs `pytest --testmon` (counting the tests it runs),
and puts the venv back as it was. Prints per change the tests each selects (fraction of the
suite) and the outcome changes selection missed (must be 0).

    ../shared/corpora/setup.sh arrow
    .venv/bin/python benchmarks/dependency_upgrade.py [--corpus arrow]
        [--change python-dateutil==2.9.0.post0 --change pytz==2024.1]

It changes the corpus venv while it runs (and restores it); do not run two at once.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import CORPORA
from selection import CRASHED, OUTCOMES_PLUGIN, Suite, copy_suite, link_dependencies

DEFAULT_CHANGES = ("python-dateutil==2.9.0.post0", "pytz==2024.1")


def installed(suite: Suite) -> dict[str, str]:
    """Distribution -> version of the corpus's venv."""
    script = (
        "import importlib.metadata as m\n"
        "for d in m.distributions(): print(d.metadata['Name'], d.version)"
    )
    proc = subprocess.run([suite.python, "-c", script], capture_output=True, text=True, check=True)
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)


def pip(suite: Suite, *args: str) -> None:
    subprocess.run([suite.python, "-m", "pip", *args], check=True, capture_output=True)


def restore(suite: Suite, before: dict[str, str]) -> None:
    """Put the venv back as it was: the versions it had, nothing added."""
    now = installed(suite)
    changed = [f"{n}=={v}" for n, v in before.items() if now.get(n) != v]
    added = [n for n in now if n not in before]
    if changed:
        pip(suite, "install", "-q", "--no-deps", *changed)
    if added:
        pip(suite, "uninstall", "-q", "-y", *added)


def tests_of(outcomes: dict[str, str]) -> dict[str, str]:
    return {n: o for n, o in outcomes.items() if not n.startswith("collect-error::")}


def measure_change(
    suite: Suite, requirement: str, db: Path, plugin_dir: Path, baseline: dict[str, str]
) -> list[str]:
    name = requirement.partition("==")[0]
    before = installed(suite)
    original = next((v for n, v in before.items() if n.lower() == name.lower()), "none")
    lines = [f"{requirement} (installed: {original}; its dependencies installed too)"]
    pip(suite, "install", "-q", requirement)
    try:
        now, wall = suite.run(plugin_dir=plugin_dir)
        if CRASHED in now:
            lines.append("  pytest did not start after the change: every outcome changed")
        changed = {n for n, o in tests_of(now).items() if baseline.get(n) != o}
        changed |= {n for n in baseline if n not in now}
        chosen, fallback, select_s = suite.select(db, plugin_dir)
        ran, testmon_s = suite.run("--testmon", plugin_dir=plugin_dir)
    finally:
        restore(suite, before)
    total = len(baseline)
    ours, theirs = set(chosen) & set(baseline), set(tests_of(ran))
    missed = sorted(changed - ours)
    reasons: dict[str, int] = {}
    for reasons_of in chosen.values():
        for reason in reasons_of[:1]:
            reasons[reason] = reasons.get(reason, 0) + 1
    top = sorted(reasons.items(), key=lambda kv: -kv[1])[:3]
    lines += [
        f"  full run {wall:.1f} s: {len(changed)} outcome changes",
        f"  ours:    {len(ours):5} of {total} ({len(ours) / total:6.1%}), select {select_s:.1f} s"
        + (f"; fallback: {fallback}" if fallback else ""),
        f"  testmon: {len(theirs):5} of {total} ({len(theirs) / total:6.1%}),"
        f" run {testmon_s:.1f} s",
        f"  fraction ours/testmon: {len(ours) / max(len(theirs), 1):.2f}",
        f"  missed outcome changes: {len(missed)}" + (f" {missed[:5]}" if missed else ""),
        *(f"  reason: {count:5}  {reason}" for reason, count in top),
    ]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="arrow")
    parser.add_argument("--change", action="append", help="NAME==VERSION to install (repeat)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()
    if not (CORPORA / args.corpus / ".ready").exists():
        print(f"{args.corpus}: corpus not set up under {CORPORA}; nothing measured")
        return 1
    work = Path(tempfile.mkdtemp(prefix="dependency-upgrade-"))
    plugin_dir = work / "plugin"
    plugin_dir.mkdir()
    (plugin_dir / "bench_outcomes.py").write_text(OUTCOMES_PLUGIN)
    link_dependencies(plugin_dir)
    start = time.perf_counter()
    try:
        suite = copy_suite(args.corpus, work)
        db = work / "history.db"
        baseline, wall = suite.run(
            "-p", "pytest_feedback.plugin", "--feedback-cov", "--feedback-db", str(db),
            plugin_dir=plugin_dir,
        )  # fmt: skip
        baseline = tests_of(baseline)
        print(f"{args.corpus}: map recorded in {wall:.1f} s ({len(baseline)} tests)")
        _, wall = suite.run("--testmon", plugin_dir=plugin_dir)
        print(f"{args.corpus}: testmon data recorded in {wall:.1f} s")
        for requirement in args.change or DEFAULT_CHANGES:
            print("\n".join(measure_change(suite, requirement, db, plugin_dir, baseline)))
            sys.stdout.flush()
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
