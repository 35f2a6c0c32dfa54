#!/usr/bin/env python3
"""Token-length distribution of curated SFT rows, per split and prompt form, with a config's
tokenizer and prompt format: how data.max_seq_len and predict.max_new_tokens were chosen.

Usage: python bench/sft_lengths.py --config configs/sft_gpu.yaml data_dir=DIR [key=value ...]
Prints, per split and form: rows, prompt / output(+EOS) / total tokens at p50, p90, p95, p99, max,
and how many rows a given max_seq_len would cut (--cuts) or a max_new_tokens would cut (--gen-cuts).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/sft_gpu.yaml")
    ap.add_argument("--cuts", default="384,512,1024,1536,2048")
    ap.add_argument("--gen-cuts", default="256,512,1024,1280")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    import numpy as np

    from sft_playbook.config import load_config
    from sft_playbook.paths import resolve
    from sft_playbook.sft import data as D
    from sft_playbook.sft.model import load_tokenizer, prepare_model

    cfg = load_config(resolve(a.config), a.overrides)
    tok = load_tokenizer(prepare_model(cfg))
    cuts = [int(x) for x in a.cuts.split(",")]
    gcuts = [int(x) for x in a.gen_cuts.split(",")]
    q = lambda arr: "/".join(str(int(np.percentile(arr, k))) for k in (50, 90, 95, 99, 100))  # noqa: E731
    print(f"| split | form | rows | prompt p50/p90/p95/p99/max | output+EOS | total | rows over "
          f"{', '.join(map(str, cuts))} | outputs over {', '.join(map(str, gcuts))} |")
    print("| --- " * 8 + "|")
    for split in ("train", "validation", "test"):
        rows = D.read_split(resolve(cfg["data_dir"]), cfg["level"], split)
        outs = np.array([len(tok(r["output"], add_special_tokens=False)["input_ids"]) + 1 for r in rows])
        for form in D.PROMPT_FORMS:
            pairs = [(D.form_input(r, form), o) for r, o in zip(rows, outs)]
            pairs = [(t, o) for t, o in pairs if t is not None]
            p = np.array([len(D.prompt_ids(tok, t, cfg["data"])) for t, _ in pairs])
            o = np.array([o for _, o in pairs])
            t = p + o
            print(f"| {split} | {form} | {len(pairs)} | {q(p)} | {q(o)} | {q(t)} | "
                  f"{', '.join(str(int((t > c).sum())) for c in cuts)} | {', '.join(str(int((o - 1 > c).sum())) for c in gcuts)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
