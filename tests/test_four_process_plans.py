"""What the CPUs allow of the four-GPU runs (issues 22 and 23) while no 4-GPU machine is lent:
the native trainer under torchrun with 4 processes (gloo on CPU) gives the one-process losses with
DDP and FSDP2, and the NeMo backend plans TP=2 x data-parallel 2 on 4 devices with the right
launch, and refuses shapes that do not fit."""
import copy
import json
import subprocess
import sys

import pytest
import yaml

from sft_playbook.paths import REPO_ROOT
from sft_playbook.sft import nemo_plan as P
from sft_playbook.sft.recipe import main


def _course_cfg(**nemo):
    cfg = yaml.safe_load((REPO_ROOT / "configs" / "sft_gpu.yaml").read_text())
    cfg["nemo"].update(nemo)
    return cfg


def test_nemo_plans_tp2_times_dp2_on_four_devices(tmp_path):
    s = P.nemo_settings(_course_cfg(devices=4, tensor_parallel=2, pipeline_parallel=1))
    assert (s["world_size"], s["tp"], s["pp"], s["data_parallel"]) == (4, 2, 1, 2)
    # the course's batch: global 8 = micro 2 x data-parallel 2 x accumulation 2
    assert s["global_batch_size"] % (s["micro_batch_size"] * s["data_parallel"]) == 0
    cmd = P.worker_command("train", tmp_path / "job.json", s["world_size"], python="py")
    assert cmd[:5] == ["py", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4"]
    # Llama-2-7B's 32 heads split over TP=2; SmolLM2-135M's 9 heads do not
    P.check_parallel_fits({"num_attention_heads": 32, "num_key_value_heads": 32, "num_hidden_layers": 32}, s)
    with pytest.raises(P.NemoConfigError, match="must divide"):
        P.check_parallel_fits({"num_attention_heads": 9, "num_key_value_heads": 3, "num_hidden_layers": 30}, s)


@pytest.mark.parametrize("nemo,global_batch,match", [
    ({"devices": 4, "tensor_parallel": 3}, 8, "multiple of tensor_parallel"),
    ({"devices": 4, "tensor_parallel": 1}, 12, "global_batch_size"),     # 12 % (micro 2 x dp 4) != 0
    ({"devices": 4, "tensor_parallel": 2}, 6, "global_batch_size"),      # 6 % (micro 2 x dp 2) != 0
])
def test_nemo_four_device_shapes_that_do_not_fit_are_refused(nemo, global_batch, match):
    cfg = _course_cfg(**nemo)
    cfg["nemo"]["global_batch_size"] = global_batch
    with pytest.raises(P.NemoConfigError, match=match):
        P.nemo_settings(cfg)


def _torchrun4(cfg, tmp_path, name, *overrides):
    cfg_path = tmp_path / f"{name}.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "4",
           str(REPO_ROOT / "run_sft.py"), "train", f"run_name={name}", *overrides, "--config", str(cfg_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(x) for x in (tmp_path / "results" / name / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_four_processes_match_one_process(sft_cfg, tmp_path, parallel):
    sft_cfg["train"].update(max_steps=2, eval_every=2, micro_batch_size=1, global_batch_size=4)
    ref_cfg = copy.deepcopy(sft_cfg)
    assert main(ref_cfg, ["train"]) == 0
    ref = [json.loads(x) for x in (REPO_ROOT / sft_cfg["output_dir"] / sft_cfg["run_name"] / "metrics.jsonl")
           .read_text().splitlines()]
    got = _torchrun4(sft_cfg, tmp_path, parallel, f"train.parallel={parallel}")
    assert [r["step"] for r in got] == [r["step"] for r in ref]
    for a, b in zip(ref, got):
        for key in ("train_loss", "val_loss"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-4), (a["step"], key)
