"""Appendix B (Fig. 6): homogeneous mean-field couplings on the paper's Fig. 5 architectures, with seeds.

Used only by the appendix chapter. The paper's Fig. 5 scan (footnote 6) trains 1-D inputs on 100
equally spaced points of an interval of 0.1 or 1 Hubble length, erf and relu, (W_std, b_std) in
{(1, 0.05), (0.1, 0.01)}, 1 and 2 hidden layers, width 1000, eta = 0.1111, beta = 0, 1000 steps. Its
Fig. 6 compares the network's mean output with eq. 7 at the mean NTK; eq. 15 uses lambda_1/N.
:func:`grid` gives all 16 architectures in both profiles, with several seeds (the N(0, 1) draws) per
architecture: ``paper`` at width 1000 with :data:`PAPER_SEEDS`, ``quick`` at the smaller
:data:`QUICK_WIDTH` with :data:`QUICK_SEEDS` (so that the chapter runs in about a minute). The losses
are :data:`LOSSES` (fewer than the paper's twelve; see there).

:func:`compute` trains each group with the batched engine of the scans (one compilation per
architecture and seed) and returns one row per configuration: the comparison
(:func:`nncosmo_helpers.dynamics.compare_mean_field`), the one v_1 decision
(:func:`nncosmo_helpers.dynamics.leading_mode_class`), how far the mean field moved
(:func:`fraction_travelled`), and, for quadratic losses, :func:`reduction_bound`, an a-priori bound
on how far the mean-NTK prediction can be from the frozen-kernel eq. 9.

The grid is the stored scan ``"ap-mean-field"`` of :mod:`nncosmo_helpers.scans.beyond` (run by
``python -m nncosmo_helpers.scans``, so by ``make book-paper``); the appendix reads it with
``beyond.read`` and computes the quick profile in memory when nothing is stored (:func:`rows`). Quick:
64 runs at width 100 (about two thirds of the appendix chapter's ~97 s of CPU, measured on 2 loaded cores;
mostly compilation: four training loops, one per depth and activation, and the comparison's ODE solves). Paper: 240 runs at width
1000; its cost was not measured in the session that wrote this (the two-hidden-layer width-1000 runs
dominate).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import cosmology, dynamics
from ..ensemble import of_rows
from ..cosmology import flrw_parameters
from ..loss import PolynomialLoss
from .compute import _train_group
from .grids import ACTIVATIONS, STEPS

#: Widths: the paper's 1000 in the paper profile; in quick 100, the narrower width of the paper's Fig. 3
#: (chapter time; the kernels of narrower networks drift more, so the quick floors are higher).
PAPER_WIDTH, QUICK_WIDTH = 1000, 100
#: Seeds (N(0, 1) draws) per architecture.
PAPER_SEEDS, QUICK_SEEDS = tuple(range(5)), (0, 1)
#: The paper's (W_std, b_std) of Fig. 5 (footnote 6).
INITS = ((1.0, 0.05), (0.1, 0.01))
INTERVALS = (0.1, 1.0)
DEPTHS = (1, 2)
#: Losses (m, f0, n): one quadratic and one quartic in quick; in paper the three of
#: ``grids.FIG5_LOSSES_DEEP`` (the paper's Fig. 5 uses the twelve of eq. 20 for one hidden layer).
QUICK_LOSSES = ((0.2, 10.0, 2), (0.2, 1.0, 4))
PAPER_LOSSES = ((0.1, 1.0, 2), (0.2, 10.0, 2), (0.2, 1.0, 4))
ETA, BETA, N_POINTS, RECORD_EVERY = 0.1111, 0.0, 100, 10

# One definition of a network that moves: dynamics.fraction_travelled / dynamics.MOVING_FRACTION.
from ..dynamics import MOVING_FRACTION, fraction_travelled  # noqa: E402,F401


def grid(profile: str) -> list[dict]:
    """The configurations: 16 architectures x seeds x losses (see the module docstring)."""
    paper = profile == "paper"
    width, seeds = (PAPER_WIDTH, PAPER_SEEDS) if paper else (QUICK_WIDTH, QUICK_SEEDS)
    losses = PAPER_LOSSES if paper else QUICK_LOSSES
    return [dict(width=width, hidden_layers=L, activation=a, W_std=ws, b_std=bs, interval=c, seed=s, m=m, f0=f0,
                 n=n, eta=ETA, beta=BETA, n_points=N_POINTS, steps=STEPS, record_every=RECORD_EVERY)
            for L in DEPTHS for a in ACTIVATIONS for c in INTERVALS for s in seeds for (ws, bs) in INITS
            for (m, f0, n) in losses]


def green_integral(gamma: float, kappa: float, duration: float) -> float:
    """int_0^T |G(t)| dt for the impulse response G of e'' + gamma e' + kappa e (G(0) = 0, G'(0) = 1), exactly.

    Overdamped (gamma^2 > 4 kappa): G = (exp(s1 t) - exp(s2 t)) / (s1 - s2) >= 0, integrated in closed form.
    Underdamped: G = exp(-a t) sin(w t) / w (a = gamma/2), integrated in closed form over each half-period
    between its zeros. Critical damping: G = t exp(-a t).
    """
    a, T = gamma / 2.0, float(duration)
    disc = gamma * gamma - 4.0 * kappa
    if disc > 1e-12 * gamma * gamma:
        s1, s2 = (-gamma + np.sqrt(disc)) / 2, (-gamma - np.sqrt(disc)) / 2
        prim = lambda s: np.expm1(s * T) / s if s != 0 else T  # noqa: E731
        return float((prim(s1) - prim(s2)) / (s1 - s2))
    if disc >= -1e-12 * gamma * gamma:  # critical damping: int_0^T t e^{-a t} dt
        return float((1.0 - np.exp(-a * T) * (1.0 + a * T)) / a**2)
    w = np.sqrt(-disc) / 2
    F = lambda t: -np.exp(-a * t) * (a * np.sin(w * t) + w * np.cos(w * t)) / (a * a + w * w)  # noqa: E731
    edges = np.append(np.arange(0.0, T, np.pi / w), T)
    return float(np.sum(np.abs(F(edges[1:]) - F(edges[:-1]))) / w)


def reduction_bound(kernel, delta_max: float, *, loss: PolynomialLoss, eta: float, beta: float, duration: float) -> float:
    """A-priori bound on |<f_eq9>(T) - f_meanTheta(T)| for a quadratic loss (frozen kernel).

    For L = m^2/2 (f - f0)^2 averaged over N points, the mean of eq. 9 obeys exactly
    <f>'' + gamma <f>' + m^2 Theta_bar (<f> - f0) = -g(t), g = m^2 N^(-3/2) w . delta(t), where
    Theta_bar = u.Theta.u/N, delta = f - <f> 1 (orthogonal to u) and w = Theta u - (u.Theta.u) u (the
    part of Theta u off u: zero iff u is an eigenvector). The mean-NTK prediction solves the same
    equation with g = 0 and the same initial data, so the difference e obeys e'' + gamma e' +
    m^2 Theta_bar e = -g with e(0) = e'(0) = 0, hence |e(T)| <= max|g| int_0^T |G|, and by
    Cauchy-Schwarz |g| <= m^2 N^(-3/2) |w| max_t |delta(t)|. ``delta_max`` is max_t |delta(t)| of the
    frozen-kernel solution.
    """
    if loss.n != 2:
        raise ValueError("the bound is derived for the quadratic loss (n = 2) only")
    k = np.asarray(kernel, dtype=float)
    k = 0.5 * (k + k.T)
    n = k.shape[0]
    u = np.ones(n) / np.sqrt(n)
    ku = k @ u
    w = ku - (u @ ku) * u
    theta_bar = float(u @ ku) / n
    gamma = flrw_parameters(eta, beta).friction
    return float(loss.m**2 * n**-1.5 * np.linalg.norm(w) * delta_max
                 * green_integral(gamma, loss.m**2 * theta_bar, duration))


def _group_key(c):
    return (c["width"], c["hidden_layers"], c["activation"], c["seed"], c["interval"])


def compute(configs: list[dict]) -> list[dict]:
    """Train the configurations (grouped by architecture, seed and interval) and compare (see module)."""
    groups: dict = {}
    for i, c in enumerate(configs):
        groups.setdefault(_group_key(c), []).append(i)
    out = [None] * len(configs)
    for idx in groups.values():
        for i, r in zip(idx, _compute_group([configs[i] for i in idx])):
            out[i] = r
    return out


def _compute_group(configs):
    c0 = configs[0]
    x = dynamics.centred_interval(c0["n_points"], c0["interval"], eta=c0["eta"], beta=c0["beta"])
    res = _train_group(configs, x, record_every=c0["record_every"], kernels=True)
    steps = np.arange(res["f"].shape[1]) * c0["record_every"]
    every_step = np.arange(int(steps[-1]) + 1)
    out = []
    for i, c in enumerate(configs):
        loss = PolynomialLoss(c["m"], c["f0"], c["n"])
        k0 = np.asarray(res["kernel_initial"][i], dtype=float)
        modes = dynamics.mode_decomposition(k0)
        lam = np.asarray(modes.eigenvalues)
        row = {key: c[key] for key in ("width", "hidden_layers", "activation", "W_std", "b_std", "interval", "seed",
                                       "eta", "beta")}
        row.update(loss=loss, lambda_ratio=float(lam[0] / lam[1]), uniform_overlap=modes.uniform_overlap(),
                   leading_mode=dynamics.leading_mode(modes, degeneracy=dynamics.degeneracy_ratio(c["width"])), diverged=int(res["divergence_step"][i]) >= 0,
                   comparison=None, fraction=np.nan, moving=False, reduction_bound=None)
        if not row["diverged"]:
            f = np.asarray(res["f"][i], dtype=float)
            cmp = dynamics.compare_mean_field(k0, f, steps, eta=c["eta"], beta=c["beta"], loss=loss)
            frac = float(fraction_travelled(cmp.observed_mean[0], cmp.observed_mean[-1], loss.f0))
            row.update(comparison=cmp, fraction=frac, moving=bool(dynamics.is_moving(frac)))
            if loss.n == 2:
                lin = np.asarray(dynamics.predict_linearized(k0, f[0], eta=c["eta"], beta=c["beta"], loss=loss,
                                                             steps=every_step))
                delta_max = float(np.max(np.linalg.norm(lin - lin.mean(axis=1, keepdims=True), axis=1)))
                row["reduction_bound"] = reduction_bound(k0, delta_max, loss=loss, eta=c["eta"], beta=c["beta"],
                                                         duration=float(steps[-1]) * np.sqrt(c["eta"]))
        out.append(row)
    return out


def rows(profile: str) -> list[dict]:
    """:func:`compute` of :func:`grid` (``profile``): the rows the appendix chapter reads."""
    return compute(grid(profile))


# ------------------------------------------------------------------------------------------------
# the metrics the chapter quotes, and their seed statistics
# ------------------------------------------------------------------------------------------------
def relative_error(row, name: str) -> float:
    """|prediction(T) - <f>(T)| / |<f>(T) - <f>(0)| (the paper's Fig. 6 metric, :func:`cosmology.end_deviation`) for a coupling or "linearized"."""
    c = row["comparison"]
    pred = c.linearized_mean if name == "linearized" else c.predictions[name]
    return cosmology.end_deviation(c.observed_mean, pred)


def prediction_gap(row) -> float:
    """|eq. 7 at lambda_1/N - eq. 7 at the mean NTK| at the end, over the actual evolution |Delta <f>|."""
    c = row["comparison"]
    return float(abs(c.predictions["lambda1/N"][-1] - c.predictions["mean Theta"][-1]) / c.excursion)


def reduction_error(row) -> float:
    """|eq. 7 at the mean NTK - mean of the frozen-kernel eq. 9| at the end (absolute, not relative)."""
    c = row["comparison"]
    return float(abs(c.predictions["mean Theta"][-1] - c.linearized_mean[-1]))


def floor(row) -> float:
    """The error floor of any mean-field reduction: the relative error of the full frozen-kernel eq. 9
    (:func:`relative_error` of "linearized"): the one-step lag plus the drift of the kernel."""
    return relative_error(row, "linearized")


def eq15_error(row) -> float:
    """Eq. 15's end-point error in its own variable f_bar = v_1 . f/sqrt(N), over that variable's evolution."""
    c = row["comparison"]
    return cosmology.end_deviation(c.observed_projection, c.eq15)


def coupling_ratio(row) -> float:
    """lambda_1/N over the mean NTK (>= 1, = 1 exactly when v_1 = u)."""
    c = row["comparison"]
    return float(c.couplings["lambda1/N"] / c.couplings["mean Theta"])


class Fig6Summary(NamedTuple):
    """What Appendix B states about the grid of :func:`rows` (the runs that did not diverge).

    ``groups``: {"uniform", "not uniform", "not defined"}: the runs of each v_1 class;
    ``counts``: {name: integer}: "n-<group>" and "n-<group>-moving" (runs of a v_1 class, moving ones), "n-moving",
    and how many runs satisfy each comparison;
    ``spreads``: {name: SeedSpread}: a statistic computed seed by seed
    (:func:`nncosmo_helpers.ensemble.of_rows`), its median over seeds and its range over seeds;
    ``verdicts``: {name: text}: "eq15" (eq. 15 in its own variable against the eq. 9 floor, "does no better"
    when the seed ranges of the two medians do not overlap), "uniform" (on moving uniform-v_1 runs the gap
    between the couplings stays below the floor), "fig6" (the paper's "no significant deviations"), "mean-ntk"
    (ours: the mean NTK is the better coupling for the arithmetic mean).
    """

    groups: dict
    counts: dict
    spreads: dict
    verdicts: dict


def fig6_summary(rows) -> Fig6Summary:
    """:class:`Fig6Summary` of the rows of :func:`rows` (Fig. 6: eq. 7 at lambda_1/N, at the mean NTK, at the
    mean diagonal, and the frozen-kernel eq. 9, against the trained networks' mean output)."""
    done = [r for r in rows if r["comparison"] is not None]
    moving = lambda rs: [r for r in rs if r["moving"]]  # noqa: E731
    groups = {c: [r for r in done if r["leading_mode"] == c] for c in dynamics.LEADING_MODE_LABELS}
    uni, non = groups["uniform"], groups["not uniform"]
    rel, gap = relative_error, prediction_gap
    mean_better = lambda r: rel(r, "mean Theta") < rel(r, "lambda1/N")  # noqa: E731
    counts = {"n-moving": len(moving(done)),
              "uni-mov-agree": sum(gap(r) <= floor(r) for r in moving(uni)),
              "nonuni-mov-significant": sum(gap(r) > floor(r) for r in moving(non)),
              "nonuni-significant": sum(gap(r) > floor(r) for r in non),
              "nonuni-mean-better": sum(mean_better(r) for r in non),
              "nonuni-mov-mean-better": sum(mean_better(r) for r in moving(non))}
    for tag, cls in (("uniform", "uniform"), ("nonuni", "not uniform"), ("undef", "not defined")):
        counts[f"n-{tag}"] = len(groups[cls])
        counts[f"n-{tag}-moving"] = len(moving(groups[cls]))
    med = lambda f, sel=lambda r: True: lambda rs: np.median([f(r) for r in rs if sel(r)])  # noqa: E731
    top = lambda f, sel=lambda r: True: lambda rs: max(f(r) for r in rs if sel(r))  # noqa: E731
    quad, quart = (lambda r: r["loss"].n == 2), (lambda r: r["loss"].n == 4)
    spreads = {
        "uni-gap-max": of_rows(uni, top(gap)),
        "uni-mov-floor-median": of_rows(moving(uni), med(floor)),
        "nonuni-gap-median": of_rows(non, med(gap)),
        "nonuni-floor-median": of_rows(non, med(floor)),
        "nonuni-lam-max": of_rows(non, top(lambda r: rel(r, "lambda1/N"))),
        "nonuni-coupling-ratio-max": of_rows(non, top(coupling_ratio)),
        "nonuni-eq15-median": of_rows(non, med(eq15_error)),
        # the fraction of the a-priori bound used, on moving networks (elsewhere the distance is at the ODE tolerance)
        "quad-bound-used-max": of_rows([r for r in moving(done) if quad(r)],
                                       top(lambda r: reduction_error(r) / r["reduction_bound"])),
        "nonuni-quad-mean-max": of_rows(non, top(lambda r: rel(r, "mean Theta"), quad)),
        "nonuni-quad-lin-max": of_rows(non, top(floor, quad)),
        "nonuni-quart-mean-max": of_rows(non, top(lambda r: rel(r, "mean Theta"), quart)),
        "nonuni-quart-lin-median": of_rows(non, med(floor, quart)),
        "diag-max": of_rows(done, top(lambda r: rel(r, "mean diag Theta"))),
    }
    eq15, fl = spreads["nonuni-eq15-median"], spreads["nonuni-floor-median"]
    mov_uni, mov_non = moving(uni), moving(non)
    uni_agree = bool(mov_uni) and all(gap(r) <= floor(r) for r in mov_uni)
    non_disagree = any(gap(r) > floor(r) for r in mov_non)
    better = [mean_better(r) for r in mov_non]
    verdicts = {
        "eq15": "does no better" if eq15.low > fl.high else "does better",
        "uniform": ("holds" if uni_agree else "is not tested (no moving network)" if not mov_uni else "does not hold"),
        "fig6": ("not tested (no moving network)" if not (mov_uni or mov_non) else
                 "qualified" if uni_agree and non_disagree else "confirmed" if uni_agree else "not confirmed"),
        "mean-ntk": ("not tested (no moving network with v1 not uniform)" if not better else
                     "confirmed" if all(better) else "qualified" if 2 * sum(better) > len(better) else "not confirmed"),
    }
    return Fig6Summary(groups, counts, spreads, verdicts)


def architecture_table(rows):
    """One line per architecture (all seeds and losses): the v_1 class of each seed and medians.

    Columns: the v_1 class per seed, lambda_1/lambda_2 (median over seeds), the fraction of the way to
    f0 travelled, the prediction gap and the relative errors of the two couplings and of eq. 9
    (median over seeds and losses, with [min, max]).
    """
    import pandas as pd

    keys = ("hidden_layers", "activation", "W_std", "b_std", "interval")
    out = []
    for arch in dict.fromkeys(tuple(r[k] for k in keys) for r in rows):
        sel = [r for r in rows if tuple(r[k] for k in keys) == arch]
        ok = [r for r in sel if r["comparison"] is not None]
        seeds = sorted({r["seed"] for r in sel})
        cls = [next(r["leading_mode"] for r in sel if r["seed"] == s) for s in seeds]
        fmt = lambda v: f"{np.median(v):.2g} [{np.min(v):.2g}, {np.max(v):.2g}]" if len(v) else "-"  # noqa: E731
        out.append({"layers": arch[0], "act.": arch[1], "(W, b)": f"({arch[2]:g}, {arch[3]:g})",
                    "interval / H": arch[4], "v1 per seed": ", ".join(cls),
                    "lambda1/lambda2": f"{np.median([r['lambda_ratio'] for r in sel]):.3g}",
                    "way to f0": fmt([r["fraction"] for r in ok]),
                    "gap": fmt([prediction_gap(r) for r in ok]),
                    "err lambda1/N": fmt([relative_error(r, "lambda1/N") for r in ok]),
                    "err mean Theta": fmt([relative_error(r, "mean Theta") for r in ok]),
                    "err eq. 9": fmt([relative_error(r, "linearized") for r in ok])})
    return pd.DataFrame(out)
