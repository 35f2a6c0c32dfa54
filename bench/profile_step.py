#!/usr/bin/env python3
"""Where the time of one training step goes: the recipe's own loop (SFTRecipe.train), profiled.

For each named setting (config file + overrides), trains a few steps on the given data and
profiles steps `--wait`+1 .. with torch.profiler (CPU + CUDA activities), hooked on the tracker's
per-step log call, so the profiled region is exactly the recipe's steps (collate, forward,
backward, clipping, optimizer, the loss read-back). Prints per setting: median step time, real
tokens/s, and the top operators by CUDA time and by CPU time; writes the tables to --out.

Model: a random init of the given shape (config.json + tokenizer; same FLOPs as the real model).
Usage (device): python3 bench/profile_step.py --shape DIR --data DIR --out DIR [--only course,fast]
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETTINGS = {
    # the GPU profile as it was (issue 20: 0.63 s per step on the real slice)
    "course": ("configs/sft_gpu.yaml", ["data.max_seq_len=1024", "data.overlength=truncate", "data.packing=false",
                                        "data.pack_strategy=next_fit", "data.prompt_forms=[header]",
                                        "train.micro_batch_size=2", "train.global_batch_size=8",
                                        "train.attention=sdpa", "train.loss=full", "train.compile=false"]),
    # the same batches with only the per-step overheads of the old profile removed (no compile):
    "packed-eager": ("configs/sft_gpu.yaml", ["data.prompt_forms=[header]", "train.compile=false"]),
    # the GPU profile now (configs/sft_gpu.yaml as committed), one form so the tokens per step compare
    "fast": ("configs/sft_gpu.yaml", ["data.prompt_forms=[header]"]),
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default=",".join(SETTINGS))
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--wait", type=int, default=8, help="steps before the profiled ones (compilation, warm-up)")
    ap.add_argument("--active", type=int, default=2)
    a = ap.parse_args()
    import torch
    from torch.profiler import ProfilerActivity, profile, schedule
    from transformers import AutoConfig, AutoModelForCausalLM

    from sft_playbook.config import load_config
    from sft_playbook.sft.recipe import SFTRecipe

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path("/tmp/profile_step")
    shutil.rmtree(work, ignore_errors=True)
    model_dir = work / "model"
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(a.shape)).save_pretrained(model_dir)
    for f in Path(a.shape).iterdir():
        if f.name not in ("config.json", "model.safetensors"):
            shutil.copy(f, model_dir / f.name)
    cuda = torch.cuda.is_available()
    summary = {"gpu": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__, "settings": {}}
    for name in a.only.split(","):
        cfg_file, over = SETTINGS[name]
        cfg = load_config(ROOT / cfg_file, over + [
            f"model={model_dir}", f"data_dir={Path(a.data).resolve()}", f"output_dir={work / 'results'}",
            f"run_name={name}", "wandb.enabled=false", f"train.max_steps={a.steps}", "train.eval_every=0",
            f"train.save_every={10 * a.steps}", "data.max_val_samples=8"])
        recipe = SFTRecipe(cfg)
        recipe.setup()
        # the recipe does not save before the end; skip the final save for the profile
        recipe.save_final = lambda: None
        recipe.save_checkpoint = lambda step: None
        prof = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA],
                       schedule=schedule(skip_first=1 + a.wait, wait=0, warmup=0, active=a.active, repeat=1),
                       record_shapes=False)
        log = recipe.tracker.log

        def hooked(row, _log=log):
            _log(row)
            if cuda:
                torch.cuda.synchronize()
            prof.step()

        recipe.tracker.log = hooked
        t0 = time.time()
        with prof:
            recipe.train()
        wall = time.time() - t0
        recipe.cleanup()
        rows = [json.loads(x) for x in (work / "results" / name / "metrics.jsonl").read_text().splitlines()]
        steps = [r for r in rows if "step_s" in r]
        later = steps[a.wait:]
        tokens = [r["target_tokens"] for r in later]
        med = statistics.median(r["step_s"] for r in later)
        # real (non-pad) tokens of each step, from the running tokens/s the recipe logs
        cum, seen = 0.0, []
        for r in steps:
            cum += r["step_s"]
            seen.append(r["tokens_per_s"] * cum)
        per_step = [b - a_ for a_, b in zip([0.0] + seen[:-1], seen)][a.wait:]
        real_tok = round(sum(per_step) / sum(r["step_s"] for r in later), 1)
        cuda_table = prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=18, max_name_column_width=60)
        cpu_table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=60)
        ka = prof.key_averages()
        # kernels only: the ProfilerStep* rows span whole steps and are not device work
        cuda_total = sum(e.self_device_time_total for e in ka if not e.key.startswith("ProfilerStep")) / 1e3 / a.active
        (out / f"profile_{name}.txt").write_text(f"# {name}: {cfg_file} + {over}\n\n## by self CUDA time\n{cuda_table}\n\n"
                                                 f"## by self CPU time\n{cpu_table}\n")
        s = {"overrides": over, "median_step_s": med, "first_step_s": steps[0]["step_s"],
             "target_tokens_per_step": statistics.median(tokens), "tokens_per_s_running": real_tok,
             "cuda_ms_per_profiled_step": round(cuda_total, 1), "wall_s": round(wall, 1),
             "train_data": recipe.data_stats["train"], "items_per_epoch": recipe.schedule.items_per_epoch,
             "real_tokens_per_step": round(statistics.median(per_step)),
             "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None}
        summary["settings"][name] = s
        print(name, json.dumps(s), flush=True)
        del recipe
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            torch.cuda.empty_cache()
    (out / "profile_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n| setting | median step s | CUDA ms/step | real tokens/step | real tokens/s (after warm-up) |")
    for k, s in summary["settings"].items():
        print(f"| {k} | {s['median_step_s']:.3f} | {s['cuda_ms_per_profiled_step']} | {s['real_tokens_per_step']} "
              f"| {s['tokens_per_s_running']} |")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("WANDB_MODE", "disabled")
    sys.exit(main())
