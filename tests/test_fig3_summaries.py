"""The Fig. 3 summaries of the moving/barely-moving split, against numbers worked out by hand."""

import numpy as np
import pytest

from nncosmo_helpers.scans import from_records
from nncosmo_helpers.scans import summaries as S


def _run(x0, seed, f_init, f_end, f_pred, f0=1.0, dtype="float64"):
    c = {"fig": 3, "x0": x0, "seed": seed, "f0": f0, "m": 0.1, "n": 2, "eta": 0.1111, "beta": 0.0, "dtype": dtype,
         "activation": "erf", "hidden_layers": 1, "W_std": 1.0}
    r = {"diverged": False, "f_init": f_init, "f_end": f_end, "f_pred_end": f_pred, "f_disc_end": f_pred,
         "alpha_initial": 1.0 + x0, "alpha_final": 1.0 + x0}
    return c, r


def _data():
    rows = [
        # x0 = 0, barely moving (fraction 0.001 and 0.005), deviations 1e-3 and 2e-3
        _run(0.0, 0, 0.0, 0.001, 0.001 + 1e-6),
        _run(0.0, 1, 0.0, 0.005, 0.005 + 1e-5),
        # x0 = 1, moving: fraction 0.5 (dev 0.004), 0.2 (dev 0.03), 0.8 (dev 0.001), seed 0, 1, 1
        _run(1.0, 0, 0.0, 0.5, 0.502),
        _run(1.0, 1, 0.0, 0.2, 0.206),
        _run(1.0, 1, 0.0, 0.8, 0.8008),
        # x0 = 1, barely moving: fraction 0.05 (dev 0.01), seed 0
        _run(1.0, 0, 0.0, 0.05, 0.0505),
        # a float32 run and a diverged run: both left out
        _run(1.0, 0, 0.0, 0.5, 0.6, dtype="float32"),
    ]
    configs, results = [c for c, _ in rows], [r for _, r in rows]
    configs.append({**configs[0], "seed": 0})
    results.append({"diverged": True, "f_init": 0.0, "f": [0.0, 1e9], "alpha_initial": 1.0})
    return from_records(configs, results)


def test_fractions_and_bins():
    df = _data()
    frac = S.fig3_fractions(df)
    np.testing.assert_allclose(frac[:7], [0.001, 0.005, 0.5, 0.2, 0.8, 0.05, 0.5], rtol=1e-12)
    assert np.isnan(frac[7])
    rows = S.fig3_by_fraction(df, x0=1.0)
    by = {(r["lo"], r["hi"]): r for r in rows}
    assert by[(0.01, 0.1)]["n"] == 1 and by[(0.01, 0.1)]["median"] == pytest.approx(0.01, rel=1e-9)
    top = by[(0.5, np.inf)]  # fractions 0.5 (seed 0, dev 0.004) and 0.8 (seed 1, dev 0.001)
    assert top["n"] == 2 and top["median"] == pytest.approx(0.0025, rel=1e-9)
    assert sorted(top["seed_medians"]) == pytest.approx([0.001, 0.004], rel=1e-9)
    assert top["seed_spread"] == pytest.approx(0.003, rel=1e-9) and top["seeds"] == 2
    assert by[(0.1, 0.5)]["n"] == 1 and by[(0.1, 0.5)]["frac_below_1pct"] == 0.0  # dev 0.03
    all_rows = S.fig3_by_fraction(df)
    assert sum(r["n"] for r in all_rows) == 6  # float64, finite


def test_moving_summary():
    df = _data()
    s = S.fig3_moving_summary(df)
    assert s["threshold"] == 0.1
    assert (s["n_moving_x1"], s["n_still_x1"], s["n_moving_x0"], s["n_still_x0"]) == (3, 1, 0, 2)
    # moving, x0 = 1: deviations 0.004 (seed 0), 0.03 and 0.001 (seed 1): pooled median 0.004,
    # per-seed medians 0.004 and 0.0155
    assert s["median_moving_x1"] == pytest.approx(0.004, rel=1e-9)
    assert s["seed_min_moving_x1"] == pytest.approx(0.004, rel=1e-9)
    assert s["seed_max_moving_x1"] == pytest.approx(0.0155, rel=1e-9)
    assert s["frac_below_1pct_moving_x1"] == pytest.approx(2 / 3)
    # still, all: 0.001, 0.002 (x0 = 0) and 0.01 (x0 = 1): median 0.002; seed 0: 0.001, 0.01 -> 0.0055; seed 1: 0.002
    assert s["median_still_all"] == pytest.approx(0.002, rel=1e-9)
    assert s["seed_min_still_all"] == pytest.approx(0.002, rel=1e-9)
    assert s["seed_max_still_all"] == pytest.approx(0.0055, rel=1e-9)
    assert np.isnan(s["median_moving_x0"]) and s["seeds_moving_x0"] == 0
    assert s["frac_moving_x1"] == pytest.approx(0.75) and s["fraction_median_x0"] == pytest.approx(0.003)
    assert s["alpha_median_x1"] == 2.0 and s["alpha_median_x1_W1"] == 2.0 and s["alpha_median_x0_W1"] == 1.0
    sentence = S.fig3_moving_sentence(df)
    assert sentence.startswith("3 float64 runs") and "x0 1: 3" in sentence and "seed 0: 1, 1: 2" in sentence


def test_summary_by_input_point_and_seed_range():
    df = _data()
    s = S.fig3_summary(df, x0=1.0)
    # float64 at x0 = 1: 0.004, 0.03, 0.001, 0.01 -> median 0.007; seed 0: 0.004, 0.01 -> 0.007; seed 1: 0.0155
    assert s["n_float64"] == 4 and s["seeds"] == 2
    assert s["median_float64"] == pytest.approx(0.007, rel=1e-9)
    assert s["median_float64_seed_min"] == pytest.approx(0.007, rel=1e-9)
    assert s["median_float64_seed_max"] == pytest.approx(0.0155, rel=1e-9)
    s0 = S.fig3_summary(df)  # x0 = 0 (default): 0.001, 0.002 and the diverged run
    assert s0["n_float64"] == 3 and s0["diverged_float64"] == 1
    assert s0["median_float64"] == pytest.approx(0.0015, rel=1e-9)


def test_panels_include_x0_1():
    df = _data()
    panels = S.fig3_panels(df)
    assert [p["x0"] for p in panels] == [0.0, 0.0, 1.0]
    assert panels[2]["n"] == 4 and panels[1]["n"] == 0


def test_fig3_grid_x0_and_seeds():
    """Every (activation, depth, width) block of each profile has the seeds at both input points."""
    from nncosmo_helpers import scans
    from nncosmo_helpers.scans import grids

    for profile, seeds in (("quick", grids.FIG3_SEEDS_QUICK), ("paper", grids.FIG3_SEEDS_PAPER)):
        g = scans.grid(3, profile)
        f64 = [c for c in g if c["dtype"] == "float64"]
        blocks = {(c["activation"], c["hidden_layers"], c["width"]) for c in f64}
        for b in blocks:
            for x0 in grids.FIG3_X0:
                have = {c["seed"] for c in f64 if (c["activation"], c["hidden_layers"], c["width"]) == b and c["x0"] == x0}
                assert have == set(seeds), (profile, b, x0)
        assert all(c["x0"] == 0.0 and c["seed"] == 0 for c in g if c["dtype"] == "float32")
        assert len(seeds) >= (5 if profile == "paper" else 2)
        # the seed subset: every seed holds exactly the FIG3_SEED_LOSSES configurations of seed 0
        seeded = S.fig3_seeded(from_records(f64, [{}] * len(f64)))
        assert sum(seeded) == len(seeds) * sum(c["seed"] == 0 and (c["m"], c["f0"], c["n"]) in grids.FIG3_SEED_LOSSES
                                               for c in f64)


def test_spearman_reorder_bound_covers_a_round_off_swap():
    # Independent check: reorder two values of x that agree to 1e-9 (a round-off swap) and compare the
    # actual jump of rho (scipy) with the bound; distinct values give a zero bound.
    from scipy.stats import spearmanr

    from nncosmo_helpers.scans.summaries import spearman_reorder_bound

    rng = np.random.default_rng(0)
    y = rng.normal(size=40)
    x = rng.normal(size=40)
    assert spearman_reorder_bound(x, y) == 0.0
    x[[3, 17]] = 1.0, 1.0 + 1e-9  # a near-tie: round-off may order it either way
    x_swapped = x.copy()
    x_swapped[[3, 17]] = x[[17, 3]]
    jump = abs(spearmanr(x, y).correlation - spearmanr(x_swapped, y).correlation)
    bound = spearman_reorder_bound(x, y)
    assert 0 < jump <= bound
    assert bound == pytest.approx(6 * 2 * (2 * 39 * 1 + 1) / (40 * (40**2 - 1)))
    # a near-tie in x and in y on the same element: the rank shifts add (cross term included)
    y[[3, 17]] = 2.0, 2.0 + 1e-9
    both = spearman_reorder_bound(x, y)
    assert both == pytest.approx(6 * 2 * (2 * 39 * 2 + 4) / (40 * (40**2 - 1)))
    y_swapped = y.copy()
    y_swapped[[3, 17]] = y[[17, 3]]
    jump2 = abs(spearmanr(x, y).correlation - spearmanr(x_swapped, y).correlation)
    assert jump2 <= both
