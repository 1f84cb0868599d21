"""The quantitative scans of the paper's section 3 (Figs. 1-5) and their results store.

Every figure is a grid of configurations (plain JSON dicts, :func:`grid`), a compute function that
turns a batch of configurations of one architecture into results (:data:`COMPUTE`), and a run through
the :class:`~nncosmo_helpers.results.ResultStore` (:func:`run`), which keeps one verified JSON file per
configuration and reuses it on rerun, in this process or on a Dask cluster (:mod:`.distributed`).

* Fig. 1 -- alpha = Theta(x0, x0) at initialisation (eq. 7), x0 = 0, over widths, initialisation
  scales, activations, depths and seeds; with the infinite-width value.
* Fig. 2 -- the learning rates for which the vacuum energy V0 = (1 - beta)^2/(3 eta) (eq. 8) dominates
  alpha L(f_init): eta < eta_max = (1 - beta)^2/(3 alpha L).
* Fig. 3 -- homogeneous networks (one input point) trained for 1000 steps with momentum GD (eq. 2),
  against the continuum prediction of eq. 7 with alpha at initialisation, in float64 and float32.
* Fig. 4 -- the largest NTK eigenvalue over N on 100 equally spaced 1-D inputs spanning 0.1 and 1
  Hubble length 3 sqrt(eta)/(1 - beta) (eq. 13), against alpha.
* Fig. 5 -- input-dependent networks on those inputs: the mean field against eq. 15 and the mode
  amplitudes (eq. 16) at the start and the end, predicted and actual (damping sign, see dynamics).

Two profiles (:mod:`nncosmo_helpers.profiles`): ``paper`` holds the paper's grids (or the documented
subsets in :data:`PAPER_SUBSETS`), ``quick`` a subset of each that keeps every figure. Results live
in ``<repo>/results/<profile>/fig<k>/`` unless ``NNCOSMO_RESULTS`` names another root
(``$NNCOSMO_RESULTS/<profile>/fig<k>/``). Command line: ``python -m nncosmo_helpers.scans --help``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .. import dynamics, network, ntk, profiles
from ..cosmology import flrw_parameters
from ..loss import PolynomialLoss
from ..results import ResultStore
from ..train import stability_ratio
from .engine import Arch, config_sharding, ntk_batched, raw_params, train_momentum_batched
from .frames import dataset, export, frame

#: Per figure: bump when a compute function changes what it stores; old results then no longer match.
#: (Fig. 5 version 2 added the mean-field comparison of Appendix B, ``mean_field``.)
SCAN_VERSIONS = {1: 1, 2: 1, 3: 1, 4: 1, 5: 2}
FIGS = (1, 2, 3, 4, 5)
STEPS = 1000

#: The loss choices of eq. 20 used throughout section 3: n in {2, 4}, f0 in {1, 10}, m in {0.01, 0.1, 0.2}.
LOSSES = tuple((m, f0, n) for n in (2, 4) for f0 in (1.0, 10.0) for m in (0.01, 0.1, 0.2))
#: (eta, beta) of footnote 5 (the paper lists (0.0278, 0.5) twice; it is used once).
ETA_BETA = ((0.1111, 0.0), (0.4444, 0.0), (0.0011, 0.5), (0.0278, 0.5), (0.1111, 0.5))
B_STDS = (0.001, 0.005, 0.01, 0.05, 0.5)
W_STDS = (1.0, 0.1)
ACTIVATIONS = ("erf", "relu")
#: Fig. 5 loss subset used for the two-hidden-layer networks of the paper profile (cost; see PAPER_SUBSETS).
FIG5_LOSSES_DEEP = ((0.1, 1.0, 2), (0.2, 10.0, 2), (0.2, 1.0, 4))

#: Where the paper profile departs from the paper's grids, and why.
PAPER_SUBSETS = {
    1: "none: the full grid, 5 seeds per configuration",
    2: "none (closed form)",
    3: "float64: the full grid of footnote 5 (1440 configurations). float32: all width-100 networks and the "
       "one-hidden-layer width-1000 networks (a float32 run cannot use the shared-W0 low-rank method, "
       "so the deeper width-1000 float32 runs would dominate the cost)",
    4: "width 10000 only with 1 and 2 hidden layers (the 5-layer width-10000 kernels on 100 points cost "
       "~10^11 flops each); one seed; eta = 0.1111, beta = 0 (the Fig. 5 optimiser)",
    5: "the 12 losses for one hidden layer; for two hidden layers the three losses FIG5_LOSSES_DEEP "
       "(a two-layer width-1000 network on 100 points costs ~6e8 flops per step)",
}


def _cfg(fig, **kw):
    return {"fig": fig, "scan_version": SCAN_VERSIONS[fig], **kw}


# ------------------------------------------------------------------------------------------------
# grids
# ------------------------------------------------------------------------------------------------
def grid(fig: int, profile: str | None = None) -> list[dict]:
    """The configurations of figure ``fig`` (1-5) in ``profile`` ("quick" or "paper")."""
    profile = profiles.get_profile(profile)
    if fig not in FIGS:
        raise ValueError(f"fig must be one of {FIGS}, got {fig!r}")
    paper = profile == "paper"
    if fig == 1:
        widths = (100, 1000, 10000) if paper else (100, 1000)
        seeds = range(5) if paper else range(3)
        return [
            _cfg(1, width=w, hidden_layers=L, activation=a, W_std=ws, b_std=bs, seed=s)
            for w in widths for L in (1, 2, 5) for s in seeds for a in ACTIVATIONS for ws in W_STDS for bs in B_STDS
        ]
    if fig == 2:
        betas = tuple(np.round(np.linspace(0.0, 0.9, 10 if paper else 4), 4))
        return [_cfg(2, m=m, f0=f0, n=n, beta=float(b)) for (m, f0, n) in LOSSES for b in betas]
    if fig == 3:
        out = []
        layers = (1, 2, 5) if paper else (1, 2)
        widths = (100, 1000) if paper else (100,)
        for dtype in ("float64", "float32"):
            for w in widths:
                for L in layers:
                    if dtype == "float32" and (w > 100 or not paper) and L > 1:
                        continue
                    for a in ACTIVATIONS:
                        for (ws, bs) in ((1.0, 0.05), (0.1, 0.05)):
                            for (eta, beta) in ETA_BETA:
                                for (m, f0, n) in LOSSES:
                                    out.append(_cfg(3, width=w, hidden_layers=L, activation=a, W_std=ws, b_std=bs,
                                                    eta=eta, beta=beta, m=m, f0=f0, n=n, seed=0, steps=STEPS,
                                                    dtype=dtype))
        return out
    if fig == 4:
        widths = (100, 1000, 10000) if paper else (100, 1000)
        return [
            _cfg(4, width=w, hidden_layers=L, activation=a, W_std=ws, b_std=bs, interval=c, eta=0.1111, beta=0.0,
                 n_points=100, seed=0)
            for w in widths for L in (1, 2, 5) if not (w > (1000 if paper else 100) and L > 2)
            for a in ACTIVATIONS for c in (0.1, 1.0) for ws in W_STDS for bs in B_STDS
        ]
    # fig 5
    out = []
    for L in ((1, 2) if paper else (1,)):
        losses = LOSSES if L == 1 else FIG5_LOSSES_DEEP
        if not paper:
            losses = ((0.2, 10.0, 2), (0.2, 1.0, 4))
        for a in ACTIVATIONS:
            for c in ((0.1, 1.0) if paper else (1.0,)):
                for (ws, bs) in ((1.0, 0.05), (0.1, 0.01)):
                    for (m, f0, n) in losses:
                        out.append(_cfg(5, width=1000, hidden_layers=L, activation=a, W_std=ws, b_std=bs, interval=c,
                                        eta=0.1111, beta=0.0, n_points=100, m=m, f0=f0, n=n, seed=0, steps=STEPS,
                                        record_every=10))
    return out


def inputs_1d(interval: float, eta: float, beta: float, n_points: int = 100) -> np.ndarray:
    """n_points equally spaced 1-D inputs on an interval of ``interval`` Hubble lengths centred at 0.

    The Hubble length is 1/H = 3 sqrt(eta)/(1 - beta) (eq. 8). Shape (n_points, 1).
    """
    length = interval * flrw_parameters(eta, beta).hubble_length
    return np.linspace(-length / 2, length / 2, n_points)[:, None]


def _loss(c) -> PolynomialLoss:
    return PolynomialLoss(c["m"], c["f0"], c["n"])


# ------------------------------------------------------------------------------------------------
# compute functions: a batch of configurations of one group -> list of JSON-able results
# ------------------------------------------------------------------------------------------------
def compute_fig1(configs):
    """alpha = Theta(0, 0) at initialisation, for configurations sharing width, depth and seed."""
    c0 = configs[0]
    params = raw_params(Arch(c0["width"], c0["hidden_layers"], "erf"), c0["seed"])
    x0 = np.zeros((1, 1))
    out = [None] * len(configs)
    for act in ACTIVATIONS:
        idx = [i for i, c in enumerate(configs) if c["activation"] == act]
        if not idx:
            continue
        arch = Arch(c0["width"], c0["hidden_layers"], act)
        k = ntk_batched(arch, params, x0, W_std=[configs[i]["W_std"] for i in idx], b_std=[configs[i]["b_std"] for i in idx])
        for j, i in enumerate(idx):
            c = configs[i]
            inf = ntk.infinite_width_ntk(x0, hidden_layers=c["hidden_layers"], activation=act, W_std=c["W_std"], b_std=c["b_std"])
            out[i] = {"alpha": float(k[j, 0, 0]), "alpha_infinite_width": float(inf[0, 0])}
    return out


def eta_max(alpha, loss: PolynomialLoss, beta, f_init=0.0):
    """Largest learning rate with V0 = (1 - beta)^2/(3 eta) >= alpha L(f_init) (eq. 8): (1-beta)^2/(3 alpha L)."""
    value = float(loss(f_init))
    return (1.0 - np.asarray(beta)) ** 2 / (3.0 * np.asarray(alpha) * value)


def compute_fig2(configs):
    """eta_max * alpha = (1 - beta)^2/(3 L(0)): the vacuum-dominated region for unit alpha."""
    return [{"L_init": float(_loss(c)(0.0)), "eta_max_times_alpha": float(eta_max(1.0, _loss(c), c["beta"]))} for c in configs]


def _chunks(n_configs, bytes_per_config, budget=512 * 2**20):
    size = max(1, int(budget // max(bytes_per_config, 1)))
    return [range(i, min(i + size, n_configs)) for i in range(0, n_configs, size)]


def _state_bytes(arch: Arch, n_points: int, method: str, rank: int = 32) -> int:
    w, L = arch.width, arch.hidden_layers
    item = 4 if arch.dtype == "float32" else 8
    dense_params = w + (L - 1) * w * w + w + (L * w + 1)  # first layer (1-D input), hidden, readout, biases
    if method == "lowrank":
        per = 2 * (dense_params - (L - 1) * w * w) + (L - 1) * (2 * rank * w + 2 * rank * rank)
    else:
        per = 2 * dense_params  # parameters and momentum trace
    return item * per + 8 * n_points * w * (L + 1) * 3  # plus activations


#: Below this width the dense method is cheaper than the low-rank one (and compiles faster).
LOWRANK_MIN_WIDTH = 256


def _train_group(configs, x, *, record_every, kernels=False, sharding=None):
    c0 = configs[0]
    arch = Arch(c0["width"], c0["hidden_layers"], c0["activation"], c0.get("dtype", "float64"))
    params = raw_params(Arch(c0["width"], c0["hidden_layers"], c0["activation"]), c0["seed"])
    if arch.dtype == "float32":
        params = network.cast(params, jnp.float32)  # the same draws, trained in float32
    method = "lowrank" if (arch.dtype == "float64" and x.shape[0] == 1 and arch.hidden_layers >= 2 and arch.width >= LOWRANK_MIN_WIDTH) else "dense"
    outs = []
    for rows in _chunks(len(configs), _state_bytes(arch, x.shape[0], method)):
        sub = [configs[i] for i in rows]
        outs.append(train_momentum_batched(
            arch, params, x, W_std=[c["W_std"] for c in sub], b_std=[c["b_std"] for c in sub],
            eta=[c["eta"] for c in sub], beta=[c["beta"] for c in sub], losses=[_loss(c) for c in sub],
            steps=c0["steps"], record_every=record_every, method=method, kernels=kernels, sharding=sharding))
    merged = {}
    for k in outs[0]:
        merged[k] = None if outs[0][k] is None else np.concatenate([o[k] for o in outs])
    return merged


@dataclasses.dataclass(frozen=True)
class _HomogeneousForce:
    """-alpha L'(f) for a loss whose exponent is chosen per configuration from ``n_values`` (eq. 7)."""

    n_values: tuple

    def __call__(self, f, args):
        alpha, m, f0, n_index = args
        d = f - f0
        first = jnp.zeros_like(f)
        for k, n in enumerate(self.n_values):
            first = jnp.where(n_index == k, 0.5 * n * m**2 * d ** (n - 1), first)
        return -alpha * first


_solve_batched = jax.jit(jax.vmap(dynamics._solve_impl, in_axes=(None, 0, 0, 0, 0)), static_argnums=0)
_iterate_batched = jax.jit(jax.vmap(dynamics._iterate_impl, in_axes=(None, 0, 0, 0, 0, 0)))
#: Batched ODE solves and iterations run in chunks of this many configurations (one compilation).
PREDICT_CHUNK = 128


def _chunked_columns(n, cols):
    """Yield (rows, padded column dict) for chunks of PREDICT_CHUNK configurations."""
    for start in range(0, n, PREDICT_CHUNK):
        rows = np.arange(start, min(start + PREDICT_CHUNK, n))
        pad = np.concatenate([rows, np.full(PREDICT_CHUNK - len(rows), rows[0])])
        yield rows, {k: v[pad] for k, v in cols.items()}


def _homogeneous_columns(alpha, f_init, eta, beta, losses):
    n_values = tuple(sorted({lo.n for lo in losses}))
    cols = {k: np.asarray(v, dtype=float).reshape(-1) for k, v in
            dict(alpha=alpha, f_init=f_init, eta=eta, beta=beta, m=[lo.m for lo in losses], f0=[lo.f0 for lo in losses]).items()}
    cols["n_index"] = np.array([n_values.index(lo.n) for lo in losses])
    return n_values, cols


def predict_homogeneous_batched(alpha, f_init, *, eta, beta, losses, steps):
    """:func:`~nncosmo_helpers.dynamics.predict_homogeneous` (eq. 7) for many configurations at once.

    The same solver (``dynamics._solve_impl``: diffrax Dopri8, rtol 1e-10), vmapped over
    configurations, with the loss exponent n selected per configuration. ``alpha``, ``f_init``,
    ``eta``, ``beta``: length C; ``losses``: C PolynomialLoss; ``steps``: shared step numbers.
    Returns (C, len(steps)).
    """
    n_values, cols = _homogeneous_columns(alpha, f_init, eta, beta, losses)
    steps = np.asarray(steps, dtype=float)
    out = np.empty((len(losses), len(steps)))
    for rows, c in _chunked_columns(len(losses), cols):
        ts = jnp.asarray(steps[None, :] * np.sqrt(c["eta"])[:, None])
        gamma = jnp.asarray((1.0 - c["beta"]) / np.sqrt(c["eta"]))
        args = tuple(jnp.asarray(c[k]) for k in ("alpha", "m", "f0", "n_index"))
        ys = _solve_batched(_HomogeneousForce(n_values), jnp.asarray(c["f_init"]), ts, gamma, args)
        out[rows] = np.asarray(ys)[: len(rows)]
    return out


def iterate_homogeneous_batched(alpha, f_init, *, eta, beta, losses, steps):
    """:func:`~nncosmo_helpers.dynamics.iterate_linearized` for one point (eq. 2 at frozen alpha), batched.

    Returns (C, len(steps)): the discrete momentum iteration in function space with the initial
    alpha, i.e. the network's training without the drift of alpha.
    """
    _, cols = _homogeneous_columns(alpha, f_init, eta, beta, losses)
    steps = np.asarray(steps).astype(int)
    gaps = jnp.asarray(np.diff(steps, prepend=0), jnp.int64)
    out = np.empty((len(losses), len(steps)))
    for n in sorted({lo.n for lo in losses}):
        idx = np.array([i for i, lo in enumerate(losses) if lo.n == n])
        for rows, c in _chunked_columns(len(idx), {k: v[idx] for k, v in cols.items()}):
            lo = PolynomialLoss.tree_unflatten(n, (jnp.asarray(c["m"]), jnp.asarray(c["f0"])))
            fs = _iterate_batched(gaps, jnp.asarray(c["alpha"])[:, None, None], jnp.asarray(c["f_init"])[:, None],
                                  jnp.asarray(c["eta"]), jnp.asarray(c["beta"]), lo)
            out[idx[rows]] = np.asarray(fs)[: len(rows), :, 0]
    return out


def _finite_rows(f, step_of_row, divergence_step):
    """Rows recorded strictly before the divergence step (all rows if none)."""
    if divergence_step < 0:
        return slice(None)
    return slice(0, int(np.searchsorted(step_of_row, divergence_step)))


FIG3_RECORD_EVERY = 10


def compute_fig3(configs, *, sharding=None):
    """Train homogeneous networks (x0 = 0) and compare with eq. 7 from alpha at initialisation."""
    x0 = np.zeros((1, 1))
    res = _train_group(configs, x0, record_every=FIG3_RECORD_EVERY, sharding=sharding)
    rows_steps = np.arange(res["f"].shape[1]) * FIG3_RECORD_EVERY
    ok = [i for i in range(len(configs)) if res["divergence_step"][i] < 0]
    kw = dict(alpha=res["alpha"][ok, 0], f_init=res["f"][ok, 0, 0], eta=[configs[i]["eta"] for i in ok],
              beta=[configs[i]["beta"] for i in ok], losses=[_loss(configs[i]) for i in ok], steps=rows_steps)
    pred = dict(zip(ok, predict_homogeneous_batched(**kw))) if ok else {}
    disc = dict(zip(ok, iterate_homogeneous_batched(**kw))) if ok else {}
    out = []
    for i, c in enumerate(configs):
        f = res["f"][i, :, 0].astype(float)
        alpha = res["alpha"][i].astype(float)
        dstep = int(res["divergence_step"][i])
        loss = _loss(c)
        r = {"alpha_initial": float(alpha[0]), "f_init": float(f[0]), "method": str(res["method"][i]),
             "stability_ratio": stability_ratio([[alpha[0]]], [f[0]], eta=c["eta"], beta=c["beta"], loss=loss),
             "vacuum_ratio": float(alpha[0] * loss(f[0]) / flrw_parameters(c["eta"], c["beta"]).vacuum_energy)}
        if dstep >= 0:
            keep = _finite_rows(f, rows_steps, dstep)
            r.update(diverged=True, divergence_step=dstep, f=f[keep].tolist(), steps=rows_steps[keep].tolist())
        else:
            r.update(diverged=False, divergence_step=None, f_end=float(f[-1]), f_pred_end=float(pred[i][-1]),
                     f_disc_end=float(disc[i][-1]), alpha_final=float(alpha[-1]), f=f.tolist(),
                     f_pred=pred[i].tolist(), alpha=alpha.tolist(), steps=rows_steps.tolist())
        out.append(r)
    return out


def compute_fig4(configs):
    """Largest NTK eigenvalue over N on the 1-D inputs of one interval, for many scales at once."""
    c0 = configs[0]
    x = inputs_1d(c0["interval"], c0["eta"], c0["beta"], c0["n_points"])
    arch = Arch(c0["width"], c0["hidden_layers"], c0["activation"])
    params = raw_params(arch, c0["seed"])
    k = ntk_batched(arch, params, x, W_std=[c["W_std"] for c in configs], b_std=[c["b_std"] for c in configs])
    out = []
    N = x.shape[0]
    for i in range(len(configs)):
        modes = dynamics.mode_decomposition(k[i])
        lam = np.asarray(modes.eigenvalues)
        out.append({"lambda1_over_N": float(lam[0] / N), "eigenvalues_over_N": (lam[:10] / N).tolist(),
                    "alpha_mean": float(k[i].mean()), "alpha_diag_mean": float(np.diag(k[i]).mean()),
                    "uniform_overlap": modes.uniform_overlap()})
    return out


def compute_fig5(configs, *, sharding=None):
    """Train input-dependent networks; compare the mean field with eq. 15 and the modes with eq. 16."""
    c0 = configs[0]
    x = inputs_1d(c0["interval"], c0["eta"], c0["beta"], c0["n_points"])
    rec = c0["record_every"]
    res = _train_group(configs, x, record_every=rec, kernels=True, sharding=sharding)
    N = x.shape[0]
    rows_steps = np.arange(res["f"].shape[1]) * rec
    out = []
    for i, c in enumerate(configs):
        f = res["f"][i].astype(float)  # (rows, N)
        k0, k1 = res["kernel_initial"][i], res["kernel_final"][i]
        modes = dynamics.mode_decomposition(k0)
        lam = np.asarray(modes.eigenvalues)
        loss = _loss(c)
        dstep = int(res["divergence_step"][i])
        r = {"lambda1_over_N": float(lam[0] / N), "eigenvalues_over_N": (lam / N).tolist(),
             "alpha_mean": float(k0.mean()), "alpha_diag_mean": float(np.diag(k0).mean()),
             "uniform_overlap": modes.uniform_overlap(), "f_init": f[0].tolist(),
             "stability_ratio": stability_ratio(k0, f[0], eta=c["eta"], beta=c["beta"], loss=loss)}
        fbar, dtil = (np.asarray(a) for a in modes.project(f if dstep < 0 else f[_finite_rows(f, rows_steps, dstep)]))
        if dstep >= 0:
            r.update(diverged=True, divergence_step=dstep, mean_actual=fbar.tolist(),
                     steps=rows_steps[: len(fbar)].tolist())
            out.append(r)
            continue
        fbar_p, dtil_p = dynamics.predict_mean_and_modes(modes, f[0], eta=c["eta"], beta=c["beta"], loss=loss, steps=rows_steps)
        lam_final = np.linalg.eigvalsh(0.5 * (k1 + k1.T))[::-1]
        r.update(diverged=False, divergence_step=None, steps=rows_steps.tolist(),
                 mean_actual=fbar.tolist(), mean_pred=np.asarray(fbar_p).tolist(), mean_plain=f.mean(axis=1).tolist(),
                 modes_actual_start=dtil[0].tolist(), modes_actual_end=dtil[-1].tolist(),
                 modes_pred_end=np.asarray(dtil_p[-1]).tolist(), f_end=f[-1].tolist(),
                 lambda1_over_N_final=float(lam_final[0] / N), alpha_mean_final=float(k1.mean()),
                 mean_field=dynamics.compare_mean_field(k0, f, rows_steps, eta=c["eta"], beta=c["beta"],
                                                        loss=loss, eq15=fbar_p).to_dict())
        out.append(r)
    return out


COMPUTE = {1: compute_fig1, 2: compute_fig2, 3: compute_fig3, 4: compute_fig4, 5: compute_fig5}


def group_key(fig: int):
    """Configurations with equal group keys are computed together (one architecture, one compile)."""
    if fig == 1:
        return lambda c: [c["width"], c["hidden_layers"], c["seed"]]
    if fig == 2:
        return lambda c: 0
    if fig == 3:
        return lambda c: [c["width"], c["hidden_layers"], c["activation"], c["seed"], c["dtype"]]
    if fig == 4:
        return lambda c: [c["width"], c["hidden_layers"], c["activation"], c["seed"], c["interval"], c["eta"], c["beta"]]
    return lambda c: [c["width"], c["hidden_layers"], c["activation"], c["seed"], c["interval"], c["eta"], c["beta"]]


# ------------------------------------------------------------------------------------------------
# running and loading
# ------------------------------------------------------------------------------------------------
def results_dir(profile: str | None = None, root: str | os.PathLike | None = None) -> Path:
    """``<root>/<profile>`` with root = ``root`` or ``$NNCOSMO_RESULTS`` or ``<repo>/results``."""
    profile = profiles.get_profile(profile)
    if root is None:
        root = os.environ.get("NNCOSMO_RESULTS") or Path(__file__).resolve().parents[2] / "results"
    return Path(root) / profile


def store(fig: int, profile: str | None = None, root=None) -> ResultStore:
    """The result store of figure ``fig`` in ``profile``."""
    return ResultStore(results_dir(profile, root) / f"fig{fig}")


def run(fig: int, profile: str | None = None, results_dir_: str | os.PathLike | None = None,
        *, progress: bool = True, configs: list[dict] | None = None, scheduler=None) -> list[dict]:
    """Compute (or reuse) every configuration of figure ``fig`` and return the results in grid order.

    Args:
        fig: 1-5. profile: "quick" or "paper" (default: ``NNCOSMO_PROFILE``).
        results_dir_: root directory (see :func:`results_dir`).
        configs: a custom list of configurations instead of ``grid(fig, profile)`` (tests).
        scheduler: ``None`` computes in this process. A Dask scheduler address (or a
            ``distributed.Client``) sends the missing groups to that cluster instead, where workers
            write them into the same store (see :mod:`nncosmo_helpers.scans.distributed`).
    """
    profile = profiles.get_profile(profile)
    configs = grid(fig, profile) if configs is None else configs
    if scheduler is not None:
        from . import distributed

        return distributed.run(fig, profile, results_dir_, scheduler=scheduler, configs=configs, progress=progress)
    sharding = config_sharding()
    compute = COMPUTE[fig]
    if fig in (3, 5) and sharding is not None:
        compute = lambda cs, _f=compute: _f(cs, sharding=sharding)
    return store(fig, profile, results_dir_).run(configs, compute, group_by=group_key(fig),
                                                  progress=progress, desc=f"fig {fig} ({profile})")


def load(fig: int, profile: str | None = None, results_dir_=None) -> list[dict] | None:
    """Stored results of the whole grid of ``fig`` in ``profile``, or ``None`` if any is missing."""
    st = store(fig, profile, results_dir_)
    out = []
    for c in grid(fig, profile):
        r = st.load(c)
        if r is None:
            return None
        out.append(r)
    return out


def compute(fig: int, configs: list[dict]) -> list[dict]:
    """Compute ``configs`` of figure ``fig`` in memory, group by group, without the store."""
    key = group_key(fig)
    groups = {}
    for i, c in enumerate(configs):
        groups.setdefault(repr(key(c)), []).append(i)
    out = [None] * len(configs)
    for idx in groups.values():
        for i, r in zip(idx, COMPUTE[fig]([configs[i] for i in idx])):
            out[i] = r
    return out


def load_or_compute(fig: int, profile: str | None = None, results_dir_=None):
    """Results of ``fig`` for the chapter: ``(configs, results, profile_used)``.

    Stored results of the requested profile are used when the whole grid is present. Otherwise the
    quick profile is loaded if stored, or computed in memory (nothing is written).
    """
    profile = profiles.get_profile(profile)
    for p in dict.fromkeys((profile, "quick")):
        res = load(fig, p, results_dir_)
        if res is not None:
            return grid(fig, p), res, p
    configs = grid(fig, "quick")
    return configs, compute(fig, configs), "quick"


def mean_field_rows(profile: str | None = None, results_dir_=None):
    """The Fig. 5 runs as Appendix B (Fig. 6) compares them: mean-field predictions against the network.

    Returns ``(rows, profile_used)`` (see :func:`load_or_compute`). Each row holds the configuration
    (``hidden_layers, activation, W_std, b_std, width, interval``), ``loss`` (a PolynomialLoss),
    ``diverged`` and ``comparison``: a :class:`~nncosmo_helpers.dynamics.MeanFieldComparison` of the
    network's mean output with eq. 7 for each homogeneous coupling (lambda_1/N, i.e. eq. 15; the mean
    NTK; the mean diagonal), eq. 15 in its own variable, and the frozen-kernel eq. 9; ``None`` for a
    diverged run.
    """
    configs, results, used = load_or_compute(5, profile, results_dir_)
    keys = ("hidden_layers", "activation", "W_std", "b_std", "width", "interval", "eta", "beta")
    rows = [{**{k: c[k] for k in keys}, "loss": _loss(c), "diverged": bool(r["diverged"]),
             "comparison": None if r["diverged"] else dynamics.MeanFieldComparison.from_dict(r["mean_field"])}
            for c, r in zip(configs, results)]
    return rows, used


# ------------------------------------------------------------------------------------------------
# summaries used by the chapter (the verdicts)
# ------------------------------------------------------------------------------------------------
def table(configs, results, *keys):
    """Columns ``keys`` (config or result fields) as numpy arrays, one entry per configuration."""
    cols = {}
    for k in keys:
        vals = [r.get(k) if k in r else c.get(k) for c, r in zip(configs, results)]
        cols[k] = np.array([np.nan if v is None else v for v in vals], dtype=object if any(isinstance(v, str) for v in vals) else float)
    return cols


def fig3_deviations(configs, results):
    """Per configuration: |f_pred_end - f_end| / |f_end - f_init| (NaN for diverged runs)."""
    dev = []
    for r in results:
        if r["diverged"]:
            dev.append(np.nan)
        else:
            move = abs(r["f_end"] - r["f_init"])
            dev.append(abs(r["f_pred_end"] - r["f_end"]) / move if move > 0 else np.nan)
    return np.array(dev)


def fig5_errors(configs, results):
    """Per non-diverged configuration: the mean-field prediction error and the mode movement.

    Returns a dict of arrays: ``mean_error`` = max_t |f_bar_pred - f_bar| / max_t |f_bar - f_bar(0)|,
    ``mean_move`` = |f_bar(end) - f_bar(0)|, ``mode_move`` = |delta(end) - delta(0)| (2-norm over
    modes), ``mode_pred_error`` = |delta_pred(end) - delta(end)|, ``mode_size`` = |delta(0)|.
    """
    out = {k: [] for k in ("mean_error", "mean_move", "mode_move", "mode_pred_error", "mode_size", "index")}
    for i, r in enumerate(results):
        if r["diverged"]:
            continue
        a, p = np.asarray(r["mean_actual"]), np.asarray(r["mean_pred"])
        move = np.max(np.abs(a - a[0]))
        d0, d1, dp = (np.asarray(r[k]) for k in ("modes_actual_start", "modes_actual_end", "modes_pred_end"))
        out["mean_error"].append(np.max(np.abs(p - a)) / move if move > 0 else np.nan)
        out["mean_move"].append(abs(a[-1] - a[0]))
        out["mode_move"].append(np.linalg.norm(d1 - d0))
        out["mode_pred_error"].append(np.linalg.norm(dp - d1))
        out["mode_size"].append(np.linalg.norm(d0))
        out["index"].append(i)
    return {k: np.asarray(v) for k, v in out.items()}


def verdict(holds: bool, yes: str = "Confirmed", no: str = "Not confirmed") -> str:
    """The word the chapter prints for a claim, decided by a measured condition."""
    return yes if bool(holds) else no


def fig3_divergence_sentence(configs, results) -> str:
    """One sentence on the diverged Fig. 3 float64 runs: how many, their stability ratios, their optimisers."""
    rows = [(c, r) for c, r in zip(configs, results) if c.get("dtype", "float64") == "float64"]
    bad = [(c, r) for c, r in rows if r["diverged"]]
    ratios = np.array([r["stability_ratio"] for _, r in rows])
    if not bad:
        return (f"none of the {len(rows)} float64 runs diverged; the largest initial stability ratio "
                f"eta L'' alpha / (2 (1 + beta)) is {ratios.max():.3g}.")
    worst_ok = max((r["stability_ratio"] for _, r in rows if not r["diverged"]), default=float("nan"))
    least_bad = min(r["stability_ratio"] for _, r in bad)
    opts = sorted({(c["eta"], c["beta"]) for c, _ in bad})
    return (f"{len(bad)} of the {len(rows)} float64 runs diverged (counted in the figure titles), all with an initial "
            f"stability ratio eta L'' alpha / (2 (1 + beta)) of at least {least_bad:.3g} (the largest ratio among the "
            f"runs that stayed finite is {worst_ok:.3g}); optimisers (eta, beta) involved: "
            f"{', '.join(f'({e:g}, {b:g})' for e, b in opts)}.")


def fig1_summary(configs, results) -> dict:
    """Numbers behind the Fig. 1 claims.

    * ``erf_gt_relu``: fraction of matched networks (same width, depth, scales, seed) with
      alpha(erf) > alpha(relu); ``erf_over_relu_median``: the median ratio.
    * ``effect_<factor>``: max - min over the factor's levels of the mean log10 alpha (averaged over
      everything else) -- how many decades a factor moves alpha, for W_std, b_std, activation,
      hidden_layers and width.
    * ``seed_spread_<width>``: median over configurations of std/mean of alpha over seeds.
    * ``inf_dev_<width>``: median |mean_seed alpha - alpha_inf| / alpha_inf.
    """
    logs = np.log10([r["alpha"] for r in results])
    out = {}
    for factor in ("W_std", "b_std", "activation", "hidden_layers", "width"):
        levels = sorted({c[factor] for c in configs}, key=str)
        means = [np.mean([v for c, v in zip(configs, logs) if c[factor] == lv]) for lv in levels]
        out[f"effect_{factor}"] = float(max(means) - min(means))
    by = {}
    for c, r in zip(configs, results):
        by[(c["width"], c["hidden_layers"], c["W_std"], c["b_std"], c["seed"], c["activation"])] = r["alpha"]
    ratios = [v / by[k[:-1] + ("relu",)] for k, v in by.items() if k[-1] == "erf" and k[:-1] + ("relu",) in by]
    out["erf_gt_relu"] = float(np.mean(np.array(ratios) > 1.0))
    out["erf_over_relu_median"] = float(np.median(ratios))
    seeds = {}
    for c, r in zip(configs, results):
        seeds.setdefault((c["width"], c["hidden_layers"], c["activation"], c["W_std"], c["b_std"]), []).append(r)
    for w in sorted({c["width"] for c in configs}):
        spread = [np.std([r["alpha"] for r in rs]) / np.mean([r["alpha"] for r in rs]) for k, rs in seeds.items() if k[0] == w]
        dev = [abs(np.mean([r["alpha"] for r in rs]) - rs[0]["alpha_infinite_width"]) / rs[0]["alpha_infinite_width"]
               for k, rs in seeds.items() if k[0] == w]
        out[f"seed_spread_{w}"] = float(np.median(spread))
        out[f"inf_dev_{w}"] = float(np.median(dev))
    out["alpha_min"], out["alpha_max"] = float(10 ** logs.min()), float(10 ** logs.max())
    out["alpha_median"] = float(10 ** np.median(logs))
    return out


def fig3_panels(configs, results) -> list[dict]:
    """Per precision (float64, float32): movement, deviation, alpha drift and divergence count."""
    panels = []
    for dtype in ("float64", "float32"):
        idx = [i for i, c in enumerate(configs) if c.get("dtype", "float64") == dtype]
        ok = [i for i in idx if not results[i]["diverged"]]
        panels.append({
            "title": dtype,
            "move": np.array([abs(results[i]["f_end"] - results[i]["f_init"]) for i in ok]),
            "deviation": np.array([abs(results[i]["f_pred_end"] - results[i]["f_end"]) for i in ok]),
            "dalpha": np.array([results[i]["alpha_final"] - results[i]["alpha_initial"] for i in ok]),
            "n_diverged": len(idx) - len(ok), "n": len(idx), "index": ok,
            "diverged_move": np.array([abs(results[i]["f"][-1] - results[i]["f_init"]) if len(results[i]["f"]) else np.nan
                                       for i in idx if results[i]["diverged"]]),
        })
    return panels


def fig3_summary(configs, results) -> dict:
    """Numbers behind the Fig. 3 claims (relative deviation = |f_pred - f_end| / |f_end - f_init|).

    ``median_<dtype>``, ``p90_<dtype>``, ``frac_below_1pct_<dtype>``, ``n_<dtype>``,
    ``diverged_<dtype>``; ``median_<dtype>_eta<eta>_beta<beta>`` per optimiser; for float64 the
    discretisation part |f_pred - f_disc| / move (eq. 2 iterated at frozen alpha against eq. 7) and the
    alpha-drift part |f_disc - f_end| / move, their medians, and the rank correlation between the
    deviation and |alpha(t_max) - alpha(0)| / alpha(0) over the configurations with a deviation above 1%.
    """
    from scipy.stats import spearmanr

    dev = fig3_deviations(configs, results)
    out = {}
    for dtype in ("float64", "float32"):
        m = np.array([c.get("dtype", "float64") == dtype for c in configs])
        d = dev[m & np.isfinite(dev)]
        out[f"n_{dtype}"] = int(m.sum())
        out[f"diverged_{dtype}"] = int(sum(results[i]["diverged"] for i in np.flatnonzero(m)))
        out[f"median_{dtype}"] = float(np.median(d)) if d.size else float("nan")
        out[f"p90_{dtype}"] = float(np.percentile(d, 90)) if d.size else float("nan")
        out[f"frac_below_1pct_{dtype}"] = float(np.mean(d < 0.01)) if d.size else float("nan")
        for (eta, beta) in ETA_BETA:
            mm = m & np.isfinite(dev) & np.array([(c["eta"], c["beta"]) == (eta, beta) for c in configs])
            out[f"median_{dtype}_eta{eta}_beta{beta}"] = float(np.median(dev[mm])) if mm.any() else float("nan")
            out[f"max_{dtype}_eta{eta}_beta{beta}"] = float(np.max(dev[mm])) if mm.any() else float("nan")
    m64 = [i for i, c in enumerate(configs) if c.get("dtype", "float64") == "float64" and np.isfinite(dev[i])]
    move = np.array([abs(results[i]["f_end"] - results[i]["f_init"]) for i in m64])
    disc = np.array([abs(results[i]["f_pred_end"] - results[i]["f_disc_end"]) for i in m64]) / move
    drift = np.array([abs(results[i]["f_disc_end"] - results[i]["f_end"]) for i in m64]) / move
    rel_da = np.array([abs(results[i]["alpha_final"] - results[i]["alpha_initial"]) / results[i]["alpha_initial"] for i in m64])
    out["median_discretisation"] = float(np.median(disc))
    out["median_alpha_drift_part"] = float(np.median(drift))
    big = dev[m64] > 0.01
    out["n_above_1pct"] = int(big.sum())
    out["frac_above_1pct_drift_dominated"] = float(np.mean(drift[big] > disc[big])) if big.any() else float("nan")
    out["spearman_dev_dalpha"] = float(spearmanr(dev[m64], rel_da).correlation) if len(m64) > 2 else float("nan")
    return out


def fig4_panels(configs4, results4, configs1, results1) -> list[dict]:
    """Per interval: lambda_1/N next to alpha (Fig. 1, seed 0, same network) for every Fig. 4 network."""
    alpha = {}
    for c, r in zip(configs1, results1):
        if c["seed"] == 0:
            alpha[(c["width"], c["hidden_layers"], c["activation"], c["W_std"], c["b_std"])] = r["alpha"]
    panels = []
    for interval in sorted({c["interval"] for c in configs4}):
        rows = [(c, r) for c, r in zip(configs4, results4) if c["interval"] == interval
                and (c["width"], c["hidden_layers"], c["activation"], c["W_std"], c["b_std"]) in alpha]
        panels.append({
            "title": f"interval = {interval:g} Hubble length",
            "interval": interval,
            "alpha": np.array([alpha[(c["width"], c["hidden_layers"], c["activation"], c["W_std"], c["b_std"])] for c, _ in rows]),
            "lambda1": np.array([r["lambda1_over_N"] for _, r in rows]),
            "lambda2": np.array([r["eigenvalues_over_N"][1] for _, r in rows]),
            "alpha_diag": np.array([r["alpha_diag_mean"] for _, r in rows]),
            "overlap": np.array([r["uniform_overlap"] for _, r in rows]),
            "W_std": [c["W_std"] for c, _ in rows], "b_std": [c["b_std"] for c, _ in rows],
            "width": [c["width"] for c, _ in rows], "activation": [c["activation"] for c, _ in rows],
        })
    return panels


def fig4_summary(panels) -> dict:
    """Per interval: median and range of (lambda_1/N)/alpha, median lambda_1/lambda_2, overlap."""
    out = {}
    for p in panels:
        key = f"{p['interval']:g}"
        ratio = p["lambda1"] / p["alpha"]
        out[f"ratio_median_{key}"] = float(np.median(ratio))
        out[f"ratio_min_{key}"] = float(ratio.min())
        out[f"ratio_max_{key}"] = float(ratio.max())
        out[f"within_factor2_{key}"] = float(np.mean((ratio > 0.5) & (ratio < 2)))
        out[f"gap_median_{key}"] = float(np.median(p["lambda1"] / p["lambda2"]))
        out[f"overlap_median_{key}"] = float(np.median(p["overlap"]))
        out[f"uniform_frac_{key}"] = float(np.mean(p["overlap"] > 0.9))
    return out


def fig5_summary(configs, results) -> dict:
    """Numbers behind the Fig. 5 claims.

    Mean-field error (max_t |f_bar_pred - f_bar| / max_t |f_bar - f_bar(0)|), split by whether the top
    eigenvector is (nearly) uniform (|v_1 . u| > 0.9); mode movement |delta(end) - delta(0)| relative
    to the mean-field movement; eigenvalue gap lambda_1/lambda_2.
    """
    e = fig5_errors(configs, results)
    idx = e["index"]
    overlap = np.array([results[i]["uniform_overlap"] for i in idx])
    uni = overlap > 0.9
    out = {"n": len(configs), "diverged": int(sum(r["diverged"] for r in results)), "n_uniform": int(uni.sum()),
           "n_nonuniform": int((~uni).sum())}
    out["mean_error_uniform_median"] = float(np.median(e["mean_error"][uni])) if uni.any() else float("nan")
    out["mean_error_uniform_max"] = float(np.max(e["mean_error"][uni])) if uni.any() else float("nan")
    out["mean_error_nonuniform_median"] = float(np.median(e["mean_error"][~uni])) if (~uni).any() else float("nan")
    ratio = e["mode_move"] / np.maximum(e["mean_move"], 1e-300)
    out["mode_over_mean_move_uniform_median"] = float(np.median(ratio[uni])) if uni.any() else float("nan")
    out["mode_over_mean_move_nonuniform_median"] = float(np.median(ratio[~uni])) if (~uni).any() else float("nan")
    rel_pred = e["mode_pred_error"] / np.maximum(e["mode_move"], 1e-300)
    out["mode_pred_error_over_move_uniform_median"] = float(np.median(rel_pred[uni])) if uni.any() else float("nan")
    gaps = np.array([results[i]["eigenvalues_over_N"][0] / results[i]["eigenvalues_over_N"][1] for i in idx])
    out["gap_median"] = float(np.median(gaps))
    out["gap_uniform_median"] = float(np.median(gaps[uni])) if uni.any() else float("nan")
    return out


def fig5_plot_data(configs, results, n_examples: int = 4) -> tuple:
    """(examples, scatter, hist) for :func:`nncosmo_helpers.plotting.scans.mean_and_modes`."""
    e = fig5_errors(configs, results)
    idx = list(e["index"])
    order = sorted(idx, key=lambda i: -abs(results[i]["mean_actual"][-1] - results[i]["mean_actual"][0]))
    half = max(1, n_examples // 2)  # the largest movers with a uniform and with a non-uniform leading mode
    picks = [i for i in order if results[i]["uniform_overlap"] > 0.9][:half]
    picks += [i for i in order if results[i]["uniform_overlap"] <= 0.9][:half]
    examples = []
    for i in dict.fromkeys(picks):
        c, r = configs[i], results[i]
        examples.append({"label": f"{c['activation']}, L={c['hidden_layers']}, $W_{{std}}$={c['W_std']:g}, "
                                  f"(m,f0,n)=({c['m']:g},{c['f0']:g},{c['n']}), " + rf"$|v_1\cdot u|$={r['uniform_overlap']:.2f}",
                         "steps": r["steps"], "actual": r["mean_actual"], "pred": r["mean_pred"]})
    overlap = np.array([results[i]["uniform_overlap"] for i in idx])
    scatter = {"move": np.maximum(e["mean_move"], 1e-16), "error": np.maximum(e["mean_error"] * np.array(
        [np.max(np.abs(np.asarray(results[i]["mean_actual"]) - results[i]["mean_actual"][0])) for i in idx]), 1e-16),
        "overlap": overlap}
    hist = {k: np.concatenate([np.abs(results[i][src]) for i in idx]) for k, src in
            (("start", "modes_actual_start"), ("end_actual", "modes_actual_end"), ("end_pred", "modes_pred_end"))}
    hist["mean"] = np.array([abs(results[i]["mean_actual"][-1]) for i in idx])
    return examples, scatter, hist


def timed_run(figs=FIGS, profile: str | None = None, results_dir_=None, progress=True, scheduler=None) -> dict:
    """Run several figures; return the wall time of each (s).

    With ``scheduler`` (see :func:`run`) all figures go to the Dask cluster together and a figure's
    time runs from the common start until its last group finished.
    """
    if scheduler is not None:  # every figure's groups at once, so no worker waits for a figure's last group
        from . import distributed

        return distributed.run_many(dict.fromkeys(figs), profile, results_dir_, scheduler=scheduler, progress=progress)[1]
    times = {}
    for fig in figs:
        t0 = time.perf_counter()
        run(fig, profile, results_dir_, progress=progress)
        times[fig] = time.perf_counter() - t0
    return times


__all__ = [
    "FIGS", "SCAN_VERSIONS", "LOSSES", "ETA_BETA", "PAPER_SUBSETS", "grid", "inputs_1d", "eta_max", "COMPUTE", "run", "load",
    "load_or_compute", "compute", "results_dir", "verdict", "fig3_divergence_sentence", "store", "mean_field_rows", "fig3_deviations", "fig5_errors",
    "table", "timed_run", "train_momentum_batched", "ntk_batched", "fig1_summary", "fig3_panels", "fig3_summary",
    "fig4_panels", "fig4_summary", "fig5_summary", "fig5_plot_data", "predict_homogeneous_batched",
    "iterate_homogeneous_batched",
]
