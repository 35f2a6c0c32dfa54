#!/usr/bin/env bash
# Step 2: fine-tune, predict and evaluate. Usage: bash run_sft.sh [step] [--config F] [key=value ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# The NeMo container when asked or when Docker + NVIDIA GPUs are here (scripts/container_hook.sh).
_cl_script=run_sft.sh
# shellcheck source=scripts/container_hook.sh
source scripts/container_hook.sh
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
exec "$PY" run_sft.py "$@"
