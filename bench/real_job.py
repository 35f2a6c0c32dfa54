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
                                        [--plan base,forms-1ep,...] [--budget-s 480] [--deadline-s S]
                                        [--jobs N [--serial-generate]]
       (--jobs N: N runs at once, each its own process; on one H200 six trainings at once paid 1.4x,
       six generations at once did not finish in twice the time of one: use --serial-generate)
       python3 bench/real_job.py judge --tar FILE --problems DIR --out DIR [--workers N]
"""
from __future__ import annotations

import argparse
import contextlib
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

FORMS3 = "data.prompt_forms=[header,ports,description]"
# name -> (epochs over the expanded rows, overrides, share of the train rows). "base": no training.
# Every plan says train.keep_best itself, so a plan means the same whatever configs/sft_gpu.yaml's default.
PLANS = {
    "base": (0, [], 1.0),
    "forms-3ep": (3, [FORMS3, "train.keep_best=false"], 1.0),
    "forms-3ep-best": (3, [FORMS3, "train.keep_best=true"], 1.0),
    "forms-1ep": (1, [FORMS3, "train.keep_best=false"], 1.0),
    "forms-1ep-half": (1, [FORMS3, "train.keep_best=false"], 0.5),
    "forms-1ep-quarter": (1, [FORMS3, "train.keep_best=false"], 0.25),
    "forms-3ep-half": (3, [FORMS3, "train.keep_best=false"], 0.5),
    "forms-3ep-quarter": (3, [FORMS3, "train.keep_best=false"], 0.25),
    "forms-6ep": (6, [FORMS3, "train.keep_best=false"], 1.0),
    "header-3ep": (3, ["data.prompt_forms=[header]", "train.keep_best=false"], 1.0),
    "header-9ep": (9, ["data.prompt_forms=[header]", "train.keep_best=false"], 1.0),
    "spec-1ep": (1, ["data.prompt_forms=[header,spec,description]", "train.keep_best=false"], 1.0),
    "spec-3ep": (3, ["data.prompt_forms=[header,spec,description]", "train.keep_best=false"], 1.0),
    "spec-3ep-seed7": (3, ["data.prompt_forms=[header,spec,description]", "train.keep_best=false", "seed=7"], 1.0),
    "forms4-2ep-best": (2, ["data.prompt_forms=[header,ports,spec,description]", "train.keep_best=true"], 1.0),
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


@contextlib.contextmanager
def _generation_turn(results: Path, serial: bool):
    """With `serial`, one generation at a time among the runs of a device job (a file lock): on
    one H200, six concurrent generations of 356 prompts x 1,280 tokens kept the GPU 100 % busy and
    none finished in 330 s, where one alone takes 169 s (docs/benchmarks.md, 2026-11-30 20:53)."""
    if not serial:
        yield
        return
    import fcntl

    with open(results / ".generate.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_plan(name: str, common: list[str], results: Path, eval_forms: list[str],
             serial_generate: bool = False) -> dict:
    """Train plan `name` (run_sft.py train in a subprocess, log in <run>/train.log) and generate with
    the result; returns the run's record (timings, validation curve, kept-best step)."""
    epochs, over, share = PLANS[name]
    run = {"epochs": epochs, "overrides": over, "train_rows_share": share}
    run_dir = results / name
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = _cfg(common, over + [f"run_name={name}"])
    if share < 1.0:
        from sft_playbook.paths import resolve
        from sft_playbook.sft import data as D

        n = len(D.read_split(resolve(cfg["data_dir"]), cfg["level"], "train"))
        over = over + [f"data.max_train_samples={max(1, round(share * n))}"]  # the split's first rows
        run.update(train_rows=max(1, round(share * n)), overrides=over)
        cfg = _cfg(common, over + [f"run_name={name}"])
    if epochs:
        steps, items = steps_for(cfg, epochs)
        per_epoch = max(1, math.ceil(items / int(cfg["train"]["global_batch_size"])))
        run.update(max_steps=steps, items_per_epoch=items)
        train_over = over + [f"run_name={name}", f"train.max_steps={steps}",
                             f"train.warmup_steps={max(1, steps // 20)}",
                             f"train.eval_every={max(1, per_epoch // 4)}", f"train.save_every={steps}"]
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
        summ = run_dir / "train_summary.json"
        if summ.is_file():
            run["kept_best"] = json.loads(summ.read_text()).get("kept_best")
        (run_dir / "run.json").write_text(json.dumps(run, indent=1) + "\n")  # kept if generation is stopped
        if rc != 0:
            return run
    t0 = time.time()
    try:
        with _generation_turn(results, serial_generate):
            run["generate_wait_s"] = round(time.time() - t0, 1)
            run.update(generate_all(cfg, "finetuned" if epochs else "base", run_dir, eval_forms))
    except Exception as exc:  # noqa: BLE001 - keep what the other runs produced
        run["generate_error"] = f"{type(exc).__name__}: {exc}"
    run["generate_s"] = round(time.time() - t0, 1)
    for heavy in ("model", "checkpoints", "best"):  # weights stay on the device
        shutil.rmtree(run_dir / heavy, ignore_errors=True)
    return run


def _common(a, work: Path) -> list[str]:
    model = str(Path(a.model).resolve()) if Path(a.model).exists() else a.model  # a path, or smollm2-135m / a hub id
    return [f"model={model}", f"model_cache={work / 'cache'}",
            f"data_dir={Path(a.data).resolve()}", f"output_dir={work / 'results'}", "wandb.enabled=false",
            f"evaluate.verilogeval.problems_dir={Path(a.problems).resolve()}", *a.extra]


def one(a) -> int:
    """One plan in its own process (device --jobs N runs N of these at once): writes <run>/run.json."""
    work = Path(a.work)
    run = run_plan(a.name, _common(a, work), work / "results", a.eval_forms.split(","), a.serial_generate)
    (work / "results" / a.name / "run.json").write_text(json.dumps(run, indent=1) + "\n")
    print(a.name, json.dumps(run), flush=True)
    return 0


def device(a) -> int:
    """Convert once, then the planned runs, `--jobs` of them at once (each its own process: a 135M
    model leaves most of one H200 idle, in training and even more in decoding, which is bound by
    per-step overhead). No run starts after --budget-s; runs still going at --deadline-s are
    stopped. The bundle is rewritten after every finished run, so a killed job still returns them."""
    import signal

    out, work = Path(a.out), Path(a.work)
    out.mkdir(parents=True, exist_ok=True)
    results = work / "results"
    results.mkdir(parents=True, exist_ok=True)
    common = _common(a, work)
    t_start = time.time()
    summary = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": {}, "common": common,
               "jobs": a.jobs}
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
    todo, running = list(a.plan.split(",")), {}
    for name in todo:
        if name not in PLANS:
            raise SystemExit(f"--plan: unknown run {name!r} (known: {', '.join(PLANS)})")
    args = ["--data", a.data, "--model", a.model, "--problems", a.problems, "--work", str(work),
            "--eval-forms", a.eval_forms, *(["--serial-generate"] if a.serial_generate else []), "--extra", *a.extra]
    while todo or running:
        now = time.time() - t_start
        while todo and len(running) < a.jobs:
            name = todo.pop(0)
            if now > a.budget_s:
                summary["runs"][name] = {"skipped": f"time budget {a.budget_s} s reached"}
                print(f"{name}: skipped (budget)", flush=True)
                continue
            log = open(results / f"{name}.job.log", "w")  # noqa: SIM115 - closed when the run ends
            running[name] = (subprocess.Popen([sys.executable, __file__, "one", name, *args], cwd=ROOT, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True,
                                              env={**os.environ, "PYTHONUNBUFFERED": "1"}), log, time.time())
            print(f"{name}: started at {now:.0f} s", flush=True)
        time.sleep(1)
        late = a.deadline_s and time.time() - t_start > a.deadline_s
        if late:
            todo.clear()
            for proc, _, _ in running.values():  # all at once, then one bundle
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
        finished = False
        for name, (proc, log, t_run) in list(running.items()):
            if (proc.wait() if late else proc.poll()) is None:
                continue
            log.close()
            rj = results / name / "run.json"  # after training (a stopped run keeps its training record)
            run = json.loads(rj.read_text()) if rj.is_file() else {}
            if proc.returncode != 0:
                run["failed"] = f"exit code {proc.returncode}" + (" (stopped at --deadline-s)" if late else "")
            run["wall_s"] = round(time.time() - t_run, 1)
            summary["runs"][name] = run
            del running[name]
            print(name, json.dumps(run), flush=True)
            finished = True
        if finished:
            _bundle(summary, t_start, results, out)
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
    library = None
    if a.library:
        from sft_playbook.sft.report import module_library
        library = module_library(Path(a.library), a.level)
        report["module_library"] = {"data": str(a.library), "level": a.level,
                                    **(library.summary() if library is not None else {})}
    for name, run in dev["runs"].items():
        if a.runs and name not in a.runs.split(","):
            continue
        rd = results / name
        entry = {}
        for form in EVAL_FORMS:
            p = rd / f"predictions_{form}.jsonl"
            if p.is_file():
                rows = [r for _, r in iter_jsonl(p)]
                s = evaluate_predictions(rows, workers=a.workers, timeout_s=10, cycles=100, seed=42,
                                         out_dir=rd / f"eval_{form}", progress=False, library=library)
                entry[f"heldout_{form}"] = {k: s[k] for k in ("rows", "compile_rate", "functional_pass_rate",
                                                              "functional_pass_rate_testable", "status_counts",
                                                              "excluded")}
        p = rd / "verilogeval_answers.jsonl"
        if p.is_file() and not a.skip_verilogeval:
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
             "| held-out pass (header) | held-out compile (ports) | held-out pass (ports) | last val loss | kept best (step: val) |",
             "| --- |" + " --- |" * 11]
    for name, r in report["runs"].items():
        ve = r.get("verilogeval", {})
        h, pt = r.get("heldout_header", {}), r.get("heldout_ports", {})
        kb = r.get("kept_best")
        kept = f"{kb['step']}: {kb['val_loss']:.4f}" if kb else ""
        pct = lambda x: "" if x is None else f"{100 * x:.1f} %"  # noqa: E731
        lines.append(f"| {name} | {r.get('epochs', '')} | {r.get('max_steps', '')} | {r.get('train_s', '')} | "
                     f"{pct(ve.get('compile_rate'))} | {pct(ve.get('pass_at_k', {}).get('pass@1'))} | "
                     f"{pct(h.get('compile_rate'))} | {pct(h.get('functional_pass_rate'))} | "
                     f"{pct(pt.get('compile_rate'))} | {pct(pt.get('functional_pass_rate'))} | "
                     f"{r['val_loss'][-1][1] if r.get('val_loss') else ''} | {kept} |")
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
    d.add_argument("--plan", default="base,spec-3ep", help=f"runs, of: {', '.join(PLANS)}")
    d.add_argument("--budget-s", type=float, default=480.0, help="start no new run after this many seconds")
    d.add_argument("--deadline-s", type=float, default=0.0, help="stop runs still going after this many seconds (0: never)")
    d.add_argument("--jobs", type=int, default=1, help="runs at once (separate processes on the one GPU)")
    d.add_argument("--serial-generate", action="store_true",
                   help="with --jobs: trainings at once, generations one at a time")
    d.add_argument("--eval-forms", default=",".join(EVAL_FORMS), help="prompt forms of the held-out generation")
    d.add_argument("--extra", nargs="*", default=[], help="more key=value overrides for every run")
    o = sub.add_parser("one", help="one plan (used by device --jobs)")
    o.add_argument("name", choices=sorted(PLANS))
    for arg in ("--data", "--model", "--problems", "--work", "--eval-forms"):
        o.add_argument(arg, required=True)
    o.add_argument("--serial-generate", action="store_true")
    o.add_argument("--extra", nargs="*", default=[])
    j = sub.add_parser("judge")
    j.add_argument("--tar", required=True)
    j.add_argument("--problems", required=True)
    j.add_argument("--out", required=True)
    j.add_argument("--workers", type=int, default=2)
    j.add_argument("--library", default=None,
                   help="curated data dir whose rows' modules the held-out references may instantiate "
                        "(evaluate.module_library; default: none)")
    j.add_argument("--level", default="high_level", help="level folder of --library")
    j.add_argument("--runs", default=None, help="judge only these runs (comma-separated)")
    j.add_argument("--skip-verilogeval", action="store_true", help="held-out rows only")
    a = ap.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    return {"device": device, "one": one, "judge": judge}[a.stage](a)


if __name__ == "__main__":
    sys.exit(main())
