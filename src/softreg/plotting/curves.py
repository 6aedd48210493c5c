"""The chapter's training curves: a figure from a History, and the book's Animator.

:class:`LiveCurves` redraws them during training, inline in Jupyter and on disk.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

from softreg.callbacks import Callback
from softreg.config import TrainConfig
from softreg.fileio import atomic_write_bytes
from softreg.history import EpochRecord, History, TrainState
from softreg.plotting.figure import figure_bytes, new_figure, save_figure

__all__ = ["CURVES", "LiveCurves", "in_notebook", "plot_curves"]

# (History column, legend label, matplotlib line format) of each curve plot_curves draws.
CURVES = (
    ("train_loss", "train loss", "-"),
    ("train_acc", "train acc", "m--"),
    ("test_acc", "test acc", "g-."),
)


def plot_curves(
    history: History, *, epochs: int | None = None, ylim: tuple[float, float] = (0.3, 0.9)
) -> Any:
    """Draw the chapter's figure: train loss, train and test accuracy against the epoch.

    Curves with no values (no test set, say) are left out. A value outside ``ylim`` widens
    the range to fit it.

    Parameters
    ----------
    history : History
        What training reported, one record per epoch.
    epochs : int or None, default None
        The epochs the run will make: the x axis spans them while it is still going
        (None: the epochs recorded).
    ylim : tuple of float, default (0.3, 0.9)
        The y range, the book's.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    fig = new_figure((4.5, 3.2))
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


def in_notebook() -> bool:
    """Return whether this runs inside a Jupyter kernel (where figures are shown inline).

    Returns
    -------
    bool
        True in a Jupyter notebook's kernel; False in a terminal, a script, or without
        IPython.
    """
    ipython = sys.modules.get("IPython")  # a kernel has imported it; nothing else need pay
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


class LiveCurves(Callback):
    """The book's Animator as a callback: the training curves redrawn after every epoch.

    In a notebook the curves (:func:`plot_curves`) are redrawn in place; on disk
    ``<path>.png`` is rewritten, and at the end ``<path>.png`` and ``<path>.svg`` are written
    once more, complete. A drawing takes about 0.1 s, as long as an epoch of the book's
    recipe, so redraws come at most every ``min_interval`` seconds: 1000 full-batch
    iterations are not 1000 drawings. The last epoch is always drawn.

    Parameters
    ----------
    path : str, Path or None, default None
        Where the figure goes, without suffix; None: nothing is written.
    notebook : bool or None, default None
        Show the figure inline; None: when running in Jupyter (:func:`in_notebook`).
    min_interval : float, default 1.0
        The least seconds between two drawings.
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
        """Note the epochs the run will make: the x axis spans them."""
        self.epochs = config.epochs

    def on_epoch_end(self, record: EpochRecord, history: History, state: TrainState) -> None:
        """Redraw the curves, unless the last drawing is under ``min_interval`` old."""
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
        """Write the complete curves as PNG and SVG."""
        if self.path is not None and history.records:
            save_figure(plot_curves(history, epochs=self.epochs), self.path, formats=("png", "svg"))
