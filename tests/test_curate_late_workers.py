"""A worker that joins the cluster after the run's start-up checks is checked too (review 15c #7):
a ``WorkerGuardPlugin`` runs the same checks (code, packages, tools and their versions, shared
folders) in every joining worker and reports one that fails; the driver stops the run at its next
check (after every pass, before the outputs are written), also when that worker has left since.
Real ``dask scheduler`` / ``dask worker`` processes on 127.0.0.1."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from sft_playbook.curate.engine import GUARD_TOPIC, Engine, EngineError
from sft_playbook.paths import REPO_ROOT
from test_curate_cluster import DASK, free_port, stop
from test_curate_worker_tools import bin_with

pytestmark = pytest.mark.skipif(not DASK.exists(), reason=f"no dask CLI next to {sys.executable}")


def start_worker(address: str, name: str, env: dict, procs: list) -> subprocess.Popen:
    p = subprocess.Popen([str(DASK), "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                          "--name", name, "--memory-limit", "1GiB"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(p)
    return p


def wait_for(cond, timeout=90.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.3)
    return False


@pytest.fixture()
def cluster(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "DASK_LOGGING__DISTRIBUTED": "error"}
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = [subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], env=env,
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        yield address, env, procs
    finally:
        stop(procs)


def names(engine: Engine) -> dict[str, str]:
    return {info.get("name"): w for w, info in engine.client.scheduler_info()["workers"].items()}


def test_a_late_worker_without_iverilog_stops_the_run_naming_it(tmp_path, cluster):
    address, env, procs = cluster
    start_worker(address, "first", env, procs)
    with Engine(scheduler=address, required_tools=("iverilog", "vvp"), tools_needed_by="rules.compiles") as eng:
        eng.assert_workers()                                        # the first worker is fine
        start_worker(address, "late", {**env, "PATH": str(bin_with(tmp_path))}, procs)
        assert wait_for(lambda: "late" in names(eng))
        assert wait_for(lambda: eng.client.get_events(GUARD_TOPIC)), "the guard did not report the late worker"
        late = names(eng)["late"]
        with pytest.raises(EngineError) as err:
            eng.assert_workers()
        msg = str(err.value)
        assert "\n" not in msg and f"worker {late} joined during the run and has no iverilog or vvp on its PATH" in msg
        assert names(eng)["first"] not in msg and "the run stops" in msg


def test_a_bad_worker_that_already_left_still_stops_the_run(tmp_path, cluster):
    """It joined, may have run tasks, and left before the driver's next check."""
    address, env, procs = cluster
    start_worker(address, "first", env, procs)
    old = bin_with(tmp_path, "iverilog", "vvp", version="Icarus Verilog version 9.9 (stable) ()", folder="old")
    with Engine(scheduler=address, required_tools=("iverilog", "vvp"), tools_needed_by="rules.compiles") as eng:
        w = start_worker(address, "brief", {**env, "PATH": f"{old}{os.pathsep}{env['PATH']}"}, procs)
        assert wait_for(lambda: eng.client.get_events(GUARD_TOPIC))
        stop([w])
        assert wait_for(lambda: "brief" not in names(eng))
        with pytest.raises(EngineError, match=r"joined during the run and runs iverilog 'Icarus Verilog version 9\.9"):
            eng.assert_workers()


def test_a_late_worker_that_passes_the_checks_is_welcome(tmp_path, cluster):
    address, env, procs = cluster
    start_worker(address, "first", env, procs)
    with Engine(scheduler=address, required_tools=("iverilog", "vvp"), tools_needed_by="rules.compiles") as eng:
        tokens = tmp_path / "work"
        tokens.mkdir()
        (tokens / ".curate-run-x").write_text("x-token")
        eng.guard_workers({str(tokens / ".curate-run-x"): "x-token"})
        start_worker(address, "late", env, procs)
        assert wait_for(lambda: "late" in names(eng))
        eng.assert_workers()                                       # checked directly, nothing wrong
        assert names(eng)["late"] in eng._checked
        assert eng.client.get_events(GUARD_TOPIC) == ()


def test_a_run_waits_for_its_first_worker(tmp_path, cluster, monkeypatch):
    """Started before any worker joined (a job script that starts the driver and workers together):
    it waits for one (and, after WORKER_WAIT_S, stops with one line) instead of checking nobody."""
    import threading

    from sft_playbook.curate import engine as engine_mod

    address, env, procs = cluster
    monkeypatch.setattr(engine_mod, "WORKER_WAIT_S", 3)
    with pytest.raises(EngineError, match=r"no Dask worker joined the cluster at .* within 3 s"), \
            Engine(scheduler=address):
        pass
    monkeypatch.setattr(engine_mod, "WORKER_WAIT_S", 120)
    threading.Timer(2.0, start_worker, (address, "first", env, procs)).start()
    with Engine(scheduler=address, required_tools=("iverilog", "vvp"), tools_needed_by="rules.compiles") as eng:
        assert eng.n_workers == 1 and "first" in names(eng)
        assert names(eng)["first"] in eng._checked


def test_a_refused_worker_of_one_run_does_not_stop_the_next(tmp_path, cluster):
    """The guard's events carry the run's id and its plugin goes with the run (review 15d #1, #2):
    a later run on the same long-lived scheduler, whose workers are fine, is not stopped by an
    earlier run's refused worker, nor by a worker that joined between the runs."""
    address, env, procs = cluster
    start_worker(address, "first", env, procs)
    with Engine(scheduler=address, required_tools=("iverilog", "vvp"), tools_needed_by="rules.compiles") as eng:
        eng.guard_workers({})
        bad = start_worker(address, "late", {**env, "PATH": str(bin_with(tmp_path))}, procs)
        assert wait_for(lambda: eng.client.get_events(GUARD_TOPIC))
        with pytest.raises(EngineError):
            eng.assert_workers()
        plugin = eng._guard_plugin
    stop([bad])
    work = tmp_path / "work"                            # a run with a token folder, ended: the token is gone
    work.mkdir()
    (work / ".curate-run-a").write_text("a")
    with Engine(scheduler=address) as eng:
        eng.guard_workers({str(work / ".curate-run-a"): "a"})
    (work / ".curate-run-a").unlink()
    start_worker(address, "between", env, procs)          # joins between two runs: no run's guard is there
    with Engine(scheduler=address, required_tools=("iverilog", "vvp"), tools_needed_by="rules.compiles") as eng:
        assert wait_for(lambda: "between" in names(eng) and "late" not in names(eng))
        assert plugin != eng._guard_plugin
        assert all(m.get("run") != eng._run_id for _, m in eng.client.get_events(GUARD_TOPIC))
        eng.assert_workers()                                 # not stopped by the old events
    with Engine(scheduler=address) as eng:             # every earlier run's guard is gone; this run's is there
        guards = eng.client.run_on_scheduler(lambda dask_scheduler: [n for n in dask_scheduler.worker_plugins
                                                                     if n.startswith("sft-playbook-worker-guard")])
        assert guards == [eng._guard_plugin], guards


def test_a_driver_without_icarus_takes_the_first_workers_version(tmp_path, cluster, monkeypatch):
    """On a cluster the driver never compiles: a login node without Icarus is fine (review 15d #5);
    the workers must still agree with each other."""
    address, env, procs = cluster
    start_worker(address, "a", env, procs)
    start_worker(address, "b", env, procs)
    monkeypatch.setenv("PATH", str(bin_with(tmp_path, folder="no-icarus")) + os.pathsep + "/nonexistent")
    with Engine(scheduler=address, required_tools=("iverilog", "vvp"), tools_needed_by="rules.compiles") as eng:
        assert wait_for(lambda: len(names(eng)) == 2)
        assert "Icarus" in eng._tool_reference["iverilog"]
    old = bin_with(tmp_path, "iverilog", "vvp", version="Icarus Verilog version 9.1 (stable) ()", folder="old")
    start_worker(address, "c", {**env, "PATH": f"{old}{os.pathsep}{env['PATH']}"}, procs)
    from dask.distributed import Client

    with Client(address) as c:
        c.wait_for_workers(3, timeout=90)
        by = {i.get("name"): w for w, i in c.scheduler_info()["workers"].items()}
    with pytest.raises(EngineError) as err, Engine(scheduler=address, required_tools=("iverilog", "vvp"),
                                                    tools_needed_by="rules.compiles"):
        pass
    msg = str(err.value)
    # the reference is the first worker by address; whichever disagrees with it is named
    assert "Icarus Verilog version 9.1" in msg and "'s iverilog" in msg and "vs the driver's" not in msg, msg
    assert by["c"] in msg or (by["a"] in msg and by["b"] in msg), msg
