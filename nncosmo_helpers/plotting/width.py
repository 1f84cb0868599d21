"""Figures of the chapter "Width and precision"."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

from . import COLORS, finish, new_figure, use_style


def _width_ticks(ax, widths):
    """Label a logarithmic width axis with the widths themselves."""
    ax.set_xticks(widths)
    ax.set_xticklabels([f"{int(w)}" for w in widths])
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())


def alpha_vs_width(widths, alphas, alpha_inf, fit):
    """(a) alpha at initialisation against width (dots: seeds; line: mean) and alpha_inf;
    (b) the standard deviation over seeds, log-log, with the fitted power law.

    ``alphas``: array (len(widths), seeds); ``fit``: (slope, intercept) of log std vs log width.
    """
    fig, (ax1, ax2) = new_figure(2, width=10.0, height=3.8)
    widths = np.asarray(widths, float)
    for w, a in zip(widths, alphas):
        ax1.plot(np.full(len(a), w) * np.exp(np.random.default_rng(0).uniform(-0.08, 0.08, len(a))), a, ".",
                 color=COLORS["network"], ms=3, alpha=0.5)
    ax1.plot(widths, alphas.mean(axis=1), "o-", color=COLORS["network"], label="mean over seeds")
    ax1.axhline(alpha_inf, color="k", ls="--", lw=1, label=r"$\alpha_\infty$ (infinite width)")
    ax1.set_xscale("log")
    _width_ticks(ax1, widths)
    ax1.set_xlabel("width $n$")
    ax1.set_ylabel(r"$\alpha = \Theta(x_0, x_0)$ at initialisation")
    ax1.set_title("(a) the kernel at one point")
    ax1.legend()
    std = alphas.std(axis=1, ddof=1)
    ax2.loglog(widths, std, "o", color=COLORS["network"], label="std over seeds")
    slope, icpt = fit
    ax2.loglog(widths, np.exp(icpt) * widths**slope, "-", color=COLORS["prediction"], label=f"fit: slope {slope:.2f}")
    ax2.loglog(widths, std[0] * (widths / widths[0]) ** -0.5, "k:", lw=1, label=r"$\propto n^{-1/2}$")
    _width_ticks(ax2, widths)
    ax2.set_xlabel("width $n$")
    ax2.set_ylabel(r"std of $\alpha$")
    ax2.set_title("(b) fluctuations")
    ax2.legend()
    return finish(fig)


def drift_vs_width(widths, rms_drift, rms_dev, fits, dev, effect, width_of_point):
    """(a) rms relative kernel drift |alpha(t_max) - alpha(0)|/alpha(0) and rms relative end-point
    deviation against width, with fitted slopes; (b) end-point deviation against the deviation that
    the drift explains (the same equation solved with the mid-training alpha), coloured by width."""
    fig, (ax1, ax2) = new_figure(2, width=10.0, height=3.9)
    widths = np.asarray(widths, float)
    for y, key, label, c in ((rms_drift, "drift", r"rms $|\Delta\alpha|/\alpha$", "C0"),
                             (rms_dev, "dev", r"rms $|f_{\rm pred}-f|/|f_{\rm end}-f_{\rm init}|$", "C3")):
        slope, icpt = fits[key]
        ax1.loglog(widths, y, "o", color=c, label=f"{label} (slope {slope:.2f})")
        ax1.loglog(widths, np.exp(icpt) * widths**slope, "-", color=c, lw=1)
    ax1.loglog(widths, rms_drift[0] * (widths / widths[0]) ** -0.5, "k:", lw=0.9, label=r"$\propto n^{-1/2}$")
    ax1.loglog(widths, rms_drift[0] * (widths / widths[0]) ** -1.0, "k--", lw=0.9, label=r"$\propto n^{-1}$")
    _width_ticks(ax1, widths)
    ax1.set_xlabel("width $n$")
    ax1.set_title("(a) kernel drift and duality error")
    ax1.legend(fontsize=7.5)
    norm = mpl.colors.LogNorm(widths.min(), widths.max())
    sc = ax2.scatter(np.abs(effect), np.abs(dev), c=width_of_point, cmap="viridis", norm=norm, s=18, edgecolors="k",
                     linewidths=0.3)
    lo = max(min(np.abs(effect).min(), np.abs(dev).min()), 1e-7)
    hi = max(np.abs(effect).max(), np.abs(dev).max())
    ax2.plot([lo, hi], [lo, hi], "k--", lw=0.9, label="deviation = drift effect")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel(r"$|f_{\rm pred}(\alpha_0) - f_{\rm pred}(\alpha_0 + \Delta\alpha/2)|$ at $t_{\max}$")
    ax2.set_ylabel(r"$|f_{\rm pred}(\alpha_0) - f(t_{\max})|$")
    ax2.set_title("(b) the drift explains the deviation")
    ax2.legend(fontsize=7.5)
    fig.colorbar(sc, ax=ax2, label="width $n$")
    return finish(fig)


def precision_maps(etas, betas, dev64, dev32, lost, eta_onset):
    """(a, b) relative end-point deviation maps over (eta, beta) in float64 and float32 (log colour
    scale, shared); (c) the float32 deviation against eta for each beta (markers) with the predicted
    share of the kernel whose updates are rounded away (lines); vertical ticks: predicted onset.

    ``dev64``, ``dev32``, ``lost``: arrays (len(betas), len(etas)); ``eta_onset``: per beta.
    """
    use_style()
    fig, mosaic = plt.subplot_mosaic([["a", "b"], ["c", "c"]], figsize=(7.4, 7.4))
    axes = [mosaic["a"], mosaic["b"], mosaic["c"]]
    vmin = max(min(np.nanmin(dev64), np.nanmin(dev32)), 1e-6)
    vmax = max(np.nanmax(dev64), np.nanmax(dev32))
    norm = mpl.colors.LogNorm(vmin, vmax)
    x = np.log10(etas)
    dx = np.diff(x).mean()
    extent = (x[0] - dx / 2, x[-1] + dx / 2, -0.5, len(betas) - 0.5)
    for ax, dev, title in ((axes[0], dev64, "(a) float64"), (axes[1], dev32, "(b) float32")):
        im = ax.imshow(np.clip(dev, vmin, None), origin="lower", aspect="auto", extent=extent, norm=norm, cmap="magma")
        ax.set_yticks(range(len(betas)))
        ax.set_yticklabels([f"{b:g}" for b in betas])
        ax.set_xlabel(r"$\log_{10}\eta$")
        ax.set_ylabel(r"momentum $\beta$")
        ax.set_title(title)
        ax.plot(np.log10(eta_onset), range(len(betas)), "c|", ms=14, mew=2)
        ax.grid(False)
    fig.colorbar(im, ax=axes[:2], shrink=0.95, label=r"$|f_{\rm pred}-f|\,/\,|f_{\rm pred}-f_{\rm init}|$ at $t_{\max}$")
    ax = axes[2]
    for k, b in enumerate(betas):
        ax.loglog(etas, dev32[k], "o", color=f"C{k}", label=fr"float32, $\beta={b:g}$")
        ax.loglog(etas, np.maximum(np.abs(lost[k]), 1e-7), "-", color=f"C{k}", lw=1)
        ax.loglog(etas, dev64[k], "x", color=f"C{k}", ms=4, alpha=0.6)
        ax.axvline(eta_onset[k], color=f"C{k}", ls=":", lw=0.8)
    ax.set_ylim(vmin / 2, 1.5)
    ax.set_xlabel(r"learning rate $\eta$")
    ax.set_ylabel("relative deviation")
    ax.set_title("(c) float32 (o), float64 (x); lines: predicted $|F|$")
    ax.legend(fontsize=7.5)
    return finish(fig)
