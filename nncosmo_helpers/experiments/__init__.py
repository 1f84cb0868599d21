"""Train-then-compare experiments: a network trained with :mod:`~nncosmo_helpers.train` next to the
continuum predictions of :mod:`~nncosmo_helpers.dynamics`, :mod:`~nncosmo_helpers.cosmology` and
the other physics modules.

The layer above training and the physics (which import nothing from here); the scans
(:mod:`nncosmo_helpers.scans`) sit above it. One module per concept:

* :mod:`.background` -- a homogeneous network against eq. 7 and the two backgrounds of eq. 6;
* :mod:`.schedules`  -- momentum schedules against their FLRW field equations, Nesterov's limit,
  the Friedmann optimiser's history;
* :mod:`.benchmarks` -- optimisers on equal step budgets (polynomial losses, digits);
* :mod:`.precision`  -- alpha over seeds, kernel drift, float32 rounding of the updates;
* :mod:`.modes`      -- the verdicts on the mean-field and mode equations over trained networks;
* :mod:`.error_budget` -- an inhomogeneous network against eq. 9: discretisation (one-step lag)
  and kernel drift, and the lag-corrected continuum limit;
* :mod:`.lattice_modes` -- a trained network's NTK modes next to the lattice field's Fourier modes
  (eqs. 16 and 19) from the same initial profile.

Results are NamedTuples (pytrees); metrics are their properties or functions here.
"""

from . import background, benchmarks, error_budget, lattice_modes, modes, precision, schedules

__all__ = [
    "background",
    "benchmarks",
    "error_budget",
    "lattice_modes",
    "modes",
    "precision",
    "schedules",
]
