"""Clean and code rules on the shapes real MG-Verilog rows have: wrapper variants, escaped module
names, comments that say "module", prose before "Module header:", long one-line headers, case
tables full of digits. Inputs written for these tests, shaped after real rows."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from sft_playbook.config import load_config
from sft_playbook.curate.base import REASON
from sft_playbook.curate.clean import CleanAndUnify, find_header, layout_header, rebuild_module, strip_wrapper
from sft_playbook.curate.filters import AlphaShare, HasModule, LongestLine
from sft_playbook.paths import REPO_ROOT
from sft_playbook.verilog.sandbox import compile_check, iverilog_available

import curate_fixtures as fx

needs_iverilog = pytest.mark.skipif(not iverilog_available(), reason="iverilog not installed")
TOKENS = ("<<SYS>>", "<</SYS>>", "[INST]", "[/INST]", "<s>", "</s>")
SUMMARY = "This module computes the majority of its three inputs and drives the result on y."
HEADER = "module maj3(input a, input b, input c, output y);"


def cfg():
    return load_config(REPO_ROOT / "configs/curate.yaml", [])


# -- wrappers --------------------------------------------------------------------------------------
WRAPPERS = [
    # empty system text, no <</SYS>> (the shape of every row of the real slice)
    f"\n    <s>[INST] <<SYS>>\n    \n\n{SUMMARY}\n\n Module header:\n\n{HEADER}\n [/INST]\n",
    # system text but its closing tag lost
    f"<s>[INST] <<SYS>>\n {fx.SYS}\n\n {fx.Q}\n\n{SUMMARY}\n\n Module header:\n\n{HEADER}\n [/INST]\n",
    # a stray closing tag only, and an end-of-sequence token
    f"<s> [INST] <</SYS>>\n{SUMMARY}\nModule header:\n{HEADER}\n[/INST]</s>",
    # spaced-out tokens
    f"< s >[ INST ]<< SYS >> << /SYS >>{SUMMARY} Module header: {HEADER} [ /INST ]",
    # the usual full wrapper
    fx.wrap(SUMMARY, HEADER),
]


@pytest.mark.parametrize("text", WRAPPERS)
def test_no_wrapper_token_survives(text):
    summary, header = strip_wrapper(text)
    assert summary == SUMMARY or summary.endswith(SUMMARY)
    for tok in TOKENS:
        assert tok not in summary
    assert not re.search(r"<\s*/?\s*s\s*>|\[\s*/?\s*INST|SYS\s*>>", summary)
    assert "You only complete chats" not in summary and "Implement the Verilog module" not in summary
    assert header == HEADER


def test_prose_before_the_header_marker_and_a_commented_decoy():
    text = ("<s>[INST] <<SYS>>\n\nThe module header: as listed below, the module takes a and b; module ports are few.\n\n"
            " Module header:\n\n// module decoy(input z);\nmodule and2 (input a, input b, output y);\n [/INST]\n")
    summary, header = strip_wrapper(text)
    assert header == "module and2 (input a, input b, output y);"
    assert summary.startswith("The module header: as listed below") and "and2 (" not in summary
    # no marker at all: a header on a line of its own still counts, prose mentioning module does not
    s2, h2 = strip_wrapper("<s>[INST] <<SYS>>\nThe module x; counts.\nmodule cnt (input clk, output [3:0] q);\n[/INST]")
    assert h2 == "module cnt (input clk, output [3:0] q);" and s2 == "The module x; counts."


@pytest.mark.parametrize("header,name", [
    ("module \\$not (A, Y);", "\\$not"),
    ("module \\$_SR_PP_ (S, R, Q);", "\\$_SR_PP_"),
    ("module \\$__QLF_RAM16K_M0 (CLK1, A1ADDR, A1DATA);", "\\$__QLF_RAM16K_M0"),
    ("module \\bus[3].cell (input a, output y);", "\\bus[3].cell"),
])
def test_escaped_module_names_are_headers(header, name):
    summary, got = strip_wrapper(f"<s>[INST] <<SYS>>\n\nAn inverter.\n\n Module header:\n\n{header}\n [/INST]\n")
    assert got == header and summary == "An inverter."
    code = rebuild_module(got, " \n input A; \n output Y; \n assign Y = ~A; \n endmodule")
    assert code.startswith(header)
    df = pd.DataFrame({"id": ["e"], "code": [code], "_order": [0]})
    assert HasModule()(df)[REASON].iloc[0] == ""


def test_find_header_skips_comments_and_strings():
    text = '/* module old (a); */ // module older;\n$display("module s;");\nmodule real_one (input a);'
    assert find_header(text).group(0) == "module real_one (input a);"


@pytest.mark.parametrize("body", [
    "// This module adds two numbers; it is simple\n assign s = a + b;\n endmodule",
    "/* module: adder; the module below */\n assign s = a + b;\n endmodule",
    "// module\n// another module line;\n assign s = a + b; \n endmodule",
])
def test_body_starting_with_a_comment_that_says_module_gets_the_header(body):
    header = "module add (input [3:0] a, input [3:0] b, output [4:0] s);"
    code = rebuild_module(header, body)
    assert code.startswith(header + "\n")
    rec = {"id": "c", "code": body, "description": {lvl: fx.wrap("Adds a and b into s with a carry.", header)
                                                     for lvl in ("high_level_global_summary", "detailed_global_summary",
                                                                 "block_summary")}}
    out = CleanAndUnify(["high_level"], header_max_chars=100)(pd.DataFrame(
        {"id": ["c"], "code": [body], "desc_high_level": [rec["description"]["high_level_global_summary"]], "_order": [0]}))
    assert out[REASON].iloc[0] == "" and out["header"].iloc[0] == header and out["code"].iloc[0].startswith(header)
    if iverilog_available():
        assert compile_check(out["code"].iloc[0]).ok


def test_body_with_its_own_header_after_a_comment_keeps_that_header():
    body = "// module wrong_name (x); is what the old file said\nmodule right (input a, output y);\n  assign y = a;\nendmodule"
    out = CleanAndUnify(["high_level"], header_max_chars=100)(pd.DataFrame(
        {"id": ["c"], "code": [body], "desc_high_level": [fx.wrap("Passes a to y unchanged always.", "module right (input a, output y);")],
         "_order": [0]}))
    assert out["header"].iloc[0] == "module right (input a, output y);" and out["code"].iloc[0] == body


# -- long headers ----------------------------------------------------------------------------------
LONG_HEADERS = [
    "module xor12 (" + ",".join(f"input wire [31:0] data_in_channel_{i:02d}" for i in range(12))
    + ",output wire [31:0] data_out_xor_all);",
    "module MULTIPLEXER_4_TO_1 #(parameter BUS_WIDTH = 32, parameter [3:0] MODE = 4'b1010) ("
    + " ,".join(f"input [BUS_WIDTH - 1 : 0] IN{i}" for i in range(1, 17)) + " ,input [3 : 0] SELECT ,output [BUS_WIDTH - 1 : 0] OUT);",
    "module cf_fir_24_16_16_22 (clock_c, " + ", ".join(f"i{i}" for i in range(1, 60)) + ", o1, o2);",
    "module fifo_flags (out,full,almost_full,E,ram_full_comb,clk,\\grstd1.grst_full.grst_f.rst_d2_reg ,p_2_out,"
    + ",".join(f"wr_en_{i}" for i in range(30)) + ",\\gc0.count_d1_reg[2] );",
    "module mbus_iso (input MBC_ISOLATE," + ",".join(f"input [`MBUSTB_ADDR_WIDTH-1:0] TX_ADDR_{i}" for i in range(12))
    + ",output reg [`MBUSTB_DATA_WIDTH-1:0] TX_DATA);",
    "module only_params #(parameter A = 1, parameter B = {4{1'b1}}, parameter C = f(1, 2), "
    + ", ".join(f"parameter P{i} = {i}" for i in range(30)) + ");",
]


@pytest.mark.parametrize("header", LONG_HEADERS)
def test_long_header_is_laid_out_one_port_per_line_without_changing_tokens(header):
    laid = layout_header(header, 100)
    assert "\n" in laid and max(len(l) for l in laid.split("\n")) <= 100
    assert "".join(laid.split()) == "".join(header.split())      # only white space changed
    # an escaped identifier still ends at white space
    for m in re.finditer(r"\\\S+", header):
        assert m.group(0) in re.findall(r"\\\S+", laid)


def test_short_or_commented_headers_stay_as_written():
    assert layout_header("module m (input a, output y);", 100) == "module m (input a, output y);"
    h = "module m (input a, // the input\n output y);"
    assert layout_header(h, 10) == h
    h = "module m (`ifdef DEBUG output reg [2:0] cnt, `endif input a, " + "input b, " * 20 + "output y);"
    assert layout_header(h, 10) == h


@needs_iverilog
@pytest.mark.parametrize("header", LONG_HEADERS[:4])
def test_laid_out_header_still_compiles(header):
    ports = re.findall(r"(?:^|,)\s*(?:input|output)?\s*(?:wire\s*)?(?:\[[^\]]*\]\s*)?(\\\S+|\w+)\s*(?=,|\))",
                       header[header.index("(", header.index(")") if "#(" in header else 0) + 1:])
    body = "\n".join([] if "input" in header else [f"  input {p} ;" for p in ports]) + "\nendmodule"
    plain, laid = header + "\n" + body, layout_header(header, 100) + "\n" + body
    assert compile_check(plain).ok == compile_check(laid).ok


def test_pipeline_judges_the_body_as_written_not_the_header_it_assembled():
    long_hdr = LONG_HEADERS[0]
    body_ok = " \n assign data_out_xor_all = data_in_channel_00 ^ data_in_channel_01; \n endmodule"
    body_long = " \n assign data_out_xor_all = " + " ^ ".join(f"data_in_channel_{i % 12:02d}" for i in range(40)) + "; \n endmodule"
    df = pd.DataFrame({"id": ["ok", "long"], "code": [body_ok, body_long],
                       "desc_high_level": [fx.wrap("Twelve channels are combined by xor.", long_hdr)] * 2, "_order": [0, 1]})
    c = cfg()
    out = CleanAndUnify(["high_level"], **c["clean"])(df)
    out = out[out[REASON] == ""].drop(columns=[REASON, "_drop_detail"])
    for code, header in zip(out["code"], out["header"]):
        assert code.startswith(header) and "\n" in header
    judged = LongestLine(**c["rules"]["longest_line"])(out)
    assert dict(zip(judged["id"], judged[REASON])) == {"ok": "", "long": "line_too_long"}


# -- alpha share -----------------------------------------------------------------------------------
SEVEN_SEG = ("module hex_ssd (BIN, SSD);\ninput [3:0] BIN;\noutput reg [0:6] SSD;\nalways @* begin\ncase(BIN)\n"
             + "".join(f"{i}:SSD=7'b{(i * 37) % 128:07b};\n" for i in range(16)) + "endcase\nend\nendmodule")
PRIORITY = ("module prio (input wire [31:0] d_in, output wire [7:0] d_out);\nassign d_out =\n"
            + "".join(f"(d_in[{31 - i}]==1'b1) ? 8'b{31 - i:08b}:\n" for i in range(32)) + "8'b0;\nendmodule")
ROM = ("module rom (input clk, input [4:0] a, output reg [31:0] q);\nalways @(posedge clk)\ncase (a)\n"
       + "".join(f"5'd{i}: q <= 32'h{(i * 2654435761) % 2**32:08x};\n" for i in range(32)) + "endcase\nendmodule")
XOR_TREE = ("module ham (input [10:0] d, output [3:0] p);\n"
            + "".join(f"assign p[{k}] = d[{k}]^d[{k + 1}]^d[{k + 3}]^d[{k + 4}]^d[{k + 6}];\n" for k in range(4)) + "endmodule")
DECIMAL_DUMP = "module m;\n" + "".join(" ".join(str((i * 7919 + j) % 1000) for j in range(16)) + "\n" for i in range(40)) + "endmodule"
BINARY_DUMP = "module m;\n" + "".join(f"{(i * 2654435761) % 2**32:032b}\n" for i in range(40)) + "endmodule"


def test_alpha_share_keeps_case_tables_and_drops_number_dumps():
    df = pd.DataFrame({"id": ["seg", "prio", "rom", "xor", "dec", "bin"],
                       "code": [SEVEN_SEG, PRIORITY, ROM, XOR_TREE, DECIMAL_DUMP, BINARY_DUMP], "_order": range(6)})
    out = AlphaShare(**cfg()["rules"]["alpha_share"])(df)
    assert dict(zip(out["id"], out[REASON])) == {"seg": "", "prio": "", "rom": "", "xor": "",
                                                 "dec": "low_alpha_share", "bin": "low_alpha_share"}


# -- on the real slice (CC-BY-NC-SA-4.0, read from ../shared, never copied here) ----------------------
REAL = REPO_ROOT.parent / "shared" / "realdata" / "mg-verilog-course-slice" / "mg_verilog_high_level.jsonl"
REAL = REAL if REAL.is_file() else REPO_ROOT.parent.parent / "shared" / "realdata" / "mg-verilog-course-slice" / "mg_verilog_high_level.jsonl"


@pytest.mark.skipif(not REAL.is_file(), reason="the real MG-Verilog slice (../shared/realdata) is not next to this checkout")
def test_real_rows_clean_to_headers_without_wrapper_tokens_or_assembled_long_lines():
    from sft_playbook.io import read_jsonl
    rows = list(read_jsonl(REAL))
    df = pd.DataFrame({"id": [r["id"] for r in rows], "code": [r["code"] for r in rows],
                       "desc_high_level": [r["description"]["high_level_global_summary"] for r in rows],
                       "_order": range(len(rows))})
    c = cfg()
    out = CleanAndUnify(["high_level"], **c["clean"])(df)
    assert (out[REASON] == "").all()                                # every real row has a header
    limit = c["clean"]["header_max_chars"]
    for summary, header, code in zip(out["desc_high_level"], out["header"], out["code"]):
        assert not re.search(r"<<\s*/?\s*SYS|\[\s*/?\s*INST|<\s*/?\s*s\s*>", summary + header + code)
        assert summary and code.startswith(header)
        if not re.search(r"`(?:ifdef|ifndef|endif|else)|//|/\*", header):
            assert max(len(line) for line in header.split("\n")) <= max(limit, 200)
