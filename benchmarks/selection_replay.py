"""Commit replay: is selection safe, and how much does it run, on real changes of real projects?

The corpora of /tmp/pytest-feedback-corpora are PyPI source releases, each unpacked into a git
repository of one commit: they hold no upstream history, and none can be fetched offline. So the
"commits" replayed here are consecutive releases: the sdists of the last releases of each corpus
are downloaded (`pip download`, cached in $PYTEST_FEEDBACK_RELEASES, default
/tmp/pytest-feedback-releases), and each step goes from one release (the parent) to the next
(the commit), on a copy of the corpus's tree, with the corpus's venv (its dependencies are those
of the newest release; a test that cannot run on an older release fails on both sides and counts
for nothing).

For each step:

- the parent's tree is put in place and committed; a full ``--feedback-cov`` run records our map
  (and the parent's outcomes), a full ``--testmon`` run records pytest-testmon's data;
- the commit's files are put in place (files the release removed are deleted), uncommitted;
- ours: ``pytest --feedback-select --collect-only`` (the plugin's whole path: new test files are
  collected, unaffected ones are left uncollected), its selection read from the plugin;
- testmon: ``pytest --testmon --testmon-nocollect`` (the tests it runs are its selection);
- the oracle: a full run at the commit; every test whose outcome differs from the parent's
  (a module that stops collecting changes its tests), plus the tests the commit adds or whose
  function source it edits. A test of the oracle a selector left out is a miss (goal 0); an
  outcome difference is confirmed by running the test again on each side first (flaky tests
  are not misses).

With ``--files``, the last release's edits are replayed file by file instead (code files first,
then test files; the files that are neither go with the first step), in the edit-run loop: the
map and testmon's data are recorded once on the older release, then after each edit
``pytest --feedback-select`` and ``pytest --testmon`` run what they select (each keeping its data
current, as a developer uses them), and a full run is the oracle. These steps are real upstream
edits, but not upstream commits: an intermediate state may break tests that the release's test
edits fix later, and such breaks must be selected like any other.

It prints each step, then per corpus the steps, oracle sizes, misses and the mean selected
fraction for us and testmon, and the reasons that selected the most tests.

    python benchmarks/selection_replay.py [--corpora toolz:4,more-itertools:6,arrow:2]

``NAME:N`` replays the last N releases of NAME (N+1 sdists, the last the corpus's own release),
or with ``--files`` the first N edits. PYTEST_FEEDBACK_SRC names the copy of our code to run.
"""

from __future__ import annotations

import argparse
import ast
import collections
import dataclasses
import functools
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

from selection import (
    CORPORA,
    CRASHED,
    OUTCOMES_PLUGIN,
    Suite,
    copy_suite,
    failing,
    link_dependencies,
    template,
    top_reasons_of,
)

RELEASES = Path(os.environ.get("PYTEST_FEEDBACK_RELEASES", "/tmp/pytest-feedback-releases"))
#: Also dumps, after collection, the items left and the decision of --feedback-select.
SELECTED_PLUGIN = (
    OUTCOMES_PLUGIN
    + """
def pytest_collection_finish(session):
    run = session.config.pluginmanager.get_plugin("feedback-select")
    selection = getattr(run, "selection", None)
    doc = {"items": [item.nodeid for item in session.items]}
    if selection is not None:
        doc["selected"] = selection.selected
        doc["fallback"] = selection.fallback
    with open(os.environ["BENCH_OUTCOMES"] + ".selected", "w") as f:
        json.dump(doc, f)
"""
)
KEEP = {".git", ".testmondata", ".testmondata-shm", ".testmondata-wal"}


# -- releases -----------------------------------------------------------------------------------


def installed_release(name: str) -> str:
    """The corpus's own release, from its sdist's name (dl/NAME-VERSION.tar.gz)."""
    sdist = next((CORPORA / name / "dl").glob("*.tar.gz"))
    return sdist.name[: -len(".tar.gz")].rpartition("-")[2]


def release_versions(name: str, python: str, steps: int) -> list[str]:
    """The last ``steps + 1`` final releases up to the corpus's own, oldest first."""
    proc = subprocess.run(
        [python, "-m", "pip", "index", "versions", name], capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("Available versions:"))
    versions = [v.strip() for v in line.partition(":")[2].split(",")]
    own = installed_release(name)
    newest_first = versions[versions.index(own) :]
    return list(reversed(newest_first[: steps + 1]))


def sdist(name: str, version: str, python: str) -> Path:
    """The release's sdist, downloaded once into RELEASES/NAME."""
    folder = RELEASES / name
    stem = re.sub(r"[-_.]+", "_", name).lower()
    found = [p for p in folder.glob("*.tar.gz") if _version_of(p, stem) == version]
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [python, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
         f"{name}=={version}", "-d", str(folder)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return next(p for p in folder.glob("*.tar.gz") if _version_of(p, stem) == version)


def _version_of(path: Path, stem: str) -> Optional[str]:
    base = path.name[: -len(".tar.gz")]
    project, _, version = base.rpartition("-")
    return version if re.sub(r"[-_.]+", "_", project).lower() == stem else None


def unpack(archive: Path, scratch: Path) -> Path:
    """The release's top folder, unpacked once under ``scratch``."""
    unpacked = scratch / archive.name
    if not unpacked.exists():
        with tarfile.open(archive) as tar:
            tar.extractall(unpacked, filter="data")
    return next(unpacked.iterdir())


def put_in_place(archive: Path, root: Path, scratch: Path) -> None:
    """Make ``root`` hold exactly the release's files (its .git and testmon data kept)."""
    top = unpack(archive, scratch)
    for entry in root.iterdir():
        if entry.name not in KEEP:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for entry in top.iterdir():
        target = root / entry.name
        if entry.is_dir():
            shutil.copytree(entry, target, symlinks=True)
        else:
            shutil.copy2(entry, target)


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", *args], cwd=root, check=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


# -- the oracle ---------------------------------------------------------------------------------


def test_sources(root: Path, nodeids: set[str]) -> dict[str, str]:
    """Node id (parameters left out) -> the source of its test function, for the given tests."""
    wanted: dict[str, set[str]] = collections.defaultdict(set)
    for nodeid in nodeids:
        path, _, rest = nodeid.partition("::")
        wanted[path].add(rest.split("[")[0])
    sources: dict[str, str] = {}
    for path, names in wanted.items():
        try:
            tree = ast.parse((root / path).read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        stack: list[tuple[str, ast.AST]] = [("", tree)]
        while stack:
            prefix, node = stack.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    key = f"{prefix}{child.name}"
                    if key in names and not isinstance(child, ast.ClassDef):
                        sources[f"{path}::{key}"] = ast.dump(child)
                    if isinstance(child, ast.ClassDef):
                        stack.append((f"{key}::", child))
    return sources


def added_or_edited(parent_root: Path, root: Path, before: set[str], now: set[str]) -> set[str]:
    """The tests the commit adds, or whose own function it edits (its AST differs)."""
    added = now - before
    old = test_sources(parent_root, now & before)
    new = test_sources(root, now & before)
    edited = {n for n in now & before if new.get(_key(n)) != old.get(_key(n))}
    return added | edited


def _key(nodeid: str) -> str:
    path, _, rest = nodeid.partition("::")
    return f"{path}::{rest.split('[')[0]}"


def outcome_changed(before: dict[str, str], now: dict[str, str]) -> set[str]:
    """Tests of both runs whose outcome differs; a module that stops collecting changes its
    tests, and a pytest that cannot start changes them all."""
    tests = {n for n in now if not n.startswith("collect-error::")} & set(before)
    if CRASHED in now:
        return {n for n in before if not n.startswith("collect-error::")}
    changed = {n for n in tests if now[n] != before[n]}
    for key in now:
        if key.startswith("collect-error::") and key not in before:
            where = key[len("collect-error::") :]
            changed |= {
                n for n in before
                if n.startswith(where) and not n.startswith("collect-error::")
                and before[n] != "failed"
            }  # fmt: skip
    return changed


# -- one corpus ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Step:
    corpus: str
    parent: str
    commit: str
    changed_files: int
    total: int
    oracle: set[str]
    ours: set[str]
    testmon: set[str]
    #: how many of the commit's tests each selected
    ours_count: int
    testmon_count: int
    fallback: Optional[str]
    reasons: collections.Counter[str]

    @property
    def ours_missed(self) -> set[str]:
        return self.oracle - self.ours

    @property
    def testmon_missed(self) -> set[str]:
        return self.oracle - self.testmon


def tests_of(outcomes: dict[str, str]) -> set[str]:
    return {n for n in outcomes if not n.startswith("collect-error::")}


def replay(suite: Suite, versions: list[str], plugin_dir: Path, work: Path) -> list[Step]:
    archives = [sdist(suite.name, v, suite.python) for v in versions]
    scratch = work / f"{suite.name}-unpacked"
    root = suite.root
    shutil.rmtree(root / ".git")
    git(root, "init", "-q")
    steps: list[Step] = []
    outcomes_file = plugin_dir / "outcomes.json"
    for i in range(1, len(versions)):
        parent, commit = versions[i - 1], versions[i]
        put_in_place(archives[i - 1], root, scratch)
        git(root, "add", "-A")
        git(root, "commit", "-qm", parent, "--allow-empty")
        (root / ".testmondata").unlink(missing_ok=True)
        db = work / f"{suite.name}-{parent}.db"
        before, wall = suite.run("-p", "pytest_feedback.plugin", "--feedback-cov",
                                 f"--feedback-db={db}", plugin_dir=plugin_dir)  # fmt: skip
        print(
            f"  [{suite.name}] {parent}: map recorded in {wall:.0f} s ({len(tests_of(before))} "
            f"tests, {len(failing(before))} failing)",
            flush=True,
        )
        suite.run("--testmon", plugin_dir=plugin_dir)
        parent_copy = work / f"{suite.name}-parent"
        shutil.rmtree(parent_copy, ignore_errors=True)
        shutil.copytree(root, parent_copy, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        put_in_place(archives[i], root, scratch)
        changed = _changed_files(root)
        collected, _ = suite.run(
            "-p", "pytest_feedback.plugin", "--feedback-select", f"--feedback-db={db}",
            "--feedback-no-record", "--collect-only", plugin_dir=plugin_dir,
        )  # fmt: skip
        decision = json.loads(Path(f"{outcomes_file}.selected").read_text())
        tm, _ = suite.run("--testmon", "--testmon-nocollect", plugin_dir=plugin_dir)
        now, _ = suite.run(plugin_dir=plugin_dir)
        back = functools.partial(put_in_place, archives[i - 1], root, scratch)
        forth = functools.partial(put_in_place, archives[i], root, scratch)
        confirm = Confirm(suite, plugin_dir, back, forth)
        selectors = (collected, decision, tm)
        what = (parent, commit, changed)
        steps.append(judge(suite.name, what, (before, now), selectors, parent_copy, confirm))
        print_step(steps[-1])
        git(root, "add", "-A")
        git(root, "commit", "-qm", commit)
    return steps


@dataclasses.dataclass
class Confirm:
    """Runs some tests again at the commit, and at the parent (``back``, then ``forth``)."""

    suite: Suite
    plugin_dir: Path
    back: Callable[[], None]
    forth: Callable[[], None]

    def flaky(self, suspects: set[str], before: dict[str, str], now: dict[str, str]) -> set[str]:
        """The suspects whose outcome does not repeat on one side or the other."""
        found: set[str] = set()
        again, _ = self.suite.run(*sorted(suspects & tests_of(now)), plugin_dir=self.plugin_dir)
        if CRASHED not in again:
            found |= {n for n in suspects if n in again and again[n] != now.get(n)}
        self.back()
        try:
            old, _ = self.suite.run(
                *sorted(suspects & tests_of(before)), plugin_dir=self.plugin_dir
            )
        finally:
            self.forth()
        if CRASHED not in old:
            found |= {n for n in suspects if n in old and old[n] != before.get(n)}
        return found


def judge(
    corpus: str,
    what: tuple[str, str, int],
    runs: tuple[dict[str, str], dict[str, str]],
    selectors: tuple[dict[str, str], dict[str, object], dict[str, str]],
    parent_copy: Path,
    confirm: Confirm,
) -> Step:
    """One step's figures: ``runs`` are the full runs at the parent and at the commit;
    ``selectors`` our run's outcomes, our decision (`SELECTED_PLUGIN`) and testmon's outcomes."""
    before, now = runs
    collected, decision, tm = selectors
    tests = tests_of(now)
    chosen = decision.get("selected") or {}
    assert isinstance(chosen, dict)
    # a test whose module stops collecting is seen by a selector that collects the module
    ours = set(chosen) & tests | shown_broken(before, collected)
    testmon = tests_of(tm) & tests | shown_broken(before, tm)
    differ = outcome_changed(before, now)
    suspects = differ - (ours & testmon)
    if suspects:  # confirm each on both sides: a flaky test is no miss
        differ -= confirm.flaky(suspects, before, now)
    oracle = differ | added_or_edited(parent_copy, confirm.suite.root, tests_of(before), tests)
    reasons = collections.Counter(template(r[0]) for n, r in chosen.items() if r and n in tests)
    fallback = decision.get("fallback")
    return Step(
        corpus, *what, len(tests), oracle, ours, testmon, len(ours & tests),
        len(testmon & tests), fallback if isinstance(fallback, str) else None, reasons,
    )  # fmt: skip


# -- one release's edits, file by file, in the edit-run loop -------------------------------------

#: Files whose edit is replayed as a step of its own; the others go with the first step.
_CODE = re.compile(r"\.py$|(^|/)(pyproject\.toml|setup\.cfg|tox\.ini|pytest\.ini)$")


def differing_files(old: Path, new: Path) -> list[str]:
    """Files that differ between two trees, code before tests (as a developer edits)."""
    rels = {
        p.relative_to(tree).as_posix()
        for tree in (old, new)
        for p in tree.rglob("*")
        if p.is_file() and not p.is_symlink()
    }
    changed = [
        r for r in rels
        if not ((old / r).is_file() and (new / r).is_file()
                and (old / r).read_bytes() == (new / r).read_bytes())
    ]  # fmt: skip
    order = _import_order([r for r in changed if r.endswith(".py")], new)
    return sorted(
        changed, key=lambda r: ("test" in r.rsplit("/", 1)[-1], order.get(r, len(order)), r)
    )


def _import_order(paths: list[str], tree: Path) -> dict[str, int]:
    """Modules before the changed modules that import them (their new versions), so that a
    step does not import a name a later step adds; ``__init__.py`` files last."""
    stems = {p: p.removesuffix(".py").rsplit("/", 1)[-1] for p in paths}
    needs: dict[str, set[str]] = {}
    for path in paths:
        try:
            text = (tree / path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
        words = set(re.findall(r"(?:from|import)\s+[\w.]*?\.?(\w+)", text))
        needs[path] = {q for q, stem in stems.items() if q != path and stem in words}
    done: list[str] = []
    todo = sorted(paths, key=lambda p: (p.endswith("__init__.py"), p))
    while todo:
        ready = next((p for p in todo if needs[p] <= set(done)), todo[0])  # a cycle: in order
        done.append(ready)
        todo.remove(ready)
    return {p: i for i, p in enumerate(done)}


def take(root: Path, tree: Path, rel: str) -> None:
    """Make ``root``'s file ``rel`` that of ``tree`` (deleted when ``tree`` has none)."""
    source, target = tree / rel, root / rel
    if source.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    else:
        target.unlink(missing_ok=True)


def replay_files(
    suite: Suite, versions: list[str], count: int, plugin_dir: Path, work: Path
) -> list[Step]:
    """The last release's edits file by file (code first, tests last), each a step of the
    edit-run loop: ``pytest --feedback-select`` and ``pytest --testmon`` run what they select
    and so keep their data current; the oracle is a full run after each edit."""
    old_v, new_v = versions[-2], versions[-1]
    archives = [sdist(suite.name, v, suite.python) for v in (old_v, new_v)]
    scratch = work / f"{suite.name}-unpacked"
    root = suite.root
    shutil.rmtree(root / ".git")
    git(root, "init", "-q")
    put_in_place(archives[0], root, scratch)
    old, new = unpack(archives[0], scratch), unpack(archives[1], scratch)
    files = differing_files(old, new)
    code = [f for f in files if _CODE.search(f)]
    groups = [[f for f in files if not _CODE.search(f)] + code[:1], *[[f] for f in code[1:]]]
    git(root, "add", "-A")
    git(root, "commit", "-qm", old_v)
    db = work / f"{suite.name}-loop.db"
    before, _ = suite.run("-p", "pytest_feedback.plugin", "--feedback-cov",
                          f"--feedback-db={db}", plugin_dir=plugin_dir)  # fmt: skip
    suite.run("--testmon", plugin_dir=plugin_dir)
    print(
        f"  [{suite.name}] {old_v}: map and testmon data recorded ({len(tests_of(before))} "
        f"tests, {len(failing(before))} failing); {len(code)} code files of {len(files)} "
        f"changed files on the way to {new_v}",
        flush=True,
    )
    steps: list[Step] = []
    parent_copy = work / f"{suite.name}-parent"
    outcomes_file = plugin_dir / "outcomes.json"
    for group in groups[:count]:
        shutil.rmtree(parent_copy, ignore_errors=True)
        shutil.copytree(root, parent_copy, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        for rel in group:
            take(root, new, rel)
        collected, _ = suite.run("-p", "pytest_feedback.plugin", "--feedback-select",
                                 f"--feedback-db={db}", plugin_dir=plugin_dir)  # fmt: skip
        decision = json.loads(Path(f"{outcomes_file}.selected").read_text())
        tm, _ = suite.run("--testmon", plugin_dir=plugin_dir)
        now, _ = suite.run(plugin_dir=plugin_dir)
        back = functools.partial(_take_all, root, parent_copy, group)
        forth = functools.partial(_take_all, root, new, group)
        what = (f"{old_v}+", group[-1], len(group))
        step = judge(suite.name, what, (before, now), (collected, decision, tm), parent_copy,
                     Confirm(suite, plugin_dir, back, forth))  # fmt: skip
        steps.append(step)
        print_step(step)
        before = now
    return steps


def _take_all(root: Path, tree: Path, rels: list[str]) -> None:
    for rel in rels:
        take(root, tree, rel)


def shown_broken(before: dict[str, str], outcomes: dict[str, str]) -> set[str]:
    """The parent's tests in the modules that failed to collect in a selector's run (all of
    them when pytest could not start: the user sees that)."""
    if CRASHED in outcomes:
        return tests_of(before)
    where = [k[len("collect-error::") :] for k in outcomes if k.startswith("collect-error::")]
    return {n for n in tests_of(before) if any(n.startswith(w) for w in where if w)}


def _changed_files(root: Path) -> int:
    proc = subprocess.run(
        ["git", "status", "--porcelain", "-uall"], cwd=root, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    return len([ln for ln in proc.stdout.splitlines() if ln.strip()])


def print_step(step: Step) -> None:
    flag = "MISSED" if step.ours_missed else "ok"
    print(
        f"  [{step.corpus}] {flag:6} {step.parent} -> {step.commit}: {step.changed_files} files "
        f"changed, oracle {len(step.oracle)} (testmon missed {len(step.testmon_missed)}), "
        f"ours {step.ours_count}  testmon {step.testmon_count}  of {step.total}"
        + (f"  (fallback: {step.fallback})" if step.fallback else ""),
        flush=True,
    )
    for nodeid in sorted(step.ours_missed)[:5]:
        print(f"      missed by ours: {nodeid}")


def summarise(name: str, steps: list[Step]) -> list[str]:
    if not steps:
        return [f"{name}: no steps"]
    ours = sum(s.ours_count / max(s.total, 1) for s in steps) / len(steps)
    tm = sum(s.testmon_count / max(s.total, 1) for s in steps) / len(steps)
    narrowed = [s for s in steps if s.fallback is None]
    return [
        f"{name:15} steps {len(steps):3}  oracle {sum(len(s.oracle) for s in steps):5}  "
        f"missed: ours {sum(len(s.ours_missed) for s in steps):3}  "
        f"testmon {sum(len(s.testmon_missed) for s in steps):3}  "
        f"mean selected: ours {ours:6.1%}  testmon {tm:6.1%}  "
        f"everything ran (ours) on {len(steps) - len(narrowed)}",
        *top_reasons_of([s.reasons for s in steps]),
    ]


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", default="toolz:4,more-itertools:6,click:6,arrow:2,attrs:2")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument(
        "--files", action="store_true",
        help="replay the last release's edits file by file in the edit-run loop (NAME:N steps)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="select-replay-"))
    plugin_dir = work / "plugin"
    plugin_dir.mkdir()
    (plugin_dir / "bench_outcomes.py").write_text(SELECTED_PLUGIN)
    link_dependencies(plugin_dir)
    start = time.perf_counter()
    table: list[str] = []
    everything: list[Step] = []
    try:
        for spec in [s for s in args.corpora.split(",") if s]:
            name, _, count = spec.partition(":")
            suite = copy_suite(name, work)
            steps_asked = int(count or 4)
            if args.files:
                versions = release_versions(name, suite.python, 1)
                print(f"{name}: replaying {' -> '.join(versions)} file by file", flush=True)
                steps = replay_files(suite, versions, steps_asked, plugin_dir, work)
            else:
                versions = release_versions(name, suite.python, steps_asked)
                print(f"{name}: replaying {' -> '.join(versions)}", flush=True)
                steps = replay(suite, versions, plugin_dir, work)
            everything.extend(steps)
            table.extend(summarise(name, steps))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    for line in [*table, *summarise("total", everything)]:
        print(line)
    print(f"benchmark wall time {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
