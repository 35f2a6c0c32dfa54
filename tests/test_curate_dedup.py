"""Fuzzy dedup without chaining: every dropped row names a KEPT row whose verified Jaccard is >= the
threshold; a row that is similar only to dropped rows stays; cluster sizes are reported."""
from __future__ import annotations

import random

import pandas as pd
import pytest

from sft_playbook.curate.base import DETAIL, REASON
from sft_playbook.curate.dedup import ExactDedup, FuzzyDedup, keep_first
from sft_playbook.curate.engine import Engine
from sft_playbook.curate.minhash import jaccard, shingles

OPS = ["&", "|", "^", "+", "-"]


def table(seed: int, n: int = 60) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    return [(rng.choice(OPS), rng.randrange(256)) for _ in range(n)]


def module(lines, name: str) -> str:
    """A module of one assign per line: each edit of a constant changes ~5 token 5-grams."""
    body = "\n".join(f"  assign y[{i}] = x {op} 8'd{v};" for i, (op, v) in enumerate(lines))
    return f"module {name}(input [7:0] x, output [7:0] y [0:{len(lines) - 1}]);\n{body}\nendmodule"


def edit(lines, idx, off: int):
    out = list(lines)
    for i in idx:
        out[i] = (out[i][0], (out[i][1] + off) % 256)
    return out


def chain(seed: int, links: int, step: int = 9):
    """links+1 versions, each a few constants away from the previous one: neighbours ~0.89, two
    apart < 0.8."""
    versions = [table(seed)]
    for k in range(links):
        versions.append(edit(versions[-1], range((4 * k) % step, 60, step), 101 + k))
    return versions


def frame(codes: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame({"id": [i for i, _ in codes], "_order": range(len(codes)), "code": [c for _, c in codes]})


def run(stage, df, partition_rows=2):
    with Engine(engine="local", partition_rows=partition_rows) as eng:
        parts = eng.partitions(df)
        stage.fit(parts, eng)
        return pd.concat(eng.gather(eng.map(stage, parts))).sort_values("_order").set_index("id")


def sim(a: str, b: str) -> float:
    return jaccard(shingles(a), shingles(b))


def test_a_chain_does_not_drop_rows_that_are_not_near_a_kept_row():
    a, b, c = (module(v, "m") for v in chain(3, 2))
    assert sim(a, b) >= 0.8 and sim(b, c) >= 0.8 and sim(a, c) < 0.8        # the shape of the issue
    out = run(FuzzyDedup("code", seed=42), frame([("A", a), ("B", b), ("C", c)]))
    assert out[REASON].to_dict() == {"A": "", "B": "near_duplicate", "C": ""}
    assert out.at["B", DETAIL] == f"near A (Jaccard {round(sim(a, b), 3)})"


@pytest.mark.parametrize("seed,links", [(1, 4), (5, 6), (11, 9)])
def test_every_dropped_row_names_a_kept_row_at_or_above_the_threshold(seed, links):
    versions = chain(seed, links)
    other = [module(v, "o") for v in chain(seed + 100, 2)]                # a second, unrelated chain
    codes = [(f"v{k}", module(v, f"m{k}")) for k, v in enumerate(versions)] + [(f"o{k}", c) for k, c in enumerate(other)]
    random.Random(seed).shuffle(codes)
    df = frame(codes)
    stage = FuzzyDedup("code", seed=42)
    out = run(stage, df)
    text = dict(codes)
    dropped = out[out[REASON] == "near_duplicate"]
    assert len(dropped) >= 2
    for rid, detail in dropped[DETAIL].items():
        keeper, cited = detail[len("near "):].split(" (Jaccard ")
        assert out.at[keeper, REASON] == "", (rid, keeper)                   # a KEPT row
        assert float(cited.rstrip(")")) == round(sim(text[rid], text[keeper]), 3) >= 0.8
    # nothing kept is a near duplicate of an earlier kept row
    kept = [i for i in df["id"] if out.at[i, REASON] == ""]
    for x in range(len(kept)):
        for y in range(x):
            assert sim(text[kept[x]], text[kept[y]]) < 0.8, (kept[y], kept[x])
    s = stage.summary()
    assert sum(int(k) * v for k, v in s["cluster_sizes"].items()) == s["rows_in_clusters"] == len(dropped) + s["clusters"]
    assert s["largest_cluster"] == max(int(k) for k in s["cluster_sizes"])


def test_decisions_do_not_depend_on_partitioning():
    codes = [(f"v{k}", module(v, "m")) for k, v in enumerate(chain(7, 5))]
    a = run(FuzzyDedup("code", seed=42), frame(codes), 1)
    b = run(FuzzyDedup("code", seed=42), frame(codes), 100)
    assert a[[REASON, DETAIL]].equals(b[[REASON, DETAIL]])


def test_star_cluster_names_the_centre_and_reports_its_size():
    centre = chain(21, 0)[0]
    spokes = [edit(centre, [k, k + 20], 50 + k) for k in range(4)]            # each ~0.9 to the centre
    codes = [("c", module(centre, "m"))] + [(f"s{k}", module(v, "m")) for k, v in enumerate(spokes)]
    stage = FuzzyDedup("code", seed=42)
    out = run(stage, frame(codes))
    assert (out.loc[[f"s{k}" for k in range(4)], DETAIL].str.startswith("near c ")).all()
    assert stage.summary()["cluster_sizes"] == {"5": 1} and stage.summary()["largest_cluster"] == 5


def test_keep_first_greedy_and_the_keeper_check():
    edges = {0: {1: 0.84}, 1: {0: 0.84, 2: 0.85}, 2: {1: 0.85}}
    assert keep_first(edges, 0.8) == ({1: (0, 0.84)}, 0)
    # C's pair with A was missed by LSH but A~C is 0.9: asked through the keeper of C's neighbour B
    asked = []
    got = keep_first(edges, 0.8, lambda i, j: asked.append((i, j)) or 0.9)
    assert got == ({1: (0, 0.84), 2: (0, 0.9)}, 1) and asked == [(2, 0)]
    assert keep_first(edges, 0.8, lambda i, j: 0.72) == ({1: (0, 0.84)}, 1)
    # the kept neighbour with the highest Jaccard is named (ties: the earliest)
    edges = {0: {3: 0.81}, 1: {3: 0.95}, 2: {3: 0.95}, 3: {0: 0.81, 1: 0.95, 2: 0.95}}
    assert keep_first(edges, 0.8)[0] == {3: (1, 0.95)}


def test_exact_dedup_reports_cluster_sizes():
    m = "module m(input a, output y); assign y = a; endmodule"
    n = "module n(input a, output y); assign y = ~a; endmodule"
    stage = ExactDedup("code")
    run(stage, frame([("a", m), ("b", m), ("c", n), ("d", m), ("e", n), ("f", "module z; endmodule")]))
    assert stage.summary()["cluster_sizes"] == {"2": 1, "3": 1}


class _NoWalk(dict):
    """A drop table that may be looked up by key but not walked: the table holds the whole corpus's
    duplicates, so walking it in every partition costs O(partitions x duplicates) per pass."""

    def _walk(self, *args):
        raise AssertionError("the whole drop table was walked for one partition")

    __iter__ = keys = values = items = _walk


@pytest.mark.parametrize("kind", ["exact", "fuzzy"])
def test_applying_the_decision_looks_up_the_partition_rows_only(kind):
    ids = [f"r{i}" for i in range(6)]
    part = pd.DataFrame({"id": ids, "_order": range(6), "code": ["module m; endmodule"] * 6})
    big = {f"elsewhere{i}": "r0" for i in range(5000)}          # duplicates in other partitions
    if kind == "exact":
        stage, table = ExactDedup("code"), _NoWalk({**big, "r2": "r0", "r5": "r1"})
        want = {"r2": "same code as r0", "r5": "same code as r1"}
    else:
        stage, table = FuzzyDedup("code"), _NoWalk({**{k: (v, 0.9) for k, v in big.items()}, "r2": ("r0", 0.875), "r5": ("r1", 1.0)})
        want = {"r2": "near r0 (Jaccard 0.875)", "r5": "near r1 (Jaccard 1.0)"}
    stage.set_state(table)
    out = stage(part)
    got = {i: d for i, r, d in zip(out["id"], out[REASON], out[DETAIL]) if r}
    assert got == want
    assert set(out.loc[out[REASON] != "", REASON]) == {"exact_duplicate" if kind == "exact" else "near_duplicate"}
    stage.set_state(_NoWalk(big))                                  # no duplicate in this partition
    assert (stage(part)[REASON] == "").all()
