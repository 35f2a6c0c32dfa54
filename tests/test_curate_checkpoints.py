"""Checkpoints (REVIEW15b #15, #16): the work folder holds one pass's partitions at a time, the
manifest never names a deleted file, and part files are data only (Arrow IPC, never a pickle:
a work folder that others can write must not let them run code on the workers at resume)."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sft_playbook.curate import pipeline
from sft_playbook.curate.base import StageStats
from sft_playbook.curate.engine import Engine
from sft_playbook.curate.frames import CheckpointError, read_frame, write_frame
from sft_playbook.curate.pipeline import Checkpoints

FP = {"config": "c1", "data files": "d1"}


def partition(n: int, start: int) -> pd.DataFrame:
    """What a pass leaves: str-dtype text, object columns of str (hierarchy stage), int64 order,
    an index with gaps (rows dropped), lone surrogates and a BOM in the text."""
    df = pd.DataFrame({"id": [f"r{i}" for i in range(start, start + n)],
                       "source": "mgv", "_order": np.arange(start, start + n, dtype=np.int64),
                       "code": pd.Series([f"module m{i}; // \ud800 é\nendmodule\n" if i % 3 == 0
                                          else f"\ufeffmodule m{i}; endmodule" for i in range(n)], dtype=object),
                       "desc_high_level": [f"A register {i} (Jürgen)" for i in range(n)],
                       "unresolved_modules": pd.Series(["" if i % 2 else "sub_a,sub_b" for i in range(n)], dtype=object)})
    return df.iloc[::2] if n > 1 else df


def stats() -> list[StageStats]:
    return [StageStats("clean", 10, 9)]


def test_pass_00_is_gone_once_pass_01_is_recorded(tmp_path):
    ck = Checkpoints(tmp_path, FP, resume=False)
    with Engine(engine="local") as eng:
        ck.pass_done(eng, 0, [partition(6, 0), partition(4, 6)], stats())
        assert (tmp_path / "pass-00").is_dir()
        ck.pass_done(eng, 1, [partition(5, 0), partition(3, 6)], stats())
        assert not (tmp_path / "pass-00").exists() and (tmp_path / "pass-01").is_dir()
        ck.pass_done(eng, 2, [partition(4, 0)], stats())
    assert sorted(p.name for p in tmp_path.glob("pass-*")) == ["pass-02"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    listed = [f for rec in manifest["passes"] for f in rec["parts"]]
    assert len(manifest["passes"]) == 3 and all(Path(f).is_file() for f in listed)   # never a deleted file
    assert [len(rec["parts"]) for rec in manifest["passes"]] == [0, 0, 1]
    assert [rec["stats"][0]["name"] for rec in manifest["passes"]] == ["clean"] * 3   # statistics kept for every pass


def test_a_kill_between_manifest_and_delete_is_cleaned_at_resume(tmp_path):
    """kill -9 after the manifest names pass 1 but before pass-00 was deleted: the resumed run
    deletes the stale folder and keeps the listed one."""
    ck = Checkpoints(tmp_path, FP, resume=False)
    with Engine(engine="local") as eng:
        ck.pass_done(eng, 0, [partition(6, 0)], stats())
        ck.pass_done(eng, 1, [partition(4, 0)], stats())
    stale = tmp_path / "pass-00"
    stale.mkdir()
    write_frame(partition(6, 0), stale / "part-00000.arrow")
    (tmp_path / "pass-02").mkdir()                        # a pass that was being written (not listed)
    resumed = Checkpoints(tmp_path, FP, resume=True)
    assert len(resumed.passes) == 2
    assert sorted(p.name for p in tmp_path.glob("pass-*")) == ["pass-01"]
    assert all(Path(f).is_file() for rec in resumed.passes for f in rec["parts"])


def test_a_checkpoint_file_holds_no_pickle_and_reads_back_exactly(tmp_path):
    ck = Checkpoints(tmp_path, FP, resume=False)
    df = partition(9, 100)
    with Engine(engine="local") as eng:
        files = ck.pass_done(eng, 0, [df], stats())
    raw = Path(files[0]).read_bytes()
    assert raw[:6] == b"ARROW1" and not raw.startswith(b"\x80")
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(raw)
    back = read_frame(files[0])
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    assert back.index.tolist() == df.index.tolist() and back["code"].tolist() == df["code"].tolist()
    assert back["unresolved_modules"].dtype == object and back["code"].dtype == df["code"].dtype


@pytest.mark.parametrize("column", [
    pd.Series(["a", None, "\udc80x"], dtype=object),                     # object text with None, a lone surrogate
    pd.Series(["a", None, "b"]),                                          # pandas' str dtype with NaN
    pd.Series([["m1", "m2"], {"k": [1, 2.5]}, None], dtype=object),      # lists/dicts: JSON, exact
    pd.Series([1.5, float("nan"), -0.0]),
    pd.Series([True, False, True]),
    pd.Series([3, 2, 1], dtype="int32"),
])
def test_round_trip_is_exact_for_each_column_kind(tmp_path, column):
    df = pd.DataFrame({"x": column, "_order": np.arange(3, dtype=np.int64)}).set_axis([7, 3, 11])
    write_frame(df, tmp_path / "p.arrow")
    back = read_frame(tmp_path / "p.arrow")
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    assert [type(v) for v in back["x"].tolist()] == [type(v) for v in df["x"].tolist()]


def test_values_that_would_not_come_back_the_same_are_refused(tmp_path):
    for bad in (pd.Series([(1, 2)], dtype=object), pd.Series([{1: "int key"}], dtype=object),
                pd.Series([b"bytes"], dtype=object)):
        with pytest.raises(CheckpointError, match="column 'x'"):
            write_frame(pd.DataFrame({"x": bad}), tmp_path / "p.arrow")
    assert not (tmp_path / "p.arrow").exists()


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_pickle_planted_in_the_work_folder_is_never_run(tmp_path):
    """Someone who can write work_dir replaces the manifest's part files with pickles (or an
    older version left pickles): resume does not read them, and ``read_frame`` never unpickles."""
    marker = tmp_path / "ran"
    ck = Checkpoints(tmp_path, FP, resume=False)
    with Engine(engine="local") as eng:
        files = ck.pass_done(eng, 0, [partition(4, 0)], stats())
    evil = tmp_path / "pass-00" / "part-00000.pkl"
    evil.write_bytes(pickle.dumps(_Evil(str(marker))))
    Path(files[0]).write_bytes(evil.read_bytes())            # same name, pickle inside
    with pytest.raises(CheckpointError, match="not a checkpoint part file"):
        read_frame(files[0])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["passes"][0]["parts"] = [str(evil)]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    resumed = Checkpoints(tmp_path, FP, resume=True)
    assert resumed.passes == []                               # started afresh, the .pkl never read
    assert not marker.exists()


def test_a_killed_curation_resumes_from_arrow_checkpoints_with_the_same_bytes(tmp_path, monkeypatch):
    """A whole run (engine=local) checkpoints only .arrow files, keeps one pass folder at a time
    (checked at every save), and a resume from its manifest gives the same outputs."""
    from test_curate_scale import awkward_source, config

    awkward_source(tmp_path / "src")
    seen = []
    real = Checkpoints.pass_done

    def spy(self, engine, g, parts, st):
        out = real(self, engine, g, parts, st)
        seen.append(sorted(p.name for p in self.work.glob("pass-*")))
        assert all(Path(f).suffix == ".arrow" and Path(f).is_file() for rec in self.passes for f in rec["parts"])
        if g == 1:
            raise KeyboardInterrupt("killed after pass 2's checkpoint")
        return out
    monkeypatch.setattr(Checkpoints, "pass_done", spy)
    cfg = config(tmp_path, "local", [f"work_dir={tmp_path / 'work'}"])
    with pytest.raises(KeyboardInterrupt):
        pipeline.curate(cfg)
    assert seen == [["pass-00"], ["pass-01"]]
    monkeypatch.setattr(Checkpoints, "pass_done", real)
    seen.clear()
    monkeypatch.setattr(pipeline, "read_partitions", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError("resume read the sources again: the finished passes were not reused")))
    pipeline.curate(config(tmp_path, "local", [f"work_dir={tmp_path / 'work'}", "resume=true"]))
    monkeypatch.undo()
    resumed = {p.relative_to(tmp_path / "out"): p.read_bytes() for p in (tmp_path / "out").rglob("*.jsonl")}
    import shutil

    shutil.rmtree(tmp_path / "out")
    shutil.rmtree(tmp_path / "dropped")
    pipeline.curate(config(tmp_path, "local", [f"work_dir={tmp_path / 'work2'}"]))
    fresh = {p.relative_to(tmp_path / "out"): p.read_bytes() for p in (tmp_path / "out").rglob("*.jsonl")}
    assert resumed == fresh and len(fresh) >= 3


@pytest.mark.parametrize("killed_after", [0, 1])
def test_resume_with_checkpoint_false_reuses_the_finished_passes(tmp_path, monkeypatch, killed_after):
    """`checkpoint` is not part of the fingerprint: a run killed after pass g's checkpoint, resumed
    with `resume=true checkpoint=false`, reuses the finished passes (the read is skipped), saves no
    new pass and gives the same outputs and dropped rows as a fresh run (review 15c #2: it ran every
    pass over zero partitions and stopped with "stage 1 dropped all 0 remaining rows")."""
    from test_curate_scale import awkward_source, config

    awkward_source(tmp_path / "src")
    real = Checkpoints.pass_done
    saved = []

    def killed(self, engine, g, parts, st):
        out = real(self, engine, g, parts, st)
        saved.append(g)
        if g == killed_after:
            raise KeyboardInterrupt(f"killed after pass {g + 1}'s checkpoint")
        return out
    monkeypatch.setattr(Checkpoints, "pass_done", killed)
    with pytest.raises(KeyboardInterrupt):
        pipeline.curate(config(tmp_path, "local", [f"work_dir={tmp_path / 'work'}"]))
    assert saved == list(range(killed_after + 1))
    saved.clear()
    reads = []
    monkeypatch.setattr(pipeline, "read_partitions", lambda *a, **k: reads.append(1) or (_ for _ in ()).throw(
        AssertionError("the sources were read again although the passes were finished")))
    report = pipeline.curate(config(tmp_path, "local", [f"work_dir={tmp_path / 'work'}", "resume=true", "checkpoint=false"]))
    assert saved == [] and reads == []                     # no pass saved, nothing read again
    resumed = {p.relative_to(tmp_path): p.read_bytes() for d in ("out", "dropped") for p in (tmp_path / d).rglob("*.jsonl")}
    monkeypatch.undo()
    import shutil

    shutil.rmtree(tmp_path / "out")
    shutil.rmtree(tmp_path / "dropped")
    fresh_report = pipeline.curate(config(tmp_path, "local", [f"work_dir={tmp_path / 'work2'}"]))
    fresh = {p.relative_to(tmp_path): p.read_bytes() for d in ("out", "dropped") for p in (tmp_path / d).rglob("*.jsonl")}
    assert report["rows_kept"] == fresh_report["rows_kept"] > 0
    assert resumed == fresh and len(fresh) >= 6


def test_an_interrupted_work_folder_cleanup_does_not_lock_the_user_out(tmp_path, monkeypatch):
    """The work folder's marker goes LAST: a clean-up cut short (Ctrl-C while deleting a big run's
    checkpoints) leaves a folder that is still marked as ours, and the next run empties it again
    instead of refusing "not a curation work folder" (review 15c #8)."""
    import shutil

    from test_curate_scale import awkward_source, config

    awkward_source(tmp_path / "src")
    real = Checkpoints.pass_done

    def killed(self, engine, g, parts, st):
        real(self, engine, g, parts, st)
        raise KeyboardInterrupt("killed after pass 1's checkpoint")
    monkeypatch.setattr(Checkpoints, "pass_done", killed)
    with pytest.raises(KeyboardInterrupt):
        pipeline.curate(config(tmp_path, "local"))
    monkeypatch.undo()
    work = tmp_path / ".out.work"
    assert (work / pipeline.WORK_MARKER).is_file() and len(list(work.iterdir())) > 2
    real_rmtree, calls = shutil.rmtree, []

    def cut_short(path, *a, **k):                  # the first folder goes, then Ctrl-C
        calls.append(path)
        if len(calls) > 1:
            raise KeyboardInterrupt("Ctrl-C during the clean-up")
        real_rmtree(path, *a, **k)
    monkeypatch.setattr(shutil, "rmtree", cut_short)
    with pytest.raises(KeyboardInterrupt):
        pipeline.curate(config(tmp_path, "local"))          # starts afresh: empties the work folder
    monkeypatch.undo()
    assert (work / pipeline.WORK_MARKER).is_file()           # still ours
    report = pipeline.curate(config(tmp_path, "local"))
    assert report["rows_kept"] > 0 and not work.exists()


def test_a_file_that_cannot_be_removed_keeps_the_marker(tmp_path, monkeypatch):
    work = tmp_path / "w"
    pipeline.fresh_work_folder(work)
    (work / "pass-00").mkdir()
    (work / "pass-00" / "part-000000.arrow").write_bytes(b"x")
    (work / ".nfs0001").write_bytes(b"held open by a worker")
    real_unlink = Path.unlink

    def busy(self, *a, **k):
        if self.name.startswith(".nfs"):
            raise OSError(16, "Device or resource busy", str(self))
        return real_unlink(self, *a, **k)
    monkeypatch.setattr(Path, "unlink", busy)
    pipeline.remove_work_folder(work)                        # end of a run: errors ignored
    assert sorted(p.name for p in work.iterdir()) == sorted([".nfs0001", pipeline.WORK_MARKER])
    with pytest.raises(pipeline.PipelineError) as err:      # the next run: one line, the folder still ours
        pipeline.fresh_work_folder(work)
    assert "cannot be removed" in str(err.value) and "\n" not in str(err.value)
    monkeypatch.undo()
    pipeline.fresh_work_folder(work)
    assert [p.name for p in work.iterdir()] == [pipeline.WORK_MARKER]


def test_a_clean_up_cut_short_right_after_the_marker_leaves_a_usable_folder(tmp_path, monkeypatch):
    """Cut between the marker's unlink and the folder's rmdir: the folder is empty and unmarked; the
    next run uses it (an empty folder has nothing to lose) while a non-empty unmarked one is refused."""
    work = tmp_path / "w"
    pipeline.fresh_work_folder(work)
    (work / "pass-00").mkdir()
    real_rmdir = Path.rmdir

    def cut(self):
        if self == work:
            raise KeyboardInterrupt("Ctrl-C after the marker went")
        return real_rmdir(self)
    monkeypatch.setattr(Path, "rmdir", cut)
    with pytest.raises(KeyboardInterrupt):
        pipeline.remove_work_folder(work)
    monkeypatch.undo()
    assert work.is_dir() and not any(work.iterdir())
    pipeline.fresh_work_folder(work)
    assert [p.name for p in work.iterdir()] == [pipeline.WORK_MARKER]
    (work / pipeline.WORK_MARKER).unlink()
    (work / "users-file.txt").write_text("not ours")
    with pytest.raises(pipeline.PipelineError, match="not a curation work folder"):
        pipeline.fresh_work_folder(work)
    assert (work / "users-file.txt").read_text() == "not ours"


def test_a_clean_up_cut_short_leaves_nothing_resumable(tmp_path, monkeypatch):
    """The manifest goes first: a clean-up cut after the dropped-row files went but before the
    checkpoints leaves no manifest, so the next resume=true starts afresh instead of reusing passes
    whose dropped rows are gone (review 15d #6)."""
    work = tmp_path / "w"
    pipeline.fresh_work_folder(work)
    for name in ("bad-lines", "dropped-files", "pass-02", "read", "splits"):
        (work / name).mkdir()
        (work / name / "part-000000.jsonl").write_text("{}\n")
    (work / "manifest.json").write_text("{}")
    import shutil

    real, removed = shutil.rmtree, []

    def cut(path, *a, **k):
        removed.append(Path(path).name)
        if len(removed) == 2:
            raise KeyboardInterrupt("Ctrl-C during the clean-up")
        return real(path, *a, **k)
    monkeypatch.setattr(shutil, "rmtree", cut)
    with pytest.raises(KeyboardInterrupt):
        pipeline.remove_work_folder(work)
    monkeypatch.undo()
    assert not (work / "manifest.json").exists() and (work / pipeline.WORK_MARKER).is_file()
    assert Checkpoints(work, FP, resume=True).passes == []


def test_a_resume_under_other_worker_tools_starts_afresh(tmp_path, caplog):
    """The workers' Icarus version is kept in the manifest (a driver without Icarus fingerprints
    'missing'): finished passes judged by another version are not reused (review 15d #14)."""
    import logging

    work = tmp_path / "w"
    pipeline.fresh_work_folder(work)
    ck = Checkpoints(work, FP, resume=False)
    old = {"iverilog": "Icarus Verilog version 11.0", "vvp": "Icarus Verilog runtime version 11.0"}
    pipeline.same_worker_tools(ck, old, work)
    ck.data["read"] = {"rows_read": 3}
    ck.data["passes"] = [{"parts": [], "stats": []}]
    ck.save()
    (work / "pass-00").mkdir()
    same = Checkpoints(work, FP, resume=True)
    pipeline.same_worker_tools(same, dict(old), work)
    assert len(same.passes) == 1                                   # the same versions: reused
    other = Checkpoints(work, FP, resume=True)
    with caplog.at_level(logging.WARNING):
        pipeline.same_worker_tools(other, {**old, "iverilog": "Icarus Verilog version 12.0"}, work)
    assert other.passes == [] and other.data["read"] is None and "starting afresh" in caplog.text
    assert sorted(p.name for p in work.iterdir()) == [pipeline.WORK_MARKER]
    pipeline.same_worker_tools(other, {}, work)                    # engine=local: nothing to compare
    assert other.data["worker tools"]["iverilog"].endswith("12.0")
