"""nncosmo_helpers.ensemble: medians with seed spreads, against values worked out by hand."""
import math

import numpy as np
import pytest

from nncosmo_helpers import book, ensemble


def test_spread_of_per_seed_values():
    st = ensemble.spread([3.0, 1.0, float("nan"), 2.0])
    assert (st.median, st.low, st.high, st.n_seeds, st.spread) == (2.0, 1.0, 3.0, 3, 2.0)
    assert st.text(".1f") == "2.0 [1.0, 3.0]"
    assert ensemble.spread([5.0, 5.0]).text() == "5"
    empty = ensemble.spread([])
    assert math.isnan(empty.median) and empty.n_seeds == 0 and empty.text() == "-"


def test_over_seeds_applies_the_statistic_seed_by_seed():
    values = [1.0, 4.0, 10.0, 2.0, 3.0, 20.0]
    seeds = [0, 0, 0, 1, 1, 1]
    med = ensemble.over_seeds(values, seeds)               # per seed: median 4 and 3
    assert (med.median, med.low, med.high) == (3.5, 3.0, 4.0)
    mx = ensemble.over_seeds(values, seeds, stat=np.max)   # per seed: 10 and 20
    assert (mx.median, mx.low, mx.high, mx.values) == (15.0, 10.0, 20.0, (10.0, 20.0))
    with pytest.raises(ValueError):
        ensemble.over_seeds([1.0, 2.0], [0])


def test_of_rows_skips_seeds_whose_statistic_is_undefined():
    rows = [{"seed": 0, "x": 1.0}, {"seed": 0, "x": 3.0}, {"seed": 1, "x": -1.0}, {"seed": 2, "x": 5.0}]
    st = ensemble.of_rows(rows, lambda rs: max(r["x"] for r in rs if r["x"] > 0))  # seed 1: max of nothing
    assert st.values == (3.0, 5.0) and st.median == 4.0


def test_ensemble_median_over_configurations_and_range_over_seeds():
    # two configurations a, b; two seeds
    values = [1.0, 3.0, 10.0, 30.0]
    keys = ["a", "a", "b", "b"]
    seeds = [0, 1, 0, 1]
    st = ensemble.ensemble(values, keys, seeds)
    # per configuration medians 2 and 20 -> median 11; per seed medians: seed 0 (1, 10) -> 5.5, seed 1 -> 16.5
    assert st.median == 11.0 and (st.low, st.high) == (5.5, 16.5) and st.n_seeds == 2


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
