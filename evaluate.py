#!/usr/bin/env python3
"""Verilog evaluation: score predictions (extraction, compile rate, functional equivalence with a
differential testbench), run VerilogEval v2 spec-to-rtl pass@k, score its references, download
its problems. The logic lives in sft_playbook.evaluate; this is the CLI (config: configs/eval.yaml)."""
import sys

from sft_playbook.cli import build_parser, run_main, start

STEPS = ("predictions", "verilogeval", "references", "prompts", "download")


def main(argv=None) -> int:
    parser = build_parser("evaluate.py", __doc__, "configs/eval.yaml", steps=STEPS)
    cfg, args = start(parser, argv)
    from sft_playbook.evaluate.cli import main as run_eval

    return run_eval(cfg, args)


if __name__ == "__main__":
    sys.exit(run_main(main))
