"""Core physics of the package against independent references.

Every reference here is computed by a path that does not go through the code under test: an explicit
Jacobian built with ``jax.jacrev`` on the flattened parameters, the closed-form infinite-width
kernel with a statistical tolerance, an ODE integrated by diffrax from the update rule's continuum
limit, closed forms, ``jax.grad``, or a hand-written loop of eq. 2.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from nncosmo_helpers import cosmology, dynamics, network, ntk, train
from nncosmo_helpers.loss import PolynomialLoss

X4 = jnp.array([[1.0, 0.0], [0.6, 0.8], [-0.5, 0.3], [0.0, -1.2]])


def explicit_ntk(apply_fn, params, x1, x2):
    """J(x1) J(x2)^T with J the Jacobian of the outputs w.r.t. the flattened parameter vector."""
    flat, unravel = ravel_pytree(params)

    def outputs(x):
        return lambda p: apply_fn(unravel(p), x)[:, 0]

    j1 = jax.jacrev(outputs(x1))(flat)
    j2 = jax.jacrev(outputs(x2))(flat)
    return np.asarray(j1) @ np.asarray(j2).T


# ---------------------------------------------------------------------------------------------
# empirical NTK
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("activation,hidden_layers", [("erf", 1), ("relu", 3)])
def test_empirical_ntk_equals_explicit_jacobian_product(activation, hidden_layers):
    init_fn, apply_fn = network.mlp(width=24, hidden_layers=hidden_layers, activation=activation, W_std=1.3, b_std=0.2)
    params = init_fn(jax.random.PRNGKey(3), 2)
    x2 = jnp.array([[0.3, -0.7], [2.0, 0.1], [-1.0, -1.0]])
    for impl in ("auto", "jacobian"):
        got = np.asarray(ntk.empirical_ntk(apply_fn, params, X4, x2, implementation=impl))
        want = explicit_ntk(apply_fn, params, X4, x2)
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12 * np.abs(want).max())
    # the symmetric case and alpha (the one-point kernel of eq. 7)
    want_sym = explicit_ntk(apply_fn, params, X4, X4)
    np.testing.assert_allclose(np.asarray(ntk.empirical_ntk(apply_fn, params, X4)), want_sym, rtol=1e-11)
    np.testing.assert_allclose(float(ntk.alpha(apply_fn, params, X4[:1])), want_sym[0, 0], rtol=1e-11)


def test_seed_mean_of_empirical_ntk_approaches_infinite_width():
    """The seed average of the empirical NTK converges to the closed-form kernel as 1/sqrt(width).

    Per initialisation the empirical NTK fluctuates around its mean with a relative size
    c/sqrt(width) (Jacot et al.; Hanin & Nica), where c depends on depth and activation; for this
    architecture the relative Frobenius-norm spread is c ~ 1.2-1.4 (measured at widths 128-2048 with
    64 and 16 seeds). The finite-width bias of the mean is O(1/width) and negligible here. The mean
    over S seeds therefore deviates by about c/sqrt(S width); the tolerance C/sqrt(S width) with
    C = 5 is roughly four standard deviations. A kernel that does not converge (wrong
    parameterisation, wrong recursion) misses it by far: the infinite kernel depends on W_std and
    b_std at order one.
    """
    kinf = np.asarray(ntk.infinite_width_ntk(X4, hidden_layers=2, activation="erf", W_std=1.0, b_std=0.05))
    n_seeds, c_tol = 8, 5.0
    devs = {}
    for width in (128, 2048):
        init_fn, apply_fn = network.mlp(width=width, hidden_layers=2, activation="erf", W_std=1.0, b_std=0.05)
        kernels = jax.jit(jax.vmap(lambda k: ntk.empirical_ntk(apply_fn, init_fn(k, 2), X4)))(
            jax.random.split(jax.random.PRNGKey(width), n_seeds)
        )
        devs[width] = np.linalg.norm(np.asarray(kernels).mean(0) - kinf) / np.linalg.norm(kinf)
        assert devs[width] < c_tol / np.sqrt(n_seeds * width), (width, devs[width])
    assert devs[2048] < devs[128], devs


# ---------------------------------------------------------------------------------------------
# the duality for a homogeneous network (eq. 7)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def homogeneous_net():
    init_fn, apply_fn = network.mlp(width=1000, hidden_layers=2, activation="erf", W_std=1.0, b_std=0.05)
    return apply_fn, jax.jit(init_fn, static_argnums=1)(jax.random.PRNGKey(0), 1)


@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_homogeneous_network_follows_eq7(homogeneous_net, beta):
    """The trained output matches the ODE f'' + (1-beta)/sqrt(eta) f' + alpha L'(f) = 0 from rest.

    The paper's Fig. 3 reports percent-level agreement; measured here: ~0.06 % (beta = 0) and
    ~0.09 % (beta = 0.5) of the distance travelled. Wrong friction sign, a missing 1/N or a wrong
    time scale t = i sqrt(eta) each move the end point by tens of percent.
    """
    apply_fn, params = homogeneous_net
    eta, loss = 1.0 / 9.0, PolynomialLoss(0.1, 1.0, 2)
    x0 = jnp.ones((1, 1))
    run = train.train_momentum(apply_fn, params, x0, eta=eta, beta=beta, loss=loss, steps=1000, compute_ntk=False)
    f_net = np.asarray(run.f[:, 0])
    alpha0 = float(explicit_ntk(apply_fn, params, x0, x0)[0, 0])
    # every step (the same shape as in test_slow_roll_discretisation_estimate: one ODE compilation)
    f_ode = np.asarray(dynamics.predict_homogeneous(alpha0, f_net[0], eta=eta, beta=beta, loss=loss, steps=np.arange(1001)))
    travelled = abs(f_net[-1] - f_net[0])
    assert travelled > 0.1  # the run really moves
    assert abs(f_net[-1] - f_ode[-1]) <= 0.01 * travelled
    assert np.max(np.abs(f_net - f_ode)) <= 0.02 * travelled


# ---------------------------------------------------------------------------------------------
# closed forms and derivatives
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("eta,beta", [(0.1111, 0.0), (0.4444, 0.0), (0.0011, 0.5), (0.0278, 0.5), (0.1111, 0.5), (1e-4, 0.99)])
def test_flrw_parameters_closed_forms(eta, beta):
    p = cosmology.flrw_parameters(eta, beta)
    assert p.beta_tilde == pytest.approx((beta - 1.0) / np.sqrt(eta), rel=1e-14)
    assert p.friction == pytest.approx((1.0 - beta) / np.sqrt(eta), rel=1e-14)
    assert p.friction == (1.0 - beta) / np.sqrt(eta)  # bit for bit: the ODEs take their friction from here
    assert 3.0 * p.hubble**2 == pytest.approx(p.vacuum_energy, rel=1e-13)  # Friedmann with V0 only
    assert p.vacuum_energy == pytest.approx((1.0 - beta) ** 2 / (3.0 * eta), rel=1e-13)
    assert p.hubble_length == pytest.approx(3.0 * np.sqrt(eta) / (1.0 - beta), rel=1e-13)
    assert float(cosmology.time_of_step(250, eta)) == pytest.approx(250 * np.sqrt(eta), rel=1e-14)
    assert float(cosmology.step_of_time(cosmology.time_of_step(250, eta), eta)) == pytest.approx(250, rel=1e-13)


def test_momentum_of_hubble_inverts_the_dictionary():
    # hand values: eta = 1/9 (sqrt = 1/3), so beta = 1 - H; eta = 0.01, H = 10/3 * 0.2 -> beta = 0.8
    assert float(cosmology.momentum_of_hubble(0.25, 1.0 / 9.0)) == pytest.approx(0.75, rel=1e-15)
    assert float(cosmology.momentum_of_hubble(2.0 / 3.0, 0.01)) == pytest.approx(0.8, rel=1e-14)
    # clipped to [0, 1]: too much friction for one step -> plain GD; no friction -> beta = 1
    assert np.array_equal(np.asarray(cosmology.momentum_of_hubble(np.array([5.0, 0.0, -1.0]), 1.0 / 9.0)), [0.0, 1.0, 1.0])
    for eta, beta in [(0.0011, 0.5), (0.1111, 0.0), (1e-4, 0.99)]:  # round trip through flrw_parameters
        h = cosmology.flrw_parameters(eta, beta).hubble
        assert float(cosmology.momentum_of_hubble(h, eta)) == pytest.approx(beta, abs=1e-13)


@pytest.mark.parametrize("bad", [dict(eta=0.0, beta=0.0), dict(eta=-0.1, beta=0.0), dict(eta=0.1, beta=1.0), dict(eta=0.1, beta=-0.1)])
def test_flrw_parameters_reject_invalid(bad):
    with pytest.raises(ValueError):
        cosmology.flrw_parameters(**bad)


@pytest.mark.parametrize("n", [2, 4, 6])
def test_polynomial_loss_derivatives_match_autodiff(n):
    loss = PolynomialLoss(0.2, 1.5, n)
    f = jnp.array([-1.0, 0.3, 1.5, 2.7])
    d1 = jax.vmap(jax.grad(lambda y: loss(y)))(f)
    d2 = jax.vmap(jax.grad(jax.grad(lambda y: loss(y))))(f)
    np.testing.assert_allclose(loss.first(f), d1, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(loss.second(f), d2, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(loss.grad_f(f), jax.grad(loss.dataset)(f), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(loss(f), 0.5 * 0.2**2 * (np.asarray(f) - 1.5) ** n, rtol=1e-13)


def test_polynomial_loss_with_traced_exponent_vmaps_and_is_exact():
    """n is a traced leaf: losses of different n vmap in one call, with the values of a static n."""
    losses = [PolynomialLoss(0.2, 1.5, n) for n in (2, 4, 2, 6)]
    f = jnp.array([-3.0, -1.0, 0.3, 1.5, 2.7, 40.0])  # negative bases f - f0 included
    parts = lambda lo: (lo(f), lo.first(f), lo.second(f), jax.grad(lo.dataset)(f))
    traced = jax.jit(jax.vmap(parts))(PolynomialLoss.stack(losses))
    d = np.asarray(f) - 1.5
    for i, lo in enumerate(losses):
        static = jax.jit(lambda: parts(lo))()  # n a Python int inside the trace
        for a, b in zip(traced[:3], static[:3]):
            np.testing.assert_array_equal(np.asarray(a[i]), np.asarray(b))
        np.testing.assert_allclose(traced[3][i], static[3], rtol=1e-15, atol=0)
        n = lo.n  # independent reference: numpy floats
        np.testing.assert_allclose(traced[0][i], 0.02 * d**n, rtol=1e-14)
        np.testing.assert_allclose(traced[1][i], 0.02 * n * d ** (n - 1), rtol=1e-14)
        np.testing.assert_allclose(traced[2][i], 0.02 * n * (n - 1) * d ** (n - 2), rtol=1e-14)
        np.testing.assert_allclose(traced[3][i], 0.02 * n * d ** (n - 1) / f.size, rtol=1e-14)


def test_mlp_apply_flax_module_and_structured_ntk_share_the_forward_pass():
    init_fn, apply_fn = network.mlp(width=12, hidden_layers=2, activation="erf", W_std=1.2, b_std=0.1)
    params = init_fn(jax.random.PRNGKey(3), 2)
    out = np.asarray(apply_fn(params, X4))
    np.testing.assert_array_equal(out, np.asarray(apply_fn.module.apply({"params": params}, X4)))
    np.testing.assert_array_equal(out, np.asarray(network.forward(params, X4, activation="erf", W_std=1.2, b_std=0.1).zs[-1]))
    # independent reference: the NTK-parameterised network written out in numpy
    h = np.asarray(X4)
    for l in range(3):
        W, b = (np.asarray(params[f"layer_{l}"][k]) for k in ("W", "b"))
        z = 1.2 / np.sqrt(h.shape[1]) * h @ W + 0.1 * b
        h = np.asarray(jax.scipy.special.erf(z)) if l < 2 else z
    np.testing.assert_allclose(out, h, rtol=1e-13)


def test_forward_standard_parameterisation_is_a_plain_relu_mlp():
    rng = np.random.default_rng(0)
    layers = [{"W": rng.normal(size=(5, 7)), "b": rng.normal(size=7)}, {"W": rng.normal(size=(7, 3)), "b": rng.normal(size=3)}]
    x = rng.normal(size=(4, 5))
    out = network.forward([{k: jnp.asarray(v) for k, v in lay.items()} for lay in layers], jnp.asarray(x),
                          activation="relu", parameterization="standard").zs[-1]
    ref = np.maximum(x @ layers[0]["W"] + layers[0]["b"], 0.0) @ layers[1]["W"] + layers[1]["b"]
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-13)


def test_training_kernel_passes_the_step_and_records_after_the_update():
    """train.build_kernel/run: objective(params, step), record(new_state, ...), record_every rows."""
    import optax

    target = jnp.arange(6.0)
    objective = lambda p, i: (0.5 * jnp.sum((p - target[i]) ** 2), p)
    kernel = train.build_kernel(objective, optax.sgd(0.5), pass_step=True, record=lambda s, f, v: s.params)
    state, infos = train.run(kernel, train.init(jnp.zeros(2), optax.sgd(0.5)), 6, record_every=2)
    p, rows = np.zeros(2), []
    for i in range(6):  # the same loop by hand
        f, p = p, p - 0.5 * (p - i)
        rows.append((f, p))
    np.testing.assert_allclose(np.asarray(state.params), p)
    np.testing.assert_allclose(np.asarray(infos.f), [rows[i][0] for i in (0, 2, 4)])
    np.testing.assert_allclose(np.asarray(infos.record), [rows[i][1] for i in (0, 2, 4)])
    assert int(state.step) == 6 and int(state.divergence_step) == -1


# ---------------------------------------------------------------------------------------------
# the update rule (eq. 2)
# ---------------------------------------------------------------------------------------------
def test_train_momentum_is_eq2():
    """train_momentum reproduces theta_{i+1} = theta_i + beta (theta_i - theta_{i-1}) - eta grad L."""
    init_fn, apply_fn = network.mlp(width=16, hidden_layers=2, activation="erf", W_std=1.0, b_std=0.3)
    params = init_fn(jax.random.PRNGKey(1), 2)
    x = X4[:3]
    eta, beta, steps = 0.07, 0.8, 6
    loss = PolynomialLoss(0.5, 1.0, 4)
    run = train.train_momentum(apply_fn, params, x, eta=eta, beta=beta, loss=loss, steps=steps, compute_ntk=False)

    flat, unravel = ravel_pytree(params)

    def dataset_loss(p):
        f = apply_fn(unravel(p), x)[:, 0]
        return jnp.mean(0.5 * 0.5**2 * (f - 1.0) ** 4)

    grad = jax.jit(jax.grad(dataset_loss))
    theta, theta_prev, outputs = flat, flat, [apply_fn(unravel(flat), x)[:, 0]]
    for _ in range(steps):
        theta, theta_prev = theta + beta * (theta - theta_prev) - eta * grad(theta), theta
        outputs.append(apply_fn(unravel(theta), x)[:, 0])
    np.testing.assert_allclose(np.asarray(run.f), np.asarray(outputs), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(ravel_pytree(run.params)[0]), np.asarray(theta), rtol=0, atol=1e-12)


def test_iterate_linearized_is_eq2_for_a_linear_model():
    """A network without hidden layers is linear in its weights, so eq. 2 in function space is exact."""
    init_fn, apply_fn = network.mlp(width=1, hidden_layers=0, activation="erf", W_std=1.0, b_std=0.5)
    params = init_fn(jax.random.PRNGKey(2), 2)
    eta, beta, loss = 0.3, 0.6, PolynomialLoss(1.0, 2.0, 2)
    run = train.train_momentum(apply_fn, params, X4, eta=eta, beta=beta, loss=loss, steps=40, compute_ntk=False)
    kernel = explicit_ntk(apply_fn, params, X4, X4)
    f_fn = dynamics.iterate_linearized(kernel, run.f[0], eta=eta, beta=beta, loss=loss, steps=[0, 1, 7, 40])
    np.testing.assert_allclose(np.asarray(f_fn), np.asarray(run.f)[[0, 1, 7, 40]], rtol=0, atol=1e-12)


def test_discretisation_error_is_first_order_in_sqrt_eta():
    """At fixed friction 3H the gap between eq. 2 and its continuum limit falls like sqrt(eta).

    The backward difference carrying the friction is first-order accurate and the discrete start
    theta_{-1} = theta_0 is an O(sqrt(eta)) velocity error (see the chapter "The continuous limit"),
    so a tenfold smaller step must shrink the gap tenfold: fitted order 1 +- 0.1.
    """
    kernel = ntk.infinite_width_ntk(X4, hidden_layers=2, activation="erf", W_std=1.0, b_std=0.05)
    loss = PolynomialLoss(1.0, 1.0, 2)
    h, err = dynamics.discretisation_error(kernel, jnp.array([0.3, -0.2, 0.1, 0.5]), friction=3.0, loss=loss,
                                           t_final=10.0, n_steps=[200, 2000], n_records=20)
    order = np.log(err[0] / err[1]) / np.log(h[0] / h[1])
    assert abs(order - 1.0) < 0.1, order


def test_convergence_study_fits_first_order():
    """The packaged study (log-spaced step counts, fit where sqrt(eta) <= fit_max) finds order 1 as well."""
    kernel = ntk.infinite_width_ntk(X4, hidden_layers=2, activation="erf", W_std=1.0, b_std=0.05)
    study = dynamics.convergence_study(kernel, jnp.array([0.3, -0.2, 0.1, 0.5]), friction=3.0,
                                       loss=PolynomialLoss(1.0, 1.0, 2), t_final=10.0, n_records=20, n_points=4,
                                       max_block=100, fit_max=0.1)
    assert study.label == "$3H = 3.0$" and len(study.sqrt_eta) == len(study.error) == 4
    assert np.all(np.diff(study.sqrt_eta) < 0) and study.sqrt_eta[0] == pytest.approx(10.0 / 20 / 2)  # beta = 0 first
    assert abs(study.slope - 1.0) < 0.1, study.slope


def test_slow_roll_discretisation_estimate():
    """The closed-form slow-roll estimate matches the measured gap between eq. 2 and eq. 7."""
    loss, alpha, steps = PolynomialLoss(0.1, 1.0, 2), 1.2, 1000
    for eta, beta in [(0.1111, 0.0), (0.0011, 0.5), (0.0278, 0.5)]:
        s = np.arange(steps + 1)
        f_disc = np.asarray(dynamics.iterate_linearized([[alpha]], [1.5], eta=eta, beta=beta, loss=loss, steps=s))[:, 0]
        f_ode = np.asarray(dynamics.predict_homogeneous(alpha, 1.5, eta=eta, beta=beta, loss=loss, steps=s))
        measured = abs(f_disc[-1] - f_ode[-1]) / abs(f_ode[-1] - 1.5)
        estimate = dynamics.slow_roll_discretisation(alpha, eta=eta, beta=beta, loss=loss, steps=steps)
        assert estimate == pytest.approx(measured, rel=0.1), (eta, beta)
