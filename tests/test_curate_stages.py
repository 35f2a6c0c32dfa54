"""Unit tests of the curation stages (no cluster: plain pandas or engine=local, every task in this process)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sft_playbook.curate.base import DETAIL, REASON, Stage, StageError
from sft_playbook.curate.clean import CleanAndUnify, layout_verilog, rebuild_module, strip_wrapper
from sft_playbook.curate.decontam import Decontaminate
from sft_playbook.curate.dedup import ExactDedup, FuzzyDedup
from sft_playbook.curate.engine import Engine
from sft_playbook.curate.filters import (AlphaShare, Compiles, HasModule, LineCount, LongestLine, TopNGramShare,
                                         UrlShare, WordCount)
from sft_playbook.curate.minhash import MinHasher, jaccard, lsh_candidates, near_duplicate_pairs, shingles
from sft_playbook.curate.pii import Redactor
from sft_playbook.curate.split import assign_splits
from sft_playbook.curate.textutil import fix_unicode, top_ngram_share, url_char_share
from sft_playbook.verilog.sandbox import compile_check, iverilog_available

import curate_fixtures as fx

needs_iverilog = pytest.mark.skipif(not iverilog_available(), reason="iverilog not installed")
LEVELS = ["high_level", "detailed", "block"]


def frame(rows):
    df = pd.DataFrame(rows)
    if "_order" not in df:
        df["_order"] = range(len(df))
    return df


def raw_frame(recs):
    return frame([{"id": r["id"], "code": r["code"],
                   "desc_high_level": r["description"]["high_level_global_summary"],
                   "desc_detailed": r["description"]["detailed_global_summary"],
                   "desc_block": r["description"]["block_summary"]} for r in recs])


# -- clean -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", [0, 1])
def test_strip_wrapper_tolerates_spacing(variant):
    header = "module m #(\n  parameter W = 4\n) (\n  input [W-1:0] a,\n  output y\n);"
    summary, got = strip_wrapper(fx.wrap("Reduces a with an or.  Two  spaces.", header, variant=variant))
    assert summary == "Reduces a with an or. Two spaces."
    assert got == header
    block, got = strip_wrapper(fx.wrap("block_0: first. block_1: second.\n", header, block=True))
    assert block == "block_0: first.\nblock_1: second."
    assert "INST" not in block and "SYS" not in block and "Implement" not in block and got == header


def test_strip_wrapper_without_header():
    summary, header = strip_wrapper("<s>[INST] <<SYS>> sys <</SYS>> Just text here. [/INST]")
    assert summary == "Just text here." and header == ""


@needs_iverilog
@pytest.mark.parametrize("i", range(len(fx.MODULES)))
def test_rebuilt_modules_compile_and_keep_tokens(i):
    header, body, *_ = fx.MODULES[i]
    joined = " ".join(body + ["endmodule"])
    code = rebuild_module(header, joined)
    assert code.startswith(header) and code.rstrip().endswith("endmodule")
    assert code.count("\n") >= len(body)            # one statement per line again
    assert "".join(code.split()) == "".join((header + joined).split())   # only whitespace changed
    res = compile_check(code)
    assert res.ok, res.stderr


def test_layout_respects_strings_for_loops_and_else():
    code = layout_verilog('initial begin for (i=0;i<4;i=i+1) x = i; $display("a; begin end"); end '
                          'always @(*) begin if (a) begin y = 1; end else begin y = 0; end end')
    lines = code.split("\n")
    assert "  for (i=0;i<4;i=i+1) x = i;" in lines
    assert '  $display("a; begin end");' in lines
    assert any(l.strip() == "end else begin" for l in lines)


def test_clean_stage_repairs_and_rebuilds_without_mutating_input():
    rows, planted = fx.records()
    df = raw_frame(rows)
    before = df.copy(deep=True)
    out = CleanAndUnify(LEVELS)(df)
    pd.testing.assert_frame_equal(df, before)                 # input untouched
    assert (out[REASON] == "").all()
    r06 = out.set_index("id").loc["r06"]
    assert "â€" not in r06["desc_high_level"] and "\u2014" in r06["desc_high_level"]
    assert out["_n_unicode_fixed"].sum() == 1
    for code, header in zip(out["code"], out["header"]):
        assert code.startswith(header) and header.startswith("module ")


def test_clean_drops_rows_without_header_or_code():
    rec = fx.record(0, "x")
    for lvl in rec["description"]:
        rec["description"][lvl] = rec["description"][lvl].split("Module header")[0]
    empty = fx.record(1, "y", code="   ")
    out = CleanAndUnify(LEVELS)(raw_frame([rec, empty]))
    assert dict(zip(out["id"], out[REASON])) == {"x": "no_header", "y": "empty_code"}


# -- rules -------------------------------------------------------------------------------------------
def test_text_rules():
    df = frame([{"id": "a", "t": "one two three four five six"}, {"id": "b", "t": "short"},
                {"id": "c", "t": "see https://example.com/very/long/link/indeed ok"},
                {"id": "d", "t": "the same words " * 20}])
    wc = WordCount(["t"], min_words=3, max_words=50)(df)
    assert dict(zip(wc["id"], wc[REASON])) == {"a": "", "b": "too_few_words", "c": "", "d": "too_many_words"}
    assert "1 words < 3" in wc.set_index("id").at["b", DETAIL]
    url = UrlShare(["t"], max_share=0.3)(df)
    assert list(url[REASON]) == ["", "", "url_heavy", ""]
    top = TopNGramShare(["t"], n=2, max_share=0.2)(df)
    assert list(top[REASON]) == ["", "", "", "repeated_ngrams"]
    assert url_char_share("") == 0.0 and top_ngram_share("a b", 2) == 0.0


def test_code_rules():
    good = "module m(input a, output y);\n  assign y = a;\nendmodule"
    df = frame([{"id": "g", "code": good}, {"id": "short", "code": "module m; endmodule"},
                {"id": "long", "code": good.replace("assign y = a;", "assign y = " + "a & " * 200 + "a;")},
                {"id": "hex", "code": "module m;\n" + "8'hff 8'h00 12 34 56 78 90 ;\n" * 5 + "endmodule"},
                {"id": "nomod", "code": "assign y = a;\nassign z = b;\nassign w = c;"}])
    assert list(LineCount(min_lines=3, max_lines=100)(df)[REASON]) == ["", "too_few_lines", "", "", ""]
    assert list(LongestLine(max_chars=200)(df)[REASON]) == ["", "", "line_too_long", "", ""]
    assert list(AlphaShare(min_share=0.4)(df)[REASON]) == ["", "", "", "low_alpha_share", ""]
    assert list(HasModule()(df)[REASON]) == ["", "", "", "", "no_module_endmodule"]


@needs_iverilog
def test_compile_rule_names_the_error():
    df = frame([{"id": "ok", "code": "module m(input a, output y);\n  assign y = a;\nendmodule"},
                {"id": "bad", "code": "module m(input a, output y);\n  assign y = ;\nendmodule"}])
    out = Compiles(standards=["-g2012"], flags=["-tnull"], timeout_s=20)(df)
    assert list(out[REASON]) == ["", "does_not_compile"]
    assert "line 2" in out[DETAIL].iloc[1]


def test_compile_rule_without_iverilog_keeps_rows(monkeypatch, caplog):
    import sft_playbook.verilog.sandbox as sb

    monkeypatch.setattr(sb, "iverilog_available", lambda: False)
    out = Compiles()(frame([{"id": "x", "code": "not verilog"}]))
    assert list(out[REASON]) == [""] and out["_n_compile_skipped"].sum() == 1
    assert "iverilog is not installed" in caplog.text


# -- base mechanism ----------------------------------------------------------------------------------
class Boom(Stage):
    name = "boom"

    def process(self, df):
        if len(df):
            raise ValueError("kaput")
        return df


class Mutator(Stage):
    name = "mutator"

    def process(self, df):
        df["code"] = "changed"
        self.drop(df, df["id"] == "a", "first", "because")
        self.drop(df, df["id"].isin(["a", "b"]), "second")
        return df


def test_stage_copies_input_and_first_reason_wins():
    df = frame([{"id": "a", "code": "x"}, {"id": "b", "code": "y"}])
    out = Mutator()(df)
    assert list(df["code"]) == ["x", "y"]
    assert list(out[REASON]) == ["first", "second"] and list(out[DETAIL]) == ["because", ""]


def test_failure_inside_partition_surfaces_through_dask():
    df = frame([{"id": f"i{k}", "code": "x"} for k in range(5)])
    with (Engine(engine="local", partition_rows=2) as eng,
          pytest.raises(StageError, match=r"stage 'boom' failed on a partition .*ids i\d+\.\.i\d+\): ValueError: kaput")):
        eng.gather(eng.map(Boom(), eng.partitions(df)))


# -- PII ---------------------------------------------------------------------------------------------
CODE_PII = ("module m(input a, output b); // Author: John Smith <john.smith@example.com>\n"
            "// Copyright (c) 2021 Jane Q. Doe, Acme Corp\n"
            "/* contact: +1 (404) 555-0199, server 192.168.10.20 */\n"
            "// Copyright 2020 Intel Corporation\n"
            "localparam K = 32'd4045550123; // api_key = \"abcd1234efgh5678\"\n"
            "initial $display(\"ip 10.0.0.1 hf_abcdefghijklmnopqrstuvwxyz0123456789\");\n"
            "assign b = a; endmodule")


@pytest.mark.parametrize("backend", ["regex", "presidio"])
def test_redaction_counts_by_kind_and_spares_code(backend):
    red = Redactor(backend)
    assert red.backend == backend
    out, counts = red.redact_code(CODE_PII)
    assert counts == {"name": 2, "email": 1, "phone": 1, "ip": 2, "secret": 2}
    for secret in ("John Smith", "john.smith", "Jane", "555-0199", "192.168", "10.0.0.1", "abcd1234", "hf_abc"):
        assert secret not in out
    assert "Intel Corporation" in out and "Acme Corp" in out          # organisations stay
    assert "32'd4045550123" in out and "assign b = a;" in out         # code outside comments/strings stays
    text, c = red.redact("Contact jane@example.org about the 8 bit counter.")
    assert text == "Contact <EMAIL> about the 8 bit counter." and c == {"email": 1}


# -- MinHash / LSH -------------------------------------------------------------------------------
def test_minhash_numpy_and_torch_agree_and_estimate_jaccard():
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    docs = [np.unique(rng.integers(0, 2**32, size=int(rng.integers(0, 200))).astype(np.uint64)) for _ in range(50)]
    docs.append(np.array([], dtype=np.uint64))
    a, b = MinHasher(128, 7, "numpy"), MinHasher(128, 7, "torch")
    sa, sb = a.signatures(docs), b.signatures(docs)
    assert sa.dtype == np.uint32 and (sa == sb).all()
    assert (sa[-1] == 0xFFFFFFFF).all()
    base = np.arange(1000, dtype=np.uint64)
    other = np.arange(200, 1200, dtype=np.uint64)          # Jaccard 800/1200 = 0.667
    s = MinHasher(512, 1).signatures([base, other])
    assert abs((s[0] == s[1]).mean() - jaccard(base, other)) < 0.06


def test_signatures_do_not_depend_on_chunking():
    rng = np.random.default_rng(1)
    docs = [np.unique(rng.integers(0, 2**32, size=50).astype(np.uint64)) for _ in range(30)]
    # a document longer than a whole chunk (60 shingles), empty ones around it, a short last one
    docs[7:7] = [np.array([], dtype=np.uint64), np.unique(rng.integers(0, 2**32, size=500).astype(np.uint64)),
                 np.array([], dtype=np.uint64)]
    docs.append(np.array([5], dtype=np.uint64))
    big, small = MinHasher(64, 3), MinHasher(64, 3, chunk_elems=64 * 60)
    assert (big.signatures(docs) == small.signatures(docs)).all()
    assert (big.signatures(docs[::-1]) == small.signatures(docs)[::-1]).all()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts page faults with getrusage (Linux glibc)")
def test_signatures_reuse_one_scratch_buffer_under_dask_workers_malloc_setting():
    """Dask's nanny starts every worker with MALLOC_TRIM_THRESHOLD_ set, which pins glibc's mmap
    threshold at 128 kB: a fresh (num_perm, shingles) array per chunk (~2 MB) is then mapped and
    unmapped chunk after chunk, and its page faults cost as much CPU as the hashing (issue 15's
    exact-dedup pass, docs/benchmarks.md). One scratch buffer per call: page faults O(buffer), not
    O(chunks). 3,000 docs x 200 shingles = ~370 chunks of 2 MB (512 pages): ~190k faults when each
    chunk allocates its own, ~1k with one buffer."""
    code = textwrap.dedent("""
        import resource
        import numpy as np
        from sft_playbook.curate.minhash import MinHasher
        rng = np.random.default_rng(0)
        docs = [np.unique(rng.integers(0, 2**32, size=200).astype(np.uint64)) for _ in range(3000)]
        hasher = MinHasher(160, 42, "numpy")
        hasher.signatures(docs[:10])
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        hasher.signatures(docs)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """)
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    faults = int(out.stdout.split()[-1])
    assert faults < 20_000, f"{faults} page faults: the signature kernel allocates per chunk again"


def test_lsh_finds_near_duplicates():
    base = " ".join(f"w{i}" for i in range(300))
    near = base.replace("w150", "x150")               # one word changed: Jaccard ~0.97 on 5-grams
    far = " ".join(f"v{i}" for i in range(300))
    pairs = near_duplicate_pairs([base, far, near], kind="words", ngram=5, num_perm=160, bands=20, rows=8,
                                 threshold=0.8, seed=42)
    assert [(i, j) for i, j, _ in pairs] == [(0, 2)]
    with pytest.raises(ValueError, match="exceeds"):
        lsh_candidates(np.zeros((3, 10), dtype=np.uint32), 4, 3)


def test_token_shingles_ignore_formatting_comments_and_renames():
    a = "module m(input clk, output reg q);\n  always @(posedge clk) q <= ~q; // toggle\nendmodule"
    b = "module   n (input c,output reg z); always @(posedge c)\n z<=~z;   endmodule"
    assert jaccard(shingles(a), shingles(b)) == 1.0
    assert jaccard(shingles(a, normalize_identifiers=False), shingles(b, normalize_identifiers=False)) < 0.5


# -- dedup, decontamination, split (global stages through the engine) -----------------------------------
def run_global(stage, df):
    with Engine(engine="local", partition_rows=3) as eng:
        parts = eng.partitions(df)
        stage.fit(parts, eng)
        return pd.concat(eng.gather(eng.map(stage, parts))).sort_values("_order")


def test_exact_dedup_keeps_first_in_input_order():
    m = "module m(input a, output y);\n  assign y = a;\nendmodule"
    df = frame([{"id": "z9", "code": m}, {"id": "a1", "code": "module k(input a, output y); assign y = ~a; endmodule"},
                {"id": "b2", "code": m.replace("\n", "  ") + " // same code, other comment"}, {"id": "c3", "code": m}])
    out = run_global(ExactDedup("code"), df)
    assert dict(zip(out["id"], out[REASON])) == {"z9": "", "a1": "", "b2": "exact_duplicate", "c3": "exact_duplicate"}
    assert "same code as z9" in out.set_index("id").at["c3", DETAIL]


def test_fuzzy_dedup_clusters_and_keeps_first():
    rows, _ = fx.records()
    df = CleanAndUnify(LEVELS)(raw_frame(rows))
    df = df[df[REASON] == ""].drop(columns=[REASON, DETAIL]).reset_index(drop=True)
    stage = FuzzyDedup("code", seed=42)
    out = run_global(stage, df)
    dropped = out.loc[out[REASON] == "near_duplicate", "id"].tolist()
    # every copy of an earlier row's code (exact copy, renamed signals, copies with other defects, one
    # broken token) is a near duplicate; the originals r00..r07 all stay; junk is like nothing
    assert sorted(dropped) == ["d_exact", "d_near", "d_nocompile", "d_short", "d_url"]
    assert "near r04" in out.set_index("id").at["d_near", DETAIL]
    assert stage.summary()["clusters"] == 5


def test_decontamination_against_fixture_benchmark(tmp_path):
    bench = fx.write_benchmark(tmp_path / "bench")
    rows, _ = fx.records()
    df = CleanAndUnify(LEVELS)(raw_frame(rows[:8]))
    df = df.drop(columns=[REASON, DETAIL])
    prompt_copy = df.iloc[[0]].copy()
    prompt_copy["id"], prompt_copy["_order"] = "leak", 99
    prompt_copy["desc_detailed"] = fx.BENCH_PROMPT
    df = pd.concat([df, prompt_copy], ignore_index=True)
    st = Decontaminate(str(bench), ["code"], [f"desc_{l}" for l in LEVELS])
    out = run_global(st, df)
    got = dict(zip(out["id"], out[REASON]))
    assert got["r03"] == "benchmark_code"                  # parity16 == Prob001's reference
    assert got["leak"] == "benchmark_description"
    assert sum(v != "" for v in got.values()) == 2
    assert st.summary()["problems_checked"] == 2


def test_decontamination_missing_folder_checks_nothing(tmp_path, caplog):
    st = Decontaminate(str(tmp_path / "nope"), ["code"], [])
    out = run_global(st, frame([{"id": "a", "code": fx.BENCH_REF}]))
    assert list(out[REASON]) == [""] and st.summary()["problems_checked"] == 0
    assert "not found" in caplog.text


@pytest.mark.skipif(not (fx.REAL_BENCH.is_dir()), reason="VerilogEval v2 folder not present next to the repo")
def test_decontamination_against_real_verilog_eval():
    ref = next(fx.REAL_BENCH.glob("*_ref.sv"))
    code = ref.read_text().replace("RefModule", "TopModule")
    st = Decontaminate(str(fx.REAL_BENCH), ["code"], [])
    out = run_global(st, frame([{"id": "leak", "code": code}, {"id": "own", "code": rebuild_module(
        fx.MODULES[7][0], " ".join(fx.MODULES[7][1] + ["endmodule"]))}]))
    assert list(out[REASON]) == ["benchmark_code", ""]
    assert st.summary()["problems_checked"] >= 150


def test_split_is_deterministic_and_proportional():
    ids = [f"id{i:03d}" for i in range(200)]
    a = assign_splits(ids, 42, {"train": 0.8, "validation": 0.15, "test": 0.05})
    b = assign_splits(list(reversed(ids)), 42, {"train": 0.8, "validation": 0.15, "test": 0.05})
    assert a == b
    counts = pd.Series([s for _, s in a]).value_counts().to_dict()
    assert counts == {"train": 160, "validation": 30, "test": 10}
    assert assign_splits(ids, 7, {"train": 0.8, "validation": 0.15, "test": 0.05}) != a
    with pytest.raises(ValueError):
        assign_splits(ids, 1, {"train": 0.8, "validation": 0.1})


def test_fix_unicode_fast_path_is_exact():
    assert fix_unicode("plain ascii text") == "plain ascii text"
    assert fix_unicode("caf\u00c3\u00a9") == "caf\u00e9"
    assert fix_unicode("a &amp; b") == "a & b"
