"""Step 3 - PII redaction on code (comments and string literals only) and descriptions.

Detectors:

* presidio-analyzer's pattern recognizers - ``EmailRecognizer``, ``IpRecognizer``,
  ``PhoneRecognizer`` (libphonenumber), ``CreditCardRecognizer`` (Luhn-checked) - used directly,
  without an NLP engine: no spaCy model is needed or loaded. Importing presidio_analyzer pulls in
  transformers and torch through its optional NLP engines (~10 s per worker process); _presidio()
  hides those two optional imports and gets it down to ~3 s. EmailRecognizer's domain check uses
  tldextract, pointed at its bundled public-suffix snapshot so nothing is fetched from the network.
* own regexes for what presidio has no recognizer for in this setting: personal names on
  author / copyright / contact lines (``name``) and keys/tokens (``secret``: hf_, ghp_, AKIA...,
  sk-..., private-key blocks, ``password=...``/``api_key: ...`` values).

``backend: regex`` uses simple own patterns for e-mail/IP/phone instead of presidio (fast, fewer
checks); it is also the fallback, with a warning, when presidio-analyzer cannot be imported.

Only comments and string literals of the code are scanned: identifiers and numbers in Verilog
(``32'd4045550123``, ``10.0.0.1`` in a ``$display``) are not personal data, and redacting inside
code would break it. Every replacement is counted by kind (``_n_pii_<kind>``); nothing is dropped.
"""
from __future__ import annotations

import logging
import re
import sys
from functools import lru_cache

import pandas as pd

from .base import Stage

log = logging.getLogger(__name__)

PLACEHOLDER = {"email": "<EMAIL>", "ip": "<IP_ADDRESS>", "phone": "<PHONE>", "name": "<NAME>",
               "secret": "<SECRET>", "credit_card": "<CREDIT_CARD>"}
KINDS = tuple(PLACEHOLDER)

_CODE_TEXT = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"', re.DOTALL)

_NAME_WORD = r"(?:[A-Z][a-zA-Z'\-]+|[A-Z]\.)"
_NAME = re.compile(rf"{_NAME_WORD}(?:[ \t]+(?:{_NAME_WORD}|van|von|de|der|da|di|le|la))*")
_NAME_LINE = re.compile(
    r"(?i)\b(?:author(?:s|\(s\))?|written[ \t]+by|created[ \t]+by|coded[ \t]+by|designed[ \t]+by|"
    r"designer|engineer|maintainer|maintained[ \t]+by|contact|developer|modified[ \t]+by|copyright|\(c\)|©)"
    r"[ \t]*(?:\(c\)|©)?[ \t]*[:\-]?[ \t]*(?:(?:19|20)\d\d(?:[ \t]*[-,][ \t]*(?:19|20)?\d\d)*[ \t]*,?[ \t]*)?(?:by[ \t]+)?")
_ORG = re.compile(r"(?i)\b(?:inc|corp|corporation|ltd|llc|gmbh|university|institute|foundation|"
                  r"technologies|systems|labs?|company|co|project|contributors|authors|team|all|rights)\b\.?")
_SECRETS = [
    re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{20,}\b"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}\b"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL),
]
_SECRET_ASSIGN = re.compile(r"(?i)\b(?:api[_\-]?key|secret(?:[_\-]?key)?|access[_\-]?token|auth[_\-]?token|"
                            r"token|passw(?:or)?d|pwd)\b[ \t]*[:=][ \t]*['\"]?([A-Za-z0-9_\-+/=.]{8,})")
# regex backend (and fallback)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")
_IPV4 = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")
_PHONE = re.compile(r"(?<![\w'])(?:\+\d{1,3}[ \-.]?)?(?:\(\d{2,4}\)[ \-.]?|\d{2,4}[ \-.])\d{3,4}[ \-.]\d{3,4}(?![\w'])")


# cheap pre-checks: a recognizer only runs on text that could hold its entity at all
_MAYBE = {"email": re.compile("@"), "ip": re.compile(r"\d\.\d|:[0-9A-Fa-f]*:"),
          "phone": re.compile(r"(?:\d\D{0,3}){7}"), "credit_card": re.compile(r"(?:\d\D?){13}")}


def _names(text: str) -> list[tuple[int, int]]:
    spans = []
    for m in _NAME_LINE.finditer(text):
        n = _NAME.match(text, m.end())
        if not n:
            continue
        words = list(re.finditer(r"\S+", n.group(0)))
        # organisations ("Intel Corporation", "Acme Labs") are not personal names
        if any(_ORG.fullmatch(w.group(0).rstrip(".,")) for w in words):
            continue
        if not words or (len(words) == 1 and len(words[0].group(0)) < 3):
            continue
        spans.append((n.start(), n.start() + words[-1].end()))
    return spans


def _secrets(text: str) -> list[tuple[int, int]]:
    spans = [(m.start(), m.end()) for p in _SECRETS for m in p.finditer(text)]
    spans += [(m.start(1), m.end(1)) for m in _SECRET_ASSIGN.finditer(text)]
    return spans


@lru_cache(maxsize=1)
def _presidio():
    """The presidio recognizers, built once per process (None when presidio is unavailable)."""
    try:
        import tldextract
        import tldextract.tldextract as tldx

        tldx.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())  # bundled snapshot, no network
        # presidio_analyzer's package __init__ imports its optional transformers NLP engine, and
        # spaCy's thinc imports torch: ~8 s per worker process for code the pattern recognizers never
        # use. Both imports are optional there (guarded by ImportError), so they are hidden while
        # presidio is imported (only when not imported already) and made importable again afterwards.
        hidden = [m for m in ("transformers", "torch") if m not in sys.modules]
        for m in hidden:
            sys.modules[m] = None  # type: ignore[assignment]
        try:
            from presidio_analyzer.predefined_recognizers import (CreditCardRecognizer, EmailRecognizer,
                                                                  IpRecognizer, PhoneRecognizer)
        finally:
            for m in hidden:
                if sys.modules.get(m, 0) is None:
                    del sys.modules[m]
    except Exception as exc:  # ImportError or a broken install
        log.warning("presidio-analyzer is not usable (%s); PII falls back to the regex backend", exc)
        return None
    return {"email": (EmailRecognizer(), "EMAIL_ADDRESS"), "ip": (IpRecognizer(), "IP_ADDRESS"),
            "phone": (PhoneRecognizer(), "PHONE_NUMBER"), "credit_card": (CreditCardRecognizer(), "CREDIT_CARD")}


class Redactor:
    def __init__(self, backend: str = "presidio", min_score: float = 0.4, kinds=KINDS) -> None:
        if backend not in ("presidio", "regex"):
            raise ValueError(f"pii.backend must be 'presidio' or 'regex', not {backend!r}")
        self.recognizers = _presidio() if backend == "presidio" else None
        self.backend = "presidio" if self.recognizers else "regex"
        self.min_score = float(min_score)
        self.kinds = tuple(kinds)

    def find(self, text: str) -> list[tuple[int, int, str]]:
        spans: list[tuple[int, int, str]] = []
        if self.recognizers:
            for kind, (rec, entity) in self.recognizers.items():
                if kind in self.kinds and _MAYBE[kind].search(text):
                    spans += [(r.start, r.end, kind) for r in rec.analyze(text, [entity], None)
                              if r.score >= self.min_score]
        else:
            for kind, pat in (("email", _EMAIL), ("ip", _IPV4), ("phone", _PHONE)):
                if kind in self.kinds:
                    spans += [(m.start(), m.end(), kind) for m in pat.finditer(text)]
        if "name" in self.kinds:
            spans += [(s, e, "name") for s, e in _names(text)]
        if "secret" in self.kinds:
            spans += [(s, e, "secret") for s, e in _secrets(text)]
        # longest first, then no overlaps
        spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
        out: list[tuple[int, int, str]] = []
        for s in spans:
            if out and s[0] < out[-1][1]:
                continue
            out.append(s)
        return out

    def redact(self, text: str) -> tuple[str, dict[str, int]]:
        counts: dict[str, int] = {}
        spans = self.find(text)
        if not spans:
            return text, counts
        parts, pos = [], 0
        for s, e, kind in spans:
            parts += [text[pos:s], PLACEHOLDER[kind]]
            counts[kind] = counts.get(kind, 0) + 1
            pos = e
        parts.append(text[pos:])
        return "".join(parts), counts

    def redact_code(self, code: str) -> tuple[str, dict[str, int]]:
        """Redact inside comments and string literals only."""
        counts: dict[str, int] = {}

        def sub(m: re.Match) -> str:
            new, c = self.redact(m.group(0))
            for k, v in c.items():
                counts[k] = counts.get(k, 0) + v
            return new

        return _CODE_TEXT.sub(sub, code), counts


class RedactPII(Stage):
    """Replace PII with placeholders (<EMAIL>, <PHONE>, <IP_ADDRESS>, <NAME>, <SECRET>,
    <CREDIT_CARD>) in ``code_fields`` (comments/strings) and ``text_fields``; counts by kind."""

    name = "pii"
    modifies = True

    def __init__(self, code_fields: list[str], text_fields: list[str], backend: str = "presidio",
                 min_score: float = 0.4, kinds=KINDS) -> None:
        super().__init__(code_fields=list(code_fields), text_fields=list(text_fields), backend=backend,
                         min_score=min_score, kinds=list(kinds))
        self._redactor = None

    @property
    def redactor(self) -> Redactor:
        if self._redactor is None:  # built on the worker, once per process
            self._redactor = Redactor(self.config["backend"], self.config["min_score"], self.config["kinds"])
        return self._redactor

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_redactor"] = None
        return state

    def process(self, df):
        totals = {k: [0] * len(df) for k in KINDS}
        if len(df):
            red = self.redactor
            for fields, fn in ((self.config["code_fields"], red.redact_code), (self.config["text_fields"], red.redact)):
                for f in fields:
                    new = []
                    for i, text in enumerate(df[f]):
                        out, counts = fn(text)
                        new.append(out)
                        for k, v in counts.items():
                            totals[k][i] += v
                    df[f] = pd.Series(new, index=df.index, dtype=str)
        for k in KINDS:
            df[f"_n_pii_{k}"] = pd.Series(totals[k], index=df.index, dtype="int64")
        return df
