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

from .. import _validate, cosmology, train
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


class DualityCheck(NamedTuple):
    """A homogeneous network trained with one schedule next to its FLRW field equation.

    Attributes: ``schedule`` (its name), ``loss``, ``eta``, ``seed`` (the network's initialisation;
    None if the caller passed parameters), the recorded ``steps``, network outputs ``f``, prediction
    ``pred``, the end-point ``deviation`` (pred - f at the last step), ``span`` = |f_end - f_init|,
    ``alpha`` (initial) and ``dalpha`` = alpha(t_max) - alpha(0). ``drift_effect`` is the end-point
    change of the prediction when alpha is replaced by its mid-training estimate alpha(0) + dalpha/2
    (the deviation a linear drift of the kernel would cause), and ``deviation_mid`` the deviation left
    with that alpha. A diverged run has NaN in every derived field.
    """

    schedule: str
    loss: object
    eta: float
    seed: int | None
    steps: np.ndarray
    f: np.ndarray
    pred: np.ndarray
    deviation: float
    span: float
    alpha: float
    dalpha: float
    drift_effect: float
    deviation_mid: float

    @property
    def relative(self) -> float:
        """|pred - f| / |f_end - f_init| at the last step (the paper's Fig. 3 measure)."""
        return abs(self.deviation) / self.span

    @property
    def relative_mid(self) -> float:
        """The same with the mid-training alpha."""
        return abs(self.deviation_mid) / self.span

    @property
    def relative_drift(self) -> float:
        """(alpha(t_max) - alpha(0)) / alpha(0)."""
        return self.dalpha / self.alpha


def duality_check(apply_fn, params, x, schedule: Schedule, *, eta, loss, steps, record_every=10, seed=None) -> DualityCheck:
    """Train a homogeneous network with ``schedule`` and compare with its FLRW field equation.

    The prediction solves f'' + 3H(t) f' + alpha L'(f) = 0
    (:func:`~nncosmo_helpers.dynamics.predict_hubble`) with alpha the empirical NTK at
    initialisation, as in the paper's Fig. 3. Returns a :class:`DualityCheck`.
    """
    _validate.require_float64()
    res = train_optax(apply_fn, params, x, optimizer=schedule.factory, hyperparams=schedule.hyperparams(eta),
                      loss=loss, steps=steps, record_every=record_every)
    f = np.asarray(res.f[:, 0])
    alpha0 = float(res.alpha_initial)
    head = (schedule.name, loss, eta, seed, res.steps, f)
    if res.diverged:
        return DualityCheck(*head, np.full_like(f, np.nan), np.nan, np.nan, alpha0, np.nan, np.nan, np.nan)
    predict = lambda a: np.asarray(predict_hubble(a, f[0], eta=eta, loss=loss, steps=res.steps, kind=schedule.kind,
                                                  **dict(schedule.predict)))
    pred = predict(alpha0)
    dalpha = float(res.alpha_final - alpha0)
    # the same equation with alpha at the mean of its initial and final values (a linear drift)
    pred_mid = predict(alpha0 + 0.5 * dalpha)
    return DualityCheck(*head, pred, float(pred[-1] - f[-1]), float(abs(f[-1] - f[0])), alpha0, dalpha,
                        float(pred[-1] - pred_mid[-1]), float(pred_mid[-1] - f[-1]))


def duality_sweep(apply_fn, init_fn, x, schedules, *, seeds, losses, etas, steps) -> tuple:
    """:func:`duality_check` for every seed, loss, learning rate and schedule (in that nesting order).

    The network of seed s is ``init_fn(PRNGKey(s), d)``. Returns a tuple of :class:`DualityCheck`.
    """
    x = _validate.single_point("x", x)
    out = []
    for seed in seeds:
        params = init_fn(jax.random.PRNGKey(seed), int(x.shape[1]))
        for loss in losses:
            for eta in etas:
                for s in schedules:
                    out.append(duality_check(apply_fn, params, x, s, eta=eta, loss=loss, steps=steps, seed=seed))
    return tuple(out)


class DualitySummary(NamedTuple):
    """The claims of a :func:`duality_sweep` (see :func:`duality_summary`).

    ``relative``/``relative_mid``: {schedule: array of :attr:`DualityCheck.relative` (resp. with the
    mid-training alpha) over the finite runs}; ``worst``/``worst_mid``: the finite runs with the largest
    of each; ``max_drift``: the largest |dalpha|/alpha; ``small_drift``: the finite runs whose alpha
    moved by less than the given fraction; ``strong_small_drift``: the largest relative deviation
    among those, for the strongly damped schedules.
    """

    n_runs: int
    n_diverged: int
    relative: dict
    relative_mid: dict
    worst: DualityCheck
    worst_mid: DualityCheck
    max_drift: float
    small_drift: tuple
    strong_small_drift: float

    @property
    def worst_relative(self) -> float:
        return max(v.max() for v in self.relative.values())

    @property
    def worst_relative_mid(self) -> float:
        return max(v.max() for v in self.relative_mid.values())


def duality_summary(runs, *, strong, small_drift) -> DualitySummary:
    """Summarise a sweep: per-schedule relative deviations, the worst runs and the drift-limited claim.

    ``strong``: name prefixes of the strongly damped schedules; ``small_drift``: the bound on
    |alpha(t_max) - alpha(0)|/alpha(0) below which the kernel counts as frozen.
    """
    ok = [r for r in runs if np.isfinite(r.deviation)]
    names = list(dict.fromkeys(r.schedule for r in runs))
    rel = {n: np.array([r.relative for r in ok if r.schedule == n]) for n in names}
    rel_mid = {n: np.array([r.relative_mid for r in ok if r.schedule == n]) for n in names}
    small = tuple(r for r in ok if abs(r.dalpha) / r.alpha < small_drift)
    strong_small = [r.relative for r in small if r.schedule.startswith(tuple(strong))]
    return DualitySummary(
        n_runs=len(runs), n_diverged=len(runs) - len(ok), relative=rel, relative_mid=rel_mid,
        worst=max(ok, key=lambda r: r.relative), worst_mid=max(ok, key=lambda r: r.relative_mid),
        max_drift=max(abs(r.dalpha) / r.alpha for r in ok), small_drift=small,
        strong_small_drift=max(strong_small) if strong_small else float("nan"),
    )


class NesterovConvergence(NamedTuple):
    """Result of :func:`nesterov_convergence` (arrays over eta unless said otherwise)."""

    eta: np.ndarray
    t: np.ndarray  # 0..T
    f: dict  # optimiser name -> (len(eta), T + 1) outputs
    pred: np.ndarray  # the continuum solution at t
    alpha: float
    nesterov_vs_coasting: np.ndarray
    nesterov_vs_same_beta: np.ndarray
    nesterov_vs_ode: np.ndarray
    coasting_vs_ode: np.ndarray

    DISTANCES = ("nesterov_vs_coasting", "nesterov_vs_same_beta", "nesterov_vs_ode", "coasting_vs_ode")

    @property
    def slopes(self) -> dict:
        """Convergence order of every distance: the log-log slope against eta (:func:`loglog_slope`)."""
        return {k: loglog_slope(self.eta, getattr(self, k)) for k in self.DISTANCES}

    def slope_budget(self, name: str, n_sigma: float = 3.0) -> float:
        """The uncertainty of the slope of distance ``name``: ``n_sigma`` standard errors of the least-squares
        fit (:func:`loglog_slope`; needs four or more learning rates) plus the range of the local slopes
        between successive learning rates, which measures the higher orders in sqrt(eta) the grid sees."""
        x, y = np.log(self.eta), np.log(getattr(self, name))
        _, cov = np.polyfit(x, y, 1, cov=True)
        local = np.diff(y) / np.diff(x)
        return float(n_sigma * np.sqrt(cov[0, 0]) + np.ptp(local))


def nesterov_convergence(apply_fn, params, x, *, loss, ns=(4, 8, 16, 32, 64), T=16) -> NesterovConvergence:
    """Nesterov's (k-1)/(k+2) method versus the coasting (p = 1) heavy-ball schedule as eta -> 0.

    Uses eta = 1/n^2 for n in ``ns`` so that the continuum times t = 0, 1, ..., T fall on steps
    k n. All runs share one compiled, vmapped training loop of T max(ns) steps. Returns a
    :class:`NesterovConvergence` with ``eta``, ``t`` (0..T) and, per eta, the maxima over t of

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
    return NesterovConvergence(
        eta=eta, t=t, f=f, pred=pred, alpha=a0,
        nesterov_vs_coasting=mx(f["nesterov"], f["coasting"]),
        nesterov_vs_same_beta=mx(f["nesterov"], f["same_beta"]),
        nesterov_vs_ode=mx(f["nesterov"], pred[None]),
        coasting_vs_ode=mx(f["coasting"], pred[None]),
    )


def loglog_slope(x, y):
    """Least-squares slope of log y against log x (the convergence order)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def _friedmann_run_impl(apply_fn, steps, params, x, eta, v0, loss):
    """The package's loop with :func:`friedmann_momentum`; per step (f_0, loss, the Hubble rate used)."""
    opt = friedmann_momentum(eta, v0)

    def objective(p):
        f = apply_fn(p, x)[:, 0]
        return loss.dataset(f), f

    kernel = train.build_kernel(objective, opt, record=lambda s, f, v: s.opt_state.hubble)
    _, info = train.run(kernel, train.init(params, opt), steps)
    return info.f[:, 0], info.loss, info.record


_friedmann_run = jax.jit(_friedmann_run_impl, static_argnums=(0, 1))


class FriedmannHistory(NamedTuple):
    """Per step i = 0..steps-1 of :func:`friedmann_history`: t = i sqrt(eta), the output f, the loss,
    the Hubble rate H the optimiser used, rho = 3 H^2 and the momentum beta = clip(1 - 3 H sqrt(eta), 0, 1)."""

    i: np.ndarray
    t: np.ndarray
    f: np.ndarray
    loss: np.ndarray
    hubble: np.ndarray
    rho: np.ndarray
    beta: np.ndarray


def friedmann_history(apply_fn, params, x, *, loss, eta, v0=0.0, steps) -> FriedmannHistory:
    """Train with :func:`friedmann_momentum` and record, per step i = 0..steps-1, the output f_i,
    the loss L_i and the Hubble rate H_i the optimiser used (3 H_i^2 = rho_i, the energy).

    Returns a :class:`FriedmannHistory`.
    """
    eta = _validate.eta(eta)
    v0 = _validate.real("v0", v0, low=0.0)
    steps = _validate.integer("steps", steps, low=1)
    f, value, hubble = _friedmann_run(apply_fn, steps, params, jnp.asarray(x), jnp.float64(eta), jnp.float64(v0), loss)
    i = np.arange(steps)
    hubble = np.asarray(hubble)
    return FriedmannHistory(i, i * np.sqrt(eta), np.asarray(f), np.asarray(value), hubble, 3.0 * hubble**2,
                            np.asarray(cosmology.momentum_of_hubble(hubble, eta)))


def late_time_ratios(history: FriedmannHistory, p, *, window=0.5):
    """(H t / p, rho t^2 / (3 p^2)), each averaged over the last ``window`` of the run's time.

    Both tend to 1 when the energy decays like a power-law universe a ~ t^p
    (:func:`~nncosmo_helpers.cosmology.late_time_exponent`).
    """
    late = history.t > (1.0 - window) * history.t[-1]
    return (float(np.mean((history.hubble * history.t)[late]) / p),
            float(np.mean((history.rho * history.t**2)[late]) / (3 * p**2)))
