"""The homogeneous FLRW background solver (cosmology.solve_background, eqs. 6-8)."""

import json

import numpy as np
import pytest

from nncosmo_helpers import cosmology, dynamics
from nncosmo_helpers.loss import PolynomialLoss

ALPHA, PHI0 = 1.1, 1.5
LOSS = PolynomialLoss(0.1, 10.0, 2)


@pytest.mark.parametrize("eta, beta, loss", [(0.1111, 0.0, LOSS), (0.0278, 0.5, PolynomialLoss(0.2, 1.0, 4))])
def test_fixed_hubble_is_eq7(eta, beta, loss):
    """With 3H^2 = V0 the field equation is eq. 7: same ODE as dynamics.predict_homogeneous."""
    steps = np.arange(0, 1001, 25)
    bg = cosmology.solve_background(ALPHA, loss, PHI0, eta=eta, beta=beta, steps=steps)
    ref = np.asarray(dynamics.predict_homogeneous(ALPHA, PHI0, eta=eta, beta=beta, loss=loss, steps=steps))
    assert np.max(np.abs(bg.phi - ref)) < 1e-8
    assert np.allclose(bg.hubble, cosmology.flrw_parameters(eta, beta).hubble, rtol=0, atol=1e-14)
    assert np.allclose(3 * bg.hubble**2, bg.flrw.vacuum_energy, rtol=1e-13)


def test_fixed_hubble_closed_form():
    """Quadratic loss, fixed H: the damped oscillator phi = f0 + (phi0 - f0)(r2 e^{r1 t} - r1 e^{r2 t})/(r2 - r1)."""
    eta, beta = 0.4444, 0.0
    steps = np.linspace(0.0, 300.0, 61)
    bg = cosmology.solve_background(ALPHA, LOSS, PHI0, eta=eta, beta=beta, steps=steps)
    gamma = (1 - beta) / np.sqrt(eta)
    r1, r2 = np.roots([1.0, gamma, ALPHA * LOSS.m**2])
    t = steps * np.sqrt(eta)
    exact = LOSS.f0 + (PHI0 - LOSS.f0) * (r2 * np.exp(r1 * t) - r1 * np.exp(r2 * t)) / (r2 - r1)
    assert np.max(np.abs(bg.phi - exact.real)) < 1e-8


@pytest.mark.parametrize("eta, beta, loss", [(4.0, 0.0, LOSS), (0.1111, 0.5, PolynomialLoss(0.2, 10.0, 4))])
def test_self_consistent_friedmann_constraint(eta, beta, loss):
    """H is evolved with Raychaudhuri (H' = -phi'^2/2); the Friedmann equation 3H^2 = phi'^2/2 + V0 + alpha L
    is then a conserved constraint, checked independently along the solution."""
    steps = np.linspace(0.0, 2000.0, 201)
    bg = cosmology.solve_background(ALPHA, loss, PHI0, eta=eta, beta=beta, steps=steps, self_consistent=True)
    rho = 0.5 * bg.phi_dot**2 + bg.flrw.vacuum_energy + ALPHA * np.asarray(loss(bg.phi))
    assert np.max(np.abs(3 * bg.hubble**2 - rho) / rho) < 1e-9
    # the backreaction is real here: H starts well above H0 and relaxes towards it
    assert bg.hubble[0] > 1.1 * bg.flrw.hubble
    assert np.all(np.diff(bg.hubble) <= 1e-14) and bg.hubble[-1] >= bg.flrw.hubble * (1 - 1e-12)


def test_backgrounds_converge_as_backreaction_vanishes():
    """As eps = alpha L(phi0)/V0 -> 0 the two backgrounds converge linearly in eps, and the largest
    distance (over a full relaxation, in units of |f0 - phi0|) tends to the slow-roll limit eps/(6 sqrt 3)."""
    limit = 1.0 / (6.0 * np.sqrt(3.0))
    ratios = []
    for eps in (0.1, 0.01):
        fixed, sc = cosmology.backgrounds_at_epsilon(ALPHA, LOSS, PHI0, epsilon=eps, beta=0.0,
                                                     relaxation_times=12.0, samples=3000)
        assert np.isclose(fixed.energy_ratio[0], eps, rtol=1e-12)
        ratios.append(np.max(np.abs(fixed.phi - sc.phi)) / abs(LOSS.f0 - PHI0) / eps)
    # corrections are O(eps): ~2% at eps = 0.1, ~0.2% at eps = 0.01
    assert abs(ratios[0] / limit - 1) < 0.04
    assert abs(ratios[1] / limit - 1) < 0.005
    assert abs(ratios[1] / limit - 1) < abs(ratios[0] / limit - 1) / 5


def test_eta_max_formula():
    em = cosmology.eta_max_vacuum(ALPHA, LOSS, PHI0, beta=0.0)
    assert np.isclose(em, 1.0 / (3 * ALPHA * float(LOSS(PHI0))))
    # at eta = eta_max the field energy equals the vacuum energy
    assert np.isclose(ALPHA * float(LOSS(PHI0)), cosmology.flrw_parameters(em, 0.0).vacuum_energy)
    assert np.isclose(cosmology.eta_max_vacuum(ALPHA, LOSS, PHI0, beta=0.5), 0.25 * em)
    assert cosmology.eta_max_vacuum(ALPHA, LOSS, LOSS.f0, beta=0.0) == float("inf")


def test_solve_background_rejects_bad_input():
    with pytest.raises(TypeError):
        cosmology.solve_background(ALPHA, "quadratic", PHI0, eta=0.1, beta=0.0, steps=[0, 1])
    with pytest.raises(ValueError):
        cosmology.solve_background(-1.0, LOSS, PHI0, eta=0.1, beta=0.0, steps=[0, 1])
    with pytest.raises(ValueError):
        cosmology.solve_background(ALPHA, LOSS, PHI0, eta=0.1, beta=1.0, steps=[0, 1])
    with pytest.raises(TypeError):
        cosmology.solve_background(ALPHA, LOSS, PHI0, eta=0.1, beta=0.0, steps=[0, 1], self_consistent=1)


# --- mean-field couplings of inhomogeneous networks (appendix B), used by the appendix chapter ---
def _kernel_with_leading(v1, lam=(2.0, 0.5, 0.1, 0.02)):
    """A 4x4 PSD kernel whose leading eigenvector is v1 (the rest from Gram-Schmidt)."""
    basis = np.linalg.qr(np.column_stack([v1, np.eye(4)[:, :3]]))[0]
    basis[:, 0] *= np.sign(basis[:, 0] @ v1)
    return basis @ np.diag(lam) @ basis.T


def test_mean_field_couplings_order():
    """mean(Theta) = u.Theta.u/N <= lambda1/N, with equality iff the uniform vector leads."""
    u = np.ones(4) / 2.0
    k_uniform = _kernel_with_leading(u)
    c = dynamics.mean_field_couplings(k_uniform)
    assert np.isclose(c["lambda1/N"], 2.0 / 4) and np.isclose(c["mean Theta"], 2.0 / 4)
    tilted = np.array([1.0, 0.6, -0.2, 0.3])
    k_tilted = _kernel_with_leading(tilted / np.linalg.norm(tilted))
    c = dynamics.mean_field_couplings(k_tilted)
    assert np.isclose(c["lambda1/N"], 2.0 / 4) and c["mean Theta"] < 0.95 * c["lambda1/N"]
    assert np.isclose(c["mean Theta"], k_tilted.mean()) and np.isclose(c["mean diag Theta"], np.trace(k_tilted) / 4)


def test_mean_field_exact_when_uniform_mode_leads():
    """Quadratic loss, frozen kernel with Theta u = lambda1 u: <f> obeys eq. 7 with lambda1/N exactly,
    even for non-uniform outputs; the 'observed' trajectory is the full eq. 9 solution."""
    loss = PolynomialLoss(0.3, 1.0, 2)
    k = _kernel_with_leading(np.ones(4) / 2.0)
    f_init = np.array([0.1, -0.2, 0.4, 0.0])
    steps = np.arange(0, 401, 20)
    f_obs = np.asarray(dynamics.predict_linearized(k, f_init, eta=0.1111, beta=0.0, loss=loss, steps=steps))
    cmp = dynamics.compare_mean_field(k, f_obs, steps, eta=0.1111, beta=0.0, loss=loss)
    assert cmp.uniform_overlap > 1 - 1e-12
    for name in ("lambda1/N", "mean Theta"):
        assert np.max(np.abs(cmp.predictions[name] - cmp.observed_mean)) < 1e-8
    assert np.max(np.abs(cmp.eq15 - cmp.observed_projection)) < 1e-8
    # the JSON form the scans store keeps every array and number exactly
    back = dynamics.MeanFieldComparison.from_dict(json.loads(json.dumps(cmp.to_dict())))
    for name in ("lambda1/N", "mean Theta", "linearized"):
        assert back.end_error(name) == cmp.end_error(name)
    assert back.couplings == cmp.couplings and back.uniform_overlap == cmp.uniform_overlap
    np.testing.assert_array_equal(back.eq15, cmp.eq15)


def test_stability_limit_runs_closed_form_limit():
    # eta_stab = 2 / (alpha L'') with L'' = m^2 for the quadratic loss (eq. bg-etastab), eta_max = 1 / (3 alpha L)
    # (eq. bg-etamax at beta = 0); below the limit a wide network converges with its kernel nearly frozen,
    # far above it (10 eta_stab) the linearised dynamics grow by |1 - 10 * 2| = 19 per step and the run diverges.
    import jax
    import jax.numpy as jnp

    from nncosmo_helpers import network, ntk
    from nncosmo_helpers.experiments import background

    init_fn, apply_fn = network.mlp(width=64, hidden_layers=1, activation="erf", W_std=1.0, b_std=0.05)
    params, x0 = init_fn(jax.random.PRNGKey(3), 1), jnp.ones((1, 1))
    loss = PolynomialLoss(0.2, 1.0, 2)
    lim = background.stability_limit_runs(apply_fn, params, x0, loss=loss, factors=(0.5, 10.0), steps=200)
    a = float(ntk.alpha(apply_fn, params, x0))
    f_init = float(apply_fn(params, x0)[0, 0])
    assert lim.eta_stab == pytest.approx(2.0 / (a * 0.2**2), rel=1e-12)
    assert lim.eta_max == pytest.approx(1.0 / (3.0 * a * 0.5 * 0.2**2 * (f_init - 1.0) ** 2), rel=1e-12)
    assert not lim.runs[0.5].diverged and lim.runs[10.0].diverged
    assert abs(lim.alpha_ratio[0.5] - 1) < 0.1 and np.isnan(lim.alpha_ratio[10.0])
    assert lim.peak[0.5] == pytest.approx(abs(f_init - 1.0), rel=1e-12)  # it relaxes monotonically from f_init
