"""compute_fig3 at the input point x0: the kernel and the training use x0, and the stored fraction
travelled is |f_end - f_init| / |f0 - f_init| of the record. References: ntk.alpha of the same
network at the same point, and train.train_momentum on it (the one training loop, not the batched engine)."""

import numpy as np
import pytest

from nncosmo_helpers import ntk, scans, train
from nncosmo_helpers.loss import PolynomialLoss
from nncosmo_helpers.scans import engine


def _cfg(x0):
    return scans._cfg(3, width=16, hidden_layers=1, activation="erf", W_std=1.0, b_std=0.05, eta=0.1111, beta=0.0,
                      m=0.2, f0=1.0, n=2, seed=0, steps=60, dtype="float64", x0=x0)


def test_compute_fig3_uses_x0():
    configs = [_cfg(0.0), _cfg(1.0)]
    r0, r1 = scans.compute(3, configs)
    arch = engine.Arch(16, 1, "erf")
    _, apply_fn = arch.mlp(1.0, 0.05)
    params = engine.raw_params(arch, 0)
    for x0, r in ((0.0, r0), (1.0, r1)):
        x = np.full((1, 1), x0)
        assert r["alpha_initial"] == pytest.approx(float(ntk.alpha(apply_fn, params, x)), rel=1e-10)
        ref = train.train_momentum(apply_fn, params, x, eta=0.1111, beta=0.0, loss=PolynomialLoss(0.2, 1.0, 2), steps=60)
        f = np.asarray(ref.f).reshape(-1)
        assert r["f_init"] == pytest.approx(f[0], rel=1e-10) and r["f_end"] == pytest.approx(f[-1], rel=1e-9)
        assert r["fraction_travelled"] == pytest.approx(abs(f[-1] - f[0]) / abs(1.0 - f[0]), rel=1e-9)
    assert r1["alpha_initial"] > 10 * r0["alpha_initial"]  # the input term at x0 = 1 (W_std = 1)
