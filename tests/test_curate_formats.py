"""Every input format is read as partitions of about ``engine.partition_rows`` rows (issue 15, review
15b finding 2): a parquet row group, a compressed jsonl, a JSON list and an Arrow file were each ONE
partition for every pass (pandas/pyarrow write up to 1Mi rows per row group: a user's corpus.parquet or
corpus.jsonl.gz ran on one worker with the whole file in its memory). The same rows must give the
same ids, ``file:line``/``file#row`` places, partitions of at most ``partition_rows`` rows and the same
output bytes as the plain jsonl. Also: skipped bad lines counted per reason and written as dropped rows
(finding 13), and a hub source's records.jsonl converted once per download (finding 19)."""
from __future__ import annotations

import bz2
import gzip
import json
import logging
import lzma
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import curate_fixtures as fx
from sft_playbook.curate.engine import Engine
from sft_playbook.curate.pipeline import curate, load_sources, plan_sources, read_partitions
from sft_playbook.curate.sources import SourceError
from sft_playbook.io import read_jsonl
from test_curate_pack import outputs, rows, tiny_files
from test_curate_scale import config

P = 16                     # partition_rows: a multiple of 16, so shards are exactly P lines
BOM = "\ufeff"


def cfg_of(tmp: Path, engine: str = "local", extra=()) -> dict:
    more = ["engine.n_workers=2"] if engine == "dask" else []
    return config(tmp, engine, [f"engine.partition_rows={P}", *more, *extra])


def jsonl_text(recs: list[dict], *, bom=True, crlf_every=7, blank_at=(5, 41)) -> str:
    """The records as awkward jsonl: a BOM, some CRLF line ends, blank lines, no final newline."""
    lines = [json.dumps(r, ensure_ascii=False) for r in recs]
    for at in blank_at:
        lines.insert(at, "   ")
    text = "".join(ln + ("\r\n" if i % crlf_every == 3 else "\n") for i, ln in enumerate(lines))
    return (BOM if bom else "") + text.rstrip("\n")


def flat(recs: list[dict]) -> list[dict]:
    """Records as a parquet/Arrow table holds them: the description as a JSON string."""
    return [{"code": r.get("code"), "description": json.dumps(r["description"], ensure_ascii=False)} for r in recs]


def write_parquet(path: Path, recs: list[dict], groups: list[int]) -> None:
    """``recs`` in row groups of exactly ``groups`` rows (in order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(flat(recs))
    with pq.ParquetWriter(path, table.schema) as w:
        at = 0
        for n in groups:
            w.write_table(table.slice(at, n), row_group_size=n)
            at += n
    assert [pq.ParquetFile(path).metadata.row_group(g).num_rows for g in range(len(groups))] == groups


def write_arrow(path: Path, recs: list[dict], stream: bool, batch: int = 7) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(flat(recs))
    new = pa.ipc.new_stream if stream else pa.ipc.new_file
    with pa.OSFile(str(path), "wb") as sink, new(sink, table.schema) as w:
        for b in table.to_batches(max_chunksize=batch):
            w.write_batch(b)


COMPRESS = {".gz": gzip.compress, ".xz": lzma.compress, ".bz2": bz2.compress}
try:
    import zstandard

    COMPRESS[".zst"] = lambda data: zstandard.ZstdCompressor().compress(data)
except ImportError:
    pass


def write_kind(src: Path, kind: str, recs: list[dict]) -> Path:
    """One file of ``kind`` holding ``recs`` under ``src``."""
    src.mkdir(parents=True, exist_ok=True)
    if kind == "jsonl":
        path = src / "corpus.jsonl"
        path.write_text(jsonl_text(recs), encoding="utf-8", newline="")
    elif kind == "parquet-one-group":
        path = src / "corpus.parquet"
        write_parquet(path, recs, [len(recs)])
    elif kind == "parquet-uneven":
        path = src / "corpus.parquet"
        cut = [3, 40, 1, 17, len(recs) - 61]
        write_parquet(path, recs, cut)
    elif kind in ("arrow-stream", "arrow-file"):
        path = src / "corpus.arrow"
        write_arrow(path, recs, stream=kind == "arrow-stream")
    elif kind == "json-list":
        path = src / "corpus.json"
        path.write_text(json.dumps(recs, ensure_ascii=False), encoding="utf-8")
    elif kind.startswith("jsonl."):
        path = src / f"corpus.{kind}"
        path.write_bytes(COMPRESS["." + kind.split(".", 1)[1]](jsonl_text(recs).encode("utf-8")))
    else:
        raise AssertionError(kind)
    return path


KINDS = ["parquet-one-group", "parquet-uneven", "arrow-stream", "arrow-file", "json-list",
         "jsonl.gz", "jsonl.xz", "jsonl.bz2"] + (["jsonl.zst"] if ".zst" in COMPRESS else [])


def read(cfg: dict, engine: str, work: Path):
    with Engine(**{**cfg["engine"], "engine": engine}) as eng:
        parts, origins, bad, n = read_partitions(plan_sources(cfg), cfg, eng, work)
        frames = eng.gather(parts)
    return frames, bad, n


@pytest.mark.parametrize("kind", KINDS)
def test_one_file_of_every_format_is_read_as_bounded_partitions(tmp_path, kind):
    recs = rows(5 * P)                                   # 80 rows: five partitions' worth in one file
    write_kind(tmp_path / "src", kind, recs)
    cfg = cfg_of(tmp_path)
    ref, _, ref_bad = load_sources(cfg)                  # the driver-side reference read (whole file)
    frames, bad, n = read(cfg, "local", tmp_path / "work")
    sizes = [len(f) for f in frames]
    assert n == 80 and sum(sizes) == 80
    assert max(sizes) <= P and len(frames) >= 5, sizes  # before: one partition of 80 rows
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), ref)
    assert (bad.skipped, bad.examples) == (ref_bad.skipped, ref_bad.examples)


@pytest.mark.parametrize("kind", ["parquet-one-group", "jsonl.gz"])
def test_on_a_cluster_the_big_file_is_spread_over_the_workers(tmp_path, kind):
    recs = rows(5 * P)
    write_kind(tmp_path / "src", kind, recs)
    cfg = cfg_of(tmp_path, "dask")
    ref, _, _ = load_sources(cfg)
    frames, _, n = read(cfg, "dask", tmp_path / "work")
    sizes = [len(f) for f in frames]
    assert n == 80 and max(sizes) <= P and len(frames) >= 5, sizes
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), ref)


@pytest.mark.parametrize("kind", ["parquet-one-group", "jsonl.gz", "json-list", "arrow-file"])
def test_the_outputs_are_the_bytes_of_the_same_rows_in_plain_jsonl(tmp_path, kind):
    recs = rows(5 * P)
    write_kind(tmp_path / "plain" / "src", "jsonl", recs)
    write_kind(tmp_path / "other" / "src", kind, recs)
    curate(cfg_of(tmp_path / "plain"))
    rep = curate(cfg_of(tmp_path / "other"))
    a, b = outputs(tmp_path / "plain"), outputs(tmp_path / "other")
    assert a == b and len(a) >= 5 and rep["rows_read"] == 80
    assert rep["bad_lines"] == {"skipped": 0, "examples": []}            # a clean read: the report as before
    assert not (tmp_path / "other" / "dropped" / "00_bad_lines.jsonl").exists()
    frames, _, _ = read(cfg_of(tmp_path / "other"), "local", tmp_path / "work")   # ... from bounded partitions
    assert max(len(f) for f in frames) <= P and len(frames) >= 5


def test_dask_run_of_a_one_group_parquet_gives_the_bytes_of_plain_jsonl(tmp_path):
    recs = rows(5 * P)
    write_kind(tmp_path / "plain" / "src", "jsonl", recs)
    write_kind(tmp_path / "other" / "src", "parquet-one-group", recs)
    curate(cfg_of(tmp_path / "plain"))
    curate(cfg_of(tmp_path / "other", "dask"))
    assert outputs(tmp_path / "plain") == outputs(tmp_path / "other")
    frames, _, _ = read(cfg_of(tmp_path / "other", "dask"), "dask", tmp_path / "work")
    assert max(len(f) for f in frames) <= P and len(frames) >= 5


def test_parquet_row_groups_of_uneven_sizes_keep_their_row_numbers(tmp_path):
    recs = rows(5 * P)
    recs[44].pop("code")                                 # in the 40-row group, file row 44: a bad record
    write_kind(tmp_path / "src", "parquet-uneven", recs)  # row groups of 3, 40, 1, 17, 19 rows
    cfg = cfg_of(tmp_path)
    ref, _, ref_bad = load_sources(cfg)
    frames, bad, n = read(cfg, "local", tmp_path / "work")
    assert n == 79 and max(len(f) for f in frames) <= P, [len(f) for f in frames]
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), ref)
    assert bad.skipped == 1 and bad.examples == ref_bad.examples
    assert bad.examples[0].split("/src/")[1].startswith("corpus.parquet#44: field 'code'")
    with pytest.raises(SourceError, match=r"corpus\.parquet#44: field 'code' is missing"):
        curate(cfg_of(tmp_path, extra=["on_bad_line=error"]))


@pytest.mark.parametrize("suffix", sorted(COMPRESS))
def test_a_bad_line_in_the_middle_of_a_compressed_file_is_named_by_file_and_line(tmp_path, suffix):
    recs = rows(5 * P)
    text = jsonl_text(recs)                              # BOM, CRLF, blank lines at 6 and 42
    lines = text.split("\n")
    lines.insert(49, '{"code": "module x; endmodule", "description": ')       # line 50: cut short
    lines.insert(60, b'{"code": "caf\xe9"}'.decode("latin-1"))                  # line 61: not UTF-8
    data = "\n".join(lines).encode("utf-8").replace("caf\u00e9".encode("utf-8"), b"caf\xe9")
    path = tmp_path / "src" / f"corpus.jsonl{suffix}"
    path.parent.mkdir(parents=True)
    path.write_bytes(COMPRESS[suffix](data))
    with pytest.raises(SourceError, match=rf"corpus\.jsonl{suffix}:50: not valid JSON"):
        curate(cfg_of(tmp_path, extra=["on_bad_line=error"]))
    cfg = cfg_of(tmp_path)
    ref, _, ref_bad = load_sources(cfg)
    frames, bad, n = read(cfg, "local", tmp_path / "work")
    assert n == 80 and max(len(f) for f in frames) <= P and len(frames) >= 5
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), ref)
    assert (bad.skipped, bad.examples) == (ref_bad.skipped, ref_bad.examples)
    assert [e.split("/src/")[1].split(": ")[0] for e in bad.examples] == [f"corpus.jsonl{suffix}:50",
                                                                          f"corpus.jsonl{suffix}:61"]
    assert "byte 0xe9 at column 14" in bad.examples[1]
    damaged = COMPRESS[suffix](data)
    path.write_bytes(damaged[: len(damaged) // 2])       # a truncated download: one line naming the file
    with pytest.raises(SourceError, match=rf"corpus\.jsonl{suffix}: cannot decompress"):
        read(cfg, "local", tmp_path / "work2")


def test_many_small_compressed_files_are_still_packed(tmp_path):
    src = tmp_path / "src"
    tiny_files(src, rows(120), seed=4)
    for f in sorted(src.glob("*.jsonl")):
        (src / (f.name + ".gz")).write_bytes(gzip.compress(f.read_bytes()))
        f.unlink()
    cfg = cfg_of(tmp_path)
    ref, _, _ = load_sources(cfg)
    frames, _, n = read(cfg, "local", tmp_path / "work")
    sizes = [len(f) for f in frames]
    assert n == 120 and max(sizes) <= P
    assert len(frames) <= 120 // P + 12, len(frames)    # packed: not one partition per file (~60 files)
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), ref)


# -- finding 13: skipped bad lines, per reason and every one in the dropped rows -------------------------
def test_skipped_lines_are_counted_per_reason_and_each_written_as_a_dropped_row(tmp_path, caplog):
    recs = rows(40)
    src = tmp_path / "src"
    src.mkdir()
    lines = [json.dumps(r, ensure_ascii=False).encode("utf-8") for r in recs]
    lines.insert(3, b'{"code": "x\xff"}')                               # a.jsonl:4  not UTF-8
    lines.insert(10, b"{not json")                                        # a.jsonl:11 not JSON
    lines.insert(20, json.dumps({"description": recs[0]["description"]}).encode())   # :21 no code
    lines.insert(30, b"[1, 2]")                                           # :31 not an object
    lines.insert(35, b"{also not json")                                   # :36 not JSON
    (src / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (src / "b.jsonl.gz").write_bytes(gzip.compress(b"\n".join(lines[:12]) + b"\n"))   # 2 more: b:4, b:11
    caplog.set_level(logging.WARNING, logger="sft_playbook")
    rep = curate(cfg_of(tmp_path))
    assert rep["bad_lines"]["skipped"] == 7
    # the one path the warning gives is where the file is after the run (not the removed work folder)
    said = [r.getMessage() for r in caplog.records if "bad input line" in r.getMessage()]
    assert len(said) == 1 and said[0].endswith(f"every one in {tmp_path / 'dropped' / '00_bad_lines.jsonl'} when the run ends")
    assert rep["bad_lines"]["by_reason"] == {"not valid UTF-8": 2, "not valid JSON": 3,
                                             "field 'code' is missing or not a string": 1,
                                             "expected a JSON object, got list": 1}
    got = read_jsonl(tmp_path / "dropped" / "00_bad_lines.jsonl")
    assert [g["where"] for g in got] == ["a.jsonl:4", "a.jsonl:11", "a.jsonl:21", "a.jsonl:31", "a.jsonl:36",
                                         "b.jsonl.gz:4", "b.jsonl.gz:11"]
    assert {g["stage"] for g in got} == {"read"} and {g["source"] for g in got} == {"aw"}
    assert got[0]["reason"] == "not valid UTF-8" and "0xff" in got[0]["detail"]
    md = (tmp_path / "out" / "curation_report.md").read_text()
    assert "not valid JSON: 3" in md


# -- finding 19: a hub source's records.jsonl is converted once per download -----------------------------
def test_hub_records_jsonl_is_written_once_per_download(tmp_path, monkeypatch, caplog):
    from hub_stub import HubStub
    from test_curate_pipeline import hub_cfg, parquet_bytes

    caplog.set_level(logging.INFO, logger="sft_playbook")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_testtoken123")
    base, _ = fx.records()
    files = {"data/train-00000-of-00001.parquet": parquet_bytes(base)}
    target = tmp_path / "raw" / "mg-verilog" / "records.jsonl"
    with HubStub("GaTech-EIC/MG-Verilog", files, require_token="hf_testtoken123") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        curate(hub_cfg(tmp_path))
        first = target.stat()
        out1 = outputs_of(tmp_path / "out")
        curate(hub_cfg(tmp_path))
        again = target.stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)   # not rewritten
    assert "not converted again" in caplog.text
    assert outputs_of(tmp_path / "out") == out1
    assert len(read_jsonl(target)) == 14
    # a new download (other files) converts again
    files = {"data/train-00000-of-00001.parquet": parquet_bytes(base[:9])}
    with HubStub("GaTech-EIC/MG-Verilog", files, commit="b" * 40, require_token="hf_testtoken123") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        curate(hub_cfg(tmp_path))
    assert len(read_jsonl(target)) == 9


def outputs_of(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith("curation_timings")}


def test_staged_parts_hold_at_most_a_chunk(tmp_path):
    """The staging tasks write parts of ``chunk`` lines/records/rows, whatever the file's size."""
    from sft_playbook.curate import shards as sh

    recs = rows(50)
    gz = write_kind(tmp_path / "a", "jsonl.gz", recs)
    parts = sh.stage_lines(str(gz), 16, str(tmp_path / "parts-gz"))
    assert [p[2] for p in parts] == [16, 16, 16, 4] and [p[1] for p in parts] == [1, 17, 33, 49]   # 52 lines
    assert b"".join(Path(p[0]).read_bytes() for p in parts) == gzip.decompress(gz.read_bytes())
    lst = write_kind(tmp_path / "b", "json-list", recs)
    parts = sh.stage_records(str(lst), 16, str(tmp_path / "parts-list"))
    assert [(p[1], p[2]) for p in parts] == [(0, 16), (16, 16), (32, 16), (48, 2)]
    pq_file = write_kind(tmp_path / "c", "parquet-one-group", recs)
    parts = sh.stage_row_group(str(pq_file), 0, 0, 16, str(tmp_path / "parts-pq"))
    assert [(p[1], p[2]) for p in parts] == [(0, 16), (16, 16), (32, 16), (48, 2)]
    assert sum(sh.arrow_rows(p[0], 0, 99) == pq.read_table(pq_file).slice(p[1], p[2]).to_pylist() for p in parts) == 4
    assert os.path.basename(parts[0][0]).endswith(".arrow")


# -- the real slice (CC-BY-NC-SA-4.0, read from ../shared, never copied into the repository) --------------
REAL = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "mg-verilog-course-slice" / "mg_verilog_high_level.jsonl"
REAL = REAL if REAL.is_file() else Path(__file__).resolve().parents[3] / "shared" / "realdata" / "mg-verilog-course-slice" / "mg_verilog_high_level.jsonl"


@pytest.mark.skipif(not REAL.is_file(), reason="the real MG-Verilog slice (../shared/realdata) is not next to this checkout")
def test_the_real_slice_as_gz_and_one_group_parquet_reads_as_the_plain_file_in_bounded_partitions(tmp_path):
    recs = read_jsonl(REAL)
    variants = {"plain": None, "gz": None, "parquet": None}
    (tmp_path / "plain" / "src").mkdir(parents=True)
    os.symlink(REAL, tmp_path / "plain" / "src" / "slice.jsonl")
    (tmp_path / "gz" / "src").mkdir(parents=True)
    (tmp_path / "gz" / "src" / "slice.jsonl.gz").write_bytes(gzip.compress(REAL.read_bytes()))
    (tmp_path / "parquet" / "src").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{"id": r["id"], "code": r["code"], "description": json.dumps(r["description"])}
                                         for r in recs]), tmp_path / "parquet" / "src" / "slice.parquet",
                   row_group_size=len(recs))
    for name in variants:
        cfg = config(tmp_path / name, "local", ["engine.partition_rows=256", "levels=[high_level]"])
        (tmp_path / name / "sources.jsonl").write_text(json.dumps(
            {"name": "mgv", "path": str(tmp_path / name / "src"), "levels": {"high_level": "high_level_global_summary"},
             "license": "CC-BY-NC-SA-4.0"}) + "\n")
        frames, bad, n = read(cfg, "local", tmp_path / name / "work")
        assert bad.skipped == 0 and n == len(recs) == 1671, name
        assert max(len(f) for f in frames) <= 256 and len(frames) >= len(recs) // 256, (name, [len(f) for f in frames])
        variants[name] = pd.concat(frames, ignore_index=True)
    pd.testing.assert_frame_equal(variants["gz"], variants["plain"])
    pd.testing.assert_frame_equal(variants["parquet"], variants["plain"])


def test_a_missing_bad_lines_file_is_not_installed_silently(tmp_path):
    """Workers that do not see the work folder write 00_bad_lines.jsonl elsewhere: the driver names it."""
    from sft_playbook.curate.pipeline import PipelineError, verify_dropped_files

    files = tmp_path / "dropped-files"
    files.mkdir()
    verify_dropped_files(files, [], tmp_path, 0)
    with pytest.raises(PipelineError, match=r"00_bad_lines\.jsonl is missing .* 3 row"):
        verify_dropped_files(files, [], tmp_path, 3)
    (files / "00_bad_lines.jsonl").write_text('{"id": null}\n')
    verify_dropped_files(files, [], tmp_path, 3)
