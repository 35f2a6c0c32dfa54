"""YAML configs with ``key=value`` command-line overrides.

A config is a YAML file of nested mappings. Overrides address nested keys with dots
(``train.lr=1e-4``); values are parsed as YAML (``true``, ``3``, ``[1, 2]``, ``null``).
Unknown keys are an error (a typo must not silently fall back to a default); a key can be
added on purpose with a leading ``+`` (``+train.new_key=1``).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable

import yaml


class ConfigError(ValueError):
    """A config file or an override is wrong; the message names the file, line or key."""


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
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


def apply_overrides(cfg: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of cfg with the overrides applied (cfg itself is not changed)."""
    out = copy.deepcopy(cfg)
    for text in overrides:
        parts, value, add = parse_override(text)
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
        node[leaf] = value
    return out


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    return apply_overrides(load_yaml(path), overrides)


def dump_config(cfg: dict[str, Any]) -> str:
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
