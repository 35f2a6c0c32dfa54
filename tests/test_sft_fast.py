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


# ------------------------------------------------ chunked loss = full loss, or refused at setup
def _tiny(kind, vocab=512, **over):
    """A 2-layer random causal LM of the given family, built in memory (init std 0.5: logits of
    realistic size, so a dropped softcap / scale shows)."""
    import torch
    import transformers as T

    torch.manual_seed(0)
    common = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  bos_token_id=1, eos_token_id=2, pad_token_id=0, initializer_range=0.5)
    cls = {"llama": (T.LlamaConfig, T.LlamaForCausalLM), "gemma2": (T.Gemma2Config, T.Gemma2ForCausalLM),
           "granite": (T.GraniteConfig, T.GraniteForCausalLM), "cohere": (T.CohereConfig, T.CohereForCausalLM),
           "qwen2": (T.Qwen2Config, T.Qwen2ForCausalLM), "phi": (T.PhiConfig, T.PhiForCausalLM)}[kind]
    if kind == "gemma2":
        common.update(head_dim=8)
    if kind == "phi":
        common.pop("num_key_value_heads")
    common.update(over)
    return cls[1](cls[0](**common))


def _random_batch(vocab, lengths=(9, 14, 5), seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    exs = []
    for i, n in enumerate(lengths):
        ids = torch.randint(3, vocab, (n,), generator=g).tolist()
        tg = ids[1:] + [D.IGNORE]
        tg[: n // 3] = [D.IGNORE] * (n // 3)  # a prompt part outside the loss
        exs.append({"id": str(i), "input_ids": ids, "targets": tg})
    return D.collate([[e] for e in exs], 0, False)


def _loss_and_grads(lm, batch):
    lm.zero_grad()
    s, n = lm(**batch)
    (s / n).backward()
    grads = {k: p.grad.detach().clone() for k, p in lm.named_parameters() if p.grad is not None}
    return float(s) / int(n), grads


def _assert_same(lm_full, lm_chunk, batch, rel=1e-5):
    import torch

    lf, gf = _loss_and_grads(lm_full, batch)
    lc, gc = _loss_and_grads(lm_chunk, batch)
    assert lc == pytest.approx(lf, rel=rel)
    assert gf.keys() == gc.keys() and gf
    for k in gf:
        assert torch.allclose(gc[k], gf[k], rtol=1e-4, atol=1e-6), (k, float((gc[k] - gf[k]).norm() / gf[k].norm()))
    return lf, gf


@pytest.mark.parametrize("kind,over", [
    ("gemma2", dict(final_logit_softcapping=30.0)),            # tanh(x / 30) * 30
    ("gemma2", dict(final_logit_softcapping=5.0, tie_word_embeddings=False)),
    ("granite", dict(logits_scaling=8.0)),                       # x / 8
    ("cohere", dict(logit_scale=0.25)),                          # x * 0.25
    ("phi", dict(tie_word_embeddings=False)),                    # lm_head with a bias
    ("qwen2", dict(tie_word_embeddings=False)),
    ("llama", dict(tie_word_embeddings=True)),
])
def test_chunked_loss_equals_full_loss_with_the_models_logit_transforms(kind, over):
    model = _tiny(kind, **over)
    batch = _random_batch(model.config.vocab_size)
    for chunk in (4, 7, 1000):
        _assert_same(fast.loss_model(model, "full"), fast.loss_model(model, "chunked", chunk), batch)


@pytest.mark.parametrize("kind,peft_kw", [
    ("llama", dict(target_modules=["q_proj", "lm_head"])),
    ("qwen2", dict(target_modules=["lm_head"])),
    ("gemma2", dict(target_modules=["v_proj", "lm_head"])),       # adapter + softcap
    ("llama", dict(target_modules=["q_proj"], modules_to_save=["lm_head"])),
])
def test_chunked_loss_trains_an_adapter_on_lm_head(kind, peft_kw):
    """LoRA (or a modules_to_save copy) on lm_head: the chunked path calls the output layer as the
    model does, so the adapter is in the forward and gets the full path's gradients."""
    from peft import LoraConfig, get_peft_model

    over = dict(final_logit_softcapping=20.0) if kind == "gemma2" else {}
    model = get_peft_model(_tiny(kind, tie_word_embeddings=False, **over),
                           LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, init_lora_weights=False, **peft_kw))
    batch = _random_batch(model.config.vocab_size, seed=3)
    _, grads = _assert_same(fast.loss_model(model, "full"), fast.loss_model(model, "chunked", 5), batch)
    head = [k for k in grads if "lm_head" in k]
    assert head and all(grads[k].norm() > 0 for k in head), head


def test_chunked_loss_refuses_a_model_whose_forward_changes_logits_unknown_to_it():
    """A logit transform `logit_transforms` does not know: refused at setup, with the reason."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from sft_playbook.sft.model import ModelError

    class ScaledLlama(LlamaForCausalLM):
        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            out.logits = out.logits * 3.0
            return out

    model = ScaledLlama(LlamaConfig(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                    num_attention_heads=4, num_key_value_heads=2))
    with pytest.raises(ModelError, match=r"not be exact for ScaledLlama.*use train\.loss=full"):
        fast.loss_model(model, "chunked")
    fast.loss_model(model, "full")  # the full path needs no check
    # and a model without an output layer
    model.lm_head = None
    model.get_output_embeddings = lambda: None
    with pytest.raises(ModelError, match="no output layer"):
        fast.loss_model(model, "chunked")


def test_validation_with_the_chunked_loss_makes_no_gradients():
    import torch

    model = _tiny("gemma2", final_logit_softcapping=30.0)
    batch = _random_batch(model.config.vocab_size)
    lm = fast.loss_model(model, "chunked", 4)
    with torch.no_grad():
        s, n = lm(**batch)
    assert not s.requires_grad
    ref, _ = _loss_and_grads(fast.loss_model(model, "full"), batch)
    assert float(s) / int(n) == pytest.approx(ref, rel=1e-5)


# ------------------------------------------------------------ attention chosen per model
@pytest.mark.parametrize("kind,over,seq,reason", [
    ("llama", {}, 128, None),
    ("qwen2", dict(use_sliding_window=True, sliding_window=64, max_window_layers=0), 128, "sliding-window"),
    ("qwen2", dict(use_sliding_window=True, sliding_window=256, max_window_layers=0), 128, None),
    ("gemma2", {}, 128, "softcapping"),
    ("gemma2", dict(attn_logit_softcapping=None, sliding_window=64), 128, "sliding-window"),
    ("gemma2", dict(attn_logit_softcapping=None, sliding_window=4096), 128, None),
])
def test_varlen_attention_only_where_it_computes_the_models_attention(kind, over, seq, reason):
    why = fast.varlen_unsupported(_tiny(kind, **over), seq)
    assert (why is None) if reason is None else (reason in why), why


def test_packed_rows_under_eager_attention_give_the_unpacked_loss():
    """Gemma-2 runs eager attention, which adds the mask to its scores: packed rows need a 0/-inf mask."""
    import torch

    model = _tiny("gemma2", final_logit_softcapping=30.0)
    model.set_attn_implementation("eager")
    lm = fast.loss_model(model, "full")
    exs = []
    for seed in range(3):
        b = _random_batch(model.config.vocab_size, lengths=(7 + seed,), seed=seed)
        exs.append({"id": str(seed), "input_ids": b["input_ids"][0].tolist(), "targets": b["targets"][0].tolist()})
    unpacked, _ = _loss_and_grads(lm, D.collate([[e] for e in exs], 0, False))
    packed, _ = _loss_and_grads(lm, D.collate([exs], 0, True, additive_mask=True))
    assert packed == pytest.approx(unpacked, rel=1e-5)
    leaky, _ = _loss_and_grads(lm, D.collate([exs], 0, True))  # a bool mask added to the scores: wrong
    assert abs(leaky - unpacked) > 1e-3
    del torch


@pytest.fixture(scope="module")
def tiny_gemma2_dir(smollm2_tokenizer_dir, tmp_path_factory):
    """A random 2-layer Gemma-2 (final-logit and attention softcapping) on the SmolLM2 tokenizer."""
    import shutil

    out = tmp_path_factory.mktemp("tiny_gemma2")
    _tiny("gemma2", vocab=49152, final_logit_softcapping=30.0, initializer_range=0.2,
          tie_word_embeddings=True, pad_token_id=2).save_pretrained(out, safe_serialization=True)
    for f in smollm2_tokenizer_dir.iterdir():
        shutil.copy(f, out / f.name)
    return out


def test_gemma2_trains_with_the_attention_it_supports_and_chunked_equals_full(sft_cfg, tiny_gemma2_dir, caplog):
    """transformers refuses sdpa for Gemma-2 and varlen would drop its attention softcapping: the
    trainer runs eager (and says so); packed rows, chunked loss and softcapping stay exact."""
    import logging

    caplog.set_level(logging.INFO)
    base = copy.deepcopy(sft_cfg)
    base["model"] = str(tiny_gemma2_dir)
    base["data"]["packing"] = True
    base["train"].update(max_steps=2, eval_every=2, save_every=0, lr=1e-3)
    base["run_name"] = "plain"
    assert main(base, ["train"]) == 0
    assert "attention: eager" in caplog.text
    opt = copy.deepcopy(base)
    opt["run_name"] = "fast"
    opt["train"].update(attention="varlen", loss="chunked", loss_chunk_size=64)
    caplog.clear()
    assert main(opt, ["train"]) == 0
    assert "train.attention=varlen: not for Gemma2ForCausalLM" in caplog.text and "softcapping" in caplog.text
    a, b = _metrics(base), _metrics(opt)
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b):
        for key in ("train_loss", "val_loss"):
            if key in ra:
                assert rb[key] == pytest.approx(ra[key], rel=1e-5), (ra["step"], key)


def test_loss_model_is_a_plain_importable_module():
    """The trained module is a module-level class (no class built inside a factory): it pickles,
    as torch.save of a whole module or a process that receives it needs."""
    import pickle

    import torch

    model = _tiny("llama")
    lm = fast.loss_model(model, "chunked", 4)
    assert type(lm) is fast.LossModel and fast.LossModel.__qualname__ == "LossModel"
    back = pickle.loads(pickle.dumps(lm))
    batch = _random_batch(model.config.vocab_size)
    with torch.no_grad():
        assert float(back(**batch)[0]) == pytest.approx(float(lm(**batch)[0]))
