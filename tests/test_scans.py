"""Tests of the quantitative scans: the batched training engine, the store round trip, divergence
records, the command line and sharding across devices.

References are independent implementations: ``train.train_momentum`` (flax apply + jax.grad +
optax.sgd) for the batched engine, ``ntk.empirical_ntk`` (verified against neural-tangents) for the
batched kernels, ``dynamics.predict_homogeneous``/``iterate_linearized`` for the batched predictions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

from nncosmo_helpers import dynamics, ntk, scans, train
from nncosmo_helpers.loss import PolynomialLoss
from nncosmo_helpers.results import canonical_json
from nncosmo_helpers.scans import engine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (W_std, b_std, eta, beta, loss): the paper's optimisers, both initialisations, n = 2 and 4
# (two scale pairs only: every distinct pair costs train_momentum a compilation)
CASES = [
    (1.0, 0.5, 0.1111, 0.0, PolynomialLoss(0.1, 1.0, 2)),
    (0.1, 0.05, 0.0278, 0.5, PolynomialLoss(0.2, 10.0, 2)),
    (1.0, 0.5, 0.0011, 0.5, PolynomialLoss(0.1, 10.0, 4)),
    (0.1, 0.05, 0.4444, 0.0, PolynomialLoss(0.2, 1.0, 4)),
]
STEPS, EVERY = 200, 10


def _batched(arch, params, x, method, **kw):
    return engine.train_momentum_batched(
        arch, params, x, W_std=[c[0] for c in CASES], b_std=[c[1] for c in CASES], eta=[c[2] for c in CASES],
        beta=[c[3] for c in CASES], losses=[c[4] for c in CASES], steps=STEPS, record_every=EVERY, method=method, **kw)


@pytest.mark.parametrize("method,activation", [("dense", "erf"), ("lowrank", "relu")])
def test_batched_training_matches_train_momentum(method, activation):
    arch = engine.Arch(40, 3, activation)
    params = engine.raw_params(arch, 1)
    x = np.zeros((1, 1))
    out = _batched(arch, params, x, method, rank=16)
    assert out["method"][0] == method  # (a run whose basis overflows moves to a larger one, see below)
    for i, (ws, bs, eta, beta, loss) in enumerate(CASES):
        _, apply_fn = arch.mlp(ws, bs)
        ref = train.train_momentum(apply_fn, params, x, eta=eta, beta=beta, loss=loss, steps=STEPS, record_every=EVERY)
        f_ref = np.asarray(ref.f)[:, 0]
        move = np.max(np.abs(f_ref - f_ref[0]))
        assert move > 1e-6  # the runs do move, so the comparison is not trivial
        np.testing.assert_allclose(out["f"][i, :, 0], f_ref, rtol=0, atol=1e-12 * move + 1e-15)
        np.testing.assert_allclose(out["alpha"][i, 0], ref.alpha_initial, rtol=1e-12)
        np.testing.assert_allclose(out["alpha"][i, -1], ref.alpha_final, rtol=1e-12)
        assert out["divergence_step"][i] == -1


def test_lowrank_overflow_falls_back():
    """A basis too small for the run is detected, and the configuration continues in a larger one.

    With 3 directions the runs outgrow the basis part-way: each then runs on, from its state at the
    start of the segment in which it overflowed (converted exactly), with 4x the basis and, if that
    overflows too, densely. The result is the dense run's, to round-off."""
    arch = engine.Arch(24, 2, "relu")
    params = engine.raw_params(arch, 0)
    x = np.zeros((1, 1))
    small = _batched(arch, params, x, "lowrank", rank=3)
    dense = _batched(arch, params, x, "dense")
    assert {"lowrank4", "dense"} <= set(small["method"])  # both larger representations were used
    assert np.any(small["method_from_step"] > 0)  # ... from part-way through the run, not from the start
    assert np.all((small["rank"] > 3) == (small["method"] == "lowrank4")[:, None])
    assert np.all((small["rank"] == -1) == (small["method"] == "dense")[:, None])
    np.testing.assert_allclose(small["f"], dense["f"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(small["alpha"], dense["alpha"], rtol=1e-12)


def test_float32_training_matches_float32_network():
    arch = engine.Arch(30, 2, "erf", "float32")
    params = engine.raw_params(engine.Arch(30, 2, "erf"), 0)
    import nncosmo_helpers.network as network

    p32 = network.cast(params, jnp.float32)
    x = np.zeros((1, 1))
    out = _batched(arch, p32, x, "dense")
    assert out["f"].dtype == np.float32
    for i, (ws, bs, eta, beta, loss) in enumerate(CASES):
        _, apply_fn = arch.mlp(ws, bs)
        ref = train.train_momentum(apply_fn, p32, x, eta=eta, beta=beta, loss=loss, steps=STEPS, record_every=EVERY)
        f_ref = np.asarray(ref.f)[:, 0]
        np.testing.assert_allclose(out["f"][i, :, 0], f_ref, rtol=0, atol=2e-6 * (1 + np.max(np.abs(f_ref))))


def test_batched_kernels_match_empirical_ntk():
    arch = engine.Arch(50, 2, "relu")
    params = engine.raw_params(arch, 3)
    x = dynamics.centred_interval(7, 1.0, eta=0.1111, beta=0.0)
    ws, bs = [1.0, 0.1, 1.0], [0.05, 0.01, 0.5]
    k = engine.ntk_batched(arch, params, x, W_std=ws, b_std=bs)
    for i in range(3):
        _, apply_fn = arch.mlp(ws[i], bs[i])
        np.testing.assert_allclose(k[i], np.asarray(ntk.empirical_ntk(apply_fn, params, x, implementation="jacobian")), rtol=1e-12)


def test_batched_predictions_match_dynamics():
    alpha, f_init = [0.3, 0.01, 1.0], [-0.1, 0.2, 0.0]
    eta, beta = [0.1111, 0.0011, 0.4444], [0.0, 0.5, 0.0]
    losses = [PolynomialLoss(0.1, 1.0, 2), PolynomialLoss(0.2, 10.0, 4), PolynomialLoss(0.2, 1.0, 4)]
    steps = np.arange(0, 201, 20)
    kw = dict(kernels=np.asarray(alpha)[:, None, None], f_inits=np.asarray(f_init)[:, None], etas=eta, betas=beta,
              losses=losses, steps=steps)
    pred = dynamics.predict_linearized_batch(**kw)[:, :, 0]  # losses with different n in one vmapped call
    disc = dynamics.iterate_linearized_batch(**kw)[:, :, 0]
    for i in range(3):
        ref = dynamics.predict_homogeneous(alpha[i], f_init[i], eta=eta[i], beta=beta[i], loss=losses[i], steps=steps)
        np.testing.assert_allclose(pred[i], ref, rtol=0, atol=1e-9)
        ref = dynamics.iterate_linearized([[alpha[i]]], [f_init[i]], eta=eta[i], beta=beta[i], loss=losses[i], steps=steps)
        np.testing.assert_allclose(disc[i], np.asarray(ref)[:, 0], rtol=1e-13, atol=0)


def _tiny_fig3(eta_beta):
    return [
        scans._cfg(3, width=16, hidden_layers=1, activation="erf", W_std=1.0, b_std=0.5, eta=eta, beta=beta,
                   m=1.0, f0=1.0, n=2, seed=0, steps=60, dtype="float64")
        for eta, beta in eta_beta
    ]


def test_store_round_trip_and_reuse(tmp_path, monkeypatch):
    configs = _tiny_fig3([(0.1111, 0.0), (0.0278, 0.5)])
    calls = []
    original = scans.COMPUTE[3]
    monkeypatch.setitem(scans.COMPUTE, 3, lambda cs, **kw: calls.append(len(cs)) or original(cs, **kw))
    first = scans.run(3, "quick", tmp_path, configs=configs, progress=False)
    assert calls == [2]  # one group, computed once
    assert len(list((tmp_path / "quick" / "fig3").glob("*.json"))) == 2
    again = scans.run(3, "quick", tmp_path, configs=configs, progress=False)
    assert calls == [2]  # nothing recomputed
    assert again == first
    assert first[0]["f_end"] != first[0]["f_init"] and not first[0]["diverged"]


def test_diverged_config_is_recorded_and_the_scan_goes_on(tmp_path):
    arch = engine.Arch(16, 1, "erf")
    _, apply_fn = arch.mlp(1.0, 0.5)
    params = engine.raw_params(arch, 0)
    alpha = float(ntk.alpha(apply_fn, params))
    # linear stability of momentum GD needs eta L'' alpha < 2 (1 + beta), with L'' = m^2 = 1 here;
    # eta = 3/alpha is 1.5 times the bound (at 0.75 times it the run converges)
    eta_bad = 3.0 / alpha
    configs = _tiny_fig3([(eta_bad, 0.0), (0.1111, 0.0)])
    bad, good = scans.run(3, "quick", tmp_path, configs=configs, progress=False)
    assert bad["diverged"] is True and bad["stability_ratio"] == pytest.approx(1.5, rel=1e-9)
    ref = train.train_momentum(apply_fn, params, np.zeros((1, 1)), eta=eta_bad, beta=0.0,
                               loss=PolynomialLoss(1.0, 1.0, 2), steps=60, on_divergence="report")
    assert ref.diverged and bad["divergence_step"] == ref.divergence_step > 0
    assert good["diverged"] is False and np.isfinite(good["f_end"])


def test_grids_and_profiles():
    for fig in scans.FIGS:
        quick, paper = scans.grid(fig, "quick"), scans.grid(fig, "paper")
        assert quick and {canonical_json(c) for c in quick} <= {canonical_json(c) for c in paper}
    f3 = scans.grid(3, "paper")
    assert sum(c["dtype"] == "float64" and c["x0"] == 0 and c["seed"] == 0 for c in f3) == 3 * 2 * 2 * 2 * 5 * 12  # footnote 5, all 12 losses
    with pytest.raises(ValueError, match="profile"):
        scans.grid(1, "bogus")
    with pytest.raises(ValueError, match="fig"):
        scans.grid(6, "quick")


def test_cli_rejects_unknown_profile():
    proc = subprocess.run([sys.executable, "-m", "nncosmo_helpers.scans", "--profile", "bogus"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "profile must be one of" in proc.stderr


def test_sharded_configs_match_unsharded():
    script = textwrap.dedent("""
        import numpy as np, jax
        jax.config.update("jax_enable_x64", True)
        from nncosmo_helpers.loss import PolynomialLoss
        from nncosmo_helpers.scans import engine as E
        assert len(jax.devices()) == 4
        arch = E.Arch(32, 2, "erf"); p = E.raw_params(arch, 0); x = np.zeros((1, 1))
        kw = dict(W_std=[1., .1, 1., .1, 1., .1], b_std=[.05] * 6, eta=[.1111, .4444, .0011, .0278, .1111, .1111],
                  beta=[0, 0, .5, .5, .5, 0], losses=[PolynomialLoss(.1, 1., 2), PolynomialLoss(.2, 10., 4)] * 3,
                  steps=60, record_every=10)
        sh = E.config_sharding()
        assert sh is not None
        for meth in ("dense", "lowrank"):
            a = E.train_momentum_batched(arch, p, x, method=meth, rank=16, **kw)
            b = E.train_momentum_batched(arch, p, x, method=meth, rank=16, sharding=sh, **kw)
            print(meth, float(np.max(np.abs(a["f"] - b["f"]))), bool(np.array_equal(a["f"], b["f"])))
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = dict((ln.split()[0], ln.split()[1:]) for ln in proc.stdout.strip().splitlines())
    # dense: bit-for-bit identical. low rank: the shared W0 product has 6 rows unsharded but 2 per
    # device sharded, which changes the BLAS blocking, so the last bit may differ
    assert lines["dense"][1] == "True"
    assert float(lines["lowrank"][0]) < 1e-14


def test_fig5_record_carries_the_mean_field_comparison():
    """Appendix B (Fig. 6) reads the mean-field comparison from the stored Fig. 5 record; it must equal
    the comparison of an independent train_momentum run of the same network."""
    c = scans._cfg(5, width=16, hidden_layers=1, activation="erf", W_std=1.0, b_std=0.05, interval=1.0,
                   eta=0.1111, beta=0.0, n_points=8, m=0.2, f0=1.0, n=2, seed=0, steps=100, record_every=10)
    (rec,) = scans.compute(5, [c])
    assert rec["diverged"] is False
    stored = dynamics.MeanFieldComparison.from_dict(json.loads(json.dumps(rec["mean_field"])))
    arch = engine.Arch(16, 1, "erf")
    _, apply_fn = arch.mlp(1.0, 0.05)
    loss = PolynomialLoss(0.2, 1.0, 2)
    run = train.train_momentum(apply_fn, engine.raw_params(arch, 0), dynamics.centred_interval(8, 1.0, eta=0.1111, beta=0.0),
                               eta=0.1111, beta=0.0, loss=loss, steps=100, record_every=10)
    ref = dynamics.compare_mean_field(run.ntk_initial, run.f, run.steps, eta=0.1111, beta=0.0, loss=loss)
    assert stored.excursion > 0
    for name in ("lambda1/N", "mean Theta", "mean diag Theta", "linearized"):
        assert stored.end_error(name) == pytest.approx(ref.end_error(name), rel=1e-6, abs=1e-12)
    assert stored.uniform_overlap == pytest.approx(ref.uniform_overlap, rel=1e-9)
    assert stored.eq15_end_error == pytest.approx(ref.eq15_end_error, rel=1e-6, abs=1e-12)  # eq15 reused from fig 5
