"""merge_split keeps at most MERGE_FAN_IN files open: a corpus with more partitions than a worker's
open-file limit merges in rounds (same bytes), instead of dying with "Too many open files" at the
very end of the run."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sft_playbook.curate.writers import MERGE_FAN_IN, merge_split, part_name

AWKWARD = ["m\u00fcller \u00e9t\u00e9", "\\ud800 lone", "1 2 3 leading digits", "", "  spaces ",
           "\u6a21\u5757 module", "tab\there", "x" * 300]


def write_parts(folder: Path, n_parts: int, rows: int, seed: int = 0):
    """``n_parts`` part files sorted by rank (ranks a random permutation of 0..rows-1, some parts
    empty) with awkward lines; returns (parts, ranks, expected bytes)."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(rows)
    owner = rng.integers(0, n_parts, rows)
    owner[owner % 7 == 3] = 0                # parts with index = 3 mod 7 stay empty
    lines = {int(r): (json.dumps({"input": AWKWARD[r % len(AWKWARD)] + f" #{r}", "output": "module m; endmodule"},
                                 ensure_ascii=r % 2 == 0) + "\n").encode() for r in perm}
    parts, ranks = [], []
    for p in range(n_parts):
        mine = np.sort(perm[owner == p])
        jp, rp = folder / f"{part_name(p)}.jsonl", folder / f"{part_name(p)}.npy"
        jp.write_bytes(b"".join(lines[int(r)] for r in mine))
        np.save(rp, mine.astype(np.int64))
        parts.append(str(jp))
        ranks.append(str(rp))
    return parts, ranks, b"".join(lines[r] for r in range(rows))


@pytest.mark.parametrize("fan_in", [2, 3, 5, MERGE_FAN_IN, 10_000])
def test_rounds_give_the_same_bytes(tmp_path, fan_in):
    parts, ranks, expected = write_parts(tmp_path, 37, 400)
    n = merge_split(parts, ranks, str(tmp_path / "out" / "train.jsonl"), fan_in=fan_in)
    assert n == 400
    assert (tmp_path / "out" / "train.jsonl").read_bytes() == expected
    assert not list(tmp_path.glob(".merge-*")), "intermediate files left behind"


def test_fan_in_must_merge(tmp_path):
    with pytest.raises(ValueError, match="fan_in"):
        merge_split([], [], str(tmp_path / "x.jsonl"), fan_in=1)


def test_many_parts_under_a_low_open_file_limit(tmp_path):
    """300 parts with the soft RLIMIT_NOFILE at 100 (a worker's 1024 with >1000 partitions, scaled
    down): merging them all at once fails with EMFILE; in rounds it works."""
    parts, ranks, expected = write_parts(tmp_path, 300, 1500, seed=1)
    target = tmp_path / "out" / "validation.jsonl"
    code = textwrap.dedent(f"""
        import json, resource, sys
        resource.setrlimit(resource.RLIMIT_NOFILE, (100, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        from sft_playbook.curate.writers import merge_split
        parts, ranks = json.loads(sys.argv[1]), json.loads(sys.argv[2])
        print(merge_split(parts, ranks, {str(target)!r}))
    """)
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", code, json.dumps(parts), json.dumps(ranks)], cwd=root,
                       capture_output=True, text=True, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "1500"
    assert target.read_bytes() == expected
