"""Small MG-Verilog-shaped fixtures for the curation tests (written for these tests).

``records()`` returns raw rows ``{"id", "code", "description"}`` plus ``PLANTED``: id -> defect.
Clean modules are distinct designs; defects are planted on copies of them.
"""
from __future__ import annotations

import json
from pathlib import Path

SYS = ("You only complete chats with syntax correct Verilog code. End the Verilog module code completion "
       "with 'endmodule'. Do not include module, input and output definitions.")
Q = ("Implement the Verilog module based on the following description. Assume that signals are positive "
     "clock/clk edge triggered unless otherwise stated.")
QB = ("Implement the Verilog module based on the following block level summaries. Assume that signals are "
      "positive clock/clk edge triggered unless otherwise stated.")


def wrap(summary: str, header: str, block: bool = False, variant: int = 0) -> str:
    if block:
        return (f"<s>[INST] <<SYS>>\n {SYS} <</SYS>>\n\n {QB}\nHere are block level summaries:\n\n{summary}\n\n"
                f" Module header:\n\n{header}\n [/INST]\n")
    if variant:
        return f"<s> [INST]  <<SYS>>\n{SYS}\n<</SYS>>\n\n{Q}\n\n\n{summary}\n\n  Module header:\n{header}\n  [/INST]"
    return f"<s>[INST] <<SYS>>\n {SYS} <</SYS>>\n\n {Q}\n\n{summary}\n\n Module header:\n\n{header}\n [/INST]\n"


# (header, body lines, high-level summary, detailed summary, blocks)
MODULES = [
    ("module counter4 (\n  input wire clk,\n  input wire rst,\n  output reg [3:0] q\n);",
     ["always @(posedge clk) begin", "if (rst) q <= 4'd0;", "else q <= q + 4'd1;", "end"],
     "A four bit synchronous up counter with an active high synchronous reset input.",
     "The module counts upward by one on every rising clock edge and wraps from fifteen to zero. When the reset "
     "input is high at a rising edge the count register is cleared to zero instead.",
     ["Declares the clock, reset and four bit count output.", "On each rising edge clears or increments the count."]),
    ("module mux2 #(parameter W = 8) (input [W-1:0] a, input [W-1:0] b, input sel, output [W-1:0] y);",
     ["assign y = sel ? b : a;"],
     "A parameterised two to one multiplexer that selects between two data words.",
     "The output equals input b when the select line is high and input a when it is low. The width of the data "
     "ports is set by the parameter W which defaults to eight bits.",
     ["Declares the parameter and the ports.", "Drives the output from a conditional assignment on select."]),
    ("module shift8 (input clk, input din, output reg [7:0] sr);",
     ["always @(posedge clk) sr <= {sr[6:0], din};"],
     "An eight bit serial in parallel out shift register clocked on the rising edge.",
     "Each rising clock edge shifts the register left by one position and inserts the serial input bit at the "
     "least significant end, so the last eight input bits are visible in parallel.",
     ["Declares clock, serial input and the register output.", "Shifts left and inserts din every clock."]),
    ("module parity16 (input [15:0] d, output p);",
     ["assign p = ^d;"],
     "A combinational even parity generator for a sixteen bit input word.",
     "The single output is the exclusive or reduction of all sixteen input bits, which is high when an odd "
     "number of input bits are set and low otherwise.",
     ["Declares the sixteen bit data input and the parity output.", "Computes the reduction xor of the data."]),
    ("module edge_detect (input clk, input rst_n, input sig, output rise);",
     ["reg prev;", "always @(posedge clk or negedge rst_n) begin", "if (!rst_n) prev <= 1'b0;",
      "else prev <= sig;", "end", "assign rise = sig & ~prev;"],
     "A rising edge detector that pulses for one cycle when its input goes from low to high.",
     "The module stores the previous value of the input in a register with an asynchronous active low reset "
     "and asserts the output when the current input is high while the stored value is low.",
     ["Declares the ports and a register for the previous input.", "Registers the input each clock.",
      "Compares current and previous values to form the pulse."]),
    ("module alu4 (input [3:0] a, input [3:0] b, input [1:0] op, output reg [3:0] y);",
     ["always @(*) begin", "case (op)", "2'b00: y = a + b;", "2'b01: y = a - b;", "2'b10: y = a & b;",
      "default: y = a | b;", "endcase", "end"],
     "A small four bit arithmetic logic unit with add, subtract, and, or operations.",
     "A two bit operation code selects the function: zero adds the operands, one subtracts b from a, two "
     "computes the bitwise and, and any other code computes the bitwise or of the two inputs.",
     ["Declares the operands, operation code and result.", "Selects the operation in a combinational case."]),
    ("module gray_enc (input [3:0] bin, output [3:0] gray);",
     ["assign gray = bin ^ (bin >> 1);"],
     "A binary to Gray code converter for four bit values.",
     "Each output bit is the exclusive or of the corresponding binary bit and the next more significant bit, "
     "with the most significant bit passed through unchanged.",
     ["Declares binary input and Gray output.", "Forms the Gray code with a shift and xor."]),
    ("module fifo_ptr (input clk, input rst, input push, input pop, output reg [2:0] wptr, output reg [2:0] rptr);",
     ["always @(posedge clk) begin", "if (rst) begin", "wptr <= 3'd0;", "rptr <= 3'd0;", "end else begin",
      "if (push) wptr <= wptr + 3'd1;", "if (pop) rptr <= rptr + 3'd1;", "end", "end"],
     "Read and write pointer logic for a small first in first out buffer.",
     "Two three bit pointers are cleared by the synchronous reset; the write pointer advances when push is high "
     "and the read pointer advances when pop is high, both wrapping around naturally.",
     ["Declares the control inputs and pointer outputs.", "Resets or advances each pointer on the clock."]),
]

BENCH_REF = "module RefModule (input [15:0] d, output p);\n  assign p = ^d;\nendmodule\n"
BENCH_PROMPT = ("I would like you to implement a module named TopModule with the following interface.\n"
                " - input d (16 bits)\n - output p\nThe module should compute the parity of d.\n")


def record(i: int, rid: str, *, code: str | None = None, hl: str | None = None, det: str | None = None,
           header: str | None = None, variant: int = 0) -> dict:
    h, body, mhl, mdet, blocks = MODULES[i]
    header = header or h
    code = code if code is not None else " ".join(body + ["endmodule"])
    block = "".join(f"block_{k}: {b}\n" for k, b in enumerate(blocks))
    return {"id": rid, "code": code, "description": {
        "high_level_global_summary": wrap(hl or mhl, header, variant=variant),
        "detailed_global_summary": wrap(det or mdet, header),
        "block_summary": wrap(block, header, block=True)}}


def records() -> tuple[list[dict], dict[str, str]]:
    rows = [record(i, f"r{i:02d}", variant=i % 2) for i in range(len(MODULES))]
    planted: dict[str, str] = {}
    # repairable defects are planted in place (the row must survive, repaired)
    rows[1] = record(1, "r01", code="/* Author: John Smith, john.smith@example.com, tel +1 (404) 555-0199 */ "
                     + " ".join(MODULES[1][1]).replace("assign y = sel ? b : a;", "assign y = sel ? b : a; /* host 192.168.10.20 */")
                     + " endmodule")
    planted["r01"] = "pii"
    rows[6] = record(6, "r06", hl="A binary to Gray code converter â€” four bit values, â€œfastâ€.")
    planted["r06"] = "mojibake"

    def add(rec: dict, defect: str) -> None:
        rows.append(rec)
        planted[rec["id"]] = defect

    add(record(0, "d_exact"), "exact_duplicate")
    renamed = " ".join(MODULES[4][1] + ["endmodule"]).replace("prev", "last_sig")
    add(record(4, "d_near", code=renamed), "near_duplicate")
    add(record(2, "d_url", hl="See https://example.com/a/very/long/path/to/docs and https://example.org/more/docs/x "
               "http://example.net/q?x=1"), "url_heavy")
    add(record(3, "d_short", hl="Parity."), "too_short")
    add(record(5, "d_junk", code="0x00 0xff 0x12 0x34 0x56 0x78 0x9a 0xbc 0xde 0xf0 " * 8), "junk")
    add(record(7, "d_nocompile", code=" ".join(MODULES[7][1]).replace("rptr <= rptr + 3'd1;", "rptr <= rptr + ;")
               + " endmodule"), "does_not_compile")
    return rows, planted


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_benchmark(folder: Path) -> Path:
    """A two-problem VerilogEval-like folder. A file already holding its text is not rewritten:
    its mtime is part of a resume's fingerprint, so configs built twice for one run resume."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"Prob001_parity_ref.sv": BENCH_REF, "Prob001_parity_prompt.txt": BENCH_PROMPT,
             "Prob002_other_ref.sv": "module RefModule (input a, output b);\n  assign b = ~a;\nendmodule\n",
             "Prob002_other_prompt.txt": "Implement an inverter with input a and output b.\n"}
    for name, text in files.items():
        path = folder / name
        if not (path.is_file() and path.read_text() == text):
            path.write_text(text)
    return folder


# The real VerilogEval v2 folder next to the repository (present in the workplace, maybe not in CI).
from sft_playbook.paths import REPO_ROOT  # noqa: E402

REAL_BENCH = (REPO_ROOT / ".." / "shared" / "benchmarks" / "verilog-eval-v2" / "spec-to-rtl").resolve()
