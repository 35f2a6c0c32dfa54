"""PII on hardware text: numbers that are design constants are not phones (precision); names in any
script on author/copyright lines are redacted whole (recall); rejected candidates are counted."""
from __future__ import annotations

import pandas as pd
import pytest

from sft_playbook.curate.pii import Redactor, RedactPII, code_numbers



# -- precision: numbers of hardware text are not phone numbers --------------------------------------
# (text, code of the same row): nothing may be redacted
NOT_PHONES = [
    ("A Fibonacci hash: multiplies the key by 2654435769 and keeps the top byte.",
     "wire [63:0] p = key * 32'd2654435769; assign h = p[31:24]; endmodule"),
    ("The seed register resets to 3735928559 (0xDEADBEEF).",                   # value in the code, in hex
     "always @(posedge clk) if (rst) s <= 32'hDEAD_BEEF; else s <= s ^ d; endmodule"),
    ("// digit  abcdefg\n// 4 0011001\n// 5 0010010\n// 6 0000010",              # 7-segment table comment
     "case (d) 4'd4: seg = 7'b0011001; 4'd5: seg = 7'b0010010; 4'd6: seg = 7'b0000010; endcase endmodule"),
    ("The divider counts to 40000000 before toggling the slow clock.",
     "parameter DIVISOR = 40_000_000; endmodule"),
    ("The readdata output is 1424559903 when the address is zero.",            # bare, no phone context
     "assign readdata = (address == 0) ? 1424559903 : 0; endmodule"),
    ("The LFSR starts from 1103515245 and the number of taps is four.",        # 'number' is no phone context
     "reg [31:0] r; endmodule"),
    ("Table: 1 0110000  2 1101101  3 1111001", "endmodule"),
]


@pytest.mark.parametrize("text,code", NOT_PHONES)
def test_design_constants_and_digit_tables_are_not_phones(red, text, code):
    red.rejected = {}
    out, counts = red.redact(text, code_numbers(code))
    assert out == text and "phone" not in counts
    out, counts = red.redact_code("// " + text.replace("\n", "\n// ") + "\n" + code)
    assert "<PHONE>" not in out


def test_rejections_are_counted_by_reason():
    r = Redactor("presidio")
    r.rejected = {}
    r.redact("The constant 2654435769 scrambles the key.", code_numbers("x = 32'd2654435769;"))
    assert r.rejected == {"phone_in_code": 1}
    r.rejected = {}
    r.redact("A seed of 3735928559 is loaded at reset.")                       # not in this row's code
    assert r.rejected == {"phone_no_phone_shape": 1}


@pytest.mark.parametrize("text,kept", [
    ("Questions: call Ravi at +1 (415) 555-0142 before changing it.", "call Ravi at"),
    ("Report problems by phone, (212) 555-0187, or mail.", "by phone,"),
    ("tel. +44 20 7946 0958", "tel."),
    ("office 020 7946 0958 (London)", "office"),           # grouped exactly as GB numbers are written
])
def test_real_phone_numbers_are_still_redacted(red, text, kept):
    out, counts = red.redact(text)
    assert counts.get("phone") == 1 and "<PHONE>" in out and kept in out


def test_bare_digit_runs_with_phone_context_are_redacted():
    r = Redactor("presidio")
    for text in ("Mobile: 015123456789", "phone 4155550132", "4155550132 (cell)", "Fax 030 901820"):
        out, counts = r.redact(text)
        assert counts == {"phone": 1}, text


def test_code_numbers_reads_verilog_literals():
    n = code_numbers("// 5551234567 in a comment\nlocalparam A = 32'h9E37_79B9, B = 8'b0011_1001, C = 1_000;\n"
                     "initial $display(\"4155550132\"); wire [7:0] w = 'd17;")
    assert {"2654435769", "00111001", "57", "1000", "32", "8", "17"} <= n
    assert "5551234567" not in n and "4155550132" not in n     # comments and strings are not the code


# -- recall: names in any script ---------------------------------------------------------------------
NAMES = [
    ("// Author: José Núñez", ["José Núñez"]),
    ("/* Copyright (c) 2021 Zoë Ødegaard and Łukasz Żółć. All rights reserved. */", ["Zoë Ødegaard", "Łukasz Żółć"]),
    ("// Author: Dr. Ана Петрова <ana@example.org>", ["Ана Петрова"]),
    ("// Author: 王小明", ["王小明"]),
    ("// Authors: J. R. R. Tolkien, Ludwig van Beethoven & Jean-Luc O'Neil", ["J. R. R. Tolkien", "Ludwig van Beethoven",
                                                                              "Jean-Luc O'Neil"]),
    ("// Maintainer: Søren Kierkegaard-Ødegård, Åsa Öberg", ["Søren Kierkegaard-Ødegård", "Åsa Öberg"]),
    ("/* Written by Ngô Bảo Châu, contact me by mail */", ["Ngô Bảo Châu"]),
    ("// Copyright (C) 2019-2022 Ýmir Þórðarson", ["Ýmir Þórðarson"]),
    ("// Author: van der Berg, Jan and Prof. Dr. Hans-Jürgen Müller", ["van der Berg", "Jan", "Hans-Jürgen Müller"]),
    ("// Engineer: María José García de la Cruz <mj@example.org>", ["María José García de la Cruz"]),
]


@pytest.mark.parametrize("comment,names", NAMES)
def test_names_in_any_script_are_redacted_whole(red, comment, names):
    code = comment + "\nassign y = a ^ b;\nendmodule"
    out, counts = red.redact_code(code)
    assert counts.get("name") == len(names), out
    for name in names:
        for part in name.split():
            if len(part) > 2:
                assert part not in out, (part, out)
    assert "assign y = a ^ b;" in out


@pytest.mark.parametrize("text", [
    "// Copyright 2020 Intel Corporation", "// (c) 2019 Xilinx, Inc.", "The switch contact bounce is filtered.",
    "The designer documents the block.", "// Copyright (c) 2020 The Regents of the University of California",
])
def test_organisations_and_prose_are_not_names(red, text):
    out, counts = red.redact(text)
    assert "name" not in counts and out == text


# -- the stage: row context (the row's code numbers) reaches the descriptions ------------------------
def test_stage_uses_the_rows_code_and_counts_rejections():
    df = pd.DataFrame({
        "id": ["a", "b"],
        "code": ["// Author: Zoë Ødegaard\nwire [63:0] p = key * 32'd2654435769;\nendmodule",
                 "// call +1 (415) 555-0142\nassign y = 1'b0;\nendmodule"],
        "desc_x": ["Multiplies the key by 2654435769.", "Multiplies the key by 2654435769."],
    })
    out = RedactPII(["code"], ["desc_x"], backend="presidio")(df)
    assert out.loc[0, "desc_x"] == "Multiplies the key by 2654435769."       # in row a's code
    assert "Ødegaard" not in out.loc[0, "code"] and "2654435769" in out.loc[0, "code"]
    assert out.loc[1, "desc_x"] == "Multiplies the key by 2654435769."       # bare: no phone shape
    assert "<PHONE>" in out.loc[1, "code"]
    assert out["_n_pii_name"].tolist() == [1, 0] and out["_n_pii_phone"].tolist() == [0, 1]
    assert out["_n_rejected_phone_in_code"].tolist() == [1, 0]
    assert out["_n_rejected_phone_no_phone_shape"].tolist() == [0, 1]


def test_report_lists_rejected_number_candidates():
    from sft_playbook.curate.report import markdown

    stages = [{"name": "pii", "rows_in": 3, "rows_out": 3, "dropped": {}, "examples": {},
               "counters": {"pii_phone": 1, "rejected_phone_in_code": 4, "rejected_phone_no_phone_shape": 2}}]
    r = {"sources": [], "rows_read": 3, "bad_lines": {"skipped": 0}, "rows_kept": 3, "stages": stages,
         "redactions": {"phone": 1}, "duplicates": {"fuzzy_dedup": {"clusters": 2, "cluster_sizes": {"2": 1, "3": 1}}},
         "decontamination": {}, "splits": {}}
    md = markdown(r)
    assert "- phone_in_code: 4" in md and "- phone_no_phone_shape: 2" in md
    assert "cluster_sizes 1 x 2 rows, 1 x 3 rows" in md
