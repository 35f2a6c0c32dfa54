"""Secrets (HF_TOKEN, WANDB_API_KEY) from the environment or token.env. Never printed or logged.

The environment wins over token.env. Values are only exported into os.environ so that the
libraries that need them (huggingface_hub, wandb) find them; nothing here ever writes a value
to a log, a config dump or an error message.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from .paths import REPO_ROOT

SECRET_KEYS = ("HF_TOKEN", "WANDB_API_KEY")
log = logging.getLogger(__name__)


class TokenFileError(ValueError):
    """A ``token.env`` line is not ``KEY=value`` with a valid name; the message names file and line, never a value."""


def parse_token_env(path: Path) -> dict[str, str]:
    """The ``KEY=value`` lines of a ``token.env`` file.

    Blank lines and ``#`` comments are skipped, a leading ``export`` is allowed, and one pair of
    matching quotes around a value is removed.

    Args:
        path: the file (UTF-8).

    Returns:
        Variable name -> value, in file order.

    Raises:
        TokenFileError: a line is not ``KEY=value`` or the name is not a valid variable name (the
            message names ``file:line`` and never shows the value).
    """
    values: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].strip()
        if "=" not in line:
            raise TokenFileError(f"{path}:{lineno}: expected KEY=value (the value is not shown)")
        key, value = line.split("=", 1)
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if not key.replace("_", "").isalnum():
            raise TokenFileError(f"{path}:{lineno}: {key!r} is not a valid variable name")
        values[key] = value
    return values


def load_token_env(path: str | Path | None = None) -> list[str]:
    """Export token.env's non-empty values that the environment does not already set.

    Args:
        path: the token file; ``None`` for ``<repo root>/token.env``. A missing file is not an error.

    Returns:
        The names (never the values) among ``HF_TOKEN``, ``WANDB_API_KEY``, ``WANDB_PROJECT`` and
        ``HF_ENDPOINT`` that are now set to a non-empty value, whether they came from the environment
        or from the file, in that order.

    Raises:
        TokenFileError: a line of the file is malformed (see ``parse_token_env``).
    """
    path = Path(path) if path is not None else REPO_ROOT / "token.env"
    if path.is_file():
        for key, value in parse_token_env(path).items():
            if value and not os.environ.get(key):
                os.environ[key] = value
    available = [k for k in (*SECRET_KEYS, "WANDB_PROJECT", "HF_ENDPOINT") if os.environ.get(k)]
    log.info("credentials available: %s", ", ".join(available) if available else "none (offline defaults)")
    return available


def redact(text: str) -> str:
    """Replace any secret value that appears in text (for error messages and logs).

    Returns:
        ``text`` with each occurrence of the current ``HF_TOKEN`` / ``WANDB_API_KEY`` value replaced by
        ``<HF_TOKEN>`` / ``<WANDB_API_KEY>`` (values shorter than 4 characters are left alone).
    """
    for key in SECRET_KEYS:
        value = os.environ.get(key)
        if value and len(value) >= 4:
            text = text.replace(value, f"<{key}>")
    return text
