"""Step 4 - decontamination against a benchmark (VerilogEval v2 spec-to-rtl by default).

The benchmark folder holds ``<Problem>_prompt.txt`` (the task text) and ``<Problem>_ref.sv`` (the
reference solution). Both sides are compared as sets of n-grams: code as Verilog token
``code_ngram``-grams without comments (minhash.shingles; identifiers as written: the benchmark's
prompts fix the port names, so a copied solution keeps them, while identifier-normalised n-grams
make every small module look like every other - measured: 96-179 of 1,656 real rows matched some
problem with normalised identifiers, 0 as written), text as word ``text_ngram``-grams of the
lower-cased words (punctuation and layout ignored).

Template n-grams are left out on both sides: an n-gram that occurs in at least ``template_share``
of the benchmark's problems (and in at least 2; 1.0: only n-grams of every problem) is the benchmark's boilerplate ("I would like you to implement a module
named TopModule with the following interface", ``module $id ( input $id ,``), not a problem.
What remains of a problem are its *distinctive* n-grams. A record R is contaminated by problem B
when, on distinctive n-grams,

* B is contained in R: ``|R & B| / |B| >= containment`` and B has ``>= min_ngrams`` of them
  (a description that embeds a whole prompt inside longer text; a design that embeds a whole
  reference solution), or
* R is contained in B: ``|R & B| / |R| >= containment`` and R has ``>= min_ngrams`` (a record
  that is a piece of a benchmark problem), or
* R and B are similar: Jaccard ``>= code_threshold`` / ``text_threshold`` with both ``>= min_ngrams``.

The size floors are what make containment meaningful: a 4-bit AND (``assign y = a & b;``) or a
one-line benchmark statement inside a long design has (almost) no distinctive n-grams, and "all
of nothing" is not contamination. The defaults (template_share 0.02: an n-gram in >= 4 of the
156 problems; min_ngrams 8) are measured on the VerilogEval v2 folder itself
(bench/curate_decontam_floors.py, table in docs/benchmarks.md): every problem copied or embedded
in longer text is found when it has >= 8 distinctive n-grams (147/156 references, 153/156
prompts), and none of 1,656 real MG-Verilog rows, 600 real designs with a one-line benchmark
statement pasted in, or 600 real summaries with one benchmark sentence appended is matched; of
73 short generic modules one is (a full adder written with VerilogEval's own port names, Jaccard
0.52 with Prob024_hadd's reference). Smaller floors find a few more of the tiniest problems (min 5:
151/156) at a thinner margin. Problems below the floor cannot be told apart from generic code;
the report counts them (``problems_below_floor``).

Matching uses an inverted index from distinctive benchmark n-gram to problem, built once in
``fit``, so every record is compared with all problems in one pass over its own n-grams. A
missing folder is not fatal: the stage warns and checks nothing (``problems_checked: 0``).
"""
from __future__ import annotations

import logging
import re
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ConfigError
from ..io import InputError, read_text
from ..paths import resolve
from ..settings import DecontaminateSettings
from .base import Stage
from .minhash import shingles
from .textutil import code_tokens

log = logging.getLogger(__name__)

_WORDS = re.compile(r"[^\W_]+")


def text_grams(text: str, n: int) -> np.ndarray:
    """Word n-grams of the lower-cased words (letters and digits; punctuation/layout ignored).

    Returns:
        Sorted unique CRC-32 hashes of the ``n``-word grams (uint64 array, values < 2^32; one gram of all
        words when there are fewer than ``n``; empty for a text without words).
    """
    return shingles(" ".join(_WORDS.findall(text.lower())), "words", n)


def code_grams(code: str, n: int, normalize_identifiers: bool = False) -> np.ndarray:
    """Verilog token n-grams without comments (identifiers as written unless normalised; module
    names always replaced by one placeholder: the references are all ``RefModule``, a copy is
    ``TopModule`` or anything else).

    Returns:
        Sorted unique CRC-32 hashes of the ``n``-token grams (uint64 array, values < 2^32; empty for
        code without tokens).
    """
    if normalize_identifiers:
        return shingles(code, "tokens", n, True)
    toks = code_tokens(code)
    for i in range(1, len(toks)):
        if toks[i - 1] in ("module", "macromodule"):
            toks[i] = "$module"
    grams = [" ".join(toks[i:i + n]) for i in range(max(1, len(toks) - n + 1))] if toks else []
    return np.unique(np.fromiter((zlib.crc32(g.encode("utf-8")) for g in grams), dtype=np.uint64, count=len(grams)))


_D = DecontaminateSettings()


class Side:
    """One side of the benchmark (references or prompts): distinctive n-grams per problem and an
    inverted index over them. ``template``: the n-grams in >= ``template_share`` of the problems."""

    def __init__(self, grams: dict[str, np.ndarray], template_share: float) -> None:
        df: Counter = Counter()
        for g in grams.values():
            df.update(g.tolist())
        limit = max(2, int(np.ceil(template_share * max(1, len(grams)))))
        self.template = np.array(sorted(g for g, c in df.items() if c >= limit), dtype=np.uint64)
        self.grams = {k: np.setdiff1d(v, self.template, assume_unique=True) for k, v in grams.items()}
        self.sizes = {k: len(v) for k, v in self.grams.items()}
        self._index: dict[int, list[str]] | None = None

    @property
    def index(self) -> dict[int, list[str]]:
        """Distinctive n-gram -> problems; built where it is first used (not pickled to the workers)."""
        if self._index is None:
            self._index = {}
            for name, g in self.grams.items():
                for x in g.tolist():
                    self._index.setdefault(x, []).append(name)
        return self._index

    def __getstate__(self):
        return {**self.__dict__, "_index": None}

    def distinctive(self, grams: np.ndarray) -> np.ndarray:
        """The given n-grams without this side's template n-grams.

        Returns:
            The sorted unique uint64 n-gram hashes of ``grams`` (itself sorted and unique) that are not in
            ``self.template``.
        """
        return np.setdiff1d(grams, self.template, assume_unique=True)

    def overlaps(self, grams: np.ndarray) -> list[tuple[str, int]]:
        """Which problems share distinctive n-grams with a record.

        Args:
            grams: the record's distinctive n-grams (``distinctive``), sorted unique uint64.

        Returns:
            ``(problem, shared distinctive n-grams)`` for every problem sharing any, sorted by problem name.
        """
        hits: Counter = Counter()
        index = self.index
        for g in grams.tolist():
            for name in index.get(g, ()):
                hits[name] += 1
        return sorted(hits.items())


def match(grams: np.ndarray, side: Side, containment: float, threshold: float, min_ngrams: int):
    """The benchmark problem that contaminates a record with these (all) n-grams.

    Both directions of containment count, each only when the contained side has >= ``min_ngrams``
    distinctive n-grams (module docstring).

    Returns:
        None when no problem matches; else ``(problem, benchmark-in-record, record-in-benchmark, Jaccard,
        record's distinctive n-grams)``: the three overlaps are fractions in [0, 1], the last a count;
        the problem with the largest containment wins.
    """
    mine = side.distinctive(grams)
    n = len(mine)
    best = None
    for name, inter in side.overlaps(mine):
        size = side.sizes[name]
        b_in_r, r_in_b = inter / size, inter / n
        jac = inter / (n + size - inter)
        hit = ((size >= min_ngrams and b_in_r >= containment) or (n >= min_ngrams and r_in_b >= containment)
               or (min(n, size) >= min_ngrams and jac >= threshold))
        if hit and (best is None or max(b_in_r, r_in_b) > max(best[1], best[2])):
            best = (name, b_in_r, r_in_b, jac, n)
    return best


class Decontaminate(Stage):
    """Drop rows that overlap a VerilogEval v2 problem: code against the references (``*_ref.sv``),
    descriptions against the prompts (``*_prompt.txt``), by n-gram containment (module docstring).

    Drop reasons: ``benchmark_code``, ``benchmark_description`` (detail: the field, the problem and
    the overlap figures). Without benchmark files the stage warns and checks nothing.
    """
    name = "decontaminate"

    # defaults: the settings' (``settings.DecontaminateSettings``), declared there once; except
    # also_look_in, whose () means "no other folder": a stage built by hand checks exactly the folder
    # it names (the pipeline passes the settings' list)
    def __init__(self, benchmark_dir: str, code_fields: list[str], text_fields: list[str],
                 code_threshold: float = _D.code_threshold, text_threshold: float = _D.text_threshold,
                 containment: float = _D.containment, min_ngrams: int = _D.min_ngrams, code_ngram: int = _D.code_ngram,
                 text_ngram: int = _D.text_ngram, template_share: float = _D.template_share,
                 normalize_identifiers: bool = _D.normalize_identifiers, also_look_in: list[str] = ()) -> None:
        super().__init__(benchmark_dir=benchmark_dir, also_look_in=list(also_look_in or []),
                         code_fields=list(code_fields), text_fields=list(text_fields),
                         code_threshold=code_threshold, text_threshold=text_threshold, containment=containment,
                         min_ngrams=min_ngrams, code_ngram=code_ngram, text_ngram=text_ngram,
                         template_share=template_share, normalize_identifiers=normalize_identifiers)
        for key in ("code_threshold", "text_threshold", "containment", "template_share"):
            if not 0 < float(self.config[key]) <= 1:
                raise ValueError(f"decontaminate.{key}: must be in (0, 1], got {self.config[key]!r}")
        for key, low in (("code_ngram", 1), ("text_ngram", 1), ("min_ngrams", 0)):   # min_ngrams 0: no size floor
            if int(self.config[key]) < low:
                raise ValueError(f"decontaminate.{key}: must be >= {low}, got {self.config[key]!r}")
        self.refs: Side | None = None
        self.prompts: Side | None = None
        self.problems = 0

    def benchmark_folder(self):
        """Where the benchmark files are.

        Returns:
            The first of ``benchmark_dir`` and ``also_look_in`` (repo-relative paths, resolved) that holds
            ``*_ref.sv`` files, as a ``Path``; None when none does.
        """
        for candidate in [self.config["benchmark_dir"], *self.config["also_look_in"]]:
            folder = resolve(candidate)
            if folder.is_dir() and any(folder.glob("*_ref.sv")):
                return folder
        return None

    def fit(self, parts, engine, keys=None) -> None:
        """Load the benchmark's n-grams from the first folder that has them (``benchmark_folder``); none:
        a warning and nothing is checked. ``parts``, ``engine`` and ``keys`` are not used.

        Raises:
            ConfigError: a benchmark file cannot be read (the message names it).
        """
        folder = self.benchmark_folder()
        self.refs = self.prompts = None
        self.problems = 0
        if folder is None:
            looked = ", ".join(str(resolve(p)) for p in [self.config["benchmark_dir"], *self.config["also_look_in"]])
            log.warning("decontamination: VerilogEval v2 problems not found in %s; NOTHING IS CHECKED (0 problems). "
                        "Get them with `bash evaluate.sh download` (into data/verilogeval/) or set "
                        "decontaminate.benchmark_dir=FOLDER", looked)
            return
        self.refs, self.prompts = load_benchmark(folder, self.config)
        self.problems = len(set(self.refs.grams) | set(self.prompts.grams))
        if not self.problems:
            log.warning("decontamination: no *_ref.sv / *_prompt.txt files in %s; nothing is checked", folder)
        else:
            log.info("decontamination: %d benchmark problems from %s (%d below the size floor)", self.problems,
                     folder, self._below_floor())

    def _below_floor(self) -> int:
        m = self.config["min_ngrams"]
        small = {k for k, v in self.refs.sizes.items() if v < m} if self.refs else set()
        small_p = {k for k, v in self.prompts.sizes.items() if v < m} if self.prompts else set()
        return len(small & small_p) if self.refs and self.prompts else len(small | small_p)

    def process(self, df):
        """Mark the rows whose code or text fields match a benchmark problem (the first match per row).

        Returns:
            ``df`` itself, rows matching a problem marked ``benchmark_code`` / ``benchmark_description``
            (unchanged when no benchmark was loaded).
        """
        if not self.problems or df.empty:
            return df
        c = self.config
        reasons, details = [], []
        for row in df[c["code_fields"] + c["text_fields"]].itertuples(index=False):
            hit = ("", "")
            vals = list(row)
            checks = [(f, t, "code") for f, t in zip(c["code_fields"], vals)] + \
                     [(f, t, "text") for f, t in zip(c["text_fields"], vals[len(c["code_fields"]):])]
            for f, text, kind in checks:
                if kind == "code":
                    m = match(code_grams(text, c["code_ngram"], c["normalize_identifiers"]), self.refs, c["containment"], c["code_threshold"],
                              c["min_ngrams"])
                    what, reason = "_ref.sv", "benchmark_code"
                else:
                    m = match(text_grams(text, c["text_ngram"]), self.prompts, c["containment"], c["text_threshold"],
                              c["min_ngrams"])
                    what, reason = "_prompt.txt", "benchmark_description"
                if m:
                    name, b_in_r, r_in_b, jac, n = m
                    hit = (reason, f"{f} ~ {name}{what} (benchmark in row {b_in_r:.2f}, row in benchmark {r_in_b:.2f}, "
                                   f"Jaccard {jac:.2f}; distinctive n-grams: row {n}, benchmark "
                                   f"{(self.refs if kind == 'code' else self.prompts).sizes[name]})")
                    break
            reasons.append(hit[0])
            details.append(hit[1])
        r = pd.Series(reasons, index=df.index)
        for reason in ("benchmark_code", "benchmark_description"):
            self.drop(df, r == reason, reason, pd.Series(details, index=df.index))
        return df

    def summary(self):
        """The benchmark folder used and how many problems were checked.

        Returns:
            ``{"benchmark_dir", "problems_checked"}``, plus ``problems_below_floor``, ``refs_below_floor`` and
            ``prompts_below_floor`` (counts of problems under ``min_ngrams`` distinctive n-grams) when
            problems were loaded.
        """
        folder = self.benchmark_folder()
        out = {"benchmark_dir": str(self.config["benchmark_dir"]) if folder is None or folder == resolve(
                   self.config["benchmark_dir"]) else str(folder),
               "problems_checked": self.problems}
        if self.problems:
            m = self.config["min_ngrams"]
            out["problems_below_floor"] = self._below_floor()
            out["refs_below_floor"] = sum(v < m for v in self.refs.sizes.values())
            out["prompts_below_floor"] = sum(v < m for v in self.prompts.sizes.values())
        return out

    def __getstate__(self):
        return self.__dict__.copy()


def load_benchmark(folder: Path, config: dict) -> tuple[Side, Side]:
    """(references, prompts) of a VerilogEval-style folder (BOM-tolerant, one clear error per bad file).

    Returns:
        ``(references, prompts)``: the ``Side`` of the ``*_ref.sv`` code n-grams and the ``Side`` of the
        ``*_prompt.txt`` word n-grams, each keyed by problem name.

    Raises:
        ConfigError: a benchmark file cannot be read or decoded (the message names it).
    """
    refs, prompts = {}, {}
    try:
        for p in sorted(folder.glob("*_ref.sv")):
            refs[p.name[:-len("_ref.sv")]] = code_grams(read_text(p), config["code_ngram"],
                                                        config["normalize_identifiers"])
        for p in sorted(folder.glob("*_prompt.txt")):
            prompts[p.name[:-len("_prompt.txt")]] = text_grams(read_text(p), config["text_ngram"])
    except InputError as exc:   # one line naming the file (curate_data.py prints it and exits 1)
        raise ConfigError(f"decontaminate.benchmark_dir: {exc}") from None
    return Side(refs, config["template_share"]), Side(prompts, config["template_share"])
