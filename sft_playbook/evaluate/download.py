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

log = logging.getLogger(__name__)

DEFAULT_URL = "https://github.com/NVlabs/verilog-eval/archive/{ref}.tar.gz"
DEFAULT_REF = "main"
MAX_ARCHIVE_BYTES = 300 * 1024**2
MAX_FILE_BYTES = 2 * 1024**2
_WANTED = re.compile(r"^(Prob\d+[\w-]*_(?:prompt\.txt|ref\.sv|test\.sv)|problems\.txt)$")


class DownloadError(RuntimeError):
    pass


def _fetch(url: str, dest: Path, timeout_s: float) -> str:
    """Stream url into dest; returns the sha256."""
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
                      subdir: str = "dataset_spec-to-rtl", timeout_s: float = 120.0) -> Path:
    """Download and install the problem set; returns the installed folder `<dest>/spec-to-rtl`."""
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
