"""jsonl <-> pandas fast paths for the Dask workers. The plain writers and readers live in
``sft_playbook.io``."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from ..io import BOM, InputError, decode_utf8, json_error_text, write_text_atomic


# -- jsonl <-> pandas, fast paths for the Dask workers -------------------------------------------
_encode_str = json.encoder.encode_basestring      # what JSONEncoder(ensure_ascii=False) does to a str
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]", re.ASCII)


def read_jsonl_frame(path: str | Path, columns: dict[str, str]) -> pd.DataFrame:
    """Read a jsonl file into a DataFrame of the given ``columns`` ({name: "str" | "int64"}; other
    fields are ignored, missing ones are an error). String columns come back as object dtype
    (plain Python ``str``; the stages map Python functions over them, so no Arrow round trip).

    Parsed with pyarrow's C++ JSON reader (~5 us per 1 kB line, 5x ``pd.read_json``); files with
    escaped surrogates (which Arrow's UTF-8 strings cannot hold) or anything Arrow rejects fall back
    to ``json.loads`` per line, so the values are always what the stdlib would give.

    Returns:
        One row per non-blank line, in file order, with exactly the ``columns`` in the given order
        (``str`` as object dtype, ``int64`` as int64).

    Raises:
        InputError: a line is not valid JSON (``file:line``).
        ValueError: a ``str`` column holds a non-string value.
    """
    import numpy as np

    path = Path(path)
    data = path.read_bytes()
    if data.startswith(BOM):
        data = data[len(BOM):]
    if not _SURROGATE_ESCAPE.search(data):
        try:
            import pyarrow as pa
            import pyarrow.json as pj

            types = {"str": pa.string(), "int64": pa.int64()}
            schema = pa.schema([(c, types[t]) for c, t in columns.items()])
            table = pj.read_json(pa.BufferReader(data),
                                 read_options=pj.ReadOptions(use_threads=False, block_size=max(1 << 20, len(data) + 1)),
                                 parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"))
            if all(table.column(c).null_count == 0 for c in columns):
                return pd.DataFrame({c: (pd.Series(table.column(c).to_numpy(zero_copy_only=False), dtype=object)
                                         if t == "str" else pd.Series(table.column(c).to_numpy(), dtype=t))
                                     for c, t in columns.items()})
        except (ImportError, ValueError, KeyError, TypeError, OSError):   # pyarrow.ArrowInvalid is a ValueError
            pass
    rows = []
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        text = decode_utf8(line, str(path), line_start=lineno)
        try:
            rows.append(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{lineno}: not valid JSON ({json_error_text(exc)})") from None
    out = {}
    for c, t in columns.items():
        vals = [r[c] for r in rows]
        if t == "str":
            if not all(isinstance(v, str) for v in vals):
                raise ValueError(f"{path}: field {c!r} is not a string in every line")
            out[c] = pd.Series(vals, dtype=object)
        else:
            out[c] = pd.Series(np.asarray(vals, dtype=t))
    return pd.DataFrame(out)


def frame_jsonl_text(df: pd.DataFrame, columns: list[str]) -> str:
    """The same text as ``jsonl_text(df[columns].to_dict("records"))`` (byte for byte), built column
    by column: each value is JSON-encoded once (string columns straight through the C string
    encoder that ``json.dumps`` itself uses) and each line is one %-format, without a dict per row.

    Returns:
        One JSON object per row (keys in ``columns`` order, ``", "``/``": "`` separators, non-ASCII kept),
        each line ending in ``\\n``; '' for an empty frame.
    """
    enc = json.JSONEncoder(ensure_ascii=False).encode
    if df.empty:
        return ""
    encoded = []
    for c in columns:
        values = df[c].tolist()
        strings = all(type(v) is str for v in values)
        encoded.append(list(map(_encode_str if strings else enc, values)))
    line = "{" + ", ".join(enc(c).replace("%", "%%") + ": %s" for c in columns) + "}\n"
    return "".join(map(line.__mod__, zip(*encoded)))


def write_frame_jsonl_atomic(path: str | Path, df: pd.DataFrame, columns: list[str]) -> None:
    """Write ``df[columns]`` as jsonl (``frame_jsonl_text``) to ``path`` atomically.

    Raises:
        OutputError: the file cannot be written (disk full, read-only, ...).
    """
    write_text_atomic(path, frame_jsonl_text(df, columns))
