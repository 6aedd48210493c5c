"""Figures as objects and files: a new figure, its bytes, and writing it atomically.

matplotlib is imported only when a figure is made, and only its object-oriented API is used
(``Figure``, no pyplot state), so drawing works the same in a terminal, a script and Jupyter.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from softreg.errors import require
from softreg.fileio import atomic_write_bytes

__all__ = ["figure_bytes", "new_figure", "save_figure"]


def new_figure(figsize: tuple[float, float]) -> Any:
    """Return an empty figure, laid out so that labels and titles do not overlap.

    Parameters
    ----------
    figsize : tuple of float
        ``(width, height)`` in inches.

    Returns
    -------
    matplotlib.figure.Figure
        A figure with the ``"constrained"`` layout, outside pyplot (nothing is shown).

    Raises
    ------
    softreg.errors.SoftregError
        matplotlib is not installed; the message names the extra that provides it.
    """
    Figure = require("matplotlib.figure", "plotting").Figure
    return Figure(figsize=figsize, layout="constrained")


def figure_bytes(fig: Any, fmt: str = "png") -> bytes:
    """Return ``fig`` rendered as a PNG or SVG file's bytes (at 120 dpi).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    fmt : str, default "png"
        ``"png"`` or ``"svg"`` (any format matplotlib writes).

    Returns
    -------
    bytes
        The file's contents.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=120)
    return buf.getvalue()


def save_figure(fig: Any, path: str | Path, *, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Write ``fig`` as ``path`` with each suffix in ``formats``, each file atomically.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path : str or Path
        The file's path; its suffix, if any, is replaced by each format's.
    formats : sequence of str, default ("png",)
        The formats to write (see :func:`figure_bytes`).

    Returns
    -------
    list of Path
        The files written, in the order of ``formats``.
    """
    path = Path(path)
    written = []
    for fmt in formats:
        target = path.with_suffix("." + fmt)
        atomic_write_bytes(target, figure_bytes(fig, fmt))
        written.append(target)
    return written
