"""Speed options and resumes that would silently compute something else are refused with the
reason: packing on models whose attention is not plain causal per sample (sliding windows
shorter than a sample, ALiBi), varlen attention on models with attention dropout, and a resume
from a checkpoint already past train.max_steps."""
import copy

import pytest
import torch

from sft_playbook.sft import fast
from sft_playbook.sft.recipe import main


def _tiny(cls_cfg, **kw):
    import transformers

    cfg = getattr(transformers, cls_cfg)(vocab_size=64, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, **kw)
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(cfg)


@pytest.mark.parametrize("cls_cfg,kw,refused", [
    ("LlamaConfig", {}, None),
    ("MistralConfig", {"sliding_window": 16}, "sliding-window"),
    ("MistralConfig", {"sliding_window": 4096}, None),                    # window longer than a sample
    ("Qwen2Config", {"sliding_window": 16, "use_sliding_window": True, "max_window_layers": 0}, "sliding-window"),
    ("Qwen2Config", {"sliding_window": 16, "use_sliding_window": False}, None),
])
def test_packing_is_refused_where_the_block_mask_is_not_the_models_attention(cls_cfg, kw, refused):
    why = fast.packing_unsupported(_tiny(cls_cfg, **kw), 256)
    assert (why is None) if refused is None else (refused in why)


def test_packing_is_refused_for_alibi_models():
    import transformers

    bloom = transformers.AutoModelForCausalLM.from_config(
        transformers.BloomConfig(vocab_size=64, hidden_size=16, n_layer=1, n_head=2))
    assert "ALiBi" in fast.packing_unsupported(bloom, 256)


@pytest.mark.parametrize("dropout,refused", [(0.0, False), (0.1, True), (0.5, True)])
def test_varlen_is_refused_under_attention_dropout(dropout, refused):
    model = _tiny("LlamaConfig", attention_dropout=dropout)
    why = fast.varlen_unsupported(model, 256)
    assert (why is not None and "dropout" in why) == refused
    assert fast.attention_dropout(model) == dropout


def test_gpt2_attention_dropout_is_seen():
    import transformers

    gpt2 = transformers.AutoModelForCausalLM.from_config(
        transformers.GPT2Config(vocab_size=64, n_embd=16, n_layer=1, n_head=2, attn_pdrop=0.5,
                                resid_pdrop=0.0, embd_pdrop=0.0))
    assert fast.attention_dropout(gpt2) == 0.5


def test_resume_past_max_steps_is_refused(sft_cfg, caplog):
    sft_cfg["train"].update(max_steps=3, eval_every=3, save_every=3)
    assert main(copy.deepcopy(sft_cfg), ["train"]) == 0
    again = copy.deepcopy(sft_cfg)
    again["resume"] = True
    again["train"]["max_steps"] = 2
    assert main(again, ["train"]) == 2
    assert any("past train.max_steps=2" in r.getMessage() for r in caplog.records)
