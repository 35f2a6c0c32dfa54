"""The shipped sample: the pipeline removes or repairs exactly the planted defects listed in
data/sample/manifest.json (precision and recall per defect kind), and the committed data/merged/ is
reproduced byte for byte by the default config.

Manifest mapping (data/sample/README.md): the row on line L has the pipeline id
``<source_name>-<L-1>``; ``defects[]`` give kind, expected action (drop / redact / repair) and the
acceptable drop reasons; ``clean[]`` rows must all survive.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

import curate_fixtures as fx
from sft_playbook.config import load_config
from sft_playbook.curate.pipeline import curate
from sft_playbook.curate.report import TIMINGS_FILES
from sft_playbook.paths import REPO_ROOT

SAMPLE = REPO_ROOT / "data" / "sample"
MERGED = REPO_ROOT / "data" / "merged"
MANIFEST = SAMPLE / "manifest.json"
LEVELS = ("high_level", "detailed", "block")
SPLITS = ("train", "validation", "test")
DESC_FIELD = {"description.high_level_global_summary": "high_level", "description.detailed_global_summary": "detailed",
              "description.block_summary": "block"}


def read_jsonl(p: Path) -> list[dict]:
    return [json.loads(l) for l in p.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """The default config on the sample, offline, into a temporary folder (engine=local: the engine
    does not change the output; test_curate_pipeline checks that on a LocalCluster)."""
    if not MANIFEST.is_file():
        pytest.fail("data/sample/manifest.json is missing: the shipped sample is part of the repository")
    tmp = tmp_path_factory.mktemp("sample_run")
    cfg = load_config(REPO_ROOT / "configs/curate.yaml", [
        f"output_dir={tmp / 'merged'}", f"dropped_dir={tmp / 'dropped'}", "download.offline=true", "engine.engine=local"])
    report = curate(cfg)
    drops = {}
    for f in sorted((tmp / "dropped").glob("*.jsonl")):
        for r in read_jsonl(f):
            drops[r["id"]] = r
    kept: dict[str, dict[str, dict]] = defaultdict(dict)
    for lvl in LEVELS:
        for s in SPLITS:
            for r in read_jsonl(tmp / "merged" / lvl / f"{s}.jsonl"):
                kept[r["id"]][lvl] = r
    return {"dir": tmp / "merged", "report": report, "drops": drops, "kept": kept,
            "manifest": json.loads(MANIFEST.read_text(encoding="utf-8"))}


def pid(manifest: dict, index: int) -> str:
    return f"{manifest['source_name']}-{index}"


def test_planted_defects_precision_and_recall_per_kind(sample_run):
    m, drops, kept = sample_run["manifest"], sample_run["drops"], sample_run["kept"]
    clean_ids = {pid(m, c["index"]) for c in m["clean"]}
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for d in m["defects"]:
        by_kind[d["kind"]].append(d)
    table = {}
    for kind, ds in sorted(by_kind.items()):
        ids = {pid(m, d["index"]): d for d in ds}
        if ds[0]["expected"] == "drop":
            reasons = {r for d in ds for r in d["reasons"]}
            hits = {i for i, d in ids.items() if i in drops and drops[i]["reason"] in d["reasons"]}
            # false positives: clean rows dropped with one of this kind's reasons
            fps = {i for i in clean_ids if i in drops and drops[i]["reason"] in reasons}
        else:   # redact / repair: the row stays, every level, repaired
            hits = set()
            for i, d in ids.items():
                if i not in kept or set(kept[i]) != set(LEVELS):
                    continue
                text = json.dumps(kept[i], ensure_ascii=False)
                if kind == "pii":
                    ok = all(p["value"] not in text for p in d["pii"])
                else:   # mojibake: the fixed text is there, the broken one is gone
                    ok = all(d["fixed"] in kept[i][DESC_FIELD[f]]["input"] and d["broken"] not in text
                             for f in d["fields"])
                if ok:
                    hits.add(i)
            fps = set()
            if kind == "pii":   # over-redaction: placeholders in rows without planted PII
                marks = ("<EMAIL>", "<PHONE>", "<IP_ADDRESS>", "<NAME>", "<SECRET>", "<CREDIT_CARD>")
                fps = {i for i in clean_ids if i in kept
                       and any(mk in json.dumps(kept[i], ensure_ascii=False) for mk in marks)}
        table[kind] = {"planted": len(ids), "found": len(hits),
                       "recall": len(hits) / len(ids), "precision": len(hits) / max(1, len(hits) + len(fps))}
    print(json.dumps(table, indent=1))
    bad = {k: v for k, v in table.items() if v["recall"] < 1.0 or v["precision"] < 1.0}
    assert not bad, bad
    # no clean row is lost, whatever the reason
    lost = sorted(i for i in clean_ids if i not in kept)
    assert not lost, [(i, drops.get(i, {}).get("stage"), drops.get(i, {}).get("reason")) for i in lost]


def test_redactions_are_counted_by_kind(sample_run):
    m, report = sample_run["manifest"], sample_run["report"]
    planted = defaultdict(int)
    for d in m["defects"]:
        for p in d.get("pii", []):
            planted[p["kind"]] += 1
    for kind, n in planted.items():
        assert report["redactions"].get(kind, 0) >= n, (kind, report["redactions"])


def test_every_drop_has_a_stage_reason_and_is_counted(sample_run):
    report, drops = sample_run["report"], sample_run["drops"]
    assert report["rows_read"] == sample_run["manifest"]["rows"]
    assert report["rows_read"] - report["rows_kept"] == len(drops)
    assert sum(sum(st["dropped"].values()) for st in report["stages"]) == len(drops)
    assert all(r["reason"] and r["stage"] for r in drops.values())


def _without_bench(report_text: str) -> str:
    """The decontamination facts depend on whether ../shared/benchmarks is next to the clone."""
    rep = json.loads(report_text)
    facts = [rep["decontamination"]]
    for st in rep["stages"]:
        if st["name"] == "decontaminate":
            assert st["dropped"] == {}, "the sample must not be contaminated"
            facts.append(st["extra"])
    for f in facts:
        f["problems_checked"] = None
        for k in [k for k in f if k.endswith("_below_floor")]:   # counted over the benchmark's problems
            del f[k]
    return json.dumps(rep, sort_keys=True)


def test_committed_merged_data_is_reproduced_exactly(sample_run):
    out = sample_run["dir"]
    # the timings files (where the time went) change from run to run by design: not committed
    # (.gitignore), not compared; named explicitly so that nothing else escapes the comparison
    committed = sorted(p.relative_to(MERGED) for p in MERGED.rglob("*") if p.is_file() and p.name not in TIMINGS_FILES)
    produced = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and p.name not in TIMINGS_FILES)
    assert committed == produced
    assert all((out / name).is_file() for name in TIMINGS_FILES)
    for rel in produced:
        a, b = (MERGED / rel).read_bytes(), (out / rel).read_bytes()
        if rel.suffix == ".png":
            # rendered by the installed matplotlib/freetype: checked to be a PNG, not byte-compared
            assert a[:8] == b[:8] == b"\x89PNG\r\n\x1a\n"
        elif fx.REAL_BENCH.is_dir():
            assert a == b, f"{rel} differs from the committed data/merged/{rel}"
        elif rel.name == "curation_report.json":
            assert _without_bench(a.decode()) == _without_bench(b.decode())
        elif rel.name == "curation_report.md":
            strip = lambda t: [l for l in t.decode().splitlines() if "benchmark problems checked" not in l]  # noqa: E731
            assert strip(a) == strip(b)
        else:
            assert a == b, f"{rel} differs from the committed data/merged/{rel}"
