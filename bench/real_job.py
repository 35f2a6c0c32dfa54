#!/usr/bin/env python3
"""The main job for real: real SmolLM2-135M-Instruct weights, real curated MG-Verilog rows, one GPU,
base vs fine-tuned on the held-out rows and on VerilogEval v2 spec-to-rtl (0-shot, greedy).

Two stages, so that generation (GPU) and judging (iverilog) can run on different machines:

  device  convert the GGUF, then for each planned run: train (run_sft.py train, configs/sft_gpu.yaml
          + the run's overrides), generate the held-out test split in each prompt form and the
          VerilogEval answers. Base model: generation only. Writes $OUT/real_job.tar.gz (every run's
          metrics, configs, predictions, answers, logs) and $OUT/real_job_device.json (timings).
  judge   (needs iverilog) compile + differential-testbench check of every held-out prediction,
          VerilogEval judged by the benchmark runner itself; prints a table and writes
          real_job_report.json / .md.

`bash bench/real_job.sh` runs curate -> device -> judge on one machine; docs/benchmarks.md
("The real job") gives the two-machine form through the device tool.

Usage: python3 bench/real_job.py device --data DIR --model GGUF_OR_FOLDER --problems DIR --out DIR
                                        [--plan base,forms-3ep,...] [--budget-s 480]
       python3 bench/real_job.py judge --tar FILE --problems DIR --out DIR [--workers N]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FORMS3 = "[header,ports,description]"
# name -> (epochs over the expanded rows, overrides). "base": no training.
PLANS = {
    "base": (0, []),
    "forms-3ep": (3, [f"data.prompt_forms={FORMS3}"]),
    "header-3ep": (3, ["data.prompt_forms=[header]"]),
    "header-9ep": (9, ["data.prompt_forms=[header]"]),
    "forms-1ep": (1, [f"data.prompt_forms={FORMS3}"]),
    "forms-6ep": (6, [f"data.prompt_forms={FORMS3}"]),
}
EVAL_FORMS = ("header", "ports")


def _cfg(common: list[str], extra: list[str]):
    from sft_playbook.config import load_config

    return load_config(ROOT / "configs/sft_gpu.yaml", common + extra)


def steps_for(cfg: dict, epochs: float) -> tuple[int, int]:
    """(optimizer steps for `epochs` passes, items per epoch) with this config's forms and packing."""
    from sft_playbook.paths import resolve
    from sft_playbook.sft import data as D
    from sft_playbook.sft.model import load_tokenizer, prepare_model

    tok = load_tokenizer(prepare_model(cfg))
    rows = D.read_split(resolve(cfg["data_dir"]), cfg["level"], "train", cfg["data"]["max_train_samples"])
    seq = int(cfg["data"]["max_seq_len"])
    enc = D.encode_rows(rows, tok, cfg["data"], seq)
    items = len(D.epoch_items(enc.examples, int(cfg["seed"]), 0, bool(cfg["data"]["packing"]), seq,
                              cfg["data"]["pack_strategy"]))
    return max(1, math.ceil(epochs * items / int(cfg["train"]["global_batch_size"]))), items


def generate_all(cfg: dict, which: str, run_dir: Path, forms=EVAL_FORMS) -> dict:
    """Held-out predictions in each prompt form and the VerilogEval answers: one model load and ONE
    batched `generate` over all prompts (decoding here is bound by per-step overhead, not by the
    batch, so one batch of ~330 prompts costs about what one of 87 does). Every prompt's ids come
    from `data.prompt_ids`, as in training; the VerilogEval prompts with the runner's system message
    in the chat system slot (`report.verilogeval_generate_fn`'s rule)."""
    import torch

    from sft_playbook.evaluate.verilogeval import SYSTEM_PROMPT, build_prompt, load_problems
    from sft_playbook.io import write_jsonl_atomic
    from sft_playbook.paths import resolve
    from sft_playbook.sft import data as D
    from sft_playbook.sft.predict import generate, load_for_inference

    t0 = time.time()
    model, tok = load_for_inference(cfg, which)
    dcfg = cfg["data"]
    rows = D.read_split(resolve(cfg["data_dir"]), cfg["level"], "test")
    tasks = []  # (kind, key, input text, ids)
    for form in forms:
        for r in rows:
            text = D.form_input(r, form) or D.form_input(r, "header")
            tasks.append((form, r, text, D.prompt_ids(tok, text, dcfg)))
    chat = D.uses_chat_template(tok, dcfg)
    probs = load_problems(resolve(cfg["evaluate"]["verilogeval"]["problems_dir"]))
    for p in probs:
        q = build_prompt(p.prompt, shots=0, include_system=not chat)
        tasks.append(("verilogeval", p, q, D.prompt_ids(tok, q, dcfg, SYSTEM_PROMPT if chat else "")))
    # longest prompts first, so the left padding of the one batch is as small as it can be
    order = sorted(range(len(tasks)), key=lambda i: -len(tasks[i][3]))
    pcfg = dict(cfg["predict"], batch_size=len(tasks))
    texts = [None] * len(tasks)
    for i, (t,) in zip(order, generate(model, tok, [tasks[i][3] for i in order], pcfg)):
        texts[i] = t
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    times = {"generate_prompts": len(tasks), "generate_only_s": round(time.time() - t0, 1)}
    for form in forms:
        write_jsonl_atomic(run_dir / f"predictions_{form}.jsonl", [
            {"id": r["id"], "input": text, "reference": r["output"], "prediction": out, "model": which,
             "sample": 0, "prompt_form": form}
            for (kind, r, text, _), out in zip(tasks, texts) if kind == form])
    write_jsonl_atomic(run_dir / "verilogeval_answers.jsonl", [
        {"problem": p.id, "model": which, "answers": [out], "prompt": q}
        for (kind, p, q, _), out in zip(tasks, texts) if kind == "verilogeval"])
    return times


def device(a) -> int:
    out, work = Path(a.out), Path(a.work)
    out.mkdir(parents=True, exist_ok=True)
    results = work / "results"
    results.mkdir(parents=True, exist_ok=True)
    model = str(Path(a.model).resolve()) if Path(a.model).exists() else a.model  # a path, or smollm2-135m / a hub id
    common = [f"model={model}", f"model_cache={work / 'cache'}",
              f"data_dir={Path(a.data).resolve()}", f"output_dir={results}", "wandb.enabled=false",
              f"evaluate.verilogeval.problems_dir={Path(a.problems).resolve()}", *a.extra]
    t_start = time.time()
    summary = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": {}, "common": common}
    try:
        import torch
        import transformers

        summary.update(gpu=torch.cuda.get_device_name(0), torch=torch.__version__, transformers=transformers.__version__)
    except Exception as exc:  # noqa: BLE001
        summary["env_error"] = repr(exc)
    from sft_playbook.sft.model import prepare_model

    t0 = time.time()
    model_dir = prepare_model(_cfg(common, []))
    summary["convert_s"] = round(time.time() - t0, 1)
    print(f"model folder {model_dir} ({summary['convert_s']} s)", flush=True)
    for name in a.plan.split(","):
        if time.time() - t_start > a.budget_s:
            summary["runs"][name] = {"skipped": f"time budget {a.budget_s} s reached"}
            print(f"{name}: skipped (budget)", flush=True)
            continue
        epochs, over = PLANS[name]
        run = {"epochs": epochs, "overrides": over}
        run_dir = results / name
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg = _cfg(common, over + [f"run_name={name}"])
        if epochs:
            steps, items = steps_for(cfg, epochs)
            run.update(max_steps=steps, items_per_epoch=items)
            train_over = over + [f"run_name={name}", f"train.max_steps={steps}",
                                 f"train.warmup_steps={max(1, steps // 20)}",
                                 f"train.eval_every={max(1, steps // 4)}", f"train.save_every={steps}"]
            t0 = time.time()
            with open(run_dir / "train.log", "w") as fh:
                rc = subprocess.run([sys.executable, str(ROOT / "run_sft.py"), "train", *common, *train_over,
                                     "--config", str(ROOT / "configs/sft_gpu.yaml")], cwd=ROOT, stdout=fh,
                                    stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}).returncode
            run.update(train_rc=rc, train_s=round(time.time() - t0, 1))
            mpath = run_dir / "metrics.jsonl"
            if mpath.is_file():
                m = [json.loads(x) for x in mpath.read_text().splitlines()]
                tr = [r for r in m if "step_s" in r]
                run["val_loss"] = [(r["step"], round(r["val_loss"], 4)) for r in m if "val_loss" in r]
                if tr:
                    run["tokens_per_s"] = tr[-1]["tokens_per_s"]
                    run["median_step_s"] = sorted(r["step_s"] for r in tr)[len(tr) // 2]
                    run["first_step_s"] = tr[0]["step_s"]
            if rc != 0:
                summary["runs"][name] = run
                print(name, json.dumps(run), flush=True)
                continue
        t0 = time.time()
        try:
            run.update(generate_all(cfg, "finetuned" if epochs else "base", run_dir, a.eval_forms.split(",")))
        except Exception as exc:  # noqa: BLE001 - keep what the other runs produced
            run["generate_error"] = f"{type(exc).__name__}: {exc}"
        run["generate_s"] = round(time.time() - t0, 1)
        summary["runs"][name] = run
        print(name, json.dumps(run), flush=True)
        shutil.rmtree(run_dir / "model", ignore_errors=True)  # weights stay on the device
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        _bundle(summary, t_start, results, out)  # after every run: a killed job still returns what ran
    _bundle(summary, t_start, results, out)
    print(json.dumps(summary, indent=1), flush=True)
    return 0


def _bundle(summary: dict, t_start: float, results: Path, out: Path) -> None:
    summary["total_s"] = round(time.time() - t_start, 1)
    (results / "real_job_device.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "real_job_device.json").write_text(json.dumps(summary, indent=2) + "\n")
    tmp = out / "real_job.tar.gz.tmp"
    with tarfile.open(tmp, "w:gz") as tar:
        tar.add(results, arcname="results",
                filter=lambda ti: None if ti.name.endswith((".safetensors", ".pt", ".tmp")) else ti)
    os.replace(tmp, out / "real_job.tar.gz")


def judge(a) -> int:
    from sft_playbook.evaluate.verilog_metrics import evaluate_predictions
    from sft_playbook.io import iter_jsonl
    from sft_playbook.sft.report import judge_verilogeval_answers

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(a.tar) as tar:
        tar.extractall(out, filter="data")
    results = out / "results"
    dev = json.loads((results / "real_job_device.json").read_text())
    report, ref_counts = {"device": dev, "runs": {}}, None
    for name, run in dev["runs"].items():
        rd = results / name
        entry = {}
        for form in EVAL_FORMS:
            p = rd / f"predictions_{form}.jsonl"
            if p.is_file():
                rows = [r for _, r in iter_jsonl(p)]
                s = evaluate_predictions(rows, workers=a.workers, timeout_s=10, cycles=100, seed=42,
                                         out_dir=rd / f"eval_{form}", progress=False)
                entry[f"heldout_{form}"] = {k: s[k] for k in ("rows", "compile_rate", "functional_pass_rate",
                                                              "functional_pass_rate_testable", "status_counts")}
        p = rd / "verilogeval_answers.jsonl"
        if p.is_file():
            s = judge_verilogeval_answers(p, a.problems, rd / "eval_verilogeval", workers=a.workers,
                                          progress=False, reference_samples=ref_counts)
            if ref_counts is None:
                ref_counts = {r["problem"]: r["reference_samples"]
                              for _, r in iter_jsonl(rd / "eval_verilogeval" / "verilogeval_problems.jsonl")}
            entry["verilogeval"] = {k: s[k] for k in ("problems", "pass_at_k", "passed_problems", "compile_rate",
                                                      "status_counts")}
        report["runs"][name] = {**{k: v for k, v in run.items() if k not in ("overrides",)}, **entry}
        print(name, json.dumps(entry), flush=True)
    (out / "real_job_report.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["| run | epochs | steps | train s | VerilogEval compile | VerilogEval pass@1 | held-out compile (header) "
             "| held-out pass (header) | held-out compile (ports) | held-out pass (ports) | last val loss |",
             "| --- |" + " --- |" * 10]
    for name, r in report["runs"].items():
        ve = r.get("verilogeval", {})
        h, pt = r.get("heldout_header", {}), r.get("heldout_ports", {})
        pct = lambda x: "" if x is None else f"{100 * x:.1f} %"  # noqa: E731
        lines.append(f"| {name} | {r.get('epochs', '')} | {r.get('max_steps', '')} | {r.get('train_s', '')} | "
                     f"{pct(ve.get('compile_rate'))} | {pct(ve.get('pass_at_k', {}).get('pass@1'))} | "
                     f"{pct(h.get('compile_rate'))} | {pct(h.get('functional_pass_rate'))} | "
                     f"{pct(pt.get('compile_rate'))} | {pct(pt.get('functional_pass_rate'))} | "
                     f"{r['val_loss'][-1][1] if r.get('val_loss') else ''} |")
    (out / "real_job_report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="stage", required=True)
    d = sub.add_parser("device")
    d.add_argument("--data", required=True, help="curated data dir (<level>/{train,validation,test}.jsonl)")
    d.add_argument("--model", default="smollm2-135m", help="the GGUF file, a HF model folder, smollm2-135m or a hub id")
    d.add_argument("--problems", required=True, help="VerilogEval v2 spec-to-rtl folder")
    d.add_argument("--out", required=True)
    d.add_argument("--work", default="/tmp/real_job")
    d.add_argument("--plan", default="base,forms-3ep,header-3ep,header-9ep", help=f"runs, of: {', '.join(PLANS)}")
    d.add_argument("--budget-s", type=float, default=480.0, help="start no new run after this many seconds")
    d.add_argument("--eval-forms", default=",".join(EVAL_FORMS), help="prompt forms of the held-out generation")
    d.add_argument("--extra", nargs="*", default=[], help="more key=value overrides for every run")
    j = sub.add_parser("judge")
    j.add_argument("--tar", required=True)
    j.add_argument("--problems", required=True)
    j.add_argument("--out", required=True)
    j.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    return device(a) if a.stage == "device" else judge(a)


if __name__ == "__main__":
    sys.exit(main())
