"""The throughput fast paths give exactly what the plain versions give."""
from __future__ import annotations

import json
import random
from collections import Counter

import pandas as pd

from sft_playbook.curate.base import Chain
from sft_playbook.curate.filters import UnicodeFix
from sft_playbook.curate.io import frame_jsonl_text, jsonl_text, read_jsonl_frame
from sft_playbook.curate.textutil import fix_unicode, top_ngram_share


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
    out = Chain([UnicodeFix(["text"])])(df).sort_values("_order")
    assert out["text"].dtype == object
    assert out["text"].tolist() == [fix_unicode(t) for t in df["text"]]
    assert out["_c0_unicode_fixed"].tolist() == [0, 1, 0]
