#!/usr/bin/env bash
# The project's tests, as the README's second command and CI (.ci/run) run them:
#   0. the README's first command (a virtual environment, the example suite with its report);
#   1. the coverage-map and selection tests on Python 3.9 (the oldest we support, with its own
#      coverage.py pin) and on Python 3.12 (where the map measures through sys.monitoring), and
#      the map's tests against the OLDEST coverage.py we support for Python 3.10+;
#   2. the whole suite on Python 3.11 (python3) with the newest coverage.py we support, then on
#      Python 3.13;
#   3. the docs: every block of README.md and docs/ a reader would copy, and the CI recipes as
#      pipelines (docs_tests/).
# Each Python gets its own virtual environment, set up in parallel while the first steps run
# (and chromium, for the browser test, is installed meanwhile when missing).
# Every step says which Python it uses; pytest's exit 5 (no tests ran) fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

MAP_TESTS=(tests/test_coverage_internals.py tests/test_coverage_map.py tests/test_map_units.py)
SELECTION_TESTS=(tests/test_select.py tests/test_selection_plugin.py tests/test_selection_real.py
  tests/test_changes.py tests/test_narrowing.py tests/test_affinity.py tests/test_faults_selection.py
  tests/test_dependency_upgrade.py)
# The lower bound of the pin for Python 3.10+ (Python 3.9 has a pin of its own).
OLDEST_COVERAGE=$(sed -n "s/^ *\"coverage>=\([0-9.]*\),<[0-9.]*; python_version >= '3.10'\",/\1/p" pyproject.toml)
[ -n "$OLDEST_COVERAGE" ] || { echo "scripts/test.sh: no coverage pin for Python 3.10+ in pyproject.toml" >&2; exit 1; }
# The README's first command, read from the README itself (the first line of its first block).
README_FIRST=$(sed -n '/^```bash$/{n;p;q;}' README.md)

step() { printf '\n== [%ss] %s\n' "$SECONDS" "$*"; }


python_of() {  # python_of X.Y: pyenv's interpreter of that version, else pythonX.Y on PATH
  local found
  found=$(ls -d "$(pyenv root 2>/dev/null)/versions/$1".*/bin/"python$1" 2>/dev/null | tail -n 1 || true)
  [ -n "$found" ] && [ -x "$found" ] || found=$(command -v "python$1" || true)
  [ -n "$found" ] || { echo "scripts/test.sh: no Python $1 (pyenv $1.x or python$1 on PATH)" >&2; exit 1; }
  echo "$found"
}

venv() {  # venv DIR PYTHON [PIP ARGS...]: a virtual environment with the project and its tests
  local dir=$1 python=$2
  shift 2
  "$python" -m venv "$dir" && "$dir/bin/pip" install -q -e '.[test]' "$@"
}

venv_light() {  # venv_light DIR PYTHON [PIP ARGS...]: the project alone (the map's and selection's
  # tests need nothing of the test extra: no browser, no docs tooling)
  local dir=$1 python=$2
  shift 2
  "$python" -m venv "$dir" && "$dir/bin/pip" install -q -e . "$@"
}

SETUP_LOGS=$(mktemp -d)
ready() {  # ready PID NAME: wait for a set-up started below; show its log if it failed
  wait "$1" || { cat "$SETUP_LOGS/$2" >&2; echo "scripts/test.sh: setting up $2 failed" >&2; exit 1; }
}

# The HTML report's browser test (tests/test_report_browser.py) drives Debian's chromium through
# Playwright (pip installs Playwright, never a browser of its own). Installed in the background
# while the first steps run; the whole suite waits for it.
chromium_setup() {
  command -v chromium >/dev/null 2>&1 && { echo "chromium: $(command -v chromium)"; return 0; }
  local sudo
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium
}
chromium_setup >"$SETUP_LOGS/chromium" 2>&1 & SETUP_CHROMIUM=$!

PY39=$(python_of 3.9)
PY312=$(python_of 3.12)
PY313=$(python_of 3.13)
# The other interpreters' environments, set up while the first steps run.
venv_light .venv-py39 "$PY39" >"$SETUP_LOGS/py39" 2>&1 & SETUP_PY39=$!
venv_light .venv-py312 "$PY312" >"$SETUP_LOGS/py312" 2>&1 & SETUP_PY312=$!
venv .venv-py313 "$PY313" >"$SETUP_LOGS/py313" 2>&1 & SETUP_PY313=$!
venv_light .venv-coverage-oldest python3 "coverage==$OLDEST_COVERAGE" >"$SETUP_LOGS/oldest" 2>&1 & SETUP_OLDEST=$!

step "$(python3 --version): the README's first command ($README_FIRST)"
EXAMPLE_PACE=0.1 bash -c "$README_FIRST" | tail -n 3

# This interpreter's environment gains the test extra (Playwright, ...) while the other
# interpreters' steps run.
venv .venv python3 >"$SETUP_LOGS/main" 2>&1 & SETUP_MAIN=$!

ready "$SETUP_PY39" py39
step "$(.venv-py39/bin/python --version), coverage.py $(.venv-py39/bin/python -c 'import coverage; print(coverage.__version__)'): the map's and selection's tests"
.venv-py39/bin/pytest -p no:cacheprovider -n 2 -q "${MAP_TESTS[@]}" "${SELECTION_TESTS[@]}"

ready "$SETUP_PY312" py312
step "$(.venv-py312/bin/python --version) (sys.monitoring), newest coverage.py: the map's and selection's tests"
.venv-py312/bin/pytest -p no:cacheprovider -n 2 -q "${MAP_TESTS[@]}" "${SELECTION_TESTS[@]}"

ready "$SETUP_OLDEST" oldest
step "$(.venv-coverage-oldest/bin/python --version), oldest supported coverage.py ($OLDEST_COVERAGE): the map's tests"
.venv-coverage-oldest/bin/pytest -p no:cacheprovider -n 2 -q "${MAP_TESTS[@]}"

ready "$SETUP_MAIN" main
ready "$SETUP_CHROMIUM" chromium
step "$(python3 --version), newest coverage.py ($(.venv/bin/python -c 'import coverage; print(coverage.__version__)')): the whole suite"
.venv/bin/pytest -p no:cacheprovider -n 2 -q

ready "$SETUP_PY313" py313
step "$(.venv-py313/bin/python --version): the whole suite"
.venv-py313/bin/pytest -p no:cacheprovider -n 2 -q

step "$(.venv/bin/python --version): the docs' blocks and CI recipes (docs_tests/)"
.venv/bin/pytest -p no:cacheprovider -n 2 -q docs_tests
step "done: every step passed"
