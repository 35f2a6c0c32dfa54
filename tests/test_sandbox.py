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


def test_without_bubblewrap_it_says_so_once_and_labels_the_weaker_mode(monkeypatch, caplog):
    from sft_playbook.verilog import sandbox
    monkeypatch.setattr(sandbox, "_bwrap", lambda: None)
    monkeypatch.delenv(sandbox.ENV_VAR, raising=False)
    sandbox.set_isolation(None)
    try:
        with caplog.at_level("WARNING", logger=sandbox.__name__):
            results = [run_sandboxed(["true"]) for _ in range(3)]
            assert sandbox.isolation() == sandbox.RLIMITS_ONLY
        warnings = [r for r in caplog.records if "WEAKER" in r.getMessage()]
        assert len(warnings) == 1 and "bwrap not found" in warnings[0].getMessage()
        assert all(r.ok and r.isolation == "rlimits-only" for r in results)
        monkeypatch.setenv(sandbox.ENV_VAR, "bwrap")
        sandbox.set_isolation(None)
        with pytest.raises(sandbox.SandboxUnavailable, match="bwrap not found"):
            run_sandboxed(["true"])
        monkeypatch.setenv(sandbox.ENV_VAR, "chroot")
        sandbox.set_isolation(None)
        with pytest.raises(ValueError, match="SFTPB_SANDBOX must be one of auto, bwrap, rlimits-only, got 'chroot'"):
            sandbox.isolation()
    finally:
        monkeypatch.undo()
        sandbox.set_isolation(None)


def test_outputs_survive_and_other_writes_vanish(tmp_path):
    """Under bwrap only the declared outputs (default: the -o value) come back to the job folder."""
    from sft_playbook.verilog import sandbox
    wd = tmp_path / "job"
    wd.mkdir()
    res = run_sandboxed(["sh", "-c", "echo kept > out.bin; echo lost > other.txt; echo x >> in.txt", "-o", "out.bin"],
                        {"in.txt": "input\n"}, workdir=wd)
    assert (wd / "out.bin").read_text() == "kept\n" and (wd / "in.txt").read_text() == "input\n"
    if sandbox.isolation() == sandbox.BWRAP:
        assert not (wd / "other.txt").exists() and res.returncode != 0   # in.txt is read-only
        assert sorted(p.name for p in wd.iterdir()) == ["in.txt", "out.bin"]


@pytest.mark.skipif(not iverilog_available(), reason="iverilog not installed (bootstrap installs it)")
@pytest.mark.parametrize("mode", ["bwrap", "rlimits-only"])
def test_a_killed_compile_leaves_nothing_behind(monkeypatch, tmp_path, mode):
    """iverilog writes ivrl* temporaries to $TMP/$TMPDIR and leaves them when killed: they must land
    in the job folder (removed afterwards), never in the machine's temporary folder."""
    import shutil
    import tempfile
    from sft_playbook.verilog import sandbox
    if mode == "bwrap" and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap not installed")
    sandbox.set_isolation(mode)
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(jobs))   # job folders are made here
    try:
        env = run_sandboxed(["sh", "-c", 'echo "$TMP|$TMPDIR|$TEMP"'])
        assert len(set(env.stdout.strip().split("|"))) == 1 and env.stdout.startswith(str(jobs))
        big = "module t; " + " ".join(f"wire [63:0] w{i} = {i} * 3 + w{i - 1};" if i else "wire [63:0] w0 = 1;"
                                     for i in range(40000)) + " endmodule\n"
        res = run_sandboxed(["iverilog", "-o", "sim", "t.v"], {"t.v": big}, timeout_s=0.5)
        assert res.timed_out
        left = list(jobs.iterdir())   # only this process's parent of job folders (removed at exit), empty
        assert all(p.name.startswith("sftpb-jobs-") and list(p.iterdir()) == [] for p in left), left
    finally:
        sandbox.set_isolation(None)


@pytest.mark.skipif(not iverilog_available(), reason="iverilog not installed (bootstrap installs it)")
def test_exit_status_is_the_same_with_and_without_bubblewrap():
    """iverilog exits with its error count (144 for 200 errors); bwrap's 128+N for a signal is
    turned back into -N only for signals, so both modes report the same status."""
    import shutil
    from sft_playbook.verilog import sandbox
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap not installed")
    code = "module t;\n" + "".join(f"  wire w{i} = undefined_{i};\n" for i in range(200)) + "endmodule\n"
    got = {}
    try:
        for mode in ("bwrap", "rlimits-only"):
            sandbox.set_isolation(mode)
            got[mode] = (compile_check(code).returncode,
                         run_sandboxed(["bash", "-c", "exec yes x > big.txt"], file_bytes=10_000).returncode)
    finally:
        sandbox.set_isolation(None)
    assert got["bwrap"] == got["rlimits-only"] == (144, -25)


def test_a_strict_umask_keeps_the_per_job_user_id():
    """As root, each bwrap job runs under its own user id; the files the caller gives must stay
    readable by it under a umask of 077 (else the probe would quietly fall back to root)."""
    import shutil
    from sft_playbook.verilog import sandbox
    if shutil.which("bwrap") is None or os.geteuid() != 0:
        pytest.skip("needs bubblewrap and root")
    old = os.umask(0o077)
    try:
        sandbox.set_isolation(None)
        assert sandbox.isolation() == "bwrap" and sandbox._resolved["drop_uid"]
        res = run_sandboxed(["sh", "-c", "id -u; cat sub/a.txt"], {"sub/a.txt": "xyz"})
        uid, text = res.stdout.split("\n", 1)
        assert int(uid) >= sandbox._PRIVATE_UID_RANGE[0] and text == "xyz"
    finally:
        os.umask(old)
        sandbox.set_isolation(None)
