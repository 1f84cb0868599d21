"""Figures of the network-versus-lattice comparison (:mod:`nncosmo_helpers.experiments.lattice_modes`)."""

from __future__ import annotations

import numpy as np

from . import finish, new_figure


def network_vs_lattice(result, *, n_show=None):
    """Masses and amplitudes of paired modes over training, network against lattice field.

    ``result`` is a :class:`~nncosmo_helpers.experiments.lattice_modes.NetworkLatticeModes`.
    Top: mass squared in units of H^2 -- network mu_i^2 (dotted), field k_j^2/a^2 + V'' with expansion
    (solid) and without (dashed), and H^2 (grey); the field's horizon exits are marked on the solid
    curves. Bottom: amplitudes relative to their initial values, same line styles, symmetric-log scale.
    Time axis in Hubble times t H.
    """
    n = len(result.wavenumbers) if n_show is None else int(n_show)
    th = np.asarray(result.t) * result.hubble
    h2 = result.hubble**2
    fig, (ax_m, ax_a) = new_figure(nrows=2, width=7.0, height=7.4, sharex=True)
    for i in range(n):
        c = f"C{i}"
        label = f"i = {i + 1} / k = {i}π/ℓ"
        ax_m.plot(th, result.network_mass2[:, i] / h2, ":", color=c, lw=1.5)
        ax_m.plot(th, result.field_mass2[:, i] / h2, "-", color=c, lw=1.0, label=label)
        ax_m.plot(th, result.field_mass2_static[:, i] / h2, "--", color=c, lw=0.8)
        if 0 < result.horizon_exit[i] <= th[-1] / result.hubble:
            ax_m.plot(result.horizon_exit[i] * result.hubble, 1.0, "o", color=c, ms=4)
        ax_a.plot(th, result.network_relative[:, i], ":", color=c, lw=1.5)
        ax_a.plot(th, result.field_relative[:, i], "-", color=c, lw=1.0, label=label)
        ax_a.plot(th, result.field_relative_static[:, i], "--", color=c, lw=0.8)
    ax_m.axhline(1.0, color="0.5", lw=0.8)
    ax_m.set_yscale("log")
    ax_m.set_ylabel(r"mass$^2/H^2$")
    ax_m.set_title("network $\\mu_i^2$ (dotted), field $k^2/a^2+V''$: expanding (solid), $a=1$ (dashed)",
                   fontsize=9)
    ax_m.legend(fontsize=7.5, ncol=2)
    ax_a.set_yscale("symlog", linthresh=1e-3)
    ax_a.set_xscale("symlog", linthresh=1.0)          # horizon exits happen in the first few Hubble times
    ax_a.set_xlim(0.0, th[-1])
    ax_a.set_xlabel(r"$t\,H$ (Hubble times; linear below 1, logarithmic above)")
    ax_a.set_ylabel("amplitude / initial amplitude")
    return finish(fig)
