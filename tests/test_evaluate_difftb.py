"""Differential testbench and evaluate_predictions on hand-written designs (good, one-bit bugs,
rewritten-but-equivalent, non-compiling, hostile)."""
import json
from pathlib import Path

import pytest

from sft_playbook.evaluate.verilog_metrics import evaluate_one, evaluate_predictions

F = Path(__file__).parent / "fixtures" / "verilog_eval"


def fx(name: str) -> str:
    return (F / f"{name}.v").read_text()


def row(rid, ref, prediction, inp="Implement the module."):
    return {"id": rid, "input": inp, "reference": fx(ref), "prediction": prediction}


def fenced(code):
    return f"Here is the code:\n```verilog\n{code}\n```\nDone."


def test_counter_and_combinational_bugs_are_caught_rewrites_pass(tmp_path):
    rows = [row(c, ref, fenced(fx(c))) for ref, cands in {
        "counter_ref": ["counter_ref", "counter_good_rewritten", "counter_onebit_bug"],
        "alu_ref": ["alu_ref", "alu_good_rewritten", "alu_onebit_bug"],
        "sreg_ref": ["sreg_good"]}.items() for c in cands]
    s = evaluate_predictions(rows, workers=2, out_dir=tmp_path, timeout_s=10, progress=False)
    res = {r["id"]: r for r in map(json.loads, (tmp_path / "verilog_results.jsonl").read_text().splitlines())}
    assert [r for r in res] == [r["id"] for r in rows]  # input order kept
    for good in ("counter_ref", "counter_good_rewritten", "alu_ref", "alu_good_rewritten", "sreg_good"):
        assert res[good]["status"] == "pass", res[good]
    assert res["counter_onebit_bug"]["status"] == "mismatch"
    assert res["counter_onebit_bug"]["output_mismatches"].keys() == {"q"}
    assert res["alu_onebit_bug"]["status"] == "mismatch" and "y" in res["alu_onebit_bug"]["output_mismatches"]
    assert res["counter_ref"]["clocks"] == ["clk"] and res["counter_ref"]["resets"] == ["reset"]
    assert res["sreg_good"]["resets"] == ["rst_n (active low)"] and res["alu_ref"]["clocks"] == []
    # 3 samples per half period of the clock; combinational: 2 per input vector
    assert res["counter_ref"]["samples"] == 1200 and res["alu_ref"]["samples"] == 400
    assert s["rows"] == 7 and s["functional_pass"] == 5 and s["mismatch"] == 2
    assert s["compile_rate"] == 1.0 and s["functional_pass_rate"] == pytest.approx(5 / 7)
    assert json.loads((tmp_path / "verilog_summary.json").read_text())["functional_pass"] == 5


def test_async_reset_bug_needs_reset_pulses():
    r = row("x", "sreg_ref", fenced(fx("sreg_sync_reset_bug")))
    assert evaluate_one(r, reset_pulses=0)["status"] == "pass"      # reset only at the start: same
    assert evaluate_one(r)["status"] == "mismatch"                  # reset pulses mid-run (default): caught


def test_body_only_prediction_gets_the_header():
    r = row("body", "counter_ref", "  always @(posedge clk)\n    if (reset) q <= 0;\n    else if (en) q <= q + 1;\nendmodule")
    res = evaluate_one(r)
    assert res["extraction"] == "body+header_from_reference" and res["status"] == "pass", res


GOOD_COUNTER = fx("counter_ref") if (F / "counter_ref.v").exists() else ""


@pytest.mark.parametrize("name,code,status,error_class", [
    ("syntax", GOOD_COUNTER.replace("q <= 4'd0;", "q <= 4'd0"), "compile_error", "syntax_error"),
    ("undeclared", GOOD_COUNTER.replace("q + 4'd1", "qq + 4'd1"), "compile_error", "undeclared_identifier"),
    ("missing_port", GOOD_COUNTER.replace("input en,", "input enable,").replace("(en)", "(enable)"), "compile_error", None),
    ("infinite_loop", GOOD_COUNTER.replace("endmodule", "reg z = 0; always @(posedge clk) while (1) z = ~z;\nendmodule"), "timeout", None),
    ("finish_at_0", GOOD_COUNTER.replace("endmodule", "initial $finish;\nendmodule"), "runtime_error", "no_verdict"),
    ("fake_result", GOOD_COUNTER.replace("q + 4'd1", "q + 4'd3").replace(
        "endmodule", "initial #1 $display(\"SFTPB_0 RESULT mismatches=0 samples=600 first=-1\");\nendmodule"), "mismatch", None),
    ("spam", GOOD_COUNTER.replace("endmodule", "always @(posedge clk) repeat (100000) $display(\"spam spam spam\");\nendmodule"),
     "runtime_error", "output_limit"),
    ("fopen", GOOD_COUNTER.replace("endmodule", "integer f; initial f = $fopen(\"/tmp/x.txt\", \"w\");\nendmodule"), "forbidden", None),
    ("no_code", None, "extraction_failure", None),
])
def test_bad_and_hostile_candidates(name, code, status, error_class):
    r = row(name, "counter_ref", fenced(code) if code is not None else "I do not know.")
    res = evaluate_one(r, timeout_s=3)
    assert res["status"] == status, res
    if error_class:
        assert res["error_class"] == error_class, res
    if name == "missing_port":
        assert res["error_class"] == "port_mismatch" and "en" in res["error"]


def test_reference_problems_are_not_blamed_on_the_candidate():
    bad_ref = {"id": "r", "input": "", "reference": "module m(input a, output y); assign y = ; endmodule",
               "prediction": "module m(input a, output y); assign y = a; endmodule"}
    s = evaluate_predictions([bad_ref], workers=1, progress=False)
    assert s["reference_error"] == 1 and s["compiled"] == 1 and s["functional_pass_rate_testable"] == 0.0
    with pytest.raises(ValueError, match="row 0.*reference"):
        evaluate_predictions([{"id": 1, "prediction": "x"}], progress=False)


def test_mg_verilog_rows_body_only_reference_and_prediction():
    inp = ("<s>[INST] Implement the Verilog module based on the following description.\n"
           "The module sat_add adds a and b and saturates at 255.\n\n  Module header:\n\n"
           "module sat_add (input [7:0] a, input [7:0] b, output [7:0] y);\n [/INST]\n")
    ref = "wire [8:0] s = a + b; assign y = s[8] ? 8'hff : s[7:0]; endmodule"
    good = "  wire [8:0] t;\n  assign t = {1'b0, a} + {1'b0, b};\n  assign y = t > 9'd255 ? 8'd255 : t[7:0];\nendmodule"
    bad = "  assign y = a + b;\nendmodule"   # forgets to saturate
    rows = [{"id": k, "input": inp, "reference": ref, "prediction": p} for k, p in (("good", good), ("bad", bad))]
    res = {k: evaluate_one(r) for k, r in zip(("good", "bad"), rows)}
    assert res["good"]["status"] == "pass" and res["good"]["extraction"] == "body+header_from_input"
    assert res["good"]["reference_header"] == "from_input"
    assert res["bad"]["status"] == "mismatch"


def test_undriven_outputs_compare_equal_and_x_in_reference_is_dont_care():
    ref = "module m(input [3:0] a, output [3:0] y, output z);\n  assign y = {a[3:1], 1'bx};\nendmodule"
    same_z = "module m(input [3:0] a, output [3:0] y, output z);\n  assign y = {a[3:1], a[0]};\nendmodule"
    wrong = "module m(input [3:0] a, output [3:0] y, output z);\n  assign y = a; assign z = 1'b0;\nendmodule"
    r1 = evaluate_one({"id": 1, "input": "", "reference": ref, "prediction": same_z})
    r2 = evaluate_one({"id": 2, "input": "", "reference": ref, "prediction": wrong})
    assert r1["status"] == "pass", r1     # y[0] is X in the reference: don't care; z is Z in both
    # z never takes both values in the reference, but a 4x longer run does not change that: 200 cycles
    assert r2["status"] == "mismatch" and r2["output_mismatches"] == {"z": 2 * 200} and r2["cycles"] == 200
