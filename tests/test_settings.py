"""Issue 19.1: one typed settings layer (sft_playbook/settings.py). Every section of every config
refuses a typo'd key, a value of the wrong type, a value out of range and a choice that does not
exist, with ONE line naming the field, before any work; the checks across fields (batch geometry,
split fractions, NeMo's layout, pass@k) too; --print-config shows each value with its help and
default. The container settings (stdlib, read before any install) the same way."""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from sft_playbook import container as C
from sft_playbook.config import ConfigError, _Loader, load_config
from sft_playbook.paths import REPO_ROOT
from sft_playbook.settings import (KINDS, CurateSettings, EvalSettings, SftSettings, as_section, build, describe,
                                   load_settings, replace, DataSettings, TRAIN_METHODS)

CONFIGS = {"curate": "configs/curate.yaml", "sft": "configs/sft.yaml", "eval": "configs/eval.yaml"}


def _error(kind: str, *overrides: str, cfg: dict | None = None) -> str:
    with pytest.raises(ConfigError) as exc:
        if cfg is None:
            load_settings(kind, REPO_ROOT / CONFIGS[kind], list(overrides))
        else:
            build(kind, cfg)
    msg = str(exc.value)
    assert "\n" not in msg, msg
    return msg


def _with_key(kind: str, dotted: str, value) -> dict:
    """The shipped config with one key set IN THE FILE's mapping (not an override: the override
    loader only knows the file's keys and types, the settings know them all)."""
    cfg = load_config(REPO_ROOT / CONFIGS[kind])
    node = cfg
    *parents, leaf = dotted.split(".")
    for p in parents:
        node = node[p]
    node[leaf] = value
    return cfg


def test_shipped_configs_build_and_keep_their_values():
    for kind, path in [*CONFIGS.items(), ("sft", "configs/sft_gpu.yaml")]:
        raw = load_config(REPO_ROOT / path)
        s = build(kind, raw)
        assert isinstance(s, KINDS[kind]) and s.source == raw and s.source is not raw
        for key, value in raw.items():          # every value of the file arrives as it was written
            if not isinstance(value, dict):
                assert getattr(s, key) == value, (path, key)
            else:
                for k, v in value.items():
                    if not isinstance(v, dict):
                        assert getattr(getattr(s, key), k) == v, (path, key, k)


def test_settings_are_frozen_and_typed():
    s = load_settings("sft", REPO_ROOT / "configs/sft.yaml", ["train.max_steps=1e3", "train.lr=3"])
    assert s.train.max_steps == 1000 and type(s.train.max_steps) is int and s.train.lr == 3.0
    with pytest.raises(ValidationError, match="frozen"):
        s.train.max_steps = 5
    assert s.train["max_steps"] == 1000 and dict(s.train)["lr"] == 3.0   # reads like the YAML mapping too


# -- typo'd keys, in every section ------------------------------------------------------------------
@pytest.mark.parametrize("kind,key", [
    ("sft", "train.max_stpes"), ("sft", "data.max_seq_length"), ("sft", "lora.rank"), ("sft", "predict.max_new_token"),
    ("sft", "evaluate.timeout"), ("sft", "evaluate.verilogeval.enable"), ("sft", "nemo.tensor_paralel"),
    ("sft", "wandb.projct"), ("sft", "run_nam"),
    ("curate", "rules.word_count.min_wrds"), ("curate", "fuzzy_dedup.treshold"), ("curate", "pii.kind"),
    ("curate", "engine.workers"), ("curate", "decontaminate.code_treshold"), ("curate", "split.tran"),
    ("eval", "predictions.timeout"), ("eval", "verilogeval.n_sample"), ("eval", "download.destination"),
])
def test_a_typo_in_the_file_is_refused_naming_the_key(kind, key):
    msg = _error(kind, cfg=_with_key(kind, key, 3))
    if key == "split.tran":     # the split needs exactly its three fractions
        assert msg.startswith("split: needs exactly the fractions train, validation and test"), msg
    else:
        assert msg.startswith(f"{key}: unknown key (known here: "), msg


# -- wrong types ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,key,value,want", [
    ("sft", "train.max_steps", "abc", "train.max_steps: expected an integer, got 'abc'"),
    ("sft", "train.max_steps", 1.5, "train.max_steps: expected an integer, got '1.5'"),
    ("sft", "train.compile", 1, "train.compile: expected true or false, got '1'"),
    ("sft", "train.lr", "fast", "train.lr: expected a number, got 'fast'"),
    ("sft", "data.packing", "yes", "data.packing: expected true or false, got 'yes'"),
    ("sft", "lora.target_modules", "q_proj", "lora.target_modules: expected a list, got 'q_proj'"),
    ("sft", "predict.stop", [["x"]], "predict.stop: expected a text, got '[x]'"),
    ("sft", "evaluate.verilogeval.k_list", ["a"], "evaluate.verilogeval.k_list: expected an integer, got 'a'"),
    ("sft", "nemo.devices", "two", "nemo.devices: expected an integer, got 'two'"),
    ("sft", "train", 3, "train: expected a section (key: value mapping), got '3'"),
    ("curate", "rules.compiles.timeout_s", "soon", "rules.compiles.timeout_s: expected a number, got 'soon'"),
    ("curate", "engine.n_workers", True, "engine.n_workers: expected an integer, got 'true'"),
    ("curate", "levels", "high_level", "levels: expected a list, got 'high_level'"),
    ("eval", "predictions.cycles", "many", "predictions.cycles: expected an integer, got 'many'"),
    ("eval", "verilogeval.include_system", "no", "verilogeval.include_system: expected true or false, got 'no'"),
])
def test_a_value_of_the_wrong_type_is_one_line(kind, key, value, want):
    assert _error(kind, cfg=_with_key(kind, key, value)) == want


# -- ranges ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,override,want", [
    ("sft", "train.max_steps=0", "train.max_steps: must be >= 1, got '0'"),
    ("sft", "train.lr=-1e-4", "train.lr: must be > 0"),
    ("sft", "train.min_lr_ratio=2.0", "train.min_lr_ratio: must be <= 1"),
    ("sft", "train.betas=[0.9, 1.5]", "train.betas: each must be in [0, 1)"),
    ("sft", "data.max_seq_len=0", "data.max_seq_len: must be >= 8"),
    ("sft", "lora.dropout=1.0", "lora.dropout: must be < 1"),
    ("sft", "predict.top_p=1.5", "predict.top_p: must be <= 1"),
    ("sft", "predict.batch_size=0", "predict.batch_size: must be >= 1"),
    ("sft", "evaluate.workers=0", "evaluate.workers: must be >= 1"),
    ("sft", "evaluate.verilogeval.shots=4", "evaluate.verilogeval.shots: must be <= 3"),
    ("sft", "nemo.tensor_parallel=0", "nemo.tensor_parallel: must be >= 1"),
    ("curate", "rules.alpha_share.min_share=1.5", "rules.alpha_share.min_share: must be <= 1"),
    ("curate", "engine.partition_rows=0", "engine.partition_rows: must be >= 1"),
    ("curate", "download.timeout_s=0", "download.timeout_s: must be > 0"),
    ("eval", "predictions.reset_prob=2.0", "predictions.reset_prob: must be <= 1"),
    ("eval", "verilogeval.n_samples=0", "verilogeval.n_samples: must be >= 1"),
    ("eval", "download.timeout_s=-1", "download.timeout_s: must be > 0"),
])
def test_a_value_out_of_range_is_one_line(kind, override, want):
    assert _error(kind, override).startswith(want)


# -- choices ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,override,want", [
    ("sft", "backend=magic", "backend: must be one of native, nemo; got 'magic'"),
    ("sft", "train.method=ful", "train.method: must be one of full, lora; got 'ful'"),
    ("sft", "train.method=[full, lora]", "train.method: must be one of full, lora; got '[full, lora]'"),
    ("sft", "train.attention=flash", "train.attention: must be one of sdpa, varlen; got 'flash'"),
    ("sft", "train.loss=fused", "train.loss: must be one of full, chunked; got 'fused'"),
    ("sft", "train.parallel=zero3", "train.parallel: must be one of ddp, fsdp; got 'zero3'"),
    ("sft", "train.precision=fp16", "train.precision: must be one of auto, fp32, bf16; got 'fp16'"),
    ("sft", "data.overlength=cut", "data.overlength: must be one of drop, truncate; got 'cut'"),
    ("sft", "data.pack_strategy=first_fit", "data.pack_strategy: must be one of next_fit, best_fit; got 'first_fit'"),
    ("sft", "data.prompt_forms=[header, prose]", "data.prompt_forms: must be one of header, ports, description, spec; got 'prose'"),
    ("sft", "predict.models=[base, tuned]", "predict.models: must be one of base, finetuned; got 'tuned'"),
    ("sft", "predict.split=dev", "predict.split: must be one of train, validation, test; got 'dev'"),
    ("sft", "nemo.predict_with=vllm", "nemo.predict_with: must be one of nemo, hf; got 'vllm'"),
    ("curate", "engine.engine=ray", "engine.engine: must be one of dask, local; got 'ray'"),
    ("curate", "on_bad_line=ignore", "on_bad_line: must be one of error, skip; got 'ignore'"),
    ("curate", "rules.compiles.unresolved_submodule=warn",
     "rules.compiles.unresolved_submodule: must be one of keep, drop; got 'warn'"),
    ("curate", "fuzzy_dedup.backend=cupy", "fuzzy_dedup.backend: must be one of auto, numpy, torch; got 'cupy'"),
])
def test_a_choice_that_does_not_exist_lists_the_choices(kind, override, want):
    assert _error(kind, override) == want


def test_choices_are_declared_once():
    """The trainer's and NeMo's checks read the same list (no second copy to drift)."""
    from sft_playbook.sft import nemo_plan, recipe
    src = Path(recipe.__file__).read_text() + Path(nemo_plan.__file__).read_text()
    assert "'full' or 'lora'" not in src and "must be full or lora" not in src
    assert TRAIN_METHODS == ("full", "lora")


# -- across fields ----------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides,world,ok", [
    (["train.micro_batch_size=4", "train.global_batch_size=8"], 1, True),     # accumulation 2
    (["train.micro_batch_size=4", "train.global_batch_size=6"], 1, False),
    (["train.micro_batch_size=2", "train.global_batch_size=8"], 4, True),     # 2 x 1 x 4
    (["train.micro_batch_size=4", "train.global_batch_size=8"], 4, False),    # 16 items a step at least
])
def test_global_batch_is_micro_times_accumulation_times_processes(overrides, world, ok, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", str(world))
    if ok:
        s = load_settings("sft", REPO_ROOT / "configs/sft.yaml", overrides)
        assert s.train.global_batch_size % (s.train.micro_batch_size * world) == 0
    else:
        msg = _error("sft", *overrides)
        assert msg.startswith("train.global_batch_size:") and f"x {world})" in msg, msg


@pytest.mark.parametrize("kind,overrides,want", [
    ("sft", ["train.stop_at_step=30"], "train.stop_at_step: 30 is past train.max_steps (20)"),
    ("sft", ["predict.n_samples=2"], "predict.n_samples > 1 needs predict.do_sample=true"),
    ("sft", ["predict.stop=[endmodule]"], "predict.stop: ['endmodule'] would cut"),
    ("sft", ["data.plain_template=no slot"], "data.plain_template: must contain {input}"),
    ("sft", ["evaluate.verilogeval.k_list=[1, 5]"], "evaluate.verilogeval.k_list: each k must be in 1..n_samples (1)"),
    ("sft", ["backend=nemo", "nemo.devices=3", "nemo.tensor_parallel=2"], "nemo.devices: devices x num_nodes (3) must"),
    ("sft", ["backend=nemo", "nemo.sequence_parallel=true"], "nemo.sequence_parallel needs tensor_parallel > 1"),
    ("curate", ["split.train=0.9"], "split: train + validation + test must be 1"),
    ("curate", ["fuzzy_dedup.bands=40"], "fuzzy_dedup: bands x rows (40x8) exceeds num_perm (160)"),
    ("curate", ["levels=[detailed, detailed]"], "levels: must be distinct level names"),
    ("eval", ["verilogeval.k_list=[1, 2]"], "verilogeval.k_list: each k must be in 1..n_samples (1)"),
    ("eval", ["predictions.max_cycles=50"], "predictions.max_cycles: 50 is below predictions.cycles (200)"),
])
def test_checks_across_fields(kind, overrides, want):
    assert _error(kind, *overrides).startswith(want)


def test_nemo_settings_of_a_native_config_are_not_checked_until_nemo_is_asked_for():
    s = load_settings("sft", REPO_ROOT / "configs/sft.yaml", ["nemo.devices=3", "nemo.tensor_parallel=2"])
    with pytest.raises(ValueError, match="multiple of tensor_parallel"):
        s.nemo_geometry()


def test_a_missing_key_takes_the_one_declared_default():
    cfg = load_config(REPO_ROOT / "configs/sft.yaml")
    del cfg["train"]["loss_chunk_size"], cfg["data"]["pack_strategy"]
    s = build("sft", cfg)
    assert s.train.loss_chunk_size == 2048 and s.data.pack_strategy == "next_fit"
    assert as_section(DataSettings, {"overlength": "truncate"}).prompt_forms == ["header"]
    with pytest.raises(ConfigError, match=r"^data\.overlength: must be one of"):
        as_section(DataSettings, {"overlength": "cut"}, "data")


def test_replace_checks_again():
    s = load_settings("eval", REPO_ROOT / "configs/eval.yaml")
    t = replace(s, **{"verilogeval.problems_dir": "/x"})
    assert t.verilogeval.problems_dir == "/x" and s.verilogeval.problems_dir == "data/verilogeval"
    with pytest.raises(ConfigError, match="verilogeval.n_samples"):
        replace(s, **{"verilogeval.n_samples": 0})


# -- --print-config ------------------------------------------------------------------------------------
def test_describe_shows_each_value_its_help_and_a_changed_default():
    for kind, cls in (("sft", SftSettings), ("curate", CurateSettings), ("eval", EvalSettings)):
        s = load_settings(kind, REPO_ROOT / CONFIGS[kind])
        text = describe(s)
        assert yaml.safe_load(text) == _plain(s.to_dict()), kind      # valid YAML of the same values
        for name, info in cls.model_fields.items():
            assert info.description, f"{kind}.{name} has no help text"
    text = describe(load_settings("sft", REPO_ROOT / "configs/sft.yaml", ["train.max_steps=50"]))
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("max_steps:"))
    assert "# optimizer steps" in line and "(default: 20)" in line
    assert "(default:" not in next(ln for ln in text.splitlines() if ln.strip().startswith("lr:"))


def _plain(d):
    return yaml.safe_load(yaml.safe_dump(d))


def test_every_field_has_help():
    def walk(cls, prefix=""):
        from pydantic import BaseModel
        for name, info in cls.model_fields.items():
            assert info.description, f"{prefix}{name}"
            ann = info.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{prefix}{name}.")
    for cls in KINDS.values():
        walk(cls)


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "WANDB_MODE": "disabled"}
    env.pop("WORLD_SIZE", None)
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("script,args,want", [
    ("run_sft.py", ["train.global_batch_size=6"], "train.global_batch_size: 6 is not micro_batch_size"),
    ("run_sft.py", ["train.method=ful"], "train.method: must be one of full, lora; got 'ful'"),
    ("curate_data.py", ["split.train=0.9"], "split: train + validation + test must be 1"),
    ("evaluate.py", ["verilogeval.shots=9"], "verilogeval.shots: must be <= 3"),
])
def test_entry_points_refuse_bad_settings_before_anything_even_print_config(script, args, want):
    r = _cli(script, "--print-config", *args)
    assert r.returncode == 2 and want in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]


def test_a_typo_in_a_config_file_stops_the_entry_point(tmp_path):
    text = (REPO_ROOT / "configs/sft.yaml").read_text().replace("  max_steps: 20", "  max_stpes: 20")
    (tmp_path / "sft.yaml").write_text(text)
    r = _cli("run_sft.py", "train", "--config", str(tmp_path / "sft.yaml"))
    assert r.returncode == 2 and "train.max_stpes: unknown key" in r.stderr, r.stderr[-2000:]
    assert "=== step" not in r.stderr


def test_print_config_has_help_and_defaults():
    r = _cli("run_sft.py", "--print-config", "train.max_steps=7")
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("max_steps:"))
    assert "max_steps: 7" in line and "# optimizer steps" in line and "(default: 20)" in line
    assert yaml.safe_load(r.stdout)["train"]["loss_chunk_size"] == 2048


# -- curation stages: named keyword arguments, never **config ---------------------------------------------
def test_curation_stages_refuse_an_unknown_keyword():
    from sft_playbook.curate.filters import AlphaShare, HasModule, LineCount, LongestLine, TopNGramShare, UrlShare, WordCount
    from sft_playbook.curate.hierarchy import ModuleIndex
    for make in (lambda: WordCount(["t"], min_words=1, max_words=2, min_wrds=3),
                 lambda: UrlShare(["t"], max_share=0.1, max_shar=1), lambda: TopNGramShare(["t"], n=2, max_share=0.1, m=1),
                 lambda: LineCount(min_lines=1, max_lines=2, max_line=3), lambda: LongestLine(max_char=3),
                 lambda: AlphaShare(min_shar=0.1), lambda: HasModule(x=1), lambda: ModuleIndex("code", max_defs=1)):
        with pytest.raises(TypeError):
            make()


# -- container (standard library: read before any install) ---------------------------------------------------
def test_container_settings_are_frozen_checked_and_described(tmp_path):
    s = C.load_settings(REPO_ROOT / "configs/container.yaml", {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.mode = "never"
    with pytest.raises(C.ContainerError, match=r"^mode: 'sometimes' is not one of auto, always, never"):
        C.Settings(mode="sometimes")
    f = tmp_path / "container.yaml"
    f.write_text("gpus: all\n")                   # a missing key takes the dataclass's default
    assert C.load_settings(f, {}).image == C.Settings().image
    text = C.describe(C.load_settings(f, {"SFT_PLAYBOOK_CONTAINER_MODE": "never"}))
    assert "mode: 'never'  # auto (container when" in text and "(default: 'auto')" in text
    assert all("  # " in ln for ln in text.splitlines())


def test_the_container_launcher_reads_token_env_with_the_one_parser(tmp_path):
    """token.env is parsed by secrets.parse_token_env for the launcher too: quotes removed, names
    only on the docker command line, and a malformed line is one error naming file:line (the
    launcher used to skip it silently, and run_sft.py then stopped on it inside the container)."""
    (tmp_path / "token.env").write_text('export HF_TOKEN="hf_quoted"\nWANDB_API_KEY=\n')
    assert C.token_names(tmp_path, {}) == ["HF_TOKEN"]
    assert C.child_env(tmp_path, {})["HF_TOKEN"] == "hf_quoted"
    (tmp_path / "token.env").write_text("HF_TOKEN=hf_x\nthis line is wrong\n")
    with pytest.raises(C.ContainerError, match=r"token.env:2: expected KEY=value"):
        C.token_names(tmp_path, {})


def test_an_override_may_set_a_declared_key_the_file_leaves_out(tmp_path):
    text = (REPO_ROOT / "configs/sft.yaml").read_text().replace("  loss_chunk_size: 2048          # rows per chunk for loss=chunked\n", "")
    assert "loss_chunk_size" not in text
    (tmp_path / "sft.yaml").write_text(text)
    s = load_settings("sft", tmp_path / "sft.yaml", ["train.loss_chunk_size=512"])
    assert s.train.loss_chunk_size == 512 and load_settings("sft", tmp_path / "sft.yaml").train.loss_chunk_size == 2048
    with pytest.raises(ConfigError, match="train.loss_chunk_size: expected an integer, got 'many'"):
        load_settings("sft", tmp_path / "sft.yaml", ["train.loss_chunk_size=many"])
    with pytest.raises(ConfigError, match="unknown key 'train.loss_chunk_sise'"):
        load_settings("sft", tmp_path / "sft.yaml", ["train.loss_chunk_sise=512"])
    # a stage's enabled switch is declared for every stage, though the shipped file never writes it
    s = load_settings("curate", REPO_ROOT / "configs/curate.yaml", ["rules.compiles.enabled=false"])
    assert s.rules.compiles.enabled is False
    r = _cli("run_sft.py", "--config", str(tmp_path / "sft.yaml"), "--print-config", "train.loss_chunk_size=512")
    assert r.returncode == 0 and yaml.safe_load(r.stdout)["train"]["loss_chunk_size"] == 512, r.stderr


# -- found by the adversarial review of the settings layer ---------------------------------------------
@pytest.mark.parametrize("typed", ["### Q {input} ### A", "Q: {input}", "Q {input} # A", "{input}", "[{input}]",
                                   "'Q {input}'"])
def test_a_text_override_is_kept_as_typed(typed):
    """Text that YAML would read as a comment, a mapping, a flow set or a list stays the text typed;
    a quoted text loses its quotes."""
    got = load_settings("sft", REPO_ROOT / CONFIGS["sft"], [f"data.plain_template={typed}"]).data.plain_template
    assert got == (typed[1:-1] if typed.startswith("'") else typed)


@pytest.mark.parametrize("written,value", [("5e-5", 5e-5), ("2E-5", 2e-5), ("1e-4", 1e-4), ("+3.0e-4", 3e-4)])
def test_scientific_notation_in_a_config_file_is_a_number(tmp_path, written, value):
    (tmp_path / "c.yaml").write_text(f"train:\n  lr: {written}\n")
    assert load_settings("sft", tmp_path / "c.yaml", []).train.lr == pytest.approx(value)


@pytest.mark.parametrize("data,want", [(b"\xff\xfetrain:\n", "c.yaml:1: not valid UTF-8 (byte 0xff"),
                                       (b"train:\n  lr: 0.1\n  x: caf\xe9\n", "c.yaml:3: not valid UTF-8"),
                                       (b"\xef\xbb\xbftrain:\n  lr: 0.5\n", None)])
def test_a_config_file_with_bad_bytes_is_one_line_and_a_bom_is_fine(tmp_path, data, want):
    (tmp_path / "c.yaml").write_bytes(data)
    if want is None:
        assert load_settings("sft", tmp_path / "c.yaml", []).train.lr == 0.5
    else:
        with pytest.raises(ConfigError, match=re.escape(want)):
            load_settings("sft", tmp_path / "c.yaml", [])


@pytest.mark.parametrize("name", ["", "   ", "/tmp", "../..", "a/b", ".", "..", "a\\b"])
def test_run_name_is_one_folder_inside_output_dir(name):
    assert _error("sft", f"run_name={name}").startswith("run_name: must be one folder name")


@pytest.mark.parametrize("kind,overrides,want", [
    ("curate", ["rules.word_count.min_words=2000"], "rules.word_count.min_words: 2000 is above max_words (1500)"),
    ("curate", ["rules.line_count.min_lines=5000"], "rules.line_count.min_lines: 5000 is above max_lines (1500)"),
])
def test_a_range_that_drops_every_row_is_refused(kind, overrides, want):
    assert _error(kind, *overrides).startswith(want)


def test_nemo_runs_are_checked_with_nemo_batch_sizes_not_the_native_ones():
    s = load_settings("sft", REPO_ROOT / CONFIGS["sft"], ["backend=nemo", "train.micro_batch_size=3",
                                                         "nemo.micro_batch_size=2", "nemo.global_batch_size=8"])
    assert s.nemo_geometry()["global_batch_size"] == 8
    assert _error("sft", "train.micro_batch_size=3").startswith("train.global_batch_size: 4 is not")


def test_the_run_folder_of_a_config_without_run_name_uses_the_one_default(tmp_path):
    from sft_playbook.paths import derived_run_name
    assert derived_run_name({}, {}) == SftSettings.model_fields["run_name"].default


# -- after the second review: sections given whole, YAML 1.1 booleans, non-finite numbers ------------------
def _file_with(tmp_path: Path, config: str, **raw: str) -> Path:
    """The shipped config ``config`` written to tmp_path with dotted keys set to raw YAML text
    (``_file_with(p, "configs/sft.yaml", **{"train.compile": "yes"})`` writes ``compile: yes``)."""
    cfg = load_config(REPO_ROOT / config)
    for i, dotted in enumerate(raw):
        node = cfg
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = f"@@{i}@@"
    text = yaml.safe_dump(cfg, sort_keys=False)
    for i, value in enumerate(raw.values()):
        text = text.replace(f"'@@{i}@@'", value).replace(f"@@{i}@@", value)
    path = tmp_path / Path(config).name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("config, override, section", [
    ("configs/sft_gpu.yaml", "train={lr: 3e-4}", "train"),           # sft_gpu's train differs from the defaults
    ("configs/sft_gpu.yaml", "train={lr: 3e-4, max_steps: 7}", "train"),
    ("configs/sft_gpu.yaml", "evaluate={verilogeval: {enabled: true}}", "evaluate"),
    ("configs/eval.yaml", "predictions={cycles: 300}", "predictions"),
])
def test_a_section_override_keeps_the_files_other_keys(config, override, section):
    """``train={lr: 3e-4}`` sets train.lr; every other train key keeps the FILE's value, not the
    default (Hydra merges a mapping given on the command line into the config node)."""
    kind = "eval" if "eval.yaml" in config else "sft"
    before = load_settings(kind, REPO_ROOT / config).to_dict()
    after = load_settings(kind, REPO_ROOT / config, [override]).to_dict()
    changed = yaml.load(override.split("=", 1)[1], Loader=_Loader)  # noqa: S506 - the config loader

    def merged(base, change):
        return {k: merged(v, change[k]) if isinstance(v, dict) and k in change else change.get(k, v) for k, v in base.items()}
    assert after[section] == merged(before[section], changed)
    assert {k: v for k, v in after.items() if k != section} == {k: v for k, v in before.items() if k != section}


def test_a_nested_section_override_keeps_the_files_values(tmp_path):
    path = _file_with(tmp_path, "configs/curate.yaml", **{"rules.word_count.max_words": "900",
                                                           "rules.word_count.min_words": "4"})
    s = load_settings("curate", path, ["rules.word_count={min_words: 3}"])
    assert (s.rules.word_count.min_words, s.rules.word_count.max_words) == (3, 900)
    s = load_settings("curate", path, ["rules={word_count: {max_words: 800}, url_share: {max_share: 0.2}}"])
    assert (s.rules.word_count.min_words, s.rules.word_count.max_words, s.rules.url_share.max_share) == (4, 800, 0.2)
    assert _error("curate", "rules={word_count: {max_wrds: 3}}").startswith(
        "override 'rules={word_count: {max_wrds: 3}}': unknown key 'rules.word_count.max_wrds'")
    assert _error("curate", "split={}").startswith("split: an empty section ('{}') sets nothing")


def _value(settings, dotted: str):
    for part in dotted.split("."):
        settings = getattr(settings, part)
    return settings


@pytest.mark.parametrize("config, key, word", [
    ("configs/sft.yaml", "train.compile", "yes"), ("configs/sft.yaml", "data.packing", "on"),
    ("configs/sft.yaml", "wandb.enabled", "No"), ("configs/curate.yaml", "download.offline", "off"),
    ("configs/curate.yaml", "checkpoint", "Yes"), ("configs/eval.yaml", "verilogeval.include_system", "ON"),
])
def test_a_yaml_1_1_boolean_in_a_file_is_refused_for_a_true_false_key(tmp_path, config, key, word):
    kind = Path(config).stem
    with pytest.raises(ConfigError) as exc:
        load_settings(kind, _file_with(tmp_path, config, **{key: word}))
    assert str(exc.value) == f"{key}: expected true or false, got '{word}'"
    assert _error(kind, f"{key}={word}") == f"{key}: expected true or false, got '{word}'"   # and as an override
    assert _value(load_settings(kind, _file_with(tmp_path, config, **{key: "True"})), key) is True


@pytest.mark.parametrize("config, key, word", [
    ("configs/sft.yaml", "wandb.project", "on"), ("configs/sft.yaml", "nemo.fusions", "off"),
    ("configs/sft.yaml", "nemo.fusions", "on"), ("configs/curate.yaml", "sample_name", "yes"),
    ("configs/sft.yaml", "run_name", "no"), ("configs/eval.yaml", "download.ref", "On"),
])
def test_a_text_key_given_on_or_yes_keeps_the_text(tmp_path, config, key, word):
    kind = Path(config).stem
    s = load_settings(kind, _file_with(tmp_path, config, **{key: word}))
    assert _value(s, key) == word
    assert _value(load_settings(kind, REPO_ROOT / config, [f"{key}={word}"]), key) == word


@pytest.mark.parametrize("config, key, raw, shown", [
    ("configs/sft.yaml", "train.lr", ".inf", ".inf"), ("configs/sft.yaml", "train.lr", "-.Inf", "-.inf"),
    ("configs/sft.yaml", "train.weight_decay", ".nan", ".nan"), ("configs/sft.yaml", "train.lr", "1e999", ".inf"),
    ("configs/sft.yaml", "train.lr", "nan", "nan"), ("configs/sft.yaml", "train.betas", "[0.9, .nan]", ".nan"),
    ("configs/curate.yaml", "split.train", ".nan", ".nan"), ("configs/eval.yaml", "predictions.timeout_s", ".inf", ".inf"),
])
def test_a_non_finite_number_in_a_file_is_refused(tmp_path, config, key, raw, shown):
    kind = Path(config).stem
    with pytest.raises(ConfigError) as exc:
        load_settings(kind, _file_with(tmp_path, config, **{key: raw}))
    assert str(exc.value) == f"{key}: expected a finite number, got '{shown}'"


def _number_fields(model: type, prefix: str = ""):
    """Dotted names of every float (or list-of-float) setting of a settings class, recursively."""
    import typing
    from sft_playbook.settings import Section
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, Section):
            yield from _number_fields(ann, f"{prefix}{name}.")
            continue
        args = typing.get_args(ann)
        if typing.get_origin(ann) is list:
            if args and args[0] is float:
                yield f"{prefix}{name}", [float("nan")] * 2
        elif ann is float or float in args:
            yield f"{prefix}{name}", float("inf")


@pytest.mark.parametrize("kind", list(KINDS))
def test_no_number_setting_takes_inf_or_nan(kind):
    """allow_inf_nan=False for every section: each float setting of every config refuses .inf / .nan."""
    fields = list(_number_fields(KINDS[kind]))
    assert len(fields) >= 4, fields
    for dotted, value in fields:
        msg = _error(kind, cfg=_with_key(kind, dotted, value))
        assert msg.startswith(f"{dotted}: expected a finite number, got "), (dotted, msg)


# -- the SFT recipe reads the typed settings by attribute ----------------------------------------------
def test_the_recipe_reads_settings_by_attribute_not_through_the_mapping_view():
    """No ``cfg["train"]``, ``tcfg["lr"]``, ``self.dcfg["packing"]`` in sft/recipe.py: a typo there
    is an AttributeError at import-time checks (ruff, IDEs), a typed value, one place to look. Plain
    dicts it reads (a checkpoint's state, the settings' source mapping) are not settings."""
    import ast
    tree = ast.parse((REPO_ROOT / "sft_playbook/sft/recipe.py").read_text(encoding="utf-8"))
    settings_names = {"cfg", "tcfg", "dcfg", "lcfg"}
    bad = []
    for node in ast.walk(tree):
        target = None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            target = node.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            target = node.func.value
        if target is None:
            continue
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
        inner = target.value if isinstance(target, ast.Subscript) else None   # cfg["lora"]["merge"]
        if name in settings_names or (inner is not None and getattr(inner, "id", getattr(inner, "attr", None)) in settings_names):
            bad.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert bad == [], bad


def test_lr_at_takes_the_train_settings_and_checks_a_mapping():
    from sft_playbook.settings import TrainSettings
    from sft_playbook.sft.recipe import lr_at
    t = {"lr": 1.0, "warmup_steps": 2, "max_steps": 12, "min_lr_ratio": 0.1}
    typed = TrainSettings(**t)
    assert [lr_at(s, typed) for s in range(14)] == [lr_at(s, t) for s in range(14)]
    assert lr_at(0, typed) == 0.5 and lr_at(12, typed) == pytest.approx(0.1)
    with pytest.raises(ConfigError, match=r"^train\.lr: expected a number, got 'fast'$"):
        lr_at(0, {**t, "lr": "fast"})
    with pytest.raises(ConfigError, match=r"^train\.warmup_stepz: unknown key"):
        lr_at(0, {**t, "warmup_stepz": 2})


@pytest.mark.parametrize("kind, key, written", [
    ("curate", "dropped_dir", "null"), ("curate", "sample_license", "~"), ("sft", "data.system_prompt", "null"),
    ("sft", "predict.cache_implementation", "null"), ("eval", "predictions.model", "NULL"),
])
def test_null_override_of_a_text_setting_is_none(kind, key, written):
    """null (unquoted) for a text setting is "none" (dropped_dir=null: no dropped rows written; system_prompt=null:
    no system message), never the text 'null'."""
    assert _value(load_settings(kind, REPO_ROOT / CONFIGS[kind], [f"{key}={written}"]), key) is None
    assert _value(load_settings(kind, REPO_ROOT / CONFIGS[kind], [f"{key}='null'"]), key) == "null"
