"""torchtune arm of bench/train_throughput.py: torchtune's own single-device full-finetune recipe
(`recipes/full_finetune_single_device.py` of the torchtune wheel, class FullFinetuneRecipeSingleDevice),
run unmodified on the benchmark's samples.

Settings are torchtune's documented fast path (its configs say so in comments: `packed: True  # True
increases speed`, `compile: True  # torch.compile the model + loss, True increases speed + decreases
memory`, activation checkpointing off), with torch's fused AdamW in place of the config's bitsandbytes
8-bit AdamW and gradient clipping at 1.0 as in every other arm. torchtune trains in pure bf16 (weights
and optimizer state in bf16, `dtype: bf16`): less work per step than our fp32 master weights, and not
the same numerics.

What the benchmark supplies through the config (dotted paths, as any torchtune user can): the dataset
(`packed_dataset`: torchtune's PackedDataset over the samples, in order), a stand-in tokenizer (the
recipe only reads its pad_id: the samples are already token ids), and a metric logger that records
the wall time of every optimizer step (`TimingLogger`, after the recipe's own `.item()` sync). The
weights come from a HF checkpoint of the same random init as the other arms, read by torchtune's
FullModelHFCheckpointer. The end-of-epoch checkpoint save is skipped (not timed anyway).
"""
from __future__ import annotations

import gc
import importlib.util
import os
import time

import throughput_common as C

_SAMPLES: list[dict] = []
_LOG: list[dict] = []


class FakeTokenizer:
    """What the recipe asks of its tokenizer when the dataset is pre-tokenized."""

    pad_id = 0
    eos_id = 2
    bos_id = 1

    def __init__(self, **kwargs):
        pass


def fake_tokenizer(**kwargs):
    return FakeTokenizer()


def packed_dataset(tokenizer, packed: bool = True, max_seq_len: int = 4096, **kwargs):
    """torchtune's PackedDataset over the benchmark samples (tokens + unshifted labels, -100 on the
    prompt), packed in order, no sample split across packs."""
    from torchtune.datasets import PackedDataset

    class _List:
        def __init__(self, rows):
            self.rows = rows

        def __len__(self):
            return len(self.rows)

        def __getitem__(self, i):
            return self.rows[i]

    rows = _List([{"tokens": s["input_ids"], "labels": s["labels"]} for s in _SAMPLES if len(s["input_ids"]) <= max_seq_len])
    return PackedDataset(rows, max_seq_len=max_seq_len, padding_idx=tokenizer.pad_id, split_across_pack=False)


class TimingLogger:
    """torchtune metric logger that keeps (wall time after a CUDA sync, loss, peak memory) per step."""

    def __init__(self, **kwargs):
        _LOG.clear()

    def log_config(self, cfg):
        pass

    def log(self, name, data, step):
        pass

    def log_dict(self, payload, step):
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
        _LOG.append({"t": time.perf_counter(), "step": step, **{k: float(v) for k, v in payload.items()
                                                               if isinstance(v, (int, float)) or hasattr(v, "item")}})

    def close(self):
        pass


def _load_recipe_module():
    import torchtune

    path = os.path.join(os.path.dirname(os.path.dirname(torchtune.__file__)), "recipes",
                        "full_finetune_single_device.py")
    spec = importlib.util.spec_from_file_location("tt_full_finetune_single_device", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_torchtune(shape: str, samples: list[dict], rows: int, seq_len: int, steps: int, warmup: int,
                  workdir: str, seed: int = 0, compile: bool = True, lr: float = 5e-5, clip: float | None = 1.0,
                  optimizer_in_bwd: bool = False) -> dict:
    """torchtune's full_finetune_single_device recipe, `rows` packed rows of seq_len tokens per step.
    Never raises: errors come back in the row's "error"."""
    import torch

    cuda = torch.cuda.is_available()
    extra = dict(variant=f"packed {rows}x{seq_len}" + (" compile" if compile else " eager")
                 + (" opt-in-bwd" if optimizer_in_bwd else ""),
                 rows=rows, seq_len=seq_len, steps=steps, warmup=warmup, compile=compile, dtype="bf16 (pure)",
                 optimizer="torch.optim.AdamW(fused)" if cuda else "torch.optim.AdamW",
                 optimizer_in_bwd=optimizer_in_bwd, clip_grad_norm=clip, loss="CEWithChunkedOutputLoss",
                 activation_checkpointing=False, lr=lr, device=torch.cuda.get_device_name() if cuda else "cpu",
                 recipe="recipes/full_finetune_single_device.py (FullFinetuneRecipeSingleDevice)")
    recipe = model = None
    params, losses, real_tokens, seconds, peak, err = 0, [], 0, 0.0, None, None
    try:
        import torchtune
        from omegaconf import OmegaConf

        extra["torchtune_version"] = torchtune.__version__
        try:
            import torchao

            extra["torchao_version"] = torchao.__version__
        except Exception:  # noqa: BLE001
            pass
        from torchtune.modules.attention_utils import _SUPPORTS_FLEX_ATTENTION

        extra["attention"] = "flex (block mask from the packs)" if _SUPPORTS_FLEX_ATTENTION else "sdpa + dense mask"
        spec = C.SHAPES[shape]
        # the same random init as the other arms, as a HF checkpoint (bf16: torchtune trains in bf16)
        ckpt = os.path.join(workdir, f"tt-init-{shape}")
        os.makedirs(ckpt, exist_ok=True)
        model = C.build_model(shape, seed)
        params = C.n_params(model)
        model.to(torch.bfloat16).save_pretrained(ckpt, safe_serialization=True, max_shard_size="100GB")
        del model
        model = None
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        _SAMPLES[:] = samples
        n_steps = warmup + steps
        # enough samples for n_steps * rows packs, cycled in order
        need_tokens = int(n_steps * rows * seq_len * 1.1) + 1
        cycled, total, i = [], 0, 0
        while total < need_tokens:
            s = samples[i % len(samples)]
            cycled.append(s)
            total += len(s["input_ids"])
            i += 1
        _SAMPLES[:] = cycled
        cfg = OmegaConf.create({
            "output_dir": os.path.join(workdir, f"tt-out-{shape}"),
            "model": {"_component_": "torchtune.models.llama3_2.llama3_2", "vocab_size": spec["vocab_size"],
                      "num_layers": spec["num_hidden_layers"], "num_heads": spec["num_attention_heads"],
                      "num_kv_heads": spec["num_key_value_heads"], "embed_dim": spec["hidden_size"],
                      "max_seq_len": spec["max_position_embeddings"], "intermediate_dim": spec["intermediate_size"],
                      "rope_base": int(spec["rope_theta"]), "norm_eps": 1e-5,
                      "tie_word_embeddings": bool(spec["tie_word_embeddings"])},
            "tokenizer": {"_component_": "throughput_torchtune.fake_tokenizer"},
            "dataset": {"_component_": "throughput_torchtune.packed_dataset", "packed": True, "max_seq_len": seq_len},
            "seed": seed, "shuffle": False,
            "checkpointer": {"_component_": "torchtune.training.FullModelHFCheckpointer", "checkpoint_dir": ckpt,
                             "checkpoint_files": ["model.safetensors"], "recipe_checkpoint": None,
                             "output_dir": os.path.join(workdir, f"tt-out-{shape}"), "model_type": "LLAMA3_2"},
            "resume_from_checkpoint": False,
            "batch_size": rows, "epochs": 1, "max_steps_per_epoch": n_steps, "gradient_accumulation_steps": 1,
            "optimizer": {"_component_": "torch.optim.AdamW", "lr": lr, "fused": cuda, "weight_decay": 0.0},
            "loss": {"_component_": "torchtune.modules.loss.CEWithChunkedOutputLoss"},
            "optimizer_in_bwd": optimizer_in_bwd, "clip_grad_norm": clip, "compile": compile,
            "device": "cuda" if cuda else "cpu", "enable_activation_checkpointing": False,
            "enable_activation_offloading": False, "dtype": "bf16" if cuda else "fp32",
            "metric_logger": {"_component_": "throughput_torchtune.TimingLogger"},
            "log_every_n_steps": 1, "log_peak_memory_stats": cuda,
        })
        if not cuda:
            extra["dtype"] = "fp32 (cpu)"
        mod = _load_recipe_module()
        recipe = mod.FullFinetuneRecipeSingleDevice(cfg=cfg)
        recipe.setup(cfg=cfg)
        recipe.save_checkpoint = lambda epoch: None
        t_start = time.perf_counter()
        recipe.train()
        if len(_LOG) < n_steps:
            raise RuntimeError(f"the recipe ran {len(_LOG)} of {n_steps} steps")
        t_prev = _LOG[warmup - 1]["t"] if warmup > 0 else t_start
        seconds = _LOG[n_steps - 1]["t"] - t_prev
        losses = [row["loss"] for row in _LOG[:10]]
        # real tokens of the timed steps: packs in dataset order (shuffle off), pads are id 0
        ds = recipe._dataloader.dataset
        for k in range(warmup * rows, n_steps * rows):
            real_tokens += int((ds[k]["tokens"] != 0).sum())
        extra["tokens_per_step"] = round(sum(int((ds[k]["tokens"] != 0).sum()) for k in range(n_steps * rows)) / n_steps, 1)
        peak = torch.cuda.max_memory_allocated() if cuda else None
    except Exception as exc:  # noqa: BLE001 - a failed arm must not stop the others
        import traceback

        traceback.print_exc()
        err = "out of memory" if "out of memory" in str(exc).lower() else \
            f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:300]}"
        peak = torch.cuda.max_memory_allocated() if cuda else None
    finally:
        del recipe, model
        _SAMPLES.clear()
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    if err is not None:
        return C.result_row("torchtune", shape, params, 0, 0.0, losses, peak, error=err, **extra)
    return C.result_row("torchtune", shape, params, real_tokens, seconds, losses, peak, **extra)
