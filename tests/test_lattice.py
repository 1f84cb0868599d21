"""The lattice field of eq. 17 against independent references.

* a quadratic potential: every lattice mode against its exact solution -- the de Sitter mode
  functions e^{-3Ht/2} Z_nu(k e^{-Ht}/H) (Bessel J_nu, Y_nu from scipy.special, nu^2 = 9/4 - m^2/H^2),
  the closed-form damped oscillator at k = 0 and, without expansion, for every k;
* a quartic potential (non-linear): the full lattice ODE solved with scipy's DOP853 at tight
  tolerances, with a Laplacian built here from explicit DFT / cosine matrices in numpy;
* the Friedmann background: against cosmology.solve_background for a homogeneous field and against a
  scipy solve of the full lattice + Raychaudhuri system for an inhomogeneous one.

The criterion of issue 12: each mode's amplitude within 1e-6 of the reference, relative to the
mode's initial amplitude, over five Hubble times, expanding and not, with the default tolerances
(odes.RTOL = 1e-10). The mode coefficients in these tests come from numpy matrices written here, not
from lattice.mode_amplitudes (which is tested against them separately).
"""

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import integrate, special  # noqa: E402

from nncosmo_helpers import cosmology, lattice  # noqa: E402
from nncosmo_helpers.loss import PolynomialLoss  # noqa: E402

H = 1.0
HUBBLE_TIMES = 5.0
N = 16
TOL = 1e-6  # the criterion on each mode's amplitude, relative to its initial amplitude
T = np.linspace(0.0, HUBBLE_TIMES / H, 201)


# ---------------------------------------------------------------------------------------------
# independent mode bases (numpy matrices)
# ---------------------------------------------------------------------------------------------
def periodic_basis(n, length):
    """Rows: e^{-i k_j x_l}/n for j = 0..n//2 (the analysis matrix), wavenumbers k_j = 2 pi j/length."""
    j = np.arange(n // 2 + 1)[:, None]
    l = np.arange(n)[None, :]
    return np.exp(-2j * np.pi * j * l / n) / n, 2 * np.pi * np.arange(n // 2 + 1) / length


def periodic_synthesis(c, n):
    """The real lattice field with the half-spectrum coefficients c (inverse of periodic_basis)."""
    l = np.arange(n)
    w = np.full(len(c), 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return np.real(np.exp(2j * np.pi * np.arange(len(c))[:, None] * l[None, :] / n).T @ (w * c))


def cosine_matrix(n):
    """C[i, j] = cos(pi i j/(n - 1)): the cosine modes cos(k_j (x_i + length/2)) at the nodes."""
    i = np.arange(n)
    return np.cos(np.pi * np.outer(i, i) / (n - 1))


def laplacian_matrix(n, length, boundary):
    """Spectral d^2/dx^2 as a dense real matrix, built from explicit DFT / cosine matrices."""
    if boundary == "periodic":
        k = 2 * np.pi * np.fft.fftfreq(n, d=1.0 / n) / length  # signed integers * 2 pi/length
        j = np.arange(n)
        F = np.exp(-2j * np.pi * np.outer(j, j) / n)
        return np.real(np.conj(F).T @ np.diag(-(k**2)) @ F / n)
    C = cosine_matrix(n)
    k = np.pi * np.arange(n) / length
    return C @ np.diag(-(k**2)) @ np.linalg.inv(C)


def modes_of(phi, length, boundary):
    """Mode coefficients of lattice fields (rows), and their wavenumbers, with the test's own matrices."""
    n = phi.shape[-1]
    if boundary == "periodic":
        A, k = periodic_basis(n, length)
        return phi @ A.T, k
    return np.linalg.solve(cosine_matrix(n), phi.T).T, np.pi * np.arange(n) / length


def random_field(n, length, boundary, seed, scale=0.1, offset=0.0):
    """A lattice field whose every mode has amplitude between scale/2 and scale (plus a constant)."""
    rng = np.random.default_rng(seed)
    if boundary == "periodic":
        m = n // 2 + 1
        c = scale * rng.uniform(0.5, 1.0, m) * np.exp(2j * np.pi * rng.uniform(size=m))
        c[0] = c[0].real
        if n % 2 == 0:
            c[-1] = c[-1].real
        c[0] = np.sign(c[0].real) * max(abs(c[0]), 0.5 * scale)
        return offset + periodic_synthesis(c, n)
    c = scale * rng.uniform(0.5, 1.0, n) * rng.choice([-1.0, 1.0], n)
    return offset + cosine_matrix(n) @ c


# ---------------------------------------------------------------------------------------------
# exact mode solutions for V = m^2 (phi - f0)^2/2
# ---------------------------------------------------------------------------------------------
def damped_oscillator(c0, v0, friction, omega2, t):
    """c'' + friction c' + omega2 c = 0 from (c0, v0): sum of two exponentials (complex roots allowed)."""
    disc = np.sqrt(complex(0.25 * friction**2 - omega2))
    s1, s2 = -0.5 * friction + disc, -0.5 * friction - disc
    p = (v0 - s2 * c0) / (s1 - s2)
    q = c0 - p
    return p * np.exp(s1 * t) + q * np.exp(s2 * t)


def de_sitter_mode(c0, v0, k, hubble, mass2, t):
    """c'' + 3H c' + (k^2 e^{-2Ht} + mass2) c = 0: e^{-3Ht/2} (A J_nu(z) + B Y_nu(z)), z = k e^{-Ht}/H."""
    nu = np.sqrt(2.25 - mass2 / hubble**2)
    if k == 0.0:
        return damped_oscillator(c0, v0, 3 * hubble, mass2, t)
    z0 = k / hubble
    # u(0) = A J + B Y;  u'(0) = -3H/2 u(0) - H z0 (A J' + B Y')
    M = np.array([[special.jv(nu, z0), special.yv(nu, z0)],
                  [-hubble * z0 * special.jvp(nu, z0), -hubble * z0 * special.yvp(nu, z0)]])
    A, B = np.linalg.solve(M.astype(complex), np.array([c0, v0 + 1.5 * hubble * c0], dtype=complex))
    z = z0 * np.exp(-hubble * t)
    return np.exp(-1.5 * hubble * t) * (A * special.jv(nu, z) + B * special.yv(nu, z))


def mode_errors(phi_lattice, reference, initial):
    """max over t of |c_lattice - c_reference| / |c(0)|, per mode."""
    return np.max(np.abs(phi_lattice - reference), axis=0) / np.abs(initial)


QUAD_M2 = 1.2  # coupling * m^2 = V'': nu = sqrt(9/4 - 1.2) ~ 1.02, real (m < 3H/2)


@pytest.mark.parametrize("boundary", ["periodic", "neumann"])
@pytest.mark.parametrize("expanding", [True, False])
@pytest.mark.parametrize("hubble_lengths", [1.0, 0.1])
def test_quadratic_modes_match_exact_solutions(boundary, expanding, hubble_lengths):
    """Every lattice mode follows the Bessel (expanding) or damped-oscillator (static) solution."""
    length = hubble_lengths / H
    f0 = 0.3
    loss = PolynomialLoss(m=1.0, f0=f0, n=2)
    coupling = QUAD_M2  # V'' = coupling * L'' = 1.2
    phi0 = random_field(N, length, boundary, seed=1, offset=f0)
    dphi0 = random_field(N, length, boundary, seed=2)
    phi = np.asarray(lattice.solve_field(phi0, dphi0, length=length, hubble=H, loss=loss, coupling=coupling, t=T,
                                         boundary=boundary, expanding=expanding))
    assert phi.shape == (len(T), N)
    c, k = modes_of(phi - f0, length, boundary)  # the modes of phi - f0 obey the linear mode equation
    c0, _ = modes_of((phi0 - f0)[None], length, boundary)
    v0, _ = modes_of(dphi0[None], length, boundary)
    ref = np.stack([
        de_sitter_mode(c0[0, j], v0[0, j], k[j], H, QUAD_M2, T) if expanding
        else damped_oscillator(c0[0, j], v0[0, j], 3 * H, k[j] ** 2 + QUAD_M2, T)
        for j in range(len(k))
    ], axis=1)
    assert np.max(np.abs(ref[0] - c0[0])) < 1e-12 * np.max(np.abs(c0))  # the reference starts right
    err = mode_errors(c, ref, c0[0])
    assert err.max() < TOL, f"worst mode {int(err.argmax())}: {err.max():.2e}"


def test_exact_references_are_not_trivial():
    """The reference solutions discriminate: the expanding and static solutions differ by O(1)."""
    k = 2 * np.pi * 3
    a = de_sitter_mode(1.0, 0.0, k, H, QUAD_M2, T)
    b = damped_oscillator(1.0, 0.0, 3 * H, k**2 + QUAD_M2, T)
    assert np.max(np.abs(a - b)) > 0.1


# ---------------------------------------------------------------------------------------------
# quartic potential: the non-linear lattice against scipy on the full real-space ODE
# ---------------------------------------------------------------------------------------------
def scipy_lattice(phi0, dphi0, length, hubble, m, f0, n_pow, coupling, t, boundary, expanding):
    D = laplacian_matrix(len(phi0), length, boundary)

    def rhs(time, y):
        phi, dphi = y[: len(phi0)], y[len(phi0):]
        inv_a2 = np.exp(-2 * hubble * time) if expanding else 1.0
        force = coupling * 0.5 * n_pow * m**2 * (phi - f0) ** (n_pow - 1)
        return np.concatenate([dphi, -3 * hubble * dphi + inv_a2 * (D @ phi) - force])

    sol = integrate.solve_ivp(rhs, (t[0], t[-1]), np.concatenate([phi0, dphi0]), method="DOP853", t_eval=t,
                              rtol=1e-13, atol=1e-15)
    assert sol.success
    return sol.y[: len(phi0)].T


@pytest.mark.parametrize("boundary", ["periodic", "neumann"])
@pytest.mark.parametrize("expanding", [True, False])
def test_quartic_lattice_matches_independent_solve(boundary, expanding):
    length = 1.0 / H
    m, f0, coupling = 1.0, 0.5, 2.0
    loss = PolynomialLoss(m=m, f0=f0, n=4)
    phi0 = random_field(N, length, boundary, seed=3, scale=0.3)
    dphi0 = random_field(N, length, boundary, seed=4, scale=0.3)
    phi = np.asarray(lattice.solve_field(phi0, dphi0, length=length, hubble=H, loss=loss, coupling=coupling, t=T,
                                         boundary=boundary, expanding=expanding))
    ref = scipy_lattice(phi0, dphi0, length, H, m, f0, 4, coupling, T, boundary, expanding)
    c, _ = modes_of(phi, length, boundary)
    c_ref, _ = modes_of(ref, length, boundary)
    err = mode_errors(c, c_ref, c_ref[0])
    assert err.max() < TOL, f"worst mode {int(err.argmax())}: {err.max():.2e}"
    # the test exercises the non-linearity: modes exchange energy, so the quadratic (free-mode)
    # evolution with mass V''(f0) = 0 would be far off
    free = np.asarray(lattice.solve_field(phi0, dphi0, length=length, hubble=H, loss=PolynomialLoss(m=1.0, f0=f0, n=2),
                                          coupling=0.0, t=T, boundary=boundary, expanding=expanding))
    assert np.max(np.abs(free - ref)) > 100 * TOL


def test_mode_amplitudes_match_independent_transforms():
    rng = np.random.default_rng(5)
    for boundary in ("periodic", "neumann"):
        for n in (7, 8, 16):
            phi = rng.normal(size=(3, n))
            mine = np.asarray(lattice.mode_amplitudes(phi, boundary))
            ref, k = modes_of(phi, 2.5, boundary)
            assert np.max(np.abs(mine - ref)) < 1e-13
            assert np.allclose(lattice.wavenumbers(n, 2.5, boundary), k, rtol=1e-14)


def test_neumann_grid_is_the_network_input_grid():
    """The Neumann nodes are the perturbation chapter's inputs, x_j = -l/2 + j l/(N - 1)."""
    from nncosmo_helpers import dynamics

    eta, beta = 1 / 9, 0.0
    length = 0.7 * cosmology.flrw_parameters(eta, beta).hubble_length
    x = dynamics.centred_interval(N, 0.7, eta=eta, beta=beta)[:, 0]
    grid = lattice.grid(N, length, "neumann")
    assert np.allclose(x, grid, rtol=0, atol=1e-15)
    assert np.isclose(grid[0], -length / 2) and np.allclose(np.diff(grid), length / (N - 1))
    p = lattice.grid(N, length, "periodic")
    assert np.allclose(np.diff(p), length / N) and np.isclose(p[0], -length / 2)


def test_static_field_stays_put_and_homogeneous_mode_decouples():
    """A field at the minimum of V with no velocity does not move (no spurious forces)."""
    loss = PolynomialLoss(m=1.0, f0=0.2, n=4)
    phi = lattice.solve_field(np.full(N, 0.2), 0.0, length=1.0, hubble=H, loss=loss, coupling=1.0, t=T)
    assert np.max(np.abs(np.asarray(phi) - 0.2)) < 1e-14


# ---------------------------------------------------------------------------------------------
# the self-consistent Friedmann background
# ---------------------------------------------------------------------------------------------
def test_friedmann_homogeneous_matches_solve_background():
    """For a homogeneous field from rest, the same equations as cosmology.solve_background(self_consistent=True)."""
    eta, beta = 1 / 9, 0.0
    flrw = cosmology.flrw_parameters(eta, beta)
    loss = PolynomialLoss(m=1.0, f0=1.0, n=2)
    alpha, phi_init = 2.0, -1.0  # alpha L(phi0) = 4 > V0 = 3: far from vacuum domination
    steps = np.arange(0, 61, 3)
    bg = cosmology.solve_background(alpha, loss, phi_init, eta=eta, beta=beta, steps=steps, self_consistent=True)
    fixed = cosmology.solve_background(alpha, loss, phi_init, eta=eta, beta=beta, steps=steps)
    res = lattice.solve_field_friedmann(np.full(8, phi_init), 0.0, length=1.0, hubble=flrw.hubble, loss=loss,
                                        coupling=alpha, t=bg.t, boundary="periodic")
    excursion = abs(bg.phi[-1] - bg.phi[0])
    # two Dopri8 solutions at rtol 1e-10: agreement to 1e-8 of the excursion (100 rtol)
    assert np.max(np.abs(np.asarray(res.phi) - bg.phi[:, None])) < 1e-8 * excursion
    assert np.max(np.abs(np.asarray(res.hubble) - bg.hubble)) < 1e-8 * bg.hubble[0]
    assert np.max(np.abs(fixed.phi - bg.phi)) > 1e-3 * excursion  # the self-consistency matters here
    assert abs(res.vacuum_energy - flrw.vacuum_energy) < 1e-12
    assert np.max(np.abs(np.asarray(res.constraint))) < TOL


def scipy_friedmann(phi0, dphi0, length, v0, m, f0, n_pow, coupling, t, boundary):
    n = len(phi0)
    D = laplacian_matrix(n, length, boundary)
    w = np.ones(n) / n if boundary == "periodic" else np.r_[0.5, np.ones(n - 2), 0.5] / (n - 1)  # trapezoid

    def pot(phi):
        return coupling * 0.5 * m**2 * (phi - f0) ** n_pow

    def rho(phi, dphi, inv_a2):
        return w @ (0.5 * dphi**2 + pot(phi)) - 0.5 * inv_a2 * (w @ (phi * (D @ phi))) + v0

    def rhs(time, y):
        phi, dphi, h, log_a = y[:n], y[n:2 * n], y[2 * n], y[2 * n + 1]
        inv_a2 = np.exp(-2 * log_a)
        g = -inv_a2 * (w @ (phi * (D @ phi)))
        force = coupling * 0.5 * n_pow * m**2 * (phi - f0) ** (n_pow - 1)
        return np.concatenate([dphi, -3 * h * dphi + inv_a2 * (D @ phi) - force, [-0.5 * (w @ dphi**2 + g / 3)], [h]])

    h0 = np.sqrt(rho(phi0, dphi0, 1.0) / 3)
    sol = integrate.solve_ivp(rhs, (t[0], t[-1]), np.concatenate([phi0, dphi0, [h0, 0.0]]), method="DOP853",
                              t_eval=t, rtol=1e-13, atol=1e-15)
    assert sol.success
    return sol.y[:n].T, sol.y[2 * n], np.exp(sol.y[2 * n + 1])


@pytest.mark.parametrize("boundary", ["periodic", "neumann"])
def test_friedmann_inhomogeneous_matches_independent_solve(boundary):
    length, hubble = 1.0, 1.0
    m, f0, coupling = 1.0, 0.5, 2.0
    loss = PolynomialLoss(m=m, f0=f0, n=4)
    phi0 = random_field(N, length, boundary, seed=6, scale=0.3)
    dphi0 = random_field(N, length, boundary, seed=7, scale=0.3)
    res = lattice.solve_field_friedmann(phi0, dphi0, length=length, hubble=hubble, loss=loss, coupling=coupling, t=T,
                                        boundary=boundary)
    phi_ref, h_ref, a_ref = scipy_friedmann(phi0, dphi0, length, 3 * hubble**2, m, f0, 4, coupling, T, boundary)
    c, _ = modes_of(np.asarray(res.phi), length, boundary)
    c_ref, _ = modes_of(phi_ref, length, boundary)
    assert mode_errors(c, c_ref, c_ref[0]).max() < TOL
    assert np.max(np.abs(np.asarray(res.hubble) / h_ref - 1)) < TOL
    assert np.max(np.abs(np.asarray(res.a) / a_ref - 1)) < TOL
    # the gradient energy is a sizeable part of the budget, so a wrong gradient term would show
    assert res.hubble[0] > 1.2 * hubble
    assert np.max(np.abs(np.asarray(res.constraint))) < TOL
    assert abs(float(res.constraint[0])) < 1e-14


# ---------------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------------
def test_argument_checks():
    loss = PolynomialLoss(m=1.0, f0=0.0, n=2)
    kw = dict(length=1.0, hubble=1.0, loss=loss, coupling=1.0, t=[0.0, 1.0])
    with pytest.raises(ValueError, match="boundary"):
        lattice.solve_field(np.zeros(4), 0.0, boundary="dirichlet", **kw)
    with pytest.raises(ValueError, match="dphi0"):
        lattice.solve_field(np.zeros(4), np.zeros(3), **kw)
    with pytest.raises(ValueError, match="length"):
        lattice.solve_field(np.zeros(4), 0.0, **{**kw, "length": -1.0})
    with pytest.raises(TypeError, match="PolynomialLoss"):
        lattice.solve_field(np.zeros(4), 0.0, **{**kw, "loss": lambda f: f})
    with pytest.raises(ValueError, match="increasing"):
        lattice.solve_field(np.zeros(4), 0.0, **{**kw, "t": [0.0, 2.0, 1.0]})
    with pytest.raises(ValueError, match="phi0"):
        lattice.solve_field(np.zeros((2, 2)), 0.0, **kw)
    with pytest.raises(TypeError, match="expanding"):
        lattice.solve_field(np.zeros(4), 0.0, expanding=1, **kw)
    with pytest.raises(ValueError, match="lattice points"):
        lattice.solve_field(np.zeros(1), 0.0, boundary="neumann", **kw)


@pytest.mark.parametrize("expanding", [True, False])
def test_mode_mass_is_the_hand_formula(expanding):
    """M_j^2(t) = (pi j/l)^2 e^{-2Ht} (a = 1 when static) + coupling n(n-1)/2 m^2 (phi_bar - f0)^(n-2),
    written out here for a quartic loss on a Neumann lattice."""
    loss = PolynomialLoss(m=0.2, f0=1.0, n=4)
    length, hubble, coupling = 3.0, 0.7, 0.4
    k = np.asarray(lattice.wavenumbers(5, length, "neumann"))
    t = np.array([0.0, 0.5, 2.0])
    phi_bar = np.array([0.3, 0.6, 0.95])
    inv_a2 = np.exp(-2 * hubble * t) if expanding else np.ones_like(t)
    hand = ((np.pi * np.arange(5) / length)[None, :] ** 2 * inv_a2[:, None]
            + coupling * 6 * 0.2**2 * (phi_bar[:, None] - 1.0) ** 2)
    got = np.asarray(lattice.mode_mass2(k, t, hubble=hubble, loss=loss, coupling=coupling, phi_bar=phi_bar,
                                        expanding=expanding))
    assert got.shape == (3, 5)
    np.testing.assert_allclose(got, hand, rtol=1e-13)
    one = np.asarray(lattice.mode_mass2(k, 2.0, hubble=hubble, loss=loss, coupling=coupling, phi_bar=0.95,
                                        expanding=expanding))
    np.testing.assert_allclose(one, hand[-1], rtol=1e-13)
    # a vector of times with one phi_bar: one row per time, expanding or not (the docstring's (T, n))
    rows = np.asarray(lattice.mode_mass2(k, t, hubble=hubble, loss=loss, coupling=coupling, phi_bar=0.95,
                                         expanding=expanding))
    assert rows.shape == (3, 5)
    np.testing.assert_allclose(rows[-1], hand[-1], rtol=1e-13)
