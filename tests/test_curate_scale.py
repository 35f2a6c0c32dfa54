"""Curation that scales out: the workers read the shards and write the outputs; the driver sees
ids, keys, counts and examples, never the rows (issue 15).

The references here are the driver-side readers and writers the pipeline used before
(``load_sources`` -> one frame, ``split.merge``): the distributed path must give the same ids,
the same rows and the same bytes.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest

import curate_fixtures as fx
from sft_playbook.config import load_config
from sft_playbook.curate import pipeline, sources
from sft_playbook.curate.engine import Engine
from sft_playbook.curate.pipeline import curate, load_sources, plan_sources, read_partitions
from sft_playbook.curate.report import TIMINGS_FILES, TIMINGS_LINE
from sft_playbook.curate.sources import SourceError
from sft_playbook.curate.split import SPLITS, assign_splits, merge, split_ranks, split_sizes
from sft_playbook.curate.writers import merge_split, part_name, write_split_parts
from sft_playbook.paths import REPO_ROOT

LEVELS_MAP = {"high_level": "high_level_global_summary", "detailed": "detailed_global_summary",
              "block": "block_summary"}
BOM = "\ufeff"


def awkward_source(folder: Path) -> None:
    """One source spread over files of every kind, in a folder whose sorted order is not the
    order of creation: a jsonl with a BOM, blank lines, a bad line, rows with and without ids;
    a parquet file of several row groups; a JSON list; a second jsonl."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, _ = fx.records()
    folder.mkdir(parents=True, exist_ok=True)
    many = [dict(r, id=None if i % 3 else f"own-{i}") for i, r in enumerate(rows * 5)]   # 70 rows
    lines = [json.dumps({k: v for k, v in r.items() if v is not None}, ensure_ascii=False) for r in many]
    lines.insert(7, "")
    lines.insert(20, "{not json")
    lines.insert(33, "   ")
    (folder / "b_main.jsonl").write_text(BOM + "\n".join(lines) + "\n", encoding="utf-8")
    table = pa.Table.from_pylist([{"code": r["code"], "description": json.dumps(r["description"])} for r in rows * 3])
    pq.write_table(table, folder / "a_rows.parquet", row_group_size=9)     # 42 rows in 5 row groups
    (folder / "c_list.json").write_text(json.dumps([{"code": r["code"], "description": r["description"]}
                                                    for r in rows[:5]]), encoding="utf-8")
    (folder / "d_tail.jsonl").write_text("\n".join(json.dumps({"code": r["code"], "description": r["description"]})
                                                   for r in rows[3:9]), encoding="utf-8")   # no final newline


def config(tmp: Path, engine: str, extra=()) -> dict:
    (tmp / "sources.jsonl").write_text(json.dumps({"name": "aw", "path": str(tmp / "src"), "levels": LEVELS_MAP}) + "\n")
    bench = fx.write_benchmark(tmp / "bench")
    return load_config(REPO_ROOT / "configs/curate.yaml", [
        f"sources={tmp / 'sources.jsonl'}", f"output_dir={tmp / 'out'}", f"dropped_dir={tmp / 'dropped'}",
        f"decontaminate.benchmark_dir={bench}", f"engine.engine={engine}", "engine.partition_rows=20",
        "pii.backend=regex", "on_bad_line=skip", *extra])


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_workers_read_the_same_rows_ids_and_order_as_the_driver_did(tmp_path, engine):
    awkward_source(tmp_path / "src")
    cfg = config(tmp_path, engine)
    ref, origins, bad = load_sources(cfg)                  # the old path: every row in this process
    assert len(ref) == 70 + 42 + 5 + 6 and bad.skipped == 1
    with Engine(**{**cfg["engine"], "engine": engine}) as eng:
        parts, got_origins, got_bad, n = read_partitions(plan_sources(cfg), cfg, eng, tmp_path / "work")
        assert len(parts) > 6                               # several shards, from every file kind
        frames = eng.gather(parts)
    got = pd.concat(frames, ignore_index=True)
    pd.testing.assert_frame_equal(got, ref)
    assert got_origins == origins and n == len(ref)
    assert (got_bad.skipped, got_bad.examples) == (bad.skipped, bad.examples)
    # ids: own ids kept, the others <name>-<index over the source's files in sorted order>
    assert list(ref["id"][:3]) == ["aw-0", "aw-1", "aw-2"] and "own-0" in set(ref["id"])


def test_a_bad_line_in_a_shard_names_the_file_and_its_own_line(tmp_path):
    awkward_source(tmp_path / "src")
    cfg = config(tmp_path, "local", ["on_bad_line=error"])
    with pytest.raises(SourceError, match=r"b_main\.jsonl:21: not valid JSON"):
        curate(cfg)


def test_repeated_ids_across_shards_are_found_on_the_workers(tmp_path):
    awkward_source(tmp_path / "src")
    extra = tmp_path / "src" / "e_dup.jsonl"
    rows, _ = fx.records()
    extra.write_text(json.dumps({"id": "own-3", "code": rows[0]["code"], "description": rows[0]["description"]}) + "\n")
    cfg = config(tmp_path, "local")
    with pytest.raises(SourceError, match=r"e_dup\.jsonl:1: id 'own-3' \(source 'aw'\) repeats the id of .*b_main\.jsonl:"):
        curate(cfg)


def test_the_driver_never_reads_a_row(tmp_path, monkeypatch):
    """On a LocalCluster the readers run in the worker processes: a driver whose row readers
    fail still curates (the old pipeline read every row here and fails this test)."""
    awkward_source(tmp_path / "src")
    cfg = config(tmp_path, "dask", ["engine.n_workers=2"])
    awkward_source(tmp_path / "ref" / "src")
    ref_cfg = config(tmp_path / "ref", "local")
    curate(ref_cfg)

    def no_rows_here(*a, **k):
        raise AssertionError("the driver read rows")
    for mod in (sources, pipeline):
        for name in ("load_records", "records_frame", "_iter_file", "iter_jsonl"):
            if hasattr(mod, name):
                monkeypatch.setattr(mod, name, no_rows_here)
    # the driver ships the readers and writers to the workers (by reference): patching those names
    # here would ship the patch; what must not run here is any row reader or writer of its own
    monkeypatch.setattr(pd.DataFrame, "to_dict", no_rows_here)    # no driver-side writer either
    curate(cfg)
    monkeypatch.undo()
    for f in sorted((tmp_path / "ref" / "out").rglob("*.jsonl")):
        rel = f.relative_to(tmp_path / "ref" / "out")
        assert (tmp_path / "out" / rel).read_bytes() == f.read_bytes(), rel
    for f in sorted((tmp_path / "ref" / "dropped").glob("*.jsonl")):
        assert (tmp_path / "dropped" / f.name).read_bytes() == f.read_bytes(), f.name
    assert not (tmp_path / ".out.work").exists()           # the part files are gone


def test_split_ranks_agree_with_assign_splits():
    rng = random.Random(7)
    alphabet = "ab-_09Z\u00e9\u00df\u4e00\U0001f600"
    fractions = {"train": 0.8, "validation": 0.15, "test": 0.05}
    for n in (0, 1, 2, 7, 20, 333):
        ids = list({"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(n)})
        ranks = split_ranks(ids, 42)
        n_train, n_val = split_sizes(len(ids), fractions)
        by_rank = sorted(zip(ranks.tolist(), ids))
        names = ["train" if r < n_train else "validation" if r < n_train + n_val else "test" for r, _ in by_rank]
        assert list(zip([i for _, i in by_rank], names)) == assign_splits(ids, 42, fractions)


def test_split_part_files_merge_into_the_bytes_the_driver_wrote(tmp_path):
    rows, _ = fx.records()
    df = pd.DataFrame({"id": [f"x{i:03d}" if i % 2 else f"\u00e9{i}" for i in range(60)],
                       "code": [rows[i % len(rows)]["code"] + f"// {i}" for i in range(60)],
                       "header": [f"module m{i} (input a);" if i % 5 else "" for i in range(60)],
                       **{f"desc_{l}": [f"{l} summary {i} \u2014 x" for i in range(60)] for l in LEVELS_MAP}})
    fractions = {"train": 0.8, "validation": 0.15, "test": 0.05}
    sizes = merge(df, list(LEVELS_MAP), tmp_path / "ref", 42, fractions)
    ranks = split_ranks(df["id"].tolist(), 42)
    n_train, n_val = split_sizes(len(df), fractions)
    bounds = [0, 13, 14, 40, 60]                      # uneven partitions, one of a single row
    for p in range(len(bounds) - 1):
        write_split_parts(df.iloc[bounds[p]:bounds[p + 1]], ranks[bounds[p]:bounds[p + 1]], p, n_train, n_val,
                          list(LEVELS_MAP), str(tmp_path / "parts"))
    for lvl in LEVELS_MAP:
        for s in SPLITS:
            n = merge_split([str(tmp_path / "parts" / lvl / s / f"{part_name(p)}.jsonl") for p in range(4)],
                            [str(tmp_path / "parts" / "ranks" / s / f"{part_name(p)}.npy") for p in range(4)],
                            str(tmp_path / "new" / lvl / f"{s}.jsonl"))
            assert n == sizes[lvl][s]
            assert (tmp_path / "new" / lvl / f"{s}.jsonl").read_bytes() == (tmp_path / "ref" / lvl / f"{s}.jsonl").read_bytes()


def test_a_work_folder_that_is_not_ours_is_never_emptied(tmp_path):
    awkward_source(tmp_path / "src")
    mine = tmp_path / "precious"
    mine.mkdir()
    (mine / "keep.txt").write_text("x")
    cfg = config(tmp_path, "local", [f"work_dir={mine}"])
    with pytest.raises(pipeline.PipelineError, match="not a curation work folder"):
        curate(cfg)
    assert (mine / "keep.txt").read_text() == "x"


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_exact_dedup_shuffled_by_hash_keeps_the_first_in_input_order(engine):
    """The keys stay on the workers, bucketed by hash; the decision is the driver-side one: per
    cluster of equal normalised text, every row but the first in input order is dropped."""
    from sft_playbook.curate.base import DETAIL, REASON
    from sft_playbook.curate.dedup import ExactDedup

    rng = random.Random(3)
    texts = [f"text {rng.randrange(40)}  body" for _ in range(300)]     # many clusters, across partitions
    df = pd.DataFrame({"id": [f"r{i}" for i in range(300)], "_order": range(300),
                       "text": [t.replace("  ", " " * rng.randint(1, 3)) for t in texts]})
    first: dict[str, str] = {}
    expected = {}
    for i, t in zip(df["id"], texts):
        key = " ".join(t.split())
        if key in first:
            expected[i] = first[key]
        else:
            first[key] = i
    with Engine(engine=engine, n_workers=2, partition_rows=37) as eng:
        parts = eng.partitions(df)
        stage = ExactDedup("text", normalize="text")
        stage.fit(parts, eng, eng.map(stage.keys, parts))
        state = stage.state()
        assert (state is None) == (engine == "local")
        out = pd.concat(eng.gather(eng.map(_apply_with_state, parts, [stage] * len(parts), [state] * len(parts))))
    got = {i: d.removeprefix("same code as ") for i, r, d in zip(out["id"], out[REASON], out[DETAIL]) if r}
    assert got == expected
    assert stage.summary()["clusters"] == len(set(expected.values())) > 10
    assert stage.summary()["rows_in_clusters"] == len(expected) + len(set(expected.values()))


def _apply_with_state(part, stage, state):
    if state is not None:
        stage.set_state(state)
    return stage(part)


def test_a_killed_run_resumes_without_redoing_finished_passes(tmp_path):
    """kill -9 a curate_data.py run once two passes are checkpointed; resume=true redoes only
    the unfinished passes and writes the bytes of an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    awkward_source(tmp_path / "src")
    ref = config(tmp_path, "local")
    curate(ref)
    ref_out = {p.relative_to(tmp_path / "out"): p.read_bytes() for p in (tmp_path / "out").rglob("*")
               if p.is_file() and p.name not in TIMINGS_FILES}          # where the time went: differs by design
    ref_dropped = {p.name: p.read_bytes() for p in (tmp_path / "dropped").glob("*.jsonl")}
    import shutil

    shutil.rmtree(tmp_path / "out")
    shutil.rmtree(tmp_path / "dropped")
    work = tmp_path / "work"
    args = [sys.executable, str(REPO_ROOT / "curate_data.py"), f"sources={tmp_path / 'sources.jsonl'}",
            f"output_dir={tmp_path / 'out'}", f"dropped_dir={tmp_path / 'dropped'}", f"work_dir={work}",
            f"decontaminate.benchmark_dir={ref['decontaminate']['benchmark_dir']}", "engine.engine=local",
            "engine.partition_rows=20", "pii.backend=regex", "on_bad_line=skip"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if len(json.loads((work / "manifest.json").read_text())["passes"]) >= 2:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert not (tmp_path / "out").exists()                     # killed before it wrote anything
    finished = len(json.loads((work / "manifest.json").read_text())["passes"])
    res = subprocess.run([*args, "resume=true"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    not_redone = [l for l in res.stderr.splitlines() if "finished in an earlier run, not redone" in l]
    assert len(not_redone) == finished >= 2
    ran = res.stderr.split("where the time went")[0]           # the log of the run, without the timings table
    assert "stage  1 clean" not in ran and "compiles" not in ran.split("not redone")[-1]
    import re

    assert bool(re.search(r"stage +\d+ exact_dedup", res.stderr)) == (finished == 2)   # the pass after the last saved
    assert re.search(r"stage +\d+ fuzzy_dedup", res.stderr)
    out = {p.relative_to(tmp_path / "out"): p.read_bytes() for p in (tmp_path / "out").rglob("*")
           if p.is_file() and p.name not in TIMINGS_FILES}
    assert out == ref_out
    assert {p.name: p.read_bytes() for p in (tmp_path / "dropped").glob("*.jsonl")} == ref_dropped
    assert not work.exists()                                   # the checkpoints go with a finished run


def test_where_the_time_went_is_logged_and_kept_apart_from_the_report(tmp_path, caplog):
    import logging

    awkward_source(tmp_path / "src")
    cfg = config(tmp_path, "local", [f"timings_file={tmp_path / 'timings.json'}"])
    with caplog.at_level(logging.INFO, logger="sft_playbook.curate"):
        rep = curate(cfg)
    t = json.loads((tmp_path / "timings.json").read_text())
    assert [p["stages"][0] for p in t["passes"]] == ["clean", "module_index", "exact_dedup", "fuzzy_dedup"]
    assert t["passes"][0]["rows_in"] == rep["rows_read"] and t["rows_read"] == rep["rows_read"]
    assert set(t["steps_s"]) >= {"read sources (workers)", "stage passes", "merge splits (workers)", "report"}
    assert all(p["total_s"] >= p["pass_s"] >= 0 for p in t["passes"])
    assert "where the time went" in caplog.text and "rows/s" in caplog.text
    md = (tmp_path / "out" / "curation_report.md").read_text()
    text = json.dumps(rep) + md.replace(TIMINGS_LINE, "")
    assert md.count(TIMINGS_LINE) == 1                          # one fixed line points to the timings files
    assert not any(k in text for k in ("pass_s", "fit_s", "total_s", "steps_s", "time went"))   # no times in it
    assert json.loads((tmp_path / "out" / TIMINGS_FILES[0]).read_text()) == t          # timings_file: a copy
