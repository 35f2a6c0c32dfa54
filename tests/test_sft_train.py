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


# --------------------------------------------------------------- resume after a settings change
def _positions_spy(monkeypatch):
    """Record the stream positions every training step takes (SFTRecipe -> StepSchedule.items_at)."""
    taken = []
    orig = D.StepSchedule.items_at

    def spy(self, position, count):
        taken.append((position, count))
        return orig(self, position, count)

    monkeypatch.setattr(D.StepSchedule, "items_at", spy)
    return taken


@pytest.mark.parametrize("packing,batches", [(False, (4, 8)), (False, (8, 4)), (True, (2, 6))])
def test_resume_with_another_global_batch_continues_at_the_items_consumed(sft_cfg, monkeypatch, caplog, packing,
                                                                          batches):
    """Stopped at step 2 with global batch g1, resumed with g2: the stream goes on where it stopped
    (no item skipped or repeated) and the logged epoch follows the items, not steps x g2."""
    first, second = batches
    cfg = copy.deepcopy(sft_cfg)
    cfg["data"]["packing"] = packing
    cfg["data"]["max_seq_len"] = 400 if packing else 128
    cfg["train"].update(micro_batch_size=2, global_batch_size=first, max_steps=4, eval_every=4, save_every=2,
                        stop_at_step=2)
    taken = _positions_spy(monkeypatch)
    assert main(copy.deepcopy(cfg), ["train"]) == 0
    cfg["train"].update(global_batch_size=second, stop_at_step=None)
    cfg["resume"] = True
    assert main(copy.deepcopy(cfg), ["train"]) == 0
    assert taken == [(0, first), (first, first), (2 * first, second), (2 * first + second, second)]
    assert f"train.global_batch_size changed from {first} to {second}" in caplog.text
    rows = [r for r in metrics(cfg) if "train_loss" in r]
    from sft_playbook.sft.recipe import SFTRecipe

    ipe = None  # items per epoch of this data, as the recipe builds it
    probe = SFTRecipe(copy.deepcopy(dict(cfg, resume=False, run_name="probe")))
    try:
        probe.setup()
        ipe = probe.schedule.items_per_epoch
    finally:
        probe.cleanup()
    consumed = [first, 2 * first, 2 * first + second, 2 * first + 2 * second]
    assert [r["epoch"] for r in rows] == [round(c / ipe, 4) for c in consumed]


@pytest.mark.slow
def test_resume_with_another_micro_batch_matches_an_uninterrupted_run(sft_cfg):
    full = copy.deepcopy(sft_cfg)
    full["run_name"] = "full"
    full["train"].update(max_steps=4, eval_every=2, save_every=2)
    assert main(copy.deepcopy(full), ["train"]) == 0
    part = copy.deepcopy(full)
    part["run_name"] = "part"
    part["train"]["stop_at_step"] = 2
    assert main(copy.deepcopy(part), ["train"]) == 0
    part["train"].update(stop_at_step=None, micro_batch_size=1, loss="chunked")  # 4 accumulation steps now
    part["resume"] = True
    assert main(copy.deepcopy(part), ["train"]) == 0
    a, b = metrics(full), metrics(part)
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b):
        for key in ("train_loss", "val_loss"):
            if key in ra:
                assert rb[key] == pytest.approx(ra[key], rel=1e-4), (ra["step"], key)


def test_resume_refuses_changes_it_cannot_follow_with_one_line(sft_cfg, tmp_path, caplog):
    """seed, data formatting, method / LoRA shape, the data itself: refused before training, one
    line naming the key and both values (or what differs)."""
    import logging

    cfg = copy.deepcopy(sft_cfg)
    cfg["train"].update(max_steps=3, stop_at_step=1, save_every=1, eval_every=3)
    assert main(copy.deepcopy(cfg), ["train"]) == 0
    cfg["train"]["stop_at_step"] = None
    cfg["resume"] = True
    changes = [
        (("seed",), 7, "seed changed from 42 to 7"),
        (("data", "max_seq_len"), 96, "data.max_seq_len changed from 128 to 96"),
        (("data", "packing"), True, "data.packing changed from False to True"),
        (("data", "prompt_template"), "plain", "data.prompt_template changed from 'chat' to 'plain'"),
        (("train", "method"), "lora", "train.method changed from 'full' to 'lora'"),
        (("level",), "detailed", "level changed from 'high_level' to 'detailed'"),
    ]
    for path, value, expect in changes:
        c = copy.deepcopy(cfg)
        (c[path[0]] if len(path) == 2 else c)[path[-1]] = value
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            assert main(c, ["train"]) == 2, path
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and expect in errors[0] and "\n" not in errors[0], errors
    # the train split edited under the same settings: the examples' digest differs
    train = tmp_path / "data/high_level/train.jsonl"
    lines = train.read_text().splitlines()
    train.write_text("\n".join(lines[1:] + lines[:1]).replace("Write a Verilog", "Write one Verilog", 1) + "\n")
    caplog.clear()
    assert main(copy.deepcopy(cfg), ["train"]) == 2
    assert "the training examples differ from the checkpoint's" in caplog.text
    train.write_text("\n".join(lines) + "\n")
    # and unchanged settings still resume
    assert main(copy.deepcopy(cfg), ["train"]) == 0
    assert [r["step"] for r in metrics(cfg) if "train_loss" in r] == [1, 2, 3]


@pytest.mark.parametrize("legacy", [False, True])
def test_resume_keeps_the_new_optimizer_settings(sft_cfg, tmp_path, caplog, legacy):
    """Loading the optimizer state must not bring back the checkpoint's betas / weight decay.
    legacy: a checkpoint of the first format (optimizer state by position, no stream position)."""
    import torch

    from sft_playbook.sft.recipe import SFTRecipe

    cfg = copy.deepcopy(sft_cfg)
    cfg["train"].update(max_steps=3, stop_at_step=1, save_every=1, eval_every=3)
    assert main(copy.deepcopy(cfg), ["train"]) == 0
    if legacy:
        path = tmp_path / "results/tiny/checkpoints/step_000001/trainer_state.pt"
        state = torch.load(path, weights_only=False)
        osd = state["optimizer"]
        index = {name: i for i, name in enumerate(p for g in osd["param_groups"] for p in g["params"])}
        state["optimizer"] = {"state": {index[k]: v for k, v in osd["state"].items()},
                              "param_groups": [{**g, "params": [index[p] for p in g["params"]]}
                                               for g in osd["param_groups"]]}
        for key in ("format", "consumed", "data"):
            state.pop(key)
        torch.save(state, path)
    cfg["resume"] = True
    cfg["train"].update(betas=[0.8, 0.99], weight_decay=0.1, lr=1e-3)
    r = SFTRecipe(cfg)
    try:
        r.setup()
        assert r.start_step == 1 and r.consumed == 4
        assert all(g["betas"] == (0.8, 0.99) and g["weight_decay"] == 0.1 for g in r.optimizer.param_groups)
        assert any(s.get("exp_avg") is not None for s in r.optimizer.state.values())  # the moments were loaded
    finally:
        r.cleanup()
    assert "train.betas changed from [0.9, 0.95] to [0.8, 0.99]" in caplog.text


@pytest.mark.parametrize("mode", ["keep_best", "keep_best_resumed", "off"])
def test_keep_best_makes_the_lowest_validation_step_the_final_model(sft_cfg, tmp_path, monkeypatch, mode):
    """train.keep_best: validation losses scripted 1.0 (step 0), 0.5 (step 3), 0.9 (step 6): the final
    model is step 3's weights (also when the run stopped at step 3 and resumed); off: step 6's."""
    import torch
    from safetensors.torch import load_file

    from sft_playbook.sft.recipe import SFTRecipe

    losses = iter([1.0, 0.5, 0.9])
    monkeypatch.setattr(SFTRecipe, "validate", lambda self: next(losses))
    cfg = copy.deepcopy(sft_cfg)
    cfg["train"].update(keep_best=mode != "off", keep_checkpoints=2)
    if mode == "keep_best_resumed":
        cfg["train"]["stop_at_step"] = 3
        assert main(cfg, ["train"]) == 0
        cfg["train"]["stop_at_step"], cfg["resume"] = None, True
    assert main(cfg, ["train"]) == 0
    run = tmp_path / "results" / "tiny"
    final = load_file(run / "model/model.safetensors")
    want = load_file(run / f"checkpoints/step_00000{6 if mode == 'off' else 3}/model.safetensors")
    other = load_file(run / f"checkpoints/step_00000{3 if mode == 'off' else 6}/model.safetensors")
    assert final.keys() == want.keys()
    assert all(torch.equal(final[k], want[k]) for k in final)
    assert not all(torch.equal(final[k], other[k]) for k in final)
    kept = json.loads((run / "train_summary.json").read_text())["kept_best"]
    if mode == "off":
        assert kept is None
    else:
        assert kept == {"step": 3, "val_loss": 0.5, "last_val_loss": 0.9}
        assert json.loads((run / "best/best.json").read_text()) == {"step": 3, "val_loss": 0.5}
