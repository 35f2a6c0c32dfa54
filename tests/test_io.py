"""The shared reader/writer module: BOM, bad bytes, bad lines, atomic files and folder sets."""
from __future__ import annotations

import errno
import json
import os

import pytest

from sft_playbook import io as sio


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_bom_is_accepted_by_every_reader(tmp_path):
    rows = [{"a": "é", "n": 1}, {"a": "x", "n": 2}]
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    p = _write(tmp_path / "x.jsonl", sio.BOM + body)
    assert sio.read_jsonl(p) == rows
    assert [n for n, _ in sio.iter_jsonl(p)] == [1, 2]
    j = _write(tmp_path / "x.json", sio.BOM + json.dumps(rows).encode())
    assert sio.read_json(j) == rows
    assert sio.read_text(j).startswith("[")


@pytest.mark.parametrize("line,col,bad", [
    (b'{"a": "ok"}\n{"a": "caf\xe9"}\n', 2, (2, 0xE9, 11)),          # Latin-1 byte in line 2
    (b'{"a": "\xff"}\n', 1, (1, 0xFF, 8)),
    (b'\n\n{"x": "\xc3\xa9\xc3"}\n', 3, (3, 0xC3, 9)),                 # truncated sequence after an ok one
])
def test_non_utf8_names_file_line_byte_and_column(tmp_path, line, col, bad):
    p = _write(tmp_path / "bad.jsonl", line)
    with pytest.raises(sio.InputError) as ei:
        sio.read_jsonl(p)
    lineno, byte, column = bad
    assert str(ei.value) == f"{p}:{lineno}: not valid UTF-8 (byte 0x{byte:02x} at column {column})"
    assert "\n" not in str(ei.value)


def test_skip_counts_every_kind_of_bad_line(tmp_path):
    p = _write(tmp_path / "m.jsonl", b'{"a":1}\n{"a":\n[1,2]\n{"a":"\xff"}\n\n{"a":5}\n')
    bad = sio.BadLines()
    assert sio.read_jsonl(p, on_bad_line="skip", bad=bad) == [{"a": 1}, {"a": 5}]
    assert bad.skipped == 3
    assert [e.split(": ", 1)[0] for e in bad.examples] == [f"{p}:2", f"{p}:3", f"{p}:4"]
    assert "not valid UTF-8" in bad.examples[2]
    with pytest.raises(sio.InputError, match=r"m\.jsonl:2: not valid JSON"):
        sio.read_jsonl(p)


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(sio.InputError, match="cannot read"):
        sio.read_jsonl(tmp_path / "nope.jsonl")


def test_atomic_write_keeps_old_file_and_leaves_no_tmp_on_full_disk(tmp_path, monkeypatch):
    target = tmp_path / "out" / "train.jsonl"
    sio.write_jsonl_atomic(target, [{"old": 1}])

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sio.os, "replace", full)
    with pytest.raises(sio.OutputError) as ei:
        sio.write_jsonl_atomic(target, [{"new": 2}])
    assert str(ei.value) == f"no space left on device writing {target}"
    assert sio.read_jsonl(target) == [{"old": 1}]
    assert sorted(os.listdir(target.parent)) == ["train.jsonl"]


def test_folder_set_is_replaced_whole_or_not_at_all(tmp_path):
    out = tmp_path / "merged"
    with sio.replace_dir_atomic(out) as d:
        for lvl in ("a", "b"):
            sio.write_text_atomic(d / lvl / "train.jsonl", f"{lvl}1\n")
        sio.write_text_atomic(d / "report.json", "r1\n")
    assert (out / "a" / "train.jsonl").read_text() == "a1\n"

    with pytest.raises(sio.OutputError), sio.replace_dir_atomic(out) as d:
        sio.write_text_atomic(d / "a" / "train.jsonl", "a2\n")      # written...
        raise OSError(errno.ENOSPC, "No space left on device")       # ...then the disk fills
    assert (out / "a" / "train.jsonl").read_text() == "a1\n"
    assert (out / "b" / "train.jsonl").read_text() == "b1\n"
    assert (out / "report.json").read_text() == "r1\n"
    assert sorted(os.listdir(tmp_path)) == ["merged"]                   # no staging folder left

    with sio.replace_dir_atomic(out, keep=["report.json"]) as d:
        sio.write_text_atomic(d / "a" / "train.jsonl", "a3\n")
    assert (out / "a" / "train.jsonl").read_text() == "a3\n"
    assert not (out / "b").exists()                                       # old set gone
    assert (out / "report.json").read_text() == "r1\n"                    # kept on request
