"""Optimisers as cosmologies: momentum schedules dual to FLRW expansion histories, as optax transformations.

Eq. 2 of the paper with a step-dependent momentum beta_i,

    theta_{i+1} = theta_i + beta_i (theta_i - theta_{i-1}) - eta grad L(theta_i),

has, with t = i sqrt(eta), the continuum limit theta'' + (1 - beta_i)/sqrt(eta) theta' + grad L = 0
(the derivation of eq. 4 goes through unchanged because beta_i multiplies a first difference). The
friction is 3H(t) if

    beta_i = 1 - 3 H(t_i) sqrt(eta),    t_i = t0 + i sqrt(eta).                       (schedule)

* constant H (de Sitter, eq. 8 of the paper): constant beta, ``optax.sgd(eta, momentum=beta)``
  (:func:`de_sitter_momentum`, the package's one heavy-ball optimiser);
* power-law expansion a ~ t^p, H = p/t: beta_i = 1 - 3p/(i + t0/sqrt(eta)), independent of eta
  for t0 = 0; matter p = 2/3, radiation p = 1/2, kinetic domination p = 1/3, coasting p = 1;
* the self-consistent "Friedmann" optimiser: H from the system's own energy,
  3H^2 = |theta'|^2/2 + L + V0 (eq. 6 of the paper with the potential L + V0).

Every optimiser is an ``optax.GradientTransformation`` in the trace form of ``optax.sgd``,
m_i = beta_i m_{i-1} + g_i and update -eta m_i, which is eq. 2 with beta_i because
theta_{i+1} - theta_i = -eta m_i. The schedules are ``optax.sgd`` with its momentum injected as a
function of the step (``optax.inject_hyperparams``); Nesterov's method and the Friedmann optimiser,
whose updates are not of that form, are written out. ``count`` in the states is the number of updates
already applied, so the update that produces theta_{i+1} has count i.

This module holds only the transformations. The cosmology dictionary (equation of state,
:data:`~nncosmo_helpers.cosmology.COSMOLOGIES`) is in :mod:`~nncosmo_helpers.cosmology`, the continuum
prediction of a homogeneous network with these frictions (:func:`~nncosmo_helpers.dynamics.predict_hubble`)
in :mod:`~nncosmo_helpers.dynamics`, and the train-then-compare experiments in
:mod:`nncosmo_helpers.experiments.schedules` and :mod:`nncosmo_helpers.experiments.benchmarks`.
Training with any of these transformations: :func:`nncosmo_helpers.train.train_optax`.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _validate
from .cosmology import friedmann_hubble, momentum_of_hubble


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


def scheduled_momentum(learning_rate, momentum_fn: Callable) -> optax.GradientTransformation:
    """Eq. 2 with a step-dependent momentum beta_i = ``momentum_fn(i)``.

    ``optax.inject_hyperparams(optax.sgd)`` with the momentum as a schedule of the update count: the
    trace m_i = beta_i m_{i-1} + g_i and the update -learning_rate * m_i are optax.sgd's own arithmetic,
    so a constant ``momentum_fn`` reproduces ``optax.sgd(learning_rate, momentum=beta)`` bit for bit.
    The state is optax's ``InjectHyperparamsState``; ``state.hyperparams["momentum"]`` is the beta_i of
    the last update.
    """
    return optax.inject_hyperparams(optax.sgd)(learning_rate=learning_rate, momentum=momentum_fn)


def de_sitter_momentum(eta, beta) -> optax.GradientTransformation:
    """Constant Hubble rate 3H = (1 - beta)/sqrt(eta): eqs. 2, 4 and 8 of the paper.

    This is the heavy ball of eq. 2, ``optax.sgd(eta, momentum=beta)``, and the package's only
    definition of it (:func:`scheduled_momentum` with a constant momentum gives the same bits).
    """
    _check("eta", eta, low=0.0, low_open=True)
    _check("beta", beta, low=0.0, high=1.0, high_open=True)
    return optax.sgd(eta, momentum=beta)




def hubble_momentum(eta, hubble: Callable, *, t0=0.0) -> optax.GradientTransformation:
    """Momentum dual to an expansion history H(t): beta_i = clip(1 - 3 H(t_i) sqrt(eta), 0, 1).

    t_i = t0 + i sqrt(eta) is the continuum time of theta_i (below eq. 4 of the paper). ``hubble``
    maps a time array to H; it must be finite for t > 0 (t = 0 is only evaluated with a zero trace
    when t0 = 0, and its value is discarded).
    """

    def momentum_fn(i):
        t = t0 + i * jnp.sqrt(eta)
        safe_t = jnp.where(t > 0, t, 1.0)
        # t = 0: plain gradient descent (its value is discarded, see above)
        return jnp.where(t > 0, momentum_of_hubble(hubble(safe_t), eta), 0.0)

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
        beta = momentum_of_hubble(hubble, eta)
        trace = jax.tree_util.tree_map(lambda g, t: g + (beta * t).astype(t.dtype), updates, state.trace)
        new_updates = jax.tree_util.tree_map(lambda t: (-eta * t).astype(t.dtype), trace)
        return new_updates, FriedmannState(optax.safe_increment(state.count), trace, hubble)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# hashable factories with keyword hyperparameters (usable as static jit arguments, see train_optax)

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
