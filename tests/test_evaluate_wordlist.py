"""The forbidden-construct scan sees what the compiler sees: it scans the source after iverilog's
own preprocessor (macros and token pasting expanded) with a comment stripper that knows escaped
identifiers (`\\x/*` is a name, not the start of a comment). Every hidden call below compiles
(so it is a real bypass of a plain word list) and is refused."""
import pytest

from sft_playbook.evaluate import simulate
from sft_playbook.evaluate.simulate import forbidden_constructs, strip_comments
from sft_playbook.verilog.sandbox import compile_check, iverilog_available

needs_iverilog = pytest.mark.skipif(not iverilog_available(), reason="Icarus Verilog not installed")

HIDDEN = {
    "paste_fopen": ("`define F(x) $fop``x\nmodule t; integer f; initial f = `F(en)(\"/etc/passwd\", \"r\"); endmodule\n",
                    "$fopen"),
    "paste_system": ("`define CALL(x) $sys``x\nmodule t; initial `CALL(tem)(\"true\"); endmodule\n", "$system"),
    "paste_nested": ("`define P(a,b) a``b\n`define Q(x) `P($write,x)\nmodule t; reg [7:0] m [0:1];\n"
                     "initial `Q(memh)(\"/tmp/x\", m); endmodule\n", "$writememh"),
    "paste_dump": ("`define D(x) $dump``x\nmodule t; initial `D(file)(\"/tmp/w.vcd\"); endmodule\n", "$dumpfile"),
    "escaped_block_comment": ("module t; integer f;\nwire \\x/* ;\ninitial f = $fopen(\"/etc/passwd\", \"r\");\n"
                              "wire \\y*/ ;\nendmodule\n", "$fopen"),
    "escaped_line_comment": ("module t; integer f;\nwire \\a// ; initial f = $fopen(\"/etc/passwd\", \"r\");\nendmodule\n",
                             "$fopen"),
}
CLEAN = {
    "string_mentions_task": "module t; initial $display(\"no $fopen or $system here\"); endmodule\n",
    "escaped_name": "module t; wire \\$fopen ; assign \\$fopen = 1'b0; endmodule\n",
    "comment_mentions_task": "module t; // $fopen would be refused\n/* $system too */ endmodule\n",
    "macros_ok": "`define W 8\n`define ADD(a,b) ((a)+(b))\nmodule t(input [`W-1:0] a, output [`W-1:0] y); "
                 "assign y = `ADD(a, 1); endmodule\n",
}


@needs_iverilog
@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_hidden_system_tasks_are_found(name):
    code, task = HIDDEN[name]
    assert compile_check(code).ok, "the example must be Verilog iverilog accepts"
    assert task in forbidden_constructs(code), name


@needs_iverilog
@pytest.mark.parametrize("name", sorted(CLEAN))
def test_clean_code_is_not_refused(name):
    assert compile_check(CLEAN[name]).ok
    assert forbidden_constructs(CLEAN[name]) == []


def test_preprocessing_that_fails_keeps_the_plain_scan(monkeypatch):
    monkeypatch.setattr(simulate, "preprocess", lambda code, **kw: None)
    assert forbidden_constructs("module t; initial $system(\"x\"); endmodule") == ["$system"]
    assert forbidden_constructs("module t; endmodule") == []


@pytest.mark.parametrize("src,expect", [
    ("wire \\x/* ; a\nwire \\y*/ ; // c\nb", "wire \\x/* ; a\nwire \\y*/ ; \nb"),
    ("a /* c */ b // d\ne", "a   b \ne"),
    ('s = "/* not a comment */"; // c', 's = "/* not a comment */"; '),
    ("wire \\a// ; x = 1; // c", "wire \\a// ; x = 1; "),
    ("`define M(x) x \\\n + 1", "`define M(x) x \\\n + 1"),
])
def test_strip_comments_knows_escaped_identifiers(src, expect):
    assert strip_comments(src) == expect
