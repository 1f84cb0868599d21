"""The structured (layer-wise) empirical NTK against the generic Jacobian path.

The Jacobian path (``jax.jacrev`` of the flax network, J J'^T) shares no code with the structured
path except the network definition, so agreement checks the layer-wise formula
Theta = sum_l (delta_l delta_l'^T) o (W_std^2/n_{l-1} H_{l-1} H_{l-1}'^T + b_std^2).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nncosmo_helpers import network, ntk

TOL = {"float64": 1e-11, "float32": 2e-5}


def _net(activation, hidden_layers, dtype, width=24, input_dim=3, W_std=1.3, b_std=0.4, seed=0):
    init_fn, apply_fn = network.mlp(width=width, hidden_layers=hidden_layers, activation=activation,
                                    W_std=W_std, b_std=b_std, dtype=dtype)
    return apply_fn, init_fn(jax.random.PRNGKey(seed), input_dim)


def _inputs(n, d, dtype, seed):
    return jax.random.normal(jax.random.PRNGKey(seed), (n, d), dtype)


CASES = [  # (activation, hidden layers, dtype): both activations, depths 0-4, both precisions
    ("erf", 0, "float64"), ("erf", 1, "float32"), ("erf", 2, "float64"), ("erf", 4, "float32"),
    ("relu", 1, "float64"), ("relu", 2, "float32"), ("relu", 4, "float64"),
]


@pytest.mark.parametrize("activation, hidden_layers, dtype", CASES)
def test_structured_equals_jacobian(activation, hidden_layers, dtype):
    apply_fn, params = _net(activation, hidden_layers, dtype)
    x1 = _inputs(7, 3, dtype, 1)  # <= network.FEW_POINTS: matrix-vector form of the backward pass
    x2 = _inputs(network.FEW_POINTS + 4, 3, dtype, 2)  # matrix-matrix form
    for a, b in ((x1, x2), (x1, None), (x2, None)):  # x1 != x2 (two passes), symmetric one-pass path
        s = ntk.empirical_ntk(apply_fn, params, a, b, implementation="structured")
        j = ntk.empirical_ntk(apply_fn, params, a, b, implementation="jacobian")
        assert s.dtype == j.dtype == jnp.dtype(dtype)
        assert s.shape == j.shape == (a.shape[0], (a if b is None else b).shape[0])
        np.testing.assert_allclose(np.asarray(s), np.asarray(j), rtol=TOL[dtype], atol=TOL[dtype] * float(jnp.abs(j).max()))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_symmetric_call_forms_agree(dtype):
    """x2=None, x2 is x1 and an equal copy of x1 (two-pass path) give the same symmetric PSD kernel."""
    apply_fn, params = _net("erf", 2, dtype, width=40, input_dim=2)
    x = _inputs(network.FEW_POINTS + 3, 2, dtype, 3)
    k_none = np.asarray(ntk.empirical_ntk(apply_fn, params, x))
    k_same = np.asarray(ntk.empirical_ntk(apply_fn, params, x, x))
    k_copy = np.asarray(ntk.empirical_ntk(apply_fn, params, x, jnp.array(np.asarray(x))))
    assert k_none.dtype == np.dtype(dtype)
    np.testing.assert_allclose(k_none, k_same, rtol=TOL[dtype])
    np.testing.assert_allclose(k_none, k_copy, rtol=TOL[dtype])
    np.testing.assert_allclose(k_none, k_none.T, rtol=TOL[dtype])
    assert np.linalg.eigvalsh(k_none.astype(np.float64)).min() > -10 * TOL[dtype] * np.abs(k_none).max()
    a = float(ntk.alpha(apply_fn, params, x[3:4]))
    assert a == pytest.approx(k_none[3, 3], rel=TOL[dtype])


def test_input_dimension_mismatch_is_rejected():
    apply_fn, params = _net("erf", 1, "float64")
    with pytest.raises(ValueError):
        ntk.empirical_ntk(apply_fn, params, jnp.zeros((3, 2)))
    with pytest.raises(ValueError):
        ntk.empirical_ntk(apply_fn, params, jnp.zeros((3, 3)), jnp.zeros((2, 2)))
