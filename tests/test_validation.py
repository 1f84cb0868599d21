"""Bad input at the public API is rejected with a clear error naming the argument and its range.

One parametrised test: every case is (public call, exception type, argument name, allowed-range
hint). The message must contain the argument's name and, where given, the allowed range.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from nncosmo_helpers import cosmology, dynamics, ntk, profiles, train
from nncosmo_helpers.loss import PolynomialLoss
from nncosmo_helpers.network import mlp
from nncosmo_helpers.results import ResultStore

INIT, APPLY = mlp(width=8, hidden_layers=1, activation="erf", W_std=1.0, b_std=0.1)
PARAMS = INIT(jax.random.PRNGKey(0), 2)
X = np.array([[0.1, 0.2], [0.3, -0.4], [-0.5, 0.6]])
LOSS = PolynomialLoss(0.1, 1.0, 2)
K = np.array([[2.0, 0.5, 0.1], [0.5, 1.5, 0.2], [0.1, 0.2, 1.0]])
F0 = np.array([0.1, -0.2, 0.3])
ETA_RANGE = "(0.0, inf)"
BETA_RANGE = "[0.0, 1.0)"


def _train(**kw):
    args = dict(eta=0.1, beta=0.0, loss=LOSS, steps=4, compute_ntk=False)
    args.update(kw)
    x = args.pop("x", X)
    return train.train_momentum(APPLY, PARAMS, x, **args)


def _predict(**kw):
    args = dict(kernel=K, f_init=F0, eta=0.1, beta=0.0, loss=LOSS, steps=[0, 5, 10])
    args.update(kw)
    return dynamics.predict_linearized(args.pop("kernel"), args.pop("f_init"), **args)


def _mlp(**kw):
    args = dict(width=8, hidden_layers=1, activation="erf", W_std=1.0, b_std=0.1)
    args.update(kw)
    return mlp(**args)


def _modes(**kw):
    args = dict(modes=dynamics.mode_decomposition(K), f_init=F0, eta=0.1, beta=0.0, loss=LOSS, steps=[0, 5])
    args.update(kw)
    return dynamics.predict_mean_and_modes(args.pop("modes"), args.pop("f_init"), **args)


def _store_run(tmp, shard):
    return ResultStore(tmp).run([{"a": 1}], lambda b: [{"r": 1}] * len(b), shard=shard, progress=False)


NONSYM = K.copy()
NONSYM[0, 1] += 0.3
NOT_PSD = np.array([[1.0, 2.0], [2.0, 1.0]])

# (id, call(tmp_path), exception, argument name, allowed-range hint or None)
CASES = [
    # learning rate eta
    ("eta=0 train", lambda t: _train(eta=0.0), ValueError, "eta", ETA_RANGE),
    ("eta<0 train", lambda t: _train(eta=-0.1), ValueError, "eta", ETA_RANGE),
    ("eta=nan train", lambda t: _train(eta=math.nan), ValueError, "eta", ETA_RANGE),
    ("eta=inf train", lambda t: _train(eta=math.inf), ValueError, "eta", ETA_RANGE),
    ("eta str train", lambda t: _train(eta="0.1"), TypeError, "eta", None),
    ("eta=0 flrw", lambda t: cosmology.flrw_parameters(0.0, 0.5), ValueError, "eta", ETA_RANGE),
    ("eta<0 predict", lambda t: _predict(eta=-1.0), ValueError, "eta", ETA_RANGE),
    ("eta=0 time_of_step", lambda t: cosmology.time_of_step(3, 0.0), ValueError, "eta", ETA_RANGE),
    ("eta=nan modes", lambda t: _modes(eta=math.nan), ValueError, "eta", ETA_RANGE),
    # momentum beta
    ("beta<0 train", lambda t: _train(beta=-0.1), ValueError, "beta", BETA_RANGE),
    ("beta=1 train", lambda t: _train(beta=1.0), ValueError, "beta", BETA_RANGE),
    ("beta>1 flrw", lambda t: cosmology.flrw_parameters(0.1, 1.5), ValueError, "beta", BETA_RANGE),
    ("beta=nan predict", lambda t: _predict(beta=math.nan), ValueError, "beta", BETA_RANGE),
    ("beta=1 modes", lambda t: _modes(beta=1.0), ValueError, "beta", BETA_RANGE),
    # loss L = m^2/2 (f - f0)^n
    ("n odd", lambda t: PolynomialLoss(0.1, 1.0, 3), ValueError, "n", "even integer >= 2"),
    ("n non-integer", lambda t: PolynomialLoss(0.1, 1.0, 2.5), ValueError, "n", "even integer >= 2"),
    ("n=0", lambda t: PolynomialLoss(0.1, 1.0, 0), ValueError, "n", "even integer >= 2"),
    ("n=1", lambda t: PolynomialLoss(0.1, 1.0, 1), ValueError, "n", "even integer >= 2"),
    ("n str", lambda t: PolynomialLoss(0.1, 1.0, "two"), ValueError, "n", "even integer >= 2"),
    ("n bool", lambda t: PolynomialLoss(0.1, 1.0, True), ValueError, "n", "even integer >= 2"),
    ("m=0", lambda t: PolynomialLoss(0.0, 1.0, 2), ValueError, "m", "(0.0, inf)"),
    ("m<0", lambda t: PolynomialLoss(-0.1, 1.0, 2), ValueError, "m", "(0.0, inf)"),
    ("m=nan", lambda t: PolynomialLoss(math.nan, 1.0, 2), ValueError, "m", "(0.0, inf)"),
    ("f0=inf", lambda t: PolynomialLoss(0.1, math.inf, 2), ValueError, "f0", "(-inf, inf)"),
    ("loss not PolynomialLoss", lambda t: _train(loss=lambda f: f**2), TypeError, "loss", "PolynomialLoss"),
    ("loss not PolynomialLoss predict", lambda t: _predict(loss=(0.1, 1.0, 2)), TypeError, "loss", "PolynomialLoss"),
    # network architecture
    ("width=0", lambda t: _mlp(width=0), ValueError, "width", ">= 1"),
    ("width<0", lambda t: _mlp(width=-3), ValueError, "width", ">= 1"),
    ("width non-integer", lambda t: _mlp(width=2.5), TypeError, "width", ">= 1"),
    ("hidden_layers<0", lambda t: _mlp(hidden_layers=-1), ValueError, "hidden_layers", ">= 0"),
    ("activation unknown", lambda t: _mlp(activation="tanh"), ValueError, "activation", "['erf', 'relu']"),
    ("activation None", lambda t: _mlp(activation=None), ValueError, "activation", "['erf', 'relu']"),
    ("activation list", lambda t: _mlp(activation=["erf"]), ValueError, "activation", "['erf', 'relu']"),
    ("W_std=0", lambda t: _mlp(W_std=0.0), ValueError, "W_std", "(0.0, inf)"),
    ("b_std<0", lambda t: _mlp(b_std=-0.1), ValueError, "b_std", "[0.0, inf)"),
    ("dtype int", lambda t: _mlp(dtype="int32"), ValueError, "dtype", "float32 or float64"),
    ("input_dim=0", lambda t: INIT(jax.random.PRNGKey(0), 0), ValueError, "input_dim", ">= 1"),
    # inputs that do not match the network
    ("apply_fn x wrong dim", lambda t: APPLY(PARAMS, np.ones((3, 5))), ValueError, "x", "(N, 2)"),
    ("apply_fn x 1-D", lambda t: APPLY(PARAMS, np.ones(2)), ValueError, "x", "(N, 2)"),
    ("train x wrong dim", lambda t: _train(x=np.ones((3, 4))), ValueError, "x", "(N, 2)"),
    ("train x 1-D", lambda t: _train(x=np.ones(3)), ValueError, "x", "(N, input_dim)"),
    ("train x nan", lambda t: _train(x=np.array([[0.1, math.nan]])), ValueError, "x", "finite"),
    ("ntk x1 wrong dim", lambda t: ntk.empirical_ntk(APPLY, PARAMS, np.ones((2, 3))), ValueError, "x1", "(N, 2)"),
    ("ntk x2 wrong dim", lambda t: ntk.empirical_ntk(APPLY, PARAMS, X, np.ones((2, 1))), ValueError, "x2", "(N, 2)"),
    ("ntk x1 1-D", lambda t: ntk.empirical_ntk(APPLY, PARAMS, np.ones(2)), ValueError, "x1", "(N, input_dim)"),
    ("ntk implementation", lambda t: ntk.empirical_ntk(APPLY, PARAMS, X, implementation="fast"), ValueError, "implementation", "'jacobian'"),
    ("alpha x0 two points", lambda t: ntk.alpha(APPLY, PARAMS, X[:2]), ValueError, "x0", "(1, d)"),
    ("infinite hidden_layers<0", lambda t: ntk.infinite_width_ntk(X, hidden_layers=-1, activation="erf", W_std=1.0, b_std=0.1), ValueError, "hidden_layers", ">= 0"),
    ("infinite activation", lambda t: ntk.infinite_width_ntk(X, hidden_layers=1, activation="sigmoid", W_std=1.0, b_std=0.1), ValueError, "activation", "['erf', 'relu']"),
    ("infinite W_std<0", lambda t: ntk.infinite_width_ntk(X, hidden_layers=1, activation="erf", W_std=-1.0, b_std=0.1), ValueError, "W_std", "(0.0, inf)"),
    ("ntk x1 nan", lambda t: ntk.empirical_ntk(APPLY, PARAMS, np.where(X > 0.5, np.nan, X)), ValueError, "x1", "finite"),
    ("ntk x2 inf", lambda t: ntk.empirical_ntk(APPLY, PARAMS, X, np.full((1, 2), np.inf)), ValueError, "x2", "finite"),
    ("infinite x1 nan", lambda t: ntk.infinite_width_ntk(np.full((2, 2), np.nan), hidden_layers=1, activation="erf", W_std=1.0, b_std=0.1), ValueError, "x1", "finite"),
    ("infinite x1/x2 dims", lambda t: ntk.infinite_width_ntk(X, np.ones((2, 3)), hidden_layers=1, activation="erf", W_std=1.0, b_std=0.1), ValueError, "x2", None),
    # training length and bookkeeping
    ("train steps<0", lambda t: _train(steps=-1), ValueError, "steps", ">= 0"),
    ("train steps non-integer", lambda t: _train(steps=2.5), TypeError, "steps", ">= 0"),
    ("train record_every=0", lambda t: _train(record_every=0), ValueError, "record_every", ">= 1"),
    ("train record_every not dividing", lambda t: _train(steps=10, record_every=3), ValueError, "record_every", "divide"),
    ("train on_divergence", lambda t: _train(on_divergence="ignore"), ValueError, "on_divergence", "'report'"),
    # kernels and steps of the continuum predictions
    ("kernel not square", lambda t: _predict(kernel=np.ones((3, 2))), ValueError, "kernel", "square"),
    ("kernel 1-D", lambda t: _predict(kernel=np.ones(3)), ValueError, "kernel", "square"),
    ("kernel not symmetric", lambda t: _predict(kernel=NONSYM), ValueError, "kernel", "symmetric"),
    ("kernel not PSD", lambda t: _predict(kernel=NOT_PSD, f_init=F0[:2]), ValueError, "kernel", "positive semi-definite"),
    ("kernel wrong N", lambda t: _predict(kernel=K[:2, :2]), ValueError, "kernel", "(3, 3)"),
    ("kernel nan", lambda t: _predict(kernel=np.full((3, 3), math.nan)), ValueError, "kernel", "finite"),
    ("kernel str", lambda t: _predict(kernel="K"), TypeError, "kernel", "square"),
    ("modes kernel not symmetric", lambda t: dynamics.mode_decomposition(NONSYM), ValueError, "kernel", "symmetric"),
    ("modes not Modes", lambda t: _modes(modes=K), TypeError, "modes", "mode_decomposition"),
    ("friction_sign", lambda t: _modes(friction_sign=0.5), ValueError, "friction_sign", "+1 or -1"),
    ("steps negative", lambda t: _predict(steps=[-1, 2, 3]), ValueError, "steps", "[0, inf)"),
    ("steps decreasing", lambda t: _predict(steps=[0, 10, 5]), ValueError, "steps", "increasing"),
    ("steps repeated", lambda t: _predict(steps=[0, 5, 5]), ValueError, "steps", "increasing"),
    ("steps empty", lambda t: _predict(steps=[]), ValueError, "steps", "non-empty"),
    ("steps nan", lambda t: _predict(steps=[0, math.nan]), ValueError, "steps", "[0, inf)"),
    ("steps str", lambda t: _predict(steps="ten"), TypeError, "steps", ">= 0"),
    ("f_init nan", lambda t: _predict(f_init=np.array([0.1, math.nan, 0.2])), ValueError, "f_init", "finite"),
    ("f_init 2-D", lambda t: _predict(f_init=np.ones((3, 2))), ValueError, "f_init", "(N,)"),
    ("modes f_init wrong N", lambda t: _modes(f_init=F0[:2]), ValueError, "f_init", "(3,)"),
    ("homogeneous alpha<0", lambda t: dynamics.predict_homogeneous(-1.0, 0.0, eta=0.1, beta=0.0, loss=LOSS, steps=[0, 1]), ValueError, "alpha", "[0.0, inf)"),
    ("homogeneous f_init nan", lambda t: dynamics.predict_homogeneous(1.0, math.nan, eta=0.1, beta=0.0, loss=LOSS, steps=[0, 1]), ValueError, "f_init", "(-inf, inf)"),
    # profiles
    ("profile unknown", lambda t: profiles.get_profile("fast"), ValueError, "profile", "('quick', 'paper')"),
    # results store
    ("shard i >= n", lambda t: _store_run(t, (2, 2)), ValueError, "shard", "[0, 2)"),
    ("shard n = 0", lambda t: _store_run(t, (0, 0)), ValueError, "shard", ">= 1"),
    ("shard i < 0", lambda t: _store_run(t, (-1, 2)), ValueError, "shard", ">= 0"),
    ("shard not a pair", lambda t: _store_run(t, "0/2"), ValueError, "shard", "(i, n)"),
    ("shard i non-integer", lambda t: _store_run(t, (0.5, 2)), TypeError, "shard", ">= 0"),
    ("store result nan", lambda t: ResultStore(t).save({"a": 1}, {"f": math.nan}), ValueError, "result", "NaN"),
    ("store result not dict", lambda t: ResultStore(t).save({"a": 1}, [1.0]), TypeError, "result", "dict"),
]


@pytest.mark.parametrize("call, exc, name, hint", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_rejected_clearly(tmp_path, call, exc, name, hint):
    with pytest.raises(exc) as info:
        call(tmp_path)
    msg = str(info.value)
    assert name in msg, f"message does not name {name!r}: {msg}"
    if hint is not None:
        assert hint in msg, f"message does not give the allowed range {hint!r}: {msg}"


def test_enough_cases():
    assert len(CASES) >= 30


def test_good_input_passes_validation():
    """The same calls with valid arguments succeed (so the cases above fail for the stated reason)."""
    assert _train().f.shape == (5, 3)
    assert _predict().shape == (3, 3)
    _mlp()
    PolynomialLoss(0.1, 1.0, 4.0)
    cosmology.flrw_parameters(np.float64(0.1), jax.numpy.asarray(0.5))  # numpy / 0-d JAX scalars are fine
    assert ntk.empirical_ntk(APPLY, PARAMS, X, X[:2]).shape == (3, 2)


FLOAT32_SCRIPT = """
import numpy as np
from nncosmo_helpers import cosmology, dynamics
from nncosmo_helpers.loss import PolynomialLoss
import jax
assert not jax.config.read("jax_enable_x64"), "importing the package must not switch float64 on"
for call in (lambda: dynamics.predict_homogeneous(1.0, 0.0, eta=0.1, beta=0.0, loss=PolynomialLoss(0.1, 1.0, 2), steps=[0, 5]),
             lambda: cosmology.solve_background(1.0, PolynomialLoss(0.1, 1.0, 2), 0.0, eta=0.1, beta=0.0, steps=[0, 5])):
    try:
        call()
    except RuntimeError as err:
        assert "jax.config.update('jax_enable_x64', True)" in str(err), err
    else:
        raise SystemExit("no error in float32 mode")
print("ok")
"""


def test_float32_mode_is_refused_with_a_clear_error():
    """Importing the package leaves JAX in float32; the physics then raises, naming the fix."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    proc = subprocess.run([sys.executable, "-c", FLOAT32_SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
