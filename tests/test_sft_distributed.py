"""Several processes through torchrun (gloo on CPU): DDP and FSDP2 give the single-process losses."""
import copy
import json
import shutil
import subprocess
import sys

import pytest
import yaml

from sft_playbook.paths import REPO_ROOT
from sft_playbook.sft.recipe import main


def torchrun(cfg, tmp_path, name, *overrides):
    cfg_path = tmp_path / f"{name}.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(REPO_ROOT / "run_sft.py"), "train", f"run_name={name}", *overrides, "--config", str(cfg_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
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
