"""Measuring generated Verilog.

- `verilog_metrics.evaluate_predictions(rows, ...)`: extraction, compile rate and functional
  equivalence (differential testbench against the reference) for prediction rows.
- `verilogeval.run_benchmark(generate_fn, problems_dir, ...)`: VerilogEval v2 spec-to-rtl pass@k;
  `verilogeval.score_references(problems_dir)`: the references themselves (153/156, iverilog 11).
- `download.download_problems(dest)`: the problem set from upstream.
- `extract`, `vparse`, `difftb`, `simulate`, `passk`, `parallel`: the parts; `text_metrics`:
  BLEU/ROUGE-style text metrics (owned by the SFT step).
The standalone command is `python evaluate.py <step>` (configs/eval.yaml).
"""
