"""Calibration: whether a confidence of 0.9 is right nine times in ten.

Reliability-diagram bins and the expected calibration error (ECE) measure it; temperature
scaling (Guo et al. 2017) repairs it without moving any prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from softreg import ops
from softreg.backend import device, get_namespace
from softreg.checks import check_int
from softreg.metrics._inputs import check_probs, check_scores, to_list

# Temperature is searched in log T over [-LOG_T_BOUND, LOG_T_BOUND] (T in [0.0067, 148]).
LOG_T_BOUND = 5.0
LOG_T_TOL = 1e-6


@dataclass(frozen=True)
class CalibrationBins:
    """Reliability-diagram data: equal-width bins of the top-class probability.

    Bin ``m`` holds the rows whose confidence lies in ``(edges[m], edges[m+1]]`` (the first
    bin also takes exactly 0), as in Guo et al. 2017.

    Attributes
    ----------
    edges : tuple of float
        ``n_bins + 1`` bin edges, from 0 to 1.
    confidence : tuple of float or None
        Per bin, the mean top-class probability of its rows (None for an empty bin).
    accuracy : tuple of float or None
        Per bin, the fraction of its rows predicted right (None for an empty bin).
    count : tuple of int
        Per bin, the number of rows.
    """

    edges: tuple[float, ...]
    confidence: tuple[float | None, ...]
    accuracy: tuple[float | None, ...]
    count: tuple[int, ...]

    @property
    def n(self) -> int:
        """The number of rows in all bins together."""
        return sum(self.count)

    def ece(self) -> float:
        """Return the expected calibration error of these bins.

        Returns
        -------
        float
            ``sum_m count_m / n * |accuracy_m - confidence_m|``, see :func:`ece_from_bins`.
        """
        return ece_from_bins(self)

    def to_dict(self) -> dict[str, list[Any]]:
        """Return the bins as JSON-ready lists.

        Returns
        -------
        dict
            ``{"edges", "confidence", "accuracy", "count"}``, each a list.
        """
        return {
            "edges": list(self.edges),
            "confidence": list(self.confidence),
            "accuracy": list(self.accuracy),
            "count": list(self.count),
        }


def calibration_bins(
    probs: Any, y: Any, /, *, n_bins: int = 15, xp: ModuleType | None = None
) -> CalibrationBins:
    """Return the mean confidence, accuracy and count per equal-width bin of the confidence.

    The confidence of a row is its top-class probability, ``max(probs, axis=1)``. A
    calibrated model is right 90% of the time when it says 0.9: its bins lie on the
    diagonal of the reliability diagram. Softmax networks are often over-confident.

    Parameters
    ----------
    probs : array, shape (n_samples, n_classes)
        Class probabilities: finite, in [0, 1], each row summing to 1.
    y : array of int, shape (n_samples,)
        True class indices.
    n_bins : int, default 15
        The number of equal-width bins over [0, 1].
    xp : module, optional
        The array namespace of ``probs`` and ``y`` (found from them when None).

    Returns
    -------
    CalibrationBins
        The bins, their edges and what they hold.

    Raises
    ------
    ValueError
        ``probs`` that are not probabilities (logits passed by mistake, say), shapes that do
        not match, no rows, or ``n_bins`` not an integer >= 1.
    """
    xp = get_namespace(probs, y, xp=xp)
    check_probs(probs, y, xp)
    n_bins = check_int("n_bins", n_bins, minimum=1)
    confidence = xp.max(probs, axis=1)
    correct = xp.astype(xp.argmax(probs, axis=1) == y, probs.dtype)
    edges = tuple(m / n_bins for m in range(n_bins + 1))
    # Bin of each row: the number of inner edges strictly below its confidence, compared in
    # probs' dtype. So bins are right-closed, the first takes 0, and the last takes a float32
    # row maximum rounded a hair above 1.
    inner = xp.asarray(edges[1:-1], dtype=probs.dtype, device=device(probs))
    index = xp.sum(xp.astype(confidence[:, None] > inner[None, :], xp.int32), axis=1)
    members = index[:, None] == xp.arange(n_bins, dtype=xp.int32, device=device(probs))[None, :]
    counts = to_list(xp.sum(xp.astype(members, xp.int32), axis=0))
    conf_sums = to_list(_masked_sum(members, confidence, xp))
    acc_sums = to_list(_masked_sum(members, correct, xp))
    conf_out = tuple(s / c if c else None for s, c in zip(conf_sums, counts, strict=True))
    acc_out = tuple(s / c if c else None for s, c in zip(acc_sums, counts, strict=True))
    return CalibrationBins(edges, conf_out, acc_out, tuple(int(c) for c in counts))


def ece_from_bins(bins: CalibrationBins) -> float:
    """Return the expected calibration error of already computed bins.

    Parameters
    ----------
    bins : CalibrationBins
        Bins from :func:`calibration_bins`.

    Returns
    -------
    float
        ``sum_m count_m / n * |accuracy_m - confidence_m|`` over the non-empty bins.

    Raises
    ------
    ValueError
        The bins hold no rows.
    """
    n = bins.n
    if n == 0:
        raise ValueError("the bins are empty: ECE is undefined")
    return sum(
        count / n * abs(acc - conf)
        for count, acc, conf in zip(bins.count, bins.accuracy, bins.confidence, strict=True)
        if count
    )


def expected_calibration_error(
    probs: Any, y: Any, /, *, n_bins: int = 15, xp: ModuleType | None = None
) -> float:
    """Return the expected calibration error (ECE, Guo et al. 2017).

    The gap between confidence and accuracy, averaged over equal-width confidence bins
    weighted by their share of the rows. 0 is perfect.

    Parameters
    ----------
    probs : array, shape (n_samples, n_classes)
        Class probabilities.
    y : array of int, shape (n_samples,)
        True class indices.
    n_bins : int, default 15
        The number of equal-width bins over [0, 1].
    xp : module, optional
        The array namespace of ``probs`` and ``y`` (found from them when None).

    Returns
    -------
    float
        The ECE, in [0, 1].

    Raises
    ------
    ValueError
        As :func:`calibration_bins`.
    """
    return ece_from_bins(calibration_bins(probs, y, n_bins=n_bins, xp=xp))


def fit_temperature(logits: Any, y: Any, /, *, xp: ModuleType | None = None) -> float:
    """Return the temperature ``T > 0`` minimising the mean NLL of ``softmax(logits / T)``.

    Fit it on held-out data, never on the test set: it rescales confidence without moving the
    arg-max, so accuracy stays and calibration usually improves (Guo et al. 2017).

    With ``b = 1 / T`` the NLL ``mean(logsumexp(b z) - b z_y)`` is convex in ``b``: its
    derivative ``mean(E_softmax(b z)[z] - z_y)`` is non-decreasing. So the NLL is unimodal in
    ``log T``, and bisection on the sign of that derivative finds the minimum without step
    sizes to tune, to ``1e-6`` in ``log T``. The search is over ``log T`` in [-5, 5]; a
    minimum beyond that (separable data wants ``T -> 0``, labels anti-correlated with the
    scores want ``T -> inf``) returns the nearer bound.

    Parameters
    ----------
    logits : array, shape (n_samples, n_classes)
        Finite raw scores of held-out examples.
    y : array of int, shape (n_samples,)
        Their true class indices.
    xp : module, optional
        The array namespace of ``logits`` and ``y`` (found from them when None).

    Returns
    -------
    float
        The temperature, in ``[exp(-5), exp(5)]``.

    Raises
    ------
    ValueError
        Shapes that do not match, no rows, a label out of range, or a logit that is not
        finite.
    """
    xp = get_namespace(logits, y, xp=xp)
    check_scores(logits, y, xp, "logits")
    if not bool(xp.all(xp.isfinite(logits))):
        raise ValueError("logits must be finite, got an inf or nan entry")
    # z - z_y: the same derivative, with the label's own (possibly large) score cancelled.
    shifted = logits - ops.pick(logits, y, xp=xp)[:, None]

    def slope(log_t: float) -> float:
        """D NLL / d b at b = exp(-log_t): negative while a lower temperature helps."""
        p = ops.softmax(shifted * math.exp(-log_t), axis=1, xp=xp)
        return float(xp.mean(xp.sum(p * shifted, axis=1)))

    low, high = -LOG_T_BOUND, LOG_T_BOUND  # slope decreases as log T grows
    if slope(low) <= 0:
        return math.exp(low)
    if slope(high) >= 0:
        return math.exp(high)
    while high - low > LOG_T_TOL:
        mid = 0.5 * (low + high)
        if slope(mid) > 0:
            low = mid
        else:
            high = mid
    return math.exp(0.5 * (low + high))


def _masked_sum(members: Any, values: Any, xp: ModuleType) -> Any:
    """Sum ``values (n,)`` over the True rows of each column of ``members (n, m)``: ``(m,)``."""
    zero = xp.zeros((1, 1), dtype=values.dtype, device=device(values))
    return xp.sum(xp.where(members, values[:, None], zero), axis=0)
