"""Figures: the book's training curves and prediction grids. Reads results, never trains.

matplotlib is imported only when a figure is drawn, and only its object-oriented API is used
(``Figure``, no pyplot state), so drawing works the same in a terminal, a script and Jupyter.
Every ``plot_*`` function returns a ``matplotlib.figure.Figure``; :func:`save_figure` writes
it, and :func:`new_figure` starts one for figures drawn elsewhere (a sweep's, say).

The modules: :mod:`~softreg.plotting.figure` (a new figure, its bytes, its files),
:mod:`~softreg.plotting.curves` (training curves, live during training),
:mod:`~softreg.plotting.images` (image grids and predictions) and
:mod:`~softreg.plotting.evaluation` (confusion matrix, reliability, accuracy-coverage).
"""

from __future__ import annotations

from softreg.plotting.curves import CURVES, LiveCurves, in_notebook, plot_curves
from softreg.plotting.evaluation import (
    plot_accuracy_coverage,
    plot_confusion_matrix,
    plot_reliability,
)
from softreg.plotting.figure import figure_bytes, new_figure, save_figure
from softreg.plotting.images import plot_predictions, show_images

__all__ = [
    "CURVES",
    "LiveCurves",
    "figure_bytes",
    "in_notebook",
    "new_figure",
    "plot_accuracy_coverage",
    "plot_confusion_matrix",
    "plot_curves",
    "plot_predictions",
    "plot_reliability",
    "save_figure",
    "show_images",
]
