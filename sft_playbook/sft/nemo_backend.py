"""SFT with NeMo 2 (`backend: nemo`): the course's flow, on the same config, data and outputs as
the native backend.

    convert   HF model (hub id, local folder or smollm2-135m, prepared by model.prepare_model)
              -> NeMo checkpoint under nemo.cache_dir, once (llm.import_ckpt), then a weight check
    train     data/merged/<level>/ -> results/<run>/nemo/data/{training,validation,test}.jsonl
              -> llm.finetune (Megatron TP/PP, Adam, cosine, bf16) -> checkpoints in
              results/<run>/nemo/logs, metrics.jsonl; then llm.export_ckpt -> results/<run>/model (HF)
    predict   NeMo's generate on the test split -> results/<run>/predictions.jsonl (same schema)
    evaluate  the shared evaluation (report.evaluate_run)

Each NeMo phase runs in its own process (sft_playbook.sft.nemo_worker), under torchrun when
nemo.devices > 1, so Megatron's process groups never outlive a phase.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from ..cli import run_steps
from ..io import read_json, read_jsonl, write_text_atomic
from ..paths import REPO_ROOT, resolve
from ..settings import SftSettings, build
from . import data as D
from .nemo_plan import (NemoConfigError, check_parallel_fits, fusions_enabled, llama_config_kwargs, llama_param_count,
                        nemo_settings, prepare_dataset_root, read_hf_config, run_paths, stage_hf_folder, worker_command)

log = logging.getLogger(__name__)


class NemoRunError(RuntimeError):
    """A NeMo worker phase exited with an error (its own output says why)."""


def nemo_available() -> tuple[bool, str]:
    """Whether NeMo 2 with nemo.collections.llm is installed (found, not imported: importing costs
    tens of seconds, and each phase imports it in its own process anyway).

    Returns:
        ``(True, nemo_toolkit's version or "(version unknown)")``, or ``(False, why not)``, e.g.
        ``"no module nemo.collections.llm"``.
    """
    import importlib.util
    from importlib import metadata

    try:
        if importlib.util.find_spec("nemo") is None or importlib.util.find_spec("nemo.collections.llm") is None:
            return False, "no module nemo.collections.llm"
    except (ImportError, ValueError) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    try:
        return True, metadata.version("nemo_toolkit")
    except metadata.PackageNotFoundError:
        return True, "(version unknown)"


def make_job(cfg: SftSettings | dict, s: dict, hf_dir: Path) -> dict:
    """The job description the NeMo worker phases read (``job.json``): run name, model folder and
    config, settings, model config kwargs, paths, models to predict with.

    Args:
        cfg: the SFT config.
        s: the checked NeMo settings (``nemo_plan.nemo_settings``).
        hf_dir: the prepared Hugging Face model folder.

    Returns:
        A JSON-ready dict: ``run_name``, ``hf_dir``, ``hf_config`` (the model's config.json),
        ``settings`` (``s``), ``model_config`` (Llama config kwargs; bfloat16 for precision bf16 or auto, else float32),
        ``paths`` (name -> path text, from ``nemo_plan.run_paths``), ``predict_models`` and
        ``test_rows`` (empty until ``step_data`` fills it).

    Raises:
        NemoConfigError: the model's config cannot be read or the parallel layout does not fit it.
    """
    cfg = build("sft", cfg)
    hf = read_hf_config(hf_dir)
    check_parallel_fits(hf, s)
    paths = run_paths(cfg, hf_dir)
    dtype = "bfloat16" if s["precision"] in ("bf16", "auto") else "float32"
    return {
        "run_name": cfg.run_name,
        "hf_dir": str(hf_dir),
        "hf_config": hf,
        "settings": s,
        "model_config": llama_config_kwargs(hf, fusions_enabled(s["fusions"]), dtype=dtype),
        "paths": {k: str(v) for k, v in paths.items()},
        "predict_models": list(cfg.predict.models),
        "test_rows": [],
    }


def write_job(job: dict) -> Path:
    """Write the job to ``<nemo_dir>/job.json`` (atomically) and return the path.

    Returns:
        The path of the written ``job.json``.

    Raises:
        OutputError: the file cannot be written.
    """
    path = Path(job["paths"]["nemo_dir"]) / "job.json"
    write_text_atomic(path, json.dumps(job, indent=1, default=str))
    return path


def run_phase(phase: str, job: dict) -> None:
    """Run one worker phase (``import``, ``verify``, ``train``, ``predict``, ``export``) in its own
    process (torchrun for train/predict/time when ``world_size`` > 1), from the repository root.

    Raises:
        NemoRunError: the phase exited with a non-zero code.
    """
    cmd = worker_command(phase, write_job(job), job["settings"]["world_size"])
    log.info("NeMo %s: %s", phase, " ".join(cmd))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    rc = subprocess.call(cmd, cwd=str(REPO_ROOT), env=env)
    if rc != 0:
        raise NemoRunError(f"NeMo {phase} failed (exit code {rc}); its output is above")


def base_checkpoint_ready(path: Path) -> bool:
    """True when ``path`` holds a complete converted NeMo checkpoint (context and weights metadata).

    Returns:
        Whether ``path/context/`` is a folder and ``path/weights/.metadata`` a file.
    """
    return (path / "context").is_dir() and (path / "weights" / ".metadata").is_file()


def step_convert(cfg: dict, job: dict) -> None:
    """Stage the Hugging Face folder and convert it to a NeMo checkpoint (import, then verify),
    unless a complete one is already cached.

    Raises:
        NemoRunError: a phase failed.
    """
    paths = {k: Path(v) for k, v in job["paths"].items()}
    stage_hf_folder(Path(job["hf_dir"]), paths["staged_hf"])
    if base_checkpoint_ready(paths["base_ckpt"]):
        log.info("NeMo checkpoint of %s: reusing %s", job["hf_dir"], paths["base_ckpt"])
        return
    log.info("converting %s to a NeMo checkpoint (once) -> %s", job["hf_dir"], paths["base_ckpt"])
    run_phase("import", job)
    run_phase("verify", job)


def step_data(cfg: SftSettings | dict, job: dict) -> dict[str, int]:
    """Write the NeMo dataset folder from the curated splits (prompts built with the model's tokenizer)
    and keep the test rows in the job for prediction.

    Returns:
        Rows written per split.

    Raises:
        DataError: a split is missing or malformed.
    """
    from .model import load_tokenizer

    cfg = build("sft", cfg)
    stage_hf_folder(Path(job["hf_dir"]), Path(job["paths"]["staged_hf"]))
    dcfg, data_dir = cfg.data, resolve(cfg.data_dir)
    rows = {
        "train": D.read_split(data_dir, cfg.level, "train", dcfg.max_train_samples),
        "validation": D.read_split(data_dir, cfg.level, "validation", dcfg.max_val_samples),
        "test": D.read_split(data_dir, cfg.level, cfg.predict.split, cfg.predict.max_samples),
    }
    tok = load_tokenizer(Path(job["paths"]["staged_hf"]))  # readable by transformers 4.x and 5.x
    counts = prepare_dataset_root(rows, lambda text: D.build_prompt(tok, text, dcfg), Path(job["paths"]["dataset_root"]))
    job["test_rows"] = rows["test"]
    log.info("NeMo data folder %s: %s", job["paths"]["dataset_root"], counts)
    return counts


def predict_with_nemo(job: dict) -> Path:
    """One NeMo generate process per model (base, finetuned), then one predictions.jsonl.

    Returns:
        The path of ``results/<run>/predictions.jsonl``, holding the rows of every model in
        ``job["predict_models"]`` order.

    Raises:
        NemoConfigError: a ``predict.models`` entry is not ``base`` or ``finetuned``.
        NemoRunError: a predict phase failed.
    """
    from .predict import write_predictions

    rows = []
    for which in job["predict_models"]:
        if which not in ("base", "finetuned"):
            raise NemoConfigError(f"predict.models entries must be 'base' or 'finetuned', not {which!r}")
        part = Path(job["paths"]["nemo_dir"]) / f"predictions-{which}.jsonl"
        if part.exists():
            part.unlink()
        run_phase("predict", {**job, "predict_which": which})
        rows += read_jsonl(part)
    path = Path(job["paths"]["run"]) / "predictions.jsonl"
    write_predictions(path, rows)
    log.info("predictions: %s (%d rows)", path, len(rows))
    return path


def time_training(cfg: dict, hf_dir: Path, warmup_steps: int = 5) -> dict:
    """NeMo's training throughput for the model shape in hf_dir's config.json (weights, if any, are
    not read: a random init), on the config's data, batch sizes, precision and parallel layout, for
    train.max_steps steps without validation or checkpoints (nemo_worker.phase_time). Returns what
    phase_time wrote to results/<run>/nemo_timing.json: per-step rows and the summary of the steps
    after warmup_steps (real tokens/s per GPU, MFU).

    Returns:
        The parsed ``nemo_timing.json``: ``summary`` (``nemo_worker.timing_summary``: seconds,
        real/padded tokens, tokens_per_s and tokens_per_s_per_gpu, mfu as a fraction of 989 TFLOP/s),
        ``settings``, ``model_config`` and the per-step ``rows``.

    Raises:
        NemoConfigError: ``train.max_steps`` is not above ``warmup_steps``, or the NeMo settings or the
            parallel layout are wrong for the model.
        NemoRunError: the timing phase failed.
    """
    s = nemo_settings(cfg)
    if s["max_steps"] <= warmup_steps:
        raise NemoConfigError(f"train.max_steps ({s['max_steps']}) must exceed the {warmup_steps} warm-up steps")
    s["limit_val_batches"] = 0  # no validation: only training steps are timed
    job = make_job(cfg, s, hf_dir)
    job["timing"] = {"warmup_steps": warmup_steps, "n_params": llama_param_count(job["hf_config"])}
    step_data(cfg, job)
    path = Path(job["paths"]["run"]) / "nemo_timing.json"
    if path.exists():
        path.unlink()
    run_phase("time", job)
    return read_json(path)


def main(cfg: SftSettings | dict, steps: list[str], args=None) -> int:
    """Run the steps (``convert``, ``train``, ``predict``, ``evaluate``) with NeMo 2.

    Returns:
        The exit code: 0, or 2 after a NeMo config, NeMo run, model or data error (logged as one line).

    Raises:
        ValueError: an unknown step name.
    """  # noqa: DOC501 - the NemoConfigError raised here is caught below and becomes exit code 2
    from .model import ModelError, prepare_model

    cfg = build("sft", cfg)

    try:
        s = nemo_settings(cfg)
        if any(st in steps for st in ("convert", "train", "predict")):
            ok, info = nemo_available()
            if not ok:
                raise NemoConfigError(
                    "backend=nemo needs NeMo 2 (nemo.collections.llm), which is not importable here "
                    f"({info}). Use the NeMo container (bash run_sft.sh --container) or install the known good set: "
                    "pip install -e '.[nemo]'")
            log.info("NeMo %s; TransformerEngine %s", info, "present" if fusions_enabled("auto") else
                     "absent (fusions off; RMSNorm weights copied by the converter)")
        hf_dir = prepare_model(cfg)
        job = make_job(cfg, s, hf_dir)
    except (NemoConfigError, NemoRunError, ModelError, D.DataError) as exc:
        log.error("%s", exc)
        return 2

    def train() -> None:
        step_convert(cfg, job)
        step_data(cfg, job)
        run_phase("train", job)
        if s["export_hf"]:
            run_phase("export", job)

    def predict() -> None:
        if s["predict_with"] == "hf":
            from .predict import predict_run

            predict_run(cfg)
        else:
            step_convert(cfg, job)
            step_data(cfg, job)
            predict_with_nemo(job)

    def evaluate() -> None:
        from .report import evaluate_run

        evaluate_run(cfg)

    return run_steps(steps, {"convert": lambda: step_convert(cfg, job), "train": train, "predict": predict,
                             "evaluate": evaluate}, (NemoConfigError, NemoRunError, ModelError, D.DataError),
                     label=" (NeMo)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(2)
