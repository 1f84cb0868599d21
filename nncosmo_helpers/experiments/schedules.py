"""Every momentum schedule against its FLRW field equation (chapter "Optimisers as cosmologies").

A homogeneous network trained with one of the optax transformations of
:mod:`~nncosmo_helpers.optimizers` is compared with the continuum equation
f'' + 3H(t) f' + alpha L'(f) = 0 of its expansion history (:func:`~nncosmo_helpers.dynamics.predict_hubble`):
:func:`duality_check` for one schedule, :func:`nesterov_convergence` for Nesterov's method against the
coasting universe as eta -> 0, and :func:`friedmann_history` for the self-consistent optimiser.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import _validate
from ..dynamics import predict_hubble
from ..ntk import alpha as ntk_alpha
from ..optimizers import de_sitter_momentum, friedmann_momentum, nesterov_momentum, power_law_momentum
from ..train import train_optax, train_optax_batch


class Schedule(NamedTuple):
    """An optimiser together with the expansion history it is dual to.

    ``factory(eta=..., **fixed)`` is the optax transformation; ``kind`` and ``predict`` are the
    arguments of :func:`predict_hubble` that give its continuum limit.
    """

    name: str
    factory: Callable
    fixed: tuple = ()
    kind: str = "de_sitter"
    predict: tuple = ()

    def hyperparams(self, eta):
        return {"eta": eta, **dict(self.fixed)}


def cosmology_schedules(beta=0.5):
    """de Sitter (constant momentum ``beta``), the four power laws, Nesterov and the Friedmann optimiser."""
    power = lambda name, p: Schedule(name, power_law_momentum, (("p", p),), "power_law", (("p", p),))
    return (
        Schedule(f"de Sitter, beta={beta:g}", de_sitter_momentum, (("beta", beta),), "de_sitter", (("beta", beta),)),
        power("coasting, p=1", 1.0),
        power("matter, p=2/3", 2.0 / 3.0),
        power("radiation, p=1/2", 0.5),
        power("kinetic, p=1/3", 1.0 / 3.0),
        Schedule("Nesterov (k-1)/(k+2)", nesterov_momentum, (), "power_law", (("p", 1.0),)),
        Schedule("Friedmann, V0=0", friedmann_momentum, (("v0", 0.0),), "friedmann", (("v0", 0.0),)),
    )


def duality_check(apply_fn, params, x, schedule: Schedule, *, eta, loss, steps, record_every=10):
    """Train a homogeneous network with ``schedule`` and compare with its FLRW field equation.

    The prediction solves f'' + 3H(t) f' + alpha L'(f) = 0 (:func:`predict_hubble`) with alpha the
    empirical NTK at initialisation, as in the paper's Fig. 3. Returns a dict with the recorded
    ``steps``, network outputs ``f``, prediction ``pred``, the end-point ``deviation``
    (pred - f at the last step), ``span`` = |f_end - f_init|, ``alpha`` (initial) and ``dalpha``
    = alpha(t_max) - alpha(0). ``drift_effect`` is the end-point change of the prediction when alpha
    is replaced by its mid-training estimate alpha(0) + dalpha/2 (the deviation a linear drift of the
    kernel would cause), and ``deviation_mid`` the deviation left with that alpha.
    """
    _validate.require_float64()
    res = train_optax(apply_fn, params, x, optimizer=schedule.factory, hyperparams=schedule.hyperparams(eta),
                               loss=loss, steps=steps, record_every=record_every)
    f = np.asarray(res.f[:, 0])
    alpha0 = float(res.alpha_initial)
    if res.diverged:
        return {"steps": res.steps, "f": f, "pred": np.full_like(f, np.nan), "deviation": np.nan, "span": np.nan,
                "alpha": alpha0, "dalpha": np.nan, "drift_effect": np.nan, "deviation_mid": np.nan}
    predict = lambda a: np.asarray(predict_hubble(a, f[0], eta=eta, loss=loss, steps=res.steps, kind=schedule.kind,
                                                  **dict(schedule.predict)))
    pred = predict(alpha0)
    dalpha = float(res.alpha_final - alpha0)
    # the same equation with alpha at the mean of its initial and final values (a linear drift)
    pred_mid = predict(alpha0 + 0.5 * dalpha)
    return {"steps": res.steps, "f": f, "pred": pred, "deviation": float(pred[-1] - f[-1]), "span": float(abs(f[-1] - f[0])),
            "alpha": alpha0, "dalpha": dalpha, "drift_effect": float(pred[-1] - pred_mid[-1]),
            "deviation_mid": float(pred_mid[-1] - f[-1])}


def nesterov_convergence(apply_fn, params, x, *, loss, ns=(4, 8, 16, 32, 64), T=16):
    """Nesterov's (k-1)/(k+2) method versus the coasting (p = 1) heavy-ball schedule as eta -> 0.

    Uses eta = 1/n^2 for n in ``ns`` so that the continuum times t = 0, 1, ..., T fall on steps
    k n. All runs share one compiled, vmapped training loop of T max(ns) steps. Returns a dict with
    ``eta``, ``t`` (0..T) and, per eta, the maxima over t of

    * ``nesterov_vs_coasting``: |Nesterov - power_law_momentum(p=1, t0=0)| (clipped big bang),
    * ``nesterov_vs_same_beta``: |Nesterov - power_law_momentum(p=1, t0=2 sqrt(eta))|, the heavy ball
      with Nesterov's exact momentum sequence (the difference is then only the look-ahead gradient),
    * ``nesterov_vs_ode`` and ``coasting_vs_ode``: distance to f'' + (3/t) f' + alpha L'(f) = 0 with
      alpha frozen at initialisation,

    and the outputs ``f`` (optimiser -> (len(ns), T + 1)) and the prediction ``pred`` at the finest eta.
    """
    ns = np.asarray(ns, dtype=int)
    eta = 1.0 / ns.astype(float) ** 2
    steps = int(T * ns.max())
    B = len(ns)
    batch = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (B,) + a.shape), params)
    runs = {
        "nesterov": (nesterov_momentum, {"eta": eta}),
        "coasting": (power_law_momentum, {"eta": eta, "p": np.ones(B), "t0": np.zeros(B)}),
        "same_beta": (power_law_momentum, {"eta": eta, "p": np.ones(B), "t0": 2.0 * np.sqrt(eta)}),
    }
    f = {}
    for name, (factory, hp) in runs.items():
        fs, _ = train_optax_batch(apply_fn, batch, x, optimizer=factory, hyperparams=hp, loss=loss, steps=steps)
        fs = np.asarray(fs[:, :, 0])
        f[name] = np.stack([fs[b, np.arange(T + 1) * ns[b]] for b in range(B)])
    a0 = float(ntk_alpha(apply_fn, params, x))
    t = np.arange(T + 1, dtype=float)
    pred = np.asarray(predict_hubble(a0, float(f["nesterov"][0, 0]), eta=1.0, loss=loss, steps=t, kind="power_law", p=1.0))
    mx = lambda a, b: np.max(np.abs(a - b), axis=-1)
    return {
        "eta": eta, "t": t, "f": f, "pred": pred, "alpha": a0,
        "nesterov_vs_coasting": mx(f["nesterov"], f["coasting"]),
        "nesterov_vs_same_beta": mx(f["nesterov"], f["same_beta"]),
        "nesterov_vs_ode": mx(f["nesterov"], pred[None]),
        "coasting_vs_ode": mx(f["coasting"], pred[None]),
    }


def loglog_slope(x, y):
    """Least-squares slope of log y against log x (the convergence order)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def _friedmann_run_impl(apply_fn, steps, params, x, eta, v0, loss):
    opt = friedmann_momentum(eta, v0)

    def value_fn(p):
        f = apply_fn(p, x)[:, 0]
        return loss.dataset(f), f

    def step(carry, _):
        p, s = carry
        (value, f), g = jax.value_and_grad(value_fn, has_aux=True)(p)
        updates, s = opt.update(g, s, p, value=value)
        return (optax.apply_updates(p, updates), s), (f[0], value, s.hubble)

    _, out = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return out


_friedmann_run = jax.jit(_friedmann_run_impl, static_argnums=(0, 1))


def friedmann_history(apply_fn, params, x, *, loss, eta, v0=0.0, steps):
    """Train with :func:`friedmann_momentum` and record, per step i = 0..steps-1, the output f_i,
    the loss L_i and the Hubble rate H_i the optimiser used (3 H_i^2 = rho_i, the energy).

    Returns a dict with ``i``, ``t`` = i sqrt(eta), ``f``, ``loss``, ``hubble``, ``rho`` = 3 H^2 and
    ``beta`` = clip(1 - 3 H sqrt(eta), 0, 1).
    """
    eta = _validate.eta(eta)
    v0 = _validate.real("v0", v0, low=0.0)
    steps = _validate.integer("steps", steps, low=1)
    f, value, hubble = _friedmann_run(apply_fn, steps, params, jnp.asarray(x), jnp.float64(eta), jnp.float64(v0), loss)
    i = np.arange(steps)
    hubble = np.asarray(hubble)
    return {"i": i, "t": i * np.sqrt(eta), "f": np.asarray(f), "loss": np.asarray(value), "hubble": hubble,
            "rho": 3.0 * hubble**2, "beta": np.clip(1.0 - 3.0 * hubble * np.sqrt(eta), 0.0, 1.0)}
