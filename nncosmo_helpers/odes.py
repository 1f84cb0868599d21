"""The one ODE wrapper of the package: every continuum prediction integrates through :func:`solve`.

All the differential equations of the book (the FLRW background, eqs. 6-8 of the paper; the
continuum limits of momentum gradient descent, eqs. 7, 9, 15, 16; the field modes of eqs. 17-19 and
the lattice field) are integrated with the same adaptive 8th-order Dormand-Prince solver and the
same tolerances, so that a change of integrator or of accuracy is made in one place. The functions
here are plain JAX: call them inside ``jax.jit`` (the callers do) and they run unchanged on a GPU.
"""

from __future__ import annotations

import diffrax

RTOL = 1e-10
ATOL = 1e-12
MAX_STEPS = 2_000_000


def solve(vector_field, y0, ts, args=None, *, t0=0.0, rtol=RTOL, atol=ATOL, max_steps=MAX_STEPS):
    """Integrate ``dy/dt = vector_field(t, y, args)`` from ``t0`` and return ``y`` at the times ``ts``.

    ``y0`` may be any pytree of arrays; the result has the same structure with a leading axis of
    length ``len(ts)``. ``ts`` must be increasing with ``ts[-1] > t0``. Dopri8 with a PID step-size
    controller at relative/absolute tolerances ``rtol``/``atol``.
    """
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field),
        diffrax.Dopri8(),
        t0=t0,
        t1=ts[-1],
        dt0=None,
        y0=y0,
        args=args,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
    )
    return sol.ys


def solve_second_order(force, y0, v0, ts, friction, args=None, *, t0=0.0, rtol=RTOL, atol=ATOL):
    """Solve ``y'' + friction(t, y, y', args) * y' = force(t, y, args)`` and return ``(y, y')`` at ``ts``.

    The damped second-order equations of the duality (eq. 4/7/9 of the paper and their relatives) in
    one form: ``friction`` is 3H(t) (a constant for de Sitter), ``force`` is minus the gradient of
    the potential.
    """

    def vector_field(t, state, a):
        y, v = state
        return v, force(t, y, a) - friction(t, y, v, a) * v

    return solve(vector_field, (y0, v0), ts, args, t0=t0, rtol=rtol, atol=atol)
