"""Step 4 - deduplication: exact (hash of normalised code) and fuzzy (MinHash + LSH, verified).

Both are global stages: ``fit`` computes per-partition keys on the workers (hashes, MinHash
signatures), brings the small keys to the driver, forms duplicate clusters and decides which row
of each cluster stays; ``process`` then drops the others per partition. The row kept is always
the first one in input order (``_order``), so reruns and different partitionings agree.
"""
from __future__ import annotations

import hashlib
import logging
from functools import partial

import numpy as np
import pandas as pd

from .base import Stage, _as_str
from .minhash import MinHasher, UnionFind, jaccard, lsh_candidates, shingles
from .textutil import collapse_spaces, normalized_code

log = logging.getLogger(__name__)


class ExactDedup(Stage):
    """Rows whose ``field`` hashes the same after normalisation (code: tokens without comments or
    formatting; text: collapsed whitespace) form a cluster; all but the first are dropped."""

    name = "exact_dedup"
    is_global = True

    def __init__(self, field: str = "code", normalize: str = "code") -> None:
        super().__init__(field=field, normalize=normalize)
        self.drop_of: dict[str, str] = {}
        self._summary: dict = {}

    def keys(self, df: pd.DataFrame) -> pd.DataFrame:
        norm = normalized_code if self.config["normalize"] == "code" else collapse_spaces
        blake = hashlib.blake2b
        h = [blake(norm(t).encode("utf-8"), digest_size=16).hexdigest() for t in df[self.config["field"]].tolist()]
        return pd.DataFrame({"id": _as_str(df["id"]), "_order": df["_order"].astype("int64"),
                             "hash": pd.Series(h, index=df.index, dtype=object)})

    def fit(self, parts, engine, keys=None) -> None:
        if keys is None:
            keys = engine.collect(self.keys, parts)
        if keys.empty:
            self.drop_of, self._summary = {}, {"clusters": 0, "rows_in_clusters": 0, "largest_cluster": 0}
            return
        keys = keys.sort_values("_order", kind="stable")
        ids, hashes = keys["id"].to_numpy(), keys["hash"]
        dup = hashes.duplicated(keep="first").to_numpy()            # all but the first in input order
        first_of = dict(zip(hashes.to_numpy()[~dup], ids[~dup]))
        self.drop_of = {i: first_of[h] for i, h in zip(ids[dup], hashes.to_numpy()[dup])}
        sizes = hashes.value_counts(sort=False)
        sizes = sizes[sizes > 1]
        self._summary = {"clusters": int(len(sizes)), "rows_in_clusters": int(sizes.sum()),
                         "largest_cluster": int(sizes.max()) if len(sizes) else 0}

    def process(self, df):
        ids = _as_str(df["id"])
        mask = ids.isin(self.drop_of.keys())
        if mask.any():
            self.drop(df, mask, "exact_duplicate", "same code as " + ids[mask].map(self.drop_of))
        return df

    def summary(self):
        return dict(self._summary)


class FuzzyDedup(Stage):
    """MinHash + LSH near-duplicate removal with exact-Jaccard verification (see minhash.py for
    the defaults and their justification). GPU workers use torch for the signatures."""

    name = "fuzzy_dedup"
    is_global = True

    def __init__(self, field: str = "code", shingle: str = "tokens", ngram: int = 5, num_perm: int = 160,
                 bands: int = 20, rows: int = 8, threshold: float = 0.8, seed: int = 42,
                 normalize_identifiers: bool = True, backend: str = "auto", max_bucket: int = 64) -> None:
        super().__init__(field=field, shingle=shingle, ngram=ngram, num_perm=num_perm, bands=bands, rows=rows,
                         threshold=threshold, seed=seed, normalize_identifiers=normalize_identifiers,
                         backend=backend, max_bucket=max_bucket)
        if bands * rows > num_perm:
            raise ValueError(f"fuzzy_dedup: bands x rows ({bands}x{rows}) exceeds num_perm ({num_perm})")
        self.drop_of: dict[str, tuple[str, float]] = {}
        self._summary: dict = {}

    def _shingles(self, text: str) -> np.ndarray:
        c = self.config
        return shingles(text, c["shingle"], c["ngram"], c["normalize_identifiers"])

    def keys(self, df: pd.DataFrame) -> pd.DataFrame:
        """The MinHash signature of every row (on a GPU worker through torch)."""
        c = self.config
        backend = c["backend"] if c["backend"] != "auto" else ("torch" if _cuda_here() else "numpy")
        hasher = MinHasher(c["num_perm"], c["seed"], backend)
        sigs = hasher.signatures([self._shingles(t) for t in df[c["field"]]])
        return pd.DataFrame({"id": df["id"].astype(str), "_order": df["_order"].astype("int64"),
                             "sig": [s.tobytes() for s in sigs]})

    def fit(self, parts, engine, keys=None) -> None:
        c = self.config
        sig_df = keys if keys is not None else engine.collect(self.keys, parts)
        if sig_df.empty:
            self._summary = {"candidate_pairs": 0, "verified_pairs": 0, "clusters": 0, "rows_in_clusters": 0}
            return
        sig_df = sig_df.sort_values("_order", kind="stable").reset_index(drop=True)
        sigs = np.stack([np.frombuffer(s, dtype=np.uint32) for s in sig_df["sig"]])
        cands = sorted(lsh_candidates(sigs, c["bands"], c["rows"], c["max_bucket"]))
        # verify candidates with the exact Jaccard of their shingle sets
        need = sorted({i for p in cands for i in p})
        ids = sig_df["id"].tolist()
        texts = {}
        if need:
            want = set(ids[i] for i in need)
            part = engine.collect(partial(_rows_with_ids, ids=want, columns=["id", c["field"]]), parts)
            texts = dict(zip(part["id"].astype(str), part[c["field"]]))
        sh = {i: self._shingles(texts[ids[i]]) for i in need}
        uf = UnionFind(len(ids))
        best: dict[int, float] = {}
        verified = 0
        for i, j in cands:
            jac = jaccard(sh[i], sh[j])
            if jac >= c["threshold"]:
                verified += 1
                uf.union(i, j)
                best[j] = max(best.get(j, 0.0), jac)
        clusters = uf.clusters()
        self.drop_of = {}
        for root, members in clusters.items():
            for m in members:
                if m != root:
                    jac = jaccard(sh[root], sh[m]) if m in sh and root in sh else best.get(m, 0.0)
                    self.drop_of[ids[m]] = (ids[root], round(float(jac), 3))
        self._summary = {"candidate_pairs": len(cands), "verified_pairs": verified, "clusters": len(clusters),
                         "rows_in_clusters": int(sum(len(m) for m in clusters.values())),
                         "largest_cluster": max((len(m) for m in clusters.values()), default=0)}
        log.info("fuzzy dedup: %d candidate pairs from LSH, %d verified >= %.2f, %d clusters",
                 len(cands), verified, c["threshold"], len(clusters))

    def process(self, df):
        ids = _as_str(df["id"])
        mask = ids.isin(self.drop_of.keys())
        detail = ids.map(lambda i: f"near {self.drop_of[i][0]} (Jaccard {self.drop_of[i][1]})" if i in self.drop_of else "")
        self.drop(df, mask, "near_duplicate", detail)
        return df

    def summary(self):
        return dict(self._summary)


def _rows_with_ids(df: pd.DataFrame, ids: set[str], columns: list[str]) -> pd.DataFrame:
    return df.loc[_as_str(df["id"]).isin(ids).to_numpy(), columns]


def _cuda_here() -> bool:
    try:
        import sys

        if "torch" not in sys.modules:  # do not pay torch's import on CPU-only workers
            import importlib.util

            if importlib.util.find_spec("torch") is None:
                return False
            import os

            if not os.environ.get("CUDA_VISIBLE_DEVICES") and not os.path.exists("/dev/nvidia0"):
                return False
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False
