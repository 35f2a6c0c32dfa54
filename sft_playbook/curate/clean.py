"""Step 1 - clean and unify: unicode repair (ftfy), whitespace, MG-Verilog wrapper stripping,
module-header recovery and rebuild of the full module.

MG-Verilog rows look like ``{"code": "<module body, lines joined by spaces>", "description":
{"high_level_global_summary": "<s>[INST] <<SYS>> ... <</SYS>> Implement the Verilog module based on
the following description. ... <summary> Module header: <header> [/INST]", ...}}``. Spacing and
line breaks vary between copies, so every pattern below tolerates any whitespace.

After this stage every row has ``code`` = a complete module (header + body, one statement per line,
indented), ``header`` = the module header (``module name(...);``) and one plain-text summary per
level in ``desc_<level>``.
"""
from __future__ import annotations

import re
from collections import Counter

import pandas as pd

from .base import Stage
from .textutil import fix_unicode, normalize_code_ws, normalize_prose

_WS = r"\s*"
_WRAPPER_PATTERNS = [
    re.compile(r"<<\s*SYS\s*>>.*?<<\s*/\s*SYS\s*>>", re.DOTALL | re.IGNORECASE),   # system prompt
    re.compile(r"</?s>", re.IGNORECASE),                                              # BOS/EOS
    re.compile(r"\[\s*/?\s*INST\s*\]", re.IGNORECASE),                                # [INST] [/INST]
    re.compile(r"Implement\s+the\s+Verilog\s+module\s+based\s+on\s+the\s+following\s+"
               r"(?:[\w\s-]{0,40}?)(?:description|summaries|summary)s?\s*[.:]?", re.IGNORECASE),
    re.compile(r"Assume\s+that\s+signals\s+are\s+positive\s+clock\s*/\s*clk\s+edge\s+triggered\s+"
               r"unless\s+otherwise\s+stated\s*\.?", re.IGNORECASE),
    re.compile(r"^\s*Here\s+(?:is|are)\s+(?:a|the)?\s*[\w\s-]{0,60}?:", re.IGNORECASE),
]
_HEADER_SPLIT = re.compile(r"Module\s+header\s*:", re.IGNORECASE)
_MODULE_HEADER = re.compile(r"\b(?:macro)?module\s+[A-Za-z_][\w$]*\s*(?:#\s*\(.*?\)\s*)?(?:\(.*?\)\s*)?;",
                            re.DOTALL)
_BLOCK_LINE = re.compile(r"\s*(block_\d+\s*:)", re.IGNORECASE)


def strip_wrapper(text: str) -> tuple[str, str]:
    """Return (summary, header) from one wrapped MG-Verilog description; either may be ''."""
    text = fix_unicode(text or "")
    parts = _HEADER_SPLIT.split(text, maxsplit=1)
    summary, rest = parts[0], (parts[1] if len(parts) > 1 else "")
    for pat in _WRAPPER_PATTERNS:
        summary = pat.sub(" ", summary)
    rest = _WRAPPER_PATTERNS[2].sub(" ", _WRAPPER_PATTERNS[1].sub(" ", rest))
    m = _MODULE_HEADER.search(rest)
    header = normalize_code_ws(m.group(0)).strip() if m else ""
    # block summaries: one 'block_N:' per line
    summary = _BLOCK_LINE.sub(lambda mm: "\n" + mm.group(1), summary)
    return normalize_prose(summary), header


# -- layout of a body whose lines were joined by spaces ------------------------------------------
_LEX = re.compile(r'"(?:\\.|[^"\\\n])*"|/\*.*?\*/|//[^\n]*|`[A-Za-z_]\w*|[A-Za-z_$][\w$]*|\d[\w.\']*|'
                  r"'[sS]?[bBoOdDhH][\w?]+|\s+|.", re.DOTALL)
_OPEN_BLOCK = {"begin", "fork", "generate", "specify"}
_CLOSE_BLOCK = {"end", "join", "join_any", "join_none", "endgenerate", "endspecify", "endcase",
                "endfunction", "endtask", "endmodule"}
_CASE = {"case", "casez", "casex"}


def layout_verilog(code: str, indent: str = "  ") -> str:
    """One statement per line, begin/end nesting indented. Line breaks only replace whitespace
    between tokens (never inside a token, string or comment), so the meaning does not change."""
    tokens = [t for t in _LEX.findall(code)]
    lines: list[str] = []
    cur: list[str] = []
    level = 0
    depth = 0            # (), [], {} nesting: ';' inside for(...) does not end a line
    pending_case = False  # after case/casez/casex, break the line when its selector closes
    func_like = False     # function/task header ends at its ';' and opens a level

    def flush():
        nonlocal cur
        text = "".join(cur).strip()
        if text:
            lines.append(indent * max(level, 0) + text)
        cur = []

    for tok in tokens:
        if tok.isspace():
            if cur:
                cur.append(" ")
            continue
        if cur and cur[0] == "end" and "".join(cur).strip() == "end" and tok != "else":
            flush()                        # 'end' waits for a possible 'else' only
        if tok.startswith("//"):           # a line comment runs to the end of its line
            cur.append(tok)
            flush()
            continue
        if tok.startswith("/*") and depth == 0 and not "".join(cur).strip():
            cur.append(tok)                # a block comment between statements: its own line
            flush()
            continue
        if tok in _CLOSE_BLOCK and depth == 0:
            flush()
            level -= 1
            cur.append(tok)
            if tok != "end":
                flush()
            continue
        cur.append(tok)
        if tok in "([{":
            depth += 1
        elif tok in ")]}":
            depth = max(0, depth - 1)
            if pending_case and depth == 0:
                flush()
                level += 1
                pending_case = False
        elif tok in _CASE and depth == 0:
            pending_case = True
        elif tok in ("function", "task") and depth == 0:
            func_like = True
        elif tok in _OPEN_BLOCK and depth == 0:
            flush()
            level += 1
        elif tok == ";" and depth == 0:
            flush()
            if func_like:
                level += 1
                func_like = False
    flush()
    return "\n".join(lines)


def rebuild_module(header: str, body: str) -> str:
    """Header + body as one module; a body that already starts with its header is kept whole."""
    body = normalize_code_ws(fix_unicode(body or ""))
    has_module = re.match(r"\s*(?:(?://[^\n]*|/\*.*?\*/)\s*)*(?:macro)?module\b", body, re.DOTALL) is not None
    single_line = "\n" not in body.strip()
    if has_module:
        return layout_verilog(body) if single_line else body
    if not header:
        return body
    if single_line or not body.strip():
        inner = layout_verilog(body)
        inner_lines = inner.split("\n") if inner else []
        lines = [header] + [("  " + l if not l.startswith("endmodule") else l) for l in inner_lines]
        return "\n".join(lines)
    return header + "\n" + body


class CleanAndUnify(Stage):
    """ftfy + whitespace on code and descriptions, strip the MG-Verilog wrapper, recover the header
    (from the descriptions' 'Module header:' or the code itself) and rebuild the full module.

    Drops: ``empty_code`` (no code at all), ``no_header`` (body without a module header anywhere).
    Counters: ``_n_unicode_fixed`` (rows ftfy changed), ``_n_header_rebuilt``, ``_n_reflowed``.
    """

    name = "clean"
    modifies = True

    def __init__(self, levels: list[str], **config) -> None:
        super().__init__(levels=list(levels), **config)
        self.levels = list(levels)

    def process(self, df: pd.DataFrame) -> pd.DataFrame:
        fixed, rebuilt, reflowed = [], [], []
        codes, headers = [], []
        descs = {lvl: [] for lvl in self.levels}
        for i, row in enumerate(df.itertuples(index=False)):
            raw_code = getattr(row, "code") or ""
            code = fix_unicode(raw_code)
            changed = code != raw_code
            found = []
            for lvl in self.levels:
                raw = getattr(row, f"desc_{lvl}") or ""
                summary, header = strip_wrapper(raw)
                changed |= fix_unicode(raw) != raw
                descs[lvl].append(summary)
                if header:
                    found.append(header)
            header = Counter(found).most_common(1)[0][0] if found else ""
            m = re.match(r"\s*(?:(?://[^\n]*|/\*.*?\*/)\s*)*((?:macro)?module\b.*?;)", code, re.DOTALL)
            body_has_header = m is not None
            full = rebuild_module(header, code) if code.strip() else ""
            if body_has_header:
                hm = _MODULE_HEADER.search(code)
                header = normalize_code_ws(hm.group(0)).strip() if hm else header
            codes.append(full)
            headers.append(header)
            fixed.append(int(changed))
            rebuilt.append(int(bool(header) and not body_has_header and bool(code.strip())))
            reflowed.append(int("\n" not in code.strip() and bool(code.strip())))
        df["code"] = pd.Series(codes, index=df.index, dtype=str)
        df["header"] = pd.Series(headers, index=df.index, dtype=str)
        for lvl in self.levels:
            df[f"desc_{lvl}"] = pd.Series(descs[lvl], index=df.index, dtype=str)
        df["_n_unicode_fixed"] = pd.Series(fixed, index=df.index, dtype="int64")
        df["_n_header_rebuilt"] = pd.Series(rebuilt, index=df.index, dtype="int64")
        df["_n_reflowed"] = pd.Series(reflowed, index=df.index, dtype="int64")
        self.drop(df, df["code"].str.strip() == "", "empty_code")
        self.drop(df, df["header"] == "", "no_header", "no 'Module header:' in any description and no module line in the code")
        return df
