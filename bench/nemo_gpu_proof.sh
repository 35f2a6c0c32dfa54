#!/usr/bin/env bash
# Proof of the NeMo backend on GPUs: a tiny random Llama (SmolLM2 tokenizer) through
# convert (llm.import_ckpt + weight check) -> finetune (loss must fall) -> NeMo generate -> export to HF,
# on 1 GPU, then with tensor parallel 2 on 2 GPUs (skipped, and said so, when fewer than 2 GPUs are
# visible; PROOF_TP2=0 skips it too). Results go to docs/benchmarks.md (section nemo).
#
# Needs: python3 with torch + CUDA, and NeMo 2.7.3's wheel set in .whl/nemo/ (see README "NeMo path";
# the wheels, the tokenizer files in .whl/nemo/tok/ and a data snapshot in .whl/nemo/data/ are not in git).
# Usage: bash bench/nemo_gpu_proof.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${1:-${OUT:-results/nemo-proof}}"
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 WANDB_MODE=disabled PYTHONUNBUFFERED=1
t0=$(date +%s)
if [ -d .whl/nemo ] && ! python3 -c 'from nemo.collections import llm' 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/nemo/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD"
fi
export PYTHONPATH="${PYTHONPATH:-$PWD}"
echo "install: $(( $(date +%s) - t0 ))s" | tee "$OUT/summary.txt"
python3 - <<'EOF' 2>&1 | tail -3 | tee -a "$OUT/summary.txt"
import nemo, torch, transformers, megatron.core, importlib.util
print("nemo", nemo.__version__, "megatron-core", megatron.core.__version__, "torch", torch.__version__,
      "transformers", transformers.__version__, "TE", importlib.util.find_spec("transformer_engine") is not None,
      "gpus", torch.cuda.device_count(), torch.cuda.get_device_name(0))
EOF
python3 -c "from sft_playbook.sft.nemo_plan import make_tiny_llama as m; m('/tmp/tiny-llama', '.whl/nemo/tok', layers=4, hidden=256, heads=8, kv_heads=4)" || exit 1

common=(backend=nemo model=/tmp/tiny-llama data_dir=.whl/nemo/data output_dir=/tmp/nemo-results
        nemo.cache_dir=/tmp/nemo-cache wandb.enabled=false train.max_steps=40 train.eval_every=10
        train.save_every=40 train.warmup_steps=4 train.lr=1e-3 data.max_seq_len=512
        predict.max_samples=8 predict.max_new_tokens=64 evaluate.verilog=false)
run() {  # run NAME overrides...
  local name=$1; shift
  local t=$(date +%s)
  local rc="" step
  for step in ${PROOF_STEPS:-train predict}; do
    python3 run_sft.py --config configs/sft_gpu.yaml "$step" "${common[@]}" run_name="$name" "$@" >> "$OUT/$name.log" 2>&1
    rc="$rc$step=$? "
  done
  local r=/tmp/nemo-results/$name
  cp "$r/metrics.jsonl" "$OUT/$name-metrics.jsonl" 2>/dev/null
  cp "$r/predictions.jsonl" "$OUT/$name-predictions.jsonl" 2>/dev/null
  # what each NeMo phase reported (times, checks) and the last error, if any
  grep -E "converted .* in |conversion check|copied [0-9]+ of them|NeMo fine-tuning:|readable context|exported .* in |export check|separate RMSNorm|NeMo generate|Failed to dump|Error|error:" \
    "$OUT/$name.log" | grep -v -E "^\s+File|UserWarning|FutureWarning" | cut -c1-300 | tail -15 | sed "s/^/  $name| /" | tee -a "$OUT/summary.txt"
  python3 - "$name" "$r" "${rc% }" "$(( $(date +%s) - t ))" <<'EOF' | tee -a "$OUT/summary.txt"
import json, sys, pathlib
name, r, rc, secs = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3], sys.argv[4]
m = [json.loads(x) for x in (r / "metrics.jsonl").read_text().splitlines()] if (r / "metrics.jsonl").is_file() else []
tr = [x for x in m if "train_loss" in x]; va = [x for x in m if "val_loss" in x]
p = [json.loads(x) for x in (r / "predictions.jsonl").read_text().splitlines()] if (r / "predictions.jsonl").is_file() else []
exp = sorted(f.name for f in (r / "model").iterdir()) if (r / "model").is_dir() else []
for ctx in sorted((r / "nemo" / "logs").rglob("context/io.json")):
    text = ctx.read_text()
    try:
        json.loads(text); ok = "valid JSON"
    except ValueError as e:
        ok = f"INVALID ({type(e).__name__})"
    print(f"  {name}| checkpoint {ctx.parent.parent.name}: context/io.json {len(text)} bytes, {ok}")
print(f"{name}: rc={rc} wall={secs}s steps={len(tr)} train_loss first={tr[0]['train_loss'] if tr else None} "
      f"last={tr[-1]['train_loss'] if tr else None} val_loss={[round(x['val_loss'], 3) for x in va]} "
      f"predictions={len(p)} ({sorted(set(x['model'] for x in p))}) exported={exp}")
EOF
}
run nemo-tiny-1gpu nemo.devices=1 nemo.tensor_parallel=1
gpus=$(python3 -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)
if [ "${PROOF_TP2:-1}" != "0" ] && [ "$gpus" -ge 2 ]; then
  run nemo-tiny-tp2 nemo.devices=2 nemo.tensor_parallel=2
else
  echo "nemo-tiny-tp2: SKIPPED (TP=2 needs 2 GPUs; $gpus visible, PROOF_TP2=${PROOF_TP2:-1})" | tee -a "$OUT/summary.txt"
fi
# the exported HF folder loads in plain transformers, generates, and carries the fine-tuned weights:
# its loss on a training row is far below the random starting model's (/tmp/tiny-llama)
python3 - <<'EOF' 2>&1 | grep -E "^nemo-tiny|^base" | tee -a "$OUT/summary.txt"
import json, os
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer
row = json.loads(open(".whl/nemo/data/high_level/train.jsonl").readline())
text = str(row.get("input", "")) + str(row.get("output", ""))
def loss(d):
    m = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32); t = AutoTokenizer.from_pretrained(d)
    ids = t(text, return_tensors="pt").input_ids[:, :512]
    with torch.no_grad():
        return m, ids, round(m(ids, labels=ids).loss.item(), 3)
print("base (random tiny Llama) loss on a training row:", loss("/tmp/tiny-llama")[2])
for name in ("nemo-tiny-1gpu", "nemo-tiny-tp2"):
    d = f"/tmp/nemo-results/{name}/model"
    if not os.path.isdir(f"/tmp/nemo-results/{name}"):
        continue
    try:
        m, ids, l = loss(d)
        gen = m.generate(ids[:, :64], max_new_tokens=16, do_sample=False)
        print(name, f"export loads in transformers {transformers.__version__} ({type(m).__name__}, "
              f"{sum(p.numel() for p in m.parameters())} parameters); loss on a training row {l}; "
              f"generate: {gen.shape[1] - 64} new tokens")
    except Exception as e:
        print(name, "export check failed:", type(e).__name__, str(e)[:200])
EOF
echo "total: $(( $(date +%s) - t0 ))s" | tee -a "$OUT/summary.txt"
