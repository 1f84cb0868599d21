"""Comparison with neural-tangents 0.6.5 reference values (tests/data/nt_reference.json).

The JSON is produced by tools/nt_reference/generate.py in a separate environment (jax 0.4.23,
neural-tangents 0.6.5, float64); neural-tangents is never imported here.

* infinite-width NTKs of stax.serial(Dense, Erf/Relu, ..., Dense) against
  ``ntk.infinite_width_ntk``;
* NT's momentum-GD function-space ODE (``nt.predict.gradient_descent(..., momentum=beta)``)
  against ``dynamics.predict_linearized``. NT's time argument t is the step number i
  (its absolute time is sqrt(eta) t, its friction (1 - beta)/sqrt(eta), its initial velocity 0;
  see generate.py), so the stored step numbers are passed unchanged.
"""

import json
import pathlib

import numpy as np
import pytest

from nncosmo_helpers import dynamics, ntk
from nncosmo_helpers.loss import PolynomialLoss

DATA = json.loads((pathlib.Path(__file__).parent / "data" / "nt_reference.json").read_text())
RTOL = 1e-6


def _kernel_id(case):
    d = len(case["x"][0])
    return f"{case['activation']}-L{case['hidden_layers']}-W{case['W_std']}-b{case['b_std']}-d{d}"


def _dyn_id(case):
    lo = case["loss"]
    return f"eta{case['eta']:.4g}-beta{case['beta']}-m{lo['m']}-f0{lo['f0']}-n{lo['n']}-N{len(case['f_init'])}"


def test_reference_covers_the_requested_grid():
    ks = DATA["kernels"]
    combos = {(c["activation"], c["hidden_layers"], c["W_std"], c["b_std"]) for c in ks if len(c["x"][0]) == 1}
    assert len(combos) == 2 * 3 * 2 * 3
    assert any(len(c["x"][0]) == 3 for c in ks)
    dyn = {(round(c["eta"], 4), c["beta"], c["loss"]["n"], len(c["f_init"])) for c in DATA["dynamics"]}
    for eta, beta in ((0.1111, 0.0), (0.0278, 0.5), (0.4444, 0.0)):
        assert {(eta, beta, 2, 1), (eta, beta, 2, 5)} <= dyn
    assert any(n == 4 for _, _, n, _ in dyn)


@pytest.mark.parametrize("case", DATA["kernels"], ids=_kernel_id)
def test_infinite_width_ntk_matches_neural_tangents(case):
    x = np.asarray(case["x"])
    expected = np.asarray(case["ntk"])
    got = np.asarray(ntk.infinite_width_ntk(x, hidden_layers=case["hidden_layers"], activation=case["activation"],
                                            W_std=case["W_std"], b_std=case["b_std"]))
    assert got.shape == expected.shape
    # elementwise relative error, with a floor of 1e-6 of the kernel's scale for entries near zero
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=RTOL * np.abs(expected).max())


@pytest.mark.parametrize("case", DATA["dynamics"], ids=_dyn_id)
def test_predict_linearized_matches_neural_tangents_momentum_ode(case):
    expected = np.asarray(case["f"])
    lo = case["loss"]
    got = np.asarray(dynamics.predict_linearized(
        np.asarray(case["kernel"]), np.asarray(case["f_init"]), eta=case["eta"], beta=case["beta"],
        loss=PolynomialLoss(lo["m"], lo["f0"], lo["n"]), steps=np.asarray(case["steps"])))
    assert got.shape == expected.shape
    scale = np.abs(expected - expected[0]).max()
    assert scale > 0.1  # the trajectory really moves
    err = np.abs(got - expected).max()
    assert err <= RTOL * scale, f"max deviation {err:.3e} > {RTOL:g} x trajectory scale {scale:.3g}"
