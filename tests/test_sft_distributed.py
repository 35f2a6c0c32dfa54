"""Several processes through torchrun (gloo on CPU): DDP and FSDP2 give the single-process losses."""
import copy
import json
import subprocess
import sys

import pytest
import yaml

from sft_playbook.paths import REPO_ROOT
from sft_playbook.sft.recipe import main


def torchrun(cfg, tmp_path, name, *overrides, nproc: int = 2):
    cfg_path = tmp_path / f"{name}.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
           str(REPO_ROOT / "run_sft.py"), "train", f"run_name={name}", *overrides, "--config", str(cfg_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300 * nproc // 2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(x) for x in (tmp_path / "results" / name / "metrics.jsonl").read_text().splitlines()]


def single(cfg):
    assert main(copy.deepcopy(cfg), ["train"]) == 0
    path = REPO_ROOT / cfg["output_dir"] / cfg["run_name"] / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()]


def same(a, b):
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b):
        for key in ("train_loss", "val_loss"):
            if key in ra:
                assert rb[key] == pytest.approx(ra[key], rel=1e-4), (ra["step"], key)


def test_ddp_two_processes_match_one_process(sft_cfg, tmp_path):
    sft_cfg["train"].update(max_steps=2, eval_every=2)
    same(single(sft_cfg), torchrun(sft_cfg, tmp_path, "ddp", "train.parallel=ddp"))


@pytest.mark.slow
def test_fsdp2_stop_and_resume_match_one_process(sft_cfg, tmp_path):
    from safetensors.torch import load_file

    ref = single(sft_cfg)
    torchrun(sft_cfg, tmp_path, "fsdp", "train.parallel=fsdp", "train.stop_at_step=3")
    got = torchrun(sft_cfg, tmp_path, "fsdp", "train.parallel=fsdp", "resume=true")
    same(ref, got)
    a = load_file(tmp_path / "results/tiny/model/model.safetensors")
    b = load_file(tmp_path / "results/fsdp/model/model.safetensors")
    assert all((a[k] - b[k]).abs().max() < 1e-4 for k in a)


# ------------------------------------------- resume across parallel modes and process counts
def _resume_chain(sft_cfg, tmp_path, legs, method="full", leg_train=None):
    """Train max_steps in legs [(mode, stop_at)], each resuming the previous leg's checkpoint in
    another mode ("one" = a single process, "ddp" / "fsdp" = 2 processes); compare with one
    uninterrupted single-process run step by step, and the final weights."""
    cfg = copy.deepcopy(sft_cfg)
    cfg["train"].update(max_steps=legs[-1][1], eval_every=1, save_every=0, method=method)
    if method == "lora":
        cfg["lora"].update(r=4, alpha=8, dropout=0.0, merge=False, target_modules=["q_proj", "v_proj", "lm_head"])
        cfg["train"]["lr"] = 1e-2
    ref = single(cfg)
    cfg["run_name"] = "chain"
    for i, (mode, stop) in enumerate(legs):
        leg = copy.deepcopy(cfg)
        leg["resume"] = i > 0
        leg["train"]["stop_at_step"] = stop
        leg["train"].update(leg_train or {})
        if mode == "one":
            got = single(leg)
        else:
            got = torchrun(leg, tmp_path, "chain", f"train.parallel={mode}", f"resume={str(i > 0).lower()}",
                           f"train.stop_at_step={stop}")
    same(ref, got)
    from safetensors.torch import load_file

    sub = "model/model.safetensors" if method == "full" else "adapter/adapter_model.safetensors"
    a = load_file(tmp_path / "results/tiny" / sub)
    b = load_file(tmp_path / "results/chain" / sub)
    assert a.keys() == b.keys()
    assert all((a[k] - b[k]).abs().max() < 1e-4 for k in a)


def test_one_process_checkpoint_resumes_under_fsdp_two_processes(sft_cfg, tmp_path):
    """The reported crash (KeyError: 'state.0.step' in set_optimizer_state_dict): 1 -> FSDP x2."""
    _resume_chain(sft_cfg, tmp_path, [("one", 1), ("fsdp", 2)])


@pytest.mark.slow
def test_every_pair_of_modes_resumes_exactly(sft_cfg, tmp_path):
    """1 -> DDP -> FSDP -> 1 -> FSDP -> DDP -> 1: each pair of modes and 1 <-> 2 processes once."""
    _resume_chain(sft_cfg, tmp_path, [("one", 1), ("ddp", 2), ("fsdp", 3), ("one", 4), ("fsdp", 5), ("ddp", 6),
                                      ("one", 7)])


@pytest.mark.slow
def test_lora_resumes_across_modes(sft_cfg, tmp_path):
    """LoRA with an adapter on lm_head, trained through the chunked loss in every leg (the reference:
    one process, full logits)."""
    _resume_chain(sft_cfg, tmp_path, [("fsdp", 1), ("one", 2), ("ddp", 3), ("fsdp", 4)], method="lora",
                  leg_train={"loss": "chunked", "loss_chunk_size": 32})
