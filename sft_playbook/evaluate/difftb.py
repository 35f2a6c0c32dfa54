"""Differential testbench: is the candidate cycle-by-cycle equivalent to the reference under random
stimulus?

The generated testbench instantiates the reference (all its modules renamed with a per-run nonce
at their declarations and instantiations, so a candidate's helpers of the same names cannot
clash with them) and the candidate with the same port connections. The three files are three
compilation units (`wrap_unit`): each starts with `resetall and the common default
`timescale 1ns/1ps and undefines its own macros at its end, so `default_nettype none, macros
or a missing `timescale of one never reach another, and `#3` means 3 ns in all of them.

- Clocks (`classify`): 1-bit inputs named like clocks (clk, clock, *_clk, clk_i, i_clk, aclk,
  clk2, ...; not clk_en or clk_sel) or used as the only edge of a sensitivity list. Up to six;
  clock i toggles every CLOCK_HALF_PERIODS[i] steps (1, 3, 5, 7, ...) at offset +i of the step,
  so two clocks never have an edge at the same time.
- Resets: 1-bit inputs named like resets (rst, reset, areset, srst, rst_n, resetn, wrstn, rrstn,
  brstn, presetn, *_rst, *_rst_n, ...) or used like one (`vparse.signal_roles`: the signal a
  block with several edges tests first, or a clocked block's first `if` whose branch only assigns
  constants). Polarity from the use (`!x`, negedge), else from the name (trailing n/_n/_b/_l,
  leading n). Asserted for the first `reset_cycles` cycles, then again `reset_pulses` times at
  random steps for 1-4 steps (`reset_schedule`); changes happen at +5 of a step, between clock
  edges, so a synchronous, an asynchronous and a missing reset give different outputs.
- Every other input gets new random bits at +7 of every step (also while a reset is held) from
  a xorshift64 generator seeded with splitmix64(seed): few-bit inputs vary from the first step.
- One step is 10 ns: clock edges at +0..+5, outputs compared at +4, +6 and +9 (3 samples per
  step, 2 steps per period of the first clock). Combinational designs: one input vector per step,
  compared at +2 and +9.
- Bit by bit: a bit that is X in the reference is "don't care" (upstream VerilogEval's rule);
  otherwise the candidate's bit must be identical (0, 1 or Z; an X where the reference has 0/1
  is a mismatch). Outputs wider than 1024 bits use upstream's vector rule.
- The verdict line carries the nonce (only there and in the other report lines, never in a name:
  names carry a different random key, see `build`): `SFTPB_<nonce> RESULT mismatches=E samples=N`; a candidate
  that ends the simulation early gives a wrong N and fails. With `coverage`, a
  `SFTPB_<nonce> COVER <output> both=K width=W` line says how many output bits took both values.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field, replace

from .simulate import strip_comments
from .vparse import Module, Port, emit_name, params_needed, signal_roles

_CLOCK_RE = re.compile(r"^(?:i_|in_)?(?:[a-z]{0,4}clk|clock|ck)\d*(?:_?i|_in|_\d+)?$"
                       r"|^[a-z0-9_]+_(?:clk|clock)(?:_?i|_in)?$"
                       r"|^(?:clk|clock)_(?!en|enable|sel|div|gate|cnt|count|ok|valid|req|ack|stop|stable|lock|mux|out)"
                       r"[a-z0-9]+$", re.I)
# rst, reset, areset, srst, nrst, rst_n, resetn, aresetn, wrstn, rrstn, brstn, presetn, rst_ni, i_rst,
# sys_rst_n, *_rst, *_reset_n, rst_sync: one optional letter before rst/reset (w, r, b, a, s, p, h,
# ...), never two ('first', 'burst' and 'worst' are not resets).
_RESET_RE = re.compile(r"^(?:i_|in_)?(?:n_?)?[a-z]?_?(?:rst|reset|rset)(?:_?n|_b|_l|_ni|_i|_in|_?n_i|_b_i|_l_i)?$"
                       r"|^[a-z0-9_]+_(?:rst|reset)(?:_?n|_b|_l)?(?:_i)?$|^(?:rst|reset)_(?!val|value|data|cnt|count)[a-z0-9]+$",
                       re.I)


def is_clock(port: Port) -> bool:
    """True for a one-bit input whose name looks like a clock (``clk``, ``clock``, ...).

    Returns:
        True for a one-bit ``input`` whose name matches the clock pattern; False otherwise.
    """
    return port.direction == "input" and port.one_bit and bool(_CLOCK_RE.match(port.name))


def is_reset(port: Port) -> bool:
    """True for a one-bit input, not a clock, whose name looks like a reset (``rst``, ``reset``, ``wrstn``, ...).

    Returns:
        True for a one-bit ``input`` that is not a clock and whose name matches the reset pattern.
    """
    return port.direction == "input" and port.one_bit and not is_clock(port) and bool(_RESET_RE.match(port.name))


def reset_active_low(name: str) -> bool:
    """Whether a reset named ``name`` is active low, from its spelling: a trailing ``n``, ``_n``,
    ``_b``, ``_l`` (after removing ``i_``/``_i``-style direction marks; not a bare ``...reset``/``...rst``)
    or a leading ``n`` (not ``new...``).

    Returns:
        True when the spelling says active low; False for active high (the default).
    """
    n = name.lower()
    for pre in ("i_", "in_"):
        if n.startswith(pre):
            n = n[len(pre):]
    for suf in ("_i", "_in"):
        if n.endswith(suf) and not n.endswith("_n" + suf[1:]):
            n = n[: -len(suf)]
    return bool(re.search(r"(?:_?n|_b|_l|_ni|_n_i)$", n) and not n.endswith("reset") and not n.endswith("rst")) \
        or n.startswith("n") and not n.startswith("new")



@dataclass
class DiffTestbench:
    """A generated differential testbench (``build``): the source files to compile (name -> text),
    the testbench's top module, the verdict nonce, how many output samples a full run compares,
    and the clocks, resets (name, active low) and outputs it drives and compares, with how each
    clock/reset was found (``found_by``: by its name or by its use).
    """
    files: dict[str, str]
    top: str
    nonce: str
    expected_samples: int
    clocks: list[str] = field(default_factory=list)
    resets: list[tuple[str, bool]] = field(default_factory=list)   # (name, active_low)
    outputs: list[str] = field(default_factory=list)
    found_by: dict[str, str] = field(default_factory=dict)         # clock/reset name -> "name" | "use"


def _decl(kind: str, port: Port, name: str) -> str:
    signed = " signed" if port.signed else ""
    rng = f" {port.range}" if port.range else ""
    return f"  {kind}{signed}{rng} {name};"


def rename_modules(code: str, names: list[str], suffix: str) -> str:
    """Append `suffix` to the modules `names` where they are declared (`module NAME`) and
    instantiated (`NAME [#(...)] inst (`), nowhere else: a signal or port that shares a module's
    name keeps its own. Escaped names (`\\$not `) keep their terminating space.

    Returns:
        ``code`` with those declarations and instantiations renamed (``code`` itself when ``names`` is
        empty); everything else byte for byte.
    """
    if not names:
        return code
    alt = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    rx = re.compile(r"(?<![\w$.`\\])(" + alt + r")(?![\w$])"
                    r"(?=\s*(?:#|(?:[A-Za-z_][\w$]*|\\\S+)\s*(?:\[[^\]]*\]\s*)?\())")
    decl = re.compile(r"(?<![\w$`])((?:module|macromodule)\s+)(" + alt + r")(?![\w$])")
    code = decl.sub(lambda m: m.group(1) + m.group(2) + suffix, code)
    return rx.sub(lambda m: m.group(1) + suffix, code)


DEFAULT_TIMESCALE = "1ns/1ps"
CLOCK_HALF_PERIODS = (1, 3, 5, 7, 11, 13)   # steps between toggles of the 1st, 2nd, ... clock
_DEFINE_RE = re.compile(r"^[ \t]*`define\s+([A-Za-z_]\w*)", re.M)


def wrap_unit(code: str, timescale: str = DEFAULT_TIMESCALE, keywords: str | None = None) -> str:
    """One source file made a self-contained compilation unit for iverilog (which reads all files
    as one stream of directives): `resetall first (default_nettype, celldefine,
    unconnected_drive back to their defaults), the common default `timescale (a unit's own
    `timescale still wins for the modules after it), and every macro it `defines undefined at its
    end, so nothing of one unit reaches the next. `keywords` wraps it in `begin_keywords (the
    testbench instantiates by escaped names, so a module called `rand` or a port called `bit`
    stays reachable from a SystemVerilog unit).

    Returns:
        The unit's text: a `resetall line, a `timescale <timescale> line, the code (inside
        `begin_keywords/`end_keywords when ``keywords`` is given), one `undef line per macro it
        defines, and a final `resetall line.
    """
    undefs = "".join(f"`undef {m}\n" for m in dict.fromkeys(_DEFINE_RE.findall(code)))
    if keywords:  # e.g. "1364-2005": Verilog code that uses SystemVerilog keywords (logic, bit, do) as names
        code = f'`begin_keywords "{keywords}"\n{code}\n`end_keywords'
    return f"`resetall\n`timescale {timescale}\n{code}\n{undefs}`resetall\n"


def escaped(name: str) -> str:
    """A name written as an escaped identifier (`\\name `): the same name to Verilog, and never
    read as a keyword of the unit that writes it.

    Returns:
        ``\\<name>`` followed by one space (``name`` itself with the space when it is already escaped).
    """
    return emit_name(name) if name.startswith("\\") else f"\\{name} "


def object_macros(code: str) -> dict[str, str]:
    """`define NAME value (no arguments) of a source, last definition wins, comments removed.

    Returns:
        ``{NAME: value}`` (value stripped; '' for a `define NAME without value).
    """
    return {m.group(1): m.group(2).strip() for m in
            re.finditer(r"^[ \t]*`define\s+([A-Za-z_]\w*)(?!\()[ \t]*([^\n]*)$", strip_comments(code), re.M)}


def expand_macros(text: str, macros: dict[str, str], depth: int = 8) -> str:
    """Replace `NAME by (value) for the given object-like macros, nested ones too.

    Args:
        text: the text to expand (e.g. a port range).
        macros: ``object_macros`` of the source.
        depth: the most rounds of replacement (nested macros; a self-referencing macro stops here).

    Returns:
        ``text`` with each known `NAME replaced by ``(value)``; unknown macros are left as written.
    """
    for _ in range(depth):
        new = re.sub(r"`([A-Za-z_]\w*)", lambda m: f"({macros[m.group(1)]})" if m.group(1) in macros else m.group(0), text)
        if new == text:
            break
        text = new
    return text


@dataclass
class Roles:
    """Which inputs of the top are clocks and resets, and why."""
    clocks: list[str] = field(default_factory=list)
    resets: list[tuple[str, bool]] = field(default_factory=list)   # (name, active_low)
    how: dict[str, str] = field(default_factory=dict)               # name -> "name" | "use"


def classify(top: Module, code: str) -> Roles:
    """Clocks and resets among the 1-bit inputs of `top`: by name (`is_clock`, `is_reset`) and by
    use anywhere in `code` (`vparse.signal_roles`: edge signals of sensitivity lists, the signal a
    clocked block tests first and answers with constants). Use decides the polarity of a reset;
    a name that says clock beats a use as reset.

    Returns:
        The ``Roles``: ``clocks`` (names, port order), ``resets`` (``(name, active_low)``) and ``how``
        (name -> ``"name"`` or ``"use"``, what decided it).
    """
    used = signal_roles(code)
    roles = Roles()
    for p in top.ports:
        if p.direction != "input" or not p.one_bit:
            continue
        role, low = used.get(p.name, (None, False))
        if is_clock(p) or (role == "clock" and not is_reset(p)):
            roles.clocks.append(p.name)
            roles.how[p.name] = "name" if is_clock(p) else "use"
        elif is_reset(p) or role == "reset":
            roles.resets.append((p.name, low if role == "reset" else reset_active_low(p.name)))
            roles.how[p.name] = "use" if role == "reset" else "name"
    return roles


def reset_schedule(resets: list[str], steps: int, *, reset_steps: int, pulses: int, seed: int) -> dict[str, list[tuple[int, int]]]:
    """When each reset is asserted during the run.

    The first interval is the initial reset (from time 0 up to step `reset_steps`); then `pulses`
    pulses of 1..4 steps at random steps (from a generator seeded with `seed`), each reset its own.

    Returns:
        ``{reset name: [(from_step, to_step)]}``: the assertion intervals in steps, sorted and
        non-overlapping, the first ``(0, max(1, reset_steps))``; pulses start at step ``reset_steps + 2``
        or later and end by step ``steps - 1``.
    """
    import random
    out = {}
    for idx, name in enumerate(resets):
        rng = random.Random(f"{seed}:{idx}:{name}")
        spans = [(0, max(1, reset_steps))]
        lo, hi = reset_steps + 2, steps - 3
        if hi > lo:
            for a in sorted(rng.sample(range(lo, hi), min(pulses, hi - lo))):
                b = min(steps - 1, a + rng.randint(1, 4))
                if a > spans[-1][1]:
                    spans.append((a, b))
        out[name] = spans
    return out


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (x ^ (x >> 31)) or 1


def build(ref_code: str, ref_top: Module, ref_module_names: list[str], cand_code: str, cand_top: Module, *,
          nonce: str, cycles: int = 200, seed: int = 1, reset_cycles: int = 2, reset_prob: float = 0.0,
          reset_pulses: int = 4, roles: Roles | None = None, timescale: str = DEFAULT_TIMESCALE,
          coverage: bool = False, ref_keywords: str | None = None, cand_keywords: str | None = None,
          name_key: str | None = None) -> DiffTestbench:
    """Testbench + sources comparing cand_top with ref_top (see the module docstring).

    `cycles`: periods of the first clock (combinational designs: input vectors); `reset_pulses`
    reset pulses during the run (besides the initial `reset_cycles`), plus, when `reset_prob` > 0,
    about reset_prob * cycles more; `roles` (default `classify(ref_top, ref_code)`);
    `coverage`: also print which output bits took both values (used to size runs).
    `nonce` marks the verdict lines and appears ONLY inside format strings; the testbench's
    module, instance, variable and task names and the reference's renamed modules carry
    `name_key` (default: a fresh random one), which a candidate can read at run time (`%m`) but
    not know when it is compiled, when a hierarchical reference would have to name it.

    Returns:
        The ``DiffTestbench``: ``files`` ``tb.sv``, ``ref.sv`` (reference modules renamed with
        ``__ref_<key>``) and ``cand.sv``, each a ``wrap_unit``; ``top`` ``sftpb_tb_<key>``;
        ``expected_samples`` (clocked designs: 3 per step, 2 steps per period of the first clock, so
        6 * ``cycles``; combinational ones: 2 per input vector, 2 * ``cycles``); the clocks, resets
        and outputs used, and how each clock/reset was found.

    Raises:
        ValueError: ``name_key`` equals ``nonce``.
    """
    v = nonce                          # the verdict's nonce: in format strings only, never in a name
    n = name_key or secrets.token_hex(6)   # names: unknown at compile time, harmless once known
    if n == v:
        raise ValueError("name_key must differ from the verdict nonce (names are visible through %m)")
    suffix = f"__ref_{n}"
    ref_renamed = rename_modules(ref_code, ref_module_names, suffix)
    roles = roles or classify(ref_top, ref_code)
    ins = [p for p in ref_top.ports if p.direction == "input"]
    outs = [p for p in ref_top.ports if p.direction == "output"]
    clocks = [c for c in roles.clocks if ref_top.port(c)][: len(CLOCK_HALF_PERIODS)]
    resets = [(r, low) for r, low in roles.resets if ref_top.port(r) and r not in clocks]
    data_ins = [p for p in ins if p.name not in clocks and p.name not in dict(resets)]
    lines = [f"module sftpb_tb_{n};"]
    macros = object_macros(ref_code)   # port ranges may use the reference's `defines (undefined at its end)
    for name, expr in params_needed(ref_top):
        lines.append(f"  localparam {name} = {expand_macros(expr, macros)};")
    for p in ins:
        lines.append(_decl("reg", replace(p, range=expand_macros(p.range, macros)), f"i_{p.name}_{n}"))
    for p in outs:
        q = replace(p, range=expand_macros(p.range, macros))
        lines.append(_decl("wire", q, f"r_{p.name}_{n}"))
        lines.append(_decl("wire", q, f"d_{p.name}_{n}"))
        lines.append(f"  integer e_{p.name}_{n};")
        if coverage:
            lines.append(f"  reg [1023:0] s0_{p.name}_{n}, s1_{p.name}_{n};")
    lines += [f"  integer errors_{n}, samples_{n}, step_{n}, first_{n}, errs_{n}, errors_before_{n}, k_{n};",
              f"  reg [63:0] rs_{n};", f"  reg [1023:0] v_{n};"]
    conn_ref = ", ".join(f".{escaped(p.name)}(i_{p.name}_{n})" for p in ins) + ("" if not outs or not ins else ", ") + \
        ", ".join(f".{escaped(p.name)}(r_{p.name}_{n})" for p in outs)
    conn_dut = conn_ref.replace("(r_", "(d_")
    lines.append(f"  {escaped(ref_top.name + suffix)} ref_{n} ({conn_ref});")
    lines.append(f"  {escaped(cand_top.name)} dut_{n} ({conn_dut});")
    lines += [
        # xorshift64 seeded from Python's splitmix64(seed): well mixed from the first value on, so
        # few-bit inputs do not start with a run of equal values the way $random(1) does
        f"  task rnd_{n}(input integer bits);",
        "    begin",
        f"      v_{n} = 0;",
        f"      for (k_{n} = 0; k_{n} < bits; k_{n} = k_{n} + 64) begin",
        f"        rs_{n} = rs_{n} ^ (rs_{n} << 13); rs_{n} = rs_{n} ^ (rs_{n} >> 7); rs_{n} = rs_{n} ^ (rs_{n} << 17);",
        f"        v_{n} = {{v_{n}[959:0], rs_{n}}};",
        "      end",
        "    end",
        "  endtask",
        f"  function automatic integer neq_{n}(input [1023:0] r, input [1023:0] d, input integer w);",
        "    integer k;",
        "    begin",
        f"      neq_{n} = 0;",
        f"      for (k = 0; k < w; k = k + 1) if (r[k] !== 1'bx && r[k] !== d[k]) neq_{n} = 1;",
        "    end",
        "  endfunction",
        f"  function automatic [1023:0] seen_{n}(input [1023:0] acc, input [1023:0] r, input integer w, input v);",
        "    integer k;",
        "    begin",
        f"      seen_{n} = acc;",
        f"      for (k = 0; k < w; k = k + 1) if (r[k] === v) seen_{n}[k] = 1'b1;",
        "    end",
        "  endfunction",
        f"  task drive_{n};",
        "    begin",
    ]
    for p in data_ins:
        lines.append(f"      rnd_{n}($bits(i_{p.name}_{n})); i_{p.name}_{n} = v_{n};")
    lines += ["    end", "  endtask", f"  task check_{n};", "    begin", f"      samples_{n} = samples_{n} + 1;",
              f"      errors_before_{n} = errs_{n};"]

    def differs(p: Port) -> str:
        r, d = f"r_{p.name}_{n}", f"d_{p.name}_{n}"
        return f"($bits({r}) <= 1024 ? neq_{n}({r}, {d}, $bits({r})) != 0 : ({r} !== ({r} ^ {d} ^ {r})))"

    for p in outs:
        r, d = f"r_{p.name}_{n}", f"d_{p.name}_{n}"
        lines += [
            f"      if ({differs(p)}) begin",
            f"        if (errors_{n} == 0) begin first_{n} = $time; "
            f"$display(\"SFTPB_{v} FIRST time=%0t output={p.name} ref=%b dut=%b\", $time, {r}, {d}); end",
            f"        e_{p.name}_{n} = e_{p.name}_{n} + 1; errs_{n} = errs_{n} + 1;",
            "      end",
        ]
        if coverage:
            lines += [f"      if ($bits({r}) <= 1024) begin s0_{p.name}_{n} = seen_{n}(s0_{p.name}_{n}, {r}, $bits({r}), 1'b0);"
                      f" s1_{p.name}_{n} = seen_{n}(s1_{p.name}_{n}, {r}, $bits({r}), 1'b1); end"]
    if outs:
        lines.append(f"      if (errs_{n} != errors_before_{n}) errors_{n} = errors_{n} + 1;")
    lines += ["    end", "  endtask"]

    steps = 2 * int(cycles) if clocks else int(cycles)
    reset_steps = 2 * int(reset_cycles) if clocks else int(reset_cycles)
    extra = int(round(float(reset_prob) * int(cycles)))
    sched = reset_schedule([r for r, _ in resets], steps, reset_steps=reset_steps,
                           pulses=int(reset_pulses) + extra, seed=seed)
    level = {name: (f"1'b{0 if low else 1}", f"1'b{1 if low else 0}") for name, low in resets}

    def reset_updates(indent: str) -> list[str]:
        out = []
        for name, spans in sched.items():
            on = " || ".join(f"step_{n} == {a}" for a, _ in spans[1:])
            off = " || ".join(f"step_{n} == {b}" for _, b in spans)
            if on:
                out.append(f"{indent}if ({on}) i_{name}_{n} = {level[name][0]};")
            out.append(f"{indent}if ({off}) i_{name}_{n} = {level[name][1]};")
        return out

    lines += ["  initial begin",
              f"    rs_{n} = 64'h{_splitmix64(int(seed)):016x}; errors_{n} = 0; samples_{n} = 0; first_{n} = -1; errs_{n} = 0;"]
    for p in outs:
        lines.append(f"    e_{p.name}_{n} = 0;")
        if coverage:
            lines.append(f"    s0_{p.name}_{n} = 0; s1_{p.name}_{n} = 0;")
    lines += [f"    i_{c}_{n} = 1'b0;" for c in clocks]
    lines += [f"    i_{name}_{n} = {level[name][0]};" for name, _ in resets]
    lines.append(f"    drive_{n};")
    lines.append(f"    for (step_{n} = 0; step_{n} < {steps}; step_{n} = step_{n} + 1) begin")
    if clocks:
        # step of 10 units: clock i may toggle at +i (never two edges at once), checks at +4,
        # resets change at +5 (between clock edges), check +6, data inputs change at +7, check +9
        for i, c in enumerate(clocks):
            lines.append(f"      {'#1 ' if i else ''}if (step_{n} % {CLOCK_HALF_PERIODS[i]} == 0) i_{c}_{n} = ~i_{c}_{n};")
        lines.append(f"      #{4 - (len(clocks) - 1)} check_{n};")
        lines.append("      #1;")
        lines += reset_updates("      ")
        lines += [f"      #1 check_{n};", f"      #1 drive_{n};", f"      #2 check_{n};", "      #1;", "    end"]
        expected = 3 * steps
    else:
        # combinational: resets change at +0, inputs at +1, checks at +2 and +9
        lines += reset_updates("      ")
        lines += [f"      #1 drive_{n};", f"      #1 check_{n};", f"      #7 check_{n};", "      #1;", "    end"]
        expected = 2 * steps
    for p in outs:
        lines.append(f"    $display(\"SFTPB_{v} OUTPUT {p.name} mismatches=%0d\", e_{p.name}_{n});")
        if coverage:
            lines.append(f"    $display(\"SFTPB_{v} COVER {p.name} both=%0d width=%0d\", "
                         f"$countones(s0_{p.name}_{n} & s1_{p.name}_{n}), $bits(r_{p.name}_{n}));")
    lines += [
        f"    $display(\"SFTPB_{v} RESULT mismatches=%0d samples=%0d first=%0d\", errors_{n}, samples_{n}, first_{n});",
        "    $finish;",
        "  end",
        "endmodule",
        "",
    ]
    files = {"tb.sv": wrap_unit("\n".join(lines), timescale), "ref.sv": wrap_unit(ref_renamed, timescale, ref_keywords),
             "cand.sv": wrap_unit(cand_code, timescale, cand_keywords)}
    return DiffTestbench(files, f"sftpb_tb_{n}", v, expected, clocks, resets, [p.name for p in outs],
                         {k: v for k, v in roles.how.items() if k in clocks or k in dict(resets)})
