"""Which parts of pyproject.toml, setup.cfg, tox.ini and pytest.ini can change an outcome."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_feedback.depmap.environment import fingerprint
from pytest_feedback.selection.inputs import environment_changes
from pytest_feedback.selection.project_inputs import outcome_changes

PYPROJECT = """\
[project]
name = "pkg"
version = "1.0"
dependencies = ["attrs"]
entry-points = {pytest11 = {pkg = "pkg.plugin"}}

[project.optional-dependencies]
test = ["pytest"]

[tool.ruff]
line-length = 100

[tool.pytest.ini_options]
addopts = "-q"
"""
needs_toml = pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib (or tomli)")


@needs_toml
@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('version = "1.0"', 'version = "1.1"'),
        ('dependencies = ["attrs"]', 'dependencies = ["attrs>=23"]'),
        ('test = ["pytest"]', 'test = ["pytest", "hypothesis"]'),
        ("line-length = 100", "line-length = 88"),
        ('addopts = "-q"', 'addopts = "-q"  # a comment'),
    ],
    ids=["version", "dependency", "extra", "linter", "comment"],
)
def test_harmless_pyproject_edits(old: str, new: str) -> None:
    assert outcome_changes("pyproject.toml", PYPROJECT, PYPROJECT.replace(old, new)) is None


@needs_toml
@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ('addopts = "-q"', 'addopts = "-x"', "tool.pytest.ini_options.addopts"),
        ("pkg.plugin", "pkg.other", "project.entry-points.pytest11.pkg"),
        ("[tool.ruff]", "[tool.unknown]", "tool.unknown"),
    ],
    ids=["pytest", "entry-point", "unknown-tool"],
)
def test_pyproject_edits_that_count(old: str, new: str, reason: str) -> None:
    new_text = PYPROJECT.replace(old, new)
    assert outcome_changes("pyproject.toml", PYPROJECT, new_text) == f"pyproject.toml [{reason}]"


def test_ini_files_compare_key_by_key() -> None:
    cfg = (
        "[metadata]\nversion = 1\n\n[flake8]\nmax-line-length = 99\n\n[tool:pytest]\naddopts = -q\n"
    )
    assert outcome_changes("setup.cfg", cfg, cfg.replace("version = 1", "version = 2")) is None
    assert outcome_changes("setup.cfg", cfg, cfg.replace("99", "88")) is None
    changed = outcome_changes("setup.cfg", cfg, cfg.replace("-q", "-x"))
    assert changed == "setup.cfg [tool:pytest.addopts]"
    tox = "[tox]\nenvlist = py39\n\n[testenv]\ndeps = pytest\ncommands = pytest\n\n"
    tox += "[pytest]\nxfail_strict = true\n"
    assert outcome_changes("tox.ini", tox, tox.replace("py39", "py39,py312")) is None
    assert (
        outcome_changes("tox.ini", tox, tox.replace("deps = pytest", "deps = pytest\n  attrs"))
        is None
    )
    assert outcome_changes("tox.ini", tox, tox.replace("commands = pytest", "commands = pytest -x"))
    assert outcome_changes("tox.ini", tox, tox.replace("true", "false"))
    ini = "[pytest]\naddopts = -q\n"
    assert outcome_changes("pytest.ini", ini, ini + "# a note\n") is None
    assert (
        outcome_changes("pytest.ini", ini, ini.replace("-q", "-x")) == "pytest.ini [pytest.addopts]"
    )


def test_unknown_text_setup_py_and_parse_errors_count() -> None:
    assert outcome_changes("pyproject.toml", None, PYPROJECT) == "pyproject.toml"
    assert outcome_changes("setup.py", "x = 1\n", "x = 2\n") == "setup.py"
    assert outcome_changes("setup.cfg", "[a]\nb = 1\n", "[a\n") == "setup.cfg"
    assert outcome_changes("requirements.txt", None, "attrs\n") is None  # installed, or not


def test_the_environment_compares_the_texts_the_map_kept() -> None:
    base = {"python": "CPython 3.12.3", "packages": "attrs==24.1"}
    ini = "[pytest]\naddopts = -q\n\n[flake8]\nmax-line-length = 99\n"
    recorded = {**base, "input:tox.ini": "a", "text:tox.ini": ini}
    harmless = {**base, "input:tox.ini": "b", "text:tox.ini": ini.replace("99", "88")}
    assert environment_changes(recorded, harmless) == []
    counts = {**base, "input:tox.ini": "c", "text:tox.ini": ini.replace("-q", "-x")}
    assert environment_changes(recorded, counts) == [
        "project-wide input changed: tox.ini [pytest.addopts]"
    ]


SETUP_PY = """\
from setuptools import setup

setup(
    name="pkg",
    version="1.0",
    python_requires=">=3.8",
    classifiers=["Programming Language :: Python :: 3.8"],
    packages=["pkg"],
    entry_points={"pytest11": ["pkg = pkg.plugin"]},
    long_description=open("README.rst").read(),
)
"""


@pytest.mark.parametrize(
    ("old", "new", "counts"),
    [
        ('version="1.0"', 'version="1.1"', False),
        ('">=3.8"', '">=3.9"', False),
        ('"Programming Language :: Python :: 3.8"', '"Programming Language :: Python"', False),
        ('open("README.rst").read()', 'open("README.md").read()', False),
        ('packages=["pkg"]', 'packages=["pkg", "pkg.sub"]', True),
        ("pkg.plugin", "pkg.other", True),
        ("from setuptools import setup", "import os\nfrom setuptools import setup", True),
        ('    version="1.0",\n', '    version="1.0",\n    zip_safe=False,\n', True),
    ],
    ids=["version", "python-requires", "classifier", "readme", "packages", "entry-point",
         "other-code", "new-keyword"],
)  # fmt: skip
def test_setup_py_counts_unless_only_metadata_keywords_changed(
    old: str, new: str, counts: bool
) -> None:
    new_text = SETUP_PY.replace(old, new)
    assert new_text != SETUP_PY
    assert (outcome_changes("setup.py", SETUP_PY, new_text) == "setup.py") is counts


def test_coverage_settings_are_harmless() -> None:
    cfg = "[coverage:run]\nbranch = true\n\n[coverage:report]\nfail_under = 90\n"
    assert outcome_changes("setup.cfg", cfg, cfg.replace("90", "95")) is None
    assert outcome_changes("setup.cfg", cfg, cfg.replace("true", "false")) is None


def test_the_map_keeps_the_text_of_setup_py(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text(SETUP_PY)
    recorded = fingerprint(tmp_path, texts=True)
    assert recorded["text:setup.py"] == SETUP_PY
