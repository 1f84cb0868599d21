"""The counting rules of benchmarks/scan_counts_pt_bg.py (pt-* and bg-* scans) against XLA's own flop count.

XLA's ``cost_analysis()["flops"]`` of the compiled package functions counts a dot as 2 m n k (as the rule
does) and, unlike the rule, every elementwise operation too: erf and its derivative (tens of flops per
activation, N x width per layer), the loss gradient (~30 per point), the momentum update (~4 per
weight). At the sizes below the matmuls dominate, so XLA / rule must lie in [0.98, 1.10] (measured:
1.03 for the training step, 1.01 for the kernel, 1.04 for the iteration step, 1.02 for the N = 1
gradient); a count off by 2x (ratio 0.5 or 2) fails. XLA counts a loop body once whatever its trip
count, so the iteration is lowered for a single step.
"""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import roofline as rl  # noqa: E402
import scan_counts_pt_bg as sc  # noqa: E402

from nncosmo_helpers import dynamics, ntk, scans, train  # noqa: E402
from nncosmo_helpers.experiments import modes  # noqa: E402
from nncosmo_helpers.loss import PolynomialLoss  # noqa: E402
from nncosmo_helpers.optimizers import de_sitter_momentum  # noqa: E402
from nncosmo_helpers.scans import beyond  # noqa: E402

LOW, HIGH = 0.98, 1.10
LOSS = PolynomialLoss(0.1, 1.0, 2)  # the perturbations chapter's loss (0.1, 1.0, 2)
WIDTH, N = 128, 100  # the chapter's N = 100 points, a small width


def _xla_flops(lowered) -> float:
    ca = lowered.compile().cost_analysis()
    if isinstance(ca, (list, tuple)):  # a list of dicts in some jax versions
        ca = ca[0]
    return float(ca["flops"])


def _check(xla, ours):
    assert LOW <= xla / ours <= HIGH, f"XLA {xla:.4g} flops vs counted {ours:.4g} (ratio {xla / ours:.3f})"
    for wrong in (2.0 * ours, 0.5 * ours):  # the tolerance separates a 2x error
        assert not LOW <= xla / wrong <= HIGH


def _pt_network(width=WIDTH):
    apply_fn, params = modes.build_network(beyond.PT_EXTRA, width=width, seed=0)  # erf (1, 0.5), 2 hidden layers
    x = dynamics.centred_interval(N, beyond.PT_EXTRA_INTERVAL, eta=1 / 9, beta=0.0)
    return apply_fn, params, jnp.asarray(x)


def _step_fn(apply_fn, x, eta, beta):
    """One step of train.train_momentum's loop: train.trajectory's objective, kernel and optimiser."""
    opt = de_sitter_momentum(eta, beta)

    def objective(p):
        f = apply_fn(p, x)[:, 0]
        return LOSS.dataset(f), f

    return train.build_kernel(objective, opt), opt


def test_training_step_flops_match_xla():
    apply_fn, params, x = _pt_network()
    kernel, opt = _step_fn(apply_fn, x, 1 / 9, 0.0)
    state = train.init(params, optax.with_extra_args_support(opt))
    xla = _xla_flops(jax.jit(kernel).lower(state))
    _check(xla, sc.train_step(WIDTH, 2, N)[0])


def test_kernel_flops_match_xla():
    apply_fn, params, x = _pt_network()
    # the function ntk.empirical_ntk(apply_fn, params, x) runs for the package's MLPs (x2 = x1)
    xla = _xla_flops(ntk._structured_ntk_symmetric.lower(apply_fn, params, x))
    _check(xla, sc.kernel(WIDTH, 2, N)[0])


def test_iteration_step_flops_match_xla():
    n = 400  # the loss gradient's ~30 flops per point are 15 % of 2 N^2 at N = 100, 4 % at 400
    lowered = dynamics._iterate_jit.lower(jnp.asarray([1]), jnp.eye(n), jnp.ones(n), jnp.float64(1 / 9),
                                          jnp.float64(0.0), LOSS)
    _check(_xla_flops(lowered), sc.iteration_step(n)[0])


def test_homogeneous_gradient_flops_match_xla():
    """bg-*: N = 1. XLA counts a contraction of length 1 (the weight gradients' outer products, the first
    layer's one input) as one multiply per entry, the rule as multiply + add; the step's momentum update
    (~4 flops per weight, as large as the matmuls at N = 1) is elementwise. Compared: value_and_grad."""
    width, L = 256, 2
    init_fn, apply_fn = beyond._mlp(width, L, "erf", 1.0, 0.05)  # the background network (beyond.ARCH)
    params = init_fn(jax.random.PRNGKey(0), 1)
    x = jnp.ones((1, 1))

    def objective(p):
        f = apply_fn(p, x)[:, 0]
        return LOSS.dataset(f), f

    xla = _xla_flops(jax.jit(jax.value_and_grad(objective, has_aux=True)).lower(params))
    shapes = rl.layer_shapes(width, L)
    once = sum(fi * fo for fi, fo in shapes) + shapes[0][1]  # the length-1 contractions, counted once by XLA
    _check(xla, sc.train_step(width, L, 1)[0] - once)


# ------------------------------------------------------------------------------------------------
# the counters on the quick grids with synthetic results
# ------------------------------------------------------------------------------------------------
RATES = rl.FixedRates(83.5e9, 9.3e9)


def _nt(cls, **fields):
    return {"__namedtuple__": cls, "fields": fields}


def _eb_steps(c):
    return np.rint(c["steps_at_grid_eta"] * np.sqrt(c["grid_eta"]) / np.sqrt(np.asarray(c["etas"]))).astype(int)


def _result(c, diverged=False):
    name = c["scan"]
    if name == "pt-networks":
        n_int, n = len(c["intervals"]), c["n_points"]
        budget = None if not c["detail"] else _nt("nncosmo_helpers.experiments.error_budget:ErrorBudget",
                                                   kernel_final=beyond.encode(np.zeros((n, n))))
        return {"value": {"kernels": _nt("nncosmo_helpers.experiments.modes:NetworkKernels",
                                         kernels=beyond.encode(np.zeros((n_int, n, n)))),
                          "trained": [None] * len(c["train"]), "budget": budget, "lattice": None}}
    if name == "pt-error-budget":
        return {"value": _nt("nncosmo_helpers.experiments.error_budget:ErrorBudgetGrid",
                             steps=beyond.encode(_eb_steps(c)), widths=beyond.encode(np.array([c["width"]])))}
    if name == "bg-runs":
        if diverged:
            return {"value": _nt("nncosmo_helpers.scans.background:DivergedRun", step=3)}
        return {"value": _nt("nncosmo_helpers.experiments.background:BackgroundComparison", alpha_final=1.0)}
    if name == "bg-lag":
        return {"value": None}
    runs = [_nt("nncosmo_helpers.train:TrainResult", diverged=d, ntk_final=None if d else beyond.encode(np.ones((1, 1))))
            for d in [False] * (len(c["factors"]) - 1) + [True]]
    return {"value": {"limit": None, "runs": runs}}


def _groups(name):
    key = scans.group_key(name)
    groups = {}
    for i, c in enumerate(beyond.grid(name, "quick")):
        groups.setdefault(repr(key(c)), []).append((float(i), c, _result(c)))
    return list(groups.values())


@pytest.mark.parametrize("name", list(sc.COUNTERS))
def test_counters_run_on_quick_grids(name):
    total = 0.0
    for g in _groups(name):
        f, b, roof, ended = sc.COUNTERS[name](g, RATES)
        assert f >= 0 and b >= 0 and roof >= max(f / 83.5e9, b / 9.3e9) * (1 - 1e-12)
        total += f
    assert (total == 0.0) == (name == "bg-lag")


def test_pt_counts_by_hand():
    K = lambda w, L, n: rl.kernel_counts(w, L, n, 1)[0]  # noqa: E731
    S = lambda w, L, n: rl.train_counts(w, L, n, 1, "float64", "dense", kernel_every_step=False)[0]  # noqa: E731
    for g in _groups("pt-networks"):
        (_, c, r), = g
        w, L, n, steps = c["width"], c["hidden_layers"], c["n_points"], c["steps"]
        want = len(c["intervals"]) * K(w, L, n) + len(c["train"]) * steps * S(w, L, n)
        if c["detail"]:
            want += 2 * K(w, L, n) + steps * 2 * n * n
        assert sc.pt_networks(g, RATES)[0] == pytest.approx(want, rel=1e-12)
    for g in _groups("pt-error-budget"):
        (_, c, r), = g
        w, L, n, steps, seeds = c["width"], c["hidden_layers"], c["n_points"], _eb_steps(c), len(c["seeds"])
        assert c["batched"]  # quick: every run for the longest run's steps, one kernel per seed
        want = seeds * (len(steps) * steps.max() * S(w, L, n) + K(w, L, n) + steps.sum() * 2 * n * n)
        assert sc.pt_error_budget(g, RATES)[0] == pytest.approx(want, rel=1e-12)
        unbatched = [(t, dict(c, batched=False), r) for t, c, r in g]
        want = seeds * (steps.sum() * S(w, L, n) + 2 * len(steps) * K(w, L, n) + steps.sum() * 2 * n * n)
        assert sc.pt_error_budget(unbatched, RATES)[0] == pytest.approx(want, rel=1e-12)


def test_bg_counts_by_hand():
    g = _groups("bg-runs")[0]
    c = g[0][1]
    K1 = rl.kernel_counts(c["width"], c["hidden_layers"], 1, 1)[0]
    S1 = rl.train_counts(c["width"], c["hidden_layers"], 1, 1, "float64", "dense", kernel_every_step=False)[0]
    assert sc.bg_runs(g, RATES)[0] == pytest.approx(len(g) * (c["steps"] * S1 + 2 * K1), rel=1e-12)
    diverged = [(t, c, _result(c, diverged=True)) for t, c, _ in g]
    assert sc.bg_runs(diverged, RATES)[0] == pytest.approx(len(g) * (c["steps"] * S1 + K1), rel=1e-12)
    (g,) = _groups("bg-limit")
    c = g[0][1]
    nf = len(c["factors"])  # alpha, then per factor its run, initial kernel and (all but the diverged last) final one
    assert sc.bg_limit(g, RATES)[0] == pytest.approx(K1 + nf * (c["steps"] * S1 + K1) + (nf - 1) * K1, rel=1e-12)
    assert sc.bg_limit(g, RATES)[3] == {"converged": nf - 1, "diverged": 1}


def test_missing_size_fails_loudly():
    g = _groups("pt-networks")[0]
    bad = [(t, {k: v for k, v in c.items() if k != "n_points"}, r) for t, c, r in g]
    with pytest.raises(KeyError):
        sc.pt_networks(bad, RATES)
    g = _groups("bg-runs")[0]
    with pytest.raises(KeyError):
        sc.bg_runs([(t, {k: v for k, v in c.items() if k != "steps"}, r) for t, c, r in g], RATES)
