"""One curation run per output folder: a second run on the same output_dir / dropped_dir / work_dir
stops at once with one line naming the folder and the other run (host, pid), touching nothing; a
run killed with kill -9 leaves no lock that blocks the next one."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import curate_fixtures as fx
from sft_playbook.curate import pipeline
from sft_playbook.curate.pipeline import RunLockedError, curate
from test_curate_output_set import cfg_for, tree

ROOT = Path(__file__).resolve().parents[1]


def hold(folder: Path, seconds: float = 60) -> subprocess.Popen:
    """Another process holding the run lock of ``folder`` (as a live run does) until killed."""
    code = ("import sys, time; from pathlib import Path; from sft_playbook.curate.pipeline import run_lock\n"
            "with run_lock([('output_dir', Path(sys.argv[1]))]):\n"
            "    print('locked', flush=True); time.sleep(float(sys.argv[2]))\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(folder), str(seconds)], cwd=ROOT, stdout=subprocess.PIPE,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.stdout.readline().strip() == "locked"
    return p


def kill9(p: subprocess.Popen) -> None:
    os.kill(p.pid, signal.SIGKILL)
    p.wait(10)


@pytest.fixture()
def fixture_src(tmp_path):
    rows, _ = fx.records()
    fx.write_jsonl(tmp_path / "src" / "data.jsonl", rows)
    return tmp_path


@pytest.mark.parametrize("which", ["out", "work", "dropped"])
def test_second_run_refused_at_once_and_touches_nothing(fixture_src, which):
    tmp = fixture_src
    curate(cfg_for(tmp))                                   # a previous good output set
    before_out, before_drop = tree(tmp / "out"), tree(tmp / "dropped")
    (tmp / "work").mkdir()
    (tmp / "work" / pipeline.WORK_MARKER).write_text("x\n")
    (tmp / "work" / "manifest.json").write_text("{}\n")   # the live run's work folder
    holder = hold(tmp / which)
    try:
        t = time.monotonic()
        with pytest.raises(RunLockedError) as err:
            curate(cfg_for(tmp, ["rules.word_count.min_words=25"]))
        assert time.monotonic() - t < 10
        msg = str(err.value)
        assert "\n" not in msg and str(tmp / which) in msg and f"pid {holder.pid}" in msg and "host " in msg
        assert tree(tmp / "out") == before_out and tree(tmp / "dropped") == before_drop
        assert (tmp / "work" / "manifest.json").read_text() == "{}\n"
    finally:
        kill9(holder)


def test_main_says_one_line(fixture_src, caplog):
    tmp = fixture_src
    holder = hold(tmp / "out")
    try:
        assert pipeline.main(cfg_for(tmp), None) == 1
    finally:
        kill9(holder)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "in use by another run" in errors[0], errors


def test_killed_run_does_not_block(fixture_src):
    tmp = fixture_src
    kill9(hold(tmp / "out"))                              # kill -9: no cleanup ran
    assert Path(str(pipeline.lock_path(tmp / "out")) + ".owner").exists()   # its stale tag is still there
    report = curate(cfg_for(tmp))
    assert report["rows_kept"] > 0 and (tmp / "out" / "curation_report.md").is_file()
    # a finished run leaves no lock tag beside its folders
    assert not list(tmp.glob(".*.lock.owner"))


def test_another_spelling_of_the_folder_is_the_same_lock(fixture_src):
    """output_dir given through a symlink or with '..' is the same output folder."""
    tmp = fixture_src
    (tmp / "out").mkdir()
    (tmp / "alias").symlink_to(tmp)
    holder = hold(tmp / "out")
    try:
        for spelled in (tmp / "alias" / "out", tmp / "src" / ".." / "out"):
            with pytest.raises(RunLockedError, match=f"pid {holder.pid}"):
                curate(cfg_for(tmp, [f"output_dir={spelled}"]))
    finally:
        kill9(holder)
