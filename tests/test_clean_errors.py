"""Issue 14.2-14.4: bad bytes, full disks and wrong command-line values end with ONE clear line
(file:line, or the path and the cause, or key: expected ...), a non-zero exit code and no
traceback (unless --debug); outputs are replaced as a set or not at all."""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import curate_fixtures as fx
from sft_playbook.cli import run_main
from sft_playbook.config import ConfigError, apply_overrides, load_config
from sft_playbook.io import OutputError, output_error
from sft_playbook.paths import REPO_ROOT

LEVELS_MAP = {"high_level": "high_level_global_summary", "detailed": "detailed_global_summary",
              "block": "block_summary"}


def cli(*args, timeout=300, **kw):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "ERROR" in ln or "error" in ln.lower()]


# --- 14.4: values on the command line -----------------------------------------------------------

BASE = {"timeout_s": 20, "train": {"max_steps": 10, "lr": 1e-4, "bf16": True, "method": "full", "betas": [0.9, 0.95],
                  "opt": {"eps": 1e-8}, "threads": None}}


@pytest.mark.parametrize("override, message", [
    ("train.max_steps=abc", "train.max_steps: expected an integer, got 'abc'"),
    ("train.max_steps=1.5", "train.max_steps: expected an integer, got '1.5'"),
    ("train.max_steps=true", "train.max_steps: expected an integer, got 'true'"),
    ("train.lr=fast", "train.lr: expected a number, got 'fast'"),
    ("train.lr=[1]", "train.lr: expected a number, got '[1]'"),
    ("train.bf16=maybe", "train.bf16: expected true or false, got 'maybe'"),
    ("train.bf16=1", "train.bf16: expected true or false, got '1'"),
    ("train.betas=0.9", "train.betas: expected a list, got '0.9'"),
    ("train.opt=3", "train.opt: expected a section (key: value mapping), got '3'"),
    ("timeout_s=soon", "timeout_s: expected a number, got 'soon'"),
])
def test_override_of_the_wrong_type_is_one_clear_error(override, message):
    with pytest.raises(ConfigError) as exc:
        apply_overrides(BASE, [override])
    assert str(exc.value) == message


def test_a_text_override_is_kept_as_typed_even_when_it_looks_like_yaml():
    """`[a, b]` given for a text stays the text `[a, b]`; the typed settings then judge it."""
    assert apply_overrides(BASE, ["train.method=[a, b]"])["train"]["method"] == "[a, b]"
    assert apply_overrides(BASE, ["train.method=a # b: {c"])["train"]["method"] == "a # b: {c"


def test_overrides_of_the_right_type_are_kept():
    out = apply_overrides(BASE, ["train.max_steps=1e3", "train.lr=3", "train.lr=5e-5", "train.method=2024",
                                 "train.threads=4", "train.opt={eps: 1.0e-6}", "train.max_steps=null"])["train"]
    assert out["max_steps"] is None and out["lr"] == 5e-5 and out["method"] == "2024" and out["threads"] == 4
    assert apply_overrides(BASE, ["train.max_steps=1e3"])["train"]["max_steps"] == 1000
    assert apply_overrides(BASE, ["train.lr=3"])["train"]["lr"] == 3.0
    assert apply_overrides(BASE, ["timeout_s=2.5"])["timeout_s"] == 2.5   # seconds: any number


def test_every_shipped_config_accepts_its_own_values():
    """Each config's own leaf values, given back as overrides, pass the check (no false alarms)."""
    import yaml
    for path in sorted((REPO_ROOT / "configs").glob("*.yaml")):
        cfg = load_config(path)

        def leaves(node, prefix=""):
            for k, v in node.items():
                if isinstance(v, dict) and v:
                    yield from leaves(v, f"{prefix}{k}.")
                else:
                    yield f"{prefix}{k}", v
        for key, value in leaves(cfg):
            text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
            apply_overrides(cfg, [f"{key}={text}"])


@pytest.mark.parametrize("script, step, override, message", [
    ("run_sft.py", "train", "train.max_steps=abc", "train.max_steps: expected an integer, got 'abc'"),
    ("run_sft.py", "train", "train.lr=fast", "train.lr: expected a number, got 'fast'"),
    ("evaluate.py", "predictions", "predictions.timeout_s=soon", "predictions.timeout_s: expected a number, got 'soon'"),
    ("curate_data.py", None, "seed=abc", "seed: expected an integer, got 'abc'"),
])
def test_entry_points_refuse_a_wrong_value_before_any_work(script, step, override, message):
    args = [script, *([step] if step else []), override]
    proc = cli(*args, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert "loading" not in proc.stderr.lower() and "=== step" not in proc.stderr


# --- issue 19, after review: a section given whole, YAML 1.1 booleans, a key given twice, .inf --------
# (config.apply_overrides: the first, file-relative check; tests/test_settings.py has the typed layer)

NESTED = {"timeout_s": 20, "hooks": {},
          "train": {"max_steps": 10, "lr": 1e-4, "bf16": True, "method": "full",
                    "opt": {"eps": 1e-8, "name": "adamw", "fused": False}}}


@pytest.mark.parametrize("overrides, want", [
    (["train={lr: 2e-4}"], {**NESTED["train"], "lr": 2e-4}),
    (["train.opt={eps: 1e-6}"], {**NESTED["train"], "opt": {"eps": 1e-6, "name": "adamw", "fused": False}}),
    (["train={opt: {fused: true}, max_steps: 3}"],
     {**NESTED["train"], "max_steps": 3, "opt": {"eps": 1e-8, "name": "adamw", "fused": True}}),
    (["train={method: 'Q: {x}'}"], {**NESTED["train"], "method": "Q: {x}"}),     # a text stays as written
    (["train={method: 2024}"], {**NESTED["train"], "method": "2024"}),
])
def test_a_section_given_whole_is_merged_key_by_key(overrides, want):
    """Hydra's rule: a mapping for a section sets the keys it names; the section's other keys stay."""
    assert apply_overrides(NESTED, overrides)["train"] == want


@pytest.mark.parametrize("override, message", [
    ("train={max_steps: abc}", "train.max_steps: expected an integer, got 'abc'"),
    ("train={opt: {eps: fast}}", "train.opt.eps: expected a number, got 'fast'"),
    ("train.opt={fused: on}", "train.opt.fused: expected true or false, got 'on'"),
    ("train={lr: .inf}", "train.lr: expected a finite number, got '.inf'"),
    ("train.lr={a: 1}", "train.lr: expected a number, got '{a: 1}'"),
])
def test_each_key_of_a_section_given_whole_is_checked(override, message):
    with pytest.raises(ConfigError) as exc:
        apply_overrides(NESTED, [override])
    assert str(exc.value) == message


@pytest.mark.parametrize("override, start", [
    ("train={stpes: 3}", "override 'train={stpes: 3}': unknown key 'train.stpes'"),
    ("train.opt={epsilon: 1}", "override 'train.opt={epsilon: 1}': unknown key 'train.opt.epsilon'"),
    ("train={}", "train: an empty section ('{}') sets nothing"),
    ("train.opt={}", "train.opt: an empty section ('{}') sets nothing"),
])
def test_a_typo_or_an_empty_mapping_for_a_section_is_one_line(override, start):
    with pytest.raises(ConfigError) as exc:
        apply_overrides(NESTED, [override])
    assert str(exc.value).startswith(start) and "\n" not in str(exc.value), str(exc.value)


def test_a_mapping_may_still_add_a_section_or_restate_an_empty_one():
    assert apply_overrides(NESTED, ["+extra={a: 1, b: [2]}"])["extra"] == {"a": 1, "b": [2]}
    assert apply_overrides(NESTED, ["hooks={}"]) == NESTED     # the file's own {} given back: nothing to do


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "Yes", "NO", "On", "OFF", "y", "n"])
def test_yaml_1_1_booleans_are_text_not_true_or_false(word):
    """YAML 1.2: only true/false are booleans. A true/false key refuses 'yes' with one line; a text
    key keeps it; a new key gets the text."""
    with pytest.raises(ConfigError) as exc:
        apply_overrides(NESTED, [f"train.bf16={word}"])
    assert str(exc.value) == f"train.bf16: expected true or false, got '{word}'"
    assert apply_overrides(NESTED, [f"train.method={word}"])["train"]["method"] == word
    assert apply_overrides(NESTED, [f"+train.flag={word}"])["train"]["flag"] == word
    assert apply_overrides(NESTED, [f"+train.flags=[{word}, true]"])["train"]["flags"] == [word, True]


@pytest.mark.parametrize("word, value", [("true", True), ("True", True), ("TRUE", True),
                                         ("false", False), ("False", False), ("FALSE", False)])
def test_true_and_false_are_booleans(word, value):
    assert apply_overrides(NESTED, [f"train.bf16={word}"])["train"]["bf16"] is value


def test_a_config_file_reads_yaml_1_1_booleans_as_text(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a: yes\nb: on\nc: Off\nd: [no, y, n]\ne: true\nf: FALSE\ng: {h: On}\n", encoding="utf-8")
    assert load_config(path) == {"a": "yes", "b": "on", "c": "Off", "d": ["no", "y", "n"], "e": True, "f": False,
                                 "g": {"h": "On"}}


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_key_given_twice_keeps_the_last_value_with_one_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="sft_playbook"):
        out = apply_overrides(NESTED, ["train.lr=1e-4", "train.max_steps=3", "train.lr=2e-4"])
    assert out["train"]["lr"] == 2e-4 and out["train"]["max_steps"] == 3
    assert _warnings(caplog) == ["override train.lr is given more than once (1e-4, then 2e-4): the last one is used"]


@pytest.mark.parametrize("overrides, key", [
    (["train={lr: 1e-3, max_steps: 4}", "train.lr=2e-3"], "train.lr"),
    (["train.opt.eps=1e-6", "train={opt: {eps: 1e-7}}"], "train.opt.eps"),
    (["+train.flag=a", "+train.flag=b"], "train.flag"),
])
def test_a_key_given_twice_through_a_section_is_seen_too(overrides, key, caplog):
    with caplog.at_level(logging.WARNING, logger="sft_playbook"):
        out = apply_overrides(NESTED, overrides)
    warned = _warnings(caplog)
    assert len(warned) == 1 and warned[0].startswith(f"override {key} is given more than once"), warned
    assert out == apply_overrides(NESTED, overrides[-1:]) or key == "train.lr"   # the last one wins
    if key == "train.lr":
        assert out["train"]["lr"] == 2e-3 and out["train"]["max_steps"] == 4


def test_distinct_keys_give_no_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="sft_playbook"):
        apply_overrides(NESTED, ["train.lr=1e-4", "train.opt.eps=1e-6", "train={max_steps: 2, opt: {name: sgd}}"])
    assert _warnings(caplog) == []


def test_the_entry_point_uses_the_last_value_and_says_so():
    proc = cli("run_sft.py", "--print-config", "train.max_steps=3", "train.max_steps=5", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^  max_steps: 5 ", proc.stdout, re.MULTILINE), proc.stdout
    warned = [ln for ln in proc.stderr.splitlines() if "more than once" in ln]
    assert len(warned) == 1 and "train.max_steps" in warned[0] and "(3, then 5)" in warned[0], proc.stderr


@pytest.mark.parametrize("value", [".inf", "-.inf", "+.inf", ".nan", ".NaN", ".Inf", "nan", "inf", "-Infinity",
                                   "1e999"])
def test_a_non_finite_number_is_refused(value):
    for key in ("train.lr", "timeout_s", "train.opt.eps"):     # a number; seconds (any number); nested
        with pytest.raises(ConfigError) as exc:
            apply_overrides(NESTED, [f"{key}={value}"])
        assert str(exc.value) == f"{key}: expected a finite number, got '{value}'"
    with pytest.raises(ConfigError, match="train.max_steps: expected an integer"):
        apply_overrides(NESTED, [f"train.max_steps={value}"])


@pytest.mark.parametrize("written", ["null", "~", "Null", "NULL"])
def test_null_for_a_text_key_is_no_value_not_the_text_null(written):
    """``dropped_dir=null`` means "off"; kept as the text 'null' it made a folder named null (one was
    committed to the repository root). A quoted 'null' is the text."""
    assert apply_overrides(NESTED, [f"train.method={written}"])["train"]["method"] is None
    assert apply_overrides(NESTED, [f"train={{method: {written}}}"])["train"]["method"] is None
    assert apply_overrides(NESTED, ["train.method='null'"])["train"]["method"] == "null"


# --- 14.2: bad bytes in every jsonl the product reads ---------------------------------------------

def bad_jsonl(path: Path, rows: list[dict], bad_at: int, column_text: str = '{"id": "x", "input": "caf') -> int:
    """Write rows as jsonl with a 0xff byte planted in line `bad_at` (1-based); returns its column."""
    lines = [json.dumps(r).encode() for r in rows]
    lines.insert(bad_at - 1, column_text.encode() + b"\xff" + b'"}')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")    # with a BOM too
    return len(column_text) + 1


def test_run_sft_evaluate_with_corrupt_predictions_is_one_line(tmp_path):
    rows = [{"id": f"r{i}", "reference": "module m; endmodule", "prediction": "x", "model": "base"} for i in range(3)]
    col = bad_jsonl(tmp_path / "run" / "predictions.jsonl", rows, 3)
    proc = cli("run_sft.py", "evaluate", f"output_dir={tmp_path}", "run_name=run", timeout=300)
    want = f"{tmp_path / 'run' / 'predictions.jsonl'}:3: not valid UTF-8 (byte 0xff at column {col})"
    assert proc.returncode != 0 and want in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_evaluate_predictions_with_corrupt_file_is_one_line(tmp_path):
    rows = [{"id": "a", "input": "x", "reference": "module m; endmodule", "prediction": "x"}]
    col = bad_jsonl(tmp_path / "p.jsonl", rows, 2)
    proc = cli("evaluate.py", "predictions", f"predictions.file={tmp_path / 'p.jsonl'}", f"out_dir={tmp_path / 'o'}")
    assert proc.returncode != 0 and f"p.jsonl:2: not valid UTF-8 (byte 0xff at column {col})" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_verilogeval_answers_with_corrupt_file_is_one_line(tmp_path):
    probs = REPO_ROOT / "tests" / "fixtures" / "verilog_eval" / "problems"
    if not probs.is_dir():
        pytest.skip("no VerilogEval fixture problems")
    rows = [{"problem": "Prob901_counter4", "answer": "module TopModule; endmodule"}]
    col = bad_jsonl(tmp_path / "answers.jsonl", rows, 1, '{"problem": "Prob901_counter4", "answer": "m')
    proc = cli("evaluate.py", "verilogeval", f"verilogeval.answers={tmp_path / 'answers.jsonl'}",
               f"verilogeval.problems_dir={probs}", f"out_dir={tmp_path / 'o'}")
    assert proc.returncode != 0 and f"answers.jsonl:1: not valid UTF-8 (byte 0xff at column {col})" in proc.stderr, \
        proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_sft_split_with_a_bad_byte_names_file_and_line(tmp_path):
    from sft_playbook.sft.data import DataError, read_split
    rows = [{"id": "a", "input": "describe", "output": "module m; endmodule"}] * 3
    col = bad_jsonl(tmp_path / "high_level" / "train.jsonl", rows, 4)
    with pytest.raises(DataError) as exc:
        read_split(tmp_path, "high_level", "train", None)
    assert str(exc.value) == f"{tmp_path / 'high_level' / 'train.jsonl'}:4: not valid UTF-8 (byte 0xff at column {col})"


def curate_args(tmp: Path, *extra: str, out: Path | None = None) -> list[str]:
    rows, _ = fx.records()
    if not (tmp / "src" / "data.jsonl").exists():
        fx.write_jsonl(tmp / "src" / "data.jsonl", rows)
    (tmp / "sources.jsonl").write_text(json.dumps({"name": "fx", "path": str(tmp / "src"), "levels": LEVELS_MAP}) + "\n")
    bench = fx.write_benchmark(tmp / "bench")
    return [f"sources={tmp / 'sources.jsonl'}", f"output_dir={out or tmp / 'out'}", f"dropped_dir={tmp / 'dropped'}",
            f"decontaminate.benchmark_dir={bench}", "engine.engine=local", "engine.partition_rows=4",
            "pii.backend=regex", *extra]


def test_curate_with_a_bad_byte_is_one_line_and_skip_counts_it(tmp_path):
    rows, _ = fx.records()
    fx.write_jsonl(tmp_path / "src" / "data.jsonl", rows)
    path = tmp_path / "src" / "data.jsonl"
    data = path.read_bytes().split(b"\n")
    data.insert(2, b'{"id": "bad", "code": "\xff"}')
    path.write_bytes(b"\n".join(data))
    proc = cli("curate_data.py", *curate_args(tmp_path))
    assert proc.returncode != 0 and f"{path}:3: not valid UTF-8 (byte 0xff at column 24)" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
    ok = cli("curate_data.py", *curate_args(tmp_path, "on_bad_line=skip"))
    assert ok.returncode == 0, ok.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "curation_report.json").read_text())
    assert report["bad_lines"]["skipped"] == 1 and "data.jsonl:3" in report["bad_lines"]["examples"][0]


# --- 14.3: full disk, write errors, outputs as a set ----------------------------------------------

def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _curate_main(argv):
    import curate_data
    return curate_data.main(argv)


def test_run_main_prints_one_line_and_debug_shows_the_traceback(caplog):
    def full(argv):
        raise output_error(OSError(errno.ENOSPC, "No space left on device"), "data/merged/high_level/train.jsonl")

    def torch_save(argv):
        raise OSError(errno.ENOSPC, "No space left on device", "results/run/checkpoints/step_000010/model.pt")

    def missing(argv):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "data/x.jsonl")

    def not_yet(argv):
        raise FileNotFoundError("results/run/predictions.jsonl not found: run the predict step first")

    with caplog.at_level("ERROR"):
        assert run_main(full, []) == 1
        assert run_main(torch_save, []) == 1
        assert run_main(missing, []) == 1
        assert run_main(not_yet, []) == 1
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == ["no space left on device writing data/merged/high_level/train.jsonl",
                    "no space left on device writing results/run/checkpoints/step_000010/model.pt",
                    "No such file or directory: data/x.jsonl",
                    "results/run/predictions.jsonl not found: run the predict step first"]
    with pytest.raises(OutputError):
        run_main(full, ["--debug"])


def test_curation_outputs_are_replaced_as_a_set_or_not_at_all(tmp_path, monkeypatch, caplog):
    """A write error in the middle of the second level leaves the previous set intact: no new
    high_level beside old detailed/block/report, no staging folder left behind."""
    args = curate_args(tmp_path)
    assert _curate_main(args) == 0
    out = tmp_path / "out"
    (out / "NOTES.txt").write_text("the user's own file\n")
    (out / "old_level").mkdir()
    (out / "old_level" / "train.jsonl").write_text("{}\n")
    before = digest(out)
    from sft_playbook.curate import pipeline
    real = pipeline.merge_split
    calls = []

    def failing(parts, ranks, target):
        calls.append(target)
        if len(calls) == 4:   # first split of the second level
            raise output_error(OSError(errno.ENOSPC, "No space left on device"), target)
        return real(parts, ranks, target)
    monkeypatch.setattr(pipeline, "merge_split", failing)
    logger = logging.getLogger("sft_playbook")   # it does not propagate to the root logger
    logger.addHandler(caplog.handler)
    try:
        assert run_main(_curate_main, [*args, "seed=7"]) == 1
    finally:
        logger.removeHandler(caplog.handler)
    assert digest(out) == before
    # no staging folder left (the run's work folder .out.work stays: resume=true continues from it;
    # .out.lock is the run lock's empty file, kept like any flock file)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out") and p.name not in (".out.work", ".out.lock")] == []
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == \
        [f"no space left on device writing {out / 'detailed' / 'train.jsonl'}"]
    monkeypatch.setattr(pipeline, "merge_split", real)
    assert _curate_main([*args, "seed=7"]) == 0
    assert (out / "NOTES.txt").read_text() == "the user's own file\n"   # carried over
    assert not (out / "old_level").exists()                             # a stale output is not
    assert digest(out)["high_level/train.jsonl"] != before["high_level/train.jsonl"]
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~_umask())


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def _mount_tmpfs(target: Path, size: int) -> bool:
    if os.geteuid() != 0:
        return False
    target.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
                          capture_output=True).returncode == 0


def test_curation_on_a_real_full_file_system(tmp_path):
    """A real small file system (tmpfs): the first run fits, the second (written beside the old
    set) does not. One line naming the path and the cause, exit 1, old set intact."""
    mnt = tmp_path / "mnt"
    if not _mount_tmpfs(mnt, 4 * 1024**2):
        pytest.skip("mounting a tmpfs needs root (the monkeypatched variant above runs everywhere)")
    try:
        args = curate_args(tmp_path, out=mnt / "out")
        first = cli("curate_data.py", *args)
        assert first.returncode == 0, first.stderr[-2000:]
        before = digest(mnt / "out")
        used = sum(os.path.getsize(mnt / "out" / k) for k in before)
        st = os.statvfs(mnt)
        in_use = (st.f_blocks - st.f_bfree) * st.f_frsize
        subprocess.run(["mount", "-o", f"remount,size={in_use + used // 2}", str(mnt)], check=True)
        second = cli("curate_data.py", *args, "seed=7")
        assert second.returncode == 1, second.stderr[-2000:]
        lines = [ln for ln in second.stderr.splitlines() if "no space left on device writing" in ln]
        # the output set, or the run's work folder beside it (part files written by the workers)
        assert len(lines) == 1 and re.search(rf"writing {re.escape(str(mnt))}/(out|\.out\.work)/\S+$", lines[0]), lines
        assert "Traceback" not in second.stderr
        assert digest(mnt / "out") == before
        # work folder: for resume; the run locks' empty files (.<folder>.lock), kept like any flock file
        assert sorted(p.name for p in mnt.iterdir() if p.name != ".out.work" and not p.name.endswith(".lock")) == ["out"]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_training_checks_free_space_for_a_checkpoint_before_step_1(sft_cfg, monkeypatch):
    from sft_playbook import io as sio
    from sft_playbook.sft import recipe as R
    monkeypatch.setattr(sio, "free_bytes", lambda path: 1000)
    rec = R.SFTRecipe(sft_cfg)
    trained = []
    monkeypatch.setattr(R.SFTRecipe, "train", lambda self: trained.append(1))
    try:
        with pytest.raises(OutputError, match=r"not enough space on device for one checkpoint in .*: needs about"):
            rec.setup()
    finally:
        rec.cleanup()
    assert not trained and not (Path(sft_cfg["output_dir"]) / sft_cfg["run_name"] / "checkpoints").exists()
