#!/usr/bin/env python3
"""Where each pass's time goes on the workers: CPU seconds, wall seconds and page faults of the
tasks of every pass, for bench/curate_scale.py's corpus, cluster and recipes.

    .venv/bin/python bench/curate_pass_cpu.py --docs 100000                 # both recipes
    .venv/bin/python bench/curate_pass_cpu.py --docs 300000 --recipe full

Wall clock on this shared 2-core machine moves 2-5x with the other engineers' load; the CPU
seconds of a task's own thread (``time.thread_time``) hardly do, so passes and versions can be
compared at any load. Each pass task of the pipeline (``pipeline._pass``: one per partition) is
wrapped: its thread CPU, wall time and the worker's minor page faults meanwhile are appended to a
jsonl file (the workers run on this machine). Everything else is curate_scale's measurement (one
fresh driver process per recipe, its JSON line).

Prints, per recipe, curate_scale's JSON line plus ``tasks``: per pass (stages, the global stage
whose keys it computes, whether it writes the kept rows) the task count, rows in, task CPU s, task
wall s (summed over the tasks) and page faults, and the 1-minute load average before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LOG_ENV = "CURATE_PASS_CPU_LOG"


def timed_pass(part, index, states, chain, keys_of, keep_gone, load=None, finish=None):
    """``pipeline._pass`` with its thread CPU, wall and page faults logged (runs on a worker)."""
    from sft_playbook.curate import pipeline

    run = getattr(pipeline, "_pass_untimed", pipeline._pass)     # the worker's module is not patched
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    w0, c0 = time.perf_counter(), time.thread_time()
    out = run(part, index, states, chain, keys_of, keep_gone, load, finish)
    cpu, wall = time.thread_time() - c0, time.perf_counter() - w0
    with open(os.environ[LOG_ENV], "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"stages": [s.name for s in chain.stages], "keys_of": keys_of.name if keys_of is not None else None,
                             "writes_kept": finish is not None, "rows": out[2]["rows"], "cpu_s": cpu, "wall_s": wall,
                             "page_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0}) + "\n")
    return out


def per_pass(log: Path) -> list[dict]:
    """The logged tasks summed per pass, in order."""
    out: dict[tuple, dict] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        t = json.loads(line)
        d = out.setdefault((tuple(t["stages"]), t["keys_of"], t["writes_kept"]),
                           {"stages": t["stages"], "keys_of": t["keys_of"], "writes_kept": t["writes_kept"], "tasks": 0,
                            "rows_in": 0, "cpu_s": 0.0, "wall_s": 0.0, "page_faults": 0})
        d["tasks"] += 1
        for k in ("rows_in", "cpu_s", "wall_s", "page_faults"):
            d[k] += t["rows" if k == "rows_in" else k]
    return [{**d, "cpu_s": round(d["cpu_s"], 2), "wall_s": round(d["wall_s"], 2)} for d in out.values()]


def child(folder: Path, recipe: str, workers: int, partition_rows: int) -> dict:
    import curate_scale

    from sft_playbook.curate import pipeline

    log = folder / f"tasks-{recipe}.jsonl"
    log.unlink(missing_ok=True)
    os.environ[LOG_ENV] = str(log)                  # before the cluster starts: the workers inherit it
    pipeline._pass_untimed = pipeline._pass
    pipeline._pass = timed_pass
    res = curate_scale.run(folder, workers, partition_rows, False, recipe)
    return {**res, "tasks": per_pass(log)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--recipe", nargs="+", choices=["rules", "full"], default=["rules", "full"])
    ap.add_argument("--words", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--partition-rows", type=int, default=10_000)
    ap.add_argument("--corpus", help="a folder with in/*.jsonl made by curate_scale.py's generator (kept); default: a fresh temporary one")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.corpus), args.child, args.workers, args.partition_rows)))
        return 0
    here = Path(__file__).resolve()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here.parent), str(here.parents[1])])}
    with tempfile.TemporaryDirectory(prefix="curate-pass-cpu-") as tmp:
        corpus = Path(args.corpus) if args.corpus else Path(tmp)
        if not (corpus / "in").is_dir():
            subprocess.run([sys.executable, str(here.parent / "curate_scale.py"), "--child", "generate", "--docs", str(args.docs),
                            "--words", str(args.words), "--folder", str(corpus)], check=True, env=env)
        work = Path(tmp) / "work"
        work.mkdir()
        (work / "in").symlink_to((corpus / "in").resolve())
        for name in args.recipe:
            before = round(os.getloadavg()[0], 1)
            res = subprocess.run([sys.executable, str(here), "--child", name, "--corpus", str(work), "--workers", str(args.workers),
                                  "--partition-rows", str(args.partition_rows)], check=True, env=env, capture_output=True, text=True)
            line = {"load_before": before, **json.loads(res.stdout.strip().splitlines()[-1])}
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
