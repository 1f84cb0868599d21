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
  configuration whose basis would need more than ``rank`` directions is flagged (``overflow``).
  :func:`train_momentum_batched` therefore runs a low-rank batch in segments (:data:`SEGMENTS`): a
  configuration that overflows in a segment goes back to its state at the segment's start, which is
  converted exactly to 4x the basis (zero-padded) or to dense weights (W = W0 + Q_h^T D Q_d, trace
  Q_h^T M Q_d), and runs that segment and the rest of the run there, in batches of fixed size. Networks
  that move far at x0 = 1 add a direction on almost every step, so some end dense; before this they
  were rerun from the start, first with 4x the basis and then densely.

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


#: name of the vmapped configuration axis of a batch (:func:`_segment_batch`): the basis extension asks,
#: with a ``psum`` over it, whether any configuration of the batch needs a new direction this step
CONFIG_AXIS = "config"


def _extend_basis(Q, k, a, v, tol, R, active, aQ=None):
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
    A configuration that is no longer ``active`` (it has moved to a larger representation, see
    :func:`train_momentum_batched`) does not take part in that vote.
    """
    r = v - (_comb(a, Q) if aQ is None else aQ)
    vnorm = jnp.sqrt(jnp.sum(v * v))
    first = jnp.sqrt(jnp.sum(r * r)) > tol * vnorm
    anyone = jax.lax.psum((first & active).astype(jnp.int32), CONFIG_AXIS) > 0

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


# ------------------------------------------------------------------------------------------------
# one configuration: initial carry, a segment of steps, the end point (vmapped by the callers)
# ------------------------------------------------------------------------------------------------
def _W0s(params, plan):
    """The shared initial weights W0 of the low-rank layers."""
    return {l: params[f"layer_{l}"]["W"] for l in plan.lowrank_layers}


def _initial_carry(params, plan, dtype, n_configs):
    """The carry of ``n_configs`` configurations before their first step (built eagerly: no compilation).

    It holds the training state (parameters, momentum trace, bases), the step counter ``k``, the
    divergence step ``bad`` (-1: none yet), the divergence bound of ``train_momentum`` (set from the
    output at step 0) and ``active`` (False once the configuration has left this batch for a larger
    representation)."""
    state0, _ = _initial_state(params, plan, dtype)
    batched = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (n_configs,) + a.shape), state0)
    return {"state": batched, "k": jnp.zeros(n_configs, jnp.int32), "bad": -jnp.ones(n_configs, jnp.int32),
            "bound": jnp.zeros(n_configs, dtype), "active": jnp.ones(n_configs, bool)}


def _bound(f, loss):
    """The divergence bound of ``train.train_momentum`` from the initial output f."""
    return DIVERGENCE_FACTOR * (1.0 + jnp.abs(loss.f0) + jnp.max(jnp.abs(f)))


def _segment_one(params, x, hp, carry, plan, tol, n_blocks):
    """``n_blocks * plan.record_every`` steps of eq. 2 from ``carry``, then the end point.

    Returns the new carry, the records (output, loss, alpha) at the start of each block, whether the
    low-rank bases needed more than ``plan.rank`` directions in this segment (``overflow``: the segment
    is then inexact and must be run again in a larger representation), and the end point after the
    segment: output, loss, alpha, divergence step, NTK (``plan.kernels``) and basis sizes. The end point
    costs one more forward and backward pass per segment; the last segment's is the run's."""
    W0s = _W0s(params, plan)
    L = plan.arch.hidden_layers
    N = plan.n_points
    R = plan.rank
    loss = hp["loss"]
    eta, beta = hp["eta"], hp["beta"]
    active = carry["active"]

    def step(c, _):
        state, k, bad, overflow, bound = c
        f, hs, deltas, ph, pd = _forward_backward(state, x, W0s, hp, plan)
        bound = jnp.where(k == 0, _bound(f, loss), bound)
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
                Qh, kh, ah, ofh = _extend_basis(lr["Qh"], lr["kh"], ph[l][0], hs[l][0], tol, R, active, aQ=pd[l][1])
                Qd, kd, ad, ofd = _extend_basis(lr["Qd"], lr["kd"], pd[l][0][0] * g_out[0], dl[0], tol, R, active)
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
        return (new, k + 1, bad, overflow, bound), (f, value, alpha)

    def block(c, _):
        c, (fs, values, alphas) = jax.lax.scan(step, c, None, length=plan.record_every)
        return c, (fs[0], values[0], alphas[0])

    c0 = (carry["state"], carry["k"], carry["bad"], jnp.zeros((), bool), carry["bound"])
    (state, k, bad, overflow, bound), records = jax.lax.scan(block, c0, None, length=n_blocks)
    # the end point
    f, hs, deltas, _, _ = _forward_backward(state, x, W0s, hp, plan)
    bound = jnp.where(k == 0, _bound(f, loss), bound)  # (no step yet: f is the initial output)
    ok = jnp.all(jnp.isfinite(f) & (jnp.abs(f) < bound))
    kern = _kernel(hs, deltas, hp)
    end = {"f": f, "loss": loss.dataset(f), "alpha": jnp.sum(kern) / N**2 if N == 1 else jnp.zeros((), f.dtype),
           "bad": jnp.where((bad < 0) & ~ok, k, bad)}
    if plan.kernels:
        end["kernel_final"] = kern
    if plan.lowrank_layers:
        end["rank"] = jnp.stack([jnp.maximum(state["lr"][l]["kh"], state["lr"][l]["kd"]) for l in plan.lowrank_layers])
    return dict(carry, state=state, k=k, bad=bad, bound=bound), records, overflow, end


@partial(jax.jit, static_argnums=(4, 5, 6))
def _segment_batch(params, x, hps, carry, plan, tol, n_blocks):
    return jax.vmap(_segment_one, in_axes=(None, None, 0, 0, None, None, None), axis_name=CONFIG_AXIS)(
        params, x, hps, carry, plan, tol, n_blocks)


def _convert(params, carry, src, dst):
    """The carries (batched) of configurations moved from plan ``src`` to the larger ``dst``; exact.

    Not jitted: the number of configurations moved at once varies, and these few operations would
    compile again for each.

    A larger basis: the bases are padded with zero rows (the next direction goes to row k as
    before), M and D with zeros. Dense: W = W0 + Q_h^T D Q_d and the momentum trace Q_h^T M Q_d, the
    matrices the low-rank state stands for (one rounding per product)."""
    state = carry["state"]
    new = {"W": dict(state["W"]), "mW": dict(state["mW"]), "b": state["b"], "mb": state["mb"], "lr": {}}
    for l in src.lowrank_layers:
        lr = state["lr"][l]
        if l in dst.lowrank_layers:
            p = dst.rank - src.rank
            rows = ((0, 0), (0, p), (0, 0))
            square = ((0, 0), (0, p), (0, p))
            new["lr"][l] = {"Qh": jnp.pad(lr["Qh"], rows), "kh": lr["kh"], "Qd": jnp.pad(lr["Qd"], rows), "kd": lr["kd"],
                            "M": jnp.pad(lr["M"], square), "D": jnp.pad(lr["D"], square)}
        else:
            QhT = jnp.swapaxes(lr["Qh"], 1, 2)
            new["W"][l] = params[f"layer_{l}"]["W"][None] + _mm(_mm(QhT, lr["D"]), lr["Qd"])
            if dst.momentum:
                new["mW"][l] = _mm(_mm(QhT, lr["M"]), lr["Qd"])
    return dict(carry, state=new, active=jnp.ones_like(carry["active"]))


def _initial_state(params, plan: _Plan, dtype):
    """The initial training state of one configuration and the shared W0 of the low-rank layers."""
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


# ------------------------------------------------------------------------------------------------
# the driver: segments, and the ladder of representations for configurations whose basis overflows
# ------------------------------------------------------------------------------------------------
#: A low-rank batch runs in about this many segments; a configuration whose basis overflows in a
#: segment runs that segment again (from its state at the segment's start) in the next representation.
SEGMENTS = 10
#: Batch sizes of the larger representations (fixed, so each compiles once; the last batch is padded
#: with copies of its first configuration): the 4x basis and the dense method.
LADDER_BATCH = {"lowrank": 16, "dense": 4}


def _segment_blocks(n_blocks: int, ladder: bool) -> int:
    """Blocks per segment: all of them without a ladder; else the smallest divisor of ``n_blocks``
    that gives at most :data:`SEGMENTS` segments (equal segments: one compilation)."""
    if not ladder or n_blocks == 0:
        return max(n_blocks, 1)
    return min(d for d in range(1, n_blocks + 1) if n_blocks % d == 0 and d * SEGMENTS >= n_blocks)


def _take(tree, idx):
    idx = jnp.asarray(idx)
    return jax.tree_util.tree_map(lambda a: a[idx], tree)


def _concat(a, b):
    if a is None:
        return b
    return jax.tree_util.tree_map(lambda u, v: jnp.concatenate([u, v]), a, b)


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
        rank: basis size per low-rank layer. The low-rank batch runs in about :data:`SEGMENTS`
            segments; a configuration whose basis needs more directions in a segment is moved, with its
            state at the segment's start converted exactly, to a basis of 4 * rank (if that is below the
            width) and then to the dense method, and runs that segment and the rest there.
        tol: relative size below which a new direction is dropped (low-rank method).
        kernels: also return the empirical NTK on x at the start and the end (``kernel_initial``,
            ``kernel_final``, shape (C, N, N)).
        sharding: optional ``jax.sharding.Sharding`` for the configuration axis (see
            :func:`config_sharding`); the results are identical to the unsharded run.

    Returns:
        dict of numpy arrays: ``f`` (C, steps // record_every + 1, N) -- row k is the output after
        k * record_every steps; ``loss`` (C, rows); ``alpha`` (C, rows) = Theta(x, x) along the
        trajectory (N = 1 only); ``divergence_step`` (C,) -- the first step with a non-finite or
        out-of-bound output, -1 if none; ``method`` (C,) -- the method each configuration ended with
        (``"lowrank"``, ``"lowrank4"`` for the 4x basis, ``"dense"``); ``method_from_step`` (C,) -- the
        step from which it ran with that method; for low-rank runs ``rank`` (C, layers) -- the final
        basis size of each low-rank layer (-1 for a configuration that ended dense); and the kernels if
        requested.
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

    dtype = jnp.dtype(arch.dtype)
    L = arch.hidden_layers
    momentum = bool(np.any(cols["beta"] != 0.0))  # static: plain GD needs no trace
    n_rows = steps // record_every

    def plan_of(meth, r):
        lowrank_layers = tuple(range(1, L)) if meth == "lowrank" else ()
        return _Plan(arch, lowrank_layers, int(r), record_every, x.shape[0], kernels, momentum)

    # the ladder of representations: the requested one, then (low rank) 4x the basis, then dense
    ladder = [("lowrank" if method == "lowrank" else "dense", plan_of(method, rank))]
    if method == "lowrank":
        if 4 * rank < arch.width:
            ladder.append(("lowrank4", plan_of("lowrank", 4 * rank)))
        ladder.append(("dense", plan_of("dense", rank)))
    seg = _segment_blocks(n_rows, len(ladder) > 1)
    n_dev = len(sharding.device_set) if sharding is not None else 1
    xj = jnp.asarray(x, dtype)
    pj = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)
    tol = float(tol)

    def hps_of(ids):
        sub = {k: jnp.asarray(v[ids], dtype) for k, v in cols.items()}
        sub["loss"] = PolynomialLoss.stack([losses[i] for i in ids], dtype)
        return sub

    def put(tree):
        return tree if sharding is None else jax.tree_util.tree_map(lambda v: jax.device_put(v, sharding), tree)

    out = {"f": np.zeros((C, n_rows + 1, x.shape[0]), dtype), "loss": np.zeros((C, n_rows + 1), dtype),
           "alpha": np.zeros((C, n_rows + 1), dtype), "bad": -np.ones(C, int)}
    if kernels:
        out["kernel_initial"] = np.zeros((C, x.shape[0], x.shape[0]), dtype)
        out["kernel_final"] = np.zeros((C, x.shape[0], x.shape[0]), dtype)
    lowrank_layers = ladder[0][1].lowrank_layers
    rank_out = -np.ones((C, len(lowrank_layers)), int)
    methods = np.array([ladder[0][0]] * C, dtype=object)
    from_step = np.zeros(C, int)

    def store(ids, rows, recs):
        fs, values, alphas = (np.asarray(v) for v in recs)
        ids = ids[:, None]
        out["f"][ids, rows] = fs
        out["loss"][ids, rows] = values
        out["alpha"][ids, rows] = alphas

    # rung 0: the whole batch (padded to the device count), one compilation; a configuration that moves
    # up the ladder stays in this batch, inactive, and its rows there are ignored
    ids0 = np.concatenate([np.arange(C), np.zeros(-C % n_dev, int)])
    hps0 = put(hps_of(ids0))
    carry0 = put(_initial_carry(pj, ladder[0][1], dtype, len(ids0)))
    if kernels:
        out["kernel_initial"][:] = np.asarray(_kernels_batch(pj, xj, hps0, arch))[:C]
    live0 = np.ones(len(ids0), bool)
    real = np.arange(len(ids0)) < C
    # rungs >= 1: member configuration ids and their (unpadded) carry, run in fixed-size padded batches
    members = [np.zeros(0, int) for _ in ladder]
    carries = [None for _ in ladder]

    def on_rung(r, carry, n_blocks):
        """A segment of rung r >= 1 on all its members, in padded batches of a fixed size; the outputs
        concatenated, padding dropped."""
        ids, plan = members[r], ladder[r][1]
        B = -(-LADDER_BATCH["dense" if r == len(ladder) - 1 else "lowrank"] // n_dev) * n_dev
        parts = []
        for i in range(0, len(ids), B):
            n = min(B, len(ids) - i)
            pad = np.concatenate([np.arange(i, i + n), np.full(B - n, i)])
            res = _segment_batch(pj, xj, put(hps_of(ids[pad])), put(_take(carry, pad)), plan, tol, n_blocks)
            parts.append(_take(res, np.arange(n)))
        return parts[0] if len(parts) == 1 else jax.tree_util.tree_map(lambda *v: jnp.concatenate(v), *parts)

    def move(r, start, pick, k0):
        """Send the configurations ``pick`` (global ids) of rung r, with their start carry, to rung r + 1."""
        members[r + 1] = np.concatenate([members[r + 1], pick])
        carries[r + 1] = _concat(carries[r + 1], _convert(pj, start, ladder[r][1], ladder[r + 1][1]))
        methods[pick] = ladder[r + 1][0]
        from_step[pick] = k0

    def finish(ids, end, rows):
        end = {k: np.asarray(v)[rows] for k, v in end.items()}
        out["f"][ids, -1], out["loss"][ids, -1], out["alpha"][ids, -1] = end["f"], end["loss"], end["alpha"]
        out["bad"][ids] = end["bad"]
        if kernels:
            out["kernel_final"][ids] = end["kernel_final"]
        if "rank" in end:
            rank_out[ids] = end["rank"]

    segments = [(s, seg) for s in range(0, n_rows, seg)] or [(0, 0)]  # steps = 0: only the end point
    for s, n_blocks in segments:
        rows = np.arange(s, s + n_blocks)[None, :]
        k0 = s * record_every
        last = s + n_blocks >= n_rows
        start = carry0
        carry0, rec, of, end = _segment_batch(pj, xj, hps0, carry0, ladder[0][1], tol, n_blocks)
        up = np.asarray(of) & (np.asarray(start["bad"]) < 0)  # overflowed, not diverged before this segment
        mv = np.flatnonzero(real & live0 & up)
        stay = np.flatnonzero(real & live0 & ~up)
        store(ids0[stay], rows, [np.asarray(v)[stay] for v in rec])
        if last:
            finish(ids0[stay], end, stay)
        if mv.size:
            move(0, _take(start, mv), ids0[mv], k0)
            live0 &= ~np.isin(ids0, ids0[mv])  # (with any padding copy of a moved configuration)
            carry0 = dict(carry0, active=put(jnp.asarray(live0)))
        for r in range(1, len(ladder)):
            if not members[r].size:
                continue
            start = carries[r]
            carries[r], rec, of, end = on_rung(r, start, n_blocks)
            up = np.asarray(of) & (np.asarray(start["bad"]) < 0)
            keep = np.flatnonzero(~up)
            store(members[r][keep], rows, [np.asarray(v)[keep] for v in rec])
            if last:
                finish(members[r][keep], end, keep)
            if up.any():
                assert r + 1 < len(ladder), "the dense method cannot overflow"
                move(r, _take(start, np.flatnonzero(up)), members[r][up], k0)
                members[r], carries[r] = members[r][keep], _take(carries[r], keep)

    result = {k: out[k] for k in ("f", "loss") + (("kernel_initial", "kernel_final") if kernels else ())}
    result["alpha"] = out["alpha"] if x.shape[0] == 1 else None
    result["divergence_step"] = out["bad"].astype(int)
    result["method"] = methods
    result["method_from_step"] = from_step
    if lowrank_layers:
        result["rank"] = rank_out
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
    plan = _Plan(arch, (), 1, 1, x.shape[0], True)
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
