"""One logging set-up for every entry point: plain words on the console, optionally a file."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str = "INFO", log_file: str | Path | None = None) -> logging.Logger:
    """Configure the root logger: one format on stderr and, when given, also in ``log_file``.

    Existing root handlers are removed first (calling it again reconfigures). Chatty third-party
    loggers (urllib3, distributed, matplotlib, ...) are set to WARNING.

    Args:
        level: a logging level name (``INFO``, ``debug``, ...; case-insensitive).
        log_file: also write the log there (parent folders are created); None: stderr only.

    Returns:
        The ``sft_playbook`` logger.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(level.upper())
    # Chatty libraries stay at WARNING unless asked otherwise.
    for name in ("urllib3", "httpx", "filelock", "distributed", "fsspec", "matplotlib", "PIL"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return logging.getLogger("sft_playbook")
