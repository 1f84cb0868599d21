"""Optimisers compared on equal step budgets (chapter "Optimisers as cosmologies", last section).

Learning rates are tuned on a grid, several seeds run at once (vmapped), and the reported numbers
come from seeds or a data split the learning rate was not selected on. Two tasks: the paper's
polynomial losses on a homogeneous network (:func:`benchmark_polynomial`) and a small relu classifier
on scikit-learn's bundled digits (:func:`benchmark_digits`). The contestants are optax
transformations (:mod:`~nncosmo_helpers.optimizers`).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import train
from ..loss import PolynomialLoss
from ..network import forward
from ..optimizers import adam, de_sitter_momentum, friedmann_momentum, nesterov_momentum, sgd_nesterov


class Method(NamedTuple):
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
    with the vacuum energy that makes its late-time momentum 0.9 (:func:`~nncosmo_helpers.optimizers.friedmann_vacuum`).
    """
    return (
        Method("heavy ball, beta=0.9", de_sitter_momentum, (("beta", 0.9),), tuple(lr_grid)),
        Method("optax Nesterov, beta=0.9", sgd_nesterov, (("beta", 0.9),), tuple(lr_grid)),
        Method("Nesterov (k-1)/(k+2)", nesterov_momentum, (), tuple(lr_grid)),
        Method("Adam", adam, (), tuple(adam_grid)),
        Method("Friedmann, V0=0", friedmann_momentum, (("v0", 0.0),), tuple(lr_grid)),
        Method("Friedmann, beta_inf=0.9", friedmann_momentum, (("v0", _vacuum_for(0.9)),), tuple(lr_grid)),
    )


def _run_with_value(loss_fn, optimizer, steps, params, hyperparams, *, pass_step=False):
    """Training of ``loss_fn(params)`` (``loss_fn(params, step)`` with ``pass_step``) by the package's
    loop (:func:`~nncosmo_helpers.train.build_kernel`); returns (final params, loss per step)."""
    opt = optimizer(**hyperparams)
    kernel = train.build_kernel(lambda *a: (loss_fn(*a), None), opt, pass_step=pass_step)
    state, infos = train.run(kernel, train.init(params, opt), steps)
    return state.params, infos.loss


#: Final losses below this count as converged to machine precision (log10 scores are clamped here).
LOSS_FLOOR = 1e-30


def _log10_loss(value):
    return jnp.where(jnp.isfinite(value), jnp.log10(jnp.maximum(value, LOSS_FLOOR)), jnp.inf)


class BenchmarkResult(NamedTuple):
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
def _poly_task_impl(apply_fn, optimizer, steps, params, x, hyperparams, losses):
    def one(p, hp, loss):
        # eq. 20: the loss's own dataset mean; its traced integer exponent lets one compilation serve all n
        value = lambda q: loss.dataset(apply_fn(q, x)[:, 0])
        return _run_with_value(value, optimizer, steps, p, hp)[1][-1]

    # params: (S, ...), hyperparams: (J,), losses: stacked over K -> final loss of shape (K, J, S)
    over_seeds = lambda hp, loss: jax.vmap(lambda p: one(p, hp, loss))(params)
    over_lrs = lambda loss: jax.vmap(lambda hp: over_seeds(hp, loss))(hyperparams)
    return jax.vmap(over_lrs)(losses)


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
    stacked = PolynomialLoss.stack(losses, jnp.float64)
    out = {loss: [] for loss in losses}
    for method in methods:
        final = _poly_task(apply_fn, method.factory, steps, params, jnp.asarray(x, jnp.float64),
                           method.grid_hyperparams(jnp.float64), stacked)
        for loss, sc in zip(losses, np.asarray(_log10_loss(final))):
            j, best = _pick(method, sc[:, :n_tune])
            out[loss].append(BenchmarkResult(method.name, np.asarray(method.lr_grid), sc[:, :n_tune], best,
                                             {"log10_loss": sc[j, n_tune:]}))
    return out


# -- (b) a small MLP classifier on scikit-learn's bundled digits -----------------------------
class DigitsData(NamedTuple):
    """A fixed stratified split of the digits: pixels in [0, 1] (``x_*``) and integer labels (``y_*``)."""

    x_train: jnp.ndarray
    y_train: jnp.ndarray
    x_val: jnp.ndarray
    y_val: jnp.ndarray
    x_test: jnp.ndarray
    y_test: jnp.ndarray


def digits_data(*, split_seed=0, val_fraction=0.2, test_fraction=0.2, dtype=jnp.float32) -> DigitsData:
    """scikit-learn's bundled 8x8 digits (1797 images, no download), pixels scaled to [0, 1].

    Returns a :class:`DigitsData` (a fixed stratified split).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=test_fraction, random_state=split_seed, stratify=y)
    val = val_fraction / (1.0 - test_fraction)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=val, random_state=split_seed, stratify=y_rest)
    cast = lambda a: jnp.asarray(a, dtype)
    return DigitsData(cast(x_train), jnp.asarray(y_train), cast(x_val), jnp.asarray(y_val), cast(x_test), jnp.asarray(y_test))


def classifier_init(key, sizes, dtype=jnp.float32):
    """He-normal weights and zero biases for an MLP with layer sizes ``sizes`` (input, hidden..., classes)."""
    params = []
    for k, (a, b) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
        params.append({"W": jax.random.normal(k, (a, b), dtype) * jnp.sqrt(2.0 / a).astype(dtype), "b": jnp.zeros(b, dtype)})
    return params


def classifier_apply(params, x):
    """Logits of a relu MLP (z = h W + b: :func:`~nncosmo_helpers.network.forward`, standard parameterisation)."""
    return forward(params, x, activation="relu", parameterization="standard").zs[-1]


def cross_entropy(params, x, y):
    """Mean softmax cross-entropy."""
    logits = classifier_apply(params, x)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


def accuracy(params, x, y):
    return jnp.mean(jnp.argmax(classifier_apply(params, x), axis=-1) == y)


def _run_minibatch(optimizer, steps, batch_size, params, hyperparams, key, x, y):
    """Mini-batch training on (x, y): each step draws ``batch_size`` examples (with replacement)."""

    def batch_loss(p, i):
        idx = jax.random.randint(jax.random.fold_in(key, i), (batch_size,), 0, x.shape[0])
        return cross_entropy(p, x[idx], y[idx])

    return _run_with_value(batch_loss, optimizer, steps, params, hyperparams, pass_step=True)[0]


def _digits_impl(optimizer, steps, batch_size, params, keys, hyperparams, data):
    def one(p, k, hp):
        if batch_size is None:
            p, _ = _run_with_value(lambda q: cross_entropy(q, data.x_train, data.y_train), optimizer, steps, p, hp)
        else:
            p = _run_minibatch(optimizer, steps, batch_size, p, hp, k, data.x_train, data.y_train)
        ok = jnp.all(jnp.array([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(p)]))
        bad = jnp.inf
        return {
            "train_loss": jnp.where(ok, cross_entropy(p, data.x_train, data.y_train), bad),
            "val_loss": jnp.where(ok, cross_entropy(p, data.x_val, data.y_val), bad),
            "test_loss": jnp.where(ok, cross_entropy(p, data.x_test, data.y_test), bad),
            "test_accuracy": jnp.where(ok, accuracy(p, data.x_test, data.y_test), 0.0),
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
    sizes = (data.x_train.shape[1],) + tuple(hidden) + (10,)
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
# summaries: the numbers the chapter's claims rest on
# ---------------------------------------------------------------------------------------------
def mean_metric(results, method, metric) -> float:
    """Mean over seeds of ``metric`` for the method named ``method`` in a list of :class:`BenchmarkResult`."""
    return float(next(r for r in results if r.method == method).metrics[metric].mean())


def sem_metric(results, method, metric) -> float:
    """Standard error of the seed mean of ``metric`` (sample standard deviation / sqrt(seeds)) for ``method``."""
    v = np.asarray(next(r for r in results if r.method == method).metrics[metric], float)
    return float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0


def best_method(results, metric="log10_loss") -> str:
    """Name of the method with the lowest seed-mean ``metric``."""
    return min(results, key=lambda r: r.metrics[metric].mean()).method


class DigitsSummary(NamedTuple):
    """Seed means and standard deviations (per method name) of the digits test loss and accuracy, and
    the gap between the better Friedmann variant and the best other method in combined standard
    deviations (positive: Friedmann is better)."""

    mean_loss: dict
    std_loss: dict
    accuracy: dict
    accuracy_std: dict
    best: str
    best_friedmann: str
    best_other: str
    gap_sigma: float


def digits_summary(results, *, friedmann) -> DigitsSummary:
    """Summarise :func:`benchmark_digits`; ``friedmann``: the names of the Friedmann variants."""
    mean_test = {r.method: r.metrics["test_loss"].mean() for r in results}
    std_test = {r.method: r.metrics["test_loss"].std() for r in results}
    acc = {r.method: r.metrics["test_accuracy"].mean() for r in results}
    acc_std = {r.method: r.metrics["test_accuracy"].std() for r in results}
    best_fr = min(friedmann, key=mean_test.get)
    best_other = min((n for n in mean_test if n not in friedmann), key=mean_test.get)
    gap = (mean_test[best_other] - mean_test[best_fr]) / np.hypot(std_test[best_other], std_test[best_fr])
    return DigitsSummary(mean_test, std_test, acc, acc_std, min(mean_test, key=mean_test.get), best_fr, best_other, gap)
