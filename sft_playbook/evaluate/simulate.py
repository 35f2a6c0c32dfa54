"""Compile and simulate untrusted Verilog with Icarus Verilog, one job per temporary folder.

Every compile and every simulation goes through `sft_playbook.verilog.sandbox.run_sandboxed`
(wall-clock timeout, CPU/memory/file-size limits, clean environment, capped output). A job
compiles its sources, deletes them, and runs `vvp -n` on the compiled image, which vvp reads
through a named pipe (`sandbox.run_sandboxed(streams=...)`): once loaded, the image (which holds
the testbench and its nonce) cannot be opened again by the simulated design. The END of stdout
and stderr is read back (separately), where the testbench prints its verdict.

Verdicts are only read from a line that carries a per-run random nonce (see `new_nonce`), which
lives ONLY in the testbench's format strings: never in a module, instance or variable name (a
design can read its own hierarchical name with `%m`). Such names use a different random key,
unknown when the candidate is compiled, so a candidate cannot reach the testbench's variables by
hierarchical reference either. `verdict_lines` accepts exactly one verdict line, on stdout; a
second one, or the nonce on stderr, is tampering (no pass). Candidates that use system tasks
which open, read or dump files or read command-line arguments are refused before simulation
(`forbidden_constructs`, on the source as written and after iverilog's preprocessor): $fopen, $fgets, $fscanf, $fread, $readmemh/b,
$value$plusargs, $test$plusargs, $dumpfile, $writememh/b, `include, ... This word list is an early,
explainable refusal only: isolation comes from the operating system (see the sandbox module).
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from collections.abc import Mapping, Sequence

from sft_playbook.verilog.sandbox import iverilog_available, job_dir, run_sandboxed

# Statuses a candidate can end in (shared by the differential check and VerilogEval).
PASS = "pass"
MISMATCH = "mismatch"
COMPILE_ERROR = "compile_error"
TIMEOUT = "timeout"
RUNTIME_ERROR = "runtime_error"        # no verdict: crashed, finished early, output limit, ...
FORBIDDEN = "forbidden"                # reads files / plusargs / includes files
EXTRACTION_FAILURE = "extraction_failure"
UNSUPPORTED = "unsupported"            # the reference cannot judge: ports beyond the generator, nondeterministic, reads files
REFERENCE_ERROR = "reference_error"    # the reference itself does not compile: not the candidate's fault
STATUSES = (PASS, MISMATCH, COMPILE_ERROR, TIMEOUT, RUNTIME_ERROR, FORBIDDEN, EXTRACTION_FAILURE,
            UNSUPPORTED, REFERENCE_ERROR)

SIM_FILE_BYTES = 8 * 1024**2      # a simulation may write at most this much per file (stdout included)
SIM_OUTPUT_CAP = 64 * 1024        # bytes of simulation output read back (the end of it)
COMPILE_OUTPUT_CAP = 16 * 1024

_FORBIDDEN_RE = re.compile(
    r"(\$(?:fgets|fgetc|ungetc|fscanf|fread|fseek|frewind|rewind|ftell|feof|readmemh|readmemb|"
    r"value\$plusargs|test\$plusargs|system|sreadmemh|sreadmemb|fopen|fopenr|fopenw|fopena|dumpfile|"
    r"writememh|writememb)\b|`include\b)")


def new_nonce() -> str:
    """A fresh random 12-hex-digit nonce for one testbench run (``secrets.token_hex``).

    Returns:
        12 lower-case hex digits (48 random bits).
    """
    return secrets.token_hex(6)


def strip_comments(code: str) -> str:
    """Remove // and /* */ comments. String literals and escaped identifiers (``\\x/*`` up to the
    next white space: a name, as the Verilog lexer reads it, not the start of a comment) are
    kept as they are.

    Returns:
        ``code`` without its comments: a ``//`` comment is removed up to (not including) its newline,
        a ``/* */`` comment is replaced by one space (an unterminated one removes the rest of the text).
    """
    out, i, n = [], 0, len(code)
    while i < n:
        c = code[i]
        if c == "\\":
            j = i + 1
            while j < n and not code[j].isspace():
                j += 1
            out.append(code[i:j])
            i = j
        elif c == '"':
            j = i + 1
            while j < n and code[j] != '"' and code[j] != "\n":
                j += 2 if code[j] == "\\" else 1
            out.append(code[i:j + 1])
            i = j + 1
        elif code.startswith("//", i):
            j = code.find("\n", i)
            i = n if j < 0 else j
        elif code.startswith("/*", i):
            j = code.find("*/", i + 2)
            out.append(" ")
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


# what the scan does not look into: string literals and escaped identifiers (`\\$fopen ` is a name)
_SCAN_BLANK_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"|\\\S+')
PREPROCESS_FILE_BYTES = 4 * 1024**2   # preprocessed text of one candidate, at most
PREPROCESS_TIMEOUT_S = 10.0


def _scan(code: str) -> set[str]:
    return set(m.group(1) for m in _FORBIDDEN_RE.finditer(_SCAN_BLANK_RE.sub(" ", strip_comments(code))))


def preprocess(code: str, *, timeout_s: float = PREPROCESS_TIMEOUT_S) -> str | None:
    """`code` after Icarus Verilog's own preprocessor (``iverilog -E``: macros expanded, token
    pasting done, `ifdef resolved), run in the sandbox; None when it fails or hits a limit (a
    macro bomb: `PREPROCESS_FILE_BYTES`, `timeout_s`).

    Returns:
        The preprocessed text (UTF-8, undecodable bytes replaced), or None when iverilog fails, runs
        past ``timeout_s`` seconds or writes more than ``PREPROCESS_FILE_BYTES`` (4 MiB).
    """
    wd = job_dir("sftpb-pp-")
    try:
        res = run_sandboxed(["iverilog", "-E", "-o", "pp.v", "design.sv"], {"design.sv": code}, workdir=wd,
                            timeout_s=timeout_s, cpu_s=int(timeout_s) + 2, file_bytes=PREPROCESS_FILE_BYTES,
                            output_cap=COMPILE_OUTPUT_CAP)
        out = wd / "pp.v"
        if not res.ok or not out.is_file():
            return None
        return out.read_bytes().decode("utf-8", errors="replace")
    finally:
        shutil.rmtree(wd, ignore_errors=True)


def forbidden_constructs(code: str, *, preprocessed: bool = True) -> list[str]:
    """System tasks/directives a design under test has no business using (they could read the
    testbench or its arguments back, or files of the machine). Looked for in the source as
    written and, with `preprocessed`, in the source after iverilog's preprocessor (`preprocess`),
    so a name made by a macro (`` `define F(x) $fop``x ``) is seen as the compiler sees it.
    Comments, strings and escaped identifiers are not looked into (`strip_comments` knows that
    ``\\x/*`` is a name). A word list is an early, explainable refusal only: the isolation is
    the sandbox's.

    Returns:
        The distinct constructs found, sorted (e.g. ``["$fopen", "`include"]``); empty when none.
    """
    found = _scan(code)
    if preprocessed and not found and iverilog_available():
        expanded = preprocess(code)
        if expanded is not None:
            found |= _scan(expanded)
    return sorted(found)


_ERROR_CLASSES = [
    ("syntax_error", re.compile(r"syntax error|Syntax in assignment|malformed|Invalid module item", re.I)),
    ("unknown_module", re.compile(r"Unknown module type|Unable to find the root module|is not a valid module", re.I)),
    ("port_mismatch", re.compile(r"port .*is not a port of|port ``.*'' is not a port|too many ports|"
                                 r"port .* not found|has no port", re.I)),
    ("undeclared_identifier", re.compile(r"Unable to bind|not declared|Unable to resolve|undeclared", re.I)),
    ("redeclaration", re.compile(r"already (been )?declared|has already been defined|duplicate", re.I)),
    ("invalid_lvalue", re.compile(r"l-value|cannot be driven by|is not a valid l|procedural assignment to a (net|wire)", re.I)),
    ("unsupported_feature", re.compile(r"sorry:", re.I)),
    ("width_or_type", re.compile(r"width|cannot be|not a constant|constant expression|type", re.I)),
    ("elaboration_error", re.compile(r"elaborat", re.I)),
]


def classify_compile_error(text: str) -> str:
    """The class of an iverilog error log.

    Returns:
        The name of the first matching pattern (``syntax_error``, ``unknown_module``, ``port_mismatch``,
        ``undeclared_identifier``, ``redeclaration``, ``invalid_lvalue``, ``unsupported_feature``,
        ``width_or_type``, ``elaboration_error``); ``timeout`` for an empty log; else ``other``.
    """
    for name, rx in _ERROR_CLASSES:
        if rx.search(text):
            return name
    return "timeout" if not text.strip() else "other"


def first_error_line(text: str) -> str:
    """The line of an iverilog log that says what went wrong.

    Returns:
        The first line mentioning an error (or iverilog's ``sorry``), else the first non-empty line,
        stripped and cut to at most 300 characters; '' for a blank log.
    """
    for line in text.splitlines():
        if "error" in line.lower() or "sorry" in line.lower():
            return line.strip()[:300]
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0].strip()[:300] if lines else ""


@dataclass
class SimRun:
    """What one compile + simulation produced (before a harness interprets the output)."""
    stage: str                 # "compile" or "simulate": the last stage reached
    ok: bool                   # the last stage ended normally (exit 0, no timeout)
    timed_out: bool
    returncode: int | None
    output: str                # compile log, or the end of the simulation output
    truncated: bool
    seconds: float
    error_class: str = ""
    extra: dict = field(default_factory=dict)
    stdout: str = ""           # simulation only: the two streams apart (verdicts come from stdout alone)
    stderr: str = ""

def compile_and_run(
    sources: Mapping[str, str],
    top: str,
    *,
    flags: Sequence[str] = ("-g2012",),
    plusargs: Sequence[str] = (),
    timeout_s: float = 30.0,
    compile_timeout_s: float = 60.0,
    cpu_s: int | None = None,
    file_bytes: int = SIM_FILE_BYTES,
    output_cap: int = SIM_OUTPUT_CAP,
) -> SimRun:
    """Compile `sources` (name -> text) with `iverilog <flags> -s top` and, when that works, run
    the result with `vvp -n`. Each call works in its own temporary folder, removed afterwards.

    Returns:
        A ``SimRun``: ``stage="compile"`` when compiling failed (``output``: the compile log,
        ``error_class``: ``compile_timeout`` or ``classify_compile_error``'s class); else
        ``stage="simulate"`` with the end of the simulation's stdout/stderr (at most ``output_cap``
        bytes each), ``returncode`` None on a timeout, and ``seconds`` = compile + simulation wall
        time in seconds.
    """
    wd = job_dir("sftpb-eval-")
    try:
        argv = ["iverilog", *flags, "-s", top, "-o", "sim", *sources]
        comp = run_sandboxed(argv, sources, workdir=wd, timeout_s=compile_timeout_s,
                             output_cap=COMPILE_OUTPUT_CAP, cpu_s=int(compile_timeout_s) + 5)
        log = (comp.stdout + comp.stderr).strip()
        if not comp.ok or not (wd / "sim").is_file():
            cls = "compile_timeout" if comp.timed_out else classify_compile_error(log)
            return SimRun("compile", False, comp.timed_out, comp.returncode, log, comp.truncated,
                          comp.seconds, cls)
        for name in sources:  # the simulation must not be able to read the sources back
            (wd / name).unlink(missing_ok=True)
        image = (wd / "sim").read_bytes()   # nor the compiled image: vvp reads it once, from a pipe
        (wd / "sim").unlink()
        sim = run_sandboxed(["vvp", "-n", "sim", *plusargs], workdir=wd, timeout_s=timeout_s,
                            cpu_s=cpu_s or int(timeout_s) + 5, file_bytes=file_bytes,
                            output_cap=output_cap, output_tail=True, outputs=(), streams={"sim": image})
        return SimRun("simulate", sim.ok, sim.timed_out, sim.returncode, sim.stdout + sim.stderr,
                      sim.truncated, comp.seconds + sim.seconds, extra={"compile_log": log[:2000]},
                      stdout=sim.stdout, stderr=sim.stderr)
    finally:
        shutil.rmtree(wd, ignore_errors=True)


TAMPERED = "tampered"


def verdict_lines(run: SimRun, nonce: str, pattern: str) -> tuple[list[tuple[str, ...]], str]:
    """Read the testbench's verdict from a run's output.

    The verdict is the ONE line of stdout matching ``<nonce-marker><pattern>`` (a regex with groups,
    anchored at the end of the line). A second such line, or the nonce anywhere on stderr, can only
    come from something other than the testbench.

    Returns:
        ``(verdicts, problem)``: ``([groups of the verdict line], "")`` when there is exactly one;
        ``([], "tampered")`` for a second line or the nonce on stderr; ``([], "")`` when there is none.
    """
    if nonce in run.stderr:
        return [], TAMPERED
    found = re.findall(rf"SFTPB_{re.escape(nonce)} {pattern}[ \t\r]*$", run.stdout, re.M)
    if len(found) > 1:
        return [], TAMPERED
    return [f if isinstance(f, tuple) else (f,) for f in found], ""


def default_workers(workers: int | None) -> int:
    """The number of worker threads to use.

    Returns:
        ``workers`` when given (at least 1), else the number of CPUs this process may run on (at least 1).
    """
    if workers:
        return max(1, int(workers))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)
