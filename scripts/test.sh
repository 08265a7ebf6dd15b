#!/usr/bin/env bash
# The project's tests, as the README's second command and CI (.ci/run) run them:
#   1. the whole suite on the default python3 with the newest coverage.py we support;
#   2. the coverage.py adapter and the coverage-map tests against the OLDEST coverage.py we support
#      (the lower bound of pyproject.toml's pin), and on Python 3.12, where the map measures
#      through sys.monitoring instead of a tracer.
# Each step sets up its own virtual environment; pytest's exit 5 (no tests ran) fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

MAP_TESTS=(tests/test_coverage_internals.py tests/test_coverage_map.py tests/test_map_units.py)
# The lower bound of the pin for Python 3.10+ (Python 3.9 has a pin of its own).
OLDEST_COVERAGE=$(sed -n "s/^ *\"coverage>=\([0-9.]*\),<[0-9.]*; python_version >= '3.10'\",/\1/p" pyproject.toml)
[ -n "$OLDEST_COVERAGE" ] || { echo "scripts/test.sh: no coverage pin for Python 3.10+ in pyproject.toml" >&2; exit 1; }

step() { printf '\n== %s\n' "$*"; }

# The HTML report's browser test (tests/test_report_browser.py) drives Debian's chromium through
# Playwright (pip installs Playwright, never a browser of its own).
if ! command -v chromium >/dev/null 2>&1; then
  step "installing chromium for the HTML report's browser test"
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

venv() {  # venv DIR PYTHON [PIP ARGS...]: a virtual environment with the project and its tests
  local dir=$1 python=$2
  shift 2
  "$python" -m venv "$dir" && "$dir/bin/pip" install -q -e '.[test]' "$@"
}

python312() {
  local found
  found="$(pyenv root 2>/dev/null)/versions/3.12.1/bin/python3.12"
  [ -x "$found" ] || found=$(command -v python3.12 || true)
  [ -n "$found" ] || { echo "scripts/test.sh: no Python 3.12 (pyenv 3.12.1 or python3.12 on PATH)" >&2; exit 1; }
  echo "$found"
}

step "$(python3 --version), newest coverage.py: the whole suite"
venv .venv python3
.venv/bin/python -c 'import coverage; print("coverage.py", coverage.__version__)'
.venv/bin/pytest -p no:cacheprovider -n 2

step "$(python3 --version), oldest supported coverage.py ($OLDEST_COVERAGE): the map's tests"
venv .venv-coverage-oldest python3 "coverage==$OLDEST_COVERAGE"
.venv-coverage-oldest/bin/pytest -p no:cacheprovider -n 2 -q "${MAP_TESTS[@]}"

PY312=$(python312)
step "$("$PY312" --version) (sys.monitoring), newest coverage.py: the map's tests"
venv .venv-py312 "$PY312"
.venv-py312/bin/pytest -p no:cacheprovider -n 2 -q "${MAP_TESTS[@]}"
