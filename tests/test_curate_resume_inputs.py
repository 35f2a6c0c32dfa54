"""resume=true reuses a pass only when it was computed from the same inputs: config, sources
spec, data files (path/size/mtime, or content with resume_check=content), benchmark files and
code (issue 15, review finding 4)."""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest

import curate_fixtures as fx
from sft_playbook.config import load_config
from sft_playbook.curate import pipeline
from sft_playbook.curate.pipeline import Checkpoints, code_version, fingerprint_parts, plan_sources
from sft_playbook.paths import REPO_ROOT

LEVELS = {"high_level": "high_level_global_summary", "detailed": "detailed_global_summary", "block": "block_summary"}


def _setup(tmp: Path, spec_extra=None, extra=()):
    rows, _ = fx.records()
    (tmp / "src").mkdir(exist_ok=True)
    data = tmp / "src" / "rows.jsonl"
    if not data.exists():
        data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    spec = {"name": "s", "path": str(tmp / "src"), "levels": LEVELS, "license": "MIT", **(spec_extra or {})}
    (tmp / "sources.jsonl").write_text(json.dumps(spec) + "\n")
    bench = tmp / "bench"
    if not bench.exists():
        fx.write_benchmark(bench)
    cfg = load_config(REPO_ROOT / "configs/curate.yaml", [
        f"sources={tmp / 'sources.jsonl'}", f"output_dir={tmp / 'out'}", f"decontaminate.benchmark_dir={bench}",
        "engine.engine=local", "pii.backend=regex", *extra])
    return cfg


def _parts(tmp, spec_extra=None, extra=()):
    cfg = _setup(tmp, spec_extra, extra)
    return fingerprint_parts(cfg, plan_sources(cfg))


def _changed(a, b):
    return sorted(k for k in a if a[k] != b[k])


def test_sources_spec_contents_are_in_the_fingerprint(tmp_path):
    base = _parts(tmp_path)
    assert _parts(tmp_path) == base
    assert _changed(base, _parts(tmp_path, {"license": "CC-BY-NC-SA-4.0"})) == ["sources spec"]
    assert _changed(base, _parts(tmp_path, {"name": "t"})) == ["sources spec"]
    swapped = {"levels": {**LEVELS, "high_level": "detailed_global_summary"}}
    assert _changed(base, _parts(tmp_path, swapped)) == ["sources spec"]
    assert _changed(base, _parts(tmp_path, {"code_field": "verilog"})) == ["sources spec"]


def test_benchmark_files_are_in_the_fingerprint(tmp_path):
    base = _parts(tmp_path)
    ref = sorted((tmp_path / "bench").glob("*_ref.sv"))[0]
    ref.write_text(ref.read_text() + "\n// one more line\n")
    assert _changed(base, _parts(tmp_path)) == ["benchmark files"]
    after = _parts(tmp_path)
    (tmp_path / "bench" / "Prob999_new_prompt.txt").write_text("a new problem\n")
    assert _changed(after, _parts(tmp_path)) == ["benchmark files"]


def test_data_files_use_stat_unless_content_is_asked(tmp_path):
    base = _parts(tmp_path)
    data = tmp_path / "src" / "rows.jsonl"
    st = data.stat()
    raw = data.read_bytes()
    edited = raw.replace(b"module", b"MODULE", 1)            # same size
    assert edited != raw and len(edited) == len(raw)
    data.write_bytes(edited)
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))      # same mtime: make/rsync do not see it either
    assert _parts(tmp_path) == base
    data.write_bytes(raw)
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    content = _parts(tmp_path, extra=["resume_check=content"])
    data.write_bytes(edited)
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _changed(content, _parts(tmp_path, extra=["resume_check=content"])) == ["data files"]
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert "data files" in _changed(base, _parts(tmp_path))


def test_the_code_version_covers_the_code_that_makes_rows(tmp_path, monkeypatch):
    """Every module of the package that curation can import: curate/, and what its stages import
    from elsewhere (header recovery: evaluate/vparse.py; the compile check: verilog/sandbox.py;
    io.py, settings.py...), but not the training code (sft/); and the versions of the packages
    whose output becomes rows (ftfy, PII) as well as the engine's (review 15c #6)."""
    from importlib import metadata

    from sft_playbook.curate import engine

    package = Path(pipeline.__file__).resolve().parent.parent
    copy = tmp_path / "sft_playbook"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    here = code_version(copy / "curate")
    assert here == code_version()
    for rel in ("curate/filters.py", "io.py", "evaluate/vparse.py", "verilog/sandbox.py", "secrets.py"):
        f = copy / rel
        before = f.read_bytes()
        f.write_bytes(before + b"\n# changed\n")
        assert code_version(copy / "curate") != here, rel
        f.write_bytes(before)
    (copy / "sft" / "train.py").write_text("# training code: not curation\n")
    assert code_version(copy / "curate") == here
    # files curation never imports (evaluation, the CLI): editing them during a run changes nothing
    # (review 15d #12: a worker restarted after such an edit stopped the run)
    for rel in ("evaluate/passk.py", "cli.py", "evaluate/verilogeval.py"):
        f = copy / rel
        before = f.read_bytes()
        f.write_bytes(before + b"\n# changed\n")
        assert code_version(copy / "curate") == here, rel
        f.write_bytes(before)
    # a new import from curation brings its module in
    vm = copy / "evaluate" / "passk.py"
    filters = copy / "curate" / "filters.py"
    orig = filters.read_bytes()
    filters.write_bytes(orig + b"\n\ndef _later():\n    from ..evaluate import passk  # noqa: F401\n")
    with_import = code_version(copy / "curate")
    vm.write_bytes(vm.read_bytes() + b"\n# changed\n")
    assert code_version(copy / "curate") != with_import
    filters.write_bytes(orig)
    # an editor's lock file (Emacs: a dangling symlink .#<name>.py) or any hidden .py: not code, no crash
    (copy / "evaluate" / ".#harness.py").symlink_to("root@host.1234:1700000000")
    (copy / "curate" / ".scratch.py").write_text("x = 1\n")
    (copy / "curate" / "dangling.py").symlink_to(tmp_path / "gone.py")
    assert code_version(copy / "curate") == here
    real = metadata.version
    for name in ("ftfy", "phonenumbers", "presidio-analyzer", "pandas"):
        monkeypatch.setattr(metadata, "version", lambda n, name=name: "0.0.0-other" if n == name else real(n))
        assert code_version(copy / "curate") != here, name
        ident = engine.code_identity()
        assert ident[name] == "0.0.0-other"
        # a worker with another package version is told which one, not that its code differs
        lines = engine.code_mismatches(dict(ident, **{name: "1.2.3-driver"}), {"tcp://w:1": ident})
        assert len(lines) == 1 and f"{name} 0.0.0-other vs driver's" in lines[0] and "code differs" not in lines[0]
    monkeypatch.setattr(metadata, "version", real)
    assert code_version(copy / "curate") == here


def test_resume_starts_afresh_and_says_which_input_changed(tmp_path, caplog):
    work = tmp_path / "work"
    work.mkdir()
    base = _parts(tmp_path)
    ck = Checkpoints(work, base, resume=False)
    ck.data["read"] = {"rows_read": 3}
    ck.data["passes"] = [{"parts": [], "stats": []}]
    ck.save()
    assert Checkpoints(work, base, resume=True).passes           # same inputs: resumed
    changed = _parts(tmp_path, {"license": "Apache-2.0"})
    with caplog.at_level(logging.WARNING, logger="sft_playbook.curate"):
        again = Checkpoints(work, changed, resume=True)
    assert again.passes == [] and again.data["read"] is None
    assert "changed since: sources spec" in caplog.text and "starting afresh" in caplog.text
    caplog.clear()
    code = dict(base, code="0" * 64)
    with caplog.at_level(logging.WARNING, logger="sft_playbook.curate"):
        assert Checkpoints(work, code, resume=True).passes == []
    assert "changed since: code" in caplog.text


def test_keeping_dropped_rows_is_in_the_fingerprint(tmp_path):
    """dropped_dir may move between a killed run and its resume, but null -> a folder must not
    reuse passes that wrote no dropped-row files (REVIEW15b #18)."""
    base = _parts(tmp_path, extra=[f"dropped_dir={tmp_path / 'd1'}"])
    assert _parts(tmp_path, extra=[f"dropped_dir={tmp_path / 'd2'}"]) == base
    assert _changed(base, _parts(tmp_path, extra=["dropped_dir=null"])) == ["config"]


def test_resume_with_dropped_dir_after_a_run_without_keeps_every_dropped_row(tmp_path, monkeypatch):
    from sft_playbook.io import OutputError

    extra = [f"work_dir={tmp_path / 'work'}", "rules.longest_line.max_chars=60", "engine.partition_rows=4"]
    cfg = _setup(tmp_path, extra=[*extra, "dropped_dir=null"])
    real = pipeline.merge_split

    def boom(*a, **k):
        raise OutputError(28, "no space left on device writing x")
    monkeypatch.setattr(pipeline, "merge_split", boom)
    with pytest.raises(OutputError):                          # fails late: the passes are checkpointed
        pipeline.curate(cfg)
    assert json.loads((tmp_path / "work" / "manifest.json").read_text())["passes"]
    monkeypatch.setattr(pipeline, "merge_split", real)
    cfg = _setup(tmp_path, extra=[*extra, f"dropped_dir={tmp_path / 'drop'}", "resume=true"])
    report = pipeline.curate(cfg)
    lines = sum(len(p.read_text().splitlines()) for p in (tmp_path / "drop").glob("*.jsonl"))
    dropped = sum(sum(s["dropped"].values()) for s in report["stages"])
    assert dropped > 0 and lines == dropped and report["rows_kept"] + dropped == report["rows_read"]


def test_settings_that_change_no_row_are_not_in_the_fingerprint(tmp_path):
    """Watching a resumed run, one changes the progress interval: the finished passes stay valid
    (REVIEW15b finding 8); a setting that changes rows still starts afresh."""
    base = _parts(tmp_path)
    for extra in (["progress_every_s=5"], ["progress_every_s=0"], ["checkpoint=false"], ["download.timeout_s=300"],
                  ["engine.n_workers=7"], [f"timings_file={tmp_path / 't.json'}"]):
        assert _changed(base, _parts(tmp_path, extra=extra)) == [], extra
    for extra in (["rules.word_count.min_words=6"], ["on_bad_line=skip"], ["seed=7"], ["fuzzy_dedup.threshold=0.7"]):
        assert _changed(base, _parts(tmp_path, extra=extra)) == ["config"], extra


def test_a_resume_with_another_progress_interval_reuses_the_finished_passes(tmp_path, monkeypatch, caplog):
    import logging

    import pytest

    from sft_playbook.curate import pipeline
    from sft_playbook.io import OutputError

    cfg = _setup(tmp_path, extra=[f"work_dir={tmp_path / 'work'}"])

    def boom(*a, **k):
        raise OutputError(28, "no space left on device writing x")
    monkeypatch.setattr(pipeline, "merge_split", boom)
    with pytest.raises(OutputError):
        pipeline.curate(cfg)
    monkeypatch.undo()
    again = _setup(tmp_path, extra=[f"work_dir={tmp_path / 'work'}",
                                    "progress_every_s=1", "resume=true"])
    with caplog.at_level(logging.INFO, logger="sft_playbook.curate"):
        pipeline.curate(again)
    assert "pass 1 (clean): finished in an earlier run, not redone" in caplog.text, caplog.text
    assert "changed since" not in caplog.text
