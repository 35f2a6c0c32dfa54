"""Shared test fixtures: a tiny random Llama on the real SmolLM2 tokenizer, small SFT data sets,
and an SFT config pointing at temporary folders."""
from __future__ import annotations

import copy
import json
import os
import random
from pathlib import Path

import pytest

from sft_playbook.config import load_yaml
from sft_playbook.paths import REPO_ROOT

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def smollm2_tokenizer_dir(tmp_path_factory) -> Path:
    """The SmolLM2-135M-Instruct tokenizer (chat template included), read from the packaged GGUF
    or from an already converted folder."""
    from transformers import AutoTokenizer

    converted = REPO_ROOT / ".cache/models/smollm2-135m-instruct"
    out = tmp_path_factory.mktemp("smollm2_tok")
    if (converted / "tokenizer_config.json").is_file():
        tok = AutoTokenizer.from_pretrained(converted)
    else:
        from sft_playbook.sft.model import smollm2_gguf_path

        gguf = smollm2_gguf_path()
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_llama_dir(smollm2_tokenizer_dir, tmp_path_factory) -> Path:
    """A randomly initialised 2-layer Llama (hidden 64) with SmolLM2's vocabulary and tokenizer."""
    import shutil

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny_llama")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         bos_token_id=1, eos_token_id=2, pad_token_id=2, tie_word_embeddings=True,
                         rms_norm_eps=1e-5)
    LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
    for f in smollm2_tokenizer_dir.iterdir():
        shutil.copy(f, out / f.name)
    return out


def loss_and_grad(model, batches):
    """Mean output-token loss over `batches` on CPU (a fast.LossModel), the token count, and the
    flattened gradient of every parameter."""
    import torch

    from sft_playbook.sft.recipe import loss_sum_and_count

    model.zero_grad()
    total, count = 0.0, 0
    for b in batches:
        s, n = loss_sum_and_count(model, b, torch.device("cpu"), None)
        s.backward()
        total, count = total + s.detach(), count + int(n)
    g = torch.cat([p.grad.flatten() for p in model.parameters()])
    return float(total) / count, count, g.clone()


WIDTHS = [1, 2, 4, 8, 16]
OPS = [("and", "&", "bitwise AND"), ("or", "|", "bitwise OR"), ("xor", "^", "bitwise XOR"),
       ("add", "+", "sum"), ("sub", "-", "difference")]


def verilog_row(i: int, rng: random.Random) -> dict:
    name, op, words = OPS[i % len(OPS)]
    w = WIDTHS[rng.randrange(len(WIDTHS))]
    mod = f"{name}_{w}b_{i}"
    rng_decl = f"[{w - 1}:0] " if w > 1 else ""
    code = (f"module {mod}(\n  input {rng_decl}a,\n  input {rng_decl}b,\n  output {rng_decl}y\n);\n"
            f"  assign y = a {op} b;\nendmodule")
    return {"id": f"row-{i}", "input": f"Write a Verilog module {mod} whose output y is the {words} of two "
                                         f"{w}-bit inputs a and b.", "output": code}


def write_level(root: Path, level: str = "high_level", n_train: int = 24, n_val: int = 6, n_test: int = 4,
                seed: int = 0) -> Path:
    rng = random.Random(seed)
    rows = [verilog_row(i, rng) for i in range(n_train + n_val + n_test)]
    d = root / level
    d.mkdir(parents=True, exist_ok=True)
    parts = {"train": rows[:n_train], "validation": rows[n_train:n_train + n_val], "test": rows[n_train + n_val:]}
    for split, part in parts.items():
        (d / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    return root


@pytest.fixture
def sft_data(tmp_path) -> Path:
    return write_level(tmp_path / "data")


@pytest.fixture
def sft_cfg(tmp_path, sft_data, tiny_llama_dir) -> dict:
    """configs/sft.yaml pointed at the tiny model, the fixture data and tmp output; small and fast."""
    cfg = copy.deepcopy(load_yaml(REPO_ROOT / "configs/sft.yaml"))
    cfg.update(model=str(tiny_llama_dir), data_dir=str(sft_data), output_dir=str(tmp_path / "results"),
               run_name="tiny", model_cache=str(tmp_path / "cache"))
    cfg["data"].update(max_seq_len=128, max_val_samples=None)
    cfg["train"].update(lr=3e-3, warmup_steps=1, micro_batch_size=2, global_batch_size=4, max_steps=6,
                        eval_every=3, save_every=3, threads=None)
    cfg["predict"].update(max_samples=2, batch_size=2, max_new_tokens=12)
    cfg["evaluate"].update(verilog=False)
    cfg["wandb"]["enabled"] = False
    return cfg


@pytest.fixture(scope="module", params=["presidio", "regex"])
def red(request):
    """The PII redactor, once per backend (tests/test_curate_pii*.py)."""
    from sft_playbook.curate.pii import Redactor

    r = Redactor(request.param)
    assert r.backend == request.param
    return r
