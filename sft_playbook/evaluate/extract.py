"""Take the Verilog out of a model's answer.

Rules, in order:
1. If the answer has a `[BEGIN]` ... `[DONE]` block (VerilogEval style) or a ``` fenced block, the
   code is inside the first such block that contains Verilog (a block with `module`/`endmodule`
   is preferred over one without). A missing closing marker takes the rest of the answer.
2. Otherwise the whole answer is searched.
3. The code starts at the first `module` keyword and stops at the first complete `endmodule`;
   when the expected top module name is known and defined later (helper modules written first),
   it stops at the `endmodule` that closes that module instead.
4. An answer that is only a module body (MG-Verilog style: no `module` keyword, but Verilog
   statements) gets the header re-attached: from the input (prompt) when that contains a module
   header, else from the reference. `endmodule` is appended when missing.

`extract_code` returns an `Extraction` with the code ('' when nothing usable was found), how it
was found, and a reason on failure.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .simulate import strip_comments

_BEGIN_RE = re.compile(r"\[BEGIN\]", re.I)
_DONE_RE = re.compile(r"\[DONE\]", re.I)
_FENCE_RE = re.compile(r"^[ \t]*```[^\n`]*\n(.*?)(?:^[ \t]*```|\Z)", re.S | re.M)
_MODULE_RE = re.compile(r"(?<![\w$`])(?:module|macromodule)\s+([A-Za-z_]\w*)(?=\s*(?:#|\(|;))")
_ENDMODULE_RE = re.compile(r"(?<![\w$])endmodule\b")
_BODY_HINT_RE = re.compile(r"(?<![\w$])(assign|always|always_ff|always_comb|always_latch|reg|wire|logic|"
                           r"initial|endmodule|generate|case|localparam|parameter|integer)\b")


@dataclass
class Extraction:
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


def _cut_modules(text: str, expected: str | None) -> str | None:
    """From the first `module` to the first complete `endmodule` (or the expected module's)."""
    first = _MODULE_RE.search(text)
    if not first:
        return None
    start = first.start()
    # Respect a preceding `timescale line? Not needed; iverilog accepts modules without it.
    pos = start
    while True:
        mod = _MODULE_RE.search(text, pos)
        if not mod:
            return None
        end = _ENDMODULE_RE.search(text, mod.end())
        if not end:
            return None  # incomplete module: nothing complete to evaluate
        if expected is None or mod.group(1) == expected or not _has_module(text[end.end():], expected):
            return text[start:end.end()].strip() + "\n"
        pos = end.end()


def _has_module(text: str, name: str) -> bool:
    return any(m.group(1) == name for m in _MODULE_RE.finditer(text))


def module_header(code: str, name: str | None = None) -> str | None:
    """'module X #(...) (...);' of the named (or first) module, comments removed."""
    src = strip_comments(code)
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
    return bool(_BODY_HINT_RE.search(strip_comments(text)))


def extract_code(answer: str | None, *, expected_module: str | None = None, input_text: str | None = None,
                 reference: str | None = None) -> Extraction:
    """Extract Verilog from a model answer (see the module docstring for the rules)."""
    if not answer or not answer.strip():
        return Extraction("", "none", False, "empty answer")
    candidates = _blocks(answer)
    with_module = [(how, b) for how, b in candidates if _MODULE_RE.search(b)]
    ordered = with_module + [(how, b) for how, b in candidates if (how, b) not in with_module] + [("raw", answer)]
    for how, block in ordered:
        code = _cut_modules(block, expected_module)
        if code:
            if how != "raw":  # keep what precedes the first module in a code block (`timescale, `define, comments)
                first = _MODULE_RE.search(block)
                head = block[: first.start()].strip() if first else ""
                code = f"{head}\n{code}" if head else code
            return Extraction(code, how, True)
        if _MODULE_RE.search(strip_comments(block)) and how != "raw":
            return Extraction("", how, False, "module without a matching endmodule")
    # No complete module anywhere: a module body?
    body_src = next((b for how, b in ordered if how != "raw" and b.strip()), answer)
    if _MODULE_RE.search(strip_comments(body_src)):
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
