"""Train-then-compare experiments: a network trained with :mod:`~nncosmo_helpers.train` next to the
continuum predictions of :mod:`~nncosmo_helpers.dynamics` and the physics modules.

* :mod:`.error_budget` -- an inhomogeneous network against eq. 9: discretisation (one-step lag)
  and kernel drift, and the lag-corrected continuum limit.
"""

from . import error_budget

__all__ = ["error_budget"]
