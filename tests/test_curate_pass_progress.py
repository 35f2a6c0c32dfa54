"""Every pass's plain progress lines count partitions as they finish (REVIEW15b finding 7: pass 2's
only line came at its very end, "2000 / 100000 rows (2%)": the small per-partition reports were
queued behind every other pass task on the workers)."""
from __future__ import annotations

import json
import logging
import random
import re

import pytest

from sft_playbook.config import load_config
from sft_playbook.curate.pipeline import curate
from sft_playbook.paths import REPO_ROOT

import curate_fixtures as fx


def templated_rows(n: int, seed: int = 7):
    """``n`` distinct small modules from one template (generated RTL): every row defines its own module."""
    rng = random.Random(seed)
    kinds = ["mux", "fifo", "timer", "latch", "shifter", "encoder", "counter"]
    for i in range(n):
        w = rng.randrange(2, 33)
        k = rng.choice(kinds)
        wires = "".join(f"  wire [{w - 1}:0] s{i}_{j} = a {rng.choice('|&^+')} {rng.randrange(1, 65535)};\n"
                        for j in range(rng.randrange(2, 5)))
        code = (f"module m{i}_{k}_{rng.randrange(10**9)} (input clk, input [{w - 1}:0] a, output reg [{w - 1}:0] y);\n"
                f"{wires}  always @(posedge clk) y <= s{i}_0 | a;\nendmodule\n")
        yield {"id": f"t-{i}", "code": code,
               "summary": f"This {k} module {rng.randrange(10**6)} combines a path of width {w} and registers it."}


@pytest.mark.slow
def test_the_module_index_pass_reports_progress_while_it_runs(tmp_path, caplog):
    src = tmp_path / "src"
    src.mkdir()
    n = 16000
    (src / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in templated_rows(n)))
    (tmp_path / "sources.jsonl").write_text(json.dumps({"name": "t", "path": str(src), "format": "flat",
                                                        "code_field": "code", "levels": {"high_level": "summary"},
                                                        "license": "MIT"}) + "\n")
    cfg = load_config(REPO_ROOT / "configs/curate.yaml", [
        f"sources={tmp_path / 'sources.jsonl'}", f"output_dir={tmp_path / 'out'}", "dropped_dir=null",
        f"decontaminate.benchmark_dir={fx.write_benchmark(tmp_path / 'bench')}", "levels=[high_level]",
        "engine.engine=dask", "engine.n_workers=2", "engine.partition_rows=2000", "pii.backend=regex",
        "progress_every_s=0.2"])
    cfg["rules"]["compiles"]["enabled"] = False
    with caplog.at_level(logging.INFO, logger="sft_playbook.curate"):
        curate(cfg)
    lines = [r.getMessage() for r in caplog.records if re.match(r"pass 2/\d+ \(module_index", r.getMessage())]
    pass_s = json.loads((tmp_path / "out" / "curation_timings.json").read_text())["passes"][1]["pass_s"]
    assert pass_s > 0.7, pass_s                                     # long enough for several 0.2 s lines
    done = [int(re.search(r": (\d+) / ", m).group(1)) for m in lines]
    assert len(done) >= 2 and done[0] <= 0.5 * n and done == sorted(done), lines
