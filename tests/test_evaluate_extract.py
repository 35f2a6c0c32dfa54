"""Code extraction from model answers, the small port parser, and pass@k."""
import math

import pytest

from sft_playbook.evaluate.difftb import is_clock, is_reset, reset_active_low
from sft_playbook.evaluate.extract import extract_code
from sft_playbook.evaluate.passk import mean_pass_at_k, pass_at_k
from sft_playbook.evaluate.vparse import Port, params_needed, parse_modules, top_module

MOD = "module top(input a, output y);\n  assign y = ~a;\nendmodule"


def test_fenced_block_with_text_around():
    ans = f"Sure! Here is the module top:\n```verilog\n{MOD}\n```\nThis inverts a. module foo is not code."
    ex = extract_code(ans)
    assert ex.ok and ex.method == "fence" and ex.code.strip() == MOD


def test_begin_done_block_and_missing_done():
    ex = extract_code(f"[BEGIN]\n{MOD}\n[DONE]\ntrailing text")
    assert ex.ok and ex.method == "begin_done" and ex.code.strip() == MOD
    ex2 = extract_code(f"[BEGIN]\n{MOD}\nmodule half(")
    assert ex2.ok and ex2.code.strip() == MOD


def test_raw_text_keeps_the_top_and_what_it_uses_not_unrelated_modules():
    ans = f"The design:\n{MOD}\n\nmodule junk(input b); garbage tokens\nendmodule\nmore words"
    ex = extract_code(ans)
    assert ex.ok and ex.method == "raw" and ex.code.strip() == MOD


def test_helper_module_first_then_expected_top():
    helper = "module inv(input a, output y); assign y = ~a; endmodule"
    top = "module TopModule(input a, output y); inv u(.a(a), .y(y)); endmodule"
    ex = extract_code(f"```\n{helper}\n{top}\n```\nexplanation", expected_module="TopModule")
    assert ex.ok and "module inv" in ex.code and ex.code.strip().endswith("endmodule") and "TopModule" in ex.code
    # without the expected name: the module no other one instantiates, with what it uses
    raw = extract_code(f"{helper}\n{top}").code
    assert "module inv" in raw and "module TopModule" in raw


def test_body_only_answer_gets_header_from_input_or_reference():
    body = "  assign y = a & b;\nendmodule"
    inp = "Implement this module.\nmodule and2(input a, input b, output y);\n"
    ex = extract_code(body, input_text=inp)
    assert ex.ok and ex.method == "body+header_from_input"
    assert ex.code.startswith("module and2(input a, input b, output y);") and ex.code.count("endmodule") == 1
    ref = "// ref\nmodule and2 (input a, input b, output y);\n assign y = b & a;\nendmodule\n"
    ex2 = extract_code("assign y = a & b;", input_text="Make an AND gate.", reference=ref)
    assert ex2.ok and ex2.method == "body+header_from_reference" and ex2.code.rstrip().endswith("endmodule")


@pytest.mark.parametrize("answer,reason", [
    ("", "empty"), ("I cannot help with that.", "no Verilog"),
    ("```verilog\nmodule top(input a, output y);\n assign y = a;\n```", "without a matching endmodule"),
])
def test_extraction_failures(answer, reason):
    ex = extract_code(answer)
    assert not ex.ok and ex.code == "" and reason in ex.reason


def test_port_parser_ansi_non_ansi_and_parameters():
    ansi = ("module c #(parameter W = 4, parameter N = W*2) (input wire clk, input rst_n, input [W-1:0] d, e,\n"
            "  output reg [N-1:0] q, output signed [3:0] s, output integer k);\nendmodule")
    (m,) = parse_modules(ansi)
    assert [(p.name, p.direction, p.range) for p in m.ports] == [
        ("clk", "input", ""), ("rst_n", "input", ""), ("d", "input", "[W-1:0]"), ("e", "input", "[W-1:0]"),
        ("q", "output", "[N-1:0]"), ("s", "output", "[3:0]"), ("k", "output", "[31:0]")]
    assert m.port("s").signed and params_needed(m) == [("W", "4"), ("N", "W*2")]
    old = ("module o(clk, a, y);\n parameter WIDTH = 8; // w\n input clk;\n input [WIDTH-1:0] a;\n"
           " output reg [WIDTH:0] y;\n always @(posedge clk) y <= a;\nendmodule\n"
           "module wrap(input x, output z); o u(.clk(x)); endmodule")
    mods = parse_modules(old)
    assert [(p.name, p.range) for p in mods[0].ports] == [("clk", ""), ("a", "[WIDTH-1:0]"), ("y", "[WIDTH:0]")]
    assert top_module(mods).name == "wrap" and top_module(mods, prefer="o").name == "o"
    (arr,) = parse_modules("module m(input [7:0] mem [0:3], output y); endmodule")
    assert arr.unsupported


@pytest.mark.parametrize("name", ["clk", "clock", "CLK", "sys_clk", "clk_i", "i_clk", "aclk", "clk_in", "clk2", "core_clock", "clk_sys"])
def test_clock_names(name):
    assert is_clock(Port(name, "input"))


@pytest.mark.parametrize("name,low", [("rst", False), ("reset", False), ("areset", False), ("rst_n", True),
                                      ("resetn", True), ("aresetn", True), ("rstn", True), ("nrst", True),
                                      ("rst_ni", True), ("i_rst", False), ("sys_rst_n", True), ("arst_n", True),
                                      ("rst_b_i", True), ("i_areset", False)])
def test_reset_names_and_polarity(name, low):
    assert is_reset(Port(name, "input")) and reset_active_low(name) is low


@pytest.mark.parametrize("name", ["d", "en", "first", "reset_value", "data_rst", "clk_en", "clken", "clk_sel", "block"])
def test_not_reset_or_clock(name):
    p = Port(name, "input", "[3:0]" if name == "reset_value" else "")
    assert not is_clock(p)
    if name != "data_rst":
        assert not is_reset(p)


def test_pass_at_k_known_values():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 2, 5) == pytest.approx(1 - 56 / 252)
    assert pass_at_k(5, 0, 3) == 0.0 and pass_at_k(5, 3, 3) == 1.0 and pass_at_k(1, 1, 1) == 1.0
    for n in range(1, 12):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k))
    assert mean_pass_at_k([(4, 1), (4, 0)], 1) == pytest.approx(0.125)
    assert mean_pass_at_k([(4, 1), (2, 0)], 3) is None
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)
