"""How long `pytest --feedback-select --collect-only` takes after a one-line change, next to plain
collection and `pytest --testmon --collect-only` (goal: at most 0.5x plain, and no slower than
testmon), measured side by side in one run on real suites.

For each corpus (copied to a temp dir first): record a coverage map (`--feedback-cov`) and
pytest-testmon's data on the clean tree, change one line of a function body of the package,
then time each command (best of ``--repeat``). Our selection leaves uncollected the test files
that hold no affected test (docs/selection.md, "Collection").

    python benchmarks/select_collect.py [--corpora attrs,click,sqlglot] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from selection import SRC, Mutation, Suite, copy_suite, link_dependencies, mutations_of


def timed(suite: Suite, plugin_dir: Path, *args: str) -> float:
    env = {**os.environ, **suite.env}
    paths = [str(SRC), suite.env.get("PYTHONPATH", ""), str(plugin_dir)]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.pop("PYTEST_ADDOPTS", None)
    cmd = [suite.python, "-m", "pytest", *suite.args, "-q", "-W", "ignore::DeprecationWarning"]
    start = time.perf_counter()
    subprocess.run(
        [*cmd, *args], cwd=suite.root, env=env, check=False,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - start


def one_line_change(suite: Suite, rng: random.Random) -> Mutation:
    """A flipped comparison in a function of the package: files in random order, candidates
    parsed only when drawn (sqlglot's biggest files have thousands)."""
    package = next(p for p in (suite.root / suite.package, suite.root / "src" / suite.package)
                   if p.is_dir())  # fmt: skip
    files = sorted(p for p in package.rglob("*.py") if not p.name.startswith("test_"))
    rng.shuffle(files)
    for path in files:
        found = mutations_of(path, path.relative_to(suite.root).as_posix(), checked=False)
        candidates = found.get("compare", [])
        rng.shuffle(candidates)
        for mutation in candidates:
            if mutation.parses():
                return mutation
    raise RuntimeError(f"{suite.name}: no comparison to flip")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", default="attrs,click,sqlglot")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="select-collect-"))
    plugin_dir = work / "plugin"
    plugin_dir.mkdir()
    link_dependencies(plugin_dir)
    rows: list[str] = []
    try:
        for name in [n for n in args.corpora.split(",") if n]:
            suite = copy_suite(name, work)
            db = str(work / f"{name}.db")
            ours = ("-p", "pytest_feedback.plugin", "--feedback-db", db)
            timed(suite, plugin_dir, *ours, "--feedback-cov", "-p", "no:randomly")
            timed(suite, plugin_dir, "--testmon", "-p", "no:randomly")
            mutation = one_line_change(suite, random.Random(args.seed))
            (suite.root / mutation.path).write_text(mutation.text, encoding="utf-8")
            runs = {
                "plain": ("--collect-only", "-p", "no:cacheprovider"),
                "ours": (*ours, "--feedback-select", "--collect-only"),
                "testmon": ("--testmon", "--collect-only"),
            }
            best = {
                what: min(timed(suite, plugin_dir, *argv) for _ in range(args.repeat))
                for what, argv in runs.items()
            }
            rows.append(
                f"{name:10} plain {best['plain']:6.2f} s   --feedback-select {best['ours']:6.2f} s "
                f"({best['ours'] / best['plain']:.2f}x plain)   --testmon {best['testmon']:6.2f} s "
                f"({best['ours'] / best['testmon']:.2f}x testmon)   change: {mutation.describe()}"
            )
            print(rows[-1], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
