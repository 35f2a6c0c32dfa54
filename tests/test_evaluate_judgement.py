"""Does the evaluator judge real-world designs right? Several awkward examples per kind:
multi-module answers (any order, same helper names on both sides, escaped names), resets found
by name and by use and asserted again between clock edges, several clocks, few-bit inputs during
reset, a common default timescale, directive isolation, reference problems never charged to the
model, long runs for rare events, and the generation stop."""
import re

import pytest

from sft_playbook.evaluate import difftb
from sft_playbook.evaluate.extract import extract_code, module_header
from sft_playbook.evaluate.verilog_metrics import evaluate_one, evaluate_predictions, summarize
from sft_playbook.evaluate.verilogeval import prepare_testbench
from sft_playbook.evaluate.vparse import Port, parse_modules, signal_roles, top_module
from sft_playbook.sft.predict import check_stops, cut_at_stop


def judge(ref, pred, inp="Implement the module.", **kw):
    return evaluate_one({"id": "x", "input": inp, "reference": ref, "prediction": pred}, timeout_s=20, **kw)


def fence(code):
    return f"Here you go:\n```verilog\n{code}\n```\nThe top instantiates the helpers."


# --- 1. a design is every module of the answer -------------------------------------------------

HELP_A = "module sub_a (input x, input y, output z);\n  assign z = (x ^ y) & x;\nendmodule\n"
HELP_B = "module sub_b (input x, input y, output z);\n  assign z = ~(x ^ y);\nendmodule\n"
TOP = ("module top3 (input x, input y, output z);\n  wire a, b;\n  sub_a ia (.x(x), .y(y), .z(a));\n"
       "  sub_b ib (.x(x), .y(y), .z(b));\n  assign z = a ^ b;\nendmodule\n")


@pytest.mark.parametrize("order", [(TOP, HELP_A, HELP_B), (HELP_A, HELP_B, TOP), (HELP_A, TOP, HELP_B)])
def test_multi_module_answer_in_any_order_passes(order):
    ref = HELP_B + TOP + HELP_A
    res = judge(ref, fence("\n".join(order)))
    assert res["status"] == "pass", res
    assert all(f"module {m}" in res["code"] for m in ("top3", "sub_a", "sub_b"))


def test_helpers_in_a_second_block_and_raw_text_keep_the_whole_design():
    two_blocks = f"Top:\n```verilog\n{TOP}```\nHelpers:\n```verilog\n{HELP_A}{HELP_B}```"
    assert judge(HELP_A + HELP_B + TOP, two_blocks)["status"] == "pass"
    raw = f"The design is below.\n{HELP_A}\nand the second helper\n{HELP_B}\nthen the top:\n{TOP}\nThat is all."
    ex = extract_code(raw)
    assert ex.ok and ex.method == "raw" and ex.code.count("endmodule") == 3 and "That is all" not in ex.code


def test_same_helper_names_on_both_sides_do_not_collide():
    ref = "module inv(input a, output y); assign y = ~a; endmodule\nmodule t(input a, input b, output y);\n" \
          "  wire na; inv u(.a(a), .y(na)); assign y = na & b;\nendmodule\n"
    # the candidate's own `inv` is a buffer and its top compensates: equivalent as a design
    good = "module t(input a, input b, output y);\n  wire pa; inv u(.a(a), .y(pa)); assign y = ~pa & b;\nendmodule\n" \
           "module inv(input a, output y); assign y = a; endmodule\n"
    bad = good.replace("~pa & b", "pa & b")
    assert judge(ref, fence(good))["status"] == "pass"
    assert judge(ref, fence(bad))["status"] == "mismatch"


def test_escaped_module_names_are_verilog():
    ref = "module \\$not (A, Y);\n  input A;\n  output Y;\n  assign Y = ~A;\nendmodule\n"
    assert [m.name for m in parse_modules(ref)] == ["\\$not"]
    assert judge(ref, fence(ref))["status"] == "pass"
    wrong = ref.replace("~A", "A")
    res = judge(ref, f"```\n{wrong}```")
    assert res["status"] == "mismatch", res
    wrapped = ("module \\$not (input A, output Y); assign Y = ~A; endmodule\n"
               "module nor2 (input a, input b, output y);\n  \\$not  u (.A(a | b), .Y(y));\nendmodule\n")
    assert judge(wrapped, fence(wrapped))["status"] == "pass"


@pytest.mark.parametrize("pred,status", [
    (" input a;\n input b;\n output y;", "mismatch"),            # ports only: output undriven
    ("  input a, b;\n  output y;\n", "mismatch"),
    ("input a;\noutput y;", "compile_error"),                    # b has no direction
])
def test_ports_only_body_is_judged(pred, status):
    inp = "An AND gate.\n\n Module header:\n\nmodule and2b(a, b, y);\n"
    ref = "input a; \n input b; \n output y; \n assign y = a & b; \n endmodule"
    res = judge(ref, pred, inp)
    assert res["status"] == status and res["extraction"] == "body+header_from_input", res


def test_module_header_comes_from_the_module_header_line_not_prose():
    inp = ("The module adder (a ripple design) is used by module top (not shown).\n\n Module header:\n\n"
           "module sat_add (input [3:0] a, input [3:0] b, output [3:0] y);\n")
    assert module_header(inp).startswith("module sat_add")
    res = judge("assign y = (a + b > 15) ? 4'd15 : a + b;\nendmodule", "assign y = (a + b > 15) ? 4'hf : a + b;\nendmodule", inp)
    assert res["status"] == "pass" and res["code"].startswith("module sat_add"), res
    prose = "I wrote module adder (it adds) below:\nmodule adder(input a, output y); assign y = a; endmodule"
    assert extract_code(prose).code.startswith("module adder(input a")


def test_top_is_picked_by_name_then_root_then_ports():
    ref = parse_modules("module m(input clk, input d, output q); endmodule")[0]
    mods = parse_modules("module tb; endmodule\nmodule other(input clk, input d, output q); endmodule")
    assert top_module(mods, prefer="m", reference=ref).name == "other"
    assert top_module(parse_modules("module a(output q); endmodule module b(input x); endmodule"), prefer="a").name == "a"


def test_candidate_testbench_module_does_not_become_the_top():
    ref = "module inc(input [3:0] a, output [3:0] y); assign y = a + 1; endmodule\n"
    ans = fence(ref + "module tb;\n  reg [3:0] a; wire [3:0] y;\n  inc u(.a(a), .y(y));\n"
                      "  initial begin a = 1; #1 $display(\"%d\", y); $finish; end\nendmodule\n")
    assert judge(ref, ans)["status"] == "pass"


# --- 2. stimulus that tells designs apart ------------------------------------------------------

@pytest.mark.parametrize("name,low", [("wrstn", True), ("rrstn", True), ("brstn", True), ("presetn", True),
                                      ("hresetn", True), ("sys_rst_n", True), ("wrst", False), ("rst_sync", False)])
def test_reset_names(name, low):
    assert difftb.is_reset(Port(name, "input")) and difftb.reset_active_low(name) is low


@pytest.mark.parametrize("name", ["first", "burst", "worst", "restore", "rst_cnt", "reset_value"])
def test_not_resets(name):
    assert not difftb.is_reset(Port(name, "input"))


def test_resets_and_clocks_found_by_use():
    code = ("module m(input strobe, input kill, input tick, input clr, input en, input [3:0] d,\n"
            "         output reg [3:0] a, output reg [3:0] b, output reg [3:0] c);\n"
            "  localparam ZERO = 4'd0;\n"
            "  always @(posedge strobe or negedge kill) if (!kill) a <= 4'd0; else a <= d;\n"
            "  always @(posedge tick) begin if (clr) b <= ZERO; else b <= d; end\n"
            "  always @(posedge tick) if (en) c <= d;\nendmodule")
    roles = signal_roles(code)
    assert roles["kill"] == ("reset", True) and roles["clr"] == ("reset", False)
    assert roles["strobe"][0] == "clock" and roles["tick"][0] == "clock" and "en" not in roles
    r = difftb.classify(parse_modules(code)[0], code)
    assert r.clocks == ["strobe", "tick"] and dict(r.resets) == {"kill": True, "clr": False}
    assert r.how == {"strobe": "use", "kill": "use", "tick": "use", "clr": "use"}


SYNC = ("module r8 (input clk, input {rst}, input [7:0] d, output reg [7:0] q);\n"
        "  always @(posedge clk{sens}) begin\n    if ({test}) q <= 8'd0;\n    else q <= d;\n  end\nendmodule\n")


@pytest.mark.parametrize("rst,test,edge", [("reset", "reset", "posedge"), ("wrstn", "!wrstn", "negedge"),
                                           ("clr", "clr", "posedge"), ("rst_n", "~rst_n", "negedge")])
def test_sync_async_and_no_reset_differ(rst, test, edge):
    sync = SYNC.format(rst=rst, sens="", test=test)
    asyn = SYNC.format(rst=rst, sens=f" or {edge} {rst}", test=test)
    none = SYNC.format(rst=rst, sens="", test="1'b0")
    assert judge(sync, fence(sync))["status"] == "pass"
    assert judge(asyn, fence(asyn))["status"] == "pass"
    assert judge(sync, fence(asyn))["status"] == "mismatch"
    assert judge(asyn, fence(sync))["status"] == "mismatch"
    assert judge(sync, fence(none))["status"] == "mismatch"


def test_reset_pulses_fall_between_clock_edges_and_repeat():
    ref = SYNC.format(rst="reset", sens="", test="reset")
    m = parse_modules(ref)[0]
    tb = difftb.build(ref, m, ["r8"], ref, m, nonce="v1", name_key="n1", cycles=100, reset_pulses=4)
    sched = difftb.reset_schedule(["reset"], 200, reset_steps=4, pulses=4, seed=1)["reset"]
    assert sched[0] == (0, 4) and len(sched) >= 4 and all(a < b for a, b in sched)
    text = tb.files["tb.sv"]
    assert "`timescale 1ns/1ps" in text and re.search(r"#1;\n\s+if \(step_n1 == \d+", text)


def test_two_clocks_toggle_at_independent_periods():
    code = open_corpus("two_domain")
    m = parse_modules(code)[0]
    tb = difftb.build(code, m, [m.name], code, m, nonce="v2", name_key="n2", cycles=10)
    assert tb.clocks == ["clk_a", "clk_b"]
    assert "step_n2 % 1 == 0) i_clk_a_n2" in tb.files["tb.sv"] and "step_n2 % 3 == 0) i_clk_b_n2" in tb.files["tb.sv"]
    swapped = code.replace("always @(posedge clk_a)", "always @(posedge clk_b)")
    assert judge(code, fence(swapped))["status"] == "mismatch"
    assert judge(code, fence(code))["status"] == "pass"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_few_bit_inputs_vary_during_the_initial_reset(seed):
    # the output shows the 1-bit input only while reset is held: a design that ignores it must fail
    ref = "module m(input clk, input rst, input d, output y); assign y = rst & d; endmodule"
    cand = "module m(input clk, input rst, input d, output y); assign y = 1'b0; endmodule"
    assert judge(ref, fence(cand), seed=seed, reset_pulses=0)["status"] == "mismatch"


def test_rare_event_gets_a_longer_run_and_constant_bits_do_not():
    ref = open_corpus("rare_timer")
    late = ref.replace("10'd599", "10'd600")
    res = judge(ref, fence(late))
    assert res["status"] == "mismatch" and res["cycles"] == 3200, res
    const = "module k(input clk, input rst, input [3:0] d, output reg [3:0] q, output z);\n" \
            "  assign z = 1'b0;\n  always @(posedge clk) if (rst) q <= 0; else q <= d;\nendmodule"
    assert judge(const, fence(const))["cycles"] == 200


# --- 3. timing ----------------------------------------------------------------------------------

@pytest.mark.parametrize("ref,cand,status", [
    ("module d(input a, output reg y);\n  always @(a) y <= #3 a;\nendmodule\n",
     "module d(input a, output reg y);\n  always @(a) y <= #30 ~a;\nendmodule\n", "mismatch"),
    ("module g(input a, input b, output y);\n  assign #2 y = a ^ b;\nendmodule\n",
     "module g(input a, input b, output y);\n  assign #20 y = a ^ b;\nendmodule\n", "mismatch"),
    # a unit's own `timescale still counts: 3000 ps is the reference's 3 ns
    ("module g(input a, input b, output y);\n  assign #3 y = a & b;\nendmodule\n",
     "`timescale 1ps/1ps\nmodule g(input a, input b, output y);\n  assign #3000 y = a & b;\nendmodule\n", "pass"),
])
def test_delays_are_compared_under_a_common_timescale(ref, cand, status):
    assert judge(ref, fence(cand))["status"] == status


# --- 4. isolation and blame ---------------------------------------------------------------------

IMPLICIT = "module ao(input a, input b, input c, output y);\n  and g1(t, a, b);\n  or g2(y, t, c);\nendmodule\n"
EXPLICIT = "module ao(input wire a, input wire b, input wire c, output wire y);\n  assign y = (a & b) | c;\nendmodule\n"


@pytest.mark.parametrize("ref,cand,status", [
    (IMPLICIT, "`default_nettype none\n" + EXPLICIT, "pass"),                 # candidate's none stays its own
    ("`default_nettype none\n" + EXPLICIT, IMPLICIT, "pass"),                 # and the reference's too
    (EXPLICIT + "`default_nettype none\n", IMPLICIT, "pass"),                 # also when set at the end
    ("`define OP |\n" + EXPLICIT.replace("| c", "`OP c"), EXPLICIT.replace("| c", "`OP c"), "compile_error"),
    ("`define OP |\n" + EXPLICIT.replace("| c", "`OP c"), "`define OP ^\n" + EXPLICIT.replace("| c", "`OP c"), "mismatch"),
])
def test_directives_do_not_cross_units(ref, cand, status):
    res = judge(ref, fence(cand))
    assert res["status"] == status, res


@pytest.mark.parametrize("ref,status,why", [
    ("module m(input a, output y); assign y = ; endmodule", "reference_error", "does not compile"),
    ("module m(input a, output y); sub u(.a(a), .y(y)); endmodule", "reference_error",
     "needs modules defined nowhere"),
    ("module m(input clk, output reg [7:0] q); always @(posedge clk) q <= $random; endmodule",
     "unsupported", "nondeterministic"),
    ("module m(input clk, input d, output reg [7:0] q); always @(posedge clk) q <= $urandom % 7 + d; endmodule",
     "unsupported", "nondeterministic"),
    ("module m(input a, output reg y); always @(a) begin y = a; while (1) y = ~y; end endmodule",
     "reference_error", "timeout"),
])
def test_reference_problems_are_reported_not_charged(ref, status, why):
    for pred in ("module m(input a, output y); assign y = a; endmodule", "no code at all", "assign y = ;"):
        res = evaluate_one({"id": 1, "input": "", "reference": ref, "prediction": pred}, timeout_s=3)
        assert res["status"] == status and why in res["error_class"], res


def test_summary_excludes_reference_problems_and_says_why():
    good = "module m(input a, output y); assign y = ~a; endmodule"
    rows = [{"id": "ok", "input": "", "reference": good, "prediction": good},
            {"id": "bad", "input": "", "reference": good, "prediction": good.replace("~a", "a")},
            {"id": "rnd", "input": "", "reference": "module m(input clk, output reg [3:0] q); always @(posedge clk) "
                                                   "q <= $random; endmodule", "prediction": good},
            {"id": "broken", "input": "", "reference": "module m(input a, output y); u0 x(a, y); endmodule",
             "prediction": "nothing"}]
    s = evaluate_predictions(rows, workers=1, progress=False)
    assert s["functional_pass_rate_testable"] == 0.5 and s["functional_pass_rate"] == 0.25
    assert s["excluded"]["rows"] == 2
    assert any("nondeterministic" in k for k in s["excluded"]["why"])
    assert any("needs modules defined nowhere" in k for k in s["excluded"]["why"])
    assert summarize([{"status": "pass"}], 1.0)["excluded"] == {"rows": 0, "why": {}}


def test_verilogeval_reference_helpers_are_renamed():
    ref = "module helper(input a, output y); assign y = a; endmodule\n" \
          "module RefModule(input a, output y); helper h(.a(a), .y(y)); endmodule\n"
    _, ref2, _ = prepare_testbench("module tb; endmodule", ref, "v0", name_key="abc")
    assert "v0" not in ref2
    assert "module helper_abc" in ref2 and "helper_abc h(" in ref2 and "module RefModule_abc" in ref2


# --- generation stop ----------------------------------------------------------------------------

def test_generation_never_stops_at_the_first_endmodule():
    with pytest.raises(ValueError, match="predict.stop"):
        check_stops(["endmodule"])
    with pytest.raises(ValueError, match="predict.stop"):
        check_stops(["[DONE]", "\nendmodule"])
    assert check_stops(["[DONE]"]) == ["[DONE]"] and check_stops([]) == []
    text = "[BEGIN]\nmodule a; endmodule\nmodule b; endmodule\n[DONE]\nmore"
    assert cut_at_stop(text, ["[DONE]"]).count("endmodule") == 2


def open_corpus(name):
    from pathlib import Path
    return (Path(__file__).parent.parent / "bench" / "mutation_corpus" / f"{name}.v").read_text()


@pytest.mark.parametrize("answer", [
    "[BEGIN]\n```verilog\n`timescale 1ns/1ps\n" + HELP_A + HELP_B + TOP + "```\n[DONE]",
    "[BEGIN]\nHere is my design:\n" + TOP + HELP_A + HELP_B + "[DONE]",
])
def test_text_before_the_first_module_of_a_block_is_not_code(answer):
    ex = extract_code(answer, expected_module="top3")
    assert ex.ok and ex.code.count("endmodule") == 3 and "```" not in ex.code and "Here is" not in ex.code
    assert ex.code.startswith("`timescale") or ex.code.startswith("module top3")
    assert judge(HELP_A + HELP_B + TOP, answer)["status"] == "pass"


def test_port_ranges_with_the_references_macros_are_driven():
    ref = "`define W 6\n`define HI (`W-1)\nmodule p(input [`HI:0] a, output [`W-1:0] y);\n  assign y = a + 1;\nendmodule\n"
    cand = "module p(input [5:0] a, output [5:0] y);\n  assign y = a + 6'd1;\nendmodule\n"
    assert judge(ref, fence(cand))["status"] == "pass"
    assert judge(ref, fence(cand.replace("6'd1", "6'd2")))["status"] == "mismatch"


@pytest.mark.parametrize("name,body", [
    ("rand", "wire [2:0] logic;\n  assign logic = seed[2:0];\n  assign number = logic;"),
    ("do", "reg [2:0] bit;\n  always @(posedge clk) bit <= seed[2:0];\n  assign number = bit;"),
])
def test_verilog_2005_code_with_systemverilog_keywords_as_names(name, body):
    code = f"module {name}(input clk, input [3:0] seed, output [2:0] number);\n  {body}\nendmodule\n"
    res = judge(code, fence(code))
    assert res["status"] == "pass" and res["compiled"], res
    assert judge(code, fence(code.replace("seed[2:0]", "seed[3:1]")))["status"] == "mismatch"


def test_a_longer_run_that_the_reference_cannot_finish_falls_back_to_the_shorter_one():
    # a 10-bit counter (its top bit needs > 512 cycles) whose reference stops the simulation at 10 us:
    # 200 cycles (4 us) work, 800 (16 us) do not; the row is judged at 200 cycles, not blamed
    ref = ("module c10(input clk, input rst, output reg [9:0] q);\n  always @(posedge clk) if (rst) q <= 0; "
           "else q <= q + 1;\n  initial #10000 $finish;\nendmodule\n")
    res = judge(ref, fence(ref.replace("  initial #10000 $finish;\n", "")), reset_pulses=0)
    assert res["status"] == "pass" and res["cycles"] == 200, res
