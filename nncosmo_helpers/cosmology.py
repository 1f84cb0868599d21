"""The cosmological side of the dictionary (eqs. 4-8): physics only, no networks and no training.

Momentum gradient descent with learning rate eta and momentum beta is, in the continuum limit
t = i * sqrt(eta) (eq. 4), a field with Hubble friction 3H = -beta_tilde = (1 - beta)/sqrt(eta)
in a universe dominated by the vacuum energy V0 = beta_tilde^2 / 3 (eq. 8), so that 3H^2 = V0.

The module also holds the dictionary of expansion histories that momentum schedules are dual to
(:data:`COSMOLOGIES`, :func:`equation_of_state`; the optimisers are in
:mod:`~nncosmo_helpers.optimizers`) and the homogeneous background solver of eq. 6. A trained network
next to these backgrounds is an experiment: :mod:`nncosmo_helpers.experiments.background`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _validate, odes


class FLRWParameters(NamedTuple):
    """Cosmological parameters dual to the optimiser hyperparameters (eqs. 4 and 8).

    Attributes:
        eta, beta: learning rate and momentum.
        beta_tilde: (beta - 1)/sqrt(eta) (eq. 4); negative for beta < 1.
        hubble: H = -beta_tilde/3 = (1 - beta)/(3 sqrt(eta)).
        vacuum_energy: V0 = beta_tilde^2/3 (eq. 8), so that 3 H^2 = V0.
        hubble_length: 1/H = 3 sqrt(eta)/(1 - beta), the only time scale of the dynamics.
    """

    eta: float
    beta: float
    beta_tilde: float
    hubble: float
    vacuum_energy: float
    hubble_length: float

    @property
    def friction(self) -> float:
        """The friction coefficient 3H = -beta_tilde = (1 - beta)/sqrt(eta) of eqs. 6, 7 and 9.

        The one definition of the friction in the package: every ODE of the continuum limit takes it
        from here.
        """
        return -self.beta_tilde


def flrw_parameters(eta, beta) -> FLRWParameters:
    """Map optimiser hyperparameters (eta > 0, beta in [0, 1)) to FLRW parameters (eqs. 4, 8)."""
    eta = _validate.eta(eta)
    beta = _validate.beta(beta)
    beta_tilde = (beta - 1.0) / math.sqrt(eta)
    hubble = -beta_tilde / 3.0
    return FLRWParameters(eta, beta, beta_tilde, hubble, beta_tilde**2 / 3.0, 1.0 / hubble)


def momentum_of_hubble(hubble, eta):
    """Inverse of :func:`flrw_parameters` for the momentum: beta = 1 - 3H sqrt(eta) (eq. 4), in [0, 1].

    Elementwise and traceable (plain JAX, no argument checks: it is called inside jitted optimiser
    updates with a time- or state-dependent H). A Hubble rate above 1/(3 sqrt(eta)) would need
    beta < 0 and gives beta = 0 (plain gradient descent, the most friction one step can carry);
    H <= 0 gives beta = 1.
    """
    return jnp.clip(1.0 - 3.0 * hubble * jnp.sqrt(eta), 0.0, 1.0)


def time_of_step(step, eta):
    """Continuum time of a discrete step, t = step * sqrt(eta) (below eq. 4)."""
    return jnp.asarray(step) * _validate.eta(eta) ** 0.5


def step_of_time(t, eta):
    """Inverse of :func:`time_of_step`: step = t / sqrt(eta)."""
    return jnp.asarray(t) / _validate.eta(eta) ** 0.5


# ---------------------------------------------------------------------------------------------
# the dictionary: power-law cosmologies (dual to momentum schedules, see nncosmo_helpers.optimizers)
# ---------------------------------------------------------------------------------------------
def equation_of_state(p):
    """w of a perfect fluid driving a ~ t^p in a flat universe: w = 2/(3p) - 1 (p > 0)."""
    p = _validate.real("p", p, low=0.0, low_open=True)
    return 2.0 / (3.0 * p) - 1.0


def power_law_exponent(w):
    """Inverse of :func:`equation_of_state`: p = 2/(3(1 + w)) for w > -1."""
    w = _validate.real("w", w, low=-1.0, low_open=True)
    return 2.0 / (3.0 * (1.0 + w))


class Cosmology(NamedTuple):
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


def friedmann_hubble(kinetic, value, v0):
    """H = sqrt(max(rho, 0)/3) with rho = kinetic + value + v0: the Friedmann constraint (eq. 6)."""
    rho = kinetic + value + v0
    return jnp.sqrt(jnp.maximum(rho, 0.0) / 3.0)


def late_time_exponent(n):
    """Expansion exponent p of an oscillating field in V ~ |phi|^n: w = (n - 2)/(n + 2), p = (n + 2)/(3n).

    With V0 = 0 the Friedmann optimiser's energy then decays as rho = 3 p^2 / t^2 and H t -> p:
    n = 2 is matter domination (p = 2/3, rho t^2 -> 4/3), n = 4 radiation (p = 1/2, rho t^2 -> 3/4).
    """
    n = _validate.real("n", n, low=0.0, low_open=True)
    return (n + 2.0) / (3.0 * n)


# ---------------------------------------------------------------------------------------------
# the homogeneous background (eq. 6): fixed versus self-consistent Hubble rate
# ---------------------------------------------------------------------------------------------
class Background(NamedTuple):
    """A homogeneous background phi(t), H(t) from :func:`solve_background` (eq. 6 with eq. 8).

    Arrays are indexed like ``steps``; ``t = steps * sqrt(eta)``.

    Attributes:
        steps, t: optimiser steps and continuum times of the samples.
        phi, phi_dot, hubble: field, velocity and Hubble rate.
        alpha, loss, flrw: the coupling, the loss and the FLRW dictionary the solution belongs to.
        self_consistent: whether H was sourced by the field (True) or fixed by V0 (False).
    """

    steps: np.ndarray
    t: np.ndarray
    phi: np.ndarray
    phi_dot: np.ndarray
    hubble: np.ndarray
    alpha: float
    loss: object
    flrw: FLRWParameters
    self_consistent: bool

    @property
    def potential(self):
        """V(phi) = alpha L(phi) + V0 (eq. 8)."""
        return self.alpha * np.asarray(self.loss(self.phi)) + self.flrw.vacuum_energy

    @property
    def field_energy(self):
        """rho_phi - V0 = phi_dot^2/2 + alpha L(phi): the energy that the vacuum must dominate."""
        return 0.5 * self.phi_dot**2 + self.alpha * np.asarray(self.loss(self.phi))

    @property
    def energy_ratio(self):
        """(phi_dot^2/2 + alpha L)/V0; the vacuum-dominated matching of eq. 8 needs this << 1."""
        return self.field_energy / self.flrw.vacuum_energy

    @property
    def friedmann_residual(self):
        """(3H^2 - phi_dot^2/2 - V)/(3H^2): zero on a self-consistent solution of eq. 6.

        For the fixed-H background it is -field_energy/V0 (the neglected backreaction).
        """
        rho = 0.5 * self.phi_dot**2 + self.potential
        return (3.0 * self.hubble**2 - rho) / (3.0 * self.hubble**2)


def _background_field(t, state, args):
    phi, phi_dot, hubble = state
    alpha, loss, source = args
    phi_ddot = -3.0 * hubble * phi_dot - alpha * loss.first(phi)
    return phi_dot, phi_ddot, -0.5 * source * phi_dot**2


@jax.jit
def _solve_background_jit(y0, ts, args):
    return odes.solve(_background_field, y0, ts, args)


def solve_background(alpha, loss, phi0, *, eta, beta, steps, self_consistent: bool = False) -> Background:
    """Solve the homogeneous FLRW dynamics of eq. 6 with the potential V = alpha L + V0 of eq. 8.

    The field obeys phi'' + 3H phi' + alpha L'(phi) = 0 from rest at ``phi0`` (the network starts
    at rest: theta_{-1} = theta_0 in eq. 2). Two Hubble rates:

    * ``self_consistent=False``: H is fixed by the vacuum energy, 3H^2 = V0 = beta_tilde^2/3, i.e.
      3H = (1 - beta)/sqrt(eta). This is the approximation under which eq. 6 becomes the network's
      eq. 7, and it is the same ODE as :func:`nncosmo_helpers.dynamics.predict_homogeneous`.
    * ``self_consistent=True``: H is sourced by the field as well, 3H^2 = phi'^2/2 + V0 + alpha L
      (the Friedmann equation of eq. 6). H is integrated with the Raychaudhuri equation
      H' = -phi'^2/2 (reduced Planck units, as in eq. 6) from H(0) = sqrt((V0 + alpha L(phi0))/3);
      the Friedmann constraint is then a check (:attr:`Background.friedmann_residual`).

    Integration: :func:`nncosmo_helpers.odes.solve` (Dopri8, rtol 1e-10, atol 1e-12) in t = step * sqrt(eta) (eq. 4).

    Args:
        alpha: the homogeneous NTK alpha >= 0 (eq. 7).
        loss: a :class:`~nncosmo_helpers.loss.PolynomialLoss` (per-point loss, eq. 20).
        phi0: initial field value (the network's initial output).
        eta, beta: learning rate and momentum, which fix V0 and the friction (eqs. 4, 8).
        steps: increasing optimiser steps at which to report the solution.
        self_consistent: see above.
    """
    _validate.require_float64()
    _validate.polynomial_loss(loss)
    alpha = _validate.real("alpha", alpha, low=0.0)
    phi0 = _validate.real("phi0", phi0)
    if not isinstance(self_consistent, bool):
        raise TypeError(f"self_consistent must be a bool, got {type(self_consistent).__name__}")
    flrw = flrw_parameters(eta, beta)
    steps = _validate.steps(steps)
    ts = steps * np.sqrt(flrw.eta)
    energy0 = alpha * float(loss(phi0))
    h0 = float(friedmann_hubble(0.0, energy0, flrw.vacuum_energy)) if self_consistent else flrw.hubble
    y0 = (jnp.float64(phi0), jnp.float64(0.0), jnp.float64(h0))
    if ts[-1] == 0.0:
        ys = tuple(np.full(len(ts), float(v)) for v in y0)
    else:
        args = (jnp.float64(alpha), loss, jnp.float64(1.0 if self_consistent else 0.0))
        ys = tuple(np.asarray(y) for y in _solve_background_jit(y0, jnp.asarray(ts), args))
    return Background(steps, ts, ys[0], ys[1], ys[2], alpha, loss, flrw, self_consistent)


def eta_max_vacuum(alpha, loss, phi0, *, beta) -> float:
    """Largest learning rate with alpha L(phi0) <= V0 (the matching condition below eq. 8).

    V0 = beta_tilde^2/3 = (1 - beta)^2/(3 eta), so alpha L(phi0) << V0 reads
    eta << eta_max = (1 - beta)^2 / (3 alpha L(phi0)). Because the field energy
    phi'^2/2 + alpha L never grows along a damped trajectory started from rest, the condition at
    the initial output bounds the whole evolution. Momentum shrinks eta_max by (1 - beta)^2.
    ``beta`` may be an array (the boundary eta_max(beta) of the allowed region); the result then has
    its shape.
    """
    alpha = _validate.real("alpha", alpha, low=0.0, low_open=True)
    phi0 = _validate.real("phi0", phi0)
    if np.ndim(beta):
        beta = np.asarray([_validate.beta(b) for b in np.ravel(beta)]).reshape(np.shape(beta))
    else:
        beta = _validate.beta(beta)
    energy = alpha * float(loss(phi0))
    if energy <= 0.0:
        return np.full(np.shape(beta), np.inf) if np.ndim(beta) else float("inf")
    return (1.0 - beta) ** 2 / (3.0 * energy)


def relative_deviation(x, y, reference) -> float:
    """max_k |x_k - y_k| / |reference[-1] - reference[0]|: a deviation in units of an excursion."""
    reference = np.asarray(reference, dtype=float)
    scale = abs(reference[-1] - reference[0])
    return float(np.max(np.abs(np.asarray(x, dtype=float) - np.asarray(y, dtype=float)))) / scale


def end_deviation(observed, predicted) -> float:
    """|predicted(T) - observed(T)| / |observed(T) - observed(0)|: the paper's Fig. 3 measure.

    The end-point companion of :func:`relative_deviation`: a prediction's error at the last sample,
    in units of the distance the observed trajectory travelled (first axis = time). inf when the
    observed trajectory did not move (nan if the prediction did not either).
    """
    observed = np.asarray(observed, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(abs(predicted[-1] - observed[-1]) / abs(observed[-1] - observed[0]))


def background_deviation(alpha, loss, phi0, *, eta, beta, steps) -> float:
    """Largest distance between the fixed-H and the self-consistent background (eq. 6).

    Both are solved with :func:`solve_background` at ``steps``; the result is
    max_k |phi_fixed - phi_sc| / |phi_fixed(end) - phi0|.
    """
    fixed = solve_background(alpha, loss, phi0, eta=eta, beta=beta, steps=steps)
    sc = solve_background(alpha, loss, phi0, eta=eta, beta=beta, steps=steps, self_consistent=True)
    return relative_deviation(fixed.phi, sc.phi, fixed.phi)


def backgrounds_at_epsilon(alpha, loss, phi0, *, epsilon, beta, relaxation_times=8.0, samples=400):
    """Both backgrounds of eq. 6 at the learning rate eta = epsilon * eta_max (see :func:`eta_max_vacuum`).

    The time window covers ``relaxation_times`` units of tau = eta alpha L''(phi0) i/(1 - beta), the
    slow-roll relaxation time of a quadratic loss, sampled at ``samples`` equally spaced steps.
    Returns ``(fixed, self_consistent)`` :class:`Background` solutions.
    """
    epsilon = _validate.real("epsilon", epsilon, low=0.0, low_open=True)
    beta = _validate.beta(beta)
    eta = epsilon * eta_max_vacuum(alpha, loss, phi0, beta=beta)
    rate = eta * alpha * float(loss.second(phi0)) / (1.0 - beta)
    if rate <= 0.0:
        raise ValueError("alpha L''(phi0) must be positive to define a relaxation time")
    steps = np.linspace(0.0, relaxation_times / rate, _validate.integer("samples", samples, low=2))
    fixed = solve_background(alpha, loss, phi0, eta=eta, beta=beta, steps=steps)
    sc = solve_background(alpha, loss, phi0, eta=eta, beta=beta, steps=steps, self_consistent=True)
    return fixed, sc
