"""Figure of the error budget on an (eta, width) grid (:mod:`nncosmo_helpers.experiments.error_budget`)."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import NullFormatter

from . import finish, new_figure


def _band(ax, x, y, color, marker, ls, label):
    """Median over the last axis of y with the seed range as error bars."""
    med = np.median(y, axis=-1)
    lo, hi = med - np.min(y, axis=-1), np.max(y, axis=-1) - med
    ax.errorbar(x, med, yerr=[lo, hi], color=color, marker=marker, ls=ls, ms=4, capsize=2, label=label)


def error_budget_grid(grid):
    """Left: continuum part (plain and lag-corrected) and drift part against sqrt(eta), one colour per
    width. Right: drift part against the width, one colour per eta. Medians over seeds, bars: the
    seed range. ``grid`` is an :class:`~nncosmo_helpers.experiments.error_budget.ErrorBudgetGrid`."""
    fig, (ax_e, ax_w) = new_figure(ncols=2, width=7.4, height=4.6)
    h = np.sqrt(grid.etas)
    for j, w in enumerate(grid.widths):
        c = f"C{j}"
        _band(ax_e, h, grid.continuum[:, j], c, "o", "-", f"width {w}: eq. 2 vs eq. 9 (lag)")
        _band(ax_e, h, grid.continuum_corrected[:, j], c, "s", ":", "lag-corrected" if j == 0 else None)
        _band(ax_e, h, grid.drift[:, j], c, "^", "--", "drift" if j == 0 else None)
    ax_e.set_xscale("log")
    ax_e.set_yscale("log")
    ax_e.set_xlabel(r"$\sqrt{\eta}$ (friction $3H$ fixed)")
    ax_e.set_ylabel("end-point error / displacement")
    ax_e.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    for i, e in enumerate(grid.etas):
        _band(ax_w, grid.widths, grid.drift[i], f"C{i + 3}", "^", "--", f"η = {e:.3g}")
    ax_w.set_xscale("log")
    ax_w.set_xticks(grid.widths, [str(w) for w in grid.widths])
    ax_w.xaxis.set_minor_formatter(NullFormatter())
    ax_w.set_yscale("log")
    ax_w.set_xlabel("width")
    ax_w.set_ylabel("drift part")
    ax_w.legend(fontsize=7)
    return finish(fig)
