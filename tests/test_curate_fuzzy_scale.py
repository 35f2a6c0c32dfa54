"""Fuzzy dedup decided on the workers (issue 15): the LSH band keys are shuffled between workers
(dask's own shuffle), candidate pairs are verified per connected component, and the driver gets
counts only. The reference is the in-driver implementation it replaces (every signature gathered,
``lsh_candidates`` over all of them, verification and ``keep_first`` in one process): the drops,
the kept row each names, the Jaccard it cites and the summary must be the same on awkward inputs.
"""
from __future__ import annotations

import pickle
import random

import numpy as np
import pandas as pd
import pytest

from sft_playbook.curate.base import DETAIL, REASON
from sft_playbook.curate.dedup import FuzzyDedup, band_keys, band_pairs, candidate_graph, keep_first
from sft_playbook.curate.engine import Engine
from sft_playbook.curate.minhash import MinHasher, jaccard, lsh_candidates

from test_curate_dedup import chain, edit, module, table


def reference(stage: FuzzyDedup, df: pd.DataFrame):
    """The former ``FuzzyDedup.fit``: everything in one process. Returns (drop_of, summary)."""
    c = stage.config
    df = df.sort_values("_order", kind="stable").reset_index(drop=True)
    sh = [stage._shingles(t) for t in df[c["field"]]]
    sigs = MinHasher(c["num_perm"], c["seed"], "numpy").signatures(sh)
    cands = sorted(lsh_candidates(sigs, c["bands"], c["rows"], c["max_bucket"]))
    edges: dict[int, dict[int, float]] = {}
    for i, j in cands:
        jac = jaccard(sh[i], sh[j])
        if jac >= c["threshold"]:
            edges.setdefault(i, {})[j] = jac
            edges.setdefault(j, {})[i] = jac
    keep_of, extra = keep_first(edges, c["threshold"], lambda i, j: jaccard(sh[i], sh[j]))
    ids = df["id"].tolist()
    drop_of = {ids[m]: (ids[k], round(float(jac), 3)) for m, (k, jac) in keep_of.items()}
    sizes: dict[int, int] = {}
    for k, _ in keep_of.values():
        sizes[k] = sizes.get(k, 1) + 1
    hist: dict[int, int] = {}
    for n in sizes.values():
        hist[n] = hist.get(n, 0) + 1
    summary = {"candidate_pairs": len(cands), "verified_pairs": sum(len(v) for v in edges.values()) // 2,
               "verified_via_keeper": extra, "clusters": len(sizes), "rows_in_clusters": int(sum(sizes.values())),
               "largest_cluster": max(sizes.values(), default=0),
               "cluster_sizes": {str(n): hist[n] for n in sorted(hist)}}
    return drop_of, summary


def awkward_corpus(seed: int = 0) -> pd.DataFrame:
    """Chains A~B~C (A !~ C), a star of 90 near-copies (buckets above max_bucket), empty, blank and
    one-token texts, exact copies, unrelated modules; shuffled, so duplicates sit in other
    partitions than their first copy; ``_order`` not the row position."""
    rng = random.Random(seed)
    codes: list[str] = []
    for k in range(3):                                            # three chains of 5 versions
        codes += [module(v, f"m{k}") for v in chain(seed + k, 4)]
    centre = table(seed + 50)
    codes += [module(centre, "star")]
    codes += [module(edit(centre, [i % 60], 1 + i // 60), "star") for i in range(90)]   # each ~0.97 to the centre
    codes += ["", "", "   ", "\n", "x", "module e; endmodule", "module e; endmodule", "assign"]
    codes += [module(table(seed + 200 + i), f"u{i}") for i in range(25)]               # unrelated
    codes += codes[:6]                                            # exact copies of chain rows
    order = list(range(len(codes)))
    rng.shuffle(order)
    ids = [f"r{i:03d}" for i in range(len(codes))]
    df = pd.DataFrame({"id": ids, "_order": [10 * o + 7 for o in order], "code": codes})
    return df.sample(frac=1, random_state=seed).reset_index(drop=True)


def decide(stage: FuzzyDedup, df: pd.DataFrame, engine: str, partition_rows: int = 13, gathered=None):
    with Engine(engine=engine, n_workers=2, partition_rows=partition_rows, memory_limit="1GiB") as eng:
        if gathered is not None:
            _record_gathers(eng, gathered)
        parts = eng.partitions(df)
        keys = eng.map(stage.keys, parts) if stage.keys_on_workers else None   # as run_stages hands them
        stage.fit(parts, eng, keys)
        if gathered is not None:
            gathered.append("end of fit")
        state = stage.state()
        out = pd.concat(eng.gather(eng.map(_apply, parts, [stage] * len(parts), [state] * len(parts))))
        table_ = stage.decisions(eng)
    return table_, out.set_index("id")


def _apply(part, stage, state):
    if state is not None:
        stage.set_state(state)
    return stage(part)


def _record_gathers(eng: Engine, log: list) -> None:
    """Every value the driver gathers during the test, as (pickled bytes, value)."""
    plain, each = eng.gather, eng.gather_each

    def gather(parts):
        values = plain(parts)
        log.extend((len(pickle.dumps(v)), v) for v in values)
        return values

    def gather_each(parts, done):
        values = each(parts, done)
        log.extend((len(pickle.dumps(v)), v) for v in values)
        return values
    eng.gather, eng.gather_each = gather, gather_each


SETTINGS = [{},                                                           # the defaults (20 x 8)
            {"num_perm": 30, "bands": 3, "rows": 10, "max_bucket": 4},       # LSH misses: keeper checks
            {"threshold": 0.7, "num_perm": 20, "bands": 2, "rows": 10}]


@pytest.mark.parametrize("engine,settings", [("local", s) for s in SETTINGS] + [("dask", SETTINGS[0]), ("dask", SETTINGS[2])])
def test_decisions_equal_the_in_driver_implementation_on_awkward_inputs(engine, settings):
    df = awkward_corpus()
    stage = FuzzyDedup("code", seed=42, **settings)
    want, want_summary = reference(FuzzyDedup("code", seed=42, **settings), df)
    got, out = decide(stage, df, engine)
    assert got == want and all(type(k) is str and type(j) is float for k, j in got.values())
    assert stage.summary() == want_summary
    # the shapes the corpus is made of are all there: a cluster above max_bucket, inexact copies,
    # rows dropped through the keeper of a neighbour (an LSH miss) with the low-recall settings
    assert want_summary["largest_cluster"] >= 87 and want_summary["candidate_pairs"] > want_summary["verified_pairs"] - 1
    assert len(want) > 95 and any(v[1] < 1.0 for v in want.values())
    assert (want_summary["verified_via_keeper"] > 0) == bool(settings)
    dropped = out[out[REASON] == "near_duplicate"]
    assert set(dropped.index) == set(want)
    for rid, (kept, jac) in want.items():
        assert out.at[rid, DETAIL] == f"near {kept} (Jaccard {jac})" and out.at[kept, REASON] == ""


def test_chain_a_b_c_keeps_a_and_c_whatever_the_partitioning():
    a, b, c = (module(v, "m") for v in chain(3, 2))
    df = pd.DataFrame({"id": ["C", "B", "A"], "_order": [2, 1, 0], "code": [c, b, a]})   # C's partition first
    for rows in (1, 2, 3):
        got, out = decide(FuzzyDedup("code", seed=42), df, "local", rows)
        assert list(got) == ["B"] and got["B"][0] == "A"
        assert out[REASON].to_dict() == {"C": "", "B": "near_duplicate", "A": ""}


@pytest.mark.parametrize("max_bucket", [2, 3, 64])
def test_band_pairs_of_shuffled_buckets_equal_lsh_candidates(max_bucket):
    """Signatures with few distinct values (many rows share bands, some buckets above
    max_bucket), cut into partitions and shuffled into several buckets: the union of the buckets'
    pairs is ``lsh_candidates``' set of pairs (as ``_order`` values)."""
    rng = np.random.default_rng(5)
    n, bands, rows = 300, 6, 2
    sigs = rng.integers(0, 3, size=(n, bands * rows + 4)).astype(np.uint32)
    order = np.sort(rng.choice(10_000, n, replace=False)).astype(np.int64)
    want = {(int(order[i]), int(order[j])) for i, j in lsh_candidates(sigs, bands, rows, max_bucket)}
    frames = [band_keys(sigs[s:s + 40], order[s:s + 40], bands, rows) for s in range(0, n, 40)]
    with Engine(engine="local", n_workers=3) as eng:
        buckets = eng.shuffle(frames, ["band", "v0", "v1"], 5, frames[0].iloc[:0])
    assert len(buckets) == 5 and sum(map(len, buckets)) == n * bands
    pairs = [band_pairs(b, rows, max_bucket) for b in buckets]
    got = [tuple(p) for ps in pairs for p in ps.tolist()]
    assert set(got) == want and len(want) > 100
    groups, (nodes, group), count = candidate_graph(*pairs, groups=4)
    assert count == len(want) and sum(len(g) for g in groups) == len(want)
    # a component never spans two groups: both ends of every pair are in the pair's group
    where = dict(zip(nodes.tolist(), group.tolist()))
    assert all(where[i] == g and where[j] == g for g, ps in enumerate(groups) for i, j in ps.tolist())


def test_candidate_graph_components_are_whole():
    pairs = np.array([[1, 9], [9, 20], [20, 33], [2, 3], [40, 41], [33, 50]], dtype=np.int64)   # 1-9-20-33-50 chain
    groups, (nodes, group), count = candidate_graph(pairs[:3], pairs[3:], groups=7)
    where = dict(zip(nodes.tolist(), group.tolist()))
    assert count == 6 and len({where[k] for k in (1, 9, 20, 33, 50)}) == 1
    assert where[1] == 1 % 7 and where[2] == 2 % 7 and where[40] == 40 % 7      # by the component's first row


def test_the_driver_never_receives_signatures_or_per_row_keys():
    """On a LocalCluster, what the driver gathers during ``fit`` does not grow with the rows: 6x
    the rows (all distinct, the same duplicates) gathers the same bytes but for one count per
    partition and step (the progress lines' rows done; at most 40 bytes a partition), far below
    the 640 bytes a row the signatures alone would take; no gathered value holds a uint32 array."""
    def corpus(n_unique: int) -> pd.DataFrame:
        dup = awkward_corpus()
        extra = [module(table(1000 + i), f"x{i}") for i in range(n_unique)]
        codes = list(dup["code"]) + extra
        return pd.DataFrame({"id": [f"r{i}" for i in range(len(codes))], "_order": range(len(codes)), "code": codes})

    sizes, parts = [], []
    for n in (100, 600):
        df = corpus(n)
        log: list = []
        decide(FuzzyDedup("code", seed=42), df, "dask", partition_rows=40, gathered=log)
        fit = log[:log.index("end of fit")]
        for _, v in fit:
            for x in _leaves(v):
                assert not (isinstance(x, np.ndarray) and x.dtype == np.uint32), "a signature reached the driver"
                assert not isinstance(x, pd.DataFrame), "per-row keys reached the driver"
        sizes.append(sum(b for b, _ in fit))
        parts.append(-(-len(df) // 40))
        assert sizes[-1] < 2_000 < 640 * len(df)
    assert 0 <= sizes[1] - sizes[0] <= 40 * (parts[1] - parts[0]), (sizes, parts)


def _leaves(v):
    if isinstance(v, (list, tuple)):
        for x in v:
            yield from _leaves(x)
    elif isinstance(v, dict):
        for x in v.values():
            yield from _leaves(x)
    else:
        yield v
