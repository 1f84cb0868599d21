"""The scans on a Dask cluster: every group of configurations is one task, its results are written by the worker.

``python -m nncosmo_helpers.scans --scheduler tcp://HOST:8786`` (or ``NNCOSMO_SCHEDULER``), or
``scans.run(fig, scheduler=...)``, runs a figure on an existing `Dask distributed
<https://distributed.dask.org>`_ cluster instead of in this process:

* The client (this process) reads the store and submits only the configurations that are not stored
  yet: one task per architecture, holding the groups of :func:`~nncosmo_helpers.scans.group_key` that
  differ only in their seed (one compilation; the task computes the same batches the in-process run
  computes, group by group).
* A task (:func:`run_group`) runs on a worker the same in-process code as ``scans.run`` on its group: it
  takes the store's per-configuration locks, re-checks what is stored, computes the rest and writes
  each result with the store's atomic, verified write. So the **results directory must be on a file
  system that every worker sees at the same path** (a cluster's shared file system; on one machine any
  directory). The client checks this before submitting (a probe file every worker must see) and again
  after every task (it loads and verifies the task's results itself).
* Each record names the host and process id of the worker that computed it
  (:func:`nncosmo_helpers.results.provenance`).
* Faults are Dask's: a task whose worker dies is rescheduled on another worker (up to
  ``distributed.scheduler.allowed-failures`` times, default 3). Whatever the dead worker had stored
  stays stored; its group's remaining configurations are recomputed by the new task. A run that is
  interrupted altogether is resumed by running the same command again (stored results are not
  resubmitted).
* Task keys are derived from the results directory and the group's configurations, so two clients
  submitting the same group to one scheduler share one task.

Workers need the same code as the client (e.g. the project's venv on a shared file system): a
result's record carries the hash of the code that computed it, and the client does not accept
results of other code (it says so). One thread per worker (``dask worker --nthreads 1``): JAX itself
uses the cores of the process.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
import uuid
from pathlib import Path

from .. import profiles
from ..results import canonical_json

#: The environment variable the command line reads when ``--scheduler`` is not given.
SCHEDULER_ENV = "NNCOSMO_SCHEDULER"


def run_group(fig: int, profile: str, root: str, configs: list[dict]) -> dict:
    """The task a worker runs: compute and store the configurations of figure ``fig`` of one task.

    Runs :func:`nncosmo_helpers.scans.run` in the worker's process on ``configs`` (which skips what is
    stored already and writes the rest atomically into ``<root>/<profile>/fig<fig>``). Enables JAX's
    float64 first: the physics runs in float64 whatever the worker process did before.
    Returns ``{"host", "pid", "n"}`` of the worker.
    """
    import jax

    jax.config.update("jax_enable_x64", True)
    from .. import scans

    scans.run(fig, profile, root, configs=configs, progress=False)
    return {"host": socket.gethostname(), "pid": os.getpid(), "n": len(configs)}


def _client(scheduler):
    """``(client, owned)``: a Client connected to ``scheduler`` (an address or a Client)."""
    from distributed import Client

    if isinstance(scheduler, Client):
        return scheduler, False
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ValueError(f"scheduler must be a Dask scheduler address such as 'tcp://host:8786' or a "
                         f"distributed.Client, got {scheduler!r}")
    return Client(scheduler.strip(), set_as_default=False), True


def _check_shared(client, root: Path) -> None:
    """Raise unless every connected worker sees ``root`` (a probe file written here)."""
    probe = root / f".dask-probe-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}"
    probe.write_text("nncosmo results directory probe\n")
    try:
        seen = client.run(os.path.isfile, str(probe))
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    blind = sorted(w for w, ok in seen.items() if not ok)
    if blind:
        raise RuntimeError(
            f"the Dask workers {blind} do not see the results directory {root}: the workers write the results, "
            "so it must be on a file system they share with this process, at the same path (use --results)")


def _pending(fig: int, configs: list[dict], st) -> list[list[dict]]:
    """The configurations of ``configs`` not stored in ``st``, one list per task.

    A task holds the groups of :func:`~nncosmo_helpers.scans.group_key` that differ only in their
    seed: they run the same compiled programs, which a worker compiles once for all of them (the
    task computes them group by group, as the in-process run does). One task per group would make
    every worker compile every architecture: on the quick Fig. 1 grid (18 groups, 6 architectures)
    compilation is nearly all of the work.
    """
    from . import group_key

    key = group_key(fig)
    tasks: dict[str, list[dict]] = {}
    seen = set()
    for c in configs:
        k = st.key(c)
        if k in seen or st.load(c) is not None:
            continue
        seen.add(k)
        tasks.setdefault(canonical_json(key({**c, "seed": None} if "seed" in c else c)), []).append(c)
    return list(tasks.values())


def _task_key(fig: int, root: Path, group: list[dict], st) -> str:
    digest = hashlib.sha256(canonical_json([str(root), [st.key(c) for c in group]]).encode()).hexdigest()
    return f"nncosmo-fig{fig}-{digest[:20]}"


def run_many(jobs: dict, profile: str | None = None, results_dir_=None, *, scheduler, progress: bool = True):
    """Run several figures on a Dask cluster at once: ``jobs`` maps fig -> configs (``None``: the grid).

    All pending tasks of all figures are submitted together, so the workers never wait for one
    figure's last task. When everything is stored already, the scheduler is not contacted. Returns
    ``(results, times)``: per figure the results in the order of its configurations (as
    :func:`nncosmo_helpers.scans.run` returns them) and the seconds until its last task finished.
    """
    from . import grid, results_dir, store

    profile = profiles.get_profile(profile)
    root = results_dir(profile, results_dir_).resolve().parent  # absolute: the workers' cwd differs
    configs = {fig: grid(fig, profile) if cs is None else list(cs) for fig, cs in jobs.items()}
    stores = {fig: store(fig, profile, root) for fig in configs}
    t0 = time.perf_counter()
    times = {fig: 0.0 for fig in configs}
    pending = {fig: _pending(fig, configs[fig], stores[fig]) for fig in configs}
    if any(pending.values()):
        client, owned = _client(scheduler)
        try:
            _check_shared(client, root / profile)
            times.update(_submit_and_wait(client, pending, profile, root, stores, progress, t0))
        finally:
            if owned:
                client.close()
    out = {}
    for fig, cs in configs.items():
        res = [stores[fig].load(c) for c in cs]
        if any(r is None for r in res):  # pragma: no cover - every task's results were checked above
            raise RuntimeError(f"fig {fig}: {sum(r is None for r in res)} results missing after the Dask run")
        out[fig] = res
    return out, times


def _submit_and_wait(client, pending, profile, root, stores, progress, t0) -> dict:
    """Submit every task of ``pending`` (fig -> task lists) and check each one's results as it completes.

    Returns per figure the time (``time.perf_counter() - t0``) at which its last task finished.
    """
    from distributed import as_completed

    futures = {}  # future -> (fig, configurations)
    times = {}
    try:
        for fig, tasks in pending.items():
            for g in tasks:
                fut = client.submit(run_group, fig, profile, str(root), g, key=_task_key(fig, root, g, stores[fig]))
                futures[fut] = (fig, g)
        left = {fig: len(tasks) for fig, tasks in pending.items()}
        bar = _bar(sum(len(g) for tasks in pending.values() for g in tasks), progress, profile)
        try:
            for fut in as_completed(list(futures), loop=client.loop):
                fig, g = futures[fut]
                who = fut.result()  # re-raises a task's exception here
                missing = [c for c in g if stores[fig].load(c) is None]
                if missing:
                    raise RuntimeError(_missing_message(who, fig, len(g), missing, stores[fig]))
                bar.update(len(g))
                left[fig] -= 1
                if left[fig] == 0:
                    times[fig] = time.perf_counter() - t0
        finally:
            bar.close()
    except BaseException:
        client.cancel(list(futures))
        raise
    return times


def _missing_message(who, fig, n, missing, st) -> str:
    """Why results a worker reported as stored do not load here: another file system, or other code."""
    import json

    from .._codehash import package_code_hash

    where = f"a Dask worker ({who['host']}, pid {who['pid']}) computed {n} configurations of fig {fig}, but"
    path = st.path(missing[0])
    if path.exists():
        theirs = json.loads(path.read_text(encoding="utf-8")).get("code_hash")
        return (f"{where} {len(missing)} of them were computed by other code (code_hash {theirs}, here "
                f"{package_code_hash()}): the workers must run the same version of nncosmo_helpers as this process")
    return (f"{where} {len(missing)} of them are not in {st.root} as seen from here: the results directory must be on "
            "a file system shared by the workers and this process, at the same path")


def run(fig: int, profile: str | None = None, results_dir_=None, *, scheduler, configs=None, progress=True):
    """:func:`nncosmo_helpers.scans.run` of one figure on a Dask cluster (see :func:`run_many`)."""
    return run_many({fig: configs}, profile, results_dir_, scheduler=scheduler, progress=progress)[0][fig]


def _bar(total, enabled, profile):
    from ..results import _progress_bar

    return _progress_bar(total, enabled, f"dask ({profile})")


__all__ = ["SCHEDULER_ENV", "run", "run_group", "run_many"]
