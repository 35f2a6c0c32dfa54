"""A real multi-process Dask cluster: ``dask scheduler`` and two ``dask worker`` processes on
127.0.0.1 (the CLI that ``distributed`` installs), ``curate_data.py --scheduler tcp://...``, and
the outputs compared byte for byte with an ``engine=local`` run of the same config. The cluster
is always stopped (its processes, by their ids), also when the test fails."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sft_playbook.config import load_config
from sft_playbook.curate.pipeline import curate
from sft_playbook.curate.report import TIMINGS_FILES
from sft_playbook.paths import REPO_ROOT
from test_curate_scale import LEVELS_MAP

import curate_fixtures as fx

DASK = Path(sys.executable).with_name("dask")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def overrides(tmp: Path, name: str, bench: Path) -> list[str]:
    return [f"sources={tmp / 'sources.jsonl'}", f"output_dir={tmp / name / 'out'}", f"dropped_dir={tmp / name / 'dropped'}",
            f"decontaminate.benchmark_dir={bench}", "engine.partition_rows=4", "pii.backend=regex", "on_bad_line=skip"]


def run_cli(args: list[str], env: dict) -> None:
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "curate_data.py"), *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def stop(procs: list[subprocess.Popen]) -> None:
    for p in reversed(procs):                  # workers first, then the scheduler
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 15
    for p in reversed(procs):
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@contextlib.contextmanager
def named_workers(tmp: Path, env: dict, workers: dict[str, dict]):
    """``dask scheduler`` and one single-thread ``dask worker`` per name of ``workers`` on 127.0.0.1,
    each worker's environment ``env`` updated by its dict; yields (scheduler address, {name: worker
    address}) once all are up; always stops them."""
    from dask.distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                       "--no-dashboard"], env=env, cwd=tmp,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for name, extra in workers.items():
            procs.append(subprocess.Popen([str(DASK), "worker", address, "--nworkers", "1", "--nthreads", "1",
                                           "--no-dashboard", "--name", name, "--memory-limit", "1GiB"],
                                          env={**env, **extra}, cwd=tmp,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(len(workers), timeout=90)
            by_name = {info.get("name"): w for w, info in client.scheduler_info()["workers"].items()}
        yield address, by_name
    finally:
        stop(procs)


@pytest.mark.skipif(not DASK.exists(), reason=f"no dask CLI next to {sys.executable}")
def test_dask_cli_cluster_gives_the_bytes_of_a_local_run(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, _ = fx.records()                  # 14 rows with ids (jsonl, 4 shards) + 14 without (parquet, 4 row groups)
    fx.write_jsonl(tmp_path / "src" / "a.jsonl", rows)
    pq.write_table(pa.Table.from_pylist([{"code": r["code"], "description": r["description"]} for r in rows]),
                   tmp_path / "src" / "b.parquet", row_group_size=4)
    (tmp_path / "sources.jsonl").write_text(json.dumps({"name": "aw", "path": str(tmp_path / "src"), "levels": LEVELS_MAP}) + "\n")
    bench = fx.write_benchmark(tmp_path / "bench")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "DASK_LOGGING__DISTRIBUTED": "warning"}
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    logs = tmp_path / "cluster-logs"
    logs.mkdir()
    try:
        procs.append(subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                       "--no-dashboard"], env=env, cwd=tmp_path,
                                      stdout=open(logs / "scheduler.log", "w"), stderr=subprocess.STDOUT))  # noqa: SIM115
        for i in range(2):
            procs.append(subprocess.Popen([str(DASK), "worker", address, "--nworkers", "1", "--nthreads", "1",
                                           "--no-dashboard", "--name", f"w{i}", "--memory-limit", "2GiB"],
                                          env=env, cwd=tmp_path,
                                          stdout=open(logs / f"worker{i}.log", "w"), stderr=subprocess.STDOUT))  # noqa: SIM115
        from dask.distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=90)
            pids = set(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids           # two separate worker processes

        run_cli([*overrides(tmp_path, "cluster", bench), "--scheduler", address], env)
    finally:
        stop(procs)
    curate(load_config(REPO_ROOT / "configs/curate.yaml", [*overrides(tmp_path, "local", bench), "engine.engine=local"]))
    assert all(p.poll() is not None for p in procs)
    for kind in ("out", "dropped"):
        a, b = tmp_path / "local" / kind, tmp_path / "cluster" / kind
        files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
        assert len(files) >= (12 if kind == "out" else 15)
        for rel in files:
            if rel.suffix == ".png":
                continue                     # same funnel, rendered by the same matplotlib: checked below
            if rel.name in TIMINGS_FILES:
                continue                     # where the time went: differs from run to run by design
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), f"{kind}/{rel} differs"
    assert json.loads((tmp_path / "cluster/out/curation_report.json").read_text())["rows_read"] == 28
    assert (tmp_path / "local/out/curation_funnel.png").read_bytes() == (tmp_path / "cluster/out/curation_funnel.png").read_bytes()
