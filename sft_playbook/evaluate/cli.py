"""`python evaluate.py <step>`: the standalone Verilog evaluation (config: configs/eval.yaml)."""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

from sft_playbook.paths import resolve
from sft_playbook.verilog.sandbox import iverilog_available

from ..io import iter_jsonl, read_jsonl, write_jsonl_atomic
from ..settings import EvalSettings, build

log = logging.getLogger("sft_playbook.evaluate")
STEPS = ("predictions", "verilogeval", "references", "prompts", "download")


def _need_iverilog() -> bool:
    if not iverilog_available():
        log.error("Icarus Verilog (iverilog, vvp) is not installed: run 'bash test.sh' or "
                  "'sudo apt-get install iverilog' first")
        return False
    return True


def _ve_kwargs(cfg: EvalSettings) -> dict:
    ve = cfg.verilogeval
    return dict(n_samples=ve.n_samples, k_list=list(ve.k_list), shots=ve.shots, workers=cfg.workers,
                out_dir=resolve(cfg.out_dir), timeout_s=ve.timeout_s, problems=ve.problems,
                include_system=ve.include_system, max_answer_chars=ve.max_answer_chars)


def answers_generate_fn(path: Path, problems_dir: Path, problems=None):
    """A generate_fn that serves answers from a jsonl file ({"problem", "answer"} rows)."""
    from .verilogeval import build_prompt, load_problems  # noqa: F401

    by_problem: dict[str, list[str]] = defaultdict(list)
    for i, row in iter_jsonl(path):
        if not isinstance(row.get("problem"), str) or not isinstance(row.get("answer"), str):
            raise ValueError(f"{path}:{i}: each row needs string fields 'problem' and 'answer'")
        by_problem[row["problem"]].append(row["answer"])
    probs = load_problems(problems_dir, problems)

    def generate(prompts, n):
        outs = []
        for p in probs:
            got = by_problem.get(p.id) or next((v for k, v in by_problem.items() if p.id.startswith(k + "_")), [])
            if len(got) < n:
                raise ValueError(f"{path}: problem {p.id} has {len(got)} answer(s), need n_samples={n}")
            outs.append(got[:n])
        return outs
    return generate


def run(cfg: dict | EvalSettings, step: str) -> int:
    """Run one step of ``evaluate.py``: ``download``, ``prompts``, ``predictions``, ``references`` or
    ``verilogeval``; the summary is printed as JSON on stdout.

    Args:
        cfg: the evaluation settings (``configs/eval.yaml`` plus overrides; a mapping is checked first).
        step: the step name.

    Returns:
        The exit code: 0 done, 1 a missing input or tool (iverilog, the predictions file, a model
        name not in it), 2 a missing setting or an unknown step.
    """
    from . import verilogeval as ve_mod
    from .verilog_metrics import evaluate_predictions

    cfg = build("eval", cfg)
    out_dir = resolve(cfg.out_dir)
    if step == "download":
        from .download import download_problems
        d = cfg.download
        target = download_problems(resolve(d.dest), url=d.url, ref=d.ref, timeout_s=d.timeout_s)
        print(f"VerilogEval problems installed in {target}")
        return 0
    if step == "prompts":
        ve = cfg.verilogeval
        probs = ve_mod.load_problems(resolve(ve.problems_dir), ve.problems)
        rows = [{"problem": p.id, "prompt": ve_mod.build_prompt(p.prompt, shots=ve.shots,
                                                                include_system=ve.include_system)}
                for p in probs]
        write_jsonl_atomic(out_dir / "verilogeval_prompts.jsonl", rows)
        print(f"{len(rows)} prompts written to {out_dir / 'verilogeval_prompts.jsonl'}")
        return 0
    if not _need_iverilog():
        return 1
    if step == "predictions":
        p = cfg.predictions
        path = resolve(p.file)
        if not path.is_file():
            log.error("predictions file not found: %s (set predictions.file=...)", path)
            return 1
        rows = read_jsonl(path)
        groups: dict = defaultdict(list)
        for r in rows:
            groups[r.get("model")].append(r)
        if p.model is not None:
            if p.model not in groups:
                log.error("%s: no rows with model=%r (models there: %s)", path, p.model, sorted(map(str, groups)))
                return 1
            groups = {p.model: groups[p.model]}
        library = None
        if p.module_library is not None:
            from ..sft.report import module_library
            lib_dir = resolve(p.module_library)
            if not lib_dir.is_dir():
                log.error("predictions.module_library: %s is not a folder (a curated level folder, e.g. "
                          "data/merged/high_level)", lib_dir)
                return 1
            library = module_library(lib_dir.parent, lib_dir.name)
            if library is None:
                log.error("predictions.module_library: no train/validation/test.jsonl in %s", lib_dir)
                return 1
        kw = dict(workers=cfg.workers, timeout_s=p.timeout_s, cycles=p.cycles, seed=p.seed,
                  reset_cycles=p.reset_cycles, reset_prob=p.reset_prob, reset_pulses=p.reset_pulses,
                  max_cycles=p.max_cycles, max_answer_chars=p.max_answer_chars, library=library)
        if len(groups) == 1:
            summary = evaluate_predictions(next(iter(groups.values())), out_dir=out_dir, **kw)
        else:  # run_sft.py writes base and finetuned rows into one file: one result folder per model
            summary = {str(m): evaluate_predictions(g, out_dir=out_dir / str(m), **kw) for m, g in groups.items()}
    elif step == "references":
        summary = ve_mod.score_references(resolve(cfg.verilogeval.problems_dir), **_ve_kwargs(cfg))
    elif step == "verilogeval":
        ve = cfg.verilogeval
        if not ve.answers:
            log.error("set verilogeval.answers=<jsonl of {problem, answer}> (or run run_sft.py evaluate "
                      "with evaluate.verilogeval.enabled=true to generate with the model)")
            return 2
        gen = answers_generate_fn(resolve(ve.answers), resolve(ve.problems_dir), ve.problems)
        summary = ve_mod.run_benchmark(gen, resolve(ve.problems_dir), **_ve_kwargs(cfg))
    else:
        log.error("choose a step: %s", ", ".join(STEPS))
        return 2
    print(json.dumps(summary, indent=2))
    return 0


def main(cfg: dict | EvalSettings, args) -> int:
    """``evaluate.py``'s entry: ``args.step``, or for ``all`` the predictions step and, when
    ``verilogeval.answers`` is set, the VerilogEval step. A ValueError, OSError or RuntimeError is
    logged as one line.

    Returns:
        The exit code (the largest of the steps'; 1 after such an error).
    """
    step = args.step
    cfg = build("eval", cfg)
    try:
        if step == "all":  # what a fine-tuning run produces: predictions, and VerilogEval answers when given
            steps = ["predictions"] + (["verilogeval"] if cfg.verilogeval.answers else [])
            log.info("evaluate.py all = %s", " + ".join(steps))
            return max(run(cfg, s) for s in steps)
        return run(cfg, step)
    except (ValueError, OSError, RuntimeError) as exc:
        log.error("%s", exc)
        return 1
