"""Trained inhomogeneous networks against the mean-field and mode equations (chapter "Perturbations").

The comparisons themselves are :class:`~nncosmo_helpers.dynamics.ModeComparison` (eqs. 14-16 and the
frozen-kernel eq. 9); this module builds the seed ensembles behind the chapter's spectrum and training
tables (:func:`network_kernels`, :func:`spectrum_ensemble`, :func:`trained_network`; the chapter's
networks are the stored scan ``pt-networks`` of :mod:`nncosmo_helpers.scans.beyond`), splits networks that move from networks
that barely move (:func:`fraction_travelled`), and turns the measurements into the rows of the
chapter's verdict table (:class:`Verdict`, :func:`verdict_table`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import cosmology, dynamics, lattice
from ..ensemble import SeedSpread, over_seeds, spread

# the freezing number kappa_i and the mode mass mu_i^2: dynamics.freezing_numbers / dynamics.network_mass2


# ---------------------------------------------------------------------------------------------
# networks that move
# ---------------------------------------------------------------------------------------------
# One definition of a network that moves: dynamics.fraction_travelled / dynamics.MOVING_FRACTION.
from ..dynamics import MOVING_FRACTION, fraction_travelled, is_moving  # noqa: E402,F401


# ---------------------------------------------------------------------------------------------
# seed ensembles: nncosmo_helpers.ensemble (SeedSpread, spread) is the one definition
# ---------------------------------------------------------------------------------------------
def label(key) -> str:
    """"erf (1, 0.05), 2 hl" for an architecture key (activation, W_std, b_std, hidden_layers[, s])."""
    text = f"{key[0]} ({key[1]:g}, {key[2]:g}), {key[3]} hl"
    return text + (f", ℓH = {key[4]:g}" if len(key) > 4 else "")


class SpectrumEnsemble(NamedTuple):
    """NTK spectra of a grid of architectures and intervals, infinite width and a seed ensemble.

    ``keys``: (activation, W_std, b_std, hidden_layers, s) per configuration, s the interval in Hubble
    lengths; ``seeds``, ``width``: the empirical ensemble. Arrays: ``lam_inf`` (n_cfg, N) and
    ``lam_emp`` (n_cfg, n_seeds, N) eigenvalues (descending); ``overlap_*`` = |v_1 . u|;
    ``parity_*`` = v_1 . P v_1 under x -> -x; ``modes_inf``/``modes_emp``: the decompositions
    ({key: Modes} and {key: [Modes per seed]}); ``kernels``: {key: (n_seeds, N, N) empirical NTKs};
    ``f_init``: {key: (n_seeds, N) initial outputs of the networks}.
    """

    keys: list
    seeds: tuple
    width: int
    lam_inf: np.ndarray
    lam_emp: np.ndarray
    overlap_inf: np.ndarray
    overlap_emp: np.ndarray
    parity_inf: np.ndarray
    parity_emp: np.ndarray
    modes_inf: dict
    modes_emp: dict
    kernels: dict
    f_init: dict

    def index(self, key) -> int:
        return self.keys.index(tuple(key))

    @property
    def gap_inf(self) -> np.ndarray:
        """lambda_1/lambda_2 of the infinite-width kernel, per configuration."""
        return self.lam_inf[:, 0] / self.lam_inf[:, 1]

    @property
    def gap_emp(self) -> np.ndarray:
        """lambda_1/lambda_2 of the empirical kernels, (n_cfg, n_seeds)."""
        return self.lam_emp[..., 0] / self.lam_emp[..., 1]

    @property
    def falloff_emp(self) -> np.ndarray:
        """lambda_5/lambda_1 of the empirical kernels, (n_cfg, n_seeds)."""
        return self.lam_emp[..., 4] / self.lam_emp[..., 0]

    @property
    def falloff_inf(self) -> np.ndarray:
        return self.lam_inf[:, 4] / self.lam_inf[:, 0]

    @property
    def degeneracy(self) -> float:
        """The lambda_1/lambda_2 threshold of "v_1 not defined" at this width (Davis-Kahan budget)."""
        return dynamics.degeneracy_ratio(self.width)

    @property
    def class_inf(self) -> np.ndarray:
        """:func:`~nncosmo_helpers.dynamics.leading_mode_class` of the infinite-width kernels."""
        return dynamics.leading_mode_class(self.overlap_inf, self.gap_inf, degeneracy=self.degeneracy)

    @property
    def class_emp(self) -> np.ndarray:
        """The same decision for every network of the ensemble, (n_cfg, n_seeds)."""
        return dynamics.leading_mode_class(self.overlap_emp, self.gap_emp, degeneracy=self.degeneracy)

    def rows(self) -> list:
        """Table rows: a heading per architecture, then per interval the medians [seed range]."""
        out, prev = [], None
        for c, key in enumerate(self.keys):
            if key[:4] != prev:
                out.append(label(key[:4]))
                prev = key[:4]
            classes = list(self.class_emp[c])
            cls = ", ".join(f"{classes.count(k)} {k}" for k in dynamics.LEADING_MODE_LABELS if classes.count(k))
            out.append([f"{key[4]:g}", f"{self.lam_inf[c, 0] / self.lam_inf.shape[1]:.3g}",
                        f"{self.gap_inf[c]:.3g}", spread(self.gap_emp[c]).text(".3g"),
                        f"{self.falloff_inf[c]:.1e}", spread(self.falloff_emp[c]).text(".1e"),
                        f"{self.overlap_inf[c]:.3f}", spread(self.overlap_emp[c]).text(".3f"),
                        f"{self.parity_inf[c]:+.2f}", cls])
        return out

    HEADERS = ("ℓ·H", "λ₁/N (∞)", "λ₁/λ₂ (∞)", "λ₁/λ₂ (emp.)", "λ₅/λ₁ (∞)", "λ₅/λ₁ (emp.)",
               "|v₁·u| (∞)", "|v₁·u| (emp.)", "parity v₁ (∞)", "v₁ (emp., per seed)")


def build_network(arch, *, width, seed):
    """(apply_fn, params) of architecture ``arch`` = (activation, W_std, b_std, hidden_layers) at ``width``,
    one-dimensional inputs, initialised with ``jax.random.PRNGKey(seed)`` (NTK parameterisation,
    :func:`nncosmo_helpers.network.mlp`). Every network of the chapter is made here."""
    import jax

    from .. import network

    act, w, b, hl = arch
    init_fn, apply_fn = network.mlp(width=int(width), hidden_layers=int(hl), activation=act, W_std=float(w),
                                    b_std=float(b))
    return apply_fn, init_fn(jax.random.PRNGKey(int(seed)), 1)


class NetworkKernels(NamedTuple):
    """One network before training on each interval: ``intervals`` (s in Hubble lengths), ``kernels``
    (n_intervals, N, N), the empirical NTK Theta (eq. 5; decomposed in eqs. 11-13), and ``f_init``
    (n_intervals, N), its outputs."""

    intervals: tuple
    kernels: np.ndarray
    f_init: np.ndarray


def network_kernels(apply_fn, params, grids) -> NetworkKernels:
    """:class:`NetworkKernels` of one network on ``grids`` ({s: inputs (N, 1)})."""
    from .. import ntk

    ss = tuple(grids)
    return NetworkKernels(ss, np.array([np.asarray(ntk.empirical_ntk(apply_fn, params, grids[s])) for s in ss]),
                          np.array([np.asarray(apply_fn(params, grids[s]))[:, 0] for s in ss]))


def spectrum_ensemble(archs, grids, *, width, seeds, measured=None) -> SpectrumEnsemble:
    """Decompose the infinite-width NTK and the empirical NTK of ``len(seeds)`` networks per architecture.

    ``archs``: list of (activation, W_std, b_std, hidden_layers); ``grids``: {s: inputs (N, 1)} with s
    the interval in Hubble lengths. Network seed ``seed`` is :func:`build_network` with that seed; the
    same network is used on every interval. ``measured``: optional {(architecture, seed): NetworkKernels}
    measured beforehand on these grids (the stored scan ``pt-networks``); the networks not in it are
    built and measured here.
    """
    from .. import ntk

    measured = dict(measured or {})
    keys = []
    lam_inf, lam_emp, ov_inf, ov_emp, par_inf, par_emp = [], [], [], [], [], []
    modes_inf, modes_emp, kernels, f_init = {}, {}, {}, {}
    for arch in archs:
        arch = tuple(arch)
        act, w, b, hl = arch
        nk = []
        for seed in seeds:
            m = measured.get((arch, seed))
            if m is None:
                m = network_kernels(*build_network(arch, width=width, seed=seed), grids)
            elif tuple(m.intervals) != tuple(grids):
                raise ValueError(f"{label(arch)}, seed {seed}: measured on intervals {m.intervals}, not {tuple(grids)}")
            nk.append(m)
        for i, (s, x) in enumerate(grids.items()):
            key = (*arch, s)
            keys.append(key)
            kernels[key] = np.array([m.kernels[i] for m in nk])
            f_init[key] = np.array([m.f_init[i] for m in nk])
            mi = dynamics.mode_decomposition(ntk.infinite_width_ntk(x, hidden_layers=hl, activation=act, W_std=w, b_std=b))
            me = [dynamics.mode_decomposition(k) for k in kernels[key]]
            modes_inf[key], modes_emp[key] = mi, me
            lam_inf.append(np.asarray(mi.eigenvalues))
            lam_emp.append([np.asarray(m.eigenvalues) for m in me])
            ov_inf.append(mi.uniform_overlap())
            ov_emp.append([m.uniform_overlap() for m in me])
            par_inf.append(float(dynamics.mode_parity(mi, 1)[0]))
            par_emp.append([float(dynamics.mode_parity(m, 1)[0]) for m in me])
    return SpectrumEnsemble(keys, tuple(seeds), int(width), np.array(lam_inf), np.array(lam_emp), np.array(ov_inf),
                            np.array(ov_emp), np.array(par_inf), np.array(par_emp), modes_inf, modes_emp, kernels,
                            f_init)


class SpectrumSummary(NamedTuple):
    """The spectrum statements of the chapter over a :class:`SpectrumEnsemble`'s grid, decided on the seed
    medians of the empirical kernels (the networks that are trained).

    ``gap``, ``falloff``: seed medians of lambda_1/lambda_2 and lambda_5/lambda_1 per configuration;
    ``big``: the configurations with a large hierarchy (gap > :data:`HIERARCHY_GAP`), ``w01_small``: the
    W_std = 0.1 ones without; ``n_w01``/``n_w1``: how many of ``big`` have W_std = 0.1 / 1;
    ``extremes``: {name: (SeedSpread over seeds, label)} for the smallest gap at W_std = 0.1 ("gap-w01-min"),
    the smallest and largest at W_std = 1 ("gap-w1-min", "gap-w1-max") and the largest lambda_5/lambda_1
    ("lam5-max"); ``n_falloff``: configurations with lambda_5/lambda_1 < :data:`FALLOFF_RATIO`;
    ``gap_emp_factor``: the largest factor between an empirical gap and the infinite-width one, over the
    configurations whose gap is below 1e3 (finite-width fluctuations of the eigenvalues, eq. 13).
    """

    gap: np.ndarray
    falloff: np.ndarray
    big: list
    w01_small: list
    n_w01: int
    n_w1: int
    extremes: dict
    n_falloff: int
    gap_emp_factor: float


def spectrum_summary(spec: SpectrumEnsemble) -> SpectrumSummary:
    """:class:`SpectrumSummary` of ``spec`` (the hierarchy and fall-off statements of section 2.2)."""
    gap = np.median(spec.gap_emp, axis=1)
    fall = np.median(spec.falloff_emp, axis=1)
    idx = range(len(spec.keys))
    big = [c for c in idx if gap[c] > HIERARCHY_GAP]
    w01 = [c for c in idx if spec.keys[c][1] == 0.1]
    w1 = [c for c in idx if spec.keys[c][1] == 1.0]

    def at(c, per_seed):
        return spread(per_seed[c]), label(spec.keys[c])

    extremes = {}
    if w01:
        extremes["gap-w01-min"] = at(min(w01, key=lambda c: gap[c]), spec.gap_emp)
    if w1:
        extremes["gap-w1-min"] = at(min(w1, key=lambda c: gap[c]), spec.gap_emp)
        extremes["gap-w1-max"] = at(max(w1, key=lambda c: gap[c]), spec.gap_emp)
    extremes["lam5-max"] = at(int(np.argmax(fall)), spec.falloff_emp)
    factor = np.abs(np.log(spec.gap_emp / spec.gap_inf[:, None]))[gap < 1e3]
    return SpectrumSummary(gap, fall, big, [c for c in w01 if c not in big], sum(c in big for c in w01),
                           sum(c in big for c in w1), extremes, int(np.sum(fall < FALLOFF_RATIO)),
                           float(np.exp(np.max(factor))) if factor.size else float("nan"))


class LeadingModes(NamedTuple):
    """The one v_1 decision (:func:`~nncosmo_helpers.dynamics.leading_mode_class`) over a spectrum ensemble:
    ``counts`` {class: number of networks}, ``configurations`` {class: labels of the configurations with at
    least one network of that class}, ``n_networks``."""

    counts: dict
    configurations: dict
    n_networks: int


def leading_modes(spec: SpectrumEnsemble) -> LeadingModes:
    """:class:`LeadingModes` of every network (configuration x seed) of ``spec``."""
    cls = spec.class_emp
    counts = {k: int(np.sum(cls == k)) for k in dynamics.LEADING_MODE_LABELS}
    confs = {k: [label(spec.keys[c]) for c in range(len(spec.keys)) if np.any(cls[c] == k)]
             for k in dynamics.LEADING_MODE_LABELS}
    return LeadingModes(counts, confs, int(cls.size))


class CornerKernel(NamedTuple):
    """The kernel at the two ends of the interval, +-l/2 (the two-parameter picture Theta ~ a + b x x').

    ``infinite``: the 2 x 2 infinite-width kernel; ``empirical``: (n_seeds, 2, 2), one per network;
    ``rho`` = Theta(-l/2, l/2)/Theta(l/2, l/2) of the infinite-width kernel: the odd mode wins when
    rho < -1/2. ``corner_empirical``: SeedSpread of the empirical Theta(-l/2, l/2).
    """

    infinite: np.ndarray
    empirical: np.ndarray

    @property
    def rho(self) -> float:
        return float(self.infinite[0, 1] / self.infinite[1, 1])

    @property
    def corner_empirical(self) -> SeedSpread:
        return spread(self.empirical[:, 0, 1])


def corner_kernel(spec: SpectrumEnsemble, key, x) -> CornerKernel:
    """:class:`CornerKernel` of configuration ``key`` = (activation, W_std, b_std, hidden_layers, s) of
    ``spec`` at the two ends of its inputs ``x`` (N, 1): the first and last entries of its kernels."""
    from .. import ntk

    act, w, b, hl, _ = key
    ends = np.asarray(x)[[0, -1]]
    inf = np.asarray(ntk.infinite_width_ntk(ends, hidden_layers=hl, activation=act, W_std=w, b_std=b))
    emp = spec.kernels[tuple(key)][:, [0, -1]][:, :, [0, -1]]
    return CornerKernel(inf, emp)


def overlap_scan(x, b_stds, *, degeneracy, hidden_layers=2, activation="erf", W_std=1.0) -> tuple:
    """|v_1 . u|, the parity of v_1 and the smallest b_std with a uniform v_1 (nan if none), along ``b_stds``
    (infinite-width kernels on the inputs ``x``): (overlaps, parities, flip)."""
    from .. import ntk

    ms = [dynamics.mode_decomposition(ntk.infinite_width_ntk(x, hidden_layers=hidden_layers, activation=activation,
                                                             W_std=W_std, b_std=b)) for b in b_stds]
    overlap = np.array([m.uniform_overlap() for m in ms])
    gaps = np.array([float(m.eigenvalues[0] / m.eigenvalues[1]) for m in ms])
    parity = np.array([dynamics.mode_parity(m, 1)[0] for m in ms])
    uniform = dynamics.leading_mode_class(overlap, gaps, degeneracy=degeneracy) == "uniform"
    flip = float(np.asarray(b_stds)[np.argmax(uniform)]) if np.any(uniform) else float("nan")
    return overlap, parity, flip

# ---------------------------------------------------------------------------------------------
# training ensembles: eqs. 15/16 on networks that move and networks that barely move
# ---------------------------------------------------------------------------------------------
class TrainedNetwork(NamedTuple):
    """One trained network (:func:`trained_network`) against eqs. 15/16 and the frozen-kernel eq. 9."""

    key: tuple
    seed: int
    comparison: object  # dynamics.ModeComparison
    leading_mode: str  # dynamics.leading_mode_class of its initial kernel
    fraction: float  # fraction_travelled of its mean field
    kappa: np.ndarray  # freezing numbers of all its modes, kappa_1 first

    @property
    def moving(self) -> bool:
        return bool(is_moving(self.fraction))

    @property
    def frozen_change(self) -> float:
        """Largest |relative change| of a compared mode i >= 2 with kappa_i < FROZEN_KAPPA and an
        initial amplitude above MIN_AMPLITUDE (nan if there is none)."""
        c = self.comparison
        return largest_frozen_change(self.kappa[1:c.modes_observed.shape[1] + 1], c.modes_observed[0],
                                     c.relative_change_observed)


def largest_frozen_change(kappa, initial_amplitude, relative_change) -> float:
    """The freezing statistic of eq. 16: the largest |relative change| of the modes with
    kappa_i < FROZEN_KAPPA and |initial amplitude| > MIN_AMPLITUDE (nan if there is none).

    The three arrays run over the same modes (the perturbations, i >= 2); ``relative_change`` is
    (end - start)/start of each. Used by the freezing verdict (:attr:`TrainedNetwork.frozen_change`)
    and by the lattice comparison (:func:`nncosmo_helpers.experiments.lattice_modes.summarise`).
    """
    kappa, amp, rel = (np.asarray(a, dtype=float) for a in (kappa, initial_amplitude, relative_change))
    sel = (kappa < FROZEN_KAPPA) & (np.abs(amp) > MIN_AMPLITUDE)
    return float(np.abs(rel[sel]).max()) if np.any(sel) else float("nan")


#: A mode is "frozen" when kappa_i < FROZEN_KAPPA: an overdamped mode from rest changes by about
#: kappa_i of its amplitude (chapter eq. pt-kappa), so by less than 1 %.
FROZEN_KAPPA = 0.01
#: Modes with a smaller initial amplitude are not used for "frozen": their relative change is set by
#: the remainder of eq. 9 (lag and kernel drift, ~1e-3 of the mean field's displacement).
MIN_AMPLITUDE = 1e-2
#: The bar of the "frozen" verdict: a frozen mode changes by less than 5 % of its amplitude (eq. 16
#: allows kappa_i < 1 %; the rest covers the lag and kernel drift).
FROZEN_BAR = 0.05


def trained_network(key, seed, modes, f, steps_recorded, *, degeneracy, eta, beta, loss, steps,
                    n_modes=4) -> TrainedNetwork:
    """:class:`TrainedNetwork` of one training run: outputs ``f`` (rows at ``steps_recorded``, the last at
    ``steps``) of the network ``key``/``seed`` whose initial empirical kernel decomposes into ``modes``,
    compared with eqs. 15/16 and the frozen-kernel eq. 9
    (:func:`~nncosmo_helpers.dynamics.compare_mean_and_modes`); ``degeneracy``: the lambda_1/lambda_2 bar of
    "v_1 not defined" at the network's width (:func:`~nncosmo_helpers.dynamics.degeneracy_ratio`)."""
    c = dynamics.compare_mean_and_modes(modes, f, steps_recorded, eta=eta, beta=beta, loss=loss, n_modes=n_modes)
    lam = c.eigenvalues_over_n
    cls = str(dynamics.leading_mode_class(c.uniform_overlap, lam[0] / lam[1], degeneracy=degeneracy)[()])
    frac = float(fraction_travelled(c.mean_observed[0], c.mean_observed[-1], loss.f0))
    # at the network's initial mean field f_bar(0) (eq. 14), the start of eqs. 15/16
    kappa = dynamics.freezing_numbers(c.eigenvalues_over_n, c.mean_observed[0], loss=loss, eta=eta, beta=beta,
                                      steps=steps)
    return TrainedNetwork(tuple(key), int(seed), c, cls, frac, np.asarray(kappa))


def every(run, record_every, steps):
    """(f, steps) of a recorded training run, every ``record_every``-th step up to ``steps``."""
    rec = np.asarray(run.steps)
    if rec[-1] != steps or np.any(rec % 1) or record_every % int(rec[1] - rec[0]):
        raise ValueError(f"the stored run (recorded every {rec[1] - rec[0]} steps up to {rec[-1]}) does not cover "
                         f"every {record_every}-th of {steps} steps")
    keep = rec % record_every == 0
    return np.asarray(run.f)[keep], rec[keep]


def spectrum_freezing_numbers(spec: SpectrumEnsemble, c: int, *, eta, beta, loss, steps) -> np.ndarray:
    """Freezing numbers, shape (n_seeds, N), of configuration ``c`` of ``spec`` before training: each seed's
    empirical kernel at that network's own initial mean field f_bar(0) = v_1 . f(0)/sqrt(N)
    (:func:`nncosmo_helpers.dynamics.freezing_numbers`, the definition :func:`trained_network` uses)."""
    key = tuple(spec.keys[c])
    out = []
    for j, md in enumerate(spec.modes_emp[key]):
        f_bar0 = float(md.project(spec.f_init[key][j])[0])
        out.append(dynamics.freezing_numbers(spec.lam_emp[c, j] / md.n_points, f_bar0, loss=loss, eta=eta,
                                             beta=beta, steps=steps))
    return np.array(out)


def training_rows(trained) -> list:
    """Table rows per trained network: v_1 class, fraction travelled, kappa_1, kappa_2, eq. 15 error,
    frozen-kernel eq. 9 error, largest mode displacement, largest change of a frozen mode."""
    rows, prev = [], None
    for r in trained:
        if r.key != prev:
            rows.append(label(r.key))
            prev = r.key
        c = r.comparison
        fz = r.frozen_change
        rows.append([str(r.seed), r.leading_mode, "moves" if r.moving else "barely moves", f"{r.fraction:.2g}",
                     f"{r.kappa[0]:.2g}", f"{r.kappa[1]:.1e}", f"{c.mean_error:.1e}",
                     f"{max(c.mean_error_reference, c.mode_error_reference.max()):.1e}",
                     f"{c.mode_displacement.max():.1e}", "–" if np.isnan(fz) else f"{fz:.1e}"])
    return rows


TRAINING_HEADERS = ("seed", "v₁", "", "fraction to f₀", "κ₁", "κ₂", "eq. 15 error", "eq. 9 error",
                    "max mode displ.", "max frozen change")


# ---------------------------------------------------------------------------------------------
# verdicts
# ---------------------------------------------------------------------------------------------
class Verdict(NamedTuple):
    """One row of the chapter's verdict table: the paper's claim, what was measured, on what, the verdict."""

    name: str
    claim: str
    measured: str
    rests_on: str
    verdict: str


def grid_verdict(n_hold: int, n_total: int, *, what: str = "") -> str:
    """"Confirmed" if a statement holds on every tested case, "Refuted" if on none, else "Qualified"."""
    if n_total == 0:
        return "Not tested"
    if n_hold == n_total:
        return "Confirmed"
    if n_hold == 0:
        return "Refuted"
    return "Qualified" + (f": {what}" if what else "")


#: The hierarchy is "large" when mode 2 stays frozen (kappa_2 < FROZEN_KAPPA) while the mean field
#: completes its approach (kappa_1 ~ 1): lambda_1/lambda_2 > 1/FROZEN_KAPPA = 100.
HIERARCHY_GAP = 1.0 / FROZEN_KAPPA
#: The higher eigenvalues "fall off" when mode 5 (and every later one) stays frozen under the same
#: condition: lambda_5/lambda_1 < FROZEN_KAPPA.
FALLOFF_RATIO = FROZEN_KAPPA


def spectrum_verdicts(spec: SpectrumEnsemble) -> list:
    """Verdicts on the paper's hierarchy, fall-off and uniform-mode statements over ``spec``'s grid.

    Each statement is decided per configuration on the seed medians of the empirical kernels (the
    networks that are trained), with the infinite-width kernel reported beside them.
    """
    n = len(spec.keys)
    gap = np.median(spec.gap_emp, axis=1)
    big = [k for k, g in zip(spec.keys, gap) if g > HIERARCHY_GAP]
    fall = np.median(spec.falloff_emp, axis=1)
    n_fall = int(np.sum(fall < FALLOFF_RATIO))
    cls = spec.class_emp
    counts = {k: int(np.sum(cls == k)) for k in dynamics.LEADING_MODE_LABELS}
    grid = f"{n} configurations of the paper's Fig. 5 grid, {len(spec.seeds)} seeds, width {spec.width}"
    return [
        Verdict("hierarchy", "“a large hierarchy between the first and the following eigenvalues”",
                f"λ₁/λ₂ > {HIERARCHY_GAP:g} in {len(big)} of {n} (seed medians {spread(gap).text('.2g')})",
                grid, grid_verdict(len(big), n, what=f"holds in {len(big)} of {n}")),
        Verdict("falloff", "“(in particular the higher eigenvalues)”",
                f"λ₅/λ₁ < {FALLOFF_RATIO:g} in {n_fall} of {n} (largest seed median {fall.max():.1e})",
                grid, grid_verdict(n_fall, n, what=f"holds in {n_fall} of {n}")),
        Verdict("uniform", "“the largest eigenvalue corresponds to the mean field (i.e. the uniform evolution)”",
                f"v₁ uniform in {counts['uniform']}, not uniform in {counts['not uniform']}, "
                f"not defined in {counts['not defined']} of {cls.size} networks",
                grid, grid_verdict(counts["uniform"], cls.size, what=f"uniform in {counts['uniform']} of {cls.size}")),
    ]


def split_trained(trained) -> tuple:
    """(moving with a uniform v_1, barely moving with a uniform v_1, v_1 not uniform): the three groups
    the verdicts rest on. (For a non-uniform v_1 the "mean field" v_1 . f/sqrt(N) does not head for f_0,
    so its fraction travelled says nothing about whether the network moves.)"""
    mov_uni = [r for r in trained if r.moving and r.leading_mode == "uniform"]
    still = [r for r in trained if not r.moving and r.leading_mode == "uniform"]
    non = [r for r in trained if r.leading_mode == "not uniform"]
    return mov_uni, still, non


class TrainingSummary(NamedTuple):
    """The numbers the chapter states about a trained ensemble (:func:`trained_network` per network).

    ``counts``: {name: integer}: "grid-trained"/"grid-moving" (networks of the spectrum grid ``grid_keys``
    trained / moving), "moving-uniform" and "still" (the first two groups of :func:`split_trained`), and
    "grid-moving-uniform"/"off-grid-moving-uniform" (the moving uniform-v_1 networks on / off that grid).
    ``spreads``: {name: (SeedSpread, what)}: each a statistic of one group of networks, its median over
    networks taken seed by seed and then over seeds (:func:`nncosmo_helpers.ensemble.over_seeds`), with
    ``what`` naming it. ``still_kappa1_max``: the largest kappa_1 of a barely moving network and the
    SeedSpread of kappa_1 over the seeds of its configuration (the tolerance of that maximum).
    """

    counts: dict
    spreads: dict
    still_kappa1_max: tuple


def training_summary(trained, *, grid_keys, focus) -> TrainingSummary:
    """:class:`TrainingSummary` of ``trained``; ``focus``: the configuration key of the moving, uniform-v_1
    network whose modes the chapter follows one by one (eq. 16 against eq. 9 for mode 2)."""
    mov_uni, still, non = split_trained(trained)
    on_grid = set(map(tuple, grid_keys))
    grid_runs = [r for r in trained if r.key in on_grid]
    still_w01 = [r for r in still if r.key[1] == 0.1]
    a_runs = [r for r in trained if r.key == tuple(focus)]
    frozen = [r for r in mov_uni if not np.isnan(r.frozen_change)]

    def seeds(rows, value):
        return over_seeds([value(r) for r in rows], [r.seed for r in rows])

    fl = f"{label(tuple(focus))}"
    spreads = {
        "mean-err-uni": (seeds(mov_uni, lambda r: r.comparison.mean_error), "the eq. 15 error, moving uniform-v1 networks"),
        "still-fraction": (seeds(still_w01, lambda r: r.fraction), "the fraction travelled, (0.1, 0.01) networks"),
        "still-kappa1": (seeds(still_w01, lambda r: r.kappa[0]), "kappa_1 of the (0.1, 0.01) networks"),
        "still-err": (seeds(still, lambda r: r.comparison.mean_error), "the eq. 15 error over the barely moving networks"),
        "mean-err-odd": (seeds(non, lambda r: r.comparison.mean_error), "the eq. 15 error, odd-v1 networks"),
        "mode2-disp-odd": (seeds(non, lambda r: r.comparison.mode_displacement[0]), "mode 2's displacement, odd v1"),
        "rel-frozen": (seeds(frozen, lambda r: r.frozen_change), "the frozen modes' change, moving uniform-v1 networks"),
        "disp-uni": (seeds(mov_uni, lambda r: r.comparison.mode_displacement.max()), "the largest mode displacement"),
        "ref-err": (seeds(trained, lambda r: max(r.comparison.mean_error_reference, r.comparison.mode_error_reference.max())),
                    "the frozen-kernel eq. 9 error over all trained networks"),
        "a-kappa2": (seeds(a_runs, lambda r: r.kappa[1]), f"kappa_2 of {fl}"),
        "a-rel-obs": (seeds(a_runs, lambda r: abs(r.comparison.relative_change_observed[0])), f"mode 2's change, {fl}"),
        "a-rel-pred": (seeds(a_runs, lambda r: abs(r.comparison.relative_change_predicted[0])), f"eq. 16's mode 2 change, {fl}"),
    }
    n_grid_mov_uni = sum(r.key in on_grid for r in mov_uni)
    counts = {"grid-trained": len(grid_runs), "grid-moving": sum(r.moving for r in grid_runs),
              "moving-uniform": len(mov_uni), "grid-moving-uniform": n_grid_mov_uni,
              "off-grid-moving-uniform": len(mov_uni) - n_grid_mov_uni, "still": len(still)}
    kmax = (float("nan"), spread([]))
    if still:
        top = max(still, key=lambda r: r.kappa[0])
        kmax = (float(top.kappa[0]), spread([r.kappa[0] for r in still if r.key == top.key]))
    return TrainingSummary(counts, spreads, kmax)


def training_verdicts(trained) -> list:
    """Verdicts on eq. 15 (mean field), freezing (eq. 16) and the hierarchical separation, split into
    networks that move (fraction travelled >= MOVING_FRACTION) and networks that barely move."""
    mov_uni, still, non = split_trained(trained)
    bar = dynamics.MEAN_FIELD_BAR

    def seeds(rows, value):
        """Median over seeds of the per-seed median over the networks, with the seed range (the table's
        "median [seed range]"), and the largest value over all networks (what a verdict bar applies to)."""
        v = [value(r) for r in rows]
        return over_seeds(v, [r.seed for r in rows]), float(np.max(v))

    def on(rows):
        keys = sorted({label(r.key) for r in rows})
        return f"{len(rows)} networks: " + "; ".join(keys) if rows else "no network"

    out = []
    if mov_uni:
        err, worst = seeds(mov_uni, lambda r: r.comparison.mean_error)
        ok = worst < bar
        out.append(Verdict("eq15-moving", "eq. 15: the mean field follows the homogeneous evolution with α → λ₁/N",
                           f"end-point error {err.text('.1e')} of the displacement, largest {worst:.1e} (bar {bar:g})",
                           "moving, v₁ uniform: " + on(mov_uni), "Confirmed" if ok else "Not confirmed"))
    else:
        out.append(Verdict("eq15-moving", "eq. 15: the mean field follows the homogeneous evolution with α → λ₁/N",
                           "–", "no moving network with a uniform v₁", "Not tested"))
    if still:
        err = seeds(still, lambda r: r.comparison.mean_error)[0]
        k1 = seeds(still, lambda r: r.kappa[0])[0]
        out.append(Verdict("eq15-still", "eq. 15 on networks that barely move",
                           f"error {err.text('.1e')}; κ₁ = {k1.text('.1e')}, fraction to f₀ "
                           f"{seeds(still, lambda r: r.fraction)[0].text('.1e')}",
                           "barely moving, v₁ uniform: " + on(still),
                           "Not tested (the error is the lag of eq. 9 by construction)"))
    if non:
        err = seeds(non, lambda r: r.comparison.mean_error)[0]
        least = float(min(r.comparison.mean_error for r in non))
        out.append(Verdict("eq15-nonuniform", "eq. 15 when v₁ is not uniform",
                           f"end-point error {err.text('.2g')} of the displacement, smallest {least:.2g}",
                           "v₁ not uniform: " + on(non), "Refuted" if least > 1.0 else "Not confirmed"))
    fz = [r for r in mov_uni if not np.isnan(r.frozen_change)]
    if fz:
        ch, worst = seeds(fz, lambda r: r.frozen_change)
        out.append(Verdict("freezing-moving", "“this suppression … leads to a freezing of the perturbations” (eq. 16)",
                           f"modes with κᵢ < {FROZEN_KAPPA:g} change by {ch.text('.1e')} of their amplitude, "
                           f"largest {worst:.1e} (bar {FROZEN_BAR:g}), while the mean field travels "
                           f"{seeds(fz, lambda r: r.fraction)[0].text('.2g')} of the way",
                           "moving, v₁ uniform: " + on(fz), "Confirmed" if worst < FROZEN_BAR else "Not confirmed"))
    else:
        out.append(Verdict("freezing-moving", "“this suppression … leads to a freezing of the perturbations” (eq. 16)",
                           "–", f"no moving network with a uniform v₁ and a mode of κᵢ < {FROZEN_KAPPA:g}", "Not tested"))
    if still:
        kmax = max(float(r.kappa[0]) for r in still)
        out.append(Verdict("freezing-still", "freezing on networks that barely move",
                           f"every mode has κᵢ ≤ κ₁ ≤ {kmax:.1e}",
                           "barely moving, v₁ uniform: " + on(still),
                           "Not tested (every mode is frozen because κ ≪ 1, the mean field too)"))
    if mov_uni:
        disp, worst = seeds(mov_uni, lambda r: r.comparison.mode_displacement.max())
        out.append(Verdict("separation", "“the hierarchical separation between the evolution of the perturbation "
                           "and the mean evolution” (Fig. 5)",
                           f"largest mode displacement {disp.text('.1e')} of the mean field's, largest over "
                           f"the networks {worst:.1e}",
                           "moving, v₁ uniform: " + on(mov_uni), "Confirmed" if worst < 1.0 else "Not confirmed"))
    return out


def verdict_table(verdicts) -> tuple:
    """(headers, rows) of the chapter's verdict table, one row per :class:`Verdict`."""
    return (("claim (paper)", "measured (median [seed range])", "rests on", "verdict"),
            [[v.claim, v.measured, v.rests_on, v.verdict] for v in verdicts])


class FieldMasses(NamedTuple):
    """Mass terms of network mode i against the field's Fourier mode with the same node count (eqs. 16, 19).

    ``nodes``: sign changes of v_1..v_n; ``wavenumbers``: k = pi (i - 1)/l of the paired cosine modes;
    ``eigenvalues_over_n``: lambda_i/N; ``curvature``: L''(f_bar(0)); ``network`` = mu_i^2 =
    (lambda_i/N) L'' (eq. 16) and ``field`` = M_k^2 = k^2 + (lambda_1/N) L'' (eq. 19 with the damping-correct
    gradient sign, V = (lambda_1/N) L); ``field_paper_sign`` = (lambda_1/N) L'' - k^2 (the printed sign);
    ``critical`` = (3H/2)^2 (above it a mode oscillates) and ``freeze`` = 3H/T (far below it a mode is
    frozen over the run).
    """

    nodes: np.ndarray
    wavenumbers: np.ndarray
    eigenvalues_over_n: np.ndarray
    curvature: float
    network: np.ndarray
    field: np.ndarray
    field_paper_sign: np.ndarray
    critical: float
    freeze: float


def field_masses(modes, f_bar0, *, length, loss, eta, beta, steps, n_show=10) -> FieldMasses:
    """:class:`FieldMasses` of the first ``n_show`` modes of ``modes`` (a kernel decomposition) for a mean
    field starting at ``f_bar0`` on an interval of ``length``, trained ``steps`` steps with (eta, beta)."""
    lam_n = np.asarray(modes.eigenvalues)[:n_show] / np.asarray(modes.eigenvectors).shape[0]
    k = np.asarray(dynamics.field_wavenumbers(n_show, length))
    lpp = float(loss.second(f_bar0))
    flrw = cosmology.flrw_parameters(eta, beta)
    friction = flrw.friction
    field = np.asarray(lattice.mode_mass2(k, 0.0, hubble=flrw.hubble, loss=loss, coupling=lam_n[0], phi_bar=f_bar0))
    return FieldMasses(np.asarray(dynamics.mode_sign_changes(modes, n_show)), k, lam_n, lpp,
                       np.asarray(dynamics.network_mass2(lam_n, f_bar0, loss), dtype=float),
                       field, lam_n[0] * lpp - k**2, (friction / 2) ** 2, friction / (steps * np.sqrt(eta)))


def field_verdicts(*, mass_ratio_2, mean_error, network_min, field_min, rests_on) -> list:
    """Verdicts on the match of eq. 16 with eq. 19 and on the lattice comparison (chapter "Perturbations").

    ``mass_ratio_2``: M_2^2/mu_2^2, the field mode's mass over the network mode's with the same node
    count; ``mean_error``, ``network_min``, ``field_min``: per-seed lists of the lattice comparison (the
    homogeneous modes' end-point disagreement in units of the mean field's displacement, the smallest
    relative amplitude of a network mode i >= 2 and of a field mode j >= 1); ``rests_on``: the networks.
    """
    err = spread(mean_error)
    nmin, fmin = spread(network_min), spread(field_min)
    opposite = mass_ratio_2 > 1 and nmin.low > 0 and fmin.high < 0
    return [
        Verdict("eq18", "eq. 15 is the homogeneous field equation 18 (lattice, same initial profile)",
                f"end points agree to {err.text('.1e')} of the displacement (bar {dynamics.MEAN_FIELD_BAR:g})",
                rests_on, "Confirmed" if err.high < dynamics.MEAN_FIELD_BAR else "Not confirmed"),
        Verdict("eq19", "“(19) is identical to (16) when neglecting the spatial gradient term … and assuming λᵢ = λ₁”",
                f"same damped-oscillator form; mode 2: field mass² {mass_ratio_2:.2g} × the network's; network modes "
                f"never change sign (min {nmin.text('.2f')}), field modes do (min {fmin.text('.2f')})",
                rests_on, "Qualified: true as stated, but the perturbation masses are ordered oppositely"
                if opposite else "Qualified"),
    ]


# ---------------------------------------------------------------------------------------------
# the sign of the friction term (chapter "Appendix derivations")
# ---------------------------------------------------------------------------------------------
class FrictionSign(NamedTuple):
    """A trained network's mean field against eq. 15 with the damping sign and with the printed sign.

    ``steps``; ``observed``: f_bar = v_1 . f/sqrt(N) of the network; ``damped``/``antidamped``: eq. 15 with
    the friction -beta_tilde = (1 - beta)/sqrt(eta) (eqs. 5, 7, 9) and with +beta_tilde (as eqs. 15, 16, 26
    print it); ``iterated``: the frozen-kernel iteration of eq. 2 projected on v_1; ``overlap``: |v_1 . u|;
    ``leading``: the v_1 class (:func:`~nncosmo_helpers.dynamics.leading_mode`); ``rate``: the growth rate
    per step of |antidamped - damped| fitted over steps 15..end; ``rate_exact``: the positive root of
    s^2 + beta_tilde s + mu_1^2 = 0 times sqrt(eta) (the printed sign's growth per step), mu_1^2 =
    (lambda_1/N) L''(f_bar(0)) (:func:`~nncosmo_helpers.dynamics.network_mass2`; m^2 for the quadratic loss).
    The errors are relative to the network's excursion |f_bar(T) - f_bar(0)|: ``err_damped``,
    ``err_anti`` (max over time of the distance to the network), and the damped error split through the
    iteration: ``lag`` (iteration vs eq. 15: the one-step lag) and ``drift`` (network vs iteration).
    """

    beta: float
    steps: np.ndarray
    observed: np.ndarray
    damped: np.ndarray
    antidamped: np.ndarray
    iterated: np.ndarray
    overlap: float
    leading: str
    rate: float
    rate_exact: float

    def _rel(self, a, b) -> float:
        return cosmology.relative_deviation(a, b, self.observed)

    @property
    def err_damped(self) -> float:
        return self._rel(self.damped, self.observed)

    @property
    def err_anti(self) -> float:
        return self._rel(self.antidamped, self.observed)

    @property
    def lag(self) -> float:
        return self._rel(self.damped, self.iterated)

    @property
    def drift(self) -> float:
        return self._rel(self.iterated, self.observed)


def friction_sign(apply_fn, params, x, *, eta, beta, loss, steps, fit_from=15) -> FrictionSign:
    """Train the network (eq. 2) and compare its mean field with eq. 15 under both friction signs
    (:func:`~nncosmo_helpers.dynamics.predict_mean_and_modes`, ``friction_sign`` = +1 and -1). ``rate_exact``
    is exact for the quadratic loss (linearised at f_bar(0) otherwise). See :class:`FrictionSign`."""
    from ..train import train_momentum

    run = train_momentum(apply_fn, params, x, eta=eta, beta=beta, loss=loss, steps=steps)
    modes = dynamics.mode_decomposition(run.ntk_initial)
    pred = {sgn: np.asarray(dynamics.predict_mean_and_modes(modes, run.f[0], eta=eta, beta=beta, loss=loss,
                                                            steps=run.steps, friction_sign=sgn)[0]) for sgn in (1, -1)}
    gamma = cosmology.flrw_parameters(eta, beta).friction
    kap = float(dynamics.network_mass2(float(modes.eigenvalues[0]) / np.asarray(run.f).shape[1],
                                       float(modes.project(run.f[0])[0]), loss))  # mu_1^2 at f_bar(0)
    iterated = dynamics.iterate_linearized(run.ntk_initial, run.f[0], eta=eta, beta=beta, loss=loss, steps=run.steps)
    gap = np.log(np.abs(pred[-1] - pred[1])[fit_from:])
    return FrictionSign(float(beta), np.asarray(run.steps), np.asarray(modes.project(run.f)[0]), pred[1], pred[-1],
                        np.asarray(modes.project(iterated)[0]), modes.uniform_overlap(), dynamics.leading_mode(modes),
                        float(np.polyfit(np.asarray(run.steps)[fit_from:], gap, 1)[0]),
                        float((gamma + np.sqrt(gamma**2 - 4 * kap)) / 2 * np.sqrt(eta)))
