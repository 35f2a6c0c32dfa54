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

Where the data lives (the driver's memory must not grow with the corpus):

===================  =========================================================================
rows                 on the workers only: read there (``read_partitions``: shards, offsets),
                     passed pass to pass as futures, written there (``writers.py``: dropped
                     rows and splits as part files, then one concatenation / merge per file)
per partition        to the driver: rows in, drops per reason, 3 examples per reason, counters
read step            to the driver: per jsonl file its size, one line count per 32 MiB byte range
                     and one byte offset per shard, per parquet file its row counts per row
                     group, per staged part file (compressed jsonl, JSON list, big row group)
                     its path and counts (``list_shards``); one row count and the bad-line counts
                     per reason per pack of shards (-> id offsets; every bad line is written by
                     the workers, ``00_bad_lines.jsonl``); id uniqueness is checked on the
                     workers (ids hashed into buckets)
exact_dedup keys     on the workers: 16-byte hash + id + order, ~100 B a row as Python objects
                     (1M rows ~100 MB): shuffled by hash into buckets, one task per bucket, the
                     drop table stays on a worker and goes to the next pass (``ExactDedup``)
split                the kept ids (~20 B a row in Arrow) and the permutation (8 B a row) go to
                     ONE worker task (``partition_ranks``), which sends each partition its ranks
module_index keys    on the workers: one row per (row, module name it defines or instantiates),
                     shuffled by name (``Engine.shuffle``: dask.dataframe's task shuffle); the
                     definitions some row needs are cut out where their rows live and joined
                     into the index on one worker, which the compile check's tasks receive
                     (``ModuleIndex.state``). The driver gets 3 counts per bucket
fuzzy_dedup keys     on the workers: LSH band keys (20 bands x 44 B = 880 B a row), shuffled by
                     band key; the buckets are cut into verification units of about
                     partition_rows rows, each partition sends the shingle sets of the rows a
                     unit needs to it (a second shuffle) and the candidate pairs are verified
                     there (exact Jaccard). Candidate pairs are NOT O(near duplicates): on
                     templated code they grow with the rows (~20 a row at 20k synthetic
                     Verilog rows, ~1 % of them verified), so no task holds them all; only the
                     VERIFIED pairs (O(near duplicates)) are joined into connected components
                     on one worker for ``keep_first``; the drop table stays on a worker. The
                     driver gets the unique candidate count (a third shuffle, by pair) and a few
                     counts per partition, bucket, unit task and group (``FuzzyDedup``)
decontaminate        the benchmark's n-grams are loaded by ``fit`` and travel with the stage
                     (VerilogEval v2: 156 problems, 23k distinctive n-grams, 212 kB pickled;
                     fixed, whatever the corpus); no per-row keys
kept summary         per partition the kept row count to the driver; the ids go to the split's
                     worker, the unresolved-module names to one worker (``unresolved_report``),
                     which sends the driver the top 20 and the first 20 ids
===================  =========================================================================

The global fits (module_index, exact and fuzzy dedup) report their progress like the passes
(``Engine.gather_progress``: tqdm on a terminal, else a plain line every ``progress_every_s``
seconds; rows, signatures, module names or candidate pairs done / total, and the rate): for that
the driver also gets one count per partition or bucket and step.

Checkpoints (``Checkpoints``): after every pass but the last, the workers write their partitions
into ``work_dir/pass-<g>/`` as Arrow IPC files (``frames.py``: data only, never a pickle, so a
work folder that others can write does not let them run code on the workers) and the driver
rewrites ``work_dir/manifest.json`` (atomic), then deletes the previous pass's folder: the work
folder holds one pass's partitions at a time. A run started with ``resume=true`` skips the
passes listed there and reads the last one's partitions back on the workers. Progress: one bar per pass in rows (rows/s). Where the time went (per step,
pass and stage) is written into the output set as ``curation_timings.{json,md}`` and logged at the
end (``timings_file``: an extra copy of the JSON); the report itself stays free of timings.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import Any
from collections.abc import Callable

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..config import ConfigError
from ..paths import resolve
from ..settings import CurateSettings, build
from .base import BOOKKEEPING, DETAIL, REASON, STAGE_COL, Chain, Stage, StageStats
from .clean import CleanAndUnify
from .decontam import Decontaminate
from .dedup import ExactDedup, FuzzyDedup
from .engine import Engine, EngineError, ProgressLine, code_version, tool_versions  # noqa: F401 - ProgressLine: public here too
from .hierarchy import ModuleIndex
from .frames import SUFFIX as FRAME_SUFFIX, read_frame, write_frame
from .filters import AlphaShare, Compiles, HasModule, LineCount, LongestLine, TopNGramShare, UrlShare, WordCount
from ..io import replace_dirs_atomic, write_json_atomic
from .pii import RedactPII
from .report import TIMINGS_FILES, timings_markdown, write_report, write_timings
from .sources import (BadLines, DownloadError, SourceError, describe_skipped, download_hub, licence_of,
                      list_data_files, load_records, read_source_specs, records_frame)
from .split import SPLITS, KeepBothViews, split_ranks, split_sizes
from .shards import (Shard, byte_ranges, count_lines, describe_file, first_repeat, id_buckets, jsonl_shards, line_offsets,
                     lines_per_shard, number_shard, pack_shards, read_pack, shard_lines, shard_report, shard_starts,
                     BAD_LINES_FILE, write_bad_lines)
from .writers import concat_files, merge_split, part_name, write_dropped_parts, write_split_parts

log = logging.getLogger("sft_playbook.curate")
EXAMPLES_PER_REASON = 3
#: where the time of the last ``run_stages`` went, one dict per pass (fit, pass, writes, checkpoint)
LAST_TIMINGS: list[dict[str, Any]] = []


class PipelineError(RuntimeError):
    """The curation cannot run or finish (bad work folder, missing sources, ...); one line for the user."""


class RunLockedError(PipelineError):
    """Another live curation run holds the lock of one of this run's folders (output_dir,
    dropped_dir, work_dir); nothing of either run was touched."""


def settings_of(cfg: dict[str, Any] | CurateSettings) -> CurateSettings:
    """The typed curation settings (``sft_playbook.settings.CurateSettings``) of a config mapping
    (checked: ConfigError with one line naming the key) or the settings themselves.

    Returns:
        ``CurateSettings`` (``cfg`` itself when it already is one).
    """
    return build("curate", cfg)


def build_stages(cfg: dict[str, Any] | CurateSettings) -> list[Stage]:
    """The recipe: an ordered list of configured stages. A section with ``enabled: false`` is left out.
    Every setting is checked before any work: types, choices, ranges, split and levels by the typed
    settings, the rest by the stages' constructors (keyword arguments, named).

    Returns:
        The enabled stages in recipe order (clean, module index, rules, PII, decontamination, both
        views, exact then fuzzy dedup).

    Raises:
        ConfigError: a stage's constructor refuses a setting (TypeError/ValueError), one line naming
            the config section; or the mapping is invalid (``settings_of``).
    """
    s = settings_of(cfg)
    levels = list(s.levels)
    desc = [f"desc_{lvl}" for lvl in levels]
    r = s.rules
    index = ModuleIndex("code", max_definitions_per_name=s.module_index.max_definitions_per_name) \
        if s.module_index.enabled else None     # the module index the compile check elaborates against
    c, p, d, f = r.compiles, s.pii, s.decontaminate, s.fuzzy_dedup
    wanted: list[tuple[str, Any, Callable[[], Stage]]] = [
        ("clean", s.clean, lambda: CleanAndUnify(levels, header_max_chars=s.clean.header_max_chars)),           # 1
        ("module_index", s.module_index, lambda: index),                                                     # 1b (global)
        ("rules.word_count", r.word_count, lambda: WordCount(desc, min_words=r.word_count.min_words,        # 2 (descriptions)
                                                             max_words=r.word_count.max_words)),
        ("rules.url_share", r.url_share, lambda: UrlShare(desc, max_share=r.url_share.max_share)),
        ("rules.top_ngram", r.top_ngram, lambda: TopNGramShare(desc, n=r.top_ngram.n, max_share=r.top_ngram.max_share)),
        ("rules.line_count", r.line_count, lambda: LineCount(min_lines=r.line_count.min_lines,               # 2 (code)
                                                             max_lines=r.line_count.max_lines)),
        ("rules.longest_line", r.longest_line, lambda: LongestLine(max_chars=r.longest_line.max_chars)),
        ("rules.alpha_share", r.alpha_share, lambda: AlphaShare(min_share=r.alpha_share.min_share)),
        ("rules.has_module", r.has_module, lambda: HasModule()),
        ("rules.compiles", c, lambda: Compiles(standards=c.standards, flags=c.flags, timeout_s=c.timeout_s,
                                               threads=c.threads, unresolved_submodule=c.unresolved_submodule,
                                               index=index)),
        ("pii", p, lambda: RedactPII(["code"], desc, backend=p.backend, min_score=p.min_score, kinds=p.kinds,   # 3
                                     phone_context=p.phone_context, context_window=p.context_window)),
        ("decontaminate", d, lambda: Decontaminate(                                                        # 4
            code_fields=["code"], text_fields=desc, benchmark_dir=d.benchmark_dir, also_look_in=d.also_look_in,
            code_threshold=d.code_threshold, text_threshold=d.text_threshold, containment=d.containment,
            min_ngrams=d.min_ngrams, code_ngram=d.code_ngram, text_ngram=d.text_ngram,
            template_share=d.template_share, normalize_identifiers=d.normalize_identifiers)),
        ("both_views", s.both_views, lambda: KeepBothViews(levels)),                                        # 5
        # the dedups come last: a dropped duplicate names a kept row, so no stage may drop rows after them
        ("exact_dedup", s.exact_dedup, lambda: ExactDedup("code", normalize=s.exact_dedup.normalize)),      # 6
        ("fuzzy_dedup", f, lambda: FuzzyDedup("code", seed=s.seed, shingle=f.shingle, ngram=f.ngram,
                                              num_perm=f.num_perm, bands=f.bands, rows=f.rows,
                                              threshold=f.threshold, normalize_identifiers=f.normalize_identifiers,
                                              backend=f.backend, max_bucket=f.max_bucket)),
    ]
    stages = []
    for key, section, make in wanted:
        if section.enabled:
            try:
                stages.append(make())
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"config section {key!r}: {exc}") from None
    return stages


# -- step 0: sources ------------------------------------------------------------------------------
def plan_sources(cfg: dict[str, Any] | CurateSettings) -> list[dict[str, Any]]:
    """Which files to read, per source, without reading a row: [{spec, files, origin, convert_to}]
    (hub sources are downloaded here, on the driver: files are what travels, not rows;
    ``convert_to``: the download folder that gets ``records.jsonl``).

    Returns:
        One dict per source read: ``spec`` (the source spec), ``files`` (Paths), ``origin`` ("hub",
        "local" or "offline sample DIR"), ``convert_to`` (Path or None) and ``licence`` (a dict).

    Raises:
        SourceError: a source lacks a field for a configured level, a download holds no data file for
            its split, a local path does not exist, or the offline sample has no ``*.jsonl``.
        DownloadError: a hub download failed and ``download.fallback_to_sample`` is false.
    """
    st = settings_of(cfg)
    levels = list(st.levels)
    dl = st.download
    specs = read_source_specs(st.sources)
    for s in specs:
        missing = set(levels) - set(s["levels"])
        if missing:
            raise SourceError(f"{s['_where']}: no field for level(s) {sorted(missing)} (levels in the config: {levels})")
    raw_dir = resolve(dl.raw_dir)
    plan: list[dict[str, Any]] = []
    use_sample = False
    hub = [s for s in specs if s.get("repo_id")]
    if hub and dl.offline:
        log.warning("download.offline=true: not contacting the hub; curating the offline sample %s instead",
                    st.sample_dir)
        use_sample = True
    elif hub and not os.environ.get("HF_TOKEN") and dl.require_token:
        log.warning("no HF_TOKEN (put it in token.env, see token.env.example): not downloading %s. "
                    "Curating the offline sample %s instead (download.require_token=false tries anonymously).",
                    ", ".join(s["repo_id"] for s in hub), st.sample_dir)
        use_sample = True
    for spec in specs:
        if spec.get("repo_id") and use_sample:
            continue
        if spec.get("repo_id"):
            try:
                folder = download_hub(spec, raw_dir, float(dl.timeout_s))
            except DownloadError as exc:
                if not dl.fallback_to_sample:
                    raise
                log.warning("could not download %s from the hub (%s). Curating the offline sample %s instead "
                            "(download.fallback_to_sample=false makes this an error).", spec["repo_id"], exc,
                            st.sample_dir)
                use_sample = True
                plan = [p for p in plan if p["origin"] != "hub"]
                continue
            files, non_data, unreadable = list_data_files(folder, spec["split"], converted="records.jsonl")
            for line in describe_skipped(folder, non_data, unreadable):
                log.warning("%s", line)
            if not files:
                raise SourceError(f"{spec['_where']}: no data files ({', '.join(('parquet', 'arrow', 'json', 'jsonl'))}) "
                                  f"for split {spec['split']!r} in the download {folder}")
            plan.append({"spec": spec, "files": files, "origin": "hub", "convert_to": folder, "licence": licence_of(spec)})
        else:
            path = resolve(spec["path"])
            if not path.exists():
                raise SourceError(f"{spec['_where']}: local path {path} does not exist")
            files, non_data, unreadable = list_data_files(path, None)
            for line in describe_skipped(path, non_data, unreadable):
                log.warning("%s", line)
            if not files:
                raise SourceError(f"{spec['_where']}: source {spec['name']!r}: no data files in {path} "
                                  f"({len(non_data) + len(unreadable)} other file(s) not read)")
            plan.append({"spec": spec, "files": files, "origin": "local", "convert_to": None,
                         "licence": licence_of(spec), "not_read": [str(p) for p in unreadable]})
    if use_sample:
        sample = resolve(st.sample_dir)
        files = sorted(sample.glob("*.jsonl")) if sample.is_dir() else []
        if not files:
            raise SourceError(f"offline sample not found: no *.jsonl in {sample}")
        template = dict(hub[0]) if hub else {"format": "mg-verilog", "code_field": "code",
                                             "description_field": "description", "id_field": "id"}
        spec = {**template, "name": st.sample_name, "levels": template.get("levels") or {}}
        plan.append({"spec": spec, "files": files, "origin": "offline sample " + str(st.sample_dir),
                     "convert_to": None, "licence": {"license": str(st.sample_license or "unknown")}})
    return plan


def load_sources(cfg: dict[str, Any] | CurateSettings) -> tuple[pd.DataFrame, list[dict[str, Any]], BadLines]:
    """Every source row in one frame on the driver (small data, tests and notebooks only: the
    pipeline itself reads the sources on the workers, see ``read_partitions``).

    Returns:
        ``(rows, origins, bad)``: the records frame (``records_frame``), one dict per source (name,
        origin, rows, licence fields) and the bad input lines met (``BadLines``).
    """
    cfg = settings_of(cfg)
    levels, on_bad = list(cfg.levels), cfg.on_bad_line
    bad = BadLines()
    records: list[dict[str, Any]] = []
    origins = []
    for src in plan_sources(cfg):
        recs = load_records(src["spec"], src["files"], on_bad, bad)
        records += recs
        origins.append({"name": src["spec"]["name"], "origin": src["origin"], "rows": len(recs), **src["licence"]})
    return records_frame(records, levels), origins, bad


def read_partitions(plan: list[dict[str, Any]], cfg: dict[str, Any] | CurateSettings, engine: Engine, parts_dir: Path,
                    bad_file: Path | None = None):
    """Read the planned sources on the workers into partitions (futures; lists with engine=local).

    1. list the shards (``list_shards``; ``shards.py`` says what a partition is per format):
       lines counted per byte range of each jsonl file, rows per parquet row group and Arrow file,
       compressed and JSON-list files (and parquet row groups bigger than a shard) streamed into
       part files under ``parts_dir/read`` (workers); the driver cuts shards of about
       ``partition_rows`` rows. The driver holds O(files + ranges + shards) numbers.
    2. read (workers): each pack's records (consecutive small shards of a source packed to about
       ``partition_rows`` rows, ``pack_shards``; a pack is one partition); only the count and the
       bad lines come back.
    3. number (workers): ids and ``_order`` from the offsets the driver added up from the counts;
       a hub source's converted records are written as part files, joined into records.jsonl -
       once per download: not again while ``CONVERT_KEY_FILE`` matches its files (``convert_key``).
    4. ids unique (workers): ids hashed into buckets, repeats looked for per bucket.

    ``bad_file``: where every skipped bad input line (``on_bad_line=skip``) is written as a dropped
    row (``shards.write_bad_lines``; per pack by the workers, then joined); not written when no line
    was skipped.

    Returns:
        ``(partitions, origins, bad, rows_read)``: the partitions (futures on a cluster, frames with
        engine=local), one dict per source (name, origin, rows, licence fields), the bad input lines
        (``BadLines``) and the number of rows read (the next ``_order``).

    Raises:
        SourceError: an id occurs more than once (the first repeat in input order, file:line named).
    """
    cfg = settings_of(cfg)
    levels, on_bad = list(cfg.levels), cfg.on_bad_line
    files = [(k, str(f)) for k, src in enumerate(plan) for f in src["files"]]
    packing: list[list[int]] = []
    shards = list_shards(files, engine, packing, stage_dir=parts_dir / "read")
    packs = [[shards[i] for i in pack] for pack in packing]   # consecutive small shards of a source: one read, one partition
    specs = [src["spec"] for src in plan]
    reads = engine.map(lambda pk: read_pack(pk, specs[pk[0].source], on_bad), packs)
    shards = [pk[0] for pk in packs]                      # from here a pack is its first shard (its source)
    counts = engine.gather(engine.map(shard_report, reads))
    bad = BadLines()
    for c in counts:
        bad.extend(c["bad"])
    if bad.skipped:
        log.warning("skipped %d bad input line(s) (on_bad_line=skip): %s; e.g. %s%s", bad.skipped,
                    ", ".join(f"{k}: {v}" for k, v in sorted(bad.reasons.items())), "; ".join(bad.examples[:3]),
                    # the run moves the file into dropped_dir when it ends (work_dir is removed)
                    f"; every one in {resolve(cfg.dropped_dir) / BAD_LINES_FILE} when the run ends"
                    if bad_file is not None and cfg.dropped_dir else "")
        if bad_file is not None:
            folder = parts_dir / "bad-lines"
            roots = [str(Path(os.path.commonpath([str(f) for f in src["files"]])).parent) if len(src["files"]) == 1
                     else os.path.commonpath([str(f) for f in src["files"]]) for src in plan]
            engine.gather(engine.map(lambda r, i, sh: write_bad_lines(r, i, str(folder), specs[sh.source]["name"],
                                                                      roots[sh.source]), reads, range(len(reads)), shards))
            engine.gather([engine.submit(concat_files, [str(folder / f"{part_name(i)}.jsonl") for i in range(len(reads))],
                                         str(bad_file))])
    rows_per_source = [0] * len(plan)
    id_offsets, order_offsets, order = [], [], 0
    for sh, c in zip(shards, counts):
        id_offsets.append(rows_per_source[sh.source])
        order_offsets.append(order)
        rows_per_source[sh.source] += c["rows"]
        order += c["rows"]
    origins = [{"name": src["spec"]["name"], "origin": src["origin"], "rows": n, **src["licence"],
                **({"files_not_read": len(src["not_read"])} if src.get("not_read") else {})}
               for src, n in zip(plan, rows_per_source)]
    for src, n in zip(plan, rows_per_source):
        if n == 0:
            where = src["files"][0] if len(src["files"]) == 1 else f"{len(src['files'])} file(s) under {src['files'][0].parent}"
            raise SourceError(f"{src['spec'].get('_where', 'sources')}: source {src['spec']['name']!r} gave 0 records "
                              f"({where}); nothing to curate from it")
    # keep only shards with rows (an empty partition costs a task per pass and says nothing)
    keep = [i for i, c in enumerate(counts) if c["rows"]]
    keys = {k: convert_key(src) for k, src in enumerate(plan) if src["convert_to"] is not None}
    for k in list(keys):                                  # converted before from the same download: not again
        if _read_key(Path(plan[k]["convert_to"]) / CONVERT_KEY_FILE) == keys[k] \
                and (Path(plan[k]["convert_to"]) / "records.jsonl").is_file():
            log.info("%s: %s is up to date with the download (%s); not converted again",
                     plan[k]["spec"]["name"], Path(plan[k]["convert_to"]) / "records.jsonl", CONVERT_KEY_FILE)
            del keys[k]
    convert = [str(parts_dir / "records" / str(sh.source)) if sh.source in keys else None for sh in shards]
    parts = engine.map(lambda r, sh, io, oo, cv, i: number_shard(r, specs[sh.source]["name"], io, oo, levels, cv, i),
                       [reads[i] for i in keep], [shards[i] for i in keep], [id_offsets[i] for i in keep],
                       [order_offsets[i] for i in keep], [convert[i] for i in keep], keep)
    del reads
    if keys:
        engine.gather(engine.map(len, parts))            # the converted part files are written
    for k, src in enumerate(plan):
        if k in keys:
            mine = [i for i in keep if shards[i].source == k]
            target = Path(src["convert_to"]) / "records.jsonl"
            engine.gather([engine.submit(concat_files, [f"{convert[i]}/{part_name(i)}.jsonl" for i in mine], str(target))])
            write_json_atomic(Path(src["convert_to"]) / CONVERT_KEY_FILE, keys[k])
            log.info("%s: %d records converted to %s", src["spec"]["name"], rows_per_source[k], target)
    buckets = max(1, min(len(parts), 2 * max(1, engine.n_workers)))
    split = engine.map(partial(id_buckets, buckets=buckets), parts)
    repeats = [r for r in engine.gather([engine.submit(first_repeat, *engine.map(itemgetter(b), split))
                                          for b in range(buckets)]) if r is not None]
    del split
    if repeats:
        raise SourceError(min(repeats)[1])
    parts = engine.map(_without_where, parts)
    return parts, origins, bad, order


#: in a hub download's folder: what its ``records.jsonl`` was converted from (``convert_key``); under
#: ``.cache``, which the file listing skips (``sources.list_data_files``), as huggingface_hub's own metadata
CONVERT_KEY_FILE = ".cache/sft_playbook/records.jsonl.key"


def convert_key(src: dict[str, Any]) -> dict[str, Any]:
    """What a hub source's ``records.jsonl`` is converted from: the repo, revision, split and
    levels of its spec and the downloaded data files (path relative to the download folder, size,
    modification time in ns), so a new download (or another spec) converts again and an unchanged
    one does not.

    Returns:
        A JSON-able dict (compared whole with the one stored in ``CONVERT_KEY_FILE``).
    """
    spec, folder = src["spec"], Path(src["convert_to"])
    files = []
    for f in src["files"]:
        st = Path(f).stat()
        files.append([str(Path(f).relative_to(folder)) if Path(f).is_relative_to(folder) else str(f),
                      st.st_size, st.st_mtime_ns])
    return {"repo_id": spec.get("repo_id"), "revision": spec.get("revision"), "split": spec.get("split"),
            "fields": {k: spec.get(k) for k in ("format", "id_field", "code_field", "description_field", "levels")},
            "files": files}


def _read_key(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def list_shards(files: list[tuple[int, str]], engine: Engine, packs: list[list[int]] | None = None,
                stage_dir: Path | None = None) -> list[Shard]:
    """The shards of the sources' files (``shards.py`` says what a shard is per format): the driver
    gets each file's kind and size (a parquet file's row counts per row group), one line count per
    ``SCAN_RANGE_BYTES`` byte range, the byte offset of each jsonl shard's first line and, per
    staged part file, its path and counts - O(files + ranges + shards) numbers, not O(lines).

    1. describe every file (workers).
    2. count the lines of plain jsonl ranges, and stream every compressed jsonl and JSON-list file
       into part files of ``stage_chunk`` lines/records (workers, all at once).
    3. ``per`` = the rows per shard from the total (``lines_per_shard``, ``shard_lines``).
    4. find the jsonl shard starts, and stream every parquet row group of more than ``per`` rows
       into Arrow part files of ``per`` rows (workers, all at once); Arrow files are cut into row
       ranges of ``per`` rows (nothing to do on the workers).

    Args:
        files: ``(source index, path)`` per file, in input order.
        engine: where the counting and staging tasks run.
        packs: a list that gets the shards' packs (``pack_shards``: indices of consecutive shards of
            one source, at most ``per`` rows where the shards are smaller, i.e. many small files per pack).
        stage_dir: the folder for the part files of staged files (the run's work folder + ``read``);
            default: a fresh temporary folder (left for the caller's clean-up of /tmp).

    Returns:
        The shards in input order (file by file, in file order); each at most ``per`` rows except
        a staged part of ``stage_chunk`` rows when ``per`` is smaller.

    Raises:
        SourceError: a file cannot be read (or decompressed, or parsed as a JSON list), or changed
            while it was counted.
        OutputError: a part file cannot be written.
    """
    from .shards import stage_chunk, stage_lines, stage_records, stage_row_group

    if stage_dir is None:
        import tempfile

        stage_dir = Path(tempfile.mkdtemp(prefix="curate-read-"))
    kinds = engine.gather(engine.map(describe_file, [f for _, f in files]))
    ranges = {i: byte_ranges(n) for i, (kind, n, _) in enumerate(kinds) if kind == "jsonl"}
    jobs = [(i, r) for i, rs in ranges.items() for r in rs]
    min_shards = 2 * engine.n_workers if engine.client is not None else 1
    chunk = stage_chunk(engine.partition_rows, min_shards)
    streamed = [i for i, (kind, _, _) in enumerate(kinds) if kind in ("lines", "records")]
    counting = engine.map(count_lines, [files[i][1] for i, _ in jobs], [r[0] for _, r in jobs],
                          [r[1] for _, r in jobs], [kinds[i][1] for i, _ in jobs])
    staging = engine.map(lambda i: (stage_lines if kinds[i][0] == "lines" else stage_records)(
        files[i][1], chunk, str(stage_dir / f"{i:06d}")), streamed)
    counted = engine.gather(counting)
    staged = dict(zip(streamed, engine.gather(staging)))
    counts: dict[int, list[int]] = {i: [] for i in ranges}
    for (i, _), n in zip(jobs, counted):
        counts[i].append(n)
    total_rows = (sum(sum(c) for c in counts.values()) + sum(p[2] for parts in staged.values() for p in parts)
                  + sum(sum(n) if kind == "parquet" else n for kind, n, _ in kinds if kind in ("parquet", "arrow")))
    per = shard_lines(lines_per_shard(total_rows, engine.partition_rows, min_shards))
    asks = [(i, r, idx) for i in ranges for r, idx in shard_starts(counts[i], per).items()]
    big = [(i, g, sum(kinds[i][1][:g])) for i, (kind, n, _) in enumerate(kinds) if kind == "parquet"
           for g, rows in enumerate(n) if rows > per]
    finding = engine.map(line_offsets, [files[i][1] for i, _, _ in asks],
                         [ranges[i][r][0] for i, r, _ in asks], [ranges[i][r][1] for i, r, _ in asks],
                         [kinds[i][1] for i, _, _ in asks], [idx for _, _, idx in asks])
    cutting = engine.map(lambda i, g, base: stage_row_group(files[i][1], g, base, per, str(stage_dir / f"{i:06d}-g{g}")),
                         [b[0] for b in big], [b[1] for b in big], [b[2] for b in big])
    found = engine.gather(finding)
    groups = {(i, g): parts for (i, g, _), parts in zip(big, engine.gather(cutting))}
    starts: dict[int, list[int]] = {i: [] for i in ranges}
    for (i, _, _), offs in zip(asks, found):              # asks are in range order within a file
        starts[i] += offs
    out: list[Shard] = []
    sizes: list[tuple[int, int | None, int]] = []          # (source, rows or None: unknown, bytes) per shard
    for i, ((k, f), (kind, n, size)) in enumerate(zip(files, kinds)):
        if kind == "jsonl":
            total = sum(counts[i])
            mine = jsonl_shards(k, f, n, total, per, starts[i])
            sizes += [(k, min(per, total - (sh.first_line - 1)) if total else 0, (sh.stop or 0) - (sh.start or 0))
                      for sh in mine]
        elif kind in ("lines", "records"):              # staged: the parts are the shards
            mine = [Shard(k, f, part=p, start=0, stop=nb, first_line=first) if kind == "lines"
                    else Shard(k, f, part=p, numbered=True, first_row=first) for p, first, _, nb in staged[i]]
            sizes += [(k, rows, nb) for _, _, rows, nb in staged[i]]
        elif kind == "parquet":
            mine = []
            for g, rows in enumerate(n):
                if (i, g) in groups:
                    mine += [Shard(k, f, part=p, rows=(0, m), first_row=first) for p, first, m, _ in groups[(i, g)]]
                    sizes += [(k, m, nb) for _, _, m, nb in groups[(i, g)]]
                else:
                    mine.append(Shard(k, f, row_group=g))
                    sizes.append((k, rows, size * rows // max(1, sum(n))))
            if not n:
                mine, sizes = [Shard(k, f, row_group=0)], sizes + [(k, 0, size)]
        elif kind == "arrow":
            mine = [Shard(k, f, rows=(a, min(a + per, n)), first_row=a) for a in range(0, n, per)] \
                or [Shard(k, f, rows=(0, 0))]
            sizes += [(k, sh.rows[1] - sh.rows[0], size * (sh.rows[1] - sh.rows[0]) // max(1, n)) for sh in mine]
        else:
            mine = [Shard(k, f)]
            sizes.append((k, None, size))
        out += mine
    if packs is not None:
        packs[:] = pack_shards(sizes, per)
    return out


def _without_where(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["_where"])


# -- the stage loop ---------------------------------------------------------------------------------
def chains(stages: list[Stage]) -> list[list[Stage]]:
    """Split the recipe into chains: a global stage (dedup) starts a new one.

    Returns:
        The stages in order, cut into lists: each starts with the first stage or a global stage.
    """
    out: list[list[Stage]] = []
    for st in stages:
        if not out or st.is_global:
            out.append([])
        out[-1].append(st)
    return out


def drop_summary(gone: pd.DataFrame, n_stages: int) -> list[dict[str, Any]]:
    """Per stage of a chain: rows dropped per reason and the first EXAMPLES_PER_REASON (id,
    detail) per reason, in partition order - what the driver needs of the dropped rows.

    Returns:
        ``n_stages`` dicts, one per stage of the chain: ``{"dropped": {reason: rows}, "examples":
        {reason: [{"id", "detail"}, ...]}}``.
    """
    out = []
    for i in range(n_stages):
        mine = gone[gone[STAGE_COL] == i]
        counts = {str(k): int(v) for k, v in mine[REASON].value_counts().items()}
        examples = {str(reason): [{"id": str(r["id"]), "detail": str(r[DETAIL])}
                                  for r in grp.head(EXAMPLES_PER_REASON)[["id", DETAIL]].to_dict("records")]
                    for reason, grp in mine.groupby(REASON, sort=True)}
        out.append({"dropped": counts, "examples": examples})
    return out


def _pass(part, index: int, states: list, chain: Chain, keys_of: Stage | None, keep_gone: bool,
          load: Callable | None = None, finish: Callable | None = None):
    """One pass over one partition (runs on a worker): the chain's kept rows, its dropped rows
    (kept on the worker for ``write_dropped_parts`` when ``keep_gone``) and, for the driver, a
    small report: rows in, drops per stage and reason with a few examples, the dropped rows'
    columns, the counter totals and, on the kept rows, the keys the next global stage's ``fit``
    needs. ``load`` turns the item into the partition first (e.g. reads a file) and
    ``finish(kept, index)`` consumes the kept rows at the end (e.g. writes them) in the same
    task; its result replaces them.

    Returns:
        ``(kept, gone, report, keys)``: the kept rows (None with ``finish``), the dropped rows (None
        unless ``keep_gone``), the report dict (``rows``, ``drops``, ``gone_columns``, ``sums``,
        ``keys``, ``finished``) and the next global stage's keys when it computes them on the
        workers (else None: they travel in the report).
    """
    def clock() -> tuple[float, float]:
        return time.perf_counter(), time.thread_time()

    def since(t: tuple[float, float]) -> list[float]:
        return [time.perf_counter() - t[0], time.thread_time() - t[1]]

    steps: dict[str, list[float]] = {}      # the pass's work outside the stages, [wall_s, cpu_s] each
    for stage, value in zip(chain.stages, states):
        if value is not None:
            stage.set_state(value)
    if load is not None:
        t = clock()
        part = load(part)
        steps["read"] = since(t)
    times: list[list[float]] = []
    kept, gone, sums = chain.split(part, times)
    t = clock()
    keys = keys_of.keys(kept) if keys_of is not None else None
    if keys_of is not None:
        steps["keys"] = since(t)
    on_workers = keys_of is not None and keys_of.keys_on_workers
    t = clock()
    report = {"rows": len(part), "drops": drop_summary(gone, len(chain.stages)), "gone_columns": list(gone.columns),
              "sums": sums, "keys": None if on_workers else keys, "stage_times": times}
    steps["summary"] = since(t)
    if finish is not None:
        t = clock()
        report["finished"] = finish(kept, index)
        steps["finish"] = since(t)
        kept = None
    report["step_times"] = steps
    return kept, (gone if keep_gone else None), report, (keys if on_workers else None)


def _union(column_lists: list[list[str]]) -> list[str]:
    """The columns of the partitions' concatenation, in order of first appearance.

    Returns:
        The column names, each once.
    """
    return list(dict.fromkeys(c for cols in column_lists for c in cols))


def _save_part(df: pd.DataFrame, path: str) -> int:
    return write_frame(df, path)             # Arrow IPC, data only (frames.py): never a pickle


def _foreign_parts(manifest: dict) -> bool:
    """Whether a manifest lists part files that are not Arrow checkpoint files (an older
    version's pickles, or planted): those are never read, the run starts afresh.

    Returns:
        True when any listed part file lacks the ``.arrow`` suffix.
    """
    passes = manifest.get("passes") or []
    return any(not str(f).endswith(FRAME_SUFFIX) for rec in passes for f in (rec.get("parts") or []))


def _stats_record(st: StageStats) -> dict[str, Any]:
    return {"name": st.name, "rows_in": st.rows_in, "rows_out": st.rows_out, "dropped": st.dropped,
            "counters": st.counters, "examples": st.examples, "extra": st.extra}


class Checkpoints:
    """The passes a run has finished, for ``resume=true``: ``<work>/manifest.json`` lists them
    (its stages' statistics, and for the LAST finished pass the partitions it left, as Arrow IPC
    part files written by the workers: ``frames.write_frame``, data only) plus what the read step
    found; it is rewritten atomically after every pass, so a run killed at any point (kill -9)
    leaves the last finished pass's state and nothing half written is ever listed.

    On disk: one pass's partitions at a time (about the size of the rows still in the run, as
    uncompressed Arrow): once pass g is in the manifest (which then no longer lists pass g-1's
    files), ``pass-<g-1>/`` is deleted; a folder left by a kill between the two steps is deleted
    at the next save or resume (``prune``). ``fingerprint`` ties it to the config and the source
    files."""

    def __init__(self, work: Path, fingerprint: dict[str, str] | str, resume: bool, save_passes: bool = True) -> None:
        self.work = work
        #: False (``checkpoint: false``): passes finished by an earlier run are still reused, new ones are not saved
        self.save_passes = save_passes
        self.path = work / "manifest.json"
        parts = fingerprint if isinstance(fingerprint, dict) else {"run": fingerprint}
        self.data: dict[str, Any] = {"fingerprint": parts, "read": None, "passes": []}
        if resume and self.path.is_file():
            try:
                old = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = None
            before = old.get("fingerprint") if isinstance(old, dict) else None
            if before == parts and not _foreign_parts(old):
                self.data = old
                self.prune()
            else:
                if isinstance(before, dict):
                    changed = [k for k in parts if before.get(k) != parts[k]] + [k for k in before if k not in parts]
                    why = "changed since: " + ", ".join(changed)
                elif before == parts:
                    why = "its part files are not Arrow checkpoint files (an older version's pickles)"
                else:
                    why = "unreadable or from an older version"
                log.warning("resume=true but %s was computed from other inputs (%s): starting afresh", self.path, why)
                self.data = {"fingerprint": parts, "read": None, "passes": []}
        elif resume:
            log.warning("resume=true but there is no finished pass to resume from (%s): starting afresh", self.path)

    @property
    def passes(self) -> list[dict[str, Any]]:
        """The finished passes, in order: each ``{"parts": [part files], "stats": [stage stats]}``."""
        return self.data["passes"]

    def save(self) -> None:
        """Rewrite ``manifest.json`` atomically."""
        from ..io import write_json_atomic

        write_json_atomic(self.path, self.data)

    def prune(self) -> None:
        """Delete every ``pass-*`` folder of the work folder that the manifest does not list
        (all but the last finished pass's); the manifest is saved before, so it never names a
        deleted file."""
        keep = {Path(f).parent.name for rec in self.data["passes"] for f in rec.get("parts") or []}
        for d in sorted(self.work.glob("pass-*")):
            if d.is_dir() and d.name not in keep:
                shutil.rmtree(d, ignore_errors=True)

    def pass_done(self, engine: Engine, g: int, parts: list, stats: list[StageStats]) -> list:
        """Record a finished pass: its partitions are written by the workers into ``pass-<g>/``
        part files (Arrow IPC), then the pass is added to the manifest, which stops listing the
        previous pass's files (saved atomically), and only then is ``pass-<g-1>/`` deleted.

        Args:
            engine: the engine that runs the save tasks.
            g: the pass number.
            parts: the pass's partitions (futures, or frames with engine=local).
            stats: the statistics of the pass's stages.

        Returns:
            The part file paths, one per partition.
        """
        files = [str(self.work / f"pass-{g:02d}" / f"{part_name(p)}{FRAME_SUFFIX}") for p in range(len(parts))]
        engine.gather(engine.map(_save_part, parts, files))
        for rec in self.data["passes"]:
            rec["parts"] = []                # resume reads only the last pass's partitions
        self.data["passes"].append({"parts": files, "stats": [_stats_record(s) for s in stats]})
        self.save()
        self.prune()
        return files


def run_stages(parts: list, stages: list[Stage], engine: Engine, dropped_dir: Path | None, collect: bool = True,
               load: Callable | None = None, finish: Callable | None = None, work_dir: Path | None = None,
               checkpoints: Checkpoints | None = None, rows_total: int | None = None,
               progress_every_s: float = 30.0, consume: bool = False):
    """Run the stages in order over the partitions (``engine.partitions(df)``, futures of frames
    on the workers, or items that ``load(item)`` turns into partitions on the workers, in the
    first pass); returns (kept rows, [StageStats]). The kept rows are a pandas frame sorted by
    input order, with ``collect=False`` the list of partitions (futures: they stay on the
    workers), with ``finish`` the list of ``finish(kept partition, index)`` results (run in the
    last pass: e.g. every worker writes its partitions).

    Only a report per partition reaches the driver (counts, examples, keys for the next global
    stage). With a ``dropped_dir`` the workers write the dropped rows: part files under
    ``work_dir`` (default ``dropped_dir/.parts``), joined per stage into
    ``dropped_dir/<nn>_<stage>.jsonl``.

    ``checkpoints``: every finished pass is saved there (partitions and statistics; not when its
    ``save_passes`` is False: ``checkpoint: false``); the passes it
    already lists are not run again (``parts`` is then ignored unless no pass is listed): the
    partitions of the last one are read back by the workers, and the next global stage computes
    its keys from them.

    ``consume``: empty the list ``parts`` once the first pass is submitted, so that nothing else
    holds its futures: the workers then free the first pass's input (the rows as read) as soon as
    that pass is done, instead of keeping them for the whole run; the caller must not use that
    list again.

    Progress: a tqdm bar per pass on a terminal; otherwise (a batch log) one plain line per pass
    every ``progress_every_s`` seconds (rows done / total, rows/s). ``rows_total``: the rows the
    first pass gets (the read step's count), its total.

    Returns:
        ``(kept, stats)``: the kept rows as above, and one ``StageStats`` per stage, in order.

    Raises:
        PipelineError: the checkpoint lists more passes than the recipe has, or a stage dropped all
            remaining rows.
    """
    stats: list[StageStats] = []
    groups = chains(stages)
    done = list(checkpoints.passes) if checkpoints is not None else []
    if len(done) > len(groups):
        raise PipelineError("the checkpoint lists more passes than the recipe has")
    if load is not None and groups and groups[0][0].is_global:
        parts, load = engine.map(load, parts), None     # its fit needs the partitions, not the items
    parts_dir = (work_dir or (dropped_dir / ".parts" if dropped_dir is not None else None))
    rows = None                              # counted with the first pass's results (no extra pass)
    keys = None                              # what the previous pass computed for this chain's global stage
    number = 0
    timings: list[dict[str, Any]] = []
    engine.progress_every_s = progress_every_s      # the global fits' progress lines too
    for g, chain in enumerate(groups):
        t0 = time.monotonic()
        if g < len(done):                    # finished before (resume): its statistics, its partitions
            for rec in done[g]["stats"]:
                stats.append(StageStats(**rec))
                number += 1
            rows = stats[-1].rows_out
            log.info("pass %d (%s): finished in an earlier run, not redone", g + 1, ", ".join(st.name for st in chain))
            timings.append({"pass": g + 1, "stages": [st.name for st in chain], "resumed": True})
            if g == len(done) - 1:
                parts = engine.map(read_frame, done[g]["parts"])
                load = None
            continue
        fit_s = [0.0] * len(chain)
        for i, st in enumerate(chain):
            if not st.is_global or st is chain[0]:
                tf = time.monotonic()
                if st.is_global:
                    log.info("pass %d: global fit of %s started", g + 1, st.name)
                st.fit(parts, engine, keys if st is chain[0] else None)   # global: on the data as it is now
                fit_s[i] = time.monotonic() - tf
                if st.is_global:
                    log.info("pass %d: global fit of %s done in %.1fs", g + 1, st.name, fit_s[i])
        following = groups[g + 1][0] if g + 1 < len(groups) else None
        keys_of = following if following is not None and following.is_global \
            and type(following).keys is not Stage.keys else None
        last = following is None and finish is not None
        task = partial(_pass, chain=Chain(chain), keys_of=keys_of, keep_gone=dropped_dir is not None,
                       load=load if g == 0 else None, finish=finish if last else None)
        states = [st.state() for st in chain]
        t_fit = time.monotonic() - t0
        results = engine.map(task, parts, range(len(parts)), [states] * len(parts))
        if consume and g == 0 and isinstance(parts, list):
            parts_in, parts = parts, list(parts)
            parts_in.clear()
            del parts_in
        names = ", ".join(st.name for st in chain)
        total_rows = rows if rows is not None else rows_total
        with tqdm(total=total_rows, desc=f"pass {g + 1}/{len(groups)} ({names[:40]})", unit="rows", unit_scale=True,
                  disable=None, leave=True) as bar:
            plain = ProgressLine(f"pass {g + 1}/{len(groups)} ({names})", total_rows, progress_every_s) \
                if bar.disable else None

            finished = [0]

            def advance(r, finished=finished):           # a partition finished (shown by running(), next)
                finished[0] += r["rows"]

            def running(rows, bar=bar, plain=plain, finished=finished):   # rows the running partitions did so far
                bar.n = finished[0] + rows
                bar.refresh()
                if plain is not None:
                    plain.update(finished[0] - plain.done, running=rows)

            # priority: a partition's small report is taken out as soon as its pass task is done, not
            # behind every other pass task the worker holds (the progress counted only at the end)
            reports = engine.gather_each(engine.map(itemgetter(2), results, priority=1), advance, running,
                                         [getattr(f, "key", None) for f in results])
        t_pass = time.monotonic() - t0 - t_fit
        parts = [r["finished"] for r in reports] if last else engine.map(itemgetter(0), results)
        gone = engine.map(itemgetter(1), results) if dropped_dir is not None else None
        worker_keys = engine.map(itemgetter(3), results) if keys_of is not None and keys_of.keys_on_workers else None
        del results, states
        if rows is None:
            rows = sum(r["rows"] for r in reports)
        sums: dict[str, int] = {}
        for r in reports:
            for k, v in r["sums"].items():
                sums[k] = sums.get(k, 0) + v
        if worker_keys is not None:
            keys, worker_keys = worker_keys, None     # the next stage reduces them on the workers
        else:
            keys = pd.concat([r["keys"] for r in reports], ignore_index=True) if keys_of is not None else None
        writes = []
        if dropped_dir is not None:
            columns = [c for c in _union([r["gone_columns"] for r in reports])
                       if c not in (*BOOKKEEPING, STAGE_COL, "id")]
            folders = [str(parts_dir / "dropped" / f"{number + i + 1:02d}_{st.name}") for i, st in enumerate(chain)]
            parts_written = engine.map(partial(write_dropped_parts, folders=folders, names=[st.name for st in chain],
                                               columns=columns), gone, range(len(parts)))
            engine.gather(parts_written)                # part files written (row counts; nothing else comes back)
            del parts_written                           # (a held future keeps its tasks in the scheduler)
            dropped_dir.mkdir(parents=True, exist_ok=True)
            for i, st in enumerate(chain):
                files = [f"{folders[i]}/{part_name(p)}.jsonl" for p in range(len(parts))]
                writes.append(engine.submit(concat_files, files, str(dropped_dir / f"{number + i + 1:02d}_{st.name}.jsonl")))
        del gone
        for i, stage in enumerate(chain):
            number += 1
            dropped: dict[str, int] = {}
            examples: dict[str, list[dict[str, str]]] = {}
            for r in reports:
                d = r["drops"][i]
                for k, v in d["dropped"].items():
                    dropped[k] = dropped.get(k, 0) + v
                for k, ex in d["examples"].items():
                    have = examples.setdefault(k, [])
                    have += ex[:EXAMPLES_PER_REASON - len(have)]
            st = StageStats(stage.name, rows, rows - sum(dropped.values()))
            st.dropped = dict(sorted(dropped.items()))
            prefix = f"_c{i}_"
            st.counters = {c[len(prefix):]: v for c, v in sums.items() if c.startswith(prefix)}
            st.examples = dict(sorted(examples.items()))
            st.extra = stage.summary()
            stats.append(st)
            log.info("stage %2d %-14s %6d -> %6d rows%s%s", number, stage.name, st.rows_in, st.rows_out,
                     "  dropped " + ", ".join(f"{k}={v}" for k, v in st.dropped.items()) if st.dropped else "",
                     "  " + ", ".join(f"{k}={v}" for k, v in st.counters.items() if v) if any(st.counters.values()) else "")
            skipped = st.counters.get("compile_skipped", 0)
            if skipped:                       # a worker could not run iverilog: those rows were not checked
                log.warning("stage %d (%s): the compile check was SKIPPED on %d of %d rows (iverilog/vvp missing "
                            "on a worker): those rows are kept unchecked", number, stage.name, skipped, st.rows_in)
            if st.rows_out == 0:
                engine.gather(writes)
                raise PipelineError(f"stage {number} ({stage.name}) dropped all {rows} remaining rows "
                                    f"({', '.join(f'{k}: {v}' for k, v in st.dropped.items())}); nothing is left to write. "
                                    "Check its thresholds in the config.")
            rows = st.rows_out
        engine.gather(writes)
        engine.assert_workers()                 # a worker that joined during the pass and fails the checks
        t_write = time.monotonic() - t0 - t_fit - t_pass
        if checkpoints is not None and checkpoints.save_passes and not last and g + 1 < len(groups):
            checkpoints.pass_done(engine, g, parts, stats[-len(chain):])
        total = time.monotonic() - t0
        per_stage = [[0.0, 0.0] for _ in chain]        # summed over the partitions (on the workers)
        for r in reports:
            for i, (w, c) in enumerate(r["stage_times"]):
                per_stage[i][0] += w
                per_stage[i][1] += c
        step_sums: dict[str, list[float]] = {}        # the pass's work outside the stages, summed likewise
        for r in reports:
            for k, (w, c) in r.get("step_times", {}).items():
                acc = step_sums.setdefault(k, [0.0, 0.0])
                acc[0] += w
                acc[1] += c
        step_names = {"read": "read the shards", "keys": f"keys for {keys_of.name}" if keys_of is not None else "keys",
                      "summary": "drop counts + examples", "finish": "write split parts"}
        mine = stats[-len(chain):]
        rows_in = mine[0].rows_in
        timings.append({"pass": g + 1, "stages": [st.name for st in chain], "rows_in": rows_in,
                        "global_fit": chain[0].name if chain[0].is_global else None,
                        "fit_s": round(t_fit, 2), "pass_s": round(t_pass, 2), "dropped_rows_write_s": round(t_write, 2),
                        "checkpoint_s": round(total - t_fit - t_pass - t_write, 2), "total_s": round(total, 2),
                        "rows_per_s": round(rows_in / max(t_pass, 1e-9), 1),
                        "stage_s": [{"stage": st.name, "rows_in": s.rows_in, "fit_s": round(f, 3), "wall_s": round(w, 3),
                                     "cpu_s": round(c, 3), "rows_per_s": round(s.rows_in / w, 1) if w > 0 else None}
                                    for st, s, f, (w, c) in zip(chain, mine, fit_s, per_stage)],
                        "other_s": [{"step": step_names[k], "wall_s": round(w, 3), "cpu_s": round(c, 3)}
                                    for k, (w, c) in step_sums.items()]})
        log.info("  (%d stage(s) in one pass: %.1fs: global fit %.1fs, pass %.1fs = %.0f rows/s, dropped rows %.1fs)",
                 len(chain), total, t_fit, t_pass, stats[-len(chain)].rows_in / max(t_pass, 1e-9), t_write)
    LAST_TIMINGS[:] = timings
    if parts_dir is not None and work_dir is None and parts_dir.is_dir():
        shutil.rmtree(parts_dir / "dropped", ignore_errors=True)
        with contextlib.suppress(OSError):
            parts_dir.rmdir()
    if not collect or finish is not None:
        return parts, stats
    kept = pd.concat(engine.gather(parts)).sort_values("_order", kind="stable").reset_index(drop=True)
    return kept, stats


def kept_summary(df: pd.DataFrame, top: int = 20) -> dict[str, Any]:
    """What the driver needs of one partition's kept rows (on a worker): the ids (a pyarrow
    string array, ~20 bytes a row, for the split) and, for the report, the rows marked with a
    submodule defined nowhere or an interface mismatch: how many, the module names with counts
    (first appearance first) and the first ``top`` ids.

    Returns:
        ``{"ids": ...}`` (a pyarrow large_string array, or a list of str where pyarrow cannot hold
        them), plus, when the compile check ran, ``"unresolved": {"rows", "ids", "missing_modules",
        "interface_mismatch"}``.
    """
    ids = df["id"].astype(str).tolist()
    try:
        import pyarrow as pa

        arr: Any = pa.array(ids, type=pa.large_string())
    except (ImportError, UnicodeEncodeError, ValueError, TypeError):
        arr = ids
    out: dict[str, Any] = {"ids": arr}
    if "unresolved_modules" in df.columns:
        mism = df["mismatched_modules"].astype(str) if "mismatched_modules" in df.columns \
            else pd.Series("", index=df.index)
        marked = df[(df["unresolved_modules"].astype(str) != "") | (mism != "")]
        out["unresolved"] = {"rows": int(len(marked)), "ids": [str(i) for i in marked["id"].head(top)]}
        for key, col in (("missing_modules", df["unresolved_modules"].astype(str)), ("interface_mismatch", mism)):
            names: dict[str, int] = {}
            for v in col[marked.index]:
                for n in str(v).split():
                    names[n] = names.get(n, 0) + 1
            out["unresolved"][key] = names
    return out


def _without_ids(summary: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in summary.items() if k != "ids"}, "rows": len(summary["ids"])}


def _ids_of(summary: dict[str, Any]):
    return summary["ids"]


def _nth(seq, i: int):
    return seq[i]


def partition_ranks(seed: int, *ids) -> list[np.ndarray]:
    """``split_ranks`` over the partitions' kept ids (in partition order), cut back into one
    array of ranks per partition (runs on a worker).

    Returns:
        One array per partition (``split_ranks``' dtype), ``len(ids[p])`` ranks each, in row order.
    """
    if ids and all(not isinstance(i, list) for i in ids):
        import pyarrow as pa

        ranks = split_ranks(pa.chunked_array(list(ids), type=pa.large_string()), seed)
    else:
        ranks = split_ranks([x for i in ids for x in (i if isinstance(i, list) else i.to_pylist())], seed)
    bounds = np.cumsum([0] + [len(i) for i in ids])
    return [ranks[bounds[p]:bounds[p + 1]] for p in range(len(ids))]


def unresolved_report(*summaries: dict[str, Any], top: int = 20) -> dict[str, Any]:
    """Among the rows written, those kept with a submodule defined nowhere in the corpus or an
    interface mismatch: how many, the ``top`` most frequent missing / mismatched modules and the
    first ``top`` ids (input order); {} without a compile check. ``summaries``: the
    ``kept_summary`` of every partition, in order (the pipeline runs this on a worker: the name
    counts of all partitions grow with the corpus, the answer does not).

    Returns:
        ``{"unresolved_rows_written", "missing_modules", "interface_mismatch", "unresolved_ids"}``
        (name -> rows for the ``top`` most frequent names), or {} without a compile check.
    """
    out: dict[str, Any] = {}
    marked = [s["unresolved"] for s in summaries if "unresolved" in s]
    if marked:
        out["unresolved_rows_written"] = int(sum(m["rows"] for m in marked))
        for key in ("missing_modules", "interface_mismatch"):
            names: dict[str, int] = {}
            for m in marked:
                for n, c in m[key].items():
                    names[n] = names.get(n, 0) + c
            # value_counts of the names in input order: ties keep pandas' own order, as before
            counts = pd.Series([n for n, c in names.items() for _ in range(c)], dtype=object).value_counts().head(top)
            out[key] = {str(k): int(v) for k, v in counts.items()}
        out["unresolved_ids"] = [i for m in marked for i in m["ids"]][:top]
    return out


def hierarchy_report(kept, stats: list[StageStats], top: int = 20, unresolved: dict[str, Any] | None = None) -> dict[str, Any]:
    """The module index's summary, the compile check's standards and, among the rows written, those
    kept with a submodule defined nowhere (``unresolved_report``). ``kept``: the kept rows (a
    frame) or the ``kept_summary`` of every partition, in order; or ``unresolved``: that part,
    computed already (on a worker).

    Returns:
        A dict: ``module_index`` (its summary, when the stage ran), ``standards`` and the compile
        check's counters (when it ran), and the keys of ``unresolved_report``.
    """
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
    if unresolved is None:
        summaries = [kept_summary(kept, top)] if isinstance(kept, pd.DataFrame) else list(kept)
        unresolved = unresolved_report(*summaries, top=top)
    out.update(unresolved)
    return out


def _rows_of(summary: dict[str, Any]) -> int:
    return len(summary["ids"])


def work_folder(cfg: dict[str, Any] | CurateSettings, out_dir: Path) -> Path:
    """The run's folder for part files (``work_dir``; null: ``.<output_dir name>.work`` beside
    output_dir). The workers write there, so on a cluster it must be on a file system they all
    see. Only a folder holding the marker ``.curate-work`` is ever emptied.

    Returns:
        The folder's path (``work_dir`` resolved, or beside ``out_dir``); it is not created here.
    """
    wd = settings_of(cfg).work_dir
    return resolve(wd) if wd else out_dir.parent / f".{out_dir.name}.work"


WORK_MARKER = ".curate-work"


def _stat_of(f: Path, content: bool) -> list:
    """``[path, size, mtime_ns]`` (make/rsync semantics), plus a sha256 of the bytes when ``content``.

    Returns:
        ``[str path, size in bytes, mtime in ns]`` (+ the 64-hex sha256 of the bytes when ``content``).
    """
    import hashlib

    st = f.stat()
    out: list = [str(f), st.st_size, st.st_mtime_ns]
    if content:
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        out.append(h.hexdigest())
    return out


#: settings that do not change any output row (where and how the run goes, what it logs): a resume
#: with another value reuses the finished passes. The data a download gives is compared by its files.
NOT_IN_FINGERPRINT = ("resume", "resume_check", "engine", "output_dir", "dropped_dir", "work_dir", "timings_file",
                      "progress_every_s", "checkpoint")
#: the same for keys inside a section
NOT_IN_FINGERPRINT_OF = {"download": ("timeout_s",)}


def fingerprint_parts(cfg: dict[str, Any] | CurateSettings, plan: list[dict[str, Any]],
                      stages: list[Stage] | None = None) -> dict[str, str]:
    """What a checkpoint must match to be resumed, one sha256 per input so that a mismatch can say
    which input changed: ``config`` (without where and how it runs, nor what it logs:
    ``NOT_IN_FINGERPRINT``, ``NOT_IN_FINGERPRINT_OF``; but with whether dropped rows are kept:
    dropped_dir null or not), ``sources spec`` (the sources
    file's bytes and every planned source's spec: name, licence, fields, levels, format...),
    ``data files`` (path, size, mtime of every source file; with ``resume_check: content`` also a
    hash of its bytes), ``benchmark files`` (path, size, mtime of the files of every stage that
    reads a benchmark folder) and ``code`` (``code_version``: our code and the packages that make
    rows, plus ``tool_versions`` of the stages' programs, e.g. Icarus Verilog for the compile check).

    Returns:
        ``{input name: 64-hex sha256}`` for those five inputs.
    """
    import hashlib

    st = settings_of(cfg)
    content = st.resume_check == "content"

    def digest(obj) -> str:
        return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()

    conf = {k: v for k, v in st.source.items() if k not in NOT_IN_FINGERPRINT}
    for section, keys in NOT_IN_FINGERPRINT_OF.items():
        if isinstance(conf.get(section), dict):
            conf[section] = {k: v for k, v in conf[section].items() if k not in keys}
    # where the dropped rows go may change on resume, whether they are kept may not: a pass run
    # with dropped_dir=null wrote no dropped-row files, so it cannot serve a run that keeps them
    conf["dropped rows kept"] = bool(st.dropped_dir)
    spec_file = resolve(st.sources)
    spec_bytes = hashlib.sha256(spec_file.read_bytes()).hexdigest() if spec_file.is_file() else None
    specs = [{k: v for k, v in src["spec"].items()} for src in plan]
    files = [_stat_of(f, content) for src in plan for f in map(Path, src["files"])]
    bench = []
    stages = stages if stages is not None else build_stages(st)
    for stage in stages:
        folder_of = getattr(stage, "benchmark_folder", None)
        folder = folder_of() if callable(folder_of) else None
        if folder is not None:
            bench.append([str(folder), [_stat_of(f, content) for f in sorted(Path(folder).rglob("*")) if f.is_file()]])
    tools = sorted({t for stage in stages for t in stage.tools})
    return {"config": digest(conf), "sources spec": digest([spec_bytes, specs]), "data files": digest(files),
            "benchmark files": digest(bench), "code": digest([code_version(), tool_versions(tools)])}


def run_fingerprint(cfg: dict[str, Any] | CurateSettings, plan: list[dict[str, Any]]) -> str:
    """One sha256 over ``fingerprint_parts``.

    Returns:
        64 hex characters.
    """
    import hashlib

    return hashlib.sha256(json.dumps(fingerprint_parts(cfg, plan), sort_keys=True).encode()).hexdigest()


def fresh_work_folder(work: Path) -> None:
    """Empty ``work`` (or create it) and mark it as a curation work folder. An existing folder must
    hold the marker (``remove_work_folder`` deletes it last) or be empty.

    Raises:
        PipelineError: ``work`` exists, is not empty and lacks the marker file (it is not ours:
            nothing is deleted), or an earlier run's files in it cannot be removed.
    """
    if work.exists():
        if work.is_dir() and not any(work.iterdir()):
            pass                                   # empty (a clean-up cut short after the marker): nothing to lose
        elif not (work / WORK_MARKER).is_file():
            raise PipelineError(f"work_dir {work} exists and is not a curation work folder (no {WORK_MARKER}); "
                                "choose another work_dir")
        try:
            remove_work_folder(work, ignore_errors=False)
        except OSError as exc:
            raise PipelineError(f"work_dir {work}: an earlier run's files cannot be removed ({exc}); remove them "
                                "or choose another work_dir") from None
    work.mkdir(parents=True, exist_ok=True)
    (work / WORK_MARKER).write_text("part files of a curation run; removed when the run ends\n")


def same_worker_tools(checkpoints: Checkpoints, reference: dict[str, str], work: Path) -> None:
    """The tool versions the workers run (``Engine``'s reference: the driver's, or the first
    worker's where the driver has none) go into the manifest; a resume whose finished passes were
    judged by other versions starts afresh, saying so. (The fingerprint holds the driver's own
    versions, which say nothing when the driver has no Icarus.)"""
    if not reference:
        return
    recorded = checkpoints.data.get("worker tools")
    if checkpoints.passes and recorded is not None and recorded != reference:
        log.warning("resume=true but the finished passes in %s were judged by %s on the workers, which now run %s: "
                    "starting afresh", work, recorded, reference)
        checkpoints.data = {"fingerprint": checkpoints.data["fingerprint"], "read": None, "passes": []}
        fresh_work_folder(work)
    checkpoints.data["worker tools"] = dict(reference)


def remove_work_folder(work: Path, ignore_errors: bool = True) -> None:
    """Delete a curation work folder with its marker LAST: everything else first, then the marker,
    then the folder. A deletion cut short (Ctrl-C, kill, a file that cannot go, such as an NFS
    ``.nfsXXXX`` of a file a worker still holds open) leaves a folder that is still marked as ours,
    so the next run may empty it again instead of refusing it as a foreign folder.

    Raises:
        OSError: a file cannot be removed (only with ``ignore_errors=False``; the marker then stays).
    """
    if not work.is_dir():
        return
    # the manifest first: once it is gone nothing left is resumable (a resume of a half-deleted folder
    # would miss the dropped-row files), the marker last: the folder stays ours until it is empty
    order = sorted(work.iterdir(), key=lambda c: (c.name != "manifest.json", c.name))
    for child in order:
        if child.name == WORK_MARKER:
            continue
        try:
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        except OSError:
            if not ignore_errors:
                raise
    if any(c.name != WORK_MARKER for c in work.iterdir()):
        return                                     # something stayed: keep the marker with it
    try:
        (work / WORK_MARKER).unlink(missing_ok=True)
        work.rmdir()
    except OSError:
        if not ignore_errors:
            raise


def lock_path(folder: Path) -> Path:
    """The lock file of a run folder: ``.<name>.lock`` beside it (not inside: the folder itself is
    swapped or emptied by the run).

    Returns:
        ``folder.parent / f".{folder.name}.lock"``.
    """
    return folder.parent / f".{folder.name}.lock"


@contextlib.contextmanager
def run_lock(folders: list[tuple[str, Path]]):
    """Yields once, with every lock held.

    Hold an exclusive lock (``filelock``: ``flock`` on ``lock_path(folder)``) on each run folder
    for the whole run, so that two runs never share an output_dir, dropped_dir or work_dir. The
    operating system releases the lock when the process ends in any way (``kill -9`` too), so a
    killed run's lock never blocks the next one; ``<lock>.owner`` says who holds it (host, pid,
    start time) for the error of a second run.

    Args:
        folders: ``(setting name, folder)`` pairs; the same folder twice is locked once.

    Raises:
        RunLockedError: one line naming the setting, the folder and the other run (host/pid/start),
            raised at once (no waiting); the locks taken so far are released.
        OutputError: a lock file cannot be created (its path named).
    """  # noqa: DOC501 - raised through the factory output_error()
    import datetime as _dt
    import socket

    from filelock import FileLock, Timeout

    from ..io import output_error

    owner = (f"host {socket.gethostname()}, pid {os.getpid()}, started "
             f"{_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')}")
    seen: set[Path] = set()
    with contextlib.ExitStack() as stack:
        for key, folder in folders:
            if folder is None:
                continue
            folder = folder.resolve()          # two spellings of one folder (.., a symlink) share one lock
            if folder in seen:
                continue
            seen.add(folder)
            path = lock_path(folder)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                lock = FileLock(str(path), timeout=0, thread_local=False)
                stack.enter_context(lock)
            except Timeout:
                other = "another run"
                with contextlib.suppress(OSError):
                    other = f"another run ({Path(str(path) + '.owner').read_text().strip()})"
                raise RunLockedError(f"{key} {folder} is in use by {other} (lock {path}); wait for it to "
                                     f"finish or choose another {key}") from None
            except OSError as exc:
                raise output_error(exc, path) from None
            tag = Path(str(path) + ".owner")
            with contextlib.suppress(OSError):
                tag.write_text(owner + "\n")
            stack.callback(lambda tag=tag: tag.unlink(missing_ok=True))   # before the lock is released
        yield


def curate(cfg: dict[str, Any] | CurateSettings, scheduler: str | None = None) -> dict[str, Any]:
    """Run the whole recipe, holding the run folders' locks (``run_lock``) for the whole run.

    Returns:
        The report (``_curate``).

    Raises:
        RunLockedError: another live run uses the same output_dir, dropped_dir or work_dir.
        PipelineError: see ``_curate``.
    """
    t0 = time.monotonic()
    cfg = settings_of(cfg)
    check_output_paths(cfg)
    stages = build_stages(cfg)              # every setting checked before any work (split, levels, stages)
    plan = plan_sources(cfg)
    check_against_sources(cfg, plan)        # before the lock files: nothing is written beside a source
    out_dir = resolve(cfg.output_dir)
    with run_lock([("output_dir", out_dir),
                   ("dropped_dir", resolve(cfg.dropped_dir) if cfg.dropped_dir else None),
                   ("work_dir", work_folder(cfg, out_dir))]):
        return _curate(cfg, stages, plan, t0, scheduler)


def _curate(cfg: CurateSettings, stages: list[Stage], plan: list[dict[str, Any]], t0: float,
            scheduler: str | None = None) -> dict[str, Any]:
    """Run the whole recipe (``curate``'s body, under the run lock): ``stages`` and ``plan`` as
    built and checked by ``curate``, ``t0`` its start (``time.monotonic()``).
    The rows never come to this process: the workers read the shards, run the passes, write the
    dropped rows and the splits; this process sees offsets, counts, examples, the keys of the
    global stages and the kept ids (for the split).

    Returns:
        The report (the dict written as curation_report.json in output_dir).

    Raises:
        PipelineError: the sources gave 0 records, or the split files do not hold the expected rows
            per level (also from ``run_stages``, and for a work folder that is not ours).
    """
    out_dir = resolve(cfg.output_dir)
    dropped_dir = resolve(cfg.dropped_dir) if cfg.dropped_dir else None
    levels = list(cfg.levels)
    seed = cfg.seed
    fractions = cfg.split.to_dict()
    eng = cfg.engine
    work = work_folder(cfg, out_dir)
    resume = cfg.resume
    fingerprint = fingerprint_parts(cfg, plan, stages)
    if not (resume and (work / WORK_MARKER).is_file()):
        fresh_work_folder(work)
    checkpoints = Checkpoints(work, fingerprint, resume, save_passes=cfg.checkpoint)
    if not checkpoints.passes:
        if checkpoints.data["read"] is None and resume:
            fresh_work_folder(work)
    marks = {"plan sources": time.monotonic() - t0}
    t1 = time.monotonic()
    with Engine(engine=eng.engine, n_workers=eng.n_workers, threads_per_worker=eng.threads_per_worker,
                scheduler=scheduler or eng.scheduler, gpu=eng.gpu, memory_limit=eng.memory_limit,
                partition_rows=eng.partition_rows, dashboard=eng.dashboard,
                required_tools=sorted({t for s in stages for t in s.tools}),
                tools_needed_by=", ".join(f"rules.{s.name}" for s in stages if s.tools) or "the run") as engine:
        # the merged splits are written beside the folder output_dir is (a symlinked output_dir: where it points)
        same_worker_tools(checkpoints, getattr(engine, "_tool_reference", {}), work)
        check_shared_folders(engine, [("work_dir", work), ("output_dir's parent folder",
                                                           Path(os.path.realpath(out_dir)).parent)])
        if engine.client is not None:       # a worker that joins later is checked too (its work_dir as well)
            import secrets

            token = work / f".curate-run-{secrets.token_hex(8)}"
            token.write_text(token.name)
            engine.guard_workers({str(token): token.name})
        marks["start engine"] = time.monotonic() - t1
        t1 = time.monotonic()
        if checkpoints.passes:
            r = checkpoints.data["read"]
            parts, origins, rows_read = [], r["origins"], r["rows_read"]
            bad = BadLines(r["bad"]["skipped"], list(r["bad"]["examples"]), dict(r["bad"].get("reasons") or {}))
            log.info("resume: %d of %d pass(es) finished in an earlier run; %d records read then",
                     len(checkpoints.passes), len(chains(stages)), rows_read)
        else:
            parts, origins, bad, rows_read = read_partitions(
                plan, cfg, engine, work, bad_file=work / "dropped-files" / BAD_LINES_FILE if dropped_dir is not None else None)
            if rows_read == 0:
                raise PipelineError("the sources gave 0 records; nothing to curate")
            log.info("read %d records from %s on %s", rows_read,
                     ", ".join(f"{o['name']} ({o['rows']})" for o in origins), engine.describe())
            checkpoints.data["read"] = {"origins": origins, "rows_read": rows_read,
                                        "bad": {"skipped": bad.skipped, "examples": bad.examples,
                                                "reasons": bad.reasons}}
        marks["read sources (workers)"] = time.monotonic() - t1
        t1 = time.monotonic()
        # the dropped-row files are part of the output set: written into the work folder (kept for
        # resume), moved into dropped_dir only when the whole run succeeded
        drop_files = work / "dropped-files" if dropped_dir is not None else None
        parts, stats = run_stages(parts, stages, engine, drop_files, collect=False, work_dir=work, consume=True,
                                  checkpoints=checkpoints, rows_total=rows_read,
                                  progress_every_s=cfg.progress_every_s)
        marks["stage passes"] = time.monotonic() - t1
        t1 = time.monotonic()
        # The split from the ids alone, on a worker: the ids (~20 bytes a row) and the shuffle's
        # permutation (8 bytes a row) of the whole corpus are the one O(rows) thing one process
        # must hold; that is a worker, so the driver stays flat. Each partition gets its ranks.
        summaries = engine.map(kept_summary, parts)
        sizes_p = engine.gather(engine.map(_rows_of, summaries))
        unresolved = engine.submit(unresolved_report, *engine.map(_without_ids, summaries))
        n = sum(sizes_p)
        ranked = engine.submit(partition_ranks, seed, *engine.map(_ids_of, summaries))
        del summaries
        n_train, n_val = split_sizes(n, fractions)
        folder = work / "splits"
        engine.gather(engine.map(partial(write_split_parts, n_train=n_train, n_val=n_val, levels=levels, folder=str(folder)),
                                 parts, engine.map(_nth, [ranked] * len(parts), range(len(parts))), range(len(parts))))
        del parts, ranked
        marks["split: ranks + part files (workers)"] = time.monotonic() - t1
        t1 = time.monotonic()
        unresolved = engine.gather([unresolved])[0]      # a few counts and ids
        n_parts = len(sizes_p)
        # The outputs are one set (every level's splits + the report): written into a fresh folder
        # that then replaces output_dir, so a failure (full disk) leaves the previous set as it was.
        # output_dir and dropped_dir are one set: both staged, then swapped in together (or neither)
        targets = [(out_dir, foreign_entries(out_dir, levels))]
        if dropped_dir is not None:
            targets.append((dropped_dir, dropped_keep(dropped_dir)))
        with replace_dirs_atomic(targets) as stagings:
            staging = stagings[0]
            jobs = {(lvl, split): engine.submit(
                _merge_sized, [str(folder / lvl / split / f"{part_name(p)}.jsonl") for p in range(n_parts)],
                [str(folder / "ranks" / split / f"{part_name(p)}.npy") for p in range(n_parts)],
                str(staging / lvl / f"{split}.jsonl")) for lvl in levels for split in SPLITS}
            written = dict(zip(jobs, engine.gather(list(jobs.values()))))
            verify_written({staging / lvl / f"{split}.jsonl": size for (lvl, split), (_, size) in written.items()},
                           Path(os.path.realpath(out_dir)).parent, "output_dir's parent folder")
            sizes = {lvl: {split: written[(lvl, split)][0] for split in SPLITS} for lvl in levels}
            expected = dict(zip(SPLITS, (n_train, n_val, n - n_train - n_val)))
            if any(sizes[lvl] != expected for lvl in levels):
                raise PipelineError(f"the split files hold {sizes}, expected {expected} rows per level")
            marks["merge splits (workers)"] = time.monotonic() - t1
            t1 = time.monotonic()
            report = _write_outputs(staging, n, levels, cfg, rows_read, origins, bad, stats, unresolved, sizes)
            marks["report"] = time.monotonic() - t1
            # where the time went: in the same output set (its own files; the report stays time-free)
            timings = timings_record(marks, LAST_TIMINGS, time.monotonic() - t0, rows_read, engine.describe())
            write_timings(staging, timings)
            log_timings(cfg, timings)         # its extra copy (timings_file) too, before anything is swapped in
            if dropped_dir is not None:
                verify_dropped_files(drop_files, stats, work, bad.skipped)
                stage_dropped(drop_files, stagings[1])
            engine.assert_workers()             # the split and merge tasks ran on checked workers only
    remove_work_folder(work)
    log.info("wrote %s/<level>/{train,validation,test}.jsonl for %s: %s; report in %s/curation_report.md (%.1fs)",
             out_dir, ", ".join(levels), ", ".join(f"{k}={v}" for k, v in sizes[levels[0]].items()), out_dir,
             time.monotonic() - t0)
    return report


SHARED_HINT = ("the driver and every worker must share it (one machine, or a shared mount at the same path: "
               "work_dir and output_dir's parent folder; dropped_dir is written by the driver alone)")


def _read_tokens(paths: list[str]) -> list[str | None]:
    """On a worker: the text of each token file.

    Returns:
        One entry per path: the file's text, or None where it cannot be read.
    """
    out: list[str | None] = []
    for p in paths:
        try:
            out.append(Path(p).read_text())
        except OSError:
            out.append(None)
    return out


def check_shared_folders(engine: Engine, folders: list[tuple[str, Path]]) -> None:
    """Before any work on a Dask cluster: the driver writes a random token file into each folder
    and every worker must read it back, so that workers on another host (or a container) that do
    not see the driver's folders stop the run at once instead of writing the outputs into their
    own file system. With engine=local (no workers) nothing is checked.

    Args:
        engine: a started ``Engine``.
        folders: ``(what, existing folder)`` pairs the workers write into.

    Raises:
        PipelineError: one line naming the folder, the setting and the workers that do not see it.
    """
    client = getattr(engine, "client", None)
    if client is None:
        return
    import secrets

    tokens = {}
    try:
        for what, folder in folders:
            t = secrets.token_hex(16)
            path = folder / f".curate-token-{t}"
            path.write_text(t)
            tokens[str(path)] = (what, folder, t)
        seen = client.run(_read_tokens, list(tokens), on_error="return")
        for worker, got in sorted(seen.items()):
            bad = [(what, folder) for (what, folder, t), g in zip(tokens.values(), got if isinstance(got, list)
                                                                  else [None] * len(tokens)) if g != t]
            if bad:
                what, folder = bad[0]
                raise PipelineError(f"the Dask worker {worker} does not see {what} {folder} (a file the driver wrote "
                                    f"there is missing on the worker); {SHARED_HINT}")
    finally:
        for p in tokens:
            with contextlib.suppress(OSError):
                Path(p).unlink()


def _merge_sized(parts: list[str], ranks: list[str], target: str) -> tuple[int, int]:
    """``merge_split`` on a worker, plus the size of ``target`` as that worker sees it.

    Returns:
        ``(rows written, bytes of target)``.
    """
    return merge_split(parts, ranks, target), os.path.getsize(target)


def verify_written(files: dict[Path, int], folder: Path, what: str) -> None:
    """On the driver, before the output set is swapped in: every file a worker wrote must be there
    with the size the worker reported (a worker writing into its own file system, not the one the
    driver sees, otherwise ends in a false success with missing outputs).

    Raises:
        PipelineError: one line naming the first file that is missing or of another size.
    """
    for path, size in files.items():
        seen = path.stat().st_size if path.is_file() else None
        if seen != size:
            state = "is missing" if seen is None else f"holds {seen} bytes, the worker wrote {size}"
            raise PipelineError(f"{path} {state} on this machine after a worker wrote it: the workers do not see "
                                f"{what} {folder}; {SHARED_HINT}; the previous outputs were left as they were")


def verify_dropped_files(files_dir: Path, stats: list[StageStats], work: Path, bad_lines: int = 0) -> None:
    """On the driver, before the dropped-row files are installed: one ``<nn>_<stage>.jsonl`` per
    stage in ``files_dir``, not empty where the stage dropped rows, and ``00_bad_lines.jsonl`` not
    empty when ``bad_lines`` input lines were skipped.

    Raises:
        PipelineError: one line naming the first missing (or empty) file.
    """
    wanted = [(BAD_LINES_FILE, "read (bad input lines skipped)", bad_lines)] if bad_lines else []
    wanted += [(f"{i + 1:02d}_{st.name}.jsonl", st.name, sum(st.dropped.values())) for i, st in enumerate(stats)]
    for name, what, n in wanted:
        f = files_dir / name
        if not f.is_file() or (n and f.stat().st_size == 0):
            state = "is missing" if not f.is_file() else "is empty"
            raise PipelineError(f"{f} {state} on this machine although stage {what} dropped {n} row(s): the "
                                f"workers do not see work_dir {work}; {SHARED_HINT}; the previous outputs were "
                                "left as they were")


def check_output_paths(cfg: dict[str, Any] | CurateSettings) -> None:
    """Before any work: output_dir, dropped_dir and work_dir must be folders or not exist yet, with
    no file where one of their parent folders goes; timings_file must not be a folder, nor its
    parent a file. (A file at output_dir would otherwise be swapped for the output folder late in
    the run.)

    Raises:
        PipelineError: one line naming the setting and the file in the way.
    """
    st = settings_of(cfg)
    out_dir = resolve(st.output_dir)
    folders = [("output_dir", out_dir), ("dropped_dir", resolve(st.dropped_dir) if st.dropped_dir else None),
               ("work_dir", work_folder(st, out_dir))]
    if st.timings_file:
        t = resolve(st.timings_file)
        if t.is_dir():
            raise PipelineError(f"timings_file {t} is a folder; give a file path")
        folders.append(("timings_file's folder", t.parent))
    check_nesting(folders, resolve(st.timings_file) if st.timings_file else None)
    for key, path in folders:
        if path is None:
            continue
        p = path
        while not p.exists() and p != p.parent:
            p = p.parent
        if p.exists() and not p.is_dir():
            where = "is a file" if p == path else f"cannot be created: {p} is a file"
            raise PipelineError(f"{key} {path} {where}, not a folder; nothing was written (move the file "
                                f"or choose another {key.split(chr(39))[0]})")


def _within(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or inside it.

    Returns:
        True when it is (compared resolved: symlinks and ``..`` followed).
    """
    path, folder = path.resolve(), folder.resolve()
    return path == folder or path.is_relative_to(folder)


def check_nesting(folders: list[tuple[str, Path | None]], timings_file: Path | None = None) -> None:
    """The run folders (output_dir, dropped_dir, work_dir) must be apart: none equal to or inside
    another (output_dir and dropped_dir are each swapped in as a whole set, and the work folder is
    emptied at the start and removed at the end, so whatever lies in one of them is lost), and
    ``timings_file`` must lie in none of them (it is written before the output set is swapped in).

    Raises:
        PipelineError: one line naming both settings and paths; nothing was written.
    """
    named = [(k, p) for k, p in folders if p is not None and k in ("output_dir", "dropped_dir", "work_dir")]
    for i, (ka, a) in enumerate(named):
        for kb, b in named[i + 1:]:
            for (k1, p1), (k2, p2) in (((ka, a), (kb, b)), ((kb, b), (ka, a))):
                if _within(p1, p2):
                    where = "is the same folder as" if p1.resolve() == p2.resolve() else "is inside"
                    raise PipelineError(f"{k1} {p1} {where} {k2} {p2}: the run replaces or removes {k2} as a whole, "
                                        f"so {k1}'s files would be lost; nothing was written (give {k1} a folder "
                                        f"outside {k2})")
    if timings_file is not None:
        for k, p in named:
            if _within(timings_file, p):
                raise PipelineError(f"timings_file {timings_file} is inside {k} {p}: the run replaces or removes "
                                    f"{k} as a whole, so the file would be lost; nothing was written (give "
                                    f"timings_file a path outside {k}; output_dir holds curation_timings.json anyway)")


def check_against_sources(cfg: dict[str, Any] | CurateSettings, plan: list[dict[str, Any]]) -> None:
    """output_dir, dropped_dir and work_dir must not be, or lie inside, a folder the sources are
    read from (a local source folder, a download folder, the offline sample): the next run would
    read this run's outputs as input rows. Nor may a source (a folder, a download folder or any file
    read) lie inside one of them: output_dir and dropped_dir are swapped in as a whole and work_dir
    is removed, so the run would delete its own input.

    Raises:
        PipelineError: one line naming the setting, its path and the source's folder or file.
    """
    st = settings_of(cfg)
    out_dir = resolve(st.output_dir)
    folders = [("output_dir", out_dir), ("dropped_dir", resolve(st.dropped_dir) if st.dropped_dir else None),
               ("work_dir", work_folder(st, out_dir))]
    for src in plan:
        name = src["spec"].get("name", "?")
        reads = set()
        if src["origin"].startswith("offline sample"):
            reads.add(resolve(st.sample_dir).resolve())
        if src.get("convert_to"):
            reads.add(Path(src["convert_to"]).resolve())
        if src["origin"] == "local":
            p = resolve(src["spec"]["path"]).resolve()
            if p.is_dir():
                reads.add(p)
        read_paths = reads | {Path(os.path.realpath(f)) for f in src.get("files", [])}    # one resolve a file
        for key, path in folders:
            if path is None:
                continue
            real = Path(os.path.realpath(path))
            for folder in sorted(reads):
                if _within(path, folder):
                    raise PipelineError(f"{key} {path} is {'the' if path.resolve() == folder else 'inside the'} "
                                        f"folder {folder} that source {name!r} is read from: the next run would read "
                                        f"this run's files as rows; nothing was written (choose a {key} outside it)")
            inside = sorted(r for r in read_paths if r == real or r.is_relative_to(real))
            if inside:
                read = inside[0]
                raise PipelineError(f"source {name!r} reads {read}, which is inside {key} {path}: the run "
                                    f"replaces or removes {key} as a whole and would delete it; nothing was "
                                    f"written (move the source out of {key}, or choose a {key} elsewhere)")


def timings_record(marks: dict[str, float], passes: list[dict[str, Any]], total: float, rows: int,
                   engine: str) -> dict[str, Any]:
    """Where the time went, as written to ``curation_timings.json`` (``report.write_timings``).

    Args:
        marks: wall seconds per step of ``curate`` (plan sources, start engine, read, stage passes,
            split, merge, report), in order.
        passes: one dict per pass (``run_stages``' ``LAST_TIMINGS``: global fit, pass, dropped-row
            write and checkpoint seconds, rows/s, per stage wall/CPU seconds summed over partitions).
        total: wall seconds from the start of ``curate`` to the report written.
        rows: the rows read.
        engine: ``Engine.describe()``.

    Returns:
        ``{"finished_utc", "engine", "total_s", "rows_read", "rows_per_s", "resumed_passes", "rows_through",
        "steps_s": {step: s}, "passes": passes}`` (seconds rounded to 0.01). ``resumed_passes``: the
        passes an earlier run finished (resume; not timed here); ``rows_through``: the rows this run
        passed through its stages (the rows read, or, resumed, the rows into the first pass it ran);
        ``rows_per_s`` = rows_through / total_s. Not counted: writing the timings files, moving
        the dropped-row files into ``dropped_dir`` and swapping the output set in (renames).
    """
    import datetime as _dt

    resumed = [p["pass"] for p in passes if p.get("resumed")]
    ran = [p for p in passes if not p.get("resumed")]
    # a resumed run read nothing and ran only the later passes: its rows/s counts the rows that went
    # through the passes it ran (those into the first of them), not the rows an earlier run read
    through = int(ran[0]["rows_in"]) if resumed and ran else int(rows)
    return {"finished_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "engine": engine, "total_s": round(total, 2), "rows_read": int(rows),
            "rows_per_s": round(through / max(total, 1e-9), 1), "resumed_passes": resumed,
            "rows_through": through,
            "steps_s": {k: round(v, 2) for k, v in marks.items()}, "passes": list(passes)}


def log_timings(cfg: CurateSettings, timings: dict[str, Any]) -> None:
    """Log where the time went (``curation_timings.md``'s text) and, when ``timings_file`` is set,
    write an extra copy of ``curation_timings.json`` there (the copy in output_dir is the one of
    the output set).

    Raises:
        OutputError: ``timings_file`` cannot be written (its path named).
    """
    log.info("where the time went (also in %s):\n%s", resolve(cfg.output_dir) / TIMINGS_FILES[1],
             timings_markdown(timings).rstrip())
    target = cfg.timings_file
    if target:
        from ..io import write_json_atomic

        write_json_atomic(resolve(target), timings)


def _write_outputs(out_dir: Path, rows_kept: int, levels, cfg, rows_read: int, origins, bad, stats,
                   unresolved: dict[str, Any], sizes) -> dict[str, Any]:
    """The report (json, md, funnel png) in out_dir.

    Returns:
        The report dict that was written.
    """
    redactions: dict[str, int] = {}
    for st in stats:
        for k, v in st.counters.items():
            if k.startswith("pii_"):
                redactions[k[4:]] = redactions.get(k[4:], 0) + v
    report = {
        "sources": origins,
        "rows_read": int(rows_read),
        # per reason only when lines were skipped: a clean read's report keeps its bytes
        "bad_lines": {"skipped": bad.skipped, **({"by_reason": dict(sorted(bad.reasons.items()))} if bad.skipped else {}),
                      "examples": [e.split(str(resolve('.')) + "/")[-1] for e in (bad.examples or [])]},
        "rows_kept": int(rows_kept),
        "stages": [s.to_dict() for s in stats],
        "redactions": redactions,
        "duplicates": {s.name: s.extra for s in stats if s.name in ("exact_dedup", "fuzzy_dedup")},
        "decontamination": next((s.extra for s in stats if s.name == "decontaminate"), {"problems_checked": 0}),
        "hierarchy": hierarchy_report(None, stats, unresolved=unresolved),
        "splits": sizes,
        # the sections as the YAML gave them (key order, values): the report stays byte-identical
        "config": {k: cfg.source[k] for k in ("levels", "seed", "split", "clean", "module_index", "rules", "pii",
                                              "exact_dedup", "fuzzy_dedup", "decontaminate", "both_views")
                   if k in cfg.source},
    }
    write_report(out_dir, report)
    return report


REPORT_FILES = ("curation_report.json", "curation_report.md", "curation_funnel.png", *TIMINGS_FILES)


DROPPED_FILE_GLOB = "[0-9][0-9]_*.jsonl"


def dropped_keep(dropped_dir: Path) -> list[str]:
    """The entries of an existing ``dropped_dir`` that are not a previous run's dropped-row files
    (``<nn>_<stage>.jsonl``): they are carried over into the new set.

    Returns:
        Their names, sorted; [] when ``dropped_dir`` does not exist.
    """
    import fnmatch

    return [p.name for p in sorted(dropped_dir.iterdir()) if not fnmatch.fnmatch(p.name, DROPPED_FILE_GLOB)
            and not p.name.startswith(".")] if dropped_dir.is_dir() else []


def stage_dropped(files_dir: Path, staging: Path) -> None:
    """This run's dropped-row files (``files_dir``, in the work folder) into ``dropped_dir``'s staging
    folder: hard links where the file system allows (no copy of the bytes), else copies. The work
    folder keeps its files until the whole set is swapped in, so a run that fails at the swap can
    still be resumed.

    Raises:
        OSError: a file can be neither linked nor copied.
    """
    for f in sorted(files_dir.glob(DROPPED_FILE_GLOB)) if files_dir.is_dir() else []:
        try:
            os.link(f, staging / f.name)
        except OSError:
            shutil.copy2(f, staging / f.name)


def foreign_entries(out_dir: Path, levels: list[str]) -> list[str]:
    """Entries of an existing output folder that a run does not write and that are not a previous
    run's outputs: they are carried over into the new set. A previous run's level folders
    (holding train/validation/test.jsonl) and report files are replaced, not kept.

    Returns:
        The entries' names, sorted; [] when ``out_dir`` does not exist.
    """
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


def main(cfg: dict[str, Any] | CurateSettings, args) -> int:
    """``curate_data.py``'s step: run ``curate(cfg)``; a known error is logged as one line.

    Returns:
        The exit code: 0, or 1 after a config, source, download, pipeline or engine error.
    """
    try:
        curate(cfg, scheduler=getattr(args, "scheduler", None))
    except RunLockedError as exc:
        log.error("%s", exc)          # the other run's work folder is not this run's to describe
        return 1
    except (ConfigError, SourceError, DownloadError, PipelineError, EngineError) as exc:
        log.error("%s", exc)
        _say_work_kept(cfg)
        return 1
    return 0


def _say_work_kept(cfg: dict[str, Any] | CurateSettings) -> None:
    """After a failed run: one line saying where its finished passes are kept, if any."""
    with contextlib.suppress(Exception):
        st = settings_of(cfg)
        work = work_folder(st, resolve(st.output_dir))
        passes = json.loads((work / "manifest.json").read_text()).get("passes") or []
        if passes:
            log.warning("the %d finished pass(es) of this run are kept in %s: rerun with resume=true to reuse "
                        "them (the folder is removed when a run finishes; delete it to start over)", len(passes), work)
