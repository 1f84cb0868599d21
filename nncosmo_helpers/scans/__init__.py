"""The quantitative scans of the paper's section 3 (Figs. 1-5) and their results store.

Every figure is a grid of configurations (plain JSON dicts, :func:`grid`), a compute function that
turns a batch of configurations of one architecture into results (:data:`COMPUTE`), and a run through
the :class:`~nncosmo_helpers.results.ResultStore` (:func:`run`), which keeps one verified JSON file per
configuration and reuses it on rerun, in this process or on a Dask cluster (:mod:`.distributed`).

* Fig. 1 -- alpha = Theta(x0, x0) at initialisation (eq. 7), x0 = 0, over widths, initialisation
  scales, activations, depths and seeds; with the infinite-width value.
* Fig. 2 -- the learning rates for which the vacuum energy V0 = (1 - beta)^2/(3 eta) (eq. 8) dominates
  alpha L(f_init): eta < eta_max = (1 - beta)^2/(3 alpha L).
* Fig. 3 -- homogeneous networks (one input point) trained for 1000 steps with momentum GD (eq. 2),
  against the continuum prediction of eq. 7 with alpha at initialisation, in float64 and float32.
* Fig. 4 -- the largest NTK eigenvalue over N on 100 equally spaced 1-D inputs spanning 0.1 and 1
  Hubble length 3 sqrt(eta)/(1 - beta) (eq. 13), against alpha.
* Fig. 5 -- input-dependent networks on those inputs: the mean field against eq. 15 and the mode
  amplitudes (eq. 16) at the start and the end, predicted and actual (damping sign, see dynamics).

Two profiles (:mod:`nncosmo_helpers.profiles`): ``paper`` holds the paper's grids (or the documented
subsets in :data:`PAPER_SUBSETS`), ``quick`` a subset of each that keeps every figure. Results live
in ``<repo>/results/<profile>/fig<k>/`` unless ``NNCOSMO_RESULTS`` names another root
(``$NNCOSMO_RESULTS/<profile>/fig<k>/``). Command line: ``python -m nncosmo_helpers.scans --help``.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from .. import profiles
from ..results import ResultStore
from .compute import COMPUTE, LOWRANK_MIN_WIDTH, compute_fig1, compute_fig2, compute_fig3, compute_fig4, compute_fig5  # noqa: F401
from .engine import config_sharding, ntk_batched, train_momentum_batched  # noqa: F401
from .grids import (ACTIVATIONS, B_STDS, ETA_BETA, FIG5_LOSSES_DEEP, FIGS, LOSSES, PAPER_SUBSETS,  # noqa: F401
                    SCAN_VERSIONS, STEPS, W_STDS, _cfg, _loss, grid)
from .summaries import (fig1_summary, fig3_deviations, fig3_divergence_sentence, fig3_panels,  # noqa: F401
                        fig3_summary, fig4_frame, fig4_summary, fig5_errors, fig5_plot_data, fig5_summary,
                        seed_spread, verdict)
from .summaries import FIG5_GROUPS, fig4_gap_table  # noqa: F401
from .grids import FIG45_SEEDS, FIG5_CONTROL, FIG5_LOSSES_QUICK, FIG5_SCALES  # noqa: F401
from .frames import dataset, export, frame, from_records  # noqa: F401
from . import beyond  # the chapters' scans beyond Figs. 1-5, named by strings ("oc-sweep", "wp-alpha", ...)

COMPUTE.update(beyond.COMPUTE)
#: Every scan the command line runs by default: the figures and the chapters' scans of :mod:`.beyond`.
SCANS = FIGS + beyond.NAMES
_figure_grid = grid


def grid(fig, profile: str | None = None) -> list[dict]:  # noqa: F811
    """The configurations of figure ``fig`` (1-5, :func:`.grids.grid`) or of a scan of :mod:`.beyond`."""
    return beyond.grid(fig, profile) if fig in beyond.NAMES else _figure_grid(fig, profile)


def group_key(fig: int):
    """Configurations with equal group keys are computed together (one architecture, one compile)."""
    if fig in beyond.NAMES:
        return beyond.group_key(fig)
    if fig == 1:
        return lambda c: [c["width"], c["hidden_layers"], c["seed"]]
    if fig == 2:
        return lambda c: 0
    if fig == 3:
        return lambda c: [c["width"], c["hidden_layers"], c["activation"], c["seed"], c["dtype"]]
    if fig == 4:
        return lambda c: [c["width"], c["hidden_layers"], c["activation"], c["seed"], c["interval"], c["eta"], c["beta"]]
    return lambda c: [c["width"], c["hidden_layers"], c["activation"], c["seed"], c["interval"], c["eta"], c["beta"]]


# ------------------------------------------------------------------------------------------------
# running and loading
# ------------------------------------------------------------------------------------------------
def results_dir(profile: str | None = None, root: str | os.PathLike | None = None) -> Path:
    """``<root>/<profile>`` with root = ``root`` or ``$NNCOSMO_RESULTS`` or ``<repo>/results``."""
    profile = profiles.get_profile(profile)
    if root is None:
        root = os.environ.get("NNCOSMO_RESULTS") or Path(__file__).resolve().parents[2] / "results"
    return Path(root) / profile


def store(fig: int, profile: str | None = None, root=None) -> ResultStore:
    """The result store of figure ``fig`` (or scan ``fig`` of :mod:`.beyond`) in ``profile``."""
    return ResultStore(results_dir(profile, root) / (fig if fig in beyond.NAMES else f"fig{fig}"))


def run(fig: int, profile: str | None = None, results_dir_: str | os.PathLike | None = None,
        *, progress: bool = True, configs: list[dict] | None = None, scheduler=None) -> list[dict]:
    """Compute (or reuse) every configuration of figure ``fig`` and return the results in grid order.

    Args:
        fig: 1-5. profile: "quick" or "paper" (default: ``NNCOSMO_PROFILE``).
        results_dir_: root directory (see :func:`results_dir`).
        configs: a custom list of configurations instead of ``grid(fig, profile)`` (tests).
        scheduler: ``None`` computes in this process. A Dask scheduler address (or a
            ``distributed.Client``) sends the missing groups to that cluster instead, where workers
            write them into the same store (see :mod:`nncosmo_helpers.scans.distributed`).
    """
    profile = profiles.get_profile(profile)
    configs = grid(fig, profile) if configs is None else configs
    if scheduler is not None:
        from . import distributed

        return distributed.run(fig, profile, results_dir_, scheduler=scheduler, configs=configs, progress=progress)
    sharding = config_sharding()
    compute = COMPUTE[fig]
    if fig in (3, 5) and sharding is not None:
        compute = lambda cs, _f=compute: _f(cs, sharding=sharding)
    return store(fig, profile, results_dir_).run(configs, compute, group_by=group_key(fig),
                                                  progress=progress, desc=f"fig {fig} ({profile})")


def load(fig: int, profile: str | None = None, results_dir_=None) -> list[dict] | None:
    """Stored results of the whole grid of ``fig`` in ``profile``, or ``None`` if any is missing."""
    st = store(fig, profile, results_dir_)
    out = []
    for c in grid(fig, profile):
        r = st.load(c)
        if r is None:
            return None
        out.append(r)
    return out


def compute(fig: int, configs: list[dict]) -> list[dict]:
    """Compute ``configs`` of figure ``fig`` in memory, group by group, without the store."""
    key = group_key(fig)
    groups = {}
    for i, c in enumerate(configs):
        groups.setdefault(repr(key(c)), []).append(i)
    out = [None] * len(configs)
    for idx in groups.values():
        for i, r in zip(idx, COMPUTE[fig]([configs[i] for i in idx])):
            out[i] = r
    return out


def load_or_compute(fig: int, profile: str | None = None, results_dir_=None):
    """Results of ``fig`` for the chapter: ``(configs, results, profile_used)``.

    Stored results of the requested profile are used when the whole grid is present. Otherwise the
    quick profile is loaded if stored, or computed in memory (nothing is written).
    """
    profile = profiles.get_profile(profile)
    for p in dict.fromkeys((profile, "quick")):
        res = load(fig, p, results_dir_)
        if res is not None:
            return grid(fig, p), res, p
    configs = grid(fig, "quick")
    return configs, compute(fig, configs), "quick"


def timed_run(figs=FIGS, profile: str | None = None, results_dir_=None, progress=True, scheduler=None) -> dict:
    """Run several figures; return the wall time of each (s).

    With ``scheduler`` (see :func:`run`) all figures go to the Dask cluster together and a figure's
    time runs from the common start until its last group finished.
    """
    if scheduler is not None:  # every figure's groups at once, so no worker waits for a figure's last group
        from . import distributed

        return distributed.run_many(dict.fromkeys(figs), profile, results_dir_, scheduler=scheduler, progress=progress)[1]
    times = {}
    for fig in figs:
        t0 = time.perf_counter()
        run(fig, profile, results_dir_, progress=progress)
        times[fig] = time.perf_counter() - t0
    return times


__all__ = [
    "FIGS", "SCANS", "beyond", "SCAN_VERSIONS", "LOSSES", "ETA_BETA", "PAPER_SUBSETS", "grid", "COMPUTE", "run", "load",
    "load_or_compute", "compute", "results_dir", "verdict", "fig3_divergence_sentence", "store", "fig3_deviations", "fig5_errors",
    "frame", "from_records", "dataset", "export", "timed_run", "train_momentum_batched", "ntk_batched", "fig1_summary", "fig3_panels", "fig3_summary",
    "fig4_frame", "fig4_summary", "fig5_summary", "fig5_plot_data",
    "fig4_gap_table", "seed_spread", "FIG5_GROUPS", "FIG45_SEEDS", "FIG5_SCALES", "FIG5_CONTROL",
]
