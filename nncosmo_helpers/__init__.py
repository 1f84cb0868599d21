"""nncosmo_helpers: the reference implementation behind the nncosmo book.

The package reproduces Krippendorf & Spannowsky, *A duality connecting neural network and
cosmological dynamics*: gradient descent with momentum on a neural network, in its continuous
limit, is a scalar field rolling in a flat FLRW universe dominated by vacuum energy.

Importing the package switches JAX to double precision (``jax_enable_x64``). The physics needs it:
with small learning rates the per-step parameter updates are below float32 resolution and are
rounded away. Float32 remains available explicitly (``mlp(..., dtype=jnp.float32)``).

Modules, one concept each:

* :mod:`~nncosmo_helpers.network`   -- MLPs in the NTK parameterisation (init_fn/apply_fn pair)
* :mod:`~nncosmo_helpers.ntk`       -- empirical and infinite-width neural tangent kernels
* :mod:`~nncosmo_helpers.loss`      -- the polynomial loss of eq. 20
* :mod:`~nncosmo_helpers.cosmology` -- the FLRW dictionary (eqs. 6-8) and background solvers
* :mod:`~nncosmo_helpers.train`     -- momentum gradient descent (eq. 2) as one jitted scan
* :mod:`~nncosmo_helpers.dynamics`  -- continuous-limit predictions (eqs. 4-16)
* :mod:`~nncosmo_helpers.profiles`  -- the ``quick``/``paper`` run profiles
"""

import jax

jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"

from . import cosmology, dynamics, loss, network, ntk, profiles, train  # noqa: E402

__all__ = ["cosmology", "dynamics", "loss", "network", "ntk", "profiles", "train", "__version__"]
