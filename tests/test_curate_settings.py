"""Bad settings stop the run before any work with one line naming the key (settings.CurateSettings
and the stages' constructors), and chat/EOS tokens around the code are stripped by clean."""
from __future__ import annotations

import pandas as pd
import pytest

from sft_playbook.config import ConfigError, load_config
from sft_playbook.curate.clean import CleanAndUnify, strip_code_wrapper
from sft_playbook.curate.pipeline import build_stages, curate
from sft_playbook.paths import REPO_ROOT


@pytest.mark.parametrize("override,key", [
    ("split.train=1.5", "split.train"),
    ("split.test=-0.1", "split.test"),
    ("split={}", "split"),
    ("split.validation=0.3", "split"),                 # sums to 1.15
    ("levels=[]", "levels"),
    ("levels=[high_level, high_level]", "levels"),
    ("fuzzy_dedup.bands=0", "fuzzy_dedup.bands"),
    ("fuzzy_dedup.ngram=0", "fuzzy_dedup.ngram"),
    ("fuzzy_dedup.rows=-1", "fuzzy_dedup.rows"),
    ("fuzzy_dedup.threshold=1.5", "fuzzy_dedup.threshold"),
    ("fuzzy_dedup.shingle=lines", "fuzzy_dedup.shingle"),
    ("pii.kinds=[phonez]", "pii.kinds"),
    ("pii.kinds=[]", "pii.kinds"),
    ("pii.backend=spacy", "pii.backend"),
    ("pii.min_score=2", "pii.min_score"),
    ("exact_dedup.normalize=lines", "exact_dedup.normalize"),
    ("decontaminate.containment=0", "decontaminate.containment"),
    ("decontaminate.text_ngram=0", "decontaminate.text_ngram"),
    ("module_index.max_definitions_per_name=0", "module_index.max_definitions_per_name"),
])
def test_bad_settings_are_one_line_naming_the_key(override, key):
    with pytest.raises(ConfigError) as exc:    # split={} is refused by the override loader itself
        build_stages(load_config(REPO_ROOT / "configs/curate.yaml", [override]))
    msg = str(exc.value)
    assert "\n" not in msg and f"{key}:" in msg, msg


def test_bad_settings_stop_curate_before_the_sources_are_read(tmp_path):
    # the sources file does not exist: reading it would be a SourceError; the setting is checked first
    cfg = load_config(REPO_ROOT / "configs/curate.yaml", [f"sources={tmp_path / 'none.jsonl'}", "split.train=1.5",
                                                          f"output_dir={tmp_path / 'out'}", "dropped_dir=null"])
    with pytest.raises(ConfigError, match="split.train"):
        curate(cfg)
    assert not (tmp_path / "out").exists()


def test_good_defaults_pass():
    assert [s.name for s in build_stages(load_config(REPO_ROOT / "configs/curate.yaml", []))][0] == "clean"


# -- chat/EOS tokens around the code -------------------------------------------------------------
@pytest.mark.parametrize("code,want", [
    (" \n assign y = a & ~b; \n endmodule</s>", " \n assign y = a & ~b; \n endmodule"),
    ("[/INST] assign y = a;\nendmodule </s> ", "assign y = a;\nendmodule"),
    ("assign y = a;\nendmodule</s>\nmodule b (input x); endmodule</s>", "assign y = a;\nendmodule\nmodule b (input x); endmodule"),
    ("assign y = a;\nendmodule<|endoftext|>", "assign y = a;\nendmodule"),
    ("<s> assign y = a;\nendmodule", "assign y = a;\nendmodule"),
    # Verilog that looks like a token stays
    ("assign y = mem[INST];\nendmodule", "assign y = mem[INST];\nendmodule"),
    ("assign y = a<s>b;\nendmodule", "assign y = a<s>b;\nendmodule"),
])
def test_chat_tokens_at_the_edges_of_the_code_are_stripped(code, want):
    assert strip_code_wrapper(code) == want


def test_clean_strips_the_eos_token_and_counts_it():
    df = pd.DataFrame({"id": ["a", "b"], "code": [" \n assign y = a & ~b & c; \n endmodule</s>", " \n assign y = a; \n endmodule"],
                       "desc_x": ["A gate.\n\n Module header:\n\nmodule g3 (input a, input b, input c, output y);"] * 2})
    out = CleanAndUnify(["x"])(df)
    assert not out["code"].str.contains("</s>").any()
    assert out["code"].iloc[0].rstrip().endswith("endmodule")
    assert out["_n_code_wrapper_stripped"].tolist() == [1, 0]
