"""Decontamination precision and recall: short generic modules and long designs with a one-line
benchmark statement stay; a benchmark prompt or reference copied or embedded in longer text goes."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from sft_playbook.curate.base import DETAIL, REASON
from sft_playbook.curate.decontam import Decontaminate
from sft_playbook.curate.engine import Engine

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SFT_SHARED_DIR", REPO / ".." / "shared")).resolve()
BENCH = SHARED / "benchmarks" / "verilog-eval-v2" / "spec-to-rtl"
real_bench = pytest.mark.skipif(not BENCH.is_dir(), reason=f"VerilogEval v2 folder {BENCH} not present "
                                                           "(../shared beside the clone, or SFT_SHARED_DIR)")

TEMPLATE = ("I would like you to implement a module named TopModule with the following interface. All input and "
            "output ports are one bit unless otherwise specified.\n\n")
LONG_DESIGN = """module uart_tx #(parameter CLKS_PER_BIT = 87) (input clk, input rst_n, input tx_start,
  input [7:0] tx_data, output reg tx_serial, output reg tx_busy);
  localparam IDLE = 3'd0, START = 3'd1, DATA = 3'd2, STOP = 3'd3;
  reg [2:0] state; reg [7:0] clk_count; reg [2:0] bit_index; reg [7:0] shreg;
  always @(posedge clk or negedge rst_n) begin
    if (!rst_n) begin state <= IDLE; tx_serial <= 1'b1; tx_busy <= 1'b0; clk_count <= 0; bit_index <= 0; end
    else begin
      case (state)
        IDLE: begin tx_serial <= 1'b1; if (tx_start) begin shreg <= tx_data; tx_busy <= 1'b1; state <= START; end end
        START: begin tx_serial <= 1'b0; if (clk_count < CLKS_PER_BIT - 1) clk_count <= clk_count + 1;
                     else begin clk_count <= 0; state <= DATA; end end
        DATA: begin tx_serial <= shreg[bit_index]; if (clk_count < CLKS_PER_BIT - 1) clk_count <= clk_count + 1;
                    else begin clk_count <= 0; if (bit_index < 7) bit_index <= bit_index + 1;
                               else begin bit_index <= 0; state <= STOP; end end end
        STOP: begin tx_serial <= 1'b1; if (clk_count < CLKS_PER_BIT - 1) clk_count <= clk_count + 1;
                    else begin clk_count <= 0; tx_busy <= 1'b0; state <= IDLE; end end
        default: state <= IDLE;
      endcase
    end
  end
endmodule"""
LONG_TEXT = ("The transmitter serialises one byte per request, least significant bit first, framed by one start "
             "bit and one stop bit. A busy flag stays high from the start request until the stop bit has been "
             "sent so that a host can wait before loading the next byte. The baud rate is set by a parameter "
             "counting clock cycles per bit, and an active low asynchronous reset returns it to the idle line level.")
GENERIC = [
    "module and4(input [3:0] a, input [3:0] b, output [3:0] y);\n  assign y = a & b;\nendmodule",
    "module or8(input [7:0] a, input [7:0] b, output [7:0] y); assign y = a | b; endmodule",
    "module inv(input in, output out); assign out = ~in; endmodule",
    # (with VerilogEval's own port names, `assign out = sel ? b : a;` IS Prob022's answer, token for
    # token, and is dropped: contamination is about the text the model sees, however generic)
    "module mux2(input d0, input d1, input s, output y); assign y = s ? d1 : d0; endmodule",
    "module dff(input clk, input d, output reg q); always @(posedge clk) q <= d; endmodule",
    "module ha(input a, input b, output sum, output cout); assign sum = a ^ b; assign cout = a & b; endmodule",
    "module cnt4(input clk, input reset, output reg [3:0] q);\n  always @(posedge clk)\n    if (reset) q <= 0;\n"
    "    else q <= q + 1;\nendmodule",
]


def frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df.insert(1, "_order", range(len(df)))
    return df


def run(stage, df):
    with Engine(engine="local", partition_rows=4) as eng:
        parts = eng.partitions(df)
        stage.fit(parts, eng)
        return pd.concat(eng.gather(eng.map(stage, parts))).sort_values("_order").set_index("id")


def stage(bench, **kw) -> Decontaminate:
    return Decontaminate(str(bench), ["code"], ["desc"], **kw)


# -- on a synthetic benchmark (always runs) ----------------------------------------------------------
@pytest.fixture()
def synthetic(tmp_path):
    """30 problems with a shared template prompt and header: two real-sized ones, the rest tiny."""
    d = tmp_path / "bench"
    d.mkdir()
    big = {
        "Prob001_uart": (LONG_TEXT, LONG_DESIGN.replace("uart_tx", "RefModule")),
        "Prob002_story": ("The module counts rising edges of the strobe input while the enable is high, saturates at "
                          "the maximum count instead of wrapping around, and raises the full flag in the same cycle "
                          "in which the last edge is counted so that downstream logic can stop the producer early.",
                          "module RefModule(input clk, input strobe, input en, output reg [3:0] cnt, output full);\n"
                          "  reg prev;\n  always @(posedge clk) begin prev <= strobe;\n"
                          "    if (en && strobe && !prev && cnt != 4'hf) cnt <= cnt + 4'd1; end\n"
                          "  assign full = (cnt == 4'hf);\nendmodule"),
    }
    for i in range(3, 31):
        big[f"Prob{i:03d}_tiny"] = (f"The module should output the AND of the inputs, variant {i}.",
                                    "module RefModule(input a, input b, output out);\n  assign out = a & b;\nendmodule")
    for name, (prompt, ref) in big.items():
        (d / f"{name}_prompt.txt").write_text(TEMPLATE + " - input a\n - output out\n\n" + prompt + "\n")
        (d / f"{name}_ref.sv").write_text("\n" + ref + "\n")
    return d


def test_copies_and_embeddings_are_dropped_generic_rows_stay(synthetic):
    own = "A parity generator that XORs all bits of the input word into one output bit."
    rows = [
        {"id": "copy_ref", "code": LONG_DESIGN, "desc": own},                                   # renamed module
        {"id": "ref_inside", "code": GENERIC[4] + "\n" + LONG_DESIGN + "\n" + GENERIC[1], "desc": own},
        {"id": "prompt_inside", "code": GENERIC[0], "desc": "Intro text about a board. " + TEMPLATE + LONG_TEXT +
         " After that, the designer adds a second paragraph of unrelated notes about pin assignments."},
        {"id": "prompt_piece", "code": GENERIC[0], "desc": LONG_TEXT.split(". ")[0] + ". " + LONG_TEXT.split(". ")[1]},
    ] + [{"id": f"generic{k}", "code": c, "desc": "Implement a module named TopModule with the following interface. "
          "The module should output the AND of the inputs."} for k, c in enumerate(GENERIC)]
    st = stage(synthetic)
    out = run(st, frame(rows))
    assert out.loc["copy_ref", REASON] == "benchmark_code" and "Prob001_uart_ref.sv" in out.loc["copy_ref", DETAIL]
    assert out.loc["ref_inside", REASON] == "benchmark_code"
    assert out.loc["prompt_inside", REASON] == "benchmark_description"
    assert "Prob001_uart_prompt.txt (benchmark in row 0.9" in out.loc["prompt_inside", DETAIL]
    assert out.loc["prompt_piece", REASON] == "benchmark_description"          # a piece of a prompt: row in benchmark
    assert (out.loc[[f"generic{k}" for k in range(len(GENERIC))], REASON] == "").all()
    s = st.summary()
    assert s["problems_checked"] == 30 and s["problems_below_floor"] == 28


def test_floors_are_config(synthetic):
    rows = [{"id": "and", "code": "module x(input a, input b, output out);\n  assign out = a & b;\nendmodule",
             "desc": "The module should output the AND of the inputs, variant 7."}]
    assert run(stage(synthetic), frame(rows)).loc["and", REASON] == ""
    # without the size floor and the template removal, boilerplate overlap counts (the old behaviour)
    assert run(stage(synthetic, min_ngrams=0, template_share=1.0), frame(rows)).loc["and", REASON] != ""


def test_benchmark_file_with_bad_bytes_is_one_clear_error(synthetic):
    from sft_playbook.config import ConfigError

    (synthetic / "Prob031_bad_prompt.txt").write_bytes(b"\xef\xbb\xbfok\n\xff\n")
    with pytest.raises(ConfigError, match=r"Prob031_bad_prompt.txt:2: not valid UTF-8"):
        stage(synthetic).fit([], None)


def test_bom_in_benchmark_files_is_accepted(synthetic):
    p = synthetic / "Prob001_uart_prompt.txt"
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
    out = run(stage(synthetic), frame([{"id": "x", "code": GENERIC[0], "desc": TEMPLATE + LONG_TEXT}]))
    assert out.loc["x", REASON] == "benchmark_description"


# -- on VerilogEval v2 itself ------------------------------------------------------------------------
def _problems(n: int = 12):
    names = sorted(p.name[:-len("_ref.sv")] for p in BENCH.glob("*_ref.sv"))
    step = max(1, len(names) // n)
    return names[::step][:n]


@real_bench
def test_real_benchmark_precision_generic_and_one_line_statements_stay():
    st = stage(BENCH)
    rows = [{"id": f"generic{k}", "code": c, "desc": "A small combinational helper block."} for k, c in enumerate(GENERIC)]
    # a long design with one benchmark line pasted in; a long description with one short benchmark sentence
    rows += [{"id": "design_line", "code": LONG_DESIGN.replace("endmodule", "  assign out = in;\nendmodule"),
              "desc": LONG_TEXT},
             {"id": "text_sentence", "code": GENERIC[0],
              "desc": LONG_TEXT + " All DFFs should be triggered by the positive edge of clk."}]
    out = run(st, frame(rows))
    assert (out[REASON] == "").all(), out[out[REASON] != ""][DETAIL].to_dict()


@real_bench
def test_real_benchmark_recall_copies_and_embeddings_are_dropped():
    st = stage(BENCH)
    st.fit([], None)
    rows = []
    for name in _problems():
        if st.refs.sizes[name] < st.config["min_ngrams"] or st.prompts.sizes[name] < st.config["min_ngrams"]:
            continue                                      # below the floor: not recognisable (counted in the report)
        ref = (BENCH / f"{name}_ref.sv").read_text().replace("RefModule", "TopModule")
        prompt = (BENCH / f"{name}_prompt.txt").read_text()
        rows += [{"id": f"{name}/ref", "code": ref, "desc": LONG_TEXT},
                 {"id": f"{name}/ref_inside", "code": LONG_DESIGN + "\n\n" + ref, "desc": LONG_TEXT},
                 {"id": f"{name}/prompt_inside", "code": LONG_DESIGN,
                  "desc": "Some context first. " + " ".join(prompt.split()) + " " + LONG_TEXT}]
    assert len(rows) >= 18
    out = run(st, frame(rows))
    for rid, r in out.iterrows():
        want = "benchmark_description" if rid.endswith("prompt_inside") else "benchmark_code"
        assert r[REASON] == want, (rid, r[DETAIL])
        assert rid.split("/")[0] in r[DETAIL]


def test_benchmark_is_also_found_in_the_download_cache(synthetic, tmp_path, caplog):
    """benchmark_dir missing: the evaluation's download cache (also_look_in) is used; neither: one
    warning that says how to get the problems, and nothing is checked."""
    rows = [{"id": "copy_ref", "code": LONG_DESIGN, "desc": "A parity generator."}]
    st = stage(tmp_path / "missing", also_look_in=[str(synthetic)])
    assert run(st, frame(rows)).loc["copy_ref", REASON] == "benchmark_code"
    assert st.summary()["problems_checked"] == 30 and st.summary()["benchmark_dir"] == str(synthetic)
    none = stage(tmp_path / "missing", also_look_in=[str(tmp_path / "also-missing")])
    assert run(none, frame(rows)).loc["copy_ref", REASON] == ""
    assert any("NOTHING IS CHECKED" in r.getMessage() and "evaluate.sh download" in r.getMessage()
               for r in caplog.records)
