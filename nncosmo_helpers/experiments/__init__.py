"""Train-then-compare experiments: a network trained with :mod:`~nncosmo_helpers.train` next to the
continuum predictions of :mod:`~nncosmo_helpers.dynamics` and the physics modules.

* :mod:`.error_budget` -- an inhomogeneous network against eq. 9: discretisation (one-step lag)
  and kernel drift, and the lag-corrected continuum limit;
* :mod:`.lattice_modes` -- a trained network's NTK modes next to the lattice field's Fourier modes
  (eqs. 16 and 19) from the same initial profile.
"""

from . import error_budget, lattice_modes

__all__ = ["error_budget", "lattice_modes"]
