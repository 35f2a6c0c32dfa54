#!/usr/bin/env python3
"""Write the embedded raw sample data/sample/ in the MG-Verilog shape, with planted defects.

    python scripts/make_sample.py [--out data/sample]

Deterministic: a fixed seed, no clock, no environment input; rerunning rewrites the same bytes.
Outputs: mg_verilog_sample.jsonl (rows {"code", "description"}), manifest.json (planted defects,
clean rows by family). See data/sample/README.md for the schema. Written for this project
(Apache-2.0).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import tempfile
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sample_families as fams  # noqa: E402
from sample_families import Mod  # noqa: E402

SEED = 20240611
SAMPLE_FILE = "mg_verilog_sample.jsonl"
MANIFEST_FILE = "manifest.json"
SOURCE_NAME = "mg-verilog-sample"

SYS_PROMPT = ("You only complete chats with syntax correct Verilog code. End the Verilog module code "
              "completion with 'endmodule'. Do not include module, input and output definitions.")
Q_DESC = ("Implement the Verilog module based on the following description. Assume that signals are "
          "positive clock/clk edge triggered unless otherwise stated.")
Q_BLOCK = ("Implement the Verilog module based on the following block level summaries. Assume that "
           "signals are positive clock/clk edge triggered unless otherwise stated.")

# Whitespace variants of the Llama-2 wrapper seen across MG-Verilog copies. {q}: question sentence,
# {s}: summary text (block variant: "Here are block level summaries:" + block_k lines), {h}: header.
WRAPPERS = [
    "<s>[INST] <<SYS>>\n {sys} <</SYS>>\n\n {q}\n\n{s}\n\n Module header:\n\n{h}\n [/INST]\n",
    "<s>[INST] <<SYS>>\n{sys}\n<</SYS>>\n\n{q}\n\n{s}\n\nModule header:\n\n{h}\n[/INST]",
    "<s> [INST] <<SYS>>\n {sys}  <</SYS>>\n\n {q}\n\n\n{s}\n\n  Module header:\n\n{h}\n  [/INST]\n",
    "<s>[INST]  <<SYS>>\n {sys} <</SYS>>\n\n {q}\n{s}\n\n Module header:\n{h}\n [/INST]\n",
]
WRAPPER_WEIGHTS = [6, 2, 1, 1]
BLOCK_INTRO = ["\nHere are block level summaries:\n\n", "Here are block level summaries:\n\n",
               "\nHere are block level summaries:\n"]


def rng_for(*parts: object) -> random.Random:
    return random.Random(zlib.crc32("/".join(map(str, parts)).encode()) ^ SEED)


# ---------------------------------------------------------------------------------------------
# Rendering a module into (header, body lines)
# ---------------------------------------------------------------------------------------------
def _decl(p: fams.Port, sv: bool, ansi: bool) -> str:
    sg = "signed " if p.signed else ""
    r = p.rng()
    r = (r + " ") if r else ""
    if sv:
        return f"{p.dir} logic {sg}{r}{p.name}"
    if p.dir == "input":
        return f"input {sg}{r}{p.name}" if not ansi else f"input {{wire}}{sg}{r}{p.name}"
    kind = "reg " if p.reg else "{wire}"
    return f"output {kind}{sg}{r}{p.name}"


def render(mod: Mod, sv: bool, rng: random.Random) -> tuple[str, list[str]]:
    style = rng.choices(["multi", "multi_nowire", "single", "nonansi"], weights=[5, 3, 2, 1])[0]
    if sv and style == "nonansi":
        style = "multi"
    ind = rng.choice(["  ", "    ", "\t"])
    name = mod.name
    body = list(mod.body)
    if style == "nonansi":
        head = f"module {name}({', '.join(p.name for p in mod.ports)});"
        pre = [f"parameter {k} = {v};" for k, v in mod.params]
        for p in mod.ports:
            d = _decl(p, False, False).replace("{wire}", "")
            if p.dir == "output" and p.reg:
                sg = "signed " if p.signed else ""
                r = p.rng()
                pre.append(f"output {sg}{r + ' ' if r else ''}{p.name};")
                pre.append(f"reg {sg}{r + ' ' if r else ''}{p.name};")
            else:
                pre.append(d + ";")
        return head, [ind + x for x in pre] + body
    wire = "wire " if style == "multi" else ""
    decls = [_decl(p, sv, True).replace("{wire}", wire) for p in mod.ports]
    if style == "single":
        ps = ""
        if mod.params:
            ps = " #(" + ", ".join(f"parameter {k} = {v}" for k, v in mod.params) + ")"
        head = f"module {name}{ps} ({', '.join(decls)});"
    else:
        ps = ""
        if mod.params:
            ps = " #(\n" + ",\n".join(f"{ind}parameter {k} = {v}" for k, v in mod.params) + "\n)"
        head = f"module {name}{ps} (\n" + ",\n".join(ind + d for d in decls) + "\n);"
    return head, body


def body_to_code(body: list[str], rng: random.Random) -> str:
    """MG-Verilog: the lines after the header joined by single spaces, endmodule last."""
    lines = []
    for ln in body:
        for sub in ln.split("\n"):
            if sub.strip():
                lines.append(sub.rstrip())
    for ln in lines:
        if "//" in ln or ln.lstrip().startswith("`"):
            raise ValueError(f"body line would break when joined: {ln!r}")
    lead = rng.choice(["", " ", "  "])
    return lead + " ".join(lines + ["endmodule"])


def full_module(header: str, code: str) -> str:
    return header + "\n" + code + "\n"


# ---------------------------------------------------------------------------------------------
# Descriptions
# ---------------------------------------------------------------------------------------------
def wrap(summary: str, header: str, rng: random.Random, block: bool = False) -> str:
    tpl = rng.choices(WRAPPERS, weights=WRAPPER_WEIGHTS)[0]
    q = Q_BLOCK if block else Q_DESC
    if block:
        summary = rng.choice(BLOCK_INTRO) + summary
    return tpl.format(sys=SYS_PROMPT, q=q, s=summary, h=header)


def block_text(blocks: list[str]) -> str:
    return "".join(f"block_{k}: {b}\n" for k, b in enumerate(blocks))


def make_description(hl: str, det: str, blocks: list[str], header: str, rng: random.Random) -> dict:
    return {
        "high_level_global_summary": wrap(hl, header, rng),
        "detailed_global_summary": wrap(det, header, rng),
        "block_summary": wrap(block_text(blocks), header, rng, block=True),
    }


# ---------------------------------------------------------------------------------------------
# Clean records
# ---------------------------------------------------------------------------------------------
def clean_modules() -> list[dict]:
    """Every family variant as {family, category, name, header, body, code, full, mod}."""
    out, seen = [], set()
    for fname, cat, n in fams.FAMILIES:
        fn = getattr(fams, fname)
        for i in range(n):
            rng = rng_for(fname, i)
            c = fams.Ctx(rng)
            mod = fn(c, i)
            if len(mod.blocks) < 2:
                raise ValueError(f"{fname}[{i}] has fewer than 2 blocks")
            mod.blocks = mod.blocks[:6]
            base = mod.name
            k = 2
            while mod.name in seen:
                mod.name = f"{base}_v{k}"
                k += 1
            seen.add(mod.name)
            header, body = render(mod, c.sv, rng)
            code = body_to_code(body, rng)
            out.append({"family": fname[4:], "category": cat, "name": mod.name, "header": header,
                        "code": code, "mod": mod, "rng": rng})
    return out


def clean_records() -> list[dict]:
    recs = []
    for m in clean_modules():
        mod, rng = m["mod"], m["rng"]
        desc = make_description(mod.hl, mod.detailed, mod.blocks, m["header"], rng)
        recs.append({**m, "record": {"code": m["code"], "description": desc}})
    return recs


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--check-clean":
    from concurrent.futures import ThreadPoolExecutor
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from sft_playbook.verilog import compile_check
    recs = clean_records()
    def chk(r):
        res = compile_check(full_module(r["header"], r["code"]))
        return r, res
    bad = 0
    with ThreadPoolExecutor(4) as ex:
        for r, res in ex.map(chk, recs):
            if not res.ok:
                bad += 1
                print("FAIL", r["family"], r["name"], res.stderr[:800])
                print(full_module(r["header"], r["code"])[:1500])
    print(len(recs), "modules,", bad, "failed")
    sys.exit(0)
