#!/usr/bin/env bash
# Step 2: fine-tune, predict and evaluate. Usage: bash run_sft.sh [step] [--config F] [key=value ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
exec "$PY" run_sft.py "$@"
