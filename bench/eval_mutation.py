#!/usr/bin/env python3
"""Does the differential testbench tell a design from its mutants? Mutation benchmark over the
multi-module and sequential designs of bench/mutation_corpus/ (written for this project).

Each design is judged against itself (must pass: 100 % of those that simulate) and against
single-point mutants, made here, with no help from the evaluator, so that two evaluator versions
see the very same rows:
  op_flip     one operator changed: + -> -, - -> +, & -> |, | -> ^, ^ -> &, == -> !=, != -> ==,
              < -> <=, > -> >=, ! or ~ dropped
  const       one sized constant changed (value + 1, wrapped to its width)
  reset_kind  a synchronous reset made asynchronous (its edge added to the sensitivity list) or
              an asynchronous one made synchronous (its edge removed)
  drop_reset  one reset test made never true (`if (rst)` -> `if (1'b0)`)
  swap_clock  two clocks swapped in one always block; with one clock, its edge inverted
  delay       one delay made 10x longer (#2 -> #20)
A mutant that does not compile on its own (iverilog -g2012) is left out. A mutant is caught when
the evaluator says `mismatch`. Some mutants are equivalent (no stimulus can tell them apart), so
100 % is not expected; survivors are listed in the output for inspection.

With --self-data FILE (MG-Verilog rows in the raw hub shape: code + description), the references
of that file are also judged against themselves (body + header from the description).

Usage: python bench/eval_mutation.py [--code CHECKOUT ...] [--workers N] [--per-op 4] [--self-data FILE]
       [--out-dir DIR]
`--code` names checkouts of this project whose `evaluate.py predictions` judges the rows (default:
this one), e.g. a `git worktree add /tmp/before bda043f` to compare with an older evaluator.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "bench" / "mutation_corpus"

OP_FLIPS = [(r"(?<![+])\+(?![+:=])", "-"), (r"(?<![-\w\[:])-(?![-:>=])", "+"), (r"(?<![&])&(?![&])", "|"),
            (r"(?<![|])\|(?![|])", "^"), (r"(?<!~)\^", "&"), (r"==", "!="), (r"!=", "=="),
            (r"(?<![<])<(?![<=])", "<="), (r"(?<![>-])>(?![>=])", ">="), (r"!(?!=)", ""), (r"~(?=[\w(])", "")]
_SIZED_RE = re.compile(r"(\d+)'([dhb])([0-9a-fA-F_]+)")
_ALWAYS_RE = re.compile(r"always\s*@\s*\(([^)]*)\)")
_EDGE_RE = re.compile(r"(posedge|negedge)\s+(\w+)")


def _protected(code: str) -> list[tuple[int, int]]:
    """Spans never mutated: module headers (up to their ';'), sensitivity lists, comments, ranges."""
    spans = [(m.start(), code.index(";", m.end()) + 1) for m in re.finditer(r"\bmodule\b", code)]
    spans += [(m.start(), m.end()) for m in _ALWAYS_RE.finditer(code)]
    spans += [(m.start(), m.end()) for m in re.finditer(r"//[^\n]*|/\*.*?\*/|`\w+[^\n]*|\[[^\]]*\]", code, re.S)]
    return spans


def _free(spans, a: int, b: int) -> bool:
    return not any(s < b and a < e for s, e in spans)


def _reset_tests(code: str) -> list[re.Match]:
    return list(re.finditer(r"if\s*\(\s*(!|~)?\s*(\w*(?:rst|reset|clr)\w*)\s*\)", code, re.I))


def mutants(code: str) -> dict[str, list[str]]:
    """{operator: [mutant, ...]} of one design (every applicable site)."""
    prot = _protected(code)
    out: dict[str, list[str]] = defaultdict(list)
    for pat, rep in OP_FLIPS:
        for m in re.finditer(pat, code):
            if _free(prot, m.start(), m.end()):
                out["op_flip"].append(code[:m.start()] + rep + code[m.end():])
    for m in _SIZED_RE.finditer(code):
        if not _free(prot, m.start(), m.end()) or "x" in m.group(3).lower():
            continue
        w, base, digits = int(m.group(1)), {"d": 10, "h": 16, "b": 2}[m.group(2)], m.group(3).replace("_", "")
        v = (int(digits, base) + 1) % (1 << w)
        new = f"{w}'{m.group(2)}" + (format(v, "d") if base == 10 else format(v, "x") if base == 16 else format(v, f"0{w}b"))
        out["const"].append(code[:m.start()] + new + code[m.end():])
    for a in _ALWAYS_RE.finditer(code):
        edges = _EDGE_RE.findall(a.group(1))
        body = code[a.end(): a.end() + 200]
        t = re.match(r"\s*(?:begin\s*)?if\s*\(\s*(!|~)?\s*(\w+)\s*\)", body)
        sens_start, sens_end = a.start(1), a.end(1)
        if len(edges) >= 2:  # asynchronous reset -> synchronous
            for kind, name in edges:
                if t and name == t.group(2):
                    sens = re.sub(rf"\s*(?:or|,)\s*{kind}\s+{name}\b|{kind}\s+{name}\s*(?:or|,)\s*", "", a.group(1), count=1)
                    out["reset_kind"].append(code[:sens_start] + sens + code[sens_end:])
        elif len(edges) == 1 and t and t.group(2) != edges[0][1]:  # synchronous -> asynchronous
            kind = "negedge" if t.group(1) else "posedge"
            out["reset_kind"].append(code[:sens_end] + f" or {kind} {t.group(2)}" + code[sens_end:])
    for m in _reset_tests(code):
        out["drop_reset"].append(code[:m.start()] + "if (1'b0)" + code[m.end():])
    clocks = []
    for a in _ALWAYS_RE.finditer(code):
        edges = _EDGE_RE.findall(a.group(1))
        if edges and edges[0][1] not in clocks:
            clocks.append(edges[0][1])
    for a in _ALWAYS_RE.finditer(code):
        edges = _EDGE_RE.findall(a.group(1))
        if not edges:
            continue
        kind, clk = edges[0]
        others = [c for c in clocks if c != clk]
        new = (f"{kind} {others[0]}" if others else f"{'negedge' if kind == 'posedge' else 'posedge'} {clk}")
        e = _EDGE_RE.search(code, a.start(1))
        out["swap_clock"].append(code[:e.start()] + new + code[e.end():])
    for m in re.finditer(r"#\s*(\d+)(?!\s*\()", code):
        if "'" in code[max(0, m.start() - 2): m.start()]:
            continue
        out["delay"].append(code[:m.start()] + f"#{int(m.group(1)) * 10}" + code[m.end():])
    return {k: list(dict.fromkeys(v for v in vs if v != code)) for k, vs in out.items()}


def compiles(code: str) -> bool:
    with tempfile.TemporaryDirectory(prefix="sftpb-mut-") as d:
        Path(d, "m.v").write_text("`timescale 1ns/1ps\n" + code)
        p = subprocess.run(["iverilog", "-g2012", "-o", f"{d}/x", f"{d}/m.v"], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "TMPDIR": d, "TMP": d})
        return p.returncode == 0


def corpus_rows(per_op: int, seed: int) -> tuple[list[dict], dict]:
    rng = random.Random(seed)
    rows, meta = [], {}
    for f in sorted(CORPUS.glob("*.v")):
        code = f.read_text()
        name = f.stem
        rows.append({"id": f"{name}/self", "input": f"Implement {name}.", "reference": code,
                     "prediction": f"```verilog\n{code}```"})
        meta[f"{name}/self"] = ("self", name)
        for op, ms in sorted(mutants(code).items()):
            ok = [m for m in ms if compiles(m)]
            rng.shuffle(ok)
            for k, m in enumerate(ok[:per_op]):
                rid = f"{name}/{op}/{k}"
                rows.append({"id": rid, "input": f"Implement {name}.", "reference": code,
                             "prediction": f"```verilog\n{m}```"})
                meta[rid] = (op, name)
    return rows, meta


def self_rows(path: str, level: str) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8-sig") as fh:
        for line in fh:
            d = json.loads(line)
            desc = d["description"][level] if isinstance(d.get("description"), dict) else d.get("input", "")
            rows.append({"id": f"real/{d['id']}", "input": desc, "reference": d["code"], "prediction": d["code"]})
    return rows


def judge(checkout: Path, rows: list[dict], workers: int, extra: list[str]) -> tuple[dict, float]:
    with tempfile.TemporaryDirectory(prefix="sftpb-mutbench-") as d:
        pf = Path(d, "rows.jsonl")
        pf.write_text("".join(json.dumps(r) + "\n" for r in rows))
        py = checkout / ".venv/bin/python"
        t0 = time.monotonic()
        p = subprocess.run([str(py if py.exists() else sys.executable), "evaluate.py", "predictions",
                            f"predictions.file={pf}", f"out_dir={d}/o", f"workers={workers}", *extra],
                           cwd=checkout, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(checkout)})
        secs = time.monotonic() - t0
        res = Path(d, "o", "verilog_results.jsonl")
        if p.returncode != 0 or not res.is_file():
            raise SystemExit(f"{checkout}: evaluate.py failed ({p.returncode}): {p.stderr[-2000:]}")
        return {r["id"]: r for r in map(json.loads, res.read_text().splitlines())}, secs


def report(label: str, res: dict, meta: dict, real: list[dict], secs: float) -> dict:
    by_op: dict[str, Counter] = defaultdict(Counter)
    survivors = []
    for rid, (op, _name) in meta.items():
        st = res[rid]["status"]
        by_op[op][st] += 1
        if op != "self" and st != "mismatch":
            survivors.append(f"{rid}: {st}")
    selfc = by_op.pop("self")
    muts = Counter()
    for c in by_op.values():
        muts.update(c)
    n_mut = sum(muts.values())
    out = {"evaluator": label, "seconds": round(secs, 1),
           "corpus_self": {"designs": sum(selfc.values()), "statuses": dict(selfc)},
           "mutants": n_mut, "caught": muts["mismatch"], "caught_share": round(muts["mismatch"] / n_mut, 3) if n_mut else None,
           "mutant_statuses": dict(muts),
           "by_operator": {op: {"n": sum(c.values()), "caught": c["mismatch"], "statuses": dict(c)} for op, c in sorted(by_op.items())},
           "survivors": survivors}
    if real:
        rc = Counter(res[r["id"]]["status"] for r in real)
        simulated = sum(v for k, v in rc.items() if k not in ("reference_error", "unsupported"))
        why = Counter(res[r["id"]].get("error_class") for r in real if res[r["id"]]["status"] != "pass")
        out["real_self"] = {"rows": len(real), "statuses": dict(rc), "pass_share_of_testable":
                            round(rc["pass"] / simulated, 4) if simulated else None, "not_pass_why": dict(why.most_common(12))}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--code", nargs="*", default=[str(ROOT)], help="checkouts whose evaluator judges the rows")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--per-op", type=int, default=4, help="mutants per design and operator (random pick)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--self-data", default=None, help="MG-Verilog jsonl: judge its references against themselves")
    ap.add_argument("--level", default="high_level_global_summary")
    ap.add_argument("--set", nargs="*", default=[], help="extra evaluate.py overrides (key=value)")
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args()
    rows, meta = corpus_rows(args.per_op, args.seed)
    real = self_rows(args.self_data, args.level) if args.self_data else []
    print(f"{len(meta)} corpus rows ({sum(1 for op, _ in meta.values() if op == 'self')} designs), "
          f"{len(real)} real references", file=sys.stderr)
    reports = []
    for c in args.code:
        res, secs = judge(Path(c).resolve(), rows + real, args.workers, args.set)
        rep = report(c, res, meta, real, secs)
        reports.append(rep)
        print(json.dumps({k: v for k, v in rep.items() if k != "survivors"}, indent=1))
        if args.out_dir:
            Path(args.out_dir).mkdir(parents=True, exist_ok=True)
            Path(args.out_dir, f"mutation_{len(reports)}.json").write_text(json.dumps(rep, indent=1))
            Path(args.out_dir, f"results_{len(reports)}.jsonl").write_text("".join(json.dumps(res[k]) + "\n" for k in res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
