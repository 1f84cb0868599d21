"""The one training loop of the package: full-batch training with an optax optimiser, as a jitted ``lax.scan``.

Eq. 2 of the paper, theta_{i+1} = theta_i + beta (theta_i - theta_{i-1}) - eta grad L(theta_i), with
theta_{-1} = theta_0, is exactly ``optax.sgd(eta, momentum=beta)``
(:func:`~nncosmo_helpers.optimizers.de_sitter_momentum`): optax keeps the trace m_i = beta m_{i-1} + g_i
and applies -eta m_i. Its continuum limit is eq. 4.

The loop is written in the style of blackjax: :func:`init` builds a :class:`TrainState`,
:func:`build_kernel` returns ``kernel(state) -> (state, StepInfo)`` for an objective and an optax
transformation, and :func:`run` is the ``lax.scan`` over it that keeps every ``record_every``-th
step. The kernel detects divergence as it goes: the first step whose outputs are non-finite or
exceed a bound (or whose loss is non-finite) is kept in ``TrainState.divergence_step``.
:func:`train_momentum`, :func:`train_optax` and :func:`train_optax_batch` are this loop with the
network's outputs as the objective; the batched scan engine (:mod:`nncosmo_helpers.scans.engine`)
is the documented fast path for many configurations of one architecture and shares the forward
pass (:func:`nncosmo_helpers.network.forward_layers`).

Divergence is reported, not handed back as NaNs: :func:`train_momentum` raises
:class:`TrainingDiverged` (or, with ``on_divergence="report"``, returns a result flagged ``diverged``
with the finite part of the trajectory). The report names the first bad step and the linear stability
bound eta L'' lambda_max(Theta)/N < 2 (1 + beta) of momentum GD.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _validate
from .ntk import empirical_ntk
from .optimizers import de_sitter_momentum

#: Outputs whose magnitude exceeds DIVERGENCE_FACTOR * (1 + |f0| + max|f_init|) count as diverged.
DIVERGENCE_FACTOR = 1e6


class TrainingDiverged(FloatingPointError):
    """Training left the finite/bounded region. Attributes: ``step``, ``stability_ratio``."""

    def __init__(self, message, step, stability_ratio):
        super().__init__(message)
        self.step = step
        self.stability_ratio = stability_ratio


class TrainResult(NamedTuple):
    """Outcome of :func:`train_momentum` and :func:`train_optax` (a NamedTuple, so a pytree).

    Attributes:
        f: outputs, shape (steps // record_every + 1, N); row k is the output after
            k * record_every steps (row 0 is the initial output). Truncated before the first bad
            row if the run diverged (:func:`train_momentum`).
        steps: the step number of each row of ``f``.
        loss: dataset loss at each row of ``f``.
        ntk_initial, ntk_final: the empirical NTK on the training inputs at the first and the
            last step (shape (N, N)); ``None`` if not requested.
        params: the final parameters (``None`` for a diverged :func:`train_momentum` run).
        diverged: whether the run diverged; ``divergence_step`` is then the first bad step.
        stability_ratio: eta L''(f_init) lambda_max(Theta_0)/N / (2 (1 + beta)); above 1 the
            linearised quadratic dynamics are unstable.
    """

    f: jax.Array
    steps: np.ndarray
    loss: jax.Array
    ntk_initial: jax.Array | None
    ntk_final: jax.Array | None
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


# ---------------------------------------------------------------------------------------------
# the loop: init / build_kernel / run (blackjax style)
# ---------------------------------------------------------------------------------------------
class TrainState(NamedTuple):
    """State of the training loop: parameters, optimiser state, step number, first bad step (-1: none)."""

    params: Any
    opt_state: Any
    step: jax.Array
    divergence_step: jax.Array


class StepInfo(NamedTuple):
    """What one step saw: the outputs ``f`` and the loss at the parameters it started from, and
    whatever the ``record`` function of :func:`build_kernel` returned (``None`` by default)."""

    f: jax.Array
    loss: jax.Array
    record: Any


def init(params, optimizer: optax.GradientTransformation) -> TrainState:
    """The initial :class:`TrainState` of ``optimizer`` (an optax transformation) at ``params``."""
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32), -jnp.ones((), jnp.int32))


def _finite_and_bounded(f, value, bound):
    ok = jnp.isfinite(value)
    return ok if f is None else ok & jnp.all(jnp.isfinite(f) & (jnp.abs(f) < bound))


def _mark(state_step, divergence_step, f, value, bound):
    ok = _finite_and_bounded(f, value, bound)
    return jnp.where((divergence_step < 0) & ~ok, state_step, divergence_step)


def build_kernel(objective: Callable, optimizer: optax.GradientTransformation, *, bound=jnp.inf,
                 record: Callable | None = None, pass_step: bool = False):
    """One training step: ``kernel(state) -> (state, StepInfo)``.

    Args:
        objective: ``objective(params) -> (loss, f)``, differentiated in its first output; ``f`` (the
            outputs, checked for divergence) may be ``None``. With ``pass_step=True`` it is called as
            ``objective(params, step)`` (e.g. to draw the step's mini-batch).
        optimizer: an optax transformation; extra-args ones (the Friedmann optimiser) receive the
            loss as ``value``.
        bound: outputs with ``|f| >= bound`` count as diverged (non-finite outputs or loss always do).
        record: ``record(new_state, f, loss)``, an extra quantity to keep per step, evaluated after
            the update (e.g. the Hubble rate the Friedmann optimiser used).
    """
    optimizer = optax.with_extra_args_support(optimizer)
    grad_fn = jax.value_and_grad(objective, has_aux=True)

    def kernel(state: TrainState):
        (value, f), g = grad_fn(state.params, state.step) if pass_step else grad_fn(state.params)
        updates, opt_state = optimizer.update(g, state.opt_state, state.params, value=value)
        params = optax.apply_updates(state.params, updates)
        bad = _mark(state.step, state.divergence_step, f, value, bound)
        new = TrainState(params, opt_state, state.step + 1, bad)
        return new, StepInfo(f, value, None if record is None else record(new, f, value))

    return kernel


def run(kernel, state: TrainState, steps: int, record_every: int = 1):
    """``steps`` applications of ``kernel`` in a ``lax.scan``; keeps the :class:`StepInfo` of every
    ``record_every``-th step (steps 0, record_every, ...). Returns ``(state, infos)``."""

    def block(carry, _):
        carry, infos = jax.lax.scan(lambda c, _: kernel(c), carry, None, length=record_every)
        return carry, jax.tree_util.tree_map(lambda a: a[0], infos)

    return jax.lax.scan(block, state, None, length=steps // record_every)


class Trajectory(NamedTuple):
    """Outputs of :func:`trajectory`: ``f`` (rows, N) and ``loss`` (rows,) at steps 0, record_every,
    ..., steps; the final ``params``; the first bad step (-1 if none); the per-step ``record``s."""

    f: jax.Array
    loss: jax.Array
    params: Any
    divergence_step: jax.Array
    record: Any


def trajectory(apply_fn, optimizer, steps, record_every, params, x, hyperparams, loss, *, bound_factor=None,
               record=None) -> Trajectory:
    """Full-batch training of a network on the dataset loss (eq. 3) with ``optimizer(**hyperparams)``.

    The pure core of :func:`train_momentum`, :func:`train_optax` and :func:`train_optax_batch`: jit
    it with ``apply_fn``, ``optimizer``, ``steps``, ``record_every`` static; it vmaps over params and
    hyperparams. ``bound_factor``: outputs beyond ``bound_factor (1 + |f0| + max|f_init|)`` count as
    diverged (``None``: only non-finite ones). ``record``: see :func:`build_kernel`.
    """
    opt = optimizer(**hyperparams)

    def objective(p):
        f = apply_fn(p, x)[:, 0]
        return loss.dataset(f), f

    if bound_factor is None:
        bound = jnp.inf
    else:
        f_init = apply_fn(params, x)[:, 0]
        bound = bound_factor * (1.0 + jnp.abs(loss.f0) + jnp.max(jnp.abs(f_init)))
    kernel = build_kernel(objective, opt, bound=bound, record=record)
    state, infos = run(kernel, init(params, optax.with_extra_args_support(opt)), steps, record_every)
    value_last, f_last = objective(state.params)
    bad = _mark(state.step, state.divergence_step, f_last, value_last, bound)
    fs = jnp.concatenate([infos.f, f_last[None]], axis=0)
    values = jnp.concatenate([infos.loss, value_last[None]])
    return Trajectory(fs, values, state.params, bad, infos.record)


def optax_trajectory(apply_fn, optimizer, steps, record_every, params, x, hyperparams, loss):
    """:func:`trajectory` without divergence bound, as ``(f, dataset loss per row, final params)``.

    ``optimizer`` is a factory returning an ``optax.GradientTransformation`` (extra-args ones such as
    :func:`~nncosmo_helpers.optimizers.friedmann_momentum` receive the current dataset loss as ``value``).
    Jit it with ``static_argnums=(0, 1, 2, 3)``; it can be vmapped over params and hyperparams.
    """
    out = trajectory(apply_fn, optimizer, steps, record_every, params, x, hyperparams, loss)
    return out.f, out.loss, out.params


_trajectory = jax.jit(trajectory, static_argnums=(0, 1, 2, 3), static_argnames=("bound_factor", "record"))


def _optax_batch_impl(apply_fn, optimizer, steps, record_every, params, x, hyperparams, loss):
    run_one = lambda p, h: trajectory(apply_fn, optimizer, steps, record_every, p, x, h, loss)[:2]
    return jax.vmap(run_one)(params, hyperparams)


_optax_batch = jax.jit(_optax_batch_impl, static_argnums=(0, 1, 2, 3))


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


def _check_training_args(loss, steps, record_every, x):
    """Shared argument checks of the training entry points; returns (steps, record_every, x).

    Float64 must be enabled (:func:`~nncosmo_helpers._validate.require_float64`), as for every public
    physics function; a float32 network (``mlp(..., dtype=jnp.float32)``) still trains in float32.
    """
    _validate.require_float64()
    _validate.polynomial_loss(loss)
    steps = _validate.integer("steps", steps, low=0)
    record_every = _validate.integer("record_every", record_every, low=1)
    if steps % record_every:
        raise ValueError(f"record_every must divide steps; got steps={steps}, record_every={record_every}")
    x = jnp.asarray(_validate.finite_array("x", x))
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, input_dim), got {x.shape}")
    return steps, record_every, x


def _in_dtype(params, x, loss, hyperparams):
    """x, the loss and the hyperparameters in the dtype of ``params`` (float32 networks train in float32)."""
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    hp = {k: jnp.asarray(v, dtype) for k, v in hyperparams.items()}
    return x.astype(dtype), loss.astype(dtype), hp


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

    The divergence step is the first step whose outputs are non-finite or exceed
    ``DIVERGENCE_FACTOR (1 + |f0| + max|f_init|)`` (or whose loss is non-finite), checked at every
    step whatever ``record_every``; the rows recorded before it are returned.

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

    x, loss_d, hp = _in_dtype(params, x, loss, {"eta": eta, "beta": beta})
    # eq. 2 is optax.sgd(eta, momentum=beta): the one loop with that optimiser
    out = _trajectory(apply_fn, de_sitter_momentum, steps, record_every, params, x, hp, loss_d,
                      bound_factor=DIVERGENCE_FACTOR)
    fs, values, p_final = out.f, out.loss, out.params
    ntk_initial = empirical_ntk(apply_fn, params, x) if compute_ntk else None

    f_init = np.asarray(fs[0], dtype=float)
    ratio = stability_ratio(ntk_initial, f_init, eta=eta, beta=beta, loss=loss) if compute_ntk else None
    step_numbers = np.arange(fs.shape[0]) * record_every
    step = int(out.divergence_step)
    if step >= 0:
        bound = DIVERGENCE_FACTOR * (1.0 + abs(loss.f0) + float(np.max(np.abs(f_init))))
        msg = (
            f"training diverged at step {step} (eta={eta}, beta={beta}, {loss}): outputs left the finite "
            f"region |f| < {bound:.3g}. Linear stability needs eta*L''*lambda_max/N < 2(1+beta); "
            + (f"here that ratio is {ratio:.3g}." if ratio is not None else "pass compute_ntk=True for the ratio.")
        )
        if on_divergence == "raise":
            raise TrainingDiverged(msg, step, ratio)
        first = int(np.searchsorted(step_numbers, step))  # rows recorded strictly before the bad step
        return TrainResult(
            f=fs[:first], steps=step_numbers[:first], loss=values[:first], ntk_initial=ntk_initial,
            ntk_final=None, params=None, diverged=True, divergence_step=step, stability_ratio=ratio,
        )
    ntk_final = empirical_ntk(apply_fn, p_final, x) if compute_ntk else None
    return TrainResult(
        f=fs, steps=step_numbers, loss=values, ntk_initial=ntk_initial, ntk_final=ntk_final,
        params=p_final, stability_ratio=ratio,
    )


def train_optax(apply_fn, params, x, *, optimizer, hyperparams, loss, steps, record_every=1, compute_ntk=True):
    """Train with any optax optimiser, full batch, and record the outputs (like :func:`train_momentum`).

    Args:
        apply_fn, params, x, loss, steps, record_every, compute_ntk: as in :func:`train_momentum`.
        optimizer: a hashable factory (e.g. a module-level function such as
            :func:`~nncosmo_helpers.optimizers.power_law_momentum`) called as ``optimizer(**hyperparams)``
            inside the jitted loop, so new hyperparameter values do not recompile.
        hyperparams: dict of scalar hyperparameters (e.g. ``{"eta": 0.1, "p": 2/3}``).

    Non-finite outputs are returned as they are (no bound); ``diverged`` flags a run with a non-finite
    output or loss at any step and ``divergence_step`` names the first.
    """
    steps, record_every, x = _check_training_args(loss, steps, record_every, x)
    x, loss_d, hp = _in_dtype(params, x, loss, hyperparams)
    out = _trajectory(apply_fn, optimizer, steps, record_every, params, x, hp, loss_d)
    fs, values, p_final = out.f, out.loss, out.params
    step = int(out.divergence_step)
    finite = step < 0
    ntk_initial = empirical_ntk(apply_fn, params, x) if compute_ntk else None
    ntk_final = empirical_ntk(apply_fn, p_final, x) if (compute_ntk and finite) else None
    return TrainResult(
        f=fs, steps=np.arange(fs.shape[0]) * record_every, loss=values, ntk_initial=ntk_initial,
        ntk_final=ntk_final, params=p_final, diverged=not finite, divergence_step=None if finite else step,
    )


def train_optax_batch(apply_fn, params, x, *, optimizer, hyperparams, loss, steps, record_every=1):
    """Vmapped :func:`train_optax` over a batch of initialisations and hyperparameters.

    ``params`` and every entry of ``hyperparams`` carry a leading batch axis of the same size B
    (e.g. ``jax.vmap(init_fn, (0, None))(keys, d)`` for B seeds). Returns (f of shape
    (B, steps // record_every + 1, N), dataset loss of shape (B, steps // record_every + 1)).
    """
    steps, record_every, x = _check_training_args(loss, steps, record_every, x)
    x, loss_d, hp = _in_dtype(params, x, loss, hyperparams)
    return _optax_batch(apply_fn, optimizer, steps, record_every, params, x, hp, loss_d)
