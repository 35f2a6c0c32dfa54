"""The shipped raw sample data/sample/: MG-Verilog shape, clean rows that compile and are mutually
distinct, planted defects that really have the property the manifest claims, and a generator
(scripts/make_sample.py) that reproduces the files byte for byte."""
from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from sft_playbook.verilog import compile_check
from sft_playbook.verilog.sandbox import iverilog_available

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "mg_verilog_sample.jsonl"
MANIFEST = ROOT / "data" / "sample" / "manifest.json"
LEVELS = ("high_level_global_summary", "detailed_global_summary", "block_summary")

needs_iverilog = pytest.mark.skipif(not iverilog_available(), reason="iverilog is not installed (scripts/bootstrap.sh installs it)")


# -- an independent, whitespace-tolerant reader of the MG-Verilog wrapper ------------------------
_WRAP = re.compile(
    r"^\s*<s>\s*\[INST\]\s*<<SYS>>\s*(?P<sys>.*?)\s*<</SYS>>\s*"
    r"Implement the Verilog module based on the following (?P<what>description|block level summaries)\.\s*"
    r"Assume that signals are positive clock/clk edge triggered unless otherwise stated\.\s*"
    r"(?:Here are block level summaries:\s*)?(?P<summary>.*?)\s*Module header:\s*(?P<header>module\b.*?\);)\s*\[/INST\]\s*$",
    re.DOTALL)


def parse_description(text: str) -> tuple[str, str, str]:
    m = _WRAP.match(text)
    assert m, f"not an MG-Verilog wrapper: {text[:200]!r}"
    return m.group("what"), m.group("summary"), m.group("header")


def gopher_top_ngram_share(text: str, n: int = 2) -> float:
    toks = text.lower().split()
    if len(toks) < n + 1:
        return 0.0
    counts: dict[tuple, int] = {}
    for i in range(len(toks) - n + 1):
        counts[tuple(toks[i:i + n])] = counts.get(tuple(toks[i:i + n]), 0) + 1
    gram, count = max(counts.items(), key=lambda kv: kv[1])
    return 0.0 if count < 2 else sum(map(len, gram)) * count / sum(map(len, toks))


_URL = re.compile(r"(?:https?://|www\.)\S+")


def url_share(text: str) -> float:
    return sum(len(u) for u in _URL.findall(text)) / max(1, len(text))


def word_shingles(code: str, n: int = 5) -> set[str]:
    w = code.split()
    return {" ".join(w[i:i + n]) for i in range(max(1, len(w) - n + 1))}


_KW = set("""always always_comb always_ff and assign begin case casez default else end endcase endfunction endgenerate
endmodule for function generate genvar if initial inout input integer localparam logic module negedge or output
parameter posedge reg signed wire while""".split())
_TOK = re.compile(r"[A-Za-z_$][\w$]*|\d[\w']*|'[sS]?[bBoOdDhH][\w]+|\S")


def norm_token_shingles(code: str, n: int = 5) -> set[str]:
    """Identifier-normalised Verilog token 5-grams without comments (what fuzzy dedup compares)."""
    code = re.sub(r"//[^\n]*|/\*.*?\*/", " ", code, flags=re.DOTALL)
    toks = [t if t in _KW or not re.fullmatch(r"[A-Za-z_]\w*", t) else "$id" for t in _TOK.findall(code)]
    return {" ".join(toks[i:i + n]) for i in range(max(1, len(toks) - n + 1))}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _compile(src: str) -> tuple[bool, str]:
    res = compile_check(src)
    return res.ok, (res.stderr or res.stdout)[:300]


def compile_all(sources: list[str]) -> list[tuple[bool, str]]:
    with ProcessPoolExecutor(2) as ex:
        return list(ex.map(_compile, sources, chunksize=8))


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lines() -> list[str]:
    return SAMPLE.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def rows(lines) -> list[dict]:
    return [json.loads(x) for x in lines]


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def kept_lines(manifest) -> list[int]:
    """Rows the pipeline must keep: clean ones plus the PII (redacted) and mojibake (repaired) ones."""
    kept = [c["line"] for c in manifest["clean"]]
    kept += [d["line"] for d in manifest["defects"] if d["expected"] in ("redact", "repair")]
    return sorted(kept)


def module_of(row: dict) -> str:
    _, _, header = parse_description(row["description"]["high_level_global_summary"])
    return header + "\n" + row["code"] + "\n"


# -- shape ---------------------------------------------------------------------------------------
def test_rows_have_the_mg_verilog_shape(rows, manifest):
    assert 280 <= len(rows) <= 320 and manifest["rows"] == len(rows)
    for n, r in enumerate(rows, 1):
        assert set(r) == {"code", "description"}, f"line {n}"
        assert isinstance(r["code"], str) and set(r["description"]) == set(LEVELS), f"line {n}"


def test_manifest_covers_every_row_once(manifest, rows, lines):
    seen = [c["line"] for c in manifest["clean"]] + [d["line"] for d in manifest["defects"]]
    assert sorted(seen) == list(range(1, len(rows) + 1))
    for e in manifest["clean"] + manifest["defects"]:
        assert e["index"] == e["line"] - 1
        assert e["key"] == hashlib.sha256(lines[e["index"]].encode("utf-8")).hexdigest()[:16]
        assert e["key"] not in lines[e["index"]]
    kinds = {d["kind"] for d in manifest["defects"]}
    assert kinds == {"exact_duplicate", "near_duplicate", "pii", "url_heavy", "mojibake", "too_short", "too_long",
                     "non_verilog", "does_not_compile"}
    for k in kinds:
        assert sum(d["kind"] == k for d in manifest["defects"]) >= 3, k
    assert 220 <= manifest["counts"]["clean"] <= 240


def test_clean_rows_are_wrapped_and_specific(rows, kept_lines, manifest):
    families = {c["family"] for c in manifest["clean"]}
    assert len(families) >= 45
    for line in kept_lines:
        r = rows[line - 1]
        headers = set()
        for lvl in LEVELS:
            what, summary, header = parse_description(r["description"][lvl])
            headers.add(header)
            assert what == ("block level summaries" if lvl == "block_summary" else "description"), f"line {line} {lvl}"
            words = summary.split()
            assert len(words) >= 5, f"line {line} {lvl}: {summary!r}"
            assert gopher_top_ngram_share(summary) <= 0.2, f"line {line} {lvl}: repeated 2-grams in {summary!r}"
            assert url_share(summary) == 0.0
            if lvl == "block_summary":
                blocks = re.findall(r"^block_(\d+):", summary, re.M)
                assert 2 <= len(blocks) <= 6 and blocks == [str(k) for k in range(len(blocks))], f"line {line}"
            elif lvl == "high_level_global_summary":
                assert 1 <= len(re.findall(r"[.!?](?:\s|$)", summary)) <= 3, f"line {line}: {summary!r}"
        assert len(headers) == 1, f"line {line}: the three levels carry different headers"
        header = headers.pop()
        name = re.match(r"module\s+(\w+)", header).group(1)
        ports = [p for p in re.findall(r"\b(\w+)\s*(?:,|\)\s*;)", header) if p != name]
        text = " ".join(r["description"][lvl] for lvl in LEVELS[:2])
        assert any(p in text.split("Module header:")[0] or p in text for p in ports), f"line {line}: no port named"
        assert "\n" not in r["code"] and r["code"].rstrip().endswith("endmodule") and "//" not in r["code"], f"line {line}"


@needs_iverilog
def test_kept_rows_compile_once_the_header_is_reattached(rows, kept_lines):
    results = compile_all([module_of(rows[n - 1]) for n in kept_lines])
    bad = [(n, err) for n, (ok, err) in zip(kept_lines, results) if not ok]
    assert not bad, bad[:5]


def test_clean_rows_are_pairwise_distinct(rows, kept_lines):
    codes = [rows[n - 1]["code"] for n in kept_lines]
    words = [word_shingles(c) for c in codes]
    toks = [norm_token_shingles(c) for c in codes]
    worst_w, worst_t = (0.0, (0, 0)), (0.0, (0, 0))
    for a, b in itertools.combinations(range(len(codes)), 2):
        jw, jt = jaccard(words[a], words[b]), jaccard(toks[a], toks[b])
        worst_w = max(worst_w, (jw, (kept_lines[a], kept_lines[b])))
        worst_t = max(worst_t, (jt, (kept_lines[a], kept_lines[b])))
    assert worst_w[0] < 0.7, f"5-word shingle Jaccard {worst_w[0]:.2f} between lines {worst_w[1]}"
    assert worst_t[0] < 0.8, f"identifier-normalised token Jaccard {worst_t[0]:.2f} between lines {worst_t[1]}"


# -- planted defects -----------------------------------------------------------------------------
def _defects(manifest, kind):
    return [d for d in manifest["defects"] if d["kind"] == kind]


def test_duplicates_match_their_original(rows, manifest):
    for d in _defects(manifest, "exact_duplicate"):
        dup, orig = rows[d["index"]], rows[d["duplicate_of_line"] - 1]
        assert d["duplicate_of_line"] < d["line"] and d["expected"] == "drop"
        assert dup["description"] == orig["description"]
        if d["subkind"] == "identical":
            assert dup == orig
        else:
            assert dup["code"] != orig["code"] and dup["code"].split() == orig["code"].split()
    for d in _defects(manifest, "near_duplicate"):
        dup, orig = rows[d["index"]], rows[d["duplicate_of_line"] - 1]
        assert d["duplicate_of_line"] < d["line"]
        assert dup["code"].split() != orig["code"].split()
        old, new = d["renamed"][0]
        assert re.search(rf"\b{old}\b", orig["code"]) and re.search(rf"\b{new}\b", dup["code"]) and "/*" in dup["code"]
        assert jaccard(norm_token_shingles(dup["code"]), norm_token_shingles(orig["code"])) >= 0.85, d["line"]


def test_pii_rows_contain_their_pii(rows, manifest):
    ds = _defects(manifest, "pii")
    assert {p["kind"] for d in ds for p in d["pii"]} == {"email", "name", "phone", "ip", "secret"}
    for d in ds:
        assert d["expected"] == "redact"
        for p in d["pii"]:
            field = rows[d["index"]]["code"] if p["field"] == "code" else rows[d["index"]]["description"][p["field"].split(".")[1]]
            assert p["value"] in field, (d["line"], p)
            if p["field"] == "code":
                assert re.search(r"/\*[^*]*" + re.escape(p["value"]), field), "PII must sit in a block comment"


def test_mojibake_rows_are_repaired_by_ftfy(rows, manifest):
    ftfy = pytest.importorskip("ftfy")
    for d in _defects(manifest, "mojibake"):
        assert d["fixed"].encode("utf-8").decode("cp1252") == d["broken"] and d["broken"] != d["fixed"]
        for field in d["fields"]:
            lvl = field.split(".")[1]
            text = rows[d["index"]]["description"][lvl]
            assert d["broken"] in text
            fixed = ftfy.fix_text(text)
            assert d["fixed"] in fixed and d["broken"] not in fixed
            assert hashlib.sha256(fixed.encode()).hexdigest() == d["fixed_sha256"][lvl]


def test_text_defects(rows, manifest):
    for d in _defects(manifest, "url_heavy"):
        for lvl in LEVELS:
            assert url_share(parse_description(rows[d["index"]]["description"][lvl])[1]) > 0.5
    for d in _defects(manifest, "too_short"):
        r = rows[d["index"]]
        if d["subkind"] == "description":
            assert all(len(parse_description(r["description"][lvl])[1].split()) <= 3 for lvl in LEVELS)
        else:
            assert r["code"].strip() == "endmodule"
    for d in _defects(manifest, "too_long"):
        assert rows[d["index"]]["code"].count(";") >= 1500
    for d in _defects(manifest, "non_verilog"):
        assert "endmodule" not in rows[d["index"]]["code"] and "module" not in rows[d["index"]]["code"]


@needs_iverilog
def test_compile_defects(rows, manifest):
    broken = _defects(manifest, "does_not_compile")
    long_ = _defects(manifest, "too_long")
    near = _defects(manifest, "near_duplicate")
    checks = broken + long_ + near
    results = compile_all([module_of(rows[d["index"]]) for d in checks])
    for d, (ok, err) in zip(checks, results):
        if d["kind"] == "does_not_compile":
            assert not ok and "endmodule" in rows[d["index"]]["code"], d["line"]
        else:
            assert ok, (d["line"], err)


# -- reproducibility -----------------------------------------------------------------------------
def test_generator_rewrites_the_same_bytes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_sample", ROOT / "scripts" / "make_sample.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_sample"] = mod
    spec.loader.exec_module(mod)
    assert mod.main(["--out", str(tmp_path)]) == 0
    for name in (SAMPLE.name, MANIFEST.name):
        assert (tmp_path / name).read_bytes() == (ROOT / "data" / "sample" / name).read_bytes(), name
