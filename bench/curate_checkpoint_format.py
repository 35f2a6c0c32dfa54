#!/usr/bin/env python3
"""Checkpoint part files: Arrow IPC (``curate/frames.py``) against the pickles used before, on
one partition of real rows (REVIEW15b #16).

    .venv/bin/python bench/curate_checkpoint_format.py [--rows 2000] [--source PATH.jsonl]

The partition has the columns a pass leaves (id, source, _order, code, desc_high_level: pandas
``str``; unresolved_modules: object of str), rows from --source (default: the real MG-Verilog
slice beside the checkout, CC-BY-NC-SA-4.0, read from there), repeated up to --rows. Best of 5
write and read times of each format, file sizes, and the exact round trip are printed; then the
same with one lone surrogate in an object ``code`` column (the slower bytes path).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sft_playbook.curate.frames import read_frame, write_frame  # noqa: E402

REAL = Path(__file__).resolve().parents[2] / "shared/realdata/mg-verilog-course-slice/mg_verilog_high_level.jsonl"


def best(f, k: int = 5) -> float:
    t = 1e9
    for _ in range(k):
        s = time.perf_counter()
        f()
        t = min(t, time.perf_counter() - s)
    return t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--source", default=str(REAL if REAL.is_file() else Path("/work/shared") / REAL.relative_to(REAL.parents[2])))
    args = ap.parse_args()
    with open(args.source, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    n = len(rows)
    df = pd.DataFrame({"id": [f"mgv-{i}" for i in range(n)], "source": "mgv", "_order": np.arange(n, dtype=np.int64),
                       "code": [str(r.get("code", "")) for r in rows],
                       "desc_high_level": [str(r.get("description", "")) for r in rows],
                       "unresolved_modules": pd.Series([""] * n, dtype=object)})
    df = pd.concat([df] * (-(-args.rows // n)), ignore_index=True).iloc[:args.rows]
    with tempfile.TemporaryDirectory() as d:
        for label, frame in (("str columns", df), ("a lone surrogate in an object column",
                                                   df.astype({"code": object}).assign(code=lambda x: x["code"].where(x.index != 3, "x\ud800y")))):
            pk, ar = f"{d}/p.pkl", f"{d}/p.arrow"
            out = {"rows": len(frame), "case": label,
                   "pickle_write_ms": best(lambda f=frame, p=pk: f.to_pickle(p)) * 1e3,
                   "pickle_read_ms": best(lambda p=pk: pd.read_pickle(p)) * 1e3,
                   "arrow_write_ms": best(lambda f=frame, p=ar: write_frame(f, p)) * 1e3,
                   "arrow_read_ms": best(lambda p=ar: read_frame(p)) * 1e3,
                   "pickle_mb": os.path.getsize(pk) / 1e6, "arrow_mb": os.path.getsize(ar) / 1e6}
            pd.testing.assert_frame_equal(read_frame(ar), frame, check_exact=True)
            out["exact_round_trip"] = True
            print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
