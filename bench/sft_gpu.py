#!/usr/bin/env python3
"""Benchmark on a GPU machine: the GPU profile (configs/sft_gpu.yaml) on 1 GPU, and on 2 GPUs
through torchrun with FSDP2 and with DDP. Checks that the loss goes down, that the final
checkpoint reloads with plain transformers (offline) and gives the logged validation loss, and
runs predict on the test split. Writes a summary JSON, logs, metrics and plots under --out.

The device machine has no gguf and no Hugging Face access, so the model is a randomly
initialised Llama of SmolLM2-135M's exact shape (its config.json) with its tokenizer: the same
FLOPs and memory as the real model; the loss starts at ~ln(49152) and must fall on the data.

Usage (device): python3 bench/sft_gpu.py --shape DIR --data DIR --out DIR [--steps 200]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sh(cmd, log, env=None):
    t0 = time.time()
    with open(log, "a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        rc = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}).returncode
    return rc, round(time.time() - t0, 1)


def metrics(path):
    rows = [json.loads(x) for x in Path(path).read_text().splitlines()] if Path(path).is_file() else []
    vals = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    train = [r for r in rows if "train_loss" in r]
    return {"val_loss": vals, "train_loss_first": train[0]["train_loss"] if train else None,
            "train_loss_last": train[-1]["train_loss"] if train else None,
            "tokens_per_s": train[-1]["tokens_per_s"] if train else None,
            "median_step_s": sorted(r["step_s"] for r in train)[len(train) // 2] if train else None,
            "steps": len(train)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", required=True, help="folder with SmolLM2's config.json and tokenizer files")
    ap.add_argument("--data", required=True, help="data dir holding <level>/{train,validation,test}.jsonl")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--work", default="/tmp/sft_gpu")
    ap.add_argument("--runs", default="gpu1,fsdp2,ddp2", help="which of gpu1, fsdp2, ddp2 to run")
    ap.add_argument("--extra", nargs="*", default=[], help="more key=value config overrides for every run")
    a = ap.parse_args()
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out, work = Path(a.out), Path(a.work)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log = out / "sft_gpu.log"
    summary = {"gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
               "torch": torch.__version__, "transformers": __import__("transformers").__version__,
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": {}}
    # A random-init model of SmolLM2-135M's shape, with its tokenizer.
    model_dir = work / "smollm2-135m-shape-random"
    cfg = AutoConfig.from_pretrained(a.shape)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(model_dir)
    for f in Path(a.shape).iterdir():
        if f.name not in ("config.json", "model.safetensors"):
            shutil.copy(f, model_dir / f.name)
    common = [f"model={model_dir}", f"data_dir={Path(a.data).resolve()}", f"output_dir={work / 'results'}",
              "wandb.enabled=false", f"train.max_steps={a.steps}", "train.eval_every=50", "train.save_every=100",
              *a.extra, "--config", "configs/sft_gpu.yaml"]  # key=value before --config (argparse)
    summary["extra"] = list(a.extra)
    py = sys.executable
    runs = {
        "gpu1": ([py, "run_sft.py", "train", "run_name=gpu1"], {"CUDA_VISIBLE_DEVICES": "0"}),
        "fsdp2": ([py, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "run_sft.py", "train",
                   "run_name=fsdp2", "train.parallel=fsdp"], {}),
        "ddp2": ([py, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "run_sft.py", "train",
                  "run_name=ddp2", "train.parallel=ddp"], {}),
    }
    runs = {k: v for k, v in runs.items() if k in a.runs.split(",")}
    for name, (cmd, env) in runs.items():
        rc, secs = sh(cmd + common, log, env)
        summary["runs"][name] = {"rc": rc, "wall_s": secs, **metrics(work / "results" / name / "metrics.jsonl")}
        print(name, json.dumps(summary["runs"][name]), flush=True)
    # Reload the 1-GPU checkpoint offline with plain transformers; its validation loss must match the log.
    check = (
        "import json,sys,torch; from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "from sft_playbook.sft import data as D, fast; from sft_playbook.sft.recipe import loss_sum_and_count\n"
        "import yaml; cfg=yaml.safe_load(open('configs/sft_gpu.yaml'))\n"
        f"d='{work / 'results/gpu1/model'}'; m=fast.loss_model(AutoModelForCausalLM.from_pretrained(d).cuda()); t=AutoTokenizer.from_pretrained(d)\n"
        f"rows=D.read_split('{Path(a.data).resolve()}', cfg['level'], 'validation', cfg['data']['max_val_samples'])\n"
        "ex=D.encode_rows(rows,t,cfg['data'],cfg['data']['max_seq_len']).examples; s=n=0\n"
        "with torch.no_grad():\n"
        "  for b in D.eval_batches(ex, 2):\n"
        "    a,c=loss_sum_and_count(m,D.collate(b,t.pad_token_id,False),torch.device('cuda'),torch.bfloat16); s+=float(a); n+=int(c)\n"
        "print(json.dumps({'reloaded_val_loss': s/n}))\n")
    proc = subprocess.run([py, "-c", check], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "0"})
    with open(log, "a") as fh:
        fh.write(proc.stdout + proc.stderr[-5000:])
    try:
        summary["reload"] = json.loads(proc.stdout.strip().splitlines()[-1])
        summary["reload"]["logged_val_loss"] = summary["runs"]["gpu1"]["val_loss"][-1][1]
    except (IndexError, json.JSONDecodeError, KeyError):
        summary["reload"] = {"error": proc.stderr[-500:]}
    # Predict (base = the random init, finetuned = after training) on the test split, 1 GPU.
    rc, secs = sh([py, "run_sft.py", "predict", "run_name=gpu1", "predict.max_new_tokens=128"] + common, log,
                  {"CUDA_VISIBLE_DEVICES": "0"})
    summary["predict"] = {"rc": rc, "wall_s": secs}
    for name in ("gpu1", "fsdp2"):
        src = work / "results" / name
        for f, dst in (("metrics.jsonl", f"metrics_{name}.jsonl"), ("training.png", f"training_{name}.png")):
            if (src / f).is_file():
                shutil.copy(src / f, out / dst)
    if (work / "results/gpu1/predictions.jsonl").is_file():
        shutil.copy(work / "results/gpu1/predictions.jsonl", out / "predictions_gpu1.jsonl")
    (out / "sft_gpu_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=1))
    return 0 if all(r["rc"] == 0 for r in summary["runs"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
