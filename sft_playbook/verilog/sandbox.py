"""Run a tool on untrusted Verilog, isolated by the operating system, with limits.

Every generated or downloaded design is hostile: it can loop forever, print forever, fork, write
or read files by absolute or ``../`` path (``$writememh``, ``$dumpfile``, ``$fopen``,
```include "/etc/..."``), or pretend to pass. Callers give the source files as strings; they are
written into a fresh temporary folder (the *job folder*), removed afterwards.

Isolation (``isolation()``):

``"bwrap"`` (bubblewrap, the OS package ``bubblewrap``; the default when it works here)
    The tool runs in new user, mount, PID, network, IPC and UTS namespaces (``--unshare-all``,
    ``--die-with-parent``, ``--new-session``). Its file system holds only the OS program folders
    read-only (``/usr`` and the ``/bin``, ``/sbin``, ``/lib*`` links; the tool's own install
    prefix when it lives elsewhere) and ``/etc/ld.so.cache``; no ``/home``, ``/root``, ``/etc``,
    ``/work``, ``/var``, ``/run``, host ``/tmp``, and no ``/proc`` at all. ``/tmp`` is a private tmpfs
    and the job folder is a private tmpfs of at most ``disk_bytes`` (the only writable place);
    the files already in the job folder are bound into it read-only and the declared
    ``outputs`` (by default the value of a ``-o`` option, e.g. iverilog's compiled design)
    read-write. Whatever else the tool writes is gone when it ends. As root, each job runs
    under its own unused user id with ``RLIMIT_NPROC`` = ``nproc`` (a fork bomb stops there;
    root is exempt from that limit; when the job folder lies below a folder other users cannot
    enter, the job keeps the caller's id and has no process limit). No network.
``"rlimits-only"`` (weaker; one warning, whether asked for or used because bubblewrap is missing or fails)
    Today's limits alone: own temporary folder as the working folder, but absolute or ``../``
    paths reach the rest of the machine with the caller's rights.

In both: inputs given as ``streams`` are read once through a named pipe (a simulated design cannot
open the compiled image again), job folders live in one parent folder per process (``job_dir``),
removed at exit or, after a crash, by the next process; wall-clock timeout (the whole process group / PID namespace is killed), CPU seconds,
address space, size of any one file written (stdout/stderr included), no core files, a clean
environment (no tokens or keys; ``HOME``, ``TMPDIR``, ``TMP``, ``TEMP`` = the job folder, so
iverilog's ``ivrl*`` temporaries stay in it), and a cap on the output read back.

Choose with the environment variable ``SFTPB_SANDBOX`` = ``auto`` (default), ``bwrap`` (refuse to
run without it: ``SandboxUnavailable``) or ``rlimits-only``; or ``set_isolation(mode)``.
"""
from __future__ import annotations

import atexit
import functools
import logging
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping, Sequence

log = logging.getLogger(__name__)

# Defaults sized for small RTL designs and testbenches.
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_CPU_S = 60
DEFAULT_MEM_BYTES = 2 * 1024**3
DEFAULT_FILE_BYTES = 16 * 1024**2     # any single file a candidate writes, stdout/stderr included
DEFAULT_OUTPUT_CAP = 256 * 1024        # bytes of stdout/stderr read back
DEFAULT_DISK_BYTES = 64 * 1024**2      # bwrap: all files written in the job folder together (tmpfs size)
DEFAULT_NPROC = 64                     # bwrap as root: processes of one job (iverilog needs 4)

BWRAP = "bwrap"
RLIMITS_ONLY = "rlimits-only"
MODES = ("auto", BWRAP, RLIMITS_ONLY)
ENV_VAR = "SFTPB_SANDBOX"

_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_PRIVATE_UID_RANGE = (1_500_000_000, 1_600_000_000)   # unused ids: one per job when run as root
_HIDDEN = (".stdout", ".stderr")
# Signals a limit or a crash ends a tool with; under bwrap their exit status 128+N is turned back into -N.
# (Only these: iverilog exits with its error count, e.g. 144 for 200 errors, which is not a signal.)
_SIGNALS_SEEN = {signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGFPE,
                 signal.SIGXCPU, signal.SIGXFSZ}


class SandboxUnavailable(RuntimeError):
    """SFTPB_SANDBOX=bwrap was asked for and bubblewrap does not work on this machine."""


@dataclass
class SandboxResult:
    """What a sandboxed command did: exit code (None when killed for the timeout), the captured
    output (capped), whether it timed out or was truncated, the wall time in seconds and the
    isolation used (``bwrap`` or ``rlimits-only``).
    """
    returncode: int | None       # None when killed for the timeout
    stdout: str
    stderr: str
    timed_out: bool
    truncated: bool              # output was longer than the cap (or hit the file-size limit)
    seconds: float
    isolation: str = ""          # "bwrap" or "rlimits-only"

    @property
    def ok(self) -> bool:
        """True when the command exited with 0 before the timeout."""
        return self.returncode == 0 and not self.timed_out


def _limits(cpu_s: int, mem_bytes: int, file_bytes: int, nproc: int | None):
    def apply() -> None:
        os.setsid()  # own process group: a timeout kills everything it started
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    return apply


def _clean_env(workdir: str) -> dict[str, str]:
    """Only what the tools need: no tokens, keys or the caller's variables. Temporary files
    (iverilog's ivrl*) go to the job folder: TMPDIR and TMP are both read by iverilog.

    Returns:
        A new environment: the caller's ``PATH``, ``HOME``/``TMPDIR``/``TMP``/``TEMP`` = ``workdir``,
        ``LANG``/``LC_ALL`` = ``C.UTF-8``; nothing else.
    """
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": workdir,
        "TMPDIR": workdir,
        "TMP": workdir,
        "TEMP": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }


def _read_capped(path: Path, cap: int, tail: bool = False) -> tuple[str, bool]:
    """At most `cap` bytes of a file: its beginning, or its end when `tail` (a simulation's verdict
    is printed last, after whatever a candidate printed).

    Returns:
        ``(text, truncated)``: at most ``cap`` bytes decoded as UTF-8 (bad bytes replaced), and
        whether the file was longer than ``cap`` bytes.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if tail and size > cap:
            fh.seek(size - cap)
        data = fh.read(cap + (0 if tail else 1))
    truncated = size > cap
    return data[:cap].decode("utf-8", errors="replace"), truncated


# ----------------------------------------------------------------------------- isolation choice

_mode_lock = threading.Lock()
_mode: str | None = None            # "auto" | "bwrap" | "rlimits-only"; None = from the environment
_resolved: dict[str, object] = {}   # probe result: {"isolation": ..., "drop_uid": bool, "why": ...}


def set_isolation(mode: str | None) -> None:
    """Force the isolation for this process: "auto", "bwrap", "rlimits-only", or None (back to
    ``$SFTPB_SANDBOX``, default auto). Raises ValueError for another value.

    Raises:
        ValueError: ``mode`` is not one of the isolation modes (or None).
    """
    global _mode
    if mode is not None and mode not in MODES:
        raise ValueError(f"sandbox isolation must be one of {', '.join(MODES)}, got {mode!r}")
    with _mode_lock:
        _mode = mode
        _resolved.clear()


def _wanted() -> str:
    mode = _mode or os.environ.get(ENV_VAR, "").strip() or "auto"
    if mode not in MODES:
        raise ValueError(f"{ENV_VAR} must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def isolation() -> str:
    """``"bwrap"`` or ``"rlimits-only"``: what `run_sandboxed` uses in this process. The first call
    probes bubblewrap once (a few ms); under auto, a failed probe logs ONE warning and falls back.

    Returns:
        ``"bwrap"`` or ``"rlimits-only"``; the probe's answer is kept until ``set_isolation`` is called.

    Raises:
        SandboxUnavailable: bwrap is required (``SFTPB_SANDBOX=bwrap`` or ``set_isolation("bwrap")``)
            and the probe job fails.
        ValueError: ``SFTPB_SANDBOX`` holds a value other than auto, bwrap or rlimits-only.
    """
    return _resolve()["isolation"]  # type: ignore[return-value]


def _resolve() -> dict[str, object]:
    with _mode_lock:
        if _resolved:
            return _resolved
        wanted = _wanted()
        if wanted == RLIMITS_ONLY:
            log.warning("Verilog sandbox: resource limits only, as asked (%s=rlimits-only; WEAKER: "
                        "generated designs can read and write files outside their temporary folder "
                        "with this user's rights)", ENV_VAR)
            _resolved.update(isolation=RLIMITS_ONLY, drop_uid=False, why="asked for")
            return _resolved
        why = ""
        for drop_uid in ((True, False) if os.geteuid() == 0 else (False,)):
            why = _probe_bwrap(drop_uid)
            if not why:
                _resolved.update(isolation=BWRAP, drop_uid=drop_uid, why="")
                return _resolved
            if drop_uid:
                log.info("Verilog sandbox: bwrap under a per-job user id does not work here (%s); "
                         "running it as root, without a per-job process limit", why)
        if wanted == BWRAP:
            raise SandboxUnavailable(f"bubblewrap sandbox asked for ({ENV_VAR}=bwrap) but it does not work here: {why}")
        log.warning("Verilog sandbox: bubblewrap is not usable (%s); falling back to resource limits "
                    "only (WEAKER: generated designs can read and write files outside their temporary "
                    "folder with this user's rights). Install the OS package 'bubblewrap'.", why)
        _resolved.update(isolation=RLIMITS_ONLY, drop_uid=False, why=why)
        return _resolved


def _probe_bwrap(drop_uid: bool) -> str:
    """'' when a bwrap job runs and works here, else why not (one line).

    Returns:
        ``""`` when the probe job copied a file and printed ``probe-ok``; else a reason of at most
        200 characters (bwrap missing, the OSError, or the first line of the job's output).
    """
    if not _bwrap():
        return "bwrap not found on PATH"
    try:
        res = _run(["sh", "-c", "cat in.txt > out.txt && echo probe-ok"], {"in.txt": "x"}, None,
                   use_bwrap=True, drop_uid=drop_uid, timeout_s=20, cpu_s=10, mem_bytes=DEFAULT_MEM_BYTES,
                   file_bytes=1024**2, output_cap=4096, output_tail=False, disk_bytes=1024**2,
                   nproc=DEFAULT_NPROC, outputs=("out.txt",), keep_outputs=False)
    except OSError as e:
        return f"{type(e).__name__}: {e}"
    if res.ok and "probe-ok" in res.stdout:
        return ""
    msg = (res.stderr or res.stdout).strip().splitlines()
    return (msg[0] if msg else f"exit {res.returncode}")[:200]


# ----------------------------------------------------------------------------- job folders

_PARENT_PREFIX = "sftpb-jobs-"
_parent_lock = threading.Lock()
_parents: dict[str, Path] = {}      # temporary folder -> this process's parent folder in it


def job_dir(prefix: str = "sftpb-job-") -> Path:
    """A fresh job folder inside this process's own parent folder in the temporary folder
    (``<tmp>/sftpb-jobs-<pid>-XXXX``, mode 0711: others may pass through, not list). The parent
    is removed when the process exits; parents left by a process that no longer runs (killed, or
    crashed: their job folders may belong to per-job user ids) are removed when the first job
    folder of a later process is made.

    Returns:
        A new, empty folder ``<tmp>/sftpb-jobs-<pid>-XXXX/<prefix>XXXX`` (mode 0700, from
        ``tempfile.mkdtemp``); the caller removes it, or it goes with its parent at process exit.
    """
    root = tempfile.gettempdir()
    with _parent_lock:
        parent = _parents.get(root)
        if parent is None or not parent.is_dir():
            _remove_stale_parents(Path(root))
            parent = Path(tempfile.mkdtemp(prefix=f"{_PARENT_PREFIX}{os.getpid()}-", dir=root))
            parent.chmod(0o711)
            atexit.register(shutil.rmtree, parent, True)
            _parents[root] = parent
        return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def _remove_stale_parents(root: Path) -> None:
    try:
        entries = list(root.glob(f"{_PARENT_PREFIX}*"))
    except OSError:
        return
    for p in entries:
        m = re.match(rf"{_PARENT_PREFIX}(\d+)-", p.name)
        if not m or not p.is_dir() or p.is_symlink():
            continue
        try:
            if p.stat().st_uid != os.geteuid():
                continue
            os.kill(int(m.group(1)), 0)
            continue                      # its process still runs
        except ProcessLookupError:
            pass
        except (PermissionError, OSError):
            continue
        log.info("Verilog sandbox: removing %s, left by a process that no longer runs", p)
        shutil.rmtree(p, ignore_errors=True)


# ----------------------------------------------------------------------------- running

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
    disk_bytes: int = DEFAULT_DISK_BYTES,
    nproc: int = DEFAULT_NPROC,
    outputs: Sequence[str] | None = None,
    streams: Mapping[str, bytes] | None = None,
) -> SandboxResult:
    """Run `argv` (a tool found on PATH, relative file names) in the job folder `workdir` (a fresh
    temporary folder when None, removed afterwards) after writing `files` (name -> text) into it.

    Limits: `timeout_s` wall-clock seconds (then the whole job is killed; ``returncode`` None),
    `cpu_s` CPU seconds, `mem_bytes` address space, `file_bytes` per written file (stdout and
    stderr included; exceeding it ends the tool with SIGXFSZ, ``returncode`` -25), and under bwrap
    `disk_bytes` for all files written in the job folder together and `nproc` processes (as root).
    `output_cap` bytes of stdout and of stderr are read back: the first, or the last with
    `output_tail`. `outputs`: names of files the tool writes that stay in the job folder (for a
    later step), default the value of each ``-o`` option in argv; under bwrap nothing else the tool
    writes survives, and an output left empty is removed. `streams` (name -> bytes): inputs the
    tool reads ONCE, through a named pipe of that name in the job folder (never a file): once the
    tool has read it to the end, opening it again blocks (until the timeout), so what runs inside
    the tool (a simulated design) cannot read it back.

    Returns:
        What the command did: ``returncode`` (None after the timeout; ``-N`` when killed by signal N,
        also under bwrap), stdout and stderr (at most ``output_cap`` bytes each, UTF-8 with bad bytes
        replaced), ``timed_out``, ``truncated`` (output over the cap, or the file-size limit hit),
        ``seconds`` (wall-clock time of the tool) and ``isolation`` used.

    Raises:
        ValueError: a name in ``files`` leads outside the job folder, a name in ``streams`` is not a
            plain name in it, or ``SFTPB_SANDBOX`` holds an unknown mode.
        SandboxUnavailable: bwrap is required (``SFTPB_SANDBOX=bwrap``) but does not work here.
        OSError: the job folder or its files cannot be written.
    """
    state = _resolve()
    use_bwrap = state["isolation"] == BWRAP
    if outputs is None:
        outputs = _dash_o(argv)
    return _run(argv, files, workdir, use_bwrap=use_bwrap, drop_uid=bool(state["drop_uid"]),
                timeout_s=timeout_s, cpu_s=cpu_s, mem_bytes=mem_bytes, file_bytes=file_bytes,
                output_cap=output_cap, output_tail=output_tail, disk_bytes=disk_bytes, nproc=nproc,
                outputs=outputs, keep_outputs=True, streams=streams)


def _dash_o(argv: Sequence[str]) -> tuple[str, ...]:
    outs = []
    for i, a in enumerate(argv[1:], 1):
        if a == "-o" and i + 1 < len(argv):
            outs.append(argv[i + 1])
        elif a.startswith("-o") and len(a) > 2 and not a.startswith("--"):
            outs.append(a[2:])
    return tuple(outs)


def _run(argv, files, workdir, *, use_bwrap, drop_uid, timeout_s, cpu_s, mem_bytes, file_bytes,
         output_cap, output_tail, disk_bytes, nproc, outputs, keep_outputs, streams=None) -> SandboxResult:
    own = workdir is None
    wd = job_dir("sftpb-sim-") if own else Path(workdir)
    wd_real = wd.resolve()
    created: list[Path] = []
    uid = info_r = info_w = None
    fifos: list[tuple[Path, bytes]] = []
    writers: list[threading.Thread] = []
    try:
        for name, text in (files or {}).items():
            target = (wd / name).resolve()
            if wd_real not in target.parents:
                raise ValueError(f"sandbox file name {name!r} escapes the work folder")
            for d in reversed([target.parent, *target.parent.parents]):
                if wd_real in d.parents and not d.exists():
                    d.mkdir()
                    d.chmod(0o755)      # readable by the job's own user id, whatever the umask
            target.write_bytes(encode_source(text))
            target.chmod(0o644)
        for name, data in (streams or {}).items():
            target = (wd / name).resolve()
            if target.parent != wd_real:
                raise ValueError(f"sandbox stream name {name!r} must be a plain name in the work folder")
            target.unlink(missing_ok=True)
            os.mkfifo(target, 0o644)
            target.chmod(0o644)
            fifos.append((target, data))
        out_path, err_path = wd / _HIDDEN[0], wd / _HIDDEN[1]
        cmd = list(argv)
        if use_bwrap:
            outs = []
            for name in outputs:
                p = (wd / name).resolve()
                if wd_real in p.parents and p.parent == wd_real:   # top-level names only
                    if not p.exists():
                        p.touch()
                        p.chmod(0o644)
                        created.append(p)
                    outs.append(p.name)
            if drop_uid and _reachable_by_others(wd_real) and _tool_reachable_by_others(argv):
                uid = secrets.randbelow(_PRIVATE_UID_RANGE[1] - _PRIVATE_UID_RANGE[0]) + _PRIVATE_UID_RANGE[0]
                os.chown(wd, uid, uid)
                for n in outs:
                    os.chown(wd / n, uid, uid)
                for p, _ in fifos:
                    os.chown(p, uid, uid)
            info_r, info_w = os.pipe()   # bwrap writes {"child-pid": N} there: the PID namespace's init
            cmd = _bwrap_argv(cmd, wd_real, disk_bytes, outs, info_w)
        env = _clean_env(str(wd_real))
        nproc_limit = nproc if uid is not None else None
        t0 = time.monotonic()
        timed_out = False
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            prlimit = _prlimit()
            ids = {"user": uid, "group": uid, "extra_groups": []} if uid is not None else {}
            if info_w is not None:
                ids["pass_fds"] = (info_w,)
            if prlimit:  # limits set by prlimit, which then execs the tool: no Python code between fork and exec
                lim = [f"--cpu={cpu_s}:{cpu_s + 1}", f"--as={mem_bytes}:{mem_bytes}",
                       f"--fsize={file_bytes}:{file_bytes}", "--core=0:0"]
                if nproc_limit:
                    lim.append(f"--nproc={nproc_limit}:{nproc_limit}")
                proc = subprocess.Popen([prlimit, *lim, "--", *cmd], cwd=wd, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=err, env=env, start_new_session=True, **ids)
            else:
                proc = subprocess.Popen(cmd, cwd=wd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                        env=env, preexec_fn=_limits(cpu_s, mem_bytes, file_bytes, nproc_limit),
                                        **ids)
            if info_w is not None:
                os.close(info_w)
                info_w = None
            for p, data in fifos:
                t = threading.Thread(target=_feed_fifo, args=(p, data), daemon=True)
                t.start()
                writers.append(t)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                # bwrap: kill the PID namespace's init first (every process of the namespace dies with
                # it, and bwrap reaps it: no zombie left to the machine's init); then the group.
                if info_r is not None:
                    _kill_namespace(info_r)
                try:
                    proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
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
        for (p, _), t in zip(fifos, writers):
            _unblock_fifo(p, t)
        rc = proc.returncode
        if use_bwrap and rc is not None and rc - 128 in _SIGNALS_SEEN:
            rc = 128 - rc   # bwrap reports a tool killed by signal N as exit 128+N: same as without it (-N)
        stdout, t1 = _read_capped(out_path, output_cap, output_tail)
        stderr, t2 = _read_capped(err_path, output_cap, output_tail)
        out_path.unlink(missing_ok=True)
        err_path.unlink(missing_ok=True)
        for p in created:
            if not keep_outputs or (p.exists() and p.stat().st_size == 0):
                p.unlink(missing_ok=True)
        # SIGXFSZ (file-size limit) shows as -25: the program tried to write more than allowed.
        truncated = t1 or t2 or rc == -signal.SIGXFSZ
        return SandboxResult(None if timed_out else rc, stdout, stderr, timed_out, truncated,
                             seconds, BWRAP if use_bwrap else RLIMITS_ONLY)
    finally:
        for fd in (info_r, info_w):
            if fd is not None:
                os.close(fd)
        for (p, _), t in zip(fifos, writers):
            _unblock_fifo(p, t)
        for p, _ in fifos:
            p.unlink(missing_ok=True)
        if own:
            shutil.rmtree(wd, ignore_errors=True)
        elif uid is not None:
            try:
                os.chown(wd, 0, 0)
            except OSError:
                pass


def encode_source(text: str) -> bytes:
    """Source text as the bytes a tool reads: UTF-8; a lone surrogate (``\\ud800``, which has no
    UTF-8 form) becomes ``?`` rather than an exception. Verilog has no use for such characters: in
    a comment or string the replacement changes nothing the judge looks at, elsewhere the code is
    invalid either way and still fails to compile.

    Returns:
        The UTF-8 bytes of ``text``, each lone surrogate written as ``b"?"`` (no BOM added).
    """
    return text.encode("utf-8", errors="replace")


def _feed_fifo(path: Path, data: bytes) -> None:
    """Write `data` into the named pipe `path` once (blocks until the tool opens it), then close."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view[:65536])
            view = view[n:]
    except OSError:   # the reader went away (ended, killed)
        pass
    finally:
        os.close(fd)


def _unblock_fifo(path: Path, writer: threading.Thread) -> None:
    """The tool has ended: a writer still waiting for a reader is released (we open the pipe for
    reading ourselves), then joined."""
    if writer.is_alive():
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass
    writer.join(timeout=5)


def _reachable_by_others(path: Path) -> bool:
    """Every folder above `path` can be traversed by any user (bwrap, started under the job's own
    user id, must reach the bind sources). Else the job runs under bwrap as the caller (no per-job
    process limit).

    Returns:
        True when every parent folder of ``path`` has the "others may execute" bit (``o+x``).
    """
    return all(p.stat().st_mode & 0o001 for p in path.parents)


def _kill_namespace(info_r: int) -> None:
    """Kill bwrap's namespace init (pid from --info-fd); the kernel then kills every process of
    the PID namespace."""
    os.set_blocking(info_r, False)
    try:
        info = os.read(info_r, 4096).decode("utf-8", "replace")
    except BlockingIOError:
        return
    m = re.search(r'"child-pid"\s*:\s*(\d+)', info)
    if m:
        try:
            os.kill(int(m.group(1)), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _tool_reachable_by_others(argv: Sequence[str]) -> bool:
    """The tool and the folders above it can be read by any user (e.g. not a conda prefix under
    /root), so it still runs under the job's own user id.

    Returns:
        True when the tool (symlinks followed) is readable or executable by others and every folder
        above it is ``o+x``; also True when ``argv[0]`` is not found on PATH.
    """
    tool = shutil.which(argv[0]) if argv else None
    if not tool:
        return True   # not found: the run reports that itself
    real = Path(os.path.realpath(tool))
    return bool(real.stat().st_mode & 0o005) and _reachable_by_others(real)


def _bwrap_argv(argv: list[str], wd: Path, disk_bytes: int, outputs: list[str], info_fd: int) -> list[str]:
    """bwrap command line: OS program folders read-only, private /tmp and job folder (tmpfs),
    the job folder's files read-only, its outputs read-write, no network, new PID namespace.

    Returns:
        The full argv: ``bwrap <options> --chdir <wd> -- <argv...>``.
    """
    cmd = [_bwrap(), "--unshare-all", "--die-with-parent", "--new-session", "--info-fd", str(info_fd)]
    bound: list[str] = []
    for d in _SYSTEM_DIRS:
        if os.path.islink(d):
            cmd += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            cmd += ["--ro-bind", d, d]
            bound.append(d)
    # a tool installed outside the OS folders (/opt/..., a conda prefix): its install prefix, read-only
    tool = shutil.which(argv[0]) if argv and not os.path.isabs(argv[0]) else (argv[0] if argv else None)
    if tool:
        real = os.path.realpath(tool)
        if not any(real == b or real.startswith(b + "/") for b in bound):
            prefix = os.path.dirname(os.path.dirname(real))
            if prefix not in ("/", ""):
                cmd += ["--ro-bind", prefix, prefix]
    cmd += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
            "--dev", "/dev",
            "--size", str(disk_bytes), "--tmpfs", "/tmp",
            "--size", str(disk_bytes), "--tmpfs", str(wd)]
    for entry in sorted(os.listdir(wd)):
        p = wd / entry
        if entry in _HIDDEN or p.is_symlink():
            continue
        cmd += (["--bind", str(p), str(p)] if entry in outputs else ["--ro-bind", str(p), str(p)])
    cmd += ["--chdir", str(wd), "--", *argv]
    return cmd


@functools.lru_cache(maxsize=1)
def _bwrap() -> str | None:
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=1)
def _prlimit() -> str | None:
    """util-linux prlimit, when present: it sets the limits and execs the tool, which is safe from
    threads (a preexec_fn is not) and lets Python spawn with vfork (cheap from a large process).

    Returns:
        The path of ``prlimit`` on PATH, or None (then the limits are set in a ``preexec_fn``).
    """
    return shutil.which("prlimit")


@functools.lru_cache(maxsize=1)
def iverilog_available() -> bool:
    """True when both ``iverilog`` and ``vvp`` are on PATH.

    Returns:
        Whether both programs were found (checked once per process, then cached).
    """
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


@functools.lru_cache(maxsize=1)
def iverilog_version() -> tuple[int, int] | None:
    """(major, minor) of the installed Icarus Verilog, or None.

    Returns:
        ``(major, minor)`` parsed from ``iverilog -V`` (e.g. ``(12, 0)``); None when iverilog or vvp is
        not on PATH or no ``version X.Y`` appears in its output. Cached for the process.
    """
    if not iverilog_available():
        return None
    proc = subprocess.run(["iverilog", "-V"], capture_output=True, text=True, timeout=30)
    m = re.search(r"version (\d+)\.(\d+)", proc.stdout + proc.stderr)
    return (int(m.group(1)), int(m.group(2))) if m else None


def compile_check(code: str, *, flags: Sequence[str] = ("-g2012",), timeout_s: float = 20.0,
                  top: str | None = None) -> SandboxResult:
    """Compile (parse + elaborate) one Verilog source with iverilog in the sandbox; nothing is
    simulated, nothing is kept.

    Returns:
        The sandboxed run of ``iverilog <flags> -o design.vvp [-s top] design.sv``: ``ok`` when the
        source compiled, iverilog's error messages (capped at 256 KiB) in ``stderr``, ``timed_out``
        after ``timeout_s`` seconds.

    Raises:
        SandboxUnavailable: bwrap is required (``SFTPB_SANDBOX=bwrap``) but does not work here.
    """
    argv = ["iverilog", *flags, "-o", "design.vvp"]
    if top:
        argv += ["-s", top]
    return run_sandboxed([*argv, "design.sv"], {"design.sv": code}, timeout_s=timeout_s)
