"""Generate tests/data/nt_reference.json with neural-tangents 0.6.5 (independent reference values).

Run in the side environment of ``tools/nt_reference/requirements.txt`` (see the README next to
this file); never import neural-tangents from the package or the tests.

    python3 -m venv .nt-venv && .nt-venv/bin/pip install -r tools/nt_reference/requirements.txt
    .nt-venv/bin/python tools/nt_reference/generate.py

Contents
--------
``kernels``: the infinite-width NTK ``kernel_fn(x, x, 'ntk')`` of
``stax.serial(Dense(w, W_std, b_std), Erf()|Relu(), ..., Dense(1, W_std, b_std))`` (NTK
parameterisation; stax's ``Erf()`` is erf(x), ``Relu()`` is max(x, 0)) for every combination of
activation, 1/2/5 hidden layers, W_std in {1, 0.1}, b_std in {0.001, 0.05, 0.5} on an 11-point 1-D
grid, plus a few 3-D input cases (stax's input covariance is x . x' / d).

``dynamics``: ``nt.predict.gradient_descent(loss, k, y_train, learning_rate=eta, momentum=beta)``
with the package's loss convention (dataset loss = MEAN over points of m^2/2 (f - f0)^n).

Time convention of neural-tangents' momentum ODE (read from neural_tangents/_src/predict.py,
``gradient_descent``): when ``momentum`` is given it sets

    lr'  = learning_rate ** 0.5 = sqrt(eta),
    mom' = (momentum - 1) / lr' = (beta - 1) / sqrt(eta)            (= our beta_tilde),

and integrates, in absolute time tau = lr' * t where ``t`` is the argument of ``predict_fn``,
the state (f, q) with

    df/dtau = q,    dq/dtau = -K grad_f loss(f) + mom' q,    f(0) = fx_train_0,  q(0) = 0.

That is  f'' + (1 - beta)/sqrt(eta) f' + K grad_f loss = 0  with f'(0) = 0 and tau = t sqrt(eta):
exactly the package's continuum equation (eq. 9 of the paper with the damping sign) and its time
t = i sqrt(eta). So neural-tangents' ``t`` IS our step number i, the initial velocity is zero in
both, and no conversion is needed: the ``steps`` recorded below are passed unchanged to both
``predict_fn(t=steps, ...)`` and ``dynamics.predict_linearized(..., steps=steps)``.
(For plain GD, momentum=None, NT would instead use tau = eta * t; we do not use that branch.)

The loss passed to NT is ``lambda fx, y: mean(m^2/2 (fx - y)^n)`` with y_train = f0, so
grad_f loss = L'(f_i)/N, as in ``PolynomialLoss.grad_f``.

NT solves the ODE with ``jax.experimental.ode.odeint`` (Dormand-Prince 5) at its default
tolerances rtol = atol = 1.4e-8; those solutions differ from the tight ones below by at most
4e-8 (absolute, for trajectories of scale 0.1-10). To make the stored reference clearly better
than the 1e-6 test tolerance we rebind the ``odeint``
that ``neural_tangents._src.predict`` calls to the same jax function with rtol = atol = 1e-12
(the ODE, the state and the time convention stay NT's own). The maximum difference between the
default-tolerance and the tight solution is recorded per case (``nt_default_tol_max_dev``).
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import pathlib
import types

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import neural_tangents as nt  # noqa: E402
import numpy as np  # noqa: E402
from jax.experimental import ode as jax_ode  # noqa: E402
from neural_tangents import stax  # noqa: E402
from neural_tangents._src import predict as nt_predict  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "nt_reference.json"
WIDTH = 512  # irrelevant for the infinite-width kernel; stax needs a number
TIGHT_TOL = 1e-12


def network(activation: str, hidden_layers: int, W_std: float, b_std: float):
    act = {"erf": stax.Erf, "relu": stax.Relu}[activation]
    layers = []
    for _ in range(hidden_layers):
        layers += [stax.Dense(WIDTH, W_std=W_std, b_std=b_std, parameterization="ntk"), act()]
    layers.append(stax.Dense(1, W_std=W_std, b_std=b_std, parameterization="ntk"))
    return stax.serial(*layers)


def ntk(x, activation, hidden_layers, W_std, b_std):
    _, _, kernel_fn = network(activation, hidden_layers, W_std, b_std)
    return np.asarray(kernel_fn(x, x, "ntk"), dtype=np.float64)


def grid_1d():
    # 9 points with spacing 0.25 (contains 0 and +-0.5) plus +-0.1: 11 points in [-1, 1].
    pts = np.concatenate([np.linspace(-1.0, 1.0, 9), [-0.1, 0.1]])
    return np.sort(pts)[:, None]


def kernels():
    x1 = grid_1d()
    out = []
    for activation in ("erf", "relu"):
        for hidden_layers in (1, 2, 5):
            for W_std in (1.0, 0.1):
                for b_std in (0.001, 0.05, 0.5):
                    k = ntk(jnp.asarray(x1), activation, hidden_layers, W_std, b_std)
                    out.append(dict(activation=activation, hidden_layers=hidden_layers, W_std=W_std,
                                    b_std=b_std, x=x1.tolist(), ntk=k.tolist()))
    # 3-D inputs: checks the x . x' / d normalisation of the input covariance.
    x3 = np.array([[0.0, 0.0, 0.0], [1.0, -0.5, 0.25], [-0.3, 0.8, 1.2], [2.0, 0.1, -1.0],
                   [0.5, 0.5, 0.5], [-1.5, -0.2, 0.7]])
    for activation, hidden_layers, W_std, b_std in (("erf", 2, 1.0, 0.05), ("relu", 2, 1.0, 0.05),
                                                    ("erf", 5, 0.1, 0.5), ("relu", 1, 1.0, 0.001)):
        k = ntk(jnp.asarray(x3), activation, hidden_layers, W_std, b_std)
        out.append(dict(activation=activation, hidden_layers=hidden_layers, W_std=W_std, b_std=b_std,
                        x=x3.tolist(), ntk=k.tolist()))
    return out


def nt_trajectory(kernel, f_init, eta, beta, m, f0, n, steps, tol):
    """f at the step numbers ``steps`` from NT's momentum ODE, shape (len(steps), N)."""
    def loss(fx, y):
        return jnp.mean(0.5 * m**2 * (fx - y) ** n)

    kernel = jnp.asarray(kernel, jnp.float64)
    y_train = jnp.full((kernel.shape[0], 1), f0, jnp.float64)
    saved = nt_predict.ode
    if tol is not None:
        nt_predict.ode = types.SimpleNamespace(odeint=functools.partial(jax_ode.odeint, rtol=tol, atol=tol))
    try:
        predict_fn = nt.predict.gradient_descent(loss, kernel, y_train, learning_rate=eta, momentum=beta)
        f = predict_fn(jnp.asarray(steps, jnp.float64), jnp.asarray(f_init, jnp.float64)[:, None])
    finally:
        nt_predict.ode = saved
    return np.asarray(f, np.float64)[..., 0]


def dynamics():
    # PSD kernels: infinite-width NTKs (erf, 2 hidden layers, W_std 1, b_std 0.05).
    arch = dict(activation="erf", hidden_layers=2, W_std=1.0, b_std=0.05)
    x5 = np.linspace(-1.0, 1.0, 5)[:, None]
    kernel_5 = ntk(jnp.asarray(x5), **arch)
    x1 = np.ones((1, 1))
    kernel_1 = ntk(jnp.asarray(x1), **arch)  # alpha at x0 = 1 (~1.1; at the origin it is only ~0.02)
    f_init_5 = np.array([0.1, -0.2, 0.05, 0.3, -0.1])
    f_init_1 = np.array([0.2])
    cases = [  # (eta, beta, m, f0, n, last step); large m makes the N = 1 motion underdamped
        (1 / 9, 0.0, 0.2, 1.0, 2, 3000),
        (1 / 9, 0.0, 2.0, 1.0, 2, 300),
        (0.0278, 0.5, 0.2, 1.0, 2, 3000),
        (0.4444, 0.0, 0.1, 1.0, 2, 3000),
        (0.4444, 0.0, 1.0, 1.0, 2, 500),
        (1 / 9, 0.0, 0.2, 10.0, 2, 1000),
        (1 / 9, 0.0, 0.5, 1.0, 4, 3000),
        (0.0278, 0.5, 0.5, 1.0, 4, 3000),
    ]
    out = []
    for eta, beta, m, f0, n, last in cases:
        steps = np.linspace(0, last, 31)
        for kernel, f_init, x in ((kernel_1, f_init_1, x1), (kernel_5, f_init_5, x5)):
            f = nt_trajectory(kernel, f_init, eta, beta, m, f0, n, steps, TIGHT_TOL)
            f_default = nt_trajectory(kernel, f_init, eta, beta, m, f0, n, steps, None)
            scale = float(np.max(np.abs(f - f[0])))
            out.append(dict(
                eta=eta, beta=beta, loss=dict(m=m, f0=f0, n=n), kernel_arch=arch, x=x.tolist(),
                kernel=kernel.tolist(), f_init=f_init.tolist(), steps=steps.tolist(), f=f.tolist(),
                trajectory_scale=scale,
                nt_default_tol_max_dev=float(np.max(np.abs(f - f_default))),
            ))
    return out


def main():
    data = dict(
        meta=dict(
            generator="tools/nt_reference/generate.py",
            neural_tangents=nt.__version__, jax=jax.__version__, numpy=np.__version__,
            date=datetime.date.today().isoformat(), precision="float64",
            ode_tolerance=TIGHT_TOL,
            time_convention=("NT momentum ODE: tau = sqrt(eta) * t, friction (1 - beta)/sqrt(eta), "
                             "zero initial velocity; NT's t equals the package's step number i."),
        ),
        kernels=kernels(),
        dynamics=dynamics(),
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT) / 1024:.0f} KB): {len(data['kernels'])} kernels, "
          f"{len(data['dynamics'])} trajectories")
    for d in data["dynamics"]:
        print(f"  eta={d['eta']:.4g} beta={d['beta']} loss={d['loss']} N={len(d['f_init'])}: "
              f"scale {d['trajectory_scale']:.3g}, NT default-tol deviation {d['nt_default_tol_max_dev']:.2e}")


if __name__ == "__main__":
    main()
