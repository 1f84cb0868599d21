"""Figures of the chapter "Continuous limit" (eqs. 2-9 of the paper)."""

from __future__ import annotations

import numpy as np

from . import finish, new_figure


def convergence(studies, *, fit_max=None):
    """Discretisation error of momentum GD against its continuum limit, log-log in sqrt(eta).

    Args:
        studies: list of :class:`~nncosmo_helpers.dynamics.ConvergenceStudy` (``label``, ``sqrt_eta``, ``error`` and
            ``slope``, ``intercept``: a fit log(error) = intercept + slope log(sqrt_eta)).
        fit_max: if given, the largest sqrt(eta) used in the fits (drawn as a vertical line).

    Returns the figure.
    """
    fig, ax = new_figure(width=5.6, height=4.0)
    for k, s in enumerate(studies):
        color = f"C{k}"
        h = np.asarray(s.sqrt_eta)
        ax.loglog(h, s.error, "o", color=color, label=s.label)
        hh = np.geomspace(h.min(), h.max(), 50)
        ax.loglog(hh, np.exp(s.intercept) * hh ** s.slope, "-", color=color, lw=1.0,
                  label=rf"fit: slope {s.slope:.3f}")
    if fit_max is not None:
        ax.axvline(fit_max, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel(r"$\sqrt{\eta}$ (step in continuum time)")
    ax.set_ylabel(r"$\max_{t\leq T}\,|f_{\rm discrete}(t) - f_{\rm ODE}(t)|$")
    ax.legend(loc="lower right")
    return finish(fig)


def trajectories(runs):
    """Network outputs next to the eq. 7 prediction, against continuum time t = i sqrt(eta).

    Args:
        runs: list of dicts with keys ``label``, ``t`` (times, first entry 0), ``f_net`` and
            ``f_ode`` (arrays of the same length), and optionally ``f_discrete`` (eq. 2 iterated
            at frozen alpha).

    Top: f(t) of the trained networks (solid) and the ODE (black dashed). Bottom: the deviation
    (f_net - f_ode) / |f_net(T) - f_net(0)| (solid) and, if given, the same for f_discrete (dashed):
    the part of the deviation that is pure time discretisation. The time axis is logarithmic, so
    t = 0 is not shown.
    """
    fig, (ax_f, ax_d) = new_figure(nrows=2, width=6.4, height=7.0, sharex=True)
    for k, r in enumerate(runs):
        t = np.asarray(r["t"])[1:]
        f_net = np.asarray(r["f_net"])
        f_ode = np.asarray(r["f_ode"])
        scale = abs(f_net[-1] - f_net[0])
        ax_f.plot(t, f_net[1:], color=f"C{k}", lw=2.6, alpha=0.75, label=r["label"])
        ax_f.plot(t, f_ode[1:], color="k", lw=0.9, ls="--")
        ax_d.plot(t, (f_net[1:] - f_ode[1:]) / scale, color=f"C{k}")
        if r.get("f_discrete") is not None:
            ax_d.plot(t, (np.asarray(r["f_discrete"])[1:] - f_ode[1:]) / scale, color=f"C{k}", lw=1.0, ls="--")
    ax_f.plot([], [], color="k", lw=0.9, ls="--", label="eq. 7 (ODE)")
    ax_d.plot([], [], color="0.3", label="network")
    ax_d.plot([], [], color="0.3", lw=1.0, ls="--", label=r"eq. 2 at frozen $\alpha$")
    ax_d.legend(loc="lower right")
    ax_d.set_xscale("log")
    ax_d.set_xlabel(r"$t = i\sqrt{\eta}$")
    ax_f.set_ylabel(r"$f(t)$")
    ax_d.set_ylabel(r"$(f - f_{\rm ODE}) \,/\, |f_{\rm NN}(T) - f_{\rm NN}(0)|$")
    ax_f.legend(loc="lower left")
    return finish(fig)
