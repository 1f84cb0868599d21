"""Counted work of the perturbations and background chapters' scans (``pt-*``, ``bg-*``), for ``scan_time.py``.

:data:`COUNTERS` maps a scan name to ``counter(members, rates) -> (flops, bytes, roofline s, ended)`` for
one group of stored records (``members``: ``(created, config, result)`` as ``scan_time._groups`` gives
them; ``rates.best["f64"][0]`` flop/s and ``rates.best["bw"][0]`` bytes/s). The rules are those of
``roofline.py`` (multiply + add = 2 flops, the dense architecture's matmuls, elementwise work not
counted; bytes of the float64 dense representation every one of these networks runs in), reused through
its functions, with N the number of input points:

* one training step (``train.train_momentum``, ``train_optax_batch``) = ``roofline.train_counts(width, L,
  N, 1, "float64", "dense", kernel_every_step=False, momentum=True)``: no kernel inside the loop, and
  6 words per weight because ``optax.sgd(eta, momentum=beta)`` keeps its trace even at beta = 0;
* one empirical NTK on N points (``ntk.empirical_ntk``, structured) = ``roofline.kernel_counts(width, L,
  N, 1)`` (its bytes include writing the weights once, as their initialisation does);
* one step of the frozen-kernel function-space iteration (``dynamics.iterate_linearized``) = one N x N
  matvec: 2 N^2 flops, 8 N^2 bytes (the kernel read).

The roofline time is summed phase by phase (each training run, each kernel, each iteration):
``max(flops / rate, bytes / bandwidth)`` of each, since the phases run one after the other.

Per scan (sizes from the stored config and result; a missing one is a KeyError, never a default):

* ``pt-networks`` (one network, one seed): ``len(intervals)`` kernels of N points (``network_kernels``)
  + ``steps`` training steps on N points per interval of ``train``; a ``detail`` network adds the
  initial and final kernels of its every-step run and ``steps`` iteration steps (its error budget).
* ``pt-error-budget`` (one width, every learning rate and seed): per seed and eta, ``steps[eta]`` (the
  stored grid's) training steps on N points, the initial and final kernels (``batched=False``, the
  paper profile) and ``steps[eta]`` iteration steps; ``batched=True`` (quick): every run trained for
  ``max(steps)`` steps, one initial kernel per seed.
* ``bg-runs`` (one homogeneous network, N = 1): ``steps`` training steps + the initial kernel, + the
  final one if the run did not diverge (a diverged run still runs every step of its ``lax.scan``).
* ``bg-lag``: no network work (two background ODEs per configuration): counted as zero.
* ``bg-limit``: one N = 1 kernel (``ntk.alpha``) + per factor ``steps`` training steps, its initial
  kernel and, unless the run diverged, its final one (the stored ``ntk_final``).

Not counted: the ODE solves (``odes.solve``: adaptive Dopri8 whose number of right-hand-side
evaluations is not stored; eqs. 6, 7, 9, 15/16, the lag-corrected eq. 9, the lattice field): the
backgrounds of bg-runs and all of bg-lag, the eq. 9 references of every trained pt network (an N x N
matvec per evaluation) and the detail network's two lattice solves; the N x N ``eigh`` per kernel
(~N^3 = 1e6); the forward passes outside the training loops (``f_init``, ``train_momentum``'s shape
check, divergence bound and final loss: < 0.2 % of a configuration's counted flops); parameter
initialisation; the one N = 1 kernel of each background network (the chapter's seed and the control
seeds), computed once per process and cached (``scans.background._network``; the chapter's network twice in
the paper profile's bg-runs); elementwise work (erf and its derivative, the momentum update),
which XLA counts and this rule does not (see ``tests/test_scan_counts_pt_bg.py``) and which is *not*
small for the one-hidden-layer pt networks (no width x width matmul: ~10 N width flops per step).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import roofline as rl  # noqa: E402  (also enables float64)

from nncosmo_helpers.scans import beyond  # noqa: E402

WORD = 8  # float64: every network of these scans (network.mlp's default dtype)


# ------------------------------------------------------------------------------------------------
# the three units of work
# ------------------------------------------------------------------------------------------------
def train_step(width, L, N):
    """(flops, bytes) of one full-batch step of ``train.train_momentum`` on N points (float64, optax trace)."""
    f, b, _, _ = rl.train_counts(width, L, N, 1, "float64", "dense", kernel_every_step=False, momentum=True)
    return f, b


def kernel(width, L, N):
    """(flops, bytes) of one structured empirical NTK on N points."""
    return rl.kernel_counts(width, L, N, 1)


def iteration_step(N):
    """(flops, bytes) of one step of ``dynamics.iterate_linearized``: f <- f + beta df - eta K L'(f)."""
    return 2.0 * N * N, WORD * N * N


# ------------------------------------------------------------------------------------------------
# reading the stored (encoded) results without decoding all of them
# ------------------------------------------------------------------------------------------------
def _fields(obj, cls):
    """The fields of an encoded NamedTuple of class ``cls`` (a TypeError for another class)."""
    name = obj["__namedtuple__"]
    if name.rsplit(":", 1)[-1] != cls:
        raise TypeError(f"expected an encoded {cls}, got {name}")
    return obj["fields"]


def _class(obj):
    return obj["__namedtuple__"].rsplit(":", 1)[-1]


def _shape(arr):
    return tuple(arr["shape"])


def _array(arr):
    return beyond.decode(arr)


def _network(c):
    if c.get("dtype", "float64") != "float64":
        raise ValueError(f"{c['scan']}: only float64 networks are counted, got {c['dtype']}")
    return int(c["width"]), int(c["hidden_layers"])


def _single_point(c):
    float(c["x0"])  # the background networks train on the one input x0 (a KeyError without it)
    return 1


# ------------------------------------------------------------------------------------------------
# counters, one group each
# ------------------------------------------------------------------------------------------------
def pt_networks(members, rates):
    t = rl.Tally(rates)
    ended = defaultdict(int)
    for _, c, r in members:
        width, L = _network(c)
        N, steps = int(c["n_points"]), int(c["steps"])
        v = r["value"]
        n_int, n1, n2 = _shape(_fields(v["kernels"], "NetworkKernels")["kernels"])
        if (n_int, n1, n2) != (len(c["intervals"]), N, N):
            raise ValueError(f"pt-networks: stored kernels {(n_int, n1, n2)} are not {len(c['intervals'])} x {N} x {N}")
        if len(v["trained"]) != len(c["train"]):
            raise ValueError("pt-networks: one trained network per interval of 'train' expected")
        t.add(*kernel(width, L, N), times=n_int)  # network_kernels: one NTK per interval
        t.add(*train_step(width, L, N), times=steps * len(c["train"]))
        if c["detail"]:  # the every-step run with its initial and final NTK, and its error budget
            budget = _fields(v["budget"], "ErrorBudget")
            if _shape(budget["kernel_final"]) != (N, N):
                raise ValueError("pt-networks: the detail run must carry its final kernel")
            t.add(*kernel(width, L, N), times=2)
            t.add(*iteration_step(N), times=steps * len(c["train"]))
            ended["detail"] += 1
        else:
            ended["record_every"] += 1
    return t.result(ended)


def pt_error_budget(members, rates):
    t = rl.Tally(rates)
    for _, c, r in members:
        width, L = _network(c)
        N = int(c["n_points"])
        g = _fields(r["value"], "ErrorBudgetGrid")
        steps = np.asarray(_array(g["steps"]), dtype=int)
        widths = np.asarray(_array(g["widths"]), dtype=int)
        if list(widths) != [width] or len(steps) != len(c["etas"]):
            raise ValueError(f"pt-error-budget: stored grid (widths {widths}, {len(steps)} etas) is not the config's")
        S = len(c["seeds"])
        if c["batched"]:  # every run of the width for the longest run's steps; one initial kernel per seed
            t.add(*train_step(width, L, N), times=S * len(steps) * int(steps.max()))
            t.add(*kernel(width, L, N), times=S)
        else:  # error_budget per (seed, eta): train_momentum with its initial and final kernels
            t.add(*train_step(width, L, N), times=S * int(steps.sum()))
            t.add(*kernel(width, L, N), times=2 * S * len(steps))
        t.add(*iteration_step(N), times=S * int(steps.sum()))
    return t.result()


def bg_runs(members, rates):
    t = rl.Tally(rates)
    ended = defaultdict(int)
    for _, c, r in members:
        width, L = _network(c)
        N = _single_point(c)
        cls = _class(r["value"])
        if cls == "DivergedRun":  # train_momentum raised after the loop: the initial kernel only
            kernels = 1
            ended["diverged"] += 1
        elif cls == "BackgroundComparison":
            _fields(r["value"], cls)["alpha_final"]
            kernels = 2
            ended["converged"] += 1
        else:
            raise TypeError(f"bg-runs: unexpected result {cls}")
        t.add(*train_step(width, L, N), times=int(c["steps"]))
        t.add(*kernel(width, L, N), times=kernels)
    return t.result(ended)


def bg_lag(members, rates):
    for _, c, r in members:  # network-free: the two backgrounds of eq. 6 (ODEs, not counted)
        c["epsilon"], c["relaxation_times"], r["value"]
    return 0.0, 0.0, 0.0, {}


def bg_limit(members, rates):
    t = rl.Tally(rates)
    ended = defaultdict(int)
    for _, c, r in members:
        width, L = _network(c)
        N = _single_point(c)
        runs = r["value"]["runs"]
        if len(runs) != len(c["factors"]):
            raise ValueError("bg-limit: one stored run per factor expected")
        t.add(*kernel(width, L, N))  # stability_limit_runs: alpha at initialisation
        for run in runs:
            f = _fields(run, "TrainResult")
            final = f["ntk_final"] is not None
            ended["diverged" if f["diverged"] else "converged"] += 1
            t.add(*train_step(width, L, N), times=int(c["steps"]))
            t.add(*kernel(width, L, N), times=1 + int(final))
    return t.result(ended)


COUNTERS: dict[str, Callable] = {"pt-networks": pt_networks, "pt-error-budget": pt_error_budget,
                                 "bg-runs": bg_runs, "bg-lag": bg_lag, "bg-limit": bg_limit}
