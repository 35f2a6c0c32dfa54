"""Step 5 - decontamination against a benchmark (VerilogEval v2 spec-to-rtl by default).

The benchmark folder holds ``<Problem>_prompt.txt`` (the task text) and ``<Problem>_ref.sv`` (the
reference solution). A record is dropped when

* its code nearly matches a reference: Jaccard of the identifier-normalised token 5-gram sets
  >= ``code_threshold``, or the reference's n-grams are contained in the record's at >=
  ``containment`` (a record that embeds the reference plus extra code), or
* one of its descriptions nearly matches a prompt: word n-gram (``text_ngram``) Jaccard >=
  ``text_threshold`` or containment of the record's description in the prompt >= ``containment``.

Matching uses an inverted index from benchmark n-gram to problem, so every record is compared with
all problems in one pass over its own n-grams. A missing folder is not fatal: the stage warns and
checks nothing (``checked: 0`` in the report).
"""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from ..paths import resolve
from .base import Stage
from .minhash import shingles

log = logging.getLogger(__name__)


def _index(items: dict[str, np.ndarray]) -> dict[int, list[str]]:
    inv: dict[int, list[str]] = {}
    for name, grams in items.items():
        for g in grams.tolist():
            inv.setdefault(g, []).append(name)
    return inv


def _best(grams: np.ndarray, inv: dict[int, list[str]], sizes: dict[str, int]) -> tuple[str, float, float]:
    """(problem, jaccard, containment of the problem in the record) for the closest problem."""
    if len(grams) == 0:
        return "", 0.0, 0.0
    hits: Counter = Counter()
    for g in grams.tolist():
        for name in inv.get(g, ()):
            hits[name] += 1
    best = ("", 0.0, 0.0)
    for name, inter in hits.items():
        jac = inter / (len(grams) + sizes[name] - inter)
        cont = inter / sizes[name]
        if max(jac, cont) > max(best[1], best[2]):
            best = (name, jac, cont)
    return best


class Decontaminate(Stage):
    name = "decontaminate"

    def __init__(self, benchmark_dir: str, code_fields: list[str], text_fields: list[str], code_threshold: float = 0.5,
                 text_threshold: float = 0.5, containment: float = 0.8, min_ngrams: int = 10, code_ngram: int = 5,
                 text_ngram: int = 8) -> None:
        super().__init__(benchmark_dir=benchmark_dir, code_fields=list(code_fields), text_fields=list(text_fields),
                         code_threshold=code_threshold, text_threshold=text_threshold, containment=containment,
                         min_ngrams=min_ngrams, code_ngram=code_ngram, text_ngram=text_ngram)
        self.refs: dict[str, np.ndarray] = {}
        self.prompts: dict[str, np.ndarray] = {}
        self.problems = 0

    def fit(self, parts, engine, keys=None) -> None:
        folder = resolve(self.config["benchmark_dir"])
        if not folder.is_dir():
            log.warning("decontamination: benchmark folder %s not found; nothing is checked (0 problems)", folder)
            self.problems = 0
            return
        c = self.config
        for p in sorted(folder.glob("*_ref.sv")):
            self.refs[p.name[:-len("_ref.sv")]] = shingles(p.read_text(encoding="utf-8", errors="replace"), "tokens", c["code_ngram"], True)
        for p in sorted(folder.glob("*_prompt.txt")):
            self.prompts[p.name[:-len("_prompt.txt")]] = shingles(p.read_text(encoding="utf-8", errors="replace"), "words", c["text_ngram"])
        self.problems = len(set(self.refs) | set(self.prompts))
        if not self.problems:
            log.warning("decontamination: no *_ref.sv / *_prompt.txt files in %s; nothing is checked", folder)
        else:
            log.info("decontamination: %d benchmark problems from %s", self.problems, folder)

    def process(self, df):
        if not self.problems or df.empty:
            return df
        c = self.config
        rinv, rsize = _index(self.refs), {k: len(v) for k, v in self.refs.items()}
        pinv, psize = _index(self.prompts), {k: len(v) for k, v in self.prompts.items()}
        reasons, details = [], []
        for row in df[c["code_fields"] + c["text_fields"]].itertuples(index=False):
            hit = ("", "")
            vals = list(row)
            for f, text in zip(c["code_fields"], vals[:len(c["code_fields"])]):
                name, jac, cont = _best(shingles(text, "tokens", c["code_ngram"], True), rinv, rsize)
                if jac >= c["code_threshold"] or (cont >= c["containment"] and rsize.get(name, 0) >= c["min_ngrams"]):
                    hit = ("benchmark_code", f"{f} ~ {name}_ref.sv (Jaccard {jac:.2f}, containment {cont:.2f})")
                    break
            if not hit[0]:
                for f, text in zip(c["text_fields"], vals[len(c["code_fields"]):]):
                    grams = shingles(text, "words", c["text_ngram"])
                    name, jac, _ = _best(grams, pinv, psize)
                    # containment of the record's description in the prompt
                    inter = round(jac * (len(grams) + psize.get(name, 0)) / (1 + jac)) if name else 0
                    cont = inter / len(grams) if len(grams) >= c["min_ngrams"] else 0.0
                    if jac >= c["text_threshold"] or cont >= c["containment"]:
                        hit = ("benchmark_description", f"{f} ~ {name}_prompt.txt (Jaccard {jac:.2f}, containment {cont:.2f})")
                        break
            reasons.append(hit[0])
            details.append(hit[1])
        import pandas as pd

        r = pd.Series(reasons, index=df.index)
        for reason in ("benchmark_code", "benchmark_description"):
            self.drop(df, r == reason, reason, pd.Series(details, index=df.index))
        return df

    def summary(self):
        return {"benchmark_dir": str(self.config["benchmark_dir"]), "problems_checked": self.problems}

    def __getstate__(self):
        return self.__dict__.copy()


def benchmark_exists(path: str) -> bool:
    return Path(resolve(path)).is_dir()
