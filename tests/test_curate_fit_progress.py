"""The global fits say how far they are (issue 15, review finding 11: the fuzzy-dedup fit was
silent for 101 of 110 s at 100k rows): each step that runs over the corpus gets a progress line
(done / total, rate) through the same mechanism as the passes (tqdm on a terminal, else a plain
line every progress_every_s seconds)."""
from __future__ import annotations

import logging
import re

import pytest

from sft_playbook.curate.engine import ProgressLine
from sft_playbook.curate.pipeline import curate
from test_curate_scale import awkward_source, config


def last(text: str, what: str, unit: str) -> tuple[int, int]:
    """The last progress line of ``what``: (done, total)."""
    found = re.findall(rf"{re.escape(what)}[^\n]*?: (\d+) / (\d+) {unit} \(\d+%\), \d+ {unit}/s", text)
    assert found, f"no progress line for {what!r} in {unit}"
    return int(found[-1][0]), int(found[-1][1])


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_every_global_fit_reports_its_progress_to_the_total(tmp_path, caplog, engine):
    awkward_source(tmp_path / "src")
    extra = ["progress_every_s=0.000001"] + (["engine.n_workers=2"] if engine == "dask" else [])
    with caplog.at_level(logging.INFO, logger="sft_playbook.curate"):
        rep = curate(config(tmp_path, engine, extra))         # pytest's stderr is not a terminal: plain lines
    text = caplog.text
    st = {s["name"]: s for s in rep["stages"]}
    fuzzy_in = st["fuzzy_dedup"]["rows_in"]
    assert last(text, "fuzzy_dedup fit 1/5: MinHash signatures shuffled by LSH band", "signatures") == (fuzzy_in, fuzzy_in)
    assert last(text, "fuzzy_dedup fit 2/5: shingle sets", "rows") == (fuzzy_in, fuzzy_in)
    done, total = last(text, "fuzzy_dedup fit 3/5: candidate pairs verified", "rows x units")
    assert done == total > 0
    pairs = rep["duplicates"]["fuzzy_dedup"]["candidate_pairs"]
    assert pairs > 0 and f"fuzzy_dedup fit 4/5: {pairs} candidate pairs" in text
    assert last(text, "fuzzy_dedup fit 5/5: rows with a verified near duplicate", "rows") == (fuzzy_in, fuzzy_in)
    assert "(rows routed by _order range)" in text     # the pipeline's partitions: each request to one partition
    exact_in = st["exact_dedup"]["rows_in"]
    assert last(text, "exact_dedup fit: hashes grouped into", "rows") == (exact_in, exact_in)
    done, total = last(text, "module_index fit: module names", "names")
    assert done == total >= st["module_index"]["rows_in"]     # at least one name per row with a module


def test_a_progress_line_names_its_unit(caplog):
    now = [0.0]
    with caplog.at_level(logging.INFO, logger="sft_playbook.curate"):
        p = ProgressLine("fuzzy_dedup fit 1/4", 200, 5, clock=lambda: now[0], unit="signatures")
        now[0] = 10
        p.update(50.5)
        p.update(49.5)
    assert [r.getMessage() for r in caplog.records] == ["fuzzy_dedup fit 1/4: 50 / 200 signatures (25%), 5 signatures/s"]
