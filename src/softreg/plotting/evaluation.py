"""Figures of a model's evaluation: which classes it confuses, and how far to trust it.

The confusion matrix, the reliability diagram (calibration) and accuracy against coverage
(abstaining below a confidence threshold), as ``softreg evaluate`` draws them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from softreg.plotting.figure import new_figure

__all__ = ["plot_accuracy_coverage", "plot_confusion_matrix", "plot_reliability"]


def plot_confusion_matrix(matrix: Any, class_names: Sequence[str]) -> Any:
    """Draw a confusion matrix, each count written in its cell.

    The matrix shows which classes the model confuses (shirts for T-shirts, say), not just
    how often.

    Parameters
    ----------
    matrix : array_like
        Counts ``(n_classes, n_classes)``: true class on rows, predicted class on columns.
    class_names : sequence of str
        The ``n_classes`` names, for both axes.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.

    Raises
    ------
    ValueError
        ``matrix`` is not ``(n_classes, n_classes)`` for the names given.
    """
    rows = [[int(v) for v in row] for row in matrix]
    k = len(class_names)
    if len(rows) != k or any(len(row) != k for row in rows):
        raise ValueError(
            f"matrix must be ({k}, {k}) for {k} class names, got "
            f"{len(rows)} rows of lengths {sorted({len(row) for row in rows})}"
        )
    fig = new_figure((1.0 + 0.55 * k, 0.8 + 0.5 * k))
    ax = fig.add_subplot()
    image = ax.imshow(rows, cmap="Blues", vmin=0)
    top = max((v for row in rows for v in row), default=0)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            ax.text(
                j,
                i,
                str(value),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > top / 2 else "black",
            )
    ax.set_xticks(
        range(k), labels=list(class_names), rotation=45, ha="right", rotation_mode="anchor"
    )
    ax.set_yticks(range(k), labels=list(class_names))
    ax.set(xlabel="predicted", ylabel="true")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def plot_reliability(bins_before: Any, bins_after: Any = None) -> Any:
    """Draw a reliability diagram (Guo et al. 2017), with its expected calibration error.

    Accuracy per confidence bin is drawn as bars, the diagonal a calibrated model would
    follow as a dashed line, and each bin's mean confidence as a dot; empty bins are left
    out.

    Parameters
    ----------
    bins_before : CalibrationBins or dict
        The bins of the uncalibrated model: :class:`softreg.metrics.CalibrationBins` or its
        ``to_dict()`` form (as in a JSON report).
    bins_after : CalibrationBins, dict or None, default None
        The bins after temperature scaling, drawn in a second panel beside the first.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    panels = [("uncalibrated", bins_before)]
    if bins_after is not None:
        panels.append(("temperature-scaled", bins_after))
    fig = new_figure((3.6 * len(panels), 3.4))
    for index, (title, bins) in enumerate(panels):
        data = bins.to_dict() if hasattr(bins, "to_dict") else dict(bins)
        edges, count = list(data["edges"]), list(data["count"])
        full = [m for m, c in enumerate(count) if c]
        ax = fig.add_subplot(1, len(panels), index + 1)
        ax.bar(
            [edges[m] for m in full],
            [data["accuracy"][m] for m in full],
            width=[edges[m + 1] - edges[m] for m in full],
            align="edge",
            edgecolor="black",
            linewidth=0.5,
            alpha=0.8,
            label="accuracy",
        )
        ax.plot(
            [data["confidence"][m] for m in full],
            [data["accuracy"][m] for m in full],
            "r.",
            label="mean confidence",
        )
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="calibrated")
        n = sum(count)
        ece = sum(count[m] / n * abs(data["accuracy"][m] - data["confidence"][m]) for m in full)
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1),
            xlabel="confidence",
            ylabel="accuracy",
            title=f"{title} (ECE {ece:.3f})",
        )
        ax.set_aspect("equal")
        ax.legend(loc="upper left", fontsize=7)
    return fig


def plot_accuracy_coverage(curve: Sequence[Any]) -> Any:
    """Draw what abstaining below a confidence threshold buys.

    The left panel shows accuracy on the answered rows against the fraction answered; the
    right one both against the threshold.

    Parameters
    ----------
    curve : sequence of tuple or dict
        :func:`softreg.metrics.accuracy_coverage`'s ``(threshold, coverage, accuracy)``
        triples, or the report's dicts with those keys. Thresholds that answer nothing
        (accuracy None) are left out of the accuracy lines.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.

    Raises
    ------
    ValueError
        ``curve`` is empty.
    """
    rows = [
        (r["threshold"], r["coverage"], r["accuracy"]) if isinstance(r, dict) else tuple(r)
        for r in curve
    ]
    if not rows:
        raise ValueError("the accuracy-coverage curve is empty")
    answered = [r for r in rows if r[2] is not None]
    fig = new_figure((8.0, 3.4))
    left = fig.add_subplot(1, 2, 1)
    left.plot([r[1] for r in answered], [r[2] for r in answered], "b.-", markersize=3)
    left.set(
        xlabel="coverage (fraction answered)",
        ylabel="accuracy on answered",
        xlim=(0, 1.02),
        title="accuracy vs coverage",
    )
    left.grid(True, alpha=0.3)
    right = fig.add_subplot(1, 2, 2)
    right.plot([r[0] for r in rows], [r[1] for r in rows], "g-", label="coverage")
    right.plot([r[0] for r in answered], [r[2] for r in answered], "b--", label="accuracy")
    right.set(
        xlabel="threshold on max probability",
        ylim=(0, 1.02),
        xlim=(0, 1),
        title="against the threshold",
    )
    right.grid(True, alpha=0.3)
    right.legend(loc="lower left")
    return fig
