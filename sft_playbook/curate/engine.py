"""Where the stages run: Dask.

* ``engine: dask`` (default): a ``dask.distributed`` LocalCluster of ``n_workers`` worker
  *processes* (one thread each by default: the stages are pure Python and hold the GIL), or, with
  ``scheduler: tcp://host:8786`` (``--scheduler`` on the command line), an existing cluster.
* ``gpu: true``: dask-cuda's LocalCUDACluster (one worker per GPU); a clear error when dask-cuda or
  a CUDA device is missing. MinHash then runs on the GPU through torch when it sees one.
* ``engine: local``: every task in this process, one after the other (no cluster start-up, easy
  to debug; used by most unit tests). Same code path otherwise.

A pass over the data is one task per partition (``map``); its output stays where it was computed
(a future on a worker) and feeds the next pass, so no stage is ever computed twice, and only the
small things - drop reasons, counts, examples - travel to the driver (``gather``). Keys that grow
with the corpus (dedup keys, module names, LSH band keys) are regrouped between the workers
(``shuffle``: dask.dataframe's shuffle) and reduced there.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

import dask
import pandas as pd

from ..settings import ENGINES, EngineSettings

log = logging.getLogger(__name__)


#: the packages whose versions must match between driver and workers, and between a killed run and
#: its resume: the engine's, and the libraries whose output becomes rows (ftfy: clean; phonenumbers,
#: presidio-analyzer: PII); one not installed reads "not installed" and must be so everywhere
CHECKED_PACKAGES = ("dask", "distributed", "pandas", "numpy", "pyarrow", "cloudpickle",
                    "ftfy", "phonenumbers", "presidio-analyzer")

def _package_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def curation_files(package: Path) -> list[Path]:
    """The source files of the ``sft_playbook`` package at ``package`` that curation runs: every
    ``curate/*.py`` and, transitively, every module of the package they import (relative or
    ``sft_playbook.`` imports, also inside functions; read with ``ast``, nothing is imported),
    with the ``__init__.py`` of each package on the way. Hidden files (an editor's ``.#x.py`` lock
    link) and anything that is not a regular file are left out.

    Returns:
        The files, sorted (cached per process while no ``*.py`` of the package changes: parsing
        takes ~0.3 s).
    """
    import ast

    state = tuple(sorted((str(f), st.st_mtime_ns, st.st_size) for f in package.rglob("*.py")
                         if (st := _stat_or_none(f)) is not None))
    cached = _CURATION_FILES.get(str(package))
    if cached is not None and cached[0] == state:
        return list(cached[1])

    def usable(f: Path) -> bool:
        rel = f.relative_to(package)
        return f.is_file() and not any(p.startswith(".") or p == "__pycache__" for p in rel.parts)

    todo = [f for f in sorted((package / "curate").glob("*.py")) if usable(f)] + [package / "__init__.py"]
    seen: set[Path] = set()
    while todo:
        f = todo.pop()
        if f in seen or not usable(f):
            continue
        seen.add(f)
        here = f.relative_to(package).parts[:-1]            # the package this file belongs to
        try:
            tree = ast.parse(f.read_bytes())
        except SyntaxError:
            continue                                          # hashed as it is; imports nothing we can see
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    if node.level - 1 > len(here):
                        continue
                    base = list(here[:len(here) - (node.level - 1)])
                elif node.module and node.module.split(".")[0] == "sft_playbook":
                    base = []
                else:
                    continue
                mod = base + (node.module.split(".")[1:] if not node.level and node.module else
                              node.module.split(".") if node.module else [])
                names = [mod] + [mod + [a.name] for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name.split(".")[1:] for a in node.names if a.name.split(".")[0] == "sft_playbook"]
            else:
                continue
            for parts in names:
                for k in range(len(parts) + 1):
                    todo.append(package.joinpath(*parts[:k], "__init__.py"))
                if parts:
                    todo.append(package.joinpath(*parts[:-1], parts[-1] + ".py"))
    _CURATION_FILES[str(package)] = (state, sorted(seen))
    return sorted(seen)


#: ``curation_files``' cache: package folder -> (the package's *.py stats, the files)
_CURATION_FILES: dict[str, tuple[tuple, list[Path]]] = {}


def _stat_or_none(f: Path):
    try:
        return f.stat()
    except OSError:                     # a dangling link (an editor's lock file)
        return None


def code_version(root: Path | None = None, packages: bool = True) -> str:
    """A hash of the code that makes this process's curated rows: the files ``curation_files``
    lists (``curate/`` and what it imports from the package: ``evaluate/vparse.py`` for header
    recovery, ``verilog/sandbox.py`` for the compile check, ``io.py``, ``settings.py``...; not the
    training or evaluation code it never imports), the installed package version, and the
    versions of ``CHECKED_PACKAGES``. Used by the resume fingerprint and by the cluster check that
    the workers run the driver's code (``code_identity``).

    Args:
        root: the ``curate`` folder (default: this process's).
        packages: False: our files and version only (``code_identity``'s "code", where the package
            versions are compared one by one, so that a differing one is named, not called a code difference).

    Returns:
        64 hex characters (sha256 of the versions and those files' relative paths and bytes).
    """
    import hashlib

    root = Path(root) if root is not None else Path(__file__).resolve().parent
    package = root.parent
    h = hashlib.sha256()
    h.update(_package_version("sft-playbook").encode())
    for name in CHECKED_PACKAGES if packages else ():
        h.update(f"\0{name}={_package_version(name)}".encode())
    for f in curation_files(package):
        h.update(b"\0" + f.relative_to(package).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def code_identity() -> dict[str, str]:
    """What this process runs: ``{"sft_playbook": <folder>, "code": code_version(packages=False), "python": x.y.z,
    <package>: <version> for CHECKED_PACKAGES}``. Run on every worker by ``Engine`` to compare.

    Returns:
        That dict (all values text).
    """
    import platform

    out = {"sft_playbook": str(Path(__file__).resolve().parent.parent), "code": code_version(packages=False),
           "python": platform.python_version()}
    for name in CHECKED_PACKAGES:
        out[name] = _package_version(name)
    return out


def code_mismatches(driver: dict[str, str], workers: dict[str, Any]) -> list[str]:
    """One line per worker whose ``code_identity`` differs from the driver's (or that could not
    compute it: the value is an exception), naming the worker and what differs; [] when all match.
    The ``sft_playbook`` folder alone may differ (the same code at another path is fine).

    Returns:
        The lines, sorted by worker address.
    """
    lines = []
    for worker, ident in sorted(workers.items()):
        if isinstance(ident, BaseException):
            lines.append(f"worker {worker} cannot run the driver's sft_playbook: {type(ident).__name__}: {ident}")
            continue
        diff = [k for k in driver if k != "sft_playbook" and ident.get(k) != driver[k]]
        if not diff:
            continue
        what = []
        for k in diff:
            if k == "code":
                what.append(f"sft_playbook code differs (worker imports {ident.get('sft_playbook')}, "
                            f"driver {driver['sft_playbook']}; hash {str(ident.get(k))[:12]} vs {driver[k][:12]})")
            else:
                what.append(f"{k} {ident.get(k)} vs driver's {driver[k]}")
        lines.append(f"worker {worker} does not run the driver's code: " + "; ".join(what))
    return lines


def missing_tools(tools: Sequence[str]) -> list[str]:
    """The programs of ``tools`` this process cannot find on its PATH (run on every worker by ``Engine``).

    Returns:
        The missing names, in the order given ([] when all are there).
    """
    import shutil

    return [t for t in tools if shutil.which(t) is None]


def tool_versions(tools: Sequence[str]) -> dict[str, str]:
    """The version line of each program of ``tools`` (``<tool> -V``, first line, as Icarus Verilog's
    ``iverilog``/``vvp`` print it), run on every worker by ``Engine`` and hashed into the resume
    fingerprint: another Icarus version may judge ``compiles`` differently.

    Returns:
        ``{tool: version line}``; "missing" for a program not on PATH, "unknown" when it gives no line.
    """
    import shutil
    import subprocess

    out = {}
    for t in tools:
        exe = shutil.which(t)
        if exe is None:
            out[t] = "missing"
            continue
        try:
            res = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
            line = (res.stdout or res.stderr).strip().splitlines()
        except (OSError, subprocess.SubprocessError):
            line = []
        out[t] = line[0] if line else "unknown"
    return out


def tool_gaps(tools: Sequence[str], workers: dict[str, Any]) -> list[str]:
    """One line per worker that lacks one of ``tools`` (``missing_tools``' answer per worker, or the
    exception it raised); [] when every worker has them all.

    Returns:
        The lines, sorted by worker address.
    """
    lines = []
    for worker, missing in sorted(workers.items()):
        if isinstance(missing, BaseException):
            lines.append(f"worker {worker} could not look for {', '.join(tools)}: {type(missing).__name__}: {missing}")
        elif missing:
            lines.append(f"worker {worker} has no {' or '.join(missing)} on its PATH")
    return lines


class ProgressLine:
    """Progress for a log that is not a terminal: one plain ``log.info`` line (logger
    ``sft_playbook.curate``) at most every ``every_s`` seconds: ``<what>: <done> / <total> <unit>
    (<pct>), <rate> <unit>/s`` (total unknown: ``?``). ``every_s`` <= 0: never."""

    def __init__(self, what: str, total: int | None, every_s: float, clock: Callable[[], float] = time.monotonic,
                 unit: str = "rows") -> None:
        self.what, self.total, self.every_s, self.clock, self.unit = what, total, float(every_s), clock, unit
        self.done: float = 0
        self.running: float = 0
        self.t0 = self.last = clock()

    def update(self, n: float, running: float | None = None) -> None:
        """``n`` more done (rows, signatures, pairs: ``unit``); logs a line when ``every_s`` has
        passed since the last. ``running``: what the unfinished tasks have done so far (shown
        with the finished, not added to them; None: as last given)."""
        self.done += n
        if running is not None:
            self.running = running
        now = self.clock()
        if self.every_s > 0 and now - self.last >= self.every_s:
            self.last = now
            shown = self.done + self.running
            rate = shown / max(now - self.t0, 1e-9)
            u = self.unit
            of = f"{self.total} {u} ({100 * shown / max(self.total, 1):.0f}%)" if self.total else f"? {u}"
            logging.getLogger("sft_playbook.curate").info("%s: %d / %s, %.0f %s/s", self.what, round(shown), of, rate, u)


#: the constructor's defaults: the settings' (``settings.EngineSettings``), declared there once
_E = EngineSettings()


#: errors a task raises for bad input or output, which the driver reports as one line (file:line):
#: the worker's "Compute Failed" log record (task, exception, traceback) is not shown for them
EXPECTED_TASK_ERRORS = ("SourceError", "InputError", "OutputError", "StageError", "PipelineError", "ConfigError")


class QuietExpectedErrors(logging.Filter):
    """Drops ``distributed.worker``'s "Compute Failed" record when the task raised one of
    ``EXPECTED_TASK_ERRORS``; every other record (and any other failure) passes."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102 - logging.Filter's
        if not (isinstance(record.msg, str) and record.msg.startswith("Compute Failed")):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        text = str(args[3]).lstrip("\"' ") if len(args) > 3 else ""
        return not any(text.startswith(name + "(") for name in EXPECTED_TASK_ERRORS)


def quiet_expected_errors() -> None:
    """Install ``QuietExpectedErrors`` on this process's ``distributed.worker`` logger (once)."""
    lg = logging.getLogger("distributed.worker")
    if not any(isinstance(f, QuietExpectedErrors) for f in lg.filters):
        lg.addFilter(QuietExpectedErrors())


try:
    from distributed.diagnostics.plugin import WorkerPlugin as _WorkerPlugin
except ImportError:  # pragma: no cover - distributed is a dependency
    _WorkerPlugin = object


def worker_problems(driver: dict[str, str], tools: Sequence[str], versions: dict[str, str],
                    tokens: dict[str, str]) -> str:
    """On a worker: what keeps it from curating for this driver, as one text ("" when nothing):
    another ``code_identity``, a program of ``tools`` missing or of another version than the
    driver's (``versions``), a token file of ``tokens`` (path -> text; written by the driver into
    the folders the workers share) it cannot read back.

    Returns:
        "; "-joined problems (without the worker's address), or "".
    """
    out = [line.removeprefix("worker w ") for line in code_mismatches(driver, {"w": code_identity()})]
    missing = missing_tools(tools)
    if missing:
        out.append(f"has no {' or '.join(missing)} on its PATH")
    elif tools:
        mine = tool_versions(tools)
        out += [f"runs {t} {mine.get(t)!r} vs the driver's {v!r}" for t, v in versions.items() if mine.get(t) != v]
    for path, text in tokens.items():
        try:
            ok = Path(path).read_text() == text
        except OSError:
            ok = False
        if not ok:
            out.append(f"does not see {Path(path).parent} (a file the driver wrote there is missing on the worker)")
    return "; ".join(out)


#: the event topic on which a task reports rows done inside its partition (``report_rows``)
ROWS_TOPIC = "sft-playbook-rows"

#: seconds between two ``report_rows`` events of one task
REPORT_EVERY_S = 5.0


class RowReporter:
    """Inside a task on a Dask worker: ``update(k)`` after k more rows of the partition are done;
    at most every ``REPORT_EVERY_S`` seconds the total goes to the driver as an event on
    ``ROWS_TOPIC`` (``{"key": task key, "rows": total}``), which ``Engine.gather_each`` adds to
    the pass's progress while the task runs. A slow stage (the compile check: ~7 rows/s a thread
    on real rows) thus moves the bar within a partition instead of once per partition. Outside a
    worker (engine=local) it does nothing."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock, self.done, self.last = clock, 0, clock()
        try:
            from distributed import get_worker

            self.worker = get_worker()
            self.key = self.worker.get_current_task()
        except (ImportError, ValueError, AttributeError):
            self.worker = self.key = None

    def update(self, rows: int) -> None:
        """``rows`` more rows done."""
        self.done += rows
        if self.worker is None or self.key is None:
            return
        now = self.clock()
        if now - self.last >= REPORT_EVERY_S:
            self.last = now
            self.worker.log_event(ROWS_TOPIC, {"key": str(self.key), "rows": int(self.done)})


#: seconds a run joining a cluster (``--scheduler``) waits for its first worker
WORKER_WAIT_S = 300

#: the event topic on which ``WorkerGuardPlugin`` reports a worker that failed the checks
GUARD_TOPIC = "sft-playbook-worker-refused"


class WorkerGuardPlugin(_WorkerPlugin):
    """Worker plugin: every worker that joins the cluster during a run is checked as the first ones
    were (``worker_problems``: code, package and tool versions, shared folders). One that fails is
    reported on ``GUARD_TOPIC`` with the run's id (kept by the scheduler, so also after the worker
    left; another run on the same scheduler ignores it), and the driver stops the run at its next check (``Engine.assert_workers``: after every pass and before
    the outputs are written); nothing it computed reaches the outputs. The worker is not closed
    here: tasks the scheduler already gave it would then wait for a worker that may never come."""

    def __init__(self, run_id: str, driver: dict[str, str], tools: Sequence[str], versions: dict[str, str],
                 tokens: dict[str, str]) -> None:
        self.run_id = run_id
        #: one plugin per run (two runs on one scheduler do not replace each other's); removed at the run's end
        self.name = f"sft-playbook-worker-guard-{run_id}"
        self.args = (driver, tuple(tools), dict(versions), dict(tokens))

    def setup(self, worker: Any) -> None:  # noqa: D102 - WorkerPlugin's
        problem = worker_problems(*self.args)
        if problem:
            worker.log_event(GUARD_TOPIC, {"run": self.run_id, "worker": worker.address, "problem": problem})
            logging.getLogger("distributed.worker").error("sft-playbook: this worker %s; curation run %s will stop",
                                                          problem, self.run_id)


class QuietExpectedErrorsPlugin(_WorkerPlugin):
    """Worker plugin: ``quiet_expected_errors()`` in every worker process, present and future."""

    name = "sft-playbook-quiet-expected-errors"

    def setup(self, worker: Any) -> None:  # noqa: D102 - WorkerPlugin's
        quiet_expected_errors()


#: At most this many frames go into one ``Engine.shuffle``; more are first concatenated (in order,
#: on the workers) into this many. Dask's task shuffle of P inputs into n outputs builds about
#: ``max(P, n) x (k + 2)`` tasks per stage (k = the ``max_branch`` split, 32 by default), and its
#: task state lives in the scheduler, which a LocalCluster runs in the driver process: with
#: ``partition_rows: 2000``, 1M rows are 500 partitions and each shuffle ~26,000 tasks, enough to
#: grow the driver's peak RSS with the corpus (docs/benchmarks.md, issue 15). Coalesced to 32 inputs
#: (one stage when n <= 32), a shuffle's graph no longer grows with the partitions; each input
#: frame then grows with the corpus instead (keys only: 44 B a row per LSH band, ~60 B per
#: module name), on the workers.
SHUFFLE_MAX_INPUTS = 32


def _concat_frames(*frames: pd.DataFrame) -> pd.DataFrame:
    """Concatenate partitions (a task on a worker).

    Returns:
        The frames one after the other, index reset (empty, with the first's columns, when they
        are all empty)."""
    return pd.concat(frames, ignore_index=True)


class EngineError(RuntimeError):
    """The engine cannot be set up as configured (bad ``engine`` value, GPU without dask-cuda, ...)."""


class Engine:
    """Where the curation tasks run: a Dask cluster (a LocalCluster it starts, a LocalCUDACluster
    with ``gpu``, or an existing ``scheduler``), or this process one task after the other
    (``engine=local``). A context manager: the cluster is started on entry and stopped on exit.
    Defaults are the typed settings' (``sft_playbook.settings``).

    Args:
        engine: ``dask`` or ``local``.
        n_workers: worker processes of a LocalCluster.
        threads_per_worker: threads in each worker.
        scheduler: address of a running scheduler to use instead of starting a cluster.
        gpu: one worker per GPU (LocalCUDACluster; needs dask-cuda).
        memory_limit: per-worker memory limit (Dask syntax, e.g. ``4GiB``, or ``auto``).
        partition_rows: rows per partition.
        dashboard: start the Dask dashboard.

    Raises:
        EngineError: ``engine`` is not ``dask`` or ``local``.
    """
    def __init__(self, engine: str = _E.engine, n_workers: int = _E.n_workers,
                 threads_per_worker: int = _E.threads_per_worker, scheduler: str | None = _E.scheduler,
                 gpu: bool = _E.gpu, memory_limit: str = _E.memory_limit, partition_rows: int = _E.partition_rows,
                 dashboard: bool = _E.dashboard, required_tools: Sequence[str] = (),
                 tools_needed_by: str = "the run") -> None:
        if engine not in ENGINES:
            raise EngineError(f"engine must be 'dask' or 'local', not {engine!r}")
        self.mode = engine
        self.n_workers = int(n_workers)
        self.threads_per_worker = int(threads_per_worker)
        self.scheduler = scheduler or None
        self.gpu = bool(gpu)
        self.memory_limit = memory_limit
        self.partition_rows = int(partition_rows)
        self.dashboard = dashboard
        #: programs every worker (engine=local: this process) must find on PATH, and who needs them
        self.required_tools = tuple(required_tools)
        self.tools_needed_by = tools_needed_by
        self.client = None
        self._stack = contextlib.ExitStack()
        #: the tool versions every worker must have (the driver's, or the first worker's where the driver lacks them)
        self._tool_reference: dict[str, str] = {}
        #: seconds between plain progress lines (``gather_progress``) when the log is not a terminal
        self.progress_every_s = 30.0

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> Engine:
        if self.mode == "local":
            if self.gpu:
                raise EngineError("gpu=true needs engine=dask (a LocalCUDACluster)")
            log.info("engine: every task in this process, one after the other (engine=local)")
            missing = missing_tools(self.required_tools)
            if missing:
                raise EngineError(self._tools_error([f"this machine (engine=local) has no {' or '.join(missing)} "
                                                     "on its PATH"]))
            return self
        from dask.distributed import Client, LocalCluster

        # importing distributed sets its loggers to INFO again (cluster start/stop chatter, and a
        # harmless CommClosedError traceback at shutdown); keep them at WARNING unless debugging,
        # here and in the worker processes (they read the DASK_ environment at start)
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
            logging.getLogger("distributed").setLevel(logging.WARNING)
            os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")

        if not self.dashboard and not self.scheduler:
            # Without a dashboard nobody reads the workers' statistical profiler, which samples
            # every thread's stack every 10 ms and takes the GIL from the task to do it (measured:
            # tasks ran ~25% slower than the same work in a plain process). Clusters we start only.
            self._stack.enter_context(dask.config.set({"distributed.worker.profile.enabled": False}))
        if self.scheduler:
            log.info("engine: joining the Dask cluster at %s", self.scheduler)
            self.client = self._stack.enter_context(Client(self.scheduler))
            if not self.client.scheduler_info().get("workers"):
                log.info("engine: no worker has joined %s yet; waiting up to %d s for the first", self.scheduler,
                         WORKER_WAIT_S)
                try:
                    self.client.wait_for_workers(1, timeout=WORKER_WAIT_S)
                except (TimeoutError, OSError):
                    self._stack.close()
                    self.client = None
                    raise EngineError(f"no Dask worker joined the cluster at {self.scheduler} within {WORKER_WAIT_S} s "
                                      "(start workers with: dask worker <scheduler address>)") from None
            self.n_workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        elif self.gpu:
            try:
                from dask_cuda import LocalCUDACluster
            except ImportError as exc:
                raise EngineError("gpu=true needs dask-cuda (pip install '.[gpu]'): "
                                  f"{exc}") from None
            try:
                cluster = self._stack.enter_context(LocalCUDACluster(
                    threads_per_worker=self.threads_per_worker,
                    **self._dashboard_kwargs()))
            except Exception as exc:  # no driver, no device
                raise EngineError(f"gpu=true but no CUDA cluster could start: {exc}") from exc
            self.client = self._stack.enter_context(Client(cluster))
            log.info("engine: LocalCUDACluster with %d GPU worker(s)", len(self.client.scheduler_info()["workers"]))
        else:
            cluster = self._stack.enter_context(LocalCluster(
                n_workers=self.n_workers, threads_per_worker=self.threads_per_worker, processes=True,
                memory_limit=self.memory_limit, **self._dashboard_kwargs()))
            self.client = self._stack.enter_context(Client(cluster))
            log.info("engine: Dask LocalCluster, %d worker process(es) x %d thread(s)",
                     self.n_workers, self.threads_per_worker)
        self.check_workers()
        quiet_expected_errors()
        self.client.register_plugin(QuietExpectedErrorsPlugin())
        self.guard_workers()
        return self

    def guard_workers(self, tokens: dict[str, str] | None = None) -> None:
        """Check every worker that joins from now on as the first ones were checked: a
        ``WorkerGuardPlugin`` on the cluster (replacing the one before), and ``assert_workers``
        checks the workers it has not seen. ``tokens``: token files (path -> text) in folders
        every worker must see (``pipeline.check_shared_folders``); they must stay until the run ends."""
        if self.client is None:
            return
        import secrets

        self._guard = (code_identity(), tuple(self.required_tools), dict(self._tool_reference), dict(tokens or {}))
        old = getattr(self, "_guard_plugin", None)
        plugin = WorkerGuardPlugin(getattr(self, "_run_id", None) or secrets.token_hex(8), *self._guard)
        self._run_id = plugin.run_id
        self.client.register_plugin(plugin)
        self._guard_plugin = plugin.name
        if old and old != plugin.name:
            self.client.unregister_worker_plugin(old)
        self._checked = set(self.client.scheduler_info().get("workers", {}))

    def assert_workers(self) -> None:
        """Between passes and before the outputs are written: stop the run if a worker that joined
        during it failed the checks (reported by ``WorkerGuardPlugin``, even if it is gone since),
        and check the workers that joined since the last call.

        Raises:
            EngineError: one line naming each such worker and what is wrong with it.
        """
        if self.client is None or not getattr(self, "_guard", None):
            return
        bad = [f"worker {msg.get('worker')} joined during the run and {msg.get('problem')}"
               for _, msg in self.client.get_events(GUARD_TOPIC)
               if isinstance(msg, dict) and msg.get("run") == self._run_id]
        new = sorted(set(self.client.scheduler_info().get("workers", {})) - self._checked)
        if new:
            found = self.client.run(worker_problems, *self._guard, workers=new, on_error="return")
            for w, problem in sorted(found.items()):
                if isinstance(problem, BaseException):
                    bad.append(f"worker {w} joined during the run and cannot run the driver's sft_playbook: "
                               f"{type(problem).__name__}: {problem}")
                elif problem:
                    bad.append(f"worker {w} joined during the run and {problem}")
            self._checked |= set(found)
        if bad:
            raise EngineError("; ".join(sorted(set(bad))) + " - its partitions cannot be trusted; the run stops "
                              "(start every worker with the driver's code, packages and tools, seeing work_dir)")

    def check_workers(self) -> None:
        """Every worker must import the same sft_playbook code and package versions as this
        process (a worker started without the right PYTHONPATH imports another checkout), and find
        ``required_tools`` on its PATH (a worker without iverilog would skip the compile check), in
        the driver's version (``tool_versions``).

        Raises:
            EngineError: one line naming each worker that differs and what differs, or that lacks a tool.
        """
        if self.client is None:
            return
        driver = code_identity()
        workers = self.client.run(code_identity, on_error="return")
        bad = code_mismatches(driver, workers)
        if not bad and self.required_tools:
            gaps = tool_gaps(self.required_tools, self.client.run(missing_tools, self.required_tools, on_error="return"))
            bad = [self._tools_error(gaps)] if gaps else []
            if not bad:
                mine = tool_versions(self.required_tools)
                theirs = self.client.run(tool_versions, self.required_tools, on_error="return")
                whose = "the driver's"
                if "missing" in mine.values():      # the driver never compiles on a cluster: the first worker decides
                    first = next(((w, v) for w, v in sorted(theirs.items()) if isinstance(v, dict)), None)
                    if first is not None:
                        whose, mine = f"worker {first[0]}'s", first[1]
                bad = [f"worker {w} runs " + ", ".join(f"{t} {v.get(t)!r}" for t in mine if v.get(t) != mine[t])
                       + f" vs {whose} " + ", ".join(f"{t} {mine[t]!r}" for t in mine if v.get(t) != mine[t])
                       if isinstance(v, dict) else f"worker {w} could not report its tool versions: {v!r}"
                       for w, v in sorted(theirs.items()) if not (isinstance(v, dict) and v == mine)]
                self._tool_reference = mine
        if bad:
            self._stack.close()
            self.client = None
            raise EngineError("; ".join(bad))

    def _tools_error(self, gaps: list[str]) -> str:
        """The one line refusing a run whose workers lack ``required_tools``.

        Returns:
            ``gaps`` (one line per worker) joined by "; ", then who needs which tools and how to fix it.
        """
        return ("; ".join(gaps) + f": {self.tools_needed_by} needs {', '.join(self.required_tools)} on every "
                "worker (install Icarus Verilog there, e.g. scripts/bootstrap.sh, or start the worker with it on "
                "PATH; or turn the stage off)")

    def _dashboard_kwargs(self) -> dict[str, Any]:
        """The cluster's dashboard arguments: port 8787 when on; when off no dashboard, and the
        scheduler's small HTTP server (health, metrics) on a free port, so that a second run or a
        Jupyter server on 8787 gives no "Port 8787 is already in use" warning.

        Returns:
            Keyword arguments for ``LocalCluster`` / ``LocalCUDACluster``.
        """
        if self.dashboard:
            return {"dashboard_address": ":8787"}
        return {"dashboard_address": None, "scheduler_kwargs": {"dashboard_address": ":0"}}

    def __exit__(self, *exc: Any) -> None:
        if self.client is not None:
            # the run's plugins go with it: a worker joining a long-lived scheduler later is not checked
            # against this run's code and folders, and one from another environment (without
            # sft_playbook, which it would need to unpickle them) can start (a killed driver leaves them)
            for name in (getattr(self, "_guard_plugin", None), QuietExpectedErrorsPlugin.name):
                if name:
                    with contextlib.suppress(Exception):
                        self.client.unregister_worker_plugin(name)
        self._stack.close()
        self.client = None

    # -- data ------------------------------------------------------------------------------
    # The data is a list of partitions (pandas frames): plain frames in this process with
    # engine=local, Dask futures held by the workers otherwise. Stages run as one task per
    # partition through ``map`` (no task graph to build or optimise, arguments not hashed), and
    # only what the driver needs - drop reasons, counts, dedup keys - comes back with ``gather``.
    def partitions(self, df: pd.DataFrame) -> list:
        """Split a frame into partitions of about ``partition_rows`` rows (at least two per worker on
        a cluster) in row order; on a cluster they are scattered to the workers.

        Returns:
            ``ceil(len(df) / partition_rows)`` partitions (at least one; on a cluster at least
            ``min(len(df), 2 x workers)``), each a slice of ``df`` with its index reset: Dask futures
            on a cluster, pandas frames with engine=local.
        """
        df = df.reset_index(drop=True)
        nparts = max(1, -(-len(df) // self.partition_rows))
        if self.client is not None:
            nparts = max(nparts, min(len(df), 2 * max(1, self.n_workers)))
        bounds = [round(i * len(df) / nparts) for i in range(nparts + 1)]
        frames = [df.iloc[bounds[i]:bounds[i + 1]] for i in range(nparts)]
        # hash=False: the keys are random, the frames are not hashed (tokenised) to name them
        return self.client.scatter(frames, hash=False) if self.client is not None else frames

    def map(self, func: Callable, parts: Sequence, *iterables: Sequence, priority: int = 0) -> list:
        """``func(part, *args)`` for every partition (and the matching items of ``iterables``):
        futures on a cluster (computed there, in parallel), values with engine=local.
        ``priority``: Dask's task priority (higher runs first among ready tasks; 0 = submission order,
        so a task mapped later waits behind every ready task mapped before it).

        Returns:
            One result per partition, in partition order: futures on a cluster, values with engine=local.
        """
        if self.client is None:
            return [func(*args) for args in zip(parts, *iterables)]
        return self.client.map(func, parts, *iterables, pure=False, priority=priority)

    def submit(self, func: Callable, *args: Any) -> Any:
        """One task ``func(*args)`` (arguments may be futures of earlier tasks: they are fetched
        worker to worker, never through this process).

        Returns:
            A future of the task's value on a cluster; the value itself with engine=local.
        """
        if self.client is None:
            return func(*args)
        return self.client.submit(func, *args, pure=False)

    def gather_each(self, parts: Sequence, done: Callable[[Any], None],
                    partial: Callable[[int], None] | None = None, work_keys: Sequence[str] | None = None) -> list:
        """Like ``gather``, calling ``done(value)`` as each task finishes (progress bars).

        Args:
            parts: the futures to gather.
            done: called with each value as its task finishes.
            partial: called with the rows that the tasks still running have reported done so far
                (``RowReporter``: events on ``ROWS_TOPIC``) every few seconds, and right after the
                ``done`` calls of tasks that finished (engine=local: 0 after each ``done``).
            work_keys: per future of ``parts``, the key of the task whose ``RowReporter`` reports
                its progress (the pass task that ``parts[i]`` takes its value from).

        Returns:
            The values, in the order of ``parts`` (not of completion); an exception raised inside a
            task is raised here.
        """
        if self.client is None:
            values = list(parts)
            for v in values:
                done(v)
                if partial is not None:
                    partial(0)
            return values
        if partial is not None and work_keys is not None:
            return self._gather_with_partial(list(parts), done, partial, [str(k) for k in work_keys])
        from dask.distributed import as_completed

        where = {f.key: i for i, f in enumerate(parts)}
        values: list = [None] * len(parts)
        for fut in as_completed(list(parts)):
            v = fut.result()
            values[where[fut.key]] = v
            done(v)
        return values

    def _gather_with_partial(self, parts: list, done: Callable[[Any], None], partial: Callable[[int], None],
                             work_keys: list[str], poll_s: float = 2.0) -> list:
        """``gather_each`` that also reports the running tasks' rows (``RowReporter`` events).

        Returns:
            The values, in the order of ``parts``.
        """
        from dask.distributed import wait

        values: list = [None] * len(parts)
        remaining = set(range(len(parts)))
        shown = -1
        while remaining:
            try:
                wait([parts[i] for i in remaining], timeout=poll_s, return_when="FIRST_COMPLETED")
            except TimeoutError:
                pass
            finished = [i for i in sorted(remaining) if parts[i].done()]
            for i in finished:
                values[i] = parts[i].result()      # raises the task's exception here
            remaining.difference_update(finished)
            running = {work_keys[i] for i in remaining}
            latest: dict[str, int] = {}
            if running:
                for _, msg in self.client.get_events(ROWS_TOPIC):
                    if isinstance(msg, dict) and msg.get("key") in running:
                        latest[msg["key"]] = max(latest.get(msg["key"], 0), int(msg.get("rows", 0)))
            now = sum(latest.values())
            for i in finished:                     # done, then partial: a finished task's rows move from
                done(values[i])                    # "running" to "done" in one step, never counted twice or lost
            if finished or now != shown:
                shown = now
                partial(now)
        return values

    def gather_progress(self, parts: Sequence, what: str, total: float | None, unit: str = "rows",
                        size: Callable[[Any], float] | None = None) -> list:
        """``gather_each`` with progress (the global fits' steps): a tqdm bar on a terminal, else a
        plain ``ProgressLine`` every ``progress_every_s`` seconds. ``parts``: small results (counts),
        one per task of the step; ``size(value)``: how much of ``total`` one is (default: the value).

        Returns:
            The values, in the order of ``parts``.
        """
        from tqdm import tqdm

        size = size or (lambda v: v)
        with tqdm(total=total, desc=what, unit=f" {unit}", unit_scale=True, disable=None, leave=False) as bar:
            plain = ProgressLine(what, total, self.progress_every_s, unit=unit) if bar.disable else None

            def done(v):
                n = size(v)
                bar.update(n)
                if plain is not None:
                    plain.update(n)

            return self.gather_each(parts, done)

    def shuffle(self, frames: Sequence, on: list[str], npartitions: int, meta: pd.DataFrame) -> list:
        """Dask's own shuffle of the frames (one pandas frame per item; futures on a cluster): the
        rows regrouped into ``npartitions`` frames by a hash of the columns ``on``, so that all rows
        with equal values in ``on`` are in the same frame. On a cluster this is
        ``dask.dataframe``'s task-based shuffle (``shuffle_method="tasks"``: measured 3x faster
        than P2P for these narrow numeric frames, which P2P spills to disk); the data moves worker
        to worker and the result stays there (futures, in no particular order). With engine=local
        the same grouping by ``pandas.util.hash_pandas_object`` in this process. ``meta``: an
        empty frame with the columns and dtypes of the items. It returns once the outputs are
        computed (the inputs are then no longer needed). More than ``SHUFFLE_MAX_INPUTS``
        frames are first concatenated on the workers into that many, so the shuffle's task graph
        (held by the scheduler) does not grow with the number of partitions.

        Returns:
            ``npartitions`` frames (futures on a cluster, in no particular order), or [] when
            ``frames`` is empty.
        """
        frames = list(frames)
        n = max(1, int(npartitions))
        if not frames:
            return []
        if self.client is not None and len(frames) > SHUFFLE_MAX_INPUTS:
            frames = self._coalesce(frames, SHUFFLE_MAX_INPUTS)
        if self.client is None:
            df = pd.concat(frames, ignore_index=True)
            if n == 1 or df.empty:
                return [df] + [df.iloc[:0]] * (n - 1)
            b = (pd.util.hash_pandas_object(df[on], index=False).to_numpy() % n).astype("int64")
            return [df[b == i] for i in range(n)]
        import dask.dataframe as dd
        from dask.distributed import futures_of

        from dask.distributed import wait

        with dask.config.set({"dataframe.convert-string": False}):
            ddf = dd.from_delayed(frames, meta=meta, verify_meta=False)
            out = futures_of(self.client.persist(ddf.shuffle(on=list(on), npartitions=n, shuffle_method="tasks")))
        # The inputs (``frames``: the caller's futures, or the concatenations above) stay referenced
        # here until the outputs are computed: released at once, the client could drop them before
        # the scheduler had read the shuffle's graph (seen once: "Error during deserialization of
        # the task graph", then "lost dependencies").
        wait(out)
        del frames, ddf
        return out

    def _coalesce(self, frames: list, groups: int) -> list:
        """The frames (futures) concatenated, in order, into ``groups`` frames of about equal
        counts: one ``pandas.concat`` task per group, run on the workers (the rows never pass
        through this process).

        Returns:
            ``groups`` futures."""
        bounds = [round(i * len(frames) / groups) for i in range(groups + 1)]
        return [self.client.submit(_concat_frames, *frames[bounds[i]:bounds[i + 1]], pure=False)
                for i in range(groups)]

    def gather(self, parts: Sequence) -> list:
        """The values (brought to this process); exceptions raised inside a task surface here.

        Returns:
            A list of the values, in the order of ``parts``.
        """
        return list(parts) if self.client is None else self.client.gather(list(parts))

    def collect(self, func: Callable, parts: Sequence) -> pd.DataFrame:
        """``func`` on every partition, the results concatenated here (e.g. the keys a dedup needs).

        Returns:
            One frame of all partitions' results, index reset (an empty frame when there are none).
        """
        frames = self.gather(self.map(func, parts))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def describe(self) -> str:
        """One line on where the tasks run, for the log and the report.

        Returns:
            ``"this process (engine=local)"``, ``"dask cluster at ADDRESS"`` or ``"dask LocalCluster (N workers)"``
            (``LocalCUDACluster`` with GPUs).
        """
        if self.mode == "local":
            return "this process (engine=local)"
        if self.scheduler:
            return f"dask cluster at {self.scheduler}"
        return f"dask {'LocalCUDACluster' if self.gpu else 'LocalCluster'} ({self.n_workers} workers)"
