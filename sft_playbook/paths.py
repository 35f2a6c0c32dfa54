"""Repository-relative paths and run folders.

- `resolve(path)`: every relative path in a config is taken from REPO_ROOT.
- `run_dir(settings)`: `<output_dir>/<run_name>` of the SFT settings, the folder of one run.
- `derived_run_name(file_cfg, cfg)`: the run name of a config that differs from its file: the file's
  `run_name` plus the changed keys (`smollm2-135m-cpu_method-lora_max_steps-3`), so a run with
  overrides never writes into another run's folder. Keys that only continue, inspect or re-score
  the same trained model (`RUN_NEUTRAL_KEYS`: resume, predict.*, evaluate.*, ...) do not count.
- `discard_checkpoints(run)`: removes a run's earlier checkpoints with a warning that says what
  is removed and how to keep it (resume=true); nothing is deleted silently.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any


REPO_ROOT = Path(os.environ.get("SFT_PLAYBOOK_ROOT", Path(__file__).resolve().parent.parent))

log = logging.getLogger("sft_playbook")

#: config keys (a section name covers its keys) that do not change the trained model: a run with
#: only these overridden stays in the config's own run folder (continue, predict again, re-score).
RUN_NEUTRAL_KEYS = ("run_name", "output_dir", "model_cache", "resume", "predict", "evaluate", "wandb",
                    "train.stop_at_step", "train.threads", "train.eval_every", "train.save_every",
                    "train.keep_checkpoints")
#: a derived name longer than this is shortened to `<run_name>_<hash of the changes>`
MAX_RUN_NAME = 96


def resolve(path: str | os.PathLike) -> Path:
    """Absolute paths stay as they are; relative ones are taken from the repository root.

    Returns:
        ``path`` with ``~`` expanded; absolute as given, else ``REPO_ROOT / path`` (not resolved:
        symlinks and ``..`` are kept, and the path need not exist).
    """
    p = Path(path).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p


def run_dir(settings: Any) -> Path:
    """`<output_dir>/<run_name>` (absolute) of the SFT settings (``settings.SftSettings``, or an SFT
    config mapping): the folder of one run. THE place that names it (train, predict, evaluate,
    the NeMo backend and the plan all ask here).

    Returns:
        ``resolve(output_dir) / run_name``, whether or not the folder exists yet.
    """
    return resolve(settings["output_dir"]) / str(settings["run_name"])


def _flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(cfg, dict):
        out: dict[str, Any] = {}
        for k, v in cfg.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: cfg}


def _neutral(key: str) -> bool:
    return any(key == n or key.startswith(n + ".") for n in RUN_NEUTRAL_KEYS)


def config_changes(file_cfg: dict[str, Any], cfg: dict[str, Any]) -> list[tuple[str, Any]]:
    """[(dotted key, new value)] where cfg differs from file_cfg, run-neutral keys left out, in cfg's order.

    Returns:
        ``(dotted key, value in cfg)`` for each leaf key that ``cfg`` adds or changes, in ``cfg``'s
        order, then ``(dotted key, None)`` for each leaf key of ``file_cfg`` that ``cfg`` lacks.
        Keys under ``RUN_NEUTRAL_KEYS`` are left out; ``[]`` when the configs train the same model.
    """
    before, after = _flatten(file_cfg), _flatten(cfg)
    return [(k, v) for k, v in after.items() if not _neutral(k) and (k not in before or before[k] != v)] + \
        [(k, None) for k in before if k not in after and not _neutral(k)]


def _slug(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = "+".join(map(str, value))
    text = re.sub(r"[^A-Za-z0-9.+-]+", "-", str(value)).strip("-.")
    return text or "none"


def derived_run_name(file_cfg: dict[str, Any], cfg: dict[str, Any]) -> str:
    """The config file's run_name, plus `_<key>-<value>` for each change that alters the trained model.

    The key is its last dotted part unless two changed keys share it. Deterministic (every rank
    of a torchrun job, and every later step of the same command line, finds the same folder).
    Longer than MAX_RUN_NAME characters: `<run_name>_<10 hex digits of sha1 of the changes>`.

    Returns:
        The run folder's name, e.g. ``smollm2-135m-cpu_method-lora_max_steps-3``; the file's own
        ``run_name`` (or the settings' default) unchanged when nothing but run-neutral keys differ.
    """
    from .settings import SftSettings  # here, not at the top: the container launcher is stdlib-only

    base = str(file_cfg.get("run_name", SftSettings.model_fields["run_name"].default))
    changes = config_changes(file_cfg, cfg)
    if not changes:
        return base
    leaves = [k.rsplit(".", 1)[-1] for k, _ in changes]
    parts = [f"{leaf if leaves.count(leaf) == 1 else k.replace('.', '-')}-{_slug(v)}"
             for (k, v), leaf in zip(changes, leaves)]
    name = "_".join([base, *parts])
    if len(name) > MAX_RUN_NAME:
        digest = hashlib.sha1(repr(sorted((k, repr(v)) for k, v in changes)).encode()).hexdigest()[:10]
        name = f"{base}_{digest}"
    return name


def discard_checkpoints(run: Path) -> None:
    """Remove `<run>/checkpoints` of an earlier run before a fresh start, saying so (never silently)."""
    ckpt = run / "checkpoints"
    found = sorted(p.name for p in ckpt.glob("step_*")) if ckpt.is_dir() else []
    if not ckpt.exists():
        return
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(ckpt.stat().st_mtime))
    log.warning("%s holds checkpoints of an earlier run (%s, saved %s): this run starts from step 0 and "
                "replaces them (to continue them instead: resume=true; to keep them: another run_name=...)",
                ckpt, ", ".join(found) or "none complete", when)
    shutil.rmtree(ckpt)
