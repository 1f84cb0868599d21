"""Width and precision (chapter "Width and precision"): alpha over seeds, kernel drift, float32 rounding.

* :func:`alpha_at_init` -- alpha = Theta(x0, x0) (eq. 7) for many initialisations;
* :func:`kernel_drift` -- alpha before and after training with eq. 2, one network per seed;
* :func:`update_rounding`, :func:`lost_kernel_fraction` -- which updates of eq. 2 float32 rounds away;
* :func:`precision_maps` -- the eq. 7 deviation over an (eta, beta) grid in float64 and float32.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate, dynamics, network, ntk
from ..ntk import empirical_ntk
from ..optimizers import de_sitter_momentum
from ..train import optax_trajectory, train_optax_batch


def _alpha_seeds_impl(apply_fn, init_fn, input_dim, keys, x0):
    def one(key):
        return empirical_ntk(apply_fn, init_fn(key, input_dim), x0)[0, 0]

    return jax.lax.map(one, keys)


_alpha_seeds = jax.jit(_alpha_seeds_impl, static_argnums=(0, 1, 2))


def alpha_at_init(apply_fn, init_fn, keys, x0):
    """alpha = Theta(x0, x0) (eq. 7) for one initialisation per key, shape (len(keys),).

    The initialisations are drawn and evaluated one after the other inside one jitted ``lax.map``,
    so memory stays that of a single network whatever the number of seeds. ``init_fn`` must be
    hashable (the ``init_fn`` of :func:`~nncosmo_helpers.network.mlp` is a closure: wrap the pair in
    a module-level function or pass the same object every time).
    """
    _validate.require_float64()
    x0 = _validate.single_point("x0", x0)
    return np.asarray(_alpha_seeds(apply_fn, init_fn, int(x0.shape[1]), jnp.asarray(keys), x0))


def _rounding_inputs(apply_fn, params, x, loss, dtype):
    """What :func:`update_rounding` needs from the network, independent of beta: the flat gradient
    df/dtheta_j, the ulp of every parameter in ``dtype`` and L'(f) (one backward pass)."""
    p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
    jac = jax.grad(lambda p: apply_fn(p, x)[0, 0])(p64)
    f = apply_fn(p64, x)[0, 0]
    lprime = float(loss.first(f))
    leaves_j = np.concatenate([np.ravel(np.asarray(a)) for a in jax.tree_util.tree_leaves(jac)])
    leaves_p = np.concatenate([np.ravel(np.asarray(a)) for a in jax.tree_util.tree_leaves(p64)])
    ulp = np.spacing(np.abs(leaves_p.astype(np.dtype(dtype)))).astype(np.float64)
    return leaves_j, ulp, lprime


def _thresholds(inputs, beta):
    """(eta_j, w_j) of :func:`update_rounding` from :func:`_rounding_inputs` at momentum ``beta``."""
    leaves_j, ulp, lprime = inputs
    g = np.abs(lprime * leaves_j)  # dataset loss of one point: dL/dtheta = L'(f) df/dtheta
    with np.errstate(divide="ignore"):
        eta_j = np.where(g > 0, (1.0 - beta) * ulp / (2.0 * g), np.inf)
    w = leaves_j**2 / np.sum(leaves_j**2)
    return eta_j, w


def update_rounding(apply_fn, params, x, *, loss, beta, dtype=jnp.float32):
    """Where the updates of eq. 2 fall below the resolution of ``dtype`` (float32 by default).

    An update Delta theta_j is lost in ``theta_j + Delta theta_j`` when |Delta theta_j| < ulp(theta_j)/2.
    With a slowly varying gradient, momentum descent moves at the terminal step
    |Delta theta_j| = eta |g_j|/(1 - beta), so parameter j stops moving below the learning rate

        eta_j = (1 - beta) ulp(theta_j) / (2 |g_j|),    g_j = dL/dtheta_j at the initialisation.

    The output moves as f' = sum_j (df/dtheta_j) theta_j' with theta_j' proportional to df/dtheta_j,
    so parameter j carries the share w_j = (df/dtheta_j)^2 / alpha of the kernel alpha = sum (df/dtheta_j)^2
    (for one input point). Returns ``(eta_j, w_j)`` as flat float64 arrays; the lost share of the
    kernel at learning rate eta is ``sum(w_j[eta < eta_j])`` (:func:`lost_kernel_fraction`).
    """
    _validate.require_float64()
    beta = _validate.beta(beta)
    x = _validate.single_point("x", x)
    return _thresholds(_rounding_inputs(apply_fn, params, x, loss, dtype), beta)


def lost_kernel_fraction(eta, eta_j, w, *, rounding="nearest"):
    """Share of the kernel that the rounded updates fail to transmit at learning rate(s) ``eta``.

    With u_j = eta/(2 eta_j) = |Delta theta_j|/ulp(theta_j) (see :func:`update_rounding`):

    * ``rounding="threshold"``: parameters with u_j < 1/2 are frozen, the rest move exactly;
      returns sum of w_j over the frozen ones;
    * ``rounding="nearest"`` (default): every step is rounded to the nearest multiple of the ulp, so
      parameter j moves by round(u_j)/u_j of its intended step (0 below half an ulp, up to twice it
      between half and one ulp); returns 1 - sum_j w_j round(u_j)/u_j, which can be negative.
    """
    if rounding not in ("nearest", "threshold"):
        raise ValueError(f"rounding must be 'nearest' or 'threshold', got {rounding!r}")
    eta = np.atleast_1d(np.asarray(eta, float))
    # in blocks of learning rates, so that memory stays ~_BLOCK_ELEMENTS floats whatever the parameter count
    rows = max(1, _BLOCK_ELEMENTS // max(1, eta_j.size))
    return np.concatenate([_lost_block(eta[k:k + rows], eta_j, w, rounding) for k in range(0, eta.size, rows)])


#: The largest (learning rates x parameters) block :func:`lost_kernel_fraction` holds at once.
_BLOCK_ELEMENTS = 2**22


def _lost_block(eta, eta_j, w, rounding):
    u = eta[:, None] / (2.0 * eta_j[None, :])
    if rounding == "threshold":
        moved = (u >= 0.5).astype(float)
    else:
        moved = np.where(u > 0, np.round(u) / np.where(u > 0, u, 1.0), 0.0)
    return 1.0 - moved @ w


class PrecisionMaps(NamedTuple):
    """Result of :func:`precision_maps`: ``dev64``, ``dev32`` (len(betas), len(etas)) relative end-point
    deviations from eq. 7, the end outputs ``f64``, ``f32``, the predictions ``pred``, and the
    float64 ``alpha`` and ``f_init`` at initialisation."""

    etas: np.ndarray
    betas: np.ndarray
    dev64: np.ndarray
    dev32: np.ndarray
    f64: np.ndarray
    f32: np.ndarray
    pred: np.ndarray
    alpha: float
    f_init: float

    def onsets(self, level=0.01) -> np.ndarray:
        """Per beta, the learning rate below which the float32 deviation first exceeds ``level``
        (the :func:`crossing` of ``dev32`` along eta)."""
        return np.array([crossing(self.etas, self.dev32[k], level) for k in range(len(self.betas))])


def precision_maps(*, width, arch, x, loss, etas, betas, steps, seed=0) -> PrecisionMaps:
    """Relative end-point deviation of eq. 7 over an (eta, beta) grid, in float64 and in float32.

    One network (:func:`~nncosmo_helpers.network.mlp` with ``width`` and the keyword arguments
    ``arch``, initialised with ``PRNGKey(seed)``) is trained with momentum descent (eq. 2) for
    ``steps`` steps at every grid point, once in float64 and once cast to float32 (one vmapped,
    jitted run per precision). The prediction of eq. 7 is always float64, from the float64 alpha and
    output at initialisation. The deviation is |f_pred(t_max) - f(t_max)| / |f_pred(t_max) - f(0)|
    (relative to the predicted distance travelled, the same denominator for both precisions).

    Returns a :class:`PrecisionMaps`.
    """
    _validate.require_float64()
    etas = np.asarray(etas, float)
    betas = np.asarray(betas, float)
    init64, apply64 = network.mlp(width=width, **arch)
    _, apply32 = network.mlp(width=width, **arch, dtype=jnp.float32)
    x = jnp.asarray(x)
    params = init64(jax.random.PRNGKey(seed), x.shape[1])
    E, B = np.meshgrid(etas, betas)
    hp = {"eta": E.ravel(), "beta": B.ravel()}
    ends = {}
    for name, apply_fn, p in (("f64", apply64, params), ("f32", apply32, network.cast(params, jnp.float32))):
        batch = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (E.size,) + a.shape), p)
        fs, _ = train_optax_batch(apply_fn, batch, x, optimizer=de_sitter_momentum, hyperparams=hp, loss=loss, steps=steps,
                                  record_every=steps)
        ends[name] = np.asarray(fs[:, -1, 0], float).reshape(E.shape)
    alpha = float(empirical_ntk(apply64, params, x)[0, 0])
    f_init = float(apply64(params, x)[0, 0])
    pred = np.array([
        float(dynamics.predict_homogeneous(alpha, f_init, eta=e, beta=b, loss=loss, steps=[0, steps])[-1])
        for e, b in zip(E.ravel(), B.ravel())
    ]).reshape(E.shape)
    travel = np.abs(pred - f_init)
    return PrecisionMaps(etas, betas, np.abs(pred - ends["f64"]) / travel, np.abs(pred - ends["f32"]) / travel,
                         ends["f64"], ends["f32"], pred, alpha, f_init)


def crossing(x, y, level):
    """The x at which y first falls below ``level`` (y sampled at increasing x), interpolated
    linearly in log x and log y; nan if it never does, x[0] if it starts below."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    below = np.nonzero(y < level)[0]
    if below.size == 0:
        return float("nan")
    k = int(below[0])
    if k == 0:
        return float(x[0])
    lx, ly = np.log(x[k - 1 : k + 1]), np.log(np.maximum(y[k - 1 : k + 1], 1e-300))
    return float(np.exp(lx[0] + (np.log(level) - ly[0]) * (lx[1] - lx[0]) / (ly[1] - ly[0])))


def _drift_impl(apply_fn, init_fn, input_dim, steps, keys, x, eta, beta, loss):
    def one(key):
        p = init_fn(key, input_dim)
        a0 = empirical_ntk(apply_fn, p, x)[0, 0]
        fs, _, p_end = optax_trajectory(apply_fn, de_sitter_momentum, steps, steps, p, x, {"eta": eta, "beta": beta}, loss)
        return a0, empirical_ntk(apply_fn, p_end, x)[0, 0], fs[0, 0], fs[-1, 0]

    return jax.lax.map(one, keys)


_drift = jax.jit(_drift_impl, static_argnums=(0, 1, 2, 3))


class KernelDrift(NamedTuple):
    """Arrays over the keys of :func:`kernel_drift`: alpha at step 0 and at the end, output at both ends."""

    alpha0: np.ndarray
    alpha_end: np.ndarray
    f_init: np.ndarray
    f_end: np.ndarray


def kernel_drift(apply_fn, init_fn, keys, x, *, eta, beta, loss, steps) -> KernelDrift:
    """Train one homogeneous network per key with eq. 2 and return the kernel at both ends.

    All initialisations run one after the other in a single jitted ``lax.map`` (one compilation per
    architecture, the memory of one network). Returns a :class:`KernelDrift` of arrays over keys:
    ``alpha0``, ``alpha_end`` (alpha = Theta(x, x) at step 0 and at ``steps``), ``f_init`` and ``f_end``.
    ``init_fn`` must be hashable (pass the same object for every call).
    """
    _validate.require_float64()
    eta = _validate.eta(eta)
    beta = _validate.beta(beta)
    steps = _validate.integer("steps", steps, low=1)
    x = _validate.single_point("x", x)
    a0, a1, f0, f1 = _drift(apply_fn, init_fn, int(x.shape[1]), steps, jnp.asarray(keys), x, jnp.float64(eta),
                            jnp.float64(beta), loss)
    return KernelDrift(np.asarray(a0), np.asarray(a1), np.asarray(f0), np.asarray(f1))


# ---------------------------------------------------------------------------------------------
# the chapter's three experiments, one call each
# ---------------------------------------------------------------------------------------------
class AlphaScan(NamedTuple):
    """alpha = Theta(x0, x0) at initialisation (eq. 7) for ``alphas.shape[1]`` seeds per width, with the
    infinite-width value ``alpha_inf``. Metrics as properties."""

    widths: np.ndarray
    alphas: np.ndarray  # (len(widths), seeds)
    alpha_inf: float

    @property
    def std(self) -> np.ndarray:
        """Seed standard deviation of alpha per width (ddof = 1)."""
        return self.alphas.std(axis=1, ddof=1)

    @property
    def fit(self) -> np.ndarray:
        """Least-squares line of log std(alpha) against log width: (slope, intercept)."""
        return np.polyfit(np.log(self.widths), np.log(self.std), 1)

    @property
    def sem(self) -> np.ndarray:
        """Standard error of the seed mean per width."""
        return self.std / np.sqrt(self.alphas.shape[1])

    @property
    def max_bias_sigma(self) -> float:
        """Largest |mean alpha - alpha_inf| over the widths, in standard errors."""
        return float(np.max(np.abs(self.alphas.mean(axis=1) - self.alpha_inf) / self.sem))


def alpha_width_scan(widths, n_seeds, *, arch, x0) -> AlphaScan:
    """:func:`alpha_at_init` for ``n_seeds`` initialisations (keys split from ``PRNGKey(width)``) per width
    of :func:`~nncosmo_helpers.network.mlp` (further keyword arguments ``arch``), and the infinite-width
    alpha of the same architecture (:func:`~nncosmo_helpers.ntk.infinite_width_ntk`)."""
    _validate.require_float64()
    alpha_inf = float(ntk.infinite_width_ntk(x0, **arch)[0, 0])
    alphas = [alpha_samples(w, n_seeds, arch=arch, x0=x0) for w in widths]
    return AlphaScan(np.asarray(widths), np.array(alphas), alpha_inf)


def alpha_samples(width, n_seeds, *, arch, x0) -> np.ndarray:
    """One width of :func:`alpha_width_scan`: alpha at ``n_seeds`` initialisations (keys split from
    ``PRNGKey(width)``), shape (n_seeds,)."""
    _validate.require_float64()
    init_fn, apply_fn = network.mlp(width=width, **arch)
    return alpha_at_init(apply_fn, init_fn, jax.random.split(jax.random.PRNGKey(width), n_seeds), x0)


class DriftScan(NamedTuple):
    """Kernel drift and the eq. 7 deviation it causes, one entry per trained network (all widths).

    ``drift`` = (alpha_end - alpha0)/alpha0; ``deviation`` = f_pred(T) - f(T) with alpha frozen at
    alpha0; ``span`` = |f(T) - f(0)|; ``drift_effect`` = the change of f_pred(T) when alpha0 is replaced
    by the mid-training alpha0 + (alpha_end - alpha0)/2; ``deviation_mid`` = the deviation left then.
    """

    widths: np.ndarray  # the widths scanned
    width: np.ndarray  # per run
    drift: np.ndarray
    deviation: np.ndarray
    span: np.ndarray
    drift_effect: np.ndarray
    deviation_mid: np.ndarray

    def _per_width(self, values):
        return np.array([[v for v, w in zip(values, self.width) if w == wd] for wd in self.widths])

    @property
    def rms_drift(self) -> np.ndarray:
        """Root mean square of |drift| over the seeds, per width."""
        return np.sqrt(np.mean(self._per_width(np.abs(self.drift)) ** 2, axis=1))

    @property
    def rms_deviation(self) -> np.ndarray:
        """Root mean square of |deviation|/span over the seeds, per width."""
        return np.sqrt(np.mean(self._per_width(np.abs(self.deviation) / self.span) ** 2, axis=1))

    @property
    def fits(self) -> dict:
        """Log-log lines (slope, intercept) of ``rms_drift`` ("drift") and ``rms_deviation`` ("dev") against width."""
        lw = np.log(self.widths)
        return {"drift": np.polyfit(lw, np.log(self.rms_drift), 1), "dev": np.polyfit(lw, np.log(self.rms_deviation), 1)}

    @property
    def explained(self) -> float:
        """1 - rms(deviation_mid)/rms(deviation): the share of the deviation the linear drift accounts for."""
        return float(1 - np.sqrt(np.mean(self.deviation_mid**2)) / np.sqrt(np.mean(self.deviation**2)))

    @property
    def correlation(self) -> float:
        """Correlation of the deviation with the drift effect over all runs."""
        return float(np.corrcoef(self.deviation, self.drift_effect)[0, 1])


def drift_width_scan(widths, n_seeds, *, arch, x0, eta, beta, loss, steps) -> DriftScan:
    """:func:`kernel_drift` for ``n_seeds`` networks per width (keys from ``PRNGKey(1000 + width)``), each
    compared with eq. 7 at its initial and at its mid-training alpha."""
    _validate.require_float64()
    rows = [row for w in widths
            for row in drift_rows(w, n_seeds, arch=arch, x0=x0, eta=eta, beta=beta, loss=loss, steps=steps)]
    return drift_scan_from_rows(widths, rows)


def drift_rows(width, n_seeds, *, arch, x0, eta, beta, loss, steps) -> list[tuple]:
    """One width of :func:`drift_width_scan`: per network (keys from ``PRNGKey(1000 + width)``) the tuple
    ``(width, drift, deviation, span, drift_effect, deviation_mid)`` of :class:`DriftScan`."""
    _validate.require_float64()
    init_fn, apply_fn = network.mlp(width=width, **arch)
    d = kernel_drift(apply_fn, init_fn, jax.random.split(jax.random.PRNGKey(1000 + width), n_seeds), x0,
                     eta=eta, beta=beta, loss=loss, steps=steps)
    rows = []
    for a0, a1, fi, fe in zip(d.alpha0, d.alpha_end, d.f_init, d.f_end):
        pred = lambda a: float(dynamics.predict_homogeneous(a, fi, eta=eta, beta=beta, loss=loss, steps=[0, steps])[-1])
        p0, pmid = pred(a0), pred(a0 + 0.5 * (a1 - a0))
        rows.append((width, (a1 - a0) / a0, p0 - fe, abs(fe - fi), p0 - pmid, pmid - fe))
    return rows


def drift_scan_from_rows(widths, rows) -> DriftScan:
    """The :class:`DriftScan` of the rows of :func:`drift_rows` over ``widths``."""
    return DriftScan(np.asarray(widths), *(np.array(c) for c in zip(*rows)))


class RoundingPrediction(NamedTuple):
    """The float32 loss of the kernel predicted by :func:`update_rounding` for one network, per beta:
    ``lost``/``frozen`` (len(betas), len(etas)) from :func:`lost_kernel_fraction` (nearest rounding /
    threshold), ``onset`` the eta below which |lost| first exceeds ``level`` (on a fine grid), and
    ``scale_estimate`` = (1 - beta) 2^-24 width / (sqrt(alpha) |L'(f)|), the order of magnitude."""

    etas: np.ndarray
    betas: np.ndarray
    lost: np.ndarray
    frozen: np.ndarray
    onset: np.ndarray
    scale_estimate: np.ndarray


def rounding_prediction(apply_fn, params, x0, *, loss, etas, betas, width, level=0.01) -> RoundingPrediction:
    """:class:`RoundingPrediction` of the network ``(apply_fn, params)`` at the input ``x0``."""
    _validate.require_float64()
    etas, betas = np.asarray(etas, float), np.asarray(betas, float)
    a_p = float(ntk.alpha(apply_fn, params, x0))
    lp = abs(float(loss.first(apply_fn(params, x0)[0, 0])))
    fine = np.logspace(np.log10(etas[0]) - 0.5, np.log10(etas[-1]), 400)
    lost, frozen, onset, scale_est = [], [], [], []
    x0 = _validate.single_point("x0", x0)
    inputs = _rounding_inputs(apply_fn, params, x0, loss, jnp.float32)  # one backward pass for every beta
    for b in betas:
        eta_j, w_j = _thresholds(inputs, _validate.beta(b))
        lost.append(lost_kernel_fraction(etas, eta_j, w_j))
        frozen.append(lost_kernel_fraction(etas, eta_j, w_j, rounding="threshold"))
        onset.append(crossing(fine, np.abs(lost_kernel_fraction(fine, eta_j, w_j)), level))
        scale_est.append((1 - b) * 2.0**-24 * width / (np.sqrt(a_p) * lp))
    return RoundingPrediction(etas, betas, np.array(lost), np.array(frozen), np.array(onset), np.array(scale_est))


class Float32Check(NamedTuple):
    """Measured float32 deviation (:class:`PrecisionMaps`) against the predicted lost share
    (:class:`RoundingPrediction`): ``measured_onset`` per beta, and ``ratio``/``ratio_frozen`` = dev32 / lost
    (resp. / frozen) where the predicted lost share exceeds ``level``."""

    measured_onset: np.ndarray
    ratio: np.ndarray
    ratio_frozen: np.ndarray


def ratio_budget(maps: PrecisionMaps, rounding: RoundingPrediction, loss, *, width, level=0.01) -> np.ndarray:
    """The tolerance of :attr:`Float32Check.ratio` - 1 at each of its points (where the lost share exceeds ``level``).

    Three budgets add up: the part of the float32 deviation that is not rounding of the updates, measured at the
    same point in float64 (``dev64 / lost``); the float32 evaluation of the output itself, a sum over ``width``
    units with round-off about sqrt(width) 2^-24 |f|, relative to the distance travelled |f_pred(T) - f(0)|
    (divided by ``lost``, as the ratio is); and the formula's use of the gradient at initialisation: over the run
    the gradient of the loss (eq. 20, L' proportional to (f - f0)^(n-1)) changes by the fraction
    (n - 1) |f_pred(T) - f(0)| / |f(0) - f0|, which moves every threshold eta_j, and to first order the lost
    share, by that fraction.
    """
    sel = rounding.lost > level
    travel = np.abs(maps.pred - maps.f_init)
    change = (loss.n - 1) * travel / abs(maps.f_init - loss.f0)
    evaluation = np.sqrt(width) * 2.0**-24 * abs(maps.f_init) / travel
    return (maps.dev64[sel] + evaluation[sel]) / rounding.lost[sel] + change[sel]


def float32_check(maps: PrecisionMaps, rounding: RoundingPrediction, *, level=0.01) -> Float32Check:
    """Compare the measured float32 deviation with the rounding prediction (see :class:`Float32Check`)."""
    sel = rounding.lost > level
    return Float32Check(maps.onsets(level), maps.dev32[sel] / rounding.lost[sel], maps.dev32[sel] / rounding.frozen[sel])

