"""Shared pieces of the training-throughput benchmark (bench/train_throughput.py).

Every arm (plain HF loop, TRL SFTTrainer, our trainer) trains the same model shape on the same
random-token samples and reports the same numbers:

- real tokens/s: non-pad tokens processed per second of training (forward + backward + step),
  measured after warm-up steps, with the GPU synchronised at both ends;
- MFU: 6 * N * real tokens/s over the dense bf16 peak (989 TFLOP/s, the H100/H200 datasheet; the
  measured matmul peak is printed beside it), N = parameters counted once (tied embeddings once);
- peak memory (torch.cuda.max_memory_allocated);
- the training loss of the first steps (same data, same init seed -> comparable between arms).
"""
from __future__ import annotations

import math
import random

PEAK_TFLOPS = 989.0  # dense bf16, H100/H200 SXM datasheet

SHAPES = {
    # Llama-3.2-1B-like shape (the yardstick)
    "llama-1b": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                     intermediate_size=8192, vocab_size=128256, tie_word_embeddings=True,
                     rope_theta=500000.0, max_position_embeddings=8192),
    # SmolLM2-135M's shape
    "smollm2-135m": dict(hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                         intermediate_size=1536, vocab_size=49152, tie_word_embeddings=True,
                         rope_theta=100000.0, max_position_embeddings=8192),
    # the course's GPU job: Llama-2-7B's shape with SmolLM2's vocabulary (what configs/sft_gpu.yaml trains
    # and NeMo's timing used: docs/device-runs/nemo-time-llama2-7b-tp2-2026-11-30.json), untied
    "llama2-7b": dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                      intermediate_size=11008, vocab_size=49152, tie_word_embeddings=False,
                      rope_theta=10000.0, max_position_embeddings=4096),
    # for CPU smoke tests of the benchmark itself
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=128, vocab_size=512, tie_word_embeddings=True,
                 rope_theta=10000.0, max_position_embeddings=4096),
}


def llama_config(shape: str):
    from transformers import LlamaConfig

    return LlamaConfig(**SHAPES[shape], rms_norm_eps=1e-5, attention_bias=False, mlp_bias=False,
                       bos_token_id=1, eos_token_id=2, pad_token_id=0)


def build_model(shape: str, seed: int = 0, dtype=None, attn_implementation: str = "sdpa"):
    """A randomly initialised Llama of the given shape (same init for every arm with the same seed)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    cfg = llama_config(shape)
    # built directly on the GPU when there is one (a 1B model initialises in seconds there, not minutes)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation=attn_implementation)
    if dtype is not None:
        model = model.to(dtype)
    return model


def n_params(model) -> int:
    """Parameters counted once (tied embedding / lm_head once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def sample_lengths(n: int, seed: int = 0, mean: float = 550.0, sigma: float = 0.6,
                   lo: int = 64, hi: int = 2048) -> list[int]:
    """Lognormal lengths with the given mean, clipped to [lo, hi]."""
    rng = random.Random(seed)
    mu = math.log(mean) - sigma * sigma / 2
    return [max(lo, min(hi, int(round(rng.lognormvariate(mu, sigma))))) for _ in range(n)]


def make_samples(n: int, vocab: int, seed: int = 0, prompt_frac: float = 0.3, max_len: int = 2048) -> list[dict]:
    """Random-token SFT samples: input_ids plus labels (-100 on the first prompt_frac of tokens, as a
    prompt would be). Token ids avoid 0-2 (pad/bos/eos). Lengths: `sample_lengths` clipped to max_len."""
    rng = random.Random(seed + 1)
    out = []
    for length in sample_lengths(n, seed, hi=max_len):
        ids = [rng.randrange(3, vocab) for _ in range(length)]
        n_prompt = int(length * prompt_frac)
        out.append({"input_ids": ids, "labels": [-100] * n_prompt + ids[n_prompt:]})
    return out


def mfu(params: int, tokens_per_s: float, peak_tflops: float = PEAK_TFLOPS) -> float:
    return 6.0 * params * tokens_per_s / (peak_tflops * 1e12)


def result_row(arm: str, shape: str, params: int, real_tokens: int, seconds: float, losses: list[float],
               peak_mem_bytes: int | None, **extra) -> dict:
    tps = real_tokens / seconds if seconds > 0 else 0.0
    return {"arm": arm, "shape": shape, "params": params, "real_tokens": real_tokens,
            "seconds": round(seconds, 3), "tokens_per_s": round(tps, 1), "mfu": round(mfu(params, tps), 4),
            "peak_mem_gib": round(peak_mem_bytes / 2**30, 2) if peak_mem_bytes else None,
            "first_losses": [round(x, 4) for x in losses], **extra}
