"""The chapters' scans (:mod:`nncosmo_helpers.scans.beyond`): lossless encoding, grids, the store round trip,
the profile a chapter reads, and the command line.

References: the experiments' own functions called directly (not through the scans), NumPy's bitwise array
equality, and the chapters' settings written out here.
"""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

from nncosmo_helpers import network, scans  # noqa: E402
from nncosmo_helpers.experiments.benchmarks import BenchmarkResult  # noqa: E402
from nncosmo_helpers.experiments.schedules import FriedmannHistory, friedmann_history  # noqa: E402
from nncosmo_helpers.loss import PolynomialLoss  # noqa: E402
from nncosmo_helpers.results import ResultStore, canonical_json  # noqa: E402
from nncosmo_helpers.scans import beyond  # noqa: E402


def _roundtrip(obj):
    return beyond.decode(json.loads(canonical_json(beyond.encode(obj))))


def _same(a, b):
    """Equal objects, arrays bit for bit with the same dtype, NaN equal to NaN."""
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and \
            np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, np.generic):
        return type(a) is type(b) and (a == b or (np.isnan(a) and np.isnan(b)))
    if isinstance(a, float):
        return type(b) is float and (a == b or (np.isnan(a) and np.isnan(b)))
    if isinstance(a, PolynomialLoss):
        return (a.m, a.f0, a.n) == (b.m, b.f0, b.n)
    if isinstance(a, tuple) and hasattr(a, "_fields"):
        return type(a) is type(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b and type(a) is type(b)


def test_encoding_is_lossless():
    grid = np.array([[1.0, np.inf], [np.nan, -np.inf]])
    metrics = {"test_loss": np.array([0.1, 0.30000001], np.float32), "n": np.arange(3)}
    obj = {
        "bench": BenchmarkResult("Adam", np.array([1e-3, 0.1]), grid, 0.1, metrics),
        "hist": FriedmannHistory(*(np.linspace(0, 1, 4) * k for k in range(1, 8))),
        "loss": PolynomialLoss(0.1, 10.0, 4),
        "scalars": (np.float32(0.1), np.float64(1 / 3), np.int64(7), float("nan"), -float("inf"), 2, True, None, "s"),
    }
    back = _roundtrip(obj)
    assert _same(obj, back)
    assert back["bench"].metrics["test_loss"].dtype == np.float32  # a float32 mean stays a float32 mean
    assert float(back["bench"].metrics["test_loss"].mean()) == float(metrics["test_loss"].mean())


def test_encoding_refuses_what_it_cannot_restore():
    with pytest.raises(TypeError):
        beyond.encode({1: 2.0})  # non-str keys
    with pytest.raises(TypeError):
        beyond.encode(object())
    with pytest.raises(ValueError):
        beyond.decode({"__namedtuple__": "os:stat_result", "fields": {}})


def test_grids_hold_the_chapters_settings():
    # the quick profile: what the chapters computed in memory before they read scans
    sweep = scans.grid("oc-sweep", "quick")
    assert len(sweep) == 1 * 2 * 2 * 7 and {c["width"] for c in sweep} == {512}
    assert [c["schedule"] for c in sweep[:7]][0] == "de Sitter, beta=0.5" and sweep[0]["eta"] == 1 / 9
    assert [c["width"] for c in scans.grid("wp-alpha", "quick")] == [32, 64, 128, 256, 512, 1024, 2048]
    assert [c["width"] for c in scans.grid("wp-drift", "paper")] == [32, 64, 128, 256, 512, 1024, 2048, 4096]
    prec = scans.grid("wp-precision", "quick")
    assert np.array_equal(prec[0]["etas"], np.logspace(-4, -0.5, 8)) and prec[1]["etas"] == [0.0011]
    assert len(scans.grid("oc-sweep", "paper")) == 3 * 6 * 3 * 7
    for name in beyond.NAMES:
        for profile in ("quick", "paper"):
            configs = scans.grid(name, profile)
            assert configs and all(c["scan"] == name for c in configs)
            canonical_json(configs)  # JSON-able, no NaN
            keys = {canonical_json(scans.group_key(name)(c)) for c in configs}
            assert 1 <= len(keys) <= len(configs)
    with pytest.raises(ValueError):
        beyond.grid("oc-nothing", "quick")


def _small_friedmann(seed=0):
    c = scans.grid("oc-friedmann", "quick")[0]
    return {**c, "width": 16, "steps": 40, "seed": seed}


def test_store_round_trip_equals_the_direct_computation(tmp_path, monkeypatch):
    configs = [_small_friedmann(0), {**_small_friedmann(1), "v0": 0.01}]
    stored = scans.run("oc-friedmann", "quick", tmp_path, configs=configs, progress=False)
    init_fn, apply_fn = network.mlp(width=16, **beyond.ARCH)
    for c, r in zip(configs, stored):
        direct = friedmann_history(apply_fn, init_fn(jax.random.PRNGKey(c["seed"]), 1), np.ones((1, 1)),
                                   loss=PolynomialLoss(*c["loss"]), eta=c["eta"], v0=c["v0"], steps=c["steps"])
        assert _same(direct, beyond.decode(r["value"]))
    assert (tmp_path / "quick" / "oc-friedmann").is_dir()
    # a rerun reads, it does not compute
    monkeypatch.setitem(scans.COMPUTE, "oc-friedmann", lambda cs: pytest.fail("recomputed a stored result"))
    again = scans.run("oc-friedmann", "quick", tmp_path, configs=configs, progress=False)
    assert [a["value"] for a in again] == [r["value"] for r in stored]


def test_chapter_reads_the_stored_profile_only_when_complete(tmp_path, monkeypatch):
    chapter = "width_and_precision"
    assert beyond.chapter_profile(chapter, "paper", tmp_path) == "quick"
    # store a stand-in result for every paper configuration of the chapter's scans but one
    names = beyond.CHAPTERS[chapter]
    for name in names:
        st = ResultStore(tmp_path / "paper" / name)
        for k, c in enumerate(scans.grid(name, "paper")):
            if name == names[-1] and k == 0:
                continue
            st.save(c, {"value": beyond.encode(np.array([float(k)]))})
    assert beyond.chapter_profile(chapter, "paper", tmp_path) == "quick"
    c0 = scans.grid(names[-1], "paper")[0]
    ResultStore(tmp_path / "paper" / names[-1]).save(c0, {"value": beyond.encode(np.array([0.0]))})
    assert beyond.chapter_profile(chapter, "paper", tmp_path) == "paper"
    monkeypatch.setitem(scans.COMPUTE, "wp-alpha", lambda cs: pytest.fail("computed instead of reading"))
    r = beyond.read("wp-alpha", "paper", tmp_path)
    assert r.profile == "paper" and [float(v[0]) for v in r.values] == list(range(len(r.configs)))


def test_command_line_runs_the_chapters_scans(monkeypatch, capsys):
    from nncosmo_helpers.scans import __main__ as cli

    seen = {}
    monkeypatch.setattr(scans, "timed_run", lambda figs, *a, **kw: seen.setdefault("figs", figs) and {f: 0.0 for f in figs})
    assert cli.main(["--profile", "quick", "--figs", "2", "oc-nesterov", "--no-progress"]) == 0
    assert seen["figs"] == (2, "oc-nesterov")
    seen.clear()
    assert cli.main(["--profile", "quick", "--no-progress"]) == 0
    assert seen["figs"] == scans.FIGS + beyond.NAMES  # by default every scan, so `make book-paper` runs them all
    with pytest.raises(SystemExit):
        cli.main(["--profile", "quick", "--figs", "oc-nothing"])


def test_slope_budget_is_three_standard_errors_plus_the_local_slope_range():
    from nncosmo_helpers.experiments.schedules import NesterovConvergence

    eta = 1.0 / np.array([4.0, 8.0, 16.0, 32.0]) ** 2
    d = 0.3 * np.sqrt(eta) * (1 + 0.5 * np.sqrt(eta)) * np.array([1.0, 1.02, 0.99, 1.0])
    conv = NesterovConvergence(eta, np.arange(3.0), {}, np.zeros(3), 1.0, d, d, d, d)
    # independent: ordinary least squares written out, the unbiased residual variance (N - 2 degrees of freedom)
    x, y = np.log(eta), np.log(d)
    X = np.stack([x, np.ones_like(x)], axis=1)
    coef = np.linalg.solve(X.T @ X, X.T @ y)
    resid = y - X @ coef
    var = resid @ resid / (len(x) - 2)
    se = np.sqrt(var * np.linalg.inv(X.T @ X)[0, 0])
    local = [(y[k + 1] - y[k]) / (x[k + 1] - x[k]) for k in range(3)]
    assert conv.slope_budget("nesterov_vs_coasting") == pytest.approx(3 * se + max(local) - min(local), rel=1e-12)


def test_ratio_budget_adds_the_float64_deviation_and_the_gradient_change():
    from nncosmo_helpers.experiments.precision import PrecisionMaps, RoundingPrediction, float32_check, ratio_budget

    etas, betas = np.array([1e-4, 1e-2]), np.array([0.0])
    pred = np.array([[1.9, 1.0]])  # f_init = 2, f0 = 1: the output travels 0.1 and 1.0
    maps = PrecisionMaps(etas, betas, dev64=np.array([[0.002, 0.001]]), dev32=np.array([[0.2, 0.001]]),
                         f64=pred, f32=pred, pred=pred, alpha=1.0, f_init=2.0)
    lost = np.array([[0.25, 0.001]])
    rounding = RoundingPrediction(etas, betas, lost, lost, np.array([1e-3]), np.array([1e-3]))
    budget = ratio_budget(maps, rounding, PolynomialLoss(0.1, 1.0, 4), width=100, level=0.01)
    # only the first point loses more than 1%: (0.002 + 10 * 2^-24 * 2 / 0.1) / 0.25 + (4 - 1) * 0.1 / 1
    assert budget.shape == (1,) and budget[0] == pytest.approx((0.002 + 200 / 2**24) / 0.25 + 0.3, rel=1e-12)
    assert float32_check(maps, rounding).ratio.shape == budget.shape


# -- the background chapter's scans (scans.background) --------------------------------------------------------------
def test_background_grids_hold_the_chapters_settings():
    from nncosmo_helpers.scans import background as bg

    assert beyond.CHAPTERS["background"] == bg.NAMES == ("bg-runs", "bg-lag", "bg-limit")
    pairs = [(0.1111, 0.0), (0.4444, 0.0), (0.0011, 0.5), (0.0278, 0.5), (0.1111, 0.5)]
    losses = {"quick": [[0.1, 10.0, 2], [0.2, 10.0, 2], [0.2, 1.0, 2], [0.1, 10.0, 4]],
              "paper": [[m, f0, n] for n in (2, 4) for f0 in (1.0, 10.0) for m in (0.01, 0.1, 0.2)]}
    eps_scan = {"quick": np.geomspace(1e-2, 30.0, 8), "paper": np.geomspace(1e-3, 30.0, 10)}
    control_seeds = {"quick": (1, 2), "paper": (1, 2, 3, 4)}
    for profile, hidden in (("quick", 1), ("paper", 2)):
        runs = scans.grid("bg-runs", profile)
        net = dict(width=1000, hidden_layers=hidden, activation="erf", W_std=1.0, b_std=0.05, seed=0, x0=1.0)
        for name in ("bg-lag", "bg-limit"):
            assert all({k: c[k] for k in net} == net for c in scans.grid(name, profile))
        n_grid = len(losses[profile]) * len(pairs)
        pair_runs, controls, sweep = runs[:n_grid], runs[n_grid:-6], runs[-6:]
        assert all({k: c[k] for k in net} == net for c in pair_runs + sweep)
        # the control seeds: the same grid on other draws of the same architecture
        assert controls == [dict(c, seed=seed) for seed in control_seeds[profile] for c in pair_runs]
        assert [(c["loss"], (c["eta"], c["beta"])) for c in pair_runs] == [(lo, p) for lo in losses[profile] for p in pairs]
        assert all(c["epsilon"] is None and c["steps"] == 1000 and c["record_every"] == 10 for c in pair_runs)
        assert [c["epsilon"] for c in sweep] == [0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
        assert all(c["eta"] is None and c["loss"] == [0.1, 10.0, 2] and c["beta"] == 0.0 for c in sweep)
        lag = scans.grid("bg-lag", profile)
        assert np.array_equal([c["epsilon"] for c in lag], eps_scan[profile])  # bit for bit: the chapter's np.geomspace
        assert all((c["relaxation_times"], c["samples"], c["loss"]) == (12.0, 3000, [0.1, 10.0, 2]) for c in lag)
        (limit,) = scans.grid("bg-limit", profile)
        assert (limit["loss"], limit["factors"], limit["steps"]) == ([0.2, 1.0, 2], [0.9, 1.1, 1.5, 2.0, 3.0], 1000)
        # bg-runs: one group per loss (its pairs), one for the sweep; each group has one network
        key = scans.group_key("bg-runs")
        groups = {}
        for c in runs:
            groups.setdefault(canonical_json(key(c)), []).append(c)
        assert len(groups) == len(losses[profile]) * (1 + len(control_seeds[profile])) + 1
    with pytest.raises(ValueError, match="must not contain the chapter's seed"):  # the split by seed needs them apart
        bg.grid("bg-runs", dict(beyond.settings("background", "quick"), control_seeds=(0, 1)))
        assert all(len({canonical_json({k: c[k] for k in net}) for c in g}) == 1 for g in groups.values())


def _small_background_configs():
    """Width-16 versions of the three scans' configurations: a converged run, one far beyond the linear
    stability limit (it diverges), one of the epsilon sweep; the lag at one epsilon; the stability-limit runs."""
    from nncosmo_helpers import ntk

    small = dict(width=16, steps=40, record_every=10)
    run = {**scans.grid("bg-runs", "quick")[0], **small}  # loss (0.1, 10, 2), eta 0.1111, beta 0
    # the scans' cached network functions, so that the jitted training loops compile once for scans and references
    init_fn, apply_fn = beyond._mlp(16, 1, "erf", 1.0, 0.05)
    params, x0 = init_fn(jax.random.PRNGKey(0), 1), np.ones((1, 1))
    alpha = float(ntk.alpha(apply_fn, params, x0))
    quartic_far = PolynomialLoss(0.1, 10.0, 4)
    eta_div = 20.0 * 2.0 / (alpha * float(quartic_far.second(float(apply_fn(params, x0)[0, 0]))))  # 20 x eta_stab
    diverged = {**run, "loss": [0.1, 10.0, 4], "eta": eta_div}
    sweep = {**scans.grid("bg-runs", "quick")[-3], **small}  # epsilon = 1
    lag = {**scans.grid("bg-lag", "quick")[3], "width": 16, "samples": 5}  # 5 samples: the runs' ODE shape
    limit = {**scans.grid("bg-limit", "quick")[0], "width": 16, "steps": 30, "factors": [0.9, 3.0]}
    return [run, diverged, sweep], [lag], [limit], (apply_fn, params, x0)


def test_background_scans_store_what_the_experiments_return(tmp_path, monkeypatch):
    from nncosmo_helpers import cosmology, ntk, train
    from nncosmo_helpers.experiments import background as experiment
    from nncosmo_helpers.scans import background as bg

    runs, lags, limits, (apply_fn, params, x0) = _small_background_configs()
    in_memory = [beyond.decode(r["value"]) for r in scans.compute("bg-runs", runs)]  # what `read` does without a store
    scans.run("bg-runs", "quick", tmp_path, configs=runs, progress=False)
    assert (tmp_path / "quick" / "bg-runs").is_dir()
    # reloaded from disk (not recomputed), decoded: equal to the in-memory computation and to the experiment itself
    with monkeypatch.context() as m:
        m.setitem(scans.COMPUTE, "bg-runs", lambda cs: pytest.fail("recomputed a stored result"))
        values = [beyond.decode(r["value"]) for r in scans.run("bg-runs", "quick", tmp_path, configs=runs, progress=False)]
    assert all(_same(a, b) for a, b in zip(values, in_memory))
    run, diverged, sweep = runs
    direct = experiment.compare_backgrounds(apply_fn, params, x0, eta=run["eta"], beta=run["beta"],
                                            loss=PolynomialLoss(*run["loss"]), steps=40, record_every=10)
    assert _same(values[0], direct)
    with pytest.raises(train.TrainingDiverged) as err:
        experiment.compare_backgrounds(apply_fn, params, x0, eta=diverged["eta"], beta=0.0,
                                       loss=PolynomialLoss(*diverged["loss"]), steps=40, record_every=10)
    d = values[1]
    assert isinstance(d, bg.DivergedRun) and (d.message, d.step, d.stability_ratio) == (str(err.value), err.value.step,
                                                                                        err.value.stability_ratio)
    assert d.eta == diverged["eta"] and d.loss == PolynomialLoss(*diverged["loss"]) and d.stability_ratio > 1
    alpha, f_init = float(ntk.alpha(apply_fn, params, x0)), float(apply_fn(params, x0)[0, 0])
    eta = sweep["epsilon"] * cosmology.eta_max_vacuum(alpha, PolynomialLoss(*sweep["loss"]), f_init, beta=0.0)
    assert _same(values[2], experiment.compare_backgrounds(apply_fn, params, x0, eta=eta, beta=0.0,
                                                           loss=PolynomialLoss(*sweep["loss"]), steps=40, record_every=10))
    # the chapter's lists: the diverged pair is skipped with its stability ratio; a diverged sweep run raises
    read = beyond.Read(runs, values, "quick")
    comp = bg.comparisons(read, 0)
    assert _same(comp.runs, [direct]) and comp.sweep == [values[2]]
    assert comp.skipped == [(diverged["eta"], 0.0, PolynomialLoss(0.1, 10.0, 4), err.value.stability_ratio)]
    assert comp.controls == {} and comp.control_skipped == {}
    # a control seed's runs (here the same values standing in) go to its own lists, not to the chapter's network's
    ctrl = beyond.Read(runs + [{**run, "seed": 1}, {**diverged, "seed": 1}], values + [values[0], d], "quick")
    comp_c = bg.comparisons(ctrl, 0)
    assert _same(comp_c.runs, [direct]) and len(comp_c.skipped) == 1
    assert list(comp_c.controls) == [1] and _same(comp_c.controls[1], [direct]) and comp_c.control_skipped[1] == comp.skipped
    with pytest.raises(train.TrainingDiverged):
        bg.comparisons(beyond.Read([run, {**diverged, "epsilon": 30.0}], [values[0], d], "quick"), 0)
    # bg-lag and bg-limit
    (lag,) = [beyond.decode(r["value"]) for r in scans.run("bg-lag", "quick", tmp_path, configs=lags, progress=False)]
    assert _same(lag, cosmology.backgrounds_at_epsilon(alpha, PolynomialLoss(0.1, 10.0, 2), f_init, epsilon=lags[0]["epsilon"],
                                                       beta=0.0, relaxation_times=12.0, samples=5))
    stored_limit = scans.run("bg-limit", "quick", tmp_path, configs=limits, progress=False)
    limit = bg.stability_limit(beyond.Read(limits, [beyond.decode(r["value"]) for r in stored_limit], "quick"))
    ref = experiment.stability_limit_runs(apply_fn, params, x0, loss=PolynomialLoss(0.2, 1.0, 2), factors=(0.9, 3.0), steps=30)
    ref = ref._replace(runs={c: r._replace(params=None) for c, r in ref.runs.items()})  # stored without final params
    assert list(limit.runs) == [0.9, 3.0] and _same(limit._replace(runs=None), ref._replace(runs=None))
    assert all(_same(limit.runs[c], ref.runs[c]._replace(**{k: _np(v) for k, v in ref.runs[c]._asdict().items()}))
               for c in ref.runs)
    assert limit.alpha_ratio == pytest.approx(ref.alpha_ratio, nan_ok=True) and limit.peak == ref.peak


def _np(v):
    """A JAX array as the NumPy array the store gives back (same dtype and values)."""
    return np.asarray(v) if isinstance(v, jax.Array) else v


def test_background_chapter_reads_paper_only_when_all_three_scans_are_stored(tmp_path, monkeypatch):
    from nncosmo_helpers.scans import grids

    assert beyond.chapter_profile("background", "paper", tmp_path) == "quick"
    names = beyond.CHAPTERS["background"]
    assert names == ("bg-runs", "bg-lag", "bg-limit")
    for name in names:                                   # stand-ins for every paper configuration of the three
        st = ResultStore(tmp_path / "paper" / name)
        for k, c in enumerate(scans.grid(name, "paper")):
            st.save(c, {"value": beyond.encode(np.array([float(k)]))})
        if name != names[-1]:
            assert beyond.chapter_profile("background", "paper", tmp_path) == "quick"
    assert beyond.chapter_profile("background", "paper", tmp_path) == "paper"
    monkeypatch.setitem(scans.COMPUTE, "bg-lag", lambda cs: pytest.fail("computed instead of reading"))
    assert [float(v[0]) for v in beyond.read("bg-lag", "paper", tmp_path).values] == list(range(10))
    # one definition of the grids: the paper's pairs (footnote 5), losses (eq. 20) and network
    paper, quick = beyond.settings("background", "paper"), beyond.settings("background", "quick")
    assert paper["pairs"] == quick["pairs"] == grids.ETA_BETA and paper["losses"] == grids.LOSSES
    assert paper["network"] == dict(width=1000, **beyond.ARCH) and quick["network"]["hidden_layers"] == 1
