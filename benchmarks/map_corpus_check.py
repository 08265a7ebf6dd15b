"""Check the coverage map of a real suite: every test holds its own file and the modules it uses.

Runs a corpus from ../shared/corpora with `--feedback-cov` into a fresh history, then checks, for
every test that ran: it has a map; its own test file is among its dependencies; every package
module its test file imports (found here with `ast`, independently of the plugin) is among its
import-time modules. Prints the counts and a few examples of any miss; exit status 1 on a miss.

    .venv/bin/python benchmarks/map_corpus_check.py [--corpus attrs] [-n 2]
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from pytest_feedback.depmap.graph import DependencyMap  # noqa: E402
from pytest_feedback.history.store import Store  # noqa: E402

CORPORA = Path(os.environ.get("CORPORA_DIR", "/tmp/pytest-feedback-corpora"))


def package_modules(src: Path, package_dir: str) -> dict[str, str]:
    """Dotted module name -> rootdir-relative path, for every module of the package."""
    package = src / package_dir
    base = package.parent
    modules: dict[str, str] = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path.relative_to(src).as_posix()
    return modules


def imported_package_files(test_file: Path, modules: dict[str, str]) -> set[str]:
    tree = ast.parse(test_file.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    found = set()
    for name in names:
        parts = name.split(".")
        for i in range(len(parts)):  # a package's __init__ runs for each of its submodules
            path = modules.get(".".join(parts[: i + 1]))
            if path:
                found.add(path)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default="attrs")
    parser.add_argument("-n", default=None, help="xdist workers")
    args = parser.parse_args()
    base = CORPORA / args.corpus
    src = base / "src"
    package_dir = (base / "package").read_text().strip()
    with tempfile.TemporaryDirectory(prefix="feedback-map-check-") as tmp:
        db = Path(tmp) / "history.db"
        cmd = [
            str(base / "pytest"),
            "-p",
            "pytest_feedback.plugin",
            "--feedback-cov",
            "--feedback-db",
            str(db),
            "-p",
            "no:cacheprovider",
            "-q",
        ]
        if args.n:
            cmd += ["-n", args.n]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        print(f"{args.corpus}: ran in {time.perf_counter() - start:.1f}s (exit {proc.returncode})")
        print(
            "  " + "\n  ".join(ln for ln in proc.stdout.splitlines() if ln.startswith("feedback:"))
        )
        with Store.open_existing(db) as store:
            run_id = store.reads.runs(limit=1)[0]["id"]
            ran = [r["nodeid"] for r in store.reads.results(run_id)]
            dmap = DependencyMap.load(store)
        assert dmap is not None
    modules = package_modules(src, package_dir)
    unmapped, no_own_file, missing = [], [], []
    imports: dict[str, set[str]] = {}
    for nodeid in ran:
        deps = dmap.dependencies(nodeid)
        if deps is None:
            unmapped.append(nodeid)
            continue
        test_file = nodeid.split("::")[0]
        if test_file not in deps.files:
            no_own_file.append(nodeid)
        if test_file not in imports:
            imports[test_file] = imported_package_files(src / test_file, modules)
        lacking = imports[test_file] - deps.import_time - set(deps.files)
        if lacking:
            missing.append((nodeid, sorted(lacking)))
    print(f"  tests run: {len(ran):,}; mapped: {len(ran) - len(unmapped):,}")
    print(f"  without their own test file: {len(no_own_file):,} {no_own_file[:3]}")
    print(f"  missing a package module their file imports: {len(missing):,} {missing[:3]}")
    used = [len(d.import_time) for n in ran if (d := dmap.dependencies(n)) is not None]
    if used:
        print(f"  import-time modules per test: min {min(used)}, max {max(used)}")
    return 1 if unmapped or no_own_file or missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
