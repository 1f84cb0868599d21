"""nncosmo_helpers: the reference implementation behind the nncosmo book.

The package reproduces Krippendorf & Spannowsky, *A duality connecting neural network and
cosmological dynamics*: gradient descent with momentum on a neural network, in its continuous
limit, is a scalar field rolling in a flat FLRW universe dominated by vacuum energy.

The physics needs double precision: with small learning rates the per-step parameter updates are
below float32 resolution and are rounded away. Importing the package changes no global JAX setting;
switch float64 on yourself, before creating any array::

    import jax
    jax.config.update("jax_enable_x64", True)

The public physics functions raise a ``RuntimeError`` saying so when it is off. Float32 networks
remain available explicitly (``mlp(..., dtype=jnp.float32)``).

Modules, one concept each, from the bottom up (each imports only modules above it in this list):

* :mod:`~nncosmo_helpers.odes`       -- the one ODE wrapper (diffrax Dopri8) of every prediction
* :mod:`~nncosmo_helpers.loss`       -- the polynomial loss of eq. 20
* :mod:`~nncosmo_helpers.cosmology`  -- the FLRW dictionary (eqs. 4-8), expansion histories, background solver
* :mod:`~nncosmo_helpers.dynamics`   -- continuous-limit predictions (eqs. 7, 9, 15, 16, 19), no training
* :mod:`~nncosmo_helpers.network`    -- MLPs in the NTK parameterisation (init_fn/apply_fn pair)
* :mod:`~nncosmo_helpers.ntk`        -- empirical and infinite-width neural tangent kernels
* :mod:`~nncosmo_helpers.optimizers` -- momentum schedules dual to expansion histories (optax)
* :mod:`~nncosmo_helpers.train`      -- momentum gradient descent (eq. 2) as one jitted scan
* :mod:`nncosmo_helpers.experiments` -- train-then-compare experiments (backgrounds, schedules, ...)
* :mod:`nncosmo_helpers.scans`       -- the paper's figure grids, on top of the result store
* :mod:`~nncosmo_helpers.profiles`   -- the ``quick``/``paper`` run profiles

Argument checks live in ``_validate``; plotting (:mod:`nncosmo_helpers.plotting`) is independent.
"""

__version__ = "0.1.0"

from . import cosmology, dynamics, loss, network, ntk, odes, optimizers, profiles, train  # noqa: E402

__all__ = ["cosmology", "dynamics", "loss", "network", "ntk", "odes", "optimizers", "profiles", "train", "__version__"]
