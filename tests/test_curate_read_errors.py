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
