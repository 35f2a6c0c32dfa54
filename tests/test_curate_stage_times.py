"""Where the time went, per stage: stages fused into one pass are timed inside the per-partition
function (on the workers) and summed over the partitions (issue 15, review finding 6)."""
from __future__ import annotations

import json
import logging
import time

import pandas as pd

from sft_playbook.curate.base import Chain, Stage
from test_curate_scale import awkward_source, config
from sft_playbook.curate.pipeline import curate


class Sleeper(Stage):
    name = "a_stage_with_a_rather_long_name_to_check_the_cut"

    def __init__(self, seconds: float, busy: bool) -> None:
        super().__init__(seconds=seconds, busy=busy)
        self.seconds, self.busy = seconds, busy

    def process(self, df: pd.DataFrame) -> pd.DataFrame:
        end = time.perf_counter() + self.seconds
        if self.busy:
            while time.perf_counter() < end:
                pass
        else:
            time.sleep(self.seconds)
        return df


def test_chain_times_each_stage_wall_and_cpu():
    df = pd.DataFrame({"id": ["1", "2"], "_order": pd.Series([0, 1], dtype="int64"), "text": ["a", "b"]})
    times: list = []
    Chain([Sleeper(0.15, busy=False), Sleeper(0.15, busy=True)]).split(df, times)
    assert len(times) == 2
    (w0, c0), (w1, c1) = times
    assert w0 >= 0.14 and c0 < 0.05            # sleeping: wall, no CPU
    assert w1 >= 0.14 and c1 >= 0.04 and c1 > 3 * c0   # spinning: wall and CPU (a shared machine: not all of it)
    out, _, sums = Chain([Sleeper(0.0, busy=False)]).split(df)      # without times: as before
    assert len(out) == 2 and sums == {}


def test_every_stage_of_every_pass_has_its_time_and_full_name(tmp_path, caplog):
    awkward_source(tmp_path / "src")
    cfg = config(tmp_path, "local", [f"timings_file={tmp_path / 'timings.json'}"])
    with caplog.at_level(logging.INFO, logger="sft_playbook.curate"):
        curate(cfg)
    t = json.loads((tmp_path / "timings.json").read_text())
    for p in t["passes"]:
        assert [s["stage"] for s in p["stage_s"]] == p["stages"]
        assert all(s["wall_s"] >= 0 and s["cpu_s"] >= 0 for s in p["stage_s"])
        assert sum(s["wall_s"] for s in p["stage_s"]) <= p["pass_s"] * 1.05 + 0.05   # one process: inside the pass
        assert p["rows_per_s"] > 0
    first = max(t["passes"], key=lambda p: len(p["stages"]))     # the fused pass (rules ... both_views)
    assert len(first["stages"]) > 5 and sum(s["wall_s"] for s in first["stage_s"]) > 0
    names = ", ".join(first["stages"])
    assert len(names) > 48 and names in caplog.text            # not cut
    for s in first["stages"]:
        assert f"| {first['pass']} | {s} | " in caplog.text           # its own row, full name


def distinct_rows(n: int) -> list[dict]:
    """``n`` rows that survive exact dedup (distinct constants in the code, not in comments), so the
    next global stages' keys (hashes, MinHash signatures) are computed on all of them."""
    import random

    import curate_fixtures as fx

    rows, _ = fx.records()
    rng = random.Random(15)
    out = []
    for i in range(n):
        r = json.loads(json.dumps(rows[i % len(rows)]))
        r["id"] = f"d{i}"
        consts = "".join(f"  localparam [31:0] K{j} = 32'd{rng.randrange(10**9)};\n" for j in range(6))
        r["code"] = r["code"].replace("endmodule", consts + "endmodule")
        out.append(r)
    return out


def test_a_pass_time_is_its_stages_plus_its_other_work(tmp_path, caplog):
    """engine=local (one thread): every pass's stage rows plus its other rows (the next global
    stage's keys, drop counts, ...) add up to its pass seconds; the MinHash signatures computed at
    the end of the exact-dedup pass are on a "keys for fuzzy_dedup" row (REVIEW15b finding 5)."""
    from test_curate_inputs import cfg_for

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in distinct_rows(600)))
    cfg = cfg_for(tmp_path, src)
    cfg["engine"]["partition_rows"] = 100
    cfg["rules"]["compiles"]["enabled"] = False
    cfg["timings_file"] = str(tmp_path / "timings.json")
    with caplog.at_level(logging.INFO, logger="sft_playbook.curate"):
        curate(cfg)
    t = json.loads((tmp_path / "timings.json").read_text())
    for p in t["passes"]:
        inside = sum(s["wall_s"] for s in p["stage_s"]) + sum(o["wall_s"] for o in p["other_s"])
        assert 0.8 * p["pass_s"] - 0.1 <= inside <= 1.05 * p["pass_s"] + 0.05, p
    by_step = {(p["pass"], o["step"]): o for p in t["passes"] for o in p["other_s"]}
    exact = next(p["pass"] for p in t["passes"] if p["stages"] == ["exact_dedup"])
    fuzzy = by_step[(exact, "keys for fuzzy_dedup")]
    assert fuzzy["wall_s"] > 0 and fuzzy["cpu_s"] > 0
    assert f"| {exact} | (keys for fuzzy_dedup) | - | - | {fuzzy['wall_s']:.2f} |" in caplog.text
