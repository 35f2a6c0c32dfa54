#!/usr/bin/env bash
# Issue 16: the training-throughput benchmark, every arm and lever, in one device call on
# `nvidia-h200-x2` (2 GPUs). Phase 1 runs two one-GPU processes side by side: our arm and its
# one-GPU levers on GPU 0 (plan llama-1b-ours3), the peers at their best on GPU 1 (llama-1b-peers:
# TRL, torchtune), same samples. Phase 2: our arm on both GPUs, FSDP2 and DDP with their levers
# (llama-1b-2gpu). Phase 3: the course's 7B job on both GPUs (llama2-7b-2gpu).
#
# Usage, from the repository root on the device (wheels: bash bench/fetch_trl_wheels.sh here):
#   WHL=.whl/trl bash bench/throughput_device.sh OUT [PHASES]      PHASES: e.g. 1,2,3 (default) or 3
# Budgets (s; a phase starts no new run after its budget): B1 (default 200), B2 (170), B3 (150).
# Writes OUT/rows.jsonl (every row, all phases, as it comes), OUT/p*.log, OUT/topo.txt and
# OUT/tables.tgz (each phase's table, env and profile).
set -uo pipefail
OUT=${1:?usage: throughput_device.sh OUT [PHASES]}
PHASES=${2:-1,2,3}
WHL=${WHL:-.whl/trl}
mkdir -p "$OUT"
RUN=/tmp/tput-run
mkdir -p "$RUN"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
t0=$(date +%s)
SITE=${SITE:-/tmp/site}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHL"/*.whl \
  > "$OUT/install.log" 2>&1 || { echo "wheel install failed"; tail -5 "$OUT/install.log"; }
export PYTHONPATH=$SITE:$PWD
PY=${PY:-python3}
{ nvidia-smi topo -m; nvidia-smi --query-gpu=index,name,clocks.max.sm,power.limit,memory.total --format=csv;
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, "gpus", torch.cuda.device_count())'; } \
  > "$OUT/topo.txt" 2>&1
echo "install + topo: $(( $(date +%s) - t0 )) s"; cat "$OUT/topo.txt" | head -8
EXTRA=${EXTRA:-}
has() { [[ ",$PHASES," == *",$1,"* ]]; }
if has 1; then
  CUDA_VISIBLE_DEVICES=0 $PY bench/train_throughput.py --shapes "${P1OURS:-llama-1b-ours3}" --arms check,ours \
    --out "$RUN/p1ours" --rows-to "$OUT/rows.jsonl" --budget-s "${B1:-200}" $EXTRA > "$OUT/p1ours.log" 2>&1 &
  a=$!
  CUDA_VISIBLE_DEVICES=1 $PY bench/train_throughput.py --shapes "${P1PEERS:-llama-1b-peers}" --arms trl,torchtune \
    --out "$RUN/p1peers" --workdir /tmp/tt-work --rows-to "$OUT/rows.jsonl" --budget-s "${B1:-200}" $EXTRA \
    > "$OUT/p1peers.log" 2>&1 &
  b=$!
  wait $a; echo "phase 1 ours: rc=$? at $(( $(date +%s) - t0 )) s"
  wait $b; echo "phase 1 peers: rc=$? at $(( $(date +%s) - t0 )) s"
fi
if has 2; then
  $PY -m torch.distributed.run --standalone --nproc-per-node 2 bench/train_throughput.py --shapes "${P2:-llama-1b-2gpu}" --arms comm,ours \
    --out "$RUN/p2" --rows-to "$OUT/rows.jsonl" --budget-s "${B2:-170}" $EXTRA > "$OUT/p2.log" 2>&1
  echo "phase 2: rc=$? at $(( $(date +%s) - t0 )) s"
fi
if has 3; then
  $PY -m torch.distributed.run --standalone --nproc-per-node 2 bench/train_throughput.py --shapes "${P3:-llama2-7b-2gpu}" --arms ours \
    --steps-big "${STEPS_7B:-10}" --out "$RUN/p3" --rows-to "$OUT/rows.jsonl" --budget-s "${B3:-150}" $EXTRA \
    > "$OUT/p3.log" 2>&1
  echo "phase 3: rc=$? at $(( $(date +%s) - t0 )) s"
fi
tar czf "$OUT/tables.tgz" -C "$RUN" --exclude='trl_work' --exclude='tt_work' . 2>/dev/null
python3 - "$OUT/rows.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "check" in r:
        print("check:", json.dumps(r)[:300]); continue
    v = r.get("variant") or r.get("mode")
    mb = f" mb{r['micro_batch']}x{r.get('seq_len')}" if r.get("micro_batch") else ""
    print(f"{r.get('plan')} | {r['arm']} | {v}{mb} | {r.get('tokens_per_s', '-')} tok/s | mfu {r.get('mfu', '-')} | "
          f"peak {r.get('peak_mem_gib')} | world {r.get('world', 1)} | {r.get('first_losses', '')[:3] if r.get('first_losses') else ''} | {r.get('error', '')[:100]}")
PY
echo "total: $(( $(date +%s) - t0 )) s"
