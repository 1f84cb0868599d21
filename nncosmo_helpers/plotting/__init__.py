"""Plotting for the nncosmo book: one style for every chapter, one module per topic.

Call :func:`use_style` once per chapter (``import nncosmo_helpers.plotting as nplt; nplt.use_style()``).
Figure functions return the matplotlib ``Figure`` so chapters can ``glue`` it with a caption.
Each topic module (``continuous``, ``background``, ``perturbations``, ``scans``, ...) holds the figures
of one chapter.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

STYLE = Path(__file__).with_name("nncosmo.mplstyle")

#: Colours used consistently across chapters.
COLORS = {"network": "#1f77b4", "prediction": "#d62728", "field": "#2ca02c", "float32": "#ff7f0e", "float64": "#1f77b4"}


def use_style() -> None:
    """Activate the book's matplotlib style (``nncosmo.mplstyle``)."""
    plt.style.use(STYLE)


def new_figure(ncols: int = 1, nrows: int = 1, *, width: float = 6.4, height: float = 4.0, **kwargs):
    """A figure with the book's style and size conventions; returns ``(fig, axes)``."""
    use_style()
    return plt.subplots(nrows, ncols, figsize=(width, height), **kwargs)


def finish(fig):
    """Close the figure in pyplot's registry (so it is not shown twice) and return it for ``glue``."""
    plt.close(fig)
    return fig
