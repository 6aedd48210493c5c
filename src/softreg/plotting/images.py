"""Grids of images: the dataset's examples, and the book's predictions over them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from softreg.plotting.figure import new_figure

__all__ = ["plot_predictions", "show_images"]


def show_images(
    images: Any, titles: Sequence[str], *, ncols: int = 8, title_colors: Sequence[str] = ()
) -> Any:
    """Draw a grid of greyscale images with a title over each.

    Parameters
    ----------
    images : array_like
        ``(n_images, height, width)``: pixel values in [0, 1], or in [0, 255] when any
        exceeds 1.
    titles : sequence of str
        One title per image.
    ncols : int, default 8
        Images per row (fewer when there are fewer images).
    title_colors : sequence of str, default ()
        A matplotlib color per title; missing ones are black.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    fig = new_figure((1.3 * ncols, 1.65 * nrows))
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
    """Draw the book's ``predict_ch3``: each image titled true label over predicted label.

    Wrong predictions are titled in red.

    Parameters
    ----------
    images : array_like
        ``(n_images, height, width)`` greyscale images.
    true_names : sequence of str
        The true class name of each image.
    pred_names : sequence of str
        The predicted class name of each image.
    ncols : int, default 8
        Images per row.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.

    Raises
    ------
    ValueError
        ``true_names`` and ``pred_names`` differ in length.
    """
    titles = [f"{t}\n{p}" for t, p in zip(true_names, pred_names, strict=True)]
    colors = ["black" if t == p else "red" for t, p in zip(true_names, pred_names, strict=True)]
    return show_images(images, titles, ncols=ncols, title_colors=colors)
