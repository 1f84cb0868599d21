"""The polynomial loss of eq. 20, L(f) = m^2/2 (f - f0)^n.

For even n this is the potential of chaotic inflation (n = 2) and its quartic cousin. The loss of a
dataset is the mean over its points, so the gradient with respect to the output at point i is
L'(f_i)/N -- the 1/N that turns the NTK eigenvalue lambda_1 into lambda_1/N in eq. 15.

:class:`PolynomialLoss` is a JAX pytree whose three leaves m, f0 and n may all be traced: losses
with different exponents go through one ``jit`` and stack with ``vmap`` (:meth:`PolynomialLoss.stack`).
Its methods are the one definition of the loss and its derivatives in the package.

A traced integer exponent is evaluated by binary exponentiation (:func:`int_power`), the same
sequence of multiplications that ``x ** n`` performs for a Python integer ``n`` (``lax.integer_pow``),
so the values are bit for bit those of a static exponent, also for negative bases (where a float
exponent ``pow(x, 3.0)`` would go through ``exp(3 log x)``). Autodiff gradients are bit for bit too
for n = 2, 4, 8 and within an ulp otherwise (with a static n, XLA folded the constant n into the
neighbouring constants); inside a larger jitted program XLA may fuse a reduction of the loss (the
dataset mean) differently, which moves the recorded loss by at most an ulp (measured).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _validate

#: Largest exponent a traced n may take (the binary exponentiation is unrolled over this many bits).
MAX_EXPONENT = 2**8 - 1


@jax.custom_jvp
def int_power(x, k):
    """x ** k for an integer array k (0 <= k <= MAX_EXPONENT), elementwise, with k possibly traced.

    Bit for bit ``lax.integer_pow(x, k)`` (the multiplications of binary exponentiation in the same
    order), and its derivative is ``k * x ** (k - 1)`` as for ``integer_pow``.
    """
    k = jnp.asarray(k).astype(jnp.int32)
    acc = jnp.ones_like(x)
    base = x
    for bit in range(MAX_EXPONENT.bit_length()):
        acc = jnp.where((k >> bit) & 1 == 1, acc * base, acc)
        if bit + 1 < MAX_EXPONENT.bit_length():
            base = base * base
    return acc


@int_power.defjvp
def _int_power_jvp(primals, tangents):
    x, k = primals
    g, _ = tangents
    k = jnp.asarray(k).astype(jnp.int32)
    y = int_power(x, k)
    dy = jnp.where(k == 0, 0.0, k.astype(x.dtype) * int_power(x, jnp.maximum(k - 1, 0)))
    return y, g * dy.astype(x.dtype)


def _power(d, n):
    """d ** n: Python's (or ``integer_pow``'s) power for a concrete int n, :func:`int_power` otherwise."""
    if isinstance(n, int):
        return d**n
    return int_power(d, n)


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
        if n > MAX_EXPONENT:
            raise ValueError(f"n must be at most {MAX_EXPONENT}, got {n}")
        self.n = n

    # -- pytree protocol: leaves may be tracers, so no validation here --------------------------
    def tree_flatten(self):
        return (self.m, self.f0, self.n), None

    @classmethod
    def tree_unflatten(cls, aux, leaves):
        obj = object.__new__(cls)
        obj.m, obj.f0, obj.n = leaves
        return obj

    @classmethod
    def stack(cls, losses, dtype=None) -> "PolynomialLoss":
        """One loss whose leaves are arrays over ``losses`` (for ``vmap``); m and f0 in ``dtype``."""
        losses = list(losses)
        for lo in losses:
            if not isinstance(lo, cls):
                raise TypeError(f"losses must be PolynomialLoss objects, got {type(lo).__name__}")
        obj = object.__new__(cls)
        obj.m = jnp.asarray([lo.m for lo in losses], dtype)
        obj.f0 = jnp.asarray([lo.f0 for lo in losses], dtype)
        obj.n = jnp.asarray([lo.n for lo in losses], jnp.int32)
        return obj

    def astype(self, dtype) -> "PolynomialLoss":
        """The same loss with m and f0 as ``dtype`` arrays (n stays an integer)."""
        obj = object.__new__(type(self))
        obj.m, obj.f0, obj.n = jnp.asarray(self.m, dtype), jnp.asarray(self.f0, dtype), self.n
        return obj

    def __repr__(self):
        return f"PolynomialLoss(m={self.m}, f0={self.f0}, n={self.n})"

    def __eq__(self, other):
        return isinstance(other, PolynomialLoss) and (self.m, self.f0, self.n) == (other.m, other.f0, other.n)

    def __hash__(self):
        return hash((type(self), self.m, self.f0, self.n))

    # -- the loss and its derivatives ------------------------------------------------------------
    def _n_as(self, d):
        """n as a factor in the dtype of d (a Python int stays one)."""
        return self.n if isinstance(self.n, int) else jnp.asarray(self.n).astype(jnp.result_type(d))

    def __call__(self, f):
        """Per-point loss L(f), elementwise."""
        return 0.5 * self.m**2 * _power(f - self.f0, self.n)

    def first(self, f):
        """L'(f) = n m^2/2 (f - f0)^(n-1), elementwise."""
        d = f - self.f0
        return 0.5 * self._n_as(d) * self.m**2 * _power(d, self.n - 1)

    def second(self, f):
        """L''(f) = n (n-1) m^2/2 (f - f0)^(n-2), elementwise (the mass term of eqs. 16 and 19)."""
        d = f - self.f0
        n = self._n_as(d)
        return 0.5 * n * (n - 1) * self.m**2 * _power(d, self.n - 2)

    def dataset(self, f):
        """Dataset loss: the mean of L over all points."""
        return jnp.mean(self(f))

    def grad_f(self, f):
        """Gradient of the dataset loss with respect to the outputs: L'(f_i)/N."""
        f = jnp.asarray(f)
        return self.first(f) / f.size
