"""One corpus, three formats, on the shipped path: ``curate_data.py`` (LocalCluster, 2 workers) on the
same N synthetic documents as ONE plain jsonl file, ONE parquet file of ONE row group (what
``pandas.to_parquet`` writes up to 1Mi rows) and ONE ``.jsonl.gz`` (issue 15, review 15b finding 2:
the last two were one partition for every pass). Prints one JSON line per format: wall, the read
step, each pass's wall and summed task CPU, partitions, driver and max worker peak RSS (VmHWM).

    PYTHONPATH=. python bench/curate_formats.py --docs 100000 [--formats jsonl parquet gz] [--folder DIR]

The documents and the recipe are ``bench/curate_scale.py``'s product path ("rules": clean, word count,
top n-gram, URL share, exact dedup; compile check and PII off). Output bytes of the three runs are
compared (they must be equal).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import curate_scale as cs  # noqa: E402


def corpus(n: int, words: int, root: Path) -> Path:
    """The N documents as one plain jsonl file (``curate_scale.generate_product``'s shards joined)."""
    gen = root / "gen"
    cs.generate_product(n, words, gen)
    plain = root / "corpus.jsonl"
    with open(plain, "wb") as out:
        for f in sorted(gen.glob("shard_*.jsonl")):
            out.write(f.read_bytes())
    shutil.rmtree(gen)
    return plain


def as_format(plain: Path, fmt: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        target = folder / "corpus.jsonl"
        shutil.copyfile(plain, target)
    elif fmt == "gz":
        target = folder / "corpus.jsonl.gz"
        with open(plain, "rb") as src, gzip.open(target, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    elif fmt == "parquet":
        import pandas as pd

        target = folder / "corpus.parquet"
        df = pd.read_json(plain, lines=True, dtype=False)
        df.to_parquet(target, index=False, row_group_size=len(df))       # ONE row group
        import pyarrow.parquet as pq

        assert pq.ParquetFile(target).metadata.num_row_groups == 1
    else:
        raise SystemExit(f"unknown format {fmt}")
    return target


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*.jsonl")):
        h.update(str(p.relative_to(folder)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--words", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--formats", nargs="+", default=["jsonl", "parquet", "gz"])
    ap.add_argument("--folder", type=Path, default=None, help="work here (kept); default a temporary folder")
    args = ap.parse_args()
    root = args.folder or Path(tempfile.mkdtemp(prefix="curate-formats-"))
    root.mkdir(parents=True, exist_ok=True)
    plain = root / "corpus.jsonl"
    if not plain.is_file():
        corpus(args.docs, args.words, root)
    digests = {}
    for fmt in args.formats:
        folder = root / fmt
        shutil.rmtree(folder, ignore_errors=True)
        path = as_format(plain, fmt, folder / "in")
        (folder / "sources.jsonl").write_text(json.dumps(cs.product_spec(path)) + "\n")
        load = os.getloadavg()
        t0 = time.time()
        res = cs.run_product(folder, "rules", args.workers, None)
        timings = json.loads((folder / "out-rules" / "curation_timings.json").read_text())
        digests[fmt] = digest(folder / "out-rules") + "/" + digest(folder / "dropped-rules")
        print(json.dumps({
            "format": fmt, "file_mb": round(path.stat().st_size / 1e6, 1), "docs": res["docs"],
            "wall_s": res["seconds"], "read_s": round(timings["steps_s"].get("read sources (workers)", 0), 1),
            "passes": [{"pass": p["pass"], "pass_s": p.get("pass_s"), "rows_per_s": p.get("rows_per_s"),
                        "task_cpu_s": round(sum(p.get("stage_cpu_s", {}).values()), 1)} for p in res["passes"]],
            "cpu_s_all_processes": res["cpu_s"], "driver_peak_rss_mb": res["driver_peak_rss_mb"],
            "max_worker_peak_rss_mb": max(res["worker_peak_rss_mb"] or [0]),
            "load_avg_1m_before": round(load[0], 1), "load_avg_1m_after": res["load_avg_1m"],
            "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t0)), "outputs": digests[fmt]}), flush=True)
    if len(set(digests.values())) > 1:
        print(f"OUTPUTS DIFFER: {digests}")
        return 1
    print(f"same outputs for {', '.join(digests)}: {next(iter(digests.values()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
