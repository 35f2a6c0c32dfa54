"""Progress a batch log shows (stderr not a terminal): one plain line per pass every
``progress_every_s`` seconds, pass 1 with its total from the read step, global fits' start and end
(issue 15, review finding 11)."""
from __future__ import annotations

import logging
import re

from sft_playbook.curate.pipeline import ProgressLine, curate
from test_curate_scale import awkward_source, config


def test_progress_line_every_n_seconds_with_total_and_rate(caplog):
    now = [0.0]
    p = ProgressLine("pass 1/4 (clean)", 1000, 30, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="sft_playbook.curate"):
        now[0] = 10
        p.update(100)                       # too early: nothing
        assert caplog.text == ""
        now[0] = 40
        p.update(300)
        now[0] = 50
        p.update(100)                       # 10 s after the last line: nothing
        now[0] = 75
        p.update(100)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["pass 1/4 (clean): 400 / 1000 rows (40%), 10 rows/s", "pass 1/4 (clean): 600 / 1000 rows (60%), 8 rows/s"]


def test_unknown_total_and_off(caplog):
    now = [0.0]
    with caplog.at_level(logging.INFO, logger="sft_playbook.curate"):
        p = ProgressLine("pass 2/4", None, 1, clock=lambda: now[0])
        now[0] = 2
        p.update(5)
        off = ProgressLine("pass 3/4", 10, 0, clock=lambda: now[0])
        now[0] = 100
        off.update(5)
    assert [r.getMessage() for r in caplog.records] == ["pass 2/4: 5 / ? rows, 2 rows/s"]


def test_a_batch_run_logs_progress_per_pass_and_global_fits(tmp_path, caplog):
    awkward_source(tmp_path / "src")
    cfg = config(tmp_path, "local", ["progress_every_s=0.000001"])     # pytest's stderr is not a terminal
    with caplog.at_level(logging.INFO, logger="sft_playbook.curate"):
        rep = curate(cfg)
    text = caplog.text
    first = re.findall(r"pass 1/(\d+) \(clean\): (\d+) / (\d+) rows", text)
    assert first and all(int(total) == rep["rows_read"] for _, _, total in first)
    assert int(first[-1][1]) == rep["rows_read"]
    for g, name in ((2, "module_index"), (3, "exact_dedup"), (4, "fuzzy_dedup")):
        assert re.search(rf"pass {g}/4 \({name}[^)]*\): \d+ / \d+ rows", text)
        assert f"pass {g}: global fit of {name} started" in text
        assert re.search(rf"pass {g}: global fit of {name} done in [\d.]+s", text)
