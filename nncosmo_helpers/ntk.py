"""Neural tangent kernels: empirical (finite width) and infinite width.

The empirical NTK is Theta(x, x') = grad_theta f(x) . grad_theta f(x') (the kernel of eqs. 5 and 9).
Evaluated at one input point it is the paper's alpha (eq. 7). Two implementations:

* a generic one for any ``apply_fn`` (explicit Jacobians, ``jax.jacrev``);
* a structured, layer-wise one for this package's own :func:`~nncosmo_helpers.network.mlp`,

      Theta = sum_l (delta_l delta_l'^T) o (W_std^2 / n_{l-1} H_{l-1} H_{l-1}'^T + b_std^2),

  built from one forward and one backward pass (delta_l = df/dz_l). It never materialises the
  Jacobian, so its memory is O(N * width) rather than O(N * n_params).

The infinite-width kernel is the closed-form recursion of Jacot et al. and Lee et al. in the NTK
parameterisation, with the arcsine kernel for erf and the arc-cosine kernel for relu, in the same
conventions as ``neural_tangents.stax`` (input covariance x.x'/d).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _validate
from .network import ACTIVATIONS, MLPApply, forward_backward

HIGHEST = jax.lax.Precision.HIGHEST


def _as_inputs(name, x):
    x = jnp.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (N, input_dim), got {x.shape}")
    return x


# ---------------------------------------------------------------------------------------------
# empirical NTK
# ---------------------------------------------------------------------------------------------
def empirical_ntk(apply_fn, params, x1, x2=None, *, implementation: str = "auto"):
    """Finite-width NTK Theta(x1, x2) = J(x1) J(x2)^T, shape (N1, N2) (eqs. 5, 9).

    Args:
        apply_fn: ``apply_fn(params, x) -> (N, 1)``.
        params: network parameters.
        x1, x2: inputs of shape (N1, d) and (N2, d); ``x2=None`` means ``x2 = x1``.
        implementation: ``"auto"`` (structured for this package's MLPs, generic otherwise),
            ``"structured"`` or ``"jacobian"``.
    """
    _validate.finite_inputs("x1", x1, "x2", x2)
    same = x2 is None or x2 is x1
    x1 = _as_inputs("x1", x1)
    x2 = x1 if same else _as_inputs("x2", x2)
    if implementation not in ("auto", "structured", "jacobian"):
        raise ValueError(f"implementation must be 'auto', 'structured' or 'jacobian', got {implementation!r}")
    is_mlp = isinstance(apply_fn, MLPApply)
    if implementation == "structured" and not is_mlp:
        raise ValueError("implementation='structured' needs an apply_fn from nncosmo_helpers.network.mlp")
    if is_mlp:  # shape checks, outside jit
        d_in = params["layer_0"]["W"].shape[0]
        for name, x in (("x1", x1), ("x2", x2)):
            if x.shape[1] != d_in:
                raise ValueError(f"{name} must have shape (N, {d_in}) to match the network input, got {x.shape}")
    if is_mlp and implementation != "jacobian":
        if x2 is x1:  # x2=None or the same array: one forward/backward pass serves both sides
            return _structured_ntk_symmetric(apply_fn, params, x1)
        return _structured_ntk(apply_fn, params, x1, x2)
    return _jacobian_ntk(apply_fn, params, x1, x2)


def _jacobian_ntk_impl(apply_fn, params, x1, x2):
    def jac(x):
        j = jax.jacrev(lambda p: apply_fn(p, x)[:, 0])(params)
        return [leaf.reshape(x.shape[0], -1) for leaf in jax.tree_util.tree_leaves(j)]

    j1, j2 = jac(x1), jac(x2)
    return sum(jnp.matmul(a, b.T, precision=HIGHEST) for a, b in zip(j1, j2))


_jacobian_ntk = jax.jit(_jacobian_ntk_impl, static_argnums=0)


def _forward_backward(spec: MLPApply, params, x):
    """Inputs H_l to every layer and backward signals delta_l = df/dz_l, for one batch (one pass of
    :func:`nncosmo_helpers.network.forward_backward`)."""
    x = x.astype(params["layer_0"]["W"].dtype)
    fwd, deltas = forward_backward(params, x, activation=spec.activation, W_std=spec.W_std, b_std=spec.b_std)
    return fwd.hs, deltas


def layer_sum(hs1, d1, hs2, d2, W_std, b_std):
    """Theta = sum_l (delta_l delta_l'^T) o (W_std^2 / n_{l-1} H_{l-1} H_{l-1}'^T + b_std^2) (module docstring).

    From the layer inputs ``hs`` and backward signals ``d`` of two batches (:func:`~nncosmo_helpers.network.
    forward_backward`); ``W_std`` and ``b_std`` may be traced (the batched scan engine uses this too).
    """
    theta = 0.0
    for h1, dd1, h2, dd2 in zip(hs1, d1, hs2, d2):
        hh = (W_std**2 / h1.shape[-1]) * jnp.matmul(h1, h2.T, precision=HIGHEST) + b_std**2
        dd = jnp.matmul(dd1, dd2.T, precision=HIGHEST)
        theta = theta + dd * hh
    return theta


def _layer_sum(spec: MLPApply, hs1, d1, hs2, d2):
    return layer_sum(hs1, d1, hs2, d2, spec.W_std, spec.b_std)


def _structured_ntk_impl(spec: MLPApply, params, x1, x2):
    hs1, d1 = _forward_backward(spec, params, x1)
    hs2, d2 = _forward_backward(spec, params, x2)
    return _layer_sum(spec, hs1, d1, hs2, d2)


def _structured_ntk_symmetric_impl(spec: MLPApply, params, x):
    hs, ds = _forward_backward(spec, params, x)
    return _layer_sum(spec, hs, ds, hs, ds)


_structured_ntk = jax.jit(_structured_ntk_impl, static_argnums=0)
_structured_ntk_symmetric = jax.jit(_structured_ntk_symmetric_impl, static_argnums=0)


def alpha(apply_fn, params, x0=None):
    """The homogeneous coupling alpha = Theta(x0, x0) at a single input point (eq. 7).

    ``x0`` defaults to the origin of the network's input space, shape (1, d).
    """
    _validate.require_float64()
    if x0 is None:
        x0 = jnp.zeros((1, params["layer_0"]["W"].shape[0]))
    x0 = _validate.single_point("x0", x0)
    return empirical_ntk(apply_fn, params, x0)[0, 0]


# ---------------------------------------------------------------------------------------------
# infinite-width NTK
# ---------------------------------------------------------------------------------------------
def _dense(k11, k12, k22, ntk, W_std, b_std):
    k11 = W_std**2 * k11 + b_std**2
    k22 = W_std**2 * k22 + b_std**2
    k12 = W_std**2 * k12 + b_std**2
    ntk = k12 + W_std**2 * ntk
    return k11, k12, k22, ntk


def _erf(k11, k12, k22, ntk):
    prod = (1 + 2 * k11[:, None]) * (1 + 2 * k22[None, :])
    kdot = 4 / jnp.pi / jnp.sqrt(prod - 4 * k12**2)
    k12_new = 2 / jnp.pi * jnp.arcsin(2 * k12 / jnp.sqrt(prod))
    k11 = 2 / jnp.pi * jnp.arcsin(2 * k11 / (1 + 2 * k11))
    k22 = 2 / jnp.pi * jnp.arcsin(2 * k22 / (1 + 2 * k22))
    return k11, k12_new, k22, ntk * kdot


def _relu(k11, k12, k22, ntk):
    norm = jnp.sqrt(k11[:, None] * k22[None, :])
    cos = jnp.clip(k12 / norm, -1.0, 1.0)
    theta = jnp.arccos(cos)
    k12_new = norm / (2 * jnp.pi) * (jnp.sin(theta) + (jnp.pi - theta) * cos)
    kdot = (jnp.pi - theta) / (2 * jnp.pi)
    return k11 / 2, k12_new, k22 / 2, ntk * kdot


def infinite_width_ntk(x1, x2=None, *, hidden_layers: int, activation: str, W_std: float, b_std: float):
    """Closed-form infinite-width NTK of :func:`~nncosmo_helpers.network.mlp`, shape (N1, N2).

    The NTK-parameterised recursion (Lee et al. 2019; Novak et al. 2019): after each dense layer
    K <- W_std^2 K + b_std^2 and Theta <- K + W_std^2 Theta; after each activation
    K <- E[phi(u) phi(v)] and Theta <- Theta * E[phi'(u) phi'(v)] (arcsine kernel for erf,
    arc-cosine kernel for relu). The input covariance is x . x' / d.
    """
    _validate.finite_inputs("x1", x1, "x2", x2)
    hidden_layers = _validate.integer("hidden_layers", hidden_layers, low=0)
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    W_std = _validate.real("W_std", W_std, low=0.0, low_open=True)
    b_std = _validate.real("b_std", b_std, low=0.0)
    x1 = _as_inputs("x1", x1).astype(jnp.float64)
    x2 = x1 if x2 is None else _as_inputs("x2", x2).astype(jnp.float64)
    if x1.shape[1] != x2.shape[1]:
        raise ValueError(f"x1 and x2 must have the same input dimension, got {x1.shape} and {x2.shape}")
    return _infinite_ntk(x1, x2, hidden_layers, activation, W_std, b_std)


def _infinite_ntk_impl(x1, x2, hidden_layers, activation, W_std, b_std):
    d = x1.shape[1]
    k11 = jnp.sum(x1 * x1, axis=1) / d
    k22 = jnp.sum(x2 * x2, axis=1) / d
    k12 = jnp.matmul(x1, x2.T, precision=HIGHEST) / d
    ntk = jnp.zeros_like(k12)
    nonlin = _erf if activation == "erf" else _relu
    for _ in range(hidden_layers):
        k11, k12, k22, ntk = _dense(k11, k12, k22, ntk, W_std, b_std)
        k11, k12, k22, ntk = nonlin(k11, k12, k22, ntk)
    return _dense(k11, k12, k22, ntk, W_std, b_std)[3]


_infinite_ntk = jax.jit(_infinite_ntk_impl, static_argnums=(2, 3))
