"""Hyperparameter sweeps: the chapter's exercise 5, as a library call the CLI and notebooks share.

One model is trained per value of ``lr`` or ``batch_size`` on part of the *training* set and
scored on the held-out rest (:func:`validation_split`); the test set is never read, so
choosing a value by these numbers does not leak the test set into the choice.

A batch-size sweep can hold either budget fixed:

* ``equal="epochs"``: every point makes ``base.epochs`` passes over the fit part, so a small
  batch makes many more SGD updates than a large one;
* ``equal="updates"``: every point makes exactly ``U`` updates (:func:`updates_budget`; by
  default the number ``base`` itself makes, ``base.epochs * ceil(n_fit / base.batch_size)``),
  so a large batch sees more examples. ``U`` need not be a whole number of epochs: the
  remaining steps are a last, partial epoch over the examples that epoch would have visited
  first (:func:`train_point`). The cost of a point grows with its batch size: a full-batch
  point makes ``U`` passes over the data.

Points run in parallel processes (``workers``), each started fresh (``spawn``, safe with
every backend) and limited to its share of the cores' BLAS threads. A point's numbers depend
only on its configuration, never on the worker that ran it.

``sweep_main`` does the whole job and writes, for each budget, ``sweep-<field>-<equal>.csv``,
``.json`` and ``.png`` (loss and accuracy against the swept value on a log axis).
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from softreg.build import make_model
from softreg.config import TrainConfig
from softreg.data import download_dataset, find_dataset_dir, load_dataset
from softreg.data.batching import epoch_permutation
from softreg.data.split import check_fraction, validation_split
from softreg.errors import ConfigError, DivergenceError, SoftregError, printable, require
from softreg.evaluation import evaluate
from softreg.fileio import atomic_write_bytes, write_json
from softreg.history import TrainState
from softreg.rundir import RunDirectory
from softreg.train import fit

FIELDS = ("lr", "batch_size")
EQUAL = ("epochs", "updates")
METRICS = {"val_loss": min, "val_acc": max, "train_loss": min, "train_acc": max}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# The files a sweep writes in its directory (an earlier sweep's are refused or replaced).
ARTIFACTS = ("sweep-*.csv", "sweep-*.json", "sweep-*.png", "sweep-*.svg")

Progress = Callable[[int, int, "SweepPoint"], None]


@dataclass(frozen=True)
class SplitData:
    """The training set cut into the part models fit and the part that scores them."""

    X_fit: np.ndarray
    y_fit: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    num_classes: int

    @property
    def n_fit(self) -> int:
        return int(self.X_fit.shape[0])


@dataclass(frozen=True)
class SweepPoint:
    """One trained model of a sweep: its value, what it cost, and how it scored."""

    field: str  # "lr" or "batch_size"
    value: float | int  # the swept value (a batch size above n_fit is run as full batch)
    equal: str  # the budget held fixed: "epochs" or "updates"
    config: TrainConfig  # the configuration trained (epochs: passes started)
    epochs: float  # passes over the fit part; fractional when the last one is partial
    steps: int  # SGD updates made
    n_fit: int  # rows trained on
    n_val: int  # rows validated on
    train_loss: float  # accumulated during the last (possibly partial) epoch, as fit reports
    train_acc: float
    val_loss: float  # after training, on the held-out part of the training set
    val_acc: float
    seconds: float  # training time (fit's seconds_train, summed)
    diverged_at: int | None = None  # the step whose loss was not finite; its losses are inf

    @property
    def full_batch(self) -> bool:
        return self.field == "batch_size" and int(self.value) >= self.n_fit

    def row(self) -> dict[str, Any]:
        """The flat numbers (no nested config): one CSV row."""
        return {
            "field": self.field,
            "value": self.value,
            "equal": self.equal,
            "epochs": self.epochs,
            "steps": self.steps,
            "batch_size": self.config.batch_size,
            "lr": self.config.lr,
            "full_batch": self.full_batch,
            "n_fit": self.n_fit,
            "n_val": self.n_val,
            "train_loss": self.train_loss,
            "train_acc": self.train_acc,
            "val_loss": self.val_loss,
            "val_acc": self.val_acc,
            "seconds": self.seconds,
            "diverged_at": self.diverged_at,
        }


# --- choosing and checking what to sweep -------------------------------------------------


def check_field(field: str) -> str:
    """``field`` as a TrainConfig field name (``batch-size``, the flag's spelling, is accepted)."""
    name = str(field).replace("-", "_")
    if name not in FIELDS:
        raise ConfigError(f"can sweep {', '.join(FIELDS)} only, got {field!r}")
    return name


def parse_values(field: str, text: str) -> list[float] | list[int]:
    """The comma-separated values of ``--lr 0.01,0.1,1`` or ``--batch-size 1,64,256``, sorted,
    duplicates dropped. Learning rates are finite numbers > 0, batch sizes integers >= 1.
    """
    field = check_field(field)
    values: set[Any] = set()
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            raise ConfigError(f"{field}: empty value in {text!r} (write e.g. 0.01,0.1,1)")
        values.add(_parse_value(field, item))
    if len(values) < 2:
        raise ConfigError(f"{field}: a sweep needs at least 2 distinct values, got {text!r}")
    return sorted(values)


def _parse_value(field: str, item: str) -> float | int:
    if field == "lr":
        try:
            value = float(item)
        except ValueError:
            raise ConfigError(f"lr: {item!r} is not a number") from None
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"lr: values must be finite numbers > 0, got {item!r}")
        return value
    try:
        size = int(item)
    except ValueError:
        raise ConfigError(f"batch_size: {item!r} is not a whole number") from None
    if size < 1:
        raise ConfigError(f"batch_size: values must be >= 1, got {item!r}")
    return size


def point_config(base: TrainConfig, field: str, value: Any) -> TrainConfig:
    """``base`` with ``field = value`` (TrainConfig checks the value)."""
    return replace(base, **{check_field(field): value})


def updates_budget(base: TrainConfig, n_fit: int) -> int:
    """The updates every point of an equal-updates sweep makes: as many as ``base`` itself
    makes on ``n_fit`` rows, ``base.epochs * ceil(n_fit / base.batch_size)``.
    """
    return base.epochs * math.ceil(n_fit / min(base.batch_size, n_fit))


def _check_sweep(
    base: TrainConfig, field: str, values: Iterable[Any], equal: str, updates: int | None
) -> tuple[str, list[Any]]:
    """Refuse a sweep that cannot run before any process starts or any data is read."""
    field = check_field(field)
    values = list(values)
    if not values:
        raise ConfigError(f"{field}: no values to sweep")
    for value in values:
        point_config(base, field, value)
    if equal not in EQUAL:
        raise ConfigError(f"equal must be one of {', '.join(EQUAL)}, got {equal!r}")
    if field == "batch_size" and base.optimizer == "gd":
        raise ConfigError("a batch_size sweep needs optimizer='sgd' (gd ignores the batch size)")
    if equal == "updates" and field != "batch_size":
        raise ConfigError(
            f"equal='updates' applies to batch_size sweeps only (every {field} "
            "point makes the same updates already)"
        )
    if updates is not None and (
        isinstance(updates, bool) or not isinstance(updates, int) or updates < 1
    ):
        raise ConfigError(f"updates must be an integer >= 1, got {updates!r}")
    return field, values


# --- training one point --------------------------------------------------------------------


def train_point(
    data: SplitData,
    base: TrainConfig,
    field: str,
    value: Any,
    *,
    equal: str = "epochs",
    updates: int | None = None,
) -> SweepPoint:
    """Train one model with ``field = value`` on ``data``'s fit part; score it on the rest.

    With ``equal="updates"`` it makes exactly ``updates`` SGD steps (default
    :func:`updates_budget`): whole epochs, then, for the remaining ``r`` steps, one more epoch
    over the first ``r * batch_size`` examples of that epoch's order (the ones a whole epoch
    would have visited first; ``fit`` shuffles them again). A value whose training diverges
    gives a point with infinite losses and ``diverged_at`` set, which never wins.
    """
    if equal not in EQUAL:
        raise ConfigError(f"equal must be one of {', '.join(EQUAL)}, got {equal!r}")
    config = point_config(base, field, value)
    model = make_model(config, data.X_fit, data.num_classes)
    n, X, y = data.n_fit, data.X_fit, data.y_fit
    seconds, epochs = 0.0, float(config.epochs)
    try:
        if equal == "updates":
            budget = updates or updates_budget(base, n)
            batch = min(config.batch_size, n)
            whole, rest = divmod(budget, math.ceil(n / batch))
            config = replace(config, epochs=whole + (rest > 0))
            epochs = whole + rest * batch / n
            state: TrainState | None = None
            result = None
            if whole:
                result = fit(model, (X, y), None, replace(config, epochs=whole))
                state, seconds = result.state, result.seconds_train
            if rest:
                first = epoch_permutation(n, seed=config.seed, epoch=whole)[: rest * batch]
                result = fit(model, (X[first], y[first]), None, config, state=state)
                seconds = result.seconds_train
        else:
            result = fit(model, (X, y), None, config)
            seconds = result.seconds_train
    except DivergenceError as exc:
        return SweepPoint(
            field=field,
            value=value,
            equal=equal,
            config=config,
            epochs=epochs,
            steps=exc.step,
            n_fit=n,
            n_val=int(data.y_val.shape[0]),
            train_loss=math.inf,
            train_acc=math.nan,
            val_loss=math.inf,
            val_acc=math.nan,
            diverged_at=exc.step,
            seconds=exc.state.seconds if exc.state is not None else math.nan,
        )
    assert result is not None  # a budget >= 1 always trains
    final = result.history.final
    scored = evaluate(
        model, result.params, data.X_val, data.y_val, batch_size=config.eval_batch_size
    )
    return SweepPoint(
        field=field,
        value=value,
        equal=equal,
        config=config,
        epochs=epochs,
        steps=result.state.step,
        n_fit=n,
        n_val=scored.n,
        train_loss=final.train_loss,
        train_acc=final.train_acc,
        val_loss=scored.loss,
        val_acc=scored.accuracy,
        seconds=seconds,
    )


def _split_arrays(
    X: Any, y: Any, fraction: float, seed: int, num_classes: int | None = None
) -> SplitData:
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ConfigError(f"labels must be 1-D integers, got {y.dtype} array of shape {y.shape}")
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ConfigError(
            f"labels must lie in [0, {num_classes}), got {int(y.min())}..{int(y.max())}"
        )
    X_fit, y_fit, X_val, y_val = validation_split(X, y, fraction=fraction, seed=seed)
    return SplitData(X_fit, y_fit, X_val, y_val, num_classes)


def _split_dataset(name: str, directory: Any, fraction: float, seed: int) -> SplitData:
    """Load ``name``'s training set only and split it; the test arrays are never read."""
    data = load_dataset(name, data_dir=directory, download=False, progress=False)
    return _split_arrays(data.X_train, data.y_train, fraction, seed, data.num_classes)


# --- running many points -------------------------------------------------------------------

_WORKER: dict[str, Any] = {}  # per worker process: its SplitData and its thread limit


def _init_worker(source: tuple[Any, ...]) -> None:
    """Each worker's start: one BLAS thread (see :func:`one_blas_thread`), then its data,
    once for all the points it runs. PyTorch, imported later if at all, reads the
    environment variables.
    """
    for var in THREAD_VARS:
        os.environ[var] = "1"
    _WORKER["limits"] = one_blas_thread()  # kept: dropping it would lift the cap
    _WORKER["limits"].__enter__()
    kind, *args = source
    try:
        _WORKER["data"] = args[0] if kind == "arrays" else _split_dataset(*args)
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
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield None
        return
    with threadpool_limits(limits=1) as limits:
        yield limits


def _run_in_worker(
    base: TrainConfig, field: str, value: Any, equal: str, updates: int | None
) -> SweepPoint:
    # An error in a pool's initializer breaks the pool (BrokenProcessPool, the cause lost);
    # raised from a task it reaches the caller as it is.
    if "error" in _WORKER:
        raise _WORKER["error"]
    return train_point(_WORKER["data"], base, field, value, equal=equal, updates=updates)


def _check_workers(workers: int | None, n_points: int) -> int:
    """The number of processes to run ``n_points`` in: ``workers``, checked, or the
    default.
    """
    workers = default_workers(n_points) if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
    return workers


def default_workers(n_points: int) -> int:
    return max(1, min(n_points, os.cpu_count() or 1))


def _run_points(
    source: tuple[Any, ...],
    base: TrainConfig,
    field: str,
    values: list[Any],
    equal: str,
    updates: int | None,
    workers: int | None,
    progress: Progress | None,
) -> list[SweepPoint]:
    """Run every value, in this process (``workers=1``) or in a pool of fresh processes;
    the points come back in the order of ``values``.
    """
    workers = min(_check_workers(workers, len(values)), len(values))
    points: list[SweepPoint | None] = [None] * len(values)
    if workers == 1:
        kind, *args = source
        data = args[0] if kind == "arrays" else _split_dataset(*args)
        for i, value in enumerate(values):
            with one_blas_thread():
                points[i] = train_point(data, base, field, value, equal=equal, updates=updates)
            if progress:
                progress(i + 1, len(values), points[i])
        return points  # type: ignore[return-value]
    import multiprocessing

    others = set(multiprocessing.active_children())  # the caller's, if any: not ours to end
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(source,),
    ) as pool:
        futures = {
            pool.submit(_run_in_worker, base, field, value, equal, updates): i
            for i, value in enumerate(values)
        }
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                i = futures[future]
                points[i] = future.result()
                if progress:
                    progress(done, len(values), points[i])
        except BaseException:
            # The workers do not share a termination signal sent to this process alone:
            # end them too, rather than wait for the points they are training.
            for worker in set(multiprocessing.active_children()) - others:
                worker.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return points  # type: ignore[return-value]


def run_sweep(
    base: TrainConfig,
    field: str,
    values: Iterable[Any],
    X: Any,
    y: Any,
    *,
    equal: str = "epochs",
    val_fraction: float = 0.1,
    workers: int | None = None,
    progress: Progress | None = None,
    updates: int | None = None,
    num_classes: int | None = None,
) -> list[SweepPoint]:
    """One model per value of ``field`` on in-memory training data ``(X, y)``, each scored on
    the same held-out ``val_fraction`` of it (split with ``base.seed``).

    Every point uses ``base``'s seed, so the numbers do not depend on ``workers``. Each
    worker gets a copy of the data: for a large dataset prefer :func:`run_sweep_dataset`,
    whose workers read it themselves. ``num_classes`` defaults to the largest label + 1.
    """
    field, values = _check_sweep(base, field, values, equal, updates)
    data = _split_arrays(X, y, val_fraction, base.seed, num_classes)
    return _run_points(("arrays", data), base, field, values, equal, updates, workers, progress)


def run_sweep_dataset(
    base: TrainConfig,
    field: str,
    values: Iterable[Any],
    *,
    data_dir: Any = None,
    equal: str = "epochs",
    val_fraction: float = 0.1,
    workers: int | None = None,
    progress: Progress | None = None,
    updates: int | None = None,
    download: bool = True,
) -> list[SweepPoint]:
    """:func:`run_sweep` on ``base.dataset``'s training set, which each worker loads itself
    (cheaper than sending each a copy). A missing dataset is downloaded once, here, first.
    """
    field, values = _check_sweep(base, field, values, equal, updates)
    source = _dataset_source(base, data_dir, val_fraction, download)
    return _run_points(source, base, field, values, equal, updates, workers, progress)


def _dataset_source(
    base: TrainConfig, data_dir: Any, val_fraction: float, download: bool
) -> tuple[Any, ...]:
    """Where the workers read ``base.dataset``'s training set from: found (or downloaded)
    once, here, first.
    """
    check_fraction(val_fraction)
    directory = data_dir
    if base.dataset != "synthetic":
        directory = find_dataset_dir(base.dataset, data_dir)
        if directory is None and download:
            directory = download_dataset(base.dataset)
        # else: load_dataset raises the error that lists every place searched
    return ("dataset", base.dataset, directory, val_fraction, base.seed)


def best_point(points: Sequence[SweepPoint], metric: str = "val_loss") -> SweepPoint:
    """The point with the lowest loss (or highest accuracy); diverged (non-finite) points
    never win.
    """
    if metric not in METRICS:
        raise ConfigError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    finite = [p for p in points if math.isfinite(getattr(p, metric))]
    if not finite:
        raise ConfigError(f"no point has a finite {metric} (every run diverged?)")
    return METRICS[metric](finite, key=lambda p: getattr(p, metric))


def print_progress(done: int, total: int, point: SweepPoint) -> None:
    """One line on stderr per finished point (a ``progress`` callback)."""
    print(f"[{done}/{total}] {format_point(point)}", file=sys.stderr, flush=True)


def format_point(point: SweepPoint) -> str:
    return (
        f"{point.field}={point.value:g}  val loss {point.val_loss:.4f}  "
        f"val acc {point.val_acc:.4f}  ({point.epochs:.3g} epochs, {point.steps} steps, "
        f"{point.seconds:.2f} s)"
    )


# --- writing the results -------------------------------------------------------------------


def write_sweep(
    points: Sequence[SweepPoint],
    out_dir: str | Path,
    field: str,
    equal: str,
    *,
    stem: str | None = None,
    plots: bool = True,
) -> list[Path]:
    """Write ``<stem>.csv`` (a row per point), ``<stem>.json`` (the numbers, the base config,
    the split, a timestamp) and ``<stem>.png``, each atomically; ``stem`` defaults to
    ``sweep-<field>-<equal>``, so both budgets of one sweep can share ``out_dir``.
    """
    if not points:
        raise ConfigError("no sweep points to write")
    field = check_field(field)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (stem or f"sweep-{field}-{equal}")
    rows = [p.row() for p in points]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    written = [path.with_suffix(".csv"), path.with_suffix(".json")]
    atomic_write_bytes(written[0], buf.getvalue().encode())
    varies = {field, "epochs"} if equal == "updates" else {field}
    try:
        best = best_point(points).value
    except ConfigError:
        best = None
    summary = {
        "field": field,
        "equal": equal,
        "updates": points[0].steps if equal == "updates" else None,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "split": {
            "from": "training set (the test set is not used)",
            "n_fit": points[0].n_fit,
            "n_val": points[0].n_val,
            "seed": points[0].config.seed,
        },
        "base_config": {k: v for k, v in points[0].config.to_dict().items() if k not in varies},
        "best_by_val_loss": best,
        "points": rows,
        "configs": [p.config.to_dict() for p in points],
    }
    write_json(written[1], summary)
    if plots:
        from softreg.plotting import save_figure

        written += save_figure(plot_sweep(points, field, equal), path)
    return written


def plot_sweep(points: Sequence[SweepPoint], field: str, equal: str) -> Any:
    """Loss (left) and accuracy (right), train and validation, against the swept value on a
    log axis; the best validation loss is ringed.
    """
    from softreg.plotting import _figure

    ordered = sorted(points, key=lambda p: p.value)
    x = [p.value for p in ordered]
    fig = _figure((8.0, 3.2))
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
    try:
        best = best_point(ordered)
        loss_ax.plot([best.value], [best.val_loss], "o", mfc="none", ms=12, color="red")
    except ConfigError:
        pass
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
    return value if math.isfinite(value) else math.nan


def format_table(points: Sequence[SweepPoint]) -> str:
    """The points as an aligned table, best validation loss marked."""
    try:
        best = best_point(points)
    except ConfigError:
        best = None
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


def sweep_main(
    base: TrainConfig,
    field: str,
    values: Iterable[Any],
    *,
    out_dir: str | Path,
    data_dir: Any = None,
    equal: str = "epochs",
    workers: int | None = None,
    stream: TextIO | None = None,
    val_fraction: float = 0.1,
    updates: int | None = None,
    progress: bool = True,
    plots: bool = True,
    overwrite: bool = False,
) -> list[Path]:
    """The ``softreg sweep`` command: run the sweep on ``base.dataset`` for each budget in
    ``equal`` (``epochs``, ``updates`` or ``both``), write its files into ``out_dir``, print a
    table per budget on ``stream`` (stdout), and return the files written.

    ``out_dir`` follows the rules of a training run's directory (:mod:`softreg.rundir`): an
    earlier sweep's files there are refused unless ``overwrite``, and it is locked for the
    sweep, so one process at a time writes there. Every check runs before the directory is
    created, and an earlier sweep's files are replaced only once every point is trained: a
    sweep that fails leaves them as they were.
    """
    stream = stream or sys.stdout
    budgets = EQUAL if equal == "both" else (equal,)
    field = check_field(field)
    values = list(values)
    for budget in budgets:  # every mistake is reported before the first (long) run
        _check_sweep(base, field, values, budget, updates)
    check_fraction(val_fraction)
    _check_workers(workers, len(values))
    if plots:
        require("matplotlib.figure", "drawing the sweep's figures (or pass plots=False)")
    run_dir = RunDirectory(out_dir, ARTIFACTS, overwrite=overwrite)
    run_dir.check()
    source = _dataset_source(base, data_dir, val_fraction, download=True)
    written: list[Path] = []
    with run_dir:
        run_dir.acquire()
        results = []
        for budget in budgets:
            start = time.perf_counter()
            points = _run_points(
                source,
                base,
                field,
                values,
                budget,
                updates,
                workers,
                print_progress if progress else None,
            )
            results.append((budget, points, time.perf_counter() - start))
        run_dir.clear()
        for budget, points, seconds in results:
            files = write_sweep(points, run_dir.path, field, budget, plots=plots)
            print(f"{base.dataset}: {field} sweep, equal {budget} ({seconds:.1f} s)", file=stream)
            print(format_table(points), file=stream)
            print(printable("wrote " + ", ".join(str(f) for f in files)), file=stream, flush=True)
            written += files
    return written


__all__ = [
    "EQUAL",
    "FIELDS",
    "SplitData",
    "SweepPoint",
    "best_point",
    "check_field",
    "default_workers",
    "format_point",
    "format_table",
    "parse_values",
    "plot_sweep",
    "point_config",
    "print_progress",
    "run_sweep",
    "run_sweep_dataset",
    "sweep_main",
    "train_point",
    "updates_budget",
    "write_sweep",
]
