"""A small Verilog header parser: modules, their parameters and ports (ANSI and non-ANSI).

Enough for generating a differential testbench: port name, direction, packed range text (kept as
written, e.g. `[WIDTH-1:0]`, so iverilog evaluates it), signedness, and the parameter
declarations the ranges depend on. Anything it cannot represent (unpacked array ports, interface
ports, inout) is reported in `Module.unsupported`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .simulate import strip_comments

_MODULE_RE = re.compile(r"(?<![\w$`])(?:module|macromodule)\s+([A-Za-z_]\w*)")
_ENDMODULE_RE = re.compile(r"(?<![\w$])endmodule\b")
_INST_RE = re.compile(r"(?<![\w$.`])([A-Za-z_]\w*)\s+(?:#\s*\(.*?\)\s*)?([A-Za-z_]\w*)\s*(?:\[[^\]]*\]\s*)?\(", re.S)
_DIRS = ("input", "output", "inout")
_TYPES = {"wire", "reg", "logic", "bit", "tri", "var", "signed", "unsigned", "integer", "int", "byte",
          "shortint", "longint", "uwire", "wand", "wor"}
_KEYWORDS = {"module", "endmodule", "input", "output", "inout", "wire", "reg", "logic", "assign", "always",
             "initial", "begin", "end", "if", "else", "case", "endcase", "for", "while", "function",
             "task", "generate", "parameter", "localparam", "posedge", "negedge", "or", "and", "not"}


@dataclass
class Port:
    name: str
    direction: str          # input | output | inout
    range: str = ""         # packed range text, '' for one bit
    signed: bool = False

    @property
    def one_bit(self) -> bool:
        return not self.range


@dataclass
class Module:
    name: str
    ports: list[Port] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)   # (name, default expression)
    unsupported: list[str] = field(default_factory=list)
    body: str = ""

    def port(self, name: str) -> Port | None:
        return next((p for p in self.ports if p.name == name), None)


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split at `sep` outside (), [], {}."""
    parts, depth, cur = [], 0, []
    for c in text:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _match_paren(text: str, i: int) -> int:
    """Index of the ')' matching the '(' at i (or -1)."""
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "(":
            depth += 1
        elif text[j] == ")":
            depth -= 1
            if depth == 0:
                return j
    return -1


def _parse_param_list(text: str) -> list[tuple[str, str]]:
    out = []
    for item in split_top(text):
        item = re.sub(r"^\s*(parameter|localparam)\b", "", item).strip()
        m = re.match(r"(?:(?:integer|int|real|logic|bit|signed|unsigned|\[[^\]]*\])\s*)*([A-Za-z_]\w*)\s*=\s*(.+)$", item, re.S)
        if m:
            out.append((m.group(1), m.group(2).strip()))
    return out


def _parse_decl(decl: str, module: Module, prev: Port | None) -> Port | None:
    """One ANSI port item or one non-ANSI declaration (possibly several names)."""
    decl = decl.strip()
    m = re.match(r"(input|output|inout)\b(.*)$", decl, re.S)
    if m:
        direction, rest = m.group(1), m.group(2)
        signed = bool(re.search(r"\bsigned\b", rest))
        is_int = re.search(r"\b(integer|int)\b", rest)
        # drop net/var types, keep the packed ranges (everything from the first '[' up to the names)
        words = rest.strip()
        ranges = ""
        while True:
            words = words.strip()
            tm = re.match(r"([A-Za-z_]\w*)\b", words)
            if tm and tm.group(1) in _TYPES:
                words = words[tm.end():]
                continue
            if words.startswith("["):
                depth, j = 0, 0
                for j, c in enumerate(words):
                    depth += c == "["
                    depth -= c == "]"
                    if depth == 0:
                        break
                ranges += words[: j + 1]
                words = words[j + 1:]
                continue
            break
        if tm and tm.group(1) not in _TYPES and "." in words.split(",")[0] and not words.startswith("["):
            module.unsupported.append(f"interface port {decl!r}")
            return None
        if is_int and not ranges:
            ranges = "[31:0]"
            signed = True
        names_text = words
        proto = Port("", direction, ranges, signed)
    elif prev is not None:  # ANSI continuation: 'input [3:0] a, b' -> 'b'
        names_text, proto = decl, prev
    else:
        return None
    last = None
    for name_item in split_top(names_text):
        nm = re.match(r"([A-Za-z_]\w*)\s*(\[.*\])?\s*(=.*)?$", name_item, re.S)
        if not nm:
            if "." in name_item or re.match(r"[A-Za-z_]\w*\s+[A-Za-z_]\w*", name_item):
                module.unsupported.append(f"port declaration {decl!r}")
            continue
        if nm.group(2):
            module.unsupported.append(f"unpacked array port {nm.group(1)!r}")
            continue
        port = Port(nm.group(1), proto.direction, proto.range, proto.signed)
        if port.direction == "inout":
            module.unsupported.append(f"inout port {port.name!r}")
        existing = module.port(port.name)
        if existing:
            existing.direction, existing.range, existing.signed = port.direction, port.range or existing.range, port.signed or existing.signed
        else:
            module.ports.append(port)
        last = port
    return last


def parse_modules(code: str) -> list[Module]:
    """All modules in `code` with their ports and parameters."""
    src = strip_comments(code)
    mods = []
    for m in _MODULE_RE.finditer(src):
        end = _ENDMODULE_RE.search(src, m.end())
        stop = end.start() if end else len(src)
        mod = Module(m.group(1))
        i = m.end()
        while i < stop and src[i].isspace():
            i += 1
        if i < stop and src[i] == "#":
            j = src.find("(", i)
            k = _match_paren(src, j)
            if j < 0 or k < 0:
                mod.unsupported.append("unparsable parameter list")
                mods.append(mod)
                continue
            mod.params.extend(_parse_param_list(src[j + 1:k]))
            i = k + 1
            while i < stop and src[i].isspace():
                i += 1
        port_names_only: list[str] = []
        if i < stop and src[i] == "(":
            k = _match_paren(src, i)
            if k < 0:
                mod.unsupported.append("unparsable port list")
                mods.append(mod)
                continue
            items = split_top(src[i + 1:k])
            ansi = any(re.match(r"(input|output|inout)\b", it) for it in items)
            prev = None
            for it in items:
                if ansi:
                    prev = _parse_decl(it, mod, prev)
                else:
                    nm = re.match(r"\.?\s*([A-Za-z_]\w*)", it)
                    if nm:
                        port_names_only.append(nm.group(1))
            semi = src.find(";", k)
            body = src[semi + 1: stop] if semi >= 0 else ""
        else:
            semi = src.find(";", i)
            body = src[semi + 1: stop] if semi >= 0 else ""
        mod.body = body
        for stmt in body.split(";"):
            s = stmt.strip()
            pm = re.match(r"(parameter|localparam)\b(.*)$", s, re.S)
            if pm:
                mod.params.extend(_parse_param_list(pm.group(2)))
            elif re.match(r"(input|output|inout)\b", s) and port_names_only:
                _parse_decl(s, mod, None)
        if port_names_only:
            order = {n: idx for idx, n in enumerate(port_names_only)}
            for n in port_names_only:
                if not mod.port(n):
                    mod.unsupported.append(f"port {n!r} has no direction declaration")
            mod.ports.sort(key=lambda p: order.get(p.name, len(order)))
            mod.ports = [p for p in mod.ports if p.name in order]
        mods.append(mod)
    return mods


def instantiated_names(module: Module, known: set[str]) -> set[str]:
    """Names of modules (among `known`) that `module` instantiates."""
    found = set()
    for m in _INST_RE.finditer(module.body):
        if m.group(1) in known and m.group(1) not in _KEYWORDS:
            found.add(m.group(1))
    return found


def top_module(mods: list[Module], prefer: str | None = None) -> Module | None:
    """The module called `prefer` if present; else the last one no other module instantiates."""
    if not mods:
        return None
    if prefer:
        for m in mods:
            if m.name == prefer:
                return m
    names = {m.name for m in mods}
    used = set()
    for m in mods:
        used |= instantiated_names(m, names - {m.name})
    roots = [m for m in mods if m.name not in used]
    return (roots or mods)[-1]


_IDENT_RE = re.compile(r"(?<![\w$'])([A-Za-z_]\w*)")


def params_needed(module: Module) -> list[tuple[str, str]]:
    """The parameters the port ranges depend on (transitively), in declaration order."""
    defs = dict(module.params)
    need: set[str] = set()
    todo = [ident for p in module.ports for ident in _IDENT_RE.findall(p.range)]
    while todo:
        name = todo.pop()
        if name in defs and name not in need:
            need.add(name)
            todo.extend(_IDENT_RE.findall(defs[name]))
    seen, out = set(), []
    for name, expr in module.params:
        if name in need and name not in seen:
            seen.add(name)
            out.append((name, expr))
    return out
