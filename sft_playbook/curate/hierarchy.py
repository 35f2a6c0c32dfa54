"""Module hierarchy across the corpus: which row defines which module, and the compile check that
elaborates a row together with the rows that define what it instantiates.

About a quarter of real MG-Verilog rows instantiate modules (``adder8 u_add (...)``) that another
row of the same corpus defines, and some instantiate modules defined nowhere (vendor primitives,
files that were never scraped). A row compiled on its own fails on both with iverilog's
``Unknown module type``. So:

* ``ModuleIndex`` (a global stage right after ``clean``; it drops nothing) collects, per row, the
  modules (and UDP primitives) the row defines and the ones it instantiates (``keys``, computed on
  the workers at the end of the previous pass). Its ``fit`` runs on the workers (the names of
  every row grow with the corpus; the driver gets counts): the names are shuffled by name, and per
  name the defining rows are ordered by input order (``_order``), so the choice does not depend on
  partitioning or reruns. The source text of just the definitions some other row needs (a
  submodule's own submodules are needed by the row that instantiates them; at most
  ``max_definitions_per_name`` distinct texts per name) is cut out where those rows live and
  joined into ``definitions``: name -> [``ModuleDef``] (defining row id, the text of that one
  module, the names it instantiates); ``modules`` holds the first. The index stays on one worker
  and reaches the compile check's tasks as their argument (``state``).
* The compile check (``filters.Compiles``) runs per row on the workers. Only when a row's own
  compile fails with nothing but unknown-module errors does it look the missing names up in the
  index and compile the row again with the definitions appended (``check_verilog``): per name the
  first definition that fits the row's instances (an error on an instance's line, or inside the
  definition in every standard, moves on to the next). A name defined nowhere, or whose
  definitions all fail, gets a generated black box (``black_box``: ports and parameters from the
  instances, every port a one-bit ``input``) instead, so iverilog gets past elaboration and an
  error that remains is the row's own (``error``); with black boxes only, the row is
  ``unresolved_submodule`` (``unresolved``: defined nowhere; ``mismatched``: defined, none fits).

Why the index ships *text* to the workers rather than row ids: a task sees only its own partition,
and the defining row may sit in any other; fetching rows across partitions from inside a task
would serialise the pass. The definitions actually needed are a small part of the corpus (only
names that some row instantiates and some row defines: 165k one-line definitions for 1M synthetic
documents of which a quarter instantiate another's module; 86 for the 1,671 real rows), so each
worker receives them once, and neither the driver nor any task holds the corpus itself.

Standards: ``check_verilog`` tries the standards in the order given (most permissive first:
``-g2012``, then ``-g2005``, ``-g2001``, ``-g1995``) and records the first that accepts the code;
Verilog-1995/2001/2005 code may use SystemVerilog keywords (``do``, ``bit``, ``logic``) as names.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from ..settings import ModuleIndexSettings
from .base import Stage, _as_str

log = logging.getLogger(__name__)

# -- scanning: comments and strings blanked out, escaped identifiers kept -------------------------
#: IEEE 1364-2005 keywords: never a module or instance name. SystemVerilog-only words (do, bit,
#: logic, rand, type ...) are left out on purpose: Verilog code uses them as names. A false
#: candidate ('assert property (') costs nothing: only names some row defines are looked up.
KEYWORDS = frozenset("""
always and assign automatic begin buf bufif0 bufif1 case casex casez cell cmos config deassign default
defparam design disable edge else end endcase endconfig endfunction endgenerate endmodule endprimitive
endspecify endtable endtask event for force forever fork function generate genvar highz0 highz1 if
ifnone incdir include initial inout input instance integer join large liblist library localparam
macromodule medium module nand negedge nmos nor noshowcancelled not notif0 notif1 or output parameter
pmos posedge primitive pull0 pull1 pulldown pullup pulsestyle_ondetect pulsestyle_onevent rcmos real
realtime reg release repeat rnmos rpmos rtran rtranif0 rtranif1 scalared showcancelled signed small
specify specparam strong0 strong1 supply0 supply1 table task time tran tranif0 tranif1 tri tri0 tri1
triand trior trireg unsigned use uwire vectored wait wand weak0 weak1 while wire wor xnor xor
""".split())

_MI = ModuleIndexSettings()   # the constructor's default is the settings' (declared once)
_DEFINE = {"module": "endmodule", "macromodule": "endmodule", "primitive": "endprimitive"}


def ident_name(tok: str) -> str:
    """The name an identifier token stands for: ``\\$not`` and ``$not`` ... an escaped identifier
    is the same name without its backslash (IEEE 1364 3.7.1), as iverilog reports it.

    Returns:
        ``tok`` without its leading backslash when it is an escaped identifier, else ``tok`` unchanged.
    """
    return tok[1:] if tok.startswith("\\") else tok


_HIDE = re.compile(r'//[^\n]*|/\*.*?(?:\*/|\Z)|"(?:\\.|[^"\\\n])*"', re.DOTALL)
_UNIT_EDGE = re.compile(r"(?<![\w$`\\])(?:(macromodule|module|primitive)\s+(\\\S+|[A-Za-z_][\w$]*)|(endmodule|endprimitive)\b)")


def hide_comments(code: str) -> str:
    """``code`` with comments and strings blanked out. Cheap when there is nothing to hide.

    Returns:
        A string of the same length as ``code`` (offsets stay valid): every character of a comment or
        string literal except newlines replaced by a space; ``code`` itself when it has no ``/`` or ``"``.
    """
    if "/" not in code and '"' not in code:
        return code
    return _HIDE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), code)


@dataclass
class Unit:
    """One module (or UDP primitive) found in a source text."""
    name: str
    start: int            # character offsets of 'module' ... 'endmodule' (end exclusive)
    end: int
    uses: list[str] = field(default_factory=list)   # names it instantiates, in order, no repeats


_ID = r"(?:\\\S+(?=\s)|[A-Za-z_][\w$]*(?![\w$]))"    # whole identifiers only (no 'f'+'n' from 'fn')
_P1 = r"\([^()]*\)"
_P3 = r"\((?:[^()]|\((?:[^()]|" + _P1 + r")*\))*\)"       # parentheses nested three deep: #(.W(f(2)))
#: an instantiation: module name, optional #(parameters) or #delay, instance name, optional [range], '('
_INSTANCE = re.compile(r"(?<![\w$.`\\])(" + _ID + r")\s*(?:#\s*(" + _P3 + r"|[\w.']+)\s*)?(" + _ID
                       + r")\s*(?:\[[^\]]*\]\s*)*\(")


def _uses(text: str) -> list[str]:
    """Names instantiated in ``text`` (comments blanked), in order, no repeats. The regex runs at C
    speed; keywords (``else begin``, ``module m (``) are filtered after the match.

    Returns:
        The instantiated module names (escaped ones without their backslash), in first-use order.
    """
    out: list[str] = []
    for m in _INSTANCE.finditer(text):
        name, inst = m.group(1), m.group(3)
        if name in KEYWORDS or inst in KEYWORDS:
            continue
        name = ident_name(name)
        if name not in out:
            out.append(name)
    return out


def scan_units(code: str) -> list[Unit]:
    """The modules/primitives defined in ``code`` and, for each, the names it instantiates.
    Text outside any module is ignored. Comments and strings never count.

    Returns:
        One ``Unit`` per definition, in source order: name (escaped identifiers without the backslash),
        character offsets ``start``/``end`` into ``code`` (a unit without ``endmodule`` runs to the end of
        the text) and ``uses`` (instantiated names, in order, no repeats, its own name left out).
    """
    text = hide_comments(code)
    units: list[Unit] = []
    cur: Unit | None = None
    for m in _UNIT_EDGE.finditer(text):
        if m.group(1) and cur is None:
            cur = Unit(ident_name(m.group(2)), m.start(), len(code))
        elif m.group(3) and cur is not None:
            cur.end = m.end()
            units.append(cur)
            cur = None
    if cur is not None:
        units.append(cur)
    for u in units:
        u.uses = [n for n in _uses(text[u.start:u.end]) if n != u.name]
    return units


_DIRECTIVE_LINE = re.compile(r"^[ \t]*`(?:define|timescale|default_nettype)\b[^\n]*$", re.MULTILINE)


def directives_outside(code: str, units: list[Unit]) -> str:
    """The `define / `timescale / `default_nettype lines of ``code`` outside its modules (a module's
    text needs the macros its row defines).

    Args:
        code: the row's source text.
        units: ``scan_units(code)``.

    Returns:
        Those lines, stripped, joined by newlines in source order ('' when there are none).
    """
    outside, pos = [], 0
    for u in units:
        outside.append(code[pos:u.start])
        pos = u.end
    outside.append(code[pos:])
    return "\n".join(m.group(0).strip() for part in outside for m in _DIRECTIVE_LINE.finditer(part))


@dataclass
class Instance:
    """One instantiation found in a text: module name, instance name, character span (from the
    module name to the closing parenthesis of the port list), named/positional ports and parameters."""
    module: str
    inst: str
    start: int
    end: int
    ports: list[str] = field(default_factory=list)
    n_positional: int = 0
    params: list[str] = field(default_factory=list)
    n_positional_params: int = 0


def _close(text: str, open_at: int) -> int:
    """Offset just after the parenthesis that closes the one at ``open_at`` (end of text if none).

    Returns:
        The offset just after the closing bracket, or ``len(text)`` when it never closes.
    """
    depth = 0
    for i in range(open_at, len(text)):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def _items(inner: str) -> list[str]:
    """Top-level comma-separated items of a parenthesised list (nested (), [], {} kept whole).

    Returns:
        The items, stripped, empty ones left out.
    """
    out, depth, cur = [], 0, []
    for c in inner:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
    out.append("".join(cur).strip())
    return [x for x in out if x]


_NAMED = re.compile(r"^\.\s*(\\\S+|[A-Za-z_][\w$]*)")


def _split_connections(items: list[str]) -> tuple[list[str], int]:
    named, positional = [], 0
    for it in items:
        m = _NAMED.match(it)
        if m:
            name = ident_name(m.group(1))
            if name not in named:
                named.append(name)
        elif not it.startswith(".*"):
            positional += 1
    return named, positional


def instances(code: str) -> list[Instance]:
    """Every instantiation in ``code`` (comments and strings blanked; keywords left out), in order.

    Returns:
        One ``Instance`` per instantiation, in source order: module and instance name, character span in
        ``code``, named ports and count of positional ones, named parameters and count of positional ones
        (a ``#8`` / ``#WIDTH`` value counts as one positional parameter).
    """
    text = hide_comments(code)
    out = []
    for m in _INSTANCE.finditer(text):
        if m.group(1) in KEYWORDS or m.group(3) in KEYWORDS:
            continue
        end = _close(text, m.end() - 1)
        ports, npos = _split_connections(_items(text[m.end():end - 1]))
        params, nppos = [], 0
        par = m.group(2)
        if par:
            if par.startswith("("):
                params, nppos = _split_connections(_items(par[1:-1]))
            else:
                nppos = 1                      # '#8' / '#WIDTH': one positional value
        out.append(Instance(ident_name(m.group(1)), ident_name(m.group(3)), m.start(), end, ports, npos, params, nppos))
    return out


def _decl(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][\w$]*", name) and name not in KEYWORDS else "\\" + name + " "


def black_box(name: str, uses: Sequence[Instance]) -> str:
    """A black-box module ``name`` that accepts every instantiation in ``uses``: the union of the
    named ports, padded with ``p<k>`` ports for the most positional connections; every port a
    one-bit ``input`` (iverilog then only warns about widths: an ``input`` takes any expression,
    a constant or a ``reg`` too, and a one-bit port also fits an instance array); parameters alike
    (named ones, padded with ``P<k>``), default 0. Plain Verilog-1995 syntax, so every standard
    parses it.

    Returns:
        The black box's Verilog source on one line: ``module <name>(<ports>); parameter ... input ...
        endmodule`` (escaped names where a name is not a plain identifier or is a keyword).
    """
    ports: list[str] = []
    params: list[str] = []
    npos = nppos = 0
    for u in uses:
        ports += [p for p in u.ports if p not in ports]
        params += [p for p in u.params if p not in params]
        npos, nppos = max(npos, u.n_positional), max(nppos, u.n_positional_params)
    k = 0
    while len(ports) < npos:
        if f"p{k}" not in ports:
            ports.append(f"p{k}")
        k += 1
    k = 0
    while len(params) < nppos:
        if f"P{k}" not in params and f"P{k}" not in ports:
            params.append(f"P{k}")
        k += 1
    params = [p for p in params if p not in ports]
    head = f"module {_decl(name)}" + (f"({', '.join(_decl(p) for p in ports)});" if ports else ";")
    body = "".join(f" parameter {_decl(p)} = 0;" for p in params) + "".join(f" input {_decl(p)};" for p in ports)
    return head + body + " endmodule"


# -- the index -----------------------------------------------------------------------------------
@dataclass
class ModuleDef:
    """One module definition found in the corpus: the defining row's id, its text and the names it instantiates."""
    row: str              # id of the defining row
    text: str             # the module's source (plus its row's `define lines), as cleaned
    uses: tuple[str, ...]  # names it instantiates


class ModuleIndex(Stage):
    """Global stage (drops nothing): the corpus's module index for the compile check.

    ``keys``: per row and module name it defines or instantiates, one key row (``index_keys``);
    rows without modules give none. ``fit`` (on the workers; the driver gets counts only):

    1. the key rows are shuffled by module name (``engine.shuffle``: dask's own shuffle), so each
       name's definitions and uses meet in one frame; per frame (``index_bucket``): the defining
       rows of each name in input order (``_order``), the names some row instantiates and some
       row defines (``needed``), and the first ``max_definitions_per_name`` defining rows of each
       needed name;
    2. each partition cuts the text of those definitions out of its own rows (``definition_texts``);
    3. one task joins them into ``definitions`` (name -> [``ModuleDef``], input order, identical
       texts once) and ``modules`` (name -> first), which stays on that worker and goes to the
       next pass's tasks (``state``), where the compile check elaborates against it.

    ``closure(names, exclude)`` gives what to append to a row to elaborate it. Summary: rows
    defining a module, distinct names, names defined by several rows, definitions kept for
    elaboration (and their size in characters). ``fetch(engine)`` brings the index to this
    process (tests, notebooks).
    """

    name = "module_index"
    is_global = True
    keys_on_workers = True

    def __init__(self, field: str = "code",
                 max_definitions_per_name: int = _MI.max_definitions_per_name) -> None:
        super().__init__(field=field, max_definitions_per_name=max_definitions_per_name)
        if int(max_definitions_per_name) < 1:
            raise ValueError(f"module_index.max_definitions_per_name: must be >= 1, got {max_definitions_per_name!r}")
        self.modules: dict[str, ModuleDef] = {}             # name -> first definition (input order)
        self.definitions: dict[str, list[ModuleDef]] = {}   # name -> every distinct definition, input order
        self._summary: dict[str, Any] = {}
        self._state = None
        #: False (curation): only definitions some row of the corpus instantiates are kept; True
        #: (``build_module_index``, a judge of designs from outside the corpus): every definition
        self.keep_all = False

    def keys(self, df: pd.DataFrame) -> pd.DataFrame:
        """Per row of one partition: ``id``, ``_order``, the module names it defines and the names it
        instantiates but does not define (first occurrence order; ``index_keys``).

        Args:
            df: one partition with ``id``, ``_order`` and the configured code field.

        Returns:
            ``index_keys(df, field)``: one key row per (row, module name); no rows for rows without modules.
        """
        return index_keys(df, self.config["field"])

    def fit(self, parts, engine, keys=None) -> None:
        """Build the index on the workers (see the class docstring).

        Args:
            parts: the partitions as they are now.
            engine: the engine that runs the collection tasks.
            keys: one key frame per partition (futures on a cluster), a single frame, or None
                (then computed here, on the workers).
        """
        if keys is None:
            keys = engine.map(self.keys, parts)
        elif isinstance(keys, pd.DataFrame):
            keys = [keys]
        keys = list(keys)
        self.modules, self.definitions, self._state = {}, {}, None
        if not keys:
            self._summary = _index_summary([], (0, 0, 0))
            return
        cap = int(self.config["max_definitions_per_name"])
        n = max(1, min(len(keys), 2 * max(1, engine.n_workers)))
        total = sum(engine.gather(engine.map(len, keys)))          # one count per partition
        buckets = engine.shuffle(keys, ["name"], n, index_keys(pd.DataFrame({"id": [], "_order": [], "code": []}), "code"))
        del keys
        sized = engine.map(len, buckets)
        reduced = engine.map(partial(index_bucket, cap=cap, keep_all=self.keep_all), buckets)
        del buckets
        done = engine.map(_second, sized, engine.map(partial(_item, 1), reduced))   # a bucket's keys, once reduced
        engine.gather_progress(done, f"module_index fit: module names (defined or instantiated) shuffled into {n} "
                               "buckets, definitions chosen", total, "names")
        wanted = engine.submit(_wanted_rows, *engine.map(partial(_item, 0), reduced))
        texts = engine.map(partial(definition_texts, field=self.config["field"]), parts, [wanted] * len(parts))
        built = engine.submit(build_definitions, engine.map(partial(_item, 0), reduced),
                              engine.map(partial(_item, 2), reduced), *texts)
        stats = engine.gather(engine.map(partial(_item, 1), reduced) + [engine.submit(_item, 1, built)])
        self._state = engine.submit(_item, 0, built)
        if engine.client is None:
            self.set_state(self._state)
            self._state = None
        self._summary = _index_summary(stats[:-1], stats[-1])
        log.info("module index: %d module names in %d rows (%d defined by several rows: tried in input order); "
                 "%d names with definitions kept for elaboration", self._summary["module_names"],
                 self._summary["rows_defining_modules"], self._summary["names_defined_by_several_rows"],
                 self._summary["definitions_for_elaboration"])

    def state(self):
        """The index where it lives after ``fit``.

        Returns:
            A future of ``(definitions, modules)`` on a worker (dask), or None with ``engine=local`` (then
            the index is already here).
        """
        return self._state

    def set_state(self, value) -> None:
        """``value``: (definitions, modules) as ``build_definitions`` made them (built once, not
        per task)."""
        self.definitions, self.modules = value

    def fetch(self, engine) -> ModuleIndex:
        """Bring ``definitions`` and ``modules`` to this process (they stay on a worker otherwise).

        Args:
            engine: the engine ``fit`` ran on (gathers the worker's future).

        Returns:
            ``self``, with ``definitions`` and ``modules`` filled in.
        """
        if self._state is not None:
            self.set_state(engine.gather([self._state])[0])
        return self

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_state"] = None                   # a future: it travels as the task's argument instead
        return d

    def closure(self, names: Sequence[str], exclude: set[str]) -> list[str]:
        """The index names to append so that ``names`` elaborate.

        Args:
            names: the module names the row instantiates.
            exclude: the names the row defines itself (never appended).

        Returns:
            Each known name and, depth first, the known names they instantiate, once each, in a deterministic
            order (first need first); names the index does not define are left out.
        """
        out: list[str] = []
        seen = set(exclude)
        stack = [n for n in reversed(list(names))]
        while stack:
            name = stack.pop()
            if name in seen or name not in self.modules:
                continue
            seen.add(name)
            out.append(name)
            stack.extend(reversed([n for n in self.modules[name].uses if n not in seen]))
        return out

    def process(self, df: pd.DataFrame) -> pd.DataFrame:
        """Nothing to do per partition: the index is used by the compile check.

        Returns:
            ``df`` unchanged.
        """
        return df

    def summary(self) -> dict[str, Any]:
        """Index sizes for the report (see the class docstring).

        Returns:
            A copy of ``{"rows_defining_modules", "module_names", "names_defined_by_several_rows",
            "definitions_for_elaboration", "alternative_definitions", "definition_chars"}`` (counts; the last
            in characters); empty before ``fit``.
        """
        return dict(self._summary)


def _second(n, _after):
    """``n``, once ``_after`` is computed (a task that finishes with its bucket's reduction).

    Returns:
        ``n``.
    """
    return n


def _item(i, seq):
    return seq[i]


def build_module_index(rows: Iterable[tuple[str, str]], max_definitions_per_name: int = 8) -> ModuleIndex:
    """A ``ModuleIndex`` of ``rows`` ((id, Verilog text) pairs, in corpus order) built in this
    process (``engine=local``): for a judge that needs the corpus's modules, e.g. the evaluation of
    held-out references that instantiate modules defined in other rows. Every definition is kept
    (the designs judged against it are not rows of the corpus), the first
    ``max_definitions_per_name`` distinct ones per name; ``fingerprint``: a sha256 of its content.

    Returns:
        The fitted ``ModuleIndex`` with ``keep_all`` set, ``definitions``/``modules`` in this process
        and ``fingerprint`` (64 hex digits over every kept name and definition text).

    Raises:
        ValueError: ``max_definitions_per_name`` < 1.
    """
    from .engine import Engine

    ids, texts = [], []
    for rid, text in rows:
        ids.append(str(rid))
        texts.append(text if isinstance(text, str) else "")
    df = pd.DataFrame({"id": ids, "code": texts})
    df["_order"] = np.arange(len(df), dtype=np.int64)
    index = ModuleIndex("code", max_definitions_per_name=max_definitions_per_name)
    index.keep_all = True
    with Engine(engine="local", partition_rows=max(1, len(df))) as eng:
        index.fit(eng.partitions(df), eng)
    digest = hashlib.sha256()
    for name in sorted(index.definitions):
        for d in index.definitions[name]:
            digest.update(f"{name}\0{d.text}\0".encode())
    index.fingerprint = digest.hexdigest()
    return index


def index_keys(df: pd.DataFrame, field: str) -> pd.DataFrame:
    """The module index's keys of one partition: one key row per (row, module name) the row defines
    or instantiates without defining it. Rows without modules give no key row (prose: nothing); tens
    of bytes per name otherwise.

    Args:
        df: one partition with ``id``, ``_order`` and ``field``.
        field: the column holding the Verilog text.

    Returns:
        DataFrame with columns ``name`` (object), ``_order`` (int64), ``id`` (object), ``defines`` (bool:
        the row defines the name) and ``first`` (bool: True on a defining row's first name, to count
        defining rows); a row's defined names come first, then its other uses.
    """
    names, orders, ids, defines, first = [], [], [], [], []
    for rid, order, code in zip(_as_str(df["id"]).tolist(), df["_order"].tolist(), df[field].tolist()):
        units = scan_units(code or "")
        if not units:
            continue
        own = tuple(dict.fromkeys(u.name for u in units))
        uses = tuple(dict.fromkeys(n for u in units for n in u.uses if n not in own))
        for k, name in enumerate(own + uses):
            names.append(name)
            orders.append(order)
            ids.append(rid)
            defines.append(k < len(own))
            first.append(k == 0 and bool(own))
    return pd.DataFrame({"name": pd.Series(names, dtype=object), "_order": pd.Series(orders, dtype="int64"),
                         "id": pd.Series(ids, dtype=object), "defines": pd.Series(defines, dtype=bool),
                         "first": pd.Series(first, dtype=bool)})


def index_bucket(keys: pd.DataFrame, cap: int, keep_all: bool = False):
    """One bucket of module names (every key row of each name is here).

    Args:
        keys: the key rows (``index_keys``) of every name of this bucket.
        cap: the most defining rows kept per name.
        keep_all: keep the definitions of every name, not only those some row instantiates.

    Returns:
        ``(want, stats, defined)``: ``want`` the definitions to fetch, a DataFrame with ``name``,
        ``_order``, ``id`` and ``rank`` (0 = first defining row) of the first ``cap`` defining rows of
        each name that some row instantiates (``keep_all``: of every name); ``stats`` (defining rows
        counted by their first name, distinct names defined, names defined by several rows); ``defined``
        the set of names defined here.
    """
    defs = keys[keys["defines"].to_numpy(dtype=bool)].sort_values(["name", "_order"], kind="stable")
    used = set(keys.loc[~keys["defines"].to_numpy(dtype=bool), "name"].tolist())
    rank = defs.groupby("name", sort=False).cumcount().to_numpy() if len(defs) else np.zeros(0, dtype=np.int64)
    per_name = defs["name"].value_counts()
    needed = (defs["name"].isin(used).to_numpy() | keep_all) & (rank < cap)
    want = defs.loc[needed, ["name", "_order", "id"]].assign(rank=rank[needed]).reset_index(drop=True)
    stats = (int(keys["first"].sum()), int(len(per_name)), int((per_name > 1).sum()))
    return want, stats, set(per_name.index.tolist())


def _wanted_rows(*wants: pd.DataFrame) -> pd.DataFrame:
    """The (row, name) definitions to fetch, sorted by ``_order`` (searched by every partition).

    Returns:
        The concatenated frames (``name``, ``_order``, ``id``, ``rank``) sorted by ``_order`` then name;
        an empty frame with those columns for no input.
    """
    if not wants:
        return pd.DataFrame({"name": [], "_order": [], "id": [], "rank": []})
    return pd.concat(wants, ignore_index=True).sort_values(["_order", "name"], kind="stable").reset_index(drop=True)


def definition_texts(df: pd.DataFrame, wanted: pd.DataFrame, field: str) -> list[tuple[str, int, str, str, tuple[str, ...]]]:
    """The wanted definitions that live in this partition.

    Args:
        df: one partition with ``id``, ``_order`` and ``field``.
        wanted: the definitions to fetch (``name``, ``_order``, ...), over the whole corpus.
        field: the column holding the Verilog text.

    Returns:
        ``(name, _order, id, text, uses)`` per wanted definition found here: ``text`` is the module's
        source preceded by its row's `define/`timescale lines, ``uses`` the names the module
        instantiates; the row's first unit of each name only. Empty when nothing wanted lives here.
    """
    if wanted.empty or df.empty:
        return []
    mine = wanted[wanted["_order"].isin(df["_order"])]
    if mine.empty:
        return []
    names_of: dict[int, set[str]] = {}
    for name, order in zip(mine["name"].tolist(), mine["_order"].tolist()):
        names_of.setdefault(order, set()).add(name)
    out = []
    rows = df[df["_order"].isin(list(names_of))]
    for rid, order, code in zip(_as_str(rows["id"]).tolist(), rows["_order"].tolist(), rows[field].tolist()):
        code = code or ""
        units = scan_units(code)
        pre = directives_outside(code, units)
        done: set[str] = set()
        for u in units:
            if u.name in names_of[order] and u.name not in done:     # the row's first unit of that name
                done.add(u.name)
                text = code[u.start:u.end]
                out.append((u.name, int(order), rid, (pre + "\n" + text) if pre else text, tuple(u.uses)))
    return out


def build_definitions(wants: list[pd.DataFrame], defined: list[set[str]], *texts):
    """The index from the buckets' wanted definitions and the partitions' texts.

    Args:
        wants: each bucket's ``want`` frame (``index_bucket``).
        defined: each bucket's set of names defined.
        *texts: each partition's ``definition_texts``.

    Returns:
        ``((definitions, modules), (names, alternatives, chars))``: ``definitions`` maps name -> distinct
        ``ModuleDef``s in input order (identical texts once; uses limited to names the corpus defines, as
        the compile check follows them), sorted by name; ``modules`` maps name -> the first of them; then
        the number of names kept, of alternative definitions beyond the first, and the total definition
        text in characters.
    """
    found = {(name, order): (rid, text, uses) for part in texts for name, order, rid, text, uses in part}
    names_defined = set().union(*defined) if defined else set()
    definitions: dict[str, list[ModuleDef]] = {}
    want = pd.concat(wants, ignore_index=True) if wants else pd.DataFrame({"name": [], "_order": [], "rank": []})
    want = want.sort_values(["name", "rank"], kind="stable")
    seen: dict[str, set[str]] = {}
    for name, order in zip(want["name"].tolist(), want["_order"].tolist()):
        hit = found.get((name, int(order)))
        if hit is None:
            continue
        rid, text, uses = hit
        texts_of = seen.setdefault(name, set())
        if text in texts_of:                              # identical copies are tried once
            continue
        texts_of.add(text)
        definitions.setdefault(name, []).append(ModuleDef(rid, text, tuple(n for n in uses if n in names_defined)))
    definitions = {n: definitions[n] for n in sorted(definitions)}
    return (definitions, {n: ds[0] for n, ds in definitions.items()}), (len(definitions), int(sum(len(d) - 1 for d in definitions.values())),
                         int(sum(len(m.text) for ds in definitions.values() for m in ds)))


def _index_summary(buckets, built) -> dict[str, int]:
    return {"rows_defining_modules": int(sum(b[0] for b in buckets)), "module_names": int(sum(b[1] for b in buckets)),
            "names_defined_by_several_rows": int(sum(b[2] for b in buckets)),
            "definitions_for_elaboration": int(built[0]), "alternative_definitions": int(built[1]),
            "definition_chars": int(built[2])}


# -- the compile check with standards and submodules ----------------------------------------------
_LOC = re.compile(r"^(?P<file>[^:\s]+):(?P<line>\d+):\s*(?P<msg>.*)$")
_UNKNOWN = re.compile(r"Unknown module type:\s*(\S+)")
_NO_TOP = re.compile(r"No top level modules")
#: iverilog's messages for an instance that does not fit the module's ports or parameters
_INTERFACE = re.compile(r"is not a port of|Wrong number of ports")
_NOISE = re.compile(r"^\s*(?:\d+ error\(s\) during elaboration\.|\*\*\*.*|\S.* referenced \d+ times\.|I give up\.)\s*$")


@dataclass
class Verdict:
    """What ``check_verilog`` found for one source.

    ``status``: ``ok`` | ``ok_with_submodules`` | ``unresolved_submodule`` | ``error`` | ``timeout``;
    ``standard``: the entry of ``standards`` that accepted the code (``-g2005 -gno-xtypes``), '' when none did;
    ``error``: the first real error line (``line N: ...``; warnings never), '' when none;
    ``unresolved``: module names defined nowhere in the index (compiled as black boxes);
    ``mismatched``: names the index defines, none of whose definitions fits the row's instances or
    compiles (``interface_mismatch``; also compiled as black boxes);
    ``submodules``: index names appended to elaborate it;
    ``definitions``: their text as appended (the chosen definition of each, in ``submodules`` order;
    black boxes are not included)."""
    status: str
    standard: str = ""
    error: str = ""
    unresolved: tuple[str, ...] = ()
    submodules: tuple[str, ...] = ()
    mismatched: tuple[str, ...] = ()
    definitions: str = ""


def error_lines(output: str) -> list[tuple[str, int, str]]:
    """iverilog's error lines; warnings and summary lines left out.

    Returns:
        ``(file, line, message)`` per error line, in output order; lines without a location
        (``No top level modules ...``) come back with file '' and line 0.
    """
    out = []
    for raw in output.splitlines():
        s = raw.strip()
        if not s or _NOISE.match(s):
            continue
        m = _LOC.match(s)
        if m:
            msg = m.group("msg")
            # ':  Padding 1 high bits of the port.' continues the message above it (a warning here)
            if msg.startswith(("warning:", "debug:", ":")):
                continue
            out.append((m.group("file"), int(m.group("line")), msg))
        elif "warning" not in s.lower():
            out.append(("", 0, s))
    return out


def standard_label(std: str) -> str:
    """The short label of an iverilog standard, e.g. '-g2005 -gno-xtypes' -> '2005'.

    Returns:
        The text after the standard's ``-g`` flag (its year), or the first flag without its dashes when
        there is no ``-g<digit>`` flag.
    """
    m = re.search(r"-g(\d\S*)", std)
    return m.group(1) if m else std.split()[0].lstrip("-")


def check_verilog(code: str, compile_fn: Callable[..., Any], standards: Sequence[str], flags: Sequence[str],
                  timeout_s: float, index: ModuleIndex | None = None) -> Verdict:
    """Compile ``code`` (one row) with the first standard that accepts it; when the only errors are
    unknown modules, elaborate it again with their definitions from ``index`` appended.

    ``standards``: iverilog flags per standard, most permissive first, each a string that may hold
    several flags (``"-g2005 -gno-xtypes"``: Icarus also reserves its own extra type keywords such as
    ``logic`` and ``bool`` unless told ``-gno-xtypes``, which plain Verilog-1364 code may use as names).

    ``compile_fn(code, flags=..., timeout_s=...)`` is the sandbox's ``compile_check``: a result with
    ``ok``, ``timed_out``, ``stdout``, ``stderr``. The row is always the start of the compiled text,
    so its line numbers stay as written; errors inside appended definitions are told apart by line.

    Returns:
        The ``Verdict``: ``ok`` with the first standard that accepted the row; ``ok_with_submodules`` /
        ``unresolved_submodule`` when it elaborated with index definitions / black boxes; ``timeout``;
        else ``error`` with the error of the attempt that got furthest (``line N: ... [-gYEAR]``).
    """
    attempts: list[tuple[str, list[tuple[str, int, str]]]] = []
    top = None
    for std in standards:
        res = compile_fn(code, flags=(*std.split(), *flags), timeout_s=timeout_s, top=top)
        if res.ok:
            return Verdict("ok", std)
        if res.timed_out:
            return Verdict("timeout", error=f"iverilog timed out after {timeout_s:g}s ({std})")
        errs = error_lines((res.stderr or "") + "\n" + (res.stdout or ""))
        if top is None and errs and all(_NO_TOP.search(m) for _, _, m in errs):
            # a module that instantiates itself (recursive generate) has no root: name it as the top
            units = scan_units(code)
            if units:
                top = units[0].name
                res = compile_fn(code, flags=(*std.split(), *flags), timeout_s=timeout_s, top=top)
                if res.ok:
                    return Verdict("ok", std)
                errs = error_lines((res.stderr or "") + "\n" + (res.stdout or ""))
        if errs and all(_UNKNOWN.search(m) for _, _, m in errs):
            missing = list(dict.fromkeys(_UNKNOWN.search(m).group(1) for _, _, m in errs))
            return _with_submodules(code, missing, std, standards, compile_fn, flags, timeout_s, index, top)
        attempts.append((std, errs))
    return Verdict("error", error=_best_error(attempts))


def _fmt(err: tuple[str, int, str], std: str) -> str:
    file, line, msg = err
    return (f"line {line}: {msg}" if line else msg)[:200] + f" [{std.split()[0]}]"


def _best_error(attempts: list[tuple[str, list[tuple[str, int, str]]]]) -> str:
    """The error of the attempt that got furthest: one that parsed (no syntax error) before one that
    did not; among syntax errors the one latest in the file; ties to the earlier standard.

    Returns:
        That attempt's first error, preferring one that is not an unknown module, as ``line N:
        message [-gYEAR]`` (at most 200 characters before the standard), or ``iverilog failed
        without a message [<std>]``.
    """
    def rank(a):
        std, errs = a
        if not errs:
            return (0, 0)
        parsed = not any("syntax error" in m for _, _, m in errs)
        return (2 if parsed else 1, errs[0][1] if not parsed else 0)
    std, errs = max(attempts, key=rank)   # max keeps the first of equals
    if not errs:
        return f"iverilog failed without a message [{std}]"
    real = [e for e in errs if not _UNKNOWN.search(e[2])]   # a missing module is not the reason here
    return _fmt((real or errs)[0], std)


#: errors a black box itself causes (a port the scan missed, an instance array's widths, a
#: hierarchical reference into it): not the row's fault
_STUB_ARTEFACT = re.compile(r"is not a port of|Wrong number of ports|Port expression width|parameter \S+ not found")


def _with_submodules(code: str, missing: list[str], std: str, standards: Sequence[str],
                     compile_fn: Callable[..., Any], flags: Sequence[str], timeout_s: float,
                     index: ModuleIndex | None, top: str | None = None) -> Verdict:
    """Elaborate ``code`` whose only errors were unknown modules ``missing``: with, per name, the
    first of the index's definitions (input order) that fits, its own submodules (their first
    definition) too, and a black box (``black_box``) for every name the corpus does not define or
    whose definitions all fail: an error on the line of an instance of an appended definition, or
    inside it in every standard, moves on to the name's next definition, then to a black box. An
    error that remains is the row's own: ``error`` with its line. Black boxes only: the row is
    ``unresolved_submodule`` (``unresolved`` = defined nowhere, ``mismatched`` = defined, none fits).

    Returns:
        A ``Verdict``: ``ok_with_submodules``, ``unresolved_submodule`` (with ``unresolved``,
        ``mismatched`` and ``definitions``), ``error`` (the row's own, with ``submodules``) or
        ``timeout``.
    """
    own = {u.name for u in scan_units(code)}
    defs = (lambda n: index.definitions.get(n, [])) if index is not None else (lambda n: [])
    direct = list(missing)
    choice = {n: 0 for n in direct}               # which definition of each direct name is tried
    stubs: list[str] = [n for n in direct if not defs(n)]
    mismatched: list[str] = []
    later = list(standards)[list(standards).index(std):] if std in standards else [std]
    base_lines = code.count("\n") + 1

    def drop_def(name: str) -> None:              # the name's current definition does not fit
        if name in choice and choice[name] + 1 < len(defs(name)):
            choice[name] += 1
        elif name not in stubs:
            stubs.append(name)
            if defs(name) and name not in mismatched:
                mismatched.append(name)

    for _ in range(4 * (len(direct) + sum(len(defs(n)) for n in direct)) + 16):
        # the text: row, appended definitions (direct names, then their submodules depth first), black boxes
        appended: list[tuple[str, str]] = []
        seen = set(own) | set(stubs)
        stack = [n for n in reversed(direct)]
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            ds = defs(n)
            if not ds:
                continue
            d = ds[choice.get(n, 0)]
            appended.append((n, d.text))
            stack.extend(reversed([u for u in d.uses if u not in seen]))
        body = code + "\n" + "".join(t + "\n" for _, t in appended)
        insts = instances(body)
        stub_text = "".join(black_box(n, [u for u in insts if u.module == n]) + "\n" for n in stubs)
        text = body + stub_text
        starts, line = [], base_lines + 1           # (first line, name) of each appended definition
        for n, t in appended:
            starts.append((line, n))
            line += t.count("\n") + 1
        stub_from = line
        spans = [(body.count("\n", 0, u.start) + 1, body.count("\n", 0, u.end) + 1, u) for u in insts]
        names = [n for n, _ in appended]
        appended_set = set(names)

        def owner(lineno: int) -> str | None:
            hit = None
            for first, n in starts:
                if lineno >= first:
                    hit = n
            return hit if lineno < stub_from else None

        def into(msg: str, u: Instance) -> bool:        # a hierarchical reference into the instance
            return re.search(r"(?<![\w$.])" + re.escape(u.inst) + r"\.", msg) is not None

        def on_instance(lineno: int, msg: str, of: set[str]) -> str | None:
            for a, b, u in spans:
                if u.module in of and (a <= lineno <= b or into(msg, u)):
                    return u.module
            return None

        restart = False
        broken_first: list[str] = []
        for s in later:
            res = compile_fn(text, flags=(*s.split(), *flags), timeout_s=timeout_s, top=top)
            defs_text = "".join(t + "\n" for _, t in appended)
            if res.ok:
                if not stubs:
                    return Verdict("ok_with_submodules", s, submodules=tuple(names), definitions=defs_text)
                return Verdict("unresolved_submodule", s, submodules=tuple(names), mismatched=tuple(mismatched),
                               unresolved=tuple(n for n in stubs if n not in mismatched), definitions=defs_text)
            if res.timed_out:
                return Verdict("timeout", error=f"iverilog timed out after {timeout_s:g}s with submodules ({s})")
            errs = error_lines((res.stderr or "") + "\n" + (res.stdout or ""))
            unknown = [u.group(1) for _, _, m in errs for u in [_UNKNOWN.search(m)] if u]
            new = [n for n in dict.fromkeys(unknown) if n not in stubs]
            if new:                               # a definition's own submodule is defined nowhere
                stubs.extend(new)
                restart = True
                break
            misfit = {on_instance(ln, m, appended_set) for _, ln, m in errs if ln}
            misfit.discard(None)
            if misfit:                            # an appended definition does not fit its instance
                for n in sorted(misfit):
                    drop_def(n)
                restart = True
                break
            broken = list(dict.fromkeys(owner(ln) for _, ln, _m in errs if ln and owner(ln)))
            row = [e for e in errs if e[1] == 0 or e[1] <= base_lines]
            if broken:                            # a definition does not compile in this standard
                broken_first = broken_first or broken
                continue
            if s != std and any("syntax error" in m for _, _, m in row):
                continue                          # the row itself needs an earlier standard
            # what a black box causes is not the row's fault: a hierarchical reference into it (in
            # the message or on the error's line: c.get() in a condition), and
            # a port/parameter/width complaint anywhere but at an instance of the row's own modules
            # (the scan may not see an instance: `ifdef between module and instance name)
            boxes = [u for _, _, u in spans if u.module in stubs]
            lines = body.split("\n")
            genuine = [e for e in row if not any(into(e[2], u) or (0 < e[1] <= len(lines) and into(lines[e[1] - 1], u))
                                                 for u in boxes)
                       and not (_STUB_ARTEFACT.search(e[2]) and not on_instance(e[1], e[2], own))]
            if stubs and genuine and all(e[1] == 0 for e in genuine):
                genuine = []                      # iverilog itself gave up (an abort) on the black boxes
            if genuine:                           # an error in the row itself, its submodules present: genuine
                with_ = []
                if names:
                    with_.append("with submodules " + ", ".join(names))
                if stubs:
                    with_.append("black boxes for " + ", ".join(stubs))
                return Verdict("error", s, error=_fmt(genuine[0], s) + f" ({'; '.join(with_)})",
                               submodules=tuple(names))
            return Verdict("unresolved_submodule", s, submodules=tuple(names), mismatched=tuple(mismatched),
                           unresolved=tuple(n for n in stubs if n not in mismatched), definitions=defs_text,
                           error="black-box artefact: " + _fmt((row or errs)[0], s) if (row or errs) else "")
        if restart:
            continue
        for n in broken_first:                    # broken in every standard: as good as not fitting
            if n in direct:
                drop_def(n)
            elif n not in stubs:
                stubs.append(n)
                mismatched.append(n)
    return Verdict("unresolved_submodule", std, unresolved=tuple(n for n in stubs if n not in mismatched) or tuple(missing),
                   mismatched=tuple(mismatched), error="gave up resolving submodules")
