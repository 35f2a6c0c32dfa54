"""One tokenization for training and generation, and the prompt forms of the training rows.

The generation side is observed where it reaches the model (`model.generate`'s input_ids, left
padding removed), the training side in the encoded example (the prompt is what the targets leave
unsupervised), so neither side is checked through the function under test."""
import copy
import json
import shutil

import pytest

from sft_playbook.sft import data as D
from sft_playbook.sft import predict as P
from sft_playbook.sft.model import load_model, load_tokenizer

ROWS = [
    {"id": "a", "input": "<<SYS>>\n\nA 4-bit counter with synchronous reset.\n\nModule header:\n"
                         "module cnt4(input clk, input rst, output reg [3:0] q);",
     "output": "module cnt4(input clk, input rst, output reg [3:0] q);\n"
               "  always @(posedge clk) q <= rst ? 4'd0 : q + 4'd1;\nendmodule"},
    {"id": "b", "input": "Drives y with the AND of a and b (W bits).\n\nModule header:\n"
                         "module and_w #(parameter W = 8) (a, b, y);",
     "output": "module and_w #(parameter W = 8) (a, b, y);\n  input [W-1:0] a, b;\n  output [W-1:0] y;\n"
               "  assign y = a & b;\nendmodule"},
]


def _bos_adding_copy(src, dst, bos_token, bos_id, with_eos=False):
    """A copy of a model folder whose tokenizer has no chat template and adds `bos_token` to every
    encoded text (and EOS too when with_eos), like Llama / CodeLlama base tokenizers."""
    shutil.copytree(src, dst)
    (dst / "chat_template.jinja").unlink(missing_ok=True)
    tcfg = json.loads((dst / "tokenizer_config.json").read_text())
    tcfg.pop("chat_template", None)
    (dst / "tokenizer_config.json").write_text(json.dumps(tcfg))
    t = json.loads((dst / "tokenizer.json").read_text())
    single = [{"SpecialToken": {"id": bos_token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]
    special = {bos_token: {"id": bos_token, "ids": [bos_id], "tokens": [bos_token]}}
    if with_eos:
        single.append({"SpecialToken": {"id": "<|im_end|>", "type_id": 0}})
        special["<|im_end|>"] = {"id": "<|im_end|>", "ids": [2], "tokens": ["<|im_end|>"]}
    t["post_processor"] = {"type": "TemplateProcessing", "single": single,
                           "pair": single + [{"Sequence": {"id": "B", "type_id": 1}}], "special_tokens": special}
    (dst / "tokenizer.json").write_text(json.dumps(t))
    return dst


@pytest.fixture(scope="module", params=["chat", "plain-bos", "plain-bos-other-id", "chat-forced-plain"])
def model_and_cfg(request, tiny_llama_dir, tmp_path_factory):
    from sft_playbook.config import load_yaml
    from sft_playbook.paths import REPO_ROOT

    cfg = copy.deepcopy(load_yaml(REPO_ROOT / "configs/sft.yaml"))
    folder = tiny_llama_dir
    if request.param == "plain-bos":
        folder = _bos_adding_copy(tiny_llama_dir, tmp_path_factory.mktemp("m") / "m", "<|im_start|>", 1)
    elif request.param == "plain-bos-other-id":
        folder = _bos_adding_copy(tiny_llama_dir, tmp_path_factory.mktemp("m") / "m", "<|endoftext|>", 0)
    elif request.param == "chat-forced-plain":
        cfg["data"]["prompt_template"] = "plain"
    cfg["data"].update(system_prompt="You write Verilog.", prompt_forms=["header", "ports", "description"])
    cfg["predict"].update(max_new_tokens=2, batch_size=2, stop=[], do_sample=False, n_samples=1)
    tok = load_tokenizer(folder)
    model = load_model(folder)
    return request.param, model, tok, cfg


def _spy(model):
    import torch

    seen = []
    orig = model.generate

    def generate(**kw):
        for ids, mask in zip(kw["input_ids"], kw["attention_mask"]):
            seen.append(ids[mask.bool()].tolist())
            assert torch.all(mask[mask.argmax():] == 1), "padding must be on the left only"
        return orig(**kw)

    model.generate = generate
    return seen


def _training_prompts(rows, tok, dcfg):
    """The prompt part of each training example: the tokens before the first supervised one."""
    enc = D.encode_rows(rows, tok, dcfg, 4096)
    out = {}
    for ex in enc.examples:
        first = next(i for i, t in enumerate(ex["targets"]) if t != D.IGNORE)
        out[ex["id"]] = ex["input_ids"][:first + 1]
    return out


def test_predict_sends_the_training_prompt_tokens(model_and_cfg):
    kind, model, tok, cfg = model_and_cfg
    train = _training_prompts(ROWS, tok, cfg["data"])
    for form in ("header", "ports", "description"):
        seen = _spy(model)
        pcfg = dict(cfg["predict"], prompt_form=form)
        rows = P.predict_rows(model, tok, ROWS, dict(cfg, predict=pcfg), "base")
        suffix = "" if form == "header" else f"#{form}"
        assert seen == [train[r["id"] + suffix] for r in ROWS], (kind, form)
        assert [r["prompt_form"] for r in rows] == [form, form]
        del model.generate
    if kind.startswith("plain-bos"):
        assert all(ids[0] == tok.bos_token_id or ids[0] == tok("x")["input_ids"][0] for ids in train.values())


def test_verilogeval_glue_sends_what_training_would(model_and_cfg):
    """The VerilogEval runner's prompt: the same tokens training builds for that text and system."""
    from sft_playbook.evaluate.verilogeval import SYSTEM_PROMPT, build_prompt
    from sft_playbook.sft.report import verilogeval_generate_fn

    kind, model, tok, cfg = model_and_cfg
    generate_fn, include_system = verilogeval_generate_fn(model, tok, cfg)
    question = build_prompt("Implement a NOT gate named TopModule.", include_system=include_system)
    seen = _spy(model)
    generate_fn([question], 1)
    del model.generate
    chat = kind == "chat"
    assert include_system is not chat
    dcfg = dict(cfg["data"], system_prompt=SYSTEM_PROMPT if chat else None)
    expected = _training_prompts([{"id": "q", "input": question, "output": "module TopModule; endmodule"}],
                                 tok, dict(dcfg, prompt_forms=["header"]))["q"]
    assert seen == [expected]
    text = tok.decode(seen[0])
    assert text.count(SYSTEM_PROMPT) == 1 and text.count("Question:") == 1
    if chat:
        assert text.index(SYSTEM_PROMPT) < text.index("<|im_start|>user")


def test_plain_bos_tokenizer_training_prompt_starts_with_bos(model_and_cfg):
    kind, _, tok, cfg = model_and_cfg
    bos = tok("x")["input_ids"][0] if kind.startswith("plain-bos") else None
    for ids in _training_prompts(ROWS, tok, cfg["data"]).values():
        if bos is not None:
            assert ids[0] == bos and ids.count(bos) == 1
        else:
            assert ids[0] != 0


def test_generate_from_a_built_prompt_text_gives_the_training_tokens(model_and_cfg):
    """Callers holding only the prompt text (built by data.build_prompt) get the same ids too."""
    kind, model, tok, cfg = model_and_cfg
    train = _training_prompts(ROWS, tok, dict(cfg["data"], prompt_forms=["header"]))
    seen = _spy(model)
    P.generate(model, tok, [D.build_prompt(tok, D.form_input(r, "header"), cfg["data"]) for r in ROWS], cfg["predict"])
    del model.generate
    assert seen == [train[r["id"]] for r in ROWS]


# ------------------------------------------------------------------------------- forms

def test_forms_strip_wrapper_and_rebuild_header():
    desc, header = D.split_input(ROWS[0]["input"])
    assert desc == "A 4-bit counter with synchronous reset." and header.startswith("module cnt4(")
    assert D.form_input(ROWS[0], "header") == desc + "\n\nModule header:\n" + header
    assert D.form_input(ROWS[0], "description") == desc


def test_ports_form_lists_ports_with_widths_ansi_and_non_ansi():
    a = D.form_input(ROWS[0], "ports")
    assert a.startswith("Write a Verilog module named cnt4 ")
    assert " - input  clk\n - input  rst\n - output q (4 bits)\n\nA 4-bit counter" in a
    b = D.form_input(ROWS[1], "ports")
    assert "Parameters: W = 8." in b
    assert " - input  a (W bits)\n - input  b (W bits)\n - output y (W bits)" in b


def test_ports_form_missing_when_ports_unreadable_and_counted():
    bad = {"id": "c", "input": "Some text.\n\nModule header:\nmodule m(a, b);",
           "output": "module m(a, b);\n  assign a = b;\nendmodule"}  # no directions anywhere
    rows, stats = D.expand_forms([bad, ROWS[0]], ["header", "ports"])
    assert [r["id"] for r in rows] == ["c", "a", "a#ports"]
    assert stats["no_ports_form"] == 1 and stats["form_ports"] == 1 and stats["form_header"] == 2
    with pytest.raises(D.DataError, match="unknown form 'interface'"):
        D.expand_forms([bad], ["interface"])
    rows, stats = D.expand_forms([bad, ROWS[0]], ["spec"])
    assert [r["id"] for r in rows] == ["a#spec"] and stats["no_spec_form"] == 1


def test_spec_form_asks_as_the_verilogeval_runner_does_with_the_rows_own_module():
    """The 'spec' form: upstream's interface wording and the runner's Question / Answer text around
    the row's own module name, ports and description (format only, no benchmark content)."""
    from sft_playbook.evaluate.verilogeval import NO_EXPLAIN_SUFFIX, build_prompt

    s = D.form_input(ROWS[1], "spec")
    body = ("I would like you to implement a module named and_w with the following\ninterface. All input and "
            "output ports are one bit unless otherwise\nspecified.\nParameters: W = 8.\n\n"
            " - input  a (W bits)\n - input  b (W bits)\n - output y (W bits)\n\n")
    assert s.startswith("\nQuestion:\n" + body) and s.endswith(NO_EXPLAIN_SUFFIX + "\n\nAnswer:\n")
    assert s == build_prompt(D.form_input(ROWS[1], "ports").replace(
        "Write a Verilog module named and_w with the following ports (one bit unless a width is given).",
        body.split("\nParameters")[0]), shots=0, include_system=False)
    assert "TopModule" not in s and "Module header:" not in s


def test_row_without_header_keeps_its_input_in_header_form():
    row = {"id": "d", "input": "Just a description of a mux.", "output": "module mux; endmodule"}
    assert D.form_input(row, "header") == "Just a description of a mux."
    assert D.form_input(row, "ports") is None


def test_encode_rows_counts_examples_per_form(smollm2_tokenizer_dir):
    tok = load_tokenizer(smollm2_tokenizer_dir)
    dcfg = {"prompt_template": "chat", "system_prompt": None, "plain_template": "{input}", "overlength": "drop",
            "prompt_forms": ["header", "description"]}
    enc = D.encode_rows(ROWS, tok, dcfg, 4096)
    assert enc.stats["rows"] == 2 and enc.stats["examples"] == 4 and enc.stats["kept"] == 4
    assert sorted(e["id"] for e in enc.examples) == ["a", "a#description", "b", "b#description"]
    # the answer (targets) is the same full module whatever the form
    sup = {e["id"]: [t for t in e["targets"] if t != D.IGNORE] for e in enc.examples}
    assert sup["a"] == sup["a#description"]


def test_static_kv_cache_gives_the_same_greedy_answers(tiny_llama_dir):
    """predict.cache_implementation=static (fixed-size cache; compiled decoding on CUDA) changes the
    speed, not the answers: the same greedy texts as the dynamic cache, left padding included."""
    from sft_playbook.config import load_yaml
    from sft_playbook.paths import REPO_ROOT

    cfg = load_yaml(REPO_ROOT / "configs/sft.yaml")
    tok, model = load_tokenizer(tiny_llama_dir), load_model(tiny_llama_dir)
    ids = [D.prompt_ids(tok, D.form_input(r, f), cfg["data"]) for r in ROWS for f in ("header", "description")]
    pcfg = dict(cfg["predict"], max_new_tokens=6, batch_size=4, stop=[])
    seqs, orig = [], model.generate

    def spy(**kw):
        out = orig(**kw)
        seqs.append(out[:, kw["input_ids"].shape[1]:].tolist())
        return out

    model.generate = spy
    dynamic = P.generate(model, tok, ids, pcfg)
    static = P.generate(model, tok, ids, dict(pcfg, cache_implementation="static"))
    assert static == dynamic
    assert seqs[0] == seqs[1] and len(seqs[0]) == 4 and all(len(s) == 6 for s in seqs[0])


# --------------------------------------------------------- VerilogEval: generate here, judge there

def test_verilogeval_answers_then_judge_elsewhere(tiny_llama_dir, tmp_path, monkeypatch):
    """The generation half writes one row per problem without a simulator; the judging half scores
    the file with the runner itself: a right answer passes, a wrong one and a silent one do not."""
    from sft_playbook.config import load_yaml
    from sft_playbook.paths import REPO_ROOT
    from sft_playbook.sft import report as R
    from sft_playbook.verilog.sandbox import iverilog_available

    problems = REPO_ROOT / "tests/fixtures/verilog_eval/problems"
    cfg = load_yaml(REPO_ROOT / "configs/sft.yaml")
    cfg.update(model=str(tiny_llama_dir), model_cache=str(tmp_path / "cache"))
    cfg["evaluate"]["verilogeval"].update(problems_dir=str(problems), n_samples=1, shots=0)
    cfg["predict"].update(max_new_tokens=2, batch_size=4)
    monkeypatch.setattr("sft_playbook.sft.predict.prepare_model", lambda c: tiny_llama_dir)
    path = R.verilogeval_answers(cfg, "base", tmp_path / "answers.jsonl")
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert [r["problem"] for r in rows] == ["Prob901_counter4", "Prob902_mux2"]
    assert all(len(r["answers"]) == 1 and "Question:" in r["prompt"] for r in rows)
    # a chat model: the system sentence went to the chat system slot, not into the question
    assert all("You are a Verilog RTL designer" not in r["prompt"] for r in rows)
    if not iverilog_available():
        pytest.skip("iverilog is not installed: the judging half needs it")
    mux = ("module TopModule(input [7:0] a, input [7:0] b, input sel, output [7:0] out);\n"
           "  assign out = sel ? b : a;\nendmodule")
    rows[0]["answers"] = ["module TopModule(input clk); endmodule"]  # wrong ports: fails
    rows[1]["answers"] = [f"[BEGIN]\n{mux}\n[DONE]"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = R.judge_verilogeval_answers(path, problems, tmp_path / "judged", workers=1, progress=False)
    assert summary["problems"] == 2 and summary["passed_problems"] == 1
    assert summary["pass_at_k"]["pass@1"] == 0.5
    assert (tmp_path / "judged" / "verilogeval_samples.jsonl").is_file()


@pytest.mark.parametrize("text,where", [
    ("", "no answers (the file is empty)"),
    ("\ufeff\n", "no answers (the file is empty)"),
    ('{"problem": "Prob901_counter4", "answers": []}\n', ":1: expected"),
    ('{"problem": "Prob901_counter4", "answers": ["x"]}\n{"answers": ["y"]}\n', ":2: expected"),
    ('{"problem": "Prob901_counter4", "answers": "module m; endmodule"}\n', ":1: expected"),
])
def test_judging_a_bad_answers_file_is_one_line_naming_it(tmp_path, text, where):
    from sft_playbook.paths import REPO_ROOT
    from sft_playbook.sft import report as R

    path = tmp_path / "answers.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as exc:
        R.judge_verilogeval_answers(path, REPO_ROOT / "tests/fixtures/verilog_eval/problems", None, progress=False)
    assert str(exc.value).startswith(str(path)) and where in str(exc.value), exc.value
    assert "\n" not in str(exc.value)
