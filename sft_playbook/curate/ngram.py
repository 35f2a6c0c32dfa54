"""Top word n-gram share for many documents at once, in numpy (the Gopher repetition rule).

``top_ngram_shares(texts, n)[i] == textutil.top_ngram_share(texts[i], n)`` for every text, bit for
bit (tests/test_curate_fastpaths.py checks it on thousands of texts, ties included): the same
tokens (``text.lower().split()``), the same most frequent n-gram (the first to occur among those
with the highest count, ``Counter.most_common(1)``'s choice) and the same float division.

Why: the per-document version builds a tuple per n-gram and counts them in a ``Counter``; on
~200-word documents that is ~85 us each, the largest single cost of the text rules (1.7 s per
20,000 documents against 0.7 s here). Here a batch
of ASCII documents is joined into one byte buffer and everything is array work:

1. tokens are the runs of non-whitespace bytes (``str.split``'s ASCII whitespace: \\t \\n \\v \\f
   \\r \\x1c-\\x1f and space), lower-cased with ``bytes.lower`` (what ``str.lower`` does to ASCII);
2. each token gets an exact integer id: up to 8 bytes packed into one uint64, numbered with
   ``pandas.factorize`` (a hash table of the values themselves: no hash collisions); the rarer
   longer tokens are numbered by their ``bytes``;
3. (document, token ids, position) of every n-gram occurrence is packed into one int64 (leading
   tokens folded with ``factorize`` first when the bits would not fit) and sorted: runs are the
   n-grams with their counts, the low bits of a run's first key its first occurrence; per
   document, the highest count and, among the n-grams that have it, the earliest first
   occurrence (the one ``most_common(1)`` returns).

Documents with non-ASCII characters or NUL bytes (whose lower-casing and splitting follow the
Unicode tables) go through the per-document function; so do all of them when numpy work would not
pay (a handful of texts).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .textutil import top_ngram_share

_WS = np.zeros(256, dtype=bool)
_WS[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True          # [c for c in range(128) if chr(c).isspace()]
_LOW_BYTES = np.array([0] + [(1 << (8 * k)) - 1 for k in range(1, 8)] + [(1 << 64) - 1], dtype=np.uint64)
_BATCH_CHARS = 100_000            # bytes per numpy batch: its arrays stay in the CPU caches (measured
                                  # 0.7 s per 20k docs at 100k, 1.1-1.2 s at 200k-400k)
_MIN_BATCH = 16                   # fewer fast-path texts than this: the per-text function is quicker


def _factorize(values: np.ndarray) -> np.ndarray:
    return pd.factorize(values, sort=False)[0].astype(np.int64, copy=False)


def _pack8(padded: bytes, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The first min(length, 8) bytes at each start as a little-endian uint64 (the rest zero;
    tokens hold no NUL bytes, so a shorter token never packs like a longer one). ``padded`` ends
    with 8 zero bytes; the uint64 view below starts at every byte (unaligned reads).

    Returns:
        uint64 array of shape ``[len(starts)]``, one packed token prefix per start.
    """
    words = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    return words[starts] & _LOW_BYTES[np.minimum(lengths, 8)]


def _token_ids(padded: bytes, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Exact ids 0..k-1: tokens of up to 8 bytes by their packed bytes, longer ones (rarer) by
    their ``bytes`` (numbered after all the short ones, from which they differ by length).

    Returns:
        int64 array of shape ``[len(starts)]``: equal tokens get equal ids, different tokens different
        ones.
    """
    ids = _factorize(_pack8(padded, starts, lengths))
    longer = np.flatnonzero(lengths > 8)
    if longer.size:
        long_tokens = [padded[s:s + k] for s, k in zip(starts[longer].tolist(), lengths[longer].tolist())]
        ids[longer] = _factorize(np.array(long_tokens, dtype=object)) + int(ids.max()) + 1
    return ids


def _bits(count: int) -> int:
    """Bits that hold the numbers 0..count-1.

    Returns:
        ``max(1, (count - 1).bit_length())``.
    """
    return max(1, int(count - 1).bit_length())


def _batch(texts: list[str], n: int) -> np.ndarray:
    """Shares for ASCII texts without NUL bytes.

    Returns:
        float64 array of shape ``[len(texts)]``: each text's top n-gram share in [0, 1] (0.0 when no
        n-gram occurs twice), equal to ``top_ngram_share``.
    """
    out = np.zeros(len(texts))
    padded = (" " + " ".join(texts) + " ").encode("ascii").lower() + bytes(8)
    a = np.frombuffer(padded, dtype=np.uint8)[:-8]
    ws = _WS[a]
    edge = ws[:-1] != ws[1:]
    starts = np.flatnonzero(edge & ws[:-1]) + 1                  # the buffer begins and ends with a space
    ends = np.flatnonzero(edge & ws[1:]) + 1
    if starts.size < n + 1:
        return out
    lengths = ends - starts
    doc_len = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    doc_start = np.cumsum(np.concatenate(([1], doc_len[:-1] + 1)))
    first_tok = np.searchsorted(starts, doc_start)              # each document's first token
    tok_doc = np.repeat(np.arange(len(texts)), np.diff(np.append(first_tok, starts.size)))
    ids = _token_ids(padded, starts, lengths)
    m = starts.size - n + 1                                       # n-grams start at tokens 0..m-1
    pos = np.flatnonzero(tok_doc[:m] == tok_doc[n - 1:])          # all n tokens in one document
    if pos.size == 0:
        return out
    # One sort key per n-gram occurrence: (document, token ids..., position), all exact. When the
    # bits do not fit in 63, the leading tokens are first folded into one number with factorize.
    gdoc = tok_doc[pos]
    id_bits, doc_bits, pos_bits = _bits(int(ids.max()) + 1), _bits(len(texts)), _bits(starts.size)
    lead, j = ids[pos], 1
    lead_bits = id_bits
    while j < n and doc_bits + lead_bits + (n - j) * id_bits + pos_bits > 63:
        lead = _factorize((lead << id_bits) | ids[pos + j])       # < 2**(2 * 32): fits
        lead_bits, j = _bits(int(lead.max()) + 1), j + 1
    key = gdoc << lead_bits | lead
    for k in range(j, n):
        key = key << id_bits | ids[pos + k]
    key = np.sort(key << pos_bits | pos)
    gram = key >> pos_bits                                       # (document, n-gram), sorted
    run_start = np.flatnonzero(np.concatenate(([True], gram[1:] != gram[:-1])))
    counts = np.diff(np.append(run_start, gram.size))
    first = key[run_start] & ((1 << pos_bits) - 1)                # first occurrence of each n-gram
    run_doc = gram[run_start] >> (lead_bits + (n - j) * id_bits)
    doc_runs = np.flatnonzero(np.concatenate(([True], run_doc[1:] != run_doc[:-1])))
    best = np.maximum.reduceat(counts, doc_runs)
    # among a document's n-grams with the best count, the one that occurs first
    score = np.where(counts == np.repeat(best, np.diff(np.append(doc_runs, counts.size))), first, starts.size)
    p0 = np.minimum.reduceat(score, doc_runs)
    gram_chars = lengths[p0]
    for k in range(1, n):
        gram_chars = gram_chars + lengths[p0 + k]
    total = np.bincount(tok_doc, weights=lengths, minlength=len(texts)).astype(np.int64)
    docs = run_doc[doc_runs]
    share = (gram_chars * best) / np.maximum(1, total[docs])
    out[docs] = np.where(best >= 2, np.minimum(1.0, share), 0.0)
    return out


def top_ngram_shares(texts: Sequence[str], n: int = 2) -> np.ndarray:
    """``[top_ngram_share(t, n) for t in texts]`` as a float array, computed in batches.

    Returns:
        ``[len(texts)]`` float64 array of shares in [0, 1], bit for bit those of ``top_ngram_share``.

    Raises:
        ValueError: ``n`` < 1.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, not {n}")
    texts = list(texts)
    out = np.zeros(len(texts))
    fast = [i for i, t in enumerate(texts) if t.isascii() and "\x00" not in t]
    if len(fast) < _MIN_BATCH:
        fast = []
    on_fast = set(fast)
    for i, t in enumerate(texts):
        if i not in on_fast:
            out[i] = top_ngram_share(t, n)
    start = 0
    while start < len(fast):
        stop, size = start, 0
        while stop < len(fast) and (stop == start or size + len(texts[fast[stop]]) <= _BATCH_CHARS):
            size += len(texts[fast[stop]]) + 1
            stop += 1
        idx = fast[start:stop]
        out[idx] = _batch([texts[i] for i in idx], n)
        start = stop
    return out
