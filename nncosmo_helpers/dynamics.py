"""Continuous-limit predictions of the training dynamics (eqs. 4-16).

With a frozen kernel K, the network outputs on the N training points obey (eq. 9)

    f'' + (1 - beta)/sqrt(eta) f' + K grad_f L(f) = 0,   grad_f L = L'(f)/N,   f'(0) = 0,

where ' is d/dt and t = step * sqrt(eta). The friction coefficient (1 - beta)/sqrt(eta) = -beta_tilde
is positive: it is eq. 7's "- beta_tilde f'". (Eqs. 15/16 of the paper print "+ beta_tilde"; that sign
anti-damps, see the appendix chapter.) For N = 1 and K = alpha this is eq. 7, the field equation (6)
with V = alpha L + V0 and 3H^2 = V0.

In the eigenbasis of K (eqs. 11-13) the equation splits into the mean field (eq. 15) and the modes
(eq. 16), whose coupling lambda_i/N multiplies the mass term L''(f_bar).

With a step-dependent momentum (the optimisers of :mod:`~nncosmo_helpers.optimizers`) the friction
becomes a Hubble rate 3H(t) (:func:`predict_hubble`).

Every ODE is integrated by :mod:`nncosmo_helpers.odes` (8th-order Dormand-Prince, rtol 1e-10). The
module imports no training and no networks: comparisons with trained networks are in
:mod:`nncosmo_helpers.experiments`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _validate, lattice, odes
from .cosmology import end_deviation, flrw_parameters, friedmann_hubble
from .loss import PolynomialLoss



def _solve_second_order(force, y0, ts, gamma, args):
    """Solve y'' + gamma y' = force(y, args), y(0) = y0, y'(0) = 0; return y at times ts.

    ``force`` must be a static (hashable) function of (y, args).
    """
    return _solve_jit(force, jnp.asarray(y0, jnp.float64), jnp.asarray(ts, jnp.float64), jnp.asarray(gamma, jnp.float64), args)


def _solve_impl(force, y0, ts, gamma, args):
    """y'' + gamma y' = force(y, args) from rest at y0; y at the times ts (through :func:`odes.solve`)."""

    def vector_field(t, state, a):  # the form -gamma v + F, kept so that results are bit for bit unchanged
        y, v = state
        return v, -gamma * v + force(y, a)

    return odes.solve(vector_field, (y0, jnp.zeros_like(y0)), ts, args)[0]


_solve_jit = jax.jit(_solve_impl, static_argnums=0)


def _linearized_force(f, args):
    kernel, loss = args
    return -kernel @ loss.grad_f(f)


def _times(steps, eta):
    steps = _validate.steps(steps)
    return steps, steps * np.sqrt(eta)


def _solve_at(force, y0, steps, eta, beta, args):
    steps, ts = _times(steps, eta)
    gamma = flrw_parameters(eta, beta).friction
    if ts[-1] == 0.0:
        return jnp.broadcast_to(jnp.asarray(y0, jnp.float64), (len(ts),) + jnp.shape(y0))
    return _solve_second_order(force, y0, ts, gamma, args)


def predict_linearized(kernel, f_init, *, eta, beta, loss, steps):
    """Outputs predicted by the frozen-kernel continuum dynamics (eq. 9; eq. 7 when N = 1).

    Solves f'' + (1 - beta)/sqrt(eta) f' + K L'(f)/N = 0 with f(0) = f_init, f'(0) = 0.

    Args:
        kernel: (N, N) NTK on the training points (square, symmetric, PSD).
        f_init: (N,) initial outputs.
        eta, beta: learning rate (> 0) and momentum (in [0, 1)).
        loss: a :class:`~nncosmo_helpers.loss.PolynomialLoss`; the dataset loss is its mean.
        steps: increasing step numbers at which to report f (t = step * sqrt(eta)).

    Returns:
        array of shape (len(steps), N).
    """
    _validate.require_float64()
    eta = _validate.eta(eta)
    beta = _validate.beta(beta)
    loss = _validate.polynomial_loss(loss)
    f_init = jnp.atleast_1d(jnp.asarray(_validate.finite_array("f_init", f_init)))
    if f_init.ndim == 2 and f_init.shape[1] == 1:
        f_init = f_init[:, 0]
    if f_init.ndim != 1:
        raise ValueError(f"f_init must have shape (N,), got {f_init.shape}")
    kernel = jnp.asarray(_validate.kernel(kernel, n_points=f_init.shape[0]))
    return _solve_at(_linearized_force, f_init, steps, eta, beta, (kernel, loss))


def predict_homogeneous(alpha, f_init, *, eta, beta, loss, steps):
    """Homogeneous (one input point) prediction of eq. 7: f'' + 3H f' + alpha L'(f) = 0.

    Returns an array of shape (len(steps),).
    """
    alpha = _validate.real("alpha", alpha, low=0.0)
    f_init = _validate.real("f_init", f_init)
    return predict_linearized([[alpha]], [f_init], eta=eta, beta=beta, loss=loss, steps=steps)[:, 0]


# ---------------------------------------------------------------------------------------------
# mean field and modes (eqs. 11-16)
# ---------------------------------------------------------------------------------------------
class Modes(NamedTuple):
    """Eigen-decomposition of an NTK on N points (eqs. 11-13).

    ``eigenvalues`` are sorted in descending order; ``eigenvectors[:, i]`` is v_{i+1}, normalised,
    with the sign of v_1 chosen so that sum(v_1) >= 0.
    """

    eigenvalues: jnp.ndarray
    eigenvectors: jnp.ndarray

    @property
    def n_points(self) -> int:
        return int(self.eigenvalues.shape[0])

    @property
    def v1(self):
        return self.eigenvectors[:, 0]

    def uniform_overlap(self) -> float:
        """|v_1 . u| with u = (1, ..., 1)/sqrt(N): 1 if the leading mode is exactly the uniform mode."""
        return float(jnp.abs(jnp.sum(self.v1)) / np.sqrt(self.n_points))

    def project(self, f):
        """Split outputs f (..., N) into the mean field and mode amplitudes (eq. 14).

        f_bar = v_1 . f / sqrt(N) and delta_tilde_i = v_i . f for i >= 2, so that
        f = sqrt(N) v_1 f_bar + sum_{i>=2} delta_tilde_i v_i. Returns (f_bar, delta_tilde) with
        delta_tilde of shape (..., N - 1).
        """
        coeffs = jnp.asarray(f) @ self.eigenvectors
        return coeffs[..., 0] / np.sqrt(self.n_points), coeffs[..., 1:]


#: The claims' bar for eq. 15: the chapter "Perturbations" accepts a mean-field end-point error of 2 % of
#: the mean field's displacement.
MEAN_FIELD_BAR = 0.02
#: |v_1 . u| at or above which the leading eigenvector counts as the uniform mode (see
#: :func:`leading_mode_class`). Budget: write v_1 = c u + s w with w orthogonal to u, c = |v_1 . u|.
#: For the quadratic loss the frozen-kernel eq. 9 projected on v_1 is exact (chapter eq. pt-source):
#: c_1 = v_1 . f relaxes towards f_0 (v_1 . 1) = sqrt(N) c f_0, so f_bar = c_1/sqrt(N) relaxes towards
#: c f_0, not f_0, at the rate of eq. 15. Both approaches complete the same fraction g(t), so eq. 15
#: misses the end point by f_0 (1 - c) g against a displacement (c f_0 - f_bar(0)) g: a relative error
#: (1 - c) f_0/|c f_0 - f_bar(0)|, i.e. 1 - c for a network that starts near 0. The non-uniform part of
#: v_1 may use half of :data:`MEAN_FIELD_BAR`: 1 - c <= 0.01, c >= 0.99.
#: (The modes i >= 2 inherit the dropped shares f_0 v_i . 1, sum_i (v_i . u)^2 = s^2, so eq. 16's
#: *mode* end points are off by up to s = sqrt(1 - c^2) <= 0.14 times the mean field's displacement,
#: scaled down by kappa_i/kappa_1 for slow modes; mode-level comparisons therefore use the frozen-kernel
#: eq. 9, which keeps the shares.)
UNIFORM_OVERLAP = 1.0 - MEAN_FIELD_BAR / 2

#: The paper's width (its Fig. 5 networks have 1000 hidden units).
PAPER_WIDTH = 1000


def degeneracy_ratio(width) -> float:
    """lambda_1/lambda_2 below which v_1 of a width-``width`` network is "not defined".

    Budget (Davis-Kahan, in the form of Yu, Wang & Samworth 2015): a kernel change E rotates the
    leading eigenvector by an angle theta with sin(theta) <= 2 ||E|| / (lambda_1 - lambda_2). v_1 is a
    property of the network only if the change from one seed to another (or from the infinite-width
    kernel to a finite network) cannot rotate it by 45 degrees, the angle at which it is an equal mix
    of v_1 and v_2: lambda_1 - lambda_2 >= 2 sqrt(2) ||E||. The finite-width fluctuation of the NTK is
    ||E|| ~ lambda_1 / sqrt(width) (measured on the paper's Fig. 5 grid, 100 centred points, 0.1 and 1
    Hubble length: median ||K_emp - K_inf||_2 / lambda_1 = 0.03 at width 1000, 0.09 at width 128, the
    largest 0.13 and 0.4, for relu (1, 0.05) with 2 hidden layers). Hence
    lambda_1/lambda_2 >= 1 / (1 - 2 sqrt(2)/sqrt(width)): 1.098 at width 1000, 1.33 at width 128.
    """
    width = float(width)
    if not width > 8.0:  # 2 sqrt(2)/sqrt(width) must stay below 1
        raise ValueError(f"width must be > 8 for a finite degeneracy ratio, got {width}")
    return float(1.0 / (1.0 - 2.0 * np.sqrt(2.0) / np.sqrt(width)))


#: lambda_1/lambda_2 below which v_1 is "not defined" (see :func:`leading_mode_class`), for networks of
#: the paper's width; narrower networks fluctuate more: pass ``degeneracy=degeneracy_ratio(width)``.
DEGENERACY_RATIO = degeneracy_ratio(PAPER_WIDTH)

LEADING_MODE_LABELS = ("uniform", "not uniform", "not defined")


def leading_mode_class(overlap, lambda_ratio, *, uniform: float = UNIFORM_OVERLAP,
                       degeneracy: float = DEGENERACY_RATIO) -> np.ndarray:
    """The one decision "is v_1 the uniform mode?" (eqs. 12-14), for arrays of networks.

    ``overlap`` = |v_1 . u| with u = (1, ..., 1)/sqrt(N) (:meth:`Modes.uniform_overlap`),
    ``lambda_ratio`` = lambda_1/lambda_2. When lambda_1/lambda_2 < ``degeneracy`` the top two
    eigenvectors are nearly degenerate and v_1 is not a property of the network (a small change of the
    kernel, such as another seed, rotates it within the pair): "not defined". Otherwise "uniform" when
    overlap >= ``uniform``, else "not uniform". Returns an array of these labels, shaped like the inputs.
    The thresholds and their budgets: :data:`UNIFORM_OVERLAP`, :func:`degeneracy_ratio`.
    """
    overlap = np.asarray(overlap, dtype=float)
    ratio = np.asarray(lambda_ratio, dtype=float)
    out = np.where(overlap >= uniform, "uniform", "not uniform").astype(object)
    out = np.where(~(ratio >= degeneracy), "not defined", out)
    return out


def leading_mode(modes: "Modes", **thresholds) -> str:
    """:func:`leading_mode_class` of one decomposition: "uniform", "not uniform" or "not defined"."""
    lam = np.asarray(modes.eigenvalues)
    ratio = lam[0] / lam[1] if lam[1] > 0 else np.inf
    return str(leading_mode_class(modes.uniform_overlap(), ratio, **thresholds)[()])


def mode_decomposition(kernel) -> Modes:
    """Eigen-decomposition of a symmetric PSD kernel, eigenvalues descending (eqs. 12-13)."""
    k = _validate.kernel(kernel)
    lam, vec = np.linalg.eigh(0.5 * (k + k.T))
    lam, vec = lam[::-1], vec[:, ::-1]
    if vec[:, 0].sum() < 0:
        vec = vec.copy()
        vec[:, 0] *= -1
    return Modes(jnp.asarray(lam), jnp.asarray(vec))


def network_mass2(eigenvalues_over_n, mean_field, loss):
    """mu_i^2 = (lambda_i/N) L''(f_bar): the mass term of mode i in eq. 16, linearised around the mean
    field f_bar (eq. 14, f_bar = v_1 . f/sqrt(N)). The one definition of the network's mode mass.

    Elementwise (broadcasting, NumPy or JAX): pass ``mean_field`` at one time for the masses then, or a
    trajectory with a trailing axis (``f_bar[:, None]``) for mu_i^2(t). For the freezing of a frozen-kernel
    prediction use f_bar(0) (:func:`freezing_numbers`).
    """
    return eigenvalues_over_n * loss.second(mean_field)


def freezing_numbers(eigenvalues_over_n, mean_field0, *, loss, eta, beta, steps) -> np.ndarray:
    """kappa_i = mu_i^2 T/(3H) for every lambda_i/N in ``eigenvalues_over_n`` (the perturbations chapter's
    eq. pt-kappa): a mode with kappa_i << 1 cannot move within the run, T = steps sqrt(eta) and
    3H = (1 - beta)/sqrt(eta) (:attr:`cosmology.FLRWParameters.friction`). The one definition of kappa.

    Evaluation point: mu_i^2 = :func:`network_mass2` at ``mean_field0`` = f_bar(0) = v_1 . f(0)/sqrt(N)
    (eq. 14), the initial mean field. Eq. 16 is linear in delta_i around the mean field, and kappa is
    the statement about the frozen prediction from the start of the run (:func:`predict_mean_and_modes`
    starts eqs. 15/16 from f_bar(0)), so L'' is taken where the run starts, not at the arithmetic mean
    of the outputs (which differs from f_bar when v_1 is not uniform) nor at a fixed point such as f = 0.
    For the quadratic loss L'' = m^2 everywhere and the point does not matter. Eq. 15 relaxes f_bar
    from rest towards f0 without overshooting, so for an even power n the value at f_bar(0) is the largest
    L'' of the run: kappa is then an upper bound over the run. When v_1 is not uniform its sign (fixed
    by sum(v_1) >= 0 in :func:`mode_decomposition`) is set by round-off for an odd v_1, and with it the
    sign of f_bar(0): for n != 2 kappa of such a network is not defined (the chapters use n = 2).
    """
    friction = flrw_parameters(eta, beta).friction
    t_final = steps * np.sqrt(eta)
    return np.asarray(network_mass2(np.asarray(eigenvalues_over_n, dtype=float), float(mean_field0), loss),
                      dtype=float) * t_final / friction


def _mean_mode_force(y, args):
    lam_over_n, loss = args
    fbar, modes = y[0], y[1:]
    return jnp.concatenate([-lam_over_n[:1] * loss.first(fbar)[None], -network_mass2(lam_over_n[1:], fbar, loss) * modes])


def predict_mean_and_modes(modes: Modes, f_init, *, eta, beta, loss, steps, friction_sign: float = 1.0):
    """Mean field (eq. 15) and mode amplitudes (eq. 16) predicted from the initial NTK spectrum.

    Solves, with damping coefficient friction_sign * (1 - beta)/sqrt(eta),

        f_bar'' + 3H f_bar' + lambda_1/N L'(f_bar) = 0,
        delta_i'' + 3H delta_i' + lambda_i/N L''(f_bar) delta_i = 0   (i >= 2),

    from rest at the projections of ``f_init`` (see :meth:`Modes.project`).
    ``friction_sign=-1`` reproduces the sign printed in the paper's eqs. 15/16 (anti-damping).

    Returns (f_bar, delta_tilde) of shapes (len(steps),) and (len(steps), N - 1).
    """
    _validate.require_float64()
    eta = _validate.eta(eta)
    beta = _validate.beta(beta)
    loss = _validate.polynomial_loss(loss)
    if not isinstance(modes, Modes):
        raise TypeError(f"modes must be a Modes from mode_decomposition(kernel), got {type(modes).__name__}")
    if friction_sign not in (1.0, -1.0, 1, -1):
        raise ValueError(f"friction_sign must be +1 or -1, got {friction_sign}")
    f_init = jnp.asarray(f_init, jnp.float64).reshape(-1)
    if f_init.shape[0] != modes.n_points:
        raise ValueError(f"f_init must have shape ({modes.n_points},), got {f_init.shape}")
    fbar0, delta0 = modes.project(f_init)
    y0 = jnp.concatenate([fbar0[None], delta0])
    lam_over_n = modes.eigenvalues / modes.n_points
    steps, ts = _times(steps, eta)
    gamma = friction_sign * flrw_parameters(eta, beta).friction
    if ts[-1] == 0.0:
        ys = jnp.broadcast_to(y0, (len(ts),) + y0.shape)
    else:
        ys = _solve_second_order(_mean_mode_force, y0, ts, gamma, (lam_over_n, loss))
    return ys[:, 0], ys[:, 1:]


# ---------------------------------------------------------------------------------------------
# the discrete dynamics behind the continuum limit (eq. 2 in function space)
# ---------------------------------------------------------------------------------------------
def _iterate_impl(gaps, kernel, f_init, eta, beta, loss):
    def one_step(_, carry):
        f, f_prev = carry
        return f + beta * (f - f_prev) - eta * (kernel @ loss.grad_f(f)), f

    def block(carry, gap):  # advance by a (traced) number of steps, then record
        carry = jax.lax.fori_loop(0, gap, one_step, carry)
        return carry, carry[0]

    _, fs = jax.lax.scan(block, (f_init, f_init), gaps)
    return fs


_iterate_jit = jax.jit(_iterate_impl)


def iterate_linearized(kernel, f_init, *, eta, beta, loss, steps):
    """Momentum gradient descent (eq. 2) of a linearised model, written in function space.

    For a model that is linear in its parameters, f(theta) = f_init + J (theta - theta_0), eq. 2
    multiplied by J is exactly

        f_{i+1} = f_i + beta (f_i - f_{i-1}) - eta K L'(f_i)/N,   f_{-1} = f_0 = f_init,

    with K = J J^T the (frozen) NTK. This is the discrete iteration whose continuum limit
    (t = i sqrt(eta), eqs. 4, 5, 9) :func:`predict_linearized` integrates, so the difference
    between the two is pure time-discretisation error.

    Args and return value as :func:`predict_linearized`, except that ``steps`` must be integers.
    """
    _validate.require_float64()
    eta = _validate.eta(eta)
    beta = _validate.beta(beta)
    loss = _validate.polynomial_loss(loss)
    steps = _validate.steps(steps)
    if not np.all(steps == np.round(steps)):
        raise ValueError("steps must be integer step numbers for the discrete iteration")
    steps = steps.astype(int)
    f_init = jnp.atleast_1d(jnp.asarray(f_init, jnp.float64))
    if f_init.ndim == 2 and f_init.shape[1] == 1:
        f_init = f_init[:, 0]
    if f_init.ndim != 1:
        raise ValueError(f"f_init must have shape (N,), got {f_init.shape}")
    kernel = jnp.asarray(_validate.kernel(kernel, n_points=f_init.shape[0]))
    gaps = jnp.asarray(np.diff(steps, prepend=0), jnp.int64)
    return _iterate_jit(gaps, kernel, f_init, jnp.float64(eta), jnp.float64(beta), loss)


def discretisation_error(kernel, f_init, *, friction, loss, t_final, n_steps, n_records: int = 40):
    """Distance between momentum GD (eq. 2) and its continuum limit (eq. 9) at fixed friction.

    The continuum limit t = i sqrt(eta) is taken at a fixed ODE: the friction
    3H = (1 - beta)/sqrt(eta) is held at ``friction``, so that each run uses
    eta = (t_final/n)^2 and beta = 1 - friction sqrt(eta) (which must be >= 0). For every number of
    steps n in ``n_steps`` the exact discrete iteration (:func:`iterate_linearized`) and the ODE
    solution (:func:`predict_linearized`) are compared at ``n_records + 1`` equally spaced times
    t_k = k t_final / n_records, and the largest absolute difference over times and points is kept.

    Args:
        kernel, f_init, loss: the frozen-kernel problem, as in :func:`predict_linearized`.
        friction: 3H > 0.
        t_final: continuum time T > 0 covered by every run.
        n_steps: numbers of steps, each a multiple of ``n_records``.

    Returns:
        (sqrt_eta, max_error): two arrays of length len(n_steps).
    """
    friction = _validate.real("friction", friction, low=0.0, low_open=True)
    t_final = _validate.real("t_final", t_final, low=0.0, low_open=True)
    n_records = _validate.integer("n_records", n_records, low=1)
    sqrt_eta, errors = [], []
    for n in n_steps:
        n = _validate.integer("n_steps entries", n, low=n_records)
        if n % n_records:
            raise ValueError(f"each entry of n_steps must be a multiple of n_records={n_records}, got {n}")
        h = t_final / n
        beta = 1.0 - friction * h
        if beta < 0.0:
            raise ValueError(f"n={n} gives sqrt(eta)={h:.3g} > 1/friction, i.e. beta < 0; use more steps")
        steps = np.arange(n_records + 1) * (n // n_records)
        f_disc = iterate_linearized(kernel, f_init, eta=h * h, beta=beta, loss=loss, steps=steps)
        f_cont = predict_linearized(kernel, f_init, eta=h * h, beta=beta, loss=loss, steps=steps)
        sqrt_eta.append(h)
        errors.append(float(jnp.max(jnp.abs(f_disc - f_cont))))
    return np.asarray(sqrt_eta), np.asarray(errors)


class ConvergenceStudy(NamedTuple):
    """The discretisation error of eq. 2 against eq. 9 over a range of sqrt(eta) at fixed friction, with
    the least-squares line log error = slope log sqrt(eta) + intercept over sqrt(eta) <= ``fit_max``."""

    label: str
    friction: float
    sqrt_eta: np.ndarray
    error: np.ndarray
    slope: float
    intercept: float


def convergence_study(kernel, f_init, *, friction, loss, t_final, n_records, n_points, max_block=500,
                      fit_max=0.1) -> ConvergenceStudy:
    """:func:`discretisation_error` on ``n_points`` step counts n = n_records * b, the blocks b
    log-spaced (rounded, duplicates dropped) from t_final friction / n_records, i.e. beta = 0, to
    ``max_block``; the order of convergence is fitted where sqrt(eta) <= ``fit_max`` (there the O(eta)
    terms are small)."""
    blocks = np.geomspace(t_final * friction / n_records, max_block, n_points)
    n_steps = n_records * np.unique(np.round(blocks).astype(int))
    h, err = discretisation_error(kernel, f_init, friction=friction, loss=loss, t_final=t_final, n_steps=n_steps,
                                  n_records=n_records)
    fit = h <= fit_max
    slope, intercept = np.polyfit(np.log(h[fit]), np.log(err[fit]), 1)
    return ConvergenceStudy(f"$3H = {friction}$", friction, h, err, slope, intercept)


# ---------------------------------------------------------------------------------------------
# time-dependent friction: the continuum limit of the momentum schedules (nncosmo_helpers.optimizers)
# ---------------------------------------------------------------------------------------------
def _friction(t, f, v, args):
    """3H for every kind at once: gamma0 + 3p/(t + t0) + kappa 3 sqrt(rho/3) (the Friedmann constraint,
    :func:`~nncosmo_helpers.cosmology.friedmann_hubble`); unused terms have zero
    coefficients, so one compiled solver serves de Sitter, power laws and the Friedmann constraint."""
    power = jnp.where(args["p"] > 0, 3.0 * args["p"] / jnp.where(t + args["t0"] > 0, t + args["t0"], 1.0), 0.0)
    # canonical field phi = f/sqrt(alpha): kinetic phi'^2/2 = f'^2/(2 alpha), potential L(f) + V0
    hubble = friedmann_hubble(0.5 * v**2 / args["alpha"], args["loss"](f), args["v0"])
    return args["gamma"] + power + args["kappa"] * 3.0 * hubble


FRICTIONS = ("de_sitter", "power_law", "friedmann")


def _field_impl(f_init, t_start, v_start, ts, args):
    def vector_field(t, state, a):
        f, v = state
        return v, -_friction(t, f, v, a) * v - a["alpha"] * a["loss"].first(f)

    return odes.solve(vector_field, (f_init, v_start), ts, args, t0=t_start)[0]


_field = jax.jit(_field_impl)


def predict_hubble(alpha, f_init, *, eta, loss, steps, kind, beta=None, p=None, t0=0.0, v0=0.0):
    """Homogeneous field equation with a time-dependent friction: f'' + 3H f' + alpha L'(f) = 0.

    The FLRW field equation (eq. 6 of the paper, with V = alpha L) for the output f of a homogeneous
    network trained with one of the optimisers of :mod:`~nncosmo_helpers.optimizers`, from rest at f_init, reported at
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
    _validate.require_float64()
    _validate.polynomial_loss(loss)
    if kind not in FRICTIONS:
        raise ValueError(f"kind must be one of {sorted(FRICTIONS)}, got {kind!r}")
    steps = _validate.steps(steps)
    ts = steps * np.sqrt(eta)
    args = {"alpha": alpha, "loss": loss, "gamma": 0.0, "p": 0.0, "t0": 0.0, "v0": 0.0, "kappa": 0.0}
    t_start, v_start = 0.0, 0.0
    f_start = f_init
    if kind == "de_sitter":
        args["gamma"] = flrw_parameters(eta, beta).friction
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



def slow_roll_discretisation(alpha, *, eta, beta, loss, steps) -> float:
    """Predicted end-point gap between eq. 2 at frozen alpha and eq. 7, relative to the displacement.

    For a homogeneous network with a quadratic loss (n = 2) the force is linear, k = alpha m^2, and
    in the slow-roll (overdamped) regime k << (3H)^2 the continuum solution relaxes as
    f - f0 ~ exp(-r t) with r = (3H - sqrt(9H^2 - 4k))/2 ~ k/(3H). The discrete iteration
    (:func:`iterate_linearized`) differs in two ways at first order:

    * a head start of one step, sqrt(eta): the first update is a full gradient step, whereas the
      continuum field needs a time 1/(3H) to reach its terminal velocity and the discrete heavy
      ball beta/(1 - beta) steps = beta/(3H);
    * a relaxation rate smaller by the relative amount (1 - beta) k / (2 (3H)^2), from the slow root
      of z^2 - (1 + beta - eta k) z + beta = 0 (the inertia (1 + beta)/2 of the modified equation).

    Hence |f_disc(T) - f_ode(T)| / |f(T) - f(0)| ~ r |sqrt(eta) - T (1 - beta) k / (2 (3H)^2)|
    e^{-rT} / (1 - e^{-rT}), with T = steps sqrt(eta).
    """
    alpha = _validate.real("alpha", alpha, low=0.0, low_open=True)
    eta = _validate.eta(eta)
    beta = _validate.beta(beta)
    loss = _validate.polynomial_loss(loss)
    steps = _validate.integer("steps", steps, low=1)
    if loss.n != 2:
        raise ValueError(f"the estimate assumes a quadratic loss (n = 2), got n = {loss.n}")
    h = np.sqrt(eta)
    gamma = flrw_parameters(eta, beta).friction
    k = alpha * float(loss.second(loss.f0))  # L'' of the quadratic loss, m^2
    if 4 * k >= gamma**2:
        raise ValueError(f"not overdamped: 4 alpha m^2 = {4 * k:.3g} >= (3H)^2 = {gamma**2:.3g}")
    r = 0.5 * (gamma - np.sqrt(gamma**2 - 4.0 * k))
    t_final = steps * h
    x = r * t_final
    return float(abs(r * (h - t_final * (1.0 - beta) * k / (2.0 * gamma**2))) * np.exp(-x) / -np.expm1(-x))


# ---------------------------------------------------------------------------------------------
# perturbations (section 2.2): input grids, mode diagnostics, the field's Fourier modes
# ---------------------------------------------------------------------------------------------
def centred_interval(n_points, hubble_lengths, *, eta, beta):
    """Inputs of the paper's inhomogeneous experiments (section 3): 1-D, equally spaced, centred at 0.

    Returns x of shape (n_points, 1) with x_j = -l/2 + j l/(n_points - 1), j = 0, ..., n_points - 1,
    on an interval of length l = hubble_lengths / H, where 1/H = 3 sqrt(eta)/(1 - beta) is the
    Hubble length of the dual universe (eq. 8). The grid is symmetric under x -> -x, so NTK
    eigenvectors on it are even or odd (see :func:`mode_parity`).
    """
    n_points = _validate.integer("n_points", n_points, low=2)
    hubble_lengths = _validate.real("hubble_lengths", hubble_lengths, low=0.0, low_open=True)
    eta = _validate.eta(eta)
    beta = _validate.beta(beta)
    length = hubble_lengths * flrw_parameters(eta, beta).hubble_length
    return np.linspace(-0.5 * length, 0.5 * length, n_points)[:, None]


def _check_modes(modes, n_modes):
    if not isinstance(modes, Modes):
        raise TypeError(f"modes must be a nncosmo_helpers.dynamics.Modes, got {type(modes).__name__}")
    if n_modes is None:
        return modes.n_points
    return min(_validate.integer("n_modes", n_modes, low=1), modes.n_points)


def mode_parity(modes: Modes, n_modes=None) -> np.ndarray:
    """Parity v_i . P v_i of the leading ``n_modes`` eigenvectors, P the reflection of the grid.

    P reverses the order of the points, which is x -> -x on a grid symmetric about 0 (e.g.
    :func:`centred_interval`). The value is +1 for an even, -1 for an odd eigenvector, and in between
    for a mixture (degenerate eigenvalues or an asymmetric grid).
    """
    n = _check_modes(modes, n_modes)
    v = np.asarray(modes.eigenvectors)[:, :n]
    return np.einsum("ji,ji->i", v, v[::-1])


def mode_sign_changes(modes: Modes, n_modes=None, *, rel_tol: float = 1e-6) -> np.ndarray:
    """Number of sign changes (nodes) of each of the leading ``n_modes`` eigenvectors along the grid.

    Entries smaller than ``rel_tol`` times the vector's largest entry are ignored, so that rounding
    noise near a node is not counted. For a smooth kernel on an ordered 1-D grid v_i typically has
    i - 1 nodes, like the cosine mode cos(pi (i - 1) (x/l + 1/2)) of wavenumber pi (i - 1)/l.
    """
    n = _check_modes(modes, n_modes)
    rel_tol = _validate.real("rel_tol", rel_tol, low=0.0)
    out = []
    for v in np.asarray(modes.eigenvectors)[:, :n].T:
        s = np.sign(v[np.abs(v) > rel_tol * np.max(np.abs(v))])
        out.append(int(np.sum(s[1:] != s[:-1])))
    return np.asarray(out)


class ModeComparison(NamedTuple):
    """A trained inhomogeneous network projected onto the initial NTK eigenvectors (eq. 14).

    All amplitudes use the normalisation of :meth:`Modes.project`: the mean field f_bar = v_1 . f / sqrt(N)
    and the modes delta_i = v_i . f (i = 2, ..., n_modes + 1). ``*_observed`` come from training,
    ``*_predicted`` from eqs. 15/16 (:func:`predict_mean_and_modes`, damping sign), ``*_reference``
    from the frozen-kernel equation 9 (:func:`predict_linearized`) projected the same way -- the
    exact solution of the continuum dynamics with the initial kernel, without the assumption that
    v_1 is uniform. Arrays have one row per recorded step.
    """

    steps: np.ndarray
    t: np.ndarray
    eigenvalues_over_n: np.ndarray
    mean_observed: np.ndarray
    mean_predicted: np.ndarray
    mean_reference: np.ndarray
    modes_observed: np.ndarray
    modes_predicted: np.ndarray
    modes_reference: np.ndarray
    uniform_overlap: float

    @property
    def n_points(self) -> int:
        return int(self.eigenvalues_over_n.shape[0])

    @property
    def mean_change(self) -> float:
        """|f_bar(T) - f_bar(0)| of the trained network."""
        return float(abs(self.mean_observed[-1] - self.mean_observed[0]))

    @property
    def mean_error(self) -> float:
        """|f_bar_obs(T) - f_bar_eq15(T)| / |f_bar_obs(T) - f_bar_obs(0)| (:func:`~nncosmo_helpers.cosmology.end_deviation`)."""
        return end_deviation(self.mean_observed, self.mean_predicted)

    @property
    def mean_error_reference(self) -> float:
        """|f_bar_obs(T) - f_bar_frozen(T)| / |f_bar_obs(T) - f_bar_obs(0)| (:func:`~nncosmo_helpers.cosmology.end_deviation`)."""
        return end_deviation(self.mean_observed, self.mean_reference)

    def _relative_change(self, series):
        d0 = self.modes_observed[0]
        return (series[-1] - d0) / np.abs(d0)

    @property
    def relative_change_observed(self) -> np.ndarray:
        """(delta_i(T) - delta_i(0)) / |delta_i(0)| per mode, from training."""
        return self._relative_change(self.modes_observed)

    @property
    def relative_change_predicted(self) -> np.ndarray:
        """The same ratio predicted by eq. 16."""
        return self._relative_change(self.modes_predicted)

    @property
    def relative_change_reference(self) -> np.ndarray:
        """The same ratio from the frozen-kernel eq. 9."""
        return self._relative_change(self.modes_reference)

    @property
    def mode_error(self) -> np.ndarray:
        """|delta_obs(T) - delta_eq16(T)| / (sqrt(N) |f_bar_obs(T) - f_bar_obs(0)|) per mode.

        The error of each predicted mode in units of the mean field's own displacement, expressed in
        the same amplitude units (the mean field's coefficient on v_1 is sqrt(N) f_bar).
        """
        scale = np.sqrt(self.n_points) * self.mean_change
        return np.abs(self.modes_observed[-1] - self.modes_predicted[-1]) / scale

    @property
    def mode_error_reference(self) -> np.ndarray:
        """As :attr:`mode_error`, for the frozen-kernel eq. 9."""
        scale = np.sqrt(self.n_points) * self.mean_change
        return np.abs(self.modes_observed[-1] - self.modes_reference[-1]) / scale

    @property
    def mode_displacement(self) -> np.ndarray:
        """|delta_obs(T) - delta_obs(0)| / (sqrt(N) |f_bar_obs(T) - f_bar_obs(0)|): how far each mode
        moved compared with the mean field (the paper's "hierarchical separation")."""
        scale = np.sqrt(self.n_points) * self.mean_change
        return np.abs(self.modes_observed[-1] - self.modes_observed[0]) / scale


def compare_mean_and_modes(modes: Modes, f_observed, steps, *, eta, beta, loss, n_modes: int = 4) -> ModeComparison:
    """Compare a trained trajectory with the mean-field and mode equations (eqs. 14-16).

    Args:
        modes: eigen-decomposition of the NTK at initialisation on the training inputs.
        f_observed: network outputs during training, shape (len(steps), N), row 0 at step 0
            (e.g. ``TrainResult.f``).
        steps: the step number of each row (``TrainResult.steps``).
        eta, beta, loss: the training hyperparameters.
        n_modes: how many perturbation modes (i = 2, ..., n_modes + 1) to keep.

    The eq. 15/16 prediction and the frozen-kernel eq. 9 (kernel V diag(lambda) V^T rebuilt from
    ``modes``) both start from rest at the observed initial outputs.
    """
    n_modes = _validate.integer("n_modes", n_modes, low=1)
    if n_modes > modes.n_points - 1:
        raise ValueError(f"n_modes must be <= N - 1 = {modes.n_points - 1}, got {n_modes}")
    f_obs = np.asarray(_validate.finite_array("f_observed", f_observed), dtype=float)
    steps = _validate.steps(steps)
    if f_obs.ndim != 2 or f_obs.shape != (len(steps), modes.n_points):
        raise ValueError(f"f_observed must have shape ({len(steps)}, {modes.n_points}), got {f_obs.shape}")
    if steps[0] != 0:
        raise ValueError("steps must start at 0 (the initial outputs)")
    fb_obs, d_obs = modes.project(f_obs)
    fb_pred, d_pred = predict_mean_and_modes(modes, f_obs[0], eta=eta, beta=beta, loss=loss, steps=steps)
    vec = np.asarray(modes.eigenvectors)
    kernel = (vec * np.clip(np.asarray(modes.eigenvalues), 0.0, None)) @ vec.T
    f_ref = predict_linearized(0.5 * (kernel + kernel.T), f_obs[0], eta=eta, beta=beta, loss=loss, steps=steps)
    fb_ref, d_ref = modes.project(f_ref)
    k = slice(0, n_modes)
    return ModeComparison(
        steps=steps, t=steps * np.sqrt(eta), eigenvalues_over_n=np.asarray(modes.eigenvalues) / modes.n_points,
        mean_observed=np.asarray(fb_obs), mean_predicted=np.asarray(fb_pred), mean_reference=np.asarray(fb_ref),
        modes_observed=np.asarray(d_obs)[:, k], modes_predicted=np.asarray(d_pred)[:, k],
        modes_reference=np.asarray(d_ref)[:, k], uniform_overlap=modes.uniform_overlap(),
    )


def field_wavenumbers(n_modes, length) -> np.ndarray:
    """Wavenumbers k_j = pi j / length, j = 0, ..., n_modes - 1, of the cosine modes of an interval.

    cos(pi j (x/length + 1/2)) has j nodes on [-length/2, length/2] and zero slope at both ends, so
    k_{i-1} is the wavenumber to compare with an NTK eigenvector v_i that has i - 1 nodes. These are the
    Neumann lattice's wavenumbers, ``lattice.wavenumbers(n_modes, length, "neumann")`` (the one
    definition), as a NumPy array; unlike the lattice, one mode (k = 0 alone) is allowed here.
    """
    n_modes = _validate.integer("n_modes", n_modes, low=1)
    length = _validate.real("length", length, low=0.0, low_open=True)
    # the lattice needs >= 2 nodes for a Neumann grid; the wavenumbers of the first modes do not
    return np.asarray(lattice.wavenumbers(max(n_modes, 2), length, "neumann"))[:n_modes]


def _field_mode_force(y, args):
    k, alpha, loss = args
    phi, modes = y[0], y[1:]
    return jnp.concatenate([-alpha * loss.first(phi)[None], -lattice.mode_mass2(
        k, 0.0, hubble=0.0, loss=loss, coupling=alpha, phi_bar=phi, expanding=False) * modes])


def predict_field_modes(wavenumbers, phi_k_init, *, alpha, phi_init, eta, beta, loss, steps):
    """A homogeneous field and its linear Fourier modes in the dual de Sitter universe (eqs. 18/19).

    Solves, from rest, with 3H = (1 - beta)/sqrt(eta) and V = alpha L (+ V0, which drops out),

        phi'' + 3H phi' + alpha L'(phi) = 0                          (eq. 18 = eq. 7),
        phi_k'' + 3H phi_k' + (k^2 + alpha L''(phi)) phi_k = 0       (eq. 19, Fourier mode k).

    The gradient term enters as +k^2: the Klein-Gordon equation with signature (-,+,+,+) has
    -nabla^2 phi, and -nabla^2 -> +k^2 on a Fourier mode (the paper's eqs. 17/19 print +nabla^2).

    What this is, next to :func:`nncosmo_helpers.lattice.solve_field`: the *linearised* mode equation
    of the paper's eqs. 18/19 as printed, i.e. without a scale factor -- k is the wavenumber at t = 0
    and stays fixed (a = 1 in the mode mass k^2/a^2 + V''). That is on purpose: it is the field-side
    counterpart of eq. 16, whose network masses lambda_i/N L''(f_bar) do not redshift, and it is what
    the paper compares. The lattice solves the full, non-linear eq. 17 on a grid, by default in
    de Sitter with the redshift k/a, a = e^{Ht}; with ``expanding=False`` (a = 1) and a quadratic loss
    (then V'' is constant and eq. 19 is exact) each Neumann lattice mode amplitude obeys this equation
    with the k of :func:`field_wavenumbers` (tests/test_dynamics_definitions.py checks it).

    Returns (phi, phi_k) of shapes (len(steps),) and (len(steps), len(wavenumbers)).
    """
    _validate.require_float64()
    k = np.atleast_1d(np.asarray(_validate.finite_array("wavenumbers", wavenumbers), dtype=float))
    if k.ndim != 1:
        raise ValueError(f"wavenumbers must be a 1-D array, got shape {k.shape}")
    amp = np.broadcast_to(np.asarray(_validate.finite_array("phi_k_init", phi_k_init), dtype=float), k.shape)
    alpha = _validate.real("alpha", alpha, low=0.0)
    phi_init = _validate.real("phi_init", phi_init)
    eta = _validate.eta(eta)
    beta = _validate.beta(beta)
    loss = _validate.polynomial_loss(loss)
    y0 = jnp.concatenate([jnp.asarray([phi_init]), jnp.asarray(amp)])
    ys = _solve_at(_field_mode_force, y0, steps, eta, beta, (jnp.asarray(k), jnp.float64(alpha), loss))
    return ys[:, 0], ys[:, 1:]


# ---------------------------------------------------------------------------------------------
# mean-field couplings of inhomogeneous networks (appendix B, Fig. 6)
# ---------------------------------------------------------------------------------------------
#: The couplings compared in the appendix chapter, in the order they are reported.
MEAN_FIELD_COUPLINGS = ("lambda1/N", "mean Theta", "mean diag Theta")


def mean_field_couplings(kernel, modes: Modes | None = None) -> dict:
    """Candidate homogeneous couplings of an NTK on N points (eqs. 7 and 15).

    * ``"lambda1/N"``: the largest eigenvalue over N, the coupling of eq. 15;
    * ``"mean Theta"``: the mean of all N^2 entries, (1/N^2) sum_ij Theta_ij = u.Theta.u/N with
      u = (1, ..., 1)/sqrt(N). This is the coupling with which the arithmetic mean of the outputs
      moves when the outputs are uniform (f_i = <f> for all i);
    * ``"mean diag Theta"``: the mean of Theta(x_i, x_i), the average one-point alpha of eq. 7.

    Since u.Theta.u <= lambda_1, "mean Theta" <= "lambda1/N", with equality iff u is the leading
    eigenvector.

    lambda_1 is the one of :func:`mode_decomposition` (``modes``, if the caller has it, else computed
    here), so that "lambda1/N" is bit for bit the coupling of :func:`predict_mean_and_modes` (eq. 15).
    """
    k = _validate.kernel(kernel)
    n = k.shape[0]
    if modes is None:
        modes = mode_decomposition(k)
    elif not isinstance(modes, Modes) or modes.n_points != n:
        raise ValueError(f"modes must be the Modes of this ({n}, {n}) kernel")
    lam1 = float(modes.eigenvalues[0])
    return {"lambda1/N": lam1 / n, "mean Theta": float(k.mean()), "mean diag Theta": float(np.mean(np.diag(k)))}


class MeanFieldComparison(NamedTuple):
    """Observed mean evolution of an inhomogeneous network against homogeneous predictions.

    Attributes (arrays over ``steps``):
        observed_mean: the arithmetic mean <f> = sum_i f_i / N of the observed outputs.
        observed_projection: f_bar = v_1.f/sqrt(N) (eq. 14, with delta f orthogonal to v_1).
        couplings: :func:`mean_field_couplings` of the kernel.
        predictions: for each coupling kappa, eq. 7 with alpha = kappa, from rest at observed_mean[0].
        eq15: eq. 15 (lambda_1/N) in its own variable f_bar, from rest at observed_projection[0].
        linearized_mean: the mean of the full frozen-kernel solution of eq. 9 (no mean-field reduction).
        uniform_overlap: |v_1.u|.
    """

    steps: np.ndarray
    observed_mean: np.ndarray
    observed_projection: np.ndarray
    couplings: dict
    predictions: dict
    eq15: np.ndarray
    linearized_mean: np.ndarray
    uniform_overlap: float

    # The absolute end-point errors and excursions below are the numerator and denominator of
    # cosmology.end_deviation (the plots draw them separately); their ratio is relative_end_error.
    @property
    def excursion(self) -> float:
        """|<f>(T) - <f>(0)|: the actual mean evolution over the run."""
        return float(abs(self.observed_mean[-1] - self.observed_mean[0]))

    def _prediction(self, name):
        return self.linearized_mean if name == "linearized" else self.predictions[name]

    def end_error(self, name: str) -> float:
        """|prediction(T) - <f>(T)| for a coupling name or ``"linearized"`` (absolute)."""
        return float(abs(self._prediction(name)[-1] - self.observed_mean[-1]))

    def relative_end_error(self, name: str) -> float:
        """:meth:`end_error` / :attr:`excursion`, the paper's Fig. 3 measure
        (:func:`~nncosmo_helpers.cosmology.end_deviation`; inf when <f> did not move)."""
        return end_deviation(self.observed_mean, self._prediction(name))

    @property
    def eq15_end_error(self) -> float:
        """|eq15(T) - f_bar(T)|, eq. 15 against the network's own projection on v_1 (absolute)."""
        return float(abs(self.eq15[-1] - self.observed_projection[-1]))

    @property
    def projection_excursion(self) -> float:
        """|f_bar(T) - f_bar(0)| of the projection on v_1."""
        return float(abs(self.observed_projection[-1] - self.observed_projection[0]))

    @property
    def eq15_relative_end_error(self) -> float:
        """:attr:`eq15_end_error` / :attr:`projection_excursion` (:func:`~nncosmo_helpers.cosmology.end_deviation`)."""
        return end_deviation(self.observed_projection, self.eq15)

    def to_dict(self) -> dict:
        """A JSON-serialisable form (lists and floats), inverted by :meth:`from_dict`."""
        return {
            "steps": np.asarray(self.steps).tolist(),
            "observed_mean": np.asarray(self.observed_mean).tolist(),
            "observed_projection": np.asarray(self.observed_projection).tolist(),
            "couplings": {k: float(v) for k, v in self.couplings.items()},
            "predictions": {k: np.asarray(v).tolist() for k, v in self.predictions.items()},
            "eq15": np.asarray(self.eq15).tolist(),
            "linearized_mean": np.asarray(self.linearized_mean).tolist(),
            "uniform_overlap": float(self.uniform_overlap),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "MeanFieldComparison":
        arr = lambda v: np.asarray(v, dtype=float)  # noqa: E731
        return cls(np.asarray(d["steps"]), arr(d["observed_mean"]), arr(d["observed_projection"]),
                   {k: float(v) for k, v in d["couplings"].items()},
                   {k: arr(v) for k, v in d["predictions"].items()}, arr(d["eq15"]), arr(d["linearized_mean"]),
                   float(d["uniform_overlap"]))


def compare_mean_field(kernel, f_observed, steps, *, eta, beta, loss, eq15=None) -> MeanFieldComparison:
    """Predict the mean evolution of an inhomogeneous network from its initial NTK (eqs. 7, 9, 15).

    Args:
        kernel: (N, N) NTK on the training points at initialisation.
        f_observed: (T, N) outputs of the trained network at ``steps`` (row 0 = initial outputs).
        steps: the step numbers of the rows.
        eta, beta, loss: the optimiser and the loss used in training.
        eq15: the mean field of :func:`predict_mean_and_modes` for this kernel, ``f_observed[0]`` and
            ``steps``, if the caller has already solved it (otherwise it is solved here).
    """
    f_obs = np.asarray(f_observed, dtype=float)
    k = _validate.kernel(kernel, n_points=f_obs.shape[1])
    modes = mode_decomposition(k)
    mean = f_obs.mean(axis=1)
    proj = np.asarray(modes.project(f_obs)[0])
    couplings = mean_field_couplings(k, modes)
    preds = {
        name: np.asarray(predict_homogeneous(kappa, mean[0], eta=eta, beta=beta, loss=loss, steps=steps))
        for name, kappa in couplings.items()
    }
    if eq15 is None:
        eq15, _ = predict_mean_and_modes(modes, f_obs[0], eta=eta, beta=beta, loss=loss, steps=steps)
    fbar = np.asarray(eq15, dtype=float)
    if fbar.shape != mean.shape:
        raise ValueError(f"eq15 must have shape {mean.shape} (one value per row of f_observed), got {fbar.shape}")
    lin = np.asarray(predict_linearized(k, f_obs[0], eta=eta, beta=beta, loss=loss, steps=steps)).mean(axis=1)
    return MeanFieldComparison(np.asarray(steps), mean, proj, couplings, preds, fbar, lin,
                               modes.uniform_overlap())


# ---------------------------------------------------------------------------------------------
# batched predictions: many configurations in one compiled call (used by the scans)
# ---------------------------------------------------------------------------------------------
def _predict_one(kernel, f_init, ts, gamma, loss):
    return _solve_impl(_linearized_force, f_init, ts, gamma, (kernel, loss))


_predict_batch_jit = jax.jit(jax.vmap(_predict_one))
_iterate_batch_jit = jax.jit(jax.vmap(_iterate_impl, in_axes=(None, 0, 0, 0, 0, 0)))

#: The batched predictions run in chunks of this many configurations (one compilation per shape).
BATCH_CHUNK = 128


def _batch_columns(kernels, f_inits, etas, betas, losses):
    kernels = np.asarray(kernels, dtype=float)
    f_inits = np.asarray(f_inits, dtype=float)
    etas = np.asarray(etas, dtype=float).reshape(-1)
    betas = np.asarray(betas, dtype=float).reshape(-1)
    losses = [_validate.polynomial_loss(lo) for lo in losses]
    C = len(losses)
    if kernels.ndim != 3 or kernels.shape[0] != C or kernels.shape[1] != kernels.shape[2]:
        raise ValueError(f"kernels must have shape (C, N, N) with C = {C} losses, got {kernels.shape}")
    if f_inits.shape != kernels.shape[:2] or etas.shape != (C,) or betas.shape != (C,):
        raise ValueError(f"f_inits must have shape {kernels.shape[:2]} and etas, betas shape ({C},); got "
                         f"{f_inits.shape}, {etas.shape}, {betas.shape}")
    return kernels, f_inits, etas, betas, losses


def _chunks(C, chunk):
    """(rows, padded index) per chunk of ``chunk`` configurations (padding repeats the first row)."""
    for start in range(0, C, chunk):
        rows = np.arange(start, min(start + chunk, C))
        yield rows, np.concatenate([rows, np.full(chunk - len(rows), rows[0])])


def predict_linearized_batch(kernels, f_inits, *, etas, betas, losses, steps, chunk=BATCH_CHUNK):
    """:func:`predict_linearized` (eq. 9; eq. 7 for N = 1) for C configurations, vmapped.

    Args:
        kernels: (C, N, N) NTKs; f_inits: (C, N); etas, betas: (C,); losses: C PolynomialLoss (with
            any mix of exponents, see :meth:`~nncosmo_helpers.loss.PolynomialLoss.stack`).
        steps: step numbers shared by all configurations (t = step sqrt(eta_c)).
        chunk: configurations per compiled call (padded), so that any C reuses one compilation.

    Returns (C, len(steps), N). Same solver and friction as :func:`predict_linearized`.
    """
    from .cosmology import flrw_parameters

    kernels, f_inits, etas, betas, losses = _batch_columns(kernels, f_inits, etas, betas, losses)
    steps = np.asarray(_validate.steps(steps), dtype=float)
    gammas = np.array([flrw_parameters(e, b).friction for e, b in zip(etas, betas)])
    out = np.empty(f_inits.shape[:1] + (len(steps),) + f_inits.shape[1:])
    for rows, idx in _chunks(len(losses), chunk):
        ts = jnp.asarray(steps[None, :] * np.sqrt(etas[idx])[:, None])
        loss = PolynomialLoss.stack([losses[i] for i in idx], jnp.float64)
        ys = _predict_batch_jit(jnp.asarray(kernels[idx]), jnp.asarray(f_inits[idx]), ts, jnp.asarray(gammas[idx]), loss)
        out[rows] = np.asarray(ys)[: len(rows)]
    return out


def iterate_linearized_batch(kernels, f_inits, *, etas, betas, losses, steps, chunk=BATCH_CHUNK):
    """:func:`iterate_linearized` (eq. 2 in function space at a frozen kernel) for C configurations.

    Arguments and result as :func:`predict_linearized_batch`; ``steps`` must be integers.
    """
    kernels, f_inits, etas, betas, losses = _batch_columns(kernels, f_inits, etas, betas, losses)
    steps = _validate.steps(steps)
    if not np.all(steps == np.round(steps)):
        raise ValueError("steps must be integer step numbers for the discrete iteration")
    gaps = jnp.asarray(np.diff(steps.astype(int), prepend=0), jnp.int64)
    out = np.empty(f_inits.shape[:1] + (len(steps),) + f_inits.shape[1:])
    for rows, idx in _chunks(len(losses), chunk):
        loss = PolynomialLoss.stack([losses[i] for i in idx], jnp.float64)
        fs = _iterate_batch_jit(gaps, jnp.asarray(kernels[idx]), jnp.asarray(f_inits[idx]), jnp.asarray(etas[idx]),
                                jnp.asarray(betas[idx]), loss)
        out[rows] = np.asarray(fs)[: len(rows)]
    return out


# ------------------------------------------------------------------------------------------------
# networks that move (issue 12): how far a network travelled towards the loss minimum
# ------------------------------------------------------------------------------------------------
#: Fraction of the way to the loss minimum f0 from which a network counts as "moving", i.e. its run
#: tests the dynamics of eq. 7/9 and not only the initial force. Budget: a model that knows only the
#: initial force alpha L'(f_init) and the friction 3H (a constant-force drift from rest) misses the
#: change of the force along the path. For L = m^2/2 (f - f0)^2 that changes the end point, relative to
#: the displacement, by phi/2 + O(phi^2) in the friction-dominated regime and by phi/6 without friction
#: (the weakest case; n = 4 triples both), phi the fraction travelled. At phi = 0.1 this is 1.7-5 % of
#: the displacement: above the 1 % bar of the claim "excellent agreement" and 17-50 times the one-step
#: lag of the discrete dynamics (1/steps = 0.1 % of the displacement for 1000 steps). Below it a
#: deviation under 1 % can be met by the constant-force drift plus the lag, so such a run does not
#: test eq. 7 beyond its initial force. (tests/test_fig3_moving.py checks the phi/2 and phi/6 limits.)
MOVING_FRACTION = 0.1


def fraction_travelled(f_init, f_end, f0):
    """The fraction of the way to the loss minimum travelled, |f_end - f_init| / |f0 - f_init|.

    Elementwise (NumPy broadcasting): for an input-dependent network pass the outputs per input and
    get one fraction per input, or pass the mean field (eq. 14) for the mean field's fraction; a
    verdict on a whole network uses the max over inputs. 1 means the network reached f0; values
    above 1 mean it overshot (or moved away by more than the distance). NaN where f_init == f0 (no way
    to travel). Network-free: works on recorded outputs of a trained network or on predictions.
    Compare with :data:`MOVING_FRACTION` (or use :func:`is_moving`).
    """
    f_init, f_end, f0 = (np.asarray(a, dtype=float) for a in (f_init, f_end, f0))
    dist = np.abs(f0 - f_init)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(dist > 0, np.abs(f_end - f_init) / np.where(dist > 0, dist, 1.0), np.nan)
    return out[()] if out.ndim == 0 else out


def is_moving(fraction, threshold: float = MOVING_FRACTION):
    """``fraction >= threshold`` (elementwise; NaN counts as not moving): see :data:`MOVING_FRACTION`."""
    fraction = np.asarray(fraction, dtype=float)
    out = np.where(np.isfinite(fraction), fraction >= threshold, False)
    return out[()] if out.ndim == 0 else out
