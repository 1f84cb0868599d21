"""Figures and tables of the chapter "Perturbations" (section 2.2 of the paper, eqs. 9-19)."""

from __future__ import annotations

import numpy as np

from . import COLORS, finish, new_figure


def table(headers, rows):
    """An HTML table (``IPython.display.HTML``) from a header list and rows of cell strings.

    A row given as a single string is a group heading spanning all columns (e.g. the network of
    the rows below it), which saves a wide label column. Cells are set a little smaller and tighter
    than the theme's default so that tables of many numeric columns fit the text column.

    HTML rather than Markdown because the book renders notebook Markdown outputs as CommonMark,
    which has no tables.
    """
    from html import escape

    from IPython.display import HTML

    cell = 'style="padding: 0.25rem 0.45rem"'
    head = "".join(f"<th {cell}>{escape(str(h))}</th>" for h in headers)
    body = "".join(
        f'<tr><th colspan="{len(headers)}" {cell}>{escape(row)}</th></tr>' if isinstance(row, str)
        else "<tr>" + "".join(f"<td {cell}>{escape(str(c))}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return HTML(f'<table class="table" style="font-size: 0.9em"><thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>")


def spectra(panels, *, n_show=10, noise_floor=1e-13):
    """NTK spectra lambda_i/lambda_1 for several architectures, one panel per input interval.

    Args:
        panels: list of (title, cases) with cases a list of (label, lam_infinite, lam_empirical);
            eigenvalues in descending order.
        n_show: number of eigenvalues to draw.
        noise_floor: ratios below this are rounding noise of a float64 eigensolver and not drawn.
    """
    ncols = len(panels)
    fig, axes = new_figure(ncols=ncols, width=min(3.7 * ncols, 7.4), height=4.6, squeeze=False, sharey=True)
    i = np.arange(1, n_show + 1)
    for ax, (title, cases) in zip(axes[0], panels):
        for k, (label, lam_inf, lam_emp) in enumerate(cases):
            c = f"C{k}"
            for lam, style in ((lam_inf, dict(ls="-", marker="")), (lam_emp, dict(ls="", marker="o", mfc="none", ms=4))):
                r = np.asarray(lam[:n_show]) / lam[0]
                r = np.where(r > noise_floor, r, np.nan)
                ax.semilogy(i, r, color=c, label=label if style["ls"] == "-" else None, **style)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("mode index $i$")
        ax.set_xticks(i)
    axes[0][0].set_ylabel(r"$\lambda_i/\lambda_1$")
    handles, labels = axes[0][-1].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7.5, loc="outside lower center", ncols=4,
               title="lines: infinite width, circles: empirical", title_fontsize=7.5)
    return finish(fig)


def leading_eigenvectors(x, cases):
    """The leading NTK eigenvector sqrt(N) v_1 along the grid (uniform mode = 1).

    Args:
        x: inputs, shape (N,) or (N, 1).
        cases: list of (label, v1_infinite, v1_empirical).
    """
    x = np.asarray(x).reshape(-1)
    fig, ax = new_figure(width=6.4, height=3.8)
    n = x.shape[0]
    for k, (label, v_inf, v_emp) in enumerate(cases):
        ax.plot(x, np.sqrt(n) * np.asarray(v_inf), color=f"C{k}", label=label)
        ax.plot(x[::4], np.sqrt(n) * np.asarray(v_emp)[::4], "o", mfc="none", ms=4, color=f"C{k}")
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set_xlabel("input $x$ (centred interval)")
    ax.set_ylabel(r"$\sqrt{N}\,v_1(x)$")
    ax.legend(fontsize=7.5, loc="lower right")
    return finish(fig)


def overlap_vs_bias(b_grid, curves, *, marks=()):
    """|v_1 . u| of the infinite-width NTK against b_std, with the parity of v_1 as marker fill.

    Args:
        b_grid: bias standard deviations.
        curves: list of (label, overlap array, parity array) over b_grid.
        marks: b_std values to mark with vertical lines (the architectures of the tables).
    """
    fig, ax = new_figure(width=6.4, height=3.8)
    for k, (label, overlap, parity) in enumerate(curves):
        c = f"C{k}"
        ax.semilogx(b_grid, overlap, "-", color=c, label=label)
        odd = np.asarray(parity) < 0
        ax.semilogx(np.asarray(b_grid)[odd], np.asarray(overlap)[odd], "o", color=c, mfc="none", ms=5)
        ax.semilogx(np.asarray(b_grid)[~odd], np.asarray(overlap)[~odd], "o", color=c, ms=3)
    for b in marks:
        ax.axvline(b, color="k", lw=0.6, ls=":")
    ax.set_xlabel(r"$b_{\rm std}$")
    ax.set_ylabel(r"uniform overlap $|v_1\cdot u|$")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=7.5, loc="center right", title="filled: $v_1$ even, open: odd", title_fontsize=7.5)
    return finish(fig)


def mean_and_modes(comparisons, labels, f0):
    """Trained networks against eqs. 15/16 and the frozen-kernel eq. 9.

    Left: the mean field as the fraction of the way to the minimum, (f_bar - f_bar(0))/(f0 - f_bar(0)).
    Right: how far each mode moved, |delta_i(T) - delta_i(0)| / (sqrt(N) |f_bar(T) - f_bar(0)|).

    Args:
        comparisons: list of :class:`~nncosmo_helpers.dynamics.ModeComparison`.
        labels: one label per comparison.
        f0: the minimum of the loss.
    """
    fig, (ax_m, ax_d) = new_figure(nrows=2, width=7.0, height=7.8)
    for k, (c, label) in enumerate(zip(comparisons, labels)):
        col = f"C{k}"
        f_start = c.mean_observed[0]

        def frac(series):
            return (np.asarray(series) - f_start) / (f0 - f_start)

        ax_m.plot(c.steps, frac(c.mean_observed), "o", ms=2.5, color=col, label=label + ": network")
        ax_m.plot(c.steps, frac(c.mean_predicted), "-", color=col, lw=1.4, label="eq. 15")
        ax_m.plot(c.steps, frac(c.mean_reference), "--", color="k", lw=0.9, label="frozen-kernel eq. 9" if k == 0 else None)
        scale = np.sqrt(c.n_points) * c.mean_change
        i = np.arange(2, c.modes_observed.shape[1] + 2)
        shift = 0.12 * (k - (len(comparisons) - 1) / 2)
        ax_d.semilogy(i + shift, c.mode_displacement, "o", color=col, ms=6, label=label + ": network")
        ax_d.semilogy(i + shift, np.abs(c.modes_predicted[-1] - c.modes_predicted[0]) / scale, "s", color=col,
                      mfc="none", ms=7, label="eq. 16")
        ax_d.semilogy(i + shift, np.abs(c.modes_reference[-1] - c.modes_reference[0]) / scale, "x", color="k", ms=5,
                      label="frozen-kernel eq. 9" if k == 0 else None)
    ax_m.set_xlabel("step $i$")
    ax_m.set_ylabel(r"$(\bar f-\bar f(0))\,/\,(f_0-\bar f(0))$")
    ax_m.legend(fontsize=7, loc="upper left", ncols=1)
    ax_d.set_xlabel("mode index $i$")
    ax_d.set_ylabel(r"$|\Delta\tilde{\delta f}_i|\,/\,(\sqrt{N}\,|\Delta\bar f|)$")
    ax_d.set_xticks(np.arange(2, comparisons[0].modes_observed.shape[1] + 2))
    ax_d.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=3)
    return finish(fig)


def mass_spectra(i, nn_mass2, field_mass2, *, field_paper_sign=None, critical=None, freeze=None):
    """Effective mass^2 of each perturbation mode: NN (lambda_i/N) L'' vs field k^2 + V''.

    Args:
        i: mode indices.
        nn_mass2: (lambda_i/N) L''(f_bar) of the network modes.
        field_mass2: k_{i-1}^2 + alpha L'' of the field's Fourier modes.
        field_paper_sign: alpha L'' - k^2 (the paper's printed sign), drawn where positive.
        critical: (3H/2)^2, the boundary between overdamped and oscillating modes.
        freeze: 3H/T: modes far below relax by much less than their amplitude within the training time T.
    """
    fig, ax = new_figure(width=6.6, height=4.0)
    ax.semilogy(i, nn_mass2, "o-", color=COLORS["network"], label=r"network mode: $(\lambda_i/N)\,\mathcal{L}''$")
    ax.semilogy(i, field_mass2, "s-", color=COLORS["field"], label=r"field mode: $k^2+\alpha\mathcal{L}''$")
    if field_paper_sign is not None:
        fp = np.asarray(field_paper_sign, dtype=float)
        ax.semilogy(i, np.where(fp > 0, fp, np.nan), "^:", color=COLORS["field"], mfc="none",
                    label=r"paper's sign: $\alpha\mathcal{L}''-k^2$ ($>0$ only)")
    if critical is not None:
        ax.axhline(critical, color="k", ls="--", lw=0.9, label=r"$(3H/2)^2$: oscillates above")
    if freeze is not None:
        ax.axhline(freeze, color="k", ls=":", lw=0.9, label=r"$3H/T$: frozen far below")
    ax.set_xlabel("mode index $i$  (field: $k=\\pi(i-1)/\\ell$)")
    ax.set_ylabel(r"mass$^2$ of the mode")
    ax.set_xticks(i)
    ax.legend(fontsize=7.5, loc="center right")
    return finish(fig)


def mode_evolution(t_field, field_modes, field_labels, t_nn, nn_observed, nn_predicted, nn_labels, *, nn_reference=None):
    """Perturbation modes in time, each relative to its initial amplitude.

    Left: field Fourier modes phi_k(t)/phi_k(0) (eq. 19, +k^2) over a few Hubble times.
    Right: network modes delta_i(t)/delta_i(0) over the whole training (network: markers, eq. 16: lines,
    ``nn_reference`` if given: dashed, e.g. the frozen-kernel eq. 9).
    """
    fig, (ax_f, ax_n) = new_figure(nrows=2, width=7.0, height=7.4)
    for k, label in enumerate(field_labels):
        ax_f.plot(t_field, field_modes[:, k], color=f"C{k}", label=label)
    ax_f.set_xlabel(r"$t\,H$ (Hubble times)")
    ax_f.set_ylabel(r"$\varphi_k(t)/\varphi_k(0)$")
    ax_f.set_title("field, eq. 19 with $+k^2$", fontsize=10)
    ax_f.legend(fontsize=7.5)
    for k, label in enumerate(nn_labels):
        ax_n.plot(t_nn, nn_observed[:, k], "o", ms=2.5, color=f"C{k}", label=label)
        ax_n.plot(t_nn, nn_predicted[:, k], "-", lw=1.0, color=f"C{k}")
        if nn_reference is not None:
            ax_n.plot(t_nn, nn_reference[:, k], "--", lw=1.0, color=f"C{k}")
    ax_n.set_xlabel(r"$t\,H$ (Hubble times)")
    ax_n.set_ylabel(r"$\tilde{\delta f}_i(t)/\tilde{\delta f}_i(0)$")
    ax_n.set_title("network (markers), eq. 16 (solid), frozen-kernel eq. 9 (dashed)", fontsize=9)
    ax_n.legend(fontsize=7.5)
    return finish(fig)
