"""replace_dir_atomic removes the staging folders a killed run left (made on this host by a process
that no longer exists) and nothing else."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from sft_playbook import io as sio
from sft_playbook.paths import REPO_ROOT


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(tmp_path):
    target = tmp_path / "out"
    code = ("import sys, time\nfrom sft_playbook import io\n"
            "with io.replace_dir_atomic(sys.argv[1]) as d:\n"
            "    (d / 'train.jsonl').write_text('{}\\n')\n    print('ready', flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert proc.stdout.readline().strip() == "ready"
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".out.new.")]
    assert len(left) == 1
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert left[0].exists()                                   # kill -9 leaves it
    with sio.replace_dir_atomic(target) as d:
        (d / "x").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_only_dead_local_owners_are_removed(tmp_path):
    host = sio._owner_tag().rsplit("-", 1)[0]
    dead, live = _dead_pid(), os.getppid()
    names = {
        f".out.new.{host}-{dead}.abc123": False,          # stale: removed
        f".out.old.{host}-{dead}.zz": False,              # stale old-set folder: removed
        f".out.new.{host}-{live}.abc": True,              # a live process's: kept
        f".out.new.otherhost-{dead}.abc": True,           # another host's (shared file system): kept
        ".out.new.q1w2e3": True,                          # no owner in the name: kept
        f".other.new.{host}-{dead}.abc": True,            # another target's: kept
    }
    for n in names:
        (tmp_path / n).mkdir()
        (tmp_path / n / "f").write_text("x")
    removed = sio.remove_stale_staging(tmp_path / "out")
    assert sorted(p.name for p in removed) == sorted(n for n, keep in names.items() if not keep)
    for n, keep in names.items():
        assert (tmp_path / n).exists() == keep, n
    assert socket.gethostname()
    time.sleep(0)
