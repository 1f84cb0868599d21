"""A scalar field on a one-dimensional lattice in de Sitter space (eq. 17 of the paper).

The field obeys the Klein-Gordon equation in a flat FLRW universe,

    phi'' + 3H phi' - (1/a^2) d^2 phi/dx^2 + V'(phi) = 0,      V = coupling * L(phi),      (eq. 17)

with the damping-correct sign of the gradient term: with signature (-,+,+,+) the equation carries
``-nabla^2 phi / a^2``, so a Fourier mode of comoving wavenumber k gets ``+k^2/a^2`` in its mass term
(eq. 19 with the same correction). The paper prints ``+nabla^2``; with that sign every mode with
k^2 > V'' would be tachyonic (see the appendix chapter). ``x`` is the comoving coordinate, so k/a is
the physical wavenumber, redshifting as a(t) = e^{Ht} grows. At t = 0, a = 1 and comoving and
physical lengths agree. The potential is the per-point loss of eq. 20 times a coupling (the paper's
alpha or lambda_1/N, eqs. 7/15): V = coupling * L, V' = coupling * L.first, V'' = coupling * L.second.
The vacuum energy V0 of eq. 8 adds nothing to V' and enters only the Friedmann equation.

The space is one-dimensional (the network's input interval); the universe around it is the usual
3+1 dimensional FLRW one, so the friction is 3H.

Two boundaries, both treated spectrally, so that every lattice mode obeys its continuum mode equation
exactly (for a quadratic V the lattice is a set of independent continuum modes; only the number of
modes is finite):

* ``"periodic"``: n points x_j = -length/2 + j * length/n, j = 0..n-1, period ``length``. The
  Laplacian is applied with the FFT: Fourier mode j has k_j = 2 pi j/length, j = 0..n//2.
* ``"neumann"``: a node grid (DCT-I) with both ends on the lattice, x_j = -length/2 + j*length/(n-1),
  exactly the network inputs of the perturbation chapter (equally spaced points including both ends
  of the interval). The modes are cos(k_j (x + length/2)) with k_j = pi j/length, j = 0..n-1, zero
  slope at both ends (the same k_j as ``dynamics.field_wavenumbers``). The Laplacian is the FFT
  Laplacian of the mirror-extended array [phi_0..phi_{n-1}, phi_{n-2}..phi_1] of period 2*length,
  which is the DCT-I spectral Laplacian. Lattice averages are trapezoid averages (the mean over
  the mirror-extended array).

The integrals run through :func:`nncosmo_helpers.odes.solve` (Dopri8, rtol 1e-10, atol 1e-12),
jit-compiled, plain JAX (runs unchanged on a GPU), in float64.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _validate, cosmology, odes

BOUNDARIES = ("periodic", "neumann")


# ---------------------------------------------------------------------------------------------
# the lattice: grid, wavenumbers, spectral Laplacian, mode amplitudes
# ---------------------------------------------------------------------------------------------
def _check_boundary(boundary):
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    return boundary


def _check_points(n, boundary):
    return _validate.integer("number of lattice points", n, low=2 if boundary == "neumann" else 1)


def grid(n, length, boundary="periodic") -> np.ndarray:
    """Positions of the ``n`` lattice points on an interval of ``length`` centred at 0.

    Periodic: x_j = -length/2 + j length/n (the point x = length/2 is x_0 again). Neumann (node
    grid, DCT-I): x_j = -length/2 + j length/(n - 1), both ends included -- the network's inputs.
    """
    boundary = _check_boundary(boundary)
    n = _check_points(n, boundary)
    length = _validate.real("length", length, low=0.0, low_open=True)
    if boundary == "periodic":
        return -0.5 * length + length * np.arange(n) / n
    return np.linspace(-0.5 * length, 0.5 * length, n)


def wavenumbers(n, length, boundary="periodic") -> np.ndarray:
    """Comoving wavenumbers of the lattice modes, in the order of :func:`mode_amplitudes`.

    Periodic: k_j = 2 pi j/length, j = 0..n//2 (the real-FFT modes). Neumann: k_j = pi j/length,
    j = 0..n-1 (the cosine modes cos(k_j (x + length/2))).
    """
    boundary = _check_boundary(boundary)
    n = _check_points(n, boundary)
    length = _validate.real("length", length, low=0.0, low_open=True)
    return _wavenumbers(n, length, boundary)


def _wavenumbers(n, length, boundary):
    if boundary == "periodic":
        return 2.0 * jnp.pi * jnp.arange(n // 2 + 1) / length
    return jnp.pi * jnp.arange(n) / length


def _extend(phi, boundary):
    """The array whose FFT diagonalises the Laplacian: phi itself, or its mirror extension."""
    if boundary == "periodic":
        return phi
    return jnp.concatenate([phi, phi[..., -2:0:-1]], axis=-1)


def _laplacian(phi, k2, boundary):
    """Spectral d^2/dx^2 of ``phi`` (last axis), with the squared wavenumbers ``k2`` of the rfft."""
    n = phi.shape[-1]
    ext = _extend(phi, boundary)
    out = jnp.fft.irfft(-k2 * jnp.fft.rfft(ext, axis=-1), n=ext.shape[-1], axis=-1)
    return out[..., :n]


def _mean(q, boundary):
    """Lattice average: arithmetic (periodic) or trapezoid (Neumann, = mean of the mirror extension)."""
    return jnp.mean(_extend(q, boundary), axis=-1)


def mode_amplitudes(phi, boundary="periodic"):
    """Mode amplitudes of lattice fields ``phi`` (..., n), one per entry of :func:`wavenumbers`.

    Periodic: the complex coefficients c_j = rfft(phi)_j/n, so that c_0 is the mean and
    phi(x) = sum_j Re(w_j c_j e^{i k_j (x + length/2)}) with w_0 = 1 and w_j = 2 otherwise (w = 1
    for the Nyquist mode of even n). Neumann: the real coefficients c_j with
    phi(x_i) = sum_j c_j cos(k_j (x_i + length/2)) at the lattice nodes (DCT-I).

    For a quadratic potential each amplitude obeys the continuum mode equation
    c'' + 3H c' + (k^2/a^2 + V'') c = 0 (eq. 19, damping sign) exactly.
    """
    boundary = _check_boundary(boundary)
    phi = jnp.asarray(phi)
    n = phi.shape[-1]
    _check_points(n, boundary)
    if boundary == "periodic":
        return jnp.fft.rfft(phi, axis=-1) / n
    m = 2 * (n - 1)
    c = jnp.real(jnp.fft.rfft(_extend(phi, boundary), axis=-1)) / m
    return c.at[..., 1:n - 1].multiply(2.0)


# ---------------------------------------------------------------------------------------------
# eq. 17 in a fixed de Sitter (or static) background
# ---------------------------------------------------------------------------------------------
def _check_times(t):
    arr = np.atleast_1d(_validate.finite_array("t", t))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"t must be a non-empty 1-D array of times >= 0, got shape {arr.shape}")
    if np.any(arr < 0):
        raise ValueError("t must be >= 0 (the initial data are given at t = 0), allowed range [0, inf)")
    if np.any(np.diff(arr) <= 0):
        raise ValueError("t must be strictly increasing")
    return arr


def _check_field(phi0, dphi0, boundary):
    phi0 = _validate.finite_array("phi0", phi0)
    if phi0.ndim != 1:
        raise ValueError(f"phi0 must be a 1-D array of lattice values, got shape {phi0.shape}")
    _check_points(phi0.shape[0], boundary)
    dphi0 = _validate.finite_array("dphi0", dphi0)
    if dphi0.shape not in ((), phi0.shape):
        raise ValueError(f"dphi0 must be a number or have the shape of phi0 {phi0.shape}, got {dphi0.shape}")
    return phi0, np.broadcast_to(dphi0, phi0.shape).copy()


def _check_problem(phi0, dphi0, length, hubble, loss, coupling, t, boundary):
    """Validate the common arguments of the solvers; return them as float64 JAX values."""
    boundary = _check_boundary(boundary)
    phi0, dphi0 = _check_field(phi0, dphi0, boundary)
    length = _validate.real("length", length, low=0.0, low_open=True)
    hubble = _validate.real("hubble", hubble, low=0.0)
    loss = _validate.polynomial_loss(loss)
    coupling = _validate.real("coupling", coupling, low=0.0)
    t = _check_times(t)
    f64 = jnp.float64
    return (jnp.asarray(phi0), jnp.asarray(dphi0), f64(length), f64(hubble), loss, f64(coupling), jnp.asarray(t),
            boundary)


def _klein_gordon(phi, dphi, lap, hubble, inv_a2, loss, coupling):
    """phi'' from eq. 17 with the damping-correct gradient sign: the one right-hand side of both solvers.

    phi'' = -3H phi' + (1/a^2) d^2phi/dx^2 - coupling L'(phi), with ``lap`` the spectral d^2phi/dx^2
    (:func:`_laplacian`) and ``inv_a2`` = 1/a^2, so that a Fourier mode of comoving wavenumber k feels
    the physical k/a. The callers differ only in where H and a come from: fixed (de Sitter,
    a = e^{Ht}, or static, a = 1) or the self-consistent Friedmann background.
    """
    return -3.0 * hubble * dphi + inv_a2 * lap - coupling * loss.first(phi)


def _de_sitter_inv_a2(t, hubble, expanding):
    """1/a^2 of the fixed background: a = e^{Ht} (``expanding``) or a = 1."""
    return jnp.exp(-2.0 * hubble * t) if expanding else 1.0


def mode_mass2(wavenumbers, t, *, hubble, loss, coupling, phi_bar, expanding=True):
    """M_k^2(t) = k^2/a(t)^2 + coupling L''(phi_bar): the mass term of a lattice mode of comoving
    wavenumber k in eq. 19 (gradient sign corrected), linearised around the homogeneous field phi_bar.

    The scale factor is the fixed background's of :func:`solve_field` (a = e^{Ht}, a(0) = 1, or
    a = 1 with ``expanding=False``); ``wavenumbers`` are comoving (:func:`wavenumbers`), so k/a is the
    physical wavenumber. Broadcasting: ``t`` and ``phi_bar`` of shape (T,) (or scalars) and
    ``wavenumbers`` of shape (n,) give shape (T, n) (or (n,)): one row per time, one column per mode.
    """
    k = jnp.asarray(wavenumbers, jnp.float64)
    t = jnp.asarray(t, jnp.float64)[..., None]
    phi_bar = jnp.asarray(phi_bar, jnp.float64)[..., None]
    inv_a2 = _de_sitter_inv_a2(t, hubble, expanding) * jnp.ones_like(t)  # (T, 1) in the static case too
    return k**2 * inv_a2 + coupling * loss.second(phi_bar)


def _fixed_background_field(t, state, args):
    phi, dphi = state
    k2, hubble, loss, coupling, expanding, boundary = args
    inv_a2 = _de_sitter_inv_a2(t, hubble, expanding)
    return dphi, _klein_gordon(phi, dphi, _laplacian(phi, k2, boundary), hubble, inv_a2, loss, coupling)


def _solve_field_impl(phi0, dphi0, length, hubble, loss, coupling, t, boundary, expanding):
    # the rfft wavenumbers of the (extended) array are the mode wavenumbers of the lattice
    k2 = _wavenumbers(phi0.shape[0], length, boundary) ** 2

    def field(time, state, args):
        return _fixed_background_field(time, state, args + (expanding, boundary))

    return odes.solve(field, (phi0, dphi0), t, (k2, hubble, loss, coupling))


_solve_field_jit = jax.jit(_solve_field_impl, static_argnames=("boundary", "expanding"))


def solve_field(phi0, dphi0, *, length, hubble, loss, coupling, t, boundary="periodic", expanding=True):
    """Evolve a lattice field with eq. 17 (damping-correct gradient sign) in de Sitter space.

    Solves phi'' + 3H phi' - e^{-2Ht} d^2phi/dx^2 + coupling L'(phi) = 0 on the lattice of
    :func:`grid` (a = e^{Ht}, physical wavenumber k/a; ``expanding=False`` sets a = 1 and keeps the
    friction 3H) from phi(0) = ``phi0``, phi'(0) = ``dphi0``.

    Args:
        phi0: initial field on the lattice, shape (n,), sampled at :func:`grid` ``(n, length, boundary)``.
        dphi0: initial velocity, shape (n,) or a number.
        length: length of the interval (comoving; physical at t = 0); the period for ``"periodic"``.
        hubble: H >= 0 (constant; the dual of the optimiser, H = (1 - beta)/(3 sqrt(eta)), eq. 4).
        loss: a :class:`~nncosmo_helpers.loss.PolynomialLoss`, the per-point loss L of eq. 20.
        coupling: the factor >= 0 in V = coupling * L.
        t: increasing times >= 0 at which to return the field.
        boundary: ``"periodic"`` (FFT) or ``"neumann"`` (cosine modes, node grid, DCT-I).
        expanding: a = e^{Ht} (True) or a = 1 (False).

    Returns:
        phi at the times ``t``, shape (len(t), n).

    This is the full, non-linear field. The linearised mode equation at fixed k (eq. 19 as the
    paper prints it, a = 1), solved mode by mode around a homogeneous background, is
    :func:`nncosmo_helpers.dynamics.predict_field_modes`: for a quadratic loss it is what each
    Neumann mode of ``solve_field(..., expanding=False)`` obeys.
    """
    if not isinstance(expanding, bool):
        raise TypeError(f"expanding must be a bool, got {type(expanding).__name__}")
    phi0, dphi0, length, hubble, loss, coupling, t, boundary = _check_problem(
        phi0, dphi0, length, hubble, loss, coupling, t, boundary)
    phi, _ = _solve_field_jit(phi0, dphi0, length, hubble, loss, coupling, t, boundary=boundary, expanding=expanding)
    return phi


# ---------------------------------------------------------------------------------------------
# the self-consistent Friedmann background (eq. 6 with gradient energy)
# ---------------------------------------------------------------------------------------------
class FriedmannField(NamedTuple):
    """A lattice field with its self-consistent expansion (:func:`solve_field_friedmann`).

    Arrays are indexed like ``t``; ``phi`` and ``dphi`` have shape (len(t), n).

    Attributes:
        t: the times.
        phi, dphi: field and velocity on the lattice.
        hubble: H(t), integrated with the Raychaudhuri equation.
        a: the scale factor, a(0) = 1.
        rho: the lattice-averaged energy density <phi'^2/2 + (dphi/dx)^2/(2a^2) + V> + V0.
        constraint: the Friedmann-constraint violation (3H^2 - rho)/(3H^2); zero for an exact solution.
        vacuum_energy: V0 = 3 hubble^2 (eq. 8).
    """

    t: np.ndarray
    phi: jnp.ndarray
    dphi: jnp.ndarray
    hubble: jnp.ndarray
    a: jnp.ndarray
    rho: jnp.ndarray
    constraint: jnp.ndarray
    vacuum_energy: float


def _energy(phi, dphi, inv_a2, k2, loss, coupling, v0, boundary):
    """rho = <phi'^2/2 + V> + G/2 + V0 with G = <(dphi/dx)^2>/a^2 = -<phi lap phi>/a^2 (spectral)."""
    grad2 = -inv_a2 * _mean(phi * _laplacian(phi, k2, boundary), boundary)
    return _mean(0.5 * dphi**2 + coupling * loss(phi), boundary) + 0.5 * grad2 + v0


def _friedmann_field(t, state, args):
    phi, dphi, hubble, log_a = state
    k2, loss, coupling, boundary = args
    inv_a2 = jnp.exp(-2.0 * log_a)
    lap = _laplacian(phi, k2, boundary)
    ddphi = _klein_gordon(phi, dphi, lap, hubble, inv_a2, loss, coupling)
    grad2 = -inv_a2 * _mean(phi * lap, boundary)
    dhubble = -0.5 * (_mean(dphi**2, boundary) + grad2 / 3.0)
    return dphi, ddphi, dhubble, hubble


def _solve_friedmann_impl(phi0, dphi0, length, v0, loss, coupling, t, boundary):
    k2 = _wavenumbers(phi0.shape[0], length, boundary) ** 2
    rho0 = _energy(phi0, dphi0, 1.0, k2, loss, coupling, v0, boundary)
    # 3H^2 = rho (the Friedmann constraint); rho0 already holds the gradient energy and V0
    y0 = (phi0, dphi0, cosmology.friedmann_hubble(0.0, rho0, 0.0), jnp.zeros_like(rho0))

    def field(time, state, args):
        return _friedmann_field(time, state, args + (boundary,))

    phi, dphi, hubble, log_a = odes.solve(field, y0, t, (k2, loss, coupling))
    energy = jax.vmap(lambda p, d, ia2: _energy(p, d, ia2, k2, loss, coupling, v0, boundary))
    rho = energy(phi, dphi, jnp.exp(-2.0 * log_a))
    return phi, dphi, hubble, jnp.exp(log_a), rho, (3.0 * hubble**2 - rho) / (3.0 * hubble**2)


_solve_friedmann_jit = jax.jit(_solve_friedmann_impl, static_argnames=("boundary",))


def solve_field_friedmann(phi0, dphi0, *, length, hubble, loss, coupling, t, boundary="periodic") -> FriedmannField:
    """Evolve a lattice field with eq. 17 and the self-consistent Friedmann expansion (eq. 6).

    The potential is V = coupling * L(phi) + V0 with the vacuum energy V0 = 3 ``hubble``^2: the
    paper's V0 = beta_tilde^2/3 of eq. 8, i.e. ``hubble`` is the vacuum Hubble rate of the optimiser,
    (1 - beta)/(3 sqrt(eta)), and H(t) >= hubble is the rate the field and the vacuum source together.
    In reduced Planck units (as in eq. 6), with the lattice averages < > of the module docstring and
    the gradient energy G = <(dphi/dx)^2>/a^2 = -<phi d^2phi/dx^2>/a^2 (spectral),

        rho = <phi'^2/2 + V> + G/2,      p = <phi'^2/2 - V> - G/6,
        3H^2 = rho (constraint),         H' = -(rho + p)/2 = -(<phi'^2> + G/3)/2 (Raychaudhuri),
        (ln a)' = H,                     phi'' + 3H phi' - d^2phi/dx^2 / a^2 + coupling L'(phi) = 0.

    The field varies along one direction of a 3+1 dimensional FLRW universe; as in lattice codes,
    the metric is kept isotropic, with the pressure averaged over the three directions (the gradient
    contributes +G/2 along x and -G/2 along y and z). H(0) = sqrt(rho(0)/3); H is then integrated
    with the Raychaudhuri equation, so the constraint is a check: the spectral G is exactly what
    makes d(3H^2 - rho)/dt = 0, and :attr:`FriedmannField.constraint` reports the violation the
    integration leaves. For a homogeneous field from rest this is the self-consistent background of
    :func:`nncosmo_helpers.cosmology.solve_background` with alpha = ``coupling``.

    Arguments as :func:`solve_field` (there is no ``expanding``: a(t) is solved for).
    """
    phi0, dphi0, length, hubble, loss, coupling, t, boundary = _check_problem(
        phi0, dphi0, length, hubble, loss, coupling, t, boundary)
    v0 = 3.0 * hubble**2
    phi, dphi, h, a, rho, constraint = _solve_friedmann_jit(phi0, dphi0, length, v0, loss, coupling, t,
                                                            boundary=boundary)
    return FriedmannField(np.asarray(t), phi, dphi, h, a, rho, constraint, float(v0))
