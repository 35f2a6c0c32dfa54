"""Submodules the corpus does not define (or defines only with another interface) must not hide
the row's own errors (sft_playbook/curate/hierarchy.py: black boxes, definitions tried in input
order). Rows shaped like real MG-Verilog: vendor cells, positional and parameterised instances,
instance arrays, hierarchical references, the same module name defined twice in the corpus."""
from __future__ import annotations

import pandas as pd
import pytest

from sft_playbook.curate.engine import Engine
from sft_playbook.curate.hierarchy import ModuleIndex, black_box, check_verilog, instances
from sft_playbook.verilog.sandbox import compile_check, iverilog_available

needs_iverilog = pytest.mark.skipif(not iverilog_available(), reason="iverilog not installed")
STDS = ["-g2012", "-g2005 -gno-xtypes", "-g2001 -gno-xtypes", "-g1995 -gno-xtypes"]


def index_of(rows: dict[str, str]) -> ModuleIndex:
    df = pd.DataFrame({"id": list(rows), "code": list(rows.values())})
    df["_order"] = range(len(df))
    index = ModuleIndex("code")
    with Engine(engine="local", partition_rows=1) as eng:
        index.fit(eng.partitions(df), eng)
    return index


def check(code: str, corpus: dict[str, str]):
    """``code`` checked against the index of ``corpus`` plus the row itself (as in the pipeline)."""
    return check_verilog(code, compile_check, STDS, ["-tnull"], 20, index_of({**corpus, "row": code}))


MID_DSP = ("module mid_dsp (input clk, input [7:0] a, output [15:0] p);\n"
           "  DSP48_X #(.AREG(1)) d (.CLK(clk), .A(a), .P(p));\nendmodule")


# -- kind 1: a submodule defined nowhere ----------------------------------------------------------
@needs_iverilog
@pytest.mark.parametrize("code,line,word", [
    # named ports; an undeclared net on another line
    ("module pll_top (input clk, output y);\n  ALTPLL_X pll (.inclk0(clk), .c0(fast));\n"
     "  assign y = fast & lock_n;\nendmodule", 3, "lock_n"),
    # positional ports and parameters, a constant on a port; a register that was never declared
    ("module ram_top (input clk, input [3:0] a, output [7:0] q);\n  SRAM16X8 #(8, 16) mem (clk, a, 1'b1, q);\n"
     "  always @(posedge clk)\n    last <= q;\nendmodule", 4, "last"),
    # a named parameter, an escaped vendor name; a function defined nowhere
    ("module io_top (input [7:0] d, output [7:0] y);\n  \\$lut #(.INIT(16'h8000)) l0 (.A(d[3:0]), .Y(t));\n"
     "  assign y = parity_of(d);\nendmodule", 3, "parity_of"),
    # the submodule's own submodule is missing (mid_dsp is in the corpus, DSP48_X is not); an error in the row
    ("module dsp_top (input clk, input [7:0] a, output [15:0] p);\n  mid_dsp m (.clk(clk), .a(a), .p(p));\n"
     "  assign p[0] = a[8:9] + ;\nendmodule", 3, "syntax"),
])
def test_a_missing_submodule_does_not_hide_an_error_in_the_row(code, line, word):
    v = check(code, {"mid": MID_DSP})
    assert v.status == "error", v
    assert v.error.startswith(f"line {line}:") and word in v.error, v.error
    assert "Unknown module" not in v.error and "warning" not in v.error


@needs_iverilog
@pytest.mark.parametrize("code,missing", [
    ("module pll_top (input clk, output y);\n  ALTPLL_X pll (.inclk0(clk), .c0(y), .locked());\nendmodule", ("ALTPLL_X",)),
    # positional, parameters, a reg and a constant on ports, two vendor cells
    ("module ram_top (input clk, input [3:0] a, output [7:0] q);\n  reg en;\n  SRAM16X8 #(8, 16) mem (clk, a, en, 1'b1, q);\n"
     "  BUFG b (.I(clk), .O());\n  always @(posedge clk) en <= ~en;\nendmodule", ("SRAM16X8", "BUFG")),
    # an instance array and a hierarchical reference into the black box
    ("module arr_top (input [3:0] d, output [3:0] q, output done);\n  DFF_X ff [3:0] (.D(d), .Q(q));\n"
     "  CNT_X c (.clk(d[0]));\n  assign done = c.tc;\nendmodule", ("DFF_X", "CNT_X")),
    # a SystemVerilog interface instance used with a method call in a condition
    ("module tb_if (input clk);\n  bus_if b0 ();\n  always @(posedge clk) begin\n    b0.value <= 4'h1;\n"
     "    if (b0.get_count() != 3) $stop;\n  end\nendmodule", ("bus_if",)),
    # ports on several lines, a parameter without parentheses, an escaped port name
    ("module multi (input clk, input [1:0] s, output y);\n  MUX_X #2\n    m0 (\n      .\\S[0] (s[0]),\n"
     "      .CLK(clk),\n      .Y(y)\n    );\nendmodule", ("MUX_X",)),
])
def test_a_row_whose_only_problem_is_the_missing_submodule_is_kept_unresolved(code, missing):
    v = check(code, {"other": "module unrelated (input a, output b);\n  assign b = a;\nendmodule"})
    assert v.status == "unresolved_submodule", v
    assert v.unresolved == missing and v.mismatched == ()


@needs_iverilog
def test_a_missing_submodule_of_a_corpus_definition_is_a_black_box_too():
    v = check("module dsp_top (input clk, input [7:0] a, output [15:0] p);\n  mid_dsp m (.clk(clk), .a(a), .p(p));\nendmodule",
              {"mid": MID_DSP})
    assert v.status == "unresolved_submodule" and v.submodules == ("mid_dsp",) and v.unresolved == ("DSP48_X",), v


def test_black_box_takes_the_ports_and_parameters_of_every_instance():
    code = ("module t (input a, b, output y);\n  CELL #(.W(8), .D(2)) u0 (.A(a), .B({a, b}), .Y());\n"
            "  CELL u1 (a, b, y, a);\n  CELL #(4) u2 [1:0] (.A(a), .Z(y));\nendmodule")
    box = black_box("CELL", [u for u in instances(code) if u.module == "CELL"])
    assert box == ("module CELL(A, B, Y, Z); parameter W = 0; parameter D = 0; "
                   "input A; input B; input Y; input Z; endmodule")
    box = black_box("CELL", [u for u in instances(code) if u.module == "CELL" and u.inst == "u1"])
    assert box == "module CELL(p0, p1, p2, p3); input p0; input p1; input p2; input p3; endmodule"


# -- kind 2: the corpus's module of that name has another interface --------------------------------
GATE_AND = "module gate2 (input a, input b, output o);\n  assign o = a & b;\nendmodule"
GATE_PAR = "module gate2 (input [7:0] v, output z);\n  assign z = ^v;\nendmodule"
GATE_3 = "module gate2 (input a, input b, input c, output o);\n  assign o = a & b & c;\nendmodule"


@needs_iverilog
@pytest.mark.parametrize("code,row", [
    ("module par_user (input [7:0] data, output par);\n  gate2 g (.v(data), .z(par));\nendmodule", "par"),
    ("module and_user (input x, input y, output o);\n  gate2 g (.a(x), .b(y), .o(o));\nendmodule", "and"),
    ("module and3_user (input x, input y, input w, output o);\n  gate2 g (x, y, w, o);\nendmodule", "and3"),
])
def test_the_first_definition_that_fits_is_used(code, row):
    corpus = {"and": GATE_AND, "par": GATE_PAR, "and3": GATE_3}
    assert [d.row for d in index_of({**corpus, "row": code}).definitions["gate2"]] == ["and", "par", "and3"]
    v = check(code, corpus)
    assert v.status == "ok_with_submodules" and v.submodules == ("gate2",), v


@needs_iverilog
def test_when_no_definition_fits_the_row_is_an_interface_mismatch_not_missing():
    index = {"and": GATE_AND, "par": GATE_PAR}
    v = check("module bad_port (input [3:0] x, output y);\n  gate2 g (.a(x[0]), .nope(y));\nendmodule", index)
    assert v.status == "unresolved_submodule" and v.mismatched == ("gate2",) and v.unresolved == (), v
    # ... and a genuine error in such a row is still found
    v = check("module bad_both (input [3:0] x, output y);\n  gate2 g (.a(x[0]), .nope(y));\n"
              "  assign y = x[0] ^ missing_net;\nendmodule", index)
    assert v.status == "error" and v.error.startswith("line 3:") and "missing_net" in v.error, v


@needs_iverilog
def test_an_instance_the_scan_cannot_see_is_not_the_rows_fault_but_its_own_modules_are_checked():
    # `ifdef between the module name and the instance: the black box gets no ports from the scan
    hidden = ("module tb (input clk);\n  wire [3:0] d;\n`ifdef FAST FAST_CNT `else SLOW_CNT `endif\n"
              "  c3 (.clkm(clk), .q(d));\nendmodule")
    v = check(hidden, {})
    assert v.status == "unresolved_submodule" and v.unresolved == ("SLOW_CNT",), v
    # a port that the row's OWN module lacks is a genuine error, black boxes or not
    own = ("module leaf_own (input a, output y);\n  assign y = ~a;\nendmodule\n"
           "module top_own (input a, output y);\n  VENDOR_BUF b (.I(a), .O(t));\n  leaf_own l (.a(t), .nope(y));\nendmodule")
    v = check(own, {})
    assert v.status == "error" and "nope" in v.error and v.error.startswith("line 6:"), v
