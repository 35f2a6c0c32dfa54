"""Step "evaluate": base vs fine-tuned on the same test split, in one report.

Reads results/<run>/predictions.jsonl (the schema of predict.py; the NeMo backend writes the same),
computes text metrics per model, the Verilog metrics of `sft_playbook.evaluate.verilog_metrics`
when that module is importable, optionally the VerilogEval benchmark, and writes
results/<run>/report.json and report.md. `evaluate_run(cfg)` is the whole step.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from ..evaluate.text_metrics import text_metrics
from ..io import iter_jsonl, write_text_atomic
from ..paths import resolve

log = logging.getLogger(__name__)


def read_predictions(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the predict step first")
    rows = []
    for lineno, row in iter_jsonl(path):
        for key in ("id", "reference", "prediction", "model"):
            if key not in row:
                raise ValueError(f"{path}:{lineno}: prediction row has no {key!r} field")
        rows.append(row)
    return rows


def verilog_metrics(rows: list[dict], ecfg: dict, out_dir: Path):
    """The Verilog metrics (compile, functional equivalence) when the evaluation module exists, else None."""
    try:
        from ..evaluate.verilog_metrics import evaluate_predictions
    except ImportError as exc:
        log.warning("Verilog metrics are unavailable (sft_playbook.evaluate.verilog_metrics: %s); "
                    "the report has text metrics only", exc)
        return None
    return evaluate_predictions(rows, workers=int(ecfg["workers"]), timeout_s=float(ecfg["timeout_s"]),
                                cycles=int(ecfg["cycles"]), seed=int(ecfg["seed"]), out_dir=out_dir)


def verilogeval_generate_fn(model, tok, cfg: dict):
    """(generate_fn, include_system) for `run_benchmark`: the benchmark's prompt built by the same
    `data.prompt_ids` as training. With a chat template the benchmark's system message goes into the
    chat's system slot (as upstream's harness does for chat models) and the question into the user
    turn; with a plain template the whole upstream text is the instruction."""
    from ..evaluate.verilogeval import SYSTEM_PROMPT
    from . import data as D
    from .predict import make_generate_fn

    chat = D.uses_chat_template(tok, cfg["data"])
    return make_generate_fn(model, tok, cfg, system=SYSTEM_PROMPT if chat else ""), not chat


def verilogeval_answers(cfg: dict, which: str, path: Path) -> Path:
    """Generation half of VerilogEval (no simulator needed: runs on a GPU machine without iverilog):
    one row per problem {"problem", "answers": [n raw answers], "model", "prompt"} in `path`."""
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
    (same extraction, testbench and pass@k as a one-step run; needs iverilog)."""
    from ..evaluate.verilogeval import run_benchmark

    rows = [row for _, row in iter_jsonl(Path(answers_path))]
    answers = {r["problem"]: r["answers"] for r in rows}
    ids = [r["problem"] for r in rows]

    def replay(prompts: list[str], n: int) -> list[list[str]]:
        if len(prompts) != len(ids):
            raise ValueError(f"{answers_path}: {len(ids)} answered problems, the runner asks {len(prompts)}")
        return [answers[i][:n] for i in ids]

    n = min(len(a) for a in answers.values())
    return run_benchmark(replay, problems_dir, problems=ids, n_samples=n, out_dir=out_dir, **kw)


def verilogeval(cfg: dict, which: str, out_dir: Path):
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


def evaluate_run(cfg: dict) -> dict:
    ecfg = cfg["evaluate"]
    run = resolve(cfg["output_dir"]) / cfg["run_name"]
    rows = read_predictions(run / "predictions.jsonl")
    report: dict = {"run": cfg["run_name"], "model": cfg["model"], "level": cfg["level"],
                    "split": cfg["predict"]["split"], "models": {}}
    for which in [m for m in ("base", "finetuned") if any(r["model"] == m for r in rows)]:
        mine = [r for r in rows if r["model"] == which]
        entry = {"rows": len(mine), "text": text_metrics([r["prediction"] for r in mine],
                                                          [r["reference"] for r in mine])}
        if ecfg["verilog"]:
            v = verilog_metrics(mine, ecfg, run / "eval" / which)
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
    _write(run / "report.json", json.dumps(report, indent=2, default=str) + "\n")
    _write(run / "report.md", render_markdown(report))
    log.info("report: %s", run / "report.md")
    return report


def _flat(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) or value is None:
        out[prefix] = value


def render_markdown(report: dict) -> str:
    models = list(report["models"])
    flat = {m: {} for m in models}
    for m in models:
        _flat("", {k: v for k, v in report["models"][m].items()}, flat[m])
    keys = [k for k in dict.fromkeys(k for m in models for k in flat[m])]
    lines = [f"# SFT report: {report['run']}", "",
             f"Model `{report['model']}`, level `{report['level']}`, split `{report['split']}`.", ""]
    if "val_loss" in report:
        v = report["val_loss"]
        lines += [f"Validation loss: {v['first']:.4f} (step {v['first_step']}) -> {v['last']:.4f} "
                  f"(step {v['last_step']}).", ""]
    lines += ["| metric | " + " | ".join(models) + " |", "| --- |" + " --- |" * len(models)]
    for k in keys:
        cells = []
        for m in models:
            v = flat[m].get(k)
            cells.append("" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v)))
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    write_text_atomic(path, text)
