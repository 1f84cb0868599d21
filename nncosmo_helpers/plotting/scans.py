"""Figures of the chapter "Quantitative scans" (the paper's Figs. 1-5).

Figs. 1 and 4 take a figure's table (a ``pandas.DataFrame``, one row per network:
:func:`nncosmo_helpers.scans.frames.from_records` or :func:`~nncosmo_helpers.scans.frames.frame`, and for Fig. 4
:func:`nncosmo_helpers.scans.summaries.fig4_frame`) and group it by column name; Figs. 3 and 5 take the
plot data of their summaries. Every function returns a matplotlib figure.
"""

from __future__ import annotations

import matplotlib.colors as mcolors
import matplotlib.lines as mlines
import matplotlib.pyplot as plt
import numpy as np

from . import COLORS, finish, new_figure, use_style

W_COLORS = {1.0: "#1f77b4", 0.1: "#ff7f0e"}  # as the paper: W_std 1 blue, 0.1 orange
B_ALPHA = {0.001: 0.3, 0.005: 0.45, 0.01: 0.6, 0.05: 0.8, 0.5: 1.0}  # visibility grows with b_std
WIDTH_SIZE = {100: 14, 1000: 36, 10000: 80}  # marker area grows with the width
X0_COLORS = ("#1f77b4", "#d62728", "#2ca02c")  # Fig. 3 input points, in increasing order


def _layer_axis(ax, layers):
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels([str(L) for L in layers])
    ax.set_xlabel("hidden layers")


def alpha_at_init(df):
    """Fig. 1: alpha = Theta(0, 0) at initialisation, one panel per activation (``df``: Fig. 1's table).

    x: hidden layers, spread by b_std (left to right: increasing) and width (increasing marker
    size); colour: W_std; dots: mean over seeds, bars: min-max over seeds; black dash: the
    infinite-width value.
    """
    acts, layers, b_stds, widths = (sorted(df[k].unique().tolist()) for k in ("activation", "hidden_layers", "b_std", "width"))
    fig, axes = new_figure(ncols=len(acts), width=10.0, height=4.2, sharey=True)
    groups = df.groupby(["activation", "hidden_layers", "W_std", "b_std", "width"], sort=False)
    for ax, act in zip(np.atleast_1d(axes), acts):
        for (a, L, ws, bs, w), members in groups:
            if a != act:
                continue
            vals = members["alpha"].to_numpy(float)
            xpos = layers.index(L) + 0.7 * (b_stds.index(bs) - (len(b_stds) - 1) / 2) / len(b_stds)
            xpos += 0.035 * (widths.index(w) - (len(widths) - 1) / 2) + (0.012 if ws == 0.1 else -0.012)
            color = W_COLORS.get(ws, "0.3")
            ax.errorbar([xpos], [vals.mean()], yerr=[[vals.mean() - vals.min()], [vals.max() - vals.mean()]],
                        fmt="none", ecolor=color, alpha=B_ALPHA.get(bs, 1.0), lw=0.8)
            ax.scatter([xpos], [vals.mean()], s=WIDTH_SIZE.get(w, 30), color=color, alpha=B_ALPHA.get(bs, 1.0),
                       edgecolors="none")
            if w == widths[-1]:
                inf = members["alpha_infinite_width"].iloc[0]
                ax.plot([xpos - 0.05, xpos + 0.05], [inf, inf], color="k", lw=1.0)
        ax.set_yscale("log")
        ax.set_title(act)
        _layer_axis(ax, layers)
    np.atleast_1d(axes)[0].set_ylabel(r"$\alpha = \Theta(x_0, x_0)$ at initialisation")
    handles = [mlines.Line2D([], [], color=W_COLORS[w], marker="o", ls="none", label=rf"$W_{{\rm std}}={w:g}$") for w in (1.0, 0.1)]
    handles += [mlines.Line2D([], [], color="0.4", marker="o", ls="none", markersize=np.sqrt(WIDTH_SIZE.get(w, 30)),
                              label=f"width {w}") for w in widths]
    handles += [mlines.Line2D([], [], color="k", lw=1.0, label="infinite width")]
    np.atleast_1d(axes)[0].legend(handles=handles, loc="upper left", fontsize=8)
    return finish(fig)


def vacuum_region(losses, betas, eta_max, points=None):
    """Fig. 2: eta_max(beta) = (1 - beta)^2/(3 alpha L(f_init)) for each loss, one panel per n.

    Below a line the vacuum energy V0 dominates alpha L. ``eta_max``: one curve over ``betas`` per
    loss (:func:`~nncosmo_helpers.cosmology.eta_max_vacuum` at the alpha used, e.g. the median of
    Fig. 1); ``points``: optional (eta, beta) pairs (the Fig. 3 optimisers) to mark.
    """
    ns = sorted({lo.n for lo in losses})
    fig, axes = new_figure(ncols=len(ns), width=10.0, height=4.0, sharey=True)
    m_colors = {0.01: "C0", 0.1: "C1", 0.2: "C3"}
    for ax, n in zip(np.atleast_1d(axes), ns):
        for lo, y in zip(losses, eta_max):
            if lo.n != n:
                continue
            ls = "-" if lo.f0 == 1.0 else "--"
            ax.semilogy(betas, y, ls=ls, color=m_colors.get(lo.m, "0.3"), label=rf"$m={lo.m:g},\ f_0={lo.f0:g}$")
            ax.fill_between(betas, 1e-12, y, color=m_colors.get(lo.m, "0.3"), alpha=0.04)
        if points is not None:
            e, b = np.asarray(points).T
            ax.scatter(b, e, marker="*", s=70, color="k", zorder=5, label=r"Fig. 3 $(\eta, \beta)$")
        ax.set_title(rf"$n = {n}$")
        ax.set_xlabel(r"momentum $\beta$")
    ax0 = np.atleast_1d(axes)[0]
    ax0.set_ylabel(r"$\eta_{\max} = (1-\beta)^2 / (3\alpha\mathcal{L}(f_{\rm init}))$")
    ax0.set_ylim(1e-4, 1e8)
    np.atleast_1d(axes)[-1].legend(loc="lower left", fontsize=7.5, ncol=2)
    return finish(fig)


def homogeneous_deviations(panels):
    """Fig. 3: |predicted - actual| output after 1000 steps against |f_end - f_init|.

    Args:
        panels: list of dicts ``title``, ``move``, ``deviation``, ``dalpha`` (arrays over the
            non-diverged configurations) and ``n_diverged``.

    Colour: alpha(t_max) - alpha(0) (symmetric log scale). Grey lines: deviation = movement and
    deviation = 1e-3 movement (one step of 1000). Diverged runs (``diverged_move``: distance moved
    before the divergence, clipped to the panel) are black crosses on the top edge.
    """
    fig, axes = new_figure(nrows=len(panels), width=7.0, height=3.6 * len(panels), sharey=True,
                           squeeze=False)
    axes = axes[:, 0]
    all_da = np.concatenate([np.asarray(p["dalpha"]) for p in panels])
    lim = max(np.nanmax(np.abs(all_da)), 1e-8)
    norm = mcolors.SymLogNorm(linthresh=1e-6, vmin=-lim, vmax=lim, base=10)
    sc = None
    for ax, p in zip(np.atleast_1d(axes), panels):
        move, dev, da = (np.asarray(p[k], dtype=float) for k in ("move", "deviation", "dalpha"))
        ok = (move > 0) & (dev > 0)
        sc = ax.scatter(move[ok], dev[ok], c=da[ok], cmap="coolwarm", norm=norm, s=9, edgecolors="none")
        xx = np.geomspace(max(move[ok].min(), 1e-12), move[ok].max(), 10)
        ax.loglog(xx, xx, color="0.5", lw=0.8)
        ax.loglog(xx, 1e-3 * xx, color="0.5", lw=0.8, ls=":")
        dm = np.asarray(p.get("diverged_move", []), dtype=float)
        dm = dm[np.isfinite(dm) & (dm > 0)]
        if dm.size:  # diverged runs: x at the top, at the distance moved before the divergence (clipped)
            dm = np.clip(dm, xx.min(), xx.max())
            ax.scatter(dm, np.full(dm.shape, 1.0), marker="x", color="k", s=18, lw=0.8,
                       transform=ax.get_xaxis_transform(), clip_on=False, label="diverged")
            ax.legend(loc="lower right", fontsize=8)
        ax.set_title(f"{p['title']}  ({p['n_diverged']} diverged)")
        ax.set_xlabel(r"$|f_{\rm end} - f_{\rm init}|$")
        ax.set_ylabel(r"$|f_{\rm pred} - f_{\rm end}|$ (eq. 7, $\alpha(0)$)")
    cb = fig.colorbar(sc, ax=axes, shrink=0.9)
    cb.set_label(r"$\alpha(t_{\max}) - \alpha(0)$")
    return finish(fig)


def deviation_vs_fraction(points, bins, *, threshold, bar=0.01, lag=None):
    """Fig. 3 (extension): relative deviation against the fraction of the way to f0 travelled.

    Args:
        points: dict of arrays over the non-diverged float64 runs: ``fraction``, ``deviation``
            (|f_pred - f_end| / |f_end - f_init|) and ``x0`` (the input point; one colour each).
        bins: per input point, the rows of :func:`nncosmo_helpers.scans.summaries.fig3_by_fraction`
            (``{x0: rows}``); drawn as the median per bin (seeds pooled, square) and a bar spanning the
            per-seed medians on the seed subset.
        threshold: the "moving" fraction (vertical dashed line); ``bar``: the claim's 1 % bar;
            ``lag``: the one-step lag 1/steps (horizontal dotted line), if given.
    """
    fig, ax = new_figure(width=7.0, height=4.0)
    frac, dev, x0 = (np.asarray(points[k], dtype=float) for k in ("fraction", "deviation", "x0"))
    ok = (frac > 0) & (dev > 0)
    for j, xv in enumerate(sorted(set(x0[ok].tolist()))):
        m = ok & (x0 == xv)
        color = X0_COLORS[j % len(X0_COLORS)]
        ax.scatter(frac[m], dev[m], s=6, color=color, alpha=0.35, edgecolors="none", label=f"$x_0$ = {xv:g}")
        rows = [r for r in bins.get(xv, []) if r["n"] > 0]
        if rows:
            centre = np.array([np.sqrt(max(r["lo"], 1e-5) * min(r["hi"], 2.0)) for r in rows])
            med = np.array([r["median"] for r in rows])
            lo = np.array([min(r["seed_medians"]) for r in rows])
            hi = np.array([max(r["seed_medians"]) for r in rows])
            ax.vlines(centre * (1 + 0.15 * j), lo, hi, color=color, lw=2.0, alpha=0.8)
            ax.scatter(centre * (1 + 0.15 * j), med, marker="s", s=36, color=color, edgecolors="k", zorder=3,
                       label=f"median per bin, $x_0$ = {xv:g} (bar: per-seed medians on the seed subset)")
    ax.axvline(threshold, color="0.3", ls="--", lw=0.9, label=f"moving: fraction $\\geq$ {threshold:g}")
    ax.axhline(bar, color="0.5", lw=0.8, label=f"{bar:.0%} bar")
    if lag is not None:
        ax.axhline(lag, color="0.5", lw=0.8, ls=":", label="one-step lag 1/steps")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"fraction of the way to $f_0$: $|f_{\rm end} - f_{\rm init}| / |f_0 - f_{\rm init}|$")
    ax.set_ylabel(r"$|f_{\rm pred} - f_{\rm end}| / |f_{\rm end} - f_{\rm init}|$")
    ax.legend(fontsize=7, loc="best")
    return finish(fig)


def eigenvalue_vs_alpha(f4):
    """Fig. 4: lambda_1/N on 100 inputs against alpha of the same network at x0 = 0, one panel per interval.

    Args:
        f4: :func:`nncosmo_helpers.scans.summaries.fig4_frame` (columns ``interval``, ``alpha``,
            ``lambda1``, ``W_std``, ``width``, ``b_std``).
    """
    panels = list(f4.groupby("interval", sort=True))
    fig, axes = new_figure(ncols=len(panels), width=10.0, height=4.2, sharey=True)
    for ax, (interval, p) in zip(np.atleast_1d(axes), panels):
        a, lam = p["alpha"].to_numpy(float), p["lambda1"].to_numpy(float)
        for ai, li, w, ws, bs in zip(a, lam, p["width"].tolist(), p["W_std"].tolist(), p["b_std"].tolist()):
            ax.scatter([ai], [li], s=WIDTH_SIZE.get(w, 30), color=W_COLORS.get(ws, "0.3"),
                       alpha=B_ALPHA.get(bs, 1.0), edgecolors="none")
        lo, hi = min(a.min(), lam.min()), max(a.max(), lam.max())
        ax.loglog([lo, hi], [lo, hi], color="0.5", lw=0.8, label=r"$\lambda_1/N = \alpha$")
        ax.set_title(f"interval = {interval:g} Hubble length")
        ax.set_xlabel(r"$\alpha = \Theta(0, 0)$")
        ax.legend(loc="upper left")
    np.atleast_1d(axes)[0].set_ylabel(r"$\lambda_1 / N$ (100 inputs)")
    return finish(fig)


def mean_and_modes(examples, scatter, hist):
    """Fig. 5: mean field (eq. 15) and mode amplitudes (eq. 16), network against prediction.

    Args:
        examples: list of dicts ``label``, ``steps``, ``actual``, ``pred`` (mean-field trajectories).
        scatter: dict ``move``, ``error``, ``overlap`` (per configuration: |f_bar(end) - f_bar(0)|,
            max_t |pred - actual|, |v_1 . u|).
        hist: dict of arrays ``start``, ``end_actual``, ``end_pred`` (|delta_i|, all modes of all
            configurations) and ``mean`` (|f_bar| at the end of every configuration).
    """
    use_style()
    fig, ax = plt.subplot_mosaic([["t", "t"], ["s", "h"]], figsize=(7.4, 7.2))
    ax_t, ax_s, ax_h = ax["t"], ax["s"], ax["h"]
    for k, e in enumerate(examples):
        ax_t.plot(e["steps"], e["actual"], color=f"C{k}", lw=2.4, alpha=0.7, label=e["label"])
        ax_t.plot(e["steps"], e["pred"], color="k", lw=0.9, ls="--")
    ax_t.plot([], [], color="k", lw=0.9, ls="--", label="eq. 15")
    ax_t.set_xlabel("step")
    ax_t.set_ylabel(r"mean field $\bar f = v_1\cdot f/\sqrt{N}$")
    ax_t.legend(fontsize=7)
    sc = ax_s.scatter(scatter["move"], scatter["error"], c=scatter["overlap"], cmap="viridis", vmin=0, vmax=1, s=14)
    ax_s.set_xscale("log")
    ax_s.set_yscale("log")
    xx = np.geomspace(np.min(scatter["move"]), np.max(scatter["move"]), 10)
    ax_s.plot(xx, xx, color="0.5", lw=0.8)
    ax_s.set_xlabel(r"$|\bar f_{\rm end} - \bar f_{\rm init}|$")
    ax_s.set_ylabel(r"$\max_t |\bar f_{\rm pred} - \bar f|$")
    cb = fig.colorbar(sc, ax=ax_s)
    cb.set_label(r"$|v_1 \cdot u|$ (1: $v_1$ uniform)")
    vals = np.concatenate([hist["start"], hist["end_actual"], hist["end_pred"], hist["mean"]])
    vals = vals[vals > 0]
    bins = np.geomspace(max(vals.min(), 1e-12), vals.max() * 1.01, 40)
    ax_h.hist(hist["start"], bins=bins, histtype="step", color="0.4", lw=1.4, label="start")
    ax_h.hist(hist["end_actual"], bins=bins, histtype="step", color=COLORS["network"], lw=1.4, label="end, network")
    ax_h.hist(hist["end_pred"], bins=bins, histtype="step", color=COLORS["prediction"], lw=1.0, ls="--", label="end, eq. 16")
    for v in hist["mean"]:
        ax_h.axvline(v, color="red", lw=0.5, alpha=0.5)
    ax_h.plot([], [], color="red", lw=0.8, label=r"$|\bar f_{\rm end}|$")
    ax_h.set_xscale("log")
    ax_h.set_xlabel(r"mode amplitude $|\delta\tilde f_i|$")
    ax_h.set_ylabel("count")
    ax_h.set_ylim(0, 1.45 * ax_h.get_ylim()[1])  # headroom for the legend above the bars
    # an opaque legend box, so the red |f_end| lines do not run through its entries
    ax_h.legend(fontsize=7, loc="upper left", ncols=2, frameon=True, framealpha=1.0, edgecolor="0.8")
    return finish(fig)
