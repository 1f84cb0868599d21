"""Figures of the chapter "Background matching" (section 2.1 of the paper, eqs. 5-8)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from . import COLORS, finish, new_figure, use_style


def fixed_vs_self_consistent(pairs, eps_scan, dev_scan, *, asymptote):
    """The two backgrounds of eq. 6 (H fixed by V0 vs sourced by the field) and their distance.

    Args:
        pairs: list of dicts with ``eps`` (alpha L(phi0)/V0), ``tau`` (relaxation time
            k * step/(1 - beta), k = eta alpha L''), ``x_fixed``, ``x_sc`` (the field as the fraction
            (phi - phi0)/(f0 - phi0) of the way to the minimum) and ``h_ratio`` (H_sc/H_0).
        eps_scan, dev_scan: the largest distance between the two backgrounds (in units of the
            excursion) against eps.
        asymptote: the small-eps slope c in dev = c * eps.
    """
    use_style()
    fig, ax = plt.subplot_mosaic([["x", "x"], ["h", "d"]], figsize=(7.2, 7.0))
    ax_x, ax_h, ax_d = ax["x"], ax["h"], ax["d"]
    for k, p in enumerate(pairs):
        c = f"C{k}"
        lab = rf"$\epsilon={p['eps']:.3g}$"
        ax_x.plot(p["tau"], p["x_fixed"], color=c, label=lab + r", $3H^2=V_0$")
        ax_x.plot(p["tau"], p["x_sc"], color=c, ls="--", label=lab + ", self-consistent")
        ax_h.semilogy(p["tau"], p["h_ratio"] - 1.0, color=c, label=lab)
        ax_h.axhline(np.sqrt(1.0 + p["eps"]) - 1.0, color=c, lw=0.8, ls=":")
    ax_x.set_xlabel(r"relaxation time $\tau = \eta\alpha\mathcal{L}''\, i/(1-\beta)$")
    ax_x.set_ylabel(r"$(\phi-\phi_0)/(f_0-\phi_0)$")
    ax_x.legend(fontsize=7.5, loc="lower right", ncols=2)
    ax_h.set_xlabel(r"$\tau$")
    ax_h.set_ylabel(r"$H/H_0 - 1$ (self-consistent)")
    ax_h.set_title(r"dotted: bound $\sqrt{1+\epsilon}-1$", fontsize=9)
    ax_d.loglog(eps_scan, dev_scan, "o-", color=COLORS["prediction"], label="numerical (full relaxation)")
    ee = np.geomspace(min(eps_scan), max(eps_scan), 50)
    ax_d.loglog(ee, asymptote * ee, "k--", lw=1.0, label=r"$\epsilon/(6\sqrt{3})$ (small $\epsilon$)")
    ax_d.set_xlabel(r"$\epsilon = \alpha\mathcal{L}(\phi_0)/V_0 = \eta/\eta_{\max}$")
    ax_d.set_ylabel(r"$\max_t|\phi_{H_0}-\phi_{\rm sc}|\,/\,|f_0-\phi_0|$")
    ax_d.legend(loc="upper left", fontsize=8)
    return finish(fig)


def network_overlays(runs):
    """Trained homogeneous networks on top of the two backgrounds, one panel per (eta, beta).

    Args:
        runs: list of :class:`~nncosmo_helpers.experiments.background.BackgroundComparison` (one loss).
    """
    n = len(runs)
    ncols = n if n <= 2 else (2 if n == 4 else 3)
    nrows = -(-n // ncols)
    fig, axes = new_figure(ncols=ncols, nrows=nrows, width=2.45 * ncols, height=2.9 * nrows, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, r in zip(axes.flat, runs):
        s = r.fixed.steps
        ax.plot(s, r.f_net, "o", ms=3.0, color=COLORS["network"], label="network")
        ax.plot(s, r.fixed.phi, "-", color=COLORS["prediction"], label=r"$3H^2=V_0$ (eq. 7)")
        ax.plot(s, r.self_consistent.phi, "--", color=COLORS["field"], label="self-consistent $H$")
        fl = r.fixed.flrw
        ax.set_title(rf"$\eta={fl.eta:g},\ \beta={fl.beta:g},\ \epsilon={r.epsilon:.2g}$", fontsize=9.5)
        ax.set_xlabel("step $i$")
    for row in axes:
        row[0].set_ylabel(r"$f$ / $\phi$")
    axes[0][0].legend(loc="lower right", fontsize=8)
    return finish(fig)


def deviations_vs_epsilon(runs, scan_runs, *, eta_stab_over_max=None):
    """Deviations of networks from both backgrounds as a function of eps = alpha L(f_init)/V0.

    Args:
        runs: BackgroundComparison objects from the paper's (eta, beta) pairs and losses.
        scan_runs: BackgroundComparison objects of one network and loss with eta swept across eta_max.
        eta_stab_over_max: if given, eta_stab/eta_max of the scan (drawn as a vertical line).
    """
    fig, (ax_a, ax_b) = new_figure(nrows=2, width=6.8, height=7.6)
    for ax, group, title in ((ax_a, runs, "paper's $(\\eta,\\beta)$ pairs and losses"),
                             (ax_b, scan_runs, r"one network and loss, $\eta$ swept")):
        eps = np.array([r.epsilon for r in group])
        order = np.argsort(eps)
        ax.loglog(eps[order], [group[i].deviation_fixed for i in order], "o", color=COLORS["network"],
                  label=r"network vs $3H^2=V_0$")
        ax.loglog(eps[order], [group[i].deviation_self_consistent for i in order], "^", mfc="none",
                  color=COLORS["field"], label="network vs self-consistent")
        ax.loglog(eps[order], [group[i].deviation_backgrounds for i in order], "x", color=COLORS["prediction"],
                  label="fixed vs self-consistent")
        ax.axvline(1.0, color="0.4", lw=0.9, ls=":")
        ax.set_ylabel(r"$\max_{i\leq 1000}|\,\cdot\,|\,/\,|\phi_{H_0}(T)-f_{\rm init}|$")
        ax.set_xlabel(r"$\epsilon = \alpha\mathcal{L}(f_{\rm init})/V_0 = \eta/\eta_{\max}$")
        ax.set_title(title, fontsize=10)
    if eta_stab_over_max is not None:
        ax_b.axvline(eta_stab_over_max, color="k", lw=1.0, ls="-.", label=r"$\eta_{\rm stab}$")
    ax_a.legend(loc="upper left", fontsize=8)
    ax_b.legend(loc="upper left", fontsize=8)
    return finish(fig)


def allowed_region(betas, eta_max, eta_stab, *, pairs=(), labels=("",)):
    """The (beta, eta) plane: vacuum domination eta < eta_max(beta) and linear stability eta < eta_stab.

    Args:
        betas: momentum values.
        eta_max, eta_stab: arrays of shape (n_curves, len(betas)), one row per loss.
        pairs: (eta, beta) points to mark (the paper's choices).
        labels: one label per row.
    """
    fig, ax = new_figure(width=8.5, height=4.2)
    eta_max = np.atleast_2d(eta_max)
    eta_stab = np.atleast_2d(eta_stab)
    for k, (em, es, lab) in enumerate(zip(eta_max, eta_stab, labels)):
        c = f"C{k}"
        ax.fill_between(betas, 1e-6, em, color=c, alpha=0.15)
        ax.semilogy(betas, em, color=c, label=rf"$\eta_{{\max}}$ {lab}")
        ax.semilogy(betas, es, color=c, ls="-.", label=rf"$\eta_{{\rm stab}}$ {lab}")
    for eta, beta in pairs:
        ax.plot(beta, eta, "k*", ms=8)
    if pairs:
        ax.plot([], [], "k*", ms=8, label=r"paper's $(\eta,\beta)$")
    lo = min(float(np.min(eta_max)), min((p[0] for p in pairs), default=1.0)) / 5
    ax.set_ylim(lo, 3 * max(float(np.max(eta_stab)), float(np.max(eta_max))))
    ax.set_xlabel(r"momentum $\beta$")
    ax.set_ylabel(r"learning rate $\eta$")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return finish(fig)
