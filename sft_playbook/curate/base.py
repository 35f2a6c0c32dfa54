"""The shared stage mechanism (datatrove's base filter, NeMo Curator's ScoreFilter/Modify idea).

A stage is a small configured object with a ``name`` and ``process(df) -> df``. ``process`` gets a
*copy* of one partition (a pandas DataFrame) and answers, per row, keep or drop: it calls
``self.drop(df, mask, reason, detail)`` for the rows it rejects and may rewrite cells of the rows it
keeps (cleaning, redaction). Everything else is done once, here:

* the input partition is copied before ``process`` sees it (a stage cannot mutate its input);
* two bookkeeping columns, ``_drop_reason`` ("" = keep) and ``_drop_detail``, are added;
* integer columns a stage adds with the ``_n_`` prefix are counters (e.g. ``_n_email`` = e-mail
  addresses redacted in that row); the pipeline sums them per stage;
* an exception inside a partition is re-raised as ``StageError`` naming the stage and the ids of
  the partition: failures surface, they are never swallowed.

Stages that need a global view (deduplication) implement ``fit(parts, engine, keys)``, which runs
before ``process`` and may compute over the whole data set (the list of partitions, through the
engine); ``process`` then applies the decision per partition. What such a fit needs from every row
(a hash, LSH band keys, module names) comes from ``keys(df)``: the pipeline computes it in the pass
that precedes the stage, on the rows that pass keeps, so a dedup costs no extra pass over the data;
with ``keys_on_workers`` the keys stay on the workers and ``fit`` reduces them there.
"""
from __future__ import annotations

import time

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

REASON = "_drop_reason"
DETAIL = "_drop_detail"
COUNTER_PREFIX = "_n_"
BOOKKEEPING = (REASON, DETAIL)


def _cow() -> bool:
    if int(pd.__version__.split(".")[0]) >= 3:
        return True                        # pandas 3: copy-on-write is always on
    try:
        return pd.get_option("mode.copy_on_write") is True
    except (KeyError, pd.errors.OptionError):
        return False


_COPY_ON_WRITE = _cow()


def _blank(n: int) -> np.ndarray:
    """A column of empty strings as plain Python objects (pandas 3 would otherwise make an Arrow
    string column, and every row filter of it then costs an Arrow ``take``).

    Returns:
        An object-dtype array of ``n`` empty strings, shape ``[n]``.
    """
    return np.full(n, "", dtype=object)


def _as_str(col: pd.Series) -> pd.Series:
    """``col.astype(str)`` kept as object dtype; a no-op when every value is already a str.

    Returns:
        ``col`` itself when already all str (object dtype); else a new object-dtype Series of ``str(v)``.
    """
    if col.dtype == object and pd.api.types.infer_dtype(col, skipna=False) in ("string", "empty"):
        return col
    return col.astype(str).astype(object)


class StageError(RuntimeError):
    """A stage failed inside a partition; the message names the stage and the partition's ids."""


class Stage:
    """Base class. Subclasses set ``name`` and implement ``process``; each subclass's constructor
    names its settings as keyword arguments (``pipeline.build_stages`` passes them from the typed
    ``settings.CurateSettings``, so a typo in the YAML is refused there, by key) and hands them to
    this constructor, which keeps them in ``self.config`` (``repr``, and the stage's own use)."""

    name: str = "stage"
    #: True when ``fit`` needs the data as it is after the previous stages (dedup): such a stage
    #: starts a new chain; other stages' ``fit`` (e.g. loading a benchmark) runs up front
    is_global: bool = False

    #: True when ``fit`` takes the keys as one item per partition, left on the workers (futures on
    #: a cluster), rather than concatenated on the driver: for keys whose total grows with the
    #: corpus (exact-dedup hashes); ``fit`` then reduces them on the workers (a shuffle by key)
    keys_on_workers: bool = False

    #: programs the stage runs (looked up on PATH); the engine checks every worker has them before
    #: the run starts (``engine.missing_tools``), so no worker silently skips the stage's work
    tools: tuple[str, ...] = ()

    def __init__(self, **settings: Any) -> None:
        self.config = dict(settings)

    def state(self) -> Any:
        """What ``process`` needs from ``fit`` when that stays on the workers, handed by the pipeline to every
        task of the pass, where ``set_state`` receives its value.

        Returns:
            A future (or, with engine=local, the value itself); None (the default): the stage carries its
            decision itself.
        """
        return None

    def set_state(self, value: Any) -> None:
        """Receive ``state()``'s value on the worker, before ``process`` runs."""

    # -- to implement ---------------------------------------------------------------------------
    def keys(self, df: pd.DataFrame) -> pd.DataFrame | None:
        """Global stages: the per-row facts ``fit`` needs, for one partition.

        Args:
            df: one partition, the rows the previous pass kept.

        Returns:
            One row per row of ``df`` (columns chosen by the stage, e.g. a hash or band keys), or None (the
            default) when the stage needs no keys.
        """
        return None

    def fit(self, parts, engine, keys: pd.DataFrame | None = None) -> None:  # noqa: D401 - optional hook
        """Decide before ``process`` runs (once). ``parts``: the partitions as they are now;
        ``keys``: ``self.keys`` of all of them, concatenated, or None when it was not computed
        (then compute it: ``engine.collect(self.keys, parts)``)."""

    def process(self, df: pd.DataFrame) -> pd.DataFrame:
        """Apply the stage to one partition: mark rejected rows (``self.drop``) and/or rewrite cells.

        Args:
            df: the partition (a copy, with empty ``REASON``/``DETAIL`` columns added by ``__call__``).

        Returns:
            The same rows (never fewer: rows are dropped by marking them), with ``REASON`` set for
            rejected ones and any counter columns (``_n_*``) added.
        """
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        """Extra, stage-specific facts for the report.

        Returns:
            A JSON-ready dict (e.g. duplicate clusters); empty (the default) when the stage has none.
        """
        return {}

    # -- helpers for subclasses --------------------------------------------------------------
    @staticmethod
    def drop(df: pd.DataFrame, mask, reason: str, detail=None) -> None:
        """Mark rows (boolean mask, aligned with df) as dropped with a reason, unless an earlier
        rule of the same stage already dropped them (the first reason wins). ``detail``: one string
        for all, or a Series with (at least) the rejected rows' index."""
        mask = pd.Series(mask, index=df.index).fillna(False).astype(bool) & (df[REASON] == "")
        if not mask.any():
            return
        df.loc[mask, REASON] = reason
        if detail is None:
            df.loc[mask, DETAIL] = ""
        elif isinstance(detail, pd.Series):    # aligned with df, or only the rows a rule rejects
            df.loc[mask, DETAIL] = detail.reindex(mask.index[mask.to_numpy()]).astype(str)
        else:
            df.loc[mask, DETAIL] = str(detail)

    @staticmethod
    def kept(df: pd.DataFrame) -> pd.Series:
        """The rows no stage has rejected so far.

        Args:
            df: a partition carrying the ``REASON`` column.

        Returns:
            Boolean Series aligned with ``df.index``: True where ``REASON`` is empty.
        """
        return df[REASON] == ""

    # -- the shared wrapper (runs on a worker) ---------------------------------------------------
    def __call__(self, partition: pd.DataFrame) -> pd.DataFrame:
        """Run ``process`` on a copy of one partition, with the checks every stage gets.

        Args:
            partition: the rows (not modified).

        Returns:
            The processed copy, ``REASON``/``DETAIL`` as object-dtype strings.

        Raises:
            StageError: ``process`` raised (the message names the stage and the partition's first and
                last ids), returned no DataFrame with ``REASON``, or changed the number of rows.
        """
        df = partition.copy(deep=not _COPY_ON_WRITE)   # with copy-on-write a shallow copy is already safe
        df[REASON] = _blank(len(df))
        df[DETAIL] = _blank(len(df))
        try:
            out = self.process(df)
        except StageError:
            raise
        except Exception as exc:  # surface with context, never swallow
            ids = list(partition["id"]) if "id" in partition.columns else []
            where = f"{len(ids)} rows, ids {ids[0]}..{ids[-1]}" if ids else "empty partition"
            raise StageError(f"stage {self.name!r} failed on a partition ({where}): "
                             f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(out, pd.DataFrame) or REASON not in out.columns:
            raise StageError(f"stage {self.name!r} must return the DataFrame with {REASON!r}")
        if len(out) != len(partition):
            raise StageError(f"stage {self.name!r} changed the number of rows "
                             f"({len(partition)} -> {len(out)}); drop rows with self.drop instead")
        out[REASON] = _as_str(out[REASON])
        out[DETAIL] = _as_str(out[DETAIL])
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config.items())})"


@dataclass
class StageStats:
    """What one stage did, for the report and the log."""

    name: str
    rows_in: int
    rows_out: int
    dropped: dict[str, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The stats as a JSON-ready dict.

        Returns:
            ``{"name", "rows_in", "rows_out", "dropped", "counters", "examples"}`` plus ``"extra"`` only
            when set; drop reasons and counters sorted by name, counts in rows.
        """
        return {
            "name": self.name, "rows_in": self.rows_in, "rows_out": self.rows_out,
            "dropped": dict(sorted(self.dropped.items())), "counters": dict(sorted(self.counters.items())),
            "examples": self.examples, **({"extra": self.extra} if self.extra else {}),
        }


STAGE_COL = "_stage"      # index (within a chain) of the stage that dropped the row; -1 = kept


class Chain:
    """Consecutive row-level stages fused into one pass over each partition (one task per
    partition instead of one per stage and partition). Each stage sees only the rows the stages
    before it kept; dropped rows carry the index (``_stage``) of the stage that dropped them, its
    reason and detail; stage i's counters are summed as ``_c<i>_<name>``.
    """

    def __init__(self, stages: list[Stage]) -> None:
        self.stages = list(stages)

    def split(self, partition: pd.DataFrame, times: list | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
        """Run the chained stages on one partition: what the pipeline runs per partition.

        Args:
            partition: the rows (not modified).
            times: when given, ``[wall_s, cpu_s]`` of each stage is appended to it, in chain order
                (``time.perf_counter`` and this thread's ``time.thread_time``, in seconds).

        Returns:
            ``(kept, dropped, counters)``: the kept rows with the input's columns; the dropped rows with
            ``_stage`` (int64 index of the stage in the chain), ``REASON`` and ``DETAIL``; counter totals
            ``{"_c<i>_<name>": n}`` summed over the partition.

        Raises:
            StageError: a stage failed on the partition or broke the stage contract (see ``Stage.__call__``).
        """
        df = partition
        dropped: list[pd.DataFrame] = []
        sums: dict[str, int] = {}
        for i, stage in enumerate(self.stages):
            w0, c0 = time.perf_counter(), time.thread_time()
            out = stage(df)
            counters = [c for c in out.columns if c.startswith(COUNTER_PREFIX)]
            for c in counters:
                sums[f"_c{i}_{c[len(COUNTER_PREFIX):]}"] = int(out[c].sum())
            keep = (out[REASON] == "").to_numpy()
            if not keep.all():
                gone = out[~keep].drop(columns=counters)
                gone[STAGE_COL] = np.int64(i)
                dropped.append(gone)
            df = (out if keep.all() else out[keep]).drop(columns=[REASON, DETAIL, *counters])
            if times is not None:
                times.append([time.perf_counter() - w0, time.thread_time() - c0])
        if dropped:
            gone = pd.concat(dropped)
        else:
            gone = partition.iloc[:0].assign(**{REASON: _blank(0), DETAIL: _blank(0)})
            gone[STAGE_COL] = np.zeros(0, dtype=np.int64)
        return df, gone, sums
