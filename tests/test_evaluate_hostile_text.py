"""Hostile text and hygiene around the judge: lone surrogates in answers (no crash anywhere, the
row judged on its merits), the weaker sandbox announced whether asked for or fallen back to, and
no job folders left in the machine's temporary folder by a process that died."""
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluate import main as evaluate_main
from sft_playbook.io import jsonl_text
from sft_playbook.verilog import sandbox
from sft_playbook.verilog.sandbox import compile_check, iverilog_available

F = Path(__file__).parent / "fixtures" / "verilog_eval"
needs_iverilog = pytest.mark.skipif(not iverilog_available(), reason="Icarus Verilog not installed")

AND = "module and_gate(input a, input b, output y); assign y = a & b; endmodule\n"
# lone surrogates in a comment (harmless), in a string, and in the code itself (not Verilog)
SURROGATE_CASES = {
    "comment": ("module and_gate(input a, input b, output y); assign y = a & b; /* \ud800 */ endmodule\n", "pass"),
    "line_comment": ("module and_gate(input a, input b, output y); // caf\udcff\nassign y = a & b; endmodule\n", "pass"),
    "in_code": ("module and_gate(input a, input b, output y); assign y = a \udfff b; endmodule\n", "compile_error"),
}


@needs_iverilog
@pytest.mark.parametrize("name", sorted(SURROGATE_CASES))
def test_compile_check_takes_lone_surrogates(name):
    code, expect = SURROGATE_CASES[name]
    res = compile_check(code)            # curation's compile filter goes through this
    assert res.ok == (expect == "pass"), res


@needs_iverilog
def test_predictions_with_lone_surrogates_are_judged_and_written(tmp_path):
    rows = [{"id": n, "input": "and", "reference": AND, "prediction": f"```verilog\n{c}```"}
            for n, (c, _) in sorted(SURROGATE_CASES.items())]
    pred = tmp_path / "p.jsonl"
    pred.write_text(jsonl_text(rows), encoding="utf-8")     # \ud800 escapes in JSON
    out = tmp_path / "out"
    assert evaluate_main(["predictions", f"predictions.file={pred}", f"out_dir={out}", "predictions.cycles=20"]) == 0
    got = {r["id"]: r for r in map(json.loads, (out / "verilog_results.jsonl").read_text(encoding="utf-8").splitlines())}
    assert {k: got[k]["status"] for k in got} == {n: e for n, (_, e) in SURROGATE_CASES.items()}
    assert got["comment"]["code"] == SURROGATE_CASES["comment"][0]   # written as it came, read back the same


@needs_iverilog
def test_verilogeval_with_lone_surrogates_runs_to_the_end(tmp_path):
    good = "module TopModule(input [7:0] a, input [7:0] b, input sel, output [7:0] out);\n assign out = sel ? b : a; /* \ud800 */\nendmodule"
    answers = tmp_path / "answers.jsonl"
    answers.write_text(jsonl_text([{"problem": "Prob902_mux2", "answer": f"[BEGIN]\n{good}\n[DONE]"},
                                   {"problem": "Prob901_counter4", "answer": "[BEGIN]\nmodule TopModule(\udc80); endmodule\n[DONE]"}]),
                       encoding="utf-8")
    rc = evaluate_main(["verilogeval", f"verilogeval.problems_dir={F / 'problems'}", f"verilogeval.answers={answers}",
                        f"out_dir={tmp_path / 'o'}"])
    assert rc == 0
    samples = [json.loads(x) for x in (tmp_path / "o" / "verilogeval_samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {s["problem"]: s["status"] for s in samples} == {"Prob902_mux2": "pass", "Prob901_counter4": "compile_error"}


def test_json_writers_escape_lone_surrogates(tmp_path):
    from sft_playbook.io import write_json_atomic, write_jsonl_atomic
    rows = [{"a": "x\ud800y"}, {"b": ["\udfff", "é\\ud800"]}, {"c": "plain"}]
    write_jsonl_atomic(tmp_path / "r.jsonl", rows)
    raw = (tmp_path / "r.jsonl").read_bytes()
    raw.decode("utf-8")                                  # valid UTF-8
    assert [json.loads(x) for x in raw.decode().splitlines()] == rows
    write_json_atomic(tmp_path / "r.json", {"rows": rows})
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8")) == {"rows": rows}


@pytest.mark.parametrize("how", ["env", "call"])
def test_rlimits_only_asked_for_warns_once(monkeypatch, caplog, how):
    if how == "env":
        monkeypatch.setenv(sandbox.ENV_VAR, "rlimits-only")
        sandbox.set_isolation(None)
    else:
        sandbox.set_isolation("rlimits-only")
    try:
        with caplog.at_level(logging.WARNING, logger=sandbox.__name__):
            assert sandbox.isolation() == "rlimits-only"
            assert sandbox.isolation() == "rlimits-only"
            sandbox.run_sandboxed(["true"])
        warned = [r for r in caplog.records if "WEAKER" in r.getMessage()]
        assert len(warned) == 1, [r.getMessage() for r in caplog.records]
    finally:
        sandbox.set_isolation(None)


def test_job_folders_left_by_a_dead_process_are_removed(monkeypatch, tmp_path):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = []
    for i in range(3):    # as a crashed evaluator leaves them: job folders of per-job user ids inside
        p = tmp_path / f"sftpb-jobs-{dead.pid}-stale{i}"
        (p / "sftpb-eval-x" / "sub").mkdir(parents=True)
        (p / "sftpb-eval-x" / "sub" / "sim").write_text("image")
        if os.geteuid() == 0:
            os.chown(p / "sftpb-eval-x", 1_555_000_000 + i, 1_555_000_000 + i)
        stale.append(p)
    alive = tmp_path / f"sftpb-jobs-{os.getppid()}-alive"    # a running process's: kept
    alive.mkdir()
    other = tmp_path / "sftpb-jobs-notapid"                   # not ours by name: kept
    other.mkdir()
    monkeypatch.setattr(sandbox, "_parents", {})
    job = sandbox.job_dir("sftpb-eval-")
    assert job.parent.parent == tmp_path and job.parent.name.startswith(f"sftpb-jobs-{os.getpid()}-")
    assert oct(job.parent.stat().st_mode & 0o777) == oct(0o711)
    assert not any(p.exists() for p in stale) and alive.is_dir() and other.is_dir()
    # a process that exits normally removes its own parent
    code = (f"import tempfile; tempfile.tempdir = {str(tmp_path)!r}\n"
            "from sft_playbook.verilog.sandbox import job_dir\nprint(job_dir('x-').parent)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert out.stdout.strip() and not Path(out.stdout.strip()).exists()


@needs_iverilog
def test_curation_compile_filter_takes_lone_surrogates():
    from sft_playbook.curate.hierarchy import check_verilog
    ok = check_verilog("module m; /* \ud800 */ endmodule\n", compile_check, ["-g2012"], (), 20, None)
    bad = check_verilog("module m; wire \ud800 ; endmodule\n", compile_check, ["-g2012"], (), 20, None)
    assert ok.status == "ok" and bad.status == "error"
