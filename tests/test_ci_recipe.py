"""The GitHub Actions recipe of docs/ci/github-actions.md, run locally on the example suite:
plan a matrix, run 3 shards from one restored history, merge their histories, publish the report.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_feedback.cli.commands import main
from pytest_feedback.history.store import Store

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_shards_merge_into_one_run_like_an_unsharded_one(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for item in EXAMPLES.iterdir():
        if item.name in ("pytest.ini", "shop", "tests"):
            copy = shutil.copytree if item.is_dir() else shutil.copy
            copy(item, pytester.path / item.name)
    monkeypatch.setenv("EXAMPLE_PACE", "0.01")
    path = pytester.path
    # The previous pipeline's history, as the cache restores it.
    pytester.runpytest("-p", "no:cacheprovider", "--feedback", "--feedback-db=restored.db")
    # A reference: the same suite, unsharded.
    full = pytester.runpytest("-p", "no:cacheprovider", "--feedback", "--feedback-db=full.db")
    full.assert_outcomes(passed=43)

    capsys.readouterr()
    assert main(["shards", "3", "--format", "github-matrix", f"--db={path / 'restored.db'}"]) == 0
    matrix = json.loads(capsys.readouterr().out)
    assert matrix == {"include": [{"shard": "1/3"}, {"shard": "2/3"}, {"shard": "3/3"}]}

    monkeypatch.setenv("PYTEST_FEEDBACK_PIPELINE", "recipe-1")
    passed = 0
    for entry in matrix["include"]:
        index = entry["shard"].split("/")[0]
        shutil.copy(path / "restored.db", path / f"shard-{index}.db")
        result = pytester.runpytest(
            "-p",
            "no:cacheprovider",
            f"--feedback-shard={entry['shard']}",
            f"--feedback-db=shard-{index}.db",
        )
        passed += result.parseoutcomes().get("passed", 0)
    assert passed == 43

    shutil.copy(path / "restored.db", path / "merged.db")
    shards = [str(path / f"shard-{i}.db") for i in (1, 2, 3)]
    assert main(["merge", *shards, "-o", str(path / "merged.db")]) == 0
    assert main(["merge", *shards, "-o", str(path / "merged.db")]) == 0  # idempotent
    capsys.readouterr()
    assert main(["report", "--format", "markdown", f"--db={path / 'merged.db'}"]) == 0
    summary = capsys.readouterr().out
    assert "| " in summary
    assert "test_month_end_batch" in summary

    with (
        Store.open_existing(path / "merged.db") as merged,
        Store.open_existing(path / "full.db") as reference,
    ):
        runs = merged.reads.runs()
        assert len(runs) == 2  # the restored run and this pipeline's one
        pipeline = runs[0]
        assert pipeline["pipeline"] == "recipe-1"
        assert pipeline["shard"] is None  # all three shards are in
        got = {r["nodeid"]: r["outcome"] for r in merged.reads.results(pipeline["id"])}
        want = {
            r["nodeid"]: r["outcome"]
            for r in reference.reads.results(reference.reads.runs()[0]["id"])
        }
        assert got == want
        shard_walls = []
        for i in (1, 2, 3):
            with Store.open_existing(path / f"shard-{i}.db") as shard:
                shard_walls.append(shard.reads.runs()[0]["wall_s"])
        assert pipeline["wall_s"] == pytest.approx(max(shard_walls))
