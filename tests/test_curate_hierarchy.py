"""Module hierarchy across the corpus and the language standard of the compile check
(sft_playbook/curate/hierarchy.py, filters.Compiles). Inputs are shaped like real MG-Verilog rows:
submodules in other rows (and other partitions), in no row, escaped names, parameterised and
delayed instances, recursive generate, Verilog-2005 code that uses SystemVerilog keywords as names."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from sft_playbook.config import load_config
from sft_playbook.curate.base import DETAIL, REASON
from sft_playbook.curate.engine import Engine
from sft_playbook.curate.filters import Compiles
from sft_playbook.curate.hierarchy import ModuleIndex, check_verilog, error_lines, scan_units
from sft_playbook.curate.pipeline import build_stages, run_stages
from sft_playbook.paths import REPO_ROOT
from sft_playbook.verilog.sandbox import compile_check, iverilog_available

needs_iverilog = pytest.mark.skipif(not iverilog_available(), reason="iverilog not installed")
STDS = ["-g2012", "-g2005 -gno-xtypes", "-g2001 -gno-xtypes", "-g1995 -gno-xtypes"]


def frame(rows):
    df = pd.DataFrame(rows)
    df["_order"] = range(len(df))
    return df


# -- scanning ------------------------------------------------------------------------------------
def test_scan_units_finds_definitions_and_instances_not_prose():
    code = (
        "// module fake_in_comment (a); this module instantiates nothing\n"
        "module \\$top_wrap (input a, output [3:0] y);\n"
        "  /* adder8 u_c (.a(x)); */\n"
        "  wire [3:0] t;\n"
        '  initial $display("sub_in_string u (x);");\n'
        "  adder8 #(.W(8), .D(f(2))) u_add (.a(a), .s(t));\n"
        "  \\$not u_not (.A(a), .Y(t[0]));\n"
        "  dff #1 u_d [3:0] (.d(t), .q(y));\n"
        "  and g1 (t[1], a, a);\n"
        "  bit do (.q(t[3]));\n"                      # SystemVerilog words are Verilog-2005 names\n
        "  assign t[2] = fn (a);\n"
        "  gen_cell\n    #(4)\n    u_gen\n    (.x(a));\n"
        "endmodule\n"
        "primitive udp_mux (o, a, b, s); output o; input a, b, s; table 0 ? 0 : 0; endtable endprimitive\n")
    units = scan_units(code)
    assert [u.name for u in units] == ["$top_wrap", "udp_mux"]
    assert units[0].uses == ["adder8", "$not", "dff", "bit", "gen_cell"]
    assert code[units[0].start:units[0].end].startswith("module \\$top_wrap") and \
        code[units[0].start:units[0].end].endswith("endmodule")
    assert units[1].uses == []


def test_error_lines_skip_warnings_and_summaries():
    out = ("design.sv:3: warning: macro WIDTH undefined (and assumed null) at this point.\n"
           "design.sv:5: warning: Port 4 (color_in) of pal expects 4 bits, got 3.\n"
           "design.sv:5:        : Padding 1 high bits of the port.\n"
           "design.sv:7: error: Unknown module type: adder8\n2 error(s) during elaboration.\n"
           "*** These modules were missing:\n        adder8 referenced 1 times.\n***\n")
    assert error_lines(out) == [("design.sv", 7, "error: Unknown module type: adder8")]


# -- the index over partitions -------------------------------------------------------------------
ADDER = "module adder8 (input [7:0] a, input [7:0] b, output [8:0] s);\n  assign s = a + b;\nendmodule"
ADDER_OTHER = "module adder8 (input [3:0] p, output [3:0] q);\n  assign q = ~p;\nendmodule"   # same name, later row
WRAP = ("module add_wrap (input [7:0] x, input [7:0] y, output [8:0] z);\n"
        "  adder8 u_add (.a(x), .b(y), .s(z));\nendmodule")
# two levels: top3 -> mid -> leaf, each in its own row
LEAF = "module leaf #(parameter W = 2) (input [W-1:0] i, output [W-1:0] o);\n  assign o = ~i;\nendmodule"
MID = "module mid (input [3:0] i, output [3:0] o);\n  leaf #(.W(4)) u_leaf (.i(i), .o(o));\nendmodule"
TOP3 = "module top3 (input [3:0] a, output [3:0] b);\n  mid u_mid (.i(a), .o(b));\nendmodule"
NOT = "module \\$not (A, Y);\n  input A;\n  output Y;\n  assign Y = ~A;\nendmodule"
USES_NOT = "module inv2 (input a, output y);\n  wire t;\n  \\$not n1 (.A(a), .Y(t));\n  \\$not n2 (.A(t), .Y(y));\nendmodule"
VENDOR = ("module clkbuf (input clk_in, output clk_out);\n  IBUFG u_ibuf (.I(clk_in), .O(clk_out));\n"
          "  BUFG u_bufg (.I(clk_out), .O());\nendmodule")
BROKEN_WITH_SUB = ("module bad_wrap (input [7:0] x, output [8:0] z);\n  adder8 u_add (.a(x), .b(x), .s(z));\n"
                   "  assign z = undefined_fn(x);\nendmodule")
# the corpus's adder8 has no port 'sum' (and 'a' gets 4 bits: a width warning with a continuation line)
PORT_MISMATCH = ("module mism (input [7:0] x, output [8:0] z);\n  adder8 u_add (.a(x[3:0]), .b(x), .sum(z));\nendmodule")


def _rows():
    return frame([{"id": "wrap", "code": WRAP}, {"id": "top3", "code": TOP3}, {"id": "inv2", "code": USES_NOT},
                  {"id": "vendor", "code": VENDOR}, {"id": "adder", "code": ADDER}, {"id": "mid", "code": MID},
                  {"id": "badwrap", "code": BROKEN_WITH_SUB}, {"id": "leaf", "code": LEAF},
                  {"id": "adder_other", "code": ADDER_OTHER}, {"id": "not", "code": NOT},
                  {"id": "mism", "code": PORT_MISMATCH}])


def _run(df, engine="local", **compiles):
    index = ModuleIndex("code")
    stages = [index, Compiles(standards=STDS, flags=["-tnull"], timeout_s=20, threads=2, index=index, **compiles)]
    # definitions live in other partitions (with dask: in other worker processes)
    with Engine(engine=engine, partition_rows=2, n_workers=2, memory_limit="1GiB") as eng:
        kept, stats = run_stages(eng.partitions(df), stages, eng, dropped_dir=None)
        index.fetch(eng)                 # on a cluster the index stays on a worker: bring it here to look
    return index, kept, stats


@needs_iverilog
@pytest.mark.parametrize("engine", ["local", "dask"])
def test_submodules_from_other_rows_resolve_transitively_and_unresolved_rows_are_kept(engine):
    index, kept, stats = _run(_rows(), engine)
    ids = list(kept["id"])
    assert {"wrap", "top3", "inv2", "vendor", "adder", "mid", "leaf", "not", "adder_other", "mism"} <= set(ids)
    assert "badwrap" not in ids
    st = stats[-1]
    assert st.dropped == {"does_not_compile": 1}
    # the real error line, not the unknown module, and no warning
    ex = st.examples["does_not_compile"][0]
    assert ex["id"] == "badwrap" and "line 3" in ex["detail"] and "undefined_fn" in ex["detail"]
    assert st.counters["submodules_resolved"] == 4          # wrap, top3 (mid -> leaf), mid, inv2 (\$not)
    assert st.counters["unresolved_submodule"] == 2         # vendor primitives; mism (the corpus's adder8 has other ports)
    by = kept.set_index("id")
    assert by.at["vendor", "unresolved_modules"] == "IBUFG BUFG"
    assert by.at["wrap", "unresolved_modules"] == "" and by.at["wrap", "verilog_std"] == "2012"
    # the index: first row in input order wins; only what someone needs is shipped
    assert index.modules["adder8"].row == "adder" and set(index.modules) == {"adder8", "mid", "leaf", "$not"}
    assert index.closure(["mid"], set()) == ["mid", "leaf"]
    assert index.summary()["names_defined_by_several_rows"] == 1


@needs_iverilog
def test_unresolved_submodule_can_be_dropped_by_config():
    _, kept, stats = _run(_rows(), unresolved_submodule="drop")
    assert "vendor" not in set(kept["id"]) and "wrap" in set(kept["id"])
    st = stats[-1]
    assert st.dropped == {"does_not_compile": 1, "unresolved_submodule": 2}
    details = {e["id"]: e["detail"] for e in st.examples["unresolved_submodule"]}
    assert details["vendor"] == "missing: IBUFG BUFG"
    assert details["mism"] == "interface_mismatch: adder8"     # both of the corpus's adder8 lack port 'sum'


@needs_iverilog
def test_first_definition_in_input_order_wins_whatever_the_partitioning():
    rows = _rows()
    for n in (1, 3, 20):
        index = ModuleIndex("code")
        with Engine(engine="local", partition_rows=n) as eng:
            parts = eng.partitions(rows)
            index.fit(parts, eng)
        assert index.modules["adder8"].row == "adder"
    swapped = rows.copy()
    swapped["_order"] = [{"adder": 99}.get(i, k) for i, k in zip(swapped["id"], swapped["_order"])]
    index = ModuleIndex("code")
    with Engine(engine="local", partition_rows=2) as eng:
        index.fit(eng.partitions(swapped), eng)
    assert index.modules["adder8"].row == "adder_other"


@needs_iverilog
def test_definition_that_does_not_compile_leaves_the_row_unresolved_not_dropped():
    broken_leaf = "module leafx (input a, output y);\n  assign y = ;\nendmodule"
    user = "module userx (input a, output y);\n  leafx u (.a(a), .y(y));\nendmodule"
    _, kept, stats = _run(frame([{"id": "u", "code": user}, {"id": "l", "code": broken_leaf}]))
    assert list(kept["id"]) == ["u"] and stats[-1].dropped == {"does_not_compile": 1}
    assert stats[-1].examples["does_not_compile"][0]["id"] == "l"
    # the corpus defines leafx (it just does not compile): not "missing", an interface mismatch
    assert kept.set_index("id").at["u", "unresolved_modules"] == ""
    assert kept.set_index("id").at["u", "mismatched_modules"] == "leafx"


@needs_iverilog
def test_recursive_module_compiles():
    rec = ("module tree #(parameter N = 4) (input [N-1:0] i, output o);\n  generate\n  if (N == 1) begin : leaf\n"
           "  assign o = i[0];\n  end else begin : node\n  wire a, b;\n"
           "  tree #(.N(N/2)) l (.i(i[N/2-1:0]), .o(a));\n  tree #(.N(N-N/2)) r (.i(i[N-1:N/2]), .o(b));\n"
           "  assign o = a ^ b;\n  end\n  endgenerate\nendmodule")
    v = check_verilog(rec, compile_check, STDS, ["-tnull"], 20)
    assert v.status == "ok", v


# -- language standard ---------------------------------------------------------------------------
@needs_iverilog
@pytest.mark.parametrize("code,std", [
    ("module reg4 (input clk, input [3:0] di, output reg [3:0] do);\n  always @(posedge clk) do <= di;\nendmodule", "2005"),
    ("module memtest (input clk, input [1:0] addr, input bit, output reg y);\n  reg [3:0] mem;\n"
     "  always @(posedge clk) y <= mem[addr] ^ bit;\nendmodule", "2005"),
    ("module prng (input clk, output reg [7:0] rand);\n  always @(posedge clk) rand <= {rand[6:0], rand[7] ^ rand[5]};\nendmodule", "2005"),
    ("module sel (input [2:0] type, input [1:0] rot, output reg [3:0] y);\n"
     "  always @* case (type)\n  3'd0: y = {2'b0, rot};\n  default: y = 4'hf;\n  endcase\nendmodule", "2005"),
    ("module lg (input [2:0] a, output reg [3:0] logic);\n  always @* logic = a;\nendmodule", "2005"),
    ("module f1 (input clk, input d, output reg q);\n  always_ff @(posedge clk) q <= d;\nendmodule", "2012"),
    ("module old (a, y);\n  input a;\n  output y;\n  wire uwire;\n  assign uwire = a;\n  assign y = uwire;\nendmodule", "2001"),
    ("module older (a, y);\n  input a;\n  output y;\n  wire generate;\n  assign generate = a;\n  assign y = generate;\nendmodule", "1995"),
])
def test_first_standard_that_accepts_the_code_is_recorded(code, std):
    out = Compiles(standards=STDS, flags=["-tnull"], timeout_s=20)(frame([{"id": "x", "code": code}]))
    assert out[REASON].iloc[0] == "" and out["verilog_std"].iloc[0] == std
    assert out[f"_n_std_{std}"].sum() == 1


@needs_iverilog
def test_genuine_errors_name_the_error_line_not_a_warning():
    code = ("module w (input [7:0] a, output [7:0] y);\n  assign y = a + `WIDTH;\n  reg r;\n"
            "  always @(posedge a[0]) r <= nosuch;\nendmodule")
    out = Compiles(standards=STDS, flags=["-tnull"], timeout_s=20)(frame([{"id": "x", "code": code}]))
    assert out[REASON].iloc[0] == "does_not_compile"
    assert "warning" not in out[DETAIL].iloc[0] and out[DETAIL].iloc[0].startswith("line ")
    syntax = "module s (input a, output y);\n  assign y = a\n  assign z = ;\nendmodule"
    out = Compiles(standards=STDS, flags=["-tnull"], timeout_s=20)(frame([{"id": "s", "code": syntax}]))
    assert out[REASON].iloc[0] == "does_not_compile" and "syntax error" in out[DETAIL].iloc[0]


def test_a_standard_in_flags_is_a_config_error():
    with pytest.raises(ValueError, match="standards"):
        Compiles(standards=["-g2012"], flags=["-g2012", "-tnull"])


def test_config_builds_the_index_before_the_rules_and_hands_it_to_the_compile_check():
    cfg = load_config(REPO_ROOT / "configs/curate.yaml", [])
    stages = build_stages(cfg)
    names = [s.name for s in stages]
    assert names.index("module_index") == names.index("clean") + 1
    comp = stages[names.index("compiles")]
    assert comp.index is stages[names.index("module_index")]
    assert comp.config["standards"][0] == "-g2012" and comp.config["unresolved_submodule"] == "keep"
    cfg = load_config(REPO_ROOT / "configs/curate.yaml", ["module_index.enabled=false"])
    assert [s for s in build_stages(cfg) if s.name == "compiles"][0].index is None



# -- end to end: MG-Verilog-shaped rows through curate() -------------------------------------------
def _mg(rid, header, body, summary):
    text = f"\n    <s>[INST] <<SYS>>\n    \n\n{summary}\n\n Module header:\n\n{header}\n [/INST]\n"
    return {"id": rid, "code": body, "description": {"high_level_global_summary": text}}


@needs_iverilog
def test_curate_keeps_hierarchies_and_reports_what_stayed_unresolved(tmp_path):
    from sft_playbook.curate.pipeline import curate
    from sft_playbook.io import read_jsonl

    rows = [
        _mg("wrap", "module add_wrap (input [7:0] x, input [7:0] y, output [8:0] z);",
            " \n adder8 u_add (.a(x), .b(y), .s(z)); \n endmodule", "A wrapper that adds two bytes with an adder instance."),
        _mg("vendor", "module clkbuf (input clk_in, output clk_out);",
            " \n IBUFG u_ibuf (.I(clk_in), .O(clk_out)); \n endmodule", "Buffers the input clock with a vendor input buffer."),
        _mg("kwdo", "module reg4(input clk, input [3:0] di, output reg [3:0] do);",
            " \n always @(posedge clk) \n do <= di; \n endmodule", "A register that captures di on every rising clock edge."),
        _mg("esc", "module \\$not (A, Y);", " \n input A; \n output Y; \n assign Y = ~A; \n endmodule",
            "An inverter that drives Y with the complement of A."),
        _mg("adder", "module adder8 (input [7:0] a, input [7:0] b, output [8:0] s);",
            " \n assign s = a + b; \n endmodule", "An eight bit adder with the carry in the top bit of the sum."),
        _mg("broken", "module brk (input a, output y);", " \n adder8 u (.a(a)); \n assign y = nosuch_fn(a); \n endmodule",
            "A module that calls a function defined nowhere at all."),
    ]
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "sources.jsonl").write_text(json.dumps({"name": "t", "path": str(tmp_path / "src"), "format": "mg-verilog",
                                                        "levels": {"high_level": "high_level_global_summary"}}) + "\n")
    cfg = load_config(REPO_ROOT / "configs/curate.yaml", [
        f"sources={tmp_path / 'sources.jsonl'}", f"output_dir={tmp_path / 'out'}", "dropped_dir=null", "levels=[high_level]",
        "engine.engine=local", "decontaminate.benchmark_dir=/nonexistent", "pii.backend=regex",
        "split.train=1.0", "split.validation=0.0", "split.test=0.0", "rules.line_count.min_lines=2"])
    rep = curate(cfg)
    out = {r["id"]: r for r in read_jsonl(tmp_path / "out" / "high_level" / "train.jsonl")}
    assert set(out) == {"wrap", "vendor", "kwdo", "esc", "adder"}
    for r in out.values():
        assert not re.search(r"<<|>>|\[/?INST\]|</?s>", r["input"] + r["output"])
    assert out["esc"]["output"].startswith("module \\$not (A, Y);")
    h = rep["hierarchy"]
    assert h["standards"] == {"2012": 4, "2005": 1, "2001": 0, "1995": 0}
    assert h["submodules_resolved"] == 1 and h["unresolved_rows_written"] == 1
    assert h["missing_modules"] == {"IBUFG": 1} and h["unresolved_ids"] == ["vendor"]
    assert h["module_index"]["definitions_for_elaboration"] == 1
    comp = next(s for s in rep["stages"] if s["name"] == "compiles")
    assert comp["dropped"] == {"does_not_compile": 1} and "nosuch_fn" in comp["examples"]["does_not_compile"][0]["detail"]
