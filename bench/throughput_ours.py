"""Arm (c) of bench/train_throughput.py: our trainer's step on the benchmark's samples.

It is the recipe's own code path (sft_playbook.sft): `fast.use_varlen_attention`, `fast.loss_model`
(full or chunked loss), `fast.compile_layers`, `data.pack_examples`, `fast.collate_varlen` and
`recipe.loss_sum_and_count`, with fp32 master weights + bf16 autocast and fused AdamW, one
optimizer step per micro-batch (as the other arms). Under torchrun (WORLD_SIZE > 1) the model is
wrapped in DDP and every rank takes its own packs; tokens/s is then per GPU.
"""
from __future__ import annotations

import contextlib
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


def run_ours(shape: str, samples: list[dict], seq_len: int, steps: int, warmup: int, attention: str = "varlen",
             loss: str = "chunked", compile: bool = True, rows: int = 1, pack_strategy: str = "best_fit",
             chunk_size: int = 2048, accum: int = 1, compile_loss: bool = True, seed: int = 0,
             label: str | None = None, profile_to: str | None = None) -> dict:
    import torch
    import torch.distributed as dist

    from sft_playbook.sft import data as D
    from sft_playbook.sft import fast
    from sft_playbook.sft.recipe import loss_sum_and_count

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    cuda = torch.cuda.is_available()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dtype = torch.bfloat16 if cuda else None
    label = label or (f"{attention}/{loss}/{'compile' if compile else 'eager'}/{rows}x{seq_len}"
                      + (f"/accum{accum}" if accum > 1 else "")
                      + ("/loss-eager" if compile and loss == "chunked" and not compile_loss else ""))
    model = opt = lm = None
    try:
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        model = C.build_model(shape, seed)
        params = C.n_params(model)
        if attention == "varlen":
            fast.use_varlen_attention(model)
        model.to(device)
        lm = fast.loss_model(model, loss, chunk_size, dtype, compile_loss=compile and compile_loss)
        if compile:
            fast.compile_layers(model)
        train_module = lm
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            train_module = DDP(lm, device_ids=[device.index] if cuda else None)
        opt = torch.optim.AdamW(model.parameters(), lr=5e-5, betas=(0.9, 0.95), fused=cuda)
        examples = to_examples(samples)
        if attention == "varlen":
            packs = D.pack_examples(examples, seq_len, pack_strategy)
        else:
            packs = [[ex] for ex in examples]
        need = (steps + warmup + (3 if profile_to else 0)) * rows * world * accum
        packs = (packs * (need // len(packs) + 1))[:need]
        fill = sum(len(ex["input_ids"]) for p in packs for ex in p) / (len(packs) * seq_len)
        losses, real_tokens, t0 = [], 0, None
        prof = None
        for step in range(steps + warmup + (3 if profile_to else 0)):
            if step == steps + warmup:  # after the timed steps: 3 profiled ones
                if cuda:
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - t0
                from torch.profiler import ProfilerActivity, profile

                prof = profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else []))
                prof.__enter__()
            if step == warmup:
                if cuda:
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            # one optimizer step = accum micro-batches of `rows` packed rows on every rank
            k = (step * world + rank) * rows * accum
            micro = [packs[k + i * rows:k + (i + 1) * rows] for i in range(accum)]
            batches = [fast.collate_varlen(m, 0, pad_to=rows * seq_len if compile else None)
                       if attention == "varlen" else D.collate(m, 0, False) for m in micro]
            n_out = sum(int((b["targets"] != -100).sum()) for b in batches)
            step_loss = 0.0
            for i, batch in enumerate(batches):
                sync = world == 1 or i == accum - 1
                ctx = train_module.no_sync() if not sync else contextlib.nullcontext()
                with ctx:
                    loss_sum, count = loss_sum_and_count(train_module, batch, device, dtype)
                    (loss_sum / max(1, n_out)).backward()
                step_loss = step_loss + loss_sum.detach()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            if step < 10:
                losses.append(float(step_loss / max(1, n_out)))
            if warmup <= step < steps + warmup:
                real_tokens += sum(len(ex["input_ids"]) for m in micro for p in m for ex in p)
        if cuda:
            torch.cuda.synchronize()
        if prof is not None:
            prof.__exit__(None, None, None)
            key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
            with open(profile_to, "w") as fh:
                fh.write(prof.key_averages().table(sort_by=key, row_limit=40, max_name_column_width=70))
        else:
            seconds = time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated() if cuda else None
        return C.result_row("ours", shape, params, real_tokens, seconds, losses, peak, variant=label,
                            attention=attention, loss=loss, compile=compile, rows=rows, seq_len=seq_len, accum=accum,
                            pack_fill=round(fill, 4), world=world, steps=steps, warmup=warmup,
                            samples_isolated=attention == "varlen" or rows == 1,
                            attention_backend=fast.varlen_backend(device.type) if attention == "varlen" else "sdpa",
                            device=torch.cuda.get_device_name() if cuda else "cpu")
    except torch.cuda.OutOfMemoryError:
        return {"arm": "ours", "shape": shape, "variant": label, "error": "out of memory"}
    except Exception as exc:  # keep the other arms running; the message goes into the table
        import traceback

        traceback.print_exc()
        return {"arm": "ours", "shape": shape, "variant": label, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
    finally:
        del model, opt, lm
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
