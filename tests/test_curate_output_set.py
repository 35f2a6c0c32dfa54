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
    """Staging the dropped-row files: no hard link (another file system), and the copy fails."""
    import os
    import shutil

    real = shutil.copy2

    def no_link(src, dst, *a, **k):
        raise OSError(18, "Invalid cross-device link")

    def copy2(src, dst, *a, **k):
        if "dropped-files" in str(src) and "03_" in Path(src).name:
            raise OSError(28, "No space left on device")
        return real(src, dst, *a, **k)
    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(shutil, "copy2", copy2)
    return []


def _carrying_over_fails(tmp, monkeypatch):
    """The disk fills while a user's folder in output_dir is copied into the new set (review 15c #3)."""
    import shutil

    (tmp / "out" / "notes").mkdir()
    (tmp / "out" / "notes" / "n.txt").write_text("mine\n")

    def full(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(shutil, "copytree", full)
    return []


def _swap_of(folder: str, exc: BaseException):
    """os.replace fails when it would put the new ``folder`` in place: after output_dir was swapped."""
    def fail(tmp, monkeypatch):
        import os

        real = os.replace

        def replace(src, dst, *a, **k):
            if Path(dst) == tmp / folder and ".new." in Path(src).name:
                raise exc
            return real(src, dst, *a, **k)
        monkeypatch.setattr(os, "replace", replace)
        return []
    fail.__name__ = f"_swap_of_{folder}_fails_{type(exc).__name__}"
    return fail


_dropped_swap_fails = _swap_of("dropped", OSError(16, "Device or resource busy"))
_killed_at_dropped_swap = _swap_of("dropped", KeyboardInterrupt())
_out_swap_fails = _swap_of("out", OSError(18, "Invalid cross-device link"))


def _timings_fail(tmp, monkeypatch):
    def boom(*a, **k):
        raise OutputError(28, "no space left on device writing curation_timings.md")
    monkeypatch.setattr(pipeline, "write_timings", boom)
    return []


FAILURES = [_bad_line, _all_dropped, _merge_fails, _report_fails, _timings_fail, _dropped_install_fails,
            _carrying_over_fails, _dropped_swap_fails, _killed_at_dropped_swap, _out_swap_fails]


@pytest.mark.parametrize("fail", FAILURES, ids=lambda f: f.__name__)
def test_a_failed_run_leaves_the_previous_output_set_whole(tmp_path, monkeypatch, fail):
    """output_dir AND dropped_dir: both the previous run's, byte for byte, whatever failed - also
    when output_dir was already swapped in and dropped_dir's swap failed (swapped back)."""
    out, dropped = good_run(tmp_path)
    rows, _ = fx.records()
    with open(tmp_path / "src" / "data.jsonl", "a") as fh:   # the failed run would drop other rows
        fh.write(json.dumps({**rows[0], "id": "extra-copy"}) + "\n")
    extra = fail(tmp_path, monkeypatch)
    out = tree(tmp_path / "out")                             # (with what the failure set up in it)
    with pytest.raises((Exception, KeyboardInterrupt)):  # noqa: B017 - each kind of failure raises its own error
        curate(cfg_for(tmp_path, extra))
    monkeypatch.undo()
    assert tree(tmp_path / "out") == out
    assert tree(tmp_path / "dropped") == dropped
    assert not [p.name for p in tmp_path.iterdir() if ".new." in p.name or ".old." in p.name]


@pytest.mark.parametrize("fail", [_carrying_over_fails, _dropped_install_fails, _dropped_swap_fails],
                         ids=lambda f: f.__name__)
def test_resume_after_a_failed_swap_finishes_with_the_same_bytes(tmp_path, monkeypatch, fail):
    """Every pass ran and the output set failed at the end: the work folder still holds the
    dropped-row files (linked or copied into the set, never moved out), so resume=true finishes
    without running a pass again and writes what a fresh run writes (review 15c #3)."""
    good_run(tmp_path)
    rows, _ = fx.records()
    with open(tmp_path / "src" / "data.jsonl", "a") as fh:
        fh.write(json.dumps({**rows[0], "id": "extra-copy"}) + "\n")
    fail(tmp_path, monkeypatch)
    with pytest.raises((Exception, KeyboardInterrupt)):  # noqa: B017
        curate(cfg_for(tmp_path))
    monkeypatch.undo()
    monkeypatch.setattr(pipeline, "read_partitions", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError("resume read the sources again")))
    curate(cfg_for(tmp_path, ["resume=true"]))
    monkeypatch.undo()
    resumed = tree(tmp_path / "out", timings=False), tree(tmp_path / "dropped")
    curate(cfg_for(tmp_path, [f"work_dir={tmp_path / 'work2'}"]))
    assert (tree(tmp_path / "out", timings=False), tree(tmp_path / "dropped")) == resumed


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


@pytest.mark.parametrize("which", ["out", "dropped"])
def test_an_output_folder_that_is_a_symlink_stays_a_link(tmp_path, which, monkeypatch):
    """output_dir -> /bigdisk/merged (a quota workaround): the run replaces the folder the link points
    to and keeps the link (review 15c #12: the link was swapped for a real folder on the small disk)."""
    rows, _ = fx.records()
    fx.write_jsonl(tmp_path / "src" / "data.jsonl", rows)
    big = tmp_path / "bigdisk" / which
    big.mkdir(parents=True)
    (big / "old.txt").write_text("a user's file stays\n")
    (tmp_path / which).symlink_to(big, target_is_directory=True)
    checked = []
    monkeypatch.setattr(pipeline, "check_shared_folders", lambda engine, folders: checked.append(dict(folders)))
    for _ in range(2):                                        # a second run replaces the first's set there too
        curate(cfg_for(tmp_path))
        # the workers must see where the splits are merged: beside the folder the link points to (review 15d #8)
        assert checked[-1]["output_dir's parent folder"] == (big.parent if which == "out" else tmp_path).resolve()
        assert (tmp_path / which).is_symlink() and (tmp_path / which).resolve() == big.resolve()
    assert (big / "old.txt").read_text() == "a user's file stays\n"
    if which == "out":
        assert (big / "high_level" / "train.jsonl").stat().st_size > 0
    else:
        assert list(big.glob("[0-9][0-9]_*.jsonl"))
    assert not [p for p in (tmp_path.iterdir()) if ".new." in p.name or ".old." in p.name]
