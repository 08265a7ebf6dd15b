"""Which edits of a project-wide input file can change a test's outcome (docs/selection.md).

A change to ``pyproject.toml``, ``setup.cfg``, ``tox.ini`` or ``pytest.ini`` selects everything
only when it touches a part that can change what a test does: pytest's settings, build and
packaging settings, entry points, or a part we do not know. The rest cannot, and is compared
key by key (so comments and formatting never count):

- metadata (version, description, authors, classifiers, URLs);
- dependency declarations (``dependencies``, extras, dependency groups, requirements and lock
  files, ``.python-version``): they change nothing until they are installed, and then the
  installed packages (or the Python version) differ and the environment rule decides;
- the sections of linters, formatters, type checkers, coverage reports and release tools, and
  tox's own settings of which environments to build with which dependencies;
- in ``setup.py``, the metadata and dependency keywords of its ``setup()`` call, when the rest of
  the file is the same statement for statement (`setup_py_changes`): setup.py runs when the
  project is built, and the metadata it passes cannot change what a test does.

Anything not known to be harmless counts; so does a file whose old text is unknown or that does
not parse.
"""

from __future__ import annotations

import ast
import configparser
import fnmatch
from collections.abc import Iterable
from typing import Any, Optional

#: Files whose whole content only declares dependencies or the Python version.
_DECLARATIONS = (
    ".python-version", "requirements*.txt", "requirements*.in", "constraints*.txt", "*.lock",
    "Pipfile", "requirements/*.txt", "requirements/*.in",
)  # fmt: skip
#: Tools whose settings never change a test's outcome (``[tool.NAME]``, ``[NAME]`` sections).
_TOOLS = (
    "ruff", "black", "isort", "mypy", "mypy-*", "pyright", "basedpyright", "pylint", "pylint.*",
    "flake8", "pycodestyle", "pydocstyle", "codespell", "towncrier", "bumpversion",
    "bumpversion:*", "bumpver", "tbump", "commitizen", "check-manifest", "docformatter",
    "interrogate", "cibuildwheel", "semantic_release", "pyproject-fmt", "typos", "doc8",
    "rstcheck", "vulture", "bandit", "pycln", "autoflake", "refurb", "darglint", "yapf",
    "scriv", "repo-review", "ty", "pyrefly", "gh-actions", "gh",
    # coverage.py's settings decide what is measured and reported, never what a test does
    "coverage", "coverage:*",
)  # fmt: skip
#: Keywords of ``setup()`` that only declare metadata or dependencies (`setup_py_changes`).
_SETUP_HARMLESS = frozenset(
    {"version", "description", "long_description", "long_description_content_type", "author",
     "author_email", "maintainer", "maintainer_email", "url", "download_url", "project_urls",
     "license", "license_files", "classifiers", "keywords", "platforms", "python_requires",
     "install_requires", "extras_require", "tests_require", "setup_requires"}
)  # fmt: skip
#: ``pyproject.toml`` keys (dotted prefixes) that cannot change an outcome.
_TOML_HARMLESS = (
    "project.version", "project.description", "project.readme", "project.authors",
    "project.maintainers", "project.keywords", "project.classifiers", "project.urls",
    "project.license", "project.license-files", "project.requires-python",
    "project.dependencies", "project.optional-dependencies", "dependency-groups",
    "tool.poetry.version", "tool.poetry.description", "tool.poetry.authors",
    "tool.poetry.maintainers", "tool.poetry.readme", "tool.poetry.keywords",
    "tool.poetry.classifiers", "tool.poetry.urls", "tool.poetry.homepage",
    "tool.poetry.repository", "tool.poetry.documentation", "tool.poetry.license",
    "tool.poetry.dependencies", "tool.poetry.dev-dependencies", "tool.poetry.group",
    "tool.pdm.dev-dependencies", "tool.uv.dev-dependencies", "tool.hatch.envs",
    *(f"tool.{t}" for t in _TOOLS),
)  # fmt: skip
#: ``setup.cfg``/``tox.ini`` sections, and keys of sections, that cannot change an outcome.
_INI_HARMLESS = (
    "metadata", "options.install_requires", "options.python_requires",
    "options.tests_require", "options.setup_requires", "options.extras_require",
    "tox.envlist", "tox.env_list", "tox.minversion", "tox.min_version", "tox.requires",
    "tox.isolated_build", "tox.skip_missing_interpreters", "tox.labels",
    "testenv*.deps", "testenv*.description", "testenv*.extras", "testenv*.basepython",
    "testenv*.skip_install", "testenv*.allowlist_externals", "testenv*.whitelist_externals",
    "testenv*.labels", "testenv*.depends", *_TOOLS,
)  # fmt: skip


def harmless_path(path: str) -> bool:
    """Whether the whole file only declares dependencies or the Python version."""
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in _DECLARATIONS)


def outcome_changes(path: str, old: Optional[str], new: Optional[str]) -> Optional[str]:
    """What changed in the input file ``path`` that can change an outcome (``pyproject.toml
    [tool.pytest.ini_options]``), or None when nothing that can did."""
    if harmless_path(path):
        return None
    name = path.rsplit("/", 1)[-1]
    if name == "setup.py" and old is not None and new is not None:
        return setup_py_changes(old, new)
    parse = (
        parse_toml
        if name == "pyproject.toml"
        else _ini
        if name.endswith((".cfg", ".ini"))
        else None
    )
    if old is None or new is None or parse is None:
        return path
    before, after = parse(old), parse(new)
    if before is None or after is None:
        return path
    harmless = _TOML_HARMLESS if parse is parse_toml else _ini_harmless(name)
    changed = [k for k in _changed_keys(before, after) if not _matches(k, harmless)]
    if not changed:
        return None
    shown = ", ".join(sorted(changed)[:3]) + (", ..." if len(changed) > 3 else "")
    return f"{path} [{shown}]"


def _ini_harmless(name: str) -> tuple[str, ...]:
    if name in ("pytest.ini", ".pytest.ini"):
        return ("*",)  # pytest reads [pytest] only; `_matches` keeps that section
    return _INI_HARMLESS


def _matches(key: str, harmless: Iterable[str]) -> bool:
    if key == "pytest" or key.startswith(("pytest.", "tool:pytest", "tool.pytest")):
        return False  # pytest's own settings always count
    return any(
        fnmatch.fnmatchcase(key, pattern) or fnmatch.fnmatchcase(key, pattern + ".*")
        for pattern in harmless
    )


def _changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ (tables compared key by key, other values whole)."""
    out: list[str] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        dotted = prefix + key
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(_changed_keys(a, b, dotted + "."))
        elif a != b:
            out.append(dotted)
    return out


def parse_toml(text: str) -> Optional[dict[str, Any]]:
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError:
            return None
    try:
        parsed: dict[str, Any] = tomllib.loads(text)
    except Exception:  # any parse error: the file counts
        return None
    return parsed


def _ini(text: str) -> Optional[dict[str, Any]]:
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    return {section: dict(parser.items(section)) for section in parser.sections()}


def setup_py_changes(old: str, new: str) -> Optional[str]:
    """``setup.py`` when an edit of it can change an outcome; None when the file is the same but
    for the values of metadata and dependency keywords (`_SETUP_HARMLESS`) of its one
    ``setup()`` call (the order of the keywords kept)."""
    before, after = _setup_shape(old), _setup_shape(new)
    return None if before is not None and before == after else "setup.py"


def _setup_shape(text: str) -> Optional[str]:
    """The file's syntax tree with the harmless keywords' values blanked (None: no parse, or
    not one ``setup()`` call)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) == "setup"
    ]
    if len(calls) != 1:
        return None
    for keyword in calls[0].keywords:
        if keyword.arg in _SETUP_HARMLESS:
            keyword.value = ast.Constant(None)
    return ast.dump(tree)
