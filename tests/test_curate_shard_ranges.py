"""The driver holds O(ranges + shards) numbers to cut jsonl files into shards, not the offset of
every 16th line (issue 15, review finding 14): the workers count lines per byte range, the driver
adds the counts up, the workers find the shard starts. The shards must be exactly those of the
former scan (so ids ``<name>-<n>``, line numbers in errors and every output byte stay the same)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from sft_playbook.curate import shards as sh
from sft_playbook.curate.engine import Engine
from sft_playbook.curate.pipeline import curate, list_shards
from sft_playbook.curate.sources import SourceError
from sft_playbook.io import jsonl_line_starts
from test_curate_scale import awkward_source, config

BOM = b"\xef\xbb\xbf"


def awkward_files(folder: Path) -> list[Path]:
    """jsonl bytes as they come: BOM, CRLF, blank lines, no final newline, one very long line,
    a file of newlines only, an empty file, one line without a newline, non-UTF-8 bytes."""
    rnd = random.Random(7)
    folder.mkdir(parents=True, exist_ok=True)
    bodies = {
        "bom_crlf.jsonl": BOM + b"".join(b'{"a": %d}\r\n' % i for i in range(50)),
        "blank_no_final_nl.jsonl": b"\n".join((b"" if i % 7 == 3 else b'{"x": "%s"}' % (b"y" * rnd.randint(0, 90)))
                                              for i in range(123)),
        "long_line.jsonl": b'{"a": 1}\n{"code": "' + b"z" * 5000 + b'"}\n{"b": 2}\n',
        "newlines_only.jsonl": b"\n" * 40,
        "empty.jsonl": b"",
        "one_line.jsonl": b'{"only": true}',
        "bad_bytes.jsonl": b'{"a": "\xff\xfe"}\n' * 17 + b"\n\n",
    }
    out = []
    for name, data in bodies.items():
        (folder / name).write_bytes(data)
        out.append(folder / name)
    return out


@pytest.mark.parametrize("range_bytes", [1, 2, 3, 7, 64, 4096, 10**9])
def test_counts_per_range_add_up_to_the_lines(tmp_path, range_bytes):
    for f in awkward_files(tmp_path):
        size = f.stat().st_size
        counts = [sh.count_lines(str(f), a, b, size) for a, b in sh.byte_ranges(size, range_bytes)]
        n, starts = jsonl_line_starts(f)
        assert sum(counts) == n, f.name
        # each range counts exactly the line starts that fall in it
        for (a, b), c in zip(sh.byte_ranges(size, range_bytes), counts):
            assert c == sum(a <= s < b for s in starts), (f.name, a, b)


@pytest.mark.parametrize("range_bytes", [1, 5, 64, 10**9])
@pytest.mark.parametrize("per", [1, 8, 16, 20, 33, 100, 1000])
def test_shards_are_exactly_those_of_the_former_scan(tmp_path, range_bytes, per):
    for f in awkward_files(tmp_path):
        size = f.stat().st_size
        ranges = sh.byte_ranges(size, range_bytes)
        counts = [sh.count_lines(str(f), a, b, size) for a, b in ranges]
        lines = sh.shard_lines(per)
        starts = []
        for r, idx in sorted(sh.shard_starts(counts, lines).items()):
            starts += sh.line_offsets(str(f), *ranges[r], size, idx)
        got = sh.jsonl_shards(0, str(f), size, sum(counts), lines, starts)
        assert got == sh.cut_shards(0, str(f), sh.scan_file(str(f)), per), (f.name, range_bytes, per)


def test_a_file_that_shrank_since_it_was_counted_is_named(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_bytes(b'{"a": 1}\n' * 10)
    size = f.stat().st_size
    f.write_bytes(b'{"a": 1}\n' * 2)
    with pytest.raises(SourceError, match=r"a\.jsonl: changed while it was read"):
        sh.line_offsets(str(f), 0, size, size, [0, 5])


def test_the_driver_gets_counts_per_range_and_shard_not_per_line(tmp_path, monkeypatch):
    f = tmp_path / "big.jsonl"
    f.write_text("".join(json.dumps({"code": "module m; endmodule", "i": i}) + "\n" for i in range(20_000)))
    monkeypatch.setattr(sh, "SCAN_RANGE_BYTES", 100_000)          # ~10 ranges
    got: list = []
    with Engine(engine="local", partition_rows=5008) as eng:      # a multiple of 16: shards of 5008 lines
        real = eng.gather

        def gather(parts):
            values = real(parts)
            got.extend(values)
            return values
        eng.gather = gather
        shards = list_shards([(0, str(f))], eng)

    def numbers(v):
        return sum(numbers(x) for x in v) if isinstance(v, (list, tuple)) else 1
    ranges = len(sh.byte_ranges(f.stat().st_size))
    assert [s.first_line for s in shards] == [1, 5009, 10017, 15025]
    assert numbers(got) <= 3 + ranges + len(shards)               # kind+size+bytes, one count per range, the starts
    assert numbers(sh.scan_file(str(f))) > 20_000 // 16           # what the former scan sent: every 16th offset


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_tiny_ranges_give_the_same_bytes_and_line_numbers(tmp_path, monkeypatch, engine):
    """A whole curation with 1999-byte ranges (most lines cross ranges) writes the bytes of one
    with the default; a bad line is still named by its own line number."""
    awkward_source(tmp_path / "a" / "src")
    extra = ["engine.n_workers=2"] if engine == "dask" else []
    curate(config(tmp_path / "a", engine, extra))
    monkeypatch.setattr(sh, "SCAN_RANGE_BYTES", 1999)             # lines of ~2 kB: most cross a range end
    awkward_source(tmp_path / "b" / "src")
    rep = curate(config(tmp_path / "b", engine, extra))
    for kind in ("out", "dropped"):
        a = {p.relative_to(tmp_path / "a" / kind): p.read_bytes() for p in sorted((tmp_path / "a" / kind).rglob("*"))
             if p.is_file() and p.name not in ("curation_timings.json", "curation_timings.md", "curation_report.json")}
        b = {p.relative_to(tmp_path / "b" / kind): p.read_bytes() for p in sorted((tmp_path / "b" / kind).rglob("*"))
             if p.is_file() and p.name not in ("curation_timings.json", "curation_timings.md", "curation_report.json")}
        assert a == b and len(a) >= 5, kind
    # the report names the bad line with its file:line (and the folder, which differs: a vs b)
    assert [e.split("/src/")[1] for e in rep["bad_lines"]["examples"]] == ["b_main.jsonl:21: not valid JSON "
                                                                           "(Expecting property name enclosed in double quotes at column 2)"]
    if engine == "local":                                          # (a cluster start costs seconds)
        with pytest.raises(SourceError, match=r"b_main\.jsonl:21: not valid JSON"):
            curate(config(tmp_path / "b", engine, [*extra, "on_bad_line=error"]))
