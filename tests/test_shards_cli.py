"""``pytest-feedback shards`` and ``pytest-feedback workers`` over a known history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

import pytest

from pytest_feedback.cli.commands import main
from test_parallel import NODEIDS, write_history


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "history.db"
    write_history(path)
    return path


def test_shards_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shards", "3", "--db", str(db), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == 1
    assert doc["n"] == 3
    assert doc["makespan_s"] == pytest.approx(3.2)
    assert doc["lower_bound_s"] == pytest.approx(3.2)
    assert [s["index"] for s in doc["shards"]] == [1, 2, 3]
    tests = [n for s in doc["shards"] for n in s["tests"]]
    assert sorted(tests) == NODEIDS


def test_shards_text_and_matrix(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shards", "2", "--db", str(db)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("15 tests on 2 shards: predicted makespan ")
    assert out[1].startswith("  shard 1/2: ")
    assert out[-1] == "run one with: pytest --feedback-shard K/2"
    assert main(["shards", "2", "--db", str(db), "--format", "github-matrix"]) == 0
    assert json.loads(capsys.readouterr().out) == {"include": [{"shard": "1/2"}, {"shard": "2/2"}]}


def test_workers(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["workers", "--target", "4s", "--max", "5", "--db", str(db), "--format", "json"]) == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == 1
    assert doc["target_s"] == 4.0
    assert [p["workers"] for p in doc["curve"]] == [1, 2, 3, 4, 5]
    assert doc["curve"][0]["makespan_s"] == pytest.approx(0.2 + 2.0 + 3.0 + 14 * 0.1)
    assert doc["recommended"] == 2
    assert doc["stops_paying"] == 3
    assert main(["workers", "--target", "1s", "--max", "3", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "no count up to 3 meets 1.00s: the best is 3.20s" in out
    assert "adding workers stops paying after 3" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["workers", "--target", "soon"], "--target: 'soon' is not a duration"),
        (["shards", "0"], "shards: 0 is not a positive number of shards"),
    ],
)
def test_bad_input(
    db: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([*argv, "--db", str(db)]) == 1
    assert message in capsys.readouterr().err


def test_empty_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shards", "2", "--db", str(tmp_path / "none.db")]) == 1
    assert "no history at" in capsys.readouterr().err


EVERY_DB_COMMAND = [
    ["runs"],
    ["import-junit", "report.xml"],
    ["report"],
    ["why", "a.py::x"],
    ["deps", "a.py"],
    ["shards", "2"],
    ["workers"],
    ["select"],
]


@pytest.mark.parametrize("command", EVERY_DB_COMMAND, ids=lambda c: c[0])
def test_every_subcommand_refuses_an_empty_db(
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--db", ""]) == 1
    assert "error: --db: empty path" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [["shards", "2"], ["workers", "--format", "json"], ["report"], ["select"]],
    ids=lambda c: c[0],
)
def test_every_output_file_is_closed(
    command: list[str], db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_feedback.cli import common

    opened: list[IO[str]] = []

    def tracking_open(*args: Any, **kwargs: Any) -> IO[str]:
        file: IO[str] = open(*args, **kwargs)  # noqa: SIM115 - the test checks it is closed
        opened.append(file)
        return file

    monkeypatch.setattr(common, "open", tracking_open, raising=False)
    out = tmp_path / "out.txt"
    assert main([*command, "--db", str(db), "-o", str(out)]) == 0
    assert len(opened) == 1
    assert opened[0].closed
    assert out.read_text(encoding="utf-8")
