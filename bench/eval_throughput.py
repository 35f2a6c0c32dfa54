#!/usr/bin/env python3
"""Simulations per second of the Verilog evaluation, by number of parallel workers.

Two workloads, each job = compile + simulate one candidate in its own sandboxed temporary folder:
  verilogeval   the VerilogEval v2 reference solutions judged against their testbenches with
                upstream's flags (as `evaluate.py references` does), repeated --repeat times
  difftb        differential-testbench jobs (`evaluate_predictions`) on the hand-written designs
                of tests/fixtures/verilog_eval, replicated to --diff-rows rows

Usage:
  python bench/eval_throughput.py                          # workers 1, 2, ... up to all cores
  python bench/eval_throughput.py --workers 1,2 --repeat 1 --json out.json
  VERILOG_EVAL_DIR=/path/to/verilog-eval-v2 python bench/eval_throughput.py
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sft_playbook.evaluate.parallel import parallel_map  # noqa: E402
from sft_playbook.evaluate.simulate import PASS, default_workers  # noqa: E402
from sft_playbook.evaluate.verilog_metrics import evaluate_predictions  # noqa: E402
from sft_playbook.evaluate.verilogeval import _size_cost, judge, load_problems, reference_as_candidate  # noqa: E402
from sft_playbook.verilog.sandbox import iverilog_version  # noqa: E402

FIX = ROOT / "tests" / "fixtures" / "verilog_eval"
PAIRS = {"counter_ref": ["counter_ref", "counter_good_rewritten", "counter_onebit_bug"],
         "alu_ref": ["alu_ref", "alu_good_rewritten", "alu_onebit_bug"],
         "sreg_ref": ["sreg_ref", "sreg_good", "sreg_sync_reset_bug"]}


def find_bench_dir(arg: str | None) -> Path:
    for cand in (arg, os.environ.get("VERILOG_EVAL_DIR"), ROOT.parent / "shared/benchmarks/verilog-eval-v2",
                 ROOT / ".whl/eval/verilog-eval-v2", FIX / "problems"):
        if cand and Path(cand).is_dir():
            return Path(cand)
    raise SystemExit("no VerilogEval folder found")


def bench_verilogeval(problems, workers: int, repeat: int) -> dict:
    jobs = [p for _ in range(repeat) for p in problems]
    t0 = time.monotonic()
    res = parallel_map(lambda p: judge(p, reference_as_candidate(p), expected_samples=None), jobs,
                       workers=workers, progress=False, costs=[_size_cost(p) for p in jobs])
    dt = time.monotonic() - t0
    return {"jobs": len(jobs), "seconds": round(dt, 2), "sims_per_s": round(len(jobs) / dt, 2),
            "passed": sum(r["status"] == PASS for r in res)}


def bench_difftb(rows, workers: int) -> dict:
    t0 = time.monotonic()
    s = evaluate_predictions(rows, workers=workers, progress=False, timeout_s=20)
    dt = time.monotonic() - t0
    return {"jobs": len(rows), "seconds": round(dt, 2), "sims_per_s": round(len(rows) / dt, 2),
            "passed": s["functional_pass"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default=None, help="comma list (default: 1,2,4,... and all cores)")
    ap.add_argument("--problems-dir", default=None)
    ap.add_argument("--repeat", type=int, default=1, help="judge the reference set this many times per point")
    ap.add_argument("--diff-rows", type=int, default=90)
    ap.add_argument("--skip", choices=["verilogeval", "difftb"], action="append", default=[])
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    cores = default_workers(None)
    if args.workers:
        wl = [int(w) for w in args.workers.split(",")]
    else:
        wl, w = [], 1
        while w < cores:
            wl.append(w)
            w *= 2
        wl.append(cores)
    bench_dir = find_bench_dir(args.problems_dir)
    problems = load_problems(bench_dir)
    rows = []
    for i in range(args.diff_rows):
        ref, cands = list(PAIRS.items())[i % len(PAIRS)]
        cand = cands[(i // len(PAIRS)) % len(cands)]
        rows.append({"id": f"{cand}-{i}", "input": "", "reference": (FIX / f"{ref}.v").read_text(),
                     "prediction": (FIX / f"{cand}.v").read_text()})
    info = {"machine": platform.node(), "cpu": platform.processor() or platform.machine(), "cores": cores,
            "python": platform.python_version(), "iverilog": ".".join(map(str, iverilog_version() or ())),
            "problems_dir": str(bench_dir), "problems": len(problems), "repeat": args.repeat,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), info["cpu"])
    except OSError:
        pass
    print(json.dumps(info), flush=True)
    results = []
    for w in wl:
        point = {"workers": w}
        if "verilogeval" not in args.skip:
            point["verilogeval"] = bench_verilogeval(problems, w, args.repeat)
        if "difftb" not in args.skip:
            point["difftb"] = bench_difftb(rows, w)
        print(json.dumps(point), flush=True)
        results.append(point)
    print("\n| workers | VerilogEval refs: sims/s (jobs, s) | differential tb: sims/s (jobs, s) |")
    print("| --- | --- | --- |")
    for p in results:
        ve, dt = p.get("verilogeval"), p.get("difftb")
        print(f"| {p['workers']} | " + (f"{ve['sims_per_s']} ({ve['jobs']}, {ve['seconds']})" if ve else "-") + " | "
              + (f"{dt['sims_per_s']} ({dt['jobs']}, {dt['seconds']})" if dt else "-") + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"info": info, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
