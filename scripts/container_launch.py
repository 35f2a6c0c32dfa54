#!/usr/bin/env python3
"""Entry point used by curate_data.sh and run_sft.sh before set-up: run the script inside the NeMo
container when asked or when Docker and NVIDIA GPUs are here (see sft_playbook/container.py).
Standard library only. Exit code 200 means "not launched: run here"; anything else is the
container's exit code (or 2 for a bad request)."""
import importlib.util
import sys
from pathlib import Path

_path = Path(__file__).resolve().parent.parent / "sft_playbook" / "container.py"
_spec = importlib.util.spec_from_file_location("sft_playbook_container", _path)
_mod = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _mod  # dataclasses look the module up by name
_spec.loader.exec_module(_mod)

if __name__ == "__main__":
    sys.exit(_mod.main())
