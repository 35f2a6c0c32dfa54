import pytest

from sft_playbook.evaluate.text_metrics import text_metrics
from sft_playbook.sft.predict import cut_at_stop


def test_identical_texts_score_perfectly():
    refs = ["module a(input x, output y); assign y = x; endmodule", "module b; wire w; endmodule"]
    m = text_metrics(refs, refs)
    assert m == {"n": 2, "exact_match": 1.0, "exact_match_ws": 1.0, "bleu": pytest.approx(100.0), "rouge_l": 1.0}


def test_partial_and_whitespace_differences():
    refs = ["module a(input x, output y);\n  assign y = x;\nendmodule", "module b(input p, output q); assign q = ~p; endmodule"]
    preds = ["module a(input x, output y); assign y = x; endmodule", "something else entirely"]
    m = text_metrics(preds, refs)
    assert m["exact_match"] == 0.0 and m["exact_match_ws"] == 0.5
    assert 0.0 < m["bleu"] < 100.0 and 0.0 < m["rouge_l"] < 1.0
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        text_metrics(preds, refs[:1])


def test_cut_at_stop_keeps_endmodule():
    assert cut_at_stop("module a; endmodule\nmodule b; endmodule", ["endmodule"]) == "module a; endmodule"
    assert cut_at_stop("no stop here", ["endmodule"]) == "no stop here"
