"""Decisions under uncertainty: what to do beyond predicting the most likely label.

The chapter asks whether predicting the most likely label is always right (think of a medical
diagnosis). These tools look past the arg-max: how often the label is among the top ``k``
scores, where the errors go (the confusion matrix), whether a confidence of 0.9 is right nine
times in ten (calibration, and temperature scaling to repair it), what abstaining on
unconfident inputs buys, and which decision minimises the expected cost when mistakes do not
all cost the same.

As in :mod:`softreg.ops`, the numeric functions take arrays of one array-API namespace and an
optional keyword ``xp``; nothing here imports NumPy. Shapes: ``scores``, ``logits`` and
``probs`` are ``(n_samples, n_classes)``, ``y`` is ``(n_samples,)`` of integer class indices.
Small results come back as Python floats and lists, ready for printing and JSON.

The functions live in four modules, all importable from here:

- :mod:`softreg.metrics.classification`: :func:`top_k_accuracy`, :func:`confusion_matrix`
- :mod:`softreg.metrics.calibration`: :class:`CalibrationBins`, :func:`calibration_bins`,
  :func:`ece_from_bins`, :func:`expected_calibration_error`, :func:`fit_temperature`
- :mod:`softreg.metrics.decisions`: :func:`accuracy_coverage`, :func:`selective_decision`,
  :func:`expected_cost_decisions`
- :mod:`softreg.metrics.evaluation`: :func:`evaluation_report`, all of the above at once
"""

from __future__ import annotations

from softreg.metrics._inputs import PROB_SUM_TOL
from softreg.metrics.calibration import (
    LOG_T_BOUND,
    LOG_T_TOL,
    CalibrationBins,
    calibration_bins,
    ece_from_bins,
    expected_calibration_error,
    fit_temperature,
)
from softreg.metrics.classification import DEFAULT_TOP_K, confusion_matrix, top_k_accuracy
from softreg.metrics.decisions import (
    DEFAULT_THRESHOLDS,
    accuracy_coverage,
    expected_cost_decisions,
    selective_decision,
)
from softreg.metrics.evaluation import evaluation_report

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DEFAULT_TOP_K",
    "LOG_T_BOUND",
    "LOG_T_TOL",
    "PROB_SUM_TOL",
    "CalibrationBins",
    "accuracy_coverage",
    "calibration_bins",
    "confusion_matrix",
    "ece_from_bins",
    "evaluation_report",
    "expected_calibration_error",
    "expected_cost_decisions",
    "fit_temperature",
    "selective_decision",
    "top_k_accuracy",
]
