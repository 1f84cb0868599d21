"""The cosmological side of the dictionary (eqs. 4-8).

Momentum gradient descent with learning rate eta and momentum beta is, in the continuum limit
t = i * sqrt(eta) (eq. 4), a field with Hubble friction 3H = -beta_tilde = (1 - beta)/sqrt(eta)
in a universe dominated by the vacuum energy V0 = beta_tilde^2 / 3 (eq. 8), so that 3H^2 = V0.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from . import _validate


@dataclasses.dataclass(frozen=True)
class FLRWParameters:
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
        """The friction coefficient 3H = -beta_tilde of eqs. 6, 7 and 9."""
        return 3.0 * self.hubble


def flrw_parameters(eta, beta) -> FLRWParameters:
    """Map optimiser hyperparameters (eta > 0, beta in [0, 1)) to FLRW parameters (eqs. 4, 8)."""
    eta = _validate.eta(eta)
    beta = _validate.beta(beta)
    beta_tilde = (beta - 1.0) / eta**0.5
    hubble = -beta_tilde / 3.0
    return FLRWParameters(eta, beta, beta_tilde, hubble, beta_tilde**2 / 3.0, 1.0 / hubble)


def time_of_step(step, eta):
    """Continuum time of a discrete step, t = step * sqrt(eta) (below eq. 4)."""
    return jnp.asarray(step) * _validate.eta(eta) ** 0.5


def step_of_time(t, eta):
    """Inverse of :func:`time_of_step`: step = t / sqrt(eta)."""
    return jnp.asarray(t) / _validate.eta(eta) ** 0.5
