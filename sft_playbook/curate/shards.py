"""Sources as shards, read by the workers (the reading step of the pipeline).

The driver lists *shards*, never rows: a jsonl file is cut into byte ranges of whole lines, a
parquet file into its row groups, any other data file (a JSON list, an Arrow file) is one shard.

How a jsonl file is cut, with the driver holding O(ranges + shards) numbers, never O(lines):

1. ``describe_file`` (workers): the kind and the size of each file.
2. The driver cuts each jsonl file into ``SCAN_RANGE_BYTES`` byte ranges; ``count_lines``
   (workers, one task per range) counts the lines that START in each range (so a line that
   crosses a range's end belongs to the range it starts in: ranges align to newlines).
3. The driver adds the counts up (cumulative sum per file): the file's line count, hence the
   shard size in lines (``shard_lines``: a multiple of ``LINE_STEP``, as before), and in which
   range each shard's first line lies.
4. ``line_offsets`` (workers, one task per range holding a shard start) returns the byte offsets
   of those lines; the shards are the byte ranges between them (``jsonl_shards``), with the
   1-based line number of their first line, so errors still name ``file:line``.

The shards are exactly those of the former one-task scan (``scan_file`` + ``cut_shards``, kept
for ``bench/``), which sent the driver the offset of every 16th line (O(lines / 16)). A hub source is downloaded first (``sources.download_hub``); its files are then shards
like a local folder's.

Small shards are packed (``pack_shards``): consecutive shards of one source, in this order, are read
by one task (``read_pack``) into one partition of about a shard's rows (line counts for jsonl, bytes
for the rest), so 1,000 files of 2 rows are a few partitions, not 1,000; rows, ids and lines stay.

Ids stay what they were when the driver read every row: a record's own ``id_field``, or
``<name>-<n>`` with n the 0-based index of the record over the source's files in sorted order.
The workers read the shards and report how many records each holds (``read_shard``); the driver
adds the counts up into every shard's offset, and ``number_shard`` then names the rows on the
worker (``_order``, the global input order, the same way). The driver holds one offset per shard.

Uniqueness of the ids is checked on the workers too: ``id_buckets`` hashes every id into one of
``buckets`` buckets, ``first_repeat`` finds repeats within a bucket (a repeat always lands in the
same bucket), and only the first repeat in input order comes back (``SourceError`` naming both
places, as before).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..io import BadLines, InputError, iter_jsonl, jsonl_line_starts
from .sources import SourceError, _iter_file, _record

#: shards hold a multiple of LINE_STEP lines (``shard_lines``)
LINE_STEP = 16
#: the byte ranges a jsonl file's lines are counted in, one worker task each: the driver holds one
#: count per range (a 100 GB corpus: 3,200 counts)
SCAN_RANGE_BYTES = 32 * 1024 * 1024
#: bytes read at a time by ``count_lines`` / ``line_offsets``
_BLOCK = 1 << 20


@dataclass
class Shard:
    """One unit of reading: ``path`` whole, its lines [``first_line``, ...) from byte ``start`` to
    ``stop`` (jsonl), or its row group ``row_group`` (parquet)."""

    source: int                      # index of the source (its spec) in the run's source list
    path: str
    start: int | None = None
    stop: int | None = None
    first_line: int = 1
    row_group: int | None = None

    def label(self) -> str:
        """The shard for messages.

        Returns:
            The path, followed by ``row group <g>`` (parquet) or ``from line <n>`` (a jsonl byte range);
            the path alone for a whole file.
        """
        if self.row_group is not None:
            return f"{self.path} row group {self.row_group}"
        if self.start is not None:
            return f"{self.path} from line {self.first_line}"
        return self.path


@dataclass
class ShardRead:
    """What a worker reads from one shard: the records (pipeline schema; ``id`` None when the
    record has none) and, for the driver, how many there are and the bad lines skipped."""

    records: list[dict[str, Any]] = field(default_factory=list)
    bad: BadLines = field(default_factory=BadLines)


def is_jsonl(path: Path) -> bool:
    """True for ``*.jsonl`` files and ``*.json`` files that hold one JSON value per line.

    Returns:
        True for a ``*.jsonl`` name, or a ``*.json`` file whose first line is one complete JSON
        object; False otherwise (only a ``*.json`` file's first line is read).
    """
    from .sources import _looks_like_jsonl

    return path.name.endswith(".jsonl") or (path.name.endswith(".json") and _looks_like_jsonl(path))


def scan_file(path: str) -> tuple[str, int, list[int]]:
    """The cheap pass (on a worker) over one file.

    Returns:
        ``("jsonl", lines, starts)`` with ``starts`` the byte offsets of every LINE_STEP-th line (the
        first included); ``("parquet", row groups, [])``; or ``("file", 1, [])`` for any other file.

    Raises:
        SourceError: the file cannot be read (the message names it).
    """
    p = Path(path)
    if p.name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return "parquet", pq.ParquetFile(p).metadata.num_row_groups, []
    if is_jsonl(p):
        try:
            n, starts = jsonl_line_starts(p, LINE_STEP)
        except InputError as exc:
            raise SourceError(str(exc)) from None
        return "jsonl", n, starts
    return "file", 1, []


def cut_shards(source: int, path: str, scan: tuple[str, int, list[int]], lines_per_shard: int) -> list[Shard]:
    """Shards of one scanned file; jsonl pieces of about ``lines_per_shard`` lines (a multiple of
    LINE_STEP, at least one).

    Args:
        source: the source's index in the run's source list.
        path: the file.
        scan: ``scan_file(path)``.
        lines_per_shard: the target lines per jsonl shard.

    Returns:
        One ``Shard`` per parquet row group (one for a file without row groups), per byte range of
        whole jsonl lines (``start``/``stop`` in bytes, the last ending at the file size), or one
        whole-file ``Shard`` (other files, empty jsonl).
    """
    kind, n, starts = scan
    if kind == "parquet":
        return [Shard(source, path, row_group=g) for g in range(n)] or [Shard(source, path, row_group=0)]
    if kind == "file" or n == 0:
        return [Shard(source, path)]
    step = max(1, round(lines_per_shard / LINE_STEP))      # in units of LINE_STEP lines
    size = Path(path).stat().st_size
    out = []
    for k in range(0, len(starts), step):
        stop = starts[k + step] if k + step < len(starts) else size
        out.append(Shard(source, path, start=starts[k], stop=stop, first_line=k * LINE_STEP + 1))
    return out


def describe_file(path: str) -> tuple[str, int]:
    """The cheap look at one file (on a worker): what kind of shards it gives.

    Returns:
        ``("jsonl", size in bytes, size)``, ``("parquet", row groups, size)`` or ``("file", 1, size)``
        (read whole); ``size`` is the file's size in bytes (packing, ``pack_shards``).

    Raises:
        SourceError: the file cannot be read (the message names it).
    """
    import pyarrow as pa

    p = Path(path)
    try:
        size = p.stat().st_size
        if p.name.endswith(".parquet"):
            import pyarrow.parquet as pq

            return "parquet", pq.ParquetFile(p).metadata.num_row_groups, size
        if is_jsonl(p):
            return "jsonl", size, size
    except (pa.ArrowException, OSError) as exc:             # pyarrow's IO errors are plain OSErrors
        raise SourceError(damaged_arrow(path, exc)) from None
    return "file", 1, size


#: the bytes a row is taken to hold when packing shards whose row count the driver does not know
#: (parquet row groups, whole JSON/Arrow files): ``pack_shards``' byte budget is rows x this
PACK_ROW_BYTES = 2048


def pack_shards(sizes: list[tuple[int, int | None, int]], rows: int) -> list[list[int]]:
    """Consecutive small shards of one source grouped into packs of about ``rows`` rows: one read
    task and one partition per pack (1,000 files of 2 rows are not 1,000 partitions). The order of
    the shards, hence of the rows, is kept; a shard is never cut.

    Args:
        sizes: per shard, in input order, ``(source index, rows or None when unknown, bytes)``; a
            shard of unknown rows counts as ``ceil(bytes / PACK_ROW_BYTES)`` rows (at least 1).
        rows: the target rows per pack (at least 1).

    Returns:
        The packs: lists of shard indices, consecutive and in order, covering every shard once; a
        pack holds shards of one source only, and closes before a shard that would take it past
        ``rows`` (a shard of ``rows`` or more is a pack of its own).
    """
    rows = max(1, int(rows))
    packs: list[list[int]] = []
    held, src = 0, None
    for i, (k, n, nbytes) in enumerate(sizes):
        n = n if n is not None else max(1, math.ceil(nbytes / PACK_ROW_BYTES))
        if packs and k == src and held + n <= rows:
            packs[-1].append(i)
            held += n
        else:
            packs.append([i])
            held, src = n, k
    return packs


def damaged_arrow(path: str | Path, exc: Exception, part: str = "") -> str:
    """The one line for a parquet/Arrow file pyarrow cannot read (truncated download, damaged copy).

    Args:
        path: the file.
        exc: pyarrow's error (``ArrowInvalid``, an ``OSError`` such as "Corrupt snappy compressed data"); an
            ``OSError`` with an errno (the OS's own error) gives ``"<path>: cannot read (<strerror>)"``.
        part: where in the file, e.g. ``" row group 3"`` (empty: the file as a whole).

    Returns:
        ``"<path><part>: cannot read as <parquet|Arrow> (damaged or truncated? <pyarrow's first line>)"``.
    """
    if isinstance(exc, OSError) and exc.errno:              # the OS's error (missing, no permission): not damage
        return f"{path}: cannot read ({exc.strerror or type(exc).__name__})"
    kind = "parquet" if str(path).endswith(".parquet") else "Arrow"
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return f"{path}{part}: cannot read as {kind} (damaged or truncated? {reason})"


def byte_ranges(size: int, range_bytes: int | None = None) -> list[tuple[int, int]]:
    """A file of ``size`` bytes cut into ranges of ``range_bytes`` (default ``SCAN_RANGE_BYTES``).

    Returns:
        ``[(start, stop), ...]`` covering [0, size) in order; [] for an empty file.
    """
    step = max(1, int(range_bytes or SCAN_RANGE_BYTES))
    return [(a, min(a + step, size)) for a in range(0, size, step)]


def _blocks(fh, lo: int, hi: int):
    """The file's bytes [lo, hi) in blocks of ``_BLOCK``.

    Yields:
        ``(offset of the block, its bytes)``, in order.
    """
    fh.seek(lo)
    pos = lo
    while pos < hi:
        block = fh.read(min(_BLOCK, hi - pos))
        if not block:
            return
        yield pos, block
        pos += len(block)


def count_lines(path: str, start: int, stop: int, size: int) -> int:
    """The lines of a file that start at a byte offset in [start, stop) (on a worker). Lines end
    at b"\\n"; a last line without one counts (as ``io.jsonl_line_starts``): a line starts at 0
    (non-empty file) and after every b"\\n" that is not the file's last byte.

    Returns:
        That count.

    Raises:
        SourceError: the file cannot be read (the message names it).
    """
    lo, hi = max(start - 1, 0), min(stop - 1, size - 1)      # the newlines whose next byte is in range
    n = 1 if start == 0 and size > 0 else 0
    try:
        with open(path, "rb") as fh:
            for _, block in _blocks(fh, lo, hi):
                n += block.count(b"\n")
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    return n


def line_offsets(path: str, start: int, stop: int, size: int, indices: list[int]) -> list[int]:
    """The byte offsets of the lines that start in [start, stop) whose 0-based index among those
    lines is in ``indices`` (sorted) (on a worker).

    Returns:
        One offset per index, in order.

    Raises:
        SourceError: the file cannot be read, or holds fewer lines in the range than an index asks
            (it changed since it was counted).
    """
    import numpy as np

    want = list(indices)
    out: list[int] = []
    seen = 0                                                # lines that started before the block
    if start == 0 and size > 0:
        if want and want[0] == 0:
            out.append(0)
            want.pop(0)
        seen = 1
    lo, hi = max(start - 1, 0), min(stop - 1, size - 1)
    try:
        with open(path, "rb") as fh:
            for pos, block in _blocks(fh, lo, hi):
                if not want:
                    break
                c = block.count(b"\n")
                if seen + c > want[0]:
                    nl = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
                    while want and want[0] < seen + c:
                        out.append(pos + int(nl[want.pop(0) - seen]) + 1)
                seen += c
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    if want:
        raise SourceError(f"{path}: changed while it was read (fewer lines than counted in bytes {start}-{stop})")
    return out


def shard_lines(lines_per_shard_: int) -> int:
    """The lines per jsonl shard: ``lines_per_shard_`` rounded to a multiple of LINE_STEP (at
    least LINE_STEP), as ``cut_shards`` cuts.

    Returns:
        ``max(1, round(lines_per_shard_ / LINE_STEP)) * LINE_STEP``.
    """
    return max(1, round(lines_per_shard_ / LINE_STEP)) * LINE_STEP


def shard_starts(counts: list[int], per_shard: int) -> dict[int, list[int]]:
    """Where the shards of one file start: for each range (by index) the 0-based indices, among
    the range's lines, of the lines that start a shard (every ``per_shard``-th line of the file).

    Args:
        counts: the lines counted in each range of the file, in order (``count_lines``).
        per_shard: lines per shard (``shard_lines``).

    Returns:
        ``{range index: [line index within the range, ...]}`` for the ranges holding a shard start.
    """
    out: dict[int, list[int]] = {}
    total = sum(counts)
    r, before = 0, 0                                        # range r holds lines [before, before + counts[r])
    for first in range(0, total, per_shard):
        while first >= before + counts[r]:
            before += counts[r]
            r += 1
        out.setdefault(r, []).append(first - before)
    return out


def jsonl_shards(source: int, path: str, size: int, total_lines: int, per_shard: int, starts: list[int]) -> list[Shard]:
    """The shards of one jsonl file from the byte offsets of its shard starts.

    Args:
        source: the source's index in the run's source list.
        path: the file.
        size: its size in bytes.
        total_lines: its line count.
        per_shard: lines per shard (``shard_lines``).
        starts: the byte offset of lines 1, 1 + per_shard, ... (``line_offsets``), in order.

    Returns:
        One ``Shard`` per byte range (``first_line`` = 1 + k x per_shard, the last ending at
        ``size``), or one whole-file ``Shard`` for a file without lines.
    """
    if total_lines == 0:
        return [Shard(source, path)]
    return [Shard(source, path, start=a, stop=starts[k + 1] if k + 1 < len(starts) else size,
                  first_line=k * per_shard + 1) for k, a in enumerate(starts)]


def lines_per_shard(total_lines: int, partition_rows: int, min_shards: int) -> int:
    """About ``partition_rows`` lines per shard, fewer when that would leave fewer than
    ``min_shards`` shards (every worker gets work).

    Returns:
        The lines per shard: ``min(partition_rows, ceil(total_lines / min_shards))``, at least 1;
        ``partition_rows`` when ``total_lines`` is 0.
    """
    if total_lines <= 0:
        return partition_rows
    return max(1, min(partition_rows, math.ceil(total_lines / max(1, min_shards))))


def read_shard(shard: Shard, spec: dict[str, Any], on_bad_line: str) -> ShardRead:
    """Read one shard (on a worker) into records of the pipeline schema (``sources._record``);
    a bad line or record raises ``SourceError`` (file:line) or, with on_bad_line=skip, is counted.

    Returns:
        The ``ShardRead``: the records in file order (``id`` None where the record has none,
        ``source`` and ``_where`` = ``file:line`` or ``file#row`` set) and the bad lines skipped.

    Raises:
        SourceError: a bad line or record with ``on_bad_line=error`` (``file:line`` named).
    """
    out = ShardRead()
    path = Path(shard.path)
    if shard.row_group is not None:
        import pyarrow.parquet as pq

        import pyarrow as pa

        try:
            pf = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(damaged_arrow(path, exc)) from None
        base = sum(pf.metadata.row_group(g).num_rows for g in range(shard.row_group))
        try:
            rows = pf.read_row_group(shard.row_group).to_pylist() if pf.metadata.num_row_groups else []
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(damaged_arrow(path, exc, f" row group {shard.row_group}")) from None
        items = ((f"{path}#{base + i}", rec) for i, rec in enumerate(rows))
    elif shard.start is not None:
        def lines():
            try:
                for lineno, rec in iter_jsonl(path, on_bad_line=on_bad_line, bad=out.bad, objects_only=False,
                                              byte_range=(shard.start, shard.stop), first_line=shard.first_line):
                    yield f"{path}:{lineno}", rec
            except InputError as exc:
                raise SourceError(f"{exc}; set on_bad_line=skip to skip and count such lines") from None
        items = lines()
    else:
        items = _iter_file(path, on_bad_line, out.bad)
    for where, rec in items:
        try:
            row = _record(spec, where, rec)
        except SourceError as exc:
            if on_bad_line == "skip":
                out.bad.add(where, str(exc).split(": ", 1)[-1])
                continue
            raise SourceError(f"{exc}; set on_bad_line=skip to skip and count such records") from None
        rid = rec.get(spec["id_field"]) if isinstance(rec, dict) else None
        row["id"] = str(rid) if rid not in (None, "") else None
        row["source"] = spec["name"]
        row["_where"] = where
        out.records.append(row)
    return out


def read_pack(pack: list[Shard], spec: dict[str, Any], on_bad_line: str) -> ShardRead:
    """Read a pack of consecutive shards of one source (``pack_shards``) as one: ``read_shard``
    on each, in order, the records and bad lines joined.

    Returns:
        One ``ShardRead`` holding the shards' records in order.

    Raises:
        SourceError: as ``read_shard`` (the first bad shard's ``file:line``).
    """
    out = ShardRead()
    for shard in pack:
        one = read_shard(shard, spec, on_bad_line)
        out.records += one.records
        out.bad.extend(one.bad)
    return out


def shard_report(read: ShardRead) -> dict[str, Any]:
    """What goes back to the driver for one shard.

    Returns:
        ``{"rows": record count, "bad": the shard's ``BadLines`` tally}``.
    """
    return {"rows": len(read.records), "bad": read.bad}


def number_shard(read: ShardRead, name: str, id_offset: int, order_offset: int, levels: list[str],
                 convert_to: str | None = None, index: int = 0) -> pd.DataFrame:
    """The shard's rows as a partition (on a worker): ids ``<name>-<n>`` for records without one
    (n counted over the source from ``id_offset``), ``_order`` from ``order_offset``; columns
    id, source, _order, code, desc_<level>..., _where (dropped before the first stage).
    ``convert_to``: a folder that gets the converted records as ``part-<index>.jsonl``.

    Returns:
        The partition: one row per record, columns ``id``, ``source``, ``_order`` (int),
        ``code``, ``desc_<level>``... and ``_where``; ``read.records`` is emptied (memory).

    Raises:
        OutputError: ``convert_to`` is given and the converted part cannot be written.
    """
    from ..io import jsonl_text, write_text_atomic
    from .writers import part_name

    cols = ["id", "source", "code", *[f"desc_{lvl}" for lvl in levels]]
    recs = read.records
    for n, r in enumerate(recs):
        if r["id"] is None:
            r["id"] = f"{name}-{id_offset + n}"
    if convert_to is not None:
        write_text_atomic(Path(convert_to) / f"{part_name(index)}.jsonl",
                          jsonl_text({k: v for k, v in r.items() if k != "_where"} for r in recs))
    df = pd.DataFrame([{c: r[c] for c in cols} for r in recs], columns=cols)
    df.insert(2, "_order", range(order_offset, order_offset + len(df)))
    df["_where"] = pd.Series([r["_where"] for r in recs], index=df.index, dtype=object)
    read.records = []
    return df


def _bucket(values: list[str], buckets: int) -> list[int]:
    return [int.from_bytes(hashlib.blake2b(v.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
            % buckets for v in values]


def id_buckets(df: pd.DataFrame, buckets: int) -> list[pd.DataFrame]:
    """The partition's (id, _order, _where, source) split into ``buckets`` frames by a hash of the id.

    Returns:
        ``buckets`` frames (some possibly empty) with the columns ``id``, ``_order``, ``_where`` and ``source``;
        a row goes to bucket ``blake2b-64(id) % buckets``, so equal ids always land in the same one.
    """
    keys = df[["id", "_order", "_where", "source"]]
    b = pd.Series(_bucket(keys["id"].astype(str).tolist(), buckets), index=keys.index)
    return [keys[b == i] for i in range(buckets)]


def first_repeat(*frames: pd.DataFrame) -> tuple[int, str] | None:
    """The first id, in input order, that repeats an earlier one.

    Args:
        *frames: the (id, _order, _where) frames of one bucket (``id_buckets``), from every partition.

    Returns:
        ``(input order of the repeat, message naming both places)``, or None when no id repeats.
    """
    if not frames:
        return None
    keys = pd.concat(frames, ignore_index=True).sort_values("_order", kind="stable")
    dup = keys["id"].duplicated(keep="first")
    if not dup.any():
        return None
    row = keys[dup].iloc[0]
    first = keys[(keys["id"] == row["id"]) & ~dup].iloc[0]
    return int(row["_order"]), repeat_message(row["_where"], row["id"], row["source"], first["_where"], first["source"])


def repeat_message(where: str, rid: str, source: str, first_where: str, first_source: str) -> str:
    """The one line for an id that repeats an earlier one, naming both places and both sources.

    Returns:
        ``"<where>: id '<id>' (source '<s>') repeats the id of <first where> (source '<s0>'); ids must be
        unique"`` and, when the sources differ, how to tell them apart (their own ``id_field``, or one
        naming a field the records lack: ids ``<name>-<n>``); for one source listed twice, that.
    """
    msg = (f"{where}: id {rid!r} (source {source!r}) repeats the id of {first_where} (source {first_source!r}); "
           "ids must be unique")
    same_file = where.rsplit(":", 1)[0].split("#")[0] == first_where.rsplit(":", 1)[0].split("#")[0]
    if source != first_source and same_file:
        return msg + " (the same file is read by both sources: list it once)"
    if source != first_source:
        return msg + (f" (two sources numbering their records alike? give {source!r} an id_field naming a field "
                      f"its records lack: its ids are then '{source}-<n>')")
    return msg
