"""VerilogEval v2 runner: prompts, judging (good, wrong, non-compiling, hostile), pass@k, outputs,
and the references of the real benchmark (153/156 with iverilog 11) when it is present."""
import json
import os
from pathlib import Path

import pytest

from sft_playbook.evaluate.verilogeval import (NO_EXPLAIN_SUFFIX, SYSTEM_PROMPT, build_prompt, load_problems,
                                               run_benchmark, score_references)
from sft_playbook.paths import REPO_ROOT
from sft_playbook.verilog.sandbox import iverilog_version

PROBLEMS = Path(__file__).parent / "fixtures" / "verilog_eval" / "problems"
BENCH = Path(os.environ.get("VERILOG_EVAL_DIR", REPO_ROOT.parent / "shared" / "benchmarks" / "verilog-eval-v2"))

GOOD = """module TopModule(input clk, input reset, output reg [3:0] q);
  always @(posedge clk) if (reset) q <= 0; else q <= q + 1;
endmodule"""
CANDIDATES = {
    "good": GOOD,
    "good_in_fence_with_text": None,
    "wrong": GOOD.replace("q + 1", "q + 2"),
    "noncompile": GOOD.replace("reg [3:0] q);", "reg [3:0] q)"),
    "infinite_loop": GOOD.replace("endmodule", "always @(q) begin : L integer i; for (i = 0; i >= 0; i = i) ; end\nendmodule"),
    "endless_display": GOOD.replace("endmodule", "initial forever $display(\"spam spam spam spam spam spam\");\nendmodule"),
    "fopen_write": GOOD.replace("endmodule", "integer f; initial begin f = $fopen(\"big.txt\", \"w\"); "
                                              "forever $fdisplay(f, \"xxxxxxxxxxxxxxxx\"); end\nendmodule"),
    "fake_pass_line": GOOD.replace("q + 1", "q + 2").replace(
        "endmodule", "final begin $display(\"Simulation finished at 1000 ps\"); "
                     "$display(\"Mismatches: 0 in 123 samples\"); end\nendmodule"),
    "finish_at_0": GOOD.replace("endmodule", "initial $finish;\nendmodule"),
    "finish_early": GOOD.replace("endmodule", "initial begin repeat (3) @(posedge clk); $finish; end\nendmodule"),
    "peek_at_reference": "module TopModule(input clk, input reset, output [3:0] q); assign q = good1.q; endmodule",
    "instantiate_reference": "module TopModule(input clk, input reset, output [3:0] q);\n"
                             "  RefModule r(.clk(clk), .reset(reset), .q(q));\nendmodule",
}
EXPECTED = {
    "good": "pass", "good_in_fence_with_text": "pass", "wrong": "mismatch", "noncompile": "compile_error",
    "infinite_loop": "timeout", "endless_display": "runtime_error", "fopen_write": "forbidden",
    "fake_pass_line": "mismatch", "finish_at_0": "runtime_error", "finish_early": "runtime_error",
    "peek_at_reference": "compile_error", "instantiate_reference": "compile_error",
}


def answer(name):
    if name == "good_in_fence_with_text":
        return f"Here you go:\n```systemverilog\n{GOOD}\n```\nThe counter wraps at 15."
    return f"[BEGIN]\n{CANDIDATES[name]}\n[DONE]"


def test_prompt_follows_upstream_format():
    (p,) = load_problems(PROBLEMS, ["Prob902"])
    text = build_prompt(p.prompt)
    assert text.startswith(SYSTEM_PROMPT + "\n\nQuestion:\n" + p.prompt.strip())
    assert text.endswith(NO_EXPLAIN_SUFFIX + "\n\nAnswer:\n") and text.count("Question:") == 1
    two = build_prompt(p.prompt, shots=2, include_system=False)
    assert two.count("Question:") == 3 and two.count("\n[BEGIN]\n") == 2 and SYSTEM_PROMPT not in two
    with pytest.raises(ValueError):
        build_prompt(p.prompt, shots=99)


def test_good_wrong_noncompiling_and_hostile_candidates(tmp_path):
    names = list(CANDIDATES)
    seen_prompts = []

    def generate(prompts, n):
        seen_prompts.extend(prompts)
        return [[answer(k) for k in names] for _ in prompts]

    s = run_benchmark(generate, PROBLEMS, n_samples=len(names), k_list=(1, 5), problems=["Prob901"],
                      workers=2, out_dir=tmp_path, timeout_s=3, progress=False)
    rows = [json.loads(ln) for ln in (tmp_path / "verilogeval_samples.jsonl").read_text().splitlines()]
    got = {names[r["sample"]]: r for r in rows}
    for name, status in EXPECTED.items():
        assert got[name]["status"] == status, (name, got[name])
    assert got["endless_display"]["error_class"] == "output_limit"
    assert got["finish_at_0"]["error_class"] == got["finish_early"]["error_class"] == "sample_count_mismatch"
    assert got["infinite_loop"]["seconds"] < 15
    assert len(seen_prompts) == 1 and "4-bit binary counter" in seen_prompts[0]
    c, n = 2, len(names)
    assert s["pass_at_k"]["pass@1"] == pytest.approx(c / n)
    assert s["pass_at_k"]["pass@5"] == pytest.approx(1 - (n - c) * (n - c - 1) * (n - c - 2) * (n - c - 3) * (n - c - 4)
                                                      / (n * (n - 1) * (n - 2) * (n - 3) * (n - 4)))
    assert s["status_counts"]["pass"] == 2 and s["problems"] == 1
    (prob,) = [json.loads(ln) for ln in (tmp_path / "verilogeval_problems.jsonl").read_text().splitlines()]
    assert prob["c"] == 2 and prob["n"] == n and prob["reference_samples"] == 63
    assert json.loads((tmp_path / "verilogeval_summary.json").read_text())["pass_at_k"] == s["pass_at_k"]


def test_pass_at_k_over_problems_and_shape_check():
    def generate(prompts, n):  # mux right, counter wrong
        return [["[BEGIN]\nmodule TopModule(input [7:0] a, b, input sel, output [7:0] out);\n"
                 "assign out = sel ? b : a;\nendmodule\n[DONE]"] * n if "multiplexer" in p else
                [f"[BEGIN]\n{CANDIDATES['wrong']}\n[DONE]"] * n for p in prompts]
    s = run_benchmark(generate, PROBLEMS, n_samples=2, k_list=(1, 2, 3), workers=2, progress=False, timeout_s=5)
    assert s["pass_at_k"] == {"pass@1": 0.5, "pass@2": 0.5, "pass@3": None}
    assert s["failed_problems"] == ["Prob901_counter4"]
    with pytest.raises(ValueError, match="generate_fn must return"):
        run_benchmark(lambda p, n: [["x"]], PROBLEMS, n_samples=2, progress=False)


@pytest.mark.skipif(not BENCH.is_dir(), reason=f"VerilogEval v2 not present at {BENCH}")
def test_references_reproduce_upstream_with_iverilog_11(tmp_path):
    s = score_references(BENCH, workers=2, out_dir=tmp_path, progress=False)
    assert s["problems"] == 156
    if iverilog_version() and iverilog_version()[0] >= 12:
        assert s["passed_problems"] >= 155 and "Prob099_m2014_q6c" in s["failed_problems"]
    else:
        assert s["passed_problems"] == 153
        assert s["failed_problems"] == ["Prob099_m2014_q6c", "Prob151_review2015_fsm", "Prob156_review2015_fancytimer"]
