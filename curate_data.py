#!/usr/bin/env python3
"""Curate raw domain data into NeMo SFT jsonl: download -> clean -> filter -> redact -> dedup ->
decontaminate -> split -> merge. The stages live in sft_playbook.curate; this is the CLI."""
import sys

from sft_playbook.cli import build_parser, run_main, start


def main(argv=None) -> int:
    parser = build_parser("curate_data.py", __doc__, "configs/curate.yaml", settings="curate")
    parser.add_argument("--scheduler", default=None, help="address of a running Dask scheduler to use (tcp://host:8786)")
    cfg, args = start(parser, argv)
    from sft_playbook.curate.pipeline import main as run_pipeline

    return run_pipeline(cfg, args)


if __name__ == "__main__":
    sys.exit(run_main(main))
