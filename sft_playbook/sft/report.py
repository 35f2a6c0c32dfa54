"""Step "evaluate": base vs fine-tuned on the same test split, in one report.

Reads results/<run>/predictions.jsonl (the schema of predict.py; the NeMo backend writes the same),
computes text metrics per model, the Verilog metrics of `sft_playbook.evaluate.verilog_metrics`
when that module is importable, optionally the VerilogEval benchmark, and writes
results/<run>/report.json, report.md and results.png. `evaluate_run(cfg)` is the whole step.

report.md leads with what a user came for: one table, base vs fine-tuned side by side
(validation loss, compile rate, functional pass rate, text metrics; counts as n/N), the picture
of outcomes (results.png: pass / mismatch / compile error / ... per model) next to training.png,
and which rows were used, dropped or truncated per split (train and validation from the training
step's train_summary.json, test from the predictions). Details (outcomes per class, compile
error classes, VerilogEval statuses, timings) follow below.
"""
from __future__ import annotations

import json
import logging
from io import BytesIO
from pathlib import Path

from ..evaluate.text_metrics import text_metrics
from ..io import iter_jsonl, write_bytes_atomic, write_text_atomic
from ..paths import REPO_ROOT, resolve, run_dir
from ..settings import PREDICT_MODELS, SftSettings, build, replace

log = logging.getLogger(__name__)

MODEL_LABELS = {"base": "base", "finetuned": "fine-tuned"}
#: Verilog outcome classes in the order of the chart and the details table (label, summary keys)
OUTCOMES = (("pass", ("functional_pass",)), ("mismatch", ("mismatch",)),
            ("compile error", ("compile_error",)), ("timeout / runtime error", ("timeout", "runtime_error")),
            ("no module extracted", ("extraction_failure",)), ("forbidden", ("forbidden",)),
            ("reference untestable", ("unsupported", "reference_error")))


def read_predictions(path: Path) -> list[dict]:
    """The rows of a predictions file.

    Returns:
        The prediction rows (dicts with at least ``id``, ``reference``, ``prediction``, ``model``),
        in file order.

    Raises:
        FileNotFoundError: the file does not exist (run the predict step first).
        ValueError: a row lacks ``id``, ``reference``, ``prediction`` or ``model`` (``file:line`` named).
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the predict step first")
    rows = []
    for lineno, row in iter_jsonl(path):
        for key in ("id", "reference", "prediction", "model"):
            if key not in row:
                raise ValueError(f"{path}:{lineno}: prediction row has no {key!r} field")
        rows.append(row)
    return rows


def verilog_metrics(rows: list[dict], ecfg: dict, out_dir: Path, library=None):
    """The Verilog metrics (compile, functional equivalence) when the evaluation module exists, else None.

    Returns:
        ``evaluate.verilog_metrics.evaluate_predictions``' summary of these rows (``rows``,
        ``compiled``, ``functional_pass``, one count per outcome class, ``error_classes``, ``seconds``),
        or None (with a warning) when that module cannot be imported.

    Raises:
        RuntimeError: iverilog/vvp are not installed.
    """
    try:
        from ..evaluate.verilog_metrics import evaluate_predictions
    except ImportError as exc:
        log.warning("Verilog metrics are unavailable (sft_playbook.evaluate.verilog_metrics: %s); "
                    "the report has text metrics only", exc)
        return None
    return evaluate_predictions(rows, workers=int(ecfg["workers"]), timeout_s=float(ecfg["timeout_s"]),
                                cycles=int(ecfg["cycles"]), seed=int(ecfg["seed"]), out_dir=out_dir, library=library)


def module_library(data_dir: Path, level: str):
    """The module index of every curated row of ``<data_dir>/<level>/`` (train, validation, test, in
    that order; ``hierarchy.build_module_index``), or None when there is none: the modules a held-out
    reference may instantiate from other rows of its corpus.

    Returns:
        A ``curate.hierarchy.ModuleIndex`` of the rows' ``output`` code, or None when none of the
        three split files exists or they hold no rows.

    Raises:
        ValueError: a split file has a bad line (``file:line`` named).
    """
    from ..curate.hierarchy import build_module_index
    from .data import SPLITS, split_path

    rows = []
    for split in SPLITS:
        path = split_path(data_dir, level, split)
        if path.is_file():
            rows += [(str(r.get("id", f"{split}:{n}")), r.get("output") or "") for n, r in iter_jsonl(path)]
    if not rows:
        return None
    index = build_module_index(rows)
    log.info("module library: %d curated rows of %s, %d module names (%d needed by another row)",
             len(rows), Path(data_dir) / level, index.summary()["module_names"],
             index.summary()["definitions_for_elaboration"])
    return index


def verilogeval_generate_fn(model, tok, cfg: dict):
    """(generate_fn, include_system) for `run_benchmark`: the benchmark's prompt built by the same
    `data.prompt_ids` as training. With a chat template the benchmark's system message goes into the
    chat's system slot (as upstream's harness does for chat models) and the question into the user
    turn; with a plain template the whole upstream text is the instruction.

    Returns:
        ``(generate_fn, include_system)``: ``predict.make_generate_fn``'s function, and whether the
        benchmark's prompt must carry the system text itself (True with a plain template).
    """
    from ..evaluate.verilogeval import SYSTEM_PROMPT
    from . import data as D
    from .predict import make_generate_fn

    chat = D.uses_chat_template(tok, cfg["data"])
    return make_generate_fn(model, tok, cfg, system=SYSTEM_PROMPT if chat else ""), not chat


def verilogeval_answers(cfg: dict, which: str, path: Path) -> Path:
    """Generation half of VerilogEval (no simulator needed: runs on a GPU machine without iverilog):
    one row per problem {"problem", "answers": [n raw answers], "model", "prompt"} in `path`.

    Returns:
        ``path``, written atomically.

    Raises:
        ModelError: the model cannot be loaded.
    """
    from ..evaluate.verilogeval import build_prompt, load_problems
    from ..io import write_jsonl_atomic
    from .predict import load_for_inference

    vcfg = cfg["evaluate"]["verilogeval"]
    probs = load_problems(resolve(vcfg["problems_dir"]), vcfg.get("problems"))
    model, tok = load_for_inference(cfg, which)
    generate_fn, include_system = verilogeval_generate_fn(model, tok, cfg)
    prompts = [build_prompt(p.prompt, shots=int(vcfg["shots"]), include_system=include_system) for p in probs]
    answers = generate_fn(prompts, int(vcfg["n_samples"]))
    write_jsonl_atomic(path, [{"problem": p.id, "model": which, "answers": a, "prompt": q}
                              for p, a, q in zip(probs, answers, prompts)])
    log.info("VerilogEval answers (%s, %d problems): %s", which, len(probs), path)
    return path


def judge_verilogeval_answers(answers_path: Path, problems_dir, out_dir: Path | None = None, **kw) -> dict:
    """Judging half: score the answers written by `verilogeval_answers` with the runner itself
    (same extraction, testbench and pass@k as a one-step run; needs iverilog).

    Returns:
        ``evaluate.verilogeval.run_benchmark``'s summary (``pass_at_k``, ``passed_problems``,
        ``problems``, ``compile_rate``, ``status_counts``, ...), scored with the smallest answer count
        of any problem as ``n_samples``.

    Raises:
        InputError: a line of the answers file is not a JSON object.
        ValueError: the file has no rows, a row lacks ``problem`` or a non-empty ``answers`` list
            (``file:line`` named), or the runner asks for another number of problems.
        RuntimeError: iverilog/vvp are not installed.
    """
    from ..evaluate.verilogeval import run_benchmark

    rows = []
    for lineno, row in iter_jsonl(Path(answers_path)):
        if not isinstance(row.get("problem"), str) or not isinstance(row.get("answers"), list) or not row["answers"]:
            raise ValueError(f"{answers_path}:{lineno}: expected {{\"problem\": <id>, \"answers\": [<text>, ...]}} "
                             f"with at least one answer")
        rows.append(row)
    if not rows:
        raise ValueError(f"{answers_path}: no answers (the file is empty): run the generation step first")
    answers = {r["problem"]: r["answers"] for r in rows}
    ids = [r["problem"] for r in rows]

    def replay(prompts: list[str], n: int) -> list[list[str]]:
        if len(prompts) != len(ids):
            raise ValueError(f"{answers_path}: {len(ids)} answered problems, the runner asks {len(prompts)}")
        return [answers[i][:n] for i in ids]

    n = min(len(a) for a in answers.values())
    return run_benchmark(replay, problems_dir, problems=ids, n_samples=n, out_dir=out_dir, **kw)


def verilogeval(cfg: dict, which: str, out_dir: Path):
    """Run VerilogEval with the ``base`` or ``finetuned`` model (``evaluate.verilogeval`` settings).

    Returns:
        The benchmark summary, or None when the VerilogEval module cannot be imported (warned).
    """
    vcfg = cfg["evaluate"]["verilogeval"]
    try:
        from ..evaluate.verilogeval import run_benchmark
    except ImportError as exc:
        log.warning("VerilogEval is unavailable (sft_playbook.evaluate.verilogeval: %s)", exc)
        return None
    from .predict import load_for_inference

    model, tok = load_for_inference(cfg, which)
    generate_fn, include_system = verilogeval_generate_fn(model, tok, cfg)
    return run_benchmark(generate_fn, resolve(vcfg["problems_dir"]), include_system=include_system,
                         n_samples=int(vcfg["n_samples"]), k_list=list(vcfg["k_list"]), shots=int(vcfg["shots"]),
                         workers=int(cfg["evaluate"]["workers"]), out_dir=out_dir)


def _file_rows(path: Path) -> int | None:
    if not path.is_file():
        return None
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def row_accounting(cfg: dict, run: Path, predictions: list[dict]) -> dict:
    """Per split: rows in the file, read (after max_*_samples), used, dropped, truncated.

    Train and validation come from the training step's train_summary.json (None when it is absent,
    e.g. the NeMo backend); the test split from the predictions themselves.

    Returns:
        ``{split: {"in_file", "read", "used", "dropped", "truncated"}}`` for train, validation and the
        predicted split (row counts; None where not recorded), plus ``max_seq_len`` (tokens) and
        ``overlength`` of the training run's config.yaml (else the current config).
    """
    split_dir = resolve(cfg["data_dir"]) / cfg["level"]
    out: dict = {}
    summary = run / "train_summary.json"
    stats = json.loads(summary.read_text(encoding="utf-8")).get("data", {}) if summary.is_file() else {}
    for split in ("train", "validation"):
        s = stats.get(split)
        entry = {"in_file": _file_rows(split_dir / f"{split}.jsonl"), "read": None, "used": None,
                 "dropped": None, "truncated": None}
        if s:  # several prompt forms per row: counts are of examples (rows x forms)
            entry.update(read=int(s.get("examples", s.get("rows", 0))), used=int(s.get("kept", 0)),
                         dropped=int(s.get("dropped_over_length", 0)) + int(s.get("dropped_prompt_too_long", 0)),
                         truncated=int(s.get("truncated", 0)))
        out[split] = entry
    ids = {r["id"] for r in predictions}
    test = cfg["predict"]["split"]
    out[test] = {"in_file": _file_rows(split_dir / f"{test}.jsonl"), "read": len(ids), "used": len(ids),
                 "dropped": 0, "truncated": 0}
    # the length rule of the training that made this run's model (its config.yaml), else the current config
    trained = cfg["data"]
    if (run / "config.yaml").is_file():
        import yaml

        trained = (yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}).get("data") or trained
    out["max_seq_len"] = int(trained.get("max_seq_len", cfg["data"]["max_seq_len"]))
    out["overlength"] = trained.get("overlength", cfg["data"]["overlength"])
    return out


def evaluate_run(cfg: SftSettings | dict) -> dict:
    """The evaluate step: text and Verilog metrics (and VerilogEval when enabled) of each model's
    predictions, validation loss and row accounting, written as ``report.json`` and ``report.md``
    (with charts) into the run folder.

    Returns:
        The report as written to report.json: ``run``, ``model``, ``level``, ``split``, ``method``,
        ``max_steps``, ``models`` (per model: ``rows``, ``text`` metrics, and ``verilog`` /
        ``verilogeval`` summaries when enabled), ``val_loss`` (first and last, when metrics.jsonl has
        any), ``data_rows`` (``row_accounting``) and ``charts`` (the PNG names beside report.md).

    Raises:
        FileNotFoundError: no predictions file (run the predict step first).
    """
    cfg = build("sft", cfg)
    ecfg = cfg.evaluate
    run = run_dir(cfg)
    rows = read_predictions(run / "predictions.jsonl")
    report: dict = {"run": cfg["run_name"], "model": cfg["model"], "level": cfg["level"],
                    "split": cfg["predict"]["split"], "method": cfg["train"]["method"],
                    "max_steps": cfg["train"]["max_steps"], "models": {}}
    if ecfg["verilogeval"]["enabled"]:
        from ..evaluate.download import locate_problems

        # problems_dir is also the download cache here: filled on first use (as `bash evaluate.sh download`)
        vcfg = ecfg.verilogeval
        found = locate_problems(vcfg.problems_dir, download={"dest": vcfg.problems_dir})
        cfg = replace(cfg, **{"evaluate.verilogeval.problems_dir": str(found)})
    library = module_library(Path(cfg["data_dir"]), cfg["level"]) \
        if ecfg["verilog"] and ecfg["module_library"] else None
    for which in [m for m in PREDICT_MODELS if any(r["model"] == m for r in rows)]:
        mine = [r for r in rows if r["model"] == which]
        entry = {"rows": len(mine), "text": text_metrics([r["prediction"] for r in mine],
                                                          [r["reference"] for r in mine])}
        if ecfg["verilog"]:
            v = verilog_metrics(mine, ecfg, run / "eval" / which, library)
            if v is not None:
                entry["verilog"] = v
        if ecfg["verilogeval"]["enabled"]:
            v = verilogeval(cfg, which, run / "eval" / f"verilogeval_{which}")
            if v is not None:
                entry["verilogeval"] = v
        report["models"][which] = entry
        log.info("%s: %s", which, ", ".join(f"{k}={v}" for k, v in entry["text"].items()))
    metrics = run / "metrics.jsonl"
    if metrics.is_file():
        vals = [r for _, r in iter_jsonl(metrics) if "val_loss" in r]
        if vals:
            report["val_loss"] = {"first": vals[0]["val_loss"], "last": vals[-1]["val_loss"],
                                  "first_step": vals[0]["step"], "last_step": vals[-1]["step"]}
    report["data_rows"] = row_accounting(cfg, run, rows)
    chart = plot_outcomes(report, run / "results.png")
    report["charts"] = (["results.png"] if chart else []) + (["training.png"] if (run / "training.png").is_file() else [])
    _write(run / "report.json", json.dumps(report, indent=2, default=str) + "\n")
    _write(run / "report.md", render_markdown(report))
    for m, e in report["models"].items():
        v, t = e.get("verilog") or {}, e["text"]
        log.info("%-10s compiles %s, functional pass %s, BLEU %s", MODEL_LABELS.get(m, m),
                 _frac(v.get("compiled"), v.get("rows")), _frac(v.get("functional_pass"), v.get("rows")),
                 _num(t.get("bleu"), 1))
    log.info("report: %s (with %s)", _show(run / "report.md"), ", ".join(report["charts"]) or "no charts")
    return report


def _show(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# ------------------------------------------------------------------ markdown
def _frac(n, total) -> str:
    if n is None or not total:
        return "-"
    return f"{n}/{total} ({100 * n / total:.0f} %)"


def _num(v, digits: int = 3) -> str:
    return "-" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))


def headline_rows(report: dict) -> list[tuple[str, list[str]]]:
    """(label, one cell per model) for the first table of report.md.

    Returns:
        ``[(label, cells)]`` in table order (validation loss, compile and functional pass rates as
        ``n/N (p %)``, VerilogEval pass@k, exact match, BLEU, ROUGE-L); one cell per model of
        ``report["models"]``, ``-`` where a model has no value.
    """
    models = list(report["models"])
    M = report["models"]
    rows: list[tuple[str, list[str]]] = []
    if "val_loss" in report:
        v = report["val_loss"]
        cells = {"base": f"{v['first']:.3f} (step {v['first_step']}, before training)",
                 "finetuned": f"{v['last']:.3f} (step {v['last_step']})"}
        used = (report.get("data_rows") or {}).get("validation", {}).get("used")
        rows.append((f"validation loss{f' ({used} rows)' if used else ''}, lower is better",
                     [cells.get(m, "-") for m in models]))
    if any("verilog" in M[m] for m in models):
        def vv(m, key):
            return M[m].get("verilog", {}).get(key)

        rows.append(("compiles (iverilog)", [_frac(vv(m, "compiled"), vv(m, "rows")) for m in models]))
        rows.append(("functional pass (behaves like the reference)",
                     [_frac(vv(m, "functional_pass"), vv(m, "rows")) for m in models]))
        if any(vv(m, "unsupported") or vv(m, "reference_error") for m in models):
            rows.append(("functional pass, testable references only",
                         [_frac(vv(m, "functional_pass"), (vv(m, "rows") or 0) - (vv(m, "unsupported") or 0)
                                - (vv(m, "reference_error") or 0)) for m in models]))
    if any("verilogeval" in M[m] for m in models):
        ks = sorted({k for m in models for k in M[m].get("verilogeval", {}).get("pass_at_k", {})})
        for k in ks:
            rows.append((f"VerilogEval v2 {k}", [
                (f"{M[m]['verilogeval']['pass_at_k'][k]:.3f} ({M[m]['verilogeval']['passed_problems']}/"
                 f"{M[m]['verilogeval']['problems']} problems)") if "verilogeval" in M[m] else "-" for m in models]))
        rows.append(("VerilogEval v2 compile rate", [_num(M[m].get("verilogeval", {}).get("compile_rate"))
                                                     for m in models]))
    t = {m: M[m].get("text", {}) for m in models}
    rows.append(("exact match", [_frac(round((t[m].get("exact_match") or 0) * (t[m].get("n") or 0)), t[m].get("n"))
                                 if t[m].get("n") else "-" for m in models]))
    rows.append(("BLEU (0-100)", [_num(t[m].get("bleu"), 1) for m in models]))
    rows.append(("ROUGE-L F1 (0-1)", [_num(t[m].get("rouge_l")) for m in models]))
    return rows


def _rows_table(report: dict) -> list[str]:
    d = report.get("data_rows")
    if not d:
        return []
    lines = ["| split | rows in file | read | used | dropped (over length) | truncated |",
             "| --- | --- | --- | --- | --- | --- |"]
    for split, e in d.items():
        if not isinstance(e, dict):
            continue
        read = e["read"]
        lines.append(f"| {split} | {_num(e['in_file'])} | {_num(read)} | {_frac(e['used'], read)} | "
                     f"{_frac(e['dropped'], read)} | {_frac(e['truncated'], read)} |")
    notes = [f"Over-length rule: rows longer than `data.max_seq_len` = {d['max_seq_len']} tokens are "
             f"{'dropped' if d['overlength'] == 'drop' else 'cut at that length'} (`data.overlength: {d['overlength']}`). "
             "`read` is less than the file when `data.max_train_samples` / `data.max_val_samples` / "
             "`predict.max_samples` limit it, and more when each row is asked in several prompt forms "
             "(`data.prompt_forms`: then train and validation count examples)."]
    if any(isinstance(e, dict) and e["used"] is None for e in d.values()):
        notes.append("`-`: not recorded (no train_summary.json from a native training step in this run folder).")
    return lines + [""] + notes


def _which_rows(report: dict, n: int) -> str:
    in_file = ((report.get("data_rows") or {}).get(report["split"]) or {}).get("in_file")
    if not in_file:
        return ""
    return f" (all {in_file} of the split)" if n >= in_file else f" (the first {n} of the split's {in_file}: predict.max_samples)"


def render_markdown(report: dict) -> str:
    """The run report as Markdown: the base-vs-fine-tuned table, charts and the details.

    Returns:
        The Markdown text of report.md (no trailing newline).
    """
    models = list(report["models"])
    M = report["models"]
    n_test = max((M[m]["rows"] for m in models), default=0)
    lines = [f"# SFT report: {report['run']}", "",
             f"Model `{report['model']}` fine-tuned ({report.get('method', '?')}, {report.get('max_steps', '?')} "
             f"optimizer step{'' if report.get('max_steps') == 1 else 's'}) "
             f"on level `{report['level']}`; base and fine-tuned model compared on the same {n_test} "
             f"`{report['split']}` rows{_which_rows(report, n_test)} (greedy; never seen in training).", "",
             "## Base vs fine-tuned", "",
             "| | " + " | ".join(MODEL_LABELS.get(m, m) for m in models) + " |",
             "| --- |" + " --- |" * len(models)]
    for label, cells in headline_rows(report):
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    charts = report.get("charts") or []
    if charts:
        lines += [" ".join(f"![{c.removesuffix('.png')}]({c})" for c in charts), ""]
    rows_md = _rows_table(report)
    if rows_md:
        lines += ["## Rows used", ""] + rows_md + [""]
    lines += ["## Details", ""]
    if any("verilog" in M[m] for m in models):
        lines += ["Outcome of each test row (Verilog, `eval/<model>/verilog_results.jsonl` has every row):", "",
                  "| outcome | " + " | ".join(MODEL_LABELS.get(m, m) for m in models) + " |",
                  "| --- |" + " --- |" * len(models)]
        counts = outcome_counts(report)
        for label, _ in OUTCOMES:
            lines.append(f"| {label} | " + " | ".join(_num(counts[m][label]) if m in counts else "-"
                                                      for m in models) + " |")
        lines.append("")
        classes = sorted({c for m in models for c in M[m].get("verilog", {}).get("error_classes", {})})
        if classes:
            lines += ["Error classes (rows that did not pass):", "",
                      "| error class | " + " | ".join(MODEL_LABELS.get(m, m) for m in models) + " |",
                      "| --- |" + " --- |" * len(models)]
            for c in classes:
                lines.append(f"| {c} | " + " | ".join(_num(M[m].get("verilog", {}).get("error_classes", {}).get(c, 0))
                                                      for m in models) + " |")
            lines.append("")
    if any("verilogeval" in M[m] for m in models):
        lines += ["VerilogEval v2 statuses (all samples):", ""]
        for m in models:
            if "verilogeval" in M[m]:
                ve = M[m]["verilogeval"]
                lines.append(f"- {MODEL_LABELS.get(m, m)}: {ve.get('status_counts')}, {ve.get('shots')}-shot, "
                             f"{ve.get('n_samples')} sample(s), iverilog {ve.get('iverilog_version')}, {ve.get('seconds')} s")
        lines.append("")
    timing = [f"{MODEL_LABELS.get(m, m)} {M[m]['verilog']['seconds']} s" for m in models if "verilog" in M[m]]
    if timing:
        lines += [f"Verilog checks took {', '.join(timing)}. All numbers: `report.json`.", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ chart
#: classes always shown in the chart, even at 0 for every model (the others only when some model has them)
CORE_OUTCOMES = ("pass", "mismatch", "compile error")


def outcome_counts(report: dict) -> dict[str, dict[str, int]]:
    """{model: {outcome label: rows}} from the Verilog summaries, in OUTCOMES order (models with Verilog metrics).

    Returns:
        Per model with a ``verilog`` entry, the row count of each OUTCOMES label (summary keys summed);
        ``{}`` when no model has Verilog metrics.
    """
    return {m: {label: sum(int(e["verilog"].get(k) or 0) for k in keys) for label, keys in OUTCOMES}
            for m, e in report["models"].items() if "verilog" in e}


def plot_outcomes(report: dict, png_path: Path) -> Path | None:
    """results.png: bars of Verilog outcome classes (pass, mismatch, compile error, ...), base vs
    fine-tuned, counts of test rows on each bar. None (and no file) without Verilog metrics.

    Returns:
        ``png_path`` (a 990 x 440 pixel PNG, written atomically), or None without Verilog metrics.

    Raises:
        OutputError: the PNG cannot be written.
    """
    counts = outcome_counts(report)
    models = list(counts)
    if not models:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    keep = [label for label, _ in OUTCOMES if label in CORE_OUTCOMES or any(counts[m][label] for m in models)]
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(models)
    for j, m in enumerate(models):
        xs = [i + (j - (len(models) - 1) / 2) * width for i in range(len(keep))]
        ys = [counts[m][label] for label in keep]
        n = report["models"][m]["verilog"].get("rows") or 0
        bars = ax.bar(xs, ys, width, label=f"{MODEL_LABELS.get(m, m)} (n={n})")
        ax.bar_label(bars, labels=[str(y) for y in ys], fontsize=8)
    ax.set_xticks(range(len(keep)), keep, rotation=15)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    most = max(int(report["models"][m]["verilog"].get("rows") or 0) for m in models)
    ax.set_ylim(0, max(1, most) * 1.08)  # the axis goes up to all rows: bar heights read as shares
    ax.set_ylabel(f"{report['split']} rows")
    ax.set_title(f"{report['run']}: outcome of each generated module")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(png_path, buf.getvalue())
    return png_path


def _write(path: Path, text: str) -> None:
    write_text_atomic(path, text)
