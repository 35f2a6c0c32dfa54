"""Sources that give nothing, and files the reader might skip: every source either gives records or
stops the run with one line naming it; every file of a source folder is read or named in a warning;
compressed jsonl/json (gzip, bzip2, xz) is read like the plain file."""
from __future__ import annotations

import bz2
import gzip
import json
import logging
import lzma
from pathlib import Path

import pytest

import curate_fixtures as fx
from sft_playbook.config import load_config
from sft_playbook.curate.pipeline import curate, main

from sft_playbook.paths import REPO_ROOT

LEVELS_MAP = {"high_level": "high_level_global_summary", "detailed": "detailed_global_summary",
              "block": "block_summary"}


def jsonl_bytes(rows) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def cfg_for(tmp: Path, src: Path, name="fx"):
    (tmp / "sources.jsonl").write_text(json.dumps({"name": name, "path": str(src), "levels": LEVELS_MAP}) + "\n")
    bench = fx.write_benchmark(tmp / "bench")
    return load_config(REPO_ROOT / "configs/curate.yaml", [
        f"sources={tmp / 'sources.jsonl'}", f"output_dir={tmp / 'out'}", f"dropped_dir={tmp / 'dropped'}",
        f"decontaminate.benchmark_dir={bench}", "engine.engine=local", "engine.partition_rows=4",
        "pii.backend=regex"])


def one_line_failure(cfg, caplog, *want):
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert main(cfg, None) == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    text = "\n".join(r.getMessage() for r in errors)
    assert "Traceback" not in caplog.text and "No objects to concatenate" not in caplog.text, caplog.text
    for w in want:
        assert w in text, text
    assert not (cfg_path := Path(cfg["output_dir"])).exists() or cfg_path.is_dir()


@pytest.mark.parametrize("layout", ["empty-file", "blank-lines", "empty-gz", "dir-of-empty", "bom-only"])
def test_a_source_with_no_records_is_one_line_naming_it(tmp_path, caplog, layout):
    src = tmp_path / "src"
    src.mkdir()
    if layout == "empty-file":
        (src / "a.jsonl").write_bytes(b"")
        path = src / "a.jsonl"
    elif layout == "blank-lines":
        (src / "a.jsonl").write_bytes(b"\n   \n\r\n")
        path = src
    elif layout == "empty-gz":
        (src / "a.jsonl.gz").write_bytes(gzip.compress(b""))
        path = src
    elif layout == "bom-only":
        (src / "a.jsonl").write_bytes(b"\xef\xbb\xbf\n")
        path = src
    else:
        (src / "x.jsonl").write_bytes(b"")
        (src / "y.json").write_bytes(b"[]")
        path = src
    one_line_failure(cfg_for(tmp_path, path, name="emptysrc"), caplog, "'emptysrc'", "0 records")


@pytest.mark.parametrize("others", [["README.md", ".gitattributes"], ["LICENSE"], ["notes.csv"], []])
def test_a_folder_without_data_files_is_one_line(tmp_path, caplog, others):
    src = tmp_path / "src"
    src.mkdir()
    for o in others:
        (src / o).write_text("x,y\n")
    one_line_failure(cfg_for(tmp_path, src, name="nodata"), caplog, "'nodata'", "no data files")


def test_a_local_records_jsonl_is_data(tmp_path):
    rows, _ = fx.records()
    src = tmp_path / "src"
    src.mkdir()
    (src / "records.jsonl").write_bytes(jsonl_bytes(rows))
    rep = curate(cfg_for(tmp_path, src))
    assert rep["rows_read"] == len(rows)
    from sft_playbook.curate.sources import list_data_files

    # a hub download's own converted records.jsonl (top level) is what the run writes: not read back
    assert list_data_files(src, None, converted="records.jsonl")[0] == []
    (src / "sub").mkdir()
    (src / "sub" / "records.jsonl").write_bytes(b"{}\n")
    assert list_data_files(src, None, converted="records.jsonl")[0] == [src / "sub" / "records.jsonl"]


@pytest.mark.parametrize("suffix, compress", [(".jsonl.gz", gzip.compress), (".jsonl.bz2", bz2.compress),
                                              (".jsonl.xz", lzma.compress), (".json.gz", gzip.compress)])
def test_compressed_jsonl_is_read_with_plain_files(tmp_path, suffix, compress):
    rows, _ = fx.records()
    half = len(rows) // 2
    src = tmp_path / "src"
    src.mkdir()
    (src / f"a{suffix}").write_bytes(compress(b"\xef\xbb\xbf" + jsonl_bytes(rows[:half])))
    (src / "b.jsonl").write_bytes(jsonl_bytes(rows[half:]))
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.jsonl").write_bytes(jsonl_bytes(rows[:half]))
    (plain / "b.jsonl").write_bytes(jsonl_bytes(rows[half:]))
    rep = curate(cfg_for(tmp_path, src))
    assert rep["rows_read"] == len(rows)
    got = {p.name: p.read_bytes() for p in sorted((tmp_path / "out").rglob("*.jsonl"))}
    rep2 = curate(cfg_for(tmp_path / "p", plain) if (tmp_path / "p").mkdir() is None else None)
    assert rep2["rows_read"] == len(rows)
    want = {p.name: p.read_bytes() for p in sorted((tmp_path / "p" / "out").rglob("*.jsonl"))}
    assert got == want and got


def test_a_gzipped_json_list_is_read(tmp_path):
    rows, _ = fx.records()
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.json.gz").write_bytes(gzip.compress(json.dumps(rows, indent=1).encode()))
    assert curate(cfg_for(tmp_path, src))["rows_read"] == len(rows)


@pytest.mark.parametrize("name, data, want", [
    ("a.jsonl.gz", b"\x1f\x8b\x08\x00garbage-not-gzip", "cannot decompress"),
    ("a.jsonl.gz", b"{\"id\": 1}\n", "cannot decompress"),                 # plain text named .gz
    ("a.jsonl.xz", lzma.compress(jsonl_bytes(fx.records()[0] * 20))[:900], "cannot decompress"),   # truncated
    ("a.jsonl.bz2", bz2.compress(jsonl_bytes(fx.records()[0] * 20))[:900], "cannot decompress"),
])
@pytest.mark.parametrize("on_bad_line", ["error", "skip"])
def test_a_damaged_compressed_file_is_one_line_naming_it(tmp_path, caplog, name, data, want, on_bad_line):
    """Also with on_bad_line=skip (as the README says): a damaged file's rows cannot be counted."""
    src = tmp_path / "src"
    src.mkdir()
    (src / name).write_bytes(data)
    cfg = cfg_for(tmp_path, src)
    cfg["on_bad_line"] = on_bad_line
    one_line_failure(cfg, caplog, name, want)


@pytest.mark.parametrize("kind", ["parquet", "arrow"])
def test_a_truncated_parquet_or_arrow_file_stops_the_run_even_with_skip(tmp_path, caplog, kind):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, _ = fx.records()
    table = pa.Table.from_pylist(rows * 10)
    src = tmp_path / "src"
    src.mkdir()
    whole = tmp_path / f"whole.{kind}"
    if kind == "parquet":
        pq.write_table(table, whole, row_group_size=20)
    else:
        with pa.OSFile(str(whole), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table, max_chunksize=20)
    data = whole.read_bytes()
    (src / f"a.{kind}").write_bytes(data[: len(data) * 2 // 3])
    cfg = cfg_for(tmp_path, src)
    cfg["on_bad_line"] = "skip"
    one_line_failure(cfg, caplog, f"a.{kind}")
    assert not (tmp_path / "out").exists()


def test_zstd_without_the_package_says_to_decompress(tmp_path, caplog):
    pytest.importorskip  # noqa: B018 - documented: with zstandard installed the file is read
    try:
        import zstandard  # noqa: F401
        pytest.skip("zstandard is installed here: .zst files are read")
    except ImportError:
        pass
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jsonl.zst").write_bytes(b"(\xb5/\xfd\x00\x00")
    one_line_failure(cfg_for(tmp_path, src), caplog, "a.jsonl.zst", "decompress it first")


@pytest.mark.parametrize("extra", [["notes.csv"], ["data.parquet.gz", "dump.tar"], ["x.tsv", "y.txt.gz", "z.jsonl.7z"]])
def test_files_not_read_are_named_in_one_warning_and_counted(tmp_path, caplog, extra):
    rows, _ = fx.records()
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jsonl").write_bytes(jsonl_bytes(rows))
    for e in extra:
        (src / e).write_bytes(b"1,2\n")
    (src / "README.md").write_text("# card\n")
    (src / ".gitattributes").write_text("*.jsonl filter=lfs\n")
    with caplog.at_level(logging.WARNING):
        rep = curate(cfg_for(tmp_path, src))
    warn = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "NOT read" in r.getMessage()]
    assert len(warn) == 1 and all(e in warn[0] for e in extra), warn
    assert f"{len(extra)} file(s) NOT read" in warn[0]
    card = [r.getMessage() for r in caplog.records if "non-data" in r.getMessage()]
    assert len(card) == 1 and "README.md" in card[0] and ".gitattributes" in card[0]
    src_rep = [o for o in rep["sources"] if o["name"] == "fx"][0] if "sources" in rep else None
    report = json.loads((tmp_path / "out" / "curation_report.json").read_text()) if src_rep is None else None
    origins = src_rep or [o for o in report["sources"] if o["name"] == "fx"][0]
    assert origins["files_not_read"] == len(extra)


def _lines(rows):
    return [json.dumps(r) for r in rows]


JSON_FILES = {
    # name: (text of a.json, rows read, bad lines) - fx.records() has 14 rows
    "jsonl, line 1 has a control character": (
        lambda rs: "\n".join(['{"id": "bad", "code": "a\tb\u0001", "description": {}}'.replace("\u0001", "\x01")]
                             + _lines(rs)) + "\n", 14, 1),
    "jsonl, line 1 truncated": (lambda rs: "\n".join(['{"id": "cut", "code": "modu'] + _lines(rs)) + "\n", 14, 1),
    "jsonl, line 1 not JSON, a BOM": (lambda rs: "\ufeff" + "\n".join(["{oops}"] + _lines(rs)), 14, 1),
    "jsonl, every line fine": (lambda rs: "\n".join(_lines(rs)) + "\n", 14, 0),
    "document, pretty-printed": (lambda rs: json.dumps({"data": rs}, indent=1), 14, 0),
    "document, one record a line": (lambda rs: '{"data": [\n' + ",\n".join(_lines(rs)) + "\n]}\n", 14, 0),
    "document, a list": (lambda rs: "[\n" + ",\n".join(_lines(rs)) + "\n]\n", 14, 0),
    "jsonl, line 1 is stray text": (lambda rs: "\n".join(["garbage line"] + _lines(rs)) + "\n", 14, 1),
    "jsonl, line 1 cut at its start": (lambda rs: "\n".join(['de": "x"}'] + _lines(rs)) + "\n", 14, 1),
    "document, a list on one line": (lambda rs: json.dumps(rs), 14, 0),
    "document, leading commas": (lambda rs: '{"data": [' + "\n,".join(_lines(rs)) + "]}\n", 14, 0),
    "document, a list with leading commas": (lambda rs: "[" + "\n,".join(_lines(rs)) + "\n]", 14, 0),
    "document, one key a line": (lambda rs: '{"data":\n' + json.dumps(rs) + "\n}", 14, 0),
}


@pytest.mark.parametrize("kind", list(JSON_FILES))
def test_a_json_file_is_json_lines_or_one_document_whatever_its_first_record(tmp_path, kind):
    """A bad first record of a JSON Lines `.json` file is a bad line like any other (skipped and
    counted with on_bad_line=skip), not a reason to parse the file as one document and stop (review
    15c #11); documents, pretty-printed or one record a line, are still read as documents."""
    text, n, bad = JSON_FILES[kind]
    rows, _ = fx.records()
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.json").write_text(text(rows), encoding="utf-8")
    cfg = cfg_for(tmp_path, src)
    cfg["on_bad_line"] = "skip"
    rep = curate(cfg)
    assert (rep["rows_read"], rep["bad_lines"]["skipped"]) == (n, bad)
    if bad:
        got = [json.loads(x) for x in (tmp_path / "dropped" / "00_bad_lines.jsonl").read_text().splitlines()]
        assert [g["where"] for g in got] == ["a.json:1"]
