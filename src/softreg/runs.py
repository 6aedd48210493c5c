"""One run, one directory: the main job as a library call the CLI and notebooks share.

``train_run(TrainConfig(), "runs/book")`` loads the data, trains, and writes::

    config.json        the TrainConfig
    epochs.csv         one row per epoch (rewritten after each epoch)
    steps.csv          the running loss every log_every batches (rewritten at each report)
    curves.png/.svg    the book's training curves (PNG rewritten after each epoch)
    model.safetensors  the trained parameters
    checkpoint.safetensors  the training state, with checkpoint_every (see resume_run)
    predictions.png    first test images, true label over predicted label
    misclassified.png  the first misclassified test images
    metrics.json       final metrics, timings and the whole history (written last)

Every file is written to a temporary name and renamed, so none is ever half-written. Every
check that can fail runs before the first file is written: the directory is created, locked
(:class:`softreg.rundir.RunDirectory`: one writer at a time) and written from ``fit``'s
``on_train_begin`` on, which ``fit`` calls only once it has checked its inputs.
"""

from __future__ import annotations

import csv
import io
import math
import platform
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from softreg import __version__, backend
from softreg.build import make_model
from softreg.callbacks import Callback
from softreg.checkpoint import Checkpoint, load_checkpoint, save_checkpoint, save_model
from softreg.config import TrainConfig
from softreg.data import DataError, Dataset, load_dataset
from softreg.data.batching import epoch_permutation
from softreg.divergence import params_finite
from softreg.errors import ConfigError, DivergenceError, RunDirError, require
from softreg.fileio import atomic_write_bytes, parse_json, write_json
from softreg.history import EpochRecord, FitResult, History, StepRecord, TrainState
from softreg.rundir import RunDirectory
from softreg.train import fit

MODEL_FILE = "model.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
ARTIFACTS = (
    "config.json",
    "epochs.csv",
    "steps.csv",
    "curves.png",
    "curves.svg",
    MODEL_FILE,
    "predictions.png",
    "misclassified.png",
    "metrics.json",
    CHECKPOINT_FILE,
)
MAX_SHOW = 100  # images in a prediction grid: a 10 x 10 grid is as much as anyone reads
MAX_CONFIG_BYTES = 1_000_000  # a config.json is a few hundred bytes


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    fit: FitResult
    dataset: Dataset


def default_run_dir(config: TrainConfig, root: str | Path = "runs") -> Path:
    return Path(root) / f"{config.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_directory(path: str | Path, *, overwrite: bool = False) -> RunDirectory:
    """The :class:`~softreg.rundir.RunDirectory` of a training run at ``path``."""
    return RunDirectory(path, ARTIFACTS, overwrite=overwrite)


class CsvLog(Callback):
    """Rewrites ``epochs.csv`` after every epoch and ``steps.csv`` at every running-loss
    report, so a stopped run keeps what it finished.
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)

    def on_epoch_end(self, record: EpochRecord, history: History, state: TrainState) -> None:
        write_csv(self.run_dir / "epochs.csv", history.records)

    def on_log(self, record: StepRecord, history: History) -> None:
        write_csv(self.run_dir / "steps.csv", history.steps)


def write_csv(path: Path, records: list[Any]) -> None:
    """Dataclass records as CSV, one row each, written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(asdict(records[0])), lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(r) for r in records)
    atomic_write_bytes(path, buf.getvalue().encode())


def train_run(
    config: TrainConfig,
    out: str | Path | None = None,
    *,
    data_dir: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
    plots: bool = True,
    n_show: int = 16,
    stream: TextIO | None = None,
    callbacks: tuple[Callback, ...] = (),
    checkpoint_every: int = 0,
    communicator: Any = None,
) -> RunResult:
    """Train as ``config`` says and write the run directory ``out``.

    With ``checkpoint_every=N`` the training state goes to ``checkpoint.safetensors`` at the
    start, every N steps and at the end, and :func:`resume_run` can continue the run after
    the process is killed at any point. With a ``communicator`` (:mod:`softreg.distributed`)
    this process is one rank of a data-parallel run: every rank trains, only rank 0 writes
    ``out`` and shows progress.

    Raises
    ------
    SoftregError
        Anything wrong with the configuration, the data or ``out`` (a :class:`RunDirError`
        when another process is writing there), before any file is written.
    """
    wall_start = time.perf_counter()
    _check_ready(config, plots, n_show, checkpoint_every)
    run_dir = run_directory(default_run_dir(config) if out is None else out, overwrite=overwrite)
    if _writes(communicator):
        run_dir.check()
    t = time.perf_counter()
    data = _load_data(config, data_dir, progress, communicator)
    seconds_load = time.perf_counter() - t
    model = make_model(config, data.X_train, data.num_classes)  # may refuse the data
    with run_dir:
        return _train_in(
            run_dir,
            config,
            data,
            model,
            None,
            None,
            wall_start=wall_start,
            seconds_load=seconds_load,
            checkpoint_every=checkpoint_every,
            progress=progress,
            plots=plots,
            n_show=n_show,
            stream=stream,
            callbacks=callbacks,
            communicator=communicator,
        )


def resume_run(
    run_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    progress: bool = True,
    plots: bool = True,
    n_show: int = 16,
    stream: TextIO | None = None,
    callbacks: tuple[Callback, ...] = (),
    communicator: Any = None,
) -> RunResult | None:
    """Continue the run in ``run_dir`` from its checkpoint, as if it had never stopped: the
    final weights and metrics are bit-identical to an uninterrupted run's.

    Returns None when the run had already finished. Without a checkpoint (the run was
    stopped before writing one) it starts again from the beginning. ``checkpoint_every``
    defaults to the run's own. With a ``communicator`` every rank reads the checkpoint and
    only rank 0 writes (see :func:`train_run`); any number of ranks can continue any run.
    The run directory is locked from the start (see :mod:`softreg.rundir`).
    """
    wall_start = time.perf_counter()
    directory = run_directory(run_dir, overwrite=True)
    _config_file(directory.path)  # no run to resume: said before anything else
    with directory:
        if _writes(communicator):
            directory.lock()  # before reading: another process may be writing the run
        config = read_run_config(directory.path)
        if (directory.path / "metrics.json").is_file():
            return None
        checkpoint_file = directory.path / CHECKPOINT_FILE
        has_checkpoint = checkpoint_file.is_file()
        if communicator is not None:
            communicator.barrier()  # every rank has looked before rank 0 changes anything
        if _writes(communicator):
            directory.remove_temporary_files()
        saved = load_checkpoint(checkpoint_file) if has_checkpoint else None
        if saved is not None and saved.config != config:
            raise RunDirError(
                f"{checkpoint_file}: written for another configuration than "
                f"{directory.path / 'config.json'}"
            )
        if checkpoint_every is None:
            checkpoint_every = saved.checkpoint_every if saved is not None else 0
        _check_ready(config, plots, n_show, checkpoint_every)
        t = time.perf_counter()
        data = _load_data(config, data_dir, progress, communicator)
        seconds_load = time.perf_counter() - t
        if saved is None:  # stopped before the first checkpoint: start again
            model, state, history = make_model(config, data.X_train, data.num_classes), None, None
        else:
            _check_position(saved, config, data.X_train.shape[0], checkpoint_file)
            _check_data_order(saved, config, data.X_train.shape[0], checkpoint_file)
            if saved.class_names != data.class_names:
                raise RunDirError(
                    f"{checkpoint_file}: written for the classes "
                    f"{', '.join(saved.class_names[:4])}, ... of another dataset"
                )
            model, state, history = saved.model, saved.state, saved.history
        return _train_in(
            directory,
            config,
            data,
            model,
            state,
            history,
            wall_start=wall_start,
            seconds_load=seconds_load,
            checkpoint_every=checkpoint_every,
            progress=progress,
            plots=plots,
            n_show=n_show,
            stream=stream,
            callbacks=callbacks,
            communicator=communicator,
        )


def read_run_config(run_dir: str | Path) -> TrainConfig:
    """The TrainConfig of the run in ``run_dir`` (its config.json).

    Raises
    ------
    RunDirError
        No config.json, or one that is not a valid configuration (malformed, nested too
        deeply, too large, or with a value TrainConfig refuses).
    """
    config_file = _config_file(run_dir)
    if config_file.stat().st_size > MAX_CONFIG_BYTES:
        raise RunDirError(
            f"{config_file}: {config_file.stat().st_size} bytes, too large to be "
            f"a run configuration"
        )
    fields = parse_json(config_file.read_bytes(), str(config_file), RunDirError)
    if not isinstance(fields, dict):
        raise RunDirError(f"{config_file}: not a valid run configuration (not a JSON object)")
    try:
        return TrainConfig(**fields)
    except (ValueError, TypeError) as exc:  # ConfigError is a ValueError
        raise RunDirError(f"{config_file}: not a valid run configuration ({exc})") from None


def _config_file(run_dir: str | Path) -> Path:
    """The run's config.json, or a RunDirError: there is no run to resume."""
    config_file = Path(run_dir) / "config.json"
    if not config_file.is_file():
        raise RunDirError(
            f"{run_dir}: no run to resume (no config.json); start it with "
            f"softreg train --out {run_dir}"
        )
    return config_file


def _writes(communicator: Any) -> bool:
    """Whether this process writes the run directory: in a data-parallel run, rank 0 only."""
    return communicator is None or communicator.rank == 0


def _load_data(
    config: TrainConfig, data_dir: str | Path | None, progress: bool, communicator: Any
) -> Dataset:
    if communicator is None:
        return load_dataset(config.dataset, data_dir=data_dir, progress=progress)
    try:  # every rank reads the files; none downloads (they would write the same files)
        return load_dataset(config.dataset, data_dir=data_dir, download=False, progress=False)
    except DataError as exc:
        raise DataError(
            f"{exc}. A data-parallel run never downloads: fetch the data on "
            f"every node first (softreg data --dataset {config.dataset})"
        ) from None


def _check_ready(config: TrainConfig, plots: bool, n_show: int, checkpoint_every: int) -> None:
    """What can be refused before the data is read."""
    if (
        isinstance(checkpoint_every, bool)
        or not isinstance(checkpoint_every, int)
        or checkpoint_every < 0
    ):
        raise ConfigError(f"checkpoint_every must be an integer >= 0, got {checkpoint_every!r}")
    if isinstance(n_show, bool) or not isinstance(n_show, int) or not 0 <= n_show <= MAX_SHOW:
        raise ConfigError(f"the prediction grids show 0 to {MAX_SHOW} images, got {n_show!r}")
    require("safetensors.numpy", "saving the model")
    backend.resolve(config.backend, config.device)
    if plots:
        require("matplotlib.figure", "drawing the figures (or pass plots=False / --no-plots)")


def _check_position(saved: Any, config: TrainConfig, n: int, path: Path) -> None:
    """A run's steps count its epochs and batches: a checkpoint that says otherwise would
    continue another run (the schedule, say, depends on the step).
    """
    state = saved.state
    steps_per_epoch = 1 if config.optimizer == "gd" else math.ceil(n / config.batch_size)
    if state.step != state.epoch * steps_per_epoch + state.batch:
        raise RunDirError(
            f"{path}: at step {state.step}, but epoch {state.epoch} and batch "
            f"{state.batch} of {steps_per_epoch} batches an epoch make "
            f"{state.epoch * steps_per_epoch + state.batch} steps"
        )


def _check_data_order(saved: Any, config: TrainConfig, n: int, path: Path) -> None:
    """The checkpoint holds the data order of the epoch it stopped in; it must be the one
    this softreg and NumPy compute, or the continued run would silently be another run.
    """
    if saved.data_order is None:
        return
    expected = epoch_permutation(n, seed=config.seed, epoch=saved.state.epoch)
    if not np.array_equal(saved.data_order, expected):
        raise RunDirError(
            f"{path}: its data order differs from the one this installation "
            f"computes for seed {config.seed}, epoch {saved.state.epoch + 1} "
            f"(another NumPy version, or other data?); the run cannot be "
            f"continued exactly"
        )


class Checkpointer(Callback):
    """Writes the training state to ``checkpoint.safetensors`` (atomically) at the start of
    training, when ``fit`` offers one, and at the end.
    """

    def __init__(
        self,
        path: Path,
        model: Any,
        config: TrainConfig,
        data: Dataset,
        checkpoint_every: int,
        *,
        new_run: bool,
    ):
        self.path, self.model, self.config, self.new_run = path, model, config, new_run
        self.class_names, self.n = data.class_names, data.X_train.shape[0]
        self.checkpoint_every = checkpoint_every
        self._order: tuple[int, np.ndarray] | None = None  # (epoch, its data order)

    def save(self, state: TrainState, history: History) -> None:
        order = None
        if self.config.optimizer == "sgd" and state.epoch < self.config.epochs:
            if self._order is None or self._order[0] != state.epoch:  # once per epoch
                self._order = (
                    state.epoch,
                    epoch_permutation(self.n, seed=self.config.seed, epoch=state.epoch),
                )
            order = self._order[1]
        checkpoint = Checkpoint(
            model=self.model,
            state=state,
            history=history,
            config=self.config,
            class_names=self.class_names,
            data_order=order,
            checkpoint_every=self.checkpoint_every,
            metadata={"softreg": __version__, "numpy": np.__version__},
        )
        save_checkpoint(self.path, checkpoint)

    def on_train_begin(self, config: TrainConfig, steps_per_epoch: int, state: TrainState) -> None:
        if self.new_run:  # resumable from the very start
            self.save(state, History())

    def on_checkpoint(self, state: TrainState, history: History) -> None:
        self.save(state, history)

    def on_train_end(self, history: History, state: TrainState) -> None:
        self.save(state, history)


class RunDirWriter(Callback):
    """Opens a new run's directory when training begins (every check has passed by then:
    see :func:`softreg.fit`) and writes ``config.json``. A resumed run's directory is open
    already and keeps its files.
    """

    def __init__(self, run_dir: RunDirectory, config: TrainConfig, *, new_run: bool):
        self.run_dir, self.config, self.new_run = run_dir, config, new_run

    def on_train_begin(self, config: TrainConfig, steps_per_epoch: int, state: TrainState) -> None:
        if self.new_run:
            self.run_dir.open()
            write_json(self.run_dir.path / "config.json", self.config.to_dict())


def _train_in(
    run_dir: RunDirectory,
    config: TrainConfig,
    data: Dataset,
    model: Any,
    state: TrainState | None,
    history: History | None,
    *,
    wall_start: float,
    seconds_load: float,
    checkpoint_every: int,
    progress: bool,
    plots: bool,
    n_show: int,
    stream: TextIO | None,
    callbacks: tuple[Callback, ...],
    communicator: Any = None,
) -> RunResult:
    """Train (from ``state``, or from the start) and write the run directory (unless this
    is a rank other than 0 of a data-parallel run: those write nothing).
    """
    device = backend.resolve(config.backend, config.device).device_name
    writes = _writes(communicator)
    path = run_dir.path
    hooks: list[Callback] = []
    new_run = state is None
    if writes:
        hooks += [RunDirWriter(run_dir, config, new_run=new_run), CsvLog(path)]
        if checkpoint_every:
            hooks.append(
                Checkpointer(
                    path / CHECKPOINT_FILE, model, config, data, checkpoint_every, new_run=new_run
                )
            )
    hooks += callbacks
    if progress and writes:
        from softreg.progress import ProgressBar

        hooks.append(ProgressBar(stream))
    if plots and writes:
        from softreg.plotting import LiveCurves

        hooks.append(LiveCurves(path / "curves"))
    resumed_from = state.step if state is not None and state.step else None
    header = {
        "dataset": data.name,
        "seed": config.seed,
        "softreg": __version__,
        "backend": config.backend,
        "device": device,
    }
    try:
        result = fit(
            model,
            (data.X_train, data.y_train),
            (data.X_test, data.y_test),
            config,
            callbacks=hooks,
            state=state,
            history=history,
            checkpoint_every=checkpoint_every,
            communicator=communicator,
        )
    except DivergenceError as exc:
        if not writes:  # every rank stops at the same step; rank 0 says so
            raise
        # Keep the last good model, say where it is, and mark the run as ended. Its weights
        # may have overflowed already at an earlier step, whose loss was still finite: a
        # model that cannot be used is not kept.
        kept = exc.state is not None and params_finite(exc.state.params)
        if kept:
            save_model(
                path / MODEL_FILE,
                model,
                _host(exc.state.params),
                class_names=data.class_names,
                metadata=header,
            )
            where = f" in {path / MODEL_FILE}"
        else:
            where = (
                "; no model was kept: the weights from before that step had already overflowed"
                if exc.state is not None
                else ""
            )
        write_json(
            path / "metrics.json",
            {
                "status": "diverged",
                "error": f"{exc}{where}",
                "diverged_at_step": exc.step,
                "model_file": MODEL_FILE if kept else None,
                "dataset": data.name,
                "model": config.model,
                "backend": config.backend,
                "history": [asdict(r) for r in exc.history.records],
                "running_loss": [asdict(r) for r in exc.history.steps],
            },
        )
        raise DivergenceError(
            f"{exc}{where}", state=exc.state, history=exc.history, step=exc.step
        ) from None

    host_params = _host(result.params)
    if writes:
        save_model(
            path / MODEL_FILE, model, host_params, class_names=data.class_names, metadata=header
        )
    if plots and writes and data.test_images is not None:  # generated data has no pictures
        write_prediction_grids(path, model, host_params, data, n_show=n_show)

    final = result.history.final
    metrics = {
        "status": "finished",
        "dataset": data.name,
        "model": config.model,
        "model_config": model_summary(model),
        "backend": config.backend,
        "device": device,
        "epochs": final.epoch,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "momentum": config.momentum,
        "seed": config.seed,
        "steps": result.state.step,
        "train_loss": final.train_loss,
        "train_acc": final.train_acc,
        "test_acc": final.test_acc,
        "test_loss": final.test_loss,
        "seconds_train": result.seconds_train,
        "seconds_compile": result.seconds_compile,
        "seconds_load_data": seconds_load,
        "seconds_total": time.perf_counter() - wall_start,
        "peak_rss_mb": peak_rss_mb(),
        "resumed_from_step": resumed_from,
        "checkpoint_every": checkpoint_every,
        "processes": communicator.world_size if communicator is not None else 1,
        "model_file": MODEL_FILE,
        "history": [asdict(r) for r in result.history.records],
        "running_loss": [asdict(r) for r in result.history.steps],
        "versions": {
            "softreg": __version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            **backend.versions(config.backend),
        },
    }
    if writes:
        write_json(path / "metrics.json", metrics)
    return RunResult(run_dir=path, metrics=metrics, fit=result, dataset=data)


def model_summary(model: Any) -> dict[str, Any]:
    """The model's configuration and the kind of its input standardisation, with its two
    numbers when there is one of each (per-feature arrays stay in the model file).
    """
    summary = {**model.config(), "input_scaling": model.input_scaling}
    if model.input_scaling == "scalar":
        summary.update(input_mean=float(model.input_mean), input_scale=float(model.input_scale))
    return summary


def _host(params: dict[str, Any]) -> dict[str, np.ndarray]:
    return backend.tree_map(backend.to_numpy, params)


def write_prediction_grids(
    run_dir: Path, model: Any, params: dict[str, Any], data: Dataset, *, n_show: int = 16
) -> None:
    """``predictions.png`` (first ``n_show`` test images) and ``misclassified.png``."""
    from softreg.plotting import plot_predictions, save_figure

    scores = backend.to_numpy(model.forward(params, data.X_test))
    predicted = scores.argmax(axis=1)
    names = np.asarray(data.class_names)
    first = np.arange(min(n_show, len(predicted)))
    wrong = np.flatnonzero(predicted != data.y_test)[:n_show]
    for name, idx in (("predictions", first), ("misclassified", wrong)):
        true_names, predicted_names = names[data.y_test[idx]], names[predicted[idx]]
        fig = plot_predictions(data.test_images[idx], true_names, predicted_names)
        save_figure(fig, run_dir / name)


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory so far, in MB (10^6 bytes), of this process (or its children).

    For this process, Linux's VmHWM is preferred: ``ru_maxrss`` survives ``exec``, so a
    process started from a big parent (a test runner holding PyTorch and JAX) would report
    the parent's peak instead of its own.
    """
    if who == resource.RUSAGE_SELF:
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024 / 1e6  # the value is in kB
        except OSError:
            pass  # not Linux: fall back to getrusage
    return maxrss_mb(resource.getrusage(who).ru_maxrss)


def maxrss_mb(ru_maxrss: int) -> float:
    """A ``ru_maxrss`` value (from getrusage or wait4) in MB: bytes on macOS, KiB on Linux."""
    return (ru_maxrss if sys.platform == "darwin" else ru_maxrss * 1024) / 1e6
