"""SFT: convert -> train -> predict -> evaluate (`recipe.main(cfg, steps, args)`; `cfg`: the typed
`settings.SftSettings`, or a config mapping, checked on the way in).

Reusable pieces (the NeMo backend calls them too):
- `model.prepare_model(cfg) -> Path`: the base model as a local Hugging Face folder (GGUF converted
  once, hub download with HF_TOKEN, or a checked local folder); `ModelError` on bad input.
- `data.read_split(data_dir, level, split, limit)`, `data.build_prompt(tokenizer, text, cfg.data)`:
  rows and the prompt format used in training and generation; `DataError` names file and line.
- `predict.write_predictions(path, rows)`: the predictions.jsonl schema
  `{id, input, reference, prediction, model: "base"|"finetuned", sample}`.
- `report.evaluate_run(cfg)`: text + Verilog metrics (+ VerilogEval) of predictions.jsonl,
  base vs fine-tuned, into results/<run>/report.{md,json}.
"""
