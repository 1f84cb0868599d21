"""Divergence of momentum GD is detected, located and explained (train.train_momentum).

Linear stability of heavy-ball GD on a quadratic loss: each NTK eigen-direction evolves as
x_{i+1} = x_i + beta (x_i - x_{i-1}) - h x_i with h = eta L'' lambda / N, stable iff h < 2 (1 + beta).
The learning rates below are set from an independently computed lambda_max so that the stability
ratio eta L'' lambda_max / N / (2 (1 + beta)) is 1.5 (unstable) or 0.9 (stable). The first bad step
is cross-checked against independent loops:

* a model with no hidden layer is exactly linear in its parameters, so eq. 2 in function space,
  f_{i+1} = f_i + beta (f_i - f_{i-1}) - eta K L'(f_i)/N with the closed-form kernel
  K = W_std^2 x x^T / d + b_std^2, is exact; it is iterated in plain numpy;
* for an erf network, eq. 2 is iterated on the parameters with jax.grad (no optax).
"""

from __future__ import annotations

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import pytest

from nncosmo_helpers import train
from nncosmo_helpers.loss import PolynomialLoss
from nncosmo_helpers.network import mlp

W_STD, B_STD = 1.0, 0.5
LOSS = PolynomialLoss(0.7, 1.0, 2)  # L'' = m^2
X = np.array([[0.3, -0.2, 0.5], [1.0, 0.4, -0.6], [-0.7, 0.9, 0.1], [0.2, 0.2, 0.2]])
N, D = X.shape


def _eta_for(ratio, beta, lam_max):
    return ratio * 2.0 * (1.0 + beta) * N / (LOSS.m**2 * lam_max)


def _bound(f_init):
    return train.DIVERGENCE_FACTOR * (1.0 + abs(LOSS.f0) + np.max(np.abs(f_init)))


def _first_bad(fs, bound):
    bad = [k for k, f in enumerate(fs) if not (np.all(np.isfinite(f)) and np.all(np.abs(f) < bound))]
    return bad[0] if bad else None


# --- exactly linear model -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def linear_model():
    init, apply = mlp(width=1, hidden_layers=0, activation="erf", W_std=W_STD, b_std=B_STD)
    params = init(jax.random.PRNGKey(3), D)
    kernel = W_STD**2 * X @ X.T / D + B_STD**2  # closed form for f = W_std/sqrt(d) x.W + b_std b
    lam_max = np.linalg.eigvalsh(kernel)[-1]
    f_init = np.asarray(apply(params, X)[:, 0])
    return apply, params, kernel, lam_max, f_init


def _numpy_function_space(kernel, f_init, eta, beta, steps):
    f_prev, f = f_init.copy(), f_init.copy()
    out = [f.copy()]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            grad = LOSS.m**2 * (f - LOSS.f0) / N  # L'(f)/N for n = 2
            f, f_prev = f + beta * (f - f_prev) - eta * kernel @ grad, f
            out.append(f.copy())
    return np.array(out)


@pytest.mark.parametrize("beta", [0.0, 0.3, 0.9])
def test_above_bound_raises_at_the_right_step(linear_model, beta):
    apply, params, kernel, lam_max, f_init = linear_model
    eta = _eta_for(1.5, beta, lam_max)
    ref = _numpy_function_space(kernel, f_init, eta, beta, 400)
    expected_step = _first_bad(ref, _bound(f_init))
    assert expected_step is not None and expected_step > 2  # the reference itself diverges, not at once
    with pytest.raises(train.TrainingDiverged) as info:
        train.train_momentum(apply, params, X, eta=eta, beta=beta, loss=LOSS, steps=400)
    assert info.value.step == expected_step
    assert info.value.stability_ratio > 1
    np.testing.assert_allclose(info.value.stability_ratio, 1.5, rtol=1e-9)
    msg = str(info.value)
    assert f"step {expected_step}" in msg and "2(1+beta)" in msg and "1.5" in msg


def test_below_bound_is_stable(linear_model):
    apply, params, kernel, lam_max, f_init = linear_model
    beta = 0.3
    eta = _eta_for(0.9, beta, lam_max)
    res = train.train_momentum(apply, params, X, eta=eta, beta=beta, loss=LOSS, steps=400)
    assert not res.diverged and res.divergence_step is None
    np.testing.assert_allclose(res.stability_ratio, 0.9, rtol=1e-9)
    f = np.asarray(res.f)
    ref = _numpy_function_space(kernel, f_init, eta, beta, 400)
    np.testing.assert_allclose(f, ref, rtol=1e-9, atol=1e-9)  # same iteration, run independently
    assert float(res.loss[-1]) < 1e-6 * float(res.loss[0])  # it converges


def test_report_returns_finite_part_only(linear_model):
    apply, params, kernel, lam_max, f_init = linear_model
    beta = 0.3
    eta = _eta_for(1.5, beta, lam_max)
    ref = _numpy_function_space(kernel, f_init, eta, beta, 400)
    expected_step = _first_bad(ref, _bound(f_init))
    res = train.train_momentum(apply, params, X, eta=eta, beta=beta, loss=LOSS, steps=400, on_divergence="report")
    assert res.diverged and res.divergence_step == expected_step
    assert res.stability_ratio > 1
    f, loss, steps = np.asarray(res.f), np.asarray(res.loss), np.asarray(res.steps)
    assert f.shape == (expected_step, N) and loss.shape == (expected_step,)
    assert np.all(np.isfinite(f)) and np.all(np.isfinite(loss))
    np.testing.assert_array_equal(steps, np.arange(expected_step))
    np.testing.assert_allclose(f, ref[:expected_step], rtol=1e-9, atol=1e-9)


def test_record_every_does_not_coarsen_the_divergence_step(linear_model):
    """The loop checks every step, so the step is exact whatever record_every; the rows kept are the
    recorded ones strictly before it."""
    apply, params, kernel, lam_max, f_init = linear_model
    beta = 0.3
    eta = _eta_for(1.5, beta, lam_max)
    expected_step = _first_bad(_numpy_function_space(kernel, f_init, eta, beta, 400), _bound(f_init))
    assert expected_step % 5  # not on the recording grid, so a row-based check would be late
    with pytest.raises(train.TrainingDiverged) as info:
        train.train_momentum(apply, params, X, eta=eta, beta=beta, loss=LOSS, steps=400, record_every=5)
    assert info.value.step == expected_step
    res = train.train_momentum(apply, params, X, eta=eta, beta=beta, loss=LOSS, steps=400, record_every=5,
                               on_divergence="report")
    assert res.divergence_step == expected_step
    np.testing.assert_array_equal(np.asarray(res.steps), np.arange(0, expected_step, 5))


# --- non-linear erf network, against a hand-written eq.-2 loop ----------------------------------
def test_erf_network_against_own_eq2_loop():
    init, apply = mlp(width=64, hidden_layers=1, activation="erf", W_std=W_STD, b_std=B_STD)
    params = init(jax.random.PRNGKey(7), D)
    flat, unravel = ravel_pytree(params)
    jac = jax.jit(jax.jacrev(lambda p: apply(unravel(p), X)[:, 0]))(flat)  # (N, P), independent of ntk.py
    lam_max = np.linalg.eigvalsh(np.asarray(jac @ jac.T))[-1]
    beta = 0.5

    def loss_of(p):
        return jnp.mean(0.5 * LOSS.m**2 * (apply(unravel(p), X)[:, 0] - LOSS.f0) ** 2)

    grad = jax.jit(jax.grad(loss_of))
    fwd = jax.jit(lambda p: apply(unravel(p), X)[:, 0])

    def own_loop(eta, steps):
        prev = cur = np.asarray(flat)
        fs = [np.asarray(fwd(cur))]
        for _ in range(steps):  # eq. 2: theta_{i+1} = theta_i + beta (theta_i - theta_{i-1}) - eta grad L
            cur, prev = cur + beta * (cur - prev) - eta * np.asarray(grad(cur)), cur
            fs.append(np.asarray(fwd(cur)))
            if not np.all(np.isfinite(fs[-1])) or np.max(np.abs(fs[-1])) > 1e12:
                break
        return np.array(fs)

    f_init = np.asarray(fwd(flat))
    eta = _eta_for(1.5, beta, lam_max)
    expected_step = _first_bad(own_loop(eta, 200), _bound(f_init))
    assert expected_step is not None
    with pytest.raises(train.TrainingDiverged) as info:
        train.train_momentum(apply, params, X, eta=eta, beta=beta, loss=LOSS, steps=200)
    assert info.value.step == expected_step
    np.testing.assert_allclose(info.value.stability_ratio, 1.5, rtol=1e-8)

    eta = _eta_for(0.9, beta, lam_max)
    res = train.train_momentum(apply, params, X, eta=eta, beta=beta, loss=LOSS, steps=200)
    assert not res.diverged
    np.testing.assert_allclose(res.stability_ratio, 0.9, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(res.f), own_loop(eta, 200), rtol=1e-8, atol=1e-10)
