"""Text metrics of predictions against references: exact match, BLEU (sacrebleu), ROUGE-L (rouge-score)."""
from __future__ import annotations

import re


def normalize_ws(text: str) -> str:
    """Collapse runs of whitespace and strip: layout differences do not count as a miss.

    Returns:
        ``text`` with every whitespace run replaced by one space, leading/trailing space removed.
    """
    return re.sub(r"\s+", " ", text).strip()


def text_metrics(predictions: list[str], references: list[str]) -> dict:
    """Corpus BLEU, mean ROUGE-L F1 and exact match rates (raw and whitespace-normalised).

    Returns:
        ``{"n", "exact_match", "exact_match_ws", "bleu", "rouge_l"}``: ``n`` pairs; exact match rates
        in [0, 1] (stripped / ``normalize_ws``); sacrebleu corpus BLEU in 0-100 (4 decimals); mean
        ROUGE-L F1 in [0, 1] (6 decimals). Every metric is None for no pairs.

    Raises:
        ValueError: the two lists differ in length.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    n = len(predictions)
    if n == 0:
        return {"n": 0, "exact_match": None, "exact_match_ws": None, "bleu": None, "rouge_l": None}
    import sacrebleu
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rouge = [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references)]
    bleu = sacrebleu.corpus_bleu(predictions, [references])
    return {
        "n": n,
        "exact_match": sum(p.strip() == r.strip() for p, r in zip(predictions, references)) / n,
        "exact_match_ws": sum(normalize_ws(p) == normalize_ws(r) for p, r in zip(predictions, references)) / n,
        "bleu": round(bleu.score, 4),
        "rouge_l": round(sum(rouge) / n, 6),
    }
