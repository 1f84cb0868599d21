"""Tests of the optimisers (nncosmo_helpers.optimizers), their dictionary and continuum limit: update rules against hand-computed steps, closed forms, limits.

Reference numbers are computed by hand (written out below, step by step) or come from closed-form
solutions (Bessel functions) and convergence studies, never from the code under test.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.special import gamma as gamma_fn
from scipy.special import jv

from nncosmo_helpers import loss as L
from nncosmo_helpers import cosmology, dynamics, optimizers, train
from nncosmo_helpers.experiments import precision, schedules

LAMBDA = 2.0  # curvature of the toy loss L(theta) = LAMBDA/2 theta^2


def run(opt, theta0, n, *, with_value=False):
    """Apply ``opt`` n times to L = LAMBDA/2 theta^2 from theta0; return the parameter sequence."""
    params = {"theta": jnp.asarray(theta0, jnp.float64)}
    state = opt.init(params)
    out = [float(params["theta"])]
    for _ in range(n):
        g = {"theta": LAMBDA * params["theta"]}
        kw = {"value": 0.5 * LAMBDA * params["theta"] ** 2} if with_value else {}
        updates, state = opt.update(g, state, params, **kw)
        params = optax.apply_updates(params, updates)
        out.append(float(params["theta"]))
    return np.array(out), state


# --------------------------------------------------------------------------- schedules
def test_power_law_beta_values_and_clip():
    # t0 = 0, p = 2/3: beta_i = max(0, 1 - 2/i): i=0 -> 0 (t = 0), 1 -> clip(-1) = 0, 2 -> 0, 3 -> 1/3, 4 -> 1/2
    got = np.asarray(optimizers.power_law_beta(np.arange(5), p=2 / 3, eta=0.3))
    np.testing.assert_allclose(got, [0.0, 0.0, 0.0, 1 / 3, 1 / 2], atol=1e-15)
    # independent of eta when t0 = 0
    np.testing.assert_allclose(np.asarray(optimizers.power_law_beta(np.arange(5), p=2 / 3, eta=1e-4)), got, atol=1e-14)
    # p = 1, t0 = 2 sqrt(eta): beta_i = (i - 1)/(i + 2), Nesterov's sequence (i = 0 would be -1/2, clipped)
    eta = 0.01
    got = np.asarray(optimizers.power_law_beta(np.arange(5), p=1.0, eta=eta, t0=2 * math.sqrt(eta)))
    np.testing.assert_allclose(got, [0.0, 0.0, 1 / 4, 2 / 5, 1 / 2], atol=1e-14)


def test_equation_of_state_dictionary():
    assert cosmology.equation_of_state(2 / 3) == pytest.approx(0.0)
    assert cosmology.equation_of_state(1 / 2) == pytest.approx(1 / 3)
    assert cosmology.equation_of_state(1 / 3) == pytest.approx(1.0)
    assert cosmology.equation_of_state(1.0) == pytest.approx(-1 / 3)
    assert cosmology.power_law_exponent(1 / 3) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="p"):
        cosmology.equation_of_state(0.0)


def test_power_law_momentum_hand_steps():
    # eta = 0.1, p = 1/2: beta_i = max(0, 1 - 1.5/i) = 0, 0, 0.25, 0.5 for i = 0..3; g = 2 theta
    # theta1 = 1 - 0.2                            = 0.8
    # theta2 = 0.8 + 0 * (-0.2) - 0.2 * 0.8          = 0.64      (beta_1 clipped from -0.5 to 0)
    # theta3 = 0.64 + 0.25 * (-0.16) - 0.2 * 0.64    = 0.472
    # theta4 = 0.472 + 0.5 * (-0.168) - 0.2 * 0.472  = 0.2936
    thetas, state = run(optimizers.power_law_momentum(0.1, 0.5), 1.0, 4)
    np.testing.assert_allclose(thetas, [1.0, 0.8, 0.64, 0.472, 0.2936], rtol=1e-14)
    assert int(state.count) == 4


def test_power_law_momentum_with_t0():
    # eta = 0.04 (sqrt = 0.2), p = 1, t0 = 0.6: beta_i = 1 - 0.6/(0.6 + 0.2 i) = 0, 0.25, 0.4 for i = 0..2
    # theta1 = 1 - 0.08 = 0.92; theta2 = 0.92 + 0.25 (-0.08) - 0.08 * 0.92 = 0.8264
    # theta3 = 0.8264 + 0.4 (0.8264 - 0.92) - 0.08 * 0.8264 = 0.72293...
    thetas, _ = run(optimizers.power_law_momentum(0.04, 1.0, t0=0.6), 1.0, 3)
    t3 = 0.8264 + 0.4 * (0.8264 - 0.92) - 0.08 * 0.8264
    np.testing.assert_allclose(thetas, [1.0, 0.92, 0.8264, t3], rtol=1e-14)


def test_hubble_momentum_constant_is_de_sitter():
    eta, beta = 0.05, 0.7
    h = (1 - beta) / (3 * math.sqrt(eta))
    a, _ = run(optimizers.hubble_momentum(eta, lambda t: h + 0 * t), 0.3, 6)
    b, _ = run(optax.sgd(eta, momentum=beta), 0.3, 6)
    np.testing.assert_allclose(a, b, rtol=1e-13)


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_de_sitter_equals_optax_sgd_bitwise(dtype):
    key = jax.random.PRNGKey(3)
    k1, k2, k3 = jax.random.split(key, 3)
    params = {"a": jax.random.normal(k1, (3, 4), dtype), "b": jax.random.normal(k2, (5,), dtype)}
    target = {"a": jax.random.normal(k3, (3, 4), dtype), "b": jnp.ones(5, dtype)}
    grad = jax.grad(lambda p: sum(jnp.sum((p[k] - target[k]) ** 4) for k in p))
    # the scheduled trace form with a constant momentum reproduces optax.sgd (= de_sitter_momentum) bit for bit
    ours, ref = optimizers.scheduled_momentum(0.01, lambda i: 0.9), optimizers.de_sitter_momentum(0.01, 0.9)
    p1, p2, s1, s2 = params, params, ours.init(params), ref.init(params)
    for _ in range(10):
        u1, s1 = ours.update(grad(p1), s1, p1)
        u2, s2 = ref.update(grad(p2), s2, p2)
        p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
    for k in params:
        assert p1[k].dtype == dtype
        np.testing.assert_array_equal(np.asarray(p1[k]), np.asarray(p2[k]))


def test_validation_of_hyperparameters():
    with pytest.raises(ValueError, match="beta"):
        optimizers.de_sitter_momentum(0.1, 1.0)
    with pytest.raises(ValueError, match="eta"):
        optimizers.power_law_momentum(0.0, 0.5)
    with pytest.raises(ValueError, match="t0"):
        optimizers.power_law_momentum(0.1, 0.5, t0=-1.0)
    with pytest.raises(ValueError, match="v0"):
        optimizers.friedmann_momentum(0.1, v0=-1.0)


# --------------------------------------------------------------------------- Nesterov
def test_nesterov_hand_steps():
    # eta = 0.1, g = 2 y, x0 = y0 = 1, beta_k = (k - 1)/(k + 2)
    # k=1: x1 = 1 - 0.2 = 0.8;          y1 = 0.8 + 0 * (0.8 - 1)       = 0.8
    # k=2: x2 = 0.8 - 0.16 = 0.64;      y2 = 0.64 + 1/4 (0.64 - 0.8)  = 0.6
    # k=3: x3 = 0.6 - 0.12 = 0.48;      y3 = 0.48 + 2/5 (0.48 - 0.64) = 0.416
    # k=4: x4 = 0.416 - 0.0832 = 0.3328; y4 = 0.3328 + 1/2 (0.3328 - 0.48) = 0.2592
    ys, _ = run(optimizers.nesterov_momentum(0.1), 1.0, 4)
    np.testing.assert_allclose(ys, [1.0, 0.8, 0.6, 0.416, 0.2592], rtol=1e-14)


def test_optax_nesterov_is_not_the_k_schedule():
    # optax's nesterov=True keeps a constant momentum; for no constant beta does it match (k-1)/(k+2).
    ys, _ = run(optimizers.nesterov_momentum(0.1), 1.0, 6)
    for beta in (0.25, 0.5, 0.9):
        zs, _ = run(optax.sgd(0.1, momentum=beta, nesterov=True), 1.0, 6)
        assert np.max(np.abs(ys - zs)) > 1e-3


# --------------------------------------------------------------------------- Friedmann optimiser
def test_friedmann_hand_steps():
    # eta = 0.01, v0 = 0, L = theta^2 (LAMBDA = 2), theta0 = 1.
    # step 0: trace 0, rho = L = 1, H = sqrt(1/3); m0 = g = 2; theta1 = 1 - 0.02 = 0.98
    # step 1: kinetic = |theta1 - theta0|^2/(2 eta) = 0.0004/0.02 = 0.02, L = 0.9604, rho = 0.9804,
    #         H = sqrt(0.9804/3), beta = 1 - 3 H 0.1, m1 = 1.96 + beta * 2, theta2 = 0.98 - 0.01 m1
    eta = 0.01
    thetas, state = run(optimizers.friedmann_momentum(eta), 1.0, 2, with_value=True)
    h1 = math.sqrt(0.9804 / 3)
    beta1 = 1 - 3 * h1 * 0.1
    theta2 = 0.98 - 0.01 * (1.96 + beta1 * 2)
    np.testing.assert_allclose(thetas, [1.0, 0.98, theta2], rtol=1e-14)
    assert float(state.hubble) == pytest.approx(h1, rel=1e-14)
    # step 2 by hand as well: the Hubble rate uses the previous update (theta2 - theta1)
    thetas3, state3 = run(optimizers.friedmann_momentum(eta), 1.0, 3, with_value=True)
    kin2 = (theta2 - 0.98) ** 2 / (2 * eta)
    h2 = math.sqrt((kin2 + theta2**2) / 3)
    m1 = 1.96 + beta1 * 2
    m2 = 2 * theta2 + (1 - 0.3 * h2) * m1
    np.testing.assert_allclose(thetas3[-1], theta2 - eta * m2, rtol=1e-14)
    assert float(state3.hubble) == pytest.approx(h2, rel=1e-14)


def test_friedmann_vacuum_limit_and_clip():
    eta, v0 = 0.04, 0.75
    opt = optimizers.friedmann_momentum(eta, v0=v0)
    params = {"w": jnp.zeros(2)}
    s = opt.init(params)
    g = {"w": jnp.array([1.0, -1.0])}
    # at L = 0 and rest: H = sqrt(v0/3) = 0.5
    u, s = opt.update(g, s, params, value=0.0)
    assert float(s.hubble) == pytest.approx(0.5, rel=1e-14)
    # next step: kinetic = eta |m|^2/2 = 0.04 * 2/2 = 0.04, H = sqrt((0.04 + 0.75)/3), beta = 1 - 0.6 H
    u, s = opt.update(g, s, params, value=0.0)
    h = math.sqrt(0.79 / 3)
    np.testing.assert_allclose(np.asarray(u["w"]), -eta * (1 + (1 - 0.6 * h)) * np.array([1.0, -1.0]), rtol=1e-14)
    # huge energy: beta is clipped at 0, the update is plain gradient descent
    s_big = s._replace(trace={"w": jnp.array([3.0, 4.0])})
    u, _ = opt.update(g, s_big, params, value=1e6)
    np.testing.assert_allclose(np.asarray(u["w"]), -eta * np.array([1.0, -1.0]), rtol=1e-14)


def test_friedmann_requires_value():
    opt = optimizers.friedmann_momentum(0.1)
    params = {"w": jnp.zeros(1)}
    with pytest.raises(TypeError):
        opt.update(params, opt.init(params), params)


# --------------------------------------------------------------------------- continuum predictions
@pytest.mark.parametrize("p", [1 / 3, 1 / 2, 2 / 3, 1.0])
def test_power_law_prediction_matches_bessel(p):
    # f'' + (3p/t) f' + w^2 (f - f0) = 0 from rest: f - f0 = (fi - f0) Gamma(nu+1) (2/(w t))^nu J_nu(w t),
    # nu = (3p - 1)/2. alpha L' = alpha m^2 (f - f0), so w^2 = alpha m^2.
    alpha, m, f0, fi, eta = 1.7, 0.3, 1.0, -0.4, 0.01
    loss = L.PolynomialLoss(m, f0, 2)
    steps = np.array([0, 50, 200, 500, 1000])
    got = np.asarray(dynamics.predict_hubble(alpha, fi, eta=eta, loss=loss, steps=steps, kind="power_law", p=p))
    w, nu = math.sqrt(alpha) * m, (3 * p - 1) / 2
    t = steps * math.sqrt(eta)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = f0 + (fi - f0) * np.where(t > 0, gamma_fn(nu + 1) * (2 / (w * t)) ** nu * jv(nu, w * t), 1.0)
    np.testing.assert_allclose(got, ref, atol=1e-8)


def test_de_sitter_prediction_closed_form():
    # overdamped-free check: f'' + g f' + w^2 (f - f0) = 0 from rest, underdamped closed form
    alpha, m, f0, fi, eta, beta = 1.0, 0.5, 1.0, 0.0, 0.01, 0.9
    loss = L.PolynomialLoss(m, f0, 2)
    steps = np.array([0, 100, 300])
    got = np.asarray(dynamics.predict_hubble(alpha, fi, eta=eta, loss=loss, steps=steps, kind="de_sitter", beta=beta))
    g, w = (1 - beta) / math.sqrt(eta), math.sqrt(alpha) * m
    wd = math.sqrt(w**2 - g**2 / 4)
    t = steps * math.sqrt(eta)
    ref = f0 + (fi - f0) * np.exp(-g * t / 2) * (np.cos(wd * t) + g / (2 * wd) * np.sin(wd * t))
    np.testing.assert_allclose(got, ref, atol=1e-9)


# a linear "network" f = w * x: its NTK at x is x^2 exactly, so alpha = x^2 for all times
def linear_apply(params, x):
    return params["w"] * x


def _discrete_minus_continuum(factory, hp, kind, kw, eta, T, x=1.3, loss=L.PolynomialLoss(0.5, 1.0, 2)):
    """max over the trajectory of |discrete - continuum| up to continuum time T."""
    steps = int(round(T / math.sqrt(eta)))
    params = {"w": jnp.array([[-0.2]])}
    res = train.train_optax(linear_apply, params, jnp.array([[x]]), optimizer=factory, hyperparams=dict(eta=eta, **hp),
                            loss=loss, steps=steps, compute_ntk=False)
    pred = dynamics.predict_hubble(x**2, float(res.f[0, 0]), eta=eta, loss=loss, steps=res.steps, kind=kind, **kw)
    return float(np.max(np.abs(np.asarray(res.f[:, 0]) - np.asarray(pred))))


@pytest.mark.parametrize(
    "factory,hp,kind,kw",
    [
        (optimizers.power_law_momentum, {"p": 2 / 3}, "power_law", {"p": 2 / 3}),
        (optimizers.friedmann_momentum, {"v0": 0.0}, "friedmann", {"v0": 0.0}),
        (optimizers.friedmann_momentum, {"v0": 0.5}, "friedmann", {"v0": 0.5}),
        (optimizers.power_law_momentum, {"p": 1.0}, "power_law", {"p": 1.0}),
        # Nesterov's (k-1)/(k+2) method has the coasting (p = 1) continuum limit of Su, Boyd & Candes
        (optimizers.nesterov_momentum, {}, "power_law", {"p": 1.0}),
    ],
)
def test_discrete_converges_to_continuum_first_order(factory, hp, kind, kw):
    # eq. 2 -> eq. 4 is first order in the step sqrt(eta): quartering eta should halve the error.
    errs = [_discrete_minus_continuum(factory, hp, kind, kw, eta, T=6.0) for eta in (4e-3, 1e-3, 2.5e-4)]
    slopes = np.diff(np.log(errs)) / np.diff(np.log([4e-3, 1e-3, 2.5e-4]))
    assert errs[-1] < 2e-2
    np.testing.assert_allclose(slopes, 0.5, atol=0.1)


def test_train_optax_de_sitter_equals_train_momentum():
    from nncosmo_helpers import network

    init_fn, apply_fn = network.mlp(width=16, hidden_layers=1, activation="erf", W_std=1.0, b_std=0.05)
    params = init_fn(jax.random.PRNGKey(0), 1)
    x = jnp.array([[0.3]])
    loss = L.PolynomialLoss(0.1, 1.0, 2)
    a = train.train_momentum(apply_fn, params, x, eta=0.1, beta=0.5, loss=loss, steps=40, compute_ntk=False)
    b = train.train_optax(apply_fn, params, x, optimizer=optimizers.de_sitter_momentum, hyperparams={"eta": 0.1, "beta": 0.5},
                          loss=loss, steps=40, compute_ntk=False)
    np.testing.assert_array_equal(np.asarray(a.f), np.asarray(b.f))


# --------------------------------------------------------------------------- Friedmann late times
@pytest.mark.parametrize("n", [2, 4])
def test_friedmann_late_time_law(n):
    # V0 = 0 and a minimum V ~ phi^n: averaging over oscillations (virial theorem) gives
    # rho = 3 p^2/t^2 and H t -> p = (n + 2)/(3n): matter (2/3) for n = 2, radiation (1/2) for n = 4.
    p = cosmology.late_time_exponent(n)
    assert p == pytest.approx({2: 2 / 3, 4: 1 / 2}[n])
    h = schedules.friedmann_history(linear_apply, {"w": jnp.array([[0.0]])}, jnp.array([[1.0]]), loss=L.PolynomialLoss(1.0, 1.0, n),
                                eta=0.01, steps=40000)
    late = h.t > 200.0
    assert np.mean((h.hubble * h.t)[late]) == pytest.approx(p, rel=0.02)
    assert np.mean((h.rho * h.t ** 2)[late]) == pytest.approx(3 * p**2, rel=0.04)
    # H never increases in the continuum (rho' = -3H theta'^2); the discrete energy wobbles by
    # O((omega sqrt(eta))^2) = O(1%) here (omega = 1, eta = 0.01), measured 0.5%
    assert np.all(np.diff(h.hubble[10:]) < 1e-2 * h.hubble[10:-1])


# --------------------------------------------------------------------------- float32 rounding model
def test_round_to_nearest_model_matches_float32():
    # theta = 1 in float32 has ulp 2^-23; an update of u ulps lands on round(u) ulps (ties aside)
    ulp = np.float32(2.0**-23)
    assert np.spacing(np.float32(1.0)) == ulp
    for u in (0.3, 0.49, 0.51, 0.75, 1.2, 1.6, 2.4):
        moved = (np.float32(1.0) + np.float32(u) * ulp) - np.float32(1.0)
        assert moved == np.round(u) * ulp
    # one parameter with eta_j = 1: u = eta/2. eta = 1.5 -> u = 0.75 -> moves 1/0.75 of its step
    eta_j, w = np.array([1.0]), np.array([1.0])
    np.testing.assert_allclose(precision.lost_kernel_fraction([0.5, 1.5, 2.0, 5.0], eta_j, w), [1.0, 1 - 1 / 0.75, 0.0, 1 - 2 / 2.5])
    np.testing.assert_allclose(precision.lost_kernel_fraction([0.5, 1.5], eta_j, w, rounding="threshold"), [1.0, 0.0])


def test_update_rounding_hand_values():
    # f = w x with w = 1.5, x = 2: df/dw = 2, alpha = 4; L = m^2/2 (f - f0)^2 with m = 1, f0 = 0: L' = f = 3,
    # g = L' df/dw = 6. ulp(1.5) in float32 = 2^-23, so eta_j = (1 - beta) 2^-23 / (2 * 6).
    eta_j, w = precision.update_rounding(linear_apply, {"w": jnp.array([[1.5]])}, jnp.array([[2.0]]),
                                     loss=L.PolynomialLoss(1.0, 0.0, 2), beta=0.5)
    np.testing.assert_allclose(eta_j, [0.5 * 2.0**-23 / 12.0], rtol=1e-12)
    np.testing.assert_allclose(w, [1.0])


def test_lost_kernel_fraction_in_blocks(monkeypatch):
    # the same hand values with a block of one learning rate at a time (the bounded-memory path)
    monkeypatch.setattr(precision, "_BLOCK_ELEMENTS", 1)
    eta_j, w = np.array([1.0, 4.0]), np.array([0.25, 0.75])
    # eta = 1.5: u = (0.75, 0.1875) -> moves (1/0.75, 0); eta = 8: u = (4, 1) -> moves (1, 1)
    np.testing.assert_allclose(precision.lost_kernel_fraction([1.5, 8.0], eta_j, w), [1 - 0.25 / 0.75, 0.0])


def test_rounding_prediction_per_beta_hand_values():
    # f = w x (w = 1.5, x = 2), L' = 3, g = 6, ulp(1.5) = 2^-23: eta_j = (1 - beta) 2^-23 / 12 for every beta;
    # the only parameter carries the whole kernel, so at eta < eta_j everything is lost, above 2 eta_j u >= 1
    base = 2.0**-23 / 12.0
    etas = np.array([0.1 * base, 10.0 * base])
    r = precision.rounding_prediction(linear_apply, {"w": jnp.array([[1.5]])}, jnp.array([[2.0]]),
                                      loss=L.PolynomialLoss(1.0, 0.0, 2), etas=etas, betas=[0.0, 0.5], width=1)
    # beta = 0: u = (0.05, 5) -> lost (1, 0); beta = 0.5: eta_j halves, u = (0.1, 10) -> lost (1, 0)
    np.testing.assert_allclose(r.lost, [[1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(r.frozen, [[1.0, 0.0], [1.0, 0.0]])


def test_crossing_interpolates_in_log_space():
    x = np.array([1.0, 10.0, 100.0])
    y = np.array([1.0, 0.1, 0.001])
    assert precision.crossing(x, y, 0.01) == pytest.approx(10.0 ** 1.5)
    assert np.isnan(precision.crossing(x, y, 1e-5))
    assert precision.crossing(x, y, 2.0) == 1.0
