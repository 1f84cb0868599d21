"""The error budget of eq. 9 (experiments.error_budget) against independent references.

* the frozen-kernel discrete iteration of eq. 2 written out by hand (a numpy loop);
* the closed-form solution of eq. 9 for a quadratic loss: in the eigenbasis of the constant kernel
  every mode is a damped oscillator, solved here with the matrix exponential of its companion matrix
  (and the lag-corrected equation likewise);
* a model linear in its parameters (an MLP without hidden layers), for which eq. 2 *is* the
  frozen-kernel iteration, so the drift part must vanish to rounding;
* the orders of the discretisation error on a ladder of learning rates at fixed friction.
"""

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy.linalg import expm  # noqa: E402

from nncosmo_helpers import dynamics, network  # noqa: E402
from nncosmo_helpers.experiments import error_budget as eb  # noqa: E402
from nncosmo_helpers.loss import PolynomialLoss  # noqa: E402

ETA, BETA = 1 / 9, 0.0
N = 8
X = dynamics.centred_interval(N, 1.0, eta=ETA, beta=BETA)


def hand_iteration(kernel, f_init, eta, beta, lprime, steps):
    """f_{i+1} = f_i + beta (f_i - f_{i-1}) - (eta/N) K L'(f_i), f_{-1} = f_0, written out."""
    f_prev = np.array(f_init, dtype=float)
    f = f_prev.copy()
    for _ in range(steps):
        f, f_prev = f + beta * (f - f_prev) - eta / len(f) * kernel @ lprime(f), f
    return f


def closed_form(kernel, f_init, *, m, f0, eta, beta, t, inertia=1.0, corrected=False):
    """Eq. 9 (or its lag-corrected form) for L = m^2 (f - f0)^2/2 and a constant kernel.

    In the eigenbasis K = V diag(lam) V^T, c = V^T (f - f0) obeys
    inertia c'' + gamma c' + (lam m^2/N) c = 0; the pair (c, c') evolves with exp(t A).
    """
    n = len(f_init)
    lam, vec = np.linalg.eigh(kernel)
    c0 = vec.T @ (np.asarray(f_init) - f0)
    gamma = (1 - beta) / np.sqrt(eta)
    out = np.empty(n)
    for i in range(n):
        w2 = lam[i] * m**2 / n
        v0 = -np.sqrt(eta) * w2 * c0[i] / (1 + beta) if corrected else 0.0
        A = np.array([[0.0, 1.0], [-w2 / inertia, -gamma / inertia]])
        out[i] = (expm(t * A) @ np.array([c0[i], v0]))[0]
    return f0 + vec @ out


@pytest.fixture(scope="module")
def mlp_budget():
    init_fn, apply_fn = network.mlp(width=64, hidden_layers=1, activation="erf", W_std=1.0, b_std=0.5)
    params = init_fn(jax.random.PRNGKey(0), 1)
    loss = PolynomialLoss(m=0.2, f0=1.0, n=2)
    return eb.error_budget(apply_fn, params, X, eta=ETA, beta=BETA, loss=loss, steps=60), loss


def test_budget_against_hand_loop_and_closed_form(mlp_budget):
    b, loss = mlp_budget
    k0, f_init, steps = b.kernel_initial, b.f_initial, b.steps
    disc = hand_iteration(k0, f_init, ETA, BETA, lambda f: loss.m**2 * (f - loss.f0), steps)
    t = steps * np.sqrt(ETA)
    cont = closed_form(k0, f_init, m=loss.m, f0=loss.f0, eta=ETA, beta=BETA, t=t)
    corr = closed_form(k0, f_init, m=loss.m, f0=loss.f0, eta=ETA, beta=BETA, t=t, inertia=(1 + BETA) / 2,
                       corrected=True)
    d = b.displacement
    assert d > 0.05  # the network moves (a tenth of the way to f0 at least)
    assert np.max(np.abs(b.f_discrete - disc)) < 1e-12 * d
    assert np.max(np.abs(b.f_continuum - cont)) < 1e-8 * d  # ODE rtol 1e-10
    assert np.max(np.abs(b.f_corrected - corr)) < 1e-8 * d
    rel = lambda a, c: np.max(np.abs(a - c)) / d  # noqa: E731
    assert b.continuum == pytest.approx(rel(disc, cont), rel=1e-6)
    assert b.drift == pytest.approx(rel(b.f_network, disc), rel=1e-6)
    assert b.total == pytest.approx(rel(b.f_network, cont), rel=1e-6)
    assert b.continuum_corrected == pytest.approx(rel(disc, corr), rel=1e-4)
    # the split: total <= continuum + drift; and with the lag removed the remainder is far smaller
    assert b.total <= b.continuum + b.drift + 1e-15
    assert b.continuum_corrected < 0.1 * b.continuum
    assert b.kappa[0] == pytest.approx(b.eigenvalues_over_n[0] * loss.m**2 * t * np.sqrt(ETA) / (1 - BETA))


def test_quartic_discrete_against_hand_loop():
    init_fn, apply_fn = network.mlp(width=32, hidden_layers=1, activation="erf", W_std=1.0, b_std=0.5)
    params = init_fn(jax.random.PRNGKey(1), 1)
    loss = PolynomialLoss(m=0.5, f0=1.0, n=4)
    b = eb.error_budget(apply_fn, params, X, eta=ETA, beta=0.5, loss=loss, steps=40)
    disc = hand_iteration(b.kernel_initial, b.f_initial, ETA, 0.5, lambda f: 2 * loss.m**2 * (f - loss.f0) ** 3, 40)
    assert np.max(np.abs(b.f_discrete - disc)) < 1e-12 * b.displacement


def test_linear_model_has_no_drift():
    """Without hidden layers the model is linear in its parameters: eq. 2 is the frozen-kernel iteration."""
    init_fn, apply_fn = network.mlp(width=1, hidden_layers=0, activation="erf", W_std=1.0, b_std=0.5)
    params = init_fn(jax.random.PRNGKey(2), 1)
    b = eb.error_budget(apply_fn, params, X, eta=ETA, beta=0.5, loss=PolynomialLoss(m=0.5, f0=1.0, n=2), steps=50)
    assert b.displacement > 0.05
    assert b.kernel_drift < 1e-12
    assert b.drift < 1e-10  # rounding only, against a continuum part of order 1/steps
    assert b.continuum > 1e-3
    assert b.total == pytest.approx(b.continuum, rel=1e-6)


# ---------------------------------------------------------------------------------------------
# the orders of the discretisation error
# ---------------------------------------------------------------------------------------------
# The ladder holds the continuum problem fixed: friction 3H = GAMMA and time T_FINAL, so that
# eta = h^2, beta = 1 - GAMMA h and steps = T_FINAL/h. Theory (module docstring of error_budget):
# plain eq. 9 is off by O(h), the lag-corrected equation by O(h^2). The fitted exponent over the ladder
# differs from the asymptotic one by the next-order term: a relative correction (1 + b h) to an
# error a h^p shifts the slope fitted between h_max and h_min by about b h_max/ln(h_max/h_min). The
# next term is one more power of GAMMA h (or of h k/GAMMA, smaller here), so |b h_max| <= GAMMA h_max
# = 0.12, and over a factor 8 in h the shift is below 0.12/ln 8 = 0.06. Tolerance: 0.1.
GAMMA, T_FINAL = 3.0, 4.0
LADDER = np.array([0.04, 0.02, 0.01, 0.005])
EXPONENT_TOL = 0.1


def ladder_errors(kernel, f_init, loss):
    plain, corrected = [], []
    for h in LADDER:
        steps = [0, int(round(T_FINAL / h))]
        kw = dict(eta=h * h, beta=1 - GAMMA * h, loss=loss, steps=steps)
        disc = np.asarray(dynamics.iterate_linearized(kernel, f_init, **kw))[-1]
        cont = np.asarray(dynamics.predict_linearized(kernel, f_init, **kw))[-1]
        corr = np.asarray(eb.predict_lag_corrected(kernel, f_init, **kw))[-1]
        d = np.max(np.abs(disc - f_init))
        plain.append(np.max(np.abs(disc - cont)) / d)
        corrected.append(np.max(np.abs(disc - corr)) / d)
    return np.asarray(plain), np.asarray(corrected)


@pytest.mark.parametrize("n_pow", [2, 4])
def test_lag_correction_raises_the_order(n_pow):
    rng = np.random.default_rng(3)
    a = rng.normal(size=(6, 6))
    kernel = a @ a.T / 6 + 0.5
    f_init = 0.1 * rng.normal(size=6)
    plain, corrected = ladder_errors(kernel, f_init, PolynomialLoss(m=1.0, f0=1.0, n=n_pow))
    p_plain = np.polyfit(np.log(LADDER), np.log(plain), 1)[0]
    p_corr = np.polyfit(np.log(LADDER), np.log(corrected), 1)[0]
    assert abs(p_plain - 1.0) < EXPONENT_TOL, p_plain
    assert abs(p_corr - 2.0) < EXPONENT_TOL, p_corr
    assert np.all(corrected < plain)


def test_budget_ladder_with_a_network():
    """error_budget on the fixed-friction ladder (linear model: no drift): continuum ~ h, corrected ~ h^2."""
    init_fn, apply_fn = network.mlp(width=1, hidden_layers=0, activation="erf", W_std=1.0, b_std=0.5)
    params = init_fn(jax.random.PRNGKey(4), 1)
    loss = PolynomialLoss(m=0.5, f0=1.0, n=2)
    budgets = [eb.error_budget(apply_fn, params, X, eta=h * h, beta=1 - GAMMA * h, loss=loss,
                               steps=int(round(T_FINAL / h))) for h in LADDER]
    cont = np.array([b.continuum for b in budgets])
    corr = np.array([b.continuum_corrected for b in budgets])
    assert abs(np.polyfit(np.log(LADDER), np.log(cont), 1)[0] - 1.0) < EXPONENT_TOL
    assert abs(np.polyfit(np.log(LADDER), np.log(corr), 1)[0] - 2.0) < EXPONENT_TOL


def test_constant_force_lag_is_exact():
    """Under a constant force the corrected prediction has the heavy ball's lag beta/gamma exactly.

    The force K L'(f)/N is made constant to 1e-12 relative by a tiny kernel and a far-away minimum.
    Plain eq. 9 lags one step (sqrt(eta)) further behind.
    """
    eta, beta, steps = 0.04, 0.3, 200
    h, gamma = np.sqrt(eta), (1 - beta) / np.sqrt(eta)
    kernel = np.array([[1e-9]])
    loss = PolynomialLoss(m=1.0, f0=1e6, n=2)
    force = 1e-9 * (0.0 - 1e6)  # K L'(0)/N
    disc = np.asarray(dynamics.iterate_linearized(kernel, [0.0], eta=eta, beta=beta, loss=loss, steps=[0, steps]))[-1, 0]
    corr = np.asarray(eb.predict_lag_corrected(kernel, [0.0], eta=eta, beta=beta, loss=loss, steps=[0, steps]))[-1, 0]
    cont = np.asarray(dynamics.predict_linearized(kernel, [0.0], eta=eta, beta=beta, loss=loss, steps=[0, steps]))[-1, 0]
    t = steps * h
    terminal = -force / gamma * (t - beta / gamma)  # the heavy ball's terminal motion (lag beta/gamma)
    assert disc == pytest.approx(terminal, rel=1e-6)
    assert corr == pytest.approx(disc, rel=1e-6)
    assert abs(cont - disc) / abs(disc) == pytest.approx(h / (t - beta / gamma), rel=1e-3)  # one step of lag


def test_argument_checks():
    init_fn, apply_fn = network.mlp(width=4, hidden_layers=1, activation="erf", W_std=1.0, b_std=0.5)
    params = init_fn(jax.random.PRNGKey(0), 1)
    with pytest.raises(ValueError, match="steps"):
        eb.error_budget(apply_fn, params, X, eta=ETA, beta=BETA, loss=PolynomialLoss(0.2, 1.0, 2), steps=0)
    with pytest.raises(TypeError, match="PolynomialLoss"):
        eb.predict_lag_corrected(np.eye(2), [0.0, 0.0], eta=ETA, beta=BETA, loss=None, steps=[0, 1])
    with pytest.raises(ValueError, match="kernel"):
        eb.predict_lag_corrected(np.eye(3), [0.0, 0.0], eta=ETA, beta=BETA, loss=PolynomialLoss(0.2, 1.0, 2),
                                 steps=[0, 1])


def _synthetic_grid(a_cont=0.3, p_cont=1.0, a_drift=0.05, p_drift=-0.5, noise=None):
    """An ErrorBudgetGrid filled with exact power laws (and optional multiplicative seed scatter)."""
    etas, widths, seeds = np.array([1 / 9, 1 / 36, 1 / 144]), np.array([32, 128, 512]), np.array([0, 1])
    h = np.sqrt(etas)[:, None, None]
    w = widths[None, :, None].astype(float)
    shape = (3, 3, 2)
    scatter = np.ones(shape) if noise is None else noise
    cont = a_cont * h**p_cont * np.ones(shape)
    drift = a_drift * w**p_drift * scatter * np.ones(shape)
    return eb.ErrorBudgetGrid(etas=etas, betas=1 - 3 * np.sqrt(etas), steps=np.array([100, 200, 400]), widths=widths,
                              seeds=seeds, continuum=cont, continuum_corrected=0.1 * h**2 * np.ones(shape),
                              drift=drift, total=cont + drift, displacement=np.ones(shape), kappa1=np.ones(shape))


def test_grid_exponents_of_exact_power_laws():
    g = _synthetic_grid()
    np.testing.assert_allclose(g.continuum_exponent.slopes, 1.0, atol=1e-12)
    np.testing.assert_allclose(g.corrected_exponent.slopes, 2.0, atol=1e-12)
    np.testing.assert_allclose(g.drift_exponent.slopes, -0.5, atol=1e-12)
    assert g.continuum_exponent.max_stderr < 1e-10 and g.drift_exponent.spread < 1e-12
    np.testing.assert_allclose(g.drift_exponent_pooled.slopes, [-0.5], atol=1e-12)
    np.testing.assert_allclose(g.next_order_ratio, np.max(0.1 * np.sqrt(g.etas) / 0.3), rtol=1e-12)


def test_pooled_drift_exponent_carries_seed_scatter():
    """Seed 1 is a constant factor 3 above seed 0: per-seed slopes are exact, the pooled fit (through
    both seeds) has the same slope but a standard error from the scatter, as numpy's polyfit gives."""
    noise = np.ones((3, 3, 2))
    noise[:, 1, 1] = 3.0                                    # one width of one seed off the line
    g = _synthetic_grid(noise=noise)
    pooled = g.drift_exponent_pooled
    w = np.broadcast_to(g.widths[None, :, None], g.drift.shape).ravel()
    coef, cov = np.polyfit(np.log(w), np.log(g.drift.ravel()), 1, cov="unscaled")
    resid = np.log(g.drift.ravel()) - np.polyval(coef, np.log(w))
    se = np.sqrt(cov[0, 0] * np.sum(resid**2) / (len(w) - 2))
    np.testing.assert_allclose(pooled.slopes[0], coef[0], rtol=1e-10)
    np.testing.assert_allclose(pooled.max_stderr, se, rtol=1e-10)
    assert pooled.max_stderr > 0.01


def test_budget_of_a_given_run_equals_a_fresh_one(mlp_budget):
    """A run trained beforehand (recorded every step, as the chapter shares it) gives the same budget."""
    from nncosmo_helpers.train import train_momentum

    b, loss = mlp_budget
    init_fn, apply_fn = network.mlp(width=64, hidden_layers=1, activation="erf", W_std=1.0, b_std=0.5)
    params = init_fn(jax.random.PRNGKey(0), 1)
    run = train_momentum(apply_fn, params, X, eta=ETA, beta=BETA, loss=loss, steps=60, record_every=1)
    b2 = eb.error_budget(apply_fn, params, X, eta=ETA, beta=BETA, loss=loss, steps=60, run=run)
    for name in ("total", "continuum", "drift", "continuum_corrected"):
        assert getattr(b2, name) == pytest.approx(getattr(b, name), rel=1e-9)
    with pytest.raises(ValueError):
        eb.error_budget(apply_fn, params, X, eta=ETA, beta=BETA, loss=loss, steps=50, run=run)


def test_batched_grid_equals_run_by_run():
    """error_budget_grid trains seeds and learning rates of a width together (every run to the longest, read at
    its own step): the same budget as training each run separately, up to float64 rounding."""
    kw = dict(etas=(1 / 9, 1 / 16), widths=(16, 24), seeds=(0, 1), friction=3.0, duration=20 / 3,
              loss=PolynomialLoss(m=0.2, f0=1.0, n=2), hidden_layers=1, activation="erf", W_std=1.0, b_std=0.5)
    a = eb.error_budget_grid(X, batched=True, **kw)
    b = eb.error_budget_grid(X, batched=False, **kw)
    np.testing.assert_array_equal(a.steps, [20, 27])
    for name in ("continuum", "continuum_corrected", "drift", "total", "displacement", "kappa1"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-8, err_msg=name)
