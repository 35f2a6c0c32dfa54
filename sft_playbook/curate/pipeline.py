"""The curation pipeline, in the order of the recipe (configs/curate.yaml holds every threshold).

    0. load      sources/huggingface_urls.jsonl -> records (hub download, or the offline sample)
    1. clean     unicode, whitespace, MG-Verilog wrapper, header recovery, full module
       module_index  module name -> defining row, for the compile check (global; drops nothing)
    2. rules     descriptions: word count, URL share, top n-gram share;
                 code: line count, longest line, alphabetic share, module...endmodule, iverilog
                 (first standard that accepts it; submodules from the module index)
    3. pii       redact e-mails, phones, IPs, names on author/copyright lines, keys (counted by kind)
    4. decontaminate   against VerilogEval v2 prompts and references
    5. both views      keep ids whose code and descriptions all survived
    6. dedup     exact (normalised code hash), fuzzy (MinHash + LSH, Jaccard-verified): last of the
                 stages that drop rows, so every dropped duplicate names a row that is written
    7. merge     shuffle; split 80/15/5; <output_dir>/<level>/{train,validation,test}.jsonl + report

Each stage runs on every partition through Dask (see engine.py). Consecutive row-level stages are
fused into one pass per partition (``Chain``); a global stage (dedup) starts a new chain, and the
keys its decision needs (hashes, signatures) are computed at the end of the pass before it, so no
stage is computed twice and a dedup costs no pass of its own. Every stage's drops are counted by reason and
written to ``dropped_dir/<nn>_<stage>.jsonl`` with the reason and detail.
"""
from __future__ import annotations

import logging
import os
import time
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from tqdm import tqdm

from ..config import ConfigError, get
from ..paths import resolve
from .base import BOOKKEEPING, DETAIL, REASON, STAGE_COL, Chain, Stage, StageStats
from .clean import CleanAndUnify
from .decontam import Decontaminate
from .dedup import ExactDedup, FuzzyDedup
from .engine import Engine, EngineError
from .hierarchy import ModuleIndex
from .filters import AlphaShare, Compiles, HasModule, LineCount, LongestLine, TopNGramShare, UrlShare, WordCount
from ..io import replace_dir_atomic
from .io import write_jsonl_atomic
from .pii import RedactPII
from .report import write_report
from .sources import (BadLines, DownloadError, SourceError, data_files, download_hub, licence_of, load_records,
                      read_source_specs, records_frame, to_jsonl_records)
from .split import KeepBothViews, merge

log = logging.getLogger("sft_playbook.curate")
EXAMPLES_PER_REASON = 3


class PipelineError(RuntimeError):
    pass


def check_settings(cfg: dict[str, Any]) -> None:
    """The settings no stage owns, checked before any work: ``levels`` (a non-empty list of distinct
    names) and ``split`` (train/validation/test fractions in [0, 1] summing to 1). ConfigError
    with one line naming the key."""
    levels = get(cfg, "levels")
    if not isinstance(levels, list) or not levels:
        raise ConfigError(f"levels: give at least one description level, e.g. [high_level] (got {levels!r})")
    if not all(isinstance(lvl, str) and lvl for lvl in levels) or len(set(levels)) != len(levels):
        raise ConfigError(f"levels: must be distinct level names, got {levels!r}")
    split = get(cfg, "split")
    want = ("train", "validation", "test")
    if not isinstance(split, dict) or set(split) != set(want):
        have = sorted(split) if isinstance(split, dict) else split
        raise ConfigError(f"split: needs exactly the fractions train, validation and test, got {have!r}")
    for k in want:
        v = split[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise ConfigError(f"split.{k}: must be a fraction between 0 and 1, got {v!r}")
    if abs(sum(float(split[k]) for k in want) - 1.0) > 1e-6:
        raise ConfigError("split: train + validation + test must be 1, got "
                          + " + ".join(f"{split[k]:g}" for k in want) + f" = {sum(float(split[k]) for k in want):g}")


def build_stages(cfg: dict[str, Any]) -> list[Stage]:
    """The recipe: an ordered list of configured stages. A section with ``enabled: false`` is left out.
    Every setting is checked here (``check_settings`` and the stages' constructors), before any work."""
    check_settings(cfg)
    levels = list(get(cfg, "levels"))
    desc = [f"desc_{lvl}" for lvl in levels]

    def section(key: str) -> dict[str, Any] | None:
        sec = dict(get(cfg, key))
        return sec if sec.pop("enabled", True) else None

    index: list[ModuleIndex] = []            # the module index the compile check elaborates against

    def module_index(s):
        index.append(ModuleIndex("code", **s))
        return index[0]

    wanted: list[tuple[str, Any]] = [
        ("clean", lambda s: CleanAndUnify(levels, **s)),                                     # 1
        ("module_index", module_index),                                                      # 1b (global)
        ("rules.word_count", lambda s: WordCount(desc, **s)),                                # 2 (descriptions)
        ("rules.url_share", lambda s: UrlShare(desc, **s)),
        ("rules.top_ngram", lambda s: TopNGramShare(desc, **s)),
        ("rules.line_count", lambda s: LineCount(**s)),                                      # 2 (code)
        ("rules.longest_line", lambda s: LongestLine(**s)),
        ("rules.alpha_share", lambda s: AlphaShare(**s)),
        ("rules.has_module", lambda s: HasModule(**s)),
        ("rules.compiles", lambda s: Compiles(**s, index=index[0] if index else None)),
        ("pii", lambda s: RedactPII(["code"], desc, **s)),                                   # 3
        ("decontaminate", lambda s: Decontaminate(code_fields=["code"], text_fields=desc, **s)),  # 4
        ("both_views", lambda s: KeepBothViews(levels, **s)),                                # 5
        # the dedups come last: a dropped duplicate names a kept row, so no stage may drop rows after them
        ("exact_dedup", lambda s: ExactDedup("code", **s)),                                  # 6
        ("fuzzy_dedup", lambda s: FuzzyDedup("code", seed=int(get(cfg, "seed")), **s)),
    ]
    stages = []
    for key, make in wanted:
        sec = section(key)
        if sec is not None:
            try:
                stages.append(make(sec))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"config section {key!r}: {exc}") from None
    return stages


# -- step 0: sources ------------------------------------------------------------------------------
def load_sources(cfg: dict[str, Any]) -> tuple[pd.DataFrame, list[dict[str, Any]], BadLines]:
    levels = list(get(cfg, "levels"))
    on_bad = get(cfg, "on_bad_line")
    if on_bad not in ("error", "skip"):
        raise ConfigError(f"on_bad_line must be 'error' or 'skip', not {on_bad!r}")
    specs = read_source_specs(get(cfg, "sources"))
    for s in specs:
        missing = set(levels) - set(s["levels"])
        if missing:
            raise SourceError(f"{s['_where']}: no field for level(s) {sorted(missing)} (levels in the config: {levels})")
    bad = BadLines()
    raw_dir = resolve(get(cfg, "download.raw_dir"))
    records: list[dict[str, Any]] = []
    origins: list[dict[str, Any]] = []
    use_sample = False
    hub = [s for s in specs if s.get("repo_id")]
    if hub and get(cfg, "download.offline"):
        log.warning("download.offline=true: not contacting the hub; curating the offline sample %s instead",
                    get(cfg, "sample_dir"))
        use_sample = True
    elif hub and not os.environ.get("HF_TOKEN") and get(cfg, "download.require_token"):
        log.warning("no HF_TOKEN (put it in token.env, see token.env.example): not downloading %s. "
                    "Curating the offline sample %s instead (download.require_token=false tries anonymously).",
                    ", ".join(s["repo_id"] for s in hub), get(cfg, "sample_dir"))
        use_sample = True
    for spec in specs:
        if spec.get("repo_id") and use_sample:
            continue
        if spec.get("repo_id"):
            try:
                folder = download_hub(spec, raw_dir, float(get(cfg, "download.timeout_s")))
            except DownloadError as exc:
                if not get(cfg, "download.fallback_to_sample"):
                    raise
                log.warning("could not download %s from the hub (%s). Curating the offline sample %s instead "
                            "(download.fallback_to_sample=false makes this an error).", spec["repo_id"], exc,
                            get(cfg, "sample_dir"))
                use_sample = True
                records = [r for r in records if r["source"] not in {s["name"] for s in hub}]
                origins = [o for o in origins if o["origin"] != "hub"]
                continue
            files = data_files(folder, spec["split"])
            if not files:
                raise SourceError(f"{spec['_where']}: no data files ({', '.join(('parquet', 'arrow', 'json', 'jsonl'))}) "
                                  f"for split {spec['split']!r} in the download {folder}")
            recs = load_records(spec, files, on_bad, bad)
            out = to_jsonl_records(spec, recs, folder)
            log.info("%s: %d records converted to %s", spec["name"], len(recs), out)
            origin = "hub"
        else:
            path = resolve(spec["path"])
            if not path.exists():
                raise SourceError(f"{spec['_where']}: local path {path} does not exist")
            recs = load_records(spec, data_files(path, None), on_bad, bad)
            origin = "local"
        records += recs
        origins.append({"name": spec["name"], "origin": origin, "rows": len(recs), **licence_of(spec)})
    if use_sample:
        sample = resolve(get(cfg, "sample_dir"))
        files = sorted(sample.glob("*.jsonl")) if sample.is_dir() else []
        if not files:
            raise SourceError(f"offline sample not found: no *.jsonl in {sample}")
        template = dict(hub[0]) if hub else {"format": "mg-verilog", "code_field": "code",
                                             "description_field": "description", "id_field": "id"}
        spec = {**template, "name": get(cfg, "sample_name"), "levels": template.get("levels") or {}}
        recs = load_records(spec, files, on_bad, bad)
        records += recs
        origins.append({"name": spec["name"], "origin": "offline sample " + str(get(cfg, "sample_dir")), "rows": len(recs),
                        "license": str(get(cfg, "sample_license") or "unknown")})
    if bad.skipped:
        log.warning("skipped %d bad input line(s) (on_bad_line=skip), e.g. %s", bad.skipped, "; ".join(bad.examples[:3]))
    return records_frame(records, levels), origins, bad


# -- the stage loop ---------------------------------------------------------------------------------
def chains(stages: list[Stage]) -> list[list[Stage]]:
    """Split the recipe into chains: a global stage (dedup) starts a new one."""
    out: list[list[Stage]] = []
    for st in stages:
        if not out or st.is_global:
            out.append([])
        out[-1].append(st)
    return out


def _pass(part, index: int, chain: Chain, keys_of: Stage | None, slim: bool,
          load: Callable | None = None, finish: Callable | None = None):
    """One pass over one partition (runs on a worker): the chain's kept rows, and for the driver
    the rows in, the dropped rows (only their bookkeeping columns when ``slim``), the counter
    totals and, on the kept rows, the keys the next global stage's ``fit`` needs. ``load`` turns
    the item into the partition first (e.g. reads a file) and ``finish(kept, index)`` consumes the
    kept rows at the end (e.g. writes them) in the same task; its result replaces them."""
    if load is not None:
        part = load(part)
    kept, gone, sums = chain.split(part)
    if slim:
        gone = gone[["id", "_order", STAGE_COL, REASON, DETAIL]]
    report = {"rows": len(part), "gone": gone, "sums": sums,
              "keys": keys_of.keys(kept) if keys_of is not None else None}
    if finish is not None:
        report["finished"] = finish(kept, index)
        return report
    return kept, report


def run_stages(parts: list, stages: list[Stage], engine: Engine, dropped_dir: Path | None, collect: bool = True,
               load: Callable | None = None, finish: Callable | None = None):
    """Run the stages in order over the partitions (``engine.partitions(df)``, or items that
    ``load(item)`` turns into partitions on the workers, in the first pass); returns (kept rows,
    [StageStats]). The kept rows are a pandas frame sorted by input order, with ``collect=False``
    the list of partitions, with ``finish`` the list of ``finish(kept partition, index)`` results
    (run in the last pass: e.g. every worker writes its partitions). Without a dropped_dir only
    the bookkeeping columns of dropped rows reach the driver."""
    stats: list[StageStats] = []
    groups = chains(stages)
    if load is not None and groups and groups[0][0].is_global:
        parts, load = engine.map(load, parts), None     # its fit needs the partitions, not the items
    rows = None                              # counted with the first pass's results (no extra pass)
    keys = None                              # what the previous pass computed for this chain's global stage
    number = 0
    bar = tqdm(total=len(stages), desc="curation stages", unit="stage", disable=None)
    for g, chain in enumerate(groups):
        t0 = time.monotonic()
        for st in chain:
            if not st.is_global or st is chain[0]:
                st.fit(parts, engine, keys if st is chain[0] else None)   # global: on the data as it is now
        following = groups[g + 1][0] if g + 1 < len(groups) else None
        keys_of = following if following is not None and following.is_global \
            and type(following).keys is not Stage.keys else None
        last = following is None and finish is not None
        task = partial(_pass, chain=Chain(chain), keys_of=keys_of, slim=dropped_dir is None,
                       load=load if g == 0 else None, finish=finish if last else None)
        results = engine.map(task, parts, range(len(parts)))
        if last:
            reports = engine.gather(results)
            parts = [r["finished"] for r in reports]
        else:
            parts = engine.map(itemgetter(0), results)           # the kept rows stay where they are
            reports = engine.gather(engine.map(itemgetter(1), results))
        del results
        if rows is None:
            rows = sum(r["rows"] for r in reports)
        sums: dict[str, int] = {}
        for r in reports:
            for k, v in r["sums"].items():
                sums[k] = sums.get(k, 0) + v
        keys = pd.concat([r["keys"] for r in reports], ignore_index=True) if keys_of is not None else None
        dropped = pd.concat([r["gone"] for r in reports], ignore_index=True).sort_values("_order", kind="stable")
        for i, stage in enumerate(chain):
            number += 1
            mine = dropped[dropped[STAGE_COL] == i]
            st = StageStats(stage.name, rows, rows - len(mine))
            st.dropped = {str(k): int(v) for k, v in mine[REASON].value_counts().sort_index().items()}
            prefix = f"_c{i}_"
            st.counters = {c[len(prefix):]: v for c, v in sums.items() if c.startswith(prefix)}
            for reason, grp in mine.groupby(REASON, sort=True):
                st.examples[str(reason)] = [{"id": str(r["id"]), "detail": str(r[DETAIL])}
                                            for _, r in grp.head(EXAMPLES_PER_REASON).iterrows()]
            st.extra = stage.summary()
            stats.append(st)
            log.info("stage %2d %-14s %6d -> %6d rows%s%s", number, stage.name, st.rows_in, st.rows_out,
                     "  dropped " + ", ".join(f"{k}={v}" for k, v in st.dropped.items()) if st.dropped else "",
                     "  " + ", ".join(f"{k}={v}" for k, v in st.counters.items() if v) if any(st.counters.values()) else "")
            if dropped_dir is not None:
                cols = [c for c in mine.columns if c not in (*BOOKKEEPING, STAGE_COL, "id")]
                write_jsonl_atomic(dropped_dir / f"{number:02d}_{stage.name}.jsonl",
                                   ({"id": r["id"], "stage": stage.name, "reason": r[REASON], "detail": r[DETAIL],
                                     **{c: r[c] for c in cols}} for r in mine.to_dict("records")))
            bar.update(1)
            if st.rows_out == 0:
                raise PipelineError(f"stage {number} ({stage.name}) dropped all {rows} remaining rows "
                                    f"({', '.join(f'{k}: {v}' for k, v in st.dropped.items())}); nothing is left to write. "
                                    "Check its thresholds in the config.")
            rows = st.rows_out
        log.info("  (%d stage(s) in one pass: %.1fs)", len(chain), time.monotonic() - t0)
    bar.close()
    if not collect or finish is not None:
        return parts, stats
    kept = pd.concat(engine.gather(parts)).sort_values("_order", kind="stable").reset_index(drop=True)
    return kept, stats


def hierarchy_report(kept: pd.DataFrame, stats: list[StageStats], top: int = 20) -> dict[str, Any]:
    """The module index's summary, the compile check's standards and, among the rows written, those
    kept with a submodule defined nowhere in the corpus (``unresolved_submodule``): how many, the
    most frequent missing modules and the first ids (input order)."""
    out: dict[str, Any] = {}
    index = next((s for s in stats if s.name == "module_index"), None)
    if index is not None:
        out["module_index"] = index.extra
    comp = next((s for s in stats if s.name == "compiles"), None)
    if comp is not None:
        out["standards"] = {k[4:]: v for k, v in comp.counters.items() if k.startswith("std_")}
        out["submodules_resolved"] = comp.counters.get("submodules_resolved", 0)
        out["unresolved_submodule_at_compile"] = comp.counters.get("unresolved_submodule", 0)
        out["interface_mismatch_at_compile"] = comp.counters.get("interface_mismatch", 0)
    if "unresolved_modules" in kept.columns:
        mism = kept["mismatched_modules"].astype(str) if "mismatched_modules" in kept.columns \
            else pd.Series("", index=kept.index)
        marked = kept[(kept["unresolved_modules"].astype(str) != "") | (mism != "")]
        out["unresolved_rows_written"] = int(len(marked))
        for key, col in (("missing_modules", kept["unresolved_modules"].astype(str)), ("interface_mismatch", mism)):
            names = pd.Series([n for v in col[marked.index] for n in str(v).split()], dtype=object)
            out[key] = {str(k): int(v) for k, v in names.value_counts().head(top).items()}
        out["unresolved_ids"] = [str(i) for i in marked["id"].head(top)]
    return out


def curate(cfg: dict[str, Any], scheduler: str | None = None) -> dict[str, Any]:
    """Run the whole recipe; returns the report (also written to output_dir)."""
    out_dir = resolve(get(cfg, "output_dir"))
    dropped_dir = resolve(get(cfg, "dropped_dir")) if get(cfg, "dropped_dir") else None
    levels = list(get(cfg, "levels"))
    t0 = time.monotonic()
    stages = build_stages(cfg)               # every setting checked before any work
    df, origins, bad = load_sources(cfg)
    if df.empty:
        raise PipelineError("the sources gave 0 records; nothing to curate")
    log.info("loaded %d records from %s", len(df), ", ".join(f"{o['name']} ({o['rows']})" for o in origins))
    eng_cfg = dict(get(cfg, "engine"))
    if scheduler:
        eng_cfg["scheduler"] = scheduler
    if dropped_dir is not None and dropped_dir.is_dir():
        for old in dropped_dir.glob("[0-9][0-9]_*.jsonl"):   # a previous run's files (stage list may differ)
            old.unlink()
    with Engine(**eng_cfg) as engine:
        log.info("running %d stages on %s", len(stages), engine.describe())
        kept, stats = run_stages(engine.partitions(df), stages, engine, dropped_dir)
    split_cfg = get(cfg, "split")
    # The outputs are one set (every level's splits + the report): written into a fresh folder that
    # then replaces output_dir, so a failure (full disk) leaves the previous set exactly as it was.
    with replace_dir_atomic(out_dir, keep=foreign_entries(out_dir, levels)) as staging:
        report = _write_outputs(staging, kept, levels, cfg, split_cfg, df, origins, bad, stats)
    sizes = report["splits"]
    log.info("wrote %s/<level>/{train,validation,test}.jsonl for %s: %s; report in %s/curation_report.md (%.1fs)",
             out_dir, ", ".join(levels), ", ".join(f"{k}={v}" for k, v in sizes[levels[0]].items()), out_dir,
             time.monotonic() - t0)
    return report


def _write_outputs(out_dir: Path, kept, levels, cfg, split_cfg, df, origins, bad, stats) -> dict[str, Any]:
    """<out_dir>/<level>/{train,validation,test}.jsonl and the report (json, md, funnel png);
    returns the report."""
    sizes = merge(kept, levels, out_dir, int(get(cfg, "seed")), dict(split_cfg))
    redactions: dict[str, int] = {}
    for st in stats:
        for k, v in st.counters.items():
            if k.startswith("pii_"):
                redactions[k[4:]] = redactions.get(k[4:], 0) + v
    report = {
        "sources": origins,
        "rows_read": int(len(df)),
        "bad_lines": {"skipped": bad.skipped, "examples": [e.split(str(resolve('.')) + "/")[-1] for e in (bad.examples or [])]},
        "rows_kept": int(len(kept)),
        "stages": [s.to_dict() for s in stats],
        "redactions": redactions,
        "duplicates": {s.name: s.extra for s in stats if s.name in ("exact_dedup", "fuzzy_dedup")},
        "decontamination": next((s.extra for s in stats if s.name == "decontaminate"), {"problems_checked": 0}),
        "hierarchy": hierarchy_report(kept, stats),
        "splits": sizes,
        "config": {k: cfg[k] for k in ("levels", "seed", "split", "clean", "module_index", "rules", "pii", "exact_dedup",
                                       "fuzzy_dedup", "decontaminate", "both_views") if k in cfg},
    }
    write_report(out_dir, report)
    return report


REPORT_FILES = ("curation_report.json", "curation_report.md", "curation_funnel.png")


def foreign_entries(out_dir: Path, levels: list[str]) -> list[str]:
    """Entries of an existing output folder that a run does not write and that are not a previous
    run's outputs: they are carried over into the new set. A previous run's level folders
    (holding train/validation/test.jsonl) and report files are replaced, not kept."""
    if not out_dir.is_dir():
        return []
    keep = []
    for p in sorted(out_dir.iterdir()):
        if p.name in levels or p.name in REPORT_FILES or p.name.startswith("."):
            continue
        if p.is_dir() and any((p / f"{s}.jsonl").exists() for s in ("train", "validation", "test")):
            log.info("output set: the old level folder %s (not in levels) is not carried over", p)
            continue
        keep.append(p.name)
    return keep


def main(cfg: dict[str, Any], args) -> int:
    try:
        curate(cfg, scheduler=getattr(args, "scheduler", None))
    except (ConfigError, SourceError, DownloadError, PipelineError, EngineError) as exc:
        log.error("%s", exc)
        return 1
    return 0
