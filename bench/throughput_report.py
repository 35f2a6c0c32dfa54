#!/usr/bin/env python3
"""Markdown tables from the rows of bench/throughput_device.sh (OUT/rows.jsonl): every arm with its
settings and numbers, ours / peer at equal tokens per optimizer step, and two-GPU per-GPU throughput
relative to our one-GPU run with the same rows per GPU.

Usage: python3 bench/throughput_report.py docs/device-runs/throughput-<date>-rows.jsonl
"""
from __future__ import annotations

import json
import sys


def settings(r: dict) -> str:
    if r["arm"] == "trl":
        keys = ("packing", "packing_strategy", "padding_free", "attn_implementation", "gradient_checkpointing",
                "use_liger_kernel", "torch_compile", "optimizer", "max_grad_norm")
        return ", ".join(f"{k}={r.get(k)}" for k in keys if k in r) + f", per_device_train_batch_size={r.get('micro_batch')}, max_length={r.get('seq_len')}"
    if r["arm"] == "torchtune":
        keys = ("dtype", "compile", "attention", "loss", "optimizer", "optimizer_in_bwd", "clip_grad_norm",
                "activation_checkpointing")
        return ", ".join(f"{k}={r.get(k)}" for k in keys) + f", batch_size={r.get('rows')} packed rows of {r.get('seq_len')}"
    if r["arm"] == "ours":
        return r.get("variant", "")
    return r.get("variant") or r.get("mode") or ""


def tokens_per_step(r: dict) -> int:
    if r["arm"] == "trl":
        return int(r.get("micro_batch") or 1) * int(r.get("seq_len") or 0)
    return int(r.get("rows") or 1) * int(r.get("seq_len") or 0) * int(r.get("accum") or 1)


def main(path: str) -> int:
    with open(path) as fh:
        rows = [json.loads(line) for line in fh]
    runs = [r for r in rows if "check" not in r]
    print("| plan | arm | settings | tokens / step / GPU | GPUs | real tokens/s (per GPU) | MFU | peak GiB | first losses |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in runs:
        if r.get("error"):
            print(f"| {r.get('plan')} | {r['arm']} | {settings(r)} | {tokens_per_step(r)} | {r.get('world', 1)} | "
                  f"- | - | - | {r['error'][:140]} |")
            continue
        losses = ", ".join(f"{x:.2f}" for x in (r.get("first_losses") or [])[:3])
        print(f"| {r.get('plan')} | {r['arm']} | {settings(r)} | {tokens_per_step(r)} | {r.get('world', 1)} | "
              f"{r['tokens_per_s']:,.0f} | {100 * r['mfu']:.1f} % | {r.get('peak_mem_gib')} | {losses} |")
    ok = [r for r in runs if not r.get("error")]
    ours1 = {tokens_per_step(r): r for r in ok if r["arm"] == "ours" and r.get("world", 1) == 1
             and r.get("variant", "").startswith("varlen/chunked/compile/") and "/" not in r["variant"].split("/", 3)[3]}
    print("\nours (one GPU, defaults of the fast path) / peer, at equal tokens per optimizer step:")
    for r in ok:
        if r["arm"] in ("trl", "torchtune") and tokens_per_step(r) in ours1:
            o = ours1[tokens_per_step(r)]
            print(f"- {tokens_per_step(r)} tokens/step: ours {o['tokens_per_s']:,.0f} / {r['arm']} "
                  f"({settings(r)[:60]}...) {r['tokens_per_s']:,.0f} = {o['tokens_per_s'] / r['tokens_per_s']:.2f} x")
    print("\ntwo GPUs, per-GPU throughput / our one-GPU throughput at the same rows per GPU:")
    for r in ok:
        if r["arm"] == "ours" and r.get("world", 1) > 1 and r.get("shape") != "llama2-7b":
            o = ours1.get(tokens_per_step(r))
            if o:
                print(f"- {r['variant']}: {r['tokens_per_s']:,.0f} / {o['tokens_per_s']:,.0f} = "
                      f"{100 * r['tokens_per_s'] / o['tokens_per_s']:.1f} %")
    for r in rows:
        if "check" in r:
            print("\ncheck:", json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
