"""report.md of an SFT run: base vs fine-tuned first (with n/N), the outcome chart, rows
used/dropped/truncated per split, details below. Real Icarus Verilog judgements on hand-written
designs (tests/fixtures/verilog_eval), including the awkward ones: prose around the code, a
one-bit bug, a syntax error, no module at all."""
import copy
import json
import re

import pytest
import yaml

from sft_playbook.config import load_yaml
from sft_playbook.paths import REPO_ROOT
from sft_playbook.sft.report import evaluate_run, outcome_counts, render_markdown
from sft_playbook.verilog.sandbox import iverilog_available

FX = REPO_ROOT / "tests/fixtures/verilog_eval"
pytestmark = pytest.mark.skipif(not iverilog_available(), reason="needs Icarus Verilog (bash test.sh installs it)")


def _fx(name):
    return (FX / name).read_text()


def _rows():
    ref_c, ref_a = _fx("counter_ref.v"), _fx("alu_ref.v")
    good_c = "Here is the counter you asked for:\n```verilog\n" + _fx("counter_good_rewritten.v") + "```\nDone."
    broken = _fx("counter_ref.v").replace("q <= q + 4'd1;", "q <= q + ;")
    rows = []
    # base: one compile error, one without any module; fine-tuned: one pass, one mismatch (a one-bit bug)
    for rid, ref, base, tuned in (("r1", ref_c, broken, good_c),
                                  ("r2", ref_a, "I am sorry, I cannot write hardware.", _fx("alu_onebit_bug.v"))):
        for model, pred in (("base", base), ("finetuned", tuned)):
            rows.append({"id": rid, "input": "Implement the module.", "reference": ref, "prediction": pred,
                         "model": model, "sample": 0})
    return rows


@pytest.fixture
def run_cfg(tmp_path):
    cfg = copy.deepcopy(load_yaml(REPO_ROOT / "configs/sft.yaml"))
    data = tmp_path / "data" / "high_level"
    data.mkdir(parents=True)
    for split, n in (("train", 199), ("validation", 37), ("test", 13)):
        (data / f"{split}.jsonl").write_text("".join(json.dumps({"input": f"d{i}", "output": "module m; endmodule",
                                                                  "id": f"{split}-{i}"}) + "\n" for i in range(n)))
    cfg.update(data_dir=str(tmp_path / "data"), output_dir=str(tmp_path / "results"), run_name="r")
    cfg["evaluate"].update(workers=2, timeout_s=20)
    run = tmp_path / "results" / "r"
    run.mkdir(parents=True)
    (run / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (
        {"step": 0, "val_loss": 1.724}, {"step": 10, "train_loss": 0.7, "val_loss": 0.655},
        {"step": 20, "train_loss": 0.5, "val_loss": 0.565})))
    trained = copy.deepcopy(cfg)
    trained["data"]["max_seq_len"] = 384  # what the training used; the current config may differ
    (run / "config.yaml").write_text(yaml.safe_dump(trained))
    (run / "train_summary.json").write_text(json.dumps({"data": {
        "train": {"rows": 199, "kept": 146, "over_length": 53, "dropped_over_length": 53},
        "validation": {"rows": 8, "kept": 5, "over_length": 3, "dropped_over_length": 3}}}))
    return cfg, run


def test_report_leads_with_base_vs_finetuned_and_counts(run_cfg):
    cfg, run = run_cfg
    report = evaluate_run(cfg)
    md = (run / "report.md").read_text()
    head = md.split("## Rows used")[0]
    table = [ln for ln in head.splitlines() if ln.startswith("| ")]
    assert table[0] == "| | base | fine-tuned |"
    split = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in table[2:]]
    cells = {c[0]: c[1:] for c in split}
    labels = list(cells)
    assert labels[0].startswith("validation loss (5 rows)")
    assert cells[labels[0]][0].startswith("1.724 (step 0") and cells[labels[0]][1].startswith("0.565 (step 20)")
    assert cells["compiles (iverilog)"] == ["0/2 (0 %)", "2/2 (100 %)"]
    assert cells["functional pass (behaves like the reference)"] == ["0/2 (0 %)", "1/2 (50 %)"]
    assert any(lbl.startswith("BLEU") for lbl in labels) and any(lbl.startswith("ROUGE-L") for lbl in labels)
    # internals are below, not in the first table
    assert "seconds" not in head and "verilog." not in head
    # the pictures sit next to each other under the table
    assert "![results](results.png)" in head
    assert "the same 2 `test` rows (the first 2 of the split's 13: predict.max_samples)" in head
    png = (run / "results.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert outcome_counts(report) == {
        "base": {"pass": 0, "mismatch": 0, "compile error": 1, "timeout / runtime error": 0,
                 "no module extracted": 1, "forbidden": 0, "reference untestable": 0},
        "finetuned": {"pass": 1, "mismatch": 1, "compile error": 0, "timeout / runtime error": 0,
                      "no module extracted": 0, "forbidden": 0, "reference untestable": 0}}


def test_report_says_rows_used_dropped_truncated_per_split(run_cfg):
    cfg, run = run_cfg
    evaluate_run(cfg)
    md = (run / "report.md").read_text()
    rows = md.split("## Rows used")[1].split("## Details")[0]
    assert re.search(r"\| train \| 199 \| 199 \| 146/199 \(73 %\) \| 53/199 \(27 %\) \| 0/199 \(0 %\) \|", rows)
    assert re.search(r"\| validation \| 37 \| 8 \| 5/8 \(62 %\) \| 3/8 \(38 %\) \|", rows)
    assert re.search(r"\| test \| 13 \| 2 \| 2/2 \(100 %\) \|", rows)
    assert "max_seq_len` = 384" in rows
    details = md.split("## Details")[1]
    assert "| mismatch | 0 | 1 |" in details and "| compile error | 1 | 0 |" in details


def test_report_without_training_summary_says_not_recorded(run_cfg):
    cfg, run = run_cfg
    (run / "train_summary.json").unlink()
    (run / "metrics.jsonl").unlink()
    cfg["evaluate"]["verilog"] = False
    report = evaluate_run(cfg)
    md = render_markdown(report)
    assert "| train | 199 | - | - | - | - |" in md and "not recorded" in md
    assert "validation loss" not in md and "results.png" not in md  # no Verilog metrics: no outcome chart


def test_over_length_rows_are_said_with_their_counts(tiny_llama_dir):
    import logging

    from sft_playbook.sft import data as D
    from sft_playbook.sft.model import load_tokenizer

    tok = load_tokenizer(tiny_llama_dir)
    dcfg = {"prompt_template": "chat", "system_prompt": None, "plain_template": "{input}", "overlength": "drop"}
    short = {"id": "s", "input": "A wire.", "output": "module m(input a, output b); assign b = a; endmodule"}
    long = {"id": "l", "input": "A counter.", "output": "module m;\n" + "  wire w;\n" * 200 + "endmodule"}
    enc = D.encode_rows([short, long, long, short], tok, dcfg, 128)
    level, text = D.describe_counts("train", enc.stats, 128, "drop")
    assert level == logging.WARNING
    assert text.startswith("train: 2 of 4 rows used; 2 (50 %) longer than max_seq_len=128 dropped")
    enc = D.encode_rows([short, long], tok, dict(dcfg, overlength="truncate"), 128)
    level, text = D.describe_counts("validation", enc.stats, 128, "truncate")
    assert level == logging.WARNING and "1 (50 %) cut at max_seq_len=128" in text and "2 of 2 rows used" in text
    enc = D.encode_rows([short], tok, dcfg, 128)
    assert D.describe_counts("test", enc.stats, 128, "drop") == (logging.INFO, "test: 1 of 1 rows used (all fit max_seq_len=128)")


def test_counts_of_examples_when_rows_give_several():
    import logging

    from sft_playbook.sft import data as D

    stats = {"rows": 199, "examples": 398, "kept": 380, "dropped_over_length": 18}
    level, text = D.describe_counts("train", stats, 640, "drop")
    assert level == logging.WARNING
    assert text.startswith("train: 380 of 398 examples used (from 199 rows); 18 (5 %) longer than max_seq_len=640")
