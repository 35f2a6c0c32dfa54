"""Run a tool on untrusted Verilog: own temporary folder, wall-clock timeout, CPU/memory/file-size
limits, no secrets in the environment, and a cap on the output read back.

Every generated or downloaded design is untrusted: it can loop forever, print forever, write
files with $fopen, or pretend to pass. Callers give the source files as strings; they are
written into a fresh temporary folder that is removed afterwards.
"""
from __future__ import annotations

import functools
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

# Defaults sized for small RTL designs and testbenches.
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_CPU_S = 60
DEFAULT_MEM_BYTES = 2 * 1024**3
DEFAULT_FILE_BYTES = 16 * 1024**2     # any single file a candidate writes, stdout/stderr included
DEFAULT_OUTPUT_CAP = 256 * 1024        # bytes of stdout/stderr read back


@dataclass
class SandboxResult:
    returncode: int | None       # None when killed for the timeout
    stdout: str
    stderr: str
    timed_out: bool
    truncated: bool              # output was longer than the cap (or hit the file-size limit)
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def _limits(cpu_s: int, mem_bytes: int, file_bytes: int):
    def apply() -> None:
        os.setsid()  # own process group: a timeout kills everything it started
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _clean_env(workdir: str) -> dict[str, str]:
    """Only what the tools need: no tokens, keys or the caller's variables."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }


def _read_capped(path: Path, cap: int, tail: bool = False) -> tuple[str, bool]:
    """At most `cap` bytes of a file: its beginning, or its end when `tail` (a simulation's verdict
    is printed last, after whatever a candidate printed)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if tail and size > cap:
            fh.seek(size - cap)
        data = fh.read(cap + (0 if tail else 1))
    truncated = size > cap
    return data[:cap].decode("utf-8", errors="replace"), truncated


def run_sandboxed(
    argv: Sequence[str],
    files: Mapping[str, str] | None = None,
    *,
    workdir: str | os.PathLike | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    cpu_s: int = DEFAULT_CPU_S,
    mem_bytes: int = DEFAULT_MEM_BYTES,
    file_bytes: int = DEFAULT_FILE_BYTES,
    output_cap: int = DEFAULT_OUTPUT_CAP,
    output_tail: bool = False,
) -> SandboxResult:
    """Run argv in workdir (a fresh temporary folder when None, removed afterwards) after writing
    `files` (name -> text) into it. With `output_tail`, the last `output_cap` bytes of stdout and
    stderr are read back instead of the first."""
    own = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="sftpb-sim-")) if own else Path(workdir)
    try:
        for name, text in (files or {}).items():
            target = (wd / name).resolve()
            if wd.resolve() not in target.parents:
                raise ValueError(f"sandbox file name {name!r} escapes the work folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        out_path, err_path = wd / ".stdout", wd / ".stderr"
        t0 = time.monotonic()
        timed_out = False
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            prlimit = _prlimit()
            if prlimit:  # limits set by prlimit, which then execs the tool: no Python code between fork and exec
                proc = subprocess.Popen(
                    [prlimit, f"--cpu={cpu_s}:{cpu_s + 1}", f"--as={mem_bytes}:{mem_bytes}",
                     f"--fsize={file_bytes}:{file_bytes}", "--core=0:0", "--", *argv],
                    cwd=wd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=_clean_env(str(wd)),
                    start_new_session=True,
                )
            else:
                proc = subprocess.Popen(
                    list(argv), cwd=wd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                    env=_clean_env(str(wd)), preexec_fn=_limits(cpu_s, mem_bytes, file_bytes),
                )
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:  # never hang: kill the process itself too
                    proc.kill()
                    proc.wait()
        seconds = time.monotonic() - t0
        stdout, t1 = _read_capped(out_path, output_cap, output_tail)
        stderr, t2 = _read_capped(err_path, output_cap, output_tail)
        out_path.unlink(missing_ok=True)
        err_path.unlink(missing_ok=True)
        # SIGXFSZ (file-size limit) shows as -25: the program tried to write more than allowed.
        truncated = t1 or t2 or proc.returncode == -signal.SIGXFSZ
        return SandboxResult(None if timed_out else proc.returncode, stdout, stderr, timed_out, truncated, seconds)
    finally:
        if own:
            shutil.rmtree(wd, ignore_errors=True)


@functools.lru_cache(maxsize=1)
def _prlimit() -> str | None:
    """util-linux prlimit, when present: it sets the limits and execs the tool, which is safe from
    threads (a preexec_fn is not) and lets Python spawn with vfork (cheap from a large process)."""
    return shutil.which("prlimit")


@functools.lru_cache(maxsize=1)
def iverilog_available() -> bool:
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


@functools.lru_cache(maxsize=1)
def iverilog_version() -> tuple[int, int] | None:
    """(major, minor) of the installed Icarus Verilog, or None."""
    if not iverilog_available():
        return None
    proc = subprocess.run(["iverilog", "-V"], capture_output=True, text=True, timeout=30)
    m = re.search(r"version (\d+)\.(\d+)", proc.stdout + proc.stderr)
    return (int(m.group(1)), int(m.group(2))) if m else None


def compile_check(code: str, *, flags: Sequence[str] = ("-g2012",), timeout_s: float = 20.0,
                  top: str | None = None) -> SandboxResult:
    """Compile (parse + elaborate) one Verilog source with iverilog; nothing is simulated."""
    argv = ["iverilog", *flags, "-o", "design.vvp"]
    if top:
        argv += ["-s", top]
    return run_sandboxed([*argv, "design.sv"], {"design.sv": code}, timeout_s=timeout_s)
