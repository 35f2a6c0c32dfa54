#!/usr/bin/env bash
# Step 1: curate the sources in sources/huggingface_urls.jsonl into data/merged/.
# Usage: bash curate_data.sh [--config configs/curate.yaml] [key=value ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# The NeMo container: with --container, configs/container.yaml or by itself when Docker and NVIDIA
# GPUs are here (--no-container: never; --dry-run: show the docker command). 200 = run here.
_cl_rc=0
if command -v python3 >/dev/null 2>&1; then python3 scripts/container_launch.py curate_data.sh "$@" || _cl_rc=$?; else _cl_rc=200; fi
[ "$_cl_rc" -eq 200 ] || exit "$_cl_rc"
_cl_args=(); for _cl_a in "$@"; do case "$_cl_a" in --container|--no-container) ;; *) _cl_args+=("$_cl_a") ;; esac; done
set -- ${_cl_args[@]+"${_cl_args[@]}"}
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
exec "$PY" curate_data.py "$@"
