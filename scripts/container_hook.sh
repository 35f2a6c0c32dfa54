# shellcheck shell=bash
# Sourced (without arguments) by run_sft.sh and curate_data.sh, with _cl_script set to the script's
# name: runs the script inside the NeMo container when asked (--container, configs/container.yaml)
# or by itself when Docker and NVIDIA GPUs are here (--no-container: never; --dry-run: show the
# docker command). scripts/container_launch.py exits 200 for "run here"; then the --container /
# --no-container flags are removed from the caller's arguments and the caller goes on.
_cl_rc=0
if command -v python3 >/dev/null 2>&1; then python3 scripts/container_launch.py "$_cl_script" "$@" || _cl_rc=$?; else _cl_rc=200; fi
[ "$_cl_rc" -eq 200 ] || exit "$_cl_rc"
_cl_args=(); for _cl_a in "$@"; do case "$_cl_a" in --container|--no-container) ;; *) _cl_args+=("$_cl_a") ;; esac; done
set -- ${_cl_args[@]+"${_cl_args[@]}"}
