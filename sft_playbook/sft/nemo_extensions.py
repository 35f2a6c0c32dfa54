"""Our subclasses of NeMo and Lightning classes, for the NeMo worker phases (nemo_worker.py).

Plain module-level classes with plain imports: NeMo, Lightning and Megatron are imported when this
module is, which nemo_worker does inside the phase that needs them (the worker's own module stays
light: NeMo's checkpoint writer starts helper processes with 'spawn', which re-import it).
Being importable by name also lets NeMo's fiddle serialisation of a training context name them.

- ``PlaybookLlamaImporter`` / ``PlaybookLlamaModel``: Hugging Face -> NeMo conversion with our model
  config, synchronous checkpoint writing, the training dtype and the RMSNorm weights copied where
  the layer spec is TE-less.
- ``PlaybookLlamaExporter``: NeMo -> Hugging Face, also for TE-less models.
- ``MetricsCallback``: train loss / lr / val loss per step to metrics.jsonl.
- ``TimingCallback``: per-step wall time, real tokens, loss and peak memory for the timing phase.
"""
from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

from .nemo_compat import restore_numpy_aliases

restore_numpy_aliases()  # before megatron-core loads (it calls np.product; see nemo_worker and nemo_compat)

import torch
from lightning.pytorch import Callback
from megatron.core.transformer.module import MegatronModule
from nemo import lightning as nl
from nemo.collections import llm
from nemo.collections.llm.gpt.model.llama import HFLlamaExporter, HFLlamaImporter

log = logging.getLogger("sft_playbook.nemo")


def params_dtype(name: str):
    """The torch dtype called ``name`` (``bfloat16``, ``float16`` or ``float32``).

    Returns:
        ``torch.bfloat16``, ``torch.float16`` or ``torch.float32``.

    Raises:
        KeyError: ``name`` is none of the three.
    """
    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


def build_model_config(job: dict):
    """The NeMo Llama config of a job (``job["model_config"]``: Llama 3.1 when it has a RoPE
    scaling factor); on a machine without CUDA the weights are initialised on the CPU.

    Returns:
        An ``llm.Llama31Config`` (when ``rope_scaling_factor`` is set) or ``llm.LlamaConfig`` built
        from ``job["model_config"]``, its ``params_dtype`` as a torch dtype.
    """
    kw = dict(job["model_config"])
    kw["params_dtype"] = params_dtype(kw["params_dtype"])
    if not torch.cuda.is_available():  # conversion (and tests) on a CPU machine
        kw["use_cpu_initialization"] = True
    scale = kw.pop("rope_scaling_factor", None)
    if scale is not None:
        return llm.Llama31Config(scale_factor=scale, **kw)
    return llm.LlamaConfig(**kw)


NORM_FIXES = ((re.compile(r"decoder\.layers\.(\d+)\.input_layernorm\.weight$"), "model.layers.{}.input_layernorm.weight"),
              (re.compile(r"decoder\.layers\.(\d+)\.pre_mlp_layernorm\.weight$"), "model.layers.{}.post_attention_layernorm.weight"))


def copy_missing_norms(source_sd: dict, target_module) -> int:
    """Without TransformerEngine the Megatron layers keep RMSNorm as separate modules
    (input_layernorm / pre_mlp_layernorm), which NeMo's HF mapping (written for TE's fused
    linear_qkv.layer_norm_weight / linear_fc1.layer_norm_weight) never fills: they stay 1.0.
    Copy them from the HF state dict.

    Returns:
        How many norm weight tensors were copied (0 when the layer spec is TE's fused one).
    """
    n = 0
    with torch.no_grad():
        for name, param in target_module.named_parameters():
            for pattern, src in NORM_FIXES:
                m = pattern.search(name)
                if m:
                    param.copy_(source_sd[src.format(m.group(1))].to(param.dtype))
                    n += 1
    return n


TE_LESS_NORMS = ((".input_layernorm.weight", ".self_attention.linear_qkv.layer_norm_weight"),
                 (".pre_mlp_layernorm.weight", ".mlp.linear_fc1.layer_norm_weight"))


class PlaybookLlamaImporter(HFLlamaImporter):
    """NeMo's Llama importer with: our config (fusions only with TE), synchronous checkpoint
    writing, and the RMSNorm weights copied when the layer spec is TE-less.

    NeMo builds the importer itself, from the source path alone; the job it converts for is set on
    the class before that (``job``, by ``nemo_worker.phase_import``)."""

    job: dict | None = None

    @property
    def config(self):
        """The NeMo model config of the job (``nemo_worker.build_model_config``)."""
        return build_model_config(self.job)

    def nemo_setup(self, model, trainer=None, *args, **kwargs):
        """NeMo's setup with a CPU trainer whose checkpoints are written synchronously.

        Returns:
            The trainer NeMo's ``nemo_setup`` set up with ``model`` (the given one, else the CPU trainer).
        """
        trainer = trainer or nl.Trainer(devices=1, accelerator="cpu", strategy=nl.MegatronStrategy(
            ckpt_save_optimizer=False, always_save_context=True, ckpt_async_save=False))
        return super().nemo_setup(model, trainer, *args, **kwargs)

    def convert_state(self, source, target):
        """NeMo's conversion, with the Hugging Face weights cast to the training dtype (and each norm
        module to its NeMo counterpart's dtype), then the RMSNorm weights a TE-less layer spec left
        at 1.0 copied from the Hugging Face weights (logged with their count).

        Returns:
            What NeMo's conversion returns: the target (NeMo) module holding the converted weights.
        """
        # NeMo's transforms require equal dtypes: bring the HF weights to the training dtype
        # (e.g. an fp32 HF folder into a bf16 NeMo checkpoint) instead of failing.
        # Without TE the separate RMSNorm modules keep fp32 parameters in a bf16 model: cast
        # each HF module to the dtype of its NeMo counterpart.
        want = params_dtype(self.job["model_config"]["params_dtype"])
        if hasattr(source, "named_modules"):
            norm_dtype = next((p.dtype for n, p in target.named_parameters() if n.endswith("final_layernorm.weight")), want)
            if getattr(source, "dtype", want) != want:
                log.info("casting the Hugging Face weights from %s to %s", source.dtype, want)
                source = source.to(want)
            if norm_dtype != want:
                for name, module in source.named_modules():
                    if "norm" in name.rsplit(".", 1)[-1]:
                        module.to(norm_dtype)
        result = super().convert_state(source, target)
        fixed = copy_missing_norms(source.state_dict(), target)
        if fixed:
            log.warning("no TransformerEngine: NeMo's importer leaves RMSNorm weights at 1.0; copied %d of them "
                        "from the Hugging Face weights", fixed)
        return result


class PlaybookLlamaModel(llm.LlamaModel):
    """Only selects ``PlaybookLlamaImporter`` (registered for it); the saved model is a LlamaModel."""


class SourceView:
    """What NeMo's apply_transforms reads from the source model (its config and state_dict()), with
    TE-less RMSNorm keys renamed to the TE names NeMo's HF mapping expects and every floating
    tensor cast to the Hugging Face model's dtype (NeMo asserts the target keeps its dtypes)."""

    def __init__(self, module, dtype):
        self.config, self._module, self._dtype = module.config, module, dtype

    def state_dict(self):
        """The module's state dict with TE-less norm keys renamed and floating tensors cast.

        Returns:
            A new dict, key -> tensor (same tensors where no cast was needed), in the module's key order.
        """
        out = {}
        for key, value in self._module.state_dict().items():
            for old, new in TE_LESS_NORMS:
                if key.endswith(old) and ".layers." in key:
                    key = key[: -len(old)] + new
            if hasattr(value, "is_floating_point") and value.is_floating_point():
                value = value.to(self._dtype)
            out[key] = value
        return out


class PlaybookLlamaExporter(HFLlamaExporter):
    """NeMo's Llama -> HF exporter, also for TE-less models: without TransformerEngine the
    RMSNorm weights live in separate modules (input_layernorm / pre_mlp_layernorm, fp32 in a
    bf16 model), which NeMo's mapping (TE's fused layer_norm_weight names) does not find."""

    def convert_state(self, source, target, source_config=None):
        """NeMo's conversion; a TE-less source is read through ``SourceView`` (norm keys renamed,
        tensors cast to the target's dtype) and the number of such norms is logged.

        Returns:
            What NeMo's conversion returns: the target Hugging Face model holding the converted weights.
        """
        module = source.module if isinstance(getattr(source, "module", None), MegatronModule) else source
        keys = list(module.state_dict())
        n = sum(1 for k in keys for old, _ in TE_LESS_NORMS if k.endswith(old) and ".layers." in k)
        if n == 0 or self.is_llama4():
            return super().convert_state(source, target, source_config)
        log.info("no TransformerEngine: exported %d separate RMSNorm weights under their HF names", n)
        dtype = next(target.parameters()).dtype
        return super().convert_state(SourceView(module, dtype), target, source_config)


class MetricsCallback(Callback):
    """Writes train loss / lr / val loss per step to ``path`` (results/<run>/metrics.jsonl), rank 0 only."""

    def __init__(self, path: Path):
        self.path = path
        self.t0 = time.time()

    def _write(self, trainer, row):
        if trainer.global_rank != 0:
            return
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        """One row: step, seconds since the callback was made, train loss and learning rate (when known)."""
        m = trainer.callback_metrics
        loss = m.get("reduced_train_loss", m.get("train_loss"))
        row = {"step": int(trainer.global_step), "time_s": round(time.time() - self.t0, 2)}
        if loss is not None:
            row["train_loss"] = float(loss)
        lr = m.get("lr")
        if lr is None and trainer.optimizers:
            try:
                lr = trainer.optimizers[0].param_groups[0]["lr"]
            except (AttributeError, IndexError, KeyError, TypeError):
                lr = None
        if lr is not None:
            row["lr"] = float(lr)
        self._write(trainer, row)

    def on_validation_end(self, trainer, pl_module):
        """One row with the validation loss (not during the sanity check)."""
        val = trainer.callback_metrics.get("val_loss")
        if val is not None and not trainer.sanity_checking:
            self._write(trainer, {"step": int(trainer.global_step), "val_loss": float(val)})


class TimingCallback(Callback):
    """Per optimizer step: wall time (GPU synchronised at both ends), the job's real tokens (summed
    over ranks, divided by the model-parallel size that shares each micro-batch), the train loss,
    and the peak GPU memory; rows kept on every rank (``rows``), written by rank 0.

    Args:
        sink: the dict ``nemo_worker.counting_data_step`` adds each micro-batch's real and padded
            token counts to (reset here at the start of every step).
        model_parallel: tensor x pipeline parallel size.
    """

    def __init__(self, sink: dict, model_parallel: int):
        self.sink, self.model_parallel = sink, model_parallel
        self.rows, self.t0 = [], None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        """Synchronise the GPU, reset the token counts and start the clock."""
        torch.cuda.synchronize()
        self.sink["tokens"] = self.sink["padded"] = 0
        self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        """Synchronise the GPU and add the step's row (seconds, tokens, padded tokens, loss, peak GiB)."""
        torch.cuda.synchronize()
        seconds = time.perf_counter() - self.t0
        counts = torch.tensor([float(self.sink.get("tokens", 0)), float(self.sink.get("padded", 0))], device="cuda")
        if torch.distributed.is_initialized():
            torch.distributed.all_reduce(counts)
        tokens, padded = (int(round(x / self.model_parallel)) for x in counts.tolist())
        loss = trainer.callback_metrics.get("reduced_train_loss", trainer.callback_metrics.get("train_loss"))
        self.rows.append({"step": len(self.rows) + 1, "seconds": round(seconds, 4),
                          "tokens": tokens, "padded_tokens": padded,
                          "train_loss": None if loss is None else round(float(loss), 4),
                          "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)})
