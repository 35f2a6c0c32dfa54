"""The shared set-up script. The full first-run install is exercised by .ci/run on a fresh clone;
here: the reuse path is fast and complete, and the container helper adds only what is missing."""
import subprocess
import sys
import time

from sft_playbook.paths import REPO_ROOT


def test_bootstrap_reuses_the_environment():
    t0 = time.monotonic()
    proc = subprocess.run(["bash", "-c", "source scripts/bootstrap.sh && echo PY=$PY && command -v iverilog"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    py = [l for l in proc.stdout.splitlines() if l.startswith("PY=")][0][3:]
    check = subprocess.run([py, "-c", "import sft_playbook, torch, transformers, dask, yaml; print(torch.__version__)"],
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr
    assert "set-up done" in proc.stderr
    # A second sourcing finds everything in place and installs nothing.
    proc2 = subprocess.run(["bash", "-c", "source scripts/bootstrap.sh"], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=900)
    assert proc2.returncode == 0
    assert "reused" in proc2.stderr or "already prepared" in proc2.stderr
    assert "installing" not in proc2.stderr
    assert time.monotonic() - t0 < 900


def test_missing_deps_lists_only_what_is_not_installed(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = [\n    "pyyaml>=6",\n    "surely-not-installed-pkg-xyz>=1",\n]\n'
        '[project.optional-dependencies]\nextra1 = ["another-missing-abc==2.0"]\n')
    out = subprocess.run([sys.executable, str(REPO_ROOT / "scripts/missing_deps.py"), str(tmp_path / "pyproject.toml"), "extra1"],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    assert "surely-not-installed-pkg-xyz>=1" in out
    assert "another-missing-abc==2.0" in out
    assert not any(line.startswith("pyyaml") for line in out)


def test_scripts_fail_clearly_without_python(tmp_path):
    """With no usable interpreter and no venv, set-up stops with a message, not a traceback."""
    env = {"PATH": "/usr/bin:/bin", "SFT_PLAYBOOK_VENV": str(tmp_path / "venv"),
           "SFT_PLAYBOOK_PYTHON": str(tmp_path / "no-python-here"), "HOME": str(tmp_path), "SFT_PLAYBOOK_NO_APT": "1"}
    proc = subprocess.run(["bash", "-c", "source scripts/bootstrap.sh"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "set-up failed" in proc.stderr
    assert "no Python 3.10-3.12 found" in proc.stderr
