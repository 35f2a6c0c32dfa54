"""Verilog metrics for predictions on the test split: extraction, syntax, functional equivalence.

Public API
----------
``evaluate_predictions(rows, *, workers=None, timeout_s=20.0, cycles=200, seed=1, out_dir=None,
reset_cycles=2, reset_prob=0.0, reset_pulses=4, max_cycles=None, progress=True) -> dict``

Each row is a dict with at least ``id``, ``input`` (the description/prompt; it may contain the
module header), ``reference`` (the reference design, one or more modules, or a module body;
``output`` is accepted when ``reference`` is missing) and ``prediction`` (the raw model text).
Per row:

0. the reference is judged first, once per reference (`check_reference`): it must compile on its
   own, have ports the testbench can drive, and pass against a renamed copy of itself under the
   very stimulus the candidate gets; otherwise the row is ``reference_error`` (does not compile,
   simulation timeout, no verdict) or ``unsupported`` (ports, file-reading tasks, two copies
   disagree: $random, $urandom, races), whatever the candidate does. The same run sizes the
   stimulus: while some reference output bit never took both values, 4x more cycles (up to
   ``max_cycles``, default 16 x ``cycles``) as long as that uncovers more bits;
1. extraction (`extract.extract_code`): every module of the answer's code block (helpers before
   or after the top), ``[BEGIN]``/``[DONE]``, text around; a body-only answer gets the header from
   the input's "Module header:", else from the reference;
2. syntax: the candidate alone compiles/elaborates with ``iverilog -g2012`` as its own unit
   (common default timescale, no directive from elsewhere), its top elaborated;
3. functional equivalence: a differential testbench (`difftb`) drives reference and candidate
   with the same clocks, resets (asserted again mid-run, between clock edges) and random inputs
   and compares every output three times per step; the candidate's top is the module named like
   the reference's, else the module no other instantiates (ports matching the reference's break
   ties).

Statuses (`simulate.STATUSES`): ``pass``, ``mismatch``, ``compile_error``, ``timeout``,
``runtime_error`` (no verdict / ended early / output limit), ``forbidden`` (file or plusarg
reading system tasks, `include), ``extraction_failure``, and two that are not the candidate's
fault and are left out of ``functional_pass_rate_testable``: ``unsupported`` and
``reference_error`` (see 0.).

Returns a summary dict: ``rows``, ``status_counts``, counts ``extracted``, ``compiled``,
``functional_pass``, ``mismatch``, ``compile_error``, ``timeout``, ``runtime_error``,
``forbidden``, ``extraction_failure``, ``unsupported``, ``reference_error``; ``excluded``
({"rows": n, "why": {"<status>: <reason>": count}}: the rows left out of the testable rate);
rates ``extraction_rate``, ``compile_rate``, ``functional_pass_rate`` (over all rows) and
``functional_pass_rate_testable`` (over rows whose reference could be tested); ``error_classes``
(compile error classes etc.), ``extraction_methods``, ``seconds``, ``simulations_per_second``,
``sandbox`` ("bwrap", or "rlimits-only": weaker, see docs/security.md).
With ``out_dir``, writes ``verilog_results.jsonl`` (one row per prediction, in input order; with
the clocks and resets used, how they were found, and the cycles run) and ``verilog_summary.json``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace as dc_replace
from pathlib import Path
from typing import Any
from collections.abc import Iterable

from sft_playbook.curate.hierarchy import ModuleIndex, check_verilog
from sft_playbook.settings import CompilesSettings
from sft_playbook.verilog.sandbox import compile_check, isolation, iverilog_available

from . import difftb
from .extract import DEFAULT_MAX_ANSWER_CHARS, extract_code
from ..io import write_json_atomic, write_jsonl_atomic
from .parallel import parallel_map
from .simulate import (COMPILE_ERROR, EXTRACTION_FAILURE, FORBIDDEN, MISMATCH, PASS, REFERENCE_ERROR,
                       RUNTIME_ERROR, STATUSES, TIMEOUT, UNSUPPORTED, classify_compile_error, compile_and_run,
                       first_error_line, forbidden_constructs, new_nonce, TAMPERED, verdict_lines)
from .vparse import Module, parse_modules, top_module

log = logging.getLogger(__name__)

FLAGS = ("-g2012",)
#: the standards curation's compile check tries (declared once, in the settings): used when a design
#: instantiates modules it does not define, to elaborate it with their definitions or black boxes
SUBMODULE_STANDARDS = tuple(CompilesSettings.model_fields["standards"].default)
SUBMODULE_FLAGS = tuple(CompilesSettings.model_fields["flags"].default)
NEEDS_MISSING_MODULES = "reference needs modules defined nowhere"
_ref_cache: dict[str, RefCheck] = {}
_ref_lock = threading.Lock()


@dataclass
class RefCheck:
    """What running the reference against a copy of itself said: `status` None (usable) or
    REFERENCE_ERROR / UNSUPPORTED with a reason; `cycles`: the run length the candidates get."""
    status: str | None
    error_class: str = ""
    error: str = ""
    cycles: int = 0
    coverage: dict = field(default_factory=dict)   # output -> "bits that took both values/width"
    keywords: str | None = None                     # `begin_keywords of the reference unit, if any
    reference: str | None = None                    # the reference as judged, when definitions were appended
    submodules: tuple[str, ...] = ()                # names whose definitions came from the module library
    external: tuple[str, ...] = ()                  # names defined nowhere (compiled as black boxes)


VERILOG_2005 = "1364-2005"


def _compile_alone(code: str, top: str | None, timeout_s: float, keywords: str | None = None):
    """Compile one design as its own unit (common default timescale, no directive leaks)."""
    return compile_check(difftb.wrap_unit(code, keywords=keywords), flags=FLAGS, timeout_s=timeout_s,
                         top=top if top and not top.startswith("\\") else None)


def _compile_either(code: str, top: str | None, timeout_s: float):
    """(result, keywords): compiled with SystemVerilog's keywords, else, when that is a syntax
    error, with Verilog-2005's (`begin_keywords "1364-2005"`: Verilog code that names things
    `logic`, `bit`, `do` or `rand`)."""
    comp = _compile_alone(code, top, timeout_s)
    if comp.ok or comp.timed_out:
        return comp, None
    old = _compile_alone(code, top, timeout_s, VERILOG_2005)
    return (old, VERILOG_2005) if old.ok else (comp, None)


def _verdict(run, nonce: str):
    """[(mismatches, samples, first)] from the one verdict line on stdout, or [] (see
    `simulate.verdict_lines`; tampering is reported by `_tampered`)."""
    found, _ = verdict_lines(run, nonce, r"RESULT mismatches=(\d+) samples=(\d+) first=(-?\d+)")
    return found


def _tampered(run, nonce: str) -> bool:
    return verdict_lines(run, nonce, r"RESULT mismatches=(\d+) samples=(\d+) first=(-?\d+)")[1] == TAMPERED


def elaborate_with_library(code: str, library: ModuleIndex | None, timeout_s: float):
    """``hierarchy.check_verilog`` of ``code`` with curation's standards: the modules it instantiates
    but does not define get their definition from ``library`` (the corpus's module index; per name
    the first that fits) or, defined nowhere, a black box (ports from the instances). Returns the
    ``Verdict`` (``ok``, ``ok_with_submodules``, ``unresolved_submodule``, ``error``, ``timeout``)."""
    return check_verilog(code, compile_check, SUBMODULE_STANDARDS, SUBMODULE_FLAGS, timeout_s, library)


def library_key(library: ModuleIndex | None) -> str | None:
    """What identifies a module library in the reference cache: its content's ``fingerprint``
    (``build_module_index``), else the object itself for as long as it lives."""
    if library is None:
        return None
    fp = getattr(library, "fingerprint", None)
    if fp is None:
        fp = f"object-{uuid.uuid4().hex}"
        library.fingerprint = fp    # kept on the object for as long as it lives
    return fp


def check_reference(reference: str, ref_mods: list[Module], ref_top: Module, *, timeout_s: float, cycles: int,
                    max_cycles: int, seed: int, reset_cycles: int, reset_prob: float, reset_pulses: int,
                    library: ModuleIndex | None = None) -> RefCheck:
    """Is the reference usable as a judge, and how long must the run be? (cached per reference
    and settings). The reference must compile on its own, have ports the testbench can drive,
    use no file-reading system tasks, and simulate to a verdict against a renamed copy of itself
    with zero mismatches; a copy that disagrees means the reference is nondeterministic
    ($random, $time, races): UNSUPPORTED. Rare events: while some output bit of the reference
    never took both values, the run is made 4x longer, up to `max_cycles`, as long as each longer
    run makes more output bits take both values (a bit that is constant by design does not keep
    lengthening the run).

    A reference that does not compile only because it instantiates modules it does not define
    (a FIFO's RAM, a vendor cell: real rows do) is elaborated with ``library``'s definitions
    (``elaborate_with_library``); when they resolve it, it is judged with them appended
    (``RefCheck.reference``, ``submodules``); a module defined nowhere makes it
    ``reference_error`` "reference needs modules defined nowhere" (``external``: those names): it
    cannot be simulated, but a candidate's compile is still judged against the same black boxes."""
    key = hashlib.sha256(json.dumps([reference, ref_top.name, timeout_s, cycles, max_cycles, seed, reset_cycles,
                                     reset_prob, reset_pulses, library_key(library)]
                                    ).encode()).hexdigest()
    with _ref_lock:
        if key in _ref_cache:
            return _ref_cache[key]
    kw = dict(timeout_s=timeout_s, cycles=cycles, max_cycles=max_cycles, seed=seed, reset_cycles=reset_cycles,
              reset_prob=reset_prob, reset_pulses=reset_pulses)
    res = _check_reference(reference, ref_mods, ref_top, **kw)
    if res.status == REFERENCE_ERROR and res.error_class == "reference does not compile" \
            and "Unknown module type" in res.error:
        v = elaborate_with_library(reference, library, timeout_s)
        if v.status == "ok_with_submodules":
            whole = reference + "\n" + v.definitions
            res = dc_replace(_check_reference(whole, parse_modules(whole), ref_top, **kw), reference=whole,
                             submodules=v.submodules)
        elif v.status == "unresolved_submodule":
            missing = tuple(dict.fromkeys(v.unresolved + v.mismatched))
            where = " in the module library" if library is not None else ""
            res = RefCheck(REFERENCE_ERROR, NEEDS_MISSING_MODULES,
                           f"{', '.join(missing)} (defined nowhere{where}"
                           f"{'; ' + ', '.join(v.mismatched) + ' defined with other ports' if v.mismatched else ''})",
                           submodules=v.submodules, external=missing)
    with _ref_lock:
        _ref_cache[key] = res
    return res


def _check_reference(reference, ref_mods, ref_top, *, timeout_s, cycles, max_cycles, seed, reset_cycles,
                     reset_prob, reset_pulses) -> RefCheck:
    kw: list[str | None] = [None]

    def alone() -> RefCheck | None:  # asked only when something failed: whose fault is it?
        comp, kw[0] = _compile_either(reference, ref_top.name, timeout_s)
        if comp.ok:
            return None
        return RefCheck(REFERENCE_ERROR, "reference does not compile" if not comp.timed_out else "reference compile timeout",
                        first_error_line(comp.stdout + comp.stderr))

    if ref_top.unsupported or not any(p.direction == "output" for p in ref_top.ports) or forbidden_constructs(reference):
        return alone() or _static_unsupported(reference, ref_top)
    names = [m.name for m in ref_mods]
    roles = difftb.classify(ref_top, reference)
    n = max(1, int(cycles))
    prev = None
    while True:
        nonce = new_nonce()
        copy_suffix = f"__cpy_{new_nonce()}"   # a name: never the verdict's nonce
        copy = difftb.rename_modules(reference, names, copy_suffix)
        tb = difftb.build(reference, ref_top, names, copy, dc_replace(ref_top, name=ref_top.name + copy_suffix),
                          nonce=nonce, cycles=n, seed=seed, reset_cycles=reset_cycles, reset_prob=reset_prob,
                          reset_pulses=reset_pulses, roles=roles, coverage=True, ref_keywords=kw[0],
                          cand_keywords=kw[0])
        run = compile_and_run(tb.files, tb.top, flags=FLAGS, timeout_s=timeout_s)
        if run.stage == "compile":  # unless it fails alone too, the testbench generator cannot drive it
            if kw[0] is None:
                err = alone()
                if err:
                    return err
                if kw[0]:  # Verilog-2005 keywords make it compile: again with them
                    continue
            return RefCheck(UNSUPPORTED, "testbench for the reference does not compile", first_error_line(run.output))
        res = _verdict(run, nonce)
        ended = not run.timed_out and res and int(res[-1][1]) == tb.expected_samples
        if not ended and prev is not None:  # a longer run is too slow or ends early: keep the one that worked
            return RefCheck(None, cycles=prev[0], coverage=prev[2], keywords=kw[0])
        if run.timed_out:
            return RefCheck(REFERENCE_ERROR, "reference simulation timeout", f"{n} cycles")
        if not ended:
            return RefCheck(REFERENCE_ERROR, "reference simulation gives no verdict", f"returncode {run.returncode}")
        if int(res[-1][0]):
            fm = re.search(rf"^SFTPB_{nonce} FIRST (.*)$", run.output, re.M)
            return RefCheck(UNSUPPORTED, "reference is nondeterministic (two copies disagree under the same stimulus)",
                            fm.group(1) if fm else "")
        cover = {o: (int(b), int(w)) for o, b, w in
                 re.findall(rf"^SFTPB_{nonce} COVER (\S+) both=(\d+) width=(\d+)", run.output, re.M)}
        got = sum(b for b, _ in cover.values())
        if prev is not None and got <= prev[1]:  # 4x longer found nothing new: the shorter run it is
            return RefCheck(None, cycles=prev[0], coverage=prev[2], keywords=kw[0])
        if all(b >= w for b, w in cover.values()) or n * 4 > max_cycles:
            return RefCheck(None, cycles=n, coverage={o: f"{b}/{w}" for o, (b, w) in cover.items()}, keywords=kw[0])
        prev = (n, got, {o: f"{b}/{w}" for o, (b, w) in cover.items()})
        n *= 4


def _static_unsupported(reference: str, ref_top: Module) -> RefCheck:
    bad = forbidden_constructs(reference)
    if ref_top.unsupported or not any(p.direction == "output" for p in ref_top.ports):
        return RefCheck(UNSUPPORTED, "; ".join(ref_top.unsupported) or "reference has no outputs")
    return RefCheck(UNSUPPORTED, "reference uses " + ",".join(bad))


def evaluate_one(row: dict[str, Any], *, timeout_s: float = 20.0, cycles: int = 200, seed: int = 1,
                 reset_cycles: int = 2, reset_prob: float = 0.0, reset_pulses: int = 4,
                 max_cycles: int | None = None, max_answer_chars: int | None = DEFAULT_MAX_ANSWER_CHARS,
                 library: ModuleIndex | None = None) -> dict[str, Any]:
    """The result for one prediction row (see the module docstring). `max_cycles` (default
    16 x cycles) bounds the longer runs given to references with rare events; a prediction
    longer than `max_answer_chars` is an extraction failure ("answer too long"). `library`: the
    corpus's module index (``hierarchy.build_module_index``) for designs that instantiate modules
    defined in other rows (see ``check_reference``); the candidate gets the same: a module it
    instantiates but does not define comes from the library, or is a black box when the reference
    needs that same module and nothing defines it (``compiled_with`` says which)."""
    rid = row.get("id")
    reference = row.get("reference") or row.get("output") or ""
    prediction = row.get("prediction")
    out: dict[str, Any] = {"id": rid, "status": None, "compiled": False}
    ref_mods = parse_modules(reference)
    if not ref_mods:  # MG-Verilog style: the reference is a module body; its header is in the input
        ref_ex = extract_code(reference, input_text=row.get("input"), max_chars=None)
        if ref_ex.ok:
            reference = ref_ex.code
            ref_mods = parse_modules(reference)
            out["reference_header"] = "from_input"
    ref_top = top_module(ref_mods)
    ref = None
    if ref_top is None:
        ref = RefCheck(REFERENCE_ERROR, "no module in the reference")
    else:
        ref = check_reference(reference, ref_mods, ref_top, timeout_s=timeout_s, cycles=cycles,
                              max_cycles=int(max_cycles or 16 * cycles), seed=seed, reset_cycles=reset_cycles,
                              reset_prob=reset_prob, reset_pulses=reset_pulses, library=library)
        if ref.reference is not None:           # judged with the library's definitions appended
            reference = ref.reference
            ref_mods = parse_modules(reference)
        if ref.submodules:
            out["reference_submodules"] = list(ref.submodules)

    def blame_reference() -> dict[str, Any]:  # not the candidate's fault: reported, not counted
        out.update(status=ref.status, error_class=ref.error_class)
        if ref.error:
            out["error"] = ref.error
        return out

    if not isinstance(prediction, str):
        out.update(status=EXTRACTION_FAILURE, error_class="no prediction field", extraction="none", code="")
        return blame_reference() if ref.status else out
    ex = extract_code(prediction, expected_module=ref_top.name if ref_top else None,
                      input_text=row.get("input"), reference=reference, max_chars=max_answer_chars)
    out.update(extraction=ex.method, code=ex.code)
    if not ex.ok:
        out.update(status=EXTRACTION_FAILURE, error_class=ex.reason)
        return blame_reference() if ref.status else out
    bad = forbidden_constructs(ex.code)
    if bad:
        out.update(status=FORBIDDEN, error_class="forbidden:" + ",".join(bad))
        return blame_reference() if ref.status else out
    cand_top = top_module(parse_modules(ex.code), prefer=ref_top.name if ref_top else None, reference=ref_top)
    t0 = time.monotonic()

    cand_kw: list[str | None] = [None]
    cand_code = [ex.code]    # with the library's definitions appended when it needs them

    def with_library(log_text: str) -> bool:
        """The candidate instantiates modules it does not define: elaborated with the library's
        definitions, and black boxes only for names the reference needs too and nothing defines."""
        v = elaborate_with_library(ex.code, library, timeout_s)
        boxes = tuple(dict.fromkeys(v.unresolved + v.mismatched))
        if v.status == "ok_with_submodules" or (v.status == "unresolved_submodule" and boxes
                                                and set(boxes) <= set(ref.external)):
            out["compiled"] = True
            out["compiled_with"] = {"submodules": list(v.submodules), "black_boxes": list(boxes)}
            cand_code[0] = ex.code + "\n" + v.definitions
            return True
        if v.status == "error":
            out.update(status=COMPILE_ERROR, error_class=classify_compile_error(v.error), error=v.error,
                       seconds=round(time.monotonic() - t0, 3))
        else:
            out.update(status=TIMEOUT if v.status == "timeout" else COMPILE_ERROR,
                       error_class="compile_timeout" if v.status == "timeout" else classify_compile_error(log_text),
                       error=first_error_line(log_text), seconds=round(time.monotonic() - t0, 3))
        return False

    def compile_alone() -> bool:  # the candidate on its own: for the compile rate and the error class
        comp, cand_kw[0] = _compile_either(ex.code, cand_top.name if cand_top else None, timeout_s)
        if comp.ok:
            out["compiled"] = True
            if cand_kw[0]:
                out["keywords"] = cand_kw[0]
            return True
        log_text = comp.stdout + comp.stderr
        if not comp.timed_out and "Unknown module type" in first_error_line(log_text):
            return with_library(log_text)
        out.update(status=TIMEOUT if comp.timed_out else COMPILE_ERROR,
                   error_class="compile_timeout" if comp.timed_out else classify_compile_error(log_text),
                   error=first_error_line(log_text), seconds=round(time.monotonic() - t0, 3))
        return False

    missing = [p.name for p in ref_top.ports if not cand_top.port(p.name)] if cand_top and ref_top else []
    if ref.status or cand_top is None or (missing and not cand_top.unsupported):
        if not compile_alone() or ref.status:
            return blame_reference() if ref.status else out
        if cand_top is None:
            out.update(status=COMPILE_ERROR, error_class="unknown_module", error="no module in the candidate")
        else:
            out.update(status=COMPILE_ERROR, error_class="port_mismatch",
                       error=f"candidate {cand_top.name} lacks port(s) {', '.join(missing)}")
        return out
    # the testbench compiles the candidate anyway; it is compiled alone only when that fails
    def testbench():
        tb = difftb.build(reference, ref_top, [m.name for m in ref_mods], cand_code[0], cand_top, nonce=new_nonce(),
                          cycles=ref.cycles, seed=seed, reset_cycles=reset_cycles, reset_prob=reset_prob,
                          reset_pulses=reset_pulses, ref_keywords=ref.keywords, cand_keywords=cand_kw[0])
        return tb, compile_and_run(tb.files, tb.top, flags=FLAGS, timeout_s=timeout_s)

    tb, run = testbench()
    out.update(clocks=tb.clocks, resets=[f"{n}{' (active low)' if low else ''}" for n, low in tb.resets],
               found_by=tb.found_by, cycles=ref.cycles)
    if run.stage == "compile":
        if not compile_alone():
            return out
        if cand_kw[0] or cand_code[0] != ex.code:  # Verilog-2005 keywords, or the library's modules: again
            tb, run = testbench()
    out["seconds"] = round(time.monotonic() - t0, 3)
    if run.stage == "compile":
        out.update(status=TIMEOUT if run.timed_out else COMPILE_ERROR,
                   error_class=run.error_class if run.error_class != "other" else "testbench_compile",
                   error=first_error_line(run.output))
        return out
    out["compiled"] = True
    if run.timed_out:
        out.update(status=TIMEOUT, error_class="simulation_timeout")
        return out
    res = _verdict(run, tb.nonce)
    if not res:
        cls = ("verdict_tampered" if _tampered(run, tb.nonce) else
               "output_limit" if run.truncated or run.returncode == -25 else "no_verdict")
        out.update(status=RUNTIME_ERROR, error_class=cls, returncode=run.returncode)
        return out
    mism, samples, first = (int(x) for x in res[-1])
    out.update(mismatches=mism, samples=samples)
    if samples != tb.expected_samples:
        out.update(status=RUNTIME_ERROR, error_class="sample_count_mismatch", expected_samples=tb.expected_samples)
        return out
    if mism == 0:
        out["status"] = PASS
        return out
    per_out = dict(re.findall(rf"^SFTPB_{tb.nonce} OUTPUT (\S+) mismatches=(\d+)", run.stdout, re.M))
    fm = re.search(rf"^SFTPB_{tb.nonce} FIRST (.*)$", run.stdout, re.M)
    out.update(status=MISMATCH, error_class="functional_mismatch", first_mismatch=fm.group(1) if fm else None,
               first_mismatch_time_ns=first, output_mismatches={k: int(v) for k, v in per_out.items() if int(v)})
    return out


def summarize(results: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """The summary of a predictions evaluation: counts per status, extraction/compile/functional pass
    rates (of all rows, and of the testable rows: without ``unsupported`` and ``reference_error``),
    error classes, extraction methods and simulation throughput.

    Args:
        results: one result dict per prediction row (``status``, ``compiled``, ``error_class``, ...).
        seconds: the wall time of the evaluation, in seconds.

    Returns:
        The summary dict (rates as fractions in [0, 1]).
    """
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
        "excluded": {"rows": n - testable, "why": dict(Counter(
            f"{r['status']}: {r.get('error_class')}" for r in results if r["status"] in (UNSUPPORTED, REFERENCE_ERROR)))},
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
                         reset_cycles: int = 2, reset_prob: float = 0.0, reset_pulses: int = 4,
                         max_cycles: int | None = None, progress: bool = True,
                         max_answer_chars: int | None = DEFAULT_MAX_ANSWER_CHARS,
                         library: ModuleIndex | None = None) -> dict[str, Any]:
    """Score prediction rows; see the module docstring. ``library``: the corpus's module index
    (``hierarchy.build_module_index``) for designs that instantiate modules of other rows
    (``evaluate_one``).

    Raises:
        RuntimeError: iverilog/vvp are not installed.
        ValueError: a row is not a dict or lacks ``id``, ``prediction`` or a reference.
    """
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
                                reset_cycles=reset_cycles, reset_prob=reset_prob, reset_pulses=reset_pulses,
                                max_cycles=max_cycles, max_answer_chars=max_answer_chars, library=library)
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
