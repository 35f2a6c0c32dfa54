"""evaluate.py: the standalone command on a predictions file and on answers for VerilogEval."""
import json
from pathlib import Path

from evaluate import main as evaluate_main

F = Path(__file__).parent / "fixtures" / "verilog_eval"


def test_predictions_step_writes_results(tmp_path, capsys):
    ref = (F / "counter_ref.v").read_text()
    rows = [{"id": "a", "input": "counter", "reference": ref, "prediction": f"```\n{ref}```"},
            {"id": "b", "input": "counter", "reference": ref, "prediction": (F / "counter_onebit_bug.v").read_text()},
            {"id": "c", "input": "counter", "reference": ref, "prediction": "no idea"}]
    pred = tmp_path / "predictions.jsonl"
    pred.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    rc = evaluate_main(["predictions", f"predictions.file={pred}", f"out_dir={out}", "workers=2", "predictions.cycles=50"])
    assert rc == 0
    summary = json.loads((out / "verilog_summary.json").read_text())
    assert summary["status_counts"] == {"pass": 1, "mismatch": 1, "extraction_failure": 1}
    assert [json.loads(x)["status"] for x in (out / "verilog_results.jsonl").read_text().splitlines()] == \
        ["pass", "mismatch", "extraction_failure"]
    assert '"functional_pass": 1' in capsys.readouterr().out
    # rows of several models (run_sft.py writes base and finetuned): one folder each, or a filter
    both = [dict(r, model=m) for m in ("base", "finetuned") for r in rows]
    pred.write_text("".join(json.dumps(r) + "\n" for r in both))
    assert evaluate_main(["predictions", f"predictions.file={pred}", f"out_dir={out}", "predictions.cycles=20"]) == 0
    assert json.loads((out / "finetuned" / "verilog_summary.json").read_text())["rows"] == 3
    assert json.loads((out / "base" / "verilog_summary.json").read_text())["rows"] == 3
    assert evaluate_main(["predictions", f"predictions.file={pred}", f"out_dir={tmp_path / 'o2'}",
                          "predictions.model=base"]) == 0
    assert json.loads((tmp_path / "o2" / "verilog_summary.json").read_text())["rows"] == 3


def test_bad_input_names_file_and_line(tmp_path, capfd):
    pred = tmp_path / "p.jsonl"
    pred.write_text('{"id": 1, "reference": "module m; endmodule", "prediction": ""}\n{broken\n')
    assert evaluate_main(["predictions", f"predictions.file={pred}", f"out_dir={tmp_path}"]) == 1
    captured = capfd.readouterr()
    assert f"{pred.name}:2: not valid JSON" in captured.err + captured.out
    assert evaluate_main(["predictions", f"predictions.file={tmp_path / 'missing.jsonl'}"]) == 1
    assert evaluate_main([f"predictions.file={tmp_path / 'missing.jsonl'}"]) == 1  # all = predictions (+ verilogeval)


def test_verilogeval_step_with_answers_file(tmp_path, capsys):
    good = "module TopModule(input [7:0] a, input [7:0] b, input sel, output [7:0] out);\n assign out = sel ? b : a;\nendmodule"
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps(r) + "\n" for r in [
        {"problem": "Prob902_mux2", "answer": f"[BEGIN]\n{good}\n[DONE]"},
        {"problem": "Prob902_mux2", "answer": "[BEGIN]\nmodule TopModule(); endmodule\n[DONE]"},
        {"problem": "Prob901_counter4", "answer": "nothing"},
        {"problem": "Prob901_counter4", "answer": "nothing either"}]))
    rc = evaluate_main(["verilogeval", f"verilogeval.problems_dir={F / 'problems'}", f"verilogeval.answers={answers}",
                        "verilogeval.n_samples=2", "verilogeval.k_list=[1,2]", f"out_dir={tmp_path / 'o'}"])
    assert rc == 0
    s = json.loads((tmp_path / "o" / "verilogeval_summary.json").read_text())
    assert s["pass_at_k"] == {"pass@1": 0.25, "pass@2": 0.5}
    assert evaluate_main(["prompts", f"verilogeval.problems_dir={F / 'problems'}", f"out_dir={tmp_path / 'o'}",
                          "verilogeval.shots=1"]) == 0
    prompts = [json.loads(x) for x in (tmp_path / "o" / "verilogeval_prompts.jsonl").read_text().splitlines()]
    assert [p["problem"] for p in prompts] == ["Prob901_counter4", "Prob902_mux2"]
    assert prompts[0]["prompt"].count("Question:") == 2
