#!/usr/bin/env bash
# Verilog evaluation (evaluate.py): score predictions, VerilogEval v2 pass@k, its references, its
# prompts, its download. Usage: bash evaluate.sh <step> [--config configs/eval.yaml] [key=value ...]
# Sets up the environment first (scripts/bootstrap.sh: .venv, dependencies, Icarus Verilog), like
# curate_data.sh and run_sft.sh, so it works in a fresh shell.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
exec "$PY" evaluate.py "$@"
