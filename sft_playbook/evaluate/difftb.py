"""Differential testbench: is the candidate cycle-by-cycle equivalent to the reference under random
stimulus?

The generated testbench instantiates the reference (all its modules renamed with a per-run nonce,
so they cannot clash with the candidate's) and the candidate with the same port connections.

- Clock inputs (1 bit, named clk, clock, *_clk, *_clock, clk_i, i_clk, aclk, clk2, ...; not
  clk_en or clk_sel; clk_sys is) toggle every cycle.
- Reset inputs (1 bit, named rst, reset, areset, srst, rst_n, resetn, aresetn, nrst, *_rst, ...)
  are asserted for the first `reset_cycles` clock edges, then released (and optionally pulsed
  again with probability `reset_prob` per cycle). Active low when the name says so: a trailing
  `n`/`_n`/`_b`/`_l` or a leading `n`/`n_` (rst_n, resetn, aresetn, nrst, rst_b).
- Every other input gets random values from `$random(seed)` with a fixed seed, at a time away
  from the clock edges.
- Every output is compared after each rising edge, after each falling edge and after each input
  change (3 samples per cycle; purely combinational designs: 1 sample per input vector, #1
  after it is applied). Bit by bit: a bit that is X in the reference is "don't care" (upstream
  VerilogEval's rule); otherwise the candidate's bit must be identical (0, 1 or Z; an X where the
  reference has 0/1 is a mismatch). Outputs wider than 1024 bits use upstream's vector rule.
- The verdict line carries the nonce: `SFTPB_<nonce> RESULT mismatches=E samples=N`; a candidate
  that ends the simulation early gives a wrong N and fails.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .vparse import Module, Port, params_needed

_CLOCK_RE = re.compile(r"^(?:i_|in_)?(?:[a-z]{0,4}clk|clock|ck)\d*(?:_?i|_in|_\d+)?$"
                       r"|^[a-z0-9_]+_(?:clk|clock)(?:_?i|_in)?$"
                       r"|^(?:clk|clock)_(?!en|enable|sel|div|gate|cnt|count|ok|valid|req|ack|stop|stable|lock|mux|out)"
                       r"[a-z0-9]+$", re.I)
_RESET_RE = re.compile(r"^(?:i_|in_)?(?:n_?)?(?:a|s)?(?:rst|reset|rset)(?:_?n|_b|_l|_ni|_i|_in|_?n_i|_b_i|_l_i)?$"
                       r"|^[a-z0-9]+_(?:rst|reset)(?:_?n|_b|_l)?$|^(?:rst|reset)_[a-z0-9]+$", re.I)


def is_clock(port: Port) -> bool:
    return port.direction == "input" and port.one_bit and bool(_CLOCK_RE.match(port.name))


def is_reset(port: Port) -> bool:
    return port.direction == "input" and port.one_bit and not is_clock(port) and bool(_RESET_RE.match(port.name))


def reset_active_low(name: str) -> bool:
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
    files: dict[str, str]
    top: str
    nonce: str
    expected_samples: int
    clocks: list[str] = field(default_factory=list)
    resets: list[tuple[str, bool]] = field(default_factory=list)   # (name, active_low)
    outputs: list[str] = field(default_factory=list)


def _decl(kind: str, port: Port, name: str) -> str:
    signed = " signed" if port.signed else ""
    rng = f" {port.range}" if port.range else ""
    return f"  {kind}{signed}{rng} {name};"


def rename_modules(code: str, names: list[str], suffix: str) -> str:
    if not names:
        return code
    rx = re.compile(r"(?<![\w$])(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")(?![\w$])")
    return rx.sub(lambda m: m.group(1) + suffix, code)


def build(ref_code: str, ref_top: Module, ref_module_names: list[str], cand_code: str, cand_top: Module, *,
          nonce: str, cycles: int = 200, seed: int = 1, reset_cycles: int = 2, reset_prob: float = 0.0) -> DiffTestbench:
    """Testbench + sources comparing cand_top with ref_top (see the module docstring)."""
    n = nonce
    suffix = f"__ref_{n}"
    ref_renamed = rename_modules(ref_code, ref_module_names, suffix)
    ins = [p for p in ref_top.ports if p.direction == "input"]
    outs = [p for p in ref_top.ports if p.direction == "output"]
    clocks = [p.name for p in ins if is_clock(p)]
    resets = [(p.name, reset_active_low(p.name)) for p in ins if is_reset(p)]
    data_ins = [p for p in ins if p.name not in clocks and p.name not in dict(resets)]
    lines = ["`timescale 1ns/1ps", f"module sftpb_tb_{n};"]
    for name, expr in params_needed(ref_top):
        lines.append(f"  localparam {name} = {expr};")
    for p in ins:
        lines.append(_decl("reg", p, f"i_{p.name}_{n}"))
    for p in outs:
        lines.append(_decl("wire", p, f"r_{p.name}_{n}"))
        lines.append(_decl("wire", p, f"d_{p.name}_{n}"))
        lines.append(f"  integer e_{p.name}_{n};")
    lines += [f"  integer seed_{n}, errors_{n}, samples_{n}, cyc_{n}, first_{n}, errs_{n}, errors_before_{n};"]
    conn_ref = ", ".join(f".{p.name}(i_{p.name}_{n})" for p in ins) + ("" if not outs or not ins else ", ") + \
        ", ".join(f".{p.name}(r_{p.name}_{n})" for p in outs)
    conn_dut = conn_ref.replace("(r_", "(d_")
    lines.append(f"  {ref_top.name}{suffix} ref_{n} ({conn_ref});")
    lines.append(f"  {cand_top.name} dut_{n} ({conn_dut});")
    lines += [
        f"  function [1023:0] rnd_{n}(input integer bits);",
        "    integer k;",
        "    begin",
        f"      rnd_{n} = 0;",
        f"      for (k = 0; k < bits; k = k + 32) rnd_{n} = {{rnd_{n}[991:0], $random(seed_{n})}};",
        "    end",
        "  endfunction",
        f"  function automatic integer neq_{n}(input [1023:0] r, input [1023:0] d, input integer w);",
        "    integer k;",
        "    begin",
        f"      neq_{n} = 0;",
        f"      for (k = 0; k < w; k = k + 1) if (r[k] !== 1'bx && r[k] !== d[k]) neq_{n} = 1;",
        "    end",
        "  endfunction",
        f"  task drive_{n};",
        "    begin",
    ]
    for p in data_ins:
        lines.append(f"      i_{p.name}_{n} = rnd_{n}($bits(i_{p.name}_{n}));")
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
            f"$display(\"SFTPB_{n} FIRST time=%0t output={p.name} ref=%b dut=%b\", $time, {r}, {d}); end",
            f"        e_{p.name}_{n} = e_{p.name}_{n} + 1; errs_{n} = errs_{n} + 1;",
            "      end",
        ]
    if outs:
        lines.append(f"      if (errs_{n} != errors_before_{n}) errors_{n} = errors_{n} + 1;")
    lines += ["    end", "  endtask"]

    def set_resets(active: bool) -> list[str]:
        return [f"      i_{name}_{n} = 1'b{int(active != low)};" for name, low in resets]

    lines += ["  initial begin", f"    seed_{n} = {int(seed)}; errors_{n} = 0; samples_{n} = 0; first_{n} = -1; errs_{n} = 0;"]
    lines += [f"    e_{p.name}_{n} = 0;" for p in outs]
    lines += [f"    i_{c}_{n} = 1'b0;" for c in clocks]
    lines += [s.replace("      ", "    ", 1) for s in set_resets(True)]
    lines.append(f"    drive_{n};")
    rp = int(round(reset_prob * 1000))
    if clocks:
        tick = lambda v: " ".join(f"i_{c}_{n} = 1'b{v};" for c in clocks)  # noqa: E731
        lines += [
            f"    for (cyc_{n} = 0; cyc_{n} < {int(cycles)}; cyc_{n} = cyc_{n} + 1) begin",
            f"      #5 {tick(1)}",
            f"      #2 check_{n};",
            f"      #3 {tick(0)}",
            f"      #2 check_{n};",
        ]
        if resets:
            lines.append(f"      if (cyc_{n} + 1 >= {int(reset_cycles)}) begin")
            lines += ["  " + s for s in set_resets(False)]
            if rp:
                lines.append(f"        if ((($random(seed_{n})) & 32'h7fffffff) % 1000 < {rp}) begin")
                lines += ["    " + s for s in set_resets(True)]
                lines.append("        end")
            lines.append("      end")
        lines += [f"      drive_{n};", f"      #2 check_{n};", "      #1;", "    end"]
        expected = 3 * int(cycles)
    else:
        lines += [f"    for (cyc_{n} = 0; cyc_{n} < {int(cycles)}; cyc_{n} = cyc_{n} + 1) begin"]
        if resets:
            lines.append(f"      if (cyc_{n} >= {int(reset_cycles)}) begin")
            lines += ["  " + s for s in set_resets(False)]
            lines.append("      end")
        lines += [f"      drive_{n};", f"      #1 check_{n};", "      #1;", "    end"]
        expected = int(cycles)
    for p in outs:
        lines.append(f"    $display(\"SFTPB_{n} OUTPUT {p.name} mismatches=%0d\", e_{p.name}_{n});")
    lines += [
        f"    $display(\"SFTPB_{n} RESULT mismatches=%0d samples=%0d first=%0d\", errors_{n}, samples_{n}, first_{n});",
        "    $finish;",
        "  end",
        "endmodule",
        "",
    ]
    files = {"cand.sv": cand_code, "ref.sv": ref_renamed, "tb.sv": "\n".join(lines)}
    return DiffTestbench(files, f"sftpb_tb_{n}", n, expected, clocks, resets, [p.name for p in outs])
