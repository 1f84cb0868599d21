"""Batched momentum training: many configurations of one architecture in one jitted ``lax.scan``.

:func:`train_momentum_batched` trains C networks that share an architecture (width, depth,
activation) and a raw initialisation (the N(0, 1) draws of one seed) but differ in anything else the
scans vary: the initialisation scales W_std and b_std, the learning rate eta, the momentum beta and
the loss (m, f0, n). All of these are traced, so there is one compilation per architecture and
shape, and the configurations run side by side (``vmap``). It implements exactly the update of
:func:`nncosmo_helpers.train.train_momentum` (eq. 2 of the paper, ``optax.sgd(eta, momentum=beta)``)
and agrees with it to ~1e-12 in float64 (tested).

Two methods, both exact in exact arithmetic:

* ``"dense"``: every configuration carries its own parameters and momentum trace. Works for any
  number of training points N and in float32 (then the parameters are stored, and rounded, in
  float32 exactly as for a network built with ``dtype=jnp.float32``).
* ``"lowrank"`` (float64, homogeneous networks, N = 1): a hidden-to-hidden weight matrix is written
  as W = W0 + Q_h^T D Q_d, with W0 the initial draw (shared by all configurations, so W0^T h for all
  of them is one matrix-matrix product) and orthonormal bases Q_h, Q_d of the layer inputs h and
  backward signals delta seen so far. With one input point the gradient of W is the outer product
  s h delta^T, so training only ever adds rank-one terms; the inputs and backward signals of a
  1000-step run span a low-dimensional space (typically 5-70 directions), so the bases stay small.
  A new direction is added when the component of h (or delta) outside the current basis exceeds
  ``tol`` times its norm (default 1e-12); smaller components are dropped, an error of at most ``tol``
  relative per step. The momentum trace lives in the same basis (matrix M). This turns a
  memory-bound problem (reading and writing every weight matrix of every configuration each step)
  into one shared matrix-matrix product plus O(rank * width) work per configuration. A
  configuration whose basis would need more than ``rank`` directions is flagged (``overflow``) and
  must be rerun with a larger rank or the dense method; :func:`train_momentum_batched` does that
  automatically.

When every configuration of a batch has beta = 0 (plain gradient descent, as in Fig. 5) the momentum
trace is dropped (the update is W - eta g, exactly optax's with a zero trace); erf networks in float64
use :func:`erf64` (the same rational forms as XLA's erf, a third of its cost here).

Divergence is recorded per configuration, not raised: the first step whose output is non-finite or
exceeds ``train.DIVERGENCE_FACTOR (1 + |f0| + max|f_init|)`` (the bound of ``train_momentum``).
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate, network
from ..loss import PolynomialLoss
from ..ntk import layer_sum
from ..train import DIVERGENCE_FACTOR

HIGHEST = jax.lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class Arch:
    """The static part of a network: width, number of hidden layers, activation, dtype name."""

    width: int
    hidden_layers: int
    activation: str
    dtype: str = "float64"

    def mlp(self, W_std, b_std):
        """The package network (:func:`nncosmo_helpers.network.mlp`) with these scales."""
        return network.mlp(width=self.width, hidden_layers=self.hidden_layers, activation=self.activation,
                           W_std=W_std, b_std=b_std, dtype=jnp.dtype(self.dtype))


def raw_params(arch: Arch, seed: int, input_dim: int = 1):
    """The N(0, 1) parameter draws of ``network.mlp(...)[0](PRNGKey(seed), input_dim)``.

    In the NTK parameterisation the draws do not depend on W_std and b_std, so one draw serves every
    initialisation scale. Returned as the package's params dict (``{"layer_0": {"W", "b"}, ...}``).
    """
    init_fn, _ = arch.mlp(1.0, 1.0)
    return init_fn(jax.random.PRNGKey(seed), input_dim)


# ------------------------------------------------------------------------------------------------
# forward / backward of the NTK-parameterised MLP with traced W_std, b_std
# ------------------------------------------------------------------------------------------------
def _mm(a, b):
    return jnp.matmul(a, b, precision=HIGHEST)


def _dot(a, b):
    """a @ b for matrices a (M, K), b (K, N); a product with K = 1 written as the outer product it is.

    K = 1: the first layer's 1-D input, and every weight gradient of one training point. Written
    elementwise, XLA fuses it with its neighbours (the activation, the update of the weights) instead
    of calling a batched dot with a unit dimension; the products are the same (one rounding each).
    Matrix-vector products (the readout) stay dots: written as multiply-and-reduce they were no faster
    and their last bit depended on the batch shape (the sharded run of tests/test_scans.py).
    """
    if a.shape[1] == 1:
        return a * b  # (M, 1) * (1, N)
    return _mm(a, b)


def _rows_dot(Q, v):
    """Q @ v for a matrix Q (R, n) and a vector v (n,)."""
    return _mm(Q, v)


def _comb(a, Q):
    """a @ Q = sum_r a_r Q_r for a vector a (R,) and a matrix Q (R, n)."""
    return _mm(a, Q)


# ------------------------------------------------------------------------------------------------
# erf in float64, vectorised
# ------------------------------------------------------------------------------------------------
# Cephes ndtr.c (S. L. Moshier): erf(x) = x T(x^2)/U(x^2) for |x| < 1, erfc(x) = exp(-x^2) P(x)/Q(x) for
# 1 <= x < 8 (highest power first; U and Q monic), the rational forms XLA's own erf is built on. XLA's
# float64 erf took 15 ns per element on this machine, the form below 5 ns: both branches share one
# division, x >= 8 is clamped (there erfc < 1e-28, so erf = +-1 to the last bit) instead of a third
# branch, and exp(-x^2) is the same expression as the derivative's, so XLA can compute it once for phi
# and phi'.
_ERF_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
          7.00332514112805075473e3, 5.55923013010394962768e4)
_ERF_U = (1.0, 3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
          2.26290000613890934246e4, 4.92673942608635921086e4)
_ERFC_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
           4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
           9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_ERFC_Q = (1.0, 1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
           9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
           1.65666309194161350182e3, 5.57535340817727675546e2)


def _horner(coeffs, x):
    r = jnp.full_like(x, coeffs[0])
    for c in coeffs[1:]:
        r = r * x + c
    return r


def erf64(z):
    """erf(z), elementwise, to ~4.5e-16 relative (as ``jax.scipy.special.erf``; tested against SciPy).

    Meant for float64 (in float32 it is correct but no faster than XLA's own erf).
    """
    a = jnp.abs(z)
    small = a < 1.0
    t = jnp.minimum(a, 8.0)
    e = jnp.exp(-(z**2))
    q = _horner(_ERFC_Q, t)
    num = jnp.where(small, z * _horner(_ERF_T, z * z), jnp.sign(z) * (q - e * _horner(_ERFC_P, t)))
    return num / jnp.where(small, _horner(_ERF_U, z * z), q)


def _activation(name: str, dtype: str):
    """The engine's activation: the package's (by name), or (erf64, phi') for erf in float64."""
    if name == "erf" and dtype == "float64":
        return erf64, network.activation_derivative("erf")
    return name


@dataclasses.dataclass(frozen=True)
class _Plan:
    arch: Arch
    lowrank_layers: tuple  # indices of layers stored as W0 + low rank
    rank: int
    steps: int
    record_every: int
    n_points: int
    kernels: bool
    momentum: bool = True  # False: beta = 0 for every configuration of the batch (no momentum trace)


def _layer_matvec(state, l, h, W0s, plan):
    """h @ W_l for layer l (rows of h are points)."""
    if l in plan.lowrank_layers:  # N = 1: vector code
        lr = state["lr"][l]
        a = _rows_dot(lr["Qh"], h[0])  # (R,)
        return _mm(h, W0s[l]) + _comb(_comb(a, lr["D"]), lr["Qd"])[None], a[None]
    return _dot(h, state["W"][l]), None


def _layer_back(state, l, d, W0s, plan, a_h=None):
    """d @ W_l^T for layer l (rows of d are points).

    Low-rank layers: also (Qd d, a_h Qh) -- the second is the projection of the layer input on the
    basis, needed by the basis extension; it is computed in the same pass over Qh as the backward
    correction (one (2, R) x (R, n) product instead of two vector-matrix products)."""
    if l in plan.lowrank_layers:
        lr = state["lr"][l]
        a = _rows_dot(lr["Qd"], d[0])
        both = _mm(jnp.stack([_rows_dot(lr["D"], a), a_h]), lr["Qh"])
        return _mm(d, W0s[l].T) + both[0][None], (a[None], both[1])
    return _dot(d, state["W"][l].T), None


def _forward_backward(state, x, W0s, hp, plan):
    """Output, layer inputs H_l and unit backward signals delta_l = df/dz_l (per point), by the
    package's one forward/backward pass (:func:`~nncosmo_helpers.network.forward_layers`) with this
    engine's layer products (dense or W0 + low rank); also the basis coefficients of H_l and delta_l
    of the low-rank layers."""
    proj_h, proj_d = {}, {}

    def matmul(l, h):
        hw, proj_h[l] = _layer_matvec(state, l, h, W0s, plan)
        return hw

    def matmul_t(l, d):
        back, proj_d[l] = _layer_back(state, l, d, W0s, plan, proj_h[l][0] if l in proj_h and proj_h[l] is not None else None)
        return back

    act = _activation(plan.arch.activation, plan.arch.dtype)
    fwd = network.forward_layers(x, n_layers=plan.arch.hidden_layers + 1, activation=act, W_std=hp["W_std"],
                                 b_std=hp["b_std"], matmul=matmul, bias=lambda l: state["b"][l])
    deltas = network.backward_layers(fwd, activation=act, W_std=hp["W_std"], matmul_t=matmul_t)
    if 0 in plan.lowrank_layers:  # never: layer 0 takes the raw inputs
        raise AssertionError
    return fwd.zs[-1][:, 0], fwd.hs, deltas, proj_h, proj_d


def _kernel(hs, deltas, hp):
    """Empirical NTK on the training points from the layer-wise factors (:func:`ntk.layer_sum`)."""
    return layer_sum(hs, deltas, hs, deltas, hp["W_std"], hp["b_std"])


#: name of the vmapped configuration axis of a batch (:func:`_train_batch`): the basis extension asks,
#: with a ``psum`` over it, whether any configuration of the batch needs a new direction this step
CONFIG_AXIS = "config"


def _extend_basis(Q, k, a, v, tol, R, aQ=None):
    """Add v's component outside span(Q) (rows) as a new basis row if it exceeds tol |v|.

    ``a = Q v`` on entry (and ``aQ = a Q`` if already computed). Returns the new (Q, k, coefficients
    of v in the new basis, overflow flag). Classical Gram-Schmidt with one re-orthogonalisation of the
    new direction.

    The re-orthogonalisation (two passes over Q) and the masked write of the new row (a read and a
    write of Q) only matter when a direction is added. Whether the residual r = v - a Q exceeds
    tol |v| is known after the first pass; when no configuration of the batch needs a new direction
    (a ``psum`` over the vmapped configuration axis, so the predicate is one value for the batch and
    ``lax.cond`` stays a branch), those passes are skipped. Re-orthogonalising cannot make a residual
    larger, so the skipped steps are steps where nothing would have been added; they only leave out the
    correction a + Q r of the coefficients, which is round-off (|Q r| ~ 1e-16 |v| for an orthonormal Q).
    In a 1000-step Fig. 3 group of 100 networks some network added a direction in ~30% of the steps.
    """
    r = v - (_comb(a, Q) if aQ is None else aQ)
    vnorm = jnp.sqrt(jnp.sum(v * v))
    first = jnp.sqrt(jnp.sum(r * r)) > tol * vnorm
    anyone = jax.lax.psum(first.astype(jnp.int32), CONFIG_AXIS) > 0

    def extend(operands):
        Q, k, a, r = operands
        c = _rows_dot(Q, r)
        r = r - _comb(c, Q)
        a = a + c
        nu = jnp.sqrt(jnp.sum(r * r))
        need = nu > tol * vnorm
        add = need & (k < R)
        slot = (jnp.arange(R) == k) & add  # one-hot; as fast as a batched dynamic_update_slice (measured)
        Q = jnp.where(slot[:, None], (r / jnp.where(nu > 0, nu, 1.0))[None, :], Q)
        a = jnp.where(slot, nu, a)
        return Q, k + add.astype(k.dtype), a, need & (k >= R)

    def keep(operands):
        Q, k, a, _ = operands
        return Q, k, a, jnp.zeros((), bool)

    return jax.lax.cond(anyone, extend, keep, (Q, k, a, r))


def _train_one(params, x, hp, plan, tol):
    """Train one configuration (vmapped over configurations by the caller)."""
    state0, W0s = _initial_state(params, plan, x.dtype)
    L = plan.arch.hidden_layers
    N = plan.n_points
    R = plan.rank
    loss = hp["loss"]
    eta, beta = hp["eta"], hp["beta"]

    f_init = _forward_backward(state0, x, W0s, hp, plan)[0]
    bound = DIVERGENCE_FACTOR * (1.0 + jnp.abs(loss.f0) + jnp.max(jnp.abs(f_init)))

    def step(carry, _):
        state, k, bad, overflow = carry
        f, hs, deltas, ph, pd = _forward_backward(state, x, W0s, hp, plan)
        ok = jnp.all(jnp.isfinite(f) & (jnp.abs(f) < bound))
        bad = jnp.where((bad < 0) & ~ok, k, bad)
        value = loss.dataset(f)
        alpha = jnp.sum(_kernel(hs, deltas, hp)) / N**2 if N == 1 else jnp.zeros((), f.dtype)
        g_out = loss.grad_f(f)  # dL/df_i = L'(f_i)/N
        new = {"W": dict(state["W"]), "mW": dict(state["mW"]), "b": dict(state["b"]), "mb": dict(state["mb"]),
               "lr": dict(state["lr"])}
        for l in range(L + 1):
            dl = deltas[l] * g_out[:, None]  # dL/dz_l per point
            scale = hp["W_std"] / math.sqrt(hs[l].shape[-1])
            gb = hp["b_std"] * jnp.sum(dl, axis=0)
            if plan.momentum:
                mb = gb + beta * state["mb"][l]
                new["mb"][l] = mb
                new["b"][l] = state["b"][l] + (-eta) * mb
            else:
                new["b"][l] = state["b"][l] + (-eta) * gb
            if l in plan.lowrank_layers:
                lr = state["lr"][l]
                Qh, kh, ah, ofh = _extend_basis(lr["Qh"], lr["kh"], ph[l][0], hs[l][0], tol, R, aQ=pd[l][1])
                Qd, kd, ad, ofd = _extend_basis(lr["Qd"], lr["kd"], pd[l][0][0] * g_out[0], dl[0], tol, R)
                M = scale * jnp.outer(ah, ad) + beta * lr["M"]
                new["lr"][l] = {"Qh": Qh, "kh": kh, "Qd": Qd, "kd": kd, "M": M, "D": lr["D"] + (-eta) * M}
                overflow = overflow | ofh | ofd
            elif plan.momentum:
                gW = _dot(hs[l].T, scale * dl)  # the scale on the smaller factor (N x fan_out)
                mW = gW + beta * state["mW"][l]
                new["mW"][l] = mW
                new["W"][l] = state["W"][l] + (-eta) * mW
            else:  # beta = 0 for the whole batch: no trace (m = g exactly), W - eta g
                new["W"][l] = state["W"][l] + _dot(hs[l].T, (-eta * scale) * dl)
        return (new, k + 1, bad, overflow), (f, value, alpha)

    def block(carry, _):
        carry, (fs, values, alphas) = jax.lax.scan(step, carry, None, length=plan.record_every)
        return carry, (fs[0], values[0], alphas[0])

    carry0 = (state0, jnp.zeros((), jnp.int32), -jnp.ones((), jnp.int32), jnp.zeros((), bool))
    (state, k, bad, overflow), (fs, values, alphas) = jax.lax.scan(
        block, carry0, None, length=plan.steps // plan.record_every
    )
    f_last, hs, deltas, _, _ = _forward_backward(state, x, W0s, hp, plan)
    ok = jnp.all(jnp.isfinite(f_last) & (jnp.abs(f_last) < bound))
    bad = jnp.where((bad < 0) & ~ok, k, bad)
    kern_last = _kernel(hs, deltas, hp)
    fs = jnp.concatenate([fs, f_last[None]], axis=0)
    values = jnp.concatenate([values, loss.dataset(f_last)[None]])
    alphas = jnp.concatenate([alphas, (jnp.sum(kern_last) / N**2)[None]]) if N == 1 else alphas
    out = {"f": fs, "loss": values, "alpha": alphas, "bad": bad, "overflow": overflow}
    if plan.kernels:
        _, hs0, deltas0, _, _ = _forward_backward(state0, x, W0s, hp, plan)
        out["kernel_initial"] = _kernel(hs0, deltas0, hp)
        out["kernel_final"] = kern_last
    if plan.lowrank_layers:
        out["rank"] = jnp.stack([jnp.maximum(state["lr"][l]["kh"], state["lr"][l]["kd"]) for l in plan.lowrank_layers])
    return out


@partial(jax.jit, static_argnums=(3, 4))
def _train_batch(params, x, hps, plan, tol):
    return jax.vmap(_train_one, in_axes=(None, None, 0, None, None), axis_name=CONFIG_AXIS)(params, x, hps, plan, tol)


def _initial_state(params, plan: _Plan, dtype):
    """The initial carry of one configuration and the shared W0 of the low-rank layers."""
    L = plan.arch.hidden_layers
    state = {"W": {}, "mW": {}, "b": {}, "mb": {}, "lr": {}}
    W0s = {}
    for l in range(L + 1):
        W = jnp.asarray(params[f"layer_{l}"]["W"], dtype)
        b = jnp.asarray(params[f"layer_{l}"]["b"], dtype)
        state["b"][l] = b
        if plan.momentum:
            state["mb"][l] = jnp.zeros(b.shape, dtype)
        if l in plan.lowrank_layers:
            W0s[l] = W
            R = plan.rank
            state["lr"][l] = {
                "Qh": jnp.zeros((R, W.shape[0]), dtype), "kh": jnp.zeros((), jnp.int32),
                "Qd": jnp.zeros((R, W.shape[1]), dtype), "kd": jnp.zeros((), jnp.int32),
                "M": jnp.zeros((R, R), dtype), "D": jnp.zeros((R, R), dtype),
            }
        else:
            state["W"][l] = W
            if plan.momentum:
                state["mW"][l] = jnp.zeros(W.shape, dtype)
    return state, W0s


def _run(params, x, hps, arch, steps, record_every, method, rank, tol, kernels, momentum=True):
    dtype = jnp.dtype(arch.dtype)
    L = arch.hidden_layers
    lowrank_layers = tuple(range(1, L)) if method == "lowrank" else ()
    plan = _Plan(arch, lowrank_layers, int(rank), steps, record_every, x.shape[0], kernels, bool(momentum))
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)
    return _train_batch(params, jnp.asarray(x, dtype), hps, plan, float(tol))


def train_momentum_batched(
    arch: Arch,
    params,
    x,
    *,
    W_std,
    b_std,
    eta,
    beta,
    losses,
    steps: int,
    record_every: int = 1,
    method: str = "auto",
    rank: int = 32,
    tol: float = 1e-12,
    kernels: bool = False,
    sharding=None,
):
    """Train C configurations of one architecture with momentum GD (eq. 2), side by side.

    Args:
        arch: the architecture (:class:`Arch`; its dtype is the training precision).
        params: raw N(0, 1) parameters shared by all configurations (:func:`raw_params`).
        x: training inputs, shape (N, d).
        W_std, b_std, eta, beta: sequences of length C (one entry per configuration).
        losses: C :class:`~nncosmo_helpers.loss.PolynomialLoss` objects.
        steps, record_every: as in :func:`~nncosmo_helpers.train.train_momentum`.
        method: ``"dense"``, ``"lowrank"`` (float64 and N = 1 only) or ``"auto"`` (low rank when it
            applies and the network has a hidden-to-hidden layer of width > 2 * rank).
        rank: basis size per low-rank layer; configurations that overflow are retried with 4x the
            rank and then with the dense method.
        tol: relative size below which a new direction is dropped (low-rank method).
        kernels: also return the empirical NTK on x at the start and the end (``kernel_initial``,
            ``kernel_final``, shape (C, N, N)).
        sharding: optional ``jax.sharding.Sharding`` for the configuration axis (see
            :func:`config_sharding`); the results are identical to the unsharded run.

    Returns:
        dict of numpy arrays: ``f`` (C, steps // record_every + 1, N) -- row k is the output after
        k * record_every steps; ``loss`` (C, rows); ``alpha`` (C, rows) = Theta(x, x) along the
        trajectory (N = 1 only); ``divergence_step`` (C,) -- the first step with a non-finite or
        out-of-bound output, -1 if none; ``method`` (C,) -- the method each configuration ran with;
        and the kernels if requested.
    """
    steps = _validate.integer("steps", steps, low=0)
    record_every = _validate.integer("record_every", record_every, low=1)
    if steps % record_every:
        raise ValueError(f"record_every must divide steps; got steps={steps}, record_every={record_every}")
    if method not in ("auto", "dense", "lowrank"):
        raise ValueError(f"method must be 'auto', 'dense' or 'lowrank', got {method!r}")
    x = np.asarray(_validate.finite_array("x", x))
    if x.ndim != 2 or x.shape[1] != params["layer_0"]["W"].shape[0]:
        raise ValueError(f"x must have shape (N, {params['layer_0']['W'].shape[0]}), got {x.shape}")
    losses = list(losses)
    C = len(losses)
    cols = {"W_std": W_std, "b_std": b_std, "eta": eta, "beta": beta}
    cols = {k: np.asarray(v, dtype=float).reshape(-1) for k, v in cols.items()}
    for k, v in cols.items():
        if v.shape != (C,):
            raise ValueError(f"{k} must have one entry per loss ({C}), got shape {v.shape}")
    for i in range(C):
        _validate.eta(cols["eta"][i]), _validate.beta(cols["beta"][i])
        if not isinstance(losses[i], PolynomialLoss):
            raise TypeError(f"losses must be PolynomialLoss objects, got {type(losses[i]).__name__}")
    can_lowrank = arch.dtype == "float64" and x.shape[0] == 1 and arch.hidden_layers >= 2
    if method == "lowrank" and not can_lowrank:
        raise ValueError("method='lowrank' needs float64, one training point (N = 1) and >= 2 hidden layers")
    if method == "auto":
        method = "lowrank" if can_lowrank and arch.width > 2 * rank else "dense"

    def go(idx, meth, r):
        n = len(idx)
        if sharding is not None:  # pad the configuration axis to a multiple of the device count
            n_dev = len(sharding.device_set)
            idx = np.concatenate([idx, np.full(-n % n_dev, idx[0])])
        dtype = jnp.dtype(arch.dtype)
        sub = {k: jnp.asarray(v[idx], dtype) for k, v in cols.items()}
        sub["loss"] = PolynomialLoss.stack([losses[i] for i in idx], dtype)
        if sharding is not None:
            sub = jax.tree_util.tree_map(lambda v: jax.device_put(v, sharding), sub)
        momentum = bool(np.any(cols["beta"][idx] != 0.0))  # static: plain GD needs no trace
        out = _run(params, x, sub, arch, steps, record_every, meth, r, tol, kernels, momentum)
        return {k: np.array(v)[:n] for k, v in out.items()}

    idx = np.arange(C)
    out = go(idx, method, rank)
    methods = np.array([method] * C, dtype=object)
    if method == "lowrank":
        for r, meth in ((4 * rank, "lowrank"), (None, "dense")):
            redo = np.flatnonzero(out["overflow"] & (out["bad"] < 0))
            if redo.size == 0:
                break
            if meth == "lowrank" and r >= arch.width:
                meth, r = "dense", rank
            sub = go(redo, meth, r if r else rank)
            for k in ("f", "loss", "alpha", "bad", "overflow") + (("kernel_initial", "kernel_final") if kernels else ()):
                out[k][redo] = sub[k]
            methods[redo] = meth
    result = {k: out[k] for k in ("f", "loss") + (("kernel_initial", "kernel_final") if kernels else ())}
    result["alpha"] = out["alpha"] if x.shape[0] == 1 else None
    result["divergence_step"] = out["bad"].astype(int)
    result["method"] = methods
    if "rank" in out:
        result["rank"] = out["rank"]
    return result


def config_sharding():
    """A ``NamedSharding`` of a 1-D mesh over all devices, splitting the configuration axis.

    ``None`` when there is only one device (nothing to shard).
    """
    devices = jax.devices()
    if len(devices) < 2:
        return None
    mesh = jax.sharding.Mesh(np.array(devices), ("config",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("config"))


# ------------------------------------------------------------------------------------------------
# kernels at initialisation for many initialisation scales at once
# ------------------------------------------------------------------------------------------------
def _kernel_one(params, x, hp, arch):
    plan = _Plan(arch, (), 1, 0, 1, x.shape[0], True)
    state0, W0s = _initial_state(params, plan, x.dtype)
    _, hs, deltas, _, _ = _forward_backward(state0, x, W0s, hp, plan)
    return _kernel(hs, deltas, hp)


@partial(jax.jit, static_argnums=(3,))
def _kernels_batch(params, x, hps, arch):
    return jax.vmap(_kernel_one, in_axes=(None, None, 0, None))(params, x, hps, arch)


def ntk_batched(arch: Arch, params, x, *, W_std, b_std):
    """Empirical NTK on x (N, d) at initialisation for C scale pairs (W_std[i], b_std[i]).

    Same layer-wise formula as :func:`nncosmo_helpers.ntk.empirical_ntk` (structured path), with
    the scales traced: one compilation per architecture, and the hidden-layer products of all C
    scale pairs share each weight matrix (one matrix-matrix product). Returns (C, N, N).
    """
    W_std = np.asarray(W_std, dtype=float).reshape(-1)
    b_std = np.asarray(b_std, dtype=float).reshape(-1)
    if W_std.shape != b_std.shape:
        raise ValueError(f"W_std and b_std must have the same length, got {W_std.shape} and {b_std.shape}")
    dtype = jnp.dtype(arch.dtype)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)
    hps = {"W_std": jnp.asarray(W_std, dtype), "b_std": jnp.asarray(b_std, dtype)}
    return np.asarray(_kernels_batch(params, jnp.asarray(x, dtype), hps, arch))
