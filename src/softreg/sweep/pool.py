"""Running a sweep's points: in this process, or in parallel worker processes.

Points run in parallel processes (``workers``), each started fresh (``spawn``, safe with
every backend) and limited to one BLAS thread (:func:`one_blas_thread`), so a point's numbers
depend only on its configuration, never on the worker that ran it. Each worker gets its data
once, for all the points it runs: a copy of the arrays, or a dataset it loads itself.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from softreg.errors import ConfigError, SoftregError
from softreg.sweep.plan import SweepPlan
from softreg.sweep.point import SweepPoint, train_point
from softreg.sweep.split import DatasetSplit, SplitData, load_split

__all__ = ["THREAD_VARS", "Progress", "check_workers", "default_workers", "run_points"]

# NUMBA_NUM_THREADS: the fused step (softreg.fused) on one thread too; its numbers do not
# depend on it, but several workers each on every core would slow each other down.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")

Progress = Callable[[int, int, SweepPoint], None]
"""Called as ``progress(done, total, point)`` each time a point finishes."""

_WORKER: dict[str, Any] = {}  # per worker process: its SplitData and its thread limit


def _init_worker(source: SplitData | DatasetSplit) -> None:
    """Start a worker: one BLAS thread, then its data, once for all the points it runs.

    PyTorch, imported later if at all, reads the environment variables.
    """
    for var in THREAD_VARS:
        os.environ[var] = "1"
    _WORKER["limits"] = one_blas_thread()  # kept: dropping it would lift the cap
    _WORKER["limits"].__enter__()
    try:
        _WORKER["data"] = load_split(source)
    except SoftregError as exc:  # raised by the first task instead: see _run_in_worker
        _WORKER["error"] = exc


@contextlib.contextmanager
def one_blas_thread() -> Iterator[Any]:
    """Train every point on one BLAS thread, in a worker or in this process.

    A matrix product on two threads can round differently from one on one thread, and at a
    large learning rate such differences grow until the losses differ in the first digit;
    with one thread everywhere a point's numbers do not depend on ``workers``. Parallelism
    comes from the processes instead (a minibatch product is too small to gain much from
    BLAS threads). NumPy's BLAS is capped through threadpoolctl; without it installed the
    cap is skipped and numbers may differ between ``workers=1`` and more in the last digits.

    Yields
    ------
    threadpoolctl.threadpool_limits or None
        The active limit, or None without threadpoolctl.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield None
        return
    with threadpool_limits(limits=1) as limits:
        yield limits


def _run_in_worker(plan: SweepPlan, value: Any) -> SweepPoint:
    """Train the point ``value`` of ``plan`` on this worker's data."""
    # An error in a pool's initializer breaks the pool (BrokenProcessPool, the cause lost);
    # raised from a task it reaches the caller as it is.
    if "error" in _WORKER:
        raise _WORKER["error"]
    return _train(_WORKER["data"], plan, value)


def _train(data: SplitData, plan: SweepPlan, value: Any) -> SweepPoint:
    """:func:`train_point` for ``value`` of ``plan``."""
    return train_point(data, plan.base, plan.field, value, equal=plan.equal, updates=plan.updates)


def check_workers(workers: int | None, n_points: int) -> int:
    """Return the number of processes to run ``n_points`` in.

    Parameters
    ----------
    workers : int or None
        The number asked for; None: :func:`default_workers`.
    n_points : int
        The number of points to run.

    Returns
    -------
    int
        ``workers``, checked, or the default.

    Raises
    ------
    ConfigError
        ``workers`` is not an integer >= 1.
    """
    workers = default_workers(n_points) if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
    return workers


def default_workers(n_points: int) -> int:
    """Return the default number of processes: one per point, at most one per core.

    Parameters
    ----------
    n_points : int
        The number of points to run.

    Returns
    -------
    int
        ``min(n_points, os.cpu_count())``, at least 1.
    """
    return max(1, min(n_points, os.cpu_count() or 1))


def run_points(
    source: SplitData | DatasetSplit,
    plan: SweepPlan,
    workers: int | None,
    progress: Progress | None,
) -> list[SweepPoint]:
    """Train every value of ``plan``, in this process or in a pool of fresh processes.

    Parameters
    ----------
    source : SplitData or DatasetSplit
        The data: arrays (each worker gets a copy) or a dataset (each worker loads it).
    plan : SweepPlan
        The sweep, already checked (:meth:`SweepPlan.checked`) and of one budget.
    workers : int or None
        Processes to use; 1 trains in this process, None: :func:`default_workers`. Never
        more than the points.
    progress : Progress or None
        Called after each point finishes, in the order they finish.

    Returns
    -------
    list of SweepPoint
        The points in the order of ``plan.values``.

    Raises
    ------
    ConfigError
        ``workers`` is not an integer >= 1.
    """
    values = list(plan.values)
    workers = min(check_workers(workers, len(values)), len(values))
    if workers == 1:
        return _run_here(load_split(source), plan, progress)
    return _run_pooled(source, plan, workers, progress)


def _run_here(data: SplitData, plan: SweepPlan, progress: Progress | None) -> list[SweepPoint]:
    """Train every point, one after another, in this process."""
    points = []
    for value in plan.values:
        with one_blas_thread():
            points.append(_train(data, plan, value))
        if progress:
            progress(len(points), len(plan.values), points[-1])
    return points


def _run_pooled(
    source: SplitData | DatasetSplit, plan: SweepPlan, workers: int, progress: Progress | None
) -> list[SweepPoint]:
    """Train every point in a pool of ``workers`` fresh processes, in the values' order."""
    import multiprocessing

    total = len(plan.values)
    points: list[SweepPoint | None] = [None] * total
    others = set(multiprocessing.active_children())  # the caller's, if any: not ours to end
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(source,),
    ) as pool:
        futures = {
            pool.submit(_run_in_worker, plan, value): i for i, value in enumerate(plan.values)
        }
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                i = futures[future]
                points[i] = future.result()
                if progress:
                    progress(done, total, points[i])
        except BaseException:
            # The workers do not share a termination signal sent to this process alone:
            # end them too, rather than wait for the points they are training.
            for worker in set(multiprocessing.active_children()) - others:
                worker.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return points  # type: ignore[return-value]
