"""The corpus module index built on the workers (issue 15): per-row module names are shuffled by
name between workers, the definitions some row needs are cut out where their rows live, and the
index stays on a worker for the compile check; the driver gets counts only. The reference is the
in-driver implementation it replaces (every row's names gathered, the index built here)."""
from __future__ import annotations

import random

import pandas as pd
import pytest

from sft_playbook.curate.engine import Engine
from sft_playbook.curate.hierarchy import ModuleDef, ModuleIndex, directives_outside, scan_units

from test_curate_fuzzy_scale import _leaves, _record_gathers


def reference(df: pd.DataFrame, cap: int):
    """The former ``ModuleIndex.fit``, in one process: (definitions, summary)."""
    keys = []
    for rid, order, code in zip(df["id"], df["_order"], df["code"]):
        units = scan_units(code or "")
        own = tuple(dict.fromkeys(u.name for u in units))
        keys.append((order, rid, own, tuple(dict.fromkeys(n for u in units for n in u.uses if n not in own))))
    keys.sort()
    defined_by: dict[str, list[str]] = {}
    row_uses: dict[str, tuple] = {}
    for _, rid, defs, uses in keys:
        row_uses[rid] = uses
        for name in defs:
            defined_by.setdefault(name, []).append(rid)
    several = {n for n, rows in defined_by.items() if len(rows) > 1}
    todo = [n for uses in row_uses.values() for n in uses if n in defined_by]
    needed: set[str] = set()
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        for rid in defined_by[name][:cap]:
            todo.extend(n for n in row_uses.get(rid, ()) if n in defined_by and n not in needed)
    rows = sorted({rid for n in needed for rid in defined_by[n][:cap]})
    codes = dict(zip(df["id"], df["code"]))
    found: dict = {}
    for rid in rows:
        code = codes.get(rid, "")
        units = scan_units(code)
        pre = directives_outside(code, units)
        for u in units:
            if u.name in needed and (u.name, rid) not in found:
                text = code[u.start:u.end]
                found[(u.name, rid)] = ModuleDef(rid, (pre + "\n" + text) if pre else text,
                                                 tuple(n for n in u.uses if n in defined_by))
    definitions: dict[str, list[ModuleDef]] = {}
    for name in sorted(needed):
        texts: set[str] = set()
        for rid in defined_by[name][:cap]:
            d = found.get((name, rid))
            if d is not None and d.text not in texts:
                texts.add(d.text)
                definitions.setdefault(name, []).append(d)
    summary = {"rows_defining_modules": sum(1 for k in keys if k[2]), "module_names": len(defined_by),
               "names_defined_by_several_rows": len(several), "definitions_for_elaboration": len(definitions),
               "alternative_definitions": sum(len(d) - 1 for d in definitions.values()),
               "definition_chars": sum(len(m.text) for ds in definitions.values() for m in ds)}
    return definitions, summary


def corpus(seed: int, unused: int = 0) -> pd.DataFrame:
    """Names defined by more rows than the cap (some identical copies), escaped names, submodules
    of submodules, names used and defined nowhere, a row that defines what it uses, rows with
    `define lines, prose and empty rows, modules nobody uses; shuffled across partitions."""
    rng = random.Random(seed)
    rows = []
    for k in range(12):                                   # 12 rows define 'gate': more than the cap of 4
        if k % 3 == 0:                                    # identical copies: tried once
            rows.append("module gate (input a, output y);\n  assign y = a;\nendmodule")
        else:
            rows.append(f"`define W{k} 4\nmodule gate (input a, output y);\n  assign y = a ^ 1'b{k % 2};  // v{k}\nendmodule")
    rows.append("module \\$and2 (A, B, Y);\n  input A, B;\n  output Y;\n  assign Y = A & B;\nendmodule")
    rows.append("module top (input a, b, output y);\n  \\$and2 g (.A(a), .B(b), .Y(t));\n  mid m (.i(t), .o(y));\nendmodule")
    rows.append("module mid (input i, output o);\n  gate c (.a(i), .y(o));\n  leaf l (.i(i));\nendmodule")
    rows.append("module leaf (input i);\nendmodule\nmodule leaf (input j);\nendmodule")  # twice in one row
    rows.append("module self_user (input a, output y);\n  helper h (.a(a), .y(y));\nendmodule\n"
                "module helper (input a, output y);\n  assign y = a;\nendmodule")
    rows.append("module vendor_user (input c, output d);\n  BUFG b (.I(c), .O(d));\nendmodule")
    rows.append("module mid (input i, output o);\n  assign o = i;\nendmodule")          # a second 'mid'
    rows += ["", "This module adds two numbers; module header below.", "   "]
    rows += [f"module lonely{i} (input a);\nendmodule" for i in range(unused)]
    order = list(range(len(rows)))
    rng.shuffle(order)
    df = pd.DataFrame({"id": [f"row{i}" for i in range(len(rows))], "_order": order, "code": rows})
    return df.sample(frac=1, random_state=seed).reset_index(drop=True)


def fit(df: pd.DataFrame, engine: str, cap: int, gathered=None, partition_rows: int = 3):
    index = ModuleIndex("code", max_definitions_per_name=cap)
    with Engine(engine=engine, n_workers=2, partition_rows=partition_rows, memory_limit="1GiB") as eng:
        if gathered is not None:
            _record_gathers(eng, gathered)
        parts = eng.partitions(df)
        index.fit(parts, eng, eng.map(index.keys, parts) if index.keys_on_workers else None)
        if gathered is not None:
            gathered.append("end of fit")
        index.fetch(eng)
    return index


@pytest.mark.parametrize("engine,seed,cap", [("local", 0, 4), ("local", 1, 1), ("local", 2, 8), ("dask", 3, 4)])
def test_index_equals_the_in_driver_implementation(engine, seed, cap):
    df = corpus(seed)
    want, want_summary = reference(df, cap)
    index = fit(df, engine, cap)
    assert index.definitions == want
    assert index.summary() == want_summary
    assert index.modules == {n: ds[0] for n, ds in want.items()}
    assert {"gate", "$and2", "mid", "leaf"} <= set(want) and "helper" not in want and "BUFG" not in want
    assert 1 <= len(want["gate"]) <= cap and (cap < 8 or len(want["gate"]) < cap)   # copies tried once
    assert set(index.closure(["mid"], set())) <= {"mid", "gate", "leaf"} and index.closure(["top"], set()) == []


def test_the_driver_never_receives_per_row_names():
    """What the driver gathers while the index is built does not grow with the rows: 200 more
    modules gather the same bytes but for one count per partition (the progress line's names
    done; at most 40 bytes a partition); no frame, no name list comes back."""
    sizes, parts = [], []
    for unused in (20, 220):
        log: list = []
        df = corpus(4, unused)
        parts.append(-(-len(df) // 25))
        fit(df, "dask", 4, gathered=log, partition_rows=25)
        got = log[:log.index("end of fit")]
        for _, v in got:
            for x in _leaves(v):
                assert isinstance(x, int), f"the driver received {type(x).__name__}"
        sizes.append(sum(b for b, _ in got))
    assert sizes[1] < 1_000 and 0 <= sizes[1] - sizes[0] <= 40 * (parts[1] - parts[0]), (sizes, parts)
