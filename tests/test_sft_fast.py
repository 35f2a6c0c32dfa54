"""The trainer's speed options (sft_playbook/sft/fast.py) keep training exact: chunked loss,
varlen attention over packed rows, torch.compile - each compared with the plain path on CPU."""
import copy
import json
import os
import random

import pytest

from sft_playbook.sft import data as D
from sft_playbook.sft import fast
from sft_playbook.sft.recipe import main


def test_chunked_linear_cross_entropy_matches_full_logits():
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    n, h, v = 37, 16, 101
    hidden = torch.randn(n, h, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(v, h, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, v, (n,))
    targets[::5] = fast.IGNORE
    ref = F.cross_entropy(hidden @ weight.t(), targets, ignore_index=fast.IGNORE, reduction="sum")
    gh_ref, gw_ref = torch.autograd.grad(ref * 0.7, (hidden, weight))
    for chunk in (1, 8, 37, 1000):
        out = fast.linear_cross_entropy(hidden, weight, targets, chunk_size=chunk)
        gh, gw = torch.autograd.grad(out * 0.7, (hidden, weight))
        assert float(out) == pytest.approx(float(ref), rel=1e-10)
        assert torch.allclose(gh, gh_ref, rtol=1e-9, atol=1e-12)
        assert torch.allclose(gw, gw_ref, rtol=1e-9, atol=1e-12)
    # the compiled chunk (train.compile) computes the same
    out = fast.linear_cross_entropy(hidden, weight, targets, chunk_size=8, compiled=True)
    gh, gw = torch.autograd.grad(out * 0.7, (hidden, weight))
    assert float(out) == pytest.approx(float(ref), rel=1e-10)
    assert torch.allclose(gh, gh_ref, rtol=1e-9, atol=1e-12) and torch.allclose(gw, gw_ref, rtol=1e-9, atol=1e-12)
    # all targets ignored: zero loss, zero gradients
    out = fast.linear_cross_entropy(hidden, weight, torch.full((n,), fast.IGNORE), chunk_size=8)
    gh, gw = torch.autograd.grad(out, (hidden, weight))
    assert float(out) == 0.0 and not gh.any() and not gw.any()


def _examples(tok, n=6, seed=1):
    from conftest import verilog_row

    dcfg = {"prompt_template": "chat", "system_prompt": None, "plain_template": "{input}", "overlength": "drop"}
    rng = random.Random(seed)
    exs = D.encode_rows([verilog_row(i, rng) for i in range(n)], tok, dcfg, 512).examples
    assert len(exs) == n
    return exs


@pytest.mark.parametrize("loss", ["full", "chunked"])
def test_varlen_rows_give_the_padded_loss_and_gradients(tiny_llama_dir, loss):
    import torch

    from sft_playbook.sft.model import load_model, load_tokenizer

    tok = load_tokenizer(tiny_llama_dir)
    exs = _examples(tok)
    from conftest import loss_and_grad as run

    ref_model = fast.loss_model(load_model(tiny_llama_dir))
    padded = [D.collate([[e] for e in exs[:4]], tok.pad_token_id, False),
              D.collate([[e] for e in exs[4:]], tok.pad_token_id, False)]
    lr_, nr, gr = run(ref_model, padded)

    hf = load_model(tiny_llama_dir)
    fast.use_varlen_attention(hf)
    model = fast.loss_model(hf, loss=loss, chunk_size=16)
    packs = D.pack_examples(exs, 10_000)
    rows = [fast.collate_varlen(packs, tok.pad_token_id)]
    assert rows[0]["input_ids"].shape[0] == 1 and len(rows[0]["cu_seq_lens"]) == len(exs) + 1
    lv, nv, gv = run(model, rows)
    assert nv == nr
    assert lv == pytest.approx(lr_, rel=1e-5)
    assert torch.allclose(gv, gr, rtol=1e-4, atol=1e-6)
    # padded to a fixed width (the torch.compile layout): the pad segment changes nothing
    width = int(rows[0]["input_ids"].shape[1]) + 50
    lp, np_, gp = run(model, [fast.collate_varlen(packs, tok.pad_token_id, pad_to=width)])
    assert np_ == nr and lp == pytest.approx(lr_, rel=1e-5)
    assert torch.allclose(gp, gr, rtol=1e-4, atol=1e-6)
    # and it is the boundaries that make it equal: one sequence without them leaks across samples
    leaky = dict(rows[0], cu_seq_lens=torch.tensor([0, rows[0]["input_ids"].shape[1]], dtype=torch.int32))
    ll, _, _ = run(model, [leaky])
    assert abs(ll - lr_) > 1e-3


def _metrics(cfg):
    with open(os.path.join(cfg["output_dir"], cfg["run_name"], "metrics.jsonl")) as fh:
        return [json.loads(line) for line in fh]


@pytest.mark.parametrize("packing", [False, True])
def test_training_with_all_speed_options_matches_the_plain_run(sft_cfg, packing):
    """Same seed, data, packing and schedule: sdpa + full fp32 logits vs varlen attention + chunked
    loss + torch.compile. Train and validation losses must agree step by step."""
    base = copy.deepcopy(sft_cfg)
    base["data"]["packing"] = packing
    base["train"].update(max_steps=4, eval_every=2, save_every=0)
    base["run_name"] = "plain"
    assert main(base, ["train"]) == 0
    opt = copy.deepcopy(base)
    opt["run_name"] = "fast"
    opt["train"].update(attention="varlen", loss="chunked", loss_chunk_size=64, compile=True)
    assert main(opt, ["train"]) == 0
    a, b = _metrics(base), _metrics(opt)
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b):
        for key in ("train_loss", "val_loss"):
            if key in ra:
                assert rb[key] == pytest.approx(ra[key], rel=2e-4), (ra["step"], key)
    assert a[-1]["train_loss"] < a[0]["val_loss"]  # it did learn something
    # the compiled run saves the same checkpoint layout, and its weights match the plain run's
    from safetensors.torch import load_file

    wa = load_file(os.path.join(base["output_dir"], "plain", "model", "model.safetensors"))
    wb = load_file(os.path.join(opt["output_dir"], "fast", "model", "model.safetensors"))
    assert wa.keys() == wb.keys()
    rel = {k: float((wa[k] - wb[k]).norm() / wa[k].norm().clamp(min=1e-12)) for k in wa}
    print("max relative weight difference:", max(rel.values()), max(rel, key=rel.get))
    assert max(rel.values()) < 1e-3, rel
