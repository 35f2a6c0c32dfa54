"""Step 3 - PII redaction on code (comments and string literals only) and descriptions.

Detectors:

* presidio-analyzer's pattern recognizers - ``EmailRecognizer``, ``IpRecognizer``,
  ``PhoneRecognizer`` (libphonenumber's ``PhoneNumberMatcher``, leniency VALID: only numbers
  that are valid for one of its regions), ``CreditCardRecognizer`` (Luhn-checked) - used
  directly, without an NLP engine: no spaCy model is needed or loaded. Importing
  presidio_analyzer pulls in transformers and torch through its optional NLP engines (~10 s per
  worker process); _presidio() hides those two optional imports and gets it down to ~3 s.
  EmailRecognizer's domain check uses tldextract, pointed at its bundled public-suffix snapshot
  so nothing is fetched from the network.
* own code for what presidio has no recognizer for in this setting: personal names on
  author / copyright / contact lines (``name``) and keys/tokens (``secret``: hf_, ghp_, AKIA...,
  sk-..., private-key blocks, ``password=...``/``api_key: ...`` values).

Precision on hardware text (numbers). Verilog rows are full of long decimal constants
(2654435769 = 0x9E3779B9, 3735928559 = 0xDEADBEEF, clock divisors 40000000) and digit tables
(``4 0011001`` in a 7-segment comment); libphonenumber calls many of them valid phone numbers.
A number candidate (phone, IP address, credit card) is therefore *considered* and then rejected,
and counted per reason (``_n_rejected_<kind>_<why>``, in the report), when

* ``in_code``: its digits are a numeric literal of the row's code (outside comments and strings;
  based literals such as ``32'h9E3779B9`` also by their decimal value), or every digit group of it
  is one: a value the design itself uses is a design constant, never personal data;
* ``no_phone_shape`` (phones only): it is written neither like a phone number - a leading ``+``,
  an area code in parentheses, or digit groups exactly as libphonenumber formats that number
  (national or international format of a region where it is valid) - nor next to a phone context
  word. Context uses presidio's own ``LemmaContextAwareEnhancer`` (whole-word match within
  ``context_window`` words before / 3 after) with the recognizer's context words minus
  ``number`` ("number of bits" is everywhere in hardware text) plus ``tel``/``fax``/``contact``
  (configurable: ``pii.phone_context``). A bare digit run with no such word is not redacted, and
  a context word alone makes a phone of one bare digit run only: digit groups not written the way
  libphonenumber writes the number ("Mobile 3 phase PWM: duty 0250 0500 0750") are not phones;
* ``no_card_shape`` (credit cards): a Luhn-valid digit run is a card only when printed in card
  groups (4-4-4-4, 4-6-5 ...) or next to a card word (presidio's CreditCardRecognizer context:
  card, visa, amex ...): 2^45 = 35184372088832 is Luhn-valid and a counter's wrap value;
* ``version_number`` (IP addresses): a dotted quad right after a version word (``version``,
  ``rev``, ``release``, ``firmware``, ``v``) is a version, not an address.

Recall on names: name words are any Unicode letters with their combining marks (José Núñez, Zoë
Ødegaard, Łukasz Żółć, Ана Петрова, 王小明, राहुल शर्मा, สมชาย ใจดี), with initials, particles (van, de, da...), hyphens and apostrophes,
an optional title (Dr., Prof.) before, and lists (``A, B and C``): every name is redacted whole.
Name lines start with author / written by / copyright / ``©`` / ``(c)`` (a year after it, or
opening the comment: ``// (c) 2021 John Smith``) or a role noun with a colon.
Organisations (``Intel Corporation``, ``Xilinx, Inc.``) are not personal names and stay.

``backend: regex`` uses simple own patterns for e-mail/IP/phone instead of presidio (fast, fewer
checks; the same number rejections apply); it is also the fallback, with a warning, when
presidio-analyzer cannot be imported.

Only comments and string literals of the code are scanned: identifiers and numbers in Verilog
(``32'd4045550123``, ``10.0.0.1`` in a ``$display``) are not personal data, and redacting inside
code would break it. Every replacement is counted by kind (``_n_pii_<kind>``); nothing is dropped.
"""
from __future__ import annotations

import logging
import re
import sys
import unicodedata
from functools import lru_cache, partial

import pandas as pd

from .base import Stage
from ..settings import PII_BACKENDS, PII_KINDS, PiiSettings

log = logging.getLogger(__name__)

PLACEHOLDER = {"email": "<EMAIL>", "ip": "<IP_ADDRESS>", "phone": "<PHONE>", "name": "<NAME>",
               "secret": "<SECRET>", "credit_card": "<CREDIT_CARD>"}
KINDS = PII_KINDS                 # declared once, with the settings (pii.kinds' choices)
_P = PiiSettings()                # the defaults of the constructors below
assert set(PLACEHOLDER) == set(KINDS), "every kind needs a placeholder"
NUMBER_KINDS = ("phone", "ip", "credit_card")          # candidates that can be design constants
#: phone context words (presidio's PhoneRecognizer.CONTEXT without "number", plus tel/fax/contact):
#: the default of pii.phone_context, declared with the settings
PHONE_CONTEXT = tuple(_P.phone_context)
#: why a number candidate was rejected, per kind (counted as ``_n_rejected_<kind>_<why>``)
REJECT_REASONS = {"phone": ("in_code", "no_phone_shape"), "ip": ("in_code", "version_number"),
                  "credit_card": ("in_code", "no_card_shape")}
#: credit card context words (presidio's CreditCardRecognizer.CONTEXT, 'cc ' as the word 'cc')
CARD_CONTEXT = ("credit", "card", "visa", "mastercard", "cc", "amex", "discover", "jcb", "diners", "maestro",
                "instapayment")
#: a dotted quad right after one of these words (or 'v1.2.3.4') is a version number, not an address
VERSION_WORDS = ("version", "ver", "v", "rev", "revision", "release", "firmware", "fw", "build", "release")
REGIONS = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")   # presidio's PhoneRecognizer default (regex backend)

_CODE_TEXT = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"', re.DOTALL)

# -- names -----------------------------------------------------------------------------------------
# strong line keywords: a name may follow directly; role nouns ("contact", "designer") need a
# colon or dash first (they are ordinary words in hardware prose: "switch contact bounce")
_NAME_LINE = re.compile(
    r"(?im)(?:\b(?:author(?:s|\(s\))?|written[ \t]+by|created[ \t]+by|coded[ \t]+by|designed[ \t]+by|"
    r"maintained[ \t]+by|modified[ \t]+by|developed[ \t]+by|copyright)|©"
    # '(c)' (no word boundary before a parenthesis) is a copyright mark when a year follows or it
    # opens the comment line; '(a), (b), (c) Then' in prose is not
    r"|(?<![\w)])\(c\)(?=[ \t]*(?:19|20)\d\d)|(?:^|(?<=//)|(?<=/\*)|(?<=\*))[ \t]*\(c\)"
    r"|\b(?:designer|engineer|maintainer|contact|developer|programmer|owner)(?=[ \t]*[:\-]))"
    r"[ \t]*(?:\(c\)|©)?[ \t]*[:\-]?[ \t]*(?:(?:19|20)\d\d(?:[ \t]*[-,–][ \t]*(?:19|20)?\d\d)*[ \t]*,?[ \t]*)?"
    r"(?:by[ \t]+)?")
_NAME_TOKEN = re.compile(r"[^\s,;&/<>()\[\]{}\"*:|=]+|[,;&/]")
_TITLES = frozenset("dr dr. prof prof. mr mr. mrs mrs. ms ms. mx mx. sir dipl.-ing. ing.".split())
_PARTICLES = frozenset("van von de der den del della da di du dos das le la bin ibn al el ten ter zu y".split())
_LIST_WORDS = frozenset(("and", "und", "et", ","  , ";", "&", "/"))
_ORG = re.compile(r"(?i)(?:inc|corp|corporation|ltd|llc|gmbh|ag|sa|bv|plc|university|universit\w*|institute|"
                  r"foundation|technologies|technology|systems|labs?|company|co|project|contributors|authors|"
                  r"team|all|rights|the|regents|group|inc\.|semiconductors?|electronics|devices)\.?")


def _letter(ch: str) -> bool:
    """A letter, or a combining mark / joiner that is part of one: the vowel signs and viramas of
    Devanagari, Bengali, Tamil, Thai ... are Unicode Mn/Mc, not alphabetic (``'शर्मा'``).

    Returns:
        True for an alphabetic character, ZWNJ/ZWJ or a combining mark (category M*).
    """
    return ch.isalpha() or ch in "\u200c\u200d" or unicodedata.category(ch)[0] == "M"


def _name_word(w: str) -> bool:
    """A capitalised word of letters (any script; ' ’ - inside), or a word of a caseless script
    (CJK, Devanagari, Bengali, Tamil, Thai ...; combining marks count as part of the letters).

    Returns:
        True when ``w`` (a trailing ``.`` ignored for words over 2 characters) qualifies as a name word.
    """
    core = w[:-1] if w.endswith(".") and len(w) > 2 else w
    if not core or not core[0].isalpha():
        return False
    if not all(_letter(ch) or ch in "'’-" for ch in core):
        return False
    if core[0].isupper():
        return len(core) >= 2
    return not any(ch.islower() or ch.isupper() for ch in core)      # caseless script


def _initial(w: str) -> bool:
    return len(w) == 2 and w[0].isupper() and w[1] == "." or (len(w) > 2 and w.endswith(".") and
                                                                all(p[:1].isupper() and len(p) == 1 for p in w[:-1].split(".")))


_NAME_HINTS = ("author", "by", "copyright", "(c)", "©", "designer", "engineer", "maintainer", "contact",
               "developer", "programmer", "owner")


def _particle_before_name(toks: list[re.Match], k: int) -> bool:
    """toks[k] is a particle (van, de, da...) followed by more particles and then a name word.

    Returns:
        True when a name word follows after only particles; False at any other word or the end.
    """
    for t in toks[k + 1:]:
        w = t.group(0)
        if _name_word(w):
            return True
        if w.lower() not in _PARTICLES:
            return False
    return False


def _names(text: str) -> list[tuple[int, int]]:
    """Spans of personal names after author/copyright/contact keywords (each name of a list).

    Returns:
        ``(start, end)`` character offsets per name (organisations and one-letter words left out), in
        text order; empty when the text has no author/copyright/contact hint.
    """
    spans = []
    low = text.lower()
    if not any(h in low for h in _NAME_HINTS):      # C-speed substring checks before the regex scan
        return spans
    for m in _NAME_LINE.finditer(text):
        eol = text.find("\n", m.end())
        eol = len(text) if eol < 0 else eol
        items: list[list[re.Match]] = [[]]
        toks = list(_NAME_TOKEN.finditer(text, m.end(), eol))
        k = 0
        while k < len(toks):
            w = toks[k].group(0)
            cur = items[-1]
            if not cur and w.lower() in _TITLES:
                k += 1
                continue
            if _initial(w) or _name_word(w) or (w.lower() in _PARTICLES and _particle_before_name(toks, k)):
                if cur and text[cur[-1].end():toks[k].start()].strip():
                    break                                    # not adjacent (a symbol between)
                cur.append(toks[k])
                k += 1
                if w.endswith(".") and not _initial(w) and w.lower() not in _TITLES:
                    break                                    # "Núñez." ends a sentence
                continue
            if cur and w.lower() in _LIST_WORDS:
                items.append([])
                k += 1
                continue
            break
        items = [it for it in items if it]
        for n, it in enumerate(items):
            words = [t.group(0).rstrip(".") if not _initial(t.group(0)) else t.group(0) for t in it]
            nxt = items[n + 1] if n + 1 < len(items) else None
            if any(_ORG.fullmatch(w) for w in words) or (nxt and all(_ORG.fullmatch(t.group(0)) for t in nxt)):
                continue                                     # an organisation ("Xilinx, Inc.")
            if len(words) == 1 and len(words[0]) < 2:
                continue
            end = it[-1].end() - (1 if it[-1].group(0).endswith(".") and not _initial(it[-1].group(0)) else 0)
            spans.append((it[0].start(), end))
    return spans


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


# -- numbers: design constants and phone shape ---------------------------------------------------
_BASED = re.compile(r"(?:(\d[\d_]*)\s*)?'[sS]?([bBoOdDhH])\s*([0-9a-fA-F_xXzZ?]+)")
_PLAIN = re.compile(r"(?<![\w$'.])\d[\d_]*")
_DIGITS = re.compile(r"\d+")
_RADIX = {"b": 2, "o": 8, "d": 10, "h": 16}


def code_numbers(code: str) -> frozenset[str]:
    """Digit strings of the numeric literals of ``code`` outside comments and string literals:
    each literal as written (underscores removed), based literals (``32'h9E3779B9``) also as
    their decimal value (``2654435769``) when they have no x/z digits, plain decimals also
    without leading zeros.

    Returns:
        The set of digit strings (empty for code without numeric literals).
    """
    body = _CODE_TEXT.sub(" ", code)
    out: set[str] = set()
    for m in _BASED.finditer(body):
        if m.group(1):
            out.add(m.group(1).replace("_", ""))
        digits = m.group(3).replace("_", "")
        if digits.isdigit():
            out.add(digits)
        try:
            out.add(str(int(digits, _RADIX[m.group(2).lower()])))
        except ValueError:
            pass
    for m in _PLAIN.finditer(_BASED.sub(" ", body)):
        d = m.group(0).replace("_", "")
        out.update((d, d.lstrip("0") or "0"))
    return frozenset(out)


def _in_code(candidate: str, numbers: frozenset[str]) -> bool:
    if not numbers:
        return False
    groups = _DIGITS.findall(candidate)
    whole = "".join(groups)
    return whole in numbers or (whole.lstrip("0") or "0") in numbers or all(g in numbers for g in groups)


def _phone_shaped(candidate: str, regions) -> bool:
    """Written the way phone numbers are written: +country, (area code), or digit groups exactly
    as libphonenumber formats this number (national or international; the international call
    prefix ``00``/``011`` written for the ``+``) for a region where it is valid.

    Returns:
        True when the candidate is written like a phone number; False for one bare digit run or groups
        no region formats that way.
    """
    import phonenumbers

    s = candidate.strip()
    if s.startswith("+") or re.match(r"\(\d{1,5}\)", s):
        return True
    groups = [len(g) for g in _DIGITS.findall(s)]
    if len(groups) < 2:
        return False                                          # one bare digit run
    idd = re.match(r"(?:00|011)[ \-.]?(?=[1-9])", s)
    if idd:                                                   # 0049 30 901820 = +49 30 901820
        try:
            num = phonenumbers.parse("+" + s[idd.end():], None)
            if phonenumbers.is_valid_number(num):
                shape = [len(g) for g in _DIGITS.findall(phonenumbers.format_number(
                    num, phonenumbers.PhoneNumberFormat.INTERNATIONAL))]
                rest = [len(g) for g in _DIGITS.findall(s[idd.end():])]
                if rest == shape or (idd.group(0)[-1].isdigit() and [groups[0] - len(idd.group(0))] + groups[1:] == shape):
                    return True
        except phonenumbers.NumberParseException:
            pass
    for region in regions:
        try:
            num = phonenumbers.parse(s, region)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_valid_number(num):
            continue
        for fmt in (phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.INTERNATIONAL):
            shape = [len(g) for g in _DIGITS.findall(phonenumbers.format_number(num, fmt))]
            if shape == groups or shape[1:] == groups:           # international without the country code
                return True
    return False


_WORD = re.compile(r"\w+|[^\w\s]")


def _card_shaped(candidate: str) -> bool:
    """Written the way card numbers are printed: 4-4-4-4(-3) or 4-6-4/5 digit groups with one kind
    of separator (space or dash). A bare digit run is not (a Luhn-valid constant is common).

    Returns:
        True for one of the printed card group layouts with a single separator kind; False otherwise.
    """
    s = candidate.strip()
    seps = set(re.findall(r"\D+", s))
    if len(seps) != 1 or seps.pop() not in (" ", "-"):
        return False
    groups = [len(g) for g in _DIGITS.findall(s)]
    return groups in ([4, 4, 4, 4], [4, 4, 4, 4, 3], [4, 6, 5], [4, 6, 4], [4, 4, 4, 2], [4, 4, 4, 3])


def _near_words(text: str, start: int, end: int, words, before: int, after: int = 3) -> bool:
    """One of ``words`` (whole words, any case) among the ``before`` words before / ``after`` after.

    Returns:
        True when one of ``words`` is among those neighbours (words and punctuation tokens).
    """
    pre = [w.lower() for w in _WORD.findall(text[:start])][-before:] if before else []
    post = [w.lower() for w in _WORD.findall(text[end:])][:after]
    return bool(set(pre + post) & set(words))


def _version_number(text: str, start: int) -> bool:
    """The dotted quad at ``start`` follows a version word (``version 1.2.3.4``, ``rev: 2.0.1.7``,
    ``v1.2.3.4``).

    Returns:
        True when the 40 characters before ``start`` end in ``v``/``v.`` or a version word (plus
        separators).
    """
    pre = text[max(0, start - 40):start]
    if re.search(r"(?i)(?<![A-Za-z])v\.?$", pre):
        return True
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", pre)]
    return bool(words) and words[-1] in VERSION_WORDS and re.fullmatch(r"(?s).*?[A-Za-z]+[ \t:=#]*", pre) is not None

def _context_artifacts(text: str):
    """presidio NlpArtifacts without an NLP engine: word tokens, lower-cased as 'lemmas'.

    Returns:
        ``NlpArtifacts`` with ``tokens``, their character offsets, lower-cased ``lemmas`` and
        ``keywords`` (the lower-cased tokens that start with a letter or digit).
    """
    from presidio_analyzer.nlp_engine import NlpArtifacts

    toks = list(_WORD.finditer(text))
    words = [t.group(0) for t in toks]
    art = NlpArtifacts(entities=[], tokens=words, tokens_indices=[t.start() for t in toks],
                       lemmas=[w.lower() for w in words], nlp_engine=None, language="en")
    art.keywords = [w.lower() for w in words if w[0].isalnum()]   # set_keywords needs an engine
    return art


# cheap pre-checks: a recognizer only runs on text that could hold its entity at all
_MAYBE = {"email": re.compile("@"), "ip": re.compile(r"\d\.\d|:[0-9A-Fa-f]*:"),
          "phone": re.compile(r"(?:\d\D{0,3}){7}"), "credit_card": re.compile(r"(?:\d\D?){13}")}


_SECRET_HINTS = ("hf_", "gh", "akia", "asia", "sk-", "xox", "private key", "key", "secret", "token", "pass", "pwd")


def _secrets(text: str) -> list[tuple[int, int]]:
    low = text.lower()
    if not any(h in low for h in _SECRET_HINTS):
        return []
    spans = [(m.start(), m.end()) for p in _SECRETS for m in p.finditer(text)]
    spans += [(m.start(1), m.end(1)) for m in _SECRET_ASSIGN.finditer(text)]
    return spans


@lru_cache(maxsize=1)
def _presidio():
    """The presidio recognizers, built once per process (None when presidio is unavailable).

    Returns:
        ``{kind: (recognizer, presidio entity name)}`` for email, ip, phone and credit_card, or None
        (a warning is logged) when presidio cannot be imported.
    """
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


@lru_cache(maxsize=8)
def _phone_context(words: tuple[str, ...], window: int):
    """presidio's context-aware enhancer and a recognizer carrying the phone context words.

    Returns:
        ``(LemmaContextAwareEnhancer with window words before and 3 after, PhoneRecognizer with the
        context words)``.
    """
    from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    return (LemmaContextAwareEnhancer(context_prefix_count=window, context_suffix_count=3,
                                      context_matching_mode="whole_word"),
            PhoneRecognizer(context=list(words)))


class Redactor:
    """Find and replace PII in one text. ``find(text, numbers)`` / ``redact(text, numbers)``:
    ``numbers`` are the row's design constants (``code_numbers(code)``), which are never PII;
    ``self.rejected`` counts the number candidates considered and rejected, by ``<kind>_<why>``."""

    def __init__(self, backend: str = _P.backend, min_score: float = _P.min_score, kinds=KINDS,
                 phone_context=PHONE_CONTEXT, context_window: int = _P.context_window) -> None:
        if backend not in PII_BACKENDS:
            raise ValueError(f"pii.backend must be one of {', '.join(PII_BACKENDS)}, not {backend!r}")
        self.recognizers = _presidio() if backend == "presidio" else None
        self.backend = "presidio" if self.recognizers else "regex"
        self.min_score = float(min_score)
        self.kinds = tuple(kinds)
        self.phone_context = tuple(w.lower() for w in phone_context)
        self.context_window = int(context_window)
        self.regions = tuple(self.recognizers["phone"][0].supported_regions) if self.recognizers else REGIONS
        self.rejected: dict[str, int] = {}

    def _reject(self, kind: str, why: str) -> None:
        key = f"{kind}_{why}"
        self.rejected[key] = self.rejected.get(key, 0) + 1

    def _has_context(self, text: str, start: int, end: int) -> bool:
        """presidio's LemmaContextAwareEnhancer: a phone context word within the window.

        Returns:
            True when a phone context word is within ``context_window`` words before or 3 after the span;
            False when there are no context words.
        """
        if not self.phone_context:
            return False
        if self.recognizers is None:     # regex backend: the same words, same window, own tokens
            return _near_words(text, start, end, self.phone_context, self.context_window)
        from presidio_analyzer import AnalysisExplanation, RecognizerResult

        enhancer, rec = _phone_context(self.phone_context, self.context_window)
        res = RecognizerResult("PHONE_NUMBER", start, end, rec.SCORE,
                               AnalysisExplanation(type(rec).__name__, rec.SCORE),
                               recognition_metadata={RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: rec.id})
        out = enhancer.enhance_using_context(text, [res], _context_artifacts(text), [rec])
        return out[0].score > res.score

    def _accept(self, text: str, start: int, end: int, kind: str, numbers) -> bool:
        cand = text[start:end]
        if _in_code(cand, numbers() if callable(numbers) else numbers):
            self._reject(kind, "in_code")
            return False
        if kind == "phone" and not _phone_shaped(cand, self.regions):
            # a context word makes a phone of one bare digit run only: groups not written the way
            # phone numbers are ("Mobile 3 phase PWM: duty 0250 0500 0750") stay what they are
            if len(_DIGITS.findall(cand)) > 1 or not self._has_context(text, start, end):
                self._reject(kind, "no_phone_shape")
                return False
        if kind == "credit_card" and not _card_shaped(cand) and not _near_words(text, start, end, CARD_CONTEXT,
                                                                                 self.context_window):
            self._reject(kind, "no_card_shape")
            return False
        if kind == "ip" and _version_number(text, start):
            self._reject(kind, "version_number")
            return False
        return True

    def find(self, text: str, numbers=frozenset()) -> list[tuple[int, int, str]]:
        """The PII in ``text``.

        Args:
            text: the text to search.
            numbers: the design constants (a set, or a function returning it: only called when a number
                candidate needs it); a number candidate made of them is not PII.

        Returns:
            ``(start, end, kind)`` character offsets (end exclusive) per PII span, sorted by start and
            non-overlapping (of overlapping spans the one starting first, then the longest, is kept).
        """
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
        spans = [s for s in spans if s[2] not in NUMBER_KINDS or self._accept(text, *s, numbers)]
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

    def redact(self, text: str, numbers=frozenset()) -> tuple[str, dict[str, int]]:
        """``text`` with each PII span (``find``) replaced by its placeholder (``<EMAIL>``, ...).

        Args:
            text: the text to redact.
            numbers: the design constants that are never PII (a set, or a function returning it).

        Returns:
            (redacted text, number of replacements per kind).
        """
        counts: dict[str, int] = {}
        spans = self.find(text, numbers)
        if not spans:
            return text, counts
        parts, pos = [], 0
        for s, e, kind in spans:
            parts += [text[pos:s], PLACEHOLDER[kind]]
            counts[kind] = counts.get(kind, 0) + 1
            pos = e
        parts.append(text[pos:])
        return "".join(parts), counts

    def redact_code(self, code: str, numbers=None) -> tuple[str, dict[str, int]]:
        """Redact inside comments and string literals only (the code's own numbers are never PII).

        Args:
            code: Verilog source.
            numbers: the design constants (a set, or a function returning it); None: those of ``code``
                (``code_numbers``), computed only when a number candidate needs them.

        Returns:
            (code with PII in its comments and strings replaced by placeholders, number of replacements
            per kind); the code outside comments and strings is unchanged.
        """
        counts: dict[str, int] = {}
        if numbers is None:
            numbers = lru_cache(maxsize=1)(lambda: code_numbers(code))

        def sub(m: re.Match) -> str:
            new, c = self.redact(m.group(0), numbers)
            for k, v in c.items():
                counts[k] = counts.get(k, 0) + v
            return new

        return _CODE_TEXT.sub(sub, code), counts


class RedactPII(Stage):
    """Replace PII with placeholders (<EMAIL>, <PHONE>, <IP_ADDRESS>, <NAME>, <SECRET>,
    <CREDIT_CARD>) in ``code_fields`` (comments/strings) and ``text_fields``; counts by kind
    (``_n_pii_<kind>``) and the number candidates rejected (``_n_rejected_<kind>_<why>``, see
    the module docstring). The numbers of the row's ``code_fields`` are its design constants."""

    name = "pii"

    def __init__(self, code_fields: list[str], text_fields: list[str], backend: str = _P.backend,
                 min_score: float = _P.min_score, kinds=KINDS, phone_context=PHONE_CONTEXT,
                 context_window: int = _P.context_window) -> None:
        super().__init__(code_fields=list(code_fields), text_fields=list(text_fields), backend=backend,
                         min_score=min_score, kinds=list(kinds), phone_context=list(phone_context),
                         context_window=context_window)
        # checked here, on the driver, before any work (the Redactor is built on the workers)
        if backend not in PII_BACKENDS:
            raise ValueError(f"pii.backend: must be one of {', '.join(PII_BACKENDS)}, got {backend!r}")
        unknown = [k for k in kinds if k not in KINDS]
        if unknown or not list(kinds):
            raise ValueError(f"pii.kinds: unknown kind(s) {unknown} (known: {', '.join(KINDS)})" if unknown
                             else f"pii.kinds: empty; list some of {', '.join(KINDS)} (or pii.enabled: false)")
        if not 0 <= float(min_score) <= 1:
            raise ValueError(f"pii.min_score: must be in [0, 1], got {min_score!r}")
        if int(context_window) < 0:
            raise ValueError(f"pii.context_window: must be >= 0, got {context_window!r}")
        self._redactor = None

    @property
    def redactor(self) -> Redactor:
        """The ``Redactor`` for this stage's settings, built on first use (once per worker process)."""
        if self._redactor is None:  # built on the worker, once per process
            c = self.config
            self._redactor = Redactor(c["backend"], c["min_score"], c["kinds"], c["phone_context"], c["context_window"])
        return self._redactor

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_redactor"] = None
        return state

    def process(self, df):
        """Redact the partition's code and text fields and add the per-kind counters (class docstring).

        Returns:
            ``df`` with the fields redacted (no row dropped) and the int64 counter columns
            ``_n_pii_<kind>`` (replacements per kind) and ``_n_rejected_<kind>_<why>`` (number candidates
            rejected, per reason).
        """
        totals = {k: [0] * len(df) for k in KINDS}
        rejected = {f"{k}_{w}": [0] * len(df) for k in NUMBER_KINDS for w in REJECT_REASONS[k]}
        if len(df):
            red = self.redactor
            c = self.config
            # the design constants of each row, from its code (computed once, when a candidate needs them)
            codes = [list(col) for col in (df[f] for f in c["code_fields"])]
            numbers: list[frozenset[str] | None] = [None] * len(df)

            def nums(i: int) -> frozenset[str]:
                if numbers[i] is None:
                    numbers[i] = frozenset().union(*(code_numbers(col[i]) for col in codes)) if codes else frozenset()
                return numbers[i]

            for fields, is_code in ((c["code_fields"], True), (c["text_fields"], False)):
                for f in fields:
                    new = []
                    for i, text in enumerate(df[f]):
                        red.rejected = {}
                        n = partial(nums, i)           # computed only when a candidate needs it
                        out, counts = red.redact_code(text, n) if is_code else red.redact(text, n)
                        new.append(out)
                        for k, v in counts.items():
                            totals[k][i] += v
                        for k, v in red.rejected.items():
                            rejected[k][i] += v
                    df[f] = pd.Series(new, index=df.index, dtype=str)
        for k in KINDS:
            df[f"_n_pii_{k}"] = pd.Series(totals[k], index=df.index, dtype="int64")
        for k, v in rejected.items():
            df[f"_n_rejected_{k}"] = pd.Series(v, index=df.index, dtype="int64")
        return df
