"""Figures: the book's training curves and prediction grids. Reads results, never trains.

matplotlib is imported only when a figure is drawn, and only its object-oriented API is used
(``Figure``, no pyplot state), so drawing works the same in a terminal, a script and Jupyter.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from softreg.callbacks import Callback
from softreg.config import TrainConfig
from softreg.errors import require
from softreg.fileio import atomic_write_bytes
from softreg.history import EpochRecord, History, TrainState

CURVES = (
    ("train_loss", "train loss", "-"),
    ("train_acc", "train acc", "m--"),
    ("test_acc", "test acc", "g-."),
)


def _figure(figsize: tuple[float, float]) -> Any:
    Figure = require("matplotlib.figure", "plotting").Figure
    return Figure(figsize=figsize, layout="constrained")


def plot_curves(
    history: History, *, epochs: int | None = None, ylim: tuple[float, float] = (0.3, 0.9)
) -> Any:
    """The chapter's figure: train loss, train accuracy and test accuracy against epoch."""
    fig = _figure((4.5, 3.2))
    ax = fig.add_subplot()
    x = history.column("epoch")
    for attr, label, fmt in CURVES:
        y = history.column(attr)
        if any(v is not None for v in y):
            ax.plot(x, y, fmt, label=label, marker="." if len(x) == 1 else None)
    last = epochs or (x[-1] if x else 1)
    ax.set(xlabel="epoch", xlim=(1, max(last, 2)), ylim=ylim)
    # A loss above the book's y-range (early epochs, large lr) would vanish off the top, and
    # a small one (the MLP's) or a low accuracy off the bottom: widen the range to fit.
    values = [v for attr, _, _ in CURVES for v in history.column(attr) if v is not None]
    top, bottom = max([ylim[1], *values]), min([ylim[0], *values])
    if top > ylim[1] or bottom < ylim[0]:
        ax.set_ylim(
            max(0.0, bottom - 0.05) if bottom < ylim[0] else ylim[0],
            min(top * 1.05, 10.0) if top > ylim[1] else ylim[1],
        )
    ax.grid(True, alpha=0.3)
    ax.legend(loc="center right")
    return fig


def show_images(
    images: Any, titles: Sequence[str], *, ncols: int = 8, title_colors: Sequence[str] = ()
) -> Any:
    """A grid of greyscale images ``(n, height, width)`` with a title over each."""
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    fig = _figure((1.3 * ncols, 1.65 * nrows))
    for i in range(nrows * ncols):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.set_axis_off()
        if i < n:
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=255 if images[i].max() > 1 else 1)
            color = title_colors[i] if i < len(title_colors) else "black"
            ax.set_title(titles[i], fontsize=8, color=color)
    return fig


def plot_predictions(
    images: Any, true_names: Sequence[str], pred_names: Sequence[str], *, ncols: int = 8
) -> Any:
    """The book's ``predict_ch3``: each image titled true label over predicted label;
    wrong predictions in red.
    """
    titles = [f"{t}\n{p}" for t, p in zip(true_names, pred_names, strict=True)]
    colors = ["black" if t == p else "red" for t, p in zip(true_names, pred_names, strict=True)]
    return show_images(images, titles, ncols=ncols, title_colors=colors)


def figure_bytes(fig: Any, fmt: str = "png") -> bytes:
    """``fig`` rendered as a PNG or SVG file's bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=120)
    return buf.getvalue()


def save_figure(fig: Any, path: str | Path, *, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Write ``fig`` as ``path`` with each suffix in ``formats``, each file atomically."""
    path = Path(path)
    written = []
    for fmt in formats:
        target = path.with_suffix("." + fmt)
        atomic_write_bytes(target, figure_bytes(fig, fmt))
        written.append(target)
    return written


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where figures are shown inline, not written)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


class LiveCurves(Callback):
    """The book's Animator as a callback: after every epoch the curves are redrawn in place
    in a notebook, and ``curves.png`` (and ``.svg`` at the end) are rewritten on disk.

    A drawing takes about 0.1 s, as long as an epoch of the book's recipe, so redraws come at
    most every ``min_interval`` seconds: 1000 full-batch iterations are not 1000 drawings.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        notebook: bool | None = None,
        min_interval: float = 1.0,
    ):
        self.path = Path(path) if path is not None else None
        self.notebook = in_notebook() if notebook is None else notebook
        self.min_interval = min_interval
        self.epochs: int | None = None
        self._handle: Any = None
        self._last_draw = -math.inf

    def on_train_begin(self, config: TrainConfig, steps_per_epoch: int, state: TrainState) -> None:
        self.epochs = config.epochs

    def on_epoch_end(self, record: EpochRecord, history: History, state: TrainState) -> None:
        now = time.monotonic()
        if now - self._last_draw < self.min_interval and record.epoch != self.epochs:
            return
        png = figure_bytes(plot_curves(history, epochs=self.epochs))
        self._last_draw = time.monotonic()
        if self.notebook:
            # An Image, not the Figure: a bare Figure shows as text unless pyplot's inline
            # backend happens to be active.
            from IPython.display import Image, display

            if self._handle is None:
                self._handle = display(Image(data=png), display_id=True)
            else:
                self._handle.update(Image(data=png))
        if self.path is not None:
            atomic_write_bytes(self.path.with_suffix(".png"), png)

    def on_train_end(self, history: History, state: TrainState) -> None:
        if self.path is not None and history.records:
            save_figure(plot_curves(history, epochs=self.epochs), self.path, formats=("png", "svg"))


def plot_confusion_matrix(matrix: Any, class_names: Sequence[str]) -> Any:
    """Counts ``(k, k)``, true class on rows and predicted class on columns, each written in
    its cell: which classes the model confuses (shirts for T-shirts, say), not just how often.
    """
    rows = [[int(v) for v in row] for row in matrix]
    k = len(class_names)
    if len(rows) != k or any(len(row) != k for row in rows):
        raise ValueError(
            f"matrix must be ({k}, {k}) for {k} class names, got "
            f"{len(rows)} rows of lengths {sorted({len(row) for row in rows})}"
        )
    fig = _figure((1.0 + 0.55 * k, 0.8 + 0.5 * k))
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
    """Reliability diagram (Guo et al. 2017): accuracy per confidence bin as bars, the
    diagonal a calibrated model would follow, and each bin's mean confidence as a dot.

    ``bins_*`` are :class:`softreg.metrics.CalibrationBins` or their ``to_dict()`` form (as in
    a JSON report); with ``bins_after`` (temperature-scaled), a second panel beside the first.
    """
    panels = [("uncalibrated", bins_before)]
    if bins_after is not None:
        panels.append(("temperature-scaled", bins_after))
    fig = _figure((3.6 * len(panels), 3.4))
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
    """Abstaining below a confidence threshold: accuracy on the answered rows against the
    fraction answered (left), and both against the threshold (right).

    ``curve`` is :func:`softreg.metrics.accuracy_coverage`'s ``(threshold, coverage,
    accuracy)`` triples or the report's dicts with those keys; thresholds that answer
    nothing (accuracy None) are left out of the accuracy lines.
    """
    rows = [
        (r["threshold"], r["coverage"], r["accuracy"]) if isinstance(r, dict) else tuple(r)
        for r in curve
    ]
    if not rows:
        raise ValueError("the accuracy-coverage curve is empty")
    answered = [r for r in rows if r[2] is not None]
    fig = _figure((8.0, 3.4))
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
