"""Running a whole sweep: on arrays in memory, on a named dataset, or as ``softreg sweep``.

:func:`run_sweep` and :func:`run_sweep_dataset` return the points; :func:`sweep_main` is the
command: every check first, then the points of each budget, then the files and tables.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

from softreg.data import download_dataset, find_dataset_dir
from softreg.data.split import check_fraction
from softreg.errors import printable, require
from softreg.rundir import RunDirectory
from softreg.sweep.plan import SweepPlan
from softreg.sweep.point import SweepPoint
from softreg.sweep.pool import Progress, check_workers, run_points
from softreg.sweep.results import format_table, print_progress, write_sweep
from softreg.sweep.split import DatasetSplit, split_arrays

__all__ = ["ARTIFACTS", "dataset_source", "run_sweep", "run_sweep_dataset", "sweep_main"]

# The files a sweep writes in its directory (an earlier sweep's are refused or replaced).
ARTIFACTS = ("sweep-*.csv", "sweep-*.json", "sweep-*.png", "sweep-*.svg")


def run_sweep(
    plan: SweepPlan,
    X: Any,
    y: Any,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    num_classes: int | None = None,
) -> list[SweepPoint]:
    """Train one model per value of the plan on in-memory training data ``(X, y)``.

    Each point is scored on the same held-out ``plan.val_fraction`` of the rows, split with
    ``plan.base.seed``. Every point uses the base's seed, so the numbers do not depend on
    ``workers``. Each worker gets a copy of the data: for a large dataset prefer
    :func:`run_sweep_dataset`, whose workers read it themselves.

    Parameters
    ----------
    plan : SweepPlan
        The sweep, of one budget (``equal`` ``"epochs"`` or ``"updates"``).
    X : array_like
        The training rows, ``(n_samples, n_features)``.
    y : array_like
        Their class indices, ``(n_samples,)``.
    workers : int or None, default None
        Processes to train in; 1: this one; None: one per point, at most one per core.
    progress : callable or None, default None
        Called as ``progress(done, total, point)`` after each point
        (e.g. :func:`~softreg.sweep.print_progress`).
    num_classes : int or None, default None
        The number of classes; None: the largest label + 1.

    Returns
    -------
    list of SweepPoint
        One point per value, in the order of ``plan.values``.

    Raises
    ------
    ConfigError
        The plan cannot run (:meth:`SweepPlan.checked`), the labels or the split are
        invalid, or ``workers`` is not an integer >= 1.
    """
    plan = plan.checked()
    data = split_arrays(X, y, plan.val_fraction, plan.base.seed, num_classes)
    return run_points(data, plan, workers, progress)


def run_sweep_dataset(
    plan: SweepPlan,
    *,
    data_dir: str | Path | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    download: bool = True,
) -> list[SweepPoint]:
    """Run :func:`run_sweep` on the training set of ``plan.base.dataset``.

    Each worker loads the dataset itself (cheaper than sending each a copy); its test set is
    never read.

    Parameters
    ----------
    plan : SweepPlan
        The sweep, of one budget.
    data_dir : str, Path or None, default None
        Where the dataset's files are; None: the usual places.
    workers : int or None, default None
        As for :func:`run_sweep`.
    progress : callable or None, default None
        As for :func:`run_sweep`.
    download : bool, default True
        Download a missing dataset once, here, first.

    Returns
    -------
    list of SweepPoint
        One point per value, in the order of ``plan.values``.

    Raises
    ------
    ConfigError
        As for :func:`run_sweep`.
    softreg.errors.SoftregError
        The dataset cannot be found, downloaded or read.
    """
    plan = plan.checked()
    source = dataset_source(plan, data_dir, download=download)
    return run_points(source, plan, workers, progress)


def dataset_source(plan: SweepPlan, data_dir: str | Path | None, *, download: bool) -> DatasetSplit:
    """Return where the workers read ``plan.base.dataset``'s training set from.

    The dataset is found (or downloaded) once, here, first.

    Parameters
    ----------
    plan : SweepPlan
        The sweep: its dataset, held-out fraction and seed.
    data_dir : str, Path or None
        Where the dataset's files are; None: the usual places.
    download : bool
        Download the dataset when it is not found.

    Returns
    -------
    DatasetSplit
        The dataset's name and directory, the fraction and the seed.

    Raises
    ------
    ConfigError
        ``plan.val_fraction`` is not in (0, 1).
    """
    check_fraction(plan.val_fraction)
    directory = data_dir
    if plan.base.dataset != "synthetic":
        directory = find_dataset_dir(plan.base.dataset, data_dir)
        if directory is None and download:
            directory = download_dataset(plan.base.dataset)
        # else: load_dataset raises the error that lists every place searched
    return DatasetSplit(plan.base.dataset, directory, plan.val_fraction, plan.base.seed)


def sweep_main(
    plan: SweepPlan,
    *,
    out_dir: str | Path,
    data_dir: str | Path | None = None,
    workers: int | None = None,
    stream: TextIO | None = None,
    progress: bool = True,
    plots: bool = True,
    overwrite: bool = False,
) -> list[Path]:
    """Run the ``softreg sweep`` command: the sweep on ``plan.base.dataset``, per budget.

    For each budget the points are trained, their files written (:func:`write_sweep`) and a
    table printed. ``out_dir`` is a run directory (:mod:`softreg.rundir`): an earlier sweep's
    files there are refused unless ``overwrite``, and it is locked, so one process at a time
    writes there. Every check runs before it is created, and an earlier sweep's files are
    replaced only once every point is trained: a sweep that fails leaves them as they were.

    Parameters
    ----------
    plan : SweepPlan
        The sweep; ``equal`` is ``"epochs"``, ``"updates"`` or ``"both"`` (one per budget).
    out_dir : str or Path
        The sweep's directory.
    data_dir : str, Path or None, default None
        Where the dataset's files are; a missing dataset is downloaded.
    workers : int or None, default None
        Processes to train in (see :func:`run_sweep`).
    stream : TextIO or None, default None
        Where the tables go; None: stdout.
    progress : bool, default True
        A line on stderr per finished point.
    plots : bool, default True
        Draw each budget's figure (needs matplotlib).
    overwrite : bool, default False
        Replace an earlier sweep's files in ``out_dir``.

    Returns
    -------
    list of Path
        The files written, budget by budget.

    Raises
    ------
    ConfigError
        The plan cannot run (any budget), or ``workers`` is invalid.
    softreg.errors.SoftregError
        ``out_dir`` cannot be used (``RunDirError``), matplotlib is missing with ``plots``,
        or the dataset cannot be read.
    """
    plans = _checked_budgets(plan, workers, plots=plots)
    run_dir = RunDirectory(out_dir, ARTIFACTS, overwrite=overwrite)
    run_dir.check()
    source = dataset_source(plans[0], data_dir, download=True)
    with run_dir:
        run_dir.acquire()
        results = [_run_timed(source, budget, workers, progress=progress) for budget in plans]
        run_dir.clear()
        return _write_all(results, run_dir.path, stream or sys.stdout, plots=plots)


def _checked_budgets(plan: SweepPlan, workers: int | None, *, plots: bool) -> list[SweepPlan]:
    """Check every budget's plan, the split, ``workers`` and matplotlib, before any run."""
    plans = [budget.checked() for budget in plan.budgets()]
    check_fraction(plan.val_fraction)
    check_workers(workers, len(plan.values))
    if plots:
        require("matplotlib.figure", "drawing the sweep's figures (or pass plots=False)")
    return plans


def _run_timed(
    source: DatasetSplit, plan: SweepPlan, workers: int | None, *, progress: bool
) -> tuple[SweepPlan, list[SweepPoint], float]:
    """Run the points of one budget; return its plan, its points and the seconds they took."""
    start = time.perf_counter()
    points = run_points(source, plan, workers, print_progress if progress else None)
    return plan, points, time.perf_counter() - start


def _write_all(
    results: list[tuple[SweepPlan, list[SweepPoint], float]],
    out_dir: Path,
    stream: TextIO,
    *,
    plots: bool,
) -> list[Path]:
    """Write each budget's files and print its table; return the files written."""
    written: list[Path] = []
    for plan, points, seconds in results:
        files = write_sweep(points, out_dir, plan.field, plan.equal, plots=plots)
        _print_table(stream, plan, points, seconds, files)
        written += files
    return written


def _print_table(
    stream: TextIO, plan: SweepPlan, points: list[SweepPoint], seconds: float, files: list[Path]
) -> None:
    """Print one budget's heading, table and files, as ``softreg sweep`` does."""
    print(
        f"{plan.base.dataset}: {plan.field} sweep, equal {plan.equal} ({seconds:.1f} s)",
        file=stream,
    )
    print(format_table(points), file=stream)
    print(printable("wrote " + ", ".join(str(f) for f in files)), file=stream, flush=True)
