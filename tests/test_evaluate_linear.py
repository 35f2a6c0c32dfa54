"""Host-side work on an answer is bounded: answers over the size cap are not searched (counted as
extraction failures), and instantiation finding is linear (a `#(` without its `)` is skipped, not
re-scanned from every later position)."""
import time

import pytest

from sft_playbook.evaluate.extract import DEFAULT_MAX_ANSWER_CHARS, extract_code
from sft_playbook.evaluate.vparse import Module, bracket_pairs, instantiated_names, parse_modules, top_module


@pytest.mark.parametrize("answer", [
    "module a; endmodule\n" * 4000 + "module TopModule(output y); assign y = 1; endmodule\n",
    "```verilog\n" + "// padding\n" * 7000 + "module TopModule(output y); assign y = 1; endmodule\n```",
    "x" * (DEFAULT_MAX_ANSWER_CHARS + 1),
])
def test_answers_over_the_cap_fail_extraction(answer):
    assert len(answer) > DEFAULT_MAX_ANSWER_CHARS
    ex = extract_code(answer, expected_module="TopModule")
    assert not ex.ok and ex.reason == "answer too long" and ex.code == ""
    assert extract_code(answer, expected_module="TopModule", max_chars=None).reason != "answer too long"


def test_answer_just_under_the_cap_is_searched():
    body = "module TopModule(output y); assign y = 1; endmodule\n"
    answer = "// c\n" * ((DEFAULT_MAX_ANSWER_CHARS - len(body)) // 5) + body
    assert len(answer) <= DEFAULT_MAX_ANSWER_CHARS
    assert extract_code(answer, expected_module="TopModule").ok


def test_predictions_runner_counts_a_too_long_answer(tmp_path):
    from sft_playbook.evaluate.verilog_metrics import evaluate_one
    ref = "module and_gate(input a, input b, output y); assign y = a & b; endmodule\n"
    row = {"id": 1, "reference": ref, "prediction": "module a; endmodule\n" * 100 + ref}
    assert evaluate_one(row, max_answer_chars=500)["error_class"] == "answer too long"
    assert evaluate_one(row, max_answer_chars=500)["status"] == "extraction_failure"


@pytest.mark.parametrize("body,known,expect", [
    ("fifo #(.W(A+(B*2)), .D(4)) u0 (.clk(clk));", {"fifo"}, {"fifo"}),          # nested parens in parameters
    ("fifo\n #(.W(8))\n u0 [3:0] (.clk(clk));", {"fifo"}, {"fifo"}),             # instance array
    ("fifo #(.W(8) u0 (.clk(clk));", {"fifo"}, set()),                            # unbalanced: not an instance
    ("x #( " * 3000, {"x"}, set()),
    ("adder a1 (.a(a)); x #( x #( sub s (.b(b));", {"adder", "sub", "x"}, {"adder", "sub"}),
    ("and g1 (y, a, b); forever #5 clk = ~clk;", {"and", "forever"}, set()),       # keywords / primitives not modules
])
def test_instantiated_names(body, known, expect):
    assert instantiated_names(Module("m", body=body), known) == expect


def test_bracket_pairs():
    assert bracket_pairs("a(b[c]d(e))f(") == {1: 10, 3: 5, 7: 9}
    assert bracket_pairs("((([") == {}


@pytest.mark.slow
def test_parsing_scales_linearly():
    def t(n):
        code = "module TopModule(output y);\n" + "x #( " * n + "\nendmodule\n"
        t0 = time.perf_counter()
        top_module(parse_modules(code))
        extract_code("module a; endmodule\n" * n + "module TopModule(output y); endmodule\n",
                     expected_module="TopModule", max_chars=None)
        return time.perf_counter() - t0
    t(1000)
    small, big = t(4000), t(16000)
    assert big < 8 * small + 0.5, (small, big)     # quadratic would be ~16x
