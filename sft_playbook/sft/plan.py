"""The first screen of `bash run_sft.sh`: what will run, on what, where it goes, how long it takes.

`describe_plan(cfg, steps, args) -> str` (a few lines, no model or tokenizer loaded: it reads the
split files and the config only); `quiet_third_party()` keeps library banners and progress bars
(transformers weight loading, absl, W&B) off the console so that each step shows its header and
its own progress bar.

The time estimate is rough and only for the CPU profile: it scales the quiet-machine measurement
of the default CPU run in docs/benchmarks.md (section "SFT: CPU default profile") by the number of
training tokens, generated tokens and CPU cores. A loaded machine takes longer (twice as long was
seen when other jobs ran).
"""
from __future__ import annotations

import logging
import math
import os
import shutil
from pathlib import Path

from ..settings import SftSettings, build
from ..paths import REPO_ROOT, resolve, run_dir

# Measured (docs/benchmarks.md, "CPU default, timed on a quiet machine", 2026-11-30: SmolLM2-135M
# fp32 on 2 idle cores, max_seq_len 640): 20 steps of 4 rows plus 5 validations took 226.5 s with
# start-up, about 165 padded training tokens/s; greedy generation of a batch of 8 rows (base and
# fine-tuned, 256 new tokens) took 65.9 s, about 0.09 s per new token; loading and saving ~10 s a step.
CPU_TRAIN_TOKENS_PER_S = 165.0
PADDING_FACTOR = 1.3         # padded / real tokens of a micro-batch of 4 rows of these lengths
CPU_DECODE_S_PER_TOKEN = 0.09
CPU_REFERENCE_CORES = 2
CHARS_PER_TOKEN = 2.6        # SmolLM2's tokenizer on the curated Verilog rows (prompt + module)
TEMPLATE_TOKENS = 30         # chat template and system message around each row


def _count_rows(path: Path) -> int | None:
    if not path.is_file():
        return None
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def _mean_tokens(path: Path, max_len: int, limit: int | None) -> float | None:
    """Rough mean tokens per kept row (characters / CHARS_PER_TOKEN), without a tokenizer.

    Returns:
        The mean estimated tokens (template included) of the first ``limit`` rows that fit ``max_len``;
        None when the file cannot be read or parsed, or no row fits.
    """
    import json

    lens = []
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    n = (len(str(row.get("input", ""))) + len(str(row.get("output", "")))) / CHARS_PER_TOKEN
                    lens.append(n + TEMPLATE_TOKENS)
    except (OSError, ValueError):
        return None
    lens = lens[:limit] if limit else lens
    kept = [n for n in lens if n <= max_len]
    return sum(kept) / len(kept) if kept else None


def _show(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _on_gpu(cfg: SftSettings) -> bool:
    return cfg.backend == "nemo" or bool(shutil.which("nvidia-smi"))


def estimate_seconds(cfg: SftSettings | dict, steps: list[str], mean_tokens: float | None) -> float | None:
    """Rough wall time of the given steps on this machine's CPU cores; None on a GPU or without data.

    Returns:
        Estimated seconds for the steps (a fixed cost per step plus training tokens at
        ``CPU_TRAIN_TOKENS_PER_S`` and generated tokens at ``CPU_DECODE_S_PER_TOKEN``, scaled by
        2 / cores (``train.threads`` or the CPU count, at most 16); None with the NeMo backend, when
        ``nvidia-smi`` is on PATH, or when ``mean_tokens`` is None.

    Raises:
        ConfigError: ``cfg`` is a mapping with a bad key.
    """
    cfg = build("sft", cfg)
    if _on_gpu(cfg) or mean_tokens is None:
        return None
    t, p = cfg["train"], cfg["predict"]
    cores = int(t.threads or os.cpu_count() or CPU_REFERENCE_CORES)
    scale = CPU_REFERENCE_CORES / max(1, min(cores, 16))
    total = 0.0
    if "convert" in steps:
        total += 5
    if "train" in steps:
        n_val = int(t["max_steps"]) // max(1, int(t["eval_every"] or t["max_steps"])) + 1
        val_rows = int(cfg["data"]["max_val_samples"] or 37)
        tokens = int(t["max_steps"]) * int(t["global_batch_size"]) * mean_tokens * PADDING_FACTOR \
            + n_val * val_rows * mean_tokens / 3
        total += 10 + tokens / CPU_TRAIN_TOKENS_PER_S * scale
    if "predict" in steps:
        batches = math.ceil(int(p["max_samples"] or 13) / int(p["batch_size"]))
        total += len(p["models"]) * (10 + batches * int(p["max_new_tokens"]) * CPU_DECODE_S_PER_TOKEN * scale)
    if "evaluate" in steps:
        total += 10
    return total


def describe_plan(cfg: SftSettings | dict, steps: list[str], args=None) -> str:
    """The plan as a few lines of text (see the module docstring).

    Returns:
        Newline-joined lines (no trailing newline): the steps and backend, the model, the data
        folder with row counts (or that it is missing), one line per step asked, the output folder,
        a note when predict/evaluate has no trained model, and the expected time.

    Raises:
        ConfigError: ``cfg`` is a mapping with a bad key.
    """
    cfg = build("sft", cfg)
    data_dir, level = resolve(cfg["data_dir"]), cfg["level"]
    d, t, p = cfg["data"], cfg["train"], cfg["predict"]
    counts = {s: _count_rows(data_dir / level / f"{s}.jsonl") for s in ("train", "validation", "test")}
    out = run_dir(cfg)
    lines = [f"plan: {' -> '.join(steps)}  (backend {cfg.backend})",
             f"  model    {cfg['model']}"]
    if counts["train"] is None:
        lines.append(f"  data     {_show(data_dir / level)}: not found (run `bash curate_data.sh` first)")
    else:
        lines.append(f"  data     {_show(data_dir / level)}: {counts['train']} train / {counts['validation']} validation / "
                     f"{counts['test']} test rows; rows over {d['max_seq_len']} tokens: {d['overlength']} (counted)")
    if "train" in steps:
        lines.append(f"  train    {t['method']} fine-tuning, {t['max_steps']} optimizer steps x {t['global_batch_size']} rows, "
                     f"lr {t['lr']}, validation loss on {d['max_val_samples'] or 'all'} rows every {t['eval_every']} steps")
    if "predict" in steps:
        lines.append(f"  predict  {p['max_samples'] or 'all'} {p['split']} rows, {' and '.join(p['models'])} model, "
                     f"up to {p['max_new_tokens']} new tokens")
    if "evaluate" in steps:
        ve = cfg["evaluate"]["verilogeval"]["enabled"]
        lines.append("  evaluate text metrics, compile + functional check (Icarus Verilog)"
                     + (", VerilogEval pass@k" if ve else ""))
    state = "exists: its files are reused/replaced by these steps" if out.is_dir() else "new"
    lines.append(f"  outputs  {_show(out)}/  ({state}; report.md, training.png, config.yaml there)")
    if "train" not in steps and ({"predict", "evaluate"} & set(steps)) and not any(
            (out / d).is_dir() for d in ("model", "adapter", "nemo")):
        others = sorted(p.name for p in out.parent.glob(f"{out.name}_*") if (p / "model").is_dir() or (p / "adapter").is_dir())
        lines.append(f"  note     {_show(out)} has no fine-tuned model yet"
                     + (f"; trained runs: {', '.join(others[:5])} (repeat that run's overrides, or run_name=NAME)"
                        if others else " (train it first: the train step)"))
    mean = _mean_tokens(data_dir / level / "train.jsonl", d.max_seq_len, d.max_train_samples) \
        if counts["train"] else None
    est = estimate_seconds(cfg, steps, mean)
    if est is not None:
        lines.append(f"  expected about {max(1, round(est / 60))} min on {os.cpu_count()} CPU cores if the machine "
                     f"is otherwise idle (rough; measured runs: docs/benchmarks.md)")
    elif _on_gpu(cfg):
        lines.append("  expected GPU: minutes (measured runs: docs/benchmarks.md)")
    return "\n".join(lines)


def quiet_third_party() -> None:
    """Library banners and bars off the console (warnings still show). The hub's download bar stays:
    a model download is the one long wait of the convert step."""
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("WANDB_SILENT", "true")
    logging.getLogger("absl").setLevel(logging.WARNING)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # weight loading / shard writing / GGUF tensors, every step
        hf_logging.set_verbosity_warning()
        from huggingface_hub.utils import enable_progress_bars

        enable_progress_bars()  # transformers turned the hub's off too; downloads keep theirs
    except ImportError:  # the convert step says so itself
        pass
