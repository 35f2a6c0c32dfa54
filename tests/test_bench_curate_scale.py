"""bench/curate_scale.py --path product: the config it hands curate_data.py builds exactly the
recipe its docstring (and docs/benchmarks.md) names, and its corpus maps onto the source schema."""
import json
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import curate_scale  # noqa: E402

from sft_playbook.curate.pipeline import build_stages  # noqa: E402
from sft_playbook.curate.sources import load_records, read_source_specs  # noqa: E402
from sft_playbook.io import BadLines, write_jsonl_atomic  # noqa: E402


@pytest.mark.parametrize("recipe,names", [
    ("rules", ["clean", "word_count", "url_share", "top_ngram", "exact_dedup"]),
    ("full", ["clean", "module_index", "word_count", "url_share", "top_ngram", "exact_dedup", "fuzzy_dedup"]),
])
def test_product_config_builds_the_named_recipe(tmp_path, recipe, names):
    cfg, settings = curate_scale.product_config(recipe, tmp_path, None, 2)
    stages = build_stages(cfg)
    assert [s.name for s in stages] == names
    by = {s.name: s for s in stages}
    assert by["top_ngram"].config["n"] == 2 and by["top_ngram"].config["max_share"] == 0.2
    assert by["word_count"].config["min_words"] == 50
    assert by["exact_dedup"].config["normalize"] == "text"
    if recipe == "full":
        assert by["fuzzy_dedup"].config["shingle"] == "words"
    assert cfg["engine"]["n_workers"] == 2 and cfg["engine"]["engine"] == "dask"
    assert settings["pii.enabled"] is False and settings["rules.compiles.enabled"] is False


def test_product_rows_keep_duplicates_in_code_and_map_onto_the_schema(tmp_path):
    docs = ["alpha beta gamma " * 20, "delta epsilon " * 30, "alpha beta gamma " * 20, "zeta eta " * 25]
    rows = curate_scale.product_rows(docs, 0, len(docs), random.Random(0))
    assert rows[0]["code"] == rows[2]["code"]                  # an exact duplicate carries the same code
    assert rows[0]["code"] != rows[1]["code"]
    assert all(r["code"].startswith("// " + r["text"]) and "endmodule" in r["code"] for r in rows)
    write_jsonl_atomic(tmp_path / "in" / "a.jsonl", rows)
    (tmp_path / "sources.jsonl").write_text(json.dumps(curate_scale.product_spec(tmp_path / "in")) + "\n")
    spec = read_source_specs(tmp_path / "sources.jsonl")[0]
    recs = load_records(spec, [tmp_path / "in" / "a.jsonl"], "error", BadLines())
    assert [r["desc_high_level"] for r in recs] == docs
