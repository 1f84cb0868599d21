"""The compute functions of the scans: a batch of configurations of one group -> JSON-able results.

Each ``compute_fig<k>`` takes configurations that share an architecture (one compilation; see
:func:`nncosmo_helpers.scans.group_key`) and runs them side by side through the batched engine
(:mod:`nncosmo_helpers.scans.engine`) and the batched continuum predictions of
:mod:`nncosmo_helpers.dynamics`.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .. import dynamics, network, ntk
from ..cosmology import eta_max_vacuum, flrw_parameters
from ..train import stability_ratio
from .engine import Arch, ntk_batched, raw_params, train_momentum_batched
from .grids import ACTIVATIONS, _loss

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


def compute_fig2(configs):
    """eta_max * alpha = (1 - beta)^2/(3 L(0)): the vacuum-dominated region for unit alpha."""
    return [{"L_init": float(_loss(c)(0.0)), "eta_max_times_alpha": float(eta_max_vacuum(1.0, _loss(c), 0.0, beta=c["beta"]))}
            for c in configs]


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


def _finite_rows(f, step_of_row, divergence_step):
    """Rows recorded strictly before the divergence step (all rows if none)."""
    if divergence_step < 0:
        return slice(None)
    return slice(0, int(np.searchsorted(step_of_row, divergence_step)))


FIG3_RECORD_EVERY = 10


def compute_fig3(configs, *, sharding=None):
    """Train homogeneous networks at one input point x0 and compare with eq. 7 from alpha at initialisation.

    ``x0`` (default 0) is the configuration's input point; configurations of one group with different
    x0 are trained as separate batches. Each record holds ``fraction_travelled``
    (:func:`~nncosmo_helpers.dynamics.fraction_travelled`; ``None`` for a diverged run: the store
    rejects NaN). ``f_disc_end`` is ``None`` when the frozen-alpha iteration of eq. 2 overflows although
    the network (whose alpha and L'' change) stayed finite. ``method`` is the engine's representation
    the network ended with (``"lowrank"``, ``"lowrank4"``, ``"dense"``; see
    :func:`~nncosmo_helpers.scans.engine.train_momentum_batched`), used from step ``method_from_step``
    on; ``basis_rank`` the largest final basis of a low-rank network (``None`` if it ended dense).
    """
    by_x0 = {}
    for i, c in enumerate(configs):
        by_x0.setdefault(float(c.get("x0", 0.0)), []).append(i)
    out = [None] * len(configs)
    for x0, idx in by_x0.items():
        for i, r in zip(idx, _compute_fig3_at([configs[i] for i in idx], np.full((1, 1), x0), sharding=sharding)):
            out[i] = r
    return out


def _finite_or_none(v):
    v = float(v)
    return v if np.isfinite(v) else None


def _compute_fig3_at(configs, x0, *, sharding=None):
    res = _train_group(configs, x0, record_every=FIG3_RECORD_EVERY, sharding=sharding)
    rows_steps = np.arange(res["f"].shape[1]) * FIG3_RECORD_EVERY
    ok = [i for i in range(len(configs)) if res["divergence_step"][i] < 0]
    # eq. 7 (continuum) and eq. 2 in function space (discrete), both at the initial alpha
    kw = dict(kernels=res["alpha"][ok, 0][:, None, None], f_inits=res["f"][ok, :1, 0], etas=[configs[i]["eta"] for i in ok],
              betas=[configs[i]["beta"] for i in ok], losses=[_loss(configs[i]) for i in ok], steps=rows_steps)
    pred = dict(zip(ok, dynamics.predict_linearized_batch(**kw)[:, :, 0])) if ok else {}
    disc = dict(zip(ok, dynamics.iterate_linearized_batch(**kw)[:, :, 0])) if ok else {}
    out = []
    for i, c in enumerate(configs):
        f = res["f"][i, :, 0].astype(float)
        alpha = res["alpha"][i].astype(float)
        dstep = int(res["divergence_step"][i])
        loss = _loss(c)
        r = {"alpha_initial": float(alpha[0]), "f_init": float(f[0]), "method": str(res["method"][i]),
             "method_from_step": int(res["method_from_step"][i]),
             "basis_rank": int(res["rank"][i].max()) if "rank" in res and res["rank"][i].max() >= 0 else None,
             "stability_ratio": stability_ratio([[alpha[0]]], [f[0]], eta=c["eta"], beta=c["beta"], loss=loss),
             "vacuum_ratio": float(alpha[0] * loss(f[0]) / flrw_parameters(c["eta"], c["beta"]).vacuum_energy)}
        if dstep >= 0:
            keep = _finite_rows(f, rows_steps, dstep)
            r.update(diverged=True, divergence_step=dstep, fraction_travelled=None, f=f[keep].tolist(),
                     steps=rows_steps[keep].tolist())
        else:
            r.update(diverged=False, divergence_step=None, f_end=float(f[-1]), f_pred_end=float(pred[i][-1]),
                     f_disc_end=_finite_or_none(disc[i][-1]), alpha_final=float(alpha[-1]),
                     fraction_travelled=_finite_or_none(dynamics.fraction_travelled(f[0], f[-1], c["f0"])), f=f.tolist(),
                     f_pred=pred[i].tolist(), alpha=alpha.tolist(), steps=rows_steps.tolist())
        out.append(r)
    return out


def _lambda_ratio(lam):
    """lambda_1/lambda_2 of a descending spectrum, the input of dynamics.leading_mode_class; ``None`` when
    lambda_2 <= 0 (numerically rank one: no degeneracy; the store admits no inf)."""
    return float(lam[0] / lam[1]) if lam[1] > 0 else None


def compute_fig4(configs):
    """Largest NTK eigenvalue over N on the 1-D inputs of one interval, for many scales at once."""
    c0 = configs[0]
    x = dynamics.centred_interval(c0["n_points"], c0["interval"], eta=c0["eta"], beta=c0["beta"])
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
                    "uniform_overlap": modes.uniform_overlap(), "lambda_ratio": _lambda_ratio(lam)})
    return out


def compute_fig5(configs, *, sharding=None):
    """Train input-dependent networks; compare the mean field with eq. 15 and the modes with eq. 16."""
    c0 = configs[0]
    x = dynamics.centred_interval(c0["n_points"], c0["interval"], eta=c0["eta"], beta=c0["beta"])
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
             "uniform_overlap": modes.uniform_overlap(), "lambda_ratio": _lambda_ratio(lam), "f_init": f[0].tolist(),
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
