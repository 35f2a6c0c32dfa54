#!/usr/bin/env python3
"""Verilog evaluation: score predictions (extraction, compile rate, functional equivalence with a
differential testbench), run VerilogEval v2 spec-to-rtl pass@k, score its references, download
its problems. The logic lives in sft_playbook.evaluate; this is the CLI (config: configs/eval.yaml).

Run it as `bash evaluate.sh <step> [key=value ...]` (sets up the environment first, like
run_sft.sh). The VerilogEval problems are taken from verilogeval.problems_dir, else from the
folders in verilogeval.also_look_in, else downloaded once into download.dest."""
import logging
import sys

from sft_playbook.cli import build_parser, run_main, start

STEPS = ("predictions", "verilogeval", "references", "prompts", "download")
NEEDS_PROBLEMS = ("verilogeval", "references", "prompts")


def main(argv=None) -> int:
    parser = build_parser("evaluate.py", __doc__, "configs/eval.yaml", steps=STEPS, settings="eval")
    cfg, args = start(parser, argv)
    from sft_playbook.evaluate.cli import main as run_eval
    from sft_playbook.evaluate.download import DownloadError, locate_problems
    from sft_playbook.settings import replace

    ve = cfg.verilogeval
    if args.step in NEEDS_PROBLEMS or (args.step == "all" and ve.answers):
        try:
            found = locate_problems(ve.problems_dir, also_look_in=ve.also_look_in, download=cfg.download)
            cfg = replace(cfg, **{"verilogeval.problems_dir": str(found)})
        except DownloadError as exc:
            logging.getLogger("sft_playbook").error("%s", exc)
            return 1
    return run_eval(cfg, args)


if __name__ == "__main__":
    sys.exit(run_main(main))
