"""The NeMo container launcher: the decision, the exact docker command, secrets never on argv,
and the hook in run_sft.sh / curate_data.sh (run for real with bash; no Docker engine is needed
because the decision is made before docker would be called)."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from sft_playbook import container as c

REPO = Path(__file__).resolve().parent.parent


class FakeMachine(c.Probe):
    """A machine description for the detection logic: which commands exist and which succeed."""

    def __init__(self, commands=(), working=()):
        super().__init__(which=lambda name: f"/usr/bin/{name}" if name in commands else None,
                         runs_ok=lambda argv: argv[0] in working)


GPU_DOCKER = FakeMachine(commands=("docker", "nvidia-smi"), working=("docker", "nvidia-smi"))
NO_EXISTS = lambda path: False  # noqa: E731  (no /opt/NeMo on the pretend machine)


def _decide(flags=(), mode="auto", env=None, probe=GPU_DOCKER):
    return c.decide(set(flags), c.Settings(mode=mode), env or {}, probe, exists=NO_EXISTS)


def test_auto_launches_only_with_docker_daemon_and_gpu():
    assert _decide().launch
    assert not _decide(probe=FakeMachine(commands=("nvidia-smi",), working=("nvidia-smi",))).launch
    no_daemon = _decide(probe=FakeMachine(commands=("docker", "nvidia-smi"), working=("nvidia-smi",)))
    assert not no_daemon.launch and "docker info" in no_daemon.reason
    no_gpu = _decide(probe=FakeMachine(commands=("docker", "nvidia-smi"), working=("docker",)))
    assert not no_gpu.launch and "GPU" in no_gpu.reason
    assert not _decide(probe=FakeMachine(commands=("docker",), working=("docker",))).launch


def test_inside_container_never_relaunches():
    for env in ({"SFT_PLAYBOOK_CONTAINER": "1"}, {"NEMO_VERSION": "2.1.0"}):
        d = _decide(flags=("--container",), mode="always", env=env)
        assert not d.launch and "inside" in d.reason
    d = c.decide({"--container"}, c.Settings(), {}, GPU_DOCKER, exists=lambda p: p == "/opt/NeMo")
    assert not d.launch


def test_flags_and_modes():
    assert not _decide(flags=("--no-container",)).launch
    assert not _decide(mode="never").launch
    assert _decide(mode="always", probe=FakeMachine(commands=("docker",), working=("docker",))).launch
    assert _decide(flags=("--container",), mode="never").launch
    with pytest.raises(c.ContainerError, match="Docker cannot be used"):
        _decide(flags=("--container",), probe=FakeMachine())
    with pytest.raises(c.ContainerError, match="contradict"):
        c.split_flags(["--container", "--no-container"])
    flags, rest = c.split_flags(["train", "--container", "--dry-run", "train.max_steps=3"])
    assert flags == {"--container", "--dry-run"} and rest == ["train", "train.max_steps=3"]


def test_settings_file_and_env(tmp_path):
    f = tmp_path / "container.yaml"
    f.write_text("# comment\nimage: my/nemo:1  # note\nmode: never\ngpus: '\"device=0,1\"'\n"
                 "docker_args: \"--shm-size=16g -e FOO=1\"\n")
    s = c.load_settings(f, {})
    assert (s.image, s.mode, s.gpus, s.docker_args) == ("my/nemo:1", "never", '"device=0,1"', ["--shm-size=16g", "-e", "FOO=1"])
    s = c.load_settings(f, {"SFT_PLAYBOOK_CONTAINER_MODE": "always", "SFT_PLAYBOOK_CONTAINER_IMAGE": "x:y"})
    assert (s.mode, s.image) == ("always", "x:y")
    f.write_text("mode: sometimes\n")
    with pytest.raises(c.ContainerError, match="sometimes"):
        c.load_settings(f, {})
    f.write_text("imag: x\n")
    with pytest.raises(c.ContainerError, match=r"container.yaml:1: unknown key 'imag'"):
        c.load_settings(f, {})
    shipped = c.load_settings(REPO / "configs" / "container.yaml", {})
    assert shipped.image == "nvcr.io/nvidia/nemo:24.12" and shipped.mode == "auto"


def test_exact_docker_command_and_no_secret_values(tmp_path):
    (tmp_path / "token.env").write_text("HF_TOKEN='hf_secretvalue123'\nexport WANDB_API_KEY=wb_secret456\nWANDB_PROJECT=\n")
    s = c.Settings(hf_cache=str(tmp_path / "hf"))
    cmd = c.build_command("run_sft.sh", ["train", "train.max_steps=3", "a b"], s, tmp_path,
                          {"HF_ENDPOINT": "https://mirror"}, tty=False)
    root = tmp_path.resolve()
    assert cmd == [
        "docker", "run", "--gpus", "all", "--ipc=host", "--ulimit", "memlock=-1", "--ulimit", "stack=67108864", "--rm",
        "-v", f"{root}:/workspace/sft-playbook", "-w", "/workspace/sft-playbook",
        "-v", f"{tmp_path / 'hf'}:/root/.cache/huggingface",
        "-e", "SFT_PLAYBOOK_CONTAINER=1", "-e", "HF_HOME=/root/.cache/huggingface",
        "-e", "NEMO_HOME=/workspace/sft-playbook/.cache/nemo",
        "-e", "HF_ENDPOINT", "-e", "HF_TOKEN", "-e", "WANDB_API_KEY",
        "nvcr.io/nvidia/nemo:24.12", "bash", "run_sft.sh", "train", "train.max_steps=3", "a b",
    ]
    text = shlex.join(cmd)
    assert "secretvalue" not in text and "wb_secret" not in text
    env = c.child_env(tmp_path, {})
    assert env["HF_TOKEN"] == "hf_secretvalue123" and env["WANDB_API_KEY"] == "wb_secret456"
    assert "WANDB_PROJECT" not in env  # empty values are not passed
    # the environment wins over token.env
    assert c.child_env(tmp_path, {"HF_TOKEN": "from_env"})["HF_TOKEN"] == "from_env"
    assert "-it" in c.build_command("curate_data.sh", [], s, tmp_path, {}, tty=True)


def test_main_dry_run_prints_command_and_runs_nothing(tmp_path, capsys):
    ran = []
    rc = c.main(["run_sft.sh", "--container", "--dry-run", "predict"], env={"HF_TOKEN": "hf_abcdef"},
                probe=GPU_DOCKER, repo_root=REPO, runner=lambda cmd, env: ran.append(cmd) or 0)
    out = capsys.readouterr()
    assert rc == 0 and ran == []
    printed = shlex.split(out.out.strip())
    assert printed[:2] == ["docker", "run"] and printed[-3:] == ["bash", "run_sft.sh", "predict"]
    assert "--container" not in printed and "--dry-run" not in printed
    assert "hf_abcdef" not in out.out + out.err


def test_main_runs_docker_and_maps_exit_codes(tmp_path):
    seen = {}

    def runner(cmd, env):
        seen["cmd"], seen["env"] = cmd, env
        return seen.get("rc", 0)

    assert c.main(["curate_data.sh", "--container"], env={"HF_TOKEN": "t0k3n"}, probe=GPU_DOCKER,
                  repo_root=REPO, runner=runner) == 0
    assert seen["cmd"][-2:] == ["bash", "curate_data.sh"] and seen["env"]["HF_TOKEN"] == "t0k3n"
    seen["rc"] = 3
    assert c.main(["run_sft.sh"], env={}, probe=GPU_DOCKER, repo_root=REPO, runner=runner) == 3
    seen["rc"] = c.NOT_LAUNCHED  # a failure inside must never read as "not launched"
    assert c.main(["run_sft.sh"], env={}, probe=GPU_DOCKER, repo_root=REPO, runner=runner) == 1
    assert c.main(["run_sft.sh"], env={}, probe=FakeMachine(), repo_root=REPO, runner=runner) == c.NOT_LAUNCHED
    assert c.main(["run_sft.sh", "--container", "--no-container"], env={}, probe=GPU_DOCKER,
                  repo_root=REPO, runner=runner) == 2


def _bash(script, *args, env_extra=None, path_dir=None):
    env = {k: v for k, v in os.environ.items() if k not in ("SFT_PLAYBOOK_CONTAINER", "NEMO_VERSION")}
    env.update(env_extra or {})
    if path_dir is not None:
        env["PATH"] = f"{path_dir}:{env['PATH']}"
    return subprocess.run(["bash", str(REPO / script), *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("script", ["run_sft.sh", "curate_data.sh"])
def test_shell_hook_dry_run_with_pretend_docker_and_gpu(tmp_path, script):
    """Real bash, real launcher; 'docker' and 'nvidia-smi' are tiny scripts that succeed for the
    probes and record any other call (which must not happen in a dry run)."""
    if Path("/opt/NeMo").exists():
        pytest.skip("this machine is the NeMo container; the launcher correctly never relaunches here")
    log = tmp_path / "calls.log"
    for name in ("docker", "nvidia-smi"):
        tool = tmp_path / name
        tool.write_text(f"#!/bin/sh\necho \"{name} $*\" >> {log}\nexit 0\n")
        tool.chmod(0o755)
    r = _bash(script, "--dry-run", "--container", "x=1", path_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    printed = shlex.split(r.stdout.strip().splitlines()[-1])
    assert printed[:2] == ["docker", "run"] and printed[-3:] == ["bash", script, "x=1"]
    assert "[setup]" not in r.stderr  # nothing was set up or run here
    assert log.read_text().splitlines() == ["docker info"]  # only the probe, no 'docker run'

    # --no-container: the launcher steps aside; the flag is removed before the script's own CLI
    r = _bash(script, "--no-container", "--print-config", path_dir=tmp_path,
              env_extra={"SFT_PLAYBOOK_CONTAINER_MODE": "always"})
    assert r.returncode == 0, r.stderr
    assert "--no-container" not in r.stderr and "unrecognized" not in r.stderr


def test_shell_hook_runs_here_without_docker():
    r = _bash("run_sft.sh", "--print-config", env_extra={"SFT_PLAYBOOK_CONTAINER_MODE": "never"})
    assert r.returncode == 0, r.stderr
    assert "backend" in r.stdout + r.stderr


def test_launcher_is_stdlib_only():
    """scripts/container_launch.py runs before any venv exists: check it with an isolated python."""
    r = subprocess.run([sys.executable, "-I", "-S", str(REPO / "scripts" / "container_launch.py"), "run_sft.sh",
                        "--no-container"], capture_output=True, text=True, timeout=30,
                       env={"PATH": os.environ["PATH"]})
    assert r.returncode == c.NOT_LAUNCHED, r.stderr
