"""Sources as shards, read by the workers (the reading step of the pipeline).

The driver lists *shards*, never rows, and every input format ends up as partitions of about
``engine.partition_rows`` rows (``per`` below), read by the workers:

===================  ==========================================================================
plain jsonl          byte ranges of ``per`` whole lines, read in place (seek) - see below
parquet              a row group of at most ``per`` rows is one shard, read in place
                     (``read_row_group``); a bigger one (pandas/pyarrow write up to 1Mi rows per
                     group) is streamed ONCE by one worker task (``stage_row_group``:
                     ``iter_batches``, a buffered read, never the whole group in memory) into
                     Arrow part files of ``per`` rows in the run's work folder, which are the
                     shards. Reading a row range of a parquet group in place would decode the
                     group from its start for every shard (quadratic); one streamed copy is linear.
Arrow (``.arrow``)   row ranges of ``per`` rows, read in place through a memory map (record
                     batches before the range are skipped without decoding - unless the file
                     uses Arrow's buffer compression, whose batches are decompressed as they are
                     passed; the range's slices are the only rows converted). Nothing is copied.
compressed jsonl     (``.gz``/``.bz2``/``.xz``/``.zst``) cannot be seeked: one worker task streams
                     the file once (``stage_lines``) and writes its lines, byte for byte, into
                     plain jsonl part files of ``chunk`` lines; the parts are the shards and are
                     read like plain jsonl, with the input file's name and line numbers.
JSON list            one JSON document (``[...]`` or ``{"data": [...]}``, compressed or not): one
                     worker task parses it (the standard parser needs the whole document; a
                     streaming parser such as ijson would be a new dependency that reads numbers
                     as Decimal) and writes its records as jsonl part files of ``chunk`` records
                     (``stage_records``); the parts are the shards, numbered ``file#index``. That
                     task holds that one file once; every pass after it is bounded.
===================  ==========================================================================

``chunk`` (``stage_chunk``) is ``partition_rows`` / (2 x workers), so a small compressed file still
gives every worker work; consecutive parts are packed back to ``per`` rows (``pack_shards``). Part
files live in ``<work_dir>/read/`` (removed with the work folder when the run ends): a compressed
or JSON-list corpus, and the big row groups of a parquet one, are on disk once more, uncompressed,
for the run.

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
by one task (``read_pack``) into one partition of about a shard's rows (row or line counts; bytes
only for a file read whole), so 1,000 files of 2 rows are a few partitions, not 1,000; rows, ids and lines stay.

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
from .sources import SourceError, _iter_file, _record, json_records

#: shards hold a multiple of LINE_STEP lines (``shard_lines``)
LINE_STEP = 16
#: the byte ranges a jsonl file's lines are counted in, one worker task each: the driver holds one
#: count per range (a 100 GB corpus: 3,200 counts)
SCAN_RANGE_BYTES = 32 * 1024 * 1024
#: bytes read at a time by ``count_lines`` / ``line_offsets``
_BLOCK = 1 << 20


@dataclass
class Shard:
    """One unit of reading of the input file ``path`` (the file named in ids' places and messages):
    its lines [``first_line``, ...) from byte ``start`` to ``stop`` (jsonl), its row group
    ``row_group`` (parquet), its records [``rows[0]``, ``rows[1]``) (Arrow), or the file whole.

    ``part``: a part file in the work folder cut from ``path`` (``stage_lines``, ``stage_records``,
    ``stage_row_group``), read instead of ``path``: jsonl lines (``start``/``stop``/``first_line``
    within the part, line numbers those of ``path``), records of a JSON list (``numbered``: jsonl,
    one record a line, named ``path#<first_row + i>``) or Arrow rows (``rows`` within the part,
    named ``path#<first_row + i>``).
    """

    source: int                      # index of the source (its spec) in the run's source list
    path: str
    start: int | None = None
    stop: int | None = None
    first_line: int = 1
    row_group: int | None = None
    rows: tuple[int, int] | None = None
    first_row: int = 0
    part: str | None = None
    numbered: bool = False

    def label(self) -> str:
        """The shard for messages.

        Returns:
            The path, followed by ``row group <g>`` (parquet), ``from line <n>`` (jsonl lines) or
            ``from row <n>`` (records); the path alone for a whole file.
        """
        if self.row_group is not None:
            return f"{self.path} row group {self.row_group}"
        if self.rows is not None or self.numbered:
            return f"{self.path} from row {self.first_row}"
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


def describe_file(path: str) -> tuple[str, Any, int]:
    """The cheap look at one file (on a worker): what kind of shards it gives.

    Returns:
        ``(kind, n, size)`` with ``size`` the file's size in bytes and, per kind: ``("jsonl",
        size)`` (plain jsonl: cut into byte ranges), ``("lines", 0)`` (compressed jsonl: staged,
        ``stage_lines``), ``("records", 0)`` (a JSON list, compressed or not: staged,
        ``stage_records``), ``("parquet", [rows per row group])``, ``("arrow", rows)`` (counted
        through a memory map) or ``("file", 1)`` (read whole).

    Raises:
        SourceError: the file cannot be read (the message names it).
    """
    import pyarrow as pa

    from ..io import compression_of
    from .sources import _base_name, _looks_like_jsonl

    p = Path(path)
    base = _base_name(p.name)
    try:
        size = p.stat().st_size
        if p.name.endswith(".parquet"):
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(p).metadata
            return "parquet", [meta.row_group(g).num_rows for g in range(meta.num_row_groups)], size
        if p.name.endswith(".arrow"):
            return "arrow", sum(b.num_rows for b in _arrow_batches(p)), size
        if base.endswith((".jsonl", ".json")):
            lines = base.endswith(".jsonl") or _looks_like_jsonl(p)
            if not compression_of(p.name):
                return ("jsonl", size, size) if lines else ("records", 0, size)
            return ("lines" if lines else "records"), 0, size
    except (pa.ArrowException, OSError) as exc:             # pyarrow's IO errors are plain OSErrors
        raise SourceError(damaged_arrow(path, exc)) from None
    return "file", 1, size


def _arrow_batches(path: str | Path):
    """The record batches of an Arrow IPC file (stream or file format), memory-mapped: a batch's
    buffers are not read until its rows are used.

    Yields:
        ``pyarrow.RecordBatch`` objects, in file order.

    Raises:
        pyarrow.ArrowException, OSError: the file is not Arrow IPC or is damaged.
    """
    import pyarrow as pa

    with pa.memory_map(str(path)) as src:
        try:
            reader = pa.ipc.open_stream(src)
        except pa.ArrowInvalid:
            src.seek(0)
            f = pa.ipc.open_file(src)
            for i in range(f.num_record_batches):
                yield f.get_batch(i)
            return
        yield from reader


def arrow_rows(path: str | Path, start: int, stop: int) -> list[dict[str, Any]]:
    """Rows [start, stop) of an Arrow IPC file as records (``to_pylist``), converting only those.

    Returns:
        The records, in file order (fewer when the file holds fewer rows).

    Raises:
        pyarrow.ArrowException, OSError: the file is not Arrow IPC or is damaged.
    """
    import pyarrow as pa

    out: list[dict[str, Any]] = []
    pos = 0
    for batch in _arrow_batches(path):
        n = batch.num_rows
        if pos + n > start and pos < stop:
            a = max(start - pos, 0)
            out += pa.Table.from_batches([batch.slice(a, min(stop - pos, n) - a)]).to_pylist()
        pos += n
        if pos >= stop:
            break
    return out


def stage_chunk(partition_rows: int, min_shards: int) -> int:
    """The lines (or records) per part file of a staged file (``stage_lines``, ``stage_records``,
    ``stage_row_group``): ``partition_rows / min_shards`` as ``shard_lines`` rounds it, so a small
    file still gives every worker a part; parts are packed back to about ``partition_rows`` rows.

    Returns:
        ``shard_lines(ceil(partition_rows / max(1, min_shards)))``.
    """
    return shard_lines(math.ceil(max(1, partition_rows) / max(1, min_shards)))


def _part_path(folder: str | Path, k: int, suffix: str) -> Path:
    from .writers import part_name

    return Path(folder) / f"{part_name(k)}{suffix}"


def stage_lines(path: str, chunk: int, folder: str) -> list[tuple[str, int, int, int]]:
    """Stream a compressed jsonl file once (on a worker) into plain part files of ``chunk`` lines
    each, the lines copied byte for byte (BOM, blank and bad lines included, so the read names the
    input's own line numbers); at most one part's lines are held.

    Args:
        path: the compressed file (``.gz``/``.bz2``/``.xz``/``.zst``).
        chunk: lines per part (``stage_chunk``).
        folder: the folder for ``part-<k>.jsonl`` (created).

    Returns:
        Per part, in order: ``(part path, its first line's number in the input, lines, bytes)``;
        [] for a file without lines.

    Raises:
        SourceError: the file cannot be read or decompressed (one line naming it).
        OutputError: a part cannot be written.
    """
    import itertools

    from ..io import _decompressed_lines, open_data, write_chunks_atomic

    out: list[tuple[str, int, int, int]] = []
    try:
        with open_data(path) as fh:
            lines = _decompressed_lines(fh, Path(path))
            first = 1
            while True:
                block = list(itertools.islice(lines, max(1, chunk)))
                if not block:
                    break
                target = _part_path(folder, len(out), ".jsonl")
                out.append((str(target), first, len(block), write_chunks_atomic(target, block)))
                first += len(block)
    except InputError as exc:
        raise SourceError(str(exc)) from None
    return out


def stage_records(path: str, chunk: int, folder: str) -> list[tuple[str, int, int, int]]:
    """Parse a JSON-list file (``[...]`` or ``{"data": [...]}``; compressed or not) on a worker and
    write its records as jsonl part files of ``chunk`` records (``io.jsonl_text``: read back as the
    same values, lone surrogates included). The parse holds the document once (see the module
    docstring); the parts, not the document, are what the passes read.

    Returns:
        Per part, in order: ``(part path, index of its first record in the list, records, bytes)``.

    Raises:
        SourceError: the file cannot be read, is not valid UTF-8/JSON (``file:line``), or is not a
            list of records.
        OutputError: a part cannot be written.
    """
    from ..io import jsonl_text, write_bytes_atomic

    rows = json_records(path)
    out: list[tuple[str, int, int, int]] = []
    step = max(1, chunk)
    for a in range(0, len(rows), step):
        text = jsonl_text(rows[a:a + step]).encode("utf-8")
        target = _part_path(folder, len(out), ".jsonl")
        write_bytes_atomic(target, text)
        out.append((str(target), a, min(step, len(rows) - a), len(text)))
    return out


def stage_row_group(path: str, group: int, first_row: int, chunk: int, folder: str) -> list[tuple[str, int, int, int]]:
    """Stream one parquet row group (on a worker) into Arrow IPC part files of ``chunk`` rows:
    ``ParquetFile(buffer_size=1 MiB).iter_batches`` reads the column chunks piecewise, so about one
    part's rows are held, never the group.

    Args:
        path: the parquet file.
        group: the row group.
        first_row: the index in the file of the group's first row (parts are named ``path#<row>``).
        chunk: rows per part.
        folder: the folder for ``part-<k>.arrow`` (created).

    Returns:
        Per part, in order: ``(part path, index of its first row in the file, rows, bytes)``.

    Raises:
        SourceError: the file cannot be read as parquet (``damaged_arrow``: file and row group named).
        OutputError: a part cannot be written.
    """
    import os
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..io import OutputError, output_error

    Path(folder).mkdir(parents=True, exist_ok=True)
    out: list[tuple[str, int, int, int]] = []
    held: list = []
    n = 0
    step = max(1, chunk)

    def flush() -> None:
        target = _part_path(folder, len(out), ".arrow")
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        os.close(fd)
        try:
            with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_file(sink, held[0].schema) as w:
                for b in held:
                    w.write_batch(b)
            os.replace(tmp, target)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise output_error(exc, target) from None
        out.append((str(target), first_row + sum(o[2] for o in out), n, target.stat().st_size))

    try:
        pf = pq.ParquetFile(path, buffer_size=1 << 20)
        for batch in pf.iter_batches(batch_size=min(step, 65536), row_groups=[group]):
            while batch.num_rows:
                take = min(step - n, batch.num_rows)
                held.append(batch.slice(0, take))
                batch = batch.slice(take)
                n += take
                if n == step:
                    flush()
                    held, n = [], 0
    except OutputError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(damaged_arrow(path, exc, f" row group {group}")) from None
    if n:
        flush()
    return out


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
    out = ShardRead(bad=BadLines(keep_all=True))
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
    elif shard.rows is not None:                          # Arrow rows: the file in place, or a staged part
        import pyarrow as pa

        try:
            rows = arrow_rows(shard.part or path, *shard.rows)
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(damaged_arrow(path, exc, f" from row {shard.first_row}")) from None
        items = ((f"{path}#{shard.first_row + i}", rec) for i, rec in enumerate(rows))
    elif shard.numbered:                                  # a JSON list's records, staged as jsonl
        def records():
            for i, (_, rec) in enumerate(iter_jsonl(shard.part, objects_only=False)):
                yield f"{path}#{shard.first_row + i}", rec
        items = records()
    elif shard.start is not None:
        def lines():
            try:
                for lineno, rec in iter_jsonl(shard.part or path, on_bad_line=on_bad_line, bad=out.bad,
                                              objects_only=False, byte_range=(shard.start, shard.stop),
                                              first_line=shard.first_line, name=path):
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
    out = ShardRead(bad=BadLines(keep_all=True))
    for shard in pack:
        one = read_shard(shard, spec, on_bad_line)
        out.records += one.records
        out.bad.extend(one.bad)
    return out


def shard_report(read: ShardRead) -> dict[str, Any]:
    """What goes back to the driver for one shard: counts, never the rows or every bad line.

    Returns:
        ``{"rows": record count, "bad": the shard's ``BadLines`` tally}`` (count, counts per reason,
        up to 5 examples; its list of every skipped line stays on the worker, ``write_bad_lines``).
    """
    b = read.bad
    return {"rows": len(read.records), "bad": BadLines(b.skipped, list(b.examples), dict(b.reasons))}


#: the stage name of a skipped bad input line in the dropped rows (``dropped_dir/00_bad_lines.jsonl``)
BAD_LINES_STAGE = "read"
#: the dropped-row file of the skipped input lines, before every stage's (``01_clean.jsonl``, ...)
BAD_LINES_FILE = "00_bad_lines.jsonl"


def write_bad_lines(read: ShardRead, index: int, folder: str, source: str, root: str) -> int:
    """Write the pack's skipped input lines (on a worker) as dropped rows, one a line:
    ``{"id": null, "stage": "read", "reason": <class, e.g. "not valid JSON">, "detail": <the full
    reason>, "source": <source name>, "where": "<file>:<line>" or "<file>#<record>"}`` with the file
    relative to ``root`` (the source's folder: the dropped rows do not depend on where the data
    lies, like the other dropped-row files), into ``<folder>/part-<index>.jsonl`` (joined in pack
    order into ``dropped_dir/00_bad_lines.jsonl``).

    Returns:
        The number of lines written.

    Raises:
        OutputError: the part cannot be written.
    """
    from ..io import bad_line_reason, jsonl_text, write_text_atomic
    from .writers import part_name

    prefix = str(root).rstrip("/") + "/"
    rows = [{"id": None, "stage": BAD_LINES_STAGE, "reason": bad_line_reason(reason), "detail": reason,
             "source": source, "where": where[len(prefix):] if where.startswith(prefix) else where}
            for where, reason in read.bad.lines]
    write_text_atomic(Path(folder) / f"{part_name(index)}.jsonl", jsonl_text(rows))
    read.bad.lines = []
    return len(rows)


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
