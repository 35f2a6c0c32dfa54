"""SFT data: reading, formatting, loss masks, over-length handling, packing isolation, bad input."""
import json

import pytest

from sft_playbook.sft import data as D
from sft_playbook.sft.model import ModelError, prepare_model

DCFG = {"prompt_template": "chat", "system_prompt": None, "plain_template": "### Instruction:\n{input}\n\n### Response:\n",
        "overlength": "drop"}


@pytest.fixture(scope="module")
def tok(smollm2_tokenizer_dir):
    from sft_playbook.sft.model import load_tokenizer

    return load_tokenizer(smollm2_tokenizer_dir)


def test_chat_template_loss_only_on_output_and_eos(tok):
    row = {"id": "a", "input": "Write an AND gate.", "output": "module g(input a, b, output y); assign y = a & b; endmodule"}
    enc = D.encode_rows([row], tok, DCFG, 512)
    ex = enc.examples[0]
    prompt = D.build_prompt(tok, row["input"], DCFG)
    assert "<|im_start|>user" in prompt and prompt.rstrip().endswith("<|im_start|>assistant")
    n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
    ids, targets = ex["input_ids"], ex["targets"]
    assert ids[-1] == tok.eos_token_id
    # targets[i] predicts ids[i+1]; exactly the output tokens + EOS are supervised
    supervised = [t for t in targets if t != D.IGNORE]
    assert supervised == ids[n_prompt:]
    assert tok.decode(supervised[:-1]) == row["output"]
    assert all(t == D.IGNORE for t in targets[:n_prompt - 1]) and targets[-1] == D.IGNORE


def test_plain_template_when_asked(tok):
    cfg = dict(DCFG, prompt_template="plain")
    prompt = D.build_prompt(tok, "make a mux", cfg)
    assert prompt == "### Instruction:\nmake a mux\n\n### Response:\n"


def test_overlength_is_counted_and_dropped_or_truncated(tok):
    rows = [{"id": "s", "input": "short", "output": "module a; endmodule"},
            {"id": "l", "input": "long", "output": "module b; " + "wire w; " * 200 + "endmodule"}]
    dropped = D.encode_rows(rows, tok, DCFG, 64)
    assert [e["id"] for e in dropped.examples] == ["s"]
    assert dropped.stats["over_length"] == 1 and dropped.stats["dropped_over_length"] == 1
    truncated = D.encode_rows(rows, tok, dict(DCFG, overlength="truncate"), 64)
    assert [len(e["input_ids"]) for e in truncated.examples][1] == 64
    assert truncated.stats["truncated"] == 1 and truncated.stats["kept"] == 2


def test_packed_collate_isolates_samples():
    exs = [{"input_ids": [5, 6, 7], "targets": [-100, 7, -100]}, {"input_ids": [8, 9], "targets": [9, -100]}]
    b = D.collate([exs, exs[:1]], pad_id=0, packed=True)
    assert b["position_ids"][0].tolist() == [0, 1, 2, 0, 1]
    m = b["attention_mask"][0, 0]
    assert m[3, :3].sum() == 0 and m[3, 3] and m[4, 3] and m[4, 4]  # sample 2 never sees sample 1
    assert m[2, :3].tolist() == [True, True, True] and not m[1, 2]  # causal inside a sample
    assert b["targets"][1].tolist() == [-100, 7, -100, -100, -100]  # padding never supervised


def test_step_schedule_depends_only_on_seed_and_step():
    exs = [{"id": str(i), "input_ids": [1] * (i + 2), "targets": [1] * (i + 2)} for i in range(10)]
    a = D.StepSchedule(exs, 7, 4, False, 64)
    b = D.StepSchedule(exs, 7, 4, False, 64)
    ids = lambda sched, s: [ex["id"] for item in sched.items(s) for ex in item]  # noqa: E731
    assert ids(a, 5) == ids(b, 5)
    assert sorted(ids(a, 0) + ids(a, 1) + ids(a, 2)[:2]) == sorted(str(i) for i in range(10))  # epoch 0 = a permutation
    assert ids(a, 0) != ids(D.StepSchedule(exs, 8, 4, False, 64), 0)


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_missing_split_names_the_file(tmp_path):
    _write(tmp_path / "high_level/train.jsonl", json.dumps({"input": "a", "output": "b"}) + "\n")
    with pytest.raises(D.DataError, match=r"validation.*validation\.jsonl.*train\.jsonl"):
        D.read_split(tmp_path, "high_level", "validation")


def test_empty_file_is_an_error(tmp_path):
    _write(tmp_path / "high_level/train.jsonl", "\n")
    with pytest.raises(D.DataError, match="train.jsonl is empty"):
        D.read_split(tmp_path, "high_level", "train")


def test_row_without_output_names_file_and_line(tmp_path):
    good = json.dumps({"input": "a", "output": "b"})
    _write(tmp_path / "high_level/train.jsonl", good + "\n" + json.dumps({"input": "x"}) + "\n")
    with pytest.raises(D.DataError, match=r"train\.jsonl:2: row has no 'output'"):
        D.read_split(tmp_path, "high_level", "train")
    _write(tmp_path / "high_level/test.jsonl", good + "\n{broken\n")
    with pytest.raises(D.DataError, match=r"test\.jsonl:2: not valid JSON"):
        D.read_split(tmp_path, "high_level", "test")


def test_model_path_that_is_not_a_model(tmp_path):
    (tmp_path / "notamodel").mkdir()
    (tmp_path / "notamodel/readme.txt").write_text("hi")
    cfg = {"model": str(tmp_path / "notamodel"), "model_cache": str(tmp_path / "cache")}
    with pytest.raises(ModelError, match="not a Hugging Face model: no config.json"):
        prepare_model(cfg)
    (tmp_path / "notamodel/config.json").write_text("{}")
    with pytest.raises(ModelError, match="no weights"):
        prepare_model(cfg)
    with pytest.raises(ModelError, match="does not exist"):
        prepare_model(dict(cfg, model=str(tmp_path / "nowhere")))
    with pytest.raises(ModelError, match="neither"):
        prepare_model(dict(cfg, model="not a model id"))
