"""Step "predict": batched generation on the test split -> results/<run>/predictions.jsonl.

Row schema (shared with the NeMo backend; `write_predictions` writes it):
    {"id", "input", "reference", "prediction", "model": "base" | "finetuned", "sample": int,
     "prompt_form": str}  (input: the text the model was asked, in predict.prompt_form)

`make_generate_fn(model, tokenizer, cfg)` gives `generate_fn(prompts, n) -> list[list[str]]`
(descriptions in, n completions each) for the VerilogEval runner.
"""
from __future__ import annotations

import logging
from pathlib import Path

from ..io import write_jsonl_atomic
from ..paths import resolve, run_dir
from ..settings import PredictSettings, SftSettings, as_section, build, check_stops  # noqa: F401 - check_stops: re-exported
from . import data as D
from .model import ModelError, check_model_dir, load_model, load_tokenizer, prepare_model

log = logging.getLogger(__name__)


def cut_at_stop(text: str, stops: list[str]) -> str:
    """Keep the text up to and including the first stop string (e.g. `[DONE]`).

    Returns:
        ``text`` up to the end of the stop string that ends first; ``text`` unchanged when none occurs.
    """
    best = None
    for s in stops:
        i = text.find(s)
        if i >= 0 and (best is None or i + len(s) < best):
            best = i + len(s)
    return text[:best] if best is not None else text


def generate(model, tokenizer, prompts: list[list[int]] | list[str], pcfg: PredictSettings | dict,
             n: int | None = None) -> list[list[str]]:
    """Left-padded batched generation from prompt token ids (each built by `data.prompt_ids`, the
    function that builds the training prompts; prompt texts are accepted too and tokenized by
    `data.text_ids`, which adds the tokenizer's BOS the way training does). Greedy unless
    predict.do_sample; n completions per prompt. ``pcfg``: the ``predict:`` settings (a mapping is
    checked).

    Returns:
        One list per prompt, in order, of ``n`` (default ``predict.n_samples``) completions: the new
        tokens decoded without special tokens, cut after the first stop string, stripped.

    Raises:
        ValueError: ``n`` > 1 without ``predict.do_sample`` (greedy decoding gives one answer).
        ConfigError: ``pcfg`` is a mapping with a bad ``predict.<key>``.
    """
    import torch

    pcfg = as_section(PredictSettings, pcfg, "predict")
    n = int(n or pcfg.n_samples)
    do_sample = pcfg.do_sample
    if n > 1 and not do_sample:
        raise ValueError("predict.n_samples > 1 needs predict.do_sample=true (greedy gives one answer)")
    prompts = [D.text_ids(tokenizer, p) if isinstance(p, str) else p for p in prompts]
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stops = list(pcfg.stop)
    out: list[list[str]] = []
    bs = pcfg.batch_size
    gen_kwargs = dict(max_new_tokens=pcfg.max_new_tokens, do_sample=do_sample, num_return_sequences=n,
                      pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
    if do_sample:
        gen_kwargs.update(temperature=pcfg.temperature, top_p=pcfg.top_p)
    if stops:
        gen_kwargs.update(stop_strings=stops, tokenizer=tokenizer)
    if pcfg.cache_implementation:
        # "static": a fixed-size KV cache; on CUDA transformers then compiles the decoding step
        gen_kwargs["cache_implementation"] = pcfg.cache_implementation
    model.eval()
    for i in range(0, len(prompts), bs):
        chunk = [list(p) for p in prompts[i:i + bs]]
        width = max(len(p) for p in chunk)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in chunk], dtype=torch.long, device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk], dtype=torch.long, device=device)
        with torch.no_grad():
            seqs = model.generate(input_ids=ids, attention_mask=mask, **gen_kwargs)
        texts = tokenizer.batch_decode(seqs[:, width:], skip_special_tokens=True)
        for j in range(len(texts) // n):
            out.append([cut_at_stop(t, stops).strip() for t in texts[j * n:(j + 1) * n]])
    return out


def make_generate_fn(model, tokenizer, cfg: SftSettings | dict, system: str | None = None):
    """generate_fn(descriptions, n) -> n completions each, with this run's prompt format and settings.
    system: the system message to use instead of data.system_prompt (chat templates).

    Returns:
        ``generate_fn(prompts, n) -> list[list[str]]``: ``n`` completions per description, prompts built
        by ``data.prompt_ids``; sampling is switched on for ``n`` > 1, else the run's predict settings.
    """
    cfg = build("sft", cfg)

    def generate_fn(prompts: list[str], n: int) -> list[list[str]]:
        ids = [D.prompt_ids(tokenizer, p, cfg.data, system) for p in prompts]
        pcfg = cfg.predict.model_copy(update={"do_sample": True}) if n > 1 else cfg.predict
        return generate(model, tokenizer, ids, pcfg, n=n)
    return generate_fn


def model_folder(cfg: SftSettings | dict, which: str) -> Path:
    """'base' -> the prepared base model; 'finetuned' -> results/<run>/model (LoRA: merged model or adapter).

    Returns:
        For ``base``, ``model.prepare_model``'s folder (converted or downloaded on first use); for
        any other value, ``<run>/model``, else ``<run>/adapter``.

    Raises:
        ModelError: no fine-tuned folder in the run, or the base model cannot be prepared.
    """
    cfg = build("sft", cfg)
    if which == "base":
        return prepare_model(cfg)
    run = run_dir(cfg)
    for candidate in (run / "model", run / "adapter"):
        if candidate.is_dir():
            return candidate
    raise ModelError(f"no fine-tuned model in {run} (expected {run / 'model'}); run the train step first")


def load_for_inference(cfg: SftSettings | dict, which: str):
    """Load the ``base`` or ``finetuned`` model (a LoRA adapter merged) and its tokenizer, in bf16 on
    the GPU when there is one, else float32 on the CPU.

    Returns:
        (model, tokenizer).

    Raises:
        ModelError: no fine-tuned model in the run folder, or the model folder is unusable.
    """
    import torch

    folder = model_folder(cfg, which)
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    if (folder / "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(folder, dtype=dtype).merge_and_unload()
    else:
        model = load_model(check_model_dir(folder), dtype=dtype)
    if torch.cuda.is_available():
        model.to("cuda")
    return model, load_tokenizer(folder)


def write_predictions(path: Path, rows: list[dict]) -> None:
    """Write prediction rows as jsonl, atomically (no partial or 0-byte file is ever left)."""
    write_jsonl_atomic(path, rows)


def predict_rows(model, tokenizer, rows: list[dict], cfg: SftSettings | dict, label: str) -> list[dict]:
    """Generate answers for ``rows`` with one model, in ``predict.prompt_form`` (a row that cannot
    take it is asked in the ``header`` form, with a warning): prediction rows (the schema above).

    Args:
        model: the loaded model.
        tokenizer: its tokenizer.
        rows: curated rows (``id``, ``input``, ``output``).
        cfg: the SFT config (``predict`` and ``data`` sections).
        label: the model's label in the output (``base`` or ``finetuned``).

    Returns:
        One prediction row per row and sample: ``id``, ``input``, ``reference``, ``prediction``,
        ``model``, ``sample``, ``prompt_form``.
    """
    from tqdm import tqdm

    cfg = build("sft", cfg)
    pcfg = cfg.predict
    form = pcfg.prompt_form
    inputs = []
    for r in rows:
        text = D.form_input(r, form)
        if text is None:
            log.warning("row %s cannot take prompt form %r: asked in the 'header' form", r["id"], form)
            text = D.form_input(r, "header")
        inputs.append(text)
    prompts = [D.prompt_ids(tokenizer, t, cfg.data) for t in inputs]
    out: list[dict] = []
    bs = pcfg.batch_size
    for i in tqdm(range(0, len(rows), bs), desc=f"predict ({label})", unit="batch"):
        for row, text_in, completions in zip(rows[i:i + bs], inputs[i:i + bs],
                                             generate(model, tokenizer, prompts[i:i + bs], pcfg)):
            for k, text in enumerate(completions):
                out.append({"id": row["id"], "input": text_in, "reference": row["output"],
                            "prediction": text, "model": label, "sample": k, "prompt_form": form})
    return out


def predict_run(cfg: SftSettings | dict) -> Path:
    """The predict step: answers of each model in ``predict.models`` for the configured split (the
    same rows for every model), written to ``results/<run>/predictions.jsonl``.

    Returns:
        The predictions file: ``<run>/predictions.jsonl``, rows of every model in ``predict.models``
        order (written atomically).

    Raises:
        ValueError: a ``predict.models`` entry is not ``base`` or ``finetuned``.
        DataError: the split is missing or malformed.
        ModelError: a model cannot be loaded.
        OutputError: the predictions file cannot be written.
    """
    import torch

    cfg = build("sft", cfg)
    pcfg = cfg.predict
    torch.manual_seed(cfg.seed)
    rows = D.read_split(resolve(cfg.data_dir), cfg.level, pcfg.split, pcfg.max_samples)
    run = run_dir(cfg)
    run.mkdir(parents=True, exist_ok=True)
    out: list[dict] = []
    for which in pcfg.models:
        model, tok = load_for_inference(cfg, which)
        log.info("predicting %d %s rows with the %s model (%d sample(s) each, max %d new tokens)",
                 len(rows), pcfg.split, which, pcfg.n_samples, pcfg.max_new_tokens)
        out += predict_rows(model, tok, rows, cfg, which)
        del model
    path = run / "predictions.jsonl"
    write_predictions(path, out)
    log.info("predictions: %s (%d rows)", path, len(out))
    return path
