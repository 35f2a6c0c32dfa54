"""Command lines of the entry points: step, options and overrides in any order (also under
torchrun), run folders named by the config's differences, no silent checkpoint deletion."""
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sft_playbook.cli import build_parser, parse_args, start
from sft_playbook.paths import REPO_ROOT, config_changes, derived_run_name, discard_checkpoints, run_dir

STEPS = ("convert", "train", "predict", "evaluate")


def _parse(argv):
    return parse_args(build_parser("run_sft.py", "", "configs/sft.yaml", steps=STEPS), argv)


@pytest.mark.parametrize("argv,step,config,overrides", [
    # the README's form (issue 20 item 4): step, then --config, then overrides
    (["train", "--config", "configs/sft_gpu.yaml", "train.parallel=ddp"], "train", "configs/sft_gpu.yaml",
     ["train.parallel=ddp"]),
    (["predict", "--config", "F", "a=1", "b.c=[1, 2]"], "predict", "F", ["a=1", "b.c=[1, 2]"]),
    (["--config", "F", "train", "a=1"], "train", "F", ["a=1"]),
    (["a=1", "--config", "F", "evaluate", "b=2"], "evaluate", "F", ["a=1", "b=2"]),
    (["a=1", "b=2"], "all", "configs/sft.yaml", ["a=1", "b=2"]),
    (["train", "a=1", "--config=F", "b=2", "--print-config"], "train", "F", ["a=1", "b=2"]),
    ([], "all", "configs/sft.yaml", []),
    (["all", "a=1"], "all", "configs/sft.yaml", ["a=1"]),
    # torch.distributed.launch appends --local-rank; it is accepted and ignored
    (["train", "--local-rank=1", "a=1"], "train", "configs/sft.yaml", ["a=1"]),
])
def test_step_options_and_overrides_in_any_order(argv, step, config, overrides):
    args = _parse(argv)
    assert (args.step, args.config, args.overrides) == (step, config, overrides)


@pytest.mark.parametrize("argv,message", [(["train", "predict"], "one step at a time"),
                                          (["trian", "a=1"], "unknown step 'trian'"),
                                          (["a=1", "trian"], "unknown step 'trian'")])
def test_bad_steps_are_one_clear_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        _parse(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def _run(*argv, exe=None, timeout=180):
    return subprocess.run([*(exe or [sys.executable]), *argv], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def test_readme_form_step_config_overrides_parses_end_to_end():
    r = _run("run_sft.py", "train", "--config", "configs/sft_gpu.yaml", "train.max_steps=3", "--print-config")
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load(r.stdout)
    assert cfg["train"]["max_steps"] == 3
    file_name = yaml.safe_load((REPO_ROOT / "configs/sft_gpu.yaml").read_text())["run_name"]
    assert cfg["run_name"] == f"{file_name}_max_steps-3"


def test_readme_form_under_torchrun():
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip(f"no torchrun next to {sys.executable}")
    r = _run("--nproc-per-node", "1", "run_sft.py", "train", "--config", "configs/sft_gpu.yaml",
             "train.parallel=ddp", "--print-config", exe=[str(torchrun)])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "unrecognized arguments" not in r.stderr
    assert yaml.safe_load(r.stdout.split("\n", 1)[1] if r.stdout.startswith("#") else r.stdout)["train"]["parallel"] == "ddp"


def test_print_config_prints_the_config_and_a_normal_start_only_one_line():
    r = _run("run_sft.py", "--print-config", "seed=7")
    assert r.returncode == 0 and yaml.safe_load(r.stdout)["seed"] == 7
    # without --print-config the config is one line, not the whole YAML
    out = _run("-c", "from sft_playbook.cli import build_parser, start; "
                     "start(build_parser('x.py', '', 'configs/sft.yaml', steps=('train',)), ['train', 'seed=7'], "
                     "name_run=True)")
    assert out.returncode == 0, out.stderr
    assert "config: configs/sft.yaml + seed=7" in out.stderr
    assert "target_modules" not in out.stderr and "lora:" not in out.stderr


FILE = {"run_name": "smollm2-135m-cpu", "model": "smollm2-135m", "output_dir": "results", "resume": False,
        "data": {"max_seq_len": 384, "max_val_samples": 8},
        "train": {"method": "full", "max_steps": 20, "lr": 1e-4, "stop_at_step": None, "eval_every": 5},
        "lora": {"r": 16, "dropout": 0.05}, "predict": {"max_samples": 8}, "evaluate": {"verilog": True},
        "wandb": {"enabled": True}}


def _with(**dotted):
    import copy

    cfg = copy.deepcopy(FILE)
    for key, value in dotted.items():
        node = cfg
        *parents, leaf = key.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return cfg


def test_run_name_from_the_changes_that_alter_the_model():
    assert derived_run_name(FILE, _with(train__method="lora", train__max_steps=3)) == \
        "smollm2-135m-cpu_method-lora_max_steps-3"
    # no change, or the file's own value: the config's run folder
    assert derived_run_name(FILE, _with()) == "smollm2-135m-cpu"
    assert derived_run_name(FILE, _with(train__max_steps=20)) == "smollm2-135m-cpu"
    # continuing, re-predicting, re-scoring the same model stays in its folder
    assert derived_run_name(FILE, _with(resume=True, train__stop_at_step=3, predict__max_samples=None,
                                        evaluate__verilog=False, wandb__enabled=False)) == "smollm2-135m-cpu"
    # values become folder-safe; hub ids and lists too
    assert derived_run_name(FILE, _with(model="HuggingFaceTB/SmolLM2 360M")) == \
        "smollm2-135m-cpu_model-HuggingFaceTB-SmolLM2-360M"
    # in the config's order, whatever the order on the command line
    name = derived_run_name(FILE, _with(train__lr=3e-4, lora__dropout=0.1, data__max_seq_len=640))
    assert name == "smollm2-135m-cpu_max_seq_len-640_lr-0.0003_dropout-0.1"
    # two changed keys with the same last part keep their section
    clash = _with(train__max_steps=5, lora__max_steps=2)
    assert derived_run_name(FILE, clash) == "smollm2-135m-cpu_train-max_steps-5_lora-max_steps-2"


def test_long_run_names_are_hashed_and_stable():
    many = _with(**{f"train__k{i}": i for i in range(40)})
    a, b = derived_run_name(FILE, many), derived_run_name(FILE, many)
    assert a == b and a.startswith("smollm2-135m-cpu_") and len(a) <= 40
    other = _with(**{f"train__k{i}": i + 1 for i in range(40)})
    assert derived_run_name(FILE, other) != a
    assert config_changes(FILE, _with(train__max_steps=3)) == [("train.max_steps", 3)]


def test_start_names_the_run_and_an_explicit_run_name_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parser = build_parser("run_sft.py", "", "configs/sft.yaml", steps=STEPS)
    cfg, args = start(parser, ["train", "train.method=lora", "train.max_steps=3"], name_run=True)
    assert cfg["run_name"] == f"{args.file_run_name}_method-lora_max_steps-3"
    assert run_dir(cfg) == REPO_ROOT / cfg["output_dir"] / cfg["run_name"]
    cfg, _ = start(parser, ["train", "train.method=lora", "run_name=mine"], name_run=True)
    assert cfg["run_name"] == "mine"
    cfg, args = start(parser, ["predict", "predict.max_samples=null"], name_run=True)
    assert cfg["run_name"] == args.file_run_name


def test_old_checkpoints_are_never_removed_silently(tmp_path, caplog):
    run = tmp_path / "run"
    (run / "checkpoints" / "step_000020").mkdir(parents=True)
    (run / "checkpoints" / "step_000020" / "model.safetensors").write_bytes(b"x")
    with caplog.at_level(logging.WARNING):
        discard_checkpoints(run)
    assert not (run / "checkpoints").exists()
    msg = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert "step_000020" in msg and "resume=true" in msg and "earlier run" in msg
    caplog.clear()
    discard_checkpoints(run)  # nothing there: nothing said
    assert not caplog.records


def test_training_from_step_0_announces_the_checkpoints_it_replaces(sft_cfg, tmp_path, caplog):
    from sft_playbook.sft.recipe import main

    cfg = dict(sft_cfg, train=dict(sft_cfg["train"], max_steps=2, eval_every=2, save_every=1, keep_checkpoints=1))
    old = tmp_path / "results" / "tiny" / "checkpoints" / "step_000005"
    old.mkdir(parents=True)
    with caplog.at_level(logging.INFO):
        assert main(cfg, ["train"]) == 0
    said = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert "step_000005" in said and "resume=true" in said
    # the rotation of train.keep_checkpoints says what it removes too
    assert any("older removed" in r.getMessage() and "step_000001" in r.getMessage() for r in caplog.records)
    assert sorted(p.name for p in old.parent.iterdir()) == ["step_000002"]


def test_plan_says_steps_model_rows_outputs_and_time(tmp_path):
    from sft_playbook.config import load_yaml
    from sft_playbook.sft.plan import describe_plan

    cfg = load_yaml(REPO_ROOT / "configs/sft.yaml")
    data = tmp_path / "data" / cfg["level"]
    data.mkdir(parents=True)
    row = '{"input": "' + "A 4-bit counter. " * 20 + '", "output": "' + "module m; endmodule " * 20 + '"}\n'
    for split, n in (("train", 199), ("validation", 37), ("test", 13)):
        (data / f"{split}.jsonl").write_text(row * n)
    cfg.update(data_dir=str(tmp_path / "data"), output_dir=str(tmp_path / "results"))
    text = describe_plan(cfg, ["convert", "train", "predict", "evaluate"])
    assert "convert -> train -> predict -> evaluate" in text and cfg["model"] in text
    assert "199 train / 37 validation / 13 test rows" in text
    assert f"{tmp_path / 'results' / cfg['run_name']}/  (new" in text
    if not shutil.which("nvidia-smi"):
        minutes = int(re.search(r"expected about (\d+) min", text).group(1))
        assert 1 <= minutes <= 60
    (tmp_path / "results" / cfg["run_name"]).mkdir(parents=True)
    assert "(exists:" in describe_plan(cfg, ["predict"])
    # predicting a run that was never trained points at the runs that were (overrides gave them their own folder)
    (tmp_path / "results" / f"{cfg['run_name']}_max_steps-3" / "model").mkdir(parents=True)
    assert f"trained runs: {cfg['run_name']}_max_steps-3" in describe_plan(cfg, ["predict"])
    # no data yet: says what to run
    cfg["data_dir"] = str(tmp_path / "none")
    assert "run `bash curate_data.sh` first" in describe_plan(cfg, ["train"])


def test_wandb_offline_is_one_line_on_the_console(tmp_path, capfd, caplog, monkeypatch):
    pytest.importorskip("wandb")
    from sft_playbook.sft.tracking import Tracker

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = {"run_name": "t", "wandb": {"enabled": True, "project": "p"}}
    with caplog.at_level(logging.INFO):
        tracker = Tracker(tmp_path, cfg, None)
        assert tracker.wandb is not None, "W&B did not start"
        tracker.log({"step": 1, "train_loss": 1.0})
        tracker.close()
    out = capfd.readouterr()
    assert "wandb:" not in out.out + out.err, out.out + out.err
    ours = [r.getMessage() for r in caplog.records if "W&B" in r.getMessage()]
    assert len(ours) == 1 and "offline" in ours[0] and "wandb sync" in ours[0]
