# ruff: noqa  -- the measurement script kept as it was run (a raw record, like the logs beside it)
# Per-component CPU microseconds of the clean stage (docs/benchmarks.md, "Clean stage and shipped-path
# speed-ups"). Needs /tmp/speed/c20000/data (bench/curate_scale.py generate_product(20000, 200, ...)) and
# the real slice in /work/shared; run from a checkout: PYTHONPATH=$PWD .venv/bin/python micro_clean.py
import json
import sys
import time
sys.path.insert(0, ".")
from sft_playbook.curate import clean as C, textutil as T
syn = [json.loads(l) for l, _ in zip(open("/tmp/speed/c20000/data/shard_00.jsonl"), range(3000))]
real = [json.loads(l) for l in open("/work/shared/realdata/mg-verilog-course-slice/mg_verilog_high_level.jsonl", encoding="utf-8-sig")]
from sft_playbook.io import _json_dumps
sets = {"syn": [(r["text"], r["code"]) for r in syn],
        "real": [(r["description"]["high_level_global_summary"], r["code"]) for r in real]}
def t(label, fn, items):
    t0 = time.process_time()
    for x in items: fn(x)
    dt = time.process_time() - t0
    print(f"  {label:28s} {dt / len(items) * 1e6:8.1f} us/row")
for name, rows in sets.items():
    print(name, len(rows))
    descs = [d for d, _ in rows]; codes = [c for _, c in rows]
    fixed = [T.fix_unicode(d) for d in descs]
    t("fix_unicode(desc)", T.fix_unicode, descs)
    t("fix_unicode(code)", T.fix_unicode, codes)
    t("strip_wrapper", C.strip_wrapper, descs)
    for i, p in enumerate(C._WRAPPER_PATTERNS):
        t(f"  wrapper pat {i}", lambda s, p=p: p.sub(" ", s), fixed)
    t("  _WRAPPER_TOKENS", lambda s: C._WRAPPER_TOKENS.sub(" ", s), fixed)
    t("  _HEADER_SPLIT", lambda s: list(C._HEADER_SPLIT.finditer(s)), fixed)
    t("  find_header(line_start)", lambda s: C.find_header(s, line_start=True), fixed)
    t("  _BLOCK_LINE", lambda s: C._BLOCK_LINE.sub(lambda mm: "\n" + mm.group(1), s), fixed)
    t("  normalize_prose", T.normalize_prose, fixed)
    fc = [C.strip_code_wrapper(T.fix_unicode(c)) for c in codes]
    t("rebuild_module", lambda c: C.rebuild_module("module m(input a);", c, 100), fc)
    t("  normalize_code_ws", T.normalize_code_ws, fc)
    t("  starts_with_module", C.starts_with_module, fc)
    t("  find_header(code)", lambda c: C.find_header(c, C.skip_leading_comments(c)), fc)
    import pandas as pd
    df = pd.DataFrame({"id": range(len(rows)), "code": codes, "desc_high_level": descs, "_order": range(len(rows))})
    st = C.CleanAndUnify(["high_level"], 100)
    t0 = time.process_time(); st(df.copy()); print(f"  {'CleanAndUnify (whole)':28s} {(time.process_time()-t0)/len(rows)*1e6:8.1f} us/row")
    sft = [{"input": d + "\n\nModule header:\nmodule m0 (input a, output y);", "output": c, "id": "doc-1"} for d, c in rows]
    t("_json_dumps (an SFT row)", _json_dumps, sft)
