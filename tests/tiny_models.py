"""Small random models for tests and the GPU proof (bench/nemo_gpu_proof.sh), outside the package.

Used from tests as ``from tiny_models import make_tiny_llama`` (pytest puts tests/ on sys.path) and
from the repository root as ``PYTHONPATH=tests python3 -c "from tiny_models import make_tiny_llama; ..."``.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from sft_playbook.sft.nemo_plan import tokenizer_files


def make_tiny_llama(out: Path, tokenizer_dir: Path, seed: int = 0, layers: int = 2, hidden: int = 64,
                    heads: int = 4, kv_heads: int = 2, randomize_norms: bool = True) -> Path:
    """A small random Llama (tests and the GPU proof) on a real tokenizer's files; RMSNorm weights
    random too, so a conversion that leaves them at 1.0 is caught.

    Args:
        out: the folder to write (created; weights as safetensors, tied embeddings).
        tokenizer_dir: a Hugging Face tokenizer folder (its vocabulary sets the model's).
        seed: torch seed of the random weights.
        layers, hidden, heads, kv_heads: the shape (the MLP is 2 x hidden wide).
        randomize_norms: RMSNorm weights uniform in [0.5, 1.5) instead of 1.0.

    Returns:
        ``out``.
    """
    tok_files, vocab = tokenizer_files(tokenizer_dir)
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=2048,
                      rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(cfg)
    if randomize_norms:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "norm" in name:
                    p.uniform_(0.5, 1.5)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    for f in tok_files:
        shutil.copy(f, out / f.name)
    return out
