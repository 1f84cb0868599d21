r"""The error budget of an inhomogeneous network against the continuum eq. 9.

A network trained with momentum descent (eq. 2) differs from the frozen-kernel continuum equation 9,

    f'' + 3H f' + K L'(f)/N = 0,     3H = (1 - beta)/sqrt(eta),   t = i sqrt(eta),   f'(0) = 0,

for two separable reasons, measured here on the same run:

* **continuum**: eq. 2 is a finite-step recursion. With a frozen kernel K (the network's initial NTK)
  and a model linear in its parameters, eq. 2 is exactly the function-space iteration
  f_{i+1} = f_i + beta (f_i - f_{i-1}) - eta K L'(f_i)/N, f_{-1} = f_0
  (:func:`nncosmo_helpers.dynamics.iterate_linearized`); its distance from eq. 9 is the
  time-discretisation error, chiefly the one-step lag of a solution that starts from rest;
* **drift**: the network is not linear in its parameters; its kernel moves during training. Its
  distance from the frozen-kernel iteration, on the same discrete steps, is the effect of that drift.

``total`` (network vs eq. 9) is at most their sum. All three are max over the inputs of the
end-point difference, divided by max over the inputs of the trained network's displacement
|f(T) - f(0)|.

The lag-corrected continuum prediction (:func:`predict_lag_corrected`) removes the leading,
O(sqrt(eta)), part of the discretisation error, so that what remains of ``total_corrected`` is the
drift plus an O(eta) remainder.

Derivation of the lag-corrected continuum equation
--------------------------------------------------
Write h = sqrt(eta), gamma = 3H = (1 - beta)/h (so beta = 1 - gamma h) and F(f) = K L'(f)/N. The
recursion is

    f_{i+1} - f_i - (1 - gamma h)(f_i - f_{i-1}) + h^2 F(f_i) = 0 .

*Modified equation.* Let a smooth g(t) interpolate the iterates, f_i = g(ih), and Taylor-expand
g(t +- h) around t = ih. With A = g(t+h) - g(t) and B = g(t) - g(t-h),

    A - B = h^2 g'' + h^4 g''''/12 + ...,     gamma h B = gamma h^2 g' - gamma h^3 g''/2 + gamma h^4 g'''/6 + ...,

so dividing the recursion by h^2,

    (1 - gamma h/2) g'' + gamma g' + F(g) = O(h^2),     1 - gamma h/2 = (1 + beta)/2 .

The plain eq. 9 drops the gamma h/2 = (1 - beta)/2 correction of the inertia: an O(h) error in the
equation. (Since F is evaluated at f_i exactly, the expansion holds for any loss, not only a
quadratic one.)

*Initial velocity.* The recursion starts with f_{-1} = f_0 (theta_{-1} = theta_0), so its first
step is f_1 = f_0 - h^2 F(f_0): it moves at once, while eq. 9 starts from rest. Matching
g(-h) = f_0 in the Taylor series gives g'(0) = h g''(0)/2 + O(h^2) = -h F(f_0)/2 + O(h^2). The
O(h^2) part is fixed by the one case that is solvable exactly on both sides, a constant force F:
the heavy ball from rest reaches the terminal motion f_i = f_0 - (F/gamma)(ih - beta/gamma) (lag
beta/gamma = 1/gamma - h in time), and the modified equation from g'(0) = v reaches
g = f_0 - (F/gamma)(t - (1 + gamma v/F)(1 + beta)/(2 gamma)). The two lags agree for

    g'(0) = -sqrt(eta) F(f_0)/(1 + beta),

which is -h F/2 + O(h^2), consistent with the Taylor argument, and exact in beta: it removes the
one-step lag also at beta = 0, where gamma h = 1 is not small. (With -h F/2 the lag would be off
by h (1 - beta)/4, a quarter step at beta = 0.)

*The corrected prediction* is therefore

    ((1 + beta)/2) g'' + 3H g' + K L'(g)/N = 0,   g(0) = f_0,   g'(0) = -sqrt(eta) K L'(f_0)/(N (1 + beta)).

Its slow relaxation rate is that of the recursion to second order: for a quadratic loss and an
eigen-direction with K L''/N = k, the recursion's root near 1 is z = 1 - e - e^2 beta/(1-beta) + ...
with e = eta k/(1 - beta), i.e. the rate e + e^2 (1+beta)/(2(1-beta)) per step, which is also
h s for the slow root s of the modified equation; eq. 9 misses the e^2/2 term. Hence:

* at fixed friction (beta = 1 - 3H sqrt(eta), a fixed continuum problem, eq. 9's limit), the plain
  continuum error is O(sqrt(eta)) and the corrected one O(eta);
* at fixed beta and fixed continuum time T, the plain error is the lag sqrt(eta)/T (exponent 1 in
  sqrt(eta)) and the corrected one is of relative order e, proportional to eta (exponent 2).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate, cosmology, dynamics, ensemble, odes
from ..ensemble import SeedSpread
from ..loss import PolynomialLoss
from ..train import train_momentum


# ---------------------------------------------------------------------------------------------
# the lag-corrected continuum prediction
# ---------------------------------------------------------------------------------------------
def _corrected_impl(kernel, f_init, ts, eta, beta, gamma, loss):
    """gamma = 3H: :attr:`cosmology.FLRWParameters.friction`, computed by the caller (outside the jit)."""
    inertia = 0.5 * (1.0 + beta)

    def force(t, y, args):  # K grad_f L = K L'(f)/N: the loss module's gradient of the dataset loss (eq. 3)
        return -(kernel @ loss.grad_f(y)) / inertia

    def friction(t, y, v, args):
        return gamma / inertia

    v0 = -jnp.sqrt(eta) * (kernel @ loss.grad_f(f_init)) / (1.0 + beta)
    y, _ = odes.solve_second_order(force, f_init, v0, ts, friction)
    return y


_corrected_jit = jax.jit(_corrected_impl)


def _check_problem(kernel, f_init, eta, beta, loss, steps):
    eta = _validate.eta(eta)
    beta = _validate.beta(beta)
    if not isinstance(loss, PolynomialLoss):
        raise TypeError(f"loss must be a nncosmo_helpers.loss.PolynomialLoss, got {type(loss).__name__}")
    f_init = np.atleast_1d(_validate.finite_array("f_init", f_init))
    if f_init.ndim == 2 and f_init.shape[1] == 1:
        f_init = f_init[:, 0]
    if f_init.ndim != 1:
        raise ValueError(f"f_init must have shape (N,), got {f_init.shape}")
    kernel = _validate.kernel(kernel, n_points=f_init.shape[0])
    return kernel, f_init, eta, beta, loss, _validate.steps(steps)


def predict_lag_corrected(kernel, f_init, *, eta, beta, loss, steps):
    """The lag-corrected continuum limit of eq. 2 with a frozen kernel (see the module docstring).

    Solves ((1 + beta)/2) f'' + (1 - beta)/sqrt(eta) f' + K L'(f)/N = 0 with f(0) = f_init and
    f'(0) = -sqrt(eta) K L'(f_init)/(N (1 + beta)): eq. 9 with the inertia and the initial velocity of
    the two-step recursion. Arguments and return value as
    :func:`nncosmo_helpers.dynamics.predict_linearized` (shape (len(steps), N)).
    """
    kernel, f_init, eta, beta, loss, steps = _check_problem(kernel, f_init, eta, beta, loss, steps)
    ts = jnp.asarray(steps * np.sqrt(eta))
    gamma = cosmology.flrw_parameters(eta, beta).friction
    return _corrected_jit(jnp.asarray(kernel), jnp.asarray(f_init), ts, jnp.float64(eta), jnp.float64(beta),
                          jnp.float64(gamma), loss)


# ---------------------------------------------------------------------------------------------
# the error budget of one trained network
# ---------------------------------------------------------------------------------------------
class ErrorBudget(NamedTuple):
    """End points of a trained network and of its three frozen-kernel predictions (eqs. 2, 9).

    Arrays of shape (N,) unless stated: ``f_initial`` and ``f_network`` (the trained network at step
    0 and at ``steps``), ``f_discrete`` (eq. 2 in function space with the initial kernel,
    :func:`~nncosmo_helpers.dynamics.iterate_linearized`), ``f_continuum`` (eq. 9,
    :func:`~nncosmo_helpers.dynamics.predict_linearized`), ``f_corrected`` (:func:`predict_lag_corrected`);
    ``kernel_initial``, ``kernel_final`` (N, N): the empirical NTK before and after training (``kernel_final``
    is None for the runs of a batched :func:`error_budget_grid`, which does not need it);
    ``eigenvalues_over_n``: lambda_i/N of the initial kernel, descending; ``kappa``: the freezing
    numbers kappa_i = (lambda_i/N) L''(f_bar(0)) T/(3H) of the perturbations chapter at the initial mean
    field f_bar(0) = v_1 . f_initial/sqrt(N) (:func:`~nncosmo_helpers.dynamics.freezing_numbers`; a mode
    with kappa_i << 1 barely moves); ``eta``, ``beta``, ``steps``: the run.

    The budget is made of properties (floats), all relative to :attr:`displacement`.
    """

    f_initial: np.ndarray
    f_network: np.ndarray
    f_discrete: np.ndarray
    f_continuum: np.ndarray
    f_corrected: np.ndarray
    kernel_initial: np.ndarray
    kernel_final: np.ndarray
    eigenvalues_over_n: np.ndarray
    kappa: np.ndarray
    eta: float
    beta: float
    steps: int

    @property
    def displacement(self) -> float:
        """max over inputs of |f(T) - f(0)| of the trained network: the unit of the budget."""
        return float(np.max(np.abs(self.f_network - self.f_initial)))

    def _rel(self, a, b) -> float:
        """max over inputs of |a - b| / :attr:`displacement`: issue 12's error-budget definition (kept on purpose)."""
        return float(np.max(np.abs(a - b))) / self.displacement

    @property
    def total(self) -> float:
        """Trained network vs eq. 9 with the initial kernel."""
        return self._rel(self.f_network, self.f_continuum)

    @property
    def continuum(self) -> float:
        """Frozen-kernel discrete iteration (eq. 2 in function space) vs eq. 9: the discretisation error."""
        return self._rel(self.f_discrete, self.f_continuum)

    @property
    def drift(self) -> float:
        """Trained network vs the frozen-kernel discrete iteration: the effect of the kernel's drift."""
        return self._rel(self.f_network, self.f_discrete)

    @property
    def continuum_corrected(self) -> float:
        """Frozen-kernel discrete iteration vs the lag-corrected continuum prediction (next order)."""
        return self._rel(self.f_discrete, self.f_corrected)

    @property
    def total_corrected(self) -> float:
        """Trained network vs the lag-corrected continuum prediction."""
        return self._rel(self.f_network, self.f_corrected)

    @property
    def kernel_drift(self) -> float:
        """||K_T - K_0||_F / ||K_0||_F, the relative drift of the empirical NTK over training."""
        return float(np.linalg.norm(self.kernel_final - self.kernel_initial) / np.linalg.norm(self.kernel_initial))


def error_budget(apply_fn, params, x, *, eta, beta, loss, steps, run=None) -> ErrorBudget:
    """Train a network with eq. 2 and split its distance from eq. 9 into discretisation and drift.

    The network is trained with :func:`nncosmo_helpers.train.train_momentum` (full batch, from rest,
    ``steps`` steps; a diverging run raises ``TrainingDiverged``). With its initial empirical NTK K
    and initial outputs, the end point (step ``steps``, t = steps sqrt(eta)) is predicted three ways:
    eq. 9 (:func:`~nncosmo_helpers.dynamics.predict_linearized`), the function-space iteration of eq. 2
    (:func:`~nncosmo_helpers.dynamics.iterate_linearized`) and the lag-corrected continuum limit
    (:func:`predict_lag_corrected`). See :class:`ErrorBudget` for the measures.

    Args:
        apply_fn, params: the network (e.g. from :func:`~nncosmo_helpers.network.mlp`).
        x: training inputs, shape (N, d).
        eta, beta: learning rate (> 0) and momentum (in [0, 1)).
        loss: a :class:`~nncosmo_helpers.loss.PolynomialLoss`.
        steps: number of training steps, >= 1.
        run: optional: the :class:`~nncosmo_helpers.train.TrainResult` of exactly this training, already
            computed with ``compute_ntk=True`` (any ``record_every``); it is used instead of training again.
    """
    steps = _validate.integer("steps", steps, low=1)
    if run is None:
        run = train_momentum(apply_fn, params, x, eta=eta, beta=beta, loss=loss, steps=steps, record_every=steps)
    elif int(np.asarray(run.steps)[-1]) != steps or run.ntk_initial is None or run.ntk_final is None:
        raise ValueError(f"the given run must end at step {steps} and carry its initial and final NTK")
    return _budget(run.f[0], run.f[-1], run.ntk_initial, run.ntk_final, eta=eta, beta=beta, loss=loss, steps=steps)


def _budget(f_init, f_end, k0, k_final, *, eta, beta, loss, steps) -> ErrorBudget:
    """:class:`ErrorBudget` of a network that went from ``f_init`` to ``f_end`` in ``steps`` steps of eq. 2,
    with initial (final) empirical NTK ``k0`` (``k_final``, may be None)."""
    f0 = np.asarray(f_init, dtype=float)
    k0 = np.asarray(k0, dtype=float)
    k0 = 0.5 * (k0 + k0.T)
    marks = [0, steps]
    f_cont = np.asarray(dynamics.predict_linearized(k0, f0, eta=eta, beta=beta, loss=loss, steps=marks))[-1]
    f_disc = np.asarray(dynamics.iterate_linearized(k0, f0, eta=eta, beta=beta, loss=loss, steps=marks))[-1]
    f_corr = np.asarray(predict_lag_corrected(k0, f0, eta=eta, beta=beta, loss=loss, steps=marks))[-1]
    # the spectrum of an N x N kernel (N = number of inputs, tens): eigh's eigenvectors cost nothing measurable
    md = dynamics.mode_decomposition(k0)
    lam_n = np.asarray(md.eigenvalues) / k0.shape[0]
    # kappa at the initial mean field f_bar(0) = v_1 . f(0)/sqrt(N) (eq. 14), dynamics.freezing_numbers
    kappa = dynamics.freezing_numbers(lam_n, float(md.project(f0)[0]), loss=loss, eta=eta, beta=beta, steps=steps)
    return ErrorBudget(
        f_initial=f0, f_network=np.asarray(f_end, dtype=float), f_discrete=f_disc, f_continuum=f_cont,
        f_corrected=f_corr, kernel_initial=k0, kernel_final=None if k_final is None else np.asarray(k_final, dtype=float),
        eigenvalues_over_n=lam_n, kappa=kappa, eta=float(eta), beta=float(beta), steps=int(steps),
    )


# ---------------------------------------------------------------------------------------------
# the budget on an (eta, width) grid, and its exponents
# ---------------------------------------------------------------------------------------------
class Exponent(NamedTuple):
    """A power law fitted line by line (least squares in log-log), one slope per line.

    ``slopes`` and ``stderr`` have one entry per fitted line (the other grid axes, flattened: seeds and
    the other grid parameter). ``lines`` is their :class:`~nncosmo_helpers.ensemble.SeedSpread` (median,
    smallest, largest: the book's one definition of a spread, here over seeds and grid lines);
    ``median`` and ``spread`` (the full range, largest - smallest) are its; ``max_stderr`` is the largest
    standard error of a single fit.
    """

    slopes: np.ndarray
    stderr: np.ndarray

    @property
    def lines(self) -> SeedSpread:
        return ensemble.spread(self.slopes)

    @property
    def median(self) -> float:
        return self.lines.median

    @property
    def spread(self) -> float:
        """The full range of the slopes over the lines (``lines.spread``)."""
        return self.lines.spread

    @property
    def max_stderr(self) -> float:
        return float(np.max(self.stderr))


def _fit_slopes(x, y):
    """Slopes of log y against log x along the first axis of ``y`` (shape (len(x), ...))."""
    lx = np.log(np.asarray(x, dtype=float))
    ly = np.log(np.asarray(y, dtype=float)).reshape(len(lx), -1)
    design = np.stack([lx, np.ones_like(lx)], axis=1)
    coef, *_ = np.linalg.lstsq(design, ly, rcond=None)
    resid = ly - design @ coef
    dof = max(len(lx) - 2, 1)
    sxx = np.sum((lx - lx.mean()) ** 2)
    stderr = np.sqrt(np.sum(resid**2, axis=0) / dof / sxx)
    return Exponent(slopes=coef[0], stderr=stderr)


class ErrorBudgetGrid(NamedTuple):
    """:func:`error_budget` on an (eta, width, seed) grid at fixed continuum problem.

    ``etas``, ``betas`` (beta = 1 - friction sqrt(eta): the same friction 3H for every eta),
    ``steps`` (duration/sqrt(eta)), ``widths``, ``seeds``: the grid. Arrays of shape
    (len(etas), len(widths), len(seeds)): ``continuum``, ``continuum_corrected``, ``drift``,
    ``total`` (the :class:`ErrorBudget` properties), ``displacement`` (its unit) and ``kappa1`` (the
    mean field's freezing number; about 1 means the network travels a good part of the way).
    """

    etas: np.ndarray
    betas: np.ndarray
    steps: np.ndarray
    widths: np.ndarray
    seeds: np.ndarray
    continuum: np.ndarray
    continuum_corrected: np.ndarray
    drift: np.ndarray
    total: np.ndarray
    displacement: np.ndarray
    kappa1: np.ndarray

    @property
    def continuum_exponent(self) -> Exponent:
        """Exponent of the continuum part in sqrt(eta), one fit per (width, seed); theory: 1."""
        return _fit_slopes(np.sqrt(self.etas), self.continuum)

    @property
    def corrected_exponent(self) -> Exponent:
        """Exponent of the lag-corrected continuum part in sqrt(eta), per (width, seed); theory: 2."""
        return _fit_slopes(np.sqrt(self.etas), self.continuum_corrected)

    @property
    def drift_exponent(self) -> Exponent:
        """Exponent of the drift part in the width, one fit per (eta, seed)."""
        return _fit_slopes(self.widths, np.moveaxis(self.drift, 1, 0))

    @property
    def drift_exponent_pooled(self) -> Exponent:
        """One fit of log drift against log width through every run (all etas and seeds): its
        standard error carries the seed-to-seed scatter, which the per-line fits cannot."""
        w = np.broadcast_to(self.widths[None, :, None], self.drift.shape).ravel()
        return _fit_slopes(w, self.drift.ravel())

    @property
    def next_order_ratio(self) -> float:
        """max over the grid of continuum_corrected/continuum: the size of the next-order term
        relative to the leading one, i.e. how far the local exponent of ``continuum`` may sit from 1."""
        return float(np.max(self.continuum_corrected / self.continuum))


def error_budget_grid(x, *, etas, widths, seeds, friction, duration, loss, batched=True, **mlp_kwargs) -> ErrorBudgetGrid:
    """Measure :func:`error_budget` over learning rates, widths and seeds on one continuum problem.

    Every run has the same friction 3H = ``friction`` (beta = 1 - friction sqrt(eta)) and the same
    continuum duration T = ``duration`` (steps = round(T/sqrt(eta))), so eq. 9 and the interval in
    Hubble lengths are the same for every eta: only the step and the width change. Networks come
    from :func:`nncosmo_helpers.network.mlp` (``mlp_kwargs``: hidden_layers, activation, W_std,
    b_std) initialised with ``jax.random.PRNGKey(seed)``; the same initial network is trained at
    every eta.

    ``batched=True`` trains all seeds and learning rates of one width together
    (:func:`~nncosmo_helpers.train.train_optax_batch` with the heavy ball of eq. 2,
    :func:`~nncosmo_helpers.optimizers.de_sitter_momentum`), every run for the largest number of
    steps, and reads each run at its own step count: one compilation per width instead of one per
    (width, eta), at the price of training the shorter runs past their end (len(etas) max(steps) /
    sum(steps) times the work). That is the cheaper choice when compilation dominates (short ladders,
    the quick profile); ``batched=False`` trains each run on its own with
    :func:`~nncosmo_helpers.train.train_momentum`. Both give the same numbers up to float64 rounding.
    In the grid the final kernels are not computed (``kernel_final`` is None in batched mode).
    """
    from .. import network  # experiments sit above the networks
    from ..ntk import empirical_ntk
    from ..optimizers import de_sitter_momentum
    from ..train import train_optax_batch

    etas = np.asarray([_validate.eta(e) for e in etas], dtype=float)
    betas = 1.0 - float(friction) * np.sqrt(etas)
    if np.any(betas < 0) or np.any(betas >= 1):
        raise ValueError(f"friction * sqrt(eta) must lie in (0, 1] for every eta, got {1 - betas}")
    steps = np.rint(float(duration) / np.sqrt(etas)).astype(int)
    widths = np.asarray(widths, dtype=int)
    seeds = np.asarray(seeds, dtype=int)
    shape = (len(etas), len(widths), len(seeds))
    out = {name: np.empty(shape) for name in ("continuum", "continuum_corrected", "drift", "total",
                                              "displacement", "kappa1")}
    for j, width in enumerate(widths):
        init_fn, apply_fn = network.mlp(width=int(width), **mlp_kwargs)
        params = [init_fn(jax.random.PRNGKey(int(seed)), x.shape[1]) for seed in seeds]
        if batched:  # rows: seed-major, then eta
            stacked = jax.tree_util.tree_map(lambda *p: jnp.stack(p), *[p for p in params for _ in etas])
            hp = {"eta": np.tile(etas, len(seeds)), "beta": np.tile(betas, len(seeds))}
            f_all, _ = train_optax_batch(apply_fn, stacked, x, optimizer=de_sitter_momentum, hyperparams=hp,
                                         loss=loss, steps=int(steps.max()), record_every=1)
            f_all = np.asarray(f_all)[..., 0] if np.ndim(f_all) == 4 else np.asarray(f_all)
        for s, seed in enumerate(seeds):
            k0 = empirical_ntk(apply_fn, params[s], x) if batched else None
            for i, (eta, beta, n) in enumerate(zip(etas, betas, steps)):
                if batched:
                    f = f_all[s * len(etas) + i, : n + 1]
                    if not np.all(np.isfinite(f)):
                        raise FloatingPointError(f"the run eta={eta:g}, width {width}, seed {seed} diverged")
                    b = _budget(f[0], f[n], k0, None, eta=eta, beta=beta, loss=loss, steps=int(n))
                else:
                    b = error_budget(apply_fn, params[s], x, eta=eta, beta=beta, loss=loss, steps=int(n))
                for name in ("continuum", "continuum_corrected", "drift", "total", "displacement"):
                    out[name][i, j, s] = getattr(b, name)
                out["kappa1"][i, j, s] = b.kappa[0]
    return ErrorBudgetGrid(etas=etas, betas=betas, steps=steps, widths=widths, seeds=seeds, **out)


def join_widths(grids) -> ErrorBudgetGrid:
    """One :class:`ErrorBudgetGrid` from grids that differ only in their widths (e.g. one per width, as
    the stored scan ``pt-error-budget`` keeps them), widths in the given order."""
    grids = list(grids)
    if not grids:
        raise ValueError("no grid to join")
    first = grids[0]
    for g in grids[1:]:
        for name in ("etas", "betas", "steps", "seeds"):
            if not np.array_equal(getattr(g, name), getattr(first, name)):
                raise ValueError(f"the grids differ in {name}: only the widths may differ")
    per_run = ("continuum", "continuum_corrected", "drift", "total", "displacement", "kappa1")
    return first._replace(widths=np.concatenate([g.widths for g in grids]),
                          **{name: np.concatenate([getattr(g, name) for g in grids], axis=1) for name in per_run})
