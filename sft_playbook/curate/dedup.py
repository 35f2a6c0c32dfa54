"""Step 6 - deduplication: exact (hash of normalised code) and fuzzy (MinHash + LSH, verified); the
last stages that drop rows, so the row a dropped duplicate names is not dropped by a later stage.

Both are global stages: ``fit`` decides which row of each cluster stays, ``process`` then drops
the others per partition. The row kept is always the first one in input order (``_order``), so
reruns and different partitionings agree.

Where the decision is made: on the workers, for both. Their keys grow with the corpus (exact:
~100 B a row; fuzzy: 20 LSH band keys of 44 B, 880 B a row, where the signatures alone would be
640 B), so they stay where the pass before computed them and are shuffled between the workers;
the drop table (O(duplicates)) stays on a worker and goes to the next pass's tasks as an argument
(``state``/``set_state``). The driver gets counts only.

Fuzzy dedup's candidate pairs are not O(near duplicates): on templated code (many rows from one
template, as generated or scraped RTL is) they grow with the rows (review of issue 15: ~20 a
row, 397k pairs at 20k synthetic Verilog rows and 1.94M at 100k, of which 52 / 216 verify), and
joined into connected components they make one giant component (80 % of the rows). So the
pairs are verified where they are found: the LSH buckets are cut into units of about
``partition_rows`` rows, each unit receives the shingle sets of its rows (~4 B a shingle, a few
hundred a row) from the partitions that hold them, and only the VERIFIED pairs, which are
O(near duplicates), are joined into components for ``keep_first``. No task holds more than a few
units' shingle sets, whatever the corpus (``FuzzyDedup.fit`` lists the steps; ``fit_stats`` says
how the work was spread; measured: docs/benchmarks.md, issue 15, templated Verilog).
``decisions(engine)`` brings the fuzzy drop table here for tests and benchmarks.

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

from ..settings import EXACT_NORMALIZE, MINHASH_BACKENDS, SHINGLES, ExactDedupSettings, FuzzyDedupSettings
from .base import Stage, _as_str
from .minhash import MinHasher, jaccard, shingles
from .textutil import collapse_spaces, normalized_code

_X, _F = ExactDedupSettings(), FuzzyDedupSettings()  # the constructors' defaults are the settings'
PAIRS_PER_TASK = 200_000     # fuzzy fit step 4: checked pairs (17 B each) per task that counts them once

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

    def __init__(self, field: str = "code", normalize: str = _X.normalize) -> None:
        super().__init__(field=field, normalize=normalize)
        if normalize not in EXACT_NORMALIZE:
            raise ValueError(f"exact_dedup.normalize: must be one of {', '.join(EXACT_NORMALIZE)}, got {normalize!r}")
        self.drop_of: dict[str, str] = {}
        self._summary: dict = {}
        self._state = None

    def keys(self, df: pd.DataFrame) -> pd.DataFrame:
        """Per row of one partition: id, ``_order`` and the 128-bit BLAKE2b hex digest of the normalised field.

        Returns:
            A frame with one row per row of ``df`` (same index): ``id`` (str), ``_order`` (int64) and
            ``hash`` (32 hex characters).
        """
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
        total = sum(engine.gather(engine.map(len, keys)))          # one count per partition
        buckets = engine.map(partial(_hash_buckets, buckets=n), keys)
        reduced = [engine.submit(_exact_clusters_sized, *engine.map(partial(_item, b), buckets)) for b in range(n)]
        engine.gather_progress(engine.map(partial(_item, 2), reduced), f"exact_dedup fit: hashes grouped into "
                               f"{n} buckets, clusters found", total, "rows")
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
        """The ``id -> first id`` table of rows to drop, as left by ``fit`` (a future on a cluster).

        Returns:
            A future of the ``dict[str, str]`` table with a Dask client; None with ``engine=local``
            (``fit`` has then already put the table in ``drop_of``) or before ``fit``.
        """
        return self._state

    def set_state(self, value) -> None:
        """Receive the ``id -> first id`` table on the worker (before ``process``)."""
        self.drop_of = value

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_state"] = None                   # a future: it travels as the task's argument instead
        return d

    def process(self, df):
        """Drop every row of the partition that is in the table, as ``exact_duplicate`` (detail: the kept id).
        The partition's ids are looked up one by one: the table holds the whole corpus's duplicates,
        so anything that walks it (``isin(table.keys())``, ``map(table)``) costs O(duplicates) per
        partition, O(partitions x duplicates) per pass (measured: docs/benchmarks.md, issue 15).

        Returns:
            ``df`` itself, its duplicate rows marked dropped through ``Stage.drop``.
        """
        first = _lookup(self.drop_of, df["id"])
        mask = first.notna()
        if mask.any():
            self.drop(df, mask, "exact_duplicate", "same code as " + first[mask])
        return df

    def summary(self):
        """Cluster counts: clusters, rows in clusters, the largest cluster and a size histogram.

        Returns:
            A copy of ``{"clusters", "rows_in_clusters", "largest_cluster": int, "cluster_sizes":
            {str(size): clusters}}`` ({} before ``fit``).
        """
        return dict(self._summary)


def _item(i, seq):
    return seq[i]


def _settle(engine, futures) -> None:
    """Wait until ``futures`` (a shuffle's outputs) are computed on a cluster; nothing with
    engine=local. A shuffle's input futures are released only after this: released at once, the
    client may drop them before the scheduler has read the shuffle's graph (seen once in a
    ``curate_data.py`` run: "Error during deserialization of the task graph", then "lost
    dependencies")."""
    if getattr(engine, "client", None) is not None and futures:
        from dask.distributed import wait

        wait(list(futures))


def _load_totals(*sizes: tuple[int, int]) -> tuple[int, int, int]:
    """Step 3's load, reduced on a worker.

    Returns:
        ``(pairs checked in all, most pairs in one task, most rows x units in one task)``.
    """
    return (int(sum(p for p, _ in sizes)), max((p for p, _ in sizes), default=0), max((r for _, r in sizes), default=0))


def _sum_first(*values) -> int:
    return int(sum(v[0] for v in values))


def _tail(seq):
    return tuple(seq[1:])


def _lookup(table: dict, ids: pd.Series) -> pd.Series:
    """``table[id]`` for each id of the partition: one dict lookup per row, whatever the size of ``table``.

    Returns:
        An object Series with the index of ``ids``: the table's value per id, None where absent.
    """
    get = table.get
    return pd.Series([get(i) for i in _as_str(ids).tolist()], index=ids.index, dtype=object)


def _hash_buckets(keys: pd.DataFrame, buckets: int) -> list[pd.DataFrame]:
    """The partition's keys split by hash into ``buckets`` frames (the map side of the shuffle).

    Returns:
        ``buckets`` frames with the columns of ``keys``: frame i holds the rows whose hash's first 32
        bits are i modulo ``buckets`` (``[keys]`` itself when ``buckets`` is 1).
    """
    if buckets == 1:
        return [keys]
    b = keys["hash"].map(lambda h: int(h[:8], 16) % buckets).to_numpy()
    return [keys[b == i] for i in range(buckets)]


def _exact_clusters(*frames: pd.DataFrame) -> tuple[pd.DataFrame, tuple[int, int, int, dict[int, int]]]:
    """One bucket (the reduce side). The first row in input order (``_order``) of a cluster stays.

    Returns:
        ``(drops, stats)``: the rows to drop, a frame of ``id`` and ``first`` (the id of their
        cluster's kept row), and ``(clusters, rows in clusters, largest cluster, {cluster size:
        clusters})`` counted over clusters of two or more rows.
    """
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


def _exact_clusters_sized(*frames: pd.DataFrame):
    """``_exact_clusters`` plus the rows of the bucket (for the progress line).

    Returns:
        ``(drops, stats, rows)``.
    """
    return (*_exact_clusters(*frames), sum(len(f) for f in frames))


def _drop_table(*drops: pd.DataFrame) -> dict[str, str]:
    return {i: f for d in drops for i, f in zip(d["id"], d["first"])}


class FuzzyDedup(Stage):
    """MinHash + LSH near-duplicate removal with exact-Jaccard verification (see minhash.py for
    the defaults and their justification). GPU workers use torch for the signatures."""

    name = "fuzzy_dedup"
    is_global = True
    keys_on_workers = True

    def __init__(self, field: str = "code", shingle: str = _F.shingle, ngram: int = _F.ngram,
                 num_perm: int = _F.num_perm, bands: int = _F.bands, rows: int = _F.rows,
                 threshold: float = _F.threshold, seed: int = 42, normalize_identifiers: bool = _F.normalize_identifiers,
                 backend: str = _F.backend, max_bucket: int = _F.max_bucket) -> None:
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
        self._state = None
        self.fit_stats: dict = {}        # how fit spread the work (not in the report): see fit

    def _shingles(self, text: str) -> np.ndarray:
        c = self.config
        return shingles(text, c["shingle"], c["ngram"], c["normalize_identifiers"])

    def keys(self, df: pd.DataFrame) -> pd.DataFrame:
        """The LSH band keys of every row (``band_keys``): its MinHash signature (on a GPU worker
        through torch) cut into ``bands`` bands of ``rows`` values. The signatures themselves stay
        in this task.

        Returns:
            The ``band_keys`` frame: ``len(df) x bands`` rows of ``band``, ``v0..v<rows-1>`` and ``_order``.
        """
        c = self.config
        backend = c["backend"] if c["backend"] != "auto" else ("torch" if _cuda_here() else "numpy")
        hasher = MinHasher(c["num_perm"], c["seed"], backend)
        sigs = hasher.signatures([self._shingles(t) for t in df[c["field"]]])
        return band_keys(sigs, df["_order"].to_numpy(dtype="int64"), c["bands"], c["rows"])

    def fit(self, parts, engine, keys=None) -> None:
        """Decide on the workers; the driver gets counts only (module docstring of this file).
        No task holds more than a bounded number of rows' shingle sets (about ``unit_rows`` =
        max(``engine.partition_rows``, ``max_bucket`` + 1) per verification unit), whatever the
        corpus and however its candidates connect.

        1. ``keys`` (one band-key frame per partition, left on the workers by the pass before;
           computed here when None) are shuffled by band key (``engine.shuffle``: dask's own
           shuffle), so every LSH bucket is whole in one frame. Each frame cuts its buckets of two
           or more rows into verification units of about ``unit_rows`` rows (``bucket_units``;
           a bucket above ``max_bucket`` rows links every member to its first only, as
           ``lsh_candidates`` does, and is cut into several units that each hold its first row)
           and sends each partition the list of its rows that units need.
        2. Each partition computes the shingle sets of the rows asked for (once per row) and
           sends them to their units: a second shuffle, on the unit (``unit_rows_of``).
        3. Each unit frame forms its candidate pairs and checks them with the exact Jaccard of the
           shingle sets (``verify_units``): pairs are verified where they were found. A pair found
           in several bands is checked in each.
           Units are hashed to about ``rows x units / unit_rows`` tasks, so a task holds a few
           units, by hash: no hard bound, but measured at most ~4 x ``unit_rows`` rows x units
           (bench/curate_fuzzy_templated.py at 20k and 100k rows; tests/test_curate_fuzzy_spread.py).
        4. The checked pairs are shuffled by pair (a third shuffle, 17 bytes a pair, into tasks
           of about ``PAIRS_PER_TASK`` pairs), which counts the unique candidate pairs and keeps
           the unique VERIFIED ones (``_unique_pairs_sized``).
        5. One task joins the verified pairs (O(near duplicates)) into connected components
           (``candidate_graph``), spread over ``2 x workers`` groups; each partition sends the
           shingle sets of its rows in a component to the component's group (``candidate_rows``)
           and each group runs ``keep_first`` on its components (``verify_group``): the greedy
           decision of a row only looks at verified neighbours and their kept rows, all in its
           own component, so per component it is the decision over the whole graph.
        6. One task joins the groups' drops into the table ``id -> (kept id, Jaccard)``
           (``state``), which goes to the next pass's tasks without passing through the driver.

        ``fit_stats`` then holds how the work was spread (largest unit frame's rows and pairs).
        """
        c = self.config
        if keys is None:
            keys = engine.map(self.keys, parts)
        elif isinstance(keys, pd.DataFrame):
            keys = [keys]
        keys = list(keys)
        parts = list(parts)
        self._state, self.drop_of = None, {}
        if not keys:
            self.drop_of = {}
            self._summary = _fuzzy_summary(0, [])
            self.fit_stats = {}
            return
        n_buckets = max(1, min(len(keys), max(2 * max(1, engine.n_workers), len(keys) // 4)))
        bands = c["bands"]
        unit_rows = max(int(getattr(engine, "partition_rows", 2000)), c["max_bucket"] + 1)
        what = "fuzzy_dedup fit"
        spans = engine.gather(engine.map(_order_span, parts))   # (rows, lowest, highest _order) per partition
        rows = sum(s[0] for s in spans)
        owners, starts = _owners(spans)
        buckets = engine.shuffle(keys, ["band", *(f"v{j}" for j in range(c["rows"]))], n_buckets,
                                 band_keys(np.zeros((0, c["num_perm"]), np.uint32), np.zeros(0, np.int64), c["bands"], c["rows"]))
        units = engine.map(partial(_bucket_units_routed, rows=c["rows"], max_bucket=c["max_bucket"],
                                   unit_rows=unit_rows, starts=starts), buckets, list(range(len(buckets))))
        _settle(engine, buckets)
        del keys, buckets
        unit_stats = engine.gather_progress(engine.map(_tail, units), f"{what} 1/5: MinHash signatures shuffled "
                                            f"by LSH band ({bands} bands, {n_buckets} buckets), cut into "
                                            "verification units", rows, "signatures", size=lambda v: v[1] / bands)
        unit_stats = [v[0] for v in unit_stats]
        members = sum(s[0] for s in unit_stats)
        n_units = sum(s[1] for s in unit_stats)
        n_verify = max(1, -(-members // unit_rows))          # about one unit a task (units are hashed to tasks)
        answered = [engine.submit(partial(unit_rows_of, stage=self), parts[p],
                                  *engine.map(partial(_request_of, k if starts is not None else 0), units))
                    for k, p in enumerate(owners)]
        del units
        engine.gather_progress(engine.map(partial(_item, 1), answered), f"{what} 2/5: shingle sets of the "
                               f"{members} rows x units asked for sent to their units", rows, "rows")
        unit_in = engine.map(partial(_item, 0), answered)
        unit_frames = engine.shuffle(unit_in, ["unit"], n_verify, _UNIT_META)
        checked = engine.map(partial(verify_units_sized, threshold=float(c["threshold"])), unit_frames)
        _settle(engine, unit_frames)
        del answered, unit_in, unit_frames
        sizes = engine.map(partial(_item, 1), checked)               # (pairs checked, rows x units) per task
        engine.gather_progress(engine.map(partial(_item, 1), sizes), f"{what} 3/5: candidate pairs verified "
                               f"(exact Jaccard) in {n_units} units ({n_verify} tasks)", members, "rows x units")
        found, most_pairs, most_rows = engine.gather([engine.submit(_load_totals, *sizes)])[0]
        del sizes
        # 17 bytes a checked pair: frames of up to ~PAIRS_PER_TASK pairs (a constant, whatever the corpus)
        n_dedup = max(2 * max(1, engine.n_workers), -(-found // PAIRS_PER_TASK))
        pair_in = engine.map(partial(_item, 0), checked)
        pair_frames = engine.shuffle(pair_in, ["lo", "hi"], n_dedup, _PAIR_META)
        uniq = engine.map(_unique_pairs_sized, pair_frames)
        _settle(engine, pair_frames)
        del checked, pair_in, pair_frames
        n_cands = engine.gather([engine.submit(_sum_first, *engine.map(partial(_item, 1), uniq))])[0]
        log.info("%s 4/5: %d candidate pairs (%d found, with repeats across bands)", what, n_cands, found)
        groups = 2 * max(1, engine.n_workers)
        graph = engine.submit(partial(candidate_graph, groups=groups), *engine.map(partial(_item, 0), uniq))
        del uniq
        nodes = engine.submit(_item, 1, graph)
        cands = engine.map(partial(_candidate_rows_sized, stage=self, groups=groups), parts, [nodes] * len(parts))
        results = [engine.submit(partial(_verify_group_sized, threshold=float(c["threshold"])),
                                 engine.submit(_pairs_of, g, graph), *engine.map(partial(_group_of, g), cands)) for g in range(groups)]
        engine.gather_progress(engine.map(partial(_item, 1), cands), f"{what} 5/5: rows with a verified near "
                               f"duplicate sent to their component's group, near duplicates chosen in {groups} "
                               "groups", rows, "rows")
        del cands, nodes
        stats = engine.gather(engine.map(_tail, results))
        group_pairs = [v[1] for v in stats]
        stats = [v[0] for v in stats]
        self._state = engine.submit(_fuzzy_drop_table, *engine.map(partial(_item, 0), results))
        if engine.client is None:
            self.drop_of, self._state = self._state, None
        self._summary = _fuzzy_summary(n_cands, stats)
        self.fit_stats = {"routing": "by _order range" if starts is not None else "to every partition",
                          "unit_rows": unit_rows, "units": n_units, "unit_tasks": n_verify, "rows": rows,
                          "pairs_checked": found, "largest_task_rows": most_rows, "largest_task_pairs": most_pairs,
                          "largest_group_pairs": max(group_pairs, default=0)}
        log.info("fuzzy dedup: %d candidate pairs from LSH, %d verified >= %.2f, %d clusters (kept row + "
                 "its near duplicates), sizes %s; largest verification task %d rows x units, %d pairs (rows routed %s)",
                 n_cands, self._summary["verified_pairs"], c["threshold"], self._summary["clusters"],
                 self._summary["cluster_sizes"], self.fit_stats["largest_task_rows"], self.fit_stats["largest_task_pairs"],
                 self.fit_stats["routing"])

    def state(self):
        """The decision where it lives after ``fit``: a future of the drop table on a worker (dask),
        or None with ``engine=local`` (then ``drop_of`` is already here).

        Returns:
            The future of the ``dict[str, tuple[str, float]]`` drop table, or None.
        """
        return self._state

    def set_state(self, value) -> None:
        """Install the drop table (``id -> (kept id, Jaccard)``) in the copy of the stage a task runs."""
        self.drop_of = value

    def decisions(self, engine) -> dict[str, tuple[str, float]]:
        """The drop table ``id -> (kept id, Jaccard)`` brought to this process (tests and
        benchmarks; the pipeline leaves it on the workers). O(near duplicates).

        Returns:
            A new dict: dropped id -> (kept id, Jaccard rounded to 3 places).
        """
        return dict(self.drop_of) if self._state is None else engine.gather([self._state])[0]

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_state"] = None                   # a future: it travels as the task's argument instead
        return d

    def process(self, df):
        """Drop the partition's rows found in ``fit`` as ``near_duplicate`` (detail: the kept id and
        the Jaccard); one lookup per row, as ``ExactDedup.process``.

        Returns:
            ``df`` itself, its near-duplicate rows marked dropped through ``Stage.drop``.
        """
        hit = _lookup(self.drop_of, df["id"])
        mask = hit.notna()
        if mask.any():
            self.drop(df, mask, "near_duplicate", hit[mask].map(lambda kj: f"near {kj[0]} (Jaccard {kj[1]})"))
        return df

    def summary(self):
        """Candidate and verified pair counts and the cluster counts and size histogram.

        Returns:
            A copy of the summary (``candidate_pairs``, ``verified_pairs``, ``verified_via_keeper``,
            ``clusters``, ``rows_in_clusters``, ``largest_cluster``: int; ``cluster_sizes``: {str(size):
            clusters}); {} before ``fit``.
        """
        return dict(self._summary)


def band_keys(sigs: np.ndarray, order: np.ndarray, bands: int, rows: int) -> pd.DataFrame:
    """LSH band keys of documents' MinHash signatures. ``sigs``: ``[n, num_perm]`` uint32;
    ``order``: ``[n]`` the documents' ``_order``.

    Returns:
        A frame of ``n x bands`` rows, one per (document, band), band-major: ``band`` (int32), the
        band's ``rows`` signature values ``v0..v<rows-1>`` (uint32, the exact key: no hash, so no
        collision can join two buckets) and the document's ``_order`` (int64). Size: 4 + 4 x rows +
        8 bytes per band, 20 x 44 = 880 bytes a document with the defaults.
    """
    n = sigs.shape[0]
    cols: dict[str, np.ndarray] = {"band": np.repeat(np.arange(bands, dtype=np.int32), n)}
    for j in range(rows):
        cols[f"v{j}"] = np.ascontiguousarray(sigs[:, j:bands * rows:rows].T).reshape(-1).astype(np.uint32, copy=False)
    cols["_order"] = np.tile(np.asarray(order, dtype=np.int64), bands)
    return pd.DataFrame(cols)


def band_pairs(keys: pd.DataFrame, rows: int, max_bucket: int) -> np.ndarray:
    """The candidate pairs of the LSH buckets in ``keys`` (band-key rows, each bucket whole).
    A bucket of more than ``max_bucket`` documents links every member to its first (lowest
    ``_order``) member only, as ``minhash.lsh_candidates`` does; smaller buckets give every pair.

    Returns:
        ``[k, 2]`` int64 array of ``_order`` pairs (lo < hi), unique, sorted; ``[0, 2]`` when none.
    """
    if len(keys) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    order, starts, sizes = _bucket_starts(keys, rows)
    out = []
    for s in np.unique(sizes[sizes > 1]).tolist():
        st = starts[sizes == s]
        if s > max_bucket:
            hi = st[:, None] + np.arange(1, s)
            lo = np.broadcast_to(st[:, None], hi.shape)
        else:
            iu, ju = np.triu_indices(s, 1)
            lo, hi = st[:, None] + iu, st[:, None] + ju
        out.append(np.stack([order[lo.ravel()], order[hi.ravel()]], axis=1))
    if not out:
        return np.zeros((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(out), axis=0)


def _bucket_starts(keys: pd.DataFrame, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The LSH buckets of band-key rows (the sort of ``band_pairs``).

    Returns:
        ``(order, starts, sizes)``: ``order`` the rows' ``_order`` (int64) sorted by band, band
        values, then ``_order``; bucket i is ``order[starts[i]:starts[i] + sizes[i]]``.
    """
    vals = [keys[f"v{j}"].to_numpy() for j in range(rows)]
    band = keys["band"].to_numpy()
    order = keys["_order"].to_numpy()
    idx = np.lexsort([order, *reversed(vals), band])          # by band, its values, then _order
    band, order, vals = band[idx], order[idx], [v[idx] for v in vals]
    new = np.empty(len(idx), dtype=bool)
    if len(idx):
        new[0] = True
    new[1:] = band[1:] != band[:-1]
    for v in vals:
        new[1:] |= v[1:] != v[:-1]
    starts = np.flatnonzero(new)
    return order.astype(np.int64, copy=False), starts, np.diff(np.append(starts, len(idx)))


def bucket_units(keys: pd.DataFrame, rows: int, max_bucket: int, unit_rows: int) -> pd.DataFrame:
    """The LSH buckets of two or more rows in ``keys`` (band-key rows, each bucket whole) as
    verification pieces packed into units of about ``unit_rows`` rows. A bucket of up to
    ``max_bucket`` rows is one piece (all its pairs are candidates); a larger one links every
    member to its first (lowest ``_order``) member only, as ``lsh_candidates`` does, and is cut
    into pieces of ``unit_rows - 1`` members plus that first row. Pieces are packed in order, a
    new unit starting at every ``unit_rows`` rows, so a unit holds fewer than ``2 x unit_rows``
    rows whatever the bucket sizes.

    Returns:
        A frame of one row per (row, piece): ``_order``, ``piece`` (local piece number), ``first``
        (the piece's first ``_order`` for a cut large bucket, -1 for all pairs) and ``unit`` (local
        unit number), all int64; empty when no bucket has two rows.
    """
    cols = ("_order", "piece", "first", "unit")
    if len(keys) < 2:
        return pd.DataFrame({k: np.zeros(0, dtype=np.int64) for k in cols})
    order, starts, sizes = _bucket_starts(keys, rows)
    multi = sizes > 1
    st, sz = starts[multi], sizes[multi]
    small = sz <= max_bucket
    ss, zs = st[small], sz[small]
    rep = np.repeat(np.arange(len(ss)), zs)
    pos = [ss[rep] + (np.arange(rep.size) - np.repeat(np.cumsum(zs) - zs, zs))]
    piece, first, piece_sizes = [rep], [np.full(rep.size, -1, dtype=np.int64)], [zs]
    k = len(ss)
    m = max(1, unit_rows - 1)
    for s0, n in zip(st[~small].tolist(), sz[~small].tolist()):
        for c in range(s0 + 1, s0 + n, m):
            members = np.concatenate([[s0], np.arange(c, min(c + m, s0 + n))])
            pos.append(members)
            piece.append(np.full(members.size, k, dtype=np.int64))
            first.append(np.full(members.size, order[s0], dtype=np.int64))
            piece_sizes.append(np.array([members.size]))
            k += 1
    pos_a, piece_a = np.concatenate(pos).astype(np.int64), np.concatenate(piece).astype(np.int64)
    psz = np.concatenate(piece_sizes).astype(np.int64)
    unit_of_piece = (np.cumsum(psz) - psz) // max(1, unit_rows)
    return pd.DataFrame({"_order": order[pos_a], "piece": piece_a, "first": np.concatenate(first),
                         "unit": unit_of_piece[piece_a] if len(piece_a) else piece_a})


def _bucket_units_routed(keys: pd.DataFrame, b: int, rows: int, max_bucket: int, unit_rows: int,
                         starts: np.ndarray | None) -> tuple[list[pd.DataFrame], tuple[int, int], int]:
    """``bucket_units`` of bucket frame ``b``, its piece and unit numbers made global (``b << 32``
    plus the local number), split by the partition that holds each row (``starts``: the lowest
    ``_order`` of each non-empty partition, ascending, their ranges apart; None: not split).

    Returns:
        ``(requests, (rows x units, units), band keys)``: ``requests[k]`` the ``bucket_units`` rows
        of partition k (``[all rows]`` when ``starts`` is None).
    """
    u = bucket_units(keys, rows, max_bucket, unit_rows)
    u["piece"] += np.int64(b) << 32
    u["unit"] += np.int64(b) << 32
    if starts is None:
        return [u], (len(u), int(u["unit"].nunique())), len(keys)
    where = np.searchsorted(starts, u["_order"].to_numpy(), side="right") - 1
    return ([u[where == k] for k in range(len(starts))], (len(u), int(u["unit"].nunique())), len(keys))


def _request_of(k: int, routed) -> pd.DataFrame:
    return routed[0][k]


def _order_span(df: pd.DataFrame) -> tuple[int, int, int]:
    """The partition's size and ``_order`` range (routing of ``fit``'s step 1).

    Returns:
        ``(rows, lowest _order, highest _order)``; ``(0, 0, -1)`` when empty.
    """
    if len(df) == 0:
        return (0, 0, -1)
    o = df["_order"]
    return (len(df), int(o.min()), int(o.max()))


def _owners(spans: list[tuple[int, int, int]]) -> tuple[list[int], np.ndarray | None]:
    """The non-empty partitions sorted by their lowest ``_order``, and those lowest values when
    the partitions' ``_order`` ranges do not overlap (the pipeline's partitions: rows are read in
    order and never move between partitions), so that a row is routed to its partition by range.

    Returns:
        ``(partition indices, lowest _order of each)``, or ``(partition indices, None)`` when two
        ranges overlap (then every request goes to every partition: correct, but each partition
        task then sees all the requests).
    """
    live = sorted((lo, hi, p) for p, (n, lo, hi) in enumerate(spans) if n)
    owners = [p for _, _, p in live]
    if any(lo <= hi for (_, hi, _), (lo, _, _) in zip(live, live[1:])):
        return owners, None
    return owners, np.array([lo for lo, _, _ in live], dtype=np.int64)


_UNIT_META = pd.DataFrame({"_order": np.zeros(0, np.int64), "piece": np.zeros(0, np.int64),
                           "first": np.zeros(0, np.int64), "unit": np.zeros(0, np.int64),
                           "id": pd.Series([], dtype=object), "sh": pd.Series([], dtype=object)})
_PAIR_META = pd.DataFrame({"lo": np.zeros(0, np.int64), "hi": np.zeros(0, np.int64), "ok": np.zeros(0, bool)})


def unit_rows_of(df: pd.DataFrame, *requests: pd.DataFrame, stage: FuzzyDedup) -> tuple[pd.DataFrame, int]:
    """One partition answers the units: the shingle sets (uint32) of its rows asked for in
    ``requests`` (``bucket_units`` rows), each computed once.

    Returns:
        ``(frame, rows of the partition)``: the requests with ``id`` (str) and ``sh`` (object: the
        bytes of a sorted uint32 array per row) added (columns of ``_UNIT_META``).
    """
    req = pd.concat(requests, ignore_index=True) if requests else _UNIT_META[["_order", "piece", "first", "unit"]]
    req = req[req["_order"].isin(df["_order"])]          # all of it but with overlapping partitions
    if req.empty:
        return _UNIT_META.copy(), len(df)
    want = pd.unique(req["_order"].to_numpy())
    sub = df[df["_order"].isin(want)]
    order = sub["_order"].to_numpy(dtype="int64").tolist()
    # bytes, not arrays: a column of bytes objects pickles ~20x faster through the shuffle
    sh = dict(zip(order, (stage._shingles(t).astype(np.uint32).tobytes() for t in sub[stage.config["field"]])))
    ids = dict(zip(order, _as_str(sub["id"]).tolist()))
    o = req["_order"].tolist()
    out = req.reset_index(drop=True)
    out["id"] = pd.Series([ids[i] for i in o], dtype=object)
    out["sh"] = pd.Series([sh[i] for i in o], dtype=object)
    return out, len(df)


def verify_units(frame: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """The candidate pairs of the pieces in ``frame`` (``unit_rows_of`` rows of whole units),
    each checked with the exact Jaccard of its shingle sets. A piece with ``first`` -1 gives every
    pair of its rows, a piece of a cut large bucket the pairs (first, member).

    Returns:
        A frame of ``lo``, ``hi`` (int64 ``_order`` values, lo < hi) and ``ok`` (Jaccard >=
        ``threshold``), one row per pair and piece (a pair found in several pieces repeats).
    """
    if frame.empty:
        return _PAIR_META.copy()
    f = frame.sort_values(["piece", "_order"], kind="stable")
    piece = f["piece"].to_numpy()
    order = f["_order"].to_numpy(dtype=np.int64)
    first = f["first"].to_numpy(dtype=np.int64)
    sh = {o: np.frombuffer(b, dtype=np.uint32) for o, b in zip(order.tolist(), f["sh"])}
    new = np.ones(len(f), dtype=bool)
    new[1:] = piece[1:] != piece[:-1]
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, len(f)))
    out = []
    allp = first[starts] < 0
    for s in np.unique(sizes[allp & (sizes > 1)]).tolist():
        st = starts[allp & (sizes == s)]
        iu, ju = np.triu_indices(s, 1)
        lo, hi = st[:, None] + iu, st[:, None] + ju
        out.append(np.stack([order[lo.ravel()], order[hi.ravel()]], axis=1))
    star = (first >= 0) & (order != first)
    if star.any():
        out.append(np.stack([first[star], order[star]], axis=1))
    pairs = np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)
    ok = np.fromiter((jaccard(sh[i], sh[j]) >= threshold for i, j in pairs.tolist()), dtype=bool, count=len(pairs))
    return pd.DataFrame({"lo": pairs[:, 0], "hi": pairs[:, 1], "ok": ok})


def verify_units_sized(frame: pd.DataFrame, threshold: float) -> tuple[pd.DataFrame, tuple[int, int]]:
    """``verify_units`` plus its size (the progress line and ``fit_stats``).

    Returns:
        ``(pairs frame, (pairs checked, rows x pieces in the frame))``.
    """
    out = verify_units(frame, threshold)
    return out, (len(out), len(frame))


def _unique_pairs_sized(frame: pd.DataFrame) -> tuple[np.ndarray, tuple[int, int]]:
    """One frame of checked pairs, each pair whole in it (shuffled by pair): the unique pairs.

    Returns:
        ``(verified, (unique candidate pairs, pairs in))``: ``verified`` the ``[k, 2]`` int64 array of
        the unique pairs with ``ok``.
    """
    u = frame.drop_duplicates(["lo", "hi"])
    v = u[u["ok"].astype(bool)]
    return (np.stack([v["lo"].to_numpy(np.int64), v["hi"].to_numpy(np.int64)], axis=1).reshape(-1, 2),
            (len(u), len(frame)))


def candidate_graph(*pairs: np.ndarray, groups: int):
    """The candidate pairs of every bucket joined (a pair found in several bands counts once) and
    cut into connected components, spread over ``groups`` groups by their first ``_order``.
    Components by label propagation with pointer jumping (vectorised; each label ends as the
    component's lowest node).

    Returns:
        ``(group_pairs, (nodes, group), n_pairs)``: ``groups`` int64 arrays ``[k_g, 2]`` of the
        pairs of group g; ``nodes`` ``[m]`` the sorted ``_order`` values in any pair and ``group``
        ``[m]`` int64 the group of each; ``n_pairs`` the number of unique candidate pairs.
    """
    allp = np.unique(np.concatenate(pairs), axis=0) if pairs and any(len(p) for p in pairs) \
        else np.zeros((0, 2), dtype=np.int64)
    nodes, inv = np.unique(allp.reshape(-1), return_inverse=True)
    a, b = inv[0::2], inv[1::2]
    label = np.arange(len(nodes))
    while len(a):
        m = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, m)
        np.minimum.at(new, b, m)
        new = new[new]
        if np.array_equal(new, label):
            break
        label = new
    group = (nodes[label] % groups).astype(np.int64) if len(nodes) else np.zeros(0, dtype=np.int64)
    pair_group = group[a]
    return [allp[pair_group == g] for g in range(groups)], (nodes, group), int(len(allp))


def _band_pairs_sized(keys: pd.DataFrame, rows: int, max_bucket: int) -> tuple[np.ndarray, int]:
    """``band_pairs`` plus the band keys of the bucket (for the progress line).

    Returns:
        ``(pairs, band keys in the bucket)``.
    """
    return band_pairs(keys, rows, max_bucket), len(keys)


def _candidate_rows_sized(df: pd.DataFrame, nodes, stage: FuzzyDedup, groups: int) -> tuple[list[pd.DataFrame], int]:
    """``candidate_rows`` plus the partition's row count (for the progress line).

    Returns:
        ``(groups frames of candidate_rows, rows of the partition)``.
    """
    return candidate_rows(df, nodes, stage, groups), len(df)


def _group_of(g: int, cands: tuple[list[pd.DataFrame], int]) -> pd.DataFrame:
    return cands[0][g]


def _verify_group_sized(pairs: np.ndarray, *rows: pd.DataFrame, threshold: float):
    """``verify_group`` plus the group's candidate pairs (for the progress line).

    Returns:
        ``(drops, stats, candidate pairs)``.
    """
    return (*verify_group(pairs, *rows, threshold=threshold), len(pairs))


def _pairs_of(g: int, graph):
    return graph[0][g]


def candidate_rows(df: pd.DataFrame, nodes, stage: FuzzyDedup, groups: int) -> list[pd.DataFrame]:
    """The rows of this partition that are in the candidate graph: ``_order``, ``id`` and their
    shingle set (uint64 array), one frame per component group.

    Returns:
        ``groups`` frames of ``_order`` (int64), ``id`` (str) and ``sh`` (object: a uint64 array of
        shingle hashes per row); frame g holds the rows whose component is in group g.
    """
    order_nodes, node_group = nodes
    order = df["_order"].to_numpy(dtype="int64")
    if len(order_nodes) == 0 or len(order) == 0:
        hit = np.zeros(len(order), dtype=bool)
        pos = np.zeros(len(order), dtype=np.int64)
    else:
        pos = np.searchsorted(order_nodes, order).clip(max=len(order_nodes) - 1)
        hit = order_nodes[pos] == order
    sub = df[hit]
    g = node_group[pos[hit]]
    out = pd.DataFrame({"_order": order[hit], "id": _as_str(sub["id"]).tolist(),
                        "sh": pd.Series([stage._shingles(t) for t in sub[stage.config["field"]]], dtype=object)})
    return [out[g == k] for k in range(groups)]


def verify_group(pairs: np.ndarray, *rows: pd.DataFrame, threshold: float):
    """One group of components: the candidate pairs checked with the exact Jaccard of their
    shingle sets, then ``keep_first`` in input order.

    Returns:
        ``(drops, stats)``: a frame of ``id``, ``kept`` (kept id) and ``jaccard`` (rounded to 3
        places), and ``(verified pairs, keeper checks, {cluster size: clusters})``.
    """
    got = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["_order", "id", "sh"])
    sh = dict(zip(got["_order"].tolist(), got["sh"]))
    ids = dict(zip(got["_order"].tolist(), got["id"]))
    edges: dict[int, dict[int, float]] = {}
    for i, j in pairs.tolist():
        jac = jaccard(sh[i], sh[j])
        if jac >= threshold:
            edges.setdefault(i, {})[j] = jac
            edges.setdefault(j, {})[i] = jac
    keep_of, extra = keep_first(edges, threshold, lambda i, j: jaccard(sh[i], sh[j]))
    drops = pd.DataFrame({"id": [ids[m] for m in keep_of], "kept": [ids[k] for k, _ in keep_of.values()],
                          "jaccard": [round(float(jac), 3) for _, jac in keep_of.values()]})
    sizes: dict[int, int] = {}
    for k, _ in keep_of.values():
        sizes[k] = sizes.get(k, 1) + 1
    hist: dict[int, int] = {}
    for n in sizes.values():
        hist[n] = hist.get(n, 0) + 1
    return drops, (sum(len(v) for v in edges.values()) // 2, extra, hist)


def _fuzzy_drop_table(*drops: pd.DataFrame) -> dict[str, tuple[str, float]]:
    return {i: (k, float(j)) for d in drops for i, k, j in zip(d["id"].tolist(), d["kept"].tolist(), d["jaccard"].tolist())}


def _fuzzy_summary(candidates: int, stats) -> dict:
    hist: dict[int, int] = {}
    for st in stats:
        for k, v in st[2].items():
            hist[k] = hist.get(k, 0) + v
    return {"candidate_pairs": int(candidates), "verified_pairs": int(sum(st[0] for st in stats)),
            "verified_via_keeper": int(sum(st[1] for st in stats)), "clusters": int(sum(hist.values())),
            "rows_in_clusters": int(sum(k * v for k, v in hist.items())), "largest_cluster": max(hist, default=0),
            "cluster_sizes": {str(n): hist[n] for n in sorted(hist)}}


def keep_first(edges: dict[int, dict[int, float]], threshold: float,
               similarity=None) -> tuple[dict[int, tuple[int, float]], int]:
    """Greedy clustering around kept rows, without chaining. ``edges[i][j]``: verified Jaccard of
    rows i and j (>= threshold, symmetric); row indices are the input order. Rows are visited in
    order: a row is dropped when it is similar to a row already KEPT, and names the kept row with
    the highest Jaccard; otherwise it is kept (even when it is similar to a dropped row: A~B and
    B~C with A !~ C drop B only). ``similarity(i, j)``, when given, is asked for the kept rows of a
    row's dropped neighbours that are not its own neighbours (an LSH miss must not keep a true
    duplicate of a kept row).

    Returns:
        ``(keep_of, extra)``: dropped row -> (kept row, Jaccard), and the number of extra
        ``similarity`` checks made.
    """
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
