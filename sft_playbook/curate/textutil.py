"""Small text helpers shared by the stages (pure functions, no state)."""
from __future__ import annotations

import re
from collections import Counter
from itertools import islice

import ftfy

# Characters ftfy can change even in ASCII text: HTML entities (&), control characters, \r and ESC.
# Text made only of other printable ASCII (plus \t \n) is returned as is without calling ftfy:
# mojibake needs non-ASCII characters, so this skips no repair and saves ~70 us per document.
_NEEDS_FTFY = re.compile(r"[^\t\n\x20-\x25\x27-\x7e]")


_SAFE_ASCII = bytes([9, 10, *range(0x20, 0x26), *range(0x27, 0x7F)])


def fix_unicode(text: str) -> str:
    """``text`` repaired by ftfy (mojibake, HTML entities, control characters); printable ASCII text
    is returned as is without calling ftfy.
    """
    if not text:
        return text
    if text.isascii() and not text.encode("ascii").translate(None, _SAFE_ASCII):
        return text          # C-speed check of the same rule as _NEEDS_FTFY
    return ftfy.fix_text(text)


_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_MANY_BLANK = re.compile(r"\n{3,}")


def normalize_prose(text: str) -> str:
    """One space between words, no trailing blanks, at most one empty line between paragraphs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_BLANK.sub("\n\n", "\n".join(lines)).strip()


def normalize_code_ws(code: str) -> str:
    """Unix newlines, tabs to two spaces, no trailing blanks, no runs of empty lines."""
    code = code.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "  ")
    lines = [line.rstrip() for line in code.split("\n")]
    return _MANY_BLANK.sub("\n\n", "\n".join(lines)).strip("\n")


_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))


def single_spaced(text: str) -> bool:
    """True when ``text.split()`` gives the same words as ``text.split(" ")``: the text is not
    empty, is printable (every character ``str.split`` splits on other than the space - tabs,
    newlines, \x1c-\x1f, NBSP and the other Unicode spaces - is unprintable) and has no double,
    leading or trailing space. C-speed scans instead of building the word list; for ASCII text
    (``isascii`` is a flag lookup) "printable" is "nothing left after deleting bytes 0x20-0x7e"."""
    if not text or text[0] == " " or text[-1] == " " or "  " in text:
        return False
    if text.isascii():
        return not text.encode("ascii").translate(None, _PRINTABLE_ASCII)
    return text.isprintable()


def word_count(text: str) -> int:
    """``len(text.split())``, without the list when the text is single-spaced."""
    return text.count(" ") + 1 if single_spaced(text) else len(text.split())


def collapse_spaces(text: str) -> str:
    """``" ".join(text.split())``; single-spaced text is returned as it is."""
    return text if single_spaced(text) else " ".join(text.split())


_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """The lower-cased words (``\\w+`` runs) of ``text``."""
    return _WORD.findall(text.lower())


URL_RE = re.compile(r"(?:https?://|ftp://|www\.)[^\s<>\"')\]]+", re.IGNORECASE)


def url_char_share(text: str) -> float:
    """Share of ``text``'s characters (0..1) that are inside URLs."""
    if not text or ("://" not in text and "www." not in text.lower()):
        return 0.0
    return sum(len(m) for m in URL_RE.findall(text)) / len(text)


def top_ngram_share(text: str, n: int = 2) -> float:
    """Gopher's 'fraction of characters in the most common word n-gram': characters covered by
    the most frequent n-gram (counted each time it occurs) over the characters of all words.
    Ties go to the n-gram that occurs first (``Counter.most_common(1)``'s choice, found here with
    a C-speed ``max`` over the counts and one scan instead of a keyed max over the items)."""
    toks = text.lower().split()
    if len(toks) < n + 1:
        return 0.0
    counts = Counter(zip(*(islice(toks, i, None) for i in range(n))))
    count = max(counts.values())
    if count < 2:
        return 0.0
    for gram, c in counts.items():  # noqa: B007 - gram is read after the loop; insertion order = first occurrence
        if c == count:
            break
    return min(1.0, sum(map(len, gram)) * count / max(1, sum(map(len, toks))))


# -- Verilog tokens --------------------------------------------------------------------------
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_VTOKEN = re.compile(r"[A-Za-z_$][\w$]*|\d[\w']*|'[sS]?[bBoOdDhH][\w]+|\S")


def strip_comments(code: str) -> str:
    """Verilog ``//`` and ``/* */`` comments replaced by one space each."""
    return _COMMENT.sub(" ", code)


def code_tokens(code: str) -> list[str]:
    """Verilog tokens without comments or whitespace (formatting-insensitive view of the code)."""
    return _VTOKEN.findall(strip_comments(code))


def normalized_code(code: str) -> str:
    """What exact dedup hashes: the tokens of the code without comments, one space apart."""
    return " ".join(code_tokens(code))
