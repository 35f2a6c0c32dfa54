"""What the user sees on a Dask run that stops on bad input: the one file:line line, not the worker's
"Compute Failed" task dump; and no "Port 8787 is already in use" warning with the dashboard off."""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import curate_fixtures as fx
from sft_playbook.curate.engine import QuietExpectedErrors
from sft_playbook.paths import REPO_ROOT


def _record(exc_text: str) -> logging.LogRecord:
    return logging.LogRecord("distributed.worker", logging.ERROR, "worker.py", 1,
                             "Compute Failed\nKey: %s\nState: %s\nTask: %s\nException: %r\nTraceback: %r\n",
                             ("k", "executing", "<Task>", exc_text, "  File ..."), None)


@pytest.mark.parametrize("exc_text, shown", [
    ("SourceError('/d/a.jsonl:8: expected a JSON object, got list')", False),
    ("InputError('/d/a.jsonl:3: not valid JSON (Expecting value at column 1)')", False),
    ("OutputError(28, 'no space left on device writing /o/x.jsonl')", False),
    ("ZeroDivisionError('division by zero')", True),          # a bug: the dump stays
    ("KeyError('SourceError(')", True),
])
def test_only_expected_input_errors_are_quieted(exc_text, shown):
    assert QuietExpectedErrors().filter(_record(exc_text)) is shown
    other = logging.LogRecord("distributed.worker", logging.WARNING, "w.py", 1, "Memory use is high", (), None)
    assert QuietExpectedErrors().filter(other)


@pytest.mark.parametrize("bad_line", [b'[1, 2]\n', b'{"id": "x", "code": "a\tb"}\n', b'{"id": \n'])
def test_dask_run_with_a_bad_line_shows_one_line_and_no_port_warning(tmp_path, bad_line):
    rows, _ = fx.records()
    src = tmp_path / "src"
    fx.write_jsonl(src / "data.jsonl", rows)
    with open(src / "data.jsonl", "ab") as fh:
        fh.write(bad_line)
    bad_at = len(rows) + 1
    levels = {"high_level": "high_level_global_summary", "detailed": "detailed_global_summary", "block": "block_summary"}
    (tmp_path / "sources.jsonl").write_text(json.dumps({"name": "fx", "path": str(src), "levels": levels}) + "\n")
    bench = fx.write_benchmark(tmp_path / "bench")
    blocker = socket.socket()
    try:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            blocker.bind(("", 8787))
            blocker.listen(1)
        except OSError:
            pass                       # something else already holds 8787: the same situation
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        proc = subprocess.run(
            [sys.executable, str(REPO_ROOT / "curate_data.py"), f"sources={tmp_path / 'sources.jsonl'}",
             f"output_dir={tmp_path / 'out'}", f"dropped_dir={tmp_path / 'dropped'}",
             f"decontaminate.benchmark_dir={bench}", "engine.engine=dask", "engine.n_workers=1",
             "engine.dashboard=false", "pii.backend=regex"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    finally:
        blocker.close()
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"data.jsonl:{bad_at}:" in out, out
    assert "Compute Failed" not in out and "Traceback" not in out, out
    assert "8787" not in out, out
    assert " at at " not in out
    assert not Path(tmp_path / "out").exists()
