"""The split files, the report and the dropped-row files are one output set: a run that fails
(bad input, every row dropped, a write that fails late) leaves the previous run's set byte for byte
as it was, dropped rows included; resume with another dropped_dir still gets every pass's dropped rows."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import curate_fixtures as fx
from sft_playbook.config import load_config
from sft_playbook.curate import pipeline
from sft_playbook.curate.pipeline import curate
from sft_playbook.curate.report import TIMINGS_FILES
from sft_playbook.io import OutputError
from sft_playbook.paths import REPO_ROOT

LEVELS_MAP = {"high_level": "high_level_global_summary", "detailed": "detailed_global_summary",
              "block": "block_summary"}


def cfg_for(tmp: Path, extra=(), dropped="dropped"):
    (tmp / "sources.jsonl").write_text(json.dumps({"name": "fx", "path": str(tmp / "src"), "levels": LEVELS_MAP}) + "\n")
    bench = fx.write_benchmark(tmp / "bench")
    return load_config(REPO_ROOT / "configs/curate.yaml", [
        f"sources={tmp / 'sources.jsonl'}", f"output_dir={tmp / 'out'}", f"dropped_dir={tmp / dropped}",
        f"decontaminate.benchmark_dir={bench}", "engine.engine=local", "engine.partition_rows=4",
        "pii.backend=regex", f"work_dir={tmp / 'work'}", *extra])


def tree(folder: Path, timings: bool = True) -> dict[str, bytes]:
    """Every file's bytes under ``folder``; ``timings=False``: without the timings files (they
    differ between two good runs by design)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and (timings or p.name not in TIMINGS_FILES)}


def good_run(tmp: Path):
    rows, _ = fx.records()
    fx.write_jsonl(tmp / "src" / "data.jsonl", rows)
    curate(cfg_for(tmp))
    (tmp / "dropped" / "my-notes.txt").write_text("mine\n")      # a user's file in dropped_dir stays
    out, dropped = tree(tmp / "out"), tree(tmp / "dropped")
    assert any(k.endswith(".jsonl") and k[:2].isdigit() for k in dropped) and any(dropped.values())
    return out, dropped


def _bad_line(tmp, monkeypatch):
    with open(tmp / "src" / "data.jsonl", "ab") as fh:
        fh.write(b'{"id": "zz", "code": \n')
    return []


def _all_dropped(tmp, monkeypatch):
    return ["rules.word_count.min_words=1000"]


def _merge_fails(tmp, monkeypatch):
    def boom(*a, **k):
        raise OutputError(28, "no space left on device writing x")
    monkeypatch.setattr(pipeline, "merge_split", boom)
    return []


def _report_fails(tmp, monkeypatch):
    def boom(*a, **k):
        raise OutputError(28, "no space left on device writing curation_report.md")
    monkeypatch.setattr(pipeline, "_write_outputs", boom)
    return []


def _dropped_install_fails(tmp, monkeypatch):
    real = pipeline.shutil.move

    def move(src, dst):
        if "dropped-files" in str(src) and "03_" in Path(src).name:
            raise OSError(28, "No space left on device")
        return real(src, dst)
    monkeypatch.setattr(pipeline.shutil, "move", move)
    return []


def _timings_fail(tmp, monkeypatch):
    def boom(*a, **k):
        raise OutputError(28, "no space left on device writing curation_timings.md")
    monkeypatch.setattr(pipeline, "write_timings", boom)
    return []


@pytest.mark.parametrize("fail", [_bad_line, _all_dropped, _merge_fails, _report_fails, _timings_fail,
                                  _dropped_install_fails])
def test_a_failed_run_leaves_the_previous_output_set_whole(tmp_path, monkeypatch, fail):
    out, dropped = good_run(tmp_path)
    rows, _ = fx.records()
    with open(tmp_path / "src" / "data.jsonl", "a") as fh:   # the failed run would drop other rows
        fh.write(json.dumps({**rows[0], "id": "extra-copy"}) + "\n")
    extra = fail(tmp_path, monkeypatch)
    with pytest.raises(Exception):  # noqa: B017 - each kind of failure raises its own error
        curate(cfg_for(tmp_path, extra))
    assert tree(tmp_path / "out") == out
    assert tree(tmp_path / "dropped") == dropped


def test_resume_with_another_dropped_dir_gets_every_pass_dropped_rows(tmp_path, monkeypatch):
    out, dropped = good_run(tmp_path)
    ref = {k: v for k, v in dropped.items() if k != "my-notes.txt"}
    _merge_fails(tmp_path, monkeypatch)
    with pytest.raises(OutputError):
        curate(cfg_for(tmp_path, ["resume=true"]))          # all passes ran, the end failed
    assert (tmp_path / "work" / "manifest.json").is_file()  # kept for resume
    assert tree(tmp_path / "dropped") == dropped and not (tmp_path / "dropped2").exists()
    monkeypatch.undo()
    curate(cfg_for(tmp_path, ["resume=true"], dropped="dropped2"))
    assert tree(tmp_path / "dropped2") == ref
    assert tree(tmp_path / "out", timings=False) == {k: v for k, v in out.items() if Path(k).name not in TIMINGS_FILES}
    assert tree(tmp_path / "dropped") == dropped                # the old folder is not touched


def test_a_failed_run_says_where_its_finished_passes_are_kept(tmp_path, monkeypatch, caplog):
    import logging

    rows, _ = fx.records()
    fx.write_jsonl(tmp_path / "src" / "data.jsonl", rows)

    def boom(*a, **k):
        raise pipeline.PipelineError("merge failed")
    monkeypatch.setattr(pipeline, "merge_split", boom)
    with caplog.at_level(logging.WARNING):
        assert pipeline.main(cfg_for(tmp_path), None) == 1
    said = [r.getMessage() for r in caplog.records if "finished pass(es)" in r.getMessage()]
    assert len(said) == 1 and str(tmp_path / "work") in said[0] and "resume=true" in said[0]
    caplog.clear()
    fx.write_jsonl(tmp_path / "src" / "data.jsonl", [{**rows[0], "code": 5}])   # fails while reading
    with caplog.at_level(logging.WARNING):
        assert pipeline.main(cfg_for(tmp_path), None) == 1
    assert not [r for r in caplog.records if "finished pass(es)" in r.getMessage()]
