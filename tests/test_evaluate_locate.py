"""`bash evaluate.sh references` (and the other VerilogEval steps) find the problems by themselves:
the configured folder, another known copy, or a download into the cache on first use; offline,
one line that says what to do."""
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

from sft_playbook.evaluate.download import DownloadError, locate_problems
from sft_playbook.paths import REPO_ROOT

PROBLEMS = REPO_ROOT / "tests/fixtures/verilog_eval/problems"


def _archive(folder, top="verilog-eval-main"):
    """The fixture problems in upstream's archive layout, with a stray file and a LICENSE."""
    path = folder / "main.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for f in sorted(PROBLEMS.iterdir()):
            tar.add(f, arcname=f"{top}/dataset_spec-to-rtl/{f.name}")
        for name, data in (("LICENSE", b"MIT\n"), ("dataset_code-complete-iccad2023/Prob001_x_prompt.txt", b"x")):
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _download_cfg(tmp_path, url_dir):
    return {"url": f"file://{url_dir}/{{ref}}.tar.gz", "ref": "main", "dest": str(tmp_path / "cache"), "timeout_s": 10}


def test_configured_folder_and_its_parent_are_used_as_they_are(tmp_path):
    assert locate_problems(PROBLEMS) == PROBLEMS
    parent = tmp_path / "bench"
    (parent / "spec-to-rtl").mkdir(parents=True)
    for f in PROBLEMS.iterdir():
        (parent / "spec-to-rtl" / f.name).write_bytes(f.read_bytes())
    assert locate_problems(parent) == parent


def test_another_known_copy_is_used_before_any_download(tmp_path):
    got = locate_problems(tmp_path / "cache", also_look_in=[tmp_path / "nowhere", PROBLEMS],
                          download=_download_cfg(tmp_path, tmp_path / "no-archive"))
    assert got == PROBLEMS
    assert not (tmp_path / "cache").exists()


def test_cache_is_filled_once_on_first_use(tmp_path):
    src = tmp_path / "upstream"
    src.mkdir()
    archive = _archive(src)
    dl = _download_cfg(tmp_path, src)
    got = locate_problems(tmp_path / "cache", download=dl)
    assert got == tmp_path / "cache" / "spec-to-rtl"
    assert sorted(p.name for p in got.iterdir()) == sorted(
        [f.name for f in PROBLEMS.iterdir()] + ["LICENSE", "SOURCE.txt"])
    archive.unlink()  # second use: from the cache, no network
    assert locate_problems(tmp_path / "cache", download=dl) == tmp_path / "cache"


def test_offline_is_one_line_saying_where_to_put_the_files(tmp_path):
    with pytest.raises(DownloadError) as exc:
        locate_problems(tmp_path / "cache", download=_download_cfg(tmp_path, tmp_path / "offline"))
    msg = str(exc.value)
    assert "\n" not in msg and "download failed" in msg
    assert str(tmp_path / "cache" / "spec-to-rtl") in msg and "verilogeval.problems_dir" in msg


def test_a_folder_the_user_named_is_not_downloaded_into(tmp_path):
    src = tmp_path / "upstream"
    src.mkdir()
    _archive(src)
    with pytest.raises(DownloadError, match="not found in .*mine"):
        locate_problems(tmp_path / "mine", download=_download_cfg(tmp_path, src))
    assert not (tmp_path / "mine").exists()


def test_references_with_the_default_problems_dir_works_out_of_the_box(tmp_path):
    """evaluate.py references with configs/eval.yaml's problems_dir = download.dest: downloads, then scores."""
    src = tmp_path / "upstream"
    src.mkdir()
    _archive(src)
    cache = tmp_path / "cache"
    r = subprocess.run([sys.executable, "evaluate.py", "references", f"verilogeval.problems_dir={cache}",
                        f"download.dest={cache}", f"download.url=file://{src}/{{ref}}.tar.gz",
                        "verilogeval.also_look_in=[]", f"out_dir={tmp_path / 'out'}"], cwd=REPO_ROOT,
                       capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout[r.stdout.index("{"):])
    assert summary["problems"] == 2 and summary["pass_at_k"]["pass@1"] == 1.0
    assert "downloading them once" in r.stderr
    # offline, no copy: exit 1 and one ERROR line
    r = subprocess.run([sys.executable, "evaluate.py", "references", f"verilogeval.problems_dir={tmp_path / 'c2'}",
                        f"download.dest={tmp_path / 'c2'}", f"download.url=file://{tmp_path}/none/{{ref}}.tar.gz",
                        "verilogeval.also_look_in=[]"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    errors = [ln for ln in r.stderr.splitlines() if " ERROR " in ln]
    assert r.returncode == 1 and len(errors) == 1 and "Traceback" not in r.stderr
