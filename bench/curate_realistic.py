"""The curation funnel on a realistic corpus: the real MG-Verilog slice plus planted rows with the
shapes real scraped RTL has and our own sample never showed.

    .venv/bin/python bench/curate_realistic.py                       # this checkout
    mkdir /tmp/before && git archive <commit> | tar -x -C /tmp/before        # a "before" checkout
    .venv/bin/python bench/curate_realistic.py --checkout /tmp/before --checkout .   # before / after

Corpus (built in a temporary folder; the real rows are read from ../shared, never copied here):

* source 1: ``../shared/realdata/mg-verilog-course-slice/mg_verilog_high_level.jsonl`` as it is
  (1,671 real rows, CC-BY-NC-SA-4.0);
* source 2: planted rows in the same raw MG-Verilog shape, in a file saved with a UTF-8 BOM:
  near-duplicate chains built from real rows (A~B and B~C >= 0.8, A~C < 0.8, exact Jaccard
  printed), an exact copy of a real row with other comments and spacing, benchmark prompts
  embedded whole in longer descriptions, benchmark references as code, short generic modules, long
  designs with a one-line benchmark statement pasted in, author lines with non-ASCII names, digit
  tables and long constants in comments and descriptions, real phone numbers and e-mails, a row
  with a wrapper whose system text is empty, a hierarchy row that uses a module another planted row
  defines.

Each ``--checkout`` runs ``curate_data.py`` of that checkout (its code and configs/curate.yaml)
on the same corpus with ``engine.engine=local``; the table printed is rows dropped per stage and
reason, side by side, then the outcome of every planted kind (expected vs what happened). Numbers
go in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sft_playbook.curate.minhash import jaccard, shingles  # noqa: E402
from sft_playbook.io import BOM, read_jsonl, read_text  # noqa: E402

SHARED = (ROOT / ".." / "shared").resolve()
if not SHARED.is_dir():
    SHARED = Path("/work/shared")
SYS_WRAP = ("<s>[INST] <<SYS>>\n You only complete chats with syntax correct Verilog code. End the Verilog module code "
            "completion with 'endmodule'. Do not include module, input and output definitions. <</SYS>>\n\n Implement the "
            "Verilog module based on the following description. Assume that signals are positive clock/clk edge "
            "triggered unless otherwise stated.\n\n")
EMPTY_SYS_WRAP = "<s>[INST] <<SYS>>\n\n Implement the Verilog module based on the following description.\n\n"


def raw_row(rid: str, header: str, body: str, summary: str, wrap: str = SYS_WRAP) -> dict:
    return {"id": rid, "code": body,
            "description": {"high_level_global_summary": f"{wrap}{summary}\n\n Module header:\n\n{header}\n [/INST]\n"}}


def split_module(src: str) -> tuple[str, str]:
    """(header 'module ...;', body up to and including endmodule) of a one-module source."""
    m = re.search(r"\bmodule\b.*?\)\s*;", src, re.DOTALL)
    return m.group(0), src[m.end():].strip()


_NUM = re.compile(r"(?<![\w'.$])\d+(?![\w'.])")


def edit_numbers(body: str, which: set[int], salt: int) -> str:
    k = -1

    def sub(m):
        nonlocal k
        k += 1
        return str(int(m.group(0)) + 1 + salt % 3) if k in which else m.group(0)

    return _NUM.sub(sub, body)


def compiles_alone(header: str, body: str) -> bool:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "m.v"
        f.write_text(header + "\n" + body + "\n", encoding="utf-8")
        return subprocess.run(["iverilog", "-g2012", "-tnull", str(f)], capture_output=True).returncode == 0


def near_chain(real: list[dict], start: int):
    """B, C from one real row A (which stays in the corpus as it is) by editing numeric literals:
    A~B, B~C >= 0.8 > A~C (verified); A compiles on its own (no submodules)."""
    for r in real[start:] + real[:start]:
        body = r["code"]
        n = len(_NUM.findall(body))
        if n < 40 or len(body) > 6000:
            continue
        for step in (6, 7, 8, 9, 10, 12):
            b = edit_numbers(body, set(range(0, n, step)), 0)
            c = edit_numbers(b, set(range(step // 2, n, step)), 1)
            sa, sb, sc = (shingles(x) for x in (body, b, c))
            jab, jbc, jac = jaccard(sa, sb), jaccard(sb, sc), jaccard(sa, sc)
            if jab >= 0.82 and jbc >= 0.82 and jac < 0.78:
                header, _ = _header_summary(r)
                if compiles_alone(header, body) and compiles_alone(header, c):
                    return r, [body, b, c], (jab, jbc, jac)
                break
    raise RuntimeError("no real row gives a near-duplicate chain")


def own_design(k: int) -> tuple[str, str, str]:
    """A distinct datapath module of our own (header, body, summary): ten results from random
    operators and constants (seeded by k), so two of them share almost no token 5-grams."""
    import random

    rng = random.Random(1000 + k)
    ops = ["&", "|", "^", "+", "-"]
    outs = [f"result_{i}" for i in range(10)]
    header = (f"module datapath_{k} (\n  input [7:0] operand_a,\n  input [7:0] operand_b,\n"
              + "".join(f"  output [7:0] {o}{',' if i < 9 else ''}\n" for i, o in enumerate(outs)) + ");")
    body = "\n".join(f"assign {o} = (operand_a {rng.choice(ops)} 8'd{rng.randrange(256)}) {rng.choice(ops)} "
                     f"(operand_b {rng.choice(ops)} 8'd{rng.randrange(256)});" for o in outs) + "\nendmodule"
    summary = (f"A combinational datapath block number {k} that derives ten eight bit results from the two operands "
               "by masking, offsetting and combining them with fixed constants.")
    return header, body, summary


# a paragraph longer than most prompts, so the prompt is a minority of the description's words
OTHER_TEXT = ("The rest of this note describes the board the block sits on. The block receives its operands from a "
              "register file that is loaded by a host processor over a simple memory mapped bus, and every result is "
              "latched by the consumer on the next rising edge of the system clock. Pin assignments follow the vendor "
              "reference design: the operands come from the left header, the results go to the right header, and the "
              "spare pins are tied low. Timing closure was checked at one hundred megahertz with a comfortable margin, "
              "and the testbench streams a few thousand random operand pairs against a software model written in a "
              "scripting language, comparing all ten results after every cycle and stopping at the first mismatch.")

GENERIC = [
    ("module and4 (\n  input [3:0] a,\n  input [3:0] b,\n  output [3:0] y\n);", "assign y = a & b;\nendmodule",
     "A four bit wide bitwise AND of two input vectors."),
    ("module or8 (input [7:0] a, input [7:0] b, output [7:0] y);", "assign y = a | b;\nendmodule",
     "An eight bit bitwise OR of the two operands, purely combinational."),
    ("module inv1 (input in, output out);", "assign out = ~in;\nendmodule", "A single inverter from in to out."),
    ("module dff1 (input clk, input d, output reg q);", "always @(posedge clk) q <= d;\nendmodule",
     "A single D flip-flop that samples d on the rising clock edge."),
    ("module cnt4 (input clk, input rst, output reg [3:0] q);",
     "always @(posedge clk) begin\n  if (rst) q <= 4'd0;\n  else q <= q + 4'd1;\nend\nendmodule",
     "A four bit up counter with a synchronous active high reset."),
]
AUTHORS = ["José Núñez", "Zoë Ødegaard and Łukasz Żółć", "Dr. Ана Петрова", "王小明", "Søren Kierkegaard-Ødegård",
           "Ngô Bảo Châu", "Ýmir Þórðarson, Åsa Öberg"]


def planted(real: list[dict], bench: Path) -> tuple[list[dict], dict[str, dict]]:
    """(rows, {id: {"kind", "expect": "drop:<reason>" | "keep" | "redact", "lacks"/"contains": [...]}})."""
    rows, exp = [], {}

    def add(row, kind, expect, **kw):
        rows.append(row)
        exp[row["id"]] = {"kind": kind, "expect": expect, **kw}

    # near-duplicate chains: A is a real row (in the corpus as it is), B ~ A, C ~ B only
    used = set()
    for c in range(3):
        src, (_, b, cc), js = near_chain(real, 200 + 300 * c)
        header, summary = _header_summary(src)
        used.add(src["id"])
        add(raw_row(f"plant-chain{c}-B", header, b, summary + " It is a variant."), f"near-dup chain B (~{src['id']})",
            "drop:near_duplicate", jaccard=js, near=src["id"])
        add(raw_row(f"plant-chain{c}-C", header, cc, summary + " Another variant."), "near-dup chain C (~B only)",
            "keep", jaccard=js)
    # exact copy of a real row: other comments, spacing
    src = real[57]
    header, summary = _header_summary(src)
    add(raw_row("plant-exact-copy", header, "// copied from a mirror\n" + "  ".join(src["code"].split(" \n ")), summary),
        "exact copy of a real row", "drop:exact_duplicate")
    own = iter(range(100))
    # benchmark prompt embedded whole in a longer description; reference as code
    names = sorted(p.name[:-len("_prompt.txt")] for p in bench.glob("*_prompt.txt"))
    for k, name in enumerate(names[20::30][:4]):
        prompt = " ".join(read_text(bench / f"{name}_prompt.txt").split())
        header, body, summary = own_design(next(own))
        add(raw_row(f"plant-embed-{k}", header, body, f"{summary} Background for the reviewer: {prompt} {OTHER_TEXT}"),
            "benchmark prompt embedded in a longer description", "drop:benchmark_description", problem=name)
    for k, name in enumerate(names[35::40][:3]):
        ref = read_text(bench / f"{name}_ref.sv").replace("RefModule", f"top_{k}")
        header, body = split_module(ref)
        add(raw_row(f"plant-ref-{k}", header, body, "A small block whose behaviour is given by the header and body."),
            "benchmark reference as code", "drop:benchmark_code", problem=name)
    # short generic modules (may be duplicates of real rows, never contamination); long designs of
    # our own with a one-line benchmark statement pasted in
    for k, (header, body, summary) in enumerate(GENERIC):
        add(raw_row(f"plant-generic-{k}", header, body, summary), "short generic module", "not:benchmark_code")
    for k in range(3):
        header, body, summary = own_design(next(own))
        body = body.replace("endmodule", "wire zero;\nassign zero = 1'b0;\nendmodule", 1)        # Prob001's line
        add(raw_row(f"plant-oneline-{k}", header, body, summary), "long design + one-line benchmark statement", "keep")
    # PII: accented names on author lines; constants and digit tables that are not phones
    for k, who in enumerate(AUTHORS):
        header, body, summary = own_design(next(own))
        add(raw_row(f"plant-author-{k}", header, f"// Author: {who}\n// Copyright (c) 2021 {who}\n" + body, summary),
            "author line with a non-ASCII name", "redact",
            lacks=[w for w in re.split(r"[ ,]+", who) if len(w) > 2 and w not in ("and", "Dr.")])
    add(raw_row("plant-const-0", "module fib_hash (input [31:0] key, output [7:0] bucket);",
                "// multiplier 2654435769 = 2^32 / golden ratio\nwire [63:0] prod = key * 32'd2654435769;\n"
                "assign bucket = prod[31:24];\nendmodule",
                "A Fibonacci hashing unit that multiplies the key by 2654435769 and keeps the top byte."),
        "long constant in comment + description", "keep", contains=["2654435769"], lacks=["<PHONE>"])
    add(raw_row("plant-const-1", "module seed_reg (input clk, input rst, input [31:0] d, output reg [31:0] s);",
                "always @(posedge clk) begin\n  if (rst) s <= 32'hDEADBEEF;\n  else s <= s ^ d;\nend\nendmodule",
                "A seed register that resets to 3735928559 and then accumulates d with XOR."),
        "hex constant named in decimal in the description", "keep", contains=["3735928559"], lacks=["<PHONE>"])
    add(raw_row("plant-table-0", "module seg7 (input [3:0] d, output reg [6:0] seg);",
                "// d  gfedcba\n// 4 0011001\n// 5 0010010\n// 6 0000010\nalways @(*) begin\n  case (d)\n"
                "    4'd4: seg = 7'b0011001;\n    4'd5: seg = 7'b0010010;\n    4'd6: seg = 7'b0000010;\n"
                "    default: seg = 7'b1111111;\n  endcase\nend\nendmodule",
                "A seven segment decoder for the digits four to six, all other inputs blank the display."),
        "7-segment digit table in comments", "keep", contains=["4 0011001"], lacks=["<PHONE>"])
    header, body, summary = own_design(next(own))
    add(raw_row("plant-phone-0", header, "/* Questions: call +1 (415) 555-0142 or mail jane.roe@example.org */\n" + body,
                summary), "real phone number and e-mail", "redact", lacks=["555-0142", "jane.roe"])
    # a wrapper whose system text is empty; a hierarchy pair (child defined by another planted row)
    header, body, summary = own_design(next(own))
    add(raw_row("plant-emptysys-0", header, body, summary, wrap=EMPTY_SYS_WRAP), "wrapper with empty system text",
        "keep", lacks=["<<SYS>>", "[INST]"])
    add(raw_row("plant-child-0", "module adder8 (input [7:0] a, input [7:0] b, output [8:0] s);",
                "assign s = a + b;\nendmodule", "An eight bit adder with a carry out as the ninth bit."),
        "submodule defined by another row", "keep")
    add(raw_row("plant-parent-0", "module add_wrap (input [7:0] x, input [7:0] y, output [8:0] z);",
                "adder8 u0 (.a(x), .b(y), .s(z));\nendmodule",
                "A wrapper that instantiates the eight bit adder adder8 to add x and y into z."),
        "instantiates a module defined in another row", "keep")
    return rows, exp


def _header_summary(row: dict) -> tuple[str, str]:
    d = row["description"]["high_level_global_summary"]
    head = re.split(r"Module\s+header\s*:", d, maxsplit=1)
    header = head[1].replace("[/INST]", "").strip() if len(head) > 1 else "module m;"
    summary = re.sub(r"<s>|\[/?INST\]|<<SYS>>.*?<</SYS>>|<<SYS>>", "", head[0], flags=re.DOTALL)
    summary = re.sub(r"Implement the Verilog module based on the following description\.|Assume that signals are positive "
                     r"clock/clk edge triggered unless otherwise stated\.", "", summary)
    return header, " ".join(summary.split())


def run_checkout(checkout: Path, work: Path, sources: Path, bench: Path, python: str) -> dict:
    out, dropped = work / f"out-{checkout.name}", work / f"dropped-{checkout.name}"
    cmd = [python, "curate_data.py", f"sources={sources}", "levels=[high_level]", "engine.engine=local",
           f"output_dir={out}", f"dropped_dir={dropped}", f"decontaminate.benchmark_dir={bench}",
           "download.offline=false"]
    t0 = time.time()
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    p = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    if p.returncode != 0:
        raise SystemExit(f"{checkout}: curate_data.py exit {p.returncode}\n{(p.stdout + p.stderr)[-3000:]}")
    report = json.loads((out / "curation_report.json").read_text(encoding="utf-8"))
    drops = {}
    for f in sorted(dropped.glob("*.jsonl")):
        for r in read_jsonl(f):
            drops[str(r["id"])] = r
    kept = {}
    for f in sorted((out / "high_level").glob("*.jsonl")):
        for r in read_jsonl(f):
            kept[str(r["id"])] = r
    return {"report": report, "drops": drops, "kept": kept, "wall_s": wall}


def outcome(rid: str, e: dict, res: dict) -> tuple[bool, str]:
    exp = e["expect"]
    if rid in res["drops"]:
        d = res["drops"][rid]
        got = f"dropped {d['stage']}/{d['reason']}"
        if exp.startswith("not:"):
            return d["reason"] != exp[4:], got
        ok = exp == f"drop:{d['reason']}" and (not e.get("near") or e["near"] in str(d.get("detail", "")))
        return ok, got + (f" ({d.get('detail', '')})" if e.get("near") else "")
    if rid not in res["kept"]:
        return False, "missing"
    text = json.dumps(res["kept"][rid], ensure_ascii=False)
    bad = [s for s in e.get("lacks", []) if s in text] + [f"no {s}" for s in e.get("contains", []) if s not in text]
    ok = (exp in ("keep", "redact") or exp.startswith("not:")) and not bad
    return ok, "kept" + (f" ({', '.join(bad)})" if bad else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkout", action="append", default=None,
                    help="project checkout(s) to run (default: this one); give two for before/after")
    ap.add_argument("--real", default=str(SHARED / "realdata/mg-verilog-course-slice/mg_verilog_high_level.jsonl"))
    ap.add_argument("--bench", default=str(SHARED / "benchmarks/verilog-eval-v2/spec-to-rtl"))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--keep", default=None, help="keep the corpus and outputs in this folder")
    args = ap.parse_args()
    real_path, bench = Path(args.real), Path(args.bench)
    if not real_path.is_file() or not bench.is_dir():
        raise SystemExit(f"need the real slice ({real_path}) and the benchmark folder ({bench})")
    checkouts = [Path(c).resolve() for c in (args.checkout or [str(ROOT)])]
    real = read_jsonl(real_path)
    rows, exp = planted(real, bench)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="curate-realistic-"))
    work.mkdir(parents=True, exist_ok=True)
    plant_file = work / "planted.jsonl"
    plant_file.write_bytes(BOM + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))
    levels = {"high_level": "high_level_global_summary"}
    sources = work / "sources.jsonl"
    sources.write_text(
        json.dumps({"name": "mgv-slice", "path": str(real_path), "format": "mg-verilog", "levels": levels,
                    "license": "CC-BY-NC-SA-4.0"}) + "\n" +
        json.dumps({"name": "planted", "path": str(plant_file), "format": "mg-verilog", "levels": levels,
                    "license": "Apache-2.0"}) + "\n", encoding="utf-8")
    print(f"corpus: {len(real)} real rows ({real_path}) + {len(rows)} planted rows ({plant_file}, UTF-8 BOM); "
          f"benchmark {bench}")
    for rid, e in exp.items():
        if "jaccard" in e and rid.endswith("-B"):
            print(f"  {rid[:-2]} (A = {e['near']}): Jaccard A~B {e['jaccard'][0]:.3f}, B~C {e['jaccard'][1]:.3f}, A~C {e['jaccard'][2]:.3f}")
    results = {}
    for c in checkouts:
        label = f"{c.name}@{_head(c)}"
        print(f"running {label} ...", flush=True)
        results[label] = run_checkout(c, work, sources, bench, args.python)
    labels = list(results)
    # funnel: dropped per stage/reason
    table: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for lab, res in results.items():
        for st in res["report"]["stages"]:
            for reason, n in st["dropped"].items():
                table[(st["name"], reason)][lab] = n
    print("\n| stage | reason | " + " | ".join(labels) + " |")
    print("| --- | --- |" + " --- |" * len(labels))
    for (stage, reason) in sorted(table, key=lambda k: (_stage_index(results, k[0]), k[1])):
        print(f"| {stage} | {reason} | " + " | ".join(str(table[(stage, reason)].get(lab, 0)) for lab in labels) + " |")
    print("| **read** | | " + " | ".join(str(results[lab]["report"]["rows_read"]) for lab in labels) + " |")
    print("| **kept** | | " + " | ".join(f"{results[lab]['report']['rows_kept']} "
                                          f"({100 * results[lab]['report']['rows_kept'] / results[lab]['report']['rows_read']:.1f} %)"
                                          for lab in labels) + " |")
    for lab in labels:
        r = results[lab]["report"]
        pii = next((s for s in r["stages"] if s["name"] == "pii"), {"counters": {}})
        print(f"{lab}: redactions {r['redactions']}; rejected number candidates "
              f"{ {k: v for k, v in pii['counters'].items() if k.startswith('rejected_') and v} }; "
              f"fuzzy {r['duplicates'].get('fuzzy_dedup')}; wall {results[lab]['wall_s']:.0f}s")
    # planted rows: expected vs got
    print("\n| planted row | kind | expected | " + " | ".join(labels) + " |")
    print("| --- | --- | --- |" + " --- |" * len(labels))
    score = {lab: 0 for lab in labels}
    for rid, e in exp.items():
        cells = []
        for lab in labels:
            ok, got = outcome(rid, e, results[lab])
            score[lab] += ok
            cells.append(("ok " if ok else "**WRONG** ") + got)
        print(f"| {rid} | {e['kind']} | {e['expect']} | " + " | ".join(cells) + " |")
    print("| **right** | | | " + " | ".join(f"{score[lab]}/{len(exp)}" for lab in labels) + " |")
    print(f"\noutputs in {work}")
    return 0


def _stage_index(results, name):
    for res in results.values():
        names = [s["name"] for s in res["report"]["stages"]]
        if name in names:
            return names.index(name)
    return 99


def _head(checkout: Path) -> str:
    p = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=checkout, capture_output=True, text=True)
    if p.returncode == 0:
        return p.stdout.strip()
    marker = checkout / "COMMIT"
    return marker.read_text().strip() if marker.is_file() else "?"


if __name__ == "__main__":
    raise SystemExit(main())
