"""The configuration grids of the scans (Figs. 1-5): plain JSON dicts, one per configuration.

:func:`grid` gives the configurations of a figure in a profile (``paper``: the paper's grids or the
documented subsets of :data:`PAPER_SUBSETS`; ``quick``: a subset that keeps every figure).
"""

from __future__ import annotations

import numpy as np

from .. import profiles
from ..loss import PolynomialLoss

#: Per figure: bump when a compute function changes what it stores; old results then no longer match.
#: (Fig. 5 version 2 added the mean-field comparison of Appendix B, ``mean_field``. Fig. 3 version 2
#: added the input point ``x0`` and the stored ``fraction_travelled``; Figs. 4 and 5 version 3 store
#: lambda_1/lambda_2 and the leading-mode class of :func:`dynamics.leading_mode_class`. Fig. 3 version 3
#: stores how each network was trained: ``method`` from ``method_from_step`` on, and ``basis_rank``.)
SCAN_VERSIONS = {1: 1, 2: 1, 3: 3, 4: 3, 5: 3}
FIGS = (1, 2, 3, 4, 5)
STEPS = 1000

#: The loss choices of eq. 20 used throughout section 3: n in {2, 4}, f0 in {1, 10}, m in {0.01, 0.1, 0.2}.
LOSSES = tuple((m, f0, n) for n in (2, 4) for f0 in (1.0, 10.0) for m in (0.01, 0.1, 0.2))
#: (eta, beta) of footnote 5 (the paper lists (0.0278, 0.5) twice; it is used once).
ETA_BETA = ((0.1111, 0.0), (0.4444, 0.0), (0.0011, 0.5), (0.0278, 0.5), (0.1111, 0.5))
B_STDS = (0.001, 0.005, 0.01, 0.05, 0.5)
W_STDS = (1.0, 0.1)
ACTIVATIONS = ("erf", "relu")
#: Fig. 5 loss subset used for the two-hidden-layer networks of the paper profile (cost; see PAPER_SUBSETS).
FIG5_LOSSES_DEEP = ((0.1, 1.0, 2), (0.2, 10.0, 2), (0.2, 1.0, 4))
#: Fig. 3 input points. x0 = 0 is the paper comparison (the default; Figs. 1 and 4 use the same point):
#: there alpha is set by b_std and small, so most networks barely move. At x0 = 1 the input term
#: makes alpha about 100 times larger and the networks travel a substantial part of the way to f0
#: (issue 12). float32 runs only at x0 = 0 (the precision comparison).
FIG3_X0 = (0.0, 1.0)
#: Fig. 3 seeds (float64): seed 0 on the full grid; the other seeds of the profile (FIG3_SEEDS_PAPER,
#: FIG3_SEEDS_QUICK) on the seed subset, the losses FIG3_SEED_LOSSES with every activation, depth,
#: width, initialisation, optimiser and input point of the profile. Seed spreads are computed on that
#: subset (see :func:`nncosmo_helpers.scans.summaries.fig3_seeded`). The quick profile runs x0 = 1 on
#: the seed subset only, for every seed (the chapter's time budget).
FIG3_SEEDS_PAPER = (0, 1, 2, 3, 4)
FIG3_SEEDS_QUICK = (0, 1)
#: Loss subset of the extra paper-profile seeds: both exponents, both f0, the strongest and the
#: weakest m (so the subset holds moving and barely-moving networks).
FIG3_SEED_LOSSES = ((0.01, 1.0, 2), (0.2, 1.0, 2), (0.2, 10.0, 2), (0.01, 10.0, 4), (0.2, 1.0, 4))
#: Seeds per configuration of Figs. 4 and 5 (issue 12: >= 5 in the paper profile, >= 2 in quick). The
#: Fig. 4 seeds must be seeds of Fig. 1 too (Fig. 4 compares each network with its own alpha).
FIG45_SEEDS = {"paper": 5, "quick": 2}
#: The (W_std, b_std) pairs of the paper's Fig. 5 (footnote 6), trained in Fig. 5 and contained in Fig. 4's grid.
FIG5_SCALES = ((1.0, 0.05), (0.1, 0.01))
#: Not in the paper: (W_std, b_std) = (1, 0.5) on 0.1 Hubble length, a network whose mean field travels a
#: large part of the way to f0 with a uniform v_1 (at x ~ 0 the bias sets the kernel, so it is nearly
#: constant on a short interval). The paper's own Fig. 5 networks with a uniform v_1 barely move, so
#: without it eq. 15 and the freezing of the modes would not be tested on a moving network (issue 12).
FIG5_CONTROL = (1.0, 0.5)
#: The Fig. 5 losses of the quick profile (the appendix's Fig. 6 reads these runs too).
FIG5_LOSSES_QUICK = ((0.2, 10.0, 2), (0.2, 1.0, 4))

#: Where the paper profile departs from the paper's grids, and why.
PAPER_SUBSETS = {
    1: "none: the full grid, 5 seeds per configuration",
    2: "none (closed form)",
    3: "float64: the full grid of footnote 5 (1440 configurations) at x0 = 0 and at x0 = 1 with seed 0; "
       "seeds 1-4 on the losses FIG3_SEED_LOSSES (every activation, depth, width, initialisation, optimiser "
       "and input point). float32 (x0 = 0, seed 0): all width-100 networks and the "
       "one-hidden-layer width-1000 networks (a float32 run cannot use the shared-W0 low-rank method, "
       "so the deeper width-1000 float32 runs would dominate the cost)",
    4: "width 10000 only with 1 and 2 hidden layers (the 5-layer width-10000 kernels on 100 points cost "
       "~10^11 flops each); 5 seeds; eta = 0.1111, beta = 0 (the Fig. 5 optimiser)",
    5: "the paper's architectures in full (erf and relu, (W_std, b_std) = (1, 0.05) and (0.1, 0.01), 1 and 2 "
       "hidden layers, 0.1 and 1 Hubble length, width 1000), 5 seeds; the 12 losses for one hidden layer, for "
       "two hidden layers the three losses FIG5_LOSSES_DEEP (a two-layer width-1000 network on 100 points "
       "costs ~6e8 flops per step); plus the moving control FIG5_CONTROL = (1, 0.5) on 0.1 Hubble length (not "
       "in the paper)",
}


def _cfg(fig, **kw):
    return {"fig": fig, "scan_version": SCAN_VERSIONS[fig], **kw}


# ------------------------------------------------------------------------------------------------
# grids
# ------------------------------------------------------------------------------------------------
def grid(fig: int, profile: str | None = None) -> list[dict]:
    """The configurations of figure ``fig`` (1-5) in ``profile`` ("quick" or "paper")."""
    profile = profiles.get_profile(profile)
    if fig not in FIGS:
        raise ValueError(f"fig must be one of {FIGS}, got {fig!r}")
    paper = profile == "paper"
    if fig == 1:
        widths = (100, 1000, 10000) if paper else (100, 1000)
        seeds = range(5) if paper else range(3)
        return [
            _cfg(1, width=w, hidden_layers=L, activation=a, W_std=ws, b_std=bs, seed=s)
            for w in widths for L in (1, 2, 5) for s in seeds for a in ACTIVATIONS for ws in W_STDS for bs in B_STDS
        ]
    if fig == 2:
        betas = tuple(np.round(np.linspace(0.0, 0.9, 10 if paper else 4), 4))
        return [_cfg(2, m=m, f0=f0, n=n, beta=float(b)) for (m, f0, n) in LOSSES for b in betas]
    if fig == 3:
        out = []
        layers = (1, 2, 5) if paper else (1, 2)
        widths = (100, 1000) if paper else (100,)
        for x0 in FIG3_X0:
            for dtype in ("float64", "float32"):
                if dtype == "float32" and x0 != 0.0:
                    continue
                for w in widths:
                    for L in layers:
                        if dtype == "float32" and (w > 100 or not paper) and L > 1:
                            continue
                        seeds = FIG3_SEEDS_PAPER if paper else FIG3_SEEDS_QUICK
                        if dtype == "float32":
                            seeds = (0,)
                        for seed in seeds:
                            full = seed == 0 and (paper or x0 == 0.0)  # quick: x0 = 1 on the seed subset only (time)
                            losses = LOSSES if full else FIG3_SEED_LOSSES
                            for a in ACTIVATIONS:
                                for (ws, bs) in ((1.0, 0.05), (0.1, 0.05)):
                                    for (eta, beta) in ETA_BETA:
                                        for (m, f0, n) in losses:
                                            out.append(_cfg(3, width=w, hidden_layers=L, activation=a, W_std=ws,
                                                            b_std=bs, eta=eta, beta=beta, m=m, f0=f0, n=n, seed=seed,
                                                            steps=STEPS, dtype=dtype, x0=x0))
        return out
    if fig == 4:
        widths = (100, 1000, 10000) if paper else (100, 1000)
        return [
            _cfg(4, width=w, hidden_layers=L, activation=a, W_std=ws, b_std=bs, interval=c, eta=0.1111, beta=0.0,
                 n_points=100, seed=s)
            for w in widths for L in (1, 2, 5) if not (w > (1000 if paper else 100) and L > 2)
            for s in range(FIG45_SEEDS[profile])
            for a in ACTIVATIONS for c in (0.1, 1.0) for ws in W_STDS for bs in B_STDS
        ]
    # fig 5: the paper's architectures (FIG5_SCALES) and the moving control (FIG5_CONTROL, 0.1 Hubble length)
    out = []
    for L in ((1, 2) if paper else (1,)):
        losses = LOSSES if L == 1 else FIG5_LOSSES_DEEP
        if not paper:
            losses = FIG5_LOSSES_QUICK
        for a in ACTIVATIONS:
            for c in (0.1, 1.0):
                # quick: the paper's scales on 1 Hubble length (where their v_1 is not always uniform), the
                # moving control on 0.1 (the paper's scales barely move there: measured, not in quick)
                scales = (FIG5_SCALES if paper or c == 1.0 else ()) + ((FIG5_CONTROL,) if c == 0.1 else ())
                for s in range(FIG45_SEEDS[profile]):
                    for (ws, bs) in scales:
                        for (m, f0, n) in losses:
                            out.append(_cfg(5, width=1000, hidden_layers=L, activation=a, W_std=ws, b_std=bs,
                                            interval=c, eta=0.1111, beta=0.0, n_points=100, m=m, f0=f0, n=n, seed=s,
                                            steps=STEPS, record_every=10))
    return out



def _loss(c) -> PolynomialLoss:
    return PolynomialLoss(c["m"], c["f0"], c["n"])

