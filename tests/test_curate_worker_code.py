"""On a cluster every worker must import the driver's sft_playbook code and package versions;
a mismatch is one clear error naming the worker and what differs (issue 15, review finding 13)."""
from __future__ import annotations

import os
import shutil
import sys

import pytest

from sft_playbook.curate.engine import Engine, EngineError, code_identity, code_mismatches
from sft_playbook.paths import REPO_ROOT
from test_curate_cluster import DASK, named_workers


def test_same_identity_passes_and_a_moved_checkout_is_fine():
    me = code_identity()
    assert code_mismatches(me, {"tcp://a:1": dict(me), "tcp://b:2": dict(me, sft_playbook="/elsewhere")}) == []


def test_other_code_names_the_worker_and_the_folder():
    me = code_identity()
    lines = code_mismatches(me, {"tcp://a:1": dict(me), "tcp://b:2": dict(me, code="f" * 64, sft_playbook="/old/checkout")})
    assert len(lines) == 1
    assert "tcp://b:2" in lines[0] and "/old/checkout" in lines[0] and "code differs" in lines[0]


def test_other_package_versions_and_import_failures_are_named():
    me = code_identity()
    lines = code_mismatches(me, {"tcp://a:1": dict(me, pandas="1.0.0"),
                                 "tcp://c:3": ModuleNotFoundError("No module named 'sft_playbook'")})
    assert len(lines) == 2
    assert "tcp://a:1" in lines[0] and "pandas 1.0.0 vs driver's" in lines[0]
    assert "tcp://c:3" in lines[1] and "No module named 'sft_playbook'" in lines[1]


@pytest.mark.skipif(not DASK.exists(), reason=f"no dask CLI next to {sys.executable}")
def test_a_worker_importing_another_checkout_is_refused(tmp_path):
    """Two real workers: one with the driver's PYTHONPATH, one importing an edited copy."""
    other = tmp_path / "other"
    shutil.copytree(REPO_ROOT / "sft_playbook", other / "sft_playbook", ignore=shutil.ignore_patterns("__pycache__"))
    f = other / "sft_playbook" / "curate" / "filters.py"
    f.write_text(f.read_text() + "\n# an older or newer checkout\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "DASK_LOGGING__DISTRIBUTED": "error"}
    workers = {"good": {"PYTHONPATH": str(REPO_ROOT)}, "stale": {"PYTHONPATH": str(other)}}
    with named_workers(tmp_path, env, workers) as (address, by_name):
        with pytest.raises(EngineError) as err, Engine(scheduler=address):
            pass
        msg = str(err.value)
        assert "\n" not in msg and by_name["stale"] in msg and str(other / "sft_playbook") in msg
        assert msg.count("does not run the driver's code") == 1          # the good worker is not named
