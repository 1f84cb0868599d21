"""How many kernels and training steps the chapter scans run, against what their counters assume.

``tests/test_scan_counts_pt_bg.py`` and ``tests/test_scan_counts_oc_wp.py`` check the per-step and per-kernel
flop formulas of ``benchmarks/scan_counts_*.py``. This file checks the *multiplicities*: for tiny versions of
real configurations (the grid's own configuration with only width, steps, points or seeds shrunk) it runs
the scan's compute function (``beyond.COMPUTE[name]``) and observes what executes, then runs the scan's
counter on the record that computation produced (config and result JSON round-tripped as
``ResultStore.save`` writes them) with its unit functions replaced by tags, and compares.

Observation counts executions, not Python calls: kernels and steps inside jitted, vmapped or ``lax.map``ped
code (``wp-drift`` traces its kernels and its training once and runs them per seed; ``train_optax_batch``
vmaps its runs) are seen through ``jax.debug.callback`` ticks, which fire once per execution and, under
``vmap``, once per batch member (their batching rule unrolls over a mapped argument, so each tick is
passed a value that depends on the parameters).

* every empirical NTK goes through one of ``ntk._structured_ntk_symmetric``, ``ntk._structured_ntk`` or
  ``ntk._jacobian_ntk`` (``ntk.empirical_ntk``; ``ntk.alpha`` calls it): each is wrapped to tick with its
  kernel (the shape gives N);
* every training step is one application of the step kernel that ``train.run`` scans (``train.trajectory``,
  the core of ``train_momentum``, ``train_optax``, ``train_optax_batch`` and ``optax_trajectory``, calls
  it, and so does ``friedmann_history``): ``train.run`` is wrapped so that each step ticks with its loss and
  outputs (a run is counted at its step 0);
* every frozen-kernel iteration (the pt counters' third unit) is a call of ``dynamics._iterate_jit``, whose
  ``gaps`` sum to the steps it iterates (called outside any trace, so counted in Python).

The wrappers are installed once for the module (a trace made with them ticks into whichever case runs it,
so cases share compilations). A jitted function that traces a training loop or a kernel and was traced
earlier in the session with the same static arguments would run its cached, unwrapped trace and tick
nothing, so the caches of those functions (:data:`TRACED`) are cleared when the wrappers are installed, and
again when they are removed so that no wrapped trace outlives the module. A function missing from
:data:`TRACED` can only make a case see fewer executions than the counter counts, which fails.

Counter side: ``scan_counts_pt_bg``'s ``kernel`` -> (1, 0), ``train_step`` -> (0, 1), ``iteration_step`` ->
(0, 0) (and a second pass with only ``iteration_step`` -> (1, 0)); ``scan_counts_oc_wp``'s
``roofline.kernel_counts`` (through ``_kernel``) -> (1, 0), ``mlp_train_counts`` -> (0, 1),
``forward_counts`` -> (0, 0). With unit rates the counter's (flops, bytes) are then (kernels, training
steps summed over networks). The tags also record the (width, layers, N) each unit was asked for.
"""

import functools
import json
import sys
import threading
from pathlib import Path

import jax
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import roofline as rl  # noqa: E402
import scan_counts_oc_wp as oc  # noqa: E402
import scan_counts_pt_bg as pb  # noqa: E402

from nncosmo_helpers import dynamics, ntk, train  # noqa: E402
from nncosmo_helpers.experiments import precision  # noqa: E402
from nncosmo_helpers.results import canonical_json  # noqa: E402
from nncosmo_helpers.scans import background, beyond  # noqa: E402

UNIT = rl.FixedRates(1.0, 1.0)  # Tally sums are then plain sums of the tags
#: The jitted functions whose traces contain a training loop or a kernel (``train.run``, ``ntk.empirical_ntk``
#: called while tracing them); their caches are cleared when the probes are installed and removed.
TRACED = (train._trajectory, train._optax_batch, precision._drift)


class Observed:
    """What ran: kernel sizes, training steps (per network and step) and runs, iteration steps."""

    def __init__(self):
        self.kernels = []  # N of each executed kernel (N x N)
        self.ntk_paths = set()
        self.step_ticks = []  # (step number, N of the outputs) of every training step of every network
        self.iterations = 0  # frozen-kernel iteration steps

    @property
    def steps(self):
        """Training steps, summed over networks (each vmapped member counts)."""
        return len(self.step_ticks)

    @property
    def runs(self):
        """Training runs (networks), counted at their step 0."""
        return sum(step == 0 for step, _ in self.step_ticks)

    @property
    def step_points(self):
        return {n for _, n in self.step_ticks}


class _Current:
    obs = None  # the running case's Observed; ticks outside a case are an error


#: XLA may run the unrolled callbacks of a vmapped step on several threads at once: ticks take a lock
_LOCK = threading.Lock()


def _tick_kernel(name, k):
    with _LOCK:
        _Current.obs.kernels.append(int(np.shape(k)[0]))
        _Current.obs.ntk_paths.add(name)


def _tick_step(step, loss, f):
    with _LOCK:
        _Current.obs.step_ticks.append((int(step), None if f is None else int(np.size(f))))


@pytest.fixture(scope="module")
def probes():
    """Wrap the kernels, the training loop and the iteration once for the module (a trace made with the
    wrappers ticks into whichever case runs it, so cases share compilations)."""

    def wrap_ntk(name):
        orig = getattr(ntk, name)

        def wrapped(*args):
            out = orig(*args)
            jax.debug.callback(functools.partial(_tick_kernel, name), out)
            return out

        return wrapped

    orig_run = train.run

    def counted_run(kernel, state, steps, record_every=1):
        def k(s):
            new, info = kernel(s)
            # loss and f depend on the parameters, so under vmap the tick fires once per member
            jax.debug.callback(_tick_step, s.step, info.loss, info.f)
            return new, info

        return orig_run(k, state, steps, record_every)

    orig_iterate = dynamics._iterate_jit

    def counted_iterate(gaps, *args):
        _Current.obs.iterations += int(np.sum(np.asarray(gaps)))
        return orig_iterate(gaps, *args)

    with pytest.MonkeyPatch.context() as mp:
        for name in ("_structured_ntk_symmetric", "_structured_ntk", "_jacobian_ntk"):
            mp.setattr(ntk, name, wrap_ntk(name))
        mp.setattr(train, "run", counted_run)
        mp.setattr(dynamics, "_iterate_jit", counted_iterate)
        for f in TRACED:  # a trace cached before (same static arguments) would run unwrapped
            f.clear_cache()
        yield
    for f in TRACED:  # and the wrapped traces must not outlive the module
        f.clear_cache()


@pytest.fixture
def observe(probes):
    _Current.obs = Observed()
    yield _Current.obs
    _Current.obs = None


def _compute(name, config):
    """The scan's compute function on one configuration; the record as the store keeps it."""
    (result,) = beyond.COMPUTE[name]([config])
    jax.effects_barrier()  # every tick delivered
    member = (0.0, json.loads(canonical_json(config)), json.loads(canonical_json(result)))
    return member, beyond.decode(result["value"])


class Tags:
    def __init__(self):
        self.kernel_args, self.train_args = set(), set()


def _count_pt_bg(name, member, monkeypatch):
    """(kernels, training steps, iteration steps, tags) that scan_counts_pt_bg counts for one record."""
    tags = Tags()

    def kernel(width, L, N):
        tags.kernel_args.add((width, L, N))
        return 1.0, 0.0

    def train_step(width, L, N):
        tags.train_args.add((width, L, N))
        return 0.0, 1.0

    monkeypatch.setattr(pb, "kernel", kernel)
    monkeypatch.setattr(pb, "train_step", train_step)
    monkeypatch.setattr(pb, "iteration_step", lambda N: (0.0, 0.0))
    kernels, steps, _, _ = pb.COUNTERS[name]([member], UNIT)
    monkeypatch.setattr(pb, "kernel", lambda *a: (0.0, 0.0))
    monkeypatch.setattr(pb, "train_step", lambda *a: (0.0, 0.0))
    monkeypatch.setattr(pb, "iteration_step", lambda N: (1.0, 0.0))
    iterations = pb.COUNTERS[name]([member], UNIT)[0]
    return kernels, steps, iterations, tags


def _count_oc_wp(name, member, monkeypatch):
    """(kernels, training steps, tags) that scan_counts_oc_wp counts for one record."""
    tags = Tags()

    def kernel_counts(width, L, N, C):
        tags.kernel_args.add((width, L, N))
        return 1.0, 0.0

    def mlp_train_counts(width, L, N, dtype, words):
        tags.train_args.add((width, L, N))
        return 0.0, 1.0

    monkeypatch.setattr(oc.rl, "kernel_counts", kernel_counts)  # what _kernel counts with
    monkeypatch.setattr(oc, "mlp_train_counts", mlp_train_counts)
    monkeypatch.setattr(oc, "forward_counts", lambda *a: (0.0, 0.0))
    kernels, steps, _, _ = oc.COUNTERS[name]([member], UNIT)
    return kernels, steps, tags


def _check(obs, tags, kernels, steps, *, width, L, N, uncounted_kernels=0):
    """The counted kernels and training steps are the executed ones, of the right sizes."""
    assert obs.ntk_paths <= {"_structured_ntk_symmetric", "_structured_ntk"}, obs.ntk_paths
    assert kernels == len(obs.kernels) - uncounted_kernels, (kernels, obs.kernels)
    assert steps == obs.steps, (steps, obs.steps)
    assert set(obs.kernels) == {N} and obs.step_points == {N}, (obs.kernels, obs.step_points)
    assert tags.kernel_args == {(width, L, N)} and tags.train_args == {(width, L, N)}, vars(tags)


# ------------------------------------------------------------------------------------------------
# pt-*: the perturbations chapter
# ------------------------------------------------------------------------------------------------
PT_SMALL = dict(width=16, n_points=10, steps=20)  # record_every (10) still divides steps


def test_pt_networks_ordinary(observe, monkeypatch):
    c = dict(beyond.grid("pt-networks", "paper")[0], **PT_SMALL)
    assert not c["detail"] and len(c["intervals"]) == 2 and len(c["train"]) == 2
    member, value = _compute("pt-networks", c)
    assert value["budget"] is None and value["lattice"] is None  # the ordinary path
    kernels, steps, iterations, tags = _count_pt_bg("pt-networks", member, monkeypatch)
    _check(observe, tags, kernels, steps, width=16, L=c["hidden_layers"], N=10)
    # network_kernels: one kernel per interval; one run per interval of 'train'
    assert (len(observe.kernels), observe.steps, observe.runs) == (2, 2 * 20, 2)
    assert iterations == observe.iterations == 0


def test_pt_networks_detail(observe, monkeypatch):
    c = dict(beyond.grid("pt-networks", "paper")[-1], **PT_SMALL)
    assert c["detail"] and len(c["train"]) == 1
    member, value = _compute("pt-networks", c)
    assert value["budget"] is not None and value["lattice"] is not None  # the detail path
    kernels, steps, iterations, tags = _count_pt_bg("pt-networks", member, monkeypatch)
    _check(observe, tags, kernels, steps, width=16, L=c["hidden_layers"], N=10)
    # one kernel per interval, the every-step run's initial and final ones; the error budget's iteration
    assert (len(observe.kernels), observe.steps, observe.runs, observe.iterations) == (3, 20, 1, 20)
    assert iterations == observe.iterations


@pytest.mark.parametrize("profile", ["paper", "quick"])
def test_pt_error_budget(observe, monkeypatch, profile):
    """Paper profile: every (seed, eta) trained on its own (batched=False); quick: all vmapped together."""
    c = dict(beyond.grid("pt-error-budget", profile)[0], width=16, n_points=10, steps_at_grid_eta=20, seeds=[0, 1])
    assert c["batched"] == (profile == "quick") and len(c["etas"]) == 3
    member, value = _compute("pt-error-budget", c)
    n = np.asarray(value.steps)
    etas = np.asarray(c["etas"])
    assert list(n) == list(np.rint(20 * np.sqrt(c["grid_eta"] / etas)).astype(int))  # the same duration per eta
    kernels, steps, iterations, tags = _count_pt_bg("pt-error-budget", member, monkeypatch)
    _check(observe, tags, kernels, steps, width=16, L=c["hidden_layers"], N=10)
    S, E = len(c["seeds"]), len(c["etas"])
    if c["batched"]:  # one vmapped run of S x E members for max(steps); one initial kernel per seed
        assert (len(observe.kernels), observe.steps, observe.runs) == (S, S * E * n.max(), S * E)
    else:  # error_budget per (seed, eta): train_momentum with its initial and final kernels
        assert (len(observe.kernels), observe.steps, observe.runs) == (2 * S * E, S * n.sum(), S * E)
    assert iterations == observe.iterations == S * n.sum()


# ------------------------------------------------------------------------------------------------
# bg-*: the background chapter. Its network's alpha (background._network) is computed once per process and
# cached; the counter leaves that kernel out. The cache is cleared here so that the case computes it, and it
# is accounted for as exactly one uncounted kernel.
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def fresh_network():
    background._network.cache_clear()
    yield
    background._network.cache_clear()  # its params were made under the wrapped run; keep nothing


def _one_network_alpha():
    info = background._network.cache_info()
    assert info.misses == 1, info  # exactly one network built (and its one alpha computed) in the case


#: bg-runs configurations (paper grid, width 16, 20 steps): an ordinary (loss, eta, beta) run, one that diverges
#: at this size (train_momentum raises after its loop: a DivergedRun), one of the epsilon sweep
BG_RUNS = {"pair": lambda c: c["epsilon"] is None,
           "diverged": lambda c: c["epsilon"] is None and c["loss"] == [0.2, 10.0, 4] and c["eta"] == 0.4444,
           "epsilon": lambda c: c["epsilon"] is not None}


@pytest.mark.parametrize("which", list(BG_RUNS))
def test_bg_runs(observe, monkeypatch, fresh_network, which):
    c = dict(next(c for c in beyond.grid("bg-runs", "paper") if BG_RUNS[which](c)), width=16, steps=20)
    member, value = _compute("bg-runs", c)
    _one_network_alpha()
    converged = type(value).__name__ == "BackgroundComparison"
    assert converged == (which != "diverged") and type(value).__name__ in ("BackgroundComparison", "DivergedRun")
    kernels, steps, _, tags = _count_pt_bg("bg-runs", member, monkeypatch)
    _check(observe, tags, kernels, steps, width=16, L=c["hidden_layers"], N=1, uncounted_kernels=1)
    # the initial kernel and, unless train_momentum raised, the final one; every step of the lax.scan runs
    assert (len(observe.kernels) - 1, observe.steps, observe.runs) == (1 + converged, 20, 1)


def test_bg_limit(observe, monkeypatch, fresh_network):
    c = dict(beyond.grid("bg-limit", "paper")[0], width=16, steps=20)
    member, value = _compute("bg-limit", c)
    _one_network_alpha()
    diverged = [bool(r.diverged) for r in value["runs"]]
    assert any(diverged) and not all(diverged), diverged  # both branches of the counter exercised
    kernels, steps, _, tags = _count_pt_bg("bg-limit", member, monkeypatch)
    _check(observe, tags, kernels, steps, width=16, L=c["hidden_layers"], N=1, uncounted_kernels=1)
    F = len(c["factors"])
    # stability_limit_runs' alpha; per factor the initial kernel and, if it converged, the final one
    assert (len(observe.kernels) - 1, observe.steps, observe.runs) == (1 + F + F - sum(diverged), F * 20, F)


# ------------------------------------------------------------------------------------------------
# oc-sweep, wp-drift
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule", ["de Sitter, beta=0.5", "Friedmann, V0=0"])
def test_oc_sweep(observe, monkeypatch, schedule):
    c = dict(next(c for c in beyond.grid("oc-sweep", "paper") if c["schedule"] == schedule), width=16, steps=20)
    member, value = _compute("oc-sweep", c)
    converged = bool(np.isfinite(value.deviation))
    kernels, steps, tags = _count_oc_wp("oc-sweep", member, monkeypatch)
    _check(observe, tags, kernels, steps, width=16, L=c["hidden_layers"], N=1)
    assert (len(observe.kernels), observe.steps, observe.runs) == (1 + converged, 20, 1)


def test_wp_drift(observe, monkeypatch):
    c = dict(beyond.grid("wp-drift", "paper")[0], width=16, steps=20, n_seeds=3)
    member, value = _compute("wp-drift", c)
    assert len(value) == 3
    kernels, steps, tags = _count_oc_wp("wp-drift", member, monkeypatch)
    _check(observe, tags, kernels, steps, width=16, L=c["hidden_layers"], N=1)
    # kernel_drift's lax.map: per seed a kernel at initialisation and at the end, and one run
    assert (len(observe.kernels), observe.steps, observe.runs) == (2 * 3, 3 * 20, 3)
