"""Arm (c) of bench/train_throughput.py: our trainer, through the recipe's own code.

One code path with `bash run_sft.sh`: the model is set up in the order `SFTRecipe.setup` does it
(`fast.use_varlen_attention`, `fast.loss_model`, `fast.compile_layers`, `recipe.wrap_parallel`,
`recipe.build_optimizer`), micro-batches are made by the functions `SFTRecipe.collate` calls
(`fast.collate_varlen` / `data.collate`) and every optimizer step is `recipe.train_step`, the
function the recipe's training loop calls (cross-rank token normalisation, DDP no_sync, clipping,
AdamW step). Only the data differ: the benchmark's random-token samples, packed with
`data.pack_examples`, taken in order, each rank its own packs. Under torchrun (WORLD_SIZE > 1)
`parallel` picks DDP or FSDP2 as `train.parallel` does; tokens/s is then per GPU.

Levers measured here (off by default, each reported in the row): FSDP2 `reshard_after_forward`,
gradient sync on the last micro-batch only, fused AdamW under FSDP2, DDP bucket size, Liger kernels
(RMSNorm / RoPE / SwiGLU, or its fused linear cross-entropy in place of ours), torchao float8 linear
layers, activation checkpointing of every k-th decoder layer.
"""
from __future__ import annotations

import gc
import os
import time

import throughput_common as C


def to_examples(samples: list[dict]) -> list[dict]:
    """Benchmark samples (input_ids, labels) -> our examples (input_ids, shifted targets)."""
    out = []
    for s in samples:
        labels = s["labels"]
        out.append({"id": "", "input_ids": s["input_ids"], "targets": labels[1:] + [-100]})
    return out


def _apply_liger(model, mode: str) -> str:
    """Liger kernels on a HF Llama: "ops" = RMSNorm + RoPE + SwiGLU (our chunked loss kept),
    "flce" = only the loss: Liger's fused linear cross-entropy in place of `fast.linear_cross_entropy`."""
    import liger_kernel

    if mode == "ops":
        from liger_kernel.transformers import apply_liger_kernel_to_llama

        apply_liger_kernel_to_llama(rope=True, swiglu=True, rms_norm=True, cross_entropy=False,
                                    fused_linear_cross_entropy=False, model=model)
    elif mode != "flce":
        raise ValueError(f"liger must be 'ops' or 'flce', not {mode!r}")
    return getattr(liger_kernel, "__version__", "?")


def _liger_linear_ce():
    """Liger's fused linear cross-entropy with the signature of `fast.linear_cross_entropy` (sum)."""
    from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

    flce = LigerFusedLinearCrossEntropyLoss(reduction="sum", ignore_index=-100)

    def linear_ce(hidden, weight, targets, chunk_size=2048, compute_dtype=None, compiled=False):
        h = hidden.reshape(-1, hidden.shape[-1])
        if compute_dtype is not None:
            h = h.to(compute_dtype)
        return flce(weight.to(h.dtype), h, targets.reshape(-1))

    return linear_ce


def _apply_float8(model) -> int:
    """torchao FP8 training (tensorwise scaling) of the decoder's linear layers (not lm_head; only
    dimensions that are multiples of 16); returns how many were converted. Measured, not adopted
    (docs/benchmarks.md, issue 16)."""
    import torch
    from torchao.float8 import Float8LinearConfig, convert_to_float8_training

    def keep(mod, fqn):
        return (isinstance(mod, torch.nn.Linear) and "lm_head" not in fqn
                and mod.in_features % 16 == 0 and mod.out_features % 16 == 0)

    convert_to_float8_training(model, module_filter_fn=keep, config=Float8LinearConfig())
    return sum(type(m).__name__ == "Float8Linear" for m in model.modules())


def _checkpoint_every(model, k: int) -> int:
    """Activation checkpointing (recompute in backward) on every k-th decoder layer; returns how many."""
    import torch.utils.checkpoint as ckpt

    layers = [m for m in model.modules() if type(m).__name__.endswith("DecoderLayer")]
    n = 0
    for i, layer in enumerate(layers):
        if i % k:
            continue
        fwd = layer.forward

        def wrapped(*args, _fwd=fwd, **kwargs):
            return ckpt.checkpoint(_fwd, *args, use_reentrant=False, **kwargs)

        layer.forward = wrapped
        n += 1
    return n


def setup_ours(model, device, dtype, attention: str = "varlen", loss: str = "chunked", compile: bool = True,
               chunk_size: int = 2048, compile_loss: bool = True, parallel: str = "ddp", world: int = 1,
               lr: float = 5e-5, betas=(0.9, 0.95), weight_decay: float = 0.0, fused_optimizer: bool | None = None,
               reshard_after_forward: bool = True, ddp_bucket_cap_mb: int | None = None, float8: bool = False,
               checkpoint_every: int = 0, liger: str | None = None, reduce_bf16: bool = False,
               fsdp_prefetch: bool = False):
    """Model -> (train_module, loss_module, optimizer, notes), in SFTRecipe.setup's order.
    fused_optimizer None: the recipe's choice (fused except under FSDP2 with world > 1)."""
    from sft_playbook.sft import fast
    from sft_playbook.sft import recipe as R

    notes = {}
    if liger:
        notes["liger_version"] = _apply_liger(model, liger)
    if attention == "varlen":
        fast.use_varlen_attention(model)
    if float8:
        notes["float8_linears"] = _apply_float8(model)
    if checkpoint_every:
        notes["checkpointed_layers"] = _checkpoint_every(model, checkpoint_every)
    model.to(device)
    lm = fast.loss_model(model, loss, chunk_size, dtype, compile_loss=compile and compile_loss)
    if compile:
        fast.compile_layers(model)
    train_module = R.wrap_parallel(lm, parallel, world, device, dtype, reshard_after_forward=reshard_after_forward,
                                   ddp_bucket_cap_mb=ddp_bucket_cap_mb, reduce_bf16=reduce_bf16,
                                   fsdp_prefetch=fsdp_prefetch)
    if fused_optimizer is None:
        fused_optimizer = parallel != "fsdp" or world == 1
    fused_optimizer = bool(fused_optimizer and device.type == "cuda")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = R.build_optimizer(params, lr, betas, weight_decay, fused=fused_optimizer)
    notes["fused_optimizer"] = fused_optimizer
    return train_module, lm, opt, notes


def step_batches(packs: list[list[dict]], step: int, rank: int, world: int, rows: int, accum: int,
                 attention: str, pad_to: int | None):
    """This rank's micro-batches of optimizer step `step` (accum micro-batches of `rows` packs), as
    SFTRecipe.collate makes them, and their real (non-pad) input tokens."""
    from sft_playbook.sft import data as D
    from sft_playbook.sft import fast

    k = (step * world + rank) * rows * accum
    micro = [packs[k + i * rows:k + (i + 1) * rows] for i in range(accum)]
    batches = [fast.collate_varlen(m, 0, pad_to) if attention == "varlen" else D.collate(m, 0, False) for m in micro]
    real = sum(len(ex["input_ids"]) for m in micro for p in m for ex in p)
    return batches, real


def run_steps(train_module, opt, batches_per_step, device, dtype, world: int = 1, parallel: str = "ddp",
              grad_clip: float = 1.0, fsdp_sync_every_micro_batch: bool = True):
    """Generator: one `recipe.train_step` per item of batches_per_step ((micro-batches, real tokens));
    yields (loss_total, n_tokens, n_real, grad_norm) tensors per step (the recipe's loss: loss_total /
    n_tokens)."""
    from sft_playbook.sft import recipe as R

    for batches, real in batches_per_step:
        yield R.train_step(train_module, opt, batches, device, dtype, world=world, parallel=parallel,
                           grad_clip=grad_clip, real_tokens=real,
                           fsdp_sync_every_micro_batch=fsdp_sync_every_micro_batch)


def run_ours(shape: str, samples: list[dict], seq_len: int, steps: int, warmup: int, attention: str = "varlen",
             loss: str = "chunked", compile: bool = True, rows: int = 1, pack_strategy: str = "best_fit",
             chunk_size: int = 2048, accum: int = 1, compile_loss: bool = True, seed: int = 0,
             label: str | None = None, profile_to: str | None = None, parallel: str = "ddp",
             fused_optimizer: bool | None = None, reshard_after_forward: bool = True,
             fsdp_sync_every_micro_batch: bool = True, ddp_bucket_cap_mb: int | None = None,
             float8: bool = False, checkpoint_every: int = 0, liger: str | None = None,
             reduce_bf16: bool = False, fsdp_prefetch: bool = False) -> dict:
    import torch
    import torch.distributed as dist

    from sft_playbook.sft import data as D
    from sft_playbook.sft import fast

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    cuda = torch.cuda.is_available()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dtype = torch.bfloat16 if cuda else None
    levers = []
    if world > 1:
        levers.append(parallel)
        if parallel == "fsdp" and not reshard_after_forward:
            levers.append("no-reshard")
        if parallel == "fsdp" and not fsdp_sync_every_micro_batch:
            levers.append("sync-last")
        if ddp_bucket_cap_mb and parallel != "fsdp":
            levers.append(f"bucket{ddp_bucket_cap_mb}")
        if reduce_bf16:
            levers.append("reduce-bf16")
        if fsdp_prefetch and parallel == "fsdp":
            levers.append("prefetch")
    if fused_optimizer is not None:
        levers.append("fused-adamw" if fused_optimizer else "foreach-adamw")
    if float8:
        levers.append("float8")
    if checkpoint_every:
        levers.append(f"ckpt-every{checkpoint_every}")
    if liger:
        levers.append(f"liger-{liger}")
    label = label or (f"{attention}/{loss}/{'compile' if compile else 'eager'}/{rows}x{seq_len}"
                      + (f"/accum{accum}" if accum > 1 else "")
                      + ("/loss-eager" if compile and loss == "chunked" and not compile_loss else "")
                      + "".join(f"/{x}" for x in levers))
    model = opt = lm = train_module = None
    saved_lce = fast.linear_cross_entropy
    try:
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        model = C.build_model(shape, seed)
        params = C.n_params(model)
        if liger == "flce":
            fast.linear_cross_entropy = _liger_linear_ce()
        train_module, lm, opt, notes = setup_ours(
            model, device, dtype, attention=attention, loss=loss, compile=compile, chunk_size=chunk_size,
            compile_loss=compile_loss, parallel=parallel, world=world, fused_optimizer=fused_optimizer,
            reshard_after_forward=reshard_after_forward, ddp_bucket_cap_mb=ddp_bucket_cap_mb, float8=float8,
            checkpoint_every=checkpoint_every, liger=liger, reduce_bf16=reduce_bf16, fsdp_prefetch=fsdp_prefetch)
        examples = to_examples(samples)
        if attention == "varlen":
            packs = D.pack_examples(examples, seq_len, pack_strategy)
        else:
            packs = [[ex] for ex in examples]
        n_steps = steps + warmup + (3 if profile_to else 0)
        need = n_steps * rows * world * accum
        packs = (packs * (need // len(packs) + 1))[:need]
        fill = sum(len(ex["input_ids"]) for p in packs for ex in p) / (len(packs) * seq_len)
        pad_to = rows * seq_len if compile and attention == "varlen" else None  # as SFTRecipe.collate
        batches = (step_batches(packs, s, rank, world, rows, accum, attention, pad_to) for s in range(n_steps))
        losses_t, real_t, t0, seconds = [], None, None, 0.0
        prof = None
        if warmup == 0:
            t0 = time.perf_counter()
        # nothing below waits for the GPU inside the timed steps (tensors are read at the end)
        for step, (loss_total, n_tokens, n_real, _) in enumerate(
                run_steps(train_module, opt, batches, device, dtype, world=world, parallel=parallel,
                          fsdp_sync_every_micro_batch=fsdp_sync_every_micro_batch)):
            if step < 10:
                losses_t.append(loss_total / n_tokens.clamp(min=1))
            if warmup <= step < steps + warmup:
                real_t = n_real if real_t is None else real_t + n_real
            if step + 1 == warmup:  # the timed steps start after this one
                if cuda:
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            if step + 1 == steps + warmup:
                if cuda:
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - t0
                if profile_to:
                    from torch.profiler import ProfilerActivity, profile

                    prof = profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else []))
                    prof.__enter__()
        losses = [float(x) for x in losses_t]
        real_tokens = int(real_t) // world if real_t is not None else 0  # per GPU
        if cuda:
            torch.cuda.synchronize()
        if prof is not None:
            prof.__exit__(None, None, None)
            key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
            with open(profile_to, "w") as fh:
                fh.write(prof.key_averages().table(sort_by=key, row_limit=40, max_name_column_width=70))
        peak = torch.cuda.max_memory_allocated() if cuda else None
        return C.result_row("ours", shape, params, real_tokens, seconds, losses, peak, variant=label,
                            attention=attention, loss=loss, compile=compile, rows=rows, seq_len=seq_len, accum=accum,
                            pack_fill=round(fill, 4), world=world, steps=steps, warmup=warmup, parallel=parallel,
                            reshard_after_forward=reshard_after_forward,
                            fsdp_sync_every_micro_batch=fsdp_sync_every_micro_batch,
                            ddp_bucket_cap_mb=ddp_bucket_cap_mb, reduce_bf16=reduce_bf16, float8=float8,
                            fsdp_prefetch=fsdp_prefetch,
                            checkpoint_every=checkpoint_every,
                            liger=liger, step_fn="sft_playbook.sft.recipe.train_step", **notes,
                            samples_isolated=attention == "varlen" or rows == 1,
                            attention_backend=fast.varlen_backend(device.type) if attention == "varlen" else "sdpa",
                            device=torch.cuda.get_device_name() if cuda else "cpu")
    except torch.cuda.OutOfMemoryError:
        return {"arm": "ours", "shape": shape, "variant": label, "error": "out of memory"}
    except Exception as exc:  # noqa: BLE001 - keep the other arms running; the message goes into the table
        import traceback

        traceback.print_exc()
        return {"arm": "ours", "shape": shape, "variant": label,
                "error": f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}"}
    finally:
        fast.linear_cross_entropy = saved_lce
        del model, opt, lm, train_module
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()


def varlen_matches_masked(shape: str, samples: list[dict], seq_len: int, seed: int = 0) -> dict:
    """On the GPU: loss of one packed row through varlen Flash + chunked loss vs SDPA with a 4D
    block-diagonal mask + full logits (both bf16 autocast). Relative difference of loss and grads."""
    import torch

    from sft_playbook.sft import data as D
    from sft_playbook.sft import fast
    from sft_playbook.sft.recipe import loss_sum_and_count

    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else None
    packs = [max(D.pack_examples(to_examples(samples), seq_len, "best_fit"), key=len)]  # the row with most samples
    out = {}
    grads = {}
    for name in ("masked", "varlen"):
        model = C.build_model(shape, seed).to(device)
        if name == "varlen":
            fast.use_varlen_attention(model)
            lm, batch = fast.loss_model(model, "chunked", 2048, dtype), fast.collate_varlen(packs, 0)
        else:
            lm, batch = fast.loss_model(model, "full"), D.collate(packs, 0, True)
        s, n = loss_sum_and_count(lm, batch, device, dtype)
        (s / n).backward()
        out[name] = float(s.detach() / n)
        grads[name] = torch.cat([p.grad.float().flatten() for p in model.parameters() if p.grad is not None])
        del model, lm
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    g = (grads["varlen"] - grads["masked"]).norm() / grads["masked"].norm()
    return {"check": "varlen+chunked vs 4D-masked SDPA+full", "shape": shape, "loss_masked": out["masked"],
            "loss_varlen": out["varlen"], "loss_rel_diff": abs(out["varlen"] - out["masked"]) / out["masked"],
            "grad_rel_diff": float(g), "samples_in_row": len(packs[0])}
