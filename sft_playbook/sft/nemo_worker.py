"""NeMo 2 phases, each run in its own process by nemo_backend (torchrun when several GPUs):

    python -m sft_playbook.sft.nemo_worker {import|train|predict|export|verify} JOB.json

JOB.json is written by nemo_backend: the settings (nemo_plan.nemo_settings), the paths and the
model config. Works with NeMo 2.1.0 (nvcr.io/nvidia/nemo:24.12) and nemo-toolkit 2.7.3.

Heavy imports stay inside functions: NeMo's checkpoint writer starts helper processes with the
'spawn' method, which re-import the main module. Our NeMo/Lightning subclasses live in
nemo_extensions.py, imported by the phases that use them.

A phase that cannot finish raises ``NemoWorkerError``; ``main`` prints its message and exits with 1.
"""
from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from .nemo_compat import restore_numpy_aliases

log = logging.getLogger("sft_playbook.nemo")

# Before anything imports megatron-core: its distributed checkpointing calls np.product, gone in
# NumPy 2 (nemo_compat says why this is a shim and not numpy<2). At import time, so that the
# checkpoint writer's helper processes, which re-import this module ('spawn'), get it too.
NUMPY_ALIASES_ADDED = restore_numpy_aliases()


class NemoWorkerError(RuntimeError):
    """A phase cannot finish (a check failed, no usable checkpoint); the message says what and where."""


def nemo_tokenizer(hf_dir: str):
    """NeMo's wrapper of the Hugging Face tokenizer in ``hf_dir``.

    Returns:
        A ``nemo.collections.common.tokenizers.huggingface.auto_tokenizer.AutoTokenizer`` of that folder.
    """
    from nemo.collections.common.tokenizers.huggingface.auto_tokenizer import AutoTokenizer

    return AutoTokenizer(hf_dir)


@contextmanager
def cpu_checkpoint_shims():
    """megatron-core's distributed checkpoint writer calls torch.cuda.synchronize() and
    current_device() unconditionally, Megatron's parallel init makes a torch.cuda.Stream, and NeMo's
    checkpoint loader asserts CUDA; on a machine without CUDA (tests, CPU conversion and export)
    those are redirected to no-ops / 'cpu'. With CUDA nothing is changed."""
    import torch

    if torch.cuda.is_available():
        yield
        return
    import nemo.lightning.io.pl as nemo_pl

    saved = torch.cuda.synchronize, torch.cuda.current_device, torch.cuda.Stream, nemo_pl._fix_tensors_device
    torch.cuda.synchronize = lambda *a, **k: None
    torch.cuda.current_device = lambda: "cpu"
    torch.cuda.Stream = lambda *a, **k: None  # torch.cuda.stream(None) is a no-op (Megatron's parallel init)
    nemo_pl._fix_tensors_device = lambda ckpt: ckpt  # asserts CUDA; only moves CUDA tensors between GPUs
    try:
        yield
    finally:
        torch.cuda.synchronize, torch.cuda.current_device, torch.cuda.Stream, nemo_pl._fix_tensors_device = saved


def phase_import(job: dict) -> None:
    """Convert the staged Hugging Face folder into the cached NeMo base checkpoint (overwritten)."""
    from nemo.collections import llm
    from nemo.lightning import io

    from .nemo_extensions import PlaybookLlamaImporter, PlaybookLlamaModel, build_model_config

    PlaybookLlamaImporter.job = job
    io.model_importer(PlaybookLlamaModel, "hf")(PlaybookLlamaImporter)
    out = Path(job["paths"]["base_ckpt"])
    t0 = time.time()
    with cpu_checkpoint_shims():
        llm.import_ckpt(model=PlaybookLlamaModel(config=build_model_config(job)),
                        source="hf://" + job["paths"]["staged_hf"], output_path=out, overwrite=True)
    log.info("converted %s -> %s in %.1fs", job["hf_dir"], out, time.time() - t0)


def load_nemo_weights(ckpt: Path) -> dict:
    """A NeMo 2 checkpoint's weights as one flat dict (torch.distributed.checkpoint -> torch.save).

    Returns:
        The checkpoint's ``weights/`` as saved (keys with the ``module.`` prefix, layers stacked in one
        tensor per name, ``_extra_state`` entries included): see ``nemo_plan.flatten_nemo_checkpoint``.
    """
    import tempfile

    import torch
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    with tempfile.TemporaryDirectory() as tmp:
        dcp_to_torch_save(str(Path(ckpt) / "weights"), f"{tmp}/w.pt")
        return torch.load(f"{tmp}/w.pt", weights_only=False)


def phase_verify(job: dict) -> None:
    """Compare the converted checkpoint with the HF weights.

    Raises:
        NemoWorkerError: a tensor differs (the first 20 differences are listed).
    """
    from safetensors.torch import load_file

    from .nemo_plan import compare_weights, expected_nemo_weights, flatten_nemo_checkpoint

    hf_dir = Path(job["hf_dir"])
    hf_sd = {}
    for f in sorted(hf_dir.glob("*.safetensors")):
        hf_sd.update(load_file(str(f)))
    expected = expected_nemo_weights(hf_sd, job["hf_config"])
    got = flatten_nemo_checkpoint(load_nemo_weights(Path(job["paths"]["base_ckpt"])))
    problems = compare_weights(expected, got)
    if problems:
        raise NemoWorkerError("converted checkpoint differs from the Hugging Face weights:\n  " + "\n  ".join(problems[:20]))
    log.info("conversion check: all %d tensors match the Hugging Face weights", len(expected))


def _strategy(job: dict, for_inference: bool = False):
    from nemo import lightning as nl

    s = job["settings"]
    kwargs = dict(tensor_model_parallel_size=s["tp"], pipeline_model_parallel_size=s["pp"],
                  sequence_parallel=s["sequence_parallel"] and not for_inference)
    params = inspect.signature(nl.MegatronStrategy.__init__).parameters
    if "ckpt_async_save" in params:
        kwargs["ckpt_async_save"] = False
    if for_inference:
        kwargs.update(setup_optimizers=False, store_optimizer_states=False)
    return nl.MegatronStrategy(**kwargs)


def _precision_plugin(job: dict):
    import torch
    from nemo import lightning as nl

    if job["settings"]["precision"] in ("bf16", "auto") and torch.cuda.is_available():
        return nl.MegatronMixedPrecision(precision="bf16-mixed", params_dtype=torch.bfloat16,
                                         pipeline_dtype=torch.bfloat16, autocast_enabled=False)
    return None


def build_train_objects(job: dict) -> dict:
    """Everything llm.finetune gets (model, data, trainer, log, resume, optim, peft), built as
    phase_train uses it; also used by check_train_context (tests, no training).

    Returns:
        The keyword arguments of ``llm.finetune``: ``model``, ``data``, ``trainer`` (with the metrics
        callback), ``log`` (NeMoLogger with its ModelCheckpoint), ``resume`` (from the base checkpoint),
        ``optim`` (Adam + cosine schedule) and ``peft`` (LoRA, or None for full fine-tuning).
    """
    import torch
    from megatron.core.optimizer import OptimizerConfig
    from nemo import lightning as nl
    from nemo.collections import llm
    from nemo.lightning.pytorch.optim import CosineAnnealingScheduler

    from .nemo_extensions import MetricsCallback, build_model_config
    from .nemo_plan import have_transformer_engine

    s, paths = job["settings"], job["paths"]
    tok = nemo_tokenizer(paths["staged_hf"])
    model = llm.LlamaModel(config=build_model_config(job), tokenizer=tok)
    data_kwargs = dict(dataset_root=paths["dataset_root"], seq_length=s["seq_length"], tokenizer=tok,
                       micro_batch_size=s["micro_batch_size"], global_batch_size=s["global_batch_size"],
                       seed=s["seed"], num_workers=2)
    if "dataset_kwargs" in inspect.signature(llm.FineTuningDataModule.__init__).parameters:
        data_kwargs["dataset_kwargs"] = {"prompt_template": "{input}{output}", "add_bos": False, "add_eos": True,
                                         "label_key": "output", "truncation_field": "input"}
    else:
        log.warning("this NeMo's FineTuningDataModule has no dataset_kwargs: it joins input and output with a space")
    data = llm.FineTuningDataModule(**data_kwargs)
    bf16 = _precision_plugin(job) is not None
    opt = nl.MegatronOptimizerModule(
        config=OptimizerConfig(optimizer="adam", lr=s["lr"], weight_decay=s["weight_decay"], adam_beta1=s["betas"][0],
                               adam_beta2=s["betas"][1], clip_grad=s["grad_clip"], bf16=bf16,
                               # Megatron's distributed optimizer cannot save the state of the plain
                               # torch Adam it falls back to without TE/Apex (seen on H200, mcore 0.15.3)
                               use_distributed_optimizer=torch.cuda.is_available() and have_transformer_engine()),
        # constant_steps=0: NeMo's default (80000) holds the lr at min_lr right after the warm-up
        lr_scheduler=CosineAnnealingScheduler(max_steps=s["max_steps"], warmup_steps=s["warmup_steps"],
                                              constant_steps=0, min_lr=s["min_lr"]),
    )
    val_every = max(1, min(s["eval_every"], s["max_steps"]))
    trainer = nl.Trainer(
        devices=s["devices"], num_nodes=s["num_nodes"], accelerator="gpu" if torch.cuda.is_available() else "cpu",
        strategy=_strategy(job), plugins=_precision_plugin(job), max_steps=s["max_steps"],
        val_check_interval=val_every, limit_val_batches=s["limit_val_batches"], num_sanity_val_steps=0,
        log_every_n_steps=1, use_distributed_sampler=False,
        enable_checkpointing=False,  # NeMoLogger adds its ModelCheckpoint (a default one trips an optional import in 2.7)
    )
    # Our metrics callback is attached after the Trainer is built, on purpose: nl.Trainer records
    # its init arguments and each checkpoint's context/io.json serialises them with fiddle, which
    # can only name importable classes. Passed as callbacks=[...], the function-local class made
    # that serialisation fail, NeMo caught it with a warning, and left context/io.json EMPTY, so
    # export_ckpt and generate then died with JSONDecodeError (seen on H200, NeMo 2.7.3).
    trainer.callbacks.append(MetricsCallback(Path(paths["run"]) / "metrics.jsonl"))
    wandb = None
    if s["wandb"]:
        from lightning.pytorch.loggers import WandbLogger

        offline = not os.environ.get("WANDB_API_KEY") and os.environ.get("WANDB_MODE") != "online"
        wandb = WandbLogger(project=s["wandb_project"], name=job["run_name"], save_dir=str(paths["run"]), offline=offline)
    logger = nl.NeMoLogger(name="nemo", log_dir=paths["log_dir"], use_datetime_version=False, wandb=wandb,
                           ckpt=nl.ModelCheckpoint(save_last=True, every_n_train_steps=min(s["save_every"], s["max_steps"]),
                                                   save_top_k=1, monitor="reduced_train_loss", mode="min"))
    resume = nl.AutoResume(restore_config=nl.RestoreConfig(path=paths["base_ckpt"]),
                           resume_if_exists=s["resume"], resume_ignore_no_checkpoint=True)
    peft = llm.peft.LoRA() if s["method"] == "lora" else None
    return dict(model=model, data=data, trainer=trainer, log=logger, resume=resume, optim=opt, peft=peft)


def context_problem(ckpt: Path) -> str | None:
    """Why a checkpoint's context/io.json cannot be read back (None when it is readable JSON).
    NeMo only warns when it fails to write one, and leaves an empty file behind.

    Returns:
        One line naming ``<ckpt>/context/io.json`` and what is wrong (missing, empty, not valid JSON),
        or None when it parses.
    """
    f = Path(ckpt) / "context" / "io.json"
    if not f.is_file():
        return f"{f} is missing"
    text = f.read_text(encoding="utf-8")
    if not text.strip():
        return f"{f} is empty (NeMo could not serialise the training context; its warning is in the train log)"
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"{f} is not valid JSON: {exc}"
    return None


def check_train_context(job: dict, out: str) -> dict:
    """Build the training objects as phase_train does (no training), dump their TrainerContext the
    way NeMo's ModelCheckpoint does, and read the model back as export_ckpt and generate do.

    Returns:
        ``{"io_json_bytes": size of the written io.json in bytes, "model": the class name read back,
        "num_layers": its config's layer count}``.

    Raises:
        NemoWorkerError: the context does not serialise (NeMo leaves an empty or broken io.json).
    """
    from nemo.lightning import io
    from nemo.lightning.io.pl import TrainerContext

    objs = build_train_objects(job)
    out = Path(out)
    extra = {"datamodule": objs["data"].__io__} if hasattr(objs["data"], "__io__") else {}
    TrainerContext(trainer=objs["trainer"], model=objs["model"], extra=extra).io_dump(out / "context", yaml_attrs=["model"])
    problem = context_problem(out)
    if problem:
        raise NemoWorkerError(problem)
    model = io.load_context(out / "context", subpath="model")
    return {"io_json_bytes": (out / "context" / "io.json").stat().st_size, "model": type(model).__name__,
            "num_layers": model.config.num_layers}


def phase_train(job: dict) -> None:
    """Fine-tune with ``llm.finetune`` (objects from ``build_train_objects``); a fresh run (no resume)
    first removes the old metrics file. Rank 0 then checks that a checkpoint with a readable context
    was written (export and generate need it).

    Raises:
        NemoWorkerError: no checkpoint, or a checkpoint whose context cannot be read.
    """
    from nemo.collections import llm

    s, paths = job["settings"], job["paths"]
    metrics = Path(paths["run"]) / "metrics.jsonl"
    if not s["resume"] and int(os.environ.get("RANK", "0")) == 0 and metrics.exists():
        metrics.unlink()
    objs = build_train_objects(job)
    t0 = time.time()
    llm.finetune(**objs)
    log.info("NeMo fine-tuning: %d steps in %.1fs", s["max_steps"], time.time() - t0)
    if int(os.environ.get("RANK", "0")) == 0:
        ckpts = sorted({p.parent for p in Path(paths["log_dir"]).rglob("weights")})
        bad = [msg for msg in map(context_problem, ckpts) if msg]
        if not ckpts or bad:
            raise NemoWorkerError("NeMo fine-tuning left no usable checkpoint (export and generate need its context):\n  "
                             + "\n  ".join(bad or [f"no checkpoint under {paths['log_dir']}"]))
        log.info("checkpoints with a readable context: %s", ", ".join(p.name for p in ckpts))


def sft_batch_tokens(batch) -> int:
    """Real (non-pad) tokens the model reads in one micro-batch of NeMo's GPTSFTDataset.collate_fn:
    each sample's ``token_count`` (its length before the one-token shift into tokens/labels) minus
    one, capped at the padded width. A (batch, batch_idx, dataloader_idx) tuple is unwrapped as
    NeMo's gpt_data_step does. Without ``token_count``: every position of ``tokens``.

    Returns:
        The number of real tokens (an int): ``sum(min(token_count - 1, width))`` over the samples,
        or ``batch x width`` without ``token_count``.
    """
    b = batch[0] if isinstance(batch, tuple) and len(batch) == 3 else batch
    width = int(b["tokens"].shape[1])
    if b.get("token_count") is None:
        return int(b["tokens"].numel())
    return sum(max(0, min(int(c) - 1, width)) for c in b["token_count"])


class CountingIterator:
    """Wraps the dataloader iterator a Megatron data step reads from and adds up, in ``sink``, the
    real tokens (sft_batch_tokens) and the padded positions (batch x width) of every micro-batch
    taken from it: sink['tokens'], sink['padded'] (the timing callback reads and resets them)."""

    def __init__(self, it, sink: dict):
        self._it, self._sink = it, sink

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self._it)
        b = batch[0] if isinstance(batch, tuple) and len(batch) == 3 else batch
        self._sink["tokens"] = self._sink.get("tokens", 0) + sft_batch_tokens(b)
        self._sink["padded"] = self._sink.get("padded", 0) + int(b["tokens"].numel())
        return batch


def counting_data_step(data_step, sink: dict, dataloader_iter, *args, **kwargs):
    """A Megatron data step (NeMo's gpt_data_step) reading through CountingIterator, so that the
    real tokens of every micro-batch it takes add up in sink['tokens'].

    Returns:
        What ``data_step`` returns for that micro-batch, unchanged.
    """
    return data_step(CountingIterator(dataloader_iter, sink), *args, **kwargs)


def timing_summary(rows: list[dict], warmup_steps: int, world_size: int, n_params: int,
                   peak_tflops: float = 989.0) -> dict:
    """Throughput of the timed steps (those after ``warmup_steps``) from per-step rows
    {"step", "seconds", "tokens", "padded_tokens"?} (the job's real tokens and padded positions in
    that optimizer step; real_fraction says how much of the computed width was real):
    tokens/s for the job and per GPU, and MFU = 6 * n_params * (tokens/s per GPU) / peak
    (989 TFLOP/s: dense bf16, H100/H200 datasheet), as bench/throughput_common.py reports it.
    Raises ValueError when no step is left after the warm-up.

    Returns:
        ``timed_steps``, ``warmup_steps``, ``seconds`` (wall time of the timed steps), ``real_tokens``,
        ``padded_tokens``, ``real_fraction``, ``median_step_s``, ``tokens_per_s`` (the job),
        ``tokens_per_s_per_gpu``, ``mfu`` (a fraction of ``peak_tflops``), ``n_params``, ``world_size``.

    Raises:
        ValueError: no step ran after the warm-up steps.
    """
    import statistics

    timed = [r for r in rows if r["step"] > warmup_steps]
    if not timed:
        raise ValueError(f"no timed steps: {len(rows)} step(s) ran, {warmup_steps} of them warm-up")
    seconds, tokens = sum(r["seconds"] for r in timed), sum(r["tokens"] for r in timed)
    padded = sum(r.get("padded_tokens", r["tokens"]) for r in timed)
    tps = tokens / seconds
    per_gpu = tps / world_size
    return {"timed_steps": len(timed), "warmup_steps": warmup_steps, "seconds": round(seconds, 3),
            "real_tokens": tokens, "padded_tokens": padded, "real_fraction": round(tokens / max(1, padded), 4),
            "median_step_s": round(statistics.median(r["seconds"] for r in timed), 4),
            "tokens_per_s": round(tps, 1), "tokens_per_s_per_gpu": round(per_gpu, 1),
            "mfu": round(6.0 * n_params * per_gpu / (peak_tflops * 1e12), 4), "n_params": n_params,
            "world_size": world_size}


def build_time_objects(job: dict) -> tuple[dict, object, dict]:
    """phase_time's llm.finetune arguments: build_train_objects' with nothing restored (Megatron's
    random init), a logger without checkpoints, and the model's data step counting the real tokens
    of each micro-batch into the returned sink; plus the timing callback (attached to the trainer).

    Returns:
        ``(objs, timer, sink)``: the ``llm.finetune`` kwargs, the ``TimingCallback`` and the token
        counter dict it reads (``tokens``, ``padded``).
    """
    from nemo import lightning as nl

    from .nemo_extensions import TimingCallback

    s, paths = job["settings"], job["paths"]
    objs = build_train_objects(job)
    objs["resume"] = None
    objs["log"] = nl.NeMoLogger(name="nemo-time", log_dir=paths["log_dir"], use_datetime_version=False, ckpt=None)
    sink: dict = {}
    config = objs["model"].config
    config.data_step_fn = functools.partial(counting_data_step, config.data_step_fn, sink)
    timer = TimingCallback(sink, s["tp"] * s["pp"])
    objs["trainer"].callbacks.append(timer)
    return objs, timer, sink


def phase_time(job: dict) -> None:
    """Training throughput of the model shape in job['model_config'] from a random init (no
    checkpoint is read or written, no validation): the same model, data, optimizer, precision and
    parallel layout as phase_train, for settings.max_steps steps. Writes, on rank 0,
    results/<run>/nemo_timing.json: the per-step rows and timing_summary of the steps after
    job['timing']['warmup_steps'] (tokens/s per GPU, MFU with N = job['timing']['n_params'])."""
    from nemo.collections import llm

    s, paths, timing = job["settings"], job["paths"], job["timing"]
    objs, timer, _ = build_time_objects(job)
    t0 = time.time()
    llm.finetune(**objs)
    log.info("NeMo timing run: %d steps in %.1fs", s["max_steps"], time.time() - t0)
    if int(os.environ.get("RANK", "0")) == 0:
        summary = timing_summary(timer.rows, timing["warmup_steps"], s["world_size"], timing["n_params"])
        out = {"summary": summary, "settings": {k: s[k] for k in ("tp", "pp", "devices", "seq_length", "micro_batch_size",
                                                                 "global_batch_size", "precision", "max_steps")},
               "model_config": job["model_config"], "rows": timer.rows}
        path = Path(paths["run"]) / "nemo_timing.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1), encoding="utf-8")
        log.info("NeMo timing: %s", json.dumps(summary))


def last_checkpoint(log_dir: Path) -> Path:
    """The newest NeMo checkpoint folder (has weights/ and context/) under the run's log dir.

    Returns:
        The most recently modified such folder whose name ends in ``-last`` (NeMo's ``save_last``),
        or the most recent of all when none does.

    Raises:
        NemoWorkerError: there is none (run the train step first).
    """
    cands = [p.parent for p in Path(log_dir).rglob("weights") if (p.parent / "context").is_dir()]
    if not cands:
        raise NemoWorkerError(f"no NeMo checkpoint under {log_dir}: run the train step first")
    last = [c for c in cands if c.name.endswith("-last")]
    return max(last or cands, key=lambda p: p.stat().st_mtime)


def phase_predict(job: dict) -> None:
    """Generate answers for the job's test rows with the ``base`` checkpoint or the last fine-tuned one
    (``job["predict_which"]``), ``n_samples`` per row; rank 0 writes
    ``<nemo_dir>/predictions-<which>.jsonl`` (the predictions schema of predict.py).

    Raises:
        NemoWorkerError: no fine-tuned checkpoint to predict with.
    """
    from nemo import lightning as nl
    from nemo.collections.llm import api

    try:
        from megatron.core.inference.common_inference_params import CommonInferenceParams
    except ImportError:  # newer megatron-core
        from megatron.core.inference.sampling_params import SamplingParams as CommonInferenceParams

    from .predict import cut_at_stop

    s, paths = job["settings"], job["paths"]
    which = job["predict_which"]
    from ..io import read_jsonl

    rows = read_jsonl(Path(paths["dataset_root"], "test.jsonl"))
    originals = {r["id"]: r for r in job["test_rows"]}
    ckpt = Path(paths["base_ckpt"]) if which == "base" else last_checkpoint(Path(paths["log_dir"]))
    trainer = nl.Trainer(devices=s["devices"], num_nodes=s["num_nodes"], accelerator="gpu",
                         strategy=_strategy(job, for_inference=True), plugins=_precision_plugin(job))
    params = CommonInferenceParams(temperature=s["temperature"] if s["do_sample"] else 1.0,
                                   top_k=0 if s["do_sample"] else 1,
                                   top_p=s["top_p"] if s["do_sample"] else 0.0,
                                   num_tokens_to_generate=s["max_new_tokens"])
    kwargs = dict(path=ckpt, trainer=trainer, prompts=[r["input"] for r in rows], inference_params=params,
                  text_only=True, max_batch_size=s["batch_size"], random_seed=s["seed"])
    if "enable_flash_decode" in inspect.signature(api.generate).parameters:
        kwargs["enable_flash_decode"] = False  # needs TE / flash attention
    t0 = time.time()
    out_rows = []
    for k in range(s["n_samples"]):
        kwargs["random_seed"] = s["seed"] + k
        for r, text in zip(rows, api.generate(**kwargs)):
            o = originals[r["id"]]
            out_rows.append({"id": r["id"], "input": o["input"], "reference": o["output"],
                             "prediction": cut_at_stop(text, s["stop"]), "model": which, "sample": k})
    log.info("NeMo generate (%s, %s): %d prompts x %d in %.1fs", which, ckpt.name, len(rows), s["n_samples"],
             time.time() - t0)
    if int(os.environ.get("RANK", "0")) == 0:
        from .predict import write_predictions

        path = Path(paths["nemo_dir"]) / f"predictions-{which}.jsonl"
        write_predictions(path, out_rows)
        log.info("predictions (%s): %s (%d rows)", which, path, len(out_rows))


def check_export(ckpt: Path, hf_out: Path, hf_config: dict) -> int:
    """The exported Hugging Face weights, mapped back to Megatron's layout, must equal the NeMo
    checkpoint's (within bf16 rounding).

    Returns:
        The number of Megatron tensors compared (all equal within ``compare_weights``' tolerance).

    Raises:
        NemoWorkerError: a tensor differs (the first 20 differences are listed).
    """
    from safetensors.torch import load_file

    from .nemo_plan import compare_weights, expected_nemo_weights, flatten_nemo_checkpoint

    hf_sd = {}
    for f in sorted(Path(hf_out).glob("*.safetensors")):
        hf_sd.update(load_file(str(f)))
    expected = expected_nemo_weights(hf_sd, hf_config)
    problems = compare_weights(expected, flatten_nemo_checkpoint(load_nemo_weights(Path(ckpt))))
    if problems:
        raise NemoWorkerError(f"exported Hugging Face weights in {hf_out} differ from the NeMo checkpoint {ckpt}:\n  "
                         + "\n  ".join(problems[:20]))
    return len(expected)


def phase_export(job: dict) -> None:
    """Export the last (or ``export_source``) NeMo checkpoint to Hugging Face format and check it.

    Raises:
        NemoWorkerError: no checkpoint, its context is unreadable, or the export differs from it.
    """
    from nemo.collections import llm
    from nemo.lightning import io

    from .nemo_extensions import PlaybookLlamaExporter

    paths = job["paths"]
    ckpt = Path(job["export_source"]) if job.get("export_source") else last_checkpoint(Path(paths["log_dir"]))
    problem = context_problem(ckpt)
    if problem:
        raise NemoWorkerError(f"cannot export {ckpt}: {problem}")
    out = Path(job.get("export_target") or paths["export_dir"])
    io.model_exporter(llm.LlamaModel, "hf")(PlaybookLlamaExporter)
    t0 = time.time()
    with cpu_checkpoint_shims():
        llm.export_ckpt(path=ckpt, target="hf", output_path=out, overwrite=True)
    log.info("exported %s -> %s (Hugging Face format) in %.1fs", ckpt, out, time.time() - t0)
    n = check_export(ckpt, out, json.loads((out / "config.json").read_text(encoding="utf-8")))
    log.info("export check: all %d tensors equal the NeMo checkpoint's", n)


PHASES = {"import": phase_import, "verify": phase_verify, "train": phase_train, "predict": phase_predict,
          "export": phase_export, "time": phase_time}


def main(argv=None) -> int:
    """``python -m sft_playbook.sft.nemo_worker PHASE JOB.json``: run one phase.

    Returns:
        The exit code: 0, 1 when the phase raised ``NemoWorkerError`` (its message is printed on
        stderr), 2 for a wrong command line.
    """
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in PHASES:
        print(f"usage: python -m sft_playbook.sft.nemo_worker {{{'|'.join(PHASES)}}} JOB.json", file=sys.stderr)
        return 2
    from ..log import setup_logging

    setup_logging()   # the one set-up of every entry point (basicConfig would keep a stale handler)
    if NUMPY_ALIASES_ADDED:
        import numpy

        log.info("NumPy %s lacks %s (removed in NumPy 2.0; megatron-core 0.15.3 calls them): aliased as before",
                 numpy.__version__, ", ".join(f"np.{n}" for n in NUMPY_ALIASES_ADDED))
    job = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    try:
        PHASES[argv[0]](job)
    except NemoWorkerError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
