"""Step 2 - rules. One small stage per rule (datatrove style); thresholds come from the config.

Text rules (on one or more text fields, e.g. the three description levels; a row is dropped when
any of its fields fails, so every level of a kept id is clean):
``WordCount``, ``TopNGramShare``, ``UrlShare``, plus ``UnicodeFix`` (a modifier, for plain-text
corpora; the Verilog pipeline does unicode repair in ``clean``).

Code rules (on the ``code`` field): ``LineCount``, ``LongestLine``, ``AlphaShare``, ``HasModule``,
``Compiles`` (iverilog through the sandbox; warns and keeps every row when iverilog is missing).
"""
from __future__ import annotations

import logging
import re
from typing import Any
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from .base import Stage
from ..settings import UNRESOLVED_SUBMODULE, CompilesSettings
from .ngram import top_ngram_shares
from .textutil import fix_unicode, url_char_share, word_count

log = logging.getLogger(__name__)


class _TextRule(Stage):
    """A rule over text ``fields`` (the description columns); settings come as named keyword arguments."""

    def __init__(self, fields: list[str], **settings: Any) -> None:
        super().__init__(fields=list(fields), **settings)
        self.fields = list(fields)


class UnicodeFix(_TextRule):
    """ftfy on the given fields; counts the rows it changed (``_n_unicode_fixed``)."""

    name = "unicode_fix"

    def process(self, df):
        """Fix the fields with ftfy; ``_n_unicode_fixed`` is 1 for rows where any field changed.

        Returns:
            ``df`` with the fields repaired in place (object dtype) and the counter column ``_n_unicode_fixed``
            (int, 1 where any field changed, else 0); no row is dropped.
        """
        changed = np.zeros(len(df), dtype=bool)
        for f in self.fields:
            before = df[f].tolist()
            fixed = [fix_unicode(t) for t in before]
            # `is not` first: fix_unicode returns its argument unchanged for almost every row
            changed |= np.fromiter((a is not b and a != b for a, b in zip(fixed, before)), dtype=bool, count=len(before))
            # object dtype on purpose: Series.map would infer pandas 3's Arrow-backed str, which
            # every later Python stage would have to convert back, row by row
            df[f] = pd.Series(fixed, index=df.index, dtype=object)
        df["_n_unicode_fixed"] = changed.astype(int)
        return df


class WordCount(_TextRule):
    """Drop when a field has fewer than ``min_words`` or more than ``max_words`` words."""

    name = "word_count"

    def __init__(self, fields: list[str], *, min_words: int, max_words: int) -> None:
        super().__init__(fields, min_words=min_words, max_words=max_words)

    def process(self, df):
        """Drop rows with a field outside [``min_words``, ``max_words``] (``too_few_words`` / ``too_many_words``).

        Returns:
            ``df`` with the failing rows marked (detail: ``<field>: <count> words < / > <limit>``).
        """
        for f in self.fields:
            n = pd.Series(list(map(word_count, df[f].tolist())), index=df.index, dtype="int64")
            self.drop(df, n < self.config["min_words"], "too_few_words",
                      f + ": " + n.astype(str) + f" words < {self.config['min_words']}")
            self.drop(df, n > self.config["max_words"], "too_many_words",
                      f + ": " + n.astype(str) + f" words > {self.config['max_words']}")
        return df


class TopNGramShare(_TextRule):
    """Drop repetitive text: the most frequent word ``n``-gram covers more than ``max_share`` of
    the characters (Gopher rule; NeMo Curator's RepeatingTopNGramsFilter)."""

    name = "top_ngram"

    def __init__(self, fields: list[str], *, n: int, max_share: float) -> None:
        super().__init__(fields, n=n, max_share=max_share)

    def process(self, df):
        """Drop rows with a field whose top n-gram share exceeds ``max_share`` (``repeated_ngrams``).

        Returns:
            ``df`` with the failing rows marked (detail: the field and its top n-gram share of characters,
            a fraction in [0, 1], rounded to 3 places).
        """
        n, limit = int(self.config["n"]), float(self.config["max_share"])
        for f in self.fields:
            share = pd.Series(top_ngram_shares(df[f].tolist(), n), index=df.index)   # numpy, batched
            self.drop(df, share > limit, "repeated_ngrams",
                      f + ": top " + str(n) + "-gram share " + share.round(3).astype(str) + f" > {limit}")
        return df


class UrlShare(_TextRule):
    """Drop when URLs make up more than ``max_share`` of a field's characters."""

    name = "url_share"

    def __init__(self, fields: list[str], *, max_share: float) -> None:
        super().__init__(fields, max_share=max_share)

    def process(self, df):
        """Drop rows with a field whose URL character share exceeds ``max_share`` (``url_heavy``).

        Returns:
            ``df`` with the failing rows marked (detail: the field and its URL share of characters, a
            fraction in [0, 1], rounded to 3 places).
        """
        limit = float(self.config["max_share"])
        for f in self.fields:
            share = df[f].map(url_char_share)
            self.drop(df, share > limit, "url_heavy",
                      f + ": URL share " + share.round(3).astype(str) + f" > {limit}")
        return df


class LineCount(Stage):
    """Drop code with fewer than ``min_lines`` or more than ``max_lines`` lines."""

    name = "line_count"

    def __init__(self, *, min_lines: int, max_lines: int) -> None:
        super().__init__(min_lines=min_lines, max_lines=max_lines)

    def process(self, df):
        """Drop rows outside the line range (``too_few_lines`` / ``too_many_lines``; detail: the count).

        Returns:
            ``df`` with the failing rows marked; lines are counted as newlines + 1.
        """
        n = df["code"].str.count("\n") + 1
        self.drop(df, n < self.config["min_lines"], "too_few_lines",
                  n.astype(str) + f" lines < {self.config['min_lines']}")
        self.drop(df, n > self.config["max_lines"], "too_many_lines",
                  n.astype(str) + f" lines > {self.config['max_lines']}")
        return df


class LongestLine(Stage):
    """Drop code with a line longer than ``max_chars`` characters."""

    name = "longest_line"

    def __init__(self, *, max_chars: int) -> None:
        super().__init__(max_chars=max_chars)

    def process(self, df):
        """Drop rows whose longest line exceeds ``max_chars`` (``line_too_long``; detail: its length).

        Returns:
            ``df`` with the failing rows marked (detail: the longest line's length in characters).
        """
        longest = df["code"].map(lambda c: max((len(l) for l in c.split("\n")), default=0))
        self.drop(df, longest > self.config["max_chars"], "line_too_long",
                  "longest line " + longest.astype(str) + f" chars > {self.config['max_chars']}")
        return df


class AlphaShare(Stage):
    """Drop code whose share of alphabetic characters (of non-space characters) is below
    ``min_share`` (hex dumps, binary junk, tables of numbers)."""

    name = "alpha_share"

    def __init__(self, *, min_share: float) -> None:
        super().__init__(min_share=min_share)

    def process(self, df):
        """Drop rows below ``min_share`` alphabetic characters (``low_alpha_share``; detail: the share).

        Returns:
            ``df`` with the failing rows marked (detail: the alphabetic share of non-space characters, a
            fraction in [0, 1]; 0.0 for code without non-space characters).
        """
        def share(c: str) -> float:
            chars = [ch for ch in c if not ch.isspace()]
            return sum(ch.isalpha() for ch in chars) / len(chars) if chars else 0.0

        s = df["code"].map(share)
        self.drop(df, s < self.config["min_share"], "low_alpha_share",
                  "alphabetic share " + s.round(3).astype(str) + f" < {self.config['min_share']}")
        return df


_MODULE = re.compile(r"^\s*(?:macro)?module\s+(?:\\\S+|[A-Za-z_][\w$]*)", re.MULTILINE)
_ENDMODULE = re.compile(r"\bendmodule\b")


class HasModule(Stage):
    """Keep only code with a ``module <name>`` ... ``endmodule`` pair (in that order)."""

    name = "has_module"

    def __init__(self) -> None:
        super().__init__()

    def process(self, df):
        """Drop rows without a ``module`` header followed by ``endmodule`` (``no_module_endmodule``).

        Returns:
            ``df`` with the failing rows marked (no detail).
        """
        def ok(c: str) -> bool:
            m = _MODULE.search(c)
            return bool(m) and bool(_ENDMODULE.search(c, m.end()))

        self.drop(df, ~df["code"].map(ok).astype(bool), "no_module_endmodule")
        return df


_C = CompilesSettings()


class Compiles(Stage):
    """iverilog parse + elaborate check (the sandbox's ``compile_check``), through
    ``hierarchy.check_verilog``:

    * ``standards`` (e.g. ``["-g2012", "-g2005 -gno-xtypes", ...]``) are tried in order and the first
      that accepts the row is recorded (column ``verilog_std``, counters ``_n_std_<year>``):
      Verilog-1995/2001/2005 code may use SystemVerilog keywords (``do``, ``bit``) as names;
    * a row whose only errors are unknown modules is elaborated again with their definitions from
      the corpus (``index``: the ``ModuleIndex`` stage; a name's definitions are tried in input
      order, the first that fits is used; counter ``_n_submodules_resolved``). What is defined
      nowhere (column ``unresolved_modules``), or defined only with another interface (column
      ``mismatched_modules``, counter ``_n_interface_mismatch``), is compiled as a black box, so an
      error left in the row is still found and drops it. A row whose only problem is such a
      submodule is ``unresolved_submodule``: kept and counted (``_n_unresolved_submodule``) with
      ``unresolved_submodule: keep``, dropped with that reason with ``drop`` (detail
      ``missing: <names>`` / ``interface_mismatch: <names>``);
    * every other failure drops the row (``does_not_compile``) with iverilog's first error line
      (never a warning) and the standard it came from as the detail.

    Without iverilog the stage warns once and keeps every row (counter ``_n_compile_skipped``).
    """

    name = "compiles"
    tools = ("iverilog", "vvp")          # sandbox.iverilog_available: checked on every worker up front

    # defaults: the settings' (``settings.CompilesSettings``: rules.compiles in configs/curate.yaml)
    def __init__(self, standards=tuple(_C.standards), flags=tuple(_C.flags), timeout_s: float = _C.timeout_s,
                 threads: int = _C.threads, unresolved_submodule: str = _C.unresolved_submodule, index=None) -> None:
        super().__init__(standards=list(standards), flags=list(flags), timeout_s=timeout_s, threads=threads,
                         unresolved_submodule=unresolved_submodule)
        if not standards:
            raise ValueError("rules.compiles.standards: give at least one iverilog -g flag, e.g. [-g2012]")
        bad = [f for f in flags if re.match(r"-g\d", str(f))]
        if bad:
            raise ValueError(f"rules.compiles.flags: {bad} choose a language standard; list standards "
                             "in rules.compiles.standards instead (tried in order)")
        if unresolved_submodule not in UNRESOLVED_SUBMODULE:
            raise ValueError(f"rules.compiles.unresolved_submodule must be one of {', '.join(UNRESOLVED_SUBMODULE)}, "
                             f"not {unresolved_submodule!r}")
        self.index = index

    def process(self, df):
        """Compile every row of the partition as the class docstring says (``threads`` at a time).

        Returns:
            ``df`` with the columns ``verilog_std`` (the accepting standard's label, "" when none),
            ``unresolved_modules`` and ``mismatched_modules`` (space-separated names), the int counters
            ``_n_compile_skipped``, ``_n_submodules_resolved``, ``_n_unresolved_submodule``,
            ``_n_interface_mismatch`` and ``_n_std_<label>``, and the failing rows marked
            ``does_not_compile`` (iverilog error or timeout) or ``unresolved_submodule`` (with ``drop``).
        """
        from ..verilog.sandbox import compile_check, iverilog_available
        from .hierarchy import check_verilog, standard_label

        stds = [str(s) for s in self.config["standards"]]
        counters = ["_n_compile_skipped", "_n_submodules_resolved", "_n_unresolved_submodule", "_n_interface_mismatch",
                    *(f"_n_std_{standard_label(s)}" for s in stds)]
        if df.empty:
            for c in counters:
                df[c] = pd.Series(dtype=int)
            df["verilog_std"] = pd.Series(dtype=object)
            df["unresolved_modules"] = pd.Series(dtype=object)
            df["mismatched_modules"] = pd.Series(dtype=object)
            return df
        if not iverilog_available():
            log.warning("iverilog is not installed: the compile check is skipped (rows kept)")
            for c in counters:
                df[c] = 0
            df["_n_compile_skipped"] = 1
            df["verilog_std"] = ""
            df["unresolved_modules"] = ""
            df["mismatched_modules"] = ""
            return df
        flags = tuple(self.config["flags"])
        timeout = float(self.config["timeout_s"])

        def check(code: str):
            return check_verilog(code, compile_check, stds, flags, timeout, self.index)

        # iverilog runs in subprocesses: a few threads keep the cores busy while one waits; the rows
        # done are reported as they go (the slowest stage: the pass's progress moves within a partition)
        from .engine import RowReporter

        progress = RowReporter()
        verdicts = []
        with ThreadPoolExecutor(max(1, int(self.config["threads"]))) as pool:
            for v in pool.map(check, df["code"]):
                verdicts.append(v)
                progress.update(1)
        ok = {"ok", "ok_with_submodules", "unresolved_submodule"}
        df["verilog_std"] = pd.Series([standard_label(v.standard) if v.status in ok else "" for v in verdicts],
                                      index=df.index, dtype=object)
        df["unresolved_modules"] = pd.Series([" ".join(v.unresolved) for v in verdicts], index=df.index, dtype=object)
        df["mismatched_modules"] = pd.Series([" ".join(v.mismatched) for v in verdicts], index=df.index, dtype=object)
        df["_n_compile_skipped"] = 0
        df["_n_submodules_resolved"] = np.array([v.status == "ok_with_submodules" for v in verdicts], dtype=int)
        unresolved = np.array([v.status == "unresolved_submodule" for v in verdicts])
        df["_n_unresolved_submodule"] = unresolved.astype(int)
        df["_n_interface_mismatch"] = np.array([v.status == "unresolved_submodule" and bool(v.mismatched)
                                                for v in verdicts], dtype=int)
        for s in stds:
            df[f"_n_std_{standard_label(s)}"] = np.array([v.status in ok and v.standard == s for v in verdicts], dtype=int)
        err = pd.Series([v.error for v in verdicts], index=df.index, dtype=object)
        self.drop(df, np.array([v.status in ("error", "timeout") for v in verdicts]), "does_not_compile", err)
        if self.config["unresolved_submodule"] == "drop":
            detail = pd.Series(["; ".join(([f"missing: {' '.join(v.unresolved)}"] if v.unresolved else [])
                                          + ([f"interface_mismatch: {' '.join(v.mismatched)}"] if v.mismatched else []))
                                for v in verdicts], index=df.index, dtype=object)
            self.drop(df, unresolved, "unresolved_submodule", detail)
        return df
