"""Full-batch gradient descent with momentum (eq. 2), as one jitted ``lax.scan``.

The update theta_{i+1} = theta_i + beta (theta_i - theta_{i-1}) - eta grad L(theta_i), with
theta_{-1} = theta_0, is exactly ``optax.sgd(eta, momentum=beta)``: optax keeps the trace
m_i = beta m_{i-1} + g_i and applies -eta m_i. Its continuum limit is eq. 4.

Divergence is detected, not handed back as NaNs: a run whose outputs become non-finite or exceed
a bound raises :class:`TrainingDiverged` (or, with ``on_divergence="report"``, returns a result
flagged ``diverged`` with the finite part of the trajectory). The report names the first bad step
and the linear stability bound eta L'' lambda_max(Theta)/N < 2 (1 + beta) of momentum GD.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _validate
from .loss import PolynomialLoss
from .ntk import empirical_ntk

#: Outputs whose magnitude exceeds DIVERGENCE_FACTOR * (1 + |f0| + max|f_init|) count as diverged.
DIVERGENCE_FACTOR = 1e6


class TrainingDiverged(FloatingPointError):
    """Training left the finite/bounded region. Attributes: ``step``, ``stability_ratio``."""

    def __init__(self, message, step, stability_ratio):
        super().__init__(message)
        self.step = step
        self.stability_ratio = stability_ratio


@dataclasses.dataclass
class TrainResult:
    """Outcome of :func:`train_momentum`.

    Attributes:
        f: outputs, shape (steps // record_every + 1, N); row k is the output after
            k * record_every steps (row 0 is the initial output). Truncated before the first bad
            row if the run diverged.
        steps: the step number of each row of ``f``.
        loss: dataset loss at each row of ``f``.
        ntk_initial, ntk_final: the empirical NTK on the training inputs at the first and the
            last step (shape (N, N)); ``None`` if not requested.
        params: the final parameters.
        diverged: whether the run diverged; ``divergence_step`` is then the first bad step.
        stability_ratio: eta L''(f_init) lambda_max(Theta_0)/N / (2 (1 + beta)); above 1 the
            linearised quadratic dynamics are unstable.
    """

    f: Any
    steps: Any
    loss: Any
    ntk_initial: Any
    ntk_final: Any
    params: Any
    diverged: bool = False
    divergence_step: int | None = None
    stability_ratio: float | None = None

    @property
    def alpha_initial(self):
        """alpha = Theta(x, x) at the start, for a homogeneous (N = 1) network (eq. 7)."""
        return self._alpha(self.ntk_initial)

    @property
    def alpha_final(self):
        """alpha at the end of training, for a homogeneous (N = 1) network."""
        return self._alpha(self.ntk_final)

    def _alpha(self, k):
        if k is None or k.shape != (1, 1):
            raise ValueError("alpha is defined for a homogeneous network: train on one input point (N = 1)")
        return k[0, 0]


def momentum_sgd(eta, beta) -> optax.GradientTransformation:
    """The optimiser of eq. 2: ``optax.sgd(eta, momentum=beta)``."""
    return optax.sgd(eta, momentum=beta)


def _train_impl(apply_fn, steps, record_every, params, x, eta, beta, loss):
    # eq. 2 is optax.sgd(eta, momentum=beta): the generic optax loop with that optimiser
    return optax_trajectory(apply_fn, momentum_sgd, steps, record_every, params, x, {"eta": eta, "beta": beta}, loss)


_train = jax.jit(_train_impl, static_argnums=(0, 1, 2))


def stability_ratio(kernel, f_init, *, eta, beta, loss) -> float:
    """eta L''(f) lambda_max(K)/N / (2 (1 + beta)) at f = f_init (max of L'' over points).

    For a quadratic loss, momentum gradient descent on the linearised model is stable iff this is < 1
    (each NTK eigen-direction is a heavy-ball iteration with step h = eta lambda L''/N, stable for
    0 < h < 2 (1 + beta)). For n > 2 it is the local value at the start of training.
    """
    k = np.asarray(kernel, dtype=float)
    n = k.shape[0]
    lam_max = float(np.linalg.eigvalsh(0.5 * (k + k.T))[-1])
    lpp = float(np.max(np.asarray(loss.second(jnp.asarray(f_init, jnp.float64)))))
    return eta * lpp * lam_max / n / (2.0 * (1.0 + beta))


def train_momentum(
    apply_fn,
    params,
    x,
    *,
    eta,
    beta,
    loss,
    steps,
    record_every: int = 1,
    compute_ntk: bool = True,
    on_divergence: str = "raise",
) -> TrainResult:
    """Train with full-batch momentum gradient descent (eq. 2) and record the outputs.

    Args:
        apply_fn, params: the network (e.g. from :func:`~nncosmo_helpers.network.mlp`).
        x: training inputs, shape (N, d). A single point (N = 1) gives a homogeneous network.
        eta: learning rate, > 0. beta: momentum, in [0, 1).
        loss: a :class:`~nncosmo_helpers.loss.PolynomialLoss`; the dataset loss is its mean (eq. 3).
        steps: number of update steps (full-batch epochs), >= 0.
        record_every: keep every ``record_every``-th output row; must divide ``steps``.
        compute_ntk: also compute the empirical NTK at the start and the end.
        on_divergence: ``"raise"`` (default) raises :class:`TrainingDiverged`; ``"report"`` returns
            a result flagged ``diverged``.

    The computation runs in the dtype of ``params``: float64 unless the network was built in float32,
    in which case eta, beta and the loss parameters are cast to float32 as well.
    """
    eta = _validate.eta(eta)
    beta = _validate.beta(beta)
    steps, record_every, x = _check_training_args(loss, steps, record_every, x)
    if on_divergence not in ("raise", "report"):
        raise ValueError(f"on_divergence must be 'raise' or 'report', got {on_divergence!r}")
    f_check = apply_fn(params, x)  # validates the input shape against the network
    if f_check.ndim != 2 or f_check.shape[1] != 1:
        raise ValueError(f"apply_fn must return shape (N, 1), got {f_check.shape}")

    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    x = x.astype(dtype)
    loss_d = jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype), loss)
    fs, values, p_final = _train(
        apply_fn, steps, record_every, params, x, jnp.asarray(eta, dtype), jnp.asarray(beta, dtype), loss_d
    )
    ntk_initial = empirical_ntk(apply_fn, params, x) if compute_ntk else None

    f_init = np.asarray(fs[0], dtype=float)
    ratio = stability_ratio(ntk_initial, f_init, eta=eta, beta=beta, loss=loss) if compute_ntk else None
    bound = DIVERGENCE_FACTOR * (1.0 + abs(loss.f0) + float(np.max(np.abs(f_init))))
    fs_np = np.asarray(fs)
    bad_rows = ~np.all(np.isfinite(fs_np) & (np.abs(fs_np) < bound), axis=1) | ~np.isfinite(np.asarray(values))
    step_numbers = np.arange(fs_np.shape[0]) * record_every
    if bad_rows.any():
        first = int(np.argmax(bad_rows))
        step = int(step_numbers[first])
        where = f"step {step}" if record_every == 1 else f"step {step} (first bad recorded row; record_every={record_every})"
        msg = (
            f"training diverged at {where} (eta={eta}, beta={beta}, {loss}): outputs left the finite "
            f"region |f| < {bound:.3g}. Linear stability needs eta*L''*lambda_max/N < 2(1+beta); "
            + (f"here that ratio is {ratio:.3g}." if ratio is not None else "pass compute_ntk=True for the ratio.")
        )
        if on_divergence == "raise":
            raise TrainingDiverged(msg, step, ratio)
        return TrainResult(
            f=fs[:first], steps=step_numbers[:first], loss=values[:first], ntk_initial=ntk_initial,
            ntk_final=None, params=None, diverged=True, divergence_step=step, stability_ratio=ratio,
        )
    ntk_final = empirical_ntk(apply_fn, p_final, x) if compute_ntk else None
    return TrainResult(
        f=fs, steps=step_numbers, loss=values, ntk_initial=ntk_initial, ntk_final=ntk_final,
        params=p_final, stability_ratio=ratio,
    )


# ---------------------------------------------------------------------------------------------
# training with any optax transformation (used by the "Beyond the paper" chapters)
# ---------------------------------------------------------------------------------------------
def optax_trajectory(apply_fn, optimizer, steps, record_every, params, x, hyperparams, loss):
    """Pure core of :func:`train_optax`: full-batch training with ``optimizer(**hyperparams)``.

    ``optimizer`` is a factory returning an ``optax.GradientTransformation`` (extra-args ones such as
    :func:`~nncosmo_helpers.optimizers.friedmann_momentum` receive the current dataset loss as ``value``).
    Returns (f of shape (steps // record_every + 1, N), dataset loss per row, final params).
    Jit it with ``static_argnums=(0, 1, 2, 3)``; it can be vmapped over params and hyperparams.
    """
    opt = optax.with_extra_args_support(optimizer(**hyperparams))
    opt_state = opt.init(params)

    def loss_and_f(p):
        f = apply_fn(p, x)[:, 0]
        return loss.dataset(f), f

    grad_fn = jax.value_and_grad(loss_and_f, has_aux=True)

    def one_step(carry, _):
        p, s = carry
        (value, f), g = grad_fn(p)
        updates, s = opt.update(g, s, p, value=value)
        return (optax.apply_updates(p, updates), s), (f, value)

    def block(carry, _):
        carry, (fs, values) = jax.lax.scan(one_step, carry, None, length=record_every)
        return carry, (fs[0], values[0])

    (p, _), (fs, values) = jax.lax.scan(block, (params, opt_state), None, length=steps // record_every)
    f_last = apply_fn(p, x)[:, 0]
    fs = jnp.concatenate([fs, f_last[None]], axis=0)
    values = jnp.concatenate([values, loss.dataset(f_last)[None]])
    return fs, values, p


_optax_trajectory = jax.jit(optax_trajectory, static_argnums=(0, 1, 2, 3))


def _optax_batch_impl(apply_fn, optimizer, steps, record_every, params, x, hyperparams, loss):
    run = lambda p, h: optax_trajectory(apply_fn, optimizer, steps, record_every, p, x, h, loss)[:2]
    return jax.vmap(run)(params, hyperparams)


_optax_batch = jax.jit(_optax_batch_impl, static_argnums=(0, 1, 2, 3))


def _check_training_args(loss, steps, record_every, x):
    """Shared argument checks of the training entry points; returns (steps, record_every, x)."""
    if not isinstance(loss, PolynomialLoss):
        raise TypeError(f"loss must be a nncosmo_helpers.loss.PolynomialLoss, got {type(loss).__name__}")
    steps = _validate.integer("steps", steps, low=0)
    record_every = _validate.integer("record_every", record_every, low=1)
    if steps % record_every:
        raise ValueError(f"record_every must divide steps; got steps={steps}, record_every={record_every}")
    x = jnp.asarray(_validate.finite_array("x", x))
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, input_dim), got {x.shape}")
    return steps, record_every, x


def train_optax(apply_fn, params, x, *, optimizer, hyperparams, loss, steps, record_every=1, compute_ntk=True):
    """Train with any optax optimiser, full batch, and record the outputs (like :func:`train_momentum`).

    Args:
        apply_fn, params, x, loss, steps, record_every, compute_ntk: as in :func:`train_momentum`.
        optimizer: a hashable factory (e.g. a module-level function such as
            :func:`~nncosmo_helpers.optimizers.power_law_momentum`) called as ``optimizer(**hyperparams)``
            inside the jitted loop, so new hyperparameter values do not recompile.
        hyperparams: dict of scalar hyperparameters (e.g. ``{"eta": 0.1, "p": 2/3}``).

    Non-finite outputs are returned as they are (no divergence check); ``diverged`` flags them.
    """
    steps, record_every, x = _check_training_args(loss, steps, record_every, x)
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    x = x.astype(dtype)
    loss_d = jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype), loss)
    hp = {k: jnp.asarray(v, dtype) for k, v in hyperparams.items()}
    fs, values, p_final = _optax_trajectory(apply_fn, optimizer, steps, record_every, params, x, hp, loss_d)
    finite = bool(np.all(np.isfinite(np.asarray(fs))))
    ntk_initial = empirical_ntk(apply_fn, params, x) if compute_ntk else None
    ntk_final = empirical_ntk(apply_fn, p_final, x) if (compute_ntk and finite) else None
    return TrainResult(
        f=fs, steps=np.arange(fs.shape[0]) * record_every, loss=values, ntk_initial=ntk_initial,
        ntk_final=ntk_final, params=p_final, diverged=not finite,
    )


def train_optax_batch(apply_fn, params, x, *, optimizer, hyperparams, loss, steps, record_every=1):
    """Vmapped :func:`train_optax` over a batch of initialisations and hyperparameters.

    ``params`` and every entry of ``hyperparams`` carry a leading batch axis of the same size B
    (e.g. ``jax.vmap(init_fn, (0, None))(keys, d)`` for B seeds). Returns (f of shape
    (B, steps // record_every + 1, N), dataset loss of shape (B, steps // record_every + 1)).
    """
    steps, record_every, x = _check_training_args(loss, steps, record_every, x)
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    loss_d = jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype), loss)
    hp = {k: jnp.asarray(v, dtype) for k, v in hyperparams.items()}
    return _optax_batch(apply_fn, optimizer, steps, record_every, params, x.astype(dtype), hp, loss_d)
