"""rules.compiles runs iverilog/vvp on the workers: a worker (or, engine=local, this machine) without
them must stop the run up front with one line naming it and the program, never skip the compile check
on its partitions and exit 0 (REVIEW15b finding 17)."""
from __future__ import annotations

import logging
from collections.abc import Callable
import os
import sys
from pathlib import Path

import pytest

import curate_fixtures as fx
from sft_playbook.curate.engine import Engine, EngineError, missing_tools, tool_gaps, tool_versions
from sft_playbook.curate.pipeline import curate, main
from test_curate_cluster import DASK, named_workers
from test_curate_inputs import cfg_for, jsonl_bytes


def bin_with(tmp: Path, *names: str, version: str | None = None, folder: str = "bin") -> Path:
    """A folder holding only executable stubs called ``names`` (a PATH without iverilog); with
    ``version`` each stub prints it for ``-V`` as Icarus Verilog does."""
    d = tmp / folder
    d.mkdir(exist_ok=True)
    say = f'[ "$1" = -V ] && echo "{version}"\n' if version else ""
    for n in names:
        (d / n).write_text(f"#!/bin/sh\n{say}exit 0\n")
        (d / n).chmod(0o755)
    return d


def test_missing_tools_and_the_lines_naming_workers(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(bin_with(tmp_path, "vvp")))
    assert missing_tools(["iverilog", "vvp"]) == ["iverilog"]
    lines = tool_gaps(["iverilog", "vvp"], {"tcp://b:2": [], "tcp://a:1": ["iverilog", "vvp"],
                                            "tcp://c:3": OSError("no PATH")})
    assert lines == ["worker tcp://a:1 has no iverilog or vvp on its PATH",
                     "worker tcp://c:3 could not look for iverilog, vvp: OSError: no PATH"]


def source(tmp: Path) -> Path:
    rows, _ = fx.records()
    src = tmp / "src"
    src.mkdir()
    (src / "a.jsonl").write_bytes(jsonl_bytes(rows))
    return src


def test_local_engine_without_iverilog_stops_when_compiles_is_on(tmp_path, monkeypatch, caplog):
    cfg = cfg_for(tmp_path, source(tmp_path))
    assert cfg["rules"]["compiles"].get("enabled", True)
    monkeypatch.setenv("PATH", str(bin_with(tmp_path, "vvp")))
    with caplog.at_level(logging.ERROR):
        assert main(cfg, None) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert "engine=local" in errors[0] and "no iverilog on its PATH" in errors[0] and "rules.compiles" in errors[0]
    assert not (tmp_path / "out").exists()


def test_without_the_compile_check_no_iverilog_is_needed(tmp_path, monkeypatch):
    cfg = cfg_for(tmp_path, source(tmp_path))
    cfg["rules"]["compiles"]["enabled"] = False
    monkeypatch.setenv("PATH", str(bin_with(tmp_path)))
    assert curate(cfg)["rows_read"] == len(fx.records()[0])


def refused_by_real_workers(tmp: Path, path_of_other: Callable[[str], str], more=None) -> tuple[str, dict]:
    """Two real dask workers, "good" (this PATH) and "other" (``path_of_other(this PATH)``): the
    EngineError line of an Engine that needs iverilog and vvp, and {name: worker address};
    ``more(address)`` runs while the cluster is still up."""
    from sft_playbook.paths import REPO_ROOT

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "DASK_LOGGING__DISTRIBUTED": "error"}
    workers = {"good": {"PATH": env["PATH"]}, "other": {"PATH": path_of_other(env["PATH"])}}
    with named_workers(tmp, env, workers) as (address, by_name):
        with pytest.raises(EngineError) as err, Engine(scheduler=address, required_tools=("iverilog", "vvp"),
                                                        tools_needed_by="rules.compiles"):
            pass
        if more is not None:
            more(address)
    return str(err.value), by_name


@pytest.mark.skipif(not DASK.exists(), reason=f"no dask CLI next to {sys.executable}")
def test_a_worker_without_iverilog_is_refused_naming_it(tmp_path):
    """Two real workers: one with the full PATH, one whose PATH lacks iverilog and vvp."""
    def nothing_asked(address):                          # nothing asked for: the same workers are fine
        with Engine(scheduler=address):
            pass
    msg, by_name = refused_by_real_workers(tmp_path, lambda _: str(bin_with(tmp_path)), nothing_asked)
    assert "\n" not in msg and f"worker {by_name['other']} has no iverilog or vvp on its PATH" in msg, msg
    assert by_name["good"] not in msg and "rules.compiles needs iverilog, vvp" in msg


def test_rows_the_compile_check_skipped_are_a_driver_warning(tmp_path, monkeypatch, caplog):
    """Should a worker still lose iverilog after the start-up check, the driver says so (not only
    the worker's own log)."""
    import sft_playbook.verilog.sandbox as sb

    cfg = cfg_for(tmp_path, source(tmp_path))
    monkeypatch.setattr(sb, "iverilog_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="sft_playbook.curate"):
        curate(cfg)
    warned = [r.getMessage() for r in caplog.records if r.name.startswith("sft_playbook.curate")
              and r.levelno == logging.WARNING and "compile check was SKIPPED" in r.getMessage()]
    assert len(warned) == 1 and "(compiles)" in warned[0], caplog.text


def test_tool_versions_read_the_first_line_of_dash_v(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(bin_with(tmp_path, "iverilog", version="Icarus Verilog version 10.3 (stable) ()")))
    assert tool_versions(["iverilog", "vvp"]) == {"iverilog": "Icarus Verilog version 10.3 (stable) ()", "vvp": "missing"}
    monkeypatch.setenv("PATH", str(bin_with(tmp_path, "iverilog", folder="quiet")))
    assert tool_versions(["iverilog"]) == {"iverilog": "unknown"}


def test_another_icarus_version_changes_the_resume_fingerprint(tmp_path, monkeypatch):
    """A killed run resumed under another iverilog must not reuse passes judged by the old one."""
    from sft_playbook.curate.pipeline import fingerprint_parts, plan_sources

    cfg = cfg_for(tmp_path, source(tmp_path))
    plan = plan_sources(cfg)
    monkeypatch.setenv("PATH", str(bin_with(tmp_path, "iverilog", "vvp", version="Icarus Verilog version 11.0")))
    a = fingerprint_parts(cfg, plan)
    monkeypatch.setenv("PATH", str(bin_with(tmp_path, "iverilog", "vvp", version="Icarus Verilog version 12.0", folder="b2")))
    b = fingerprint_parts(cfg, plan)
    assert [k for k in a if a[k] != b[k]] == ["code"]
    cfg["rules"]["compiles"]["enabled"] = False                 # no stage runs it: the version does not matter
    monkeypatch.setenv("PATH", str(bin_with(tmp_path, "iverilog", "vvp", version="Icarus Verilog version 13.0", folder="b3")))
    c = fingerprint_parts(cfg, plan)
    monkeypatch.setenv("PATH", str(bin_with(tmp_path, "iverilog", "vvp", version="Icarus Verilog version 11.0", folder="b4")))
    assert fingerprint_parts(cfg, plan)["code"] == c["code"]


@pytest.mark.skipif(not DASK.exists(), reason=f"no dask CLI next to {sys.executable}")
def test_a_worker_with_another_icarus_version_is_refused_naming_it(tmp_path):
    """Two real workers with iverilog and vvp on PATH, one of another version than the driver's."""
    old = bin_with(tmp_path, "iverilog", "vvp", version="Icarus Verilog version 10.1 (stable) ()", folder="old")
    msg, by_name = refused_by_real_workers(tmp_path, lambda path: f"{old}{os.pathsep}{path}")
    assert "\n" not in msg and f"worker {by_name['other']} runs iverilog 'Icarus Verilog version 10.1" in msg, msg
    assert by_name["good"] not in msg and "vs the driver's iverilog" in msg
