"""Small text helpers shared by the stages (pure functions, no state)."""
from __future__ import annotations

import re
from collections import Counter
from itertools import islice

import ftfy
from ftfy.chardata import HTML_ENTITY_RE

# Characters ftfy can change even in ASCII text: HTML entities (&), control characters, \r and ESC.
# Text made only of other printable ASCII (plus \t \n) is returned as is without calling ftfy:
# mojibake needs non-ASCII characters, so this skips no repair and saves ~70 us per document.
# An ``&`` matters only where it starts an entity as ftfy's own unescape_html reads one
# (ftfy.chardata.HTML_ENTITY_RE, ``&name;``/``&#123;``): Verilog's ``a & b`` is not one, and such
# code (a third of real MG-Verilog rows) skips ftfy too (~550 us a row).
_NEEDS_FTFY = re.compile(r"[^\t\n\x20-\x25\x27-\x7e]")


_SAFE_ASCII = bytes([9, 10, *range(0x20, 0x26), *range(0x27, 0x7F)])


def needs_ftfy(text: str) -> bool:
    """Whether ftfy could change ``text``: False only for printable ASCII (plus tab and newline) in
    which every ``&`` is outside an HTML entity (``ftfy.chardata.HTML_ENTITY_RE``).

    Returns:
        True when ``text`` has a non-ASCII or control character, ``\r``, ESC or an HTML entity.
    """
    if not text:
        return False
    if not text.isascii():
        return True
    rest = text.encode("ascii").translate(None, _SAFE_ASCII)   # C-speed check of _NEEDS_FTFY
    if not rest:
        return False
    return bool(rest.strip(b"&")) or HTML_ENTITY_RE.search(text) is not None


def fix_unicode(text: str) -> str:
    """``text`` repaired by ftfy (mojibake, HTML entities, control characters); printable ASCII text
    without an HTML entity is returned as is without calling ftfy (``needs_ftfy``).

    Returns:
        The repaired text; ``text`` itself when it is empty or ``needs_ftfy`` says ftfy cannot
        change it.
    """
    if not needs_ftfy(text):
        return text
    return ftfy.fix_text(text)


_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_MANY_BLANK = re.compile(r"\n{3,}")


def normalize_prose(text: str) -> str:
    """One space between words, no trailing blanks, at most one empty line between paragraphs.

    Returns:
        The text with Unix newlines, runs of spaces/tabs/Unicode spaces collapsed to one space, each
        line stripped, at most one empty line in a row, and no leading or trailing blank lines.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii() and "  " not in text and "\t" not in text:
        # no run to collapse: in ASCII text _SPACES matches only ' ' and '\t', and a lone ' ' stays
        lines = [line.strip() for line in text.split("\n")]
    else:
        lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    text = "\n".join(lines)
    if "\n\n\n" in text:
        text = _MANY_BLANK.sub("\n\n", text)
    return text.strip()


def normalize_code_ws(code: str) -> str:
    """Unix newlines, tabs to two spaces, no trailing blanks, no runs of empty lines.

    Returns:
        The code with ``\\r\\n``/``\\r`` turned into ``\\n``, each tab into two spaces, trailing blanks of
        each line removed, at most one empty line in a row, and no leading or trailing newlines.
    """
    code = code.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "  ")
    code = "\n".join([line.rstrip() for line in code.split("\n")])
    if "\n\n\n" in code:
        code = _MANY_BLANK.sub("\n\n", code)
    return code.strip("\n")


_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))


def single_spaced(text: str) -> bool:
    """True when ``text.split()`` gives the same words as ``text.split(" ")``: the text is not
    empty, is printable (every character ``str.split`` splits on other than the space - tabs,
    newlines, \x1c-\x1f, NBSP and the other Unicode spaces - is unprintable) and has no double,
    leading or trailing space. C-speed scans instead of building the word list; for ASCII text
    (``isascii`` is a flag lookup) "printable" is "nothing left after deleting bytes 0x20-0x7e".

    Returns:
        True when the conditions above hold; False for an empty text.
    """
    if not text or text[0] == " " or text[-1] == " " or "  " in text:
        return False
    if text.isascii():
        return not text.encode("ascii").translate(None, _PRINTABLE_ASCII)
    return text.isprintable()


def word_count(text: str) -> int:
    """``len(text.split())``, without the list when the text is single-spaced.

    Returns:
        The number of whitespace-separated words (0 for an empty or all-blank text).
    """
    return text.count(" ") + 1 if single_spaced(text) else len(text.split())


def collapse_spaces(text: str) -> str:
    """``" ".join(text.split())``; single-spaced text is returned as it is.

    Returns:
        The words of ``text`` joined by single spaces (leading/trailing whitespace gone); ``text`` itself
        when it is already single-spaced.
    """
    return text if single_spaced(text) else " ".join(text.split())


_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """The lower-cased words (``\\w+`` runs) of ``text``.

    Returns:
        The words in order, repeats kept (empty list for a text without word characters).
    """
    return _WORD.findall(text.lower())


URL_RE = re.compile(r"(?:https?://|ftp://|www\.)[^\s<>\"')\]]+", re.IGNORECASE)


def url_char_share(text: str) -> float:
    """Share of ``text``'s characters that are inside URLs (``http(s)://``, ``ftp://``, ``www.``).

    Returns:
        URL characters / all characters, in [0, 1]; 0.0 for an empty text or one without a URL.
    """
    if not text or ("://" not in text and "www." not in text.lower()):
        return 0.0
    return sum(len(m) for m in URL_RE.findall(text)) / len(text)


def top_ngram_share(text: str, n: int = 2) -> float:
    """Gopher's 'fraction of characters in the most common word n-gram': characters covered by
    the most frequent n-gram (counted each time it occurs) over the characters of all words.
    Ties go to the n-gram that occurs first (``Counter.most_common(1)``'s choice, found here with
    a C-speed ``max`` over the counts and one scan instead of a keyed max over the items).

    Returns:
        The share in [0, 1]; 0.0 when the text has fewer than ``n + 1`` words or no n-gram occurs
        twice.
    """
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
    """Verilog ``//`` and ``/* */`` comments replaced by one space each.

    Returns:
        ``code`` with each comment replaced by one space (line numbers after a ``/* */`` comment that
        spans lines shift; an unterminated ``/*`` is left as it is).
    """
    return _COMMENT.sub(" ", code)


def code_tokens(code: str) -> list[str]:
    """Verilog tokens without comments or whitespace (formatting-insensitive view of the code).

    Returns:
        The tokens in order: identifiers (``$`` allowed), numbers (with ``'`` and base letters, e.g.
        ``8'hFF`` or ``'b1010``) and every other non-space character as a token of its own.
    """
    return _VTOKEN.findall(strip_comments(code))


def normalized_code(code: str) -> str:
    """What exact dedup hashes: the tokens of the code without comments, one space apart.

    Returns:
        ``" ".join(code_tokens(code))`` ('' for code without tokens).
    """
    return " ".join(code_tokens(code))
