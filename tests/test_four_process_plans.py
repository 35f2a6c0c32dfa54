"""What the CPUs allow of the four-GPU runs (issues 22 and 23) while no 4-GPU machine is lent:
the native trainer under torchrun with 4 processes (gloo on CPU) gives the one-process losses with
DDP and FSDP2, and the NeMo backend plans TP=2 x data-parallel 2 on 4 devices with the right
launch, and refuses shapes that do not fit."""
import pytest
import yaml
from test_sft_distributed import same, single, torchrun

from sft_playbook.paths import REPO_ROOT
from sft_playbook.sft import nemo_plan as P


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


@pytest.mark.slow
@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_four_processes_match_one_process(sft_cfg, tmp_path, parallel):
    sft_cfg["train"].update(max_steps=2, eval_every=2, micro_batch_size=1, global_batch_size=4)
    same(single(sft_cfg), torchrun(sft_cfg, tmp_path, parallel, f"train.parallel={parallel}", nproc=4))
