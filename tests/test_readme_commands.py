"""Every command in README.md's ```bash blocks works as written, in a fresh shell.

Each command is read from the README (backslash continuations joined, comments removed) and run
through bash, from the repository root, without PYTHONPATH or an activated environment, in a
cheap form:

- `bash run_sft.sh ...` / `bash curate_data.sh ...` / `torchrun ... run_sft.py ...`: with
  `--print-config` added (parses the step, options and overrides, loads the config, names the run
  folder; nothing is trained or downloaded); `--dry-run` commands as they are; a `# -> results/X/`
  comment must name the run folder the command really uses.
- `bash evaluate.sh ...`: for real, on the two-problem benchmark folder in tests/fixtures
  (references, prompts, verilogeval with answers, predictions) or a local archive (download).
- `bash test.sh ...` (this suite itself) and `git clone` / `cd` are listed but not run.

A command of a kind not listed here fails the test: a new README command needs a cheap form.
The bash scripts set the environment up first (scripts/bootstrap.sh); when this checkout's
environment is not the one bootstrap would reuse (it would reinstall), the tests that run bash
skip with that reason (`bash test.sh` prepares it, so in CI they run).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from sft_playbook.paths import REPO_ROOT

README = REPO_ROOT / "README.md"
PROBLEMS = REPO_ROOT / "tests/fixtures/verilog_eval/problems"
NOT_RUN = {"git": "clones the repository", "cd": "changes folder",
           "test.sh": "runs this test suite itself"}


def readme_commands(text: str) -> list[tuple[int, str, str]]:
    """(line number, command, comment) for each command line of the ```bash blocks (indented too)."""
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                start, cmd = i + 1, lines[i].strip()
                while cmd.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    cmd = cmd[:-1].rstrip() + " " + lines[i].strip()
                code, _, comment = _split_comment(cmd)
                if code:
                    out.append((start, code, comment))
                i += 1
        i += 1
    return out


def _split_comment(cmd: str) -> tuple[str, str, str]:
    """(code, '#', comment): a '#' that starts a word outside quotes starts the comment."""
    quote = None
    for j, ch in enumerate(cmd):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (j == 0 or cmd[j - 1].isspace()):
            return cmd[:j].strip(), "#", cmd[j + 1:].strip()
    return cmd.strip(), "", ""


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


def _kind(words: list[str]) -> str:
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words = words[1:]  # VAR=value prefixes
    if not words:
        return "?"
    if words[0] == "bash" and len(words) > 1:
        return Path(words[1]).name
    if Path(words[0]).name == "torchrun":
        return "torchrun"
    return words[0]


def test_readme_has_commands_and_none_needs_an_activated_environment():
    assert len(COMMANDS) >= 15, COMMANDS
    for line, cmd, _ in COMMANDS:
        words = shlex.split(cmd)
        assert not re.match(r"python3?$", words[0]), \
            f"README.md:{line}: `{cmd}` needs the project's interpreter; show `bash <script>.sh` instead"
        kind = _kind(words)
        assert kind in NOT_RUN or kind in ("run_sft.sh", "curate_data.sh", "evaluate.sh", "torchrun"), \
            f"README.md:{line}: `{cmd}`: no cheap form known for this command; add one to this test"


def _bootstrap_reuses() -> str | None:
    """None when scripts/bootstrap.sh would reuse this checkout's environment, else why not."""
    venv = Path(os.environ.get("SFT_PLAYBOOK_VENV", REPO_ROOT / ".venv"))
    stamp = venv / ".sft_playbook_stamp"
    if not (venv / "bin" / "python").exists() or not stamp.is_file():
        return f"no prepared environment in {venv} (bash test.sh prepares it)"
    digest = hashlib.sha256((REPO_ROOT / "pyproject.toml").read_bytes()
                            + (REPO_ROOT / "scripts/bootstrap.sh").read_bytes()).hexdigest()[:16]
    want = f"{digest}\nextras={os.environ.get('SFT_PLAYBOOK_EXTRAS', 'dev')}"
    if stamp.read_text().strip() != want:
        return f"{venv} was prepared for another pyproject.toml/bootstrap.sh (bash test.sh updates it)"
    return None


def _fresh_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(SFT_PLAYBOOK_CONTAINER_MODE="never", HOME=os.environ.get("HOME", str(tmp_path)),
               WANDB_MODE="disabled")
    return env


def _archive(tmp_path: Path) -> Path:
    """The fixture problems in upstream's archive layout (verilog-eval-<ref>/dataset_spec-to-rtl/...)."""
    path = tmp_path / "main.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for f in sorted(PROBLEMS.iterdir()):
            tar.add(f, arcname=f"verilog-eval-main/dataset_spec-to-rtl/{f.name}")
        lic = b"MIT (test fixture)\n"
        info = tarfile.TarInfo("verilog-eval-main/LICENSE")
        info.size = len(lic)
        tar.addfile(info, io.BytesIO(lic))
    return path


def _predictions(tmp_path: Path) -> Path:
    fx = REPO_ROOT / "tests/fixtures/verilog_eval"
    rows = [{"id": "c", "input": "A counter.", "reference": (fx / "counter_ref.v").read_text(),
             "prediction": "```verilog\n" + (fx / "counter_good_rewritten.v").read_text() + "```", "model": "finetuned"},
            {"id": "c", "input": "A counter.", "reference": (fx / "counter_ref.v").read_text(),
             "prediction": (fx / "counter_onebit_bug.v").read_text(), "model": "base"}]
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def cheap_form(cmd: str, tmp_path: Path) -> tuple[list[str] | None, str]:
    """(argv to run with bash -c, what is checked) or (None, why it is not run)."""
    words = shlex.split(cmd)
    kind = _kind(words)
    if kind in NOT_RUN:
        return None, NOT_RUN[kind]
    words = [w.replace("<run>", "smollm2-135m-cpu") for w in words]
    if kind == "torchrun":
        words = [w if w != "N" else "1" for w in words]
        exe = Path(sys.executable).with_name("torchrun")
        return [str(exe) if Path(words[0]).name == "torchrun" else words[0], *words[1:], "--print-config"], "config"
    if kind in ("run_sft.sh", "curate_data.sh"):
        if "--dry-run" in words:
            return words, "dry-run"
        return words + (["--print-config"] if "--print-config" not in words else []), "config"
    if kind == "evaluate.sh":
        step = next((w for w in words[2:] if "=" not in w and not w.startswith("-")), "all")
        out = [f"out_dir={tmp_path / 'eval'}"]
        if step == "download":
            return words + [f"download.url=file://{_archive(tmp_path).parent}/{{ref}}.tar.gz",
                            f"download.dest={tmp_path / 've'}"], "ran"
        if step in ("references", "prompts"):
            return words + [f"verilogeval.problems_dir={PROBLEMS}"] + out, "ran"
        if step == "verilogeval":
            answers = tmp_path / "answers.jsonl"
            n = int(next((w.split("=", 1)[1] for w in words if w.startswith("verilogeval.n_samples=")), 1))
            rows = [{"problem": p, "answer": (PROBLEMS / f"{p}_ref.sv").read_text().replace("RefModule", "TopModule")}
                    for p in (PROBLEMS / "problems.txt").read_text().split() for _ in range(n)]
            answers.write_text("".join(json.dumps(r) + "\n" for r in rows))
            words = [f"verilogeval.answers={answers}" if w.startswith("verilogeval.answers=") else w for w in words]
            return words + [f"verilogeval.problems_dir={PROBLEMS}", "workers=2"] + out, "ran"
        if step == "predictions":
            words = [f"predictions.file={_predictions(tmp_path)}" if w.startswith("predictions.file=") else w
                     for w in words]
            return words + ["workers=2"] + out, "ran"
        return words + ["--print-config"], "config"
    raise AssertionError(f"no cheap form for `{cmd}`")


@pytest.mark.parametrize("line,cmd,comment", COMMANDS, ids=[f"L{ln}:{c[:60]}" for ln, c, _ in COMMANDS])
def test_readme_command_works_as_written(line, cmd, comment, tmp_path):
    argv, check = cheap_form(cmd, tmp_path)
    if argv is None:
        pytest.skip(f"README.md:{line}: not run here ({check})")
    if argv[0] == "bash":
        why = _bootstrap_reuses()
        if why:
            pytest.skip(why)
    r = subprocess.run(["bash", "-c", shlex.join(argv)], cwd=REPO_ROOT, capture_output=True, text=True,
                       timeout=300, env=_fresh_env(tmp_path))
    where = f"README.md:{line}: `{cmd}` (run as `{shlex.join(argv)}`) exited {r.returncode}:\n{r.stderr[-3000:]}"
    assert r.returncode == 0, where
    assert "Traceback" not in r.stderr and "unrecognized arguments" not in r.stderr, where
    if check == "config":
        text = r.stdout.split("\n", 1)[1] if r.stdout.startswith("#") else r.stdout
        cfg = yaml.safe_load(text)
        assert isinstance(cfg, dict) and cfg, where
        m = re.search(r"->\s*results/([^/\s]+)/", comment)
        if m:
            assert cfg["run_name"] == m.group(1), f"README.md:{line}: the comment says results/{m.group(1)}/, " \
                                                  f"the run uses results/{cfg['run_name']}/"
        if "default run's folder" in comment:
            assert cfg["run_name"] == yaml.safe_load((REPO_ROOT / "configs/sft.yaml").read_text())["run_name"]
    elif check == "ran":
        step = next(w for w in argv[2:] if "=" not in w and not w.startswith("-"))
        if step in ("references", "verilogeval"):
            summary = json.loads(r.stdout[r.stdout.index("{"):])
            assert summary["problems"] == 2 and summary["pass_at_k"]["pass@1"] == 1.0, summary
        elif step == "download":
            assert (tmp_path / "ve" / "spec-to-rtl" / "problems.txt").is_file()
        elif step == "prompts":
            assert len((tmp_path / "eval" / "verilogeval_prompts.jsonl").read_text().splitlines()) == 2
        elif step == "predictions":
            summary = json.loads(r.stdout[r.stdout.index("{"):])
            assert summary["finetuned"]["functional_pass"] == 1 and summary["base"]["mismatch"] == 1, summary
