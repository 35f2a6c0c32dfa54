"""Repository-relative paths. Every relative path in a config is resolved against REPO_ROOT."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(os.environ.get("SFT_PLAYBOOK_ROOT", Path(__file__).resolve().parent.parent))


def resolve(path: str | os.PathLike) -> Path:
    """Absolute paths stay as they are; relative ones are taken from the repository root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p
