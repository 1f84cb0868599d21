"""Optimisers as cosmologies: momentum schedules dual to FLRW expansion histories.

Eq. 2 of the paper with a step-dependent momentum beta_i,

    theta_{i+1} = theta_i + beta_i (theta_i - theta_{i-1}) - eta grad L(theta_i),

has, with t = i sqrt(eta), the continuum limit theta'' + (1 - beta_i)/sqrt(eta) theta' + grad L = 0
(the derivation of eq. 4 goes through unchanged because beta_i multiplies a first difference). The
friction is 3H(t) if

    beta_i = 1 - 3 H(t_i) sqrt(eta),    t_i = t0 + i sqrt(eta).                       (schedule)

* constant H (de Sitter, eq. 8 of the paper): constant beta, ``optax.sgd(eta, momentum=beta)``;
* power-law expansion a ~ t^p, H = p/t: beta_i = 1 - 3p/(i + t0/sqrt(eta)), independent of eta
  for t0 = 0; matter p = 2/3, radiation p = 1/2, kinetic domination p = 1/3, coasting p = 1;
* the self-consistent "Friedmann" optimiser: H from the system's own energy,
  3H^2 = |theta'|^2/2 + L + V0 (eq. 6 of the paper with the potential L + V0).

Every optimiser is an ``optax.GradientTransformation`` written in the trace form of ``optax.sgd``,
m_i = beta_i m_{i-1} + g_i and update -eta m_i, which is eq. 2 with beta_i because
theta_{i+1} - theta_i = -eta m_i. ``count`` in the states is the number of updates already applied,
so the update that produces theta_{i+1} has count i.

The module also holds the continuum predictions for a homogeneous network with these frictions
(:func:`predict_hubble`, :func:`duality_check`) and the two small benchmark tasks used to compare
optimisers (:func:`benchmark_polynomial`, :func:`benchmark_digits`). Training with any of these
transformations: :func:`nncosmo_helpers.train.train_optax`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _validate
from .loss import PolynomialLoss
from .train import train_optax, train_optax_batch

# ---------------------------------------------------------------------------------------------
# the dictionary: power-law cosmologies
# ---------------------------------------------------------------------------------------------


def equation_of_state(p):
    """w of a perfect fluid driving a ~ t^p in a flat universe: w = 2/(3p) - 1 (p > 0)."""
    p = _validate.real("p", p, low=0.0, low_open=True)
    return 2.0 / (3.0 * p) - 1.0


def power_law_exponent(w):
    """Inverse of :func:`equation_of_state`: p = 2/(3(1 + w)) for w > -1."""
    w = _validate.real("w", w, low=-1.0, low_open=True)
    return 2.0 / (3.0 * (1.0 + w))


@dataclasses.dataclass(frozen=True)
class Cosmology:
    """One row of the optimiser <-> cosmology dictionary."""

    name: str
    p: float | None  # a ~ t^p; None for de Sitter (a ~ e^{Ht})
    w: float
    schedule: str  # beta_i as a formula
    optimiser: str  # the known optimiser with this schedule, if any


#: The dictionary of this chapter: expansion history, equation of state, momentum schedule, optimiser.
COSMOLOGIES = (
    Cosmology("de Sitter (vacuum energy)", None, -1.0, r"\beta\ \text{(constant)}",
              "heavy ball = optax.sgd(eta, momentum=beta); also optax's nesterov=True"),
    Cosmology("coasting", 1.0, -1.0 / 3.0, "1 - 3/i", "Nesterov's (k-1)/(k+2) = 1 - 3/(k+2), i.e. t0 = 2 sqrt(eta)"),
    Cosmology("matter", 2.0 / 3.0, 0.0, "1 - 2/i", "none known"),
    Cosmology("radiation", 0.5, 1.0 / 3.0, "1 - 3/(2i)", "none known"),
    Cosmology("kinetic domination", 1.0 / 3.0, 1.0, "1 - 1/i", "none known"),
)


def power_law_beta(i, *, p, eta, t0=0.0):
    """beta_i = max(0, 1 - 3 p sqrt(eta)/(t0 + i sqrt(eta))) (the schedule with H = p/t).

    For t0 = 0 this is max(0, 1 - 3p/i), independent of eta; the clip at 0 acts on the first
    i <= 3p steps (where the schedule would be negative) and on i = 0, where the trace is zero anyway.
    Works on arrays and inside jit.
    """
    i = jnp.asarray(i)
    t = t0 + i * jnp.sqrt(eta)
    safe_t = jnp.where(t > 0, t, 1.0)
    beta = jnp.where(t > 0, 1.0 - 3.0 * p * jnp.sqrt(eta) / safe_t, 0.0)
    return jnp.clip(beta, 0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# optax transformations
# ---------------------------------------------------------------------------------------------
def _check(name, value, **bounds):
    """Validate a hyperparameter when it is concrete (factories are also called under jit)."""
    if isinstance(value, jax.core.Tracer):
        return value
    return _validate.real(name, np.asarray(value, dtype=float).reshape(()), **bounds)


class MomentumState(NamedTuple):
    """State of :func:`scheduled_momentum`: updates applied so far and the trace m_{i-1}."""

    count: jnp.ndarray
    trace: Any


def scheduled_momentum(learning_rate, momentum_fn: Callable) -> optax.GradientTransformation:
    """Eq. 2 with a step-dependent momentum beta_i = ``momentum_fn(i)``.

    m_i = beta_i m_{i-1} + g_i, update = -learning_rate * m_i (the arithmetic of ``optax.sgd``, so a
    constant ``momentum_fn`` reproduces ``optax.sgd(learning_rate, momentum=beta)`` bit for bit).
    """

    def init_fn(params):
        return MomentumState(jnp.zeros([], jnp.int32), jax.tree_util.tree_map(jnp.zeros_like, params))

    def update_fn(updates, state, params=None):
        del params
        beta = momentum_fn(state.count)
        trace = jax.tree_util.tree_map(lambda g, t: g + (beta * t).astype(t.dtype), updates, state.trace)
        new_updates = jax.tree_util.tree_map(lambda t: (-learning_rate * t).astype(t.dtype), trace)
        return new_updates, MomentumState(optax.safe_increment(state.count), trace)

    return optax.GradientTransformation(init_fn, update_fn)


def de_sitter_momentum(eta, beta) -> optax.GradientTransformation:
    """Constant Hubble rate 3H = (1 - beta)/sqrt(eta): eqs. 2, 4 and 8 of the paper.

    Identical to ``optax.sgd(eta, momentum=beta)`` (tested bit for bit).
    """
    _check("eta", eta, low=0.0, low_open=True)
    _check("beta", beta, low=0.0, high=1.0, high_open=True)
    return scheduled_momentum(eta, lambda i: beta)


def hubble_momentum(eta, hubble: Callable, *, t0=0.0) -> optax.GradientTransformation:
    """Momentum dual to an expansion history H(t): beta_i = clip(1 - 3 H(t_i) sqrt(eta), 0, 1).

    t_i = t0 + i sqrt(eta) is the continuum time of theta_i (below eq. 4 of the paper). ``hubble``
    maps a time array to H; it must be finite for t > 0 (t = 0 is only evaluated with a zero trace
    when t0 = 0, and its value is discarded).
    """

    def momentum_fn(i):
        t = t0 + i * jnp.sqrt(eta)
        safe_t = jnp.where(t > 0, t, 1.0)
        beta = jnp.where(t > 0, 1.0 - 3.0 * hubble(safe_t) * jnp.sqrt(eta), 0.0)
        return jnp.clip(beta, 0.0, 1.0)

    return scheduled_momentum(eta, momentum_fn)


def power_law_momentum(eta, p, *, t0=0.0) -> optax.GradientTransformation:
    """Power-law expansion a ~ t^p, H = p/t: beta_i = max(0, 1 - 3p sqrt(eta)/(t0 + i sqrt(eta))).

    p = 2/3 matter, 1/2 radiation, 1/3 kinetic domination, 1 coasting (w = 2/(3p) - 1).

    Regularisation of the big bang t -> 0 (where H diverges and beta_i < 0): with t0 = 0 the
    schedule is clipped at beta = 0, i.e. the first floor(3p) updates are plain gradient descent.
    They last a continuum time of order sqrt(eta), so the clip vanishes in the continuum limit,
    which is the singular equation f'' + (3p/t) f' + alpha L'(f) = 0 from rest at t = 0. With
    t0 > 0 the universe is instead started at age t0, which changes the continuum equation to
    H = p/(t + t0) unless t0 is itself O(sqrt(eta)) (Nesterov's schedule is t0 = 2 sqrt(eta), p = 1).
    """
    _check("eta", eta, low=0.0, low_open=True)
    _check("p", p, low=0.0, low_open=True)
    _check("t0", t0, low=0.0)
    return scheduled_momentum(eta, lambda i: power_law_beta(i, p=p, eta=eta, t0=t0))


class NesterovState(NamedTuple):
    """State of :func:`nesterov_momentum`: count = k - 1 and the velocity v = x_{k-1} - x_{k-2}."""

    count: jnp.ndarray
    velocity: Any


def nesterov_beta(k):
    """Nesterov's momentum (k - 1)/(k + 2) (Nesterov 1983; Su, Boyd & Candes 2016)."""
    k = jnp.asarray(k)
    return (k - 1.0) / (k + 2.0)


def nesterov_momentum(eta) -> optax.GradientTransformation:
    """Nesterov's accelerated gradient with the (k - 1)/(k + 2) schedule (Su, Boyd & Candes 2016).

        x_k = y_{k-1} - eta grad f(y_{k-1}),   y_k = x_k + (k - 1)/(k + 2) (x_k - x_{k-1}),   x_0 = y_0.

    The parameters handed to the loss are the look-ahead points y_k (where the gradient is taken).
    With v_k = x_k - x_{k-1}: v_k = beta_{k-1} v_{k-1} - eta g and y_k - y_{k-1} = -eta g + beta_k v_k.
    Its continuum limit (t = k sqrt(eta)) is x'' + (3/t) x' + grad f = 0, i.e. a coasting universe
    (p = 1). Not to be confused with ``optax.sgd(..., nesterov=True)``, which has a constant momentum.
    """
    _check("eta", eta, low=0.0, low_open=True)

    def init_fn(params):
        return NesterovState(jnp.zeros([], jnp.int32), jax.tree_util.tree_map(jnp.zeros_like, params))

    def update_fn(updates, state, params=None):
        del params
        k = state.count + 1
        b_prev, b_now = nesterov_beta(k - 1), nesterov_beta(k)
        v = jax.tree_util.tree_map(lambda g, v: (b_prev * v - eta * g).astype(v.dtype), updates, state.velocity)
        new_updates = jax.tree_util.tree_map(lambda g, v: (-eta * g + b_now * v).astype(v.dtype), updates, v)
        return new_updates, NesterovState(optax.safe_increment(state.count), v)

    return optax.GradientTransformation(init_fn, update_fn)


class FriedmannState(NamedTuple):
    """State of :func:`friedmann_momentum`: count, the trace m_{i-1} (previous update = -eta m_{i-1})
    and the Hubble rate used in the last update (a diagnostic)."""

    count: jnp.ndarray
    trace: Any
    hubble: jnp.ndarray


def friedmann_hubble(kinetic, value, v0):
    """H = sqrt(max(rho, 0)/3) with rho = kinetic + value + v0: the Friedmann constraint (eq. 6)."""
    rho = kinetic + value + v0
    return jnp.sqrt(jnp.maximum(rho, 0.0) / 3.0)


def friedmann_momentum(eta, v0=0.0) -> optax.GradientTransformationExtraArgs:
    """The self-consistent "Friedmann" optimiser: the friction is set by the energy of the system.

    Parameter space is the field space: theta' = (theta_i - theta_{i-1})/sqrt(eta), so the kinetic
    energy is |theta_i - theta_{i-1}|^2/(2 eta) = eta |m_{i-1}|^2/2, and (eq. 6 with V = L + V0)

        3 H_i^2 = |theta_i - theta_{i-1}|^2/(2 eta) + L(theta_i) + V0,
        beta_i = clip(1 - 3 H_i sqrt(eta), 0, 1),   m_i = beta_i m_{i-1} + g_i,   update = -eta m_i.

    ``update`` needs the current loss as the keyword ``value`` (the optax convention, as in
    ``optax.polyak_sgd``). At a minimum with L = 0 it becomes constant momentum with
    beta = 1 - sqrt(3 V0 eta) (de Sitter, V0 = beta_tilde^2/3 of eq. 8); with V0 = 0 the friction
    fades as the energy drains.
    """
    _check("eta", eta, low=0.0, low_open=True)
    _check("v0", v0, low=0.0)

    def init_fn(params):
        return FriedmannState(
            jnp.zeros([], jnp.int32), jax.tree_util.tree_map(jnp.zeros_like, params), jnp.zeros([], jnp.result_type(float))
        )

    def update_fn(updates, state, params=None, *, value, **extra_args):
        del params, extra_args
        sq = sum(jnp.sum(t.astype(jnp.result_type(float)) ** 2) for t in jax.tree_util.tree_leaves(state.trace))
        hubble = friedmann_hubble(0.5 * eta * sq, value, v0)
        beta = jnp.clip(1.0 - 3.0 * hubble * jnp.sqrt(eta), 0.0, 1.0)
        trace = jax.tree_util.tree_map(lambda g, t: g + (beta * t).astype(t.dtype), updates, state.trace)
        new_updates = jax.tree_util.tree_map(lambda t: (-eta * t).astype(t.dtype), trace)
        return new_updates, FriedmannState(optax.safe_increment(state.count), trace, hubble)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# hashable factories with keyword hyperparameters (usable as static jit arguments, see train_optax)
def sgd_momentum(eta, beta):
    """``optax.sgd(eta, momentum=beta)`` (heavy ball)."""
    return optax.sgd(eta, momentum=beta)


def sgd_nesterov(eta, beta):
    """``optax.sgd(eta, momentum=beta, nesterov=True)`` (Sutskever's constant-momentum Nesterov)."""
    return optax.sgd(eta, momentum=beta, nesterov=True)


def adam(eta):
    """``optax.adam(eta)`` with default betas."""
    return optax.adam(eta)


def friedmann_vacuum(eta, beta_inf):
    """:func:`friedmann_momentum` with the vacuum energy V0 = (1 - beta_inf)^2/(3 eta) of eq. 8, so that
    the momentum tends to ``beta_inf`` at a minimum (L = 0, theta' = 0) and is smaller before."""
    return friedmann_momentum(eta, v0=(1.0 - beta_inf) ** 2 / (3.0 * eta))


# ---------------------------------------------------------------------------------------------
# continuum predictions for a homogeneous network
# ---------------------------------------------------------------------------------------------
RTOL = 1e-10
ATOL = 1e-12


def _friction(t, f, v, args):
    """3H for every kind at once: gamma0 + 3p/(t + t0) + kappa sqrt(3 rho); unused terms have zero
    coefficients, so one compiled solver serves de Sitter, power laws and the Friedmann constraint."""
    power = jnp.where(args["p"] > 0, 3.0 * args["p"] / jnp.where(t + args["t0"] > 0, t + args["t0"], 1.0), 0.0)
    # canonical field phi = f/sqrt(alpha): kinetic phi'^2/2 = f'^2/(2 alpha), potential L(f) + V0
    rho = 0.5 * v**2 / args["alpha"] + args["loss"](f) + args["v0"]
    return args["gamma"] + power + args["kappa"] * jnp.sqrt(3.0 * jnp.maximum(rho, 0.0))


FRICTIONS = ("de_sitter", "power_law", "friedmann")


def _field_impl(f_init, t_start, v_start, ts, args):
    def vector_field(t, state, a):
        f, v = state
        return v, -_friction(t, f, v, a) * v - a["alpha"] * a["loss"].first(f)

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field),
        diffrax.Dopri8(),
        t0=t_start,
        t1=ts[-1],
        dt0=None,
        y0=(f_init, v_start),
        args=args,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=ATOL),
        max_steps=2_000_000,
    )
    return sol.ys[0]


_field = jax.jit(_field_impl)


def predict_hubble(alpha, f_init, *, eta, loss, steps, kind, beta=None, p=None, t0=0.0, v0=0.0):
    """Homogeneous field equation with a time-dependent friction: f'' + 3H f' + alpha L'(f) = 0.

    The FLRW field equation (eq. 6 of the paper, with V = alpha L) for the output f of a homogeneous
    network trained with one of this module's optimisers, from rest at f_init, reported at
    t = step * sqrt(eta). ``kind`` selects H:

    * ``"de_sitter"``: 3H = (1 - beta)/sqrt(eta) (eq. 7; needs ``beta``);
    * ``"power_law"``: H = p/(t + t0) (needs ``p``). For t0 = 0 the equation is singular at t = 0;
      the regular solution starts as f = f_init - alpha L'(f_init) t^2/(2(1 + 3p)) + O(t^4), which is
      used to start the integration at a tiny time;
    * ``"friedmann"``: 3H^2 = f'^2/(2 alpha) + L(f) + V0, the Friedmann optimiser's constraint in terms
      of the canonical field phi = f/sqrt(alpha) (its kinetic energy equals the parameter-space
      |theta'|^2/2 when theta' lies in the span of grad f, and its potential is L).

    Returns an array of shape (len(steps),).
    """
    eta = _validate.eta(eta)
    alpha = _validate.real("alpha", np.asarray(alpha, dtype=float).reshape(()), low=0.0)
    f_init = _validate.real("f_init", np.asarray(f_init, dtype=float).reshape(()))
    if not isinstance(loss, PolynomialLoss):
        raise TypeError(f"loss must be a nncosmo_helpers.loss.PolynomialLoss, got {type(loss).__name__}")
    if kind not in FRICTIONS:
        raise ValueError(f"kind must be one of {sorted(FRICTIONS)}, got {kind!r}")
    steps = _validate.steps(steps)
    ts = steps * np.sqrt(eta)
    args = {"alpha": alpha, "loss": loss, "gamma": 0.0, "p": 0.0, "t0": 0.0, "v0": 0.0, "kappa": 0.0}
    t_start, v_start = 0.0, 0.0
    f_start = f_init
    if kind == "de_sitter":
        args["gamma"] = (1.0 - _validate.beta(beta)) / np.sqrt(eta)
    elif kind == "power_law":
        p = _validate.real("p", p, low=0.0, low_open=True)
        t0 = _validate.real("t0", t0, low=0.0)
        args["p"], args["t0"] = p, t0
        if t0 == 0.0:
            acc = -alpha * float(loss.first(f_init))
            t_start = min(1e-4, 1e-3 * max(ts[-1], 1e-12))
            f_start = f_init + acc * t_start**2 / (2.0 * (1.0 + 3.0 * p))
            v_start = acc * t_start / (1.0 + 3.0 * p)
    else:
        args["v0"] = _validate.real("v0", v0, low=0.0)
        args["kappa"] = 1.0
    if ts[-1] <= t_start:
        return jnp.full(len(ts), f_init)
    out_ts = np.maximum(ts, t_start)
    args = {k: (v if k == "loss" else jnp.float64(v)) for k, v in args.items()}
    fs = _field(jnp.float64(f_start), jnp.float64(t_start), jnp.float64(v_start), jnp.asarray(out_ts), args)
    return jnp.where(jnp.asarray(ts) <= t_start, f_init, fs)


# ---------------------------------------------------------------------------------------------
# benchmarks: equal step budgets, learning rates tuned on a grid, several seeds (vmapped)
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Method:
    """An optimiser to benchmark: a hashable factory, fixed hyperparameters, a learning-rate grid.

    ``factory(eta=..., **fixed)`` must return an optax transformation.
    """

    name: str
    factory: Callable
    fixed: tuple = ()  # ((name, value or function of eta), ...)
    lr_grid: tuple = (0.01, 0.03, 0.1, 0.3, 1.0)

    def grid_hyperparams(self, dtype):
        """The hyperparameters for every learning rate of the grid, as arrays of shape (len(lr_grid),)."""
        eta = jnp.asarray(self.lr_grid, dtype)
        hp = {"eta": eta}
        for k, v in self.fixed:
            hp[k] = jnp.asarray(v(eta) if callable(v) else jnp.full_like(eta, v), dtype)
        return hp


def _vacuum_for(beta_inf):
    """V0(eta) = (1 - beta_inf)^2/(3 eta): the vacuum energy of eq. 8 for a late-time momentum beta_inf."""
    return lambda eta: (1.0 - beta_inf) ** 2 / (3.0 * eta)


def standard_methods(lr_grid=(0.01, 0.03, 0.1, 0.3, 1.0), adam_grid=(1e-3, 3e-3, 0.01, 0.03, 0.1)):
    """The benchmark's contestants, each with its learning-rate grid.

    Heavy ball (beta = 0.9), optax's constant-momentum Nesterov (beta = 0.9), Nesterov's (k-1)/(k+2)
    schedule, Adam (``adam_grid``), the Friedmann optimiser with V0 = 0 (no extra hyperparameter) and
    with the vacuum energy that makes its late-time momentum 0.9 (:func:`friedmann_vacuum`).
    """
    return (
        Method("heavy ball, beta=0.9", sgd_momentum, (("beta", 0.9),), tuple(lr_grid)),
        Method("optax Nesterov, beta=0.9", sgd_nesterov, (("beta", 0.9),), tuple(lr_grid)),
        Method("Nesterov (k-1)/(k+2)", nesterov_momentum, (), tuple(lr_grid)),
        Method("Adam", adam, (), tuple(adam_grid)),
        Method("Friedmann, V0=0", friedmann_momentum, (("v0", 0.0),), tuple(lr_grid)),
        Method("Friedmann, beta_inf=0.9", friedmann_momentum, (("v0", _vacuum_for(0.9)),), tuple(lr_grid)),
    )


def _run_with_value(loss_fn, optimizer, steps, params, hyperparams):
    """Full-batch training of ``loss_fn(params)``; returns (final params, loss per step)."""
    opt = optax.with_extra_args_support(optimizer(**hyperparams))

    def step(carry, _):
        p, s = carry
        value, g = jax.value_and_grad(loss_fn)(p)
        updates, s = opt.update(g, s, p, value=value)
        return (optax.apply_updates(p, updates), s), value

    (p, _), values = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return p, values


#: Final losses below this count as converged to machine precision (log10 scores are clamped here).
LOSS_FLOOR = 1e-30


def _log10_loss(value):
    return jnp.where(jnp.isfinite(value), jnp.log10(jnp.maximum(value, LOSS_FLOOR)), jnp.inf)


@dataclasses.dataclass
class BenchmarkResult:
    """Outcome of one method on one task.

    ``grid_score[j, s]`` is the tuning score (lower is better; inf if diverged) of learning rate j on
    seed s; ``best_eta`` minimises its mean over seeds; ``metrics`` maps a name to the per-seed values
    at ``best_eta`` (on held-out seeds or a held-out split, see the task function).
    """

    method: str
    lr_grid: np.ndarray
    grid_score: np.ndarray
    best_eta: float
    metrics: dict


def _pick(method, scores):
    mean = np.where(np.all(np.isfinite(scores), axis=1), scores.mean(axis=1), np.inf)
    j = int(np.argmin(mean))
    return j, float(method.lr_grid[j])


# -- (a) the paper's polynomial losses on a homogeneous network ------------------------------
def _poly_task_impl(apply_fn, optimizer, steps, params, x, hyperparams, m, f0, n):
    def one(p, hp, mi, fi, ni):
        # eq. 20 with a traced (even) exponent: m^2/2 ((f - f0)^2)^(n/2), so one compilation serves all n
        value = lambda q: jnp.mean(0.5 * mi**2 * ((apply_fn(q, x)[:, 0] - fi) ** 2) ** (0.5 * ni))
        return _run_with_value(value, optimizer, steps, p, hp)[1][-1]

    # params: (S, ...), hyperparams: (J,), m, f0, n: (K,) -> final loss of shape (K, J, S)
    over_seeds = lambda hp, mi, fi, ni: jax.vmap(lambda p: one(p, hp, mi, fi, ni))(params)
    over_lrs = lambda mi, fi, ni: jax.vmap(lambda hp: over_seeds(hp, mi, fi, ni))(hyperparams)
    return jax.vmap(over_lrs)(m, f0, n)


_poly_task = jax.jit(_poly_task_impl, static_argnums=(0, 1, 2))


def benchmark_polynomial(methods, losses, *, apply_fn, init_fn, x, steps, seeds, tune_seeds=None):
    """Final dataset loss of a homogeneous network (one input point) after ``steps`` full-batch steps.

    ``losses`` is a sequence of :class:`~nncosmo_helpers.loss.PolynomialLoss` (eq. 20). For each
    method and loss the learning rate is tuned on ``tune_seeds`` (mean of log10 of the final loss; a
    diverged run counts as +inf) and reported on ``seeds`` (other network initialisations), so the
    reported numbers are not the ones the learning rate was selected on.

    Returns ``{loss: [BenchmarkResult per method]}`` with metric ``"log10_loss"`` (per seed).
    """
    tune_seeds = tuple(range(100, 100 + len(seeds))) if tune_seeds is None else tuple(tune_seeds)
    seeds = tuple(seeds)
    n_tune = len(tune_seeds)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in tune_seeds + seeds])
    params = jax.vmap(lambda k: init_fn(k, x.shape[1]))(keys)
    m, f0, n = (jnp.asarray([getattr(loss, a) for loss in losses], jnp.float64) for a in ("m", "f0", "n"))
    out = {loss: [] for loss in losses}
    for method in methods:
        final = _poly_task(apply_fn, method.factory, steps, params, jnp.asarray(x, jnp.float64),
                           method.grid_hyperparams(jnp.float64), m, f0, n)
        for loss, sc in zip(losses, np.asarray(_log10_loss(final))):
            j, best = _pick(method, sc[:, :n_tune])
            out[loss].append(BenchmarkResult(method.name, np.asarray(method.lr_grid), sc[:, :n_tune], best,
                                             {"log10_loss": sc[j, n_tune:]}))
    return out


# -- (b) a small MLP classifier on scikit-learn's bundled digits -----------------------------
def digits_data(*, split_seed=0, val_fraction=0.2, test_fraction=0.2, dtype=jnp.float32):
    """scikit-learn's bundled 8x8 digits (1797 images, no download), pixels scaled to [0, 1].

    Returns a dict with ``x_train, y_train, x_val, y_val, x_test, y_test`` (a fixed stratified split).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=test_fraction, random_state=split_seed, stratify=y)
    val = val_fraction / (1.0 - test_fraction)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=val, random_state=split_seed, stratify=y_rest)
    cast = lambda a: jnp.asarray(a, dtype)
    return {
        "x_train": cast(x_train), "y_train": jnp.asarray(y_train), "x_val": cast(x_val), "y_val": jnp.asarray(y_val),
        "x_test": cast(x_test), "y_test": jnp.asarray(y_test),
    }


def classifier_init(key, sizes, dtype=jnp.float32):
    """He-normal weights and zero biases for an MLP with layer sizes ``sizes`` (input, hidden..., classes)."""
    params = []
    for k, (a, b) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
        params.append({"W": jax.random.normal(k, (a, b), dtype) * jnp.sqrt(2.0 / a).astype(dtype), "b": jnp.zeros(b, dtype)})
    return params


def classifier_apply(params, x):
    """Logits of a relu MLP."""
    h = x
    for layer in params[:-1]:
        h = jax.nn.relu(h @ layer["W"] + layer["b"])
    return h @ params[-1]["W"] + params[-1]["b"]


def cross_entropy(params, x, y):
    """Mean softmax cross-entropy."""
    logits = classifier_apply(params, x)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


def accuracy(params, x, y):
    return jnp.mean(jnp.argmax(classifier_apply(params, x), axis=-1) == y)


def _run_minibatch(optimizer, steps, batch_size, params, hyperparams, key, x, y):
    """Mini-batch training on (x, y): each step draws ``batch_size`` examples (with replacement)."""
    opt = optax.with_extra_args_support(optimizer(**hyperparams))

    def step(carry, i):
        p, s = carry
        idx = jax.random.randint(jax.random.fold_in(key, i), (batch_size,), 0, x.shape[0])
        value, g = jax.value_and_grad(cross_entropy)(p, x[idx], y[idx])
        updates, s = opt.update(g, s, p, value=value)
        return (optax.apply_updates(p, updates), s), value

    (p, _), _ = jax.lax.scan(step, (params, opt.init(params)), jnp.arange(steps))
    return p


def _digits_impl(optimizer, steps, batch_size, params, keys, hyperparams, data):
    def one(p, k, hp):
        if batch_size is None:
            p, _ = _run_with_value(lambda q: cross_entropy(q, data["x_train"], data["y_train"]), optimizer, steps, p, hp)
        else:
            p = _run_minibatch(optimizer, steps, batch_size, p, hp, k, data["x_train"], data["y_train"])
        ok = jnp.all(jnp.array([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(p)]))
        bad = jnp.inf
        return {
            "train_loss": jnp.where(ok, cross_entropy(p, data["x_train"], data["y_train"]), bad),
            "val_loss": jnp.where(ok, cross_entropy(p, data["x_val"], data["y_val"]), bad),
            "test_loss": jnp.where(ok, cross_entropy(p, data["x_test"], data["y_test"]), bad),
            "test_accuracy": jnp.where(ok, accuracy(p, data["x_test"], data["y_test"]), 0.0),
        }

    return jax.vmap(lambda hp: jax.vmap(lambda p, k: one(p, k, hp))(params, keys))(hyperparams)


_digits = jax.jit(_digits_impl, static_argnums=(0, 1, 2))


def benchmark_digits(methods, *, hidden=(32,), steps=200, batch_size=None, seeds=(0, 1, 2, 3, 4), data=None):
    """Train a small relu MLP on the digits (softmax cross-entropy, float32), equal step budgets.

    ``batch_size=None`` is full-batch gradient descent; otherwise each step draws ``batch_size``
    training examples with replacement (the seed sets both the initialisation and the batches, and
    the Friedmann optimiser sees the mini-batch loss as its potential). The learning rate of each
    method is chosen by the mean validation loss over ``seeds`` (diverged runs count as +inf);
    reported metrics are on the held-out test split: ``test_loss``, ``test_accuracy`` (and
    ``train_loss``, ``val_loss``), one value per seed.
    """
    data = digits_data() if data is None else data
    sizes = (data["x_train"].shape[1],) + tuple(hidden) + (10,)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    params = jax.vmap(lambda k: classifier_init(k, sizes))(keys)
    batch_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
    out = []
    for method in methods:
        hp = method.grid_hyperparams(jnp.float32)
        res = {k: np.asarray(v) for k, v in _digits(method.factory, steps, batch_size, params, batch_keys, hp, data).items()}
        scores = np.where(np.isfinite(res["val_loss"]), res["val_loss"], np.inf)
        j, best = _pick(method, scores)
        out.append(BenchmarkResult(method.name, np.asarray(method.lr_grid), scores, best,
                                   {k: v[j] for k, v in res.items()}))
    return out


# ---------------------------------------------------------------------------------------------
# the duality for every schedule: homogeneous network versus FLRW field equation
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Schedule:
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
    from .ntk import alpha as _alpha

    a0 = float(_alpha(apply_fn, params, x))
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


def late_time_exponent(n):
    """Expansion exponent p of an oscillating field in V ~ |phi|^n: w = (n - 2)/(n + 2), p = (n + 2)/(3n).

    With V0 = 0 the Friedmann optimiser's energy then decays as rho = 3 p^2 / t^2 and H t -> p:
    n = 2 is matter domination (p = 2/3, rho t^2 -> 4/3), n = 4 radiation (p = 1/2, rho t^2 -> 3/4).
    """
    n = _validate.real("n", n, low=0.0, low_open=True)
    return (n + 2.0) / (3.0 * n)
