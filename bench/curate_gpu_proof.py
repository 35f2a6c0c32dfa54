#!/usr/bin/env python3
"""GPU path of the curation's fuzzy dedup, on a machine with a CUDA GPU (no dask-cuda needed).

    python bench/curate_gpu_proof.py [--docs 40000] [--out DIR]

1. MinHash signatures of the same shingle sets through the numpy backend (CPU) and the torch
   backend (on the GPU): they must be equal element for element; both are timed.
2. The FuzzyDedup stage on a Dask LocalCluster of 2 worker processes on this machine, backend
   "auto": each worker must see CUDA (so its signatures run through torch on the GPU), and the
   drop decisions must equal those of the same stage with backend "numpy" in this process.

Prints JSON lines (and writes them to DIR/curate_gpu_proof.jsonl); exit status 1 if a check fails.
The CPU machine cannot run this (no GPU); bench/fetch_curate_gpu_wheels.sh fetches the wheels the
device needs (dask, distributed, ftfy, pandas and their dependencies) into .whl/curate.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from curate_fuzzy import make_corpus  # noqa: E402
from sft_playbook.curate.dedup import FuzzyDedup, _cuda_here  # noqa: E402
from sft_playbook.curate.engine import Engine  # noqa: E402
from sft_playbook.curate.minhash import MinHasher, shingles  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=40_000)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    lines: list[dict] = []

    def say(rec: dict) -> None:
        lines.append(rec)
        print(json.dumps(rec), flush=True)

    import torch

    say({"torch": torch.__version__, "cuda": torch.cuda.is_available(),
         "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None})
    docs = make_corpus(args.docs - args.docs // 5, args.docs // 5)
    sh = [shingles(d, "words", 5) for d in docs]
    results = {}
    for backend in ("numpy", "torch", "numpy", "torch"):          # second round: warm
        hasher = MinHasher(160, 42, backend)
        if backend == "torch" and torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        sig = hasher.signatures(sh)
        if backend == "torch" and torch.cuda.is_available():
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        results[backend] = sig
        say({"minhash_backend": backend, "docs": len(sh), "seconds": round(dt, 3), "docs_per_s": round(len(sh) / dt)})
    same = bool(np.array_equal(results["numpy"], results["torch"]))
    say({"check": "torch (GPU) signatures == numpy signatures", "ok": same})

    df = pd.DataFrame({"id": [f"d{i}" for i in range(len(docs))], "_order": range(len(docs)), "text": docs})
    ref = FuzzyDedup("text", shingle="words", ngram=5, seed=42, backend="numpy")
    with Engine(engine="local", partition_rows=5_000) as eng:
        t0 = time.perf_counter()
        ref.fit(eng.partitions(df), eng)
        say({"fuzzy_stage": "engine=local, backend numpy", "seconds": round(time.perf_counter() - t0, 2),
             **ref.summary()})
    gpu = FuzzyDedup("text", shingle="words", ngram=5, seed=42, backend="auto")
    with Engine(engine="dask", n_workers=2, partition_rows=5_000) as eng:
        workers_cuda = sorted(set(eng.client.run(_cuda_here).values()))
        t0 = time.perf_counter()
        gpu.fit(eng.partitions(df), eng)
        say({"fuzzy_stage": "LocalCluster 2 workers, backend auto", "workers_see_cuda": workers_cuda,
             "seconds": round(time.perf_counter() - t0, 2), **gpu.summary()})
        gpu_drops = gpu.decisions(eng)       # the drop table stays on a worker: fetched to compare
    ok_stage = workers_cuda == [True] and gpu_drops == ref.drop_of and len(ref.drop_of) > 0
    say({"check": "workers used the GPU and dropped exactly what the CPU run dropped", "ok": ok_stage,
         "dropped": len(gpu_drops)})
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        Path(args.out, "curate_gpu_proof.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return 0 if same and ok_stage else 1


if __name__ == "__main__":
    sys.exit(main())
