#!/usr/bin/env python3
"""How many hostile designs reach outside their job folder, with bubblewrap and with resource limits
only. Uses the attacks of tests/test_sandbox_hostile.py (file-writing and file-reading system tasks
with absolute and ../ paths, `include, smuggled -y/-f/-c/-I options) against a sentinel folder, and
the word list switched off (safety must not depend on it). Prints one markdown table.

Usage: python bench/sandbox_escape.py
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sft_playbook.evaluate.simulate import compile_and_run  # noqa: E402
from sft_playbook.verilog import sandbox  # noqa: E402
import test_sandbox_hostile as H  # noqa: E402


def attacks(out: Path):
    for name, code in H.writer_designs(out).items():
        yield "write", name, {"t.v": code}, ("-g2012",)
    for name, code in H.reader_designs(out).items():
        if name != "readmemh_etc":   # /etc/hostname holds no secret to recognise
            yield "read", name, {"t.v": code}, ("-g2012",)
    yield "read", "include_abs", {"t.v": f'`include "{out / "secret.v"}"\nmodule t; wire [39:0] y; leak l(y); '
                                          'initial #1 $display("GOT %h", y); endmodule\n'}, ("-g2012",)
    user = "module t; wire [39:0] y; leak h(y); initial #1 $display(\"GOT %h\", y); endmodule\n"
    for opt in ("-y", "-I"):
        yield "read", f"option_{opt}", {"t.v": user if opt == "-y" else f'`include "secret.v"\n{user}'}, \
            ("-g2012", opt, str(out))
    (out / "cmds.f").write_text(str(out / "secret.v") + "\n")
    for opt in ("-f", "-c"):
        yield "read", f"option_{opt}", {"t.v": user}, ("-g2012", opt, str(out / "cmds.f"))


def main() -> None:
    rows = []
    for mode in (sandbox.BWRAP, sandbox.RLIMITS_ONLY):
        sandbox.set_isolation(mode)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "outside"
            (out / "lib").mkdir(parents=True)
            (out / "victim.hex").write_text("original\n")
            (out / "secret.hex").write_text(H.SECRET + "\n")
            (out / "secret.v").write_text(f"module leak(output [39:0] y); assign y = 40'h{H.SECRET}; endmodule\n")
            (out / "leak.v").write_text((out / "secret.v").read_text())
            n = {"write": [0, 0], "read": [0, 0]}
            for kind, name, files, flags in list(attacks(out)):
                before = H.snapshot(out)
                host_tmp = Path(f"/tmp/sftpb-hostile-{os.getpid()}.hex")
                run = compile_and_run(files, "t", flags=flags, timeout_s=20)
                if kind == "write":
                    escaped = H.snapshot(out) != before or host_tmp.exists()
                    host_tmp.unlink(missing_ok=True)
                else:
                    escaped = H.SECRET.lower() in run.output.lower()
                n[kind][0] += 1
                n[kind][1] += escaped
                if escaped:
                    print(f"  {mode}: {name} escaped", file=sys.stderr)
            rows.append((mode, n))
    print("| sandbox | writes outside (of tried) | secret read back (of tried) |")
    print("| --- | --- | --- |")
    for mode, n in rows:
        print(f"| {mode} | {n['write'][1]} of {n['write'][0]} | {n['read'][1]} of {n['read'][0]} |")


if __name__ == "__main__":
    main()
