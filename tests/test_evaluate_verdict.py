"""A wrong design must never forge the verdict (both runners): the nonce that marks the verdict
line lives only in the testbench's format strings (not in names a design reads with %m), the
compiled image (which holds it) cannot be read back by the running design, and only ONE verdict
line on stdout counts (a second one, or the nonce on stderr, is tampering).

The image-reading attacks use $fopen, which the word list refuses: these tests switch the word
list off (as a macro trick that slips past it would), so what is tested is the isolation itself."""
import re
from pathlib import Path

import pytest

from sft_playbook.evaluate import difftb, verilog_metrics, verilogeval
from sft_playbook.evaluate.simulate import TAMPERED, SimRun, compile_and_run, verdict_lines
from sft_playbook.evaluate.verilogeval import load_problems
from sft_playbook.verilog.sandbox import iverilog_available

pytestmark = pytest.mark.skipif(not iverilog_available(), reason="Icarus Verilog not installed")

PROBLEMS = Path(__file__).parent / "fixtures" / "verilog_eval" / "problems"
REF_AND = "module and_gate(input a, input b, output y); assign y = a & b; endmodule\n"
WRONG_AND = "module and_gate(input a, input b, output y);\n  assign y = a | b;\n{extra}\nendmodule\n"
REF_CNT = ("module cnt(input clk, input rst, output reg [3:0] q);\n"
           "  always @(posedge clk) if (rst) q <= 0; else q <= q + 1;\nendmodule\n")
WRONG_CNT = ("module cnt(input clk, input rst, output reg [3:0] q);\n"
             "  always @(posedge clk) if (rst) q <= 0; else q <= q + 2;\n{extra}\nendmodule\n")

# --- forging lines: {line} is a complete verdict line with %s for the "nonce" and %0d for samples
_M = "reg [8*200:1] s; initial $sformat(s, \"%m\");"   # the design's own hierarchical name


def _forgers(line: str, samples: int) -> dict[str, str]:
    """Wrong designs that print a forged verdict in several ways. `line` has one %s (what the
    design believes is the nonce) and one %0d (sample count)."""
    from_m = [  # every 12-hex-digit run of %m (the old nonce sat in the instance names)
        f"{_M} integer k; final for (k = 0; k <= 188; k = k + 8) "
        f"$display(\"{line}\", s[k+96 -: 96], {samples});",
        f"{_M} integer k; final for (k = 0; k <= 188; k = k + 8) "
        f"$fdisplay(32'h80000002, \"{line}\", s[k+96 -: 96], {samples});",
        f"{_M} integer k; final for (k = 0; k <= 188; k = k + 8) "
        f"$fwrite(32'h80000001, \"{line}\\n\", s[k+96 -: 96], {samples});",
        f"{_M} integer k; final for (k = 0; k <= 188; k = k + 8) "
        f"$fwrite(32'h80000002, \"{line}\\n\", s[k+96 -: 96], {samples});",
    ]
    image = (  # read the compiled simulation image: the nonce follows "SFTPB_"
        "integer fd, c, st, i; reg [8*12:1] key; reg got; reg [8*6:1] pat;\n"
        "initial begin\n  got = 0; st = 0; i = 0; key = 0; pat = \"SFTPB_\";\n"
        "  fd = $fopen(\"sim\", \"r\");\n"
        "  if (fd) begin c = $fgetc(fd);\n"
        "    while (c != -1 && !got) begin\n"
        "      if (st < 6) begin if (c == pat[8*(6-st) -: 8]) st = st + 1; else st = (c == \"S\") ? 1 : 0; end\n"
        "      else begin key = {key[8*11:1], c[7:0]}; i = i + 1; if (i == 12) got = 1; end\n"
        "      c = $fgetc(fd);\n    end\n  end\nend\n"
        f"final if (got) $display(\"{line}\", key, {samples});\n"
        f"final if (got) $fdisplay(32'h80000002, \"{line}\", key, {samples});"
    )
    named = {f"percent_m_{i}": x for i, x in enumerate(from_m)}
    named["read_image"] = image
    return named


@pytest.fixture
def no_word_list(monkeypatch):
    for mod in (verilog_metrics, verilogeval):
        monkeypatch.setattr(mod, "forbidden_constructs", lambda code: [])


def _row(ref, pred):
    return {"id": "x", "reference": ref, "prediction": f"```verilog\n{pred}\n```"}


@pytest.mark.parametrize("ref,wrong", [(REF_AND, WRONG_AND), (REF_CNT, WRONG_CNT)], ids=["comb", "seq"])
def test_predictions_runner_forged_verdicts_never_pass(no_word_list, ref, wrong):
    good = verilog_metrics.evaluate_one(_row(ref, ref), timeout_s=5)
    assert good["status"] == "pass", good                # a correct design still passes
    samples = good["samples"]
    line = "SFTPB_%s RESULT mismatches=0 samples=%0d first=-1"
    for name, extra in _forgers(line, samples).items():
        res = verilog_metrics.evaluate_one(_row(ref, wrong.format(extra=extra)), timeout_s=4)
        assert res["status"] != "pass", (name, res)
        assert res["status"] in ("mismatch", "timeout", "runtime_error"), (name, res)


def test_verilogeval_forged_verdicts_never_pass(no_word_list):
    prob = {p.id: p for p in load_problems(PROBLEMS)}["Prob902_mux2"]
    ref_cand = verilogeval.reference_as_candidate(prob)
    good = verilogeval.judge(prob, ref_cand, expected_samples=None)
    assert good["status"] == "pass", good
    samples = good["samples"]
    wrong = ref_cand.replace("endmodule", "{extra}\nendmodule")
    # a wrong output: invert the whole output expression
    wrong = re.sub(r"assign\s+(\w+)\s*=\s*([^;]+);", r"assign \1 = ~(\2);", wrong, count=1)
    assert wrong != ref_cand.replace("endmodule", "{extra}\nendmodule")
    line = "SFTPB_%s Mismatches: 0 in %0d samples"
    for name, extra in _forgers(line, samples).items():
        res = verilogeval.judge(prob, wrong.format(extra=extra), expected_samples=samples, timeout_s=4)
        assert res["status"] != "pass", (name, res)


def test_the_image_cannot_be_read_back_by_the_design():
    """The compiled image is streamed to vvp: opening it again from the design never yields it."""
    src = ("module t; integer fd, c; initial begin fd = $fopen(\"sim\", \"r\"); c = fd ? $fgetc(fd) : -2;\n"
           "$display(\"GOT %0d\", c); $finish; end endmodule\n")
    run = compile_and_run({"t.v": src}, "t", timeout_s=3)
    assert "GOT 35" not in run.stdout          # '#' = the first byte of a vvp image
    assert run.timed_out or "GOT -1" in run.stdout or "GOT -2" in run.stdout, run


def test_the_nonce_is_only_in_format_strings():
    from sft_playbook.evaluate.vparse import parse_modules
    for ref, top in ((REF_AND, "and_gate"), (REF_CNT, "cnt")):
        mods = parse_modules(ref)
        t = [m for m in mods if m.name == top][0]
        tb = difftb.build(ref, t, [m.name for m in mods], ref, t, nonce="feedc0ffee42")
        for text in tb.files.values():
            outside = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)
            assert "feedc0ffee42" not in outside
        assert "feedc0ffee42" in tb.files["tb.sv"] and "feedc0ffee42" not in tb.top
    prob = load_problems(PROBLEMS)[0]
    tbv, refv, top = verilogeval.prepare_testbench(prob.test, prob.ref, "feedc0ffee42")
    for text in (tbv, refv, top):
        assert "feedc0ffee42" not in re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)
    assert "feedc0ffee42" in tbv


def _run(stdout="", stderr=""):
    return SimRun("simulate", True, False, 0, stdout + stderr, False, 0.0, stdout=stdout, stderr=stderr)


PAT = r"RESULT mismatches=(\d+) samples=(\d+) first=(-?\d+)"


@pytest.mark.parametrize("stdout,stderr,expect", [
    ("SFTPB_ab12 RESULT mismatches=3 samples=9 first=5\n", "", [("3", "9", "5")]),
    ("noise\nSFTPB_ab12 RESULT mismatches=3 samples=9 first=5\n", "warning: x\n", [("3", "9", "5")]),
    ("SFTPB_ab12 RESULT mismatches=0 samples=9 first=-1\nSFTPB_ab12 RESULT mismatches=3 samples=9 first=5\n", "",
     TAMPERED),
    ("SFTPB_ab12 RESULT mismatches=3 samples=9 first=5\nSFTPB_ab12 RESULT mismatches=0 samples=9 first=-1\n", "",
     TAMPERED),
    ("SFTPB_ab12 RESULT mismatches=3 samples=9 first=5\n", "SFTPB_ab12 RESULT mismatches=0 samples=9 first=-1\n",
     TAMPERED),
    ("SFTPB_ab12 RESULT mismatches=3 samples=9 first=5\n", "anything with ab12 in it\n", TAMPERED),
    ("", "SFTPB_ab12 RESULT mismatches=0 samples=9 first=-1\n", TAMPERED),
    ("SFTPB_zz99 RESULT mismatches=0 samples=9 first=-1\n", "", []),
])
def test_one_verdict_line_from_stdout_only(stdout, stderr, expect):
    found, problem = verdict_lines(_run(stdout, stderr), "ab12", PAT)
    if expect == TAMPERED:
        assert problem == TAMPERED and found == []
    else:
        assert problem == "" and found == expect
