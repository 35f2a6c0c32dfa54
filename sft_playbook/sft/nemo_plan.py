"""NeMo backend, the parts that need no NeMo: settings from our YAML, the NeMo dataset folder,
the Llama model config derived from a Hugging Face config.json, the worker commands, and the
weight comparison used to prove a conversion (torch only).

Everything here runs (and is tested) on a CPU machine without NeMo installed.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from ..config import ConfigError
from ..io import InputError, read_json, write_chunks_atomic, write_text_atomic
from ..paths import resolve, run_dir
from ..settings import SftSettings, build

#: NeMo's FineTuningDataModule reads these three files from its dataset_root
NEMO_SPLITS = {"train": "training.jsonl", "validation": "validation.jsonl", "test": "test.jsonl"}
#: Hugging Face model types the backend converts (Llama family: Llama-2/3/3.x, CodeLlama, SmolLM/SmolLM2)
SUPPORTED_MODEL_TYPES = ("llama",)


class NemoConfigError(ValueError):
    """The nemo: section or the model is not usable; the message names the key or file."""


def have_transformer_engine() -> bool:
    """True when TransformerEngine is installed (found, not imported).

    Returns:
        Whether ``importlib.util.find_spec("transformer_engine")`` finds the package.
    """
    return importlib.util.find_spec("transformer_engine") is not None


def nemo_settings(cfg: SftSettings | dict) -> dict[str, Any]:
    """One flat dict (JSON, for the NeMo worker) with everything the NeMo run needs, from the same
    typed settings as the native backend (``settings.SftSettings``: types, choices, ranges and
    NeMo's parallel layout checked there; a config mapping is checked here).

    Shared keys (train.*, data.*, predict.*) keep their meaning; nemo.* holds what only NeMo has.

    Returns:
        A flat JSON-ready dict: the parallel layout (``devices``, ``num_nodes``, ``tp``, ``pp``,
        ``data_parallel``, ``world_size``), NeMo's ``seq_length`` (tokens) and batch sizes (sequences),
        the optimizer and schedule (``lr``, ``min_lr``, ``warmup_steps``, ``max_steps`` ...), the
        ``predict.*`` and ``nemo.*`` values, ``seed``, ``resume`` and the wandb switch and project.

    Raises:
        NemoConfigError: a config mapping has no ``nemo:`` section, or a setting is wrong or does not
            fit the parallel layout (one line naming the key).
    """
    if isinstance(cfg, dict) and not isinstance(cfg.get("nemo"), dict):
        raise NemoConfigError("backend=nemo needs a 'nemo:' section in the config (see configs/sft.yaml)")
    try:
        st = build("sft", cfg)
        geo = st.nemo_geometry()
    except (ConfigError, ValueError) as exc:
        raise NemoConfigError(str(exc)) from None
    n, t, p = st.nemo, st.train, st.predict
    return {
        "devices": n.devices, "num_nodes": n.num_nodes, "tp": n.tensor_parallel, "pp": n.pipeline_parallel,
        "sequence_parallel": n.sequence_parallel,
        # NeMo's own batch and length when set (the native keys may count packs of the fast path);
        # null: the shared data.max_seq_len / train.micro_batch_size / train.global_batch_size
        "seq_length": geo["seq_length"], "micro_batch_size": geo["micro_batch_size"],
        "global_batch_size": geo["global_batch_size"],
        "lr": t.lr, "min_lr": t.lr * t.min_lr_ratio, "warmup_steps": t.warmup_steps, "weight_decay": t.weight_decay,
        "betas": list(t.betas), "grad_clip": t.grad_clip, "max_steps": t.max_steps, "eval_every": t.eval_every,
        "save_every": t.save_every, "precision": t.precision, "method": t.method,
        "limit_val_batches": n.limit_val_batches, "predict_with": n.predict_with, "export_hf": n.export_hf,
        "fusions": n.fusions, "max_new_tokens": p.max_new_tokens, "do_sample": p.do_sample,
        "temperature": p.temperature, "top_p": p.top_p, "n_samples": p.n_samples, "batch_size": p.batch_size,
        "stop": list(p.stop), "seed": st.seed, "resume": st.resume, "wandb": st.wandb.enabled,
        "wandb_project": st.wandb.project, "data_parallel": geo["data_parallel"], "world_size": geo["world_size"],
    }


def fusions_enabled(setting: str, have_te: bool | None = None) -> bool:
    """Whether to use the TransformerEngine fusions for ``nemo.fusions`` (``auto``: when TE is installed).

    Returns:
        True for ``on`` (with TE) and for ``auto`` with TE installed; False for ``off`` and for
        ``auto`` without TE.

    Raises:
        NemoConfigError: ``on`` without TransformerEngine.
    """
    have_te = have_transformer_engine() if have_te is None else have_te
    if setting == "on" and not have_te:
        raise NemoConfigError("nemo.fusions=on needs TransformerEngine (not installed); use auto or off")
    return have_te if setting == "auto" else setting == "on"


def read_hf_config(model_dir: Path) -> dict:
    """The ``config.json`` of a Hugging Face model folder.

    Returns:
        The parsed config.json (``model_type``, ``hidden_size``, ``num_hidden_layers`` ...), as a dict.

    Raises:
        NemoConfigError: the file is missing or not valid JSON.
    """
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise NemoConfigError(f"{model_dir} has no config.json: not a Hugging Face model folder")
    try:
        return read_json(path)
    except InputError as exc:
        raise NemoConfigError(str(exc)) from None


def llama_config_kwargs(hf: dict, fusions: bool, dtype: str = "bfloat16") -> dict[str, Any]:
    """Keyword arguments for nemo.collections.llm.LlamaConfig (or Llama31Config when
    'rope_scaling_factor' is returned), derived from a Hugging Face config.json of the Llama family.

    The same mapping NeMo's HF importer uses, with one difference: without TransformerEngine every
    fusion is off (NeMo's defaults ask for TE's fused RoPE and fail or silently misbehave without it).

    Returns:
        ``num_layers``, ``hidden_size``, ``ffn_hidden_size``, ``num_attention_heads``,
        ``num_query_groups``, ``kv_channels``, ``seq_length``, ``rotary_base``, ``vocab_size`` and
        ``make_vocab_size_divisible_by`` (the largest power of two up to 128 that divides it), the
        dtype flags, ``rope_scaling_factor`` for Llama-3.1-style RoPE scaling, and every fusion set
        to False when ``fusions`` is False.

    Raises:
        NemoConfigError: ``model_type`` is not ``llama``, a required key (``num_hidden_layers``,
            ``hidden_size``, ``intermediate_size``, ``num_attention_heads``, ``vocab_size``) is
            missing, or ``rope_scaling`` is not of type ``llama3``.
    """
    model_type = hf.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise NemoConfigError(f"model_type {model_type!r} is not supported by the NeMo backend "
                              f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)}: Llama-2/3, CodeLlama, SmolLM2)")
    for key in ("num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads", "vocab_size"):
        if key not in hf:
            raise NemoConfigError(f"config.json lacks {key!r}")
    vocab = int(hf["vocab_size"])
    divisible = 128
    while vocab % divisible:
        divisible //= 2
    heads = int(hf["num_attention_heads"])
    kw: dict[str, Any] = {
        "num_layers": int(hf["num_hidden_layers"]),
        "hidden_size": int(hf["hidden_size"]),
        "ffn_hidden_size": int(hf["intermediate_size"]),
        "num_attention_heads": heads,
        "num_query_groups": int(hf.get("num_key_value_heads") or heads),
        "kv_channels": hf.get("head_dim") or int(hf["hidden_size"]) // heads,
        "layernorm_epsilon": float(hf.get("rms_norm_eps", 1e-6)),
        "seq_length": int(hf.get("max_position_embeddings", 4096)),
        "rotary_base": float(hf.get("rope_theta", 10000.0)),
        "init_method_std": float(hf.get("initializer_range", 0.02)),
        "vocab_size": vocab,
        "make_vocab_size_divisible_by": divisible,
        "share_embeddings_and_output_weights": bool(hf.get("tie_word_embeddings", False)),
        "gated_linear_unit": True,
        "params_dtype": dtype,
        "bf16": dtype == "bfloat16",
        "fp16": dtype == "float16",
    }
    scaling = hf.get("rope_scaling") or {}
    if scaling.get("rope_type") == "llama3":
        kw["rope_scaling_factor"] = float(scaling.get("factor", 8.0))
    elif scaling:
        raise NemoConfigError(f"rope_scaling {scaling!r} is not supported (only Llama-3.1 style 'llama3')")
    if not fusions:
        kw.update(apply_rope_fusion=False, bias_activation_fusion=False, bias_dropout_fusion=False,
                  masked_softmax_fusion=False, persist_layer_norm=False, cross_entropy_loss_fusion=False,
                  gradient_accumulation_fusion=False)
    return kw


def check_parallel_fits(hf: dict, s: dict) -> None:
    """Check the tensor/pipeline parallel sizes against the model: TP must divide the attention and
    key/value heads, PP the layers.

    Raises:
        NemoConfigError: they do not divide (the message names the numbers).
    """
    heads = int(hf["num_attention_heads"])
    groups = int(hf.get("num_key_value_heads") or heads)
    if heads % s["tp"] or groups % s["tp"]:
        raise NemoConfigError(f"tensor_parallel={s['tp']} must divide the attention heads ({heads}) and "
                              f"key/value heads ({groups}) of the model")
    if int(hf["num_hidden_layers"]) % s["pp"]:
        raise NemoConfigError(f"pipeline_parallel={s['pp']} must divide the layers ({hf['num_hidden_layers']})")


def model_key(model_dir: Path) -> str:
    """A cache folder name for the converted checkpoint: folder name + a fingerprint of its files.

    Returns:
        ``<folder name>-<10 hex digits>``: a sha256 over the name, size and whole-second mtime of each
        ``.json``, ``.safetensors``, ``.bin``, ``.model`` and ``.jinja`` file (contents not read).
    """
    import hashlib

    h = hashlib.sha256()
    for f in sorted(Path(model_dir).iterdir()):
        if f.is_file() and (f.suffix in (".json", ".safetensors", ".bin", ".model", ".jinja")):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return f"{Path(model_dir).name}-{h.hexdigest()[:10]}"


def stage_hf_folder(model_dir: Path, out: Path) -> Path:
    """A folder NeMo's importer (transformers 4.x inside NeMo) can read: links to the model files,
    with a tokenizer_config.json whose class transformers 4.x knows (5.x writes 'TokenizersBackend').
    The input folder is never modified.

    Returns:
        ``out``, holding a symlink to each file of ``model_dir`` and a rewritten copy of its
        tokenizer_config.json.

    Raises:
        InputError: the model's tokenizer_config.json cannot be read or is not valid JSON.
        OutputError: the rewritten tokenizer_config.json cannot be written.
    """
    model_dir = Path(model_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for f in model_dir.iterdir():
        if not f.is_file():
            continue
        target = out / f.name
        if f.name == "tokenizer_config.json":
            tc = read_json(f)
            if tc.get("tokenizer_class") in (None, "TokenizersBackend"):
                tc["tokenizer_class"] = "PreTrainedTokenizerFast"
            tc.pop("backend", None)
            write_text_atomic(target, json.dumps(tc, indent=2))
            continue
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(f)
    return out


def prepare_dataset_root(rows_by_split: dict[str, list[dict]], render_prompt, out: Path) -> dict[str, int]:
    """Write NeMo's training/validation/test.jsonl: 'input' is the rendered prompt (chat template or
    plain, exactly as the native backend builds it), 'output' the code, 'id' kept. NeMo's template is
    then '{input}{output}', so both backends train on the same text.

    Returns:
        Rows written per file name: ``{"training.jsonl": n, "validation.jsonl": n, "test.jsonl": n}``.

    Raises:
        OutputError: a file cannot be written (the earlier file, if any, is left as it was).
    """
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, name in NEMO_SPLITS.items():
        rows = rows_by_split[split]
        path = out / name
        write_chunks_atomic(path, ((json.dumps({"input": render_prompt(r["input"]), "output": r["output"], "id": r["id"]},
                                               ensure_ascii=False) + "\n").encode("utf-8") for r in rows))
        for stale in out.glob(name + ".idx*"):  # NeMo's memmap index of an older file
            stale.unlink()
        counts[name] = len(rows)
    return counts


def worker_command(phase: str, job_file: Path, world_size: int, python: str | None = None) -> list[str]:
    """The command for one NeMo phase, in its own process (torchrun when several GPUs).

    Returns:
        The argv: ``<python> -m sft_playbook.sft.nemo_worker <phase> <job_file>``, behind
        ``-m torch.distributed.run --standalone --nproc-per-node=<world_size>`` for the train,
        predict and time phases when ``world_size`` > 1.
    """
    python = python or sys.executable
    if phase in ("train", "predict", "time") and world_size > 1:
        return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={world_size}",
                "-m", "sft_playbook.sft.nemo_worker", phase, str(job_file)]
    return [python, "-m", "sft_playbook.sft.nemo_worker", phase, str(job_file)]


def run_paths(cfg: SftSettings | dict, hf_dir: Path) -> dict[str, Path]:
    """The folders of a NeMo run: the run folder, its ``nemo/`` data and logs, the exported model, and
    the per-model cache of the staged Hugging Face folder and the converted base checkpoint.

    Returns:
        Name -> absolute path (none created here): ``run``, ``nemo_dir``, ``dataset_root``, ``log_dir``,
        ``export_dir`` under the run folder; ``staged_hf`` and ``base_ckpt`` under
        ``<nemo.cache_dir>/<model_key>``.
    """
    cfg = build("sft", cfg)
    run = run_dir(cfg)
    cache = resolve(cfg.nemo.cache_dir)
    key = model_key(hf_dir)
    return {
        "run": run,
        "nemo_dir": run / "nemo",
        "dataset_root": run / "nemo" / "data",
        "staged_hf": cache / key / "hf",
        "base_ckpt": cache / key / "nemo",
        "log_dir": run / "nemo" / "logs",
        "export_dir": run / "model",
    }


# ----- weight comparison (torch only; used by the conversion check and its test) -----------------

def expected_nemo_weights(hf_sd: dict, hf: dict) -> dict:
    """The NeMo (Megatron) tensors a correct conversion of a Llama HF state dict must hold,
    per layer: key -> tensor, keys like 'decoder.layers.3.self_attention.linear_qkv.weight'.

    Returns:
        Megatron key -> tensor: the HF tensors themselves where the layout is the same, and new
        tensors for ``linear_qkv.weight`` (``(heads + 2 * kv_heads) * head_dim`` x hidden, grouped per
        key/value head: its queries, then k, then v) and ``linear_fc1.weight`` (2 * ffn x hidden:
        gate, then up). No ``output_layer.weight`` when the embeddings are tied.
    """
    import torch

    L, heads = int(hf["num_hidden_layers"]), int(hf["num_attention_heads"])
    groups = int(hf.get("num_key_value_heads") or heads)
    head_dim = hf.get("head_dim") or int(hf["hidden_size"]) // heads
    per_group = heads // groups
    out = {"embedding.word_embeddings.weight": hf_sd["model.embed_tokens.weight"],
           "decoder.final_layernorm.weight": hf_sd["model.norm.weight"]}
    if not hf.get("tie_word_embeddings", False):
        out["output_layer.weight"] = hf_sd["lm_head.weight"]
    for i in range(L):
        p = f"model.layers.{i}."
        q = hf_sd[p + "self_attn.q_proj.weight"].reshape(groups, per_group * head_dim, -1)
        k = hf_sd[p + "self_attn.k_proj.weight"].reshape(groups, head_dim, -1)
        v = hf_sd[p + "self_attn.v_proj.weight"].reshape(groups, head_dim, -1)
        qkv = torch.cat([q, k, v], dim=1).reshape(-1, q.shape[-1])  # per group: its queries, then k, then v
        t = f"decoder.layers.{i}."
        out[t + "self_attention.linear_qkv.weight"] = qkv
        out[t + "self_attention.linear_proj.weight"] = hf_sd[p + "self_attn.o_proj.weight"]
        out[t + "self_attention.linear_qkv.layer_norm_weight"] = hf_sd[p + "input_layernorm.weight"]
        out[t + "mlp.linear_fc1.layer_norm_weight"] = hf_sd[p + "post_attention_layernorm.weight"]
        out[t + "mlp.linear_fc1.weight"] = torch.cat([hf_sd[p + "mlp.gate_proj.weight"], hf_sd[p + "mlp.up_proj.weight"]], 0)
        out[t + "mlp.linear_fc2.weight"] = hf_sd[p + "mlp.down_proj.weight"]
    return out


def flatten_nemo_checkpoint(sd: dict) -> dict:
    """A torch-saved Megatron distributed checkpoint (layers stacked in one tensor, keys with a
    'module.' prefix, '_extra_state' entries) -> per-layer keys as in expected_nemo_weights.

    Returns:
        Key -> tensor, the ``module.`` prefix removed, each stacked ``decoder.layers.*`` tensor split
        into per-layer views; non-tensor and ``_extra_state`` entries left out.
    """
    import torch

    out = {}
    for key, value in sd.items():
        if not isinstance(value, torch.Tensor) or "_extra_state" in key:
            continue
        key = key[len("module."):] if key.startswith("module.") else key
        if key.startswith("decoder.layers."):
            rest = key[len("decoder.layers."):]
            for i in range(value.shape[0]):
                out[f"decoder.layers.{i}.{rest}"] = value[i]
        else:
            out[key] = value
    return out


def compare_weights(expected: dict, got: dict, atol: float = 1e-2) -> list[str]:
    """Problems (empty when every expected tensor is present and equal within atol).

    Returns:
        One line per problem: ``<key>: missing in the NeMo checkpoint``, a shape mismatch, or
        ``differs by up to X`` (with a hint when a norm weight is all 1.0); the embedding and output
        layer are compared on the HF vocabulary rows only (NeMo pads it).
    """
    import torch

    problems = []
    for key, want in expected.items():
        if key not in got:
            problems.append(f"{key}: missing in the NeMo checkpoint")
            continue
        have = got[key].float()
        want = want.float()
        if key == "embedding.word_embeddings.weight" or key == "output_layer.weight":
            have = have[: want.shape[0]]  # NeMo pads the vocabulary
        if have.shape != want.shape:
            problems.append(f"{key}: shape {tuple(have.shape)} != {tuple(want.shape)}")
        elif not torch.allclose(have, want, atol=atol, rtol=1e-2):
            diff = (have - want).abs().max().item()
            hint = " (all 1.0: the RMSNorm trap)" if "norm" in key and bool((have == 1).all()) else ""
            problems.append(f"{key}: differs by up to {diff:.4g}{hint}")
    return problems


#: Model shapes the GPU proof's timing run takes by name (bench/nemo_gpu_proof.sh --time NAME).
#: Llama-2-7B: the course's model (hidden 4096, 32 layers, 32 heads without GQA, FFN 11008, untied).
MODEL_SHAPES = {
    "llama2-7b": {"layers": 32, "hidden": 4096, "heads": 32, "kv_heads": 32, "ffn": 11008},
}
_SHAPE_KEYS = ("layers", "hidden", "heads", "kv_heads", "ffn")


def parse_shape(spec: str) -> dict[str, int]:
    """A model shape from a name in MODEL_SHAPES or 'layers=32,hidden=4096,heads=32,kv_heads=32,ffn=11008'
    (kv_heads defaults to heads). Raises NemoConfigError naming the bad part.

    Returns:
        ``{"layers", "hidden", "heads", "kv_heads", "ffn"}`` as ints >= 1 (a copy for a named shape).

    Raises:
        NemoConfigError: a part is not ``KEY=N`` with a known key and a whole number >= 1, a key is
            missing, or heads does not divide hidden or kv_heads does not divide heads.
    """
    spec = spec.strip()
    if spec in MODEL_SHAPES:
        return dict(MODEL_SHAPES[spec])
    out: dict[str, int] = {}
    for part in filter(None, (x.strip() for x in spec.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in _SHAPE_KEYS:
            raise NemoConfigError(f"model shape {spec!r}: {part!r} is not KEY=N with KEY one of {', '.join(_SHAPE_KEYS)} "
                                  f"(or give a name: {', '.join(MODEL_SHAPES)})")
        try:
            out[key.strip()] = int(value)
        except ValueError:
            raise NemoConfigError(f"model shape {spec!r}: {key.strip()} must be a whole number, not {value!r}") from None
        if out[key.strip()] < 1:
            raise NemoConfigError(f"model shape {spec!r}: {key.strip()} must be >= 1")
    if "heads" in out:
        out.setdefault("kv_heads", out["heads"])
    missing = [k for k in _SHAPE_KEYS if k not in out]
    if missing:
        raise NemoConfigError(f"model shape {spec!r} lacks {', '.join(missing)}")
    if out["hidden"] % out["heads"] or out["heads"] % out["kv_heads"]:
        raise NemoConfigError(f"model shape {spec!r}: heads must divide hidden and kv_heads must divide heads")
    return out


def llama_param_count(hf: dict) -> int:
    """Parameters of a Llama (Hugging Face config.json keys), each counted once - tied embeddings
    once -, as bench/throughput_common.n_params counts a built model: embeddings, per layer the
    q/k/v/o projections, the gated MLP and two RMSNorm weights, the final norm, and the output
    layer unless tied. E.g. Llama-2-7B's shape with a 49,152 vocabulary: 6,878,924,800.

    Returns:
        The number of parameters (an int; the vocabulary as given, without NeMo's padding).
    """
    h, L, ffn, V = (int(hf[k]) for k in ("hidden_size", "num_hidden_layers", "intermediate_size", "vocab_size"))
    heads = int(hf["num_attention_heads"])
    kv = int(hf.get("num_key_value_heads") or heads)
    head_dim = int(hf.get("head_dim") or h // heads)
    attn = h * heads * head_dim * 2 + h * kv * head_dim * 2  # q, o; k, v
    per_layer = attn + 3 * h * ffn + 2 * h
    return V * h + L * per_layer + h + (0 if hf.get("tie_word_embeddings", False) else V * h)


def tokenizer_files(tokenizer_dir: Path) -> tuple[list[Path], int]:
    """The tokenizer files of a folder and its vocabulary size (base vocabulary + added tokens past it).

    Returns:
        ``(files, vocab_size)``: the files whose names start with tokenizer, special_tokens,
        chat_template, vocab or merges; and the number of tokens in tokenizer.json.

    Raises:
        NemoConfigError: the folder has no tokenizer.json.
        InputError: tokenizer.json is not valid UTF-8 JSON.
    """
    tok_files = [f for f in Path(tokenizer_dir).iterdir()
                 if f.name.startswith(("tokenizer", "special_tokens", "chat_template", "vocab", "merges"))]
    if not any(f.name == "tokenizer.json" for f in tok_files):
        raise NemoConfigError(f"{tokenizer_dir} has no tokenizer.json")
    tok_cfg = read_json(Path(tokenizer_dir) / "tokenizer.json")
    vocab = len(tok_cfg["model"]["vocab"]) + len([t for t in tok_cfg.get("added_tokens", [])
                                                  if t["id"] >= len(tok_cfg["model"]["vocab"])])
    return tok_files, vocab


def write_llama_shape(out: Path, tokenizer_dir: Path, layers: int, hidden: int, heads: int, kv_heads: int,
                      ffn: int, max_positions: int = 4096, tie_embeddings: bool = False) -> Path:
    """A Hugging Face folder with only a Llama config.json of this shape (vocabulary from the
    tokenizer) and the tokenizer's files - no weights: for timing runs from a random init, where
    writing and converting billions of random weights would cost minutes for nothing.

    Returns:
        ``out``, holding config.json (bf16, untied unless ``tie_embeddings``) and copies of the
        tokenizer files.

    Raises:
        NemoConfigError: ``tokenizer_dir`` has no tokenizer.json.
    """
    import shutil

    tok_files, vocab = tokenizer_files(tokenizer_dir)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab, "hidden_size": hidden,
           "intermediate_size": ffn, "num_hidden_layers": layers, "num_attention_heads": heads,
           "num_key_value_heads": kv_heads, "max_position_embeddings": max_positions, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "tie_word_embeddings": tie_embeddings, "bos_token_id": 1, "eos_token_id": 2,
           "hidden_act": "silu", "initializer_range": 0.02, "torch_dtype": "bfloat16"}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    for f in tok_files:
        shutil.copy(f, out / f.name)
    return out
