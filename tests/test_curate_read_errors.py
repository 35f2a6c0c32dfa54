"""Awkward inputs met while READING sources: one clear line naming the file (and line or field),
nothing lost silently, every skipped record counted (REVIEW15b findings 20, 21)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

import curate_fixtures as fx
from sft_playbook.curate.pipeline import curate
from test_curate_inputs import cfg_for, one_line_failure


def ascii_jsonl(rows) -> bytes:
    # ensure_ascii: a lone surrogate is written as the JSON escape "\ud800" (valid JSON, as scraped text has it)
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def with_surrogate(rows, k: int, where: str):
    rows = copy.deepcopy(rows)
    if where == "code":
        rows[k]["code"] = rows[k]["code"].replace("endmodule", "// caf\udce9\nendmodule", 1)
    elif where == "summary":
        rows[k]["description"]["high_level_global_summary"] += " \ud800 (from UTF-16)"
    elif where == "id":
        rows[k]["id"] = f"row-\udfff-{k}"
    return rows


@pytest.mark.parametrize("engine, where, field", [
    ("local", "code", "'code'"), ("local", "summary", "'description.high_level_global_summary'"), ("local", "id", "'id'"),
    ("dask", "summary", "'description.high_level_global_summary'")])
def test_a_lone_surrogate_is_a_bad_line_naming_file_line_and_field(tmp_path, caplog, where, field, engine):
    rows, _ = fx.records()
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jsonl").write_bytes(ascii_jsonl(rows[:3]) + b"\n" + ascii_jsonl(with_surrogate(rows[3:], 2, where)))
    cfg = cfg_for(tmp_path, src)
    cfg["engine"]["engine"] = engine
    cfg["engine"]["n_workers"] = 1
    # the bad row is the 3rd of the second block: line 3 + 1 blank + 3
    one_line_failure(cfg, caplog, f"a.jsonl:7: field {field}", "surrogate", "on_bad_line=skip")


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_lone_surrogates_are_skipped_and_counted_with_on_bad_line_skip(tmp_path, engine):
    rows, _ = fx.records()
    src = tmp_path / "src"
    src.mkdir()
    bad = with_surrogate(with_surrogate(with_surrogate(rows, 1, "code"), 4, "summary"), 6, "id")
    (src / "a.jsonl").write_bytes(ascii_jsonl(bad[:5]))
    (src / "b.json").write_text(json.dumps(bad[5:]))               # a JSON list: the record numbered b.json#1
    cfg = cfg_for(tmp_path, src)
    cfg["engine"]["engine"] = engine
    cfg["engine"]["n_workers"] = 1
    cfg["on_bad_line"] = "skip"
    rep = curate(cfg)
    assert rep["rows_read"] == len(rows) - 3
    assert rep["bad_lines"]["skipped"] == 3
    ex = "\n".join(rep["bad_lines"]["examples"])
    assert "a.jsonl:2" in ex and "a.jsonl:5" in ex and "b.json#1" in ex and "surrogate" in ex, ex
    kept = [json.loads(line) for p in (tmp_path / "out").rglob("*.jsonl") for line in p.read_text().splitlines()]
    assert kept and all("\ud800" not in json.dumps(r, ensure_ascii=False) for r in kept)


def fixture_parquet(path: Path, rows, row_group_size: int) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size, compression="snappy")
    return path.read_bytes()


def damaged(tmp: Path, kind: str) -> tuple[Path, str]:
    """A source folder holding one good jsonl and one damaged file of ``kind``; the text the error names."""
    import gzip

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, _ = fx.records()
    src = tmp / "src"
    src.mkdir()
    (src / "a.jsonl").write_bytes(ascii_jsonl(rows[:4]))
    if kind == "parquet-truncated":                             # a download cut in the middle
        data = fixture_parquet(tmp / "whole.parquet", rows[4:], 4)
        (src / "b.parquet").write_bytes(data[: len(data) // 2])
        return src, "b.parquet: cannot read as parquet"
    if kind == "parquet-empty":
        (src / "b.parquet").write_bytes(b"")
        return src, "b.parquet: cannot read as parquet"
    if kind == "parquet-row-group":                             # footer fine, row group 1's data damaged
        data = bytearray(fixture_parquet(tmp / "whole.parquet", rows[4:], 4))
        col = pq.ParquetFile(tmp / "whole.parquet").metadata.row_group(1).column(0)
        at = (col.dictionary_page_offset or col.data_page_offset) + 20
        data[at:at + 40] = b"\0" * 40
        (src / "b.parquet").write_bytes(bytes(data))
        return src, "b.parquet row group 1: cannot read as parquet"
    if kind == "arrow-truncated":
        sink = pa.BufferOutputStream()
        table = pa.Table.from_pylist(rows[4:])
        with pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)
        data = sink.getvalue().to_pybytes()
        (src / "b.arrow").write_bytes(data[: len(data) // 2])
        return src, "b.arrow: cannot read as Arrow"
    if kind == "json-list-gz-truncated":
        data = gzip.compress(json.dumps(rows[4:]).encode())
        (src / "b.json.gz").write_bytes(data[: len(data) // 2])
        return src, "b.json.gz"
    raise ValueError(kind)


@pytest.mark.parametrize("kind, engine", [("parquet-truncated", "local"), ("parquet-truncated", "dask"),
                                          ("parquet-empty", "local"), ("parquet-row-group", "local"),
                                          ("arrow-truncated", "local"), ("json-list-gz-truncated", "local")])
def test_a_damaged_binary_or_compressed_file_is_one_line_naming_it(tmp_path, caplog, kind, engine):
    src, want = damaged(tmp_path, kind)
    cfg = cfg_for(tmp_path, src)
    cfg["engine"]["engine"] = engine
    cfg["engine"]["n_workers"] = 1
    one_line_failure(cfg, caplog, want)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= 40]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert "Compute Failed" not in caplog.text and "Traceback" not in caplog.text


def test_an_undamaged_two_row_group_parquet_is_read_whole(tmp_path):
    rows, _ = fx.records()
    src = tmp_path / "src"
    src.mkdir()
    fixture_parquet(src / "b.parquet", rows, 4)
    assert curate(cfg_for(tmp_path, src))["rows_read"] == len(rows)


def two_sources(tmp: Path, second_path: Path, first_path: Path):
    from sft_playbook.config import load_config
    from sft_playbook.paths import REPO_ROOT
    from test_curate_inputs import LEVELS_MAP

    (tmp / "sources.jsonl").write_text(
        json.dumps({"name": "corpus_a", "path": str(first_path), "levels": LEVELS_MAP}) + "\n"
        + json.dumps({"name": "corpus_b", "path": str(second_path), "levels": LEVELS_MAP}) + "\n")
    bench = fx.write_benchmark(tmp / "bench")
    return load_config(REPO_ROOT / "configs/curate.yaml", [
        f"sources={tmp / 'sources.jsonl'}", f"output_dir={tmp / 'out'}", f"dropped_dir={tmp / 'dropped'}",
        f"decontaminate.benchmark_dir={bench}", "engine.engine=local", "engine.partition_rows=4", "pii.backend=regex"])


@pytest.mark.parametrize("layout", ["same-file", "same-numbering"])
def test_a_repeated_id_across_sources_names_both_sources(tmp_path, caplog, layout):
    rows, _ = fx.records()
    a = tmp_path / "a"
    a.mkdir()
    numbered = [dict(r, id=str(i)) for i, r in enumerate(rows)]         # two datasets both numbering 0..N
    (a / "part.jsonl").write_bytes(ascii_jsonl(numbered[:6]))
    if layout == "same-file":
        cfg = two_sources(tmp_path, a / "part.jsonl", a)
        want = ["part.jsonl:1: id '0' (source 'corpus_b') repeats the id of", "(source 'corpus_a')", "list it once"]
    else:
        b = tmp_path / "b"
        b.mkdir()
        (b / "other.jsonl").write_bytes(ascii_jsonl(numbered[6:9] + numbered[3:6]))   # other rows, ids 6..8, 3..5
        cfg = two_sources(tmp_path, b, a)
        want = ["other.jsonl:4: id '3' (source 'corpus_b') repeats the id of", "part.jsonl:4 (source 'corpus_a')",
                "give 'corpus_b' an id_field"]
    one_line_failure(cfg, caplog, *want)
