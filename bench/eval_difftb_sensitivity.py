#!/usr/bin/env python3
"""How often does the differential testbench notice a small bug? Mutation test on real designs.

For each design of a jsonl file (default: the shipped MG-Verilog sample, body + header from the
description), make single-token mutants of the reference (`+`->`-`, `&`->`|`, `|`->`^`,
`==`->`!=`, `<`->`<=`, a constant bit `1'b0`<->`1'b1`, `~` removed), keep the mutants that still
compile, and run each against the original with `evaluate_predictions`. Reports the share flagged
as mismatch (some mutants are equivalent or unreachable with random stimulus, so 100% is not
expected) and that the unmutated designs all pass.

Usage: python bench/eval_difftb_sensitivity.py [--data FILE] [--max-mutants-per-design 3] [--workers N]
       [--cycles 200] [--timeout-s 5] [--out-dir DIR]
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sft_playbook.evaluate.extract import extract_code  # noqa: E402
from sft_playbook.evaluate.verilog_metrics import evaluate_predictions  # noqa: E402

MUTATIONS = [(r"(?<![+])\+(?![+:])", "-"), (r"(?<![&])&(?![&])", "|"), (r"(?<![|])\|(?![|])", "^"),
             (r"==", "!="), (r"(?<![<])<(?![<=])", "<="), (r"1'b0", "1'b1"), (r"1'b1", "1'b0"), (r"~(?=\w)", "")]


def mutants(code: str, rng: random.Random, k: int) -> list[tuple[str, str]]:
    head, sep, body = code.partition(";")  # never mutate the module header
    out = []
    for pat, rep in MUTATIONS:
        for m in re.finditer(pat, body):
            out.append((f"{pat}->{rep}@{m.start()}", head + sep + body[:m.start()] + rep + body[m.end():]))
    rng.shuffle(out)
    return out[:k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT / "data/sample/mg_verilog_sample.jsonl"))
    ap.add_argument("--level", default="high_level_global_summary")
    ap.add_argument("--max-mutants-per-design", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout-s", type=float, default=5.0)
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--out-dir", default=None, help="write per-mutant results here")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    originals, mutated = [], []
    for i, line in enumerate(open(args.data, encoding="utf-8")):  # noqa: SIM115 - read-only, closed by GC
        d = json.loads(line)
        desc = d["description"][args.level] if isinstance(d.get("description"), dict) else d.get("input", "")
        ex = extract_code(d.get("code") or d.get("output", ""), input_text=desc)
        if not ex.ok:
            continue
        originals.append({"id": f"{i}", "input": desc, "reference": ex.code, "prediction": ex.code})
        for tag, code in mutants(ex.code, rng, args.max_mutants_per_design):
            mutated.append({"id": f"{i}:{tag}", "input": desc, "reference": ex.code, "prediction": code})
    t0 = time.monotonic()
    kw = dict(workers=args.workers, progress=False, timeout_s=args.timeout_s, cycles=args.cycles)
    so = evaluate_predictions(originals, **kw)
    sm = evaluate_predictions(mutated, out_dir=args.out_dir, **kw)
    sc = Counter(sm["status_counts"])
    simulated = sc["pass"] + sc["mismatch"]
    print(json.dumps({"designs": len(originals), "originals": so["status_counts"], "mutants": len(mutated),
                      "mutant_statuses": dict(sc), "simulated_mutants": simulated,
                      "detected_share_of_simulated": round(sc["mismatch"] / simulated, 3) if simulated else None,
                      "seconds": round(time.monotonic() - t0, 1)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
