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
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from .base import Stage
from .ngram import top_ngram_shares
from .textutil import fix_unicode, url_char_share, word_count

log = logging.getLogger(__name__)


class _TextRule(Stage):
    def __init__(self, fields: list[str], **config) -> None:
        super().__init__(fields=list(fields), **config)
        self.fields = list(fields)


class UnicodeFix(_TextRule):
    """ftfy on the given fields; counts the rows it changed (``_n_unicode_fixed``)."""

    name = "unicode_fix"
    modifies = True

    def process(self, df):
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

    def process(self, df):
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

    def process(self, df):
        n, limit = int(self.config["n"]), float(self.config["max_share"])
        for f in self.fields:
            share = pd.Series(top_ngram_shares(df[f].tolist(), n), index=df.index)   # numpy, batched
            self.drop(df, share > limit, "repeated_ngrams",
                      f + ": top " + str(n) + "-gram share " + share.round(3).astype(str) + f" > {limit}")
        return df


class UrlShare(_TextRule):
    """Drop when URLs make up more than ``max_share`` of a field's characters."""

    name = "url_share"

    def process(self, df):
        limit = float(self.config["max_share"])
        for f in self.fields:
            share = df[f].map(url_char_share)
            self.drop(df, share > limit, "url_heavy",
                      f + ": URL share " + share.round(3).astype(str) + f" > {limit}")
        return df


class LineCount(Stage):
    name = "line_count"

    def process(self, df):
        n = df["code"].str.count("\n") + 1
        self.drop(df, n < self.config["min_lines"], "too_few_lines",
                  n.astype(str) + f" lines < {self.config['min_lines']}")
        self.drop(df, n > self.config["max_lines"], "too_many_lines",
                  n.astype(str) + f" lines > {self.config['max_lines']}")
        return df


class LongestLine(Stage):
    name = "longest_line"

    def process(self, df):
        longest = df["code"].map(lambda c: max((len(l) for l in c.split("\n")), default=0))
        self.drop(df, longest > self.config["max_chars"], "line_too_long",
                  "longest line " + longest.astype(str) + f" chars > {self.config['max_chars']}")
        return df


class AlphaShare(Stage):
    """Drop code whose share of alphabetic characters (of non-space characters) is below
    ``min_share`` (hex dumps, binary junk, tables of numbers)."""

    name = "alpha_share"

    def process(self, df):
        def share(c: str) -> float:
            chars = [ch for ch in c if not ch.isspace()]
            return sum(ch.isalpha() for ch in chars) / len(chars) if chars else 0.0

        s = df["code"].map(share)
        self.drop(df, s < self.config["min_share"], "low_alpha_share",
                  "alphabetic share " + s.round(3).astype(str) + f" < {self.config['min_share']}")
        return df


_MODULE = re.compile(r"^\s*(?:macro)?module\s+[A-Za-z_][\w$]*", re.MULTILINE)
_ENDMODULE = re.compile(r"\bendmodule\b")


class HasModule(Stage):
    """Keep only code with a ``module <name>`` ... ``endmodule`` pair (in that order)."""

    name = "has_module"

    def process(self, df):
        def ok(c: str) -> bool:
            m = _MODULE.search(c)
            return bool(m) and bool(_ENDMODULE.search(c, m.end()))

        self.drop(df, ~df["code"].map(ok).astype(bool), "no_module_endmodule")
        return df


class Compiles(Stage):
    """iverilog parse + elaborate check (``compile_check`` in the sandbox). Without iverilog the
    stage warns once and keeps every row (counter ``_n_compile_skipped``)."""

    name = "compiles"

    def process(self, df):
        from ..verilog.sandbox import compile_check, iverilog_available

        if df.empty:
            df["_n_compile_skipped"] = pd.Series(dtype=int)
            return df
        if not iverilog_available():
            log.warning("iverilog is not installed: the compile check is skipped (rows kept)")
            df["_n_compile_skipped"] = 1
            return df
        flags = tuple(self.config.get("flags", ["-g2012"]))
        timeout = float(self.config.get("timeout_s", 20))

        def check(code: str) -> str:
            res = compile_check(code, flags=flags, timeout_s=timeout)
            if res.ok:
                return ""
            if res.timed_out:
                return f"iverilog timed out after {timeout:g}s"
            lines = (res.stderr or res.stdout).strip().splitlines()
            return (lines[0] if lines else f"iverilog exit {res.returncode}").replace("design.sv:", "line ")[:200]

        # iverilog runs in subprocesses: a few threads keep the cores busy while one waits
        with ThreadPoolExecutor(max(1, int(self.config.get("threads", 1)))) as pool:
            errors = list(pool.map(check, df["code"]))
        err = pd.Series(errors, index=df.index)
        df["_n_compile_skipped"] = 0
        self.drop(df, err != "", "does_not_compile", err)
        return df
