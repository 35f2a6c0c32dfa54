"""curate_data.py: an output that cannot be written, early or late (after every pass ran), ends
with ONE line naming the path and a non-zero exit code, never a traceback; nothing of the user's
is replaced or deleted (a file where output_dir or dropped_dir goes was silently swapped for the
output folder, i.e. deleted, before)."""
from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest

from sft_playbook.io import OutputError, replace_dir_atomic
from test_clean_errors import cli, curate_args


def run(tmp: Path, *extra: str, out: Path | None = None, engine: str = "local"):
    args = [a if a != "engine.engine=local" else f"engine.engine={engine}" for a in curate_args(tmp, *extra, out=out)]
    return cli("curate_data.py", *args)


def one_error(res, *must: str) -> str:
    assert res.returncode != 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    errors = [ln for ln in res.stderr.splitlines() if " ERROR " in ln]
    assert len(errors) == 1, res.stderr[-3000:]
    for m in must:
        assert m in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize("which", ["output_dir", "dropped_dir"])
def test_a_file_where_the_output_folder_goes_is_kept_and_named(tmp_path, which):
    (tmp_path / "mine").write_text("the user's notes\n")
    extra = [f"dropped_dir={tmp_path / 'mine'}"] if which == "dropped_dir" else []
    res = run(tmp_path, *extra, out=tmp_path / "mine" if which == "output_dir" else None)
    one_error(res, which, str(tmp_path / "mine"), "is a file, not a folder")
    assert (tmp_path / "mine").read_text() == "the user's notes\n"          # not deleted
    assert not (tmp_path / "out").exists()


def test_a_file_in_the_way_of_a_parent_folder_is_named(tmp_path):
    (tmp_path / "p").write_text("x")
    res = run(tmp_path, out=tmp_path / "p" / "out")
    one_error(res, str(tmp_path / "p" / "out"), f"{tmp_path / 'p'} is a file")


def test_timings_file_that_cannot_be_written_leaves_the_previous_set_whole(tmp_path):
    assert run(tmp_path).returncode == 0
    before = {p: p.read_bytes() for p in sorted((tmp_path / "out").rglob("*")) if p.is_file()}
    (tmp_path / "p").write_text("x")
    res = run(tmp_path, f"timings_file={tmp_path / 'p' / 'sub' / 't.json'}", "seed=7")
    one_error(res, "timings_file", str(tmp_path / "p"))
    assert {p: p.read_bytes() for p in sorted((tmp_path / "out").rglob("*")) if p.is_file()} == before


def test_replace_dir_atomic_never_replaces_a_file(tmp_path):
    (tmp_path / "f").write_text("keep me")
    with pytest.raises(OutputError) as exc, replace_dir_atomic(tmp_path / "f") as staging:
        (staging / "a").write_text("new")
    assert exc.value.errno == errno.ENOTDIR and str(tmp_path / "f") in str(exc.value)
    assert (tmp_path / "f").read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["f"]


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_a_read_only_output_folder_fails_early_with_one_line(tmp_path, engine):
    """output_dir's parent is read-only: the run lock beside output_dir cannot be created, so the
    run stops before any pass (it used to run every pass and fail at the swap)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True).returncode:
        pytest.skip("mounting a read-only tmpfs needs root")
    try:
        res = run(tmp_path, f"work_dir={tmp_path / 'work'}", *(["engine.n_workers=2"] if engine == "dask" else []),
                  out=ro / "out", engine=engine)
        assert "stage 1 " not in res.stderr                               # early: no pass ran
        one_error(res, f"read-only file system writing {ro / '.out.lock'}")
        assert res.returncode == 1
    finally:
        subprocess.run(["umount", "-l", str(ro)], capture_output=True)


def test_a_task_that_fails_to_write_on_a_worker_is_one_line(tmp_path):
    """A late write on a Dask worker (the merged split files, into a full file system): the error
    crosses the process boundary and still ends as one line with the path."""
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40k", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        res = run(tmp_path, f"work_dir={tmp_path / 'work'}", "engine.n_workers=2", out=small / "out", engine="dask")
        one_error(res, "no space left on device writing", str(small / "out"))
        assert res.returncode == 1 and not (small / "out").exists()
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)
