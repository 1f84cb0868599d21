"""The summary metrics of nncosmo_helpers.experiments, on inputs whose answer is known by construction.

The experiments themselves (training + prediction) are exercised by the chapters under nbval; here the
claim logic that turns their records into the chapters' numbers is checked against hand computations.
"""

import numpy as np
import pytest

from nncosmo_helpers.experiments import precision, schedules


def _check(name, deviation, span, alpha=1.0, dalpha=0.0, deviation_mid=0.0):
    return schedules.DualityCheck(name, None, 0.1, 0, np.arange(3), np.zeros(3), np.zeros(3), deviation, span,
                                  alpha, dalpha, 0.0, deviation_mid)


def test_duality_summary_by_hand():
    runs = (
        _check("de Sitter, beta=0.5", 0.002, 1.0, dalpha=0.01, deviation_mid=0.001),  # strong, small drift: 0.2%
        _check("kinetic, p=1/3", -0.3, 2.0, dalpha=0.5, deviation_mid=0.01),           # worst: 15%, drift 50%
        _check("coasting, p=1", 0.04, 1.0, dalpha=-0.01, deviation_mid=0.05),          # strong, small drift: 4%
        _check("coasting, p=1", np.nan, np.nan),                                        # diverged
    )
    s = schedules.duality_summary(runs, strong=("de Sitter", "coasting"), small_drift=0.02)
    assert (s.n_runs, s.n_diverged) == (4, 1)
    assert s.worst.schedule == "kinetic, p=1/3" and s.worst.relative == pytest.approx(0.15)
    assert s.worst_mid.schedule == "coasting, p=1" and s.worst_relative_mid == pytest.approx(0.05)
    assert len(s.small_drift) == 2 and s.strong_small_drift == pytest.approx(0.04)
    assert s.max_drift == pytest.approx(0.5)
    assert list(s.relative) == ["de Sitter, beta=0.5", "kinetic, p=1/3", "coasting, p=1"]
    np.testing.assert_allclose(s.relative["coasting, p=1"], [0.04])  # the diverged run is left out


def test_late_time_ratios_of_an_exact_power_law():
    p, t = 2 / 3, np.linspace(0.01, 100.0, 1001)
    h = schedules.FriedmannHistory(np.arange(t.size), t, t, t, p / t, 3 * (p / t) ** 2, t)
    assert schedules.late_time_ratios(h, p) == pytest.approx((1.0, 1.0), rel=1e-12)
    # a 10% too large Hubble rate in the last half only shows up fully in the averages over that half
    h2 = h._replace(hubble=np.where(t > 50.0, 1.1 * p / t, p / t))
    assert schedules.late_time_ratios(h2, p)[0] == pytest.approx(1.1, rel=1e-12)


def test_alpha_scan_slope_of_exact_inverse_sqrt_width():
    widths = np.array([32, 128, 512])
    pattern = np.array([-1.0, 1.0, -2.0, 2.0])  # mean 0, sample std sqrt(10/3)
    alphas = 2.0 + np.outer(widths ** -0.5, pattern)
    scan = precision.AlphaScan(widths, alphas, 2.0)
    assert scan.fit[0] == pytest.approx(-0.5, abs=1e-12)
    np.testing.assert_allclose(scan.std, widths ** -0.5 * np.sqrt(10 / 3))
    assert scan.max_bias_sigma == pytest.approx(0.0, abs=1e-9)


def test_drift_scan_metrics_by_hand():
    widths = np.array([10, 40])
    width = np.array([10, 10, 40, 40])
    drift = np.array([0.4, -0.2, 0.1, -0.05])  # rms per width: sqrt(0.1) and sqrt(0.00625)
    deviation = np.array([0.02, -0.01, 0.005, -0.0025])
    span = np.ones(4)
    scan = precision.DriftScan(widths, width, drift, deviation, span, deviation, np.zeros(4))
    np.testing.assert_allclose(scan.rms_drift, [np.sqrt(0.1), np.sqrt(0.00625)])
    assert scan.fits["drift"][0] == pytest.approx(np.log(np.sqrt(0.00625 / 0.1)) / np.log(4.0))
    assert scan.explained == pytest.approx(1.0) and scan.correlation == pytest.approx(1.0)
    half = scan._replace(deviation_mid=0.5 * deviation)
    assert half.explained == pytest.approx(0.5)


def test_float32_check_selects_where_the_lost_share_matters():
    etas, betas = np.array([1e-4, 1e-3, 1e-2]), np.array([0.0])
    dev32 = np.array([[0.5, 0.05, 0.001]])
    maps = precision.PrecisionMaps(etas, betas, dev32 * 0, dev32, None, None, None, 1.0, 0.0)
    rounding = precision.RoundingPrediction(etas, betas, np.array([[0.4, 0.05, 0.005]]), np.array([[0.5, 0.1, 0.0]]),
                                            np.array([np.nan]), np.array([np.nan]))
    c = precision.float32_check(maps, rounding)
    np.testing.assert_allclose(c.ratio, [0.5 / 0.4, 1.0])
    np.testing.assert_allclose(c.ratio_frozen, [1.0, 0.5])
    # dev32 falls below 1% between 1e-3 (5%) and 1e-2 (0.1%), log-log interpolated
    expected = np.exp(np.log(1e-3) + (np.log(0.01) - np.log(0.05)) * np.log(10.0) / (np.log(0.001) - np.log(0.05)))
    assert c.measured_onset[0] == pytest.approx(expected)
