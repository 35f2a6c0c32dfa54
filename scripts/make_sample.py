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


# ---------------------------------------------------------------------------------------------
# Descriptions
# ---------------------------------------------------------------------------------------------
_A_AN = re.compile(r"\b([Aa]) (?=(?:8|11|18|80|8\d\d)(?:[-x ]|\b))")


def wrap(summary: str, header: str, rng: random.Random, block: bool = False) -> str:
    summary = _A_AN.sub(lambda m: m.group(1) + "n ", summary)      # "a 8-bit" -> "an 8-bit"
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


# ---------------------------------------------------------------------------------------------
# Planted defects
# ---------------------------------------------------------------------------------------------
N_PII, N_MOJI, N_EXACT, N_NEAR = 12, 6, 8, 8

_DECL = re.compile(r"\b(?:reg|wire|logic|integer|genvar)\b\s*(?:signed\s*)?(?:\[[^\]]*\]\s*)?([A-Za-z_]\w*)")


def sibling(fname: str, i: int, tag: str) -> dict:
    """Another rendering of family variant i (different names/styles): for defect rows whose code
    must compile but which are dropped by a rule before dedup ever sees them."""
    fn = getattr(fams, fname)
    rng = rng_for(fname, i, tag)
    c = fams.Ctx(rng)
    mod = fn(c, i)
    mod.name = f"{mod.name}_{tag}"
    header, body = render(mod, c.sv, rng)
    return {"family": fname[4:], "name": mod.name, "header": header, "code": body_to_code(body, rng), "mod": mod, "rng": rng}


def rename_internal(code: str, header: str, rng: random.Random, k: int = 1) -> tuple[str, list[tuple[str, str]]]:
    ports = set(re.findall(r"[A-Za-z_]\w*", header))
    names = [n for n in dict.fromkeys(_DECL.findall(code)) if n not in ports and len(n) > 1]
    names.sort(key=lambda n: (len(re.findall(rf"\b{re.escape(n)}\b", code)), n))
    out = []
    for old in names[:k]:
        new = rng.choice(["tmp_", "int_", "q_", "w_"]) + old + rng.choice(["_r", "_s", "_x", "2"])
        code = re.sub(rf"\b{re.escape(old)}\b", new, code)
        out.append((old, new))
    return code, out


def reformat(code: str, rng: random.Random, comment: str) -> str:
    """Collapse the indentation runs, add spaces inside some parentheses, insert a block comment."""
    code = re.sub(r" {2,}", " ", code.strip())
    code = code.replace("begin ", "begin  ", 2).replace(" end ", "  end ", 2)
    pos = code.find(";") + 1
    return "  " + code[:pos] + f" /* {comment} */" + code[pos:]


PII_SPECS = [
    # (kind list, comment template or description sentence, where)
    ("code", "Author: Marta Kowalski <marta.kowalski@fabrikam-labs.com>", [("name", "Marta Kowalski"), ("email", "marta.kowalski@fabrikam-labs.com")]),
    ("code", "Copyright (c) 2021 Daniel Okafor. All rights reserved.", [("name", "Daniel Okafor")]),
    ("code", "Questions: call Ravi at +1 (415) 555-0142 before changing the timing", [("phone", "+1 (415) 555-0142")]),
    ("code", "lab board debug server 192.168.17.42, port 5025", [("ip", "192.168.17.42")]),
    ("code", "CI token ghp_{tok36} (do not share)", [("secret", "ghp_{tok36}")]),
    ("code", "upload with aws key AKIA{tok16} to the results bucket", [("secret", "AKIA{tok16}")]),
    ("code", "Written by Lucia Fernandez, contact lucia.fernandez@example.org, tel. +44 20 7946 0958", [("name", "Lucia Fernandez"), ("email", "lucia.fernandez@example.org"), ("phone", "+44 20 7946 0958")]),
    ("code", "Copyright (C) 2019-2022 Tomasz Wisniewski", [("name", "Tomasz Wisniewski")]),
    ("code", "Maintainer: Hannah Becker (hbecker@contoso-eda.de)", [("name", "Hannah Becker"), ("email", "hbecker@contoso-eda.de")]),
    ("code", "synthesised on build host 10.20.30.144 by jenkins", [("ip", "10.20.30.144")]),
    ("desc", "The block was designed by Priya Raman (priya.raman@example.com) for the sensor board.", [("name", "Priya Raman"), ("email", "priya.raman@example.com")]),
    ("desc", "Report problems to the designer by phone, (212) 555-0187, or mail kenji.watanabe@example.net.", [("phone", "(212) 555-0187"), ("email", "kenji.watanabe@example.net")]),
]

MOJI_PHRASES = [
    "Timing was signed off at 100 MHz – 125 MHz.",
    "Latency is fixed — there is no variable-delay path.",
    "It was characterised from −40 °C to 85 °C.",
    "The cell area is about 120 µm² in the target library.",
    "It was first written for the café kiosk demo board.",
    "Typical use is in 4×4 tile arrays, one instance per tile.",
]


def mojibake(text: str) -> str:
    return text.encode("utf-8").decode("cp1252")


URLS = ["https://github.com/openhw-demo/rtl-collection/blob/main/{n}.v", "https://opencores.org/projects/{n}",
        "http://www.fpga4fun-mirror.example.com/{n}.html", "https://gist.github.com/hw-notes/{h}",
        "https://raw.githubusercontent.com/verilog-lab/ip/master/src/{n}.sv", "https://web.archive.org/web/2019/http://asic-world.example.net/{n}"]


def url_summary(name: str, rng: random.Random, n: int, lead: str) -> str:
    parts = []
    for _ in range(n):
        u = rng.choice(URLS).format(n=f"{name}_{rng.getrandbits(16):04x}", h=f"{rng.getrandbits(64):016x}")
        parts.append(u)
    return lead + " " + " ".join(parts)


JUNK = [
    ("python", "def moving_average(xs, k=4):\n    out = []\n    for i in range(len(xs) - k + 1):\n        out.append(sum(xs[i:i + k]) / k)\n    return out\n\nif __name__ == '__main__':\n    print(moving_average([1, 2, 3, 4, 5, 6]))"),
    ("c", "#include <stdint.h>\nuint32_t crc32_update(uint32_t crc, uint8_t b) {\n    crc ^= b;\n    for (int k = 0; k < 8; k++)\n        crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1u));\n    return crc;\n}"),
    ("prose", "Sorry, I cannot provide the implementation for this request. The specification you gave is incomplete: please state the clock frequency, the reset polarity and the required throughput, and I will try again with a corrected design."),
    ("shell", "#!/bin/sh\nset -e\niverilog -o sim.vvp tb.v dut.v\nvvp sim.vvp | tee sim.log\ngrep -q PASS sim.log && echo ok || exit 1"),
    ("json", '{"tool": "yosys", "top": "uart_tx", "cells": 212, "wires": 340, "timing": {"fmax_mhz": 187.4, "slack_ns": 0.62}}'),
    ("vhdl", "library ieee; use ieee.std_logic_1164.all; entity blink is port (clk : in std_logic; led : out std_logic); end blink; architecture rtl of blink is signal c : integer := 0; begin process(clk) begin if rising_edge(clk) then c <= c + 1; end if; end process; led <= '1' when c > 100 else '0'; end rtl;"),
]

BREAKERS = [
    ("missing_semicolon", lambda code: code.replace(";", "", 1)),
    ("misspelled_keyword", lambda code: re.sub(r"\balways(_ff|_comb)?\b", "alwyas", code, count=1) if "always" in code else code.replace("assign", "asign", 1)),
    ("unbalanced_parenthesis", lambda code: code.replace("(", "((", 1)),
    ("missing_end", lambda code: re.sub(r"\bend\b(?!\w)", "", code, count=1)),
    ("bad_operator", lambda code: code.replace("=", "=>=", 1)),
    ("undeclared_identifier", lambda code: code.replace(";", "; assign undeclared_net_q = missing_src_q;", 1)),
]


def too_long_code(kind: int, rng: random.Random) -> tuple[str, str, str, str, list[str]]:
    """(header, code, high-level, detailed, blocks) of a huge but valid module."""
    if kind in (0, 1):
        n = [2048, 2600][kind]
        aw = (n - 1).bit_length()
        name = f"big_lut_{n}"
        header = f"module {name} (input clk, input [{aw-1}:0] addr, output reg [7:0] data);"
        lines = ["always @(posedge clk) begin", "  case (addr)"]
        lines += [f"    {aw}'d{k}: data <= 8'd{rng.randrange(256)};" for k in range(n)]
        lines += ["    default: data <= 8'd0;", "  endcase", "end"]
        hl = f"A {n}-entry registered lookup table with 8-bit entries addressed by addr."
        det = f"{name} returns a constant byte from a {n}-entry table on every rising edge of clk; the table is written out as one case item per address."
        blocks = ["Registers the table output on clk.", "Lists every table entry in a case statement."]
    elif kind == 2:
        n = 1700
        name = f"wide_xor_net_{n}"
        header = f"module {name} (input [{n-1}:0] a, input [{n-1}:0] b, output [{n-1}:0] y);"
        lines = [f"assign y[{k}] = a[{k}] ^ b[{(k * 7 + 3) % n}];" for k in range(n)]
        hl = f"Drives y with the XOR of input a and a permuted copy of b, {n} bits wide."
        det = f"{name} drives each output bit y[k] with a[k] XOR b[(7k+3) mod {n}], written as one continuous assignment per bit."
        blocks = ["Computes the permuted XOR of each bit.", "Drives the result on y."]
    else:
        n = 1800
        name = f"threshold_bank_{n}"
        header = f"module {name} (input clk, input [15:0] x, output reg [{n-1}:0] over);"
        lines = ["always @(posedge clk) begin"] + [f"  over[{k}] <= (x > 16'd{(k * 37) % 65536});" for k in range(n)] + ["end"]
        hl = f"Compares x against {n} constant thresholds and registers the results."
        det = f"{name} registers {n} comparison bits, bit k being high when x exceeds 37*k mod 65536; every comparison is its own statement."
        blocks = ["Compares x with each threshold.", "Registers all comparison results."]
    return header, " ".join(lines + ["endmodule"]), hl, det, blocks


def _tok(rng: random.Random, n: int, upper: bool = False) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" if upper else "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(rng.choice(alphabet) for _ in range(n))


def build() -> tuple[list[dict], dict]:
    """Return (rows, manifest). Rows are {"code", "description"} in file order."""
    clean = clean_records()
    rng = random.Random(SEED)
    order = list(range(len(clean)))
    rng.shuffle(order)
    pii_ids, moji_ids = order[:N_PII], order[N_PII:N_PII + N_MOJI]
    clean_ids = sorted(order[N_PII + N_MOJI:])
    items: list[dict] = []   # {"row", "meta"}; meta None for clean rows

    for k in clean_ids:
        r = clean[k]
        items.append({"row": r["record"], "meta": None, "clean": r})

    # --- PII: kept, redacted ------------------------------------------------------------------
    for j, k in enumerate(pii_ids):
        r = clean[k]
        where, text, kinds = PII_SPECS[j]
        prng = rng_for("pii", j)
        tok36, tok16 = _tok(prng, 36), _tok(prng, 16, upper=True)
        text = text.format(tok36=tok36, tok16=tok16)
        kinds = [(kd, v.format(tok36=tok36, tok16=tok16)) for kd, v in kinds]
        row = json.loads(json.dumps(r["record"]))
        if where == "code":
            code = r["code"]
            pos = prng.choice(["start", "middle", "end"])
            cm = f"/* {text} */"
            if pos == "start":
                code = " " + cm + " " + code.lstrip()
            elif pos == "middle":
                cut = code.find(";", len(code) // 2) + 1
                code = code[:cut] + " " + cm + code[cut:]
            else:
                code = code[: code.rfind("endmodule")] + cm + " endmodule"
            row["code"] = code
            fields = ["code"]
        else:
            mod = r["mod"]
            det = mod.detailed + " " + text
            row["description"]["detailed_global_summary"] = wrap(det, r["header"], prng)
            fields = ["description.detailed_global_summary"]
        items.append({"row": row, "clean": r, "meta": {
            "kind": "pii", "expected": "redact", "stage": "pii", "reasons": [],
            "pii": [{"kind": kd, "value": v, "field": fields[0]} for kd, v in kinds],
            "note": f"otherwise clean {r['family']} module {r['name']}; keep the row, replace the PII",
        }})

    # --- mojibake: kept, repaired -------------------------------------------------------------
    for j, k in enumerate(moji_ids):
        r = clean[k]
        mod = r["mod"]
        mrng = rng_for("moji", j)
        phrase = MOJI_PHRASES[j]
        good = {"high_level_global_summary": mod.hl + " " + phrase,
                "detailed_global_summary": mod.detailed + " " + phrase,
                "block_summary": None}
        row = {"code": r["code"], "description": {}}
        fixed = {}
        for lvl in ("high_level_global_summary", "detailed_global_summary", "block_summary"):
            if lvl == "block_summary":
                blocks = list(mod.blocks[:5]) + [phrase]
                w_good = wrap(block_text(blocks), r["header"], mrng, block=True)
            else:
                w_good = wrap(good[lvl], r["header"], mrng)
            fixed[lvl] = w_good
            row["description"][lvl] = mojibake(w_good)
        items.append({"row": row, "clean": r, "meta": {
            "kind": "mojibake", "expected": "repair", "stage": "clean", "reasons": [],
            "broken": mojibake(phrase), "fixed": phrase,
            "fields": ["description.high_level_global_summary", "description.detailed_global_summary", "description.block_summary"],
            "fixed_sha256": {lvl: hashlib.sha256(v.encode()).hexdigest() for lvl, v in fixed.items()},
            "note": f"UTF-8 text decoded as cp1252 in all three description levels of {r['name']}; ftfy.fix_text restores it",
        }})

    # --- URL-heavy descriptions: dropped by url_share ----------------------------------------
    fam_cycle = [f for f, _, _ in fams.FAMILIES]
    for j in range(6):
        fname = fam_cycle[(7 * j + 3) % len(fam_cycle)]
        sib = sibling(fname, 0, f"url{j}")
        urng = rng_for("url", j)
        desc = {"high_level_global_summary": wrap(url_summary(sib["name"], urng, 4, "Source:"), sib["header"], urng),
                "detailed_global_summary": wrap(url_summary(sib["name"], urng, 7, "Copied from"), sib["header"], urng),
                "block_summary": wrap(block_text([url_summary(sib["name"], urng, 2, "code:"), url_summary(sib["name"], urng, 2, "mirrors")]),
                                      sib["header"], urng, block=True)}
        items.append({"row": {"code": sib["code"], "description": desc}, "clean": None, "meta": {
            "kind": "url_heavy", "expected": "drop", "stage": "url_share", "reasons": ["url_heavy"],
            "note": "every description level is mostly URLs (code is a valid module)"}})

    # --- too short: trivial descriptions or an empty module -----------------------------------
    trivial = [("Counter.", "A counter.", ["counter"]), ("Mux", "Two input mux.", ["select input"]),
               ("Adder module", "Adds numbers.", ["adds"])]
    for j, (hl, det, blocks) in enumerate(trivial):
        fname = fam_cycle[(11 * j + 5) % len(fam_cycle)]
        sib = sibling(fname, 1 if fname != "fam_cdc" else 0, f"short{j}")
        srng = rng_for("short", j)
        items.append({"row": {"code": sib["code"], "description": make_description(hl, det, blocks, sib["header"], srng)}, "clean": None,
                      "meta": {"kind": "too_short", "subkind": "description", "expected": "drop", "stage": "word_count",
                               "reasons": ["too_few_words"], "note": "all three summaries have 1-3 words (code is a valid module)"}})
    stubs = [("module stub_and2 (input a, input b, output y);", " endmodule"),
             ("module empty_top (input clk, input rst_n, output [7:0] led);", "endmodule"),
             ("module tiny_buf (input i, output o);", "  endmodule")]
    for j, (header, code) in enumerate(stubs):
        srng = rng_for("stub", j)
        name = header.split()[1]
        hl = f"The module {name} is a placeholder whose ports are declared but which contains no logic at all."
        det = f"{name} only declares its ports; the body is empty so every output is left undriven. It exists so that a larger design elaborates."
        items.append({"row": {"code": code, "description": make_description(hl, det, ["Declares the ports only.", "Contains no logic."], header, srng)},
                      "clean": None, "meta": {"kind": "too_short", "subkind": "code", "expected": "drop", "stage": "line_count",
                                              "reasons": ["too_few_lines"], "note": "the body is only 'endmodule' (2 lines once the header is attached)"}})

    # --- too long: thousands of statements ----------------------------------------------------
    for j in range(4):
        lrng = rng_for("long", j)
        header, code, hl, det, blocks = too_long_code(j, lrng)
        items.append({"row": {"code": " " + code, "description": make_description(hl, det, blocks, header, lrng)}, "clean": None,
                      "meta": {"kind": "too_long", "expected": "drop", "stage": "line_count", "reasons": ["too_many_lines", "line_too_long"],
                               "note": f"valid module with {code.count(';')} statements (one line each once reflowed)"}})

    # --- non-Verilog junk in the code field ---------------------------------------------------
    for j, (lang, text) in enumerate(JUNK):
        fname = fam_cycle[(5 * j + 2) % len(fam_cycle)]
        sib = sibling(fname, 0, f"junk{j}")
        jrng = rng_for("junk", j)
        code = " ".join(text.split("\n")) if j % 2 == 0 else text
        mod = sib["mod"]
        items.append({"row": {"code": code, "description": make_description(mod.hl, mod.detailed, mod.blocks, sib["header"], jrng)}, "clean": None,
                      "meta": {"kind": "non_verilog", "subkind": lang, "expected": "drop", "stage": "has_module",
                               "reasons": ["no_module_endmodule", "does_not_compile", "low_alpha_share", "too_few_lines"],
                               "note": f"{lang} text instead of Verilog in the code field; descriptions look normal"}})

    # --- does not compile ---------------------------------------------------------------------
    for j, (what, brk) in enumerate(BREAKERS):
        fname = fam_cycle[(13 * j + 1) % len(fam_cycle)]
        sib = sibling(fname, 0, f"bad{j}")
        brng = rng_for("bad", j)
        code = brk(sib["code"])
        assert code != sib["code"], what
        mod = sib["mod"]
        items.append({"row": {"code": code, "description": make_description(mod.hl, mod.detailed, mod.blocks, sib["header"], brng)}, "clean": None,
                      "meta": {"kind": "does_not_compile", "subkind": what, "expected": "drop", "stage": "compiles", "reasons": ["does_not_compile"],
                               "note": f"{sib['family']} module with a {what.replace('_', ' ')}; module/endmodule still present"}})

    rng.shuffle(items)

    # --- duplicates, inserted after their originals -------------------------------------------
    clean_items = [it for it in items if it["meta"] is None]
    def renamable(it: dict) -> bool:
        return bool(rename_internal(it["clean"]["code"], it["clean"]["header"], random.Random(0))[1])

    pool = [it for it in clean_items if len(it["clean"]["code"]) >= 350 and renamable(it)]
    near_src = rng.sample(pool, N_NEAR)
    exact_src = rng.sample([it for it in clean_items if not any(it is x for x in near_src)], N_EXACT)
    assert len(near_src) == N_NEAR and len(exact_src) == N_EXACT
    dups = []
    for j, it in enumerate(exact_src):
        row = json.loads(json.dumps(it["row"]))
        sub = "identical"
        if j >= N_EXACT - 2:
            row["code"] = "  " + re.sub(r" ", "   ", row["code"].strip(), count=3)
            sub = "whitespace_only"
        dups.append((it, {"row": row, "clean": None, "meta": {
            "kind": "exact_duplicate", "subkind": sub, "expected": "drop", "stage": "exact_dedup", "reasons": ["exact_duplicate"],
            "note": f"copy of {it['clean']['name']}" + (" with extra spaces in the code" if sub != "identical" else " (code and description identical)")}}))
    for j, it in enumerate(near_src):
        nrng = rng_for("near", j)
        code, renames = rename_internal(it["clean"]["code"], it["clean"]["header"], nrng, k=1)
        code = reformat(code, nrng, nrng.choice(["cleaned up", "rev 2", "ported from the old repo", "lint fixes", "see spec section 4"]))
        # one small structural edit, so that the copy is not identical even with identifiers normalised
        extra = "extra_decl" if j % 2 else "extra_localparam"
        if extra == "extra_decl":
            code = code[: code.rfind("endmodule")] + "wire [3:0] spare_dbg = 4'd0; endmodule"
        else:
            code = "  localparam REV_ID = 8'h21; " + code.lstrip()
        row = {"code": code, "description": json.loads(json.dumps(it["row"]["description"]))}
        dups.append((it, {"row": row, "clean": None, "meta": {
            "kind": "near_duplicate", "expected": "drop", "stage": "fuzzy_dedup", "reasons": ["near_duplicate"],
            "renamed": [list(x) for x in renames], "subkind": f"rename_reformat_{extra}",
            "note": f"{it['clean']['name']} with an internal signal renamed, whitespace reformatted and a comment added"
                    + f", plus one unused {'wire' if extra == 'extra_decl' else 'localparam'}"}}))
    for orig, dup in dups:
        pos = items.index(orig)
        ins = rng.randrange(pos + 1, len(items) + 1)
        dup["meta"]["of"] = orig
        items.insert(ins, dup)

    # --- manifest -----------------------------------------------------------------------------
    rows = [it["row"] for it in items]
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    where = {id(it): n for n, it in enumerate(items)}
    defects, clean_list = [], []
    for n, it in enumerate(items):
        key = hashlib.sha256(lines[n].encode("utf-8")).hexdigest()[:16]
        if it["meta"] is None:
            r = it["clean"]
            clean_list.append({"line": n + 1, "index": n, "key": key, "family": r["family"], "category": r["category"], "module": r["name"]})
            continue
        m = dict(it["meta"])
        entry = {"line": n + 1, "index": n, "key": key, "kind": m.pop("kind"), "expected": m.pop("expected"), "stage": m.pop("stage"),
                 "reasons": m.pop("reasons")}
        if "of" in m:
            o = m.pop("of")
            entry["duplicate_of_line"] = where[id(o)] + 1
        entry.update(m)
        if it.get("clean") is not None:
            entry["module"] = it["clean"]["name"]
            entry["family"] = it["clean"]["family"]
        defects.append(entry)
    kinds = {}
    for d in defects:
        kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
    manifest = {
        "file": SAMPLE_FILE, "rows": len(rows), "source_name": SOURCE_NAME, "seed": SEED,
        "generator": "python scripts/make_sample.py",
        "id_rule": "pipeline id = '<source-name>-<index>' where index = line - 1 (0-based line index)",
        "counts": {"clean": len(clean_list), "defects": len(defects), "by_kind": dict(sorted(kinds.items()))},
        "defects": defects,
        "clean": clean_list,
    }
    return rows, manifest


def write(out_dir: Path) -> None:
    rows, manifest = build()
    out_dir.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    man = json.dumps(manifest, ensure_ascii=False, indent=1) + "\n"
    for name, text in ((SAMPLE_FILE, data), (MANIFEST_FILE, man)):
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.")
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_dir / name)
    print(f"wrote {len(rows)} rows ({manifest['counts']['clean']} clean, {manifest['counts']['defects']} planted defects) "
          f"to {out_dir / SAMPLE_FILE} and {out_dir / MANIFEST_FILE}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data" / "sample"),
                    help="output folder (default: data/sample)")
    args = ap.parse_args(argv)
    write(Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
