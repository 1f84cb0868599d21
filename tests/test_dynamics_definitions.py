"""The single definitions dynamics takes from the physics modules below it (cosmology, lattice)."""

import numpy as np
import pytest

from nncosmo_helpers import dynamics, lattice
from nncosmo_helpers.cosmology import flrw_parameters
from nncosmo_helpers.loss import PolynomialLoss


def test_fixed_k_field_modes_are_the_static_neumann_lattice_modes():
    """predict_field_modes (linearised eq. 19, a = 1) against the full lattice eq. 17 with a = 1.

    For a quadratic loss V'' is constant, so the linearisation is exact and every Neumann lattice mode
    amplitude (an independent solver: spectral Laplacian on the field, not on modes) must follow the
    fixed-k mode equation with k = field_wavenumbers; the k = 0 amplitude is the background, eq. 18.
    """
    eta, beta, alpha, n, length = 1 / 9, 0.3, 0.7, 17, 2.0
    loss = PolynomialLoss(0.8, 0.5, 2)
    x = lattice.grid(n, length, "neumann")
    k = dynamics.field_wavenumbers(n, length)
    amps = np.array([0.0, 0.3, -0.2, 0.1, 0.05])
    phi_bar = -0.4
    phi0 = phi_bar + sum(a * np.cos(kj * (x + length / 2)) for a, kj in zip(amps, k))
    steps = np.linspace(0.0, 90.0, 16)
    t = steps * np.sqrt(eta)
    field = lattice.solve_field(phi0, 0.0, length=length, hubble=flrw_parameters(eta, beta).hubble, loss=loss,
                                coupling=alpha, t=t, boundary="neumann", expanding=False)
    c = np.asarray(lattice.mode_amplitudes(field, "neumann"))
    phi, phi_k = dynamics.predict_field_modes(k[1:5], amps[1:5], alpha=alpha, phi_init=phi_bar, eta=eta, beta=beta,
                                              loss=loss, steps=steps)
    # both integrate with rtol 1e-10 (odes.RTOL) on O(1) amplitudes
    np.testing.assert_allclose(np.asarray(phi), c[:, 0], rtol=0, atol=1e-8)
    np.testing.assert_allclose(np.asarray(phi_k), c[:, 1:5], rtol=0, atol=1e-8)
    assert np.max(np.abs(c[-1, 1:5] - amps[1:5])) > 0.05  # the modes moved: the check is not vacuous


def test_field_wavenumbers_are_the_neumann_lattice_ones():
    np.testing.assert_array_equal(dynamics.field_wavenumbers(6, 2.5), np.asarray(lattice.wavenumbers(6, 2.5, "neumann")))
    assert dynamics.field_wavenumbers(1, 2.5).tolist() == [0.0]  # one mode (k = 0) is still allowed here
    np.testing.assert_allclose(dynamics.field_wavenumbers(4, 0.5), [0.0, 2 * np.pi, 4 * np.pi, 6 * np.pi], rtol=1e-15)


def test_mean_field_coupling_is_the_eq15_eigenvalue():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(6, 6))
    kernel = a @ a.T
    modes = dynamics.mode_decomposition(kernel)
    c = dynamics.mean_field_couplings(kernel)
    assert c["lambda1/N"] == float(modes.eigenvalues[0]) / 6  # the same lambda_1 as eq. 15
    assert c["lambda1/N"] == pytest.approx(np.linalg.eigvalsh(kernel)[-1] / 6, rel=1e-13)  # LAPACK's other driver
    with pytest.raises(ValueError):
        dynamics.mean_field_couplings(kernel, dynamics.mode_decomposition(kernel[:5, :5]))


def test_relative_end_errors_are_the_ratios_of_the_absolute_ones():
    loss = PolynomialLoss(0.3, 1.0, 2)
    kernel = np.array([[2.0, 0.4, 0.1], [0.4, 1.5, 0.3], [0.1, 0.3, 1.0]])
    f_init = np.array([0.1, -0.2, 0.4])
    steps = np.arange(0, 201, 20)
    f_obs = np.asarray(dynamics.iterate_linearized(kernel, f_init, eta=0.1111, beta=0.0, loss=loss, steps=steps))
    cmp = dynamics.compare_mean_field(kernel, f_obs, steps, eta=0.1111, beta=0.0, loss=loss)
    for name in ("lambda1/N", "mean Theta", "mean diag Theta", "linearized"):
        pred = cmp.linearized_mean if name == "linearized" else cmp.predictions[name]
        by_hand = abs(pred[-1] - f_obs[-1].mean()) / abs(f_obs[-1].mean() - f_obs[0].mean())
        assert cmp.relative_end_error(name) == pytest.approx(by_hand, rel=1e-12)
        assert cmp.relative_end_error(name) == cmp.end_error(name) / cmp.excursion
    assert cmp.eq15_relative_end_error == cmp.eq15_end_error / cmp.projection_excursion
    assert np.isfinite(cmp.eq15_relative_end_error) and cmp.eq15_relative_end_error > 0


def test_freezing_numbers_at_the_initial_mean_field_by_hand():
    """kappa_i = (lambda_i/N) L''(f_bar(0)) T/(3H), L'' = n(n-1)/2 m^2 (f - f0)^(n-2), T = steps sqrt(eta),
    3H = (1 - beta)/sqrt(eta), written out for a quartic loss (where the evaluation point matters)."""
    loss = PolynomialLoss(m=0.3, f0=1.0, n=4)
    lam_n, f_bar0, eta, beta, steps = np.array([2.0, 0.5, 1e-3]), -0.4, 0.04, 0.5, 250
    lpp = 6 * 0.3**2 * (f_bar0 - 1.0) ** 2
    expected = lam_n * lpp * (steps * np.sqrt(eta)) / ((1 - beta) / np.sqrt(eta))
    got = dynamics.freezing_numbers(lam_n, f_bar0, loss=loss, eta=eta, beta=beta, steps=steps)
    np.testing.assert_allclose(got, expected, rtol=1e-14)
    # mu_i^2(t) along a mean-field trajectory: one row per time
    traj = np.array([f_bar0, 0.0, 0.9])
    np.testing.assert_allclose(dynamics.network_mass2(lam_n[None, :], traj[:, None], loss),
                               lam_n[None, :] * 6 * 0.3**2 * (traj[:, None] - 1.0) ** 2, rtol=1e-14)


def test_one_definition_of_the_freezing_number():
    from nncosmo_helpers.experiments import modes

    assert not hasattr(modes, "freezing_numbers")  # dynamics.freezing_numbers is the one place


def test_error_budget_kappa_at_the_projected_mean_field_not_the_arithmetic_mean():
    """A kernel whose v_1 is not uniform and a quartic loss: f_bar(0) = v_1 . f(0)/sqrt(N) differs from
    the mean of f(0), and kappa must use f_bar(0) (eq. 14, the start of eqs. 15/16)."""
    from nncosmo_helpers.experiments import error_budget as eb

    loss = PolynomialLoss(m=0.5, f0=1.0, n=4)
    k0 = np.array([[3.0, 1.0, 0.2], [1.0, 2.0, 0.1], [0.2, 0.1, 0.5]])
    f_init = np.array([0.1, -0.2, 0.6])
    eta, beta, steps = 1 / 9, 0.0, 20
    b = eb._budget(f_init, f_init, k0, None, eta=eta, beta=beta, loss=loss, steps=steps)
    w, v = np.linalg.eigh(k0)
    v1 = v[:, -1] * np.sign(v[:, -1].sum())
    f_bar0 = v1 @ f_init / np.sqrt(3)
    assert abs(f_bar0 - f_init.mean()) > 0.05  # the two points differ here
    expected = w[::-1] / 3 * 6 * 0.25 * (f_bar0 - 1.0) ** 2 * steps * np.sqrt(eta) / ((1 - beta) / np.sqrt(eta))
    np.testing.assert_allclose(b.kappa, expected, rtol=1e-10)
