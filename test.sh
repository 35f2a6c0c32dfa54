#!/usr/bin/env bash
# The test command: sets up what the tests need, runs the linter (ruff, configured in
# pyproject.toml; a finding fails the run), then the default suite (not the slow tests).
# Usage: bash test.sh [pytest args...]     e.g. bash test.sh -m slow     or     bash test.sh tests/test_config.py
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
args=("$@")
if [ "${#args[@]}" -eq 0 ]; then args=(-m "not slow and not gpu"); fi
set +e
if "$PY" -m ruff --version >/dev/null 2>&1; then
  "$PY" -m ruff check --no-cache .
  lint_rc=$?
else
  echo "test.sh: ruff is not installed for $PY (it comes with the dev extra: pip install -e '.[dev]')" >&2
  lint_rc=1
fi
"$PY" -m pytest "${args[@]}"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "test.sh: no tests ran - that is a failure" >&2; exit 1; fi
if [ "$lint_rc" -ne 0 ]; then
  echo "test.sh: ruff check found problems (see above; 'ruff check --fix' fixes some)" >&2
  if [ "$rc" -eq 0 ]; then rc=1; fi
fi
exit "$rc"
