"""Where the decontamination floors come from (configs/curate.yaml: decontaminate.*), measured on
the benchmark folder itself and on real MG-Verilog rows.

    .venv/bin/python bench/curate_decontam_floors.py [--bench DIR] [--real FILE]

Prints, for a grid of ``template_share`` (n-grams in at least this share of the problems are
benchmark boilerplate) and ``min_ngrams`` (size floor on the contained side):

* the benchmark: problems, template n-grams, distinctive n-grams per reference / prompt
  (quantiles) and how many fall below the floor;
* recall on true contamination built from every problem: the reference as a row's code (module
  renamed, re-indented), the reference inside a longer real design, the prompt as a description,
  the prompt inside a longer real description;
* false positives on what is not contamination: the real MG-Verilog rows (code and summary), short
  generic modules (gates, muxes, flip-flops, counters, adders of several widths), real designs
  with a one-line benchmark reference pasted in, real summaries with one benchmark sentence in.

Uses the real slice from ../shared (never copied into the repository); the numbers go in
docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sft_playbook.curate.base import REASON  # noqa: E402
from sft_playbook.curate.clean import CleanAndUnify  # noqa: E402
from sft_playbook.curate.decontam import Side, match, text_grams  # noqa: E402
from sft_playbook.curate.decontam import code_grams as _code_grams  # noqa: E402
from sft_playbook.curate.textutil import code_tokens as _code_tokens  # noqa: E402
from sft_playbook.io import read_jsonl, read_text  # noqa: E402

SHARED = ROOT.parent / "shared"
if not SHARED.is_dir():
    SHARED = Path("/work/shared")


def generic_modules() -> list[str]:
    out = []
    for w in (1, 4, 8, 16, 32):
        r = f"[{w - 1}:0] " if w > 1 else ""
        for op, name in (("&", "and"), ("|", "or"), ("^", "xor")):
            out.append(f"module {name}{w}(input {r}a, input {r}b, output {r}y);\n  assign y = a {op} b;\nendmodule")
        out.append(f"module not{w}(input {r}a, output {r}y);\n  assign y = ~a;\nendmodule")
        out.append(f"module mux2_{w}(input {r}a, input {r}b, input s, output {r}y);\n  assign y = s ? b : a;\nendmodule")
        out.append(f"module add{w}(input {r}a, input {r}b, output [{w}:0] s);\n  assign s = a + b;\nendmodule")
        out.append(f"module dff{w}(input clk, input {r}d, output reg {r}q);\n  always @(posedge clk) q <= d;\nendmodule")
        out.append(f"module dffr{w}(input clk, input rst, input {r}d, output reg {r}q);\n"
                   f"  always @(posedge clk) if (rst) q <= 0; else q <= d;\nendmodule")
        out.append(f"module cnt{w}(input clk, input rst, output reg {r}q);\n"
                   f"  always @(posedge clk or posedge rst) if (rst) q <= 0; else q <= q + 1;\nendmodule")
        out.append(f"module reg_en{w}(input clk, input en, input {r}d, output reg {r}q);\n"
                   f"  always @(posedge clk) begin if (en) q <= d; end\nendmodule")
        out.append(f"module mux4_{w}(input {r}a, input {r}b, input {r}c, input {r}d, input [1:0] s, output reg {r}y);\n"
                   f"  always @(*) begin\n    case (s)\n      2'b00: y = a;\n      2'b01: y = b;\n      2'b10: y = c;\n"
                   f"      default: y = d;\n    endcase\n  end\nendmodule")
        out.append(f"module shreg{w}(input clk, input rst, input din, output reg {r}q);\n"
                   f"  always @(posedge clk) begin\n    if (rst) q <= 0;\n    else q <= {{q, din}};\n  end\nendmodule")
        out.append(f"module cmp{w}(input {r}a, input {r}b, output eq, output gt, output lt);\n"
                   f"  assign eq = (a == b);\n  assign gt = (a > b);\n  assign lt = (a < b);\nendmodule")
        out.append(f"module parity{w}(input {r}in, output p);\n  assign p = ^in;\nendmodule")
    out.append("module dec2to4(input [1:0] a, input en, output reg [3:0] y);\n  always @(*) begin\n    y = 4'b0000;\n"
               "    if (en) y[a] = 1'b1;\n  end\nendmodule")
    out.append("module fa(input a, input b, input cin, output sum, output cout);\n  assign {cout, sum} = a + b + cin;\n"
               "endmodule")
    out.append("module ha(input a, input b, output sum, output carry);\n  assign sum = a ^ b;\n  assign carry = a & b;\n"
               "endmodule")
    return out


def load_real(path: Path) -> pd.DataFrame:
    rows = read_jsonl(path)
    df = pd.DataFrame({"id": [r["id"] for r in rows], "source": "real", "_order": range(len(rows)),
                       "code": [r["code"] for r in rows],
                       "desc_high_level": [r["description"]["high_level_global_summary"] for r in rows]})
    out = CleanAndUnify(["high_level"])(df)
    return out[out[REASON] == ""].reset_index(drop=True)


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if len(s.split()) >= 6]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default=str(SHARED / "benchmarks/verilog-eval-v2/spec-to-rtl"))
    ap.add_argument("--real", default=str(SHARED / "realdata/mg-verilog-course-slice/mg_verilog_high_level.jsonl"))
    ap.add_argument("--code-ngram", type=int, default=5)
    ap.add_argument("--text-ngram", type=int, default=8)
    ap.add_argument("--containment", type=float, default=0.8)
    ap.add_argument("--normalize-identifiers", action="store_true")
    ap.add_argument("--template-share", type=float, nargs="+", default=[0.0, 0.02, 0.05, 0.1])
    ap.add_argument("--min-ngrams", type=int, nargs="+", default=[5, 10, 15, 20])

    args = ap.parse_args()
    t0 = time.time()
    folder = Path(args.bench)
    refs = {p.name[:-7]: read_text(p) for p in sorted(folder.glob("*_ref.sv"))}
    prompts = {p.name[:-11]: read_text(p) for p in sorted(folder.glob("*_prompt.txt"))}
    real = load_real(Path(args.real))
    rng = random.Random(0)
    cn, tn, cont = args.code_ngram, args.text_ngram, args.containment
    norm = args.normalize_identifiers

    def code_grams(text, n):
        return _code_grams(text, n, norm)
    ref_g = {k: code_grams(v, cn) for k, v in refs.items()}
    pr_g = {k: text_grams(v, tn) for k, v in prompts.items()}

    # positives: one of each per problem
    reals_code, reals_desc = real["code"].tolist(), real["desc_high_level"].tolist()
    pos = {
        "ref as code": {k: code_grams(re.sub(r"\bRefModule\b", "TopModule", v).replace("\n", "\n  "), cn)
                        for k, v in refs.items()},
        "ref inside a longer design": {k: code_grams(rng.choice(reals_code) + "\n" + v, cn) for k, v in refs.items()},
        "prompt as description": {k: text_grams(v, tn) for k, v in prompts.items()},
        "prompt inside longer text": {k: text_grams(rng.choice(reals_desc) + "\n\n" + v + "\n\n" + rng.choice(reals_desc), tn)
                                      for k, v in prompts.items()},
    }
    # negatives
    # generic one-line statements of the references (<= 12 tokens: `assign out = a & b;`); a longer
    # line that is a problem's whole answer (a K-map expression) is the answer, not a generic line
    one_liners = sorted({ln.strip() for v in refs.values() for ln in v.splitlines()
                         if ln.strip().endswith(";") and not ln.strip().startswith(("input", "output", "module", "//"))
                         and len(_code_tokens(ln)) <= 12})
    # one-line statements of the problems (6-25 words, after the template paragraph and the port
    # list; a waveform table or a state diagram is the whole problem, not a statement)
    prompt_sentences = [s for v in prompts.values()
                        for s in sentences("\n".join(ln for ln in v.split("\n\n", 1)[-1].splitlines()
                                                     if not ln.strip().startswith("- ")))
                        if len(s.split()) <= 25]
    neg = {
        "real MG-Verilog code": [code_grams(c, cn) for c in reals_code],
        "real MG-Verilog summaries": [text_grams(d, tn) for d in reals_desc],
        "short generic modules": [code_grams(c, cn) for c in generic_modules()],
        "real design + one-line benchmark statement": [
            code_grams(c.replace("endmodule", rng.choice(one_liners) + "\nendmodule", 1), cn) for c in reals_code[:600]],
        "real summary + one benchmark sentence": [text_grams(d + " " + rng.choice(prompt_sentences), tn)
                                                  for d in reals_desc[:600]],
    }
    is_code = {k: ("code" in k or "design" in k or "modules" in k or "ref" in k) for k in list(pos) + list(neg)}

    print(f"benchmark: {folder} ({len(refs)} references, {len(prompts)} prompts); real rows: {len(real)}; "
          f"code {cn}-grams, text {tn}-grams, containment {cont}")
    print(f"code identifiers {'normalised' if norm else 'as written'}")
    head = ["template_share", "min_ngrams", "refs<floor", "prompts<floor"] + \
        [f"recall: {k}" for k in pos] + [f"FP: {k}" for k in neg]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for ts in args.template_share:
        rs, ps = Side(ref_g, ts), Side(pr_g, ts)
        rsz, psz = np.array(list(rs.sizes.values())), np.array(list(ps.sizes.values()))
        print(f"| {ts} | template n-grams: code {len(rs.template)}, text {len(ps.template)}; distinctive per reference "
              f"p5/p25/p50 {np.percentile(rsz, [5, 25, 50]).astype(int).tolist()}, per prompt "
              f"{np.percentile(psz, [5, 25, 50]).astype(int).tolist()} |")
        for mn in args.min_ngrams:
            cells = [str(ts), str(mn), str(int((rsz < mn).sum())), str(int((psz < mn).sum()))]
            for k, items in pos.items():
                side = rs if is_code[k] else ps
                hit = sum(1 for name, g in items.items() if (m := match(g, side, cont, 0.5, mn)) and m[0] == name)
                cells.append(f"{hit}/{len(items)}")
            for k, items in neg.items():
                side = rs if is_code[k] else ps
                cells.append(f"{sum(1 for g in items if match(g, side, cont, 0.5, mn))}/{len(items)}")
            print("| " + " | ".join(cells) + " |", flush=True)
    # what the chosen defaults flag among the real rows (to inspect by hand)
    ts, mn = args.template_share[0], args.min_ngrams[0]
    rs, ps = Side(ref_g, ts), Side(pr_g, ts)
    flagged = [(rid, m) for rid, c in zip(real["id"], reals_code) if (m := match(code_grams(c, cn), rs, cont, 0.5, mn))]
    flagged += [(rid, m) for rid, d in zip(real["id"], reals_desc) if (m := match(text_grams(d, tn), ps, cont, 0.5, mn))]
    print(f"\nreal rows flagged at template_share {ts}, min_ngrams {mn}: {len(flagged)}")
    print(f"generic one-line statements used: {len(one_liners)}, e.g. {one_liners[:3]}")
    for rid, m in flagged[:10]:
        print(f"  {rid}: {m[0]} benchmark-in-row {m[1]:.2f} row-in-benchmark {m[2]:.2f} Jaccard {m[3]:.2f} row n-grams {m[4]}")
    print(f"({time.time() - t0:.1f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
