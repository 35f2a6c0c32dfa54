#!/bin/bash
# call 2+: second GGUF half, data, VerilogEval; run the plan ($1) with deadline $2 s
set -eo pipefail
H=$(cd "$(dirname "$0")" && pwd)
cat /tmp/g/gguf.part00 "$H/gguf.part01" > /tmp/m.gguf   # ~1 s; never a stale or half-written file
mkdir -p /tmp/d /tmp/ve && tar xzf "$H/realdata.tgz" -C /tmp/d && tar xzf "$H/ve.tgz" -C /tmp/ve
cd /tmp/code && PYTHONPATH=/tmp/site:/tmp/code PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True \
  python3 bench/real_job.py device --data /tmp/d/merged --model /tmp/m.gguf --problems /tmp/ve/spec-to-rtl \
  --out "$OUT" --work /tmp/real_job --plan "$1" --jobs 2 --serial-generate --budget-s 200 --deadline-s "$2" 2>&1 | tail -c 6000
