"""pytest-feedback's own file reads are no test's dependency (`access.unwatched`)."""

from __future__ import annotations

import os
from pathlib import Path

from pytest_feedback.depmap.access import AccessWatch, unwatched


def test_reads_inside_unwatched_are_not_recorded(tmp_path: Path) -> None:
    data, settings = tmp_path / "data.json", tmp_path / "pyproject.toml"
    data.write_text("{}")
    settings.write_text("")
    watch = AccessWatch(os.path.join(str(tmp_path), ""), (), lambda: "collect:pkg")
    watch.listen()
    try:
        with unwatched():  # the selection deciding while pytest collects the package
            settings.read_text()
        data.read_text()  # the collector's own read
    finally:
        watch.stop()
    assert {Path(p).name for p in watch.reads.get("collect:pkg", set())} == {"data.json"}
