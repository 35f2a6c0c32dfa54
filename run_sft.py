#!/usr/bin/env python3
"""Fine-tune a base model on the curated data and measure it: convert -> train -> predict ->
evaluate. The steps live in sft_playbook.sft; this is the CLI."""
import sys

from sft_playbook.cli import build_parser, run_main, start

STEPS = ("convert", "train", "predict", "evaluate")


def main(argv=None) -> int:
    parser = build_parser("run_sft.py", __doc__, "configs/sft.yaml", steps=STEPS)
    cfg, args = start(parser, argv)
    from sft_playbook.sft.recipe import main as run_recipe

    steps = list(STEPS) if args.step == "all" else [args.step]
    return run_recipe(cfg, steps, args)


if __name__ == "__main__":
    sys.exit(run_main(main))
