"""Does the map come out the same with coverage.py's sys.monitoring core as with its C tracer?

On Python 3.12+ `--feedback-cov` measures with the sysmon core and restarts the monitoring events
at every context switch (each test, collector, project import). This records the map of a real
suite twice, once with ``COVERAGE_CORE=ctrace`` and once as a user gets it, and compares every
context's executed lines file by file. Exit status 1 on any difference.

    .venv/bin/python benchmarks/map_cores.py --python PY312_VENV/bin/python [--corpus attrs]

The interpreter must be 3.12+ with the corpus installed and coverage, networkx and rich.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import CORPORA, corpus_command
from coverage.numbits import numbits_to_nums

PLUGIN = ("-q", "-p", "no:cacheprovider", "-p", "no:testmon", "-p", "pytest_feedback.plugin")
Lines = dict[tuple[str, str], dict[str, set[int]]]


def load(db: Path) -> Lines:
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT c.kind, c.label, f.path, l.numbits FROM map_lines l"
        " JOIN map_contexts c ON c.id = l.context_id JOIN map_files f ON f.id = l.file_id"
    ).fetchall()
    con.close()
    out: Lines = {}
    for kind, label, path, bits in rows:
        out.setdefault((kind, label), {})[path] = set(numbits_to_nums(bits))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--corpus", default="attrs")
    parser.add_argument("--python", required=True, help="a Python 3.12+ with the corpus installed")
    args = parser.parse_args()
    if not (CORPORA / args.corpus / "pytest").exists():
        print(f"{args.corpus}: corpus not set up under {CORPORA}; nothing measured")
        return 1
    maps: dict[str, Lines] = {}
    with tempfile.TemporaryDirectory(prefix="feedback-map-cores-") as tmp:
        for core in ("ctrace", "sysmon"):
            db = Path(tmp) / f"{core}.db"
            cmd, cwd, env = corpus_command(
                args.corpus,
                [*PLUGIN, "--feedback-cov", f"--feedback-db={db}"],
            )
            cmd[0] = args.python
            env.pop("COVERAGE_CORE", None)
            if core == "ctrace":
                env["COVERAGE_CORE"] = "ctrace"
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
            if proc.returncode not in (0, 1):
                sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-2000:])
                return 1
            print(f"{core:7} map recorded in {time.perf_counter() - start:.1f} s")
            maps[core] = load(db)
    a, b = maps["ctrace"], maps["sysmon"]
    only = len(a.keys() ^ b.keys())
    differing = 0
    missing = extra = 0
    for key in a.keys() & b.keys():
        files = a[key].keys() | b[key].keys()
        diffs = [(a[key].get(f, set()), b[key].get(f, set())) for f in files]
        if any(x != y for x, y in diffs):
            differing += 1
            missing += sum(len(x - y) for x, y in diffs)
            extra += sum(len(y - x) for x, y in diffs)
    print(
        f"{args.corpus}: {len(a)} contexts (ctrace) vs {len(b)} (sysmon); in one only: {only};"
        f" differing: {differing} (lines only with ctrace {missing}, only with sysmon {extra})"
    )
    return 1 if only or differing else 0


if __name__ == "__main__":
    raise SystemExit(main())
