#!/usr/bin/env bash
# Step 1: curate the sources in sources/huggingface_urls.jsonl into data/merged/.
# Usage: bash curate_data.sh [--config configs/curate.yaml] [key=value ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# The NeMo container when asked or when Docker + NVIDIA GPUs are here (scripts/container_hook.sh).
_cl_script=curate_data.sh
# shellcheck source=scripts/container_hook.sh
source scripts/container_hook.sh
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
exec "$PY" curate_data.py "$@"
