"""Figures of the chapter "Appendix derivations" (Appendices A and B of the paper)."""

from __future__ import annotations

import numpy as np

from . import COLORS, finish, new_figure


def friction_sign(runs):
    """Network mean field against eq. 15 with the damping (-beta_tilde) and the printed (+beta_tilde) sign.

    Args:
        runs: list of dicts with ``beta``, ``steps``, ``observed`` (f_bar of the network),
            ``damped``, ``antidamped`` (eq. 15 with either sign), ``rate`` (fitted growth rate per
            step of antidamped - damped) and ``rate_exact`` (the root of the characteristic polynomial).
    """
    fig, (ax_f, ax_g) = new_figure(ncols=2, width=7.4, height=4.8)
    for k, r in enumerate(runs):
        c = f"C{k}"
        s = np.asarray(r["steps"])
        obs = np.asarray(r["observed"])
        ref = obs[0]
        ax_f.plot(s, obs - ref, "o", ms=3.5, color=c, label=rf"network, $\beta={r['beta']:g}$")
        ax_f.plot(s, np.asarray(r["damped"]) - ref, "-", color=c, lw=1.2, label=r"eq. 15 with $-\tilde\beta$ (damping)")
        ax_f.plot(s, np.asarray(r["antidamped"]) - ref, "--", color=c, lw=1.2, label=r"eq. 15 as printed, $+\tilde\beta$")
        gap = np.abs(np.asarray(r["antidamped"]) - np.asarray(r["damped"]))
        ax_g.semilogy(s[1:], gap[1:], "-", color=c,
                      label=rf"$\beta={r['beta']:g}$: fitted rate {r['rate']:.4f}/step," + f"\nroot {r['rate_exact']:.4f}")
    ax_f.set_yscale("symlog", linthresh=1e-3)
    ax_f.set_xlabel("step $i$")
    ax_f.set_ylabel(r"$\bar f(i) - \bar f(0)$")
    ax_f.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    ax_g.set_xlabel("step $i$")
    ax_g.set_ylabel(r"$|\bar f_{+\tilde\beta} - \bar f_{-\tilde\beta}|$")
    ax_g.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    return finish(fig)


def _label(row):
    return (f"{row['hidden_layers']}L {row['activation']} ({row['W_std']:g},{row['b_std']:g}) "
            f"{row['interval']:g}$/H$")


def mean_field_errors(rows, *, loss):
    """Predicted minus actual mean evolution for the two couplings, one line per network.

    Args:
        rows: rows of :func:`nncosmo_helpers.scans.mean_field.rows` (diverged rows are skipped).
        loss: only rows with this loss are drawn.
    """
    fig, axes = new_figure(nrows=2, width=7.0, height=6.6, sharex=True, sharey=True)
    picked = [r for r in rows if r["comparison"] is not None and r["loss"] == loss]
    for ax, name, title in ((axes[0], "lambda1/N", r"eq. 15: $\lambda_1/N$"),
                            (axes[1], "mean Theta", r"eq. 7 with $\bar\Theta = \frac{1}{N^2}\sum_{ij}\Theta_{ij}$")):
        for k, r in enumerate(picked):
            c = r["comparison"]
            ls = "-" if r["interval"] >= 1.0 else "--"
            ax.plot(c.steps, (c.predictions[name] - c.observed_mean) / c.excursion, ls, color=f"C{k % 10}", label=_label(r))
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_ylabel(r"$(\langle f\rangle_{\rm pred} - \langle f\rangle)\,/\,|\Delta\langle f\rangle|$")
        ax.set_title(title, fontsize=10)
    axes[1].set_xlabel("step $i$")
    axes[1].legend(fontsize=7.5, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    return finish(fig)


def mean_field_scatter(rows, *, moving_fraction):
    """The paper's Fig. 6 view: end-of-training error of each prediction against the actual evolution.

    Args:
        rows: rows of :func:`nncosmo_helpers.scans.mean_field.rows` (``comparison``, ``moving``,
            ``leading_mode``); diverged rows (no comparison) are skipped.
        moving_fraction: the fraction of the way to f0 above which a network counts as moving (caption).

    Left: |prediction(T) - <f>(T)| against |<f>(T) - <f>(0)| for lambda1/N and mean Theta; filled
    markers: networks that move, open: networks that barely move. Right: the gap between the two
    predictions relative to the evolution, against 1 - |v_1 . u|; colour: the v_1 class.
    """
    fig, (ax_s, ax_o) = new_figure(ncols=2, width=7.4, height=3.8)
    ok = [r for r in rows if r["comparison"] is not None]
    exc = np.array([r["comparison"].excursion for r in ok])
    moving = np.array([bool(r["moving"]) for r in ok])
    for name, marker, color, label in (("lambda1/N", "o", COLORS["prediction"], r"$\lambda_1/N$ (eq. 15)"),
                                       ("mean Theta", "^", COLORS["network"], r"mean NTK $\bar\Theta$ (eq. 7)")):
        err = np.array([r["comparison"].end_error(name) for r in ok])
        ax_s.loglog(exc[moving], err[moving], marker, color=color, ms=4, label=label + ", moving")
        ax_s.loglog(exc[~moving], err[~moving], marker, mfc="none", color=color, ms=4, label=label + ", not moving")
    lo, hi = exc.min() / 2, exc.max() * 2
    ax_s.loglog([lo, hi], [lo, hi], "k:", lw=0.9, label="error = evolution")
    ax_s.set_xlabel(r"actual evolution $|\langle f\rangle(T) - \langle f\rangle(0)|$")
    ax_s.set_ylabel(r"$|\langle f\rangle_{\rm pred}(T) - \langle f\rangle(T)|$")
    ax_s.legend(fontsize=6.5, loc="upper left")
    for k, cls in enumerate(("uniform", "not uniform", "not defined")):
        sel = [r for r in ok if r["leading_mode"] == cls]
        if not sel:
            continue
        c = [r["comparison"] for r in sel]
        mis = np.array([max(1.0 - x.uniform_overlap, 1e-7) for x in c])
        gap = np.array([abs(x.predictions["lambda1/N"][-1] - x.predictions["mean Theta"][-1]) / x.excursion for x in c])
        mov = np.array([bool(r["moving"]) for r in sel])
        ax_o.loglog(mis[mov], gap[mov], "s", color=f"C{k}", ms=4, label=f"$v_1$ {cls}")
        ax_o.loglog(mis[~mov], gap[~mov], "s", mfc="none", color=f"C{k}", ms=4)
    ax_o.set_xlabel(r"$1 - |v_1\cdot u|$")
    ax_o.set_ylabel(r"$|\langle f\rangle_{\lambda_1/N} - \langle f\rangle_{\bar\Theta}|$ / evolution")
    ax_o.legend(fontsize=7, loc="upper left", title=f"filled: moved $\\geq$ {moving_fraction:g} of the way to $f_0$",
                title_fontsize=6.5)
    return finish(fig)
