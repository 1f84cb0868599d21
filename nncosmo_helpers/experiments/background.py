"""A homogeneous network (one input point) trained with eq. 2 next to its continuum backgrounds.

* :func:`homogeneous_comparison`: the network against eq. 7 (frozen alpha) and against eq. 2 iterated
  in function space at the same frozen alpha (chapter "The continuous limit");
* :func:`compare_backgrounds`: the network against the fixed-H and the self-consistent FLRW
  backgrounds of eq. 6 (chapter "The homogeneous background"); :func:`residual_budget`: the budget of
  its distance to the fixed-H background;
* :func:`stability_limit_runs`: the network trained across its linear stability limit (same chapter).

Experiments sit above training (:mod:`~nncosmo_helpers.train`) and the physics
(:mod:`~nncosmo_helpers.cosmology`, :mod:`~nncosmo_helpers.dynamics`); the results are NamedTuples
whose metrics are properties.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _validate, cosmology, dynamics, ntk
from ..train import train_momentum


class HomogeneousComparison(NamedTuple):
    """A trained homogeneous network next to its continuum prediction (eq. 7).

    Attributes (arrays over the recorded steps):
        eta, beta: the optimiser hyperparameters.
        steps, t: step numbers and continuum times t = step sqrt(eta).
        f_net: the network output during training (eq. 2 on the weights).
        f_ode: eq. 7 with alpha frozen at its initial value, from rest at f_net[0].
        f_discrete: eq. 2 in function space with the same frozen alpha (:func:`~nncosmo_helpers.dynamics.iterate_linearized`),
            so that f_discrete - f_ode is the time-discretisation error and f_net - f_discrete the
            effect of the network's non-linearity (the drift of alpha) on the same discrete steps.
        alpha_initial, alpha_final: the one-point NTK at the start and the end of training.
    """

    eta: float
    beta: float
    steps: np.ndarray
    t: np.ndarray
    f_net: np.ndarray
    f_ode: np.ndarray
    f_discrete: np.ndarray
    alpha_initial: float
    alpha_final: float

    @property
    def displacement(self) -> float:
        """|f_net(T) - f_net(0)|, the scale of the deviations below (the paper's Fig. 3 uses it)."""
        return float(abs(self.f_net[-1] - self.f_net[0]))

    @property
    def end_deviation(self) -> float:
        """|f_net(T) - f_ode(T)| / displacement."""
        return cosmology.end_deviation(self.f_net, self.f_ode)

    @property
    def max_deviation(self) -> float:
        """max_t |f_net(t) - f_ode(t)| / displacement."""
        return float(np.max(np.abs(self.f_net - self.f_ode))) / self.displacement

    @property
    def end_discretisation(self) -> float:
        """|f_discrete(T) - f_ode(T)| / displacement: the part of the deviation due to finite steps."""
        return float(abs(self.f_discrete[-1] - self.f_ode[-1])) / self.displacement

    @property
    def alpha_drift(self) -> float:
        """(alpha_final - alpha_initial) / alpha_initial."""
        return (self.alpha_final - self.alpha_initial) / self.alpha_initial


def homogeneous_comparison(apply_fn, params, x0, *, eta, beta, loss, steps) -> HomogeneousComparison:
    """Train a network on one input point and compare it with eq. 7 (and with eq. 2 at frozen alpha).

    Args:
        apply_fn, params: the network; x0: the single input, shape (1, d).
        eta, beta, loss, steps: as in :func:`nncosmo_helpers.train.train_momentum` (every step is
            recorded).
    """
    _validate.require_float64()
    x0 = _validate.single_point("x0", x0)
    run = train_momentum(apply_fn, params, x0, eta=eta, beta=beta, loss=loss, steps=steps)
    alpha0 = float(run.alpha_initial)
    f_net = np.asarray(run.f[:, 0], dtype=float)
    step_numbers = np.asarray(run.steps)
    f_ode = dynamics.predict_homogeneous(alpha0, f_net[0], eta=eta, beta=beta, loss=loss, steps=step_numbers)
    f_disc = dynamics.iterate_linearized([[alpha0]], [f_net[0]], eta=eta, beta=beta, loss=loss, steps=step_numbers)
    return HomogeneousComparison(
        eta=float(eta), beta=float(beta), steps=step_numbers, t=step_numbers * np.sqrt(eta), f_net=f_net,
        f_ode=np.asarray(f_ode), f_discrete=np.asarray(f_disc[:, 0]), alpha_initial=alpha0,
        alpha_final=float(run.alpha_final),
    )


class BackgroundComparison(NamedTuple):
    """A homogeneous network trained with eq. 2 next to the two backgrounds of eq. 6.

    Attributes:
        f_net: network output at ``fixed.steps`` (one input point).
        fixed, self_consistent: :class:`~nncosmo_helpers.cosmology.Background` solutions with alpha = the initial one-point NTK,
            from rest at f_net[0].
        alpha_final: the one-point NTK after training (its drift is one source of deviation).
        stability_ratio: eta alpha L''(f_init) / (2 (1 + beta)) (linearly unstable above 1).
    """

    f_net: np.ndarray
    fixed: cosmology.Background
    self_consistent: cosmology.Background
    alpha_final: float
    stability_ratio: float

    @property
    def alpha_initial(self) -> float:
        return self.fixed.alpha

    @property
    def epsilon(self) -> float:
        """alpha L(f_init)/V0 = eta/eta_max: the backreaction the fixed-H matching neglects."""
        return float(self.fixed.energy_ratio[0])

    @property
    def deviation_fixed(self) -> float:
        """Network vs fixed-H background (eq. 7), in units of the predicted excursion."""
        return cosmology.relative_deviation(self.f_net, self.fixed.phi, self.fixed.phi)

    @property
    def deviation_self_consistent(self) -> float:
        """Network vs self-consistent background, in units of the fixed-H excursion."""
        return cosmology.relative_deviation(self.f_net, self.self_consistent.phi, self.fixed.phi)

    @property
    def deviation_backgrounds(self) -> float:
        """Fixed-H vs self-consistent background, in units of the fixed-H excursion."""
        return cosmology.relative_deviation(self.fixed.phi, self.self_consistent.phi, self.fixed.phi)


def compare_backgrounds(apply_fn, params, x0, *, eta, beta, loss, steps, record_every=1) -> BackgroundComparison:
    """Train a homogeneous network (one input point) and solve both backgrounds of eq. 6 for it.

    alpha is the empirical NTK at ``x0`` before training (eq. 7); training uses
    :func:`nncosmo_helpers.train.train_momentum` (it raises ``TrainingDiverged`` if the run diverges).
    """
    _validate.require_float64()
    x0 = _validate.single_point("x0", x0)
    run = train_momentum(apply_fn, params, x0, eta=eta, beta=beta, loss=loss, steps=steps, record_every=record_every)
    f_net = np.asarray(run.f[:, 0], dtype=float)
    alpha0 = float(run.alpha_initial)
    fixed = cosmology.solve_background(alpha0, loss, f_net[0], eta=eta, beta=beta, steps=run.steps)
    sc = cosmology.solve_background(alpha0, loss, f_net[0], eta=eta, beta=beta, steps=run.steps, self_consistent=True)
    return BackgroundComparison(f_net, fixed, sc, float(run.alpha_final), float(run.stability_ratio))


def residual_budget(r: BackgroundComparison) -> float:
    """Budget of ``r.deviation_fixed``, the network's distance to the fixed-H background (eq. 7 at the initial
    alpha), in units of its excursion: the finite step plus the drift of alpha.

    The finite step is measured on its own: eq. 2 iterated at the frozen initial alpha
    (:func:`~nncosmo_helpers.dynamics.iterate_linearized`, the network's iteration without the drift) against
    background (a). The drift part is a first-order estimate from alpha at the end of training: a relative
    change delta = |alpha_final/alpha_initial - 1| of the force coefficient moves a relaxation by at most delta
    of its excursion. It is not a strict bound: where alpha rises during the run and falls back, its effect
    on the trajectory exceeds what the final delta says. Not finite (inf or nan) when
    the frozen-alpha iteration overflows, which can happen while the network, whose alpha changes, converges:
    then the finite-step part cannot be measured and the run has no budget.
    """
    fixed = r.fixed
    frozen = np.asarray(dynamics.iterate_linearized([[r.alpha_initial]], r.f_net[0], eta=fixed.flrw.eta,
                                                    beta=fixed.flrw.beta, loss=fixed.loss, steps=fixed.steps))[:, 0]
    return cosmology.relative_deviation(frozen, fixed.phi, fixed.phi) + abs(r.alpha_final / r.alpha_initial - 1)


class StabilityLimitRuns(NamedTuple):
    """A homogeneous network trained at multiples of its linear stability limit (eq. bg-etastab).

    Attributes:
        factors: the multiples c of eta_stab; ``runs[c]`` the :class:`~nncosmo_helpers.train.TrainResult`
            at eta = c eta_stab, beta = 0 (divergence reported, not raised).
        alpha_initial, f_init: the one-point NTK and the output at initialisation.
        eta_stab: 2 / (alpha L''(f_init)), the heavy-ball stability limit at beta = 0 (eq. bg-etastab);
        eta_max: (1 - beta)^2 / (3 alpha L(f_init)) at beta = 0, the vacuum-domination bound (eq. bg-etamax);
        f0: the minimum of the loss (eq. 20).
    """

    factors: tuple
    runs: dict
    alpha_initial: float
    f_init: float
    eta_stab: float
    eta_max: float
    f0: float

    @property
    def alpha_ratio(self) -> dict:
        """alpha_final / alpha_initial per factor (NaN for a diverged run)."""
        return {c: (float(r.alpha_final) / self.alpha_initial if not r.diverged else np.nan) for c, r in self.runs.items()}

    @property
    def peak(self) -> dict:
        """max_t |f(t) - f0| per factor: how far the output swings away from the minimum."""
        return {c: float(np.max(np.abs(np.asarray(r.f[:, 0]) - self.f0))) for c, r in self.runs.items()}


def stability_limit_runs(apply_fn, params, x0, *, loss, factors, steps) -> StabilityLimitRuns:
    """Train the homogeneous network at eta = c eta_stab (beta = 0) for every c in ``factors``.

    eta_stab = 2 / (alpha L''(f_init)) is the linear stability limit of eq. 2 on the frozen-kernel
    (quadratic) dynamics, eta_max the vacuum-domination bound of eq. 8 (``cosmology.eta_max_vacuum``).
    Returns a :class:`StabilityLimitRuns`.
    """
    _validate.require_float64()
    x0 = _validate.single_point("x0", x0)
    alpha0 = float(ntk.alpha(apply_fn, params, x0))
    f_init = float(apply_fn(params, x0)[0, 0])
    eta_stab = 2.0 / (alpha0 * float(loss.second(f_init)))
    eta_max = cosmology.eta_max_vacuum(alpha0, loss, f_init, beta=0.0)
    runs = {c: train_momentum(apply_fn, params, x0, eta=c * eta_stab, beta=0.0, loss=loss, steps=steps,
                              on_divergence="report") for c in factors}
    return StabilityLimitRuns(tuple(factors), runs, alpha0, f_init, eta_stab, eta_max, loss.f0)
