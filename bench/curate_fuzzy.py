#!/usr/bin/env python3
"""Fuzzy dedup quality and speed: pairs found by MinHash + LSH (+ exact-Jaccard check) against the
exact Jaccard of every pair, on a corpus with planted near duplicates at known similarities.

    .venv/bin/python bench/curate_fuzzy.py [--docs 4000] [--pairs 1000] [--threshold 0.8] [--workers 2]

Corpus: --docs random documents of ~200 words (Zipf vocabulary), plus --pairs near copies made by
replacing a random share of a base document's words (target similarities spread over 0.5..1.0,
so many pairs sit near the threshold). Ground truth: the exact Jaccard similarity of the word
5-gram sets of *every* pair of documents (computed with an inverted index, so pairs that share no
shingle count as 0), and the true pairs are those >= --threshold. Reported for each setting:
precision and recall of the pairs found, and docs/s. Settings: this project's default (20 x 8,
verified), the same without verification, NeMo Curator's 20 x 13 and datatrove's 14 x 8 (both
unverified here, as datatrove runs; NeMo's optional check is the 'verified' idea). The pipeline
stage itself (FuzzyDedup on a Dask LocalCluster with --workers processes) is timed as well.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sft_playbook.curate.base import REASON  # noqa: E402
from sft_playbook.curate.dedup import FuzzyDedup  # noqa: E402
from sft_playbook.curate.engine import Engine  # noqa: E402
from sft_playbook.curate.minhash import MinHasher, jaccard, lsh_candidates, shingles  # noqa: E402


def make_corpus(n_docs: int, n_pairs: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(20000)]
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(vocab))]
    docs = [" ".join(rng.choices(vocab, weights=weights, k=max(40, int(rng.gauss(200, 30))))) for _ in range(n_docs)]
    for _ in range(n_pairs):
        base = docs[rng.randrange(n_docs)].split()
        target = rng.uniform(0.5, 1.0)
        # replacing a share p of the words keeps about (1-p)^5 of the 5-grams: aim at the target
        share = 1 - ((2 * target / (1 + target)) ** (1 / 5))
        new = [rng.choice(vocab) if rng.random() < share else w for w in base]
        docs.append(" ".join(new))
    order = list(range(len(docs)))
    rng.shuffle(order)
    return [docs[i] for i in order]


def all_pairs_jaccard(sh: list[np.ndarray], threshold: float) -> set[tuple[int, int]]:
    """Exact Jaccard of every pair that shares at least one shingle (all others are 0)."""
    index: dict[int, list[int]] = {}
    for i, s in enumerate(sh):
        for g in s.tolist():
            index.setdefault(g, []).append(i)
    inter: Counter = Counter()
    for docs in index.values():
        if 1 < len(docs) <= 200:                # very common shingles: counted below instead
            for a in range(len(docs)):
                for b in range(a + 1, len(docs)):
                    inter[(docs[a], docs[b])] += 1
    truth = set()
    for (i, j), _ in inter.items():
        if jaccard(sh[i], sh[j]) >= threshold:   # exact, also counting any very common shingles
            truth.add((i, j))
    return truth


def evaluate(found: set, truth: set) -> dict:
    tp = len(found & truth)
    return {"found": len(found), "true": len(truth), "precision": round(tp / max(1, len(found)), 4),
            "recall": round(tp / max(1, len(truth)), 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=4000)
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    docs = make_corpus(args.docs, args.pairs)
    sh = [shingles(d, "words", 5) for d in docs]
    truth = all_pairs_jaccard(sh, args.threshold)
    sims = sorted(jaccard(sh[i], sh[j]) for i, j in truth)
    print(json.dumps({"docs": len(docs), "true_pairs": len(truth), "min_true_jaccard": round(sims[0], 3) if sims else None}))
    for name, perm, bands, rows, verify in [("this project (20x8, verified)", 160, 20, 8, True),
                                            ("20x8 unverified", 160, 20, 8, False),
                                            ("NeMo Curator 20x13, unverified", 260, 20, 13, False),
                                            ("NeMo Curator 20x13, verified", 260, 20, 13, True),
                                            ("datatrove 14x8, unverified", 112, 14, 8, False)]:
        t0 = time.perf_counter()
        sigs = MinHasher(perm, 42).signatures([shingles(d, "words", 5) for d in docs])
        cands = lsh_candidates(sigs, bands, rows)
        found = {p for p in cands if jaccard(sh[p[0]], sh[p[1]]) >= args.threshold} if verify else set(cands)
        dt = time.perf_counter() - t0
        print(json.dumps({"setting": name, **evaluate(found, truth), "docs_per_s_1proc": round(len(docs) / dt)}))
    # the pipeline stage on a LocalCluster
    df = pd.DataFrame({"id": [f"d{i}" for i in range(len(docs))], "_order": range(len(docs)), "text": docs})
    with Engine(engine="dask", n_workers=args.workers, partition_rows=max(1, len(docs) // (2 * args.workers))) as eng:
        parts = eng.partitions(df)
        stage = FuzzyDedup("text", shingle="words", ngram=5, seed=42, threshold=args.threshold)
        t0 = time.perf_counter()
        stage.fit(parts, eng)
        state = stage.state()                # the drop table stays on a worker: each task receives it
        out = pd.concat(eng.gather(eng.map(_apply, parts, [stage] * len(parts), [state] * len(parts))))
        dt = time.perf_counter() - t0
    dropped = int((out[REASON] == "near_duplicate").sum())
    # every true pair must end in one cluster: each cluster keeps one row
    print(json.dumps({"setting": f"FuzzyDedup stage, LocalCluster {args.workers} workers", "dropped": dropped,
                      "clusters": stage.summary()["clusters"], "verified_pairs": stage.summary()["verified_pairs"],
                      "docs_per_s": round(len(docs) / dt)}))
    return 0


def _apply(part, stage, state):
    if state is not None:
        stage.set_state(state)
    return stage(part)


if __name__ == "__main__":
    sys.exit(main())
