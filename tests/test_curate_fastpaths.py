"""The throughput fast paths give exactly what the plain versions give."""
from __future__ import annotations

import json
import random
from collections import Counter

import pandas as pd

from sft_playbook.curate.base import Chain
from sft_playbook.curate.filters import UnicodeFix
from sft_playbook.curate.io import frame_jsonl_text, read_jsonl_frame
from sft_playbook.io import jsonl_text
from sft_playbook.curate import ngram
from sft_playbook.curate.ngram import top_ngram_shares
from sft_playbook.curate.textutil import collapse_spaces, fix_unicode, top_ngram_share, word_count


def _reference_top_ngram_share(text: str, n: int = 2) -> float:
    toks = text.lower().split()
    if len(toks) < n + 1:
        return 0.0
    gram, count = Counter(zip(*(toks[i:] for i in range(n)))).most_common(1)[0]
    if count < 2:
        return 0.0
    return min(1.0, sum(map(len, gram)) * count / max(1, sum(map(len, toks))))


def test_top_ngram_share_matches_most_common_including_ties():
    rng = random.Random(0)
    texts = ["", "a", "a b", "a b a", "a a a", "A a B b a b", "aa b aa b c cc c cc", "İ İ İ", "a\u3000b a b\x1cq"]
    texts += [" ".join(rng.choice(["a", "bb", "c", "dd", "EE"]) for _ in range(rng.randint(0, 16))) for _ in range(3000)]
    for n in (1, 2, 3, 4):
        assert [top_ngram_share(t, n) for t in texts] == [_reference_top_ngram_share(t, n) for t in texts]


def _random_texts(seed: int, count: int) -> list[str]:
    """Texts that exercise every branch: ties, tokens around the 8-byte packing boundary and much
    longer, ASCII whitespace of every kind, upper case, non-ASCII, NUL, empty and one-word texts."""
    rng = random.Random(seed)
    vocab = ["a", "bb", "c", "dd", "EE", "Bb", "abcdefg", "abcdefgh", "abcdefghi", "abcdefgH", "abcdefghij",
             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", "abcdefghijklmnop", "abcdefghijklmnopq",
             "https://example.com/a/very/long/path?x=1", "x\ty", "\x1c", "z\x0bq", "\x7f", "~"]
    seps = [" ", " ", " ", " ", "  ", "\t", "\n", "\r\n", "\x1f", "\x0c"]
    texts = []
    for i in range(count):
        k = rng.choice([0, 1, 2, 3, 5, 12, 40, 200])
        words = [rng.choice(vocab[:rng.randint(2, len(vocab))]) for _ in range(k)]
        sep = (lambda: " ") if i % 3 else (lambda: rng.choice(seps))
        t = "".join(w + sep() for w in words)
        t = t if rng.random() < 0.7 else sep() + t
        if rng.random() < 0.03:
            t += rng.choice(["é", "İ", "\u3000x", "\x00", "\u00a0", "日本"])
        texts.append(t if rng.random() < 0.5 else t.rstrip())
    return texts


def test_vectorised_top_ngram_shares_equal_the_per_text_function(monkeypatch):
    texts = ["", "a", "a b", "a b a", "a a a", "A a B b a b", "İ İ İ", "x\x00y x\x00y x\x00y"] + _random_texts(1, 3000)
    for n in (1, 2, 3, 4, 5):
        expected = [top_ngram_share(t, n) for t in texts]
        assert top_ngram_shares(texts, n).tolist() == expected
        assert any(e > 0 for e in expected) and any(e == 0 for e in expected)
    # small batches (documents split over many) and a corpus whose fold step is needed (n = 5)
    monkeypatch.setattr(ngram, "_BATCH_CHARS", 500)
    assert top_ngram_shares(texts, 2).tolist() == [top_ngram_share(t, 2) for t in texts]
    assert top_ngram_shares(texts[:10], 2).tolist() == [top_ngram_share(t, 2) for t in texts[:10]]
    assert top_ngram_shares([], 2).tolist() == []


def test_word_count_and_collapse_spaces_equal_split():
    texts = ["", " ", "a", " a", "a ", "a  b", "a\u00a0b", "a\u3000b", "a\x1cb", "a\x85b", "a\u2028b"] + _random_texts(2, 2000)
    assert [word_count(t) for t in texts] == [len(t.split()) for t in texts]
    assert [collapse_spaces(t) for t in texts] == [" ".join(t.split()) for t in texts]


def test_read_jsonl_frame_same_values_as_json_loads(tmp_path):
    recs = [{"id": "doc-1", "text": "héllo \"x\" \n\t日本語 \x00 ctrl \U0001F600", "extra": 3},
            {"id": "doc-2", "text": ""}]
    p = tmp_path / "a.jsonl"
    p.write_text(jsonl_text(recs))
    df = read_jsonl_frame(p, {"id": "str", "text": "str"})
    assert list(df.dtypes) == [object, object]
    assert df.to_dict("records") == [{"id": r["id"], "text": r["text"]} for r in recs]
    # an escaped lone surrogate cannot go through Arrow: the json.loads path takes over
    p.write_text(json.dumps({"id": "doc-3", "text": "a\ud800b"}) + "\n")
    assert read_jsonl_frame(p, {"id": "str", "text": "str"}).to_dict("records") == [{"id": "doc-3", "text": "a\ud800b"}]


def test_frame_jsonl_text_is_byte_identical():
    df = pd.DataFrame({"id": ["a", "b\"", "ü"], "n": [1, 2, 3], "x": [1.5, float("nan"), 0.1], "s": ["x", None, "日本"]})
    assert frame_jsonl_text(df, ["id", "s", "n", "x"]) == jsonl_text(df[["id", "s", "n", "x"]].to_dict("records"))
    assert frame_jsonl_text(df.iloc[:0], ["id"]) == ""


def test_unicode_fix_keeps_python_strings_and_counts_changes():
    df = pd.DataFrame({"id": ["1", "2", "3"], "_order": [0, 1, 2], "text": ["plain", "cafÃ©", "façade"]}, dtype=object)
    df["_order"] = df["_order"].astype("int64")
    out, gone, sums = Chain([UnicodeFix(["text"])]).split(df)
    assert out["text"].dtype == object and gone.empty
    assert out["text"].tolist() == [fix_unicode(t) for t in df["text"]]
    assert sums == {"_c0_unicode_fixed": 1}


def test_vectorised_top_ngram_shares_with_a_large_vocabulary_fold_leading_tokens(monkeypatch):
    """With many distinct tokens, (document, n token ids, position) does not fit in 63 bits for
    n >= 4: the leading tokens are folded into one number first. Same results either way."""
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(30000)]
    texts = []
    for _ in range(400):
        base = [rng.choice(vocab) for _ in range(rng.randint(5, 60))]
        texts.append(" ".join(base * rng.randint(1, 3) + [rng.choice(vocab) for _ in range(rng.randint(0, 30))]))
    calls, batches = [], []
    real_factorize, real_batch = ngram._factorize, ngram._batch
    monkeypatch.setattr(ngram, "_factorize", lambda v: calls.append(len(v)) or real_factorize(v))
    monkeypatch.setattr(ngram, "_batch", lambda t, n: batches.append(len(t)) or real_batch(t, n))
    for n, folds in ((2, False), (5, True)):
        calls.clear()
        batches.clear()
        expected = [top_ngram_share(t, n) for t in texts]
        assert top_ngram_shares(texts, n).tolist() == expected
        # one factorize per batch for the token ids; more when the leading tokens were folded
        assert (len(calls) > len(batches)) == folds, (n, len(calls), len(batches))
        assert sum(e > 0 for e in expected) > 100
