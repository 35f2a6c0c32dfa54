"""Step 5 - keep ids present in both views (before the dedups); then shuffle with a fixed seed, split 80/15/5.
Step 7 - merge: write ``<output_dir>/<level>/{train,validation,test}.jsonl``.

Views: the code view (``code``, ``header``) and the description view (one summary per level) of a
record are filtered by different rules; a record is kept only when both survived, i.e. its code
and every one of its descriptions are still there and non-empty. The same id then lands in the
same split at every level, so no description level of a test id leaks into training.

SFT rows: ``{"input": <summary>\n\nModule header:\n<header>, "output": <full module>, "id": ...}``
- the plain summary plus the module header (so the model knows the port names and widths the
tests will use), and the complete module as the answer.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .base import Stage
from ..io import write_jsonl_atomic

SPLITS = ("train", "validation", "test")


class KeepBothViews(Stage):
    """Keep only rows that have both views: code and a description at every level."""
    name = "both_views"

    def __init__(self, levels: list[str]) -> None:
        super().__init__(levels=list(levels))

    def process(self, df):
        """Drop rows with empty code (``missing_code_view``) or an empty level (``missing_description_view``).

        Returns:
            ``df`` with the rows missing a view marked (whitespace-only counts as empty).
        """
        self.drop(df, df["code"].str.strip() == "", "missing_code_view")
        for lvl in self.config["levels"]:
            self.drop(df, df[f"desc_{lvl}"].str.strip() == "", "missing_description_view", f"desc_{lvl} is empty")
        return df


def _check(fractions: dict[str, float]) -> None:
    if set(fractions) != set(SPLITS) or abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be train/validation/test summing to 1, got {fractions}")


def split_sizes(n: int, fractions: dict[str, float]) -> tuple[int, int]:
    """Split sizes for ``n`` rows; the rest is test.

    Returns:
        ``(rows in train, rows in validation)``: ``round(train * n)`` and ``round(validation * n)``,
        the latter capped so that the two never exceed ``n``.

    Raises:
        ValueError: ``fractions`` are not exactly train/validation/test or do not sum to 1 (within 1e-6).
    """
    _check(fractions)
    n_train = int(round(fractions["train"] * n))
    return n_train, min(int(round(fractions["validation"] * n)), n - n_train)


def assign_splits(ids: list[str], seed: int, fractions: dict[str, float]) -> list[tuple[str, str]]:
    """Assign every id a split. Ids are sorted first, so the result depends only on the set of ids and
    the seed (not on input order or partitioning).

    Returns:
        ``[(id, split)]`` for every id, in shuffled order: the first ``n_train`` are ``train``, then
        ``validation``, then ``test`` (``split_sizes``).

    Raises:
        ValueError: invalid ``fractions`` (``split_sizes``).
    """
    order = sorted(ids)
    perm = np.random.default_rng(seed).permutation(len(order))
    n_train, n_val = split_sizes(len(order), fractions)
    return [(order[k], "train" if rank < n_train else "validation" if rank < n_train + n_val else "test")
            for rank, k in enumerate(perm)]


def split_ranks(ids, seed: int) -> np.ndarray:
    """Every id's rank in ``assign_splits``'s shuffled order, computed from the ids alone (no rows).
    Rank r is in train when r < n_train, then validation, then test (``split_sizes``). The same
    permutation of the sorted ids, so the same id lands in the same split at every level and for
    every partitioning.

    ``ids``: a pyarrow string array (sorted in C++, ~20 bytes a row) or a sequence of str. Arrow
    sorts by UTF-8 bytes, which is code point order, the order of Python's ``sorted``; ids that
    Arrow cannot hold (lone surrogates) are sorted in Python.

    Returns:
        ``ranks``, int64 of shape ``[n]``: ``ranks[k]`` is the rank of ``ids[k]`` (a permutation of
        0..n-1).
    """
    n = len(ids)
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = ids if isinstance(ids, (pa.Array, pa.ChunkedArray)) else pa.array(list(ids), type=pa.large_string())
        order = pc.sort_indices(arr).to_numpy().astype(np.int64, copy=False)
    except (ImportError, UnicodeEncodeError, ValueError, TypeError):
        vals = ids.to_pylist() if hasattr(ids, "to_pylist") else list(ids)
        order = np.array(sorted(range(n), key=vals.__getitem__), dtype=np.int64)
    perm = np.random.default_rng(seed).permutation(n)
    ranks = np.empty(n, dtype=np.int64)
    ranks[order[perm]] = np.arange(n, dtype=np.int64)
    return ranks


def sft_input(summary: str, header: str) -> str:
    """The SFT input text.

    Returns:
        ``"<summary>\\n\\nModule header:\\n<header>"``, or ``summary`` alone when ``header`` is empty.
    """
    return f"{summary}\n\nModule header:\n{header}" if header else summary


def merge(df: pd.DataFrame, levels: list[str], out_dir: Path, seed: int, fractions: dict[str, float]) -> dict:
    """Write the SFT files ``out_dir/<level>/{train,validation,test}.jsonl`` (each atomically). Rows
    within a split follow the shuffle.

    Returns:
        ``{level: {split: rows written}}``.

    Raises:
        ValueError: invalid ``fractions`` (``split_sizes``).
        OutputError: a file cannot be written.
    """
    assigned = assign_splits(df["id"].astype(str).tolist(), seed, fractions)
    by_id = df.set_index(df["id"].astype(str))
    sizes: dict[str, dict[str, int]] = {}
    for lvl in levels:
        sizes[lvl] = {}
        for split in SPLITS:
            rows = [{"input": sft_input(by_id.at[i, f"desc_{lvl}"], by_id.at[i, "header"]),
                     "output": by_id.at[i, "code"], "id": i} for i, s in assigned if s == split]
            write_jsonl_atomic(out_dir / lvl / f"{split}.jsonl", rows)
            sizes[lvl][split] = len(rows)
    return sizes
