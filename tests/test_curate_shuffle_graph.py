"""Engine.shuffle on a LocalCluster: its task graph (held by the scheduler, which a LocalCluster runs
in the driver process) does not grow with the number of input partitions, and the regrouping is
still exact."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sft_playbook.curate.engine import SHUFFLE_MAX_INPUTS, Engine


def _frame(i: int) -> pd.DataFrame:
    """Partition i: 7 rows (one empty partition in 10), keys that repeat across partitions, and an
    awkward string column (non-ASCII, empty, a very long value)."""
    n = 0 if i % 10 == 3 else 7
    rng = np.random.default_rng(i)
    return pd.DataFrame({"name": [f"m{int(k)}" if k % 5 else "\\$not" for k in rng.integers(0, 50, n)],
                         "_order": np.arange(i * 7, i * 7 + n, dtype=np.int64),
                         "text": ["é" * (j % 3) + ("x" * 500 if j == 6 else "") for j in range(n)]})


@pytest.fixture(scope="module")
def eng():
    with Engine(engine="dask", n_workers=2, threads_per_worker=1) as e:
        yield e


def _shuffled(eng: Engine, parts: int, buckets: int, monkeypatch) -> tuple[list[pd.DataFrame], int]:
    """The buckets of a shuffle of ``parts`` partitions, and the number of tasks in the graph the
    scheduler was handed (the collection ``persist`` received)."""
    graphs: list[int] = []
    real = eng.client.persist

    def spy(coll, *a, **kw):                       # the real persist, after counting its graph
        graphs.append(len(coll.__dask_graph__()))
        return real(coll, *a, **kw)

    monkeypatch.setattr(eng.client, "persist", spy)
    frames = eng.map(_frame, list(range(parts)))
    out = eng.gather(eng.shuffle(frames, ["name"], buckets, _frame(0).iloc[:0]))
    monkeypatch.undo()
    assert len(graphs) == 1
    return out, graphs[0]


@pytest.mark.parametrize("parts", [SHUFFLE_MAX_INPUTS + 1, 10 * SHUFFLE_MAX_INPUTS])
def test_shuffle_graph_does_not_grow_with_the_partitions(eng, parts, monkeypatch):
    _, at_cap = _shuffled(eng, SHUFFLE_MAX_INPUTS, 8, monkeypatch)
    out, graph = _shuffled(eng, parts, 8, monkeypatch)
    assert graph == at_cap, (parts, graph, at_cap)
    # the regrouping is exact: every row once, every name in exactly one bucket
    want = pd.concat([_frame(i) for i in range(parts)], ignore_index=True)
    got = pd.concat(out, ignore_index=True)
    assert len(out) == 8
    pd.testing.assert_frame_equal(got.sort_values("_order").reset_index(drop=True),
                                  want.sort_values("_order").reset_index(drop=True), check_dtype=False)
    where = {}
    for b, frame in enumerate(out):
        for name in set(frame["name"]):
            assert where.setdefault(name, b) == b, f"{name} in buckets {where[name]} and {b}"


def test_shuffle_below_the_cap_is_not_coalesced(eng, monkeypatch):
    """Fewer inputs than the cap: the graph is smaller than at the cap (no concatenation step)."""
    _, small = _shuffled(eng, 4, 8, monkeypatch)
    _, at_cap = _shuffled(eng, SHUFFLE_MAX_INPUTS, 8, monkeypatch)
    assert small < at_cap
