"""Every product reader of jsonl/json input accepts a UTF-8 byte-order mark (files saved by common
editors and tools start with one) and reads the first record like any other."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sft_playbook.io import BOM

DESC = {"high_level_global_summary": "A two input AND gate with one output.",
        "detailed_global_summary": "The module computes y as the AND of a and b.",
        "block_summary": "block_0: This code assigns a & b to y."}
LEVELS = {"high_level": "high_level_global_summary", "detailed": "detailed_global_summary", "block": "block_summary"}


def bom_jsonl(path: Path, rows: list[dict], ascii_only: bool = False) -> Path:
    path.write_bytes(BOM + "".join(json.dumps(r, ensure_ascii=ascii_only) + "\n" for r in rows).encode("utf-8"))
    return path


def test_curation_source_spec_and_records_with_bom(tmp_path):
    from sft_playbook.io import BadLines
    from sft_playbook.curate.sources import data_files, load_records, read_source_specs

    rows = [{"id": "bom-0", "code": "assign y = a & b;\nendmodule", "description": DESC},
            {"id": "bom-1", "code": "assign y = a | b;\nendmodule", "description": json.dumps(DESC)}]
    data = bom_jsonl(tmp_path / "src.jsonl", rows)
    (tmp_path / "arr.json").write_bytes(BOM + json.dumps(rows).encode())       # a JSON array file
    spec_file = tmp_path / "sources.jsonl"
    spec_file.write_bytes(BOM + json.dumps({"name": "x", "path": str(data), "levels": LEVELS,
                                            "license": "MIT"}).encode() + b"\n")
    (spec,) = read_source_specs(spec_file)
    assert spec["name"] == "x"
    recs = load_records(spec, data_files(data, None), "error", BadLines())
    assert [r["id"] for r in recs] == ["bom-0", "bom-1"]
    recs = load_records(spec, [tmp_path / "arr.json"], "error", BadLines())
    assert [r["id"] for r in recs] == ["bom-0", "bom-1"]


@pytest.mark.parametrize("arrow", [True, False])
def test_worker_frame_reader_with_bom(tmp_path, arrow):
    from sft_playbook.curate.io import read_jsonl_frame

    rows = [{"id": "a", "text": "é"}, {"id": "b", "text": "x"}]
    if not arrow:                                   # an escaped surrogate sends it to the json.loads path
        rows.append({"id": "c", "text": "\ud800"})
    p = bom_jsonl(tmp_path / "x.jsonl", rows, ascii_only=not arrow)
    df = read_jsonl_frame(p, {"id": "str", "text": "str"})
    assert df["id"].tolist() == [r["id"] for r in rows]


def test_sft_split_with_bom(tmp_path):
    from sft_playbook.sft.data import read_split

    (tmp_path / "high_level").mkdir()
    bom_jsonl(tmp_path / "high_level" / "train.jsonl",
              [{"id": "r0", "input": "Implement an AND gate.", "output": "module m; endmodule"}])
    assert read_split(tmp_path, "high_level", "train") == [
        {"id": "r0", "input": "Implement an AND gate.", "output": "module m; endmodule"}]


def test_predictions_and_metrics_with_bom(tmp_path):
    from sft_playbook.sft.report import read_predictions
    from sft_playbook.sft.tracking import read_metrics

    row = {"id": "r0", "reference": "module m; endmodule", "prediction": "module m; endmodule", "model": "base"}
    assert read_predictions(bom_jsonl(tmp_path / "predictions.jsonl", [row])) == [row]
    assert read_metrics(bom_jsonl(tmp_path / "metrics.jsonl", [{"step": 1, "loss": 2.0}])) == [{"step": 1, "loss": 2.0}]


def test_verilogeval_answers_and_problem_files_with_bom(tmp_path):
    from sft_playbook.evaluate.cli import answers_generate_fn
    from sft_playbook.evaluate.verilogeval import load_problems

    d = tmp_path / "problems"
    d.mkdir()
    (d / "Prob001_zero_prompt.txt").write_bytes(BOM + b"Implement a module that outputs zero.\n")
    (d / "Prob001_zero_ref.sv").write_bytes(BOM + b"module RefModule(output zero);\n  assign zero = 1'b0;\nendmodule\n")
    (d / "Prob001_zero_test.sv").write_bytes(BOM + b"module tb; endmodule\n")
    (probs,) = load_problems(d)
    assert probs.prompt.startswith("Implement") and probs.ref.startswith("module RefModule")
    answers = bom_jsonl(tmp_path / "answers.jsonl", [{"problem": "Prob001_zero", "answer": "assign zero = 0;"}])
    gen = answers_generate_fn(answers, d)
    assert gen(["prompt"], 1) == [["assign zero = 0;"]]
