"""Tests of nncosmo_helpers.scans.mean_field (appendix B, Fig. 6): the bounds the appendix asserts."""

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

from nncosmo_helpers import dynamics  # noqa: E402
from nncosmo_helpers.loss import PolynomialLoss  # noqa: E402
from nncosmo_helpers.scans import mean_field  # noqa: E402

ETA, BETA = 0.1111, 0.0
GAMMA = (1 - BETA) / np.sqrt(ETA)


def _roots(gamma, kappa):
    d = np.sqrt(complex(gamma**2 - 4 * kappa))
    return (-gamma + d) / 2, (-gamma - d) / 2


@pytest.mark.parametrize("kappa", [1e-4, 0.04, 1.0, 2.0])
def test_green_integral_matches_closed_form_when_overdamped(kappa):
    # overdamped: G >= 0, so int |G| = int G = [(e^{s1 T} - 1)/s1 - (e^{s2 T} - 1)/s2] / (s1 - s2), written out here
    T = 1000 * np.sqrt(ETA)
    s1, s2 = (r.real for r in _roots(GAMMA, kappa))
    exact = ((np.expm1(s1 * T) / s1) - (np.expm1(s2 * T) / s2)) / (s1 - s2)
    assert mean_field.green_integral(GAMMA, kappa, T) == pytest.approx(exact, rel=1e-8)


def test_green_integral_underdamped_exceeds_signed_integral():
    # underdamped: G changes sign, so int |G| > |int G| = |closed form|; both finite
    T, kappa = 50.0, 20.0
    s1, s2 = _roots(GAMMA, kappa)
    signed = abs((((np.exp(s1 * T) - 1) / s1) - ((np.exp(s2 * T) - 1) / s2)) / (s1 - s2))
    assert mean_field.green_integral(GAMMA, kappa, T) > 1.05 * signed


@pytest.mark.parametrize("loss", [PolynomialLoss(0.2, 10.0, 2), PolynomialLoss(0.1, 1.0, 2), PolynomialLoss(0.2, 1.0, 4)])
def test_end_displacement_grows_at_most_linearly_with_the_coupling(loss):
    # the elasticity d ln D / d ln kappa <= 1 of eq. 7 from rest, over the couplings of the grid (1e-4 .. 10):
    # D(kappa)/kappa must not increase with kappa (the appendix's gap bound relies on it)
    steps = np.array([0, 1000])
    kappas = np.geomspace(1e-4, 10.0, 25)
    disp = np.array([abs(dynamics.predict_homogeneous(k, 0.0, eta=ETA, beta=BETA, loss=loss, steps=steps)[-1])
                     for k in kappas])
    ratio = disp / kappas
    assert np.all(np.diff(ratio) <= 1e-9 * ratio[:-1])


def _kernel(n=12, seed=0):
    rng = np.random.default_rng(seed)
    x = np.linspace(-1, 1, n)
    feats = np.stack([np.ones(n) * 0.3, x, x**2 - 0.3, rng.normal(size=n) * 0.1], axis=1)
    return feats @ np.diag([1.0, 2.0, 0.5, 0.2]) @ feats.T + 0.01 * np.eye(n)


def test_reduction_bound_holds_and_is_not_vacuous():
    k = _kernel()
    loss = PolynomialLoss(0.2, 10.0, 2)
    f_init = np.linspace(-0.3, 0.5, k.shape[0]) ** 2
    steps = np.arange(1001)
    lin = np.asarray(dynamics.predict_linearized(k, f_init, eta=ETA, beta=BETA, loss=loss, steps=steps))
    theta_bar = k.mean()
    pred = np.asarray(dynamics.predict_homogeneous(theta_bar, f_init.mean(), eta=ETA, beta=BETA, loss=loss, steps=steps))
    err = abs(pred[-1] - lin[-1].mean())
    delta_max = np.max(np.linalg.norm(lin - lin.mean(axis=1, keepdims=True), axis=1))
    bound = mean_field.reduction_bound(k, delta_max, loss=loss, eta=ETA, beta=BETA, duration=1000 * np.sqrt(ETA))
    assert 1e-6 < err <= bound
    assert bound < 100 * err  # a bound within two orders of magnitude of the effect it bounds


def test_reduction_bound_vanishes_when_u_is_an_eigenvector():
    n = 10
    k = 0.7 * np.eye(n) + 0.2 * np.ones((n, n))  # u is an eigenvector: the mean decouples exactly
    loss = PolynomialLoss(0.2, 10.0, 2)
    f_init = np.linspace(0.0, 1.0, n)
    steps = np.arange(1001)
    lin = np.asarray(dynamics.predict_linearized(k, f_init, eta=ETA, beta=BETA, loss=loss, steps=steps))
    pred = np.asarray(dynamics.predict_homogeneous(k.mean(), f_init.mean(), eta=ETA, beta=BETA, loss=loss, steps=steps))
    assert mean_field.reduction_bound(k, 1.0, loss=loss, eta=ETA, beta=BETA, duration=1000 * np.sqrt(ETA)) < 1e-14
    assert abs(pred[-1] - lin[-1].mean()) < 1e-8


def test_reduction_bound_refuses_quartic_loss():
    with pytest.raises(ValueError):
        mean_field.reduction_bound(np.eye(3), 1.0, loss=PolynomialLoss(0.2, 1.0, 4), eta=ETA, beta=BETA, duration=1.0)


def test_fraction_travelled():
    assert mean_field.fraction_travelled(0.0, 1.0, 10.0) == pytest.approx(0.1)
    assert mean_field.fraction_travelled(2.0, 1.0, -2.0) == pytest.approx(0.25)


def fake_row(seed, leading, *, gap, floor, moving=True, n=2):
    """A row of mean_field.rows with a comparison whose end errors give the stated gap and floor."""
    from types import SimpleNamespace

    # the observed mean goes from -1 to 0 (excursion 1), so each prediction's end value is its end error
    end = {"lambda1/N": 0.0, "mean Theta": gap, "mean diag Theta": 0.0, "linearized": floor}
    c = SimpleNamespace(end_error=lambda name: abs(end[name]), excursion=1.0, observed_mean=np.array([-1.0, 0.0]),
                        predictions={"lambda1/N": np.array([-1.0, 0.0]), "mean Theta": np.array([-1.0, gap]),
                                     "mean diag Theta": np.array([-1.0, 0.0])},
                        linearized_mean=np.array([-1.0, floor]), eq15_end_error=0.0, projection_excursion=1.0,
                        observed_projection=np.array([-1.0, 0.0]), eq15=np.array([-1.0, 0.0]),
                        couplings={"lambda1/N": 1.0, "mean Theta": 1.0})
    return {"seed": seed, "leading_mode": leading, "comparison": c, "moving": moving, "loss": PolynomialLoss(0.2, 1.0, n),
            "reduction_bound": 1.0}


def test_fig6_summary_statistics_seed_by_seed_with_the_full_range():
    rows = [fake_row(0, "uniform", gap=1e-3, floor=1e-2), fake_row(0, "uniform", gap=3e-3, floor=1e-2),
            fake_row(1, "uniform", gap=5e-3, floor=1e-2), fake_row(2, "uniform", gap=4e-3, floor=1e-2),
            fake_row(0, "not uniform", gap=0.5, floor=1e-2), fake_row(1, "not uniform", gap=0.3, floor=1e-2)]
    st = mean_field.fig6_summary(rows)
    gmax = st.spreads["uni-gap-max"]                      # per seed: 3e-3, 5e-3, 4e-3
    assert gmax.values == pytest.approx((3e-3, 5e-3, 4e-3)) and gmax.median == pytest.approx(4e-3)
    assert gmax.spread == pytest.approx(2e-3)            # the full range (the former SeedStat had half of it)
    assert st.counts["n-uniform"] == 4 and st.counts["n-nonuni-moving"] == 2 and st.counts["uni-mov-agree"] == 4
    assert st.verdicts["fig6"] == "qualified" and st.verdicts["uniform"] == "holds"
    assert not hasattr(mean_field, "SeedStat") and not hasattr(mean_field, "over_seeds")


def test_grid_covers_the_papers_fig5_architectures():
    for profile, width, n_seeds in (("quick", mean_field.QUICK_WIDTH, 2), ("paper", 1000, 5)):
        g = mean_field.grid(profile)
        archs = {(c["hidden_layers"], c["activation"], c["W_std"], c["b_std"], c["interval"]) for c in g}
        assert archs == {(L, a, w, b, c) for L in (1, 2) for a in ("erf", "relu") for (w, b) in ((1.0, 0.05), (0.1, 0.01))
                         for c in (0.1, 1.0)}
        assert {c["width"] for c in g} == {width} and len({c["seed"] for c in g}) >= n_seeds
