"""SFT recipe, native backend: convert -> train -> predict -> evaluate.

The whole training loop is in this file (`SFTRecipe.train`), torchtune style: typed settings in
(`settings.SftSettings`, checked before any work; a config mapping is checked on the way in),
visible lines for accumulation, DDP / FSDP2, bf16 autocast, clipping, schedule, validation,
checkpoints and resume. Single process by default; under `torchrun` one process per GPU.

The NeMo backend (`backend: nemo`) gets the same steps: `main` hands it (cfg, steps, args), and it
can reuse `model.prepare_model`, `data.read_split` / `data.build_prompt`, `predict.write_predictions`
(the predictions.jsonl schema) and `report.evaluate_run`.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import time
from pathlib import Path

from ..cli import run_steps
from ..config import ConfigError, dump_config
from ..io import require_free_bytes, write_text_atomic
from ..paths import discard_checkpoints, resolve, run_dir
from ..settings import SftSettings, TrainSettings, as_section, build
from . import data as D
from . import fast
from .model import ModelError, attention_name, load_model, load_tokenizer, prepare_model

log = logging.getLogger(__name__)


def main(cfg: SftSettings | dict, steps: list[str], args=None) -> int:
    """Run the SFT steps (``convert``, ``train``, ``predict``, ``evaluate``) with the configured backend
    (``native`` here, ``nemo`` handed to ``nemo_backend.main``).

    Args:
        cfg: the SFT config.
        steps: the steps, in order.
        args: the parsed command line (passed on to the NeMo backend).

    Returns:
        The exit code: 0, or 2 after an unknown backend or a model, data or resume error (logged as
        one line).

    Raises:
        ValueError: an unknown step name.
    """
    try:
        cfg = build("sft", cfg)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    if cfg.backend == "nemo":
        from . import nemo_backend

        return nemo_backend.main(cfg, steps, args)

    def train() -> None:
        recipe = SFTRecipe(cfg)
        try:
            recipe.setup()
            recipe.train()
        finally:
            recipe.cleanup()

    def predict() -> None:
        from .predict import predict_run

        predict_run(cfg)

    def evaluate() -> None:
        from .report import evaluate_run

        evaluate_run(cfg)

    return run_steps(steps, {"convert": lambda: log.info("model folder: %s", prepare_model(cfg)), "train": train,
                             "predict": predict, "evaluate": evaluate}, (ModelError, D.DataError, ResumeError))


def lr_at(step: int, tcfg: TrainSettings | dict) -> float:
    """Linear warmup to lr, then cosine down to lr * min_lr_ratio at max_steps. `step` counts from 0.
    ``tcfg``: the ``train:`` settings (a mapping is checked: ConfigError naming ``train.<key>``).

    Returns:
        The learning rate for optimizer step ``step`` (a float, in the units of ``train.lr``).
    """
    tcfg = as_section(TrainSettings, tcfg, "train")
    lr, warm, total = tcfg.lr, tcfg.warmup_steps, tcfg.max_steps
    if step < warm:
        return lr * (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    floor = lr * tcfg.min_lr_ratio
    return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def loss_sum_and_count(model, batch, device, autocast_dtype):
    """Sum of token cross-entropies over the output tokens of a micro-batch, and their count.

    `model` is a `fast.LossModel` (possibly wrapped by DDP / FSDP2): the loss is computed inside its
    forward, as the full fp32 logits or chunked (train.loss).

    Returns:
        ``(loss_sum, n_tokens)``: 0-d tensors on ``device``: the summed cross-entropy in nats over the
        micro-batch's output tokens (targets not -100) and the number of those tokens.
    """
    import torch

    batch = {k: (v.to(device, non_blocking=True) if hasattr(v, "to") else v) for k, v in batch.items()}
    with torch.autocast(device_type=device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        return model(**batch)


def wrap_parallel(loss_module, parallel: str, world: int, device, autocast_dtype, reshard_after_forward: bool = True,
                  ddp_bucket_cap_mb: int | None = None, reduce_bf16: bool = False, fsdp_prefetch: bool = False):
    """The trained module as the training step runs it: `loss_module` itself on one process; under
    torchrun (world > 1) FSDP2 (`parallel="fsdp"`: each decoder layer, then the whole, sharded; bf16
    compute, fp32 gradient reduction) or DDP (anything else). reshard_after_forward: FSDP2 frees each
    layer's gathered weights after its forward (False keeps them for the backward: one all-gather per
    layer and micro-batch instead of two, more memory). ddp_bucket_cap_mb: DDP's gradient bucket size
    (None: DDP's default, 25 MB). reduce_bf16: gradients cross the link in bf16 (FSDP2 reduce_dtype,
    DDP's bf16 compression hook): half the bytes, bf16 rounding of each rank's contribution.
    fsdp_prefetch: FSDP2 issues layer i+1's all-gather when layer i starts its forward (i-1's when i
    starts its backward) instead of when the next layer is reached.

    Returns:
        The module to train: ``loss_module`` itself (one process, or sharded in place by FSDP2), or a
        ``DistributedDataParallel`` wrapping it.
    """
    import torch

    if world <= 1:
        return loss_module
    if parallel == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        reduce = torch.bfloat16 if reduce_bf16 else torch.float32
        mp = MixedPrecisionPolicy(param_dtype=autocast_dtype, reduce_dtype=reduce) \
            if autocast_dtype is not None else MixedPrecisionPolicy()
        layers = list(_decoder_layers(loss_module))
        for layer in layers:
            fully_shard(layer, mp_policy=mp, reshard_after_forward=reshard_after_forward)
        fully_shard(loss_module, mp_policy=mp, reshard_after_forward=reshard_after_forward)
        if fsdp_prefetch:
            for i, layer in enumerate(layers):
                if i + 1 < len(layers):
                    layer.set_modules_to_forward_prefetch([layers[i + 1]])
                if i > 0:
                    layer.set_modules_to_backward_prefetch([layers[i - 1]])
        return loss_module
    from torch.nn.parallel import DistributedDataParallel as DDP

    extra = {"bucket_cap_mb": ddp_bucket_cap_mb} if ddp_bucket_cap_mb else {}
    model = DDP(loss_module, device_ids=[device.index] if device.type == "cuda" else None, **extra)
    if reduce_bf16:
        from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import bf16_compress_hook

        model.register_comm_hook(None, bf16_compress_hook)
    return model


def build_optimizer(params, lr: float, betas, weight_decay: float, fused: bool = True):
    """AdamW over `params` (the fp32 master weights); fused: torch's fused implementation (one kernel
    for the whole update), else its default (foreach).

    Returns:
        A ``torch.optim.AdamW`` over ``params``.
    """
    import torch

    return torch.optim.AdamW(params, lr=lr, betas=tuple(float(b) for b in betas), weight_decay=weight_decay,
                             fused=bool(fused))


def train_step(model, optimizer, micro_batches: list[dict], device, autocast_dtype, world: int = 1,
               parallel: str = "ddp", grad_clip: float = 1.0, real_tokens: int = 0,
               fsdp_sync_every_micro_batch: bool = True):
    """One optimizer step of the recipe over this rank's micro-batches (`bench/throughput_ours.py`
    times this same function).

    model: the module `wrap_parallel` returned (a `fast.LossModel`, possibly in DDP / FSDP2);
    micro_batches: collated batches (`SFTRecipe.collate`); real_tokens: non-pad input tokens of this
    rank's micro-batches. The loss is normalised by the output tokens of the whole global batch (all
    ranks): exact under accumulation, packing and uneven lengths. DDP skips the gradient all-reduce on
    all but the last micro-batch; FSDP2 does too when fsdp_sync_every_micro_batch is False (it then
    keeps unsharded fp32 gradients between micro-batches).

    Returns:
        ``(loss_sum, n_tokens, real_tokens, grad_norm)``: the summed token loss (nats) and output
        tokens of all ranks, the real (non-pad) input tokens of all ranks, and the gradient norm before
        clipping; 0-d tensors on ``device`` (nothing waits for the GPU).
    """
    import torch
    import torch.distributed as dist

    counts = torch.tensor([sum(int((b["targets"] != D.IGNORE).sum()) for b in micro_batches), real_tokens],
                          device=device, dtype=torch.float32)
    if world > 1:
        dist.all_reduce(counts)
    n_tokens = counts[0]
    fsdp = world > 1 and parallel == "fsdp"
    loss_total = torch.zeros((), device=device)
    for i, batch in enumerate(micro_batches):
        last = i == len(micro_batches) - 1
        ctx = contextlib.nullcontext()
        if world > 1 and not last and not fsdp:
            ctx = model.no_sync()
        if fsdp and not fsdp_sync_every_micro_batch:
            model.set_requires_gradient_sync(last)
        with ctx:
            loss_sum, _ = loss_sum_and_count(model, batch, device, autocast_dtype)
            # DDP / FSDP average gradients over ranks, so scale by world to get a sum over ranks.
            (loss_sum * world / n_tokens.clamp(min=1)).backward()
        loss_total += loss_sum.detach()
    grad_norm = torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if world > 1:
        dist.all_reduce(loss_total)
    return loss_total, n_tokens, counts[1], grad_norm


class SFTRecipe:
    """The native training recipe: ``setup()`` (process group, model, data, optimizer, resume),
    ``train()`` (the whole loop), ``cleanup()``; ``cfg`` is the SFT settings, outputs go to the run folder.
    """
    def __init__(self, cfg: SftSettings | dict):
        cfg = build("sft", cfg)
        self.cfg, self.tcfg, self.dcfg = cfg, cfg.train, cfg.data
        self.out = run_dir(cfg)

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        """Prepare everything ``train`` needs: the process group under torchrun, device and precision, the
        model (LoRA or full, with the speed options), the encoded data and step schedule, the
        optimizer, the metrics tracker, and the state of the checkpoint to resume from.

        Raises:
            ModelError: the model cannot be loaded or an option does not fit it.
            DataError: a split is missing or malformed, or nothing is left to train on.
            ResumeError: the checkpoint to resume from does not match this run.
        """
        import torch
        import torch.distributed as dist

        cfg, tcfg = self.cfg, self.tcfg
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1:
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
            self.device = torch.device("cuda", local_rank)
        else:
            self.device = torch.device("cpu")
            if tcfg.threads:
                torch.set_num_threads(tcfg.threads)
        precision = tcfg.precision
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" else "fp32"
        self.autocast_dtype = torch.bfloat16 if precision == "bf16" else None
        self.is_main = self.rank == 0
        torch.manual_seed(cfg.seed)

        # Resume: the checkpoint's settings are compared with these before anything is loaded.
        self.ckpt = latest_checkpoint(run_dir(cfg)) if cfg.resume else None
        self.resume_state, self.resume_changes = None, {}
        if self.ckpt is not None:
            self.resume_state = torch.load(self.ckpt / "trainer_state.pt", map_location="cpu", weights_only=False)
            self.resume_changes = check_resume_settings(self.resume_state.get("config") or {}, cfg.source, self.ckpt,
                                                        quiet=not self.is_main)

        # Model and tokenizer: fp32 master weights; bf16 only inside autocast.
        model_dir = prepare_model(cfg) if self.is_main or self.world == 1 else None
        if self.world > 1:
            holder = [str(model_dir) if model_dir else None]
            dist.broadcast_object_list(holder, src=0)
            model_dir = Path(holder[0])
        self.model_dir = model_dir
        self.tokenizer = load_tokenizer(model_dir)
        model = load_model(model_dir)
        if tcfg.gradient_checkpointing:
            model.gradient_checkpointing_enable()
            model.config.use_cache = False
        if tcfg.method == "lora":
            from peft import LoraConfig, get_peft_model

            lcfg = cfg.lora
            model = get_peft_model(model, LoraConfig(r=lcfg.r, lora_alpha=lcfg.alpha,
                                                     lora_dropout=lcfg.dropout,
                                                     target_modules=list(lcfg.target_modules),
                                                     task_type="CAUSAL_LM"))
        if self.ckpt is not None:  # weights into the plain model, before DDP / FSDP take it
            self.load_weights(model, self.ckpt)
        # Speed options (sft_playbook/sft/fast.py); each keeps the loss exact or is refused / replaced.
        # Attention: varlen where it computes what the model's own attention does, else what the
        # model supports (transformers' pick at load: sdpa, or eager for e.g. Gemma-2).
        wanted, self.attention = tcfg.attention, attention_name(model)
        if self.dcfg.packing:
            why_not = fast.packing_unsupported(model, self.dcfg.max_seq_len)
            if why_not:
                raise ModelError(f"data.packing=true does not fit {type(model).__name__}: {why_not}; "
                                 "use data.packing=false")
        why = fast.varlen_unsupported(model, self.dcfg.max_seq_len) if wanted == "varlen" else None
        if wanted == "varlen" and why is None:
            fast.use_varlen_attention(model)
            self.attention = "varlen"
        elif wanted != self.attention:
            log.warning("train.attention=%s: not for %s (%s); running %s attention", wanted, type(model).__name__,
                        why or "the model does not support it", self.attention)
        log.info("attention: %s%s", self.attention,
                 f" ({fast.varlen_backend(self.device.type)})" if self.attention == "varlen" else "")
        self.compiled = tcfg.compile
        model.to(self.device)
        self.raw_model = model
        self.loss_module = fast.loss_model(model, tcfg.loss, tcfg.loss_chunk_size,
                                           self.autocast_dtype, compile_loss=self.compiled)
        if self.compiled:
            log.info("torch.compile: %d decoder layers (compiled on the first steps)", fast.compile_layers(model))
        fsdp = {}
        if self.world > 1 and tcfg.parallel == "fsdp":
            fsdp = {"reshard_after_forward": tcfg.fsdp_reshard_after_forward,
                    "reduce_bf16": tcfg.fsdp_reduce_dtype == "bf16"}
        self.model = wrap_parallel(self.loss_module, tcfg.parallel, self.world, self.device, self.autocast_dtype,
                                   **fsdp)
        params = [p for p in self.raw_model.parameters() if p.requires_grad]
        self.n_trainable = sum(p.numel() for p in params)
        self.optimizer = build_optimizer(params, tcfg.lr, tcfg.betas, tcfg.weight_decay,
                                         fused=self.device.type == "cuda" or tcfg.parallel != "fsdp"
                                         or self.world == 1)
        self.consumed = 0  # training items (samples, or packs) taken from the stream so far

        # Batch geometry: global = micro * accumulation * world.
        # (global_batch_size divisible by micro x world: checked with the settings, before any work)
        micro, glob = tcfg.micro_batch_size, tcfg.global_batch_size
        self.micro, self.accum = micro, glob // (micro * self.world)

        # Data: read, format, count what was truncated or dropped.
        data_dir, level, seq = resolve(cfg.data_dir), cfg.level, self.dcfg.max_seq_len
        train_rows = D.read_split(data_dir, level, "train", self.dcfg.max_train_samples)
        val_rows = D.read_split(data_dir, level, "validation", self.dcfg.max_val_samples)
        enc_train = D.encode_rows(train_rows, self.tokenizer, self.dcfg, seq)
        enc_val = D.encode_rows(val_rows, self.tokenizer, self.dcfg, seq)
        for name, enc in (("train", enc_train), ("validation", enc_val)):
            log.log(*D.describe_counts(name, enc.stats, seq, self.dcfg.overlength))
        self.data_stats = {"train": dict(enc_train.stats), "validation": dict(enc_val.stats)}
        self.data_digest = examples_digest(enc_train.examples)
        self.packed = self.dcfg.packing
        self.schedule = D.StepSchedule(enc_train.examples, cfg.seed, glob, self.packed, seq,
                                       self.dcfg.pack_strategy)
        # Every rank runs the same number of validation forwards (FSDP all-gathers in each one);
        # a rank short of batches repeats its first one with weight 0.
        # Collated once here: validation runs the same batches every time.
        self.pad_id = self.tokenizer.pad_token_id
        all_val = D.eval_batches(enc_val.examples, micro)
        per_rank = -(-len(all_val) // self.world)
        mine = all_val[self.rank::self.world]
        self.val_batches = [(self.collate(b, train=False), 1.0) for b in mine] + \
            [(self.collate(all_val[0], train=False), 0.0)] * (per_rank - len(mine))

        # Output folder, effective config, resume point.
        self.out.mkdir(parents=True, exist_ok=True)
        if self.is_main:  # room for one checkpoint (weights + AdamW's 2 fp32 moments) now, not at the first save
            require_free_bytes(self.out, sum(p.numel() * p.element_size() for p in self.raw_model.parameters())
                               + 8 * self.n_trainable, "one checkpoint")
        self.start_step = 0
        ckpt = self.ckpt
        if cfg.resume and ckpt is None:
            log.warning("resume=true but %s has no checkpoint: starting from step 0", self.out / "checkpoints")
        if ckpt is not None:
            self.start_step = self.load_checkpoint(ckpt)
            if self.start_step > tcfg.max_steps:
                raise ResumeError(f"resume from {ckpt}: the checkpoint is at step {self.start_step}, past "
                                  f"train.max_steps={tcfg.max_steps}; raise train.max_steps or start a new run")
            log.info("resuming from %s at step %d, training item %d of the stream (epoch %.4f)", ckpt,
                     self.start_step, self.consumed, self.schedule.epoch_at(self.consumed))
        elif self.is_main and (self.out / "checkpoints").exists():
            discard_checkpoints(self.out)  # says what it removes (paths.py)
        if self.is_main:
            write_text_atomic(self.out / "config.yaml", dump_config(self.cfg.source))
        from .tracking import Tracker

        self.tracker = Tracker(self.out, cfg, self.start_step if ckpt else None, enabled=self.is_main)
        log.info("training %s (%s, %.1fM trainable params) on %s x%d, %s; micro %d x accum %d x world %d = global %d; "
                 "%d train items/epoch%s", model_dir.name, tcfg.method, self.n_trainable / 1e6, self.device.type,
                 self.world, precision, micro, self.accum, self.world, glob, self.schedule.items_per_epoch,
                 " (packed)" if self.packed else "")

    # ------------------------------------------------------------------ train
    def train(self) -> None:
        """The training loop: ``train.max_steps`` optimizer steps with gradient accumulation, clipping,
        the learning rate schedule, validation every ``eval_every`` steps, checkpoints every
        ``save_every`` steps, then the final model saved in the run folder.
        """
        from tqdm import tqdm

        tcfg, model, opt = self.tcfg, self.model, self.optimizer
        max_steps, eval_every, save_every = tcfg.max_steps, tcfg.eval_every, tcfg.save_every
        stop_at = tcfg.stop_at_step if tcfg.stop_at_step is not None else max_steps
        if self.start_step == 0:
            self.tracker.log({"step": 0, "val_loss": self.validate()})
        self.best = self._read_best() if self.start_step else self._clear_best()
        self.last_val = None
        train_seconds, tokens_seen = 0.0, 0  # time in forward/backward/step only (no validation, no saving)
        bar = tqdm(range(self.start_step, min(max_steps, stop_at)), desc="train", disable=not self.is_main,
                   initial=self.start_step, total=max_steps)
        step = self.start_step
        for step in bar:
            t_step = time.time()
            lr = lr_at(step, tcfg)
            for group in opt.param_groups:
                group["lr"] = lr
            model.train()
            items = self.schedule.items_at(self.consumed, tcfg.global_batch_size)
            mine = items[self.rank * self.micro * self.accum:(self.rank + 1) * self.micro * self.accum]
            micro_batches = [self.collate(mine[i:i + self.micro]) for i in range(0, len(mine), self.micro)]
            real = sum(len(ex["input_ids"]) for item in mine for ex in item)
            loss_total, n_tokens, n_real, grad_norm = train_step(
                model, opt, micro_batches, self.device, self.autocast_dtype, world=self.world,
                parallel=tcfg.parallel, grad_clip=tcfg.grad_clip, real_tokens=real)
            train_loss = float(loss_total / n_tokens.clamp(min=1))  # float() waits for the GPU
            train_seconds += time.time() - t_step
            self.consumed += len(items)
            tokens_seen += int(n_real)  # real (non-pad) tokens, all ranks
            row = {"step": step + 1, "train_loss": train_loss, "lr": lr, "grad_norm": float(grad_norm),
                   "epoch": round(self.schedule.epoch_at(self.consumed), 4), "target_tokens": int(n_tokens),
                   "tokens_per_s": round(tokens_seen / max(1e-9, train_seconds), 1),
                   "step_s": round(time.time() - t_step, 4)}
            if eval_every and ((step + 1) % eval_every == 0 or step + 1 == max_steps):
                row["val_loss"] = self.last_val = self.validate()
            self.tracker.log(row)
            if "val_loss" in row and tcfg.keep_best:
                self.keep_if_best(step + 1, row["val_loss"])
            bar.set_postfix(loss=f"{train_loss:.3f}", lr=f"{lr:.2e}",
                            **({"val": f"{row['val_loss']:.3f}"} if "val_loss" in row else {}))
            if (save_every and (step + 1) % save_every == 0) or step + 1 == max_steps or step + 1 == stop_at:
                self.save_checkpoint(step + 1)
        bar.close()
        done = step + 1 if max_steps > self.start_step else self.start_step
        if done >= max_steps:
            self.save_final()
        else:
            log.info("stopped at step %d of %d (train.stop_at_step); continue with resume=true", done, max_steps)
        self.train_seconds = train_seconds

    def collate(self, items, train: bool = True):
        """A micro-batch: padded / 4D-masked (sdpa) or one row with sample boundaries (varlen).
        Validation items are single examples, never packed.

        Returns:
            The batch dict of CPU tensors: ``fast.collate_varlen``'s (``[1, T]`` rows and
            ``cu_seq_lens``) with varlen attention, else ``data.collate``'s (``[batch, seq_len]``
            tensors and a 2D or 4D attention mask).
        """
        if self.attention == "varlen":
            # training rows get a fixed width under torch.compile, so the compiled layers see one shape
            pad_to = self.micro * self.dcfg.max_seq_len if self.compiled and train else None
            return fast.collate_varlen(items, self.pad_id, pad_to)
        # eager attention adds the mask to the scores: it needs 0 / -inf, not True / False
        return D.collate(items, self.pad_id, self.packed and train, additive_mask=self.attention == "eager")

    def validate(self) -> float:
        """Mean token loss over the validation split (every rank takes its share).

        Returns:
            The mean cross-entropy per output token, in nats, over all ranks (0.0 with no output tokens).
        """
        import torch
        import torch.distributed as dist

        self.model.eval()
        total = torch.zeros(2, device=self.device)
        with torch.no_grad():
            fsdp = self.world > 1 and self.tcfg.parallel == "fsdp"
            for batch, weight in self.val_batches:
                s, n = loss_sum_and_count(self.model if fsdp else self.loss_module, batch, self.device,
                                          self.autocast_dtype)
                total += weight * torch.stack([s.float(), n.float()])
        if self.world > 1:
            dist.all_reduce(total)
        return float(total[0] / total[1].clamp(min=1))

    # ------------------------------------------------------------ checkpoints
    def _full_state(self):
        """Trainable weights and optimizer state as full (unsharded) CPU tensors keyed by parameter
        name, the same under one process, DDP and FSDP2 (torch.distributed.checkpoint.state_dict);
        rank 0 gets them (the other ranks of FSDP get empty dicts).

        Returns:
            ``(model_state, optimizer_state)``: the full state dicts, keyed by parameter name.
        """
        from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                             get_optimizer_state_dict)

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return (get_model_state_dict(self.raw_model, options=opts),
                get_optimizer_state_dict(self.raw_model, self.optimizer, options=opts))

    def save_checkpoint(self, step: int) -> None:
        """Save ``checkpoints/step_<step>``: the model (Hugging Face format), optimizer, data position, RNG
        states and config, written to a temporary folder and renamed into place by rank 0; older
        checkpoints beyond ``train.keep_checkpoints`` are removed. All ranks wait for it.
        """
        import torch
        import torch.distributed as dist

        model_sd, optim_sd = self._full_state()
        if self.is_main:
            ckpt_root = self.out / "checkpoints"
            tmp, final = ckpt_root / f".step_{step:06d}.tmp", ckpt_root / f"step_{step:06d}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            self._save_hf(tmp, model_sd)
            torch.save({"format": CHECKPOINT_FORMAT, "optimizer": optim_sd, "step": step, "consumed": self.consumed,
                        "rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
                        "config": self.cfg.source, "world_size": self.world, "parallel": self.tcfg.parallel,
                        "data": {"train_examples": len(self.schedule.examples), "digest": self.data_digest,
                                 "items_per_epoch": self.schedule.items_per_epoch}}, tmp / "trainer_state.pt")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            keep = self.tcfg.keep_checkpoints
            older = sorted(ckpt_root.glob("step_*"))[:-keep] if keep > 0 else []
            for old in older:
                shutil.rmtree(old)
            log.info("checkpoint saved: %s%s", final, f" (older removed, train.keep_checkpoints={keep}: "
                     f"{', '.join(p.name for p in older)})" if older else "")
        if self.world > 1:
            dist.barrier()

    def _save_hf(self, folder: Path, model_sd: dict) -> None:
        """HF format: full model (safetensors) or, for LoRA, the adapter; plus the tokenizer.
        Tied weights (lm_head = embeddings) are written once, whatever mode gathered them."""
        names = {n for n, _ in self.raw_model.named_parameters()} | {n for n, _ in self.raw_model.named_buffers()}
        model_sd = {k: v for k, v in model_sd.items() if k in names}
        self.raw_model.save_pretrained(folder, state_dict=model_sd, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)

    def load_weights(self, model, ckpt: Path) -> None:
        """The checkpoint's weights into the plain (not yet DDP / FSDP) model: the same on every rank.

        Raises:
            ModelError: the checkpoint's weights do not match the model (a LoRA adapter with unexpected
                keys, or full weights with missing or unexpected keys).
        """
        from safetensors.torch import load_file

        if self.tcfg.method == "lora":
            from peft import set_peft_model_state_dict

            result = set_peft_model_state_dict(model, load_file(ckpt / "adapter_model.safetensors"))
            unexpected = list(getattr(result, "unexpected_keys", None) or [])
            if unexpected:
                raise ModelError(f"checkpoint {ckpt} does not match the adapter: unexpected {unexpected[:3]}")
            return
        sd = {}
        for f in sorted(ckpt.glob("*.safetensors")):
            sd.update(load_file(f))
        missing, unexpected = model.load_state_dict(sd, strict=False)
        missing = [m for m in missing if not m.endswith("lm_head.weight")]  # tied to the embeddings
        if missing or unexpected:
            raise ModelError(f"checkpoint {ckpt} does not match the model: missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}")

    def load_checkpoint(self, ckpt: Path) -> int:
        """Optimizer state, data position and RNG from the checkpoint (weights: `load_weights`).
        Loads under any parallel mode and world size.

        Returns:
            The optimizer step to continue at (the checkpoint's step count).

        Raises:
            ResumeError: the training examples' digest differs from the checkpoint's (the train split or
                its formatting changed).
        """
        import torch
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        state = self.resume_state
        old_cfg = state.get("config") or {}
        data = state.get("data")
        if data is not None and data.get("digest") != self.data_digest:
            raise ResumeError(f"resume from {ckpt}: the training examples differ from the checkpoint's "
                              f"({data.get('train_examples')} examples then, {len(self.schedule.examples)} now, "
                              f"digest {str(data.get('digest'))[:12]} vs {self.data_digest[:12]}): the train split or "
                              "its formatting changed; resume needs the same data (or start a new run)")
        if data is None:
            log.warning("resume: %s predates the data check; assuming the same training examples", ckpt)
        optim_sd = state["optimizer"]
        if any(isinstance(k, int) for k in optim_sd.get("state", {})) or \
                any(isinstance(p, int) for g in optim_sd.get("param_groups", []) for p in g["params"]):
            optim_sd = _named_optimizer_state(self.raw_model, optim_sd)  # older checkpoints: by position
        set_optimizer_state_dict(self.raw_model, self.optimizer, optim_sd,
                                 options=StateDictOptions(full_state_dict=True))
        for group in self.optimizer.param_groups:  # this run's settings, not the checkpoint's
            group.update(betas=tuple(self.tcfg.betas), weight_decay=self.tcfg.weight_decay)
        torch.set_rng_state(state["rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["cuda_rng"])
        step = int(state["step"])
        old_glob = int((old_cfg.get("train") or {}).get("global_batch_size") or self.tcfg.global_batch_size)
        self.consumed = int(state.get("consumed", step * old_glob))
        if "train.global_batch_size" in self.resume_changes and self.is_main:
            log.warning("resume: train.global_batch_size changed from %s to %s: continuing at training item %d of "
                        "the stream (epoch %.4f), where the checkpoint stopped", old_glob,
                        self.tcfg.global_batch_size, self.consumed, self.schedule.epoch_at(self.consumed))
        return step

    # ------------------------------------------------------ keep the best weights (train.keep_best)
    def _read_best(self) -> dict | None:
        f = self.out / "best" / "best.json"
        return json.loads(f.read_text()) if f.is_file() else None

    def _clear_best(self) -> None:
        if self.is_main:
            shutil.rmtree(self.out / "best", ignore_errors=True)  # a former run's, not this one's

    def keep_if_best(self, step: int, val_loss: float) -> None:
        """train.keep_best: after a validation, the trainable weights of the lowest validation loss
        so far (steps >= 1; step 0 is the untrained model) go to <run>/best/ (weights.safetensors, full
        fp32 tensors keyed by parameter name, and best.json {step, val_loss}); `save_final` makes them
        the final model. Collective under DDP / FSDP (every rank sees the same all-reduced loss)."""
        import torch.distributed as dist
        from safetensors.torch import save_file
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        if self.best is not None and self.best["val_loss"] <= val_loss:
            return
        self.best = {"step": step, "val_loss": val_loss}
        sd = get_model_state_dict(self.raw_model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if self.is_main:
            names = {n for n, p in self.raw_model.named_parameters() if p.requires_grad}  # tied weights once
            sd = {k: v.contiguous() for k, v in sd.items() if k in names}
            self._atomic_dir(self.out / "best", lambda d: (save_file(sd, str(d / "weights.safetensors")),
                                                           write_text_atomic(d / "best.json", json.dumps(self.best) + "\n")))
        if self.world > 1:
            dist.barrier()

    def restore_best(self, last_val: float | None) -> dict | None:
        """The kept best weights back into the model when they beat the last validation.

        Returns:
            ``{"step", "val_loss", "last_val_loss"}`` of the best checkpoint restored (losses in
            nats per token; last_val_loss None when there was no last validation), or None when
            nothing was restored (no best kept, or the last validation is as good).
        """
        from safetensors.torch import load_file
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        best = self.best
        if best is None or (last_val is not None and last_val <= best["val_loss"]):
            return None
        sd = load_file(str(self.out / "best" / "weights.safetensors"))
        set_model_state_dict(self.raw_model, sd, options=StateDictOptions(full_state_dict=True, strict=False))
        log.info("train.keep_best: final model = step %d (validation loss %.4f; last step's %s)", best["step"],
                 best["val_loss"], "n/a" if last_val is None else f"{last_val:.4f}")
        return dict(best, last_val_loss=last_val)

    def save_final(self) -> None:
        """results/<run>/model: a HF checkpoint transformers loads offline (LoRA: adapter/ and, if asked, merged).
        train.keep_best: the weights of the lowest validation loss (see `keep_if_best`)."""
        import torch.distributed as dist

        kept = self.restore_best(self.last_val) if self.tcfg.keep_best else None
        model_sd, _ = self._full_state()
        if self.is_main:
            if self.tcfg.method == "lora":
                self._atomic_dir(self.out / "adapter", lambda d: self._save_hf(d, model_sd))
                if self.cfg.lora.merge:
                    fsdp = self.world > 1 and self.tcfg.parallel == "fsdp"
                    merged = None if fsdp else self.raw_model.merge_and_unload()
                    if merged is None:
                        log.warning("lora.merge with FSDP is not supported: merge later from %s", self.out / "adapter")
                    else:
                        self._atomic_dir(self.out / "model", lambda d: (merged.save_pretrained(d, safe_serialization=True),
                                                                        self.tokenizer.save_pretrained(d)))
            else:
                self._atomic_dir(self.out / "model", lambda d: self._save_hf(d, model_sd))
            write_text_atomic(self.out / "train_summary.json", json.dumps({
                "model_dir": str(self.model_dir), "trainable_params": self.n_trainable, "world_size": self.world,
                "data": self.data_stats, "max_steps": self.tcfg.max_steps, "attention": self.attention,
                "train_items_per_epoch": self.schedule.items_per_epoch, "train_items_consumed": self.consumed,
                "kept_best": kept}, indent=2) + "\n")
            from .tracking import plot_metrics

            plot_metrics(self.out / "metrics.jsonl", self.out / "training.png",
                         f"{self.cfg.run_name}: {self.model_dir.name}, {self.tcfg.method}")
            log.info("final model: %s; metrics: %s; plot: %s", self.out / "model", self.out / "metrics.jsonl",
                     self.out / "training.png")
        if self.world > 1:
            dist.barrier()

    @staticmethod
    def _atomic_dir(final: Path, write) -> None:
        tmp = final.with_name(f".{final.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        write(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)

    def cleanup(self) -> None:
        """Close the metrics tracker and destroy the process group (safe after a failed ``setup``)."""
        import torch.distributed as dist

        if getattr(self, "tracker", None) is not None:
            self.tracker.close()
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


CHECKPOINT_FORMAT = 2  # 2: optimizer state keyed by parameter name (any mode / world size); data position


class ResumeError(ValueError):
    """resume=true with settings or data the checkpoint cannot continue with; says which and why."""


# Settings a resumed run may change, and how it adapts. Keys in these sections not listed here
# change the data stream or the trained state (seed, data.*, method, LoRA shape): resume refuses.
RESUME_SECTIONS = ("train", "data", "lora")
RESUME_TOP = ("model", "data_dir", "level", "seed")
RESUME_ADAPTS = {
    "train.global_batch_size": "continues at the number of training items consumed",
    "train.micro_batch_size": "only the split into micro-batches changes",
    "train.max_steps": "the learning-rate schedule follows the new value from the resumed step on",
    "train.lr": "the learning-rate schedule follows the new value from the resumed step on",
    "train.min_lr_ratio": "the learning-rate schedule follows the new value from the resumed step on",
    "train.warmup_steps": "the learning-rate schedule follows the new value from the resumed step on",
    "train.weight_decay": "applies from the resumed step on",
    "train.betas": "applies from the resumed step on (the moment estimates are kept)",
    "train.grad_clip": "applies from the resumed step on",
    "train.precision": "fp32 master weights either way",
    "train.parallel": "the checkpoint loads under any mode",
    "train.gradient_checkpointing": "speed / memory only",
    "train.fsdp_reshard_after_forward": "speed / memory only",
    "train.fsdp_reduce_dtype": "applies from the resumed step on (rounding of the gradient sum only)",
    "train.attention": "speed only (exact either way)",
    "train.loss": "speed only (exact either way)",
    "train.loss_chunk_size": "speed only",
    "train.compile": "speed only",
    "train.threads": "speed only",
    "train.eval_every": "bookkeeping only",
    "train.save_every": "bookkeeping only",
    "train.keep_checkpoints": "bookkeeping only",
    "train.keep_best": "final output only (the best so far is kept in <run>/best/)",
    "train.stop_at_step": "bookkeeping only",
    "data.max_val_samples": "validation only",
    "lora.dropout": "no trained state",
    "lora.merge": "final output only",
}


def check_resume_settings(old: dict, new: dict, ckpt: Path, quiet: bool = False) -> dict:
    """Compare the checkpoint's settings with this run's; logs how each change is followed (quiet:
    not logged, for ranks other than 0).

    Returns:
        ``{dotted key: (old, new)}`` of the changes followed (keys of ``RESUME_ADAPTS``).

    Raises:
        ResumeError: one line (which key, from what to what, why) for a change resume cannot follow.
    """
    def flat(cfg):
        out = {k: cfg.get(k) for k in RESUME_TOP if k in cfg}
        for sec in RESUME_SECTIONS:
            for k, v in (cfg.get(sec) or {}).items():
                out[f"{sec}.{k}"] = v
        return out

    def norm(v):
        return list(v) if isinstance(v, tuple) else v

    before, now = flat(old), flat(new)
    followed = {}
    for key in sorted(set(before) | set(now)):
        if key not in before:
            if quiet:
                continue
            log.warning("resume: %s is not in the settings of %s (an older version); assuming it did not change",
                        key, ckpt)
            continue
        a, b = norm(before[key]), norm(now.get(key))
        if a == b:
            continue
        if key not in RESUME_ADAPTS:
            raise ResumeError(f"resume from {ckpt}: {key} changed from {a!r} to {b!r}, which changes the training "
                              f"data or the trained state; set it back to {a!r}, or start a new run (resume=false "
                              "or another run_name)")
        followed[key] = (a, b)
        if key != "train.global_batch_size":  # logged with the stream position in load_checkpoint
            level = logging.INFO if RESUME_ADAPTS[key] == "bookkeeping only" else logging.WARNING
            log.log(logging.DEBUG if quiet else level, "resume: %s changed from %r to %r: %s", key, a, b,
                    RESUME_ADAPTS[key])
    return followed


def examples_digest(examples: list[dict]) -> str:
    """sha256 over the training examples (ids, token ids, targets): the data a stream position means.

    Returns:
        The digest as 64 hex characters.
    """
    import hashlib
    from array import array

    h = hashlib.sha256()
    for ex in examples:
        h.update(str(ex["id"]).encode() + b"\0")
        h.update(array("q", ex["input_ids"]).tobytes())
        h.update(array("q", ex["targets"]).tobytes())
    return h.hexdigest()


def _named_optimizer_state(model, optim_sd: dict) -> dict:
    """A plain `optimizer.state_dict()` (parameters by position, as format 1 saved under one
    process or DDP) keyed by parameter name instead, the form set_optimizer_state_dict loads.

    Returns:
        ``{"state": {name: state}, "param_groups": [...]}`` with each group's ``params`` as names.
    """
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    groups = []
    for g in optim_sd["param_groups"]:
        groups.append({**g, "params": [names[i] for i in g["params"]]})
    return {"state": {names[i]: v for i, v in optim_sd["state"].items()}, "param_groups": groups}


def latest_checkpoint(out: Path) -> Path | None:
    """The newest checkpoint of a run folder.

    Returns:
        The newest ``out/checkpoints/step_NNNNNN`` folder (by name), or None when there is none.
    """
    found = sorted(p for p in (out / "checkpoints").glob("step_*") if re.fullmatch(r"step_\d+", p.name))
    return found[-1] if found else None


def _decoder_layers(model):
    for module in model.modules():
        if type(module).__name__.endswith("DecoderLayer"):
            yield module


