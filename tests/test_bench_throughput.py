"""The training-throughput benchmark's "ours" arm is the recipe's own step (issue 16, item 4):
same setup functions, same `recipe.train_step`, hence the same losses as `SFTRecipe.train`."""
import json
import os
import sys

import pytest

from sft_playbook.paths import REPO_ROOT
from sft_playbook.sft import recipe as R

sys.path.insert(0, str(REPO_ROOT / "bench"))


def _recipe_cfg(sft_cfg, packing: bool):
    cfg = dict(sft_cfg)
    cfg["train"] = dict(sft_cfg["train"], warmup_steps=0, min_lr_ratio=1.0, max_steps=4, eval_every=0,
                        save_every=0, micro_batch_size=2, global_batch_size=6, attention="varlen",
                        loss="chunked", loss_chunk_size=16, compile=False)
    cfg["data"] = dict(sft_cfg["data"], packing=packing, pack_strategy="best_fit")
    return cfg


@pytest.mark.parametrize("packing", [True, False])
def test_bench_arm_gives_the_recipes_losses(sft_cfg, packing):
    """SFTRecipe.train for 4 steps (constant lr), then the benchmark's setup (`setup_ours`) and step
    loop (`run_steps`) on a fresh copy of the same model and the recipe's own micro-batches: the
    losses and gradient norms agree step by step."""
    import torch

    import throughput_ours as O
    from sft_playbook.sft.model import load_model

    cfg = _recipe_cfg(sft_cfg, packing)
    assert R.main(cfg, ["train"]) == 0
    with open(os.path.join(cfg["output_dir"], cfg["run_name"], "metrics.jsonl")) as fh:
        rows = [json.loads(line) for line in fh]
    recipe_losses = [r["train_loss"] for r in rows if "train_loss" in r]
    recipe_norms = [r["grad_norm"] for r in rows if "grad_norm" in r]
    assert len(recipe_losses) == 4

    # the recipe's data pipeline for the batches (a second recipe, set up but not trained)
    twin = R.SFTRecipe(dict(cfg, run_name="twin"))
    twin.setup()
    try:
        glob, consumed, per_step = int(cfg["train"]["global_batch_size"]), 0, []
        for _ in range(4):
            items = twin.schedule.items_at(consumed, glob)
            consumed += len(items)
            micro = [twin.collate(items[i:i + twin.micro]) for i in range(0, len(items), twin.micro)]
            per_step.append((micro, sum(len(ex["input_ids"]) for it in items for ex in it)))
    finally:
        twin.cleanup()

    t = cfg["train"]
    torch.manual_seed(int(cfg["seed"]))
    model = load_model(twin.model_dir)
    train_module, _, opt, _ = O.setup_ours(model, torch.device("cpu"), None, attention="varlen", loss="chunked",
                                           compile=False, chunk_size=16, lr=float(t["lr"]), betas=t["betas"],
                                           weight_decay=float(t["weight_decay"]))
    bench = [(float(lt / n), float(g), int(real)) for lt, n, real, g in
             O.run_steps(train_module, opt, per_step, torch.device("cpu"), None, grad_clip=float(t["grad_clip"]))]
    assert [b[2] for b in bench] == [r for _, r in per_step]
    assert [b[0] for b in bench] == pytest.approx(recipe_losses, rel=1e-5)
    assert [b[1] for b in bench] == pytest.approx(recipe_norms, rel=1e-4)
    assert len({round(x, 4) for x in recipe_losses}) > 1  # the model trained: losses move


def test_run_ours_steps_through_recipe_train_step(monkeypatch):
    """run_ours times `recipe.train_step` itself, once per optimizer step (warm-up included)."""
    import throughput_common as C
    import throughput_ours as O

    calls = []
    real_step = R.train_step

    def spy(*args, **kwargs):
        calls.append(len(args[2]))  # micro-batches of this step
        return real_step(*args, **kwargs)

    monkeypatch.setattr(R, "train_step", spy)
    row = O.run_ours("tiny", C.make_samples(40, 512, 0), 512, steps=2, warmup=1, compile=False, rows=1, accum=2)
    assert "error" not in row, row
    assert calls == [2, 2, 2]
    assert row["step_fn"] == "sft_playbook.sft.recipe.train_step" and row["real_tokens"] > 0


def test_fsdp_reduce_dtype_is_checked(sft_cfg, caplog):
    """A bad train.fsdp_reduce_dtype stops the run before any work with one line naming the key,
    also on one process (the typed settings check it: exit code 2)."""
    cfg = dict(sft_cfg, train=dict(sft_cfg["train"], fsdp_reduce_dtype="fp16"))
    assert R.main(cfg, ["train"]) == 2
    assert "train.fsdp_reduce_dtype: must be one of fp32, bf16; got 'fp16'" in caplog.text
