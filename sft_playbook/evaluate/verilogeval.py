"""VerilogEval v2 spec-to-rtl runner: prompts as upstream builds them, n samples per problem,
judged with the problem's own testbench, pass@k with the unbiased estimator.

Public API
----------
``run_benchmark(generate_fn, problems_dir, *, n_samples=1, k_list=(1,), shots=0, workers=None,
out_dir=None, timeout_s=30.0, problems=None, include_system=True, progress=True) -> dict``

    ``generate_fn(prompts: list[str], n: int) -> list[list[str]]`` returns n raw answers per
    prompt (the caller wraps its model). Each prompt is the full upstream text: the system message
    (`SYSTEM_PROMPT`, unless ``include_system=False`` — then the caller must send it as the chat
    system message), optional in-context examples (``shots`` = 0..len(SHOT_EXAMPLES)), then
    ``Question:`` + the problem's specification + the instruction to enclose the code in
    ``[BEGIN]``/``[DONE]`` + ``Answer:``. Code is extracted (`extract.extract_code`, expected
    module ``TopModule``), compiled with the problem's testbench and reference using upstream's
    flags (``iverilog -Wall -Winfloop -Wno-timescale -g2012``) and simulated with a wall-clock
    timeout (upstream: 30 s).

    Writes into out_dir (when given): ``verilogeval_samples.jsonl`` (one row per sample: problem,
    sample index, status, mismatches, samples, error class, extracted code, raw answer),
    ``verilogeval_problems.jsonl`` (one row per problem: n, c, pass@k, statuses) and
    ``verilogeval_summary.json``. Returns the summary dict: ``problems``, ``n_samples``,
    ``pass_at_k`` ({"pass@1": ...}), ``status_counts``, ``passed_problems``, ``failed_problems``,
    ``compile_rate``, ``iverilog_version``, ``sandbox`` ("bwrap" or "rlimits-only"), ``seconds``.

``score_references(problems_dir, **kw) -> dict``: the same run with a generate_fn that answers
each prompt with the problem's reference solution (renamed to TopModule). With Icarus Verilog 11
153/156 pass (Prob099 is broken upstream; Prob151 and Prob156 need iverilog 12).

How a pass is decided (and why a fake line cannot pass)
-------------------------------------------------------
The testbench is copied with its top module, its instance names, its statistics variable and the
reference module renamed with a per-run random name key (a candidate can neither instantiate the
reference, nor reach into the testbench by hierarchical name: the key is unknown when it is
compiled), and its final ``Mismatches: E in N samples`` format string is prefixed with a different
per-run nonce, which is in no name (a design reads names with ``%m``) and which the design cannot
read from the compiled image (vvp reads it through a pipe; see simulate.compile_and_run). A
candidate passes only when exactly one such line appears on stdout (a second one, or the nonce on
stderr, is tampering), it says ``Mismatches: 0`` AND ``N`` equals the sample count the reference
itself gives under the same testbench (so ``$finish`` at time 0 or any early end fails).
Candidates using file or plusarg reading system tasks or `include are refused (an early refusal;
the isolation is the sandbox's).
``$dumpfile``/``$dumpvars`` are removed (no waveform is needed; saves time and disk).
"""
from __future__ import annotations

import logging
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Sequence

from sft_playbook.verilog.sandbox import isolation, iverilog_available, iverilog_version

from ..io import InputError, read_text
from .difftb import DEFAULT_TIMESCALE, rename_modules, wrap_unit
from .extract import DEFAULT_MAX_ANSWER_CHARS, extract_code
from ..io import write_json_atomic, write_jsonl_atomic
from .parallel import parallel_map
from .passk import mean_pass_at_k, pass_at_k
from .simulate import (COMPILE_ERROR, EXTRACTION_FAILURE, FORBIDDEN, MISMATCH, PASS, RUNTIME_ERROR,
                       TIMEOUT, compile_and_run, first_error_line, forbidden_constructs, new_nonce, strip_comments,
                       TAMPERED, verdict_lines)
from .vparse import parse_modules

log = logging.getLogger(__name__)

UPSTREAM_FLAGS = ("-Wall", "-Winfloop", "-Wno-timescale", "-g2012")
UPSTREAM_TIMEOUT_S = 30.0

SYSTEM_PROMPT = "You are a Verilog RTL designer that only writes code using correct Verilog syntax."
NO_EXPLAIN_SUFFIX = ("Enclose your code with [BEGIN] and [DONE]. Only output the code snippet\n"
                     "and do NOT output anything else.")

# In-context examples written for this project, in upstream's Question/Answer format.
SHOT_EXAMPLES: list[tuple[str, str]] = [
    (
        "I would like you to implement a module named TopModule with the following\n"
        "interface. All input and output ports are one bit unless otherwise\nspecified.\n\n"
        " - input  a (4 bits)\n - input  b (4 bits)\n - output y (4 bits)\n\n"
        "The module should output the bitwise AND of a and b.",
        "module TopModule (\n  input  logic [3:0] a,\n  input  logic [3:0] b,\n  output logic [3:0] y\n);\n\n"
        "  assign y = a & b;\n\nendmodule",
    ),
    (
        "I would like you to implement a module named TopModule with the following\n"
        "interface. All input and output ports are one bit unless otherwise\nspecified.\n\n"
        " - input  clk\n - input  reset\n - input  en\n - output q (8 bits)\n\n"
        "The module should implement an 8-bit counter that increments on the positive edge of\n"
        "clk when en is high. The reset input is active high synchronous and resets q to zero.",
        "module TopModule (\n  input  logic       clk,\n  input  logic       reset,\n  input  logic       en,\n"
        "  output logic [7:0] q\n);\n\n  always @(posedge clk) begin\n    if (reset)\n      q <= 8'd0;\n"
        "    else if (en)\n      q <= q + 8'd1;\n  end\n\nendmodule",
    ),
    (
        "I would like you to implement a module named TopModule with the following\n"
        "interface. All input and output ports are one bit unless otherwise\nspecified.\n\n"
        " - input  sel (2 bits)\n - input  d (4 bits)\n - output y\n\n"
        "The module should implement a 4-to-1 multiplexer: y is bit sel of d.",
        "module TopModule (\n  input  logic [1:0] sel,\n  input  logic [3:0] d,\n  output logic       y\n);\n\n"
        "  always @(*) begin\n    case (sel)\n      2'd0: y = d[0];\n      2'd1: y = d[1];\n"
        "      2'd2: y = d[2];\n      default: y = d[3];\n    endcase\n  end\n\nendmodule",
    ),
]


@dataclass
class Problem:
    """One VerilogEval problem: id (``ProbNNN_name``), prompt text, reference and testbench sources."""
    id: str
    prompt: str
    ref: str
    test: str


class ProblemSetError(ValueError):
    """The problem folder is missing, empty or incomplete; the message names the folder and problem."""


def resolve_problems_dir(problems_dir: str | Path) -> Path:
    """Accept the spec-to-rtl folder itself or a folder containing `spec-to-rtl/` or
    `dataset_spec-to-rtl/` (upstream's name).

    Returns:
        ``problems_dir/spec-to-rtl`` or ``problems_dir/dataset_spec-to-rtl`` when that folder exists
        (in that order), else ``problems_dir`` itself (which may not exist).
    """
    d = Path(problems_dir)
    for sub in ("spec-to-rtl", "dataset_spec-to-rtl"):
        if (d / sub).is_dir():
            return d / sub
    return d


def load_problems(problems_dir: str | Path, ids: Sequence[str] | None = None) -> list[Problem]:
    """Problems in the layout of VerilogEval v2 (`ProbNNN_name_{prompt.txt,ref.sv,test.sv}`, ids
    listed in `problems.txt` when present). `ids` picks a subset (full ids or `ProbNNN` prefixes).

    Returns:
        The problems in ``problems.txt`` order (without it: sorted by id), texts read BOM-tolerant.

    Raises:
        ProblemSetError: the folder is missing or has no problems, an asked id is unknown, a problem's file is missing or unreadable.
    """
    d = resolve_problems_dir(problems_dir)
    if not d.is_dir():
        raise ProblemSetError(f"VerilogEval problem folder not found: {d} (download it: bash evaluate.sh download)")
    listing = d / "problems.txt"
    if listing.is_file():
        all_ids = [ln.strip() for ln in read_text(listing).splitlines() if ln.strip()]
    else:
        all_ids = sorted(p.name[: -len("_prompt.txt")] for p in d.glob("*_prompt.txt"))
    if not all_ids:
        raise ProblemSetError(f"{d}: no problems (no problems.txt and no *_prompt.txt files)")
    if ids:
        wanted = list(ids)
        picked = [i for i in all_ids if any(i == w or i.startswith(w + "_") for w in wanted)]
        missing = [w for w in wanted if not any(i == w or i.startswith(w + "_") for i in all_ids)]
        if missing:
            raise ProblemSetError(f"{d}: unknown problem id(s): {', '.join(missing)}")
        all_ids = picked
    problems = []
    for pid in all_ids:
        files = {kind: d / f"{pid}_{kind}" for kind in ("prompt.txt", "ref.sv", "test.sv")}
        for path in files.values():
            if not path.is_file():
                raise ProblemSetError(f"{listing if listing.is_file() else d}: problem {pid}: missing file {path.name}")
        try:
            problems.append(Problem(pid, read_text(files["prompt.txt"]), read_text(files["ref.sv"]),
                                    read_text(files["test.sv"])))
        except InputError as exc:
            raise ProblemSetError(str(exc)) from None
    return problems


def build_prompt(spec: str, *, shots: int = 0, include_system: bool = True) -> str:
    """The full prompt text the way upstream's sv-generate builds it for spec-to-rtl (without
    rules and without explanations).

    Returns:
        The system line (when ``include_system``), ``shots`` worked examples as Question/Answer pairs
        with ``[BEGIN]``/``[DONE]``, then the ``spec`` as the last question; the text ends with
        ``Answer:`` and a newline.

    Raises:
        ValueError: ``shots`` is outside [0, number of shot examples].
    """
    if not 0 <= shots <= len(SHOT_EXAMPLES):
        raise ValueError(f"shots must be between 0 and {len(SHOT_EXAMPLES)}, got {shots}")
    parts = [SYSTEM_PROMPT + "\n"] if include_system else []
    for question, answer in SHOT_EXAMPLES[:shots]:
        parts.append(f"\nQuestion:\n{question.strip()}\n\n{NO_EXPLAIN_SUFFIX}\n\nAnswer:\n[BEGIN]\n{answer.strip()}\n[DONE]\n")
    parts.append(f"\nQuestion:\n{spec.strip()}\n\n{NO_EXPLAIN_SUFFIX}\n\nAnswer:\n")
    return "".join(parts)


# --- judging one candidate -------------------------------------------------------------------

_TB_NAMES = ("tb", "stim1", "good1", "top_module1", "stats1", "RefModule")
_DUMP_RE = re.compile(r"\$dump(file|vars)\s*\([^;]*\)\s*;")


def prepare_testbench(test: str, ref: str, nonce: str, name_key: str | None = None) -> tuple[str, str, str]:
    """The testbench with names made unguessable and the verdict line marked.

    The testbench's modules, instances and statistics (tb, stim1, good1, top_module1, stats1) and
    every module the reference defines (RefModule and any helper) get `name_key` (default a fresh
    random one), so a candidate can neither reach them by hierarchical reference nor collide with
    them; the verdict `nonce` goes ONLY into the `Mismatches:` format string (a candidate can read
    names at run time with `%m`, never the format strings: see simulate.compile_and_run).

    Returns:
        ``(testbench, reference, top)``: the renamed testbench (``$dumpfile``/``$dumpvars`` removed,
        ``SFTPB_<nonce>`` before ``Mismatches:``), the renamed reference, and the top module name
        ``tb_<key>``.

    Raises:
        ValueError: ``name_key`` equals ``nonce``.
    """
    key = name_key or new_nonce()
    if key == nonce:
        raise ValueError("name_key must differ from the verdict nonce (names are visible through %m)")
    rx = re.compile(r"\b(" + "|".join(_TB_NAMES) + r")\b")
    tb = rx.sub(lambda m: f"{m.group(1)}_{key}", test)
    tb = _DUMP_RE.sub("", tb)
    tb = tb.replace('"Mismatches: ', f'"SFTPB_{nonce} Mismatches: ')
    helpers = [m.name for m in parse_modules(ref) if m.name != "RefModule"]
    ref2 = rename_modules(ref, helpers, f"_{key}")
    ref2 = re.sub(r"\bRefModule\b", f"RefModule_{key}", ref2)
    return tb, ref2, f"tb_{key}"


_TIMESCALE_RE = re.compile(r"`timescale\s+([^\n/]+/[^\n]+?)\s*$", re.M)


def _units(tb: str, code: str, ref: str) -> dict[str, str]:
    """The three compilation units, in upstream's order (testbench, candidate, reference), each
    free of the others' directives (`default_nettype, macros); the testbench's `timescale is the
    default of all three (upstream's order gives the same).

    Returns:
        ``{"test.sv": ..., "cand.sv": ..., "ref.sv": ...}``, each ``difftb.wrap_unit``-ed with that
        timescale.
    """
    m = _TIMESCALE_RE.search(strip_comments(tb))
    ts = m.group(1).strip() if m else DEFAULT_TIMESCALE
    return {"test.sv": wrap_unit(tb, ts), "cand.sv": wrap_unit(code, ts), "ref.sv": wrap_unit(ref, ts)}


def judge(problem: Problem, code: str, *, expected_samples: int | None, timeout_s: float = UPSTREAM_TIMEOUT_S,
          flags: Sequence[str] = UPSTREAM_FLAGS) -> dict:
    """Status of one extracted candidate against the problem's testbench.

    Args:
        problem: the problem (prompt, reference, testbench).
        code: the extracted candidate (module ``TopModule``).
        expected_samples: the sample count the testbench gives with the reference; a different count
            is a runtime error. None: any count above 0 is accepted.
        timeout_s: the simulation's wall-clock limit, in seconds.
        flags: iverilog flags (upstream's by default).

    Returns:
        ``{"status": ...}`` (a ``simulate`` status) with, when it ran, ``seconds`` (compile +
        simulation wall time, 3 decimals), ``error_class`` for every failure (``forbidden:<names>``,
        a compile error class, ``simulation_timeout``, ``verdict_tampered``, ``output_limit``,
        ``no_verdict``, ``sample_count_mismatch``, ``no_samples``, ``functional_mismatch``), ``error``
        (first compile error line), ``returncode``, and ``mismatches``/``samples`` from the verdict line.
    """
    if not code.strip():
        return {"status": EXTRACTION_FAILURE}
    bad = forbidden_constructs(code)
    if bad:
        return {"status": FORBIDDEN, "error_class": "forbidden:" + ",".join(bad)}
    nonce = new_nonce()
    tb, ref, top = prepare_testbench(problem.test, problem.ref, nonce)
    run = compile_and_run(_units(tb, code, ref), top, flags=flags, timeout_s=timeout_s)
    out: dict = {"seconds": round(run.seconds, 3)}
    if run.stage == "compile":
        out.update(status=TIMEOUT if run.timed_out else COMPILE_ERROR, error_class=run.error_class,
                   error=first_error_line(run.output))
        return out
    verdicts, problem = verdict_lines(run, nonce, r"Mismatches: (\d+) in (\d+) samples")
    if run.timed_out:
        out.update(status=TIMEOUT, error_class="simulation_timeout")
        return out
    if not verdicts:
        cls = ("verdict_tampered" if problem == TAMPERED else
               "output_limit" if run.truncated or run.returncode == -25 else "no_verdict")
        out.update(status=RUNTIME_ERROR, error_class=cls, returncode=run.returncode)
        return out
    mism, samples = (int(x) for x in verdicts[0])
    out.update(mismatches=mism, samples=samples)
    if expected_samples is not None and samples != expected_samples:
        out.update(status=RUNTIME_ERROR, error_class="sample_count_mismatch", expected_samples=expected_samples)
    elif expected_samples is None and samples == 0:
        out.update(status=RUNTIME_ERROR, error_class="no_samples")
    elif mism == 0:
        out["status"] = PASS
    else:
        out.update(status=MISMATCH, error_class="functional_mismatch")
    return out


def reference_as_candidate(problem: Problem) -> str:
    """The reference renamed ``RefModule`` -> ``TopModule``, to run it as a candidate (a self-check).

    Returns:
        The reference source with every whole-word ``RefModule`` replaced by ``TopModule``.
    """
    return re.sub(r"\bRefModule\b", "TopModule", problem.ref)


def _size_cost(p: Problem) -> float:
    """A guess of a problem's simulation time before anything ran: the clock cycles its testbench
    asks for (sum of its repeat counts) and its length.

    Returns:
        The sum of the testbench's ``repeat (N)`` counts plus its length in characters (a relative
        cost, not seconds).
    """
    return float(sum(int(n) for n in re.findall(r"\brepeat\s*\(\s*(\d+)\s*\)", p.test)) + len(p.test))


def reference_runs(problems: Sequence[Problem], *, workers: int | None = None, timeout_s: float = UPSTREAM_TIMEOUT_S,
                   progress: bool = True) -> dict[str, tuple[int | None, float]]:
    """Run each problem's reference as the design (a self-check and the expected sample counts).

    Returns:
        ``{problem id: (samples, seconds)}``: the testbench's sample count when the reference passes,
        else None; compile + simulation wall time in seconds (0.0 when nothing ran).
    """
    def one(p: Problem):
        r = judge(p, reference_as_candidate(p), expected_samples=None, timeout_s=timeout_s)
        return (r.get("samples") if r["status"] == PASS else None), float(r.get("seconds", 0.0))
    runs = parallel_map(one, problems, workers=workers, desc="reference runs", progress=progress,
                        costs=[_size_cost(p) for p in problems])
    return {p.id: r for p, r in zip(problems, runs)}


# --- the benchmark ---------------------------------------------------------------------------

GenerateFn = Callable[[list[str], int], list[list[str]]]


def run_benchmark(generate_fn: GenerateFn, problems_dir: str | Path, *, n_samples: int = 1,
                  k_list: Sequence[int] = (1,), shots: int = 0, workers: int | None = None,
                  out_dir: str | Path | None = None, timeout_s: float = UPSTREAM_TIMEOUT_S,
                  problems: Sequence[str] | None = None, include_system: bool = True,
                  progress: bool = True, reference_samples: dict | None = None,
                  max_answer_chars: int | None = DEFAULT_MAX_ANSWER_CHARS) -> dict:
    """Generate, judge and score; see the module docstring. `reference_samples` maps problem id to
    the sample count its testbench gives with the reference (None: measured here, one extra
    simulation per problem; {}: no sample-count check, upstream's plain rule). An answer longer
    than `max_answer_chars` is an extraction failure ("answer too long").

    Returns:
        The summary: ``problems``, ``n_samples``, ``shots``, ``pass_at_k`` (``{"pass@k": mean in [0, 1]
        or None when n_samples < k}``), ``passed_problems``, ``failed_problems`` (ids),
        ``status_counts``, ``error_classes``, ``compile_rate`` (fraction of samples that compiled),
        ``iverilog_version``, ``sandbox`` (isolation level) and ``seconds`` (wall time). With
        ``out_dir`` the samples, per-problem rows and summary are also written there.

    Raises:
        RuntimeError: iverilog/vvp are not installed.
        ValueError: ``n_samples`` < 1, or ``generate_fn`` returned the wrong number of answers.
        ProblemSetError: the problems cannot be loaded (``load_problems``; a ValueError too).
        OutputError: a file in ``out_dir`` cannot be written.
    """
    t0 = time.monotonic()
    if n_samples < 1:
        raise ValueError("n_samples must be >= 1")
    if not iverilog_available():
        raise RuntimeError("Icarus Verilog (iverilog, vvp) is not installed: bash test.sh or run_sft.sh installs it, "
                           "or run 'sudo apt-get install iverilog'")
    probs = load_problems(problems_dir, problems)
    prompts = [build_prompt(p.prompt, shots=shots, include_system=include_system) for p in probs]
    log.info("VerilogEval: %d problems, %d sample(s) each, %d-shot", len(probs), n_samples, shots)
    answers = generate_fn(prompts, n_samples)
    if len(answers) != len(probs) or any(len(a) != n_samples for a in answers):
        raise ValueError(f"generate_fn must return {len(probs)} lists of {n_samples} answers, got "
                         f"{len(answers)} lists of sizes {sorted(set(len(a) for a in answers))}")
    if reference_samples is not None:
        expected, ref_seconds = dict(reference_samples), {}
    else:
        runs = reference_runs(probs, workers=workers, timeout_s=timeout_s, progress=progress)
        expected = {pid: c for pid, (c, _) in runs.items()}
        ref_seconds = {pid: s for pid, (_, s) in runs.items()}

    jobs = []
    for p, outs in zip(probs, answers):
        for j, ans in enumerate(outs):
            ex = extract_code(ans, expected_module="TopModule", max_chars=max_answer_chars)
            jobs.append((p, j, ans, ex))

    def one(job):
        p, j, ans, ex = job
        if not ex.ok:
            res = {"status": EXTRACTION_FAILURE, "error_class": ex.reason}
        else:
            res = judge(p, ex.code, expected_samples=expected.get(p.id), timeout_s=timeout_s)
        return {"problem": p.id, "sample": j, **res, "extraction": ex.method, "code": ex.code, "answer": ans}

    # longest simulations first (measured on the reference when known, else the testbench's length)
    costs = [ref_seconds.get(p.id, _size_cost(p) / 1e6) for p, *_ in jobs]
    rows = parallel_map(one, jobs, workers=workers, desc="VerilogEval", progress=progress, costs=costs)
    per_problem = []
    by_id: dict[str, list[dict]] = {}
    for r in rows:
        by_id.setdefault(r["problem"], []).append(r)
    for p in probs:
        rs = by_id[p.id]
        c = sum(r["status"] == PASS for r in rs)
        per_problem.append({
            "problem": p.id, "n": len(rs), "c": c,
            **{f"pass@{k}": pass_at_k(len(rs), c, k) for k in k_list if k <= len(rs)},
            "statuses": dict(Counter(r["status"] for r in rs)),
            "reference_samples": expected.get(p.id),
        })
    status_counts = Counter(r["status"] for r in rows)
    compiled = sum(r["status"] in (PASS, MISMATCH, RUNTIME_ERROR) or
                   (r["status"] == TIMEOUT and r.get("error_class") == "simulation_timeout") for r in rows)
    summary = {
        "problems": len(probs),
        "n_samples": n_samples,
        "shots": shots,
        "pass_at_k": {f"pass@{k}": mean_pass_at_k([(pp["n"], pp["c"]) for pp in per_problem], k) for k in k_list},
        "passed_problems": sum(pp["c"] > 0 for pp in per_problem),
        "failed_problems": [pp["problem"] for pp in per_problem if pp["c"] == 0],
        "status_counts": dict(status_counts),
        "error_classes": dict(Counter(r["error_class"] for r in rows if r["status"] != PASS and r.get("error_class"))),
        "compile_rate": compiled / len(rows) if rows else 0.0,
        "iverilog_version": ".".join(map(str, iverilog_version() or ())),
        "sandbox": isolation(),  # "bwrap" (OS isolation) or "rlimits-only" (weaker)
        "seconds": round(time.monotonic() - t0, 1),
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_jsonl_atomic(out / "verilogeval_samples.jsonl", rows)
        write_jsonl_atomic(out / "verilogeval_problems.jsonl", per_problem)
        write_json_atomic(out / "verilogeval_summary.json", summary)
        log.info("VerilogEval results written to %s", out)
    log.info("VerilogEval: %s; %d/%d problems solved; statuses %s", summary["pass_at_k"],
             summary["passed_problems"], len(probs), summary["status_counts"])
    return summary


def reference_generate_fn(problems_dir: str | Path, problems: Sequence[str] | None = None) -> GenerateFn:
    """A generate_fn that answers every prompt with the matching reference (as TopModule).

    Returns:
        ``generate(prompts, n)``: per prompt, ``n`` copies of ``[BEGIN]\\n<reference>\\n[DONE]``; the
        spec is read back from the prompt's last question (a prompt not built by ``build_prompt`` from
        these problems raises KeyError/IndexError).

    Raises:
        ProblemSetError: the problems cannot be loaded (``load_problems``).
    """
    probs = load_problems(problems_dir, problems)
    by_spec = {p.prompt.strip(): reference_as_candidate(p) for p in probs}

    def generate(prompts: list[str], n: int) -> list[list[str]]:
        outs = []
        for prompt in prompts:
            spec = prompt.rsplit("\nQuestion:\n", 1)[1].split(f"\n\n{NO_EXPLAIN_SUFFIX}", 1)[0].strip()
            outs.append([f"[BEGIN]\n{by_spec[spec]}\n[DONE]"] * n)
        return outs
    return generate


def score_references(problems_dir: str | Path, **kw) -> dict:
    """Score the reference solutions themselves (153/156 with iverilog 11).

    Args:
        problems_dir: the VerilogEval problems folder.
        **kw: ``run_benchmark``'s keyword arguments; ``reference_samples`` defaults to ``{}`` (no
            sample-count check: the references are what the counts would come from).

    Returns:
        ``run_benchmark``'s summary.

    Raises:
        RuntimeError: iverilog/vvp are not installed.
        ProblemSetError: the problems cannot be loaded.
    """
    kw.setdefault("reference_samples", {})  # the references are what the counts would come from
    return run_benchmark(reference_generate_fn(problems_dir, kw.get("problems")), problems_dir, **kw)
