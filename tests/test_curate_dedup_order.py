"""Every dropped duplicate names a row that is WRITTEN: the dedups run after every other stage that
drops rows (decontaminate, both_views), so the row a duplicate was kept for is never dropped later
(pipeline.build_stages). Own benchmark folder and MG-Verilog-shaped rows; runs through curate()."""
from __future__ import annotations

import json

import pytest

from sft_playbook.config import load_config
from sft_playbook.curate.pipeline import build_stages, curate
from sft_playbook.io import read_jsonl
from sft_playbook.paths import REPO_ROOT

PROMPT = ("I would like you to implement a module named TopModule with the following interface. "
          "The module should implement a gray code up counter that advances on every rising edge of clk, "
          "holds its value while hold is high, wraps from the largest code back to zero and clears "
          "synchronously whenever the active high reset input is asserted by the testbench driver.")
REF = ("module TopModule (input clk, input reset, input hold, output reg [3:0] q);\n  reg [3:0] b;\n"
       "  always @(posedge clk) if (reset) b <= 0; else if (!hold) b <= b + 1;\n"
       "  always @* q = b ^ (b >> 1);\nendmodule\n")

GRAY = " \n reg [3:0] b; \n always @(posedge clk) \n if (rst) b <= 4'd0; \n else if (!hold) b <= b + 4'd1; \n assign q = b ^ (b >> 1); \n endmodule"
GRAY_NEAR = GRAY.replace("4'd0", "4'd1")       # another reset value: token 5-gram Jaccard 0.8x
MUX = " \n reg [7:0] r; \n always @* \n case (s) \n 2'd0: r = a; \n 2'd1: r = b; \n 2'd2: r = c; \n default: r = d; \n endcase \n assign y = r; \n endmodule"
MUX_NEAR = MUX.replace("assign y = r;", "assign y = r; \n assign z = ~r;")


def _mg(rid, header, body, summary):
    text = f"<s>[INST] <<SYS>>\n You only complete chats. <</SYS>>\n\n{summary}\n\n Module header:\n\n{header}\n [/INST]\n"
    return {"id": rid, "code": body, "description": {"high_level_global_summary": text}}


GRAY_H = "module gray4 (input clk, input rst, input hold, output [3:0] q);"
GRAY_HN = "module gray4d (input clk, input rst, input hold, output [3:0] q);"
MUX_H = "module mux4 (input [1:0] s, input [7:0] a, input [7:0] b, input [7:0] c, input [7:0] d, output [7:0] y);"
MUX_HN = ("module mux4z (input [1:0] s, input [7:0] a, input [7:0] b, input [7:0] c, input [7:0] d, "
          "output [7:0] y, output [7:0] z);")


@pytest.mark.parametrize("rows,written", [
    # the first of two identical designs is benchmark material: the second is not its duplicate any more
    ([_mg("a", GRAY_H, GRAY, "Lab text follows. " + PROMPT), _mg("b", GRAY_H, GRAY, "A four bit gray counter with hold and reset.")],
     {"b"}),
    # the same with a near duplicate (fuzzy)
    ([_mg("a", GRAY_H, GRAY, "Lab text follows. " + PROMPT), _mg("b", GRAY_HN, GRAY_NEAR, "A gray counter with hold that resets to one.")],
     {"b"}),
    # the benchmark row comes second: the first stays, the second goes (for either reason)
    ([_mg("b", GRAY_H, GRAY, "A four bit gray counter with hold and reset."), _mg("a", GRAY_H, GRAY, "Lab text follows. " + PROMPT)],
     {"b"}),
    # control: no later drop, an exact and a near copy of the first row go
    ([_mg("m0", MUX_H, MUX, "A four to one byte multiplexer with a case statement."),
      _mg("m1", MUX_H, MUX, "A byte wide four way multiplexer selected by s."),
      _mg("m2", MUX_HN, MUX_NEAR, "A four way byte multiplexer with an inverted copy of the output.")],
     {"m0"}),
])
def test_dropped_duplicates_name_a_written_row(tmp_path, rows, written):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "Prob900_gray_prompt.txt").write_text(PROMPT)
    (bench / "Prob900_gray_ref.sv").write_text(REF)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "sources.jsonl").write_text(json.dumps({"name": "t", "path": str(tmp_path / "src"), "format": "mg-verilog",
                                                        "levels": {"high_level": "high_level_global_summary"}}) + "\n")
    cfg = load_config(REPO_ROOT / "configs/curate.yaml", [
        f"sources={tmp_path / 'sources.jsonl'}", f"output_dir={tmp_path / 'out'}", f"dropped_dir={tmp_path / 'dropped'}",
        "levels=[high_level]", "engine.engine=local", f"decontaminate.benchmark_dir={bench}", "pii.backend=regex",
        "split.train=1.0", "split.validation=0.0", "split.test=0.0", "decontaminate.min_ngrams=4",
        "decontaminate.template_share=1.0"])
    curate(cfg)
    out = {r["id"] for r in read_jsonl(tmp_path / "out" / "high_level" / "train.jsonl")}
    assert out == written
    cited = 0
    for f in sorted((tmp_path / "dropped").glob("*_dedup.jsonl")):
        for r in read_jsonl(f):
            target = r["detail"].split()[3] if r["reason"] == "exact_duplicate" else r["detail"].split()[1]
            assert target in out, (r, out)
            cited += 1
    assert cited == len(rows) - len(written) - sum(
        1 for f in (tmp_path / "dropped").glob("*.jsonl") if "dedup" not in f.name for _ in read_jsonl(f))


def test_the_dedups_are_the_last_stages_that_drop_rows():
    names = [s.name for s in build_stages(load_config(REPO_ROOT / "configs/curate.yaml", []))]
    assert names[-2:] == ["exact_dedup", "fuzzy_dedup"]
    assert names.index("decontaminate") < names.index("exact_dedup") and names.index("both_views") < names.index("exact_dedup")
