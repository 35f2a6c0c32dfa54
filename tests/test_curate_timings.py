"""Where the time went is part of the output set (issue 15, review finding 6): output_dir gets
curation_timings.{json,md} beside the report, per step, per pass and per stage (wall and CPU,
rows/s, global fit, dropped-row write, checkpoint), stage names in full; the report itself stays
byte-identical and names the timings files in one fixed line."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pandas as pd

from sft_playbook.curate import pipeline
from sft_playbook.curate.base import Stage
from sft_playbook.curate.pipeline import curate
from sft_playbook.curate.report import TIMINGS_LINE, timings_markdown
from test_curate_scale import awkward_source, config

STEPS = {"plan sources", "start engine", "read sources (workers)", "stage passes",
         "split: ranks + part files (workers)", "merge splits (workers)", "report"}


def test_the_output_set_says_where_the_time_went_per_step_pass_and_stage(tmp_path):
    awkward_source(tmp_path / "src")
    rep = curate(config(tmp_path, "local"))
    out = tmp_path / "out"
    t = json.loads((out / "curation_timings.json").read_text())
    md = (out / "curation_timings.md").read_text()
    assert set(t["steps_s"]) == STEPS and all(v >= 0 for v in t["steps_s"].values())
    assert t["rows_read"] == rep["rows_read"] and t["total_s"] >= sum(t["steps_s"].values()) - 0.05
    assert t["engine"] == "this process (engine=local)" and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", t["finished_utc"])
    stage_names = [st["name"] for st in rep["stages"]]
    assert [n for p in t["passes"] for n in p["stages"]] == stage_names          # every stage, in order
    fits = [p["global_fit"] for p in t["passes"] if p["global_fit"]]
    assert fits == ["module_index", "exact_dedup", "fuzzy_dedup"]
    by_name = {st["name"]: st for st in rep["stages"]}
    for p in t["passes"]:
        for key in ("fit_s", "pass_s", "dropped_rows_write_s", "checkpoint_s", "total_s", "rows_per_s"):
            assert p[key] >= 0, (p["pass"], key)
        assert [s["stage"] for s in p["stage_s"]] == p["stages"]
        for s in p["stage_s"]:
            assert s["rows_in"] == by_name[s["stage"]]["rows_in"] and s["cpu_s"] >= 0 and s["wall_s"] >= 0
            if s["wall_s"] >= 0.05:                                       # rows/s from the unrounded wall time
                assert abs(s["rows_per_s"] / (s["rows_in"] / s["wall_s"]) - 1) < 0.02, s
            # its own row in the Markdown, with the full name
            assert re.search(rf"^\| {p['pass']} \| {re.escape(s['stage'])} \| {s['rows_in']} \| ", md, re.M), s["stage"]
    for step in STEPS:
        assert f"| {step} | " in md
    for p in t["passes"]:
        fit = sum(s["fit_s"] for s in p["stage_s"])
        assert fit <= p["fit_s"] + 0.02, p                            # the pass's fit time is the stages' fits
        if p["global_fit"]:
            s = p["stage_s"][0]
            assert re.search(rf"^\| {p['pass']} \| {s['stage']} \| {s['rows_in']} \| {s['fit_s']:.2f} global \| ", md, re.M)
    assert md == timings_markdown(t)
    assert not list(out.glob("*.tmp")) and not list(tmp_path.glob(".out.new.*"))


def test_the_report_points_to_the_timings_and_stays_byte_identical(tmp_path):
    awkward_source(tmp_path / "src")
    cfg = config(tmp_path, "local")
    curate(cfg)
    out = tmp_path / "out"
    report = {n: (out / n).read_bytes() for n in ("curation_report.json", "curation_report.md")}
    first = (out / "curation_timings.json").read_bytes()
    md = report["curation_report.md"].decode()
    assert md.count(TIMINGS_LINE) == 1 and "curation_timings.md" in TIMINGS_LINE
    assert not re.search(r"\d+(\.\d+)? ?s\b", TIMINGS_LINE)             # no time in the fixed line
    shutil.rmtree(out)
    curate(cfg)
    assert {n: (out / n).read_bytes() for n in report} == report
    assert (out / "curation_timings.json").read_bytes() != first       # a new measurement each run


class LongNamed(Stage):
    name = "a_stage_with_a_name_well_over_forty_eight_characters_long_for_the_cut"

    def process(self, df: pd.DataFrame) -> pd.DataFrame:
        return df


def test_stage_names_are_not_cut(tmp_path, monkeypatch):
    real = pipeline.build_stages

    def with_long(cfg):
        stages = real(cfg)
        return stages[:1] + [LongNamed()] + stages[1:]
    monkeypatch.setattr(pipeline, "build_stages", with_long)
    awkward_source(tmp_path / "src")
    curate(config(tmp_path, "local"))
    md = (tmp_path / "out" / "curation_timings.md").read_text()
    assert f"| 1 | {LongNamed.name} | " in md
    assert LongNamed.name in json.loads((tmp_path / "out" / "curation_timings.json").read_text())["passes"][0]["stages"]


def test_timings_file_is_an_extra_copy(tmp_path):
    awkward_source(tmp_path / "src")
    curate(config(tmp_path, "local", [f"timings_file={tmp_path / 'elsewhere' / 't.json'}"]))
    assert (tmp_path / "elsewhere" / "t.json").read_bytes() == (tmp_path / "out" / "curation_timings.json").read_bytes()


def test_a_resumed_run_marks_the_passes_an_earlier_run_did(tmp_path, monkeypatch):
    from sft_playbook.io import OutputError

    awkward_source(tmp_path / "src")
    cfg = config(tmp_path, "local", [f"work_dir={tmp_path / 'work'}"])

    def boom(*a, **k):
        raise OutputError(28, "no space left on device writing x")
    monkeypatch.setattr(pipeline, "merge_split", boom)
    try:
        curate(cfg)
    except OutputError:
        pass
    monkeypatch.undo()
    curate({**cfg, "resume": True})             # the same inputs (config() would rewrite the benchmark)
    t = json.loads((tmp_path / "out" / "curation_timings.json").read_text())
    resumed = [p for p in t["passes"] if p.get("resumed")]
    assert len(resumed) == len(t["passes"]) - 1 >= 2             # all but the last pass were checkpointed
    md = (tmp_path / "out" / "curation_timings.md").read_text()
    assert md.count("finished in an earlier run (resume)") == len(resumed)
    # the headline says so and counts only the rows through the passes run (REVIEW15b finding 10)
    last = [p for p in t["passes"] if not p.get("resumed")]
    assert t["resumed_passes"] == [p["pass"] for p in resumed] and len(last) == 1
    assert t["rows_through"] == last[0]["rows_in"] < t["rows_read"]
    assert abs(t["rows_per_s"] - t["rows_through"] / t["total_s"]) <= 0.01 * t["rows_per_s"] + 1
    head = md.splitlines()[2]
    want = f"RESUMED - pass(es) 1-{len(resumed)} and the read of {t['rows_read']} rows were done by an earlier run"
    assert want in head and "not timed here" in head and "rows/s overall" not in head, head


def test_committed_report_links_nothing_that_is_not_shipped():
    """The committed data/merged/curation_report.md holds the fixed timings line, and every
    relative link in it points to a file that is committed (the timings files are git-ignored)."""
    from sft_playbook.paths import REPO_ROOT

    md = (REPO_ROOT / "data" / "merged" / "curation_report.md").read_text()
    assert md.count(TIMINGS_LINE) == 1
    assert "beside this report on each run" in TIMINGS_LINE and "not shipped" in TIMINGS_LINE
    for target in re.findall(r"\]\(([^)#]+)\)", md):
        if "://" not in target:
            assert (REPO_ROOT / "data" / "merged" / target).is_file(), target
            ignored = subprocess.run(["git", "check-ignore", "-q", str(REPO_ROOT / "data" / "merged" / target)],
                                     cwd=REPO_ROOT).returncode == 0
            assert not ignored, f"the report links {target}, which .gitignore keeps out of the repository"
