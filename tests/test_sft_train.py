"""SFT training on a tiny random Llama (SmolLM2 tokenizer): loop, packing, resume, LoRA, outputs."""
import copy
import json
import os
import subprocess
import sys

import pytest

from sft_playbook.paths import REPO_ROOT
from sft_playbook.sft import data as D
from sft_playbook.sft.recipe import lr_at, main


def metrics(cfg):
    path = os.path.join(cfg["output_dir"], cfg["run_name"], "metrics.jsonl")
    with open(path) as fh:
        return [json.loads(line) for line in fh]


def test_lr_schedule_warmup_then_cosine():
    t = {"lr": 1.0, "warmup_steps": 2, "max_steps": 12, "min_lr_ratio": 0.1}
    lrs = [lr_at(s, t) for s in range(12)]
    assert lrs[0] == 0.5 and lrs[1] == 1.0
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:]))
    assert lr_at(12, t) == pytest.approx(0.1)


def test_packed_and_unpacked_give_the_same_loss_and_gradients(tiny_llama_dir):
    import torch

    from sft_playbook.sft.model import load_model, load_tokenizer
    from conftest import loss_and_grad, verilog_row
    import random

    from sft_playbook.sft.fast import loss_model

    tok = load_tokenizer(tiny_llama_dir)
    hf_model = load_model(tiny_llama_dir)
    model = loss_model(hf_model)
    dcfg = {"prompt_template": "chat", "system_prompt": None, "plain_template": "{input}", "overlength": "drop"}
    rng = random.Random(1)
    exs = D.encode_rows([verilog_row(i, rng) for i in range(5)], tok, dcfg, 512).examples
    assert len(exs) == 5

    unpacked = [D.collate([[e] for e in exs[:3]], tok.pad_token_id, False),
                D.collate([[e] for e in exs[3:]], tok.pad_token_id, False)]
    packs = D.pack_examples(exs, 10_000)
    assert len(packs) == 1 and len(packs[0]) == 5
    packed = [D.collate(packs, tok.pad_token_id, True)]
    lu, nu, gu = loss_and_grad(model, unpacked)
    lp, np_, gp = loss_and_grad(model, packed)
    assert nu == np_
    assert lp == pytest.approx(lu, rel=1e-5)
    assert torch.allclose(gp, gu, rtol=1e-4, atol=1e-6)
    # and it is the mask that makes it equal: without isolation the loss differs
    leaky = dict(packed[0], attention_mask=torch.ones_like(packed[0]["input_ids"]),
                 position_ids=torch.arange(packed[0]["input_ids"].shape[1])[None])
    ll, _, _ = loss_and_grad(model, [leaky])
    assert abs(ll - lu) > 1e-3


def test_train_predict_evaluate_end_to_end(sft_cfg, tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert main(sft_cfg, ["convert", "train", "predict", "evaluate"]) == 0
    run = tmp_path / "results" / "tiny"
    rows = metrics(sft_cfg)
    vals = [r["val_loss"] for r in rows if "val_loss" in r]
    assert rows[0] == {"step": 0, "val_loss": vals[0]} and len(vals) == 3
    assert vals[-1] < vals[0] - 0.5, vals
    assert [r["step"] for r in rows if "train_loss" in r] == list(range(1, 7))
    for name in ("config.yaml", "metrics.jsonl", "training.png", "predictions.jsonl", "report.md", "report.json"):
        assert (run / name).is_file(), name
    # the checkpoint loads offline with plain transformers and holds the trained weights
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    m = AutoModelForCausalLM.from_pretrained(run / "model")
    AutoTokenizer.from_pretrained(run / "model")
    base = AutoModelForCausalLM.from_pretrained(sft_cfg["model"])
    assert not torch.equal(m.model.embed_tokens.weight, base.model.embed_tokens.weight)
    preds = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 4 and {p["model"] for p in preds} == {"base", "finetuned"}
    assert set(preds[0]) >= {"id", "input", "reference", "prediction", "model", "sample"}
    report = json.loads((run / "report.json").read_text())
    assert set(report["models"]) == {"base", "finetuned"}
    assert report["models"]["finetuned"]["text"]["n"] == 2
    assert report["val_loss"]["last"] < report["val_loss"]["first"]


def test_resume_after_stop_matches_an_uninterrupted_run(sft_cfg, tmp_path):
    import torch
    from safetensors.torch import load_file

    full = copy.deepcopy(sft_cfg)
    full["run_name"] = "full"
    assert main(full, ["train"]) == 0
    part = copy.deepcopy(sft_cfg)
    part["run_name"] = "resumed"
    part["train"]["stop_at_step"] = 3
    assert main(part, ["train"]) == 0
    run = tmp_path / "results" / "resumed"
    assert not (run / "model").exists() and (run / "checkpoints" / "step_000003").is_dir()
    part["train"]["stop_at_step"] = None
    part["resume"] = True
    assert main(part, ["train"]) == 0
    a, b = metrics(full), metrics(part)
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b):
        for key in ("train_loss", "val_loss", "lr"):
            if key in ra:
                assert rb[key] == pytest.approx(ra[key], rel=1e-4, abs=1e-5), (ra["step"], key)
    wa = load_file(tmp_path / "results/full/model/model.safetensors")
    wb = load_file(run / "model/model.safetensors")
    assert wa.keys() == wb.keys()
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)


def test_lora_adapter_and_merged_model(sft_cfg, tmp_path):
    from transformers import AutoModelForCausalLM

    cfg = copy.deepcopy(sft_cfg)
    cfg["train"].update(method="lora", max_steps=3, eval_every=3, lr=1e-2)
    cfg["lora"].update(r=4, alpha=8, dropout=0.0)
    assert main(cfg, ["train", "predict"]) == 0
    run = tmp_path / "results" / "tiny"
    assert (run / "adapter" / "adapter_config.json").is_file()
    assert (run / "adapter" / "adapter_model.safetensors").is_file()
    merged = AutoModelForCausalLM.from_pretrained(run / "model")
    assert not any("lora" in k for k in merged.state_dict())
    vals = [r["val_loss"] for r in metrics(cfg) if "val_loss" in r]
    assert vals[-1] < vals[0]


def test_packing_trains(sft_cfg):
    cfg = copy.deepcopy(sft_cfg)
    cfg["data"].update(packing=True, max_seq_len=400)
    cfg["train"].update(micro_batch_size=1, global_batch_size=2, max_steps=3, eval_every=3)
    assert main(cfg, ["train"]) == 0
    rows = metrics(cfg)
    assert rows[-1]["val_loss"] < rows[0]["val_loss"]
    assert rows[1]["target_tokens"] > 2 * 50  # several samples per packed sequence


def test_bad_backend_and_bad_data_exit_with_code_2(sft_cfg, tmp_path, caplog):
    assert main(dict(sft_cfg, backend="magic"), ["train"]) == 2
    (tmp_path / "data/high_level/validation.jsonl").unlink()
    assert main(sft_cfg, ["train"]) == 2
    assert "validation.jsonl" in caplog.text


def test_cli_reports_a_model_path_that_is_not_a_model(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "run_sft.py"), "convert", f"model={tmp_path / 'empty'}"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 2
    assert "not a Hugging Face model" in proc.stderr
