"""One place for the product's file I/O: reading jsonl/json/text input, writing outputs atomically.

Reading
    ``iter_jsonl(path)`` / ``read_jsonl(path)`` are the only jsonl readers of the package (curation
    sources, SFT splits, predictions, VerilogEval answers, metrics). They accept a UTF-8 byte-order
    mark (BOM) at the start of the file, and every bad line raises ``InputError`` with one line of
    text that names the file and line::

        data/x.jsonl:7: not valid UTF-8 (byte 0xff at column 12)
        data/x.jsonl:9: not valid JSON (Expecting ',' delimiter at column 40)
        data/x.jsonl:11: expected a JSON object, got list

    With ``on_bad_line="skip"`` such lines are skipped and counted in a ``BadLines`` tally instead.

Writing
    ``write_bytes_atomic`` and friends write a temporary file in the target folder and
    ``os.replace`` it over the target, so a reader sees the old file or the new one, never half of
    one. ``replace_dir_atomic(target)`` does the same for a whole folder of outputs written as a set
    (a fresh sibling folder is filled, then swapped in). Any ``OSError`` while writing (no space
    left, permission denied, read-only file system) becomes ``OutputError`` naming the cause and
    the path: ``no space left on device writing data/merged/high_level/train.jsonl``.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Iterator, Sequence

BOM = b"\xef\xbb\xbf"
ON_BAD_LINE = ("error", "skip")


class InputError(ValueError):
    """Bad input file or line; ``str(exc)`` is one line naming the file and line (or field)."""


class OutputError(OSError):
    """An output could not be written; ``str(exc)`` is one line: the cause and the path."""

    def __str__(self) -> str:  # one line, without OSError's "[Errno 28]" prefix
        return self.strerror or super().__str__()


def bad_line_reason(reason: str) -> str:
    """The class of a bad line's reason, for counting per reason: the text before its first
    `` (`` (the details: byte, column, character).

    Returns:
        E.g. ``"not valid UTF-8"`` for ``"not valid UTF-8 (byte 0xe9 at column 3)"``, ``"not valid JSON"``,
        ``"expected a JSON object, got list"``, ``"field 'code' is missing or not a string"``.
    """
    return reason.split(" (", 1)[0].strip() or reason


@dataclass
class BadLines:
    """Tally of input lines skipped under ``on_bad_line=skip``: a count, the count per reason
    (``bad_line_reason``), up to 5 examples and, when ``keep_all`` is set, every skipped line as
    ``(where, reason)`` in the order met (``lines``; the curation's workers keep them per shard and
    write them to ``dropped_dir/00_bad_lines.jsonl``, so the driver holds only the counts)."""

    skipped: int = 0
    examples: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    keep_all: bool = False
    lines: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, reason: str) -> None:
        """Count one skipped line; ``where`` (``file:line``) and ``reason`` are kept as an example (first 5)."""
        self.skipped += 1
        key = bad_line_reason(reason)
        self.reasons[key] = self.reasons.get(key, 0) + 1
        if len(self.examples) < 5:
            self.examples.append(f"{where}: {reason}")
        if self.keep_all:
            self.lines.append((where, reason))

    def extend(self, other: BadLines) -> None:
        """Add another tally's count, counts per reason and examples (the first 5 examples overall are
        kept; its ``lines`` too when this tally keeps them all)."""
        self.skipped += other.skipped
        self.examples = (self.examples + other.examples)[:5]
        for k, v in other.reasons.items():
            self.reasons[k] = self.reasons.get(k, 0) + v
        if self.keep_all:
            self.lines += other.lines


# -- reading ---------------------------------------------------------------------------------------
def json_error_text(exc: json.JSONDecodeError) -> str:
    """The reason of a JSON decode error with its column: ``"Expecting ',' delimiter at column 40"``.
    The stdlib's control-character message already ends in "at" ("Invalid control character '\\n' at"),
    which is not repeated.

    Returns:
        ``"<message> at column <n>"``.
    """
    msg = exc.msg[:-3] if exc.msg.endswith(" at") else exc.msg
    return f"{msg} at column {exc.colno}"


def decode_utf8(data: bytes, where: str, *, line_start: int = 1) -> str:
    """Decode ``data`` as UTF-8 (a leading BOM dropped), or raise ``InputError``.

    ``where`` names the file; the error gives the 1-based line (counted from ``line_start``) and
    column (in characters, 1-based) of the first invalid byte:
    ``<where>:<line>: not valid UTF-8 (byte 0xff at column 3)``.

    Returns:
        The decoded text, without the BOM (a BOM is removed only at the very start of ``data``).

    Raises:
        InputError: ``data`` is not valid UTF-8 (``where:line`` and column named).
    """
    if data.startswith(BOM):
        data = data[len(BOM):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = data[: exc.start]
        line = line_start + head.count(b"\n")
        col_bytes = head[head.rfind(b"\n") + 1:]
        col = len(col_bytes.decode("utf-8", errors="replace")) + 1
        raise InputError(f"{where}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {col})") from None


def read_text(path: str | Path) -> str:
    """The whole file as text: UTF-8, a leading BOM dropped; ``InputError`` (file:line) on bad bytes
    or when the file cannot be read.

    Returns:
        The file's full content, decoded as UTF-8, without a leading BOM (line endings as stored).

    Raises:
        InputError: the file cannot be read or is not valid UTF-8.
    """
    path = Path(path)
    if compression_of(path):
        return decode_utf8(read_data_bytes(path), str(path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({_cause(exc)})") from None
    return decode_utf8(data, str(path))


def read_json(path: str | Path) -> Any:
    """One JSON document (BOM accepted); ``InputError`` with file:line on bad bytes or JSON.

    Returns:
        The parsed document as ``json.loads`` gives it: a dict, list, str, int, float, bool or None.

    Raises:
        InputError: the file cannot be read, is not valid UTF-8 or not valid JSON.
    """
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON ({json_error_text(exc)})") from None


def iter_jsonl(path: str | Path, *, on_bad_line: str = "error", bad: BadLines | None = None,
               objects_only: bool = True, byte_range: tuple[int, int] | None = None,
               first_line: int = 1, name: str | Path | None = None) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, value)`` for each non-blank line of a jsonl file (1-based lines).

    A UTF-8 BOM at the start is accepted. A line that is not valid UTF-8, not valid JSON, or (with
    ``objects_only``) not a JSON object raises ``InputError`` ("file:line: reason"), or with
    ``on_bad_line="skip"`` is skipped and counted in ``bad``. Raises ``InputError`` when the file
    cannot be opened.

    ``byte_range=(start, stop)``: only the lines that start at a byte offset in [start, stop)
    (``start`` must be a line start, e.g. from ``jsonl_line_starts``); ``first_line`` is the line
    number of the line at ``start``, so errors still name the file's own line. ``name``: the file
    named in messages and in ``bad`` (default ``path``), e.g. the input file a part file was cut
    from (``curate.shards.stage_lines``).

    Raises:
        ValueError: ``on_bad_line`` is not ``error`` or ``skip``.
        InputError: the file cannot be opened, or a bad line with ``on_bad_line=error``.
    """
    if on_bad_line not in ON_BAD_LINE:
        raise ValueError(f"on_bad_line must be one of {ON_BAD_LINE}, not {on_bad_line!r}")
    path = Path(path)
    if byte_range is not None and compression_of(path):
        raise ValueError(f"{path}: a compressed file cannot be read by byte range")
    fh = open_data(path)
    shown = Path(name) if name is not None else path
    with fh:
        lines: Iterable[bytes] = _decompressed_lines(fh, path)
        if byte_range is not None:
            fh.seek(byte_range[0])
            lines = _lines_until(fh, byte_range[0], byte_range[1])
        for lineno, raw in enumerate(lines, start=first_line):
            if lineno == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            if not raw.strip():
                continue
            try:
                text = decode_utf8(raw, str(shown), line_start=lineno)
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{shown}:{lineno}: not valid JSON ({json_error_text(exc)})") from None
                if objects_only and not isinstance(value, dict):
                    raise InputError(f"{shown}:{lineno}: expected a JSON object, got {type(value).__name__}")
            except InputError as exc:
                if on_bad_line == "skip":
                    if bad is not None:
                        reason = str(exc).split(": ", 1)[1] if ": " in str(exc) else str(exc)
                        bad.add(f"{shown}:{lineno}", reason)
                    continue
                raise
            yield lineno, value


#: compressed data files read through a decompressor (one stream: read whole, never by byte range)
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")


def compression_of(path: str | Path) -> str | None:
    """The compression suffix of ``path`` (``".gz"``, ``".bz2"``, ``".xz"``, ``".zst"``), or None.

    Returns:
        The suffix, or None for a plain file.
    """
    name = Path(path).name
    return next((c for c in COMPRESSED_SUFFIXES if name.endswith(c)), None)


def open_data(path: str | Path):
    """Open a data file for reading bytes, decompressing ``.gz``/``.bz2``/``.xz`` (stdlib) and
    ``.zst`` (with the ``zstandard`` package) on the fly.

    Returns:
        A binary file object (close it).

    Raises:
        InputError: the file cannot be opened, or it is ``.zst`` and ``zstandard`` is not installed
            (the message says to decompress it).
    """
    path = Path(path)
    comp = compression_of(path)
    try:
        if comp == ".gz":
            import gzip
            return gzip.open(path, "rb")
        if comp == ".bz2":
            import bz2
            return bz2.open(path, "rb")
        if comp == ".xz":
            import lzma
            return lzma.open(path, "rb")
        if comp == ".zst":
            try:
                import zstandard
            except ImportError:
                raise InputError(f"{path}: zstd-compressed and the zstandard package is not installed; "
                                 f"decompress it first (zstd -d {path}) or pip install zstandard") from None
            return zstandard.open(path, "rb")
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({_cause(exc)})") from None


def _decompressed_lines(fh, path: Path) -> Iterator[bytes]:
    """The lines of ``fh``; a broken compressed stream is one ``InputError`` naming the file.

    Yields:
        Each line of ``fh`` as it reads it (bytes or text, as ``fh`` gives them).

    Raises:
        InputError: the compressed stream is damaged or not what its name says.
    """
    import lzma
    import zlib
    try:
        yield from fh
    except (EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
        raise InputError(f"{path}: cannot decompress ({type(exc).__name__}: {exc}); the file is damaged or "
                         "not what its name says") from None


def read_data_bytes(path: str | Path) -> bytes:
    """The whole (decompressed) content of a data file (see ``open_data``).

    Returns:
        The bytes.

    Raises:
        InputError: the file cannot be read or decompressed.
    """
    path = Path(path)
    with open_data(path) as fh:
        return b"".join(_decompressed_lines(fh, path))


def _lines_until(fh, pos: int, stop: int) -> Iterator[bytes]:
    for raw in fh:
        if pos >= stop:
            return
        pos += len(raw)
        yield raw


def jsonl_line_starts(path: str | Path, every: int = 1) -> tuple[int, list[int]]:
    """``(number of lines, byte offsets of lines 1, 1 + every, 1 + 2 * every, ...)`` of a file
    (lines end at b"\\n"; a last line without one counts). A cheap pass (no decoding) that lets
    several readers share one file through ``iter_jsonl(byte_range=...)``.

    Returns:
        ``(n_lines, starts)``: the number of lines (blank ones included) and the 0-based byte offsets
        of every ``every``-th line start, beginning with 0 for line 1 (``ceil(n_lines / every)``
        offsets; an empty file gives ``(0, [])``).

    Raises:
        InputError: the file cannot be read.
    """
    path = Path(path)
    starts: list[int] = []
    n = 0
    pos = 0
    try:
        with open(path, "rb") as fh:
            for raw in fh:
                if n % every == 0:
                    starts.append(pos)
                n += 1
                pos += len(raw)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({_cause(exc)})") from None
    return n, starts


def read_jsonl(path: str | Path, *, on_bad_line: str = "error", bad: BadLines | None = None) -> list[dict[str, Any]]:
    """All JSON objects of a jsonl file, in order (see ``iter_jsonl`` for errors and skipping).

    Returns:
        One dict per non-blank line, in file order; with ``on_bad_line="skip"`` the bad lines are
        left out (and counted in ``bad``).

    Raises:
        ValueError: ``on_bad_line`` is not ``error`` or ``skip``.
        InputError: the file cannot be opened, or a bad line with ``on_bad_line=error``.
    """
    return [row for _, row in iter_jsonl(path, on_bad_line=on_bad_line, bad=bad)]


# -- writing ---------------------------------------------------------------------------------------
def _cause(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno == errno.EEXIST and exc.filename:      # mkdir(exist_ok=True) met a file where a folder goes
        return f"a file is in the way ({exc.filename} is not a folder)"
    return exc.strerror or type(exc).__name__


def output_error(exc: OSError, path: str | Path) -> OutputError:
    """``OutputError`` with one line: ``<cause> writing <path>``.

    Returns:
        A new ``OutputError`` (not raised) carrying ``exc.errno``, the message
        ``"<cause> writing <path>"`` (cause e.g. ``no space left on device``, ``permission denied``)
        and ``filename=str(path)``.
    """
    err = OutputError(exc.errno, f"{_cause(exc)} writing {path}")
    err.filename = str(path)
    return err


def write_chunks_atomic(path: str | Path, chunks: Iterable[bytes]) -> int:
    """Stream ``chunks`` into ``path`` through a temporary file in the same folder + ``os.replace``;
    returns the bytes written. On any error the temporary file is removed, the old file (if any)
    is untouched, and ``OutputError`` ("no space left on device writing <path>") is raised.

    Returns:
        The number of bytes written (the sum of ``len(chunk)``), i.e. the new file's size.

    Raises:
        OutputError: the file cannot be written (disk full, read-only, ...); nothing is left behind.
    """  # noqa: DOC501 - raised through the factory output_error(), which ruff takes for the exception's name
    path = Path(path)
    tmp = None
    n = 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_umask())   # mkstemp makes 0600; the file gets the mode open() would give
        with os.fdopen(fd, "wb", buffering=1 << 20) as fh:
            for c in chunks:
                fh.write(c)
                n += len(c)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise output_error(exc, path) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return n


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see ``write_chunks_atomic``)."""
    write_chunks_atomic(path, (data,))


def write_text_atomic(path: str | Path, text: str) -> None:
    """``write_bytes_atomic`` of ``text`` encoded as UTF-8."""
    write_bytes_atomic(path, text.encode("utf-8"))


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _json_dumps(obj: Any, **kw: Any) -> str:
    """``json.dumps(obj, ensure_ascii=False)``, with lone surrogates (``"\\ud800"`` read from a
    JSON file or made by a model; they have no UTF-8 form) written as JSON escapes: valid UTF-8,
    read back as the same string. Outside string literals JSON has no such characters.

    Returns:
        The JSON text, with non-ASCII characters as themselves and lone surrogates as ``\\uXXXX`` escapes.
    """
    text = json.dumps(obj, ensure_ascii=False, **kw) if kw else _ENCODER.encode(obj)
    if text.isascii():       # no surrogate (a flag lookup instead of a regex scan)
        return text
    return _SURROGATE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


#: what ``json.dumps(obj, ensure_ascii=False)`` builds on every call (the same defaults)
_ENCODER = json.JSONEncoder(ensure_ascii=False)


def jsonl_text(rows: Iterable[dict[str, Any]]) -> str:
    """One ``json.dumps(row, ensure_ascii=False)`` line per row (lone surrogates escaped).

    Returns:
        The jsonl text: each row on one line ending in ``"\\n"``; ``""`` for no rows.
    """
    return "".join(_json_dumps(r) + "\n" for r in rows)


def write_jsonl_atomic(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write rows as jsonl, atomically (see ``write_bytes_atomic``)."""
    write_text_atomic(path, jsonl_text(rows))


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write one indented JSON document, atomically (see ``write_bytes_atomic``)."""
    write_text_atomic(path, _json_dumps(obj, indent=2) + "\n")


@contextlib.contextmanager
def replace_dir_atomic(target: str | Path, *, keep: Iterable[str] = ()) -> Iterator[Path]:
    """Write a folder of outputs as a set: yields a fresh sibling folder to fill; on success it
    replaces ``target`` (old contents moved aside, then deleted), on any error it is deleted and
    ``target`` is left exactly as it was (``replace_dirs_atomic`` of one folder).

    ``keep``: names of entries of the old ``target`` to carry over into the new one when the
    block did not write them (e.g. files produced by another step). The swap is two renames in the
    same folder; between them ``target`` is briefly absent, never half-written.

    Yields:
        The staging folder (an empty ``Path`` beside ``target``, named ``.<target name>.new.<random>``)
        into which the block writes the outputs; it becomes ``target`` when the block ends without error.

    Raises:
        OutputError: the folder set cannot be written or swapped in; ``target`` is unchanged. A write
            inside the block that failed with ``OutputError`` is re-raised naming the file's path
            under ``target`` rather than under the staging folder.
    """
    with replace_dirs_atomic([(target, keep)]) as (staging,):
        yield staging


@contextlib.contextmanager
def replace_dirs_atomic(targets: Sequence[tuple[str | Path, Iterable[str]]]) -> Iterator[list[Path]]:
    """Write several folders of outputs as ONE set (e.g. a run's output_dir and dropped_dir): yields
    a fresh staging folder beside each target; when the block ends without error, first every
    ``keep`` entry of every old target is copied into its staging folder (the old folders are not
    touched yet), then the targets are swapped in one after the other (two renames each). If a swap
    fails, the targets already swapped are swapped back, so every target is either all old or, once
    the last rename is done, all new. On any error the staging folders are deleted and the targets
    are left as they were. A target that is a symbolic link is resolved first: the folder it points
    to is replaced and the link is kept.

    Args:
        targets: ``(target folder, names of its old entries to carry over)`` per folder; the
            folders are swapped in this order.

    Yields:
        The staging folders, one per target, in order (``.<target name>.new.<random>`` beside it).

    Raises:
        OutputError: a folder cannot be staged or swapped in (naming the target; a write that
            failed inside the block names the file's path under its target); every target is unchanged.
    """  # noqa: DOC501 - raised through the factory output_error(), which ruff takes for the exception's name
    # a target that is a symlink (data/merged -> /bigdisk/merged) is swapped where it points: the
    # staging folder is made beside the real folder (same file system) and the link stays a link
    pairs = [(Path(os.path.realpath(t)), list(k)) for t, k in targets]
    for target, _ in pairs:
        if target.exists() and not target.is_dir():  # never swap a user's file for a folder (it would be deleted)
            err = OutputError(errno.ENOTDIR, f"{target} is a file, not a folder: not replaced by the output folder")
            err.filename = str(target)
            raise err
    stagings: list[Path] = []
    current = pairs[0][0]

    def clean() -> None:
        for st in stagings:
            shutil.rmtree(st, ignore_errors=True)
    try:
        for target, _ in pairs:
            current = target
            target.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_staging(target)
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new.{_owner_tag()}.", dir=target.parent))
            staging.chmod(0o777 & ~_umask())   # mkdtemp makes it 0700; the swapped-in folder gets the usual mode
            stagings.append(staging)
    except OSError as exc:
        clean()
        raise output_error(exc, current) from None
    try:
        yield stagings
        for (target, keep), staging in zip(pairs, stagings):
            current = target
            for name in keep if target.exists() else ():
                src = target / name
                if src.exists() and not (staging / name).exists():
                    if src.is_dir():
                        shutil.copytree(src, staging / name)
                    else:
                        shutil.copy2(src, staging / name)
        swapped: list[tuple[Path, Path | None]] = []     # (target, the folder holding its old version)
        try:
            for (target, _), staging in zip(pairs, stagings):
                current = target
                old = None
                if target.exists():
                    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.{_owner_tag()}.", dir=target.parent))
                    os.replace(target, old / target.name)
                try:
                    os.replace(staging, target)
                except BaseException:
                    if old is not None:
                        os.replace(old / target.name, target)
                        shutil.rmtree(old, ignore_errors=True)
                    raise
                swapped.append((target, old))
        except BaseException:
            for target, old in reversed(swapped):        # back to the old set
                undo = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.{_owner_tag()}.", dir=target.parent))
                os.replace(target, undo / target.name)
                if old is not None:
                    os.replace(old / target.name, target)
                    shutil.rmtree(old, ignore_errors=True)
                shutil.rmtree(undo, ignore_errors=True)
            raise
        for _, old in swapped:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    except OutputError as exc:   # a write inside the block: name the file where it will live
        clean()
        text, name = str(exc), exc.filename or ""
        for (target, _), staging in zip(pairs, stagings):
            text, name = text.replace(str(staging), str(target)), name.replace(str(staging), str(target))
        err = OutputError(exc.errno, text)
        err.filename = name or str(current)
        raise err from None
    except OSError as exc:
        clean()
        raise output_error(exc, current) from None
    except BaseException:
        clean()
        raise


def _owner_tag() -> str:
    """``<host>-<pid>`` of this process, in the names of staging folders (``remove_stale_staging``).

    Returns:
        The tag: the host name with characters other than letters, digits, ``_`` and ``-`` replaced.
    """
    import socket

    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}"


def remove_stale_staging(target: str | Path) -> list[Path]:
    """Delete the staging folders (``.<target>.new.<host>-<pid>.*``, ``.<target>.old.<host>-<pid>.*``)
    that a killed ``replace_dir_atomic`` left beside ``target``: only those made on this host by a
    process that no longer exists. Others (a live run, another host, unknown names) are left alone.

    Returns:
        The folders removed.
    """
    import socket

    target = Path(target)
    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40] or "host"
    pat = re.compile(rf"^\.{re.escape(target.name)}\.(?:new|old)\.{re.escape(host)}-(\d+)\.[^/]+$")
    removed = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = pat.match(p.name)
        if not m or not p.is_dir() or p.is_symlink():
            continue
        pid = int(m.group(1))
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue                                   # alive (or not ours to signal): in use
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def _umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def require_free_bytes(path: str | Path, need: int, what: str) -> None:
    """Raise ``OutputError`` ("not enough space on device for WHAT in PATH: needs about 1.2 GB,
    0.3 GB free") when the file system holding ``path`` has fewer than ``need`` bytes free.

    Raises:
        OutputError: not enough free space (errno ENOSPC).
    """
    free = free_bytes(path)
    if free < need:
        raise OutputError(errno.ENOSPC, f"not enough space on device for {what} in {path}: needs about "
                                        f"{need / 1e9:.2f} GB, {free / 1e9:.2f} GB free")


def free_bytes(path: str | Path) -> int:
    """Bytes free for an unprivileged writer on the file system holding ``path`` (or its nearest
    existing parent).

    Returns:
        Free space in bytes (``f_bavail * f_frsize`` of ``os.statvfs``; blocks reserved for root excluded).
    """
    p = Path(path).resolve()
    while not p.exists() and p != p.parent:
        p = p.parent
    st = os.statvfs(p)
    return st.f_bavail * st.f_frsize
