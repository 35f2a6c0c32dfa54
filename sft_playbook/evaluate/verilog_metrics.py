"""Verilog metrics for predictions on the test split: extraction, syntax, functional equivalence.

Public API
----------
``evaluate_predictions(rows, *, workers=None, timeout_s=20.0, cycles=200, seed=1, out_dir=None,
reset_cycles=2, reset_prob=0.0, progress=True) -> dict``

Each row is a dict with at least ``id``, ``input`` (the description/prompt; it may contain the
module header), ``reference`` (the full reference module; ``output`` is accepted when
``reference`` is missing) and ``prediction`` (the raw model text). Per row:

1. extraction (`extract.extract_code`): fences, ``[BEGIN]``/``[DONE]``, text around; stops at the
   first complete ``endmodule`` (or the one of the reference's top module); a body-only answer
   gets the header from the input, else from the reference;
2. syntax: the candidate alone compiles/elaborates with ``iverilog -g2012``;
3. functional equivalence: a differential testbench (`difftb`) drives reference and candidate
   with the same clock/reset/random inputs for ``cycles`` cycles from ``seed`` and compares every
   output every sample; the candidate's top module is the one named like the reference's (else
   its last root module).

Statuses (`simulate.STATUSES`): ``pass``, ``mismatch``, ``compile_error``, ``timeout``,
``runtime_error`` (no verdict / ended early / output limit), ``forbidden`` (file or plusarg
reading system tasks, `include), ``extraction_failure``, and two that are not the candidate's
fault and are left out of ``functional_pass_rate_testable``: ``unsupported`` (reference ports the
generator cannot drive) and ``reference_error`` (the reference does not compile).

Returns a summary dict: ``rows``, ``status_counts``, counts ``extracted``, ``compiled``,
``functional_pass``, ``mismatch``, ``compile_error``, ``timeout``, ``runtime_error``,
``forbidden``, ``extraction_failure``, ``unsupported``, ``reference_error``; rates
``extraction_rate``, ``compile_rate``, ``functional_pass_rate`` (over all rows) and
``functional_pass_rate_testable`` (over rows whose reference could be tested); ``error_classes``
(compile error classes etc.), ``extraction_methods``, ``seconds``, ``simulations_per_second``,
``sandbox`` ("bwrap", or "rlimits-only": weaker, see docs/security.md).
With ``out_dir``, writes ``verilog_results.jsonl`` (one row per prediction, in input order) and
``verilog_summary.json``.
"""
from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from sft_playbook.verilog.sandbox import compile_check, isolation, iverilog_available

from . import difftb
from .extract import extract_code
from .io import write_json_atomic, write_jsonl_atomic
from .parallel import parallel_map
from .simulate import (COMPILE_ERROR, EXTRACTION_FAILURE, FORBIDDEN, MISMATCH, PASS, REFERENCE_ERROR,
                       RUNTIME_ERROR, STATUSES, TIMEOUT, UNSUPPORTED, classify_compile_error, compile_and_run,
                       first_error_line, forbidden_constructs, new_nonce)
from .vparse import parse_modules, top_module

log = logging.getLogger(__name__)

FLAGS = ("-g2012",)
_ref_cache: dict[str, tuple[bool, str]] = {}
_ref_lock = threading.Lock()


def _reference_compiles(code: str) -> tuple[bool, str]:
    key = hashlib.sha256(code.encode()).hexdigest()
    with _ref_lock:
        if key in _ref_cache:
            return _ref_cache[key]
    res = compile_check(code, flags=FLAGS)
    val = (res.ok, first_error_line(res.stdout + res.stderr))
    with _ref_lock:
        _ref_cache[key] = val
    return val


def evaluate_one(row: dict[str, Any], *, timeout_s: float = 20.0, cycles: int = 200, seed: int = 1,
                 reset_cycles: int = 2, reset_prob: float = 0.0) -> dict[str, Any]:
    """The result for one prediction row (see the module docstring)."""
    rid = row.get("id")
    reference = row.get("reference") or row.get("output") or ""
    prediction = row.get("prediction")
    out: dict[str, Any] = {"id": rid, "status": None, "compiled": False}
    if not isinstance(prediction, str):
        out.update(status=EXTRACTION_FAILURE, error_class="no prediction field", extraction="none", code="")
        return out
    ref_mods = parse_modules(reference)
    if not ref_mods:  # MG-Verilog style: the reference is a module body; its header is in the input
        ref_ex = extract_code(reference, input_text=row.get("input"))
        if ref_ex.ok:
            reference = ref_ex.code
            ref_mods = parse_modules(reference)
            out["reference_header"] = "from_input"
    ref_top = top_module(ref_mods)
    ex = extract_code(prediction, expected_module=ref_top.name if ref_top else None,
                      input_text=row.get("input"), reference=reference)
    out.update(extraction=ex.method, code=ex.code)
    if not ex.ok:
        out.update(status=EXTRACTION_FAILURE, error_class=ex.reason)
        return out
    bad = forbidden_constructs(ex.code)
    if bad:
        out.update(status=FORBIDDEN, error_class="forbidden:" + ",".join(bad))
        return out
    t0 = time.monotonic()
    comp = compile_check(ex.code, flags=FLAGS, timeout_s=timeout_s)
    if not comp.ok:
        log_text = comp.stdout + comp.stderr
        out.update(status=TIMEOUT if comp.timed_out else COMPILE_ERROR,
                   error_class="compile_timeout" if comp.timed_out else classify_compile_error(log_text),
                   error=first_error_line(log_text), seconds=round(time.monotonic() - t0, 3))
        return out
    out["compiled"] = True
    if ref_top is None:
        out.update(status=REFERENCE_ERROR, error_class="no module in the reference")
        return out
    ok, err = _reference_compiles(reference)
    if not ok:
        out.update(status=REFERENCE_ERROR, error_class="reference does not compile", error=err)
        return out
    if ref_top.unsupported or not any(p.direction == "output" for p in ref_top.ports):
        out.update(status=UNSUPPORTED, error_class="; ".join(ref_top.unsupported) or "reference has no outputs")
        return out
    cand_top = top_module(parse_modules(ex.code), prefer=ref_top.name)
    if cand_top is None:
        out.update(status=COMPILE_ERROR, error_class="unknown_module", error="no module in the candidate")
        return out
    missing = [p.name for p in ref_top.ports if not cand_top.port(p.name)]
    if missing and not cand_top.unsupported:
        out.update(status=COMPILE_ERROR, error_class="port_mismatch",
                   error=f"candidate {cand_top.name} lacks port(s) {', '.join(missing)}")
        return out
    tb = difftb.build(reference, ref_top, [m.name for m in ref_mods], ex.code, cand_top, nonce=new_nonce(),
                      cycles=cycles, seed=seed, reset_cycles=reset_cycles, reset_prob=reset_prob)
    out.update(clocks=tb.clocks, resets=[f"{n}{' (active low)' if low else ''}" for n, low in tb.resets])
    run = compile_and_run(tb.files, tb.top, flags=FLAGS, timeout_s=timeout_s)
    out["seconds"] = round(time.monotonic() - t0, 3)
    if run.stage == "compile":
        out.update(status=TIMEOUT if run.timed_out else COMPILE_ERROR,
                   error_class=run.error_class if run.error_class != "other" else "testbench_compile",
                   error=first_error_line(run.output))
        return out
    if run.timed_out:
        out.update(status=TIMEOUT, error_class="simulation_timeout")
        return out
    res = re.findall(rf"^SFTPB_{tb.nonce} RESULT mismatches=(\d+) samples=(\d+) first=(-?\d+)\s*$", run.output, re.M)
    if not res:
        out.update(status=RUNTIME_ERROR, error_class="output_limit" if run.truncated or run.returncode == -25 else "no_verdict",
                   returncode=run.returncode)
        return out
    mism, samples, first = (int(x) for x in res[-1])
    out.update(mismatches=mism, samples=samples)
    if samples != tb.expected_samples:
        out.update(status=RUNTIME_ERROR, error_class="sample_count_mismatch", expected_samples=tb.expected_samples)
        return out
    if mism == 0:
        out["status"] = PASS
        return out
    per_out = dict(re.findall(rf"^SFTPB_{tb.nonce} OUTPUT (\S+) mismatches=(\d+)", run.output, re.M))
    fm = re.search(rf"^SFTPB_{tb.nonce} FIRST (.*)$", run.output, re.M)
    out.update(status=MISMATCH, error_class="functional_mismatch", first_mismatch=fm.group(1) if fm else None,
               first_mismatch_time_ns=first, output_mismatches={k: int(v) for k, v in per_out.items() if int(v)})
    return out


def summarize(results: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    n = len(results)
    sc = Counter(r["status"] for r in results)
    compiled = sum(bool(r.get("compiled")) for r in results)
    testable = n - sc[UNSUPPORTED] - sc[REFERENCE_ERROR]
    sims = sum(1 for r in results if r["status"] in (PASS, MISMATCH, RUNTIME_ERROR) or r.get("error_class") == "simulation_timeout")
    rate = lambda a, b: (a / b) if b else 0.0  # noqa: E731
    return {
        "rows": n,
        "status_counts": {s: sc[s] for s in STATUSES if sc[s]},
        "extracted": n - sc[EXTRACTION_FAILURE],
        "compiled": compiled,
        "functional_pass": sc[PASS],
        "mismatch": sc[MISMATCH],
        "compile_error": sc[COMPILE_ERROR],
        "timeout": sc[TIMEOUT],
        "runtime_error": sc[RUNTIME_ERROR],
        "forbidden": sc[FORBIDDEN],
        "extraction_failure": sc[EXTRACTION_FAILURE],
        "unsupported": sc[UNSUPPORTED],
        "reference_error": sc[REFERENCE_ERROR],
        "extraction_rate": rate(n - sc[EXTRACTION_FAILURE], n),
        "compile_rate": rate(compiled, n),
        "functional_pass_rate": rate(sc[PASS], n),
        "functional_pass_rate_testable": rate(sc[PASS], testable),
        "error_classes": dict(Counter(r.get("error_class") for r in results if r["status"] != PASS and r.get("error_class"))),
        "extraction_methods": dict(Counter(r.get("extraction", "none") for r in results)),
        "seconds": round(seconds, 2),
        "simulations_per_second": round(sims / seconds, 2) if seconds > 0 else None,
        "sandbox": isolation(),  # "bwrap" (OS isolation) or "rlimits-only" (weaker)
    }


def evaluate_predictions(rows: Iterable[dict[str, Any]], *, workers: int | None = None, timeout_s: float = 20.0,
                         cycles: int = 200, seed: int = 1, out_dir: str | Path | None = None,
                         reset_cycles: int = 2, reset_prob: float = 0.0, progress: bool = True) -> dict[str, Any]:
    """Score prediction rows; see the module docstring."""
    rows = list(rows)
    if not iverilog_available():
        raise RuntimeError("Icarus Verilog (iverilog, vvp) is not installed: bash test.sh or run_sft.sh installs it, "
                           "or run 'sudo apt-get install iverilog'")
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise ValueError(f"prediction row {i}: expected a dict, got {type(r).__name__}")
        missing = [k for k in ("id", "prediction") if k not in r]
        if missing or not (r.get("reference") or r.get("output")):
            raise ValueError(f"prediction row {i} (id={r.get('id')!r}): missing field(s) "
                             f"{', '.join(missing + ([] if (r.get('reference') or r.get('output')) else ['reference']))}")
    t0 = time.monotonic()

    def one(row):
        try:
            return evaluate_one(row, timeout_s=timeout_s, cycles=cycles, seed=seed,
                                reset_cycles=reset_cycles, reset_prob=reset_prob)
        except Exception as exc:  # a parser corner case must not stop the whole run
            log.warning("row %r: evaluation error: %s", row.get("id"), exc)
            return {"id": row.get("id"), "status": RUNTIME_ERROR, "compiled": False,
                    "error_class": "evaluator_error", "error": f"{type(exc).__name__}: {exc}"}

    results = parallel_map(one, rows, workers=workers, desc="Verilog equivalence", progress=progress)
    summary = summarize(results, time.monotonic() - t0)
    if out_dir is not None:
        out = Path(out_dir)
        write_jsonl_atomic(out / "verilog_results.jsonl", results)
        write_json_atomic(out / "verilog_summary.json", summary)
        log.info("Verilog results written to %s", out)
    log.info("Verilog: %d rows, compile rate %.3f, functional pass rate %.3f (%.3f of testable); %s",
             summary["rows"], summary["compile_rate"], summary["functional_pass_rate"],
             summary["functional_pass_rate_testable"], summary["status_counts"])
    return summary
