"""Checks of what the metrics are given.

Scores, probabilities and labels of matching shapes, thresholds and temperatures; and the one
transfer of a small result back to Python numbers.
"""

from __future__ import annotations

import math
import numbers
from types import ModuleType
from typing import Any

from softreg import ops
from softreg.backend import to_numpy

# How far rows of ``probs`` may sum from 1 (float32 rounding over many classes stays far below).
PROB_SUM_TOL = 1e-3


def check_scores(scores: Any, y: Any, xp: ModuleType, name: str) -> int:
    """Check ``(n, k)`` scores and ``(n,)`` labels: at least one row, labels in range.

    Returns the number of classes ``k``; ``y=None`` checks the scores alone.
    """
    if scores.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_classes), got shape {tuple(scores.shape)}"
        )
    if y is None:
        return scores.shape[1]
    if y.ndim != 1 or y.shape[0] != scores.shape[0]:
        raise ValueError(
            f"labels must be 1-D with one entry per row of {name} "
            f"({scores.shape[0]}), got shape {tuple(y.shape)}"
        )
    if y.shape[0] == 0:
        raise ValueError(f"{name} is empty: the metric is undefined")
    ops.check_labels(y, scores.shape[1], xp=xp)
    return scores.shape[1]


def check_probs(probs: Any, y: Any, xp: ModuleType) -> None:
    """Check rows of probabilities: finite, in [0, 1], summing to 1.

    Catches logits passed by mistake, which would otherwise give a meaningless calibration.
    """
    check_scores(probs, y, xp, "probs")
    if probs.shape[0] == 0:
        raise ValueError("probs is empty: the metric is undefined")
    if not bool(xp.all(xp.isfinite(probs))):
        raise ValueError("probs must be finite, got an inf or nan entry")
    low, high = float(xp.min(probs)), float(xp.max(probs))
    if low < 0 or high > 1 + PROB_SUM_TOL:
        raise ValueError(
            f"probs must lie in [0, 1], got {low if low < 0 else high} "
            f"(pass softmax(logits), not logits)"
        )
    error = xp.abs(xp.sum(probs, axis=1) - 1)
    if float(xp.max(error)) > PROB_SUM_TOL:
        worst = int(xp.argmax(error))
        total = float(xp.sum(probs[worst, :]))
        raise ValueError(
            f"probs row {worst} sums to {total:.6g}, not 1 (pass softmax(logits), not logits)"
        )


def check_threshold(value: Any) -> float:
    """Return ``value`` as a float after checking that it is a probability in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"threshold must be a probability in [0, 1], got {value!r}")
    return float(value)


def check_temperature(value: Any) -> float:
    """Return ``value`` as a float after checking that it is a finite number > 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not (math.isfinite(value) and value > 0)
    ):
        raise ValueError(f"temperature must be a finite number > 0, got {value!r}")
    return float(value)


def to_list(x: Any) -> list[Any]:
    """Return a small result array as Python numbers, in one transfer from the device."""
    return to_numpy(x).tolist()
