"""Stored results as labelled data (:mod:`nncosmo_helpers.scans.frames`): pandas, xarray, CSV, netCDF.

Every value is checked against the stored JSON records read independently (``json.load`` of the
files, without the store or the frames code).
"""

from __future__ import annotations

import json
import math
import warnings

import jax
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from nncosmo_helpers import scans
from nncosmo_helpers.results import ResultStore

jax.config.update("jax_enable_x64", True)  # the stored Fig. 1 subset is computed in this process, in float64


def _records(fig, root):
    return [json.load(open(p)) for p in sorted((root / "quick" / f"fig{fig}").glob("*.json"))]


def _params(config):
    return {k: v for k, v in config.items() if k not in ("fig", "scan_version")}


def _row(df, config):
    mask = np.ones(len(df), dtype=bool)
    for k, v in _params(config).items():
        mask &= (df[k] == v).to_numpy()
    assert mask.sum() == 1, config
    return df[mask].iloc[0]


@pytest.fixture(scope="module")
def fig2(tmp_path_factory):
    root = tmp_path_factory.mktemp("fig2")
    scans.run(2, "quick", root, progress=False)
    return root


def test_fig2_frame_dataset_and_files_hold_the_stored_values(fig2, tmp_path):
    records = _records(2, fig2)
    assert len(records) == len(scans.grid(2, "quick")) == 48
    df = scans.frame(2, "quick", fig2)
    assert list(df.columns) == ["m", "f0", "n", "beta", "L_init", "eta_max_times_alpha"]
    assert df.attrs["fig"] == 2 and df.attrs["missing"] == 0 and df.attrs["scan_version"] == scans.SCAN_VERSIONS[2]
    ds = scans.dataset(2, "quick", fig2)
    assert dict(ds.sizes) == {"m": 3, "f0": 2, "n": 2, "beta": 4}
    csv = pd.read_csv(scans.export(2, tmp_path / "fig2.csv", "quick", fig2))
    nc = xr.open_dataset(scans.export(2, tmp_path / "fig2.nc", "quick", fig2), engine="scipy")
    assert nc.attrs["layout"] == "grid"
    for rec in records:
        c, r = rec["config"], rec["result"]
        where = _params(c)
        for table in (df, csv):
            row = _row(table, c)
            assert row["L_init"] == r["L_init"] and row["eta_max_times_alpha"] == r["eta_max_times_alpha"]
        for grid in (ds, nc):
            assert float(grid["eta_max_times_alpha"].sel(where)) == r["eta_max_times_alpha"]
            assert float(grid["L_init"].sel(where)) == r["L_init"]
    nc.close()


def test_fig1_subset_seed_as_dimension_and_a_hole_is_refused(tmp_path):
    # two groups of the quick Fig. 1 grid: width 100, one hidden layer, seeds 0 and 1 (40 configurations)
    configs = [c for c in scans.grid(1, "quick") if c["width"] == 100 and c["hidden_layers"] == 1 and c["seed"] < 2]
    scans.run(1, "quick", tmp_path, configs=configs, progress=False)
    records = _records(1, tmp_path)
    assert len(records) == 40
    with pytest.warns(UserWarning, match="320 configurations of the grid are not stored"):
        ds = scans.dataset(1, "quick", tmp_path)
    assert dict(ds.sizes) == {"activation": 2, "W_std": 2, "b_std": 5, "seed": 2}
    assert ds.attrs["width"] == 100 and ds.attrs["hidden_layers"] == 1  # single-valued: attributes
    for rec in records:
        where = {k: v for k, v in _params(rec["config"]).items() if k in ds.dims}
        assert float(ds["alpha"].sel(where)) == rec["result"]["alpha"]
        assert float(ds["alpha_infinite_width"].sel(where)) == rec["result"]["alpha_infinite_width"]
    # the seed spread is one call away: std over seeds / mean, per network
    spread = (ds["alpha"].std("seed") / ds["alpha"].mean("seed")).sel(activation="erf", W_std=1.0, b_std=0.05)
    alphas = [rec["result"]["alpha"] for rec in records if rec["config"]["activation"] == "erf"
              and rec["config"]["W_std"] == 1.0 and rec["config"]["b_std"] == 0.05]
    assert float(spread) == pytest.approx(np.std(alphas) / np.mean(alphas), rel=1e-12)

    # a hole in the grid: no xarray grid, a clear error; the table and its files still work
    scans.store(1, "quick", tmp_path).path(configs[0]).unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match=r"39 stored configurations are not a full product .* = 40"):
            scans.dataset(1, "quick", tmp_path)
        assert len(scans.frame(1, "quick", tmp_path)) == 39
        nc = xr.open_dataset(scans.export(1, tmp_path / "fig1.nc", "quick", tmp_path), engine="scipy")
    assert nc.attrs["layout"] == "table" and nc.sizes["row"] == 39
    for rec in records:
        if rec["config"] == configs[0]:
            continue
        match = np.ones(39, dtype=bool)
        for k, v in _params(rec["config"]).items():
            match &= nc[k].values == v
        assert match.sum() == 1 and nc["alpha"].values[match][0] == rec["result"]["alpha"]
    nc.close()


def test_fig3_booleans_missing_values_strings_and_lists(tmp_path):
    # two records in the shape compute_fig3 stores (one diverged run), saved directly: the table's
    # bookkeeping of booleans, missing values, strings and lists is what is tested here
    c_bad, c_ok = scans.grid(3, "quick")[:2]
    store = ResultStore(tmp_path / "quick" / "fig3")
    store.save(c_bad, {"alpha_initial": 1.25, "f_init": 0.5, "method": "dense", "stability_ratio": 3.5,
                       "diverged": True, "divergence_step": 7, "f": [0.5, 4.0], "steps": [0, 10]})
    store.save(c_ok, {"alpha_initial": 0.75, "f_init": 0.25, "method": "lowrank", "stability_ratio": 0.5,
                      "diverged": False, "divergence_step": None, "f_end": 0.125, "f": [0.25, 0.125], "steps": [0, 10]})
    records = {rec["config"]["m"]: rec["result"] for rec in _records(3, tmp_path)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the rest of the quick grid is not stored
        df = scans.frame(3, "quick", tmp_path)
        csv = pd.read_csv(scans.export(3, tmp_path / "fig3.csv", "quick", tmp_path))
    assert len(df) == 2
    assert df["diverged"].dtype == bool and pd.api.types.is_string_dtype(df["method"])
    assert df["divergence_step"].dtype == float
    assert "f" not in df and "result.steps" not in df  # lists stay in the records
    assert (df["steps"] == 1000).all()  # the configuration's number of steps, not the recorded steps
    for table in (df, csv):
        for m, r in records.items():
            row = table[table["m"] == m].iloc[0]
            assert bool(row["diverged"]) == r["diverged"] and row["method"] == r["method"]
            assert row["stability_ratio"] == r["stability_ratio"] and row["alpha_initial"] == r["alpha_initial"]
            if r["diverged"]:
                assert row["divergence_step"] == r["divergence_step"] and math.isnan(row["f_end"])
            else:
                assert math.isnan(row["divergence_step"]) and row["f_end"] == r["f_end"]


def test_nested_results_become_dotted_columns(tmp_path):
    config = scans.grid(5, "quick")[0]
    result = {"diverged": False, "uniform_overlap": 0.99, "steps": [0, 10],
              "mean_field": {"couplings": {"lambda1": 2.5, "mean": 1.5}, "uniform_overlap": 0.98, "eq15": [1.0, 2.0]}}
    ResultStore(tmp_path / "quick" / "fig5").save(config, result)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        df = scans.frame(5, "quick", tmp_path)
    assert df.loc[0, "mean_field.couplings.lambda1"] == 2.5 and df.loc[0, "mean_field.couplings.mean"] == 1.5
    assert df.loc[0, "mean_field.uniform_overlap"] == 0.98 and "mean_field.eq15" not in df


def test_nothing_stored_and_unknown_suffix(tmp_path):
    with pytest.raises(FileNotFoundError, match="no stored results of fig 2"):
        scans.frame(2, "quick", tmp_path)
    with pytest.raises(ValueError, match=".csv or .nc"):
        scans.export(2, tmp_path / "fig2.xlsx", "quick", tmp_path)


def test_in_memory_table_equals_the_stored_one_and_keeps_lists(tmp_path):
    # the same two records through the store (frame) and in memory (from_records): one table
    c_bad, c_ok = scans.grid(3, "quick")[:2]
    r_bad = {"alpha_initial": 1.25, "f_init": 0.5, "stability_ratio": 3.5, "diverged": True, "f": [0.5, 4.0],
             "mean_field": {"lam": 2.0, "traj": [1.0]}}
    r_ok = {"alpha_initial": 0.75, "f_init": 0.25, "stability_ratio": 0.5, "diverged": False, "f_end": 0.125,
            "f": [0.25, 0.125], "mean_field": {"lam": 3.0, "traj": [2.0]}}
    store = ResultStore(tmp_path / "quick" / "fig3")
    store.save(c_bad, r_bad)
    store.save(c_ok, r_ok)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the rest of the quick grid is not stored
        stored = scans.frame(3, "quick", tmp_path, lists=True)
    mem = scans.from_records([c_bad, c_ok], [r_bad, r_ok])
    hyper = mem.attrs["hyper_parameters"]
    assert list(mem.columns[:len(hyper)]) == list(stored.columns[:len(hyper)])  # hyper-parameters first, grid order
    assert set(mem.columns) == set(stored.columns)  # result columns: record order (the store sorts the keys)
    stored = stored[mem.columns]
    assert mem.attrs["hyper_parameters"] == stored.attrs["hyper_parameters"] and "seed" in mem.attrs["hyper_parameters"]
    for table in (mem, stored):
        assert table["f"].tolist() == [[0.5, 4.0], [0.25, 0.125]]  # lists kept, one per row
        assert table["mean_field"].tolist() == [r_bad["mean_field"], r_ok["mean_field"]]  # nested record kept whole
        assert table["mean_field.lam"].tolist() == [2.0, 3.0] and "mean_field.traj" not in table
        assert math.isnan(table["f_end"][0]) and table["f_end"][1] == 0.125
    pd.testing.assert_frame_equal(mem.drop(columns=["f", "mean_field"]), stored.drop(columns=["f", "mean_field"]))
    with pytest.raises(ValueError, match="2 configurations but 1 results"):
        scans.from_records([c_bad, c_ok], [r_bad])


def test_fig1_summary_of_a_stored_table_by_hand(tmp_path):
    """Four stored networks: one architecture, erf and relu, seeds 0 and 1; alpha erf 4, 2 and relu 2, 4,
    infinite-width alpha 2 (erf) and 6 (relu). Worked out by hand: erf/relu per seed 2 and 0.5, so half the
    pairs favour erf and the median ratio is 1.25; per activation std/mean over seeds (1/3, ddof 0) and
    |mean - alpha_inf|/alpha_inf = 0.5; both activations have the same mean log10 alpha (effect 0);
    median alpha = 10^median(log10 (2, 2, 4, 4)) = sqrt(8)."""
    from nncosmo_helpers.scans.summaries import fig1_summary

    arch = {"width": 100, "hidden_layers": 1, "W_std": 1.0, "b_std": 0.05}
    want = {("erf", 0): (4.0, 2.0), ("erf", 1): (2.0, 2.0), ("relu", 0): (2.0, 6.0), ("relu", 1): (4.0, 6.0)}
    configs = [c for c in scans.grid(1, "quick") if all(c[k] == v for k, v in arch.items()) and c["seed"] < 2]
    assert len(configs) == 4
    store = ResultStore(tmp_path / "quick" / "fig1")
    for c in configs:
        a, inf = want[(c["activation"], c["seed"])]
        store.save(c, {"alpha": a, "alpha_infinite_width": inf})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        s = fig1_summary(scans.frame(1, "quick", tmp_path))
    approx = lambda v: pytest.approx(v, rel=1e-12)  # noqa: E731
    assert s["erf_gt_relu"] == 0.5 and s["erf_over_relu_median"] == approx(1.25)
    assert s["seed_spread_100"] == approx(1 / 3) and s["inf_dev_100"] == approx(0.5)
    assert s["effect_activation"] == 0.0 and s["effect_width"] == 0.0
    assert (s["alpha_min"], s["alpha_max"]) == (approx(2.0), approx(4.0)) and s["alpha_median"] == approx(math.sqrt(8))
