"""Trained inhomogeneous networks against the mean-field and mode equations (chapter "Perturbations").

The comparisons themselves are :class:`~nncosmo_helpers.dynamics.ModeComparison` (eqs. 14-16 and the
frozen-kernel eq. 9); this module turns a set of them into the numbers the chapter's verdicts rest on.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import dynamics


def freezing_numbers(comparison, *, curvature, t_final, friction) -> np.ndarray:
    """kappa_i = (lambda_i/N) L'' T / 3H for every eigenvalue of ``comparison`` (the chapter's freezing
    number: a mode with kappa_i << 1 cannot move within the run of length ``t_final``)."""
    return comparison.eigenvalues_over_n * curvature * t_final / friction


class ModesSummary(NamedTuple):
    """The verdicts on eqs. 15/16 over a set of trained networks (see :func:`modes_summary`).

    ``uniform``/``non_uniform``: keys of the networks whose leading eigenvector v_1 is (not) uniform;
    ``mean_error``, ``mode_error``, ``mode_displacement``: the worst eq. 15 mean-field error, eq. 16 mode
    error and mode displacement over the uniform-v_1 networks; ``most_displaced``: the key of the
    uniform-v_1 network whose modes moved most; ``frozen_change``: the largest relative change of a
    mode with freezing number below the threshold (and a non-negligible amplitude) in those networks;
    ``reference_error``: the worst error of the frozen-kernel eq. 9 over all networks.
    """

    uniform: list
    non_uniform: list
    mean_error: float
    mode_error: float
    mode_displacement: float
    most_displaced: tuple
    frozen_change: float
    reference_error: float


def leading_mode_of(comparison, *, degeneracy=dynamics.DEGENERACY_RATIO) -> str:
    """:func:`~nncosmo_helpers.dynamics.leading_mode_class` of the kernel behind ``comparison``."""
    lam = comparison.eigenvalues_over_n
    ratio = lam[0] / lam[1] if lam[1] > 0 else np.inf
    return str(dynamics.leading_mode_class(comparison.uniform_overlap, ratio, degeneracy=degeneracy)[()])


def modes_summary(comparisons: dict, kappa: dict, *, degeneracy=dynamics.DEGENERACY_RATIO, frozen_kappa=0.01,
                  min_amplitude=1e-2) -> ModesSummary:
    """Summarise ``comparisons`` ({key: ModeComparison}) with the freezing numbers ``kappa`` ({key: kappa_i
    of the compared modes i >= 2}). Whether v_1 is uniform is decided by
    :func:`~nncosmo_helpers.dynamics.leading_mode_class` (``degeneracy``: its lambda_1/lambda_2
    threshold, :func:`~nncosmo_helpers.dynamics.degeneracy_ratio` of the networks' width); a mode is
    frozen when kappa < ``frozen_kappa``, and it counts only if its initial amplitude exceeds
    ``min_amplitude`` (smaller ones sit at the level of the kernel drift)."""
    cls = {k: leading_mode_of(c, degeneracy=degeneracy) for k, c in comparisons.items()}
    uni = [k for k in comparisons if cls[k] == "uniform"]
    non = [k for k in comparisons if cls[k] == "not uniform"]
    frozen = max(
        np.abs(c.relative_change_observed[(kappa[k] < frozen_kappa) & (np.abs(c.modes_observed[0]) > min_amplitude)]).max(initial=0.0)
        for k, c in comparisons.items() if k in uni
    )
    return ModesSummary(
        uniform=uni, non_uniform=non,
        mean_error=max(comparisons[k].mean_error for k in uni),
        mode_error=max(comparisons[k].mode_error.max() for k in uni),
        mode_displacement=max(comparisons[k].mode_displacement.max() for k in uni),
        most_displaced=max(uni, key=lambda k: comparisons[k].mode_displacement.max()),
        frozen_change=frozen,
        reference_error=max(max(c.mean_error_reference, c.mode_error_reference.max()) for c in comparisons.values()),
    )
