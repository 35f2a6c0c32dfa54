"""Files and folders written by sft_playbook.io get the mode the user's umask gives (not mkstemp's
0600 / mkdtemp's 0700); JSON errors read as one clean line."""
from __future__ import annotations

import json
import os
import stat

import pytest

from sft_playbook import io as sio
from sft_playbook.curate.io import read_jsonl_frame


@pytest.fixture(params=[0o022, 0o027, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_every_atomic_writer_gives_the_umask_mode(tmp_path, umask):
    want = 0o666 & ~umask
    sio.write_text_atomic(tmp_path / "a.txt", "x\n")
    sio.write_bytes_atomic(tmp_path / "b.bin", b"\0\1")
    sio.write_jsonl_atomic(tmp_path / "deep" / "c.jsonl", [{"a": "é"}])
    sio.write_json_atomic(tmp_path / "d.json", {"a": 1})
    sio.write_chunks_atomic(tmp_path / "e.jsonl", iter([b"{}\n", b"{}\n"]))
    for name in ["a.txt", "b.bin", "deep/c.jsonl", "d.json", "e.jsonl"]:
        assert _mode(tmp_path / name) == want, (name, oct(_mode(tmp_path / name)), oct(want))


def test_replacing_an_existing_file_also_gets_the_umask_mode(tmp_path, umask):
    p = tmp_path / "r.json"
    p.write_text("old")
    p.chmod(0o600)
    sio.write_json_atomic(p, [1])
    assert _mode(p) == 0o666 & ~umask


def test_folder_set_and_its_files_get_the_umask_mode(tmp_path, umask):
    target = tmp_path / "out"
    with sio.replace_dir_atomic(target) as d:
        sio.write_jsonl_atomic(d / "train.jsonl", [{"x": 1}])
        sio.write_text_atomic(d / "sub" / "report.md", "# r\n")
    assert _mode(target) == 0o777 & ~umask
    assert _mode(target / "sub") == 0o777 & ~umask
    assert _mode(target / "train.jsonl") == 0o666 & ~umask
    assert _mode(target / "sub" / "report.md") == 0o666 & ~umask


@pytest.mark.parametrize("line, want", [
    ('{"a": "x\ty"}', "Invalid control character"),           # raw tab in a string
    ('{"a": "x\x01y"}', "Invalid control character"),
    ('{"a": 1,, "b": 2}', "Expecting property name"),
    ('{"a": "unterminated', "n"),                            # the line's own newline or its end
])
def test_broken_json_message_has_no_doubled_at(tmp_path, line, want):
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": "ok"}\n' + line + "\n", encoding="utf-8")
    msgs = []
    for read in (lambda: list(sio.iter_jsonl(p)), lambda: read_jsonl_frame(p, {"a": "str"})):
        with pytest.raises(sio.InputError) as ei:
            read()
        msgs.append(str(ei.value))
    p2 = tmp_path / "x.json"
    p2.write_text(line, encoding="utf-8")
    with pytest.raises(sio.InputError) as ei:
        sio.read_json(p2)
    msgs.append(str(ei.value))
    for m in msgs:
        assert want in m and " at at " not in m and "at column" in m, m
        assert "\n" not in m
    assert msgs[0].startswith(f"{p}:2: not valid JSON (") and msgs[1].startswith(f"{p}:2: ")
    json.loads('{"a": "ok"}')
