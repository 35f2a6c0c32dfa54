"""Sources: what to curate and how to get it.

``sources/huggingface_urls.jsonl`` holds one JSON object per line. Fields:

=================  ==========================================================================
``name``           short name; prefixes generated ids and names ``data/raw/<name>/``
``repo_id``        a Hugging Face hub dataset (``GaTech-EIC/MG-Verilog``) - or ``path`` instead
``path``           a local file or folder (jsonl/json/parquet/arrow), relative to the repo root
``repo_type``      ``dataset`` (default)
``revision``       branch, tag or commit (default ``main``); pin a commit for reproducible data
``split``          which split's files to use (``train``): files whose path contains it, or all
``files``          optional list of glob patterns to download (default: the data files)
``format``         ``mg-verilog`` (code + a description dict) or ``flat`` (one column per level)
``id_field``       field holding a record id (default ``id``); missing -> ``<name>-<n>`` (n = 0-based
                   record index over the source's files in sorted order: stable for a revision)
``code_field``     field with the code (default ``code``)
``description_field``  field with the description dict (``mg-verilog`` format)
``levels``         level name -> key in the description dict (or column, ``flat`` format)
``license``        the data's licence as an SPDX id (``CC-BY-NC-SA-4.0``, ``MIT``, ``Apache-2.0``):
                   logged when the source is read and written into the curation report; a
                   source without one is curated with a warning (``unknown`` in the report)
``license_note``   optional: what the licence allows (e.g. non-commercial), shown with it
=================  ==========================================================================

Hub downloads use ``huggingface_hub.snapshot_download`` (``HF_TOKEN`` from token.env,
``HF_ENDPOINT`` for mirrors, interrupted downloads resume) into ``data/raw/<name>/``; every data
file is converted to ``data/raw/<name>/records.jsonl`` (one record per line, stable ids) once per
download (``pipeline.convert_key``: not again while the downloaded files and the spec's fields are unchanged).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pandas as pd

from ..paths import resolve
from ..secrets import redact
from ..io import (COMPRESSED_SUFFIXES, BadLines, InputError, compression_of, iter_jsonl, open_data,  # noqa: F401
                  read_json, read_text, write_jsonl_atomic)

log = logging.getLogger(__name__)

DATA_SUFFIXES = (".parquet", ".arrow", ".jsonl", ".json")
_SKIP_JSON = {"dataset_info.json", "state.json", "dataset_dict.json", "dataset_infos.json"}


class SourceError(ValueError):
    """Bad source spec or bad record; the message names the file and line (or field)."""


class DownloadError(RuntimeError):
    """The hub could not be reached or refused the download (network, token, missing repo)."""


def read_source_specs(path: str | Path) -> list[dict[str, Any]]:
    """The source specs of a sources file (one JSON object per line; blank and ``#`` lines skipped).

    Each spec is checked (one of ``repo_id``/``path``, a ``name``, a known ``format``, ``levels``,
    ...) and gets its defaults filled in.

    Args:
        path: the sources file (repository-relative or absolute).

    Returns:
        The specs, in file order.

    Raises:
        SourceError: the file is missing or unreadable, or a line is not a valid spec (the
            message names ``file:line`` and the field).
    """
    path = resolve(path)
    if not path.is_file():
        raise SourceError(f"sources file not found: {path}")
    specs = []
    try:
        text = read_text(path)
    except InputError as exc:
        raise SourceError(str(exc)) from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            spec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{path}:{lineno}: not valid JSON: {exc.msg}") from None
        if not isinstance(spec, dict):
            raise SourceError(f"{path}:{lineno}: expected a JSON object")
        if bool(spec.get("repo_id")) == bool(spec.get("path")):
            raise SourceError(f"{path}:{lineno}: give exactly one of 'repo_id' (hub) or 'path' (local)")
        if not spec.get("name"):
            raise SourceError(f"{path}:{lineno}: field 'name' is missing")
        fmt = spec.setdefault("format", "mg-verilog")
        if fmt not in ("mg-verilog", "flat"):
            raise SourceError(f"{path}:{lineno}: format must be 'mg-verilog' or 'flat', not {fmt!r}")
        if not isinstance(spec.get("levels"), dict) or not spec["levels"]:
            raise SourceError(f"{path}:{lineno}: 'levels' must map level names to fields")
        spec.setdefault("repo_type", "dataset")
        spec.setdefault("revision", "main")
        spec.setdefault("split", "train")
        spec.setdefault("code_field", "code")
        spec.setdefault("description_field", "description")
        spec.setdefault("id_field", "id")
        lic = spec.get("license")
        if lic is not None and (not isinstance(lic, str) or not lic.strip()):
            raise SourceError(f"{path}:{lineno}: 'license' must be a licence name (SPDX id, e.g. 'MIT')")
        if lic:
            log.info("source %s: licence %s%s", spec["name"], lic,
                     f" ({spec['license_note']})" if spec.get("license_note") else "")
        else:
            log.warning("source %s (%s:%d) states no licence: check the data's licence before using it "
                        "(add \"license\": \"<SPDX id>\" to its line)", spec["name"], path, lineno)
        spec["license"] = lic or "unknown"
        spec["_where"] = f"{path}:{lineno}"
        specs.append(spec)
    if not specs:
        raise SourceError(f"{path}: no sources listed")
    return specs


# -- hub download ----------------------------------------------------------------------------------
def download_hub(spec: dict[str, Any], raw_dir: Path, timeout_s: float = 30.0) -> Path:
    """snapshot_download the spec's data files (``files`` patterns, else every data suffix) into
    raw_dir/<name>/.

    Args:
        spec: the source spec (``name``, ``repo_id``, ``repo_type``, ``revision``, optional ``files``).
        raw_dir: the folder that gets one subfolder per hub source.
        timeout_s: HTTP timeout in seconds (``HF_HUB_ETAG_TIMEOUT``/``HF_HUB_DOWNLOAD_TIMEOUT``, unless
            already set in the environment).

    Returns:
        The download folder ``raw_dir / spec["name"]``.

    Raises:
        DownloadError: the hub cannot be reached or refuses the download (one line, secrets redacted).
    """
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(timeout_s)))
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(timeout_s)))
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    target = raw_dir / spec["name"]
    patterns = spec.get("files") or [f"*{s}" for s in DATA_SUFFIXES]
    endpoint = os.environ.get("HF_ENDPOINT") or None
    log.info("downloading %s (%s, revision %s) from %s into %s", spec["repo_id"], spec["repo_type"],
             spec["revision"], endpoint or "huggingface.co", target)
    try:
        snapshot_download(
            repo_id=spec["repo_id"], repo_type=spec["repo_type"], revision=spec["revision"],
            allow_patterns=patterns, local_dir=str(target), endpoint=endpoint,
            token=os.environ.get("HF_TOKEN") or None,
        )
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise DownloadError(redact(f"{type(exc).__name__}: {exc}").splitlines()[0]) from None
    except Exception as exc:  # httpx connection errors and friends: the hub is not reachable
        raise DownloadError(redact(f"{type(exc).__name__}: {exc}").splitlines()[0]) from None
    return target


#: files of a dataset folder that are not data (hub cards, git metadata, licences): skipped, said once
_NON_DATA_NAMES = (".gitattributes", ".gitignore", ".gitkeep", ".DS_Store")
_NON_DATA_STEMS = ("readme", "license", "licence", "copying", "notice", "citation", "changelog")
_NON_DATA_SUFFIXES = (".md", ".txt", ".rst", ".cff", ".bib", ".lock", ".py", ".yaml", ".yml", ".sha256", ".md5")


def _base_name(name: str) -> str:
    """The name without a compression suffix (``a.jsonl.gz`` -> ``a.jsonl``).

    Returns:
        ``name`` without its ``.gz``/``.bz2``/``.xz``/``.zst`` suffix (unchanged when it has none).
    """
    comp = compression_of(name)
    return name[:-len(comp)] if comp else name


def is_data_file(name: str) -> bool:
    """True for names the reader reads: ``*.parquet``, ``*.arrow``, ``*.jsonl``, ``*.json``, and
    ``*.jsonl``/``*.json`` compressed with gzip, bzip2, xz or zstd (``a.jsonl.gz``).

    Returns:
        Whether the file is read as data.
    """
    base = _base_name(name)
    if base != name:
        return base.endswith((".jsonl", ".json"))
    return name.endswith(DATA_SUFFIXES)


def _is_non_data(name: str) -> bool:
    low = name.lower()
    return (name in _NON_DATA_NAMES or low.split(".", 1)[0] in _NON_DATA_STEMS
            or low.endswith(_NON_DATA_SUFFIXES))


def list_data_files(folder: Path, split: str | None, *, converted: str | None = None
                    ) -> tuple[list[Path], list[Path], list[Path]]:
    """The data files under ``folder``, and what is not read, for one warning line each.

    Args:
        folder: a data file, or a folder searched recursively (``.cache`` folders and hub metadata
            JSON such as ``dataset_info.json`` are left out).
        split: keep only the files whose relative path contains it, when any does.
        converted: a file name this run writes into ``folder`` itself (a hub download's converted
            ``records.jsonl``): not read back as a source file. None for a local folder, whose
            ``records.jsonl`` is data like any other file.

    Returns:
        ``(data files, non-data files, unreadable files)``, each sorted by path: data files as in
        ``is_data_file``; non-data files are dataset cards, licences, git metadata (expected in a hub
        dataset folder); unreadable files are everything else (e.g. ``.csv``, ``.parquet.gz``, ``.tar``).
    """
    if folder.is_file():
        return [folder], [], []
    files, non_data, unreadable = [], [], []
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or ".cache" in p.relative_to(folder).parts or p.name in _SKIP_JSON:
            continue
        if converted is not None and p.parent == folder and p.name == converted:
            continue
        if is_data_file(p.name):
            files.append(p)
        elif _is_non_data(p.name):
            non_data.append(p)
        else:
            unreadable.append(p)
    if split:
        chosen = [p for p in files if split in str(p.relative_to(folder))]
        if chosen:
            return chosen, non_data, unreadable
    return files, non_data, unreadable


def data_files(folder: Path, split: str | None, *, converted: str | None = None) -> list[Path]:
    """The data files under folder (sorted), restricted to the split's files when any match; see
    ``list_data_files``, which also returns what is not read.

    Returns:
        ``[folder]`` when ``folder`` is a file; else its data files sorted by path.
    """
    return list_data_files(folder, split, converted=converted)[0]


def describe_skipped(folder: Path, non_data: list[Path], unreadable: list[Path]) -> list[str]:
    """One line each for the files of ``folder`` that are not read (empty when all are).

    Returns:
        Up to two lines: the unreadable files (named, with what is read), the non-data files.
    """
    def names(ps: list[Path]) -> str:
        shown = [str(p.relative_to(folder)) for p in ps[:5]]
        return ", ".join(shown) + (f" and {len(ps) - 5} more" if len(ps) > 5 else "")
    out = []
    if unreadable:
        out.append(f"{folder}: {len(unreadable)} file(s) NOT read (not a data file type: "
                   f"{', '.join(DATA_SUFFIXES)}, or jsonl/json compressed with {', '.join(COMPRESSED_SUFFIXES)}): "
                   f"{names(unreadable)}")
    if non_data:
        out.append(f"{folder}: skipped {len(non_data)} non-data file(s) (dataset card, licence, metadata): "
                   f"{names(non_data)}")
    return out


# -- reading records -------------------------------------------------------------------------------
def json_records(path: Path | str) -> list:
    """The records of a JSON-list file: the top-level list, or the list under ``"data"``.

    Returns:
        The list as parsed (its items are not checked here).

    Raises:
        SourceError: the file cannot be read or is not valid UTF-8/JSON (``file:line``), or holds
            no such list.
    """
    try:
        data = read_json(path)
    except InputError as exc:
        raise SourceError(str(exc)) from None
    rows = data if isinstance(data, list) else data.get("data") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise SourceError(f"{path}: expected a list of records (or {{'data': [...]}})")
    return rows


def _iter_file(path: Path, on_bad_line: str, bad: BadLines) -> Iterator[tuple[str, Any]]:
    """Yield (where, record) from one data file; where = 'file:line' or 'file#row'.

    Raises:
        SourceError: a bad line (``on_bad_line=error``), a JSON file that is not a list of records, or an unsupported file type.
    """
    name = _base_name(path.name)
    if compression_of(path.name) and not name.endswith((".jsonl", ".json")):
        raise SourceError(f"{path}: compressed {name.rsplit('.', 1)[-1]} is not read; decompress it first")
    if name.endswith(".jsonl") or (name.endswith(".json") and _looks_like_jsonl(path)):
        try:
            for lineno, rec in iter_jsonl(path, on_bad_line=on_bad_line, bad=bad, objects_only=False):
                yield f"{path}:{lineno}", rec
        except InputError as exc:
            raise SourceError(f"{exc}; set on_bad_line=skip to skip and count such lines") from None
    elif name.endswith(".json"):
        for i, rec in enumerate(json_records(path)):
            yield f"{path}#{i}", rec
    elif name.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        from .shards import damaged_arrow

        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(damaged_arrow(path, exc)) from None
        for i, rec in enumerate(table.to_pylist()):
            yield f"{path}#{i}", rec
    elif name.endswith(".arrow"):
        import pyarrow as pa

        from .shards import damaged_arrow

        try:
            try:
                with pa.memory_map(str(path)) as src:
                    table = pa.ipc.open_stream(src).read_all()
            except pa.ArrowInvalid:
                with pa.memory_map(str(path)) as src:
                    table = pa.ipc.open_file(src).read_all()
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(damaged_arrow(path, exc)) from None
        for i, rec in enumerate(table.to_pylist()):
            yield f"{path}#{i}", rec
    else:
        raise SourceError(f"{path}: unsupported file type (use {', '.join(DATA_SUFFIXES)})")


def _looks_like_jsonl(path: Path) -> bool:
    """Whether a ``.json`` file is JSON Lines (one object a line) rather than one JSON document.

    Decided by its first non-blank line, and where that one is bad, by the next: line 1 parses as a
    JSON object; or it looks like one broken record (it starts with ``{`` and ends with ``}``) and
    line 2 is absent or starts a record (``{``); or it opens no document (it does not start with
    ``[``, nor start with ``{`` and end with ``[``, ``{`` or ``,``: a stray header line, a record
    cut at its start) and line 2 parses as an object. A bad first record is thus a bad line
    (``on_bad_line``), as it is anywhere else, while a pretty-printed ``{"data": [...]}`` document,
    or one with leading commas (``{...}`` then ``,{...}``), stays a document. Line 2 is read only
    when line 1 does not decide.

    Returns:
        True for JSON Lines.

    Raises:
        SourceError: the file cannot be read or decompressed.
    """
    def nonblank(fh):
        for raw in fh:
            text = raw.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
            if text:
                yield text

    try:
        with open_data(path) as fh:
            lines = nonblank(fh)
            first = next(lines, "")
            if not first or first.startswith("["):
                return False                       # empty, or a list document (one line or many)
            if _is_object(first):
                return True
            if first.startswith("{") and first.endswith(("[", "{", ",")):
                return False                       # a document opens here
            second = next(lines, None)
    except InputError as exc:
        raise SourceError(str(exc)) from None
    except (EOFError, OSError, ValueError) as exc:   # damaged compressed stream
        raise SourceError(f"{path}: cannot decompress ({type(exc).__name__}: {exc})") from None
    if first.startswith("{") and first.endswith("}"):
        return second is None or second.startswith("{")
    return second is not None and _is_object(second)     # a stray or cut first line, then records


def _is_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def lone_surrogate(text: str) -> int | None:
    """Where ``text`` holds a lone UTF-16 surrogate (U+D800..U+DFFF), which JSON's ``"\\ud800"``
    escape decodes to but no UTF-8 file, Arrow string or tokenizer can hold.

    Returns:
        The 1-based character position of the first surrogate, or None (always None for ASCII text).
    """
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start + 1
    return None


def _check_text(where: str, field: str, text: str) -> None:
    """Check one text field of a record.

    Raises:
        SourceError: ``text`` (the record's ``field``) holds a lone surrogate (``lone_surrogate``), naming
            ``where``, the field and the character position.
    """
    at = lone_surrogate(text)
    if at is not None:
        raise SourceError(f"{where}: field {field!r} holds a lone UTF-16 surrogate "
                          f"(\\u{ord(text[at - 1]):04x} at character {at}), not valid Unicode")


def _record(spec: dict[str, Any], where: str, rec: Any) -> dict[str, str]:
    """Map one raw record onto the pipeline schema, or raise SourceError naming the field.

    Returns:
        ``{"code": ..., "desc_<level>": ...}`` per level of the spec (all str).

    Raises:
        SourceError: the record is not an object, or its code or a description level is missing or not a
            string, or the code, a description level or a string id holds a lone UTF-16 surrogate
            (``"\\ud800"`` in JSON: a bad record like a non-UTF-8 byte, skipped and counted with
            ``on_bad_line=skip``).
    """
    if not isinstance(rec, dict):
        raise SourceError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    code = rec.get(spec["code_field"])
    if not isinstance(code, str):
        raise SourceError(f"{where}: field {spec['code_field']!r} is missing or not a string")
    out = {"code": code}
    if spec["format"] == "mg-verilog":
        desc = rec.get(spec["description_field"])
        if isinstance(desc, str):  # some copies store the dict as a JSON string
            try:
                desc = json.loads(desc)
            except json.JSONDecodeError:
                desc = None
        if not isinstance(desc, dict):
            raise SourceError(f"{where}: field {spec['description_field']!r} is missing or not a mapping")
        for level, key in spec["levels"].items():
            val = desc.get(key)
            if not isinstance(val, str):
                raise SourceError(f"{where}: field {spec['description_field']}.{key} is missing or not a string")
            out[f"desc_{level}"] = val
    else:
        for level, key in spec["levels"].items():
            val = rec.get(key)
            if not isinstance(val, str):
                raise SourceError(f"{where}: field {key!r} is missing or not a string")
            out[f"desc_{level}"] = val
    _check_text(where, spec["code_field"], code)
    for level, key in spec["levels"].items():
        name = f"{spec['description_field']}.{key}" if spec["format"] == "mg-verilog" else key
        _check_text(where, name, out[f"desc_{level}"])
    rid = rec.get(spec["id_field"])
    if isinstance(rid, str):
        _check_text(where, spec["id_field"], rid)
    return out


def load_records(spec: dict[str, Any], files: list[Path], on_bad_line: str, bad: BadLines) -> list[dict[str, Any]]:
    """The records of one source's files in the pipeline schema, with ids and ``source`` set.

    A record without an id gets ``<source name>-<n>``.

    Args:
        spec: the source spec (``read_source_specs``).
        files: the source's files, read in this order.
        on_bad_line: ``error`` (raise) or ``skip`` (count in ``bad`` and go on).
        bad: the tally of skipped lines, added to.

    Returns:
        The records (dicts with ``_where`` = ``file:line`` for messages).

    Raises:
        SourceError: a bad line or record with ``on_bad_line=error`` (the message names it).
    """
    records = []
    n = 0
    for path in files:
        for where, rec in _iter_file(path, on_bad_line, bad):
            try:
                row = _record(spec, where, rec)
            except SourceError as exc:
                if on_bad_line == "skip":
                    bad.add(where, str(exc).split(": ", 1)[-1])
                    continue
                raise SourceError(f"{exc}; set on_bad_line=skip to skip and count such records") from None
            rid = rec.get(spec["id_field"]) if isinstance(rec, dict) else None
            row["id"] = str(rid) if rid not in (None, "") else f"{spec['name']}-{n}"
            row["source"] = spec["name"]
            row["_where"] = where
            records.append(row)
            n += 1
    return records


def records_frame(records: list[dict[str, Any]], levels: list[str]) -> pd.DataFrame:
    """The records as a frame: ``id``, ``source``, ``_order`` (input order), ``code`` and ``desc_<level>``.

    Returns:
        One row per record, in input order; ``_order`` counts 0, 1, ... (int).

    Raises:
        SourceError: an id repeats, or a record lacks a description level (the message names the record).
    """
    cols = ["id", "source", "code", *[f"desc_{l}" for l in levels]]
    from .shards import repeat_message

    seen: dict[str, tuple[str, str]] = {}
    for r in records:
        if r["id"] in seen:
            raise SourceError(repeat_message(r["_where"], r["id"], r.get("source", "?"), *seen[r["id"]]))
        seen[r["id"]] = (r["_where"], r.get("source", "?"))
        for lvl in levels:
            if f"desc_{lvl}" not in r:
                raise SourceError(f"{r['_where']}: no description for level {lvl!r} (check the source's 'levels')")
    df = pd.DataFrame([{c: r[c] for c in cols} for r in records], columns=cols)
    df.insert(2, "_order", range(len(df)))
    return df


def licence_of(spec: dict[str, Any]) -> dict[str, str]:
    """The licence fields of a source spec, for the curation report.

    Returns:
        ``{"license": spec's licence or "unknown"}``, plus ``"license_note"`` when the spec has one.
    """
    out = {"license": spec.get("license") or "unknown"}
    if spec.get("license_note"):
        out["license_note"] = spec["license_note"]
    return out
