"""RTL families for the embedded MG-Verilog-shaped sample (see scripts/make_sample.py).

Every family is a function ``fam_x(c: Ctx, i: int) -> Mod`` that writes one synthesizable module
(header parts, body lines) and its three descriptions from parameters drawn with the context's
seeded random generator. Written for this project (Apache-2.0); no benchmark problems.
Body lines must not contain ``//`` comments or preprocessor directives: MG-Verilog joins the
body's lines with spaces, so a line comment would swallow the rest of the module.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field


@dataclass
class Port:
    dir: str            # input | output
    width: int          # bits (1 = scalar)
    name: str
    reg: bool = False   # output driven from an always block
    wexpr: str | None = None   # "[W-1:0]" when parameterized
    signed: bool = False

    def rng(self) -> str:
        if self.wexpr:
            return self.wexpr
        return f"[{self.width - 1}:0]" if self.width > 1 else ""


@dataclass
class Mod:
    name: str
    ports: list[Port]
    body: list[str]
    hl: str
    detailed: str
    blocks: list[str]
    params: list[tuple[str, str]] = field(default_factory=list)
    family: str = ""


LOW_RST = ["rst_n", "reset_n", "rstn", "aresetn", "nrst", "rst_b"]
HIGH_RST = ["rst", "reset", "srst", "clr", "rst_sync", "areset"]
CLKS = ["clk", "clock", "clk_in", "sys_clk", "aclk", "core_clk", "clk_sys"]


class Ctx:
    """Seeded naming / coding-style choices shared by one module."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        r = rng
        self.rs = r.choice(["async_low", "async_high", "sync_high", "sync_low", "async_low"])
        self.pstyle = r.choice(["plain", "plain", "plain", "pre", "suf"])
        base_clk = r.choice(CLKS)
        base_rst = r.choice(LOW_RST if self.rs.endswith("low") else HIGH_RST)
        self.clk = self._style(base_clk, "input") if base_clk in ("clk",) else base_clk
        self.rst = self._style(base_rst, "input") if self.pstyle != "plain" and r.random() < 0.5 else base_rst
        self.sv = r.random() < 0.18
        self.low_style = r.choice(["!", "~", "eq"])

    def _style(self, base: str, d: str) -> str:
        if self.pstyle == "pre":
            return ("i_" if d == "input" else "o_") + base
        if self.pstyle == "suf":
            return base + ("_i" if d == "input" else "_o")
        return base

    def p(self, base: str, d: str = "input") -> str:
        return self._style(base, d)

    def pick(self, *opts):
        return self.rng.choice(opts)

    # --- clocking -----------------------------------------------------------------------------
    def clk_port(self) -> Port:
        return Port("input", 1, self.clk)

    def rst_port(self) -> Port:
        return Port("input", 1, self.rst)

    def ff(self) -> str:
        kw = "always_ff" if self.sv else "always"
        if self.rs == "async_low":
            return f"{kw} @(posedge {self.clk} or negedge {self.rst})"
        if self.rs == "async_high":
            return f"{kw} @(posedge {self.clk} or posedge {self.rst})"
        return f"{kw} @(posedge {self.clk})"

    def ffc(self) -> str:
        """Clock-only flop block (no reset in sensitivity)."""
        return f"{'always_ff' if self.sv else 'always'} @(posedge {self.clk})"

    def comb(self) -> str:
        return "always_comb" if self.sv else self.pick("always @(*)", "always @*")

    def rcond(self) -> str:
        if self.rs.endswith("low"):
            return {"!": f"!{self.rst}", "~": f"~{self.rst}", "eq": f"{self.rst} == 1'b0"}[self.low_style]
        return self.rst

    def reg(self) -> str:
        return "logic" if self.sv else "reg"

    def wire(self) -> str:
        return "logic" if self.sv else "wire"

    def rdesc(self) -> str:
        pol = "active-low" if self.rs.endswith("low") else "active-high"
        kind = "asynchronous" if self.rs.startswith("async") else "synchronous"
        return f"an {pol} {kind} reset {self.rst}"

    def seq(self, resets: list[str], updates: list[str], ind: str = "  ") -> list[str]:
        out = [f"{self.ff()} begin", f"{ind}if ({self.rcond()}) begin"]
        out += [ind * 2 + s for s in resets]
        out += [f"{ind}end else begin"]
        out += [ind * 2 + s for s in updates]
        out += [f"{ind}end", "end"]
        return out


def bw(w: int) -> str:
    return "single-bit" if w == 1 else f"{w}-bit"


def clog2(n: int) -> int:
    b = 0
    while (1 << b) < n:
        b += 1
    return max(b, 1)


def ports_phrase(ports: list[Port]) -> str:
    ins = [p for p in ports if p.dir == "input"]
    outs = [p for p in ports if p.dir == "output"]

    def one(p: Port) -> str:
        return p.name if p.width == 1 else f"{p.name} ({p.width} bits)"

    return (f"inputs {', '.join(one(p) for p in ins)}; outputs {', '.join(one(p) for p in outs)}")


def R(w: int) -> str:
    return f"[{w - 1}:0]" if w > 1 else ""


FAMILIES: list[tuple[str, str, int]] = []   # (name, category, variants)


def family(category: str, n: int):
    def deco(fn):
        FAMILIES.append((fn.__name__, category, n))
        return fn
    return deco


# =============================================================================================
# Combinational logic
# =============================================================================================
@family("combinational", 6)
def fam_mux(c: Ctx, i: int) -> Mod:
    n = [4, 8, 3, 2, 6, 5][i]
    w = c.pick(4, 8, 12, 16, 32, 5)
    style = ["case", "ternary", "andor", "ifelse", "index", "case_reg"][i]
    pre = c.pick("in", "d", "src", "ch", "data")
    sw = clog2(n)
    sel = c.p(c.pick("sel", "select", "s", "addr"))
    y = c.p(c.pick("y", "out", "dout", "mux_out"), "output")
    ins = [c.p(f"{pre}{k}") for k in range(n)]
    name = f"{c.pick('mux', 'sel_mux', 'bus_mux', 'mux_sel')}{n}to1_{style}_w{w}"
    ports = [Port("input", w, x) for x in ins] + [Port("input", sw, sel)]
    body: list[str] = []
    zero = f"{{{w}{{1'b0}}}}"
    if style in ("case", "case_reg"):
        if style == "case_reg":
            ports = [c.clk_port()] + ports
            body += [f"{c.reg()} [{w-1}:0] nxt;", f"{c.comb()} begin", f"  case ({sel})"]
            body += [f"    {sw}'d{k}: nxt = {ins[k]};" for k in range(n)]
            body += [f"    default: nxt = {zero};", "  endcase", "end",
                     f"{c.ffc()} {y} <= nxt;"]
            ports.append(Port("output", w, y, reg=True))
        else:
            body += [f"{c.comb()} begin", f"  case ({sel})"]
            body += [f"    {sw}'d{k}: {y} = {ins[k]};" for k in range(n)]
            body += [f"    default: {y} = {zero};", "  endcase", "end"]
            ports.append(Port("output", w, y, reg=True))
    elif style == "ternary":
        expr = zero
        for k in reversed(range(n)):
            expr = f"({sel} == {sw}'d{k}) ? {ins[k]} : {expr}"
        body.append(f"assign {y} = {expr};")
        ports.append(Port("output", w, y))
    elif style == "andor":
        terms = [f"({{{w}{{{sel} == {sw}'d{k}}}}} & {ins[k]})" for k in range(n)]
        body.append(f"assign {y} = " + " |\n    ".join(terms) + ";")
        ports.append(Port("output", w, y))
    elif style == "ifelse":
        body += [f"{c.comb()} begin"]
        for k in range(n):
            kw = "if" if k == 0 else "else if"
            body.append(f"  {kw} ({sel} == {sw}'d{k}) {y} = {ins[k]};")
        body += [f"  else {y} = {zero};", "end"]
        ports.append(Port("output", w, y, reg=True))
    else:
        body.append(f"{c.wire()} [{w-1}:0] lanes [0:{(1 << sw) - 1}];")
        for k in range(1 << sw):
            body.append(f"assign lanes[{k}] = {ins[k] if k < n else zero};")
        body.append(f"assign {y} = lanes[{sel}];")
        ports.append(Port("output", w, y))
    reg_note = " The selected value is registered on the rising edge of the clock." if style == "case_reg" else ""
    hl = (f"A {n}-to-1 multiplexer that forwards one of {n} {w}-bit inputs to {y} according to the "
          f"{sw}-bit select {sel}.{reg_note}")
    det = (f"The module {name} selects between the {w}-bit inputs {', '.join(ins)} using the select "
           f"input {sel}. When {sel} equals k the output {y} takes the value of input k; select values "
           f"outside 0..{n-1} drive {'zero' if style != 'index' or n == (1 << sw) else 'zero through the unused table entries'}. "
           f"It is written in a {style.replace('_', ' ')} style" +
           (", with the result captured in a register clocked by " + c.clk if style == "case_reg" else ", purely combinational") +
           ".")
    blocks = [f"Declares the select logic for the {n} inputs of width {w}.",
              f"Compares {sel} against each index and routes the matching input to the output {y}.",
              "Drives zero for unused select codes."]
    if style == "case_reg":
        blocks.append(f"Registers the selected value into {y} on every rising edge of {c.clk}.")
    return Mod(name, ports, body, hl, det, blocks)


@family("combinational", 5)
def fam_decoder(c: Ctx, i: int) -> Mod:
    n = [2, 3, 4, 3, 5][i]
    m = 1 << n
    style = ["shift", "case", "loop", "generate", "shift_low"][i]
    a = c.p(c.pick("a", "addr", "code", "sel", "bin_in"))
    en = c.p(c.pick("en", "enable", "ena", "g"))
    y = c.p(c.pick("y", "dec_out", "onehot", "line", "q"), "output")
    low = style == "shift_low" or c.rng.random() < 0.25
    name = f"{c.pick('dec', 'decoder', 'addr_dec', 'line_dec')}_{n}to{m}{'_n' if low else ''}_{style}"
    ports = [Port("input", n, a), Port("input", 1, en)]
    body: list[str] = []
    tmp = "hot"
    body.append(f"{c.reg() if style in ('case', 'loop') else c.wire()} [{m-1}:0] {tmp};")
    if style in ("shift", "shift_low"):
        body.append(f"assign {tmp} = {en} ? ({m}'b1 << {a}) : {m}'b0;")
    elif style == "case":
        body += [f"{c.comb()} begin", f"  {tmp} = {m}'b0;", f"  if ({en}) begin", f"    case ({a})"]
        body += [f"      {n}'d{k}: {tmp}[{k}] = 1'b1;" for k in range(m)]
        body += ["      default: ;", "    endcase", "  end", "end"]
    elif style == "loop":
        body += ["integer k;", f"{c.comb()} begin", f"  for (k = 0; k < {m}; k = k + 1)",
                 f"    {tmp}[k] = {en} && ({a} == k);", "end"]
    else:
        body += ["genvar gi;", "generate", f"  for (gi = 0; gi < {m}; gi = gi + 1) begin : g_line",
                 f"    assign {tmp}[gi] = {en} & ({a} == gi);", "  end", "endgenerate"]
    body.append(f"assign {y} = {'~' if low else ''}{tmp};")
    ports.append(Port("output", m, y))
    act = "active-low" if low else "active-high"
    hl = f"A {n}-to-{m} binary decoder with enable {en} that drives one {act} line of {y} for each value of {a}."
    det = (f"Module {name} decodes the {n}-bit input {a} into the {m}-bit one-hot output {y}. When the "
           f"enable {en} is high exactly one output line, the one indexed by {a}, is "
           f"{'low' if low else 'high'} and all others are {'high' if low else 'low'}; when {en} is low no "
           f"line is asserted. The decode is implemented with a {style.replace('_low', '').replace('_', ' ')} construct on an internal vector "
           f"{tmp}{' that is inverted at the output' if low else ''}.")
    blocks = [f"Declares the internal {m}-bit vector {tmp}.",
              f"Builds the one-hot code from {a} gated by {en} using a {style.split('_')[0]} construct.",
              f"Assigns {tmp} to the output {y}{' inverted for active-low lines' if low else ''}."]
    return Mod(name, ports, body, hl, det, blocks)


@family("combinational", 6)
def fam_prienc(c: Ctx, i: int) -> Mod:
    n = [4, 8, 16, 8, 12, 6][i]
    msb = i % 2 == 0
    style = ["casez", "loop", "ifchain", "mask", "loop", "ifchain"][i]
    if n not in (4, 8) and style == "casez":
        style = "loop"
    ow = clog2(n)
    req = c.p(c.pick("req", "irq", "in", "request", "d"))
    idx = c.p(c.pick("idx", "grant_id", "code", "enc", "y"), "output")
    vld = c.p(c.pick("valid", "any", "vld", "hit"), "output")
    name = f"{c.pick('prio_enc', 'priority_encoder', 'penc', 'first_set')}{n}_{'msb' if msb else 'lsb'}_{style}"
    ports = [Port("input", n, req), Port("output", ow, idx, reg=True), Port("output", 1, vld)]
    body = [f"assign {vld} = |{req};"]
    order = list(reversed(range(n))) if msb else list(range(n))
    if style == "casez":
        body += [f"{c.comb()} begin", f"  casez ({req})"]
        for k in order:
            pat = ["?"] * n
            pos = n - 1 - k
            pat[pos] = "1"
            if msb:
                for j in range(pos):
                    pat[j] = "0"
            else:
                for j in range(pos + 1, n):
                    pat[j] = "0"
            body.append(f"    {n}'b{''.join(pat)}: {idx} = {ow}'d{k};")
        body += [f"    default: {idx} = {ow}'d0;", "  endcase", "end"]
    elif style == "mask":
        body += [f"{c.wire()} [{n-1}:0] lowest = {req} & (~{req} + 1'b1);", "integer k;", f"{c.comb()} begin", f"  {idx} = {ow}'d0;",
                 f"  for (k = 0; k < {n}; k = k + 1)", f"    {idx} = {idx} | ({{{ow}{{lowest[k]}}}} & k);", "end"]
    elif style == "loop":
        rng_expr = f"k = 0; k < {n}; k = k + 1" if msb else f"k = {n - 1}; k >= 0; k = k - 1"
        body += ["integer k;", f"{c.comb()} begin", f"  {idx} = {ow}'d0;",
                 f"  for ({rng_expr})", f"    if ({req}[k]) {idx} = k[{ow-1}:0];", "end"]
    else:
        body += [f"{c.comb()} begin"]
        for j, k in enumerate(order):
            kw = "if" if j == 0 else "else if"
            body.append(f"  {kw} ({req}[{k}]) {idx} = {ow}'d{k};")
        body += [f"  else {idx} = {ow}'d0;", "end"]
    pr = "most significant" if msb else "least significant"
    hl = (f"A {n}-input priority encoder that outputs on {idx} the index of the {pr} set bit of {req} "
          f"and flags {vld} when any request is present.")
    det = (f"{name} scans the {n}-bit request vector {req} and reports the position of the {pr} bit that is "
           f"set as the {ow}-bit value {idx}. The output {vld} is the OR reduction of {req}, so it is low only "
           f"when no bit is set, in which case {idx} is forced to zero. The priority search is written as "
           f"{'a casez table with wildcard patterns' if style == 'casez' else 'a for loop where the last match wins' if style == 'loop' else 'an isolate-lowest-bit mask (req & -req) followed by a one-hot to binary OR loop' if style == 'mask' else 'an if / else-if chain'}.")
    blocks = [f"Computes the valid flag {vld} as the OR of all bits of {req}.",
              f"Searches {req} from the {pr} end and writes the index of the first set bit to {idx}.",
              f"Defaults {idx} to zero when no request is active."]
    return Mod(name, ports, body, hl, det, blocks)


@family("combinational", 5)
def fam_cmp(c: Ctx, i: int) -> Mod:
    w = c.pick(6, 8, 10, 16, 24, 32)
    style = ["ops", "sub", "window", "maxsel", "ops_reg"][i]
    signed = c.rng.random() < 0.4
    a, b = c.p(c.pick("a", "x", "lhs", "op_a")), c.p(c.pick("b", "y", "rhs", "op_b"))
    if a == b:
        b = b + "2"
    name = f"{c.pick('cmp', 'comparator', 'mag_cmp', 'compare')}_{style}_{w}{'s' if signed else 'u'}"
    ports = [Port("input", w, a, signed=signed), Port("input", w, b, signed=signed)]
    body: list[str] = []
    kind = "signed (two's complement)" if signed else "unsigned"
    if style in ("ops", "ops_reg"):
        eq, lt, gt = (c.p(x, "output") for x in c.pick(("eq", "lt", "gt"), ("a_eq_b", "a_lt_b", "a_gt_b"), ("equal", "less", "greater")))
        if style == "ops":
            body += [f"assign {eq} = ({a} == {b});", f"assign {lt} = ({a} < {b});", f"assign {gt} = ({a} > {b});"]
            ports += [Port("output", 1, eq), Port("output", 1, lt), Port("output", 1, gt)]
        else:
            ports = [c.clk_port(), c.rst_port()] + ports
            ports += [Port("output", 1, eq, True), Port("output", 1, lt, True), Port("output", 1, gt, True)]
            body += c.seq([f"{eq} <= 1'b0;", f"{lt} <= 1'b0;", f"{gt} <= 1'b0;"],
                          [f"{eq} <= ({a} == {b});", f"{lt} <= ({a} < {b});", f"{gt} <= ({a} > {b});"])
        hl = f"A {w}-bit {kind} magnitude comparator producing equal, less-than and greater-than flags {eq}, {lt}, {gt}."
        det = (f"{name} compares the {w}-bit {kind} operands {a} and {b}. {eq} is high when they are equal, {lt} "
               f"when {a} is smaller and {gt} when {a} is larger; exactly one flag is high at a time. "
               + (f"The flags are registered on the rising edge of {c.clk} and cleared by {c.rdesc()}." if style == "ops_reg"
                  else "The flags are continuous assignments."))
        blocks = [f"Compares {a} and {b} for equality and drives {eq}.",
                  f"Computes the less-than and greater-than relations into {lt} and {gt}."]
        if style == "ops_reg":
            blocks.append(f"Registers all three flags on {c.clk}, clearing them on reset.")
    elif style == "sub":
        lt, z = c.p("lt", "output"), c.p(c.pick("zero", "eq"), "output")
        body += [f"{c.wire()} [{w}:0] diff;"]
        if signed:
            body += [f"assign diff = {{{a}[{w-1}], {a}}} - {{{b}[{w-1}], {b}}};", f"assign {lt} = diff[{w}];"]
        else:
            body += [f"assign diff = {{1'b0, {a}}} - {{1'b0, {b}}};", f"assign {lt} = diff[{w}];"]
        body.append(f"assign {z} = (diff == {w+1}'d0);")
        ports += [Port("output", 1, lt), Port("output", 1, z)]
        hl = f"Compares two {w}-bit {kind} numbers by subtraction, flagging {lt} when {a} < {b} and {z} when they are equal."
        det = (f"{name} forms a {w+1}-bit difference of the {'sign' if signed else 'zero'}-extended operands {a} and {b}. "
               f"The top bit of the difference is the borrow and drives {lt}, which is high when {a} is less than {b}. "
               f"{z} is high when the whole difference is zero.")
        blocks = [f"Extends {a} and {b} by one bit and subtracts them into diff.",
                  f"Uses the most significant bit of diff as the less-than flag {lt}.",
                  f"Detects a zero difference and drives {z}."]
    elif style == "window":
        lo, hi = c.p(c.pick("lo", "min_val", "lower")), c.p(c.pick("hi", "max_val", "upper"))
        ins, below, above = c.p("in_range", "output"), c.p("below", "output"), c.p("above", "output")
        ports = [Port("input", w, a, signed=signed), Port("input", w, lo, signed=signed), Port("input", w, hi, signed=signed),
                 Port("output", 1, ins), Port("output", 1, below), Port("output", 1, above)]
        body += [f"assign {below} = ({a} < {lo});", f"assign {above} = ({a} > {hi});",
                 f"assign {ins} = ~({below} | {above});"]
        hl = f"A window comparator that tells whether the {w}-bit value {a} lies inside the range [{lo}, {hi}]."
        det = (f"{name} checks the {kind} {w}-bit sample {a} against a lower bound {lo} and an upper bound {hi}. "
               f"{below} is high when {a} is under {lo}, {above} when it exceeds {hi}, and {ins} when neither holds, "
               f"i.e. the sample is within the inclusive window.")
        blocks = [f"Compares {a} with {lo} to drive {below}.", f"Compares {a} with {hi} to drive {above}.",
                  f"Drives {ins} high when the value is neither below nor above the window."]
    else:
        mx, mn, sw = c.p(c.pick("max", "larger", "hi_val"), "output"), c.p(c.pick("min", "smaller", "lo_val"), "output"), c.p("swapped", "output")
        ports += [Port("output", w, mx, signed=signed), Port("output", w, mn, signed=signed), Port("output", 1, sw)]
        body += [f"assign {sw} = ({a} < {b});", f"assign {mx} = {sw} ? {b} : {a};", f"assign {mn} = {sw} ? {a} : {b};"]
        hl = f"A {w}-bit compare-and-swap cell that outputs the larger of {a} and {b} on {mx} and the smaller on {mn}."
        det = (f"{name} is the basic element of a sorting network. It compares the {kind} inputs {a} and {b}; when {a} "
               f"is smaller the flag {sw} is set and the two values are exchanged so that {mx} always carries the maximum "
               f"and {mn} the minimum.")
        blocks = [f"Compares {a} and {b} and sets {sw} when {a} is smaller.",
                  f"Routes the maximum to {mx} and the minimum to {mn} based on {sw}."]
    return Mod(name, ports, body, hl, det, blocks)


@family("combinational", 5)
def fam_parity(c: Ctx, i: int) -> Mod:
    w = [8, 16, 32, 9, 24][i]
    style = ["reduce", "loop", "bytes", "checker", "tree"][i]
    odd = c.rng.random() < 0.5
    d = c.p(c.pick("data", "din", "word", "d"))
    par = c.p(c.pick("parity", "par", "p_bit"), "output")
    name = f"{c.pick('parity', 'par_gen', 'parity_unit')}_{style}_{w}{'_sel' if style == 'reduce' else '_odd' if odd else '_even'}"
    kind = "odd" if odd else "even"
    inv = "~" if odd else ""
    ports = [Port("input", w, d)]
    body: list[str] = []
    if style == "reduce":
        osel = c.p(c.pick("odd_mode", "odd_sel", "use_odd"))
        nz = c.p(c.pick("nonzero", "any_set"), "output")
        ports.append(Port("input", 1, osel))
        body += [f"{c.wire()} red = ^{d};", f"assign {par} = red ^ {osel};", f"assign {nz} = |{d};"]
        ports += [Port("output", 1, par), Port("output", 1, nz)]
        blocks = [f"Computes the XOR reduction of all {w} bits of {d}.", f"Inverts it when {osel} requests odd parity and drives {par}.",
                  f"Flags a non-zero word on {nz}."]
    elif style == "loop":
        body += ["integer k;", f"{c.reg()} acc;", f"{c.comb()} begin", f"  acc = 1'b{1 if odd else 0};",
                 f"  for (k = 0; k < {w}; k = k + 1) acc = acc ^ {d}[k];", "end", f"assign {par} = acc;"]
        ports.append(Port("output", 1, par))
        blocks = [f"Initialises an accumulator to {1 if odd else 0} for {kind} parity.",
                  f"XORs every bit of {d} into the accumulator in a for loop.", f"Assigns the accumulator to {par}."]
    elif style == "bytes":
        nb = (w + 7) // 8
        body += ["genvar gb;", "generate", f"  for (gb = 0; gb < {nb}; gb = gb + 1) begin : g_byte",
                 f"    assign {par}[gb] = {inv}(^{d}[gb*8 +: 8]);", "  end", "endgenerate"]
        ports.append(Port("output", nb, par))
        blocks = [f"Splits {d} into {nb} bytes with a generate loop.", f"Computes one {kind} parity bit per byte into {par}."]
    elif style == "checker":
        pin = c.p(c.pick("parity_in", "pbit", "rx_par"))
        err = c.p(c.pick("err", "parity_err", "bad"), "output")
        ports = [c.clk_port(), c.rst_port(), Port("input", w, d), Port("input", 1, pin), Port("output", 1, err, True)]
        body += [f"{c.wire()} calc = {inv}(^{d});"]
        body += c.seq([f"{err} <= 1'b0;"], [f"{err} <= (calc != {pin});"])
        par = err
        blocks = [f"Computes the expected {kind} parity of {d}.", f"Compares it with the received bit {pin}.",
                  f"Registers the mismatch into {err} on {c.clk}, clearing on reset."]
    else:
        body += [f"{c.wire()} [{w-1}:0] t;", f"assign t = {d};"]
        lvl, cur = 0, w
        prev = "t"
        while cur > 1:
            nxt = (cur + 1) // 2
            body.append(f"{c.wire()} [{nxt-1}:0] s{lvl};")
            for k in range(nxt):
                if 2 * k + 1 < cur:
                    body.append(f"assign s{lvl}[{k}] = {prev}[{2*k}] ^ {prev}[{2*k+1}];")
                else:
                    body.append(f"assign s{lvl}[{k}] = {prev}[{2*k}];")
            prev, cur, lvl = f"s{lvl}", nxt, lvl + 1
        body.append(f"assign {par} = {inv}{prev}[0];")
        ports.append(Port("output", 1, par))
        blocks = [f"Copies {d} into an internal vector.", f"Builds a balanced XOR tree of {lvl} levels.",
                  f"Outputs the root of the tree as {par}."]
    if style == "reduce":
        kind = f"even or odd (selected by {osel})"
    hl = f"Generates {kind} parity over the {w}-bit input {d}." if style != "checker" else \
        f"Checks a {w}-bit word {d} against a received {kind} parity bit and raises {par} on a mismatch."
    det = (f"{name} works on the {w}-bit input {d}. " +
           ("It produces one parity bit per byte. " if style == "bytes" else "") +
           f"For {kind} parity the generated bit makes the total number of ones, including the parity bit, "
           f"{kind}. " + ("The comparison result is registered and cleared by " + c.rdesc() + "." if style == "checker"
                          else f"The implementation style is a {style} structure and the logic is purely combinational."))
    return Mod(name, ports, body, hl, det, blocks)


@family("combinational", 5)
def fam_gray(c: Ctx, i: int) -> Mod:
    w = [4, 8, 6, 10, 5][i]
    style = ["b2g", "g2b_loop", "g2b_gen", "both", "gray_cnt"][i]
    bi, go = c.p(c.pick("bin", "b", "binary")), c.p(c.pick("gray", "g", "gray_out"), "output")
    name = f"{c.pick('gray', 'graycode', 'gc')}_{style}_{w}"
    body: list[str] = []
    if style == "b2g":
        ld = c.p(c.pick("load", "capture", "en"))
        ports = [c.clk_port(), Port("input", 1, ld), Port("input", w, bi), Port("output", w, go, True)]
        body += [f"{c.wire()} [{w-1}:0] g_next = {bi} ^ {{1'b0, {bi}[{w-1}:1]}};", f"{c.ffc()} begin", f"  if ({ld}) {go} <= g_next;", "end"]
        hl = f"Converts a {w}-bit binary number {bi} into its reflected Gray code and registers it in {go} when {ld} is high."
        det = (f"{name} computes each Gray bit as the XOR of adjacent binary bits, g = b ^ (b >> 1), with the MSB copied unchanged. "
               f"The code is captured into {go} on the rising edge of {c.clk} when {ld} is asserted, which is the usual way to pass a "
               f"counter value to another clock domain. There is no reset.")
        blocks = [f"Computes the Gray code of {bi} combinationally.", f"Registers it into {go} when {ld} is high."]
    elif style in ("g2b_loop", "g2b_gen"):
        gi, bo = c.p(c.pick("gray", "g_in", "gcode")), c.p(c.pick("bin", "b_out", "binary"), "output")
        ports = [Port("input", w, gi), Port("output", w, bo, reg=style == "g2b_loop")]
        if style == "g2b_loop":
            body += ["integer k;", f"{c.comb()} begin", f"  {bo}[{w-1}] = {gi}[{w-1}];",
                     f"  for (k = {w-2}; k >= 0; k = k - 1) {bo}[k] = {bo}[k+1] ^ {gi}[k];", "end"]
        else:
            body += [f"assign {bo}[{w-1}] = {gi}[{w-1}];", "genvar gk;", "generate",
                     f"  for (gk = 0; gk < {w-1}; gk = gk + 1) begin : g_x",
                     f"    assign {bo}[gk] = ^{gi}[{w-1}:gk];", "  end", "endgenerate"]
        hl = f"Converts a {w}-bit Gray code {gi} back into plain binary on {bo}."
        det = (f"{name} decodes Gray code: the MSB of {bo} equals the MSB of {gi} and every lower binary bit is the XOR of "
               f"all Gray bits from the MSB down to that position. It uses {'a descending for loop' if style == 'g2b_loop' else 'a generate loop of prefix XOR reductions'}.")
        blocks = [f"Copies the most significant Gray bit to {bo}.", f"Computes the remaining bits as running XORs of {gi}."]
    elif style == "both":
        mode, din, dout = c.p(c.pick("to_gray", "mode", "dir")), c.p(c.pick("din", "value", "x")), c.p(c.pick("dout", "result", "z"), "output")
        ports = [Port("input", 1, mode), Port("input", w, din), Port("output", w, dout)]
        body += [f"{c.wire()} [{w-1}:0] g_enc;", f"{c.reg()} [{w-1}:0] b_dec;", "integer k;",
                 f"assign g_enc = {din} ^ ({din} >> 1);",
                 f"{c.comb()} begin", f"  b_dec[{w-1}] = {din}[{w-1}];",
                 f"  for (k = {w-2}; k >= 0; k = k - 1) b_dec[k] = b_dec[k+1] ^ {din}[k];", "end",
                 f"assign {dout} = {mode} ? g_enc : b_dec;"]
        hl = f"A bidirectional {w}-bit binary/Gray converter; {mode} selects the direction."
        det = (f"{name} contains both an encoder and a decoder for {w}-bit reflected Gray code. When {mode} is high the "
               f"input {din} is treated as binary and converted to Gray; when low it is treated as Gray and converted to binary. "
               f"The selected result is driven on {dout}.")
        blocks = [f"Encodes {din} to Gray as {din} ^ ({din} >> 1).", f"Decodes {din} from Gray with a prefix-XOR loop.",
                  f"Selects the encoded or decoded value onto {dout} according to {mode}."]
    else:
        en = c.p(c.pick("en", "inc", "step"))
        ports = [c.clk_port(), c.rst_port(), Port("input", 1, en), Port("output", w, go)]
        body += [f"{c.reg()} [{w-1}:0] bcnt;"]
        body += c.seq([f"bcnt <= {w}'d0;"], [f"if ({en}) bcnt <= bcnt + 1'b1;"])
        body.append(f"assign {go} = bcnt ^ (bcnt >> 1);")
        hl = f"A {w}-bit Gray-code counter that advances when {en} is high."
        det = (f"{name} keeps a binary count register that increments on each rising edge of {c.clk} while {en} is "
               f"asserted, and outputs its Gray-coded value on {go}, so only one output bit changes per step. "
               f"The count is cleared by {c.rdesc()}.")
        blocks = [f"Holds a {w}-bit binary counter cleared on reset.", f"Increments the counter when {en} is high.",
                  f"Converts the count to Gray code on {go}."]
    return Mod(name, ports, body, hl, det, blocks)


@family("combinational", 5)
def fam_shifter(c: Ctx, i: int) -> Mod:
    w = [8, 16, 32, 12, 16][i]
    sw = clog2(w)
    style = ["stages", "ops_dir", "rotate", "arith", "funnel"][i]
    d, sh, y = c.p(c.pick("din", "a", "data", "src")), c.p(c.pick("shamt", "amt", "shift", "sh")), c.p(c.pick("dout", "y", "result"), "output")
    name = f"{c.pick('barrel', 'shifter', 'bshift')}_{style}_{w}"
    body: list[str] = []
    ports = [Port("input", w, d), Port("input", sw, sh)]
    if style == "stages":
        body.append(f"{c.wire()} [{w-1}:0] st [0:{sw}];")
        body.append(f"assign st[0] = {d};")
        body += ["genvar gs;", "generate", f"  for (gs = 0; gs < {sw}; gs = gs + 1) begin : g_stage",
                 f"    assign st[gs+1] = {sh}[gs] ? (st[gs] << (1 << gs)) : st[gs];", "  end", "endgenerate",
                 f"assign {y} = st[{sw}];"]
        ports.append(Port("output", w, y))
        hl = f"A {w}-bit logarithmic barrel shifter that shifts {d} left by {sh} positions."
        det = (f"{name} shifts the {w}-bit word {d} left by 0 to {w-1} positions in {sw} stages. Stage k shifts by 2^k when bit k "
               f"of {sh} is set; vacated bits are filled with zeros. The last stage drives {y}.")
        blocks = [f"Declares an array of {sw+1} intermediate vectors, the first equal to {d}.",
                  f"Generates {sw} mux stages, each shifting by a power of two controlled by one bit of {sh}.",
                  f"Outputs the final stage on {y}."]
    elif style == "ops_dir":
        dr = c.p(c.pick("left", "dir", "lsl"))
        ports.insert(0, Port("input", 1, dr))
        ports.append(Port("output", w, y))
        body.append(f"assign {y} = {dr} ? ({d} << {sh}) : ({d} >> {sh});")
        hl = f"A {w}-bit logical shifter that shifts {d} left or right by {sh} bits depending on {dr}."
        det = (f"{name} performs a logical shift of {d}. When {dr} is 1 the value is shifted left, otherwise right; "
               f"the amount is the {sw}-bit input {sh} and zeros are shifted in.")
        blocks = [f"Computes the left and right logical shifts of {d} by {sh}.", f"Selects the result with {dr} and drives {y}."]
    elif style == "rotate":
        ports.append(Port("output", w, y))
        body += [f"{c.wire()} [{2*w-1}:0] dbl;", f"assign dbl = {{{d}, {d}}} << {sh};", f"assign {y} = dbl[{2*w-1}:{w}];"]
        hl = f"Rotates the {w}-bit value {d} left by {sh} positions."
        det = (f"{name} implements a rotate-left by concatenating {d} with itself into a {2*w}-bit vector, shifting it "
               f"left by {sh} and taking the upper {w} bits, so bits leaving the top re-enter at the bottom.")
        blocks = [f"Concatenates {d} twice and shifts the {2*w}-bit result left by {sh}.", f"Takes the upper half as {y}."]
    elif style == "arith":
        ports[0].signed = True
        ports.append(Port("output", w, y, signed=True))
        body.append(f"assign {y} = {d} >>> {sh};")
        hl = f"An arithmetic right shifter for {w}-bit signed data that preserves the sign of {d}."
        det = (f"{name} shifts the signed input {d} right by {sh} positions using the arithmetic shift operator, "
               f"replicating the sign bit into the vacated positions so that {y} equals {d} divided by 2^{sh} rounded "
               f"towards minus infinity.")
        blocks = [f"Declares {d} and {y} as signed {w}-bit values.", f"Applies >>> by {sh} to keep the sign."]
    else:
        hi_in = c.p(c.pick("hi_word", "upper", "prev"))
        ports = [Port("input", w, hi_in), Port("input", w, d), Port("input", sw, sh), Port("output", w, y)]
        body += [f"{c.wire()} [{2*w-1}:0] cat;", f"assign cat = {{{hi_in}, {d}}};", f"assign {y} = cat[{sh} +: {w}];"]
        hl = f"A funnel shifter that extracts a {w}-bit window from the concatenation of {hi_in} and {d} at offset {sh}."
        det = (f"{name} joins {hi_in} (upper half) and {d} (lower half) into a {2*w}-bit vector and selects {w} "
               f"consecutive bits starting at bit {sh} with an indexed part-select. This is used for unaligned "
               f"data extraction and for rotates when both inputs are equal.")
        blocks = [f"Concatenates {hi_in} and {d} into cat.", f"Selects cat[{sh} +: {w}] as {y}."]
    return Mod(name, ports, body, hl, det, blocks)


SEG = {0: 0x3F, 1: 0x06, 2: 0x5B, 3: 0x4F, 4: 0x66, 5: 0x6D, 6: 0x7D, 7: 0x07, 8: 0x7F, 9: 0x6F,
       10: 0x77, 11: 0x7C, 12: 0x39, 13: 0x5E, 14: 0x79, 15: 0x71}


@family("combinational", 4)
def fam_sevenseg(c: Ctx, i: int) -> Mod:
    style = ["hex", "bcd_blank", "hex_dp", "scan"][i]
    low = c.rng.random() < 0.5
    v = c.p(c.pick("nibble", "digit", "hex", "val"))
    seg = c.p(c.pick("seg", "segments", "hex_out", "led"), "output")
    name = f"{c.pick('seg7', 'sevenseg', 'hex7seg', 'ssd')}_{style}{'_ca' if low else '_cc'}"
    inv = "~" if low else ""
    pol = "active-low (common anode)" if low else "active-high (common cathode)"
    body: list[str] = []
    if style != "scan":
        top = 16 if style != "bcd_blank" else 10
        ports = [Port("input", 4, v)]
        if style == "hex_dp":
            dp_in = c.p(c.pick("dp", "point"))
            ports.append(Port("input", 1, dp_in))
            ports.append(Port("output", 8, seg))
        else:
            ports.append(Port("output", 7, seg))
        body += [f"{c.reg()} [6:0] pat;", f"{c.comb()} begin", f"  case ({v})"]
        for k in range(top):
            if style == "hex_dp":
                rev = int(f"{SEG[k]:07b}"[::-1], 2)
                body.append(f"    {k}: pat = 7'h{rev:02X};")
            else:
                body.append(f"    4'h{k:X}: pat = 7'b{SEG[k]:07b};")
        body += ["    default: pat = 7'b0000000;", "  endcase", "end"]
        if style == "hex_dp":
            body.append(f"assign {seg} = {inv}{{{dp_in}, pat}};")
        else:
            body.append(f"assign {seg} = {inv}pat;")
        rngtxt = "0-F" if top == 16 else "0-9 (codes 10-15 blank the display)"
        hl = f"A seven-segment decoder that converts the 4-bit value {v} into {pol} segment drives on {seg}."
        order = "abcdefg, with bit 6 driving segment a and bit 0 segment g" if style == "hex_dp" else "gfedcba, with bit 0 driving segment a and bit 6 segment g"
        det = (f"{name} maps the 4-bit input {v} to a segment pattern for digits {rngtxt}. "
               f"The pattern order is {order}. The outputs are {pol}"
               + (f", and the decimal point input {dp_in} is driven as bit 7 of {seg}." if style == "hex_dp" else "."))
        blocks = [f"Looks up the segment pattern for {v} in a case statement.",
                  f"Drives {seg} from the pattern{', inverted for common anode' if low else ''}."]
        if style == "hex_dp":
            blocks.insert(1, f"Appends the decimal point {dp_in} as the top bit.")
    else:
        nd = c.pick(4, 8)
        vals = c.p(c.pick("digits", "bcd_word", "disp_val"))
        an = c.p(c.pick("an", "digit_sel", "anode"), "output")
        dw = c.pick(10, 12, 16)
        ports = [c.clk_port(), c.rst_port(), Port("input", 4 * nd, vals), Port("output", nd, an), Port("output", 7, seg, reg=True)]
        sw = clog2(nd)
        body += [f"{c.reg()} [{dw-1}:0] div;", f"{c.reg()} [{sw-1}:0] cur;", f"{c.wire()} [3:0] nib = {vals}[cur*4 +: 4];"]
        body += c.seq([f"div <= {dw}'d0;", f"cur <= {sw}'d0;"], ["div <= div + 1'b1;", "if (&div) cur <= cur + 1'b1;"])
        body.append(f"assign {an} = {inv}({nd}'b1 << cur);")
        body += [f"{c.comb()} begin", "  case (nib)"]
        for k in range(16):
            body.append(f"    4'h{k:X}: {seg} = {inv}7'b{SEG[k]:07b};")
        body += [f"    default: {seg} = {inv}7'b0000000;", "  endcase", "end"]
        hl = f"A time-multiplexed driver for a {nd}-digit seven-segment display showing the {4*nd}-bit word {vals}."
        det = (f"{name} cycles through {nd} digits. A {dw}-bit free-running divider advances the digit index cur each time it "
               f"wraps; the digit enable {an} is a one-hot of cur and the selected nibble of {vals} is decoded to {seg}. "
               f"Both {an} and {seg} are {pol}. The counters are cleared by {c.rdesc()}.")
        blocks = [f"Declares the refresh divider and the {sw}-bit digit index.",
                  "Increments the divider every clock and advances the digit index when it wraps.",
                  f"Drives the one-hot digit enable {an}.",
                  f"Decodes the selected nibble into segment pattern {seg}."]
    return Mod(name, ports, body, hl, det, blocks)


@family("combinational", 5)
def fam_bitcount(c: Ctx, i: int) -> Mod:
    w = [16, 8, 32, 12, 16][i]
    style = ["popcount", "popcount_tree", "clz", "ctz", "ffs"][i]
    d = c.p(c.pick("x", "vec", "bits", "word"))
    ow = clog2(w + 1)
    o = c.p({"popcount": "ones", "popcount_tree": "count", "clz": "lz", "ctz": "tz", "ffs": "pos"}[style], "output")
    name = f"{style}_{w}{c.pick('', '_u', '_c', '_unit')}"
    body: list[str] = []
    ports = [Port("input", w, d)]
    if style == "popcount":
        body += ["integer k;", f"{c.comb()} begin", f"  {o} = {ow}'d0;", f"  for (k = 0; k < {w}; k = k + 1)",
                 f"    {o} = {o} + {d}[k];", "end"]
        ports.append(Port("output", ow, o, reg=True))
        hl = f"Counts the number of set bits in the {w}-bit input {d}."
        det = f"{name} adds up all bits of {d} in a combinational for loop and outputs the {ow}-bit population count {o} (0 to {w})."
        blocks = [f"Initialises {o} to zero.", f"Adds each bit of {d} to the running total inside a for loop."]
    elif style == "popcount_tree":
        half = w // 2
        body += [f"{c.wire()} [{clog2(half+1)-1}:0] c_lo, c_hi;", f"{c.reg()} [{clog2(half+1)-1}:0] t_lo, t_hi;", "integer k;",
                 f"{c.comb()} begin", "  t_lo = 0;", "  t_hi = 0;", f"  for (k = 0; k < {half}; k = k + 1) begin",
                 f"    t_lo = t_lo + {d}[k];", f"    t_hi = t_hi + {d}[k + {half}];", "  end", "end",
                 "assign c_lo = t_lo;", "assign c_hi = t_hi;", f"assign {o} = c_lo + c_hi;"]
        ports.append(Port("output", ow, o))
        hl = f"A split population counter that counts the ones of {d} in two halves and adds the partial counts."
        det = (f"{name} divides the {w}-bit input {d} into a low and a high half of {half} bits, counts the ones of each "
               f"half in parallel and sums the two partial counts into the {ow}-bit output {o}.")
        blocks = [f"Counts the ones of the low and high halves of {d} in one loop.", "Exposes the partial counts as c_lo and c_hi.",
                  f"Adds the partial counts into {o}."]
    elif style in ("clz", "ctz"):
        zero = c.p(c.pick("all_zero", "empty", "z"), "output")
        rngx = f"k = 0; k < {w}; k = k + 1" if style == "clz" else f"k = {w-1}; k >= 0; k = k - 1"
        val = f"{w-1} - k" if style == "clz" else "k"
        body += ["integer k;", f"{c.comb()} begin", f"  {o} = {ow}'d{w};", f"  for ({rngx})",
                 f"    if ({d}[k]) {o} = {val};", "end", f"assign {zero} = ~|{d};"]
        ports += [Port("output", ow, o, reg=True), Port("output", 1, zero)]
        end = "leading" if style == "clz" else "trailing"
        hl = f"Counts the {end} zeros of the {w}-bit input {d}."
        det = (f"{name} returns on {o} the number of consecutive zero bits at the {'top' if style == 'clz' else 'bottom'} of {d}. "
               f"When {d} is all zeros the count is {w} and the flag {zero} is raised. The search is a combinational loop in which "
               f"the last match found wins.")
        blocks = [f"Initialises the count to {w}.", f"Scans {d} and records the distance of the {'highest' if style == 'clz' else 'lowest'} set bit.",
                  f"Raises {zero} when no bit is set."]
    else:
        found = c.p(c.pick("found", "nz"), "output")
        pw = clog2(w)
        body += [f"{c.wire()} [{w-1}:0] lowest = {d} & (~{d} + 1'b1);", "integer k;", f"{c.comb()} begin",
                 f"  {o} = {pw}'d0;", f"  for (k = 0; k < {w}; k = k + 1)", f"    if (lowest[k]) {o} = k;", "end",
                 f"assign {found} = |{d};"]
        ports += [Port("output", pw, o, reg=True), Port("output", 1, found)]
        hl = f"Finds the position of the lowest set bit of {d} by isolating it with x & -x."
        det = (f"{name} isolates the least significant one of the {w}-bit input {d} with the two's complement trick "
               f"{d} & (~{d} + 1), then converts the resulting one-hot vector into the {pw}-bit index {o}. {found} is high when any bit is set.")
        blocks = [f"Isolates the lowest set bit of {d} into lowest.", f"Encodes the one-hot vector lowest into the index {o}.",
                  f"Drives {found} from the OR of {d}."]
    return Mod(name, ports, body, hl, det, blocks)


@family("combinational", 4)
def fam_bcd(c: Ctx, i: int) -> Mod:
    style = ["dabble", "digit_add", "bcd2bin", "dabble"][i]
    body: list[str] = []
    if style == "dabble":
        w = [8, 12, 8, 12][i] if i < 2 else 10
        nd = len(str((1 << w) - 1))
        b = c.p(c.pick("bin", "value", "b"))
        o = c.p(c.pick("bcd", "digits", "dec"), "output")
        name = f"{c.pick('bin2bcd', 'double_dabble', 'b2bcd')}_{w}"
        ports = [Port("input", w, b), Port("output", 4 * nd, o, reg=True)]
        body += ["integer k, j;", f"{c.reg()} [{4*nd + w - 1}:0] sh;", f"{c.comb()} begin",
                 f"  sh = {{{4*nd}'d0, {b}}};", f"  for (k = 0; k < {w}; k = k + 1) begin",
                 f"    for (j = 0; j < {nd}; j = j + 1)",
                 f"      if (sh[{w} + 4*j +: 4] > 4) sh[{w} + 4*j +: 4] = sh[{w} + 4*j +: 4] + 4'd3;",
                 "    sh = sh << 1;", "  end", f"  {o} = sh[{4*nd + w - 1}:{w}];", "end"]
        hl = f"Converts the {w}-bit binary number {b} into {nd} packed BCD digits on {o} using the double-dabble algorithm."
        det = (f"{name} implements shift-and-add-3 conversion combinationally. A scratch register holds {nd} BCD digits "
               f"above the binary input; for each of the {w} input bits every digit greater than 4 is incremented by 3 and "
               f"the whole register is shifted left by one. After {w} iterations the digits field is the decimal value of {b}.")
        blocks = [f"Loads {b} into the low end of a scratch register with {nd} zeroed digits above it.",
                  "Adds 3 to every digit that exceeds 4 before each shift.", "Shifts the scratch register left once per input bit.",
                  f"Copies the digit field to {o}."]
    elif style == "digit_add":
        a, b2, ci = c.p(c.pick("a", "x")), c.p(c.pick("b", "y")), c.p(c.pick("cin", "ci", "carry_in"))
        s, co = c.p(c.pick("sum", "s", "digit"), "output"), c.p(c.pick("cout", "co", "carry"), "output")
        name = c.pick("bcd_digit_adder", "bcd_add1", "dec_adder")
        ports = [Port("input", 4, a), Port("input", 4, b2), Port("input", 1, ci), Port("output", 4, s), Port("output", 1, co)]
        body += [f"{c.wire()} [4:0] raw = {a} + {b2} + {ci};", f"{c.wire()} fix = (raw > 5'd9);",
                 f"{c.wire()} [4:0] adj = fix ? raw + 5'd6 : raw;", f"assign {s} = adj[3:0];", f"assign {co} = fix;"]
        hl = f"Adds two BCD digits {a} and {b2} with carry-in {ci}, producing a BCD digit {s} and decimal carry {co}."
        det = (f"{name} first adds the two 4-bit BCD digits and the carry in binary. If the 5-bit raw sum exceeds 9 it adds 6 "
               f"to skip the six invalid codes, sets the decimal carry {co}, and outputs the low four bits as {s}.")
        blocks = [f"Adds {a}, {b2} and {ci} into a 5-bit raw sum.", "Detects a raw sum above nine.",
                  f"Adds six when needed and drives {s} and {co}."]
    else:
        nd = 3
        d = c.p(c.pick("bcd", "dec_in"))
        o = c.p(c.pick("bin", "value"), "output")
        name = c.pick("bcd3_to_bin", "bcd2bin_3d")
        ports = [Port("input", 12, d), Port("output", 10, o)]
        body += [f"{c.wire()} [9:0] hundreds = {d}[11:8] * 7'd100;", f"{c.wire()} [9:0] tens = {d}[7:4] * 4'd10;",
                 f"assign {o} = hundreds + tens + {d}[3:0];"]
        hl = f"Converts a three-digit packed BCD number {d} into a 10-bit binary value {o}."
        det = (f"{name} multiplies the hundreds digit {d}[11:8] by 100 and the tens digit {d}[7:4] by 10 and adds the units digit, "
               f"giving the binary value 0..999 on the 10-bit output {o}.")
        blocks = [f"Weights the hundreds and tens digits of {d} by 100 and 10.", f"Sums the weighted digits and the units digit into {o}."]
    return Mod(name, ports, body, hl, det, blocks)


@family("combinational", 4)
def fam_onehot(c: Ctx, i: int) -> Mod:
    style = ["oh2bin", "bin2thermo", "thermo2bin", "oh_check"][i]
    n = c.pick(8, 16, 6, 10)
    body: list[str] = []
    if style == "oh2bin":
        d, o = c.p(c.pick("onehot", "oh", "grant")), c.p(c.pick("index", "bin", "id"), "output")
        ow = clog2(n)
        name = f"onehot_to_bin{n}"
        ports = [Port("input", n, d), Port("output", ow, o, reg=True)]
        body += ["integer k;", f"{c.comb()} begin", f"  {o} = {ow}'d0;", f"  for (k = 0; k < {n}; k = k + 1)",
                 f"    {o} = {o} | ({{{ow}{{{d}[k]}}}} & k[{ow-1}:0]);", "end"]
        hl = f"Converts a {n}-bit one-hot vector {d} into its {ow}-bit binary index {o}."
        det = (f"{name} ORs together the indices of all set bits of {d}. For a valid one-hot input this yields the position of "
               f"the single set bit on {o}; the logic uses no priority, so it is small and fast.")
        blocks = [f"Clears {o}.", f"ORs the index k into {o} for every set bit k of {d}."]
    elif style == "bin2thermo":
        bw_ = clog2(n + 1)
        d, o = c.p(c.pick("level", "count", "n")), c.p(c.pick("thermo", "bar", "fill"), "output")
        name = f"bin_to_thermo{n}"
        ports = [Port("input", bw_, d), Port("output", n, o)]
        body += ["genvar gt;", "generate", f"  for (gt = 0; gt < {n}; gt = gt + 1) begin : g_t",
                 f"    assign {o}[gt] = ({d} > gt);", "  end", "endgenerate"]
        hl = f"Turns the binary level {d} into an {n}-bit thermometer code {o} with that many low bits set."
        det = (f"{name} sets output bit k of {o} when {d} is greater than k, so a level of m lights the m lowest bits. "
               f"Levels above {n} saturate to all ones. This is handy for bar-graph LED displays.")
        blocks = ["Generates one comparator per output bit.", f"Sets {o}[k] when {d} exceeds k."]
    elif style == "thermo2bin":
        d, o = c.p(c.pick("thermo", "t_code")), c.p(c.pick("value", "bin"), "output")
        ow = clog2(n + 1)
        bub = c.p(c.pick("bubble", "err"), "output")
        name = f"thermo_to_bin{n}"
        ports = [Port("input", n, d), Port("output", ow, o, reg=True), Port("output", 1, bub)]
        body += ["integer k;", f"{c.comb()} begin", f"  {o} = {ow}'d0;", f"  for (k = 0; k < {n}; k = k + 1)",
                 f"    {o} = {o} + {d}[k];", "end", f"assign {bub} = |({d}[{n-1}:1] & ~{d}[{n-2}:0]);"]
        hl = f"Converts an {n}-bit thermometer code {d} to binary and flags bubbles."
        det = (f"{name} counts the ones in {d} to produce the {ow}-bit value {o}. It also detects a bubble, a one above "
               f"a zero, which is not a valid thermometer code, and raises {bub}.")
        blocks = [f"Counts the set bits of {d} into {o}.", f"Detects a set bit directly above a clear bit and drives {bub}."]
    else:
        d = c.p(c.pick("state", "vec", "sel"))
        ok, none = c.p(c.pick("is_onehot", "valid"), "output"), c.p(c.pick("none", "idle"), "output")
        name = f"onehot_check{n}"
        ports = [Port("input", n, d), Port("output", 1, ok), Port("output", 1, none)]
        body += [f"{c.wire()} [{n-1}:0] minus1 = {d} - 1'b1;", f"assign {none} = ({d} == {n}'d0);",
                 f"assign {ok} = ~{none} & ((({d} & minus1) == {n}'d0));"]
        hl = f"Checks whether the {n}-bit vector {d} is one-hot."
        det = (f"{name} uses the identity that x & (x - 1) clears the lowest set bit: {d} is one-hot when it is non-zero and "
               f"that expression is zero. {ok} reports a valid one-hot vector and {none} reports an all-zero vector.")
        blocks = [f"Computes {d} minus one.", f"Flags the all-zero case on {none}.", f"Drives {ok} when exactly one bit is set."]
    return Mod(name, ports, body, hl, det, blocks)


# =============================================================================================
# Arithmetic
# =============================================================================================
@family("arithmetic", 6)
def fam_adder(c: Ctx, i: int) -> Mod:
    style = ["ripple", "cla4", "csel", "reg_add", "param_add", "csa3"][i]
    w = {"ripple": c.pick(4, 8, 6), "cla4": 4, "csel": c.pick(8, 16), "reg_add": c.pick(16, 24),
         "param_add": c.pick(12, 32), "csa3": c.pick(8, 10)}[style]
    a, b = c.p(c.pick("a", "x", "op1")), c.p(c.pick("b", "y", "op2"))
    cin = c.p(c.pick("cin", "ci", "c_in"))
    s, co = c.p(c.pick("sum", "s", "result"), "output"), c.p(c.pick("cout", "co", "c_out"), "output")
    name = f"{c.pick('add', 'adder', 'addu')}_{style}_{w}"
    body: list[str] = []
    params: list[tuple[str, str]] = []
    if style == "ripple":
        ports = [Port("input", w, a), Port("input", w, b), Port("input", 1, cin), Port("output", w, s), Port("output", 1, co)]
        body += [f"{c.wire()} [{w}:0] cy;", f"assign cy[0] = {cin};", "genvar gf;", "generate",
                 f"  for (gf = 0; gf < {w}; gf = gf + 1) begin : g_fa",
                 f"    assign {s}[gf] = {a}[gf] ^ {b}[gf] ^ cy[gf];",
                 f"    assign cy[gf+1] = ({a}[gf] & {b}[gf]) | (cy[gf] & ({a}[gf] ^ {b}[gf]));", "  end", "endgenerate",
                 f"assign {co} = cy[{w}];"]
        hl = f"A {w}-bit ripple-carry adder built from a generate loop of full adders."
        det = (f"{name} adds {a}, {b} and the carry-in {cin}. Each stage computes the sum bit as the XOR of its inputs and "
               f"passes a carry to the next stage; the final carry becomes {co}.")
        blocks = [f"Declares the {w+1}-bit carry chain and seeds it with {cin}.", "Generates one full adder per bit.", f"Drives {co} from the last carry."]
    elif style == "cla4":
        ports = [Port("input", 4, a), Port("input", 4, b), Port("input", 1, cin), Port("output", 4, s), Port("output", 1, co)]
        gp = c.p(c.pick("pg", "grp_p"), "output")
        gg = c.p(c.pick("gg", "grp_g"), "output")
        ports += [Port("output", 1, gp), Port("output", 1, gg)]
        body += [f"{c.wire()} [3:0] g = {a} & {b};", f"{c.wire()} [3:0] p = {a} ^ {b};", f"{c.wire()} [4:0] k;",
                 f"assign k[0] = {cin};", "assign k[1] = g[0] | (p[0] & k[0]);",
                 "assign k[2] = g[1] | (p[1] & g[0]) | (p[1] & p[0] & k[0]);",
                 "assign k[3] = g[2] | (p[2] & g[1]) | (p[2] & p[1] & g[0]) | (p[2] & p[1] & p[0] & k[0]);",
                 "assign k[4] = g[3] | (p[3] & g[2]) | (p[3] & p[2] & g[1]) | (p[3] & p[2] & p[1] & g[0]) | (&p & k[0]);",
                 f"assign {s} = p ^ k[3:0];", f"assign {co} = k[4];", f"assign {gp} = &p;",
                 f"assign {gg} = g[3] | (p[3] & g[2]) | (p[3] & p[2] & g[1]) | (p[3] & p[2] & p[1] & g[0]);"]
        hl = "A 4-bit carry-lookahead adder that also exports group propagate and generate signals."
        det = (f"{name} computes per-bit generate g = {a} & {b} and propagate p = {a} ^ {b}, derives every carry directly "
               f"from g, p and {cin} in two-level logic, and forms the sum as p XOR carry. The group propagate {gp} and group "
               f"generate {gg} allow several blocks to be combined by a second-level lookahead unit.")
        blocks = ["Computes bit generate and propagate vectors.", "Expands the four carries as sums of products.",
                  f"Forms the sum {s} and carry-out {co}.", f"Drives the group signals {gp} and {gg}."]
    elif style == "csel":
        h = w // 2
        ports = [Port("input", w, a), Port("input", w, b), Port("input", 1, cin), Port("output", w, s), Port("output", 1, co)]
        body += [f"{c.wire()} [{h}:0] lo = {a}[{h-1}:0] + {b}[{h-1}:0] + {cin};",
                 f"{c.wire()} [{h}:0] hi0 = {a}[{w-1}:{h}] + {b}[{w-1}:{h}];",
                 f"{c.wire()} [{h}:0] hi1 = {a}[{w-1}:{h}] + {b}[{w-1}:{h}] + 1'b1;",
                 f"{c.wire()} [{h}:0] hi = lo[{h}] ? hi1 : hi0;", f"assign {s} = {{hi[{h-1}:0], lo[{h-1}:0]}};", f"assign {co} = hi[{h}];"]
        hl = f"A {w}-bit carry-select adder that precomputes the upper half for both possible carries."
        det = (f"{name} splits the operands into two {h}-bit halves. The low half is added with {cin}; the high half is added twice, "
               f"assuming a carry of 0 and of 1, and the carry out of the low half selects which upper result is used. This "
               f"shortens the critical path compared with a ripple adder.")
        blocks = ["Adds the low halves with the carry-in.", "Adds the high halves assuming carry 0 and carry 1.",
                  f"Selects the high result with the low carry and assembles {s} and {co}."]
    elif style == "reg_add":
        v = c.p(c.pick("in_valid", "vld_in", "start"))
        ov = c.p(c.pick("out_valid", "vld_out", "done"), "output")
        ports = [c.clk_port(), c.rst_port(), Port("input", 1, v), Port("input", w, a), Port("input", w, b),
                 Port("output", w, s, True), Port("output", 1, co, True), Port("output", 1, ov, True)]
        body += c.seq([f"{{{co}, {s}}} <= {w+1}'d0;", f"{ov} <= 1'b0;"],
                      [f"{ov} <= {v};", f"if ({v}) {{{co}, {s}}} <= {a} + {b};"])
        hl = f"A registered {w}-bit adder with a valid handshake: the sum of {a} and {b} appears one cycle after {v}."
        det = (f"{name} latches {a} + {b} into {s} with carry {co} on the clock edge when {v} is high and raises {ov} for one "
               f"cycle. When {v} is low the previous result is held. Everything is cleared by {c.rdesc()}.")
        blocks = ["Clears the result and valid flag on reset.", f"Registers the sum and carry when {v} is high.", f"Delays {v} by one cycle into {ov}."]
    elif style == "param_add":
        params = [("WIDTH", str(w))]
        ports = [Port("input", w, a, wexpr="[WIDTH-1:0]"), Port("input", w, b, wexpr="[WIDTH-1:0]"), Port("input", 1, cin),
                 Port("output", w, s, wexpr="[WIDTH-1:0]"), Port("output", 1, co)]
        ovf = c.p(c.pick("ovf", "overflow", "v"), "output")
        ports.append(Port("output", 1, ovf))
        body += [f"assign {{{co}, {s}}} = {a} + {b} + {cin};",
                 f"assign {ovf} = ({a}[WIDTH-1] == {b}[WIDTH-1]) && ({s}[WIDTH-1] != {a}[WIDTH-1]);"]
        hl = f"A parameterized WIDTH-bit adder (default {w}) with carry-out {co} and signed overflow flag {ovf}."
        det = (f"{name} adds {a}, {b} and {cin} using a single continuous assignment that produces a WIDTH+1 bit result split "
               f"into {co} and {s}. Signed overflow {ovf} is detected when both operands have the same sign and the sum's sign differs.")
        blocks = ["Adds the operands and carry-in into the carry-out and sum.", f"Computes two's-complement overflow on {ovf}."]
    else:
        c_in = c.p(c.pick("c", "z", "op3"))
        ports = [Port("input", w, a), Port("input", w, b), Port("input", w, c_in), Port("output", w + 2, s)]
        body += [f"{c.wire()} [{w-1}:0] ps = {a} ^ {b} ^ {c_in};",
                 f"{c.wire()} [{w-1}:0] pc = ({a} & {b}) | ({a} & {c_in}) | ({b} & {c_in});",
                 f"assign {s} = {{2'b00, ps}} + {{1'b0, pc, 1'b0}};"]
        name = f"csa3_add_{w}"
        hl = f"Adds three {w}-bit operands using a carry-save stage followed by one carry-propagate adder."
        det = (f"{name} reduces {a}, {b} and {c_in} to a partial sum vector (bitwise XOR) and a carry vector (bitwise majority). "
               f"The carry vector is shifted left by one and added to the partial sum in a final adder, giving the {w+2}-bit total {s}.")
        blocks = ["Computes the carry-save partial sum as a three-way XOR.", "Computes the carry vector as the majority of the three bits.",
                  f"Adds partial sum and shifted carries into {s}."]
    return Mod(name, ports, body, hl, det, blocks, params)


@family("arithmetic", 4)
def fam_addsub(c: Ctx, i: int) -> Mod:
    w = [8, 16, 12, 32][i]
    style = ["xor_cin", "mux", "reg", "flags"][i]
    a, b = c.p(c.pick("a", "src_a", "lhs")), c.p(c.pick("b", "src_b", "rhs"))
    sub = c.p(c.pick("sub", "op", "minus", "mode"))
    r = c.p(c.pick("res", "y", "result"), "output")
    name = f"{c.pick('addsub', 'add_sub', 'as_unit')}_{style}_{w}"
    body: list[str] = []
    ports = [Port("input", w, a), Port("input", w, b), Port("input", 1, sub)]
    if style == "xor_cin":
        co, ov = c.p("cout", "output"), c.p(c.pick("ovf", "v_flag"), "output")
        ports += [Port("output", w, r), Port("output", 1, co), Port("output", 1, ov)]
        body += [f"{c.wire()} [{w-1}:0] bx = {b} ^ {{{w}{{{sub}}}}};", f"assign {{{co}, {r}}} = {a} + bx + {sub};",
                 f"assign {ov} = ({a}[{w-1}] == bx[{w-1}]) && ({r}[{w-1}] != {a}[{w-1}]);"]
        hl = f"A {w}-bit adder/subtractor: {sub}=1 computes {a}-{b}, otherwise {a}+{b}."
        det = (f"{name} inverts {b} with XOR gates when {sub} is high and feeds {sub} as carry-in, so one adder performs both "
               f"addition and two's complement subtraction. It provides the carry/borrow {co} and signed overflow {ov}.")
        blocks = [f"Conditionally inverts {b} with {sub}.", f"Adds {a}, the inverted operand and {sub}.", f"Computes signed overflow {ov}."]
    elif style == "mux":
        ports.append(Port("output", w + 1, r))
        body.append(f"assign {r} = {sub} ? ({{1'b0, {a}}} - {{1'b0, {b}}}) : ({{1'b0, {a}}} + {{1'b0, {b}}});")
        hl = f"Selects between the {w+1}-bit sum and difference of {a} and {b} with {sub}."
        det = (f"{name} computes both {a} + {b} and {a} - {b} on zero-extended operands and picks one with {sub}. The extra "
               f"output bit holds the carry for addition or the borrow for subtraction.")
        blocks = ["Zero-extends the operands by one bit.", f"Computes sum and difference and selects with {sub}."]
    elif style == "reg":
        ports = [c.clk_port(), c.rst_port(), *ports, Port("output", w, r, True)]
        en = c.p(c.pick("en", "load", "ce"))
        ports.insert(2, Port("input", 1, en))
        body += c.seq([f"{r} <= {w}'d0;"], [f"if ({en}) {r} <= {sub} ? {a} - {b} : {a} + {b};"])
        hl = f"A clocked {w}-bit add/subtract unit that updates {r} when {en} is high."
        det = (f"{name} registers either {a} + {b} or {a} - {b} (chosen by {sub}) into {r} on the rising edge of {c.clk} whenever "
               f"{en} is asserted; otherwise {r} holds. The result is cleared by {c.rdesc()}.")
        blocks = ["Clears the result register on reset.", f"Adds or subtracts the operands when {en} is set and stores the result."]
    else:
        z, n, cf, vf = (c.p(x, "output") for x in ("z", "n", "c", "v"))
        ports += [Port("output", w, r), Port("output", 1, z), Port("output", 1, n), Port("output", 1, cf), Port("output", 1, vf)]
        body += [f"{c.wire()} [{w}:0] ext = {sub} ? ({{1'b0, {a}}} + {{1'b0, ~{b}}} + 1'b1) : ({{1'b0, {a}}} + {{1'b0, {b}}});",
                 f"assign {r} = ext[{w-1}:0];", f"assign {cf} = ext[{w}];", f"assign {z} = ~|{r};", f"assign {n} = {r}[{w-1}];",
                 f"assign {vf} = {sub} ? (({a}[{w-1}] != {b}[{w-1}]) && ({r}[{w-1}] != {a}[{w-1}])) : (({a}[{w-1}] == {b}[{w-1}]) && ({r}[{w-1}] != {a}[{w-1}]));"]
        hl = f"A {w}-bit add/subtract unit producing the result {r} and the four NZCV condition flags."
        det = (f"{name} adds or subtracts (when {sub} is high) the operands and reports zero {z}, negative {n}, carry {cf} (no borrow "
               f"for subtraction) and signed overflow {vf}, like the flag logic of a small processor.")
        blocks = ["Computes the extended result for add or subtract.", f"Splits off the result {r} and carry {cf}.",
                  "Derives zero and negative flags.", f"Derives signed overflow {vf} for both operations."]
    return Mod(name, ports, body, hl, det, blocks)


@family("arithmetic", 5)
def fam_mult(c: Ctx, i: int) -> Mod:
    style = ["comb", "reg_signed", "seq", "pipe2", "array"][i]
    w = {"comb": c.pick(8, 12), "reg_signed": c.pick(16, 10), "seq": c.pick(8, 16), "pipe2": 16, "array": c.pick(4, 6)}[style]
    a, b = c.p(c.pick("a", "mcand", "x")), c.p(c.pick("b", "mplier", "y"))
    p = c.p(c.pick("p", "prod", "product"), "output")
    name = f"{c.pick('mul', 'mult', 'multiplier')}_{style}_{w}x{w}"
    body: list[str] = []
    if style == "comb":
        sg = c.p(c.pick("is_signed", "tc", "sgn"))
        ports = [Port("input", 1, sg), Port("input", w, a), Port("input", w, b), Port("output", 2 * w, p)]
        body += [f"{c.wire()} signed [{w}:0] ea = {{{sg} & {a}[{w-1}], {a}}};", f"{c.wire()} signed [{w}:0] eb = {{{sg} & {b}[{w-1}], {b}}};",
                 f"{c.wire()} signed [{2*w+1}:0] full = ea * eb;", f"assign {p} = full[{2*w-1}:0];"]
        hl = f"A {w}x{w} combinational multiplier that treats its operands as signed or unsigned depending on {sg}."
        det = (f"{name} extends {a} and {b} by one bit, using the sign bit when {sg} is high and zero otherwise, multiplies the "
               f"extended values as signed numbers and drives the low {2*w} bits of the product on {p}, which is exact in both modes.")
        blocks = [f"Sign- or zero-extends the operands according to {sg}.", "Multiplies the extended operands.", f"Drives the {2*w}-bit result on {p}."]
    elif style == "reg_signed":
        ports = [c.clk_port(), c.rst_port(), Port("input", w, a, signed=True), Port("input", w, b, signed=True),
                 Port("output", 2 * w, p, True, signed=True)]
        body += [f"{c.reg()} signed [{w-1}:0] ra, rb;"]
        body += c.seq(["ra <= 0;", "rb <= 0;", f"{p} <= 0;"], [f"ra <= {a};", f"rb <= {b};", f"{p} <= ra * rb;"])
        hl = f"A signed {w}x{w} multiplier with registered inputs and output (two cycles of latency)."
        det = (f"{name} registers the two's complement operands {a} and {b}, multiplies the registered values and registers the "
               f"{2*w}-bit signed product into {p}. Registers are cleared by {c.rdesc()}.")
        blocks = ["Registers the signed operands.", f"Multiplies the stored operands and writes the product into {p}."]
    elif style == "seq":
        st, dn = c.p(c.pick("start", "go")), c.p(c.pick("done", "ready"), "output")
        cw = clog2(w + 1)
        ports = [c.clk_port(), c.rst_port(), Port("input", 1, st), Port("input", w, a), Port("input", w, b),
                 Port("output", 2 * w, p, True), Port("output", 1, dn, True)]
        body += [f"{c.reg()} [{2*w-1}:0] mc;", f"{c.reg()} [{w-1}:0] mp;", f"{c.reg()} [{cw-1}:0] cnt;", f"{c.reg()} busy;"]
        body += c.seq([f"{p} <= 0;", "mc <= 0;", "mp <= 0;", "cnt <= 0;", "busy <= 1'b0;", f"{dn} <= 1'b0;"],
                      [f"{dn} <= 1'b0;", f"if ({st} && !busy) begin", f"  mc <= {{{w}'d0, {a}}};", f"  mp <= {b};",
                       f"  {p} <= 0;", f"  cnt <= {cw}'d{w};", "  busy <= 1'b1;", "end else if (busy) begin",
                       f"  if (mp[0]) {p} <= {p} + mc;", "  mc <= mc << 1;", "  mp <= mp >> 1;", "  cnt <= cnt - 1'b1;",
                       "  if (cnt == 1) begin", "    busy <= 1'b0;", f"    {dn} <= 1'b1;", "  end", "end"])
        hl = f"A sequential shift-and-add multiplier that computes {a}*{b} in {w} cycles after {st}."
        det = (f"{name} loads the multiplicand (zero-extended to {2*w} bits) and the multiplier when {st} is seen while idle. "
               f"Each cycle it adds the multiplicand to the accumulating product {p} if the multiplier's LSB is set, then shifts "
               f"the multiplicand left and the multiplier right. After {w} iterations it pulses {dn} for one cycle.")
        blocks = ["Declares the shifting operand registers, the iteration counter and the busy flag.",
                  f"Loads the operands and clears {p} when {st} arrives while idle.",
                  "Conditionally adds and shifts once per cycle while busy.", f"Pulses {dn} after the last iteration."]
    elif style == "pipe2":
        h = w // 2
        ports = [c.clk_port(), Port("input", w, a), Port("input", w, b), Port("output", 2 * w, p, True)]
        body += [f"{c.reg()} [{w+h-1}:0] pl, ph;",
                 f"{c.ffc()} begin", f"  pl <= {a} * {b}[{h-1}:0];", f"  ph <= {a} * {b}[{w-1}:{h}];",
                 f"  {p} <= pl + (ph << {h});", "end"]
        hl = f"A two-stage pipelined {w}x{w} unsigned multiplier that splits the multiplier into two {h}-bit halves."
        det = (f"{name} computes the partial products of {a} with the low and high halves of {b} in the first stage and adds "
               f"them, with the high partial product shifted by {h}, in the second stage. A new operand pair can enter each clock; "
               f"the product {p} appears two cycles later. There is no reset.")
        blocks = ["Computes two partial products in the first pipeline stage.", f"Shifts and adds them into {p} in the second stage."]
    else:
        ports = [Port("input", w, a), Port("input", w, b), Port("output", 2 * w, p)]
        body += [f"{c.wire()} [{2*w-1}:0] pp [0:{w-1}];", "genvar gr;", "generate",
                 f"  for (gr = 0; gr < {w}; gr = gr + 1) begin : g_pp",
                 f"    assign pp[gr] = {b}[gr] ? ({{{w}'d0, {a}}} << gr) : {2*w}'d0;", "  end", "endgenerate",
                 f"{c.reg()} [{2*w-1}:0] acc;", "integer k;", f"{c.comb()} begin", "  acc = 0;",
                 f"  for (k = 0; k < {w}; k = k + 1) acc = acc + pp[k];", "end", f"assign {p} = acc;"]
        hl = f"An array multiplier that forms {w} shifted partial products of {a} and sums them."
        det = (f"{name} generates one partial product per bit of {b}: the multiplicand {a} shifted by the bit position when "
               f"that bit is set, otherwise zero. A combinational loop adds the partial products into the {2*w}-bit product {p}.")
        blocks = ["Generates the gated and shifted partial products.", "Sums them in a combinational loop.", f"Drives the sum on {p}."]
    return Mod(name, ports, body, hl, det, blocks)


@family("arithmetic", 6)
def fam_alu(c: Ctx, i: int) -> Mod:
    w = [8, 16, 32, 4, 12, 16][i]
    opsets = [
        [("ADD", "a + b"), ("SUB", "a - b"), ("AND", "a & b"), ("OR", "a | b")],
        [("ADD", "a + b"), ("SUB", "a - b"), ("AND", "a & b"), ("OR", "a | b"), ("XOR", "a ^ b"), ("NOT", "~a"),
         ("SHL", "a << 1"), ("SHR", "a >> 1")],
        [("ADD", "a + b"), ("SUB", "a - b"), ("SLT", "slt"), ("SLL", "a << b[4:0]"), ("SRL", "a >> b[4:0]"),
         ("SRA", "sra"), ("XOR", "a ^ b"), ("NOR", "~(a | b)")],
        [("ADD", "a + b"), ("INC", "a + 1"), ("DEC", "a - 1"), ("PASSB", "b")],
        [("AND", "a & b"), ("NAND", "~(a & b)"), ("XNOR", "~(a ^ b)"), ("MIN", "mn"), ("MAX", "mx"), ("ADD", "a + b")],
        [("ADD", "a + b"), ("SUB", "a - b"), ("RSB", "b - a"), ("ABSD", "absd"), ("AVG", "avg"), ("CLR", "0")],
    ]
    ops = opsets[i]
    ow = clog2(len(ops))
    a, b = c.p(c.pick("a", "rs1", "opa", "src1")), c.p(c.pick("b", "rs2", "opb", "src2"))
    op = c.p(c.pick("op", "alu_op", "func", "ctrl"))
    y = c.p(c.pick("y", "result", "alu_out", "rd"), "output")
    z = c.p(c.pick("zero", "z_flag", "is_zero"), "output")
    style = c.pick("case_localparam", "case_literal")
    name = f"{c.pick('alu', 'mini_alu', 'alu_core', 'exec_alu')}_{w}b_{len(ops)}op" + ("" if i < 4 else f"_{i}")
    ports = [Port("input", w, a), Port("input", w, b), Port("input", ow, op), Port("output", w, y, True), Port("output", 1, z)]
    body: list[str] = []
    if style == "case_localparam":
        for k, (nm, _) in enumerate(ops):
            body.append(f"localparam OP_{nm} = {ow}'d{k};")
    extra = {"slt": f"{c.wire()} slt_bit = ($signed({a}) < $signed({b}));",
             "sra": f"{c.wire()} [{w-1}:0] sra_v = $signed({a}) >>> {b}[4:0];",
             "mn": f"{c.wire()} [{w-1}:0] mn_v = ({a} < {b}) ? {a} : {b};",
             "mx": f"{c.wire()} [{w-1}:0] mx_v = ({a} > {b}) ? {a} : {b};",
             "absd": f"{c.wire()} [{w-1}:0] absd_v = ({a} > {b}) ? {a} - {b} : {b} - {a};",
             "avg": f"{c.wire()} [{w}:0] avg_s = {a} + {b};"}
    helpers = 0
    for key, line in extra.items():
        if any(e == key for _, e in ops):
            body.append(line)
            helpers += 1

    def expr(e: str) -> str:
        if e == "slt":
            return f"{{{{{w-1}{{1'b0}}}}, slt_bit}}"
        if e in ("sra", "mn", "mx", "absd"):
            return f"{e}_v"
        if e == "avg":
            return f"avg_s[{w}:1]"
        if e == "0":
            return f"{w}'d0"
        return re.sub(r"\b([ab])\b", lambda m: a if m.group(1) == "a" else b, e)

    body += [f"{c.comb()} begin", f"  case ({op})"]
    for k, (nm, e) in enumerate(ops):
        lab = f"OP_{nm}" if style == "case_localparam" else f"{ow}'d{k}"
        ex = expr(e)
        body.append(f"    {lab}: {y} = {ex};")
    body += [f"    default: {y} = {w}'d0;", "  endcase", "end", f"assign {z} = ({y} == {w}'d0);"]
    names = ", ".join(f"{k}={nm}" for k, (nm, _) in enumerate(ops))
    hl = f"A {w}-bit ALU with {len(ops)} operations selected by the {ow}-bit code {op}, plus a zero flag."
    det = (f"{name} applies one of {len(ops)} operations to {a} and {b} according to {op} ({names}). The result is "
           f"driven on {y} combinationally and {z} is high when the result is zero."
           + (" Unused operation codes return zero." if len(ops) < (1 << ow) else ""))
    blocks = [f"{'Defines named operation codes.' if style == 'case_localparam' else 'Uses literal operation codes.'}",
              "Computes helper values (comparisons, shifts, min/max) for the compound operations." if helpers else f"Uses {a} and {b} directly in every operation.",
              f"Selects the operation result with a case statement on {op}.", f"Drives the zero flag {z}."]
    return Mod(name, ports, body, hl, det, blocks)


@family("arithmetic", 5)
def fam_sat(c: Ctx, i: int) -> Mod:
    style = ["uadd", "sadd", "usub", "clamp", "round_shift"][i]
    w = c.pick(8, 12, 16)
    a, b = c.p(c.pick("a", "x", "in_a")), c.p(c.pick("b", "y", "in_b"))
    y = c.p(c.pick("y", "sat_out", "res"), "output")
    sf = c.p(c.pick("sat", "clipped", "ovf"), "output")
    name = f"{c.pick('sat', 'saturate', 'clip')}_{style}_{w}"
    body: list[str] = []
    if style == "uadd":
        ports = [Port("input", w, a), Port("input", w, b), Port("output", w, y), Port("output", 1, sf)]
        body += [f"{c.wire()} [{w}:0] s = {a} + {b};", f"assign {sf} = s[{w}];", f"assign {y} = s[{w}] ? {{{w}{{1'b1}}}} : s[{w-1}:0];"]
        hl = f"An unsigned {w}-bit saturating adder: {y} sticks at the maximum instead of wrapping."
        det = f"{name} adds {a} and {b} with one extra bit. If the carry is set the result is replaced by all ones and {sf} is raised; otherwise the sum is passed through."
        blocks = ["Adds the operands into a wider sum.", f"Replaces an overflowing sum by the maximum value and flags {sf}."]
    elif style == "sadd":
        ports = [Port("input", w, a, signed=True), Port("input", w, b, signed=True), Port("output", w, y, signed=True), Port("output", 1, sf)]
        body += [f"{c.wire()} signed [{w}:0] s = {a} + {b};", f"{c.wire()} pos_ovf = (s[{w}:{w-1}] == 2'b01);",
                 f"{c.wire()} neg_ovf = (s[{w}:{w-1}] == 2'b10);",
                 f"assign {y} = pos_ovf ? {{1'b0, {{{w-1}{{1'b1}}}}}} : neg_ovf ? {{1'b1, {{{w-1}{{1'b0}}}}}} : s[{w-1}:0];",
                 f"assign {sf} = pos_ovf | neg_ovf;"]
        hl = f"A signed {w}-bit saturating adder that clamps to the most positive or most negative value on overflow."
        det = (f"{name} sign-extends and adds {a} and {b}. When the two top bits of the {w+1}-bit sum differ, the sum overflowed: "
               f"positive overflow returns {(1 << (w-1)) - 1}, negative overflow returns -{1 << (w-1)}, and {sf} is set.")
        blocks = ["Adds the operands with one guard bit.", "Detects positive and negative overflow from the two top bits.",
                  f"Selects the clamped or true sum for {y}."]
    elif style == "usub":
        ports = [Port("input", w, a), Port("input", w, b), Port("output", w, y), Port("output", 1, sf)]
        body += [f"assign {sf} = ({b} > {a});", f"assign {y} = {sf} ? {w}'d0 : {a} - {b};"]
        hl = f"An unsigned {w}-bit saturating subtractor that returns zero instead of wrapping below zero."
        det = f"{name} computes {a} - {b}; when {b} is larger than {a} the result would underflow, so {y} is forced to zero and {sf} is set."
        blocks = [f"Detects underflow when {b} exceeds {a}.", f"Drives zero or the difference on {y}."]
    elif style == "clamp":
        lo, hi = c.p(c.pick("lo", "floor")), c.p(c.pick("hi", "ceil"))
        ports = [Port("input", w, a), Port("input", w, lo), Port("input", w, hi), Port("output", w, y, True), Port("output", 1, sf, True)]
        body += [f"{c.comb()} begin", f"  {sf} = 1'b1;", f"  if ({a} < {lo}) {y} = {lo};", f"  else if ({a} > {hi}) {y} = {hi};",
                 "  else begin", f"    {y} = {a};", f"    {sf} = 1'b0;", "  end", "end"]
        hl = f"Clamps the {w}-bit value {a} into the range given by {lo} and {hi}."
        det = f"{name} passes {a} unchanged when it lies between {lo} and {hi}; otherwise it outputs the violated bound and sets {sf}."
        blocks = [f"Compares {a} against both bounds.", f"Selects the bound or the input and reports clipping on {sf}."]
    else:
        sh = c.pick(2, 4)
        ow = w - sh
        ports = [Port("input", w, a, signed=True), Port("output", ow, y, signed=True), Port("output", 1, sf)]
        body += [f"{c.wire()} signed [{w}:0] r = {a} + ({w+1}'sd1 <<< {sh-1});", f"{c.wire()} signed [{w-sh}:0] q = r >>> {sh};",
                 f"assign {sf} = (q[{w-sh}] != q[{w-sh-1}]);",
                 f"assign {y} = {sf} ? {{q[{w-sh}], {{{ow-1}{{~q[{w-sh}]}}}}}} : q[{ow-1}:0];"]
        hl = f"Rounds the signed {w}-bit value {a} to {ow} bits by a right shift of {sh} with round-half-up and saturation."
        det = (f"{name} adds half an LSB of the output (1 << {sh-1}) to {a}, arithmetically shifts right by {sh}, and saturates "
               f"the {ow}-bit result if the rounding pushed it out of range; {sf} reports saturation.")
        blocks = ["Adds the rounding constant with a guard bit.", f"Shifts right arithmetically by {sh}.",
                  "Detects overflow from the two top bits.", f"Saturates or passes the rounded value to {y}."]
    return Mod(name, ports, body, hl, det, blocks)


@family("arithmetic", 5)
def fam_acc(c: Ctx, i: int) -> Mod:
    style = ["basic", "sticky_ovf", "ema", "signed_clr", "window_sum"][i]
    iw = c.pick(8, 12, 16)
    aw = iw + c.pick(4, 8)
    d = c.p(c.pick("din", "sample", "x", "data_in"))
    en = c.p(c.pick("en", "valid", "acc_en", "ce"))
    q = c.p(c.pick("acc", "total", "sum", "q"), "output")
    name = f"{c.pick('accum', 'accumulator', 'acc_unit')}_{style}_{iw}to{aw}"
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, en), Port("input", iw, d)]
    body: list[str] = []
    if style == "basic":
        clr = c.p(c.pick("clr", "clear"))
        ports.insert(2, Port("input", 1, clr))
        ports.append(Port("output", aw, q, True))
        body += c.seq([f"{q} <= {aw}'d0;"], [f"if ({clr}) {q} <= {aw}'d0;", f"else if ({en}) {q} <= {q} + {d};"])
        hl = f"An {aw}-bit accumulator that adds the {iw}-bit input {d} whenever {en} is high and clears on {clr}."
        det = (f"{name} holds a running sum in {q}. On each rising edge of {c.clk} a synchronous {clr} empties it, otherwise the input "
               f"is added when {en} is asserted. It is also cleared by {c.rdesc()}. The sum wraps modulo 2^{aw}.")
        blocks = ["Resets the sum.", f"Clears the sum when {clr} is set.", f"Adds {d} when {en} is set."]
    elif style == "sticky_ovf":
        ov = c.p(c.pick("ovf", "overflow"), "output")
        ports += [Port("output", aw, q, True), Port("output", 1, ov, True)]
        body += [f"{c.wire()} [{aw}:0] nxt = {q} + {d};"]
        body += c.seq([f"{q} <= {aw}'d0;", f"{ov} <= 1'b0;"],
                      [f"if ({en}) begin", f"  {q} <= nxt[{aw-1}:0];", f"  if (nxt[{aw}]) {ov} <= 1'b1;", "end"])
        hl = f"An {aw}-bit accumulator with a sticky overflow flag {ov}."
        det = (f"{name} adds {d} to {q} when {en} is high and sets {ov} the first time the sum carries out of bit {aw-1}; the "
               f"flag then stays set until reset ({c.rdesc()}).")
        blocks = ["Computes the next sum with a carry bit.", f"Updates the accumulator when {en} is high.", f"Latches carry-out into {ov}."]
    elif style == "ema":
        k = c.pick(2, 3, 4)
        ports.append(Port("output", iw, q))
        body += [f"{c.reg()} [{iw+k-1}:0] st;"]
        body += c.seq(["st <= 0;"], [f"if ({en}) st <= st + {d} - (st >> {k});"])
        body.append(f"assign {q} = st[{iw+k-1}:{k}];")
        hl = f"An exponential moving average filter with smoothing factor 1/{1 << k} over the {iw}-bit samples {d}."
        det = (f"{name} keeps a scaled state register with {k} fractional bits. For every valid sample it adds the new sample and "
               f"subtracts the state shifted right by {k}, which implements y += (x - y)/{1 << k} without a multiplier. The filtered "
               f"output {q} is the integer part of the state.")
        blocks = ["Declares the state register with fractional bits.", "Updates the state with the leaky-integrator equation.",
                  f"Outputs the integer part on {q}."]
    elif style == "signed_clr":
        ld = c.p(c.pick("load", "init"))
        ports.insert(2, Port("input", 1, ld))
        ports[-1] = Port("input", iw, d, signed=True)
        ports.append(Port("output", aw, q, True, signed=True))
        body += c.seq([f"{q} <= 0;"], [f"if ({ld}) {q} <= {d};", f"else if ({en}) {q} <= {q} + {d};"])
        hl = f"A signed accumulator that loads {d} when {ld} is high and otherwise adds it when {en} is high."
        det = (f"{name} accumulates two's complement samples into the {aw}-bit signed register {q}. {ld} replaces the content with "
               f"the current sample (sign-extended) which starts a new sum without a dead cycle. Reset is {c.rdesc()}.")
        blocks = ["Clears the accumulator on reset.", f"Loads the sign-extended sample when {ld} is high.", f"Adds the sample when {en} is high."]
    else:
        n = c.pick(4, 8)
        ports.append(Port("output", iw + clog2(n), q, True))
        body += [f"{c.reg()} [{iw-1}:0] hist [0:{n-1}];", "integer k;"]
        body += c.seq([f"{q} <= 0;", f"for (k = 0; k < {n}; k = k + 1) hist[k] <= 0;"],
                      [f"if ({en}) begin", f"  {q} <= {q} + {d} - hist[{n-1}];",
                       f"  for (k = {n-1}; k > 0; k = k - 1) hist[k] <= hist[k-1];", f"  hist[0] <= {d};", "end"])
        hl = f"A running window sum over the last {n} samples of {d}."
        det = (f"{name} stores the last {n} samples in a shift register. With each valid sample it adds the new value to {q} and "
               f"subtracts the sample falling out of the window, so {q} is always the sum of the most recent {n} inputs.")
        blocks = [f"Declares a {n}-entry history buffer.", "Clears the history and the sum on reset.",
                  "Updates the sum with the new and the oldest sample.", "Shifts the history by one position."]
    return Mod(name, ports, body, hl, det, blocks)


@family("arithmetic", 4)
def fam_mac(c: Ctx, i: int) -> Mod:
    style = ["mac", "mac_pipe", "dot2", "mac_sat"][i]
    w = c.pick(8, 12, 16)
    aw = 2 * w + c.pick(4, 6, 8)
    a, b = c.p(c.pick("a", "coef", "w_in")), c.p(c.pick("b", "x_in", "sample"))
    en, clr = c.p(c.pick("en", "valid")), c.p(c.pick("clr", "start", "zero"))
    q = c.p(c.pick("acc", "mac_out", "y"), "output")
    name = f"{c.pick('mac', 'mac_unit', 'madd')}_{style}_{w}"
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, clr), Port("input", 1, en),
             Port("input", w, a, signed=True), Port("input", w, b, signed=True)]
    body: list[str] = []
    if style == "mac":
        ports.append(Port("output", aw, q, True, signed=True))
        body += c.seq([f"{q} <= 0;"], [f"if ({clr}) {q} <= 0;", f"else if ({en}) {q} <= {q} + {a} * {b};"])
        hl = f"A signed multiply-accumulate unit that adds {a}*{b} to the {aw}-bit accumulator {q}."
        det = (f"{name} multiplies two signed {w}-bit inputs and adds the product to {q} every cycle {en} is high; {clr} zeroes the "
               f"accumulator synchronously. The {aw - 2*w} guard bits absorb growth for long sums. Reset is {c.rdesc()}.")
        blocks = ["Clears the accumulator on reset or clear.", f"Adds the signed product when {en} is high."]
    elif style == "mac_pipe":
        ports.append(Port("output", aw, q, True, signed=True))
        body += [f"{c.reg()} signed [{2*w-1}:0] prod;", f"{c.reg()} v1, c1;"]
        body += c.seq(["prod <= 0;", "v1 <= 1'b0;", "c1 <= 1'b0;", f"{q} <= 0;"],
                      [f"prod <= {a} * {b};", f"v1 <= {en};", f"c1 <= {clr};", f"if (c1) {q} <= 0;", f"else if (v1) {q} <= {q} + prod;"])
        hl = f"A two-stage pipelined signed MAC: multiply in stage one, accumulate into {q} in stage two."
        det = (f"{name} registers the product of {a} and {b} together with delayed copies of {en} and {clr}. In the second stage the "
               f"registered product is added to {q} or the accumulator is cleared, keeping the control aligned with the data.")
        blocks = ["Registers the product and delays the control signals.", "Clears or accumulates in the second stage."]
    elif style == "dot2":
        a2, b2 = c.p(a + "_1"), c.p(b + "_1")
        ports += [Port("input", w, a2, signed=True), Port("input", w, b2, signed=True), Port("output", aw, q, True, signed=True)]
        body += [f"{c.wire()} signed [{2*w}:0] pair = {a} * {b} + {a2} * {b2};"]
        body += c.seq([f"{q} <= 0;"], [f"if ({clr}) {q} <= 0;", f"else if ({en}) {q} <= {q} + pair;"])
        hl = f"A two-lane dot-product accumulator that adds {a}*{b} + {a2}*{b2} per cycle."
        det = (f"{name} forms two signed {w}x{w} products and their sum combinationally and accumulates it into {q} when {en} is high. "
               f"It processes two vector elements per clock. {clr} restarts the dot product.")
        blocks = ["Computes the sum of the two lane products.", f"Accumulates it into {q}, with clear and reset."]
    else:
        ov = c.p(c.pick("sat_flag", "clip"), "output")
        ports += [Port("output", aw, q, True, signed=True), Port("output", 1, ov, True)]
        mx = f"{{1'b0, {{{aw-1}{{1'b1}}}}}}"
        mn = f"{{1'b1, {{{aw-1}{{1'b0}}}}}}"
        body += [f"{c.wire()} signed [{aw}:0] nxt = {q} + {a} * {b};"]
        body += c.seq([f"{q} <= 0;", f"{ov} <= 1'b0;"],
                      [f"if ({clr}) begin", f"  {q} <= 0;", f"  {ov} <= 1'b0;", f"end else if ({en}) begin",
                       f"  if (nxt[{aw}:{aw-1}] == 2'b01) begin", f"    {q} <= {mx};", f"    {ov} <= 1'b1;",
                       f"  end else if (nxt[{aw}:{aw-1}] == 2'b10) begin", f"    {q} <= {mn};", f"    {ov} <= 1'b1;",
                       f"  end else {q} <= nxt[{aw-1}:0];", "end"])
        hl = f"A saturating signed MAC whose {aw}-bit accumulator clamps instead of wrapping."
        det = (f"{name} computes the next accumulator value with a guard bit. On positive or negative overflow the accumulator is "
               f"held at the largest or smallest representable value and {ov} is set until the next clear.")
        blocks = ["Computes the next value with one guard bit.", "Clears on reset or clear.", "Saturates on overflow and flags it.",
                  "Otherwise stores the new sum."]
    return Mod(name, ports, body, hl, det, blocks)


@family("arithmetic", 3)
def fam_div(c: Ctx, i: int) -> Mod:
    w = [8, 16, 12][i]
    style = ["restoring", "restoring_busy", "comb_const"][i]
    n, d = c.p(c.pick("dividend", "num", "n")), c.p(c.pick("divisor", "den", "d"))
    qo, ro = c.p(c.pick("quotient", "q", "quo"), "output"), c.p(c.pick("remainder", "r", "rem"), "output")
    name = f"{c.pick('div', 'divider', 'udiv')}_{style}_{w}"
    body: list[str] = []
    if style.startswith("restoring"):
        st, dn = c.p(c.pick("start", "go")), c.p(c.pick("done", "valid"), "output")
        cw = clog2(w + 1)
        ports = [c.clk_port(), c.rst_port(), Port("input", 1, st), Port("input", w, n), Port("input", w, d),
                 Port("output", w, qo, True), Port("output", w, ro, True), Port("output", 1, dn, True)]
        extra = []
        if style == "restoring_busy":
            bz = c.p("busy", "output")
            ports.append(Port("output", 1, bz))
            extra = [f"assign {bz} = running;"]
        body += [f"{c.reg()} [{w-1}:0] dv;", f"{c.reg()} [{cw-1}:0] cnt;", f"{c.reg()} running;",
                 f"{c.wire()} [{w}:0] trial = {{{ro}, {qo}[{w-1}]}} - {{1'b0, dv}};"]
        body += c.seq([f"{qo} <= 0;", f"{ro} <= 0;", "dv <= 0;", "cnt <= 0;", "running <= 1'b0;", f"{dn} <= 1'b0;"],
                      [f"{dn} <= 1'b0;", f"if ({st} && !running) begin", f"  {qo} <= {n};", f"  {ro} <= 0;", f"  dv <= {d};",
                       f"  cnt <= {cw}'d{w};", "  running <= 1'b1;", "end else if (running) begin",
                       f"  if (trial[{w}]) begin", f"    {ro} <= {{{ro}[{w-2}:0], {qo}[{w-1}]}};", f"    {qo} <= {{{qo}[{w-2}:0], 1'b0}};",
                       "  end else begin", f"    {ro} <= trial[{w-1}:0];", f"    {qo} <= {{{qo}[{w-2}:0], 1'b1}};", "  end",
                       "  cnt <= cnt - 1'b1;", "  if (cnt == 1) begin", "    running <= 1'b0;", f"    {dn} <= 1'b1;", "  end", "end"])
        body += extra
        hl = f"A sequential restoring divider for {w}-bit unsigned numbers that produces quotient and remainder in {w} cycles."
        det = (f"{name} shifts the dividend {n} bit by bit into a partial remainder. Each cycle it subtracts the divisor as a trial; "
               f"if the trial is non-negative the remainder is replaced and a 1 enters the quotient, otherwise a 0. After {w} steps "
               f"{qo} and {ro} are valid and {dn} pulses. Division by zero yields an all-ones quotient.")
        blocks = ["Declares the divisor copy, the step counter and the running flag.", "Computes the trial subtraction.",
                  f"Loads the operands on {st}.", "Shifts and conditionally restores the remainder each cycle.", f"Pulses {dn} at the end."]
    else:
        k = c.pick(3, 5, 10)
        dv = c.p(c.pick("divisible", "exact", "is_multiple"), "output")
        ports = [Port("input", w, n), Port("output", w, qo), Port("output", clog2(k), ro), Port("output", 1, dv)]
        body += [f"localparam DIVISOR = {k};", f"assign {qo} = {n} / DIVISOR;", f"assign {ro} = {n} % DIVISOR;", f"assign {dv} = ({ro} == 0);"]
        hl = f"Divides the {w}-bit input {n} by the constant {k}, returning quotient and remainder."
        det = f"{name} uses the / and % operators with the constant divisor {k}, which synthesis tools reduce to multiply-and-shift logic. The remainder fits in {clog2(k)} bits."
        blocks = [f"Computes {n} / {k} into {qo}.", f"Computes {n} % {k} into {ro}.", f"Flags exact division on {dv}."]
    return Mod(name, ports, body, hl, det, blocks)


@family("arithmetic", 5)
def fam_dsp(c: Ctx, i: int) -> Mod:
    style = ["abs", "max4", "median3", "fir4", "diff"][i]
    w = c.pick(8, 10, 12, 16)
    body: list[str] = []
    if style == "abs":
        x, y = c.p(c.pick("x", "val", "s")), c.p(c.pick("mag", "abs_val", "y"), "output")
        ports = [Port("input", w, x, signed=True), Port("output", w, y)]
        body += [f"{c.wire()} neg = {x}[{w-1}];", f"assign {y} = neg ? (~{x} + 1'b1) : {x};"]
        name = f"abs_value_{w}"
        hl = f"Returns the absolute value of the signed {w}-bit input {x}."
        det = f"{name} negates {x} in two's complement (invert and add one) when its sign bit is set; the most negative input maps to itself."
        blocks = [f"Extracts the sign of {x}.", "Selects the input or its two's complement negation."]
    elif style == "max4":
        xs = [c.p(f"{c.pick('v', 'in', 'd')}{k}") if k == 0 else None for k in range(4)]
        base = xs[0][:-1]
        xs = [f"{base}{k}" for k in range(4)]
        y, ix = c.p(c.pick("max_val", "peak"), "output"), c.p(c.pick("max_idx", "which"), "output")
        ports = [Port("input", w, v) for v in xs] + [Port("output", w, y), Port("output", 2, ix)]
        body += [f"{c.wire()} s01 = ({xs[1]} > {xs[0]});", f"{c.wire()} s23 = ({xs[3]} > {xs[2]});",
                 f"{c.wire()} [{w-1}:0] m01 = s01 ? {xs[1]} : {xs[0]};", f"{c.wire()} [{w-1}:0] m23 = s23 ? {xs[3]} : {xs[2]};",
                 f"{c.wire()} sf = (m23 > m01);", f"assign {y} = sf ? m23 : m01;", f"assign {ix} = sf ? {{1'b1, s23}} : {{1'b0, s01}};"]
        name = f"max4_tree_{w}"
        hl = f"Finds the maximum of four {w}-bit inputs and its index with a two-level comparison tree."
        det = (f"{name} compares {xs[0]} with {xs[1]} and {xs[2]} with {xs[3]} in the first level and the two winners in the second. "
               f"The largest value is driven on {y} and its position (0-3) on {ix}; ties favour the lower index.")
        blocks = ["Compares the inputs pairwise.", "Selects the pair winners.", f"Compares the winners and drives {y} and {ix}."]
    elif style == "median3":
        a, b, cc = (c.p(x) for x in c.pick(("a", "b", "c"), ("p", "q", "r"), ("s0", "s1", "s2")))
        y = c.p(c.pick("med", "median"), "output")
        ports = [Port("input", w, a), Port("input", w, b), Port("input", w, cc), Port("output", w, y, True)]
        body += [f"{c.comb()} begin", f"  if (({a} >= {b} && {a} <= {cc}) || ({a} <= {b} && {a} >= {cc})) {y} = {a};",
                 f"  else if (({b} >= {a} && {b} <= {cc}) || ({b} <= {a} && {b} >= {cc})) {y} = {b};", f"  else {y} = {cc};", "end"]
        name = f"median3_{w}"
        hl = f"Outputs the median of three {w}-bit values."
        det = f"{name} checks whether {a} or {b} lies between the other two inputs and returns it; otherwise {cc} is the median. It is used for spike removal filters."
        blocks = [f"Tests whether {a} is between the others.", f"Tests {b} likewise.", f"Falls back to {cc}."]
    elif style == "fir4":
        x = c.p(c.pick("x", "din", "sample"))
        y = c.p(c.pick("y", "dout", "filt"), "output")
        co = [c.pick(1, 2, 3), c.pick(3, 5, 6), c.pick(3, 5, 6), c.pick(1, 2, 3)]
        ports = [c.clk_port(), c.rst_port(), Port("input", w, x), Port("output", w + 4, y, True)]
        body += [f"{c.reg()} [{w-1}:0] t1, t2, t3;"]
        body += c.seq(["t1 <= 0;", "t2 <= 0;", "t3 <= 0;", f"{y} <= 0;"],
                      [f"t1 <= {x};", "t2 <= t1;", "t3 <= t2;", f"{y} <= {co[0]} * {x} + {co[1]} * t1 + {co[2]} * t2 + {co[3]} * t3;"])
        name = f"fir4_{''.join(map(str, co))}_{w}"
        hl = f"A 4-tap FIR filter with constant coefficients {co} on the {w}-bit input {x}."
        det = (f"{name} keeps the last three samples in a tapped delay line and computes the registered weighted sum "
               f"{co[0]}*x[n] + {co[1]}*x[n-1] + {co[2]}*x[n-2] + {co[3]}*x[n-3] on {y}, with four guard bits. Reset is {c.rdesc()}.")
        blocks = ["Declares the three delay registers.", "Shifts the sample through the delay line.", f"Registers the weighted sum on {y}."]
    else:
        x = c.p(c.pick("x", "pos", "level"))
        y = c.p(c.pick("delta", "slope", "dx"), "output")
        ports = [c.clk_port(), c.rst_port(), Port("input", w, x), Port("output", w + 1, y, True, signed=True)]
        body += [f"{c.reg()} [{w-1}:0] prev;"]
        body += c.seq(["prev <= 0;", f"{y} <= 0;"], [f"prev <= {x};", f"{y} <= $signed({{1'b0, {x}}}) - $signed({{1'b0, prev}});"])
        name = f"diff_filter_{w}"
        hl = f"Computes the signed first difference of the unsigned input {x} between consecutive clocks."
        det = f"{name} stores the previous sample and registers the {w+1}-bit signed difference between the current and previous sample on {y}; reset is {c.rdesc()}."
        blocks = ["Stores the previous sample.", f"Registers the signed difference on {y}."]
    return Mod(name, ports, body, hl, det, blocks)


# =============================================================================================
# Counters
# =============================================================================================
@family("counters", 6)
def fam_updown(c: Ctx, i: int) -> Mod:
    style = ["updown_load", "up_en", "updown_flags", "param_load", "down_reload", "up_sat"][i]
    w = c.pick(4, 8, 10, 16, 12)
    en = c.p(c.pick("en", "ce", "count_en", "enable"))
    q = c.p(c.pick("count", "q", "cnt", "value"), "output")
    name = f"{c.pick('cnt', 'counter', 'ctr')}_{style}_{w}"
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, en)]
    body: list[str] = []
    params: list[tuple[str, str]] = []
    if style == "updown_load":
        up, ld, d = c.p(c.pick("up", "dir", "up_dn")), c.p(c.pick("load", "ld")), c.p(c.pick("d", "load_val", "preset"))
        ports += [Port("input", 1, up), Port("input", 1, ld), Port("input", w, d), Port("output", w, q, True)]
        body += c.seq([f"{q} <= {w}'d0;"], [f"if ({ld}) {q} <= {d};", f"else if ({en}) begin",
                                            f"  if ({up}) {q} <= {q} + 1'b1;", f"  else {q} <= {q} - 1'b1;", "end"])
        hl = f"A {w}-bit up/down counter with synchronous load of {d} and count enable {en}."
        det = (f"{name} loads {d} into {q} when {ld} is high (load has priority). Otherwise, while {en} is set, it counts up when "
               f"{up} is 1 and down when {up} is 0, wrapping around at the ends. It is cleared by {c.rdesc()}.")
        blocks = ["Clears the counter on reset.", f"Loads {d} when {ld} is high.", f"Counts in the direction given by {up} when enabled."]
    elif style == "up_en":
        wrap_ = c.p(c.pick("wrap", "rollover", "tc"), "output")
        ports += [Port("output", w, q, True), Port("output", 1, wrap_)]
        body += c.seq([f"{q} <= {w}'d0;"], [f"if ({en}) {q} <= {q} + 1'b1;"])
        body.append(f"assign {wrap_} = {en} & (&{q});")
        hl = f"A free-running {w}-bit up counter with enable and a rollover indicator {wrap_}."
        det = (f"{name} increments {q} on each rising edge of {c.clk} while {en} is high. {wrap_} is high in the cycle where the "
               f"counter is at its maximum and enabled, i.e. when it is about to roll over to zero. Reset is {c.rdesc()}.")
        blocks = ["Clears the counter on reset.", f"Increments when {en} is set.", f"Flags the all-ones state on {wrap_}."]
    elif style == "updown_flags":
        up = c.p(c.pick("inc", "up"))
        dn = c.p(c.pick("dec", "down"))
        mx, mn = c.p(c.pick("at_max", "full"), "output"), c.p(c.pick("at_min", "empty"), "output")
        ports = [c.clk_port(), c.rst_port(), Port("input", 1, up), Port("input", 1, dn), Port("output", w, q, True),
                 Port("output", 1, mx), Port("output", 1, mn)]
        body += c.seq([f"{q} <= {w}'d0;"], [f"case ({{{up}, {dn}}})", f"  2'b10: if (!{mx}) {q} <= {q} + 1'b1;",
                                            f"  2'b01: if (!{mn}) {q} <= {q} - 1'b1;", "  default: ;", "endcase"])
        body += [f"assign {mx} = &{q};", f"assign {mn} = ~|{q};"]
        hl = f"A {w}-bit saturating occupancy counter with separate increment and decrement inputs."
        det = (f"{name} adds one when only {up} is high and subtracts one when only {dn} is high; simultaneous requests cancel. "
               f"It never wraps: increments stop at all ones ({mx}) and decrements stop at zero ({mn}). Reset is {c.rdesc()}.")
        blocks = ["Clears the counter on reset.", "Decodes the increment/decrement pair.", "Saturates at both ends.",
                  f"Drives {mx} and {mn}."]
    elif style == "param_load":
        params = [("N", str(w))]
        ld, d = c.p(c.pick("load", "set")), c.p(c.pick("init", "din"))
        ports += [Port("input", 1, ld), Port("input", w, d, wexpr="[N-1:0]"), Port("output", w, q, True, wexpr="[N-1:0]")]
        body += c.seq([f"{q} <= {{N{{1'b0}}}};"], [f"{q} <= {ld} ? {d} : ({en} ? {q} + 1'b1 : {q});"])
        hl = f"A parameterized N-bit (default {w}) loadable up counter."
        det = (f"{name} uses a single conditional expression: load {d} when {ld} is high, otherwise increment when {en} is high, "
               f"otherwise hold. The width N is a module parameter. Reset is {c.rdesc()}.")
        blocks = ["Declares the width parameter N.", "Clears on reset.", "Selects load, increment or hold in one assignment."]
    elif style == "down_reload":
        rl = c.p(c.pick("period", "reload", "top"))
        z = c.p(c.pick("zero", "expired", "tick"), "output")
        ports += [Port("input", w, rl), Port("output", w, q, True), Port("output", 1, z, True)]
        body += c.seq([f"{q} <= {w}'d0;", f"{z} <= 1'b0;"],
                      [f"{z} <= 1'b0;", f"if ({en}) begin", f"  if ({q} == {w}'d0) begin", f"    {q} <= {rl};", f"    {z} <= 1'b1;",
                       "  end else begin", f"    {q} <= {q} - 1'b1;", "  end", "end"])
        hl = f"A {w}-bit down counter that reloads from {rl} when it reaches zero and pulses {z}."
        det = (f"{name} decrements {q} while {en} is high. On reaching zero it reloads the value {rl} and produces a one-cycle "
               f"pulse on {z}, so the pulse period is {rl}+1 enabled cycles. Reset is {c.rdesc()}.")
        blocks = ["Clears counter and pulse on reset.", "Decrements while enabled.", f"Reloads from {rl} at zero and pulses {z}."]
    else:
        lim = c.p(c.pick("limit", "max_count"))
        hit = c.p(c.pick("hit", "reached"), "output")
        ports += [Port("input", w, lim), Port("output", w, q, True), Port("output", 1, hit)]
        body += [f"assign {hit} = ({q} >= {lim});"]
        body += c.seq([f"{q} <= {w}'d0;"], [f"if ({en} && !{hit}) {q} <= {q} + 1'b1;"])
        hl = f"An up counter that stops at the programmable limit {lim} and raises {hit}."
        det = f"{name} increments {q} while {en} is high until it reaches {lim}; it then holds and {hit} stays high until reset ({c.rdesc()})."
        blocks = [f"Compares the count with {lim}.", "Clears on reset.", "Increments only below the limit."]
    return Mod(name, ports, body, hl, det, blocks, params)


@family("counters", 5)
def fam_modn(c: Ctx, i: int) -> Mod:
    n = [10, 6, 12, 60, 100][i]
    style = ["tc", "param", "cascade", "carry", "ones"][i]
    w = clog2(n)
    en = c.p(c.pick("en", "tick", "inc"))
    q = c.p(c.pick("count", "q", "value"), "output")
    tc = c.p(c.pick("tc", "carry_out", "wrap"), "output")
    name = f"{c.pick('mod', 'modulo', 'modn')}{n}_{style}"
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, en)]
    body: list[str] = []
    params: list[tuple[str, str]] = []
    if style == "param":
        params = [("MOD", str(n)), ("W", str(w))]
        ports += [Port("output", w, q, True, wexpr="[W-1:0]"), Port("output", 1, tc)]
        body += [f"assign {tc} = {en} && ({q} == MOD - 1);"]
        body += c.seq([f"{q} <= {{W{{1'b0}}}};"], [f"if ({tc}) {q} <= {{W{{1'b0}}}};", f"else if ({en}) {q} <= {q} + 1'b1;"])
        hl = f"A parameterized modulo-MOD counter (default {n}) with terminal count {tc}."
    elif style == "cascade":
        hi = c.p(c.pick("tens", "hi_digit", "upper"), "output")
        ports += [Port("output", 4, q, True), Port("output", 4, hi, True), Port("output", 1, tc)]
        body += [f"assign {tc} = {en} && ({q} == 4'd9) && ({hi} == 4'd{n // 10 - 1 if n >= 20 else 0});"]
        body += c.seq([f"{q} <= 4'd0;", f"{hi} <= 4'd0;"],
                      [f"if ({en}) begin", f"  if ({q} == 4'd9) begin", f"    {q} <= 4'd0;", f"    {hi} <= ({tc}) ? 4'd0 : {hi} + 1'b1;",
                       f"  end else {q} <= {q} + 1'b1;", "end"])
        hl = f"A two-digit decimal modulo-{n if n >= 20 else 10} counter built from cascaded units and tens digits."
    elif style == "ones":
        ports += [Port("output", w, q, True), Port("output", 1, tc, True)]
        body += c.seq([f"{q} <= {w}'d0;", f"{tc} <= 1'b0;"],
                      [f"{tc} <= {en} && ({q} == {w}'d{n-1});", f"if ({en}) {q} <= ({q} == {w}'d{n-1}) ? {w}'d0 : {q} + 1'b1;"])
        hl = f"A modulo-{n} counter whose wrap pulse {tc} is registered, appearing one cycle after the wrap."
    elif style == "carry":
        ci = c.p(c.pick("carry_in", "cin"))
        ports = [c.clk_port(), c.rst_port(), Port("input", 1, en), Port("input", 1, ci), Port("output", w, q, True), Port("output", 1, tc)]
        body += [f"{c.wire()} step = {en} & {ci};", f"assign {tc} = step && ({q} == {w}'d{n-1});"]
        body += c.seq([f"{q} <= {w}'d0;"], [f"if (step) {q} <= {tc} ? {w}'d0 : {q} + 1'b1;"])
        hl = f"A chainable modulo-{n} counter stage that advances only when both {en} and the carry input {ci} are high."
    if style == "tc":
        ports += [Port("output", w, q, True), Port("output", 1, tc)]
        body += c.seq([f"{q} <= {w}'d0;"], [f"if ({en}) begin", f"  if ({q} == {w}'d{n-1}) {q} <= {w}'d0;",
                                            f"  else {q} <= {q} + 1'b1;", "end"])
        body.append(f"assign {tc} = ({q} == {w}'d{n-1});")
        hl = f"A modulo-{n} counter that counts 0 to {n-1} and flags the last state on {tc}."
    det = (f"{name} counts enabled clock cycles modulo {n if style != 'cascade' else 'the decade range'}, returning to zero after the last state. "
           f"{tc} marks the wrap so further counters can be cascaded. The count is cleared by {c.rdesc()}. The state needs "
           f"{w if style != 'cascade' else 8} flip-flops.")
    blocks = ["Defines the terminal condition.", "Clears the state on reset.", "Advances or wraps the count when enabled."]
    return Mod(name, ports, body, hl, det, blocks, params)


@family("counters", 4)
def fam_ring(c: Ctx, i: int) -> Mod:
    n = [4, 8, 6, 5][i]
    style = ["rotate", "selfcorrect", "concat", "dir"][i]
    q = c.p(c.pick("q", "ring", "phase", "slot"), "output")
    en = c.p(c.pick("en", "adv", "step"))
    name = f"{c.pick('ring', 'ring_cnt', 'onehot_ring')}{n}_{style}"
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, en)]
    body: list[str] = []
    init = f"{n}'d1"
    if style == "rotate":
        ports.append(Port("output", n, q, True))
        body += c.seq([f"{q} <= {init};"], [f"if ({en}) {q} <= {{{q}[{n-2}:0], {q}[{n-1}]}};"])
        how = "rotating the register left by one"
    elif style == "selfcorrect":
        ports.append(Port("output", n, q, True))
        body += [f"{c.wire()} bad = ({q} == {n}'d0) | (({q} & ({q} - 1'b1)) != {n}'d0);"]
        body += c.seq([f"{q} <= {init};"], [f"if (bad) {q} <= {init};", f"else if ({en}) {q} <= {{{q}[{n-2}:0], {q}[{n-1}]}};"])
        how = "rotating left, and it returns to the initial state whenever the register is not one-hot"
    elif style == "concat":
        ports.append(Port("output", n, q))
        body += [f"{c.reg()} [{n-1}:0] st;"]
        body += c.seq([f"st <= {init};"], [f"if ({en}) st <= {{st[0], st[{n-1}:1]}};"])
        body.append(f"assign {q} = st;")
        how = "rotating an internal register right by one"
    else:
        dr = c.p(c.pick("dir", "cw"))
        ports += [Port("input", 1, dr), Port("output", n, q, True)]
        body += c.seq([f"{q} <= {init};"], [f"if ({en}) {q} <= {dr} ? {{{q}[{n-2}:0], {q}[{n-1}]}} : {{{q}[0], {q}[{n-1}:1]}};"])
        how = f"rotating left when {dr} is high and right otherwise"
    hl = f"A {n}-bit one-hot ring counter that moves its single set bit on every enabled clock."
    det = (f"{name} starts from 00..01 after {c.rdesc()} and advances by {how}. The state {q} can directly drive {n} "
           f"sequential enables without a decoder.")
    blocks = ["Initialises the ring with a single one.", "Rotates the ring when enabled."]
    if style == "selfcorrect":
        blocks.insert(0, "Detects illegal states that are not one-hot.")
    return Mod(name, ports, body, hl, det, blocks)


@family("counters", 4)
def fam_johnson(c: Ctx, i: int) -> Mod:
    n = [4, 5, 8, 3][i]
    style = ["basic", "decoded", "updown", "basic_en"][i]
    q = c.p(c.pick("q", "jc", "state"), "output")
    name = f"{c.pick('johnson', 'twisted_ring', 'moebius')}{n}_{style}"
    ports = [c.clk_port(), c.rst_port()]
    body: list[str] = []
    upd = f"{q} <= {{{q}[{n-2}:0], ~{q}[{n-1}]}};"
    if style == "basic":
        ports.append(Port("output", n, q, True))
        body += c.seq([f"{q} <= {n}'d0;"], [upd])
    elif style == "basic_en":
        en = c.p(c.pick("en", "run"))
        ports += [Port("input", 1, en), Port("output", n, q, True)]
        body += c.seq([f"{q} <= {n}'d0;"], [f"if ({en}) {upd}"])
    elif style == "decoded":
        ph = c.p(c.pick("phase", "sel"), "output")
        ports += [Port("output", n, q, True), Port("output", 2 * n, ph)]
        body += c.seq([f"{q} <= {n}'d0;"], [upd])
        body += ["genvar gp;", "generate", f"  for (gp = 0; gp < {n}; gp = gp + 1) begin : g_dec",
                 "    if (gp == 0) begin : g_first", f"      assign {ph}[0] = ~{q}[{n-1}] & ~{q}[0];",
                 f"      assign {ph}[{n}] = {q}[{n-1}] & {q}[0];", "    end else begin : g_rest",
                 f"      assign {ph}[gp] = {q}[gp-1] & ~{q}[gp];", f"      assign {ph}[gp+{n}] = ~{q}[gp-1] & {q}[gp];", "    end",
                 "  end", "endgenerate"]
    else:
        up = c.p(c.pick("up", "fwd"))
        ports += [Port("input", 1, up), Port("output", n, q, True)]
        body += c.seq([f"{q} <= {n}'d0;"], [f"if ({up}) {upd}", f"else {q} <= {{~{q}[0], {q}[{n-1}:1]}};"])
    hl = f"A {n}-bit Johnson (twisted ring) counter with {2*n} states."
    det = (f"{name} shifts the inverted MSB back into the LSB, cycling through {2*n} states in which only one bit changes per step. "
           f"It is cleared by {c.rdesc()}." + (f" Each of the {2*n} states is decoded with a two-input AND gate on {ph}." if style == "decoded" else "")
           + (f" When {up} is low it runs backwards." if style == "updown" else ""))
    blocks = ["Clears the register on reset.", "Shifts in the inverted end bit each cycle."]
    if style == "decoded":
        blocks.append(f"Decodes the {2*n} states into the one-hot output {ph}.")
    return Mod(name, ports, body, hl, det, blocks)


@family("counters", 4)
def fam_bcdcnt(c: Ctx, i: int) -> Mod:
    nd = [2, 3, 4, 2][i]
    style = ["array", "loop", "loop", "clock"][i]
    en = c.p(c.pick("en", "tick", "pulse"))
    q = c.p(c.pick("bcd", "digits", "display"), "output")
    name = f"{c.pick('bcd_counter', 'dec_counter', 'bcd_cnt')}_{nd}d_{style}{i}"
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, en), Port("output", 4 * nd, q, True)]
    body: list[str] = []
    if style == "array":
        body += c.seq([f"{q} <= {4*nd}'d0;"], [f"if ({en}) begin", f"  if ({q}[3:0] == 4'd9) begin", f"    {q}[3:0] <= 4'd0;",
                                             f"    {q}[7:4] <= ({q}[7:4] == 4'd9) ? 4'd0 : {q}[7:4] + 1'b1;",
                                             f"  end else {q}[3:0] <= {q}[3:0] + 1'b1;", "end"])
        hl = f"A two-digit BCD counter that counts 00 to 99 on {en}."
    elif style == "loop":
        body += ["integer k;", f"{c.reg()} carry;"]
        body += c.seq([f"{q} <= {4*nd}'d0;"], [f"carry = {en};", f"for (k = 0; k < {nd}; k = k + 1) begin",
                                             "  if (carry) begin", f"    if ({q}[4*k +: 4] == 4'd9) {q}[4*k +: 4] <= 4'd0;",
                                             "    else begin", f"      {q}[4*k +: 4] <= {q}[4*k +: 4] + 1'b1;", "      carry = 1'b0;",
                                             "    end", "  end", "end"])
        hl = f"A {nd}-digit BCD counter that ripples a decimal carry through the digits with a for loop."
    else:
        body += c.seq([f"{q} <= 8'h00;"], [f"if ({en}) begin", f"  if ({q}[3:0] != 4'd9) {q}[3:0] <= {q}[3:0] + 1'b1;",
                                         "  else begin", f"    {q}[3:0] <= 4'd0;", f"    {q}[7:4] <= ({q}[7:4] == 4'd5) ? 4'd0 : {q}[7:4] + 1'b1;",
                                         "  end", "end"])
        hl = "A seconds/minutes style BCD counter that counts 00 to 59."
    det = (f"{name} stores {nd} decimal digits in packed BCD in {q}, least significant digit at bits 3:0. On each enabled clock the "
           f"units digit increments; a digit at 9 returns to 0 and passes a carry to the next digit"
           + (", and the tens digit wraps after 5" if style == "clock" else "") + f". Reset is {c.rdesc()}.")
    blocks = ["Clears all digits on reset.", "Increments the units digit when enabled.", "Propagates decimal carries to higher digits."]
    return Mod(name, ports, body, hl, det, blocks)


@family("counters", 5)
def fam_clkdiv(c: Ctx, i: int) -> Mod:
    style = ["even", "odd", "tick", "prog", "duty"][i]
    body: list[str] = []
    o = c.p(c.pick("clk_out", "div_clk", "slow_clk", "tick"), "output")
    ports = [c.clk_port(), c.rst_port()]
    if style == "even":
        n = c.pick(4, 8, 10, 20)
        w = clog2(n // 2)
        ports.append(Port("output", 1, o, True))
        body += [f"{c.reg()} [{w-1}:0] cnt;"]
        body += c.seq([f"cnt <= {w}'d0;", f"{o} <= 1'b0;"], [f"if (cnt == {w}'d{n//2 - 1}) begin", f"  cnt <= {w}'d0;", f"  {o} <= ~{o};",
                                                           "end else cnt <= cnt + 1'b1;"])
        name = f"clkdiv_even{n}"
        hl = f"Divides the input clock by {n} with a 50% duty cycle output {o}."
        det = f"{name} counts {n//2} input cycles and toggles {o} each time, producing a square wave at 1/{n} of the {c.clk} frequency. Reset is {c.rdesc()}."
        blocks = ["Counts half periods.", f"Toggles {o} at the end of each half period."]
    elif style == "odd":
        n = c.pick(3, 5, 7)
        w = clog2(n)
        ports.append(Port("output", 1, o))
        body += [f"{c.reg()} [{w-1}:0] cnt;", f"{c.reg()} p_q, n_q;"]
        body += c.seq([f"cnt <= {w}'d0;", "p_q <= 1'b0;"], [f"cnt <= (cnt == {w}'d{n-1}) ? {w}'d0 : cnt + 1'b1;",
                                                            f"p_q <= (cnt < {w}'d{n//2});"])
        body += [f"always @(negedge {c.clk}) n_q <= p_q;", f"assign {o} = p_q | n_q;"]
        name = f"clkdiv_odd{n}"
        hl = f"Divides the clock by the odd factor {n} with a 50% duty cycle using both clock edges."
        det = (f"{name} runs a modulo-{n} counter and derives a waveform that is high for {n//2} cycles. A copy delayed by half a "
               f"cycle on the falling edge is ORed with it, stretching the high phase by half a cycle to reach 50% duty cycle.")
        blocks = [f"Counts modulo {n}.", "Generates the rising-edge phase signal.", "Delays it on the falling edge.", f"ORs both into {o}."]
    elif style == "tick":
        f_in, f_out = c.pick((50_000_000, 1000), (100_000_000, 9600), (12_000_000, 1000), (27_000_000, 100))
        n = f_in // f_out
        w = clog2(n)
        ports.append(Port("output", 1, o, True))
        body += [f"localparam DIV = {n};", f"{c.reg()} [{w-1}:0] cnt;"]
        body += c.seq(["cnt <= 0;", f"{o} <= 1'b0;"], ["if (cnt == DIV - 1) begin", "  cnt <= 0;", f"  {o} <= 1'b1;", "end else begin",
                                                      "  cnt <= cnt + 1'b1;", f"  {o} <= 1'b0;", "end"])
        name = f"tick_gen_{f_out}hz"
        hl = f"Generates a one-cycle enable pulse {o} at {f_out} Hz from a {f_in // 1_000_000} MHz clock."
        det = (f"{name} counts to DIV = {n} ({f_in} / {f_out}) and asserts {o} for exactly one {c.clk} cycle per period. The pulse is "
               f"meant as a clock enable for slower logic rather than a derived clock. Reset is {c.rdesc()}.")
        blocks = ["Defines the division constant DIV.", "Counts clock cycles up to DIV-1.", f"Pulses {o} when the counter wraps."]
    elif style == "prog":
        w = c.pick(8, 16)
        dv = c.p(c.pick("divisor", "ratio", "half_period"))
        ports += [Port("input", w, dv), Port("output", 1, o, True)]
        body += [f"{c.reg()} [{w-1}:0] cnt;"]
        body += c.seq(["cnt <= 0;", f"{o} <= 1'b0;"], [f"if ({dv} == 0) {o} <= 1'b0;", f"else if (cnt >= {dv} - 1'b1) begin", "  cnt <= 0;",
                                                      f"  {o} <= ~{o};", "end else cnt <= cnt + 1'b1;"])
        name = f"clkdiv_prog{w}"
        hl = f"A programmable clock divider whose output toggles every {dv} input cycles."
        det = (f"{name} toggles {o} each time its counter reaches {dv}-1, giving an output period of 2*{dv} input cycles. A "
               f"divisor of zero stops the output low. Changing {dv} takes effect at the next wrap. Reset is {c.rdesc()}.")
        blocks = ["Clears state on reset.", f"Holds the output low when {dv} is zero.", "Counts and toggles the output at the programmed period."]
    else:
        n = c.pick(10, 16, 8)
        hi_ = c.pick(3, 2, 5)
        w = clog2(n)
        ports.append(Port("output", 1, o))
        body += [f"{c.reg()} [{w-1}:0] cnt;"]
        body += c.seq(["cnt <= 0;"], [f"cnt <= (cnt == {w}'d{n-1}) ? {w}'d0 : cnt + 1'b1;"])
        body.append(f"assign {o} = (cnt < {w}'d{hi_});")
        name = f"clkdiv_duty{n}_{hi_}"
        hl = f"Divides the clock by {n} with an output that is high for {hi_} of every {n} cycles."
        det = f"{name} uses a modulo-{n} counter and compares it with {hi_} to create a divided waveform {o} with a duty cycle of {hi_}/{n}. Reset is {c.rdesc()}."
        blocks = [f"Counts modulo {n}.", f"Drives {o} high while the count is below {hi_}."]
    return Mod(name, ports, body, hl, det, blocks)


# =============================================================================================
# Shift registers
# =============================================================================================
@family("shift_registers", 4)
def fam_sipo(c: Ctx, i: int) -> Mod:
    n = [8, 16, 10, 32][i]
    style = ["lsb_first", "msb_first", "framed", "byte_ready"][i]
    si = c.p(c.pick("sin", "serial_in", "sdi", "din"))
    en = c.p(c.pick("shift", "en", "sample"))
    q = c.p(c.pick("pout", "par_out", "q", "word"), "output")
    name = f"{c.pick('sipo', 'shift_in', 'deser')}_{n}_{style}"
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, si), Port("input", 1, en)]
    body: list[str] = []
    if style == "lsb_first":
        ports.append(Port("output", n, q, True))
        body += c.seq([f"{q} <= {n}'d0;"], [f"if ({en}) {q} <= {{{si}, {q}[{n-1}:1]}};"])
        det_x = "Bits enter at the MSB and move towards the LSB, so after n shifts the first received bit is at bit 0 (LSB-first order)."
    elif style == "msb_first":
        ports.append(Port("output", n, q, True))
        body += c.seq([f"{q} <= {n}'d0;"], [f"if ({en}) {q} <= {{{q}[{n-2}:0], {si}}};"])
        det_x = "Bits enter at the LSB and move up, so the first received bit ends at the MSB (MSB-first order)."
    elif style == "framed":
        full = c.p(c.pick("full", "frame_done"), "output")
        cw = clog2(n + 1)
        ports += [Port("output", n, q, True), Port("output", 1, full)]
        body += [f"{c.reg()} [{cw-1}:0] cnt;", f"assign {full} = (cnt == {cw}'d{n});"]
        body += c.seq([f"{q} <= {n}'d0;", f"cnt <= {cw}'d0;"], [f"if ({en}) begin", f"  {q} <= {{{q}[{n-2}:0], {si}}};",
                                                                f"  cnt <= {full} ? {cw}'d1 : cnt + 1'b1;", "end"])
        det_x = f"A bit counter tracks how many bits were received and {full} is high once {n} bits are in the register; the next shift starts a new frame."
    else:
        rdy = c.p(c.pick("ready", "byte_valid", "strobe"), "output")
        ports += [Port("output", n, q, True), Port("output", 1, rdy, True)]
        body += [f"{c.reg()} [{n-1}:0] sh;", f"{c.reg()} [{clog2(n)-1}:0] idx;"]
        body += c.seq(["sh <= 0;", "idx <= 0;", f"{q} <= 0;", f"{rdy} <= 1'b0;"],
                      [f"{rdy} <= 1'b0;", f"if ({en}) begin", f"  sh <= {{sh[{n-2}:0], {si}}};", "  idx <= idx + 1'b1;",
                       f"  if (idx == {n-1}) begin", f"    {q} <= {{sh[{n-2}:0], {si}}};", f"    {rdy} <= 1'b1;", "  end", "end"])
        det_x = f"A separate output register is updated only when a full word has arrived, and {rdy} pulses for one cycle at that moment so the consumer never sees a partial word."
    hl = f"A {n}-bit serial-in parallel-out shift register that samples {si} when {en} is high."
    det = f"{name} shifts the serial input {si} into an {n}-bit register on each rising edge of {c.clk} with {en} asserted. {det_x} Reset is {c.rdesc()}."
    blocks = ["Clears the register on reset.", f"Shifts {si} in when {en} is high."]
    if style in ("framed", "byte_ready"):
        blocks.append("Counts received bits and signals a complete word.")
    return Mod(name, ports, body, hl, det, blocks)


@family("shift_registers", 4)
def fam_piso(c: Ctx, i: int) -> Mod:
    n = [8, 16, 12, 8][i]
    style = ["load_shift", "busy", "lsb", "circular"][i]
    ld, d = c.p(c.pick("load", "ld", "start")), c.p(c.pick("pin", "par_in", "data", "word"))
    so = c.p(c.pick("sout", "serial_out", "sdo", "txd"), "output")
    name = f"{c.pick('piso', 'shift_out', 'ser')}_{n}_{style}"
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, ld), Port("input", n, d)]
    body: list[str] = [f"{c.reg()} [{n-1}:0] sh;"]
    if style == "load_shift":
        en = c.p(c.pick("shift_en", "en"))
        ports += [Port("input", 1, en), Port("output", 1, so)]
        body += c.seq(["sh <= 0;"], [f"if ({ld}) sh <= {d};", f"else if ({en}) sh <= {{sh[{n-2}:0], 1'b0}};"])
        body.append(f"assign {so} = sh[{n-1}];")
        det_x = f"When {ld} is high the word is captured; otherwise, while {en} is high, the register shifts left and the MSB is presented on {so}."
    elif style == "busy":
        bz = c.p(c.pick("busy", "active"), "output")
        cw = clog2(n + 1)
        ports += [Port("output", 1, so), Port("output", 1, bz)]
        body += [f"{c.reg()} [{cw-1}:0] left;", f"assign {bz} = (left != 0);", f"assign {so} = sh[{n-1}];"]
        body += c.seq(["sh <= 0;", "left <= 0;"], [f"if ({ld} && !{bz}) begin", f"  sh <= {d};", f"  left <= {cw}'d{n};",
                                                  f"end else if ({bz}) begin", "  sh <= sh << 1;", "  left <= left - 1'b1;", "end"])
        det_x = f"A load is accepted only while idle; the module then shifts out all {n} bits MSB first, one per clock, with {bz} high until the last bit has been sent."
    elif style == "lsb":
        ports.append(Port("output", 1, so))
        body += c.seq(["sh <= 0;"], [f"if ({ld}) sh <= {d};", "else sh <= sh >> 1;"])
        body.append(f"assign {so} = sh[0];")
        det_x = f"The word is shifted right every clock when not loading, so bits leave LSB first on {so} and zeros fill from the top."
    else:
        ports.append(Port("output", 1, so))
        body += c.seq(["sh <= 0;"], [f"if ({ld}) sh <= {d};", f"else sh <= {{sh[{n-2}:0], sh[{n-1}]}};"])
        body.append(f"assign {so} = sh[{n-1}];")
        det_x = f"Instead of shifting in zeros the register rotates, so the loaded pattern repeats on {so} every {n} clocks."
    hl = f"A {n}-bit parallel-in serial-out shift register that loads {d} on {ld} and emits it bit by bit on {so}."
    det = f"{name} holds an internal {n}-bit shift register. {det_x} Reset is {c.rdesc()}."
    blocks = ["Declares the shift register.", f"Loads {d} when {ld} is high.", f"Shifts and drives the serial output {so}."]
    return Mod(name, ports, body, hl, det, blocks)


LFSR_TAPS = {4: [4, 3], 5: [5, 3], 7: [7, 6], 8: [8, 6, 5, 4], 10: [10, 7], 16: [16, 15, 13, 4], 15: [15, 14]}


@family("shift_registers", 5)
def fam_lfsr(c: Ctx, i: int) -> Mod:
    n = [8, 16, 7, 10, 5][i]
    style = ["fib", "galois", "fib_seed", "fib_xnor", "galois_en"][i]
    taps = LFSR_TAPS[n]
    q = c.p(c.pick("lfsr", "rnd", "prbs", "q"), "output")
    name = f"{c.pick('lfsr', 'prbs', 'rand_gen')}{n}_{style}"
    ports = [c.clk_port(), c.rst_port()]
    body: list[str] = []
    seed = f"{n}'d1"
    poly = " + ".join(f"x^{t}" for t in taps) + " + 1"
    if style in ("fib", "fib_seed", "fib_xnor"):
        op = "~^" if style == "fib_xnor" else "^"
        fb = f" {op} ".join(f"{q}[{t-1}]" for t in taps)
        if style == "fib_xnor":
            fb = "~(" + " ^ ".join(f"{q}[{t-1}]" for t in taps) + ")"
            seed = f"{n}'d0"
        if style == "fib_seed":
            ld, sd = c.p(c.pick("load", "seed_en")), c.p(c.pick("seed", "init"))
            ports += [Port("input", 1, ld), Port("input", n, sd)]
        ports.append(Port("output", n, q, True))
        body += [f"{c.wire()} fb = {fb};"]
        upd = [f"{q} <= {{{q}[{n-2}:0], fb}};"]
        if style == "fib_seed":
            upd = [f"if ({ld}) {q} <= ({sd} == 0) ? {n}'d1 : {sd};", f"else {q} <= {{{q}[{n-2}:0], fb}};"]
        body += c.seq([f"{q} <= {seed};"], upd)
    else:
        ports.append(Port("output", n, q, True))
        mask = sum(1 << (t - 1) for t in taps)
        if style == "galois_en":
            en = c.p(c.pick("en", "step"))
            ports.insert(2, Port("input", 1, en))
        body += [f"localparam [{n-1}:0] TAPS = {n}'h{mask:X};"]
        upd = f"{q} <= {q}[0] ? (({q} >> 1) ^ TAPS) : ({q} >> 1);"
        if style == "galois_en":
            upd = f"if ({en}) " + upd
        body += c.seq([f"{q} <= {seed};"], [upd])
        poly = f"tap mask {n}'h{mask:X}"
    hl = f"A {n}-bit {'Galois' if 'galois' in style else 'Fibonacci'} LFSR pseudo-random sequence generator."
    det = (f"{name} implements a maximal-length linear feedback shift register with polynomial {poly}. "
           + ("The feedback is computed with XNOR, so the all-zero state is legal and the all-ones state is the lock-up state. " if style == "fib_xnor" else
              "It must not enter the all-zero state, so the reset value is 1. ")
           + (f"A new seed can be loaded with {ports[2].name}; a zero seed is replaced by 1. " if style == "fib_seed" else "")
           + f"The sequence repeats every {(1 << n) - 1} clocks. Reset is {c.rdesc()}.")
    blocks = ["Computes the feedback from the tap bits." if "fib" in style else "Defines the Galois tap mask.",
              "Initialises the register to a non-lockup state on reset.", "Shifts the register and applies the feedback each clock."]
    return Mod(name, ports, body, hl, det, blocks)


@family("shift_registers", 4)
def fam_delay(c: Ctx, i: int) -> Mod:
    style = ["array", "valid_pipe", "param_depth", "bit_sync"][i]
    w = c.pick(8, 16, 4, 12)
    d = c.pick(3, 4, 5, 8)
    x, y = c.p(c.pick("din", "x", "data_in")), c.p(c.pick("dout", "y", "data_out"), "output")
    name = f"{c.pick('delay', 'pipe', 'delay_line')}_{style}_{w}x{d}"
    ports = [c.clk_port(), c.rst_port()]
    body: list[str] = []
    params: list[tuple[str, str]] = []
    if style == "array":
        ports += [Port("input", w, x), Port("output", w, y)]
        body += [f"{c.reg()} [{w-1}:0] taps [0:{d-1}];", "integer k;"]
        body += c.seq([f"for (k = 0; k < {d}; k = k + 1) taps[k] <= {w}'d0;"],
                      [f"taps[0] <= {x};", f"for (k = 1; k < {d}; k = k + 1) taps[k] <= taps[k-1];"])
        body.append(f"assign {y} = taps[{d-1}];")
        hl = f"Delays the {w}-bit bus {x} by {d} clock cycles."
    elif style == "valid_pipe":
        vi, vo = c.p(c.pick("vin", "in_valid")), c.p(c.pick("vout", "out_valid"), "output")
        ports += [Port("input", 1, vi), Port("input", w, x), Port("output", 1, vo), Port("output", w, y)]
        body += [f"{c.reg()} [{d-1}:0] vp;", f"{c.reg()} [{w*d-1}:0] dp;"]
        body += c.seq([f"vp <= {d}'d0;", f"dp <= {w*d}'d0;"], [f"vp <= {{vp[{d-2}:0], {vi}}};", f"dp <= {{dp[{w*(d-1)-1}:0], {x}}};"])
        body += [f"assign {vo} = vp[{d-1}];", f"assign {y} = dp[{w*d-1}:{w*(d-1)}];"]
        hl = f"A {d}-stage pipeline that delays the data {x} together with its valid flag {vi}."
    elif style == "param_depth":
        params = [("W", str(w)), ("DEPTH", str(d))]
        ports += [Port("input", w, x, wexpr="[W-1:0]"), Port("output", w, y, wexpr="[W-1:0]")]
        body += [f"{c.reg()} [W*DEPTH-1:0] line;"]
        body += c.seq(["line <= 0;"], [f"line <= {{line[W*(DEPTH-1)-1:0], {x}}};"])
        body.append(f"assign {y} = line[W*DEPTH-1 -: W];")
        hl = f"A parameterized delay line of DEPTH (default {d}) stages for a W-bit (default {w}) bus."
    else:
        ports += [Port("input", 1, x), Port("output", 1, y)]
        body += [f"{c.reg()} [{d-1}:0] sync_q;"]
        body += c.seq([f"sync_q <= {d}'d0;"], [f"sync_q <= {{sync_q[{d-2}:0], {x}}};"])
        body.append(f"assign {y} = sync_q[{d-1}];")
        hl = f"A {d}-flop synchronizer chain for the asynchronous single-bit input {x}."
    det = (f"{name} passes its input through {d if style != 'param_depth' else 'DEPTH'} register stages clocked by {c.clk}, so the output "
           f"{y} equals the input from {d if style != 'param_depth' else 'DEPTH'} cycles earlier"
           + (" and the valid flag travels in lock-step with the data" if style == "valid_pipe" else "")
           + (", which lowers the probability of metastability reaching downstream logic" if style == "bit_sync" else "")
           + f". All stages are cleared by {c.rdesc()}.")
    blocks = ["Declares the delay storage.", "Clears the stages on reset.", "Shifts the data one stage per clock.", f"Drives {y} from the last stage."]
    return Mod(name, ports, body, hl, det, blocks, params)


@family("shift_registers", 3)
def fam_ushift(c: Ctx, i: int) -> Mod:
    n = [4, 8, 16][i]
    mode = c.p(c.pick("mode", "ctrl", "op"))
    d = c.p(c.pick("d", "pin", "load_val"))
    sl, sr = c.p(c.pick("sl_in", "left_in", "dsl")), c.p(c.pick("sr_in", "right_in", "dsr"))
    q = c.p(c.pick("q", "reg_q", "state"), "output")
    name = f"{c.pick('univ_shift', 'ushift_reg', 'shreg_univ')}_{n}"
    ports = [c.clk_port(), c.rst_port(), Port("input", 2, mode), Port("input", n, d), Port("input", 1, sl), Port("input", 1, sr),
             Port("output", n, q, True)]
    body = c.seq([f"{q} <= {n}'d0;"], [f"case ({mode})", f"  2'b00: {q} <= {q};", f"  2'b01: {q} <= {{{sr}, {q}[{n-1}:1]}};",
                                     f"  2'b10: {q} <= {{{q}[{n-2}:0], {sl}}};", f"  2'b11: {q} <= {d};", "endcase"])
    hl = f"A {n}-bit universal shift register with hold, shift right, shift left and parallel load modes."
    det = (f"{name} uses the 2-bit {mode}: 00 holds, 01 shifts right inserting {sr} at the MSB, 10 shifts left inserting {sl} at the "
           f"LSB, and 11 loads {d} in parallel. Reset is {c.rdesc()}.")
    blocks = ["Clears the register on reset.", f"Decodes {mode} in a case statement.", "Performs hold, shift or load."]
    return Mod(name, ports, body, hl, det, blocks)


# =============================================================================================
# Finite state machines
# =============================================================================================
def _kmp_next(pat: str, state: int, bit: str, overlap: bool) -> int:
    """Next matched-prefix length after reading `bit` in `state` (0..len(pat)-1)."""
    s = pat[:state] + bit
    if s == pat:
        if not overlap:
            return 0
        for k in range(len(pat) - 1, 0, -1):
            if pat.endswith(pat[:k]) and pat[:k] == s[-k:]:
                return k
        return 0
    for k in range(len(s), 0, -1):
        if pat[:k] == s[-k:]:
            return k
    return 0


@family("fsm", 6)
def fam_seqdet(c: Ctx, i: int) -> Mod:
    pat = ["1011", "110", "10010", "0110", "111", "1101"][i]
    kind = ["mealy", "moore", "mealy", "moore", "moore", "mealy"][i]
    overlap = [True, False, True, True, False, False][i]
    enc = c.pick("binary", "onehot", "binary")
    x = c.p(c.pick("x", "din", "bit_in", "s_in"))
    z = c.p(c.pick("z", "match", "detected", "hit"), "output")
    name = f"{c.pick('seq_det', 'seqdet', 'pattern_det')}_{pat}_{kind}{'_ovl' if overlap else ''}"
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, x)]
    L = len(pat)
    nst = L + (1 if kind == "moore" else 0)
    sw = clog2(nst)
    names = [f"S{k}" for k in range(L)] + (["FOUND"] if kind == "moore" else [])
    body: list[str] = []
    if enc == "onehot" and c.sv is False:
        body += [f"localparam {n} = {nst}'b{(1 << k):0{nst}b};" for k, n in enumerate(names)]
        sw = nst
    else:
        body += [f"localparam {n} = {sw}'d{k};" for k, n in enumerate(names)]
    body += [f"{c.reg()} [{sw-1}:0] state, next;"]
    body += c.seq([f"state <= {names[0]};"], ["state <= next;"])
    body += [f"{c.comb()} begin", "  next = state;", "  case (state)"]
    for k in range(L):
        n1 = _kmp_next(pat, k, "1", overlap)
        n0 = _kmp_next(pat, k, "0", overlap)
        t1 = names[n1]
        t0 = names[n0]
        if kind == "moore":
            if pat[:k] + "1" == pat:
                t1 = "FOUND"
            if pat[:k] + "0" == pat:
                t0 = "FOUND"
        body.append(f"    {names[k]}: next = {x} ? {t1} : {t0};")
    if kind == "moore":
        # from FOUND behave like the state after a full match
        m = _kmp_next(pat, L - 1, pat[-1], overlap)
        n1 = _kmp_next(pat, m, "1", overlap) if m < L else 0
        n0 = _kmp_next(pat, m, "0", overlap) if m < L else 0
        t1 = "FOUND" if pat[:m] + "1" == pat else names[n1]
        t0 = "FOUND" if pat[:m] + "0" == pat else names[n0]
        body.append(f"    FOUND: next = {x} ? {t1} : {t0};")
    body += [f"    default: next = {names[0]};", "  endcase", "end"]
    if kind == "mealy":
        last = names[L - 1]
        body.append(f"assign {z} = (state == {last}) && ({x} == 1'b{pat[-1]});")
    else:
        body.append(f"assign {z} = (state == FOUND);")
    ports.append(Port("output", 1, z))
    hl = (f"A {kind.capitalize()} finite state machine that detects the serial bit pattern {pat} on {x} "
          f"{'with' if overlap else 'without'} overlapping matches.")
    det = (f"{name} tracks how much of the pattern {pat} has been seen so far, one bit of {x} per rising edge of {c.clk}. "
           + (f"Being a Mealy machine, {z} is asserted combinationally in the cycle where the final bit arrives. " if kind == "mealy" else
              f"Being a Moore machine, it enters a dedicated FOUND state after the final bit and {z} is high while in that state. ")
           + ("After a match the machine keeps the longest suffix that is also a prefix, so overlapping occurrences are found. " if overlap else
              "After a match it restarts from the idle state, so overlapping occurrences are not reported. ")
           + f"States are {enc if enc == 'binary' or c.sv else 'one-hot'} encoded; reset is {c.rdesc()}.")
    blocks = [f"Defines the {nst} state encodings.", "Holds the current state register with reset to the idle state.",
              f"Computes the next state from the current state and {x}.", f"Drives the detection output {z}."]
    return Mod(name, ports, body, hl, det, blocks)


@family("fsm", 4)
def fam_traffic(c: Ctx, i: int) -> Mod:
    style = ["timer", "ped", "sensor", "timer_onehot"][i]
    tg, ty = c.pick((20, 4), (30, 5), (12, 3), (25, 3))
    body: list[str] = []
    ns, ew = c.p(c.pick("ns_light", "main_lt", "ns"), "output"), c.p(c.pick("ew_light", "side_lt", "ew"), "output")
    name = f"{c.pick('traffic', 'traffic_ctrl', 'tlc')}_{style}"
    ports = [c.clk_port(), c.rst_port()]
    extra_in = None
    if style == "ped":
        extra_in = c.p(c.pick("ped_btn", "walk_req"))
        walk = c.p(c.pick("walk", "ped_go"), "output")
        ports.append(Port("input", 1, extra_in))
    elif style == "sensor":
        extra_in = c.p(c.pick("car_side", "side_sensor"))
        ports.append(Port("input", 1, extra_in))
    ports += [Port("output", 3, ns, True), Port("output", 3, ew, True)]
    if style == "ped":
        ports.append(Port("output", 1, walk))
    cw = clog2(tg + 1)
    if style == "timer_onehot":
        body += ["localparam RED = 3'b100, YEL = 3'b010, GRN = 3'b001;",
                 "localparam NS_G = 4'b0001, NS_Y = 4'b0010, EW_G = 4'b0100, EW_Y = 4'b1000;",
                 f"{c.reg()} [3:0] st;", f"{c.reg()} [{cw-1}:0] tmr;"]
    else:
        body += ["localparam RED = 3'b100, YEL = 3'b010, GRN = 3'b001;",
                 "localparam NS_G = 2'd0, NS_Y = 2'd1, EW_G = 2'd2, EW_Y = 2'd3;",
                 f"{c.reg()} [1:0] st;", f"{c.reg()} [{cw-1}:0] tmr;"]
    if style == "ped":
        body.append(f"{c.reg()} pend;")
    go_ew = {"timer": f"tmr == {cw}'d{tg-1}", "timer_onehot": f"tmr == {cw}'d{tg-1}",
             "ped": f"tmr == {cw}'d{tg-1} || (pend && tmr >= {cw}'d{tg//2})",
             "sensor": f"{extra_in} && tmr >= {cw}'d{tg//2}"}[style]
    rst_lines = ["st <= NS_G;", "tmr <= 0;"] + (["pend <= 1'b0;"] if style == "ped" else [])
    upd = ([f"if ({extra_in}) pend <= 1'b1;"] if style == "ped" else []) + [
        "tmr <= tmr + 1'b1;", "case (st)", f"  NS_G: if ({go_ew}) begin st <= NS_Y; tmr <= 0; end",
        f"  NS_Y: if (tmr == {cw}'d{ty-1}) begin st <= EW_G; tmr <= 0; end",
        f"  EW_G: if (tmr == {cw}'d{tg-1}{' || !' + extra_in if style == 'sensor' else ''}) begin st <= EW_Y; tmr <= 0;{' pend <= 1' + chr(39) + 'b0;' if style == 'ped' else ''} end",
        f"  EW_Y: if (tmr == {cw}'d{ty-1}) begin st <= NS_G; tmr <= 0; end", "endcase"]
    body += c.seq(rst_lines, upd)
    body += [f"{c.comb()} begin", "  case (st)", f"    NS_G: begin {ns} = GRN; {ew} = RED; end", f"    NS_Y: begin {ns} = YEL; {ew} = RED; end",
             f"    EW_G: begin {ns} = RED; {ew} = GRN; end", f"    default: begin {ns} = RED; {ew} = YEL; end", "  endcase", "end"]
    if style == "ped":
        body.append(f"assign {walk} = (st == EW_G);")
    trig = {"timer": f"after {tg} cycles", "timer_onehot": f"after {tg} cycles", "ped": f"after {tg} cycles, or after {tg//2} cycles if the pedestrian button {extra_in} was pressed",
            "sensor": f"only when the side-road sensor {extra_in} reports a car and at least {tg//2} cycles of green have passed"}[style]
    hl = "A traffic light controller for a two-way intersection with green, yellow and red phases" + (f" and a pedestrian request input {extra_in}." if style == "ped" else ".")
    det = (f"{name} cycles through four states: main road green, main road yellow, side road green and side road yellow. The main "
           f"road leaves green {trig}; yellow lasts {ty} cycles; the side road stays green for at most {tg} cycles"
           + (f" and returns as soon as {extra_in} drops" if style == "sensor" else "") + f". Lights are one-hot 3-bit vectors "
           f"(red, yellow, green) on {ns} and {ew}; the phase register is {'one-hot encoded' if style == 'timer_onehot' else 'binary encoded'}. Reset is {c.rdesc()}.")
    blocks = ["Defines light encodings and the four phase states.", "Keeps a phase timer that restarts at every transition.",
              "Advances the phase when its time or condition is met.", f"Decodes the phase into the light outputs {ns} and {ew}."]
    if style == "ped":
        blocks.insert(2, "Latches a pending pedestrian request until served.")
    return Mod(name, ports, body, hl, det, blocks)


@family("fsm", 4)
def fam_vending(c: Ctx, i: int) -> Mod:
    price = [15, 20, 25, 30][i]
    coins = [(5, 10), (5, 10), (5, 10, 25), (10, 20)][i]
    cw = clog2(price + max(coins) + 1)
    names = {5: "nickel", 10: "dime", 25: "quarter", 20: "coin20"}
    ins = [c.p(c.pick(names[v], f"c{v}", f"coin_{v}")) for v in coins]
    vend = c.p(c.pick("vend", "dispense", "release"), "output")
    chg = c.p(c.pick("change", "refund", "chg"), "output")
    name = f"{c.pick('vending', 'vend_fsm', 'vendor')}_{price}c_{len(coins)}coin"
    ports = [c.clk_port(), c.rst_port()] + [Port("input", 1, n) for n in ins] + [Port("output", 1, vend, True), Port("output", cw, chg, True)]
    body = [f"{c.reg()} [{cw-1}:0] credit;", f"{c.reg()} [{cw-1}:0] add;", f"{c.comb()} begin", f"  add = {cw}'d0;"]
    for v, n in zip(coins, ins):
        body.append(f"  if ({n}) add = {cw}'d{v};")
    body += ["end", f"{c.wire()} [{cw-1}:0] total = credit + add;"]
    body += c.seq(["credit <= 0;", f"{vend} <= 1'b0;", f"{chg} <= 0;"],
                  [f"{vend} <= 1'b0;", f"{chg} <= 0;", f"if (total >= {cw}'d{price}) begin", f"  {vend} <= 1'b1;",
                   f"  {chg} <= total - {cw}'d{price};", "  credit <= 0;", "end else begin", "  credit <= total;", "end"])
    cs = ", ".join(f"{n} ({v})" for v, n in zip(coins, ins))
    hl = f"A vending machine controller that sells an item for {price} units, accepting coins {cs}, and returns change."
    det = (f"{name} accumulates inserted credit in a register; at most one coin is expected per cycle, and when several coin inputs "
           f"are high the last listed wins. When the credit plus the new coin reaches {price}, it pulses {vend} for one cycle, outputs "
           f"the excess on {chg} in the same cycle and clears the credit. Reset is {c.rdesc()}.")
    blocks = ["Declares the credit register.", "Decodes the coin inputs into a value.", f"Dispenses and computes change once the price {price} is reached.",
              "Otherwise stores the new credit."]
    return Mod(name, ports, body, hl, det, blocks)


@family("fsm", 4)
def fam_handshake(c: Ctx, i: int) -> Mod:
    style = ["four_phase", "pipe_reg", "skid", "req_ack_src"][i]
    w = c.pick(8, 16, 32)
    body: list[str] = []
    if style == "four_phase":
        req, ack = c.p(c.pick("req", "req_in")), c.p(c.pick("ack", "ack_out"), "output")
        d, q = c.p(c.pick("data_in", "din")), c.p(c.pick("data_out", "captured"), "output")
        ports = [c.clk_port(), c.rst_port(), Port("input", 1, req), Port("input", w, d), Port("output", 1, ack, True), Port("output", w, q, True)]
        body += [f"{c.reg()} [1:0] req_s;"]
        body += c.seq(["req_s <= 2'b00;", f"{ack} <= 1'b0;", f"{q} <= 0;"],
                      [f"req_s <= {{req_s[0], {req}}};", f"if (req_s[1] && !{ack}) begin", f"  {q} <= {d};", f"  {ack} <= 1'b1;",
                       f"end else if (!req_s[1] && {ack}) begin", f"  {ack} <= 1'b0;", "end"])
        name = f"hs4_receiver_{w}"
        hl = f"The receiving side of a four-phase request/acknowledge handshake that captures {w}-bit data."
        det = (f"{name} synchronises the incoming {req} with two flops. When the synchronised request is high and no acknowledge is "
               f"pending, it captures {d} into {q} and raises {ack}; it drops {ack} after the request returns low, completing the "
               f"four phases. Reset is {c.rdesc()}.")
        blocks = [f"Synchronises {req} into the local clock domain.", f"Captures data and raises {ack} on a new request.", f"Releases {ack} once the request is withdrawn."]
    elif style == "pipe_reg":
        iv, ir, idt = c.p("in_valid"), c.p("in_ready", "output"), c.p(c.pick("in_data", "s_data"))
        ov, orr, od = c.p("out_valid", "output"), c.p("out_ready"), c.p(c.pick("out_data", "m_data"), "output")
        ports = [c.clk_port(), c.rst_port(), Port("input", 1, iv), Port("output", 1, ir), Port("input", w, idt),
                 Port("output", 1, ov, True), Port("input", 1, orr), Port("output", w, od, True)]
        body += [f"assign {ir} = !{ov} || {orr};"]
        body += c.seq([f"{ov} <= 1'b0;", f"{od} <= 0;"], [f"if ({ir}) begin", f"  {ov} <= {iv};", f"  if ({iv}) {od} <= {idt};", "end"])
        name = f"vr_pipe_stage_{w}"
        hl = f"A valid/ready pipeline register stage for a {w}-bit stream."
        det = (f"{name} registers the data and valid signals of a ready/valid stream. It accepts new input whenever the output "
               f"register is empty or is being read in the same cycle ({ir} = !{ov} || {orr}), so it sustains full throughput while "
               f"back-pressure passes combinationally. Reset is {c.rdesc()}.")
        blocks = [f"Computes {ir} from the output state.", "Loads valid and data when the stage can accept."]
    elif style == "skid":
        iv, ir, idt = c.p("s_valid"), c.p("s_ready", "output"), c.p("s_data")
        ov, orr, od = c.p("m_valid", "output"), c.p("m_ready"), c.p("m_data", "output")
        ports = [c.clk_port(), c.rst_port(), Port("input", 1, iv), Port("output", 1, ir, True), Port("input", w, idt),
                 Port("output", 1, ov, True), Port("input", 1, orr), Port("output", w, od, True)]
        body += [f"{c.reg()} [{w-1}:0] skid_data;", f"{c.reg()} skid_full;"]
        body += c.seq([f"{ir} <= 1'b1;", f"{ov} <= 1'b0;", f"{od} <= 0;", "skid_data <= 0;", "skid_full <= 1'b0;"],
                      [f"if ({ov} && {orr}) begin", "  if (skid_full) begin", f"    {od} <= skid_data;", "    skid_full <= 1'b0;",
                       f"    {ir} <= 1'b1;", f"  end else if ({iv} && {ir}) begin", f"    {od} <= {idt};", "  end else begin",
                       f"    {ov} <= 1'b0;", "  end", f"end else if (!{ov} && {iv} && {ir}) begin", f"  {od} <= {idt};", f"  {ov} <= 1'b1;",
                       f"end else if ({ov} && !{orr} && {iv} && {ir}) begin", f"  skid_data <= {idt};", "  skid_full <= 1'b1;",
                       f"  {ir} <= 1'b0;", "end"])
        name = f"skid_buffer_{w}"
        hl = f"A two-entry skid buffer that fully registers both the valid/ready handshake and {w}-bit data."
        det = (f"{name} registers {ir} so that no combinational path runs from {orr} to {ir}. When the downstream stalls while a word "
               f"is being accepted, the extra word is parked in a skid register and {ir} drops; it is forwarded as soon as the output "
               f"is consumed. Reset is {c.rdesc()}.")
        blocks = ["Declares the skid register and its full flag.", "Moves the skid word to the output when the output is taken.",
                  "Loads the output register directly when it is empty.", f"Parks a word in the skid register on a stall and deasserts {ir}."]
    else:
        snd, d = c.p(c.pick("send", "start")), c.p(c.pick("payload", "tx_data"))
        req, ack = c.p(c.pick("req", "req_out"), "output"), c.p(c.pick("ack", "ack_in"))
        bus, bz = c.p(c.pick("bus_data", "data_out"), "output"), c.p("busy", "output")
        ports = [c.clk_port(), c.rst_port(), Port("input", 1, snd), Port("input", w, d), Port("input", 1, ack),
                 Port("output", 1, req, True), Port("output", w, bus, True), Port("output", 1, bz)]
        body += ["localparam IDLE = 2'd0, WAIT_ACK = 2'd1, WAIT_REL = 2'd2;", f"{c.reg()} [1:0] st;", f"{c.reg()} [1:0] ack_s;",
                 "assign " + bz + " = (st != IDLE);"]
        body += c.seq(["st <= IDLE;", "ack_s <= 2'b00;", f"{req} <= 1'b0;", f"{bus} <= 0;"],
                      [f"ack_s <= {{ack_s[0], {ack}}};", "case (st)", f"  IDLE: if ({snd}) begin {bus} <= {d}; {req} <= 1'b1; st <= WAIT_ACK; end",
                       f"  WAIT_ACK: if (ack_s[1]) begin {req} <= 1'b0; st <= WAIT_REL; end", "  WAIT_REL: if (!ack_s[1]) st <= IDLE;",
                       "  default: st <= IDLE;", "endcase"])
        name = f"hs4_sender_{w}"
        hl = f"The sending side of a four-phase req/ack handshake that transfers a {w}-bit word on {snd}."
        det = (f"{name} latches {d} onto {bus} and raises {req} when {snd} is seen in IDLE. It waits for the synchronised {ack}, drops "
               f"{req}, then waits for {ack} to fall before returning to IDLE. {bz} is high during a transfer. Reset is {c.rdesc()}.")
        blocks = ["Defines the three handshake states.", f"Synchronises {ack}.", "Starts a transfer in IDLE.", "Completes the four phases."]
    return Mod(name, ports, body, hl, det, blocks)


@family("fsm", 4)
def fam_debounce(c: Ctx, i: int) -> Mod:
    style = ["counter", "shift", "counter_pulse", "saturate"][i]
    n = c.pick(8, 16, 20)
    b = c.p(c.pick("btn", "key", "sw_in", "noisy"))
    o = c.p(c.pick("btn_db", "clean", "stable", "key_state"), "output")
    name = f"{c.pick('debounce', 'debouncer', 'btn_filter')}_{style}"
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, b)]
    body: list[str] = [f"{c.reg()} [1:0] s;"]
    if style in ("counter", "counter_pulse"):
        ports.append(Port("output", 1, o, True))
        body += [f"{c.reg()} [{n-1}:0] cnt;"]
        extra_r, extra_u = [], []
        if style == "counter_pulse":
            pr = c.p(c.pick("pressed", "rise"), "output")
            ports.append(Port("output", 1, pr, True))
            extra_r, extra_u = [f"{pr} <= 1'b0;"], [f"{pr} <= 1'b0;"]
        body += c.seq(["s <= 2'b00;", "cnt <= 0;", f"{o} <= 1'b0;"] + extra_r,
                      [f"s <= {{s[0], {b}}};"] + extra_u + [f"if (s[1] == {o}) cnt <= 0;", "else begin", "  cnt <= cnt + 1'b1;",
                                                          "  if (&cnt) begin", f"    {o} <= s[1];"]
                      + ([f"    {pr} <= s[1];"] if style == "counter_pulse" else []) + ["  end", "end"])
        det_x = (f"After two synchroniser flops, a {n}-bit counter runs while the input differs from the current output and is cleared "
                 f"whenever they agree. Only when the input has been stable for 2^{n} cycles does {o} change."
                 + (f" {pr} pulses for one cycle on each debounced press." if style == "counter_pulse" else ""))
    elif style == "shift":
        k = c.pick(4, 6, 8)
        ports.append(Port("output", 1, o, True))
        body += [f"{c.reg()} [{k-1}:0] hist;"]
        body += c.seq(["s <= 2'b00;", "hist <= 0;", f"{o} <= 1'b0;"],
                      [f"s <= {{s[0], {b}}};", f"hist <= {{hist[{k-2}:0], s[1]}};", f"if (&hist) {o} <= 1'b1;", f"else if (~|hist) {o} <= 1'b0;"])
        det_x = f"The synchronised input is shifted into a {k}-bit history register; {o} goes high only after {k} consecutive ones and low after {k} consecutive zeros."
    else:
        ports.append(Port("output", 1, o, True))
        body += [f"{c.reg()} [3:0] integ;"]
        body += c.seq(["s <= 2'b00;", "integ <= 0;", f"{o} <= 1'b0;"],
                      [f"s <= {{s[0], {b}}};", "if (s[1] && integ != 4'd15) integ <= integ + 1'b1;", "else if (!s[1] && integ != 4'd0) integ <= integ - 1'b1;",
                       f"if (integ == 4'd15) {o} <= 1'b1;", f"else if (integ == 4'd0) {o} <= 1'b0;"])
        det_x = f"A 4-bit saturating integrator counts up while the input is high and down while it is low; {o} switches only at the extremes, giving hysteresis."
    hl = f"Removes contact bounce from the mechanical input {b} and outputs a clean level {o}."
    det = f"{name} filters the asynchronous input {b}. {det_x} Reset is {c.rdesc()}."
    blocks = [f"Synchronises {b} with two flip-flops.", "Measures how long the input has been stable.", f"Updates {o} once the input is stable."]
    return Mod(name, ports, body, hl, det, blocks)


@family("fsm", 5)
def fam_edge(c: Ctx, i: int) -> Mod:
    style = ["rise", "fall", "both", "rise_sync", "multi"][i]
    s = c.p(c.pick("sig", "a", "level", "in_sig"))
    body: list[str] = []
    name = f"{c.pick('edge_det', 'edge', 'edgedet')}_{style}"
    ports = [c.clk_port(), c.rst_port()]
    if style == "multi":
        w = c.pick(4, 8)
        r, f = c.p(c.pick("rise", "posedges"), "output"), c.p(c.pick("fall", "negedges"), "output")
        ports += [Port("input", w, s), Port("output", w, r), Port("output", w, f)]
        body += [f"{c.reg()} [{w-1}:0] prev;"]
        body += c.seq(["prev <= 0;"], [f"prev <= {s};"])
        body += [f"assign {r} = {s} & ~prev;", f"assign {f} = ~{s} & prev;"]
        hl = f"Detects rising and falling edges on each bit of the {w}-bit bus {s}."
        det = f"{name} registers {s} and compares it bit by bit with its previous value: {r} flags bits that went 0->1 and {f} bits that went 1->0, each for one cycle. Reset is {c.rdesc()}."
        blocks = ["Stores the previous bus value.", "Computes per-bit rising and falling edges."]
        return Mod(name, ports, body, hl, det, blocks)
    p = c.p(c.pick("pulse", "edge_out", "tick"), "output")
    ports += [Port("input", 1, s), Port("output", 1, p)]
    if style == "rise_sync":
        body += [f"{c.reg()} [2:0] sh;"]
        body += c.seq(["sh <= 3'b000;"], [f"sh <= {{sh[1:0], {s}}};"])
        body.append(f"assign {p} = sh[1] & ~sh[2];")
        what = "rising"
        det_x = f"The asynchronous input first passes a two-flop synchroniser, then a third flop holds the previous value; {p} is high for one cycle after a 0->1 change."
    else:
        body += [f"{c.reg()} d_q;"]
        body += c.seq(["d_q <= 1'b0;"], [f"d_q <= {s};"])
        expr = {"rise": f"{s} & ~d_q", "fall": f"~{s} & d_q", "both": f"{s} ^ d_q"}[style]
        body.append(f"assign {p} = {expr};")
        what = {"rise": "rising", "fall": "falling", "both": "any"}[style]
        det_x = f"A flip-flop holds the value of {s} from the previous cycle and {p} = {expr}, which is high for one cycle on each {what} edge."
    hl = f"Generates a single-cycle pulse on {p} for every {what} edge of {s}."
    det = f"{name} works in the {c.clk} domain. {det_x} Reset is {c.rdesc()}."
    blocks = [f"Registers the past value of {s}.", f"Compares current and past values to form {p}."]
    return Mod(name, ports, body, hl, det, blocks)


@family("fsm", 5)
def fam_pwm(c: Ctx, i: int) -> Mod:
    style = ["basic", "center", "dead", "prescale", "multi"][i]
    w = c.pick(8, 10, 12)
    duty = c.p(c.pick("duty", "compare", "level"))
    o = c.p(c.pick("pwm", "pwm_out", "out"), "output")
    name = f"{c.pick('pwm', 'pwm_gen', 'pwm_core')}_{style}_{w}"
    ports = [c.clk_port(), c.rst_port()]
    body = [f"{c.reg()} [{w-1}:0] cnt;"]
    if style == "basic":
        ports += [Port("input", w, duty), Port("output", 1, o)]
        body += c.seq(["cnt <= 0;"], ["cnt <= cnt + 1'b1;"])
        body.append(f"assign {o} = (cnt < {duty});")
        hl = f"A {w}-bit edge-aligned PWM generator with duty cycle {duty}/2^{w}."
        det = f"{name} runs a free {w}-bit counter and drives {o} high while the counter is below {duty}, so {duty}=0 is always off. Reset is {c.rdesc()}."
        blocks = ["Runs a free-running counter.", f"Compares it with {duty} to form {o}."]
    elif style == "center":
        ports += [Port("input", w, duty), Port("output", 1, o, True)]
        body += [f"{c.reg()} down;"]
        body += c.seq(["cnt <= 0;", "down <= 1'b0;", f"{o} <= 1'b0;"],
                      ["if (!down) begin", "  if (&cnt) down <= 1'b1; else cnt <= cnt + 1'b1;", "end else begin",
                       "  if (cnt == 0) down <= 1'b0; else cnt <= cnt - 1'b1;", "end", f"{o} <= (cnt < {duty});"])
        hl = f"A center-aligned (up/down counting) PWM generator with {w}-bit resolution."
        det = f"{name} counts up to the maximum and back down, and registers {o} = (count < {duty}). The pulse is centered in the period, which reduces harmonics in motor control. Reset is {c.rdesc()}."
        blocks = ["Counts up and down in a triangle.", f"Registers the comparison with {duty}."]
    elif style == "dead":
        dt = c.pick(4, 8)
        hi_, lo_ = c.p(c.pick("pwm_h", "high_side"), "output"), c.p(c.pick("pwm_l", "low_side"), "output")
        ports += [Port("input", w, duty), Port("output", 1, hi_), Port("output", 1, lo_)]
        body += c.seq(["cnt <= 0;"], ["cnt <= cnt + 1'b1;"])
        body += [f"{c.wire()} raw = (cnt < {duty});", f"assign {hi_} = raw && (cnt >= {w}'d{dt});",
                 f"assign {lo_} = !raw && (cnt >= {duty} + {w}'d{dt});"]
        hl = f"A complementary PWM generator with {dt} cycles of dead time between the high-side and low-side outputs."
        det = f"{name} derives two complementary outputs from one counter compare. Each output is delayed by {dt} cycles after the other turns off so that both switches of a half bridge are never on together. Reset is {c.rdesc()}."
        blocks = ["Runs the PWM counter.", "Computes the raw compare.", "Inserts dead time on both outputs."]
    elif style == "prescale":
        ps = c.p(c.pick("prescale", "div"))
        ports += [Port("input", 4, ps), Port("input", w, duty), Port("output", 1, o, True)]
        body += [f"{c.reg()} [3:0] pre;"]
        body += c.seq(["cnt <= 0;", "pre <= 0;", f"{o} <= 1'b0;"],
                      [f"if (pre >= {ps}) begin", "  pre <= 0;", "  cnt <= cnt + 1'b1;", "end else pre <= pre + 1'b1;", f"{o} <= (cnt < {duty});"])
        hl = f"A PWM generator with a 4-bit prescaler {ps} that slows down the {w}-bit period counter."
        det = f"{name} advances its period counter once every {ps}+1 clocks, lengthening the PWM period accordingly, and registers {o} = (count < {duty}). Reset is {c.rdesc()}."
        blocks = ["Counts prescaler ticks.", "Advances the period counter on each tick.", f"Registers the compare output {o}."]
    else:
        nch = c.pick(2, 3, 4)
        ports += [Port("input", w * nch, duty), Port("output", nch, o)]
        body += c.seq(["cnt <= 0;"], ["cnt <= cnt + 1'b1;"])
        body += ["genvar gc;", "generate", f"  for (gc = 0; gc < {nch}; gc = gc + 1) begin : g_ch",
                 f"    assign {o}[gc] = (cnt < {duty}[gc*{w} +: {w}]);", "  end", "endgenerate"]
        hl = f"A {nch}-channel PWM generator sharing one {w}-bit counter."
        det = f"{name} uses a single counter and one comparator per channel; channel k's duty is the k-th {w}-bit field of {duty}. All channels are edge-aligned. Reset is {c.rdesc()}."
        blocks = ["Runs the shared counter.", "Generates one comparator per channel."]
    return Mod(name, ports, body, hl, det, blocks)


# =============================================================================================
# FIFOs and memories
# =============================================================================================
@family("memory", 5)
def fam_fifo(c: Ctx, i: int) -> Mod:
    style = ["count", "ptr_msb", "almost", "fwft", "param"][i]
    w = c.pick(8, 16, 32)
    dpt = c.pick(4, 8, 16)
    aw = clog2(dpt)
    we, re_ = c.p(c.pick("wr_en", "push", "write")), c.p(c.pick("rd_en", "pop", "read"))
    d, q = c.p(c.pick("wr_data", "din", "data_in")), c.p(c.pick("rd_data", "dout", "data_out"), "output")
    full, empty = c.p(c.pick("full", "fifo_full"), "output"), c.p(c.pick("empty", "fifo_empty"), "output")
    name = f"{c.pick('fifo', 'sync_fifo', 'sfifo')}_{style}_{w}x{dpt}"
    params: list[tuple[str, str]] = []
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, we), Port("input", w, d), Port("input", 1, re_)]
    body: list[str] = []
    if style == "param":
        params = [("DW", str(w)), ("AW", str(aw))]
        ports[3] = Port("input", w, d, wexpr="[DW-1:0]")
        ports += [Port("output", w, q, True, wexpr="[DW-1:0]"), Port("output", 1, full), Port("output", 1, empty)]
        body += [f"{c.reg()} [DW-1:0] mem [0:(1<<AW)-1];", f"{c.reg()} [AW:0] wp, rp;",
                 f"assign {empty} = (wp == rp);", f"assign {full} = (wp[AW] != rp[AW]) && (wp[AW-1:0] == rp[AW-1:0]);",
                 f"{c.ffc()} if ({we} && !{full}) mem[wp[AW-1:0]] <= {d};"]
        body += c.seq(["wp <= 0;", "rp <= 0;", f"{q} <= 0;"], [f"if ({we} && !{full}) wp <= wp + 1'b1;",
                                                              f"if ({re_} && !{empty}) begin", f"  {q} <= mem[rp[AW-1:0]];", "  rp <= rp + 1'b1;", "end"])
        det_x = "Depth and width are parameters (2^AW entries of DW bits). Pointers carry one extra wrap bit: equal pointers mean empty, pointers differing only in the wrap bit mean full."
    elif style == "ptr_msb":
        ports += [Port("output", w, q, True), Port("output", 1, full), Port("output", 1, empty)]
        body += [f"{c.reg()} [{w-1}:0] mem [0:{dpt-1}];", f"{c.reg()} [{aw}:0] wp, rp;",
                 f"assign {empty} = (wp == rp);", f"assign {full} = (wp == {{~rp[{aw}], rp[{aw-1}:0]}});"]
        body += c.seq(["wp <= 0;", "rp <= 0;", f"{q} <= 0;"], [f"if ({we} && !{full}) begin", f"  mem[wp[{aw-1}:0]] <= {d};", "  wp <= wp + 1'b1;", "end",
                                                              f"if ({re_} && !{empty}) begin", f"  {q} <= mem[rp[{aw-1}:0]];", "  rp <= rp + 1'b1;", "end"])
        det_x = f"The read and write pointers are {aw+1} bits wide; the extra MSB distinguishes full from empty when the address bits match."
    elif style == "fwft":
        ports += [Port("output", w, q), Port("output", 1, full), Port("output", 1, empty)]
        body += [f"{c.reg()} [{w-1}:0] mem [0:{dpt-1}];", f"{c.reg()} [{aw-1}:0] wp, rp;", f"{c.reg()} [{aw}:0] used;",
                 f"assign {full} = (used == {dpt});", f"assign {empty} = (used == 0);", f"assign {q} = mem[rp];",
                 f"{c.wire()} do_w = {we} && !{full};", f"{c.wire()} do_r = {re_} && !{empty};"]
        body += c.seq(["wp <= 0;", "rp <= 0;", "used <= 0;"], ["if (do_w) begin", f"  mem[wp] <= {d};", "  wp <= wp + 1'b1;", "end",
                                                              "if (do_r) rp <= rp + 1'b1;", "case ({do_w, do_r})", "  2'b10: used <= used + 1'b1;",
                                                              "  2'b01: used <= used - 1'b1;", "  default: ;", "endcase"])
        det_x = f"It is a first-word-fall-through FIFO: {q} always shows the oldest entry combinationally, and {re_} just discards it. An occupancy counter drives the flags."
    else:
        cntp = c.p(c.pick("level", "count", "fill"), "output")
        ports += [Port("output", w, q, True), Port("output", 1, full), Port("output", 1, empty), Port("output", aw + 1, cntp, True)]
        extra = []
        if style == "almost":
            af, ae = c.p(c.pick("almost_full", "afull"), "output"), c.p(c.pick("almost_empty", "aempty"), "output")
            ports += [Port("output", 1, af), Port("output", 1, ae)]
            extra = [f"assign {af} = ({cntp} >= {dpt - 1});", f"assign {ae} = ({cntp} <= 1);"]
        body += [f"{c.reg()} [{w-1}:0] mem [0:{dpt-1}];", f"{c.reg()} [{aw-1}:0] wp, rp;",
                 f"assign {full} = ({cntp} == {dpt});", f"assign {empty} = ({cntp} == 0);"] + extra
        body += c.seq(["wp <= 0;", "rp <= 0;", f"{cntp} <= 0;", f"{q} <= 0;"],
                      [f"if ({we} && !{full}) begin", f"  mem[wp] <= {d};", "  wp <= wp + 1'b1;", "end",
                       f"if ({re_} && !{empty}) begin", f"  {q} <= mem[rp];", "  rp <= rp + 1'b1;", "end",
                       f"{cntp} <= {cntp} + ({we} && !{full}) - ({re_} && !{empty});"])
        det_x = (f"An occupancy counter {cntp} tracks the number of stored words and produces the flags"
                 + (f"; {af} is raised with one free slot left and {ae} with at most one word stored" if style == "almost" else "") + ".")
    hl = f"A synchronous FIFO with {dpt} entries of {w} bits, with full and empty flags."
    det = (f"{name} stores words written with {we} in a circular buffer and returns them in order on {q} when {re_} is asserted. "
           f"Writes when full and reads when empty are ignored. {det_x} Reset is {c.rdesc()}.")
    blocks = ["Declares the storage array and the pointers.", "Derives the full and empty flags.", "Writes data and advances the write pointer.",
              "Reads data and advances the read pointer."]
    return Mod(name, ports, body, hl, det, blocks, params)


@family("memory", 5)
def fam_ram(c: Ctx, i: int) -> Mod:
    style = ["sp_rf", "sp_wf", "sdp", "tdp", "byte_en"][i]
    w = c.pick(8, 16, 32) if style != "byte_en" else 32
    dpt = c.pick(16, 32, 64, 256)
    aw = clog2(dpt)
    name = f"{c.pick('ram', 'bram', 'mem')}_{style}_{dpt}x{w}"
    ports = [c.clk_port()]
    body = [f"{c.reg()} [{w-1}:0] mem [0:{dpt-1}];"]
    if style in ("sp_rf", "sp_wf", "byte_en"):
        we, a, d, q = c.p(c.pick("we", "wr_en", "write")), c.p(c.pick("addr", "a", "adr")), c.p(c.pick("din", "wdata", "d")), c.p(c.pick("dout", "rdata", "q"), "output")
        if style == "byte_en":
            be = c.p(c.pick("be", "wstrb", "byte_sel"))
            ports += [Port("input", 1, we), Port("input", 4, be), Port("input", aw, a), Port("input", w, d), Port("output", w, q, True)]
            body += ["integer k;", f"{c.ffc()} begin", f"  if ({we})", "    for (k = 0; k < 4; k = k + 1)",
                     f"      if ({be}[k]) mem[{a}][8*k +: 8] <= {d}[8*k +: 8];", f"  {q} <= mem[{a}];", "end"]
            hl = f"A {dpt}x32 single-port RAM with per-byte write enables {be}."
            det_x = f"Each bit of {be} enables writing one byte lane of {d}; the read returns the old contents (read-first)."
        elif style == "sp_rf":
            ports += [Port("input", 1, we), Port("input", aw, a), Port("input", w, d), Port("output", w, q, True)]
            body += [f"{c.ffc()} begin", f"  if ({we}) mem[{a}] <= {d};", f"  {q} <= mem[{a}];", "end"]
            hl = f"A {dpt}-word by {w}-bit single-port synchronous RAM in read-first mode."
            det_x = f"During a write the registered output {q} returns the previous contents of the addressed word (read-first)."
        else:
            ports += [Port("input", 1, we), Port("input", aw, a), Port("input", w, d), Port("output", w, q, True)]
            body += [f"{c.ffc()} begin", f"  if ({we}) begin", f"    mem[{a}] <= {d};", f"    {q} <= {d};", "  end else begin",
                     f"    {q} <= mem[{a}];", "  end", "end"]
            hl = f"A {dpt}x{w} single-port RAM in write-first mode."
            det_x = f"During a write the new data is forwarded to {q} in the same cycle (write-first)."
        blocks = ["Declares the memory array.", f"Writes {d} at {a} when {we} is high.", f"Registers the read data on {q}."]
    elif style == "sdp":
        we, wa, d = c.p(c.pick("we", "wr_en")), c.p(c.pick("waddr", "wr_addr")), c.p(c.pick("wdata", "wr_data"))
        re_, ra, q = c.p(c.pick("re", "rd_en")), c.p(c.pick("raddr", "rd_addr")), c.p(c.pick("rdata", "rd_data"), "output")
        ports += [Port("input", 1, we), Port("input", aw, wa), Port("input", w, d), Port("input", 1, re_), Port("input", aw, ra), Port("output", w, q, True)]
        body += [f"{c.ffc()} begin", f"  if ({we}) mem[{wa}] <= {d};", f"  if ({re_}) {q} <= mem[{ra}];", "end"]
        hl = f"A simple dual-port RAM ({dpt}x{w}) with one write port and one registered read port."
        det_x = f"Reads and writes use independent addresses {wa} and {ra}; the read output only updates when {re_} is high."
        blocks = ["Declares the memory array.", f"Writes {d} at {wa} when {we} is set.", f"Reads the word at {ra} into {q} when {re_} is set."]
    else:
        ports = [c.clk_port()]
        pa = [c.p(x) for x in ("we_a", "addr_a", "din_a")] + [c.p("dout_a", "output")]
        pb = [c.p(x) for x in ("we_b", "addr_b", "din_b")] + [c.p("dout_b", "output")]
        for pp in (pa, pb):
            ports += [Port("input", 1, pp[0]), Port("input", aw, pp[1]), Port("input", w, pp[2]), Port("output", w, pp[3], True)]
        for pp in (pa, pb):
            body += [f"{c.ffc()} begin", f"  if ({pp[0]}) mem[{pp[1]}] <= {pp[2]};", f"  {pp[3]} <= mem[{pp[1]}];", "end"]
        hl = f"A true dual-port RAM ({dpt}x{w}) with two independent read/write ports on one clock."
        det_x = "Both ports can read and write in the same cycle; simultaneous writes to the same address give an undefined winner."
        blocks = ["Declares the shared memory array.", f"Serves port A: writes {pa[2]} when {pa[0]} is high and registers the read word on {pa[3]}.",
                  f"Serves port B likewise with {pb[0]}, {pb[1]}, {pb[2]} and {pb[3]}."]
    det = f"{name} is a {dpt}-entry, {w}-bit wide memory that infers block RAM, clocked by {c.clk} and without reset. {det_x}"
    return Mod(name, ports, body, hl, det, blocks)


@family("memory", 4)
def fam_rom(c: Ctx, i: int) -> Mod:
    style = ["sine", "squares", "fib", "char"][i]
    a = c.p(c.pick("addr", "index", "phase"))
    q = c.p(c.pick("data", "value", "rom_out"), "output")
    reg_out = c.rng.random() < 0.5
    import math
    if style == "sine":
        n, w = 32, 8
        vals = [int(round(127.5 + 127.5 * math.sin(2 * math.pi * k / n))) for k in range(n)]
        what = f"one period of a sine wave ({n} samples, unsigned {w}-bit, offset 128)"
    elif style == "squares":
        n, w = 16, 8
        vals = [k * k for k in range(n)]
        what = "the squares 0..225 of the address"
    elif style == "fib":
        n, w = 16, 10
        f = [0, 1]
        while len(f) < n:
            f.append(f[-1] + f[-2])
        vals = f
        what = "the first 16 Fibonacci numbers"
    else:
        n, w = 16, 8
        vals = [ord(ch) for ch in "HELLO, FPGA!\r\n  "[:16]]
        what = "the ASCII characters of a greeting message"
    aw = clog2(n)
    name = f"rom_{style}_{n}x{w}{'_reg' if reg_out else ''}"
    ports = ([c.clk_port()] if reg_out else []) + [Port("input", aw, a), Port("output", w, q, True)]
    tgt = "rom_q" if reg_out else q
    body = ([f"{c.reg()} [{w-1}:0] rom_q;"] if reg_out else []) + [f"{c.comb()} begin", f"  case ({a})"]
    body += [f"    {aw}'d{k}: {tgt} = {w}'d{v};" for k, v in enumerate(vals)]
    body += [f"    default: {tgt} = {w}'d0;", "  endcase", "end"]
    if reg_out:
        body.append(f"{c.ffc()} {q} <= rom_q;")
    hl = f"A {n}x{w} lookup-table ROM holding {what}."
    det = (f"{name} returns on {q} the constant stored at address {a}; the table contains {what}. "
           + (f"The output is registered on {c.clk}, giving one cycle of latency." if reg_out else "The lookup is purely combinational."))
    blocks = ["Implements the table as a case statement.", "Returns zero for unused addresses."]
    if reg_out:
        blocks.append(f"Registers the looked-up value on {q}.")
    return Mod(name, ports, body, hl, det, blocks)


@family("memory", 4)
def fam_regfile(c: Ctx, i: int) -> Mod:
    style = ["2r1w_zero", "2r1w_bypass", "1r1w", "4r2w"][i]
    w = c.pick(16, 32, 8)
    n = c.pick(8, 16, 32)
    aw = clog2(n)
    name = f"{c.pick('regfile', 'rf', 'gpr_file')}_{style}_{n}x{w}"
    ports = [c.clk_port(), c.rst_port()]
    body = [f"{c.reg()} [{w-1}:0] regs [0:{n-1}];", "integer k;"]
    we, wa, wd = c.p(c.pick("we", "wen", "rd_we")), c.p(c.pick("waddr", "rd_addr", "wa")), c.p(c.pick("wdata", "rd_data", "wd"))
    if style == "4r2w":
        we2, wa2, wd2 = we + "2", wa + "2", wd + "2"
        rs = [c.p(f"ra{k}") for k in range(4)]
        rd = [c.p(f"rd{k}", "output") for k in range(4)]
        ports += [Port("input", 1, we), Port("input", aw, wa), Port("input", w, wd), Port("input", 1, we2), Port("input", aw, wa2), Port("input", w, wd2)]
        ports += [Port("input", aw, r) for r in rs] + [Port("output", w, r) for r in rd]
        body += c.seq([f"for (k = 0; k < {n}; k = k + 1) regs[k] <= 0;"],
                      [f"if ({we}) regs[{wa}] <= {wd};", f"if ({we2}) regs[{wa2}] <= {wd2};"])
        body += [f"assign {rd[k]} = regs[{rs[k]}];" for k in range(4)]
        hl = f"A {n}x{w} register file with four asynchronous read ports and two write ports."
        det_x = f"The second write port ({we2}) has priority when both write the same register. Reads are combinational."
        blocks = ["Declares the register array.", "Clears all registers on reset.", "Performs up to two writes per cycle.", "Drives four combinational read ports."]
    else:
        nr = 1 if style == "1r1w" else 2
        rs = [c.p(c.pick("rs1", "ra1", "raddr_a")), c.p(c.pick("rs2", "ra2", "raddr_b"))][:nr]
        rd = [c.p(c.pick("rdata1", "q1", "rd_a"), "output"), c.p(c.pick("rdata2", "q2", "rd_b"), "output")][:nr]
        ports += [Port("input", 1, we), Port("input", aw, wa), Port("input", w, wd)] + [Port("input", aw, r) for r in rs] + [Port("output", w, r) for r in rd]
        guard = f" && {wa} != 0" if style == "2r1w_zero" else ""
        body += c.seq([f"for (k = 0; k < {n}; k = k + 1) regs[k] <= 0;"], [f"if ({we}{guard}) regs[{wa}] <= {wd};"])
        for r, o in zip(rs, rd):
            if style == "2r1w_zero":
                body.append(f"assign {o} = ({r} == 0) ? {w}'d0 : regs[{r}];")
            elif style == "2r1w_bypass":
                body.append(f"assign {o} = ({we} && {wa} == {r}) ? {wd} : regs[{r}];")
            else:
                body.append(f"assign {o} = regs[{r}];")
        hl = f"A {n}-entry, {w}-bit register file with {nr} read port{'s' if nr > 1 else ''} and one write port."
        det_x = {"2r1w_zero": "Register 0 is hard-wired to zero as in RISC processors: writes to it are ignored and reads return 0.",
                 "2r1w_bypass": "Write data is bypassed to a read port reading the register being written, so a read in the same cycle sees the new value.",
                 "1r1w": "Reads are asynchronous."}[style]
        blocks = ["Declares the register array.", "Clears all registers on reset.", f"Writes {wd} to {wa} when {we} is high.", "Drives the read ports."]
    det = f"{name} holds {n} registers of {w} bits, written on the rising edge of {c.clk}. {det_x} Reset is {c.rdesc()}."
    return Mod(name, ports, body, hl, det, blocks)


# =============================================================================================
# Bus and protocol blocks
# =============================================================================================
@family("protocol", 4)
def fam_uart_tx(c: Ctx, i: int) -> Mod:
    style = ["basic", "parity", "two_stop", "baud_tick"][i]
    clks = c.pick(16, 87, 104, 434, 868)
    dw = 8 if i != 2 else 7
    st, d = c.p(c.pick("tx_start", "send", "wr")), c.p(c.pick("tx_data", "din", "byte_in"))
    tx, bz = c.p(c.pick("tx", "txd", "serial_out"), "output"), c.p(c.pick("tx_busy", "busy"), "output")
    name = f"{c.pick('uart_tx', 'uart_transmitter', 'serial_tx')}_{style}"
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, st), Port("input", dw, d)]
    if style == "baud_tick":
        tk = c.p(c.pick("baud_tick", "bit_en"))
        ports.insert(2, Port("input", 1, tk))
    ports += [Port("output", 1, tx, True), Port("output", 1, bz)]
    if style == "two_stop":
        bi = f"{c.reg()} [2:0] bit_idx;"
        body = ["localparam S_IDLE = 3'd0, S_START = 3'd1, S_DATA = 3'd2, S_STOP1 = 3'd3, S_STOP2 = 3'd4;", f"localparam CLKS_PER_BIT = {clks};",
                f"{c.reg()} [2:0] state;", f"{c.reg()} [{clog2(clks)-1}:0] timer;", bi, f"{c.reg()} [{dw-1}:0] latched;",
                f"{c.wire()} bit_end = (timer == CLKS_PER_BIT - 1);", f"assign {bz} = (state != S_IDLE);"]
        body += c.seq(["state <= S_IDLE;", "timer <= 0;", "bit_idx <= 0;", "latched <= 0;", f"{tx} <= 1'b1;"],
                      ["timer <= (state == S_IDLE || bit_end) ? 0 : timer + 1'b1;", "case (state)",
                       "  S_IDLE: begin", f"    {tx} <= 1'b1;", f"    if ({st}) begin latched <= {d}; state <= S_START; end", "  end",
                       "  S_START: begin", f"    {tx} <= 1'b0;", "    if (bit_end) begin state <= S_DATA; bit_idx <= 0; end", "  end",
                       "  S_DATA: begin", f"    {tx} <= latched[bit_idx];", "    if (bit_end) begin",
                       f"      if (bit_idx == {dw-1}) state <= S_STOP1;", "      else bit_idx <= bit_idx + 1'b1;", "    end", "  end",
                       f"  S_STOP1: begin {tx} <= 1'b1; if (bit_end) state <= S_STOP2; end",
                       f"  S_STOP2: begin {tx} <= 1'b1; if (bit_end) state <= S_IDLE; end", "  default: state <= S_IDLE;", "endcase"])
        fmt = f"1 start bit, {dw} data bits LSB first, 2 stop bits"
        hl = f"A UART transmitter state machine that sends {dw}-bit words on {tx} with the frame format {fmt}."
        det = (f"{name} moves through idle, start, data and two stop states. In idle {tx} is high; {st} latches {d} and starts a frame. "
               f"Each state lasts CLKS_PER_BIT = {clks} clocks, timed by a counter that restarts at every bit boundary; in the data state "
               f"the bit indexed by a 3-bit counter is driven. {bz} is high whenever the machine is not idle. Reset is {c.rdesc()}.")
        blocks = ["Defines the five states and the bit period.", "Runs the bit timer.", f"Latches the word on {st} and sends the start bit.",
                  "Sends the data bits LSB first.", "Sends two stop bits and returns to idle."]
        return Mod(name, ports, body, hl, det, blocks)
    par_bits = 1 if style == "parity" else 0
    stop_bits = 2 if style == "two_stop" else 1
    nbits = 1 + dw + par_bits + stop_bits
    fw = nbits
    body = [f"{c.reg()} [{fw-1}:0] frame;", f"{c.reg()} [{clog2(nbits+1)-1}:0] left;"]
    if style != "baud_tick":
        body += [f"localparam CLKS_PER_BIT = {clks};", f"{c.reg()} [{clog2(clks)-1}:0] baud;"]
        tick = "(baud == CLKS_PER_BIT - 1)"
    else:
        tick = tk
    body.append(f"assign {bz} = (left != 0);")
    fr = f"{{{'2' + chr(39) + 'b11' if stop_bits == 2 else '1' + chr(39) + 'b1'}, {'^' + d + ', ' if par_bits else ''}{d}, 1'b0}}"
    rst = ["frame <= {" + str(fw) + "{1'b1}};", "left <= 0;", f"{tx} <= 1'b1;"] + (["baud <= 0;"] if style != "baud_tick" else [])
    upd = [f"if (!{bz}) begin", f"  if ({st}) begin", f"    frame <= {fr};", f"    left <= {nbits};"] + (["    baud <= 0;"] if style != "baud_tick" else []) + ["  end", "end else begin"]
    if style != "baud_tick":
        upd += [f"  baud <= {tick} ? 0 : baud + 1'b1;"]
    upd += [f"  if ({tick}) begin", f"    {tx} <= frame[0];", f"    frame <= {{1'b1, frame[{fw-1}:1]}};", "    left <= left - 1'b1;", "  end", "end"]
    body += c.seq(rst, upd)
    fmt = f"1 start bit, {dw} data bits LSB first, {'an even parity bit, ' if par_bits else ''}{stop_bits} stop bit{'s' if stop_bits > 1 else ''}"
    hl = f"A UART transmitter that serialises {dw}-bit words on {tx} using the frame format {fmt}."
    rate = f"Each bit lasts CLKS_PER_BIT = {clks} clock cycles" if style != "baud_tick" else f"Bits advance on the external baud enable {tk}"
    det = (f"{name} waits in idle with {tx} high. When {st} is seen while not busy it builds the frame ({fmt}) in a shift register "
           f"and sends it LSB first. {rate}. {bz} stays high until the frame is complete. Reset is {c.rdesc()}."
           + " Note that the output changes one bit period after the start request.")
    blocks = ["Declares the frame shift register and bit counter.", "Derives the busy flag from the remaining bit count.",
              f"Loads the frame when {st} arrives while idle.", f"Shifts one bit onto {tx} per bit period."]
    return Mod(name, ports, body, hl, det, blocks)


@family("protocol", 3)
def fam_uart_rx(c: Ctx, i: int) -> Mod:
    clks = [16, 434, 104][i]
    style = ["midbit", "midbit_err", "oversample"][i]
    rx = c.p(c.pick("rx", "rxd", "serial_in"))
    q, v = c.p(c.pick("rx_data", "dout", "byte_out"), "output"), c.p(c.pick("rx_valid", "valid", "ready"), "output")
    name = f"{c.pick('uart_rx', 'uart_receiver', 'serial_rx')}_{style}_{clks}"
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, rx), Port("output", 8, q, True), Port("output", 1, v, True)]
    extra_r, extra_stop = [], [f"      {v} <= 1'b1;"]
    if style == "midbit_err":
        fe = c.p(c.pick("frame_err", "ferr"), "output")
        ports.append(Port("output", 1, fe, True))
        extra_r = [f"{fe} <= 1'b0;"]
        extra_stop = [f"      {v} <= rx_s;", f"      {fe} <= !rx_s;"]
    cw = clog2(clks)
    if style == "midbit_err":
        bw_ = clog2(clks * 3 // 2 + 1)
        body = [f"localparam BIT = {clks};", f"{c.reg()} [2:0] meta;", f"{c.reg()} busy;", f"{c.reg()} [{bw_-1}:0] wait_cnt;",
                f"{c.reg()} [3:0] nleft;", f"{c.reg()} [8:0] frame;", f"{c.wire()} line = meta[2];", f"{c.wire()} fall = meta[2] & ~meta[1];"]
        body += c.seq(["meta <= 3'b111;", "busy <= 1'b0;", "wait_cnt <= 0;", "nleft <= 0;", "frame <= 0;", f"{q} <= 0;", f"{v} <= 1'b0;", f"{fe} <= 1'b0;"],
                      [f"meta <= {{meta[1:0], {rx}}};", f"{v} <= 1'b0;", f"{fe} <= 1'b0;", "if (!busy) begin", "  if (fall) begin", "    busy <= 1'b1;",
                       "    wait_cnt <= BIT + BIT/2 - 1;", "    nleft <= 4'd9;", "  end", "end else if (wait_cnt != 0) begin", "  wait_cnt <= wait_cnt - 1'b1;",
                       "end else begin", "  frame <= {line, frame[8:1]};", "  nleft <= nleft - 1'b1;", "  wait_cnt <= BIT - 1;", "  if (nleft == 4'd1) begin",
                       "    busy <= 1'b0;", f"    {q} <= frame[8:1];", f"    {v} <= line;", f"    {fe} <= ~line;", "  end", "end"])
        hl = "A UART receiver without an explicit state machine: a falling edge starts a timer that samples 8 data bits and the stop bit of an 8N1 frame."
        det = (f"{name} synchronises {rx} through three flops. A falling edge while idle starts a countdown of one and a half bit periods "
               f"(BIT = {clks} clocks), which lands in the middle of the first data bit; after that it samples once per bit period. Nine "
               f"samples (eight data bits, LSB first, and the stop bit) are shifted into a frame register. At the end {q} is updated and "
               f"{v} pulses if the stop bit is high, otherwise {fe} pulses. Reset is {c.rdesc()}.")
        blocks = [f"Synchronises {rx} and detects the falling start edge.", "Starts a 1.5-bit countdown on the start edge.",
                  "Samples one bit per bit period into the frame register.", "Checks the stop bit and outputs the byte or a framing error."]
        return Mod(name, ports, body, hl, det, blocks)
    if style == "oversample":
        tk = c.p(c.pick("os_tick", "tick16x"))
        ports.insert(2, Port("input", 1, tk))
        body = [f"{c.reg()} [1:0] rs;", f"{c.reg()} [3:0] phase;", f"{c.reg()} [3:0] bitc;", f"{c.reg()} [2:0] votes;", f"{c.reg()} run;",
                f"{c.reg()} [7:0] shreg;", f"{c.wire()} maj = (votes[0] & votes[1]) | (votes[0] & votes[2]) | (votes[1] & votes[2]);"]
        body += c.seq(["rs <= 2'b11;", "phase <= 0;", "bitc <= 0;", "votes <= 3'b111;", "run <= 1'b0;", "shreg <= 0;", f"{q} <= 0;", f"{v} <= 1'b0;"],
                      [f"rs <= {{rs[0], {rx}}};", f"{v} <= 1'b0;", f"if ({tk}) begin", "  if (!run) begin", "    if (!rs[1]) begin run <= 1'b1; phase <= 4'd1; bitc <= 0; end",
                       "  end else begin", "    phase <= phase + 1'b1;", "    if (phase >= 4'd7 && phase <= 4'd9) votes <= {votes[1:0], rs[1]};",
                       "    if (phase == 4'd15) begin", "      bitc <= bitc + 1'b1;", "      if (bitc == 4'd0 && maj) run <= 1'b0;",
                       "      else if (bitc >= 4'd1 && bitc <= 4'd8) shreg <= {maj, shreg[7:1]};", "      else if (bitc == 4'd9) begin", "        run <= 1'b0;",
                       f"        {q} <= shreg;", f"        {v} <= maj;", "      end", "    end", "  end", "end"])
        hl = "A 16x oversampling UART receiver that takes a majority vote of three samples in the middle of every bit."
        det = (f"{name} runs on a 16x baud enable {tk}. A low level on the synchronised line starts a frame; within each bit period the "
               f"samples at phases 7, 8 and 9 are kept and their majority decides the bit, which rejects short glitches. A start bit that "
               f"votes high is treated as noise. Eight data bits are shifted in LSB first and, if the stop bit votes high, {q} is updated and "
               f"{v} pulses. Reset is {c.rdesc()}.")
        blocks = [f"Synchronises {rx}.", "Starts a frame on a low line level.", "Collects three mid-bit samples and computes their majority.",
                  "Shifts data bits into the receive register.", "Checks the stop bit and presents the byte."]
        return Mod(name, ports, body, hl, det, blocks)
    body = ["localparam IDLE = 2'd0, START = 2'd1, DATA = 2'd2, STOP = 2'd3;", f"localparam CLKS_PER_BIT = {clks};",
            f"{c.reg()} [1:0] st;", f"{c.reg()} [{cw-1}:0] cnt;", f"{c.reg()} [2:0] bitn;", f"{c.reg()} [1:0] sync;",
            f"{c.wire()} rx_s = sync[1];"]
    body += c.seq(["st <= IDLE;", "cnt <= 0;", "bitn <= 0;", "sync <= 2'b11;", f"{q} <= 0;", f"{v} <= 1'b0;"] + extra_r,
                  [f"sync <= {{sync[0], {rx}}};", f"{v} <= 1'b0;"] + ([f"{fe} <= 1'b0;"] if style == "midbit_err" else []) + [
                      "case (st)", "  IDLE: begin", "    cnt <= 0;", "    bitn <= 0;", "    if (!rx_s) st <= START;", "  end",
                      "  START: begin", "    if (cnt == CLKS_PER_BIT/2 - 1) begin", "      cnt <= 0;", "      st <= rx_s ? IDLE : DATA;",
                      "    end else cnt <= cnt + 1'b1;", "  end", "  DATA: begin", "    if (cnt == CLKS_PER_BIT - 1) begin", "      cnt <= 0;",
                      f"      {q} <= {{rx_s, {q}[7:1]}};", "      bitn <= bitn + 1'b1;", "      if (bitn == 3'd7) st <= STOP;",
                      "    end else cnt <= cnt + 1'b1;", "  end", "  STOP: begin", "    if (cnt == CLKS_PER_BIT - 1) begin"] + extra_stop + [
                      "      st <= IDLE;", "      cnt <= 0;", "    end else cnt <= cnt + 1'b1;", "  end", "  default: st <= IDLE;", "endcase"])
    hl = f"A UART receiver for 8N1 frames at {clks} clocks per bit that outputs each byte on {q} with a valid pulse {v}."
    det = (f"{name} synchronises {rx} with two flip-flops and waits for a falling edge. It checks the start bit in the middle of its "
           f"period (after CLKS_PER_BIT/2 cycles) and then samples eight data bits, LSB first, one bit period apart, i.e. near the "
           f"middle of each bit. After the stop bit it pulses {v}"
           + (f" if the stop bit is high, otherwise it pulses {fe} for a framing error" if style == "midbit_err" else "")
           + f". Reset is {c.rdesc()}.")
    blocks = ["Defines the receiver states and the bit period.", f"Synchronises {rx}.", "Detects and validates the start bit.",
              f"Samples eight data bits into {q}.", "Checks the stop bit and signals completion."]
    return Mod(name, ports, body, hl, det, blocks)


@family("protocol", 3)
def fam_spi(c: Ctx, i: int) -> Mod:
    style = ["mode0", "mode0_div", "mode3_16"][i]
    w = 16 if style == "mode3_16" else 8
    st, d = c.p(c.pick("start", "go", "xfer")), c.p(c.pick("tx_byte", "mosi_data", "wdata"))
    q, dn = c.p(c.pick("rx_byte", "miso_data", "rdata"), "output"), c.p(c.pick("done", "xfer_done"), "output")
    sclk, mosi, miso, csn = c.p("sclk", "output"), c.p("mosi", "output"), c.p("miso"), c.p(c.pick("cs_n", "ss_n"), "output")
    name = f"{c.pick('spi_master', 'spim', 'spi_ctrl')}_{style}"
    half = c.pick(2, 4, 8)
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, st), Port("input", w, d), Port("input", 1, miso),
             Port("output", 1, sclk, True), Port("output", 1, mosi), Port("output", 1, csn, True), Port("output", w, q, True), Port("output", 1, dn, True)]
    cpol = 1 if style == "mode3_16" else 0
    body = [f"{c.reg()} [{w-1}:0] sh;", f"{c.reg()} [{clog2(w+1)-1}:0] nb;", f"{c.reg()} [{clog2(half)}:0] div;", f"{c.reg()} active;",
            f"assign {mosi} = sh[{w-1}];", f"{c.wire()} edge_now = (div == {half - 1});"]
    lead, trail = ("sample", "shift") if cpol == 0 else ("shift", "sample")
    body += c.seq(["sh <= 0;", "nb <= 0;", "div <= 0;", "active <= 1'b0;", f"{sclk} <= 1'b{cpol};", f"{csn} <= 1'b1;", f"{q} <= 0;", f"{dn} <= 1'b0;"],
                  [f"{dn} <= 1'b0;", "if (!active) begin", f"  if ({st}) begin", f"    sh <= {d};", "    nb <= 0;", "    div <= 0;", "    active <= 1'b1;",
                   f"    {csn} <= 1'b0;", "  end", "end else begin", "  div <= edge_now ? 0 : div + 1'b1;", "  if (edge_now) begin",
                   f"    {sclk} <= ~{sclk};", f"    if ({sclk} == 1'b{cpol}) begin", f"      {q} <= {{{q}[{w-2}:0], {miso}}};", "    end else begin",
                   f"      sh <= {{sh[{w-2}:0], 1'b0}};", "      nb <= nb + 1'b1;", f"      if (nb == {w-1}) begin", "        active <= 1'b0;",
                   f"        {csn} <= 1'b1;", f"        {dn} <= 1'b1;", "      end", "    end", "  end", "end"])
    mode = "mode 3 (CPOL=1, CPHA=1)" if cpol else "mode 0 (CPOL=0, CPHA=0)"
    hl = f"An SPI master that exchanges one {w}-bit word MSB first in {mode}."
    det = (f"{name} asserts {csn} low when {st} arrives, then toggles {sclk} every {half} system clocks. MOSI is driven from the MSB "
           f"of a shift register; MISO is sampled on the first edge of each SCLK period and the register shifts on the second. After "
           f"{w} bits {csn} returns high and {dn} pulses with the received word on {q}. Reset is {c.rdesc()}.")
    blocks = ["Declares the shift register, bit counter and clock divider.", f"Starts a transfer and lowers {csn} on {st}.",
              f"Toggles {sclk} at the divided rate.", "Samples MISO on the leading edge and shifts MOSI on the trailing edge.", f"Ends the transfer and pulses {dn}."]
    return Mod(name, ports, body, hl, det, blocks)


@family("protocol", 3)
def fam_i2c_det(c: Ctx, i: int) -> Mod:
    style = ["start_stop", "busy", "bit_count"][i]
    scl, sda = c.p(c.pick("scl", "scl_in")), c.p(c.pick("sda", "sda_in"))
    sp, pp = c.p(c.pick("start_det", "start", "s_cond"), "output"), c.p(c.pick("stop_det", "stop", "p_cond"), "output")
    name = f"{c.pick('i2c', 'iic', 'twi')}_{style}_detector"
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, scl), Port("input", 1, sda), Port("output", 1, sp), Port("output", 1, pp)]
    body = [f"{c.reg()} [2:0] scl_q, sda_q;"]
    body += c.seq(["scl_q <= 3'b111;", "sda_q <= 3'b111;"], [f"scl_q <= {{scl_q[1:0], {scl}}};", f"sda_q <= {{sda_q[1:0], {sda}}};"])
    body += [f"{c.wire()} scl_hi = scl_q[2] & scl_q[1];", f"assign {sp} = scl_hi & sda_q[2] & ~sda_q[1];", f"assign {pp} = scl_hi & ~sda_q[2] & sda_q[1];"]
    extra = ""
    blocks = [f"Synchronises {scl} and {sda} with three-stage shift registers.", f"Detects SDA falling while SCL is high as START on {sp}.",
              f"Detects SDA rising while SCL is high as STOP on {pp}."]
    if style == "busy":
        bz = c.p(c.pick("bus_busy", "busy"), "output")
        ports.append(Port("output", 1, bz, True))
        body += c.seq([f"{bz} <= 1'b0;"], [f"if ({sp}) {bz} <= 1'b1;", f"else if ({pp}) {bz} <= 1'b0;"])
        extra = f" A bus-busy flag {bz} is set by START and cleared by STOP."
        blocks.append(f"Tracks the bus busy state on {bz}.")
    elif style == "bit_count":
        nb = c.p(c.pick("bit_cnt", "nbits"), "output")
        ports.append(Port("output", 4, nb, True))
        body += [f"{c.wire()} scl_rise = ~scl_q[2] & scl_q[1];"]
        body += c.seq([f"{nb} <= 4'd0;"], [f"if ({sp} || {pp}) {nb} <= 4'd0;", f"else if (scl_rise) {nb} <= ({nb} == 4'd8) ? 4'd0 : {nb} + 1'b1;"])
        extra = f" It also counts SCL rising edges since the last START in {nb}, wrapping after the ninth (acknowledge) bit."
        blocks.append(f"Counts SCL rising edges within a byte on {nb}.")
    hl = f"Detects I2C START and STOP conditions on the {scl}/{sda} lines by oversampling them with the system clock."
    det = (f"{name} samples the open-drain I2C lines with the fast clock {c.clk}. A START is SDA going low while SCL is high and a STOP "
           f"is SDA going high while SCL is high; both produce one-cycle pulses.{extra} Reset is {c.rdesc()}.")
    return Mod(name, ports, body, hl, det, blocks)


@family("protocol", 4)
def fam_apb(c: Ctx, i: int) -> Mod:
    nreg = [4, 8, 4, 2][i]
    style = ["plain", "ro_status", "w1c", "ctrl_irq"][i]
    aw = c.pick(8, 12)
    pre = ["p", "apb_", "apb_", "p"][i]
    sel, en, wr, ad, wd, rd, rdy, err = (pre + x for x in ("sel", "enable", "write", "addr", "wdata", "rdata", "ready", "slverr"))
    if pre == "apb_":
        sel, en, wr, ad, wd, rd, rdy, err = ("apb_" + x for x in ("psel", "penable", "pwrite", "paddr", "pwdata", "prdata", "pready", "pslverr"))
    else:
        sel, en, wr, ad, wd, rd, rdy, err = "psel", "penable", "pwrite", "paddr", "pwdata", "prdata", "pready", "pslverr"
    clk, rstn = ("pclk", "presetn") if pre == "p" else ("apb_clk", "apb_rst_n")
    name = f"apb_{c.pick('regs', 'regblock', 'csr')}_{style}_{nreg}"
    ports = [Port("input", 1, clk), Port("input", 1, rstn), Port("input", 1, sel), Port("input", 1, en), Port("input", 1, wr),
             Port("input", aw, ad), Port("input", 32, wd), Port("output", 32, rd, True), Port("output", 1, rdy), Port("output", 1, err)]
    ia = clog2(nreg)
    body = [f"{c.reg()} [31:0] r [0:{nreg-1}];", "integer k;", f"{c.wire()} [{ia-1}:0] idx = {ad}[{ia+1}:2];",
            f"{c.wire()} in_range = ({ad}[{aw-1}:{ia+2}] == 0);", f"{c.wire()} wr_en = {sel} && {en} && {wr} && in_range;",
            f"assign {rdy} = 1'b1;", f"assign {err} = {sel} && {en} && !in_range;"]
    extra_ports = []
    if style == "ro_status":
        stv = c.p(c.pick("status_in", "hw_status"))
        extra_ports = [Port("input", 32, stv)]
    elif style == "w1c":
        evt = c.p(c.pick("events", "hw_events"))
        extra_ports = [Port("input", 32, evt)]
    elif style == "ctrl_irq":
        irq, evt = c.p(c.pick("irq", "intr"), "output"), c.p(c.pick("evt_in", "hw_evt"))
        extra_ports = [Port("input", 1, evt), Port("output", 1, irq)]
    ports = ports[:2] + extra_ports[:1] + ports[2:] + extra_ports[1:]
    ff = f"{'always_ff' if c.sv else 'always'} @(posedge {clk} or negedge {rstn})"
    body += [f"{ff} begin", f"  if (!{rstn}) begin", f"    for (k = 0; k < {nreg}; k = k + 1) r[k] <= 32'd0;", "  end else begin"]
    if style == "plain":
        body += ["    if (wr_en) r[idx] <= " + wd + ";"]
        det_x = "All registers are read/write."
    elif style == "ro_status":
        body += [f"    if (wr_en && idx != 0) r[idx] <= {wd};", f"    r[0] <= {stv};"]
        det_x = f"Register 0 is a read-only status register that samples {stv} every cycle; the others are read/write."
    elif style == "w1c":
        body += [f"    r[0] <= (r[0] & ~((wr_en && idx == 0) ? {wd} : 32'd0)) | {evt};", f"    if (wr_en && idx != 0) r[idx] <= {wd};"]
        det_x = f"Register 0 collects events from {evt} as sticky bits that software clears by writing ones (write-one-to-clear)."
    else:
        body += [f"    if (wr_en) r[idx] <= {wd};", f"    if ({evt}) r[1][0] <= 1'b1;"]
        det_x = f"Register 0 bit 0 is an interrupt enable and register 1 bit 0 a pending flag set by {evt}; {irq} is their AND."
    body += ["  end", "end", f"{c.comb()} begin", f"  {rd} = 32'd0;", f"  if ({sel} && !{wr} && in_range) {rd} = r[idx];", "end"]
    if style == "ctrl_irq":
        body.append(f"assign {irq} = r[0][0] & r[1][0];")
    hl = f"An APB slave with {nreg} 32-bit registers at word addresses 0x00..0x{4*(nreg-1):02X}."
    det = (f"{name} decodes APB accesses: a write happens in the access phase ({sel} and {en} and {wr}) and reads return the addressed "
           f"register on {rd}. {rdy} is tied high (no wait states) and {err} flags accesses outside the register range. {det_x} "
           f"The registers are cleared by the active-low reset {rstn}.")
    blocks = ["Declares the register array and decodes the word index.", "Checks the address range and forms the write enable.",
              "Updates registers on writes and hardware events.", f"Returns read data on {rd}."]
    return Mod(name, ports, body, hl, det, blocks)


@family("protocol", 5)
def fam_arbiter(c: Ctx, i: int) -> Mod:
    n = [4, 2, 8, 3, 4][i]
    style = ["rr", "rr2", "fixed_reg", "rr", "lock"][i]
    req, gnt = c.p(c.pick("req", "request", "bid")), c.p(c.pick("gnt", "grant", "ack"), "output")
    name = f"{c.pick('arbiter', 'arb', 'bus_arb')}_{style}_{n}"
    ports = [c.clk_port(), c.rst_port(), Port("input", n, req), Port("output", n, gnt, True)]
    body: list[str] = []
    if style in ("rr", "rr2"):
        body += [f"{c.reg()} [{n-1}:0] last;", f"{c.reg()} [{n-1}:0] nxt;", "integer k, j;", f"{c.comb()} begin", f"  nxt = {n}'d0;",
                 f"  for (k = {n}; k >= 1; k = k - 1) begin", "    j = 0;", "    while (j < " + str(n) + ") begin", "      if (last[j]) begin",
                 f"        if ({req}[(j + k) % {n}]) begin", f"          nxt = {n}'d0;", f"          nxt[(j + k) % {n}] = 1'b1;", "        end", "      end",
                 "      j = j + 1;", "    end", "  end", "end"]
        body += c.seq([f"last <= {n}'d1 << {n-1};", f"{gnt} <= {n}'d0;"], [f"{gnt} <= nxt;", "if (|nxt) last <= nxt;"])
        hl = f"A {n}-way round-robin arbiter with registered one-hot grants."
        det = (f"{name} remembers the last granted requester and searches the request vector {req} starting just after it, wrapping "
               f"around, so every active requester is served within {n} grants. The one-hot grant {gnt} is registered and updated every "
               f"cycle. Reset is {c.rdesc()}; after reset requester 0 has the highest priority.")
        blocks = ["Stores the last grant.", "Searches for the next requester after the last grant in circular order.", "Registers the grant and updates the pointer."]
    elif style == "fixed_reg":
        body += [f"{c.wire()} [{n-1}:0] pick = {req} & (~{req} + 1'b1);"]
        body += c.seq([f"{gnt} <= {n}'d0;"], [f"{gnt} <= pick;"])
        hl = f"A fixed-priority {n}-input arbiter where bit 0 has the highest priority, with a registered grant."
        det = f"{name} isolates the lowest set bit of {req} with req & -req and registers it as the one-hot grant {gnt}. Lower indices always win, so starvation is possible. Reset is {c.rdesc()}."
        blocks = ["Isolates the lowest set request bit.", f"Registers it on {gnt}."]
    else:
        body += [f"{c.reg()} locked;", f"{c.wire()} [{n-1}:0] pick = {req} & (~{req} + 1'b1);"]
        body += c.seq([f"{gnt} <= {n}'d0;", "locked <= 1'b0;"], ["if (locked) begin", f"  if (({gnt} & {req}) == {n}'d0) begin",
                                                                 "    locked <= 1'b0;", f"    {gnt} <= {n}'d0;", "  end",
                                                                 "end else if (|pick) begin", f"  {gnt} <= pick;", "  locked <= 1'b1;", "end"])
        hl = f"A {n}-input arbiter that keeps the grant until the winner drops its request."
        det = (f"{name} picks the lowest-numbered active request and locks the grant {gnt} on it for as long as that requester keeps "
               f"its request high, which suits multi-cycle bus transactions. When the request falls the bus is released for one cycle. Reset is {c.rdesc()}.")
        blocks = ["Picks the lowest-numbered request.", "Locks the grant while the owner keeps requesting.", "Releases the grant when the request drops."]
    return Mod(name, ports, body, hl, det, blocks)


@family("protocol", 5)
def fam_crc(c: Ctx, i: int) -> Mod:
    kinds = [("crc8", 8, 0x07, 0x00), ("crc16_ccitt", 16, 0x1021, 0xFFFF), ("crc32", 32, 0x04C11DB7, 0xFFFFFFFF),
             ("crc5_usb", 5, 0x05, 0x1F), ("crc16_ibm", 16, 0x8005, 0x0000)]
    kname, w, poly, init = kinds[i]
    style = ["serial", "parallel8", "parallel8", "serial", "serial_clr"][i]
    d = c.p(c.pick("din", "bit_in", "data")) if "serial" in style else c.p(c.pick("data", "byte_in", "din"))
    en = c.p(c.pick("en", "valid", "ce"))
    q = c.p(c.pick("crc", "crc_out", "checksum"), "output")
    name = f"{kname}_{style}{c.pick('', '_gen', '_calc')}"
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, en), Port("input", 1 if "serial" in style else 8, d), Port("output", w, q, True)]
    body = [f"localparam [{w-1}:0] POLY = {w}'h{poly:X};", f"localparam [{w-1}:0] INIT = {w}'h{init:X};"]
    if "serial" in style:
        body += [f"{c.wire()} fb = {q}[{w-1}] ^ {d};"]
        upd = [f"if ({en}) {q} <= {{{q}[{w-2}:0], 1'b0}} ^ (fb ? POLY : {w}'d0);"]
        if style == "serial_clr":
            clr = c.p(c.pick("clr", "restart"))
            ports.insert(2, Port("input", 1, clr))
            upd = [f"if ({clr}) {q} <= INIT;", "else " + upd[0]]
        body += c.seq([f"{q} <= INIT;"], upd)
        how = f"one input bit per enabled clock: the feedback is the CRC MSB XOR {d}, and when it is 1 the shifted register is XORed with the polynomial"
    else:
        body += [f"function [{w-1}:0] step8;", f"  input [{w-1}:0] cur;", "  input [7:0] b;", "  integer k;", f"  reg [{w-1}:0] t;", "  begin",
                 "    t = cur;", "    for (k = 7; k >= 0; k = k - 1)", f"      t = {{t[{w-2}:0], 1'b0}} ^ ((t[{w-1}] ^ b[k]) ? POLY : {w}'d0);",
                 "    step8 = t;", "  end", "endfunction"]
        body += c.seq([f"{q} <= INIT;"], [f"if ({en}) {q} <= step8({q}, {d});"])
        how = "a whole byte per enabled clock (MSB first) by unrolling the bitwise update eight times in a function"
    hl = f"Computes a {kname.upper().replace('_', '-')} checksum (polynomial 0x{poly:X}, init 0x{init:X}) over the input stream."
    det = (f"{name} keeps a {w}-bit CRC register initialised to 0x{init:X} and updates it with {how}. No final XOR or bit reflection "
           f"is applied; {q} is the raw register value. Reset is {c.rdesc()}.")
    blocks = ["Defines the polynomial and initial value.", "Computes the next CRC from the current value and the input.", f"Updates {q} when {en} is high."]
    if style == "parallel8":
        blocks.insert(1, "Defines a function that processes eight bits.")
    return Mod(name, ports, body, hl, det, blocks)


@family("protocol", 3)
def fam_timer(c: Ctx, i: int) -> Mod:
    style = ["watchdog", "oneshot", "periodic_irq"][i]
    w = c.pick(16, 24, 32)
    name = f"{c.pick('timer', 'tmr', 'wdt')}_{style}_{w}"
    ports = [c.clk_port(), c.rst_port()]
    body = [f"{c.reg()} [{w-1}:0] cnt;"]
    if style == "watchdog":
        kick, to = c.p(c.pick("kick", "feed", "pet")), c.p(c.pick("timeout", "wdt_rst", "bark"), "output")
        lim = c.p(c.pick("limit", "window"))
        ports += [Port("input", 1, kick), Port("input", w, lim), Port("output", 1, to, True)]
        body += c.seq(["cnt <= 0;", f"{to} <= 1'b0;"], [f"if ({kick}) begin", "  cnt <= 0;", f"  {to} <= 1'b0;", f"end else if (cnt >= {lim}) begin",
                                                        f"  {to} <= 1'b1;", "end else cnt <= cnt + 1'b1;"])
        hl = f"A watchdog timer that raises {to} if {kick} is not pulsed within {lim} cycles."
        det = f"{name} counts clock cycles since the last {kick}. Each kick restarts the count and clears {to}; if the count reaches {lim} the timeout output is set and stays set until the next kick or reset ({c.rdesc()})."
        blocks = ["Restarts the counter on a kick.", f"Compares the count with {lim}.", f"Latches the timeout on {to}."]
    elif style == "oneshot":
        trig, dur, o = c.p(c.pick("trigger", "fire")), c.p(c.pick("duration", "width")), c.p(c.pick("pulse", "active"), "output")
        ports += [Port("input", 1, trig), Port("input", w, dur), Port("output", 1, o)]
        body += [f"assign {o} = (cnt != 0);"]
        body += c.seq(["cnt <= 0;"], [f"if ({trig} && cnt == 0) cnt <= {dur};", "else if (cnt != 0) cnt <= cnt - 1'b1;"])
        hl = f"A non-retriggerable one-shot that outputs a pulse of {dur} cycles after {trig}."
        det = f"{name} loads {dur} into a down counter on {trig} when idle and holds {o} high while the counter is non-zero. Triggers during the pulse are ignored. Reset is {c.rdesc()}."
        blocks = ["Loads the duration on a trigger while idle.", "Counts down to zero.", f"Drives {o} while counting."]
    else:
        per, en, irq, ack = c.p(c.pick("period", "reload")), c.p(c.pick("en", "run")), c.p(c.pick("irq", "int_req"), "output"), c.p(c.pick("irq_ack", "clr_int"))
        ports += [Port("input", 1, en), Port("input", w, per), Port("input", 1, ack), Port("output", 1, irq, True)]
        body += c.seq(["cnt <= 0;", f"{irq} <= 1'b0;"], [f"if ({ack}) {irq} <= 1'b0;", f"if ({en}) begin", f"  if (cnt >= {per}) begin", "    cnt <= 0;",
                                                         f"    {irq} <= 1'b1;", "  end else cnt <= cnt + 1'b1;", "end"])
        hl = f"A periodic timer that sets the interrupt {irq} every {per}+1 enabled cycles until acknowledged."
        det = f"{name} counts while {en} is high and restarts when the count reaches {per}, setting the sticky interrupt {irq}; {ack} clears it (a new period end in the same cycle wins). Reset is {c.rdesc()}."
        blocks = ["Clears a pending interrupt on acknowledge.", "Counts enabled cycles.", "Sets the interrupt at the end of each period."]
    return Mod(name, ports, body, hl, det, blocks)


@family("protocol", 3)
def fam_cdc(c: Ctx, i: int) -> Mod:
    style = ["pulse_toggle", "bus_mux", "reset_sync"][i]
    a_clk, b_clk = c.pick(("clk_a", "clk_b"), ("src_clk", "dst_clk"), ("wclk", "rclk"))
    body: list[str] = []
    if style == "pulse_toggle":
        pin, pout = c.p(c.pick("pulse_in", "src_pulse")), c.p(c.pick("pulse_out", "dst_pulse"), "output")
        ra, rb = c.p("rst_a_n"), c.p("rst_b_n")
        ports = [Port("input", 1, a_clk), Port("input", 1, ra), Port("input", 1, pin), Port("input", 1, b_clk), Port("input", 1, rb), Port("output", 1, pout)]
        body += [f"{c.reg()} tog;", f"{c.reg()} [2:0] sync_b;",
                 f"always @(posedge {a_clk} or negedge {ra})", f"  if (!{ra}) tog <= 1'b0;", f"  else if ({pin}) tog <= ~tog;",
                 f"always @(posedge {b_clk} or negedge {rb})", f"  if (!{rb}) sync_b <= 3'b000;", "  else sync_b <= {sync_b[1:0], tog};",
                 f"assign {pout} = sync_b[2] ^ sync_b[1];"]
        name = f"pulse_sync_toggle_{c.pick('a2b', 'x', 'cdc')}"
        hl = f"Transfers single-cycle pulses from the {a_clk} domain to the {b_clk} domain with a toggle synchronizer."
        det = (f"{name} flips a toggle flop in the source domain for each pulse on {pin}. The toggle level crosses into the {b_clk} "
               f"domain through two synchroniser flops, and a third flop detects the change, producing one pulse on {pout}. Source pulses "
               f"must be spaced by a few destination clocks. Each side has its own active-low asynchronous reset.")
        blocks = ["Toggles a level in the source domain on each pulse.", "Synchronises the level into the destination domain.", f"Detects level changes to regenerate {pout}."]
    elif style == "bus_mux":
        w = c.pick(8, 16)
        d, ld = c.p(c.pick("src_data", "din")), c.p(c.pick("src_load", "valid_a"))
        q, v = c.p(c.pick("dst_data", "dout"), "output"), c.p(c.pick("dst_valid", "valid_b"), "output")
        rst = c.p(c.pick("rst", "reset"))
        ports = [Port("input", 1, a_clk), Port("input", 1, b_clk), Port("input", 1, rst), Port("input", w, d), Port("input", 1, ld),
                 Port("output", w, q, True), Port("output", 1, v)]
        body += [f"{c.reg()} [{w-1}:0] hold;", f"{c.reg()} flag;", f"{c.reg()} [2:0] fs;",
                 f"always @(posedge {a_clk} or posedge {rst})", "  if (" + rst + ") begin", "    hold <= 0;", "    flag <= 1'b0;", "  end else if (" + ld + ") begin",
                 f"    hold <= {d};", "    flag <= ~flag;", "  end",
                 f"always @(posedge {b_clk} or posedge {rst})", f"  if ({rst}) begin", "    fs <= 3'b000;", f"    {q} <= 0;", "  end else begin",
                 "    fs <= {fs[1:0], flag};", f"    if (fs[2] ^ fs[1]) {q} <= hold;", "  end", f"assign {v} = fs[2] ^ fs[1];"]
        name = f"cdc_bus_handoff_{w}"
        hl = f"Moves a {w}-bit word from the {a_clk} domain to the {b_clk} domain using a held register and a synchronised toggle flag."
        det = (f"{name} captures {d} into a holding register on {ld} and toggles a flag. The flag is synchronised in the destination domain; "
               f"when its edge is seen the stable holding register is copied to {q} and {v} pulses. The data itself never passes through "
               f"a synchroniser, which is safe because it is stable while the flag crosses. {rst} is an active-high asynchronous reset for both domains.")
        blocks = ["Holds the source word and toggles the flag in the source domain.", "Synchronises the flag into the destination domain.",
                  f"Copies the held word to {q} on a flag change and pulses {v}."]
    else:
        arst = c.p(c.pick("arst_n", "ext_rst_n", "por_n"))
        srst = c.p(c.pick("rst_sync_n", "sys_rst_n"), "output")
        k = c.pick(2, 3)
        ports = [Port("input", 1, b_clk), Port("input", 1, arst), Port("output", 1, srst)]
        body += [f"{c.reg()} [{k-1}:0] chain;", f"always @(posedge {b_clk} or negedge {arst})", f"  if (!{arst}) chain <= {k}'b0;",
                 f"  else chain <= {{chain[{k-2}:0], 1'b1}};", f"assign {srst} = chain[{k-1}];"]
        name = f"reset_sync_{k}ff"
        hl = f"A reset synchronizer: asserts {srst} asynchronously and releases it synchronously to {b_clk}."
        det = (f"{name} clears a {k}-flop chain immediately when {arst} goes low, so the output reset asserts without a clock. When "
               f"{arst} is released, ones shift through the chain and {srst} deasserts {k} clock edges later, aligned to {b_clk}, "
               f"avoiding recovery/removal violations in downstream flops.")
        blocks = ["Clears the chain asynchronously.", "Shifts ones in after release.", f"Drives {srst} from the last stage."]
    return Mod(name, ports, body, hl, det, blocks)


# =============================================================================================
# Miscellaneous peripherals and coding blocks
# =============================================================================================
@family("protocol", 3)
def fam_intc(c: Ctx, i: int) -> Mod:
    n = [8, 4, 16][i]
    style = ["mask_pending", "priority", "level_edge"][i]
    src = c.p(c.pick("irq_src", "int_in", "sources"))
    msk = c.p(c.pick("mask", "int_en", "enable_mask"))
    ack = c.p(c.pick("ack", "clear", "int_clr"))
    irq = c.p(c.pick("irq", "cpu_int", "int_out"), "output")
    name = f"{c.pick('intc', 'irq_ctrl', 'pic')}_{style}_{n}"
    ports = [c.clk_port(), c.rst_port(), Port("input", n, src), Port("input", n, msk), Port("input", n, ack)]
    body = [f"{c.reg()} [{n-1}:0] pend;", f"{c.reg()} [{n-1}:0] src_q;"]
    if style == "level_edge":
        mode = c.p(c.pick("edge_mode", "trig_edge"))
        ports.insert(5, Port("input", n, mode))
        body += [f"{c.wire()} [{n-1}:0] hit = ({mode} & {src} & ~src_q) | (~{mode} & {src});"]
    else:
        body += [f"{c.wire()} [{n-1}:0] hit = {src} & ~src_q;"]
    body += c.seq([f"pend <= {n}'d0;", f"src_q <= {n}'d0;"], [f"src_q <= {src};", f"pend <= (pend & ~{ack}) | hit;"])
    body += [f"{c.wire()} [{n-1}:0] active = pend & {msk};", f"assign {irq} = |active;"]
    ports.append(Port("output", 1, irq))
    if style == "priority":
        idw = clog2(n)
        vec = c.p(c.pick("vector", "irq_id"), "output")
        ports.append(Port("output", idw, vec, True))
        body += ["integer k;", f"{c.comb()} begin", f"  {vec} = {idw}'d0;", f"  for (k = {n-1}; k >= 0; k = k - 1)", f"    if (active[k]) {vec} = k;", "end"]
    hl = f"An interrupt controller for {n} sources with per-source mask {msk}, pending bits and a combined request {irq}."
    det = (f"{name} latches interrupt events from {src} into pending bits"
           + (f"; each source is edge-triggered when its bit of {mode} is set and level-triggered otherwise" if style == "level_edge" else " on rising edges")
           + f". A pending bit stays set until its bit of {ack} is written. {irq} is the OR of the pending bits enabled by {msk}"
           + (f", and {vec} gives the lowest-numbered active source" if style == "priority" else "") + f". Reset is {c.rdesc()}.")
    blocks = ["Registers the previous source levels.", "Detects new events.", "Sets and clears the pending bits.", f"Masks the pending bits and drives {irq}."]
    if style == "priority":
        blocks.append("Encodes the lowest active source number.")
    return Mod(name, ports, body, hl, det, blocks)


@family("protocol", 3)
def fam_addrdec(c: Ctx, i: int) -> Mod:
    aw = [16, 32, 12][i]
    regions = [[("ROM", 0x0000, 0x3FFF), ("RAM", 0x4000, 0x7FFF), ("UART", 0x8000, 0x80FF), ("GPIO", 0x8100, 0x81FF)],
               [("BOOT", 0x00000000, 0x0000FFFF), ("SRAM", 0x20000000, 0x2003FFFF), ("PERIPH", 0x40000000, 0x4FFFFFFF)],
               [("REGS", 0x000, 0x0FF), ("BUF0", 0x400, 0x7FF), ("BUF1", 0x800, 0xBFF), ("LUT", 0xC00, 0xFFF), ("DBG", 0x100, 0x10F)]][i]
    a = c.p(c.pick("addr", "bus_addr", "haddr"))
    vld = c.p(c.pick("valid", "sel", "access"))
    cs = c.p(c.pick("cs", "slave_sel", "hsel"), "output")
    err = c.p(c.pick("decode_err", "no_slave", "miss"), "output")
    n = len(regions)
    name = f"{c.pick('addr_decoder', 'memmap_dec', 'bus_decode')}_{n}slv_{aw}"
    ports = [Port("input", aw, a), Port("input", 1, vld), Port("output", n, cs), Port("output", 1, err)]
    hd = (aw + 3) // 4
    body = []
    for nm, lo, hi in regions:
        body.append(f"localparam [{aw-1}:0] {nm}_LO = {aw}'h{lo:0{hd}X}, {nm}_HI = {aw}'h{hi:0{hd}X};")
    for k, (nm, _lo, _hi) in enumerate(regions):
        body.append(f"assign {cs}[{k}] = {vld} && ({a} >= {nm}_LO) && ({a} <= {nm}_HI);")
    body.append(f"assign {err} = {vld} && ~|{cs};")
    mm = "; ".join(f"{nm} 0x{lo:X}-0x{hi:X}" for nm, lo, hi in regions)
    hl = f"An address decoder that maps the {aw}-bit address {a} onto {n} chip selects and flags unmapped accesses."
    det = (f"{name} compares {a} against the inclusive ranges of the memory map ({mm}). While {vld} is high, bit k of {cs} is set "
           f"when the address falls into region k; {err} is raised when no region matches.")
    blocks = ["Defines the lower and upper bound of every region.", f"Compares {a} with each range to form {cs}.", f"Flags unmapped addresses on {err}."]
    return Mod(name, ports, body, hl, det, blocks)


@family("coding", 3)
def fam_hamming(c: Ctx, i: int) -> Mod:
    style = ["enc74", "dec74", "enc_secded8"][i]
    body: list[str] = []
    if style == "enc74":
        d, cw = c.p(c.pick("data", "d", "nibble")), c.p(c.pick("code", "cw", "codeword"), "output")
        ports = [Port("input", 4, d), Port("output", 7, cw)]
        body += [f"{c.wire()} p1 = {d}[0] ^ {d}[1] ^ {d}[3];", f"{c.wire()} p2 = {d}[0] ^ {d}[2] ^ {d}[3];", f"{c.wire()} p4 = {d}[1] ^ {d}[2] ^ {d}[3];",
                 f"assign {cw} = {{{d}[3], {d}[2], {d}[1], p4, {d}[0], p2, p1}};"]
        name = c.pick("hamming74_enc", "ham74_encoder")
        hl = f"A Hamming(7,4) encoder that adds three parity bits to the 4-bit input {d}."
        det = f"{name} computes parity bits p1, p2 and p4 over data bit groups and places them at codeword positions 1, 2 and 4 (bits 0, 1, 3 of {cw}), with the data bits at positions 3, 5, 6 and 7."
        blocks = ["Computes the three parity bits.", f"Interleaves parity and data into {cw}."]
    elif style == "dec74":
        cw, d = c.p(c.pick("code", "rx_code")), c.p(c.pick("data", "corrected"), "output")
        er = c.p(c.pick("corrected_flag", "err_fixed", "single_err"), "output")
        ports = [Port("input", 7, cw), Port("output", 4, d), Port("output", 1, er)]
        body += [f"{c.wire()} [2:0] syn;", f"assign syn[0] = {cw}[0] ^ {cw}[2] ^ {cw}[4] ^ {cw}[6];", f"assign syn[1] = {cw}[1] ^ {cw}[2] ^ {cw}[5] ^ {cw}[6];",
                 f"assign syn[2] = {cw}[3] ^ {cw}[4] ^ {cw}[5] ^ {cw}[6];", f"{c.reg()} [6:0] fixed;", f"{c.comb()} begin", f"  fixed = {cw};",
                 "  if (syn != 3'd0) fixed[syn - 1] = ~fixed[syn - 1];", "end", f"assign {d} = {{fixed[6], fixed[5], fixed[4], fixed[2]}};", f"assign {er} = (syn != 3'd0);"]
        name = c.pick("hamming74_dec", "ham74_decoder")
        hl = f"A Hamming(7,4) decoder that corrects any single-bit error in {cw}."
        det = f"{name} recomputes the three parity checks to form a syndrome. A non-zero syndrome is the 1-based position of the flipped bit, which is inverted before the four data bits are extracted onto {d}; {er} reports that a correction happened."
        blocks = ["Computes the 3-bit syndrome.", "Flips the bit addressed by the syndrome.", "Extracts the data bits and flags the correction."]
    else:
        d, cw = c.p(c.pick("data", "byte_in")), c.p(c.pick("ecc_word", "code"), "output")
        ports = [Port("input", 8, d), Port("output", 13, cw)]
        body += [f"{c.wire()} [11:0] pos;", f"assign pos = {{{d}[7:4], 1'b0, {d}[3:1], 1'b0, {d}[0], 2'b00}};",
                 f"{c.wire()} p1 = pos[2] ^ pos[4] ^ pos[6] ^ pos[8] ^ pos[10];", f"{c.wire()} p2 = pos[2] ^ pos[5] ^ pos[6] ^ pos[9] ^ pos[10];",
                 f"{c.wire()} p4 = pos[4] ^ pos[5] ^ pos[6] ^ pos[11];", f"{c.wire()} p8 = pos[7] ^ pos[8] ^ pos[9] ^ pos[10] ^ pos[11];",
                 f"{c.wire()} [11:0] h = {{pos[11:8], p8, pos[6:4], p4, pos[2], p2, p1}};", f"assign {cw} = {{^h, h}};"]
        name = c.pick("secded_enc8", "ecc8_encoder")
        hl = f"A SECDED encoder that protects the byte {d} with four Hamming bits and an overall parity bit."
        det = f"{name} places the 8 data bits at the non-power-of-two positions of a 12-bit Hamming word, computes the parity bits for positions 1, 2, 4 and 8, and prepends an overall parity bit so the decoder can correct single and detect double errors. The 13-bit result is {cw}."
        blocks = ["Scatters the data bits to their Hamming positions.", "Computes the four Hamming parity bits.", "Builds the 12-bit word.", "Adds the overall parity bit."]
    return Mod(name, ports, body, hl, det, blocks)


@family("coding", 2)
def fam_manchester(c: Ctx, i: int) -> Mod:
    style = ["enc", "dec"][i]
    if style == "enc":
        d, v, o = c.p(c.pick("bit_in", "nrz")), c.p(c.pick("bit_valid", "en")), c.p(c.pick("line", "manch_out"), "output")
        ports = [c.clk_port(), c.rst_port(), Port("input", 1, d), Port("input", 1, v), Port("output", 1, o)]
        body = [f"{c.reg()} half, cur;"]
        body += c.seq(["half <= 1'b0;", "cur <= 1'b0;"], [f"if ({v}) begin", f"  cur <= {d};", "  half <= 1'b0;", "end else half <= ~half;"])
        body.append(f"assign {o} = cur ^ half;")
        name = c.pick("manchester_enc", "manch_encoder")
        hl = f"A Manchester encoder that outputs each data bit as a mid-bit transition on {o}."
        det = f"{name} takes a new bit on {v} and spends two clocks on it: the first half outputs the bit, the second half its complement (IEEE 802.3 convention, low-to-high for 0). Reset is {c.rdesc()}."
        blocks = ["Captures the data bit.", "Toggles the half-bit phase.", f"XORs bit and phase onto {o}."]
    else:
        ln = c.p(c.pick("line_in", "manch_in"))
        q, v = c.p(c.pick("bit_out", "nrz_out"), "output"), c.p(c.pick("bit_valid", "strobe"), "output")
        ports = [c.clk_port(), c.rst_port(), Port("input", 1, ln), Port("output", 1, q, True), Port("output", 1, v, True)]
        k = c.pick(8, 16)
        body = [f"{c.reg()} [1:0] s;", f"{c.reg()} [{clog2(k)}:0] t;", f"{c.wire()} trans = s[1] ^ s[0];"]
        body += c.seq(["s <= 2'b00;", "t <= 0;", f"{q} <= 1'b0;", f"{v} <= 1'b0;"],
                      [f"s <= {{s[0], {ln}}};", f"{v} <= 1'b0;", f"if (trans && t > {3*k//4 - 1}) begin", "  t <= 0;", f"  {q} <= s[0];", f"  {v} <= 1'b1;",
                       "end else t <= t + 1'b1;"])
        name = c.pick("manchester_dec", "manch_decoder")
        hl = f"A Manchester decoder that recovers bits from {ln} assuming {k} system clocks per bit."
        det = (f"{name} synchronises the line and times transitions. A transition seen more than three quarters of a bit period "
               f"after the previous mid-bit transition is the next mid-bit edge; the new line level is the decoded bit on {q} and {v} pulses. "
               f"Transitions at bit boundaries are ignored. Reset is {c.rdesc()}.")
        blocks = ["Synchronises the line and detects transitions.", "Times the distance since the last mid-bit edge.", f"Outputs the bit and pulses {v} on a mid-bit edge."]
    return Mod(name, ports, body, hl, det, blocks)


@family("memory", 2)
def fam_stack(c: Ctx, i: int) -> Mod:
    w, d = [(8, 8), (16, 16)][i]
    aw = clog2(d)
    push, pop = c.p(c.pick("push", "psh")), c.p(c.pick("pop", "pl"))
    di, top = c.p(c.pick("din", "push_data")), c.p(c.pick("top", "tos", "peek"), "output")
    full, empty = c.p(c.pick("full", "overflow_risk"), "output"), c.p(c.pick("empty", "is_empty"), "output")
    name = f"{c.pick('lifo', 'stack', 'hw_stack')}_{w}x{d}"
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, push), Port("input", 1, pop), Port("input", w, di),
             Port("output", w, top), Port("output", 1, full), Port("output", 1, empty)]
    body = [f"{c.reg()} [{w-1}:0] st [0:{d-1}];", f"{c.reg()} [{aw}:0] sp;", f"assign {empty} = (sp == 0);", f"assign {full} = (sp == {d});",
            f"assign {top} = {empty} ? {w}'d0 : st[sp - 1'b1];"]
    body += c.seq(["sp <= 0;"], [f"if ({push} && !{full}) begin", f"  st[sp[{aw-1}:0]] <= {di};", "  sp <= sp + 1'b1;", f"end else if ({pop} && !{empty}) begin",
                                 "  sp <= sp - 1'b1;", "end"])
    hl = f"A {d}-entry hardware stack (LIFO) of {w}-bit words with push, pop and a top-of-stack output."
    det = (f"{name} keeps a stack pointer sp counting stored entries. {push} writes {di} at sp and increments it unless full; {pop} "
           f"decrements it unless empty; push has priority when both are asserted. {top} shows the most recently pushed word (zero when empty). Reset is {c.rdesc()}.")
    blocks = ["Declares the storage and the stack pointer.", "Derives full, empty and the top output.", "Pushes and pops."]
    return Mod(name, ports, body, hl, det, blocks)


@family("memory", 2)
def fam_cam(c: Ctx, i: int) -> Mod:
    n, w = [(8, 16), (4, 32)][i]
    we, wi, wk = c.p(c.pick("wr", "learn")), c.p(c.pick("wr_idx", "slot")), c.p(c.pick("wr_key", "key_in"))
    key = c.p(c.pick("lookup", "search_key"))
    hit, idx = c.p(c.pick("hit", "match"), "output"), c.p(c.pick("hit_idx", "match_addr"), "output")
    iw = clog2(n)
    name = f"{c.pick('cam', 'tcam_lite', 'assoc_mem')}_{n}x{w}"
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, we), Port("input", iw, wi), Port("input", w, wk), Port("input", w, key),
             Port("output", 1, hit), Port("output", iw, idx, True)]
    body = [f"{c.reg()} [{w-1}:0] keys [0:{n-1}];", f"{c.reg()} [{n-1}:0] valid;", f"{c.reg()} [{n-1}:0] m;", "integer k;"]
    body += c.seq([f"valid <= {n}'d0;"], [f"if ({we}) begin", f"  keys[{wi}] <= {wk};", f"  valid[{wi}] <= 1'b1;", "end"])
    body += [f"{c.comb()} begin", f"  for (k = 0; k < {n}; k = k + 1) m[k] = valid[k] && (keys[k] == {key});", "end",
             f"assign {hit} = |m;", f"{c.comb()} begin", f"  {idx} = {iw}'d0;", f"  for (k = {n-1}; k >= 0; k = k - 1) if (m[k]) {idx} = k;", "end"]
    hl = f"A small content-addressable memory with {n} entries of {w}-bit keys that returns the index of a matching key."
    det = (f"{name} stores keys written with {we} at slot {wi} and marks the slot valid. A lookup compares {key} with all valid entries in "
           f"parallel; {hit} reports any match and {idx} the lowest matching slot. Reset ({c.rdesc()}) invalidates all entries.")
    blocks = ["Declares key storage and valid bits.", "Writes keys and sets valid bits.", "Compares the lookup key with all entries.", "Encodes the lowest matching slot."]
    return Mod(name, ports, body, hl, det, blocks)


@family("misc", 2)
def fam_sigma_delta(c: Ctx, i: int) -> Mod:
    w = [8, 12][i]
    d, o = c.p(c.pick("level", "dac_in", "sample")), c.p(c.pick("dac_out", "pdm", "bit_out"), "output")
    name = f"{c.pick('sigma_delta_dac', 'pdm_mod', 'sd_dac')}_{w}"
    ports = [c.clk_port(), c.rst_port(), Port("input", w, d), Port("output", 1, o)]
    body = [f"{c.reg()} [{w}:0] acc;"]
    body += c.seq(["acc <= 0;"], [f"acc <= acc[{w-1}:0] + {d};"])
    body.append(f"assign {o} = acc[{w}];")
    if i == 1:
        body = [f"{c.reg()} [{w+1}:0] integ;", f"{c.wire()} fb = integ[{w+1}];"]
        body += c.seq(["integ <= 0;"], [f"integ <= integ + {{2'b00, {d}}} - (fb ? {w+2}'d0 : {{2'b01, {w}'d0}});"])
        body.append(f"assign {o} = ~fb;")
    hl = f"A first-order sigma-delta modulator that turns the {w}-bit value {d} into a pulse-density bit stream {o}."
    det = (f"{name} " + ("adds the input to a phase accumulator every clock and outputs the carry, so the density of ones on "
                         f"{o} equals {d}/2^{w}." if i == 0 else "integrates the difference between the input and the fed-back output "
                         f"in a {w+2}-bit signed integrator and outputs the comparator bit; the average of {o} tracks {d}/2^{w}.")
           + f" A simple RC low-pass filter turns the stream into an analog voltage. Reset is {c.rdesc()}.")
    blocks = ["Declares the accumulator.", "Adds the input every clock.", f"Outputs the overflow bit on {o}."]
    return Mod(name, ports, body, hl, det, blocks)


@family("misc", 2)
def fam_ledseq(c: Ctx, i: int) -> Mod:
    n = [8, 6][i]
    tick = c.p(c.pick("tick", "step", "slow_en"))
    led = c.p(c.pick("leds", "led", "lamp"), "output")
    name = f"{c.pick('knight_rider', 'led_scanner', 'larson')}_{n}"
    ports = [c.clk_port(), c.rst_port(), Port("input", 1, tick), Port("output", n, led, True)]
    body = [f"{c.reg()} dir;"]
    if i == 0:
        body += c.seq([f"{led} <= {n}'d1;", "dir <= 1'b0;"], [f"if ({tick}) begin", "  if (!dir) begin", f"    if ({led}[{n-2}]) dir <= 1'b1;",
                                                            f"    {led} <= {led} << 1;", "  end else begin", f"    if ({led}[1]) dir <= 1'b0;", f"    {led} <= {led} >> 1;", "  end", "end"])
    else:
        body = [f"{c.reg()} [{clog2(n)-1}:0] pos;", f"{c.reg()} dir;"]
        body += c.seq(["pos <= 0;", "dir <= 1'b0;"], [f"if ({tick}) begin", f"  if (!dir && pos == {n-1}) dir <= 1'b1;", "  else if (dir && pos == 1) dir <= 1'b0;",
                                                      "  if (!dir && pos != " + str(n - 1) + ") pos <= pos + 1'b1;", "  else if (dir) pos <= pos - 1'b1;",
                                                      "  else pos <= pos - 1'b1;", "end"])
        body.append(f"{c.comb()} {led} = {n}'d1 << pos;")
    hl = f"A bouncing-light LED scanner that moves one lit LED back and forth across {n} LEDs on each {tick}."
    det = (f"{name} keeps a direction flag and moves the lit position one step on every {tick} pulse, reversing at both ends, like the "
           f"lights of a well-known TV car. Reset is {c.rdesc()}, starting at LED 0 moving up.")
    blocks = ["Holds the direction and position.", "Moves one step per tick.", "Reverses direction at the ends."]
    return Mod(name, ports, body, hl, det, blocks)


@family("misc", 2)
def fam_voter(c: Ctx, i: int) -> Mod:
    w = [8, 32][i]
    a, b, cc = (c.p(x) for x in c.pick(("a", "b", "c"), ("copy0", "copy1", "copy2"), ("r0", "r1", "r2")))
    y, mis = c.p(c.pick("voted", "y", "tmr_out"), "output"), c.p(c.pick("mismatch", "disagree"), "output")
    name = f"{c.pick('tmr_voter', 'majority3', 'vote3')}_{w}"
    ports = [Port("input", w, a), Port("input", w, b), Port("input", w, cc), Port("output", w, y), Port("output", 1 if i == 0 else 3, mis)]
    body = [f"assign {y} = ({a} & {b}) | ({a} & {cc}) | ({b} & {cc});"]
    if i == 0:
        body.append(f"assign {mis} = ({a} != {b}) || ({b} != {cc});")
        extra = f"{mis} is high whenever the three copies are not identical."
    else:
        body += [f"assign {mis}[0] = ({a} != {y});", f"assign {mis}[1] = ({b} != {y});", f"assign {mis}[2] = ({cc} != {y});"]
        extra = f"{mis} has one bit per copy that marks a copy disagreeing with the voted result, which identifies the faulty replica."
    hl = f"A bitwise 2-of-3 majority voter for triple modular redundancy on {w}-bit words."
    det = f"{name} computes every output bit of {y} as the majority of the corresponding bits of {a}, {b} and {cc}, masking any single faulty copy. {extra}"
    blocks = ["Computes the bitwise majority.", "Reports disagreement between the copies."]
    return Mod(name, ports, body, hl, det, blocks)
