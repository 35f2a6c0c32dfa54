"""Data loading and formatting for SFT (shared by the native and NeMo backends).

- `read_split(data_dir, level, split)`: rows {"input", "output", "id"} from
  `<data_dir>/<level>/<split>.jsonl`, with errors that name file and line.
- `build_prompt(tokenizer, text, data_cfg)`: the model's chat template when it has one (and
  `prompt_template: chat`), a plain template otherwise; `prompt_ids` tokenizes it, the same way
  for training and for generation.
- `expand_forms(rows, forms)`: each row once per prompt form (`PROMPT_FORMS`).
- `encode_rows(...)`: token ids plus shifted targets; loss only on the output tokens; EOS
  appended; over-length rows truncated or dropped as configured and counted with their reason.
- `pack_examples(...)` / `collate(...)`: packs of examples up to the sequence length, and
  micro-batch tensors: padded, or packed with every sample restarting its positions and seeing
  only itself (4D block-diagonal causal mask).
- `StepSchedule`: the stream of training items (every example once per epoch, packs reshuffled
  and repacked each epoch) and which of them go into which optimizer step; a pure function of
  (seed, stream position), so a resumed run sees exactly the data an uninterrupted one would.
"""
from __future__ import annotations

import logging
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..io import InputError, iter_jsonl
from ..settings import PACK_STRATEGIES, PROMPT_FORMS, DataSettings, as_section

log = logging.getLogger(__name__)

IGNORE = -100
SPLITS = ("train", "validation", "test")


class DataError(ValueError):
    """Bad or missing SFT data; the message names the file and line."""


def split_path(data_dir: Path, level: str, split: str) -> Path:
    """The path of a curated split: ``<data_dir>/<level>/<split>.jsonl``.

    Returns:
        ``Path(data_dir) / level / f"{split}.jsonl"``, whether or not the file exists.
    """
    return Path(data_dir) / level / f"{split}.jsonl"


def read_split(data_dir: Path, level: str, split: str, limit: int | None = None) -> list[dict]:
    """The rows of one curated split.

    Args:
        data_dir: the curated output folder (``data/merged``).
        level: the description level (a subfolder).
        split: ``train``, ``validation`` or ``test``.
        limit: keep only the first ``limit`` rows (None: all).

    Returns:
        Rows ``{"id", "input", "output"}`` in file order (a missing id becomes ``<split>-<line>``).

    Raises:
        DataError: the file is missing (the message lists what the folder has), a line is not
            JSON, a row lacks a non-empty string ``input``/``output`` (``file:line`` named), or the
            file has no rows.
    """
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


def uses_chat_template(tokenizer, data_cfg: DataSettings | dict) -> bool:
    """True when prompts go through the tokenizer's chat template (``data.prompt_template: chat``
    and the tokenizer has one). ``data_cfg``: the ``data:`` settings (a mapping is checked).

    Returns:
        True when ``prompt_template`` is ``chat`` and ``tokenizer.chat_template`` is set and non-empty.

    Raises:
        ConfigError: ``data_cfg`` is a mapping with a bad ``data.<key>``.
    """
    data_cfg = as_section(DataSettings, data_cfg, "data")
    return data_cfg.prompt_template == "chat" and bool(getattr(tokenizer, "chat_template", None))


def build_prompt(tokenizer, text: str, data_cfg: DataSettings | dict, system: str | None = None) -> str:
    """The prompt text for one description (everything before the output the model must write).

    system: the system message (chat templates; default `data.system_prompt`). A plain template has
    no system slot: a given system text is put before the instruction, separated by a blank line.

    Returns:
        The prompt as text: the chat template rendered with ``add_generation_prompt=True`` (it ends
        with the assistant turn's opening), or ``data.plain_template`` with ``{input}`` filled in.

    Raises:
        ConfigError: ``data_cfg`` is a mapping with a bad ``data.<key>``.
    """
    data_cfg = as_section(DataSettings, data_cfg, "data")
    system = data_cfg.system_prompt if system is None else system
    if uses_chat_template(tokenizer, data_cfg):
        messages = [{"role": "user", "content": text}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return data_cfg.plain_template.format(input=f"{system}\n\n{text}" if system else text)


def prompt_ids(tokenizer, text: str, data_cfg: DataSettings | dict, system: str | None = None) -> list[int]:
    """THE token ids of a prompt, for training (`encode_rows`) and generation (`predict`, the
    VerilogEval runner) alike: the same function, so the model sees at generation exactly the
    tokens it was trained on. A chat template's text already holds its special tokens (no extra
    BOS); a plain prompt gets what the tokenizer adds itself (e.g. Llama's BOS).

    Returns:
        The prompt's token ids (the prompt only: no output tokens, no EOS), as a list of ints.

    Raises:
        ConfigError: ``data_cfg`` is a mapping with a bad ``data.<key>``.
    """
    prompt = build_prompt(tokenizer, text, data_cfg, system)
    return tokenizer(prompt, add_special_tokens=not uses_chat_template(tokenizer, data_cfg))["input_ids"]


def text_ids(tokenizer, prompt: str) -> list[int]:
    """Ids of an already built prompt text (for callers that hold only the text): the tokenizer's own
    special tokens (e.g. a plain prompt's BOS) are added unless the text already starts with the BOS
    token's text, as a rendered chat template does. Same ids as `prompt_ids` for the text it builds
    with SmolLM2-, Llama- and CodeLlama-style tokenizers; `prompt_ids` is the route to prefer.

    Returns:
        The token ids of ``prompt`` as a list of ints.
    """
    bos = getattr(tokenizer, "bos_token", None)
    return tokenizer(prompt, add_special_tokens=not (bos and prompt.startswith(bos)))["input_ids"]


# ----------------------------------------------------------------------------- prompt forms
# A curated row's input is "<description>\n\nModule header:\n<header>" and its output the whole module.
# Trained on that form alone, a model learns to copy a header it is given; benchmarks and users ask
# in other forms (a port list in prose and a module name; a description alone). `data.prompt_forms`
# lists the forms each training row is shown in (one example per form, the answer always the full
# module, plain, as `evaluate.extract` reads it):
#   header       the curated input: description + "Module header:" + header (wrapper residue removed)
#   ports        "Write a Verilog module named N with these ports ..." + a port list + description
#   description  the description alone (the model writes the header too)
#   spec         the ports form in VerilogEval's question format: upstream's interface wording ("I would
#                like you to implement a module named N with the following interface ...") inside the
#                runner's Question / Answer text (`evaluate.verilogeval.build_prompt`, 0 shots). The
#                format only: no benchmark problem's content. The answer stays the plain module.
HEADER_MARK = "Module header:"
_WRAPPER_RE = re.compile(r"<<\s*/?\s*SYS\s*>>|\[/?INST\]|</?s>")


def split_input(text: str) -> tuple[str, str | None]:
    """(description, header or None) of a curated input; wrapper residue (<<SYS>>, [INST], <s>) removed.

    Returns:
        ``(description, header)``: the text before the LAST ``Module header:`` (all of it when there is
        none), wrapper tokens removed and stripped; the text after it, stripped, or None when there
        is no mark or nothing follows it.
    """
    desc, mark, header = text.rpartition(HEADER_MARK)
    if not mark:
        desc, header = text, None
    desc = _WRAPPER_RE.sub("", desc).strip()  # text layout (tables, aligned lists) is kept as written
    return desc, (header.strip() or None) if header is not None else None


def _width(rng: str) -> str:
    """'[7:0]' -> '8 bits'; '[W-1:0]' -> 'W bits'; anything else as written.

    Returns:
        ``"<n> bits"``, ``"<NAME> bits"``, or ``"bits <range as written>"`` for other ranges.
    """
    m = re.fullmatch(r"\[\s*(\d+)\s*:\s*(\d+)\s*\]", rng)
    if m:
        return f"{abs(int(m.group(1)) - int(m.group(2))) + 1} bits"
    m = re.fullmatch(r"\[\s*\(?\s*([A-Za-z_]\w*)\s*\)?\s*-\s*1\s*:\s*0\s*\]", rng)
    if m:
        return f"{m.group(1)} bits"
    return f"bits {rng}"


SPEC_INTRO = ("I would like you to implement a module named {name} with the following\ninterface. All input "
              "and output ports are one bit unless otherwise\nspecified.")


def ports_prompt(description: str, header: str, code: str, intro: str | None = None) -> str | None:
    """The 'ports' form: module name, parameters and a port list in prose, then the description.
    intro: another first sentence ({name} = the module's name; `SPEC_INTRO` for the 'spec' form).
    None when the module's ports cannot be read (see `evaluate.vparse`).

    Returns:
        The prompt text: the intro line, ``Parameters: ...`` when the module has any, one
        `` - <direction> <name> (<width>)`` line per port, a blank line, then ``description``. None when
        the header names no module, ``code`` does not define it, it has no ports, or its ports use
        constructs the parser does not support.
    """
    from ..evaluate.vparse import parse_modules

    name_m = re.search(r"(?<![\w$`])module\s+([A-Za-z_]\w*)", header)
    if not name_m:
        return None
    mods = [m for m in parse_modules(code) if m.name == name_m.group(1)]
    if not mods or not mods[0].ports or mods[0].unsupported:
        return None
    mod = mods[0]
    lines = [intro.format(name=mod.name) if intro else
             f"Write a Verilog module named {mod.name} with the following ports (one bit unless a width is given)."]
    if mod.params:
        lines.append("Parameters: " + ", ".join(f"{n} = {v}" if v else n for n, v in mod.params) + ".")
    lines.append("")
    for p in mod.ports:
        width = f" ({'signed, ' if p.signed else ''}{_width(p.range)})" if p.range else (" (signed)" if p.signed else "")
        lines.append(f" - {p.direction:<6} {p.name}{width}")
    return "\n".join(lines) + "\n\n" + description


def form_input(row: dict, form: str) -> str | None:
    """The input text of `row` in prompt form `form`, or None when the row cannot take that form.

    Returns:
        The input text in that form. ``header`` always gives a text (the input unchanged when it has
        no header); ``description``, ``ports`` and ``spec`` give None when the description is empty,
        and ``ports``/``spec`` also when there is no header or its ports cannot be read.

    Raises:
        DataError: ``form`` is not one of ``PROMPT_FORMS``.
    """
    if form not in PROMPT_FORMS:
        raise DataError(f"data.prompt_forms: unknown form {form!r} (known: {', '.join(PROMPT_FORMS)})")
    desc, header = split_input(row["input"])
    if form == "header":
        return f"{desc}\n\n{HEADER_MARK}\n{header}" if header else row["input"]
    if not desc:
        return None
    if form == "description":
        return desc
    if form == "spec":
        from ..evaluate.verilogeval import build_prompt as question

        text = ports_prompt(desc, header, row["output"], SPEC_INTRO) if header else None
        return question(text, shots=0, include_system=False) if text else None
    return ports_prompt(desc, header, row["output"]) if header else None


def expand_forms(rows: list[dict], forms) -> tuple[list[dict], Counter]:
    """Each row once per form in `forms` (ids `<id>` for 'header', `<id>#<form>` otherwise).
    A row that cannot take a form is counted under `no_<form>_form` and shown in its other forms.

    Returns:
        ``(rows, stats)``: the expanded rows, row by row and in the order of ``forms`` within a row
        (``forms`` empty or None means ``["header"]``), and counts ``form_<form>`` / ``no_<form>_form``.

    Raises:
        DataError: a name in ``forms`` is not one of ``PROMPT_FORMS``.
    """
    forms = list(forms or ["header"])
    if not forms:
        raise DataError("data.prompt_forms is empty: list at least one of " + ", ".join(PROMPT_FORMS))
    out, stats = [], Counter()
    for row in rows:
        for form in forms:
            text = form_input(row, form)
            if text is None:
                stats[f"no_{form}_form"] += 1
                continue
            stats[f"form_{form}"] += 1
            out.append(dict(row, input=text, id=row["id"] if form == "header" else f"{row['id']}#{form}"))
    return out, stats


@dataclass
class Encoded:
    """The output of ``encode_rows``: the examples (``id``, ``input_ids``, ``targets``) and the counts
    of what happened to the rows (kept, truncated, dropped with their reason, prompt forms).
    """
    examples: list[dict]
    stats: Counter = field(default_factory=Counter)


def encode_rows(rows: list[dict], tokenizer, data_cfg: DataSettings | dict, max_len: int) -> Encoded:
    """Each example: input_ids and targets (targets[i] = the token at i+1 when it is an output token, else -100).
    ``data_cfg``: the ``data:`` settings (a mapping is checked: ConfigError naming ``data.<key>``).

    Returns:
        ``Encoded``: one example per (row, prompt form) kept, with ``input_ids`` (prompt + output +
        EOS token ids, at most ``max_len`` tokens) and ``targets`` of the same length; ``stats`` counts
        ``rows``, ``examples``, ``kept``, ``over_length``, ``truncated``, ``dropped_over_length``,
        ``dropped_prompt_too_long`` (the prompt alone is ``max_len - 1`` tokens or more) and the forms.

    Raises:
        DataError: the tokenizer has no EOS token, or ``data.prompt_forms`` names an unknown form.
        ConfigError: ``data_cfg`` is a mapping with a bad ``data.<key>``.
    """
    data_cfg = as_section(DataSettings, data_cfg, "data")
    overlength = data_cfg.overlength
    eos = tokenizer.eos_token_id
    if eos is None:
        raise DataError("the tokenizer has no EOS token; set one in the model folder's tokenizer config")
    out = Encoded(examples=[])
    n_rows = len(rows)
    rows, form_stats = expand_forms(rows, data_cfg.prompt_forms)
    out.stats.update(form_stats)
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
    out.stats["rows"] = n_rows
    out.stats["examples"] = len(rows)
    return out


def describe_counts(split: str, stats: dict, max_len: int, overlength: str) -> tuple[int, str]:
    """(logging level, one line) on what `encode_rows` kept of a split: used / dropped / truncated rows.

    A WARNING when rows were dropped or truncated, with the key that changes it. When one row
    gives several training examples (stats["examples"] > stats["rows"]), counts are of examples.

    Returns:
        ``(level, text)``: ``logging.INFO`` when nothing was dropped or truncated, else
        ``logging.WARNING``; ``text`` e.g. ``"train: 95 of 100 rows used; 5 (5 %) longer than
        max_seq_len=2048 dropped (raise data.max_seq_len to keep them)"``.
    """
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

    Returns:
        The packs, each a non-empty list of the example dicts (the same objects); every example is
        in exactly one pack. An example longer than ``seq_len`` tokens gets a pack of its own.

    Raises:
        DataError: ``strategy`` is not one of ``PACK_STRATEGIES``.
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
    if strategy not in PACK_STRATEGIES:
        raise DataError(f"data.pack_strategy must be one of {', '.join(PACK_STRATEGIES)}, not {strategy!r}")
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


def collate(items: list[list[dict]], pad_id: int, packed: bool, additive_mask: bool = False):
    """items: a micro-batch; each item is a list of examples (one example unless packed).

    Returns:
        A dict of CPU tensors, with B = len(items) and T the longest item in tokens (right-padded
        with ``pad_id``, targets -100 there): ``input_ids``, ``targets`` and ``position_ids``
        (B, T) int64 (positions restart at 0 for every example of a pack, and for the padding);
        ``attention_mask``: a 2D padding mask (B, T) int64 1/0 when not packed, else a 4D
        block-diagonal causal mask (B, 1, T, T), bool (True = may attend) or, with
        ``additive_mask``, float32 0 / most negative float32 (what eager attention adds to its scores).
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
    if additive_mask:
        mask = torch.zeros(mask.shape, dtype=torch.float32).masked_fill(~mask, torch.finfo(torch.float32).min)
    return {"input_ids": input_ids, "targets": targets, "position_ids": position_ids, "attention_mask": mask}


def _shuffled(examples: list[dict], rng: random.Random) -> list[dict]:
    order = list(range(len(examples)))
    rng.shuffle(order)
    return [examples[i] for i in order]


def _split_to(packs: list[list[dict]], n_packs: int) -> list[list[dict]]:
    """Split packs (the one holding most samples first) until there are n_packs of them.

    Returns:
        New lists (the input is not changed): ``max(n_packs, len(packs))`` packs.

    Raises:
        ValueError: every pack holds a single sample before ``n_packs`` is reached.
    """
    packs = [list(p) for p in packs]
    while len(packs) < n_packs:
        i = max(range(len(packs)), key=lambda j: len(packs[j]))
        if len(packs[i]) < 2:
            raise ValueError(f"cannot make {n_packs} packs out of {len(packs)} single samples")
        half = len(packs[i]) // 2
        packs[i:i + 1] = [packs[i][:half], packs[i][half:]]
    return packs


def epoch_items(examples: list[dict], seed: int, epoch: int, packed: bool, seq_len: int,
                strategy: str = "next_fit", n_packs: int | None = None,
                fallback: list[list[dict]] | None = None) -> list[list[dict]]:
    """The items of one epoch, in training order: every example exactly once.

    Unpacked: the examples in a seed- and epoch-determined random order, one per item.
    Packed: the examples shuffled (seed, epoch), packed with `strategy`, and the packs shuffled
    again (best_fit sorts inside its windows, so its packs come out longest first). With n_packs,
    the epoch has exactly that many packs: a packing that comes out shorter has its packs holding
    most samples split in two; one that comes out longer is drawn again from a new shuffle (up to
    `REPACK_TRIES` times), else the samples are grouped as in `fallback` (epoch 0's packs).

    Returns:
        The epoch's items in training order, each a list of example dicts (exactly one when not
        packed); exactly ``n_packs`` items when it is given.

    Raises:
        ValueError: with ``n_packs``, every packing gave more packs and ``fallback`` is missing or
            has more too, or a shorter packing cannot be split up to ``n_packs`` (too few samples).
        DataError: ``strategy`` is not one of ``PACK_STRATEGIES``.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    if not packed:
        return [[ex] for ex in _shuffled(examples, rng)]
    packs = pack_examples(_shuffled(examples, rng), seq_len, strategy)
    tries = 0
    while n_packs is not None and len(packs) > n_packs and tries < REPACK_TRIES:
        packs = pack_examples(_shuffled(examples, rng), seq_len, strategy)
        tries += 1
    if n_packs is not None and len(packs) > n_packs:
        if fallback is None or len(fallback) > n_packs:
            raise ValueError(f"epoch {epoch}: could not pack into {n_packs} packs")
        log.warning("packing epoch %d: %d shuffles all gave more than %d packs; reusing epoch 0's grouping "
                    "(in a new order)", epoch, REPACK_TRIES + 1, n_packs)
        packs = fallback
    if n_packs is not None:
        packs = _split_to(packs, n_packs)
    rng.shuffle(packs)
    return packs


REPACK_TRIES = 16


def packs_per_epoch(n_packed: int, n_examples: int) -> int:
    """Packs in every epoch when epoch 0's shuffled packing made `n_packed`: 1 % more (at least one
    more, at most one pack per example), so that almost every later shuffle packs into it; shorter
    packings are split up to it.

    Returns:
        ``min(n_examples, n_packed + max(1, ceil(n_packed / 100)))``.
    """
    return min(n_examples, n_packed + max(1, -(-n_packed // 100)))


class StepSchedule:
    """A fixed, seed-determined stream of training items, epoch after epoch, and which of them
    optimizer step s takes.

    Every epoch holds every example exactly once and has the same number of items
    (`items_per_epoch`: the examples, or the packs; see `epoch_items`), so stream position k is
    item k % items_per_epoch of epoch k // items_per_epoch, whatever the packing drew. The stream
    depends only on (examples, seed, packing), not on the batch size: a run that resumes with
    another global batch continues at the number of items consumed (`items_at`).
    `items(step)` = items [s*G, (s+1)*G) for a run that kept G items per step from step 0.
    """

    def __init__(self, examples: list[dict], seed: int, items_per_step: int, packed: bool, seq_len: int,
                 strategy: str = "next_fit"):
        if not examples:
            raise DataError("no training examples left after formatting (all rows over length?)")
        self.examples, self.seed, self.per_step = examples, seed, items_per_step
        self.packed, self.seq_len, self.strategy = packed, seq_len, strategy
        self._epochs: dict[int, list[list[dict]]] = {}
        first = epoch_items(examples, seed, 0, packed, seq_len, strategy)
        self.items_per_epoch = packs_per_epoch(len(first), len(examples)) if packed else len(first)
        self._epoch0_packs = first
        if packed:
            self._epochs[0] = epoch_items(examples, seed, 0, packed, seq_len, strategy, self.items_per_epoch, first)
        else:
            self._epochs[0] = first

    def _epoch(self, e: int) -> list[list[dict]]:
        if e not in self._epochs:
            self._epochs[e] = epoch_items(self.examples, self.seed, e, self.packed, self.seq_len, self.strategy,
                                          self.items_per_epoch if self.packed else None, self._epoch0_packs)
            if len(self._epochs) > 4:  # keep a few epochs (resume and eval look back at most one)
                self._epochs.pop(min(k for k in self._epochs if k != e))
        return self._epochs[e]

    def items_at(self, position: int, count: int) -> list[list[dict]]:
        """Stream items [position, position + count).

        Returns:
            ``count`` items, each a list of example dicts (one example unless packed), crossing
            epoch boundaries as needed.
        """
        out = []
        for k in range(position, position + count):
            e, i = divmod(k, self.items_per_epoch)
            out.append(self._epoch(e)[i])
        return out

    def items(self, step: int) -> list[list[dict]]:
        """The items of optimizer step ``step`` for a run that took ``items_per_step`` items from step 0.

        Returns:
            ``items_per_step`` items (stream positions ``[step * G, (step + 1) * G)``).
        """
        return self.items_at(step * self.per_step, self.per_step)

    def epoch_at(self, position: int) -> float:
        """Epochs done after `position` stream items (2.5 = half way through the third epoch).

        Returns:
            ``position / items_per_epoch`` as a float.
        """
        return position / self.items_per_epoch

    def epoch_of(self, step: int) -> float:
        """Epochs done after ``step`` optimizer steps of ``items_per_step`` items.

        Returns:
            ``step * items_per_step / items_per_epoch`` as a float.
        """
        return self.epoch_at(step * self.per_step)


def eval_batches(examples: list[dict], micro_batch_size: int) -> list[list[list[dict]]]:
    """Validation: every example once, unpacked, in file order.

    Returns:
        ``ceil(len(examples) / micro_batch_size)`` micro-batches (the last may be shorter), each a
        list of items, each item a one-example list (the shape ``collate`` takes).
    """
    items = [[ex] for ex in examples]
    return [items[i:i + micro_batch_size] for i in range(0, len(items), micro_batch_size)]
