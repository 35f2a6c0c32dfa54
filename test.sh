#!/usr/bin/env bash
# The test command: sets up what the tests need, then runs the default suite (not the slow tests).
# Usage: bash test.sh [pytest args...]     e.g. bash test.sh -m slow     or     bash test.sh tests/test_config.py
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
args=("$@")
if [ "${#args[@]}" -eq 0 ]; then args=(-m "not slow and not gpu"); fi
set +e
"$PY" -m pytest "${args[@]}"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "test.sh: no tests ran - that is a failure" >&2; exit 1; fi
exit "$rc"
