"""Decisions under uncertainty: is the most likely label always the right call?

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
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from softreg import ops
from softreg.backend import device, get_namespace, to_numpy

# Default thresholds of accuracy_coverage: 0, 0.01, ..., 1. A fixed grid (rather than the
# data's unique confidences) keeps the curve the same length for every model, so reports and
# plots of two models line up and the JSON stays small.
DEFAULT_THRESHOLDS = tuple(i / 100 for i in range(101))
DEFAULT_TOP_K = (1, 2, 3, 5)
# Temperature is searched in log T over [-LOG_T_BOUND, LOG_T_BOUND] (T in [0.0067, 148]).
LOG_T_BOUND = 5.0
LOG_T_TOL = 1e-6
# How far rows of ``probs`` may sum from 1 (float32 rounding over many classes stays far below).
PROB_SUM_TOL = 1e-3


def top_k_accuracy(scores: Any, y: Any, k: int, /, *, xp: Any = None) -> float:
    """Fraction of rows whose label is among the ``k`` largest scores.

    Ties: a row is a hit when fewer than ``k`` classes score *strictly* higher than its
    label, i.e. when the label's score is >= the ``k``-th largest score. A tie at the
    boundary therefore counts in the label's favour (``k = 1`` with two equal top scores is
    a hit for either), so the result never depends on how a sort orders equal values.
    Works on logits or probabilities alike; ``k = n_classes`` gives 1.
    """
    xp = get_namespace(scores, y, xp=xp)
    num_classes = _check_scores(scores, y, xp, "scores")
    k = _check_int("k", k, minimum=1)
    if k > num_classes:
        raise ValueError(f"k={k} exceeds the number of classes ({num_classes})")
    label_score = ops.pick(scores, y, xp=xp)
    higher = xp.sum(xp.astype(scores > label_score[:, None], xp.int32), axis=1)
    return int(xp.sum(xp.astype(higher < k, xp.int32))) / y.shape[0]


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int, /, *, xp: Any = None) -> Any:
    """``(num_classes, num_classes)`` int32 counts: entry ``[i, j]`` is the number of examples
    of true class ``i`` predicted as ``j`` (rows true, columns predicted, as scikit-learn).

    The diagonal holds the hits; an off-diagonal cell says which mistake the model makes,
    which a single accuracy hides. Computed as ``one_hot(y_true).T @ one_hot(y_pred)`` in
    float32 over chunks of fewer than 2**24 rows, where every partial sum is exact.
    """
    xp = get_namespace(y_true, y_pred, xp=xp)
    num_classes = _check_int("num_classes", num_classes, minimum=1)
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if labels.ndim != 1:
            raise ValueError(f"{name} must be 1-D (n_samples,), got shape {tuple(labels.shape)}")
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(f"y_true has {y_true.shape[0]} labels but y_pred has {y_pred.shape[0]}")
    ops.check_labels(y_true, num_classes, xp=xp)
    ops.check_labels(y_pred, num_classes, xp=xp)
    n = y_true.shape[0]
    total = xp.zeros((num_classes, num_classes), dtype=xp.int32, device=device(y_true))
    chunk = 1 << 23
    for begin in range(0, n, chunk):
        end = min(begin + chunk, n)
        true_hot = ops.one_hot(y_true[begin:end], num_classes, dtype=xp.float32, xp=xp)
        pred_hot = ops.one_hot(y_pred[begin:end], num_classes, dtype=xp.float32, xp=xp)
        total = total + xp.astype(xp.round(true_hot.T @ pred_hot), xp.int32)
    return total


@dataclass(frozen=True)
class CalibrationBins:
    """Reliability-diagram data: equal-width bins of the top-class probability.

    ``edges`` has ``n_bins + 1`` entries from 0 to 1; bin ``m`` holds the rows whose
    confidence lies in ``(edges[m], edges[m+1]]`` (the first bin also takes exactly 0), as
    in Guo et al. 2017. Per bin: ``confidence`` is the mean top-class probability,
    ``accuracy`` the fraction of those rows predicted right (both None for an empty bin),
    ``count`` the number of rows.
    """

    edges: tuple[float, ...]
    confidence: tuple[float | None, ...]
    accuracy: tuple[float | None, ...]
    count: tuple[int, ...]

    @property
    def n(self) -> int:
        return sum(self.count)

    def ece(self) -> float:
        """Expected calibration error: ``sum_m count_m / n * |accuracy_m - confidence_m|``."""
        return ece_from_bins(self)

    def to_dict(self) -> dict[str, list[Any]]:
        return {
            "edges": list(self.edges),
            "confidence": list(self.confidence),
            "accuracy": list(self.accuracy),
            "count": list(self.count),
        }


def calibration_bins(probs: Any, y: Any, /, *, n_bins: int = 15, xp: Any = None) -> CalibrationBins:
    """Mean confidence, accuracy and count per equal-width bin of ``max(probs, axis=1)``.

    A calibrated model is right 90% of the time when it says 0.9: its bins lie on the
    diagonal of the reliability diagram. Softmax networks are often over-confident.
    """
    xp = get_namespace(probs, y, xp=xp)
    _check_probs(probs, y, xp)
    n_bins = _check_int("n_bins", n_bins, minimum=1)
    confidence = xp.max(probs, axis=1)
    correct = xp.astype(xp.argmax(probs, axis=1) == y, probs.dtype)
    edges = tuple(m / n_bins for m in range(n_bins + 1))
    # Bin of each row: the number of inner edges strictly below its confidence, compared in
    # probs' dtype. So bins are right-closed, the first takes 0, and the last takes a float32
    # row maximum rounded a hair above 1.
    inner = xp.asarray(edges[1:-1], dtype=probs.dtype, device=device(probs))
    index = xp.sum(xp.astype(confidence[:, None] > inner[None, :], xp.int32), axis=1)
    members = index[:, None] == xp.arange(n_bins, dtype=xp.int32, device=device(probs))[None, :]
    counts = _to_list(xp.sum(xp.astype(members, xp.int32), axis=0))
    conf_sums = _to_list(_masked_sum(members, confidence, xp))
    acc_sums = _to_list(_masked_sum(members, correct, xp))
    conf_out = tuple(s / c if c else None for s, c in zip(conf_sums, counts, strict=True))
    acc_out = tuple(s / c if c else None for s, c in zip(acc_sums, counts, strict=True))
    return CalibrationBins(edges, conf_out, acc_out, tuple(int(c) for c in counts))


def ece_from_bins(bins: CalibrationBins) -> float:
    """The expected calibration error of already computed bins (see :class:`CalibrationBins`)."""
    n = bins.n
    if n == 0:
        raise ValueError("the bins are empty: ECE is undefined")
    return sum(
        count / n * abs(acc - conf)
        for count, acc, conf in zip(bins.count, bins.accuracy, bins.confidence, strict=True)
        if count
    )


def expected_calibration_error(probs: Any, y: Any, /, *, n_bins: int = 15, xp: Any = None) -> float:
    """ECE (Guo et al. 2017): the gap between confidence and accuracy, averaged over
    equal-width confidence bins weighted by their share of the rows. 0 is perfect.
    """
    return ece_from_bins(calibration_bins(probs, y, n_bins=n_bins, xp=xp))


def fit_temperature(logits: Any, y: Any, /, *, xp: Any = None) -> float:
    """The temperature ``T > 0`` minimising the mean NLL of ``softmax(logits / T)`` on ``y``.

    Fit it on held-out data, never on the test set: it rescales confidence without moving the
    arg-max, so accuracy stays and calibration usually improves (Guo et al. 2017).

    With ``b = 1 / T`` the NLL ``mean(logsumexp(b z) - b z_y)`` is convex in ``b``: its
    derivative ``mean(E_softmax(b z)[z] - z_y)`` is non-decreasing. So the NLL is unimodal in
    ``log T``, and bisection on the sign of that derivative finds the minimum without step
    sizes to tune, to ``1e-6`` in ``log T``. The search is over ``log T`` in [-5, 5]; a
    minimum beyond that (separable data wants ``T -> 0``, labels anti-correlated with the
    scores want ``T -> inf``) returns the nearer bound.
    """
    xp = get_namespace(logits, y, xp=xp)
    _check_scores(logits, y, xp, "logits")
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


def accuracy_coverage(
    probs: Any, y: Any, /, *, thresholds: Sequence[float] | None = None, xp: Any = None
) -> list[tuple[float, float, float | None]]:
    """``(threshold, coverage, accuracy)`` for "predict only when max prob >= threshold".

    ``coverage`` is the fraction of rows answered, ``accuracy`` the fraction of those
    answered right (None when none is answered). Raising the threshold trades coverage for
    accuracy: a diagnosis tool can hand its least confident cases to a doctor. Default
    thresholds: the fixed grid 0, 0.01, ..., 1 (101 points). A confidence equal to the
    threshold is answered (compared in ``probs``' dtype).
    """
    xp = get_namespace(probs, y, xp=xp)
    _check_probs(probs, y, xp)
    thresholds = DEFAULT_THRESHOLDS if thresholds is None else tuple(thresholds)
    if not thresholds:
        raise ValueError("thresholds must not be empty")
    for t in thresholds:
        _check_threshold(t)
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
        covered = _to_list(xp.sum(xp.astype(answered, xp.int32), axis=0))
        hits = _to_list(xp.sum(xp.astype(right, xp.int32), axis=0))
        for threshold, c, h in zip(part, covered, hits, strict=True):
            curve.append((float(threshold), c / n, h / c if c else None))
    return curve


def selective_decision(probs: Any, threshold: float, /, *, xp: Any = None) -> Any:
    """Predicted labels ``(n_samples,)``, or -1 (abstain) where ``max(probs) < threshold``.

    A confidence equal to the threshold is answered; ``threshold = 0`` never abstains.
    """
    xp = get_namespace(probs, xp=xp)
    _check_probs(probs, None, xp)
    threshold = _check_threshold(threshold)
    pred = xp.argmax(probs, axis=1)
    answered = xp.max(probs, axis=1) >= threshold
    return xp.where(answered, pred, xp.full_like(pred, -1))


def expected_cost_decisions(probs: Any, cost: Any, /, *, xp: Any = None) -> Any:
    """The Bayes decision per row: ``argmin_j sum_i probs[:, i] * cost[i, j]``, ``(n_samples,)``.

    ``cost`` is ``(n_classes, n_classes)``, ``cost[i, j]`` the cost of predicting ``j`` when
    the truth is ``i`` (a list or an array of ``probs``' namespace). With ``1 - identity``
    every mistake costs the same and this is the arg-max; when missing a disease costs ten
    false alarms, "sick" wins from ``p(sick) > 1/11`` on. Ties go to the lower class index.
    """
    xp = get_namespace(probs, xp=xp)
    _check_probs(probs, None, xp)
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


def evaluation_report(
    logits: Any,
    y: Any,
    /,
    *,
    temperature: float = 1.0,
    n_bins: int = 15,
    ks: Sequence[int] = DEFAULT_TOP_K,
    thresholds: Sequence[float] | None = None,
    class_names: Sequence[str] | None = None,
    xp: Any = None,
) -> dict[str, Any]:
    """Everything above for one model's test-set ``logits``, as a JSON-ready dict.

    ``temperature`` should come from :func:`fit_temperature` on held-out data (the default 1
    leaves the scores as they are). Probabilities ``p`` can be passed as ``log(p)``
    (``softmax(log p) = p``) when they have no zeros. Keys:

    - ``n``, ``num_classes``, ``class_names`` (or None)
    - ``accuracy``; ``top_k``: ``{"1": ..., "2": ...}`` for each ``k`` in ``ks`` up to
      ``num_classes``
    - ``nll``: mean cross-entropy; ``calibration``: ``n_bins``, ``temperature``, ``ece`` and
      ``nll`` after scaling, and both sets of bins (``before``, ``after``) as dicts
    - ``ece``: before scaling; ``confusion_matrix``: nested lists, rows true, columns predicted
    - ``accuracy_coverage``: a list of ``{"threshold", "coverage", "accuracy"}`` for the
      temperature-scaled probabilities (scaling moves confidences, not predictions)
    """
    xp = get_namespace(logits, y, xp=xp)
    num_classes = _check_scores(logits, y, xp, "logits")
    temperature = _check_temperature(temperature)
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
    probs = ops.softmax(logits, axis=1, xp=xp)
    scaled_logits = logits / temperature
    scaled = ops.softmax(scaled_logits, axis=1, xp=xp)
    before = calibration_bins(probs, y, n_bins=n_bins, xp=xp)
    after = calibration_bins(scaled, y, n_bins=n_bins, xp=xp)
    matrix = confusion_matrix(y, xp.argmax(logits, axis=1), num_classes, xp=xp)
    return {
        "n": int(y.shape[0]),
        "num_classes": num_classes,
        "class_names": list(class_names) if class_names is not None else None,
        "accuracy": ops.accuracy(logits, y, xp=xp),
        "top_k": {
            str(k): top_k_accuracy(logits, y, k, xp=xp)
            for k in sorted({_check_int("k", k, minimum=1) for k in ks})
            if k <= num_classes
        },
        "nll": float(ops.cross_entropy(logits, y, xp=xp)),
        "ece": before.ece(),
        "calibration": {
            "n_bins": n_bins,
            "temperature": temperature,
            "ece": after.ece(),
            "nll": float(ops.cross_entropy(scaled_logits, y, xp=xp)),
            "before": before.to_dict(),
            "after": after.to_dict(),
        },
        "confusion_matrix": _to_list(matrix),
        "accuracy_coverage": [
            {"threshold": t, "coverage": c, "accuracy": a}
            for t, c, a in accuracy_coverage(scaled, y, thresholds=thresholds, xp=xp)
        ],
    }


def _masked_sum(members: Any, values: Any, xp: Any) -> Any:
    """Per column of the ``(n, m)`` booleans ``members``, the sum of ``values (n,)`` over its
    True rows: ``(m,)``.
    """
    zero = xp.zeros((1, 1), dtype=values.dtype, device=device(values))
    return xp.sum(xp.where(members, values[:, None], zero), axis=0)


def _to_list(x: Any) -> list[Any]:
    """A small result array as Python numbers, in one transfer from the device."""
    return to_numpy(x).tolist()


def _check_scores(scores: Any, y: Any, xp: Any, name: str) -> int:
    """Shapes of ``(n, k)`` scores and ``(n,)`` labels, at least one row, labels in range."""
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


def _check_probs(probs: Any, y: Any, xp: Any) -> None:
    """Rows of probabilities: finite, in [0, 1], summing to 1. Catches logits passed by
    mistake, which would otherwise give a meaningless calibration.
    """
    _check_scores(probs, y, xp, "probs")
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


def _check_int(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"threshold must be a probability in [0, 1], got {value!r}")
    return float(value)


def _check_temperature(value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not (math.isfinite(value) and value > 0)
    ):
        raise ValueError(f"temperature must be a finite number > 0, got {value!r}")
    return float(value)
