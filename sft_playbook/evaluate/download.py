"""Download the VerilogEval v2 spec-to-rtl problems from upstream (github.com/NVlabs/verilog-eval).

Fetches the repository archive (``url`` with ``{ref}`` filled in; default
``https://github.com/NVlabs/verilog-eval/archive/{ref}.tar.gz``), keeps only the problem files of
``dataset_spec-to-rtl/`` (``ProbNNN_*_{prompt.txt,ref.sv,test.sv}``, ``problems.txt``) and the
LICENSE, and installs them as ``<dest>/spec-to-rtl/`` atomically (a fresh folder renamed into
place after it was checked to load). Archive members that are not plain files, or whose names
would leave the target folder, are ignored; sizes are capped.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path
from collections.abc import Mapping, Sequence

from ..settings import EvalDownloadSettings, as_section

log = logging.getLogger(__name__)

#: the upstream archive and ref: the eval settings' defaults (configs/eval.yaml ``download:``)
DEFAULT_URL = EvalDownloadSettings().url
DEFAULT_REF = EvalDownloadSettings().ref
MAX_ARCHIVE_BYTES = 300 * 1024**2
MAX_FILE_BYTES = 2 * 1024**2
_WANTED = re.compile(r"^(Prob\d+[\w-]*_(?:prompt\.txt|ref\.sv|test\.sv)|problems\.txt)$")


class DownloadError(RuntimeError):
    """The VerilogEval problems could not be downloaded or unpacked; the message says why."""


def _fetch(url: str, dest: Path, timeout_s: float) -> str:
    """Stream url into dest (1 MiB chunks).

    Returns:
        The archive's sha256 as 64 hex digits.

    Raises:
        DownloadError: the URL cannot be fetched (network, HTTP error, timeout after ``timeout_s``
            seconds) or the archive exceeds ``MAX_ARCHIVE_BYTES`` (300 MiB).
    """
    h = hashlib.sha256()
    req = urllib.request.Request(url, headers={"User-Agent": "sft-playbook-evaluate"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp, open(dest, "wb") as out:
            total = 0
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
                if total > MAX_ARCHIVE_BYTES:
                    raise DownloadError(f"{url}: archive larger than {MAX_ARCHIVE_BYTES} bytes")
                h.update(chunk)
                out.write(chunk)
    except OSError as exc:  # URLError, HTTPError, timeouts
        raise DownloadError(f"could not download {url}: {exc}") from None
    return h.hexdigest()


def download_problems(dest: str | Path, *, url: str = DEFAULT_URL, ref: str = DEFAULT_REF,
                      subdir: str = "dataset_spec-to-rtl", timeout_s: float = EvalDownloadSettings().timeout_s) -> Path:
    """Download and install the problem set (see the module docstring).

    Args:
        dest: the cache folder (created); the problems go to ``<dest>/spec-to-rtl``.
        url: the archive URL, ``{ref}`` filled in with ``ref``.
        ref: the git ref (commit, tag or branch) of the upstream repository.
        subdir: the folder of the archive whose problem files are kept.
        timeout_s: the download's socket timeout, in seconds.

    Returns:
        The installed folder ``<dest>/spec-to-rtl`` (it also gets ``SOURCE.txt``: url, ref, sha256,
        time, problem count); a previous installation is replaced.

    Raises:
        DownloadError: the download failed, the archive is over 300 MiB or not a tar archive, a
            problem file is over 2 MiB, or no problem file is under ``*/<subdir>/``.
        ProblemSetError: the unpacked set does not load (a problem's file is missing).
    """
    from .verilogeval import load_problems

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    full_url = url.format(ref=ref)
    log.info("downloading VerilogEval v2 problems from %s", full_url)
    work = Path(tempfile.mkdtemp(prefix=".verilog-eval-", dir=dest))
    try:
        archive = work / "archive.tar.gz"
        sha = _fetch(full_url, archive, timeout_s)
        staged = work / "spec-to-rtl"
        staged.mkdir()
        kept = 0
        try:
            with tarfile.open(archive, "r:*") as tar:
                for m in tar:
                    parts = m.name.split("/")
                    if not m.isfile() or ".." in parts or m.name.startswith("/"):
                        continue
                    if len(parts) == 2 and parts[1] == "LICENSE" and m.size <= MAX_FILE_BYTES:
                        (staged / "LICENSE").write_bytes(tar.extractfile(m).read())
                        continue
                    if len(parts) != 3 or parts[1] != subdir or not _WANTED.match(parts[2]):
                        continue
                    if m.size > MAX_FILE_BYTES:
                        raise DownloadError(f"{full_url}: member {m.name} is larger than {MAX_FILE_BYTES} bytes")
                    (staged / parts[2]).write_bytes(tar.extractfile(m).read())
                    kept += 1
        except tarfile.TarError as exc:
            raise DownloadError(f"{full_url}: not a readable tar archive: {exc}") from None
        if kept == 0:
            raise DownloadError(f"{full_url}: no problem files under */{subdir}/ in the archive")
        problems = load_problems(staged)  # raises with the missing file named
        (staged / "SOURCE.txt").write_text(
            f"url: {full_url}\nref: {ref}\nsha256: {sha}\nfetched: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
            f"problems: {len(problems)}\n")
        target = dest / "spec-to-rtl"
        old = None
        if target.exists():
            old = work / "previous"
            os.replace(target, old)
        os.replace(staged, target)
        log.info("installed %d problems into %s", len(problems), target)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _has_problems(folder: Path) -> bool:
    from .verilogeval import resolve_problems_dir

    d = resolve_problems_dir(folder)
    return d.is_dir() and ((d / "problems.txt").is_file() or any(d.glob("*_prompt.txt")))


def locate_problems(problems_dir: str | Path, *, also_look_in: Sequence[str | Path] = (),
                    download: EvalDownloadSettings | Mapping | None = None) -> Path:
    """The VerilogEval v2 problem folder to use, fetched on first use when it is the download cache.

    Order: `problems_dir` when it holds problems; then each of `also_look_in` (relative paths from
    the repository root); then, when `download` (``settings.EvalDownloadSettings``, or a mapping of
    some of its keys url, ref, dest, timeout_s: the others take its defaults) is given and
    `problems_dir` is its `dest` (the cache), `download_problems` into it, once.

    Returns:
        The first folder of that order that holds problems (``problems.txt`` or ``*_prompt.txt``), or
        the freshly installed ``<dest>/spec-to-rtl``.

    Raises:
        DownloadError: no folder holds problems and there is nothing to download (the message says
            which setting to use), or the download failed (the message says where to put the files
            offline).
        ProblemSetError: the downloaded set does not load.
    """
    from ..paths import resolve

    target = resolve(problems_dir)
    if _has_problems(target):
        return target
    for extra in also_look_in:
        found = resolve(extra)
        if _has_problems(found):
            log.info("VerilogEval v2 problems: %s is empty, using %s", target, found)
            return found
    download = as_section(EvalDownloadSettings, download, "download") if download is not None else None
    dest = resolve(download.dest) if download is not None else None
    if dest is None or target not in (dest, dest / "spec-to-rtl"):
        raise DownloadError(f"VerilogEval v2 problems not found in {target}: set verilogeval.problems_dir=FOLDER "
                            f"(the spec-to-rtl folder, or one containing it), or `bash evaluate.sh download`")
    log.info("VerilogEval v2 problems are not here yet: downloading them once into %s", dest)
    try:
        return download_problems(dest, url=download.url, ref=download.ref, timeout_s=download.timeout_s)
    except DownloadError as exc:
        raise DownloadError(f"VerilogEval v2 problems are not in {target} and the download failed ({exc}); offline, "
                            f"put upstream's dataset_spec-to-rtl folder (github.com/NVlabs/verilog-eval) at "
                            f"{dest / 'spec-to-rtl'} or set verilogeval.problems_dir=FOLDER") from None
