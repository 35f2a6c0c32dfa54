"""Take the Verilog design out of a model's answer.

A design is every module of the answer, not just the first one. Rules, in order:
1. If the answer has a `[BEGIN]` ... `[DONE]` block (VerilogEval style) or ``` fenced blocks, the
   design is the code block that holds the expected top module (else the first block with a
   complete module): everything from its first `module` (with the `timescale/`define lines
   before it) to its last complete `endmodule`, helpers before or after the top alike. Modules
   that block instantiates but does not define are taken from the other blocks. A missing
   closing marker takes the rest of the answer.
2. Otherwise the whole answer is searched (only `module` at the start of a line counts, so prose
   that mentions "module adder (...)" is not code): the top (the expected name, else a module no
   other instantiates, preferring ports that match the reference's) and every module it
   instantiates, directly or not, in the order written.
3. An answer that is only a module body (MG-Verilog style: no `module` keyword, but Verilog
   statements or just port declarations) gets the header re-attached: from the input (the text
   after its last "Module header:" when it has one), else from the reference. `endmodule` is
   appended when missing.
Module names may be escaped identifiers (`module \\$not (A, Y);`).

`extract_code` returns an `Extraction` with the code ('' when nothing usable was found), how it
was found, and a reason on failure. An answer longer than `max_chars` (default
DEFAULT_MAX_ANSWER_CHARS; config `predictions.max_answer_chars` / `verilogeval.max_answer_chars`)
is not searched at all: reason "answer too long". Everything else here is linear in the length
of the answer (measured in docs/security.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .simulate import strip_comments
from .vparse import IDENT, Module, parse_modules, top_module, instantiated_names

_BEGIN_RE = re.compile(r"\[BEGIN\]", re.I)
_DONE_RE = re.compile(r"\[DONE\]", re.I)
_FENCE_RE = re.compile(r"^[ \t]*```[^\n`]*\n(.*?)(?:^[ \t]*```|\Z)", re.S | re.M)
_MODULE_RE = re.compile(r"(?<![\w$`\\])(?:module|macromodule)\s+(" + IDENT + r")(?=\s*(?:#|\(|;))")
_LINE_MODULE_RE = re.compile(r"^[ \t]*(?:module|macromodule)\s+(" + IDENT + r")(?=\s*(?:#|\(|;))", re.M)
_ENDMODULE_RE = re.compile(r"(?<![\w$])endmodule\b")
_BODY_HINT_RE = re.compile(r"(?<![\w$])(assign|always|always_ff|always_comb|always_latch|reg|wire|logic|"
                           r"initial|endmodule|generate|case|localparam|parameter|integer)\b")
# a port declaration statement on its own line: 'input [3:0] a, b;' (a body may be only these)
_PORT_DECL_RE = re.compile(r"^[ \t]*(?:input|output|inout)\b[^;\n]*;", re.M)
_HEADER_MARK_RE = re.compile(r"module\s+header\s*:", re.I)


DEFAULT_MAX_ANSWER_CHARS = 65536   # characters of one answer searched for code; a longer one fails extraction


@dataclass
class Extraction:
    """The Verilog extracted from an answer: the code, how it was found (``method``), whether it is
    usable (``ok``) and, when not, why (``reason``).
    """
    code: str
    method: str          # begin_done | fence | raw | body+header_from_input | body+header_from_reference | none
    ok: bool
    reason: str = ""


def _blocks(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    m = _BEGIN_RE.search(text)
    if m:
        d = _DONE_RE.search(text, m.end())
        found.append(("begin_done", text[m.end(): d.start() if d else len(text)]))
    for fm in _FENCE_RE.finditer(text):
        found.append(("fence", fm.group(1)))
    return found


def module_spans(text: str, line_start: bool = False) -> list[tuple[str, int, int]]:
    """Every complete `module ... endmodule` in text, in order.

    Args:
        text: the text to search.
        line_start: only count ``module`` at the start of a line (after blanks), not in prose.

    Returns:
        ``(name, start, end)`` per module: character offsets of ``module`` and just past
        ``endmodule``; a module without its ``endmodule`` is skipped, and nothing after a final
        incomplete one is returned.
    """
    rx = _LINE_MODULE_RE if line_start else _MODULE_RE
    spans, pos = [], 0
    while True:
        mod = rx.search(text, pos)
        if not mod:
            return spans
        end = _ENDMODULE_RE.search(text, mod.end())
        if not end:
            return spans  # an incomplete module (cut generation): nothing complete after it
        nxt = rx.search(text, mod.end())
        if nxt and nxt.start() < end.start():  # a module without its endmodule, then another one
            pos = nxt.start()
            continue
        spans.append((mod.group(1), mod.start(), end.end()))
        pos = end.end()


def _block_code(block: str) -> str | None:
    """From the first module (with the directives before it) to the last complete endmodule.

    Returns:
        The block's directive lines before the first module (one per line), then the text from the
        first ``module`` to the last complete ``endmodule``, ending in a newline; None when the block
        has no complete module.
    """
    spans = module_spans(block)
    if not spans:
        return None
    first = _MODULE_RE.search(block)
    # before the first module only directives (`timescale, `define, ...) and comments are code;
    # a stray fence line or prose inside a [BEGIN] block is not
    head_src = strip_comments(block[: first.start()]) if first else ""
    head = "\n".join(ln.strip() for ln in head_src.splitlines() if ln.strip().startswith("`")
                     and not ln.strip().startswith("```"))
    body = block[spans[0][1]: spans[-1][2]].strip()
    return f"{head}\n{body}\n" if head else body + "\n"


def _closure(mods: list[Module], top: Module) -> set[str]:
    names = {m.name for m in mods}
    by_name = {m.name: m for m in mods}
    keep, todo = set(), [top.name]
    while todo:
        n = todo.pop()
        if n in keep or n not in by_name:
            continue
        keep.add(n)
        todo.extend(instantiated_names(by_name[n], names - {n}))
    return keep


def _missing_modules(code: str) -> set[str]:
    mods = parse_modules(code)
    defined = {m.name for m in mods}
    wanted: set[str] = set()
    for m in mods:
        wanted |= {n for n in instantiated_names(m, _ALL) if n not in defined}
    return wanted


class _AllNames(set):
    def __contains__(self, item) -> bool:  # every identifier is a possible module name
        return True


_ALL = _AllNames()


def module_header(code: str, name: str | None = None) -> str | None:
    """'module X #(...) (...);' of the named (or first) module, comments removed. In a prompt
    that has a "Module header:" line, only the text after its last such line is searched.

    Returns:
        The header text from ``module`` up to and including its ``;``; None when there is no such
        module or its header never ends.
    """
    marks = list(_HEADER_MARK_RE.finditer(code))
    src = strip_comments(code[marks[-1].end():] if marks else code)
    for m in _MODULE_RE.finditer(src):
        if name and m.group(1) != name:
            continue
        depth, i = 0, m.end()
        while i < len(src):
            c = src[i]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            elif c == ";" and depth == 0:
                return src[m.start(): i + 1]
            i += 1
        return None
    return None


def _looks_like_body(text: str) -> bool:
    src = strip_comments(text)
    return bool(_BODY_HINT_RE.search(src) or _PORT_DECL_RE.search(src))


def _reference_top(reference: str | None) -> Module | None:
    return top_module(parse_modules(reference)) if reference else None


def _from_blocks(blocks: list[tuple[str, str]], expected: str | None) -> tuple[str, str] | None:
    coded = [(how, b, _block_code(b)) for how, b in blocks]
    coded = [(how, b, c) for how, b, c in coded if c]
    if not coded:
        return None
    pick = next(((how, b, c) for how, b, c in coded if expected and any(n == expected for n, _, _ in module_spans(c))),
                coded[0])
    how, _, code = pick
    for _ in range(3):  # helpers written in another block
        missing = _missing_modules(code)
        if not missing:
            break
        extra = [b[s:e] for h, b, c in coded if c is not pick[2] for n, s, e in module_spans(b) if n in missing]
        if not extra:
            break
        code = code.rstrip() + "\n\n" + "\n\n".join(x.strip() for x in extra) + "\n"
    return how, code


def _from_raw(answer: str, expected: str | None, reference: str | None) -> str | None:
    spans = module_spans(answer, line_start=True) or module_spans(answer)
    if not spans:
        return None
    texts = [answer[s:e] for _, s, e in spans]
    mods = [next(iter(parse_modules(t)), Module(n)) for (n, _, _), t in zip(spans, texts)]
    names = {m.name for m in mods}
    top = next((m for m in mods if expected and m.name == expected), None)
    if top is None:
        used = set().union(*(instantiated_names(m, names - {m.name}) for m in mods))
        roots = [m for m in mods if m.name not in used] or mods
        ref = _reference_top(reference)
        if ref is not None:
            top = top_module(roots, reference=ref) if len(roots) > 1 else roots[0]
            want = {(p.name, p.direction) for p in ref.ports}
            if not want & {(p.name, p.direction) for p in top.ports}:
                top = roots[0]
        else:
            top = roots[0]
    keep = _closure(mods, top)
    return "\n\n".join(t.strip() for m, t in zip(mods, texts) if m.name in keep) + "\n"


def extract_code(answer: str | None, *, expected_module: str | None = None, input_text: str | None = None,
                 reference: str | None = None, max_chars: int | None = DEFAULT_MAX_ANSWER_CHARS) -> Extraction:
    """Extract the Verilog design from a model answer (see the module docstring for the rules).
    `max_chars`: longer answers fail with reason "answer too long" (None: no limit, e.g. for a
    reference from the data set).

    Returns:
        An ``Extraction``: ``ok`` with ``code`` (ending in a newline) and ``method`` (``begin_done``,
        ``fence``, ``raw``, ``body+header_from_input`` or ``body+header_from_reference``), or not
        ``ok`` with ``code`` '' and ``reason`` (e.g. ``empty answer``, ``answer too long``, ``module
        without a matching endmodule``, ``no Verilog module or module body found``).
    """
    if not answer or not answer.strip():
        return Extraction("", "none", False, "empty answer")
    if max_chars is not None and len(answer) > max_chars:
        return Extraction("", "none", False, "answer too long")
    blocks = _blocks(answer)
    got = _from_blocks(blocks, expected_module)
    if got:
        return Extraction(got[1], got[0], True)
    if any(_MODULE_RE.search(strip_comments(b)) for _, b in blocks):
        return Extraction("", blocks[0][0], False, "module without a matching endmodule")
    code = _from_raw(answer, expected_module, reference)
    if code:
        return Extraction(code, "raw", True)
    # No complete module anywhere: a module body?
    body_src = next((b for _, b in blocks if b.strip()), answer)
    if _LINE_MODULE_RE.search(strip_comments(body_src)):
        return Extraction("", "none", False, "module without a matching endmodule")
    if not _looks_like_body(body_src):
        return Extraction("", "none", False, "no Verilog module or module body found")
    for source, text in (("input", input_text), ("reference", reference)):
        header = module_header(text, expected_module) if text else None
        if header is None and text and expected_module:
            header = module_header(text)
        if header:
            body = body_src.strip()
            end = _ENDMODULE_RE.search(body)
            body = body[: end.start()].rstrip() if end else body
            return Extraction(f"{header}\n{body}\nendmodule\n", f"body+header_from_{source}", True)
    return Extraction("", "none", False, "module body without a header in the input or reference")
