"""experiments.lattice_modes: the network and the lattice field side by side, against closed forms."""

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy.linalg import expm  # noqa: E402

from nncosmo_helpers import dynamics, network, ntk  # noqa: E402
from nncosmo_helpers.experiments import lattice_modes as lm  # noqa: E402
from nncosmo_helpers.loss import PolynomialLoss  # noqa: E402

ETA, BETA, N, STEPS = 1 / 9, 0.0, 16, 60
LOSS = PolynomialLoss(m=0.2, f0=1.0, n=2)


@pytest.fixture(scope="module")
def comparison():
    init_fn, apply_fn = network.mlp(width=32, hidden_layers=1, activation="erf", W_std=1.0, b_std=0.5)
    params = init_fn(jax.random.PRNGKey(0), 1)
    x = dynamics.centred_interval(N, 1.0, eta=ETA, beta=BETA)
    return lm.compare_network_lattice(apply_fn, params, x, eta=ETA, beta=BETA, loss=LOSS, steps=STEPS,
                                      record_every=5, n_modes=4), apply_fn, params, x


def oscillator(c0, friction, omega2, t):
    """c'' + friction c' + omega2 c = 0 from rest, via the matrix exponential."""
    a = np.array([[0.0, 1.0], [-omega2, -friction]])
    return np.array([(expm(s * a) @ np.array([c0, 0.0]))[0] for s in t])


def test_field_modes_follow_their_mode_equations(comparison):
    r, apply_fn, params, x = comparison
    f_init = np.asarray(apply_fn(params, x))[:, 0]
    w = np.r_[0.5, np.ones(N - 2), 0.5] / (N - 1)  # the homogeneous cosine mode = trapezoid mean
    m2 = r.coupling * LOSS.m**2
    mean_ref = LOSS.f0 + oscillator(w @ f_init - LOSS.f0, 3 * r.hubble, m2, r.t)
    scale = abs(mean_ref[-1] - mean_ref[0])
    assert scale > 1e-2
    for amp in (r.field_amplitude, r.field_amplitude_static):
        assert np.max(np.abs(amp[:, 0] - mean_ref)) < 1e-8 * scale
    # static mode j = 1: a damped oscillator with omega^2 = k^2 + V''
    c1 = r.field_amplitude_static[0, 1]
    ref1 = oscillator(c1, 3 * r.hubble, r.wavenumbers[1] ** 2 + m2, r.t)
    assert np.max(np.abs(r.field_amplitude_static[:, 1] - ref1)) < 1e-6 * abs(c1)


def test_masses_horizon_exit_and_amplitudes(comparison):
    r, apply_fn, params, x = comparison
    h = r.hubble
    assert h == pytest.approx((1 - BETA) / (3 * np.sqrt(ETA)))
    assert r.length == pytest.approx(1.0 / h)
    assert np.allclose(r.wavenumbers, np.pi * np.arange(4) / r.length)
    m2 = LOSS.m**2  # L'' of the quadratic loss
    assert np.allclose(r.network_mass2, r.eigenvalues_over_n[None, :] * m2)
    assert np.allclose(r.field_mass2_static, r.wavenumbers[None, :] ** 2 + r.coupling * m2)
    assert np.allclose(r.field_mass2[-1], r.wavenumbers**2 * np.exp(-2 * h * r.t[-1]) + r.coupling * m2)
    exits = r.wavenumbers > h
    assert np.allclose(r.wavenumbers[exits] * np.exp(-h * r.horizon_exit[exits]), h)
    assert r.coupling == pytest.approx(r.eigenvalues_over_n[0])
    # network amplitudes are the projections of the network's outputs on the initial NTK eigenvectors
    modes = dynamics.mode_decomposition(np.asarray(ntk.empirical_ntk(apply_fn, params, x)))
    f_init = np.asarray(apply_fn(params, x))[:, 0]
    assert np.allclose(np.abs(r.network_amplitude[0]), np.abs(f_init @ np.asarray(modes.eigenvectors)[:, :4]))
    assert len(r.table()) == 4 and r.table()[1]["nodes"] == int(r.nodes[1])


def test_rejects_unequal_grid():
    init_fn, apply_fn = network.mlp(width=4, hidden_layers=1, activation="erf", W_std=1.0, b_std=0.5)
    params = init_fn(jax.random.PRNGKey(0), 1)
    x = np.array([[0.0], [0.1], [0.3]])
    with pytest.raises(ValueError, match="equally spaced"):
        lm.compare_network_lattice(apply_fn, params, x, eta=ETA, beta=BETA, loss=LOSS, steps=2, n_modes=2)


def test_figure(comparison):
    from nncosmo_helpers.plotting import lattice as plot_lattice

    fig = plot_lattice.network_vs_lattice(comparison[0])
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) >= 3 * 4


def test_given_run_and_seed_summary(comparison):
    """A run trained beforehand gives the same comparison; summarise takes median and range over networks."""
    from nncosmo_helpers.train import train_momentum

    m, apply_fn, params, x = comparison
    run = train_momentum(apply_fn, params, x, eta=ETA, beta=BETA, loss=LOSS, steps=STEPS, record_every=5)
    m2 = lm.compare_network_lattice(apply_fn, params, x, eta=ETA, beta=BETA, loss=LOSS, steps=STEPS, record_every=5,
                                    n_modes=4, run=run)
    np.testing.assert_allclose(m2.network_amplitude, m.network_amplitude, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(m2.field_amplitude, m.field_amplitude, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError):
        lm.compare_network_lattice(apply_fn, params, x, eta=ETA, beta=BETA, loss=LOSS, steps=STEPS, record_every=1, run=run)
    s = lm.summarise([m, m2])
    err = abs(m.network_relative[-1, 0] - m.field_relative[-1, 0]) / abs(m.network_relative[-1, 0] - 1)
    assert s["mean-err"].median == pytest.approx(err, rel=1e-9) and s["mean-err"].n_seeds == 2
    assert s["mu2-max"].median == pytest.approx(m.network_mass2[0, 1] / m.hubble**2, rel=1e-12)


def test_frozen_statistic_is_the_verdicts_definition(comparison):
    """The summary's "frozen-dev" selects modes i >= 2 with kappa < FROZEN_KAPPA and an initial amplitude
    above MIN_AMPLITUDE, as the freezing verdict does, and takes their largest |end/start - 1|."""
    from nncosmo_helpers.experiments import modes

    m = comparison[0]
    s = lm.summarise([m])
    k, a0, rel = m.kappa[1:], m.network_amplitude[0, 1:], m.network_relative[-1, 1:] - 1
    sel = (k < modes.FROZEN_KAPPA) & (np.abs(a0) > modes.MIN_AMPLITUDE)
    expected = float(np.max(np.abs(rel[sel]))) if sel.any() else float("nan")
    if sel.any():
        assert s["frozen-dev"].median == pytest.approx(expected, rel=1e-12)
    else:
        assert s["frozen-dev"].n_seeds == 0 and s["frozen-dev"].left_out == 1


def test_largest_frozen_change_selection():
    """Hand-made modes: only the frozen (kappa < 0.01), non-negligible (|a| > 0.01) ones count."""
    from nncosmo_helpers.experiments import modes

    kappa = [0.5, 0.005, 0.001, 0.002]
    amp = [1.0, 0.2, 0.005, -0.3]          # mode 3 too small to count
    rel = [0.9, 0.01, 0.7, -0.03]
    assert modes.largest_frozen_change(kappa, amp, rel) == pytest.approx(0.03)
    assert np.isnan(modes.largest_frozen_change([0.5], [1.0], [0.1]))
