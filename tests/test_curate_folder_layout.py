"""Folder layouts that would lose or recycle rows are refused before any work, with one line:
dropped_dir / work_dir / timings_file inside (or equal to) output_dir or each other (the output-set
swap or the work folder's removal would delete them), and output_dir / dropped_dir / work_dir equal
to or inside a folder a source is read from (the next run would read the outputs as rows)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import curate_fixtures as fx
from sft_playbook.config import load_config
from sft_playbook.curate import pipeline
from sft_playbook.curate.pipeline import PipelineError, curate
from sft_playbook.paths import REPO_ROOT
from test_curate_output_set import LEVELS_MAP


def cfg(tmp: Path, src: Path, **paths):
    (tmp / "sources.jsonl").write_text(json.dumps({"name": "fx", "path": str(src), "levels": LEVELS_MAP}) + "\n")
    bench = fx.write_benchmark(tmp / "bench")
    sets = {"output_dir": tmp / "out", "dropped_dir": tmp / "dropped", "work_dir": tmp / "work", **paths}
    return load_config(REPO_ROOT / "configs/curate.yaml", [
        f"sources={tmp / 'sources.jsonl'}", f"decontaminate.benchmark_dir={bench}", "engine.engine=local",
        "engine.partition_rows=4", "pii.backend=regex", "rules.longest_line.max_chars=60",
        *(f"{k}={v}" for k, v in sets.items())])


def snapshot(tmp: Path) -> dict[str, bytes]:
    """Every file under tmp but the (empty, kept) run lock files `.<folder>.lock`."""
    return {str(p.relative_to(tmp)): p.read_bytes() for p in sorted(tmp.rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


def assert_refused(c, tmp: Path, words, caplog) -> None:
    """``curate(c)`` stops with one PipelineError line holding ``words`` and writes or removes
    nothing under ``tmp``; ``main`` logs exactly one ERROR and exits 1."""
    before = snapshot(tmp)
    with pytest.raises(PipelineError) as err:
        curate(c)
    msg = str(err.value)
    assert "\n" not in msg and "nothing was written" in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    assert snapshot(tmp) == before, "a refused run wrote or removed files"
    caplog.clear()
    assert pipeline.main(c, None) == 1
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1


@pytest.fixture()
def src(tmp_path):
    rows, _ = fx.records()
    fx.write_jsonl(tmp_path / "corpus" / "a.jsonl", rows)
    return tmp_path / "corpus"


LAYOUTS = {
    # key: (overrides relative to tmp, words the one line must hold)
    "dropped inside out": ({"dropped_dir": "out/dropped"}, ["dropped_dir", "inside output_dir"]),
    "dropped is out": ({"dropped_dir": "out"}, ["same folder"]),
    "work inside out": ({"work_dir": "out/.work"}, ["work_dir", "inside output_dir"]),
    "out inside work": ({"work_dir": "wk", "output_dir": "wk/out"}, ["output_dir", "inside work_dir"]),
    "work inside dropped": ({"work_dir": "dropped/w"}, ["work_dir", "inside dropped_dir"]),
    "timings in out": ({"timings_file": "out/t.json"}, ["timings_file", "inside output_dir"]),
    "timings in dropped": ({"timings_file": "dropped/sub/t.json"}, ["timings_file", "inside dropped_dir"]),
    "out via dotdot": ({"dropped_dir": "x/../out/d"}, ["dropped_dir", "inside output_dir"]),
    "out is source": ({"output_dir": "corpus"}, ["output_dir", "source 'fx'"]),
    "out inside source": ({"output_dir": "corpus/merged"}, ["output_dir", "inside the folder", "source 'fx'"]),
    "dropped inside source": ({"dropped_dir": "corpus/d"}, ["dropped_dir", "source 'fx'"]),
    "work inside source": ({"work_dir": "corpus/.w"}, ["work_dir", "source 'fx'"]),
}


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_refused_with_one_line_and_nothing_written(tmp_path, src, name, caplog):
    overrides, words = LAYOUTS[name]
    assert_refused(cfg(tmp_path, src, **{k: tmp_path / v for k, v in overrides.items()}), tmp_path, words, caplog)
    assert not (tmp_path / "out").exists()


def test_apart_is_fine_and_keeps_every_dropped_row(tmp_path):
    """Outputs beside a single-file source (same parent folder) and dropped_dir beside output_dir:
    allowed; the dropped files hold every dropped row."""
    rows, _ = fx.records()
    f = fx.write_jsonl(tmp_path / "data" / "corpus.jsonl", rows)
    c = cfg(tmp_path, f, output_dir=tmp_path / "data" / "merged", dropped_dir=tmp_path / "data" / "dropped",
            timings_file=tmp_path / "data" / "timings.json")
    report = curate(c)
    lines = sum(len(p.read_text().splitlines()) for p in (tmp_path / "data" / "dropped").glob("*.jsonl"))
    assert lines > 0 and report["rows_kept"] + lines == report["rows_read"]
    assert (tmp_path / "data" / "timings.json").is_file()


# the other way round: a source inside a run folder would be deleted by the run itself (output_dir and
# dropped_dir are swapped in as a whole set, work_dir removed at the end); a file source too, and one
# whose name looks like a split file of an old output set
SOURCE_INSIDE = {
    "file source in output_dir": ("box/src/train.jsonl", {"output_dir": "box"}, "output_dir"),
    "folder source in output_dir": ("box/high_level", {"output_dir": "box"}, "output_dir"),
    "file source deep in dropped_dir": ("d/x/y/rows.jsonl", {"dropped_dir": "d"}, "dropped_dir"),
    "folder source in work_dir": ("w/src", {"work_dir": "w"}, "work_dir"),
}


@pytest.mark.parametrize("name", list(SOURCE_INSIDE))
def test_source_inside_a_run_folder_is_refused(tmp_path, name, caplog):
    where, overrides, key = SOURCE_INSIDE[name]
    rows, _ = fx.records()
    src = tmp_path / where
    fx.write_jsonl(src if src.suffix else src / "part-0.jsonl", rows)
    assert_refused(cfg(tmp_path, src, **{k: tmp_path / v for k, v in overrides.items()}), tmp_path,
                   ("source 'fx'", f"inside {key}", "would delete it"), caplog)
