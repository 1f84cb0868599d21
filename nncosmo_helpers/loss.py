"""The polynomial loss of eq. 20, L(f) = m^2/2 (f - f0)^n.

For even n this is the potential of chaotic inflation (n = 2) and its quartic cousin. The loss of a
dataset is the mean over its points, so the gradient with respect to the output at point i is
L'(f_i)/N -- the 1/N that turns the NTK eigenvalue lambda_1 into lambda_1/N in eq. 15.

:class:`PolynomialLoss` is a JAX pytree (m and f0 are leaves, n is static), so losses can be
passed through ``jit`` and stacked with ``vmap``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _validate


@jax.tree_util.register_pytree_node_class
class PolynomialLoss:
    """Per-point loss L(f) = m^2/2 (f - f0)^n (eq. 20), for even integer n >= 2 and m > 0."""

    def __init__(self, m, f0, n):
        self.m = _validate.real("m", m, low=0.0, low_open=True)
        self.f0 = _validate.real("f0", f0)
        if isinstance(n, bool) or not _validate._is_concrete_number(n) or not float(n).is_integer():
            raise ValueError(f"n must be an even integer >= 2, got {n!r}")
        n = int(n)
        if n < 2 or n % 2:
            raise ValueError(f"n must be an even integer >= 2, got {n}")
        self.n = n

    # -- pytree protocol: leaves may be tracers, so no validation here --------------------------
    def tree_flatten(self):
        return (self.m, self.f0), self.n

    @classmethod
    def tree_unflatten(cls, n, leaves):
        obj = object.__new__(cls)
        obj.m, obj.f0 = leaves
        obj.n = n
        return obj

    def __repr__(self):
        return f"PolynomialLoss(m={self.m}, f0={self.f0}, n={self.n})"

    def __eq__(self, other):
        return isinstance(other, PolynomialLoss) and (self.m, self.f0, self.n) == (other.m, other.f0, other.n)

    def __hash__(self):
        return hash((type(self), self.m, self.f0, self.n))

    # -- the loss and its derivatives ------------------------------------------------------------
    def __call__(self, f):
        """Per-point loss L(f), elementwise."""
        return 0.5 * self.m**2 * (f - self.f0) ** self.n

    def first(self, f):
        """L'(f) = n m^2/2 (f - f0)^(n-1), elementwise."""
        return 0.5 * self.n * self.m**2 * (f - self.f0) ** (self.n - 1)

    def second(self, f):
        """L''(f) = n (n-1) m^2/2 (f - f0)^(n-2), elementwise (the mass term of eqs. 16 and 19)."""
        return 0.5 * self.n * (self.n - 1) * self.m**2 * (f - self.f0) ** (self.n - 2)

    def dataset(self, f):
        """Dataset loss: the mean of L over all points."""
        return jnp.mean(self(f))

    def grad_f(self, f):
        """Gradient of the dataset loss with respect to the outputs: L'(f_i)/N."""
        f = jnp.asarray(f)
        return self.first(f) / f.size
