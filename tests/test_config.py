import subprocess
import sys

import pytest

from sft_playbook.config import ConfigError, apply_overrides, get, load_config, parse_override
from sft_playbook.paths import REPO_ROOT


def test_override_types_and_nesting():
    cfg = {"train": {"lr": 1e-3, "steps": 10, "lora": False}, "name": "x"}
    out = apply_overrides(cfg, ["train.lr=5e-5", "train.steps=20", "train.lora=true", "name=run-2"])
    assert out == {"train": {"lr": 5e-5, "steps": 20, "lora": True}, "name": "run-2"}
    assert cfg["train"]["steps"] == 10, "the input config must not be changed"


def test_unknown_key_is_an_error_naming_the_key():
    with pytest.raises(ConfigError, match="train.stpes"):
        apply_overrides({"train": {"steps": 1}}, ["train.stpes=3"])


def test_plus_adds_a_key_and_list_values_parse():
    out = apply_overrides({"a": {}}, ["+a.b.c=[1, 2]"])
    assert out == {"a": {"b": {"c": [1, 2]}}}


def test_override_needs_equals():
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("train.lr")


def test_yaml_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+"):
        load_config(bad)


def test_get_dotted():
    assert get({"a": {"b": 2}}, "a.b") == 2
    assert get({"a": {}}, "a.c", None) is None
    with pytest.raises(ConfigError, match="a.c"):
        get({"a": {}}, "a.c")


@pytest.mark.parametrize("script,config", [("run_sft.py", "configs/sft.yaml"), ("curate_data.py", "configs/curate.yaml")])
def test_entry_points_print_effective_config(script, config):
    proc = subprocess.run([sys.executable, script, "--print-config", "seed=7"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "effective config" in proc.stdout and "seed: 7" in proc.stdout


def test_entry_point_rejects_unknown_key_with_exit_2():
    proc = subprocess.run([sys.executable, "run_sft.py", "--print-config", "no_such_key=1"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "no_such_key" in proc.stderr


def test_unknown_step_is_rejected():
    proc = subprocess.run([sys.executable, "run_sft.py", "trian"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown step 'trian'" in proc.stderr
