"""Where training numbers go: a metrics jsonl, W&B (offline unless WANDB_API_KEY is set), a PNG."""
from __future__ import annotations

import json
import logging
import os
from io import BytesIO
from pathlib import Path

from ..io import read_jsonl, write_bytes_atomic, write_jsonl_atomic
from ..settings import SftSettings, WandbSettings, build

log = logging.getLogger(__name__)


class Tracker:
    """Rank-0 sink for metric rows {"step", ...}. On resume, rows after the resumed step are dropped."""

    def __init__(self, run_dir: Path, cfg: SftSettings | dict, resume_step: int | None, enabled: bool = True):
        cfg = build("sft", cfg)
        self.enabled = enabled
        self.path = run_dir / "metrics.jsonl"
        self.wandb = None
        if not enabled:
            return
        rows = read_metrics(self.path) if resume_step is not None else []
        rows = [r for r in rows if r.get("step", 0) <= (resume_step or 0)]
        write_jsonl_atomic(self.path, rows)
        self._fh = self.path.open("a", encoding="utf-8")
        if cfg.wandb.enabled:
            self.wandb = _start_wandb(run_dir, cfg, cfg.wandb)

    def log(self, row: dict) -> None:
        """Append one metrics row (``{"step", ...}``) to ``metrics.jsonl`` (flushed) and to W&B when on."""
        if not self.enabled:
            return
        self._fh.write(json.dumps(row) + "\n")
        self._fh.flush()
        if self.wandb is not None:
            self.wandb.log({k: v for k, v in row.items() if k != "step"}, step=row["step"])

    def close(self) -> None:
        """Close the metrics file and finish the W&B run."""
        if not self.enabled:
            return
        self._fh.close()
        if self.wandb is not None:
            self.wandb.finish()


def _start_wandb(run_dir: Path, cfg: SftSettings, wcfg: WandbSettings):
    try:
        import wandb
    except ImportError:
        log.warning("wandb is not installed: W&B logging is off (metrics.jsonl and the plot are still written)")
        return None
    mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    # W&B's own banner and end-of-run summary stay off the console (silent); this line says it all.
    log.info("W&B: %s, project %s, files in %s%s", mode, wcfg.project, run_dir / "wandb",
             "" if mode != "offline" else " (upload later: wandb sync " + str(run_dir / "wandb") + "/offline-run-*)")
    try:
        return wandb.init(project=wcfg.project, name=cfg.run_name, dir=str(run_dir), mode=mode,
                          config=cfg.to_dict(), resume="allow",
                          settings=wandb.Settings(silent=True, console="off"))
    except Exception as exc:  # a broken W&B set-up must not stop training
        log.warning("W&B could not start (%s: %s); continuing without it", type(exc).__name__, exc)
        return None


def read_metrics(path: Path) -> list[dict]:
    """The rows of a ``metrics.jsonl`` file (none when it does not exist).

    Returns:
        The rows in file order (``{"step", "train_loss"?, "val_loss"?, "lr"?, ...}``); ``[]`` when the
        file does not exist.

    Raises:
        InputError: a line is not valid UTF-8 or not a JSON object (``file:line`` named).
    """
    if not path.is_file():
        return []
    return read_jsonl(path)


def plot_metrics(metrics_path: Path, png_path: Path, title: str) -> Path | None:
    """Train/validation loss and learning rate against step, in one PNG.

    Returns:
        ``png_path`` (a 1210 x 440 pixel PNG, loss on the left, learning rate on the right, written
        atomically), or None (with a warning, no file) when the metrics hold no train or validation loss.

    Raises:
        InputError: a line of the metrics file is bad.
        OutputError: the PNG cannot be written.
    """
    rows = read_metrics(metrics_path)
    train = [(r["step"], r["train_loss"]) for r in rows if "train_loss" in r]
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    lr = [(r["step"], r["lr"]) for r in rows if "lr" in r]
    if not train and not val:
        log.warning("no metrics in %s: no plot", metrics_path)
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        ax1.plot(*zip(*train), label="train loss", alpha=0.8)
    if val:
        ax1.plot(*zip(*val), "o-", label="validation loss")
    ax1.set_xlabel("optimizer step")
    ax1.set_ylabel("loss (mean over output tokens)")
    ax1.legend()
    ax1.grid(alpha=0.3)
    if lr:
        ax2.plot(*zip(*lr), color="tab:green")
    ax2.set_xlabel("optimizer step")
    ax2.set_ylabel("learning rate")
    ax2.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(png_path, buf.getvalue())
    return png_path
