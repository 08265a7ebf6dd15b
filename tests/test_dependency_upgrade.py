"""A dependency upgrade selects the tests that used the upgraded distribution (issue 24).

Two small distributions, ``alpha`` and ``beta`` (beta requires and imports alpha), and a pytest
plugin ``pytest-gamma`` are installed into a virtual environment the way an installer does it
(the package, its ``.dist-info`` with METADATA and RECORD); the environment sees this project's
own environment through a ``.pth`` file. A suite whose tests use alpha, beta (so alpha only
through beta), both, neither, or look for a distribution not installed is mapped there once with
``pytest --feedback-cov``; then each distribution is upgraded in turn and `select` decides in
this process, which sees the same installed distributions (its ``sys.path`` gets the
environment's site directory).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import textwrap
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from pytest_feedback.cli.commands import main
from pytest_feedback.depmap.distributions import DistIndex, file_url_path
from pytest_feedback.depmap.upgrades import DISTS_KEY, compare
from pytest_feedback.selection.dependencies import lock_not_installed, read_pins

ALPHA = {"1.0": 'def greet():\n    return "hello"\n', "1.1": 'def greet():\n    return "hi"\n'}
BETA = "import alpha\n\n\ndef shout():\n    return alpha.greet().upper()\n"
TESTS = {
    "tests/test_alpha.py": "import alpha\n\ndef test_alpha():\n    assert alpha.greet()\n",
    "tests/test_beta.py": "import beta\n\ndef test_beta():\n    assert beta.shout()\n",
    "tests/test_both.py": (
        "import alpha\nimport beta\n\n"
        "def test_both():\n    assert beta.shout() == alpha.greet().upper()\n"
    ),
    "tests/test_lazy.py": (
        "from proj.helpers import lazy_greeting\n\ndef test_lazy():\n    assert lazy_greeting()\n"
    ),
    "tests/test_neither.py": (
        "def test_neither():\n    assert sum([1, 2]) == 3\n\n"
        "def test_fails():\n    assert False, 'always'\n"
    ),
    "tests/test_optional.py": (
        "try:\n    import delta\nexcept ImportError:\n    delta = None\n\n"
        "def test_optional():\n    assert delta is None or delta.VALUE\n"
    ),
    # A child process's imports are not recorded: any change of the distributions selects it.
    "tests/test_child.py": (
        "import subprocess, sys\n\n"
        "def test_child():\n    subprocess.run([sys.executable, '-c', 'pass'], check=True)\n"
    ),
    # alpha is imported (by test_alpha.py) before this module's function imports it.
    "proj/__init__.py": "",
    "proj/helpers.py": "def lazy_greeting():\n    import alpha\n\n    return alpha.greet()\n",
    "requirements.txt": "alpha==1.0\nbeta==1.0\n",
}
ALWAYS = {"tests/test_neither.py::test_fails"}  # failed in its last run
CHILD = "tests/test_child.py::test_child"


def install(site: Path, name: str, version: str, files: dict[str, str], **meta: str) -> None:
    """Install a distribution as an installer does: its files and a dist-info with RECORD."""
    for old in site.glob(f"{name.replace('-', '_')}-*.dist-info"):
        for line in (old / "RECORD").read_text().splitlines():
            target = site / line.split(",")[0]
            if target.is_file():
                target.unlink()
        shutil.rmtree(old)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    headers = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    headers += [f"Requires-Dist: {r}" for r in meta.get("requires", "").split()]
    (info / "METADATA").write_text("\n".join(headers) + "\n")
    written = dict(files)
    if "entry_points" in meta:
        (info / "entry_points.txt").write_text(meta["entry_points"])
        written[f"{info.name}/entry_points.txt"] = meta["entry_points"]
    for path, text in files.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text(text)
    record = [f"{p},," for p in [*written, f"{info.name}/METADATA", f"{info.name}/RECORD"]]
    (info / "RECORD").write_text("\n".join(record) + "\n")


def install_alpha(site: Path, version: str) -> None:
    install(site, "alpha", version, {"alpha/__init__.py": ALPHA[version]})


def install_beta(site: Path, version: str) -> None:
    install(site, "beta", version, {"beta/__init__.py": BETA}, requires="alpha")


def install_gamma(site: Path, version: str) -> None:
    plugin = {"gamma_plugin.py": f"GAMMA = {version!r}\n"}
    install(
        site, "pytest-gamma", version, plugin, entry_points="[pytest11]\ngamma = gamma_plugin\n"
    )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(project, site directory) of a suite mapped in a virtual environment."""
    root = tmp_path_factory.mktemp("upgrade")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    ours = sysconfig.get_paths()["purelib"]
    (site / "_feedback_test_env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    install_alpha(site, "1.0")
    install_beta(site, "1.0")
    install_gamma(site, "1.0")
    project = root / "project"
    for path, text in TESTS.items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(textwrap.dedent(text))
    (project / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    run = subprocess.run(
        [str(python), "-m", "pytest", "--feedback-cov", "-p", "no:cacheprovider", "-q"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert "1 failed, 7 passed" in run.stdout, run.stdout
    return project, site


@pytest.fixture
def select(
    recorded: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Any:
    project, site = recorded
    monkeypatch.syspath_prepend(str(site))

    def decide(*extra: str) -> dict[str, Any]:
        capsys.readouterr()
        db = project / ".pytest-feedback" / "history.db"
        assert main(["select", "--format", "json", "--db", str(db), *extra]) == 0
        return dict(json.loads(capsys.readouterr().out))

    return decide


def explainer(project: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    def explain(nodeid: str) -> str:
        capsys.readouterr()
        db = project / ".pytest-feedback" / "history.db"
        assert main(["why", nodeid, "--db", str(db)]) == 0
        return capsys.readouterr().out

    return explain


def chosen(document: dict[str, Any]) -> dict[str, list[str]]:
    return {entry["nodeid"]: entry["reasons"] for entry in document["selected"]}


def test_each_upgrade_selects_the_tests_that_used_it(
    recorded: tuple[Path, Path], select: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    project, site = recorded
    explain = explainer(project, capsys)
    db = project / ".pytest-feedback" / "history.db"
    with closing(sqlite3.connect(db)) as con, con:
        rows = con.execute(
            "SELECT c.label, d.dist FROM map_dists d JOIN map_contexts c ON c.id = d.context_id"
        ).fetchall()
    used: dict[str, set[str]] = {label: set() for label, _ in rows}
    for label, dist in rows:
        used[label].add(dist)
    assert "alpha" in used["tests/test_alpha.py"]
    assert "beta" in used["tests/test_beta.py"]
    assert "import:delta" in used["tests/test_optional.py"]
    assert not any("alpha" in dists for label, dists in used.items() if "neither" in label)

    nothing = select()
    assert nothing["fallback"] is None
    assert set(chosen(nothing)) == ALWAYS

    try:
        install_alpha(site, "1.1")
        upgraded = select()
        assert upgraded["changed_distributions"] == ["alpha 1.0 → 1.1"]
        reasons = chosen(upgraded)
        assert set(reasons) == ALWAYS | {
            CHILD,
            "tests/test_alpha.py::test_alpha",
            "tests/test_beta.py::test_beta",
            "tests/test_both.py::test_both",
            "tests/test_lazy.py::test_lazy",
        }
        assert reasons["tests/test_alpha.py::test_alpha"] == ["uses alpha 1.0 → 1.1"]
        why = explain("tests/test_beta.py::test_beta")
        assert "  installed distributions (3): beta, pytest, pytest-feedback" in why
        assert "  - uses beta, which depends on alpha 1.0 → 1.1" in why
        assert "not selected: reaches none of the 0 changed files (it depends on" in explain(
            "tests/test_neither.py::test_neither"
        )
        assert (
            "uses beta, which depends on alpha 1.0 → 1.1"
            in reasons["tests/test_beta.py::test_beta"]
        )
    finally:
        install_alpha(site, "1.0")
    try:
        install_beta(site, "1.1")
        reasons = chosen(select())
        assert set(reasons) == ALWAYS | {
            CHILD,
            "tests/test_beta.py::test_beta",
            "tests/test_both.py::test_both",
        }
    finally:
        install_beta(site, "1.0")
    try:
        install(site, "delta", "1.0", {"delta.py": "VALUE = 1\n"})
        reasons = chosen(select())
        assert set(reasons) == ALWAYS | {CHILD, "tests/test_optional.py::test_optional"}
        assert reasons["tests/test_optional.py::test_optional"] == [
            "imported delta, not installed then; now delta 1.0 (added)"
        ]
    finally:
        shutil.rmtree(site / "delta-1.0.dist-info")
        (site / "delta.py").unlink()
    try:
        install_gamma(site, "1.1")
        everything = select()
        assert everything["fallback"] == (
            "installed packages changed: pytest-gamma 1.0 → 1.1: it is a pytest plugin"
            " (pytest11 entry point)"
        )
        assert len(everything["selected"]) == 8
    finally:
        install_gamma(site, "1.0")
    assert set(chosen(select())) == ALWAYS


def test_a_lock_file_change_asks_for_the_install_and_python_runs_everything(
    recorded: tuple[Path, Path], select: Any
) -> None:
    project, site = recorded
    requirements = project / "requirements.txt"
    before = requirements.read_text()
    try:
        requirements.write_text("alpha==1.1\nbeta==1.0\n")
        pending = select()
        assert pending["fallback"].startswith(
            "requirements.txt (pins alpha 1.1, installed 1.0) changed, but the installed packages"
            " are not the ones it pins: install the environment first"
        )
        install_alpha(site, "1.1")
        assert len(chosen(select())) == 6
    finally:
        requirements.write_text(before)
        install_alpha(site, "1.0")
    db = project / ".pytest-feedback" / "history.db"
    with closing(sqlite3.connect(db)) as con, con:
        (value,) = con.execute("SELECT value FROM meta WHERE key = 'map_environment'").fetchone()
        environment = json.loads(value)
        other = {**environment, "python": "CPython 3.99.0"}
        con.execute("UPDATE meta SET value = ? WHERE key = 'map_environment'", (json.dumps(other),))
    try:
        everything = select()
        assert everything["fallback"].startswith("Python changed (CPython 3.99.0 -> ")
        assert len(everything["selected"]) == 8
    finally:
        with closing(sqlite3.connect(db)) as con, con:
            con.execute(
                "UPDATE meta SET value = ? WHERE key = 'map_environment'",
                (json.dumps(environment),),
            )


def environment(packages: str, **facts: list[str]) -> dict[str, str]:
    return {"python": "CPython 3.12.3", "packages": packages, DISTS_KEY: json.dumps(facts)}


BEFORE = "alpha==1.0\nbeta==1.0\nboto==2.0"


@pytest.mark.parametrize(
    ("facts", "why"),
    [
        ({"early": ["alpha"]}, "was imported before the map's measurement started"),
        ({"pth": ["alpha"]}, "installs a .pth file"),
        ({"hooks": ["alpha"]}, "installs an import hook"),
        (
            {"plugins": ["pytest-x"], "requires": ["pytest-x>alpha"]},
            "dependency of a pytest plugin",
        ),
        ({"requires": ["pytest-feedback>beta", "beta>alpha"]}, "pytest-feedback or one of its"),
        ({"seen": ["alpha"]}, "cannot follow every use"),
        ({"seen": ["alpha"], "named": ["beta"], "requires": ["beta>alpha"]}, None),
    ],
)
def test_the_safety_rules_run_everything(facts: dict[str, list[str]], why: str | None) -> None:
    now = environment(BEFORE.replace("alpha==1.0", "alpha==1.1"))
    upgrade = compare(environment(BEFORE, **facts), now, DistIndex([]))
    assert upgrade is not None
    if why is None:
        assert upgrade.everything is None
        assert upgrade.reaches == {"alpha": {"alpha"}, "beta": {"alpha"}}
    else:
        assert upgrade.everything is not None
        assert upgrade.everything.startswith("alpha 1.0 → 1.1: it ")
        assert why in upgrade.everything
    assert compare(environment(BEFORE), environment(BEFORE), DistIndex([])) is None
    assert compare({"packages": BEFORE}, now, DistIndex([])) is None  # a map without the facts


def test_a_lock_file_counts_only_while_the_packages_are_unchanged() -> None:
    recorded = {"packages": "a==1", "input:uv.lock": "x", "input:pyproject.toml": "p"}
    assert lock_not_installed(recorded, recorded) is None
    assert lock_not_installed(recorded, {**recorded, "input:pyproject.toml": "q"}) is None
    pending = lock_not_installed(recorded, {**recorded, "input:uv.lock": "y"})
    assert pending is not None
    assert pending.startswith("uv.lock changed, but the installed packages are not the ones")
    assert (
        lock_not_installed(recorded, {**recorded, "input:uv.lock": "y", "packages": "a==2"}) is None
    )


def test_files_map_to_their_distribution_also_in_a_shared_namespace(tmp_path: Path) -> None:
    import importlib.metadata

    install(tmp_path, "ns-one", "1.0", {"nsp/one/__init__.py": "", "one_extra.py": ""})
    install(tmp_path, "ns-two", "2.0", {"nsp/two/__init__.py": ""}, requires="ns-one")
    install(tmp_path, "local-lib", "0.1", {"__editable__.local_lib-0.1.pth": "/elsewhere\n"})
    source = tmp_path / "checkout" / "local lib"
    url = {"url": source.as_uri(), "dir_info": {"editable": True}}
    (tmp_path / "local_lib-0.1.dist-info" / "direct_url.json").write_text(json.dumps(url))
    dists = importlib.metadata.distributions(path=[str(tmp_path)])
    index = DistIndex(dists)
    assert index.owners(str(source / "local_lib" / "core.py")) == ("local-lib",)
    assert index.pth == {"local-lib"}
    assert index.owners(str(tmp_path / "nsp" / "one" / "__init__.py")) == ("ns-one",)
    assert index.owners(str(tmp_path / "nsp" / "two" / "__init__.py")) == ("ns-two",)
    assert index.owners(str(tmp_path / "one_extra.py")) == ("ns-one",)
    assert index.owners(str(tmp_path / "elsewhere.py")) == ()
    assert index.provided_by("ns-one") == ["nsp", "one_extra"]
    assert index.requires["ns-two"] == {"ns-one"}
    assert index.versions == {"ns-one": "1.0", "ns-two": "2.0", "local-lib": "0.1"}
    assert file_url_path("file:///home/me/my%20lib") == "/home/me/my lib"
    assert file_url_path("file:///C:/src/caf%C3%A9") == "C:/src/café"


def test_pins_are_read_from_requirements_and_lock_files(tmp_path: Path) -> None:
    files = {
        "requirements.txt": "# pins\nAlpha_Pkg[x] == 1.0 ; python_version > '3'\n-e .\nbeta>=2\n",
        "uv.lock": '[[package]]\nname = "alpha-pkg"\nversion = "1.0"\n',
        "Pipfile.lock": json.dumps({"default": {"alpha-pkg": {"version": "==1.0"}}}),
        "weird.lock": "not a lock file we know",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    for name in ("requirements.txt", "uv.lock", "Pipfile.lock"):
        assert read_pins(tmp_path / name) == {"alpha-pkg": "1.0"}, name
    assert read_pins(tmp_path / "weird.lock") is None
    recorded = {"packages": "alpha-pkg==1.0", "input:uv.lock": "x"}
    moved = {"packages": "alpha-pkg==1.0", "input:uv.lock": "y"}
    # The lock changed and pins what is installed: nothing to install.
    assert lock_not_installed(recorded, moved, (), tmp_path) is None
    (tmp_path / "uv.lock").write_text('[[package]]\nname = "alpha-pkg"\nversion = "1.1"\n')
    pending = lock_not_installed(recorded, recorded, ["uv.lock"], tmp_path)
    assert pending is not None
    assert pending.startswith("uv.lock (pins alpha-pkg 1.1, installed 1.0) changed")


def test_a_partial_recording_outdates_the_users_of_a_changed_distribution(tmp_path: Path) -> None:
    from pytest_feedback.depmap.upgrades import outdate_upgraded
    from pytest_feedback.history.store import Store

    recorded = environment(BEFORE, named=["alpha", "beta"], requires=["beta>alpha"])
    now = environment(BEFORE.replace("alpha==1.0", "alpha==1.1"))
    with Store(tmp_path / "history.db") as store, store.db.transaction() as con:
        for n, label in enumerate(["a", "b", "c", "d"], 1):
            con.execute(
                "INSERT INTO map_contexts (id, kind, label, run_uuid, recorded_at, spawned,"
                " measured, outdated) VALUES (?, 't', ?, 'r', 0, 0, 0, 0)",
                (n, label),
            )
        con.executemany(
            "INSERT INTO map_dists (context_id, dist) VALUES (?, ?)",
            [(1, "alpha"), (2, "beta"), (3, "boto"), (4, "alpha")],
        )
        # d ran again under the new versions; a used alpha, b used beta (which requires it).
        assert outdate_upgraded(con, recorded, now, [4]) == 2
        stale = {r[0] for r in con.execute("SELECT label FROM map_contexts WHERE outdated = 1")}
        assert stale == {"a", "b"}
        other = {**now, "python": "CPython 3.13.0"}
        assert outdate_upgraded(con, recorded, other, [4]) == 1  # c: everything else
