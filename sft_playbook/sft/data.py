"""Data loading and formatting for SFT (shared by the native and NeMo backends).

- `read_split(data_dir, level, split)`: rows {"input", "output", "id"} from
  `<data_dir>/<level>/<split>.jsonl`, with errors that name file and line.
- `build_prompt(tokenizer, text, data_cfg)`: the model's chat template when it has one (and
  `prompt_template: chat`), a plain template otherwise. Used for training and for generation.
- `encode_rows(...)`: token ids plus shifted targets; loss only on the output tokens; EOS
  appended; over-length rows truncated or dropped as configured and counted with their reason.
- `make_batches(...)` / `collate(...)`: padded micro-batches, or packed ones in which every
  sample restarts its positions and sees only itself (4D block-diagonal causal mask).
- `step_schedule(...)`: which items go into which optimizer step; a pure function of
  (seed, step), so a resumed run sees exactly the data an uninterrupted one would.
"""
from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..io import InputError, iter_jsonl

log = logging.getLogger(__name__)

IGNORE = -100
SPLITS = ("train", "validation", "test")


class DataError(ValueError):
    """Bad or missing SFT data; the message names the file and line."""


def split_path(data_dir: Path, level: str, split: str) -> Path:
    return Path(data_dir) / level / f"{split}.jsonl"


def read_split(data_dir: Path, level: str, split: str, limit: int | None = None) -> list[dict]:
    path = split_path(data_dir, level, split)
    if not path.is_file():
        have = sorted(p.name for p in path.parent.glob("*.jsonl")) if path.parent.is_dir() else []
        hint = f" (that folder has: {', '.join(have)})" if have else " (run `bash curate_data.sh` first)"
        raise DataError(f"split {split!r} of level {level!r} not found: {path}{hint}")
    rows: list[dict] = []
    try:
        lines = list(iter_jsonl(path))
    except InputError as exc:
        raise DataError(str(exc)) from None
    for lineno, row in lines:
        where = f"{path}:{lineno}"
        for key in ("input", "output"):
            if key not in row:
                raise DataError(f"{where}: row has no {key!r} field")
            if not isinstance(row[key], str) or not row[key].strip():
                raise DataError(f"{where}: field {key!r} must be a non-empty string")
        rows.append({"id": str(row.get("id", f"{split}-{lineno}")), "input": row["input"], "output": row["output"]})
    if not rows:
        raise DataError(f"{path} is empty: no rows to use for split {split!r}")
    if limit is not None and limit < len(rows):
        rows = rows[: int(limit)]
    return rows


def uses_chat_template(tokenizer, data_cfg: dict) -> bool:
    return data_cfg["prompt_template"] == "chat" and bool(getattr(tokenizer, "chat_template", None))


def build_prompt(tokenizer, text: str, data_cfg: dict) -> str:
    """The prompt text for one description (everything before the output the model must write)."""
    if uses_chat_template(tokenizer, data_cfg):
        messages = [{"role": "user", "content": text}]
        if data_cfg.get("system_prompt"):
            messages.insert(0, {"role": "system", "content": data_cfg["system_prompt"]})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return data_cfg["plain_template"].format(input=text)


def prompt_ids(tokenizer, text: str, data_cfg: dict) -> list[int]:
    prompt = build_prompt(tokenizer, text, data_cfg)
    # A chat template already holds its special tokens; a plain prompt gets the tokenizer's BOS if any.
    return tokenizer(prompt, add_special_tokens=not uses_chat_template(tokenizer, data_cfg))["input_ids"]


@dataclass
class Encoded:
    examples: list[dict]
    stats: Counter = field(default_factory=Counter)


def encode_rows(rows: list[dict], tokenizer, data_cfg: dict, max_len: int) -> Encoded:
    """Each example: input_ids and targets (targets[i] = the token at i+1 when it is an output token, else -100)."""
    overlength = data_cfg["overlength"]
    if overlength not in ("truncate", "drop"):
        raise DataError(f"data.overlength must be 'truncate' or 'drop', not {overlength!r}")
    eos = tokenizer.eos_token_id
    if eos is None:
        raise DataError("the tokenizer has no EOS token; set one in the model folder's tokenizer config")
    out = Encoded(examples=[])
    for row in rows:
        p = prompt_ids(tokenizer, row["input"], data_cfg)
        c = tokenizer(row["output"], add_special_tokens=False)["input_ids"] + [eos]
        ids = p + c
        if len(ids) > max_len:
            out.stats["over_length"] += 1
            if overlength == "drop" or len(p) >= max_len - 1:
                out.stats["dropped_over_length" if overlength == "drop" else "dropped_prompt_too_long"] += 1
                continue
            ids = ids[:max_len]
            out.stats["truncated"] += 1
        labels = [IGNORE] * len(p) + ids[len(p):]
        targets = labels[1:] + [IGNORE]
        out.examples.append({"id": row["id"], "input_ids": ids, "targets": targets})
        out.stats["kept"] += 1
    out.stats["rows"] = len(rows)
    return out


def describe_counts(split: str, stats: dict, max_len: int, overlength: str) -> tuple[int, str]:
    """(logging level, one line) on what `encode_rows` kept of a split: used / dropped / truncated rows.

    A WARNING when rows were dropped or truncated, with the key that changes it. When one row
    gives several training examples (stats["examples"] > stats["rows"]), counts are of examples."""
    rows, used = int(stats.get("rows", 0)), int(stats.get("kept", 0))
    examples = int(stats.get("examples", rows))
    dropped = int(stats.get("dropped_over_length", 0)) + int(stats.get("dropped_prompt_too_long", 0))
    truncated = int(stats.get("truncated", 0))
    text = f"{split}: {used} of {rows} rows used" if examples == rows else \
        f"{split}: {used} of {examples} examples used (from {rows} rows)"
    rows = examples
    if not dropped and not truncated:
        return logging.INFO, text + f" (all fit max_seq_len={max_len})"
    pct = lambda n: f"{100 * n / max(1, rows):.0f} %"  # noqa: E731
    if dropped:
        text += f"; {dropped} ({pct(dropped)}) longer than max_seq_len={max_len} dropped"
        if stats.get("dropped_prompt_too_long"):
            text += f" ({stats['dropped_prompt_too_long']} because the prompt alone is that long)"
    if truncated:
        text += f"; {truncated} ({pct(truncated)}) cut at max_seq_len={max_len} (data.overlength={overlength})"
    return logging.WARNING, text + " (raise data.max_seq_len to keep them)"


def pack_examples(examples: list[dict], seq_len: int, strategy: str = "next_fit",
                  window: int = 512) -> list[list[dict]]:
    """Packs: lists of examples whose lengths sum to <= seq_len.

    next_fit: in the given order, a new pack when the next example does not fit.
    best_fit: in windows of `window` examples (so the shuffle still decides what trains together),
    longest first, each into the fullest pack it fits (best-fit decreasing): fewer, fuller packs.
    """
    if strategy == "best_fit":
        out: list[list[dict]] = []
        for start in range(0, len(examples), window):
            chunk = sorted(examples[start:start + window], key=lambda ex: -len(ex["input_ids"]))
            packs, room = [], []
            for ex in chunk:
                n = len(ex["input_ids"])
                best = min((r for r in range(len(packs)) if room[r] >= n), key=lambda r: room[r], default=None)
                if best is None:
                    packs.append([ex])
                    room.append(seq_len - n)
                else:
                    packs[best].append(ex)
                    room[best] -= n
            out.extend(packs)
        return out
    if strategy != "next_fit":
        raise DataError(f"data.pack_strategy must be 'next_fit' or 'best_fit', not {strategy!r}")
    packs: list[list[dict]] = []
    cur: list[dict] = []
    used = 0
    for ex in examples:
        n = len(ex["input_ids"])
        if cur and used + n > seq_len:
            packs.append(cur)
            cur, used = [], 0
        cur.append(ex)
        used += n
    if cur:
        packs.append(cur)
    return packs


def collate(items: list[list[dict]], pad_id: int, packed: bool):
    """items: a micro-batch; each item is a list of examples (one example unless packed).

    Returns input_ids, targets, position_ids and an attention mask: 2D padding mask when every
    item is one example, 4D block-diagonal causal bool mask (True = may attend) when packed.
    """
    import torch

    width = max(sum(len(ex["input_ids"]) for ex in item) for item in items)
    b = len(items)
    input_ids = torch.full((b, width), pad_id, dtype=torch.long)
    targets = torch.full((b, width), IGNORE, dtype=torch.long)
    position_ids = torch.zeros((b, width), dtype=torch.long)
    segment = torch.full((b, width), -1, dtype=torch.long)
    for i, item in enumerate(items):
        pos = 0
        for s, ex in enumerate(item):
            n = len(ex["input_ids"])
            input_ids[i, pos:pos + n] = torch.tensor(ex["input_ids"])
            targets[i, pos:pos + n] = torch.tensor(ex["targets"])
            position_ids[i, pos:pos + n] = torch.arange(n)
            segment[i, pos:pos + n] = s
            pos += n
        # padding: its own segment (attends to itself only, never in the loss)
        position_ids[i, pos:] = torch.arange(width - pos)
    if not packed:
        return {"input_ids": input_ids, "targets": targets, "position_ids": position_ids,
                "attention_mask": (segment >= 0).long()}
    causal = torch.tril(torch.ones(width, width, dtype=torch.bool))
    same = segment[:, :, None] == segment[:, None, :]
    mask = (same & causal)[:, None, :, :]
    return {"input_ids": input_ids, "targets": targets, "position_ids": position_ids, "attention_mask": mask}


def epoch_items(examples: list[dict], seed: int, epoch: int, packed: bool, seq_len: int,
                strategy: str = "next_fit") -> list[list[dict]]:
    order = list(range(len(examples)))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    shuffled = [examples[i] for i in order]
    return pack_examples(shuffled, seq_len, strategy) if packed else [[ex] for ex in shuffled]


class StepSchedule:
    """Items for optimizer step s: a fixed, seed-determined stream of items, epoch after epoch.

    Step s takes items [s*G, (s+1)*G) of the stream (G = items per optimizer step over all ranks),
    so the data of any step depends only on (seed, s), not on what ran before: resume-safe.
    """

    def __init__(self, examples: list[dict], seed: int, items_per_step: int, packed: bool, seq_len: int,
                 strategy: str = "next_fit"):
        if not examples:
            raise DataError("no training examples left after formatting (all rows over length?)")
        self.examples, self.seed, self.per_step = examples, seed, items_per_step
        self.packed, self.seq_len, self.strategy = packed, seq_len, strategy
        self._epochs: dict[int, list[list[dict]]] = {}
        self.items_per_epoch = len(self._epoch(0))

    def _epoch(self, e: int) -> list[list[dict]]:
        if e not in self._epochs:
            self._epochs[e] = epoch_items(self.examples, self.seed, e, self.packed, self.seq_len, self.strategy)
        return self._epochs[e]

    def items(self, step: int) -> list[list[dict]]:
        out = []
        start = step * self.per_step
        for k in range(start, start + self.per_step):
            e, i = divmod(k, self.items_per_epoch)
            epoch = self._epoch(e)
            out.append(epoch[i % len(epoch)])
        return out

    def epoch_of(self, step: int) -> float:
        return step * self.per_step / self.items_per_epoch


def eval_batches(examples: list[dict], micro_batch_size: int) -> list[list[list[dict]]]:
    """Validation: every example once, unpacked, in file order."""
    items = [[ex] for ex in examples]
    return [items[i:i + micro_batch_size] for i in range(0, len(items), micro_batch_size)]
