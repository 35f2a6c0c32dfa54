"""The clean stage's fast paths (literal pre-checks before each wrapper regex, one ftfy call per text,
ASCII short cuts in the white-space helpers, the 'module' jump in find_header) give exactly what the
plain code gives. The plain code is copied here as it was before the fast paths and run on many
generated texts made of the awkward pieces real MG-Verilog rows have: wrapper tokens in odd case and
spacing, a <<SYS>> without its closing tag, IGNORECASE look-alikes (U+017F long s, U+212A Kelvin,
U+0130/U+0131 dotted/dotless i), mojibake, a BOM, HTML entities next to Verilog '&', escaped
identifiers, 500-character headers, Unicode spaces, CR/LF and runs of blank lines."""
from __future__ import annotations

import random
import re
from collections import Counter

import ftfy
import pandas as pd
import pytest

from sft_playbook.curate import clean as C
from sft_playbook.curate.clean import (CleanAndUnify, find_header, normalize_code_ws, rebuild_module,
                                       strip_code_wrapper, strip_wrapper)
from sft_playbook.curate.textutil import _MANY_BLANK, _SPACES, fix_unicode, needs_ftfy, normalize_prose
from sft_playbook.paths import REPO_ROOT

# -- the plain versions (as they were before the fast paths) ---------------------------------------------


def plain_fix_unicode(text: str) -> str:
    return ftfy.fix_text(text) if text else text


def plain_normalize_prose(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_BLANK.sub("\n\n", "\n".join(lines)).strip()


def plain_normalize_code_ws(code: str) -> str:
    code = code.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "  ")
    lines = [line.rstrip() for line in code.split("\n")]
    return _MANY_BLANK.sub("\n\n", "\n".join(lines)).strip("\n")


def plain_find_header(text: str, start: int = 0, line_start: bool = False):
    pos = start
    while True:
        m = C._MODULE_HEADER.search(text, pos)
        if m is None:
            return None
        inside = None
        for c in C._COMMENT_OR_STRING.finditer(text, start):
            if c.start() > m.start():
                break
            if m.start() < c.end():
                inside = c
                break
        if inside is not None:
            pos = inside.end()
        elif line_start and text[text.rfind("\n", 0, m.start()) + 1:m.start()].strip():
            pos = m.end()
        else:
            return m


def plain_strip_wrapper(text: str) -> tuple[str, str]:
    return plain_split(plain_fix_unicode(text or ""))


def plain_split(text: str) -> tuple[str, str]:
    """plain_strip_wrapper after ftfy (ftfy's NFC turns the Kelvin sign into K; U+017F stays)."""
    marks = list(C._HEADER_SPLIT.finditer(text))
    if marks:
        summary, rest = text[:marks[-1].start()], text[marks[-1].end():]
    else:
        m = plain_find_header(text, line_start=True)
        summary, rest = (text[:m.start()], text[m.start():]) if m else (text, "")
    for pat in C._WRAPPER_PATTERNS:
        summary = pat.sub(" ", summary)
    summary = C._WRAPPER_TOKENS.sub(" ", summary)
    rest = C._WRAPPER_TOKENS.sub(" ", rest)
    m = plain_find_header(rest)
    header = plain_normalize_code_ws(m.group(0)).strip() if m else ""
    summary = C._BLOCK_LINE.sub(lambda mm: "\n" + mm.group(1), summary)
    return plain_normalize_prose(summary), header


# -- awkward generated texts ------------------------------------------------------------------------------
LONG_HEADER = "module wide_bus #(parameter W = 8) (" + ", ".join(f"input [W-1:0] in_{i}" for i in range(30)) + ", output y);"
PIECES = [
    "<s>", "</s>", "< S >", "< / s>", "<ſ>", "[INST]", "[/INST]", "[ /inst ]", "[İNST]", "[ınst]", "[INST",
    "<<SYS>>", "<</SYS>>", "<< sys >>", "<< / Sys >>", "<<ſYS>>", "<</ſys>>", "<<SYS", "SYS>>", "<<",
    "You only complete chats with syntax correct Verilog code. End the Verilog module code completion with "
    "'endmodule'. Do not include module, input and output definitions.",
    "YOU  ONLY complete\nchats with syntax correct verilog code . end the VERILOG module code completion with "
    "endmodule .Do not include module ,input and output definitions",
    "You only complete chats with syntax correct Verilog code. End the Verilog module code completion with "
    "'endmoduŀe'. Do not include module, input and output definitions.",
    "Implement the Verilog module based on the following description.",
    "IMPLEMENT THE VERILOG MODULE BASED ON THE FOLLOWING block level summaries:",
    "implement\tthe verilog module based on the following summary",
    "Assume that signals are positive clock/clk edge triggered unless otherwise stated.",
    "ASSUME that signals are positive clock / clk edge triggered unless otherwise stated",
    "Assume that signals are positive clock/cl\u212a edge triggered unless otherwise stated.",
    "Here is the summary:", "  HERE are a few notes -:", "Here is", "Hére is the summary:",
    "Module header:", "module HEADER :", "MODULE header\t:", "Module \u0130eader:", "header", ":",
    "module m(input a, output y);", "module w(input a [/INST], output y);", "module v(input <s> a);", "macromodule \\$not (a, y);", "module \\a.b (x);", "xmodule q;",
    "// module x; comment\n", "/* module c; */", '"module s;"', "module", "modules are fun;", LONG_HEADER,
    "block_0:", "BLOCK_12 :", "bloc\u212a_3:", "block_x:", "block_", "Block_7", "_:",
    "é", "Ã©", "cafÃ©", "\ufeff", "&amp;", "&lt;", "&#39;", "a & b", "&&", "&;", "&x", "\u00a0", "\u3000",
    "\u2009", "\t", "\r\n", "\r", "\n", "\n\n\n", "  ", "\x0b", "\x1c", "\x1b[0m", "\x85",
    "The module adds two numbers", "endmodule", "assign y = a & b;", "This code", "word",
]
SEPS = ["", " ", " ", "  ", "\n", "\t", "\u00a0"]


def awkward_texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        k = rng.choice([0, 1, 2, 3, 5, 8, 15, 30])
        out.append("".join(rng.choice(PIECES) + rng.choice(SEPS) for _ in range(k)))
    return out


def mg_descriptions(seed: int, count: int) -> list[str]:
    """Wrapped descriptions shaped like MG-Verilog's, with pieces left out or duplicated."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts = ["<s>[INST] <<SYS>>\n", PIECES[20], "\n<</SYS>>\n\n", PIECES[23],
                 " Here is the summary: ", rng.choice(["block_0: This block ", "The module adds ", "Ã© cafÃ© "]),
                 " words" * rng.randint(0, 50), " Module header:\n\n", rng.choice([LONG_HEADER, PIECES[36], PIECES[37]]),
                 "\n [/INST]"]
        parts = [p for p in parts if rng.random() < 0.85]
        if rng.random() < 0.3:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(PIECES))
        out.append("".join(p.upper() if rng.random() < 0.1 else p for p in parts))
    return out


TEXTS = awkward_texts(0, 4000) + mg_descriptions(1, 1500) + PIECES


# -- tests --------------------------------------------------------------------------------------------------
def test_strip_wrapper_equals_the_plain_regex_chain():
    for t in TEXTS:
        assert strip_wrapper(t) == plain_strip_wrapper(t), repr(t)
        assert C._split_description(t) == plain_split(t), repr(t)


def test_each_wrapper_precheck_never_skips_a_pattern_that_would_match():
    assert len(C._WRAPPER_NEEDS) == len(C._WRAPPER_PATTERNS)
    for t in TEXTS:
        low = t.lower() if t.isascii() else None
        for pat, (symbols, word) in zip(C._WRAPPER_PATTERNS, C._WRAPPER_NEEDS):
            if pat.search(t):
                assert C._may_match(t, low, symbols, word), (pat.pattern[:40], t)


def test_ignorecase_look_alikes_are_stripped_like_the_plain_regex_does():
    # under re.IGNORECASE 'ſ' (U+017F) matches 's' and 'K' (U+212A) matches 'k', but neither lowers
    # to ASCII: a lower-case literal test on non-ASCII text would skip these (the fast path must not)
    for t in ["a <<ſYS>> b <</ſys>> c", "x [İNST] y", "x [ınst] y", "p <ſ> q", "bloc\u212a_3: text"]:
        assert strip_wrapper(t) == plain_strip_wrapper(t)
        assert C._split_description(t) == plain_split(t)
    assert "ſ" not in strip_wrapper("a <<ſYS>> b")[0]
    assert C._split_description("x bloc\u212a_3: text")[0] == "x\nbloc\u212a_3: text"
    assert C._split_description("A\u017f\u017fume that signals are positive clock/clk edge triggered unless "
                                "otherwise stated. The adder")[0] == "The adder"


@pytest.mark.parametrize("letter", "sysinstendmoduleimplementassumehereheaderblock")
def test_non_ascii_look_alikes_of_precheck_letters_are_all_non_ascii(letter):
    # the fast path tests words in lower() of ASCII text only; that is exact because every character
    # that matches an ASCII letter under re.IGNORECASE, other than its two cases, is non-ASCII
    pat = re.compile(letter, re.IGNORECASE)
    ascii_matches = {chr(c) for c in range(128) if pat.fullmatch(chr(c))}
    assert ascii_matches == {letter.lower(), letter.upper()}


def test_find_header_equals_the_plain_search():
    rng = random.Random(2)
    for t in TEXTS[:3000]:
        for start in {0, len(t) // 3, max(0, len(t) - 7)}:
            for line_start in (False, True):
                a, b = find_header(t, start, line_start), plain_find_header(t, start, line_start)
                assert (a and (a.span(), a.group(0))) == (b and (b.span(), b.group(0))), (t, start)
    for _ in range(500):   # 'macro' just before the start, words glued to 'module'
        t = "".join(rng.choice(["macro", "module", "x", " ", "m;", "(a);", "\n", "//", "\\q "]) for _ in range(12))
        for start in range(0, len(t), 3):
            a, b = find_header(t, start), plain_find_header(t, start)
            assert (a and a.span()) == (b and b.span()), (t, start)


def test_normalize_prose_and_code_ws_equal_the_plain_versions():
    for t in TEXTS:
        assert normalize_prose(t) == plain_normalize_prose(t), repr(t)
        assert normalize_code_ws(t) == plain_normalize_code_ws(t), repr(t)


def test_fix_unicode_skips_ftfy_only_where_ftfy_changes_nothing():
    texts = ["a & b", "a && b", "&", "&;", "&x", "&amp", "a &amp; b", "&AMP;", "&#39;", "&#x27;", "&lt;x&gt;",
             "<b>&amp;</b>", "assign y = a&b;", "x &nbsp; y", "&notanentityatall;", "a&b;c", "\r\n&amp;",
             "&" * 30 + ";", "ok\x1b[0m", "tab\tnew\nline", "cafÃ©", "\ufeffmodule m;", "x\u00a0y"]
    rng = random.Random(3)
    alphabet = "&;#xX0123456789abAZ <>\n\t;"
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(3000)]
    texts += TEXTS[:2000]
    for t in texts:
        assert fix_unicode(t) == plain_fix_unicode(t), repr(t)
        if not needs_ftfy(t):
            assert ftfy.fix_text(t) == t, repr(t)
    assert needs_ftfy("a &amp; b") and not needs_ftfy("assign y = a & b;")


def _plain_clean_row(raw_code: str, raw_descs: list[str], max_chars: int | None):
    """One row of CleanAndUnify.process as it was: ftfy on each text twice, public functions only."""
    code = plain_fix_unicode(raw_code)
    changed = code != raw_code
    bare = strip_code_wrapper(code)
    found, summaries = [], []
    for raw in raw_descs:
        summary, header = plain_strip_wrapper(raw)
        changed |= plain_fix_unicode(raw) != raw
        summaries.append(summary)
        if header:
            found.append(header)
    header = Counter(found).most_common(1)[0][0] if found else ""
    full = rebuild_module(header, bare, max_chars) if bare.strip() else ""
    if C.starts_with_module(bare):
        hm = plain_find_header(full, C.skip_leading_comments(full))
        header = plain_normalize_code_ws(hm.group(0)).strip() if hm else header
    else:
        header = C.layout_header(header, max_chars)
    return full, summaries, int(changed), header


CODES = ["module m(input a, output y); assign y = a & b; endmodule", "assign y = ~a; endmodule</s>",
         "// café Ã© note\nmodule m0 (input a, output y);\n  assign y = ~a;\nendmodule\n",
         "\ufeffmodule \\$not (a, y); assign y = !a; endmodule", "always @(posedge clk) q <= d; endmodule",
         "reg [7:0] mem [0:3]; initial mem[0] = 8'hFF; endmodule [/INST]", "", "   ", "x &amp; y endmodule",
         "module m(input a);\r\n\tassign b = a;\r\n\r\n\r\n\r\nendmodule", "<s> module q; endmodule </s>"]


def test_clean_stage_equals_the_plain_per_row_functions():
    rng = random.Random(4)
    descs = mg_descriptions(5, 300) + awkward_texts(6, 300)
    rows = [(rng.choice(CODES), rng.choice(descs), rng.choice(descs)) for _ in range(600)]
    df = pd.DataFrame({"id": [str(i) for i in range(len(rows))], "code": [r[0] for r in rows],
                       "desc_high_level": [r[1] for r in rows], "desc_detailed": [r[2] for r in rows],
                       "_order": range(len(rows))})
    out = CleanAndUnify(["high_level", "detailed"], 100)(df)
    for i, (code, d1, d2) in enumerate(rows):
        full, summaries, changed, header = _plain_clean_row(code, [d1, d2], 100)
        assert out["code"].iloc[i] == full, (code, d1, d2)
        assert out["header"].iloc[i] == header
        assert [out["desc_high_level"].iloc[i], out["desc_detailed"].iloc[i]] == summaries
        assert out["_n_unicode_fixed"].iloc[i] == changed


REAL = REPO_ROOT.parent / "shared" / "realdata" / "mg-verilog-course-slice" / "mg_verilog_high_level.jsonl"
REAL = REAL if REAL.is_file() else REPO_ROOT.parent.parent / "shared" / "realdata" / "mg-verilog-course-slice" / "mg_verilog_high_level.jsonl"


@pytest.mark.skipif(not REAL.is_file(), reason="the real MG-Verilog slice (../shared/realdata) is not next to this checkout")
def test_real_rows_clean_exactly_as_the_plain_functions_do():
    from sft_playbook.io import read_jsonl
    rows = list(read_jsonl(REAL))
    df = pd.DataFrame({"id": [r["id"] for r in rows], "code": [r["code"] for r in rows],
                       "desc_high_level": [r["description"]["high_level_global_summary"] for r in rows],
                       "_order": range(len(rows))})
    out = CleanAndUnify(["high_level"], 100)(df)
    for i, r in enumerate(rows):
        full, summaries, changed, header = _plain_clean_row(r["code"], [r["description"]["high_level_global_summary"]], 100)
        assert (out["code"].iloc[i], out["desc_high_level"].iloc[i], out["_n_unicode_fixed"].iloc[i], out["header"].iloc[i]) == \
            (full, summaries[0], changed, header), r["id"]


def test_starts_with_module_equals_the_sliced_match():
    rng = random.Random(7)
    bits = ["module", "macromodule", "modulex", "module\n", "// c\n", "/* module */", "/* open", " ", "\n", "\t",
            "x", "\\$not", "endmodule", "\r", "//\r", "m"]
    for _ in range(4000):
        t = "".join(rng.choice(bits) for _ in range(rng.randint(0, 6)))
        assert C.starts_with_module(t) == (re.match(r"(?:macro)?module\b", t[C.skip_leading_comments(t):]) is not None), repr(t)


def test_json_dumps_equals_json_dumps_with_surrogates_escaped():
    import json
    from sft_playbook.io import _json_dumps, jsonl_text
    rng = random.Random(8)
    alphabet = ["a", " ", '"', "\\", "\n", "\t", "\x00", "é", "日", "\ud800", "\udfff", "\U0001f600", "\u2028", "/"]
    objs = []
    for _ in range(2000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        objs.append(rng.choice([s, {"input": s, "output": s[::-1], "id": str(len(s))}, [s, 1.5, None, True],
                                {"n": float("nan"), "k": {"deep": [s]}}]))
    for o in objs:
        want = json.dumps(o, ensure_ascii=False)
        want = re.sub("[\ud800-\udfff]", lambda m: f"\\u{ord(m.group()):04x}", want)
        assert _json_dumps(o) == want
        assert _json_dumps(o, indent=2) == re.sub("[\ud800-\udfff]", lambda m: f"\\u{ord(m.group()):04x}",
                                                  json.dumps(o, ensure_ascii=False, indent=2))
    assert jsonl_text([{"a": "\ud800é"}]) == '{"a": "\\ud800é"}\n'
