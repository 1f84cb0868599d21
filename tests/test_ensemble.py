"""nncosmo_helpers.ensemble: medians with seed spreads, against values worked out by hand."""
import math

import numpy as np
import pytest

from nncosmo_helpers import book, ensemble


def test_spread_of_per_seed_values():
    st = ensemble.spread([3.0, 1.0, float("nan"), 2.0])
    assert (st.median, st.low, st.high, st.n_seeds, st.spread) == (2.0, 1.0, 3.0, 3, 2.0)
    assert st.left_out == 1
    assert st.text(".1f") == "2.0 [1.0, 3.0] (1 non-finite left out)"
    assert ensemble.spread([3.0, 1.0, 2.0]).text(".1f") == "2.0 [1.0, 3.0]"
    assert ensemble.spread([5.0, 5.0]).text() == "5"
    empty = ensemble.spread([])
    assert math.isnan(empty.median) and empty.n_seeds == 0 and empty.text() == "-" and empty.left_out == 0
    only_inf = ensemble.spread([float("inf"), -float("inf")])
    assert only_inf.n_seeds == 0 and only_inf.left_out == 2 and only_inf.text() == "- (2 non-finite left out)"


def test_old_constructors_keep_working_with_nothing_left_out():
    st = ensemble.SeedSpread(1.0, 0.5, 2.0, (0.5, 1.0, 2.0))
    assert st.left_out == 0 and st.text() == "1 [0.5, 2]"


def test_over_seeds_applies_the_statistic_seed_by_seed():
    values = [1.0, 4.0, 10.0, 2.0, 3.0, 20.0]
    seeds = [0, 0, 0, 1, 1, 1]
    med = ensemble.over_seeds(values, seeds)               # per seed: median 4 and 3
    assert (med.median, med.low, med.high) == (3.5, 3.0, 4.0)
    mx = ensemble.over_seeds(values, seeds, stat=np.max)   # per seed: 10 and 20
    assert (mx.median, mx.low, mx.high, mx.values) == (15.0, 10.0, 20.0, (10.0, 20.0))
    with pytest.raises(ValueError):
        ensemble.over_seeds([1.0, 2.0], [0])


def test_over_seeds_counts_the_non_finite_values_it_leaves_out():
    # seed 0: 1, inf (a network that did not move), 3 -> median 2; seed 1: only NaN -> the seed drops out
    st = ensemble.over_seeds([1.0, float("inf"), 3.0, float("nan"), float("nan")], [0, 0, 0, 1, 1])
    assert (st.median, st.n_seeds, st.left_out) == (2.0, 1, 3)
    assert st.text() == "2 (3 non-finite left out)"
    assert ensemble.over_seeds([1.0, 3.0], [0, 1]).left_out == 0


def test_of_rows_skips_seeds_whose_statistic_is_undefined():
    rows = [{"seed": 0, "x": 1.0}, {"seed": 0, "x": 3.0}, {"seed": 1, "x": -1.0}, {"seed": 2, "x": 5.0}]
    st = ensemble.of_rows(rows, lambda rs: max(r["x"] for r in rs if r["x"] > 0))  # seed 1: max of nothing
    assert st.values == (3.0, 5.0) and st.median == 4.0 and st.left_out == 0
    # a per-seed statistic that is NaN is left out and counted
    st = ensemble.of_rows(rows + [{"seed": 3, "x": float("nan")}], lambda rs: max(r["x"] for r in rs))
    assert st.values == (3.0, -1.0, 5.0) and st.left_out == 1


def test_the_ensemble_median_lies_inside_its_seed_range():
    """The example on which the former ``ensemble.ensemble`` (median over configurations of the
    per-configuration seed medians, range over seeds of the per-seed medians) put its median outside its
    own range: configurations a, b, c with seeds 0, 1 and values a (0, 10), b (10, 0), c (0, 0).
    Per-configuration medians 5, 5, 0 -> 5; per-seed medians: seed 0 median(0, 10, 0) = 0, seed 1
    median(10, 0, 0) = 0 -> range [0, 0]. The one definition: the median over seeds of the per-seed
    medians, 0, inside [0, 0]."""
    assert not hasattr(ensemble, "ensemble")  # the mixed definition is gone
    values = [0.0, 10.0, 10.0, 0.0, 0.0, 0.0]
    seeds = [0, 1, 0, 1, 0, 1]  # a: seed 0, seed 1; b: seed 0, seed 1; c: seed 0, seed 1
    st = ensemble.over_seeds(values, seeds)
    assert (st.median, st.low, st.high) == (0.0, 0.0, 0.0)


def test_median_inside_range_for_random_ensembles():
    """Property: for any per-network values (with NaN and inf sprinkled in), seeds and statistic, the
    median lies in [low, high] and left_out counts exactly the non-finite inputs."""
    rng = np.random.default_rng(20261202)
    for _ in range(500):
        n_seeds, n_cfg = rng.integers(1, 6), rng.integers(1, 8)
        seeds = np.repeat(np.arange(n_seeds), n_cfg)
        values = rng.lognormal(0.0, 2.0, size=seeds.size) * rng.choice([-1.0, 1.0], size=seeds.size)
        bad = rng.random(seeds.size) < 0.15
        values[bad] = rng.choice([np.nan, np.inf, -np.inf], size=int(bad.sum()))
        keep = rng.random(seeds.size) < 0.9  # some (configuration, seed) pairs missing
        stat = [np.median, np.max, np.min][rng.integers(3)]
        st = ensemble.over_seeds(values[keep], seeds[keep], stat)
        assert st.left_out == int((~np.isfinite(values[keep])).sum())
        if st.n_seeds:
            assert st.low <= st.median <= st.high
            assert st.tolerance() >= 0.0
        else:
            assert math.isnan(st.median)


def test_tolerance_is_the_seed_range_with_a_float64_floor():
    assert ensemble.spread([1.0, 1.5]).tolerance() == 0.5
    assert ensemble.spread([2.0, 2.0]).tolerance() == pytest.approx(2e-9)


def test_claim_spread_records_the_median_and_the_seed_range(monkeypatch):
    calls = []
    monkeypatch.setattr(book, "glue", lambda name, value, display=True, info=None: calls.append((name, value, info)))
    monkeypatch.setattr(book.glued, "chapter", "test")
    st = book.claim_spread("x", ensemble.spread([1.0, 2.0, 4.0]), what="the thing", with_spread=True)
    assert st.median == 2.0
    (n1, v1, i1), (n2, v2, i2) = calls
    assert (n1, v1, n2, v2) == ("x", 2.0, "x-spread", 3.0)
    assert i1["claim"]["atol"] == 3.0 and "3 seeds of the thing" in i1["claim"]["budget"]


def test_claim_spread_says_how_many_non_finite_values_were_left_out(monkeypatch):
    calls = []
    monkeypatch.setattr(book, "glue", lambda name, value, display=True, info=None: calls.append((name, value, info)))
    monkeypatch.setattr(book.glued, "chapter", "test")
    book.claim_spread("x", ensemble.over_seeds([1.0, float("inf"), 2.0, 4.0], [0, 0, 1, 2]), what="the thing")
    book.claim_spread("y", ensemble.over_seeds([1.0, 2.0, 4.0], [0, 1, 2]), what="the thing")
    (_, vx, ix), (_, vy, iy) = calls
    assert vx == vy == 2.0
    assert ix["claim"]["budget"] == "seed range over 3 seeds of the thing (1 non-finite left out)"
    assert iy["claim"]["budget"] == "seed range over 3 seeds of the thing"
