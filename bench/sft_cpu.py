#!/usr/bin/env python3
"""Benchmark: the default CPU profile end to end (bash run_sft.sh's steps), timed per step.

Usage: .venv/bin/python bench/sft_cpu.py [key=value ...]    (overrides go to run_sft.py)
Prints one JSON line: seconds per step, total, validation loss first/last, text metrics.
The target (docs/benchmarks.md): train + predict + evaluate <= 15 min on 2 cores, val loss down.
"""
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv):
    import yaml

    # the effective config, run folder included (overrides that change the model name their own folder)
    printed = subprocess.run([sys.executable, str(ROOT / "run_sft.py"), "--print-config", *argv], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    cfg = yaml.safe_load(printed)
    times = {}
    for step in ("convert", "train", "predict", "evaluate"):
        t0 = time.time()
        rc = subprocess.run([sys.executable, str(ROOT / "run_sft.py"), step, *argv], cwd=ROOT).returncode
        times[step] = round(time.time() - t0, 1)
        if rc:
            print(f"step {step} failed with exit code {rc}", file=sys.stderr)
            return rc
    run = (ROOT / cfg["output_dir"] / cfg["run_name"]) if not os.path.isabs(cfg["output_dir"]) else \
        Path(cfg["output_dir"]) / cfg["run_name"]
    report = json.loads((run / "report.json").read_text())
    print(json.dumps({
        "machine": f"{platform.machine()} {os.cpu_count()} cores", "python": platform.python_version(),
        "seconds": times, "train_predict_evaluate_s": round(times["train"] + times["predict"] + times["evaluate"], 1),
        "val_loss": report.get("val_loss"),
        "text": {m: v["text"] for m, v in report["models"].items()},
        "verilog": {m: v.get("verilog") for m, v in report["models"].items()},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
