"""Checkpoint part files: a pandas partition as an Arrow IPC file (data only, no pickle).

Resume (``pipeline.Checkpoints``) reads these files back on every worker; a pickle would run
whatever code the file names, so anyone able to write ``work_dir`` could run code on all workers.
An Arrow IPC file holds data only. The round trip is exact for what the pipeline's partitions
hold (checked by ``tests/test_curate_checkpoints.py``):

* numeric and bool columns (``_order``: int64): Arrow's own types, the pandas dtype restored;
* text columns (pandas ``str`` dtype, or ``object`` holding ``str`` and None): Arrow strings;
  a column with a lone surrogate (which Arrow strings cannot hold) as UTF-8 bytes with
  ``surrogatepass`` instead; None/NaN as Arrow null; the column's pandas dtype restored;
* any other object column (lists, dicts, mixed values): one JSON text per value, accepted only
  when it reads back as the same value with the same types (else ``CheckpointError``: nothing is
  written that would not come back the same);
* the index: a RangeIndex as its start/stop/step, an integer index as a column.

Where a column's pandas dtype, NA value and the index are kept: the schema's metadata
(``sft_playbook`` key, JSON).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

META_KEY = b"sft_playbook"
SUFFIX = ".arrow"


class CheckpointError(ValueError):
    """A partition holds a value that a checkpoint file cannot store exactly."""


def _same(a, b) -> bool:
    """Whether ``a`` and ``b`` are equal values of the same types all the way down.

    Returns:
        True when equal (NaN equals NaN; 1 and 1.0, or a tuple and a list, differ).
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


def _is_na(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def _encode(name: str, s: pd.Series):
    """One column as an Arrow array and the metadata that restores it.

    Returns:
        ``(array, metadata dict)``.

    Raises:
        CheckpointError: a value would not read back the same (tuple, bytes, non-str keys ...).
    """
    import pyarrow as pa

    dtype = s.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return pa.array(s.to_numpy()), {"kind": "numpy", "dtype": dtype.str}
    text_dtype = isinstance(dtype, pd.StringDtype)
    values = None if text_dtype else s.tolist()
    if text_dtype or all(type(v) is str or v is None for v in values):
        meta = {"kind": "text", "dtype": "str" if text_dtype else "object",
                "storage": getattr(dtype, "storage", None), "na_value": _na_name(dtype) if text_dtype else None}
        try:                                  # Arrow's own UTF-8 strings (C speed; None/NaN -> null)
            return pa.Array.from_pandas(s, type=pa.large_string()), meta
        except (UnicodeEncodeError, pa.ArrowException):   # a lone surrogate: bytes with surrogatepass
            arr = pa.array([None if _is_na(v) else v.encode("utf-8", "surrogatepass") for v in s.tolist()],
                           pa.large_binary())
            return arr, {**meta, "surrogates": True}
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        out = []
        for v in values:
            try:
                t = json.dumps(v, ensure_ascii=True, allow_nan=True)
            except (TypeError, ValueError):
                t = None
            if t is None or not _same(json.loads(t), v):
                raise CheckpointError(f"checkpoint: column {name!r} holds a {type(v).__name__} value that a "
                                      "checkpoint file cannot store exactly")
            out.append(t)
        return pa.array(out, pa.large_string()), {"kind": "json"}
    raise CheckpointError(f"checkpoint: column {name!r} has dtype {dtype}, which checkpoint files do not store")


def _na_name(dtype) -> str:
    na = getattr(dtype, "na_value", None)
    return "nan" if isinstance(na, float) else "NA"


def _decode(arr, meta: dict) -> pd.Series:
    kind = meta["kind"]
    if kind == "numpy":
        return pd.Series(arr.to_numpy(zero_copy_only=False).astype(np.dtype(meta["dtype"]), copy=False))
    if kind == "text":
        if meta.get("surrogates"):
            vals = [None if b is None else b.decode("utf-8", "surrogatepass") for b in arr.to_pylist()]
        else:
            vals = arr.to_pandas() if meta["dtype"] == "str" else arr.to_numpy(zero_copy_only=False)
        if meta["dtype"] == "str":
            na = np.nan if meta.get("na_value") == "nan" else pd.NA
            return pd.Series(vals, dtype=pd.StringDtype(storage=meta.get("storage") or "python", na_value=na))
        return pd.Series(vals, dtype=object)                    # str objects, None for null
    return pd.Series([json.loads(t) for t in arr.to_pylist()], dtype=object)


def write_frame(df: pd.DataFrame, path: str | Path) -> int:
    """Write ``df`` to ``path`` as an Arrow IPC file, atomically (``<path>.tmp``, then rename).

    Returns:
        The number of rows written.

    Raises:
        CheckpointError: a column or the index holds values that would not read back the same.
    """
    import pyarrow as pa

    cols, metas, names = [], [], []
    for i, name in enumerate(df.columns):
        if not isinstance(name, str):
            raise CheckpointError(f"checkpoint: column name {name!r} is not a string")
        arr, meta = _encode(name, df.iloc[:, i])
        cols.append(arr)
        metas.append(meta)
        names.append(f"c{i}")
    idx = df.index
    if isinstance(idx, pd.RangeIndex):
        index = {"range": [idx.start, idx.stop, idx.step]}
    elif idx.dtype.kind in "iu":
        cols.append(pa.array(idx.to_numpy()))
        names.append("index")
        index = {"column": idx.dtype.str}
    else:
        raise CheckpointError(f"checkpoint: index of dtype {idx.dtype} is not stored")
    info = {"columns": list(map(str, df.columns)), "meta": metas, "index": index, "rows": len(df)}
    table = pa.table(cols, names=names).replace_schema_metadata({META_KEY: json.dumps(info).encode()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(tmp, path)
    return len(df)


def read_frame(path: str | Path) -> pd.DataFrame:
    """Read a file written by ``write_frame`` (data only: nothing in it is executed).

    Returns:
        The frame as it was written: the same columns, dtypes, values and index.

    Raises:
        CheckpointError: the file is not a checkpoint part file (no ``sft_playbook`` metadata), or
            it is not an Arrow IPC file (the message names the file).
    """
    import pyarrow as pa

    try:
        with pa.memory_map(str(path), "r") as src:
            table = pa.ipc.open_file(src).read_all()
    except (pa.ArrowInvalid, OSError) as e:
        raise CheckpointError(f"{path}: not a checkpoint part file ({e})") from None
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise CheckpointError(f"{path}: not a checkpoint part file (no {META_KEY.decode()} metadata)")
    info = json.loads(raw)
    data = {name: _decode(table.column(f"c{i}").combine_chunks(), meta)
            for i, (name, meta) in enumerate(zip(info["columns"], info["meta"]))}
    if "range" in info["index"]:
        index = pd.RangeIndex(*info["index"]["range"])
    else:
        index = pd.Index(table.column("index").to_numpy().astype(np.dtype(info["index"]["column"])))
    df = pd.DataFrame({k: v.set_axis(index) if len(v) == len(index) else v for k, v in data.items()}, index=index) \
        if data else pd.DataFrame(index=index)
    return df
