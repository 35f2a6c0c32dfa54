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
from functools import lru_cache

import pandas as pd

from ..settings import CleanSettings
from .base import Stage
from ..evaluate.vparse import _match_paren, split_top
from .textutil import fix_unicode, normalize_code_ws, normalize_prose

_CL = CleanSettings()   # the constructor's default is the settings' (declared once)

_SYS_TEXT = (r"You\s+only\s+complete\s+chats\s+with\s+syntax\s+correct\s+Verilog\s+code\s*\.\s*End\s+the\s+Verilog\s+"
             r"module\s+code\s+completion\s+with\s+'?endmodule'?\s*\.\s*Do\s+not\s+include\s+module\s*,\s*input\s+"
             r"and\s+output\s+definitions\s*\.?")
_WRAPPER_PATTERNS = [
    re.compile(r"<<\s*SYS\s*>>.*?<<\s*/\s*SYS\s*>>", re.DOTALL | re.IGNORECASE),   # system prompt
    re.compile(_SYS_TEXT, re.IGNORECASE),                                             # ... without its <</SYS>>
    re.compile(r"<<\s*/?\s*SYS\s*>>", re.IGNORECASE),                                 # a stray <<SYS>> / <</SYS>>
    re.compile(r"<\s*/?\s*s\s*>", re.IGNORECASE),                                      # BOS/EOS
    re.compile(r"\[\s*/?\s*INST\s*\]", re.IGNORECASE),                                # [INST] [/INST]
    re.compile(r"Implement\s+the\s+Verilog\s+module\s+based\s+on\s+the\s+following\s+"
               r"(?:[\w\s-]{0,40}?)(?:description|summaries|summary)s?\s*[.:]?", re.IGNORECASE),
    re.compile(r"Assume\s+that\s+signals\s+are\s+positive\s+clock\s*/\s*clk\s+edge\s+triggered\s+"
               r"unless\s+otherwise\s+stated\s*\.?", re.IGNORECASE),
    re.compile(r"^\s*Here\s+(?:is|are)\s+(?:a|the)?\s*[\w\s-]{0,60}?:", re.IGNORECASE),
]
#: what each of _WRAPPER_PATTERNS cannot match without (a fast path that skips the pattern's
#: ``sub`` over a text that cannot hold a match; test_curate_clean_fastpaths checks it equals the
#: plain ``sub``): ``(symbols, word)`` = characters every match contains, and a run of letters every
#: match contains (checked in ``text.lower()`` of ASCII text only: under re.IGNORECASE a letter also
#: matches non-ASCII look-alikes such as U+017F for 's' or U+212A for 'k')
_WRAPPER_NEEDS = [("<</>", "sys"), (".,", "endmodule"), ("<>", "sys"), ("<>", None), ("[]", "inst"),
                  ("", "implement"), ("/", "assume"), (":", "here")]
#: the tokens of the Llama-2 chat wrapper; none may reach the output
_WRAPPER_TOKENS = re.compile(r"<<\s*/?\s*SYS\s*>>|<\s*/?\s*s\s*>|\[\s*/?\s*INST\s*\]", re.IGNORECASE)
#: wrapper tokens at the start or end of the code field, or right after an ``endmodule``
#: (``endmodule</s>``): the answer's EOS/chat tokens, not Verilog. Inside the code they are left
#: alone: ``mem[INST]`` and ``a<s>b`` are Verilog.
_CODE_WRAP = r"(?:<\s*/?\s*s\s*>|\[\s*/?\s*INST\s*\]|<<\s*/?\s*SYS\s*>>|<\|(?:endoftext|im_end|eot_id)\|>)"
_CODE_WRAP_EDGES = re.compile(r"^\s*(?:" + _CODE_WRAP + r"\s*)+|(?:\s*" + _CODE_WRAP + r")+\s*$"
                              r"|(?<=\bendmodule)(?:[ \t]*" + _CODE_WRAP + r")+", re.IGNORECASE)


def strip_code_wrapper(code: str) -> str:
    """``code`` without chat/EOS tokens at its edges or right after ``endmodule``.

    Returns:
        ``code`` with the wrapper tokens removed; unchanged (the same string) when it has none.
    """
    if "<" not in code and "[" not in code:
        return code
    return _CODE_WRAP_EDGES.sub("", code)


_HEADER_SPLIT = re.compile(r"Module\s+header\s*:", re.IGNORECASE)
# a module name is a simple identifier or an escaped one (\$not: a backslash, then anything up to white space)
_NAME = r"(?:\\\S+|[A-Za-z_][\w$]*)"
_MODULE_HEADER = re.compile(r"\b(?:macro)?module\s+" + _NAME + r"\s*(?:#\s*\(.*?\)\s*)?(?:\(.*?\)\s*)?;", re.DOTALL)
_COMMENT_OR_STRING = re.compile(r'//[^\n]*|/\*.*?(?:\*/|\Z)|"(?:\\.|[^"\\\n])*"', re.DOTALL)
_BLOCK_LINE = re.compile(r"\s*(block_\d+\s*:)", re.IGNORECASE)


def find_header(text: str, start: int = 0, line_start: bool = False) -> re.Match | None:
    """The first ``module name ... ;`` header in ``text`` (from ``start``) that is not inside a
    comment or a string (``// this module adds; ...`` is prose, not a header); with ``line_start``
    only one that begins a line (nothing but white space before it on its line).

    Returns:
        The header's match (``m.group(0)`` is the header text, ``m.start()``/``m.end()`` its
        character offsets in ``text``), or None when ``text`` has no such header after ``start``.
    """
    pos = start
    while True:
        # a match at q has 'module' at q or, after 'macro', at q + 5: none starts before the first
        # 'module' at or after pos, less 5 (\b still sees the character before the search start)
        first = text.find("module", pos)
        if first < 0:
            return None
        m = _MODULE_HEADER.search(text, max(pos, first - 5))
        if m is None:
            return None
        inside = None
        for c in _COMMENT_OR_STRING.finditer(text, start):
            if c.start() > m.start():
                break
            if m.start() < c.end():
                inside = c
                break
        if inside is not None:
            pos = inside.end()
        elif line_start and text[text.rfind("\n", 0, m.start()) + 1:m.start()].strip():
            pos = m.end()
        else:
            return m


def skip_leading_comments(code: str) -> int:
    """Index of the first character of ``code`` that is neither white space nor inside a comment.

    Returns:
        A character offset into ``code``; ``len(code)`` when it is all white space and comments.
    """
    i, n = 0, len(code)
    while i < n:
        if code[i].isspace():
            i += 1
        elif code.startswith("//", i):
            j = code.find("\n", i)
            i = n if j < 0 else j + 1
        elif code.startswith("/*", i):
            j = code.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            break
    return i


_MODULE_KEYWORD = re.compile(r"(?:macro)?module\b")


def starts_with_module(code: str) -> bool:
    """Whether the first thing after leading comments is ``module``/``macromodule``.

    Returns:
        True when ``code`` (past white space and comments) starts with the keyword, else False.
    """
    return _MODULE_KEYWORD.match(code, skip_leading_comments(code)) is not None   # no copy of the rest


def strip_wrapper(text: str) -> tuple[str, str]:
    """Split one wrapped MG-Verilog description into its summary and its module header.

    The header is what follows the *last* ``Module header:`` (prose before it may say "module
    header" too); without that marker, a header that starts a line of the text is taken. Wrapper
    tokens (``<s>``, ``[INST]``, ``<<SYS>>`` ... with or without system text or its closing tag)
    never survive in the summary.

    Returns:
        ``(summary, header)``: the prose with wrapper tokens removed (one ``block_N:`` per line) and
        the first ``module name ... ;`` header with its white space normalized; either may be ''.
    """
    return _split_description(fix_unicode(text or ""))


def _may_match(text: str, low: str | None, symbols: str, word: str | None) -> bool:
    """Whether a pattern that needs ``symbols`` and ``word`` could match ``text`` (``_WRAPPER_NEEDS``).

    Returns:
        False only when ``text`` lacks one of ``symbols`` or (ASCII text: ``low`` is its
        ``lower()``) ``word``; True otherwise."""
    for c in symbols:
        if c not in text:
            return False
    return word is None or low is None or word in low


def _split_description(text: str) -> tuple[str, str]:
    """``strip_wrapper`` of a description ftfy has already repaired (``fix_unicode(raw)``).

    Returns:
        ``(summary, header)`` as ``strip_wrapper`` says.
    """
    low = text.lower() if text.isascii() else None
    marks = list(_HEADER_SPLIT.finditer(text)) if _may_match(text, low, ":", "header") else []
    if marks:
        summary, rest = text[:marks[-1].start()], text[marks[-1].end():]
    else:
        m = find_header(text, line_start=True)
        summary, rest = (text[:m.start()], text[m.start():]) if m else (text, "")
    low = summary.lower() if summary.isascii() else None
    for pat, (symbols, word) in zip(_WRAPPER_PATTERNS, _WRAPPER_NEEDS):
        if _may_match(summary, low, symbols, word):
            summary, n = pat.subn(" ", summary)
            if n and low is not None:
                low = summary.lower()
    if "<" in summary or "[" in summary:
        summary = _WRAPPER_TOKENS.sub(" ", summary)
    if "<" in rest or "[" in rest:
        rest = _WRAPPER_TOKENS.sub(" ", rest)
    m = find_header(rest)
    header = normalize_code_ws(m.group(0)).strip() if m else ""
    # block summaries: one 'block_N:' per line
    if "_" in summary and ":" in summary and (not summary.isascii() or "block_" in summary.lower()):
        summary = _BLOCK_LINE.sub(lambda mm: "\n" + mm.group(1), summary)
    return normalize_prose(summary), header


_ENDS_ESCAPED = re.compile(r"\\\S+$")
# a directive needs a line of its own; a macro used in a range (`WIDTH-1) does not
_DIRECTIVE = re.compile(r"`(?:ifdef|ifndef|elsif|else|endif|define|undef|include|timescale|celldefine|"
                        r"endcelldefine|default_nettype|resetall|line|pragma|begin_keywords|end_keywords)\b")


def layout_header(header: str, max_chars: int | None) -> str:
    """A one-line header longer than ``max_chars`` laid out one parameter / port per line::

        module name #(
          parameter W = 8,
          parameter D = 4
        ) (
          input [W-1:0] a,
          output y
        );

    Only white space changes. Headers with comments or compiler directives (macro uses are fine), with more than one
    line already, or that do not parse as ``module name [#(...)] [(...)] ;`` are returned as they are.

    Returns:
        The header laid out over several lines, or ``header`` itself when it is short enough
        (``max_chars`` None or ``len(header) <= max_chars``) or is one of the cases above.
    """
    if max_chars is None or len(header) <= max_chars or "\n" in header or "//" in header \
            or "/*" in header or _DIRECTIVE.search(header):
        return header
    m = re.match(r"\s*((?:macro)?module\s+" + _NAME + r")\s*", header)
    if m is None:
        return header
    out = [m.group(1)]
    i = m.end()
    groups: list[list[str]] = []
    if header.startswith("#", i):
        j = header.find("(", i)
        if j < 0 or header[i + 1:j].strip():
            return header
        k = _match_paren(header, j)
        if k < 0:
            return header
        groups.append(split_top(header[j + 1:k]))
        out[0] += " #("
        i = k + 1
        while i < len(header) and header[i].isspace():
            i += 1
    if header.startswith("(", i):
        k = _match_paren(header, i)
        if k < 0:
            return header
        groups.append(split_top(header[i + 1:k]))
        i = k + 1
    if header[i:].strip() != ";" or not groups:
        return header
    lines = [out[0]] if groups and out[0].endswith("#(") else [out[0] + " ("]
    for g, items in enumerate(groups):
        # an escaped identifier ends at white space: '\\a.b ,' must not become '\\a.b,'
        lines += ["  " + it + ((" ," if _ENDS_ESCAPED.search(it) else ",") if n < len(items) - 1 else "")
                  for n, it in enumerate(items)]
        lines.append(") (" if g < len(groups) - 1 else ");")
    return "\n".join(lines)


#: ``layout_header`` (a pure function) remembering its last few answers: the clean stage lays out a
#: row's header for the module it rebuilds and again for the row's ``header`` field
_layout_header_once = lru_cache(maxsize=16)(layout_header)


# -- layout of a body whose lines were joined by spaces ------------------------------------------
_LEX = re.compile(r'"(?:\\.|[^"\\\n])*"|/\*.*?\*/|//[^\n]*|`[A-Za-z_]\w*|[A-Za-z_$][\w$]*|\d[\w.\']*|'
                  r"'[sS]?[bBoOdDhH][\w?]+|\s+|.", re.DOTALL)
_OPEN_BLOCK = {"begin", "fork", "generate", "specify"}
_CLOSE_BLOCK = {"end", "join", "join_any", "join_none", "endgenerate", "endspecify", "endcase",
                "endfunction", "endtask", "endmodule"}
_CASE = {"case", "casez", "casex"}


def layout_verilog(code: str, indent: str = "  ") -> str:
    """One statement per line, begin/end nesting indented. Line breaks only replace whitespace
    between tokens (never inside a token, string or comment), so the meaning does not change.

    Returns:
        The code laid out one statement per line, indented by ``indent`` per nesting level;
        '' when ``code`` has no tokens.
    """
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


def rebuild_module(header: str, body: str, header_max_chars: int | None = None) -> str:
    """Header + body as one module; a body that already starts with its header is kept whole.
    A body whose lines were joined into one is laid out one statement per line; a header this
    function assembles or reflows is laid out one port per line when longer than
    ``header_max_chars`` (``layout_header``): those lines are ours, not the source's.

    Returns:
        The module's source text; ``body`` (white space normalized) unchanged when it has no
        header and ``header`` is '' as well.
    """
    return _rebuild(header, normalize_code_ws(fix_unicode(body or "")), header_max_chars)


def _rebuild(header: str, body: str, header_max_chars: int | None) -> str:
    """``rebuild_module`` of a body already repaired by ftfy and white-space normalized.

    Returns:
        The full module text, as ``rebuild_module`` returns it."""
    has_module = starts_with_module(body)
    single_line = "\n" not in body.strip()
    if has_module:
        if not single_line:
            return body
        laid = layout_verilog(body)
        hm = find_header(laid, skip_leading_comments(laid))
        if hm is None or header_max_chars is None:
            return laid
        return laid[:hm.start()] + layout_header(hm.group(0), header_max_chars) + laid[hm.end():]
    if not header:
        return body
    header = _layout_header_once(header, header_max_chars)
    if single_line or not body.strip():
        inner = layout_verilog(body)
        inner_lines = inner.split("\n") if inner else []
        lines = [header] + [("  " + l if not l.startswith("endmodule") else l) for l in inner_lines]
        return "\n".join(lines)
    return header + "\n" + body


class CleanAndUnify(Stage):
    """ftfy + whitespace on code and descriptions, strip the MG-Verilog wrapper, recover the header
    (from the descriptions' 'Module header:' or the code itself) and rebuild the full module.

    ``header_max_chars``: a header assembled here longer than this is laid out one port per line
    (``None``: never); its default is the settings' (``settings.CleanSettings``, declared once).
    Drops: ``empty_code`` (no code at all), ``no_header`` (body without a module header anywhere).
    Counters: ``_n_unicode_fixed`` (rows ftfy changed), ``_n_header_rebuilt``, ``_n_reflowed``,
    ``_n_code_wrapper_stripped`` (chat/EOS tokens such as ``endmodule</s>`` removed from the code).
    """

    name = "clean"

    def __init__(self, levels: list[str], header_max_chars: int | None = _CL.header_max_chars) -> None:
        super().__init__(levels=list(levels), header_max_chars=header_max_chars)
        self.levels = list(levels)
        self.header_max_chars = None if header_max_chars is None else int(header_max_chars)

    def process(self, df: pd.DataFrame) -> pd.DataFrame:
        """Clean one partition as the class docstring says; drops ``empty_code`` and ``no_header``.

        Returns:
            ``df`` itself, modified in place: ``code``, ``header`` and ``desc_<level>`` rewritten,
            the four ``_n_*`` counter columns (int64, 0/1 per row) added, dropped rows marked.
        """
        fixed, rebuilt, reflowed, code_tokens = [], [], [], []
        codes, headers = [], []
        descs = {lvl: [] for lvl in self.levels}
        # only the columns read here (itertuples would convert every column of every row)
        columns = [df["code"]] + [df[f"desc_{lvl}"] for lvl in self.levels]
        for raw_code, *raw_descs in zip(*columns):
            raw_code = raw_code or ""
            code = fix_unicode(raw_code)
            changed = code != raw_code
            bare = strip_code_wrapper(code)
            code_tokens.append(int(bare != code))
            # rebuild_module repairs its body again (ftfy is not idempotent on every text); a body
            # equal to a text ftfy left as it was is a fixed point: the second call is skipped
            known_fixed = not changed and bare == code
            code = bare
            found = []
            for lvl, raw in zip(self.levels, raw_descs):
                raw = raw or ""
                fixed_desc = fix_unicode(raw)        # once: strip_wrapper(raw) repairs raw the same way
                summary, header = _split_description(fixed_desc)
                changed |= fixed_desc != raw
                descs[lvl].append(summary)
                if header:
                    found.append(header)
            header = Counter(found).most_common(1)[0][0] if found else ""
            body_has_header = starts_with_module(code)
            if not code.strip():
                full = ""
            elif known_fixed:
                full = _rebuild(header, normalize_code_ws(code), self.header_max_chars)
            else:
                full = rebuild_module(header, code, self.header_max_chars)
            if body_has_header:
                hm = find_header(full, skip_leading_comments(full))
                header = normalize_code_ws(hm.group(0)).strip() if hm else header
            else:
                header = _layout_header_once(header, self.header_max_chars)   # as _rebuild laid it out
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
        df["_n_code_wrapper_stripped"] = pd.Series(code_tokens, index=df.index, dtype="int64")
        self.drop(df, df["code"].str.strip() == "", "empty_code")
        self.drop(df, df["header"] == "", "no_header", "no 'Module header:' in any description and no module line in the code")
        return df
