"""run_stages(consume=True), as curate() calls it: the rows as read (the first pass's input) are not
kept on the workers for the whole run. Before, the caller's list of read partitions held their
futures, so each worker kept its share of the raw corpus in memory until the end (at 1M rows
~1.3 GB a worker) and the scheduler kept their tasks."""
from __future__ import annotations

import random

import pandas as pd
import pytest

from sft_playbook.curate.dedup import ExactDedup
from sft_playbook.curate.engine import Engine
from sft_playbook.curate.pipeline import run_stages


def _corpus(n: int = 240) -> pd.DataFrame:
    """Exact duplicates up to white space and comments (so both passes drop rows), non-ASCII text
    and an escaped identifier."""
    rng = random.Random(3)
    texts = []
    for i in range(n):           # rows 3k, 3k+1, 3k+2: one text, as is / spaced otherwise / commented
        base = f"module m{(i // 3) * 7 % 101} drives  é{rng.randint(0, 1)} and \\$not_{i // 3 % 5}"
        texts.append([base, base.replace("  ", " "), base + " // note"][i % 3])
    return pd.DataFrame({"id": [f"r{i}" for i in range(n)], "_order": range(n), "text": texts})


@pytest.fixture(scope="module")
def eng():
    with Engine(engine="dask", n_workers=2, threads_per_worker=1, partition_rows=20) as e:
        yield e


def _held(eng: Engine) -> set[str]:
    return set(eng.client.run_on_scheduler(lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks]))


@pytest.mark.parametrize("consume", [True, False])
def test_the_rows_as_read_are_let_go_after_the_first_pass(eng, consume):
    df = _corpus()
    parts = eng.partitions(df)
    first = {str(f.key) for f in parts}
    stages = [ExactDedup("text", normalize="text"), ExactDedup("text", normalize="code")]
    out, stats = run_stages(parts, stages, eng, None, collect=False, consume=consume)
    kept = pd.concat(eng.gather(out)).sort_values("_order")
    held = _held(eng)
    assert 0 < len(kept) < len(df) and stats[0].rows_out > stats[1].rows_out   # both passes dropped rows
    if consume:
        assert parts == [] and not (first & held), "the rows as read are still held"
    else:                                          # the caller still has them: kept (its choice)
        assert len(parts) == 12 and first <= held
    del out, parts
