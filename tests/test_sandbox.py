import os

import pytest

from sft_playbook.verilog.sandbox import compile_check, iverilog_available, run_sandboxed


def test_timeout_kills_the_whole_process_group():
    res = run_sandboxed(["bash", "-c", "sleep 30 & sleep 30"], timeout_s=1.0)
    assert res.timed_out and res.returncode is None and res.seconds < 10


def test_output_is_capped_and_file_size_limited():
    res = run_sandboxed(["bash", "-c", "yes spam"], timeout_s=20, file_bytes=1_000_000, output_cap=10_000)
    assert res.truncated and not res.timed_out
    assert len(res.stdout) <= 10_000


def test_no_secrets_in_the_environment(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_should_not_leak")
    monkeypatch.setenv("WANDB_API_KEY", "wandb_should_not_leak")
    res = run_sandboxed(["env"])
    assert "should_not_leak" not in res.stdout and res.ok


def test_files_stay_in_the_temporary_folder():
    res = run_sandboxed(["bash", "-c", "pwd; cat a.txt"], {"a.txt": "hello"})
    workdir = res.stdout.splitlines()[0]
    assert "hello" in res.stdout and not os.path.exists(workdir)
    with pytest.raises(ValueError, match="escapes"):
        run_sandboxed(["true"], {"../evil.txt": "x"})


@pytest.mark.skipif(not iverilog_available(), reason="iverilog not installed (bootstrap installs it)")
def test_compile_check():
    assert compile_check("module m(input a, output y); assign y = ~a; endmodule\n").ok
    bad = compile_check("module m(input a, output y); assign y = ~a endmodule\n")
    assert not bad.ok and "syntax error" in (bad.stdout + bad.stderr)
