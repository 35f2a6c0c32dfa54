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


# -- each stage's constructor defaults are the settings' (declared once, in sft_playbook.settings) ------
def _stages_and_settings():
    from sft_playbook.curate.decontam import Decontaminate
    from sft_playbook.curate.dedup import ExactDedup, FuzzyDedup
    from sft_playbook.curate.engine import Engine
    from sft_playbook.curate.filters import Compiles
    from sft_playbook.curate.hierarchy import ModuleIndex
    from sft_playbook.curate.pii import RedactPII
    from sft_playbook.settings import (CleanSettings, CompilesSettings, DecontaminateSettings, EngineSettings,
                                       ExactDedupSettings, FuzzyDedupSettings, ModuleIndexSettings, PiiSettings)
    return [(CleanAndUnify, CleanSettings), (ModuleIndex, ModuleIndexSettings), (ExactDedup, ExactDedupSettings),
            (FuzzyDedup, FuzzyDedupSettings), (Decontaminate, DecontaminateSettings), (RedactPII, PiiSettings),
            (Compiles, CompilesSettings), (Engine, EngineSettings)]


# keywords whose empty constructor value means "none", not a second copy of the setting's default
NOT_A_DEFAULT = {("Decontaminate", "also_look_in")}   # built by hand: checks exactly the folder it is given


@pytest.mark.parametrize("stage, settings", _stages_and_settings(), ids=lambda x: x.__name__)
def test_a_stage_constructor_default_is_the_settings_default(stage, settings):
    """A default written in a constructor AND in the settings drifts (CleanAndUnify had None where the
    settings say 100): every keyword that is a setting takes the settings' default."""
    import inspect
    defaults = settings()
    checked = 0
    for name, param in inspect.signature(stage.__init__).parameters.items():
        if (stage.__name__, name) in NOT_A_DEFAULT:
            assert not param.default, (stage.__name__, name)
            continue
        if name in settings.model_fields and param.default is not inspect.Parameter.empty:
            want = getattr(defaults, name)
            got = list(param.default) if isinstance(param.default, (list, tuple)) else param.default
            assert got == (list(want) if isinstance(want, (list, tuple)) else want), f"{stage.__name__}({name}=...)"
            checked += 1
    assert checked >= 1, f"{stage.__name__}: no keyword of {settings.__name__} has a default"


LONG = "module wide12 (" + ", ".join(f"input wire [31:0] data_in_channel_{i:02d}" for i in range(12)) \
    + ", output wire [31:0] y);"


def _clean_frame() -> pd.DataFrame:
    return pd.DataFrame({"id": ["w"], "code": [" \n assign y = data_in_channel_00 ^ data_in_channel_11; \n endmodule"],
                         "desc_x": [f"Twelve channels are combined.\n\n Module header:\n\n{LONG}"]})


def test_clean_lays_out_a_long_header_by_default_as_the_pipeline_does():
    """CleanAndUnify(levels) and the pipeline (clean.header_max_chars from the settings) clean alike."""
    from sft_playbook.settings import CleanSettings
    assert len(LONG) > CleanSettings().header_max_chars
    default = CleanAndUnify(["x"])(_clean_frame())
    explicit = CleanAndUnify(["x"], header_max_chars=CleanSettings().header_max_chars)(_clean_frame())
    never = CleanAndUnify(["x"], header_max_chars=None)(_clean_frame())
    assert default["header"].tolist() == explicit["header"].tolist() != never["header"].tolist()
    assert "\n" in default["header"].iloc[0] and "\n" not in never["header"].iloc[0]
    assert default["code"].tolist() == explicit["code"].tolist()


def test_the_pipeline_builds_clean_with_the_configured_header_limit():
    stages = build_stages(load_config(REPO_ROOT / "configs/curate.yaml", ["clean.header_max_chars=null"]))
    assert stages[0].name == "clean" and stages[0].header_max_chars is None
    stages = build_stages(load_config(REPO_ROOT / "configs/curate.yaml", []))
    assert stages[0].header_max_chars == 100
