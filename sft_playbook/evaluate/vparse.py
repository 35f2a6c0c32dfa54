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

# An identifier: simple ([A-Za-z_][A-Za-z0-9_$]*) or escaped (backslash up to the next white space).
IDENT = r"(?:[A-Za-z_][\w$]*|\\\S+)"
_MODULE_RE = re.compile(r"(?<![\w$`\\])(?:module|macromodule)\s+(" + IDENT + r")")
_ENDMODULE_RE = re.compile(r"(?<![\w$])endmodule\b")
# an instantiation `type [#( params )] name [ [range] ] (`, matched in linear time: the head, then
# the parameter list and the instance range skipped through precomputed bracket pairs
_INST_HEAD_RE = re.compile(r"(?<![\w$.`\\])(" + IDENT + r")\s+(#\s*\()?")
_INST_NAME_RE = re.compile(r"\s*(" + IDENT + r")\s*(\[)?")
_INST_OPEN_RE = re.compile(r"\s*\(")
_DIRS = ("input", "output", "inout")
_TYPES = {"wire", "reg", "logic", "bit", "tri", "var", "signed", "unsigned", "integer", "int", "byte",
          "shortint", "longint", "uwire", "wand", "wor"}
_KEYWORDS = {"module", "endmodule", "input", "output", "inout", "wire", "reg", "logic", "assign", "always",
             "initial", "begin", "end", "if", "else", "case", "endcase", "for", "while", "function",
             "task", "generate", "parameter", "localparam", "posedge", "negedge", "or", "and", "not"}


@dataclass
class Port:
    """A module port: name, direction (``input``/``output``/``inout``), packed range text and signedness."""
    name: str
    direction: str          # input | output | inout
    range: str = ""         # packed range text, '' for one bit
    signed: bool = False

    @property
    def one_bit(self) -> bool:
        """True when the port has no packed range."""
        return not self.range


@dataclass
class Module:
    """A parsed module: name, ports, parameters (name, default), constructs the parser does not
    support (reasons; a non-empty list means the ports may be incomplete) and the body text.
    """
    name: str
    ports: list[Port] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)   # (name, default expression)
    unsupported: list[str] = field(default_factory=list)
    body: str = ""

    def port(self, name: str) -> Port | None:
        """The port called ``name``.

        Returns:
            The first ``Port`` with that name, or None when the module has none.
        """
        return next((p for p in self.ports if p.name == name), None)


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split at `sep` outside (), [], {}.

    Returns:
        The pieces, stripped, empty ones left out.
    """
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
    """Index of the ')' matching the '(' at i (or -1).

    Returns:
        The index of the matching ``)``, or -1 when it never closes.
    """
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
    """One ANSI port item or one non-ANSI declaration (possibly several names).

    Returns:
        The last port declared or updated (for an ANSI continuation such as ``input [3:0] a, b``), or
        None when ``decl`` declares no port (constructs it cannot take are added to
        ``module.unsupported``).
    """
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
                for j, c in enumerate(words):  # noqa: B007 - j is read after the loop
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
    """All modules in `code` with their ports and parameters.

    Returns:
        One ``Module`` per ``module ... endmodule`` in source order (comments removed first): name, ports
        (non-ANSI headers: in header order, only the declared ones), parameters ``(name, default)``,
        ``unsupported`` reasons (e.g. an unparsable port list; the ports may then be incomplete) and the
        body text after the header.
    """
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


def bracket_pairs(text: str) -> dict[int, int]:
    """Index of each `(` and `[` of `text` -> index of its matching `)` / `]` (unmatched ones
    are absent). One pass, linear in len(text).

    Returns:
        ``{index of opener: index of its closer}``, character offsets into ``text``.
    """
    pairs: dict[int, int] = {}
    stacks: dict[str, list[int]] = {"(": [], "[": []}
    closer = {")": "(", "]": "["}
    for i, c in enumerate(text):
        if c in stacks:
            stacks[c].append(i)
        elif c in closer and stacks[closer[c]]:
            pairs[stacks[closer[c]].pop()] = i
    return pairs


def instantiated_names(module: Module, known: set[str]) -> set[str]:
    """Names of modules (among `known`) that `module` instantiates: `type [#(...)] name [[...]] (`.
    Linear in the length of the body (a parameter list or range without its closing bracket
    ends the candidate, it is never searched for again).

    Returns:
        The set of names from ``known`` that ``module.body`` instantiates (keywords never).
    """
    body = module.body
    found: set[str] = set()
    pairs: dict[int, int] | None = None
    for m in _INST_HEAD_RE.finditer(body):
        name = m.group(1)
        if name in found or name not in known or name in _KEYWORDS:
            continue
        i = m.end()
        if m.group(2):                       # `#(`: skip to its matching `)`
            if pairs is None:
                pairs = bracket_pairs(body)
            close = pairs.get(i - 1)
            if close is None:
                continue
            i = close + 1
        inst = _INST_NAME_RE.match(body, i)
        if not inst:
            continue
        i = inst.end()
        if inst.group(2):                    # instance array `[range]`
            if pairs is None:
                pairs = bracket_pairs(body)
            close = pairs.get(i - 1)
            if close is None:
                continue
            i = close + 1
        if _INST_OPEN_RE.match(body, i):
            found.add(name)
    return found


def top_module(mods: list[Module], prefer: str | None = None, reference: Module | None = None) -> Module | None:
    """The top of a design: the module called `prefer` if present; else the module no other module
    instantiates (when several, the one whose ports best match `reference`'s names and
    directions, ties to the last one); None for no modules.

    Returns:
        The chosen ``Module`` of ``mods``, or None when ``mods`` is empty.
    """
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
    roots = [m for m in mods if m.name not in used] or mods
    if reference is not None and len(roots) > 1:
        want = {(p.name, p.direction) for p in reference.ports}

        def score(m: Module) -> tuple[int, int]:
            have = {(p.name, p.direction) for p in m.ports}
            return len(want & have), -len(have - want)
        best = max(score(m) for m in roots)
        roots = [m for m in roots if score(m) == best]
    return roots[-1]


def emit_name(name: str) -> str:
    """A module name as it must be written in source: an escaped identifier ends with a space.

    Returns:
        ``name`` plus one space when it starts with a backslash, else ``name`` unchanged.
    """
    return name + " " if name.startswith("\\") else name


_ALWAYS_RE = re.compile(r"(?<![\w$])always(?:_ff|_latch)?\s*@\s*\(")
_EDGE_RE = re.compile(r"(posedge|negedge)\s+([A-Za-z_][\w$]*)")
_COND_RE = re.compile(r"^(?:(?P<neg>!|~)\s*)?(?P<name>[A-Za-z_][\w$]*)"
                      r"(?:\s*(?P<op>==|!=|===|!==)\s*(?P<val>1'[bBhHdD][01]|[01]))?$")
_CONST_RHS_RE = re.compile(r"^[\s\d'_a-fA-FxXzZsSbBhHoOdD{}(),+\-*]*$")


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _then_branch(body: str, i: int) -> str:
    """The statement starting at body[i] (a begin..end block or one statement up to ';').

    Returns:
        The statement's text: the ``begin`` ... matching ``end`` block, or up to and including the
        next ``;`` (the rest of ``body`` when there is none).
    """
    if re.match(r"begin\b", body[i:]):
        depth = 0
        for t in re.finditer(r"(?<![\w$])(begin|end)(?![\w$])", body[i:]):
            depth += 1 if t.group(1) == "begin" else -1
            if depth == 0:
                return body[i: i + t.end()]
        return body[i:]
    j = body.find(";", i)
    return body[i: j + 1 if j >= 0 else len(body)]


def _only_constants(stmt: str, consts: set[str]) -> bool:
    """Every assignment in stmt has a constant right-hand side (literals, parameters, {N{..}}).

    Returns:
        True when ``stmt`` has at least one assignment and all of them are constant; False otherwise.
    """
    found = False
    for m in re.finditer(r"(?:<=|(?<![=!<>])=(?!=))([^;]*);", stmt):
        rhs = m.group(1)
        for ident in re.findall(r"(?<![\w$'])[A-Za-z_][\w$]*", rhs):
            if ident not in consts and not re.fullmatch(r"[bBhHoOdD][0-9a-fA-FxXzZ_]+", ident):
                return False
        if not _CONST_RHS_RE.match(re.sub(r"(?<![\w$'])[A-Za-z_][\w$]*", "0", rhs)):
            return False
        found = True
    return found


def signal_roles(code: str) -> dict[str, tuple[str, bool]]:
    """Clocks and resets found by how the design uses them, over all modules of `code`:
    {name: ("clock" | "reset", active_low)}.

    - `always @(posedge a or negedge b)`: the signals tested by the block's first `if` are
      resets (asynchronous; active low when tested as `!b`/`~b`/`b == 0`, or by negedge), the
      other edge signals clocks;
    - `always @(posedge clk)`: clk is a clock; when the block's first statement is
      `if (x)` / `if (!x)` whose branch assigns only constants (literals, parameters), x is a
      (synchronous) reset.
    Names are the design's own (ports of any module); the caller maps them to top-level inputs.

    Returns:
        ``{name: (role, flag)}``: for ``"reset"`` the flag is active low; for ``"clock"`` it is True
        when the clock is used at its ``negedge``.
    """
    src = strip_comments(code)
    consts = {n for m in parse_modules(src) for n, _ in m.params}
    consts |= set(re.findall(r"(?:parameter|localparam)\b[^;]*?([A-Za-z_][\w$]*)\s*=", src))
    roles: dict[str, tuple[str, bool]] = {}
    for m in _ALWAYS_RE.finditer(src):
        k = _match_paren(src, m.end() - 1)
        if k < 0:
            continue
        edges = _EDGE_RE.findall(src[m.end(): k])
        if not edges:
            continue
        i = _skip_ws(src, k + 1)
        if re.match(r"begin\b", src[i:]):
            i = _skip_ws(src, i + 5)
            if src[i:i + 1] == ":":
                lm = re.match(r":\s*[A-Za-z_][\w$]*", src[i:])
                i = _skip_ws(src, i + (lm.end() if lm else 1))
        tested: tuple[str, bool] | None = None
        if re.match(r"if\s*\(", src[i:]):
            j = src.index("(", i)
            e = _match_paren(src, j)
            cm = _COND_RE.match(src[j + 1: e].strip()) if e > 0 else None
            if cm:
                low = bool(cm.group("neg"))
                if cm.group("op"):
                    val = cm.group("val")[-1] == "1"
                    low = low != (val == (cm.group("op") in ("!=", "!==")))
                tested = (cm.group("name"), low)
                if len(edges) == 1 and not _only_constants(_then_branch(src, _skip_ws(src, e + 1)), consts):
                    tested = None
        edge_names = [n for _, n in edges]
        for kind, name in edges:
            if tested and name == tested[0] and len(edges) > 1:
                roles[name] = ("reset", tested[1])
            elif name not in roles:
                roles[name] = ("clock", kind == "negedge")
        if tested and len(edges) == 1 and tested[0] not in edge_names:
            roles.setdefault(tested[0], ("reset", tested[1]))
        elif tested is None and len(edges) > 1:  # no recognisable test: negedge x / posedge x besides a clock
            pass
    return roles


_IDENT_RE = re.compile(r"(?<![\w$'])([A-Za-z_]\w*)")


def params_needed(module: Module) -> list[tuple[str, str]]:
    """The parameters the port ranges depend on (transitively), in declaration order.

    Returns:
        ``(name, default expression)`` per needed parameter, each once; empty when the ranges use none.
    """
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
