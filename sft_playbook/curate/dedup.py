"""Step 6 - deduplication: exact (hash of normalised code) and fuzzy (MinHash + LSH, verified); the
last stages that drop rows, so the row a dropped duplicate names is not dropped by a later stage.

Both are global stages: ``fit`` computes per-partition keys on the workers (hashes, MinHash
signatures), brings the small keys to the driver, forms duplicate clusters and decides which row
of each cluster stays; ``process`` then drops the others per partition. The row kept is always
the first one in input order (``_order``), so reruns and different partitionings agree.

Fuzzy clusters do not chain: similarity is not transitive (A~B 0.84 and B~C 0.85 while A~C is
0.72), so clusters are not the connected components of the similarity graph. Every dropped row
names a KEPT row whose verified Jaccard with it is >= the threshold (``keep_first``): a row
similar only to dropped rows stays.
"""
from __future__ import annotations

import hashlib
import logging
from functools import partial

import numpy as np
import pandas as pd

from ..settings import EXACT_NORMALIZE, MINHASH_BACKENDS, SHINGLES
from .base import Stage, _as_str
from .minhash import MinHasher, jaccard, lsh_candidates, shingles
from .textutil import collapse_spaces, normalized_code

log = logging.getLogger(__name__)


class ExactDedup(Stage):
    """Rows whose ``field`` hashes the same after normalisation (code: tokens without comments or
    formatting; text: collapsed whitespace) form a cluster; all but the first are dropped.

    Where the keys live: on the workers. A key is 16 bytes of hash plus the id and ``_order``
    (~100 bytes a row as Python objects), so 1M rows would be ~100 MB on the driver, growing with
    the corpus. Instead the keys stay where the previous pass computed them and are shuffled by
    hash (``_hash_buckets``: one frame per bucket and partition; a duplicate always lands in the
    same bucket as its first copy); one task per bucket finds the clusters (``_exact_clusters``),
    and one task joins the buckets' decisions into the table ``id -> first id`` of the rows to
    drop, which stays on a worker and goes to the next pass's tasks (``state``/``set_state``).
    The driver gets the cluster counts only."""

    name = "exact_dedup"
    is_global = True
    keys_on_workers = True

    def __init__(self, field: str = "code", normalize: str = "code") -> None:
        super().__init__(field=field, normalize=normalize)
        if normalize not in EXACT_NORMALIZE:
            raise ValueError(f"exact_dedup.normalize: must be one of {', '.join(EXACT_NORMALIZE)}, got {normalize!r}")
        self.drop_of: dict[str, str] = {}
        self._summary: dict = {}
        self._state = None

    def keys(self, df: pd.DataFrame) -> pd.DataFrame:
        """Per row of one partition: id, ``_order`` and the 128-bit BLAKE2b hex digest of the normalised field."""
        norm = normalized_code if self.config["normalize"] == "code" else collapse_spaces
        blake = hashlib.blake2b
        h = [blake(norm(t).encode("utf-8"), digest_size=16).hexdigest() for t in df[self.config["field"]].tolist()]
        return pd.DataFrame({"id": _as_str(df["id"]), "_order": df["_order"].astype("int64"),
                             "hash": pd.Series(h, index=df.index, dtype=object)})

    def fit(self, parts, engine, keys=None) -> None:
        """``keys``: one frame per partition (futures on a cluster), a single frame, or None (then
        computed here, on the workers)."""
        if keys is None:
            keys = engine.map(self.keys, parts)
        elif isinstance(keys, pd.DataFrame):
            keys = [keys]
        n = max(1, min(len(keys), 2 * max(1, engine.n_workers)))
        buckets = engine.map(partial(_hash_buckets, buckets=n), keys)
        reduced = [engine.submit(_exact_clusters, *engine.map(partial(_item, b), buckets)) for b in range(n)]
        stats = engine.gather(engine.map(partial(_item, 1), reduced))
        self._state = engine.submit(_drop_table, *engine.map(partial(_item, 0), reduced))
        if engine.client is None:
            self.drop_of, self._state = self._state, None
        hist: dict[int, int] = {}
        for st in stats:
            for k, v in st[3].items():
                hist[k] = hist.get(k, 0) + v
        self._summary = {"clusters": sum(st[0] for st in stats), "rows_in_clusters": sum(st[1] for st in stats),
                         "largest_cluster": max((st[2] for st in stats), default=0),
                         "cluster_sizes": {str(k): hist[k] for k in sorted(hist)}}

    def state(self):
        """The ``id -> first id`` table of rows to drop, as left by ``fit`` (a future on a cluster)."""
        return self._state

    def set_state(self, value) -> None:
        """Receive the ``id -> first id`` table on the worker (before ``process``)."""
        self.drop_of = value

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_state"] = None                   # a future: it travels as the task's argument instead
        return d

    def process(self, df):
        """Drop every row of the partition that is in the table, as ``exact_duplicate`` (detail: the kept id)."""
        ids = _as_str(df["id"])
        mask = ids.isin(self.drop_of.keys())
        if mask.any():
            self.drop(df, mask, "exact_duplicate", "same code as " + ids[mask].map(self.drop_of))
        return df

    def summary(self):
        """Cluster counts: clusters, rows in clusters, the largest cluster and a size histogram."""
        return dict(self._summary)


def _item(i, seq):
    return seq[i]


def _hash_buckets(keys: pd.DataFrame, buckets: int) -> list[pd.DataFrame]:
    """The partition's keys split by hash into ``buckets`` frames (the map side of the shuffle)."""
    if buckets == 1:
        return [keys]
    b = keys["hash"].map(lambda h: int(h[:8], 16) % buckets).to_numpy()
    return [keys[b == i] for i in range(buckets)]


def _exact_clusters(*frames: pd.DataFrame) -> tuple[pd.DataFrame, tuple[int, int, int, dict[int, int]]]:
    """One bucket (the reduce side): the rows to drop (id, first id of their cluster) and
    (clusters, rows in clusters, largest cluster, {cluster size: clusters}). The first row in
    input order (``_order``) of a cluster stays."""
    keys = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["id", "_order", "hash"])
    if keys.empty:
        return pd.DataFrame({"id": [], "first": []}, dtype=object), (0, 0, 0, {})
    keys = keys.sort_values("_order", kind="stable")
    hashes = keys["hash"]
    dup = hashes.duplicated(keep="first").to_numpy()
    ids = keys["id"].to_numpy()
    first_of = dict(zip(hashes.to_numpy()[~dup], ids[~dup]))
    drops = pd.DataFrame({"id": ids[dup], "first": [first_of[h] for h in hashes.to_numpy()[dup]]})
    sizes = hashes.value_counts(sort=False)
    sizes = sizes[sizes > 1]
    hist = {int(k): int(v) for k, v in sizes.value_counts().items()}
    return drops, (int(len(sizes)), int(sizes.sum()), int(sizes.max()) if len(sizes) else 0, hist)


def _drop_table(*drops: pd.DataFrame) -> dict[str, str]:
    return {i: f for d in drops for i, f in zip(d["id"], d["first"])}


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
        for key, val, low in (("ngram", ngram, 1), ("num_perm", num_perm, 1), ("bands", bands, 1), ("rows", rows, 1),
                              ("max_bucket", max_bucket, 2)):
            if not isinstance(val, int) or isinstance(val, bool) or val < low:
                raise ValueError(f"fuzzy_dedup.{key}: must be an integer >= {low}, got {val!r}")
        if not 0 < float(threshold) <= 1:
            raise ValueError(f"fuzzy_dedup.threshold: must be a Jaccard in (0, 1], got {threshold!r}")
        if shingle not in SHINGLES:
            raise ValueError(f"fuzzy_dedup.shingle: must be tokens, words or chars, got {shingle!r}")
        if backend not in MINHASH_BACKENDS:
            raise ValueError(f"fuzzy_dedup.backend: must be auto, numpy or torch, got {backend!r}")
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
        """Find near duplicates over the whole corpus: LSH candidate pairs from the signatures
        (``keys``), verified by exact Jaccard of the shingle sets (texts fetched only for candidates);
        a row is dropped when it is near an earlier KEPT row (``keep_first``: no chaining).

        Args:
            parts: the partitions as they are now.
            engine: the engine that runs the collection tasks.
            keys: the signatures of all rows (``keys`` of every partition), or None to compute them.
        """
        c = self.config
        sig_df = keys if keys is not None else engine.collect(self.keys, parts)
        if sig_df.empty:
            self.drop_of = {}
            self._summary = {"candidate_pairs": 0, "verified_pairs": 0, "verified_via_keeper": 0, "clusters": 0,
                             "rows_in_clusters": 0, "largest_cluster": 0, "cluster_sizes": {}}
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
        edges: dict[int, dict[int, float]] = {}
        for i, j in cands:
            jac = jaccard(sh[i], sh[j])
            if jac >= c["threshold"]:
                edges.setdefault(i, {})[j] = jac
                edges.setdefault(j, {})[i] = jac
        keep_of, extra = keep_first(edges, c["threshold"], lambda i, j: jaccard(sh[i], sh[j]))
        self.drop_of = {ids[m]: (ids[k], round(float(jac), 3)) for m, (k, jac) in keep_of.items()}
        sizes: dict[int, int] = {}
        for k, _ in keep_of.values():
            sizes[k] = sizes.get(k, 1) + 1
        hist: dict[int, int] = {}
        for n in sizes.values():
            hist[n] = hist.get(n, 0) + 1
        verified = sum(len(v) for v in edges.values()) // 2
        self._summary = {"candidate_pairs": len(cands), "verified_pairs": verified,
                         "verified_via_keeper": extra, "clusters": len(sizes),
                         "rows_in_clusters": int(sum(sizes.values())),
                         "largest_cluster": max(sizes.values(), default=0),
                         "cluster_sizes": {str(n): hist[n] for n in sorted(hist)}}
        log.info("fuzzy dedup: %d candidate pairs from LSH, %d verified >= %.2f, %d clusters (kept row + "
                 "its near duplicates), sizes %s", len(cands), verified, c["threshold"], len(sizes),
                 self._summary["cluster_sizes"])

    def process(self, df):
        """Drop the partition's rows found in ``fit`` as ``near_duplicate`` (detail: the kept id and the Jaccard)."""
        ids = _as_str(df["id"])
        mask = ids.isin(self.drop_of.keys())
        detail = ids.map(lambda i: f"near {self.drop_of[i][0]} (Jaccard {self.drop_of[i][1]})" if i in self.drop_of else "")
        self.drop(df, mask, "near_duplicate", detail)
        return df

    def summary(self):
        """Candidate and verified pair counts and the cluster counts and size histogram."""
        return dict(self._summary)


def keep_first(edges: dict[int, dict[int, float]], threshold: float,
               similarity=None) -> tuple[dict[int, tuple[int, float]], int]:
    """Greedy clustering around kept rows, without chaining. ``edges[i][j]``: verified Jaccard of
    rows i and j (>= threshold, symmetric); row indices are the input order. Rows are visited in
    order: a row is dropped when it is similar to a row already KEPT, and names the kept row with
    the highest Jaccard; otherwise it is kept (even when it is similar to a dropped row: A~B and
    B~C with A !~ C drop B only). ``similarity(i, j)``, when given, is asked for the kept rows of a
    row's dropped neighbours that are not its own neighbours (an LSH miss must not keep a true
    duplicate of a kept row). Returns ({dropped: (kept, jaccard)}, number of such extra checks)."""
    keep_of: dict[int, tuple[int, float]] = {}
    kept: set[int] = set()
    extra = 0
    for i in sorted(edges):
        nb = edges[i]
        best = max(((jac, -j) for j, jac in nb.items() if j < i and j in kept), default=None)
        if best is None and similarity is not None:
            checked = set(nb)
            for j in sorted(nb):
                k = keep_of.get(j, (None,))[0] if j < i else None
                if k is None or k in checked:
                    continue
                checked.add(k)
                extra += 1
                jac = similarity(i, k)
                if jac >= threshold and (best is None or (jac, -k) > best):
                    best = (jac, -k)
        if best is None:
            kept.add(i)
        else:
            keep_of[i] = (-best[1], best[0])
    return keep_of, extra


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
