"""Many small source files are packed (issue 15, review 15b finding 3): consecutive small shards of a
source are read by one task into one partition of about ``partition_rows`` rows, not one partition
per file (1,000 files of 2 rows took 54x the time of one file). Ids ``<name>-<n>``, ``file:line`` in
errors, the row order and so every output byte stay those of the unpacked read."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest

import curate_fixtures as fx
from sft_playbook.curate import pipeline
from sft_playbook.curate import shards as sh
from sft_playbook.curate.engine import Engine
from sft_playbook.curate.pipeline import curate, load_sources, plan_sources, read_partitions
from sft_playbook.curate.sources import SourceError
from test_curate_scale import awkward_source, config

BOM = "\ufeff"
SKIP = ("curation_timings.json", "curation_timings.md", "curation_report.json")


def rows(n: int) -> list[dict]:
    """``n`` distinct records of the fixture's shape, without ids (so ids are ``<name>-<n>``)."""
    base, _ = fx.records()
    out = []
    for i in range(n):
        r = dict(base[i % len(base)])
        r.pop("id", None)
        r["code"] = r["code"].replace("module ", f"module v{i}_", 1)
        out.append(r)
    return out


def tiny_files(folder: Path, recs: list[dict], seed: int = 3) -> int:
    """``recs`` spread over files of 1-3 rows, as scraped RTL (one file per module): some with a
    BOM, some without a final newline, some with CRLF, empty files in between. Returns the file count."""
    rnd = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    i = k = 0
    while i < len(recs):
        take = rnd.randint(1, 3)
        lines = [json.dumps(r, ensure_ascii=False) for r in recs[i:i + take]]
        nl = "\r\n" if k % 5 == 2 else "\n"
        text = (BOM if k % 4 == 1 else "") + nl.join(lines) + ("" if k % 3 == 0 else nl)
        (folder / f"t{k:04d}.jsonl").write_text(text, encoding="utf-8", newline="")
        k += 1
        if k % 50 == 7:                                     # an empty file among them
            (folder / f"t{k:04d}.jsonl").write_bytes(b"")
            k += 1
        i += take
    return k


def outputs(root: Path) -> dict:
    return {(kind, p.relative_to(root / kind)): p.read_bytes()
            for kind in ("out", "dropped") for p in sorted((root / kind).rglob("*"))
            if p.is_file() and p.name not in SKIP}


def test_pack_shards_groups_consecutive_shards_of_a_source():
    sizes = [(0, 2, 50), (0, 3, 60), (0, 0, 0), (0, 10, 900), (0, 40, 9000), (0, 1, 9),
             (1, 1, 9), (1, None, 3 * sh.PACK_ROW_BYTES), (1, None, 20 * sh.PACK_ROW_BYTES), (1, 2, 40)]
    assert sh.pack_shards(sizes, 16) == [[0, 1, 2, 3], [4], [5], [6, 7], [8], [9]]
    assert sh.pack_shards(sizes, 1) == [[i] for i in range(10)]
    assert sh.pack_shards([], 16) == []


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_many_tiny_files_give_the_bytes_of_one_file_in_few_partitions(tmp_path, engine):
    recs = rows(600)
    n_files = tiny_files(tmp_path / "tiny" / "src", recs)
    assert n_files > 250
    one = tmp_path / "one" / "src"
    one.mkdir(parents=True)
    (one / "all.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    extra = ["engine.n_workers=2"] if engine == "dask" else []
    cfg = config(tmp_path / "tiny", engine, extra)           # partition_rows=20: shards of 16 lines
    with Engine(**{**cfg["engine"], "engine": engine}) as eng:
        parts, _, _, n = read_partitions(plan_sources(cfg), cfg, eng, tmp_path / "work")
        sizes = [len(f) for f in eng.gather(parts)]
    assert n == 600 and sum(sizes) == 600
    assert len(parts) <= 600 // 16 + 10, len(parts)        # packed: not one partition per file (>300)
    assert max(sizes) <= 16
    curate(cfg)
    curate(config(tmp_path / "one", engine, extra))
    a, b = outputs(tmp_path / "tiny"), outputs(tmp_path / "one")
    assert a == b and len(a) >= 5


def test_a_bad_line_in_a_packed_tiny_file_is_named_by_its_file_and_line(tmp_path):
    src = tmp_path / "src"
    tiny_files(src, rows(60))
    target = sorted(src.glob("t*.jsonl"))[11]
    text = target.read_text(encoding="utf-8")
    target.write_text(text + ("" if text.endswith("\n") else "\n") + "{not json\n", encoding="utf-8")
    line = text.count("\n") + (0 if text.endswith("\n") else 1) + 1
    with pytest.raises(SourceError, match=rf"{target.name}:{line}: not valid JSON"):
        curate(config(tmp_path, "local", ["on_bad_line=error"]))
    rep = curate(config(tmp_path, "local"))
    assert [e.split("/src/")[1].split(": ")[0] for e in rep["bad_lines"]["examples"]] == [f"{target.name}:{line}"]


def test_big_and_small_files_mixed_read_as_unpacked_in_fewer_partitions(tmp_path, monkeypatch):
    src = tmp_path / "src"
    awkward_source(src)                                     # a 70-row jsonl, parquet row groups, a JSON list, ...
    tiny_files(src, rows(90), seed=5)                       # t*.jsonl sort after them
    (src / "e_small_list.json").write_text(json.dumps(rows(2)), encoding="utf-8")
    cfg = config(tmp_path, "local")
    ref, _, bad = load_sources(cfg)                         # the driver-side reference read
    with Engine(**{**cfg["engine"], "engine": "local"}) as eng:
        parts, _, got_bad, n = read_partitions(plan_sources(cfg), cfg, eng, tmp_path / "work")
        packed = eng.gather(parts)
    pd.testing.assert_frame_equal(pd.concat(packed, ignore_index=True), ref)
    assert (got_bad.skipped, got_bad.examples) == (bad.skipped, bad.examples) and n == len(ref)
    curate(cfg)
    a = outputs(tmp_path)
    monkeypatch.setattr(pipeline, "pack_shards", lambda sizes, rows: [[i] for i in range(len(sizes))])
    with Engine(**{**cfg["engine"], "engine": "local"}) as eng:
        unpacked, _, _, _ = read_partitions(plan_sources(cfg), cfg, eng, tmp_path / "work2")
    assert len(packed) < len(unpacked) // 3, (len(packed), len(unpacked))
    cfg2 = config(tmp_path, "local")
    for key in ("output_dir", "dropped_dir"):
        cfg2[key] = str(tmp_path / ("u" + key))
    curate(cfg2)
    b = {(kind, p.relative_to(tmp_path / ("u" + key))): p.read_bytes()
         for kind, key in (("out", "output_dir"), ("dropped", "dropped_dir"))
         for p in sorted((tmp_path / ("u" + key)).rglob("*")) if p.is_file() and p.name not in SKIP}
    assert a == b and len(a) >= 5
