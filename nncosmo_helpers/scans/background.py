"""The scans of the chapter "Background matching" (``book/background.md``, section 2.1 of the paper).

Every network that chapter trains, and its one expensive ODE scan, is a configuration of one of three
scans of :mod:`nncosmo_helpers.scans.beyond` (stored by ``python -m nncosmo_helpers.scans --profile
paper``; the chapter only reads them with ``beyond.read`` and, in the quick profile with nothing
stored, :func:`~nncosmo_helpers.scans.beyond.read` computes them in memory without storing):

* ``bg-runs`` -- :func:`~nncosmo_helpers.experiments.background.compare_backgrounds`, one homogeneous
  network trained with eq. 2 against the fixed-H and the self-consistent backgrounds of eq. 6. One
  configuration per (loss, eta, beta) of the chapter's grid (the paper's (eta, beta) pairs times the
  profile's losses of eq. 20), then the same grid on the networks of the settings' ``control_seeds``
  (the same architecture, other N(0, 1) draws: the seed spread of the chapter's verdict), then, on the
  chapter's network only, one per epsilon of the sweep across eta_max, whose learning rate
  eta = epsilon * eta_max (eq. bg-etamax of the chapter, ``cosmology.eta_max_vacuum``) depends on the
  network's alpha and f_init: the configuration holds epsilon and the compute function forms eta, so
  the configuration alone determines the result. A run that diverges (``train.TrainingDiverged``) is
  stored as a :class:`DivergedRun`, which keeps the exception's message, step and stability ratio.
* ``bg-lag`` -- :func:`~nncosmo_helpers.cosmology.backgrounds_at_epsilon`, the two backgrounds of
  eq. 6 alone (no training) at eta = epsilon * eta_max over twelve relaxation times, for the
  network's alpha and f_init. Network-free but stiff at small epsilon (the paper profile's ten values
  took 27 s as a chapter cell and 42 s as a scan, on two cores shared with other jobs, most of it at
  epsilon = 1e-3), so it is stored as well.
* ``bg-limit`` -- :func:`~nncosmo_helpers.experiments.background.stability_limit_runs`, the network
  trained at multiples of its linear stability limit (eq. bg-etastab). Stored without the final
  parameters of its runs (``TrainResult.params = None``: a million numbers per run at width 1000 and
  two hidden layers, which the chapter does not read); everything else is kept.

The network is that of the chapter (``SETTINGS["background"]`` of :mod:`.beyond`: width 1000, erf,
NTK parameterisation, (W_std, b_std) = (1, 0.05), one hidden layer in the quick profile and two in
the paper profile, seed 0, trained on the single input x0 = 1; ``bg-runs`` trains its grid also on
the networks of the settings' ``control_seeds``). :func:`comparisons` and
:func:`stability_limit` turn what :func:`~nncosmo_helpers.scans.beyond.read` returns back into the
objects the chapter used to compute in memory; :func:`network` is the chapter's network (the one place it
is built).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .. import cosmology, ntk, train
from ..experiments import background as experiment
from ..loss import PolynomialLoss
from .common import _mlp, encode  # one (init_fn, apply_fn) per architecture: the jitted training loops compile once

#: The scans of the chapter, in the order the command line runs them.
NAMES = ("bg-runs", "bg-lag", "bg-limit")
#: The keys of a configuration that name the network (the settings' ``network`` plus seed and input).
NETWORK_KEYS = ("width", "hidden_layers", "activation", "W_std", "b_std", "seed", "x0")


class DivergedRun(NamedTuple):
    """A ``bg-runs`` configuration whose training raised :class:`~nncosmo_helpers.train.TrainingDiverged`.

    Attributes:
        eta, beta, loss: the run's hyperparameters (eta as trained, also for an epsilon configuration).
        message, step, stability_ratio: the exception's message and attributes (:meth:`error` rebuilds it).
    """

    eta: float
    beta: float
    loss: PolynomialLoss
    message: str
    step: int
    stability_ratio: float | None

    def error(self) -> train.TrainingDiverged:
        """The exception the training raised."""
        return train.TrainingDiverged(self.message, self.step, self.stability_ratio)


class Comparisons(NamedTuple):
    """``bg-runs`` as the chapter uses it.

    Attributes:
        runs: the :class:`~nncosmo_helpers.experiments.background.BackgroundComparison` of every
            (loss, eta, beta) run on the chapter's network that converged, in grid order (losses outer,
            pairs inner).
        skipped: ``(eta, beta, loss, stability_ratio)`` of every such run that diverged.
        sweep: the comparisons of the epsilon sweep (loss, beta of the settings, eta = epsilon * eta_max).
        controls, control_skipped: ``runs`` and ``skipped`` of the same grid on each control seed's network,
            by seed (in the grid's order of seeds).
    """

    runs: list
    skipped: list
    sweep: list
    controls: dict
    control_skipped: dict


# ------------------------------------------------------------------------------------------------
# grids
# ------------------------------------------------------------------------------------------------
def grid(name: str, s: dict) -> list[dict]:
    """The configurations of scan ``name`` (without ``scan``/``scan_version``) from the settings ``s``."""
    if s["seed"] in s["control_seeds"]:
        raise ValueError(f"the control seeds {s['control_seeds']} must not contain the chapter's seed {s['seed']}")
    net = {**s["network"], "seed": s["seed"], "x0": s["x0"]}
    if name == "bg-runs":
        train_ = dict(steps=s["steps"], record_every=s["record_every"])
        pairs = [dict(net, seed=seed, loss=list(lo), eta=eta, epsilon=None, beta=beta, **train_)
                 for seed in (s["seed"], *s["control_seeds"]) for lo in s["losses"] for eta, beta in s["pairs"]]
        sweep = [dict(net, loss=list(s["loss"]), eta=None, epsilon=e, beta=s["sweep_beta"], **train_)
                 for e in s["eps_net"]]
        return pairs + sweep
    if name == "bg-lag":
        return [dict(net, loss=list(s["loss"]), epsilon=e, beta=s["sweep_beta"], relaxation_times=s["relaxation_times"],
                     samples=s["samples"]) for e in s["eps_scan"]]
    if name == "bg-limit":
        lim = s["limit"]
        return [dict(net, loss=list(lim["loss"]), factors=list(lim["factors"]), steps=lim["steps"])]
    raise ValueError(f"scan must be one of {NAMES}, got {name!r}")


def group_key(name: str):
    """Groups computed together: one network (architecture and seed) per group; ``bg-runs`` one loss
    per group (five to six trainings, saved as they finish), the other two one group each."""
    if name == "bg-runs":
        return lambda c: [[c[k] for k in NETWORK_KEYS], c["loss"], c["epsilon"] is None]
    return lambda c: [c[k] for k in NETWORK_KEYS]


# ------------------------------------------------------------------------------------------------
# computing
# ------------------------------------------------------------------------------------------------
class Network(NamedTuple):
    """The chapter's homogeneous network at its input ``x0`` (1, 1): ``alpha`` = Theta(x0, x0) (eq. 7) and its
    initial output ``f_init``."""

    apply_fn: object
    params: object
    x0: jax.Array
    alpha: float
    f_init: float


def network(s: dict) -> Network:
    """The :class:`Network` of the settings ``s`` (``beyond.settings("background", profile)``): the one the
    chapter shows and every scan of this module trains."""
    return _network(*(dict(s["network"], seed=s["seed"], x0=s["x0"])[k] for k in NETWORK_KEYS))


@functools.lru_cache(maxsize=8)
def _network(width, hidden_layers, activation, W_std, b_std, seed, x0) -> Network:
    """:class:`Network` of one architecture, seed and input (cached: the scans of one network share it)."""
    init_fn, apply_fn = _mlp(width, hidden_layers, activation, W_std, b_std)
    params = init_fn(jax.random.PRNGKey(seed), 1)
    x = jnp.full((1, 1), x0)
    return Network(apply_fn, params, x, float(ntk.alpha(apply_fn, params, x)), float(apply_fn(params, x)[0, 0]))


def _net(c) -> Network:
    return _network(*(c[k] for k in NETWORK_KEYS))


def _loss(c) -> PolynomialLoss:
    m, f0, n = c["loss"]
    return PolynomialLoss(float(m), float(f0), int(n))


def _run(c):
    net, loss = _net(c), _loss(c)
    eta = c["eta"] if c["epsilon"] is None else \
        c["epsilon"] * cosmology.eta_max_vacuum(net.alpha, loss, net.f_init, beta=c["beta"])
    try:
        return experiment.compare_backgrounds(net.apply_fn, net.params, net.x0, eta=eta, beta=c["beta"], loss=loss,
                                              steps=c["steps"], record_every=c["record_every"])
    except train.TrainingDiverged as err:
        return DivergedRun(eta, c["beta"], loss, str(err), err.step, err.stability_ratio)


def _lag(c):
    net = _net(c)
    return cosmology.backgrounds_at_epsilon(net.alpha, _loss(c), net.f_init, epsilon=c["epsilon"], beta=c["beta"],
                                            relaxation_times=c["relaxation_times"], samples=c["samples"])


def _limit(c):
    net = _net(c)
    lim = experiment.stability_limit_runs(net.apply_fn, net.params, net.x0, loss=_loss(c), factors=tuple(c["factors"]),
                                          steps=c["steps"])
    return {"limit": lim._replace(runs=None), "runs": [r._replace(params=None) for r in lim.runs.values()]}


_COMPUTE = {"bg-runs": _run, "bg-lag": _lag, "bg-limit": _limit}


def compute(configs: list[dict]) -> list[dict]:
    """``{"value": encode(result)}`` per configuration (one scan per batch; see the module docstring)."""
    return [{"value": encode(_COMPUTE[c["scan"]](c))} for c in configs]


# ------------------------------------------------------------------------------------------------
# the chapter's objects
# ------------------------------------------------------------------------------------------------
def comparisons(r, seed: int) -> Comparisons:
    """``bg-runs`` (a :class:`~nncosmo_helpers.scans.beyond.Read`) as the chapter's ``runs``, ``skipped``
    and sweep (on the chapter's network, ``seed``: the settings' ``seed``), and the control seeds' runs
    and skipped. A diverged run of the sweep raises its ``TrainingDiverged`` again, as the chapter's own
    loop did (the sweep has no place for it)."""
    runs, skipped, sweep, controls, control_skipped = [], [], [], {}, {}
    for c, v in zip(r.configs, r.values):
        if c["epsilon"] is not None:
            if isinstance(v, DivergedRun):
                raise v.error()
            sweep.append(v)
            continue
        if c["seed"] == seed:
            ok, bad = runs, skipped
        else:
            ok, bad = controls.setdefault(c["seed"], []), control_skipped.setdefault(c["seed"], [])
        if isinstance(v, DivergedRun):
            bad.append((v.eta, v.beta, v.loss, v.stability_ratio))
        else:
            ok.append(v)
    return Comparisons(runs, skipped, sweep, controls, control_skipped)


def stability_limit(r) -> experiment.StabilityLimitRuns:
    """``bg-limit`` as :func:`~nncosmo_helpers.experiments.background.stability_limit_runs` returns it
    (its runs without their final parameters)."""
    (value,) = r.values
    lim = value["limit"]
    return lim._replace(runs=dict(zip(lim.factors, value["runs"])))


__all__ = ["NAMES", "DivergedRun", "Comparisons", "grid", "group_key", "compute", "comparisons", "stability_limit"]
