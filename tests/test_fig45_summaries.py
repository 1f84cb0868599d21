"""Figs. 4 and 5 of the quantitative chapter: seed ensembles, the v1 class, networks that move, the grids.

Every expected value below is worked out by hand from the hand-built records (in the docstrings), not
taken from the functions under test.
"""

import numpy as np
import pytest

from nncosmo_helpers import scans

approx = lambda v: pytest.approx(v, rel=1e-12)  # noqa: E731


def test_seed_spread_of_a_table_by_hand():
    """values 1, 2 (configuration a, seeds 0, 1), 10 (configuration b, seed 0) and NaN (b, seed 1): per-seed
    medians over configurations: seed 0 median(1, 10) = 5.5, seed 1: 2 (the NaN left out and counted) ->
    median over seeds 3.75 in [2, 5.5]. (The former definition, the median over configurations of the
    per-configuration seed medians 1.5 and 10, gave 5.75.)"""
    configs = [{"k": k, "W_std": 1.0, "seed": s} for k, s in (("a", 0), ("a", 1), ("b", 0), ("b", 1))]
    df = scans.from_records(configs, [{"v": v} for v in (1.0, 2.0, 10.0, np.nan)])
    st = scans.seed_spread(df, "v")
    assert st.median == approx(3.75)
    assert (st.low, st.high, st.n_seeds, st.left_out) == (approx(2.0), approx(5.5), 2, 1)
    assert st.tolerance() == approx(3.5)
    only_nan = scans.seed_spread(df[df["k"] == "b"].iloc[1:], "v")
    assert np.isnan(only_nan.median) and only_nan.left_out == 1
    import pandas as pd

    assert scans.seed_spread(pd.DataFrame({"v": [1.0, 3.0], "k": ["a", "a"], "seed": [0, 1]}), "v").median == 2.0


def test_fraction_travelled_by_hand():
    # from 0.2 towards 1.2 (distance 1.0), ending at 0.8: six tenths of the way
    from nncosmo_helpers.scans.summaries import _fraction_travelled

    assert _fraction_travelled([0.2, 0.5, 0.8], 1.2) == approx(0.6)
    assert _fraction_travelled([0.0, -0.1], 1.0) == approx(0.1)  # moving away counts as distance
    assert np.isnan(_fraction_travelled([1.0, 1.0], 1.0))


def _r4(lam1, lam2, overlap):
    return {"lambda1_over_N": lam1, "eigenvalues_over_N": [lam1, lam2, 0.0], "alpha_diag_mean": lam1,
            "uniform_overlap": overlap, "lambda_ratio": lam1 / lam2}


def test_fig4_matches_each_seed_with_its_own_alpha():
    """Configuration A (seeds 0, 1) and B (seed 0) on one interval; alpha differs between A's seeds.

    ratios: A0 2/1 = 2, A1 3/2 = 1.5, B0 1/4 = 0.25 -> per seed: seed 0 median(2, 0.25) = 1.125, seed 1:
    1.5 -> median over seeds 1.3125 (the former definition, the median of the per-configuration medians
    1.75 and 0.25, gave 1.0: outside its own seed range [1.125, 1.5]). gaps 2/0.1 = 20, 3/2 = 1.5,
    1/0.5 = 2: per seed median(20, 2) = 11 and 1.5 -> 6.25. Classes: A0 uniform (overlap 1, gap 20), A1
    (gap 1.5 >= 1.1 but overlap 0.2: not uniform), B0 overlap 1, gap 2 -> uniform."""
    A = {"width": 100, "hidden_layers": 1, "activation": "erf", "W_std": 1.0, "b_std": 0.05}
    B = {**A, "activation": "relu"}
    configs1 = [{**A, "seed": 0}, {**A, "seed": 1}, {**B, "seed": 0}]
    results1 = [{"alpha": 1.0}, {"alpha": 2.0}, {"alpha": 4.0}]
    configs4 = [{**A, "seed": 0, "interval": 1.0}, {**A, "seed": 1, "interval": 1.0}, {**B, "seed": 0, "interval": 1.0}]
    results4 = [_r4(2.0, 0.1, 1.0), _r4(3.0, 2.0, 0.2), _r4(1.0, 0.5, 1.0)]
    p = scans.fig4_frame(scans.from_records(configs4, results4), scans.from_records(configs1, results1))
    np.testing.assert_allclose(p["alpha"], [1.0, 2.0, 4.0])
    assert p["leading_mode"].tolist() == ["uniform", "not uniform", "uniform"]
    s = scans.fig4_summary(p)
    assert s["ratio_median_1"] == approx(1.3125)
    assert (s["ratio_median_1_seed_lo"], s["ratio_median_1_seed_hi"]) == (approx(1.125), approx(1.5))
    assert s["gap_median_1"] == approx(6.25)
    assert (s["gap_median_1_seed_lo"], s["gap_median_1_seed_hi"]) == (approx(1.5), approx(11.0))
    assert (s["n_uniform_1"], s["n_not_uniform_1"], s["n_not_defined_1"]) == (2, 1, 0)
    assert (s["n_networks_1"], s["n_configs_1"], s["n_seeds"]) == (3, 2, 2)
    rows = scans.fig4_gap_table(p)
    assert [(r["activation"], r["n_seeds"]) for r in rows] == [("erf", 2), ("relu", 1)]
    assert (rows[0]["gap"], rows[0]["gap_min"], rows[0]["gap_max"]) == (approx(10.75), approx(1.5), approx(20.0))
    assert scans.fig4_gap_table(p, scales=((0.1, 0.01),)) == []


def _r5(overlap, ev, actual, pred, d0, d1):
    return {"diverged": False, "uniform_overlap": overlap, "eigenvalues_over_N": ev, "lambda_ratio": ev[0] / ev[1],
            "mean_actual": actual, "mean_pred": pred, "modes_actual_start": d0, "modes_actual_end": d1,
            "modes_pred_end": d1}


def test_fig5_summary_splits_moving_and_still_networks():
    """Six runs, f0 = 1 unless said:

    A0, A1 (one configuration, seeds 0, 1): uniform (overlap 1, gap 20), mean 0 -> 0.5 (half way: moving);
      errors 0.01/0.5 = 0.02 and 0.02/0.5 = 0.04; modes move 0.05 and 0.1 -> 0.1 and 0.2 of the mean.
    C0: uniform, mean 0 -> 0.001 (a thousandth of the way: still), error 1e-6/1e-3 = 1e-3.
    D1: gap 1/0.95 < 1.1 -> v1 not defined, moving.
    E: diverged.  F0 (f0 = 2): overlap 0.1, gap 3 -> not uniform; mean 0 -> 1 (half way), error 1/1;
      modes move 5 (a 3-4-5 triangle) -> 5 times the mean.
    """
    base = {"fig": 5, "f0": 1.0}
    configs = [{**base, "k": "a", "seed": 0}, {**base, "k": "a", "seed": 1}, {**base, "k": "c", "seed": 0},
               {**base, "k": "d", "seed": 1}, {**base, "k": "e", "seed": 0}, {**base, "k": "f", "seed": 0, "f0": 2.0}]
    results = [
        _r5(1.0, [2.0, 0.1], [0.0, 0.25, 0.5], [0.0, 0.25, 0.51], [1.0, 0.0], [1.0, 0.05]),
        _r5(1.0, [2.0, 0.1], [0.0, 0.25, 0.5], [0.0, 0.25, 0.52], [1.0, 0.0], [1.0, 0.1]),
        _r5(1.0, [2.0, 0.1], [0.0, 0.0005, 0.001], [0.0, 0.0005, 0.001001], [1.0, 0.0], [1.0, 0.0]),
        _r5(0.5, [1.0, 0.95], [0.0, 0.3, 0.6], [0.0, 0.3, 0.6], [1.0, 0.0], [1.0, 0.0]),
        {"diverged": True, "uniform_overlap": 1.0, "eigenvalues_over_N": [1.0, 0.1]},
        _r5(0.1, [3.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.5, 2.0], [0.0, 0.0], [3.0, 4.0]),
    ]
    s = scans.fig5_summary(scans.from_records(configs, results))
    assert (s["n"], s["diverged"], s["n_seeds"], s["n_moving"]) == (6, 1, 2, 4)
    assert (s["n_moving_uniform"], s["n_still_uniform"], s["n_moving_not_defined"], s["n_moving_not_uniform"]) == (2, 1, 1, 1)
    assert s["n_still_not_uniform"] == s["n_still_not_defined"] == 0
    assert s["seeds_moving_uniform"] == "0, 1" and s["seeds_still_uniform"] == "0" and s["seeds_still_not_uniform"] == "none"
    assert s["mean_error_moving_uniform"] == approx(0.03)
    assert (s["mean_error_moving_uniform_seed_lo"], s["mean_error_moving_uniform_seed_hi"]) == (approx(0.02), approx(0.04))
    assert s["mode_over_mean_moving_uniform"] == approx(0.15)
    assert s["fraction_moving_uniform"] == approx(0.5)
    assert s["mean_error_still_uniform"] == pytest.approx(1e-3, rel=1e-9)
    assert s["mean_error_moving_not_uniform"] == approx(1.0)
    assert s["mode_over_mean_moving_not_uniform"] == approx(5.0)
    assert np.isnan(s["mean_error_still_not_uniform"])
    assert np.isnan(s["eq15_end_error_moving_uniform"])  # records without the mean_field comparison
    st = s["spreads"]["mean_error_moving_uniform"]  # the SeedSpread behind the numbers (for book.claim_spread)
    assert st.values == (approx(0.02), approx(0.04)) and st.tolerance() == approx(0.02)


def test_grids_hold_the_seeds_and_the_papers_fig5_architectures():
    for profile, need in (("paper", 5), ("quick", 2)):
        for fig in (4, 5):
            per = {}
            for c in scans.grid(fig, profile):
                per.setdefault(tuple(sorted((k, v) for k, v in c.items() if k != "seed")), set()).add(c["seed"])
            assert min(len(s) for s in per.values()) >= need, (fig, profile)
        # Fig. 4's seeds are Fig. 1 seeds (each network is compared with its own alpha)
        assert {c["seed"] for c in scans.grid(4, profile)} <= {c["seed"] for c in scans.grid(1, profile)}
    paper5 = {(c["activation"], c["W_std"], c["b_std"], c["hidden_layers"], c["interval"], c["width"])
              for c in scans.grid(5, "paper")}
    for a in ("erf", "relu"):
        for ws, bs in ((0.1, 0.01), (1.0, 0.05)):
            for L in (1, 2):
                for interval in (0.1, 1.0):
                    assert (a, ws, bs, L, interval, 1000) in paper5
                    assert any((c["activation"], c["W_std"], c["b_std"], c["hidden_layers"], c["interval"], c["width"])
                               == (a, ws, bs, L, interval, 1000) for c in scans.grid(4, "paper"))
    # the moving control is the only addition, and only on the short interval
    extra = {k for k in paper5 if (k[1], k[2]) not in ((0.1, 0.01), (1.0, 0.05))}
    assert {(k[1], k[2], k[4]) for k in extra} == {(1.0, 0.5, 0.1)}
    assert scans.SCAN_VERSIONS[4] >= 3 and scans.SCAN_VERSIONS[5] >= 3


def test_compute_fig4_stores_the_lambda_ratio():
    import jax

    jax.config.update("jax_enable_x64", True)
    c = scans._cfg(4, width=16, hidden_layers=1, activation="erf", W_std=1.0, b_std=0.05, interval=1.0, eta=0.1111,
                   beta=0.0, n_points=8, seed=0)
    (r,) = scans.compute(4, [c])
    ev = r["eigenvalues_over_N"]
    assert r["lambda_ratio"] == pytest.approx(ev[0] / ev[1], rel=1e-12)
