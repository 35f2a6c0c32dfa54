"""YAML configs with ``key=value`` command-line overrides.

A config is a YAML file of nested mappings. Overrides address nested keys with dots
(``train.lr=1e-4``); values are parsed as YAML (``true``, ``3``, ``[1, 2]``, ``null``).
Unknown keys are an error (a typo must not silently fall back to a default); a key can be
added on purpose with a leading ``+`` (``+train.new_key=1``; the typed settings then refuse a key they
do not declare, so ``+`` is for mappings without settings). An override's value must have the
type of the value it replaces (``train.max_steps=abc`` -> ``train.max_steps: expected an
integer, got 'abc'``): integer (a key ending in ``_s``, seconds, takes any finite number), number (an
integer is accepted; ``.inf``, ``-.inf`` and ``.nan`` are not: ``train.lr: expected a finite number,
got '.inf'``), true/false, text (a number given for a text is kept as typed), list, or
section; ``null`` is accepted anywhere, and a key whose
value in the file is ``null`` accepts anything. This is the first, file-relative check; the typed
settings (``sft_playbook.settings``: every key's type, choices, range, default and help, and the
checks across keys) are built from the result, once, before any work.

Three rules a user may not guess, chosen as the field's tools behave:

- A whole section given on the command line is MERGED into the file's section, key by key
  (``train={lr: 2e-4, max_steps: 50}`` is ``train.lr=2e-4 train.max_steps=50``; the section's other
  keys keep the file's values), as Hydra does since 1.0.1 ("Dictionaries and lists specified in
  the command line are now merged", facebookresearch/hydra PR #952; OmegaConf merge semantics).
  Replacing would silently reset every key not named to its default. An empty mapping for a
  section that has keys (``train={}``) would set nothing and is refused.
- The same key set twice on one command line (``train.lr=1e-4 train.lr=2e-4``, or
  ``train={lr: 1e-4} train.lr=2e-4``): the last one wins, with one warning line naming the key and
  both values. Overrides are ordered, as in Hydra (a repeated config override is applied in order:
  facebookresearch/hydra issue #3283, closed by its maintainer as intended behaviour) and in
  argparse (a repeated ``store`` option keeps its last value); scripts append overrides to a base
  command, so refusing would break them.
- Booleans are YAML 1.2's: ``true``, ``True``, ``TRUE``, ``false``, ``False``, ``FALSE`` only, in a file
  and in an override. YAML 1.1 (which PyYAML follows) also reads ``yes``, ``no``, ``on``, ``off``
  as booleans: here they stay text, so a true/false setting given ``yes`` is refused with one line
  (``train.compile: expected true or false, got 'yes'``) and a text setting given ``on`` keeps ``on``.
"""
from __future__ import annotations

import copy
import logging
import math
import re
from pathlib import Path
from collections.abc import Callable, Iterable
from typing import Any

import yaml

from .io import InputError, read_text

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A config file or an override is wrong; the message names the file, line or key."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 numbers and booleans: ``5e-5`` and ``1E3`` are floats
    (YAML 1.1, which PyYAML follows, reads them as text; the learning rate is usually written so);
    only ``true`` / ``false`` (``True``, ``TRUE`` ...) are booleans: ``yes``, ``no``, ``on``, ``off``
    stay text (YAML 1.2 core schema, https://yaml.org/spec/1.2.2/#1032-tag-resolution)."""


_BOOL = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML config file as a dict (an empty file gives ``{}``).

    Returns:
        The top-level mapping as the YAML loader reads it (``5e-5`` a float); ``{}`` for an empty file.

    Raises:
        ConfigError: the file is missing, is not valid YAML (``file:line`` named) or is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        text = read_text(path)
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys to values")
    return data


def parse_override(text: str) -> tuple[list[str], Any, bool]:
    """'a.b=3' -> (['a', 'b'], 3, False); '+a.c=x' -> (['a', 'c'], 'x', True).

    Returns:
        ``(key_parts, value, add)``: the dotted key split on ``.``, the value as YAML reads it (a
        text that parses as a float, such as ``5e-5``, becomes a float; invalid YAML stays the raw
        text; an empty value is ''), and whether the key had a leading ``+`` (a new key may be added).

    Raises:
        ConfigError: ``text`` has no ``=`` or an empty key or key part (``a..b=1``).
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    add = key.startswith("+")
    key = key.lstrip("+").strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.load(raw, Loader=_Loader) if raw.strip() else ""  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):  # YAML 1.1 reads "5e-5" as a string; a user means a number
        try:
            value = float(value) if any(c in value for c in ".eE") else value
        except ValueError:
            pass
    return key.split("."), value, add


def apply_overrides(cfg: dict[str, Any], overrides: Iterable[str],
                    known: Callable[[list[str]], bool] | None = None) -> dict[str, Any]:
    """Return a copy of cfg with the overrides applied in order (cfg itself is not changed).

    A mapping given for a section is merged into it key by key (``train={lr: 2e-4}`` is
    ``train.lr=2e-4``); a key set twice keeps the last value and logs one warning line naming the
    key and both values (the module docstring says why).

    Args:
        cfg: the config mapping (from the YAML file).
        overrides: ``key=value`` strings, in command-line order.
        known: says whether a key path the file leaves out is a declared setting (then it may be
            set without ``+``; its type is checked by the typed settings, ``settings.declares``).

    Returns:
        The new mapping.

    Raises:
        ConfigError: an override is malformed, names an unknown key, has a value of the wrong type
            (non-finite numbers included) or is an empty section; one line naming the key.
    """
    out = copy.deepcopy(cfg)
    given: dict[str, str] = {}   # dotted key -> the value last given for it (as typed)
    for text in overrides:
        parts, value, add = parse_override(text)
        for leaf_parts, leaf_value, leaf_raw in _leaves(out, parts, value, text.split("=", 1)[1]):
            dotted = ".".join(leaf_parts)
            if dotted in given:
                log.warning("override %s is given more than once (%s, then %s): the last one is used",
                            dotted, given[dotted], leaf_raw.strip())
            given[dotted] = leaf_raw.strip()
            _set(out, cfg, leaf_parts, leaf_value, leaf_raw, add or (known is not None and known(leaf_parts)), text)
    return out


def _lookup(cfg: dict[str, Any], parts: list[str]) -> tuple[bool, Any]:
    """Look a key path up in cfg.

    Returns:
        ``(found, value)``: whether the key path exists in cfg, and its value (None when not found).
    """
    node: Any = cfg
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _flow_text(value: Any) -> str:
    """A parsed value as YAML flow text, as a user would type it: a text bare where this loader reads
    it back as the same text (``on``), quoted where it would read something else (``'Q: {x}'``).

    Returns:
        The value as one line of YAML flow text (mappings as ``{a: 1}``, lists as ``[1, 2]``).
    """
    if isinstance(value, str) and value == value.strip():
        try:
            if yaml.load(value, Loader=_Loader) == value:  # noqa: S506 - a SafeLoader subclass
                return value
        except yaml.YAMLError:
            pass
    return yaml.safe_dump(value, default_flow_style=True, width=1_000_000, allow_unicode=True).strip() \
        .removesuffix("...").strip()


def _leaves(cfg: dict[str, Any], parts: list[str], value: Any, raw: str) -> list[tuple[list[str], Any, str]]:
    """The (key path, value, value as typed) settings one override makes: a mapping given for a
    section of cfg (or for a key cfg does not have yet) is split into its keys, recursively, so
    that it is merged into the section; anything else is one setting.

    Returns:
        ``(key_parts, value, raw)`` per setting, in the mapping's order; [] for ``{}`` given for an
        existing empty section.

    Raises:
        ConfigError: an empty mapping is given for a section of cfg that has keys (it would set nothing).
    """
    if not isinstance(value, dict):
        return [(parts, value, raw)]
    found, current = _lookup(cfg, parts)
    if found and not isinstance(current, dict):
        return [(parts, value, raw)]            # a mapping for a value: _typed names what is expected
    if not value:
        if found and current:                   # the user expects the keys to go; merged, none would
            key = ".".join(parts)
            raise ConfigError(f"{key}: an empty section ({raw.strip()!r}) sets nothing: a section given on the "
                              f"command line is merged into the file's, key by key (no key is removed); "
                              f"set {key}.KEY=VALUE")
        return [] if found else [(parts, value, raw)]   # {} for {}: nothing to do; a new, empty section
    out: list[tuple[list[str], Any, str]] = []
    for k, v in value.items():
        out += _leaves(cfg, [*parts, str(k)], v, _flow_text(v))
    return out


def _set(out: dict[str, Any], cfg: dict[str, Any], parts: list[str], value: Any, raw: str, add: bool,
         text: str) -> None:
    """out[parts] = value, checked against the type of cfg's value there (``_typed``); ``add``: the
    key path may be new.

    Raises:
        ConfigError: naming the override and key, when a key of the path is unknown (and ``add`` is
            False), a part of the path is a value and not a section, or the value has the wrong type.
    """
    node = out
    for i, part in enumerate(parts[:-1]):
        if part not in node:
            if not add:
                raise ConfigError(f"override {text!r}: unknown key {'.'.join(parts[: i + 1])!r}")
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"override {text!r}: {'.'.join(parts[: i + 1])!r} is not a section")
    leaf = parts[-1]
    if leaf not in node and not add:
        here = ", ".join(sorted(node)) or "none"
        raise ConfigError(f"override {text!r}: unknown key {'.'.join(parts)!r} (known here: {here})")
    base = get(cfg, ".".join(parts), None)   # the type comes from the file, not an earlier override
    if leaf in node and base is not None:
        value = _typed(".".join(parts), base, value, raw)
    node[leaf] = value


_KIND = [(bool, "true or false"), (int, "an integer"), (float, "a number"), (str, "a text"),
         (list, "a list"), (dict, "a section (key: value mapping)")]


def _typed(key: str, old: Any, value: Any, raw: str) -> Any:
    """`value` checked against the type of `old` (the value it replaces); ConfigError when it
    does not fit. An integral float for an integer becomes an int (``1e3`` -> 1000); a number or
    true/false given for a text is kept as the text typed, and so is any text that YAML would read as
    something else (``Q: {input}``, ``### A``, ``x # y``); a quoted text (``'a b'``) loses its quotes.

    Returns:
        The value to store: ``value`` itself, converted (int for an integral float, float for an int
        where ``old`` is a float), or the stripped ``raw`` text where ``old`` is a text.

    Raises:
        ConfigError: ``value`` does not fit the type of ``old``, or is an infinite/NaN number where
            ``old`` is a float or a duration in seconds (a key ending in ``_s``).
    """
    if value is None and raw.strip() in ("null", "Null", "NULL", "~"):   # accepted anywhere, never the text 'null'
        return None                         # ('### A' is also None to YAML, a comment: a text key keeps it)
    if isinstance(old, str) and not (isinstance(value, str) and value == raw.strip()):
        quoted = len(raw.strip()) >= 2 and raw.strip()[0] == raw.strip()[-1] and raw.strip()[0] in "'\""
        return value if quoted and isinstance(value, str) else raw.strip()  # '#', ':', '{' are text here
    if old is None or value is None:
        return value
    want = next(name for typ, name in _KIND if isinstance(old, typ)) if isinstance(old, tuple(t for t, _ in _KIND)) else None
    if want is None:
        return value
    ok = value
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(old, float) or (isinstance(old, int) and not isinstance(old, bool) and key.endswith("_s")):
        if (number and not math.isfinite(value)) or non_finite_text(value):   # .inf, -.inf, .nan, nan, inf
            raise ConfigError(f"{key}: expected a finite number, got {raw.strip()!r}")
    if isinstance(old, bool):
        ok = value if isinstance(value, bool) else ...
    elif isinstance(old, int) and key.endswith("_s"):   # a duration in seconds (timeout_s: 20): any number
        want = "a number"
        ok = value if number else ...
    elif isinstance(old, int):
        if isinstance(value, float) and value.is_integer():
            ok = int(value)
        elif not isinstance(value, int) or isinstance(value, bool):
            ok = ...
    elif isinstance(old, float):
        ok = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else ...
    elif isinstance(old, str):
        ok = raw.strip() if isinstance(value, (int, float, bool)) else (value if isinstance(value, str) else ...)
    elif isinstance(old, list):
        ok = value if isinstance(value, list) else ...
    elif isinstance(old, dict):
        ok = value if isinstance(value, dict) else ...
    if ok is ...:
        raise ConfigError(f"{key}: expected {want}, got {raw.strip()!r}")
    return ok


def non_finite_text(value: Any) -> bool:
    """Whether value is a text Python reads as an infinite or NaN float (``nan``, ``inf``, ``-Infinity``).

    Returns:
        True for such a text; False for any other text and for anything that is not a str.
    """
    if not isinstance(value, str):
        return False
    try:
        return not math.isfinite(float(value))
    except ValueError:
        return False


def load_config(path: str | Path, overrides: Iterable[str] = (),
                known: Callable[[list[str]], bool] | None = None) -> dict[str, Any]:
    """A YAML config file with ``key=value`` overrides applied (``apply_overrides``).

    Args:
        path: the YAML file.
        overrides: ``key=value`` strings (dotted keys).
        known: optional predicate on a dotted key's parts: an override may set a key the YAML
            leaves out when it says the key is declared by the typed settings.

    Returns:
        The nested config dict.

    Raises:
        ConfigError: the file cannot be read, or an override is malformed or of the wrong type.
    """
    return apply_overrides(load_yaml(path), overrides, known)


def dump_config(cfg: dict[str, Any]) -> str:
    """The config as YAML text, keys in their order.

    Returns:
        Block-style YAML (``yaml.safe_dump``), ending with a newline.
    """
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False)


def get(cfg: dict[str, Any], dotted: str, default: Any = ...) -> Any:
    """cfg['a']['b'] for 'a.b'.

    Returns:
        The value at the dotted key (a section is returned as its dict), or ``default`` when the key
        is missing and a default is given.

    Raises:
        ConfigError: the key is missing and no default is given.
    """
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is ...:
                raise ConfigError(f"config key {dotted!r} is missing")
            return default
        node = node[part]
    return node
