"""Summaries of the scan results used by the chapter: the numbers behind each claim, the plot data and
the sentences (prose helpers) built from them.
"""

from __future__ import annotations

import numpy as np

from .. import dynamics
from .grids import ETA_BETA


# ------------------------------------------------------------------------------------------------
# summaries used by the chapter (the verdicts)
# ------------------------------------------------------------------------------------------------
def table(configs, results, *keys):
    """Columns ``keys`` (config or result fields) as numpy arrays, one entry per configuration."""
    cols = {}
    for k in keys:
        vals = [r.get(k) if k in r else c.get(k) for c, r in zip(configs, results)]
        cols[k] = np.array([np.nan if v is None else v for v in vals], dtype=object if any(isinstance(v, str) for v in vals) else float)
    return cols


def fig3_deviations(configs, results):
    """Per configuration: |f_pred_end - f_end| / |f_end - f_init| (NaN for diverged runs)."""
    dev = []
    for r in results:
        if r["diverged"]:
            dev.append(np.nan)
        else:
            move = abs(r["f_end"] - r["f_init"])
            dev.append(abs(r["f_pred_end"] - r["f_end"]) / move if move > 0 else np.nan)
    return np.array(dev)


def verdict(holds: bool, yes: str = "Confirmed", no: str = "Not confirmed") -> str:
    """The word the chapter prints for a claim, decided by a measured condition."""
    return yes if bool(holds) else no


def fig3_divergence_sentence(configs, results) -> str:
    """One sentence on the diverged Fig. 3 float64 runs: how many, their stability ratios, their optimisers."""
    rows = [(c, r) for c, r in zip(configs, results) if c.get("dtype", "float64") == "float64"]
    bad = [(c, r) for c, r in rows if r["diverged"]]
    ratios = np.array([r["stability_ratio"] for _, r in rows])
    if not bad:
        return (f"none of the {len(rows)} float64 runs diverged; the largest initial stability ratio "
                f"eta L'' alpha / (2 (1 + beta)) is {ratios.max():.3g}.")
    worst_ok = max((r["stability_ratio"] for _, r in rows if not r["diverged"]), default=float("nan"))
    least_bad = min(r["stability_ratio"] for _, r in bad)
    opts = sorted({(c["eta"], c["beta"]) for c, _ in bad})
    return (f"{len(bad)} of the {len(rows)} float64 runs diverged (counted in the figure titles), all with an initial "
            f"stability ratio eta L'' alpha / (2 (1 + beta)) of at least {least_bad:.3g} (the largest ratio among the "
            f"runs that stayed finite is {worst_ok:.3g}); optimisers (eta, beta) involved: "
            f"{', '.join(f'({e:g}, {b:g})' for e, b in opts)}.")


def fig1_summary(configs, results) -> dict:
    """Numbers behind the Fig. 1 claims.

    * ``erf_gt_relu``: fraction of matched networks (same width, depth, scales, seed) with
      alpha(erf) > alpha(relu); ``erf_over_relu_median``: the median ratio.
    * ``effect_<factor>``: max - min over the factor's levels of the mean log10 alpha (averaged over
      everything else) -- how many decades a factor moves alpha, for W_std, b_std, activation,
      hidden_layers and width.
    * ``seed_spread_<width>``: median over configurations of std/mean of alpha over seeds.
    * ``inf_dev_<width>``: median |mean_seed alpha - alpha_inf| / alpha_inf.
    """
    logs = np.log10([r["alpha"] for r in results])
    out = {}
    for factor in ("W_std", "b_std", "activation", "hidden_layers", "width"):
        levels = sorted({c[factor] for c in configs}, key=str)
        means = [np.mean([v for c, v in zip(configs, logs) if c[factor] == lv]) for lv in levels]
        out[f"effect_{factor}"] = float(max(means) - min(means))
    by = {}
    for c, r in zip(configs, results):
        by[(c["width"], c["hidden_layers"], c["W_std"], c["b_std"], c["seed"], c["activation"])] = r["alpha"]
    ratios = [v / by[k[:-1] + ("relu",)] for k, v in by.items() if k[-1] == "erf" and k[:-1] + ("relu",) in by]
    out["erf_gt_relu"] = float(np.mean(np.array(ratios) > 1.0))
    out["erf_over_relu_median"] = float(np.median(ratios))
    seeds = {}
    for c, r in zip(configs, results):
        seeds.setdefault((c["width"], c["hidden_layers"], c["activation"], c["W_std"], c["b_std"]), []).append(r)
    for w in sorted({c["width"] for c in configs}):
        spread = [np.std([r["alpha"] for r in rs]) / np.mean([r["alpha"] for r in rs]) for k, rs in seeds.items() if k[0] == w]
        dev = [abs(np.mean([r["alpha"] for r in rs]) - rs[0]["alpha_infinite_width"]) / rs[0]["alpha_infinite_width"]
               for k, rs in seeds.items() if k[0] == w]
        out[f"seed_spread_{w}"] = float(np.median(spread))
        out[f"inf_dev_{w}"] = float(np.median(dev))
    out["alpha_min"], out["alpha_max"] = float(10 ** logs.min()), float(10 ** logs.max())
    out["alpha_median"] = float(10 ** np.median(logs))
    return out


def _x0(c) -> float:
    return float(c.get("x0", 0.0))


def fig3_panels(configs, results) -> list[dict]:
    """Per (input point, precision) -- (0, float64), (0, float32), then (1, float64) when the grid has
    it: movement, deviation, alpha drift and divergence count."""
    panels = []
    for x0, dtype in ((0.0, "float64"), (0.0, "float32"), (1.0, "float64")):
        idx = [i for i, c in enumerate(configs) if c.get("dtype", "float64") == dtype and _x0(c) == x0]
        if not idx and x0 != 0.0:
            continue
        ok = [i for i in idx if not results[i]["diverged"]]
        panels.append({
            "title": dtype if x0 == 0.0 else f"{dtype}, $x_0$ = {x0:g}",
            "x0": x0,
            "move": np.array([abs(results[i]["f_end"] - results[i]["f_init"]) for i in ok]),
            "deviation": np.array([abs(results[i]["f_pred_end"] - results[i]["f_end"]) for i in ok]),
            "dalpha": np.array([results[i]["alpha_final"] - results[i]["alpha_initial"] for i in ok]),
            "n_diverged": len(idx) - len(ok), "n": len(idx), "index": ok,
            "diverged_move": np.array([abs(results[i]["f"][-1] - results[i]["f_init"]) if len(results[i]["f"]) else np.nan
                                       for i in idx if results[i]["diverged"]]),
        })
    return panels


#: fig3_summary keys that also get a seed range (``<key>_seed_min``, ``<key>_seed_max``).
FIG3_SEED_KEYS = ("median_float64", "median_float32", "frac_below_1pct_float64", "median_discretisation",
                  "median_alpha_drift_part", "frac_above_1pct_drift_dominated", "spearman_dev_dalpha",
                  "max_float32_eta0.0011_beta0.5", "max_float64_eta0.0011_beta0.5")


def fig3_summary(configs, results, *, x0: float = 0.0) -> dict:
    """Numbers behind the Fig. 3 claims at the input point ``x0`` (default 0, the paper comparison).

    The statistics (see below) pool every seed; for the keys of :data:`FIG3_SEED_KEYS` the same
    statistic per seed over the seed subset (:func:`fig3_seeded`, ``n_seed_subset`` runs) gives
    ``<key>_seed_min`` / ``<key>_seed_max`` (the seed spread); ``seeds`` counts the seeds. Configurations without ``x0`` / ``seed`` count as x0 = 0 / seed 0.
    """
    sel = [i for i, c in enumerate(configs) if _x0(c) == float(x0)]
    cs, rs = [configs[i] for i in sel], [results[i] for i in sel]
    out = _fig3_stats(cs, rs)
    seeds = sorted({c.get("seed", 0) for c in cs})
    out["seeds"] = len(seeds)
    seeded = fig3_seeded(cs)
    out["n_seed_subset"] = int(seeded.sum())
    per_seed = [_fig3_stats(*zip(*[(c, r) for c, r, k in zip(cs, rs, seeded) if k and c.get("seed", 0) == sd]))
                for sd in seeds if any(k and c.get("seed", 0) == sd for c, k in zip(cs, seeded))]
    for k in FIG3_SEED_KEYS:
        vals = np.array([p[k] for p in per_seed], dtype=float)
        vals = vals[np.isfinite(vals)]
        out[f"{k}_seed_min"] = float(vals.min()) if vals.size else float("nan")
        out[f"{k}_seed_max"] = float(vals.max()) if vals.size else float("nan")
    return out


def _fig3_stats(configs, results) -> dict:
    """Numbers behind the Fig. 3 claims (relative deviation = |f_pred - f_end| / |f_end - f_init|).

    ``median_<dtype>``, ``p90_<dtype>``, ``frac_below_1pct_<dtype>``, ``n_<dtype>``,
    ``diverged_<dtype>``; ``median_<dtype>_eta<eta>_beta<beta>`` per optimiser; for float64 the
    discretisation part |f_pred - f_disc| / move (eq. 2 iterated at frozen alpha against eq. 7) and the
    alpha-drift part |f_disc - f_end| / move, their medians (over the runs whose frozen-alpha iteration
    stayed finite; ``n_iteration_overflow`` counts the others, which are also left out of
    ``n_above_1pct``), and the rank correlation between the deviation and
    |alpha(t_max) - alpha(0)| / alpha(0) over all runs.
    """
    from scipy.stats import spearmanr

    dev = fig3_deviations(configs, results)
    out = {}
    for dtype in ("float64", "float32"):
        m = np.array([c.get("dtype", "float64") == dtype for c in configs])
        d = dev[m & np.isfinite(dev)]
        out[f"n_{dtype}"] = int(m.sum())
        out[f"diverged_{dtype}"] = int(sum(results[i]["diverged"] for i in np.flatnonzero(m)))
        out[f"median_{dtype}"] = float(np.median(d)) if d.size else float("nan")
        out[f"p90_{dtype}"] = float(np.percentile(d, 90)) if d.size else float("nan")
        out[f"frac_below_1pct_{dtype}"] = float(np.mean(d < 0.01)) if d.size else float("nan")
        for (eta, beta) in ETA_BETA:
            mm = m & np.isfinite(dev) & np.array([(c["eta"], c["beta"]) == (eta, beta) for c in configs])
            out[f"median_{dtype}_eta{eta}_beta{beta}"] = float(np.median(dev[mm])) if mm.any() else float("nan")
            out[f"max_{dtype}_eta{eta}_beta{beta}"] = float(np.max(dev[mm])) if mm.any() else float("nan")
    m64 = [i for i, c in enumerate(configs) if c.get("dtype", "float64") == "float64" and np.isfinite(dev[i])]
    move = np.array([abs(results[i]["f_end"] - results[i]["f_init"]) for i in m64])
    fdisc = np.array([np.nan if results[i].get("f_disc_end") is None else results[i]["f_disc_end"] for i in m64], dtype=float)
    disc = np.abs(np.array([results[i]["f_pred_end"] for i in m64]) - fdisc) / move  # NaN: the iteration overflowed
    drift = np.abs(fdisc - np.array([results[i]["f_end"] for i in m64])) / move
    rel_da = np.array([abs(results[i]["alpha_final"] - results[i]["alpha_initial"]) / results[i]["alpha_initial"] for i in m64])
    out["n_iteration_overflow"] = int(np.isnan(fdisc).sum())
    out["median_discretisation"] = float(np.nanmedian(disc)) if np.isfinite(disc).any() else float("nan")
    out["median_alpha_drift_part"] = float(np.nanmedian(drift)) if np.isfinite(drift).any() else float("nan")
    big = (dev[m64] > 0.01) & np.isfinite(fdisc)
    out["n_above_1pct"] = int(big.sum())
    out["frac_above_1pct_drift_dominated"] = float(np.mean(drift[big] > disc[big])) if big.any() else float("nan")
    out["spearman_dev_dalpha"] = float(spearmanr(dev[m64], rel_da).correlation) if len(m64) > 2 else float("nan")
    return out


#: Bin edges of the fraction of the way to f0 travelled (:func:`fig3_by_fraction`); MOVING_FRACTION
#: (0.1) is an edge, so the bins at and above it hold the moving networks.
FIG3_FRACTION_EDGES = (0.0, 1e-3, 1e-2, 0.1, 0.5, np.inf)


def fig3_fractions(configs, results) -> np.ndarray:
    """Per configuration: the fraction of the way to f0 travelled (NaN for diverged runs).

    Computed from the record (f_init, f_end, the configuration's f0) with
    :func:`~nncosmo_helpers.dynamics.fraction_travelled`, so records without the stored field work too.
    """
    from ..dynamics import fraction_travelled

    return np.array([np.nan if r["diverged"] else float(fraction_travelled(r["f_init"], r["f_end"], c["f0"]))
                     for c, r in zip(configs, results)])


def fig3_seeded(configs) -> np.ndarray:
    """Per configuration: whether it belongs to the seed subset, i.e. the same configuration (all keys
    but ``seed``) is in ``configs`` for every seed that occurs. Seed spreads are taken over this
    subset, so that each seed's statistic is over the same networks."""
    seeds = {c.get("seed", 0) for c in configs}
    keys = [tuple(sorted((k, str(v)) for k, v in c.items() if k != "seed")) for c in configs]
    have = {}
    for k, c in zip(keys, configs):
        have.setdefault(k, set()).add(c.get("seed", 0))
    return np.array([have[k] == seeds for k in keys])


def _seed_stat(values, seeds, mask, seeded, stat=np.median):
    """(statistic of ``values[mask]`` with all seeds pooled, the statistic per seed over the seed subset
    ``mask & seeded``); seeds without runs are skipped."""
    pooled = float(stat(values[mask])) if mask.any() else float("nan")
    m = mask & seeded
    per = [float(stat(values[m & (seeds == s)])) for s in np.unique(seeds) if (m & (seeds == s)).any()]
    return pooled, per


def fig3_by_fraction(configs, results, *, x0=None, dtype: str = "float64", edges=FIG3_FRACTION_EDGES) -> list[dict]:
    """The relative deviation |f_pred - f_end| / |f_end - f_init| in bins of the fraction travelled.

    ``x0``: one input point, or ``None`` for all. Per bin [lo, hi): ``n`` runs, ``median`` deviation
    (all seeds pooled), ``seed_medians`` (the median per seed over the seed subset, :func:`fig3_seeded`),
    ``seed_spread`` (max - min of those),
    ``frac_below_1pct``, ``seeds`` (how many seeds have runs in the bin). Diverged runs are left out.
    """
    dev, frac = fig3_deviations(configs, results), fig3_fractions(configs, results)
    seeds = np.array([c.get("seed", 0) for c in configs])
    base = np.array([c.get("dtype", "float64") == dtype and (x0 is None or _x0(c) == float(x0)) for c in configs])
    base &= np.isfinite(dev) & np.isfinite(frac)
    seeded = fig3_seeded(configs)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = base & (frac >= lo) & (frac < hi)
        med, per = _seed_stat(dev, seeds, m, seeded)
        rows.append({"lo": float(lo), "hi": float(hi), "n": int(m.sum()), "median": med, "seed_medians": per,
                     "seed_spread": float(max(per) - min(per)) if per else float("nan"), "seeds": len(per),
                     "frac_below_1pct": float(np.mean(dev[m] < 0.01)) if m.any() else float("nan")})
    return rows


def fig3_moving_summary(configs, results, *, threshold=None) -> dict:
    """Fig. 3 split into moving (fraction travelled >= ``threshold``, default
    :data:`~nncosmo_helpers.dynamics.MOVING_FRACTION`) and barely-moving float64 runs.

    For ``group`` in (moving, still) and ``where`` in (x0, x1, all): ``n_<group>_<where>``,
    ``median_<group>_<where>`` (relative deviation, seeds pooled), ``seed_min_/seed_max_<group>_<where>``
    (the range of the per-seed medians over the seed subset, :func:`fig3_seeded`),
    ``subset_median_<group>_<where>`` and ``n_subset_<group>_<where>`` (all seeds pooled, seed subset only),
    ``frac_below_1pct_<group>_<where>``. Per input point:
    ``fraction_median_<where>``, ``frac_moving_<where>`` (of the finite runs), ``alpha_median_<where>`` and
    per weight scale ``alpha_median_<where>_W<W_std>`` (alpha(0) of the runs, one entry per run).
    """
    from ..dynamics import MOVING_FRACTION

    threshold = MOVING_FRACTION if threshold is None else threshold
    dev, frac = fig3_deviations(configs, results), fig3_fractions(configs, results)
    seeds = np.array([c.get("seed", 0) for c in configs])
    x0s = np.array([_x0(c) for c in configs])
    f64 = np.array([c.get("dtype", "float64") == "float64" for c in configs]) & np.isfinite(dev) & np.isfinite(frac)
    alpha = np.array([r["alpha_initial"] for r in results], dtype=float)
    seeded = fig3_seeded(configs)
    out = {"threshold": float(threshold)}
    for where, wm in (("x0", x0s == 0.0), ("x1", x0s == 1.0), ("all", np.ones(len(configs), bool))):
        base = f64 & wm
        out[f"fraction_median_{where}"] = float(np.median(frac[base])) if base.any() else float("nan")
        out[f"frac_moving_{where}"] = float(np.mean(frac[base] >= threshold)) if base.any() else float("nan")
        out[f"alpha_median_{where}"] = float(np.median(alpha[base])) if base.any() else float("nan")
        for ws in sorted({c.get("W_std") for c in configs if c.get("W_std") is not None}):
            mw = base & np.array([c.get("W_std") == ws for c in configs])
            out[f"alpha_median_{where}_W{ws:g}"] = float(np.median(alpha[mw])) if mw.any() else float("nan")
        for group, gm in (("moving", frac >= threshold), ("still", frac < threshold)):
            m = base & gm
            med, per = _seed_stat(dev, seeds, m, seeded)
            out[f"n_{group}_{where}"] = int(m.sum())
            out[f"median_{group}_{where}"] = med
            out[f"seed_min_{group}_{where}"] = float(min(per)) if per else float("nan")
            out[f"seed_max_{group}_{where}"] = float(max(per)) if per else float("nan")
            out[f"seeds_{group}_{where}"] = len(per)
            ms = m & seeded
            out[f"subset_median_{group}_{where}"] = float(np.median(dev[ms])) if ms.any() else float("nan")
            out[f"n_subset_{group}_{where}"] = int(ms.sum())
            out[f"frac_below_1pct_{group}_{where}"] = float(np.mean(dev[m] < 0.01)) if m.any() else float("nan")
    return out


def fig3_moving_sentence(configs, results, *, threshold=None) -> str:
    """Which float64 runs moved at least ``threshold`` of the way to f0: counts by input point, loss
    scale m, exponent n, activation, depth and W_std (the networks a "moving" verdict rests on)."""
    from ..dynamics import MOVING_FRACTION

    threshold = MOVING_FRACTION if threshold is None else threshold
    frac = fig3_fractions(configs, results)
    rows = [c for c, f in zip(configs, frac) if c.get("dtype", "float64") == "float64" and np.isfinite(f) and f >= threshold]
    if not rows:
        return f"no float64 run moved {threshold:g} of the way to f0."

    def counts(key, fmt="{:g}"):
        vals = sorted({c.get(key, 0.0) for c in rows}, key=str)
        return ", ".join(f"{fmt.format(v)}: {sum(c.get(key, 0.0) == v for c in rows)}" for v in vals)

    return (f"{len(rows)} float64 runs (by input point x0 {counts('x0')}; by m {counts('m')}; by n {counts('n')}; "
            f"by activation {counts('activation', '{}')}; by depth {counts('hidden_layers')}; by W_std {counts('W_std')}; "
            f"by seed {counts('seed')})")


# ------------------------------------------------------------------------------------------------
# Figs. 4 and 5: seed ensembles, the leading-mode class, networks that move
# ------------------------------------------------------------------------------------------------
def _fraction_travelled(f_bar, f0) -> float:
    """dynamics.fraction_travelled of a mean-field trajectory ``f_bar`` (first entry t = 0, last t = T)."""
    from ..dynamics import fraction_travelled

    f_bar = np.asarray(f_bar, dtype=float)
    return float(fraction_travelled(f_bar[0], f_bar[-1], f0))


def _leading_class(result, width=None) -> str:
    """The one v1 decision (dynamics.leading_mode_class) of a Fig. 4/5 record of a width-``width`` network
    (the degeneracy threshold is :func:`dynamics.degeneracy_ratio` of the width; ``None``: the paper's width)."""
    from .. import dynamics

    ratio = result.get("lambda_ratio")
    if ratio is None:
        ev = result["eigenvalues_over_N"]
        ratio = ev[0] / ev[1] if ev[1] > 0 else np.inf
    return str(dynamics.leading_mode_class(result["uniform_overlap"], ratio,
                                          degeneracy=dynamics.degeneracy_ratio(width or dynamics.PAPER_WIDTH))[()])


def seed_tolerance(summary: dict, name: str, *, noise: float = 1e-9) -> float:
    """Absolute tolerance of the ensemble number ``summary[name]``: its seed spread
    ``summary[name + "_seed_hi"] - summary[name + "_seed_lo"]`` (see :func:`seed_ensemble`), and at least
    ``noise`` times its size (run-to-run noise of a float64 value, for an ensemble whose seeds agree)."""
    v, lo, hi = summary[name], summary[f"{name}_seed_lo"], summary[f"{name}_seed_hi"]
    return float(max(hi - lo, noise * abs(v)))


def seed_ensemble(values, keys, seeds) -> dict:
    """Median and seed spread of a per-network quantity over configurations and seeds.

    ``values[j]`` belongs to configuration ``keys[j]`` (any hashable, the configuration without its
    seed) and seed ``seeds[j]``. Returns ``median``: the median over configurations of the
    per-configuration median over seeds; ``seed_lo``/``seed_hi``: the smallest and largest, over seeds,
    of the median over the configurations at that seed (the spread that another choice of seeds would
    move the median by); ``n_configs``, ``n_networks``, ``seeds`` (sorted list). NaN values are left
    out; with no value the numbers are NaN and the counts 0.
    """
    values = np.asarray(values, dtype=float)
    ok = np.isfinite(values)
    per_config, per_seed = {}, {}
    for v, k, s, good in zip(values, keys, seeds, ok):
        if good:
            per_config.setdefault(k, []).append(v)
            per_seed.setdefault(s, []).append(v)
    if not per_config:
        return {"median": float("nan"), "seed_lo": float("nan"), "seed_hi": float("nan"), "n_configs": 0,
                "n_networks": 0, "seeds": []}
    seed_medians = [float(np.median(v)) for v in per_seed.values()]
    return {"median": float(np.median([np.median(v) for v in per_config.values()])),
            "seed_lo": min(seed_medians), "seed_hi": max(seed_medians), "n_configs": len(per_config),
            "n_networks": int(ok.sum()), "seeds": sorted(per_seed)}


def _put(out: dict, name: str, ens: dict) -> None:
    out[name] = ens["median"]
    out[f"{name}_seed_lo"], out[f"{name}_seed_hi"] = ens["seed_lo"], ens["seed_hi"]


_ARCH_KEYS = ("width", "hidden_layers", "activation", "W_std", "b_std")


def fig4_panels(configs4, results4, configs1, results1) -> list[dict]:
    """Per interval: lambda_1/N next to alpha (Fig. 1, the same network: same seed) for every Fig. 4 network."""
    alpha = {}
    for c, r in zip(configs1, results1):
        alpha[tuple(c[k] for k in _ARCH_KEYS) + (c.get("seed", 0),)] = r["alpha"]
    key = lambda c: tuple(c[k] for k in _ARCH_KEYS) + (c.get("seed", 0),)  # noqa: E731
    panels = []
    for interval in sorted({c["interval"] for c in configs4}):
        rows = [(c, r) for c, r in zip(configs4, results4) if c["interval"] == interval and key(c) in alpha]
        panels.append({
            "title": f"interval = {interval:g} Hubble length",
            "interval": interval,
            "alpha": np.array([alpha[key(c)] for c, _ in rows]),
            "lambda1": np.array([r["lambda1_over_N"] for _, r in rows]),
            "lambda2": np.array([r["eigenvalues_over_N"][1] for _, r in rows]),
            "alpha_diag": np.array([r["alpha_diag_mean"] for _, r in rows]),
            "overlap": np.array([r["uniform_overlap"] for _, r in rows]),
            "leading_mode": [_leading_class(r, c.get("width")) for c, r in rows],
            "W_std": [c["W_std"] for c, _ in rows], "b_std": [c["b_std"] for c, _ in rows],
            "width": [c["width"] for c, _ in rows], "activation": [c["activation"] for c, _ in rows],
            "hidden_layers": [c["hidden_layers"] for c, _ in rows], "seed": [c.get("seed", 0) for c, _ in rows],
        })
    return panels


def _panel_keys(p):
    return [(w, L, a, ws, bs) for w, L, a, ws, bs in zip(p["width"], p["hidden_layers"], p["activation"], p["W_std"], p["b_std"])]


def fig4_summary(panels) -> dict:
    """Per interval ``k``: the numbers behind the Fig. 4 claims, each over configurations and seeds.

    ``ratio_median_k`` (with ``_seed_lo``/``_seed_hi``, see :func:`seed_ensemble`): (lambda_1/N)/alpha;
    ``ratio_min_k``/``ratio_max_k`` over every network; ``within_factor2_k``: fraction of networks with
    0.5 < ratio < 2; ``gap_median_k`` (and seed spread): lambda_1/lambda_2; ``overlap_median_k``:
    |v_1 . u|; ``n_uniform_k``, ``n_not_uniform_k``, ``n_not_defined_k``: networks in each class of
    :func:`nncosmo_helpers.dynamics.leading_mode_class`, ``frac_uniform_k`` the uniform fraction among
    all networks; ``n_networks_k``, ``n_configs_k``, ``n_seeds``.
    """
    out = {}
    for p in panels:
        k = f"{p['interval']:g}"
        keys, seeds = _panel_keys(p), p.get("seed", [0] * len(p["alpha"]))
        ratio = p["lambda1"] / p["alpha"]
        ens = seed_ensemble(ratio, keys, seeds)
        _put(out, f"ratio_median_{k}", ens)
        out[f"n_networks_{k}"], out[f"n_configs_{k}"], out["n_seeds"] = ens["n_networks"], ens["n_configs"], len(ens["seeds"])
        out[f"ratio_min_{k}"] = float(ratio.min())
        out[f"ratio_max_{k}"] = float(ratio.max())
        out[f"within_factor2_{k}"] = float(np.mean((ratio > 0.5) & (ratio < 2)))
        _put(out, f"gap_median_{k}", seed_ensemble(p["lambda1"] / p["lambda2"], keys, seeds))
        out[f"overlap_median_{k}"] = seed_ensemble(p["overlap"], keys, seeds)["median"]
        cls = np.array(p.get("leading_mode", [None] * len(ratio)), dtype=object)
        for label in ("uniform", "not uniform", "not defined"):
            out[f"n_{label.replace(' ', '_')}_{k}"] = int(np.sum(cls == label))
        out[f"frac_uniform_{k}"] = float(np.mean(cls == "uniform"))
    return out


def fig4_gap_table(panels, scales=None) -> list[dict]:
    """The eigenvalue hierarchy lambda_1/lambda_2 per architecture measured in Fig. 4.

    One row per (W_std, b_std, interval, hidden layers, activation, width), restricted to the
    (W_std, b_std) pairs ``scales`` (default: every pair in the panels): ``gap`` (median over seeds),
    ``gap_min``/``gap_max`` over seeds, ``n_seeds`` and the classes of v_1 over the seeds
    (``uniform``, ``not uniform``, ``not defined`` counts).
    """
    rows = {}
    for p in panels:
        for j, (w, L, a, ws, bs) in enumerate(_panel_keys(p)):
            if scales is not None and (ws, bs) not in scales:
                continue
            rows.setdefault((ws, bs, p["interval"], L, a, w), []).append(
                (p["lambda1"][j] / p["lambda2"][j], p.get("leading_mode", [None] * (j + 1))[j]))
    out = []
    for (ws, bs, interval, L, a, w), vals in sorted(rows.items(), key=lambda kv: tuple(map(str, kv[0]))):
        gaps = np.array([g for g, _ in vals])
        cls = [c for _, c in vals]
        out.append({"W_std": ws, "b_std": bs, "interval": interval, "hidden_layers": L, "activation": a, "width": w,
                    "gap": float(np.median(gaps)), "gap_min": float(gaps.min()), "gap_max": float(gaps.max()),
                    "n_seeds": len(vals), **{lab: cls.count(lab) for lab in ("uniform", "not uniform", "not defined")}})
    return out


def fig5_errors(configs, results):
    """Per non-diverged configuration: the mean-field prediction error, the movement and the v_1 class.

    Returns a dict of arrays: ``mean_error`` = max_t |f_bar_pred - f_bar| / max_t |f_bar - f_bar(0)|,
    ``mean_move`` = |f_bar(end) - f_bar(0)|, ``mode_move`` = |delta(end) - delta(0)| (2-norm over
    modes), ``mode_pred_error`` = |delta_pred(end) - delta(end)|, ``mode_size`` = |delta(0)|,
    ``fraction`` = the fraction of the way to f0 the mean field travelled
    (:func:`~nncosmo_helpers.dynamics.fraction_travelled`; NaN when the configuration has no ``f0``), ``moving`` =
    fraction >= :data:`~nncosmo_helpers.dynamics.MOVING_FRACTION`, ``eq15_end_error`` = |f_bar_eq15(T) - f_bar(T)| /
    |f_bar(T) - f_bar(0)| and ``eq9_end_error`` = the same for the plain mean output against the
    frozen full kernel (eq. 9: no reduction to one mode, so it holds the lag and the kernel drift
    only), both from the record's ``mean_field`` (NaN without it), ``leading_mode`` = the class of v_1
    (:func:`nncosmo_helpers.dynamics.leading_mode_class`), ``index`` = the configuration's position.
    """
    out = {k: [] for k in ("mean_error", "mean_move", "mode_move", "mode_pred_error", "mode_size", "index",
                           "fraction", "leading_mode", "eq15_end_error", "eq9_end_error")}
    for i, r in enumerate(results):
        if r["diverged"]:
            continue
        a, p = np.asarray(r["mean_actual"]), np.asarray(r["mean_pred"])
        move = np.max(np.abs(a - a[0]))
        d0, d1, dp = (np.asarray(r[k]) for k in ("modes_actual_start", "modes_actual_end", "modes_pred_end"))
        out["mean_error"].append(np.max(np.abs(p - a)) / move if move > 0 else np.nan)
        out["mean_move"].append(abs(a[-1] - a[0]))
        out["mode_move"].append(np.linalg.norm(d1 - d0))
        out["mode_pred_error"].append(np.linalg.norm(dp - d1))
        out["mode_size"].append(np.linalg.norm(d0))
        out["index"].append(i)
        f0 = configs[i].get("f0")
        out["fraction"].append(_fraction_travelled(a, f0) if f0 is not None else np.nan)
        out["leading_mode"].append(_leading_class(r, configs[i].get("width")))
        mf = r.get("mean_field")
        if mf is not None:
            from ..dynamics import MeanFieldComparison

            cmp = MeanFieldComparison.from_dict(mf)
            out["eq15_end_error"].append(cmp.eq15_end_error / cmp.projection_excursion if cmp.projection_excursion > 0 else np.nan)
            out["eq9_end_error"].append(cmp.end_error("linearized") / cmp.excursion if cmp.excursion > 0 else np.nan)
        else:
            out["eq15_end_error"].append(np.nan)
            out["eq9_end_error"].append(np.nan)
    res = {k: np.asarray(v, dtype=object if k == "leading_mode" else None) for k, v in out.items()}
    res["moving"] = dynamics.is_moving(res["fraction"])
    return res


#: The groups of Fig. 5 networks the verdicts are split by: (name, moving?, class of v_1).
FIG5_GROUPS = tuple((f"{'moving' if mv else 'still'}_{lab.replace(' ', '_')}", mv, lab)
                    for mv in (True, False) for lab in ("uniform", "not uniform", "not defined"))


def fig5_summary(configs, results) -> dict:
    """Numbers behind the Fig. 5 claims, for networks that move and networks that barely move.

    Each non-diverged network is put in a group ``<moving|still>_<class>``: ``moving`` when its mean
    field travels at least :data:`~nncosmo_helpers.dynamics.MOVING_FRACTION` of the way to f0 (:func:`~nncosmo_helpers.dynamics.fraction_travelled`),
    ``class`` the v_1 decision of :func:`nncosmo_helpers.dynamics.leading_mode_class` (``uniform``,
    ``not_uniform``, ``not_defined``; "not defined" networks are counted, never classified). Per group
    ``g``: ``n_g`` networks, ``seeds_g`` (the seeds present, as text), and, as a seed ensemble
    (:func:`seed_ensemble`: the median over configurations of the per-configuration seed median, with
    ``_seed_lo``/``_seed_hi``), ``mean_error_g`` (max_t |f_bar_pred - f_bar| / max_t |f_bar - f_bar(0)|),
    ``mode_over_mean_g`` (|delta(end) - delta(0)| / |f_bar(end) - f_bar(0)|), ``fraction_g`` (the
    fraction of the way travelled), ``gap_g`` (lambda_1/lambda_2), ``eq15_end_error_g`` and
    ``eq9_end_error_g`` (see :func:`fig5_errors`), and ``mean_error_max_g``. Also ``n``,
    ``diverged``, ``n_seeds``, ``n_moving``, ``fraction_max`` (over all networks).
    """
    e = fig5_errors(configs, results)
    idx = e["index"]
    keys = [tuple((k, v) for k, v in sorted(configs[i].items()) if k != "seed") for i in idx]
    seeds = [configs[i].get("seed", 0) for i in idx]
    gaps = np.array([results[i]["eigenvalues_over_N"][0] / results[i]["eigenvalues_over_N"][1] for i in idx])
    ratio = e["mode_move"] / np.maximum(e["mean_move"], 1e-300)
    out = {"n": len(configs), "diverged": int(sum(r["diverged"] for r in results)),
           "n_seeds": len({c.get("seed", 0) for c in configs}), "n_moving": int(np.sum(e["moving"])),
           "fraction_max": float(np.nanmax(e["fraction"])) if len(idx) and np.isfinite(e["fraction"]).any() else float("nan")}
    for name, mv, lab in FIG5_GROUPS:
        m = (e["moving"] == mv) & (e["leading_mode"] == lab)
        sel = np.flatnonzero(m)
        out[f"n_{name}"] = int(m.sum())
        out[f"seeds_{name}"] = ", ".join(str(s) for s in sorted({seeds[j] for j in sel})) or "none"
        sub = lambda arr: [arr[j] for j in sel]  # noqa: E731
        for stat, arr in (("mean_error", e["mean_error"]), ("mode_over_mean", ratio), ("fraction", e["fraction"]),
                          ("gap", gaps), ("eq15_end_error", e["eq15_end_error"]), ("eq9_end_error", e["eq9_end_error"])):
            _put(out, f"{stat}_{name}", seed_ensemble(sub(arr), sub(keys), sub(seeds)))
        out[f"mean_error_max_{name}"] = float(np.max(e["mean_error"][m])) if m.any() else float("nan")
    return out


def fig5_plot_data(configs, results, n_examples: int = 4) -> tuple:
    """(examples, scatter, hist) for :func:`nncosmo_helpers.plotting.scans.mean_and_modes`."""
    e = fig5_errors(configs, results)
    idx = list(e["index"])
    order = sorted(idx, key=lambda i: -abs(results[i]["mean_actual"][-1] - results[i]["mean_actual"][0]))
    half = max(1, n_examples // 2)  # the largest movers with a uniform and with a non-uniform leading mode
    picks = [i for i in order if _leading_class(results[i], configs[i].get("width")) == "uniform"][:half]
    picks += [i for i in order if _leading_class(results[i], configs[i].get("width")) != "uniform"][:half]
    examples = []
    for i in dict.fromkeys(picks):
        c, r = configs[i], results[i]
        examples.append({"label": f"{c['activation']}, L={c['hidden_layers']}, $W_{{std}}$={c['W_std']:g}, "
                                  f"(m,f0,n)=({c['m']:g},{c['f0']:g},{c['n']}), " + rf"$|v_1\cdot u|$={r['uniform_overlap']:.2f}",
                         "steps": r["steps"], "actual": r["mean_actual"], "pred": r["mean_pred"]})
    overlap = np.array([results[i]["uniform_overlap"] for i in idx])
    scatter = {"move": np.maximum(e["mean_move"], 1e-16), "error": np.maximum(e["mean_error"] * np.array(
        [np.max(np.abs(np.asarray(results[i]["mean_actual"]) - results[i]["mean_actual"][0])) for i in idx]), 1e-16),
        "overlap": overlap}
    hist = {k: np.concatenate([np.abs(results[i][src]) for i in idx]) for k, src in
            (("start", "modes_actual_start"), ("end_actual", "modes_actual_end"), ("end_pred", "modes_pred_end"))}
    hist["mean"] = np.array([abs(results[i]["mean_actual"][-1]) for i in idx])
    return examples, scatter, hist

