"""Hostile designs against the OS sandbox (issue 14.1), with real iverilog/vvp.

Each test plants a sentinel folder OUTSIDE the job folder (a file to overwrite, a secret to read,
a module to pull in), snapshots it, runs the attack, and checks that nothing outside changed and
that nothing secret came back. The attacks bypass the word list on purpose (`compile_and_run`
directly, or the word list switched off) because safety must not depend on it; through the two
runners (`evaluate.py predictions` = verilog_metrics, and VerilogEval) the row must be `forbidden`
or fail, never a `pass` for a design that escaped.
"""
from __future__ import annotations

import hashlib
import os
import time
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from sft_playbook.evaluate import simulate, verilog_metrics, verilogeval
from sft_playbook.evaluate.simulate import FORBIDDEN, PASS, compile_and_run
from sft_playbook.verilog import sandbox
from sft_playbook.verilog.sandbox import iverilog_available, run_sandboxed

pytestmark = [
    pytest.mark.skipif(not iverilog_available(), reason="iverilog not installed (scripts/bootstrap.sh installs it)"),
    pytest.mark.skipif(shutil.which("bwrap") is None,
                       reason="bubblewrap not installed (scripts/bootstrap.sh installs it: apt-get install bubblewrap)"),
]

SECRET = "C0FFEE1234"


@pytest.fixture(autouse=True)
def _bwrap_required():
    sandbox.set_isolation(None)
    if sandbox.isolation() != sandbox.BWRAP:
        why = sandbox._resolved.get("why")
        if os.geteuid() != 0:   # e.g. Ubuntu 24.04 forbids user namespaces to unprivileged users
            pytest.skip(f"bubblewrap does not work for this user here: {why}")
        pytest.fail(f"bubblewrap is installed but does not work (as root): {why}")
    yield
    sandbox.set_isolation(None)


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = (p.stat().st_mode, hashlib.sha256(p.read_bytes()).hexdigest())
        else:
            out[str(p.relative_to(root)) + "/"] = (p.stat().st_mode, "")
    return out


@pytest.fixture
def outside(tmp_path):
    """A folder outside any job folder: a victim file, a secret, an includable module, a library dir."""
    d = tmp_path / "outside"
    (d / "lib").mkdir(parents=True)
    (d / "victim.hex").write_text("original\n")
    (d / "secret.hex").write_text(SECRET + "\n")
    (d / "secret.v").write_text(f"module leak(output [39:0] y); assign y = 40'h{SECRET}; endmodule\n")
    (d / "lib" / "helper.v").write_text("module helper(input a, output y); assign y = a; endmodule\n")
    (d / "cmds.f").write_text(str(d / "lib" / "helper.v") + "\n")
    d.chmod(0o755)
    return d


def tmp_names() -> set[str]:
    return set(os.listdir(tempfile.gettempdir()))


def rel_from_jobs(target: Path) -> str:
    """`target` as a ../ path from a job folder (made in the temporary folder)."""
    return "../" + os.path.relpath(target, tempfile.gettempdir())


def writer_designs(out: Path) -> dict[str, str]:
    """Designs that try to create or overwrite files outside their job folder."""
    victim, rel = out / "victim.hex", rel_from_jobs(out / "victim.hex")
    body = "reg [7:0] m [0:3]; integer f; initial begin m[0]=8'hAB; m[1]=8'hCD; m[2]=0; m[3]=0;\n"
    end = "\n#1 $display(\"DONE\"); $finish; end\nendmodule\n"
    tasks = {
        "writememh_abs": f'$writememh("{victim}", m);',
        "writememb_abs": f'$writememb("{victim}", m);',
        "writememh_dotdot": f'$writememh("{rel}", m);',
        "writememb_new_abs": f'$writememb("{out / "new.bin"}", m);',
        "fopen_w_abs": f'f = $fopen("{victim}", "w"); $fwrite(f, "pwned"); $fclose(f);',
        "fopen_a_dotdot": f'f = $fopen("{rel}", "a"); $fdisplay(f, "pwned"); $fclose(f);',
        "fopen_mcd_abs": f'f = $fopen("{out / "mcd.txt"}"); $fdisplay(f, "pwned"); $fclose(f);',
        "dumpfile_abs": f'$dumpfile("{victim}"); $dumpvars(0, t);',
        "dumpfile_new_dotdot": f'$dumpfile("{rel_from_jobs(out / "wave.vcd")}"); $dumpvars(0, t);',
        "host_tmp": f'$writememh("/tmp/sftpb-hostile-{os.getpid()}.hex", m);',
    }
    return {k: "module t;\n" + body + v + end for k, v in tasks.items()}


def reader_designs(out: Path) -> dict[str, str]:
    """Designs that try to read a secret outside their job folder and print it."""
    secret, rel = out / "secret.hex", rel_from_jobs(out / "secret.hex")
    pre = "module t; reg [39:0] m [0:0]; reg [8*64:1] s; integer f, r; initial begin m[0] = 0;\n"
    post = '\n$display("GOT %h", m[0]); $finish; end endmodule\n'
    return {
        "readmemh_abs": pre + f'$readmemh("{secret}", m);' + post,
        "readmemh_dotdot": pre + f'$readmemh("{rel}", m);' + post,
        "readmemh_etc": pre + '$readmemh("/etc/hostname", m);' + post,
        "fgets_abs": pre + f'f = $fopen("{secret}", "r"); r = $fgets(s, f); $display("GOT %s", s);' + post,
        "fscanf_dotdot": pre + f'f = $fopen("{rel}", "r"); r = $fscanf(f, "%h", m[0]);' + post,
    }


@pytest.mark.parametrize("kind", ["writer", "reader"])
def test_file_system_tasks_cannot_reach_outside(outside, kind):
    designs = writer_designs(outside) if kind == "writer" else reader_designs(outside)
    before, tmp_before = snapshot(outside), tmp_names()
    for name, code in designs.items():
        run = compile_and_run({"t.v": code}, "t", timeout_s=20)
        assert SECRET.lower() not in run.output.lower(), name
        assert snapshot(outside) == before, f"{name} changed files outside its job folder"
    assert not [n for n in tmp_names() - tmp_before if n.startswith("sftpb-hostile")]


def test_include_and_smuggled_options_cannot_read_outside(outside):
    before = snapshot(outside)
    inc = compile_and_run({"t.v": f'`include "{outside / "secret.v"}"\nmodule t; wire [39:0] y; leak l(y);'
                                  ' initial #1 $display("GOT %h", y); endmodule\n'}, "t")
    assert inc.stage == "compile" and not inc.ok and SECRET.lower() not in inc.output.lower()
    inc2 = compile_and_run({"t.v": f'`include "{rel_from_jobs(outside / "secret.v")}"\nmodule t; endmodule\n'}, "t")
    assert inc2.stage == "compile" and not inc2.ok
    user = "module t; wire y; helper h(1'b1, y); initial #1 $display(\"Y=%b\", y); endmodule\n"
    for flags in (("-g2012", "-y", str(outside / "lib")),          # library folder
                  ("-g2012", "-f", str(outside / "cmds.f")),       # command file
                  ("-g2012", "-c", str(outside / "cmds.f")),
                  ("-g2012", "-I", str(outside), "-DX")):
        run = compile_and_run({"t.v": user}, "t", flags=flags)
        assert run.stage == "compile" and not run.ok, (flags, run.output)
    etc = compile_and_run({"t.v": "module t; endmodule\n"}, "t", flags=("-g2012", "-f", "/etc/passwd"))
    assert not etc.ok and "root:" not in etc.output
    assert snapshot(outside) == before


def test_system_through_a_macro_is_not_run(outside):
    target = outside / "sys.txt"
    code = ("`define CALL(x) $sys``x\n"
            f'module t; initial begin `CALL(tem)("touch {target}"); $finish; end endmodule\n')
    assert not simulate.forbidden_constructs(code, preprocessed=False)   # the raw word list misses it,
    assert simulate.forbidden_constructs(code) == ["$system"]            # the preprocessed scan sees it,
    run = compile_and_run({"t.v": code}, "t")
    assert not run.ok and not target.exists()        # and without either the design does not run


@pytest.mark.skipif(shutil.which("iverilog-vpi") is None or shutil.which("cc") is None,
                    reason="iverilog-vpi / a C compiler not installed (needed to build the test VPI module)")
def test_vpi_module_outside_the_job_folder_is_not_loaded(outside, tmp_path):
    """A VPI module ($system-like: it writes a file) placed outside the job folder, loaded through
    smuggled `-m` options: at compile time (`:vpi_module` in the compiled design) or by vvp."""
    src = tmp_path / "evil.c"
    target = outside / "vpi_pwned.txt"
    src.write_text(
        "#include <vpi_user.h>\n#include <stdio.h>\n"
        f'static PLI_INT32 calltf(PLI_BYTE8 *u) {{ FILE *f = fopen("{target}", "w"); '
        'if (f) { fputs("pwned", f); fclose(f); } vpi_printf("EVIL_RAN\\n"); return 0; }\n'
        'static void reg(void) { s_vpi_systf_data d = {vpiSysTask, 0, "$evil", calltf, 0, 0, 0}; vpi_register_systf(&d); }\n'
        "void (*vlog_startup_routines[])(void) = { reg, 0 };\n")
    subprocess.run(["iverilog-vpi", str(src)], cwd=outside, check=True, capture_output=True)
    assert (outside / "evil.vpi").is_file()
    code = "module t; initial begin $evil; $finish; end endmodule\n"
    # -m at compile time: the compiled design names the module by absolute path (:vpi_module)
    base = compile_and_run({"t.v": code}, "t", flags=("-g2012", "-m", str(outside / "evil")))
    assert "EVIL_RAN" not in base.output and not target.exists(), base.output
    wd = tmp_path / "job"
    wd.mkdir()
    comp = run_sandboxed(["iverilog", "-g2012", "-o", "sim", "t.v"], {"t.v": code}, workdir=wd)
    assert comp.ok
    sim = run_sandboxed(["vvp", "-n", "-M", str(outside), "-m", "evil", "sim"], workdir=wd)
    assert "EVIL_RAN" not in sim.stdout + sim.stderr and not target.exists()


def _sandbox_processes() -> set[str]:
    """Live (not zombie) processes whose uid is in the sandbox's per-job range."""
    lo, hi = sandbox._PRIVATE_UID_RANGE
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            uid = os.stat(f"/proc/{pid}").st_uid
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if lo <= uid < hi and state not in ("Z", "X"):   # exited ones wait for init to reap them
            found.add(pid)
    return found


def test_fork_bomb_is_contained():
    if not sandbox._resolved.get("drop_uid"):
        pytest.skip("RLIMIT_NPROC per job needs root (its own user id per job); not run without it")
    before = _sandbox_processes()          # other sandbox jobs of this machine (not ours) are not counted
    res = run_sandboxed(["sh", "-c", "b() { b | b & }; b; sleep 3"], timeout_s=3, nproc=32)
    assert res.seconds < 15
    deadline = time.monotonic() + 5        # the namespace's processes die with its init, not instantly
    while (left := _sandbox_processes() - before) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"processes of the sandbox left running: {sorted(left)}"


def test_a_design_that_fills_the_disk_stays_in_its_cap(tmp_path):
    """A design writing file after file: under bwrap the job folder is a tmpfs of disk_bytes; the
    host folder gets nothing but the declared output."""
    code = ("module t; reg [7:0] m [0:65535]; integer i; reg [8*16:1] n;\n"
            "initial begin for (i = 0; i < 200; i = i + 1) begin $sformat(n, \"f%0d.hex\", i); "
            "$writememh(n, m); end $display(\"WROTE\"); $finish; end endmodule\n")
    wd = tmp_path / "job"
    wd.mkdir()
    assert run_sandboxed(["iverilog", "-o", "sim", "t.v"], {"t.v": code}, workdir=wd).ok
    run_sandboxed(["vvp", "-n", "sim"], workdir=wd, disk_bytes=1024**2, timeout_s=30)
    assert sorted(os.listdir(wd)) == ["sim", "t.v"]
    assert sum(p.stat().st_size for p in wd.iterdir()) < 1024**2


def test_killed_compile_leaves_no_temporaries(tmp_path):
    """iverilog keeps ivrl* temporaries in $TMP/$TMPDIR; a compile killed by the timeout leaves them
    in the (private) job folder, never in the machine's /tmp or the caller's folder."""
    env = run_sandboxed(["sh", "-c", 'echo "$TMP|$TMPDIR|$TEMP|$HOME"'])
    t, td, te, home = env.stdout.strip().split("|")
    assert t == td == te == home and os.path.basename(t).startswith("sftpb-sim-")
    big = "module t; " + " ".join(f"wire [63:0] w{i} = {i} * 3 + w{i - 1};" if i else "wire [63:0] w0 = 1;"
                                 for i in range(40000)) + " endmodule\n"
    wd = tmp_path / "job"
    wd.mkdir()
    before = {n for n in tmp_names() if n.startswith("ivrl")}
    res = run_sandboxed(["iverilog", "-o", "sim", "t.v"], {"t.v": big}, workdir=wd, timeout_s=0.5)
    assert res.timed_out
    assert sorted(os.listdir(wd)) == ["t.v"]
    assert {n for n in tmp_names() if n.startswith("ivrl")} <= before


def test_no_network_and_no_host_processes():
    res = run_sandboxed(["sh", "-c", "cat /proc/net/dev | wc -l; ls /proc | grep -c '^[0-9]'; ls /home /root /etc 2>&1"])
    lines = res.stdout.split("\n")
    assert int(lines[0]) <= 3          # only the loopback device
    assert int(lines[1]) <= 4          # only the sandbox's own processes
    assert res.stdout.count("No such file") == 2    # no /home, no /root
    assert res.stdout.split("/etc:\n")[1].split() == ["ld.so.cache"]   # /etc holds only the loader cache


# --- through the two runners ------------------------------------------------------------------

REF = "module TopModule(input a, input b, output y); assign y = a & b; endmodule\n"


def hostile_answer(task: str) -> str:
    return ("```verilog\nmodule TopModule(input a, input b, output y);\n  reg [7:0] m [0:1];\n"
            f"  initial begin m[0] = 8'h55; m[1] = 8'h66; {task} end\n  assign y = a & b;\nendmodule\n```\n")


def runner_attacks(out: Path) -> dict[str, str]:
    victim = out / "victim.hex"
    return {
        "writememh_abs": f'$writememh("{victim}", m);',
        "writememb_dotdot": f'$writememb("{rel_from_jobs(victim)}", m);',
        "dumpfile_abs": f'$dumpfile("{victim}"); $dumpvars;',
    }


VE_TEST = """`timescale 1 ps/1 ps
module stimulus_gen(input clk, output reg a, output reg b);
  initial begin a = 0; b = 0; repeat (40) @(posedge clk) {a, b} <= $random; #1 $finish; end
endmodule
module tb();
  typedef struct packed { int errors; int clocks; } stats;
  stats stats1;
  reg clk = 0;
  initial forever #5 clk = ~clk;
  wire a, b, y_ref, y_dut;
  stimulus_gen stim1(.clk, .a, .b);
  RefModule good1(.a, .b, .y(y_ref));
  TopModule top_module1(.a, .b, .y(y_dut));
  final $display("Mismatches: %1d in %1d samples", stats1.errors, stats1.clocks);
  always @(posedge clk, negedge clk) begin
    stats1.clocks++;
    if (y_ref !== y_dut) stats1.errors++;
  end
endmodule
"""


@pytest.mark.parametrize("word_list", [True, False])
def test_runners_never_pass_a_design_that_escaped(outside, monkeypatch, word_list):
    """With the word list the row is `forbidden`; without it (switched off here) the design still
    cannot touch the outside folder, whatever its status."""
    if not word_list:
        monkeypatch.setattr(verilog_metrics, "forbidden_constructs", lambda code: [])
        monkeypatch.setattr(verilogeval, "forbidden_constructs", lambda code: [])
    problem = verilogeval.Problem("Hostile_and", "and gate", REF.replace("TopModule", "RefModule"), VE_TEST)
    control = verilogeval.judge(problem, REF, expected_samples=None)
    assert control["status"] == PASS, control   # the harness works: a clean answer passes
    before = snapshot(outside)
    for name, task in runner_attacks(outside).items():
        row = {"id": name, "input": "and gate", "reference": REF, "prediction": hostile_answer(task)}
        vm = verilog_metrics.evaluate_one(row, timeout_s=20)
        ex = verilogeval.extract_code(hostile_answer(task), expected_module="TopModule")
        ve = verilogeval.judge(problem, ex.code, expected_samples=None)
        changed = snapshot(outside) != before
        assert not changed, f"{name} changed files outside its job folder"
        if word_list:
            assert vm["status"] == FORBIDDEN and ve["status"] == FORBIDDEN, (name, vm, ve)


def test_summaries_say_which_sandbox(tmp_path):
    rows = [{"id": "r", "input": "and", "reference": REF, "prediction": "```verilog\n" + REF + "```"}]
    summary = verilog_metrics.evaluate_predictions(rows, workers=1, progress=False)
    assert summary["sandbox"] == "bwrap"
