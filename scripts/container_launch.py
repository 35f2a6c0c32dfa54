#!/usr/bin/env python3
"""Entry point used by curate_data.sh and run_sft.sh before set-up: run the script inside the NeMo
container when asked or when Docker and NVIDIA GPUs are here (see sft_playbook/container.py).
Standard library only. Exit code 200 means "not launched: run here"; anything else is the
container's exit code (or 2 for a bad request)."""
import sys
from pathlib import Path

# this checkout's package first (only its standard-library modules are imported here:
# sft_playbook.container and sft_playbook.secrets for token.env)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sft_playbook import container as _mod  # noqa: E402

if __name__ == "__main__":
    sys.exit(_mod.main())
