"""The evaluation report: every metric for one model's test-set logits.

One JSON-ready dict, the data behind ``softreg evaluate``'s report.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from softreg import ops
from softreg.backend import get_namespace
from softreg.checks import check_int
from softreg.metrics._inputs import check_scores, check_temperature, to_list
from softreg.metrics.calibration import CalibrationBins, calibration_bins
from softreg.metrics.classification import DEFAULT_TOP_K, confusion_matrix, top_k_accuracy
from softreg.metrics.decisions import accuracy_coverage


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
    xp: ModuleType | None = None,
) -> dict[str, Any]:
    """Return every metric for one model's test-set ``logits``, as a JSON-ready dict.

    Parameters
    ----------
    logits, y : array, shapes (n_samples, n_classes) and (n_samples,)
        Raw scores (or ``log(p)`` of probabilities ``p`` without zeros) and true labels.
    temperature : float, default 1.0
        From :func:`fit_temperature` on held-out data (1 leaves the scores as they are).
    n_bins, ks, thresholds : optional
        For :func:`calibration_bins`, :func:`top_k_accuracy` (each ``k`` up to
        ``n_classes``; default 1, 2, 3, 5) and :func:`accuracy_coverage`.
    class_names : sequence of str, optional
        One name per class, copied into the report.
    xp : module, optional
        The array namespace of ``logits`` and ``y`` (found from them when None).

    Returns
    -------
    dict
        ``n``, ``num_classes``, ``class_names``, ``accuracy``, ``top_k`` (``{"1": ...}``),
        ``nll`` (mean cross-entropy), ``ece``; ``calibration``: ``n_bins``, ``temperature``,
        ``ece`` and ``nll`` after scaling, the bins ``before`` and ``after``;
        ``confusion_matrix`` (rows true, columns predicted); ``accuracy_coverage`` of the
        scaled probabilities (scaling moves confidences, not predictions).

    Raises
    ------
    ValueError
        Inputs the metrics refuse, a temperature not finite and > 0, or not one name per class.
    """
    xp = get_namespace(logits, y, xp=xp)
    num_classes, temperature = _checked(logits, y, temperature, class_names, xp)
    scaled_logits = logits / temperature
    scaled = ops.softmax(scaled_logits, axis=1, xp=xp)
    before = calibration_bins(ops.softmax(logits, axis=1, xp=xp), y, n_bins=n_bins, xp=xp)
    matrix = confusion_matrix(y, xp.argmax(logits, axis=1), num_classes, xp=xp)
    return {
        "n": int(y.shape[0]),
        "num_classes": num_classes,
        "class_names": list(class_names) if class_names is not None else None,
        "accuracy": ops.accuracy(logits, y, xp=xp),
        "top_k": _top_k(logits, y, ks, xp),
        "nll": float(ops.cross_entropy(logits, y, xp=xp)),
        "ece": before.ece(),
        "calibration": _calibration(before, scaled_logits, scaled, y, n_bins, temperature, xp),
        "confusion_matrix": to_list(matrix),
        "accuracy_coverage": _coverage(scaled, y, thresholds, xp),
    }


def _checked(
    logits: Any, y: Any, temperature: Any, class_names: Sequence[str] | None, xp: ModuleType
) -> tuple[int, float]:
    """Check the report's inputs; return the number of classes and the temperature."""
    num_classes = check_scores(logits, y, xp, "logits")
    temperature = check_temperature(temperature)
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
    return num_classes, temperature


def _top_k(logits: Any, y: Any, ks: Sequence[int], xp: ModuleType) -> dict[str, float]:
    """Return ``{"k": top-k accuracy}`` for each distinct ``k`` of ``ks`` up to n_classes."""
    return {
        str(k): top_k_accuracy(logits, y, k, xp=xp)
        for k in sorted({check_int("k", k, minimum=1) for k in ks})
        if k <= logits.shape[1]
    }


def _calibration(
    before: CalibrationBins,
    scaled_logits: Any,
    scaled: Any,
    y: Any,
    n_bins: int,
    temperature: float,
    xp: ModuleType,
) -> dict[str, Any]:
    """Return the report's ``calibration`` entry: bins and loss before and after scaling."""
    after = calibration_bins(scaled, y, n_bins=n_bins, xp=xp)
    return {
        "n_bins": n_bins,
        "temperature": temperature,
        "ece": after.ece(),
        "nll": float(ops.cross_entropy(scaled_logits, y, xp=xp)),
        "before": before.to_dict(),
        "after": after.to_dict(),
    }


def _coverage(
    scaled: Any, y: Any, thresholds: Sequence[float] | None, xp: ModuleType
) -> list[dict[str, Any]]:
    """Return the report's ``accuracy_coverage`` entry, one dict per threshold."""
    return [
        {"threshold": t, "coverage": c, "accuracy": a}
        for t, c, a in accuracy_coverage(scaled, y, thresholds=thresholds, xp=xp)
    ]
