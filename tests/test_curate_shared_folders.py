"""Workers that do not see the driver's folders (a multi-host cluster with output_dir on the
driver's local disk) must not end in a false success: the run checks at the start that every
worker reads a token file the driver wrote into work_dir and output_dir's parent, and before the
swap that every file a worker wrote is there, on the driver, with the size the worker reported."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import curate_fixtures as fx
from sft_playbook.curate import pipeline
from sft_playbook.curate.pipeline import PipelineError, check_shared_folders, curate
from test_curate_output_set import cfg_for, tree


@pytest.fixture()
def previous(tmp_path):
    rows, _ = fx.records()
    fx.write_jsonl(tmp_path / "src" / "data.jsonl", rows)
    curate(cfg_for(tmp_path))
    return tree(tmp_path / "out"), tree(tmp_path / "dropped")


def elsewhere(tmp_path: Path, path: str) -> Path:
    """Where a worker on another host would have written ``path``: its own disk."""
    return tmp_path / "other-host" / Path(path).relative_to("/")


def test_split_files_written_on_another_file_system(tmp_path, monkeypatch, previous):
    real = pipeline.merge_split

    def on_other_host(parts, ranks, target):
        moved = elsewhere(tmp_path, target)
        return real(parts, ranks, str(moved))
    monkeypatch.setattr(pipeline, "merge_split", on_other_host)
    monkeypatch.setattr(pipeline.os.path, "getsize", lambda p: elsewhere(tmp_path, p).stat().st_size)
    with pytest.raises(PipelineError) as err:
        curate(cfg_for(tmp_path))
    msg = str(err.value)
    assert "\n" not in msg and "is missing on this machine" in msg and "must share it" in msg
    assert str(tmp_path) in msg
    assert (tree(tmp_path / "out"), tree(tmp_path / "dropped")) == previous


def test_split_file_of_another_size(tmp_path, monkeypatch, previous):
    """A stale file of the same name on the driver's disk (a previous try) is not taken for the
    worker's: the sizes must agree."""
    monkeypatch.setattr(pipeline.os.path, "getsize", lambda p: Path(p).stat().st_size + 1)
    with pytest.raises(PipelineError, match="bytes, the worker wrote"):
        curate(cfg_for(tmp_path))
    assert (tree(tmp_path / "out"), tree(tmp_path / "dropped")) == previous


def test_dropped_files_written_on_another_file_system(tmp_path, monkeypatch, previous):
    real = pipeline.concat_files

    def on_other_host(files, target):
        return real(files, str(elsewhere(tmp_path, target))) if "dropped-files" in target else real(files, target)
    monkeypatch.setattr(pipeline, "concat_files", on_other_host)
    with pytest.raises(PipelineError) as err:
        curate(cfg_for(tmp_path))
    msg = str(err.value)
    assert "\n" not in msg and "is missing on this machine" in msg and "work_dir" in msg and "must share it" in msg
    assert (tree(tmp_path / "out"), tree(tmp_path / "dropped")) == previous


class FakeClient:
    """A cluster whose workers run on another host: they see the folder, but not what the driver
    wrote there (the tokens are gone when they look)."""

    def __init__(self, hide: bool):
        self.hide = hide

    def run(self, func, paths, on_error="raise"):
        saved = {p: Path(p).read_text() for p in paths}
        if self.hide:
            for p in paths:
                Path(p).unlink()
        try:
            return {"tcp://10.0.0.7:40001": func(paths), "tcp://10.0.0.8:40002": func(paths)}
        finally:
            for p, t in saved.items():
                Path(p).write_text(t)


class FakeEngine:
    def __init__(self, hide):
        self.client = FakeClient(hide)


@pytest.mark.parametrize("hide", [True, False])
def test_start_check_names_the_folder_and_worker(tmp_path, hide):
    (tmp_path / "w").mkdir()
    folders = [("work_dir", tmp_path / "w"), ("output_dir's parent folder", tmp_path)]
    if hide:
        with pytest.raises(PipelineError) as err:
            check_shared_folders(FakeEngine(True), folders)
        msg = str(err.value)
        assert "\n" not in msg and "tcp://10.0.0.7:40001" in msg and f"work_dir {tmp_path / 'w'}" in msg
    else:
        check_shared_folders(FakeEngine(False), folders)
    assert not list(tmp_path.rglob(".curate-token-*")), "token files left behind"


def test_a_real_local_cluster_passes_the_check(tmp_path):
    rows, _ = fx.records()
    fx.write_jsonl(tmp_path / "src" / "data.jsonl", rows)
    report = curate(cfg_for(tmp_path, ["engine.engine=dask", "engine.n_workers=2"]))
    assert report["rows_kept"] > 0 and not list(tmp_path.rglob(".curate-token-*"))
    shutil.rmtree(tmp_path / "out")
