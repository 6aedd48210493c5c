"""A sweep's results: the best point, a table, and the files ``sweep-<field>-<equal>.*``.

For each budget a sweep writes ``.csv`` (a row per point), ``.json`` (the numbers, the base
configuration, the split, a timestamp) and ``.png`` (loss and accuracy against the swept
value on a log axis), each atomically. Diverged points (infinite losses) are written and
shown, but never win.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from softreg.errors import ConfigError
from softreg.fileio import write_csv, write_json
from softreg.sweep.plan import check_field
from softreg.sweep.point import SweepPoint

__all__ = [
    "METRICS",
    "best_point",
    "format_point",
    "format_table",
    "plot_sweep",
    "print_progress",
    "sweep_summary",
    "write_sweep",
]

METRICS = {"val_loss": min, "val_acc": max, "train_loss": min, "train_acc": max}


def best_point(points: Sequence[SweepPoint], metric: str = "val_loss") -> SweepPoint:
    """Return the point with the lowest loss (or highest accuracy).

    Parameters
    ----------
    points : sequence of SweepPoint
        The points of a sweep.
    metric : str, default "val_loss"
        One of :data:`METRICS`: ``"val_loss"``, ``"val_acc"``, ``"train_loss"``,
        ``"train_acc"``.

    Returns
    -------
    SweepPoint
        The best point by ``metric``; diverged (non-finite) points never win.

    Raises
    ------
    ConfigError
        ``metric`` is unknown, or no point has a finite value of it.
    """
    if metric not in METRICS:
        raise ConfigError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    finite = [p for p in points if math.isfinite(getattr(p, metric))]
    if not finite:
        raise ConfigError(f"no point has a finite {metric} (every run diverged?)")
    return METRICS[metric](finite, key=lambda p: getattr(p, metric))


def _best_or_none(points: Sequence[SweepPoint]) -> SweepPoint | None:
    """Return the best point by validation loss, or None when every point diverged."""
    try:
        return best_point(points)
    except ConfigError:
        return None


def print_progress(done: int, total: int, point: SweepPoint) -> None:
    """Print one line on stderr for a finished point (a ``progress`` callback).

    Parameters
    ----------
    done : int
        The points finished so far.
    total : int
        The points in the sweep.
    point : SweepPoint
        The point just finished.
    """
    print(f"[{done}/{total}] {format_point(point)}", file=sys.stderr, flush=True)


def format_point(point: SweepPoint) -> str:
    """Return one point on one line: its value, validation scores, budget and time.

    Parameters
    ----------
    point : SweepPoint
        The point.

    Returns
    -------
    str
        E.g. ``lr=0.1  val loss 0.4531  val acc 0.8412  (2 epochs, 422 steps, 1.20 s)``.
    """
    return (
        f"{point.field}={point.value:g}  val loss {point.val_loss:.4f}  "
        f"val acc {point.val_acc:.4f}  ({point.epochs:.3g} epochs, {point.steps} steps, "
        f"{point.seconds:.2f} s)"
    )


def format_table(points: Sequence[SweepPoint]) -> str:
    """Return the points as an aligned table, the best validation loss marked.

    Parameters
    ----------
    points : sequence of SweepPoint
        The points of one sweep, at least one.

    Returns
    -------
    str
        A header line and a line per point, with notes (full batch, diverged, best).
    """
    best = _best_or_none(points)
    head = (
        f"{points[0].field:>10} {'epochs':>8} {'steps':>8} {'train loss':>10} "
        f"{'train acc':>9} {'val loss':>9} {'val acc':>8} {'seconds':>8}"
    )
    lines = [head]
    for p in points:
        notes = [f"full batch ({p.n_fit})"] if p.full_batch else []
        if p.diverged_at is not None:
            notes.append(f"diverged at step {p.diverged_at}")
        if p is best:
            notes.append("best val loss")
        lines.append(
            f"{p.value:>10g} {p.epochs:>8.3g} {p.steps:>8} {p.train_loss:>10.4f} "
            f"{p.train_acc:>9.4f} {p.val_loss:>9.4f} {p.val_acc:>8.4f} "
            f"{p.seconds:>8.2f}  {', '.join(notes)}".rstrip()
        )
    return "\n".join(lines)


def sweep_summary(points: Sequence[SweepPoint], field: str, equal: str) -> dict[str, Any]:
    """Return what ``<stem>.json`` holds: the points, the base config, the split, the best.

    Parameters
    ----------
    points : sequence of SweepPoint
        The points of one sweep, at least one.
    field : str
        The field swept, as a TrainConfig field name.
    equal : str
        The budget held fixed: ``"epochs"`` or ``"updates"``.

    Returns
    -------
    dict
        ``field``, ``equal``, ``updates`` (the steps each point made, or None), ``created``
        (a UTC timestamp), ``split``, ``base_config`` (without the fields that vary),
        ``best_by_val_loss`` (a value, or None when every point diverged), ``points`` (the
        CSV's rows) and ``configs`` (each point's whole configuration).
    """
    first = points[0]
    varies = {field, "epochs"} if equal == "updates" else {field}
    best = _best_or_none(points)
    return {
        "field": field,
        "equal": equal,
        "updates": first.steps if equal == "updates" else None,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "split": {
            "from": "training set (the test set is not used)",
            "n_fit": first.n_fit,
            "n_val": first.n_val,
            "seed": first.config.seed,
        },
        "base_config": {k: v for k, v in first.config.to_dict().items() if k not in varies},
        "best_by_val_loss": best.value if best is not None else None,
        "points": [p.row() for p in points],
        "configs": [p.config.to_dict() for p in points],
    }


def write_sweep(
    points: Sequence[SweepPoint],
    out_dir: str | Path,
    field: str,
    equal: str,
    *,
    stem: str | None = None,
    plots: bool = True,
) -> list[Path]:
    """Write a sweep's ``<stem>.csv``, ``<stem>.json`` and ``<stem>.png``, each atomically.

    Parameters
    ----------
    points : sequence of SweepPoint
        The points of one sweep.
    out_dir : str or Path
        The directory, created if missing.
    field : str
        The field swept (see :func:`~softreg.sweep.check_field`).
    equal : str
        The budget held fixed: ``"epochs"`` or ``"updates"``.
    stem : str or None, default None
        The files' name without suffix; None: ``sweep-<field>-<equal>``, so both budgets of
        one sweep can share ``out_dir``.
    plots : bool, default True
        Also draw the figure (:func:`plot_sweep`; needs matplotlib).

    Returns
    -------
    list of Path
        The files written: CSV, JSON, then PNG.

    Raises
    ------
    ConfigError
        There are no points, or ``field`` cannot be swept.
    """
    if not points:
        raise ConfigError("no sweep points to write")
    field = check_field(field)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (stem or f"sweep-{field}-{equal}")
    written = [path.with_suffix(".csv"), path.with_suffix(".json")]
    summary = sweep_summary(points, field, equal)
    write_csv(written[0], summary["points"])
    write_json(written[1], summary)
    if plots:
        from softreg.plotting import save_figure

        written += save_figure(plot_sweep(points, field, equal), path)
    return written


def plot_sweep(points: Sequence[SweepPoint], field: str, equal: str) -> Any:
    """Draw loss (left) and accuracy (right), train and validation, against the swept value.

    The value axis is logarithmic, and so is the loss axis when the losses span more than a
    factor of 20 (a diverging point would flatten the others); the best validation loss is
    ringed.

    Parameters
    ----------
    points : sequence of SweepPoint
        The points of one sweep, at least one.
    field : str
        The field swept: ``"lr"`` or ``"batch_size"``.
    equal : str
        The budget held fixed: ``"epochs"`` or ``"updates"``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (see :func:`softreg.plotting.save_figure`).
    """
    from softreg.plotting import new_figure

    ordered = sorted(points, key=lambda p: p.value)
    x = [p.value for p in ordered]
    fig = new_figure((8.0, 3.2))
    loss_ax, acc_ax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for ax, kind in ((loss_ax, "loss"), (acc_ax, "acc")):
        for split, fmt in (("train", "o--"), ("val", "s-")):
            y = [_nan_if_inf(getattr(p, f"{split}_{kind}")) for p in ordered]
            label = f"validation {kind}" if split == "val" else f"train {kind} (last epoch)"
            ax.plot(x, y, fmt, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate" if field == "lr" else "batch size")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    losses = [v for p in ordered for v in (p.train_loss, p.val_loss) if math.isfinite(v)]
    if losses and min(losses) > 0 and max(losses) / min(losses) > 20:
        loss_ax.set_yscale("log")  # a diverged point would flatten the others
    loss_ax.set_ylabel("cross-entropy")
    acc_ax.set_ylabel("accuracy")
    best = _best_or_none(ordered)
    if best is not None:
        loss_ax.plot([best.value], [best.val_loss], "o", mfc="none", ms=12, color="red")
    budget = (
        f"{ordered[0].steps} updates each"
        if equal == "updates"
        else f"{ordered[0].config.epochs} epochs each"
    )
    fig.suptitle(
        f"{field} sweep, {budget} (validation: {ordered[0].n_val} held-out training examples)",
        fontsize=9,
    )
    return fig


def _nan_if_inf(value: float) -> float:
    """Return ``value``, or nan when it is not finite (matplotlib leaves a gap)."""
    return value if math.isfinite(value) else math.nan
