#!/usr/bin/env bash
# Step 2: fine-tune, predict and evaluate. Usage: bash run_sft.sh [step] [--config F] [key=value ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# The NeMo container: with --container, configs/container.yaml or by itself when Docker and NVIDIA
# GPUs are here (--no-container: never; --dry-run: show the docker command). 200 = run here.
_cl_rc=0
if command -v python3 >/dev/null 2>&1; then python3 scripts/container_launch.py run_sft.sh "$@" || _cl_rc=$?; else _cl_rc=200; fi
[ "$_cl_rc" -eq 200 ] || exit "$_cl_rc"
_cl_args=(); for _cl_a in "$@"; do case "$_cl_a" in --container|--no-container) ;; *) _cl_args+=("$_cl_a") ;; esac; done
set -- ${_cl_args[@]+"${_cl_args[@]}"}
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
exec "$PY" run_sft.py "$@"
