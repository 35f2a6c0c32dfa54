"""NeMo backend. Without NeMo: settings from our YAML, the derived Llama config, the dataset folder
NeMo reads, the staged HF folder, the worker commands, the weight comparison. With NeMo
installed (nemo-toolkit 2.7.3 set, see README): a real conversion of a tiny random Llama with
random RMSNorm weights, compared tensor by tensor with the Hugging Face weights."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sft_playbook.config import load_config
from sft_playbook.sft import nemo_plan as P
from tiny_models import make_tiny_llama

REPO = Path(__file__).resolve().parent.parent


def _cfg(*overrides):
    return load_config(REPO / "configs" / "sft.yaml", ["backend=nemo", *overrides])


def test_settings_follow_the_shared_config():
    cfg = _cfg()
    s = P.nemo_settings(cfg)
    assert (s["seq_length"], s["micro_batch_size"], s["global_batch_size"], s["lr"], s["max_steps"]) == (
        cfg["data"]["max_seq_len"], cfg["train"]["micro_batch_size"], cfg["train"]["global_batch_size"],
        float(cfg["train"]["lr"]), cfg["train"]["max_steps"])
    gpu = P.nemo_settings(load_config(REPO / "configs" / "sft_gpu.yaml", ["backend=nemo"]))
    # the GPU profile (lengths from the real slice, docs/benchmarks.md "The real job"): seq 2048,
    # micro 8, global 8, lr 2e-4, 433 steps (three epochs of header+spec+description, "Data size, format, epochs"), bf16; NeMo: TP=2 on 2 GPUs (the course's layout)
    assert (gpu["seq_length"], gpu["micro_batch_size"], gpu["global_batch_size"], gpu["lr"], gpu["max_steps"],
            gpu["precision"], gpu["tp"], gpu["devices"]) == (1024, 2, 8, 2e-4, 433, "bf16", 2, 2)
    assert gpu["data_parallel"] == 1 and gpu["world_size"] == 2
    assert gpu["min_lr"] == pytest.approx(2e-4 * float(_cfg()["train"]["min_lr_ratio"]))


@pytest.mark.parametrize("overrides,match", [
    (["nemo.devices=3", "nemo.tensor_parallel=2"], "multiple of tensor_parallel"),
    (["nemo.devices=4", "nemo.tensor_parallel=1", "train.micro_batch_size=2", "train.global_batch_size=4"], "global_batch_size"),
    (["nemo.predict_with=vllm"], "predict_with"),
    (["nemo.sequence_parallel=true"], "sequence_parallel"),
    (["nemo.fusions=maybe"], "fusions"),
    (["predict.stop=[endmodule]"], "predict.stop"),
])
def test_bad_settings_are_named(overrides, match):
    with pytest.raises(P.NemoConfigError, match=match):
        P.nemo_settings(_cfg(*overrides))


def test_missing_section_is_named():
    cfg = _cfg()
    del cfg["nemo"]
    with pytest.raises(P.NemoConfigError, match="'nemo:' section"):
        P.nemo_settings(cfg)


LLAMA3_8B = {"model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096, "intermediate_size": 14336,
             "num_attention_heads": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
             "max_position_embeddings": 8192, "vocab_size": 128256, "tie_word_embeddings": False}
SMOLLM2_135M = {"model_type": "llama", "num_hidden_layers": 30, "hidden_size": 576, "intermediate_size": 1536,
                "num_attention_heads": 9, "num_key_value_heads": 3, "rms_norm_eps": 1e-5, "rope_theta": 100000,
                "max_position_embeddings": 8192, "vocab_size": 49152, "tie_word_embeddings": True}
CODELLAMA_7B = {"model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096, "intermediate_size": 11008,
                "num_attention_heads": 32, "num_key_value_heads": 32, "rms_norm_eps": 1e-5, "rope_theta": 1000000,
                "max_position_embeddings": 16384, "vocab_size": 32016}


def test_llama_family_configs_are_derived_not_hard_coded():
    a = P.llama_config_kwargs(LLAMA3_8B, fusions=True)
    assert (a["num_layers"], a["num_query_groups"], a["kv_channels"], a["ffn_hidden_size"]) == (32, 8, 128, 14336)
    assert a["rotary_base"] == 500000.0 and not a["share_embeddings_and_output_weights"]
    assert "apply_rope_fusion" not in a  # NeMo's defaults stay when TransformerEngine is there
    b = P.llama_config_kwargs(SMOLLM2_135M, fusions=False)
    assert (b["num_layers"], b["hidden_size"], b["num_attention_heads"], b["num_query_groups"], b["kv_channels"]) == (30, 576, 9, 3, 64)
    assert b["share_embeddings_and_output_weights"] and b["make_vocab_size_divisible_by"] == 128
    assert b["apply_rope_fusion"] is False and b["gradient_accumulation_fusion"] is False and b["persist_layer_norm"] is False
    c = P.llama_config_kwargs(CODELLAMA_7B, fusions=True)
    assert c["num_query_groups"] == 32 and c["make_vocab_size_divisible_by"] == 16 and c["rotary_base"] == 1e6
    d = P.llama_config_kwargs({**LLAMA3_8B, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, fusions=True)
    assert d["rope_scaling_factor"] == 8.0
    with pytest.raises(P.NemoConfigError, match="model_type 'gpt2'"):
        P.llama_config_kwargs({"model_type": "gpt2"}, fusions=True)
    with pytest.raises(P.NemoConfigError, match="fusions=on needs TransformerEngine"):
        P.fusions_enabled("on", have_te=False)
    assert P.fusions_enabled("auto", have_te=False) is False and P.fusions_enabled("auto", have_te=True) is True


def test_parallel_sizes_must_fit_the_model():
    s = P.nemo_settings(load_config(REPO / "configs" / "sft_gpu.yaml", ["backend=nemo"]))
    P.check_parallel_fits(LLAMA3_8B, s)
    with pytest.raises(P.NemoConfigError, match=r"tensor_parallel=2 must divide the attention heads \(9\)"):
        P.check_parallel_fits(SMOLLM2_135M, s)  # SmolLM2-135M has 9 heads: TP=1 only


def test_dataset_root_has_the_files_nemo_reads(tmp_path):
    rows = {sp: [{"id": f"{sp}-{i}", "input": f"describe {i}", "output": f"module m{i}; endmodule"} for i in range(n)]
            for sp, n in (("train", 3), ("validation", 2), ("test", 1))}
    out = tmp_path / "nemo_data"
    (out).mkdir()
    (out / "training.jsonl.idx.npy").write_text("stale index")
    counts = P.prepare_dataset_root(rows, lambda t: f"<user>{t}</user>", out)
    assert counts == {"training.jsonl": 3, "validation.jsonl": 2, "test.jsonl": 1}
    assert sorted(p.name for p in out.iterdir()) == ["test.jsonl", "training.jsonl", "validation.jsonl"]
    first = json.loads((out / "training.jsonl").read_text().splitlines()[0])
    assert first == {"input": "<user>describe 0</user>", "output": "module m0; endmodule", "id": "train-0"}


def test_staged_folder_reads_in_transformers_4_and_leaves_the_input_alone(tmp_path):
    src = tmp_path / "model"
    src.mkdir()
    (src / "config.json").write_text('{"model_type": "llama"}')
    (src / "model.safetensors").write_bytes(b"weights")
    original = {"tokenizer_class": "TokenizersBackend", "backend": "tokenizers", "eos_token": "<e>"}
    (src / "tokenizer_config.json").write_text(json.dumps(original))
    staged = P.stage_hf_folder(src, tmp_path / "staged")
    tc = json.loads((staged / "tokenizer_config.json").read_text())
    assert tc["tokenizer_class"] == "PreTrainedTokenizerFast" and "backend" not in tc and tc["eos_token"] == "<e>"
    assert (staged / "model.safetensors").is_symlink() and (staged / "model.safetensors").read_bytes() == b"weights"
    assert json.loads((src / "tokenizer_config.json").read_text()) == original
    key1 = P.model_key(src)
    (src / "model.safetensors").write_bytes(b"other weights")
    assert P.model_key(src) != key1  # a changed model is converted again


def test_worker_commands():
    assert P.worker_command("train", Path("/j.json"), 2, python="py") == [
        "py", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
        "-m", "sft_playbook.sft.nemo_worker", "train", "/j.json"]
    assert P.worker_command("import", Path("/j.json"), 2, python="py") == ["py", "-m", "sft_playbook.sft.nemo_worker", "import", "/j.json"]
    assert P.worker_command("predict", Path("/j.json"), 1, python="py")[1:3] == ["-m", "sft_playbook.sft.nemo_worker"]


@pytest.fixture
def tiny_hf(tmp_path, smollm2_tokenizer_dir):
    """A tiny random Llama with random RMSNorm weights on the SmolLM2 tokenizer (conftest: from
    .cache/models/smollm2-135m-instruct or the packaged GGUF)."""
    return make_tiny_llama(tmp_path / "tiny", smollm2_tokenizer_dir)


def test_weight_comparison_catches_the_rmsnorm_trap(tiny_hf):
    """The expected Megatron layout, built from HF tensors, compared with a 'conversion' whose
    norms are 1.0: the comparison must name them. (Layout of the real conversion: next test.)"""
    import torch
    from safetensors.torch import load_file

    hf_dir = tiny_hf
    hf = json.loads((hf_dir / "config.json").read_text())
    expected = P.expected_nemo_weights(load_file(str(hf_dir / "model.safetensors")), hf)
    assert expected["decoder.layers.1.self_attention.linear_qkv.weight"].shape == (64 + 2 * 2 * 16, 64)
    good = {k: v.clone() for k, v in expected.items()}
    assert P.compare_weights(expected, good) == []
    bad = dict(good)
    bad["decoder.layers.0.mlp.linear_fc1.layer_norm_weight"] = torch.ones(64)
    problems = P.compare_weights(expected, bad)
    assert len(problems) == 1 and "RMSNorm trap" in problems[0]


def _nemo_python():
    """An interpreter with NeMo: this one, or NEMO_PYTHON (e.g. a separate venv, see README)."""
    candidate = os.environ.get("NEMO_PYTHON", sys.executable)
    probe = subprocess.run([candidate, "-c", "from nemo.collections import llm"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"NeMo 2 is not installed for {candidate} (set NEMO_PYTHON to an interpreter that has it; "
                    "README 'NeMo path'): " + (probe.stderr.strip().splitlines() or ["?"])[-1][:200])
    return candidate


@pytest.mark.slow
def test_real_conversion_matches_hf_weights(tmp_path, tiny_hf):
    """nemo_worker import + verify on a tiny random Llama with random RMSNorm weights, then export
    back to Hugging Face format and compare with the original weights (CPU is enough)."""
    py = _nemo_python()
    hf_dir = tiny_hf
    cfg = _cfg(f"output_dir={tmp_path / 'results'}", "run_name=tiny", f"nemo.cache_dir={tmp_path / 'cache'}",
               "train.precision=bf16")  # the GPU default: exercises the per-module dtype cast too
    from sft_playbook.sft.nemo_backend import make_job, write_job

    job = make_job(cfg, P.nemo_settings(cfg), hf_dir)
    P.stage_hf_folder(hf_dir, Path(job["paths"]["staged_hf"]))
    job_file = write_job(job)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    logs = {}
    for phase in ("import", "verify"):
        r = logs[phase] = subprocess.run([py, "-m", "sft_playbook.sft.nemo_worker", phase, str(job_file)], capture_output=True,
                           text=True, cwd=REPO, env=env, timeout=900)
        assert r.returncode == 0, f"{phase} failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    assert "match the Hugging Face weights" in r.stderr
    te = subprocess.run([py, "-c", "import transformer_engine"], capture_output=True).returncode == 0
    if not te:  # the trap was met and fixed: 2 layers x 2 RMSNorm weights copied by the converter
        assert "copied 4 of them" in logs["import"].stderr
    # and back: export_ckpt (our exporter: TE-less norm names, dtype cast) must give the HF weights again
    import torch
    from safetensors.torch import load_file

    job.update(export_source=job["paths"]["base_ckpt"], export_target=str(tmp_path / "exported"))
    write_job(job)
    r = subprocess.run([py, "-m", "sft_playbook.sft.nemo_worker", "export", str(job_file)], capture_output=True,
                       text=True, cwd=REPO, env=env, timeout=900)
    assert r.returncode == 0, f"export failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    assert "export check: all" in r.stderr
    if not te:
        assert "exported 4 separate RMSNorm weights" in r.stderr
    original, exported = load_file(str(hf_dir / "model.safetensors")), load_file(str(tmp_path / "exported" / "model.safetensors"))
    assert set(exported) == set(original)
    for key, want in original.items():  # bf16 round trip of random fp32 weights
        assert torch.allclose(exported[key].float(), want, atol=1e-2, rtol=1e-2), key


@pytest.mark.slow
def test_real_train_context_is_written_and_reads_back(tmp_path, tiny_hf):
    """The training objects exactly as nemo_worker.phase_train builds them (no training: that needs
    CUDA), their TrainerContext dumped as NeMo's ModelCheckpoint does for every checkpoint, then the
    model read back as export_ckpt / generate do. NeMo writes context/io.json with fiddle and only
    warns when that fails, leaving the file empty; that broke export and generate on H200 (our
    metrics callback, a function-local class, was in the Trainer's recorded init arguments)."""
    py = _nemo_python()
    cfg = _cfg(f"output_dir={tmp_path / 'results'}", "run_name=tiny", f"nemo.cache_dir={tmp_path / 'cache'}",
               "train.precision=bf16", "wandb.enabled=false")
    from sft_playbook.sft.nemo_backend import make_job, write_job

    job = make_job(cfg, P.nemo_settings(cfg), tiny_hf)
    P.stage_hf_folder(tiny_hf, Path(job["paths"]["staged_hf"]))
    job_file = write_job(job)
    code = ("import json, sys; from sft_playbook.sft.nemo_worker import check_train_context; "
            "print('CHECKED', json.dumps(check_train_context(json.load(open(sys.argv[1])), sys.argv[2])))")
    r = subprocess.run([py, "-c", code, str(job_file), str(tmp_path / "ckpt")], capture_output=True, text=True,
                       cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=900)
    assert r.returncode == 0, f"context check failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    got = json.loads(r.stdout.split("CHECKED", 1)[1])
    assert got["model"] == "LlamaModel" and got["num_layers"] == 2 and got["io_json_bytes"] > 1000
    io_json = json.loads((tmp_path / "ckpt" / "context" / "io.json").read_text())
    assert "MetricsCallback" not in json.dumps(io_json)  # attached after the Trainer's init, never recorded


def test_context_problem_names_an_empty_io_json(tmp_path):
    """What NeMo leaves behind when the context does not serialise: named at train time instead of
    a JSONDecodeError in export / generate."""
    from sft_playbook.sft.nemo_worker import context_problem

    ctx = tmp_path / "ckpt" / "context"
    assert "missing" in context_problem(tmp_path / "ckpt")
    ctx.mkdir(parents=True)
    (ctx / "io.json").write_text("")
    assert "empty" in context_problem(tmp_path / "ckpt")
    (ctx / "io.json").write_text('{"root": ')
    assert "not valid JSON" in context_problem(tmp_path / "ckpt")
    (ctx / "io.json").write_text('{"root": {}}')
    assert context_problem(tmp_path / "ckpt") is None


def test_backend_without_nemo_says_what_to_do(monkeypatch, caplog):
    """backend=nemo where NeMo is missing: exit code 2 and a message naming the two ways out."""
    from sft_playbook.sft import nemo_backend

    monkeypatch.setattr(nemo_backend, "nemo_available", lambda: (False, "no module nemo.collections.llm"))
    with caplog.at_level("ERROR"):
        assert nemo_backend.main(_cfg(), ["train"]) == 2
    assert "--container" in caplog.text and ".[nemo]" in caplog.text


def test_recipe_dispatches_to_the_nemo_backend(monkeypatch):
    from sft_playbook.sft import nemo_backend, recipe

    seen = {}
    monkeypatch.setattr(nemo_backend, "main", lambda cfg, steps, args=None: seen.setdefault("steps", steps) and 0)
    assert recipe.main(_cfg(), ["convert", "train"]) == 0 and seen["steps"] == ["convert", "train"]


# ----- NumPy 2 and megatron-core 0.15.3 (issue: TP=2 checkpoint save died on np.product) ---------

def test_numpy_alias_is_restored_only_where_missing():
    """NumPy 2 lacks np.product: the shim adds it as np.prod; a NumPy that still has it (1.x, as in
    the NeMo container) keeps its own object; a second call adds nothing."""
    import types

    import numpy as np

    from sft_playbook.sft.nemo_compat import restore_numpy_aliases

    numpy2 = types.ModuleType("numpy2")
    numpy2.prod = np.prod
    assert restore_numpy_aliases(numpy2) == ["product"] and numpy2.product is np.prod
    assert restore_numpy_aliases(numpy2) == []
    own_product = object()
    numpy1 = types.ModuleType("numpy1")
    numpy1.prod, numpy1.product = np.prod, own_product
    assert restore_numpy_aliases(numpy1) == [] and numpy1.product is own_product


def test_worker_process_has_np_product_before_megatron(tmp_path):
    """A NeMo phase process (python -m sft_playbook.sft.nemo_worker) gets np.product before anything
    imports megatron-core, and the call megatron's _shard_size makes (np.product(local_shape)) works
    with this environment's NumPy (2.x here: without the shim it raises AttributeError)."""
    code = ("import numpy as np, sys; before = hasattr(np, 'product'); import sft_playbook.sft.nemo_worker as w; "
            "print(before, np.__version__.split('.')[0], int(np.product((4, 6))), w.NUMPY_ALIASES_ADDED)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    before, major, prod, added = r.stdout.split(" ", 3)
    assert prod == "24"
    if int(major) >= 2:
        assert before == "False" and "product" in added


def _megatron_python():
    """An interpreter that imports megatron.core's distributed checkpointing: NEMO_PYTHON if set
    (README 'Native NeMo'), else this one; skip when neither has megatron-core."""
    candidate = os.environ.get("NEMO_PYTHON", sys.executable)
    probe = subprocess.run([candidate, "-c", "import megatron.core.dist_checkpointing.exchange_utils"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"megatron-core is not installed for {candidate} (set NEMO_PYTHON; README 'Native NeMo'): "
                    + (probe.stderr.strip().splitlines() or ["?"])[-1][:200])
    return candidate


MEGATRON_NP_PRODUCT_CALLS = r'''
import json, sys
import numpy as np
import torch
from megatron.core.dist_checkpointing import exchange_utils, validation
from megatron.core.dist_checkpointing.core import CheckpointingException
from megatron.core.dist_checkpointing.mapping import ShardedTensor

def calls():
    """The three megatron-core 0.15.3 functions that call np.product, on a TP=2-like layout: rank 0's
    half (4 x 6, bf16) of an 8 x 6 weight, and that half flattened into two ranges."""
    half = ShardedTensor.from_rank_offsets("w", torch.zeros(4, 6, dtype=torch.bfloat16), (0, 0, 2))
    size = exchange_utils._shard_size(half)                                    # exchange_utils.py:66
    flat = [ShardedTensor.from_rank_offsets_flat("w", torch.zeros(n), (4, 6), (0, 0, 2), flattened_range=slice(a, a + n))
            for a, n in ((0, 10), (10, 14))]
    coords = [c.tolist() for c in flat[1].local_coordinates()]                  # mapping.py:219
    validation._validate_sharding_for_key_flattened(flat)                       # validation.py:522
    try:
        validation._validate_sharding_for_key_flattened(flat[:1])  # 10 of 24 elements: must be refused
        gap = "accepted"
    except CheckpointingException:
        gap = "refused"
    return {"size": int(size), "coords": coords, "gap": gap}

out = {"numpy": np.__version__}
try:
    out["without"] = calls()
except AttributeError as e:
    out["without"] = "AttributeError: " + str(e)
from sft_playbook.sft.nemo_compat import restore_numpy_aliases
out["added"] = restore_numpy_aliases()
out["with"] = calls()
print("RESULT", json.dumps(out))
'''


def test_megatron_checkpoint_functions_run_with_this_numpy():
    """megatron-core 0.15.3's own np.product callers (shard size, flattened-range validation, local
    coordinates) on CPU: with NumPy 2 they raise AttributeError unshimmed; after
    restore_numpy_aliases they give the right numbers and still refuse ranges that leave a gap."""
    import numpy as np

    py = _megatron_python()
    r = subprocess.run([py, "-c", MEGATRON_NP_PRODUCT_CALLS], capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout.split("RESULT", 1)[1])
    if int(out["numpy"].split(".")[0]) >= 2:
        assert out["without"] == "AttributeError: module 'numpy' has no attribute 'product'"
        assert out["added"] == ["product"]
    mask = np.zeros(24, dtype=bool)
    mask[10:24] = True
    want_coords = [c.tolist() for c in np.nonzero(mask.reshape(4, 6))]
    assert out["with"] == {"size": 4 * 6 * 2, "coords": want_coords, "gap": "refused"}


# ----- timing the course's job (bench/nemo_gpu_proof.sh --time SHAPE) ---------------------------

def test_model_shapes_parse_and_count_parameters():
    assert P.parse_shape("llama2-7b") == {"layers": 32, "hidden": 4096, "heads": 32, "kv_heads": 32, "ffn": 11008}
    assert P.parse_shape("layers=2, hidden=64,heads=4,ffn=128") == {"layers": 2, "hidden": 64, "heads": 4, "kv_heads": 4, "ffn": 128}
    for bad, match in (("layers=2,hidden=64", "lacks heads, kv_heads, ffn"), ("layers=two,hidden=64,heads=4,ffn=8", "whole number"),
                       ("depth=2", "not KEY=N"), ("layers=2,hidden=64,heads=5,ffn=8", "heads must divide hidden"),
                       ("layers=0,hidden=64,heads=4,ffn=8", ">= 1")):
        with pytest.raises(P.NemoConfigError, match=match):
            P.parse_shape(bad)
    # Llama-2-7B with its own 32,000 vocabulary: 6,738,415,616 parameters (the published count)
    llama2 = {"hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 11008, "vocab_size": 32000,
              "num_attention_heads": 32, "num_key_value_heads": 32, "tie_word_embeddings": False}
    assert P.llama_param_count(llama2) == 6_738_415_616
    assert P.llama_param_count({**llama2, "vocab_size": 49152}) == 6_878_924_800
    assert P.llama_param_count(CODELLAMA_7B) == 6_738_546_688
    # GQA and tied embeddings: the same count as transformers' own model
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    hf = {**SMOLLM2_135M, "num_hidden_layers": 2}
    with torch.device("meta"):
        model = LlamaForCausalLM(LlamaConfig(**hf))
    assert P.llama_param_count(hf) == sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def test_shape_folder_has_config_and_tokenizer_only(tmp_path, smollm2_tokenizer_dir):
    out = P.write_llama_shape(tmp_path / "shape", smollm2_tokenizer_dir, **P.parse_shape("llama2-7b"))
    hf = P.read_hf_config(out)
    assert (hf["hidden_size"], hf["num_hidden_layers"], hf["num_attention_heads"], hf["intermediate_size"],
            hf["vocab_size"], hf["tie_word_embeddings"]) == (4096, 32, 32, 11008, 49152, False)
    assert not list(out.glob("*.safetensors")) and (out / "tokenizer.json").is_file()
    kw = P.llama_config_kwargs(hf, fusions=False)
    assert (kw["num_layers"], kw["ffn_hidden_size"], kw["num_query_groups"], kw["vocab_size"]) == (32, 11008, 32, 49152)
    s = P.nemo_settings(load_config(REPO / "configs" / "sft_gpu.yaml", ["backend=nemo"]))
    P.check_parallel_fits(hf, s)  # TP=2 divides 32 heads


def test_token_count_and_timing_summary():
    """Real tokens of a NeMo SFT micro-batch (token_count minus the shifted one, capped at the padded
    width), counted as the data step reads them; throughput and MFU of the steps after warm-up."""
    import torch

    from sft_playbook.sft.nemo_worker import CountingIterator, sft_batch_tokens, timing_summary

    batch = {"tokens": torch.zeros(2, 16, dtype=torch.long), "token_count": [17, 9]}
    assert sft_batch_tokens(batch) == 16 + 8
    assert sft_batch_tokens((batch, 0, 0)) == 24  # (batch, batch_idx, dataloader_idx), as gpt_data_step unwraps
    assert sft_batch_tokens({"tokens": torch.zeros(2, 16)}) == 32
    sink = {}
    seen = list(CountingIterator(iter([batch, {"tokens": torch.zeros(1, 8), "token_count": [5]}]), sink))
    assert len(seen) == 2 and seen[0] is batch and (sink["tokens"], sink["padded"]) == (24 + 4, 32 + 8)
    rows = [{"step": 1, "seconds": 9.0, "tokens": 8000, "padded_tokens": 8192},
            {"step": 2, "seconds": 1.0, "tokens": 8000, "padded_tokens": 8192},
            {"step": 3, "seconds": 3.0, "tokens": 4000, "padded_tokens": 7808}]
    s = timing_summary(rows, warmup_steps=1, world_size=2, n_params=6_878_924_800)
    assert (s["timed_steps"], s["real_tokens"], s["seconds"], s["tokens_per_s"], s["tokens_per_s_per_gpu"]) == (2, 12000, 4.0, 3000.0, 1500.0)
    assert (s["padded_tokens"], s["real_fraction"]) == (16000, 0.75)
    assert s["mfu"] == pytest.approx(6 * 6_878_924_800 * 1500 / 989e12, abs=1e-4) and s["median_step_s"] == 2.0
    with pytest.raises(ValueError, match="no timed steps"):
        timing_summary(rows, warmup_steps=3, world_size=2, n_params=1)


def test_time_phase_runs_under_torchrun():
    assert P.worker_command("time", Path("/j.json"), 2, python="py")[1:4] == ["-m", "torch.distributed.run", "--standalone"]


@pytest.mark.slow
def test_real_time_phase_objects(tmp_path, smollm2_tokenizer_dir):
    """The timing phase's objects as NeMo builds them (CPU: no training): nothing restored, no
    checkpoint callback, and the model's data step wrapped so that it counts the real tokens of
    batches made by NeMo's own SFT dataset and collate function."""
    py = _nemo_python()
    shape = P.write_llama_shape(tmp_path / "shape", smollm2_tokenizer_dir, layers=2, hidden=64, heads=4, kv_heads=2, ffn=128)
    cfg = _cfg(f"output_dir={tmp_path / 'results'}", "run_name=t", f"nemo.cache_dir={tmp_path / 'cache'}",
               "train.precision=bf16", "wandb.enabled=false", "train.max_steps=8")
    from sft_playbook.sft.nemo_backend import make_job, step_data, write_job

    job = make_job(cfg, P.nemo_settings(cfg), shape)
    job["timing"] = {"warmup_steps": 2, "n_params": P.llama_param_count(job["hf_config"])}
    step_data(cfg, job)
    job_file = write_job(job)
    code = r'''
import json, sys
from pathlib import Path
from sft_playbook.sft import nemo_worker as W
job = json.load(open(sys.argv[1]))
objs, timer, sink = W.build_time_objects(job)
data = objs["data"]
ds = data._create_dataset(Path(job["paths"]["dataset_root"]) / "training.jsonl")
items = [ds[i] for i in range(3)]
batch = ds.collate_fn(items)
step = objs["model"].config.data_step_fn  # partial(counting_data_step, gpt_data_step, sink)
from nemo.collections.llm.gpt.model.base import gpt_data_step
# gpt_data_step moves the batch to CUDA; on CPU the same wrapper runs around a step that only takes it
got = step.func(lambda it: next(it), *step.args[1:], iter([batch]))
print("RESULT", json.dumps({"resume": objs["resume"] is None, "ckpt": objs["log"].ckpt is None,
    "wrapped": step.func is W.counting_data_step and step.args[0] is gpt_data_step and step.args[1] is sink and got is batch,
    "timer": timer in objs["trainer"].callbacks,
    "tokens": sink["tokens"], "lengths": [len(x["input_ids"]) for x in items], "width": int(batch["tokens"].shape[1])}))
'''
    r = subprocess.run([py, "-c", code, str(job_file)], capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=900)
    assert r.returncode == 0, f"{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    got = json.loads(r.stdout.split("RESULT", 1)[1])
    assert got["resume"] and got["ckpt"] and got["wrapped"] and got["timer"]
    assert got["tokens"] == sum(min(n - 1, got["width"]) for n in got["lengths"]) > 0


def test_worker_phase_error_is_its_message_and_exit_code_1(tmp_path, monkeypatch, capsys):
    """A phase that cannot finish raises NemoWorkerError (library code never exits the process);
    the worker's entry point prints the message, without a traceback, and exits 1."""
    from sft_playbook.sft import nemo_worker as W

    job = tmp_path / "job.json"
    job.write_text("{}", encoding="utf-8")

    def no_checkpoint(job):
        W.last_checkpoint(tmp_path / "logs")   # nothing under it

    monkeypatch.setitem(W.PHASES, "predict", no_checkpoint)
    assert W.main(["predict", str(job)]) == 1
    err = capsys.readouterr().err
    assert f"no NeMo checkpoint under {tmp_path / 'logs'}: run the train step first" in err
    assert "Traceback" not in err
    with pytest.raises(W.NemoWorkerError, match="run the train step first"):
        W.last_checkpoint(tmp_path / "logs")
    assert W.main(["nonsense", str(job)]) == 2
