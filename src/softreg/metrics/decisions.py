"""Decisions beyond the arg-max.

Abstaining on unconfident inputs (and what it buys), and the decision that minimises the
expected cost when mistakes do not all cost the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from softreg.backend import device, get_namespace
from softreg.metrics._inputs import check_probs, check_threshold, to_list

# Default thresholds of accuracy_coverage: 0, 0.01, ..., 1. A fixed grid (rather than the
# data's unique confidences) keeps the curve the same length for every model, so reports and
# plots of two models line up and the JSON stays small.
DEFAULT_THRESHOLDS = tuple(i / 100 for i in range(101))


def accuracy_coverage(
    probs: Any,
    y: Any,
    /,
    *,
    thresholds: Sequence[float] | None = None,
    xp: ModuleType | None = None,
) -> list[tuple[float, float, float | None]]:
    """Return coverage and accuracy when predicting only where ``max(probs) >= threshold``.

    Raising the threshold trades coverage for accuracy: a diagnosis tool can hand its least
    confident cases to a doctor. A confidence equal to the threshold is answered.

    Parameters
    ----------
    probs : array, shape (n_samples, n_classes)
        Class probabilities.
    y : array of int, shape (n_samples,)
        True class indices.
    thresholds : sequence of float, optional
        Confidence thresholds in [0, 1], compared in ``probs``' dtype; default the fixed grid
        0, 0.01, ..., 1 (101 points).
    xp : module, optional
        The array namespace of ``probs`` and ``y`` (found from them when None).

    Returns
    -------
    list of (float, float, float or None)
        ``(threshold, coverage, accuracy)`` per threshold: ``coverage`` is the fraction of
        rows answered, ``accuracy`` the fraction of those answered right (None when none is
        answered).

    Raises
    ------
    ValueError
        ``probs`` that are not probabilities, shapes that do not match, no rows, no
        thresholds, or a threshold outside [0, 1].
    """
    xp = get_namespace(probs, y, xp=xp)
    check_probs(probs, y, xp)
    thresholds = _checked_thresholds(thresholds)
    n = y.shape[0]
    confidence = xp.max(probs, axis=1)
    correct = xp.argmax(probs, axis=1) == y
    curve = []
    # Chunks of thresholds, so the (n, chunk) comparison stays around 4 million booleans.
    step = max(1, (1 << 22) // n)
    for begin in range(0, len(thresholds), step):
        part = thresholds[begin : begin + step]
        t = xp.asarray(part, dtype=probs.dtype, device=device(probs))
        answered = confidence[:, None] >= t[None, :]
        right = xp.logical_and(answered, correct[:, None])
        covered = to_list(xp.sum(xp.astype(answered, xp.int32), axis=0))
        hits = to_list(xp.sum(xp.astype(right, xp.int32), axis=0))
        for threshold, c, h in zip(part, covered, hits, strict=True):
            curve.append((float(threshold), c / n, h / c if c else None))
    return curve


def _checked_thresholds(thresholds: Sequence[float] | None) -> tuple[float, ...]:
    """Return ``thresholds`` (default :data:`DEFAULT_THRESHOLDS`) as a checked tuple."""
    thresholds = DEFAULT_THRESHOLDS if thresholds is None else tuple(thresholds)
    if not thresholds:
        raise ValueError("thresholds must not be empty")
    for t in thresholds:
        check_threshold(t)
    return thresholds


def selective_decision(probs: Any, threshold: float, /, *, xp: ModuleType | None = None) -> Any:
    """Return the predicted labels, or -1 (abstain) where ``max(probs) < threshold``.

    A confidence equal to the threshold is answered; ``threshold = 0`` never abstains.

    Parameters
    ----------
    probs : array, shape (n_samples, n_classes)
        Class probabilities.
    threshold : float
        The confidence in [0, 1] below which the decision is left to someone else.
    xp : module, optional
        The array namespace of ``probs`` (found from it when None).

    Returns
    -------
    array of int, shape (n_samples,)
        The arg-max class of each row, or -1.

    Raises
    ------
    ValueError
        ``probs`` that are not probabilities, or a threshold outside [0, 1].
    """
    xp = get_namespace(probs, xp=xp)
    check_probs(probs, None, xp)
    threshold = check_threshold(threshold)
    pred = xp.argmax(probs, axis=1)
    answered = xp.max(probs, axis=1) >= threshold
    return xp.where(answered, pred, xp.full_like(pred, -1))


def expected_cost_decisions(probs: Any, cost: Any, /, *, xp: ModuleType | None = None) -> Any:
    """Return the Bayes decision per row: ``argmin_j sum_i probs[:, i] * cost[i, j]``.

    With ``cost = 1 - identity`` every mistake costs the same and this is the arg-max; when
    missing a disease costs ten false alarms, "sick" wins from ``p(sick) > 1/11`` on. Ties
    go to the lower class index.

    Parameters
    ----------
    probs : array, shape (n_samples, n_classes)
        Class probabilities.
    cost : array or nested list, shape (n_classes, n_classes)
        ``cost[i, j]`` is the cost of predicting ``j`` when the truth is ``i``: finite
        numbers, as a list or an array of ``probs``' namespace.
    xp : module, optional
        The array namespace of ``probs`` (found from it when None).

    Returns
    -------
    array of int, shape (n_samples,)
        The class of least expected cost for each row.

    Raises
    ------
    ValueError
        ``probs`` that are not probabilities, or a cost matrix of another shape, not made
        of numbers, or not finite.
    """
    xp = get_namespace(probs, xp=xp)
    check_probs(probs, None, xp)
    num_classes = probs.shape[1]
    if isinstance(cost, (list, tuple)):
        try:
            cost = xp.asarray(cost, dtype=probs.dtype, device=device(probs))
        except (TypeError, ValueError) as err:
            raise ValueError(f"cost must be a (k, k) matrix of numbers: {err}") from None
    elif cost.dtype != probs.dtype:
        cost = xp.astype(cost, probs.dtype)
    if tuple(cost.shape) != (num_classes, num_classes):
        raise ValueError(
            f"cost must be ({num_classes}, {num_classes}), one row and column per "
            f"class, got shape {tuple(cost.shape)}"
        )
    if not bool(xp.all(xp.isfinite(cost))):
        raise ValueError("cost must be finite, got an inf or nan entry")
    return xp.argmin(probs @ cost, axis=1)
