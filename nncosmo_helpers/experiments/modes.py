"""Trained inhomogeneous networks against the mean-field and mode equations (chapter "Perturbations").

The comparisons themselves are :class:`~nncosmo_helpers.dynamics.ModeComparison` (eqs. 14-16 and the
frozen-kernel eq. 9); this module builds the seed ensembles behind the chapter's spectrum and training
tables (:func:`spectrum_ensemble`, :func:`train_ensemble`), splits networks that move from networks
that barely move (:func:`fraction_travelled`), and turns the measurements into the rows of the
chapter's verdict table (:class:`Verdict`, :func:`verdict_table`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import dynamics


def freezing_numbers(comparison, *, curvature, t_final, friction) -> np.ndarray:
    """kappa_i = (lambda_i/N) L'' T / 3H for every eigenvalue of ``comparison`` (the chapter's freezing
    number: a mode with kappa_i << 1 cannot move within the run of length ``t_final``)."""
    return comparison.eigenvalues_over_n * curvature * t_final / friction


# ---------------------------------------------------------------------------------------------
# networks that move
# ---------------------------------------------------------------------------------------------
# One definition of a network that moves: dynamics.fraction_travelled / dynamics.MOVING_FRACTION.
from ..dynamics import MOVING_FRACTION, fraction_travelled  # noqa: E402,F401


# ---------------------------------------------------------------------------------------------
# seed ensembles
# ---------------------------------------------------------------------------------------------
class Spread(NamedTuple):
    """Median and range over seeds of one quantity."""

    median: float
    low: float
    high: float

    def text(self, fmt: str = ".3g") -> str:
        """"median [low, high]" (or just the median when the range is one value)."""
        if self.low == self.high:
            return f"{self.median:{fmt}}"
        return f"{self.median:{fmt}} [{self.low:{fmt}}, {self.high:{fmt}}]"


def spread(values) -> Spread:
    """:class:`Spread` (median, min, max) of a 1-d array of per-seed values."""
    v = np.asarray(values, dtype=float).ravel()
    return Spread(float(np.median(v)), float(v.min()), float(v.max()))


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
    ({key: Modes} and {key: [Modes per seed]}); ``nets``: {architecture: [(apply_fn, params) per seed]}.
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
    nets: dict

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


def spectrum_ensemble(archs, grids, *, width, seeds) -> SpectrumEnsemble:
    """Decompose the infinite-width NTK and the empirical NTK of ``len(seeds)`` networks per architecture.

    ``archs``: list of (activation, W_std, b_std, hidden_layers); ``grids``: {s: inputs (N, 1)} with s
    the interval in Hubble lengths. Network seed ``seed`` is ``jax.random.PRNGKey(seed)``; the same
    network is used on every interval.
    """
    import jax

    from .. import network, ntk

    keys, nets = [], {}
    lam_inf, lam_emp, ov_inf, ov_emp, par_inf, par_emp = [], [], [], [], [], []
    modes_inf, modes_emp = {}, {}
    for act, w, b, hl in archs:
        init_fn, apply_fn = network.mlp(width=width, hidden_layers=hl, activation=act, W_std=w, b_std=b)
        nets[act, w, b, hl] = [(apply_fn, init_fn(jax.random.PRNGKey(seed), 1)) for seed in seeds]
        for s, x in grids.items():
            key = (act, w, b, hl, s)
            keys.append(key)
            mi = dynamics.mode_decomposition(ntk.infinite_width_ntk(x, hidden_layers=hl, activation=act, W_std=w, b_std=b))
            me = [dynamics.mode_decomposition(ntk.empirical_ntk(f, p, x)) for f, p in nets[act, w, b, hl]]
            modes_inf[key], modes_emp[key] = mi, me
            lam_inf.append(np.asarray(mi.eigenvalues))
            lam_emp.append([np.asarray(m.eigenvalues) for m in me])
            ov_inf.append(mi.uniform_overlap())
            ov_emp.append([m.uniform_overlap() for m in me])
            par_inf.append(float(dynamics.mode_parity(mi, 1)[0]))
            par_emp.append([float(dynamics.mode_parity(m, 1)[0]) for m in me])
    return SpectrumEnsemble(keys, tuple(seeds), int(width), np.array(lam_inf), np.array(lam_emp), np.array(ov_inf),
                            np.array(ov_emp), np.array(par_inf), np.array(par_emp), modes_inf, modes_emp, nets)


# ---------------------------------------------------------------------------------------------
# training ensembles: eqs. 15/16 on networks that move and networks that barely move
# ---------------------------------------------------------------------------------------------
class TrainedNetwork(NamedTuple):
    """One trained network of :func:`train_ensemble` against eqs. 15/16 and the frozen-kernel eq. 9."""

    key: tuple
    seed: int
    comparison: object  # dynamics.ModeComparison
    leading_mode: str  # dynamics.leading_mode_class of its initial kernel
    fraction: float  # fraction_travelled of its mean field
    kappa: np.ndarray  # freezing numbers of all its modes, kappa_1 first

    @property
    def moving(self) -> bool:
        return self.fraction >= MOVING_FRACTION

    @property
    def frozen_change(self) -> float:
        """Largest |relative change| of a compared mode i >= 2 with kappa_i < FROZEN_KAPPA and an
        initial amplitude above MIN_AMPLITUDE (nan if there is none)."""
        c = self.comparison
        k = self.kappa[1:c.modes_observed.shape[1] + 1]
        sel = (k < FROZEN_KAPPA) & (np.abs(c.modes_observed[0]) > MIN_AMPLITUDE)
        return float(np.abs(c.relative_change_observed[sel]).max()) if np.any(sel) else float("nan")


#: A mode is "frozen" when kappa_i < FROZEN_KAPPA: an overdamped mode from rest changes by about
#: kappa_i of its amplitude (chapter eq. pt-kappa), so by less than 1 %.
FROZEN_KAPPA = 0.01
#: Modes with a smaller initial amplitude are not used for "frozen": their relative change is set by
#: the remainder of eq. 9 (lag and kernel drift, ~1e-3 of the mean field's displacement).
MIN_AMPLITUDE = 1e-2
#: The bar of the "frozen" verdict: a frozen mode changes by less than 5 % of its amplitude (eq. 16
#: allows kappa_i < 1 %; the rest covers the lag and kernel drift).
FROZEN_BAR = 0.05


def train_ensemble(spec: SpectrumEnsemble, keys, grids, *, eta, beta, loss, steps, record_every=10,
                   n_modes=4) -> list:
    """Train every seed of ``spec`` for each configuration in ``keys`` and compare with eqs. 15/16.

    Returns a list of :class:`TrainedNetwork` (one per configuration and seed), each projected on the
    eigenvectors of its own initial empirical kernel (``spec.modes_emp``).
    """
    from ..train import train_momentum

    friction = (1.0 - beta) / np.sqrt(eta)
    t_final = steps * np.sqrt(eta)
    out = []
    for key in keys:
        arch, s = tuple(key[:4]), key[4]
        for j, (apply_fn, params) in enumerate(spec.nets[arch]):
            run = train_momentum(apply_fn, params, grids[s], eta=eta, beta=beta, loss=loss, steps=steps,
                                 record_every=record_every, compute_ntk=False)
            modes = spec.modes_emp[tuple(key)][j]
            c = dynamics.compare_mean_and_modes(modes, run.f, run.steps, eta=eta, beta=beta, loss=loss,
                                                n_modes=n_modes)
            lam = c.eigenvalues_over_n
            cls = str(dynamics.leading_mode_class(c.uniform_overlap, lam[0] / lam[1], degeneracy=spec.degeneracy)[()])
            frac = float(fraction_travelled(c.mean_observed[0], c.mean_observed[-1], loss.f0))
            kappa = freezing_numbers(c, curvature=float(loss.second(0.0)), t_final=t_final, friction=friction)
            out.append(TrainedNetwork(tuple(key), spec.seeds[j], c, cls, frac, np.asarray(kappa)))
    return out


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


def training_verdicts(trained) -> list:
    """Verdicts on eq. 15 (mean field), freezing (eq. 16) and the hierarchical separation, split into
    networks that move (fraction travelled >= MOVING_FRACTION) and networks that barely move."""
    mov_uni, still, non = split_trained(trained)
    bar = dynamics.MEAN_FIELD_BAR

    def on(rows):
        keys = sorted({label(r.key) for r in rows})
        return f"{len(rows)} networks: " + "; ".join(keys) if rows else "no network"

    out = []
    if mov_uni:
        err = spread([r.comparison.mean_error for r in mov_uni])
        ok = err.high < bar
        out.append(Verdict("eq15-moving", "eq. 15: the mean field follows the homogeneous evolution with α → λ₁/N",
                           f"end-point error {err.text('.1e')} of the displacement (bar {bar:g})",
                           "moving, v₁ uniform: " + on(mov_uni), "Confirmed" if ok else "Not confirmed"))
    else:
        out.append(Verdict("eq15-moving", "eq. 15: the mean field follows the homogeneous evolution with α → λ₁/N",
                           "–", "no moving network with a uniform v₁", "Not tested"))
    if still:
        err = spread([r.comparison.mean_error for r in still])
        k1 = spread([r.kappa[0] for r in still])
        out.append(Verdict("eq15-still", "eq. 15 on networks that barely move",
                           f"error {err.text('.1e')}; κ₁ = {k1.text('.1e')}, fraction to f₀ "
                           f"{spread([r.fraction for r in still]).text('.1e')}",
                           "barely moving, v₁ uniform: " + on(still),
                           "Not tested (the error is the lag of eq. 9 by construction)"))
    if non:
        err = spread([r.comparison.mean_error for r in non])
        out.append(Verdict("eq15-nonuniform", "eq. 15 when v₁ is not uniform",
                           f"end-point error {err.text('.2g')} of the displacement",
                           "v₁ not uniform: " + on(non), "Refuted" if err.low > 1.0 else "Not confirmed"))
    fz = [r for r in mov_uni if not np.isnan(r.frozen_change)]
    if fz:
        ch = spread([r.frozen_change for r in fz])
        out.append(Verdict("freezing-moving", "“this suppression … leads to a freezing of the perturbations” (eq. 16)",
                           f"modes with κᵢ < {FROZEN_KAPPA:g} change by {ch.text('.1e')} of their amplitude "
                           f"(bar {FROZEN_BAR:g}) while the mean field travels "
                           f"{spread([r.fraction for r in fz]).text('.2g')} of the way",
                           "moving, v₁ uniform: " + on(fz), "Confirmed" if ch.high < FROZEN_BAR else "Not confirmed"))
    else:
        out.append(Verdict("freezing-moving", "“this suppression … leads to a freezing of the perturbations” (eq. 16)",
                           "–", "no moving network with a uniform v₁ and a mode of κᵢ < 0.01", "Not tested"))
    if still:
        kmax = max(float(r.kappa[0]) for r in still)
        out.append(Verdict("freezing-still", "freezing on networks that barely move",
                           f"every mode has κᵢ ≤ κ₁ ≤ {kmax:.1e}",
                           "barely moving, v₁ uniform: " + on(still),
                           "Not tested (every mode is frozen because κ ≪ 1, the mean field too)"))
    if mov_uni:
        disp = spread([r.comparison.mode_displacement.max() for r in mov_uni])
        out.append(Verdict("separation", "“the hierarchical separation between the evolution of the perturbation "
                           "and the mean evolution” (Fig. 5)",
                           f"largest mode displacement {disp.text('.1e')} of the mean field's",
                           "moving, v₁ uniform: " + on(mov_uni), "Confirmed" if disp.high < 1.0 else "Not confirmed"))
    return out


def verdict_table(verdicts) -> tuple:
    """(headers, rows) of the chapter's verdict table, one row per :class:`Verdict`."""
    return (("claim (paper)", "measured (median [seed range])", "rests on", "verdict"),
            [[v.claim, v.measured, v.rests_on, v.verdict] for v in verdicts])


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
