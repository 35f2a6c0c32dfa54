"""Typed settings: every key of configs/curate.yaml, sft.yaml (and sft_gpu.yaml) and eval.yaml,
with its type, choices, range, default and a one-line help text, validated ONCE before any work.

    settings = load_settings("sft", "configs/sft.yaml", ["train.max_steps=50"])
    settings.train.max_steps            # 50 (an int; frozen: settings cannot change under a run)

The YAML files stay the user-facing format: ``config.load_config`` reads a file and applies the
``key=value`` overrides (an override must have the type of the value it replaces), then
``CurateSettings`` / ``SftSettings`` / ``EvalSettings`` check everything: unknown keys (a typo), types,
choices, ranges and the checks across fields (``micro_batch_size x accumulation x processes =
global_batch_size``, split fractions summing to 1, NeMo's parallel sizes). A failure is ONE line naming
the field, e.g. ``train.max_steps: expected an integer, got 'abc'`` or ``train.method: must be one of
full, lora; got 'ful'`` (``ConfigError``; the entry points exit 2). A key missing from a file takes
the default declared here (the only place defaults live); ``--print-config`` shows each value with
its default and help (``describe``).

Why pydantic v2 and not frozen dataclasses: it is already installed (``wandb`` depends on it, so it
costs nothing), its errors carry the field's location (``loc``), which gives the one-line
``section.key: ...`` messages without our own walker, ``Literal`` / ``Field(ge=..)`` declare choices
and ranges next to the field, ``Field(description=...)`` is the help text, and ``frozen=True`` +
``extra="forbid"`` give immutability and typo detection. Strict mode: ``1`` is not ``true`` and
``1.5`` is not an integer (as for the overrides); ``allow_inf_nan=False``: no number setting takes
``.inf``, ``-.inf`` or ``.nan`` (``train.lr: expected a finite number, got '.inf'``); the YAML is read
with YAML 1.2 booleans (``config._Loader``), so ``yes`` / ``on`` for a true/false setting is refused
(``train.compile: expected true or false, got 'yes'``) and stays text for a text setting. The container settings (configs/container.yaml) are
NOT here: they are read before any package is installed (``container.Settings``, a frozen
stdlib dataclass).

Choice lists (``TRAIN_METHODS``, ``ATTENTIONS`` ...) are declared here once; the code that acts
on a choice imports them from here.

Each section also reads like the mapping it came from (``settings.train["max_steps"]``,
``dict(settings.train)``): code written against the YAML dicts keeps working while it is converted
to attributes; ``to_dict()`` gives plain data (YAML/JSON-able) back.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from .config import ConfigError, non_finite_text, load_config
from .io import ON_BAD_LINE

# -- choices, declared once --------------------------------------------------------------------------
BACKENDS = ("native", "nemo")
TRAIN_METHODS = ("full", "lora")
PRECISIONS = ("auto", "fp32", "bf16")
PARALLELS = ("ddp", "fsdp")
ATTENTIONS = ("sdpa", "varlen")
FSDP_REDUCE_DTYPES = ("fp32", "bf16")
LOSSES = ("full", "chunked")
PROMPT_TEMPLATES = ("chat", "plain")
PROMPT_FORMS = ("header", "ports", "description", "spec")
OVERLENGTH = ("drop", "truncate")
PACK_STRATEGIES = ("next_fit", "best_fit")
PREDICT_MODELS = ("base", "finetuned")
SPLITS = ("train", "validation", "test")
NEMO_PREDICT_WITH = ("nemo", "hf")
NEMO_FUSIONS = ("auto", "on", "off")
ENGINES = ("dask", "local")
UNRESOLVED_SUBMODULE = ("keep", "drop")
PII_BACKENDS = ("presidio", "regex")
PII_KINDS = ("email", "ip", "phone", "name", "secret", "credit_card")
EXACT_NORMALIZE = ("code", "text")
SHINGLES = ("tokens", "words", "chars")
MINHASH_BACKENDS = ("auto", "numpy", "torch")


def _number_as_text(value: Any) -> Any:
    """A number where a text is expected is kept as the text (``run_name: 2024``).

    Returns:
        ``str(value)`` for an int or float (not a bool); ``value`` unchanged otherwise.
    """
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


Text = Annotated[str, BeforeValidator(_number_as_text)]


def F(default: Any, help: str, **kw: Any) -> Any:   # noqa: A002 - 'help' reads best at the call sites
    """A field with its default and one-line help text (``Field(description=help)``).

    Returns:
        The pydantic ``FieldInfo`` (typed ``Any`` so that it can stand as a field's default).
    """
    return Field(default, description=help, **kw)


def _sub(cls: type, help: str) -> Any:   # noqa: A002
    return Field(default_factory=cls, description=help)


class Section(BaseModel):
    """A frozen, strictly typed block of settings; unknown keys are an error. Reads like a mapping
    too (``s["key"]``, ``s.get("key")``, ``dict(s)``) for code written against the YAML dicts."""

    # allow_inf_nan=False: no setting takes an infinite or NaN number (``.inf`` in a file is refused)
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in type(self).model_fields

    def keys(self) -> list[str]:
        """The setting names, in declaration order.

        Returns:
            A new list of the field names of the section's class.
        """
        return list(type(self).model_fields)

    def items(self) -> list[tuple[str, Any]]:
        """(name, value) of every setting, in declaration order.

        Returns:
            A new list of ``(name, value)`` pairs; a nested section's value is the Section itself.
        """
        return [(k, getattr(self, k)) for k in type(self).model_fields]

    def get(self, key: str, default: Any = None) -> Any:
        """Look a setting up by name, as ``dict.get`` does.

        Returns:
            The setting ``key``, or ``default`` when the section has no such setting.
        """
        return getattr(self, key) if key in type(self).model_fields else default

    # (iterating a section yields (name, value) pairs, as pydantic's models do; use keys() / items())

    def to_dict(self) -> dict[str, Any]:
        """Plain data (nested dicts and lists), in declaration order.

        Returns:
            A new dict (``model_dump(mode="python")``): nested sections as dicts, values as stored.
        """
        return self.model_dump(mode="python")


class Root(Section):
    """A whole config; remembers the mapping it was built from (``source``: the YAML as given,
    key order and values untouched, for reports that must stay byte-identical)."""

    _source: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> dict[str, Any]:
        """The mapping (YAML + overrides) these settings were built from, as given (a copy)."""
        return self._source


# ================================================================================================
# curate (configs/curate.yaml)
# ================================================================================================
class DownloadSettings(Section):
    """``download:`` of configs/curate.yaml: the hub download of the sources."""

    raw_dir: Text = F("data/raw", "hub snapshots and their records.jsonl (git-ignored)")
    require_token: bool = F(True, "no HF_TOKEN -> curate the offline sample (false: try anonymously)")
    offline: bool = F(False, "true: never contact the hub")
    fallback_to_sample: bool = F(True, "download failed -> say so and curate the sample (false: error)")
    timeout_s: float = F(30, "seconds per hub request", gt=0)


class EngineSettings(Section):
    """``engine:`` of configs/curate.yaml: the Dask engine (``curate.engine.Engine``)."""

    engine: Literal[ENGINES] = F("dask", "dask (distributed LocalCluster / --scheduler) or local (synchronous)")
    n_workers: int = F(2, "worker processes of the LocalCluster", ge=1)
    threads_per_worker: int = F(1, "threads per worker process", ge=1)
    scheduler: Text | None = F(None, "tcp://host:8786 joins an existing cluster (or --scheduler)")
    gpu: bool = F(False, "true: dask-cuda LocalCUDACluster (MinHash on the GPU via torch)")
    memory_limit: Text = F("auto", "memory per worker (dask's memory_limit: auto, 4GB, ...)")
    partition_rows: int = F(10000, "rows per partition (input lines per shard); fewer when that would leave "
                            "fewer than 2 partitions per worker", ge=1)
    dashboard: bool = F(False, "serve the Dask dashboard")


class StageSection(Section):
    """A curation stage's section; every stage can be left out with ``enabled: false``."""

    enabled: bool = F(True, "false: the stage is left out of the recipe")


class CleanSettings(StageSection):
    """``clean:`` (``curate.clean.CleanAndUnify``)."""

    header_max_chars: int | None = F(100, "an assembled header longer than this is laid out one port per line "
                                             "(null: never)", ge=1)


class ModuleIndexSettings(StageSection):
    """``module_index:`` (``curate.hierarchy.ModuleIndex``)."""

    max_definitions_per_name: int = F(8, "distinct definitions of one module name tried by the compile check", ge=1)


class WordCountSettings(StageSection):
    """``rules.word_count:`` (``curate.filters.WordCount``)."""

    min_words: int = F(5, "fewer words in a description: dropped", ge=0)
    max_words: int = F(1500, "more words in a description: dropped", ge=1)

    @model_validator(mode="after")
    def _range(self) -> WordCountSettings:
        if self.min_words > self.max_words:
            raise ValueError(f"min_words: {self.min_words} is above max_words ({self.max_words}): every row would be dropped")
        return self


class UrlShareSettings(StageSection):
    """``rules.url_share:`` (``curate.filters.UrlShare``)."""

    max_share: float = F(0.1, "share of a description's characters inside URLs above which it is dropped", ge=0, le=1)


class TopNGramSettings(StageSection):
    """``rules.top_ngram:`` (``curate.filters.TopNGramShare``)."""

    n: int = F(3, "word n-gram length", ge=1)
    max_share: float = F(0.3, "share of characters covered by the most frequent n-gram above which it is dropped",
                         ge=0, le=1)


class LineCountSettings(StageSection):
    """``rules.line_count:`` (``curate.filters.LineCount``)."""

    min_lines: int = F(3, "fewer code lines: dropped", ge=0)
    max_lines: int = F(1500, "more code lines: dropped", ge=1)

    @model_validator(mode="after")
    def _range(self) -> LineCountSettings:
        if self.min_lines > self.max_lines:
            raise ValueError(f"min_lines: {self.min_lines} is above max_lines ({self.max_lines}): every row would be dropped")
        return self


class LongestLineSettings(StageSection):
    """``rules.longest_line:`` (``curate.filters.LongestLine``)."""

    max_chars: int = F(400, "a code line longer than this: dropped", ge=1)


class AlphaShareSettings(StageSection):
    """``rules.alpha_share:`` (``curate.filters.AlphaShare``)."""

    min_share: float = F(0.15, "alphabetic share of the code's non-space characters below which it is dropped",
                         ge=0, le=1)


class HasModuleSettings(StageSection):
    """``rules.has_module:`` (``curate.filters.HasModule``; nothing to set but ``enabled``)."""


class CompilesSettings(StageSection):
    """``rules.compiles:`` (``curate.filters.Compiles``)."""

    standards: list[Text] = F(["-g2012", "-g2005 -gno-xtypes", "-g2001 -gno-xtypes", "-g1995 -gno-xtypes"],
                              "iverilog language standards tried in order; the first that accepts the row is recorded",
                              min_length=1)
    flags: list[Text] = F(["-tnull"], "other iverilog flags (no -g standard here)")
    timeout_s: float = F(20, "seconds per iverilog run", gt=0)
    threads: int = F(2, "iverilog runs in parallel per worker", ge=1)
    unresolved_submodule: Literal[UNRESOLVED_SUBMODULE] = F("keep", "a submodule defined nowhere in the corpus: "
                                                                    "keep (counted) or drop")


class RulesSettings(Section):
    """``rules:`` of configs/curate.yaml: the quality rules, in the order they run."""

    word_count: WordCountSettings = _sub(WordCountSettings, "description length in words")
    url_share: UrlShareSettings = _sub(UrlShareSettings, "descriptions that are mostly URLs")
    top_ngram: TopNGramSettings = _sub(TopNGramSettings, "repetitive descriptions (Gopher's top n-gram share)")
    line_count: LineCountSettings = _sub(LineCountSettings, "code length in lines")
    longest_line: LongestLineSettings = _sub(LongestLineSettings, "code with an overlong line")
    alpha_share: AlphaShareSettings = _sub(AlphaShareSettings, "code that is mostly digits/symbols")
    has_module: HasModuleSettings = _sub(HasModuleSettings, "code with module ... endmodule")
    compiles: CompilesSettings = _sub(CompilesSettings, "iverilog parse + elaborate")


class PiiSettings(StageSection):
    """``pii:`` (``curate.pii.RedactPII``)."""

    backend: Literal[PII_BACKENDS] = F("presidio", "presidio pattern recognizers (no spaCy model) or regex")
    min_score: float = F(0.4, "presidio score at or above which a candidate is redacted", ge=0, le=1)
    kinds: list[Literal[PII_KINDS]] = F(list(PII_KINDS), "what is redacted", min_length=1)
    phone_context: list[Text] = F(["phone", "telephone", "tel", "cell", "cellphone", "mobile", "call", "fax",
                                   "contact"], "words that make a digit run near them a phone number")
    context_window: int = F(5, "words before a candidate searched for a context word (3 after)", ge=0)


class ExactDedupSettings(StageSection):
    """``exact_dedup:`` (``curate.dedup.ExactDedup``)."""

    normalize: Literal[EXACT_NORMALIZE] = F("code", "code: tokens without comments/whitespace; text: whitespace only")


class FuzzyDedupSettings(StageSection):
    """``fuzzy_dedup:`` (``curate.dedup.FuzzyDedup``); bands x rows <= num_perm."""

    shingle: Literal[SHINGLES] = F("tokens", "shingle unit: tokens (code), words or chars")
    ngram: int = F(5, "shingle length", ge=1)
    normalize_identifiers: bool = F(True, "identifiers renamed to placeholders (renamed signals still match)")
    num_perm: int = F(160, "MinHash permutations per signature", ge=1)
    bands: int = F(20, "LSH bands", ge=1)
    rows: int = F(8, "rows per LSH band (bands x rows <= num_perm)", ge=1)
    threshold: float = F(0.8, "exact Jaccard at or above which two rows are duplicates", gt=0, le=1)
    backend: Literal[MINHASH_BACKENDS] = F("auto", "auto: torch on a GPU worker, numpy otherwise; numpy; torch")
    max_bucket: int = F(64, "rows of one LSH bucket compared pairwise at most", ge=2)

    @model_validator(mode="after")
    def _bands_fit(self) -> FuzzyDedupSettings:
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"fuzzy_dedup: bands x rows ({self.bands}x{self.rows}) exceeds num_perm ({self.num_perm})")
        return self


class DecontaminateSettings(StageSection):
    """``decontaminate:`` (``curate.decontam.Decontaminate``)."""

    benchmark_dir: Text = F("../shared/benchmarks/verilog-eval-v2/spec-to-rtl",
                            "VerilogEval v2 spec-to-rtl problems (relative to the repo root)")
    also_look_in: list[Text] = F(["data/verilogeval/spec-to-rtl"], "other folders tried in order when benchmark_dir "
                                                                   "has no problems")
    code_threshold: float = F(0.5, "Jaccard of distinctive code n-grams, row vs reference", gt=0, le=1)
    text_threshold: float = F(0.5, "Jaccard of distinctive text n-grams, description vs prompt", gt=0, le=1)
    containment: float = F(0.8, "share of one side's n-grams inside the other", gt=0, le=1)
    min_ngrams: int = F(8, "containment only counts when the contained side has this many distinctive n-grams", ge=0)
    template_share: float = F(0.02, "n-grams in at least this share of the problems are boilerplate", gt=0, le=1)
    normalize_identifiers: bool = F(False, "compare code with identifiers normalised")
    code_ngram: int = F(5, "code n-gram length (tokens)", ge=1)
    text_ngram: int = F(8, "text n-gram length (words)", ge=1)


class BothViewsSettings(StageSection):
    """``both_views:`` (``curate.split.KeepBothViews``; nothing to set but ``enabled``)."""


class SplitSettings(Section):
    """``split:`` of configs/curate.yaml: exactly train, validation and test, summing to 1."""

    @model_validator(mode="before")
    @classmethod
    def _all_three(cls, data: Any) -> Any:
        if isinstance(data, dict) and set(data) != set(SPLITS):
            raise ValueError(f"split: needs exactly the fractions train, validation and test, got {sorted(data)!r}")
        return data

    train: float = F(0.8, "fraction of rows in train", ge=0, le=1)
    validation: float = F(0.15, "fraction of rows in validation", ge=0, le=1)
    test: float = F(0.05, "fraction of rows in test", ge=0, le=1)

    @model_validator(mode="after")
    def _sum_is_one(self) -> SplitSettings:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split: train + validation + test must be 1, got {self.train:g} + {self.validation:g} + "
                             f"{self.test:g} = {total:g}")
        return self


class CurateSettings(Root):
    """configs/curate.yaml: sources -> clean -> rules -> PII -> decontaminate -> dedup -> split."""

    sources: Text = F("sources/huggingface_urls.jsonl", "jsonl of sources (hub datasets or local files)")
    sample_dir: Text = F("data/sample", "offline fallback: no token, no network, or download.offline=true")
    sample_name: Text = F("mg-verilog-sample", "the sample's source name: ids are <name>-<0-based line index>")
    sample_license: Text | None = F("Apache-2.0", "licence of the shipped sample")
    output_dir: Text = F("data/merged", "<level>/{train,validation,test}.jsonl + curation report")
    dropped_dir: Text | None = F("data/work/dropped", "every dropped row with stage, reason, detail; null = off")
    work_dir: Text | None = F(None, "part files the workers write during a run; null = .<output_dir name>.work "
                                       "beside output_dir")
    timings_file: Text | None = F(None, "an extra copy of output_dir/curation_timings.json (where the time went)")
    checkpoint: bool = F(True, "after every pass the workers save its partitions in work_dir")
    resume: bool = F(False, "true: a killed run's finished passes are not redone, when config, sources spec, "
                           "benchmark files and code are unchanged and every data file has the same path, "
                           "size and mtime (make/rsync semantics: an edit keeping both is not seen, "
                           "unless resume_check=content)")
    resume_check: Literal["stat", "content"] = F("stat", "how resume compares data and benchmark files: stat "
                                                  "(path, size, mtime) or content (also a sha256 of every file: "
                                                  "reads the whole corpus)")
    progress_every_s: float = F(30.0, "stderr not a terminal (batch log): one progress line per pass every this "
                                      "many seconds; 0 = none (a terminal gets tqdm bars)", ge=0)
    seed: int = F(42, "shuffle / split / MinHash seed")
    levels: list[Text] = F(["high_level", "detailed", "block"], "description levels (keys of the sources' levels maps)",
                           min_length=1)
    on_bad_line: Literal[ON_BAD_LINE] = F("error", "error: stop at file:line; skip: skip, count and report")
    download: DownloadSettings = _sub(DownloadSettings, "hub download")
    engine: EngineSettings = _sub(EngineSettings, "Dask engine")
    clean: CleanSettings = _sub(CleanSettings, "step 1: unicode, whitespace, wrapper strip, header recovery")
    module_index: ModuleIndexSettings = _sub(ModuleIndexSettings, "module name -> defining rows, for the compile check")
    rules: RulesSettings = _sub(RulesSettings, "step 2: quality rules (a row fails if any level fails)")
    pii: PiiSettings = _sub(PiiSettings, "step 3: redact personal data in code and descriptions")
    exact_dedup: ExactDedupSettings = _sub(ExactDedupSettings, "step 6: exact duplicates of the normalised code")
    fuzzy_dedup: FuzzyDedupSettings = _sub(FuzzyDedupSettings, "step 6: near duplicates (MinHash + LSH + Jaccard)")
    decontaminate: DecontaminateSettings = _sub(DecontaminateSettings, "step 4: drop rows close to the benchmark")
    both_views: BothViewsSettings = _sub(BothViewsSettings, "step 5: code and every description level present")
    split: SplitSettings = _sub(SplitSettings, "train/validation/test fractions")

    @model_validator(mode="after")
    def _distinct_levels(self) -> CurateSettings:
        if len(set(self.levels)) != len(self.levels) or not all(self.levels):
            raise ValueError(f"levels: must be distinct level names, got {list(self.levels)!r}")
        return self


# ================================================================================================
# sft (configs/sft.yaml, configs/sft_gpu.yaml)
# ================================================================================================
class DataSettings(Section):
    """``data:`` of configs/sft.yaml: prompt format and lengths (``sft.data``)."""

    prompt_template: Literal[PROMPT_TEMPLATES] = F("chat", "chat: the model's chat template when it has one, "
                                                           "plain otherwise; or plain")
    system_prompt: Text | None = F("You are a Verilog RTL designer that only writes code using correct Verilog "
                                      "syntax.", "system message (chat: its slot; plain: before the instruction); "
                                                 "null: none")
    plain_template: Text = F("### Instruction:\n{input}\n\n### Response:\n", "prompt of the plain template ({input})")
    prompt_forms: list[Literal[PROMPT_FORMS]] = F(["header"], "how each training row is asked (one example per form)",
                                                  min_length=1)
    max_seq_len: int = F(640, "tokens per example (prompt + output + EOS); also the length of a pack", ge=8)
    overlength: Literal[OVERLENGTH] = F("drop", "rows over max_seq_len: drop or truncate (counted either way)")
    packing: bool = F(False, "pack several samples per sequence (each sample still sees only itself)")
    pack_strategy: Literal[PACK_STRATEGIES] = F("next_fit", "next_fit (shuffled order) or best_fit (fuller packs)")
    max_train_samples: int | None = F(None, "train rows used (null: all)", ge=1)
    max_val_samples: int | None = F(8, "validation rows used for the validation loss (null: all)", ge=1)

    @model_validator(mode="after")
    def _template_has_input(self) -> DataSettings:
        if "{input}" not in self.plain_template:
            raise ValueError(f"data.plain_template: must contain {{input}}, got {self.plain_template!r}")
        return self


class TrainSettings(Section):
    """``train:`` of configs/sft.yaml: optimizer, schedule, batch geometry, speed options."""

    method: Literal[TRAIN_METHODS] = F("full", "full fine-tuning or lora adapters")
    lr: float = F(1.0e-4, "peak learning rate (AdamW)", gt=0)
    min_lr_ratio: float = F(0.1, "cosine decays to lr * min_lr_ratio", ge=0, le=1)
    warmup_steps: int = F(2, "linear warm-up steps", ge=0)
    weight_decay: float = F(0.0, "AdamW weight decay", ge=0)
    betas: list[float] = F([0.9, 0.95], "AdamW betas", min_length=2, max_length=2)
    grad_clip: float = F(1.0, "gradient norm clip (0: off)", ge=0)
    micro_batch_size: int = F(4, "items (samples or packs) per forward pass per process", ge=1)
    global_batch_size: int = F(4, "items per optimizer step = micro x accumulation x processes", ge=1)
    max_steps: int = F(20, "optimizer steps (the schedule's length)", ge=1)
    precision: Literal[PRECISIONS] = F("auto", "auto: bf16 autocast on GPU, fp32 on CPU; or fp32 / bf16")
    eval_every: int = F(5, "validation loss every N optimizer steps (and at step 0 and the end; 0: only there)", ge=0)
    save_every: int = F(20, "checkpoint every N steps (and at the end; 0: only there)", ge=0)
    keep_checkpoints: int = F(1, "checkpoints kept (older ones removed; 0: all kept)", ge=0)
    stop_at_step: int | None = F(None, "stop early (the schedule still follows max_steps)", ge=1)
    parallel: Literal[PARALLELS] = F("ddp", "with torchrun: ddp or fsdp (FSDP2 fully_shard)")
    gradient_checkpointing: bool = F(False, "recompute activations in the backward pass")
    attention: Literal[ATTENTIONS] = F("sdpa", "sdpa, or varlen: per-sample causal attention without padding")
    loss: Literal[LOSSES] = F("full", "full fp32 logits, or chunked: output layer + cross-entropy in chunks")
    loss_chunk_size: int = F(2048, "rows per chunk for loss=chunked", ge=1)
    compile: bool = F(False, "torch.compile each decoder layer")
    threads: int | None = F(None, "CPU threads (null: PyTorch's default)", ge=1)
    keep_best: bool = F(False, "the final model is the step of the lowest validation loss (kept in <run>/best/; native backend)")
    fsdp_reshard_after_forward: bool = F(False, "FSDP2: free each layer's gathered weights after its forward "
                                         "(true: less memory, one more all-gather per layer in backward)")
    fsdp_reduce_dtype: Literal[FSDP_REDUCE_DTYPES] = F("fp32", "FSDP2 gradient reduce-scatter dtype: fp32, or bf16 "
                                                       "(half the bytes, bf16 rounding of the sum)")

    @model_validator(mode="after")
    def _betas_in_range(self) -> TrainSettings:
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"train.betas: each must be in [0, 1), got {list(self.betas)!r}")
        return self


class LoraSettings(Section):
    """``lora:`` of configs/sft.yaml (used when ``train.method: lora``)."""

    r: int = F(16, "adapter rank", ge=1)
    alpha: int = F(32, "LoRA alpha (scale = alpha / r)", ge=1)
    dropout: float = F(0.05, "dropout on the adapter input", ge=0, lt=1)
    target_modules: list[Text] = F(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                                   "module names that get adapters", min_length=1)
    merge: bool = F(True, "also write the merged full model to <run>/model")


class PredictSettings(Section):
    """``predict:`` of configs/sft.yaml: generation on the test rows (``sft.predict``)."""

    models: list[Literal[PREDICT_MODELS]] = F(["base", "finetuned"], "models asked, on the same test rows",
                                              min_length=1)
    split: Literal[SPLITS] = F("test", "split the prompts come from")
    max_samples: int | None = F(8, "rows asked (null: all)", ge=1)
    batch_size: int = F(8, "prompts per generate call", ge=1)
    max_new_tokens: int = F(256, "tokens generated at most per answer", ge=1)
    do_sample: bool = F(False, "sample (true) or greedy (false)")
    n_samples: int = F(1, "completions per prompt (needs do_sample=true when > 1)", ge=1)
    temperature: float = F(0.8, "sampling temperature", gt=0)
    top_p: float = F(0.95, "nucleus sampling mass", gt=0, le=1)
    stop: list[Text] = F(["[DONE]"], "generation stops at EOS or these strings (never endmodule)")
    prompt_form: Literal[PROMPT_FORMS] = F("header", "the form the test rows are asked in")
    cache_implementation: Text | None = F(
        None, "null: transformers' dynamic KV cache; static: fixed-size cache")

    @model_validator(mode="after")
    def _checks(self) -> PredictSettings:
        if self.n_samples > 1 and not self.do_sample:
            raise ValueError("predict.n_samples > 1 needs predict.do_sample=true (greedy gives one answer)")
        check_stops(self.stop)
        return self


def check_stops(stops: Any) -> list[str]:
    """predict.stop as a list of strings. A Verilog answer may hold several modules (helpers
    before or after the top), so a stop at `endmodule` would cut it after its first module:
    refused. Generation ends at EOS, at max_new_tokens, or at one of these strings (default
    `[DONE]`, the end marker of VerilogEval answers).

    Returns:
        The stop strings as a new list ([] for None or an empty value).

    Raises:
        ValueError: naming predict.stop, when an item is not a string, is empty or contains ``endmodule``.
    """
    stops = list(stops or [])
    bad = [s for s in stops if not isinstance(s, str) or not s or "endmodule" in s.lower()]
    if bad:
        raise ValueError(f"predict.stop: {bad!r} would cut multi-module answers after their first module "
                         "(or is not a string); use [] (EOS) or an end marker such as '[DONE]'")
    return stops


class SftVerilogEvalSettings(Section):
    """``evaluate.verilogeval:`` of configs/sft.yaml."""

    enabled: bool = F(False, "VerilogEval pass@k of both models (slow on CPU)")
    problems_dir: Text = F("data/verilogeval", "spec-to-rtl folder, or a folder containing it")
    n_samples: int = F(1, "answers per problem", ge=1)
    k_list: list[int] = F([1], "pass@k reported for these k (each <= n_samples)", min_length=1)
    shots: int = F(0, "in-context examples in the prompt", ge=0, le=3)
    problems: list[Text] | None = F(None, "null: all; or a list of ids / ProbNNN prefixes")

    @model_validator(mode="after")
    def _k(self) -> SftVerilogEvalSettings:
        _check_k(self.k_list, self.n_samples, "evaluate.verilogeval")
        return self


class SftEvaluateSettings(Section):
    """``evaluate:`` of configs/sft.yaml: scoring of the predictions (``sft.report``)."""

    verilog: bool = F(True, "compile / functional checks of the predictions")
    workers: int = F(2, "parallel simulations", ge=1)
    timeout_s: float = F(10, "seconds per compile and per simulation", gt=0)
    cycles: int = F(100, "random-stimulus cycles", ge=1)
    seed: int = F(42, "stimulus seed")
    module_library: bool = F(True, "a reference or answer that instantiates a module defined in another row of "
                                   "<data_dir>/<level>/ (any split) is judged with that definition, as curation's "
                                   "compile check does")
    verilogeval: SftVerilogEvalSettings = _sub(SftVerilogEvalSettings, "VerilogEval v2 spec-to-rtl")


class WandbSettings(Section):
    """``wandb:`` of configs/sft.yaml."""

    enabled: bool = F(True, "log to Weights & Biases (offline unless WANDB_API_KEY is set)")
    project: Text = F("sft-playbook", "W&B project")


class NemoSettings(Section):
    """``nemo:`` of configs/sft.yaml: what only the NeMo backend has (``sft.nemo_plan``)."""

    devices: int = F(1, "GPUs per node (several: the NeMo phases run under torchrun)", ge=1)
    num_nodes: int = F(1, "nodes", ge=1)
    tensor_parallel: int = F(1, "Megatron tensor parallel size (must divide the attention heads)", ge=1)
    pipeline_parallel: int = F(1, "Megatron pipeline parallel size", ge=1)
    sequence_parallel: bool = F(False, "Megatron sequence parallel (needs tensor_parallel > 1)")
    cache_dir: Text = F(".cache/models/nemo", "converted NeMo checkpoints (once per model)")
    limit_val_batches: int = F(8, "validation batches per evaluation", ge=1)
    predict_with: Literal[NEMO_PREDICT_WITH] = F("nemo", "nemo: NeMo's generate; hf: the exported model, native predict")
    export_hf: bool = F(True, "after training, export to Hugging Face format in results/<run>/model")
    fusions: Literal[NEMO_FUSIONS] = F("auto", "auto: kernel fusions only with TransformerEngine; on; off")
    seq_length: int | None = F(None, "NeMo's sequence length (null: data.max_seq_len)", ge=8)
    micro_batch_size: int | None = F(None, "NeMo's micro batch (null: train.micro_batch_size)", ge=1)
    global_batch_size: int | None = F(None, "NeMo's global batch (null: train.global_batch_size)", ge=1)


def processes() -> int:
    """Training processes of this launch: ``WORLD_SIZE`` (torchrun) or 1.

    Returns:
        ``WORLD_SIZE`` as an int, at least 1; 1 when it is unset or not an integer.
    """
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


class SftSettings(Root):
    """configs/sft.yaml: convert -> train -> predict -> evaluate."""

    backend: Literal[BACKENDS] = F("native", "native (PyTorch/transformers) or nemo (NeMo 2.0)")
    model: Text = F("smollm2-135m", "a hub id, a local folder, or smollm2-135m (offline default)")
    model_cache: Text = F(".cache/models", "converted / downloaded models live here")
    data_dir: Text = F("data/merged", "curated data (<level>/{train,validation,test}.jsonl)")
    level: Text = F("high_level", "description level trained on (high_level, detailed or block)")
    output_dir: Text = F("results", "runs live in <output_dir>/<run_name>/")
    run_name: Text = F("smollm2-135m-cpu", "this run's folder name")

    @field_validator("run_name")
    @classmethod
    def _one_folder(cls, v: str) -> str:
        if not v.strip() or v.strip() in (".", "..") or "/" in v or "\\" in v:
            raise ValueError(f"must be one folder name inside output_dir (not empty, no '/', not '.' or '..'); got {v!r}")
        return v
    seed: int = F(42, "seed of the data order and initialisation")
    resume: bool = F(False, "true: continue from the last checkpoint of this run")
    data: DataSettings = _sub(DataSettings, "prompt format and lengths")
    train: TrainSettings = _sub(TrainSettings, "optimizer, schedule, batch geometry, speed options")
    lora: LoraSettings = _sub(LoraSettings, "adapters (train.method=lora)")
    predict: PredictSettings = _sub(PredictSettings, "generation on the test rows")
    evaluate: SftEvaluateSettings = _sub(SftEvaluateSettings, "scoring of the predictions")
    wandb: WandbSettings = _sub(WandbSettings, "experiment tracking")
    nemo: NemoSettings = _sub(NemoSettings, "backend=nemo only (NeMo 2, GPU)")

    @model_validator(mode="after")
    def _batch_geometry(self) -> SftSettings:
        t, world = self.train, processes()
        if self.backend != "nemo" and t.global_batch_size % (t.micro_batch_size * world):  # NeMo: nemo.* sizes
            raise ValueError(f"train.global_batch_size: {t.global_batch_size} is not micro_batch_size x accumulation x "
                             f"processes ({t.micro_batch_size} x N x {world}); use a multiple of "
                             f"{t.micro_batch_size * world}")
        if t.stop_at_step is not None and t.stop_at_step > t.max_steps:
            raise ValueError(f"train.stop_at_step: {t.stop_at_step} is past train.max_steps ({t.max_steps})")
        if self.backend == "nemo":
            self.nemo_geometry()
        return self

    def nemo_geometry(self) -> dict[str, int]:
        """NeMo's parallel layout, from ``nemo:`` and, where it leaves a size null, ``train:``/``data:``.

        Returns:
            ``{"world_size", "data_parallel", "micro_batch_size", "global_batch_size", "seq_length"}``:
            GPUs (devices x num_nodes), data-parallel replicas, sequences per micro batch and per
            optimizer step, and the sequence length in tokens.

        Raises:
            ValueError: naming the key, when devices x num_nodes is not a multiple of tensor_parallel x
                pipeline_parallel, the global batch is not a multiple of micro batch x data-parallel
                size, or sequence_parallel is on with tensor_parallel 1.
        """
        n, t = self.nemo, self.train
        world = n.devices * n.num_nodes
        if world % (n.tensor_parallel * n.pipeline_parallel):
            raise ValueError(f"nemo.devices: devices x num_nodes ({world}) must be a multiple of tensor_parallel x "
                             f"pipeline_parallel ({n.tensor_parallel} x {n.pipeline_parallel})")
        dp = world // (n.tensor_parallel * n.pipeline_parallel)
        micro = t.micro_batch_size if n.micro_batch_size is None else n.micro_batch_size
        glob = t.global_batch_size if n.global_batch_size is None else n.global_batch_size
        if glob % (micro * dp):
            raise ValueError(f"train.global_batch_size ({glob}) must be a multiple of micro_batch_size x data-parallel "
                             f"size ({micro} x {dp})")
        if n.sequence_parallel and n.tensor_parallel == 1:
            raise ValueError("nemo.sequence_parallel needs tensor_parallel > 1")
        return {"world_size": world, "data_parallel": dp, "micro_batch_size": micro, "global_batch_size": glob,
                "seq_length": self.data.max_seq_len if n.seq_length is None else n.seq_length}


# ================================================================================================
# eval (configs/eval.yaml)
# ================================================================================================
def _check_k(k_list: list[int], n_samples: int, where: str) -> None:
    bad = [k for k in k_list if not 1 <= k <= n_samples]
    if bad:
        raise ValueError(f"{where}.k_list: each k must be in 1..n_samples ({n_samples}), got {list(k_list)!r}")


class EvalPredictionsSettings(Section):
    """``predictions:`` of configs/eval.yaml; max_cycles >= cycles."""

    file: Text = F("results/smollm2-135m-cpu/predictions.jsonl", "predictions jsonl (id, input, reference, prediction)")
    model: Text | None = F(None, "only rows whose model field is this (null: each model separately)")
    timeout_s: float = F(20, "wall-clock seconds per compile and per simulation", gt=0)
    cycles: int = F(200, "random-stimulus cycles of the first clock", ge=1)
    max_cycles: int = F(3200, "longest run for references with an output bit that never toggled", ge=1)
    seed: int = F(1, "stimulus seed (same for reference and candidate)")
    reset_cycles: int = F(2, "every reset asserted for the first N clock cycles", ge=0)
    reset_pulses: int = F(4, "then asserted again this many times at random steps", ge=0)
    reset_prob: float = F(0.0, "more pulses: about reset_prob * cycles of them", ge=0, le=1)
    max_answer_chars: int = F(65536, "longer predictions are not searched (extraction_failure)", ge=1)
    module_library: Text | None = F(None, "curated level folder (data/merged/high_level): the modules its rows "
                                          "define resolve a reference's or answer's instances (null: none)")

    @model_validator(mode="after")
    def _cycles(self) -> EvalPredictionsSettings:
        if self.max_cycles < self.cycles:
            raise ValueError(f"predictions.max_cycles: {self.max_cycles} is below predictions.cycles ({self.cycles})")
        return self


class EvalVerilogEvalSettings(Section):
    """``verilogeval:`` of configs/eval.yaml; each k of k_list <= n_samples."""

    problems_dir: Text = F("data/verilogeval", "spec-to-rtl folder, or a folder containing it")
    also_look_in: list[Text] = F(["../shared/benchmarks/verilog-eval-v2"], "other places a copy may be")
    problems: list[Text] | None = F(None, "subset: list of ids or ProbNNN prefixes; null = all")
    answers: Text | None = F(None, "jsonl of {problem, answer} rows (step verilogeval)")
    n_samples: int = F(1, "answers per problem", ge=1)
    k_list: list[int] = F([1], "pass@k reported for these k (each <= n_samples)", min_length=1)
    shots: int = F(0, "in-context examples in the prompt", ge=0, le=3)
    include_system: bool = F(True, "put the system message at the top of each prompt")
    timeout_s: float = F(30, "seconds per simulation (upstream: 30)", gt=0)
    max_answer_chars: int = F(65536, "longer answers are not searched (extraction_failure)", ge=1)

    @model_validator(mode="after")
    def _k(self) -> EvalVerilogEvalSettings:
        _check_k(self.k_list, self.n_samples, "verilogeval")
        return self


class EvalDownloadSettings(Section):
    """``download:`` of configs/eval.yaml (``evaluate.download``)."""

    url: Text = F("https://github.com/NVlabs/verilog-eval/archive/{ref}.tar.gz", "archive URL ({ref})")
    ref: Text = F("main", "branch, tag or commit")
    dest: Text = F("data/verilogeval", "installs <dest>/spec-to-rtl/")
    timeout_s: float = F(120, "seconds for the download", gt=0)


class EvalSettings(Root):
    """configs/eval.yaml: score predictions, VerilogEval pass@k, references, prompts, download."""

    out_dir: Text = F("results/eval", "where the reports go")
    workers: int | None = F(None, "parallel simulations; null = all cores", ge=1)
    predictions: EvalPredictionsSettings = _sub(EvalPredictionsSettings, "step predictions")
    verilogeval: EvalVerilogEvalSettings = _sub(EvalVerilogEvalSettings, "steps verilogeval, references, prompts")
    download: EvalDownloadSettings = _sub(EvalDownloadSettings, "step download")


S = TypeVar("S", bound=Section)
KINDS: dict[str, type[Root]] = {"curate": CurateSettings, "sft": SftSettings, "eval": EvalSettings}


# ================================================================================================
# building, errors, printing
# ================================================================================================
_EXPECTED = {"int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
             "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
             "bool_parsing": "true or false", "string_type": "a text", "list_type": "a list",
             "model_type": "a section (key: value mapping)", "dict_type": "a section (key: value mapping)",
             "model_attributes_type": "a section (key: value mapping)", "finite_number": "a finite number"}


def _shown(value: Any) -> str:
    """A value as the user would type it (``'abc'``, ``'1.5'``, ``'[a, b]'``, ``'true'``).

    Returns:
        The ``repr`` of the text (a str as is, anything else as YAML flow text), quotes included.
    """
    if isinstance(value, str):
        return repr(value)
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return repr(text.removesuffix("...").strip())


def _one_line(exc: ValidationError) -> str:
    """The first error of a pydantic ValidationError as ``dotted.key: what is wrong``.

    Returns:
        One line, ending with `` (and N more error(s))`` when the error holds more than one.
    """
    errors = exc.errors(include_url=False)
    e = errors[0]
    loc = [str(p) for p in e["loc"] if not isinstance(p, int)]
    key = ".".join(loc)
    kind, ctx, value = e["type"], e.get("ctx") or {}, e.get("input")
    if kind == "value_error":                # our own model validators: the message names its keys
        msg = str(ctx.get("error", e["msg"]))
        if key and not msg.startswith(key):  # a section's or a field's own validator: name the key in full
            head = re.match(r"(\w+): ", msg)
            msg = f"{key}.{msg}" if head and head.group(1) != loc[-1] else f"{key}: {msg}"
    elif kind == "extra_forbidden":
        parent = loc[:-1]
        model = _model_at(exc.title, parent)
        known = ", ".join(model.model_fields) if model else "?"
        msg = f"{key}: unknown key (known here: {known})"
    elif kind in _EXPECTED:
        want = _EXPECTED[kind]
        if kind == "float_type" and non_finite_text(value):     # 'nan', 'inf' written in a file
            want = _EXPECTED["finite_number"]
        msg = f"{key}: expected {want}, got {_shown(value)}"
    elif kind == "literal_error":
        choices = ctx.get("expected", "").replace("'", "").replace(" or ", ", ")
        msg = f"{key}: must be one of {choices}; got {_shown(value)}"
    elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
        bound = next(iter(ctx.values()))
        msg = f"{key}: must be {op} {bound}, got {_shown(value)}"
    elif kind == "too_short" and ctx.get("min_length") == 1:
        msg = f"{key}: must not be empty, got {_shown(value)}"
    elif kind in ("too_short", "too_long"):
        want = ("at least " if kind == "too_short" else "at most ") + str(ctx.get("min_length", ctx.get("max_length")))
        msg = f"{key}: expected {want} items, got {_shown(value)}"
    elif kind == "missing":
        msg = f"{key}: missing"
    else:
        msg = f"{key}: {e['msg']}"
    if len(errors) > 1:
        msg += f" (and {len(errors) - 1} more error(s))"
    return msg


def _model_at(title: str, path: list[str]) -> type[BaseModel] | None:
    model: Any = next((m for m in KINDS.values() if m.__name__ == title), None)
    for part in path:
        if model is None or part not in model.model_fields:
            return model if part.isdigit() else None
        model = model.model_fields[part].annotation
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def build(kind: str, cfg: dict[str, Any] | Root) -> Root:
    """The typed settings of one config (``kind``: curate, sft or eval) from its mapping.

    Returns:
        The frozen settings (``KINDS[kind]``), remembering a copy of ``cfg`` as its ``source``;
        ``cfg`` itself when it already is a settings object of that kind.

    Raises:
        TypeError: ``cfg`` is a settings object of another kind.
        ConfigError: ``cfg`` is not a mapping, or a field is unknown, missing or invalid (one line
            naming the field).
    """
    cls = KINDS[kind]
    if isinstance(cfg, cls):
        return cfg
    if isinstance(cfg, Root):
        raise TypeError(f"expected {cls.__name__} or a mapping, got {type(cfg).__name__}")
    if not isinstance(cfg, dict):
        raise ConfigError(f"{kind} config: expected a mapping of keys to values, got {type(cfg).__name__}")
    try:
        settings = cls.model_validate(cfg)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    settings._source = _deep_copy(cfg)     # frozen with the settings: later changes to cfg do not leak in
    return settings


def as_section(cls: type[S], value: S | dict[str, Any], where: str = "") -> S:
    """``value`` as the section ``cls`` (a mapping is checked, missing keys take the defaults declared here).

    Returns:
        A new ``cls`` instance, or ``value`` itself when it already is one.

    Raises:
        ConfigError: a key is unknown or a value invalid; one line naming ``where.key``.
    """
    if isinstance(value, cls):
        return value
    try:
        return cls.model_validate(dict(value))
    except ValidationError as exc:
        msg = _one_line(exc)
        raise ConfigError(f"{where}.{msg}" if where else msg) from None


def declares(kind: str) -> Any:
    """``known(path) -> bool`` for ``config.load_config``: whether the key path (``["train",
    "loss_chunk_size"]``) is a setting of ``kind``, so an override may set a key the file leaves out.

    Returns:
        A function of a key path's parts: True when every part names a field of the section above it.
    """
    def known(parts: list[str]) -> bool:
        model: Any = KINDS[kind]
        for part in parts:
            if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
                return False
            model = model.model_fields[part].annotation
        return True
    return known


def load_settings(kind: str, path: str | Path, overrides: Iterable[str] = ()) -> Root:
    """``build(kind, config.load_config(path, overrides))``; an override may set a declared key
    that the file leaves out.

    Returns:
        The typed settings of ``kind`` (``build``); ConfigError as ``load_config`` and ``build`` raise it.
    """
    return build(kind, load_config(path, overrides, declares(kind)))


def replace(settings: Root, **changes: Any) -> Root:
    """A copy with dotted keys changed (``replace(s, **{"verilogeval.problems_dir": "x"})``), checked again.

    Returns:
        New settings of the same kind, built (``build``) from the source mapping with the changes;
        ConfigError as ``build`` raises it when a changed value is invalid.
    """
    source = _deep_copy(settings.source or settings.to_dict())
    for dotted, value in changes.items():
        node = source
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    kind = next(k for k, c in KINDS.items() if isinstance(settings, c))
    return build(kind, source)


def _deep_copy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deep_copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deep_copy(v) for v in d]
    return d


def describe(settings: Root) -> str:
    """YAML of every value, each leaf with its help text and, where it differs, its default:
    what ``--print-config`` shows.

    Returns:
        The YAML text, one ``key: value  # help (default: D)`` line per setting, ending with a newline.
    """
    lines: list[str] = []
    _describe(settings, type(settings), "", lines)
    return "\n".join(lines) + "\n"


def _flow(value: Any) -> str:
    if isinstance(value, str) and ("\n" in value or "\t" in value):
        return json.dumps(value)          # a JSON string is a valid YAML double-quoted scalar, on one line
    return yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True).strip().removesuffix(
        "...").strip()


def _describe(node: Section, cls: type[Section], indent: str, lines: list[str]) -> None:
    for name, info in cls.model_fields.items():
        value = getattr(node, name)
        if isinstance(value, Section):
            lines.append(f"{indent}{name}:".ljust(34) + f"  # {info.description}")
            _describe(value, type(value), indent + "  ", lines)
            continue
        default = info.get_default(call_default_factory=True)
        shown = _flow(value)
        note = info.description or ""
        if value != default:
            note += f" (default: {_flow(default)})"
        lines.append(f"{indent}{name}: {shown}".ljust(34) + f"  # {note}")
