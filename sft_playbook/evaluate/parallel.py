"""Run independent jobs over all cores. The work happens in iverilog/vvp subprocesses, so a
thread pool is enough (threads only wait); results come back in input order."""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TypeVar
from collections.abc import Callable, Iterable, Sequence

from tqdm import tqdm

from .simulate import default_workers

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)


def parallel_map(fn: Callable[[T], R], items: Iterable[T], *, workers: int | None = None,
                 desc: str = "simulating", progress: bool = True, costs: Sequence[float] | None = None) -> list[R]:
    """fn over items on `workers` threads (None: all cores). With `costs` (expected seconds per
    item), the most expensive items start first, so one long simulation does not end up last
    and alone (longest-processing-time-first scheduling).

    Returns:
        ``[fn(item) for item in items]``, in input order whatever the finishing order.

    Raises:
        Exception: whatever ``fn`` raised first among the finished jobs (re-raised by ``result()``; the
            jobs already submitted still run to the end).
    """
    items = list(items)
    n_workers = min(default_workers(workers), max(1, len(items)))
    results: list[R] = [None] * len(items)  # type: ignore[list-item]
    with ThreadPoolExecutor(max_workers=n_workers) as pool, \
            tqdm(total=len(items), desc=desc, unit="job", disable=not progress or not items, leave=False) as bar:
        order = range(len(items))
        if costs is not None:
            order = sorted(order, key=lambda i: -costs[i])
        futures = {pool.submit(fn, items[i]): i for i in order}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            bar.update(1)
    return results
