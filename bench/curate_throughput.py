#!/usr/bin/env python3
"""Curation throughput: unicode fix + word count + top n-gram + URL filters + exact dedup.

    .venv/bin/python bench/curate_throughput.py [--docs 20000] [--words 200] [--workers 2] [--repeats 3]

Generates a corpus of --docs documents of about --words words (10% exact duplicates of other
documents, 5% with URLs, 3% with mojibake or other non-ASCII text, 2% repetitive) as 8 jsonl
shards, starts a Dask LocalCluster of --workers processes (start-up timed separately), then times
the whole run: read the shards on the workers, the five stages (the same Stage/Chain machinery as
the Verilog pipeline), write the kept documents as jsonl. Side by side, in the same run: a plain
dask.dataframe version of the same rules (read_json -> map_partitions -> drop_duplicates ->
to_json). Prints one JSON line per run with wall-clock docs/s and the CPU seconds used by the
driver and all workers; docs_per_s_if_cpu_bound = docs / (CPU seconds / workers) is what two idle
cores would give if the run were CPU-bound (a shared machine only changes the wall clock).
At the end it checks that every run of ours wrote the same bytes and the same texts as the plain
version (exit status 1 if not). docs/benchmarks.md holds the results.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from sft_playbook.curate.dedup import ExactDedup  # noqa: E402
from sft_playbook.curate.engine import Engine  # noqa: E402
from sft_playbook.curate.filters import TopNGramShare, UnicodeFix, UrlShare, WordCount  # noqa: E402
from sft_playbook.curate.io import read_jsonl_frame, write_frame_jsonl_atomic  # noqa: E402
from sft_playbook.io import write_jsonl_atomic  # noqa: E402
from sft_playbook.curate.pipeline import run_stages  # noqa: E402
from sft_playbook.curate.textutil import fix_unicode, top_ngram_share, url_char_share  # noqa: E402

SHARDS = 8


def make_corpus(n: int, words: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    syll = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "de", "pa", "gu", "fe", "zo", "li", "ba", "no"]
    vocab = ["".join(rng.choice(syll) for _ in range(rng.randint(1, 4))) for _ in range(8000)]
    weights = [1.0 / (i + 1) for i in range(len(vocab))]          # Zipf-like
    n_unique = n - n // 10
    docs = []
    for _ in range(n_unique):
        k = max(20, int(rng.gauss(words, words / 5)))
        toks = rng.choices(vocab, weights=weights, k=k)
        r = rng.random()
        if r < 0.05:
            for _ in range(rng.randint(1, 12)):
                toks.insert(rng.randrange(len(toks)), f"https://www.example{rng.randint(1, 99)}.com/{rng.choice(vocab)}/{rng.choice(vocab)}")
        elif r < 0.08:
            toks.insert(rng.randrange(len(toks)), rng.choice(["cafÃ©", "naÃ¯ve", "â€œquotedâ€\x9d", "Ã¼ber", "façade", "日本語"]))
        elif r < 0.10:
            toks = (toks[:6] * (k // 6 + 1))[:k]                    # repetitive
        docs.append(" ".join(toks))
    dups = [docs[rng.randrange(n_unique)] for _ in range(n - n_unique)]
    docs += dups
    rng.shuffle(docs)
    return docs


def write_shards(docs: list[str], folder: Path) -> list[str]:
    files = []
    for s in range(SHARDS):
        p = folder / f"shard_{s:02d}.jsonl"
        write_jsonl_atomic(p, ({"id": f"doc-{i}", "text": d} for i, d in enumerate(docs) if i % SHARDS == s))
        files.append(str(p))
    return files


def read_shard(path: str) -> pd.DataFrame:
    df = read_jsonl_frame(path, {"id": "str", "text": "str"})
    df["_order"] = df["id"].str[4:].astype("int64")
    return df[["id", "_order", "text"]]


def write_part(df: pd.DataFrame, index: int, folder: str) -> int:
    write_frame_jsonl_atomic(f"{folder}/kept-{index:03d}.jsonl", df, ["id", "text"])
    return len(df)


def stages(min_words: int, max_words: int):
    return [UnicodeFix(["text"]), WordCount(["text"], min_words=min_words, max_words=max_words),
            TopNGramShare(["text"], n=2, max_share=0.2), UrlShare(["text"], max_share=0.1),
            ExactDedup("text", normalize="text")]


def run_ours(files: list[str], out: Path, engine: Engine) -> dict:
    t0 = time.perf_counter()
    # the workers read the shards (in the first pass) and write what they keep (in the last one),
    # like the plain version's read_json / to_json
    written, stats = run_stages(files, stages(50, 100_000), engine, None, load=read_shard,
                                finish=partial(write_part, folder=str(out)))
    n = sum(written)
    dt = time.perf_counter() - t0
    return {"seconds": dt, "kept": n, "dropped": {s.name: sum(s.dropped.values()) for s in stats}}


def run_plain_dask(files: list[str], out: Path) -> dict:
    import dask

    # text as Python str, as in the earlier runs of this baseline (Arrow strings cost it ~1 s more)
    with dask.config.set({"dataframe.convert-string": False}):
        return _plain_dask(files, out)


def _plain_dask(files: list[str], out: Path) -> dict:
    import hashlib

    import dask.dataframe as dd

    t0 = time.perf_counter()
    ddf = dd.read_json(files, lines=True, dtype={"id": str, "text": str}, blocksize=None)

    def rules(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        df["text"] = df["text"].map(fix_unicode)
        n = df["text"].str.split().str.len()
        keep = (n >= 50) & (n <= 100_000)
        keep &= df["text"].map(lambda t: top_ngram_share(t, 2)) <= 0.2
        keep &= df["text"].map(url_char_share) <= 0.1
        df = df[keep]
        df["hash"] = df["text"].map(lambda t: hashlib.blake2b(" ".join(t.split()).encode(), digest_size=16).hexdigest())
        return df

    meta = pd.DataFrame({"id": pd.Series(dtype=str), "text": pd.Series(dtype=str), "hash": pd.Series(dtype=str)})
    ddf = ddf.map_partitions(rules, meta=meta).drop_duplicates(subset="hash", split_out=1)
    ddf[["id", "text"]].to_json(str(out / "plain-*.jsonl"), orient="records", lines=True)

    kept = sum(1 for p in out.glob("plain-*.jsonl") for _ in open(p))  # noqa: SIM115 - read-only, closed by GC
    return {"seconds": time.perf_counter() - t0, "kept": kept}


def cpu_seconds(engine: Engine) -> float:
    """CPU time (user + system) used so far by the driver and every worker process: a measure that,
    unlike wall-clock on a shared machine, does not depend on what else runs."""
    import resource

    def mine() -> float:
        import resource as r

        u = r.getrusage(r.RUSAGE_SELF)
        c = r.getrusage(r.RUSAGE_CHILDREN)
        return u.ru_utime + u.ru_stime + c.ru_utime + c.ru_stime

    workers = sum(engine.client.run(mine).values()) if engine.client is not None else 0.0
    u = resource.getrusage(resource.RUSAGE_SELF)
    return workers + u.ru_utime + u.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--words", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-baseline", action="store_true", help="skip the plain dask.dataframe version")
    args = ap.parse_args()
    docs = make_corpus(args.docs, args.words)
    with tempfile.TemporaryDirectory(prefix="curate-bench-") as tmp:
        tmp = Path(tmp)
        files = write_shards(docs, tmp / "in")
        mb = sum(Path(f).stat().st_size for f in files) / 1e6
        print(json.dumps({"corpus_docs": len(docs), "corpus_mb": round(mb, 1),
                          "mean_words": round(sum(len(d.split()) for d in docs) / len(docs), 1)}))
        t0 = time.perf_counter()
        with Engine(engine="dask", n_workers=args.workers, threads_per_worker=1, partition_rows=10_000) as eng:
            print(json.dumps({"cluster_start_s": round(time.perf_counter() - t0, 2)}))
            eng.gather(eng.map(len, eng.map(read_shard, files[:2])))  # warm the workers' imports
            for r in range(args.repeats):
                out = tmp / f"ours{r}"
                out.mkdir()
                c0 = cpu_seconds(eng)
                res = run_ours(files, out, eng)
                cpu = cpu_seconds(eng) - c0
                print(json.dumps({"engine": "sft_playbook.curate (Chain on LocalCluster futures)", "workers": args.workers,
                                  "run": r, "docs_per_s": round(len(docs) / res["seconds"]), "cpu_s": round(cpu, 2),
                                  "docs_per_s_if_cpu_bound": round(len(docs) / (cpu / args.workers)), **res}))
            if not args.no_baseline:
                for r in range(args.repeats):
                    out = tmp / f"plain{r}"
                    out.mkdir()
                    c0 = cpu_seconds(eng)
                    res = run_plain_dask(files, out)
                    cpu = cpu_seconds(eng) - c0
                    print(json.dumps({"engine": "plain dask.dataframe", "workers": args.workers, "run": r,
                                      "docs_per_s": round(len(docs) / res["seconds"]), "cpu_s": round(cpu, 2),
                                      "docs_per_s_if_cpu_bound": round(len(docs) / (cpu / args.workers)), **res}))
        # the numbers only count if the work is the same: every run of ours wrote the same bytes,
        # and the same texts as the plain version (which of two duplicates survives differs: ours
        # keeps the first in input order, drop_duplicates the first it happens to meet)
        ours = [b"".join(p.read_bytes() for p in sorted((tmp / f"ours{r}").glob("kept-*.jsonl"))) for r in range(args.repeats)]
        check = {"ours_identical_across_runs": len(set(ours)) == 1}
        if not args.no_baseline:
            check["same_texts_as_plain"] = (Counter(records(tmp / "ours0", "kept-*.jsonl").values())
                                            == Counter(records(tmp / "plain0", "plain-*.jsonl").values()))
        print(json.dumps(check))
        if not all(check.values()):
            return 1
    return 0


def records(folder: Path, pattern: str) -> dict[str, str]:
    out = {}
    for p in sorted(folder.glob(pattern)):
        for line in p.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            out[r["id"]] = r["text"]
    return out


if __name__ == "__main__":
    sys.exit(main())
