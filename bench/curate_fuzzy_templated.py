#!/usr/bin/env python3
"""Fuzzy dedup on TEMPLATED Verilog (issue 15, REVIEW15b #4): where the work and the memory of
``FuzzyDedup.fit`` go when many rows come from one module template (generated or scraped RTL).

    .venv/bin/python bench/curate_fuzzy_templated.py --rows 20000 [--workers 2] [--partition-rows 2000]
        [--near 0.002] [--truth 0] [--json out.json]

Corpus (``templated_corpus``): every row is the same module template (a clocked register fed by
1..4 ``wire`` lines ``s = a OP CONST``) with its own module/signal names, widths, operators and
constants, and a near copy of an earlier row (one constant or operator changed) every
1/--near rows. Normalised identifiers make the rows' token shingles overlap heavily: most pairs
sit around Jaccard 0.3..0.8, near the LSH S-curve's centre (0.69), so candidate pairs grow with
the rows while verified pairs grow with the near copies only.

Measured on a Dask LocalCluster (--workers processes, 1 thread each; the partitions and their
band keys are made first, as the pass before fuzzy dedup leaves them): fit wall seconds, CPU
seconds (driver + workers), each worker's RSS before ``fit`` (the partitions and band keys it
holds) and peak RSS during ``fit`` (VmHWM, reset before ``fit`` through /proc/<pid>/clear_refs), the summary's candidate and verified pairs, and
``FuzzyDedup.fit_stats`` (the largest verification task's rows and candidate pairs); with code
that has no ``fit_stats`` (before the fix) the largest component group is recomputed here from the
candidate graph. ``drops_sha256``: a digest of the sorted drop table (compare two versions).
``--truth N``: precision/recall of the dropped rows' pairs against the exact Jaccard of every
pair of the first N rows (run on N rows).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sft_playbook.curate.dedup import FuzzyDedup  # noqa: E402
from sft_playbook.curate.engine import Engine  # noqa: E402

OPS = ["+", "-", "&", "|", "^"]
WORDS = "counter register adder shifter latch buffer decoder encoder filter mux arbiter timer fifo".split()


def templated_corpus(n: int, near: float = 0.002, seed: int = 0) -> pd.DataFrame:
    """``n`` rows of one module template (columns id, _order, code); see the module docstring.

    Returns:
        A frame of ``n`` rows: ``id`` ``t<i>``, ``_order`` i, ``code`` the module text.
    """
    r = random.Random(seed)
    codes: list[str] = []
    every = max(2, int(round(1 / near))) if near > 0 else 0
    for i in range(n):
        if every and i % every == every - 1 and codes:
            base = codes[r.randrange(len(codes))]
            lines = base.split("\n")
            k = r.randrange(1, len(lines) - 2)
            codes.append("\n".join(lines[:k] + [lines[k].replace(";", f" ^ {r.randrange(9)};")] + lines[k + 1:]))
            continue
        w = r.randint(2, 32)
        a = r.choice(WORDS)
        sig = [f"s{i}_{k}_{r.randrange(10**6)}" for k in range(r.randint(1, 4))]
        body = "\n".join(f"  wire [{w - 1}:0] {s} = a {r.choice(OPS)} {r.randrange(2**16)};" for s in sig)
        codes.append(f"module m{i}_{a}_{r.randrange(10**9)} (input clk, input [{w - 1}:0] a, output reg [{w - 1}:0] y);\n"
                     f"{body}\n  always @(posedge clk) y <= {sig[-1]} {r.choice(OPS)} a;\nendmodule\n")
    return pd.DataFrame({"id": [f"t{i}" for i in range(n)], "_order": np.arange(n, dtype=np.int64), "code": codes})


def _reset_peak() -> int:
    """Reset this process's VmHWM to its current RSS; returns that RSS in bytes."""
    try:
        Path(f"/proc/{os.getpid()}/clear_refs").write_text("5")
    except OSError:
        pass
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _peak_and_cpu() -> tuple[int, float]:
    hwm = 0
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) * 1024
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return hwm, ru.ru_utime + ru.ru_stime


def old_groups(stage: FuzzyDedup, df: pd.DataFrame, groups: int) -> dict:
    """For code without ``fit_stats``: the old step 2's component groups (pairs and rows per group)."""
    from sft_playbook.curate.dedup import band_keys, band_pairs, candidate_graph
    from sft_playbook.curate.minhash import MinHasher

    c = stage.config
    sigs = MinHasher(c["num_perm"], c["seed"], "numpy").signatures([stage._shingles(t) for t in df["code"]])
    keys = band_keys(sigs, df["_order"].to_numpy(), c["bands"], c["rows"])
    pairs = band_pairs(keys, c["rows"], c["max_bucket"])
    gp, (nodes, group), n = candidate_graph(pairs, groups=groups)
    rows = np.bincount(group, minlength=groups)
    return {"group_pairs": [len(p) for p in gp], "group_rows": rows.tolist(),
            "largest_task_pairs": int(max(len(p) for p in gp)), "largest_task_rows": int(rows.max())}


def truth(stage: FuzzyDedup, df: pd.DataFrame, drops: dict) -> dict:
    """Exact Jaccard of every pair (all n^2/2): are the dropped rows' pairs true, and is every row
    that has a true pair with a kept row dropped?"""
    from sft_playbook.curate.minhash import jaccard

    c = stage.config
    sh = [stage._shingles(t) for t in df["code"]]
    ids = df["id"].tolist()
    pos = {k: i for i, k in enumerate(ids)}
    true_pairs = {(i, j) for i in range(len(sh)) for j in range(i + 1, len(sh)) if jaccard(sh[i], sh[j]) >= c["threshold"]}
    ok = sum(1 for d, (k, _) in drops.items() if jaccard(sh[pos[d]], sh[pos[k]]) >= c["threshold"])
    kept = set(ids) - set(drops)
    should = {ids[j] for i, j in true_pairs if ids[i] in kept}          # i < j: rows are in _order
    return {"true_pairs": len(true_pairs), "dropped": len(drops), "dropped_with_true_pair_to_kept": ok,
            "precision": ok / len(drops) if drops else 1.0,
            "rows_with_true_pair_to_an_earlier_kept_row": len(should),
            "recall": (len(should & set(drops)) / len(should)) if should else 1.0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--partition-rows", type=int, default=2000)
    ap.add_argument("--near", type=float, default=0.002)
    ap.add_argument("--truth", type=int, default=0, help="rows for the exact all-pairs ground truth (0: none)")
    ap.add_argument("--memory-limit", default="6GiB")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    df = templated_corpus(args.truth or args.rows, args.near)
    stage = FuzzyDedup("code", seed=42)
    out: dict = {"rows": len(df), "workers": args.workers, "partition_rows": args.partition_rows,
                 "load_1min_at_start": os.getloadavg()[0]}
    with Engine(engine="dask", n_workers=args.workers, partition_rows=args.partition_rows,
                memory_limit=args.memory_limit) as eng:
        parts = eng.partitions(df)
        keys = eng.map(stage.keys, parts)
        eng.gather(eng.map(len, keys))
        at_start = eng.client.run(_reset_peak)
        out["worker_rss_before_fit_mb"] = sorted(round(v / 2**20, 1) for v in at_start.values())
        before = eng.client.run(_peak_and_cpu)
        t0, c0 = time.perf_counter(), time.process_time()
        stage.fit(parts, eng, keys)
        out["fit_wall_s"] = round(time.perf_counter() - t0, 2)
        out["driver_cpu_s"] = round(time.process_time() - c0, 2)
        after = eng.client.run(_peak_and_cpu)
        out["workers_cpu_s"] = round(sum(after[w][1] - before[w][1] for w in after), 2)
        out["max_worker_peak_rss_mb"] = round(max(v[0] for v in after.values()) / 2**20, 1)
        out["worker_peak_rss_mb"] = sorted(round(v[0] / 2**20, 1) for v in after.values())
        drops = stage.decisions(eng)
    out["load_1min_at_end"] = os.getloadavg()[0]
    out["summary"] = {k: v for k, v in stage.summary().items() if k != "cluster_sizes"}
    out["fit_stats"] = getattr(stage, "fit_stats", None) or old_groups(stage, df, 2 * args.workers)
    out["drops_sha256"] = hashlib.sha256(json.dumps(sorted(drops.items())).encode()).hexdigest()
    if args.truth:
        out["truth"] = truth(stage, df, drops)
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
