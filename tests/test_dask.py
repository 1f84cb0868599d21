"""The scans on a Dask cluster (:mod:`nncosmo_helpers.scans.distributed`), on loopback.

A real scheduler and two worker processes (``dask scheduler``, ``dask worker --no-nanny --nthreads 1``)
are started as subprocesses for each test and killed at its end. The reference for every result is
the in-process run of the same configurations (``scans.run`` without a scheduler, the path the book
and the other tests use), computed once per module in this process.

* ``test_cli_on_a_cluster_stores_every_result_from_a_worker``: the issue's acceptance command,
  ``python -m nncosmo_helpers.scans --profile quick --figs 1 2 --scheduler ... --results DIR``.
* ``test_a_killed_worker_s_tasks_are_rerun_on_the_other``: one worker is killed with SIGKILL while it
  holds a task (a test preload holds every task at a gate until the kill), and Dask reruns that task
  on the surviving worker.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import jax
import pytest

# The project's own machinery, not its results: run by `make check-tooling` (and CI), not `make test`.
pytestmark = pytest.mark.tooling

from nncosmo_helpers import scans
from nncosmo_helpers.scans import distributed as D

jax.config.update("jax_enable_x64", True)  # the in-process reference runs in float64, like the workers' tasks
ROOT = Path(__file__).resolve().parents[1]
PRELOAD = Path(__file__).with_name("_dask_gate_preload.py")


def _records(directory: Path) -> dict:
    """Every stored record under ``directory`` (read as plain JSON, without the store), by file name."""
    return {p.name: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The in-process quick-profile results of Figs. 1 and 2: {fig: {file name: result}}."""
    root = tmp_path_factory.mktemp("in-process")
    out = {}
    for fig in (1, 2):
        scans.run(fig, "quick", root, progress=False)
        out[fig] = {name: rec["result"] for name, rec in _records(scans.store(fig, "quick", root).root).items()}
    return out


@contextmanager
def _cluster(tmp: Path, n_workers: int = 2, env: dict | None = None, preload: Path | None = None):
    """A Dask scheduler and ``n_workers`` worker processes on 127.0.0.1; yields (address, worker Popens)."""
    sched_file = tmp / "scheduler.json"
    env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    env.pop("NNCOSMO_SCHEDULER", None)
    logs, procs = [], []

    def start(name, args):
        log = open(tmp / f"{name}.log", "w")
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log, stderr=subprocess.STDOUT,
                                      env=env, cwd=tmp))
        return procs[-1]

    try:
        start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                            "--scheduler-file", str(sched_file)])
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            assert time.monotonic() < deadline, (tmp / "scheduler.log").read_text()
            time.sleep(0.1)
        time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        extra = ["--preload", str(preload)] if preload else []
        workers = [start(f"worker{i}", ["worker", "--scheduler-file", str(sched_file), "--no-nanny", "--nthreads", "1",
                                        "--host", "127.0.0.1", "--no-dashboard", *extra]) for i in range(n_workers)]
        from distributed import Client

        with Client(address, set_as_default=False, timeout=60) as client:
            client.wait_for_workers(n_workers, timeout=120)
            pids = set(client.run(os.getpid).values())
        assert pids == {w.pid for w in workers}  # the worker processes are the Popen processes
        yield address, workers
    finally:
        for p in reversed(procs):  # workers first, then the scheduler; all ours
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
        for log in logs:
            log.close()


def _assert_all_verified(fig, root, configs):
    """Every configuration loads through the store's verification without a warning."""
    st = scans.store(fig, "quick", root)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert all(st.load(c) is not None for c in configs)
    assert not list(st.root.glob("*.corrupt-*"))


@pytest.mark.slow
@pytest.mark.timeout(600)  # measured: 4 min (fixture included) at a load average of 16-19 on the 2 cores
def test_cli_on_a_cluster_stores_every_result_from_a_worker(tmp_path, reference):
    results = tmp_path / "results"
    with _cluster(tmp_path) as (address, workers):
        worker_pids = {w.pid for w in workers}
        cmd = [sys.executable, "-m", "nncosmo_helpers.scans", "--profile", "quick", "--figs", "1", "2",
               "--scheduler", address, "--results", str(results), "--no-progress"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=450)
        elapsed = time.perf_counter() - t0
        assert proc.returncode == 0, proc.stderr
        by_pid = {}
        for fig in (1, 2):
            recs = _records(scans.store(fig, "quick", results).root)
            assert recs.keys() == reference[fig].keys()  # every configuration, stored once
            for name, rec in recs.items():
                assert rec["result"] == reference[fig][name]  # equal to the in-process run
                assert rec["pid"] in worker_pids and rec["host"] == socket.gethostname()
                by_pid[rec["pid"]] = by_pid.get(rec["pid"], 0) + 1
            _assert_all_verified(fig, results, scans.grid(fig, "quick"))
        print(f"\n[dask CLI] {elapsed:.1f} s for figs 1-2 (408 configurations); records per worker pid: {by_pid}")

        # Nothing stored is resubmitted: with everything stored nothing is pending; after three records
        # are deleted, a rerun computes those three (on a worker) and leaves every other file untouched.
        before = {p: p.stat().st_mtime_ns for p in results.rglob("*.json")}
        st = scans.store(1, "quick", results)
        assert D._pending(1, scans.grid(1, "quick"), st) == []
        gone = sorted(st.root.glob("*.json"))[:3]
        for p in gone:
            p.unlink()
        scans.run(1, "quick", results, scheduler=address, progress=False)
        after = {p: p.stat().st_mtime_ns for p in results.rglob("*.json")}
        assert after.keys() == before.keys()
        assert sorted(p for p in after if after[p] != before[p]) == gone
        for p in gone:
            rec = json.loads(p.read_text())
            assert rec["pid"] in worker_pids
            assert rec["result"] == pytest.approx(reference[1][p.name], rel=1e-12)  # recomputed in a smaller batch


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_killed_worker_s_tasks_are_rerun_on_the_other(tmp_path, reference):
    # Fig. 1 quick, width 100, one and two hidden layers, seeds 0 and 1: two tasks (one per architecture)
    # of two groups (seeds) of 20 configurations
    configs = [c for c in scans.grid(1, "quick") if c["width"] == 100 and c["hidden_layers"] < 5 and c["seed"] < 2]
    assert len(configs) == 80
    gate = tmp_path / "gate"
    gate.mkdir()
    (gate / "closed").touch()
    results = tmp_path / "results"
    with _cluster(tmp_path, env={"NNCOSMO_TEST_GATE": str(gate)}, preload=PRELOAD) as (address, workers):
        outcome = {}

        def client_side():
            try:
                outcome["results"] = scans.run(1, "quick", results, configs=configs, scheduler=address, progress=False)
            except BaseException as exc:  # pragma: no cover - reported below
                outcome["error"] = exc

        t0 = time.perf_counter()
        thread = threading.Thread(target=client_side, daemon=True)
        thread.start()
        # wait until both workers hold a task (each has written its "started" file and waits at the gate)
        deadline = time.monotonic() + 120
        while True:
            started = [json.loads(p.read_text()) for p in sorted(gate.glob("started-*.json"))]
            if len({s["pid"] for s in started}) == 2:
                break
            assert time.monotonic() < deadline and thread.is_alive(), (started, outcome)
            time.sleep(0.05)
        victim = workers[0]
        survivor = workers[1]
        held = [s["configs"] for s in started if s["pid"] == victim.pid]
        assert len(held) == 1 and len(held[0]) == 40
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        t_kill = time.perf_counter() - t0
        (gate / "closed").unlink()  # let the survivor (and the rescheduled task) run
        thread.join(timeout=300)
        elapsed = time.perf_counter() - t0
        assert not thread.is_alive(), "the Dask run did not finish"
        assert "error" not in outcome, outcome.get("error")

    st = scans.store(1, "quick", results)
    recs = _records(st.root)
    # every configuration stored once, all verified, equal to the in-process run
    assert sorted(recs) == sorted(st.path(c).name for c in configs)
    _assert_all_verified(1, results, configs)
    for name, rec in recs.items():
        assert rec["result"] == reference[1][name]
    assert outcome["results"] == [reference[1][st.path(c).name] for c in configs]
    # the task the victim held was rerun on the survivor: its configurations were computed there
    rerun = [recs[st.path(c).name]["pid"] for c in held[0]]
    assert set(rerun) == {survivor.pid}
    assert victim.pid not in {rec["pid"] for rec in recs.values()}  # it died before storing anything
    # the rescheduled task started a second time, on the survivor
    again = [json.loads(p.read_text()) for p in gate.glob("started-*.json")]
    assert any(s["pid"] == survivor.pid and s["configs"] == held[0] for s in again)
    groups = sorted({(c["width"], c["hidden_layers"], c["seed"]) for c in held[0]})
    print(f"\n[dask fault] killed worker pid {victim.pid} at {t_kill:.1f} s while it held the task of the groups "
          f"(width, hidden_layers, seed) = {groups} (40 configurations); "
          f"Dask reran it on pid {survivor.pid}; all 80 stored once and verified, equal to the in-process run; "
          f"{elapsed:.1f} s in all")


class _BlindClient:
    """Stands for a Client whose workers do not see the client's directory."""

    def run(self, fn, *args):
        return {"tcp://10.0.0.7:4000": False, "tcp://10.0.0.8:4000": fn(*args)}


def test_results_directory_the_workers_cannot_see_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match=r"tcp://10\.0\.0\.7:4000.*do not see the results directory"):
        D._check_shared(_BlindClient(), tmp_path)
    assert list(tmp_path.iterdir()) == []  # the probe file is removed


def test_results_of_other_code_or_another_file_system_are_named(tmp_path):
    st = scans.store(2, "quick", tmp_path)
    c = scans.grid(2, "quick")[0]
    who = {"host": "node7", "pid": 4242}
    message = D._missing_message(who, 2, 5, [c], st)
    assert "node7, pid 4242" in message and "file system shared by the workers" in message
    st.save(c, {"L_init": 1.0})
    record = json.loads(st.path(c).read_text())
    record["code_hash"] = "0" * 64
    st.path(c).write_text(json.dumps(record))
    assert st.load(c) is None
    assert "computed by other code (code_hash 0000" in D._missing_message(who, 2, 5, [c], st)


def test_scheduler_must_be_an_address():
    with pytest.raises(ValueError, match="scheduler must be a Dask scheduler address"):
        D._client("")


def test_cli_reads_the_scheduler_from_the_environment(monkeypatch):
    from nncosmo_helpers.scans import __main__ as cli

    seen = {}
    monkeypatch.setenv("NNCOSMO_SCHEDULER", "tcp://127.0.0.1:1")
    monkeypatch.setattr(scans, "timed_run", lambda *a, **kw: seen.update(kw) or {2: 0.0})
    assert cli.main(["--profile", "quick", "--figs", "2", "--no-progress"]) == 0
    assert seen["scheduler"] == "tcp://127.0.0.1:1"
    monkeypatch.delenv("NNCOSMO_SCHEDULER")
    assert cli.main(["--profile", "quick", "--figs", "2", "--no-progress"]) == 0
    assert seen["scheduler"] is None  # no scheduler: in this process, as before
