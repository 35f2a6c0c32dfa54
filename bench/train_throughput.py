#!/usr/bin/env python3
"""SFT training throughput, side by side in one call: (a) a plain HF loop, (b) TRL's SFTTrainer,
(c) our trainer (the recipe's own step, `recipe.train_step`), (d) torchtune's full-finetune recipe,
on the same model shapes and the same random-token samples (lognormal lengths around 550 tokens,
clipped to 64-2048, or to the plan's shortest seq_len).

Reports real (non-pad) tokens/s, MFU (6*N*tokens/s over 989 TFLOP/s), peak memory and the loss of
the first steps, one JSON line per run in <out>/throughput.jsonl and a table at the end. The "check"
arm compares our varlen + chunked-loss path with plain SDPA and a block-diagonal mask on one packed
row; the "comm" arm (under torchrun) measures the all-reduce / all-gather bandwidth between the GPUs.

Usage (GPU machine; docs/benchmarks.md has the exact calls with the carried wheels):
    python3 bench/train_throughput.py --out DIR [--shapes PLAN,...] [--arms check,comm,plain,trl,torchtune,ours]
Several GPUs (our arm, DDP or FSDP2 per plan entry, per-GPU tokens/s):
    torchrun --nproc-per-node N bench/train_throughput.py --out DIR --arms comm,ours --shapes llama-1b-2gpu
All of issue 16 in one device call: bench/throughput_device.sh.
CPU smoke test of the benchmark itself:  python3 bench/train_throughput.py --quick --out /tmp/tt
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import throughput_common as C  # noqa: E402

# (arm, options) per shape; seq = tokens per packed row / max padded length
PLANS = {
    "llama-1b": [  # most important first: a call that runs out of time still has the comparison
        ("check", {"seq_len": 4096}),
        ("ours", {"attention": "varlen", "loss": "chunked", "compile": True, "rows": 1, "seq_len": 4096}),
        ("ours", {"attention": "varlen", "loss": "chunked", "compile": True, "rows": 1, "seq_len": 4096, "accum": 4}),
        ("trl", {"variant": "packed", "micro_batch": 1, "seq_len": 4096}),
        ("trl", {"variant": "packed-flex", "micro_batch": 1, "seq_len": 4096}),
        ("trl", {"variant": "padded", "micro_batch": 2, "seq_len": 2048}),
        ("plain", {"mode": "padded", "micro_batch": 2, "seq_len": 2048}),
        ("plain", {"mode": "concat", "micro_batch": 1, "seq_len": 4096}),
        ("ours", {"attention": "varlen", "loss": "full", "compile": False, "rows": 1, "seq_len": 4096}),
        ("ours", {"attention": "varlen", "loss": "chunked", "compile": False, "rows": 1, "seq_len": 4096}),
        ("ours", {"attention": "varlen", "loss": "chunked", "compile": True, "rows": 2, "seq_len": 4096}),
    ],
    "smollm2-135m": [
        ("ours", {"attention": "varlen", "loss": "chunked", "compile": True, "rows": 1, "seq_len": 8192}),
        ("trl", {"variant": "packed", "micro_batch": 1, "seq_len": 8192}),
        ("trl", {"variant": "padded", "micro_batch": 8, "seq_len": 2048}),
        ("plain", {"mode": "padded", "micro_batch": 8, "seq_len": 2048}),
        ("plain", {"mode": "concat", "micro_batch": 1, "seq_len": 8192}),
        ("ours", {"attention": "varlen", "loss": "chunked", "compile": True, "rows": 1, "seq_len": 8192, "accum": 4}),
    ],
    # our arm only, after a fix (the TRL and plain rows of the same session stand)
    "llama-1b-ours": [
        ("check", {"seq_len": 4096}),
        ("ours", {"attention": "varlen", "loss": "chunked", "compile": True, "rows": 1, "seq_len": 4096}),
        ("ours", {"attention": "varlen", "loss": "chunked", "compile": True, "rows": 1, "seq_len": 4096, "accum": 4}),
        ("ours", {"attention": "varlen", "loss": "chunked", "compile": False, "rows": 1, "seq_len": 4096}),
        ("ours", {"attention": "varlen", "loss": "full", "compile": False, "rows": 1, "seq_len": 4096}),
        ("ours", {"attention": "varlen", "loss": "chunked", "compile": True, "rows": 2, "seq_len": 4096}),
    ],
    # after compiling the chunked loss too: more tokens per micro-batch, and a profile
    "llama-1b-ours2": [
        ("ours", {"attention": "varlen", "loss": "chunked", "compile": True, "rows": 1, "seq_len": 4096}),
        ("ours", {"attention": "varlen", "loss": "chunked", "compile": True, "rows": 2, "seq_len": 4096,
                  "profile": True}),
        ("ours", {"attention": "varlen", "loss": "chunked", "compile": True, "rows": 4, "seq_len": 4096}),
    ],
    "smollm2-135m-ours": [
        ("ours", {"attention": "varlen", "loss": "chunked", "compile": True, "rows": 1, "seq_len": 8192}),
        ("ours", {"attention": "varlen", "loss": "chunked", "compile": True, "rows": 1, "seq_len": 8192, "accum": 4}),
    ],
    # ---- issue 16: every peer at its best, one call (bench/throughput_device.sh runs these) ----
    # one GPU, our arm and the levers that act on one GPU (run beside "llama-1b-peers" on the other GPU)
    "llama-1b-ours3": [
        ("check", {"seq_len": 4096}),
        ("ours", {"rows": 1, "seq_len": 4096}),
        ("ours", {"rows": 4, "seq_len": 4096}),
        ("ours", {"rows": 1, "seq_len": 4096, "profile": True}),
        ("ours", {"rows": 4, "seq_len": 4096, "float8": True}),
        ("ours", {"rows": 1, "seq_len": 4096, "float8": True}),
        ("ours", {"rows": 4, "seq_len": 4096, "liger": "ops"}),
        ("ours", {"rows": 4, "seq_len": 4096, "liger": "flce"}),
        ("ours", {"rows": 1, "seq_len": 4096, "liger": "ops"}),
        ("ours", {"rows": 2, "seq_len": 4096}),
    ],
    # one GPU, the peers at their best documented settings, same samples
    "llama-1b-peers": [
        ("trl", {"variant": "best", "micro_batch": 1, "seq_len": 4096}),
        ("trl", {"variant": "best", "micro_batch": 4, "seq_len": 4096}),
        ("torchtune", {"rows": 1, "seq_len": 4096}),
        ("torchtune", {"rows": 4, "seq_len": 4096}),
        ("trl", {"variant": "best-compile", "micro_batch": 1, "seq_len": 4096}),
        ("trl", {"variant": "best-compile", "micro_batch": 4, "seq_len": 4096}),
    ],
    # two GPUs (torchrun --nproc-per-node 2), our arm: FSDP2 and DDP and their levers
    "llama-1b-2gpu": [
        ("comm", {}),
        ("ours", {"rows": 1, "seq_len": 4096, "parallel": "fsdp"}),
        ("ours", {"rows": 1, "seq_len": 4096, "parallel": "fsdp", "reshard_after_forward": False,
                  "fused_optimizer": True}),
        ("ours", {"rows": 1, "seq_len": 4096, "parallel": "fsdp", "reshard_after_forward": False,
                  "fused_optimizer": True, "reduce_bf16": True}),
        ("ours", {"rows": 1, "seq_len": 4096, "parallel": "fsdp", "fsdp_prefetch": True}),
        ("ours", {"rows": 1, "seq_len": 4096, "parallel": "ddp"}),
        ("ours", {"rows": 1, "seq_len": 4096, "parallel": "ddp", "ddp_bucket_cap_mb": 100}),
        ("ours", {"rows": 1, "seq_len": 4096, "parallel": "ddp", "reduce_bf16": True}),
        ("ours", {"rows": 1, "seq_len": 4096, "parallel": "ddp", "ddp_bucket_cap_mb": 100, "reduce_bf16": True}),
        ("ours", {"rows": 4, "seq_len": 4096, "parallel": "fsdp"}),
        ("ours", {"rows": 4, "seq_len": 4096, "parallel": "fsdp", "reshard_after_forward": False,
                  "fused_optimizer": True, "reduce_bf16": True}),
        ("ours", {"rows": 4, "seq_len": 4096, "parallel": "ddp"}),
        ("ours", {"rows": 4, "seq_len": 4096, "parallel": "ddp", "reduce_bf16": True}),
        ("ours", {"rows": 4, "seq_len": 4096, "parallel": "fsdp", "reshard_after_forward": False,
                  "fused_optimizer": True}),
    ],
    # the course's job on 2 GPUs: Llama-2-7B shape, seq 1024, micro 2, global 8 (accum 2 per rank), packed
    "llama2-7b-2gpu": [
        ("ours", {"rows": 2, "seq_len": 1024, "accum": 2, "parallel": "fsdp"}),
        ("ours", {"rows": 2, "seq_len": 1024, "accum": 2, "parallel": "fsdp", "reshard_after_forward": False,
                  "fsdp_sync_every_micro_batch": False, "fused_optimizer": True}),
        ("ours", {"rows": 2, "seq_len": 1024, "accum": 2, "parallel": "fsdp", "reshard_after_forward": False,
                  "fsdp_sync_every_micro_batch": False, "fused_optimizer": True, "reduce_bf16": True}),
        ("ours", {"rows": 2, "seq_len": 1024, "accum": 2, "parallel": "fsdp", "reshard_after_forward": False,
                  "fsdp_sync_every_micro_batch": False, "fused_optimizer": True, "reduce_bf16": True,
                  "float8": True}),
        ("ours", {"rows": 2, "seq_len": 1024, "accum": 2, "parallel": "fsdp", "reshard_after_forward": False,
                  "fsdp_sync_every_micro_batch": False, "fused_optimizer": True, "checkpoint_every": 2}),
    ],
    # second call: which FSDP2 lever pays (fused AdamW, no reshard, sync on the last micro-batch), DDP on 7B
    "llama-1b-2gpu-b": [
        ("ours", {"rows": 1, "seq_len": 4096, "parallel": "fsdp", "fused_optimizer": True}),
        ("ours", {"rows": 1, "seq_len": 4096, "parallel": "fsdp", "reshard_after_forward": False}),
    ],
    "llama2-7b-2gpu-b": [
        ("ours", {"rows": 2, "seq_len": 1024, "accum": 2, "parallel": "fsdp", "reshard_after_forward": False,
                  "fsdp_sync_every_micro_batch": False, "fused_optimizer": True, "reduce_bf16": True,
                  "profile": True}),
        ("ours", {"rows": 2, "seq_len": 1024, "accum": 2, "parallel": "fsdp", "fused_optimizer": True}),
        ("ours", {"rows": 2, "seq_len": 1024, "accum": 2, "parallel": "fsdp", "fused_optimizer": True,
                  "fsdp_sync_every_micro_batch": False}),
        ("ours", {"rows": 2, "seq_len": 1024, "accum": 2, "parallel": "fsdp", "fused_optimizer": True,
                  "reshard_after_forward": False}),
        ("ours", {"rows": 2, "seq_len": 1024, "accum": 2, "parallel": "ddp", "reduce_bf16": True}),
        ("ours", {"rows": 2, "seq_len": 1024, "accum": 2, "parallel": "ddp"}),
    ],
    "tiny": [
        ("check", {"seq_len": 2048}),
        ("plain", {"mode": "padded", "micro_batch": 2, "seq_len": 2048}),
        ("plain", {"mode": "concat", "micro_batch": 1, "seq_len": 2048}),
        ("trl", {"variant": "padded", "micro_batch": 2, "seq_len": 2048}),
        ("trl", {"variant": "packed", "micro_batch": 1, "seq_len": 2048}),
        ("ours", {"attention": "varlen", "loss": "full", "compile": False, "rows": 1, "seq_len": 2048}),
        ("ours", {"attention": "varlen", "loss": "chunked", "compile": False, "rows": 1, "seq_len": 2048}),
        ("ours", {"attention": "varlen", "loss": "chunked", "compile": False, "rows": 2, "seq_len": 2048, "accum": 2,
                  "profile": True}),
        ("torchtune", {"rows": 1, "seq_len": 2048, "compile": False}),
    ],
    # CPU check of the two-process plans (torchrun --nproc-per-node 2, gloo)
    "tiny-2gpu": [
        ("comm", {}),
        ("ours", {"rows": 1, "seq_len": 2048, "compile": False, "parallel": "fsdp"}),
        ("ours", {"rows": 1, "seq_len": 2048, "compile": False, "parallel": "fsdp", "reshard_after_forward": False,
                  "reduce_bf16": True}),
        ("ours", {"rows": 1, "seq_len": 2048, "compile": False, "parallel": "ddp", "ddp_bucket_cap_mb": 100}),
        ("ours", {"rows": 1, "seq_len": 2048, "compile": False, "parallel": "ddp", "reduce_bf16": True}),
        ("ours", {"rows": 2, "seq_len": 1024, "accum": 2, "compile": False, "parallel": "fsdp",
                  "reshard_after_forward": False, "fsdp_sync_every_micro_batch": False}),
        ("ours", {"rows": 2, "seq_len": 1024, "accum": 2, "compile": False, "parallel": "fsdp",
                  "fsdp_prefetch": True}),
    ],
}

# the plans' shapes: "<shape>-<anything>" -> shape, longest known prefix first
def plan_shape(plan: str) -> str:
    for shape in sorted(C.SHAPES, key=len, reverse=True):
        if plan == shape or plan.startswith(shape + "-"):
            return shape
    raise ValueError(f"plan {plan!r} names no shape of {sorted(C.SHAPES)}")


def comm_check(size_mib: int | None = None) -> dict:
    """Bus bandwidth of an all-reduce and an all-gather of size_mib MiB between the ranks (what the
    link between the GPUs gives gradient / weight traffic), median of 5 after 2 warm-ups."""
    import statistics

    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world < 2:
        return {"check": "comm", "error": "one process"}
    cuda = torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(dev)
    size_mib = size_mib or (1024 if cuda else 16)
    n = size_mib * 2**20 // 4
    x = torch.ones(n, device=dev)
    out = torch.empty(n * world, device=dev)
    res = {"check": "comm", "world": world, "size_mib": size_mib}
    for name, fn, factor in (("all_reduce", lambda: dist.all_reduce(x), 2 * (world - 1) / world),
                             ("all_gather", lambda: dist.all_gather_into_tensor(out, x), (world - 1))):
        times = []
        for i in range(7):
            if cuda:
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn()
            if cuda:
                torch.cuda.synchronize()
            if i >= 2:
                times.append(time.perf_counter() - t)
        med = statistics.median(times)
        res[f"{name}_ms"] = round(med * 1e3, 2)
        res[f"{name}_busbw_GBps"] = round(n * 4 * factor / med / 1e9, 1)
    return res


def fmt_table(rows: list[dict]) -> str:
    head = "| shape | arm | variant | real tokens/s | MFU | peak GiB | first losses | note |"
    out = [head, "| --- | --- | --- | ---: | ---: | ---: | --- | --- |"]
    for r in rows:
        if "check" in r:
            continue
        variant = r.get("variant") or r.get("mode") or ""
        if r.get("micro_batch"):
            variant = f"{variant} mb{r['micro_batch']}x{r.get('seq_len')}"
        if r.get("error"):
            out.append(f"| {r.get('shape')} | {r['arm']} | {variant} | - | - | - | - | {r['error'][:120]} |")
            continue
        note = []
        if r.get("pack_fill") is not None:
            note.append(f"fill {r['pack_fill']:.2f}")
        if r.get("valid_training") is False or r.get("samples_isolated") is False:
            note.append("samples leak (not valid training)")
        if r.get("world", 1) > 1:
            note.append(f"per GPU, world {r['world']}")
        losses = ", ".join(f"{x:.2f}" for x in (r.get("first_losses") or [])[:4])
        out.append(f"| {r['shape']} | {r['arm']} | {variant} | {r['tokens_per_s']:,.0f} | {100 * r['mfu']:.1f}% "
                   f"| {r.get('peak_mem_gib')} | {losses} | {'; '.join(note)} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--shapes", default="llama-1b,smollm2-135m",
                    help="plans in PLANS: llama-1b, smollm2-135m, their -ours variants (our arm only), tiny")
    ap.add_argument("--arms", default="check,comm,plain,trl,torchtune,ours")
    ap.add_argument("--rows-to", default=None, help="also append every row (JSON line) to this file")
    ap.add_argument("--workdir", default=None, help="scratch folder for checkpoints the peers read (default under --out)")
    ap.add_argument("--steps-big", type=int, default=None, help="timed steps for the llama2-7b plans (default --steps)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per run")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation happens here)")
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="CPU smoke test: tiny shape, 3 steps")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="start no new run after this many seconds (the rest is listed as skipped)")
    a = ap.parse_args()
    import torch

    if a.quick:
        a.shapes, a.steps, a.warmup, a.samples = "tiny", 3, 1, 200
    start = time.time()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rank = int(os.environ.get("RANK", "0"))
    arms = set(a.arms.split(","))
    rows: list[dict] = []
    env = {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
           "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
           "world": int(os.environ.get("WORLD_SIZE", "1")), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    try:
        import transformers

        env["transformers"] = transformers.__version__
        import trl  # noqa: F401

        env["trl"] = trl.__version__
    except Exception as exc:
        env["trl"] = f"not importable: {exc}"
    if torch.cuda.is_available():  # the measured matmul ceiling, beside the datasheet's 989
        x = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        y = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        for _ in range(3):
            x @ y
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(10):
            x @ y
        torch.cuda.synchronize()
        env["matmul_tflops"] = round(10 * 2 * 8192 ** 3 / (time.perf_counter() - t0) / 1e12, 1)
        del x, y
        torch.cuda.empty_cache()
    if rank == 0:
        print("env:", json.dumps(env), flush=True)
        (out / "env.json").write_text(json.dumps(env, indent=2))

    from throughput_ours import run_ours, varlen_matches_masked

    for plan in a.shapes.split(","):
        shape = plan_shape(plan)
        vocab = C.SHAPES[shape]["vocab_size"]
        max_len = min([2048] + [o["seq_len"] for _, o in PLANS[plan] if o.get("seq_len")])
        samples = C.make_samples(a.samples, vocab, a.seed, max_len=max_len)
        for arm, opts in PLANS[plan]:
            if arm not in arms:
                continue
            if a.budget_s is not None and time.time() - start > a.budget_s:
                row = {"arm": arm, "shape": shape, **opts, "error": "skipped: --budget-s reached"}
                rows.append(row)
                print(json.dumps(row), flush=True)
                continue
            t0 = time.time()
            if arm == "comm":
                row = comm_check()
            elif arm == "check":
                try:
                    row = varlen_matches_masked(shape, samples, opts["seq_len"], a.seed)
                except Exception as exc:
                    row = {"check": "varlen vs masked", "shape": shape, "error": f"{type(exc).__name__}: {exc}"[:300]}
            elif arm == "plain":
                from throughput_arms import run_plain

                row = run_plain(shape, samples, steps=a.steps, warmup=a.warmup, seed=a.seed, **opts)
            elif arm == "trl":
                from throughput_arms import run_trl

                row = run_trl(shape, samples, steps=a.steps, warmup=a.warmup, seed=a.seed,
                              workdir=str(out / "trl_work"), **opts)
            elif arm == "torchtune":
                from throughput_torchtune import run_torchtune

                row = run_torchtune(shape, samples, steps=a.steps, warmup=a.warmup, seed=a.seed,
                                    workdir=a.workdir or str(out / "tt_work"), **opts)
            else:
                opts = dict(opts)
                if opts.pop("profile", False):
                    opts["profile_to"] = str(out / f"profile_{shape}_{opts['rows']}x{opts['seq_len']}.txt")
                steps = a.steps_big if (a.steps_big and shape == "llama2-7b") else a.steps
                row = run_ours(shape, samples, steps=steps, warmup=a.warmup, seed=a.seed, **opts)
            row["wall_s"] = round(time.time() - t0, 1)
            rows.append(row)
            if rank == 0:
                print(json.dumps(row), flush=True)
                with (out / "throughput.jsonl").open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                if a.rows_to:
                    with open(a.rows_to, "a") as fh:
                        fh.write(json.dumps({"plan": plan, **row}) + "\n")
        try:
            import torch._dynamo

            torch._dynamo.reset()
        except Exception:
            pass
    if rank == 0:
        table = fmt_table(rows)
        (out / "table.md").write_text(table + "\n")
        print(table)
        for r in rows:
            if "check" in r:
                print("check:", json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
