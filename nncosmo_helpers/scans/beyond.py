"""The scans of the chapters beyond the paper's figures ("Optimisers as cosmologies", "Width and precision"),
of the background and perturbations chapters and of the appendix.

Every network these chapters train is a configuration of one of the scans below, computed and
stored exactly like the scans of Figs. 1-5 (same :class:`~nncosmo_helpers.results.ResultStore`, same
command line ``python -m nncosmo_helpers.scans --profile paper``, same Dask path): the chapters only
read. A scan is named by a string (the figures by their number):

* ``oc-sweep`` -- :func:`~nncosmo_helpers.experiments.schedules.duality_check`: one homogeneous network
  trained with one momentum schedule (seed, loss, learning rate) against its FLRW equation;
* ``oc-nesterov`` -- :func:`~nncosmo_helpers.experiments.schedules.nesterov_convergence` (one configuration);
* ``oc-friedmann`` -- :func:`~nncosmo_helpers.experiments.schedules.friedmann_history`, one run each;
* ``oc-poly``, ``oc-digits`` -- :mod:`~nncosmo_helpers.experiments.benchmarks`, one configuration per
  optimiser (its learning-rate grid, every loss or seed of the task);
* ``wp-alpha`` -- alpha at initialisation, one configuration per width
  (:func:`~nncosmo_helpers.experiments.precision.alpha_samples`);
* ``wp-drift`` -- kernel drift and the eq. 7 deviation, one configuration per width
  (:func:`~nncosmo_helpers.experiments.precision.drift_rows`);
* ``wp-precision`` -- the float64/float32 maps of one network over (eta, beta) with the rounding
  prediction (:func:`~nncosmo_helpers.experiments.precision.precision_maps`,
  :func:`~nncosmo_helpers.experiments.precision.rounding_prediction`);
* ``bg-runs``, ``bg-lag``, ``bg-limit`` -- the background chapter's networks against the two backgrounds
  of eq. 6, its backgrounds at epsilon, its runs across the stability limit (:mod:`.background`).
* ``pt-networks`` -- one network of the perturbations chapter (architecture, seed): its empirical NTK and
  initial outputs on each interval (:func:`~nncosmo_helpers.experiments.modes.network_kernels`), its
  training on the chapter's intervals against eqs. 15/16 and eq. 9
  (:func:`~nncosmo_helpers.experiments.modes.trained_network`), and for the off-grid moving network the
  error budget of its run (:func:`~nncosmo_helpers.experiments.error_budget.error_budget`) and its
  lattice comparison (:func:`~nncosmo_helpers.experiments.lattice_modes.compare_network_lattice`);
* ``pt-error-budget`` -- the error-budget grid of one width (every learning rate and seed,
  :func:`~nncosmo_helpers.experiments.error_budget.error_budget_grid`);
* ``ap-mean-field`` -- Appendix B's mean-NTK coupling on the paper's Fig. 5 architectures (:mod:`.mean_field`).

The settings of each profile are :data:`SETTINGS` (``quick``: what the chapters computed in the
quick profile; ``paper``: their paper-profile grids). A result is the experiment's own return value
(a NamedTuple of arrays) encoded losslessly as JSON (:func:`encode`: dtypes, shapes, NaN and inf
kept), so :func:`read` gives back exactly the objects the chapter would have computed in memory (the
background chapter's scans store a diverged run as a record of its divergence and the stability-limit runs
without their final parameters, which the chapter does not use: :mod:`.background`).
:func:`chapter_profile` decides which profile a chapter shows: the requested one when every scan of
the chapter is stored, otherwise the quick one (stored, or computed in memory without storing).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import network, profiles
from ..loss import PolynomialLoss
from .common import _mlp, decode, encode  # noqa: F401  (encode, decode: part of this module's interface)
from .grids import ACTIVATIONS, ETA_BETA, FIG5_SCALES, LOSSES

#: Per scan: bump when its compute function changes what it stores.
SCAN_VERSIONS = {"oc-sweep": 1, "oc-nesterov": 1, "oc-friedmann": 1, "oc-poly": 1, "oc-digits": 1,
                 "wp-alpha": 1, "wp-drift": 1, "wp-precision": 1, "ap-mean-field": 2,
                 "bg-runs": 1, "bg-lag": 1, "bg-limit": 1, "pt-networks": 1, "pt-error-budget": 1}
NAMES = tuple(SCAN_VERSIONS)
#: The scans each chapter reads.
CHAPTERS = {"background": tuple(n for n in NAMES if n.startswith("bg-")),
            "optimisers_as_cosmologies": tuple(n for n in NAMES if n.startswith("oc-")),
            "width_and_precision": tuple(n for n in NAMES if n.startswith("wp-")),
            "appendix": ("ap-mean-field",),
            "perturbations": ("pt-networks", "pt-error-budget")}

#: The homogeneous network of the optimisers, width-and-precision and background chapters (NTK parameterisation,
#: two erf hidden layers) at x0 = 1.
ARCH = dict(hidden_layers=2, activation="erf", W_std=1.0, b_std=0.05)
X0 = 1.0

#: The architectures of the perturbations chapter: the paper's Fig. 5 grid, (activation, W_std, b_std, hidden layers).
PT_ARCHS = tuple((act, w, b, hl) for act in ACTIVATIONS for w, b in reversed(FIG5_SCALES) for hl in (1, 2))
PT_INTERVALS = (0.1, 1.0)  # in Hubble lengths


#: The network off the paper's grid whose mean field moves with a uniform v1 (trained on ``PT_EXTRA_INTERVAL``
#: Hubble lengths, every step, with its error budget and lattice comparison; the error-budget grid's architecture).
PT_EXTRA, PT_EXTRA_INTERVAL = ("erf", 1.0, 0.5, 2), 1.0


def _pt_settings(*, width, seeds, train, eb):
    return dict(width=width, seeds=seeds, steps=1000, n_points=100, eta=1 / 9, beta=0.0, loss=(0.1, 1.0, 2),
                intervals=PT_INTERVALS, archs=PT_ARCHS, extra=PT_EXTRA, extra_interval=PT_EXTRA_INTERVAL, train=train,
                record_every=10, n_modes=4, lattice_modes=6, eb=dict(arch=PT_EXTRA, interval=PT_EXTRA_INTERVAL, **eb))


def _bg_settings(*, hidden_layers, losses, eps_scan, control_seeds):
    return dict(network=dict(width=1000, **dict(ARCH, hidden_layers=hidden_layers)), seed=0, control_seeds=control_seeds,
                x0=X0, pairs=ETA_BETA,
                losses=losses, steps=1000, record_every=10, loss=(0.1, 10.0, 2), sweep_beta=0.0,
                eps_net=(0.03, 0.1, 0.3, 1.0, 3.0, 10.0), eps_scan=eps_scan, relaxation_times=12.0, samples=3000,
                limit=dict(loss=(0.2, 1.0, 2), factors=(0.9, 1.1, 1.5, 2.0, 3.0), steps=1000))


#: The grids of each profile. Losses are (m, f0, n) of eq. 20.
SETTINGS = {
    # the network of book/background.md (its hidden layers per profile), the paper's (eta, beta) pairs times the
    # profile's losses, the sweep eta = epsilon eta_max of the loss ``loss`` (eps_net: trained, eps_scan: the two
    # backgrounds alone, over ``relaxation_times``), and the runs at multiples of the stability limit (``limit``); the
    # (eta, beta) x losses grid again on the networks of ``control_seeds`` (other N(0, 1) draws: the seed spread)
    # The background chapter: the homogeneous network of ARCH at X0, width 1000 (one hidden layer in quick), the
    # paper's (eta, beta) pairs (footnote 5) x the profile's losses (paper: the twelve of eq. 20), the sweep in
    # epsilon = eta/eta_max, the backgrounds' lag at epsilon (eps_scan) and the runs across the stability limit.
    "background": {
        "quick": _bg_settings(hidden_layers=1, losses=((0.1, 10.0, 2), (0.2, 10.0, 2), (0.2, 1.0, 2), (0.1, 10.0, 4)),
                              eps_scan=tuple(np.geomspace(1e-2, 30.0, 8).tolist()), control_seeds=(1, 2)),
        "paper": _bg_settings(hidden_layers=ARCH["hidden_layers"], losses=LOSSES,
                              eps_scan=tuple(np.geomspace(1e-3, 30.0, 10).tolist()), control_seeds=(1, 2, 3, 4)),
    },
    "optimisers_as_cosmologies": {
        "quick": dict(width=512, seeds=(0,), etas=(1 / 9, 1 / 36), losses=((0.1, 1.0, 2), (0.01, 1.0, 2)),
                      steps=1000, beta=0.5, ns=(4, 8, 16, 32), T=16, loss_b=(0.5, 1.0, 2), steps_c=4000,
                      late_losses=((0.5, 1.0, 2), (0.5, 1.0, 4)), v0=0.01,
                      poly=dict(width=256, steps=200, seeds=tuple(range(5)), tune_seeds=tuple(range(100, 103))),
                      digits=dict(hidden=(32,), steps=200, batch_size=64, seeds=tuple(range(5)))),
        "paper": dict(width=1000, seeds=(0, 1, 2), etas=(1 / 9, 1 / 36, 1 / 144),
                      losses=((0.1, 1.0, 2), (0.01, 1.0, 2), (0.2, 1.0, 2), (0.1, 10.0, 2), (0.1, 1.0, 4), (0.2, 1.0, 4)),
                      steps=1000, beta=0.5, ns=(4, 8, 16, 32, 64, 128, 256), T=16, loss_b=(0.5, 1.0, 2), steps_c=20000,
                      late_losses=((0.5, 1.0, 2), (0.5, 1.0, 4)), v0=0.01,
                      poly=dict(width=1000, steps=1000, seeds=tuple(range(10)), tune_seeds=tuple(range(100, 105))),
                      digits=dict(hidden=(64,), steps=1000, batch_size=128, seeds=tuple(range(10)))),
    },
    "width_and_precision": {
        "quick": dict(widths_a=(32, 64, 128, 256, 512, 1024, 2048), seeds_a=24,
                      widths_d=(32, 64, 128, 256, 512), seeds_d=10, eta=1 / 9, beta=0.0, steps=1000,
                      loss=(0.1, 1.0, 2), width_p=256, etas_p=tuple(np.logspace(-4, -0.5, 8).tolist()),
                      betas_p=(0.0, 0.5, 0.9), ref=dict(width=1000, eta=0.0011, beta=0.5)),
        "paper": dict(widths_a=(32, 64, 128, 256, 512, 1024, 2048, 4096), seeds_a=64,
                      widths_d=(32, 64, 128, 256, 512, 1024, 2048, 4096), seeds_d=16, eta=1 / 9, beta=0.0, steps=1000,
                      loss=(0.1, 1.0, 2), width_p=1000, etas_p=tuple(np.logspace(-4.5, -0.5, 17).tolist()),
                      betas_p=(0.0, 0.5, 0.9), ref=dict(width=1000, eta=0.0011, beta=0.5)),
    },
    # The paper trains 1000 epochs on 100 points at eta = 1/9 without momentum (Fig. 5), width 1000. ``train``: the
    # (architecture, interval) configurations trained (quick: three; paper: every one), each for every seed;
    # ``extra``: the off-grid network that moves with a uniform v1, trained on one Hubble length; ``eb``: the
    # error-budget grid (``steps`` at eta = 1/9 sets the continuum duration of every run).
    "perturbations": {
        "quick": _pt_settings(width=128, seeds=(0, 1),
                              train=(("erf", 1.0, 0.05, 2, 0.1), ("erf", 1.0, 0.05, 2, 1.0), ("erf", 0.1, 0.01, 2, 1.0)),
                              eb=dict(etas=(1 / 9, 1 / 16, 1 / 25), widths=(32, 128, 512), seeds=(0, 1), steps=100,
                                      batched=True)),
        "paper": _pt_settings(width=1000, seeds=tuple(range(5)),
                              train=tuple((*a, s) for a in PT_ARCHS for s in PT_INTERVALS),
                              eb=dict(etas=(1 / 9, 1 / 36, 1 / 144), widths=(64, 128, 256, 512, 1000),
                                      seeds=tuple(range(5)), steps=1000, batched=False)),
    },
}
#: Tolerances of the numbers the optimisers and width-and-precision chapters claim (``book.claim(name, x, **DET)``), each with its budget.
DET = dict(rtol=1e-9, budget="deterministic float64 value (fixed seeds): run-to-run and CPU round-off")
DIFF = dict(rtol=1e-6, budget="float64 difference of trained outputs, 1e-2 to 1e-5 of the outputs: round-off of "
                              "the outputs (1e-13 after 1000 contracting steps) relative to the difference")
F32 = dict(rtol=1e-4, budget="float32 training: round-off 6e-8 per step, accumulated over 1000 steps (~2e-6 of "
                             "the output), relative to a deviation of at least 1e-2 of the distance travelled")
#: The optimisers' learning-rate grids of the two benchmarks (``benchmarks.standard_methods`` arguments).
POLY_GRIDS = dict(lr_grid=(1.0, 10.0, 100.0, 1000.0), adam_grid=(1e-3, 1e-2, 0.1, 1.0))
DIGITS_GRIDS = dict(lr_grid=(0.03, 0.1, 0.3, 1.0), adam_grid=(1e-3, 3e-3, 0.01, 0.03))
#: The losses of the polynomial benchmark.
POLY_LOSSES = ((0.1, 1.0, 2), (0.1, 10.0, 2), (0.1, 1.0, 4), (0.01, 10.0, 4))


def settings(chapter: str, profile: str | None = None) -> dict:
    """The grid settings of ``chapter`` in ``profile`` (see :data:`SETTINGS`)."""
    return SETTINGS[chapter][profiles.get_profile(profile)]


def _chapter_of(name: str) -> str:
    return next(ch for ch, names in CHAPTERS.items() if name in names)


# ------------------------------------------------------------------------------------------------
# grids
# ------------------------------------------------------------------------------------------------
def _cfg(name, **kw):
    return {"scan": name, "scan_version": SCAN_VERSIONS[name], **kw}


def _loss_of(triple) -> PolynomialLoss:
    m, f0, n = triple
    return PolynomialLoss(float(m), float(f0), int(n))


def grid(name: str, profile: str | None = None) -> list[dict]:
    """The configurations of scan ``name`` in ``profile``, in the order the chapter uses them."""
    if name not in SCAN_VERSIONS:
        raise ValueError(f"scan must be one of {NAMES}, got {name!r}")
    if name == "ap-mean-field":  # Appendix B's grid: the paper's Fig. 5 architectures with seeds
        from . import mean_field

        return [_cfg(name, **c) for c in mean_field.grid(profiles.get_profile(profile))]
    if name.startswith("bg-"):  # the background chapter: scans.background
        from . import background

        return [_cfg(name, **c) for c in background.grid(name, settings("background", profile))]
    s = settings(_chapter_of(name), profile)
    if name == "oc-sweep":  # seeds x losses x learning rates x schedules: the order of duality_sweep
        from ..experiments.schedules import cosmology_schedules

        names = [sc.name for sc in cosmology_schedules(beta=s["beta"])]
        return [_cfg(name, width=s["width"], **ARCH, x0=X0, seed=seed, loss=list(loss), eta=eta, schedule=sn,
                     schedule_beta=s["beta"], steps=s["steps"])
                for seed in s["seeds"] for loss in s["losses"] for eta in s["etas"] for sn in names]
    if name == "oc-nesterov":
        return [_cfg(name, width=s["width"], **ARCH, x0=X0, seed=s["seeds"][0], loss=list(s["loss_b"]),
                     ns=list(s["ns"]), T=s["T"])]
    if name == "oc-friedmann":  # the run of the schedules figure, the two late-time runs, the V0 > 0 run
        runs = [(s["losses"][0], 0.0, s["steps"])] + [(lo, 0.0, s["steps_c"]) for lo in s["late_losses"]]
        runs.append((s["late_losses"][0], s["v0"], s["steps_c"]))
        return [_cfg(name, width=s["width"], **ARCH, x0=X0, seed=s["seeds"][0], loss=list(lo), eta=s["etas"][0],
                     v0=v0, steps=steps) for lo, v0, steps in runs]
    if name in ("oc-poly", "oc-digits"):
        from ..experiments.benchmarks import standard_methods

        if name == "oc-poly":
            p = s["poly"]
            return [_cfg(name, width=p["width"], hidden_layers=1, activation="erf", W_std=1.0, b_std=0.05, x0=X0,
                         losses=[list(lo) for lo in POLY_LOSSES], steps=p["steps"], seeds=list(p["seeds"]),
                         tune_seeds=list(p["tune_seeds"]), method=m.name, lr_grid=list(m.lr_grid))
                    for m in standard_methods(**POLY_GRIDS)]
        d = s["digits"]
        return [_cfg(name, hidden=list(d["hidden"]), steps=d["steps"], batch_size=d["batch_size"], seeds=list(d["seeds"]),
                     method=m.name, lr_grid=list(m.lr_grid)) for m in standard_methods(**DIGITS_GRIDS)]
    if name == "pt-networks":  # every (architecture, seed), the grid's architectures first, then the extra network
        common = dict(width=s["width"], n_points=s["n_points"], eta=s["eta"], beta=s["beta"], loss=list(s["loss"]),
                      steps=s["steps"], record_every=s["record_every"], n_modes=s["n_modes"],
                      lattice_modes=s["lattice_modes"])
        rows = [(a, list(s["intervals"]), [k[4] for k in s["train"] if tuple(k[:4]) == a], False) for a in s["archs"]]
        rows.append((tuple(s["extra"]), [s["extra_interval"]], [s["extra_interval"]], True))
        return [_cfg(name, **dict(zip(("activation", "W_std", "b_std", "hidden_layers"), a)), seed=seed,
                     intervals=intervals, train=train, detail=detail, **common)
                for a, intervals, train, detail in rows for seed in s["seeds"]]
    if name == "pt-error-budget":  # one width per configuration: every learning rate and seed of it
        eb = s["eb"]
        return [_cfg(name, **dict(zip(("activation", "W_std", "b_std", "hidden_layers"), eb["arch"])), width=w,
                     n_points=s["n_points"], interval=eb["interval"], grid_eta=s["eta"], grid_beta=s["beta"],
                     etas=list(eb["etas"]), seeds=list(eb["seeds"]), steps_at_grid_eta=eb["steps"],
                     loss=list(s["loss"]), batched=eb["batched"])
                for w in eb["widths"]]
    if name == "wp-alpha":
        return [_cfg(name, width=w, **ARCH, x0=X0, n_seeds=s["seeds_a"]) for w in s["widths_a"]]
    if name == "wp-drift":
        return [_cfg(name, width=w, **ARCH, x0=X0, n_seeds=s["seeds_d"], eta=s["eta"], beta=s["beta"],
                     loss=list(s["loss"]), steps=s["steps"]) for w in s["widths_d"]]
    # wp-precision: the (eta, beta) map of one network, and the reference point at the paper's width
    ref = s["ref"]
    return [_cfg(name, width=w, **ARCH, x0=X0, seed=0, loss=list(s["loss"]), etas=list(etas), betas=list(betas),
                 steps=s["steps"])
            for w, etas, betas in ((s["width_p"], s["etas_p"], s["betas_p"]), (ref["width"], [ref["eta"]], [ref["beta"]]))]


def group_key(name: str):
    """Configurations with equal keys are computed together (one network, one compilation)."""
    if name.startswith("bg-"):
        from . import background

        return background.group_key(name)
    if name == "oc-sweep":
        return lambda c: [c["schedule"], c["seed"]]
    if name in ("oc-poly", "oc-digits"):
        return lambda c: c["method"]
    if name == "oc-friedmann":
        return lambda c: [c["steps"], c["seed"]]
    if name == "ap-mean-field":  # one batched training per architecture, seed and interval
        return lambda c: [c["width"], c["hidden_layers"], c["activation"], c["seed"], c["interval"]]
    if name == "pt-networks":
        return lambda c: [c["activation"], c["W_std"], c["b_std"], c["hidden_layers"], c["seed"]]
    if name == "pt-error-budget":
        return lambda c: c["width"]
    return lambda c: [c["width"], c.get("seed")]


# ------------------------------------------------------------------------------------------------
# compute functions: a batch of configurations -> list of {"value": encode(experiment result)}
# ------------------------------------------------------------------------------------------------
def _net(c):
    return _mlp(c["width"], c["hidden_layers"], c["activation"], c["W_std"], c["b_std"])


def _x0(c):
    return jnp.full((1, 1), c["x0"])


def _params(c):
    init_fn, _ = _net(c)
    return init_fn(jax.random.PRNGKey(c["seed"]), 1)


def _compute_sweep(configs):
    from ..experiments.schedules import cosmology_schedules, duality_check

    out = []
    for c in configs:
        sched = {s.name: s for s in cosmology_schedules(beta=c["schedule_beta"])}[c["schedule"]]
        r = duality_check(_net(c)[1], _params(c), _x0(c), sched, eta=c["eta"], loss=_loss_of(c["loss"]),
                          steps=c["steps"], seed=c["seed"])
        out.append({"value": encode(r)})
    return out


def _compute_nesterov(configs):
    from ..experiments.schedules import nesterov_convergence

    return [{"value": encode(nesterov_convergence(_net(c)[1], _params(c), _x0(c), loss=_loss_of(c["loss"]),
                                                  ns=tuple(c["ns"]), T=c["T"]))} for c in configs]


def _compute_friedmann(configs):
    from ..experiments.schedules import friedmann_history

    return [{"value": encode(friedmann_history(_net(c)[1], _params(c), _x0(c), loss=_loss_of(c["loss"]), eta=c["eta"],
                                               v0=c["v0"], steps=c["steps"]))} for c in configs]


def _method(c, grids):
    from ..experiments.benchmarks import standard_methods

    m = {m.name: m for m in standard_methods(**grids)}[c["method"]]
    if list(m.lr_grid) != c["lr_grid"]:
        raise ValueError(f"{c['method']}: the stored learning-rate grid {c['lr_grid']} is not the method's {m.lr_grid}")
    return m


def _compute_poly(configs):
    from ..experiments.benchmarks import benchmark_polynomial

    out = []
    for c in configs:
        init_fn, apply_fn = _net(c)
        losses = [_loss_of(lo) for lo in c["losses"]]
        res = benchmark_polynomial([_method(c, POLY_GRIDS)], losses, apply_fn=apply_fn, init_fn=init_fn, x=_x0(c),
                                   steps=c["steps"], seeds=tuple(c["seeds"]),
                                   tune_seeds=tuple(c["tune_seeds"]))
        out.append({"value": encode([res[lo][0] for lo in losses])})
    return out


def _compute_digits(configs):
    from ..experiments.benchmarks import benchmark_digits

    return [{"value": encode(benchmark_digits([_method(c, DIGITS_GRIDS)], hidden=tuple(c["hidden"]), steps=c["steps"],
                                              batch_size=c["batch_size"], seeds=tuple(c["seeds"]))[0])}
            for c in configs]


def _compute_alpha(configs):
    from ..experiments.precision import alpha_samples

    return [{"value": encode(alpha_samples(c["width"], c["n_seeds"], arch=_arch(c), x0=_x0(c)))} for c in configs]


def _arch(c):
    return {k: c[k] for k in ARCH}


def _compute_drift(configs):
    from ..experiments.precision import drift_rows

    return [{"value": encode(drift_rows(c["width"], c["n_seeds"], arch=_arch(c), x0=_x0(c), eta=c["eta"], beta=c["beta"],
                                        loss=_loss_of(c["loss"]), steps=c["steps"]))} for c in configs]


def _compute_precision(configs):
    from ..experiments.precision import precision_maps, rounding_prediction

    out = []
    for c in configs:
        loss, etas, betas = _loss_of(c["loss"]), np.asarray(c["etas"], float), np.asarray(c["betas"], float)
        maps = precision_maps(width=c["width"], arch=_arch(c), x=_x0(c), loss=loss, etas=etas, betas=betas,
                              steps=c["steps"], seed=c["seed"])
        init_fn, apply_fn = network.mlp(width=c["width"], **_arch(c))
        rounding = rounding_prediction(apply_fn, init_fn(jax.random.PRNGKey(c["seed"]), 1), _x0(c), loss=loss, etas=etas,
                                       betas=betas, width=c["width"])
        out.append({"value": encode({"maps": maps, "rounding": rounding})})
    return out


def pt_arch(c) -> tuple:
    """(activation, W_std, b_std, hidden_layers) of a ``pt-*`` configuration."""
    return (c["activation"], c["W_std"], c["b_std"], c["hidden_layers"])


def pt_grids(c, intervals) -> dict:
    """{s: the chapter's N equally spaced inputs on s Hubble lengths} of a ``pt-*`` configuration
    (:func:`~nncosmo_helpers.dynamics.centred_interval` at the chapter's eta and beta)."""
    from .. import dynamics

    eta, beta = c.get("grid_eta", c.get("eta")), c.get("grid_beta", c.get("beta"))
    return {float(s): dynamics.centred_interval(c["n_points"], float(s), eta=eta, beta=beta) for s in intervals}


def _compute_pt_networks(configs):
    from .. import dynamics
    from ..experiments import error_budget, lattice_modes, modes
    from ..train import train_momentum

    out = []
    for c in configs:
        arch = pt_arch(c)
        apply_fn, params = modes.build_network(arch, width=c["width"], seed=c["seed"])
        grids = pt_grids(c, c["intervals"])
        nk = modes.network_kernels(apply_fn, params, grids)
        kw = dict(eta=c["eta"], beta=c["beta"], loss=_loss_of(c["loss"]), steps=c["steps"])
        if c["detail"] and len(c["train"]) != 1:
            raise ValueError("a detailed pt-networks configuration trains on exactly one interval")
        trained, budget, lat = [], None, None
        for s in c["train"]:
            x = grids[float(s)]
            if c["detail"]:  # every step with the initial and final kernels: the error budget and the lattice need them
                run = train_momentum(apply_fn, params, x, **kw)
                f, rec = modes.every(run, c["record_every"], c["steps"])
                budget = error_budget.error_budget(apply_fn, params, x, run=run, **kw)
                lat = lattice_modes.compare_network_lattice(apply_fn, params, x, n_modes=c["lattice_modes"],
                                                            record_every=1, run=run, **kw)
            else:
                run = train_momentum(apply_fn, params, x, record_every=c["record_every"], compute_ntk=False, **kw)
                f, rec = run.f, run.steps
            md = dynamics.mode_decomposition(nk.kernels[list(grids).index(float(s))])
            trained.append(modes.trained_network((*arch, float(s)), c["seed"], md, f, rec,
                                                 degeneracy=dynamics.degeneracy_ratio(c["width"]),
                                                 n_modes=c["n_modes"], **kw))
        out.append({"value": encode({"kernels": nk, "trained": trained, "budget": budget, "lattice": lat})})
    return out


def _compute_pt_error_budget(configs):
    from .. import cosmology
    from ..experiments.error_budget import error_budget_grid

    out = []
    for c in configs:
        flrw = cosmology.flrw_parameters(c["grid_eta"], c["grid_beta"])
        x = pt_grids(c, [c["interval"]])[float(c["interval"])]
        act, w, b, hl = pt_arch(c)
        g = error_budget_grid(x, etas=c["etas"], widths=[c["width"]], seeds=c["seeds"], friction=flrw.friction,
                              duration=c["steps_at_grid_eta"] * float(np.sqrt(c["grid_eta"])), loss=_loss_of(c["loss"]),
                              batched=c["batched"], hidden_layers=hl, activation=act, W_std=w, b_std=b)
        out.append({"value": encode(g)})
    return out


def _compute_mean_field(configs):
    from . import mean_field

    return [{"value": encode(r)} for r in mean_field.compute(configs)]


def _compute_background(configs):
    from . import background

    return background.compute(configs)


COMPUTE = {"bg-runs": _compute_background, "bg-lag": _compute_background, "bg-limit": _compute_background,
           "ap-mean-field": _compute_mean_field, "oc-sweep": _compute_sweep, "oc-nesterov": _compute_nesterov, "oc-friedmann": _compute_friedmann,
           "oc-poly": _compute_poly, "oc-digits": _compute_digits, "wp-alpha": _compute_alpha,
           "wp-drift": _compute_drift, "wp-precision": _compute_precision, "pt-networks": _compute_pt_networks,
           "pt-error-budget": _compute_pt_error_budget}


# ------------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------------
class Read(NamedTuple):
    """A scan as a chapter reads it: the configurations, the decoded results (the experiments' own
    return values, in grid order) and the profile they belong to."""

    configs: list
    values: list
    profile: str


def chapter_profile(chapter: str, profile: str | None = None, results_dir_=None) -> str:
    """``profile`` if every scan of ``chapter`` is stored complete for it, else ``"quick"``."""
    from . import load

    profile = profiles.get_profile(profile)
    loaded = {name: load(name, profile, results_dir_) for name in CHAPTERS[chapter]}
    if all(r is not None for r in loaded.values()):
        for name, results in loaded.items():  # :func:`read` takes them from here instead of loading twice
            _LOADED[(name, profile, str(results_dir_))] = results
        return profile
    return "quick"


#: Results loaded by :func:`chapter_profile`, handed to the next :func:`read` of the same scan (then dropped).
_LOADED: dict = {}


def read(name: str, profile: str | None = None, results_dir_=None) -> Read:
    """Scan ``name`` in ``profile``: stored results when complete, else computed in memory (not stored).

    Unlike :func:`~nncosmo_helpers.scans.load_or_compute` there is no fallback to another profile:
    pick the profile with :func:`chapter_profile` first, so that a chapter shows one profile throughout.
    """
    from . import compute, load

    profile = profiles.get_profile(profile)
    configs = grid(name, profile)
    results = _LOADED.pop((name, profile, str(results_dir_)), None) or load(name, profile, results_dir_)
    if results is None:
        results = compute(name, configs)
    return Read(configs, [decode(r["value"]) for r in results], profile)


# -- the chapters' objects from the scans ----------------------------------------------------------
def poly_results(r: Read) -> dict:
    """``oc-poly`` as :func:`~nncosmo_helpers.experiments.benchmarks.benchmark_polynomial` returns it:
    {PolynomialLoss: [BenchmarkResult per method]} (losses and methods in grid order)."""
    losses = [_loss_of(lo) for lo in r.configs[0]["losses"]]
    return {lo: [per_method[k] for per_method in r.values] for k, lo in enumerate(losses)}


def alpha_scan(r: Read):
    """``wp-alpha`` as :func:`~nncosmo_helpers.experiments.precision.alpha_width_scan` returns it."""
    from .. import ntk
    from ..experiments.precision import AlphaScan

    c0 = r.configs[0]
    alpha_inf = float(ntk.infinite_width_ntk(_x0(c0), **_arch(c0))[0, 0])
    return AlphaScan(np.asarray([c["width"] for c in r.configs]), np.array(r.values), alpha_inf)


def drift_scan(r: Read):
    """``wp-drift`` as :func:`~nncosmo_helpers.experiments.precision.drift_width_scan` returns it."""
    from ..experiments.precision import drift_scan_from_rows

    return drift_scan_from_rows([c["width"] for c in r.configs], [row for rows in r.values for row in rows])


class PerturbationNetworks(NamedTuple):
    """``pt-networks`` as the perturbations chapter uses it, keyed by network: ``measured``
    {(architecture, seed): NetworkKernels}, ``trained`` {(configuration key, seed): TrainedNetwork},
    ``budget`` and ``lattice`` {(architecture, seed): ErrorBudget / NetworkLatticeModes} of the detailed
    (off-grid) networks."""

    measured: dict
    trained: dict
    budget: dict
    lattice: dict


def perturbation_networks(r: Read) -> PerturbationNetworks:
    """:class:`PerturbationNetworks` of a read ``pt-networks`` scan."""
    out = PerturbationNetworks({}, {}, {}, {})
    for c, v in zip(r.configs, r.values):
        net = (pt_arch(c), c["seed"])
        out.measured[net] = v["kernels"]
        for t in v["trained"]:
            out.trained[tuple(t.key), t.seed] = t
        if v["budget"] is not None:
            out.budget[net] = v["budget"]
        if v["lattice"] is not None:
            out.lattice[net] = v["lattice"]
    return out


def error_budget_scan(r: Read):
    """``pt-error-budget`` as one :class:`~nncosmo_helpers.experiments.error_budget.ErrorBudgetGrid` (widths in
    grid order)."""
    from ..experiments.error_budget import join_widths

    return join_widths(r.values)


__all__ = ["NAMES", "CHAPTERS", "SETTINGS", "DET", "DIFF", "F32", "SCAN_VERSIONS", "COMPUTE", "grid", "group_key", "settings", "encode",
           "decode", "read", "chapter_profile", "Read", "poly_results", "alpha_scan", "drift_scan", "PT_ARCHS",
           "PT_INTERVALS", "pt_arch", "pt_grids", "PerturbationNetworks", "perturbation_networks", "error_budget_scan"]
