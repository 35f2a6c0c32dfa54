"""The sandbox features the evaluation relies on: limits through prlimit or the preexec fallback,
reading back the end of long output, and a clean environment for iverilog runs."""
import pytest

from sft_playbook.verilog import sandbox
from sft_playbook.verilog.sandbox import run_sandboxed


@pytest.mark.parametrize("use_prlimit", [True, False])
def test_cpu_and_file_size_limits_apply(monkeypatch, use_prlimit):
    if not use_prlimit:
        monkeypatch.setattr(sandbox, "_prlimit", lambda: None)
    elif sandbox._prlimit() is None:
        pytest.fail("prlimit (util-linux) is expected on Debian/Ubuntu")
    cpu = run_sandboxed(["bash", "-c", "while :; do :; done"], cpu_s=1, timeout_s=20)
    assert not cpu.timed_out and cpu.returncode in (-24, -9, 152), cpu  # SIGXCPU (or SIGKILL at the hard limit)
    big = run_sandboxed(["bash", "-c", "exec yes xxxxxxxxxxxxxxxx > big.txt"], file_bytes=100_000, timeout_s=20)
    assert big.returncode == -25 and big.truncated and not big.timed_out  # SIGXFSZ


def test_output_tail_reads_the_end():
    res = run_sandboxed(["bash", "-c", "for i in $(seq 1 20000); do echo line$i; done; echo VERDICT"],
                        output_cap=1000, output_tail=True)
    assert res.truncated and res.stdout.rstrip().endswith("VERDICT") and len(res.stdout) <= 1000
    head = run_sandboxed(["bash", "-c", "for i in $(seq 1 20000); do echo line$i; done"], output_cap=1000)
    assert head.stdout.startswith("line1\n") and head.truncated


def test_timeout_in_threads_never_hangs():
    from sft_playbook.evaluate.parallel import parallel_map
    res = parallel_map(lambda _: run_sandboxed(["sleep", "30"], timeout_s=0.5), range(4), workers=4, progress=False)
    assert all(r.timed_out and r.seconds < 5 for r in res)
