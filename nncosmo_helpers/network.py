"""Fully connected networks in the NTK parameterisation.

Every layer, the readout included, computes

    z = W_std / sqrt(fan_in) * h @ W + b_std * b,    W, b ~ N(0, 1),

exactly as ``neural_tangents.stax.Dense(parameterization='ntk')``. The ``alpha`` values of the
paper (Fig. 1) assume this parameterisation.

``mlp`` follows the stax convention and returns an ``(init_fn, apply_fn)`` pair. The modules are
flax ``linen`` modules; ``params`` is a plain nested dict ``{"layer_0": {"W", "b"}, ...}`` with the
readout as the last layer.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.scipy.special import erf

from . import _validate

ACTIVATIONS: dict[str, Callable] = {"erf": erf, "relu": jax.nn.relu}


def activation_derivative(name: str) -> Callable:
    """Derivative of the named activation (used by the layer-wise NTK)."""
    if name == "erf":
        return lambda z: 2.0 / jnp.sqrt(jnp.pi) * jnp.exp(-(z**2))
    if name == "relu":
        return lambda z: (z > 0).astype(z.dtype)
    raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")


# ---------------------------------------------------------------------------------------------
# the one forward (and backward) pass of the package
# ---------------------------------------------------------------------------------------------
HIGHEST = jax.lax.Precision.HIGHEST


class Layers(NamedTuple):
    """What one forward pass leaves behind, per layer l = 0..L (L hidden layers, then the readout).

    ``hs[l]``: the input H_l of layer l (``hs[0]`` is x); ``zs[l]``: its pre-activation z_l, so that
    ``hs[l + 1] = phi(zs[l])`` and ``zs[L]`` is the network output, shape (N, outputs).
    """

    hs: list
    zs: list


def _dense_matmul(layers):
    return lambda l, h: jnp.matmul(h, layers[l]["W"], precision=HIGHEST)


def layer_list(params) -> list:
    """The layers ``[{"W", "b"}, ...]`` of a params dict ``{"layer_0": ..., "layer_L": ...}`` (or a list)."""
    if isinstance(params, dict):
        return [params[f"layer_{l}"] for l in range(len(params))]
    return list(params)


def forward_layers(x, *, n_layers, activation, W_std=1.0, b_std=1.0, matmul, bias, parameterization="ntk"):
    """The forward pass of a fully connected network, layer by layer.

    ``z_l = W_std / sqrt(n_{l-1}) * matmul(l, H_l) + b_std * bias(l)`` (NTK parameterisation, see the
    module docstring) or ``z_l = matmul(l, H_l) + bias(l)`` (``parameterization="standard"``), with
    ``H_0 = x`` and ``H_{l+1} = phi(z_l)``; the last layer (the readout) has no activation.

    ``matmul(l, h)`` computes ``h @ W_l`` and ``bias(l)`` returns ``b_l``: the dense layers of
    :func:`forward` pass the stored matrices, the batched scan engine
    (:mod:`nncosmo_helpers.scans.engine`) its low-rank factorisation. ``W_std`` and ``b_std`` may be
    traced. ``activation`` is a name of :data:`ACTIVATIONS` or a pair ``(phi, dphi)`` of functions
    (the scan engine's own float64 erf). Returns :class:`Layers`.
    """
    phi = ACTIVATIONS[activation] if isinstance(activation, str) else activation[0]
    hs, zs = [], []
    h = x
    for l in range(n_layers):
        hs.append(h)
        if parameterization == "ntk":
            # python-float sqrt (math.sqrt, not np.sqrt) keeps float32 networks in float32
            z = (W_std / math.sqrt(h.shape[-1])) * matmul(l, h) + b_std * bias(l)
        else:
            z = matmul(l, h) + bias(l)
        zs.append(z)
        h = phi(z) if l < n_layers - 1 else z
    return Layers(hs, zs)


def backward_layers(layers: Layers, *, activation, W_std=1.0, matmul_t):
    """Backward signals delta_l = df/dz_l of a scalar-output network (NTK parameterisation), per point.

    ``delta_L = 1`` and ``delta_{l-1} = phi'(z_{l-1}) * W_std / sqrt(n_{l-1}) * matmul_t(l, delta_l)``
    with ``matmul_t(l, d) = d @ W_l^T``. Returns the list ``[delta_0, ..., delta_L]``.
    """
    dphi = activation_derivative(activation) if isinstance(activation, str) else activation[1]
    hs, zs = layers
    L = len(zs) - 1
    deltas = [None] * (L + 1)
    deltas[L] = jnp.ones_like(zs[L])
    for l in range(L, 0, -1):
        deltas[l - 1] = dphi(zs[l - 1]) * ((W_std / math.sqrt(hs[l].shape[-1])) * matmul_t(l, deltas[l]))
    return deltas


def forward(params, x, *, activation, W_std=1.0, b_std=1.0, parameterization="ntk") -> Layers:
    """The forward pass of the MLP with parameters ``params`` (dict of :func:`mlp` or list of layers).

    The one forward pass of the package: :func:`mlp`'s ``apply_fn`` (and the flax module), the
    structured NTK (:mod:`nncosmo_helpers.ntk`) and, with its own ``matmul``, the batched scan engine
    all run :func:`forward_layers`. ``parameterization="standard"`` (z = h W + b) serves classifiers
    with He-initialised weights.
    """
    layers = layer_list(params)
    return forward_layers(x, n_layers=len(layers), activation=activation, W_std=W_std, b_std=b_std,
                          matmul=_dense_matmul(layers), bias=lambda l: layers[l]["b"],
                          parameterization=parameterization)


#: Up to this many input points the backward pass uses the matrix-vector form.
FEW_POINTS = 16


def forward_backward(params, x, *, activation, W_std, b_std):
    """:func:`forward` and :func:`backward_layers` for a params dict: ``(Layers, deltas)``."""
    layers = layer_list(params)
    fwd = forward(layers, x, activation=activation, W_std=W_std, b_std=b_std)

    def matmul_t(l, d):
        W = layers[l]["W"]
        if d.shape[0] <= FEW_POINTS:
            # matrix-vector regime (e.g. alpha): W @ delta^T reads W as stored, whereas delta @ W^T
            # makes the CPU matmul pack a transposed copy of all of W, which dominates the cost
            return jnp.matmul(W, d.T, precision=HIGHEST).T
        return jnp.matmul(d, W.T, precision=HIGHEST)

    return fwd, backward_layers(fwd, activation=activation, W_std=W_std, matmul_t=matmul_t)


class _LayerParams(nn.Module):
    """The parameters W (fan_in, features) and b (features,) of one dense layer, drawn from N(0, 1)."""

    features: int
    dtype: jnp.dtype = jnp.float64

    @nn.compact
    def __call__(self, fan_in):
        W = self.param("W", nn.initializers.normal(1.0, dtype=self.dtype), (fan_in, self.features))
        b = self.param("b", nn.initializers.normal(1.0, dtype=self.dtype), (self.features,))
        return {"W": W, "b": b}


class MLP(nn.Module):
    """``hidden_layers`` dense layers of ``width`` units with an activation, then a scalar readout.

    flax declares the parameters (names ``layer_l/W``, ``layer_l/b``, their shapes and N(0, 1)
    initialisers); the computation is :func:`forward`.
    """

    width: int
    hidden_layers: int
    activation: str
    W_std: float
    b_std: float
    dtype: jnp.dtype = jnp.float64

    @nn.compact
    def __call__(self, x):
        sizes = [x.shape[-1]] + [self.width] * self.hidden_layers + [1]
        layers = [_LayerParams(sizes[l + 1], self.dtype, name=f"layer_{l}")(sizes[l])
                  for l in range(self.hidden_layers + 1)]
        return forward(layers, x, activation=self.activation, W_std=self.W_std, b_std=self.b_std).zs[-1]


@dataclasses.dataclass(frozen=True)
class MLPApply:
    """``apply_fn`` of an :func:`mlp`: callable as ``apply_fn(params, x) -> (N, 1)``.

    It is a frozen (hashable) dataclass so that it can be a static argument of ``jax.jit`` and so
    that :func:`nncosmo_helpers.ntk.empirical_ntk` can recognise the architecture and use its
    layer-wise fast path.
    """

    width: int
    hidden_layers: int
    activation: str
    W_std: float
    b_std: float
    dtype: str = "float64"

    @property
    def module(self) -> MLP:
        return MLP(self.width, self.hidden_layers, self.activation, self.W_std, self.b_std, jnp.dtype(self.dtype))

    def __call__(self, params, x):
        x = jnp.asarray(x)
        d_in = params["layer_0"]["W"].shape[0]
        if x.ndim != 2 or x.shape[1] != d_in:
            raise ValueError(f"x must have shape (N, {d_in}) to match the network input, got {x.shape}")
        x = x.astype(params["layer_0"]["W"].dtype)
        return forward(params, x, activation=self.activation, W_std=self.W_std, b_std=self.b_std).zs[-1]


def mlp(*, width: int, hidden_layers: int, activation: str, W_std: float, b_std: float, dtype=jnp.float64):
    """Build an MLP in the NTK parameterisation.

    Returns ``(init_fn, apply_fn)`` with ``params = init_fn(key, input_dim)`` and
    ``apply_fn(params, x)`` of shape ``(N, 1)`` for ``x`` of shape ``(N, input_dim)``.

    Args:
        width: units per hidden layer, >= 1.
        hidden_layers: number of hidden layers, >= 0 (0 gives a linear model).
        activation: ``"erf"`` or ``"relu"``.
        W_std, b_std: weight and bias standard deviations (W_std > 0, b_std >= 0).
        dtype: parameter dtype; float64 by default (see the package docstring).
    """
    width = _validate.integer("width", width, low=1)
    hidden_layers = _validate.integer("hidden_layers", hidden_layers, low=0)
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    W_std = _validate.real("W_std", W_std, low=0.0, low_open=True)
    b_std = _validate.real("b_std", b_std, low=0.0)
    try:
        dtype = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dtype not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    apply_fn = MLPApply(width, hidden_layers, activation, W_std, b_std, dtype.name)

    def init_fn(key, input_dim: int):
        input_dim = _validate.integer("input_dim", input_dim, low=1)
        return apply_fn.module.init(key, jnp.zeros((1, input_dim), dtype))["params"]

    return init_fn, apply_fn


def cast(params, dtype):
    """Return ``params`` with every leaf cast to ``dtype`` (e.g. for float32 comparisons)."""
    return jax.tree_util.tree_map(lambda p: p.astype(dtype), params)


def n_params(params) -> int:
    """Total number of trainable parameters."""
    return sum(p.size for p in jax.tree_util.tree_leaves(params))
