"""Argument checks for the public API.

Validation happens once, at the boundary, on concrete Python values; jitted code never sees it.
Every error names the argument and the allowed range.
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

FLOAT64_HINT = "call jax.config.update('jax_enable_x64', True) first (before creating any array)"


def require_float64() -> None:
    """Raise unless JAX computes in double precision (``jax_enable_x64``).

    The package does not switch the global setting on import (no library should). The physics needs
    float64: at small learning rates the per-step parameter updates of eq. 2 are below float32
    resolution and are rounded away, and the ODE tolerances (rtol 1e-10) are below float32 epsilon.
    """
    if not jax.config.read("jax_enable_x64"):
        raise RuntimeError(
            "nncosmo_helpers computes the physics in float64, but JAX is in float32 mode: "
            f"{FLOAT64_HINT}. (Float32 networks stay available explicitly: mlp(..., dtype=jnp.float32).)"
        )


def _is_concrete_number(value) -> bool:
    """A Python/numpy real, or a 0-d real array (numpy or JAX)."""
    if isinstance(value, numbers.Real):
        return True
    dtype = getattr(value, "dtype", None)
    return (
        getattr(value, "shape", None) == ()
        and dtype is not None
        and (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer))
    )


def real(name: str, value, *, low=None, high=None, low_open=False, high_open=False) -> float:
    """Check that ``value`` is a finite real number in the given interval and return it as float."""
    if isinstance(value, (bool, np.bool_)) or not _is_concrete_number(value):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        value = float(value)
    except Exception:  # e.g. a JAX tracer: validation happens outside jit, on concrete values
        raise TypeError(f"{name} must be a concrete real number (validate outside jit), got {type(value).__name__}") from None
    lo = "(" if (low_open or low is None) else "["  # values must be finite: infinite ends are open
    hi = ")" if (high_open or high is None) else "]"
    interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite and in {interval}, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be in {interval}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be in {interval}, got {value}")
    return value


def eta(value) -> float:
    """Learning rate: finite and > 0."""
    return real("eta", value, low=0.0, low_open=True)


def beta(value) -> float:
    """Momentum: in [0, 1)."""
    return real("beta", value, low=0.0, high=1.0, high_open=True)


def integer(name: str, value, *, low: int) -> int:
    """An integer >= low (bools are rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an integer >= {low}, got {value!r}")
    value = int(value)
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value}")
    return value


def finite_array(name: str, value) -> np.ndarray:
    """A real array whose entries are all finite (returned as a float numpy array)."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real array, got {type(value).__name__}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (every entry in (-inf, inf)), got non-finite entries")
    return arr


def steps(value) -> np.ndarray:
    """Evaluation steps: a non-negative, strictly increasing 1-D sequence of numbers."""
    try:
        arr = np.atleast_1d(np.asarray(value, dtype=float))
    except (TypeError, ValueError):
        raise TypeError(f"steps must be a 1-D sequence of step numbers >= 0, got {type(value).__name__}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"steps must be a non-empty 1-D sequence of step numbers >= 0, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("steps must be finite and >= 0 (allowed range [0, inf))")
    if np.any(np.diff(arr) <= 0):
        raise ValueError("steps must be strictly increasing")
    return arr


def kernel(value, *, n_points: int | None = None, rtol: float = 1e-8) -> np.ndarray:
    """A kernel matrix: square, symmetric and positive semi-definite within tolerance."""
    try:
        k = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"kernel must be a real square (N, N) matrix, got {type(value).__name__}") from None
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"kernel must be a square (N, N) matrix, got shape {k.shape}")
    if n_points is not None and k.shape[0] != n_points:
        raise ValueError(f"kernel must be ({n_points}, {n_points}) to match f_init, got {k.shape}")
    if not np.all(np.isfinite(k)):
        raise ValueError("kernel must be finite")
    scale = max(float(np.max(np.abs(k))), 1e-300)
    if np.max(np.abs(k - k.T)) > rtol * scale * 10:
        raise ValueError("kernel must be symmetric (|K - K^T| <= 1e-7 max|K|)")
    lam_min = float(np.linalg.eigvalsh(0.5 * (k + k.T))[0])
    if lam_min < -1e-7 * scale * k.shape[0]:
        raise ValueError(
            f"kernel must be positive semi-definite (eigenvalues >= -1e-7 N max|K|); smallest eigenvalue {lam_min:.3g}"
        )
    return k


def polynomial_loss(value):
    """The loss argument: a :class:`nncosmo_helpers.loss.PolynomialLoss` (or a subclass).

    The class is recognised by name so that this module imports nothing from the package (the loss
    module itself uses the checks here).
    """
    if not any(c.__name__ == "PolynomialLoss" and c.__module__.endswith(".loss") for c in type(value).__mro__):
        raise TypeError(f"loss must be a nncosmo_helpers.loss.PolynomialLoss, got {type(value).__name__}")
    return value


def single_point(name: str, value):
    """One input point of shape (1, d) (a homogeneous network, eq. 7), returned as a JAX array."""
    x = jnp.asarray(value)
    if x.ndim != 2 or x.shape[0] != 1:
        raise ValueError(f"{name} must be a single point of shape (1, d), got {x.shape}")
    return x


def finite_inputs(*named):
    """Check that concrete input arrays are finite; ``named`` alternates names and values.

    ``None`` values and traced values (inside ``jit``) are skipped: the check is for the public
    boundary, where a NaN or inf input would otherwise give a NaN kernel without a word.
    """
    for name, value in zip(named[::2], named[1::2]):
        if value is not None and not isinstance(value, jax.core.Tracer):
            finite_array(name, value)
