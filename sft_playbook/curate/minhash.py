"""MinHash + LSH, vectorised (numpy on CPU; torch on a GPU worker when one is present).

Shingles
    ``tokens`` (default for code): Verilog tokens without comments, identifiers optionally replaced
    by one placeholder (so renamed signals do not hide a copy), n-grams of ``ngram`` tokens;
    ``words``: word n-grams of lower-cased text (datatrove: 5-grams);
    ``chars``: character n-grams of whitespace-collapsed text (NeMo Curator: 24-char shingles).
    Each shingle is hashed to 32 bits with CRC-32 (deterministic across processes and machines).

Signatures
    ``num_perm`` hash functions h_i(x) = ((a_i * x + b_i) mod 2^64) >> 32 with random odd 64-bit
    a_i and random b_i (multiply-add-shift, a universal family for 32-bit keys) from a fixed seed;
    the signature is the per-function minimum over a document's shingles. Whole partitions are
    done at once: one (shingles x num_perm) matrix per chunk and a segmented minimum
    (``np.minimum.reduceat``; ``torch.scatter_reduce(..., 'amin')`` on the torch path, bit-for-bit
    the same result).

LSH and verification
    ``bands`` x ``rows`` (<= num_perm) bands: documents that agree on all rows of any band become
    candidate pairs; each candidate pair is then checked with the exact Jaccard similarity of the
    two shingle sets against ``threshold`` (NeMo Curator's false-positive check). The accepted
    pairs are not joined transitively (union-find would chain A~B, B~C into one cluster although
    A and C differ): dedup.keep_first keeps a row unless it is near an earlier KEPT row.

Defaults and why (threshold 0.8)
    The chance that a pair of Jaccard s becomes a candidate is P(s) = 1 - (1 - s^r)^b.
    NeMo Curator: 20 bands x 13 rows (260 hashes), 24-char shingles: P(0.8) = 0.68, P(0.9) = 0.997;
    its S-curve is centred at (1/b)^(1/r) = 0.79, so about a third of the pairs right at 0.8 are
    missed. datatrove: 14 x 8 (112 hashes), word 5-grams, no verification: P(0.8) = 0.92, centre
    0.72, and pairs down to ~0.6 are merged unverified. Here: 20 x 8 (160 hashes): P(0.8) = 0.975,
    P(0.85) = 0.998, centre 0.69; the lower centre costs some extra candidates, which the exact
    Jaccard check removes, so precision stays ~1 and recall at >= 0.8 is >= 0.975 per pair
    (measured: docs/benchmarks.md, bench/curate_fuzzy.py).
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence

import numpy as np

from .textutil import code_tokens

_KEYWORDS = frozenset("""always always_comb always_ff always_latch and assign automatic begin buf bufif0 bufif1 case
casex casez cmos deassign default defparam disable edge else end endcase endfunction endgenerate endmodule
endprimitive endspecify endtable endtask event for force forever fork function generate genvar highz0 highz1 if
ifnone initial inout input integer join large localparam logic macromodule medium module nand negedge nmos nor
not notif0 notif1 or output parameter pmos posedge primitive pull0 pull1 pulldown pullup rcmos real realtime reg
release repeat rnmos rpmos rtran rtranif0 rtranif1 scalared signed small specify specparam strong0 strong1
supply0 supply1 table task time tran tranif0 tranif1 tri tri0 tri1 triand trior trireg unsigned vectored wait
wand weak0 weak1 while wire wor xnor xor""".split())
_IDENT = re.compile(r"[A-Za-z_][\w$]*")
_WS = re.compile(r"\s+")
MAX_U32 = np.uint32(0xFFFFFFFF)


def _word_grams(toks: list[str], n: int) -> list[str]:
    """``" ".join(toks[i:i + n])`` for every start i (one gram of all tokens when fewer than n).

    Returns:
        The n-grams as space-joined strings, in order (empty for no tokens).
    """
    if len(toks) <= n:
        return [" ".join(toks)] if toks else []
    return list(map(" ".join, zip(*(toks[i:] for i in range(n)))))


def shingles(text: str, kind: str = "tokens", ngram: int = 5, normalize_identifiers: bool = True) -> np.ndarray:
    """Unique 32-bit shingle hashes of one document.

    Args:
        text: the document.
        kind: ``tokens`` (Verilog token n-grams without comments), ``words`` (lower-cased word n-grams)
            or ``chars`` (character n-grams of whitespace-collapsed text).
        ngram: n-gram length, in tokens, words or characters per ``kind``.
        normalize_identifiers: ``tokens`` only: replace every identifier that is not a keyword by one
            placeholder.

    Returns:
        Sorted unique CRC-32 hashes (uint64 array, values < 2^32; one gram of the whole document when it
        is shorter than ``ngram``; empty for an empty document).

    Raises:
        ValueError: ``kind`` is not ``tokens``, ``words`` or ``chars``.
    """
    if kind == "tokens":
        toks = code_tokens(text)
        if normalize_identifiers:
            toks = [t if (t in _KEYWORDS or not _IDENT.fullmatch(t)) else "$id" for t in toks]
        grams = _word_grams(toks, ngram)
    elif kind == "words":
        grams = _word_grams(text.lower().split(), ngram)
    elif kind == "chars":
        t = _WS.sub(" ", text).strip()
        grams = [t[i:i + ngram] for i in range(max(1, len(t) - ngram + 1))] if t else []
    else:
        raise ValueError(f"shingle kind must be tokens, words or chars, not {kind!r}")
    crc = zlib.crc32
    return np.unique(np.fromiter(map(crc, map(str.encode, grams)), dtype=np.uint64, count=len(grams)))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sets given as sorted unique arrays.

    Returns:
        ``|a & b| / |a | b|`` in [0, 1]; 1.0 for two empty sets.
    """
    if len(a) == 0 and len(b) == 0:
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


class MinHasher:
    """MinHash signatures with ``num_perm`` universal hash functions ``a * x + b`` (mod 2**64, upper 32
    bits kept) drawn from ``seed``: the same seed gives the same signatures on every machine.

    Args:
        num_perm: signature length (hash functions).
        seed: seed of the hash coefficients.
        backend: ``numpy`` (CPU) or ``torch`` (the GPU when available).
        chunk_elems: shingles x hash functions computed at once (bounds the temporary memory);
            None: a size chosen per backend.
    """
    def __init__(self, num_perm: int = 160, seed: int = 42, backend: str = "numpy", chunk_elems: int | None = None) -> None:
        rng = np.random.default_rng(seed)
        self.a = rng.integers(0, np.iinfo(np.uint64).max, size=num_perm, dtype=np.uint64, endpoint=True) | np.uint64(1)
        self.b = rng.integers(0, np.iinfo(np.uint64).max, size=num_perm, dtype=np.uint64, endpoint=True)
        self.num_perm = num_perm
        self.backend = backend
        # hashes per chunk: ~2 MB of uint64 on the CPU (cache-sized), 32 MB per GPU call
        self.chunk_elems = chunk_elems or (1 << 22 if backend == "torch" else 1 << 18)

    def signatures(self, docs: Sequence[np.ndarray]) -> np.ndarray:
        """MinHash signatures of a batch of documents.

        Args:
            docs: each document's shingle hashes (``shingles``: uint64 arrays, values < 2^32).

        Returns:
            ``[len(docs), num_perm]`` uint32 array: row i is document i's per-hash-function minimum; an empty
            document gets all 0xFFFFFFFF.
        """
        n = len(docs)
        out = np.full((n, self.num_perm), MAX_U32, dtype=np.uint32)
        sizes = np.fromiter((len(d) for d in docs), dtype=np.int64, count=n)
        per_chunk = max(1, self.chunk_elems // self.num_perm)
        # one buffer for every chunk's (num_perm, shingles) hashes, allocated once per call: a
        # fresh ~2 MB array per chunk is mmap'ed and unmapped each time where glibc's mmap
        # threshold is pinned at 128 kB - in every Dask worker, whose nanny sets
        # MALLOC_TRIM_THRESHOLD_ - and then page faults cost as much CPU as the hashing itself
        # (measured: docs/benchmarks.md, the exact-dedup pass of issue 15's full recipe)
        buf = None
        if self.backend != "torch" and n:
            buf = np.empty(self.num_perm * max(per_chunk, int(sizes.max())), dtype=np.uint64)
        i = 0
        while i < n:
            j, total = i, 0
            while j < n and (j == i or total + sizes[j] <= per_chunk):
                total += sizes[j]
                j += 1
            idx = [k for k in range(i, j) if sizes[k] > 0]
            if idx:
                x = np.concatenate([docs[k] for k in idx]).astype(np.uint64)
                seg = sizes[idx]
                out[idx] = self._segment_min(x, seg, buf)
            i = j
        return out

    def _segment_min(self, x: np.ndarray, seg: np.ndarray, buf: np.ndarray | None = None) -> np.ndarray:
        """Per-document minimum of every hash function over ``x`` (the documents' shingles, one
        after the other; ``seg``: shingles per document): (len(seg), num_perm) uint32. ``buf``: a
        uint64 scratch array of at least num_perm x len(x) elements (None: one is allocated).

        Returns:
            ``[len(seg), num_perm]`` uint32 array: row d holds the minimum of each hash function
            over document d's shingles.
        """
        if self.backend == "torch":
            return self._segment_min_torch(x, seg)
        # (num_perm, shingles) in place, each document's shingles contiguous along axis 1, and
        # chunks of ~2 MB (``chunk_elems``): 3-4x faster than (shingles, num_perm) chunks of 32 MB,
        # the same values (the arithmetic is the same, wrapping mod 2^64)
        m = self.num_perm * len(x)
        if buf is None or buf.size < m:
            buf = np.empty(m, dtype=np.uint64)
        h = buf[:m].reshape(self.num_perm, len(x))
        with np.errstate(over="ignore"):
            np.multiply(self.a[:, None], x[None, :], out=h)
            np.add(h, self.b[:, None], out=h)
            np.right_shift(h, np.uint64(32), out=h)
        starts = np.concatenate([[0], np.cumsum(seg)[:-1]])
        return np.minimum.reduceat(h, starts, axis=1).T.astype(np.uint32)

    def _segment_min_torch(self, x: np.ndarray, seg: np.ndarray) -> np.ndarray:
        import torch

        dev = "cuda" if torch.cuda.is_available() else "cpu"
        xt = torch.from_numpy(x.view(np.int64)).to(dev)
        a = torch.from_numpy(self.a.view(np.int64)).to(dev)
        b = torch.from_numpy(self.b.view(np.int64)).to(dev)
        # int64 multiply/add wrap like uint64; >> is arithmetic, so mask the high bits away
        h = ((xt[:, None] * a[None, :] + b[None, :]) >> 32) & 0xFFFFFFFF
        doc = torch.repeat_interleave(torch.arange(len(seg), device=dev), torch.from_numpy(seg).to(dev))
        res = torch.full((len(seg), self.num_perm), 0xFFFFFFFF, dtype=torch.int64, device=dev)
        res.scatter_reduce_(0, doc[:, None].expand_as(h), h, reduce="amin", include_self=True)
        return res.cpu().numpy().astype(np.uint32)


def lsh_candidates(sigs: np.ndarray, bands: int, rows: int, max_bucket: int = 64) -> set[tuple[int, int]]:
    """Index pairs (i < j) that share all ``rows`` values of at least one band. A bucket larger than
    ``max_bucket`` links every member to its first member only (keeps the work linear).

    ``sigs``: (documents, num_perm) uint32 signatures (``MinHasher.signatures``); the first
    ``bands * rows`` hashes are used.

    Returns:
        The candidate pairs as a set of ``(i, j)`` row indices of ``sigs`` with i < j (empty for fewer
        than two documents).

    Raises:
        ValueError: ``bands * rows`` exceeds the signature length.
    """
    if bands * rows > sigs.shape[1]:
        raise ValueError(f"bands x rows = {bands * rows} exceeds the {sigs.shape[1]} hashes per signature")
    pairs: set[tuple[int, int]] = set()
    n = sigs.shape[0]
    if n < 2:
        return pairs
    for band in range(bands):
        block = np.ascontiguousarray(sigs[:, band * rows:(band + 1) * rows])
        keys = block.view(np.dtype((np.void, block.dtype.itemsize * rows))).ravel()
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        multi = np.nonzero(counts[inverse] > 1)[0]
        if len(multi) == 0:
            continue
        order = multi[np.argsort(inverse[multi], kind="stable")]
        groups = np.split(order, np.nonzero(np.diff(inverse[order]))[0] + 1)
        for g in groups:
            g = np.sort(g)
            if len(g) > max_bucket:
                pairs.update((int(g[0]), int(k)) for k in g[1:])
            else:
                pairs.update((int(g[p]), int(g[q])) for p in range(len(g)) for q in range(p + 1, len(g)))
    return pairs


def near_duplicate_pairs(texts: Iterable[str], *, kind: str, ngram: int, num_perm: int, bands: int, rows: int,
                         threshold: float, seed: int, normalize_identifiers: bool = True,
                         backend: str = "numpy") -> list[tuple[int, int, float]]:
    """All-in-one (single process): shingles, signatures, LSH candidates, exact Jaccard check.

    Returns:
        ``(i, j, jaccard)`` for every candidate pair (indices into ``texts``, i < j, sorted) whose exact
        Jaccard similarity of the shingle sets is >= ``threshold``.
    """
    sh = [shingles(t, kind, ngram, normalize_identifiers) for t in texts]
    sigs = MinHasher(num_perm, seed, backend).signatures(sh)
    out = []
    for i, j in sorted(lsh_candidates(sigs, bands, rows)):
        jac = jaccard(sh[i], sh[j])
        if jac >= threshold:
            out.append((i, j, jac))
    return out
