"""End-to-end tests of the curation pipeline on small fixtures: local engine, a real LocalCluster,
reruns, bad input, an emptied pipeline, and the hub download against a local stand-in server."""
from __future__ import annotations

import hashlib
import io
import json
from functools import partial
from pathlib import Path

import pytest

import curate_fixtures as fx
from hub_stub import HubStub
from sft_playbook.config import load_config
from sft_playbook.curate.base import Stage
from sft_playbook.curate.pipeline import PipelineError, curate, main
from sft_playbook.curate.report import TIMINGS_FILES
from sft_playbook.curate.sources import SourceError
from sft_playbook.paths import REPO_ROOT

LEVELS_MAP = {"high_level": "high_level_global_summary", "detailed": "detailed_global_summary",
              "block": "block_summary"}


def setup_run(tmp: Path, rows=None, engine="local", extra=()):
    if rows is None:
        rows, _ = fx.records()
    fx.write_jsonl(tmp / "src" / "data.jsonl", rows)
    (tmp / "sources.jsonl").write_text(json.dumps({"name": "fx", "path": str(tmp / "src"), "levels": LEVELS_MAP}) + "\n")
    bench = fx.write_benchmark(tmp / "bench")
    return load_config(REPO_ROOT / "configs/curate.yaml", [
        f"sources={tmp / 'sources.jsonl'}", f"output_dir={tmp / 'out'}", f"dropped_dir={tmp / 'dropped'}",
        f"decontaminate.benchmark_dir={bench}", f"engine.engine={engine}", "engine.partition_rows=4",
        "pii.backend=regex", *extra])


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` but the timings files (where the time went: they
    change from run to run, by design; named explicitly)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in TIMINGS_FILES}


def read_jsonl(p: Path) -> list[dict]:
    return [json.loads(l) for l in p.read_text().splitlines()]


def check_fixture_outputs(out: Path, dropped: Path) -> None:
    _, planted = fx.records()
    rep = json.loads((out / "curation_report.json").read_text())
    drops = {}
    for f in sorted(dropped.glob("*.jsonl")):
        for r in read_jsonl(f):
            drops[r["id"]] = r["reason"]
    expected = {"d_exact": "exact_duplicate", "d_near": "near_duplicate", "d_url": "url_heavy",
                "d_short": "too_few_words", "d_junk": "too_few_lines", "d_nocompile": "does_not_compile",
                "r03": "benchmark_code"}
    assert drops == expected
    kept = {r["id"] for lvl in ("high_level", "detailed", "block") for s in ("train", "validation", "test")
            for r in read_jsonl(out / lvl / f"{s}.jsonl")}
    assert kept == {"r00", "r01", "r02", "r04", "r05", "r06", "r07"}
    # repaired rows: PII gone, mojibake fixed
    rows = {r["id"]: r for s in ("train", "validation", "test") for r in read_jsonl(out / "detailed" / f"{s}.jsonl")}
    hl = {r["id"]: r for s in ("train", "validation", "test") for r in read_jsonl(out / "high_level" / f"{s}.jsonl")}
    assert "john.smith" not in rows["r01"]["output"] and "<EMAIL>" in rows["r01"]["output"]
    assert "192.168" not in rows["r01"]["output"] and "<NAME>" in rows["r01"]["output"]
    assert "\u2014" in hl["r06"]["input"] and "â€" not in hl["r06"]["input"]
    assert rep["redactions"] == {"email": 1, "ip": 1, "phone": 1, "name": 1, "secret": 0, "credit_card": 0}
    assert rep["rows_read"] == 14 and rep["rows_kept"] == 7
    assert rep["stages"][-1]["rows_out"] == 7 and rep["decontamination"]["problems_checked"] == 2
    for st in rep["stages"]:
        assert st["rows_in"] - st["rows_out"] == sum(st["dropped"].values())
    # SFT rows: input = summary + header, output = the full module
    for r in rows.values():
        assert set(r) == {"input", "output", "id"}
        header = r["input"].split("Module header:\n", 1)[1]
        assert r["output"].startswith(header) and r["output"].rstrip().endswith("endmodule")
    assert (out / "curation_report.md").read_text().startswith("# Curation report")
    assert (out / "curation_funnel.png").read_bytes()[:4] == b"\x89PNG"


def test_pipeline_local_engine_removes_planted_defects_and_reruns_identically(tmp_path):
    cfg = setup_run(tmp_path)
    src_before = tree_digest(tmp_path / "src")
    curate(cfg)
    check_fixture_outputs(tmp_path / "out", tmp_path / "dropped")
    first = tree_digest(tmp_path / "out")
    curate(cfg)
    assert tree_digest(tmp_path / "out") == first                       # byte-identical rerun
    assert tree_digest(tmp_path / "src") == src_before                  # inputs untouched
    assert not list((tmp_path / "out").rglob("*.tmp"))                  # no temporary files left


def test_pipeline_on_a_real_local_cluster_gives_the_same_bytes(tmp_path):
    local = setup_run(tmp_path / "a")
    curate(local)
    dist = setup_run(tmp_path / "b", engine="dask", extra=["engine.n_workers=2"])
    curate(dist)
    check_fixture_outputs(tmp_path / "b" / "out", tmp_path / "b" / "dropped")
    a, b = tree_digest(tmp_path / "a" / "out"), tree_digest(tmp_path / "b" / "out")
    # the reports differ only in the two tmp folders' names (benchmark path)
    ra, rb = ((tmp_path / x / "out" / "curation_report.json").read_text().replace(str(tmp_path / x), "TMP") for x in "ab")
    assert ra == rb
    a.pop("curation_report.json"), b.pop("curation_report.json")
    assert a == b


def test_bad_line_stops_with_file_and_line_or_is_skipped(tmp_path):
    rows, _ = fx.records()
    cfg = setup_run(tmp_path, rows=rows)
    data = tmp_path / "src" / "data.jsonl"
    lines = data.read_text().splitlines()
    lines.insert(3, '{"code": "x", "description": ')        # truncated JSON on line 4
    lines.insert(6, json.dumps({"code": "module m; endmodule"}))   # no description on line 7
    data.write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError, match=rf"{data}:4: not valid JSON"):
        curate(cfg)
    skip = load_config(REPO_ROOT / "configs/curate.yaml", [f"{k}={v}" for k, v in [
        ("sources", cfg["sources"]), ("output_dir", cfg["output_dir"]), ("dropped_dir", cfg["dropped_dir"]),
        ("decontaminate.benchmark_dir", cfg["decontaminate"]["benchmark_dir"]), ("engine.engine", "local"),
        ("pii.backend", "regex"), ("on_bad_line", "skip")]])
    rep = curate(skip)
    assert rep["bad_lines"]["skipped"] == 2 and rep["rows_read"] == 14
    assert any(":7: field 'description' is missing" in e for e in rep["bad_lines"]["examples"])


def test_missing_field_error_names_the_field(tmp_path):
    rows, _ = fx.records()
    del rows[2]["description"]["block_summary"]
    cfg = setup_run(tmp_path, rows=rows)
    with pytest.raises(SourceError, match=r"data.jsonl:3: field description.block_summary is missing"):
        curate(cfg)


def test_zero_rows_names_the_stage_that_emptied_it(tmp_path, caplog):
    cfg = setup_run(tmp_path, extra=["rules.word_count.min_words=1000"])
    with pytest.raises(PipelineError, match=r"stage 3 \(word_count\) dropped all 14 remaining rows"):
        curate(cfg)
    assert main(cfg, None) == 1 and "word_count" in caplog.text


def test_duplicate_ids_are_an_error(tmp_path):
    rows, _ = fx.records()
    rows[3]["id"] = rows[0]["id"]
    with pytest.raises(SourceError, match=r"data.jsonl:4: id 'r00' \(source '[^']*'\) repeats the id of .*data.jsonl:1"):
        curate(setup_run(tmp_path, rows=rows))


# -- hub download against the local stand-in ---------------------------------------------------------
def parquet_bytes(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([{"code": r["code"], "description": r["description"]} for r in rows])
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def hub_cfg(tmp: Path, extra=()):
    spec = {"name": "mg-verilog", "repo_id": "GaTech-EIC/MG-Verilog", "repo_type": "dataset", "revision": "main",
            "split": "train", "format": "mg-verilog", "code_field": "code", "description_field": "description",
            "levels": LEVELS_MAP}
    (tmp / "sources.jsonl").write_text(json.dumps(spec) + "\n")
    sample = tmp / "sample"
    rows, _ = fx.records()
    fx.write_jsonl(sample / "sample.jsonl", [{"code": r["code"], "description": r["description"]} for r in rows[:8]])
    return load_config(REPO_ROOT / "configs/curate.yaml", [
        f"sources={tmp / 'sources.jsonl'}", f"output_dir={tmp / 'out'}", f"dropped_dir={tmp / 'dropped'}",
        f"sample_dir={sample}", f"download.raw_dir={tmp / 'raw'}", f"decontaminate.benchmark_dir={tmp / 'nobench'}",
        "engine.engine=local", "pii.backend=regex", "download.timeout_s=10", *extra])


@pytest.fixture
def hub_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return monkeypatch


def test_hub_download_through_local_stub(tmp_path, hub_env):
    rows, _ = fx.records()
    files = {"data/train-00000-of-00001.parquet": parquet_bytes(rows),
             "data/test-00000-of-00001.parquet": parquet_bytes(rows[:2]), "README.md": b"# MG-Verilog stand-in\n"}
    with HubStub("GaTech-EIC/MG-Verilog", files, require_token="hf_testtoken123") as hub:
        hub_env.setenv("HF_ENDPOINT", hub.endpoint)
        hub_env.setenv("HF_TOKEN", "hf_testtoken123")
        rep = curate(hub_cfg(tmp_path))
        paths = [p for _, p in hub.requests]
    assert rep["sources"] == [{"name": "mg-verilog", "origin": "hub", "rows": 14, "license": "unknown"}]
    assert any(p.startswith("/api/datasets/GaTech-EIC/MG-Verilog/revision/main") for p in paths)
    assert any("/resolve/" in p and p.endswith("train-00000-of-00001.parquet") for p in paths)
    converted = read_jsonl(tmp_path / "raw" / "mg-verilog" / "records.jsonl")
    assert [r["id"] for r in converted] == [f"mg-verilog-{i}" for i in range(14)]   # stable ids
    assert set(converted[0]) == {"id", "source", "code", "desc_high_level", "desc_detailed", "desc_block"}
    assert rep["rows_kept"] == 8      # no benchmark here: r03 stays
    # second run: the files are there, nothing is downloaded again, the result is the same
    first = tree_digest(tmp_path / "out")
    with HubStub("GaTech-EIC/MG-Verilog", files, require_token="hf_testtoken123") as hub:
        hub_env.setenv("HF_ENDPOINT", hub.endpoint)
        curate(hub_cfg(tmp_path))
        assert not any(m == "GET" and "/resolve/" in p for m, p in hub.requests)
    assert tree_digest(tmp_path / "out") == first


def test_hub_refusal_falls_back_to_the_sample_and_says_so(tmp_path, hub_env, caplog):
    with HubStub("GaTech-EIC/MG-Verilog", {}, require_token="right") as hub:
        hub_env.setenv("HF_ENDPOINT", hub.endpoint)
        hub_env.setenv("HF_TOKEN", "wrong")
        rep = curate(hub_cfg(tmp_path))
        assert rep["sources"][0]["name"] == "mg-verilog-sample" and rep["rows_read"] == 8
        assert "could not download GaTech-EIC/MG-Verilog" in caplog.text and "offline sample" in caplog.text
        assert "wrong" not in caplog.text                                   # the token is never shown
        with pytest.raises(Exception, match="401|Invalid credentials|Repository Not Found"):
            curate(hub_cfg(tmp_path, ["download.fallback_to_sample=false"]))


def test_no_token_means_the_offline_sample(tmp_path, hub_env, caplog):
    hub_env.delenv("HF_TOKEN", raising=False)
    hub_env.setenv("HF_ENDPOINT", "http://127.0.0.1:9")      # would fail if it were contacted
    rep = curate(hub_cfg(tmp_path))
    assert rep["sources"] == [{"name": "mg-verilog-sample", "origin": f"offline sample {tmp_path / 'sample'}", "rows": 8,
                               "license": "Apache-2.0"}]
    assert "no HF_TOKEN" in caplog.text


def test_gpu_engine_without_dask_cuda_is_a_clear_error(tmp_path):
    import importlib.util

    from sft_playbook.curate.engine import Engine, EngineError

    if importlib.util.find_spec("dask_cuda") is not None:
        pytest.skip("dask-cuda is installed here; the error path cannot be shown")
    with pytest.raises(EngineError, match="gpu=true needs dask-cuda"), Engine(engine="dask", gpu=True):
        pass
    with pytest.raises(EngineError, match="engine=dask"), Engine(engine="local", gpu=True):
        pass


@pytest.mark.slow
def test_joining_an_existing_cluster_by_address(tmp_path):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        cfg = setup_run(tmp_path, engine="dask")
        assert main(cfg, type("Args", (), {"scheduler": cluster.scheduler_address})()) == 0
    check_fixture_outputs(tmp_path / "out", tmp_path / "dropped")


def _read_numbers(path: str):
    import pandas as pd

    return pd.read_json(path, lines=True, dtype={"id": str})


def _write_kept(df, index: int, folder: str) -> int:
    Path(folder, f"kept-{index}.jsonl").write_text("".join(f"{i}\n" for i in df["id"]))
    return len(df)


class _Odd(Stage):
    """A row-level stage for the engine test: drops odd numbers, counts the rows it saw."""

    name = "odd"

    def process(self, df):
        df["_n_seen"] = 1
        self.drop(df, df["n"] % 2 == 1, "odd")
        return df


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_run_stages_reads_and_writes_inside_the_passes(tmp_path, engine):
    """run_stages(load=, finish=): the first pass loads each item, the last one consumes its kept
    rows (what the throughput bench uses); a dedup in between gets its keys from the first pass.
    On a cluster we start, the workers' statistical profiler is off."""
    from sft_playbook.curate.dedup import ExactDedup
    from sft_playbook.curate.engine import Engine
    from sft_playbook.curate.pipeline import run_stages

    files = []
    for s in range(3):
        p = tmp_path / f"in{s}.jsonl"
        p.write_text("".join(json.dumps({"id": f"r{k}", "_order": k, "n": k, "text": f"t{k % 4}"}) + "\n"
                             for k in range(s * 5, s * 5 + 5)))
        files.append(str(p))
    out = tmp_path / "out"
    out.mkdir()
    with Engine(engine=engine, n_workers=1) as eng:
        written, stats = run_stages(files, [_Odd(), ExactDedup("text", normalize="text")], eng, None,
                                    load=_read_numbers, finish=partial(_write_kept, folder=str(out)))
        if engine == "dask":
            import dask

            assert set(eng.client.run(lambda: dask.config.get("distributed.worker.profile.enabled")).values()) == {False}
    # 15 rows, 7 odd; even n -> text t0 or t2: r0 (t0), r2 (t2) stay, the other 6 evens are duplicates
    assert [s.rows_in for s in stats] == [15, 8] and [s.rows_out for s in stats] == [8, 2]
    assert stats[0].dropped == {"odd": 7} and stats[0].counters == {"seen": 15}
    assert stats[1].dropped == {"exact_duplicate": 6}
    assert sum(written) == 2
    assert sorted(l for p in out.glob("kept-*.jsonl") for l in p.read_text().split()) == ["r0", "r2"]


def test_run_stages_loads_before_a_global_first_stage(tmp_path):
    """When the first stage is a dedup, its fit sees the loaded partitions, not the file names."""
    from sft_playbook.curate.dedup import ExactDedup
    from sft_playbook.curate.engine import Engine
    from sft_playbook.curate.pipeline import run_stages

    p = tmp_path / "in.jsonl"
    p.write_text("".join(json.dumps({"id": f"r{k}", "_order": k, "n": k, "text": f"t{k % 3}"}) + "\n" for k in range(9)))
    with Engine(engine="local") as eng:
        kept, stats = run_stages([str(p)], [ExactDedup("text", normalize="text")], eng, None, load=_read_numbers)
    assert stats[0].rows_in == 9 and stats[0].dropped == {"exact_duplicate": 6}
    assert sorted(kept["id"]) == ["r0", "r1", "r2"]
