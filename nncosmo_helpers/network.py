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
from typing import Callable

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


class NTKDense(nn.Module):
    """A dense layer in the NTK parameterisation (see module docstring)."""

    features: int
    W_std: float
    b_std: float
    dtype: jnp.dtype = jnp.float64

    @nn.compact
    def __call__(self, h):
        fan_in = h.shape[-1]
        W = self.param("W", nn.initializers.normal(1.0, dtype=self.dtype), (fan_in, self.features))
        b = self.param("b", nn.initializers.normal(1.0, dtype=self.dtype), (self.features,))
        return (self.W_std / jnp.sqrt(fan_in)) * (h @ W) + self.b_std * b


class MLP(nn.Module):
    """``hidden_layers`` dense layers of ``width`` units with an activation, then a scalar readout."""

    width: int
    hidden_layers: int
    activation: str
    W_std: float
    b_std: float
    dtype: jnp.dtype = jnp.float64

    @nn.compact
    def __call__(self, x):
        h = x
        phi = ACTIVATIONS[self.activation]
        for i in range(self.hidden_layers):
            h = phi(NTKDense(self.width, self.W_std, self.b_std, self.dtype, name=f"layer_{i}")(h))
        return NTKDense(1, self.W_std, self.b_std, self.dtype, name=f"layer_{self.hidden_layers}")(h)


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
        return self.module.apply({"params": params}, x.astype(params["layer_0"]["W"].dtype))


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
