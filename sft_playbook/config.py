"""YAML configs with ``key=value`` command-line overrides.

A config is a YAML file of nested mappings. Overrides address nested keys with dots
(``train.lr=1e-4``); values are parsed as YAML (``true``, ``3``, ``[1, 2]``, ``null``).
Unknown keys are an error (a typo must not silently fall back to a default); a key can be
added on purpose with a leading ``+`` (``+train.new_key=1``; the typed settings then refuse a key they
do not declare, so ``+`` is for mappings without settings). An override's value must have the
type of the value it replaces (``train.max_steps=abc`` -> ``train.max_steps: expected an
integer, got 'abc'``): integer (a key ending in ``_s``, seconds, takes any number), number (an
integer is accepted), true/false, text (a number given for a text is kept as typed), list, or
section; ``null`` is accepted anywhere, and a key whose
value in the file is ``null`` accepts anything. This is the first, file-relative check; the typed
settings (``sft_playbook.settings``: every key's type, choices, range, default and help, and the
checks across keys) are built from the result, once, before any work.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from collections.abc import Callable, Iterable
from typing import Any

import yaml

from .io import InputError, read_text


class ConfigError(ValueError):
    """A config file or an override is wrong; the message names the file, line or key."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 numbers: ``5e-5`` and ``1E3`` are floats (YAML 1.1, which
    PyYAML follows, reads them as text; the learning rate is usually written so)."""


_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML config file as a dict (an empty file gives ``{}``).

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
    """'a.b=3' -> (['a', 'b'], 3, False); '+a.c=x' -> (['a', 'c'], 'x', True)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    add = key.startswith("+")
    key = key.lstrip("+").strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
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
    """Return a copy of cfg with the overrides applied (cfg itself is not changed).

    known: says whether a key path the file leaves out is a declared setting (then it may be set
    without ``+``; its type is checked by the typed settings, ``settings.declares``)."""
    out = copy.deepcopy(cfg)
    for text in overrides:
        parts, value, add = parse_override(text)
        add = add or (known is not None and known(parts))
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
            known = ", ".join(sorted(node)) or "none"
            raise ConfigError(f"override {text!r}: unknown key {'.'.join(parts)!r} (known here: {known})")
        base = get(cfg, ".".join(parts), None)   # the type comes from the file, not an earlier override
        if leaf in node and base is not None:
            value = _typed(".".join(parts), base, value, text.split("=", 1)[1])
        node[leaf] = value
    return out


_KIND = [(bool, "true or false"), (int, "an integer"), (float, "a number"), (str, "a text"),
         (list, "a list"), (dict, "a section (key: value mapping)")]


def _typed(key: str, old: Any, value: Any, raw: str) -> Any:
    """`value` checked against the type of `old` (the value it replaces); ConfigError when it
    does not fit. An integral float for an integer becomes an int (``1e3`` -> 1000); a number or
    true/false given for a text is kept as the text typed, and so is any text that YAML would read as
    something else (``Q: {input}``, ``### A``, ``x # y``); a quoted text (``'a b'``) loses its quotes."""
    if isinstance(old, str) and not (isinstance(value, str) and value == raw.strip()):
        quoted = len(raw.strip()) >= 2 and raw.strip()[0] == raw.strip()[-1] and raw.strip()[0] in "'\""
        return value if quoted and isinstance(value, str) else raw.strip()  # '#', ':', '{' are text here
    if old is None or value is None:
        return value
    want = next(name for typ, name in _KIND if isinstance(old, typ)) if isinstance(old, tuple(t for t, _ in _KIND)) else None
    if want is None:
        return value
    ok = value
    if isinstance(old, bool):
        ok = value if isinstance(value, bool) else ...
    elif isinstance(old, int) and key.endswith("_s"):   # a duration in seconds (timeout_s: 20): any number
        want = "a number"
        ok = value if isinstance(value, (int, float)) and not isinstance(value, bool) else ...
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
    """The config as YAML text, keys in their order."""
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False)


def get(cfg: dict[str, Any], dotted: str, default: Any = ...) -> Any:
    """cfg['a']['b'] for 'a.b'; a missing key raises ConfigError unless a default is given."""
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is ...:
                raise ConfigError(f"config key {dotted!r} is missing")
            return default
        node = node[part]
    return node
