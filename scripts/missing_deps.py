"""Print, one per line, the requirements of pyproject.toml (plus extras) that are not installed.

Used by scripts/bootstrap.sh inside the NeMo container, where packages the container already
has (torch, NeMo, RAPIDS, numpy, ...) must stay exactly as they are. Standard library only.
Usage: python scripts/missing_deps.py pyproject.toml dev,gpu
"""
from __future__ import annotations

import re
import sys
from importlib import metadata

try:
    import tomllib  # Python 3.11+
except ModuleNotFoundError:  # Python 3.10
    tomllib = None


def _read_requirements(path: str, extras: list[str]) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if tomllib is not None:
        project = tomllib.loads(text)["project"]
        reqs = list(project.get("dependencies", []))
        for extra in extras:
            reqs += project.get("optional-dependencies", {}).get(extra, [])
        return reqs
    # Python 3.10 fallback: the quoted strings inside "dependencies = [...]" and the extras' lists.
    reqs = []
    blocks = [re.search(r"^dependencies = \[(.*?)\]", text, re.S | re.M)]
    blocks += [re.search(rf"^{re.escape(e)} = \[(.*?)\]", text, re.S | re.M) for e in extras]
    for block in blocks:
        if block:
            reqs += re.findall(r'"([^"]+)"', block.group(1))
    return reqs


def _name(req: str) -> str:
    return re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0]


def main() -> int:
    path = sys.argv[1]
    extras = [e for e in (sys.argv[2] if len(sys.argv) > 2 else "").split(",") if e]
    missing = []
    for req in _read_requirements(path, extras):
        try:
            metadata.version(_name(req))
        except metadata.PackageNotFoundError:
            missing.append(req)
    print("\n".join(missing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
