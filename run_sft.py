#!/usr/bin/env python3
"""Fine-tune a base model on the curated data and measure it: convert -> train -> predict ->
evaluate. The steps live in sft_playbook.sft; this is the CLI.

A run with overrides that change the trained model gets its own folder,
results/<run_name>_<changed keys> (run_name=NAME chooses one); its report is
results/<run>/report.md."""
import logging
import os
import sys

from sft_playbook.cli import build_parser, run_main, start

STEPS = ("convert", "train", "predict", "evaluate")


def main(argv=None) -> int:
    parser = build_parser("run_sft.py", __doc__, "configs/sft.yaml", steps=STEPS, settings="sft")
    cfg, args = start(parser, argv, name_run=True)
    from sft_playbook.sft.plan import describe_plan, quiet_third_party

    steps = list(STEPS) if args.step == "all" else [args.step]
    log = logging.getLogger("sft_playbook")
    if os.environ.get("RANK", "0") == "0":
        log.info("%s", describe_plan(cfg, steps, args))
    quiet_third_party()
    from sft_playbook.sft.recipe import main as run_recipe

    return run_recipe(cfg, steps, args)


if __name__ == "__main__":
    sys.exit(run_main(main))
