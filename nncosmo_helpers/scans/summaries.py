"""Summaries of the scan results used by the chapter: the numbers behind each claim, the plot data and
the sentences (prose helpers) built from them.

Every function takes a figure's results as a table (``pandas.DataFrame``, one row per configuration):
:func:`nncosmo_helpers.scans.frames.from_records` of in-memory configurations and results, or
:func:`nncosmo_helpers.scans.frames.frame` of the stored ones with ``lists=True`` (the Fig. 3 and
Fig. 5 summaries read list-valued fields: the outputs of a diverged run, the mean-field trajectories).
Rows are selected and grouped by column name (hyper-parameters such as ``W_std``, ``interval``, and
``seed``). Configurations without ``dtype``, ``x0`` or ``seed`` count as float64, x0 = 0, seed 0.
Seed ensembles (a median with its range over seeds) are :mod:`nncosmo_helpers.ensemble`'s.
"""

from __future__ import annotations

import numpy as np

from .. import cosmology, dynamics, ensemble
from .grids import ETA_BETA

#: defaults of configuration fields that older or hand-built records may lack
DEFAULTS = {"dtype": "float64", "x0": 0.0, "seed": 0}


# ------------------------------------------------------------------------------------------------
# reading a table
# ------------------------------------------------------------------------------------------------
def _col(df, name: str, default=np.nan) -> np.ndarray:
    """Column ``name`` as a NumPy array; missing entries (or a missing column) are ``default``."""
    if name not in df.columns:
        return np.full(len(df), default, dtype=object if isinstance(default, str) else None)
    col = df[name]
    if default is not np.nan and col.isna().any():
        col = col.astype(object).where(col.notna(), default)
        if not isinstance(default, str):
            col = col.astype(type(default) if all(isinstance(v, type(default)) for v in col) else float)
    return col.to_numpy()


def _x0s(df) -> np.ndarray:
    return _col(df, "x0", DEFAULTS["x0"]).astype(float)


def _dtypes(df) -> np.ndarray:
    return _col(df, "dtype", DEFAULTS["dtype"])


def _seeds(df) -> np.ndarray:
    return _col(df, "seed", DEFAULTS["seed"])


def _keys(df, names=None) -> list[tuple]:
    """Per row: the configuration without its seed, a hashable tuple (``names``: the columns; default the
    table's hyper-parameters, ``df.attrs["hyper_parameters"]``). Missing values become None."""
    if names is None:
        if "hyper_parameters" not in df.attrs:
            raise ValueError("the table does not say which columns are hyper-parameters (df.attrs['hyper_parameters']): "
                             "build it with scans.frames.frame or scans.frames.from_records, or pass the key columns")
        names = df.attrs["hyper_parameters"]
    names = [k for k in names if k != "seed"]
    sub = df[names].astype(object)
    return list(sub.where(sub.notna(), None).itertuples(index=False, name=None))


def seed_spread(df, column: str) -> ensemble.SeedSpread:
    """The ensemble value of ``df[column]`` (:func:`nncosmo_helpers.ensemble.over_seeds` with the median):
    the median over the table's rows (its configurations) computed seed by seed, reported as the median
    over seeds with the range over seeds. Non-finite values are left out and counted (``left_out``)."""
    return ensemble.over_seeds(np.asarray(df[column], dtype=float), list(_seeds(df)))


def _put(out: dict, name: str, st: ensemble.SeedSpread) -> None:
    """``out[name]`` = the ensemble median, ``_seed_lo``/``_seed_hi`` its range over seeds; the
    :class:`~nncosmo_helpers.ensemble.SeedSpread` itself in ``out["spreads"][name]`` (for ``book.claim_spread``)."""
    out[name] = st.median
    out[f"{name}_seed_lo"], out[f"{name}_seed_hi"] = st.low, st.high
    out.setdefault("spreads", {})[name] = st


def _ev(df, j: int) -> np.ndarray:
    """Entry ``j`` of each row's ``eigenvalues_over_N``."""
    return np.array([ev[j] for ev in df["eigenvalues_over_N"]], dtype=float)


def _python(v):
    return v.item() if isinstance(v, np.generic) else v


# ------------------------------------------------------------------------------------------------
# summaries used by the chapter (the verdicts)
# ------------------------------------------------------------------------------------------------
def fig3_deviations(df) -> np.ndarray:
    """Per row: :func:`cosmology.end_deviation` |f_pred_end - f_end| / |f_end - f_init| (NaN for diverged
    runs and runs that did not move)."""
    f_init, f_end = _col(df, "f_init").astype(float), _col(df, "f_end").astype(float)
    f_pred = _col(df, "f_pred_end").astype(float)
    # the prediction starts where the network starts, so its first entry is f_init (end_deviation reads only [-1])
    dev = np.array([cosmology.end_deviation((a, b), (a, p)) for a, b, p in zip(f_init, f_end, f_pred)], dtype=float)
    move = np.abs(f_end - f_init)
    return np.where(df["diverged"].to_numpy(bool) | ~(move > 0), np.nan, dev)


def verdict(holds: bool, yes: str = "Confirmed", no: str = "Not confirmed") -> str:
    """The word the chapter prints for a claim, decided by a measured condition."""
    return yes if bool(holds) else no


def fig3_divergence_sentence(df) -> str:
    """One sentence on the diverged Fig. 3 float64 runs: how many, their stability ratios, their optimisers."""
    rows = df[_dtypes(df) == "float64"]
    bad = rows["diverged"].to_numpy(bool)
    ratios = rows["stability_ratio"].to_numpy(float)
    if not bad.any():
        return (f"none of the {len(rows)} float64 runs diverged; the largest initial stability ratio "
                f"eta L'' alpha / (2 (1 + beta)) is {ratios.max():.3g}.")
    worst_ok = ratios[~bad].max() if (~bad).any() else float("nan")
    least_bad = ratios[bad].min()
    opts = sorted(set(zip(rows["eta"][bad].tolist(), rows["beta"][bad].tolist())))
    return (f"{int(bad.sum())} of the {len(rows)} float64 runs diverged (counted in the figure titles), all with an "
            f"initial stability ratio eta L'' alpha / (2 (1 + beta)) of at least {least_bad:.3g} (the largest ratio "
            f"among the runs that stayed finite is {worst_ok:.3g}); optimisers (eta, beta) involved: "
            f"{', '.join(f'({e:g}, {b:g})' for e, b in opts)}.")


#: Fig. 1: the architecture of a network, without the seed (seed spreads are over these groups)
FIG1_ARCH = ("width", "hidden_layers", "activation", "W_std", "b_std")


def fig1_summary(df) -> dict:
    """Numbers behind the Fig. 1 claims.

    * ``erf_gt_relu``: fraction of matched networks (same width, depth, scales, seed) with
      alpha(erf) > alpha(relu); ``erf_over_relu_median``: the median ratio.
    * ``effect_<factor>``: max - min over the factor's levels of the mean log10 alpha (averaged over
      everything else) -- how many decades a factor moves alpha, for W_std, b_std, activation,
      hidden_layers and width.
    * ``seed_spread_<width>``: median over configurations of std/mean of alpha over seeds.
    * ``inf_dev_<width>``: median |mean_seed alpha - alpha_inf| / alpha_inf.
    """
    d = df.assign(log_alpha=np.log10(df["alpha"].to_numpy(float)), seed=_seeds(df))
    out = {}
    for factor in ("W_std", "b_std", "activation", "hidden_layers", "width"):
        means = d.groupby(factor, sort=False)["log_alpha"].mean()
        out[f"effect_{factor}"] = float(means.max() - means.min())
    pair = [k for k in FIG1_ARCH if k != "activation"] + ["seed"]
    by = d.drop_duplicates(pair + ["activation"], keep="last").pivot(index=pair, columns="activation", values="alpha")
    ratios = (by["erf"] / by["relu"]).dropna().to_numpy() if {"erf", "relu"} <= set(by.columns) else np.array([])
    out["erf_gt_relu"] = float(np.mean(ratios > 1.0))
    out["erf_over_relu_median"] = float(np.median(ratios))
    groups = d.groupby(list(FIG1_ARCH), sort=False).agg(
        mean=("alpha", "mean"), std=("alpha", lambda a: float(np.std(a))), inf=("alpha_infinite_width", "first"))
    groups["spread"] = groups["std"] / groups["mean"]
    groups["dev"] = np.abs(groups["mean"] - groups["inf"]) / groups["inf"]
    for w, g in groups.groupby(level="width", sort=True):
        out[f"seed_spread_{w}"] = float(np.median(g["spread"]))
        out[f"inf_dev_{w}"] = float(np.median(g["dev"]))
    logs = d["log_alpha"].to_numpy()
    out["alpha_min"], out["alpha_max"] = float(10 ** logs.min()), float(10 ** logs.max())
    out["alpha_median"] = float(10 ** np.median(logs))
    return out


def fig3_panels(df) -> list[dict]:
    """Per (input point, precision) -- (0, float64), (0, float32), then (1, float64) when the grid has
    it: movement, deviation, alpha drift and divergence count (the plot data of
    :func:`nncosmo_helpers.plotting.scans.homogeneous_deviations`). ``index``: the rows' labels."""
    dtypes, x0s = _dtypes(df), _x0s(df)
    panels = []
    for x0, dtype in ((0.0, "float64"), (0.0, "float32"), (1.0, "float64")):
        sel = df[(dtypes == dtype) & (x0s == x0)]
        if not len(sel) and x0 != 0.0:
            continue
        div = sel["diverged"].to_numpy(bool)
        ok, bad = sel[~div], sel[div]
        panels.append({
            "title": dtype if x0 == 0.0 else f"{dtype}, $x_0$ = {x0:g}",
            "x0": x0,
            "move": np.abs(ok["f_end"] - ok["f_init"]).to_numpy(float),
            "deviation": np.abs(ok["f_pred_end"] - ok["f_end"]).to_numpy(float),
            "dalpha": (ok["alpha_final"] - ok["alpha_initial"]).to_numpy(float),
            "n_diverged": len(bad), "n": len(sel), "index": list(ok.index),
            "diverged_move": np.array([abs(f[-1] - f0) if len(f) else np.nan for f, f0 in zip(bad["f"], bad["f_init"])]
                                      if len(bad) else [], dtype=float),
        })
    return panels


#: fig3_summary keys that also get a seed range (``<key>_seed_min``, ``<key>_seed_max``).
FIG3_SEED_KEYS = ("median_float64", "median_float32", "frac_below_1pct_float64", "median_discretisation",
                  "median_alpha_drift_part", "frac_above_1pct_drift_dominated", "spearman_dev_dalpha",
                  "max_float32_eta0.0011_beta0.5", "max_float64_eta0.0011_beta0.5")


def fig3_summary(df, *, x0: float = 0.0) -> dict:
    """Numbers behind the Fig. 3 claims at the input point ``x0`` (default 0, the paper comparison).

    The statistics (see below) pool every seed; for the keys of :data:`FIG3_SEED_KEYS` the same
    statistic per seed over the seed subset (:func:`fig3_seeded`, ``n_seed_subset`` runs) gives
    ``<key>_seed_min`` / ``<key>_seed_max`` (the seed spread); ``seeds`` counts the seeds.
    """
    sub = df[_x0s(df) == float(x0)]
    out = _fig3_stats(sub)
    seeds = _seeds(sub)
    out["seeds"] = len(set(seeds.tolist()))
    seeded = fig3_seeded(sub)
    out["n_seed_subset"] = int(seeded.sum())
    per_seed = [_fig3_stats(g) for _, g in sub[seeded].groupby(seeds[seeded], sort=True)]
    for k in FIG3_SEED_KEYS:
        st = ensemble.spread(p[k] for p in per_seed)
        out[f"{k}_seed_min"], out[f"{k}_seed_max"] = st.low, st.high
    # the round-off budget of the per-seed rank correlations: the largest per-seed bound
    out["spearman_dev_dalpha_roundoff_seed_max"] = max((p["spearman_dev_dalpha_roundoff"] for p in per_seed), default=float("nan"))
    return out


def _fig3_stats(df) -> dict:
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

    dev, dtypes = fig3_deviations(df), _dtypes(df)
    diverged = df["diverged"].to_numpy(bool)
    eta, beta = _col(df, "eta"), _col(df, "beta")
    out = {}
    for dtype in ("float64", "float32"):
        m = dtypes == dtype
        d = dev[m & np.isfinite(dev)]
        out[f"n_{dtype}"] = int(m.sum())
        out[f"diverged_{dtype}"] = int(diverged[m].sum())
        out[f"median_{dtype}"] = float(np.median(d)) if d.size else float("nan")
        out[f"p90_{dtype}"] = float(np.percentile(d, 90)) if d.size else float("nan")
        out[f"frac_below_1pct_{dtype}"] = float(np.mean(d < 0.01)) if d.size else float("nan")
        for (e, b) in ETA_BETA:
            mm = m & np.isfinite(dev) & (eta == e) & (beta == b)
            out[f"median_{dtype}_eta{e}_beta{b}"] = float(np.median(dev[mm])) if mm.any() else float("nan")
            out[f"max_{dtype}_eta{e}_beta{b}"] = float(np.max(dev[mm])) if mm.any() else float("nan")
    m64 = (dtypes == "float64") & np.isfinite(dev)
    r = df[m64]
    move = np.abs(r["f_end"] - r["f_init"]).to_numpy(float)
    fdisc = _col(r, "f_disc_end").astype(float)  # NaN: the iteration overflowed
    disc = np.abs(r["f_pred_end"].to_numpy(float) - fdisc) / move
    drift = np.abs(fdisc - r["f_end"].to_numpy(float)) / move
    rel_da = (np.abs(r["alpha_final"] - r["alpha_initial"]) / r["alpha_initial"]).to_numpy(float)
    out["n_iteration_overflow"] = int(np.isnan(fdisc).sum())
    out["median_discretisation"] = float(np.nanmedian(disc)) if np.isfinite(disc).any() else float("nan")
    out["median_alpha_drift_part"] = float(np.nanmedian(drift)) if np.isfinite(drift).any() else float("nan")
    big = (dev[m64] > 0.01) & np.isfinite(fdisc)
    out["n_above_1pct"] = int(big.sum())
    out["frac_above_1pct_drift_dominated"] = float(np.mean(drift[big] > disc[big])) if big.any() else float("nan")
    out["spearman_dev_dalpha"] = float(spearmanr(dev[m64], rel_da).correlation) if len(r) > 2 else float("nan")
    out["spearman_dev_dalpha_roundoff"] = spearman_reorder_bound(dev[m64], rel_da) if len(r) > 2 else float("nan")
    return out


def spearman_reorder_bound(x, y, *, rtol: float = 1e-6) -> float:
    """An upper bound on the change of Spearman's rho(x, y) if values that agree within ``rtol`` were reordered.

    A rank correlation is not continuous in its data: two networks whose deviations agree to round-off
    (the still networks all sit at the one-step lag 1/steps) can swap ranks on another CPU or after a
    round-off-level change of the code, and rho jumps. Budget: sort each variable, group consecutive
    values within ``rtol`` (relative) into clusters; a permutation inside a cluster of size k moves the
    rank of each of its members by at most k - 1. With rho = 1 - 6 sum d^2 / (n (n^2 - 1)), |d| <= n - 1
    and a rank change s_i = (k_x - 1) + (k_y - 1) of element i (its clusters in x and in y),
    |delta sum d^2| <= sum_i (2 (n - 1) s_i + s_i^2).

    Limits, stated: the formula for rho holds for distinct ranks; with exact ties SciPy uses average
    ranks (Pearson on ranks), which this bound does not cover rigorously (a cluster of exact ties is
    treated like any other cluster). ``rtol`` is one relative round-off for both variables, the
    deviations' budget of the quantitative chapter; a variable with a larger absolute round-off near 0
    would need an absolute floor.
    """
    n = len(x)
    shifts = np.zeros(n)
    for v in (np.asarray(x, dtype=float), np.asarray(y, dtype=float)):
        order = np.argsort(v, kind="stable")
        w = v[order]
        # a new cluster starts where the gap to the previous value exceeds rtol of the larger one
        new = ~(np.abs(np.diff(w)) <= rtol * np.maximum(np.abs(w[1:]), np.abs(w[:-1])))
        label = np.cumsum(np.r_[True, new])
        sizes = np.bincount(label)[label]
        shifts[order] += sizes - 1
    return float(6.0 * np.sum(2.0 * (n - 1) * shifts + shifts**2) / (n * (n * n - 1.0)))


#: Bin edges of the fraction of the way to f0 travelled (:func:`fig3_by_fraction`); MOVING_FRACTION
#: (0.1) is an edge, so the bins at and above it hold the moving networks.
FIG3_FRACTION_EDGES = (0.0, 1e-3, 1e-2, 0.1, 0.5, np.inf)


def fig3_fractions(df) -> np.ndarray:
    """Per row: the fraction of the way to f0 travelled (NaN for diverged runs).

    Computed from the record (f_init, f_end, the configuration's f0) with
    :func:`~nncosmo_helpers.dynamics.fraction_travelled`, so records without the stored field work too.
    """
    with np.errstate(invalid="ignore"):
        frac = dynamics.fraction_travelled(_col(df, "f_init").astype(float), _col(df, "f_end").astype(float),
                                           _col(df, "f0").astype(float))
    return np.where(df["diverged"].to_numpy(bool), np.nan, frac)


def fig3_seeded(df) -> np.ndarray:
    """Per row: whether it belongs to the seed subset, i.e. the same configuration (all hyper-parameters
    but ``seed``) is in the table for every seed that occurs. Seed spreads are taken over this subset,
    so that each seed's statistic is over the same networks."""
    if not len(df):
        return np.zeros(0, dtype=bool)
    seeds = _seeds(df)
    keys = _keys(df)
    have = {}
    for k, s in zip(keys, seeds.tolist()):
        have.setdefault(k, set()).add(s)
    every = set(seeds.tolist())
    return np.array([have[k] == every for k in keys])


def _seed_stat(values, seeds, mask, seeded, stat=np.median):
    """(statistic of ``values[mask]`` with all seeds pooled, the statistic per seed over the seed subset
    ``mask & seeded`` as an :class:`~nncosmo_helpers.ensemble.SeedSpread`); seeds without runs are skipped."""
    pooled = float(stat(values[mask])) if mask.any() else float("nan")
    m = mask & seeded
    return pooled, ensemble.over_seeds(values[m], seeds[m], stat)


def fig3_by_fraction(df, *, x0=None, dtype: str = "float64", edges=FIG3_FRACTION_EDGES) -> list[dict]:
    """The relative deviation |f_pred - f_end| / |f_end - f_init| in bins of the fraction travelled.

    ``x0``: one input point, or ``None`` for all. Per bin [lo, hi): ``n`` runs, ``median`` deviation
    (all seeds pooled), ``seed_medians`` (the median per seed over the seed subset, :func:`fig3_seeded`),
    ``seed_spread`` (max - min of those),
    ``frac_below_1pct``, ``seeds`` (how many seeds have runs in the bin). Diverged runs are left out.
    """
    dev, frac, seeds = fig3_deviations(df), fig3_fractions(df), _seeds(df)
    base = (_dtypes(df) == dtype) & ((_x0s(df) == float(x0)) if x0 is not None else True)
    base &= np.isfinite(dev) & np.isfinite(frac)
    seeded = fig3_seeded(df)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = base & (frac >= lo) & (frac < hi)
        med, per = _seed_stat(dev, seeds, m, seeded)
        rows.append({"lo": float(lo), "hi": float(hi), "n": int(m.sum()), "median": med, "seed_medians": list(per.values),
                     "seed_spread": per.spread if per.n_seeds else float("nan"), "seeds": per.n_seeds,
                     "frac_below_1pct": float(np.mean(dev[m] < 0.01)) if m.any() else float("nan")})
    return rows


def fig3_moving_summary(df, *, threshold=None) -> dict:
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
    threshold = dynamics.MOVING_FRACTION if threshold is None else threshold
    dev, frac, seeds, x0s = fig3_deviations(df), fig3_fractions(df), _seeds(df), _x0s(df)
    f64 = (_dtypes(df) == "float64") & np.isfinite(dev) & np.isfinite(frac)
    alpha = df["alpha_initial"].to_numpy(float)
    w_std = _col(df, "W_std")
    seeded = fig3_seeded(df)
    out = {"threshold": float(threshold)}
    for where, wm in (("x0", x0s == 0.0), ("x1", x0s == 1.0), ("all", np.ones(len(df), bool))):
        base = f64 & wm
        out[f"fraction_median_{where}"] = float(np.median(frac[base])) if base.any() else float("nan")
        out[f"frac_moving_{where}"] = float(np.mean(dynamics.is_moving(frac[base], threshold))) if base.any() else float("nan")
        out[f"alpha_median_{where}"] = float(np.median(alpha[base])) if base.any() else float("nan")
        for ws in sorted({v for v in w_std.tolist() if v == v}):
            mw = base & (w_std == ws)
            out[f"alpha_median_{where}_W{ws:g}"] = float(np.median(alpha[mw])) if mw.any() else float("nan")
        for group, gm in (("moving", dynamics.is_moving(frac, threshold)), ("still", ~dynamics.is_moving(frac, threshold))):
            m = base & gm
            med, per = _seed_stat(dev, seeds, m, seeded)
            out[f"n_{group}_{where}"] = int(m.sum())
            out[f"median_{group}_{where}"] = med
            out[f"seed_min_{group}_{where}"] = per.low
            out[f"seed_max_{group}_{where}"] = per.high
            out[f"seeds_{group}_{where}"] = per.n_seeds
            ms = m & seeded
            out[f"subset_median_{group}_{where}"] = float(np.median(dev[ms])) if ms.any() else float("nan")
            out[f"n_subset_{group}_{where}"] = int(ms.sum())
            out[f"frac_below_1pct_{group}_{where}"] = float(np.mean(dev[m] < 0.01)) if m.any() else float("nan")
    return out


def fig3_moving_sentence(df, *, threshold=None) -> str:
    """Which float64 runs moved at least ``threshold`` of the way to f0: counts by input point, loss
    scale m, exponent n, activation, depth and W_std (the networks a "moving" verdict rests on)."""
    threshold = dynamics.MOVING_FRACTION if threshold is None else threshold
    frac = fig3_fractions(df)
    m = (_dtypes(df) == "float64") & dynamics.is_moving(frac, threshold)
    if not m.any():
        return f"no float64 run moved {threshold:g} of the way to f0."
    rows = df[m]

    def counts(key, fmt="{:g}"):
        col = _col(rows, key, DEFAULTS.get(key, 0.0)).tolist()
        return ", ".join(f"{fmt.format(v)}: {col.count(v)}" for v in sorted(set(col), key=str))

    return (f"{len(rows)} float64 runs (by input point x0 {counts('x0')}; by m {counts('m')}; by n {counts('n')}; "
            f"by activation {counts('activation', '{}')}; by depth {counts('hidden_layers')}; by W_std {counts('W_std')}; "
            f"by seed {counts('seed')})")


# ------------------------------------------------------------------------------------------------
# Figs. 4 and 5: seed ensembles, the leading-mode class, networks that move
# ------------------------------------------------------------------------------------------------
def _fraction_travelled(f_bar, f0) -> float:
    """dynamics.fraction_travelled of a mean-field trajectory ``f_bar`` (first entry t = 0, last t = T)."""
    f_bar = np.asarray(f_bar, dtype=float)
    return float(dynamics.fraction_travelled(f_bar[0], f_bar[-1], f0))


def _leading_classes(df) -> np.ndarray:
    """The one v1 decision (dynamics.leading_mode_class) of each Fig. 4/5 row: lambda_1/lambda_2 from the
    record's ``lambda_ratio`` (or its eigenvalues), the degeneracy threshold
    :func:`dynamics.degeneracy_ratio` of the row's width (the paper's width when the row has none)."""
    ratio = _col(df, "lambda_ratio").astype(float)
    if np.isnan(ratio).any():
        ev1, ev2 = _ev(df, 0), _ev(df, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(np.isnan(ratio), np.where(ev2 > 0, ev1 / ev2, np.inf), ratio)
    widths = _col(df, "width", dynamics.PAPER_WIDTH).tolist()
    degeneracy = np.array([dynamics.degeneracy_ratio(w) for w in widths]) if len(widths) else np.zeros(0)
    return dynamics.leading_mode_class(df["uniform_overlap"].to_numpy(float), ratio, degeneracy=degeneracy)


#: Fig. 4: the configuration key of a network within one interval, without the seed (the Fig. 1 partner and
#: the configuration count use it; the seed ensembles are per seed, :func:`seed_spread`)
FIG4_KEYS = ("width", "hidden_layers", "activation", "W_std", "b_std")


def fig4_frame(df4, df1):
    """The Fig. 4 networks that have a Fig. 1 partner (same architecture and seed), with its ``alpha``.

    Columns added to Fig. 4's: ``alpha`` (Fig. 1, the same network), ``lambda1`` (= lambda_1/N),
    ``lambda2`` (lambda_2/N), ``ratio`` = (lambda_1/N)/alpha, ``gap`` = lambda_1/lambda_2 and
    ``leading_mode`` (the class of v_1, :func:`nncosmo_helpers.dynamics.leading_mode_class`). Rows keep
    Fig. 4's order; networks without a partner are dropped.
    """
    on = list(FIG4_KEYS) + ["seed"]
    alpha = df1.assign(seed=_seeds(df1))[on + ["alpha"]].drop_duplicates(on, keep="last")
    f4 = df4.assign(seed=_seeds(df4)).merge(alpha, on=on, how="inner", validate="many_to_one")
    f4.attrs = dict(df4.attrs)
    lam1, lam2 = f4["lambda1_over_N"].to_numpy(float), _ev(f4, 1)
    return f4.assign(lambda1=lam1, lambda2=lam2, ratio=lam1 / f4["alpha"].to_numpy(float), gap=lam1 / lam2,
                     leading_mode=_leading_classes(f4))


def fig4_summary(f4) -> dict:
    """Per interval ``k``: the numbers behind the Fig. 4 claims, each over configurations and seeds
    (``f4``: :func:`fig4_frame`).

    ``ratio_median_k`` (with ``_seed_lo``/``_seed_hi``, see :func:`seed_spread`):
    (lambda_1/N)/alpha; ``ratio_min_k``/``ratio_max_k`` over every network; ``within_factor2_k``:
    fraction of networks with 0.5 < ratio < 2; ``gap_median_k`` (and seed spread): lambda_1/lambda_2;
    ``overlap_median_k``: |v_1 . u|; ``n_uniform_k``, ``n_not_uniform_k``, ``n_not_defined_k``: networks
    in each class of :func:`nncosmo_helpers.dynamics.leading_mode_class`, ``frac_uniform_k`` the uniform
    fraction among all networks; ``n_networks_k``, ``n_configs_k``, ``n_seeds``. ``spreads``: the
    :class:`~nncosmo_helpers.ensemble.SeedSpread` of every ensemble number.
    """
    out = {}
    for interval, p in f4.groupby("interval", sort=True):
        k = f"{interval:g}"
        st = seed_spread(p, "ratio")
        _put(out, f"ratio_median_{k}", st)
        ratio = p["ratio"].to_numpy(float)
        fin = np.isfinite(ratio)
        out[f"n_networks_{k}"] = int(fin.sum())
        out[f"n_configs_{k}"] = len(set(k_ for k_, ok in zip(_keys(p, FIG4_KEYS), fin) if ok))
        out["n_seeds"] = st.n_seeds
        out[f"ratio_min_{k}"] = float(ratio.min())
        out[f"ratio_max_{k}"] = float(ratio.max())
        out[f"within_factor2_{k}"] = float(np.mean((ratio > 0.5) & (ratio < 2)))
        _put(out, f"gap_median_{k}", seed_spread(p, "gap"))
        out[f"overlap_median_{k}"] = seed_spread(p, "uniform_overlap").median
        cls = p["leading_mode"].to_numpy(object)
        for label in ("uniform", "not uniform", "not defined"):
            out[f"n_{label.replace(' ', '_')}_{k}"] = int(np.sum(cls == label))
        out[f"frac_uniform_{k}"] = float(np.mean(cls == "uniform"))
    return out


def fig4_gap_table(f4, scales=None) -> list[dict]:
    """The eigenvalue hierarchy lambda_1/lambda_2 per architecture measured in Fig. 4 (``f4``: :func:`fig4_frame`).

    One row per (W_std, b_std, interval, hidden layers, activation, width), restricted to the
    (W_std, b_std) pairs ``scales`` (default: every pair in the table): ``gap`` (median over seeds),
    ``gap_min``/``gap_max`` over seeds, ``n_seeds`` and the classes of v_1 over the seeds
    (``uniform``, ``not uniform``, ``not defined`` counts).
    """
    by = ["W_std", "b_std", "interval", "hidden_layers", "activation", "width"]
    if scales is not None:
        f4 = f4[[(ws, bs) in set(scales) for ws, bs in zip(f4["W_std"].tolist(), f4["b_std"].tolist())]]
    out = []
    for key, g in f4.groupby(by, sort=False):
        gaps, cls = g["gap"].to_numpy(float), g["leading_mode"].tolist()
        out.append({**{k: _python(v) for k, v in zip(by, key)}, "gap": float(np.median(gaps)),
                    "gap_min": float(gaps.min()), "gap_max": float(gaps.max()), "n_seeds": len(g),
                    **{lab: cls.count(lab) for lab in ("uniform", "not uniform", "not defined")}})
    return sorted(out, key=lambda r: tuple(str(r[k]) for k in by))


def fig5_errors(df):
    """The non-diverged rows of ``df`` with the mean-field prediction error, the movement and the v_1 class.

    Columns added: ``mean_error`` = max_t |f_bar_pred - f_bar| / max_t |f_bar - f_bar(0)|,
    ``mean_move`` = |f_bar(end) - f_bar(0)|, ``mode_move`` = |delta(end) - delta(0)| (2-norm over
    modes), ``mode_pred_error`` = |delta_pred(end) - delta(end)|, ``mode_size`` = |delta(0)|,
    ``fraction`` = the fraction of the way to f0 the mean field travelled
    (:func:`~nncosmo_helpers.dynamics.fraction_travelled`; NaN when the configuration has no ``f0``), ``moving`` =
    fraction >= :data:`~nncosmo_helpers.dynamics.MOVING_FRACTION`, ``eq15_end_error`` = |f_bar_eq15(T) - f_bar(T)| /
    |f_bar(T) - f_bar(0)| and ``eq9_end_error`` = the same for the plain mean output against the
    frozen full kernel (eq. 9: no reduction to one mode, so it holds the lag and the kernel drift
    only), both from the record's ``mean_field`` (NaN without it), ``leading_mode`` = the class of v_1
    (:func:`nncosmo_helpers.dynamics.leading_mode_class`). The index is ``df``'s.
    """
    from ..dynamics import MeanFieldComparison

    e = df[~df["diverged"].to_numpy(bool)]
    f0s = _col(e, "f0").astype(float)
    cols = {k: [] for k in ("mean_error", "mean_move", "mode_move", "mode_pred_error", "mode_size", "fraction",
                            "eq15_end_error", "eq9_end_error")}
    mfs = e["mean_field"] if "mean_field" in e.columns else [None] * len(e)
    for a, p, d0, d1, dp, f0, mf in zip(e["mean_actual"], e["mean_pred"], e["modes_actual_start"], e["modes_actual_end"],
                                         e["modes_pred_end"], f0s, mfs):
        a, p = np.asarray(a), np.asarray(p)
        d0, d1, dp = np.asarray(d0), np.asarray(d1), np.asarray(dp)
        move = np.max(np.abs(a - a[0]))
        cols["mean_error"].append(np.max(np.abs(p - a)) / move if move > 0 else np.nan)
        cols["mean_move"].append(abs(a[-1] - a[0]))
        cols["mode_move"].append(np.linalg.norm(d1 - d0))
        cols["mode_pred_error"].append(np.linalg.norm(dp - d1))
        cols["mode_size"].append(np.linalg.norm(d0))
        cols["fraction"].append(_fraction_travelled(a, f0) if np.isfinite(f0) else np.nan)
        if isinstance(mf, dict):
            cmp = MeanFieldComparison.from_dict(mf)
            eq15 = cosmology.end_deviation(cmp.observed_projection, cmp.eq15)
            eq9 = cosmology.end_deviation(cmp.observed_mean, cmp.linearized_mean)
            cols["eq15_end_error"].append(eq15 if cmp.projection_excursion > 0 else np.nan)
            cols["eq9_end_error"].append(eq9 if cmp.excursion > 0 else np.nan)
        else:
            cols["eq15_end_error"].append(np.nan)
            cols["eq9_end_error"].append(np.nan)
    out = e.assign(**{k: np.asarray(v, dtype=float) for k, v in cols.items()}, leading_mode=_leading_classes(e))
    out["moving"] = dynamics.is_moving(out["fraction"].to_numpy(float)) if len(out) else np.zeros(0, dtype=bool)
    out.attrs = dict(df.attrs)
    return out


#: The groups of Fig. 5 networks the verdicts are split by: (name, moving?, class of v_1).
FIG5_GROUPS = tuple((f"{'moving' if mv else 'still'}_{lab.replace(' ', '_')}", mv, lab)
                    for mv in (True, False) for lab in ("uniform", "not uniform", "not defined"))


def fig5_summary(df) -> dict:
    """Numbers behind the Fig. 5 claims, for networks that move and networks that barely move.

    Each non-diverged network is put in a group ``<moving|still>_<class>``: ``moving`` when its mean
    field travels at least :data:`~nncosmo_helpers.dynamics.MOVING_FRACTION` of the way to f0 (:func:`~nncosmo_helpers.dynamics.fraction_travelled`),
    ``class`` the v_1 decision of :func:`nncosmo_helpers.dynamics.leading_mode_class` (``uniform``,
    ``not_uniform``, ``not_defined``; "not defined" networks are counted, never classified). Per group
    ``g``: ``n_g`` networks, ``seeds_g`` (the seeds present, as text), and, as a seed ensemble
    (:func:`seed_spread`: the median over seeds of the per-seed median over configurations, with
    ``_seed_lo``/``_seed_hi``), ``mean_error_g`` (max_t |f_bar_pred - f_bar| / max_t |f_bar - f_bar(0)|),
    ``mode_over_mean_g`` (|delta(end) - delta(0)| / |f_bar(end) - f_bar(0)|), ``fraction_g`` (the
    fraction of the way travelled), ``gap_g`` (lambda_1/lambda_2), ``eq15_end_error_g`` and
    ``eq9_end_error_g`` (see :func:`fig5_errors`), and ``mean_error_max_g``. Also ``n``,
    ``diverged``, ``n_seeds``, ``n_moving``, ``fraction_max`` (over all networks); ``spreads``: the
    :class:`~nncosmo_helpers.ensemble.SeedSpread` of every ensemble number.
    """
    e = fig5_errors(df)
    e = e.assign(seed=_seeds(e), gap=_ev(e, 0) / _ev(e, 1) if len(e) else np.zeros(0),
                 mode_over_mean=e["mode_move"] / np.maximum(e["mean_move"], 1e-300))
    frac = e["fraction"].to_numpy(float)
    out = {"n": len(df), "diverged": int(df["diverged"].sum()), "n_seeds": len(set(_seeds(df).tolist())),
           "n_moving": int(e["moving"].sum()),
           "fraction_max": float(np.nanmax(frac)) if len(e) and np.isfinite(frac).any() else float("nan")}
    for name, mv, lab in FIG5_GROUPS:
        g = e[(e["moving"] == mv) & (e["leading_mode"] == lab)]
        out[f"n_{name}"] = len(g)
        out[f"seeds_{name}"] = ", ".join(str(s) for s in sorted(set(g["seed"].tolist()))) or "none"
        for stat in ("mean_error", "mode_over_mean", "fraction", "gap", "eq15_end_error", "eq9_end_error"):
            _put(out, f"{stat}_{name}", seed_spread(g, stat))
        out[f"mean_error_max_{name}"] = float(np.max(g["mean_error"].to_numpy(float))) if len(g) else float("nan")
    return out


def fig5_plot_data(df, n_examples: int = 4) -> tuple:
    """(examples, scatter, hist) for :func:`nncosmo_helpers.plotting.scans.mean_and_modes`."""
    e = fig5_errors(df)
    order = sorted(e.index, key=lambda i: -abs(e.at[i, "mean_actual"][-1] - e.at[i, "mean_actual"][0]))
    half = max(1, n_examples // 2)  # the largest movers with a uniform and with a non-uniform leading mode
    picks = [i for i in order if e.at[i, "leading_mode"] == "uniform"][:half]
    picks += [i for i in order if e.at[i, "leading_mode"] != "uniform"][:half]
    steps = "result.steps" if "result.steps" in e.columns else "steps"  # the record's steps, not the configuration's
    examples = []
    for i in dict.fromkeys(picks):
        r = e.loc[i]
        examples.append({"label": f"{r['activation']}, L={r['hidden_layers']}, $W_{{std}}$={r['W_std']:g}, "
                                  f"(m,f0,n)=({r['m']:g},{r['f0']:g},{r['n']}), " + rf"$|v_1\cdot u|$={r['uniform_overlap']:.2f}",
                         "steps": r[steps], "actual": r["mean_actual"], "pred": r["mean_pred"]})
    excursion = np.array([np.max(np.abs(np.asarray(a) - a[0])) for a in e["mean_actual"]])
    scatter = {"move": np.maximum(e["mean_move"].to_numpy(float), 1e-16),
               "error": np.maximum(e["mean_error"].to_numpy(float) * excursion, 1e-16),
               "overlap": e["uniform_overlap"].to_numpy(float)}
    hist = {k: np.concatenate([np.abs(v) for v in e[src]]) for k, src in
            (("start", "modes_actual_start"), ("end_actual", "modes_actual_end"), ("end_pred", "modes_pred_end"))}
    hist["mean"] = np.array([abs(a[-1]) for a in e["mean_actual"]])
    return examples, scatter, hist
