"""Where the stages run: Dask.

* ``engine: dask`` (default): a ``dask.distributed`` LocalCluster of ``n_workers`` worker
  *processes* (one thread each by default: the stages are pure Python and hold the GIL), or, with
  ``scheduler: tcp://host:8786`` (``--scheduler`` on the command line), an existing cluster.
* ``gpu: true``: dask-cuda's LocalCUDACluster (one worker per GPU); a clear error when dask-cuda or
  a CUDA device is missing. MinHash then runs on the GPU through torch when it sees one.
* ``engine: local``: dask's synchronous scheduler in this process (no cluster start-up, easy to
  debug; used by most unit tests). Same code path otherwise.

Each stage result is persisted once (``persist``), so counting the drops, collecting the dropped
rows and feeding the next stage never recompute a stage.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, Sequence

import dask
import dask.dataframe as dd
import pandas as pd

log = logging.getLogger(__name__)


class EngineError(RuntimeError):
    pass


class Engine:
    def __init__(self, engine: str = "dask", n_workers: int = 2, threads_per_worker: int = 1,
                 scheduler: str | None = None, gpu: bool = False, memory_limit: str = "auto",
                 partition_rows: int = 2000, dashboard: bool = False) -> None:
        if engine not in ("dask", "local"):
            raise EngineError(f"engine must be 'dask' or 'local', not {engine!r}")
        self.mode = engine
        self.n_workers = int(n_workers)
        self.threads_per_worker = int(threads_per_worker)
        self.scheduler = scheduler or None
        self.gpu = bool(gpu)
        self.memory_limit = memory_limit
        self.partition_rows = int(partition_rows)
        self.dashboard = dashboard
        self.client = None
        self._stack = contextlib.ExitStack()

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> "Engine":
        # Keep text columns as they are (object dtype of Python str): dask would otherwise convert
        # every partition's object columns to Arrow strings, and each Python stage then pays an
        # Arrow -> str copy per column per map (measured: ~1 s of CPU per 20,000 1-kB documents).
        self._stack.enter_context(dask.config.set({"dataframe.convert-string": False}))
        if self.mode == "local":
            if self.gpu:
                raise EngineError("gpu=true needs engine=dask (a LocalCUDACluster)")
            self._stack.enter_context(dask.config.set(scheduler="synchronous"))
            log.info("engine: dask synchronous scheduler in this process (engine=local)")
            return self
        from dask.distributed import Client, LocalCluster

        if self.scheduler:
            log.info("engine: joining the Dask cluster at %s", self.scheduler)
            self.client = self._stack.enter_context(Client(self.scheduler))
        elif self.gpu:
            try:
                from dask_cuda import LocalCUDACluster
            except ImportError as exc:
                raise EngineError("gpu=true needs dask-cuda (pip install '.[gpu]'): "
                                  f"{exc}") from None
            try:
                cluster = self._stack.enter_context(LocalCUDACluster(
                    threads_per_worker=self.threads_per_worker,
                    dashboard_address=":8787" if self.dashboard else None))
            except Exception as exc:  # no driver, no device
                raise EngineError(f"gpu=true but no CUDA cluster could start: {exc}") from exc
            self.client = self._stack.enter_context(Client(cluster))
            log.info("engine: LocalCUDACluster with %d GPU worker(s)", len(self.client.scheduler_info()["workers"]))
        else:
            cluster = self._stack.enter_context(LocalCluster(
                n_workers=self.n_workers, threads_per_worker=self.threads_per_worker, processes=True,
                memory_limit=self.memory_limit, dashboard_address=":8787" if self.dashboard else None))
            self.client = self._stack.enter_context(Client(cluster))
            log.info("engine: Dask LocalCluster, %d worker process(es) x %d thread(s)",
                     self.n_workers, self.threads_per_worker)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()
        self.client = None

    # -- data ------------------------------------------------------------------------------
    def from_pandas(self, df: pd.DataFrame) -> dd.DataFrame:
        nparts = max(1, -(-len(df) // self.partition_rows))
        if self.client is not None:
            nparts = max(nparts, min(len(df), 2 * max(1, self.n_workers)))
        return dd.from_pandas(df.reset_index(drop=True), npartitions=max(1, nparts), sort=False)

    def from_map(self, func: Callable, items: Sequence, meta: pd.DataFrame) -> dd.DataFrame:
        return dd.from_map(func, list(items), meta=meta, enforce_metadata=False)

    def apply(self, ddf: dd.DataFrame, stage) -> dd.DataFrame:
        """Run one stage on every partition (lazily); meta comes from running it on the empty frame."""
        meta = stage(ddf._meta)
        return ddf.map_partitions(stage, meta=meta, enforce_metadata=False)

    def persist(self, ddf: dd.DataFrame) -> dd.DataFrame:
        return ddf.persist()

    def compute(self, *objs):
        out = dask.compute(*objs)
        return out if len(objs) > 1 else out[0]

    def describe(self) -> str:
        if self.mode == "local":
            return "dask synchronous (engine=local)"
        if self.scheduler:
            return f"dask cluster at {self.scheduler}"
        return f"dask {'LocalCUDACluster' if self.gpu else 'LocalCluster'} ({self.n_workers} workers)"
