"""Network modes against lattice-field modes, from the same initial profile on the same interval.

A network trained with eq. 2 on N equally spaced inputs of an interval of length l has, in the
frozen-kernel continuum limit, the modes of eq. 16 (damping sign): mode i of the initial NTK obeys

    delta_i'' + 3H delta_i' + mu_i^2 delta_i = 0,      mu_i^2 = (lambda_i/N) L''(f_bar)       (network)

while the field of eq. 17 (gradient sign corrected) on the same interval, with Neumann ends and
V = (lambda_1/N) L so that its homogeneous mode is the network's mean field (eq. 15 = eq. 18), has
the cosine modes of eq. 19

    c_j'' + 3H c_j' + M_j^2 c_j = 0,    M_j^2 = k_j^2/a^2 + (lambda_1/N) L''(phi_bar),  k_j = pi j/l   (field)

(:mod:`nncosmo_helpers.lattice`). Network mode i, whose eigenvector has i - 1 nodes, is paired with
the cosine mode j = i - 1 of the same number of nodes. :func:`compare_network_lattice` trains the
network (:func:`nncosmo_helpers.train.train_momentum`), evolves the field from the network's
initial outputs (at rest, like the network) in de Sitter space (a = e^{Ht}) and without expansion
(a = 1), and returns both side by side over the training time t = step sqrt(eta).

A field mode leaves the Hubble radius when k_j/a = H, at t_j = ln(k_j/H)/H; outside it, the
gradient term is negligible and the mode evolves like the homogeneous one. The network has no
gradient term: its mode i is as light as lambda_i/lambda_1 times the mean field, and a mode with
mu_i^2 << (3H/2)^2 barely moves (the freezing number kappa_i = mu_i^2 T/(3H) of the perturbations
chapter).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _validate, cosmology, dynamics, lattice
from ..train import train_momentum


class NetworkLatticeModes(NamedTuple):
    """A trained network and the lattice field, mode by mode (:func:`compare_network_lattice`).

    Arrays over time have one row per recorded step; mode arrays one column per paired mode
    (network mode i = 1..n_modes, field cosine mode j = i - 1).

    Attributes:
        steps, t: recorded steps and continuum times t = step sqrt(eta).
        hubble: the de Sitter rate H = (1 - beta)/(3 sqrt(eta)) of the optimiser (eq. 4).
        length: the interval's length l; ``wavenumbers``: k_j = pi j/l of the paired cosine modes.
        nodes: sign changes of the NTK eigenvectors v_1..v_n_modes (i - 1 when the pairing holds).
        eigenvalues_over_n: lambda_i/N of the initial NTK.
        coupling: lambda_1/N, the coupling of the field's potential V = coupling * L.
        network_mass2: mu_i^2(t) = (lambda_i/N) L''(f_bar(t)) (:func:`nncosmo_helpers.dynamics.network_mass2`),
            f_bar from the network's projection on v_1.
        field_mass2, field_mass2_static: M_j^2(t) = k_j^2/a^2 + coupling L''(phi_bar(t)) with
            a = e^{Ht} (expanding) and a = 1 (static), phi_bar the field's lattice mean
            (:func:`nncosmo_helpers.lattice.mode_mass2`).
        horizon_exit: t_j = ln(k_j/H)/H, the time at which k_j/a = H (0 for k_j <= H).
        kappa: the network's freezing numbers mu_i^2(0) T/(3H) (:func:`nncosmo_helpers.dynamics.freezing_numbers`).
        network_amplitude: v_i . f(t) (for i = 1 this is sqrt(N) f_bar, eq. 14).
        field_amplitude, field_amplitude_static: cosine coefficients c_j(t)
            (:func:`nncosmo_helpers.lattice.mode_amplitudes`, Neumann).
    """

    steps: np.ndarray
    t: np.ndarray
    hubble: float
    length: float
    wavenumbers: np.ndarray
    nodes: np.ndarray
    eigenvalues_over_n: np.ndarray
    coupling: float
    network_mass2: np.ndarray
    field_mass2: np.ndarray
    field_mass2_static: np.ndarray
    horizon_exit: np.ndarray
    kappa: np.ndarray
    network_amplitude: np.ndarray
    field_amplitude: np.ndarray
    field_amplitude_static: np.ndarray

    @staticmethod
    def _relative(amplitude):
        return amplitude / amplitude[0]

    @property
    def network_relative(self) -> np.ndarray:
        """Network mode amplitudes relative to their initial values."""
        return self._relative(self.network_amplitude)

    @property
    def field_relative(self) -> np.ndarray:
        """Field mode amplitudes (expanding) relative to their initial values."""
        return self._relative(self.field_amplitude)

    @property
    def field_relative_static(self) -> np.ndarray:
        """Field mode amplitudes (a = 1) relative to their initial values."""
        return self._relative(self.field_amplitude_static)

    def table(self) -> list:
        """One dict per paired mode: masses at t = 0 in units of H^2, horizon exit, kappa, and the
        amplitude at the end of training relative to the start (network, field expanding, field static)."""
        h2 = self.hubble**2
        return [
            {"i": i + 1, "nodes": int(self.nodes[i]), "k/H": float(self.wavenumbers[i] / self.hubble),
             "mu2/H2": float(self.network_mass2[0, i] / h2), "M2/H2": float(self.field_mass2[0, i] / h2),
             "exit H t": float(self.horizon_exit[i] * self.hubble), "kappa": float(self.kappa[i]),
             "network end/start": float(self.network_relative[-1, i]),
             "field end/start": float(self.field_relative[-1, i]),
             "static field end/start": float(self.field_relative_static[-1, i])}
            for i in range(len(self.wavenumbers))
        ]


def compare_network_lattice(apply_fn, params, x, *, eta, beta, loss, steps, n_modes=6, record_every=1, run=None):
    """Train a network and evolve the lattice field from its initial outputs; compare mode by mode.

    Args:
        apply_fn, params: the network.
        x: inputs of shape (N, 1), equally spaced and including both ends of the interval
            (e.g. :func:`nncosmo_helpers.dynamics.centred_interval`): the Neumann nodes of the lattice.
        eta, beta, loss, steps, record_every: training as in :func:`nncosmo_helpers.train.train_momentum`.
        n_modes: number of paired modes (network i = 1..n_modes, field j = 0..n_modes - 1).
        run: optional: the :class:`~nncosmo_helpers.train.TrainResult` of exactly this training (recorded
            every ``record_every`` steps, with its initial NTK), used instead of training again.

    Returns a :class:`NetworkLatticeModes`.
    """
    eta = _validate.eta(eta)
    beta = _validate.beta(beta)
    x_np = _validate.finite_array("x", x)
    if x_np.ndim != 2 or x_np.shape[1] != 1 or x_np.shape[0] < 2:
        raise ValueError(f"x must have shape (N, 1) with N >= 2 (one-dimensional inputs), got {x_np.shape}")
    n = x_np.shape[0]
    n_modes = _validate.integer("n_modes", n_modes, low=1)
    if n_modes > n:
        raise ValueError(f"n_modes must be <= N = {n}, got {n_modes}")
    length = float(x_np[-1, 0] - x_np[0, 0])
    if length <= 0 or not np.allclose(x_np[:, 0] - x_np[0, 0], np.linspace(0.0, length, n), rtol=0, atol=1e-12 * length):
        raise ValueError("x must be equally spaced and increasing (the nodes of the lattice)")

    if run is None:
        run = train_momentum(apply_fn, params, x, eta=eta, beta=beta, loss=loss, steps=steps, record_every=record_every)
    elif (run.ntk_initial is None or int(np.asarray(run.steps)[-1]) != steps
          or len(run.steps) != steps // record_every + 1):
        raise ValueError(f"the given run must record every {record_every} of {steps} steps and carry its initial NTK")
    f = np.asarray(run.f, dtype=float)
    modes = dynamics.mode_decomposition(run.ntk_initial)
    lam_n = np.asarray(modes.eigenvalues) / n
    coupling = float(lam_n[0])
    flrw = cosmology.flrw_parameters(eta, beta)
    hubble = flrw.hubble
    t = np.asarray(run.steps) * np.sqrt(eta)

    fbar, delta = (np.asarray(a) for a in modes.project(f))  # eq. 14: f_bar = v_1.f/sqrt(N), delta_i = v_i.f
    net_amp = np.concatenate([np.sqrt(n) * fbar[:, None], delta], axis=1)[:, :n_modes]  # v_i.f, i = 1..n_modes
    net_mass2 = np.asarray(dynamics.network_mass2(lam_n[None, :n_modes], fbar[:, None], loss), dtype=float)

    k = np.asarray(lattice.wavenumbers(n, length, "neumann"))[:n_modes]
    kw = dict(length=length, hubble=hubble, loss=loss, coupling=coupling, t=t, boundary="neumann")
    field = {}
    for expanding in (True, False):
        phi = lattice.solve_field(f[0], 0.0, expanding=expanding, **kw)
        c = np.asarray(lattice.mode_amplitudes(phi, "neumann"))
        # M_j^2(t) = k_j^2/a^2 + coupling L''(phi_bar(t)), a of the same background as the solve above
        mass2 = np.asarray(lattice.mode_mass2(k, t, hubble=hubble, loss=loss, coupling=coupling, phi_bar=c[:, 0],
                                              expanding=expanding))
        field[expanding] = (c[:, :n_modes], mass2)

    with np.errstate(divide="ignore"):
        exit_time = np.where(k > hubble, np.log(np.where(k > 0, k, 1.0) / hubble) / hubble, 0.0)
    # kappa_i = mu_i^2(0) T/(3H) at the initial mean field f_bar(0): dynamics.freezing_numbers
    kappa = dynamics.freezing_numbers(lam_n[:n_modes], float(fbar[0]), loss=loss, eta=eta, beta=beta,
                                      steps=int(np.asarray(run.steps)[-1]))
    return NetworkLatticeModes(
        steps=np.asarray(run.steps), t=t, hubble=float(hubble), length=length, wavenumbers=k,
        nodes=dynamics.mode_sign_changes(modes, n_modes), eigenvalues_over_n=lam_n[:n_modes], coupling=coupling,
        network_mass2=net_mass2, field_mass2=field[True][1], field_mass2_static=field[False][1],
        horizon_exit=exit_time, kappa=kappa, network_amplitude=net_amp, field_amplitude=field[True][0],
        field_amplitude_static=field[False][0],
    )


class LatticeSummary(NamedTuple):
    """Seed statistics of :func:`compare_network_lattice` over several networks (one per seed).

    ``spreads``: {name: SeedSpread} of, per network: "mean-err" (the homogeneous modes' end-point
    disagreement, network against lattice, in units of the mean field's displacement: eq. 15 against
    eq. 18), "mu2-max" (mode 2's mass squared mu_2^2/H^2 at t = 0, the largest of the perturbations),
    "M2-min" (the paired field mode's k_1^2 + V'' in units of H^2), "exit-max" (the last horizon exit,
    H t), "net-min" (the smallest relative amplitude of a network mode i >= 2), "field-min" (the same
    for the field's modes j >= 1, expanding or not), "field-end" / "field-end-static" (the largest
    field mode j >= 1 at the end relative to its start, with and without expansion), "net-end-dev" (the
    largest end change of a network mode i >= 3), "frozen-dev" (the freezing statistic of eq. 16 on
    the network's modes i >= 2: :func:`nncosmo_helpers.experiments.modes.largest_frozen_change`; a network
    without such a mode is left out), "vpp-over-h2" (V''/H^2 at the end).
    """

    spreads: dict

    def __getitem__(self, name):
        return self.spreads[name]


def summarise(comparisons) -> LatticeSummary:
    """:class:`LatticeSummary` of a list of :class:`NetworkLatticeModes` (one per seed)."""
    from ..ensemble import spread
    from .modes import largest_frozen_change

    ms = list(comparisons)
    per = {
        "mean-err": [abs(m.network_relative[-1, 0] - m.field_relative[-1, 0]) / abs(m.network_relative[-1, 0] - 1)
                     for m in ms],
        "mu2-max": [m.network_mass2[0, 1] / m.hubble**2 for m in ms],
        "M2-min": [m.field_mass2[0, 1] / m.hubble**2 for m in ms],
        "exit-max": [m.horizon_exit[-1] * m.hubble for m in ms],
        "net-min": [float(np.min(m.network_relative[:, 1:])) for m in ms],
        "field-min": [min(float(np.min(m.field_relative[:, 1:])), float(np.min(m.field_relative_static[:, 1:])))
                      for m in ms],
        "field-end": [np.max(np.abs(m.field_relative[-1, 1:])) for m in ms],
        "net-end-dev": [np.max(np.abs(m.network_relative[-1, 2:] - 1)) for m in ms],
        "frozen-dev": [largest_frozen_change(m.kappa[1:], m.network_amplitude[0, 1:], m.network_relative[-1, 1:] - 1)
                       for m in ms],
        "field-end-static": [np.max(np.abs(m.field_relative_static[-1, 1:])) for m in ms],
        "vpp-over-h2": [m.field_mass2[-1, 0] / m.hubble**2 for m in ms],
    }
    return LatticeSummary({k: spread(v) for k, v in per.items()})
