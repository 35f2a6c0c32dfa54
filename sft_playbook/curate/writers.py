"""The writing steps of the pipeline, run by the workers: part files per partition, then one
concatenation per output file.

* Dropped rows: every pass's task keeps its partition's dropped rows where they are (on the worker);
  ``write_dropped_parts`` writes them as ``<parts>/dropped/<nn>_<stage>/part-<p>.jsonl`` and
  ``concat_files`` joins the parts of a stage, in partition order (= input order), into
  ``dropped_dir/<nn>_<stage>.jsonl``.
* Splits: the driver turns the kept ids into each row's rank in the seeded shuffle
  (``split.split_ranks``) and sends every partition the ranks of its own rows (8 bytes a row);
  ``write_split_parts`` writes, per level and split, the partition's rows sorted by rank plus the
  ranks (``.npy``), and ``merge_split`` merges the parts of one level and split by rank
  (``heapq.merge``: one line of each part in memory; at most ``MERGE_FAN_IN`` files open at once,
  more parts are merged in rounds) into ``<level>/<split>.jsonl``. The bytes are
  those the driver-side ``split.merge`` writes: the same rows, lines and order.

Every output file is written to a temporary file in its folder and renamed (atomic); the output
set as a whole is swapped in by ``io.replace_dir_atomic``. The workers and the driver must see the
same file system (one machine, or a shared mount) for the output and work folders.
"""
from __future__ import annotations

import heapq
from functools import partial
from operator import itemgetter
from pathlib import Path
from collections.abc import Iterator

import numpy as np
import pandas as pd

from ..io import jsonl_text, write_chunks_atomic, write_text_atomic
from .base import DETAIL, REASON, STAGE_COL
from .split import SPLITS, sft_input


def _chunks(paths: list[str]) -> Iterator[bytes]:
    for p in paths:
        with open(p, "rb") as fh:
            while True:
                block = fh.read(1 << 20)
                if not block:
                    break
                yield block


def concat_files(paths: list[str], target: str) -> int:
    """``target`` = the files one after the other (atomic; read in 1 MiB blocks).

    Returns:
        The size of ``target`` in bytes.

    Raises:
        OutputError: ``target`` cannot be written.
    """
    return write_chunks_atomic(target, _chunks(paths))


def part_name(index: int) -> str:
    """The file stem of part ``index``.

    Returns:
        ``part-<index>`` with the index zero-padded to 6 digits, e.g. ``part-000042``.
    """
    return f"part-{index:06d}"


def _json_value(value):
    """A cell as JSON can hold it.

    Returns:
        None for a missing cell (None, float NaN, ``pd.NA``, ``pd.NaT``), the value otherwise."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    return value


def write_dropped_parts(gone: pd.DataFrame, index: int, folders: list[str], names: list[str],
                        columns: list[str]) -> int:
    """One part file per stage of the chain (``folders[i]``, stage name ``names[i]``) with this
    partition's rows that stage dropped: ``{"id", "stage", "reason", "detail", **columns}``;
    ``columns`` is the union over all partitions; a cell a row lacks (a column added by a later
    stage, or one another partition has) is written as ``null``, never as the bare ``NaN`` token,
    which is not JSON (RFC 8259) and strict readers refuse.

    Returns:
        The number of dropped rows written, over all the stages' files.

    Raises:
        OutputError: a part file cannot be written.
    """
    n = 0
    for i, (folder, name) in enumerate(zip(folders, names)):
        mine = gone[gone[STAGE_COL] == i]
        mine = mine.reindex(columns=["id", REASON, DETAIL, *columns])
        rows = ({"id": r["id"], "stage": name, "reason": r[REASON], "detail": r[DETAIL],
                 **{c: _json_value(r[c]) for c in columns}} for r in mine.to_dict("records"))
        write_text_atomic(Path(folder) / f"{part_name(index)}.jsonl", jsonl_text(rows))
        n += len(mine)
    return n


def write_split_parts(df: pd.DataFrame, ranks: np.ndarray, index: int, n_train: int, n_val: int,
                      levels: list[str], folder: str) -> dict[str, int]:
    """This partition's kept rows as SFT rows, per level and split, sorted by their rank in the
    shuffle: ``<folder>/<level>/<split>/part-<p>.jsonl`` and ``<folder>/ranks/<split>/part-<p>.npy``.

    Args:
        df: the partition's kept rows (``id``, ``header``, ``code``, ``desc_<level>``...).
        ranks: each row's rank in the shuffle (``split.split_ranks``), shape ``[len(df)]``.
        index: the partition's index (names the part files).
        n_train: ranks below this are train.
        n_val: the next ``n_val`` ranks are validation; the rest is test.
        levels: the description levels.
        folder: the work folder for the parts.

    Returns:
        ``{split: rows}`` for ``train``, ``validation`` and ``test`` (the same at every level).

    Raises:
        ValueError: ``ranks`` and ``df`` differ in length.
        OutputError: a jsonl part file cannot be written.
        OSError: a rank file (``.npy``, written in place) cannot be written.
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    if len(ranks) != len(df):
        raise ValueError(f"partition {index}: {len(ranks)} ranks for {len(df)} rows")
    order = np.argsort(ranks, kind="stable")
    df, ranks = df.iloc[order], ranks[order]
    which = np.where(ranks < n_train, 0, np.where(ranks < n_train + n_val, 1, 2))
    ids = df["id"].astype(str).tolist()
    headers = df["header"].tolist()
    codes = df["code"].tolist()
    sizes = {}
    for s, split in enumerate(SPLITS):
        keep = np.flatnonzero(which == s)
        sizes[split] = int(len(keep))
        buf = np.ascontiguousarray(ranks[keep])
        path = Path(folder) / "ranks" / split / f"{part_name(index)}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            np.save(fh, buf)
        for lvl in levels:
            desc = df[f"desc_{lvl}"].tolist()
            rows = ({"input": sft_input(desc[k], headers[k]), "output": codes[k], "id": ids[k]} for k in keep)
            write_text_atomic(Path(folder) / lvl / split / f"{part_name(index)}.jsonl", jsonl_text(rows))
    return sizes


#: The most part files ``merge_split`` opens at once: more parts are merged in rounds (groups of
#: this many into intermediate files, then those), so a corpus of any number of partitions stays
#: far below a worker's open-file limit (``ulimit -n``: often 1024 on a login node or Slurm job).
MERGE_FAN_IN = 64


def _ranked_lines(jsonl: str, ranks: str) -> Iterator[tuple[int, bytes]]:
    r = np.load(ranks)
    with open(jsonl, "rb") as fh:
        yield from zip(r.tolist(), fh)


def _run_lines(path: str) -> Iterator[tuple[int, bytes]]:
    """The lines of an intermediate run file (``<rank> <jsonl line>`` each; one open file).

    Yields:
        ``(rank, line bytes with its newline)``.
    """
    with open(path, "rb") as fh:
        for line in fh:
            rank, _, rest = line.partition(b" ")
            yield int(rank), rest


def _merged(sources: list[Iterator[tuple[int, bytes]]]) -> Iterator[tuple[int, bytes]]:
    return heapq.merge(*sources, key=itemgetter(0))


def merge_split(parts: list[str], ranks: list[str], target: str, fan_in: int = MERGE_FAN_IN) -> int:
    """Merge part files (each sorted by rank) by rank into ``target`` (atomic).

    At most ``fan_in`` files are open at once: with more parts, groups of ``fan_in`` are merged
    into intermediate run files (``<rank> <line>``, in a temporary folder beside the parts, removed
    at the end), round after round, until ``fan_in`` or fewer remain. The bytes of ``target`` do not
    depend on ``fan_in``.

    Args:
        parts: the jsonl part files of one level and split.
        ranks: the matching ``.npy`` rank files, one per part.
        target: the merged output file.
        fan_in: the most input files open at once (>= 2).

    Returns:
        The number of rows (lines) written.

    Raises:
        ValueError: ``fan_in`` < 2, or ``parts`` and ``ranks`` differ in length.
        OutputError: ``target`` (or an intermediate file) cannot be written.
    """  # noqa: DOC501 - raised through the factory output_error()
    import shutil
    import tempfile

    from ..io import output_error

    if fan_in < 2:
        raise ValueError(f"fan_in must be at least 2, got {fan_in}")
    if len(parts) != len(ranks):
        raise ValueError(f"{len(parts)} part files for {len(ranks)} rank files")
    count = 0
    sources = [partial(_ranked_lines, p, r) for p, r in zip(parts, ranks)]
    tmp = None
    try:
        n_round = 0
        while len(sources) > fan_in:
            if tmp is None:
                base = Path(parts[0]).parent if parts else Path(target).parent
                try:
                    tmp = tempfile.mkdtemp(prefix=".merge-", dir=base)
                except OSError as exc:
                    raise output_error(exc, base) from None
            runs = []
            for g in range(0, len(sources), fan_in):
                path = str(Path(tmp) / f"round{n_round:02d}-{g // fan_in:06d}.txt")
                group = sources[g:g + fan_in]
                write_chunks_atomic(path, (b"%d %s" % (rank, line) for rank, line in _merged([s() for s in group])))
                runs.append(partial(_run_lines, path))
            sources = runs
            n_round += 1

        def lines() -> Iterator[bytes]:
            nonlocal count
            for _, line in _merged([s() for s in sources]):
                count += 1
                yield line
        write_chunks_atomic(target, lines())
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return count
