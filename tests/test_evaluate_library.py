"""Held-out references that instantiate modules defined in other rows of the corpus (a quarter of real
MG-Verilog rows do) are judged with those rows' definitions (`evaluate.module_library`); modules
defined nowhere make the reference untestable, and a candidate's compile is then judged against the
same black boxes, never against names the reference does not need."""
from __future__ import annotations

import json

import pytest

from sft_playbook.curate.hierarchy import build_module_index
from sft_playbook.evaluate.verilog_metrics import NEEDS_MISSING_MODULES, evaluate_one, evaluate_predictions
from sft_playbook.sft.report import module_library
from sft_playbook.verilog.sandbox import iverilog_available

pytestmark = pytest.mark.skipif(not iverilog_available(), reason="iverilog not installed")

# -- a small corpus, shaped like real rows: positional ports, parameters, a name defined twice with
# -- different ports (the first does not fit), a submodule's own submodule, Verilog-2001 code that
# -- names a net `bit`, a vendor cell defined nowhere
HALF = "module half_add(a, b, s, c);\n  input a, b; output s, c;\n  assign s = a ^ b;\n  assign c = a & b;\nendmodule"
FULL = ("module full_add(input a, input b, input ci, output s, output co);\n  wire s1, c1, c2;\n"
        "  half_add h0(a, b, s1, c1);\n  half_add h1(.a(s1), .b(ci), .s(s), .c(c2));\n"
        "  assign co = c1 | c2;\nendmodule")
# `reg8` twice: the first has no enable port (does not fit the instances below), the second fits
REG8_OTHER = "module reg8(input clk, input [7:0] d, output reg [7:0] q);\n  always @(posedge clk) q <= d;\nendmodule"
REG8 = ("module reg8 #(parameter W = 8) (input clk, input rstn, input en, input [W-1:0] d, output reg [W-1:0] q);\n"
        "  wire bit;\n  assign bit = en;\n"
        "  always @(posedge clk or negedge rstn)\n    if (!rstn) q <= 0; else if (bit) q <= d;\nendmodule")

REF_ADDER = ("module add2(input [1:0] x, input [1:0] y, output [2:0] z);\n  wire c0;\n"
             "  full_add f0(x[0], y[0], 1'b0, z[0], c0);\n  full_add f1(.a(x[1]), .b(y[1]), .ci(c0), .s(z[1]), .co(z[2]));\n"
             "endmodule")
REF_REG = ("module pipe(input clk, input wrstn, input go, input [7:0] din, output [7:0] dout);\n  wire [7:0] mid;\n"
           "  reg8 #(.W(8)) r0(.clk(clk), .rstn(wrstn), .en(go), .d(din), .q(mid));\n"
           "  reg8 #(8) r1(clk, wrstn, go, mid, dout);\nendmodule")
REF_VENDOR = ("module shifter(input clk, input d, output q, output nq);\n"
              "  SRLC16E #(.INIT(16'h0000)) srl (.Q(q), .A0(1'b1), .A1(1'b0), .A2(1'b0), .A3(1'b0), .CE(1'b1), .CLK(clk), .D(d));\n"
              "  assign nq = ~q;\nendmodule")

CORPUS = [("r-half", HALF), ("r-full", FULL), ("r-reg-other", REG8_OTHER), ("r-reg", REG8),
          ("r-add2", REF_ADDER), ("r-pipe", REF_REG), ("r-shift", REF_VENDOR)]


@pytest.fixture(scope="module")
def library():
    return build_module_index(CORPUS)


def judge(reference, prediction, library=None, rid="t"):
    return evaluate_one({"id": rid, "input": "", "reference": reference, "prediction": prediction},
                        timeout_s=20, cycles=60, seed=3, library=library)


# -- kind 1: the reference's submodules are in the corpus ---------------------------------------------
def test_reference_with_submodules_of_other_rows_is_judged_with_them(library):
    inline = ("module add2(input [1:0] x, input [1:0] y, output [2:0] z);\n  assign z = x + y;\nendmodule")
    r = judge(REF_ADDER, inline, library)
    assert r["status"] == "pass", r
    assert r["reference_submodules"] == ["full_add", "half_add"]       # transitively, first need first
    wrong = inline.replace("x + y", "x - y")
    assert judge(REF_ADDER, wrong, library)["status"] == "mismatch"


def test_candidate_that_instantiates_the_corpus_module_gets_its_definition(library):
    cand = ("module add2(input [1:0] x, input [1:0] y, output [2:0] z);\n  wire c;\n"
            "  full_add u0(.a(x[0]), .b(y[0]), .ci(1'b0), .s(z[0]), .co(c));\n"
            "  full_add u1(.a(x[1]), .b(y[1]), .ci(c), .s(z[1]), .co(z[2]));\nendmodule")
    r = judge(REF_ADDER, cand, library)
    assert r["status"] == "pass", r
    assert r["compiled_with"] == {"submodules": ["full_add", "half_add"], "black_boxes": []}
    # its own (wrong) full adder wins over the corpus's; the corpus gives the half adder it uses
    own = cand + "\n" + FULL.replace("c1 | c2", "c1 & c2")
    r = judge(REF_ADDER, own, library)
    assert r["status"] == "mismatch", r
    assert r["compiled_with"] == {"submodules": ["half_add"], "black_boxes": []}


def test_the_definition_that_fits_is_chosen_and_verilog_2001_names_survive(library):
    """reg8 is defined twice in the corpus; the first has other ports; the second names a net `bit`."""
    cand = ("module pipe(input clk, input wrstn, input go, input [7:0] din, output reg [7:0] dout);\n"
            "  reg [7:0] m;\n  always @(posedge clk or negedge wrstn)\n"
            "    if (!wrstn) begin m <= 0; dout <= 0; end else if (go) begin m <= din; dout <= m; end\nendmodule")
    r = judge(REF_REG, cand, library)
    assert r["status"] == "pass", r
    assert r["reference_submodules"] == ["reg8"]
    no_reset = cand.replace("if (!wrstn) begin m <= 0; dout <= 0; end else ", "")
    assert judge(REF_REG, no_reset, library)["status"] == "mismatch"


# -- kind 2: a module defined nowhere ------------------------------------------------------------------
@pytest.mark.parametrize("use_library", [True, False])
def test_reference_needing_a_module_defined_nowhere_is_untestable_but_the_compile_is_judged(library, use_library):
    lib = library if use_library else None
    same_cell = REF_VENDOR.replace("srl (", "u_srl (")            # the same vendor cell, another instance name
    r = judge(REF_VENDOR, same_cell, lib)
    assert r["status"] == "reference_error" and r["error_class"] == NEEDS_MISSING_MODULES, r
    assert "SRLC16E" in r["error"]
    assert r["compiled"] is True and r["compiled_with"]["black_boxes"] == ["SRLC16E"]
    # a genuine error of its own is not hidden by the black box
    broken = same_cell.replace("assign nq = ~q;", "assign nq = ~qq + ;")
    r = judge(REF_VENDOR, broken, lib)
    assert r["status"] == "reference_error" and r["compiled"] is False, r


def test_a_module_the_reference_does_not_need_is_never_black_boxed(library):
    cand = ("module add2(input [1:0] x, input [1:0] y, output [2:0] z);\n"
            "  ripple_adder #(2) u(.a(x), .b(y), .s(z));\nendmodule")
    for lib, status in ((library, "compile_error"), (None, "reference_error")):   # no library: full_add is missing
        r = judge(REF_ADDER, cand, lib)
        assert r["status"] == status and r["compiled"] is False, r
        assert "compiled_with" not in r


def test_without_a_library_the_submodules_of_other_rows_are_missing():
    r = judge(REF_ADDER, "module add2(input [1:0] x, input [1:0] y, output [2:0] z);\n  assign z = x + y;\nendmodule")
    assert r["status"] == "reference_error" and r["error_class"] == NEEDS_MISSING_MODULES, r
    assert "full_add" in r["error"] and r["compiled"] is True


def test_summary_counts_and_excluded_reasons(library):
    rows = [{"id": "a", "input": "", "reference": REF_ADDER,
             "prediction": "```verilog\nmodule add2(input [1:0] x, input [1:0] y, output [2:0] z);\n"
                           "  assign z = x + y;\nendmodule\n```"},
            {"id": "v", "input": "", "reference": REF_VENDOR, "prediction": REF_VENDOR}]
    s = evaluate_predictions(rows, workers=1, timeout_s=20, cycles=60, progress=False, library=library)
    assert s["functional_pass"] == 1 and s["compiled"] == 2
    assert s["excluded"]["why"] == {f"reference_error: {NEEDS_MISSING_MODULES}": 1}


# -- the SFT evaluate step's library: every split of the level ----------------------------------------
def test_module_library_reads_every_split_of_the_level(tmp_path):
    lvl = tmp_path / "high_level"
    lvl.mkdir()
    (lvl / "train.jsonl").write_text("\ufeff" + json.dumps({"id": "1", "input": "h", "output": HALF}) + "\n")
    (lvl / "validation.jsonl").write_text(json.dumps({"id": "2", "input": "f", "output": FULL}) + "\n")
    (lvl / "test.jsonl").write_text(json.dumps({"id": "3", "input": "a", "output": REF_ADDER}) + "\n")
    index = module_library(tmp_path, "high_level")
    assert set(index.definitions) == {"half_add", "full_add", "add2"}    # every definition, needed or not
    assert module_library(tmp_path, "detailed") is None
    r = judge(REF_ADDER, REF_ADDER, index)
    assert r["status"] == "pass", r


def test_the_evaluate_command_takes_a_module_library(tmp_path, capfd):
    from evaluate import main as evaluate_main

    lvl = tmp_path / "merged" / "block"
    lvl.mkdir(parents=True)
    (lvl / "train.jsonl").write_text("".join(json.dumps({"id": i, "input": "x", "output": t}) + "\n"
                                             for i, t in CORPUS[:2]))
    inline = "module add2(input [1:0] x, input [1:0] y, output [2:0] z);\n  assign z = x + y;\nendmodule"
    pred = tmp_path / "predictions.jsonl"
    pred.write_text(json.dumps({"id": "a", "input": "", "reference": REF_ADDER, "prediction": inline}) + "\n")
    for lib, status in ((str(lvl), "pass"), ("null", "reference_error"), (str(lvl), "pass")):
        out = tmp_path / f"out-{status}"
        assert evaluate_main(["predictions", f"predictions.file={pred}", f"out_dir={out}", "predictions.cycles=40",
                              f"predictions.module_library={lib}"]) == 0
        assert json.loads((out / "verilog_results.jsonl").read_text())["status"] == status
    assert evaluate_main(["predictions", f"predictions.file={pred}", f"out_dir={tmp_path / 'x'}",
                          f"predictions.module_library={tmp_path / 'nowhere'}"]) == 1
    err = capfd.readouterr()
    assert "predictions.module_library:" in err.err + err.out and "is not a folder" in err.err + err.out
